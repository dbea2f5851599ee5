#!/usr/bin/python3
"""ICMP echo at a fixed rate, for counting lost pings during a VM move (run it inside the VM's
namespace: `ip netns exec NS /usr/bin/python3 pinger.py DST`).

Why not `ping -i 0.01`: on a CONFIG_HZ=250 kernel iputils waits in whole jiffies and really sends
every ~16 ms, which undercounts losses. Here every request has its own due time on a monotonic
schedule (start + n * interval), independent of replies; a late wake-up sends the due request at
once and does not shift the ones after it.

Bounded: at most --count requests (<= 100000), then --linger seconds for late replies. SIGTERM or
SIGINT stops sending early (the requests already sent still get their linger).
Output: one JSON object on stdout when done:
  {"dst", "interval", "sent": [[seq, t_send], ...], "recv": [[seq, t_recv], ...]}
with CLOCK_REALTIME timestamps (the clock `bridge -t monitor` prints), so losses can be placed on
the same time line as kernel FDB events.
"""
import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) & 1:
        data += b"\x00"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def echo_request(ident: int, seq: int) -> bytes:
    body = b"vmmi-e2e" + struct.pack("!Q", seq)
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq & 0xFFFF)
    return struct.pack("!BBHHH", 8, 0, checksum(head + body), ident, seq & 0xFFFF) + body


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dst")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--interval", type=float, default=0.01, help="seconds between requests")
    ap.add_argument("--linger", type=float, default=1.0, help="seconds to wait for replies at the end")
    a = ap.parse_args()
    if not 1 <= a.count <= 100000 or not 0.001 <= a.interval <= 10 or not 0 <= a.linger <= 10:
        print("pinger: --count 1..100000, --interval 0.001..10, --linger 0..10", file=sys.stderr)
        return 2

    stop = {"at": None}

    def on_signal(_sig, _frm):
        stop["at"] = time.monotonic()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setblocking(False)
    ident = os.getpid() & 0xFFFF
    sent, recv = {}, {}
    begin = time.monotonic() + 0.005
    n = 0  # requests sent so far; the next one is seq n+1, due at begin + n * interval
    done_at = None
    while True:
        now = time.monotonic()
        sending = n < a.count and stop["at"] is None
        if not sending and done_at is None:
            done_at = now + a.linger
        if sending and now >= begin + n * a.interval:
            n += 1
            try:
                sock.sendto(echo_request(ident, n), (a.dst, 0))
            except OSError:
                pass  # no route / no buffer for a moment: the request counts as lost
            sent[n] = time.time()
            continue
        if done_at is not None and (now >= done_at or len(recv) == len(sent)):
            break
        wake = begin + n * a.interval if sending else done_at
        try:
            ready, _, _ = select.select([sock], [], [], max(0.0, wake - time.monotonic()))
        except InterruptedError:
            continue
        if not ready:
            continue
        while True:
            try:
                pkt = sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                break
            off = (pkt[0] & 0x0F) * 4
            if len(pkt) < off + 16:
                continue
            typ, _code, _ck, rid, rseq = struct.unpack("!BBHHH", pkt[off:off + 8])
            (full,) = struct.unpack("!Q", pkt[off + 16:off + 24]) if len(pkt) >= off + 24 else (rseq,)
            if typ == 0 and rid == ident and full in sent and full not in recv:
                recv[full] = time.time()
    json.dump({"dst": a.dst, "interval": a.interval,
               "sent": sorted([s, t] for s, t in sent.items()),
               "recv": sorted([s, t] for s, t in recv.items())}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
