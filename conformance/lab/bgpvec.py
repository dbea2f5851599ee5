#!/usr/bin/python3
"""Turn a live BGP capture into one-message-per-file test vectors (dependency-free, plus tshark).

  bgpvec.py build --pcap CAP.pcap --out conformance/vectors \
      --peer 10.99.0.2=frr-8.4 --peer 10.99.0.1=gobgp-3.10 [--msg-pcap bgp-messages.pcap]

What it does:
  1. reads a classic pcap (Ethernet, Linux cooked v1/v2 or raw IP) and reassembles every TCP
     direction on port 179 (SYN-anchored, retransmissions and overlaps dropped);
  2. splits each byte stream into BGP messages with the 2-byte length at offset 16, starting at the
     16-byte marker;
  3. decodes each message with a small, independent decoder (below) and names it after its content
     (open.hex, update-type2-macip-mm7.hex, update-eor-evpn.hex, update-withdraw-type2-macip.hex ...);
     byte-identical duplicates (KEEPALIVEs, OPENs of a re-established session) are stored once;
  4. writes OUT/PEER/NAME.hex (lowercase hex, one line), a pcap with exactly one message per TCP
     segment in file order (frame N = message N, so tshark decodes each vector on its own),
  5. runs tshark -T json over that pcap and writes OUT/expected.json: for every vector the decoded
     fields (this decoder) plus tshark's own field values, and checks that both agree;
  6. writes a markdown table, one line per vector (--table; for the README).
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys

# ---------------------------------------------------------------- pcap reading + TCP reassembly


def read_pcap(path):
    """Yield (frame_no, ts, ip_packet_bytes). Classic pcap only (use tcpdump -w or tshark -F pcap)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        sys.exit("%s: not a classic pcap (write it with tcpdump -w or tshark -F pcap)" % path)
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(e + "I", data[20:24])[0]
    off, n = 24, 0
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(e + "IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        n += 1
        ts = sec + frac / (1e9 if nano else 1e6)
        if linktype == 1:  # Ethernet (+ optional 802.1Q)
            et, p = struct.unpack("!H", pkt[12:14])[0], 14
            while et == 0x8100 and len(pkt) >= p + 4:
                et, p = struct.unpack("!H", pkt[p + 2:p + 4])[0], p + 4
            if et != 0x0800:
                continue
            ip = pkt[p:]
        elif linktype == 113:  # Linux cooked v1
            if struct.unpack("!H", pkt[14:16])[0] != 0x0800:
                continue
            ip = pkt[16:]
        elif linktype == 276:  # Linux cooked v2
            if struct.unpack("!H", pkt[0:2])[0] != 0x0800:
                continue
            ip = pkt[20:]
        elif linktype in (101, 228):  # raw IPv4
            ip = pkt
        else:
            sys.exit("unsupported pcap linktype %d" % linktype)
        yield n, ts, ip


def ip4(b):
    return ".".join(str(x) for x in b)


def tcp_streams(path):
    """Return a list of streams: dict(src, sport, dst, dport, segs=[(seq, payload, frame, ts)], isn)."""
    streams, current = [], {}
    for frame, ts, ip in read_pcap(path):
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        tot = struct.unpack("!H", ip[2:4])[0]
        ip = ip[:tot]
        tcp = ip[ihl:]
        if len(tcp) < 20:
            continue
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        if 179 not in (sport, dport):
            continue
        key = (ip4(ip[12:16]), sport, ip4(ip[16:20]), dport)
        payload = tcp[doff:]
        if flags & 0x02:  # SYN: a new connection in this direction
            st = dict(src=key[0], sport=sport, dst=key[2], dport=dport, isn=seq, segs=[])
            streams.append(st)
            current[key] = st
            continue
        if not payload:
            continue
        st = current.get(key)
        if st is None:  # capture started mid-connection
            st = dict(src=key[0], sport=sport, dst=key[2], dport=dport, isn=(seq - 1) & 0xFFFFFFFF, segs=[])
            streams.append(st)
            current[key] = st
        st["segs"].append(((seq - st["isn"] - 1) & 0xFFFFFFFF, payload, frame, ts))
    return streams


def reassemble(st):
    """Contiguous byte stream from offset 0 and, per byte offset, the (frame, ts) it arrived in."""
    buf, marks, cur = bytearray(), [], 0
    for off, payload, frame, ts in sorted(st["segs"], key=lambda s: (s[0], -len(s[1]))):
        end = off + len(payload)
        if end <= cur:
            continue  # retransmission / duplicate
        if off > cur:
            print("warning: gap in %s:%d->%s:%d at offset %d (missing %d bytes); stream cut" %
                  (st["src"], st["sport"], st["dst"], st["dport"], cur, off - cur), file=sys.stderr)
            break
        marks.append((cur, frame, ts))
        buf += payload[cur - off:]
        cur = end
    return bytes(buf), marks


def split_bgp(buf, marks):
    msgs, off = [], 0
    while off + 19 <= len(buf):
        if buf[off:off + 16] != b"\xff" * 16:
            print("warning: bad marker at stream offset %d; rest of stream skipped" % off, file=sys.stderr)
            break
        ln = struct.unpack("!H", buf[off + 16:off + 18])[0]
        if ln < 19 or off + ln > len(buf):
            break
        frame, ts = marks[0][1], marks[0][2]
        for m in marks:
            if m[0] <= off:
                frame, ts = m[1], m[2]
        msgs.append((bytes(buf[off:off + ln]), frame, ts))
        off += ln
    return msgs


# ---------------------------------------------------------------- a small independent BGP/EVPN decoder

CAP_NAMES = {1: "multiprotocol", 2: "route-refresh", 5: "extended-nexthop", 6: "extended-message",
             9: "role", 64: "graceful-restart", 65: "4-octet-as", 69: "add-path", 70: "enhanced-route-refresh",
             71: "long-lived-gr", 73: "fqdn", 75: "software-version", 128: "route-refresh-old"}
FAM = {(1, 1): "ipv4-unicast", (2, 1): "ipv6-unicast", (25, 70): "l2vpn-evpn", (1, 4): "ipv4-labeled",
       (1, 128): "ipv4-vpn", (2, 128): "ipv6-vpn"}
FAM_SHORT = {"ipv4-unicast": "ipv4", "ipv6-unicast": "ipv6", "l2vpn-evpn": "evpn"}
NOTIF = {(6, 1): "cease-max-prefix", (6, 2): "cease-admin-shutdown", (6, 3): "cease-peer-deconfigured",
         (6, 4): "cease-admin-reset", (6, 5): "cease-connection-rejected", (6, 6): "cease-config-change",
         (6, 7): "cease-collision", (6, 8): "cease-out-of-resources", (6, 9): "cease-hard-reset",
         (4, 0): "hold-timer-expired"}
TYPE_NAMES = {1: "OPEN", 2: "UPDATE", 3: "NOTIFICATION", 4: "KEEPALIVE", 5: "ROUTE-REFRESH"}


def mac(b):
    return ":".join("%02x" % x for x in b)


def rd_str(b):
    t = struct.unpack("!H", b[:2])[0]
    if t == 0:
        return "%d:%d" % struct.unpack("!HI", b[2:8])
    if t == 1:
        return "%s:%d" % (ip4(b[2:6]), struct.unpack("!H", b[6:8])[0])
    if t == 2:
        return "%d:%d" % struct.unpack("!IH", b[2:8])
    return "type%d:%s" % (t, b[2:8].hex())


def ip_str(b):
    if len(b) == 4:
        return ip4(b)
    if len(b) == 16:
        import ipaddress
        return str(ipaddress.IPv6Address(b))
    return b.hex()


def evpn_nlris(b):
    out, off = [], 0
    while off + 2 <= len(b):
        rt, ln = b[off], b[off + 1]
        body = b[off + 2:off + 2 + ln]
        off += 2 + ln
        r = {"route_type": rt, "length": ln}
        if rt == 2:
            r["rd"] = rd_str(body[0:8])
            r["esi"] = body[8:18].hex()
            r["etag"] = struct.unpack("!I", body[18:22])[0]
            r["mac_len"] = body[22]
            r["mac"] = mac(body[23:29])
            il = body[29]
            r["ip_len"] = il
            p = 30 + il // 8
            r["ip"] = ip_str(body[30:p]) if il else None
            r["label1"] = int.from_bytes(body[p:p + 3], "big")
            r["label2"] = int.from_bytes(body[p + 3:p + 6], "big") if len(body) >= p + 6 else None
        elif rt == 3:
            r["rd"] = rd_str(body[0:8])
            r["etag"] = struct.unpack("!I", body[8:12])[0]
            il = body[12]
            r["ip_len"] = il
            r["ip"] = ip_str(body[13:13 + il // 8])
        elif rt == 5:
            r["rd"] = rd_str(body[0:8])
            r["esi"] = body[8:18].hex()
            r["etag"] = struct.unpack("!I", body[18:22])[0]
            r["prefix_len"] = body[22]
            alen = 4 if ln == 34 else 16
            r["prefix"] = ip_str(body[23:23 + alen])
            r["gw"] = ip_str(body[23 + alen:23 + 2 * alen])
            r["label1"] = int.from_bytes(body[23 + 2 * alen:26 + 2 * alen], "big")
        else:
            r["raw"] = body.hex()
        if "label1" in r:
            # VXLAN: the whole 24-bit field is the VNI (RFC 8365); tshark shows the MPLS label (>> 4)
            r["vni"] = r["label1"]
        out.append(r)
    return out


def ext_comms(b):
    out = []
    for i in range(0, len(b) - 7, 8):
        c = b[i:i + 8]
        t, s = c[0], c[1]
        if t in (0x00, 0x40) and s == 0x02:
            out.append({"kind": "rt", "value": "%d:%d" % struct.unpack("!HI", c[2:8])})
        elif t in (0x01, 0x41) and s == 0x02:
            out.append({"kind": "rt", "value": "%s:%d" % (ip4(c[2:6]), struct.unpack("!H", c[6:8])[0])})
        elif t in (0x02, 0x42) and s == 0x02:
            out.append({"kind": "rt", "value": "%d:%d" % struct.unpack("!IH", c[2:8])})
        elif t == 0x03 and s == 0x0C:
            tt = struct.unpack("!H", c[6:8])[0]
            out.append({"kind": "encap", "value": {8: "vxlan", 10: "mpls", 12: "nvgre"}.get(tt, str(tt))})
        elif t == 0x06 and s == 0x00:
            out.append({"kind": "mac-mobility", "seq": struct.unpack("!I", c[4:8])[0], "sticky": bool(c[2] & 1)})
        elif t == 0x06 and s == 0x03:
            out.append({"kind": "router-mac", "value": mac(c[2:8])})
        elif t == 0x06 and s == 0x08:
            out.append({"kind": "arp-nd", "flags": c[2]})
        elif t == 0x06 and s == 0x06:
            out.append({"kind": "df-election", "raw": c.hex()})
        else:
            out.append({"kind": "other", "raw": c.hex()})
    return out


def ext_comm_str(e):
    k = e["kind"]
    if k in ("rt", "encap", "router-mac"):
        return "%s:%s" % (k, e["value"])
    if k == "mac-mobility":
        return "mac-mobility:%d%s" % (e["seq"], ":sticky" if e["sticky"] else "")
    if k == "arp-nd":
        return "arp-nd:0x%02x" % e["flags"]
    return "%s:%s" % (k, e.get("raw", ""))


def decode_update(m):
    d = {"withdrawn_ipv4": [], "nlri_ipv4": [], "announce": [], "withdraw": [], "attrs": [], "ext_communities": [],
         "next_hop": None, "origin": None, "as_path": None, "pmsi": None, "mm_seq": None, "sticky": False,
         "router_mac": None, "eor": None, "family": None}
    wl = struct.unpack("!H", m[19:21])[0]
    w = m[21:21 + wl]
    al = struct.unpack("!H", m[21 + wl:23 + wl])[0]
    a = m[23 + wl:23 + wl + al]
    nl = m[23 + wl + al:]
    d["withdrawn_ipv4"] = [w.hex()] if w else []
    d["nlri_ipv4"] = [nl.hex()] if nl else []
    off = 0
    while off + 3 <= len(a):
        fl, tc = a[off], a[off + 1]
        if fl & 0x10:
            ln = struct.unpack("!H", a[off + 2:off + 4])[0]
            v = a[off + 4:off + 4 + ln]
            off += 4 + ln
        else:
            ln = a[off + 2]
            v = a[off + 3:off + 3 + ln]
            off += 3 + ln
        d["attrs"].append(tc)
        if tc == 1:
            d["origin"] = ["igp", "egp", "incomplete"][v[0]] if v and v[0] < 3 else v.hex()
        elif tc == 2:
            asns, p = [], 0
            while p + 2 <= len(v):
                n = v[p + 1]
                asns += list(struct.unpack("!%dI" % n, v[p + 2:p + 2 + 4 * n]))
                p += 2 + 4 * n
            d["as_path"] = asns
        elif tc == 3:
            d["next_hop"] = ip4(v)
        elif tc == 14:
            afi, safi, nhl = struct.unpack("!HBB", v[:4])
            d["family"] = FAM.get((afi, safi), "%d/%d" % (afi, safi))
            d["next_hop"] = ip_str(v[4:4 + nhl])
            nlri = v[5 + nhl:]
            d["announce"] = evpn_nlris(nlri) if (afi, safi) == (25, 70) else [{"raw": nlri.hex()}]
        elif tc == 15:
            afi, safi = struct.unpack("!HB", v[:3])
            d["family"] = FAM.get((afi, safi), "%d/%d" % (afi, safi))
            rest = v[3:]
            if not rest:
                d["eor"] = d["family"]
            d["withdraw"] = evpn_nlris(rest) if (afi, safi) == (25, 70) else ([{"raw": rest.hex()}] if rest else [])
        elif tc == 16:
            d["ext_communities"] = ext_comms(v)
        elif tc == 22:
            d["pmsi"] = {"flags": v[0], "tunnel_type": v[1], "label": int.from_bytes(v[2:5], "big"),
                         "tunnel_id": ip_str(v[5:])}
    for e in d["ext_communities"]:
        if e["kind"] == "mac-mobility":
            d["mm_seq"], d["sticky"] = e["seq"], e["sticky"]
        if e["kind"] == "router-mac":
            d["router_mac"] = e["value"]
    if len(m) == 23:
        d["eor"] = "ipv4-unicast"
    if d["eor"] and (d["announce"] or d["withdraw"] or len(d["attrs"]) > 1):
        d["eor"] = None
    return d


def decode_open(m):
    ver, asn, hold = struct.unpack("!BHH", m[19:24])
    bgpid = ip4(m[24:28])
    ol = m[28]
    opt, caps, off = m[29:29 + ol], [], 0
    while off + 2 <= len(opt):
        pt, pl = opt[off], opt[off + 1]
        pv = opt[off + 2:off + 2 + pl]
        off += 2 + pl
        if pt != 2:
            continue
        p = 0
        while p + 2 <= len(pv):
            cc, cl = pv[p], pv[p + 1]
            cv = pv[p + 2:p + 2 + cl]
            p += 2 + cl
            c = {"code": cc, "name": CAP_NAMES.get(cc, "unknown-%d" % cc), "len": cl}
            if cc == 1:
                afi, safi = struct.unpack("!HxB", cv[:4])
                c["family"] = FAM.get((afi, safi), "%d/%d" % (afi, safi))
            elif cc == 65:
                c["as"] = struct.unpack("!I", cv)[0]
            elif cc == 64:
                flags_time = struct.unpack("!H", cv[:2])[0]
                c["restart_time"] = flags_time & 0x0FFF
                c["flags"] = flags_time >> 12
                c["families"] = [FAM.get((struct.unpack("!H", cv[i:i + 2])[0], cv[i + 2]), "?")
                                 for i in range(2, len(cv) - 3, 4)]
            elif cc == 69:
                c["families"] = ["%s:%d" % (FAM.get((struct.unpack("!H", cv[i:i + 2])[0], cv[i + 2]), "?"), cv[i + 3])
                                 for i in range(0, len(cv) - 3, 4)]
            elif cc == 73:
                hl = cv[0]
                c["hostname"] = cv[1:1 + hl].decode(errors="replace")
                c["domain"] = cv[2 + hl:2 + hl + cv[1 + hl]].decode(errors="replace") if len(cv) > 1 + hl else ""
            elif cc == 75:
                c["version"] = cv[1:1 + cv[0]].decode(errors="replace") if cv else ""
            elif cl:
                c["raw"] = cv.hex()
            caps.append(c)
    return {"version": ver, "my_as": asn, "hold_time": hold, "bgp_id": bgpid, "capabilities": caps}


def decode(m):
    t = m[18]
    d = {"bgp_type": t, "type_name": TYPE_NAMES.get(t, "type-%d" % t), "length": len(m)}
    if t == 1:
        d["open"] = decode_open(m)
    elif t == 2:
        d["update"] = decode_update(m)
    elif t == 3:
        comm = m[21:]
        d["notification"] = {"code": m[19], "subcode": m[20], "name": NOTIF.get((m[19], m[20]), ""),
                             "data": comm.hex()}
        if m[19] == 6 and m[20] in (2, 4) and comm:
            d["notification"]["shutdown_communication"] = comm[1:1 + comm[0]].decode(errors="replace")
    elif t == 5:
        afi, safi = struct.unpack("!HxB", m[19:23])
        d["route_refresh"] = {"family": FAM.get((afi, safi), "%d/%d" % (afi, safi)), "subtype": m[21]}
    return d


def route_token(r):
    rt = r.get("route_type")
    if rt == 2:
        return "type2-macip" if r.get("ip") else "type2-mac"
    if rt is None:
        return "nlri"
    return "type%d" % rt


def rd_admin_ip(rd):
    """The IPv4 administrator of a type-1 RD ("10.255.0.1:100" -> "10.255.0.1"), else None."""
    a = rd.split(":")[0] if rd else ""
    return a if a.count(".") == 3 else None


def is_relayed(u, sender_id):
    """True if the UPDATE carries routes the sender did not originate: an AS_PATH longer than one AS, or
    (for withdraws, which carry no AS_PATH) type-1 RDs whose administrator is not the sender's BGP ID."""
    if u["announce"] and u["as_path"] and len(u["as_path"]) > 1:
        return True
    rds = [rd_admin_ip(r.get("rd")) for r in u["announce"] + u["withdraw"] if r.get("rd")]
    return bool(sender_id and rds and all(x and x != sender_id for x in rds))


def name_of(d, sender_id=None):
    t = d["bgp_type"]
    if t == 1:
        return "open"
    if t == 4:
        return "keepalive"
    if t == 3:
        n = d["notification"]
        return "notification-%d-%d%s" % (n["code"], n["subcode"], ("-" + n["name"]) if n["name"] else "")
    if t == 5:
        return "route-refresh-" + FAM_SHORT.get(d["route_refresh"]["family"], d["route_refresh"]["family"])
    if t != 2:
        return "message-type%d" % t
    u = d["update"]
    if u["eor"]:
        return "update-eor-" + FAM_SHORT.get(u["eor"], u["eor"])
    parts = []
    # routes the sender relays rather than originates (FRR re-advertising / withdrawing GoBGP's routes)
    if is_relayed(u, sender_id):
        parts.append("relayed")
    if u["announce"]:
        toks = []
        for r in u["announce"]:
            tok = route_token(r)
            if tok not in toks:
                toks.append(tok)
        s = "+".join(toks)
        if u["mm_seq"] is not None:
            s += "-mm%d" % u["mm_seq"]
        if u["sticky"]:
            s += "-sticky"
        if u["pmsi"]:
            s += "-pmsi"
        if u["router_mac"]:
            s += "-rmac"
        parts.append(s)
    if u["withdraw"]:
        toks = []
        for r in u["withdraw"]:
            tok = route_token(r)
            if tok not in toks:
                toks.append(tok)
        parts.append("withdraw-" + "-and-".join(toks))
    if u["nlri_ipv4"]:
        parts.append("ipv4")
    if u["withdrawn_ipv4"]:
        parts.append("withdraw-ipv4")
    return "update-" + ("-".join(parts) if parts else "empty")


def route_desc(r):
    rt = r.get("route_type")
    if rt == 2:
        s = "type-2 RD %s ESI %s etag %d MAC %s IP %s label1 %d (VNI %d)" % (
            r["rd"], "0" if set(r["esi"]) == {"0"} else r["esi"], r["etag"], r["mac"], r["ip"] or "none",
            r["label1"], r["vni"])
        if r.get("label2") is not None:
            s += " label2 %d" % r["label2"]
        return s
    if rt == 3:
        return "type-3 RD %s etag %d originator %s" % (r["rd"], r["etag"], r["ip"])
    if rt == 5:
        return "type-5 RD %s etag %d prefix %s/%d gw %s label %d (VNI %d)" % (
            r["rd"], r["etag"], r["prefix"], r["prefix_len"], r["gw"], r["label1"], r["vni"])
    return "route-type %s %s" % (rt, r.get("raw", ""))


def describe(d):
    t = d["bgp_type"]
    if t == 1:
        o = d["open"]
        caps = []
        for c in o["capabilities"]:
            x = c["name"]
            if "family" in c:
                x += "(%s)" % c["family"]
            if "as" in c:
                x += "(%d)" % c["as"]
            if c["code"] == 64:
                x += "(restart %ds, F-bits for %s)" % (c["restart_time"], ",".join(c["families"]) or "none")
            if c["code"] == 69:
                x += "(%s)" % ",".join(c["families"])
            if c["code"] == 73:
                x += "(%s%s)" % (c["hostname"], ("." + c["domain"]) if c["domain"] else "")
            if c["code"] == 75:
                x += "(%s)" % c["version"]
            caps.append(x)
        return "OPEN v%d AS %d hold %d id %s; caps: %s" % (o["version"], o["my_as"], o["hold_time"], o["bgp_id"],
                                                         ", ".join(caps))
    if t == 4:
        return "KEEPALIVE (19 bytes)"
    if t == 3:
        n = d["notification"]
        s = "NOTIFICATION %d/%d %s" % (n["code"], n["subcode"], n["name"])
        if n.get("shutdown_communication"):
            s += ' communication "%s"' % n["shutdown_communication"]
        return s
    if t == 5:
        return "ROUTE-REFRESH %s" % d["route_refresh"]["family"]
    u = d["update"]
    if u["eor"]:
        return "UPDATE End-of-RIB %s" % u["eor"]
    bits = []
    if u["announce"]:
        bits.append("announce " + "; ".join(route_desc(r) for r in u["announce"]))
        bits.append("NH %s" % u["next_hop"])
        if u["as_path"] is not None:
            bits.append("AS_PATH %s" % (" ".join(str(x) for x in u["as_path"]) or "empty"))
        if u["ext_communities"]:
            bits.append("ext-comm " + ", ".join(ext_comm_str(e) for e in u["ext_communities"]))
        if u["pmsi"]:
            p = u["pmsi"]
            bits.append("PMSI type %d (%s) label %d tunnel %s" % (
                p["tunnel_type"], "ingress-replication" if p["tunnel_type"] == 6 else "?", p["label"], p["tunnel_id"]))
    if u["withdraw"]:
        bits.append("withdraw " + "; ".join(route_desc(r) for r in u["withdraw"]))
    return "UPDATE " + "; ".join(bits)


# ---------------------------------------------------------------- pcap writing (one message per segment)


def _csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def write_msg_pcap(path, items, t0):
    """items: list of (src_ip, dst_ip, sport, dport, payload). Each payload = one TCP segment."""
    seqs = {}
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        t = t0
        for src, dst, sport, dport, payload in items:
            s, d = bytes(int(x) for x in src.split(".")), bytes(int(x) for x in dst.split("."))
            key = (src, sport, dst, dport)
            seq = seqs.get(key, 1000)
            tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 1, 5 << 4, 0x18, 65535, 0, 0) + payload
            tcp = tcp[:16] + struct.pack("!H", _csum(s + d + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
            seqs[key] = (seq + len(payload)) & 0xFFFFFFFF
            iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 1, 0x4000, 64, 6, 0, s, d)
            iph = iph[:10] + struct.pack("!H", _csum(iph)) + iph[12:]
            frame = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00" + iph + tcp
            t += 0.001
            f.write(struct.pack("<IIII", int(t), int((t - int(t)) * 1e6), len(frame), len(frame)) + frame)


# ---------------------------------------------------------------- tshark


BAD_FILTER = ('(tcp.port == 179 || udp.port == 4342) && (_ws.malformed || (_ws.expert.severity >= "warning" '
              '&& !tcp.analysis.flags && !tcp.connection.rst))')
TSHARK_FIELDS = [
    "frame.number", "_ws.col.Info", "_ws.malformed", "_ws.expert.message", "bgp.type",
    "bgp.open.myas", "bgp.open.holdtime", "bgp.open.identifier", "bgp.cap.type", "bgp.cap.mp.afi", "bgp.cap.mp.safi",
    "bgp.cap.4as", "bgp.cap.orf.fqdn.hostname",
    "bgp.notify.major_error", "bgp.notify.minor_error_cease", "bgp.notify.communication",
    "bgp.update.path_attribute.type_code", "bgp.update.path_attribute.origin",
    "bgp.update.path_attribute.mp_reach_nlri.afi", "bgp.update.path_attribute.mp_reach_nlri.safi",
    "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv4",
    "bgp.update.path_attribute.mp_unreach_nlri.afi", "bgp.update.path_attribute.mp_unreach_nlri.safi",
    "bgp.evpn.nlri.rt", "bgp.evpn.nlri.rd", "bgp.rd", "bgp.evpn.nlri.esi.type", "bgp.evpn.nlri.etag",
    "bgp.evpn.nlri.maclen", "bgp.evpn.nlri.mac_addr", "bgp.evpn.nlri.iplen", "bgp.evpn.nlri.ip.addr",
    "bgp.evpn.nlri.prefix_len", "bgp.evpn.nlri.ipv4.gtw_addr", "bgp.evpn.nlri.mpls_ls1", "bgp.evpn.nlri.mpls_ls2",
    "bgp.evpn.nlri.vni",
    "bgp.ext_com.type", "bgp.ext_com.value_as2", "bgp.ext_com.value_an4", "bgp.ext_com.tunnel_type",
    "bgp.ext_com_evpn.mmac.seq", "bgp.ext_com_evpn.mmac.flags.sticky", "bgp.ext_com_evpn.esi.router_mac",
    "bgp.update.path_attribute.pmsi.tunnel.type", "bgp.update.path_attribute.pmsi.ingress_rep_ip",
]


def tshark_json(pcap):
    cmd = ["tshark", "-n", "-r", pcap, "-T", "json"]
    for f in TSHARK_FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        print("warning: tshark failed: %s" % out.stderr.strip(), file=sys.stderr)
        return {}
    res = {}
    for pkt in json.loads(out.stdout or "[]"):
        layers = pkt["_source"]["layers"]
        fn = int(layers["frame.number"][0])
        res[fn] = {k: v for k, v in layers.items() if k != "frame.number"}
    bad = subprocess.run(["tshark", "-n", "-r", pcap, "-Y", BAD_FILTER, "-T", "fields", "-e", "frame.number"],
                         capture_output=True, text=True, timeout=120)
    for x in bad.stdout.split():
        res.setdefault(int(x), {})["flagged"] = True
    return res


TSHARK_SUMMARY = [("bgp.evpn.nlri.rt", "rt"), ("bgp.evpn.nlri.rd", "rd"), ("bgp.evpn.nlri.mac_addr", "mac"),
                  ("bgp.evpn.nlri.ip.addr", "ip"), ("bgp.evpn.nlri.prefix_len", "plen"),
                  ("bgp.evpn.nlri.mpls_ls1", "mpls_ls1"), ("bgp.evpn.nlri.mpls_ls2", "mpls_ls2"),
                  ("bgp.evpn.nlri.vni", "vni"), ("bgp.ext_com_evpn.mmac.seq", "mm_seq"),
                  ("bgp.ext_com_evpn.mmac.flags.sticky", "sticky"), ("bgp.ext_com_evpn.esi.router_mac", "rmac"),
                  ("bgp.update.path_attribute.pmsi.tunnel.type", "pmsi_type"),
                  ("bgp.update.path_attribute.pmsi.ingress_rep_ip", "pmsi_ip"),
                  ("bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv4", "nh"),
                  ("bgp.update.path_attribute.mp_unreach_nlri.safi", "unreach_safi"),
                  ("bgp.cap.type", "caps"), ("bgp.notify.major_error", "err"),
                  ("bgp.notify.minor_error_cease", "cease"), ("bgp.notify.communication", "comm")]


def tshark_summary(ts):
    if not ts:
        return "(not run)"
    out = [(ts.get("_ws.col.Info") or [""])[0]]
    for field, short in TSHARK_SUMMARY:
        v = ts.get(field)
        if not v:
            continue
        if field == "bgp.evpn.nlri.rd":
            v = [rd_str(bytes.fromhex(x)) for x in v]
        out.append("%s=%s" % (short, ",".join(v)))
    return " ".join(out)


def tshark_agrees(d, ts):
    """Compare this decoder with tshark on the key fields; return a list of disagreements."""
    problems = []
    if ts.get("_ws.malformed") or ts.get("flagged"):
        problems.append("tshark flags it (malformed / expert >= warning): %s" % ts.get("_ws.expert.message"))
    if str(d["bgp_type"]) not in ts.get("bgp.type", []):
        problems.append("bgp.type %s vs %s" % (d["bgp_type"], ts.get("bgp.type")))
    if d["bgp_type"] != 2:
        return problems
    u = d["update"]
    routes = u["announce"] + u["withdraw"]
    rts = [str(r.get("route_type")) for r in routes if "route_type" in r]
    if rts != ts.get("bgp.evpn.nlri.rt", []):
        problems.append("route types %s vs %s" % (rts, ts.get("bgp.evpn.nlri.rt")))
    macs = [r["mac"] for r in routes if r.get("mac")]
    if macs != ts.get("bgp.evpn.nlri.mac_addr", []):
        problems.append("macs %s vs %s" % (macs, ts.get("bgp.evpn.nlri.mac_addr")))
    rds = [r["rd"] for r in routes if r.get("rd")]
    trds = [rd_str(bytes.fromhex(x)) for x in ts.get("bgp.evpn.nlri.rd", [])]
    if rds != trds:
        problems.append("rds %s vs %s" % (rds, trds))
    ips = [r.get("ip") or r.get("prefix") for r in routes if r.get("ip") or r.get("prefix")]
    if ips != ts.get("bgp.evpn.nlri.ip.addr", []):
        problems.append("ips %s vs %s" % (ips, ts.get("bgp.evpn.nlri.ip.addr")))
    # label1 of type-2 routes: tshark shows it as a VNI (when the encap community came before
    # MP_REACH_NLRI in the frame) or as an MPLS label (= 24-bit field >> 4). tshark's bgp.evpn.nlri.vni
    # also picks up the PMSI label of type-3 routes and it prints the type-5 label only as text, so
    # labels are compared for pure type-2 messages only.
    if rts and set(rts) == {"2"}:
        lab = [r["label1"] for r in routes]
        if ts.get("bgp.evpn.nlri.vni"):
            ok = lab == [int(x) for x in ts["bgp.evpn.nlri.vni"]]
        else:
            ok = [x >> 4 for x in lab] == [int(x) for x in ts.get("bgp.evpn.nlri.mpls_ls1", [])]
        if not ok:
            problems.append("labels %s vs tshark vni %s / mpls_ls1 %s" % (
                lab, ts.get("bgp.evpn.nlri.vni"), ts.get("bgp.evpn.nlri.mpls_ls1")))
    mm = ts.get("bgp.ext_com_evpn.mmac.seq", [])
    if (u["mm_seq"] is None) != (not mm) or (mm and int(mm[0]) != u["mm_seq"]):
        problems.append("mm seq %s vs %s" % (u["mm_seq"], mm))
    rm = ts.get("bgp.ext_com_evpn.esi.router_mac", [])
    if (u["router_mac"] or None) != (rm[0] if rm else None):
        problems.append("router mac %s vs %s" % (u["router_mac"], rm))
    return problems


def expected_entry(d, ts):
    e = {"bgp_type": d["bgp_type"], "type_name": d["type_name"], "length": d["length"]}
    if d["bgp_type"] == 1:
        e["open"] = d["open"]
    elif d["bgp_type"] == 3:
        e["notification"] = d["notification"]
    elif d["bgp_type"] == 5:
        e["route_refresh"] = d["route_refresh"]
    elif d["bgp_type"] == 2:
        u = d["update"]
        e.update({"family": u["family"], "eor": u["eor"], "next_hop": u["next_hop"], "origin": u["origin"],
                  "as_path": u["as_path"], "attr_type_codes": u["attrs"],
                  "announce": u["announce"], "withdraw": u["withdraw"],
                  "ext_communities": [ext_comm_str(x) for x in u["ext_communities"]],
                  "mm_seq": u["mm_seq"], "sticky": u["sticky"], "router_mac": u["router_mac"], "pmsi": u["pmsi"]})
    e["tshark"] = ts
    return e


# ---------------------------------------------------------------- main


def build(a):
    peers = dict(p.split("=", 1) for p in a.peer)
    streams = tcp_streams(a.pcap)
    msgs = []  # (ts, frame, src, dst, bytes)
    for st in streams:
        if st["src"] not in peers:
            continue
        buf, marks = reassemble(st)
        if not marks:
            continue
        for m, frame, ts in split_bgp(buf, marks):
            msgs.append((ts, frame, st["src"], st["dst"], m))
    msgs.sort(key=lambda x: (x[0], x[1]))
    for p in set(peers.values()):
        d = os.path.join(a.out, p)
        if os.path.isdir(d):
            for f in os.listdir(d):
                if f.endswith(".hex"):
                    os.remove(os.path.join(d, f))
        os.makedirs(d, exist_ok=True)
    seen, names, vectors, counts, bgp_ids = {}, set(), [], {}, {}
    for ts, frame, src, dst, m in msgs:
        if m[18] == 1 and len(m) >= 29:
            bgp_ids[src] = ip4(m[24:28])
    for ts, frame, src, dst, m in msgs:
        peer = peers[src]
        counts[(peer, m[18])] = counts.get((peer, m[18]), 0) + 1
        if (peer, m) in seen:
            continue
        d = decode(m)
        base = name_of(d, bgp_ids.get(src))
        name, i = base, 1
        while (peer, name) in names:
            i += 1
            name = "%s-%d" % (base, i)
        names.add((peer, name))
        rel = "%s/%s.hex" % (peer, name)
        seen[(peer, m)] = rel
        with open(os.path.join(a.out, rel), "w") as f:
            f.write(m.hex() + "\n")
        vectors.append({"file": rel, "peer": peer, "src": src, "dst": dst, "live_frame": frame, "msg": m, "dec": d})
    # one-message-per-frame pcap, in file order
    msg_pcap = a.msg_pcap or os.path.join(a.out, "bgp-messages.pcap")
    sport = {}
    items = []
    for v in vectors:
        sp = sport.setdefault(v["src"], 40000 + len(sport))
        items.append((v["src"], v["dst"], sp, 179, v["msg"]))
    write_msg_pcap(msg_pcap, items, msgs[0][0] if msgs else 0)
    ts_all = tshark_json(msg_pcap) if shutil.which("tshark") else {}
    expected, table, disagreements = {}, [], 0
    for i, v in enumerate(vectors, 1):
        ts = ts_all.get(i, {})
        probs = tshark_agrees(v["dec"], ts) if ts else ["tshark not run"]
        disagreements += bool(probs)
        e = expected_entry(v["dec"], ts)
        e["peer"] = v["peer"]
        e["msg_pcap_frame"] = i
        e["live_pcap_frame"] = v["live_frame"]
        e["tshark_agrees"] = not probs
        if probs:
            e["tshark_disagreements"] = probs
        expected[v["file"]] = e
        info = tshark_summary(ts)
        table.append("| `%s` | %d | %s | tshark: %s%s |" % (
            v["file"], v["dec"]["length"], describe(v["dec"]), info.replace("|", "/"),
            "" if not probs else " — DIFF: " + "; ".join(probs)))
    with open(os.path.join(a.out, "expected.json"), "w") as f:
        json.dump({"_about": "Per vector file: fields decoded by conformance/lab/bgpvec.py, cross-checked "
                             "against tshark (field values under 'tshark', from tshark -T json of "
                             "bgp-messages.pcap where frame msg_pcap_frame = this message). label1/vni: the "
                             "raw 24-bit label field; tshark prints mpls_ls1 = label1 >> 4 unless the "
                             "encapsulation community precedes MP_REACH_NLRI.",
                   "vectors": expected}, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(a.table or os.path.join(a.out, "vectors-table.md"), "w") as f:
        f.write("| file | bytes | decoded (bgpvec.py) | tshark |\n|---|---|---|---|\n")
        f.write("\n".join(table) + "\n")
    summary = {}
    for (peer, t), n in sorted(counts.items()):
        summary.setdefault(peer, {})[TYPE_NAMES.get(t, str(t))] = n
    print(json.dumps({"messages_seen": summary, "vectors_written": len(vectors),
                      "tshark_disagreements": disagreements}, indent=1))
    for v in vectors:
        print("%-55s %s" % (v["file"], describe(v["dec"])[:160]))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--pcap", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--peer", action="append", required=True, help="IP=NAME (messages sent by IP go to OUT/NAME/)")
    b.add_argument("--msg-pcap", default=None)
    b.add_argument("--table", default=None, help="where to write the markdown table (default OUT/vectors-table.md)")
    dd = sub.add_parser("decode", help="decode hex files (one BGP message each)")
    dd.add_argument("files", nargs="+")
    a = ap.parse_args()
    if a.cmd == "build":
        return build(a)
    for fn in a.files:
        with open(fn) as f:
            m = bytes.fromhex(f.read().strip())
        print("%s: %s" % (fn, describe(decode(m))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
