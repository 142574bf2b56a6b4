#!/usr/bin/env bash
# Starts and stops the real engines natively on loopback (no Docker needed):
#   RabbitMQ (Debian), versitygw (S3, posix backend), FerretDB (MongoDB wire, SQLite), Jaeger.
# Data lives under $STEMFLOW_RUN (a temp directory). Every command is idempotent.
#
#   infra/engines.sh install            apt packages + Go engine builds (cached)
#   infra/engines.sh up   [engine...]   start (and wait until ready); default: all
#   infra/engines.sh down [engine...]   stop; default: all
#   infra/engines.sh restart engine
#   infra/engines.sh env                print the env that points stemflow at them
#   infra/engines.sh wipe               stop all and delete their data
#   infra/engines.sh rabbitmqctl args   rabbitmqctl on the stemflow node (tests change settings live)
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ALL=(rabbitmq s3 mongo jaeger)
AMQP_PORT=${STEMFLOW_AMQP_PORT:-5672}
S3_PORT=${STEMFLOW_S3_PORT:-7070}
MONGO_PORT=${STEMFLOW_MONGO_PORT:-27017}
OTLP_PORT=${STEMFLOW_OTLP_PORT:-4318}
JAEGER_QUERY_PORT=${STEMFLOW_JAEGER_QUERY_PORT:-16686}
S3_ACCESS=${STEMFLOW_S3_ACCESS:-stemflow}
S3_SECRET=${STEMFLOW_S3_SECRET:-stemflow-secret-key}
# chromium: the browser test drives the web page with playwright-core (Debian's build, no download).
APT_PACKAGES=(rabbitmq-server ffmpeg espeak-ng sox chromium)

export RABBITMQ_NODENAME=stemflow@localhost
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$AMQP_PORT
export RABBITMQ_DIST_PORT=$((AMQP_PORT + 20000))
export RABBITMQ_CONFIG_FILE=$STEMFLOW_RUN/rabbitmq/rabbitmq.conf
export RABBITMQ_MNESIA_BASE=$STEMFLOW_RUN/rabbitmq/mnesia RABBITMQ_LOG_BASE=$STEMFLOW_RUN/rabbitmq/log
export RABBITMQ_ENABLED_PLUGINS_FILE=$STEMFLOW_RUN/rabbitmq/enabled_plugins
export ERL_EPMD_ADDRESS=127.0.0.1

install() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt: installing ${missing[*]}"
    local t0=$SECONDS
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    log "apt: done in $((SECONDS - t0)) s"
  else
    log "apt: ${APT_PACKAGES[*]} present"
  fi
  "$INFRA_DIR/engines/build.sh"
  "$INFRA_DIR/kube-tools.sh" >/dev/null
  python_env "$CONSUMER_VENV" "$INFRA_DIR/../examples/python-consumer/requirements.txt" "python consumer"
  python_env "$TOOLS_VENV" "$INFRA_DIR/tools/requirements.txt" "python tools"
}

