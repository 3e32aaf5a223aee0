#!/usr/bin/env bash
# A real CyberHub cluster on loopback: Redis (one server, a Sentinel set or a Redis Cluster), N
# replicas on PostgreSQL, nginx in front with the production routing (nginx/render.sh). Everything runs from installed binaries, each process's
# pid is recorded under the state dir and it is stopped by that pid, never by name, so the
# script cannot touch anything it did not start.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLUSTER_DIR="${CLUSTER_DIR:-$repo/.cluster}"
# Absolute: redis-server resolves its log file after changing into --dir, so a relative
# CLUSTER_DIR (`CLUSTER_DIR=.cluster`) made it fail to start.
mkdir -p "$CLUSTER_DIR"
CLUSTER_DIR="$(cd "$CLUSTER_DIR" && pwd)"
settings_file="$CLUSTER_DIR/settings"
tls_dir="$CLUSTER_DIR/tls"

usage() {
    cat <<'EOF'
usage: deploy/local/cluster.sh COMMAND

commands:
  up                   start what is not running (Redis, database, replicas, nginx), wait until
                       each answers, write $CLUSTER_DIR/env; says so when all is already up
  up-redis             start only the Redis part (REDIS_MODE: one server, a Sentinel set, a
                       Redis Cluster) and write $CLUSTER_DIR/env with its REDIS_URL
  down                 SIGTERM everything it started, SIGKILL what is left after 20 s; keeps logs
  status               one line per process; exit 0 when all are alive, else 1
  restart-replica N    stop-replica N, then start-replica N
  stop-replica N       SIGTERM replica N (it closes its sockets and drains) and wait for its exit
  kill-replica N       SIGKILL replica N: a crash, for failover tests
  start-replica N      start replica N and wait until it is ready
  stop-redis           SIGTERM Redis     start-redis    start it again (every node of a set)
  kill-redis           SIGKILL Redis: a crash, for failover tests; with REDIS_MODE sentinel the
                       current master, with REDIS_MODE cluster the master serving slot 0
  help                 this text

exit status: 0 done, 1 failed, 2 usage, 3 a port it needs is taken by another process (choose
others and run up again: what is already up keeps running)

settings (environment, read by `up` and saved in $CLUSTER_DIR/settings: other commands, and `up`
on a running cluster, use the saved ones, so they need only the same CLUSTER_DIR; `up` on a
stopped cluster takes the environment's, else the saved ones, else these defaults):
  CLUSTER_DIR             state, pids and logs          default <repo>/.cluster
  REPLICAS                number of replicas            default 3
  NGINX_PORT              public entry point            default 8080
  NGINX_ADDRESSES         loopback addresses nginx listens on (all at NGINX_PORT), space-
                          separated; default 127.0.0.1. More than one lets a load generator
                          open more than the ~28,000 connections the kernel's ephemeral ports
                          allow towards one address and port (loadtest/run.sh uses it)
  NGINX_WORKERS           nginx worker processes        default auto (one per core); each
                          worker holds two descriptors per proxied socket under its own
                          `ulimit -n`, so more workers hold more sockets
  REPLICA_BASE_PORT       replica i listens on base+i-1 default 4001
  REPLICA_PORTS           one port per replica, space-separated (instead of REPLICA_BASE_PORT)
  REPLICA_ENV             extra settings for every replica, space-separated NAME=value words
                          (e.g. "DRAIN_WINDOW=0 TOKEN_EXPIRY_GRACE=1s"); they win over the above
  EXTRA_UPSTREAMS         more servers for nginx besides the replicas, space-separated
                          id=127.0.0.1:port words (a test's fake replica)
  REDIS_PORT              Redis for the event bus       default 6380
  REDIS_MODE              single | sentinel | cluster   default single
                          sentinel: a master and a replica, three sentinels (service name
                          cyberhub), REDIS_URL=redis-sentinel://…; cluster: a Redis Cluster of
                          three masters with a replica each, REDIS_URL=redis-cluster://…
  REDIS_PORTS             the ports of a sentinel set (master, replica, three sentinels) or of
                          a cluster (six nodes), space-separated; default REDIS_PORT and up
  REDIS_TLS               1: every Redis node and sentinel speaks only TLS (replication, the
                          cluster bus and Sentinel's links too), with a throwaway CA, server
                          and client certificates made by openssl under $CLUSTER_DIR/tls; they
                          ask for client certificates (tls-auth-clients yes); the replicas get
                          REDIS_URL=rediss://… (rediss-sentinel, rediss-cluster) and
                          REDIS_TLS_CA_FILE, _CERT_FILE, _KEY_FILE (REPLICA_ENV can override
                          them)                                              default 0
  REDIS_CLUSTER_BUS_PORTS the six cluster nodes' cluster-bus ports   default each node's port +10000
                          (so the nodes' ports must be 55535 or less unless these are given)
  REDIS_NODE_TIMEOUT      ms before a silent master is failed over (Sentinel's
                          down-after-milliseconds, cluster-node-timeout)   default 2000
  CYBERHUB_BIN            the server binary             default <repo>/target/release/cyberhub
                          (the default is built with `cargo build --release` when missing)
  RATE_LIMITS             on|off                        default off
  JWT_SECRET, PAYMENT_WEBHOOK_SECRET, BUS_SECRET, REDIS_PASSWORD
                          default: random, generated by the first `up` and kept in the
                          settings; secrets must be at least 32 bytes (replicas refuse less)
  CLUSTER_DATABASE_URL    postgres://… to use as is; `private` for a private server; default:
                          database cyberhub_cluster on 127.0.0.1:5432 as user postgres (created
                          if missing), or, when nothing answers there, a private PostgreSQL
                          initialised under $CLUSTER_DIR/pg on PRIVATE_PG_PORT (default 5433)

$CLUSTER_DIR/env, for other tools (`set -a; . .cluster/env; set +a`):
  CYBERHUB_URL REPLICA_URLS REDIS_URL DATABASE_URL JWT_SECRET PAYMENT_WEBHOOK_SECRET BUS_SECRET
  REDIS_PASSWORD (REDIS_URL carries it too); with REDIS_TLS=1 also REDIS_TLS_CA_FILE
  REDIS_TLS_CERT_FILE REDIS_TLS_KEY_FILE
logs: $CLUSTER_DIR/replica-N.log (JSON lines), redis.log (redis-N.log, sentinel-N.log),
nginx/access.log, nginx/error.log;
a replica's exit status, once it has exited: $CLUSTER_DIR/replica-N.exit
end-to-end check through nginx: set -a; . $CLUSTER_DIR/env; set +a; node deploy/local/smoke.mjs
EOF
}

say() { echo "cluster: $*"; }
die() {
    echo "cluster: $*" >&2
    exit 1
}
# Exit status 3: the caller may pick other ports and retry.
die_port_taken() {
    echo "cluster: $*" >&2
    exit 3
}

# --- settings ----------------------------------------------------------------------------------

# Precedence: the caller's environment, then what the last `up` saved, then the defaults. A
# running cluster keeps its own, whatever the environment says now: only `up` on a stopped
# cluster takes new ones, and every other command acts on the cluster as it was started.
setting_names=(REPLICAS NGINX_PORT NGINX_ADDRESSES NGINX_WORKERS REPLICA_BASE_PORT REPLICA_PORTS REPLICA_ENV EXTRA_UPSTREAMS
    REDIS_PORT CYBERHUB_BIN RATE_LIMITS JWT_SECRET PAYMENT_WEBHOOK_SECRET BUS_SECRET REDIS_PASSWORD
    CLUSTER_DATABASE_URL PRIVATE_PG_PORT REDIS_MODE REDIS_PORTS REDIS_NODE_TIMEOUT REDIS_CLUSTER_BUS_PORTS
    REDIS_TLS)
declare -A env_settings=()
for name in "${setting_names[@]}"; do
    if [ -n "${!name+set}" ]; then env_settings[$name]="${!name}"; fi
done
# Derived by ensure_database, never taken from the environment (a sourced env file has one).
DATABASE_URL=""
DATABASE_KIND=""

load_saved_settings() {
    # shellcheck source=/dev/null
    if [ -f "$settings_file" ]; then . "$settings_file"; fi
    # Settings files from before these existed: one Redis.
    : "${REDIS_MODE:=single}" "${REDIS_PORTS:=}" "${REDIS_NODE_TIMEOUT:=2000}" "${REDIS_CLUSTER_BUS_PORTS:=}"
    : "${REDIS_TLS:=0}" "${NGINX_ADDRESSES:=127.0.0.1}"
    local address addresses
    read -ra addresses <<<"$NGINX_ADDRESSES"
    [ "${#addresses[@]}" -gt 0 ] || die "NGINX_ADDRESSES is empty"
    for address in "${addresses[@]}"; do
        [[ "$address" =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "NGINX_ADDRESSES are loopback IPv4 addresses, not '$address'"
    done
    NGINX_ADDRESSES="${addresses[*]}"
}

warn_ignored_settings() {
    local name
    for name in "${!env_settings[@]}"; do
        if [ "${env_settings[$name]}" != "${!name}" ]; then
            say "$name ignored: the cluster is running with the settings it was started with (down, then up)"
        fi
    done
}

# For `up` on a stopped cluster.
take_new_settings() {
    local name
    load_saved_settings
    for name in "${!env_settings[@]}"; do
        printf -v "$name" '%s' "${env_settings[$name]}"
    done
    # A database chosen anew is resolved anew.
    if [ -n "${env_settings[CLUSTER_DATABASE_URL]+set}" ]; then DATABASE_KIND=""; fi
    : "${REPLICAS:=3}" "${NGINX_PORT:=8080}" "${NGINX_WORKERS:=auto}" "${REPLICA_BASE_PORT:=4001}" "${REDIS_PORT:=6380}"
    : "${CYBERHUB_BIN:=$repo/target/release/cyberhub}" "${RATE_LIMITS:=off}" "${PRIVATE_PG_PORT:=5433}"
    # No fixed defaults: a published value is no secret (the replicas refuse the old ones).
    : "${JWT_SECRET:=$(random_secret)}" "${PAYMENT_WEBHOOK_SECRET:=$(random_secret)}"
    : "${BUS_SECRET:=$(random_secret)}" "${REDIS_PASSWORD:=$(random_secret)}"
    : "${CLUSTER_DATABASE_URL:=}" "${REPLICA_PORTS:=}" "${REPLICA_ENV:=}" "${EXTRA_UPSTREAMS:=}"
    : "${REDIS_MODE:=single}" "${REDIS_PORTS:=}" "${REDIS_NODE_TIMEOUT:=2000}" "${REDIS_CLUSTER_BUS_PORTS:=}"
    : "${REDIS_TLS:=0}"
    case "$REDIS_TLS" in
        0) ;;
        1) [[ "$CLUSTER_DIR" != *[[:space:]]* ]] || die "REDIS_TLS=1 needs a CLUSTER_DIR without spaces" ;;
        *) die "REDIS_TLS must be 0 or 1, not '$REDIS_TLS'" ;;
    esac
    local needed
    case "$REDIS_MODE" in
        single) needed=0 ;;
        sentinel) needed=5 ;;
        cluster) needed=6 ;;
        *) die "REDIS_MODE must be single, sentinel or cluster, not '$REDIS_MODE'" ;;
    esac
    [[ "$REDIS_NODE_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "REDIS_NODE_TIMEOUT must be milliseconds, not '$REDIS_NODE_TIMEOUT'"
    if [ "$needed" -gt 0 ] && [ -z "$REDIS_PORTS" ]; then
        REDIS_PORTS="$(seq -s ' ' "$REDIS_PORT" $((REDIS_PORT + needed - 1)))"
    fi
    for name in REPLICAS NGINX_PORT REPLICA_BASE_PORT REDIS_PORT PRIVATE_PG_PORT; do
        [[ "${!name}" =~ ^[1-9][0-9]*$ ]] || die "$name must be a positive number, not '${!name}'"
    done
    local word words
    read -ra words <<<"$REPLICA_PORTS"
    if [ "${#words[@]}" -gt 0 ]; then
        [ "${#words[@]}" = "$REPLICAS" ] || die "REPLICA_PORTS must list $REPLICAS ports, not '$REPLICA_PORTS'"
        for word in "${words[@]}"; do
            [[ "$word" =~ ^[1-9][0-9]*$ ]] || die "REPLICA_PORTS: '$word' is not a port"
        done
    fi
    read -ra words <<<"$REDIS_PORTS"
    if [ "$needed" -gt 0 ]; then
        [ "${#words[@]}" = "$needed" ] || die "REDIS_PORTS must list $needed ports for $REDIS_MODE, not '$REDIS_PORTS'"
        for word in "${words[@]}"; do
            [[ "$word" =~ ^[1-9][0-9]*$ ]] || die "REDIS_PORTS: '$word' is not a port"
        done
    fi
    if [ "$REDIS_MODE" = cluster ]; then
        if [ -z "$REDIS_CLUSTER_BUS_PORTS" ]; then
            for word in $REDIS_PORTS; do REDIS_CLUSTER_BUS_PORTS+="$((word + 10000)) "; done
        fi
        read -ra words <<<"$REDIS_CLUSTER_BUS_PORTS"
        [ "${#words[@]}" = 6 ] || die "REDIS_CLUSTER_BUS_PORTS must list 6 ports, not '$REDIS_CLUSTER_BUS_PORTS'"
        for word in "${words[@]}"; do
            if ! [[ "$word" =~ ^[1-9][0-9]*$ ]] || [ "$word" -gt 65535 ]; then
                die "REDIS_CLUSTER_BUS_PORTS: '$word' is not a port (nodes above port 55535 need REDIS_CLUSTER_BUS_PORTS)"
            fi
        done
    fi
    read -ra words <<<"$REPLICA_ENV"
    for word in "${words[@]}"; do
        [[ "$word" =~ ^[A-Z_][A-Z0-9_]*= ]] || die "REPLICA_ENV: '$word' is not NAME=value"
    done
    read -ra words <<<"$EXTRA_UPSTREAMS"
    for word in "${words[@]}"; do
        [[ "$word" =~ ^[a-z0-9-]+=127\.0\.0\.1:[1-9][0-9]*$ ]] || die "EXTRA_UPSTREAMS: '$word' is not id=127.0.0.1:port"
    done
    for name in JWT_SECRET PAYMENT_WEBHOOK_SECRET BUS_SECRET; do
        [ "$(printf %s "${!name}" | wc -c)" -ge 32 ] || die "$name must be at least 32 bytes"
    done
    # It goes into a URL and onto redis-server's command line: keep it to URL-safe characters.
    [[ "$REDIS_PASSWORD" =~ ^[A-Za-z0-9._~-]{16,}$ ]] || die "REDIS_PASSWORD must be 16+ characters of A-Z a-z 0-9 . _ ~ -"
}

random_secret() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }

