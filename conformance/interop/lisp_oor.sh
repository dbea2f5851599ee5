# shellcheck shell=bash
# lisp-oor suite (issue 3, live): Open Overlay Router 1.3.0 as an xTR against vmmi as LISP
# Map-Server/Map-Resolver, with a VM that lives in vmmi's EVPN and moves between two vmmi VTEPs.
#
#   vi-v   vmmi A  10.99.0.1 / lo 10.255.0.1 (VTEP)  AS 65001, memory dataplane, [[vni]] 107,
#                  MAC Mobility state file in $VI_RUN (fresh per run, as B's),
#                  [lisp] map-server + map-resolver on 10.99.0.1:4342, smr, site "oor"
#                  (iid:107 10.1.7.0/24, HMAC-SHA-1, legacy_key_id + untruncated_auth: OOR sends the
#                  RFC 6830 16-bit Key ID and the full 20-byte HMAC)
#   vi-lb  vmmi B  10.99.0.10 / lo 10.255.0.10 (VTEP) AS 65001 (iBGP with A), memory dataplane, [[vni]] 107
#   vi-lo  OOR     eth0 10.99.0.11/24 (its RLOC, the only IPv4 address of the interface: OOR picks its
#                  control source address itself), eid0 10.1.7.1/24 (its EID prefix, IID 107; a veth
#                  whose peer eid0h stays in vi-lo: this kernel has no dummy driver); /32 routes to
#                  both VTEPs. OOR makes lispTun0 and its ip rules (from 10.1.7.0/24 -> lispTun0).
# The VM ($LO_VM_MAC / $LO_VM_IP in VNI 107) is only ever attached with `vmmi vm attach`; vmmi's
# EVPN -> LISP mapping feed makes EID [107] $LO_VM_IP/32 map to the VTEP that has it.
# dumpcap (tshark) captures UDP 4342/4341 on A's underlay port towards OOR (vi-v:plo).
# Assertions:
#   [1] OOR registers 10.1.7.0/24 IID 107 (Key ID 0x0001, 20-byte HMAC-SHA-1): OOR's log confirms
#       vmmi's Map-Notify; vmmi's /v1/lisp/registrations has it with OOR's RLOC. A Map-Register
#       signed with a wrong key (hand-built, OOR's layout) gets no Map-Notify and is counted
#       (/v1/lisp/counters auth_failures, registrations_rejected); OOR's registration stays.
#       Another ITR's ECM Map-Request for OOR's EID (hand-built, from vi-v's loopback) is
#       forwarded by vmmi to OOR (no proxy-reply), and OOR answers that ITR.
#   [2] the VM at A (`vm attach` on A): B learns it over iBGP; A's mapping database has
#       [107] VM/32 -> 10.255.0.1 from EVPN. A ping from OOR's EID misses OOR's map-cache: ECM
#       Map-Request to A's Map-Resolver, OOR installs the Map-Reply (log; capture: record
#       [107] VM/32, locator 10.255.0.1); the next ping is LISP data to 10.255.0.1:4341.
#       A second VM, pinged before it exists: a 1-minute negative for [107] VM2/32 (VNI 107 is
#       configured EID space, RFC 9301 §8.3); `vm attach` of VM 2 on A -> A sends OOR an SMR
#       (record = OOR's EID [107] 10.1.7.1/32, source EID = [107] VM2, both with the IID LCAF),
#       OOR's SMR-invoked ECM Map-Request gets locator 10.255.0.1.
#   [3] the move of VM 1 (`vm attach` on B, 3.2 s after VM 2's SMR: SMRs to one RLOC are rate
#       limited): B advertises MAC Mobility seq 1, A follows and withdraws; A's mapping moves to
#       10.255.0.10; A sends OOR an SMR, OOR's SMR-invoked request gets 10.255.0.10 and its data
#       goes there. `vm detach` on A then changes nothing; `vm detach` on B (3.2 s later): the EID
#       leaves the mapping system, A sends a third SMR, OOR's SMR-invoked request gets a negative
#       answer and OOR sends no more data for the VM. NOTE lines: vm attach -> SMR -> SMR-invoked
#       request -> Map-Reply times from the capture.
#   [4] tshark oracle on every UDP 4342 datagram vmmi sent: decodes as LISP of the expected type,
#       no malformed/warning expert info; at least 1 Map-Notify, 5 Map-Replies, 3 SMRs, and the
#       forwarded ECM (to OOR only).
# Sourced by run.sh.

LO_NS=vi-lo
LB_NS=vi-lb
LO_IP=10.99.0.11
LB_IP=10.99.0.10
LB_LO=10.255.0.10
LO_PORT=plo                  # A's (vi-v) end of OOR's veth, on bridge core: the capture point
LO_EID=10.1.7.1
LO_IID=107
LO_KEY=vmmi-lisp-key
LO_VM_MAC=02:00:00:00:6b:01
LO_VM_IP=10.107.0.50
LO_VM2_MAC=02:00:00:00:6b:02 # a second VM, pinged before it exists
LO_VM2_IP=10.107.0.51
LO_API_B=127.0.0.1:50179     # B's API, on B's own loopback (inside vi-lb)
OOR_BIN="${OOR_BIN:-/usr/sbin/oor}"
LO_DIR="$VI_RUN/oor"         # OOR writes oor-id beside its config: the config is copied here
LO_PCAP="$VI_RUN/lisp-oor.pcapng"

VB() { ip netns exec "$LB_NS" timeout 10 "$VMMI" "$@"; }
lo_lisp() { V show lisp --json --api "$API"; }
lo_oor_log() { cat "$LO_DIR/oor.log" 2>/dev/null; }
# lo_log_has REGEX: OOR's log has a line matching REGEX (prints the last lines of the log if not)
lo_log_has() { grep -E -- "$1" "$LO_DIR/oor.log" || { tail -5 "$LO_DIR/oor.log"; return 1; }; }
# lo_log_count REGEX: lines matching
lo_log_count() { grep -cE -- "$1" "$LO_DIR/oor.log" 2>/dev/null || true; }

