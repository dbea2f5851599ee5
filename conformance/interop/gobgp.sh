# shellcheck shell=bash
# GoBGP 3.10 suite: vmmi (AS 65001) with two gobgpd at once, l2vpn-evpn + ipv4-unicast, graceful
# restart configured (helper + restarting; `gobgpd -r` after a crash sets the R and F bits):
#   vi-ge  10.99.0.4 / lo 10.255.0.4  AS 65004  (eBGP)
#   vi-gi  10.99.0.5 / lo 10.255.0.5  AS 65001  (iBGP)
# GoBGP originates EVPN with `gobgp global rib -a evpn add macadv|multicast|prefix` and, for the MAC
# Mobility community the 3.10 CLI cannot express, through its gRPC API (conformance/lab/gobgp_api.py).
# Sourced by run.sh.

gobgp_conf() { # N AS
    cat <<EOF
[global.config]
  as = $2
  router-id = "10.255.0.$1"
  port = 179
  local-address-list = ["10.99.0.$1"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "$VMMI_IP"
    peer-as = $VMMI_AS
  [neighbors.transport.config]
    local-address = "10.99.0.$1"
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 60
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "l2vpn-evpn"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
EOF
}

gobgp_setup() { # NS N AS
    local d; d="$(gobgp_dir "$1")"
    veth_ns "$1" "10.99.0.$2" "10.255.0.$2"
    mkdir -p "$d"; rm -f "$d/gobgpd.log"
    gobgp_conf "$2" "$3" >"$d/gobgpd.toml"
    gobgp_start "$1"
}

# the routes GoBGP N originates (RD 10.255.0.N:100, RT AS:100, VTEP 10.255.0.N)
g_mac() { GB "$1" global rib -a evpn "${4:-add}" macadv "02:cc:0$2:00:00:01" 0.0.0.0 etag 0 label 100 rd "10.255.0.$2:100" \
          rt "$3:100" encap vxlan nexthop "10.255.0.$2"; }
g_ip() { GB "$1" global rib -a evpn "${4:-add}" macadv "02:cc:0$2:00:00:02" "10.100.1.$2" etag 0 label 100 rd "10.255.0.$2:100" \
          rt "$3:100" encap vxlan nexthop "10.255.0.$2"; }
g_mm() { # NS N AS SEQ|withdraw
    if [ "$4" = withdraw ]; then
        GAPI "$1" macadv --mac "02:cc:0$2:00:00:03" --ip "10.100.3.$2" --rd "10.255.0.$2:100" --rt "$3:100" \
            --nexthop "10.255.0.$2" --withdraw >/dev/null
    else
        GAPI "$1" macadv --mac "02:cc:0$2:00:00:03" --ip "10.100.3.$2" --mm-seq "$4" --rd "10.255.0.$2:100" \
            --rt "$3:100" --nexthop "10.255.0.$2" >/dev/null
    fi
}
g_imet() { GB "$1" global rib -a evpn add multicast "10.255.0.$2" etag 0 rd "10.255.0.$2:100" rt "$3:100" encap vxlan \
          pmsi ingress-repl 100 "10.255.0.$2" nexthop "10.255.0.$2"; }
g_pfx() { GB "$1" global rib -a evpn add prefix "10.70.$2.0/24" gw 0.0.0.0 etag 0 label 5000 rd "10.255.0.$2:5000" \
          rt "$3:5000" encap vxlan router-mac "02:cc:ff:00:00:0$2" nexthop "10.255.0.$2"; }
g_v4() { GB "$1" global rib -a ipv4 "${4:-add}" "$3" nexthop "10.99.0.$2"; }   # NS N PREFIX [add|del]

suite_gobgp() {
    log "== GoBGP suite (gobgpd $(dpkg-query -W -f '${Version}' gobgpd 2>/dev/null))"
    local cfg="$VI_RUN/vmmi-gobgp.toml" P n ns as e
    { nbr_block 10.99.0.4 65004; nbr_block 10.99.0.5 65001; } | write_vmmi_conf "$cfg"
    gobgp_setup vi-ge 4 65004 || { fail "gobgp: setup (gobgpd eBGP)" "$(tail -5 "$(gobgp_dir vi-ge)/gobgpd.log")"; return; }
    gobgp_setup vi-gi 5 65001 || { fail "gobgp: setup (gobgpd iBGP)" "$(tail -5 "$(gobgp_dir vi-gi)/gobgpd.log")"; return; }
    vmmi_start "$cfg" "$VI_RUN/vmmi-gobgp.log" || { fail "gobgp: vmmi starts" "$(tail -5 "$VI_RUN/vmmi-gobgp.log")"; return; }
    # each pass of a loop: n = router number, ns, as, P = assertion prefix, e = expected AS path at GoBGP
    for_each() { # sets globals for router $1
        n="$1"
        if [ "$n" = 4 ]; then ns=vi-ge; as=65004; P=gobgp-ebgp; else ns=vi-gi; as=65001; P=gobgp-ibgp; fi
    }

    # ---------------------------------------------------------------- 1. sessions
    for n in 4 5; do
        for_each "$n"
        check "$P: [1] GoBGP: session with vmmi Established" 40 gobgp_nbr "$ns" "[conf.neighbor_address=$VMMI_IP]/state/session_state=6"
        check "$P: [1] vmmi: neighbor Established, both families negotiated, $([ $n = 5 ] && echo iBGP || echo eBGP)" 10 \
            vmmi_nbr "[name=10.99.0.$n]/state=Established" "[name=10.99.0.$n]/negotiated/families~l2vpn-evpn" \
            "[name=10.99.0.$n]/negotiated/families~ipv4-unicast" \
            "[name=10.99.0.$n]/negotiated/ibgp=$([ $n = 5 ] && echo true || echo false)" "[name=10.99.0.$n]/remote_asn=$as"
        check "$P: [1] vmmi: GoBGP's graceful-restart capability seen with both families" 5 \
            vmmi_nbr "[name=10.99.0.$n]/negotiated/peer_gr/families~\"l2vpn-evpn\"" \
            "[name=10.99.0.$n]/negotiated/peer_gr/families~\"ipv4-unicast\""
    done

    # ---------------------------------------------------------------- 2. vmmi announces
    announce_all || fail "gobgp: [2] vmmi route announce (API call)" "see $VI_RUN/vmmi-gobgp.log"
    for n in 4 5; do
        for_each "$n"
        local xa=(aspath=65001); [ "$n" = 5 ] && xa=(aspath= lp=100)
        check "$P: [2] GoBGP shows vmmi's type-2 MAC-only (RD, MAC, VNI 100, RT, ET:8, no MM, next hop)" "$T" \
            gobgp_has "$ns" evpn "${S2_MAC[@]}" -- "${E2_MAC[@]}" from=$VMMI_IP "${xa[@]}"
        check "$P: [2] GoBGP shows vmmi's type-2 MAC+IP (IP, VNI 100, RT, ET:8, MM:3)" "$T" \
            gobgp_has "$ns" evpn "${S2_IP[@]}" -- "${E2_IP[@]}" from=$VMMI_IP "${xa[@]}"
        check "$P: [2] GoBGP shows vmmi's type-3 (PMSI ingress replication, label 100, tunnel id 10.255.0.1)" "$T" \
            gobgp_has "$ns" evpn "${S3[@]}" -- pmsi=6:100:$VMMI_LO ec~RT:65001:100 ec~ET:8 nh=$VMMI_LO from=$VMMI_IP
        check "$P: [2] GoBGP shows vmmi's type-5 (10.2.0.0/24, label 5000, RT, ET:8, Router's MAC)" "$T" \
            gobgp_has "$ns" evpn "${S5[@]}" -- "${E5[@]}" from=$VMMI_IP
        check "$P: [2] GoBGP shows vmmi's IPv4 unicast 10.50.0.0/24 (next hop $VMMI_IP)" "$T" \
            gobgp_has "$ns" ipv4 "${S4[@]}" -- nh=$VMMI_IP from=$VMMI_IP
    done

    # ---------------------------------------------------------------- 3. GoBGP announces
    for n in 4 5; do
        for_each "$n"
        local errs=""
        g_mac "$ns" "$n" "$as" >/dev/null || errs+=" macadv-mac-only"
        g_ip "$ns" "$n" "$as" >/dev/null || errs+=" macadv-mac-ip"
        g_mm "$ns" "$n" "$as" 4 || errs+=" gRPC-macadv-mm4"
        g_imet "$ns" "$n" "$as" >/dev/null || errs+=" multicast"
        g_pfx "$ns" "$n" "$as" >/dev/null || errs+=" prefix"
        for p in 10.80 10.81 10.82; do g_v4 "$ns" "$n" "$p.$n.0/24" >/dev/null || errs+=" ipv4-$p"; done
        [ -z "$errs" ] || fail "$P: [3] GoBGP accepts the routes to originate (gobgp CLI / gRPC)" "failed:$errs"
    done
    for n in 4 5; do
        for_each "$n"
        local ya=(aspath=65004); [ "$n" = 5 ] && ya=(aspath= lp=100)
        local from="from=10.99.0.$n" rd="rd=10.255.0.$n:100" lo="10.255.0.$n"
        check "$P: [3] vmmi shows GoBGP's type-2 MAC-only (VNI 100, RT $as:100, ET:8, next hop $lo)" "$T" \
            vmmi_has family=evpn type=2 "$rd" mac="02:cc:0$n:00:00:01" ip= -- label=100 "ec~RT:$as:100" ec~ET:8 ec!~MM: \
            nh="$lo" "$from" "${ya[@]}"
        check "$P: [3] vmmi shows GoBGP's type-2 MAC+IP" "$T" \
            vmmi_has family=evpn type=2 "$rd" mac="02:cc:0$n:00:00:02" ip="10.100.1.$n" -- label=100 "ec~RT:$as:100" ec~ET:8 \
            nh="$lo" "$from"
        check "$P: [3] vmmi shows GoBGP's type-2 with MAC Mobility seq 4 (gRPC)" "$T" \
            vmmi_has family=evpn type=2 "$rd" mac="02:cc:0$n:00:00:03" ip="10.100.3.$n" -- label=100 ec~MM:4 "ec~RT:$as:100" "$from"
        check "$P: [3] vmmi shows GoBGP's type-3 (PMSI type 6, label 100, tunnel id $lo)" "$T" \
            vmmi_has family=evpn type=3 "$rd" ip="$lo" -- "pmsi=6:100:$lo" "ec~RT:$as:100" ec~ET:8 nh="$lo" "$from"
        check "$P: [3] vmmi shows GoBGP's type-5 10.70.$n.0/24 (label 5000, RT $as:5000, Router's MAC)" "$T" \
            vmmi_has family=evpn type=5 rd="10.255.0.$n:5000" prefix="10.70.$n.0/24" -- label=5000 "ec~RT:$as:5000" ec~ET:8 \
            "ec~Rmac:02:cc:ff:00:00:0$n" nh="$lo" "$from"
        check "$P: [3] vmmi shows GoBGP's IPv4 unicast 10.80.$n.0/24 (next hop 10.99.0.$n)" "$T" \
            vmmi_has family=ipv4 prefix="10.80.$n.0/24" -- nh="10.99.0.$n" "$from" "${ya[@]}"
    done
    for n in 4 5; do
        for_each "$n"
        check "$P: [3] vmmi: neighbor prefixes_received agree with the paths from it in the RIB" 5 vmmi_counts_agree "10.99.0.$n"
    done
    check_now "gobgp-ibgp: [3] vmmi does not send the iBGP peer's own routes back to it (RFC 4271 §9.2)" \
        gobgp_lacks vi-gi evpn rd=10.255.0.5:100 from=$VMMI_IP
    check "gobgp-ibgp: [3] vmmi relays the eBGP peer's type-2 MAC+IP to the iBGP peer (next hop = VTEP 10.255.0.4 unchanged)" "$T" \
        gobgp_has vi-gi evpn family=evpn type=2 rd=10.255.0.4:100 mac=02:cc:04:00:00:02 -- from=$VMMI_IP nh=10.255.0.4 aspath=65004 lp=100
    check "gobgp-ebgp: [3] vmmi relays the iBGP peer's type-2 MAC+IP to the eBGP peer (next hop = VTEP 10.255.0.5 unchanged)" "$T" \
        gobgp_has vi-ge evpn family=evpn type=2 rd=10.255.0.5:100 mac=02:cc:05:00:00:02 -- from=$VMMI_IP nh=10.255.0.5 aspath=65001

    # ---------------------------------------------------------------- 4. withdraw / re-advertise
    withdraw "$R2_MAC"; withdraw "$R5"; withdraw "$R4"; announce "$R2_IP4"
    for n in 4 5; do
        for_each "$n"
        check "$P: [4] vmmi withdrew type-2 MAC-only -> gone at GoBGP" "$T" gobgp_lacks "$ns" evpn "${S2_MAC[@]}"
        check "$P: [4] vmmi withdrew type-5 -> gone at GoBGP" "$T" gobgp_lacks "$ns" evpn "${S5[@]}"
        check "$P: [4] vmmi withdrew IPv4 10.50.0.0/24 -> gone at GoBGP" "$T" gobgp_lacks "$ns" ipv4 "${S4[@]}"
        check "$P: [4] vmmi re-advertised MAC+IP with MAC Mobility seq 4 -> GoBGP shows MM:4" "$T" \
            gobgp_has "$ns" evpn "${S2_IP[@]}" -- ec~MM:4 ec!~MM:3 from=$VMMI_IP
    done
    for n in 4 5; do
        for_each "$n"
        g_ip "$ns" "$n" "$as" del >/dev/null; g_v4 "$ns" "$n" "10.82.$n.0/24" del >/dev/null; g_mm "$ns" "$n" "$as" 5
        check "$P: [4] GoBGP withdrew its type-2 MAC+IP -> gone at vmmi" "$T" \
            vmmi_lacks family=evpn type=2 mac="02:cc:0$n:00:00:02"
        check "$P: [4] GoBGP withdrew IPv4 10.82.$n.0/24 -> gone at vmmi" "$T" vmmi_lacks family=ipv4 prefix="10.82.$n.0/24"
        check "$P: [4] GoBGP re-advertised its MAC with MAC Mobility seq 5 -> vmmi shows MM:5" "$T" \
            vmmi_has family=evpn type=2 mac="02:cc:0$n:00:00:03" from="10.99.0.$n" -- ec~MM:5 ec!~MM:4
    done

    # ---------------------------------------------------------------- 5. GoBGP restarts (SIGKILL, then gobgpd -r)
    gobgp_kill vi-ge; gobgp_kill vi-gi
    for n in 4 5; do
        for_each "$n"
        local from="from=10.99.0.$n"
        check "$P: [5] gobgpd killed: vmmi sees the session down" 10 vmmi_nbr "[name=10.99.0.$n]/state!=Established"
        check_now "$P: [5] during GoBGP's restart vmmi keeps its routes, stale: type-2 MAC-only" \
            vmmi_has family=evpn type=2 mac="02:cc:0$n:00:00:01" "$from" -- stale=true
        check_now "$P: [5] ... stale: type-2 with MM:5" vmmi_has family=evpn type=2 mac="02:cc:0$n:00:00:03" "$from" -- stale=true ec~MM:5
        check_now "$P: [5] ... stale: type-3" vmmi_has family=evpn type=3 ip="10.255.0.$n" "$from" -- stale=true
        check_now "$P: [5] ... stale: type-5" vmmi_has family=evpn type=5 prefix="10.70.$n.0/24" "$from" -- stale=true
        check_now "$P: [5] ... stale: IPv4 10.80.$n.0/24 and 10.81.$n.0/24" \
            vmmi_has family=ipv4 prefix="10.81.$n.0/24" "$from" -- stale=true
        check_now "$P: [5] ... neighbor stale counts > 0 for both families" \
            vmmi_nbr "[name=10.99.0.$n]/stale/l2vpn-evpn!=0" "[name=10.99.0.$n]/stale/ipv4-unicast!=0"
    done
    # back with -r (restart state, F bits); it re-originates all its routes but IPv4 10.81.N.0/24
    for n in 4 5; do
        for_each "$n"
        gobgp_start "$ns" -r || fail "$P: [5] gobgpd restarts" "$(tail -3 "$(gobgp_dir "$ns")/gobgpd.log")"
        g_mac "$ns" "$n" "$as" >/dev/null; g_mm "$ns" "$n" "$as" 5; g_imet "$ns" "$n" "$as" >/dev/null
        g_pfx "$ns" "$n" "$as" >/dev/null; g_v4 "$ns" "$n" "10.80.$n.0/24" >/dev/null
    done
    for n in 4 5; do
        for_each "$n"
        local from="from=10.99.0.$n"
        check "$P: [5] GoBGP back (R bit): Established again, stale routes swept after End-of-RIB (stale counts 0)" 40 \
            vmmi_nbr "[name=10.99.0.$n]/state=Established" "[name=10.99.0.$n]/stale={}" \
            "[name=10.99.0.$n]/negotiated/peer_gr/restart_flags~8"
        check "$P: [5] after End-of-RIB: type-2 MAC-only fresh" "$T" \
            vmmi_has family=evpn type=2 mac="02:cc:0$n:00:00:01" "$from" -- stale=false
        check "$P: [5] after End-of-RIB: type-2 MM:5 fresh" "$T" vmmi_has family=evpn type=2 mac="02:cc:0$n:00:00:03" "$from" -- stale=false ec~MM:5
        check "$P: [5] after End-of-RIB: type-3 fresh" "$T" vmmi_has family=evpn type=3 ip="10.255.0.$n" "$from" -- stale=false
        check "$P: [5] after End-of-RIB: type-5 fresh" "$T" vmmi_has family=evpn type=5 prefix="10.70.$n.0/24" "$from" -- stale=false
        check "$P: [5] after End-of-RIB: IPv4 10.80.$n.0/24 fresh" "$T" vmmi_has family=ipv4 prefix="10.80.$n.0/24" "$from" -- stale=false
        check_now "$P: [5] after End-of-RIB: IPv4 10.81.$n.0/24 (not re-originated) gone" vmmi_lacks family=ipv4 prefix="10.81.$n.0/24" "$from"
        check "$P: [5] restarted GoBGP got vmmi's routes again (MAC+IP, MM:4)" "$T" \
            gobgp_has "$ns" evpn "${S2_IP[@]}" -- ec~MM:4 from=$VMMI_IP stale=false
    done

    # ---------------------------------------------------------------- 6. vmmi restarts (SIGTERM)
    # GoBGP 3.10 dereferences nil (panic in TableManager.handleMacMobility, table_manager.go:257) when a
    # GR peer's EVPN type-2 routes are marked stale while GoBGP has type-2 routes of its own: withdraw
    # GoBGP's own type-2 routes first so that the helper behaviour can be observed at all.
    for n in 4 5; do
        for_each "$n"
        g_mac "$ns" "$n" "$as" del >/dev/null; g_mm "$ns" "$n" "$as" withdraw
        check "$P: [6] vmmi: GoBGP did not set the N bit, so no RFC 8538 (SIGTERM closes TCP without NOTIFICATION)" 0 \
            vmmi_nbr "[name=10.99.0.$n]/negotiated/gr_notification=false"
    done
    local t0=$SECONDS
    vmmi_stop
    check "gobgp: [6] vmmi exits within 10 s of SIGTERM" 0 test $((SECONDS - t0)) -le 10
    for n in 4 5; do
        for_each "$n"
        check "$P: [6] GoBGP sees the session with vmmi down" 10 gobgp_nbr "$ns" "[conf.neighbor_address=$VMMI_IP]/state/session_state!=6"
        check "$P: [6] during vmmi's restart GoBGP keeps vmmi's routes as GR helper, stale: type-2 MAC+IP" 3 \
            gobgp_has "$ns" evpn "${S2_IP[@]}" from=$VMMI_IP -- stale=true ec~MM:4
        check_now "$P: [6] ... stale: type-3" gobgp_has "$ns" evpn "${S3[@]}" -- from=$VMMI_IP stale=true
        check_now "$P: [6] gobgpd still running" gobgp_alive "$ns"
    done
    # the operator's restart: `vmmi run --graceful-restart` (R bit; F bits are always set), and the
    # routes re-announced at once, so that they go out with the initial table before End-of-RIB
    vmmi_start "$cfg" "$VI_RUN/vmmi-gobgp.log" --graceful-restart || { fail "gobgp: [6] vmmi starts again" "$(tail -5 "$VI_RUN/vmmi-gobgp.log")"; return; }
    announce "$R2_MAC"; announce "$R2_IP4"; announce "$R3"; announce "$R5"; announce "$R4"
    check "gobgp: [6] vmmi holds its re-announced routes" 5 vmmi_has family=ipv4 prefix=10.50.0.0/24 from=local
    for n in 4 5; do
        for_each "$n"
        check "$P: [6] vmmi back: session Established again (GoBGP holds reconnects for a few s)" 40 \
            gobgp_nbr "$ns" "[conf.neighbor_address=$VMMI_IP]/state/session_state=6"
    done
    for n in 4 5; do
        for_each "$n"
        check "$P: [6] after re-announce GoBGP has vmmi's type-2 MAC+IP fresh (MM:4)" "$T" \
            gobgp_has "$ns" evpn "${S2_IP[@]}" -- ec~MM:4 from=$VMMI_IP stale=false
        check "$P: [6] ... type-2 MAC-only fresh" "$T" gobgp_has "$ns" evpn "${S2_MAC[@]}" -- "${E2_MAC[@]}" from=$VMMI_IP stale=false
        check "$P: [6] ... type-3 fresh" "$T" gobgp_has "$ns" evpn "${S3[@]}" -- pmsi=6:100:$VMMI_LO from=$VMMI_IP stale=false
        check "$P: [6] ... type-5 fresh" "$T" gobgp_has "$ns" evpn "${S5[@]}" -- "${E5[@]}" from=$VMMI_IP stale=false
        check "$P: [6] ... IPv4 10.50.0.0/24 fresh" "$T" gobgp_has "$ns" ipv4 "${S4[@]}" -- from=$VMMI_IP stale=false
        check "$P: [6] vmmi relearned GoBGP's routes (type-3, type-5) after its restart" "$T" \
            vmmi_has family=evpn type=5 prefix="10.70.$n.0/24" from="10.99.0.$n" -- stale=false
    done
}

suite_gobgp_down() {
    vmmi_stop
    gobgp_stop vi-ge; gobgp_stop vi-gi
    del_ns vi-ge; del_ns vi-gi
}
