#!/usr/bin/python3
"""ExaBGP 4.2 process-API helper for the vmmi interop runner.

ExaBGP starts it from a `process` block (`encoder json`, `receive { parsed; update; }`,
`neighbor-changes`) and writes one JSON object per line to our stdin; whatever we print is an API
command for ExaBGP. This helper
  * appends every JSON message ExaBGP sends to OUTDIR/events.jsonl (flushed at once), so the runner
    can replay the session (check.py routes exabgp:OUTDIR/events.jsonl[:LOCAL_ADDR]);
  * relays the lines written into the FIFO OUTDIR/cmd.fifo to ExaBGP as API commands, e.g.
      neighbor 10.99.0.1 local-ip 10.99.0.6 announce route 10.91.6.0/24 next-hop 10.99.0.6
    (the runner writes with a timeout; we hold the FIFO open read-write so writers never block on us);
  * writes its pid to OUTDIR/helper.pid and exits when ExaBGP closes our stdin.
usage (exabgp.conf):  run /usr/bin/python3 exabgp_api.py OUTDIR;
"""
import errno
import os
import select
import sys


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "helper.pid"), "w") as f:
        f.write("%d\n" % os.getpid())
    fifo = os.path.join(outdir, "cmd.fifo")
    try:
        os.mkfifo(fifo, 0o600)
    except OSError as e:
        if e.errno != errno.EEXIST:
            raise
    cfd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    out = open(os.path.join(outdir, "events.jsonl"), "a")
    ifd = sys.stdin.fileno()
    ibuf = b""
    cbuf = b""
    while True:
        r, _, _ = select.select([ifd, cfd], [], [], 1.0)
        if ifd in r:
            chunk = os.read(ifd, 1 << 20)
            if not chunk:
                break
            ibuf += chunk
            *lines, ibuf = ibuf.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").strip()
                if not line or line in ("done", "error"):
                    continue
                if line.startswith("{"):
                    out.write(line + "\n")
            out.flush()
        if cfd in r:
            try:
                chunk = os.read(cfd, 1 << 16)
            except BlockingIOError:
                chunk = b""
            cbuf += chunk
            *cmds, cbuf = cbuf.split(b"\n")
            for c in cmds:
                c = c.decode("utf-8", "replace").strip()
                if c and not c.startswith("#"):
                    sys.stdout.write(c + "\n")
                    out.write('{"type": "command", "command": %s}\n' % __import__("json").dumps(c))
            sys.stdout.flush()
            out.flush()
    out.close()


if __name__ == "__main__":
    main()