lo_a_conf() {
    cat <<EOF
[[neighbor]]
address = "$LB_IP"
remote_asn = $VMMI_AS
families = ["l2vpn-evpn"]
connect_retry = 1
hold_time = 9
[[vni]]
vni = $LO_IID
[mobility]
state_file = "$VI_RUN/lisp-a-mobility.json"
[lisp]
roles = ["map-server", "map-resolver"]
listen = "$VMMI_IP:4342"
smr = true
[[lisp.site]]
name = "oor"
key = "$LO_KEY"
auth = "hmac-sha1-96"
eids = ["iid:$LO_IID 10.1.7.0/24"]
legacy_key_id = true
untruncated_auth = true
EOF
}
lo_b_conf() {
    cat <<EOF
[global]
asn = $VMMI_AS
router_id = "$LB_LO"
listen = ["$LB_IP:179"]
[api]
listen = "$LO_API_B"
[dataplane]
kind = "memory"
[[neighbor]]
address = "$VMMI_IP"
remote_asn = $VMMI_AS
families = ["l2vpn-evpn"]
connect_retry = 1
hold_time = 9
[[vni]]
vni = $LO_IID
[mobility]
state_file = "$VI_RUN/lisp-b-mobility.json"
EOF
}
# OOR 1.3.0 as an xTR (the format of its upstream examples; see conformance/lab/oor/oor-xtr.conf)
lo_oor_conf() {
    cat <<EOF
# written by conformance/interop/lisp_oor.sh
debug                  = 3
map-request-retries    = 2
operating-mode         = xTR
encapsulation          = LISP
nat_traversal_support  = off
rloc-probing {
    rloc-probe-interval         = 0
    rloc-probe-retries          = 0
    rloc-probe-retries-interval = 1
}
map-resolver = {
    $VMMI_IP
}
map-server {
    address        = $VMMI_IP
    key-type       = 1
    key            = $LO_KEY
    proxy-reply    = off
}
database-mapping {
    eid-prefix     = 10.1.7.0/24
    iid            = $LO_IID
    ttl            = 10
    rloc-address {
        address    = $LO_IP
        priority   = 1
        weight     = 100
    }
}
EOF
}

# OOR's namespace: one IPv4 address on eth0 (README gotcha: OOR takes any address of its interface
# as its control source), the EID on a veth pair inside the namespace, /32 routes to both VTEPs.
lo_oor_ns() {
    ip netns add "$LO_NS" || return 1
    ip -n "$LO_NS" link set lo up
    ip link add vi-tmp-a type veth peer name vi-tmp-b || return 1
    ip link set vi-tmp-a netns "$NS_V"
    ip link set vi-tmp-b netns "$LO_NS"
    ip -n "$NS_V" link set vi-tmp-a name "$LO_PORT"
    ip -n "$NS_V" link set "$LO_PORT" master core
    ip -n "$NS_V" link set "$LO_PORT" up
    ip -n "$LO_NS" link set vi-tmp-b name eth0
    ip -n "$LO_NS" addr add "$LO_IP/24" dev eth0
    ip -n "$LO_NS" link set eth0 up
    ip -n "$LO_NS" route add "$VMMI_LO/32" via "$VMMI_IP"
    ip -n "$LO_NS" route add "$LB_LO/32" via "$LB_IP"
    ip -n "$LO_NS" link add eid0 type veth peer name eid0h || return 1
    ip -n "$LO_NS" addr add "$LO_EID/24" dev eid0
    ip -n "$LO_NS" link set eid0h up
    ip -n "$LO_NS" link set eid0 up
    wait_for 5 ip netns exec "$LO_NS" ping -c1 -W1 "$VMMI_IP"
}

lo_capture_start() {
    rm -f "$LO_PCAP"
    # dumpcap through tshark (-w: nothing is dissected while capturing); stopped by pid at the end
    nohup ip netns exec "$NS_V" tshark -n -q -i "$LO_PORT" -f 'udp port 4342 or udp port 4341' -w "$LO_PCAP" \
        </dev/null >"$VI_RUN/lisp-oor-tshark.log" 2>&1 &
    echo $! >"$VI_RUN/lisp-oor-tshark.pid"; disown "$!" 2>/dev/null || true
    wait_for 15 grep -q 'Capturing on' "$VI_RUN/lisp-oor-tshark.log"
}
lo_capture_stop() { kill_pidfile "$VI_RUN/lisp-oor-tshark.pid" 5; }

lo_oor_start() {
    mkdir -p "$LO_DIR"; rm -f "$LO_DIR/oor-id" "$LO_DIR/oor.log"
    lo_oor_conf >"$LO_DIR/oor-xtr.conf"
    # foreground (no -D): the log is stdout, line-buffered by stdbuf; `ip netns exec` and `stdbuf`
    # both exec, so $! is oor's own pid
    nohup ip netns exec "$LO_NS" stdbuf -oL -eL "$OOR_BIN" -d 3 -f "$LO_DIR/oor-xtr.conf" \
        </dev/null >"$LO_DIR/oor.log" 2>&1 &
    echo $! >"$LO_DIR/oor.pid"; disown "$!" 2>/dev/null || true
    wait_for 10 ip -n "$LO_NS" link show lispTun0
}
# OOR: SIGTERM (it removes its rules and lispTun0), KILL after 5 s; its ZMQ socket /tmp/oor-ipc is
# not per-namespace: removed once our OOR is gone
lo_oor_stop() {
    [ -f "$LO_DIR/oor.pid" ] || return 0
    kill_pidfile "$LO_DIR/oor.pid" 5
    rm -f /tmp/oor-ipc
}

