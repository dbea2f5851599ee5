# shellcheck shell=bash
# Helpers for conformance/interop/run.sh: topology, vmmi, the three peers, assertions.
# Source it; do not execute. Self-contained: nothing outside this repository is used at run time.
#
# Topology (all names ours, prefix vi-; nothing leaves these namespaces):
#   vi-v   vmmi: bridge "core" 10.99.0.1/24, lo 10.255.0.1/32, AS 65001, API 127.0.0.1:50179
#   every peer namespace hangs off "core" by a veth (eth0 10.99.0.N/24, lo 10.255.0.N/32) with static
#   /32 routes between the loopbacks (VTEP addresses / router ids).
# shellcheck source=../lab/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../lab" && pwd)/lib.sh"

VI_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VI_ROOT="$(cd "$VI_DIR/../.." && pwd)"
VI_RUN="${VI_RUN:-/run/vmmi-interop}"
VMMI="${VMMI:-$VI_ROOT/target/debug/vmmi}"
CHECK="$VI_DIR/check.py"
NS_V=vi-v
VMMI_IP=10.99.0.1
VMMI_LO=10.255.0.1
VMMI_AS=65001
API=127.0.0.1:50179
T=${VI_WAIT:-15}          # default bound for one assertion's wait, seconds

# ------------------------------------------------------------------ results
N_PASS=0; N_FAIL=0; N_KNOWN=0; N_XPASS=0
FAILED_NAMES=()
pass() { N_PASS=$((N_PASS + 1)); printf 'PASS  %s\n' "$1"; }
fail() {
    N_FAIL=$((N_FAIL + 1)); FAILED_NAMES+=("$1")
    printf 'FAIL  %s\n' "$1"
    [ -n "${2:-}" ] && printf '%s\n' "${2:0:1500}" | sed 's/^/      | /'
    return 0
}
known() {
    N_KNOWN=$((N_KNOWN + 1))
    printf 'KNOWN-FAIL  %s\n      known vmmi bug: %s\n' "$1" "$2"
    [ -n "${3:-}" ] && printf '%s\n' "${3:0:800}" | sed 's/^/      | /'
    return 0
}

# attempt SECONDS CMD...: like wait_for (poll every 0.2 s, bounded), but keep the last output in $OUT
OUT=""
attempt() {
    local t="$1" i; shift
    for ((i = 0; i <= t * 5; i++)); do
        if OUT="$("$@" 2>&1)"; then return 0; fi
        sleep 0.2
    done
    return 1
}
# check NAME SECONDS CMD...: one assertion, PASS or FAIL (with the last output of CMD as excerpt)
check() {
    local name="$1" t="$2"; shift 2
    if attempt "$t" "$@"; then pass "$name"; return 0; fi
    fail "$name" "$OUT"; return 1
}
# check_known NAME SECONDS WHY CMD...: an assertion that fails because of a known vmmi bug (WHY).
# Failing counts as a known failure; passing is reported (the marker should then be removed).
check_known() {
    local name="$1" t="$2" why="$3"; shift 3
    if attempt "$t" "$@"; then
        N_XPASS=$((N_XPASS + 1)); pass "$name (was marked known-failure: $why -- remove the marker)"
        return 0
    fi
    known "$name" "$why" "$OUT"; return 1
}
# check_now NAME CMD...: evaluated once (states that must already hold, e.g. during a restart window)
check_now() { check "$1" 0 "${@:2}"; }

# ------------------------------------------------------------------ topology
veth_ns() { # veth_ns NS IP LO : create NS, a veth from vi-v's bridge, addresses, routes
    local ns="$1" ip="$2" lo="$3" port
    port="p${1#vi-}"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add vi-tmp-a type veth peer name vi-tmp-b
    ip link set vi-tmp-a netns "$NS_V"
    ip link set vi-tmp-b netns "$ns"
    ip -n "$NS_V" link set vi-tmp-a name "$port"
    ip -n "$NS_V" link set "$port" master core
    ip -n "$NS_V" link set "$port" up
    ip -n "$ns" link set vi-tmp-b name eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" addr add "$lo/32" dev lo
    ip -n "$ns" route add "$VMMI_LO/32" via "$VMMI_IP"
    ip -n "$NS_V" route replace "$lo/32" via "$ip"
}
core_up() {
    ip netns add "$NS_V"
    ip -n "$NS_V" link set lo up
    ip -n "$NS_V" link add core type bridge stp_state 0
    ip -n "$NS_V" link set core up
    ip -n "$NS_V" addr add "$VMMI_IP/24" dev core
    ip -n "$NS_V" addr add "$VMMI_LO/32" dev lo
}
# every namespace this runner may create (cleanup deletes those that exist)
ALL_NS=(vi-fi vi-fih vi-fe vi-feh vi-ge vi-gi vi-x vi-mf vi-mvm vi-lb vi-lo vi-v)

