//! Model-based property tests of MAC mobility: random attaches, moves (make-before-break and
//! break-before-make), detaches, daemon restarts and waits over 3–5 vmmi VTEPs in one iBGP
//! full mesh on the virtual clock. After every step the fabric must match a reference model:
//! every VTEP's dataplane points each MAC at its true VTEP (or holds nothing for it), the
//! owner has it local, no stale entry anywhere, flood lists complete — and duplicate-address
//! detection fires exactly when the model counts N moves within M seconds.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use vmmi::config::VniCfg;
use vmmi::dataplane::LearnEvent;
use vmmi::rib::mac_mobility::DadCfg;
use vmmi::testkit::{Net, addr};
use vmmi::wire::types::MacAddr;

const VNI: u32 = 100;

fn mac(i: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0x10, i])
}

fn fabric(n: usize, dad: DadCfg) -> Net {
    Net::evpn_mesh(n, |c| {
        c.vnis = vec![VniCfg {
            vni: VNI,
            ..VniCfg::default()
        }];
        c.dad = dad;
    })
}

#[derive(Clone, Debug)]
enum Op {
    /// The VM `mac` appears on `node` (a move when it is elsewhere).
    Attach {
        mac: u8,
        node: usize,
        mbb: bool,
    },
    Detach {
        mac: u8,
    },
    /// The daemon on `node` restarts (graceful restart; the kernel keeps its state).
    Restart {
        node: usize,
    },
    Wait {
        secs: u64,
    },
}

fn op(nodes: usize, macs: u8) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..macs, 0..nodes, any::<bool>()).prop_map(|(mac, node, mbb)| Op::Attach { mac, node, mbb }),
        2 => (0..macs).prop_map(|mac| Op::Detach { mac }),
        1 => (0..nodes).prop_map(|node| Op::Restart { node }),
        2 => (1u64..40).prop_map(|secs| Op::Wait { secs }),
    ]
}

fn learn(net: &mut Net, node: usize, m: u8) {
    net.learn(
        node,
        LearnEvent::Learned {
            vni: VNI,
            mac: mac(m),
            ip: None,
            sticky: false,
        },
    );
}

fn leave(net: &mut Net, node: usize, m: u8) {
    net.learn(
        node,
        LearnEvent::Left {
            vni: VNI,
            mac: mac(m),
            ip: None,
        },
    );
}

/// Apply one op to the fabric and the model (`at`: where each VM is).
fn step(net: &mut Net, at: &mut BTreeMap<u8, usize>, op: &Op) {
    match *op {
        Op::Attach { mac: m, node, mbb } => {
            let old = at.get(&m).copied();
            if old == Some(node) {
                return;
            }
            match (old, mbb) {
                (Some(o), true) => {
                    learn(net, node, m);
                    leave(net, o, m);
                }
                (Some(o), false) => {
                    leave(net, o, m);
                    learn(net, node, m);
                }
                (None, _) => learn(net, node, m),
            }
            at.insert(m, node);
        }
        Op::Detach { mac: m } => {
            if let Some(o) = at.remove(&m) {
                leave(net, o, m);
            }
        }
        Op::Restart { node } => {
            net.restart(node, true);
            net.restart_evpn(node);
            net.run(Duration::from_secs(30));
            net.reconcile(node);
        }
        Op::Wait { secs } => net.run(Duration::from_secs(secs)),
    }
}

/// Every VTEP's dataplane matches the model exactly.
fn check(net: &Net, at: &BTreeMap<u8, usize>, n: usize, ctx: &str) {
    for i in 0..n {
        let dp = &net.nodes[i].dp;
        let want: BTreeMap<_, _> = at
            .iter()
            .filter(|(_, k)| **k != i)
            .map(|(m, k)| ((VNI, mac(*m)), (addr(*k), false)))
            .collect();
        assert_eq!(dp.fdb, want, "node {i} FDB after {ctx}");
        for (m, k) in at {
            assert_eq!(
                net.evpn(i).is_local(VNI, mac(*m)),
                *k == i,
                "node {i} local state of mac {m} after {ctx}"
            );
        }
        let flood: Vec<_> = dp.flood.iter().map(|f| f.1).collect();
        let others: Vec<_> = (0..n).filter(|j| *j != i).map(addr).collect();
        assert_eq!(flood, others, "node {i} flood list after {ctx}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn converges_to_the_model(
        n in 3usize..=5,
        ops in prop::collection::vec(op(5, 4), 1..40),
    ) {
        let dad = DadCfg { max_moves: 1000, window: Duration::from_secs(180), freeze: None };
        let mut net = fabric(n, dad);
        let mut at = BTreeMap::new();
        for (k, o) in ops.iter().enumerate() {
            let o = match *o {
                Op::Attach { mac, node, mbb } => Op::Attach { mac, node: node % n, mbb },
                Op::Restart { node } => Op::Restart { node: node % n },
                ref x => x.clone(),
            };
            step(&mut net, &mut at, &o);
            check(&net, &at, n, &format!("step {k} {o:?}"));
        }
    }
}

/// The DAD model: per VTEP, the times of counted moves (a move counts where the MAC leaves or
/// arrives), frozen at `max` within `window`.
struct DadModel {
    window: Duration,
    max: usize,
    moves: Vec<Vec<Duration>>,
    frozen: Vec<bool>,
}

impl DadModel {
    fn count(&mut self, node: usize, t: Duration) {
        if self.frozen[node] {
            return;
        }
        let w = self.window;
        let v = &mut self.moves[node];
        v.retain(|x| t.saturating_sub(*x) < w);
        v.push(t);
        if v.len() >= self.max {
            self.frozen[node] = true;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn dad_fires_exactly_when_the_model_says(
        n in 3usize..=5,
        max in 2u32..5,
        window in 10u64..60,
        moves in prop::collection::vec((0usize..5, any::<bool>(), 0u64..30), 1..30),
    ) {
        let dad = DadCfg { max_moves: max, window: Duration::from_secs(window), freeze: None };
        let mut net = fabric(n, dad);
        let start = net.now;
        let mut model = DadModel {
            window: Duration::from_secs(window),
            max: max as usize,
            moves: vec![Vec::new(); n],
            frozen: vec![false; n],
        };
        let mut at = BTreeMap::new();
        let mut last: Option<usize> = None;
        for (k, &(node, mbb, wait)) in moves.iter().enumerate() {
            let node = node % n;
            net.run(Duration::from_secs(wait));
            let t = net.now - start;
            if at.get(&0) == Some(&node) {
                continue;
            }
            // once any VTEP froze the MAC, the fabric's behaviour is the freeze's (tested in
            // evpn_mobility.rs); the model stops at the first freeze
            if model.frozen.iter().any(|f| *f) {
                break;
            }
            step(&mut net, &mut at, &Op::Attach { mac: 0, node, mbb });
            if let Some(old) = last
                && old != node
            {
                model.count(old, t);
                model.count(node, t);
            }
            last = Some(node);
            for i in 0..n {
                prop_assert_eq!(
                    net.evpn(i).frozen(VNI, mac(0)),
                    model.frozen[i],
                    "node {} after move {} to node {} at {:?}", i, k, node, t
                );
            }
        }
    }
}
