#!/usr/bin/env bash
# Runs the same load scenarios against our server (plain and JSON endpoints)
# and against the seed's Node `ws` broadcast server, interleaved and repeated,
# then writes BENCHMARKS.md and bench/results/chart.svg.
#
#   bench/compare.sh            # every scenario, 2 repetitions
#   REPS=1 SCENARIOS="b c" bench/compare.sh
#   BEFORE=/path/to/old/chat-server bench/compare.sh   # adds before-plain, before-json
#
# Scenarios (g) and (h) compare one node on PostgreSQL with two nodes on the
# same PostgreSQL and a Redis (private servers this script starts and stops).
#
# In scenario (b) an independent probe (bench/node/probe.js: Node's `ws`
# client in its own process) times a few messages of its own beside the load,
# as a check on what chat-load measures.
set -euo pipefail
source "$(dirname "$0")/../scripts/tools.sh"
cd "$ROOT"

REPS="${REPS:-2}"
SCENARIOS="${SCENARIOS:-a b c d e f g h}"
BEFORE="${BEFORE:-}"
TARGETS="ours-plain node ours-json"
if [ -n "$BEFORE" ]; then
  [ -x "$BEFORE" ] || { echo "BEFORE=$BEFORE is not an executable chat-server" >&2; exit 2; }
  TARGETS="$TARGETS before-plain before-json"
fi
# The release server and the release bundle are what is measured.
RESULTS="$ROOT/bench/results"
mkdir -p "$RESULTS"
# Only the scenarios run now are replaced; the others' results stay for the page.
for scenario in $SCENARIOS; do
  rm -f "$RESULTS/${scenario}__"*.json "$RESULTS/${scenario}__"*.probe
done
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

say "building release binaries"
cargo build --release -p chat-server -p chat-bench

NODE_DIR="$(mktemp -d)"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; stop_private_postgres; rm -rf "$NODE_DIR" "$WORK"' EXIT
say "installing ws for the Node server into $NODE_DIR"
npm install --silent --no-audit --no-fund --prefix "$NODE_DIR" ws@8 >/dev/null
cp bench/node/server.js bench/node/probe.js "$NODE_DIR/"

PORT=9550
# Starts a server (ours or node); sets PID and URL_BASE.
start() {
  PORT=$((PORT + 1))
  case "$1" in
    ours | before)
      local binary=target/release/chat-server
      [ "$1" = before ] && binary="$BEFORE"
      "$binary" --bind "127.0.0.1:$PORT" --static-dir dist --database "$WORK/chat-$PORT.sqlite3" \
        --rate-limit 0 --max-connections 100000 --max-connections-per-ip 100000 --outbound-queue-bytes 4194304 \
        >"$WORK/server-$PORT.log" 2>&1 &
      ;;
    node)
      PORT="$PORT" node "$NODE_DIR/server.js" >"$WORK/server-$PORT.log" 2>&1 &
      ;;
  esac
  PID=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    sleep 0.05
  done
  URL_BASE="ws://127.0.0.1:$PORT"
}

stop() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
}

# run SCENARIO TARGET REP -- chat-load options
run() {
  local scenario="$1" target="$2" rep="$3"
  shift 4
  local server="ours" path="/" protocol="plain"
  case "$target" in
    ours-json) path="/ws"; protocol="json" ;;
    before-plain) server="before" ;;
    before-json) server="before"; path="/ws"; protocol="json" ;;
    node) server="node" ;;
  esac
  start "$server"
  say "scenario $scenario, $target, repetition $rep"
  local probe=""
  if [ "$scenario" = b ]; then
    # Starts once chat-load's clients are connected; ends before chat-load does.
    (sleep 3; node "$NODE_DIR/probe.js" "$URL_BASE$path" "$protocol" 10 20 5 \
      >"$RESULTS/${scenario}__${target}__${rep}.probe" 2>"$WORK/probe.log" || true) &
    probe=$!
  fi
  target/release/chat-load --url "$URL_BASE$path" --protocol "$protocol" --server-pid "$PID" \
    --label "$scenario/$target" --json-out "$RESULTS/${scenario}__${target}__${rep}.json" "$@" || true
  [ -n "$probe" ] && wait "$probe"
  stop
}

