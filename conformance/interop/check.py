#!/usr/bin/python3
"""JSON assertions for the vmmi interop runner (conformance/interop/run.sh).

Every peer's route table is turned into the same flat records, so one matcher checks them all:

  family  evpn | ipv4            type   2 | 3 | 5 (EVPN route type; ipv4: 0)
  rd      "10.255.0.1:100"       mac    "52:54:00:00:00:01" (lower case; "" when none)
  ip      type 2: the IP ("" = MAC-only); type 3: the originator; type 5: ""
  prefix  type 5 / ipv4: "10.2.0.0/24"
  label   VNI in Label1 (type 2), the type-5 label; ""   label2  type-2 Label2 (L3 VNI) or ""
  ec      extended communities as FRR prints them, space separated and sorted:
          "ET:8 MM:3 RT:65001:100 Rmac:52:54:00:aa:bb:cc" (+ "sticky" for a sticky MAC)
  nh      next hop        aspath  "65002" / "" (space separated)     lp  LOCAL_PREF or ""
  pmsi    "TYPE:LABEL[:ID]" e.g. "6:100:10.255.0.1" (FRR prints no tunnel id: "6:100")
  stale   true | false    from    the address of the peer the path came from ("local" = own)
  best    true | false | "" (unknown)

usage:  SOURCE_CMD | check.py routes FORMAT [SEL ...] [-- EXPECT ...]
        check.py routes FORMAT --absent [SEL ...]
        SOURCE_CMD | check.py json EXPECT ...
FORMAT: frr-evpn (show bgp l2vpn evpn route detail json, or route type macip json), frr-ipv4 (show bgp ipv4 unicast json),
        gobgp-evpn / gobgp-ipv4 (gobgp -j global rib -a evpn|ipv4), vmmi (vmmi show routes --json),
        exabgp:FILE[:LOCAL_ADDR] (events.jsonl written by exabgp_api.py; replays the last session).
SEL / EXPECT: key=value (equal), key~sub (contains), key!~sub (does not contain), key!=value.
`routes` exits 0 when at least one record matches every SEL and also every EXPECT; `--absent` when
no record matches SEL. `json` paths use '/' between keys, a list index, or [field=value] to pick a
list element: `[name=10.99.0.2]/state=Established`, `peers/10.99.0.1/state=Established`.
On failure it prints what it saw (the candidates) to stdout, for the runner's FAIL line.
"""
import json
import sys

PMSI_TYPES = {"Ingress Replication": 6, "ingress-replication": 6}


