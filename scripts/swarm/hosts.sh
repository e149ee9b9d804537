#!/usr/bin/env bash
# Three Docker hosts on this one machine, joined in a Docker Swarm, to deploy docker-compose.yml as a real
# multi-host stack without three machines (test/swarm.e2e.test.ts does; the README's "Three real machines
# with Swarm" is the same recipe on real hosts; test/swarm-ha.e2e.test.ts deploys docker-compose.ha.yml).
# Needs root, iproute2 (ip), util-linux (nsenter, unshare) and dockerd; no kernel module is loaded.
#
#   hosts.sh up PREFIX                  hosts PREFIX-a (the manager), PREFIX-b, PREFIX-c; the swarm; images
#                                       (ZFAAS_SWARM_MANAGERS=3: b and c join as managers too)
#   hosts.sh down PREFIX                remove everything `up` made (idempotent; also after a half-failed up)
#   hosts.sh docker PREFIX HOST ARG...  the docker CLI against HOST's engine (HOST: a, b or c)
#   hosts.sh env PREFIX HOST            export DOCKER_HOST=... of HOST's engine: eval "$(hosts.sh env p a)"
#   hosts.sh exec PREFIX HOST CMD...    CMD inside HOST: its network, its /run, its hostname
#   hosts.sh load PREFIX HOST|all IMAGE...   copy images from this machine's engine (docker save | load)
#   hosts.sh crash PREFIX HOST          kill -9 HOST's dockerd, containerd, shims and containers at once
#   hosts.sh start PREFIX HOST          (re)start HOST's dockerd; a swarm member rejoins by itself
#
# A host is a network namespace PREFIX-X whose eth0 ($ZFAAS_SWARM_SUBNET.N/24, default 10.214.0.1-3) is a
# veth into a bridge in a fourth namespace, PREFIX-sw (the switch). Its dockerd runs there under
# `unshare --mount --uts`: its own hostname (PREFIX-X) and its own /run (STATE/X/run bound over /run), so
# /var/run/docker.sock, containerd's sockets and all a daemon keeps in /run are the host's own, as on a real
# machine, and its mounts (overlay layers, network namespaces) live and die with it. Each engine has its
# own data root (STATE/X/root), a config file with only its containers' DNS server (below), containers
# under the cgroup /PREFIX-X, no default bridge and no iptables rules (published ports are served by
# docker-proxy). The swarm: PREFIX-a inits it
# (--advertise-addr, overlay subnets from $ZFAAS_SWARM_POOL, default 10.232.0.0/16), b and c join as
# workers, or as managers with ZFAAS_SWARM_MANAGERS=3 (a swarm whose one manager is lost cannot change:
# three keep a quorum of two when any one host is lost). `up` loads $ZFAAS_IMAGE (zfaas/zfaas:latest) into
# every host and $ZFAAS_REGISTRY_IMAGE (registry:2; set empty: none) into host a. Nothing is added to this
# machine's own namespace (no interface, route or iptables rule) and traffic between hosts crosses only
# their veths. State: $ZFAAS_SWARM_STATE/PREFIX
# (default /tmp/PREFIX), a tmpfs when 8 GB of memory are available ($ZFAAS_SWARM_TMPFS: auto, 1 or 0).
# `down` finds everything again from PREFIX alone: the processes in the hosts' network namespaces and
# their descendants (each dockerd by its pid file first), the cgroups /PREFIX-X, the namespaces, the
# state folder (and its tmpfs).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

HOSTS=(a b c)
SUBNET="${ZFAAS_SWARM_SUBNET:-10.214.0}"
POOL="${ZFAAS_SWARM_POOL:-10.232.0.0/16}"
APP_IMAGE="${ZFAAS_IMAGE:-zfaas/zfaas:latest}"
REGISTRY_IMAGE="${ZFAAS_REGISTRY_IMAGE-registry:2}" # set and empty: none (docker-compose.ha.yml has no registry)