# One node (PostgreSQL) or two (PostgreSQL and Redis) for scenarios (g), (h).
REDIS_URL=""
nodes_services() {
  [ -n "$REDIS_URL" ] && return 0
  ensure_redis
  start_private_postgres
  local port
  port="$(free_port)"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no >"$WORK/redis.log" 2>&1 &
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    sleep 0.05
  done
  REDIS_URL="redis://127.0.0.1:$port/"
}

DATABASES=0
# run_nodes SCENARIO SETUP REP -- chat-load options
run_nodes() {
  local scenario="$1" setup="$2" rep="$3" count=1 urls=() pids=() nodes=()
  shift 4
  nodes_services
  DATABASES=$((DATABASES + 1))
  local database="bench_${DATABASES}_$$"
  psql "$CHAT_TEST_POSTGRES_URL" -qc "CREATE DATABASE $database"
  local url="${CHAT_TEST_POSTGRES_URL%/*}/$database" redis=()
  if [ "$setup" = two-nodes ]; then count=2; redis=(--redis "$REDIS_URL"); fi
  for _ in $(seq "$count"); do
    PORT=$((PORT + 1))
    target/release/chat-server --bind "127.0.0.1:$PORT" --static-dir dist --database "$url" "${redis[@]}" \
      --rate-limit 0 --max-connections 100000 --max-connections-per-ip 100000 --outbound-queue-bytes 4194304 \
      >"$WORK/server-$PORT.log" 2>&1 &
    nodes+=($!)
    pids+=(--server-pid "$!")
    urls+=(--url "ws://127.0.0.1:$PORT/ws")
    wait_until_ready "$PORT"
  done
  say "scenario $scenario, $setup, repetition $rep"
  target/release/chat-load "${urls[@]}" --protocol json "${pids[@]}" \
    --label "$scenario/$setup" --json-out "$RESULTS/${scenario}__${setup}__${rep}.json" "$@" || true
  kill "${nodes[@]}" 2>/dev/null || true
  wait "${nodes[@]}" 2>/dev/null || true
}

for rep in $(seq "$REPS"); do
  for scenario in $SCENARIOS; do
    case "$scenario" in
      g | h)
        for setup in one-node two-nodes; do
          case "$scenario" in
            g) run_nodes g "$setup" "$rep" -- --clients 1000 --publishers 10 --rate 0 --window 4 --duration 10 ;;
            h) run_nodes h "$setup" "$rep" -- --clients 1000 --publishers 100 --rooms 100 --rate 0 --window 4 --duration 10 ;;
          esac
        done
        continue
        ;;
    esac
    for target in $TARGETS; do
      case "$scenario" in
        a) run a "$target" "$rep" -- --idle --clients 10000 --connect-concurrency 500 --settle 3 ;;
        b) run b "$target" "$rep" -- --clients 1000 --publishers 10 --rate 10 --duration 15 ;;
        c) run c "$target" "$rep" -- --clients 1000 --publishers 10 --rate 0 --window 4 --duration 10 ;;
        d) run d "$target" "$rep" -- --clients 10 --publishers 10 --rate 0 --window 8 --duration 10 ;;
        e) run e "$target" "$rep" -- --clients 19000 --publishers 1 --messages 1 --rate 1 --connect-concurrency 500 --settle 3 ;;
        f) run f "$target" "$rep" -- --storm --clients 19000 --rate 2 --duration 10 --settle 3 --connect-concurrency 500 ;;
      esac
    done
  done
done

say "frontend weight and navigation-to-connected in headless Chromium"
ensure_build_tools
ensure_chromium
trunk build --release
if cargo test --release -p chat-e2e --test startup_and_weight -- --nocapture; then
  cp target/e2e/startup.json "$RESULTS/startup.json"
fi

say "writing BENCHMARKS.md and bench/results/chart.svg"
target/release/chat-chart "$RESULTS" "$ROOT/BENCHMARKS.md" "$RESULTS/chart.svg"
