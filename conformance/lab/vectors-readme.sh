# shellcheck shell=bash
# write_readme: writes $OUT/README.md for the BGP vectors. Sourced by capture-vectors.sh, which sets
# OUT RUN FRR_DIR STEPS_LOG NS_G AS_F AS_G LO_F LO_G IP_F IP_G before calling it.

write_readme() {
    local f="$OUT/README.md" vers
    vers="$(dpkg-query -W -f '${Package} ${Version}\n' frr gobgpd tshark 2>/dev/null || true)"
    {
        cat <<EOF
# Real-peer BGP EVPN test vectors (FRR 8.4, GoBGP 3.10)

Every \`.hex\` file here is **one BGP message exactly as a real peer sent it on the wire** (from the
16-byte marker to the end of the message), lowercase hex on one line. They were captured from a live
eBGP l2vpn-evpn session between FRR and GoBGP in network namespaces and extracted from the capture
by \`conformance/lab/bgpvec.py\` (TCP reassembly, split on the BGP length field). Regenerate with:

\`\`\`sh
sudo bash conformance/lab/capture-vectors.sh        # ~70 s, root; rewrites the BGP files here
\`\`\`

## Provenance

- Captured: $(date -u '+%Y-%m-%d %H:%M UTC') on Debian $(cat /etc/debian_version 2>/dev/null), kernel $(uname -r), by \`conformance/lab/capture-vectors.sh\`.
- Packages (\`dpkg-query -W frr gobgpd tshark\`):
$(printf '%s\n' "$vers" | sed 's/^/  - `/; s/$/`/')
- Peers: FRR (zebra + bgpd, AS $AS_F, router-id $LO_F, on $IP_F) and GoBGP (gobgpd, AS $AS_G, router-id
  $LO_G, on $IP_G); captured with tshark on FRR's end of the veth, filter \`tcp port 179\`.
- \`frr-8.4/\` = messages sent by FRR, \`gobgp-3.10/\` = messages sent by GoBGP. Byte-identical repeats
  (KEEPALIVEs, the OPENs of the re-established session) are stored once; a \`-2\`, \`-3\` suffix marks
  another message of the same kind with different content (see the table).

## Files

| file | what |
|---|---|
| \`frr-8.4/*.hex\`, \`gobgp-3.10/*.hex\` | one BGP message per file (table below) |
| \`frr-gobgp-evpn.pcap\` | the whole live capture (classic pcap, Ethernet, tcp/179 only), for \`vmmi decode --pcap\` |
| \`bgp-messages.pcap\` | every vector once, **one message per TCP segment; frame N = \`msg_pcap_frame\` in expected.json** (synthetic TCP/IP headers, real BGP bytes) |
| \`expected.json\` | per vector: route type, RD, ESI, etag, MAC, IP, label1/label2 (= VNI), next hop, AS_PATH, ext communities, MAC Mobility seq/sticky, Router's MAC, PMSI, OPEN capabilities, NOTIFICATION code; plus tshark's own field values (\`tshark\`) and \`tshark_agrees\` |

\`expected.json\` conventions: \`label1\`/\`label2\`/\`vni\` are the raw 24-bit label fields (VXLAN: the whole
field is the VNI, RFC 8365). tshark 4.0 prints that field as a VNI only when the encapsulation community
precedes MP_REACH_NLRI in the same frame, otherwise as an MPLS label = value >> 4 (VNI 100 -> "MPLS Label 1: 6";
type-5 label 5000 -> "MPLS Label Stack: 312 (BOGUS: Bottom of Stack NOT set!)"), so the label cross-check
is done on pure type-2 messages only. RDs are \`admin:assigned\`. \`ext_communities\` entries are \`rt:AS:N\`,
\`encap:vxlan\`, \`mac-mobility:SEQ[:sticky]\`, \`router-mac:MAC\`. \`live_pcap_frame\` = frame of
frr-gobgp-evpn.pcap where the message starts.

## Observed behaviour worth a test

- FRR withdraws (MP_UNREACH) carry **label 0** in type-2/type-5 NLRI; GoBGP withdraws repeat the label.
- FRR's type-5 and symmetric-IRB type-2 come from an L3VNI (4000) mapped to the **default VRF**
  (\`vrf default / vni 4000\` in zebra; this kernel has no \`vrf\` link type). The MAC+IP type-2 is then
  re-advertised with label2 = 4000, RT 65002:4000 and the Router's MAC (\`frr-8.4/update-type2-macip-rmac.hex\`).
- FRR relays GoBGP's EVPN routes back to GoBGP (eBGP, AS_PATH 65002 65001; GoBGP drops them for the AS
  loop; \`neighbor X sender-as-path-loop-detection\` does not stop that for l2vpn evpn): those are
  \`frr-8.4/update-relayed-*\` — FRR's encoding of GoBGP's MAC Mobility, sticky, PMSI and type-5 routes.
  FRR's withdraws of them carry no AS_PATH; they are named \`relayed\` when every RD's administrator is
  another router.
- Attribute order: FRR sends MP_REACH_NLRI first (type codes 14,1,2,16[,22]) and lists \`encap\` before the
  RTs; GoBGP sends ORIGIN, AS_PATH, MP_REACH_NLRI, EXT_COMMUNITIES[, PMSI] (see \`attr_type_codes\`).
- GoBGP's OPEN carries an FQDN capability with the **machine's hostname** (here \`$(hostname)\`): that byte
  string differs between machines. GoBGP also advertises extended-nexthop for l2vpn/evpn with next-hop
  AFI 2, which FRR logs as unexpected and ignores. FRR's OPEN: FQDN \`frr-vmmi\`, add-path (l2vpn-evpn,
  receive), extended-message, GR helper (no AFIs), LLGR, hold time 9 (\`frr defaults datacenter\`).
- GoBGP's CLI \`macadv MAC 0.0.0.0\` produces a MAC-only route (IP length 0), like the API without an IP.
- NOTIFICATIONs: GoBGP \`neighbor X reset\` -> Cease/4 (admin reset, no data); FRR
  \`neighbor X shutdown message vmmi-vector-capture\` -> Cease/2 with an RFC 9003 shutdown communication.

## Vectors

Decoded by \`bgpvec.py\` (an independent decoder) and cross-checked against tshark 4.0 (\`tshark_agrees\`
in expected.json); the live capture also passes the malformed/expert oracle of \`conformance/tshark-oracle.sh\`.

EOF
        cat "$RUN/table.md"
        cat <<EOF

## How they were produced

Sequence (from the run's log):

\`\`\`
$(cat "$STEPS_LOG")
\`\`\`

GoBGP routes: CLI (\`ip netns exec $NS_G gobgp global rib -a evpn add ...\`) for type-2 MAC+IP
(02:aa:00:00:00:01 10.100.0.11), type-2 with IP 0.0.0.0 (02:aa:00:00:00:03), type-3 with
\`pmsi ingress-repl 100 10.255.0.1\`, type-5 10.200.0.0/24 label 5000 \`router-mac 02:aa:ff:00:00:01\`;
gRPC API (\`conformance/lab/gobgp_api.py\`, stubs generated from the protos of Debian's
golang-github-osrg-gobgp-dev) for type-2 MAC-only 02:aa:00:00:00:02, MAC+IP 02:aa:00:00:00:07 10.100.0.17
with MAC Mobility seq 7, MAC-only 02:aa:00:00:00:08 with MAC Mobility seq 0 + sticky. All with RD
10.255.0.1:100 (type-5: 10.255.0.1:5000), RT 65001:100 (5000), encap VXLAN, next hop 10.255.0.1, VNI 100.
Withdrawn: 02:aa:00:00:00:01 (CLI), the type-5, the type-3, 02:aa:00:00:00:07 (API).

FRR routes (\`advertise-all-vni\`; auto RD 10.255.0.2:2 for VNI 100 and 10.255.0.2:1 for the L3VNI; auto RT
65002:100 / 65002:4000): type-3 with PMSI when vxlan100 comes up; type-2 MAC-only for a static FDB entry
02:bb:bb:00:00:02 on hp100; type-2 MAC-only + MAC+IP for host 02:bb:bb:00:00:01 10.100.0.10 after two
pings to the SVI; type-5 10.222.0.0/24 (\`network\` + \`advertise ipv4 unicast\`, Rmac 02:bb:ff:00:00:01).
Withdrawn: the static MAC (fdb del), then everything of VNI 100 (vxlan100 down; re-advertised on up).
Then GoBGP resets the session, it re-establishes (both sides re-send their tables), and FRR shuts the
neighbor down.

### FRR bgpd.conf

\`\`\`
$(cat "$FRR_DIR/bgpd.conf")
\`\`\`

### FRR zebra.conf

\`\`\`
$(cat "$FRR_DIR/zebra.conf")
\`\`\`

### gobgpd.toml

\`\`\`toml
$(cat "$RUN/gobgpd.toml")
\`\`\`
EOF
        if [ -f "$OUT/oor-1.3/README.md" ]; then
            printf '\n## LISP (OOR 1.3)\n\nSee [oor-1.3/README.md](oor-1.3/README.md) (made by `conformance/lab/capture-lisp.sh`).\n'
        fi
    } >"$f"
    log "wrote $f"
}
