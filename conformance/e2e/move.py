#!/usr/bin/python3
"""VM moves between two VTEPs of a namespace fabric, timed from kernel events (root).

Used by conformance/e2e/vxlan.sh (a few moves, assertions) and conformance/bench/move.sh (the
vmmi vs FRR benchmark). Run it from the root network namespace; it enters the fabric's
namespaces itself.

  move.py garp --ns NS --dev DEV --mac MAC --ip IP
      one gratuitous ARP (an ARP request for IP from IP) sent from inside NS on DEV.

  move.py move --hosts A,B,C --vteps VA,VB,VC --between B,C ... [--moves N] --out FILE
      N moves of the VM, alternating between the two hosts of --between, starting from the one
      it is on. The first host of --hosts is the observer ("host A": the VM's peer lives there).

One move, "break before make" (a hypervisor finishing a live migration):
  1. ip -n SRC link del PORT                   the old tap goes; the bridge forgets the MAC
  2. ip -n VM -batch: a new veth VM_IF <-> PORT with PORT in DST, the same MAC and IP, link up,
     the permanent ARP entry for the peer again
  3. ip -n DST link set PORT master br100 up   -> t0 (below)
  4. one gratuitous ARP from the VM, like QEMU's announce after a migration: --garp link (default)
     sends it the moment the VM's interface reports link up (a netlink link event in the VM's
     namespace), from a packet socket opened there beforehand; --garp sock sends it from that
     socket once step 3's `ip` has exited (adds that process's exit and this one's wake-up, 1-6 ms
     under load); --garp arping forks `arping -c1 -U` (~3 ms more, as the FRR reference lab did);
     --garp none sends nothing
Meanwhile the VM's peer pings it every 10 ms (pinger.py) and `bridge -t monitor fdb link` runs in
every host namespace. Times are CLOCK_REALTIME as the monitors print them (when the monitor read
the netlink message):
  t0       DST: PORT reaches "state forwarding" with carrier in br100 (the new port is up);
           when that monitor read the event only after `ip link set up` had returned or after the
           GARP left (it was not scheduled in time), the earlier of those is used: the event cannot
           be later than either
  t1       observer: first "MAC dev vxlan100 dst <DST VTEP> self" (its kernel FDB points at DST)
  learn    DST: the bridge learns MAC on PORT (from the GARP)
  src      SRC: its FDB points at DST (a vmmi/FRR-written vxlan entry); when SRC already had that
           entry (FRR leaves a stale one when a remote MAC becomes local) there is no event and
           the final FDB decides
  obs_del  observer: the old entry (dst <SRC VTEP>) deleted (the old VTEP's withdrawal)
Reported per move: conv = t1 - t0, learn = learn - t0, cp = t1 - learn (the control plane's
share: kernel learn -> daemon -> BGP -> daemon -> kernel FDB; two monitors' clocks, so it carries
their scheduling noise), garp_to_t1 = t1 - the moment the GARP left (the script's clock: the
bridge normally learns within that send, so this is the control plane's share measured against one
monitor only), conv_upper = t1 - the moment `ip link set up` was started (an upper bound of
conv that needs no monitor for t0), lost pings and how many of them were sent after t0.
With --vmmi-hosts, vmmi's own step timings of the move (`vmmi show moves --json` on DST and on
the observer) are added: learned -> advertised on DST, route-seen -> dataplane on the observer.

Every wait is bounded (--timeout per move); every process started here is ended by its process
group id at exit, also on an exception or SIGTERM.
"""
import argparse
import ctypes
import datetime
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
STARTED = []  # Popen objects started in their own session; ended in cleanup()


