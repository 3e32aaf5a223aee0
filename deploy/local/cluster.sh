#!/usr/bin/env bash
# A real CyberHub cluster on loopback: Redis, N replicas on PostgreSQL, nginx in front with the
# production routing (nginx/render.sh). Everything runs from installed binaries, each process's
# pid is recorded under the state dir and it is stopped by that pid, never by name, so the
# script cannot touch anything it did not start.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLUSTER_DIR="${CLUSTER_DIR:-$repo/.cluster}"
settings_file="$CLUSTER_DIR/settings"

usage() {
    cat <<'EOF'
usage: deploy/local/cluster.sh COMMAND

commands:
  up                   start what is not running (Redis, database, replicas, nginx), wait until
                       each answers, write $CLUSTER_DIR/env; says so when all is already up
  down                 SIGTERM everything it started, SIGKILL what is left after 20 s; keeps logs
  status               one line per process; exit 0 when all are alive, else 1
  restart-replica N    stop-replica N, then start-replica N
  stop-replica N       SIGTERM replica N (it closes its sockets and drains) and wait for its exit
  kill-replica N       SIGKILL replica N: a crash, for failover tests
  start-replica N      start replica N and wait until it is ready
  stop-redis           SIGTERM Redis     start-redis    start it again
  help                 this text

settings (environment, read by `up` and saved in $CLUSTER_DIR/settings: other commands, and `up`
on a running cluster, use the saved ones, so they need only the same CLUSTER_DIR; `up` on a
stopped cluster takes the environment's, else the saved ones, else these defaults):
  CLUSTER_DIR             state, pids and logs          default <repo>/.cluster
  REPLICAS                number of replicas            default 3
  NGINX_PORT              public entry point            default 8080
  NGINX_WORKERS           nginx worker processes        default auto (one per core); each
                          worker holds two descriptors per proxied socket under its own
                          `ulimit -n`, so more workers hold more sockets
  REPLICA_BASE_PORT       replica i listens on base+i-1 default 4001
  REDIS_PORT              Redis for the event bus       default 6380
  CYBERHUB_BIN            the server binary             default <repo>/target/release/cyberhub
                          (the default is built with `cargo build --release` when missing)
  RATE_LIMITS             on|off                        default off
  JWT_SECRET, PAYMENT_WEBHOOK_SECRET                    default fixed local development values
  CLUSTER_DATABASE_URL    postgres://… to use as is; `private` for a private server; default:
                          database cyberhub_cluster on 127.0.0.1:5432 as user postgres (created
                          if missing), or, when nothing answers there, a private PostgreSQL
                          initialised under $CLUSTER_DIR/pg on PRIVATE_PG_PORT (default 5433)

$CLUSTER_DIR/env, for other tools (`set -a; . .cluster/env; set +a`):
  CYBERHUB_URL REPLICA_URLS REDIS_URL DATABASE_URL JWT_SECRET PAYMENT_WEBHOOK_SECRET
logs: $CLUSTER_DIR/replica-N.log (JSON lines), redis.log, nginx/access.log, nginx/error.log
end-to-end check through nginx: set -a; . $CLUSTER_DIR/env; set +a; node deploy/local/smoke.mjs
EOF
}

say() { echo "cluster: $*"; }
die() {
    echo "cluster: $*" >&2
    exit 1
}

# --- settings ----------------------------------------------------------------------------------

# Precedence: the caller's environment, then what the last `up` saved, then the defaults. A
# running cluster keeps its own, whatever the environment says now: only `up` on a stopped
# cluster takes new ones, and every other command acts on the cluster as it was started.
setting_names=(REPLICAS NGINX_PORT NGINX_WORKERS REPLICA_BASE_PORT REDIS_PORT CYBERHUB_BIN RATE_LIMITS JWT_SECRET
    PAYMENT_WEBHOOK_SECRET CLUSTER_DATABASE_URL PRIVATE_PG_PORT)
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
    : "${JWT_SECRET:=local-cluster-jwt-secret-not-for-production}"
    : "${PAYMENT_WEBHOOK_SECRET:=local-cluster-webhook-secret}"
    : "${CLUSTER_DATABASE_URL:=}"
    for name in REPLICAS NGINX_PORT REPLICA_BASE_PORT REDIS_PORT PRIVATE_PG_PORT; do
        [[ "${!name}" =~ ^[1-9][0-9]*$ ]] || die "$name must be a positive number, not '${!name}'"
    done
    [ "${#JWT_SECRET}" -ge 16 ] || die "JWT_SECRET must be at least 16 characters"
}

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
    assignments "${pairs[@]}" >"$settings_file"
}

write_env_file() {
    local i urls=()
    for i in $(seq 1 "$REPLICAS"); do urls+=("http://127.0.0.1:$(replica_port "$i")"); done
    {
        echo "# Written by deploy/local/cluster.sh up; load with: set -a; . $CLUSTER_DIR/env; set +a"
        assignments CYBERHUB_URL "http://127.0.0.1:$NGINX_PORT" REPLICA_URLS "${urls[*]}" \
            REDIS_URL "$(redis_url)" DATABASE_URL "$DATABASE_URL" JWT_SECRET "$JWT_SECRET" \
            PAYMENT_WEBHOOK_SECRET "$PAYMENT_WEBHOOK_SECRET"
    } >"$CLUSTER_DIR/env"
}

