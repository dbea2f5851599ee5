//! Offline capture reading for `vmmi decode --pcap`: classic pcap and pcapng files, link layers
//! Ethernet / Linux cooked (v1, v2) / raw IP / BSD loopback, IPv4 and IPv6, TCP stream
//! reassembly per direction, UDP datagrams.
//!
//! Owns: turning a capture file into ordered payload events (`Segment`s of a TCP stream, UDP
//! datagrams) with their addresses. Must not: know BGP or LISP (the decoder frames them), or
//! panic on any file — a capture is untrusted input, read with the same bounded `Reader`.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::wire::reader::{Reader, WireResult};

/// One transport payload from the capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    /// 1-based frame number in the file (as Wireshark counts).
    pub frame: usize,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
    pub data: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("not a pcap or pcapng file (magic {0:08x})")]
    BadMagic(u32),
    #[error("{0}")]
    Wire(#[from] crate::wire::WireError),
    #[error("unsupported link type {0} (Ethernet, Linux cooked v1/v2, raw IP, loopback are)")]
    LinkType(u32),
}

struct Frame<'a> {
    linktype: u32,
    data: &'a [u8],
}

/// Read every frame of a pcap/pcapng file.
fn frames(file: &[u8]) -> Result<Vec<Frame<'_>>, PcapError> {
    let r = Reader::new(file);
    let magic = r.clone().u32("magic")?;
    match magic {
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => classic(file, magic),
        0x0a0d_0d0a => pcapng(file),
        m => Err(PcapError::BadMagic(m)),
    }
}

fn rd_u32(r: &mut Reader<'_>, le: bool, f: &'static str) -> WireResult<u32> {
    let b = r.array::<4>(f)?;
    Ok(if le {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    })
}

fn rd_u16(r: &mut Reader<'_>, le: bool, f: &'static str) -> WireResult<u16> {
    let b = r.array::<2>(f)?;
    Ok(if le {
        u16::from_le_bytes(b)
    } else {
        u16::from_be_bytes(b)
    })
}

fn classic(file: &[u8], magic: u32) -> Result<Vec<Frame<'_>>, PcapError> {
    let le = matches!(magic, 0xd4c3_b2a1 | 0x4d3c_b2a1);
    let mut r = Reader::new(file);
    r.bytes(20, "pcap header")?;
    let linktype = rd_u32(&mut r, le, "link type")? & 0x0fff_ffff;
    let mut out = Vec::new();
    while !r.is_empty() {
        r.bytes(8, "record timestamp")?;
        let caplen = rd_u32(&mut r, le, "captured length")? as usize;
        let _orig = rd_u32(&mut r, le, "original length")?;
        out.push(Frame {
            linktype,
            data: r.bytes(caplen, "packet data")?,
        });
    }
    Ok(out)
}