log() { echo "hosts.sh: $*" >&2; }
die() {
  echo "hosts.sh: ERROR: $*" >&2
  exit 1
}
now() { date +%s.%N; }
since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f s", e - s }'; }
usage() {
  sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 64
}

CMD="${1:-}"
PREFIX="${2:-}"
[ -n "$CMD" ] && [ -n "$PREFIX" ] || usage
[[ "$PREFIX" =~ ^[a-z][a-z0-9-]{0,30}$ ]] || die "PREFIX must be lower case letters, digits and '-' (at most 31), not '$PREFIX'"
shift 2
STATE="${ZFAAS_SWARM_STATE:-/tmp}/$PREFIX"

ns() { echo "$PREFIX-$1"; }
addr() {
  local i
  for i in "${!HOSTS[@]}"; do [ "${HOSTS[$i]}" = "$1" ] && { echo "$SUBNET.$((i + 1))"; return; }; done
  die "no host '$1' (a, b or c)"
}
sock() { echo "$STATE/$1/run/docker.sock"; }
dk() {
  local h="$1"
  shift
  docker -H "unix://$(sock "$h")" "$@"
}
ns_exists() { [ -e "/var/run/netns/$1" ]; }
alive() { kill -0 "$1" 2>/dev/null; }
# The pid of HOST's dockerd, if it runs (its pid file, checked against the process and its network).
dockerd_pid() {
  local p
  p="$(cat "$STATE/$1/run/docker.pid" 2>/dev/null || true)"
  [ -n "$p" ] && alive "$p" && grep -q dockerd "/proc/$p/cmdline" 2>/dev/null &&
    [ "$(stat -L -c %i "/proc/$p/ns/net" 2>/dev/null)" = "$(stat -L -c %i "/var/run/netns/$(ns "$1")" 2>/dev/null)" ] && echo "$p"
}

# Every process of a host: those in its network namespace (dockerd, containerd, containerd-shims,
# docker-proxy, anything started there) and all their descendants (containers run in namespaces of their
# own, under their shims). Never this script itself.
host_pids() {
  local n roots
  n="$(ns "$1")"
  ns_exists "$n" || return 0
  roots="$(ip netns pids "$n" 2>/dev/null | tr '\n' ' ')"
  [ -n "${roots// /}" ] || return 0
  ps -eo pid=,ppid= | awk -v roots="$roots" -v self="$$" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1 }
    { parent[$1] = $2; pids[NR] = $1 }
    END {
      do { grew = 0; for (i in pids) { p = pids[i]; if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; grew = 1 } } } while (grew)
      for (p in keep) if (p != self) print p
    }'
}

# kill -9 of everything on a host, at once, until nothing is left (a crash of the whole machine).
crash() {
  local h="$1" round pids
  for round in $(seq 1 20); do
    pids="$(host_pids "$h" | tr '\n' ' ')"
    [ -z "${pids// /}" ] && return 0
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    sleep 0.2
  done
  log "processes of host $h still alive after kill -9: $(host_pids "$h" | tr '\n' ' ')"
  return 1
}

wait_engine() {
  local h="$1" pid="$2" end=$((SECONDS + 60))
  until dk "$h" version >/dev/null 2>&1; do
    if ! alive "$pid" || [ "$SECONDS" -gt "$end" ]; then
      tail -n 30 "$STATE/$h/dockerd.log" >&2 || true
      die "dockerd of host $h did not start (log: $STATE/$h/dockerd.log)"
    fi
    sleep 0.2
  done
}

