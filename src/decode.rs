//! `vmmi decode`: raw BGP/LISP messages (hex, stdin, pcap) → one JSON object per message, each
//! with its RFC 7606 / LISP validity verdict.
//!
//! Owns: input parsing (hex text, capture files via `pcap`), per-stream BGP framing with the
//! session context learned from the OPENs seen, and the JSON shape.
//! Must not: panic on any input — every error becomes an `"error"` object naming the byte
//! offset and what was expected.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::pcap::{self, Transport};
use crate::wire::bgp::capability::{AddPathFamily, Capability};
use crate::wire::bgp::message::frame_len;
use crate::wire::bgp::validate::{ValidateCtx, Verdict, validate};
use crate::wire::bgp::{BgpCtx, Family, Message};
use crate::wire::lisp;
use crate::wire::types::Hex;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Proto {
    Bgp,
    Lisp,
}

/// Options shared by all inputs.
#[derive(Clone, Debug)]
pub struct DecodeOpts {
    pub proto: Option<Proto>,
    /// Assume a 4-octet AS session when no OPEN was seen.
    pub four_octet_as: bool,
    /// Families with ADD-PATH receive when no OPEN was seen.
    pub add_path: Vec<Family>,
    /// Validate as an iBGP session when no OPEN pair was seen.
    pub ibgp: bool,
    pub tcp_port: u16,
    pub udp_port: u16,
    /// Pre-shared key to verify Map-Register / Map-Notify / Map-Notify-Ack authentication.
    pub lisp_key: Option<Vec<u8>>,
}

impl Default for DecodeOpts {
    fn default() -> Self {
        DecodeOpts {
            proto: None,
            four_octet_as: true,
            add_path: Vec::new(),
            ibgp: false,
            tcp_port: 179,
            udp_port: 4342,
            lisp_key: None,
        }
    }
}

/// Parse hex text: whitespace, `0x` prefixes, `:` and `-` separators are ignored.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let cleaned: Vec<(usize, char)> = text
        .char_indices()
        .filter(|(_, c)| !c.is_whitespace() && *c != ':' && *c != '-')
        .collect();
    let mut digits = Vec::with_capacity(cleaned.len());
    let mut i = 0;
    while i < cleaned.len() {
        let (pos, c) = cleaned.get(i).copied().unwrap_or((0, ' '));
        if c == '0' && matches!(cleaned.get(i + 1), Some((_, 'x' | 'X'))) {
            i += 2;
            continue;
        }
        match c.to_digit(16) {
            Some(d) => digits.push(d as u8),
            None => {
                return Err(format!(
                    "invalid hex character {c:?} at text offset {pos}: expected 0-9, a-f"
                ));
            }
        }
        i += 1;
    }
    if digits.len() % 2 != 0 {
        return Err(format!(
            "odd number of hex digits ({}): expected whole octets",
            digits.len()
        ));
    }
    Ok(digits
        .chunks(2)
        .map(|p| match p {
            [h, l] => (h << 4) | l,
            _ => 0,
        })
        .collect())
}

fn hex(b: &[u8]) -> String {
    Hex(b).to_string()
}

fn guess_proto(b: &[u8]) -> Proto {
    // the BGP marker, even when the message is cut short; a LISP message starting 0xff would be
    // type 15, which vmmi does not decode either way
    if b.len() >= 4 && b.iter().take(16).all(|x| *x == 0xff) {
        Proto::Bgp
    } else {
        Proto::Lisp
    }
}

/// Per-stream session knowledge learned from OPEN messages.
#[derive(Default, Clone)]
struct Session {
    opens: HashMap<SocketAddr, crate::wire::bgp::open::OpenMsg>,
}

