#!/usr/bin/env bash
# tshark (Wireshark 4.0) as an independent oracle for BGP-EVPN (tcp/179) and LISP (udp/4342) captures.
#
#   tshark-oracle.sh PCAP...             same as `bad`
#   tshark-oracle.sh bad PCAP...         list frames tshark flags as malformed or with expert severity
#                                        >= warning (TCP analysis flags and RSTs excluded); exit 1 if any
#   tshark-oracle.sh json PCAP [FIELD...] tshark -T json with only FIELDs (default: the BGP/EVPN/LISP set
#                                        below); one JSON array on stdout
#   tshark-oracle.sh evpn PCAP           one line per EVPN frame: route types, RDs, MACs, IPs, label/VNI, MM seq
#   tshark-oracle.sh lisp PCAP           one line per LISP control frame
#   tshark-oracle.sh selftest            checks the oracle itself on conformance/vectors/*.pcap (if present)
#
# With no PCAP argument and no mode (as scripts/test.sh calls it), it runs `selftest`.
# Filter notes: `tcp.port == 179`, not `bgp`: a frame whose BGP header is broken (length < 19) has no
# `bgp` field at all. tshark shows an EVPN label as a VNI only if the VXLAN encapsulation community comes
# before MP_REACH_NLRI in the frame; otherwise as MPLS label (VNI 100 -> label 6).
set -euo pipefail

# Expert warnings count only on frames that carry BGP or LISP bytes: a bare TCP ACK can be flagged
# for its SACK options (D-SACK after a retransmission) — TCP's business, not the codec's (seen
# once in a live FRR<->GoBGP capture).
BAD_FILTER='(tcp.port == 179 || udp.port == 4342) && (_ws.malformed || (_ws.expert.severity >= "warning" && !tcp.analysis.flags && !tcp.connection.rst && (udp || tcp.len > 0)))'
DEFAULT_FIELDS=(frame.number ip.src ip.dst _ws.col.Info bgp.type bgp.evpn.nlri.rt bgp.rd bgp.evpn.nlri.mac_addr
    bgp.evpn.nlri.ip.addr bgp.evpn.nlri.prefix_len bgp.evpn.nlri.mpls_ls1 bgp.evpn.nlri.vni bgp.evpn.nlri.etag
    bgp.ext_com_evpn.mmac.seq bgp.ext_com_evpn.mmac.flags.sticky bgp.ext_com_evpn.esi.router_mac
    bgp.ext_com.value_as2 bgp.ext_com.value_an4 bgp.ext_com.tunnel_type
    bgp.update.path_attribute.pmsi.tunnel.type bgp.update.path_attribute.pmsi.ingress_rep_ip
    bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv4 bgp.notify.major_error bgp.notify.minor_error_cease
    lisp.type lisp.records lisp.keyid lisp.authlen lisp.lcaf.iid _ws.malformed _ws.expert.message)
TSHARK_TIMEOUT="${TSHARK_TIMEOUT:-120}"

T() { timeout "$TSHARK_TIMEOUT" tshark -n "$@" 2>/dev/null; }

need() { command -v tshark >/dev/null || { echo "tshark-oracle: tshark not installed" >&2; exit 2; }; }

bad() {
    local f n total=0
    [ $# -gt 0 ] || { echo "usage: $0 bad PCAP..." >&2; exit 2; }
    for f in "$@"; do
        [ -r "$f" ] || { echo "tshark-oracle: cannot read $f" >&2; exit 2; }
        T -r "$f" -Y "$BAD_FILTER" -T fields -E separator='|' \
            -e frame.number -e _ws.col.Protocol -e _ws.col.Info -e _ws.expert.message | sed "s|^|$f: frame |"
        n=$(T -r "$f" -Y "$BAD_FILTER" | wc -l)
        echo "tshark-oracle: $f: $n flagged frame(s)" >&2
        total=$((total + n))
    done
    [ "$total" -eq 0 ]
}

json() {
    local f="${1:?usage: $0 json PCAP [FIELD...]}"; shift
    local args=() x
    if [ $# -eq 0 ]; then set -- "${DEFAULT_FIELDS[@]}"; fi
    for x in "$@"; do args+=(-e "$x"); done
    T -r "$f" -Y 'tcp.port == 179 || udp.port == 4342' -T json "${args[@]}"
}

evpn() {
    T -r "${1:?pcap}" -Y 'bgp.evpn.nlri' -T fields -E occurrence=a -E separator='|' -E aggregator=',' \
        -e frame.number -e ip.src -e bgp.evpn.nlri.rt -e bgp.rd -e bgp.evpn.nlri.mac_addr -e bgp.evpn.nlri.ip.addr \
        -e bgp.evpn.nlri.mpls_ls1 -e bgp.evpn.nlri.vni -e bgp.ext_com_evpn.mmac.seq \
        -e bgp.ext_com_evpn.mmac.flags.sticky -e bgp.ext_com_evpn.esi.router_mac \
        -e bgp.update.path_attribute.pmsi.tunnel.type
}

lisp() {
    T -r "${1:?pcap}" -Y 'lisp' -T fields -E occurrence=a -E separator='|' -E aggregator=',' \
        -e frame.number -e ip.src -e ip.dst -e lisp.type -e lisp.records -e lisp.lcaf.iid -e lisp.keyid \
        -e lisp.authlen -e _ws.col.Info
}

selftest() {
    local here vec p n=0 fails=0
    here="$(cd "$(dirname "$0")" && pwd)"; vec="$here/vectors"
    for p in "$vec"/*.pcap "$vec"/*/*.pcap; do
        [ -e "$p" ] || continue
        n=$((n + 1))
        if bad "$p" >/dev/null 2>&1; then echo "PASS tshark finds nothing malformed in ${p#"$vec"/}"
        else echo "FAIL tshark flags frames in ${p#"$vec"/}"; bad "$p" || true; fails=$((fails + 1)); fi
    done
    if [ -f "$vec/bgp-messages.pcap" ]; then
        local k
        k=$(T -r "$vec/bgp-messages.pcap" -Y 'bgp.ext_com_evpn.mmac.seq == 7' | wc -l)
        if [ "$k" -gt 0 ]; then echo "PASS tshark decodes MAC Mobility seq 7 in bgp-messages.pcap"
        else echo "FAIL tshark sees no MAC Mobility seq 7 in bgp-messages.pcap"; fails=$((fails + 1)); fi
    fi
    echo "tshark-oracle selftest: $n pcap(s), $fails failed"
    [ "$fails" -eq 0 ]
}

need
case "${1:-selftest}" in
    bad) shift; bad "$@" ;;
    json) shift; json "$@" ;;
    evpn) shift; evpn "$@" ;;
    lisp) shift; lisp "$@" ;;
    selftest) selftest ;;
    -h|--help) sed -n '2,16p' "$0" ;;
    *) bad "$@" ;;
esac
