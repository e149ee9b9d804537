#!/usr/bin/env bash
# Print the variables docker-compose.yml needs, freshly generated: a REST API token and two CURVE key
# pairs (the API/DB service's, and the one instances use). Keep the output private:
#   scripts/compose-env.sh > zfaas.env && chmod 600 zfaas.env
#   docker-compose --env-file zfaas.env up -d
# Extra lines (ZFAAS_PORT=8080, ZFAAS_REGISTRY_IMAGE=zfaas/registry:2, ...) can be appended to the file.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
keys() {
  if [ -f "$ROOT/dist/cli/main.js" ]; then node "$ROOT/dist/cli/main.js" keys
  else docker run --rm "${ZFAAS_IMAGE:-zfaas/zfaas:latest}" keys; fi
}
field() { node -e 'const k = JSON.parse(require("fs").readFileSync(0, "utf8")); process.stdout.write(k[process.argv[1]])' "$1"; }
server="$(keys)"
instance="$(keys)"
# Single quotes: Z85 keys may hold '$', which env-file readers would otherwise expand.
echo "ZFAAS_TOKEN=$(node -e 'process.stdout.write(require("crypto").randomBytes(24).toString("base64url"))')"
echo "ZFAAS_SERVER_SECRET_KEY='$(field secretKey <<<"$server")'"
echo "ZFAAS_SERVER_PUBLIC_KEY='$(field publicKey <<<"$server")'"
echo "ZFAAS_INSTANCE_SECRET_KEY='$(field secretKey <<<"$instance")'"
echo "ZFAAS_INSTANCE_PUBLIC_KEY='$(field publicKey <<<"$instance")'"