# A DNS server on HOST's address, port 53, in its network namespace, answering every query NXDOMAIN (its
# question copied back): the resolver of the host's containers (daemon.json's dns). It is one of the host's
# processes: a crash ends it, `start` starts it again.
nxdomain() {
  local h="$1"
  command -v node >/dev/null || { log "no node here: host $h's containers get no DNS answer for unknown names (each waits)"; return 0; }
  nsenter --net="/var/run/netns/$(ns "$h")" -- setsid node -e '
    const s = require("dgram").createSocket("udp4");
    s.on("message", (m, from) => {
      let end = 12;
      while (end < m.length && m[end] !== 0) end += m[end] + 1;
      if (m.length < 12 || end + 5 > m.length) return;
      const a = Buffer.from(m.subarray(0, end + 5));
      a[2] = 0x80 | (m[2] & 0x01); a[3] = 0x83; // an answer, recursion as asked, available; NXDOMAIN
      a.writeUInt16BE(1, 4); a.writeUInt16BE(0, 6); a.writeUInt16BE(0, 8); a.writeUInt16BE(0, 10);
      s.send(a, from.port, from.address);
    });
    s.bind(53, process.argv[1]);' "$(addr "$h")" >>"$STATE/$h/nxdomain.log" 2>&1 </dev/null &
}

# Starts HOST's dockerd in the background; STARTED is the pid of the process that becomes dockerd.
start_dockerd() {
  local h="$1" d="$STATE/$1" n
  n="$(ns "$h")"
  ns_exists "$n" || die "host $h does not exist (hosts.sh up $PREFIX first)"
  [ -z "$(dockerd_pid "$h")" ] || die "the dockerd of host $h already runs"
  mkdir -p "$d/run" "$d/root"
  # Containers' DNS beyond the swarm's own names: a resolver on the host's own address that answers
  # NXDOMAIN to everything at once (nxdomain(), below), as a LAN's resolver answers for a name it does not
  # know, e.g. a service whose one task was on a lost host. This machine's resolver is out of the hosts'
  # reach: asked there, each such lookup would wait 20 s, and libzmq resolves a peer's name in its I/O
  # thread, stalling every link of the process meanwhile.
  [ -f "$d/daemon.json" ] || echo "{\"dns\": [\"$(addr "$h")\"]}" >"$d/daemon.json"
  nxdomain "$h"
  rm -f "$d/run/docker.pid" # a crashed daemon's: its process is gone (checked above)
  # nsenter, unshare and sh each exec the next: the background job's pid is dockerd's.
  nsenter --net="/var/run/netns/$n" -- unshare --mount --uts --propagation slave -- \
    sh -c 'hostname "$0" && mount --bind "$1" /run && shift && exec setsid "$@"' "$n" "$d/run" \
    dockerd --config-file "$d/daemon.json" --data-root "$d/root" --exec-root /run/docker \
    --pidfile /run/docker.pid -H unix:///run/docker.sock --cgroup-parent "/$n" \
    --bridge none --iptables=false --ip-masq=false --log-level warn \
    >>"$d/dockerd.log" 2>&1 </dev/null &
  STARTED=$!
}

