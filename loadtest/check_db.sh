#!/usr/bin/env bash
# After a load test: does the database agree with what was sent?
#
#   loadtest/check_db.sh [results/<scenario>-summary.json ...]
#
# Always (every user in the database):
#   - no balance is negative;
#   - the ledger explains every balance: per user, the sum of ledger amounts equals the balance,
#     the versions are exactly 1..n with n = balance_version, and the newest row's balance_after
#     is the balance.
# For each k6 summary given (written by handleSummary) that recorded payments:
#   - the payments credited in the database under that run's payment ids (lt-<runId>-…) are
#     exactly what k6 saw answered duplicate:false: same count, same sum of cents, and each has
#     its one `payment` ledger row.
# Needs DATABASE_URL (postgres://…) and psql. Exit 1 on any mismatch.
set -euo pipefail

: "${DATABASE_URL:?DATABASE_URL must name the cluster database (postgres://...)}"
case "$DATABASE_URL" in
postgres://* | postgresql://*) ;;
*) echo "check_db: DATABASE_URL must be postgres://..." >&2; exit 2 ;;
esac

failed=0
ok() { echo "check_db: ok    $*"; }
bad() { echo "check_db: FAIL  $*"; failed=1; }
q() { psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -qAtX -F ' ' "$@"; }

negative="$(q -c 'SELECT count(*) FROM users WHERE balance < 0')"
users="$(q -c 'SELECT count(*) FROM users')"
if [ "$negative" = 0 ]; then ok "no negative balance among $users users"; else bad "$negative users with a negative balance"; fi

# The users whose ledger does not explain their balance.
wrong_cte=$(cat <<'SQL'
WITH l AS (
    SELECT user_id, sum(amount) AS total, count(*) AS n, min(version) AS lo, max(version) AS hi
    FROM ledger GROUP BY user_id
), last AS (
    SELECT DISTINCT ON (user_id) user_id, balance_after FROM ledger ORDER BY user_id, version DESC
), wrong AS (
    SELECT u.id, u.balance, u.balance_version, coalesce(l.total, 0) AS total, coalesce(l.n, 0) AS n,
           l.lo, l.hi, last.balance_after
    FROM users u LEFT JOIN l ON l.user_id = u.id LEFT JOIN last ON last.user_id = u.id
    WHERE coalesce(l.total, 0) <> u.balance
       OR coalesce(l.n, 0) <> u.balance_version
       OR (l.n > 0 AND (l.lo <> 1 OR l.hi <> l.n OR last.balance_after <> u.balance))
)
SQL
)
read -r wrong rows <<<"$(q -c "$wrong_cte SELECT (SELECT count(*) FROM wrong), (SELECT count(*) FROM ledger)")"
if [ "$wrong" = 0 ]; then
    ok "ledger explains every balance ($rows ledger rows: sums equal balances, versions 1..n contiguous)"
else
    bad "$wrong users whose ledger does not explain their balance, for example:"
    echo "check_db:       user balance balance_version ledger_sum ledger_rows min_version max_version last_balance_after"
    q -c "$wrong_cte SELECT * FROM wrong LIMIT 10" | sed 's/^/check_db:       /'
fi

for summary in "$@"; do
    [ -f "$summary" ] || { bad "no summary file $summary"; continue; }
    run_id="$(jq -r '.runId // empty' "$summary")"
    sent="$(jq -r '.metrics.payments_sent.values.count // 0' "$summary")"
    if [ -z "$run_id" ] || [ "$sent" = 0 ]; then
        ok "$(basename "$summary"): no payments sent, nothing to compare"
        continue
    fi
    want_n="$(jq -r '.metrics.payments_credited.values.count // 0' "$summary")"
    want_cents="$(jq -r '.metrics.payments_credited_cents.values.count // 0' "$summary")"
    # psql interpolates :'prefix' only in SQL it reads, not in -c.
    counts="$(q -v prefix="lt-$run_id-" -f - <<'SQL'
SELECT (SELECT count(*) FROM payments WHERE left(payment_id, length(:'prefix')) = :'prefix'),
       (SELECT coalesce(sum(amount), 0) FROM payments WHERE left(payment_id, length(:'prefix')) = :'prefix'),
       (SELECT count(*) FROM ledger WHERE kind = 'payment' AND left(reference, length(:'prefix')) = :'prefix'),
       (SELECT coalesce(sum(amount), 0) FROM ledger WHERE kind = 'payment' AND left(reference, length(:'prefix')) = :'prefix');
SQL
)" || { bad "run $run_id: could not query the payments"; continue; }
    read -r got_n got_cents ledger_n ledger_cents <<<"$counts"
    what="run $run_id: k6 saw $want_n first-success credits, $want_cents cents ($sent callbacks sent)"
    if [ "$got_n" = "$want_n" ] && [ "$got_cents" = "$want_cents" ]; then
        ok "$what; database credited $got_n payments, $got_cents cents"
    else
        bad "$what; database credited $got_n payments, $got_cents cents"
    fi
    if [ "$ledger_n" = "$got_n" ] && [ "$ledger_cents" = "$got_cents" ]; then
        ok "run $run_id: one payment ledger row per credited payment"
    else
        bad "run $run_id: $ledger_n payment ledger rows ($ledger_cents cents) for $got_n payments ($got_cents cents)"
    fi
done

exit "$failed"