# ------------------------------------------------------------------ namespaces, GARP
class InNetns:
    """Switch this thread into a named network namespace; back on exit. Sockets created inside
    stay in that namespace."""

    def __init__(self, ns):
        self.ns = ns

    def __enter__(self):
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open(f"/run/netns/{self.ns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {self.ns}")
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc):
        if _libc.setns(self.home, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
        os.close(self.home)
        return False


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def garp_frame(mac, ip):
    """Ethernet broadcast ARP request for IP from IP (RFC 5227 announcement form)."""
    m, a = mac_bytes(mac), socket.inet_aton(ip)
    eth = b"\xff" * 6 + m + struct.pack("!H", 0x0806)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + m + a + b"\x00" * 6 + a
    return (eth + arp).ljust(60, b"\x00")


SIOCGIFFLAGS = 0x8913
IFF_RUNNING = 0x40


class Garp:
    """A packet socket opened in the VM's namespace once; send() is a single syscall.

    A frame sent before the kernel's link watcher has activated the VM interface's queueing
    discipline (right after its carrier came on) is silently dropped: send() first waits,
    bounded, until the interface reports IFF_RUNNING (operstate up) — a guest likewise sends
    its announcement once its NIC reports link up."""

    def __init__(self, ns, mac, ip):
        with InNetns(ns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            self.ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 0)
        self.frame = garp_frame(mac, ip)

    def running(self, dev):
        import fcntl
        req = struct.pack("16sH", dev.encode(), 0).ljust(40, b"\x00")
        try:
            flags = struct.unpack("16sH", fcntl.ioctl(self.ctl, SIOCGIFFLAGS, req)[:18])[1]
        except OSError:
            return False
        return bool(flags & IFF_RUNNING)

    def send(self, dev, bound=2.0):
        """Returns the seconds spent waiting for the interface to run."""
        t = time.monotonic()
        while not self.running(dev) and time.monotonic() - t < bound:
            time.sleep(0.0001)
        waited = time.monotonic() - t
        self.sock.sendto(self.frame, (dev, 0))
        return waited


RTMGRP_LINK = 1
RTM_NEWLINK = 16
IFLA_IFNAME = 3


class GarpOnLinkUp(threading.Thread):
    """The guest's side of a migration: a GARP the moment the VM's NIC reports link up.

    A thread blocks on a netlink socket subscribed to link events in the VM's namespace; once
    armed for an interface name, the first RTM_NEWLINK of that name with IFF_RUNNING (the link
    watcher has run: carrier on, queueing discipline active) sends the GARP from the Garp socket.
    It does not wait for `ip link set ... up` in the host to exit (1-6 ms on a loaded machine,
    which would sit inside t1 - t0 otherwise)."""

    def __init__(self, garp, ns):
        super().__init__(daemon=True)
        self.garp = garp
        with InNetns(ns):
            self.nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
            self.nl.bind((0, RTMGRP_LINK))
        self.lock = threading.Lock()
        self.dev = None
        self.sent = threading.Event()
        self.t_sent = None
        self.start()

    def arm(self, dev):
        with self.lock:
            self.dev, self.t_sent = dev, None
            self.sent.clear()

    def fire(self):
        """Send now unless the link event already did; returns True if it had to."""
        with self.lock:
            if self.dev is None:
                return False
            self.garp.sock.sendto(self.garp.frame, (self.dev, 0))
            self.t_sent, self.dev = time.time(), None
            self.sent.set()
            return True

    def run(self):
        while True:
            try:
                data = self.nl.recv(65536)
            except OSError:
                return
            off = 0
            while off + 16 <= len(data):
                length, typ = struct.unpack_from("=IH", data, off)
                if length < 16:
                    break
                if typ == RTM_NEWLINK and length >= 32:
                    flags = struct.unpack_from("=I", data, off + 24)[0]
                    name, a = None, off + 32
                    while a + 4 <= off + length:
                        alen, atyp = struct.unpack_from("=HH", data, a)
                        if alen < 4:
                            break
                        if atyp == IFLA_IFNAME:
                            name = data[a + 4:a + alen].split(b"\0")[0].decode()
                        a += (alen + 3) & ~3
                    with self.lock:
                        hit = self.dev is not None and name == self.dev and flags & IFF_RUNNING
                    if hit:
                        self.fire()
                off += (length + 3) & ~3


# ------------------------------------------------------------------ processes
def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, start_new_session=True, **kw)
    STARTED.append(p)
    return p


def end(p, wait=3.0):
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(wait)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(wait)
    except ProcessLookupError:
        pass


def cleanup():
    for p in STARTED:
        end(p)


