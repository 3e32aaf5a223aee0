#!/usr/bin/env bash
# Replica CPU per `cases:updated` delivery on ONE replica (release build, SQLite, no bus): starts
# the server, opens N idle authenticated websockets, measures the replica's CPU while idle and
# while EDITS case price edits are fanned out to every socket (loadtest/lib/fanout-cpu.cjs).
# Usage: loadtest/fanout-cpu.sh [N=3000] [EDITS=40] [GAP_MS=250]
# CYBERHUB_BIN picks the binary (to compare two builds side by side); SERVER=node measures the
# incumbent's stack instead (Node.js + socket.io 4.8, loadtest/node-baseline/server.cjs) with the
# same client. Run it a few times: the figure is (busy − idle) CPU ticks (10 ms each) over
# N × EDITS deliveries, split into user and system time. For the kernel's share alone (one send()
# per socket and nothing else), see loadtest/tools/write-floor.py.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-3000}"
edits="${2:-40}"
gap="${3:-250}"
bin="${CYBERHUB_BIN:-$repo/target/release/cyberhub}"
[ -d "$repo/tests/js/node_modules/ws" ] || (cd "$repo/tests/js" && npm ci --no-audit --no-fund --silent)
work="$(mktemp -d)"
port="${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
secret="fanout-cpu-secret-0123456789abc"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "${SERVER:-cyberhub}" = node ]; then
    baseline="$repo/loadtest/node-baseline"
    [ -d "$baseline/node_modules/socket.io" ] || (cd "$baseline" && npm ci --no-audit --no-fund --silent)
    PORT="$port" JWT_SECRET="$secret" node "$baseline/server.cjs" >"$work/server.log" 2>&1 &
    ready="socket.io/?EIO=4&transport=polling"
else
    [ -x "$bin" ] || (cd "$repo" && cargo build --release)
    PORT="$port" BIND=127.0.0.1 DATABASE_URL="sqlite://$work/m.db?mode=rwc" JWT_SECRET="$secret" \
        RATE_LIMITS=off RUST_LOG=warn "$bin" >"$work/server.log" 2>&1 &
    ready="ready"
fi
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/$ready" >/dev/null && break; sleep 0.1; done
node "$repo/loadtest/lib/fanout-cpu.cjs" "ws://127.0.0.1:$port" "$n" "$secret" "$server" "$edits" "$gap"
