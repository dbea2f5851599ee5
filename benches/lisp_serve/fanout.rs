//! Pub/sub fan-out through the daemon: S subscribers (sockets 0..S, each its own xTR-ID and
//! ITR-RLOC) subscribe to one EID (RFC 9437 §5) and acknowledge the subscription's Map-Notify;
//! then one Map-Register moves the EID to another RLOC and the clock runs until every
//! subscriber has received the publication (HMAC verified, the new RLOC) and sent its
//! Map-Notify-Ack.

use super::*;

pub(crate) struct Fanout {
    pub(crate) subscribers: usize,
    /// From the Map-Register's send to each publication's arrival, sorted.
    pub(crate) arrivals: Vec<Duration>,
    /// From the Map-Register's send to the last Map-Notify-Ack sent.
    pub(crate) last_ack: Option<Duration>,
    pub(crate) missing: usize,
    pub(crate) bad_auth: usize,
    pub(crate) wrong: usize,
    /// The daemon's CPU time from the Map-Register's send until the acknowledgements are in.
    pub(crate) daemon_cpu: Option<Duration>,
    pub(crate) daemon_counters: Value,
}

/// Subscriber `j`'s first nonce: a well-mixed 62-bit number (splitmix64 of `j`), or 1 for all.
fn first_nonce(j: usize, shared: bool) -> u64 {
    if shared {
        return 1;
    }
    let mut z = (j as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 2).max(1)
}

/// Subscribes sockets 0..n to `eid`, `window` at a time, acknowledging each confirmation.
pub(crate) fn subscribe_all(
    g: &mut Gen,
    eid: EidPrefix,
    n: usize,
    window: usize,
    shared_nonce: bool,
) -> Result<(), String> {
    let p = g.p;
    let mut done = vec![false; n];
    for attempt in 0..3u64 {
        let todo: Vec<usize> = (0..n).filter(|j| !done[*j]).collect();
        for w in todo.chunks(window.max(1)) {
            for &j in w {
                // RFC 9437 §5: a first subscription carries a fresh nonce (a retry a greater
                // one); with `--shared-nonce` every subscriber starts at 1
                let b = subscribe(&p, j, eid, first_nonce(j, shared_nonce) + attempt);
                g.send_batch(j, &[&b]);
            }
            let end = Instant::now() + Duration::from_secs(5);
            let mut acks: Vec<(usize, Vec<u8>)> = Vec::new();
            while w.iter().any(|j| !done[*j]) && Instant::now() < end {
                g.poll(Duration::from_millis(5), |j, b, _| {
                    if let Ok(LispMsg::MapNotify(_)) = decode(b)
                        && verify(b, KEY.as_bytes(), &params()).is_ok()
                        && let Some(a) = ack(b)
                    {
                        if let Some(d) = done.get_mut(j) {
                            *d = true;
                        }
                        acks.push((j, a));
                    }
                });
                for (j, a) in acks.drain(..) {
                    g.send_batch(j, &[&a]);
                }
            }
        }
    }
    let missing = done.iter().filter(|d| !**d).count();
    if missing > 0 {
        return Err(format!("{missing} of {n} subscriptions not confirmed"));
    }
    Ok(())
}

/// The change: VM `vm` re-registered at `new_rloc`; waits up to `limit` for every publication.
pub(crate) fn publish(
    g: &mut Gen,
    d: &Daemon,
    vm: u32,
    new_rloc: Ipv4Addr,
    n: usize,
    nonce: u64,
    limit: Duration,
) -> Result<Fanout, String> {
    // let the subscription acknowledgements land
    std::thread::sleep(Duration::from_millis(200));
    g.poll(Duration::ZERO, |_, _, _| {});
    let reg = map_register(&[(vm_eid(vm), new_rloc)], nonce);
    let mut got: Vec<Option<Duration>> = vec![None; n];
    let (mut bad_auth, mut wrong) = (0, 0);
    let mut last_ack = None;
    let mut acks: Vec<(usize, Vec<u8>)> = Vec::with_capacity(n);
    let cpu0 = d.cpu_time();
    let t0 = Instant::now();
    g.send_registrar(&reg)?;
    // Receiving comes first: a datagram is timed when `recv` returns it, and the HMAC check
    // and the Map-Notify-Ack (a second HMAC) of what arrived wait until no datagram is ready,
    // so that the generator's own crypto does not delay the arrival times it measures.
    let mut left = n;
    let mut backlog: Vec<(usize, Vec<u8>)> = Vec::with_capacity(n);
    while (left > 0 || !backlog.is_empty()) && t0.elapsed() < limit {
        let before = backlog.len();
        let wait = if backlog.is_empty() {
            Duration::from_millis(1)
        } else {
            Duration::ZERO
        };
        g.poll(wait, |j, b, at| {
            if j < n && b.first().is_some_and(|t| t >> 4 == 4) {
                if got[j].is_none() {
                    got[j] = Some(at.duration_since(t0));
                    left -= 1;
                }
                backlog.push((j, b.to_vec()));
            }
        });
        if backlog.len() > before {
            continue;
        }
        for (j, b) in backlog.drain(..) {
            let Ok(LispMsg::MapNotify(m)) = decode(&b) else {
                wrong += 1;
                continue;
            };
            if verify(&b, KEY.as_bytes(), &params()).is_err() {
                bad_auth += 1;
                continue;
            }
            if first_record(&m.records) != Some((vm_eid(vm), vec![new_rloc])) {
                wrong += 1;
                continue;
            }
            if let Some(a) = ack(&b) {
                acks.push((j, a));
            }
        }
        for (j, a) in acks.drain(..) {
            g.send_batch(j, &[&a]);
            last_ack = Some(t0.elapsed());
        }
    }
    let mut arrivals: Vec<Duration> = got.iter().flatten().copied().collect();
    arrivals.sort();
    // let the acknowledgements land before reading the counters
    std::thread::sleep(Duration::from_millis(300));
    let daemon_cpu = cpu0.zip(d.cpu_time()).map(|(a, b)| b.saturating_sub(a));
    Ok(Fanout {
        daemon_cpu,
        subscribers: n,
        missing: n - arrivals.len(),
        arrivals,
        last_ack,
        bad_auth,
        wrong,
        daemon_counters: d.api_json("/v1/lisp/counters")?,
    })
}
