#!/usr/bin/env bash
# Build the zfaas application image (Dockerfile at the root): db, api and instance in one image.
#   scripts/build-app-image.sh [--force] [--registry-image]
# Image: $ZFAAS_IMAGE (default zfaas/zfaas:latest). Offline by default: FROM zfaas/base:bookworm (built by
# runtimes/build-images.sh when missing) with this host's node binary; ZFAAS_PUBLIC_BASE=1 builds FROM
# node:20-bookworm-slim instead. Needs `npm ci` and `npm run build` done (it builds dist/ when missing).
# The context is staged in a temp folder: dist/, runtimes/, package files and the production
# node_modules (a pruned copy of ./node_modules: no network needed). An image built from the same
# inputs is kept (label zfaas.source). --registry-image also builds the offline registry image
# (registry/build-image.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGE="${ZFAAS_IMAGE:-zfaas/zfaas:latest}"
FORCE=0
REGISTRY=0
for a in "$@"; do
  case "$a" in
    --force|-f) FORCE=1 ;;
    --registry-image) REGISTRY=1 ;;
    -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "build-app-image: unknown argument '$a'" >&2; exit 64 ;;
  esac
done
export PATH="$PATH:/usr/sbin:/sbin"
log() { echo "build-app-image: $*"; }
die() { echo "build-app-image: ERROR: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f s", e - s }'; }
T0="$(now)"

docker info >/dev/null 2>&1 || die "no Docker engine answers (run scripts/ensure-docker.sh first)"
cd "$ROOT"
[ -d node_modules ] || die "node_modules missing: run npm ci first"
[ -f dist/cli/main.js ] || { log "dist/ missing: npm run build"; npm run --silent build; }

if [ "${ZFAAS_PUBLIC_BASE:-0}" = 1 ]; then
  BASE="node:20-bookworm-slim"
else
  BASE="zfaas/base:bookworm"
  docker image inspect "$BASE" >/dev/null 2>&1 || { log "$BASE missing: building it"; bash "$ROOT/runtimes/build-images.sh" node >/dev/null; }
  NODE_BIN="$(readlink -f "$(command -v node)")"
  "$NODE_BIN" -e 'process.exit(process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || die "this host's node is older than 20"
fi

# zfaas-bridge (runtimes/image/bin), which instances give image functions' containers, goes in with runtimes/.
bash "$ROOT/runtimes/image/build-bridge.sh" || log "zfaas-bridge not built (no go?): image functions will not run in this image"

# What goes into the image: when none of it changed, the existing image is kept.
source_hash() {
  {
    echo "base=$BASE"
    [ -n "${NODE_BIN:-}" ] && sha256sum "$NODE_BIN"
    sha256sum Dockerfile package.json package-lock.json
    find dist runtimes -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
}
SRC="$(source_hash)"
if [ "$FORCE" = 0 ] && [ "$(docker image inspect -f '{{index .Config.Labels "zfaas.source"}}' "$IMAGE" 2>/dev/null)" = "$SRC" ]; then
  log "$IMAGE is up to date (skip)"
else
  CTX="$(mktemp -d "${TMPDIR:-/tmp}/zfaas-app-ctx.XXXXXX")"
  trap 'rm -rf --one-file-system "$CTX"' EXIT INT TERM
  mkdir -p "$CTX/bin"
  cp Dockerfile package.json package-lock.json "$CTX/"
  cp -a dist runtimes "$CTX/"
  cp -a node_modules "$CTX/node_modules"
  (cd "$CTX" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null) || die "npm prune --omit=dev failed"
  [ -n "${NODE_BIN:-}" ] && cp "$NODE_BIN" "$CTX/bin/node"
  log "building $IMAGE FROM $BASE (context $(du -sh "$CTX" | cut -f1))"
  t="$(now)"
  if ! docker build -q --build-arg "BASE_IMAGE=$BASE" --label "zfaas.source=$SRC" -t "$IMAGE" "$CTX" >"$CTX/build.log" 2>&1; then
    tail -n 40 "$CTX/build.log" >&2
    die "docker build of $IMAGE failed"
  fi
  log "$IMAGE built ($(since "$t"), $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
fi

[ "$REGISTRY" = 1 ] && bash "$ROOT/registry/build-image.sh"
log "done in $(since "$T0")"
