#!/usr/bin/python3
"""Extract LISP control messages (UDP 4342) sent by one address from a classic pcap into one-message-
per-file hex vectors, with an expected.json cross-checked against tshark. Dependency-free (+ tshark).

  lispvec.py build --pcap CAP.pcap --src 10.96.0.1 --out conformance/vectors/oor-1.3 --key vmmi-lisp-key

Keeps the first message of each kind (Map-Register, ECM Map-Request, ...) plus, for each kind, the
count seen. Map-Register authentication (HMAC-SHA-1, auth length 20, over the whole message with the
auth data zeroed) is verified with --key and recorded as hmac_ok.
"""
import argparse
import hashlib
import hmac
import json
import os
import struct
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bgpvec import ip4, read_pcap  # noqa: E402

TYPES = {1: "map-request", 2: "map-reply", 3: "map-register", 4: "map-notify", 8: "ecm"}


def udp_payloads(path, src):
    for frame, ts, ip in read_pcap(path):
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17 or ip4(ip[12:16]) != src:
            continue
        ihl = (ip[0] & 15) * 4
        sport, dport, ln = struct.unpack("!HHH", ip[ihl:ihl + 6])
        if 4342 not in (sport, dport):
            continue
        yield frame, ts, ip4(ip[16:20]), sport, dport, ip[ihl + 8:ihl + ln]


def eid_record(b, off):
    """Parse an EID (AFI-encoded, incl. Instance-ID LCAF); return (dict, new_off)."""
    afi = struct.unpack("!H", b[off:off + 2])[0]
    if afi == 1:
        return {"afi": 1, "ip": ip4(b[off + 2:off + 6])}, off + 6
    if afi == 16387:  # LCAF
        _r1, _fl, ltype, iid_masklen, ln = struct.unpack("!BBBBH", b[off + 2:off + 8])
        body = b[off + 8:off + 8 + ln]
        d = {"afi": 16387, "lcaf_type": ltype, "lcaf_len": ln}
        if ltype == 2:
            d["iid"] = struct.unpack("!I", body[:4])[0]
            d["iid_mask_len"] = iid_masklen
            inner, _ = eid_record(body, 4)
            d["inner"] = inner
        return d, off + 8 + ln
    if afi == 0:
        return {"afi": 0}, off + 2
    return {"afi": afi, "raw": b[off + 2:].hex()}, len(b)


def decode_register(m, key):
    d = {"type": 3, "flags_byte1": m[1], "want_map_notify": bool(m[2] & 1),
         "record_count": m[3], "nonce": m[4:12].hex()}
    d["key_id_16"] = struct.unpack("!H", m[12:14])[0]
    alen = struct.unpack("!H", m[14:16])[0]
    d["auth_len"] = alen
    auth = m[16:16 + alen]
    d["auth_data"] = auth.hex()
    if key:
        zeroed = m[:16] + bytes(alen) + m[16 + alen:]
        d["hmac_ok"] = hmac.compare_digest(hmac.new(key.encode(), zeroed, hashlib.sha1).digest()[:alen], auth)
    off = 16 + alen
    ttl, locs, masklen, act_a = struct.unpack("!IBBH", m[off:off + 8])
    d["record"] = {"ttl": ttl, "locator_count": locs, "eid_mask_len": masklen, "authoritative": bool(act_a & 0x1000),
                   "map_version": struct.unpack("!H", m[off + 8:off + 10])[0] & 0x0FFF}
    eid, p = eid_record(m, off + 10)
    d["record"]["eid"] = eid
    locs_out = []
    for _ in range(locs):
        prio, w, mp, mw, fl = struct.unpack("!BBBBH", m[p:p + 6])
        loc, p = eid_record(m, p + 6)
        locs_out.append({"priority": prio, "weight": w, "m_priority": mp, "m_weight": mw,
                         "L": bool(fl & 4), "p": bool(fl & 2), "R": bool(fl & 1), "locator": loc})
    d["record"]["locators"] = locs_out
    d["trailing_bytes"] = len(m) - p
    return d


def decode_map_request(m):
    d = {"type": 1, "flags": m[0] & 0x0F, "smr": bool(m[1] & 0x40), "irc": m[2] & 0x1F, "record_count": m[3],
         "nonce": m[4:12].hex()}
    src, p = eid_record(m, 12)
    d["source_eid"] = src
    itr = []
    for _ in range(d["irc"] + 1):
        r, p = eid_record(m, p)
        itr.append(r)
    d["itr_rlocs"] = itr
    recs = []
    for _ in range(d["record_count"]):
        masklen = m[p + 1]
        e, p = eid_record(m, p + 2)
        recs.append({"eid_mask_len": masklen, "eid": e})
    d["records"] = recs
    return d


def decode(m, key):
    t = m[0] >> 4
    if t == 3:
        return decode_register(m, key)
    if t == 1:
        return decode_map_request(m)
    if t == 8:
        ihl = (m[4] & 15) * 4
        inner_ip = m[4:4 + ihl]
        sport, dport = struct.unpack("!HH", m[4 + ihl:8 + ihl])
        inner = m[4 + ihl + 8:]
        return {"type": 8, "ecm_flags": m[0] & 0x0F, "inner_src": ip4(inner_ip[12:16]), "inner_dst": ip4(inner_ip[16:20]),
                "inner_ttl": inner_ip[8], "inner_sport": sport, "inner_dport": dport,
                "inner": decode(inner, None)}
    return {"type": t}


