#!/usr/bin/env bash
# tmux for the terminal test of `podioc monitor` (tests/integration/test_monitor_tmux.py).
_podioc_tmux_log() { printf '[tmux.sh] %s\n' "$*" >&2; }

podioc_tmux_setup() {
    command -v tmux >/dev/null 2>&1 && return 0
    if [[ $EUID -ne 0 ]]; then
        _podioc_tmux_log "tmux missing and not root: the monitor's terminal test will skip"
        return 0
    fi
    _podioc_tmux_log "installing tmux"
    # docker.sh's installer runs `apt-get update` at most once per shell.
    _podioc_apt_install tmux
}