impl Session {
    fn ctx(&self, from: Option<SocketAddr>, opts: &DecodeOpts) -> (BgpCtx, ValidateCtx) {
        let opens: Vec<_> = self.opens.values().collect();
        let families_all = vec![
            Family::IPV4_UNICAST,
            Family::IPV6_UNICAST,
            Family::L2VPN_EVPN,
        ];
        if opens.len() < 2 {
            let b = BgpCtx {
                four_octet_as: opts.four_octet_as,
                extended_message: true,
                add_path_rx: opts.add_path.clone(),
            };
            let v = ValidateCtx {
                ibgp: opts.ibgp,
                four_octet_as: opts.four_octet_as,
                families: families_all,
                ..Default::default()
            };
            return (b, v);
        }
        let has = |o: &crate::wire::bgp::open::OpenMsg, f: &dyn Fn(&Capability) -> bool| {
            o.capabilities().any(f)
        };
        let four = opens
            .iter()
            .all(|o| has(o, &|c| matches!(c, Capability::FourOctetAs { .. })));
        let ext = opens
            .iter()
            .all(|o| has(o, &|c| matches!(c, Capability::ExtendedMessage)));
        let mp = |o: &crate::wire::bgp::open::OpenMsg| -> Vec<Family> {
            o.capabilities()
                .filter_map(|c| match c {
                    Capability::Multiprotocol { family, .. } => Some(*family),
                    _ => None,
                })
                .collect()
        };
        let a = opens.first().map(|o| mp(o)).unwrap_or_default();
        let b = opens.get(1).map(|o| mp(o)).unwrap_or_default();
        let mut families: Vec<Family> = a.into_iter().filter(|f| b.contains(f)).collect();
        if families.is_empty() {
            families.push(Family::IPV4_UNICAST);
        }
        // ADD-PATH receive for messages sent by `from`: the sender advertised send (2/3) and
        // the receiver receive (1/3) (RFC 7911 §4).
        let ap = |o: &crate::wire::bgp::open::OpenMsg| -> Vec<AddPathFamily> {
            o.capabilities()
                .filter_map(|c| match c {
                    Capability::AddPath { families } => Some(families.clone()),
                    _ => None,
                })
                .flatten()
                .collect()
        };
        let mut add_path_rx = Vec::new();
        if let Some(sender) = from.and_then(|f| self.opens.get(&f)) {
            let receiver = self
                .opens
                .iter()
                .find(|(k, _)| Some(**k) != from)
                .map(|(_, v)| v);
            if let Some(receiver) = receiver {
                for s in ap(sender) {
                    let rx = ap(receiver)
                        .iter()
                        .any(|r| r.family == s.family && r.send_receive & 1 != 0);
                    if s.send_receive & 2 != 0 && rx {
                        add_path_rx.push(s.family);
                    }
                }
            }
        }
        let ibgp = opens
            .iter()
            .map(|o| o.asn())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == 1;
        let peer_as = from.and_then(|f| self.opens.get(&f)).map_or(0, |o| o.asn());
        (
            BgpCtx {
                four_octet_as: four,
                extended_message: ext,
                add_path_rx,
            },
            ValidateCtx {
                ibgp,
                four_octet_as: four,
                families,
                peer_as,
                ..Default::default()
            },
        )
    }
}

fn bgp_object(msg: &Message, raw: &[u8], vctx: &ValidateCtx) -> Value {
    let verdict = match msg {
        Message::Update(u) => validate(u, vctx),
        _ => Verdict::ok(),
    };
    json!({ "proto": "bgp", "hex": hex(raw), "message": msg, "verdict": verdict })
}

/// Decode every BGP message in `buf` (concatenated messages allowed).
fn decode_bgp_stream(
    buf: &[u8],
    base: usize,
    session: &mut Session,
    from: Option<SocketAddr>,
    opts: &DecodeOpts,
    out: &mut Vec<Value>,
) -> usize {
    let mut pos = 0;
    while let Some(rest) = buf.get(pos..) {
        if rest.is_empty() {
            break;
        }
        let (ctx, vctx) = session.ctx(from, opts);
        let n = match frame_len(rest, &ctx) {
            Ok(Some(n)) if n <= rest.len() => n,
            Ok(_) => {
                if from.is_none() {
                    out.push(json!({ "proto": "bgp", "offset": base + pos, "error": format!(
                        "at byte {}: message: expected a complete message, only {} byte(s) left", base + pos, rest.len()) }));
                    return buf.len();
                }
                return pos; // wait for more stream bytes
            }
            Err(e) => {
                out.push(json!({ "proto": "bgp", "offset": base + pos + e.error.offset, "error": e.to_string(),
                    "verdict": Verdict::from_message_error(&e) }));
                return buf.len();
            }
        };
        let raw = rest.get(..n).unwrap_or(rest);
        match Message::decode(raw, &ctx) {
            Ok((m, _)) => {
                if let (Message::Open(o), Some(f)) = (&m, from) {
                    session.opens.insert(f, o.clone());
                }
                let mut obj = bgp_object(&m, raw, &vctx);
                obj["offset"] = json!(base + pos);
                out.push(obj);
            }
            Err(e) => out.push(
                json!({ "proto": "bgp", "offset": base + pos + e.error.offset, "hex": hex(raw),
                "error": e.to_string(), "verdict": Verdict::from_message_error(&e) }),
            ),
        }
        pos += n;
    }
    pos
}

/// RFC 9301 §5.6: Map-Register, Map-Notify and Map-Notify-Ack "MUST pass authentication or be
/// dropped". With a key, the verdict says whether this message would be accepted; the key id
/// byte is not checked (OOR and lispers.net send the RFC 6830 16-bit form) and either auth data
/// length (truncated or full HMAC output) is accepted, as vmmi does on receive.
fn lisp_auth_verdict(m: &lisp::LispMsg, buf: &[u8], key: &[u8]) -> Option<Value> {
    let auth = match m {
        lisp::LispMsg::MapRegister(r) => &r.auth,
        lisp::LispMsg::MapNotify(n) | lisp::LispMsg::MapNotifyAck(n) => &n.auth,
        _ => return None,
    };
    let params = lisp::AuthParams {
        key_id: auth.key_id,
        alg_id: auth.alg_id,
        truncate: false,
        legacy_key_id: true,
    };
    Some(match lisp::verify(buf, key, &params) {
        Ok(()) => json!({ "valid": true, "auth": "ok" }),
        Err(e) => {
            json!({ "valid": false, "auth": e.to_string(), "action": "drop", "rfc": "RFC 9301 §5.6" })
        }
    })
}

