#!/usr/bin/env bash
# EVPN type-2 ingest benchmark: vmmi vs FRR 8.4 vs GoBGP 3.10 (issue: ingest performance).
#
# The load generator is benches/ingest.rs (a raw BGP speaker on vmmi's own codec). For every size
# it runs, one after the other (never two systems under test at once: the machine has 2 cores):
#   vmmi  generator -> vmmi -> FRR   t_vmmi (vmmi's Adj-RIB-In holds N, from its API) and
#                                    t_frr_via_vmmi (FRR's pfxRcd from vmmi = N); vmmi RSS delta
#   sink  generator -> vmmi -> sink  the same without FRR: t_vmmi and t_sink (the bench's own
#                                    passive speaker counting distinct type-2 routes)
#   frr   generator -> FRR           t_frr (pfxRcd = N); bgpd RSS delta; t_frr_echo (the generator
#                                    has all N back: FRR re-advertises to the source, so best path
#                                    has run on all and they were sent on: compare with t_sink)
#   gobgp generator -> GoBGP         t_gobgp (adj-in accepted = N); gobgpd RSS delta. Only at sizes
#                                    <= GOBGP_MAX and in GOBGP_SIZES: 3.10's EVPN ingest is O(N^2)
# Every daemon is started fresh for every leg, in its own namespace (vb-*), on veth pairs into a
# bridge in vb-core: vmmi 10.98.0.1, generator 10.98.0.2 (+ sink 10.98.0.5), FRR 10.98.0.3,
# GoBGP 10.98.0.4. Times are from the generator's "blast-start" (all UPDATEs pre-encoded, session
# Established) to the end of the first poll that sees N (vmmi: its API, answered by the event loop
# in order with the frames; FRR: bgpd's vty socket, one connection, like vtysh; GoBGP: its CLI),
# every 5/5/250 ms, with microsecond timestamps; the start of the poll before it is the lower
# bound shown in brackets. The generator holds HOLD_MS between building its UPDATEs (session up)
# and the blast; 100 ms before the blast the daemon's RSS and CPU (schedstat run time of all its
# threads, ns) are read and the pollers start. RSS per route = (VmRSS after the routes are in,
# plus SETTLE_S, minus that baseline) / N; marginal = the growth between consecutive sizes per
# added route. CPU = run time from the baseline to the poll that saw N.
#
# usage (root): conformance/bench/ingest.sh [SIZES]          default SIZES="10000 100000 1000000"
# env: LEGS="vmmi sink frr gobgp"  GOBGP_SIZES="10000 20000 40000"  GOBGP_MAX=40000
#      REPEAT=3 (runs per leg and size; the table shows medians, the JSON every run)
#      DEADLINE_S=900 (per wait)  SETTLE_S=2  PER_UPDATE=100  KEEP=1 (leave the lab up on exit)
#      VMMI_BIN, INGEST_BIN (default: built here with cargo, release / bench profile)
#      OUT=target/bench  PERF=1 (perf record -g -e cpu-clock the vmmi of the "vmmi" leg, from just
#      before the blast until FRR has everything; PERF_SIZES="100000" PERF_FREQ=10000 PERF_CG=dwarf,8192; the data is
#      left in target/bench/ingest-run/vmmi-N-rR/perf.data; PERF adds overhead: don't mix its times
#      with unprofiled runs)   VMMI_ENV="K=V ..." (environment for vmmi, e.g. MALLOC_ARENA_MAX=1)
#      VMMI_WRAP="valgrind --tool=massif --massif-out-file=F" (a wrapper that keeps vmmi's PID)
# output: a table on stdout, target/bench/ingest-<time>.json, logs in target/bench/ingest-run/
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
SIZES="${1:-${SIZES:-10000 100000 1000000}}"
LEGS="${LEGS:-vmmi sink frr gobgp}"
GOBGP_SIZES="${GOBGP_SIZES:-10000 20000 40000}"
GOBGP_MAX="${GOBGP_MAX:-40000}"
DEADLINE_S="${DEADLINE_S:-900}"
SETTLE_S="${SETTLE_S:-2}"
PER_UPDATE="${PER_UPDATE:-100}"
# the generator holds this long between "encoded" (its session up) and the blast: the daemon's
# RSS and CPU baselines are read then, so the per-route figures hold routes only
HOLD_MS="${HOLD_MS:-1500}"
export REPEAT="${REPEAT:-3}"
export VMMI_POLL_MS FRR_POLL_MS GOBGP_POLL_MS
REP=1
OUT="${OUT:-$ROOT/target/bench}"
RUN="$OUT/ingest-run"
PERF="${PERF:-}"
VMMI_POLL_MS="${VMMI_POLL_MS:-5}"     # vmmi API (HTTP, answered by the event loop in order)
FRR_POLL_MS="${FRR_POLL_MS:-5}"       # bgpd vty socket, one persistent connection
GOBGP_POLL_MS="${GOBGP_POLL_MS:-250}"  # `gobgp -j neighbor` (a Go process per poll)
POLL_PROGRESS_MS="${POLL_PROGRESS_MS:-0}"  # >0: the FRR poller logs pfxRcd this often (a timeline)
PERF_SIZES="${PERF_SIZES:-100000}"
PERF_FREQ="${PERF_FREQ:-10000}"
PERF_CG="${PERF_CG:-dwarf,8192}"   # release builds have no frame pointers: -g (fp) gives no callers
VMMI_ENV="${VMMI_ENV:-}"   # e.g. "MALLOC_ARENA_MAX=1" (passed to vmmi with env)
VMMI_WRAP="${VMMI_WRAP:-}" # e.g. "valgrind --tool=massif --massif-out-file=/tmp/m.out" (must exec vmmi in-process)

