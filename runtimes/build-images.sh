#!/usr/bin/env bash
# Build the built-in zfaas runtime images.
#   runtimes/build-images.sh [--force] [RUNTIME ...]      (default: every runtime folder)
# A runtime folder is runtimes/NAME with a runtime.json and a Dockerfile.offline (docs/runtime-authors.md).
# Images: zfaas/base:bookworm, zfaas/python:latest (+ pythonruntime:latest),
#         zfaas/node:latest (+ noderuntime:latest), zfaas/java:latest (+ javaruntime:latest),
#         zfaas/go:latest (+ goruntime:latest),
#         zfaas/provided:latest (+ providedruntime:latest).
# Offline by default: the base image is a debootstrap of Debian bookworm from the
# mirror apt uses on this machine. ZFAAS_PUBLIC_BASE=1 uses the public Dockerfiles
# (FROM python:3.11-slim / node:20-slim) instead.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BASE_IMAGE="zfaas/base:bookworm"
FORCE=0
TARGETS=()
for a in "$@"; do
  case "$a" in
    --force|-f) FORCE=1 ;;
    -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *)
      if [[ "$a" =~ ^[a-z0-9][a-z0-9_-]*$ ]] && [ -f "$HERE/$a/runtime.json" ] && [ -f "$HERE/$a/Dockerfile.offline" ]; then TARGETS+=("$a")
      else echo "build-images: unknown argument '$a' (usage: $0 [--force] [RUNTIME ...], a RUNTIME being a folder of $HERE with runtime.json and Dockerfile.offline)" >&2; exit 64; fi ;;
  esac
