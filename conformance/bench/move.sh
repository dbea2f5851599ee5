#!/usr/bin/env bash
# VM-move benchmark, vmmi vs FRR 8.4 head to head (issue 4, "Performance"; a benchmark that prints a
# table, not a timed test).
#
# The same three-host fabric as conformance/e2e/vxlan.sh (conformance/e2e/lib.sh; here with the
# prefix "vw": namespaces vw-*, state in /run/vmmi-bench-move), built twice, one leg after the other:
#   vmmi  vmmi (release build, dataplane "linux") on all three hosts, iBGP full mesh
#   frr   FRR 8.4 zebra + bgpd (advertise-all-vni, FRR defaults) on all three hosts, iBGP full mesh
# In each, VM2 moves MOVES times between hosts B and C (alternating), break before make + one
# gratuitous ARP, while VM1 on host A pings it every 10 ms (conformance/e2e/move.py: per move
# t1 - t0 = the new port forwarding in the new host's bridge -> host A's kernel FDB points at the
# new VTEP, both from `bridge -t monitor`; lost pings; the old host's FDB; vmmi's own step times).
#
# usage (root): conformance/bench/move.sh [MOVES]          default 60 (the issue asks for >= 50)
# env: LEGS="vmmi frr"  VMMI_BIN (default: built here, cargo build --release -j1)
#      GARP=link|sock|arping (default link: the VM sends its GARP the moment its interface reports
#      link up, from a socket opened in its namespace beforehand; sock: once `ip link set up` has
#      exited; arping: `arping -c1 -U` forked per move, as the FRR reference lab did, which puts
#      its ~3 ms start-up inside t1 - t0; see conformance/e2e/move.py)
#      CAPTURE=1 (tcpdump BGP on the underlay into OUT/.../<leg>-bgp.pcap, for move_breakdown.py)
#      VMMI_STATE_FILE="" (vmmi without [mobility] state_file: shows what writing it costs a move)
#      PING_COUNT=200 (pings per move)  SETTLE=0.5 (s between moves)  KEEP_EVENTS=1 (store every
#      move's monitor lines in the JSON)  VMMI_LOG (vmmi's log filter, default info)
#      OUT=target/bench (results: OUT/move-<time>/{vmmi,frr}.json + .log, table.md)
# vmmi runs with duplicate-address detection effectively off (dad_max_moves 1000 within 1 s):
# 60 moves in a few minutes would otherwise freeze the MAC by design (default 5 moves in 180 s).
# FRR runs with its defaults, whose DAD only warns and never stops a move.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
MOVES="${1:-${MOVES:-60}}"
LEGS="${LEGS:-vmmi frr}"
GARP="${GARP:-link}"
PING_COUNT="${PING_COUNT:-200}"
SETTLE="${SETTLE:-0.5}"
P=vw
RUN=/run/vmmi-bench-move
[ "$(id -u)" = 0 ] || { echo "move.sh: run as root (network namespaces)" >&2; exit 2; }
if [ -z "${VMMI_BIN:-}" ]; then
    echo "building vmmi (release, -j1)" >&2
    cargo build -q --release -j1 --bin vmmi
    VMMI_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/vmmi"
