# shellcheck shell=bash
# Helpers for the end-to-end VXLAN test (conformance/e2e/vxlan.sh) and the VM-move benchmark
# (conformance/bench/move.sh): a three-host EVPN fabric in network namespaces. Source it; do not
# execute. Self-contained: nothing outside this repository is used at run time.
#
# Topology (every name starts with $P, default "ve"; the benchmark uses another prefix so that
# both can run on one machine):
#
#   $P-core: bridge ${P}br0 (the underlay L2 segment 10.97.0.0/24, MTU 9000)
#     |-- ${P}c1 <-> ${P}ul ($P-a) 10.97.0.1/24, lo 10.197.0.1/32 (VTEP and router id)
#     |-- ${P}c2 <-> ${P}ul ($P-b) 10.97.0.2/24, lo 10.197.0.2/32
#     |-- ${P}c3 <-> ${P}ul ($P-c) 10.97.0.3/24, lo 10.197.0.3/32
#   static /32 routes between the VTEP loopbacks; BGP runs between the underlay addresses:
#   an iBGP full mesh in AS 65000 (three sessions), l2vpn-evpn only.
#   Each host runs vmmi (dataplane "linux": it creates br100 + vxlan100 itself) or FRR (zebra +
#   bgpd, advertise-all-vni; br100 + vxlan100 created here, as an operator would for FRR).
#   VMs are namespaces with one veth (${P}eth) whose peer is a port of a host's br100:
#   $P-vm1 (02:00:00:97:01:01, 10.101.0.1/24) on $P-a through ${P}p1,
#   $P-vm2 (02:00:00:97:02:02, 10.101.0.2/24) on $P-b or $P-c through ${P}p2.
#   IPv6 is off in every namespace (no DAD/MLD/RS frames teaching a bridge a MAC on link-up: a
#   VM's MAC is learned from its gratuitous ARP or its traffic only) and the VMs hold permanent
#   ARP entries for each other (a live-migrated VM keeps its ARP cache; ARP stays out of the
#   loss count).
#
# Why a full mesh and not a route reflector: with three VTEPs it is three sessions, every VTEP is
# the same (no special host whose restart takes down all sessions), a move crosses exactly one
# BGP hop (learn -> UPDATE -> remote FDB), and it is the topology of the FRR reference numbers,
# so the vmmi and FRR legs of the benchmark differ only in the daemon.

# shellcheck source=../lab/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../lab" && pwd)/lib.sh"

E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
E2E_ROOT="$(cd "$E2E_DIR/../.." && pwd)"
P="${P:-ve}"
RUN="${RUN:-/run/vmmi-e2e}"
VMMI="${VMMI:-$E2E_ROOT/target/debug/vmmi}"
MOVE="$E2E_DIR/move.py"

AS=65000
VNI=100
BR=br$VNI
VX=vxlan$VNI
API=127.0.0.1:50179
HOSTS=("$P-a" "$P-b" "$P-c")
NS_CORE="$P-core"
NS_VM1="$P-vm1"
NS_VM2="$P-vm2"
VM_IF="${P}eth"
VM1_PORT="${P}p1"
VM2_PORT="${P}p2"
VM1_MAC=02:00:00:97:01:01
VM2_MAC=02:00:00:97:02:02
VM1_IP=10.101.0.1
VM2_IP=10.101.0.2
ALL_NS=("$NS_VM1" "$NS_VM2" "${HOSTS[@]}" "$NS_CORE")
# vmmi hosts whose [[vni]] has arp_nd_suppress = true (neigh_suppress on their VXLAN port)
SUPPRESS_HOSTS=()

hidx() { case "$1" in *-a) echo 1 ;; *-b) echo 2 ;; *-c) echo 3 ;; *) die "not a host: $1" ;; esac; }
ul_ip() { echo "10.97.0.$(hidx "$1")"; }      # underlay address (BGP) of host NS
vtep_ip() { echo "10.197.0.$(hidx "$1")"; }   # VTEP / router id of host NS
nsx() { local n="$1"; shift; ip netns exec "$n" "$@"; }