lo_b_start() {
    nohup ip netns exec "$LB_NS" "$VMMI" run --config "$VI_RUN/lisp-b.toml" </dev/null >>"$VI_RUN/lisp-b.log" 2>&1 &
    echo $! >"$VI_RUN/lisp-b.pid"; disown "$!" 2>/dev/null || true
    wait_for 10 VB show neighbors --json --api "$LO_API_B"
}

# lo_json CMD... -- PYEXPR: run CMD (JSON on stdout), evaluate PYEXPR with `j` bound to it; exit 0
# when true, else print the JSON (shortened) for the FAIL line
lo_json() {
    local cmd=() expr
    while [ "$#" -gt 0 ] && [ "$1" != -- ]; do cmd+=("$1"); shift; done
    shift; expr="$1"
    "${cmd[@]}" | "$PY" -c '
import json, sys
j = json.load(sys.stdin)
ok = eval(sys.argv[1])
if not ok:
    print(json.dumps(j)[:1200])
sys.exit(0 if ok else 1)' "$expr"
}
# the registration of EID (string as vmmi shows it) in A's database, as a python expression
lo_reg() { printf 'next((r for r in j["registrations"] if r["eid"] == "%s"), None)' "$1"; }

# lo_bad_register: a Map-Register in OOR's layout (Key ID field 0x0001, 20-byte HMAC-SHA-1, IID
# LCAF with mask-len 32, M=1) for 10.1.7.0/24 IID 107 with OOR's RLOC, signed with a wrong key,
# sent from OOR's namespace (ephemeral port) to A; prints "no-answer" when nothing came back in 1 s
lo_bad_register() {
    ip netns exec "$LO_NS" timeout 10 "$PY" - "$VMMI_IP" "$LO_IP" <<'PY'
import hashlib, hmac, os, socket, struct, sys
ms, rloc = sys.argv[1], sys.argv[2]
eid = struct.pack("!HBBBBHI", 16387, 0, 0, 2, 32, 10, 107) + struct.pack("!H", 1) + socket.inet_aton("10.1.7.0")
loc = struct.pack("!BBBBH", 1, 100, 255, 0, 0x05) + struct.pack("!H", 1) + socket.inet_aton(rloc)
rec = struct.pack("!IBBHH", 10, 1, 24, 0x1000, 0) + eid + loc
hdr = struct.pack("!BBBB", 0x30, 0, 0x01, 1) + os.urandom(8) + struct.pack("!HH", 1, 20)
msg = hdr + bytes(20) + rec
tag = hmac.new(b"not-the-site-key", msg, hashlib.sha1).digest()
msg = hdr + tag + rec
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((rloc, 0))
s.settimeout(1.0)
s.sendto(msg, (ms, 4342))
try:
    data, frm = s.recvfrom(9000)
    print("answered by %s: %s" % (frm, data.hex()))
    sys.exit(1)
except socket.timeout:
    print("no-answer")
PY
}

# lo_smr_answered_negative N: OOR's log has more than N "SMR: Map-Request for EID" lines for VM 1,
# and after the last one the Map-Reply record it took is the negative one (TTL 1, no locator)
lo_smr_answered_negative() {
    local re="SMR: Map-Request for EID: \(IID 107/32, EID $LO_VM_IP/32\)" f="$LO_DIR/oor.log" last
    [ "$(grep -cE -- "$re" "$f")" -gt "$1" ] || { tail -5 "$f"; return 1; }
    last="$(grep -nE -- "$re" "$f" | tail -1 | cut -d: -f1)"
    tail -n +"$last" "$f" | grep -E -- "Mapping-record -> ttl: 1 loc-count: 0 action: native-forward .*EID $LO_VM_IP/32\)" ||
        { tail -5 "$f"; return 1; }
}
# lo_itr_request: another ITR asks vmmi's Map-Resolver for OOR's EID: an ECM Map-Request (inner
# 10.255.0.1 -> 10.1.7.1, UDP ephemeral -> 4342; record [107] 10.1.7.1/32, IID LCAF; ITR-RLOC
# 10.255.0.1) sent from vi-v's loopback (OOR routes everything from its RLOC via 10.99.0.1, so its
# answer must go to an address of vi-v). vmmi forwards it to OOR (registered without proxy-reply),
# OOR answers the ITR-RLOC. Prints "from ADDR:PORT nonce=ok|bad eid=[IID]A.B.C.D/LEN a=0|1
# locs=IP,... ttl=N" or "no-answer" (2 s).
lo_itr_request() {
    ip netns exec "$NS_V" timeout 10 "$PY" - "$VMMI_IP" "$VMMI_LO" "$LO_EID" "$LO_IID" <<'PY'
import os, socket, struct, sys
ms, itr, eid, iid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def csum(b):
    b += b"\0" * (len(b) % 2)
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
nonce = os.urandom(8)
rec_eid = struct.pack("!HBBBBHIH", 16387, 0, 0, 2, 32, 10, iid, 1) + socket.inet_aton(eid)
mreq = (struct.pack("!BBBB", 0x10, 0, 0, 1) + nonce + struct.pack("!HH", 0, 1) + socket.inet_aton(itr)
        + struct.pack("!BB", 0, 32) + rec_eid)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((itr, 0))
sport = s.getsockname()[1]
src, dst, ulen = socket.inet_aton(itr), socket.inet_aton(eid), 8 + len(mreq)
ck = csum(src + dst + struct.pack("!BBH", 0, 17, ulen) + struct.pack("!HHHH", sport, 4342, ulen, 0) + mreq) or 0xffff
udp = struct.pack("!HHHH", sport, 4342, ulen, ck) + mreq
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0, src, dst)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
s.settimeout(2.0)
s.sendto(struct.pack("!I", 0x80000000) + ip + udp, (ms, 4342))
try:
    d, frm = s.recvfrom(9000)
except socket.timeout:
    print("no-answer")
    sys.exit(1)