# docker save once, docker load into each target engine in parallel.
load() {
  local target="$1" t tar hosts=() pids=() i
  shift
  [ $# -gt 0 ] || die "load: which images?"
  if [ "$target" = all ]; then hosts=("${HOSTS[@]}"); else addr "$target" >/dev/null && hosts=("$target"); fi
  for i in "$@"; do docker image inspect "$i" >/dev/null 2>&1 || die "image $i is not on this machine's engine (scripts/build-app-image.sh --registry-image builds zfaas/zfaas:latest and zfaas/registry:2)"; done
  t="$(now)"
  tar="$(mktemp --suffix=.tar "$STATE/images.XXXXXX")"
  docker save -o "$tar" "$@"
  for i in "${hosts[@]}"; do
    dk "$i" load -q -i "$tar" >/dev/null &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || { rm -f "$tar"; die "docker load into host ${hosts[$i]} failed"; }; done
  rm -f "$tar"
  log "loaded $* into ${hosts[*]} ($(since "$t"))"
}

up() {
  local t0 h n port pids=() token ready end i
  t0="$(now)"
  for h in "${HOSTS[@]}" sw; do ns_exists "$(ns "$h")" && die "namespace $(ns "$h") exists: hosts.sh down $PREFIX first"; done
  [ -e "$STATE" ] && die "$STATE exists: hosts.sh down $PREFIX first"
  command -v dockerd >/dev/null || die "dockerd is not installed"
  for i in "$APP_IMAGE" ${REGISTRY_IMAGE:+"$REGISTRY_IMAGE"}; do
    docker image inspect "$i" >/dev/null 2>&1 || die "image $i is not on this machine's engine (scripts/build-app-image.sh --registry-image builds zfaas/zfaas:latest and zfaas/registry:2; ZFAAS_IMAGE, ZFAAS_REGISTRY_IMAGE choose others)"
  done
  mkdir -p "$STATE"
  # On a tmpfs when memory allows (the hosts' images and layers take 2-3 GB): loads, pulls and down are
  # several times faster than on disk.
  local tmpfs="${ZFAAS_SWARM_TMPFS:-auto}" avail
  if [ "$tmpfs" = auto ]; then
    avail="$(awk '/^MemAvailable:/ { print int($2 / 1048576) }' /proc/meminfo)"
    [ "${avail:-0}" -ge 8 ] && tmpfs=1 || tmpfs=0
  fi
  if [ "$tmpfs" = 1 ]; then mount -t tmpfs -o mode=0700 "$PREFIX" "$STATE"; fi
  log "if this fails half way: hosts.sh down $PREFIX"

  # The switch: a bridge in a namespace of its own.
  ip netns add "$(ns sw)"
  ip -n "$(ns sw)" link set lo up
  ip -n "$(ns sw)" link add br0 type bridge
  ip -n "$(ns sw)" link set br0 up
  for h in "${HOSTS[@]}"; do
    n="$(ns "$h")"
    port="port-$h"
    ip netns add "$n"
    ip -n "$n" link set lo up
    # Made inside the host's namespace with its peer put straight into the switch's: nothing ever
    # appears in this machine's own namespace.
    ip -n "$n" link add eth0 type veth peer name "$port" netns "$(ns sw)"
    ip -n "$(ns sw)" link set "$port" master br0
    ip -n "$(ns sw)" link set "$port" up
    ip -n "$n" addr add "$(addr "$h")/24" dev eth0
    ip -n "$n" link set eth0 up
  done

  for h in "${HOSTS[@]}"; do
    start_dockerd "$h"
    pids+=("$STARTED")
  done
  for i in "${!HOSTS[@]}"; do wait_engine "${HOSTS[$i]}" "${pids[$i]}"; done
  log "3 engines up ($(since "$t0"))"

  dk a swarm init --advertise-addr "$(addr a)" --listen-addr "$(addr a):2377" \
    --default-addr-pool "$POOL" --default-addr-pool-mask-length 24 >/dev/null
  local role=worker
  case "${ZFAAS_SWARM_MANAGERS:-1}" in
    1) ;;
    3) role=manager ;;
    *) die "ZFAAS_SWARM_MANAGERS must be 1 or 3, not '$ZFAAS_SWARM_MANAGERS'" ;;
  esac
  token="$(dk a swarm join-token -q "$role")"
  for h in b c; do
    dk "$h" swarm join --token "$token" --advertise-addr "$(addr "$h")" --listen-addr "$(addr "$h"):2377" "$(addr a):2377" >/dev/null
  done
  end=$((SECONDS + 60))
  until ready="$(dk a node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$')" && [ "$ready" = 3 ]; do
    [ "$SECONDS" -gt "$end" ] && die "the swarm's nodes are not all Ready: $(dk a node ls 2>&1)"
    sleep 0.2
  done
  log "swarm of 3 nodes Ready, b and c ${role}s ($(since "$t0"))"

  load all "$APP_IMAGE"
  [ -z "$REGISTRY_IMAGE" ] || load a "$REGISTRY_IMAGE"
  for h in "${HOSTS[@]}"; do
    log "host $h: $(ns "$h") $(addr "$h")$([ "$h" = a ] || [ "$role" = manager ] && echo ' (manager)') DOCKER_HOST=unix://$(sock "$h")"
  done
  log "up in $(since "$t0")"
}

