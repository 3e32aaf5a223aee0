#!/usr/bin/env bash
# Prints a complete nginx.conf for a set of CyberHub replicas, from cyberhub.conf.template.
# One template for every environment, so the local cluster exercises the production routing.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: nginx/render.sh --listen ADDR [--prefix DIR] [--mode local|production] [--workers N]
                       ID=HOST:PORT...

  --listen ADDR   nginx `listen` value: 80, 127.0.0.1:8080, [::1]:8080; repeat it to listen
                  on several addresses or ports
  --prefix DIR    local mode only (required there): absolute directory for the pid file, logs
                  and temp files, so nginx runs as any user without touching /var
  --mode MODE     local (default) or production: logs to /dev/stdout and /dev/stderr and runs
                  workers as `nginx`, as in the official nginx image
  --workers N     worker processes (default auto: one per core); each has its own descriptor
                  limit, and a proxied socket takes two descriptors
  ID=HOST:PORT    one per replica: its REPLICA_ID (the value of its cyberhub_replica cookie)
                  and its address

example:
  nginx/render.sh --listen 127.0.0.1:8080 --prefix "$PWD/.cluster/nginx" \
      replica-1=127.0.0.1:4001 replica-2=127.0.0.1:4002 replica-3=127.0.0.1:4003
EOF
}

die() {
    echo "render.sh: $*" >&2
    exit 2
}