NS_CORE=vb-core NS_GEN=vb-gen NS_VMMI=vb-vmmi NS_FRR=vb-frr NS_GOBGP=vb-gobgp
IP_VMMI=10.98.0.1 IP_GEN=10.98.0.2 IP_FRR=10.98.0.3 IP_GOBGP=10.98.0.4 IP_SINK=10.98.0.5
AS_VMMI=65001 AS_FRR=65002 AS_GOBGP=65003 AS_GEN=65004 AS_SINK=65005
API=127.0.0.1:50179

log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }
wait_for() {  # SECONDS CMD... (bounded)
    local t="$1" i; shift
    for ((i = 0; i < t * 10; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}
[ "$(id -u)" = 0 ] || die "run as root (network namespaces)"

# ---- binaries -------------------------------------------------------------------------------
if [ -z "${VMMI_BIN:-}" ]; then
    log "building vmmi (release, -j1)"
    cargo build -q --release -j1 --bin vmmi
    VMMI_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/vmmi"
fi
if [ -z "${INGEST_BIN:-}" ]; then
    log "building benches/ingest.rs (bench profile, -j1)"
    INGEST_BIN="$(cargo bench -q -j1 --bench ingest --no-run --message-format=json 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys
for l in sys.stdin:
    o=json.loads(l)
    if o.get("reason")=="compiler-artifact" and o.get("executable") and o["target"]["name"]=="ingest": print(o["executable"])' | tail -1)"
fi
[ -x "$VMMI_BIN" ] || die "no vmmi binary at $VMMI_BIN"
[ -x "$INGEST_BIN" ] || die "no ingest bench binary at $INGEST_BIN"
command -v vtysh >/dev/null || die "FRR not installed (apt-get install frr)"
rm -rf "$RUN"; mkdir -p "$RUN"

# ---- process bookkeeping: everything we start is recorded and killed by PID ------------------
PIDS=()
track() { PIDS+=("$1"); }
stop_pid() {  # PID [SECONDS]: TERM, bounded wait, KILL
    local p="$1" t="${2:-10}" i
    [ -n "$p" ] || return 0
    kill -0 "$p" 2>/dev/null || return 0
    kill "$p" 2>/dev/null || true
    for ((i = 0; i < t * 10; i++)); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
}
stop_all() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}" 5; done
    PIDS=()
}
lab_down() {
    local ns
    for ns in $NS_GEN $NS_VMMI $NS_FRR $NS_GOBGP $NS_CORE; do
        if ns_exists "$ns"; then
            local left; left="$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
            [ -n "$left" ] && log "warning: processes still in $ns: $left"
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
}
cleanup() {
    stop_all
    [ -n "${KEEP:-}" ] && { log "KEEP=1: lab left up"; return 0; }
    lab_down
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- topology ---------------------------------------------------------------------------------
lab_up() {
    lab_down
    ip netns add $NS_CORE
    ip -n $NS_CORE link set lo up
    ip -n $NS_CORE link add vbbr0 type bridge
    ip -n $NS_CORE link set vbbr0 up
    local spec ns ips i=0
    for spec in "$NS_GEN:$IP_GEN,$IP_SINK" "$NS_VMMI:$IP_VMMI" "$NS_FRR:$IP_FRR" "$NS_GOBGP:$IP_GOBGP"; do
        ns="${spec%%:*}"; ips="${spec#*:}"; i=$((i + 1))
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip link add "vbp$i" netns $NS_CORE type veth peer name eth0 netns "$ns"
        ip -n $NS_CORE link set "vbp$i" master vbbr0 up
        for ip in ${ips//,/ }; do ip -n "$ns" addr add "$ip/24" dev eth0; done
        ip -n "$ns" link set eth0 up
    done
    wait_for 10 ip netns exec $NS_GEN ping -c1 -W1 $IP_FRR || die "lab bridge not passing traffic"
    log "lab up: $NS_GEN($IP_GEN,$IP_SINK) $NS_VMMI($IP_VMMI) $NS_FRR($IP_FRR) $NS_GOBGP($IP_GOBGP) on vbbr0 in $NS_CORE"
}

# ---- /proc helpers ----------------------------------------------------------------------------
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_s() { awk '{sub(/.*\) /,""); printf "%.2f", ($12+$13)/100}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# CPU time of all threads in ns (schedstat; stat's utime/stime are 10 ms ticks)
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d", s}'; }
# baseline PID GEN_LOG: wait (bounded) until the generator's session is up and its UPDATEs are
# built ("encoded", inside its HOLD_MS before the blast); sets RSS0 and CPU0_NS of PID
# and then sleeps until 100 ms before the blast: the pollers the caller starts next cost the
# daemon CPU from then on only
baseline() {
    wait_for 60 grep -q '"encoded"' "$2" || die "generator never reached \"encoded\"; see $2"
    local enc wait_s
    enc="$(jfield "$2" encoded unix_us)"
    wait_s="$(awk -v e="$enc" -v h="$HOLD_MS" -v now="$(date +%s%6N)" 'BEGIN{w = (e + h*1000 - 100000 - now)/1e6; printf "%.3f", (w > 0 ? w : 0)}')"
    sleep "$wait_s"
    RSS0="$(rss_kb "$1")"; CPU0_NS="$(cpu_ns "$1")"
}

# ---- FRR (zebra + bgpd, foreground processes, own sockets; no systemd) ------------------------
FRR_DIR="$RUN/frr"
frr_conf() {
    cat <<EOF
frr defaults datacenter
hostname vb-frr
log timestamp precision 3
!
router bgp $AS_FRR
 bgp router-id $IP_FRR
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor $IP_VMMI remote-as $AS_VMMI
 neighbor $IP_VMMI timers connect 2
 neighbor $IP_GEN remote-as $AS_GEN
 neighbor $IP_GEN passive
 !
 address-family l2vpn evpn
  neighbor $IP_VMMI activate
  neighbor $IP_GEN activate
 exit-address-family
exit
!
EOF
}
vty() { vtysh --vty_socket "$FRR_DIR" "$@"; }
frr_peer() {  # ADDR FIELD
    vty -d bgpd -c 'show bgp l2vpn evpn summary json' 2>/dev/null |
        /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print(d.get('peers',{}).get('$1',{}).get('$2',''))" 2>/dev/null
}
frr_established() { [ "$(frr_peer "$1" state)" = Established ]; }
FRR_BGPD=""
frr_start() {
    rm -rf "$FRR_DIR"; mkdir -p "$FRR_DIR"
    frr_conf >"$FRR_DIR/bgpd.conf"
    printf 'hostname vb-frr\n' >"$FRR_DIR/zebra.conf"
    chown -R frr:frr "$FRR_DIR"; chmod 0750 "$FRR_DIR"
    ip netns exec $NS_FRR /usr/lib/frr/zebra -f "$FRR_DIR/zebra.conf" -i "$FRR_DIR/zebra.pid" \
        -z "$FRR_DIR/zserv.api" --vty_socket "$FRR_DIR" -P 0 --log "file:$FRR_DIR/zebra.log" \
        </dev/null >"$FRR_DIR/zebra.out" 2>&1 &
    track $!
    wait_for 15 test -S "$FRR_DIR/zserv.api" || die "zebra did not start; see $FRR_DIR/zebra.out"
    ip netns exec $NS_FRR /usr/lib/frr/bgpd -f "$FRR_DIR/bgpd.conf" -i "$FRR_DIR/bgpd.pid" \
        -z "$FRR_DIR/zserv.api" --vty_socket "$FRR_DIR" -P 0 --log "file:$FRR_DIR/bgpd.log" \
        </dev/null >"$FRR_DIR/bgpd.out" 2>&1 &
    FRR_BGPD=$!
    track $FRR_BGPD
    wait_for 15 vty -d bgpd -c 'show bgp summary' || die "bgpd vty not answering; see $FRR_DIR/bgpd.out"
    log "FRR up (bgpd pid $FRR_BGPD)"
}

# ---- vmmi ---------------------------------------------------------------------------------------
VMMI_PID=""
vmmi_start() {  # DOWNSTREAM_ADDR DOWNSTREAM_ASN TAG
    local conf="$RUN/vmmi-$3-r$REP.toml"
    cat >"$conf" <<EOF
[global]
asn = $AS_VMMI
router_id = "$IP_VMMI"
listen = ["$IP_VMMI:179"]

[[neighbor]]
address = "$IP_GEN"      # the generator
remote_asn = $AS_GEN
families = ["l2vpn-evpn"]
passive = true

[[neighbor]]
address = "$1"           # downstream ($3)
remote_asn = $2
families = ["l2vpn-evpn"]
connect_retry = 2

[api]
listen = "$API"

[dataplane]
kind = "memory"
EOF
    "$VMMI_BIN" check --config "$conf" >/dev/null || die "vmmi check rejects $conf"
    # shellcheck disable=SC2086
    ip netns exec $NS_VMMI env $VMMI_ENV $VMMI_WRAP "$VMMI_BIN" run --config "$conf" </dev/null >"$RUN/vmmi-$3-r$REP.log" 2>&1 &
    VMMI_PID=$!
    track $VMMI_PID
    wait_for 15 vmmi_neighbor_field "$IP_GEN" state || die "vmmi API not answering; see $RUN/vmmi-$3-r$REP.log"
    log "vmmi up (pid $VMMI_PID, $conf)"
}
vmmi_neighbor_field() {  # ADDR FIELD (non-empty output = success)
    local v
    v="$(ip netns exec $NS_VMMI "$VMMI_BIN" show neighbors --json --api "$API" 2>/dev/null |
        /usr/bin/python3 -c "import json,sys
for n in json.load(sys.stdin):
    if n.get('name')=='$1' or str(n.get('address','')).startswith('$1:'): print(n.get('$2',''))" 2>/dev/null)"
    [ -n "$v" ] && echo "$v"
}
vmmi_established() { [ "$(vmmi_neighbor_field "$1" state)" = Established ]; }

# ---- GoBGP --------------------------------------------------------------------------------------
GOBGP_PID=""
gobgp_start() {
    local conf="$RUN/gobgpd.toml"
    cat >"$conf" <<EOF
[global.config]
  as = $AS_GOBGP
  router-id = "$IP_GOBGP"
  port = 179
  local-address-list = ["$IP_GOBGP"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "$IP_GEN"
    peer-as = $AS_GEN
  [neighbors.transport.config]
    passive-mode = true
    local-address = "$IP_GOBGP"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "l2vpn-evpn"
EOF
    ip netns exec $NS_GOBGP gobgpd -f "$conf" -t toml -p -l warn --api-hosts 127.0.0.1:50051 \
        --pprof-disable </dev/null >"$RUN/gobgpd.log" 2>&1 &
    GOBGP_PID=$!
    track $GOBGP_PID
    wait_for 20 ip netns exec $NS_GOBGP gobgp global || die "gobgpd API not up; see $RUN/gobgpd.log"
    log "gobgpd up (pid $GOBGP_PID)"
}

# ---- generator, sink, pollers -------------------------------------------------------------------
GEN_PID=""
gen_start() {  # PEER_ADDR N LOG [EXPECT: log rx-reached when this many routes came back]
    ip netns exec $NS_GEN "$INGEST_BIN" gen --connect "$1" --local $IP_GEN --asn $AS_GEN \
        --count "$2" --per-update "$PER_UPDATE" --rd "$IP_GEN:100" --rt "$AS_VMMI:100" --vni 100 \
        --next-hop $IP_GEN --seq 1 --max-life "$((DEADLINE_S + 120))" --progress-ms 0 --expect "${4:-0}" \
        --hold-before-blast-ms "$HOLD_MS" </dev/null >"$3" 2>&1 &
    GEN_PID=$!
    track $GEN_PID
}
SINK_PID=""
sink_start() {  # N LOG
    ip netns exec $NS_GEN "$INGEST_BIN" sink --listen "$IP_SINK:179" --asn $AS_SINK --expect "$1" \
        --max-life "$((DEADLINE_S + 120))" --progress-ms 1000 </dev/null >"$2" 2>&1 &
    SINK_PID=$!
    track $SINK_PID
}
# poll_bg LOG ARGS... : background poller (bounded by DEADLINE_S); prints "reached"/"timeout".
# The PID is left in POLL_PID (not printed: a $(...) subshell would lose the bookkeeping).
POLL_PID=""
poll_bg() {
    local logf="$1"; shift
    "$INGEST_BIN" poll --timeout "$DEADLINE_S" "$@" </dev/null >"$logf" 2>&1 &
    POLL_PID=$!
    track $POLL_PID
}
poll_vmmi_bg() {  # LOG N  (in vb-vmmi: the API is on its loopback)
    local logf="$1"
    ip netns exec $NS_VMMI "$INGEST_BIN" poll --label vmmi --http "$API/v1/neighbors" \
        --path "?name=$IP_GEN/prefixes_received/l2vpn-evpn" --count "$2" --interval-ms "$VMMI_POLL_MS" \
        --pid "$VMMI_PID" --timeout "$DEADLINE_S" </dev/null >"$logf" 2>&1 &
    POLL_PID=$!
    track $POLL_PID
}
poll_frr_bg() {  # LOG FROM_ADDR N  (bgpd's vty socket directly: a vtysh per poll costs ~25 ms CPU)
    poll_bg "$1" --label frr --path "peers/$2/pfxRcd" --count "$3" --interval-ms "$FRR_POLL_MS" --pid "$FRR_BGPD" \
        --progress-ms "$POLL_PROGRESS_MS" \
        --vty "$FRR_DIR/bgpd.vty" --vty-cmd 'show bgp l2vpn evpn summary json'
}
poll_gobgp_bg() {  # LOG N
    poll_bg "$1" --label gobgp --path "0/afi_safis/0/state/accepted" --count "$2" --interval-ms "$GOBGP_POLL_MS" \
        --pid "$GOBGP_PID" -- ip netns exec $NS_GOBGP gobgp -j neighbor
}
# wait_pid PID SECONDS: wait (bounded) for a background process of ours to exit
wait_pid() {
    local p="$1" t="$2" i
    for ((i = 0; i < t * 10; i++)); do kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }; sleep 0.1; done
    return 1
}
# jfield LOG EVENT KEY: KEY of the first EVENT line in a JSON-lines log ("" if none)
jfield() {
    /usr/bin/python3 - "$@" <<'PY' 2>/dev/null || true
import json, sys
log, ev, key = sys.argv[1:4]
for l in open(log):
    try: o = json.loads(l)
    except ValueError: continue
    if o.get("event") == ev:
        v = o.get(key)
        print("" if v is None else v); break
PY
}
# secs FROM_MS TO_MS
secs() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", (b-a)/1000}' || echo ""; }
# secs_us FROM_US TO_US (0.1 ms resolution)
secs_us() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%.4f", (b-a)/1e6}' || echo ""; }
# ms_ns FROM_NS TO_NS: CPU milliseconds between two cpu_ns readings
ms_ns() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", (b-a)/1e6}' || echo ""; }
cpu_delta() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}' || echo ""; }
per_route() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN{printf "%.0f", (b-a)*1024/n}' || echo ""; }

RESULTS="$RUN/results.jsonl"
: >"$RESULTS"
record() {  # JSON object
    echo "$1" >>"$RESULTS"
    log "result: $1"
}
load_note() { awk '{print $1}' /proc/loadavg; }

# ---- legs ----------------------------------------------------------------------------------------
leg_vmmi() {  # N
    local n="$1" d="$RUN/vmmi-$1-r$REP" rss0 cpu0 fcpu0 pv pf t0 rss1 rssv perf_pid=""
    mkdir -p "$d"
    frr_start
    vmmi_start $IP_FRR $AS_FRR "frr-$n"
    wait_for 60 vmmi_established $IP_FRR || die "vmmi-FRR session not established"
    wait_for 30 frr_established $IP_VMMI || die "FRR does not see vmmi Established"
    if [ -n "$PERF" ] && [[ " $PERF_SIZES " == *" $n "* ]] && command -v perf >/dev/null; then
        perf record --call-graph "$PERF_CG" -e cpu-clock -F "$PERF_FREQ" -p "$VMMI_PID" -o "$d/perf.data" >"$d/perf.log" 2>&1 &
        perf_pid=$!; track $perf_pid; sleep 0.5
    fi
    gen_start $IP_VMMI:179 "$n" "$d/gen.log"
    baseline "$VMMI_PID" "$d/gen.log"; rss0=$RSS0; cpu0=$CPU0_NS; fcpu0="$(cpu_ns "$FRR_BGPD")"
    poll_vmmi_bg "$d/poll-vmmi.log" "$n"; pv=$POLL_PID
    poll_frr_bg "$d/poll-frr.log" $IP_VMMI "$n"; pf=$POLL_PID
    wait_pid "$pv" "$DEADLINE_S" || log "vmmi poller still running"
    wait_pid "$pf" "$DEADLINE_S" || log "FRR poller still running"
    sleep "$SETTLE_S"
    rss1="$(rss_kb "$VMMI_PID")"
    local frr_from_vmmi_rss; frr_from_vmmi_rss="$(rss_kb "$FRR_BGPD")"
    [ -n "$perf_pid" ] && { kill -INT "$perf_pid" 2>/dev/null || true; wait_pid "$perf_pid" 30 || stop_pid "$perf_pid" 5; }
    t0="$(jfield "$d/gen.log" blast-start unix_us)"
    rssv="$(jfield "$d/poll-vmmi.log" reached rss_kb)"
    local ups; ups="$(vmmi_neighbor_field $IP_FRR updates_in)"
    record "{\"leg\":\"vmmi\",\"n\":$n,$(times vmmi "$t0" "$d/poll-vmmi.log"),$(times frr_via_vmmi "$t0" "$d/poll-frr.log"),\
\"vmmi_rss0_kb\":\"$rss0\",\"vmmi_rss_at_ingest_kb\":\"$rssv\",\"vmmi_rss_settled_kb\":\"$rss1\",\"vmmi_hwm_kb\":\"$(hwm_kb "$VMMI_PID")\",\
\"vmmi_b_per_route\":\"$(per_route "$rss0" "$rss1" "$n")\",\"vmmi_b_per_route_at_ingest\":\"$(per_route "$rss0" "$rssv" "$n")\",\
\"vmmi_cpu_ms\":\"$(ms_ns "$cpu0" "$(jfield "$d/poll-vmmi.log" reached cpu_ns)")\",\
\"frr_via_vmmi_cpu_ms\":\"$(ms_ns "$fcpu0" "$(jfield "$d/poll-frr.log" reached cpu_ns)")\",\"frr_bgpd_rss_kb\":\"$frr_from_vmmi_rss\",\"vmmi_updates_from_frr\":\"$ups\",\
\"encode\":$(grep -m1 '"encoded"' "$d/gen.log" || echo null),\"load_before\":\"$LOAD0\",\"rep\":$REP}"
    stop_all
}

# times NAME T0_US POLL_LOG: "t_NAME_s" (blast start -> end of the first poll that saw N, an upper
# bound) and "t_NAME_lo_s" (-> start of the poll before it, a lower bound), in seconds
times() {
    printf '"t_%s_s":"%s","t_%s_lo_s":"%s"' "$1" "$(secs_us "$2" "$(jfield "$3" reached unix_us)")" \
        "$1" "$(secs_us "$2" "$(jfield "$3" reached unix_us_prev_poll_start)")"
}

leg_sink() {  # N
    local n="$1" d="$RUN/sink-$1-r$REP" rss0 cpu0 pv t0 ts rss1
    mkdir -p "$d"
    sink_start "$n" "$d/sink.log"
    vmmi_start $IP_SINK $AS_SINK "sink-$n"
    wait_for 60 vmmi_established $IP_SINK || die "vmmi-sink session not established"
    gen_start $IP_VMMI:179 "$n" "$d/gen.log"
    baseline "$VMMI_PID" "$d/gen.log"; rss0=$RSS0; cpu0=$CPU0_NS
    poll_vmmi_bg "$d/poll-vmmi.log" "$n"; pv=$POLL_PID
    wait_pid "$pv" "$DEADLINE_S" || log "vmmi poller still running"
    local i; for ((i = 0; i < DEADLINE_S * 10; i++)); do grep -q '"rx-reached"' "$d/sink.log" && break; kill -0 "$SINK_PID" 2>/dev/null || break; sleep 0.1; done
    sleep "$SETTLE_S"
    rss1="$(rss_kb "$VMMI_PID")"
    t0="$(jfield "$d/gen.log" blast-start unix_us)"
    ts="$(jfield "$d/sink.log" rx-reached unix_us)"
    record "{\"leg\":\"sink\",\"n\":$n,$(times vmmi "$t0" "$d/poll-vmmi.log"),\"t_sink_via_vmmi_s\":\"$(secs_us "$t0" "$ts")\",\
\"vmmi_rss0_kb\":\"$rss0\",\"vmmi_rss_settled_kb\":\"$rss1\",\"vmmi_hwm_kb\":\"$(hwm_kb "$VMMI_PID")\",\
\"vmmi_b_per_route\":\"$(per_route "$rss0" "$rss1" "$n")\",\
\"vmmi_cpu_ms\":\"$(ms_ns "$cpu0" "$(jfield "$d/poll-vmmi.log" reached cpu_ns)")\",\"load_before\":\"$LOAD0\",\"rep\":$REP}"
    stop_all
}

leg_frr() {  # N
    local n="$1" d="$RUN/frr-$1-r$REP" rss0 cpu0 pf t0 rss1
    mkdir -p "$d"
    frr_start
    # FRR sends every route back to the generator (no sender-side loop check): the generator's
    # rx-reached is when FRR has run best path on all N and advertised them (t_frr_echo_s)
    gen_start $IP_FRR:179 "$n" "$d/gen.log" "$n"
    baseline "$FRR_BGPD" "$d/gen.log"; rss0=$RSS0; cpu0=$CPU0_NS
    poll_frr_bg "$d/poll-frr.log" $IP_GEN "$n"; pf=$POLL_PID
    wait_pid "$pf" "$DEADLINE_S" || log "FRR poller still running"
    local i; for ((i = 0; i < DEADLINE_S * 10; i++)); do grep -q '"rx-reached"' "$d/gen.log" && break; kill -0 "$GEN_PID" 2>/dev/null || break; sleep 0.1; done
    sleep "$SETTLE_S"
    rss1="$(rss_kb "$FRR_BGPD")"
    t0="$(jfield "$d/gen.log" blast-start unix_us)"
    record "{\"leg\":\"frr\",\"n\":$n,$(times frr "$t0" "$d/poll-frr.log"),\"t_frr_echo_s\":\"$(secs_us "$t0" "$(jfield "$d/gen.log" rx-reached unix_us)")\",\"frr_rss0_kb\":\"$rss0\",\"frr_rss_settled_kb\":\"$rss1\",\
\"frr_hwm_kb\":\"$(hwm_kb "$FRR_BGPD")\",\"frr_b_per_route\":\"$(per_route "$rss0" "$rss1" "$n")\",\
\"frr_cpu_ms\":\"$(ms_ns "$cpu0" "$(jfield "$d/poll-frr.log" reached cpu_ns)")\",\"load_before\":\"$LOAD0\",\"rep\":$REP}"
    stop_all
}

leg_gobgp() {  # N
    local n="$1" d="$RUN/gobgp-$1-r$REP" rss0 cpu0 pg t0 rss1
    mkdir -p "$d"
    gobgp_start
    gen_start $IP_GOBGP:179 "$n" "$d/gen.log"
    baseline "$GOBGP_PID" "$d/gen.log"; rss0=$RSS0; cpu0=$CPU0_NS
    # the poller's path needs the neighbor to exist in the JSON: it is up (the generator encoded)
    poll_gobgp_bg "$d/poll-gobgp.log" "$n"; pg=$POLL_PID
    wait_pid "$pg" "$DEADLINE_S" || log "GoBGP poller still running"
    sleep "$SETTLE_S"
    rss1="$(rss_kb "$GOBGP_PID")"
    t0="$(jfield "$d/gen.log" blast-start unix_us)"
    record "{\"leg\":\"gobgp\",\"n\":$n,$(times gobgp "$t0" "$d/poll-gobgp.log"),\"gobgp_rss0_kb\":\"$rss0\",\"gobgp_rss_settled_kb\":\"$rss1\",\
\"gobgp_hwm_kb\":\"$(hwm_kb "$GOBGP_PID")\",\"gobgp_b_per_route\":\"$(per_route "$rss0" "$rss1" "$n")\",\
\"gobgp_cpu_ms\":\"$(ms_ns "$cpu0" "$(jfield "$d/poll-gobgp.log" reached cpu_ns)")\",\"load_before\":\"$LOAD0\",\"rep\":$REP}"
    stop_all
}

# ---- main ------------------------------------------------------------------------------------------
GROWS=""; [[ " $LEGS " == *" gobgp "* ]] && GROWS="$(for g in $SIZES $GOBGP_SIZES; do [ "$g" -le "$GOBGP_MAX" ] && echo "$g"; done | sort -nu | tr '\n' ' ')"
ROWS="$(printf '%s\n' $SIZES $GROWS | sort -nu | tr '\n' ' ')"
log "sizes: $SIZES; GoBGP at: ${GROWS:-none}; legs: $LEGS; repeats: $REPEAT"
log "vmmi: $VMMI_BIN ($("$VMMI_BIN" --version 2>/dev/null || true)); generator: $INGEST_BIN"
lab_up
for n in $ROWS; do
    in_sizes=""; [[ " $SIZES " == *" $n "* ]] && in_sizes=1
    for leg in $LEGS; do
        case "$leg" in
            gobgp) [[ " $GROWS " == *" $n "* ]] || continue ;;
            *) [ -n "$in_sizes" ] || continue ;;
        esac
        for ((REP = 1; REP <= REPEAT; REP++)); do
            LOAD0="$(load_note)"
            log "== $leg N=$n rep $REP/$REPEAT (load $LOAD0)"
            "leg_$leg" "$n"
        done
    done
