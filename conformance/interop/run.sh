#!/usr/bin/env bash
# Live interop tests of a running vmmi against FRR 8.4, GoBGP 3.10 and ExaBGP 4.2, each in its own
# network namespaces (names vi-*), traffic only on veth pairs between them.
#
#   sudo VMMI=target/debug/vmmi bash conformance/interop/run.sh [frr] [gobgp] [exabgp] [evpn-move] [lisp-oor]
#   (default: all five)
#
# Builds nothing: VMMI (default target/debug/vmmi) must exist. Needs root, iproute2, frr, gobgpd,
# exabgp, arping (iputils-arping; evpn-move), openoverlayrouter + tshark (lisp-oor), /usr/bin/python3 with python3-grpcio +
# python3-grpc-tools and golang-github-osrg-gobgp-dev (GoBGP's gRPC protos, for MAC Mobility
# routes; conformance/lab/gobgp_api.py).
#
# Per peer, with an iBGP and an eBGP session at once (two FRR routers, two gobgpd, one ExaBGP with
# two neighbors), l2vpn-evpn + ipv4-unicast:
#   [1] sessions Established on both sides            [2] vmmi announces type 2/3/5 + IPv4 -> peer shows the fields
#   [3] the peer announces (FRR: kernel VXLAN/bridge + advertise-all-vni + L3VNI; GoBGP: CLI + gRPC;
#       ExaBGP: IPv4 only, it cannot originate EVPN) -> vmmi shows the fields
#   [4] withdraws both ways, re-advertise with a higher MAC Mobility sequence
#   [5] the peer restarts (SIGKILL): vmmi keeps its routes stale until End-of-RIB, then fresh / gone
#   [6] vmmi restarts (SIGTERM): what the peer keeps meanwhile; re-announced routes are fresh
# and, as its own suite (evpn-move, evpn_move.sh), a VM moving between an FRR VTEP and a vmmi VTEP:
# MAC Mobility sequences followed both ways, the silent VM (`vmmi vm attach` alone), DAD freeze;
# and (lisp-oor, lisp_oor.sh) Open Overlay Router 1.3 as a LISP xTR against vmmi as Map-Server/
# Map-Resolver: registration (legacy Key ID, 20-byte HMAC), a wrong key refused, an EVPN VM resolved
# through the mapping feed, the VM moving to a second vmmi VTEP (SMR, SMR-invoked Map-Request, new
# locator), tshark as the oracle of every LISP datagram vmmi sent.
# Output: one PASS / FAIL / KNOWN-FAIL line per assertion, then
#   interop: N passed, M failed, K known-failures (T s)
# Exit status: 0 when nothing failed unexpectedly (known failures are vmmi bugs marked in the suites),
# 1 on any unexpected failure, 2 when it cannot run (not root, tools or VMMI missing).
# State and logs: $VI_RUN (default /run/vmmi-interop; kept after the run). Always cleans up (trap):
# processes are stopped by their pid files, the vi-* namespaces deleted.
# Env: VMMI, VI_RUN, VI_WAIT (default per-assertion wait, s; default 15).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=lib.sh
. conformance/interop/lib.sh
# shellcheck source=frr.sh
. conformance/interop/frr.sh
# shellcheck source=gobgp.sh
. conformance/interop/gobgp.sh
# shellcheck source=exabgp.sh
. conformance/interop/exabgp.sh
# shellcheck source=evpn_move.sh
. conformance/interop/evpn_move.sh
# shellcheck source=lisp_oor.sh
. conformance/interop/lisp_oor.sh

SUITES=("$@")
[ "${#SUITES[@]}" -eq 0 ] && SUITES=(frr gobgp exabgp evpn-move lisp-oor)
for s in "${SUITES[@]}"; do
    case "$s" in frr|gobgp|exabgp|evpn-move|lisp-oor) ;; *) echo "run.sh: unknown suite $s (frr gobgp exabgp evpn-move lisp-oor)" >&2; exit 2 ;; esac