# ------------------------------------------------------------------ underlay
fab_underlay() {
    local h i j
    mkdir -p "$RUN"; chmod 0755 "$RUN"
    ip netns add "$NS_CORE"
    nsx "$NS_CORE" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$NS_CORE" link set lo up
    ip -n "$NS_CORE" link add "${P}br0" type bridge stp_state 0
    ip -n "$NS_CORE" link set "${P}br0" up
    for h in "${HOSTS[@]}"; do
        i="$(hidx "$h")"
        ip netns add "$h"
        nsx "$h" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        ip -n "$h" link set lo up
        ip -n "$NS_CORE" link add "${P}c$i" mtu 9000 type veth peer name "${P}ul" mtu 9000 netns "$h"
        ip -n "$NS_CORE" link set "${P}c$i" master "${P}br0" up
        ip -n "$h" addr add "$(ul_ip "$h")/24" dev "${P}ul"
        ip -n "$h" addr add "$(vtep_ip "$h")/32" dev lo
        ip -n "$h" link set "${P}ul" up
    done
    for h in "${HOSTS[@]}"; do
        for j in "${HOSTS[@]}"; do
            [ "$j" = "$h" ] && continue
            ip -n "$h" route add "$(vtep_ip "$j")/32" via "$(ul_ip "$j")" dev "${P}ul"
        done
    done
    for j in "${HOSTS[@]:1}"; do
        nsx "${HOSTS[0]}" ping -c1 -W2 -I "$(vtep_ip "${HOSTS[0]}")" "$(vtep_ip "$j")" >/dev/null ||
            die "underlay: $(vtep_ip "${HOSTS[0]}") cannot reach $(vtep_ip "$j")"
    done
}

# fab_l2dev HOST: br100 + vxlan100 the way FRR expects them (vmmi creates its own)
fab_l2dev() {
    local h="$1"
    ip -n "$h" link add "$BR" type bridge stp_state 0
    ip -n "$h" link add "$VX" type vxlan id "$VNI" local "$(vtep_ip "$h")" dstport 4789 nolearning
    ip -n "$h" link set "$VX" master "$BR"
    nsx "$h" bridge link set dev "$VX" learning off neigh_suppress off
    ip -n "$h" link set "$BR" up
    ip -n "$h" link set "$VX" up
}

# ------------------------------------------------------------------ VMs
vm_ns() {
    ip netns add "$1"
    nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$1" link set lo up
}
# vm_attach VM HOST PORT MAC IP PEER_IP PEER_MAC: a veth from the VM into HOST's br100, up
vm_attach() {
    local vm="$1" h="$2" port="$3" mac="$4" ip="$5" pip="$6" pmac="$7"
    ip -n "$vm" -batch - <<EOF
link add $VM_IF address $mac type veth peer name $port netns $h
addr add $ip/24 dev $VM_IF
link set $VM_IF up
neigh replace $pip lladdr $pmac dev $VM_IF nud permanent
EOF
    ip -n "$h" link set "$port" master "$BR" up
}
# vm_garp VM MAC IP: one gratuitous ARP from the VM (what a hypervisor sends after a migration)
vm_garp() { "$PY" "$MOVE" garp --ns "$1" --dev "$VM_IF" --mac "$2" --ip "$3"; }

