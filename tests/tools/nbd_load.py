#!/usr/bin/env python3
"""nbd_load.py - misbehaving and greedy NBD clients for the limits tests.

Each mode opens many connections to one server from a single thread and
prints one line of results, "key=value ..." (times in seconds), so that the
shell test asserts on them.

Usage: nbd_load.py [--name NAME] HOST PORT MODE ARGS...

  silent N WAIT       N clients connect and send nothing; wait up to WAIT s
                      for the server to close them. Prints dropped=K (how many
                      it closed), first=T last=T (when), refused=R (closed
                      before the greeting was read: refused at accept).
  slowloris N SECS    N clients trickle their handshake one byte at a time,
                      one byte per client per second, for SECS seconds, and
                      reconnect when dropped (at most N/4 a second, paced).
                      Prints connects=, dropped= (closed by the server),
                      refused= (connect failed), finished= (handshakes that
                      completed: 0 when SECS < 40).
  deaf N REQS SIZE SECS
                      N clients finish the handshake, send REQS reads of SIZE
                      bytes each, never read the replies, and hold on for SECS
                      seconds. Prints sent=, dropped= (closed by the server).
  stall N SECS        N clients finish the handshake, send a WRITE header and
                      half of its payload, then stall for SECS seconds.
                      Prints dropped=, first=, last=.
  trickle SIZE PIECE GAP
                      one client sends a WRITE of SIZE bytes whose payload
                      comes PIECE bytes at a time, GAP seconds apart, then
                      reads it back. Prints answered= (1: the write got its
                      reply), match= (1: the read returned what was sent),
                      secs=; dropped=1 if the server closed it instead.
  chatter SECS        one client sends options for SECS seconds and never
                      reads the replies, then holds on for 2 s. Prints
                      sent= (bytes it got out).
  queue WAIT          a client queued behind one that, let in, went over
                      its own budget (see mode_queue; needs --buffers 32M
                      --client-budget 24M). Prints answered= secs=.
  hold N SECS         N clients finish the handshake and stay for SECS
                      seconds. Prints ok= (got in), refused=.
  probe SECS          one well-behaved client connects, does a 4 KiB read, and
                      disconnects, again and again for SECS seconds. Prints
                      n=, worst= (worst latency of connect+handshake+read),
                      failed= (attempts refused or broken).
"""

import os
import selectors
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nbd_raw  # noqa: E402
from nbd_raw import Client, Closed  # noqa: E402

HOST = PORT = None
NAME = ""


def connect(timeout=10.0):
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def handshake_bytes(name=""):
    """What a client sends for a whole handshake into transmission."""
    n = name.encode()
    go = struct.pack(">I", len(n)) + n + struct.pack(">H", 0)
    return (struct.pack(">I", nbd_raw.FLAG_FIXED_NEWSTYLE | nbd_raw.FLAG_NO_ZEROES)
            + struct.pack(">QII", nbd_raw.IHAVEOPT, nbd_raw.OPT_GO, len(go)) + go)


def closed_by_peer(s):
    """Drain what is readable; True once the server has closed."""
    try:
        while True:
            d = s.recv(65536, socket.MSG_DONTWAIT)
            if not d:
                return True
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


def size_arg(s):
    """'64K' or '4096' -> bytes."""
    return int(s[:-1]) * 1024 if s[-1] in "Kk" else int(s)


def report(**kw):
    print(" ".join("%s=%s" % (k, ("%.2f" % v) if isinstance(v, float) else v) for k, v in kw.items()))
    sys.stdout.flush()


def mode_silent(n, wait):
    n, wait = int(n), float(wait)
    t0 = time.monotonic()
    socks, refused = [], 0
    for _ in range(n):
        try:
            socks.append(connect())
        except OSError:
            refused += 1
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    greeted, times = set(), []
    deadline = t0 + wait
    while len(times) + refused < n and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                d = s.recv(65536)
            except OSError:
                d = b""
            if d:
                greeted.add(s)
                continue
            sel.unregister(s)
            if s in greeted:
                times.append(time.monotonic() - t0)
            else:
                refused += 1
            s.close()
    for s in socks:
        s.close()
    report(dropped=len(times), refused=refused, first=min(times) if times else -1.0,
           last=max(times) if times else -1.0)


