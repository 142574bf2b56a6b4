#!/usr/bin/env bash
# Makes the graph stemflow derives from the published htdemucs weights — the fast one, MatMul
# weights in int8, attention fused and exact rewrites (models/fast/make_fast.py) — once, into $STEMFLOW_CACHE/models, with ONNX
# Runtime's own quantizer at the version the services run, in its own Python environment.
# Idempotent: a file with the manifest's sha256 is kept; a made file that does not match it is
# refused (nothing is put in place). `pnpm start` and `pnpm test` run it.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/lib.sh
read -r SRC DST SHA BYTES < <(node_modules/.bin/node --import tsx models/scripts/derived.ts)
if [ -f "$DST" ] && [ "$(stat -c %s "$DST")" = "$BYTES" ] && [ "$(sha256sum "$DST" | cut -d' ' -f1)" = "$SHA" ]; then
  log "fast graph: present ($DST)"
  exit 0
fi
python_env "$STEMFLOW_CACHE/python-models" models/fast/requirements.txt "model tools"
mkdir -p "$(dirname "$DST")"
t0=$SECONDS
tmp="$DST.part.$$"
trap 'rm -f "$tmp"' EXIT
"$STEMFLOW_CACHE/python-models/bin/python" models/fast/make_fast.py "$SRC" "$tmp"
got=$(sha256sum "$tmp" | cut -d' ' -f1)
if [ "$got" != "$SHA" ]; then
  log "fast graph: made a file with sha256 $got, the manifest pins $SHA (another quantizer version?): not installed"
  exit 1
fi
mv "$tmp" "$DST"
log "fast graph: made in $((SECONDS - t0)) s ($DST)"
