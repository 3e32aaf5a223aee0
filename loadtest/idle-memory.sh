#!/usr/bin/env bash
# Resident memory per idle authenticated socket on ONE replica (release build, SQLite, no bus):
# starts the server, reads VmRSS, opens N idle websockets with a minimal client, waits, reads
# VmRSS again. Usage: loadtest/idle-memory.sh [N=5000] [websocket|polling]
# polling holds N Engine.IO long-polling sessions instead (one keep-alive connection each with a
# GET pending). CYBERHUB_BIN picks the binary (to compare two builds side by side).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-5000}"
transport="${2:-websocket}"
bin="${CYBERHUB_BIN:-$repo/target/release/cyberhub}"
[ -x "$bin" ] || (cd "$repo" && cargo build --release)
[ -d "$repo/tests/js/node_modules/ws" ] || (cd "$repo/tests/js" && npm ci --no-audit --no-fund --silent)
work="$(mktemp -d)"
port="${PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
secret="idle-memory-secret-0123456789"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
PORT="$port" BIND=127.0.0.1 DATABASE_URL="sqlite://$work/m.db?mode=rwc" JWT_SECRET="$secret" \
    RATE_LIMITS=off RUST_LOG=warn "$bin" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server ${client:-} 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.1; done
before=$(awk '/VmRSS/{print $2}' "/proc/$server/status")
node "$repo/loadtest/lib/idle-sockets.cjs" "ws://127.0.0.1:$port" "$n" "$secret" "$transport" >"$work/client.log" 2>&1 &
client=$!
for _ in $(seq 120); do grep -q connected "$work/client.log" && break; sleep 0.5; done
sleep 5
after=$(awk '/VmRSS/{print $2}' "/proc/$server/status")
sockets=$(curl -fs "http://127.0.0.1:$port/health" | sed -E 's/.*"clients":([0-9]+).*/\1/')
echo "transport=$transport sockets=$sockets rss_before=${before}kB rss_after=${after}kB per_idle_socket=$(( (after - before) * 1024 / n )) bytes"
