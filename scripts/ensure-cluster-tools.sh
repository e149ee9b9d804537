#!/usr/bin/env bash
# Tools the multi-host and compose tests need (test/cluster.e2e.test.ts, test/compose.e2e.test.ts):
#   ip (iproute2: network namespaces, veth, bridge), nsenter (util-linux), docker-compose (Debian's 1.29)
#   and docker-registry (Debian's build of the registry:2 server). Installed with apt-get when root and
#   missing; otherwise a warning (the tests then say why they are skipped). Idempotent.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

log() { echo "ensure-cluster-tools: $*"; }

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)

if [ ${#missing[@]} -eq 0 ]; then
  log "ip, nsenter, docker-compose and docker-registry present"
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "warning: missing ${missing[*]} and cannot apt-get install them (not root or no apt): the cluster and compose tests will be skipped"
  exit 0
fi
log "installing ${missing[*]}"
apt-get update -qq >/dev/null
# policy-rc.d keeps the docker-registry package from starting a system registry on port 5000.
rcd=/usr/sbin/policy-rc.d
made_rcd=0
if [ ! -e "$rcd" ]; then printf '#!/bin/sh\nexit 101\n' >"$rcd" && chmod +x "$rcd" && made_rcd=1; fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
  [ "$made_rcd" = 1 ] && rm -f "$rcd"
  echo "ensure-cluster-tools: ERROR: apt-get install ${missing[*]} failed" >&2
  exit 1
}
[ "$made_rcd" = 1 ] && rm -f "$rcd"
log "installed ${missing[*]}"
