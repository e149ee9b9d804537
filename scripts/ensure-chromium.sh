#!/usr/bin/env bash
# Make sure a headless Chromium exists for the dashboard's browser test (playwright-core drives it; it
# downloads no browser of its own here). Installs Debian's `chromium` as root when missing. Idempotent.
set -euo pipefail

log() { echo "ensure-chromium: $*"; }
BIN="${ZFAAS_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$BIN" ]; then
  log "chromium present ($BIN)"
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  log "warning: $BIN missing and cannot apt-get install it (not root or no apt-get); the dashboard browser test will be skipped"
  exit 0
fi
# apt's chatter goes to a log, shown only when something fails.
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } >"$out" 2>&1; then
  cat "$out" >&2
  echo "ensure-chromium: ERROR: apt-get install chromium failed" >&2
  exit 1
fi
log "installed $("$BIN" --version 2>/dev/null || echo chromium)"
