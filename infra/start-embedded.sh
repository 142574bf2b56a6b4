#!/usr/bin/env bash
# `pnpm start`: install node modules, then run all four services in one process on embedded
# adapters (in-process bus, filesystem store and job store under STORAGE_ROOT). No servers needed;
# set AMQP_URL, S3_ENDPOINT and DATABASE_URL to use real ones.
set -euo pipefail
cd "$(dirname "$0")/.."
bash infra/pnpm.sh install --frozen-lockfile --reporter=silent
# The model's tensors come from the heap and stay there between runs (see MALLOC_TUNABLES in models/).
export GLIBC_TUNABLES=${GLIBC_TUNABLES:-glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184}
exec bash infra/pnpm.sh exec tsx services/all-in-one/src/main.ts "$@"
