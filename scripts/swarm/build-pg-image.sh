#!/usr/bin/env bash
# Build zfaas/pg-ha:15 (scripts/swarm/pg/Dockerfile): PostgreSQL 15 with pg_auto_failover, the database of
# the stack without a single point of failure (docker-compose.ha.yml). Offline like the other images: FROM
# zfaas/base:bookworm (runtimes/build-images.sh builds it when missing), Debian's packages from the mirror
# apt uses. An image built from the same files is kept (label zfaas.source).
#   scripts/swarm/build-pg-image.sh [--force]          image: $ZFAAS_PG_IMAGE (default zfaas/pg-ha:15)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
IMAGE="${ZFAAS_PG_IMAGE:-zfaas/pg-ha:15}"
FORCE=0
for a in "$@"; do
  case "$a" in
    --force | -f) FORCE=1 ;;
    -h | --help) sed -n '2,6p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "build-pg-image: unknown argument '$a'" >&2; exit 64 ;;
  esac
done
log() { echo "build-pg-image: $*"; }
die() { echo "build-pg-image: ERROR: $*" >&2; exit 1; }

docker info >/dev/null 2>&1 || die "no Docker engine answers (run scripts/ensure-docker.sh first)"
docker image inspect zfaas/base:bookworm >/dev/null 2>&1 || { log "zfaas/base:bookworm missing: building it"; bash "$ROOT/runtimes/build-images.sh" node >/dev/null; }
SRC="$(cat "$HERE/pg/Dockerfile" "$HERE/pg/entrypoint.sh" | sha256sum | cut -c1-16)"
if [ "$FORCE" = 0 ] && [ "$(docker image inspect -f '{{index .Config.Labels "zfaas.source"}}' "$IMAGE" 2>/dev/null)" = "$SRC" ]; then
  log "$IMAGE is up to date (skip)"
  exit 0
fi
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
if ! docker build -q --label "zfaas.source=$SRC" -t "$IMAGE" "$HERE/pg" >"$out" 2>&1; then
  tail -n 40 "$out" >&2
  die "docker build of $IMAGE failed"
fi
log "$IMAGE built"
