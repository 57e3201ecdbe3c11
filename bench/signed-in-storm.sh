#!/usr/bin/env bash
# The reconnect storm (scenario f) with signed-in users beside the same storm
# of guests (issue 21's cost check: signed-in within 1.2x the guests' server
# CPU). Every joiner of the signed-in storm sends its own account's session
# cookie, so the server checks a session and the account's standing in the
# room per join; the accounts are seeded into the database beforehand
# (`chat-seed-accounts`), the same database for both storms. Interleaved and
# repeated; prints a table and writes the reports to
# bench/results/j__{guests,accounts}__N.json.
#
#   bench/signed-in-storm.sh                # 19,000 clients, 2 repetitions
#   REPS=1 CLIENTS=5000 bench/signed-in-storm.sh
set -euo pipefail
source "$(dirname "$0")/../scripts/tools.sh"
cd "$ROOT"

REPS="${REPS:-2}"
CLIENTS="${CLIENTS:-19000}"
RESULTS="$ROOT/bench/results"
mkdir -p "$RESULTS"
rm -f "$RESULTS"/j__*.json
ulimit -n 40000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

say "building release binaries"
cargo build --release -p chat-server -p chat-bench

WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

say "seeding $CLIENTS accounts with sessions"
target/release/chat-seed-accounts --database "$WORK/seeded.sqlite3" --count "$CLIENTS" --out "$WORK/sessions.txt"

PORT="$(free_port)"
run() {
  local who="$1" rep="$2" sessions=()
  [ "$who" = accounts ] && sessions=(--sessions "$WORK/sessions.txt")
  # Each run starts from the seeded database (accounts, no messages).
  cp "$WORK/seeded.sqlite3" "$WORK/run.sqlite3"
  target/release/chat-server --bind "127.0.0.1:$PORT" --static-dir dist --database "$WORK/run.sqlite3" \
    --rate-limit 0 --max-connections 100000 --max-connections-per-ip 100000 --outbound-queue-bytes 4194304 \
    >"$WORK/server.log" 2>&1 &
  local pid=$!
  wait_until_ready "$PORT"
  say "storm of $CLIENTS: $who, repetition $rep"
  target/release/chat-load --url "ws://127.0.0.1:$PORT/ws" --protocol json --server-pid "$pid" \
    --storm --clients "$CLIENTS" --rate 2 --duration 10 --settle 3 --connect-concurrency 500 "${sessions[@]}" \
    --label "j/$who" --json-out "$RESULTS/j__${who}__${rep}.json"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}

for rep in $(seq "$REPS"); do
  run guests "$rep"
  run accounts "$rep"
done

echo
echo "| run | joined in s | server CPU s (storm) | + settling | publisher p99 ms during | lost |"
echo "| --- | --- | --- | --- | --- | --- |"
for file in "$RESULTS"/j__*.json; do
  python3 - "$file" <<'PY'
import json, sys, os
r = json.load(open(sys.argv[1]))
s = r["storm"]
name = os.path.basename(sys.argv[1])[3:-5].replace("__", " #")
print(f"| {name} | {s['seconds']:.2f} | {s['server_cpu_seconds']:.2f} | {s['settle_cpu_seconds']:.2f} | "
      f"{s['during']['latency_ms']['p99']:.1f} | {s['during']['lost'] + s['after']['lost']} |")
PY
done