down() {
  local h n p d end t0 any=0 pids=()
  t0="$(now)"
  # Each dockerd by its own pid: SIGTERM, all at once, a few seconds to stop; then kill -9 of what is left
  # on each host (containerd, shims, containers, docker-proxy, anything started there).
  for h in "${HOSTS[@]}"; do
    ns_exists "$(ns "$h")" || continue
    any=1
    p="$(dockerd_pid "$h" || true)"
    [ -n "$p" ] && kill -TERM "$p" 2>/dev/null && pids+=("$p")
  done
  end=$((SECONDS + ${ZFAAS_SWARM_STOP_S:-10}))
  for p in "${pids[@]}"; do
    while alive "$p" && [ "$SECONDS" -lt "$end" ]; do sleep 0.2; done
  done
  for h in "${HOSTS[@]}"; do crash "$h" || true; done
  [ "$any" = 1 ] && log "down: processes ended ($(since "$t0"))"
  # The containers' cgroups (--cgroup-parent /PREFIX-X), in every hierarchy (v1) or the one (v2).
  for h in "${HOSTS[@]}"; do
    for d in /sys/fs/cgroup/*/"$(ns "$h")" /sys/fs/cgroup/"$(ns "$h")"; do
      [ -d "$d" ] || continue
      any=1
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || log "could not remove cgroup $d"
    done
  done
  for h in "${HOSTS[@]}" sw; do
    n="$(ns "$h")"
    ns_exists "$n" || continue
    any=1
    ip netns del "$n" # its veth end goes with it, and the peer in the switch with that
  done
  [ "$any" = 1 ] && log "down: cgroups and namespaces removed ($(since "$t0"))"
  if [ -e "$STATE" ]; then
    any=1
    # Mounts of the hosts lived in their own mount namespaces; one made here by hand would be found here.
    awk -v s="$STATE" '$5 == s || index($5, s "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$STATE"
  fi
  [ "$any" = 1 ] && log "down: hosts of $PREFIX removed ($(since "$t0"))" || log "down: nothing of $PREFIX to remove"
}

case "$CMD" in
  up) up ;;
  down) down ;;
  docker)
    [ $# -ge 1 ] || usage
    h="$1"
    shift
    addr "$h" >/dev/null
    dk "$h" "$@"
    ;;
  env)
    [ $# -eq 1 ] || usage
    addr "$1" >/dev/null
    echo "export DOCKER_HOST=unix://$(sock "$1")"
    ;;
  exec)
    [ $# -ge 2 ] || usage
    h="$1"
    shift
    addr "$h" >/dev/null
    ns_exists "$(ns "$h")" || die "host $h does not exist"
    p="$(dockerd_pid "$h" || true)"
    if [ -n "$p" ]; then exec nsenter --target "$p" --net --mount --uts -- "$@"; fi
    # Without its dockerd the host's own /run is gone with its mount namespace: its network only.
    exec nsenter --net="/var/run/netns/$(ns "$h")" -- "$@"
    ;;
  load)
    [ $# -ge 2 ] || usage
    load "$@"
    ;;
  crash)
    [ $# -eq 1 ] || usage
    addr "$1" >/dev/null
    t="$(now)"
    crash "$1" || die "host $1 did not crash"
    log "host $1 crashed: every process killed ($(since "$t"))"
    ;;
  start)
    [ $# -eq 1 ] || usage
    addr "$1" >/dev/null
    start_dockerd "$1"
    wait_engine "$1" "$STARTED"
    log "dockerd of host $1 started (pid $(cat "$STATE/$1/run/docker.pid"))"
    ;;
  *) usage ;;
esac
