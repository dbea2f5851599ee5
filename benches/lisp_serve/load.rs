//! The load generator: one thread (pinned to its own CPU), X UDP sockets on 127.S.x.y:4342
//! connected to vmmi (ITRs and subscribers), one epoll set over all of them, and the
//! Map-Request rows: a window of outstanding requests, sent in `sendmmsg` batches from one ITR
//! socket at a time, optionally paced to an offered rate; every reply matched by nonce and
//! checked (EID and RLOC decoded the first time a VM is answered, the record bytes compared
//! after that).

use super::*;

use rustix::event::epoll;
use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, sendmmsg};

/// Requests sent from one ITR socket in one `sendmmsg`.
const BATCH: usize = 16;

pub(crate) struct Gen {
    pub(crate) p: Plan,
    pub(crate) socks: Vec<UdpSocket>,
    pub(crate) ep: std::os::fd::OwnedFd,
    pub(crate) buf: Vec<u8>,
}

impl Gen {
    pub(crate) fn new(p: Plan, socks: Vec<UdpSocket>) -> Result<Gen, String> {
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| e.to_string())?;
        for (i, s) in socks.iter().enumerate() {
            s.connect(p.lisp()).map_err(|e| e.to_string())?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
            epoll::add(
                &ep,
                s,
                epoll::EventData::new_u64(i as u64),
                epoll::EventFlags::IN,
            )
            .map_err(|e| e.to_string())?;
        }
        Ok(Gen {
            p,
            socks,
            ep,
            buf: vec![0; 9000],
        })
    }

    /// Waits up to `timeout` for datagrams and hands each to `f(socket index, bytes, when)`.
    pub(crate) fn poll(&mut self, timeout: Duration, mut f: impl FnMut(usize, &[u8], Instant)) {
        let mut evs: Vec<epoll::Event> = Vec::with_capacity(1024);
        let ts = rustix::time::Timespec {
            tv_sec: timeout.as_secs() as i64,
            tv_nsec: i64::from(timeout.subsec_nanos()),
        };
        evs.clear();
        if epoll::wait(
            &self.ep,
            rustix::buffer::spare_capacity(&mut evs),
            Some(&ts),
        )
        .is_err()
        {
            return;
        }
        for e in &evs {
            let i = e.data.u64() as usize;
            let Some(s) = self.socks.get(i) else { continue };
            while let Ok(n) = s.recv(&mut self.buf) {
                let at = Instant::now();
                f(i, &self.buf[..n], at);
            }
        }
    }

    /// Sends `msgs` from socket `i` (connected to vmmi) in one `sendmmsg`; how many left.
    pub(crate) fn send_batch(&self, i: usize, msgs: &[&[u8]]) -> usize {
        let Some(s) = self.socks.get(i) else { return 0 };
        let iovs: Vec<[IoSlice<'_>; 1]> = msgs.iter().map(|m| [IoSlice::new(m)]).collect();
        let mut ctl: Vec<SendAncillaryBuffer<'_, '_, '_>> = msgs
            .iter()
            .map(|_| SendAncillaryBuffer::default())
            .collect();
        let mut hdrs: Vec<MMsgHdr<'_>> = iovs
            .iter()
            .zip(ctl.iter_mut())
            .map(|(iov, c)| MMsgHdr::new(iov, c))
            .collect();
        let mut sent = 0;
        while sent < hdrs.len() {
            match sendmmsg(s, &mut hdrs[sent..], SendFlags::empty()) {
                Ok(0) | Err(_) => break,
                Ok(n) => sent += n,
            }
        }
        sent
    }
}

#[derive(Clone, Copy)]
struct Slot {
    nonce: u64,
    sent: Instant,
    vm: u32,
    measured: bool,
}

/// One row of the table.
#[derive(Clone, Debug, Default)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) itrs: usize,
    /// Offered rate (None: as fast as the window allows).
    pub(crate) offered: Option<f64>,
    /// Requests sent in the measured window, per second.
    pub(crate) sent_rate: f64,
    pub(crate) replies_per_s: f64,
    pub(crate) sent: u64,
    pub(crate) replied: u64,
    pub(crate) lost: u64,
    pub(crate) wrong: u64,
    pub(crate) lat: Vec<Duration>,
    pub(crate) daemon_cpu: Option<f64>,
    pub(crate) gen_cpu: f64,
    pub(crate) first_wrong: Option<String>,
}

impl Row {
    /// The daemon's CPU time per reply over the measured seconds, µs.
    pub(crate) fn cpu_per_reply_us(&self) -> Option<f64> {
        let cpu = self.daemon_cpu?;
        (self.replies_per_s > 0.0).then(|| cpu * 1e6 / self.replies_per_s)
    }

    /// Replies/s at that cost with one whole CPU.
    pub(crate) fn one_cpu_rate(&self) -> Option<f64> {
        self.cpu_per_reply_us()
            .filter(|u| *u > 0.0)
            .map(|u| 1e6 / u)
    }
}