# KEY='value' lines: what both `.` and most env-file readers understand.
assignments() {
    while [ $# -ge 2 ]; do
        printf "%s='%s'\n" "$1" "${2//\'/\'\\\'\'}"
        shift 2
    done
}

save_settings() {
    local n pairs=()
    for n in "${setting_names[@]}" DATABASE_URL DATABASE_KIND; do
        pairs+=("$n" "${!n}")
    done
    # Holds the secrets: readable by its owner only.
    (umask 077 && assignments "${pairs[@]}" >"$settings_file")
}

write_env_file() {
    local i urls=() entries=() address
    for i in $(seq 1 "$REPLICAS"); do urls+=("http://127.0.0.1:$(replica_port "$i")"); done
    for address in $NGINX_ADDRESSES; do entries+=("http://$address:$NGINX_PORT"); done
    (umask 077 && {
        echo "# Written by deploy/local/cluster.sh up; load with: set -a; . $CLUSTER_DIR/env; set +a"
        assignments CYBERHUB_URL "${entries[0]}" ENTRY_URLS "${entries[*]}" REPLICA_URLS "${urls[*]}" \
            REDIS_URL "$(redis_url)" DATABASE_URL "$DATABASE_URL" JWT_SECRET "$JWT_SECRET" \
            PAYMENT_WEBHOOK_SECRET "$PAYMENT_WEBHOOK_SECRET" BUS_SECRET "$BUS_SECRET" \
            REDIS_PASSWORD "$REDIS_PASSWORD"
        tls_assignments
    } >"$CLUSTER_DIR/env")
}

replica_port() {
    local ports
    read -ra ports <<<"${REPLICA_PORTS:-}"
    if [ "${#ports[@]}" -gt 0 ]; then echo "${ports[$1 - 1]}"; else echo $((REPLICA_BASE_PORT + $1 - 1)); fi
}
redis_url() {
    case "$REDIS_MODE" in
        sentinel)
            echo "$(redis_scheme)-sentinel://:$REDIS_PASSWORD@127.0.0.1:$(sentinel_port 1)?sentinelServiceName=cyberhub&node=127.0.0.1:$(sentinel_port 2)&node=127.0.0.1:$(sentinel_port 3)&sentinelPassword=$REDIS_PASSWORD"
            ;;
        cluster)
            echo "$(redis_scheme)-cluster://:$REDIS_PASSWORD@127.0.0.1:$(redis_node_port 1)?node=127.0.0.1:$(redis_node_port 2)&node=127.0.0.1:$(redis_node_port 3)"
            ;;
        *) echo "$(redis_scheme)://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT" ;;
    esac
}

