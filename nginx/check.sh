#!/usr/bin/env bash
# Guards the nginx config: nginx/nginx.conf must be exactly what render.sh makes of the template
# (nobody hand-edits the generated file), and the template must pass `nginx -t`. Exits non-zero
# on drift or a syntax error; `check.sh --update` rewrites nginx/nginx.conf instead of diffing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# The docker compose deployment: replica ids are the compose service names.
production_args=(--mode production --listen 80
    cyberhub-1=cyberhub-1:3000 cyberhub-2=cyberhub-2:3000 cyberhub-3=cyberhub-3:3000)

fail() {
    echo "nginx/check.sh: $*" >&2
    exit 1
}

check_drift() {
    local rendered="$1"
    "$here/render.sh" "${production_args[@]}" >"$rendered"
    if ! diff -u "$here/nginx.conf" "$rendered"; then
        fail "nginx/nginx.conf is stale: run nginx/check.sh --update and commit it"
    fi
    echo "ok: nginx/nginx.conf matches the template"
}

# The production file names compose hosts that do not resolve here, so test the same template
# rendered for loopback; only the mode-specific paths differ between the two.
check_syntax() {
    local prefix="$1"
    command -v nginx >/dev/null || fail "nginx is not installed (apt-get install nginx)"
    "$here/render.sh" --mode local --listen 127.0.0.1:8080 --prefix "$prefix" \
        replica-1=127.0.0.1:4001 replica-2=127.0.0.1:4002 replica-3=127.0.0.1:4003 \
        >"$prefix/nginx.conf"
    nginx -t -q -p "$prefix" -e "$prefix/error.log" -c nginx.conf ||
        fail "rendered config fails nginx -t (see above)"
    echo "ok: rendered config passes nginx -t"
}

main() {
    if [ "${1:-}" = "--update" ]; then
        "$here/render.sh" "${production_args[@]}" >"$here/nginx.conf"
        echo "wrote nginx/nginx.conf"
        return
    fi
    [ $# -eq 0 ] || fail "usage: nginx/check.sh [--update]"
    local scratch
    scratch="$(mktemp -d)"
    # shellcheck disable=SC2064 # expand now: the variable is local
    trap "rm -rf '$scratch'" EXIT
    check_drift "$scratch/nginx.conf.production"
    mkdir "$scratch/nginx"
    check_syntax "$scratch/nginx"
}

main "$@"