# ------------------------------------------------------------------ vmmi
V() { ip netns exec "$NS_V" timeout 10 "$VMMI" "$@"; }
vmmi_start() { # vmmi_start CONF LOG [EXTRA-ARGS...] (e.g. --graceful-restart)
    nohup ip netns exec "$NS_V" "$VMMI" run --config "$1" "${@:3}" </dev/null >>"$2" 2>&1 &
    echo $! >"$VI_RUN/vmmi.pid"; disown "$!" 2>/dev/null || true
    wait_for 10 V show neighbors --json --api "$API" || { log "vmmi API not up; tail of $2:"; tail -5 "$2" >&2; return 1; }
}
# vmmi_stop: SIGTERM vmmi by its pid file (its graceful, restart-friendly close), SIGKILL after 10 s
vmmi_stop() { kill_pidfile "$VI_RUN/vmmi.pid" 10; }
announce() { V route announce "$1" --api "$API" >/dev/null; }
withdraw() { V route withdraw "$1" --api "$API" >/dev/null; }
vmmi_routes() { V show routes --json --api "$API"; }
vmmi_nbrs() { V show neighbors --json --api "$API"; }
# vmmi_has SEL... [-- EXPECT...] / vmmi_lacks SEL...
vmmi_has() { vmmi_routes | "$PY" "$CHECK" routes vmmi "$@"; }
vmmi_lacks() { vmmi_routes | "$PY" "$CHECK" routes vmmi --absent "$@"; }
vmmi_nbr() { vmmi_nbrs | "$PY" "$CHECK" json "$@"; }   # vmmi_nbr '[name=ADDR]/state=Established' ...

# vmmi_counts_agree ADDR: the neighbor's prefixes_received equal the paths from it in the RIB, per family
vmmi_counts_agree() {
    "$PY" - "$1" "$(vmmi_nbrs)" "$(vmmi_routes)" <<'PY'
import json, sys
addr, nbrs, routes = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
n = next(x for x in nbrs if x["name"] == addr)
got = {}
for r in routes:
    for p in r["paths"]:
        if p["peer"] == addr:
            got[r["family"]] = got.get(r["family"], 0) + 1
want = {k: v for k, v in n["prefixes_received"].items() if v}
if want != got:
    print("prefixes_received %s but the RIB holds %s paths from %s" % (n["prefixes_received"], got, addr))
    sys.exit(1)
PY
}
# fdb_has NS REGEX / fdb_lacks NS REGEX: the kernel FDB of vxlan100 in NS (what FRR's zebra installed)
fdb_has() { ip netns exec "$1" bridge fdb show dev vxlan100 | grep -E -- "$2" || { ip netns exec "$1" bridge fdb show dev vxlan100; return 1; }; }
fdb_lacks() { ! ip netns exec "$1" bridge fdb show dev vxlan100 | grep -E -- "$2"; }

# the standard set of routes vmmi announces (RD 10.255.0.1:100 / :5000, VTEP 10.255.0.1)
R2_MAC='{"type":"macip","rd":"10.255.0.1:100","mac":"52:54:00:00:00:01","vni":100,"rt":["65001:100"],"next_hop":"10.255.0.1"}'
R2_IP='{"type":"macip","rd":"10.255.0.1:100","mac":"52:54:00:00:00:02","ip":"10.1.0.5","vni":100,"rt":["65001:100"],"seq":3,"next_hop":"10.255.0.1"}'
R2_IP4='{"type":"macip","rd":"10.255.0.1:100","mac":"52:54:00:00:00:02","ip":"10.1.0.5","vni":100,"rt":["65001:100"],"seq":4,"next_hop":"10.255.0.1"}'
R3='{"type":"multicast","rd":"10.255.0.1:100","vni":100,"rt":["65001:100"],"vtep":"10.255.0.1"}'
R5='{"type":"prefix","rd":"10.255.0.1:5000","prefix":"10.2.0.0/24","vni":5000,"rt":["65001:5000"],"router_mac":"52:54:00:aa:bb:cc","next_hop":"10.255.0.1"}'
R4='{"type":"unicast","prefix":"10.50.0.0/24"}'
announce_all() { announce "$R2_MAC" && announce "$R2_IP" && announce "$R3" && announce "$R5" && announce "$R4"; }
# selectors / expectations of those routes, as every peer must show them
S2_MAC=(family=evpn type=2 rd=10.255.0.1:100 mac=52:54:00:00:00:01)
E2_MAC=(ip= label=100 ec~RT:65001:100 ec~ET:8 ec!~MM: nh=10.255.0.1)
S2_IP=(family=evpn type=2 rd=10.255.0.1:100 mac=52:54:00:00:00:02 ip=10.1.0.5)
E2_IP=(label=100 ec~RT:65001:100 ec~ET:8 ec~MM:3 nh=10.255.0.1)
S3=(family=evpn type=3 rd=10.255.0.1:100 ip=10.255.0.1)
S5=(family=evpn type=5 rd=10.255.0.1:5000 prefix=10.2.0.0/24)
E5=(label=5000 ec~RT:65001:5000 ec~ET:8 ec~Rmac:52:54:00:aa:bb:cc nh=10.255.0.1)
S4=(family=ipv4 prefix=10.50.0.0/24)