def mode_slowloris(n, secs):
    n, secs = int(n), float(secs)
    hs = handshake_bytes(NAME)
    conns = {}  # sock -> bytes sent
    stats = dict(connects=0, dropped=0, refused=0, finished=0)
    # Reconnects are paced (at most n/4 a second, spread over the second),
    # so that this stays a slow attack and not a flood of connections.
    budget = max(1, n // 4)

    def open_one():
        try:
            s = connect(timeout=2.0)
        except OSError:
            stats["refused"] += 1
            return False
        s.setblocking(False)
        conns[s] = 0
        stats["connects"] += 1
        return True

    t_end = time.monotonic() + secs
    for _ in range(n):
        open_one()
    missing = n - len(conns)
    while time.monotonic() < t_end:
        tick = time.monotonic()
        reconnects = min(missing, budget)
        for s in list(conns):
            if closed_by_peer(s):
                stats["dropped"] += 1
                del conns[s]
                s.close()
                missing += 1
                continue
            i = conns[s]
            if i < len(hs):
                try:
                    s.send(hs[i:i + 1])
                    conns[s] = i + 1
                except OSError:
                    pass
                if i + 1 == len(hs):
                    stats["finished"] += 1
        for k in range(reconnects):
            time.sleep(0.8 / reconnects)
            if open_one():
                missing -= 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    for s in conns:
        s.close()
    report(**stats)


def ready_client():
    c = Client(HOST, PORT)
    c.connect_go(NAME)
    return c


def hold(socks, secs):
    """Keep socks open for secs seconds, reading nothing; count those the
    server closes (seen as a reset or EOF only when probed)."""
    t0 = time.monotonic()
    times = {}
    while time.monotonic() - t0 < secs and len(times) < len(socks):
        for s in socks:
            if s not in times and peer_gone(s):
                times[s] = time.monotonic() - t0
        time.sleep(0.2)
    return sorted(times.values())


def peer_gone(s):
    """Without reading the replies waiting in it: has the server closed this
    connection? The kernel knows: a FIN or a reset moved it out of
    ESTABLISHED (TCP_INFO's first byte is the state; 1 is ESTABLISHED)."""
    try:
        return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 1
    except OSError:
        return True


def mode_deaf(n, reqs, size, secs):
    n, reqs, secs = int(n), int(reqs), float(secs)
    size = size_arg(size)
    clients, sent = [], 0
    for _ in range(n):
        c = ready_client()
        c.sock.setblocking(False)
        for i in range(reqs):
            hdr = struct.pack(">IHHQQI", nbd_raw.REQUEST_MAGIC, 0, nbd_raw.CMD_READ, i + 1,
                              (i * size) % (c.size - size + 1), size)
            try:
                c.sock.send(hdr)
                sent += 1
            except BlockingIOError:
                break
        clients.append(c)
    times = hold([c.sock for c in clients], secs)
    report(sent=sent, dropped=len(times), first=times[0] if times else -1.0,
           last=times[-1] if times else -1.0)
    for c in clients:
        c.close()


def mode_stall(n, secs):
    n, secs = int(n), float(secs)
    clients = []
    for i in range(n):
        c = ready_client()
        hdr = struct.pack(">IHHQQI", nbd_raw.REQUEST_MAGIC, 0, nbd_raw.CMD_WRITE, 1, 0, 65536)
        c.send(hdr + b"\xaa" * 32768)
        c.sock.setblocking(False)
        clients.append(c)
    times = hold([c.sock for c in clients], secs)
    report(dropped=len(times), first=times[0] if times else -1.0,
           last=times[-1] if times else -1.0)
    for c in clients:
        c.close()


def mode_trickle(size, piece, gap):
    size, piece = size_arg(size), size_arg(piece)
    gap = float(gap)
    c = ready_client()
    data = bytes((i * 7 + 3) & 0xFF for i in range(size))
    t0 = time.monotonic()
    try:
        c.request(nbd_raw.CMD_WRITE, 0, size)  # the header alone
        for off in range(0, size, piece):
            c.send(data[off:off + piece])
            time.sleep(gap)
        _, err, _ = c.read_reply()
        answered = int(err == 0)
        err, back = c.read(0, size)
        match = int(err == 0 and bytes(back) == data)
    except (OSError, Closed, nbd_raw.TestFailure):
        report(answered=0, match=0, secs=time.monotonic() - t0, dropped=1)
        return
    report(answered=answered, match=match, secs=time.monotonic() - t0, dropped=0)
    c.disconnect()


def mode_hold(n, secs):
    """n clients finish the handshake and hold on (reading nothing) for secs
    seconds: ok= how many got in, refused= how many were closed."""
    n, secs = int(n), float(secs)
    clients, refused = [], 0
    for _ in range(n):
        try:
            clients.append(ready_client())
        except (OSError, Closed, nbd_raw.TestFailure):
            refused += 1
    report(ok=len(clients), refused=refused)
    time.sleep(secs)
    for c in clients:
        c.disconnect()


def mode_chatter(secs):
    """One client sends options (an unknown one, 16 bytes each, answered by
    an error of ~60 bytes) for secs seconds as fast as the server takes
    them, and never reads a reply. sent= is how many bytes it got out."""
    secs = float(secs)
    s = connect()
    s.recv(18, socket.MSG_WAITALL)  # the greeting
    s.sendall(struct.pack(">I", nbd_raw.FLAG_FIXED_NEWSTYLE | nbd_raw.FLAG_NO_ZEROES))
    s.setblocking(False)
    opt = struct.pack(">QII", nbd_raw.IHAVEOPT, 99, 0) * 4096
    sent = 0
    t_end = time.monotonic() + secs
    while time.monotonic() < t_end:
        off = sent % len(opt)  # keep the options whole across short sends
        try:
            sent += s.send(opt[off:])
        except (BlockingIOError, InterruptedError):
            time.sleep(0.01)
        except OSError:
            break
    report(sent=sent)
    time.sleep(2)  # hold on, so that what the server queued can be seen
    s.close()


def mode_queue(wait):
    """Against --buffers 32M --client-budget 24M: a client that goes over
    its own budget right after the server's queue let it in must not keep
    the clients queued behind it waiting. D (deaf) and A each hold 16 MiB;
    D asks for 4 KiB (queued: no buffer) then 8 MiB (over its budget), W
    asks for 4 KiB (queued behind D); A reads its reply, which frees 16 MiB.
    Prints answered=0|1 secs= (W's wait after that)."""
    wait = float(wait)
    mib = 1 << 20

    def read(c, cookie, length):
        c.send(struct.pack(">IHHQQI", nbd_raw.REQUEST_MAGIC, 0, nbd_raw.CMD_READ, cookie, 0,
                           length))

    d, a, w = ready_client(), ready_client(), ready_client()
    d.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # its 16 MiB stays
    read(d, 1, 16 * mib)
    read(a, 1, 16 * mib)  # the pool is full
    time.sleep(0.5)
    read(d, 2, 4096)
    read(d, 3, 8 * mib)
    time.sleep(0.3)
    read(w, 1, 4096)
    time.sleep(0.3)
    a.recv_exact(16 + 16 * mib)
    t = time.monotonic()
    w.sock.settimeout(wait)
    try:
        w.recv_exact(16 + 4096)
        report(answered=1, secs=time.monotonic() - t)
    except (OSError, Closed):
        report(answered=0, secs=time.monotonic() - t)
    for c in (d, a, w):
        c.close()


def mode_probe(secs):
    secs = float(secs)
    t_end = time.monotonic() + secs
    n = failed = 0
    worst = 0.0
    while time.monotonic() < t_end:
        t = time.monotonic()
        try:
            c = Client(HOST, PORT, timeout=30.0)
            c.connect_go(NAME)
            err, _ = c.read(0, 4096)
            c.disconnect()
            c.close()
            if err:
                failed += 1
        except (OSError, Closed, nbd_raw.TestFailure):
            failed += 1
        worst = max(worst, time.monotonic() - t)
        n += 1
        time.sleep(0.1)
    report(n=n, worst=worst, failed=failed)


def main(argv):
    global HOST, PORT, NAME
    if len(argv) > 2 and argv[0] == "--name":
        NAME = argv[1]
        argv = argv[2:]
    if len(argv) < 3:
        print(__doc__)
        return 2
    HOST, PORT = argv[0], int(argv[1])
    mode = globals().get("mode_" + argv[2])
    if not mode:
        print("unknown mode %s" % argv[2], file=sys.stderr)
        return 2
    mode(*argv[3:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
