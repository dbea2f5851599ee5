#!/usr/bin/env bash
# The vmmi test suite in one command. On a fresh Debian 12 machine, as root, it installs what is missing
# and runs everything:
#
#   sudo bash scripts/test.sh            (or as root: bash scripts/test.sh; CI: .ci/run)
#
# Stages:
#   1. packages   frr gobgpd exabgp tshark openoverlayrouter iproute2 bridge-utils iputils-ping iputils-arping
#                 python3-scapy tcpdump — checked with dpkg -s / command -v; apt-get only if something
#                 is missing (root only; not root: the stages that need them are skipped, and said so)
#   2. rust       cargo fmt --check; cargo clippy --all-targets -- -D warnings; cargo test --all-targets;
#                 cargo test --doc (installs a toolchain with rustup if cargo is missing)
#   3. live       bash conformance/run.sh (real FRR/GoBGP/OOR peers in network namespaces; root)
#   4. oracle     bash conformance/tshark-oracle.sh (tshark cross-check of the captured vectors)
#   4b. interop   bash conformance/interop/run.sh (vmmi against FRR, GoBGP, ExaBGP, and OOR as a LISP
#                 xTR against vmmi's Map-Server/Map-Resolver; root)
#   4c. e2e       bash conformance/e2e/vxlan.sh (three VTEPs in namespaces with vmmi's Linux VXLAN
#                 dataplane: pings between VM namespaces, exact kernel FDBs, a VM move, a graceful
#                 restart mid-ping, a mixed vmmi/FRR fabric; root)
#   5. a final RESULT line
#
# Options:
#   --no-install   never run apt-get / rustup (missing tools -> stages skipped or failed)
#   --quick        skip the live conformance stage (3), the interop stage (4b) and the e2e stage (4c)
#   --dry-run      print what would be done (install decision, commands) and exit 0; runs nothing
#   --install-only stage 1 only (install what is missing), then exit
#   -h, --help
# Environment: VMMI_EXTRA_PKGS="pkg ..." extra Debian packages to ensure; CI=true is honoured (no colour);
#   VMMI_TEST_BUDGET=SECONDS hard cap for stages 2-4 together (default 1800; each stage also has its own).
# Bounded: every stage runs under `timeout`; a warm run takes well under 20 min on 2 cores.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"

INSTALL=1; QUICK=0; DRY=0; INSTALL_ONLY=0
for a in "$@"; do
    case "$a" in
        --no-install) INSTALL=0 ;;
        --quick) QUICK=1 ;;
        --dry-run) DRY=1 ;;
        --install-only) INSTALL_ONLY=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "test.sh: unknown option $a (see --help)" >&2; exit 2 ;;
    esac
done

export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-$([ -t 1 ] && [ -z "${CI:-}" ] && echo auto || echo never)}"
export PATH="$PATH:/usr/sbin:/sbin:${CARGO_HOME:-$HOME/.cargo}/bin"

T_START=$SECONDS
RESULTS=()      # "stage:status" (status = ok | FAIL | skip)
FAILED=0

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
record() {
    local st="$2"
    [ "$DRY" = 1 ] && [ "$st" = ok ] && st=planned
    RESULTS+=("$1:$st"); [ "$st" = FAIL ] && FAILED=$((FAILED + 1)); return 0
}
# Overall bound for everything after the package install (seconds); each stage gets at most what is left.
BUDGET="${VMMI_TEST_BUDGET:-1800}"
T_BUDGET_START=""
# run LABEL SECONDS CMD...: run a command bounded in time, stdin closed; in --dry-run only print it
run() {
    local label="$1" t="$2"; shift 2
    if [ -n "$T_BUDGET_START" ]; then
        local left=$((BUDGET - (SECONDS - T_BUDGET_START)))
        [ "$left" -lt 1 ] && { note "$label: time budget (${BUDGET}s, VMMI_TEST_BUDGET) used up: not run"; return 124; }
        [ "$left" -lt "$t" ] && t=$left
    fi
    if [ "$DRY" = 1 ]; then note "[dry-run] ($label, timeout ${t}s) $*"; return 0; fi
    say "$label: $*"
    local t0=$SECONDS rc=0
    timeout --kill-after=30 "$t" "$@" </dev/null || rc=$?
    [ "$rc" = 124 ] && note "$label: TIMED OUT after ${t}s"
    note "$label: exit $rc in $((SECONDS - t0)) s"
    return "$rc"
}

