//! The LISP side of the bench: K ITRs and one RFC 9437 subscriber, one UDP socket each on
//! 127.S.x.y:4342, all served by one current-thread tokio runtime in its own thread; what they
//! receive goes to the measuring thread as `Ev` with the time the receive returned.

use super::*;
/// What the sockets saw, with the time the receive returned.
pub(crate) enum Ev {
    /// ITR k got an SMR for `eid`; its SMR-invoked Map-Request has been sent.
    Smr {
        at: Instant,
        itr: usize,
        eid: EidPrefix,
    },
    /// ITR k got a Map-Reply.
    Reply { itr: usize, records: Vec<Rec> },
    /// The subscriber got a Map-Notify (already acknowledged when `auth_ok`).
    Notify {
        at: Instant,
        auth_ok: bool,
        records: Vec<Rec>,
    },
    /// Anything else (counted, shown in the self-check's failure message).
    Other(String),
}

#[derive(Clone, Debug)]
pub(crate) struct Rec {
    pub(crate) eid: Option<EidPrefix>,
    pub(crate) rlocs: Vec<IpAddr>,
    pub(crate) version: u32,
}

pub(crate) fn recs(v: &[vmmi::wire::lisp::EidRecord]) -> Vec<Rec> {
    v.iter()
        .map(|r| Rec {
            eid: EidPrefix::from_wire(r.mask_len, &r.eid).ok().map(|x| x.0),
            rlocs: r
                .locators
                .iter()
                .filter_map(|l| match l.addr {
                    LispAddr::Ipv4(a) => Some(IpAddr::V4(a)),
                    LispAddr::Ipv6(a) => Some(IpAddr::V6(a)),
                    _ => None,
                })
                .collect(),
            version: r.map_version.get(),
        })
        .collect()
}

pub(crate) enum Via {
    Itr(usize),
    Sub,
}

