#!/usr/bin/env bash
# The entrypoint of zfaas/pg-ha (scripts/swarm/pg/Dockerfile): one pg_auto_failover member, a monitor or a
# data node, kept in $PGDATA's volume. First start: `pg_autoctl create` (a data node waits for the monitor
# and, with ZFAAS_PG_WAIT_PRIMARY=1, for a primary to copy), then the settings below; every start after:
# `pg_autoctl run` alone (the keeper rejoins as it was, or as the secondary of a new primary: it rewinds).
#
#   ZFAAS_PG_ROLE      monitor | node
#   ZFAAS_PG_HOSTNAME  the name the other members reach this one by (the stack's service name)
#   ZFAAS_PG_NAME      the node's name in the monitor (node only)
#   ZFAAS_PG_MONITOR   the monitor's host (node only); port 5432
#   ZFAAS_PG_DBNAME    the database a node makes for zfaas (default zfaas)
#   ZFAAS_PG_WAIT_PRIMARY=1  a node that starts only once another is primary (so which node is the first
#                      primary does not depend on which container starts first)
#   ZFAAS_PG_SETTINGS  extra postgresql.conf lines, ';' separated (e.g. "shared_buffers = '128MB'")
#   ZFAAS_PG_HEALTH    the monitor's health-check timings, ms: period,timeout,retries,retry delay,unhealthy,
#                      demote (default 1000,1000,1,500,3000,4000: a failover in seconds; see docs/operations.md)
#
# Access: pg_auto_failover's own entries in pg_hba.conf are skipped (they name hosts, which a container's
# reverse DNS does not answer with); instead every role may connect without a password from the subnets
# of this container's own interfaces (`samenet`): the stack's overlay network, which only the stack's
# containers join, and the host's docker_gwbridge, on which Docker blocks traffic between containers. No
# port is published.
set -euo pipefail
log() { echo "zfaas-pg: $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

ROLE="${ZFAAS_PG_ROLE:?ZFAAS_PG_ROLE must be monitor or node}"
HOSTNAME_="${ZFAAS_PG_HOSTNAME:?ZFAAS_PG_HOSTNAME must name this member as the others reach it}"
DBNAME="${ZFAAS_PG_DBNAME:-zfaas}"
export PGDATA="${PGDATA:-/var/lib/zfaas-pg/data}"
export XDG_CONFIG_HOME="${XDG_CONFIG_HOME:-$HOME/config}" XDG_DATA_HOME="${XDG_DATA_HOME:-$HOME/share}"
PGCTL="$(command -v pg_ctl)"

[ "$(id -u)" != 0 ] || die "runs as the postgres user (PostgreSQL refuses root)"

# Our lines in pg_hba.conf and postgresql.conf, once.
configure() {
  grep -q 'zfaas-pg' "$PGDATA/pg_hba.conf" 2>/dev/null || cat >>"$PGDATA/pg_hba.conf" <<'HBA'
# zfaas-pg: the stack's own network (no port of this service is published)
host all all samenet trust
host replication all samenet trust
HBA
  grep -q 'zfaas-pg' "$PGDATA/postgresql.conf" 2>/dev/null && return 0
  {
    echo "# zfaas-pg"
    echo "shared_buffers = '128MB'"
    echo "listen_addresses = '*'"
    # A client whose machine was lost holds its locks until PostgreSQL notices it is gone: keepalives
    # find such a connection within about 5 s (by default, after two hours), and a transaction left open
    # for 10 s is ended; either way its locks go (a DB service lost mid-transaction held the one row
    # every call's number is taken from, and every other DB service waited behind it).
    echo "tcp_keepalives_idle = 2"
    echo "tcp_keepalives_interval = 1"
    echo "tcp_keepalives_count = 3"
    echo "client_connection_check_interval = '2s'"
    echo "idle_in_transaction_session_timeout = '10s'"
    if [ "$ROLE" = monitor ]; then
      IFS=, read -r period timeout retries delay unhealthy demote <<<"${ZFAAS_PG_HEALTH:-1000,1000,1,500,3000,4000}"
      echo "pgautofailover.health_check_period = $period"
      echo "pgautofailover.health_check_timeout = $timeout"
      echo "pgautofailover.health_check_max_retries = $retries"
      echo "pgautofailover.health_check_retry_delay = $delay"
      echo "pgautofailover.node_considered_unhealthy_timeout = $unhealthy"
      echo "pgautofailover.primary_demote_timeout = $demote"
    fi
    tr ';' '\n' <<<"${ZFAAS_PG_SETTINGS:-}"
  } >>"$PGDATA/postgresql.conf"
}

# Until `psql URL -c SQL` prints something other than nothing (or 120 s).
wait_for() {
  local what="$1" url="$2" sql="$3" end=$((SECONDS + 120)) out
  until out="$(psql -qtAX "$url" -c "$sql" 2>/dev/null)" && [ -n "$out" ]; do
    [ "$SECONDS" -lt "$end" ] || die "timed out waiting for $what"
    sleep 1
  done
}

if [ -f "$PGDATA/PG_VERSION" ] && [ -d "$XDG_CONFIG_HOME/pg_autoctl" ]; then
  log "$ROLE $HOSTNAME_: pg_autoctl run (made before)"
  exec pg_autoctl run --pgdata "$PGDATA"
fi
rm -rf "$PGDATA" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" # a first start that died half way starts again

case "$ROLE" in
  monitor)
    pg_autoctl create monitor --pgctl "$PGCTL" --pgdata "$PGDATA" --pgport 5432 \
      --hostname "$HOSTNAME_" --no-ssl --skip-pg-hba
    ;;
  node)
    name="${ZFAAS_PG_NAME:?ZFAAS_PG_NAME must name the node}"
    monitor="postgres://autoctl_node@${ZFAAS_PG_MONITOR:?ZFAAS_PG_MONITOR must name the monitor host}:5432/pg_auto_failover?sslmode=disable"
    wait_for "the monitor at $ZFAAS_PG_MONITOR" "$monitor" 'SELECT 1'
    if [ "${ZFAAS_PG_WAIT_PRIMARY:-0}" = 1 ]; then
      log "waiting for a primary to copy"
      wait_for "a primary" "$monitor" "SELECT 1 FROM pgautofailover.node WHERE reportedstate IN ('single', 'primary') AND goalstate = reportedstate"
    fi
    pg_autoctl create postgres --pgctl "$PGCTL" --pgdata "$PGDATA" --pgport 5432 --listen '*' \
      --hostname "$HOSTNAME_" --name "$name" --monitor "$monitor" --no-ssl --skip-pg-hba --dbname "$DBNAME"
    # A primary cut off from the monitor and its standby stops taking writes after 2 s, well before the
    # monitor promotes the standby (4 s to demote by default): never two primaries taking writes.
    pg_autoctl config set --pgdata "$PGDATA" timeout.network_partition_timeout 2
    ;;
  *) die "ZFAAS_PG_ROLE must be monitor or node, not '$ROLE'" ;;
esac
configure
log "$ROLE $HOSTNAME_ made: pg_autoctl run"
exec pg_autoctl run --pgdata "$PGDATA"