try:
    assert d[0] >> 4 == 2 and d[3] >= 1
    ttl, nloc, mlen, flags = struct.unpack("!IBBH", d[12:20])
    afi, _, _, typ, _, _, riid, iafi = struct.unpack("!HBBBBHIH", d[22:36])
    assert afi == 16387 and typ == 2 and iafi == 1
    reid, off, locs = socket.inet_ntoa(d[36:40]), 40, []
    for _ in range(nloc):
        lafi = struct.unpack("!H", d[off + 6:off + 8])[0]
        assert lafi == 1
        locs.append(socket.inet_ntoa(d[off + 8:off + 12]))
        off += 12
    print("from %s:%d nonce=%s eid=[%d]%s/%d a=%d locs=%s ttl=%d" % (frm[0], frm[1], "ok" if d[4:12] == nonce else "bad",
          riid, reid, mlen, (flags >> 12) & 1, ",".join(locs), ttl))
except (AssertionError, struct.error, OSError) as e:
    print("undecodable reply from %s: %s (%r)" % (frm, d.hex(), e))
    sys.exit(1)
PY
}

lo_macs_a() { V show macs --json --vni "$LO_IID" --api "$API"; }
lo_macs_b() { VB show macs --json --vni "$LO_IID" --api "$LO_API_B"; }
lo_mac_a() { lo_macs_a | "$PY" "$CHECK" json "${@/#/[mac=$LO_VM_MAC]/}"; }
lo_mac_b() { lo_macs_b | "$PY" "$CHECK" json "${@/#/[mac=$LO_VM_MAC]/}"; }
# lo_ping [IP]: one ping from OOR's EID (default: to the VM); no answer is expected (nothing
# decapsulates at the VTEPs), it only drives OOR's map-cache and data path
lo_ping() { ip netns exec "$LO_NS" ping -c1 -W1 -I "$LO_EID" "${1:-$LO_VM_IP}" >/dev/null 2>&1; return 0; }

