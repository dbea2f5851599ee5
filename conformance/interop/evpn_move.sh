# shellcheck shell=bash
# evpn-move suite (issue 7, live): one VM moving between an FRR 8.4 VTEP and a vmmi VTEP.
#
#   vi-v   vmmi  10.99.0.1 / lo 10.255.0.1 (VTEP)  AS 65001, memory dataplane, [[vni]] 100,
#                [mobility] dad_max_moves = 3 in 180 s (state file in $VI_RUN, fresh per run)
#   vi-mf  FRR   10.99.0.8 / lo 10.255.0.8 (VTEP)  AS 65001 (iBGP), zebra + bgpd, advertise-all-vni,
#                br100 + vxlan100 (nolearning, bridge-port learning off), no SVI, IPv6 off
#   vi-mvm the VM: eth0 $MV_MAC $MV_IP/24, a veth whose peer (vmp) is plugged into vi-mf's br100
#                  while the VM lives at FRR; IPv6 off so that it stays silent unless we GARP
#
# FRR learns the VM from the kernel bridge on a gratuitous ARP (arping in the background: it
# sends at once but exits only after 1 s). A move to vmmi is `vmmi vm attach` (the orchestrator
# hook) with no frame from the VM at all: the "silent VM" FRR 8.4 itself never converges on.
# Assertions:
#   [1] session; FRR has vmmi's type 3 and the flood entry; vmmi's flood list has FRR's VTEP
#   [2] VM at FRR (+GARP): vmmi shows the MAC remote at FRR's VTEP, seq 0
#   [3] FRR -> vmmi (veth deleted, vm attach): FRR's best path is vmmi's with MM:1, FRR's kernel
#       FDB points at vmmi, FRR withdrew its own route
#   [4] vmmi -> FRR (veth back + GARP while vmmi still has the MAC, then vm detach): FRR advertises
#       MM:2; vmmi follows and withdrew (the other order gives seq 0 from FRR: see mv_to_frr)
#   [5] FRR -> vmmi again: MM:3; vmmi's move log shows the three moves, each with its own steps
#   [6] silent VM: ms from `vm attach` to FRR's kernel FDB pointing at vmmi (bridge fdb polled every
#       5 ms), for the moves of [3] and [5]
#   [7] DAD: the third move ([5]) freezes the MAC while local at vmmi; vm detach -> vmmi withdraws
#       (FRR 8.4's own stale-route bug must not happen); the VM back at FRR -> vmmi's memory FDB
#       follows to FRR although the MAC is frozen; dad clear -> duplicate false
# Sourced by run.sh.

MF_NS=vi-mf
MF_IP=10.99.0.8
MF_LO=10.255.0.8
MVM_NS=vi-mvm
MV_MAC=02:00:00:00:0a:01
MV_IP=10.100.0.50
MV_PORT=vmp

mv_frr_conf() {
    cat <<EOF
frr defaults datacenter
hostname vi-mf
log timestamp precision 3
!
router bgp $VMMI_AS
 bgp router-id $MF_LO
 no bgp default ipv4-unicast
 neighbor $VMMI_IP remote-as $VMMI_AS
 neighbor $VMMI_IP timers 3 9
 neighbor $VMMI_IP timers connect 1
 !
 address-family l2vpn evpn
  neighbor $VMMI_IP activate
  advertise-all-vni
 exit-address-family
exit
!
EOF
}

