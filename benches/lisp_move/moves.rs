//! The BGP side of the bench (a session to vmmi on `bgp_gen`) and the measurement: the
//! closed and open loops, per-move matching of SMRs and Map-Notifies, percentiles.

use super::*;

pub(crate) struct Bgp {
    pub(crate) s: TcpStream,
    pub(crate) ctx: BgpCtx,
    pub(crate) hold: u16,
    pub(crate) last_ka: Instant,
    pub(crate) closed: Arc<Mutex<Option<String>>>,
    pub(crate) stop: Arc<AtomicBool>,
}

impl Drop for Bgp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.s.shutdown(std::net::Shutdown::Both);
    }
}

impl Bgp {
    pub(crate) fn connect(p: &Plan) -> Result<Bgp, String> {
        let remote = SocketAddr::new(IpAddr::V4(p.vmmi()), 1179);
        let end = Instant::now() + Duration::from_secs(10);
        let mut s = loop {
            let sock = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )
            .map_err(|e| e.to_string())?;
            sock.bind(&SocketAddr::new(IpAddr::V4(p.gen_ip()), 0).into())
                .map_err(|e| format!("bind {}: {e}", p.gen_ip()))?;
            match sock.connect_timeout(&remote.into(), Duration::from_secs(2)) {
                Ok(()) => break TcpStream::from(sock),
                Err(e) if Instant::now() < end => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(format!("connect {remote}: {e}")),
            }
        };
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let mut fr = Framer::new();
        let ours = open_msg(GEN_ASN, 90, p.gen_ip(), true);
        let Opened { ctx, hold } =
            open_exchange(&mut s, &mut fr, &ours, true, Some(VMMI_ASN), |_, _, _| {})?;
        // reader: drains what vmmi sends (its own routes, keepalives), answers nothing
        let closed = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let mut rs = s.try_clone().map_err(|e| e.to_string())?;
        let _ = rs.set_read_timeout(Some(Duration::from_millis(500)));
        {
            let (closed, stop, ctx) = (closed.clone(), stop.clone(), ctx.clone());
            std::thread::spawn(move || {
                let why = loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match fr.next(&mut rs) {
                        Ok(Some(b)) => {
                            if let Ok((Message::Notification(n), _)) = Message::decode(b, &ctx) {
                                break format!("NOTIFICATION {}", n.describe());
                            }
                        }
                        Ok(None) => {}
                        Err(e) => break e.to_string(),
                    }
                };
                *closed.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
            });
        }
        Ok(Bgp {
            s,
            ctx,
            hold,
            last_ka: Instant::now(),
            closed,
            stop,
        })
    }

    pub(crate) fn up(&self) -> Result<(), String> {
        match &*self.closed.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(why) => Err(format!("BGP session closed: {why}")),
            None => Ok(()),
        }
    }

    pub(crate) fn write(&mut self, b: &[u8]) -> Result<(), String> {
        self.s.write_all(b).map_err(|e| format!("BGP write: {e}"))
    }

    /// A KEEPALIVE when a third of the hold time has passed (outside any measurement).
    pub(crate) fn keepalive_if_due(&mut self) -> Result<(), String> {
        if self.hold > 0 && self.last_ka.elapsed() >= Duration::from_secs(u64::from(self.hold / 3))
        {
            let k = Message::Keepalive.to_bytes(&self.ctx);
            self.write(&k)?;
            self.last_ka = Instant::now();
        }
        Ok(())
    }
}

pub(crate) fn announce(p: &Plan, v: usize) -> EvpnNlri {
    mac_ip_route(p.rd(), vm_mac(v), Some(vm_ip(v)), VNI)
}

pub(crate) fn rt() -> RouteTarget {
    format!("{VMMI_ASN}:{VNI}").parse().unwrap()
}

/// The UPDATE of move `seq` of VM `v` (sequence 0 = the first announcement, no MAC Mobility).
pub(crate) fn move_update(p: &Plan, ctx: &BgpCtx, v: usize, seq: u32) -> Vec<u8> {
    let mm = (seq > 0).then_some(seq);
    evpn_update(GEN_ASN, rt(), mm, p.vtep(seq), vec![announce(p, v)]).to_bytes(ctx)
}