write_vmmi_conf() { # write_vmmi_conf FILE then neighbor blocks on stdin
    {
        cat <<EOF
[global]
asn = $VMMI_AS
router_id = "$VMMI_LO"
listen = ["$VMMI_IP:179"]
graceful_restart_time = 60
stale_routes_time = 60
[api]
listen = "$API"
[dataplane]
kind = "memory"
EOF
        cat
    } >"$1"
    "$VMMI" check --config "$1" >/dev/null || die "vmmi check --config $1 failed: $("$VMMI" check --config "$1" 2>&1)"
}
nbr_block() { # nbr_block ADDR ASN [passive]
    cat <<EOF
[[neighbor]]
address = "$1"
remote_asn = $2
families = ["l2vpn-evpn", "ipv4-unicast"]
connect_retry = 1
hold_time = 9
passive = ${3:-false}
EOF
}

# ------------------------------------------------------------------ FRR (zebra + bgpd per namespace)
frr_dir() { echo "$VI_RUN/frr-$1"; }
frr_start_zebra() { # NS
    local d; d="$(frr_dir "$1")"
    nohup ip netns exec "$1" /usr/lib/frr/zebra -f "$d/zebra.conf" -i "$d/zebra.pid" -z "$d/zserv.api" \
        --vty_socket "$d" -P 0 --log "file:$d/zebra.log" --log-level informational </dev/null >>"$d/zebra.out" 2>&1 &
    echo $! >"$d/zebra.pid.launch"; disown "$!" 2>/dev/null || true
    wait_for 15 test -S "$d/zserv.api" || { log "zebra in $1 did not start"; return 1; }
}
frr_start_bgpd() { # NS
    local d; d="$(frr_dir "$1")"
    rm -f "$d/bgpd.pid" "$d/bgpd.vty"
    nohup ip netns exec "$1" /usr/lib/frr/bgpd -f "$d/bgpd.conf" -i "$d/bgpd.pid" -z "$d/zserv.api" \
        --vty_socket "$d" -P 0 --log "file:$d/bgpd.log" --log-level informational </dev/null >>"$d/bgpd.out" 2>&1 &
    echo $! >"$d/bgpd.pid.launch"; disown "$!" 2>/dev/null || true
    wait_for 15 FV "$1" -d bgpd -c 'show bgp summary' || { log "bgpd in $1 not answering"; return 1; }
}
frr_kill_bgpd() { # NS : SIGKILL (no NOTIFICATION, no clean close: a crash as graceful restart sees it)
    local d pid; d="$(frr_dir "$1")"; pid="$(cat "$d/bgpd.pid.launch" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$d/bgpd.pid.launch"
}
frr_stop() { local d; d="$(frr_dir "$1")"; kill_pidfile "$d/bgpd.pid.launch" 5; kill_pidfile "$d/zebra.pid.launch" 5; }
FV() { local ns="$1"; shift; timeout 10 vtysh --vty_socket "$(frr_dir "$ns")" "$@"; }
frr_evpn() { FV "$1" -c 'show bgp l2vpn evpn route detail json'; }
frr_ipv4() { FV "$1" -c 'show bgp ipv4 unicast json'; }
# frr_has NS evpn|ipv4 SEL... [-- EXP...]; frr_lacks NS evpn|ipv4 SEL...
frr_has() { local ns="$1" f="$2"; shift 2; "frr_$f" "$ns" | "$PY" "$CHECK" routes "frr-$f" "$@"; }
frr_lacks() { local ns="$1" f="$2"; shift 2; "frr_$f" "$ns" | "$PY" "$CHECK" routes "frr-$f" --absent "$@"; }
frr_json() { local ns="$1" cmd="$2"; shift 2; FV "$ns" -c "$cmd" | "$PY" "$CHECK" json "$@"; }