done

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
JSON="$OUT/ingest-$STAMP.json"
/usr/bin/python3 - "$RESULTS" "$JSON" "$ROWS" <<'PY'
import json, sys, platform, os, statistics
res = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rows = [int(x) for x in sys.argv[3].split()]
def vals(leg, n, k):
    out = []
    for r in res:
        if r["leg"] == leg and r["n"] == n:
            try: out.append(float(r[k]))
            except (KeyError, TypeError, ValueError): pass
    return out
def med(leg, n, k):
    v = vals(leg, n, k)
    return statistics.median(v) if v else None
def spread(leg, n, k):
    v = vals(leg, n, k)
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": len(v)} if v else None
def f(v, fmt):
    return "-" if v is None else fmt % v
table = []
def rng(leg, n, name):
    lo, hi = med(leg, n, f"t_{name}_lo_s"), med(leg, n, f"t_{name}_s")
    return lo, hi
def ms_rng(lo, hi):
    # a lower bound before the blast (the poll before the one that saw N began earlier) is 0
    if hi is None: return "-"
    return ("%.1f" % (hi * 1e3)) + ("" if lo is None else " (%.1f)" % max(lo * 1e3, 0.0))
hdr = ("size", "vmmi ingest ms (lo)", "FRR direct ms (lo)", "FRR/vmmi", "FRR/vmmi, worst case",
       "vmmi->FRR total ms", "GoBGP ms", "vmmi CPU ms", "FRR CPU ms", "CPU FRR/vmmi",
       "vmmi B/route", "FRR B/route", "GoBGP B/route")
