#!/usr/bin/env bash
# Builds the Go engines (S3 server, MongoDB-wire server, Jaeger) and tools (Helm) pinned by the go.mod/go.sum beside
# this script into a cache outside the repository, keyed by version. A cached binary is reused.
# Usage: infra/engines/build.sh [versitygw|ferretdb|jaeger|helm ...]   (default: all)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../lib.sh"

build() { # name  package
  local name=$1 pkg=$2 ver bin
  ver=$(engine_version "$name")
  bin=$(engine_bin "$name")
  if [ -x "$bin" ]; then log "$name $ver: cached ($bin)"; return; fi
  log "$name $ver: building (first time on this machine; cached afterwards)"
  local t0=$SECONDS
  mkdir -p "$(dirname "$bin")"
  if [ "$name" = ferretdb ]; then
    # FerretDB reads its version from an embedded build/version/version.txt that the module zip
    # lacks (it panics at start without it), so build from a copy of the verified module source.
    local src="$STEMFLOW_CACHE/src/ferretdb-$ver"
    if [ ! -f "$src/build/version/version.txt" ]; then
      local dir; dir=$(cd "$here/$name" && go mod download -json github.com/FerretDB/FerretDB | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
      rm -rf "$src"; mkdir -p "$(dirname "$src")"; cp -r "$dir" "$src"; chmod -R u+w "$src"
      echo "$ver" > "$src/build/version/version.txt"
    fi
    (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin.tmp" ./cmd/ferretdb)
  else
    (cd "$here/$name" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$bin.tmp" "$pkg")
  fi
  mv "$bin.tmp" "$bin"
  log "$name $ver: built in $((SECONDS - t0)) s"
}

targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(versitygw ferretdb jaeger helm)
for t in "${targets[@]}"; do
  case $t in
    versitygw) build versitygw github.com/versity/versitygw/cmd/versitygw ;;
    ferretdb) build ferretdb github.com/FerretDB/FerretDB/cmd/ferretdb ;;
    jaeger) build jaeger github.com/jaegertracing/jaeger/cmd/jaeger ;;
    helm) build helm helm.sh/helm/v4/cmd/helm ;;
    *) echo "unknown engine: $t" >&2; exit 2 ;;
  esac
done
