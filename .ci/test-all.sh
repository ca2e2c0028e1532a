#!/usr/bin/env bash
# Everything `make test` does: start the services the tests need (Docker engine,
# a local base image, iptables for the NAT tests), lint, then the whole suite.
# Under CI=true a skipped Docker or network-namespace test is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export PODIOC_CI_WORK="${PODIOC_CI_WORK:-$PWD/.ci/work}"
mkdir -p "$PODIOC_CI_WORK"

if [[ "${CI:-}" == "true" ]]; then
    export PODIOC_REQUIRE_DOCKER=1 PODIOC_REQUIRE_NETNS=1 PODIOC_REQUIRE_CHECKOV=1
    export PODIOC_REQUIRE_TMUX=1 PODIOC_REQUIRE_GIGE=1
    # kubectl ships with this machine image; elsewhere its checks skip with a reason.
    if command -v kubectl >/dev/null 2>&1; then export PODIOC_REQUIRE_KUBECTL=1; fi
fi

# shellcheck source=.ci/docker.sh
source .ci/docker.sh
trap podioc_docker_teardown EXIT
podioc_docker_setup
source .ci/netns.sh
podioc_netns_setup
source .ci/tmux.sh
podioc_tmux_setup

echo "== lint"
"$BIN"/ruff check framework iocs tests benchmarks
"$BIN"/mypy
"$BIN"/lint-imports
podioc_docker_lint
bash .ci/checkov.sh

echo "== fuzz (bounded: 20,000 messages per kind, exits 1 on any crash)"
"$BIN"/python benchmarks/fuzz.py --messages 20000

echo "== tests"
"$BIN"/python -m pytest -p no:cacheprovider tests

echo "== benchmark (quick mode: keeps the script working; figures are for people)"
"$BIN"/python benchmarks/run.py --quick --json "$PODIOC_CI_WORK/bench-quick.json"
"$BIN"/python benchmarks/gige.py --quick --sizes 640x480 --json "$PODIOC_CI_WORK/gige-quick.json"
