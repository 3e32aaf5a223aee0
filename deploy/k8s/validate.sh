#!/usr/bin/env bash
# Validates every Kubernetes manifest in deploy/k8s against the Kubernetes API schemas, strictly
# (an unknown or misspelt field fails), for the oldest and newest Kubernetes versions we support.
# Needs kubernetes-validate (PyPI; .ci/services.sh installs it). A manifest whose kind has no
# schema (a CRD, a typo in `kind`) fails too: kubernetes-validate only warns about it, and a
# manifest nobody checked must not pass. kustomization.yaml is kustomize's input, not a resource;
# tests/deploy_files.rs checks it lists every manifest.
#   deploy/k8s/validate.sh
set -euo pipefail
cd "$(dirname "$0")"

# The oldest and the newest release the manifests are checked against; move both as clusters move.
VERSIONS=(1.30.0 1.37.0)

# Where .ci/services.sh puts it when pip may not install system-wide.
venv=../../target/python-tools/bin
if [ -x "$venv/kubernetes-validate" ]; then PATH="$PWD/$venv:$PATH"; fi
if ! command -v kubernetes-validate >/dev/null; then
    echo "validate.sh: kubernetes-validate is not installed (pip install kubernetes-validate; ./test installs it)" >&2
    exit 2
fi

mapfile -t manifests < <(find . -name '*.yaml' ! -name kustomization.yaml | sort)
if [ "${#manifests[@]}" -eq 0 ]; then
    echo "validate.sh: no manifests found in $PWD" >&2
    exit 2
fi

args=(--strict --quiet)
for version in "${VERSIONS[@]}"; do args+=(-k "$version"); done

status=0
output=$(kubernetes-validate "${args[@]}" "${manifests[@]}") || status=$?
if [ -n "$output" ]; then echo "$output"; fi
if grep -q '^WARN' <<<"$output"; then
    echo "validate.sh: a manifest above was not checked against any schema" >&2
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "validate.sh: FAILED" >&2
    exit 1
fi
echo "validate.sh: ${#manifests[@]} manifest files valid (strict) for Kubernetes ${VERSIONS[*]}"
