#!/usr/bin/env python3
"""conn_flood.py - open many idle connections to a server and hold them.

For the tests of a daemon at its descriptor limit: connections that send
nothing, as a careless or hostile client would leave them.

Usage:
  conn_flood.py (--unix PATH | --tcp HOST:PORT) [--count N] [--open-for S]
                [--hold S] [--ready FILE]

It tries for --open-for seconds (default 3) to have --count (default 2000)
connections open at once (a full backlog makes a connect fail: it tries
again), then holds what it has for --hold seconds (default 10), never
sending a byte, and prints: opened N, closed-by-server M (connections the
server answered or ended while held), refused K (connect attempts that failed). With
--ready FILE it writes that line to FILE too once the opening phase ends.
"""
import argparse
import errno
import resource
import select
import socket
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--unix")
    g.add_argument("--tcp")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--open-for", type=float, default=3.0)
    ap.add_argument("--hold", type=float, default=10.0)
    ap.add_argument("--ready")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    if a.unix:
        family, addr = socket.AF_UNIX, a.unix
    else:
        host, port = a.tcp.rsplit(":", 1)
        family, addr = socket.AF_INET, (host, int(port))

    socks = []
    refused = 0
    end = time.monotonic() + a.open_for
    while len(socks) < a.count and time.monotonic() < end:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(addr)
        except BlockingIOError:
            if family == socket.AF_UNIX:
                # A full backlog: try again shortly.
                s.close()
                refused += 1
                time.sleep(0.002)
                continue
        except OSError as e:
            s.close()
            refused += 1
            if e.errno not in (errno.EAGAIN, errno.ECONNREFUSED, errno.ECONNRESET):
                raise
            time.sleep(0.002)
            continue
        socks.append(s)

    msg = "opened %d, refused %d" % (len(socks), refused)
    if a.ready:
        with open(a.ready, "w") as f:
            f.write(msg + "\n")

    closed = set()
    end = time.monotonic() + a.hold
    while time.monotonic() < end:
        live = [s for s in socks if s.fileno() not in closed]
        if not live:
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))
            continue
        # poll in slices: select() cannot take descriptors past 1024.
        p = select.poll()
        for s in live:
            p.register(s, select.POLLIN)
        # Readable means the server answered (an error line) or ended it:
        # either way it holds the connection no more.
        for fd, _ in p.poll(200):
            closed.add(fd)
    print("%s, closed-by-server %d" % (msg, len(closed)))
    for s in socks:
        s.close()


if __name__ == "__main__":
    sys.exit(main())