template="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cyberhub.conf.template"
listens=()
prefix=""
mode="local"
workers="auto"
ids=()
addrs=()

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --listen) [ $# -ge 2 ] || die "--listen needs a value"; listens+=("$2"); shift 2 ;;
            --prefix) [ $# -ge 2 ] || die "--prefix needs a value"; prefix="$2"; shift 2 ;;
            --mode) [ $# -ge 2 ] || die "--mode needs a value"; mode="$2"; shift 2 ;;
            --workers) [ $# -ge 2 ] || die "--workers needs a value"; workers="$2"; shift 2 ;;
            -h | --help) usage; exit 0 ;;
            -*) die "unknown option $1 (see --help)" ;;
            *=*) add_replica "${1%%=*}" "${1#*=}"; shift ;;
            *) die "expected ID=HOST:PORT, got '$1'" ;;
        esac
    done
    [ "${#listens[@]}" -gt 0 ] || die "--listen is required"
    local listen
    for listen in "${listens[@]}"; do
        [[ "$listen" =~ ^([A-Za-z0-9.-]+:|\[[0-9A-Fa-f:.]+\]:)?[0-9]+$ ]] || die "bad --listen '$listen'"
    done
    [[ "$workers" =~ ^(auto|[1-9][0-9]*)$ ]] || die "--workers is auto or a positive number, not '$workers'"
    [ "${#ids[@]}" -gt 0 ] || die "at least one ID=HOST:PORT replica is required"
    case "$mode" in
        local)
            [ -n "$prefix" ] || die "--prefix is required in local mode"
            [[ "$prefix" == /* ]] || die "--prefix must be absolute: nginx would resolve it against its own prefix"
            # Paths are written inside double quotes; access_log would expand a '$'.
            [[ "$prefix" != *[\"\\\$\;]* && "$prefix" != *$'\n'* ]] || die "--prefix has a character nginx cannot take"
            prefix="${prefix%/}"
            ;;
        production) ;;
        *) die "--mode is local or production, not '$mode'" ;;
    esac
}

add_replica() {
    local id="$1" addr="$2" seen
    # The id becomes a map key and part of an upstream name: keep it to a plain token, and away
    # from the words map treats as directives.
    [[ "$id" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "bad replica id '$id' (letters, digits, . _ -)"
    case "$id" in default | hostnames | include | volatile) die "replica id '$id' is a map keyword" ;; esac
    [[ "$addr" =~ ^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]+$ ]] || die "bad address '$addr' for $id (HOST:PORT)"
    # map keys compare case-insensitively, so Replica-1 and replica-1 would be one key.
    for seen in "${ids[@]}"; do
        [ "${seen,,}" != "${id,,}" ] || die "replica id '$id' given twice"
    done
    ids+=("$id")
    addrs+=("$addr")
}

main_context() {
    if [ "$mode" = production ]; then
        printf '%s\n' 'user nginx;' 'pid /var/run/nginx.pid;' 'error_log /dev/stderr warn;'
    else
        # No `user`: as root the workers drop to nginx's default user, otherwise they stay the
        # invoking user; either way every file lives under the prefix.
        printf '%s\n' "pid \"$prefix/nginx.pid\";" "error_log \"$prefix/error.log\" warn;"
    fi
}

http_paths() {
    [ "$mode" = local ] || return 0
    local kind
    echo "# Local mode: nothing is written outside the prefix (Debian's defaults are under /var)."
    for kind in client_body proxy fastcgi uwsgi scgi; do
        printf '%s_temp_path "%s/%s_temp";\n' "$kind" "$prefix" "$kind"
    done
}

# Production asks for 200000 descriptors and 65535 connections per worker (give the container
# the descriptors). Locally nginx cannot go above this shell's hard limit: ask for no more than
# it allows, rather than log an alert per worker and promise connections it cannot open.
rlimit_nofile() {
    local want=200000 hard
    hard="$(ulimit -Hn)"
    if [ "$mode" = local ] && [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
        want="$hard"
    fi
    echo "$want"
}

worker_connections() {
    local want=65535 limit
    limit="$(rlimit_nofile)"
    [ "$limit" -ge "$want" ] || want="$limit"
    echo "$want"
}

access_log() {
    if [ "$mode" = production ]; then echo /dev/stdout; else echo "\"$prefix/access.log\""; fi
}

servers() {
    local addr
    # fail_timeout: how long a failed replica is skipped; short, so a restarted one rejoins fast.
    for addr in "${addrs[@]}"; do
        printf 'server %s max_fails=1 fail_timeout=5s;\n' "$addr"
    done
}

cookie_map() {
    local id
    for id in "${ids[@]}"; do
        printf '%s cyberhub_replica_%s;\n' "$id" "$id"
    done
}

replica_upstreams() {
    local i j
    for i in "${!ids[@]}"; do
        printf 'upstream cyberhub_replica_%s {\n' "${ids[$i]}"
        printf '    zone cyberhub_replica_%s 64k;\n' "${ids[$i]}"
        printf '    server %s max_fails=0;\n' "${addrs[$i]}"
        for j in "${!ids[@]}"; do
            [ "$i" = "$j" ] || printf '    server %s backup;\n' "${addrs[$j]}"
        done
        printf '    keepalive 16;\n    keepalive_timeout 10s;\n}\n'
    done
}

# One `listen` per --listen. reuseport: one listening socket per worker, so the kernel spreads
# new connections evenly; with a shared socket one worker can take most of them and reach its
# own descriptor limit while the others idle. backlog: nginx asks for 511 by default, and a burst
# of connects (a club reconnecting after a restart) overflowed it (the kernel caps it at
# net.core.somaxconn).
listen_directives() {
    local listen
    for listen in "${listens[@]}"; do printf 'listen %s reuseport backlog=4096;\n' "$listen"; done
}

# A placeholder alone on its line is replaced by a block, each line indented like the
# placeholder (an empty block removes the line); inline placeholders are plain values. The
# values travel through ENVIRON because awk -v would interpret backslashes.
fill_template() {
    MAIN_CONTEXT="$(main_context)" HTTP_PATHS="$(http_paths)" ACCESS_LOG="$(access_log)" \
    SERVERS="$(servers)" COOKIE_MAP="$(cookie_map)" REPLICA_UPSTREAMS="$(replica_upstreams)" \
    LISTEN="$(listen_directives)" WORKER_PROCESSES="$workers" RLIMIT_NOFILE="$(rlimit_nofile)" \
    WORKER_CONNECTIONS="$(worker_connections)" \
    awk '
        match($0, /^[ ]*@@[A-Z_]+@@$/) {
            indent = $0; sub(/@@.*/, "", indent)
            name = $0; gsub(/[ @]/, "", name)
            if (ENVIRON[name] == "") next
            n = split(ENVIRON[name], lines, "\n")
            for (k = 1; k <= n; k++) print (lines[k] == "" ? "" : indent lines[k])
            next
        }
        {
            while (match($0, /@@[A-Z_]+@@/)) {
                name = substr($0, RSTART + 2, RLENGTH - 4)
                $0 = substr($0, 1, RSTART - 1) ENVIRON[name] substr($0, RSTART + RLENGTH)
            }
            print
        }
    ' "$template"
}

main() {
    local args=("$@")
    parse_args "$@"
    echo "# Generated by nginx/render.sh from nginx/cyberhub.conf.template: edit those, not this."
    echo "# nginx/render.sh ${args[*]}"
    fill_template
}

main "$@"