lines = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
prev = None
for n in rows:
    vlo, vhi = rng("vmmi", n, "vmmi")
    flo, fhi = rng("frr", n, "frr")
    glo, ghi = rng("gobgp", n, "gobgp")
    ratio = fhi / vhi if vhi and fhi else None
    # the smallest ratio the two measurements allow: FRR's lower bound over vmmi's upper one
    worst = max(flo, 0.0) / vhi if vhi and flo is not None else None
    vc, fc = med("vmmi", n, "vmmi_cpu_ms"), med("frr", n, "frr_cpu_ms")
    row = {"size": n, "vmmi_ingest_s": vhi, "vmmi_ingest_lo_s": vlo, "frr_direct_s": fhi, "frr_direct_lo_s": flo,
           "ratio_frr_over_vmmi": ratio, "ratio_worst_case": worst,
           "vmmi_to_frr_total_s": med("vmmi", n, "t_frr_via_vmmi_s"), "gobgp_s": ghi, "gobgp_lo_s": glo,
           "vmmi_cpu_ms": vc, "frr_cpu_ms": fc, "gobgp_cpu_ms": med("gobgp", n, "gobgp_cpu_ms"),
           "cpu_ratio_frr_over_vmmi": fc / vc if vc and fc else None,
           "vmmi_b_per_route": med("vmmi", n, "vmmi_b_per_route"),
           "frr_b_per_route": med("frr", n, "frr_b_per_route"), "gobgp_b_per_route": med("gobgp", n, "gobgp_b_per_route"),
           "vmmi_rss_settled_kb": med("vmmi", n, "vmmi_rss_settled_kb"), "vmmi_rss0_kb": med("vmmi", n, "vmmi_rss0_kb"),
           "frr_rss_settled_kb": med("frr", n, "frr_rss_settled_kb"), "frr_rss0_kb": med("frr", n, "frr_rss0_kb"),
           "vmmi_to_sink_s": med("sink", n, "t_sink_via_vmmi_s"),
           "frr_echo_s": med("frr", n, "t_frr_echo_s"),
           "vmmi_ingest_sink_leg_s": med("sink", n, "t_vmmi_s"),
           "vmmi_cpu_ms_sink_leg": med("sink", n, "vmmi_cpu_ms"),
           "vmmi_b_per_route_sink_leg": med("sink", n, "vmmi_b_per_route"),
           "spread": {f"{leg}.{k}": spread(leg, n, k) for leg, k in [("vmmi", "t_vmmi_s"), ("vmmi", "t_frr_via_vmmi_s"),
               ("frr", "t_frr_s"), ("frr", "t_frr_echo_s"), ("gobgp", "t_gobgp_s"), ("sink", "t_vmmi_s"), ("sink", "t_sink_via_vmmi_s"),
               ("vmmi", "vmmi_cpu_ms"), ("frr", "frr_cpu_ms"),
               ("vmmi", "vmmi_b_per_route"), ("frr", "frr_b_per_route")] if spread(leg, n, k)}}
    # marginal memory: the RSS growth from the previous size, per added route
    if prev is not None:
        for who in ("vmmi", "frr"):
            a, b = prev.get(f"{who}_rss_settled_kb"), row.get(f"{who}_rss_settled_kb")
            a0, b0 = prev.get(f"{who}_rss0_kb"), row.get(f"{who}_rss0_kb")
            if None not in (a, b, a0, b0) and n > prev["size"]:
                row[f"{who}_marginal_b_per_route"] = ((b - b0) - (a - a0)) * 1024 / (n - prev["size"])
    prev = row
    table.append(row)
    lines.append("| " + " | ".join([str(n), ms_rng(vlo, vhi), ms_rng(flo, fhi), f(ratio, "%.2f"), f(worst, "%.2f"),
        f(None if row["vmmi_to_frr_total_s"] is None else row["vmmi_to_frr_total_s"] * 1e3, "%.1f"),
        ms_rng(glo, ghi), f(vc, "%.1f"), f(fc, "%.1f"), f(row["cpu_ratio_frr_over_vmmi"], "%.2f"),
        f(row["vmmi_b_per_route"], "%.0f"), f(row["frr_b_per_route"], "%.0f"),
        f(row["gobgp_b_per_route"], "%.0f")]) + " |")