fi
VMMI="$VMMI_BIN"
case "$VMMI" in /*) ;; *) VMMI="$ROOT/$VMMI" ;; esac
# shellcheck source=../e2e/lib.sh
. conformance/e2e/lib.sh
for b in /usr/lib/frr/zebra /usr/lib/frr/bgpd vtysh bridge; do
    command -v "$b" >/dev/null 2>&1 || die "missing $b"
done
[ "$GARP" != arping ] || command -v arping >/dev/null 2>&1 || die "GARP=arping needs arping (iputils-arping)"
OUTDIR="${OUT:-$ROOT/target/bench}/move-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUTDIR"

cleanup() { set +e; fab_down >/dev/null 2>&1; return 0; }
cleanup
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$RUN"; mkdir -p "$RUN"; chmod 0755 "$RUN"
A="$P-a" B="$P-b" C="$P-c"

fdb_points() { fdb_remote "$1" | grep -q "^$2 dst $3 "; }

leg() {
    local leg="$1" h vmmi_hosts=""
    log "leg $leg: building the fabric (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
    fab_underlay
    if [ "$leg" = vmmi ]; then
        for h in "${HOSTS[@]}"; do vmmi_conf "$h" 1000 1; vmmi_start "$h"; done
        for h in "${HOSTS[@]}"; do wait_for 10 ip -n "$h" link show "$BR" || die "$h: vmmi did not create $BR"; done
        for h in "${HOSTS[@]}"; do wait_for 30 vmmi_established "$h" 2 || die "$h: vmmi sessions not Established"; done
        vmmi_hosts="$A,$B,$C"
    else
        for h in "${HOSTS[@]}"; do fab_l2dev "$h"; done
        for h in "${HOSTS[@]}"; do frr_start "$h" || die "FRR did not start in $h"; done
        for h in "${HOSTS[@]}"; do wait_for 60 frr_established "$h" 2 || die "$h: FRR sessions not Established"; done
        wait_for 30 bash -c "[ \$(ip netns exec $A bridge fdb show dev $VX | grep -c '^00:00:00:00:00:00 dst') = 2 ]" ||
            die "$A: FRR flood entries missing"
    fi
    vm_ns "$NS_VM1"; vm_ns "$NS_VM2"
    vm_attach "$NS_VM1" "$A" "$VM1_PORT" "$VM1_MAC" "$VM1_IP" "$VM2_IP" "$VM2_MAC"
    vm_attach "$NS_VM2" "$B" "$VM2_PORT" "$VM2_MAC" "$VM2_IP" "$VM1_IP" "$VM1_MAC"
    vm_garp "$NS_VM1" "$VM1_MAC" "$VM1_IP"; vm_garp "$NS_VM2" "$VM2_MAC" "$VM2_IP"
    wait_for 10 fdb_points "$A" "$VM2_MAC" "$(vtep_ip "$B")" || die "$A never learned VM2 behind $B"
    nsx "$NS_VM1" ping -c3 -i0.2 -W1 "$VM2_IP" >/dev/null || die "VM1 cannot ping VM2 over VXLAN"
    log "leg $leg: fabric up, VM1 pings VM2; $MOVES moves (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
    if [ "${CAPTURE:-0}" = 1 ]; then
        # BGP on the underlay, kernel timestamps: when each UPDATE crossed the wire
        timeout $((MOVES * 30 + 60)) ip netns exec "$NS_CORE" tcpdump -q -n -s 200 -i "${P}br0" -w "$OUTDIR/$leg-bgp.pcap" \
            tcp port 179 2>/dev/null &
        echo $! >"$RUN/tcpdump.pid"
        sleep 0.5
    fi
    local extra=()
    [ -n "$vmmi_hosts" ] && extra+=(--vmmi-hosts "$vmmi_hosts")
    [ "${KEEP_EVENTS:-0}" = 1 ] && extra+=(--keep-events)
    "$PY" "$MOVE" move --hosts "$A,$B,$C" --vteps "$(vtep_ip "$A"),$(vtep_ip "$B"),$(vtep_ip "$C")" \
        --between "$B,$C" --vm "$NS_VM2" --vm-if "$VM_IF" --port "$VM2_PORT" --mac "$VM2_MAC" --ip "$VM2_IP" \
        --peer-ip "$VM1_IP" --peer-mac "$VM1_MAC" --pinger-ns "$NS_VM1" --bridge "$BR" --vxlan "$VX" \
        --moves "$MOVES" --ping-count "$PING_COUNT" --pre 0.5 --settle "$SETTLE" --timeout 10 --garp "$GARP" \
        --vmmi "$VMMI" --api "$API" --label "$leg" --out "$OUTDIR/$leg.json" "${extra[@]}" \
        | tee "$OUTDIR/$leg.log" || log "leg $leg: not every move converged (see $OUTDIR/$leg.log)"
    [ -f "$RUN/tcpdump.pid" ] && kill_pidfile "$RUN/tcpdump.pid" 3
    [ "$leg" = vmmi ] && for h in "${HOSTS[@]}"; do cp "$(vmmi_dir "$h")/vmmi.log" "$OUTDIR/vmmi-$h.log"; done
    [ "$leg" = frr ] && for h in "${HOSTS[@]}"; do cp "$(frr_dir "$h")"/*.log "$OUTDIR/" 2>/dev/null; done
    fab_down
}

log "move benchmark: $MOVES moves per leg, legs: $LEGS, GARP $GARP, vmmi $VMMI, results in $OUTDIR"
files=()
for l in $LEGS; do
    case "$l" in vmmi|frr) leg "$l"; files+=("$OUTDIR/$l.json") ;; *) die "unknown leg $l" ;; esac
done
echo
echo "## VM move: $MOVES moves per daemon (break before make, GARP $GARP, 10 ms ping), $(date -u +%Y-%m-%dT%H:%MZ)"
"$PY" "$MOVE" table "${files[@]}" | tee "$OUTDIR/table.md"
echo "results: $OUTDIR"
