#!/usr/bin/env bash
# `pnpm start`: install node modules, then run all four services in one process on embedded
# adapters (in-process bus, filesystem store and job store under STORAGE_ROOT). No servers needed;
# set AMQP_URL, S3_ENDPOINT and DATABASE_URL to use real ones.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/pnpm.sh install --frozen-lockfile --reporter=silent
# The fast (int8) graph, made once from the published weights into the cache (needs python3 with venv).
if [ "${DEFAULT_QUALITY:-fast}" = fast ] && ! bash infra/models.sh; then
  echo "stemflow: the fast graph could not be made (see above); start with DEFAULT_QUALITY=full to separate with the published weights only" >&2
  exit 1
fi
# ffmpeg decodes the uploads and encodes the stems. Provisioned as the tests provision their
# engines (Debian's package) where this runs as root with apt-get; elsewhere it stops here, saying how.
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ "${STEMFLOW_NO_PROVISION:-}" != 1 ]; then
    echo "stemflow: ffmpeg is not installed; installing Debian's ffmpeg package with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
  else
    echo "stemflow: ffmpeg and ffprobe are needed and not on PATH; install them (Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg) and run pnpm start again" >&2
    exit 1
  fi
fi
# The model's tensors come from the heap and stay there between runs (see MALLOC_TUNABLES in models/).
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184:glibc.malloc.arena_max=1}
# node itself, not through pnpm exec: Ctrl-C reaches one process, which stops gracefully.
exec node_modules/.bin/node --v8-pool-size=1 --import tsx --import ./packages/telemetry/src/register.ts services/all-in-one/src/main.ts "$@"