# ------------------------------------------------------------------ vmmi
vmmi_dir() { echo "$RUN/vmmi-$1"; }
# vmmi_conf HOST [DAD_MAX_MOVES DAD_WINDOW]: write HOST's config (iBGP to the two other hosts;
# ARP/ND suppression when HOST is in SUPPRESS_HOSTS)
vmmi_conf() {
    local h="$1" d j
    d="$(vmmi_dir "$h")"; mkdir -p "$d"
    {
        cat <<EOF
[global]
asn = $AS
router_id = "$(vtep_ip "$h")"
listen = ["$(ul_ip "$h"):179"]
vtep = "$(vtep_ip "$h")"
EOF
        for j in "${HOSTS[@]}"; do
            [ "$j" = "$h" ] && continue
            cat <<EOF
[[neighbor]]
address = "$(ul_ip "$j")"
remote_asn = $AS
families = ["l2vpn-evpn"]
connect_retry = 1
hold_time = 9
EOF
        done
        cat <<EOF
[[vni]]
vni = $VNI
EOF
        case " ${SUPPRESS_HOSTS[*]} " in *" $h "*) echo "arp_nd_suppress = true" ;; esac
        cat <<EOF
[mobility]
state_file = "${VMMI_STATE_FILE-$d/mobility.json}"
dad_max_moves = ${2:-5}
dad_window_secs = ${3:-180}
[dataplane]
kind = "linux"
[api]
listen = "$API"
EOF
    } >"$d/vmmi.toml"
    "$VMMI" check --config "$d/vmmi.toml" >/dev/null || die "vmmi check --config $d/vmmi.toml: $("$VMMI" check --config "$d/vmmi.toml" 2>&1)"
}
V() { local h="$1"; shift; ip netns exec "$h" timeout 10 "$VMMI" "$@" --api "$API"; }
# vmmi_start HOST [--graceful-restart]: start vmmi in HOST (log appended), wait for its API
vmmi_start() {
    local h="$1" d; shift
    d="$(vmmi_dir "$h")"
    nohup ip netns exec "$h" env VMMI_LOG="${VMMI_LOG:-info}" NO_COLOR=1 "$VMMI" run --config "$d/vmmi.toml" "$@" \
        </dev/null >>"$d/vmmi.log" 2>&1 &
    echo $! >"$d/vmmi.pid"; disown "$!" 2>/dev/null || true
    wait_for 10 V "$h" show neighbors --json || { log "vmmi in $h: API not up; tail of its log:"; tail -5 "$d/vmmi.log" >&2; return 1; }
}
# vmmi_stop HOST: SIGTERM (vmmi's graceful-restart close: peers keep our routes, kernel state
# stays), SIGKILL after 10 s
vmmi_stop() { kill_pidfile "$(vmmi_dir "$1")/vmmi.pid" 10; }
vmmi_pid() { cat "$(vmmi_dir "$1")/vmmi.pid" 2>/dev/null; }
# vmmi_established HOST N: N l2vpn-evpn sessions Established
vmmi_established() {
    V "$1" show neighbors --json | "$PY" -c '
import json, sys
n = sum(1 for x in json.load(sys.stdin) if x.get("state") == "Established")
sys.exit(0 if n >= int(sys.argv[1]) else 1)' "$2"
}

