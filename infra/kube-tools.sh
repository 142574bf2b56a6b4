#!/usr/bin/env bash
# The chart's offline checks need: Helm (built by infra/engines/build.sh), kube-check (deploy/kube-check,
# built here) and the schemas it validates against, taken from published modules through the Go
# module proxy at pinned versions, their checksums verified: the Kubernetes API's OpenAPI v3
# documents (k8s.io/kubernetes, api/openapi-spec/v3) and KEDA's CRDs (config/crd/bases).
# Idempotent; prints the variables the chart test reads. Usage: infra/kube-tools.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

K8S=k8s.io/kubernetes@v1.34.4
K8S_SUM=h1:Yy6R4QB8C9kJPp25GFqEvX5XQwY5qzKeqD0Xx6oAcmk=
KEDA=github.com/kedacore/keda/v2@v2.20.2
KEDA_SUM=h1:SR60v8uIcelbveS8n/1jcl8tLdBBIbHMxmdOHw8tKqA=
OPENAPI=(api__v1 apis__apps__v1 apis__policy__v1 apis__autoscaling__v2 apis__networking.k8s.io__v1)
CRDS=(keda.sh_scaledobjects keda.sh_triggerauthentications)

"$here/engines/build.sh" helm >&2

checker_src=$here/../deploy/kube-check
checker=$STEMFLOW_CACHE/bin/kube-check-$(cat "$checker_src/go.mod" "$checker_src/go.sum" "$checker_src"/*.go | sha256sum | cut -c1-12)
if [ ! -x "$checker" ]; then
  log "kube-check: building"
  mkdir -p "$(dirname "$checker")"
  (cd "$checker_src" && CGO_ENABLED=0 go build -trimpath -o "$checker.tmp" .) && mv "$checker.tmp" "$checker"
fi

schemas=$STEMFLOW_CACHE/kube-schemas/${K8S##*@}-keda-${KEDA##*@}
if [ ! -f "$schemas/.complete" ]; then
  log "kube schemas: $K8S, $KEDA"
  module_dir() { # module@version  sum
    local json dir sum
    json=$(cd "$checker_src" && go mod download -json "$1")
    dir=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"$json")
    sum=$(sed -n 's/^\t"Sum": "\(.*\)",$/\1/p' <<<"$json")
    [ "$sum" = "$2" ] || { echo "kube-tools: $1 has checksum $sum, expected $2" >&2; exit 1; }
    echo "$dir"
  }
  k8s=$(module_dir "$K8S" "$K8S_SUM")
  keda=$(module_dir "$KEDA" "$KEDA_SUM")
  rm -rf "$schemas"; mkdir -p "$schemas"
  for f in "${OPENAPI[@]}"; do cp "$k8s/api/openapi-spec/v3/${f}_openapi.json" "$schemas/"; done
  for f in "${CRDS[@]}"; do cp "$keda/config/crd/bases/$f.yaml" "$schemas/"; done
  chmod -R u+w "$schemas"; touch "$schemas/.complete"
fi

echo "HELM=$(engine_bin helm)"
echo "KUBE_CHECK=$checker"
echo "KUBE_SCHEMAS=$schemas"
