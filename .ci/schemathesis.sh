#!/usr/bin/env bash
# Tests the running API against its own OpenAPI document with schemathesis, an independent tester:
# builds cyberhub, starts one node on a free port with a fresh SQLite database, seeds a case, a
# balance, a few opens and a payment (so lists have rows and ids to reuse), and runs every check
# with a fixed seed for SCHEMATHESIS_SECONDS (default 60). Any failure, a 5xx included (the
# `not_a_server_error` check), or a node that died on the way, exits non-zero.
#
# The payment callback is signed by .ci/schemathesis_hooks.py. Rate limits are off for the run
# (RATE_LIMITS=off): the tester sends hundreds of requests a second from one address.
#
#   .ci/schemathesis.sh                      # 60 s, seed 1313
#   SCHEMATHESIS_SECONDS=120 .ci/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${SCHEMATHESIS_SECONDS:-60}
seed=${SCHEMATHESIS_SEED:-1313}
report_dir=${SCHEMATHESIS_REPORT_DIR:-target/schemathesis}

# shellcheck source=.ci/services.sh
source .ci/services.sh
ensure_python_tools >/dev/null
echo "== cargo build"
cargo build --locked --quiet
bin=$PWD/target/debug/cyberhub

work=$(mktemp -d)
node_pid=
trap 'if [ -n "$node_pid" ]; then kill "$node_pid" 2>/dev/null || true; wait "$node_pid" 2>/dev/null || true; fi
      rm -rf "$work"' EXIT

random_hex() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
JWT_SECRET=$(random_hex)
PAYMENT_WEBHOOK_SECRET=$(random_hex)
export BIND=127.0.0.1 PORT=$port DATABASE_URL="sqlite://$work/cyberhub.db?mode=rwc" RATE_LIMITS=off \
    JWT_SECRET PAYMENT_WEBHOOK_SECRET REPLICA_ID=schemathesis RUST_LOG=warn

echo "== starting a node on $base"
"$bin" serve >"$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 1 100); do
    curl -fsS "$base/ready" >/dev/null 2>&1 && break
    kill -0 "$node_pid" 2>/dev/null || { cat "$work/node.log"; echo "the node did not start" >&2; exit 1; }
    sleep 0.1
done
curl -fsS "$base/ready" >/dev/null

admin_id=$(cat /proc/sys/kernel/random/uuid)
admin=$("$bin" token --sub "$admin_id" --role admin --ttl 2h)

api() { # METHOD PATH [BODY]: answers the body; fails on a non-2xx
    curl -fsS -X "$1" "$base$2" -H "authorization: Bearer $admin" -H 'content-type: application/json' ${3:+-d "$3"}
}
echo "== seeding a case, a balance, three opens and a payment"
case_id=$(api POST /api/admin/cases '{"name":"Seed","image":"","price":1.5,"items":[
    {"name":"2 coins","image":"","rarity":"common","kind":"money","value":2,"weight":3},
    {"name":"AK-47 | Redline","image":"","rarity":"rare","kind":"skin","value":10.25,"weight":1}]}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["case"]["id"])')
api POST /api/admin/balance/add "{\"userId\":\"$admin_id\",\"amount\":20,\"reason\":\"seed\"}" >/dev/null
for _ in 1 2 3; do api POST /api/cases/open "{\"caseId\":\"$case_id\"}" >/dev/null; done
payment="{\"paymentId\":\"seed-1\",\"userId\":\"$admin_id\",\"amount\":5,\"status\":\"success\"}"
signature=$(printf '%s' "$payment" | openssl dgst -sha256 -hmac "$PAYMENT_WEBHOOK_SECRET" -r | cut -d' ' -f1)
curl -fsS "$base/api/payment/callback" -H 'content-type: application/json' -H "x-signature: $signature" \
    -d "$payment" >/dev/null

echo "== schemathesis: all checks, seed $seed, $seconds s"
status=0
PYTHONPATH="$PWD/.ci${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=schemathesis_hooks \
    st --config-file .ci/schemathesis.toml run "$base/api/openapi.json" \
    --checks all --seed "$seed" --max-time "$seconds" \
    -H "Authorization: Bearer $admin" \
    --report junit --report-dir "$report_dir" --no-color || status=$?

if ! kill -0 "$node_pid" 2>/dev/null; then
    echo "the node died during the run:" >&2
    tail -50 "$work/node.log" >&2
    exit 1
fi
if grep -q 'panicked' "$work/node.log"; then
    echo "the node panicked during the run:" >&2
    grep -A5 'panicked' "$work/node.log" >&2
    exit 1
fi
exit "$status"