def run(cmd, inp=None, timeout=15):
    r = subprocess.run(cmd, input=inp, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def link_exists(ns, dev):
    return subprocess.run(["ip", "-n", ns, "link", "show", dev], capture_output=True).returncode == 0


# ------------------------------------------------------------------ bridge monitor
TS = re.compile(r"^Timestamp: \w+ (\w+ +\d+ \d\d:\d\d:\d\d \d+) (\d+) usec$")


class Monitor:
    """`bridge -t monitor fdb link` in one namespace; a thread collects (timestamp, line)."""

    def __init__(self, ns, limit_s):
        self.ns = ns
        self.events = []
        self.cond = threading.Condition()
        self.proc = spawn(["timeout", str(int(limit_s)), "ip", "netns", "exec", ns,
                           "bridge", "-t", "monitor", "fdb", "link"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        ts = None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            m = TS.match(line)
            if m:
                base = datetime.datetime.strptime(m.group(1), "%b %d %H:%M:%S %Y").timestamp()
                ts = base + int(m.group(2)) / 1e6
            elif line and ts is not None:
                with self.cond:
                    self.events.append((ts, line))
                    self.cond.notify_all()

    def first(self, pattern, since, until=None):
        rx = re.compile(pattern)
        with self.cond:
            for ts, line in self.events:
                if ts >= since and (until is None or ts <= until) and rx.search(line):
                    return ts
        return None

    def wait(self, pattern, since, deadline):
        """first(pattern, since), waiting until the wall-clock deadline at most."""
        rx = re.compile(pattern)
        seen = 0
        with self.cond:
            while True:
                for ts, line in self.events[seen:]:
                    if ts >= since and rx.search(line):
                        return ts
                seen = len(self.events)
                left = deadline - time.time()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.05))

    def lines(self, since, until):
        with self.cond:
            return [(ts, ln) for ts, ln in self.events if since <= ts <= until]


# ------------------------------------------------------------------ statistics
def pct(vals, q):
    """nearest-rank percentile"""
    s = sorted(v for v in vals if v is not None)
    if not s:
        return None
    k = max(1, -(-q * len(s) // 100))
    return s[min(int(k), len(s)) - 1]


def stats(vals):
    v = [x for x in vals if x is not None]
    if not v:
        return None
    return {"n": len(v), "p50": pct(v, 50), "p90": pct(v, 90), "p99": pct(v, 99), "max": max(v),
            "min": min(v), "mean": sum(v) / len(v)}


# ------------------------------------------------------------------ vmmi's own view
def vmmi_moves(a, ns):
    try:
        out = run(["ip", "netns", "exec", ns, "timeout", "10", a.vmmi, "show", "moves", "--json",
                   "--api", a.api], timeout=15)
        return json.loads(out)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired):
        return []


def step_us(rec, name):
    for s in rec.get("steps", []):
        if s.get("step") == name:
            return s.get("after_us")
    return None


def vmmi_steps(a, dst, dst_vtep, observer):
    """learned -> advertised on dst, route-seen -> dataplane on the observer (µs), newest move."""
    out = {}
    for rec in vmmi_moves(a, dst) if dst in a.vmmi_hosts else []:
        if rec.get("mac") == a.mac and rec.get("to", {}).get("at") == "local":
            ln, adv = step_us(rec, "learned"), step_us(rec, "advertised")
            out["dst_seq"] = rec.get("seq")
            out["dst_learned_to_advertised_us"] = adv - ln if None not in (ln, adv) else None
            out["dst_steps"] = rec.get("steps")
            break
    for rec in vmmi_moves(a, observer) if observer in a.vmmi_hosts else []:
        to = rec.get("to", {})
        if rec.get("mac") == a.mac and to.get("at") == "remote" and to.get("vtep") == dst_vtep:
            rs, dp = step_us(rec, "route-seen"), step_us(rec, "dataplane")
            out["obs_seq"] = rec.get("seq")
            out["obs_route_to_dataplane_us"] = dp - rs if None not in (rs, dp) else None
            out["obs_steps"] = rec.get("steps")
            break
    return out


# ------------------------------------------------------------------ one move
def ping_result(path):
    try:
        with open(path) as f:
            d = json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None
    sent = {s: t for s, t in d["sent"]}
    got = {s for s, _ in d["recv"]}
    lost = sorted(set(sent) - got)
    return {"sent": len(sent), "received": len(got), "lost": len(lost), "lost_seqs": lost,
            "lost_send_times": [sent[s] for s in lost]}


def do_move(a, i, mons, garp, vtep, peers_fdb):
    vm_port, mac = a.port, a.mac
    src = next((h for h in a.between if link_exists(h, vm_port)), None)
    if src is None:
        raise RuntimeError(f"{vm_port} is on none of {a.between}")
    dst = a.between[1] if src == a.between[0] else a.between[0]
    obs = a.hosts[0]
    ping = ping_path = None
    if a.ping_count > 0:
        ping_path = os.path.join(a.workdir, f"ping-{a.label}-{i:03d}.json")
        with open(ping_path, "w") as pf:
            ping = spawn(["ip", "netns", "exec", a.pinger_ns, PY, os.path.join(HERE, "pinger.py"),
                          a.ip, "--count", str(a.ping_count), "--interval", "0.01", "--linger", "0.5"],
                         stdout=pf, stderr=subprocess.DEVNULL)
        time.sleep(a.pre)
    if a.garp == "link":
        garp.arm(a.vm_if)
    t_move = time.time()
    run(["ip", "-n", src, "link", "del", vm_port])
    t_gone = time.time()
    run(["ip", "-n", a.vm, "-batch", "-"], inp=(
        f"link add {a.vm_if} address {mac} type veth peer name {vm_port} netns {dst}\n"
        f"addr add {a.ip}/24 dev {a.vm_if}\n"
        f"link set {a.vm_if} up\n"
        f"neigh replace {a.peer_ip} lladdr {a.peer_mac} dev {a.vm_if} nud permanent\n"))
    t_up = time.time()
    run(["ip", "-n", dst, "link", "set", vm_port, "master", a.bridge, "up"])
    t0s = time.time()
    t_garp = garp_wait = None
    if a.garp == "link":
        garp.sent.wait(2.0)
        if garp.fire():  # no link-up event within 2 s: sent now, and said so
            print(f"[{a.label}] move {i}: no link-up event for {a.vm_if} in 2 s, GARP sent late", flush=True)
        t_garp = garp.t_sent
    elif a.garp == "sock":
        garp_wait = garp.send(a.vm_if)
        t_garp = time.time()
    elif a.garp == "arping":
        spawn(["ip", "netns", "exec", a.vm, "arping", "-q", "-c1", "-U", "-I", a.vm_if, a.ip],
              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t_garp = time.time()
    dv, sv = vtep[dst], vtep[src]
    pat_new = rf"^{mac} dev {a.vxlan} dst {re.escape(dv)} self"
    deadline = t0s + a.timeout
    t1 = mons[obs].wait(pat_new, t_move, deadline)
    # the old host: a vmmi/FRR write pointing at DST; FRR never writes one when a stale entry
    # already points there (see the module header), so this wait ends 2 s after t1 at most
    t_src = mons[src].wait(pat_new, t_move, min(deadline, (t1 or deadline) + 2.0))
    others = {h: mons[h].wait(pat_new, t_move, time.time() + 1.0) for h in a.hosts if h not in (obs, src, dst)}
    pres = None
    if ping:
        try:
            ping.wait(a.ping_count * 0.01 + a.pre + 5)
        except subprocess.TimeoutExpired:
            end(ping)
        pres = ping_result(ping_path)
    time.sleep(0.05)
    port_up = rf"^\d+: {vm_port}(@\S+)?: <(?![^>]*NO-CARRIER)[^>]*LOWER_UP[^>]*>.* master {a.bridge} state forwarding"
    t0k = mons[dst].first(port_up, t_move)
    # the kernel event happened before `ip link set ... up` returned (t0s) and before the GARP
    # left (with --garp link that waits for the VM's link-up, which the port's coming up causes;
    # otherwise it leaves after t0s anyway): a monitor that read it later was not scheduled in
    # time (seen up to 5 ms late on a loaded 2-core machine), and its time would make t1 - t0
    # too short, even negative
    bound = min(t0s, t_garp) if t_garp else t0s
    t0 = min(t0k, bound) if t0k else bound
    t_learn = mons[dst].first(rf"^{mac} dev {vm_port} master {a.bridge}", t_move)
    t_obs_del = mons[obs].first(rf"^Deleted {mac} dev {a.vxlan} dst {re.escape(sv)} self", t_move)
    t_src_flush = mons[src].first(rf"^Deleted {mac} dev {vm_port} master", t_move)
    # final kernel state: the observer and the old host point at the new VTEP; the new host has
    # the MAC on the port
    fdb = {h: peers_fdb(h) for h in a.hosts}
    want = re.compile(rf"^{mac} dst {re.escape(dv)} ", re.M)
    src_ok = bool(want.search(fdb[src]))
    ms = lambda x, y: None if x is None or y is None else round((x - y) * 1000, 3)
    row = {
        "move": i, "src": src, "dst": dst, "t_move": t_move, "t_gone": t_gone, "t0_script": t0s,
        "t0_kernel": t0k, "t0": t0, "t_garp": t_garp, "t_learn": t_learn, "t1": t1,
        "t_src": t_src, "t_obs_del": t_obs_del, "t_src_flush": t_src_flush,
        "converged": t1 is not None and bool(want.search(fdb[obs])),
        "src_converged": src_ok, "src_event": t_src is not None,
        "others_converged": {h: (t is not None or bool(want.search(fdb[h]))) for h, t in others.items()},
        "conv_ms": ms(t1, t0), "learn_ms": ms(t_learn, t0), "cp_ms": ms(t1, t_learn),
        "conv_upper_ms": ms(t1, t_up), "garp_to_t1_ms": ms(t1, t_garp),
        "garp_wait_ms": None if garp_wait is None else round(garp_wait * 1000, 3),
        "garp_after_t0_ms": ms(t_garp, t0), "src_conv_ms": ms(t_src, t0),
        "obs_del_after_move_ms": ms(t_obs_del, t_move), "t1_after_move_ms": ms(t1, t_move),
        "downtime_ms": ms(t0, t_move),
        "t0_source": "script" if not t0k else ("kernel" if t0k <= bound else "script (monitor late)"),
        "t0_monitor_late_ms": ms(t0k, bound) if t0k and t0k > bound else None,
    }
    if pres:
        row.update(ping_sent=pres["sent"], lost=pres["lost"],
                   lost_after_t0=sum(1 for t in pres["lost_send_times"] if t >= t0),
                   lost_window_ms=[ms(pres["lost_send_times"][0], t_move),
                                   ms(pres["lost_send_times"][-1], t_move)] if pres["lost"] else None,
                   lost_contiguous=(not pres["lost_seqs"]) or
                   pres["lost_seqs"][-1] - pres["lost_seqs"][0] + 1 == len(pres["lost_seqs"]),
                   ping_tail_ok=pres["sent"] > 0 and all(s < pres["sent"] - 20 for s in pres["lost_seqs"]))
    if a.vmmi_hosts:
        row.update(vmmi_steps(a, dst, dv, obs))
    if a.keep_events:
        row["events"] = {h: [(round(ts, 6), ln) for ts, ln in m.lines(t_move - 0.01, t_move + 1.0)]
                         for h, m in mons.items()}
    return row


def fmt(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"


def cmd_move(a):
    a.hosts, a.between = a.hosts.split(","), a.between.split(",")
    a.vmmi_hosts = [h for h in (a.vmmi_hosts or "").split(",") if h]
    vteps = a.vteps.split(",")
    if len(vteps) != len(a.hosts) or len(a.between) != 2 or not set(a.between) <= set(a.hosts):
        sys.exit("move: --vteps must match --hosts; --between is two of --hosts")
    vtep = dict(zip(a.hosts, vteps))
    a.workdir = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(a.workdir, exist_ok=True)
    per_move = a.pre + a.ping_count * 0.01 + a.timeout + a.settle + 10
    mons = {h: Monitor(h, per_move * a.moves + 60) for h in a.hosts}
    garp = Garp(a.vm, a.mac, a.ip) if a.garp in ("sock", "link") else None
    if a.garp == "link":
        garp = GarpOnLinkUp(garp, a.vm)

    def peers_fdb(h):
        return run(["ip", "netns", "exec", h, "bridge", "fdb", "show", "dev", a.vxlan])

    time.sleep(0.3)  # the monitors subscribe
    rows = []
    try:
        for i in range(1, a.moves + 1):
            r = do_move(a, i, mons, garp, vtep, peers_fdb)
            rows.append(r)
            extra = ""
            if "dst_learned_to_advertised_us" in r or "obs_route_to_dataplane_us" in r:
                extra = (f" | vmmi: dst learned->advertised {fmt(r.get('dst_learned_to_advertised_us'), 0)} us"
                         f" seq {r.get('dst_seq')}, obs route->fdb {fmt(r.get('obs_route_to_dataplane_us'), 0)} us")
            print(f"[{a.label}] move {i:3d} {r['src']}->{r['dst']}: t1-t0 {fmt(r['conv_ms'], 2)} ms "
                  f"(learn {fmt(r['learn_ms'], 2)}, control plane {fmt(r['cp_ms'], 2)}), old host "
                  f"{fmt(r['src_conv_ms'], 2)}{'' if r['src_event'] else ' (no event)'}, lost {r.get('lost', '-')}"
                  f"{'' if r['converged'] else '  NOT CONVERGED'}{extra}", flush=True)
            if not r["converged"]:
                break
            time.sleep(a.settle)
    finally:
        cleanup()
        summary = summarize(a, rows)
        with open(a.out, "w") as f:
            json.dump({"label": a.label, "summary": summary, "moves": rows}, f, indent=1)
    print_summary(a.label, summary)
    return 0 if rows and all(r["converged"] for r in rows) and len(rows) == a.moves else 1


def summarize(a, rows):
    keys = ["conv_ms", "conv_upper_ms", "garp_to_t1_ms", "learn_ms", "cp_ms", "src_conv_ms", "garp_after_t0_ms",
            "garp_wait_ms", "downtime_ms", "t1_after_move_ms", "obs_del_after_move_ms", "lost",
            "lost_after_t0"]
    s = {"moves": len(rows), "garp": a.garp, "not_converged": [r["move"] for r in rows if not r["converged"]],
         "src_not_converged": [r["move"] for r in rows if not r["src_converged"]],
         "t0_from_script": [r["move"] for r in rows if r["t0_source"] != "kernel"],
         "t0_monitor_late_ms": {r["move"]: r["t0_monitor_late_ms"] for r in rows if r.get("t0_monitor_late_ms")}}
    for k in keys:
        s[k] = stats([r.get(k) for r in rows])
    for k in ("dst_learned_to_advertised_us", "obs_route_to_dataplane_us"):
        if any(k in r for r in rows):
            s[k] = stats([r.get(k) for r in rows])
    return s


def print_summary(label, s):
    print(f"# {label}: {s['moves']} moves, GARP {s['garp']}; not converged: {s['not_converged'] or 'none'}; "
          f"old host not converged: {s['src_not_converged'] or 'none'}; t0 from the script's clock "
          f"(monitor late or silent): {len(s['t0_from_script'])} moves")
    for k, v in s.items():
        if isinstance(v, dict) and "p50" in v:
            print(f"#   {k:30s} p50 {fmt(v['p50'], 2):>8} p90 {fmt(v['p90'], 2):>8} p99 {fmt(v['p99'], 2):>8} "
                  f"max {fmt(v['max'], 2):>8} min {fmt(v['min'], 2):>8} (n={v['n']})")


# ------------------------------------------------------------------ the benchmark table
def cmd_table(a):
    legs = []
    for path in a.files:
        with open(path) as f:
            d = json.load(f)
        legs.append((d["label"], d["summary"]))
    rows = [("move -> remote FDB updated, t1-t0 (ms)", "conv_ms", 2),
            ("upper bound: `ip link set up` started -> t1 (ms)", "conv_upper_ms", 2),
            ("GARP sent -> remote FDB (control plane + kernel, ms)", "garp_to_t1_ms", 2),
            ("lost pings per move (10 ms)", "lost", 0),
            ("... of them sent after t0", "lost_after_t0", 0),
            ("t0 -> new host's bridge learns the MAC (ms)", "learn_ms", 2),
            ("bridge learn -> remote FDB (control plane, ms)", "cp_ms", 2),
            ("old host's FDB repointed, t-t0 (ms)", "src_conv_ms", 2),
            ("old port deleted -> t1 (ms)", "t1_after_move_ms", 1)]
    print(f"| metric | daemon | moves | p50 | p90 | p99 | max |")
    print(f"|---|---|---|---|---|---|---|")
    for title, key, nd in rows:
        for label, s in legs:
            v = s.get(key)
            if not v:
                continue
            print(f"| {title} | {label} | {v['n']} | {fmt(v['p50'], nd)} | {fmt(v['p90'], nd)} | "
                  f"{fmt(v['p99'], nd)} | {fmt(v['max'], nd)} |")
    if len(legs) == 2:
        (l1, s1), (l2, s2) = legs
        c1, c2 = s1.get("conv_ms"), s2.get("conv_ms")
        if c1 and c2:
            print()
            for q in ("p50", "p90", "p99", "max"):
                r = c2[q] / c1[q] if c1[q] else float("inf")
                print(f"ratio {l2}/{l1} {q}: {r:.1f}x")
    return 0


# ------------------------------------------------------------------ main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("garp", help="one gratuitous ARP from inside a namespace")
    g.add_argument("--ns", required=True)
    g.add_argument("--dev", required=True)
    g.add_argument("--mac", required=True)
    g.add_argument("--ip", required=True)
    m = sub.add_parser("move", help="N moves, timed")
    m.add_argument("--hosts", required=True, help="host namespaces, the observer first")
    m.add_argument("--vteps", required=True, help="their VTEP addresses, same order")
    m.add_argument("--between", required=True, help="the two hosts the VM alternates between")
    m.add_argument("--vm", required=True, help="the VM's namespace")
    m.add_argument("--vm-if", required=True)
    m.add_argument("--port", required=True, help="the VM's port name on the host side")
    m.add_argument("--mac", required=True)
    m.add_argument("--ip", required=True)
    m.add_argument("--peer-ip", required=True, help="the pinging VM's address (permanent ARP)")
    m.add_argument("--peer-mac", required=True)
    m.add_argument("--pinger-ns", required=True)
    m.add_argument("--bridge", default="br100")
    m.add_argument("--vxlan", default="vxlan100")
    m.add_argument("--moves", type=int, default=1)
    m.add_argument("--ping-count", type=int, default=250, help="pings per move (10 ms apart); 0 = none")
    m.add_argument("--pre", type=float, default=0.5, help="seconds of ping before the move")
    m.add_argument("--settle", type=float, default=0.5, help="seconds between moves")
    m.add_argument("--timeout", type=float, default=10.0, help="bound on one move's convergence (s)")
    m.add_argument("--garp", choices=["link", "sock", "arping", "none"], default="link")
    m.add_argument("--vmmi", default=None, help="vmmi binary (for --vmmi-hosts)")
    m.add_argument("--api", default="127.0.0.1:50179")
    m.add_argument("--vmmi-hosts", default="", help="hosts running vmmi: add its step timings")
    m.add_argument("--keep-events", action="store_true", help="store each move's monitor lines")
    m.add_argument("--label", default="move")
    m.add_argument("--out", required=True, help="JSON file for every move and the summary")
    t = sub.add_parser("table", help="the benchmark table from move --out files")
    t.add_argument("files", nargs="+")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if a.cmd == "garp":
        Garp(a.ns, a.mac, a.ip).send(a.dev)
        return 0
    if a.cmd == "move":
        if not 1 <= a.moves <= 1000:
            sys.exit("move: --moves 1..1000")
        if a.vmmi_hosts and not a.vmmi:
            sys.exit("move: --vmmi-hosts needs --vmmi")
        return cmd_move(a)
    return cmd_table(a)


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        cleanup()
