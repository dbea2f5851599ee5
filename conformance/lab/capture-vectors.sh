#!/usr/bin/env bash
# Capture real BGP EVPN messages from FRR and GoBGP (live peers in network namespaces) and store them
# as one-message-per-file test vectors under conformance/vectors/ (+ pcap, expected.json, README.md).
#
#   sudo bash conformance/lab/capture-vectors.sh            # ~60-90 s; needs root, frr, gobgpd, tshark,
#                                                           # iproute2, iputils-ping and, for the
#                                                           # MAC Mobility routes, golang-github-osrg-gobgp-dev
#                                                           # python3-grpcio python3-grpc-tools
#   KEEP=1 ...   leave the lab up at the end (then: bash conformance/lab/capture-vectors.sh down)
#   OUT=DIR ...  write vectors somewhere else (default: conformance/vectors)
#   WITH_LISP=0  skip the OOR LISP capture (conformance/lab/capture-lisp.sh, run at the end if oor exists)
#
# Topology (all names are ours; nothing leaves these namespaces):
#   cv-gobgp: cvg0 10.99.0.1/24, lo 10.255.0.1/32   <--veth-->   cv-frr: cvf0 10.99.0.2/24, lo 10.255.0.2/32
#   cv-frr:   br100 (SVI 10.100.0.1/24) + vxlan100 (VNI 100, local 10.255.0.2) + hp100 <--veth--> cv-host eth0
#             (host 02:bb:bb:00:00:01 / 10.100.0.10); L3VNI 4000: br4000 (02:bb:ff:00:00:01, 10.222.0.1/24)
#             + vxlan4000, mapped to the default VRF (no vrf driver in this kernel)
# GoBGP 3.10 AS 65001 <-- eBGP l2vpn-evpn --> FRR 8.4 AS 65002. tshark captures tcp/179 on cvf0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/vectors-readme.sh"

RUN="${CV_RUN:-/run/vmmi-capture}"
OUT="${OUT:-$CV_ROOT/conformance/vectors}"
NS_G=cv-gobgp; NS_F=cv-frr; NS_H=cv-host
V_G=cvg0; V_F=cvf0
IP_G=10.99.0.1; IP_F=10.99.0.2
LO_G=10.255.0.1; LO_F=10.255.0.2
AS_G=65001; AS_F=65002
FRR_V=frr-8.4; GOBGP_V=gobgp-3.10
PCAP="$RUN/capture.pcap"
FRR_DIR="$RUN/frr"
STEPS_LOG="$RUN/steps.log"

step() { log "$*"; printf '%s %s\n' "$(date +%H:%M:%S.%3N)" "$*" >>"$STEPS_LOG"; }

G() { ip netns exec "$NS_G" gobgp "$@"; }
V() { vtysh --vty_socket "$FRR_DIR" "$@"; }
frr_has() { V -c 'show bgp l2vpn evpn json' 2>/dev/null | grep -qF -- "$1"; }
frr_lacks() { ! frr_has "$1"; }
gobgp_has() { G -j global rib -a evpn 2>/dev/null | grep -qF -- "$1"; }
gobgp_lacks() { ! gobgp_has "$1"; }
established() {
    V -c 'show bgp l2vpn evpn summary json' 2>/dev/null | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if d.get("peers", {}).get(sys.argv[1], {}).get("state") == "Established" else 1)' "$IP_G"
}
# expect SECONDS DESCRIPTION CMD... : bounded wait, records success/failure for the README
expect() {
    local t="$1" what="$2"; shift 2
    if wait_for "$t" "$@"; then step "ok: $what"; else step "TIMEOUT ($t s): $what"; fi
}

cleanup() {
    set +e
    [ -n "${KEEP:-}" ] && { log "KEEP=1: lab left up (bash $0 down)"; return 0; }
    teardown
}

teardown() {
    set +e
    kill_pidfile "$RUN/capture.pid" 5
    kill_pidfile "$RUN/gobgpd.pid" 10
    kill_pidfile "$FRR_DIR/bgpd.pid.launch" 10
    kill_pidfile "$FRR_DIR/zebra.pid.launch" 10
    del_ns "$NS_H"; del_ns "$NS_G"; del_ns "$NS_F"
    ip link del "$V_G" 2>/dev/null
    return 0
}

