# shellcheck shell=bash
# ExaBGP 4.2 suite: one exabgp process in vi-x (lo 10.255.0.6) with two neighbors to vmmi, both
# l2vpn-evpn + ipv4-unicast, graceful-restart capability (restart time 60):
#   10.99.0.6  AS 65006  (eBGP)        10.99.0.7  AS 65001  (iBGP)
# ExaBGP 4.2 decodes EVPN but cannot originate it: EVPN is tested vmmi -> ExaBGP only, IPv4 unicast
# both ways. Received UPDATEs reach conformance/interop/exabgp_api.py (process API, JSON), which logs
# them to events.jsonl and relays API commands the runner writes into cmd.fifo. ExaBGP does not
# listen (tcp.bind empty), so vmmi's neighbors are passive and ExaBGP connects.
# Sourced by run.sh.

EXA_LOCALS=(10.99.0.6 10.99.0.7)

exa_conf() { # exa_conf DIR
    local n as lp
    cat <<EOF
process vi-api {
    run $PY $VI_DIR/exabgp_api.py $1;
    encoder json;
}
EOF
    for n in 6 7; do
        as=65006; lp=""; [ "$n" = 7 ] && { as=65001; lp=" local-preference 200"; }
        cat <<EOF

neighbor $VMMI_IP {
    description "vi-x-$n";
    router-id 10.255.0.6;
    local-address 10.99.0.$n;
    local-as $as;
    peer-as $VMMI_AS;
    hold-time 9;
    group-updates false;
    capability {
        graceful-restart 60;
    }
    family {
        ipv4 unicast;
        l2vpn evpn;
    }
    api {
        processes [ vi-api ];
        receive { parsed; update; }
        neighbor-changes;
    }
    static {
        route 10.90.$n.0/24 next-hop 10.99.0.$n$lp;
    }
}
EOF
    done
}

exa_setup() {
    local d; d="$(exa_dir vi-x)"
    veth_ns vi-x 10.99.0.6 10.255.0.6
    ip -n vi-x addr add 10.99.0.7/24 dev eth0
    mkdir -p "$d"; rm -f "$d/events.jsonl" "$d/exabgp.log" "$d/helper.pid" "$d/cmd.fifo"
    exa_conf "$d" >"$d/exabgp.conf"
    exa_start vi-x
}

# exa_state LOCAL STATE [NOT_IN_REASON]: the last neighbor-change ExaBGP reported for the session from
# LOCAL is STATE (and its reason does not contain NOT_IN_REASON, case-insensitive)
exa_state() {
    "$PY" - "$(exa_dir vi-x)/events.jsonl" "$1" "$2" "${3:-}" <<'PY'
import json, sys
last = None
for line in open(sys.argv[1]):
    try:
        m = json.loads(line)
    except ValueError:
        continue
    nb = m.get("neighbor", {})
    if m.get("type") == "state" and (nb.get("address") or {}).get("local") == sys.argv[2]:
        last = nb.get("state"), nb.get("reason", "")
if last and last[0] == sys.argv[3] and not (sys.argv[4] and sys.argv[4].lower() in last[1].lower()):
    sys.exit(0)
print("last state of %s: %s" % (sys.argv[2], last))
sys.exit(1)
PY
}