pub(crate) struct LispSide {
    pub(crate) cmd: tokio::sync::mpsc::UnboundedSender<(Via, Vec<u8>)>,
    pub(crate) ev: mpsc::Receiver<Ev>,
    pub(crate) stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub(crate) thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LispSide {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl LispSide {
    pub(crate) fn send(&self, via: Via, bytes: Vec<u8>) {
        let _ = self.cmd.send((via, bytes));
    }
}

pub(crate) fn map_request(
    eid: EidPrefix,
    itr: Ipv4Addr,
    src: Option<EidPrefix>,
    nonce: u64,
    smr_invoked: bool,
    xtr: Option<XtrTrailer>,
) -> Vec<u8> {
    let (addr, mask_len) = eid.to_wire(Default::default());
    let mut m = MapRequest::new(nonce, LispAddr::Ipv4(itr), addr, mask_len);
    m.smr_invoked = smr_invoked;
    m.source_eid = src.map_or(LispAddr::None, |e| e.to_wire(Default::default()).0);
    if let Some(r) = m.records.first_mut() {
        r.notify = xtr.is_some();
    }
    m.xtr = xtr;
    let mut b = Vec::new();
    m.encode(&mut b);
    b
}

pub(crate) fn start_lisp_side(
    p: Plan,
    itrs: Vec<UdpSocket>,
    sub: UdpSocket,
) -> Result<LispSide, String> {
    let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::unbounded_channel::<(Via, Vec<u8>)>();
    let (ev_tx, ev_rx) = mpsc::channel::<Ev>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let ms = p.lisp();
    let thread = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = ready_tx.send(Err(e.to_string()));
                return;
            }
        };
        rt.block_on(async move {
            let conv = |s: UdpSocket| {
                s.set_nonblocking(true)
                    .and_then(|()| tokio::net::UdpSocket::from_std(s))
                    .map(Arc::new)
            };
            let itrs: Vec<Arc<tokio::net::UdpSocket>> =
                match itrs.into_iter().map(conv).collect::<Result<_, _>>() {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                        return;
                    }
                };
            let sub = match conv(sub) {
                Ok(s) => s,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            for (k, s) in itrs.iter().enumerate() {
                tokio::spawn(itr_task(p, k, s.clone(), ev_tx.clone(), ms));
            }
            tokio::spawn(sub_task(sub.clone(), ev_tx.clone(), ms));
            let senders = (itrs, sub);
            tokio::spawn(async move {
                while let Some((via, bytes)) = cmd_rx.recv().await {
                    let s = match via {
                        Via::Itr(k) => senders.0.get(k),
                        Via::Sub => Some(&senders.1),
                    };
                    if let Some(s) = s {
                        let _ = s.send_to(&bytes, ms).await;
                    }
                }
            });
            let _ = ready_tx.send(Ok(()));
            let _ = stop_rx.await;
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|e| format!("LISP side did not start: {e}"))??;
    Ok(LispSide {
        cmd: cmd_tx,
        ev: ev_rx,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// ITR k: answers an SMR with an SMR-invoked Map-Request for the SMR's Source-EID through the
/// Map-Resolver (RFC 9301 §6.1), reports SMRs and Map-Replies.
pub(crate) async fn itr_task(
    p: Plan,
    k: usize,
    s: Arc<tokio::net::UdpSocket>,
    ev: mpsc::Sender<Ev>,
    ms: SocketAddr,
) {
    let mut buf = vec![0u8; 9000];
    let mut nonce = (k as u64) << 32 | 0x8000_0000;
    loop {
        let Ok((n, from)) = s.recv_from(&mut buf).await else {
            continue;
        };
        let at = Instant::now();
        let e = match decode(&buf[..n]) {
            Ok(LispMsg::MapRequest(r)) if r.smr => match EidPrefix::host_from_wire(&r.source_eid) {
                Some(eid) => {
                    nonce += 1;
                    let b = map_request(eid, p.itr(k), Some(itr_eid(k)), nonce, true, None);
                    let _ = s.send_to(&b, ms).await;
                    Ev::Smr { at, itr: k, eid }
                }
                None => Ev::Other(format!("ITR {k}: SMR without a host Source-EID: {r:?}")),
            },
            Ok(LispMsg::MapReply(r)) => Ev::Reply {
                itr: k,
                records: recs(&r.records),
            },
            Ok(other) => Ev::Other(format!("ITR {k} from {from}: {other:?}")),
            Err(e) => Ev::Other(format!("ITR {k} from {from}: undecodable: {e}")),
        };
        if ev.send(e).is_err() {
            return;
        }
    }
}

/// The subscriber: verifies every Map-Notify with the site key and acknowledges it (a
/// Map-Notify-Ack is the Map-Notify with type 5, signed again: RFC 9301 §5.7, RFC 9437 §6).
pub(crate) async fn sub_task(s: Arc<tokio::net::UdpSocket>, ev: mpsc::Sender<Ev>, ms: SocketAddr) {
    let mut buf = vec![0u8; 9000];
    loop {
        let Ok((n, from)) = s.recv_from(&mut buf).await else {
            continue;
        };
        let at = Instant::now();
        let bytes = &buf[..n];
        let e = match decode(bytes) {
            Ok(LispMsg::MapNotify(m)) => {
                let auth_ok = verify(bytes, KEY.as_bytes(), &params()).is_ok();
                if auth_ok {
                    let mut ack = bytes.to_vec();
                    ack[0] = (ack[0] & 0x0f) | 0x50;
                    if sign(&mut ack, KEY.as_bytes(), &params()).is_ok() {
                        let _ = s.send_to(&ack, ms).await;
                    }
                }
                Ev::Notify {
                    at,
                    auth_ok,
                    records: recs(&m.records),
                }
            }
            Ok(other) => Ev::Other(format!("subscriber from {from}: {other:?}")),
            Err(e) => Ev::Other(format!("subscriber from {from}: undecodable: {e}")),
        };
        if ev.send(e).is_err() {
            return;
        }
    }
}
