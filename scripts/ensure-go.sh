#!/usr/bin/env bash
# Make sure a Go compiler (Debian's golang-go) is here: the go loader's conformance suite and go tests
# build it with it, and the provided runtime's test builds a custom runtime written in Go. Idempotent.
set -euo pipefail
if command -v go >/dev/null 2>&1; then echo "ensure-go: go present"; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "ensure-go: ERROR: go is missing and we are not root (run: apt-get install golang-go)" >&2; exit 1; }
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
echo "ensure-go: installed golang-go"