mv_setup() {
    local d N="ip -n $MF_NS"
    d="$(frr_dir "$MF_NS")"
    veth_ns "$MF_NS" "$MF_IP" "$MF_LO" || return 1
    ip netns exec "$MF_NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    $N link add br100 type bridge stp_state 0 mcast_snooping 0 || return 1
    $N link add vxlan100 type vxlan id 100 local "$MF_LO" dstport 4789 nolearning || return 1
    $N link set vxlan100 master br100
    ip netns exec "$MF_NS" bridge link set dev vxlan100 learning off neigh_suppress off
    $N link set br100 up; $N link set vxlan100 up
    ip netns add "$MVM_NS" || return 1
    ip netns exec "$MVM_NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$MVM_NS" link set lo up
    mkdir -p "$d"; rm -f "$d"/*.log "$d"/*.out
    printf 'hostname vi-mf\nlog timestamp precision 3\n!\n' >"$d/zebra.conf"
    mv_frr_conf >"$d/bgpd.conf"
    chown -R frr:frr "$d"; chmod 0750 "$d"
    frr_start_zebra "$MF_NS" && frr_start_bgpd "$MF_NS"
}

# the VM's veth: created in the VM namespace, peer ($MV_PORT) in FRR's namespace, not yet bridged
# (its carrier stays down, so the VM cannot send anything until mv_plug)
mv_vm_veth() {
    ip -n "$MVM_NS" -batch - <<EOB
link add eth0 address $MV_MAC type veth peer name $MV_PORT netns $MF_NS
addr add $MV_IP/24 dev eth0
link set eth0 up
EOB
}
# mv_plug: the VM appears at FRR (port into br100, up) and announces itself (GARP, background)
mv_plug() {
    ip -n "$MF_NS" link show "$MV_PORT" >/dev/null 2>&1 || mv_vm_veth || return 1
    ip -n "$MF_NS" link set "$MV_PORT" master br100 up || return 1
    kill_pidfile "$VI_RUN/mv-garp.pid" 1
    nohup timeout 5 ip netns exec "$MVM_NS" arping -q -c1 -U -I eth0 "$MV_IP" </dev/null >/dev/null 2>&1 &
    echo $! >"$VI_RUN/mv-garp.pid"; disown "$!" 2>/dev/null || true
}
# mv_unplug: the VM leaves FRR (its port deleted: the bridge flushes the MAC, zebra withdraws)
mv_unplug() { ip -n "$MF_NS" link del "$MV_PORT" 2>/dev/null; return 0; }

mv_vm() { V vm "$1" --vni 100 --mac "$MV_MAC" --api "$API" >/dev/null; }
mv_macs() { V show macs --json --vni 100 --api "$API"; }
mv_mac() { mv_macs | "$PY" "$CHECK" json "${@/#/[mac=$MV_MAC]/}"; }   # mv_mac 'location/at=local' ...
mv_frr_macip() { FV "$MF_NS" -c 'show bgp l2vpn evpn route type macip json'; }
mv_frr_has() { mv_frr_macip | "$PY" "$CHECK" routes frr-evpn family=evpn type=2 mac="$MV_MAC" "$@"; }
mv_frr_lacks() { mv_frr_macip | "$PY" "$CHECK" routes frr-evpn --absent family=evpn type=2 mac="$MV_MAC" "$@"; }

mv_vnis() { V show vnis --json --api "$API" | "$PY" "$CHECK" json "$@"; }

# FRR's kernel FDB points the VM's MAC at vmmi when vxlan100 has both zebra's VXLAN entry
# (`MAC dst VTEP self extern_learn`) and the bridge's entry on the vxlan port (`MAC extern_learn
# master br100`). Both, because FRR 8.4 leaves a stale `MAC dst VTEP self` entry behind when a
# remote MAC turns local (move lab bug 2): only the bridge entry is new after a move back.
# mv_fdb_at_vmmi: that state now (prints the FDB when not). MV_POLL (bash -c MV_POLL _ MAC VTEP
# SECONDS FIFO, in FRR's namespace): run `bridge fdb show dev vxlan100` every 5 ms (the wait is
# `read -t` on an idle FIFO, so a poll forks `bridge` only; lines are matched in bash) until that
# state; prints "HIT_US POLLS FIRST_US" (microsecond wall clock of the matching poll, number of
# polls, time of the first) or "- POLLS FIRST_US" after SECONDS. One process, bounded.
MV_FDB_SCAN='a=; b=
    while read -r l; do
        case "$l" in "$1 dst $2 self"*) a=1 ;; "$1 "*"master br100"*) [ "${l#* dst }" = "$l" ] && b=1 ;; esac
    done <<<"$(bridge fdb show dev vxlan100)"'
mv_fdb_at_vmmi() {
    ip netns exec "$MF_NS" bash -c "$MV_FDB_SCAN"'
        [ -n "$a" ] && [ -n "$b" ] || { bridge fdb show dev vxlan100; exit 1; }' _ "$MV_MAC" "$VMMI_LO"
}
mv_fdb_stale_self() { # the VXLAN `dst vmmi self` entry alone (FRR's stale one when no bridge entry)
    ip netns exec "$MF_NS" bridge fdb show dev vxlan100 | grep -q -- "^$MV_MAC dst $VMMI_LO self"
}
MV_POLL='exec 9<>"$4"
    first=${EPOCHREALTIME/./}; end=$((first + $3 * 1000000)); n=0
    while :; do
        n=$((n + 1)); now=${EPOCHREALTIME/./}
        '"$MV_FDB_SCAN"'
        if [ -n "$a" ] && [ -n "$b" ]; then echo "$now $n $first"; exit 0; fi
        [ "$now" -ge "$end" ] && { echo "- $n $first"; exit 1; }
        read -r -t 0.005 -u 9 _
    done'
mv_fdb_not_vmmi() {
    local f; f="$(ip netns exec "$MF_NS" bridge fdb show dev vxlan100)"
    ! grep -qE -- "^$MV_MAC " <<<"$f" || { echo "$f" | grep -E -- "^$MV_MAC "; return 1; }
}
# mv_moves_sane N: vmmi's move log (GET /v1/moves) has the MAC's first N moves, alternating between
# FRR's VTEP and local starting FRR -> vmmi, seq 1..N, and every step of a move happened before
# the MAC's next move started (a step is part of the move it is logged on)
mv_moves_sane() {
    V show moves --json --api "$API" | "$PY" -c '
import json, sys
mac, frr, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ms = sorted((m for m in json.load(sys.stdin) if m["mac"] == mac and m["vni"] == 100), key=lambda m: m["id"])
bad = []
if len(ms) < n:
    bad.append("%d moves logged, want %d" % (len(ms), n))
loc = lambda l: "local" if l.get("at") == "local" else l.get("vtep")
for i, m in enumerate(ms[:n]):
    want = (frr, "local") if i % 2 == 0 else ("local", frr)
    if (loc(m["from"]), loc(m["to"]), m["seq"]) != want + (i + 1,):
        bad.append("move %d is %s -> %s seq %s, want %s -> %s seq %d" % (m["id"], loc(m["from"]), loc(m["to"]), m["seq"], want[0], want[1], i + 1))
    if i + 1 < len(ms):
        nxt = m["age_us"] - ms[i + 1]["age_us"]   # the next move started this long after this one
        # (2 us of slack: the log rounds each time to microseconds on its own)
        late = ["%s at +%.3f ms" % (s["step"], s["after_us"] / 1000) for s in m["steps"] if s["after_us"] + 2 >= nxt]
        if late:
            bad.append("move %d (%s -> %s, seq %d): steps %s are from move %d, which started at +%.3f ms"
                       % (m["id"], loc(m["from"]), loc(m["to"]), m["seq"], ", ".join(late), ms[i + 1]["id"], nxt / 1000))
if bad:
    print("; ".join(bad))
    sys.exit(1)' "$MV_MAC" "$MF_LO" "$1"
}
mv_snapshot() { # mv_snapshot TAG: vmmi's and FRR's view of the MAC into $VI_RUN (evidence for reports)
    {
        echo "== macs"; mv_macs
        echo "== explain"; V explain mac "$MV_MAC" --vni 100 --json --api "$API" 2>&1
        echo "== moves"; V show moves --json --api "$API" 2>&1
        echo "== vmmi routes (evpn)"; V show routes --json --family evpn --api "$API" 2>&1
        echo "== FRR macip"; mv_frr_macip
        echo "== FRR evpn mac"; FV "$MF_NS" -c "show evpn mac vni 100 mac $MV_MAC json"
        echo "== FRR kernel fdb (br100)"; ip netns exec "$MF_NS" bridge fdb show br br100
    } >"$VI_RUN/evpn-move-$1.txt" 2>&1
}

# mv_to_vmmi STEP SEQ: the VM leaves FRR (its port deleted) and appears at vmmi by `vmmi vm attach`
# alone — no frame from the VM (the silent-VM case). FRR's kernel FDB is polled every 5 ms from
# just before the attach, for the time from the attach command to FRR's FDB pointing at vmmi.
mv_to_vmmi() {
    local step="$1" seq="$2" P="evpn-move: [$1]" pf="$VI_RUN/mv-poll" t0 t1 hit n first ms per
    mv_unplug
    if mv_fdb_at_vmmi >/dev/null; then
        log "note ($step): before the attach FRR's kernel FDB already has $MV_MAC at vmmi"
    elif mv_fdb_stale_self; then
        log "note ($step): FRR left a stale '$MV_MAC dst $VMMI_LO self extern_learn' on vxlan100 (no bridge entry; FRR 8.4 keeps it from before the MAC turned local at FRR)"
    fi
    rm -f "$pf.fifo"; mkfifo "$pf.fifo"
    ip netns exec "$MF_NS" bash -c "$MV_POLL" _ "$MV_MAC" "$VMMI_LO" "$T" "$pf.fifo" >"$pf.out" &
    echo $! >"$pf.pid"
    sleep 0.05
    t0=${EPOCHREALTIME/./}
    mv_vm attach || fail "$P vmmi vm attach (CLI)" "$(tail -3 "$VI_RUN/vmmi-move.log")"
    t1=${EPOCHREALTIME/./}
    wait "$(cat "$pf.pid")" 2>/dev/null; rm -f "$pf.pid"
    read -r hit n first <"$pf.out"
    if [ -n "$hit" ] && [ "$hit" != - ] && [ "$hit" -ge "$t0" ]; then
        ms="$(( (hit - t0) / 1000 )).$(( (hit - t0) / 100 % 10 ))"
        per=$(( (hit - first) / (n > 1 ? n - 1 : 1) ))
        MV_TIMES+=("$ms")
        pass "evpn-move: [6] silent VM ($step): \`vmmi vm attach\` alone -> FRR's kernel FDB points at vmmi after $ms ms (the CLI returned after $(( (t1 - t0) / 1000 )) ms; $n polls, one per $(( per / 1000 )).$(( per / 100 % 10 )) ms)"
    elif [ -n "$hit" ] && [ "$hit" != - ]; then
        fail "evpn-move: [6] silent VM ($step): FRR's kernel FDB pointed at vmmi before the attach (stale entry?)" \
            "$(ip netns exec "$MF_NS" bridge fdb show dev vxlan100)"
    else
        fail "evpn-move: [6] silent VM ($step): FRR's kernel FDB never pointed at vmmi within $T s of \`vmmi vm attach\`" \
            "$(ip netns exec "$MF_NS" bridge fdb show dev vxlan100)"
    fi
    check "$P FRR -> vmmi: FRR's best path for the MAC is vmmi's (RD 10.255.0.1:100, next hop $VMMI_LO) with MM seq $seq" "$T" \
        mv_frr_has best=true -- from=$VMMI_IP rd=10.255.0.1:100 nh=$VMMI_LO "ec~MM:$seq "
    check "$P FRR -> vmmi: FRR's kernel FDB has the MAC at vmmi (dst $VMMI_LO self + bridge entry on vxlan100)" "$T" mv_fdb_at_vmmi
    check "$P FRR -> vmmi: FRR withdrew its own route for the MAC" "$T" mv_frr_lacks from=local
    check "$P FRR -> vmmi: vmmi shows the MAC local, seq $seq" "$T" mv_mac location/at=local seq="$seq"
}

# mv_to_frr STEP SEQ: the VM appears at FRR (port + GARP) while vmmi still has it: FRR learns it
# from the kernel with vmmi's route in its table and must advertise vmmi's seq + 1; vmmi must
# withdraw on that higher sequence (RFC 7432 §15.1). Then the orchestrator detaches it from vmmi.
# (Detaching first does not work with FRR as the new VTEP: vmmi's withdrawal reaches FRR in a few
# ms, zebra forgets the remote MAC after its 10 ms work-queue hold, and the MAC it then learns
# is advertised with no MAC Mobility community at all, i.e. seq 0; see [7].)
mv_to_frr() {
    local step="$1" seq="$2" P="evpn-move: [$1]"
    mv_plug || fail "$P the VM's port into FRR's br100" ""
    check "$P vmmi -> FRR: FRR advertises the MAC itself, best path, MM seq $seq (vmmi's + 1)" "$T" \
        mv_frr_has from=local -- best=true "ec~MM:$seq "
    check "$P vmmi -> FRR: vmmi follows: the MAC remote at FRR's VTEP $MF_LO, seq $seq, memory FDB at $MF_LO" "$T" \
        mv_mac location/at=remote location/vtep=$MF_LO seq="$seq" fdb=$MF_LO
    check "$P vmmi -> FRR: vmmi withdrew its type 2 (no local path in its RIB)" "$T" \
        vmmi_lacks family=evpn type=2 mac="$MV_MAC" from=local
    check "$P vmmi -> FRR: FRR's RIB no longer has vmmi's path for the MAC" "$T" mv_frr_lacks from=$VMMI_IP
    mv_vm detach || fail "$P vmmi vm detach (CLI)" "$(tail -3 "$VI_RUN/vmmi-move.log")"
    check "$P after \`vmmi vm detach\` (the VM had already left) vmmi still has the MAC remote at FRR, seq $seq" 2 \
        mv_mac location/at=remote location/vtep=$MF_LO seq="$seq"
}

suite_evpn_move() {
    log "== evpn-move suite (FRR $(dpkg-query -W -f '${Version}' frr 2>/dev/null), VM MAC $MV_MAC)"
    local cfg="$VI_RUN/vmmi-move.toml" moves
    MV_TIMES=()
    printf '%s\n' '[[neighbor]]' "address = \"$MF_IP\"" "remote_asn = $VMMI_AS" 'families = ["l2vpn-evpn"]' \
        'connect_retry = 1' 'hold_time = 9' '[[vni]]' 'vni = 100' '[mobility]' 'dad_max_moves = 3' \
        'dad_window_secs = 180' "state_file = \"$VI_RUN/vmmi-move-mobility.json\"" | write_vmmi_conf "$cfg"
    mv_setup || { fail "evpn-move: setup (FRR VTEP)" "$(tail -5 "$(frr_dir "$MF_NS")"/*.out 2>/dev/null)"; return; }
    vmmi_start "$cfg" "$VI_RUN/vmmi-move.log" || { fail "evpn-move: vmmi starts" "$(tail -5 "$VI_RUN/vmmi-move.log")"; return; }

    # ---------------------------------------------------------------- 1. session, type 3, flood lists
    check "evpn-move: [1] FRR: iBGP session with vmmi Established (l2vpn-evpn)" 30 \
        frr_json "$MF_NS" 'show bgp summary json' "l2VpnEvpn/peers/$VMMI_IP/state=Established"
    check "evpn-move: [1] vmmi: neighbor $MF_IP Established (iBGP, l2vpn-evpn)" 10 \
        vmmi_nbr "[name=$MF_IP]/state=Established" "[name=$MF_IP]/negotiated/ibgp=true" \
        "[name=$MF_IP]/negotiated/families~l2vpn-evpn"
    check "evpn-move: [1] FRR shows vmmi's type 3 (RD 10.255.0.1:100, PMSI ingress replication, VNI 100)" "$T" \
        frr_has "$MF_NS" evpn family=evpn type=3 rd=10.255.0.1:100 ip=$VMMI_LO -- from=$VMMI_IP pmsi=6:100 ec~RT:65001:100
    check "evpn-move: [1] FRR's zebra installs the flood entry 00:00:00:00:00:00 dst $VMMI_LO on vxlan100" "$T" \
        fdb_has "$MF_NS" "^00:00:00:00:00:00 dst ${VMMI_LO//./\\.} self permanent"
    check "evpn-move: [1] vmmi's flood list for VNI 100 has FRR's VTEP $MF_LO (GET /v1/vnis)" "$T" \
        mv_vnis "[vni=100]/flood_list~\"$MF_LO\""

    # ---------------------------------------------------------------- 2. the VM starts at FRR
    mv_plug || fail "evpn-move: [2] the VM's port into FRR's br100" ""
    check "evpn-move: [2] VM at FRR (+GARP): vmmi shows the MAC remote at FRR's VTEP $MF_LO, seq 0, memory FDB at $MF_LO" "$T" \
        mv_mac location/at=remote location/vtep=$MF_LO seq=0 fdb=$MF_LO duplicate=false

    # ---------------------------------------------------------------- 3-6. moves both ways
    mv_to_vmmi 3 1
    mv_to_frr 4 2
    mv_to_vmmi 5 3
    mv_snapshot after-5
    check_now "evpn-move: [3-5] vmmi's move log (GET /v1/moves): 3 moves FRR -> vmmi -> FRR -> vmmi, seq 1-3, each move's steps before the next move" \
        mv_moves_sane 3

    # ---------------------------------------------------------------- 7. duplicate-address detection
    # dad_max_moves = 3: the moves of [3], [4] and [5] each had vmmi on one side. More round trips
    # only if vmmi has not flagged the MAC yet (bounded); it must end local at vmmi.
    moves=3
    while ! mv_mac duplicate=true location/at=local >/dev/null 2>&1 && [ "$moves" -lt 7 ]; do
        mv_to_frr "7, move $((moves + 1))" "$((moves + 1))"; mv_to_vmmi "7, move $((moves + 2))" "$((moves + 2))"
        moves=$((moves + 2))
    done
    check "evpn-move: [7] DAD: vmmi flags the MAC duplicate after $moves moves in 180 s (dad_max_moves 3), local at vmmi" 2 \
        mv_mac duplicate=true location/at=local
    check_now "evpn-move: [7] DAD: frozen, vmmi keeps what it advertised (FRR still has vmmi's MM:$moves)" \
        mv_frr_has from=$VMMI_IP -- best=true "ec~MM:$moves "
    mv_vm detach || fail "evpn-move: [7] vmmi vm detach (CLI)" "$(tail -3 "$VI_RUN/vmmi-move.log")"
    check "evpn-move: [7] DAD: the frozen MAC leaves vmmi (vm detach) -> vmmi withdraws it: gone from FRR's RIB (FRR 8.4's stale-route bug must not happen here)" "$T" \
        mv_frr_lacks from=$VMMI_IP
    check "evpn-move: [7] ... and FRR's kernel FDB has no entry for the MAC towards vmmi" "$T" mv_fdb_not_vmmi
    check_now "evpn-move: [7] ... and vmmi's RIB has no local type 2 for it" \
        vmmi_lacks family=evpn type=2 mac="$MV_MAC" from=local
    mv_snapshot after-7-detach
    mv_plug || fail "evpn-move: [7] the VM's port into FRR's br100" ""
    check "evpn-move: [7] DAD: the VM back at FRR (+GARP): FRR advertises it, best path (its own)" "$T" \
        mv_frr_has from=local -- best=true
    log "evpn-move: [7] FRR advertises the MAC after vmmi's withdrawal as: $(mv_frr_macip | "$PY" "$CHECK" dump frr-evpn | grep -F "\"mac\": \"$MV_MAC\"" | tr -d '{}"' | tr '\n' ' ')"
    check "evpn-move: [7] DAD: while frozen, vmmi follows the MAC to FRR (location remote at $MF_LO, memory FDB at $MF_LO: the frozen location is gone)" "$T" \
        mv_mac location/at=remote location/vtep=$MF_LO fdb=$MF_LO
    check_now "evpn-move: [7] ... and it is still flagged duplicate (frozen until \`vmmi dad clear\`)" mv_mac duplicate=true
    mv_snapshot after-7-frr
    V dad clear --vni 100 --mac "$MV_MAC" --api "$API" >/dev/null || fail "evpn-move: [7] vmmi dad clear (CLI)" "$(tail -3 "$VI_RUN/vmmi-move.log")"
    check "evpn-move: [7] DAD: \`vmmi dad clear\` -> duplicate false, the MAC still remote at FRR (memory FDB at $MF_LO)" "$T" \
        mv_mac duplicate=false location/at=remote location/vtep=$MF_LO fdb=$MF_LO
    check_now "evpn-move: [7] ... and vmmi advertises nothing for it (FRR's RIB has only FRR's own path)" mv_frr_lacks from=$VMMI_IP
    mv_snapshot end
    [ "${#MV_TIMES[@]}" -gt 0 ] && log "evpn-move: vm attach -> FRR kernel FDB at vmmi (ms): ${MV_TIMES[*]}"
}

suite_evpn_move_down() {
    kill_pidfile "$VI_RUN/mv-garp.pid" 2
    kill_pidfile "$VI_RUN/mv-poll.pid" 2
    vmmi_stop
    frr_stop "$MF_NS"
    del_ns "$MVM_NS"; del_ns "$MF_NS"
}