out = {"table": table, "legs": res, "host": {"cpus": os.cpu_count(), "kernel": platform.release()},
       "method": "times: generator blast-start (pre-encoded, Established) to the end of the first poll seeing N, "
                 "the upper bound; (lo) = to the start of the poll before it, the lower bound (vmmi API, FRR bgpd vty "
                 "socket, GoBGP CLI; intervals VMMI_POLL_MS/FRR_POLL_MS/GOBGP_POLL_MS; microsecond timestamps); "
                 "'worst case' = FRR's lower bound / vmmi's upper bound; CPU: the daemon's threads' schedstat "
                 "run time from 100 ms before the blast to the poll that saw N; B/route: (VmRSS after + settle - "
                 "VmRSS with the generator's session up, just before the blast) / N; marginal: the growth between "
                 "consecutive sizes per added route; medians over the runs of each leg"}
out["poll_ms"] = {k: os.environ.get(k) for k in ("VMMI_POLL_MS", "FRR_POLL_MS", "GOBGP_POLL_MS")}
json.dump(out, open(sys.argv[2], "w"), indent=1)
print("\n".join(lines))
marg = [r for r in table if "vmmi_marginal_b_per_route" in r or "frr_marginal_b_per_route" in r]
if marg:
    print("\nmarginal RSS per added route (growth from the previous size): " + "; ".join(
        f"{r['size']}: vmmi {f(r.get('vmmi_marginal_b_per_route'), '%.0f')} B, FRR {f(r.get('frr_marginal_b_per_route'), '%.0f')} B"
        for r in marg))