# ------------------------------------------------------------------ the capture, read back
# lo_frames: one line per UDP 4342/4341 frame of the pcap, tab-separated (ECM: outer, inner values):
#   epoch  ip.src  ip.dst  udp.srcport  udp.dstport  lisp.type(s)  smr  smr-invoked  nonce(s)
#   iid.ipv4(s)  loc.locator(s)  lcaf.iid(s)  mapping.ttl  mapping.act  expert severity  info
lo_frames() {
    tshark -n -r "$LO_PCAP" -Y 'udp.port==4342 || udp.port==4341' -T fields -E separator=/t -E occurrence=a \
        -E aggregator=, -e frame.time_epoch -e ip.src -e ip.dst -e udp.srcport -e udp.dstport -e lisp.type \
        -e lisp.mreq.flags.smr -e lisp.mreq.flags.smri -e lisp.nonce -e lisp.lcaf.iid.ipv4 \
        -e lisp.loc.locator -e lisp.lcaf.iid -e lisp.mapping.ttl -e lisp.mapping.act \
        -e _ws.expert.severity -e _ws.col.Info 2>/dev/null
}
# lo_pcap_check WHAT: checks over lo_frames (written to $VI_RUN/lisp-oor-frames.tsv); prints what
# it found (a NOTE line for the SMR timings) or, on failure, the last frames
#   first-reply  OOR's first ECM Map-Request for [107] VM 1 -> vmmi's Map-Reply (same nonce):
#             record [107] VM 1/32 (IID LCAF), ACT 0, locator A
#   negative  the same for VM 2 (before it exists): no locator, ACT 1 (Natively-Forward), TTL 1
#   smr-appear  after VM 2's `vm attach` on A: SMR vmmi -> OOR (record [107] OOR's EID, source EID
#             [107] VM 2, IID LCAF on both) -> OOR's SMR-invoked ECM -> vmmi's Map-Reply (same
#             nonce), locator A
#   smr-move  the same for VM 1 after its move, locator B
#   smr-leave the same after VM 1 left B: the answer is negative (no locator, ACT 1)
#   data-a / data-b  OOR's LISP data (UDP 4341) to A's / B's VTEP (data-b: after the move)
#   oracle    what vmmi sent: Map-Notify / Map-Reply / SMR / the ECM forwarded to OOR only, counts
lo_pcap_check() {
    lo_frames >"$VI_RUN/lisp-oor-frames.tsv"
    "$PY" - "$1" "$VI_RUN/lisp-oor-frames.tsv" "$VMMI_IP" "$LO_IP" "$VMMI_LO" "$LB_LO" "$LO_VM_IP" "$LO_VM2_IP" \
        "$LO_EID" "${LO_T_APPEAR:-0}" "${LO_T_MOVE:-0}" "${LO_T_LEAVE:-0}" <<'PY'
import sys
what, path, ms, oor, vtep_a, vtep_b, vm1, vm2, oor_eid = sys.argv[1:10]
t_appear, t_move, t_leave = float(sys.argv[10]), float(sys.argv[11]), float(sys.argv[12])
F = []
for line in open(path):
    c = line.rstrip("\n").split("\t")
    c += [""] * (16 - len(c))
    first = lambda v: v.split(",")[0]
    lst = lambda v: [x for x in v.split(",") if x]
    F.append(dict(t=float(first(c[0]) or 0), src=first(c[1]), dst=first(c[2]), sport=first(c[3]), dport=first(c[4]),
                  types=lst(c[5]), smr=c[6], smri=c[7], nonces=lst(c[8]), iid_ips=lst(c[9]), locs=lst(c[10]),
                  iids=lst(c[11]), ttl=lst(c[12]), act=lst(c[13]), sev=c[14], info=c[15]))
from_ms = [f for f in F if f["src"] == ms and f["sport"] == "4342"]
def show(fs):
    return "\n".join("%.6f %s:%s -> %s:%s type %s smr %s smri %s nonce %s iid-eids %s locs %s ttl %s act %s | %s" % (
        f["t"], f["src"], f["sport"], f["dst"], f["dport"], ",".join(f["types"]), f["smr"], f["smri"],
        ",".join(f["nonces"]), ",".join(f["iid_ips"]), ",".join(f["locs"]), ",".join(f["ttl"]), ",".join(f["act"]),
        f["info"]) for f in fs[-14:])
def yes(v):
    return v.split(",")[-1] in ("1", "True", "true")
def ecm_req(vm, after, smri):
    # OOR -> vmmi's Map-Resolver: ECM (8) around a Map-Request (1) for [107] vm
    return [f for f in F if f["t"] >= after and f["src"] == oor and f["dst"] == ms and f["dport"] == "4342"
            and f["types"][:2] == ["8", "1"] and yes(f["smri"]) == smri and vm in f["iid_ips"]]
def reply_to(vm, req):
    # vmmi's Map-Reply to that request: same nonce, to OOR, one record [107] vm (IID LCAF)
    return [f for f in from_ms if f["t"] >= req["t"] and f["types"] == ["2"] and f["dst"] == oor
            and f["nonces"] == req["nonces"][-1:] and f["iid_ips"] == [vm] and f["iids"] == ["107"]]
ok, out = False, ""
if what in ("first-reply", "negative"):
    vm = vm1 if what == "first-reply" else vm2
    req = ecm_req(vm, 0, False)
    rep = reply_to(vm, req[0]) if req else []
    want = ([vtep_a], ["0"]) if what == "first-reply" else ([], ["1"])
    if rep and (rep[0]["locs"], rep[0]["act"]) == want and (what == "first-reply" or rep[0]["ttl"] == ["1"]):
        ok = True
        out = "ECM Map-Request at %.6f, Map-Reply +%.2f ms: [107] %s/32 %s" % (
            req[0]["t"], (rep[0]["t"] - req[0]["t"]) * 1000, vm,
            "-> " + vtep_a if what == "first-reply" else "negative, ACT 1, TTL 1 min")
    else:
        out = "ECM Map-Requests for [107] %s: %d; replies with its nonce: %s\n%s" % (
            vm, len(req), show(rep) or "none", show(F))
elif what in ("smr-appear", "smr-move", "smr-leave"):
    vm, after, vtep, tag = {"smr-appear": (vm2, t_appear, vtep_a, "VM 2 appears (vm attach on A)"),
                            "smr-move": (vm1, t_move, vtep_b, "VM 1 moves (vm attach on B)"),
                            "smr-leave": (vm1, t_leave, None, "VM 1 leaves (vm detach on B)")}[what]
    smr = [f for f in from_ms if f["t"] >= after and f["types"] == ["1"] and yes(f["smr"]) and f["dst"] == oor]
    good = [f for f in smr if f["iid_ips"][:2] == [vm, oor_eid] and f["iids"][:2] == ["107", "107"]]
    inv = ecm_req(vm, good[0]["t"], True) if good else []
    rep = reply_to(vm, inv[0]) if inv else []
    if rep and (rep[0]["locs"] == [vtep] if vtep else (not rep[0]["locs"] and rep[0]["act"] == ["1"])):
        ok = True
        vtep = vtep or "negative, ACT 1"
        s, i, r = good[0]["t"], inv[0]["t"], rep[0]["t"]
        out = ("NOTE lisp-oor: %s -> SMR from vmmi %.1f ms; SMR -> OOR's SMR-invoked Map-Request %.2f ms; "
               "-> vmmi's Map-Reply (%s) %.2f ms; SMR -> reply %.2f ms (capture timestamps)"
               % (tag, (s - after) * 1000, (i - s) * 1000, vtep, (r - i) * 1000, (r - s) * 1000))
    else:
        out = ("SMRs from vmmi after %s: %d (record [107] %s + source EID [107] %s: %d); SMR-invoked ECM: %d; "
               "reply with its nonce: %s\n%s") % (tag, len(smr), oor_eid, vm, len(good), len(inv), show(rep) or "none", show(F))
elif what in ("data-a", "data-b"):
    dst, after = (vtep_a, 0) if what == "data-a" else (vtep_b, t_move)
    d = [f for f in F if f["src"] == oor and f["dst"] == dst and f["dport"] == "4341" and f["t"] >= after]
    ok = bool(d)
    out = "%d LISP data packets %s -> %s:4341" % (len(d), oor, dst) if ok else show(F)
elif what == "no-data-after-leave":
    # once the negative answer is in, OOR sends no more LISP data to either VTEP
    rep = [f for f in from_ms if f["t"] >= t_leave and f["types"] == ["2"] and f["iid_ips"] == [vm1] and not f["locs"]]
    d = [f for f in F if rep and f["t"] > rep[0]["t"] and f["src"] == oor and f["dport"] == "4341"]
    ok = bool(rep) and not d
    out = "no LISP data after the negative answer" if ok else ("negative answer: %d\n%s" % (len(rep), show(d or F)))
elif what == "oracle":
    bad = [f for f in from_ms if not f["types"] or f["types"][:2] not in (["1"], ["2"], ["4"], ["8", "1"]) or f["sev"]
           or (f["types"] == ["1"] and not yes(f["smr"])) or (f["types"][0] == "8" and f["dst"] != oor)]
    n_fwd = sum(1 for f in from_ms if f["types"][:2] == ["8", "1"])
    n_notify = sum(1 for f in from_ms if f["types"] == ["4"])
    n_reply = sum(1 for f in from_ms if f["types"] == ["2"])
    n_smr = sum(1 for f in from_ms if f["types"] == ["1"] and yes(f["smr"]))
    ok = not bad and n_notify >= 1 and n_reply >= 5 and n_smr >= 3 and n_fwd >= 1
    out = "%d datagrams from %s:4342: %d Map-Notify, %d Map-Reply, %d SMR, %d forwarded ECM" % (
        len(from_ms), ms, n_notify, n_reply, n_smr, n_fwd)
    if bad:
        out += "; not Map-Notify/Map-Reply/SMR/ECM to OOR, or with expert info:\n" + show(bad)
print(out)
sys.exit(0 if ok else 1)
PY
}
# tshark's own malformed filter (INTEROP.md) over what vmmi sent: no frame may match, and every
# datagram vmmi sent from 4342 is dissected as LISP
lo_tshark_clean() {
    local n
    n="$(tshark -n -r "$LO_PCAP" -Y "ip.src==$VMMI_IP && udp.srcport==4342 && (_ws.malformed || _ws.expert.severity>=\"warning\")" 2>/dev/null)"
    [ -z "$n" ] || { echo "$n"; return 1; }
    n="$(tshark -n -r "$LO_PCAP" -Y "ip.src==$VMMI_IP && udp.srcport==4342 && !lisp" 2>/dev/null)"
    [ -z "$n" ] || { echo "not LISP: $n"; return 1; }
}
# lo_pcap_pass NAME WHAT: one assertion from lo_pcap_check, its output (the NOTE) printed after PASS
lo_pcap_pass() {
    local out
    if out="$(lo_pcap_check "$2")"; then
        pass "$1"
        case "$out" in NOTE*) echo "$out" ;; esac
        LO_NOTES+=("$out")
    else
        fail "$1" "$out"
    fi
}