fn decode_lisp(buf: &[u8], base: usize, opts: &DecodeOpts) -> Value {
    match lisp::decode(buf) {
        Ok(m) => {
            let verdict = opts
                .lisp_key
                .as_deref()
                .and_then(|k| lisp_auth_verdict(&m, buf, k))
                .unwrap_or_else(|| json!({ "valid": true }));
            json!({ "proto": "lisp", "offset": base, "hex": hex(buf), "message": m, "verdict": verdict })
        }
        Err(e) => {
            json!({ "proto": "lisp", "offset": base + e.offset, "hex": hex(buf), "error": e.to_string(),
            "verdict": { "valid": false, "action": "drop", "rfc": "RFC 9301 §5" } })
        }
    }
}

/// Decode raw bytes: BGP messages back to back, or one LISP message.
pub fn decode_bytes(buf: &[u8], opts: &DecodeOpts) -> Vec<Value> {
    let mut out = Vec::new();
    match opts.proto.unwrap_or_else(|| guess_proto(buf)) {
        Proto::Bgp => {
            let mut s = Session::default();
            decode_bgp_stream(buf, 0, &mut s, None, opts, &mut out);
        }
        Proto::Lisp => out.push(decode_lisp(buf, 0, opts)),
    }
    out
}

/// Decode every BGP (TCP `tcp_port`, reassembled) and LISP (UDP `udp_port`) message in a capture.
pub fn decode_pcap(file: &[u8], opts: &DecodeOpts) -> Result<Vec<Value>, String> {
    let payloads = pcap::read(file, opts.tcp_port, opts.udp_port).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut sessions: HashMap<(SocketAddr, SocketAddr), Session> = HashMap::new();
    let mut buffers: HashMap<(SocketAddr, SocketAddr), (Vec<u8>, usize)> = HashMap::new();
    for p in payloads {
        let tag = |v: &mut Value| {
            v["frame"] = json!(p.frame);
            v["src"] = json!(p.src.to_string());
            v["dst"] = json!(p.dst.to_string());
        };
        match p.transport {
            Transport::Udp if opts.proto != Some(Proto::Bgp) => {
                let mut v = decode_lisp(&p.data, 0, opts);
                tag(&mut v);
                out.push(v);
            }
            Transport::Tcp if opts.proto != Some(Proto::Lisp) => {
                let key = if p.src < p.dst {
                    (p.src, p.dst)
                } else {
                    (p.dst, p.src)
                };
                let session = sessions.entry(key).or_default();
                let (buf, consumed) = buffers.entry((p.src, p.dst)).or_default();
                buf.extend(&p.data);
                let mut objs = Vec::new();
                let n = decode_bgp_stream(buf, *consumed, session, Some(p.src), opts, &mut objs);
                buf.drain(..n.min(buf.len()));
                *consumed += n;
                for mut v in objs {
                    tag(&mut v);
                    out.push(v);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex("0xff 00:01-02\n"), Ok(vec![0xff, 0, 1, 2]));
        assert_eq!(
            parse_hex("abc").unwrap_err(),
            "odd number of hex digits (3): expected whole octets"
        );
        assert!(parse_hex("zz").unwrap_err().contains("offset 0"));
    }

    #[test]
    fn lisp_key_verifies_oor_register() {
        // OOR's Map-Register from the lab (key "oor-lab-key", HMAC-SHA-1, 20 octets)
        let b = parse_hex(
            "30000101 7cfafd6fc7e0ea6c 0001 0014 3e17a6d0c5d598c727f1be36d7d078d598474f52 0000000a 01 18 1000 0000 4003 0000 0220 000a 0000006b 0001 0a010700 01 64 ff 00 0005 0001 0a600001",
        )
        .unwrap();
        let ok = DecodeOpts {
            lisp_key: Some(b"oor-lab-key".to_vec()),
            ..DecodeOpts::default()
        };
        assert_eq!(decode_bytes(&b, &ok)[0]["verdict"]["auth"], "ok");
        let bad = DecodeOpts {
            lisp_key: Some(b"nope".to_vec()),
            ..DecodeOpts::default()
        };
        let v = &decode_bytes(&b, &bad)[0]["verdict"];
        assert_eq!(
            (v["valid"].as_bool(), v["action"].as_str()),
            (Some(false), Some("drop"))
        );
    }

    #[test]
    fn keepalive_and_truncated() {
        let mut b = vec![0xff; 16];
        b.extend([0, 19, 4]);
        let v = decode_bytes(&b, &DecodeOpts::default());
        assert_eq!(v[0]["message"]["type"], "keepalive");
        let v = decode_bytes(
            &b[..17],
            &DecodeOpts {
                proto: Some(Proto::Bgp),
                ..DecodeOpts::default()
            },
        );
        assert!(
            v[0]["error"]
                .as_str()
                .unwrap()
                .contains("expected a complete message")
        );
    }
}
