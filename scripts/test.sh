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
# The RabbitMQ restart test sometimes hangs after the node restart (the court
# simulator waits on a publisher confirm that never comes; docs/open-points.md).
# It runs alone, bounded in time, and must pass in one of two tries.
for try in 1 2; do
  if timeout 300 cargo test --locked --test rabbitmq_restart -- --ignored; then
    exit 0
  fi
  echo "rabbitmq_restart: try $try did not pass" >&2
done
exit 1