done
if [ ${#TARGETS[@]} -eq 0 ]; then
  for f in "$HERE"/*/runtime.json; do
    d="$(basename "$(dirname "$f")")"
    [ -f "$HERE/$d/Dockerfile.offline" ] && TARGETS+=("$d")
  done
fi
export PATH="$PATH:/usr/sbin:/sbin"

log() { echo "build-images: $*"; }
die() { echo "build-images: ERROR: $*" >&2; exit 1; }
# Runs "$@" with its output in OUT and, while it runs, says every 15 s that WHAT is still going (a step
# can take minutes).
with_progress() {
  local what="$1" out="$2" t; shift 2; t="$(now)"
  "$@" >"$out" 2>&1 & local pid=$!
  while ! wait_for "$pid" 15; do log "$what: still working ($(since "$t"))"; done
  wait "$pid"
}
# True once pid has exited within SECONDS; false if it still runs then.
wait_for() { local i; for ((i = 0; i < $2 * 2; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.5; done; ! kill -0 "$1" 2>/dev/null; }
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f s", e - s }'; }

docker info >/dev/null 2>&1 || die "no Docker engine answers (run scripts/ensure-docker.sh first)"

WORK=""
cleanup() {
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then rm -rf --one-file-system "$WORK" 2>/dev/null || true; fi
}
trap cleanup EXIT INT TERM

# The Debian mirror apt uses here (first one serving the plain "bookworm" suite).
debian_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri="$(awk '
      function flush() { if (uri != "" && suites ~ /(^| )bookworm( |$)/ && uri ~ /^https?:\/\//) { print uri; found=1; exit } uri=""; suites="" }
      /^[[:space:]]*$/ { flush(); next }
      /^URIs:/ { uri=$2 }
      /^Suites:/ { $1=""; suites=$0 " " }
      END { if (!found) flush() }' "$f")"
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri="$(awk '$1=="deb" { i=2; if ($2 ~ /^\[/) { while (i<=NF && $i !~ /\]$/) i++; i++ } if ($(i+1)=="bookworm" && $i ~ /^https?:\/\//) { print $i; exit } }' "$f")"
    [ -n "$uri" ] && { echo "$uri"; return; }
  done
  echo "http://deb.debian.org/debian"
}

build_base() {
  if image_exists "$BASE_IMAGE" && [ "$FORCE" = 0 ]; then
    log "$BASE_IMAGE exists (skip)"; return
  fi
  local t; t="$(now)"
  if timeout 20 docker pull -q debian:bookworm-slim >/dev/null 2>&1; then
    docker tag debian:bookworm-slim "$BASE_IMAGE"
    log "$BASE_IMAGE tagged from pulled debian:bookworm-slim ($(since "$t"))"
    return
  fi
  log "cannot pull debian:bookworm-slim; building $BASE_IMAGE offline with debootstrap"
  if ! command -v debootstrap >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "debootstrap is missing (apt-get install debootstrap)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
      || die "could not install debootstrap"
  fi
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"
  local mirror; mirror="$(debian_mirror)"
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/zfaas-base.XXXXXX")"
  local root="$WORK/rootfs"
  log "debootstrap --variant=minbase bookworm from $mirror"
  if ! with_progress "debootstrap" "$WORK/debootstrap.log" debootstrap --variant=minbase bookworm "$root" "$mirror"; then
    tail -n 30 "$WORK/debootstrap.log" >&2
    die "debootstrap failed"
  fi
  log "debootstrap done ($(since "$t"))"
  # smaller image: no apt caches, no man pages
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/man/* "$root"/usr/share/doc/* 2>/dev/null || true
  tar -C "$root" --numeric-owner -c . | docker import \
      -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      -c 'ENV LANG=C.UTF-8' \
      -c 'CMD ["/bin/bash"]' \
      - "$BASE_IMAGE" >/dev/null || die "docker import failed"
  cleanup; WORK=""
  log "$BASE_IMAGE built offline ($(since "$t"))"
}

# A hash of what goes into a runtime image (Dockerfiles, loader): an image built from other sources
# (an older loader) is rebuilt, so the loader protocol in the image always matches the code. Every file
# of the folder counts, but where the folder has src/ (modules built into the one loader file its image
# copies): there only the top-level files do.
source_hash() {
  local depth=()
  [ -d "$HERE/$1/src" ] && depth=(-maxdepth 1)
  (cd "$HERE/$1" && find . "${depth[@]}" -type f ! -name '*.md' | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16
}

build_runtime() {
  local rt="$1" image="zfaas/$1:latest" alias="$1runtime:latest" dockerfile src
  src="$(source_hash "$rt")"
  if image_exists "$image" && [ "$FORCE" = 0 ]; then
    if [ "$(docker image inspect -f '{{index .Config.Labels "zfaas.source"}}' "$image" 2>/dev/null)" = "$src" ]; then
      image_exists "$alias" || docker tag "$image" "$alias"
      log "$image exists (skip)"; return
    fi
    log "$image was built from other sources: rebuilding"
  fi
  if [ "${ZFAAS_PUBLIC_BASE:-0}" = 1 ]; then
    dockerfile="$HERE/$rt/Dockerfile"
  else
    build_base
    dockerfile="$HERE/$rt/Dockerfile.offline"
  fi
  local t; t="$(now)"
  log "building $image from ${dockerfile#"$HERE"/}"
  if ! with_progress "building $image" "${TMPDIR:-/tmp}/zfaas-build-$rt.log" \
      docker build -q --label "zfaas.source=$src" -f "$dockerfile" -t "$image" -t "$alias" "$HERE/$rt"; then
    tail -n 40 "${TMPDIR:-/tmp}/zfaas-build-$rt.log" >&2
    die "docker build of $image failed"
  fi
  rm -f "${TMPDIR:-/tmp}/zfaas-build-$rt.log"
  log "$image (also $alias) built ($(since "$t"))"
}

T0="$(now)"
# The loader of container-image functions, a static binary the nodes mount into their containers.
bash "$HERE/image/build-bridge.sh" || log "zfaas-bridge not built (image functions need it): is go installed? (scripts/ensure-go.sh)"
for rt in "${TARGETS[@]}"; do build_runtime "$rt"; done
log "done in $(since "$T0"): $(for rt in "${TARGETS[@]}"; do docker image inspect -f "zfaas/$rt:latest {{.Size}}" "zfaas/$rt:latest" | awk '{printf "%s %.0f MB; ", $1, $2/1e6}'; done)"