print("\nvmmi in the sink leg (no FRR downstream competing for the CPU), median ingest ms / CPU ms: " +
      ", ".join(f"{r['size']}: {f(None if r['vmmi_ingest_sink_leg_s'] is None else r['vmmi_ingest_sink_leg_s'] * 1e3, '%.1f')}"
                f" / {f(r['vmmi_cpu_ms_sink_leg'], '%.1f')}" for r in table))
def msf(v): return f(None if v is None else v * 1e3, "%.1f")
print("\nbest path run on all N and all N sent on to a peer (no polling: the receiving speaker's own clock), "
      "median ms, vmmi -> bench sink (sink leg) / FRR -> back to the generator (frr leg) / FRR/vmmi: " +
      ", ".join(f"{r['size']}: {msf(r['vmmi_to_sink_s'])} / {msf(r['frr_echo_s'])} / "
                f"{f(r['frr_echo_s'] / r['vmmi_to_sink_s'] if r['frr_echo_s'] and r['vmmi_to_sink_s'] else None, '%.2f')}"
                for r in table))
print("(medians of %s run(s) per leg; every run in the JSON)" % os.environ.get("REPEAT", "3"))
print(f"\nJSON: {sys.argv[2]}")
PY
cp "$JSON" "$OUT/ingest-latest.json"
