# shellcheck shell=bash
# Shared helpers for the vmmi conformance lab scripts. Source it; do not execute.
# Self-contained: no dependency on anything outside this repository at run time.
# All traffic stays on veth pairs between namespaces these scripts create (and their loopbacks).

CV_LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CV_ROOT="$(cd "$CV_LAB_DIR/../.." && pwd)"
# Debian's python (grpc, scapy); `python3` on PATH may be a different build without them.
PY="${PY:-/usr/bin/python3}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now_ms() { date +%s%3N; }

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }

# wait_for SECONDS CMD... : poll CMD every 0.1 s, at most SECONDS seconds. Bounded.
wait_for() {
    local t="$1" i; shift
    for ((i = 0; i < t * 10; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}

# kill_pidfile FILE [SECONDS]: TERM the pid stored in FILE (never by name), wait, then KILL.
kill_pidfile() {
    local pf="$1" t="${2:-5}" pid i
    [ -f "$pf" ] || return 0
    pid="$(cat "$pf" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < t * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$pf"
}

# del_ns NAME: delete a namespace we created (warn if something still runs in it).
del_ns() {
    local ns="$1" pids
    ns_exists "$ns" || return 0
    pids="$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
    [ -n "$pids" ] && log "warning: processes still in $ns: $pids"
    ip netns del "$ns" 2>/dev/null || true
}
