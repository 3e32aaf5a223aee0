#!/usr/bin/env bash
# Publish throughput of the bus's Redis, one server against a Redis Cluster of three masters
# (issue 17), side by side in one run. Each topology is started on loopback by
# deploy/local/cluster.sh up-redis; redis-benchmark publishes ~300-byte messages (the size of a
# signed bus message) on the bus's own channels, with SUBSCRIBERS subscribers on each channel, the
# way every replica subscribes:
#   single:  PUBLISH on cyberhub:events (what one Redis and Sentinel carry);
#   cluster: SPUBLISH on three of the bus's shard channels, one owned by each master, the load split
#            evenly over them (what BUS_SHARDS spreads the events over); then, for comparison, plain
#            PUBLISH on one channel through the three masters (what an unsharded bus would cost).
# Prints messages published per second and the messages the subscribers received.
#
# usage: loadtest/bus-throughput.sh      settings: MESSAGES (default 300000), CLIENTS (12),
#        PIPELINE (16), SUBSCRIBERS (2), BASE_PORT (21500; uses 16 ports from it)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MESSAGES="${MESSAGES:-300000}"
CLIENTS="${CLIENTS:-12}"
PIPELINE="${PIPELINE:-16}"
SUBSCRIBERS="${SUBSCRIBERS:-2}"
# Below 22768: a cluster node also listens on its port + 10000, which must stay out of the
# ephemeral range (32768 and up on Linux).
BASE_PORT="${BASE_PORT:-21500}"
# A throwaway password for throwaway servers: redis-benchmark takes it only as -a.
PASSWORD="bench-redis-password-0123456789"
work="$(mktemp -d)"
payload="$(head -c 300 /dev/zero | tr '\0' x)"
pids=()

cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for dir in "$work"/single "$work"/cluster; do
        if [ -d "$dir" ]; then CLUSTER_DIR="$dir" bash "$repo/deploy/local/cluster.sh" down >/dev/null 2>&1 || true; fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

rcli() { REDISCLI_AUTH="$PASSWORD" redis-cli -h 127.0.0.1 --no-auth-warning "$@"; }

# The bus's shard channel i of 16 (src/bus/topology.rs): the first tag whose slot is in part i.
shard_channel() {
    local i="$1" port="$2" k slot
    for k in $(seq 0 500); do
        slot="$(rcli -p "$port" CLUSTER KEYSLOT "cyberhub:events:{$i-$k}")"
        if [ "$slot" -ge $((i * 16384 / 16)) ] && [ "$slot" -lt $(((i + 1) * 16384 / 16)) ]; then
            echo "cyberhub:events:{$i-$k}"
            return
        fi
    done
    echo "no tag found for shard $i" >&2
    exit 1
}

# Subscribes SUBSCRIBERS clients to $2 on port $1 ($3: subscribe or ssubscribe), counting lines.
subscribe() {
    local port="$1" channel="$2" command="$3" n
    for n in $(seq 1 "$SUBSCRIBERS"); do
        # $! is redis-cli itself: stopping it ends the count.
        REDISCLI_AUTH="$PASSWORD" redis-cli -h 127.0.0.1 --no-auth-warning -p "$port" "$command" "$channel" \
            > >(wc -l >"$work/received-$port-$n-${channel//[^a-z0-9]/_}") &
        pids+=("$!")
    done
}

received_messages() {
    local total=0 file lines
    for file in "$work"/received-*; do
        lines="$(cat "$file")"
        # Three lines per message (kind, channel, payload), three for the confirmation.
        total=$((total + (lines - 3) / 3))
    done
    rm -f "$work"/received-*
    echo "$total"
}

stop_subscribers() {
    local pid
    sleep 1
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
    sleep 0.5
}