def name_of(d):
    if d["type"] == 8:
        return "ecm-" + name_of(d["inner"])
    if d["type"] == 1 and d.get("smr"):
        return "map-request-smr"
    return TYPES.get(d["type"], "lisp-type%d" % d["type"])


def describe(d):
    if d["type"] == 3:
        r = d["record"]
        e = r["eid"]
        eid = "[%s] %s/%d" % (e.get("iid"), e.get("inner", e).get("ip"), r["eid_mask_len"]) if "iid" in e else \
            "%s/%d" % (e.get("ip"), r["eid_mask_len"])
        return ("Map-Register M=%d, %d record, key-id field 0x%04x, auth len %d (HMAC-SHA-1%s); EID %s "
                "(IID mask-len %s), TTL %d, A=%d, %d locator(s): %s" % (
                    d["want_map_notify"], d["record_count"], d["key_id_16"], d["auth_len"],
                    ", verified" if d.get("hmac_ok") else (", NOT verified" if "hmac_ok" in d else ""), eid,
                    e.get("iid_mask_len"), r["ttl"], r["authoritative"], r["locator_count"],
                    ", ".join("%s prio %d weight %d L=%d p=%d R=%d" % (l["locator"].get("ip"), l["priority"], l["weight"],
                                                                        l["L"], l["p"], l["R"]) for l in r["locators"])))
    if d["type"] == 8:
        i = d["inner"]
        s = "ECM (inner IPv4 %s -> %s TTL %d, UDP %d -> %d) carrying " % (
            d["inner_src"], d["inner_dst"], d["inner_ttl"], d["inner_sport"], d["inner_dport"])
        return s + describe(i)
    if d["type"] == 1:
        def e2s(e):
            if "iid" in e:
                return "[%d] %s" % (e["iid"], e["inner"].get("ip"))
            return str(e.get("ip"))
        return "Map-Request SMR=%d IRC=%d, source EID %s, ITR-RLOC %s, record(s): %s" % (
            d["smr"], d["irc"], e2s(d["source_eid"]), ", ".join(e2s(x) for x in d["itr_rlocs"]),
            ", ".join("%s/%d" % (e2s(r["eid"]), r["eid_mask_len"]) for r in d["records"]))
    return "LISP type %d" % d["type"]


def tshark_fields(pcap):
    fields = ["frame.number", "_ws.col.Info", "lisp.type", "lisp.records", "lisp.keyid", "lisp.authlen",
              "lisp.lcaf.iid", "lisp.lcaf.iid.ipv4", "lisp.mapping.eid.masklen", "lisp.loc.locator",
              "lisp.mreq.record.prefix.ipv4", "lisp.mreq.record.prefix.length", "lisp.mreq.flags.smr",
              "lisp.mreq.itr_rloc_ipv4", "_ws.malformed"]
    cmd = ["tshark", "-n", "-r", pcap, "-Y", "udp.port == 4342", "-T", "json"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        print("warning: tshark failed: %s" % out.stderr.strip(), file=sys.stderr)
    res = {}
    for pkt in json.loads(out.stdout or "[]"):
        layers = pkt["_source"]["layers"]
        res[int(layers["frame.number"][0])] = {k: v for k, v in layers.items() if k != "frame.number"}
    return res


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--pcap", required=True)
    b.add_argument("--src", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--key", default=None)
    b.add_argument("--table", default=None)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for f in os.listdir(a.out):
        if f.endswith(".hex"):
            os.remove(os.path.join(a.out, f))
    ts_all = tshark_fields(a.pcap)
    kept, counts, expected, table = {}, {}, {}, []
    for frame, ts, dst, sport, dport, m in udp_payloads(a.pcap, a.src):
        d = decode(m, a.key)
        name = name_of(d)
        counts[name] = counts.get(name, 0) + 1
        if name in kept:
            continue
        kept[name] = frame
        fn = name + ".hex"
        with open(os.path.join(a.out, fn), "w") as f:
            f.write(m.hex() + "\n")
        t = ts_all.get(frame, {})
        expected[fn] = {"decoded": d, "udp": {"src": a.src, "dst": dst, "sport": sport, "dport": dport},
                        "live_pcap_frame": frame, "length": len(m), "tshark": t}
        table.append("| `%s` | %d | %s | tshark: %s |" % (fn, len(m), describe(d), (t.get("_ws.col.Info") or [""])[0]))
    for fn, e in expected.items():
        e["count_in_capture"] = counts[fn[:-4]]
    with open(os.path.join(a.out, "expected.json"), "w") as f:
        json.dump({"_about": "LISP control messages sent by OOR (one per kind, first seen); decoded by "
                             "conformance/lab/lispvec.py, tshark field values under 'tshark' (frame = "
                             "live_pcap_frame of the pcap in this directory).", "vectors": expected},
                  f, indent=1, sort_keys=True)
        f.write("\n")
    with open(a.table or os.path.join(a.out, "table.md"), "w") as f:
        f.write("| file | bytes | decoded (lispvec.py) | tshark |\n|---|---|---|---|\n" + "\n".join(table) + "\n")
    print(json.dumps({"kinds_seen": counts, "written": sorted(expected)}, indent=1))
    for fn, e in expected.items():
        print("%-28s %s" % (fn, describe(e["decoded"])))
    return 0 if expected else 1


if __name__ == "__main__":
    sys.exit(main())