pub(crate) struct RowCfg {
    pub(crate) name: String,
    pub(crate) itrs: usize,
    pub(crate) rate: Option<f64>,
    pub(crate) warmup: Duration,
    pub(crate) measure: Duration,
    pub(crate) window: usize,
    /// A request unanswered this long is lost (its slot is reused).
    pub(crate) timeout: Duration,
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// Map-Requests for `vms` VMs from the first `c.itrs` sockets: the templates (plain and ECM
/// alternately), grouped by ITR in runs of `BATCH`.
pub(crate) fn templates(p: &Plan, vms: u32, itrs: usize, n: usize) -> Vec<Template> {
    (0..n)
        .map(|i| {
            let itr = (i / BATCH) % itrs;
            let vm = ((i as u64 * 7919) % u64::from(vms)) as u32;
            Template::new(p, vm, itr, i % 2 == 1)
        })
        .collect()
}

/// Which ITR sends template `i`.
fn itr_of(i: usize, itrs: usize) -> usize {
    (i / BATCH) % itrs
}

pub(crate) fn run_row(
    g: &mut Gen,
    d: &Daemon,
    c: &RowCfg,
    tpl: &mut [Template],
    known: &mut [Option<Vec<u8>>],
    epoch: &mut u64,
) -> Row {
    let p = g.p;
    let w = c.window.clamp(1, 1 << 16);
    let mut slots: Vec<Option<Slot>> = vec![None; w];
    let mut free: Vec<usize> = (0..w).rev().collect();
    let mut row = Row {
        name: c.name.clone(),
        itrs: c.itrs,
        offered: c.rate,
        ..Row::default()
    };
    let start = Instant::now();
    let m_from = start + c.warmup;
    let m_end = m_from + c.measure;
    let drain_end = m_end + c.timeout;
    let mut issued: u64 = 0;
    let mut next_tpl = 0usize;
    let mut cpu0: Option<(Option<Duration>, Duration)> = None;
    let mut cpu1 = None;
    let mut last_expiry = start;
    let mut batch: Vec<usize> = Vec::with_capacity(BATCH);
    loop {
        let now = Instant::now();
        if cpu0.is_none() && now >= m_from {
            cpu0 = Some((d.cpu_time(), thread_cpu()));
        }
        if cpu1.is_none() && now >= m_end {
            cpu1 = Some((d.cpu_time(), thread_cpu()));
        }
        if now >= drain_end {
            break;
        }
        // send what the rate and the window allow
        let mut allowed = if now < m_end { free.len() } else { 0 };
        if let Some(r) = c.rate {
            let due = (r * now.duration_since(start).as_secs_f64()) as u64;
            allowed = allowed.min(due.saturating_sub(issued) as usize);
        }
        while allowed > 0 {
            // a run of templates from one ITR
            let itr = itr_of(next_tpl, c.itrs);
            batch.clear();
            while batch.len() < BATCH.min(allowed) && itr_of(next_tpl, c.itrs) == itr {
                batch.push(next_tpl);
                next_tpl = (next_tpl + 1) % tpl.len();
                if next_tpl.is_multiple_of(BATCH) {
                    break;
                }
            }
            let t = Instant::now();
            let measured = t >= m_from && t < m_end;
            for &i in &batch {
                let s = free.pop().expect("allowed <= free");
                *epoch += 1;
                let nonce = (*epoch << 16) | s as u64;
                tpl[i].set_nonce(nonce);
                slots[s] = Some(Slot {
                    nonce,
                    sent: t,
                    vm: tpl[i].vm,
                    measured,
                });
            }
            let msgs: Vec<&[u8]> = batch.iter().map(|&i| tpl[i].bytes.as_slice()).collect();
            let n = g.send_batch(itr, &msgs);
            // (unsent ones time out like lost ones)
            let _ = n;
            issued += batch.len() as u64;
            if measured {
                row.sent += batch.len() as u64;
            }
            allowed -= batch.len();
        }
        // receive
        let wait = if c.rate.is_some() || free.is_empty() {
            Duration::from_micros(200)
        } else {
            Duration::ZERO
        };
        g.poll(wait, |_, b, at| {
            if b.len() < 12 || b[0] >> 4 != 2 {
                row.wrong += 1;
                return;
            }
            let nonce = u64::from_be_bytes(b[4..12].try_into().unwrap());
            let s = (nonce & 0xffff) as usize;
            let Some(Some(slot)) = slots.get(s).copied() else {
                return; // late: its slot timed out
            };
            if slot.nonce != nonce {
                return; // late: its slot was reused
            }
            slots[s] = None;
            free.push(s);
            let ok = match &known[slot.vm as usize] {
                Some(rec) => b[12..] == rec[..],
                None => match decode(b) {
                    Ok(LispMsg::MapReply(r))
                        if first_record(&r.records)
                            == Some((vm_eid(slot.vm), vec![vm_rloc(&p, slot.vm)])) =>
                    {
                        known[slot.vm as usize] = Some(b[12..].to_vec());
                        true
                    }
                    other => {
                        row.first_wrong
                            .get_or_insert_with(|| format!("VM {}: {other:?}", slot.vm));
                        false
                    }
                },
            };
            if !ok {
                row.wrong += 1;
            }
            if slot.measured {
                row.replied += 1;
                row.lat.push(at.duration_since(slot.sent));
            }
        });
        // expire unanswered requests (every 10 ms)
        let now = Instant::now();
        if now.duration_since(last_expiry) >= Duration::from_millis(10) {
            last_expiry = now;
            for (s, x) in slots.iter_mut().enumerate() {
                if let Some(slot) = x
                    && now.duration_since(slot.sent) >= c.timeout
                {
                    if slot.measured {
                        row.lost += 1;
                    }
                    *x = None;
                    free.push(s);
                }
            }
        }
    }
    // still outstanding at the end: lost
    row.lost += slots.iter().flatten().filter(|s| s.measured).count() as u64;
    let secs = c.measure.as_secs_f64();
    row.sent_rate = row.sent as f64 / secs;
    row.replies_per_s = row.replied as f64 / secs;
    if let (Some((d0, g0)), Some((d1, g1))) = (cpu0, cpu1) {
        row.daemon_cpu = d0
            .zip(d1)
            .map(|(a, b)| b.saturating_sub(a).as_secs_f64() / secs);
        row.gen_cpu = g1.saturating_sub(g0).as_secs_f64() / secs;
    }
    row
}
