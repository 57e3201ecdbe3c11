#!/usr/bin/env bash
# Installs what building and testing need, skipping what is already present.
# Sourced by scripts/run and scripts/test; every step is idempotent.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TRUNK_VERSION="0.21.14"
BINARYEN_VERSION="131.0.0"
TOOLS_DIR="${CHAT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/chat-tools}"
export PATH="$HOME/.cargo/bin:$TOOLS_DIR/binaryen/node_modules/.bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

# The wasm-bindgen version pinned in Cargo.lock; the CLI must match it exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

ensure_wasm_target() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

ensure_trunk() {
  if [[ "$(trunk --version 2>/dev/null)" != "trunk $TRUNK_VERSION" ]]; then
    say "installing trunk $TRUNK_VERSION"
    cargo install --locked "trunk@$TRUNK_VERSION"
  fi
}

ensure_wasm_bindgen_cli() {
  local version
  version="$(wasm_bindgen_version)"
  if [[ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $version" ]] \
    || ! command -v wasm-bindgen-test-runner >/dev/null; then
    say "installing wasm-bindgen-cli $version"
    # Not --locked: its lock file names a dependency version the registry lacks.
    cargo install --force wasm-bindgen-cli --version "$version"
  fi
}

ensure_wasm_opt() {
  if ! wasm-opt --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
    say "installing wasm-opt (binaryen@$BINARYEN_VERSION from npm) into $TOOLS_DIR"
    mkdir -p "$TOOLS_DIR/binaryen"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS_DIR/binaryen" "binaryen@$BINARYEN_VERSION"
  fi
}

ensure_chromium() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    say "installing chromium and chromium-driver from apt"
    local sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver
  fi
}

# nginx from apt, for the end-to-end test of the documented proxy setup
# (each test starts its own private instance on loopback).
ensure_nginx() {
  if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    say "installing nginx from apt"
    local sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nginx
  fi
  # Debian installs it in /usr/sbin, which a non-root PATH may lack.
  export PATH="$PATH:/usr/sbin"
}

# Everything needed to build the server and the web client.
ensure_build_tools() {
  ensure_wasm_target
  ensure_trunk
  ensure_wasm_bindgen_cli
  ensure_wasm_opt
  # trunk runs offline, so every crate must be on disk first.
  (cd "$ROOT" && cargo fetch --quiet)
}

# The address chat-server will listen on, given its arguments: the last
# --bind (as "--bind X" or "--bind=X"), else $CHAT_BIND, else the default.
bind_address() {
  local bind="${CHAT_BIND:-127.0.0.1:8080}"
  while (($#)); do
    case "$1" in
      --bind=*) bind="${1#--bind=}" ;;
      --bind) [[ $# -ge 2 ]] && { bind="$2"; shift; } ;;
    esac
    shift
  done
  printf '%s\n' "$bind"
}

# The release server and the release web bundle.
build_release() {
  say "building the web client (trunk build --release)"
  (cd "$ROOT" && trunk build --release)
  say "building the server (cargo build --release)"
  (cd "$ROOT" && cargo build --release -p chat-server)
}

# Waits (up to 10 s) for a server started with `--port-file FILE` to write its
# address; prints it. Fails, showing LOG, if the server never listens.
wait_for_address() {
  local file="$1" log="$2"
  for _ in $(seq 100); do
    if [[ -s "$file" ]]; then
      cat "$file"
      return 0
    fi
    sleep 0.1
  done
  echo "the server did not start:" >&2
  cat "$log" >&2
  return 1
}

# Waits (up to 10 s) until the server on 127.0.0.1:PORT answers /readyz.
wait_until_ready() {
  local port="$1"
  for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "the server on port $port never became ready" >&2
  return 1
}

# PostgreSQL from apt (Debian 12: 15), for the tests of the shared store.
PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
ensure_postgres() {
  if [[ ! -x "$PG_BIN/initdb" ]]; then
    say "installing postgresql from apt"
    local sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    # Only the server binaries are used: no cluster is started as a service.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql
  fi
}

# redis-server, for the multi-node tests (each starts private servers of its
# own on free loopback ports, without persistence, and kills them at the end).
ensure_redis() {
  if ! command -v redis-server >/dev/null; then
    say "installing redis-server from apt"
    local sudo=""
    [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server
    # The package may start a system service; the tests never use it.
    $sudo service redis-server stop >/dev/null 2>&1 || true
  fi
}

# A TCP port nothing listens on at 127.0.0.1 (a random one from a range
# outside the kernel's ephemeral ports, checked by trying to connect).
free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# Starts a private PostgreSQL on a free loopback port in a fresh temporary
# folder (trust authentication: only this machine's loopback reaches it) and
# exports CHAT_TEST_POSTGRES_URL (its admin database) and
# CHAT_TEST_POSTGRES_DIR. Stop it with stop_private_postgres. As root, the
# server runs as the `postgres` user (initdb refuses root).
start_private_postgres() {
  ensure_postgres
  local dir port run_as=()
  dir="$(mktemp -d /tmp/chat-pg.XXXXXX)"
  port="$(free_port)"
  if [[ "$(id -u)" -eq 0 ]]; then
    chown postgres "$dir"
    run_as=(runuser -u postgres --)
  fi
  "${run_as[@]}" "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
  # In its configuration, so a test that stops and starts it (a fault test) needs no options.
  printf '%s\n' "listen_addresses = '127.0.0.1'" "port = $port" "unix_socket_directories = '$dir'" \
    "fsync = off" "max_connections = 300" >>"$dir/data/postgresql.conf"
  "${run_as[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null \
    || { cat "$dir/server.log" >&2; return 1; }
  export CHAT_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  export CHAT_TEST_POSTGRES_DIR="$dir"
  # How a test stops and starts it: pg_ctl, as the user that owns it.
  export CHAT_TEST_PG_CTL="$PG_BIN/pg_ctl"
  export CHAT_TEST_POSTGRES_USER="$(stat -c %U "$dir")"
  say "private PostgreSQL on 127.0.0.1:$port ($dir)"
}

stop_private_postgres() {
  local dir="${CHAT_TEST_POSTGRES_DIR:-}"
  [[ -n "$dir" && -d "$dir/data" ]] || return 0
  local run_as=()
  [[ "$(id -u)" -eq 0 ]] && run_as=(runuser -u postgres --)
  "${run_as[@]}" "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