IS_ROOT=0; [ "$(id -u)" -eq 0 ] && IS_ROOT=1

# ------------------------------------------------------------------ 1. packages
PKGS=(frr gobgpd exabgp tshark openoverlayrouter iproute2 bridge-utils iputils-ping iputils-arping python3-scapy
      tcpdump golang-github-osrg-gobgp-dev python3-grpcio python3-grpc-tools)
# shellcheck disable=SC2206
[ -n "${VMMI_EXTRA_PKGS:-}" ] && PKGS+=(${VMMI_EXTRA_PKGS})
# a binary each package must provide (checked too: a package can be half-removed)
pkg_bin() {
    case "$1" in
        frr) echo /usr/lib/frr/bgpd ;;
        gobgpd) echo gobgpd ;;
        exabgp) echo exabgp ;;
        tshark) echo tshark ;;
        openoverlayrouter) echo /usr/sbin/oor ;;
        iproute2) echo ip ;;
        bridge-utils) echo brctl ;;
        iputils-ping) echo ping ;;
        iputils-arping) echo arping ;;
        tcpdump) echo tcpdump ;;
        *) echo "" ;;
    esac
}
pkg_ok() {
    local b
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed' || return 1
    b="$(pkg_bin "$1")"
    [ -z "$b" ] && return 0
    if [ "${b#/}" != "$b" ]; then [ -x "$b" ]; else command -v "$b" >/dev/null 2>&1; fi
}
missing_pkgs() { local p; for p in "${PKGS[@]}"; do pkg_ok "$p" || echo "$p"; done; }

say "stage 1: packages"
if ! command -v dpkg >/dev/null 2>&1; then
    note "no dpkg (not Debian?): cannot check or install packages; live stages decide for themselves"
    MISSING=()
else
    mapfile -t MISSING < <(missing_pkgs)
fi
if [ "${#MISSING[@]}" -eq 0 ]; then
    note "all present: ${PKGS[*]}"
    record packages ok
elif [ "$IS_ROOT" = 1 ] && [ "$INSTALL" = 1 ]; then
    note "missing: ${MISSING[*]} -> apt-get install"
    rc=0
    if [ "$DRY" = 1 ]; then
        note "[dry-run] echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections"
    else
        echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections || true
    fi
    run apt-update 900 apt-get update || rc=$?
    [ "$rc" = 0 ] && { run apt-install 1800 apt-get install -y --no-install-recommends "${MISSING[@]}" || rc=$?; }
    if [ "$DRY" = 1 ]; then record packages "would-install"
    elif [ "$rc" = 0 ] && [ -z "$(missing_pkgs)" ]; then record packages ok
    else note "still missing after apt-get: $(missing_pkgs | tr '\n' ' ')"; record packages FAIL; fi
else
    why="not root"; [ "$IS_ROOT" = 1 ] && why="--no-install"
    note "missing: ${MISSING[*]} ($why: not installing)"
    note "will be skipped: the live conformance stage (conformance/run.sh: real FRR, GoBGP, ExaBGP, OOR"
    note "  peers in network namespaces; needs root and all of ${PKGS[*]})"
    case " ${MISSING[*]} " in *" tshark "*)
        note "will be skipped: the tshark oracle stage (conformance/tshark-oracle.sh needs tshark)" ;; esac
    note "the Rust stages (fmt, clippy, unit/property/vector tests) do not need these packages and still run"
    note "install them with: sudo apt-get install -y --no-install-recommends ${MISSING[*]}"
    record packages skip
fi
if [ "$INSTALL_ONLY" = 1 ]; then
    echo "RESULT: $([ "$FAILED" -eq 0 ] && echo PASS || echo FAIL) install-only $(printf '%s ' "${RESULTS[@]}")"
    [ "$FAILED" -eq 0 ]; exit
fi
have_tshark() { command -v tshark >/dev/null 2>&1; }

