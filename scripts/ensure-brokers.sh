#!/usr/bin/env bash
# Message brokers the trigger tests run against (test/triggers-*.e2e.test.ts): Debian's nats-server,
# mosquitto (+ mosquitto-clients), rabbitmq-server and redis-server. Installed with apt-get when root and
# missing, without starting the system services (the tests start their own servers on loopback ports
# they pick, and stop them by pid). Otherwise a warning: the tests then say why they are skipped. Idempotent.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

log() { echo "ensure-brokers: $*"; }

missing=()
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
command -v mosquitto >/dev/null 2>&1 || missing+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || missing+=(mosquitto-clients)
command -v rabbitmq-server >/dev/null 2>&1 || missing+=(rabbitmq-server)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)

if [ ${#missing[@]} -eq 0 ]; then
  log "nats-server, mosquitto, rabbitmq-server and redis-server present"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "warning: missing ${missing[*]} and cannot apt-get install them (not root or no apt): the trigger tests will be skipped"
  exit 0
fi
log "installing ${missing[*]}"
apt-get update -qq >/dev/null
# policy-rc.d keeps the packages from starting system-wide brokers on their default ports.
rcd=/usr/sbin/policy-rc.d
made_rcd=0
if [ ! -e "$rcd" ]; then printf '#!/bin/sh\nexit 101\n' >"$rcd" && chmod +x "$rcd" && made_rcd=1; fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
  [ "$made_rcd" = 1 ] && rm -f "$rcd"
  echo "ensure-brokers: ERROR: apt-get install ${missing[*]} failed" >&2
  exit 1
}
[ "$made_rcd" = 1 ] && rm -f "$rcd"
log "installed ${missing[*]}"
