#!/usr/bin/env bash
# Runs the whole Porter system locally (`porter demo`), installing and
# starting RabbitMQ and PostgreSQL first where they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
exec cargo run --release --locked --bin porter -- demo --config deploy/local/porter.toml "$@"