# ------------------------------------------------------------------ 2. rust
# With the peers installed, tests that need them (tshark oracle) fail instead of skipping.
if [ -z "$(missing_pkgs 2>/dev/null)" ]; then export VMMI_REQUIRE_PEERS=1; fi
T_BUDGET_START=$SECONDS
say "stage 2: rust (fmt, clippy, tests)"
if ! command -v cargo >/dev/null 2>&1; then
    if [ "$INSTALL" = 1 ]; then
        note "cargo not found -> installing a toolchain with rustup (minimal profile + rustfmt, clippy)"
        if ! command -v curl >/dev/null 2>&1; then
            if [ "$IS_ROOT" = 1 ]; then run apt-curl 900 apt-get install -y --no-install-recommends curl ca-certificates || true
            else note "curl missing and not root"; fi
        fi
        if [ "$DRY" = 1 ]; then
            note "[dry-run] curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt -c clippy"
        else
            timeout 900 bash -c "curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt -c clippy" </dev/null || true
        fi
    else
        note "cargo not found and --no-install"
    fi
fi
if command -v rustup >/dev/null 2>&1 && [ "$INSTALL" = 1 ]; then
    # the project's toolchain needs rustfmt and clippy; add them if the toolchain lacks them
    for comp in rustfmt clippy; do
        if ! rustup component list --installed 2>/dev/null | grep -q "^$comp"; then
            run "rustup-$comp" 600 rustup component add "$comp" || true
        fi
    done
fi

if command -v cargo >/dev/null 2>&1 || [ "$DRY" = 1 ]; then
    if run fmt 300 cargo fmt --all -- --check; then record fmt ok; else record fmt FAIL; fi
    if run clippy 1200 cargo clippy --all-targets -- -D warnings; then record clippy ok; else record clippy FAIL; fi
    if run test 1500 cargo test --all-targets; then record test ok; else record test FAIL; fi
    # doc tests need a library target (src/lib.rs or [lib] in Cargo.toml); --all-targets does not run them
    if [ -f src/lib.rs ] || grep -q '^\[lib\]' Cargo.toml 2>/dev/null; then
        if run doctest 900 cargo test --doc; then record doctest ok; else record doctest FAIL; fi
    else
        note "no library target: doc tests skipped"; record doctest skip
    fi
else
    note "no cargo: rust stages cannot run"
    record rust FAIL
fi

# ------------------------------------------------------------------ 3. live conformance
say "stage 3: live conformance (real peers in network namespaces)"
if [ "$QUICK" = 1 ]; then
    note "--quick: skipped"; record live skip
elif [ ! -f conformance/run.sh ]; then
    note "conformance/run.sh not present: skipped"; record live skip
elif [ "$IS_ROOT" != 1 ]; then
    note "needs root (network namespaces, FRR, GoBGP, OOR): skipped"; record live skip
elif [ "$DRY" != 1 ] && [ "${#MISSING[@]}" -gt 0 ] && [ -n "$(missing_pkgs 2>/dev/null)" ]; then
    note "packages missing ($(missing_pkgs | tr '\n' ' ')): skipped"; record live skip
else
    if run live 900 bash conformance/run.sh; then record live ok; else record live FAIL; fi
fi

# ------------------------------------------------------------------ 4. tshark oracle
say "stage 4: tshark oracle"
if [ ! -f conformance/tshark-oracle.sh ]; then
    note "conformance/tshark-oracle.sh not present: skipped"; record oracle skip
elif ! have_tshark && [ "$DRY" != 1 ]; then
    note "tshark not installed: skipped"; record oracle skip
