//! The LISP messages the bench sends, built with vmmi's codec: Map-Registers for the EIDs
//! (signed with the site key), Map-Requests plain and in an ECM as templates whose nonce is
//! patched per send (the inner UDP checksum of the ECM is fixed incrementally, RFC 1624), and
//! RFC 9437 subscriptions.

use super::*;

pub(crate) fn params() -> AuthParams {
    AuthParams {
        key_id: 0,
        alg_id: 2,
        truncate: true,
        legacy_key_id: false,
    }
}

fn lisp_addr(ip: Ipv4Addr) -> LispAddr {
    LispAddr::Ipv4(ip)
}

/// A Map-Register (P and M bits: proxy reply, solicited Map-Notify) for `eids` at their RLOCs.
pub(crate) fn map_register(eids: &[(EidPrefix, Ipv4Addr)], nonce: u64) -> Vec<u8> {
    let records = eids
        .iter()
        .map(|(e, rloc)| {
            let (addr, mask_len) = e.to_wire(Default::default());
            EidRecord::new(
                addr,
                mask_len,
                10,
                0,
                vec![Locator::new(lisp_addr(*rloc), true)],
            )
        })
        .collect();
    let m = MapRegister {
        proxy_reply: true,
        lisp_sec: false,
        reserved: Bits::new(0),
        eid_notify: false,
        ttl_timeout: false,
        merge: false,
        r: false,
        want_map_notify: true,
        nonce,
        auth: params().placeholder().unwrap_or_default(),
        records,
        xtr: None,
    };
    let mut b = Vec::new();
    m.encode(&mut b);
    sign(&mut b, KEY.as_bytes(), &params()).expect("sign");
    b
}

pub(crate) fn map_request(
    eid: EidPrefix,
    itr: Ipv4Addr,
    nonce: u64,
    xtr: Option<XtrTrailer>,
) -> MapRequest {
    let (addr, mask_len) = eid.to_wire(Default::default());
    let mut m = MapRequest::new(nonce, lisp_addr(itr), addr, mask_len);
    if let Some(r) = m.records.first_mut() {
        r.notify = xtr.is_some();
    }
    m.xtr = xtr;
    m
}

/// `m` in an ECM from the ITR-RLOC to the EID, inner UDP source port 4342 (where the
/// Map-Reply goes, RFC 9301 §5.5).
pub(crate) fn ecm(m: &MapRequest, itr: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let ip = InnerIp::V4(Ipv4Header {
        tos: 0,
        total_length: 0,
        id: 0,
        flags_fragment: 0x4000,
        ttl: 64,
        checksum: 0,
        src: itr,
        dst,
        options: Vec::new(),
    });
    LispMsg::Ecm(Ecm::new(ip, 4342, LispMsg::MapRequest(m.clone()))).to_bytes()
}

/// A Map-Request ready to send again with another nonce.
pub(crate) struct Template {
    pub(crate) bytes: Vec<u8>,
    nonce_at: usize,
    /// The inner UDP checksum of an ECM (covers the nonce).
    csum_at: Option<usize>,
    nonce: [u8; 8],
    /// The VM asked about.
    pub(crate) vm: u32,
}

const MARK: u64 = 0x5eed_0bad_cafe_f00d;

impl Template {
    /// Map-Request for VM `vm` from ITR `itr`, in an ECM when `wrapped`.
    pub(crate) fn new(p: &Plan, vm: u32, itr: usize, wrapped: bool) -> Template {
        let ip = p.itr(itr);
        let m = map_request(vm_eid(vm), ip, MARK, None);
        let (bytes, csum_at) = if wrapped {
            // ECM header 4, inner IPv4 header 20, UDP checksum at 6 in the UDP header
            (ecm(&m, ip, vm_ip(vm)), Some(4 + 20 + 6))
        } else {
            let mut b = Vec::new();
            m.encode(&mut b);
            (b, None)
        };
        let nonce_at = bytes
            .windows(8)
            .position(|w| w == MARK.to_be_bytes())
            .expect("nonce in the encoding");
        Template {
            bytes,
            nonce_at,
            csum_at,
            nonce: MARK.to_be_bytes(),
            vm,
        }
    }

    /// Sets the nonce (and fixes the inner checksum, RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')).
    pub(crate) fn set_nonce(&mut self, nonce: u64) {
        let new = nonce.to_be_bytes();
        if let Some(at) = self.csum_at {
            let hc = u16::from_be_bytes([self.bytes[at], self.bytes[at + 1]]);
            if hc != 0 {
                let mut sum = u32::from(!hc);
                for i in (0..8).step_by(2) {
                    sum += u32::from(!u16::from_be_bytes([self.nonce[i], self.nonce[i + 1]]));
                    sum += u32::from(u16::from_be_bytes([new[i], new[i + 1]]));
                }
                while sum > 0xffff {
                    sum = (sum & 0xffff) + (sum >> 16);
                }
                let c = !(sum as u16);
                let c = if c == 0 { 0xffff } else { c };
                self.bytes[at..at + 2].copy_from_slice(&c.to_be_bytes());
            }
        }
        self.bytes[self.nonce_at..self.nonce_at + 8].copy_from_slice(&new);
        self.nonce = new;
    }
}

/// RFC 9437 §5: subscriber `j` (its own xTR-ID) asks for `eid` with the N bit.
pub(crate) fn subscribe(p: &Plan, j: usize, eid: EidPrefix, nonce: u64) -> Vec<u8> {
    let xtr = XtrTrailer {
        xtr_id: SUB_XTR_ID + j as u128,
        site_id: Some(1),
    };
    let mut b = Vec::new();
    map_request(eid, p.itr(j), nonce, Some(xtr)).encode(&mut b);
    b
}

/// The Map-Notify-Ack for Map-Notify `n`: its fields, type 5, signed again (RFC 9301 §5.7).
pub(crate) fn ack(n: &[u8]) -> Option<Vec<u8>> {
    let mut b = n.to_vec();
    *b.first_mut()? = (b[0] & 0x0f) | 0x50;
    sign(&mut b, KEY.as_bytes(), &params()).ok()?;
    Some(b)
}

/// The first record's EID and IPv4 RLOCs.
pub(crate) fn first_record(records: &[EidRecord]) -> Option<(EidPrefix, Vec<Ipv4Addr>)> {
    let r = records.first()?;
    let (e, _) = EidPrefix::from_wire(r.mask_len, &r.eid).ok()?;
    let rlocs = r
        .locators
        .iter()
        .filter_map(|l| match l.addr {
            LispAddr::Ipv4(a) => Some(a),
            _ => None,
        })
        .collect();
    Some((e, rlocs))
}