def s(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def rec(**kw):
    r = {k: "" for k in ("family", "type", "rd", "mac", "ip", "prefix", "label", "label2", "ec", "nh",
                         "aspath", "lp", "pmsi", "stale", "from", "best")}
    r.update({k: s(v) for k, v in kw.items()})
    r["mac"] = r["mac"].lower()
    return r


def ec_norm(tokens):
    return " ".join(sorted(t for t in tokens if t))


# ------------------------------------------------------------------ FRR
def frr_ec(path):
    txt = (path.get("extendedCommunity") or {}).get("string", "")
    txt = txt.replace(", sticky MAC", " sticky")
    return ec_norm(txt.split())


def frr_aspath(a):
    return "" if a in ("Local", "i") else a


def frr_evpn(d):
    out = []
    for rd, v in d.items():
        if not isinstance(v, dict):
            continue
        for key, r in v.items():
            if not isinstance(r, dict) or "paths" not in r:
                continue
            paths = r["paths"]
            flat = [p for pp in paths for p in (pp if isinstance(pp, list) else [pp])]
            for p in flat:
                # `route detail json` has the route's fields on the route, `route type macip json`
                # on each path
                t = r.get("routeType", p.get("routeType"))
                mac = r.get("mac", p.get("mac", ""))
                ip = r.get("ip", p.get("ip", "")) if t in (2, 3) else ""
                prefix = "%s/%s" % (r.get("ip"), r.get("ipLen")) if t == 5 else ""
                vni = s(p.get("vni", p.get("VNI", "")))
                label, label2 = (vni.split("/") + [""])[:2]
                pm = p.get("pmsi")
                pmsi = "%s:%s" % (PMSI_TYPES.get(pm.get("tunnelType"), pm.get("tunnelType")), pm.get("label")) if pm else ""
                nhs = p.get("nexthops") or []
                # `route detail json` nests the peer; `route type macip json` has peerId on the path
                peer = (p.get("peer") or {}).get("peerId", p.get("peerId", ""))
                bp = p.get("bestpath")
                out.append(rec(family="evpn", type=t, rd=rd, mac=mac, ip=ip, prefix=prefix,
                               label=label if t != 3 else "", label2=label2, ec=frr_ec(p),
                               nh=nhs[0].get("ip", "") if nhs else "",
                               aspath=frr_aspath((p.get("aspath") or {}).get("string", "")),
                               lp=p.get("locPrf", p.get("localpref", "")), pmsi=pmsi,
                               stale=bool(p.get("stale", False)),
                               **{"from": peer if peer not in ("0.0.0.0", "(unspec)") else "local"},
                               best=bool(bp.get("overall")) if isinstance(bp, dict) else bool(bp)))
    return out


def frr_ipv4(d):
    out = []
    for pfx, paths in (d.get("routes") or {}).items():
        for p in paths:
            nhs = p.get("nexthops") or []
            peer = p.get("peerId", "")
            out.append(rec(family="ipv4", type=0, prefix=pfx, nh=nhs[0].get("ip", "") if nhs else "",
                           aspath=frr_aspath(p.get("path", "")), lp=p.get("locPrf", ""), stale=bool(p.get("stale", False)),
                           ec=frr_ec(p), best=bool(p.get("bestpath", False)),
                           **{"from": peer if peer not in ("0.0.0.0", "(unspec)") else "local"}))
    return out


# ------------------------------------------------------------------ GoBGP
def gobgp_rd(rd):
    if not rd:
        return ""
    return "%s:%s" % (rd.get("admin"), rd.get("assigned"))


def gobgp_attrs(attrs):
    a = {"ec": [], "nh": "", "aspath": "", "lp": "", "pmsi": ""}
    for at in attrs:
        t = at.get("type")
        if t == 16:
            for c in at.get("value", []):
                ct, st = c.get("type"), c.get("subtype")
                if ct in (0, 1, 2) and st == 2:
                    a["ec"].append("RT:%s" % c.get("value"))
                elif ct == 3 and st == 12:
                    a["ec"].append("ET:%s" % c.get("tunnel_type"))
                elif ct == 6 and st == 0:
                    a["ec"].append("MM:%s" % c.get("sequence"))
                    if c.get("is_sticky"):
                        a["ec"].append("sticky")
                elif ct == 6 and st == 3:
                    a["ec"].append("Rmac:%s" % c.get("mac"))
                else:
                    a["ec"].append("EC:%s/%s" % (ct, st))
        elif t == 14:
            a["nh"] = at.get("nexthop", "")
        elif t == 3:
            a["nh"] = at.get("nexthop", "")
        elif t == 2:
            a["aspath"] = " ".join(str(x) for seg in at.get("as_paths", []) for x in seg.get("asns", []))
        elif t == 5:
            a["lp"] = at.get("value", "")
        elif t == 22:
            a["pmsi"] = "%s:%s:%s" % (at.get("tunnel-type"), at.get("label"), at.get("tunnel-id"))
    a["ec"] = ec_norm(a["ec"])
    return a


def gobgp(d, family):
    out = []
    for key, paths in d.items():
        for p in paths:
            a = gobgp_attrs(p.get("attrs", []))
            frm = p.get("neighbor-ip") or "local"
            if frm in ("<nil>", "0.0.0.0"):
                frm = "local"
            common = dict(ec=a["ec"], nh=a["nh"], aspath=a["aspath"], lp=a["lp"], pmsi=a["pmsi"],
                          stale=bool(p.get("stale", False)), best=bool(p.get("best", False)))
            common["from"] = frm
            if family == "ipv4":
                out.append(rec(family="ipv4", type=0, prefix=p["nlri"].get("prefix", key), **common))
                continue
            n = p["nlri"]
            t = n.get("type")
            v = n.get("value", {})
            ip = v.get("ip", "")
            ip = "" if ip in ("<nil>", "0.0.0.0", None) else ip
            if t == 2:
                labels = v.get("labels") or []
                out.append(rec(family="evpn", type=2, rd=gobgp_rd(v.get("rd")), mac=v.get("mac", ""), ip=ip,
                               label=labels[0] if labels else "", label2=labels[1] if len(labels) > 1 else "",
                               **common))
            elif t == 3:
                out.append(rec(family="evpn", type=3, rd=gobgp_rd(v.get("rd")), ip=ip, **common))
            elif t == 5:
                out.append(rec(family="evpn", type=5, rd=gobgp_rd(v.get("rd")), prefix=v.get("prefix", ""),
                               label=v.get("label", ""), **common))
            else:
                out.append(rec(family="evpn", type=t, rd=gobgp_rd(v.get("rd")), **common))
    return out


# ------------------------------------------------------------------ vmmi
def vmmi(d):
    out = []
    for r in d:
        fam = "evpn" if r.get("family") == "l2vpn-evpn" else "ipv4" if r.get("family") == "ipv4-unicast" else r.get("family")
        for p in r.get("paths", []):
            n = p.get("nlri")
            pmsi = ""
            for a in p.get("attrs", []):
                if a.get("name") == "PMSI_TUNNEL":
                    pt = a.get("pmsi_tunnel", {})
                    tid = pt.get("tunnel_id")
                    tid = tid.get("ip", tid) if isinstance(tid, dict) else tid
                    pmsi = "%s:%s:%s" % (pt.get("tunnel_type"), pt.get("label"), s(tid))
            ec = list(p.get("ext_communities", []))
            if p.get("sticky"):
                ec.append("sticky")
            common = dict(ec=ec_norm(ec), nh=p.get("next_hop"), aspath=" ".join(str(x) for x in p.get("as_path", [])),
                          lp=p.get("local_pref"), pmsi=pmsi, stale=bool(p.get("stale")), best=bool(p.get("best")))
            common["from"] = p.get("peer", "")
            if fam == "ipv4":
                out.append(rec(family="ipv4", type=0, prefix=r.get("prefix"), **common))
                continue
            if not isinstance(n, dict):
                n = r.get("route") or {}
            t = n.get("type")
            if t == 2:
                out.append(rec(family="evpn", type=2, rd=n.get("rd"), mac=n.get("mac"), ip=n.get("ip"),
                               label=n.get("label1"), label2=n.get("label2"), **common))
            elif t == 3:
                out.append(rec(family="evpn", type=3, rd=n.get("rd"), ip=n.get("originator"), **common))
            elif t == 5:
                out.append(rec(family="evpn", type=5, rd=n.get("rd"),
                               prefix="%s/%s" % (n.get("prefix"), n.get("prefix_len")), label=n.get("label"),
                               **common))
            else:
                out.append(rec(family="evpn", type=t, rd=n.get("rd"), **common))
    return out


# ------------------------------------------------------------------ ExaBGP (events.jsonl of exabgp_api.py)
def exa_ec(attr):
    """ExaBGP 4.2 prints the communities it knows as strings (target:, encap:, mac-mobility:) and the
    others (Router's MAC) only as the 64-bit value: decode those from the value."""
    out = []
    for c in attr.get("extended-community", []):
        st = c.get("string", "")
        v = c.get("value")
        if st.startswith("target:"):
            out.append("RT:" + st[len("target:"):])
        elif st.startswith("encap:"):
            val = st[len("encap:"):]
            out.append("ET:%s" % {"VXLAN": 8, "vxlan": 8}.get(val, val))
        elif st.startswith("mac-mobility:"):
            body = st[len("mac-mobility:"):]
            out.append("MM:%s" % body.split(":")[0].split(" ")[0])
            if "sticky" in body:
                out.append("sticky")
        elif isinstance(v, int) and (v >> 56) == 0x06 and ((v >> 48) & 0xFF) == 0x03:
            m = v & 0xFFFFFFFFFFFF
            out.append("Rmac:" + ":".join("%02x" % ((m >> sh) & 0xFF) for sh in range(40, -8, -8)))
        else:
            out.append(st or "EC:%s" % v)
    return out


def exa_pmsi(attr):
    """"pmsi:ingressreplication:0:6(100):10.255.0.1" -> "6:100:10.255.0.1" (type:raw label:tunnel id)."""
    p = attr.get("pmsi")
    if not p:
        return ""
    parts = str(p).split(":")
    if len(parts) >= 5:
        t = {"ingressreplication": 6}.get(parts[1], parts[1])
        lab = parts[3]
        if "(" in lab:
            lab = lab[lab.index("(") + 1:lab.index(")")]
        return "%s:%s:%s" % (t, lab, ":".join(parts[4:]))
    return str(p)


def exa_label(labels, i):
    """ExaBGP decodes each 3-octet label as [MPLS label, raw 24 bits]; the VNI is the raw value."""
    if len(labels) <= i:
        return ""
    x = labels[i]
    if isinstance(x, list):
        return x[-1]
    return x


def exa_evpn_rec(n, attr, nh, frm):
    code = n.get("code")
    common = dict(ec=ec_norm(exa_ec(attr)), nh=nh, pmsi=exa_pmsi(attr), lp=attr.get("local-preference", ""),
                  aspath=" ".join(str(x) for x in attr.get("as-path", [])), stale=False, best="")
    common["from"] = frm
    labels = n.get("label") or []
    if code == 2:
        return rec(family="evpn", type=2, rd=n.get("rd"), mac=n.get("mac"), ip=n.get("ip", ""),
                   label=exa_label(labels, 0), label2=exa_label(labels, 1), **common)
    if code == 3:
        return rec(family="evpn", type=3, rd=n.get("rd"), ip=n.get("ip", ""), **common)
    if code == 5:
        return rec(family="evpn", type=5, rd=n.get("rd"), prefix="%s/%s" % (n.get("ip"), n.get("iplen")),
                   label=exa_label(labels, 0), **common)
    return rec(family="evpn", type=code, rd=n.get("rd"), **common)


def exa_key(n):
    if isinstance(n, dict):
        # the same NLRI decodes to the same dict; withdrawals carry no attributes, so key on the
        # NLRI fields that identify the route (RFC 7432 §7: labels/ESI/gateway are not part of the key)
        if "code" in n:
            return json.dumps({k: n.get(k) for k in ("code", "rd", "mac", "ip", "iplen", "ethernet-tag")}, sort_keys=True)
        return n.get("nlri") or json.dumps(n, sort_keys=True)
    return str(n)


def exabgp(spec):
    parts = spec.split(":", 2)
    path = parts[1]
    local = parts[2] if len(parts) > 2 else None
    ribs = {}     # local address -> {key: record}
    for line in open(path):
        try:
            m = json.loads(line)
        except ValueError:
            continue
        nb = m.get("neighbor", {})
        loc = (nb.get("address") or {}).get("local", "")
        peer = (nb.get("address") or {}).get("peer", "")
        if local and loc != local:
            continue
        if m.get("type") == "state":
            if nb.get("state") in ("up", "down", "connected"):
                ribs[loc] = {}
            continue
        if m.get("type") != "update":
            continue
        upd = (nb.get("message") or {}).get("update") or {}
        attr = upd.get("attribute") or {}
        rib = ribs.setdefault(loc, {})
        for fam, by_nh in (upd.get("announce") or {}).items():
            for nh, nlris in by_nh.items():
                for n in nlris:
                    if fam == "l2vpn evpn":
                        rib[("evpn", exa_key(n))] = exa_evpn_rec(n, attr, nh, peer)
                    elif fam == "ipv4 unicast":
                        pfx = n.get("nlri") if isinstance(n, dict) else n
                        r = rec(family="ipv4", type=0, prefix=pfx, nh=nh, lp=attr.get("local-preference", ""),
                                aspath=" ".join(str(x) for x in attr.get("as-path", [])), ec=ec_norm(exa_ec(attr)),
                                stale=False)
                        r["from"] = peer
                        rib[("ipv4", pfx)] = r
        for fam, nlris in (upd.get("withdraw") or {}).items():
            for n in nlris:
                if fam == "l2vpn evpn":
                    rib.pop(("evpn", exa_key(n)), None)
                elif fam == "ipv4 unicast":
                    rib.pop(("ipv4", n.get("nlri") if isinstance(n, dict) else n), None)
    return [r for rib in ribs.values() for r in rib.values()]


# ------------------------------------------------------------------ matching
def parse_cond(c):
    # the operator is the first one after any [field=value] list selector of a json path
    start = c.rfind("]") + 1
    best = None
    for op in ("!~", "!=", "~", "="):
        i = c.find(op, start)
        if i >= 0 and (best is None or i < best[0] or (i == best[0] and len(op) > len(best[1]))):
            best = (i, op)
    if best:
        i, op = best
        return c[:i], op, c[i + len(op):]
    raise SystemExit("check.py: bad condition %r (key=value, key~sub, key!~sub, key!=value)" % c)


def holds(r, cond):
    k, op, v = cond
    if k not in r:
        raise SystemExit("check.py: unknown field %r (have %s)" % (k, ", ".join(sorted(r))))
    x = r[k]
    if op == "=":
        return x == v
    if op == "!=":
        return x != v
    if op == "~":
        return v in x
    return v not in x


def show(r):
    keep = {k: v for k, v in r.items() if v != ""}
    return json.dumps(keep, sort_keys=True)


def cmd_routes(args):
    fmt = args[0]
    rest = args[1:]
    absent = False
    if rest and rest[0] == "--absent":
        absent, rest = True, rest[1:]
    if "--" in rest:
        i = rest.index("--")
        sel, exp = rest[:i], rest[i + 1:]
    else:
        sel, exp = rest, []
    sel = [parse_cond(c) for c in sel]
    exp = [parse_cond(c) for c in exp]
    if fmt.startswith("exabgp:"):
        recs = exabgp(fmt)
    else:
        raw = sys.stdin.read()
        if not raw.strip():
            print("no input: the command that lists the routes printed nothing (peer/daemon down?)")
            return 1
        try:
            d = json.loads(raw)
        except ValueError:
            print("not JSON: %s" % raw[:300].replace("\n", " "))
            return 1
        if d is None:   # gobgp -j prints null for an empty table
            d = {}
        recs = {"frr-evpn": frr_evpn, "frr-ipv4": frr_ipv4, "vmmi": vmmi,
                "gobgp-evpn": lambda x: gobgp(x, "evpn"), "gobgp-ipv4": lambda x: gobgp(x, "ipv4")}[fmt](d)
    cands = [r for r in recs if all(holds(r, c) for c in sel)]
    if absent:
        if not cands:
            return 0
        print("still present: " + " | ".join(show(r) for r in cands[:4]))
        return 1
    if any(all(holds(r, c) for c in exp) for r in cands):
        return 0
    if not cands:
        frm = [c for c in sel if c[0] == "from" and c[1] == "="]
        pool = [r for r in recs if all(holds(r, c) for c in frm)]
        print("no route matches %s; %s: %s" % (
            " ".join("".join(c) for c in sel),
            "%d records from %s" % (len(pool), frm[0][2]) if frm else "table has %d records" % len(pool),
            " | ".join(show(r) for r in pool[:6]) or "-"))
    else:
        bad = [" ".join("".join(c) for c in exp if not holds(r, c)) for r in cands]
        print("matching route(s) fail [%s]: %s" % ("; ".join(bad[:3]), " | ".join(show(r) for r in cands[:3])))
    return 1


def walk(d, path):
    cur = d
    for seg in path.split("/"):
        if seg == "":
            continue
        if seg.startswith("[") and seg.endswith("]"):
            k, v = seg[1:-1].split("=", 1)
            found = None
            for el in cur if isinstance(cur, list) else []:
                x = el
                for kk in k.split("."):
                    x = x.get(kk) if isinstance(x, dict) else None
                if s(x) == v:
                    found = el
                    break
            if found is None:
                raise KeyError(seg)
            cur = found
        elif isinstance(cur, list):
            cur = cur[int(seg)]
        elif isinstance(cur, dict):
            if seg not in cur:
                raise KeyError(seg)
            cur = cur[seg]
        else:
            raise KeyError(seg)
    return cur


def cmd_json(args):
    raw = sys.stdin.read()
    try:
        d = json.loads(raw)
    except ValueError:
        print("not JSON: %s" % raw[:300].replace("\n", " "))
        return 1
    bad = []
    for c in args:
        k, op, v = parse_cond(c)
        try:
            x = walk(d, k)
        except (KeyError, IndexError, ValueError, TypeError):
            bad.append("%s: missing" % k)
            continue
        xs = json.dumps(x, sort_keys=True) if isinstance(x, (dict, list)) else s(x)
        ok = {"=": xs == v, "!=": xs != v, "~": v in xs, "!~": v not in xs}[op]
        if not ok:
            bad.append("%s is %s (want %s%s)" % (k, xs[:200], op, v))
    if bad:
        print("; ".join(bad))
        return 1
    return 0


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "routes":
        return cmd_routes(args)
    if cmd == "json":
        return cmd_json(args)
    if cmd == "dump":   # debugging: print the normalized records
        fmt = args[0]
        recs = exabgp(fmt) if fmt.startswith("exabgp:") else {
            "frr-evpn": frr_evpn, "frr-ipv4": frr_ipv4, "vmmi": vmmi,
            "gobgp-evpn": lambda x: gobgp(x, "evpn"), "gobgp-ipv4": lambda x: gobgp(x, "ipv4")}[fmt](json.load(sys.stdin))
        for r in recs:
            print(show(r))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
