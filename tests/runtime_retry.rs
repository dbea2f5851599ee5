//! The runtime's dataplane retry path (`runtime/vtep.rs`) against a backend that fails on
//! demand: failed ops are counted, retried with backoff (1 s, 2 s, 4 s ...), end up applied
//! once the backend recovers, and what is retried is what the EVPN layer wants *now* for the
//! entry — a MAC that moved again while its op was failing ends at its latest location, never
//! overwritten by an old retry. And `explain mac` through such a task backend: the reply is
//! composed after the backend's `lookup` answers (between batches), shows a failed op awaiting
//! its retry as a mismatch, and says so when the backend does not answer within the bound —
//! without the loop ever waiting for it.
//!
//! Deterministic: the BGP side is the testkit's virtual network (three speakers back to back),
//! the runtime's `Vtep` is driven with virtual instants (it takes `now` as an argument), and
//! every answer of the backend task is awaited (bounded, 5 s) before the next step.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use vmmi::config::{Config, VniCfg};
use vmmi::dataplane::memory::Memory;
use vmmi::dataplane::{Batch, Dataplane, DataplaneOp, LearnEvent, LookupError, MacEntry, OpError};
use vmmi::evpn::view::Explain;
use vmmi::runtime::vtep::{DpEv, EvpnReq, LOOKUP_WAIT, RETRY_MIN, ReqError, Vtep};
use vmmi::testkit::{Net, addr};
use vmmi::wire::bgp::afi::Family;
use vmmi::wire::types::MacAddr;

/// The memory backend behind a switch: while `down`, every op fails (and is counted).
struct Flaky {
    mem: Arc<Mutex<Memory>>,
    down: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
    /// While set, `lookup` takes 3 s (longer than `LOOKUP_WAIT`).
    slow: Arc<AtomicBool>,
}

impl Dataplane for Flaky {
    async fn lookup(&mut self, vni: u32, mac: MacAddr) -> Result<MacEntry, LookupError> {
        if self.slow.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        self.mem
            .lock()
            .map(|m| m.entry(vni, mac))
            .map_err(|_| LookupError::Failed {
                reason: "poisoned".into(),
            })
    }

    async fn apply(&mut self, batch: &Batch) -> Vec<OpError> {
        if self.down.load(Ordering::SeqCst) {
            self.failures
                .fetch_add(batch.ops.len() as u64, Ordering::SeqCst);
            return batch
                .ops
                .iter()
                .map(|op| OpError {
                    op: op.clone(),
                    reason: "injected: backend down".into(),
                })
                .collect();
        }
        if let Ok(mut m) = self.mem.lock() {
            m.apply_now(&batch.ops);
        }
        Vec::new()
    }

    fn drain_events(&mut self) -> Vec<LearnEvent> {
        Vec::new()
    }
}

const VNI: u32 = 100;
const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0x42, 1]);

struct World {
    net: Net,
    vtep: Vtep,
    rx: mpsc::UnboundedReceiver<DpEv>,
    mem: Arc<Mutex<Memory>>,
    down: Arc<AtomicBool>,
    failures: Arc<AtomicU64>,
    slow: Arc<AtomicBool>,
}

