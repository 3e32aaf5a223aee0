#!/usr/bin/env bash
# The database alone, without the HTTP stack: pgbench runs a case open as the locking transaction
# (seven round trips) and as one call of open_case(), alternating, in a scratch database created
# from the project's migrations.
#   loadtest/pgbench/run.sh [clients=32] [seconds=15] [rounds=3]
# The server is TEST_DATABASE_URL's (default postgres://postgres@127.0.0.1:5432/postgres); needs
# psql and pgbench.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
clients="${1:-32}" seconds="${2:-15}" rounds="${3:-3}"
[ $((clients * rounds * 2)) -le 1024 ] || { echo "clients × rounds × 2 must fit the 1,024 players of setup.sql" >&2; exit 2; }
admin="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
db_name="cyberhub_pgbench_$$"
db="${admin%/*}/$db_name"
psql -q "$admin" -c "CREATE DATABASE $db_name"
trap 'psql -q "$admin" -c "DROP DATABASE IF EXISTS $db_name WITH (FORCE)"' EXIT
for migration in "$here"/../../migrations/postgres/*.sql; do psql -q -v ON_ERROR_STOP=1 "$db" -f "$migration"; done
psql -q -v ON_ERROR_STOP=1 "$db" -f "$here/setup.sql"

# Every run gets players of its own (:base), so each one-call client starts at its player's
# real nonce 0 and every call must open: a stale expectation would be a cheap no-op and inflate
# the figure, so the script checks that each transaction wrote its inventory row.
base=0
for round in $(seq 1 "$rounds"); do
    for shape in locking-open one-call-open; do
        out=$(pgbench -n -c "$clients" -j 2 -T "$seconds" -D nonce=0 -D base="$base" -f "$here/$shape.sql" "$db")
        tps=$(awk '/^tps/ {print $3}' <<<"$out")
        transactions=$(awk '/number of transactions actually processed/ {split($6, a, "/"); print a[1]}' <<<"$out")
        opened=$(psql -At "$db" -c "SELECT count(*) FROM inventory WHERE user_id IN \
            (SELECT ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid FROM generate_series($base + 1, $base + $clients) g)")
        echo "round $round  $shape  $tps tx/s  ($transactions transactions, $opened opens)"
        if [ -z "$transactions" ] || [ "$transactions" != "$opened" ]; then
            echo "pgbench: $shape made ${opened:-?} opens in ${transactions:-?} transactions" >&2
            exit 1
        fi
        base=$((base + clients))
    done
done