# ------------------------------------------------------------------ FRR (zebra + bgpd, no systemd)
frr_dir() { echo "$RUN/frr-$1"; }
frr_conf() {
    local h="$1" j
    echo "frr defaults datacenter"
    echo "hostname $h"
    echo "log file $(frr_dir "$h")/bgpd.log informational"
    echo "log timestamp precision 6"
    echo "!"
    echo "router bgp $AS"
    echo " bgp router-id $(vtep_ip "$h")"
    echo " no bgp default ipv4-unicast"
    for j in "${HOSTS[@]}"; do
        [ "$j" = "$h" ] && continue
        echo " neighbor $(ul_ip "$j") remote-as $AS"
        echo " neighbor $(ul_ip "$j") timers connect 1"
    done
    echo " address-family l2vpn evpn"
    for j in "${HOSTS[@]}"; do
        [ "$j" = "$h" ] && continue
        echo "  neighbor $(ul_ip "$j") activate"
    done
    echo "  advertise-all-vni"
    echo " exit-address-family"
    echo "exit"
}
FV() { local h="$1"; shift; timeout 10 vtysh --vty_socket "$(frr_dir "$h")" "$@"; }
# frr_start HOST: zebra, then bgpd (foreground daemons in the background, own sockets and files)
frr_start() {
    local h="$1" d
    d="$(frr_dir "$h")"; mkdir -p "$d"
    frr_conf "$h" >"$d/bgpd.conf"
    printf 'hostname %s\nlog file %s/zebra.log informational\nlog timestamp precision 6\n' "$h" "$d" >"$d/zebra.conf"
    chown -R frr:frr "$d"; chmod 0750 "$d"
    nohup ip netns exec "$h" /usr/lib/frr/zebra -f "$d/zebra.conf" -i "$d/zebra.pid" -z "$d/zserv.api" \
        --vty_socket "$d" -P 0 </dev/null >>"$d/zebra.out" 2>&1 &
    echo $! >"$d/zebra.pid.launch"; disown "$!" 2>/dev/null || true
    wait_for 15 test -S "$d/zserv.api" || { log "zebra in $h did not start"; return 1; }
    nohup ip netns exec "$h" /usr/lib/frr/bgpd -f "$d/bgpd.conf" -i "$d/bgpd.pid" -z "$d/zserv.api" \
        --vty_socket "$d" -P 0 </dev/null >>"$d/bgpd.out" 2>&1 &
    echo $! >"$d/bgpd.pid.launch"; disown "$!" 2>/dev/null || true
    wait_for 15 FV "$h" -d bgpd -c 'show bgp summary' || { log "bgpd in $h not answering"; return 1; }
}
frr_stop() { local d; d="$(frr_dir "$1")"; kill_pidfile "$d/bgpd.pid.launch" 10; kill_pidfile "$d/zebra.pid.launch" 10; }
frr_established() {
    FV "$1" -c 'show bgp l2vpn evpn summary json' | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
n = sum(1 for p in d.get("peers", {}).values() if p.get("state") == "Established")
sys.exit(0 if n >= int(sys.argv[1]) else 1)' "$2"
}

# ------------------------------------------------------------------ kernel FDB
# fdb_remote HOST: the remote entries of vxlan100 (lines with a dst), normalized and sorted:
# "MAC dst VTEP flag flag..." (the device's own permanent address has no dst and is left out)
fdb_remote() {
    nsx "$1" bridge fdb show dev "$VX" | awk '/ dst / {
        delete f; dst = ""
        for (i = 2; i <= NF; i++) { if ($i == "dst") dst = $(i + 1); f[$i] = 1 }
        out = $1 " dst " dst
        n = split("self extern_learn permanent static sticky", order, " ")
        for (k = 1; k <= n; k++) if (order[k] in f) out = out " " order[k]
        print out }' | sort
}
# fdb_other HOST: vxlan100 entries that are neither remote (dst) nor the device's own permanent
# address: the bridge-side entries of remote MACs ("MAC extern_learn master br100", vmmi and FRR
# both write them) and nothing else (a MAC the bridge learned on the VXLAN port must not exist,
# learning is off)
fdb_other() { nsx "$1" bridge fdb show dev "$VX" | grep -v ' dst ' | grep -v ' permanent' || true; }

# ------------------------------------------------------------------ teardown
# fab_down: stop every daemon we started (pid files), delete every namespace of this prefix we
# know of. Safe to call twice and on a half-built fabric.
fab_down() {
    local h pf
    for h in "${HOSTS[@]}"; do
        [ -f "$(vmmi_dir "$h")/vmmi.pid" ] && vmmi_stop "$h"
        frr_stop "$h" 2>/dev/null
    done
    for pf in "$RUN"/*.pid; do [ -e "$pf" ] && kill_pidfile "$pf" 3; done
    for h in "${ALL_NS[@]}"; do del_ns "$h"; done
    return 0
}
