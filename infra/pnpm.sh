#!/usr/bin/env bash
# Runs the pnpm version pinned in package.json's packageManager, from the npm registry (a fresh
# machine has only Node and npm). Inside a pnpm script, the running pnpm is reused.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${npm_execpath:-}" ] && [[ "$npm_execpath" == *pnpm* ]]; then
  if [ -x "$npm_execpath" ] && ! head -c 2 "$npm_execpath" | grep -q '#!'; then exec "$npm_execpath" "$@"; fi
  exec node "$npm_execpath" "$@"
fi
pm=$(sed -n 's/.*"packageManager": *"\([^"]*\)".*/\1/p' "$root/package.json")
exec npx --yes "$pm" "$@"
