#!/usr/bin/env bash
# Fresh credentials for docker-compose.yml: a REST API token, two CURVE key pairs (the API/DB service's,
# and the one instances use) and the master key that seals functions' secrets in the DB service. The
# secret halves go into files in DIR (default ./zfaas-secrets; the folder 0700, each file 0600): api-token,
# server-secret-key, instance-secret-key, secrets-master-key, which compose mounts and
# `docker stack deploy` turns into swarm secrets. The variables the stack file needs are printed:
# ZFAAS_SECRETS (DIR, absolute) and the two public keys.
#   scripts/compose-env.sh [--force] [DIR] > zfaas.env
#   docker-compose --env-file zfaas.env up -d
# Existing secret files are kept (exit 1) unless --force: new keys lock out a running deployment. Extra
# lines (ZFAAS_PORT=8080, ZFAAS_REGISTRY_IMAGE=zfaas/registry:2, ...) can be appended to zfaas.env.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FORCE=0
DIR=""
for a in "$@"; do
  case "$a" in
    --force | -f) FORCE=1 ;;
    -h | --help)
      sed -n '2,10p' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    -*)
      echo "compose-env: unknown option '$a'" >&2
      exit 64
      ;;
    *) DIR="$a" ;;
  esac
done
DIR="${DIR:-./zfaas-secrets}"
NAMES=(api-token server-secret-key instance-secret-key secrets-master-key)
if [ "$FORCE" = 0 ]; then
  for n in "${NAMES[@]}"; do
    if [ -e "$DIR/$n" ]; then
      echo "compose-env: $DIR/$n exists: keeping it (--force makes new ones, which a running deployment will refuse)" >&2
      exit 1
    fi
  done
fi
keys() {
  if [ -f "$ROOT/dist/cli/main.js" ]; then node "$ROOT/dist/cli/main.js" keys
  else docker run --rm "${ZFAAS_IMAGE:-zfaas/zfaas:latest}" keys; fi
}
field() { node -e 'const k = JSON.parse(require("fs").readFileSync(0, "utf8")); process.stdout.write(k[process.argv[1]])' "$1"; }
# A swarm expands a service's environment as a Go template ({{.Node.Hostname}}): a public key holding
# "{{" (Z85 has both braces; about 1 key in 200) would not deploy, so such a pair is made again.
usable_keys() {
  local k
  for _ in 1 2 3 4 5 6 7 8; do
    k="$(keys)"
    case "$(field publicKey <<<"$k")" in *'{{'*) ;; *) echo "$k"; return 0 ;; esac
  done
  echo "compose-env: could not make a key pair without '{{'" >&2
  return 1
}
server="$(usable_keys)"
instance="$(usable_keys)"
umask 077
mkdir -p "$DIR"
chmod 700 "$DIR"
DIR="$(cd "$DIR" && pwd)"
# No newline at the end: the file is the value (the services read ZFAAS_*_FILE).
node -e 'process.stdout.write(require("crypto").randomBytes(24).toString("base64url"))' >"$DIR/api-token"
field secretKey <<<"$server" >"$DIR/server-secret-key"
field secretKey <<<"$instance" >"$DIR/instance-secret-key"
node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("hex"))' >"$DIR/secrets-master-key"
echo "compose-env: secrets written to $DIR (${NAMES[*]})" >&2
# Single quotes: Z85 keys may hold '$', which env-file readers would otherwise expand.
echo "ZFAAS_SECRETS='$DIR'"
echo "ZFAAS_SERVER_PUBLIC_KEY='$(field publicKey <<<"$server")'"
echo "ZFAAS_INSTANCE_PUBLIC_KEY='$(field publicKey <<<"$instance")'"
