#!/usr/bin/env bash
# Makes sure the services Porter's demo and tests need are installed and
# running on this machine: RabbitMQ (127.0.0.1:5672, guest/guest, with the
# management plugin on 15672),
# PostgreSQL (127.0.0.1:5432, database `test`, trust auth for local TCP)
# and xmllint. Installs with apt where something is missing. Idempotent:
# services that already answer are left alone.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 120); do port_open "$port" && return 0; sleep 1; done
  echo "services: $name did not open port $port" >&2
  return 1
}

rabbitmq_installed() { [ -x /usr/sbin/rabbitmq-server ] || command -v rabbitmq-server >/dev/null; }

ensure_rabbitmq() {
  if port_open 5672; then return 0; fi
  rabbitmq_installed || apt_install rabbitmq-server
  # On a machine with systemd, installing the package may already have
  # started the node: check again before starting one.
  sleep 1
  if ! port_open 5672; then
    echo "services: starting RabbitMQ" >&2
    as_root env PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH" rabbitmq-server -detached
  fi
  wait_port 5672 RabbitMQ
  as_root env PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH" rabbitmqctl await_startup >/dev/null 2>&1 || true
}

# `porter topology --apply` uses the management API (127.0.0.1:15672).
# Enabling the plugin on the running node needs no restart.
ensure_rabbitmq_management() {
  if port_open 15672; then return 0; fi
  local plugins=(as_root env PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH" rabbitmq-plugins)
  if ! "${plugins[@]}" is_enabled rabbitmq_management >/dev/null 2>&1; then
    echo "services: enabling the RabbitMQ management plugin" >&2
    "${plugins[@]}" enable --quiet rabbitmq_management >/dev/null
  fi
  wait_port 15672 "RabbitMQ management"
}

pg_ok() { psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; }

ensure_postgres() {
  if ! port_open 5432 && [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    apt_install postgresql
    sleep 1
  fi
  local version=""
  if [ -d /etc/postgresql ]; then version=$(ls /etc/postgresql | sort -V | tail -1); fi
  local changed=0
  if [ -n "$version" ] && ! pg_ok; then
    # The tests connect over TCP as postgres without a password (trust for
    # loopback only). Debian's default is scram, so allow it explicitly.
    local hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
      changed=1
    fi
  fi
  if ! port_open 5432; then
    echo "services: starting PostgreSQL $version" >&2
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_port 5432 PostgreSQL
  elif [ "$changed" -eq 1 ]; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
  for _ in $(seq 1 30); do pg_ok && break; sleep 1; done
  pg_ok || { echo "services: cannot connect to PostgreSQL as postgres on 127.0.0.1:5432" >&2; return 1; }
  if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname='test'" | grep -q 1; then
    psql -h 127.0.0.1 -U postgres -d postgres -c 'create database test' >/dev/null
  fi
}

ensure_tools() {
  command -v xmllint >/dev/null || apt_install libxml2-utils
  command -v psql >/dev/null || apt_install postgresql-client
}

ensure_tools
ensure_rabbitmq
ensure_rabbitmq_management
ensure_postgres
echo "services: RabbitMQ and PostgreSQL are up" >&2