if [ "${1:-}" = down ]; then teardown; exit 0; fi
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
for b in ip vtysh gobgpd gobgp tshark timeout "$PY"; do command -v "$b" >/dev/null || die "missing $b"; done
[ -x /usr/lib/frr/zebra ] && [ -x /usr/lib/frr/bgpd ] || die "missing FRR daemons (/usr/lib/frr)"
command -v ping >/dev/null || die "missing ping (iputils-ping)"
HAVE_GRPC=1
"$PY" -c 'import grpc, grpc_tools' 2>/dev/null && [ -f /usr/share/gocode/src/github.com/osrg/gobgp/api/gobgp.proto ] ||
    { HAVE_GRPC=0; log "warning: no GoBGP gRPC stubs (install golang-github-osrg-gobgp-dev python3-grpcio python3-grpc-tools): MAC Mobility vectors skipped"; }

teardown >/dev/null 2>&1 || true
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$RUN" "$FRR_DIR" "$OUT"
rm -f "$FRR_DIR"/*.log "$FRR_DIR"/*.out "$RUN"/*.log
: >"$STEPS_LOG"
T0=$(now_ms)

# ---------------------------------------------------------------- topology
ip netns add "$NS_G"; ip netns add "$NS_F"; ip netns add "$NS_H"
ip link add "$V_G" type veth peer name "$V_F"
ip link set "$V_G" netns "$NS_G"; ip link set "$V_F" netns "$NS_F"
for ns in "$NS_G" "$NS_F" "$NS_H"; do ip -n "$ns" link set lo up; done
ip -n "$NS_G" addr add "$IP_G/24" dev "$V_G"; ip -n "$NS_F" addr add "$IP_F/24" dev "$V_F"
ip -n "$NS_G" addr add "$LO_G/32" dev lo;     ip -n "$NS_F" addr add "$LO_F/32" dev lo
ip -n "$NS_G" link set "$V_G" up;             ip -n "$NS_F" link set "$V_F" up
ip -n "$NS_G" route add "$LO_F/32" via "$IP_F"; ip -n "$NS_F" route add "$LO_G/32" via "$IP_G"
wait_for 5 ip netns exec "$NS_G" ping -c1 -W1 "$IP_F" || die "veth not passing traffic"
step "netns up: $NS_G($IP_G) <-> $NS_F($IP_F)"

# ---------------------------------------------------------------- capture (killed by pid at the end)
# tshark (dumpcap) writes a classic pcap (-F pcap); -a duration bounds it even if we are killed hard
rm -f "$PCAP"
ip netns exec "$NS_F" tshark -n -q -i "$V_F" -f 'tcp port 179' -a duration:900 -F pcap -w "$PCAP" \
    >"$RUN/capture.log" 2>&1 &
echo $! >"$RUN/capture.pid"
wait_for 15 grep -q 'Capturing on' "$RUN/capture.log" || die "tshark capture did not start: $(cat "$RUN/capture.log")"

# ---------------------------------------------------------------- FRR 8.4 (zebra + bgpd, no systemd)
# L3VNI 4000 in the default VRF: this kernel has no `vrf` link type, and FRR 8.4 accepts
# `vrf default / vni 4000` with vxlan4000 + SVI br4000 in the default VRF; bgpd then originates type-5
# for `network` prefixes (advertise ipv4 unicast), and type-2 MAC+IP of L2VNI 100 gain label2 + Rmac.
cat >"$FRR_DIR/zebra.conf" <<EOF
hostname frr-vmmi
log timestamp precision 3
!
vrf default
 vni 4000
exit-vrf
!
EOF
# Note: FRR 8.4 relays GoBGP's EVPN routes back to GoBGP (eBGP; GoBGP drops them for the AS loop);
# `neighbor X sender-as-path-loop-detection` does not stop that for l2vpn evpn. Those messages are kept
# as vectors named update-relayed-* (FRR's encoding of GoBGP's MM / sticky / PMSI / type-5 routes).
cat >"$FRR_DIR/bgpd.conf" <<EOF
frr defaults datacenter
hostname frr-vmmi
log timestamp precision 3
!
router bgp $AS_F
 bgp router-id $LO_F
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor $IP_G remote-as $AS_G
 neighbor $IP_G timers connect 2
 !
 address-family ipv4 unicast
  network 10.222.0.0/24
 exit-address-family
 !
 address-family l2vpn evpn
  neighbor $IP_G activate
  advertise-all-vni
  advertise ipv4 unicast
 exit-address-family
exit
!
EOF
chown -R frr:frr "$FRR_DIR"; chmod 0750 "$FRR_DIR"
nohup ip netns exec "$NS_F" /usr/lib/frr/zebra -f "$FRR_DIR/zebra.conf" -i "$FRR_DIR/zebra.pid" \
    -z "$FRR_DIR/zserv.api" --vty_socket "$FRR_DIR" -P 0 \
    --log "file:$FRR_DIR/zebra.log" --log-level informational </dev/null >"$FRR_DIR/zebra.out" 2>&1 &
echo $! >"$FRR_DIR/zebra.pid.launch"
wait_for 15 test -S "$FRR_DIR/zserv.api" || die "zebra did not start; see $FRR_DIR/zebra.out"
nohup ip netns exec "$NS_F" /usr/lib/frr/bgpd -f "$FRR_DIR/bgpd.conf" -i "$FRR_DIR/bgpd.pid" \
    -z "$FRR_DIR/zserv.api" --vty_socket "$FRR_DIR" -P 0 \
    --log "file:$FRR_DIR/bgpd.log" --log-level informational </dev/null >"$FRR_DIR/bgpd.out" 2>&1 &
echo $! >"$FRR_DIR/bgpd.pid.launch"
wait_for 15 V -d bgpd -c 'show bgp summary' || die "bgpd not answering; see $FRR_DIR/bgpd.out"
step "FRR up (zebra $(cat "$FRR_DIR/zebra.pid.launch"), bgpd $(cat "$FRR_DIR/bgpd.pid.launch"))"

# ---------------------------------------------------------------- GoBGP 3.10
cat >"$RUN/gobgpd.toml" <<EOF
[global.config]
  as = $AS_G
  router-id = "$LO_G"
  port = 179
  local-address-list = ["$IP_G"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "$IP_F"
    peer-as = $AS_F
  [neighbors.transport.config]
    local-address = "$IP_G"
  [neighbors.timers.config]
    connect-retry = 2
    hold-time = 30
    keepalive-interval = 10
  # graceful-restart helper: GoBGP then advertises the GR capability and sends End-of-RIB
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 120
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "l2vpn-evpn"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
EOF
nohup ip netns exec "$NS_G" gobgpd -f "$RUN/gobgpd.toml" -t toml -p -l info \
    --api-hosts 127.0.0.1:50051 --pprof-disable </dev/null >"$RUN/gobgpd.log" 2>&1 &
echo $! >"$RUN/gobgpd.pid"
wait_for 20 G global || die "gobgpd API not up; see $RUN/gobgpd.log"
step "gobgpd up (pid $(cat "$RUN/gobgpd.pid"))"
wait_for 40 established || die "session FRR<->GoBGP not Established (see $FRR_DIR/bgpd.log, $RUN/gobgpd.log)"
step "session Established $(( $(now_ms) - T0 )) ms after start"
sleep 2   # both End-of-RIBs and first KEEPALIVEs on the wire

# ---------------------------------------------------------------- FRR originates: type-3, type-2 MAC, type-2 MAC+IP
N() { ip -n "$NS_F" "$@"; }
N link add br100 type bridge stp_state 0 mcast_snooping 0
N link add vxlan100 type vxlan id 100 local "$LO_F" dstport 4789 nolearning
N link add hp100 type veth peer name eth0 netns "$NS_H"
N link set vxlan100 master br100; N link set hp100 master br100
ip netns exec "$NS_F" bridge link set dev vxlan100 learning off neigh_suppress on
N link set br100 up; N link set vxlan100 up; N link set hp100 up
N addr add 10.100.0.1/24 dev br100
ip -n "$NS_H" link set eth0 address 02:bb:bb:00:00:01
ip -n "$NS_H" addr add 10.100.0.10/24 dev eth0
ip -n "$NS_H" link set eth0 up
expect 15 "FRR type-3 (IMET, PMSI) for VNI 100 at GoBGP" gobgp_has '"ip":"10.255.0.2"'
sleep 1
ip netns exec "$NS_F" bridge fdb add 02:bb:bb:00:00:02 dev hp100 master static
expect 15 "FRR type-2 MAC-only (static FDB 02:bb:bb:00:00:02) at GoBGP" gobgp_has '"mac":"02:bb:bb:00:00:02"'
sleep 1
# bounded, inside our namespaces only: the bridge learns the host MAC, the SVI gets an ARP entry
ip netns exec "$NS_H" ping -c2 -W1 10.100.0.1 >/dev/null || log "warning: host ping failed"
expect 15 "FRR type-2 MAC+IP (02:bb:bb:00:00:01 10.100.0.10) at GoBGP" gobgp_has '"ip":"10.100.0.10"'
sleep 1
# L3VNI 4000 (symmetric IRB): type-5 for 10.222.0.0/24 with Router's MAC 02:bb:ff:00:00:01; FRR also
# re-advertises the MAC+IP type-2 with label2 = 4000, RT 65002:4000 and the Router's MAC
N link add br4000 type bridge stp_state 0 mcast_snooping 0
N link set br4000 address 02:bb:ff:00:00:01
N link add vxlan4000 type vxlan id 4000 local "$LO_F" dstport 4789 nolearning
N link set vxlan4000 master br4000
N link set br4000 up; N link set vxlan4000 up
N addr add 10.222.0.1/24 dev br4000
expect 20 "FRR type-5 10.222.0.0/24 (L3VNI 4000, Rmac) at GoBGP" gobgp_has '10.222.0.0'
sleep 2

# ---------------------------------------------------------------- GoBGP originates (CLI)
RD=10.255.0.1:100; RT=65001:100
G global rib -a evpn add macadv 02:aa:00:00:00:01 10.100.0.11 etag 0 label 100 rd "$RD" rt "$RT" \
    encap vxlan nexthop "$LO_G"
expect 15 "GoBGP type-2 MAC+IP (CLI) at FRR" frr_has '[02:aa:00:00:00:01]:[32]:[10.100.0.11]'
sleep 1
G global rib -a evpn add macadv 02:aa:00:00:00:03 0.0.0.0 etag 0 label 100 rd "$RD" rt "$RT" \
    encap vxlan nexthop "$LO_G"
expect 15 "GoBGP type-2 with IP 0.0.0.0 (CLI) at FRR" frr_has '02:aa:00:00:00:03'
sleep 1
G global rib -a evpn add multicast "$LO_G" etag 0 rd "$RD" rt "$RT" encap vxlan \
    pmsi ingress-repl 100 "$LO_G" nexthop "$LO_G"
expect 15 "GoBGP type-3 + PMSI ingress-repl (CLI) at FRR" frr_has '[3]:[0]:[32]:[10.255.0.1]'
sleep 1
G global rib -a evpn add prefix 10.200.0.0/24 gw 0.0.0.0 etag 0 label 5000 rd 10.255.0.1:5000 \
    rt 65001:5000 encap vxlan router-mac 02:aa:ff:00:00:01 nexthop "$LO_G"
expect 15 "GoBGP type-5 + router-mac (CLI) at FRR" frr_has '[5]:[0]:[24]:[10.200.0.0]'
sleep 1

# ---------------------------------------------------------------- GoBGP originates (gRPC API: MAC-only, MAC Mobility)
API() { ip netns exec "$NS_G" timeout 120 "$PY" "$CV_LAB_DIR/gobgp_api.py" "$@"; }
if [ "$HAVE_GRPC" = 1 ]; then
    API macadv --mac 02:aa:00:00:00:02 --rd "$RD" --rt "$RT" --nexthop "$LO_G" >>"$STEPS_LOG" 2>&1 ||
        step "API MAC-only failed"
    expect 15 "GoBGP type-2 MAC-only (API) at FRR" frr_has '02:aa:00:00:00:02'
    sleep 1
    API macadv --mac 02:aa:00:00:00:07 --ip 10.100.0.17 --mm-seq 7 --rd "$RD" --rt "$RT" --nexthop "$LO_G" \
        >>"$STEPS_LOG" 2>&1 || step "API MM7 failed"
    expect 15 "GoBGP type-2 MAC+IP MAC Mobility seq 7 (API) at FRR" frr_has '02:aa:00:00:00:07'
    sleep 1
    API macadv --mac 02:aa:00:00:00:08 --mm-seq 0 --sticky --rd "$RD" --rt "$RT" --nexthop "$LO_G" \
        >>"$STEPS_LOG" 2>&1 || step "API sticky failed"
    expect 15 "GoBGP type-2 MAC-only sticky (API) at FRR" frr_has '02:aa:00:00:00:08'
    sleep 1
fi

# ---------------------------------------------------------------- withdraws
G global rib -a evpn del macadv 02:aa:00:00:00:01 10.100.0.11 etag 0 label 100 rd "$RD"
expect 15 "GoBGP withdrew type-2 MAC+IP" frr_lacks '[02:aa:00:00:00:01]:[32]:[10.100.0.11]'
sleep 1
G global rib -a evpn del prefix 10.200.0.0/24 gw 0.0.0.0 etag 0 label 5000 rd 10.255.0.1:5000
expect 15 "GoBGP withdrew type-5" frr_lacks '[5]:[0]:[24]:[10.200.0.0]'
sleep 1
G global rib -a evpn del multicast "$LO_G" etag 0 rd "$RD"
expect 15 "GoBGP withdrew type-3" frr_lacks '[3]:[0]:[32]:[10.255.0.1]'
sleep 1
if [ "$HAVE_GRPC" = 1 ]; then
    API macadv --mac 02:aa:00:00:00:07 --ip 10.100.0.17 --rd "$RD" --rt "$RT" --nexthop "$LO_G" --withdraw \
        >>"$STEPS_LOG" 2>&1 || step "API withdraw MM7 failed"
    expect 15 "GoBGP withdrew the MM7 type-2 (API)" frr_lacks '02:aa:00:00:00:07'
    sleep 1
fi
ip netns exec "$NS_F" bridge fdb del 02:bb:bb:00:00:02 dev hp100 master static
expect 15 "FRR withdrew type-2 MAC-only 02:bb:bb:00:00:02" gobgp_lacks '"mac":"02:bb:bb:00:00:02"'
sleep 1
ip -n "$NS_F" link set vxlan100 down
expect 15 "FRR withdrew its type-3 (vxlan100 down)" gobgp_lacks '"ip":"10.255.0.2"'
ip -n "$NS_F" link set vxlan100 up
expect 15 "FRR re-advertised type-3 (vxlan100 up)" gobgp_has '"ip":"10.255.0.2"'
sleep 4   # at least one more KEEPALIVE each way (FRR datacenter defaults: 3 s)

# ---------------------------------------------------------------- NOTIFICATIONs: GoBGP reset (6/4), then FRR shutdown (6/2)
G neighbor "$IP_F" reset >>"$STEPS_LOG" 2>&1 || step "gobgp neighbor reset failed"
step "GoBGP reset the session (Cease/admin-reset expected)"
sleep 1
expect 40 "session re-established after reset" established
sleep 3   # initial table dumps of the new session (several NLRIs per UPDATE)
V -c 'configure terminal' -c "router bgp $AS_F" -c "neighbor $IP_G shutdown message vmmi-vector-capture" \
    >>"$STEPS_LOG" 2>&1 || step "FRR neighbor shutdown failed"
step "FRR shut the neighbor down (Cease/admin-shutdown with communication expected)"
sleep 2

# ---------------------------------------------------------------- stop capture, build vectors
kill_pidfile "$RUN/capture.pid" 5
sleep 0.2
step "capture done: $(stat -c %s "$PCAP") bytes"
"$PY" "$CV_LAB_DIR/bgpvec.py" build --pcap "$PCAP" --out "$OUT" --table "$RUN/table.md" \
    --peer "$IP_F=$FRR_V" --peer "$IP_G=$GOBGP_V" --msg-pcap "$OUT/bgp-messages.pcap" | tee "$RUN/build.out"
cp "$PCAP" "$OUT/frr-gobgp-evpn.pcap"
chmod 0644 "$OUT/frr-gobgp-evpn.pcap" "$OUT/bgp-messages.pcap"
rm -f "$OUT/vectors-table.md"
step "live pcap: $OUT/frr-gobgp-evpn.pcap ($(stat -c %s "$OUT/frr-gobgp-evpn.pcap") bytes)"
if bash "$CV_ROOT/conformance/tshark-oracle.sh" bad "$OUT/frr-gobgp-evpn.pcap" >"$RUN/oracle.out" 2>&1; then
    step "tshark malformed oracle on live pcap: 0 frames flagged"
else
    step "tshark malformed oracle on live pcap: FLAGGED frames: $(head -5 "$RUN/oracle.out" | tr '\n' ' ')"
fi
# LISP vectors from OOR (separate lab, separate namespaces); WITH_LISP=0 skips it
if [ "${WITH_LISP:-1}" = 1 ] && [ -x /usr/sbin/oor ]; then
    if OUT="$OUT" bash "$CV_LAB_DIR/capture-lisp.sh" >"$RUN/lisp.out" 2>&1; then
        step "LISP (OOR) vectors: $(ls "$OUT/oor-1.3/"*.hex 2>/dev/null | xargs -n1 basename 2>/dev/null | tr '\n' ' ')"
    else
        step "LISP (OOR) capture failed: $(tail -3 "$RUN/lisp.out" | tr '\n' ' ')"
    fi
fi
write_readme
step "done in $(( $(now_ms) - T0 )) ms; steps in $STEPS_LOG"
grep -c TIMEOUT "$STEPS_LOG" >/dev/null && log "some steps timed out: $(grep TIMEOUT "$STEPS_LOG" | tr '\n' ';')"
exit 0
