#!/usr/bin/env bash
# Capture real LISP control messages from Open Overlay Router 1.3 (xTR) into one-message-per-file
# vectors under conformance/vectors/oor-1.3/ (+ the pcap, expected.json, README.md).
#
#   sudo bash conformance/lab/capture-lisp.sh      # ~20 s; needs root, openoverlayrouter, tshark, ping
#
# Topology (ours; nothing leaves these namespaces):
#   cv-oor-x: cvox 10.96.0.1/24 (RLOC), eid0 10.1.7.1/24 (EID, iid 107; veth whose peer eid0h stays in cv-oor-x)
#   cv-oor-m: cvom 10.96.0.2/24 (the Map-Server/Map-Resolver address: only a silent UDP sink on 4342),
#             lo 10.2.8.1/32 (the remote EID that is pinged, so every address used is one of ours)
# OOR registers to 10.96.0.2 every 2-3 s (no Map-Notify comes) and, when 10.1.7.1 pings 10.2.8.1, sends
# ECM Map-Requests to 10.96.0.2 (3 tries). tshark captures udp/4342 on cvom.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

RUN="${CV_RUN:-/run/vmmi-capture}/lisp"
OUT="${OUT:-$CV_ROOT/conformance/vectors}/oor-1.3"
NS_X=cv-oor-x; NS_M=cv-oor-m; V_X=cvox; V_M=cvom
KEY=vmmi-lisp-key            # must match conformance/lab/oor/oor-xtr.conf
OOR_BIN="${OOR_BIN:-/usr/sbin/oor}"
PCAP="$RUN/capture.pcap"

teardown() {
    set +e
    kill_pidfile "$RUN/oor.pid" 5
    kill_pidfile "$RUN/sink.pid" 3
    kill_pidfile "$RUN/capture.pid" 5
    del_ns "$NS_X"; del_ns "$NS_M"
    ip link del "$V_X" 2>/dev/null
    # OOR binds its ZMQ API at /tmp/oor-ipc; remove it only if no OOR is left that we started
    [ -S /tmp/oor-ipc ] && [ -f "$RUN/oor-ipc.ours" ] && rm -f /tmp/oor-ipc "$RUN/oor-ipc.ours"
    return 0
}
cleanup() { set +e; [ -n "${KEEP:-}" ] && { log "KEEP=1: lab left up ($0 down)"; return 0; }; teardown; }

