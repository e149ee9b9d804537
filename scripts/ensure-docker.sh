#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine (and that debootstrap,
# needed by the offline image builds, is installed). Idempotent.
set -euo pipefail

log() { echo "ensure-docker: $*"; }
die() { echo "ensure-docker: ERROR: $*" >&2; exit 1; }

is_root() { [ "$(id -u)" = "0" ]; }
apt_updated=0
apt_install() {
  is_root || die "need root to apt-get install $*"
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
  if [ "$apt_updated" = 0 ]; then apt-get update -qq >/dev/null || die "apt-get update failed"; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null || die "apt-get install $* failed"
}

# debootstrap (image builds need it when no public base image can be pulled)
if ! command -v debootstrap >/dev/null 2>&1 && [ ! -x /usr/sbin/debootstrap ]; then
  if is_root; then
    apt_install debootstrap
    log "installed debootstrap"
  else
    log "warning: debootstrap missing and not root; offline image builds will fail"
  fi
fi

if docker info >/dev/null 2>&1; then
  log "docker engine already running"
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1 && [ ! -x /usr/sbin/dockerd ] && [ ! -x /usr/bin/dockerd ]; then
  is_root || die "dockerd is not installed and we are not root (run: apt-get install docker.io)"
  apt_install docker.io
  log "installed docker.io"
fi
export PATH="$PATH:/usr/sbin:/sbin"

# the client may exist but the engine may just be starting: give it a moment first
if pgrep -x dockerd >/dev/null 2>&1; then
  for _ in $(seq 1 20); do docker info >/dev/null 2>&1 && { log "docker engine already running"; exit 0; }; sleep 0.5; done
  die "a dockerd process exists but 'docker info' does not answer"
fi

is_root || die "docker engine not running and we are not root (cannot start dockerd)"
LOG="${ZFAAS_DOCKERD_LOG:-/var/log/zfaas-dockerd.log}"
mkdir -p "$(dirname "$LOG")"
nohup dockerd >>"$LOG" 2>&1 </dev/null &
pid=$!
for i in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then
    log "started dockerd (pid $pid, log $LOG) in $((i / 2)) s"
    exit 0
  fi
  kill -0 "$pid" 2>/dev/null || { tail -n 20 "$LOG" >&2 || true; die "dockerd exited; see $LOG"; }
  sleep 0.5
done
tail -n 20 "$LOG" >&2 || true
die "dockerd did not answer 'docker info' within 60 s; see $LOG"
