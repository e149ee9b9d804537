#!/usr/bin/env bash
# The whole test suite, from a fresh clone: prepares what the machine lacks (dependencies, a Docker
# engine, the runtime images), then builds, type-checks, lints and runs every test against the real
# Docker engine, ZeroMQ and LevelDB.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
step() { echo; echo "== $*"; }

step "dependencies"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then npm ci --no-audit --no-fund --loglevel=error; else echo "node_modules up to date"; fi

step "docker engine"
bash scripts/ensure-docker.sh

step "multi-host and compose test tools (iproute2, docker-compose, docker-registry)"
bash scripts/ensure-cluster-tools.sh

step "PostgreSQL server programs (the PostgreSQL store's tests start a throwaway cluster)"
bash scripts/ensure-postgres.sh

step "message brokers for the trigger tests (nats-server, mosquitto, rabbitmq-server, redis-server)"
bash scripts/ensure-brokers.sh

step "headless Chromium (the dashboard's browser test)"
bash scripts/ensure-chromium.sh

step "python linter for the python loader (Debian's pyflakes3)"
bash scripts/ensure-pyflakes.sh

step "a JDK and gson (the Java loader's conformance suite)"
bash scripts/ensure-java.sh

step "a Go compiler (the go loader's conformance suite and go tests; the provided runtime's test builds a bootstrap in Go)"
bash scripts/ensure-go.sh

step "runtime images (offline build when missing)"
bash runtimes/build-images.sh

step "build, type check, lint"
npm run --silent build
npm run --silent typecheck
npm run --silent lint
npm run --silent lint:python

step "runtime loaders in their images (protocol, and each platform's calling convention)"
bash runtimes/test-loaders.sh
bash runtimes/formats-node.sh
bash runtimes/formats-python.sh

step "unit and integration tests"
npx vitest run "$@"