# lo_setup: configs, namespaces, capture, vmmi A and B, OOR (a FAIL line and status 1 on a problem)
lo_setup() {
    local P="lisp-oor:"
    mkdir -p "$LO_DIR"
    lo_a_conf | write_vmmi_conf "$VI_RUN/lisp-a.toml"
    lo_b_conf >"$VI_RUN/lisp-b.toml"
    "$VMMI" check --config "$VI_RUN/lisp-b.toml" >/dev/null || { fail "$P vmmi B config" "$("$VMMI" check --config "$VI_RUN/lisp-b.toml" 2>&1)"; return 1; }
    veth_ns "$LB_NS" "$LB_IP" "$LB_LO" || { fail "$P setup (vmmi B namespace)" ""; return 1; }
    lo_oor_ns || { fail "$P setup (OOR namespace)" "$(ip -n "$LO_NS" -br addr 2>&1)"; return 1; }
    lo_capture_start || { fail "$P tshark capture on $LO_PORT" "$(cat "$VI_RUN/lisp-oor-tshark.log")"; return 1; }
    vmmi_start "$VI_RUN/lisp-a.toml" "$VI_RUN/lisp-a.log" || { fail "$P vmmi A starts" "$(tail -5 "$VI_RUN/lisp-a.log")"; return 1; }
    lo_b_start || { fail "$P vmmi B starts" "$(tail -5 "$VI_RUN/lisp-b.log")"; return 1; }
    lo_oor_start || { fail "$P OOR starts (lispTun0 in $LO_NS)" "$(tail -5 "$LO_DIR/oor.log")"; return 1; }
}

