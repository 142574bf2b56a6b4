# Shared helpers for the infra scripts (sourced, not run).
STEMFLOW_CACHE=${STEMFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stemflow}
STEMFLOW_RUN=${STEMFLOW_RUN:-${TMPDIR:-/tmp}/stemflow-engines}
INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export STEMFLOW_CACHE STEMFLOW_RUN

log() { printf '[infra %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# The version an engine is pinned to, read from its go.mod (the single place it is written).
engine_version() {
  local mod
  case $1 in
    versitygw) mod=github.com/versity/versitygw ;;
    ferretdb) mod=github.com/FerretDB/FerretDB ;;
    jaeger) mod=github.com/jaegertracing/jaeger ;;
    helm) mod=helm.sh/helm/v4 ;;
  esac
  awk -v m="$mod" '$1==m {print $2; exit} $1=="require" && $2==m {print $3; exit}' "$INFRA_DIR/engines/$1/go.mod"
}
engine_bin() { echo "$STEMFLOW_CACHE/bin/$1-$(engine_version "$1")"; }

# wait_for "what" seconds command...: polls until the command succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then log "$what not ready after ${secs}s"; return 1; fi
    sleep 0.3
  done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A Python environment from PyPI at pinned versions, rebuilt only when its requirements change.
python_env() { # venv requirements name
  local venv=$1 req=$2 name=$3 stamp="$1/.requirements"
  if [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then log "$name: environment present"; return; fi
  local t0=$SECONDS
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
  log "$name: environment built in $((SECONDS - t0)) s"
}
