#!/usr/bin/env bash
# Tools the network-namespace tests need: iproute2 (ip netns), iptables (NAT case) and
# aravis-tools (the GigE Vision camera emulator of the camera tests).
_podioc_netns_log() { printf '[netns.sh] %s\n' "$*" >&2; }

podioc_netns_setup() {
    local missing=()
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v iptables >/dev/null 2>&1 || missing+=(iptables)
    command -v arv-fake-gv-camera-0.8 >/dev/null 2>&1 || missing+=(aravis-tools)
    if ((${#missing[@]})); then
        if [[ $EUID -ne 0 ]]; then
            _podioc_netns_log "missing ${missing[*]} and not root: namespace tests will skip"
            return 0
        fi
        _podioc_netns_log "installing ${missing[*]}"
        # docker.sh's installer runs `apt-get update` at most once per shell.
        _podioc_apt_install "${missing[@]}"
    fi
}
