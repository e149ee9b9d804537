#!/usr/bin/env bash
# Build zfaas/registry:2 offline: Debian's docker-registry (the registry:2 server) on zfaas/base:bookworm,
# for machines that cannot pull the stock registry:2 image. docker-compose.yml uses it when
# ZFAAS_REGISTRY_IMAGE=zfaas/registry:2. Kept when built from the same files (label zfaas.source).
#   registry/build-image.sh [--force]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGE="${ZFAAS_REGISTRY_IMAGE:-zfaas/registry:2}"
BASE="zfaas/base:bookworm"
log() { echo "registry/build-image: $*"; }
die() { echo "registry/build-image: ERROR: $*" >&2; exit 1; }
docker info >/dev/null 2>&1 || die "no Docker engine answers (run scripts/ensure-docker.sh first)"
docker image inspect "$BASE" >/dev/null 2>&1 || { log "$BASE missing: building it"; bash "$HERE/../runtimes/build-images.sh" node >/dev/null; }
SRC="$( (cd "$HERE" && sha256sum Dockerfile.offline config.yml; docker image inspect -f '{{.Id}}' "$BASE") | sha256sum | cut -c1-16)"
if [ "${1:-}" != "--force" ] && [ "$(docker image inspect -f '{{index .Config.Labels "zfaas.source"}}' "$IMAGE" 2>/dev/null)" = "$SRC" ]; then
  log "$IMAGE is up to date (skip)"; exit 0
fi
t=$(date +%s)
LOG="$(mktemp "${TMPDIR:-/tmp}/zfaas-registry-build.XXXXXX")"
if ! docker build -q --label "zfaas.source=$SRC" -f "$HERE/Dockerfile.offline" -t "$IMAGE" "$HERE" >"$LOG" 2>&1; then
  tail -n 30 "$LOG" >&2; rm -f "$LOG"; die "docker build of $IMAGE failed"
fi
rm -f "$LOG"
log "$IMAGE built in $(( $(date +%s) - t )) s"
