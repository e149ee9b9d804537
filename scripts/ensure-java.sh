#!/usr/bin/env bash
# Make sure a JDK and Debian's gson are here: the loader conformance suite compiles and runs the Java
# loader on this machine, as its image does. Idempotent.
set -euo pipefail
if command -v javac >/dev/null 2>&1 && [ -f /usr/share/java/gson.jar ]; then echo "ensure-java: javac and gson present"; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "ensure-java: ERROR: javac or gson is missing and we are not root (run: apt-get install openjdk-17-jdk-headless libgoogle-gson-java)" >&2; exit 1; }
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless libgoogle-gson-java >/dev/null
echo "ensure-java: installed openjdk-17-jdk-headless and libgoogle-gson-java"
