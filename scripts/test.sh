#!/usr/bin/env bash
# Runs every test of the workspace against real services, installing and
# starting them first where they are missing (see scripts/services.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/services.sh
export PORTER_TEST_PG_URL="${PORTER_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
export PORTER_TEST_AMQP_URL="${PORTER_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
cargo build --workspace --all-targets --locked
cargo test --workspace --locked --no-fail-fast -- --test-threads=4