// ---------------------------------------------------------------------------------------------
// measurement

#[derive(Default)]
pub(crate) struct Lat {
    pub(crate) smr: Vec<Duration>,
    pub(crate) notify: Vec<Duration>,
    pub(crate) smr_lost: usize,
    pub(crate) notify_lost: usize,
    /// Map-Notifies for the move's EID with another RLOC or Map-Version than the move's.
    pub(crate) wrong: usize,
    /// Time spent waiting for an ITR's SMR interval to pass (not in any latency).
    pub(crate) paced: Duration,
    pub(crate) paced_moves: usize,
    pub(crate) elapsed: Duration,
    pub(crate) moves: usize,
    pub(crate) first_problem: Option<String>,
    /// When the loop started, and its moves over 1 ms (at most 10).
    pub(crate) start: Option<Instant>,
    pub(crate) slow: Vec<Slow>,
}

/// A move over 1 ms: seconds since its loop's start, its number, UPDATE -> SMR, UPDATE ->
/// Map-Notify (None: lost), whether it left right after a pacing wait.
pub(crate) struct Slow(
    pub(crate) f64,
    pub(crate) usize,
    pub(crate) Option<Duration>,
    pub(crate) Option<Duration>,
    pub(crate) bool,
);

pub(crate) fn pct(v: &[Duration], p: f64) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort();
    let i = ((s.len() as f64 * p).ceil() as usize).clamp(1, s.len()) - 1;
    Some(s[i])
}

pub(crate) fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.3}", d.as_secs_f64() * 1e3))
}

pub(crate) fn us(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| {
        json!((d.as_secs_f64() * 1e7).round() / 10.0)
    })
}

impl Lat {
    pub(crate) fn rate(&self) -> f64 {
        let busy = self.elapsed.saturating_sub(self.paced).as_secs_f64();
        if busy > 0.0 {
            self.moves as f64 / busy
        } else {
            0.0
        }
    }

    pub(crate) fn json(&self) -> Value {
        let one = |v: &[Duration], lost: usize| {
            json!({"n": v.len(), "lost": lost, "p50_us": us(pct(v, 0.5)), "p90_us": us(pct(v, 0.9)),
                   "p99_us": us(pct(v, 0.99)), "max_us": us(pct(v, 1.0))})
        };
        json!({"moves": self.moves, "smr": one(&self.smr, self.smr_lost),
               "map_notify": one(&self.notify, self.notify_lost), "wrong": self.wrong,
               "moves_per_s": (self.rate() * 10.0).round() / 10.0,
               "paced_moves": self.paced_moves, "paced_ms": self.paced.as_millis() as u64})
    }

    pub(crate) fn problem(&mut self, s: String) {
        self.first_problem.get_or_insert(s);
    }
}

/// Per-move expectations and the state shared by both loops.
pub(crate) struct Run<'a> {
    pub(crate) p: Plan,
    pub(crate) bgp: &'a mut Bgp,
    pub(crate) lisp: &'a LispSide,
    pub(crate) seq: Vec<u32>,
    /// When ITR k may be solicited again (its last SMR + 3 s + margin).
    pub(crate) ready: Vec<Instant>,
    pub(crate) timeout: Duration,
    pub(crate) others: Vec<String>,
    pub(crate) auth_failures: usize,
}

/// One move in flight.
pub(crate) struct Pending {
    pub(crate) v: usize,
    pub(crate) seq: u32,
    pub(crate) t0: Instant,
    pub(crate) smr: Option<Instant>,
    pub(crate) notify: Option<Instant>,
    pub(crate) reply: bool,
    /// The move's number in its loop, and whether it left after a pacing wait.
    pub(crate) n: usize,
    pub(crate) after_wait: bool,
}