run_single() {
    local dir="$work/single" started elapsed
    CLUSTER_DIR="$dir" REDIS_MODE=single REDIS_PORT="$BASE_PORT" REDIS_PASSWORD="$PASSWORD" \
        bash "$repo/deploy/local/cluster.sh" up-redis >/dev/null
    subscribe "$BASE_PORT" cyberhub:events subscribe
    sleep 0.5
    started="$(date +%s%N)"
    redis-benchmark -a "$PASSWORD" -h 127.0.0.1 -p "$BASE_PORT" -c "$CLIENTS" -n "$MESSAGES" \
        -P "$PIPELINE" -q PUBLISH cyberhub:events "$payload" >/dev/null 2>&1
    elapsed=$(($(date +%s%N) - started))
    stop_subscribers
    report "1 Redis, PUBLISH on 1 channel" "$elapsed"
    CLUSTER_DIR="$dir" bash "$repo/deploy/local/cluster.sh" down >/dev/null
}

run_cluster() {
    local dir="$work/cluster" first=$((BASE_PORT + 10)) i channel master masters=() channels=() started elapsed
    CLUSTER_DIR="$dir" REDIS_MODE=cluster REDIS_PORT="$first" REDIS_PASSWORD="$PASSWORD" \
        bash "$repo/deploy/local/cluster.sh" up-redis >/dev/null
    # Shards 0, 6 and 11 lie in the three masters' slot ranges (0-5460, 5461-10922, 10923-16383).
    for i in 0 6 11; do
        channel="$(shard_channel "$i" "$first")"
        master="$(rcli -p "$first" CLUSTER NODES | awk -v slot="$(rcli -p "$first" CLUSTER KEYSLOT "$channel")" '
            $3 ~ /master/ { for (f = 9; f <= NF; f++) { n = split($f, r, "-"); hi = (n == 2) ? r[2] : r[1]
                if (r[1] + 0 <= slot && slot <= hi + 0) { split($2, a, "[:@]"); print a[2]; exit } } }')"
        masters+=("$master")
        channels+=("$channel")
        subscribe "$master" "$channel" ssubscribe
    done
    sleep 0.5
    started="$(date +%s%N)"
    local benchmarks=()
    for i in 0 1 2; do
        redis-benchmark -a "$PASSWORD" -h 127.0.0.1 -p "${masters[$i]}" -c $((CLIENTS / 3)) \
            -n $((MESSAGES / 3)) -P "$PIPELINE" -q SPUBLISH "${channels[$i]}" "$payload" >/dev/null 2>&1 &
        benchmarks+=("$!")
    done
    for i in "${benchmarks[@]}"; do wait "$i"; done
    elapsed=$(($(date +%s%N) - started))
    stop_subscribers
    report "Redis Cluster, 3 masters (${masters[*]}), SPUBLISH on 3 shard channels" "$elapsed"

    # The same cluster with plain PUBLISH on one channel (no sharding): Redis Cluster copies every
    # message to every node over its cluster bus, whichever master it was published on.
    subscribe "${masters[0]}" cyberhub:events subscribe
    sleep 0.5
    started="$(date +%s%N)"
    benchmarks=()
    for i in 0 1 2; do
        redis-benchmark -a "$PASSWORD" -h 127.0.0.1 -p "${masters[$i]}" -c $((CLIENTS / 3)) \
            -n $((MESSAGES / 3)) -P "$PIPELINE" -q PUBLISH cyberhub:events "$payload" >/dev/null 2>&1 &
        benchmarks+=("$!")
    done
    for i in "${benchmarks[@]}"; do wait "$i"; done
    elapsed=$(($(date +%s%N) - started))
    stop_subscribers
    report "Redis Cluster, 3 masters, PUBLISH on 1 channel (unsharded, for comparison)" "$elapsed"
    CLUSTER_DIR="$dir" bash "$repo/deploy/local/cluster.sh" down >/dev/null
}

report() {
    local what="$1" elapsed_ns="$2" received
    received="$(received_messages)"
    printf '%-75s %8d msg/s published; %d of %d messages received by %d subscribers per channel\n' \
        "$what:" $((MESSAGES * 1000000000 / elapsed_ns)) "$received" $((MESSAGES * SUBSCRIBERS)) "$SUBSCRIBERS"
}

echo "bus publish throughput: $MESSAGES messages of ${#payload} bytes, $CLIENTS publishing connections, pipeline $PIPELINE, $(nproc) cores"
run_single
run_cluster