fn pcapng(file: &[u8]) -> Result<Vec<Frame<'_>>, PcapError> {
    let mut r = Reader::new(file);
    let mut le = true;
    let mut ifaces: Vec<u32> = Vec::new();
    let mut out = Vec::new();
    while !r.is_empty() {
        let typ_bytes = r.clone().array::<4>("block type")?;
        if typ_bytes == [0x0a, 0x0d, 0x0d, 0x0a] {
            // Section Header Block: the byte-order magic decides endianness for the section.
            let mut p = r.clone();
            p.bytes(8, "section header")?;
            le = p.array::<4>("byte-order magic")? == [0x4d, 0x3c, 0x2b, 0x1a];
            ifaces.clear();
        }
        let typ = rd_u32(&mut r, le, "block type")?;
        let total = rd_u32(&mut r, le, "block length")? as usize;
        let mut body = r.sub(total.saturating_sub(12), "block body")?;
        rd_u32(&mut r, le, "trailing block length")?;
        match typ {
            1 => ifaces.push(u32::from(rd_u16(&mut body, le, "interface link type")?)),
            6 => {
                let iface = rd_u32(&mut body, le, "interface id")? as usize;
                body.bytes(8, "timestamp")?;
                let caplen = rd_u32(&mut body, le, "captured length")? as usize;
                let _orig = rd_u32(&mut body, le, "original length")?;
                let linktype = ifaces.get(iface).copied().unwrap_or(1);
                out.push(Frame {
                    linktype,
                    data: body.bytes(caplen, "packet data")?,
                });
            }
            3 => {
                let _orig = rd_u32(&mut body, le, "original length")?;
                let linktype = ifaces.first().copied().unwrap_or(1);
                out.push(Frame {
                    linktype,
                    data: body.rest(),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Strip the link layer; returns (ethertype-like protocol, network packet).
fn link<'a>(f: &Frame<'a>) -> Result<Option<(u16, &'a [u8])>, PcapError> {
    let mut r = Reader::new(f.data);
    let ethertype = match f.linktype {
        1 => {
            r.bytes(12, "ethernet addresses")?;
            let mut t = r.u16("ethertype")?;
            while t == 0x8100 || t == 0x88a8 {
                r.bytes(2, "VLAN tag")?;
                t = r.u16("ethertype")?;
            }
            t
        }
        113 => {
            r.bytes(14, "cooked header")?;
            r.u16("protocol")?
        }
        276 => {
            let t = r.u16("protocol")?;
            r.bytes(18, "cooked v2 header")?;
            t
        }
        0 => {
            let fam = r.array::<4>("loopback family")?;
            if u32::from_le_bytes(fam) == 2 || u32::from_be_bytes(fam) == 2 {
                0x0800
            } else {
                0x86dd
            }
        }
        101 | 228 | 229 => match r.peek_u8().map(|b| b >> 4) {
            Some(4) => 0x0800,
            Some(6) => 0x86dd,
            _ => return Ok(None),
        },
        t => return Err(PcapError::LinkType(t)),
    };
    Ok(Some((ethertype, r.rest())))
}

struct Ip<'a> {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &'a [u8],
}

fn ip(ethertype: u16, pkt: &[u8]) -> WireResult<Option<Ip<'_>>> {
    let mut r = Reader::new(pkt);
    match ethertype {
        0x0800 => {
            let vihl = r.u8("IPv4 version/IHL")?;
            let ihl = usize::from(vihl & 0x0f) * 4;
            r.bytes(1, "TOS")?;
            let total = usize::from(r.u16("IPv4 total length")?);
            r.bytes(4, "id/fragment")?;
            r.bytes(1, "TTL")?;
            let proto = r.u8("protocol")?;
            r.bytes(2, "checksum")?;
            let src = IpAddr::V4(Ipv4Addr::from(r.array::<4>("source")?));
            let dst = IpAddr::V4(Ipv4Addr::from(r.array::<4>("destination")?));
            r.bytes(ihl.saturating_sub(20), "IPv4 options")?;
            // total may be 0 with TSO captures; then take what is there
            let len = if total >= ihl {
                (total - ihl).min(r.remaining())
            } else {
                r.remaining()
            };
            Ok(Some(Ip {
                src,
                dst,
                proto,
                payload: r.bytes(len, "IPv4 payload")?,
            }))
        }
        0x86dd => {
            r.bytes(4, "IPv6 version/class/flow")?;
            let plen = usize::from(r.u16("IPv6 payload length")?);
            let proto = r.u8("next header")?;
            r.bytes(1, "hop limit")?;
            let src = IpAddr::V6(Ipv6Addr::from(r.array::<16>("source")?));
            let dst = IpAddr::V6(Ipv6Addr::from(r.array::<16>("destination")?));
            let len = plen.min(r.remaining());
            Ok(Some(Ip {
                src,
                dst,
                proto,
                payload: r.bytes(len, "IPv6 payload")?,
            }))
        }
        _ => Ok(None),
    }
}

#[derive(Default)]
struct Stream {
    next_seq: Option<u32>,
    pending: BTreeMap<u32, (usize, Vec<u8>)>,
}

/// Read the capture and return TCP payloads (reassembled in sequence order per direction, each
/// chunk tagged with the frame that completed it) and UDP datagrams, in capture order. Only
/// traffic on the given TCP/UDP ports is returned.
pub fn read(file: &[u8], tcp_port: u16, udp_port: u16) -> Result<Vec<Payload>, PcapError> {
    let mut out = Vec::new();
    let mut streams: HashMap<(SocketAddr, SocketAddr), Stream> = HashMap::new();
    for (i, f) in frames(file)?.iter().enumerate() {
        let frame = i + 1;
        let Some((et, pkt)) = link(f)? else { continue };
        // A truncated or odd packet is skipped, not fatal: captures often cut packets short.
        let Ok(Some(ip)) = ip(et, pkt) else { continue };
        let mut r = Reader::new(ip.payload);
        match ip.proto {
            6 => {
                let Ok(sport) = r.u16("source port") else {
                    continue;
                };
                let Ok(dport) = r.u16("destination port") else {
                    continue;
                };
                let Ok(seq) = r.u32("sequence") else { continue };
                let Ok(_ack) = r.u32("ack") else { continue };
                let Ok(off) = r.u8("data offset") else {
                    continue;
                };
                let Ok(fl) = r.u8("flags") else { continue };
                if r.bytes(6, "window/checksum/urgent").is_err() {
                    continue;
                }
                if r.bytes(
                    (usize::from(off >> 4) * 4).saturating_sub(20),
                    "TCP options",
                )
                .is_err()
                {
                    continue;
                }
                if sport != tcp_port && dport != tcp_port {
                    continue;
                }
                let src = SocketAddr::new(ip.src, sport);
                let dst = SocketAddr::new(ip.dst, dport);
                let st = streams.entry((src, dst)).or_default();
                let syn = fl & 0x02 != 0;
                let data = r.rest();
                if syn {
                    st.next_seq = Some(seq.wrapping_add(1));
                    st.pending.clear();
                    continue;
                }
                if data.is_empty() {
                    continue;
                }
                let next = *st.next_seq.get_or_insert(seq);
                // drop what we already have (retransmissions), keep what is ahead
                let behind = next.wrapping_sub(seq);
                let data = if (behind as i32) > 0 {
                    data.get(behind as usize..).unwrap_or(&[])
                } else {
                    data
                };
                let seq = if (behind as i32) > 0 { next } else { seq };
                if data.is_empty() {
                    continue;
                }
                st.pending.insert(seq, (frame, data.to_vec()));
                while let Some((s, (fr, d))) =
                    st.pending.first_key_value().map(|(k, v)| (*k, v.clone()))
                {
                    let cur = st.next_seq.unwrap_or(s);
                    if s != cur {
                        break;
                    }
                    st.pending.remove(&s);
                    st.next_seq = Some(cur.wrapping_add(d.len() as u32));
                    out.push(Payload {
                        frame: fr,
                        src,
                        dst,
                        transport: Transport::Tcp,
                        data: d,
                    });
                }
            }
            17 => {
                let Ok(sport) = r.u16("source port") else {
                    continue;
                };
                let Ok(dport) = r.u16("destination port") else {
                    continue;
                };
                let Ok(len) = r.u16("UDP length") else {
                    continue;
                };
                let Ok(_ck) = r.u16("UDP checksum") else {
                    continue;
                };
                if sport != udp_port && dport != udp_port {
                    continue;
                }
                let n = usize::from(len).saturating_sub(8).min(r.remaining());
                let Ok(data) = r.bytes(n, "UDP payload") else {
                    continue;
                };
                out.push(Payload {
                    frame,
                    src: SocketAddr::new(ip.src, sport),
                    dst: SocketAddr::new(ip.dst, dport),
                    transport: Transport::Udp,
                    data: data.to_vec(),
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Write a classic pcap (Ethernet link type) wrapping each payload in Ethernet/IPv4/UDP or TCP
/// headers, for the tshark oracle tests and for reproducing captures. TCP payloads of one
/// direction get consecutive sequence numbers.
pub fn write(payloads: &[(SocketAddr, SocketAddr, Transport, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(0xa1b2_c3d4u32.to_le_bytes());
    out.extend(2u16.to_le_bytes());
    out.extend(4u16.to_le_bytes());
    out.extend([0u8; 8]);
    out.extend(65535u32.to_le_bytes());
    out.extend(1u32.to_le_bytes());
    let mut seqs: HashMap<(SocketAddr, SocketAddr), u32> = HashMap::new();
    for (i, (src, dst, t, data)) in payloads.iter().enumerate() {
        let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
            continue;
        };
        let mut l4 = Vec::new();
        l4.extend(src.port().to_be_bytes());
        l4.extend(dst.port().to_be_bytes());
        let proto = match t {
            Transport::Udp => {
                l4.extend(((8 + data.len()) as u16).to_be_bytes());
                l4.extend([0, 0]);
                17u8
            }
            Transport::Tcp => {
                let seq = seqs.entry((*src, *dst)).or_insert(1000);
                l4.extend(seq.to_be_bytes());
                *seq = seq.wrapping_add(data.len() as u32);
                l4.extend(1u32.to_be_bytes());
                l4.extend([0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
                6u8
            }
        };
        l4.extend(data);
        let mut ipv4 = vec![0x45, 0];
        ipv4.extend(((20 + l4.len()) as u16).to_be_bytes());
        ipv4.extend([0, 0, 0x40, 0, 64, proto, 0, 0]);
        ipv4.extend(s.octets());
        ipv4.extend(d.octets());
        let sum = checksum(&ipv4);
        if let Some(c) = ipv4.get_mut(10..12) {
            c.copy_from_slice(&sum.to_be_bytes());
        }
        if proto == 17 || proto == 6 {
            // transport checksum over the pseudo-header (tshark flags a zero UDP checksum only as
            // "none", but a wrong TCP checksum as a warning)
            let mut pseudo = Vec::new();
            pseudo.extend(s.octets());
            pseudo.extend(d.octets());
            pseudo.extend([0, proto]);
            pseudo.extend((l4.len() as u16).to_be_bytes());
            pseudo.extend(&l4);
            let mut c = checksum(&pseudo);
            if proto == 17 && c == 0 {
                c = 0xffff;
            }
            let at = if proto == 17 { 6 } else { 16 };
            if let Some(x) = l4.get_mut(at..at + 2) {
                x.copy_from_slice(&c.to_be_bytes());
            }
        }
        let mut frame = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
        frame.extend(ipv4);
        frame.extend(l4);
        out.extend((i as u32).to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((frame.len() as u32).to_le_bytes());
        out.extend((frame.len() as u32).to_le_bytes());
        out.extend(frame);
    }
    out
}

fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in b.chunks(2) {
        let w = match c {
            [a, b] => u16::from_be_bytes([*a, *b]),
            [a] => u16::from_be_bytes([*a, 0]),
            _ => 0,
        };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read_round_trip_with_tcp_split() {
        let a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:179".parse().unwrap();
        let l: SocketAddr = "10.0.0.3:4342".parse().unwrap();
        let pcap = write(&[
            (a, b, Transport::Tcp, vec![1, 2, 3]),
            (l, b, Transport::Udp, vec![9, 9]),
            (a, b, Transport::Tcp, vec![4, 5]),
        ]);
        let p = read(&pcap, 179, 4342).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(
            (p[0].frame, p[0].data.clone(), p[0].transport),
            (1, vec![1, 2, 3], Transport::Tcp)
        );
        assert_eq!((p[1].src, p[1].data.clone()), (l, vec![9, 9]));
        assert_eq!(p[2].data, vec![4, 5]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            read(&[1, 2, 3, 4, 5], 179, 4342),
            Err(PcapError::BadMagic(_))
        ));
        assert!(read(&[0xd4, 0xc3, 0xb2, 0xa1, 0, 0], 179, 4342).is_err());
    }
}