impl Run<'_> {
    pub(crate) fn note_smr(&mut self, itr: usize, at: Instant) {
        if let Some(r) = self.ready.get_mut(itr) {
            *r = (*r).max(at + SMR_INTERVAL + SMR_MARGIN);
        }
    }

    /// Applies one event to the moves in flight (by VM).
    pub(crate) fn apply(&mut self, e: Ev, inflight: &mut HashMap<usize, Pending>, lat: &mut Lat) {
        match e {
            Ev::Smr { at, itr, eid } => {
                self.note_smr(itr, at);
                match vm_of(&self.p, &eid).and_then(|v| inflight.get_mut(&v)) {
                    Some(m) if m.smr.is_none() && itr == m.v % self.p.itrs => m.smr = Some(at),
                    _ => lat.problem(format!("unexpected SMR for {eid} at ITR {itr}")),
                }
            }
            Ev::Notify {
                at,
                auth_ok,
                records,
            } => {
                if !auth_ok {
                    self.auth_failures += 1;
                }
                for r in records {
                    let Some(eid) = r.eid else { continue };
                    let Some(m) = vm_of(&self.p, &eid).and_then(|v| inflight.get_mut(&v)) else {
                        continue;
                    };
                    let want_rloc = IpAddr::V4(self.p.vtep(m.seq));
                    let want_ver = u32::from(map_version(m.seq));
                    if r.rlocs == [want_rloc] && r.version == want_ver {
                        if m.notify.is_none() {
                            m.notify = Some(at);
                        }
                    } else {
                        lat.wrong += 1;
                        lat.problem(format!(
                            "Map-Notify for {eid}: rlocs {:?} version {} (want {want_rloc}, {want_ver})",
                            r.rlocs, r.version
                        ));
                    }
                }
            }
            Ev::Reply { itr, records, .. } => {
                for r in records {
                    if let Some(m) = r.eid.and_then(|e| {
                        inflight
                            .values_mut()
                            .find(|m| vm_eid(m.v) == e && m.v % self.p.itrs == itr)
                    }) {
                        m.reply = true;
                    }
                }
            }
            Ev::Other(s) => {
                if self.others.len() < 20 {
                    self.others.push(s);
                }
            }
        }
    }

    /// Records a finished (or timed-out) move.
    pub(crate) fn finish(&mut self, m: Pending, lat: &mut Lat) {
        match m.smr {
            Some(t) => lat.smr.push(t - m.t0),
            None => {
                lat.smr_lost += 1;
                lat.problem(format!("no SMR for VM {} (seq {})", m.v, m.seq));
                // be conservative: the SMR may still come
                let k = m.v % self.p.itrs;
                self.note_smr(k, Instant::now());
            }
        }
        match m.notify {
            Some(t) => lat.notify.push(t - m.t0),
            None => {
                lat.notify_lost += 1;
                lat.problem(format!("no Map-Notify for VM {} (seq {})", m.v, m.seq));
            }
        }
        let (ds, dn) = (m.smr.map(|t| t - m.t0), m.notify.map(|t| t - m.t0));
        let ms1 = Duration::from_millis(1);
        if (ds.is_none_or(|d| d > ms1) || dn.is_none_or(|d| d > ms1)) && lat.slow.len() < 10 {
            let at = lat.start.map_or(0.0, |s| (m.t0 - s).as_secs_f64());
            lat.slow.push(Slow(at, m.n, ds, dn, m.after_wait));
        }
        lat.moves += 1;
    }

    /// Waits until ITR `k` may be solicited; whether it had to.
    pub(crate) fn pace(
        &mut self,
        k: usize,
        inflight: &mut HashMap<usize, Pending>,
        lat: &mut Lat,
    ) -> bool {
        let Some(&until) = self.ready.get(k) else {
            return false;
        };
        let now = Instant::now();
        if until <= now {
            return false;
        }
        lat.paced += until - now;
        lat.paced_moves += 1;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if let Ok(e) = self.lisp.ev.recv_timeout(left) {
                self.apply(e, inflight, lat);
            }
        }
        true
    }

    pub(crate) fn send_move(&mut self, v: usize) -> Result<Pending, String> {
        self.bgp.up()?;
        self.bgp.keepalive_if_due()?;
        self.seq[v] += 1;
        let seq = self.seq[v];
        let b = move_update(&self.p, &self.bgp.ctx, v, seq);
        let t0 = Instant::now();
        self.bgp.write(&b)?;
        Ok(Pending {
            v,
            seq,
            t0,
            smr: None,
            notify: None,
            reply: false,
            n: 0,
            after_wait: false,
        })
    }

    /// One move at a time: the next leaves when the SMR, the Map-Notify and the Map-Reply to
    /// the SMR-invoked Map-Request are in (or the timeout passed).
    pub(crate) fn closed_loop(&mut self, moves: usize, first_vm: usize) -> Result<Lat, String> {
        let mut lat = Lat::default();
        let mut inflight: HashMap<usize, Pending> = HashMap::new();
        let start = Instant::now();
        lat.start = Some(start);
        for i in 0..moves {
            let v = (first_vm + i) % self.p.vms;
            let waited = self.pace(v % self.p.itrs, &mut inflight, &mut lat);
            let mut m = self.send_move(v)?;
            (m.n, m.after_wait) = (i, waited);
            let deadline = m.t0 + self.timeout;
            inflight.insert(v, m);
            loop {
                let done = inflight
                    .get(&v)
                    .is_none_or(|m| m.smr.is_some() && m.notify.is_some() && m.reply);
                if done {
                    break;
                }
                let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                    break;
                };
                if let Ok(e) = self.lisp.ev.recv_timeout(left) {
                    self.apply(e, &mut inflight, &mut lat);
                }
            }
            if let Some(m) = inflight.remove(&v) {
                self.finish(m, &mut lat);
            }
        }
        lat.elapsed = start.elapsed();
        Ok(lat)
    }

    /// UPDATEs at fixed times (`rate` a second) whatever is outstanding; moves finish when
    /// both answers are in or their timeout passed.
    pub(crate) fn open_loop(
        &mut self,
        moves: usize,
        first_vm: usize,
        rate: f64,
    ) -> Result<Lat, String> {
        let mut lat = Lat::default();
        let mut inflight: HashMap<usize, Pending> = HashMap::new();
        let gap = Duration::from_secs_f64(1.0 / rate);
        let start = Instant::now();
        lat.start = Some(start);
        let mut next = start;
        let mut i = 0;
        let hard_end = start + gap * moves as u32 + self.timeout + Duration::from_secs(30);
        while (i < moves || !inflight.is_empty()) && Instant::now() < hard_end {
            // finished or timed-out moves
            let now = Instant::now();
            let done: Vec<usize> = inflight
                .iter()
                .filter(|(_, m)| {
                    (m.smr.is_some() && m.notify.is_some()) || now >= m.t0 + self.timeout
                })
                .map(|(v, _)| *v)
                .collect();
            for v in done {
                if let Some(m) = inflight.remove(&v) {
                    self.finish(m, &mut lat);
                }
            }
            if i < moves && Instant::now() >= next {
                let v = (first_vm + i) % self.p.vms;
                if inflight.contains_key(&v) {
                    return Err(format!(
                        "open loop: VM {v} moves again while its last move is in flight (more VMs needed)"
                    ));
                }
                let k = v % self.p.itrs;
                let mut waited = false;
                if self.ready[k] > Instant::now() {
                    // the rate cap should prevent this; keep the fixed schedule otherwise
                    let before = Instant::now();
                    waited = self.pace(k, &mut inflight, &mut lat);
                    next += Instant::now() - before;
                }
                let mut m = self.send_move(v)?;
                (m.n, m.after_wait) = (i, waited);
                inflight.insert(v, m);
                i += 1;
                next += gap;
                continue;
            }
            let wake = if i < moves {
                next
            } else {
                Instant::now() + Duration::from_millis(5)
            };
            let left = wake
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(5));
            if let Ok(e) = self.lisp.ev.recv_timeout(left) {
                self.apply(e, &mut inflight, &mut lat);
                while let Ok(e) = self.lisp.ev.try_recv() {
                    self.apply(e, &mut inflight, &mut lat);
                }
            }
        }
        for (_, m) in inflight.drain() {
            self.finish(m, &mut lat);
        }
        lat.elapsed = start.elapsed();
        Ok(lat)
    }
}