# --- processes ---------------------------------------------------------------------------------

# A pid file outlives its process and pids are reused: only signal a pid whose command line
# still names what we started.
pid_of() {
    local file="$1" expect="$2" pid
    [ -s "$file" ] || return 1
    pid="$(head -n1 "$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$expect" || return 1
    echo "$pid"
}

# A process that exited stays a zombie until its parent reaps it, and ours are reaped by init,
# which here takes its time: a zombie counts as gone.
is_running() {
    local state
    state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null)" || return 1
    [ -n "$state" ] && [ "${state%% *}" != Z ]
}

# Signals by pid, waits up to $3 seconds, then SIGKILLs. Returns once the process is gone.
stop_pid() {
    local name="$1" pid="$2" wait="$3" signal="${4:-TERM}"
    kill "-$signal" "$pid" 2>/dev/null || return 0
    wait_gone "$name" "$pid" "$wait"
}

# Separate from the signal: a second SIGTERM must not cut a replica's drain short.
wait_gone() {
    local name="$1" pid="$2" wait="$3" _
    for _ in $(seq 1 $((wait * 10))); do
        is_running "$pid" || return 0
        sleep 0.1
    done
    say "$name ($pid) still running after ${wait}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while is_running "$pid"; do sleep 0.1; done
}

port_in_use() { (: <"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

require_free_port() {
    ! port_in_use "$1" || die_port_taken "port $1 ($2) is already taken by another process; choose other ports"
}

# A server that lost the race for its port (taken between the check and its bind) says so in its
# log: exit 3 then, like a port found taken before the start.
die_if_port_lost() {
    if grep -qs "Address already in use" "$1"; then die_port_taken "$2: its port was taken meanwhile (see $1)"; fi
}

wait_until() {
    local what="$1" timeout="$2" _
    shift 2
    for _ in $(seq 1 $((timeout * 5))); do
        "$@" && return 0
        sleep 0.2
    done
    die "$what did not come up within ${timeout}s"
}

# --- Redis -------------------------------------------------------------------------------------

redis_pid() { pid_of "$CLUSTER_DIR/redis.pid" "redis-server"; }

redis_answers() {
    local reply
    if [ "$REDIS_TLS" = 1 ]; then
        node_answers "$REDIS_PORT"
        return
    fi
    exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" || return 1
    printf 'AUTH %s\r\nPING\r\n' "$REDIS_PASSWORD" >&3
    read -r -t 2 reply <&3 || reply=""
    read -r -t 2 reply <&3 || reply=""
    exec 3>&-
    [[ "$reply" == "+PONG"* ]]
}

start_redis() {
    require_free_port "$REDIS_PORT" redis
    local listen=(--port "$REDIS_PORT")
    if [ "$REDIS_TLS" = 1 ]; then
        ensure_tls_files
        # TLS only: no clear-text port a client could fall back to.
        listen=(--port 0 --tls-port "$REDIS_PORT" --tls-cert-file "$tls_dir/server.pem"
            --tls-key-file "$tls_dir/server.key" --tls-ca-cert-file "$tls_dir/ca.pem" --tls-auth-clients yes)
    fi
    # Events are fire-and-forget pub/sub: nothing in Redis needs to survive it. The password
    # goes in through stdin as a config file, not onto the command line where `ps` shows it.
    printf 'requirepass %s\n' "$REDIS_PASSWORD" |
        redis-server - "${listen[@]}" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize yes --dir "$CLUSTER_DIR" --pidfile "$CLUSTER_DIR/redis.pid" \
            --logfile "$CLUSTER_DIR/redis.log" || die "redis-server failed to start; see $CLUSTER_DIR/redis.log"
    if ! (wait_until "redis on port $REDIS_PORT" 10 redis_answers 2>/dev/null); then
        die_if_port_lost "$CLUSTER_DIR/redis.log" redis
        die "redis did not come up within 10s; see $CLUSTER_DIR/redis.log"
    fi
    say "redis up on $(redis_scheme)://:***@127.0.0.1:$REDIS_PORT"
}

stop_redis() {
    local pid
    pid="$(redis_pid)" || return 0
    stop_pid redis "$pid" 10
    say "redis stopped"
}

kill_redis() {
    local pid
    pid="$(redis_pid)" || die "redis is not running"
    stop_pid redis "$pid" 5 KILL
    say "redis killed (SIGKILL, pid $pid)"
}

# --- TLS (REDIS_TLS=1) ---------------------------------------------------------------------------
# A throwaway CA signs the server's certificate (for 127.0.0.1) and a client certificate; made
# once per CLUSTER_DIR, readable by its owner only.

redis_scheme() { if [ "$REDIS_TLS" = 1 ]; then echo rediss; else echo redis; fi; }

ensure_tls_files() {
    [ -s "$tls_dir/client.pem" ] && return 0
    command -v openssl >/dev/null || die "openssl is not installed (REDIS_TLS=1)"
    (
        umask 077
        mkdir -p "$tls_dir"
        cd "$tls_dir" || exit 1
        local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl req -x509 "${ec[@]}" -days 30 -subj /CN=cyberhub-local-ca -keyout ca.key -out ca.pem &&
            openssl req "${ec[@]}" -subj /CN=127.0.0.1 -keyout server.key -out server.csr &&
            openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -days 30 -extfile server.ext -out server.pem &&
            openssl req "${ec[@]}" -subj /CN=cyberhub-replica -keyout client.key -out client.csr &&
            openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -days 30 -extfile client.ext -out client.pem
    ) >"$CLUSTER_DIR/openssl.log" 2>&1 || die "openssl could not make the TLS files; see $CLUSTER_DIR/openssl.log"
}

# redis-cli's options for the TLS Redis (REDIS_TLS=1); none without TLS. Paths without spaces
# (checked by `up`), so the words split as they should.
tls_cli() {
    if [ "$REDIS_TLS" = 1 ]; then
        echo "--tls --cacert $tls_dir/ca.pem --cert $tls_dir/client.pem --key $tls_dir/client.key"
    fi
}

# A node's or a sentinel's config lines: TLS only (no clear-text port), client certificates
# required, replication, the cluster bus and Sentinel's links over TLS too.
tls_conf() {
    local port="$1"
    if [ "$REDIS_TLS" = 1 ]; then
        printf 'port 0\ntls-port %s\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\n' \
            "$port" "$tls_dir/server.pem" "$tls_dir/server.key" "$tls_dir/ca.pem"
        printf 'tls-auth-clients yes\ntls-replication yes\n'
        if [ "$REDIS_MODE" = cluster ]; then printf 'tls-cluster yes\n'; fi
    else
        printf 'port %s\n' "$port"
    fi
}

# NAME=value words for a replica (the CA, the client certificate and key); none without TLS.
tls_env() {
    if [ "$REDIS_TLS" = 1 ]; then
        echo "REDIS_TLS_CA_FILE=$tls_dir/ca.pem REDIS_TLS_CERT_FILE=$tls_dir/client.pem REDIS_TLS_KEY_FILE=$tls_dir/client.key"
    fi
}

tls_assignments() {
    if [ "$REDIS_TLS" = 1 ]; then
        assignments REDIS_TLS_CA_FILE "$tls_dir/ca.pem" REDIS_TLS_CERT_FILE "$tls_dir/client.pem" \
            REDIS_TLS_KEY_FILE "$tls_dir/client.key"
    fi
}

# --- Redis Sentinel set and Redis Cluster (REDIS_MODE) ----------------------------------------
# sentinel: a master and a replica (redis-1, redis-2) watched by three sentinels (sentinel-1..3),
# service name `cyberhub`. cluster: six cluster-mode nodes (redis-1..6) made into three masters
# with a replica each. Every node and sentinel has its own config file under $CLUSTER_DIR (Redis
# and Sentinel rewrite them on failover) holding the password, so it never reaches a command line.

redis_data_nodes() { if [ "$REDIS_MODE" = sentinel ]; then echo 2; else echo 6; fi; }
redis_node_port() { local ports; read -ra ports <<<"$REDIS_PORTS"; echo "${ports[$1 - 1]}"; }
sentinel_port() { redis_node_port $((2 + $1)); }
cluster_bus_port() { local ports; read -ra ports <<<"$REDIS_CLUSTER_BUS_PORTS"; echo "${ports[$1 - 1]}"; }
redis_node_pid() { pid_of "$CLUSTER_DIR/redis-$1.pid" "redis-server"; }
sentinel_pid() { pid_of "$CLUSTER_DIR/sentinel-$1.pid" "redis-server"; }

# redis-cli with the password from the environment (REDISCLI_AUTH), never on its command line.
# With REDIS_TLS=1 over TLS, with the client certificate.
# shellcheck disable=SC2046 # tls_cli's words
rcli() { REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -h 127.0.0.1 --no-auth-warning $(tls_cli) "$@"; }

node_answers() { [ "$(rcli -p "$1" PING 2>/dev/null)" = PONG ]; }

write_node_conf() {
    local i="$1" port conf
    port="$(redis_node_port "$i")"
    conf="$CLUSTER_DIR/redis-$i.conf"
    mkdir -p "$CLUSTER_DIR/redis-$i"
    (umask 077 && {
        tls_conf "$port"
        printf 'bind 127.0.0.1\ndaemonize yes\nsave ""\nappendonly no\n'
        printf 'dir %s\npidfile %s\nlogfile %s\n' "$CLUSTER_DIR/redis-$i" "$CLUSTER_DIR/redis-$i.pid" "$CLUSTER_DIR/redis-$i.log"
        printf 'requirepass %s\nmasterauth %s\n' "$REDIS_PASSWORD" "$REDIS_PASSWORD"
        if [ "$REDIS_MODE" = cluster ]; then
            printf 'cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout %s\n' "$REDIS_NODE_TIMEOUT"
            printf 'cluster-port %s\n' "$(cluster_bus_port "$i")"
            # The shards whose master is alive keep working while another fails over.
            printf 'cluster-require-full-coverage no\ncluster-allow-pubsubshard-when-down yes\n'
        elif [ "$i" != 1 ]; then
            printf 'replicaof 127.0.0.1 %s\n' "$(redis_node_port 1)"
        fi
    } >"$conf")
}

write_sentinel_conf() {
    local i="$1" conf="$CLUSTER_DIR/sentinel-$1.conf"
    (umask 077 && {
        tls_conf "$(sentinel_port "$i")"
        printf 'bind 127.0.0.1\ndaemonize yes\n'
        printf 'dir %s\npidfile %s\nlogfile %s\n' "$CLUSTER_DIR" "$CLUSTER_DIR/sentinel-$i.pid" "$CLUSTER_DIR/sentinel-$i.log"
        printf 'requirepass %s\nsentinel sentinel-pass %s\n' "$REDIS_PASSWORD" "$REDIS_PASSWORD"
        printf 'sentinel monitor cyberhub 127.0.0.1 %s 2\n' "$(redis_node_port 1)"
        printf 'sentinel auth-pass cyberhub %s\n' "$REDIS_PASSWORD"
        printf 'sentinel down-after-milliseconds cyberhub %s\n' "$REDIS_NODE_TIMEOUT"
        printf 'sentinel failover-timeout cyberhub %s\n' $((REDIS_NODE_TIMEOUT * 5))
    } >"$conf")
}

start_redis_node() {
    local i="$1" port
    port="$(redis_node_port "$i")"
    require_free_port "$port" "redis-$i"
    if [ "$REDIS_MODE" = cluster ]; then require_free_port "$(cluster_bus_port "$i")" "redis-$i cluster bus"; fi
    # A node that ran before keeps its config (Sentinel or the cluster rewrote it).
    [ -f "$CLUSTER_DIR/redis-$i.conf" ] || write_node_conf "$i"
    redis-server "$CLUSTER_DIR/redis-$i.conf" || die "redis-$i failed to start; see $CLUSTER_DIR/redis-$i.log"
    if ! (wait_until "redis-$i on port $port" 10 node_answers "$port" 2>/dev/null); then
        die_if_port_lost "$CLUSTER_DIR/redis-$i.log" "redis-$i"
        die "redis-$i did not come up within 10s; see $CLUSTER_DIR/redis-$i.log"
    fi
}

start_sentinel() {
    local i="$1" port
    port="$(sentinel_port "$i")"
    require_free_port "$port" "sentinel-$i"
    [ -f "$CLUSTER_DIR/sentinel-$i.conf" ] || write_sentinel_conf "$i"
    redis-server "$CLUSTER_DIR/sentinel-$i.conf" --sentinel || die "sentinel-$i failed to start"
    if ! (wait_until "sentinel-$i on port $port" 10 node_answers "$port" 2>/dev/null); then
        die_if_port_lost "$CLUSTER_DIR/sentinel-$i.log" "sentinel-$i"
        die "sentinel-$i did not come up within 10s; see $CLUSTER_DIR/sentinel-$i.log"
    fi
}

# The master's port, as the sentinels see it.
sentinel_master_port() {
    local i reply
    for i in 1 2 3; do
        reply="$(rcli -p "$(sentinel_port "$i")" SENTINEL get-master-addr-by-name cyberhub 2>/dev/null | tail -n1)"
        if [[ "$reply" =~ ^[0-9]+$ ]]; then echo "$reply"; return 0; fi
    done
    return 1
}

sentinels_agree() {
    local i others
    for i in 1 2 3; do
        others="$(rcli -p "$(sentinel_port "$i")" SENTINEL master cyberhub 2>/dev/null |
            awk 'prev == "num-other-sentinels" { print; exit } { prev = $0 }')"
        [ "$others" = 2 ] || return 1
    done
}

replica_synced() { rcli -p "$1" INFO replication 2>/dev/null | grep -q '^master_link_status:up'; }

cluster_ok() {
    local i
    for i in $(seq 1 6); do
        rcli -p "$(redis_node_port "$i")" CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok' || return 1
    done
}

# The port of the live master serving hash slot $2, as node $1 sees the cluster.
cluster_master_port_for_slot() {
    rcli -p "$1" CLUSTER NODES 2>/dev/null | awk -v slot="$2" '
        $3 ~ /master/ && $3 !~ /fail/ {
            for (f = 9; f <= NF; f++) {
                n = split($f, range, "-")
                low = range[1]; high = (n == 2) ? range[2] : range[1]
                if (low ~ /^[0-9]+$/ && low + 0 <= slot && slot <= high + 0) {
                    split($2, address, "[:@]"); print address[2]; exit
                }
            }
        }'
}

start_topology() {
    local i n ports=() live
    if [ "$REDIS_TLS" = 1 ]; then ensure_tls_files; fi
    n="$(redis_data_nodes)"
    for i in $(seq 1 "$n"); do
        if ! redis_node_pid "$i" >/dev/null; then start_redis_node "$i"; fi
        ports+=("127.0.0.1:$(redis_node_port "$i")")
    done
    if [ "$REDIS_MODE" = sentinel ]; then
        for i in 1 2 3; do
            if ! sentinel_pid "$i" >/dev/null; then start_sentinel "$i"; fi
        done
        wait_until "the sentinels to find each other" 30 sentinels_agree
        wait_until "the sentinels to name a master" 10 sentinel_master_port >/dev/null
        for i in $(seq 1 "$n"); do
            live="$(redis_node_port "$i")"
            if [ "$live" != "$(sentinel_master_port)" ]; then wait_until "redis-$i to sync" 30 replica_synced "$live"; fi
        done
        say "redis sentinel set up: master 127.0.0.1:$(sentinel_master_port), sentinels $(sentinel_port 1) $(sentinel_port 2) $(sentinel_port 3)"
    else
        if rcli -p "$(redis_node_port 1)" CLUSTER INFO | grep -q '^cluster_slots_assigned:0'; then
            # shellcheck disable=SC2046 # tls_cli's words
            REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli --no-auth-warning $(tls_cli) --cluster create "${ports[@]}" \
                --cluster-replicas 1 --cluster-yes >"$CLUSTER_DIR/cluster-create.log" 2>&1 ||
                die "redis-cli --cluster create failed; see $CLUSTER_DIR/cluster-create.log"
        fi
        wait_until "the Redis Cluster to be ok on every node" 30 cluster_ok
        for i in $(seq 1 "$n"); do
            live="$(redis_node_port "$i")"
            if rcli -p "$live" ROLE | head -n1 | grep -q slave; then wait_until "redis-$i to sync" 30 replica_synced "$live"; fi
        done
        say "redis cluster up: 3 masters, 3 replicas on ${ports[*]}"
    fi
}

stop_topology() {
    local i pid
    for i in 1 2 3; do
        if pid="$(sentinel_pid "$i")"; then stop_pid "sentinel-$i" "$pid" 10; fi
    done
    for i in $(seq 1 "$(redis_data_nodes)"); do
        if pid="$(redis_node_pid "$i")"; then stop_pid "redis-$i" "$pid" 10; fi
    done
    say "redis $REDIS_MODE stopped"
}

# SIGKILL the master: Sentinel's, or (cluster) the one serving slot 0, where the first shards live.
kill_master() {
    local port i pid
    if [ "$REDIS_MODE" = sentinel ]; then
        port="$(sentinel_master_port)" || die "no sentinel names a master"
    else
        for i in $(seq 1 6); do
            if redis_node_pid "$i" >/dev/null; then
                port="$(cluster_master_port_for_slot "$(redis_node_port "$i")" 0)"
                [ -z "$port" ] || break
            fi
        done
        [ -n "${port:-}" ] || die "no node names the master of slot 0"
    fi
    for i in $(seq 1 "$(redis_data_nodes)"); do
        if [ "$(redis_node_port "$i")" = "$port" ]; then
            pid="$(redis_node_pid "$i")" || die "redis-$i (the master) is not running"
            stop_pid "redis-$i" "$pid" 5 KILL
            say "redis master redis-$i on port $port killed (SIGKILL, pid $pid)"
            return 0
        fi
    done
    die "the master's port $port is none of ours"
}

topology_all_alive() {
    local i
    if [ "$REDIS_MODE" = sentinel ]; then
        for i in 1 2 3; do sentinel_pid "$i" >/dev/null || return 1; done
    fi
    for i in $(seq 1 "$(redis_data_nodes)"); do redis_node_pid "$i" >/dev/null || return 1; done
}

topology_any_alive() {
    local i
    for i in 1 2 3; do if sentinel_pid "$i" >/dev/null; then return 0; fi; done
    for i in $(seq 1 "$(redis_data_nodes)"); do if redis_node_pid "$i" >/dev/null; then return 0; fi; done
    return 1
}

topology_status() {
    local i port role
    for i in $(seq 1 "$(redis_data_nodes)"); do
        port="$(redis_node_port "$i")"
        role="$(rcli -p "$port" ROLE 2>/dev/null | head -n1 || true)"
        status_line "redis-$i" "$(redis_node_pid "$i" || true)" "127.0.0.1:$port ${role:-}"
    done
    if [ "$REDIS_MODE" = sentinel ]; then
        for i in 1 2 3; do status_line "sentinel-$i" "$(sentinel_pid "$i" || true)" "127.0.0.1:$(sentinel_port "$i")"; done
    fi
}

# --- PostgreSQL --------------------------------------------------------------------------------

pg_dir() { echo "$CLUSTER_DIR/pg"; }
pg_bin() { find /usr/lib/postgresql/*/bin -maxdepth 0 2>/dev/null | sort -V | tail -n1; }
private_pg_pid() { pid_of "$(pg_dir)/data/postmaster.pid" "postgres"; }

# initdb and postgres refuse to run as root; as root they run as the `postgres` system user.
as_pg_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

psql_ok() { psql "$1" -qAtc 'SELECT 1' >/dev/null 2>&1; }

# The first URL that logs into the shared server as postgres: trust, then .ci's password.
shared_admin_url() {
    local url
    pg_isready -q -h 127.0.0.1 -p 5432 || return 1
    for url in postgres://postgres@127.0.0.1:5432 postgres://postgres:postgres@127.0.0.1:5432; do
        if psql_ok "$url/postgres"; then echo "$url"; return 0; fi
    done
    say "PostgreSQL on 5432 answers but refuses user postgres; using a private server" >&2
    return 1
}

start_private_pg() {
    local bin dir
    bin="$(pg_bin)"
    dir="$(pg_dir)"
    [ -n "$bin" ] || die "no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)"
    private_pg_pid >/dev/null && return 0
    mkdir -p "$dir"
    [ "$(id -u)" != 0 ] || chown postgres: "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        as_pg_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
            >"$dir/initdb.log" 2>&1 || die "initdb failed, see $dir/initdb.log"
    fi
    require_free_port "$PRIVATE_PG_PORT" "private postgres"
    # No unix socket: its path would have to fit 107 bytes and a directory the user may write.
    as_pg_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 \
        -o "-p $PRIVATE_PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" \
        start >/dev/null || die "private PostgreSQL did not start, see $dir/postgres.log"
    say "private PostgreSQL up on 127.0.0.1:$PRIVATE_PG_PORT"
}

stop_private_pg() {
    local pid
    pid="$(private_pg_pid)" || return 0
    # SIGINT is PostgreSQL's fast shutdown: roll back sessions and stop cleanly.
    stop_pid postgres "$pid" 20 INT
    say "private PostgreSQL stopped"
}

# DATABASE_KIND: given (CLUSTER_DATABASE_URL, used as is), shared (the server on 5432), or
# private (ours under $CLUSTER_DIR/pg). Decided once per cluster, so a restart finds its data.
ensure_database() {
    local admin
    if [ -z "$DATABASE_KIND" ]; then
        case "$CLUSTER_DATABASE_URL" in
            postgres://* | postgresql://*) DATABASE_KIND=given ;;
            private) DATABASE_KIND=private ;;
            "") if shared_admin_url >/dev/null; then DATABASE_KIND=shared; else DATABASE_KIND=private; fi ;;
            *) die "CLUSTER_DATABASE_URL must be postgres://… or 'private'" ;;
        esac
    fi
    case "$DATABASE_KIND" in
        given)
            DATABASE_URL="$CLUSTER_DATABASE_URL"
            return
            ;;
        shared) admin="$(shared_admin_url)" || die "PostgreSQL on 127.0.0.1:5432 no longer answers as postgres" ;;
        private)
            start_private_pg
            admin="postgres://postgres@127.0.0.1:$PRIVATE_PG_PORT"
            ;;
    esac
    if [ "$(psql "$admin/postgres" -qAtc "SELECT 1 FROM pg_database WHERE datname = 'cyberhub_cluster'")" != 1 ]; then
        psql "$admin/postgres" -qc 'CREATE DATABASE cyberhub_cluster' >/dev/null
        say "created database cyberhub_cluster"
    fi
    DATABASE_URL="$admin/cyberhub_cluster"
}

# --- replicas ----------------------------------------------------------------------------------

check_replica_number() {
    if ! [[ "${1:-}" =~ ^[1-9][0-9]*$ ]] || [ "$1" -gt "$REPLICAS" ]; then
        die "replica number must be 1..$REPLICAS, not '${1:-}'"
    fi
}

replica_pid() { pid_of "$CLUSTER_DIR/replica-$1.pid" "$CYBERHUB_BIN"; }
replica_ready() { curl -fs --max-time 2 -o /dev/null "http://127.0.0.1:$(replica_port "$1")/ready"; }

ensure_binary() {
    [ -x "$CYBERHUB_BIN" ] && return
    [ "$CYBERHUB_BIN" = "$repo/target/release/cyberhub" ] || die "CYBERHUB_BIN $CYBERHUB_BIN is not an executable"
    say "building $CYBERHUB_BIN"
    (cd "$repo" && cargo build --release)
}

# Starts the replica in the background; wait_replica tells whether it came up.
launch_replica() {
    local i="$1" port extra tls _
    local pid_file="$CLUSTER_DIR/replica-$i.pid" exit_file="$CLUSTER_DIR/replica-$i.exit"
    port="$(replica_port "$i")"
    require_free_port "$port" "replica-$i"
    read -ra extra <<<"$REPLICA_ENV"
    read -ra tls <<<"$(tls_env)"
    rm -f "$pid_file" "$exit_file"
    # setsid: the replica must outlive the shell that ran `up` (and its Ctrl-C). The shell around
    # it is its parent, so its exit status is kept (replica-N.exit) and it is reaped at once.
    # Expanded by that shell: $1 the pid file, $2 the exit file, then the command.
    # shellcheck disable=SC2016
    local wrapper='"${@:3}" & echo $! >"$1"; wait $!; echo $? >"$2"'
    PORT="$port" BIND=127.0.0.1 REPLICA_ID="replica-$i" DATABASE_URL="$DATABASE_URL" \
        REDIS_URL="$(redis_url)" JWT_SECRET="$JWT_SECRET" BUS_SECRET="$BUS_SECRET" \
        PAYMENT_WEBHOOK_SECRET="$PAYMENT_WEBHOOK_SECRET" RATE_LIMITS="$RATE_LIMITS" LOG_FORMAT=json \
        env "${tls[@]}" "${extra[@]}" setsid bash -c "$wrapper" \
        replica "$pid_file" "$exit_file" "$CYBERHUB_BIN" serve </dev/null >>"$CLUSTER_DIR/replica-$i.log" 2>&1 &
    for _ in $(seq 1 50); do
        [ -s "$pid_file" ] && return 0
        sleep 0.1
    done
    die "replica-$i was not launched within 5s"
}

# " (exit N)" once the replica's exit status is recorded (its shell writes it right after).
exit_note() {
    local file="$CLUSTER_DIR/replica-$1.exit" _
    for _ in $(seq 1 20); do
        if [ -s "$file" ]; then echo " (exit $(head -n1 "$file"))"; return; fi
        sleep 0.1
    done
}

wait_replica() {
    local i="$1" pid _
    local log="$CLUSTER_DIR/replica-$i.log"
    pid="$(head -n1 "$CLUSTER_DIR/replica-$i.pid")"
    for _ in $(seq 1 150); do
        if replica_ready "$i"; then
            say "replica-$i up on http://127.0.0.1:$(replica_port "$i") (pid $pid)"
            return 0
        fi
        is_running "$pid" || break
        sleep 0.2
    done
    echo "cluster: replica-$i did not become ready within 30s; last lines of $log:" >&2
    tail -n 30 "$log" >&2
    kill -KILL "$pid" 2>/dev/null || true
    die_if_port_lost "$log" "replica-$i"
    exit 1
}

start_replica() {
    launch_replica "$1"
    wait_replica "$1"
}

stop_replica() {
    local i="$1" pid
    pid="$(replica_pid "$i")" || return 0
    # 20 s: SIGTERM closes the sockets, then waits for requests in flight.
    stop_pid "replica-$i" "$pid" 20
    say "replica-$i stopped$(exit_note "$i")"
}

kill_replica() {
    local i="$1" pid
    pid="$(replica_pid "$i")" || die "replica-$i is not running"
    stop_pid "replica-$i" "$pid" 5 KILL
    say "replica-$i killed (SIGKILL, pid $pid)$(exit_note "$i")"
}

# --- nginx -------------------------------------------------------------------------------------

nginx_dir() { echo "$CLUSTER_DIR/nginx"; }
nginx_pid() { pid_of "$(nginx_dir)/nginx.pid" "nginx"; }
# The first of NGINX_ADDRESSES.
nginx_url() { echo "http://${NGINX_ADDRESSES%% *}:$NGINX_PORT"; }
nginx_health() { curl -fs --max-time 2 -o /dev/null "$(nginx_url)/health"; }

render_nginx_conf() {
    local i servers=() extra listens=() address
    for i in $(seq 1 "$REPLICAS"); do servers+=("replica-$i=127.0.0.1:$(replica_port "$i")"); done
    for address in $NGINX_ADDRESSES; do listens+=(--listen "$address:$NGINX_PORT"); done
    read -ra extra <<<"$EXTRA_UPSTREAMS"
    "$repo/nginx/render.sh" --mode local "${listens[@]}" --prefix "$(nginx_dir)" \
        --workers "$NGINX_WORKERS" "${servers[@]}" "${extra[@]}"
}

# -e: never the compiled-in error log under /var, which a non-root user cannot open.
nginx_cmd() { nginx -p "$(nginx_dir)" -e "$(nginx_dir)/error.log" -c nginx.conf "$@"; }

start_nginx() {
    mkdir -p "$(nginx_dir)"
    require_free_port "$NGINX_PORT" nginx
    render_nginx_conf >"$(nginx_dir)/nginx.conf"
    if ! nginx_cmd; then
        die_if_port_lost "$(nginx_dir)/error.log" nginx
        die "nginx did not start; see $(nginx_dir)/error.log"
    fi
    wait_until "nginx on port $NGINX_PORT" 10 nginx_health
    say "nginx up on $(nginx_url)"
}

# `up` on a running cluster picks up template edits: a reload keeps the open sockets.
reload_nginx_if_changed() {
    local dir pid
    dir="$(nginx_dir)"
    pid="$(nginx_pid)" || return 0
    render_nginx_conf >"$dir/nginx.conf.new"
    if cmp -s "$dir/nginx.conf.new" "$dir/nginx.conf"; then
        rm -f "$dir/nginx.conf.new"
        return 1
    fi
    mv "$dir/nginx.conf" "$dir/nginx.conf.old"
    mv "$dir/nginx.conf.new" "$dir/nginx.conf"
    if ! nginx_cmd -t -q; then
        mv "$dir/nginx.conf.old" "$dir/nginx.conf"
        die "new nginx config fails nginx -t; kept the running one"
    fi
    kill -HUP "$pid"
    say "nginx config changed: reloaded"
}

stop_nginx() {
    local pid
    pid="$(nginx_pid)" || return 0
    stop_pid nginx "$pid" 10
    say "nginx stopped"
}

# --- commands ----------------------------------------------------------------------------------

any_alive() {
    local i
    if redis_pid || nginx_pid || private_pg_pid; then return 0; fi >/dev/null
    if [ "${REDIS_MODE:-single}" != single ] && topology_any_alive; then return 0; fi
    for i in $(seq 1 "$REPLICAS"); do
        if replica_pid "$i" >/dev/null; then return 0; fi
    done
    return 1
}

cmd_up() {
    local started=0 launched=() i tool
    mkdir -p "$CLUSTER_DIR"
    load_saved_settings
    if [ -f "$settings_file" ] && any_alive; then
        warn_ignored_settings
    else
        take_new_settings
    fi
    for tool in redis-server redis-cli nginx curl psql pg_isready setsid; do
        command -v "$tool" >/dev/null || die "$tool is not installed"
    done
    CYBERHUB_BIN="$(realpath -m "$CYBERHUB_BIN")"
    ensure_binary
    ensure_database
    save_settings
    if [ "$REDIS_MODE" != single ]; then
        if ! topology_all_alive; then start_topology; started=1; fi
    elif ! redis_pid >/dev/null; then
        start_redis
        started=1
    fi
    # Launched together, waited for in turn: migrations take an advisory lock, so they run once.
    for i in $(seq 1 "$REPLICAS"); do
        if ! replica_pid "$i" >/dev/null; then launch_replica "$i"; launched+=("$i"); fi
    done
    for i in "${launched[@]}"; do wait_replica "$i"; started=1; done
    if ! nginx_pid >/dev/null; then
        start_nginx
        started=1
    elif reload_nginx_if_changed; then
        started=1
    fi
    # nginx skips a replica for fail_timeout after it failed: when every replica just came back,
    # wait until nginx routes again rather than hand over an entry point that answers 503.
    wait_until "a replica through nginx" 15 nginx_health
    write_env_file
    if [ "$started" = 0 ]; then say "already up"; fi
    say "entry point $(nginx_url); settings for other tools in $CLUSTER_DIR/env"
}

# Only Redis, e.g. a Sentinel set or a Redis Cluster on loopback to point a replica or a benchmark at.
cmd_up_redis() {
    mkdir -p "$CLUSTER_DIR"
    load_saved_settings
    if [ -f "$settings_file" ] && any_alive; then warn_ignored_settings; else take_new_settings; fi
    command -v redis-server >/dev/null || die "redis-server is not installed"
    command -v redis-cli >/dev/null || die "redis-cli is not installed"
    save_settings
    if [ "$REDIS_MODE" != single ]; then
        topology_all_alive || start_topology
    elif ! redis_pid >/dev/null; then
        start_redis
    fi
    (umask 077 && { assignments REDIS_URL "$(redis_url)" REDIS_PASSWORD "$REDIS_PASSWORD"; tls_assignments; } >"$CLUSTER_DIR/env")
    say "REDIS_URL for other tools in $CLUSTER_DIR/env"
}

cmd_down() {
    local i pids=() pid
    stop_nginx
    # All replicas drain at once rather than one after another.
    for i in $(seq 1 "$REPLICAS"); do
        if pid="$(replica_pid "$i")"; then kill -TERM "$pid" 2>/dev/null || true; pids+=("$i:$pid"); fi
    done
    for pid in "${pids[@]}"; do wait_gone "replica-${pid%%:*}" "${pid#*:}" 20; done
    [ "${#pids[@]}" = 0 ] || say "replicas stopped"
    if [ "$REDIS_MODE" = single ]; then stop_redis; else stop_topology; fi
    stop_private_pg
    say "down; logs kept in $CLUSTER_DIR"
}

status_line() {
    local name="$1" pid="$2" detail="${3:-}"
    if [ -n "$pid" ]; then
        printf '%-10s %-8s %-6s %s\n' "$name" "$pid" alive "$detail"
    else
        printf '%-10s %-8s %-6s %s\n' "$name" - dead "$detail"
        all_alive=0
    fi
}

cmd_status() {
    local i pid health
    all_alive=1
    if [ "$REDIS_MODE" = single ]; then
        status_line redis "$(redis_pid || true)" "redis://:***@127.0.0.1:$REDIS_PORT"
    else
        topology_status
    fi
    if [ "$DATABASE_KIND" = private ]; then status_line postgres "$(private_pg_pid || true)" "127.0.0.1:$PRIVATE_PG_PORT (private)"; fi
    for i in $(seq 1 "$REPLICAS"); do
        pid="$(replica_pid "$i" || true)"
        health=""
        [ -z "$pid" ] || health="$(curl -fsS --max-time 2 "http://127.0.0.1:$(replica_port "$i")/health" 2>&1 || true)"
        if [ -z "$pid" ] && [ -s "$CLUSTER_DIR/replica-$i.exit" ]; then health="exit $(head -n1 "$CLUSTER_DIR/replica-$i.exit")"; fi
        status_line "replica-$i" "$pid" "$health"
    done
    status_line nginx "$(nginx_pid || true)" "$(nginx_url)"
    [ "$all_alive" = 1 ]
}

# Every command but `up` acts on the cluster as started; without one there is nothing to act on.
load_settings() {
    [ -f "$settings_file" ] || die "no cluster in $CLUSTER_DIR (run up first)"
    load_saved_settings
}

main() {
    local cmd="${1:-help}"
    [ $# -eq 0 ] || shift
    case "$cmd" in
        up) cmd_up ;;
        up-redis) cmd_up_redis ;;
        down)
            if [ -f "$settings_file" ]; then load_settings; cmd_down; else say "no cluster in $CLUSTER_DIR"; fi
            ;;
        status) load_settings; cmd_status ;;
        start-replica)
            load_settings; check_replica_number "${1:-}"
            if replica_pid "$1" >/dev/null; then say "replica-$1 is already running"; else start_replica "$1"; fi
            ;;
        stop-replica) load_settings; check_replica_number "${1:-}"; stop_replica "$1" ;;
        kill-replica) load_settings; check_replica_number "${1:-}"; kill_replica "$1" ;;
        restart-replica)
            load_settings; check_replica_number "${1:-}"
            stop_replica "$1"
            start_replica "$1"
            ;;
        stop-redis)
            load_settings
            if [ "$REDIS_MODE" = single ]; then stop_redis; else stop_topology; fi
            ;;
        kill-redis)
            load_settings
            if [ "$REDIS_MODE" = single ]; then kill_redis; else kill_master; fi
            ;;
        start-redis)
            load_settings
            if [ "$REDIS_MODE" != single ]; then
                start_topology
            elif redis_pid >/dev/null; then
                say "redis is already running"
            else
                start_redis
            fi
            ;;
        help | -h | --help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
