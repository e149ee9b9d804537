#!/usr/bin/env bash
# Regenerate python.tar.gz (the seed's dice function): test.py and requirements.txt at the archive root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# fixed owner, mode and mtime so that the archive (and its digest) is reproducible
tar --sort=name --owner=0 --group=0 --numeric-owner --mode='u=rw,go=r' --mtime='2024-01-01 00:00:00Z' \
    -cf - test.py requirements.txt | gzip -n -9 > python.tar.gz
echo "wrote $(pwd)/python.tar.gz ($(stat -c %s python.tar.gz) bytes)"
