#!/usr/bin/env bash
# Make sure PostgreSQL's server programs exist for the tests of the PostgreSQL store (test/helpers/postgres.ts
# starts a throwaway cluster of its own with them; no server is left running), and pg_auto_failover for the
# replicated one (test/helpers/pg-ha.ts: a monitor, a primary and a secondary under pg_autoctl). Installs
# Debian's `postgresql` as root when initdb is missing (an error when it cannot), and its
# `postgresql-N-auto-failover` with `pg-auto-failover-cli` when pg_autoctl is missing (a warning when it
# cannot: the failover tests then say why they are skipped); keeps the cluster Debian makes from starting.
# Idempotent.
set -euo pipefail

log() { echo "ensure-postgres: $*"; }
found() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
newest() { ls -d /usr/lib/postgresql/*/bin/initdb | sed -E 's#.*/postgresql/([0-9]+)/bin/initdb#\1#' | sort -n | tail -1; }
# pg_autoctl (pg-auto-failover-cli) and the monitor's extension for the newest PostgreSQL (postgresql-N-auto-failover).
has_autoctl() { command -v pg_autoctl >/dev/null 2>&1 && [ -f "/usr/share/postgresql/$(newest)/extension/pgautofailover.control" ]; }
can_install() { [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; }

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
updated=0
install() {
  # The tests need the programs, not a service: no cluster is made or started by the packages.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/zfaas-no-main.conf
  if [ "$updated" = 0 ]; then apt-get update -qq >"$out" 2>&1 || { cat "$out" >&2; return 1; }; updated=1; fi
  DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq --no-install-recommends "$@" >"$out" 2>&1 || {
    cat "$out" >&2
    return 1
  }
}

if found; then
  log "postgresql present ($(ls -d /usr/lib/postgresql/*/bin/initdb | tail -1))"
else
  if ! can_install; then
    echo "ensure-postgres: ERROR: PostgreSQL's initdb is missing and cannot be installed (not root or no apt-get): install postgresql" >&2
    exit 1
  fi
  install postgresql || { echo "ensure-postgres: ERROR: apt-get install postgresql failed" >&2; exit 1; }
  found || { echo "ensure-postgres: ERROR: postgresql installed but no initdb under /usr/lib/postgresql" >&2; exit 1; }
  log "installed $(ls -d /usr/lib/postgresql/*/bin/initdb | tail -1)"
fi

v="$(newest)"
if has_autoctl; then
  log "pg_auto_failover present ($(command -v pg_autoctl), extension for PostgreSQL $v)"
elif ! can_install; then
  log "warning: pg_autoctl is missing and cannot be installed (not root or no apt-get): the failover tests will be skipped"
elif install "postgresql-$v-auto-failover" pg-auto-failover-cli && has_autoctl; then
  log "installed pg_auto_failover for PostgreSQL $v ($(command -v pg_autoctl))"
else
  log "warning: postgresql-$v-auto-failover could not be installed: the failover tests will be skipped"
fi