suite_lisp_oor() {
    log "== lisp-oor suite (OOR $(dpkg-query -W -f '${Version}' openoverlayrouter 2>/dev/null), VM $LO_VM_MAC $LO_VM_IP in VNI $LO_IID)"
    local P="lisp-oor:" n1 r a0 j0 m0 t
    LO_NOTES=(); LO_T_APPEAR=0; LO_T_MOVE=0; LO_T_LEAVE=0
    lo_setup || return

    # ---------------------------------------------------------------- 1. registration
    check "$P [1] OOR: vmmi's Map-Notify confirms its registration (IID 107/32, EID 10.1.7.0/24)" 20 \
        lo_log_has 'Map-Notify message confirms correct registration of \(IID 107/32, EID 10\.1\.7\.0/24\)'
    check "$P [1] vmmi A: /v1/lisp/registrations has [107] 10.1.7.0/24 -> $LO_IP, registered by $LO_IP (site oor, Map-Register)" 5 \
        lo_json lo_lisp -- "(lambda r: r is not None and r['rlocs'] == ['$LO_IP'] and any(g['source'] == 'map-register' and g['site'] == 'oor' and (g['address'] or '').startswith('$LO_IP:') for g in r['registrants']))($(lo_reg "[107] 10.1.7.0/24"))"
    check_now "$P [1] vmmi A: counters: Map-Register accepted, Map-Notify sent, no auth failure" \
        lo_json lo_lisp -- "j['counters']['registrations_accepted'] >= 1 and j['counters']['map_notifies_tx'] >= 1 and j['counters']['auth_failures'] == 0"
    check_now "$P [1] OOR: no 'Map-Notify message is invalid' / 'UNKNOWN EID' in its log" \
        bash -c "! grep -E 'Map-Notify message is invalid|UNKNOWN EID' '$LO_DIR/oor.log'"
    n1="$(lo_lisp | "$PY" -c 'import json,sys; c=json.load(sys.stdin)["counters"]; print(c["auth_failures"], c["registrations_rejected"], c["map_notifies_tx"])')"
    read -r a0 j0 m0 <<<"$n1"
    r="$(lo_bad_register)"
    if [ "$r" = no-answer ]; then
        pass "$P [1] a Map-Register in OOR's layout signed with a wrong key: no Map-Notify comes back (1 s)"
    else
        fail "$P [1] a Map-Register in OOR's layout signed with a wrong key: no Map-Notify comes back (1 s)" "$r"
    fi
    check "$P [1] ... it is refused and counted (/v1/lisp/counters auth_failures and registrations_rejected +1, no Map-Notify)" 5 \
        lo_json lo_lisp -- "j['counters']['auth_failures'] == ${a0:-0} + 1 and j['counters']['registrations_rejected'] == ${j0:-0} + 1 and j['counters']['map_notifies_tx'] == ${m0:-0}"
    check_now "$P [1] ... and OOR's registration is untouched" \
        lo_json lo_lisp -- "(lambda r: r is not None and r['rlocs'] == ['$LO_IP'])($(lo_reg "[107] 10.1.7.0/24"))"
    n1="$(lo_lisp | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["counters"]["map_requests_forwarded"])')"
    r="$(lo_itr_request)"
    if [[ "$r" == "from $LO_IP:4342 nonce=ok eid=[107]10.1.7.0/24 a=1 locs=$LO_IP "* ]]; then
        pass "$P [1] another ITR's ECM Map-Request for [107] $LO_EID: vmmi forwards it to OOR (registered without proxy-reply, RFC 9301 §8.3), OOR answers the ITR ($r)"
    else
        fail "$P [1] another ITR's ECM Map-Request for [107] $LO_EID: vmmi forwards it to OOR (registered without proxy-reply, RFC 9301 §8.3), OOR answers the ITR" "$r"
    fi
    check_now "$P [1] ... vmmi counted it forwarded (/v1/lisp/counters map_requests_forwarded +1)" \
        lo_json lo_lisp -- "j['counters']['map_requests_forwarded'] == ${n1:-0} + 1"

    # ---------------------------------------------------------------- 2. VMs at A, OOR resolves them
    check "$P [2] vmmi A and B: iBGP session Established (l2vpn-evpn)" 30 \
        vmmi_nbr "[name=$LB_IP]/state=Established"
    V vm attach --vni "$LO_IID" --mac "$LO_VM_MAC" --ip "$LO_VM_IP" --api "$API" >/dev/null \
        || fail "$P [2] vmmi vm attach on A (CLI)" "$(tail -3 "$VI_RUN/lisp-a.log")"
    check "$P [2] vmmi B learns the VM from A over EVPN (remote at $VMMI_LO, seq 0)" "$T" \
        lo_mac_b location/at=remote location/vtep=$VMMI_LO seq=0
    check "$P [2] vmmi A: the EVPN feed maps [107] $LO_VM_IP/32 -> $VMMI_LO (A's VTEP) in the Map-Server database" "$T" \
        lo_json lo_lisp -- "(lambda r: r is not None and r['rlocs'] == ['$VMMI_LO'] and r['registrants'][0]['source'] == 'evpn')($(lo_reg "[107] $LO_VM_IP/32"))"
    lo_ping
    check "$P [2] OOR: a ping from its EID $LO_EID misses its map-cache; it installs vmmi's Map-Reply ('Added Map Cache entry with EID prefix (IID 107/32, EID $LO_VM_IP/32)')" 10 \
        lo_log_has "Added Map Cache entry with EID prefix \(IID 107/32, EID $LO_VM_IP/32\)"
    check_now "$P [2] ... with locator $VMMI_LO (A's VTEP)" \
        lo_log_has "Added locator \[$VMMI_LO, .* to the mapping with EID \(IID 107/32, EID $LO_VM_IP/32\)"
    lo_ping
    # a second VM, pinged before it exists: the miss is answered "not registered" for the host,
    # 1 minute (RFC 9301 §8.3: VNI 107 is configured EID space), never a wide 15-minute hole;
    # when it appears, the SMR makes OOR ask again
    lo_ping "$LO_VM2_IP"
    check "$P [2] VM 2 ($LO_VM2_IP) before it exists: vmmi answers OOR's miss with a 1-minute negative for [107] $LO_VM2_IP/32, and OOR caches it" 10 \
        lo_log_has "Mapping-record -> ttl: 1 loc-count: 0 action: native-forward .*EID $LO_VM2_IP/32\)"
    LO_T_APPEAR=$(date +%s.%N)
    V vm attach --vni "$LO_IID" --mac "$LO_VM2_MAC" --ip "$LO_VM2_IP" --api "$API" >/dev/null \
        || fail "$P [2] vmmi vm attach of VM 2 on A (CLI)" "$(tail -3 "$VI_RUN/lisp-a.log")"
    check "$P [2] VM 2 appears at A: OOR acts on vmmi's SMR ('SMR: Map-Request for EID: (IID 107/32, EID $LO_VM2_IP/32)')" 10 \
        lo_log_has "SMR: Map-Request for EID: \(IID 107/32, EID $LO_VM2_IP/32\)"
    check "$P [2] ... and installs the answer: locator $VMMI_LO for (IID 107/32, EID $LO_VM2_IP/32)" 10 \
        lo_log_has "Added locator \[$VMMI_LO, .* to the mapping with EID \(IID 107/32, EID $LO_VM2_IP/32\)"
    lo_ping "$LO_VM2_IP"
    check_now "$P [2] vmmi A counted the Map-Requests, the Map-Replies (one negative) and the SMR" \
        lo_json lo_lisp -- "j['counters']['map_requests_rx'] >= 3 and j['counters']['map_replies_tx'] >= 3 and j['counters']['negative_replies_tx'] >= 1 and j['counters']['smr_tx'] >= 1"

    # ---------------------------------------------------------------- 3. the move of VM 1 to B
    # SMRs to one RLOC leave at most one per 3 s (RFC 9301 §6.1): keep the move's SMR out of
    # VM 2's interval so that its timing is the protocol's, not the rate limit's
    t="$(awk -v a="$LO_T_APPEAR" -v n="$(date +%s.%N)" 'BEGIN { d = a + 3.2 - n; print (d > 0 ? d : 0) }')"
    sleep "$t"
    LO_T_MOVE=$(date +%s.%N)
    VB vm attach --vni "$LO_IID" --mac "$LO_VM_MAC" --ip "$LO_VM_IP" --api "$LO_API_B" >/dev/null \
        || fail "$P [3] vmmi vm attach on B (CLI)" "$(tail -3 "$VI_RUN/lisp-b.log")"
    check "$P [3] vmmi A follows the move: the VM remote at B's VTEP $LB_LO, seq 1" "$T" \
        lo_mac_a location/at=remote location/vtep=$LB_LO seq=1
    check "$P [3] vmmi A: the mapping [107] $LO_VM_IP/32 moved to $LB_LO (Map-Version 1)" "$T" \
        lo_json lo_lisp -- "(lambda r: r is not None and r['rlocs'] == ['$LB_LO'] and r['version'] == 1)($(lo_reg "[107] $LO_VM_IP/32"))"
    check "$P [3] vmmi A sent a second SMR (/v1/lisp/counters smr_tx)" 5 \
        lo_json lo_lisp -- "j['counters']['smr_tx'] >= 2"
    check "$P [3] OOR acts on it ('SMR: Map-Request for EID: (IID 107/32, EID $LO_VM_IP/32)')" 10 \
        lo_log_has "SMR: Map-Request for EID: \(IID 107/32, EID $LO_VM_IP/32\)"
    check "$P [3] OOR replaces the locator: $LB_LO for (IID 107/32, EID $LO_VM_IP/32)" 10 \
        lo_log_has "Added locator \[$LB_LO, .* to the mapping with EID \(IID 107/32, EID $LO_VM_IP/32\)"
    lo_ping
    # the orchestrator takes the VM off A (it had left already): nothing changes for LISP
    n1="$(lo_lisp | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["counters"]["smr_tx"])')"
    V vm detach --vni "$LO_IID" --mac "$LO_VM_MAC" --api "$API" >/dev/null \
        || fail "$P [3] vmmi vm detach on A (CLI)" "$(tail -3 "$VI_RUN/lisp-a.log")"
    sleep 0.3
    check_now "$P [3] \`vm detach\` on A after the move: the mapping stays at $LB_LO and no SMR is sent" \
        lo_json lo_lisp -- "j['counters']['smr_tx'] == ${n1:-0} and (lambda r: r is not None and r['rlocs'] == ['$LB_LO'])($(lo_reg "[107] $LO_VM_IP/32"))"
    # the VM leaves B too (outside the move SMR's 3 s interval): the EID is gone from the mapping
    # system; OOR is solicited, asks again and gets a negative answer
    t="$(awk -v a="$LO_T_MOVE" -v n="$(date +%s.%N)" 'BEGIN { d = a + 3.2 - n; print (d > 0 ? d : 0) }')"
    sleep "$t"
    n1="$(lo_log_count "SMR: Map-Request for EID: \(IID 107/32, EID $LO_VM_IP/32\)")"
    LO_T_LEAVE=$(date +%s.%N)
    VB vm detach --vni "$LO_IID" --mac "$LO_VM_MAC" --api "$LO_API_B" >/dev/null \
        || fail "$P [3] vmmi vm detach on B (CLI)" "$(tail -3 "$VI_RUN/lisp-b.log")"
    check "$P [3] VM 1 leaves B: vmmi A's mapping database no longer has [107] $LO_VM_IP/32" "$T" \
        lo_json lo_lisp -- "$(lo_reg "[107] $LO_VM_IP/32") is None and j['counters']['smr_tx'] >= 3"
    check "$P [3] ... OOR acts on the third SMR and takes the negative answer (no locator) for (IID 107/32, EID $LO_VM_IP/32)" 10 \
        lo_smr_answered_negative "${n1:-0}"
    lo_ping; sleep 0.3
    check_now "$P [3] OOR never logged an SMR as 'not locally configured' / 'doesn't exist in cache', nor 'SMR: No Map Reply'" \
        bash -c "! grep -E \"not locally configured|doesn't exist in cache|SMR: No Map Reply\" '$LO_DIR/oor.log'"

    # ---------------------------------------------------------------- 4. the capture, read back
    lo_capture_stop
    lo_pcap_pass "$P [2] capture: OOR's ECM Map-Request for [107] $LO_VM_IP -> vmmi's Map-Reply (its nonce): record [107] $LO_VM_IP/32 (IID LCAF), locator $VMMI_LO" first-reply
    lo_pcap_pass "$P [2] capture: OOR's LISP data (UDP 4341) goes to A's VTEP $VMMI_LO" data-a
    lo_pcap_pass "$P [2] capture: OOR's ECM Map-Request for VM 2 before it exists -> vmmi's negative Map-Reply: [107] $LO_VM2_IP/32, ACT Natively-Forward, TTL 1, no locator" negative
    lo_pcap_pass "$P [2] capture: VM 2 appears -> SMR from vmmi to OOR (record [107] $LO_EID, source EID [107] $LO_VM2_IP, IID LCAF on both) -> OOR's SMR-invoked ECM Map-Request -> vmmi's Map-Reply (its nonce) with $VMMI_LO" smr-appear
    lo_pcap_pass "$P [3] capture: VM 1 moves -> SMR from vmmi to OOR (record [107] $LO_EID, source EID [107] $LO_VM_IP) -> SMR-invoked ECM Map-Request -> vmmi's Map-Reply (its nonce) with $LB_LO" smr-move
    lo_pcap_pass "$P [3] capture: after the move OOR's LISP data goes to B's VTEP $LB_LO:4341" data-b
    lo_pcap_pass "$P [3] capture: VM 1 leaves -> SMR -> SMR-invoked ECM Map-Request -> vmmi's negative Map-Reply (its nonce, no locator, ACT Natively-Forward)" smr-leave
    lo_pcap_pass "$P [3] capture: after that answer OOR sends no LISP data for the VM" no-data-after-leave
    check_now "$P [4] tshark: every UDP 4342 datagram vmmi sent is LISP, none malformed or with warning expert info" lo_tshark_clean
    lo_pcap_pass "$P [4] capture: vmmi sent only Map-Notify (type 4, >= 1), Map-Reply (type 2, >= 5), SMR (type 1 with S, >= 3) and the ECM it forwarded to OOR (type 8, >= 1)" oracle
    log "lisp-oor: ${LO_NOTES[*]: -1}"
}

suite_lisp_oor_down() {
    lo_oor_stop
    lo_capture_stop
    kill_pidfile "$VI_RUN/lisp-b.pid" 5
    vmmi_stop
    del_ns "$LO_NS"; del_ns "$LB_NS"
    ip -n "$NS_V" link del "$LO_PORT" 2>/dev/null
    ip -n "$NS_V" link del plb 2>/dev/null
    return 0
}
