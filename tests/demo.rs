//! `vmmi demo` runs to the end and its timeline is complete: every step has a time, the move
//! converged with MAC Mobility sequence 1 and dc1 withdrew its route, and the LISP ITR's
//! map-cache followed (the IP by publication, the MAC by SMR).

use std::process::Command;

#[test]
fn the_demo_moves_a_vm_and_times_every_step() {
    let out = Command::new(env!("CARGO_BIN_EXE_vmmi"))
        .arg("demo")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = text
        .lines()
        .find(|l| l.starts_with("summary:"))
        .expect(&text);
    assert!(summary.contains("move converged"), "{summary}");
    assert!(summary.contains("MAC Mobility sequence 1"), "{summary}");
    assert!(summary.contains("dc1's route withdrawn"), "{summary}");
    assert!(summary.contains("the ITR follows at"), "{summary}");
    assert!(
        text.contains("dc-gw sent 1 publication(s) (Map-Notify, RFC 9437 §6) and 1 SMR(s)"),
        "{text}"
    );
    for step in [
        "dc2-vtep learns the VM",
        "dc2-vtep sends the UPDATE",
        "dc1-vtep receives seq 1",
        "dc1-vtep withdraws its own route",
        "dc1-vtep's FDB points the MAC at dc2",
        "dc-gw sees seq 1: its Map-Server moves the mapping to dc2",
        "dc-gw sends the publication (Map-Notify, RFC 9437 §6)",
        "dc-gw sends the SMR to the ITR",
        "itr's map-cache: 10.1.0.42 at dc2 (via publication",
        "itr's map-cache: 02:00:00:00:00:42 at dc2 (via map-reply, after SMR",
        "itr's map-cache: [100] 10.1.0.42 -> 127.0.66.1",
    ] {
        let line = text.lines().find(|l| l.contains(step)).expect(step);
        // "  [   0.566 ms] ..." — a measured time on every step
        let t: f64 = line
            .split('[')
            .nth(1)
            .and_then(|r| r.split("ms]").next())
            .and_then(|x| x.trim().parse().ok())
            .expect(line);
        assert!((0.0..5000.0).contains(&t), "{line}");
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// `vmmi demo --netns`: three hosts with kernel VXLAN in namespaces, a 10 ms ping across the
/// move, a LISP ITR subscribed at host A's Map-Server; the summary says it converged, the
/// kernel FDB step and the ITR's map-cache are timed, few pings are lost, and nothing is left
/// behind. Without root it refuses with exit status 2.
#[test]
fn the_netns_demo_moves_a_vm_under_a_ping_and_cleans_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_vmmi"))
        .args(["demo", "--netns"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    if !is_root() {
        assert_eq!(out.status.code(), Some(2), "{text}{err}");
        assert!(err.contains("needs root"), "{err}");
        return;
    }
    assert!(out.status.success(), "{text}\n{err}");
    let summary = text
        .lines()
        .find(|l| l.starts_with("summary:"))
        .expect(&text);
    assert!(summary.contains("move converged"), "{summary}");
    assert!(!summary.contains(" ? after"), "every step timed: {summary}");
    assert!(summary.contains("the LISP ITR follows at"), "{summary}");
    // "...; K of N pings lost across the move"
    let (lost, sent): (u64, u64) = summary
        .split("; ")
        .find(|p| p.contains("pings lost"))
        .and_then(|p| {
            let n: Vec<u64> = p
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            Some((*n.first()?, *n.get(1)?))
        })
        .expect(summary);
    assert!(sent >= 400, "{summary}");
    // a move that converges in milliseconds loses a handful of 10 ms pings, not hundreds
    assert!(lost <= 25, "{summary}");
    for step in [
        "vd-c's bridge learns VM2",
        "vd-c sends the UPDATE",
        "vd-a's kernel FDB entry replaced",
        "vd-a's kernel shows bridge fdb 02:00:00:98:02:02 dst 10.198.0.3",
        "vd-itr's map-cache: [100] mac:02:00:00:98:02:02 -> 10.198.0.3 (via publication",
    ] {
        assert!(text.lines().any(|l| l.contains(step)), "{step}\n{text}");
    }
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&ns.stdout)
            .lines()
            .any(|l| l.starts_with("vd-")),
        "namespaces left behind"
    );
}
