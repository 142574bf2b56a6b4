#!/usr/bin/env bash
# The whole suite, from a clean clone: install what is missing (apt packages, Go engines into the
# cache, node modules), start the real engines on loopback, run every test, stop the engines.
# Prints how long each phase took. STEMFLOW_KEEP_ENGINES=1 leaves the engines running.
# Extra arguments go to vitest (e.g. `pnpm test test/engines`).
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/lib.sh
phases=()
phase() { # name command...
  local name=$1 t0=$SECONDS; shift
  "$@"
  phases+=("$(printf '%-16s %4d s' "$name" $((SECONDS - t0)))")
}
report() {
  local rc=$?
  [ "${STEMFLOW_KEEP_ENGINES:-}" = 1 ] || bash infra/engines.sh down >/dev/null 2>&1 || true
  printf '\nphase timings:\n'; printf '  %s\n' "${phases[@]}"
  exit $rc
}
trap report EXIT

phase engines-install bash infra/engines.sh install
phase node-modules bash infra/pnpm.sh install --frozen-lockfile --reporter=append-only
phase models bash infra/models.sh
# Fresh engine data every run: no queue, bucket or collection is left over from an earlier one.
phase engines-up bash -c 'bash infra/engines.sh wipe >/dev/null 2>&1; bash infra/engines.sh up'
set -a; source "$STEMFLOW_RUN/env"; set +a
phase typecheck bash infra/pnpm.sh exec tsc -p tsconfig.json --noEmit
phase tests bash infra/pnpm.sh exec vitest run "$@"
