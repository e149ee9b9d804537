#!/usr/bin/env bash
# Make sure pyflakes (Debian's pyflakes3) is here: the lint step checks the python loader with it. Idempotent.
set -euo pipefail
if command -v pyflakes3 >/dev/null 2>&1; then echo "ensure-pyflakes: pyflakes3 present"; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "ensure-pyflakes: ERROR: pyflakes3 is missing and we are not root (run: apt-get install pyflakes3)" >&2; exit 1; }
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pyflakes3 >/dev/null
echo "ensure-pyflakes: installed pyflakes3"