replica_port() { echo $((REPLICA_BASE_PORT + $1 - 1)); }
redis_url() { echo "redis://127.0.0.1:$REDIS_PORT"; }

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
    ! port_in_use "$1" || die "port $1 ($2) is already taken by another process; choose other ports"
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
    exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT" || return 1
    printf 'PING\r\n' >&3
    read -r -t 2 reply <&3 || reply=""
    exec 3>&-
    [[ "$reply" == "+PONG"* ]]
}

start_redis() {
    require_free_port "$REDIS_PORT" redis
    # Events are fire-and-forget pub/sub: nothing in Redis needs to survive it.
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize yes --dir "$CLUSTER_DIR" --pidfile "$CLUSTER_DIR/redis.pid" \
        --logfile "$CLUSTER_DIR/redis.log"
    wait_until "redis on port $REDIS_PORT" 10 redis_answers 2>/dev/null
    say "redis up on $(redis_url)"
}

stop_redis() {
    local pid
    pid="$(redis_pid)" || return 0
    stop_pid redis "$pid" 10
    say "redis stopped"
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
    local i="$1" port
    port="$(replica_port "$i")"
    require_free_port "$port" "replica-$i"
    # setsid: the replica must outlive the shell that ran `up` (and its Ctrl-C).
    PORT="$port" BIND=127.0.0.1 REPLICA_ID="replica-$i" DATABASE_URL="$DATABASE_URL" \
        REDIS_URL="$(redis_url)" JWT_SECRET="$JWT_SECRET" \
        PAYMENT_WEBHOOK_SECRET="$PAYMENT_WEBHOOK_SECRET" RATE_LIMITS="$RATE_LIMITS" \
        LOG_FORMAT=json setsid "$CYBERHUB_BIN" serve </dev/null >>"$CLUSTER_DIR/replica-$i.log" 2>&1 &
    echo $! >"$CLUSTER_DIR/replica-$i.pid"
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
    say "replica-$i stopped"
}

kill_replica() {
    local i="$1" pid
    pid="$(replica_pid "$i")" || die "replica-$i is not running"
    stop_pid "replica-$i" "$pid" 5 KILL
    say "replica-$i killed (SIGKILL, pid $pid)"
}

# --- nginx -------------------------------------------------------------------------------------

nginx_dir() { echo "$CLUSTER_DIR/nginx"; }
nginx_pid() { pid_of "$(nginx_dir)/nginx.pid" "nginx"; }
nginx_health() { curl -fs --max-time 2 -o /dev/null "http://127.0.0.1:$NGINX_PORT/health"; }

render_nginx_conf() {
    local i replicas=()
    for i in $(seq 1 "$REPLICAS"); do replicas+=("replica-$i=127.0.0.1:$(replica_port "$i")"); done
    "$repo/nginx/render.sh" --mode local --listen "127.0.0.1:$NGINX_PORT" --prefix "$(nginx_dir)" \
        --workers "$NGINX_WORKERS" "${replicas[@]}"
}

# -e: never the compiled-in error log under /var, which a non-root user cannot open.
nginx_cmd() { nginx -p "$(nginx_dir)" -e "$(nginx_dir)/error.log" -c nginx.conf "$@"; }

start_nginx() {
    mkdir -p "$(nginx_dir)"
    require_free_port "$NGINX_PORT" nginx
    render_nginx_conf >"$(nginx_dir)/nginx.conf"
    nginx_cmd
    wait_until "nginx on port $NGINX_PORT" 10 nginx_health
    say "nginx up on http://127.0.0.1:$NGINX_PORT"
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
    for tool in redis-server nginx curl psql pg_isready setsid; do
        command -v "$tool" >/dev/null || die "$tool is not installed"
    done
    CYBERHUB_BIN="$(realpath -m "$CYBERHUB_BIN")"
    ensure_binary
    ensure_database
    save_settings
    if ! redis_pid >/dev/null; then start_redis; started=1; fi
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
    say "entry point http://127.0.0.1:$NGINX_PORT; settings for other tools in $CLUSTER_DIR/env"
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
    stop_redis
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
    status_line redis "$(redis_pid || true)" "$(redis_url)"
    if [ "$DATABASE_KIND" = private ]; then status_line postgres "$(private_pg_pid || true)" "127.0.0.1:$PRIVATE_PG_PORT (private)"; fi
    for i in $(seq 1 "$REPLICAS"); do
        pid="$(replica_pid "$i" || true)"
        health=""
        [ -z "$pid" ] || health="$(curl -fsS --max-time 2 "http://127.0.0.1:$(replica_port "$i")/health" 2>&1 || true)"
        status_line "replica-$i" "$pid" "$health"
    done
    status_line nginx "$(nginx_pid || true)" "http://127.0.0.1:$NGINX_PORT"
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
        stop-redis) load_settings; stop_redis ;;
        start-redis)
            load_settings
            if redis_pid >/dev/null; then say "redis is already running"; else start_redis; fi
            ;;
        help | -h | --help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
