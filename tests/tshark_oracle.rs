//! tshark as an independent decoder: our encoder's output for a corpus of BGP and LISP messages
//! is written to a pcap (offline, no traffic), decoded by `tshark -T json`, and must (a) carry
//! no malformed/warning flag and (b) agree with our decoded fields (message types, EVPN MACs,
//! MAC Mobility sequences, LISP types).
//!
//! tshark is installed by the README test command (`scripts/test.sh`, which sets
//! VMMI_REQUIRE_PEERS=1 so a missing tshark fails instead of skipping).

#![allow(clippy::disallowed_methods, clippy::disallowed_types)] // a test of sockets and real time

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use vmmi::decode::parse_hex;
use vmmi::pcap::{Transport, write};
use vmmi::wire::bgp::attr::AttrValue;
use vmmi::wire::bgp::evpn::EvpnRoute;
use vmmi::wire::bgp::extcomm::mac_mobility;
use vmmi::wire::bgp::nlri::NlriList;
use vmmi::wire::bgp::{BgpCtx, Message};
use vmmi::wire::lisp;

fn tshark() -> Option<&'static str> {
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some("tshark");
    }
    assert!(
        std::env::var("VMMI_REQUIRE_PEERS").is_err(),
        "tshark is required (VMMI_REQUIRE_PEERS=1) but not installed"
    );
    eprintln!("SKIP: tshark not installed (run scripts/test.sh as root to install it)");
    None
}

/// Messages the LISP oracle decodes: Map-Request (plain, IID, SMR), Map-Reply (IID + MAC),
/// Map-Register (OOR's real bytes), ECM with an inner Map-Request.
const LISP_HEX: &[&str] = &[
    "10000001 1122334455667788 0001 0a64000a 0001 0aff0002 00 20 0001 0a64000b",
    "10000001 1122334455667788 0000 0001 0aff0002 00 20 4003 0000 0220 000a 00000064 0001 0a64000b",
    "11000001 1122334455667788 0000 0001 0aff0002 00 20 0001 0a64000b",
    "20000002 1122334455667788 000005a0 01 20 1000 0000 4003 0000 0220 000a 00000064 0001 0a64000b 01 64 ff 00 0005 0001 0aff0001 000005a0 02 30 1000 0000 4003 0000 0230 000c 00000064 4005 02aa00000001 01 64 ff 00 0005 0001 0aff0001 02 64 ff 00 0005 0001 0aff0003",
    "30000101 7cfafd6fc7e0ea6c 0001 0014 3e17a6d0c5d598c727f1be36d7d078d598474f52 0000000a 01 18 1000 0000 4003 0000 0220 000a 0000006b 0001 0a010700 01 64 ff 00 0005 0001 0a600001",
    // Map-Notify with the same body (what a Map-Server answers to OOR)
    "40000001 7cfafd6fc7e0ea6c 0001 0014 3e17a6d0c5d598c727f1be36d7d078d598474f52 0000000a 01 18 1000 0000 4003 0000 0220 000a 0000006b 0001 0a010700 01 64 ff 00 0005 0001 0a600001",
    "80000000 4500004400000000401100000aff00020aff0001 ee4810f600300000 10000001 1122334455667788 0000 0001 0aff0002 00 20 4003 0000 0220 000a 00000064 0001 0a64000b",
];

fn run_tshark(bin: &str, pcap: &Path, args: &[&str]) -> String {
    let out = Command::new(bin)
        .arg("-r")
        .arg(pcap)
        .args(args)
        .output()
        .expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn field<'a>(pkt: &'a Value, name: &str) -> Vec<&'a str> {
    pkt["_source"]["layers"][name]
        .as_array()
        .map_or(vec![], |a| a.iter().filter_map(Value::as_str).collect())
}