impl World {
    /// Node 0 is the daemon under test (its EVPN layer lives in the `Vtep`); nodes 1 and 2 are
    /// remote VTEPs with the testkit's EVPN layer; iBGP full mesh, sessions up.
    fn new() -> World {
        let mut net = Net::new();
        for _ in 0..3 {
            net.add(65000);
        }
        for i in 0..3 {
            for j in 0..3 {
                if i != j {
                    net.peer(i, j, &[Family::L2VPN_EVPN], |_| {});
                }
            }
        }
        let vni = VniCfg {
            vni: VNI,
            ..VniCfg::default()
        };
        for i in 1..3 {
            let v = vni.clone();
            net.enable_evpn(i, move |c| c.vnis = vec![v]);
        }
        let toml = format!(
            "[global]\nasn = 65000\nrouter_id = \"{a}\"\nvtep = \"{a}\"\n\
             [[vni]]\nvni = {VNI}\n[mobility]\nstate_file = \"\"\n",
            a = addr(0)
        );
        let cfg = Config::from_toml_str(&toml).unwrap_or_else(|e| panic!("{e:?}"));
        let mem = Arc::new(Mutex::new(Memory::new()));
        if let Ok(mut m) = mem.lock() {
            m.record = Some(Vec::new());
        }
        let down = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(AtomicU64::new(0));
        let slow = Arc::new(AtomicBool::new(false));
        let backend = Flaky {
            mem: mem.clone(),
            down: down.clone(),
            failures: failures.clone(),
            slow: slow.clone(),
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let now = net.now;
        let vtep = Vtep::with_backend(&cfg, &mut net.nodes[0].speaker, now, backend, move |e| {
            tx.send(e).is_ok()
        })
        .expect("a vni is configured");
        let mut w = World {
            net,
            vtep,
            rx,
            mem,
            down,
            failures,
            slow,
        };
        w.net.run(Duration::from_secs(10));
        // no EVPN neighbor in the config: the start-up reconcile goes at the first timeout
        let now = w.net.now;
        w.step_at(now);
        w.vtep.handle_timeout(now);
        w
    }

    /// Routes both ways between the network and node 0's EVPN layer, until nothing moves,
    /// each backend answer awaited.
    async fn settle(&mut self) {
        for _ in 0..100 {
            let now = self.net.now;
            self.step_at(now);
            if self.vtep.dp_in_flight() == 0 {
                return;
            }
            while self.vtep.dp_in_flight() > 0 {
                let ev = tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
                    .await
                    .expect("the backend answers within 5 s")
                    .expect("the backend task is alive");
                self.vtep.dataplane_event(now, ev);
            }
        }
        panic!("no quiescence after 100 rounds");
    }

    fn step_at(&mut self, now: Instant) {
        self.net.settle();
        self.vtep.pump(&mut self.net.nodes[0].speaker, now);
        self.net.settle();
    }

    /// Jump the virtual clock to the Vtep's next deadline and fire it.
    async fn fire_next(&mut self) -> Instant {
        let t = self.vtep.deadline().expect("a retry is pending");
        self.net.now = self.net.now.max(t);
        let now = self.net.now;
        self.vtep.handle_timeout(now);
        self.settle().await;
        now
    }

    /// The MAC moves to node `i` (learned there; MAC Mobility sequence + 1).
    async fn move_to(&mut self, i: usize) {
        self.net.learn(
            i,
            LearnEvent::Learned {
                vni: VNI,
                mac: MAC,
                ip: None,
                sticky: false,
            },
        );
        self.settle().await;
    }

    /// `explain mac` for MAC: the request is handed to the `Vtep` (which returns at once),
    /// then its reply awaited (bounded).
    async fn explain(&mut self) -> Explain {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<Explain, ReqError>>();
        let now = self.net.now;
        self.vtep.api(
            now,
            EvpnReq::Explain {
                vni: VNI,
                mac: MAC,
                reply: tx,
            },
        );
        tokio::time::timeout(LOOKUP_WAIT + Duration::from_secs(2), rx)
            .await
            .expect("explain answers within its bound")
            .expect("a reply")
            .expect("the MAC is known")
    }

    fn fdb(&self) -> Option<IpAddr> {
        self.mem.lock().ok().and_then(|m| m.vtep_of(VNI, MAC))
    }

    /// The FDB ops for MAC applied so far (where they pointed it), and forget them.
    fn applied_for_mac(&self) -> Vec<Option<IpAddr>> {
        let Ok(mut m) = self.mem.lock() else {
            return Vec::new();
        };
        let rec = m.record.replace(Vec::new()).unwrap_or_default();
        rec.into_iter()
            .filter_map(|op| match op {
                DataplaneOp::Fdb { mac, vtep, .. } if mac == MAC => Some(Some(vtep)),
                DataplaneOp::FdbDel { mac, .. } if mac == MAC => Some(None),
                _ => None,
            })
            .collect()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn failed_ops_are_retried_with_backoff_as_what_the_evpn_layer_wants_now() {
    let mut w = World::new();
    w.settle().await;
    // the start-up reconcile and the flood list went through while the backend was up
    assert_eq!(w.vtep.dp_failures, 0);
    let (x, y) = (addr(1), addr(2));

    // --- the backend fails: the MAC appears behind X, then moves to Y, both ops fail
    w.down.store(true, Ordering::SeqCst);
    let t0 = w.net.now;
    w.move_to(1).await;
    assert_eq!(w.vtep.dp_failures, 1, "the failure is counted");
    assert_eq!(
        w.vtep.deadline(),
        Some(t0 + RETRY_MIN),
        "first retry after 1 s"
    );
    w.move_to(2).await;
    assert_eq!(w.vtep.dp_failures, 2);
    assert_eq!(w.fdb(), None);
    // one retry per entry, keeping its turn
    assert_eq!(w.vtep.deadline(), Some(t0 + RETRY_MIN));

    // still down at the first retry: it fails again and backs off (2 s), then 4 s
    let t1 = w.fire_next().await;
    assert_eq!(t1, t0 + RETRY_MIN);
    assert_eq!(w.vtep.dp_failures, 3, "the failed retry is counted");
    assert_eq!(w.vtep.deadline(), Some(t1 + 2 * RETRY_MIN));
    let t2 = w.fire_next().await;
    assert_eq!(w.vtep.dp_failures, 4);
    assert_eq!(w.vtep.deadline(), Some(t2 + 4 * RETRY_MIN));

    // --- the backend recovers: the next retry applies the MAC where it is *now* (Y), never
    // where the first failed op pointed it (X)
    w.down.store(false, Ordering::SeqCst);
    w.fire_next().await;
    assert_eq!(w.fdb(), Some(y));
    assert_eq!(w.applied_for_mac(), vec![Some(y)]);
    assert_eq!(w.vtep.deadline(), None, "nothing left to retry");
    assert_eq!(w.vtep.dp_failures, 4);
    assert_eq!(
        w.failures.load(Ordering::SeqCst),
        4,
        "every failure counted once"
    );

    // --- an old retry does not overwrite a newer op: the move to X fails, the backend
    // recovers, the MAC moves back to Y (applied at once); then X's retry comes due and
    // writes Y again, not X
    w.down.store(true, Ordering::SeqCst);
    w.move_to(1).await;
    assert_eq!(w.vtep.dp_failures, 5);
    assert_eq!(w.fdb(), Some(y), "the failed op changed nothing");
    w.down.store(false, Ordering::SeqCst);
    w.move_to(2).await;
    assert_eq!(w.fdb(), Some(y));
    w.fire_next().await;
    assert_eq!(
        w.fdb(),
        Some(y),
        "the stale retry did not move the MAC back to X"
    );
    assert_eq!(w.applied_for_mac(), vec![Some(y), Some(y)]);
    assert_ne!(x, y);
    assert_eq!(w.vtep.deadline(), None);
    assert_eq!(w.vtep.dp_failures, 5);
}

#[tokio::test(flavor = "current_thread")]
#[allow(clippy::disallowed_methods)] // Instant::now: the bound is real time
async fn explain_asks_the_task_backend_and_shows_a_pending_retry_as_a_mismatch() {
    let mut w = World::new();
    w.settle().await;
    let (x, y) = (addr(1), addr(2));
    w.move_to(1).await;
    let e = w.explain().await;
    assert_eq!(
        (e.dataplane, e.dataplane_wanted, e.dataplane_in_sync),
        (Some(x), Some(x), true),
        "{e:?}"
    );
    assert!(e.dataplane_error.is_none(), "{e:?}");

    // the move to Y fails in the backend: the layer wants Y, the backend still holds X
    w.down.store(true, Ordering::SeqCst);
    w.move_to(2).await;
    let e = w.explain().await;
    assert_eq!(
        (e.dataplane, e.dataplane_wanted, e.dataplane_in_sync),
        (Some(x), Some(y), false),
        "{e:?}"
    );
    // the retry applies it: in sync again
    w.down.store(false, Ordering::SeqCst);
    w.fire_next().await;
    let e = w.explain().await;
    assert_eq!((e.dataplane, e.dataplane_in_sync), (Some(y), true), "{e:?}");

    // a backend that does not answer in time: the answer says so, after the bound, and the
    // loop went on meanwhile (`api` returned before the lookup was answered)
    w.slow.store(true, Ordering::SeqCst);
    let t0 = std::time::Instant::now();
    let e = w.explain().await;
    let took = t0.elapsed();
    assert!(
        took >= LOOKUP_WAIT && took < LOOKUP_WAIT + Duration::from_secs(1),
        "{took:?}"
    );
    assert_eq!(
        e.dataplane_error.as_deref(),
        Some("the dataplane did not answer within 1000 ms"),
        "{e:?}"
    );
    assert_eq!(
        (
            e.dataplane,
            e.dataplane_wanted,
            e.dataplane_in_sync,
            e.dataplane_entry
        ),
        (None, Some(y), false, None)
    );
}
