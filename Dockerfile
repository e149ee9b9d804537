# The zfaas application image: one image for every service (db, api, instance), chosen by its command:
#   docker run zfaas/zfaas:latest api --host 0.0.0.0 ...   (see docker-compose.yml)
#
# Build it with scripts/build-app-image.sh, which stages the context this file expects (the compiled
# dist/, production node_modules, runtimes/, package files and, offline, a node binary in bin/):
#   scripts/build-app-image.sh                      # offline: FROM zfaas/base:bookworm + this host's node
#   ZFAAS_PUBLIC_BASE=1 scripts/build-app-image.sh  # FROM node:20-bookworm-slim (where it can be pulled)
ARG BASE_IMAGE=node:20-bookworm-slim
FROM ${BASE_IMAGE}

# Offline builds put the host's standalone Node 20 binary here (needs only libc and libstdc++, which a
# Debian bookworm base has); with node:20 images bin/ is empty and the image's own node is used.
COPY bin/ /usr/local/bin/
RUN node --version

WORKDIR /app
COPY package.json package-lock.json ./
COPY node_modules ./node_modules
COPY runtimes ./runtimes
COPY dist ./dist

# Data of the db service and of instances; instance data must be mounted at the same path on the host
# (function containers are siblings started through the host's Docker socket and bind-mount it).
RUN mkdir -p /var/lib/zfaas
ENV NODE_ENV=production \
    ZFAAS_LOG_FORMAT=json \
    ZFAAS_DB_DATA=/var/lib/zfaas/db \
    ZFAAS_INSTANCE_DATA=/var/lib/zfaas/instance
EXPOSE 3000 5560 5561
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["--help"]
