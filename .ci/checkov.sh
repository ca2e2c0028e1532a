#!/usr/bin/env bash
# checkov on podioc's Kubernetes manifests, from a venv of its own.
#
# checkov pins an older `packaging` than pytest and hatchling accept, so it
# cannot share the project venv. This script keeps it in
# ${PODIOC_CHECKOV_VENV:-.ci/work/checkov-venv} (made on first use with
# the python in PODIOC_CHECKOV_PYTHON, default python3; pip uses its usual
# configuration) and runs it offline (--skip-download; inside a network
# namespace of its own when `unshare -n` works).
#
#   bash .ci/checkov.sh            # scan k8s/ (kubernetes + kustomize frameworks)
#   bash .ci/checkov.sh DIR...     # scan these directories instead
#   bash .ci/checkov.sh --bin      # install if needed, print the checkov executable
#
# Exit status is checkov's: non-zero when any check fails. Checks that
# hostNetwork fails by design are skipped in the manifests themselves
# (checkov.io/skipN annotations with the reason); nothing is skipped here.
# tests/k8s/test_checkov.py finds the same venv (or PODIOC_CHECKOV).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${PODIOC_CHECKOV_VENV:-${root}/.ci/work/checkov-venv}"
checkov="${venv}/bin/checkov"

log() { printf '[checkov.sh] %s\n' "$*" >&2; }

if [[ ! -x "${checkov}" ]]; then
    log "installing checkov into ${venv}"
    "${PODIOC_CHECKOV_PYTHON:-python3}" -m venv "${venv}"
    "${venv}/bin/python" -m pip install -q --disable-pip-version-check 'checkov>=3.2,<4'
fi

if [[ "${1:-}" == "--bin" ]]; then
    printf '%s\n' "${checkov}"
    exit 0
fi

offline=()
if unshare -n true 2>/dev/null; then
    offline=(unshare -n)
fi

frameworks=(kubernetes)
if command -v kubectl >/dev/null 2>&1 || command -v kustomize >/dev/null 2>&1; then
    frameworks+=(kustomize)
else
    log "kubectl/kustomize not on PATH: scanning the files only, not the kustomize build"
fi

dirs=("$@")
if ((${#dirs[@]} == 0)); then
    dirs=("${root}/k8s")
fi

status=0
for dir in "${dirs[@]}"; do
    for framework in "${frameworks[@]}"; do
        log "checkov --framework ${framework} -d ${dir}"
        "${offline[@]}" "${checkov}" --skip-download --quiet --compact \
            --framework "${framework}" -d "${dir}" || status=1
    done
done
exit "${status}"