#[test]
fn tshark_agrees_and_flags_nothing() {
    let Some(bin) = tshark() else { return };
    let ctx = BgpCtx {
        four_octet_as: true,
        extended_message: true,
        add_path_rx: vec![],
    };
    let a: SocketAddr = "10.99.0.1:40000".parse().unwrap();
    let b: SocketAddr = "10.99.0.2:179".parse().unwrap();
    let x: SocketAddr = "10.255.0.2:4342".parse().unwrap();
    let y: SocketAddr = "10.255.0.1:4342".parse().unwrap();

    // BGP corpus: every real-peer vector, decoded and re-encoded by us (one message per frame)
    let mut frames = Vec::new();
    let mut want_macs = Vec::new();
    let mut want_seqs = Vec::new();
    let mut want_types = Vec::new();
    let mut files: Vec<_> = glob("conformance/vectors/frr-8.4")
        .into_iter()
        .chain(glob("conformance/vectors/gobgp-3.10"))
        .collect();
    files.sort();
    for f in &files {
        let bytes = parse_hex(std::fs::read_to_string(f).unwrap().trim()).unwrap();
        let (m, _) = Message::decode(&bytes, &ctx).unwrap();
        want_types.push(m.type_code().to_string());
        if let Message::Update(u) = &m {
            // tshark lists MACs of announced and withdrawn routes, in attribute order
            for a in &u.attrs {
                let list = match &a.value {
                    AttrValue::MpReach(r) => &r.nlri,
                    AttrValue::MpUnreach(r) => &r.withdrawn,
                    _ => continue,
                };
                if let NlriList::Evpn(rs) = list {
                    for r in rs {
                        if let EvpnRoute::MacIp(mi) = &r.route {
                            want_macs.push(mi.mac.to_string());
                        }
                    }
                }
            }
            if let Some((seq, _)) = mac_mobility(u.ext_communities()) {
                want_seqs.push(seq.to_string());
            }
        }
        frames.push((a, b, Transport::Tcp, m.to_bytes(&ctx)));
    }
    // LISP corpus, encoded by us
    let mut want_lisp = Vec::new();
    for h in LISP_HEX {
        let m = lisp::decode(&parse_hex(h).unwrap()).unwrap();
        want_lisp.push(m.msg_type().to_string());
        frames.push((x, y, Transport::Udp, m.to_bytes()));
    }
    let dir = std::env::temp_dir().join(format!("vmmi-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("corpus.pcap");
    std::fs::write(&pcap, write(&frames)).unwrap();

    // (a) nothing flagged (filter from INTEROP.md: the port filter catches broken headers)
    let flagged = run_tshark(
        bin,
        &pcap,
        &[
            "-Y",
            "(tcp.port==179||udp.port==4342) && (_ws.malformed || (_ws.expert.severity>=\"warning\" && !tcp.analysis.flags && !tcp.connection.rst))",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "_ws.col.Info",
        ],
    );
    assert!(
        flagged.trim().is_empty(),
        "tshark flagged frames:\n{flagged}"
    );

    // (b) fields agree
    let json: Value = serde_json::from_str(&run_tshark(
        bin,
        &pcap,
        &[
            "-T",
            "json",
            "-e",
            "bgp.type",
            "-e",
            "bgp.evpn.nlri.mac_addr",
            "-e",
            "bgp.ext_com_evpn.mmac.seq",
            "-e",
            "lisp.type",
        ],
    ))
    .unwrap();
    let pkts = json.as_array().unwrap();
    assert_eq!(pkts.len(), frames.len());
    let got_types: Vec<&str> = pkts.iter().flat_map(|p| field(p, "bgp.type")).collect();
    assert_eq!(got_types, want_types);
    let got_macs: Vec<String> = pkts
        .iter()
        .flat_map(|p| field(p, "bgp.evpn.nlri.mac_addr"))
        .map(str::to_lowercase)
        .collect();
    assert_eq!(got_macs, want_macs);
    let got_seqs: Vec<&str> = pkts
        .iter()
        .flat_map(|p| field(p, "bgp.ext_com_evpn.mmac.seq"))
        .collect();
    assert_eq!(got_seqs, want_seqs);
    // tshark reports the ECM's inner Map-Request as a second lisp.type
    let got_lisp: Vec<&str> = pkts
        .iter()
        .filter_map(|p| field(p, "lisp.type").first().copied())
        .collect();
    assert_eq!(got_lisp, want_lisp);
    let _ = std::fs::remove_dir_all(&dir);
}

fn glob(dir: &str) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir).map_or(vec![], |d| {
        d.filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "hex"))
            .collect()
    })
}