# ------------------------------------------------------------------ GoBGP
gobgp_dir() { echo "$VI_RUN/gobgp-$1"; }
gobgp_start() { # NS [extra gobgpd args, e.g. -r]
    local ns="$1" d; shift; d="$(gobgp_dir "$ns")"
    nohup ip netns exec "$ns" gobgpd -f "$d/gobgpd.toml" -t toml -p -l info --api-hosts 127.0.0.1:50051 \
        --pprof-disable "$@" </dev/null >>"$d/gobgpd.log" 2>&1 &
    echo $! >"$d/gobgpd.pid"; disown "$!" 2>/dev/null || true
    wait_for 20 GB "$ns" global || { log "gobgpd API in $ns not up"; return 1; }
}
gobgp_kill() { # NS : SIGKILL
    local d pid; d="$(gobgp_dir "$1")"; pid="$(cat "$d/gobgpd.pid" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$d/gobgpd.pid"
}
gobgp_stop() { kill_pidfile "$(gobgp_dir "$1")/gobgpd.pid" 5; }
gobgp_alive() { local p; p="$(cat "$(gobgp_dir "$1")/gobgpd.pid" 2>/dev/null)" && kill -0 "$p" 2>/dev/null; }
GB() { local ns="$1"; shift; ip netns exec "$ns" timeout 10 gobgp "$@"; }
GAPI() { local ns="$1"; shift; ip netns exec "$ns" timeout 30 "$PY" "$VI_ROOT/conformance/lab/gobgp_api.py" "$@"; }
gobgp_evpn() { GB "$1" -j global rib -a evpn; }
gobgp_ipv4() { GB "$1" -j global rib -a ipv4; }
gobgp_has() { local ns="$1" f="$2"; shift 2; "gobgp_$f" "$ns" | "$PY" "$CHECK" routes "gobgp-$f" "$@"; }
gobgp_lacks() { local ns="$1" f="$2"; shift 2; "gobgp_$f" "$ns" | "$PY" "$CHECK" routes "gobgp-$f" --absent "$@"; }
gobgp_nbr() { local ns="$1"; shift; GB "$ns" -j neighbor | "$PY" "$CHECK" json "$@"; }

# ------------------------------------------------------------------ ExaBGP
exa_dir() { echo "$VI_RUN/exabgp-$1"; }
exa_start() { # NS
    local d; d="$(exa_dir "$1")"
    nohup env exabgp_daemon_user=root exabgp_daemon_drop=false exabgp_daemon_daemonize=false \
        exabgp_api_cli=false exabgp_log_destination=stdout exabgp_api_ack=false \
        ip netns exec "$1" exabgp "$d/exabgp.conf" </dev/null >>"$d/exabgp.log" 2>&1 &
    echo $! >"$d/exabgp.pid"; disown "$!" 2>/dev/null || true
    wait_for 15 test -p "$d/cmd.fifo" -a -s "$d/helper.pid" || { log "exabgp in $1 did not start its API helper"; return 1; }
}
exa_kill() { # NS : SIGKILL exabgp, then its API helper (it exits on EOF anyway)
    local d pid; d="$(exa_dir "$1")"; pid="$(cat "$d/exabgp.pid" 2>/dev/null || true)"
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$d/exabgp.pid"
    kill_pidfile "$d/helper.pid" 3
}
exa_stop() { local d; d="$(exa_dir "$1")"; kill_pidfile "$d/exabgp.pid" 5; kill_pidfile "$d/helper.pid" 3; }
exa_cmd() { timeout 5 sh -c 'printf "%s\n" "$1" >"$2"' _ "$2" "$(exa_dir "$1")/cmd.fifo"; }
exa_has() { local ns="$1" loc="$2"; shift 2; "$PY" "$CHECK" routes "exabgp:$(exa_dir "$ns")/events.jsonl:$loc" "$@"; }
exa_lacks() { local ns="$1" loc="$2"; shift 2; "$PY" "$CHECK" routes "exabgp:$(exa_dir "$ns")/events.jsonl:$loc" --absent "$@"; }
