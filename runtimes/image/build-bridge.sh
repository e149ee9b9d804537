#!/usr/bin/env bash
# Builds zfaas-bridge, the loader of container-image functions (runtimes/image/bridge), into
# runtimes/image/bin/zfaas-bridge: a static binary (Go's standard library only, CGO off) that runs in any
# image, since the node mounts it into the function's container. Needs `go` (scripts/ensure-go.sh).
# Rebuilt only when a source is newer than the binary.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/bin/zfaas-bridge"
if [ -x "$out" ] && [ -z "$(find "$here/bridge" -newer "$out" -type f | head -1)" ]; then exit 0; fi
command -v go >/dev/null || { echo "build-bridge: go is missing (bash scripts/ensure-go.sh)" >&2; exit 1; }
mkdir -p "$here/bin"
cd "$here/bridge"
CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags='-s -w' -o "$out.tmp" . && mv "$out.tmp" "$out"
echo "build-bridge: built $out ($(stat -c %s "$out") bytes)"