if [ "${1:-}" = down ]; then teardown; exit 0; fi
[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
[ -x "$OOR_BIN" ] || die "missing $OOR_BIN (apt-get install openoverlayrouter)"
for b in ip tshark ping stdbuf timeout "$PY"; do command -v "$b" >/dev/null || die "missing $b"; done
teardown >/dev/null 2>&1 || true
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$RUN" "$OUT"
rm -f "$RUN"/*.log

ip netns add "$NS_X"; ip netns add "$NS_M"
ip link add "$V_X" type veth peer name "$V_M"
ip link set "$V_X" netns "$NS_X"; ip link set "$V_M" netns "$NS_M"
ip -n "$NS_X" link set lo up; ip -n "$NS_M" link set lo up
ip -n "$NS_X" addr add 10.96.0.1/24 dev "$V_X"; ip -n "$NS_M" addr add 10.96.0.2/24 dev "$V_M"
ip -n "$NS_M" addr add 10.2.8.1/32 dev lo
ip -n "$NS_X" link set "$V_X" up; ip -n "$NS_M" link set "$V_M" up
ip -n "$NS_X" link add eid0 type veth peer name eid0h
ip -n "$NS_X" addr add 10.1.7.1/24 dev eid0
ip -n "$NS_X" link set eid0h up; ip -n "$NS_X" link set eid0 up
wait_for 5 ip netns exec "$NS_X" ping -c1 -W1 10.96.0.2 || die "veth not passing traffic"

rm -f "$PCAP"
ip netns exec "$NS_M" tshark -n -q -i "$V_M" -f 'udp port 4342' -a duration:300 -F pcap -w "$PCAP" \
    >"$RUN/capture.log" 2>&1 &
echo $! >"$RUN/capture.pid"
wait_for 15 grep -q 'Capturing on' "$RUN/capture.log" || die "tshark did not start: $(cat "$RUN/capture.log")"
# silent sink on the MS/MR address, so OOR's datagrams are not answered with ICMP port-unreachable
ip netns exec "$NS_M" timeout 120 "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.96.0.2", 4342))
s.settimeout(1.0)
while True:
    try:
        s.recvfrom(65535)
    except socket.timeout:
        pass' >"$RUN/sink.log" 2>&1 &
echo $! >"$RUN/sink.pid"

cp "$CV_LAB_DIR/oor/oor-xtr.conf" "$RUN/oor-xtr.conf"
[ -e /tmp/oor-ipc ] || touch "$RUN/oor-ipc.ours"
# foreground (no -D), line-buffered log; ip netns exec and stdbuf both exec, so $! is oor itself
ip netns exec "$NS_X" stdbuf -oL -eL "$OOR_BIN" -d 3 -f "$RUN/oor-xtr.conf" >"$RUN/oor.log" 2>&1 &
echo $! >"$RUN/oor.pid"
wait_for 10 ip -n "$NS_X" link show lispTun0 || die "OOR did not create lispTun0: $(tail -5 "$RUN/oor.log")"
log "OOR up (pid $(cat "$RUN/oor.pid"))"
map_registers() { tshark -n -r "$PCAP" -Y 'lisp.type == 3' 2>/dev/null | wc -l; }
ecms() { tshark -n -r "$PCAP" -Y 'lisp.type == 8' 2>/dev/null | wc -l; }
have_registers() { [ "$(map_registers)" -ge 2 ]; }
have_ecm() { [ "$(ecms)" -ge 1 ]; }
wait_for 15 have_registers || log "warning: fewer than 2 Map-Registers after 15 s"
# cache miss: ping (bounded) from the local EID to a remote EID -> ECM Map-Request to the MR
ip netns exec "$NS_X" ping -n -c1 -W1 -I 10.1.7.1 10.2.8.1 >/dev/null 2>&1 || true
wait_for 10 have_ecm || log "warning: no ECM Map-Request seen"
sleep 1
kill_pidfile "$RUN/oor.pid" 5
sleep 0.3
kill_pidfile "$RUN/capture.pid" 5

"$PY" "$CV_LAB_DIR/lispvec.py" build --pcap "$PCAP" --src 10.96.0.1 --out "$OUT" --key "$KEY" \
    --table "$RUN/table.md" | tee "$RUN/build.out"
cp "$PCAP" "$OUT/oor-xtr-lisp.pcap"; chmod 0644 "$OUT/oor-xtr-lisp.pcap"
if bash "$CV_ROOT/conformance/tshark-oracle.sh" bad "$OUT/oor-xtr-lisp.pcap" >"$RUN/oracle.out" 2>&1; then
    oracle="0 frames flagged"; else oracle="FLAGGED: $(head -3 "$RUN/oracle.out" | tr '\n' ' ')"; fi
{
    cat <<EOM
# Real-peer LISP control-plane vectors (Open Overlay Router 1.3)

One LISP control message per \`.hex\` file (the UDP payload, lowercase hex, one line), as OOR sent it
from 10.96.0.1:4342 to its Map-Server/Map-Resolver 10.96.0.2:4342. Regenerate with
\`sudo bash conformance/lab/capture-lisp.sh\` (~20 s).

- Captured: $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r); \`$(dpkg-query -W -f '${Package} ${Version}' openoverlayrouter 2>/dev/null)\`,
  \`$(dpkg-query -W -f '${Package} ${Version}' tshark 2>/dev/null)\`.
- OOR config: \`conformance/lab/oor/oor-xtr.conf\` — xTR, EID 10.1.7.0/24 in instance-id 107, RLOC
  10.96.0.1 (priority 1, weight 100), map-server 10.96.0.2 with **\`key-type = 1\` (HMAC-SHA-1-96 in OOR's
  naming; it sends the full 20-byte HMAC-SHA-1) and \`key = $KEY\`**, map-resolver 10.96.0.2.
- Nothing answered (a silent UDP sink sat on 10.96.0.2:4342), so OOR kept re-registering (new nonce each
  time) and retried the ECM Map-Request; one message of each kind is kept (\`count_in_capture\` in expected.json).
- The ECM Map-Request was triggered by \`ping -I 10.1.7.1 10.2.8.1\` inside OOR's namespace (cache miss).
- \`oor-xtr-lisp.pcap\`: the whole capture (classic pcap, udp/4342). tshark malformed oracle: $oracle.
- \`expected.json\`: decoded fields (lispvec.py) incl. \`hmac_ok\` (HMAC-SHA-1 over the message with the
  auth data zeroed, key \`$KEY\`), plus tshark's field values.

Notes: OOR writes the Key ID as one 16-bit field = 1 (RFC 6833 layout; in RFC 9301 terms Key ID 0,
Algorithm ID 1) and tshark shows it as \`Key ID: 0x0001\`; the EID is an Instance-ID LCAF (type 2) with
IID mask-len 32, which tshark shows as reserved bits. The ECM's inner IPv4 header goes from the source
EID to the requested EID, UDP 4342 -> 4342; the record asks for the /32 host, not a prefix.

EOM
    cat "$RUN/table.md"
} >"$OUT/README.md"
log "wrote $OUT/README.md"