else
    # selftest = every conformance/vectors/*.pcap through the malformed/expert filter + decode checks;
    # then any capture the live stage left in target/conformance/ (if it wrote one there)
    oracle_rc=0
    run oracle 300 bash conformance/tshark-oracle.sh selftest || oracle_rc=$?
    shopt -s nullglob
    live_caps=("${VMMI_CAPTURE_DIR:-target/conformance}"/*.pcap "${VMMI_CAPTURE_DIR:-target/conformance}"/*.pcapng)
    shopt -u nullglob
    if [ "${#live_caps[@]}" -gt 0 ]; then
        run oracle-live 300 bash conformance/tshark-oracle.sh bad "${live_caps[@]}" || oracle_rc=$?
    fi
    if [ "$oracle_rc" = 0 ]; then record oracle ok; else record oracle FAIL; fi
fi

# ------------------------------------------------------------------ 4b. interop
# conformance/interop/run.sh: vmmi itself against FRR, GoBGP and ExaBGP in network namespaces
# (sessions, EVPN type 2/3/5 + IPv4 both ways, withdraws, MAC Mobility, graceful restart of either
# side), the evpn-move suite (a VM moving between an FRR VTEP and vmmi: MAC Mobility sequences
# both ways, the silent VM, DAD) and the lisp-oor suite (Open Overlay Router 1.3 as a LISP xTR
# against vmmi's Map-Server/Map-Resolver: registration, a VM in vmmi's EVPN resolved, SMR after its
# move, tshark as the oracle). It builds nothing: the vmmi binary is built here. Same conditions
# as the live stage (root, the packages of stage 1); --quick skips it. About a minute and a half
# on 2 cores.
say "stage 4b: interop (vmmi against FRR, GoBGP, ExaBGP; a VM moving between FRR and vmmi; OOR as LISP xTR; in network namespaces)"
VMMI_BIN="${CARGO_TARGET_DIR:-target}/debug/vmmi"
if [ "$QUICK" = 1 ]; then
    note "--quick: skipped"; record interop skip
elif [ ! -f conformance/interop/run.sh ]; then
    note "conformance/interop/run.sh not present: skipped"; record interop skip
elif [ "$IS_ROOT" != 1 ]; then
    note "needs root (network namespaces, FRR, GoBGP, ExaBGP, OOR): skipped"; record interop skip
elif [ "$DRY" != 1 ] && [ "${#MISSING[@]}" -gt 0 ] && [ -n "$(missing_pkgs 2>/dev/null)" ]; then
    note "packages missing ($(missing_pkgs | tr '\n' ' ')): skipped"; record interop skip
elif ! command -v cargo >/dev/null 2>&1 && [ "$DRY" != 1 ]; then
    note "no cargo: cannot build vmmi"; record interop FAIL
else
    if run interop-build 1200 cargo build --bin vmmi &&
        run interop 600 env VMMI="$VMMI_BIN" bash conformance/interop/run.sh; then
        record interop ok
    else
        record interop FAIL
    fi
fi

# ------------------------------------------------------------------ 4c. end-to-end VXLAN
# conformance/e2e/vxlan.sh: three hosts (namespaces ve-*) running vmmi with the Linux dataplane,
# VMs as namespaces on the hosts' bridges: ping over VXLAN, exact FDBs, a timed VM move, vmmi's
# graceful restart mid-ping (no FDB entry may go, no ping may be lost), and a fabric with FRR on one
# host. Same conditions as 4b; builds vmmi first (a no-op after 4b). About 25 s.
say "stage 4c: e2e (three VTEPs with the Linux VXLAN dataplane in network namespaces)"
if [ "$QUICK" = 1 ]; then
    note "--quick: skipped"; record e2e skip
elif [ ! -f conformance/e2e/vxlan.sh ]; then
    note "conformance/e2e/vxlan.sh not present: skipped"; record e2e skip
elif [ "$IS_ROOT" != 1 ]; then
    note "needs root (network namespaces, kernel bridges and VXLAN devices, FRR): skipped"; record e2e skip
elif [ "$DRY" != 1 ] && [ "${#MISSING[@]}" -gt 0 ] && [ -n "$(missing_pkgs 2>/dev/null)" ]; then
    note "packages missing ($(missing_pkgs | tr '\n' ' ')): skipped"; record e2e skip
elif ! command -v cargo >/dev/null 2>&1 && [ "$DRY" != 1 ]; then
    note "no cargo: cannot build vmmi"; record e2e FAIL
else
    if run e2e-build 1200 cargo build --bin vmmi &&
        run e2e 300 env VMMI="$VMMI_BIN" bash conformance/e2e/vxlan.sh; then
        record e2e ok
    else
        record e2e FAIL
    fi
fi

# ------------------------------------------------------------------ 5. summary
summary="$(printf '%s ' "${RESULTS[@]}")"
if [ "$DRY" = 1 ]; then
    echo "RESULT: DRY-RUN (nothing was run) ${summary}"
    exit 0
fi
if [ "$FAILED" -eq 0 ]; then
    echo "RESULT: PASS ${summary}in $((SECONDS - T_START)) s"
else
    echo "RESULT: FAIL ($FAILED failed) ${summary}in $((SECONDS - T_START)) s"
fi
[ "$FAILED" -eq 0 ]
