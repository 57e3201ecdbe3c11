#!/usr/bin/env bash
# Message latency while wrong-password sign-ins flood the server (issue 21's
# cost check): scenario (b)'s load (1,000 JSON clients in one room, 10
# publishers x 10 msg/s) without and with 50 sign-ins a second, each from
# another address and for another unknown account (so every one costs a
# password hash), interleaved and repeated. Prints a table and writes the
# reports to bench/results/i__{quiet,flood}__N.json.
#
#   bench/login-flood.sh              # 3 repetitions, 50 sign-ins/s
#   REPS=1 FLOOD=100 bench/login-flood.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/tools.sh"
cd "$ROOT"

REPS="${REPS:-3}"
FLOOD="${FLOOD:-50}"
RESULTS="$ROOT/bench/results"
mkdir -p "$RESULTS"
rm -f "$RESULTS"/i__*.json
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

say "building release binaries"
cargo build --release -p chat-server -p chat-bench

WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

PORT="$(free_port)"
run() {
  local mode="$1" rep="$2" flood=()
  [ "$mode" = flood ] && flood=(--login-flood "$FLOOD")
  # The flood's addresses are forwarded by a trusted proxy (loopback), so
  # per-address guessing limits never stop it: every attempt is hashed.
  target/release/chat-server --bind "127.0.0.1:$PORT" --static-dir dist --database "$WORK/chat-$rep-$mode.sqlite3" \
    --rate-limit 0 --max-connections 100000 --max-connections-per-ip 100000 --trusted-proxy 127.0.0.1/32 \
    >"$WORK/server.log" 2>&1 &
  local pid=$!
  wait_until_ready "$PORT"
  say "login flood: $mode, repetition $rep"
  target/release/chat-load --url "ws://127.0.0.1:$PORT/ws" --protocol json --server-pid "$pid" \
    --clients 1000 --publishers 10 --rate 10 --duration 20 "${flood[@]}" \
    --label "i/$mode" --json-out "$RESULTS/i__${mode}__${rep}.json"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

for rep in $(seq "$REPS"); do
  run quiet "$rep"
  run flood "$rep"
done

echo
echo "| run | p50 ms | p99 ms | p99.9 ms | delivered / expected | server CPU s | sign-ins hashed (401) | busy (503) | limited (429) | other |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for file in "$RESULTS"/i__*.json; do
  python3 - "$file" <<'PY'
import json, sys, os
r = json.load(open(sys.argv[1]))
l, f = r["latency_ms"], r.get("login_flood") or {}
name = os.path.basename(sys.argv[1])[3:-5].replace("__", " #")
print(f"| {name} | {l['p50']:.2f} | {l['p99']:.2f} | {l['p999']:.2f} | {r['delivered']} / {r['expected']} | "
      f"{r['server_cpu_seconds']:.1f} | {f.get('refused_after_hashing', '-')} | {f.get('busy', '-')} | "
      f"{f.get('rate_limited', '-')} | {f.get('other', '-')} |")
PY
done