# Python environments from PyPI at pinned versions, each rebuilt only when its requirements change:
# the example consumer's (examples/python-consumer), and the test tools' (infra/tools: schemathesis).
CONSUMER_VENV=$STEMFLOW_CACHE/python-consumer
TOOLS_VENV=$STEMFLOW_CACHE/python-tools
pidfile() { echo "$STEMFLOW_RUN/$1.pid"; }
alive() { local f; f=$(pidfile "$1"); [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
spawn() { # name  command...
  local name=$1; shift
  mkdir -p "$STEMFLOW_RUN/$name"
  setsid "$@" >"$STEMFLOW_RUN/$name.log" 2>&1 < /dev/null &
  echo $! >"$(pidfile "$name")"
}
http_ok() { curl -fsS -o /dev/null "$1"; }

up_one() {
  local t0=$SECONDS
  case $1 in
    rabbitmq)
      if rabbitmqctl -q status >/dev/null 2>&1; then log "rabbitmq: already running"; return; fi
      mkdir -p "$STEMFLOW_RUN/rabbitmq/log" "$RABBITMQ_MNESIA_BASE"
      cp "$INFRA_DIR/rabbitmq.conf" "$RABBITMQ_CONFIG_FILE"
      echo '[].' >"$RABBITMQ_ENABLED_PLUGINS_FILE"
      chown -R rabbitmq:rabbitmq "$STEMFLOW_RUN/rabbitmq" 2>/dev/null || true
      rabbitmq-server -detached >/dev/null 2>&1 || true
      # await_startup fails at once while the Erlang node is not up yet: poll it.
      wait_for rabbitmq 120 rabbitmqctl -q await_startup --timeout 5 || { log "see $RABBITMQ_LOG_BASE"; return 1; }
      ;;
    s3)
      alive s3 && { log "s3: already running"; return; }
      mkdir -p "$STEMFLOW_RUN/s3/data" "$STEMFLOW_RUN/s3/meta"
      spawn s3 "$(engine_bin versitygw)" --access "$S3_ACCESS" --secret "$S3_SECRET" --port "127.0.0.1:$S3_PORT" --quiet \
        posix --sidecar "$STEMFLOW_RUN/s3/meta" "$STEMFLOW_RUN/s3/data"
      wait_for s3 30 port_open "$S3_PORT"
      ;;
    mongo)
      alive mongo && { log "mongo: already running"; return; }
      mkdir -p "$STEMFLOW_RUN/mongo/data"
      spawn mongo "$(engine_bin ferretdb)" --handler=sqlite --sqlite-url="file:$STEMFLOW_RUN/mongo/data/" \
        --state-dir="$STEMFLOW_RUN/mongo" --listen-addr="127.0.0.1:$MONGO_PORT" --telemetry=disable --log-level=WARN \
        --debug-addr=-
      wait_for mongo 30 port_open "$MONGO_PORT"
      ;;
    jaeger)
      alive jaeger && { log "jaeger: already running"; return; }
      spawn jaeger "$(engine_bin jaeger)" --config "$INFRA_DIR/jaeger.yaml"
      wait_for jaeger 60 http_ok "http://127.0.0.1:$JAEGER_QUERY_PORT/api/services"
      ;;
    *) echo "unknown engine: $1 (one of ${ALL[*]})" >&2; return 2 ;;
  esac
  log "$1: ready in $((SECONDS - t0)) s"
}

down_one() {
  case $1 in
    rabbitmq) rabbitmqctl -q stop >/dev/null 2>&1 || true ;;
    *)
      local f; f=$(pidfile "$1")
      if [ -f "$f" ]; then
        local pid; pid=$(cat "$f")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        rm -f "$f"
      fi
      ;;
  esac
  log "$1: stopped"
}

print_env() {
  cat <<ENV
AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT
S3_ENDPOINT=http://127.0.0.1:$S3_PORT
S3_ACCESS_KEY=$S3_ACCESS
S3_SECRET_KEY=$S3_SECRET
S3_BUCKET=stemflow
DATABASE_URL=mongodb://127.0.0.1:$MONGO_PORT/stemflow
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$OTLP_PORT
JAEGER_QUERY_URL=http://127.0.0.1:$JAEGER_QUERY_PORT
STEMFLOW_RUN=$STEMFLOW_RUN
STEMFLOW_CONSUMER_PYTHON=$CONSUMER_VENV/bin/python
STEMFLOW_SCHEMATHESIS=$TOOLS_VENV/bin/st
ENV
}

cmd=${1:-}; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")
case $cmd in
  install) install ;;
  up) mkdir -p "$STEMFLOW_RUN"; for e in "${targets[@]}"; do up_one "$e"; done; print_env >"$STEMFLOW_RUN/env" ;;
  down) for e in "${targets[@]}"; do down_one "$e"; done ;;
  restart) for e in "${targets[@]}"; do down_one "$e"; up_one "$e"; done ;;
  env) print_env ;;
  wipe) for e in "${ALL[@]}"; do down_one "$e"; done; rm -rf "$STEMFLOW_RUN" ;;
  rabbitmqctl) rabbitmqctl "${targets[@]}" ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