suite_exabgp() {
    log "== ExaBGP suite (exabgp $(dpkg-query -W -f '${Version}' exabgp 2>/dev/null))"
    local cfg="$VI_RUN/vmmi-exabgp.toml" P n loc as
    { nbr_block 10.99.0.6 65006 true; nbr_block 10.99.0.7 65001 true; } | write_vmmi_conf "$cfg"
    vmmi_start "$cfg" "$VI_RUN/vmmi-exabgp.log" || { fail "exabgp: vmmi starts" "$(tail -5 "$VI_RUN/vmmi-exabgp.log")"; return; }
    exa_setup || { fail "exabgp: setup (exabgp + API helper)" "$(tail -5 "$(exa_dir vi-x)/exabgp.log")"; return; }
    pick() { n="$1"; loc="10.99.0.$n"; if [ "$n" = 6 ]; then as=65006; P=exabgp-ebgp; else as=65001; P=exabgp-ibgp; fi; }

    # ---------------------------------------------------------------- 1. sessions
    for n in 6 7; do
        pick "$n"
        check "$P: [1] ExaBGP: session with vmmi up" 30 exa_state "$loc" up
        check "$P: [1] vmmi: neighbor Established, both families negotiated, $([ $n = 7 ] && echo iBGP || echo eBGP)" 10 \
            vmmi_nbr "[name=$loc]/state=Established" "[name=$loc]/negotiated/families~l2vpn-evpn" \
            "[name=$loc]/negotiated/families~ipv4-unicast" \
            "[name=$loc]/negotiated/ibgp=$([ $n = 7 ] && echo true || echo false)" "[name=$loc]/remote_asn=$as"
        check "$P: [1] vmmi: ExaBGP's graceful-restart capability seen (restart time 60)" 5 \
            vmmi_nbr "[name=$loc]/negotiated/peer_gr/restart_time=60"
    done

    # ---------------------------------------------------------------- 2. vmmi announces (EVPN decoded by ExaBGP)
    announce_all || fail "exabgp: [2] vmmi route announce (API call)" "see $VI_RUN/vmmi-exabgp.log"
    for n in 6 7; do
        pick "$n"
        local xa=(aspath=65001); [ "$n" = 7 ] && xa=(aspath= lp=100)
        check "$P: [2] ExaBGP decodes vmmi's type-2 MAC-only (RD, MAC, label 100, RT, ET:8, no MM, next hop)" "$T" \
            exa_has vi-x "$loc" "${S2_MAC[@]}" -- "${E2_MAC[@]}" "${xa[@]}"
        check "$P: [2] ExaBGP decodes vmmi's type-2 MAC+IP (IP, label 100, RT, ET:8, MM:3)" "$T" \
            exa_has vi-x "$loc" "${S2_IP[@]}" -- "${E2_IP[@]}" "${xa[@]}"
        check "$P: [2] ExaBGP decodes vmmi's type-3 (PMSI ingress replication, label 100, tunnel id 10.255.0.1)" "$T" \
            exa_has vi-x "$loc" "${S3[@]}" -- "pmsi=6:100:$VMMI_LO" ec~RT:65001:100 ec~ET:8 nh=$VMMI_LO
        check "$P: [2] ExaBGP decodes vmmi's type-5 (10.2.0.0/24, label 5000, RT, ET:8, Router's MAC)" "$T" \
            exa_has vi-x "$loc" "${S5[@]}" -- "${E5[@]}"
        check "$P: [2] ExaBGP receives vmmi's IPv4 unicast 10.50.0.0/24 (next hop $VMMI_IP)" "$T" \
            exa_has vi-x "$loc" "${S4[@]}" -- nh=$VMMI_IP "${xa[@]}"
    done

    # ---------------------------------------------------------------- 3. ExaBGP announces (IPv4 unicast only)
    for n in 6 7; do
        pick "$n"
        exa_cmd vi-x "neighbor $VMMI_IP local-ip $loc announce route 10.91.$n.0/24 next-hop $loc" ||
            fail "$P: [3] API command to ExaBGP (cmd.fifo)" "timed out"
        exa_cmd vi-x "neighbor $VMMI_IP local-ip $loc announce route 10.92.$n.0/24 next-hop $loc" || true
    done
    for n in 6 7; do
        pick "$n"
        local ya=(aspath=65006); [ "$n" = 7 ] && ya=(aspath= lp=200)
        check "$P: [3] vmmi shows ExaBGP's configured IPv4 10.90.$n.0/24 (next hop $loc$([ $n = 7 ] && echo ', LOCAL_PREF 200'))" "$T" \
            vmmi_has family=ipv4 prefix="10.90.$n.0/24" from="$loc" -- nh="$loc" "${ya[@]}"
        [ "$n" = 7 ] && ya=(aspath= lp=100)   # the API-announced route carries ExaBGP's default LOCAL_PREF
        check "$P: [3] vmmi shows ExaBGP's API-announced IPv4 10.91.$n.0/24" "$T" \
            vmmi_has family=ipv4 prefix="10.91.$n.0/24" from="$loc" -- nh="$loc" "${ya[@]}"
    done

    for n in 6 7; do
        pick "$n"
        check "$P: [3] vmmi: neighbor prefixes_received agree with the paths from it in the RIB" 5 vmmi_counts_agree "$loc"
    done

    # ---------------------------------------------------------------- 4. withdraw / re-advertise
    withdraw "$R2_MAC"; withdraw "$R5"; withdraw "$R4"; announce "$R2_IP4"
    for n in 6 7; do
        pick "$n"
        check "$P: [4] vmmi withdrew type-2 MAC-only -> ExaBGP got the withdraw" "$T" exa_lacks vi-x "$loc" "${S2_MAC[@]}"
        check "$P: [4] vmmi withdrew type-5 -> ExaBGP got the withdraw" "$T" exa_lacks vi-x "$loc" "${S5[@]}"
        check "$P: [4] vmmi withdrew IPv4 10.50.0.0/24 -> ExaBGP got the withdraw" "$T" exa_lacks vi-x "$loc" "${S4[@]}"
        check "$P: [4] vmmi re-advertised MAC+IP with MAC Mobility seq 4 -> ExaBGP decodes MM:4" "$T" \
            exa_has vi-x "$loc" "${S2_IP[@]}" -- ec~MM:4 ec!~MM:3
        exa_cmd vi-x "neighbor $VMMI_IP local-ip $loc withdraw route 10.92.$n.0/24 next-hop $loc" || true
        check "$P: [4] ExaBGP withdrew IPv4 10.92.$n.0/24 -> gone at vmmi" "$T" vmmi_lacks family=ipv4 prefix="10.92.$n.0/24"
    done

    # ---------------------------------------------------------------- 5. ExaBGP restarts (SIGKILL)
    exa_kill vi-x
    for n in 6 7; do
        pick "$n"
        check "$P: [5] exabgp killed: vmmi sees the session down" 10 vmmi_nbr "[name=$loc]/state!=Established"
        check_now "$P: [5] during ExaBGP's restart vmmi keeps its routes, stale: IPv4 10.90.$n.0/24" \
            vmmi_has family=ipv4 prefix="10.90.$n.0/24" from="$loc" -- stale=true
        check_now "$P: [5] ... stale: IPv4 10.91.$n.0/24" vmmi_has family=ipv4 prefix="10.91.$n.0/24" from="$loc" -- stale=true
        check_now "$P: [5] ... neighbor stale count > 0 (ipv4-unicast)" vmmi_nbr "[name=$loc]/stale/ipv4-unicast!=0"
    done
    exa_start vi-x || fail "exabgp: [5] exabgp restarts" "$(tail -5 "$(exa_dir vi-x)/exabgp.log")"
    for n in 6 7; do
        pick "$n"
        check "$P: [5] ExaBGP back: Established again, stale routes swept after End-of-RIB (stale counts 0)" 30 \
            vmmi_nbr "[name=$loc]/state=Established" "[name=$loc]/stale={}"
        check_now "$P: [5] after End-of-RIB: configured IPv4 10.90.$n.0/24 fresh" \
            vmmi_has family=ipv4 prefix="10.90.$n.0/24" from="$loc" -- stale=false
        check_now "$P: [5] after End-of-RIB: API-announced IPv4 10.91.$n.0/24 (gone with the old process) gone" \
            vmmi_lacks family=ipv4 prefix="10.91.$n.0/24" from="$loc"
        check "$P: [5] restarted ExaBGP got vmmi's routes again (MAC+IP, MM:4)" "$T" exa_has vi-x "$loc" "${S2_IP[@]}" -- ec~MM:4
    done

    # ---------------------------------------------------------------- 6. vmmi restarts (SIGTERM)
    local t0=$SECONDS
    vmmi_stop
    check "exabgp: [6] vmmi exits within 10 s of SIGTERM" 0 test $((SECONDS - t0)) -le 10
    for n in 6 7; do
        pick "$n"
        # ExaBGP keeps no RIB of received routes (it only reports them), so there is nothing it could
        # keep as a GR helper: what it reports is the session going down
        check "$P: [6] ExaBGP reports the session with vmmi down" 10 exa_state "$loc" down
        check_now "$P: [6] vmmi closed the TCP session without NOTIFICATION (ExaBGP sets no N bit), as RFC 4724 wants" \
            exa_state "$loc" down notification
    done
    vmmi_start "$cfg" "$VI_RUN/vmmi-exabgp.log" || { fail "exabgp: [6] vmmi starts again" "$(tail -5 "$VI_RUN/vmmi-exabgp.log")"; return; }
    for n in 6 7; do
        pick "$n"
        check "$P: [6] vmmi back: session up again (ExaBGP reconnects)" 30 exa_state "$loc" up
    done
    announce "$R2_MAC"; announce "$R2_IP4"; announce "$R3"; announce "$R5"; announce "$R4"
    for n in 6 7; do
        pick "$n"
        check "$P: [6] after re-announce ExaBGP has vmmi's type-2 MAC+IP (MM:4)" "$T" exa_has vi-x "$loc" "${S2_IP[@]}" -- ec~MM:4
        check "$P: [6] ... type-2 MAC-only" "$T" exa_has vi-x "$loc" "${S2_MAC[@]}" -- "${E2_MAC[@]}"
        check "$P: [6] ... type-3" "$T" exa_has vi-x "$loc" "${S3[@]}" -- "pmsi~6:100"
        check "$P: [6] ... type-5" "$T" exa_has vi-x "$loc" "${S5[@]}" -- "${E5[@]}"
        check "$P: [6] ... IPv4 10.50.0.0/24" "$T" exa_has vi-x "$loc" "${S4[@]}"
        check "$P: [6] vmmi relearned ExaBGP's IPv4 10.90.$n.0/24 after its restart" "$T" \
            vmmi_has family=ipv4 prefix="10.90.$n.0/24" from="$loc" -- stale=false
    done
}

suite_exabgp_down() {
    vmmi_stop
    exa_stop vi-x
    del_ns vi-x
}
