#!/usr/bin/env bash
# `pnpm bench [name...]`: runs test/bench/<name>.bench.ts (default: all) against the real engines,
# started as for the tests. Benchmarks print ratios measured side by side in one run; they never
# fail on a number, the machines are shared and noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/lib.sh
bash infra/engines.sh install >/dev/null
bash infra/pnpm.sh install --frozen-lockfile --reporter=silent
bash infra/models.sh
# Engines this script starts are stopped when it ends (STEMFLOW_KEEP_ENGINES=1 keeps them); ones
# that were already running are left as they were.
all_up=1
for p in 5672 7070 27017 4318; do port_open $p || all_up=0; done
if [ $all_up = 0 ] && [ "${STEMFLOW_KEEP_ENGINES:-}" != 1 ]; then
  trap 'bash infra/engines.sh down >/dev/null 2>&1 || true' EXIT
fi
bash infra/engines.sh up
set -a; source "$STEMFLOW_RUN/env"; set +a
export LOG_LEVEL=${LOG_LEVEL:-silent}
names=("$@")
[ ${#names[@]} -gt 0 ] || names=($(cd test/bench && ls *.bench.ts | sed 's/\.bench\.ts$//'))
for n in "${names[@]}"; do
  printf '\n== bench %s ==\n' "$n"
  bash infra/pnpm.sh exec tsx "test/bench/$n.bench.ts"
done
