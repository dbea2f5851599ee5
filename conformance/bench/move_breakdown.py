#!/usr/bin/python3
"""Where the time of a VM move goes: one line per move and percentiles per step, from the files a
`CAPTURE=1 conformance/bench/move.sh` run leaves (move.py's JSON, the BGP capture on the underlay
and, for vmmi, its logs — run with VMMI_LOG=debug for the dataplane-op step).

  move_breakdown.py --moves vmmi.json --pcap vmmi-bgp.pcap --ul vw-a=10.97.0.1,vw-b=10.97.0.2,vw-c=10.97.0.3 \\
      --vtep vw-a=10.197.0.1,vw-b=10.197.0.2,vw-c=10.197.0.3 [--log vw-a=vmmi-vw-a.log,...] --mac 02:00:00:97:02:02

Steps (CLOCK_REALTIME everywhere; pcap times are kernel packet timestamps, vmmi's are its log
lines' UTC times, t_garp is move.py's clock right after the GARP left, t1 is the observer's
`bridge monitor` read time):
  garp -> nl       the new host's vmmi learn task logs the kernel's RTM_NEWNEIGH   (vmmi log)
  nl -> loop       its event loop logs "MAC learned locally"                        (vmmi log)
  loop -> wire     the UPDATE carrying the MAC leaves the new host (first TCP segment from its
                   underlay address to the observer's that contains the MAC)      (pcap)
  garp -> wire     the same from the GARP (every daemon)
  wire -> op       the observer's vmmi logs the FDB op (debug level)               (vmmi log)
  op -> t1         netlink request, kernel, the observer's bridge monitor reading it
  wire -> t1       the same from the wire (every daemon)
Nothing here is needed by the tests; it reads files only.
"""
import argparse
import datetime
import json
import re
import socket
import struct
import sys


def pct(vals, q):
    s = sorted(v for v in vals if v is not None)
    if not s:
        return None
    k = max(1, -(-q * len(s) // 100))
    return s[min(int(k), len(s)) - 1]


def read_pcap(path):
    """[(ts, src_ip, dst_ip, tcp_payload)] of IPv4/TCP frames on Ethernet."""
    out = []
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return out
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        end = "<"
    else:
        magic = struct.unpack(">I", data[:4])[0]
        end = ">"
    nano = magic == 0xA1B23C4D
    linktype = struct.unpack(end + "I", data[20:24])[0]
    if linktype != 1:
        sys.exit(f"{path}: link type {linktype}, want Ethernet (1)")
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(end + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + incl]
        off += 16 + incl
        ts = sec + frac / (1e9 if nano else 1e6)
        if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 6 or len(ip) < ihl + 20:
            continue
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:total]
        doff = (tcp[12] >> 4) * 4
        out.append((ts, socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]), tcp[doff:]))
    return out


LOG_TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z")


def read_log(path):
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            m = LOG_TS.match(line)
            if m:
                t = datetime.datetime.strptime(m.group(1)[:26], "%Y-%m-%dT%H:%M:%S.%f")
                out.append((t.replace(tzinfo=datetime.timezone.utc).timestamp(), line.rstrip()))
    return out


def first(entries, since, until, pred):
    for ts, x in entries:
        if since <= ts <= until and pred(x):
            return ts
    return None


def kv(s):
    return dict(x.split("=", 1) for x in s.split(",") if x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moves", required=True)
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--ul", required=True, help="HOST=underlay address,...")
    ap.add_argument("--vtep", required=True, help="HOST=VTEP address,...")
    ap.add_argument("--log", default="", help="HOST=vmmi log,... (vmmi legs)")
    ap.add_argument("--mac", required=True)
    ap.add_argument("--observer", default=None, help="default: the host that is never src/dst")
    a = ap.parse_args()
    d = json.load(open(a.moves))
    moves = d["moves"]
    ul, vtep = kv(a.ul), kv(a.vtep)
    logs = {h: read_log(p) for h, p in kv(a.log).items()}
    pkts = read_pcap(a.pcap)
    macb = bytes(int(x, 16) for x in a.mac.split(":"))
    obs = a.observer or next(h for h in ul if all(h not in (r["src"], r["dst"]) for r in moves))
    ms = lambda x, y: None if x is None or y is None else (x - y) * 1000
    cols = ["garp->nl", "nl->loop", "loop->wire", "garp->wire", "wire->op", "op->t1", "wire->t1", "garp->t1"]
    rows = []
    for r in moves:
        if not r.get("t1") or not r.get("t_garp"):
            continue
        tg, t1, dst = r["t_garp"], r["t1"], r["dst"]
        lo, hi = r["t_move"], t1 + 0.5
        t_wire = first([(p[0], p) for p in pkts], tg - 0.005, hi,
                       lambda p: p[1] == ul[dst] and p[2] == ul[obs] and macb in p[3])
        t_nl = t_loop = t_op = None
        if dst in logs:
            t_nl = first(logs[dst], lo, hi, lambda l: "local learn" in l and a.mac in l)
            t_loop = first(logs[dst], lo, hi, lambda l: "MAC learned locally" in l and a.mac in l)
        if obs in logs:
            t_op = first(logs[obs], lo, hi, lambda l: "dataplane op=Fdb" in l and a.mac in l
                         and f"vtep: {vtep[dst]}" in l)
        row = {"move": r["move"], "garp->nl": ms(t_nl, tg), "nl->loop": ms(t_loop, t_nl),
               "loop->wire": ms(t_wire, t_loop), "garp->wire": ms(t_wire, tg), "wire->op": ms(t_op, t_wire),
               "op->t1": ms(t1, t_op), "wire->t1": ms(t1, t_wire), "garp->t1": ms(t1, tg)}
        rows.append(row)
    f = lambda v: "     -" if v is None else f"{v:6.2f}"
    print(f"# {d.get('label')}: {len(rows)} moves, observer {obs}; ms")
    print("move " + " ".join(f"{c:>10}" for c in cols))
    for row in rows:
        print(f"{row['move']:4d} " + " ".join(f"{f(row[c]):>10}" for c in cols))
    print("\n| step (ms) | p50 | p90 | p99 | max |\n|---|---|---|---|---|")
    for c in cols:
        v = [row[c] for row in rows if row[c] is not None]
        if v:
            print(f"| {c} | {f(pct(v, 50)).strip()} | {f(pct(v, 90)).strip()} | {f(pct(v, 99)).strip()} | {f(max(v)).strip()} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