done

# ------------------------------------------------------------------ preflight
[ "$(id -u)" -eq 0 ] || { echo "interop: needs root (network namespaces)" >&2; exit 2; }
case "$VMMI" in /*) ;; *) VMMI="$(pwd)/$VMMI" ;; esac
[ -x "$VMMI" ] || { echo "interop: VMMI=$VMMI is not an executable (build it: cargo build --bin vmmi)" >&2; exit 2; }
missing=()
for b in ip bridge timeout "$PY" ping; do command -v "$b" >/dev/null 2>&1 || missing+=("$b"); done
for s in "${SUITES[@]}"; do
    case "$s" in
        frr) for b in /usr/lib/frr/zebra /usr/lib/frr/bgpd vtysh; do command -v "$b" >/dev/null 2>&1 || missing+=("$b"); done ;;
        evpn-move) for b in /usr/lib/frr/zebra /usr/lib/frr/bgpd vtysh arping; do command -v "$b" >/dev/null 2>&1 || missing+=("$b"); done ;;
        gobgp) for b in gobgpd gobgp; do command -v "$b" >/dev/null 2>&1 || missing+=("$b"); done
               "$PY" -c 'import grpc, grpc_tools' 2>/dev/null || missing+=(python3-grpcio/python3-grpc-tools)
               [ -f /usr/share/gocode/src/github.com/osrg/gobgp/api/gobgp.proto ] || missing+=(golang-github-osrg-gobgp-dev) ;;
        exabgp) command -v exabgp >/dev/null 2>&1 || missing+=(exabgp) ;;
        lisp-oor) for b in "$OOR_BIN" tshark stdbuf; do command -v "$b" >/dev/null 2>&1 || missing+=("$b"); done ;;
    esac
done
[ "${#missing[@]}" -eq 0 ] || { echo "interop: missing ${missing[*]} (scripts/test.sh installs them)" >&2; exit 2; }

# ------------------------------------------------------------------ cleanup (always)
cleanup() {
    set +e
    kill_pidfile "$VI_RUN/vmmi.pid" 5
    for ns in vi-fi vi-fe "$MF_NS"; do frr_stop "$ns" 2>/dev/null; done
    kill_pidfile "$VI_RUN/mv-garp.pid" 2; kill_pidfile "$VI_RUN/mv-poll.pid" 2
    for ns in vi-ge vi-gi; do gobgp_stop "$ns" 2>/dev/null; done
    exa_stop vi-x 2>/dev/null
    lo_oor_stop 2>/dev/null; lo_capture_stop 2>/dev/null; kill_pidfile "$VI_RUN/lisp-b.pid" 5
    for ns in "${ALL_NS[@]}"; do del_ns "$ns"; done
    ip link del vi-tmp-a 2>/dev/null
    return 0
}
cleanup >/dev/null 2>&1
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$VI_RUN"; mkdir -p "$VI_RUN"
T0=$SECONDS
log "interop: vmmi $("$VMMI" --version 2>/dev/null | head -1) ($VMMI), state in $VI_RUN"
core_up || { echo "interop: cannot create the vmmi namespace" >&2; exit 2; }

for s in "${SUITES[@]}"; do
    ts=$SECONDS
    "suite_${s//-/_}"
    "suite_${s//-/_}_down" >/dev/null 2>&1
    log "$s suite: $((SECONDS - ts)) s"
done

[ "$N_XPASS" -gt 0 ] && echo "interop: $N_XPASS assertion(s) marked known-failure passed: remove their markers"
echo "interop: $N_PASS passed, $N_FAIL failed, $N_KNOWN known-failures ($((SECONDS - T0)) s)"
if [ "$N_FAIL" -gt 0 ]; then
    printf '  failed: %s\n' "${FAILED_NAMES[@]}"
    echo "  logs: $VI_RUN"
    exit 1
fi
exit 0
