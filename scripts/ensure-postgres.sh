#!/usr/bin/env bash
# Make sure PostgreSQL's server programs exist for the tests of the PostgreSQL store (test/helpers/postgres.ts
# starts a throwaway cluster of its own with them; no server is left running). Installs Debian's
# `postgresql` as root when initdb is missing, and keeps the cluster Debian makes from starting. Idempotent.
set -euo pipefail

log() { echo "ensure-postgres: $*"; }
found() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }

if found; then
  log "postgresql present ($(ls -d /usr/lib/postgresql/*/bin/initdb | tail -1))"
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-postgres: ERROR: PostgreSQL's initdb is missing and cannot be installed (not root or no apt-get): install postgresql" >&2
  exit 1
fi
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
# The tests need the programs, not a service: no cluster is made or started by the package.
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/zfaas-no-main.conf
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq --no-install-recommends postgresql; } >"$out" 2>&1; then
  cat "$out" >&2
  echo "ensure-postgres: ERROR: apt-get install postgresql failed" >&2
  exit 1
fi
found || { echo "ensure-postgres: ERROR: postgresql installed but no initdb under /usr/lib/postgresql" >&2; exit 1; }
log "installed $(ls -d /usr/lib/postgresql/*/bin/initdb | tail -1)"
