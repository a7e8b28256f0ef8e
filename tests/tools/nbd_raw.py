#!/usr/bin/env python3
"""nbd_raw.py - a small raw NBD client for bad-input tests.

It speaks the NBD protocol (NetworkBlockDevice/nbd doc/proto.md) by hand with
socket + struct, so it can send anything: bad magic, bad flags, truncated
handshakes, oversized requests, unknown commands, garbage.

Usage:
  nbd_raw.py [options] HOST PORT SCENARIO...    run scenarios (or 'all')
  nbd_raw.py [options] HOST PORT OP...          do plain IO on one connection
  nbd_raw.py --list                             list scenarios

OPs (numbers may be hex, sizes may end in K or M):
  write:OFF:LEN:BYTE[:fua]  write LEN bytes of BYTE at OFF (FUA if asked)
  read:OFF:LEN[:BYTE]       read (and check every byte is BYTE)
  flush | trim:OFF:LEN | zero:OFF:LEN
Unlike qemu-io, nothing is flushed unless asked; the connection ends with
NBD_CMD_DISC.

Options:
  --name NAME      the export name (default: "", the default export)
  --readonly       the export is read-only for this client
  --src ADDR       bind the client socket to source address ADDR (e.g. 127.0.0.2)
  --during CMD     shell command run while requests are in flight
                   (scenario inflight_at_stop, e.g. "dst stop NAME")

Each scenario prints 'ok   NAME: what it checked' or 'FAIL NAME: why'; the
exit status is 1 if any scenario failed, 0 otherwise. Every scenario that
breaks a connection on purpose checks afterwards that a NEW client still gets
through a full handshake and a read (the server kept serving).

The module can also be imported: Client, the constants and the helpers.
"""

import os
import random
import socket
import struct
import sys
import threading
import time
import traceback

# ---- protocol constants ----
NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x0003E889045565A9
REQUEST_MAGIC = 0x25609513
SIMPLE_REPLY_MAGIC = 0x67446698
STRUCTURED_REPLY_MAGIC = 0x668E33EF

FLAG_FIXED_NEWSTYLE = 1 << 0
FLAG_NO_ZEROES = 1 << 1

OPT_EXPORT_NAME = 1
OPT_ABORT = 2
OPT_LIST = 3
OPT_STARTTLS = 5
OPT_INFO = 6
OPT_GO = 7
OPT_STRUCTURED_REPLY = 8
OPT_LIST_META_CONTEXT = 9
OPT_SET_META_CONTEXT = 10

REP_ACK = 1
REP_SERVER = 2
REP_INFO = 3
REP_META_CONTEXT = 4
REP_ERR_UNSUP = (1 << 31) + 1
REP_ERR_POLICY = (1 << 31) + 2
REP_ERR_INVALID = (1 << 31) + 3
REP_ERR_TLS_REQD = (1 << 31) + 5
REP_ERR_UNKNOWN = (1 << 31) + 6
REP_ERR_TOO_BIG = (1 << 31) + 9

INFO_EXPORT = 0
INFO_NAME = 1
INFO_DESCRIPTION = 2
INFO_BLOCK_SIZE = 3

TF_HAS_FLAGS = 1 << 0
TF_READ_ONLY = 1 << 1
TF_SEND_FLUSH = 1 << 2
TF_SEND_FUA = 1 << 3
TF_SEND_TRIM = 1 << 5
TF_SEND_WRITE_ZEROES = 1 << 6

CMD_READ = 0
CMD_WRITE = 1
CMD_DISC = 2
CMD_FLUSH = 3
CMD_TRIM = 4
CMD_CACHE = 5
CMD_WRITE_ZEROES = 6
CMD_BLOCK_STATUS = 7

CMD_FLAG_FUA = 1 << 0
CMD_FLAG_NO_HOLE = 1 << 1
CMD_FLAG_DF = 1 << 2
CMD_FLAG_REQ_ONE = 1 << 3

REPLY_FLAG_DONE = 1 << 0
REPLY_TYPE_NONE = 0
REPLY_TYPE_OFFSET_DATA = 1
REPLY_TYPE_OFFSET_HOLE = 2
REPLY_TYPE_BLOCK_STATUS = 5
REPLY_TYPE_ERROR = (1 << 15) + 1
REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2

EPERM = 1
EIO = 5
EINVAL = 22
ENOSPC = 28

MAX_PAYLOAD = 32 << 20  # one buffer: larger requests are served in pieces
MAX_BLOCK = 64 << 20  # the advertised maximum block size
MAX_OPTION_LEN = 64 << 10

REP_NAMES = {
    REP_ACK: "ACK", REP_SERVER: "SERVER", REP_INFO: "INFO",
    REP_META_CONTEXT: "META_CONTEXT", REP_ERR_UNSUP: "ERR_UNSUP", REP_ERR_TLS_REQD: "ERR_TLS_REQD",
    REP_ERR_POLICY: "ERR_POLICY", REP_ERR_INVALID: "ERR_INVALID",
    REP_ERR_UNKNOWN: "ERR_UNKNOWN", REP_ERR_TOO_BIG: "ERR_TOO_BIG",
}


def rep_name(t):
    return REP_NAMES.get(t, "0x%x" % t)


class Closed(Exception):
    """The server closed the connection."""


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


# ---- the client ----

class Client:
    def __init__(self, host, port, src=None, timeout=10.0):
        self.host, self.port = host, port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if src:
            self.sock.bind((src, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.size = None
        self.tflags = None
        self.structured = False
        self.pending = {}  # cookie -> (type, length)
        self.next_cookie = 1

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- raw bytes --
    def send(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            except ConnectionResetError:
                raise Closed("connection reset after %d of %d bytes" % (len(buf), n))
            if not chunk:
                raise Closed("EOF after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def expect_closed(self, timeout=5.0):
        """True if the server closes the connection within timeout (any
        bytes still arriving first are drained)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True

    # -- handshake --
    def greeting(self):
        g = self.recv_exact(18)
        magic, opt, hflags = struct.unpack(">QQH", g)
        check(magic == NBDMAGIC, "bad server magic 0x%x" % magic)
        check(opt == IHAVEOPT, "not a newstyle server (0x%x)" % opt)
        check(hflags & FLAG_FIXED_NEWSTYLE, "server is not fixed-newstyle")
        return hflags

    def handshake(self, cflags=FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES):
        hflags = self.greeting()
        self.send(struct.pack(">I", cflags))
        return hflags

    def send_option(self, opt, data=b"", length=None):
        if length is None:
            length = len(data)
        self.send(struct.pack(">QII", IHAVEOPT, opt, length) + data)

    def read_option_reply(self):
        h = self.recv_exact(20)
        magic, opt, rtype, length = struct.unpack(">QIII", h)
        check(magic == REPLY_MAGIC, "bad option reply magic 0x%x" % magic)
        data = self.recv_exact(length) if length else b""
        return opt, rtype, data

    def option(self, opt, data=b""):
        """Send one option, return its replies up to the final one:
        [(type, data), ...]."""
        self.send_option(opt, data)
        return self.read_replies(opt)

    def read_replies(self, opt):
        out = []
        while True:
            ropt, rtype, rdata = self.read_option_reply()
            check(ropt == opt, "reply for option %d while waiting for %d" % (ropt, opt))
            out.append((rtype, rdata))
            if rtype != REP_INFO and rtype != REP_SERVER and rtype != REP_META_CONTEXT:
                return out

    @staticmethod
    def go_data(name="", infos=()):
        n = name.encode()
        return struct.pack(">I", len(n)) + n + struct.pack(">H", len(infos)) + b"".join(
            struct.pack(">H", i) for i in infos)

    @staticmethod
    def meta_data(name="", queries=("base:allocation",)):
        n = name.encode()
        d = struct.pack(">I", len(n)) + n + struct.pack(">I", len(queries))
        for q in queries:
            qb = q.encode()
            d += struct.pack(">I", len(qb)) + qb
        return d

    def go(self, name="", infos=(), opt=OPT_GO):
        """GO (or INFO); returns the replies, and on success records size/flags."""
        reps = self.option(opt, self.go_data(name, infos))
        for rtype, rdata in reps:
            if rtype == REP_INFO and len(rdata) >= 2 and struct.unpack(">H", rdata[:2])[0] == INFO_EXPORT:
                self.size, self.tflags = struct.unpack(">QH", rdata[2:12])
        return reps

    def connect_go(self, name="", structured=False, meta=False):
        """Full handshake into transmission. Returns self."""
        self.handshake()
        if structured:
            reps = self.option(OPT_STRUCTURED_REPLY)
            check(reps[-1][0] == REP_ACK, "STRUCTURED_REPLY: %s" % rep_name(reps[-1][0]))
            self.structured = True
        if meta:
            reps = self.option(OPT_SET_META_CONTEXT, self.meta_data(name))
            check(reps[-1][0] == REP_ACK, "SET_META_CONTEXT: %s" % rep_name(reps[-1][0]))
        reps = self.go(name)
        check(reps[-1][0] == REP_ACK, "GO failed: %s %r" % (rep_name(reps[-1][0]), reps[-1][1]))
        check(self.size is not None, "GO: no NBD_INFO_EXPORT")
        return self

    # -- transmission --
    def request(self, type_, offset=0, length=0, flags=0, payload=None, cookie=None,
                magic=REQUEST_MAGIC, send=True):
        if cookie is None:
            cookie = self.next_cookie
            self.next_cookie += 1
        hdr = struct.pack(">IHHQQI", magic, flags, type_, cookie, offset, length)
        self.pending[cookie] = (type_, length)
        if send:
            self.send(hdr + (payload or b""))
        return cookie, hdr + (payload or b"")

    def read_reply(self):
        """Read one complete reply. Returns (cookie, error, data): data is the
        read payload (reassembled from chunks for structured replies), or for
        BLOCK_STATUS the list of (length, flags) extents."""
        magic = struct.unpack(">I", self.recv_exact(4))[0]
        if magic == SIMPLE_REPLY_MAGIC:
            error, cookie = struct.unpack(">IQ", self.recv_exact(12))
            check(cookie in self.pending, "simple reply for unknown cookie %d" % cookie)
            type_, length = self.pending.pop(cookie)
            data = b""
            if type_ == CMD_READ and error == 0:
                data = self.recv_exact(length)
            return cookie, error, data
        check(magic == STRUCTURED_REPLY_MAGIC, "bad reply magic 0x%x" % magic)
        check(self.structured, "structured reply without negotiating it")
        cookie = None
        error = 0
        chunks = {}
        extents = None
        while True:
            if cookie is not None:
                magic = struct.unpack(">I", self.recv_exact(4))[0]
                check(magic == STRUCTURED_REPLY_MAGIC, "bad chunk magic 0x%x" % magic)
            flags, ctype, ck, length = struct.unpack(">HHQI", self.recv_exact(16))
            check(cookie is None or ck == cookie, "interleaved chunks (cookie %d in %s)" % (ck, cookie))
            check(ck in self.pending, "structured reply for unknown cookie %d" % ck)
            cookie = ck
            payload = self.recv_exact(length) if length else b""
            if ctype == REPLY_TYPE_OFFSET_DATA:
                off = struct.unpack(">Q", payload[:8])[0]
                chunks[off] = payload[8:]
            elif ctype == REPLY_TYPE_OFFSET_HOLE:
                off, hlen = struct.unpack(">QI", payload[:12])
                chunks[off] = bytes(hlen)
            elif ctype in (REPLY_TYPE_ERROR, REPLY_TYPE_ERROR_OFFSET):
                error, mlen = struct.unpack(">IH", payload[:6])
                check(error != 0, "error chunk with error 0")
            elif ctype == REPLY_TYPE_BLOCK_STATUS:
                ctx = struct.unpack(">I", payload[:4])[0]
                extents = [struct.unpack(">II", payload[i:i + 8]) for i in range(4, len(payload), 8)]
                extents = (ctx, extents)
            elif ctype == REPLY_TYPE_NONE:
                check(flags & REPLY_FLAG_DONE, "NONE chunk without DONE")
            else:
                raise TestFailure("unknown chunk type %d" % ctype)
            if flags & REPLY_FLAG_DONE:
                break
        type_, length = self.pending.pop(cookie)
        if extents is not None:
            return cookie, error, extents
        data = b""
        if type_ == CMD_READ and error == 0:
            # Reassemble: offsets are absolute; find the request's start.
            start = min(chunks) if chunks else 0
            buf = bytearray(length)
            for off, d in chunks.items():
                buf[off - start:off - start + len(d)] = d
            data = bytes(buf)
        return cookie, error, data

    def cmd(self, type_, offset=0, length=0, flags=0, payload=None):
        """One request, wait for its reply: (error, data)."""
        cookie, _ = self.request(type_, offset, length, flags, payload)
        rc, err, data = self.read_reply()
        check(rc == cookie, "reply cookie %d, expected %d" % (rc, cookie))
        return err, data

    def read(self, offset, length, flags=0):
        return self.cmd(CMD_READ, offset, length, flags)

    def write(self, offset, data, flags=0):
        return self.cmd(CMD_WRITE, offset, len(data), flags, data)[0]

    def disconnect(self):
        try:
            self.request(CMD_DISC)
        except OSError:
            pass
        self.close()


# ---- scenarios ----

SCENARIOS = {}


def scenario(fn):
    SCENARIOS[fn.__name__] = fn
    return fn


class Ctx:
    def __init__(self, host, port, name, readonly, src, during=None):
        self.host, self.port, self.name, self.readonly, self.src = host, port, name, readonly, src
        self.during = during

    def client(self, **kw):
        return Client(self.host, self.port, src=self.src, **kw)

    def ready(self, structured=False, meta=False):
        return self.client().connect_go(self.name, structured=structured, meta=meta)

    def still_serving(self):
        """A new client gets through the handshake and a read."""
        c = self.ready()
        err, data = c.read(0, 4096)
        check(err == 0 and len(data) == 4096, "new client after the bad one: read error %d" % err)
        c.disconnect()


def expect_err(got, want, what):
    check(got == want, "%s: got error %d, expected %d" % (what, got, want))


def usable(c, what):
    """The connection still works: a good read gets a good reply."""
    err, data = c.read(0, 4096)
    check(err == 0 and len(data) == 4096, "after %s the next good read got error %d" % (what, err))


def no_stray_replies(c, what):
    """Nothing more arrives: no reply was invented from payload bytes."""
    c.sock.settimeout(0.5)
    try:
        extra = c.sock.recv(1)
    except socket.timeout:
        extra = None
    finally:
        c.sock.settimeout(10.0)
    check(extra is None, "after %s the server sent unexpected bytes (stream out of sync)" % what)


def fake_requests(n):
    """Payload bytes that look like valid READ requests: if a server parsed a
    refused write's payload as requests, it would answer them."""
    out = b""
    for i in range(n):
        out += struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_READ, 0xDEAD0000 + i, 0, 512)
    return out


# -- transmission phase: errors that keep the connection usable --

@scenario
def oor_read(ctx):
    """READ past the end -> EINVAL; the connection stays usable."""
    c = ctx.ready()
    err, _ = c.read(c.size - 512, 1024)
    expect_err(err, EINVAL, "READ crossing the end")
    err, _ = c.read(c.size, 512)
    expect_err(err, EINVAL, "READ at the end")
    err, _ = c.read((1 << 64) - 512, 1024)
    expect_err(err, EINVAL, "READ whose offset+length wraps around 2^64")
    usable(c, "out-of-range reads")
    c.disconnect()
    return "EINVAL x3, next read fine"


@scenario
def oor_read_structured(ctx):
    """With structured replies, an out-of-range READ gets an error chunk."""
    c = ctx.ready(structured=True)
    err, _ = c.read(c.size, 4096)
    expect_err(err, EINVAL, "structured READ at the end")
    usable(c, "a structured error reply")
    c.disconnect()
    return "error chunk EINVAL, next read fine"


@scenario
def oor_write(ctx):
    """WRITE past the end -> ENOSPC, payload consumed (stream in sync)."""
    if ctx.readonly:
        return "skipped (read-only)"
    c = ctx.ready()
    payload = fake_requests(4096 // 28) + b"\0" * (4096 - 28 * (4096 // 28))
    err = c.write(c.size - 2048, payload)
    expect_err(err, ENOSPC, "WRITE crossing the end")
    err = c.write(c.size, payload)
    expect_err(err, ENOSPC, "WRITE at the end")
    usable(c, "out-of-range writes")
    no_stray_replies(c, "out-of-range writes")
    c.disconnect()
    return "ENOSPC x2, payload skipped, next read fine"


@scenario
def oversize_read(ctx):
    """READ > 64 MiB (the maximum block size) -> EINVAL; still usable."""
    c = ctx.ready()
    err, _ = c.read(0, MAX_BLOCK + 1)
    expect_err(err, EINVAL, "READ of 64 MiB + 1")
    err, _ = c.read(0, 0xFFFFFFFF)
    expect_err(err, EINVAL, "READ of 4 GiB - 1")
    usable(c, "oversize reads")
    c.disconnect()
    return "EINVAL x2, next read fine"


@scenario
def oversize_write(ctx):
    """WRITE > 64 MiB -> EINVAL and its whole payload consumed."""
    if ctx.readonly:
        return "skipped (read-only)"
    c = ctx.ready()
    n = MAX_BLOCK + 4096
    payload = (fake_requests(1000) * (n // 28000 + 1))[:n]
    cookie, msg = c.request(CMD_WRITE, 0, n, send=False)
    # Send in a thread: the reply may come before all of the payload is sent.
    t = threading.Thread(target=c.send, args=(msg + payload,))
    t.start()
    rc, err, _ = c.read_reply()
    t.join()
    check(rc == cookie, "cookie mismatch")
    expect_err(err, EINVAL, "WRITE of 64 MiB + 4 KiB")
    usable(c, "an oversize write")
    no_stray_replies(c, "an oversize write")
    c.disconnect()
    return "EINVAL, 64 MiB + 4 KiB payload skipped, next read fine"


@scenario
def max_size_io(ctx):
    """READ and WRITE of exactly 64 MiB (served in pieces) work."""
    c = ctx.ready()
    if not ctx.readonly and c.size >= MAX_BLOCK:
        data = bytes(random.Random(5).getrandbits(8) for _ in range(4096)) * (MAX_BLOCK // 4096)
        # Number each MiB so that pieces in the wrong order would show.
        data = b"".join(struct.pack(">Q", i) + data[i * (1 << 20) + 8:(i + 1) * (1 << 20)]
                        for i in range(MAX_BLOCK >> 20))
        err = c.write(0, data)
        expect_err(err, 0, "WRITE of 64 MiB")
        err, back = c.read(0, MAX_BLOCK)
        expect_err(err, 0, "READ of 64 MiB")
        check(back == data, "64 MiB read back differs")
    else:
        err, back = c.read(0, min(MAX_BLOCK, c.size))
        expect_err(err, 0, "READ of 64 MiB")
    c.disconnect()
    return "64 MiB round trip"


@scenario
def zero_length(ctx):
    """READ/WRITE of length 0 -> EINVAL; still usable."""
    c = ctx.ready()
    err, _ = c.read(0, 0)
    expect_err(err, EINVAL, "READ of length 0")
    if not ctx.readonly:
        err = c.write(0, b"")
        expect_err(err, EINVAL, "WRITE of length 0")
    usable(c, "zero-length requests")
    c.disconnect()
    return "EINVAL, next read fine"


@scenario
def unknown_command(ctx):
    """Unknown command types -> EINVAL; still usable."""
    c = ctx.ready()
    for t in (8, 9, 99, 0xFFFF):
        err, _ = c.cmd(t, 0, 512)
        expect_err(err, EINVAL, "command type %d" % t)
    # BLOCK_STATUS without structured replies/meta context is not allowed.
    err, _ = c.cmd(CMD_BLOCK_STATUS, 0, 4096)
    expect_err(err, EINVAL, "BLOCK_STATUS without a meta context")
    usable(c, "unknown commands")
    no_stray_replies(c, "unknown commands")
    c.disconnect()
    return "EINVAL for types 7 (unnegotiated), 8, 9, 99, 65535"


@scenario
def unknown_flags(ctx):
    """Unknown command flags -> EINVAL; a refused write's payload is skipped."""
    c = ctx.ready()
    err, _ = c.read(0, 4096, flags=1 << 15)
    expect_err(err, EINVAL, "READ with flag bit 15")
    err, _ = c.read(0, 4096, flags=CMD_FLAG_DF)  # DF needs structured replies
    expect_err(err, EINVAL, "READ with DF without structured replies")
    err, _ = c.cmd(CMD_FLUSH, flags=CMD_FLAG_NO_HOLE)
    expect_err(err, EINVAL, "FLUSH with NO_HOLE")
    if not ctx.readonly:
        err = c.write(0, fake_requests(100), flags=1 << 7)
        expect_err(err, EINVAL, "WRITE with flag bit 7")
    usable(c, "unknown flags")
    no_stray_replies(c, "unknown flags")
    c.disconnect()
    return "EINVAL, payload skipped, next read fine"


@scenario
def flush_with_range(ctx):
    """FLUSH with nonzero offset or length -> EINVAL; a plain FLUSH works."""
    c = ctx.ready()
    err, _ = c.cmd(CMD_FLUSH, offset=4096)
    expect_err(err, EINVAL, "FLUSH with offset 4096")
    err, _ = c.cmd(CMD_FLUSH, length=4096)
    expect_err(err, EINVAL, "FLUSH with length 4096")
    err, _ = c.cmd(CMD_FLUSH)
    expect_err(err, 0, "plain FLUSH")
    usable(c, "bad flushes")
    c.disconnect()
    return "EINVAL x2, plain FLUSH ok"


@scenario
def readonly_write(ctx):
    """On a read-only export: WRITE/TRIM/WRITE_ZEROES -> EPERM, payload skipped."""
    c = ctx.ready()
    check(bool(c.tflags & TF_READ_ONLY) == ctx.readonly,
          "READ_ONLY transmission flag is %s, expected %s" % (bool(c.tflags & TF_READ_ONLY), ctx.readonly))
    if not ctx.readonly:
        c.disconnect()
        return "skipped (export is read-write)"
    err = c.write(0, fake_requests(200))
    expect_err(err, EPERM, "WRITE on a read-only export")
    if c.tflags & TF_SEND_TRIM:
        err, _ = c.cmd(CMD_TRIM, 0, 4096)
        expect_err(err, EPERM, "TRIM on a read-only export")
    if c.tflags & TF_SEND_WRITE_ZEROES:
        err, _ = c.cmd(CMD_WRITE_ZEROES, 0, 4096)
        expect_err(err, EPERM, "WRITE_ZEROES on a read-only export")
    usable(c, "writes on a read-only export")
    no_stray_replies(c, "writes on a read-only export")
    c.disconnect()
    return "READ_ONLY flag set, EPERM, payload skipped, reads fine"


@scenario
def stream_sync(ctx):
    """Writes of odd sizes packed with reads in one burst, then read back:
    payload framing is right whatever the segmentation."""
    if ctx.readonly:
        return "skipped (read-only)"
    c = ctx.ready()
    rnd = random.Random(42)
    sizes = [1, 511, 4097, 28, 131075, 1048577, 3, 65536 + 7]
    off = 0
    blob = b""
    expect = []
    for s in sizes:
        data = bytes(rnd.getrandbits(8) for _ in range(min(s, 4096)))
        data = (data * (s // len(data) + 1))[:s]
        ck, msg = c.request(CMD_WRITE, off, s, payload=data, send=False)
        blob += msg
        expect.append((off, data))
        ck2, msg2 = c.request(CMD_READ, off, s, send=False)
        blob += msg2
        off += s + 1000
    results = {}
    t = threading.Thread(target=c.send, args=(blob,))
    t.start()
    for _ in range(2 * len(sizes)):
        ck, err, data = c.read_reply()
        results[ck] = (err, data)
    t.join()
    for ck, (err, data) in results.items():
        expect_err(err, 0, "request %d of the burst" % ck)
    # Read everything back one by one.
    for o, d in expect:
        err, back = c.read(o, len(d))
        expect_err(err, 0, "read back at %d" % o)
        check(back == d, "data at %d+%d differs" % (o, len(d)))
    no_stray_replies(c, "a burst of writes")
    c.disconnect()
    return "%d writes of odd sizes in one burst read back intact" % len(sizes)


@scenario
def slow_drip(ctx):
    """Headers and payloads sent one byte at a time are assembled right."""
    if ctx.readonly:
        return "skipped (read-only)"
    c = ctx.ready()
    data = bytes(range(256)) * 2
    ck1, m1 = c.request(CMD_WRITE, 8192, len(data), payload=data, send=False)
    ck2, m2 = c.request(CMD_WRITE, c.size, 100, payload=b"x" * 100, send=False)  # refused
    ck3, m3 = c.request(CMD_READ, 8192, len(data), send=False)
    for b in m1 + m2 + m3:
        c.send(bytes([b]))
        time.sleep(0.0005)
    got = {}
    for _ in range(3):
        ck, err, d = c.read_reply()
        got[ck] = (err, d)
    expect_err(got[ck1][0], 0, "dripped WRITE")
    expect_err(got[ck2][0], ENOSPC, "dripped out-of-range WRITE")
    expect_err(got[ck3][0], 0, "dripped READ")
    check(got[ck3][1] == data, "dripped data differs")
    no_stray_replies(c, "dripped requests")
    c.disconnect()
    return "byte-by-byte write, refused write and read all right"


@scenario
def drip_large_writes(ctx):
    """1 MiB writes whose payloads come in 1000-byte segments (more than a
    pipe has slots, should the server splice them into one), pipelined with
    a read behind each (of the same range: NBD does not order them, so its
    data is not checked), then read back: intact, stream in sync."""
    if ctx.readonly:
        return "skipped (read-only)"
    c = ctx.ready()
    rnd = random.Random(7)
    n, size = 3, 1 << 20
    blob = b""
    expect = []
    for i in range(n):
        off = (2 * i + 1) * size + 4096 * i  # not all aligned to 1M
        data = bytes(rnd.getrandbits(8) for _ in range(4096)) * (size // 4096)
        blob += c.request(CMD_WRITE, off, size, payload=data, send=False)[1]
        ck, msg = c.request(CMD_READ, off, size, send=False)
        blob += msg
        expect.append((ck, off, data))
    for i in range(0, len(blob), 1000):
        c.send(blob[i:i + 1000])
        if i % 16000 == 0:
            time.sleep(0.0002)
    got = {}
    for _ in range(2 * n):
        ck, err, d = c.read_reply()
        got[ck] = (err, d)
    for ck, off, data in expect:
        expect_err(got[ck][0], 0, "READ behind the dripped write at %d" % off)
        check(len(got[ck][1]) == size, "READ behind the dripped write at %d: %d bytes" % (off, len(got[ck][1])))
    for ck, off, data in expect:
        err, back = c.read(off, size)
        expect_err(err, 0, "read back at %d" % off)
        check(back == data, "the dripped write at %d reads back different" % off)
    no_stray_replies(c, "dripped 1 MiB writes")
    c.disconnect()
    return "%d dripped 1 MiB writes read back intact, stream in sync" % n


@scenario
def pipelined(ctx):
    """Far more requests in flight than the per-connection limit, all
    answered exactly once (replies may come out of order)."""
    c = ctx.ready()
    n = 600
    blob = b""
    cookies = set()
    for i in range(n):
        ck, msg = c.request(CMD_READ, (i * 4096) % (c.size - 65536), 4096 + (i % 3) * 512, send=False)
        cookies.add(ck)
        blob += msg
    t = threading.Thread(target=c.send, args=(blob,))
    t.start()
    seen = set()
    for _ in range(n):
        ck, err, data = c.read_reply()
        expect_err(err, 0, "pipelined read %d" % ck)
        check(ck not in seen, "cookie %d answered twice" % ck)
        seen.add(ck)
    t.join()
    check(seen == cookies, "%d cookies never answered" % len(cookies - seen))
    no_stray_replies(c, "pipelined reads")
    c.disconnect()
    return "%d pipelined reads answered once each" % n


@scenario
def disc_with_inflight(ctx):
    """DISC after a batch of reads: every read is answered, then the server closes."""
    c = ctx.ready()
    blob = b""
    for i in range(20):
        blob += c.request(CMD_READ, i * 65536, 65536, send=False)[1]
    blob += struct.pack(">IHHQQI", REQUEST_MAGIC, 0, CMD_DISC, 999999, 0, 0)
    c.send(blob)
    for _ in range(20):
        ck, err, data = c.read_reply()
        expect_err(err, 0, "read before DISC")
    check(c.expect_closed(), "server did not close after DISC")
    c.close()
    ctx.still_serving()
    return "20 replies, then closed"


@scenario
def vanish_with_inflight(ctx):
    """A client that sends big reads and vanishes without reading the replies."""
    for _ in range(3):
        c = ctx.ready()
        blob = b""
        for i in range(64):
            blob += c.request(CMD_READ, 0, 1 << 20, send=False)[1]
        c.send(blob)
        time.sleep(0.05)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # RST
    ctx.still_serving()
    return "3 clients reset with 64 MiB of replies pending; server fine"


@scenario
def other_commands(ctx):
    """TRIM, WRITE_ZEROES, CACHE, BLOCK_STATUS: good ones work, bad ones get
    EINVAL/ENOSPC and the connection stays usable."""
    c = ctx.ready(structured=True, meta=True)
    size = c.size
    if not ctx.readonly:
        expect_err(c.write(0, b"\x77" * 65536), 0, "WRITE 64K")
        err, _ = c.cmd(CMD_WRITE_ZEROES, 0, 4096)
        expect_err(err, 0, "WRITE_ZEROES")
        err, _ = c.cmd(CMD_WRITE_ZEROES, 4096, 4096, flags=CMD_FLAG_NO_HOLE)
        expect_err(err, 0, "WRITE_ZEROES NO_HOLE")
        err, data = c.read(0, 16384)
        check(err == 0 and data[:8192] == bytes(8192) and data[8192:] == b"\x77" * 8192,
              "WRITE_ZEROES did not zero exactly its range")
        err, _ = c.cmd(CMD_TRIM, 8192, 8192)
        expect_err(err, 0, "TRIM")
        err, _ = c.cmd(CMD_WRITE_ZEROES, size - 4096, 8192)
        expect_err(err, ENOSPC, "WRITE_ZEROES past the end")
        err, _ = c.cmd(CMD_TRIM, size, 4096)
        check(err in (EINVAL, ENOSPC), "TRIM past the end: error %d" % err)
        err, _ = c.cmd(CMD_TRIM, 0, 4096, flags=CMD_FLAG_NO_HOLE)
        expect_err(err, EINVAL, "TRIM with NO_HOLE")
        err, _ = c.cmd(CMD_WRITE_ZEROES, 0, 0)
        expect_err(err, EINVAL, "WRITE_ZEROES of length 0")
    err, _ = c.cmd(CMD_CACHE, 0, 65536)
    expect_err(err, 0, "CACHE")
    err, _ = c.cmd(CMD_CACHE, size, 4096)
    expect_err(err, EINVAL, "CACHE past the end")
    ck, _ = c.request(CMD_BLOCK_STATUS, 0, 1 << 20, flags=CMD_FLAG_REQ_ONE)
    rc, err, ext = c.read_reply()
    expect_err(err, 0, "BLOCK_STATUS REQ_ONE")
    check(len(ext[1]) == 1, "BLOCK_STATUS with REQ_ONE gave %d extents" % len(ext[1]))
    ck, _ = c.request(CMD_BLOCK_STATUS, size - 4096, 8192)
    rc, err, ext = c.read_reply()
    expect_err(err, EINVAL, "BLOCK_STATUS past the end")
    ck, _ = c.request(CMD_BLOCK_STATUS, 0, 0)
    rc, err, ext = c.read_reply()
    expect_err(err, EINVAL, "BLOCK_STATUS of length 0")
    err, data = c.read(0, 4096, flags=CMD_FLAG_DF)
    expect_err(err, 0, "READ with DF (structured)")
    usable(c, "other commands")
    no_stray_replies(c, "other commands")
    c.disconnect()
    return "TRIM/WRITE_ZEROES/CACHE/BLOCK_STATUS good and bad"


@scenario
def many_clients(ctx):
    """300 clients at once (more than the server's client limit, 64 by
    default): those let in work, the others are closed, the server keeps
    serving."""
    clients, refused = [], 0
    for i in range(300):
        try:
            c = ctx.client(timeout=10)
            c.connect_go(ctx.name)
            clients.append(c)
        except (Closed, OSError):
            refused += 1
    check(len(clients) >= 32, "only %d of 300 clients got in" % len(clients))
    for i, c in enumerate(clients):
        err, _ = c.read((i * 4096) % (c.size - 4096), 4096)
        expect_err(err, 0, "read by client %d of %d" % (i, len(clients)))
    for c in clients:
        c.disconnect()
    time.sleep(0.3)
    ctx.still_serving()
    return "%d clients in, %d turned away, all reads fine" % (len(clients), refused)


# -- transmission phase: broken streams (connection closes) --

@scenario
def bad_request_magic(ctx):
    """Bad request magic -> that connection closes; a new client works."""
    c = ctx.ready()
    c.request(CMD_READ, 0, 4096, magic=0x12345678)
    check(c.expect_closed(), "server did not close after a bad request magic")
    c.close()
    ctx.still_serving()
    return "closed, new client fine"


@scenario
def garbage_transmission(ctx):
    """Random bytes after GO -> closed; a new client works."""
    c = ctx.ready()
    c.send(b"\xff" + os.urandom(4095))
    check(c.expect_closed(), "server did not close after garbage")
    c.close()
    ctx.still_serving()
    return "closed, new client fine"


@scenario
def vanish_mid_payload(ctx):
    """Client closes in the middle of a write payload; server keeps serving."""
    if ctx.readonly:
        return "skipped (read-only)"
    for size, sent in ((1 << 20, 100000), (4096, 10), (MAX_PAYLOAD, 5 << 20),
                       (MAX_BLOCK, 40 << 20)):
        c = ctx.ready()
        _, msg = c.request(CMD_WRITE, 0, size, send=False)
        c.send(msg + b"z" * sent)
        time.sleep(0.05)
        c.close()
    # And one that vanishes mid-header.
    c = ctx.ready()
    c.send(struct.pack(">IHH", REQUEST_MAGIC, 0, CMD_READ))
    c.close()
    ctx.still_serving()
    return "5 clients gone mid-request (one in a 64 MiB write's second piece); server fine"


# -- handshake --

@scenario
def bad_client_flags(ctx):
    """Client flags without FIXED_NEWSTYLE, or with unknown bits -> closed."""
    for flags in (0, FLAG_NO_ZEROES, FLAG_FIXED_NEWSTYLE | (1 << 5), 0xFFFFFFFF):
        c = ctx.client()
        c.greeting()
        c.send(struct.pack(">I", flags))
        check(c.expect_closed(), "server did not close after client flags 0x%x" % flags)
        c.close()
    ctx.still_serving()
    return "4 bad flag words closed, new client fine"


@scenario
def bad_option_magic(ctx):
    """Bad option magic -> closed."""
    c = ctx.client()
    c.handshake()
    c.send(struct.pack(">QII", 0x1122334455667788, OPT_GO, 0))
    check(c.expect_closed(), "server did not close after a bad option magic")
    c.close()
    ctx.still_serving()
    return "closed, new client fine"


@scenario
def truncated_handshake(ctx):
    """Clients that stop at every point of the handshake; server keeps serving."""
    go = struct.pack(">QII", IHAVEOPT, OPT_GO, len(Client.go_data(ctx.name))) + Client.go_data(ctx.name)
    cuts = [
        b"",                           # connect, read greeting, close
        b"\x00\x00",                   # half of the client flags
        struct.pack(">I", 3),          # flags, nothing more
        struct.pack(">I", 3) + go[:10],  # half an option header
        struct.pack(">I", 3) + go[:18],  # header plus part of the data
    ]
    for cut in cuts:
        c = ctx.client()
        c.greeting()
        if cut:
            c.send(cut)
        time.sleep(0.02)
        c.close()
    # And one that closes before even reading the greeting.
    c = ctx.client()
    c.close()
    ctx.still_serving()
    return "%d truncated handshakes, new client fine" % (len(cuts) + 1)


@scenario
def garbage_handshake(ctx):
    """Garbage instead of a handshake -> closed."""
    rnd = random.Random(7)
    for i in range(5):
        c = ctx.client()
        c.greeting()
        junk = bytes([0xF0 | rnd.getrandbits(4)]) + bytes(rnd.getrandbits(8) for _ in range(4095))
        try:
            c.send(junk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        check(c.expect_closed(), "server did not close after garbage (round %d)" % i)
        c.close()
    # Garbage right after connecting, without reading the greeting.
    c = ctx.client()
    c.send(os.urandom(1000))
    check(c.expect_closed(), "server did not close after garbage sent blind")
    c.close()
    ctx.still_serving()
    return "6 garbage clients closed, new client fine"


@scenario
def garbage_storm(ctx):
    """Many clients at once sending garbage, while a good client does IO."""
    stop = threading.Event()
    errors = []

    def bad():
        rnd = random.Random(threading.get_ident())
        while not stop.is_set():
            try:
                c = ctx.client(timeout=5)
                if rnd.random() < 0.5:
                    c.greeting()
                c.send(bytes([0xFF]) + os.urandom(rnd.randrange(1, 3000)))
                c.close()
            except OSError:
                pass

    threads = [threading.Thread(target=bad) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        c = ctx.ready()
        for i in range(200):
            err, data = c.read((i * 4096) % (c.size - 4096), 4096)
            if err:
                errors.append(err)
        c.disconnect()
    finally:
        stop.set()
        for t in threads:
            t.join()
    check(not errors, "good client got errors %s during the storm" % errors[:5])
    ctx.still_serving()
    return "200 good reads during a garbage storm"


@scenario
def unknown_option(ctx):
    """Unknown option -> ERR_UNSUP, haggling goes on and GO works."""
    c = ctx.client()
    c.handshake()
    for opt in (4, 12, 99, 0x7FFFFFFF):
        reps = c.option(opt, b"some data")
        check(reps[-1][0] == REP_ERR_UNSUP, "option %d: %s, expected ERR_UNSUP" % (opt, rep_name(reps[-1][0])))
    reps = c.option(OPT_STARTTLS)
    check(reps[-1][0] & (1 << 31), "STARTTLS on a server without TLS: %s, expected an error" % rep_name(reps[-1][0]))
    reps = c.go(ctx.name)
    check(reps[-1][0] == REP_ACK, "GO after unknown options: %s" % rep_name(reps[-1][0]))
    usable(c, "unknown options")
    c.disconnect()
    return "ERR_UNSUP x4, STARTTLS refused, GO fine"


@scenario
def list_with_data(ctx):
    """LIST with data -> ERR_INVALID; LIST without data lists the export."""
    c = ctx.client()
    c.handshake()
    reps = c.option(OPT_LIST, b"junk")
    check(reps[-1][0] == REP_ERR_INVALID, "LIST with data: %s" % rep_name(reps[-1][0]))
    reps = c.option(OPT_LIST)
    check(reps[-1][0] == REP_ACK, "LIST: %s" % rep_name(reps[-1][0]))
    servers = [d for t, d in reps if t == REP_SERVER]
    check(len(servers) == 1, "LIST gave %d exports" % len(servers))
    nlen = struct.unpack(">I", servers[0][:4])[0]
    name = servers[0][4:4 + nlen].decode()
    if ctx.name:
        check(name == ctx.name, "LIST names '%s', expected '%s'" % (name, ctx.name))
    reps = c.go(ctx.name)
    check(reps[-1][0] == REP_ACK, "GO after LIST: %s" % rep_name(reps[-1][0]))
    c.disconnect()
    return "ERR_INVALID, then LIST names '%s'" % name


@scenario
def go_unknown_export(ctx):
    """GO/INFO for an unknown export -> ERR_UNKNOWN; GO for ours works after."""
    c = ctx.client()
    c.handshake()
    reps = c.go("no-such-export")
    check(reps[-1][0] == REP_ERR_UNKNOWN, "GO unknown: %s" % rep_name(reps[-1][0]))
    reps = c.go("no-such-export", opt=OPT_INFO)
    check(reps[-1][0] == REP_ERR_UNKNOWN, "INFO unknown: %s" % rep_name(reps[-1][0]))
    reps = c.go("x" * 5000)
    check(reps[-1][0] in (REP_ERR_UNKNOWN, REP_ERR_INVALID), "GO with a 5000-byte name: %s" % rep_name(reps[-1][0]))
    reps = c.go(ctx.name, infos=(INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE), opt=OPT_INFO)
    check(reps[-1][0] == REP_ACK, "INFO: %s" % rep_name(reps[-1][0]))
    infos = {struct.unpack(">H", d[:2])[0]: d[2:] for t, d in reps if t == REP_INFO}
    check(INFO_EXPORT in infos and INFO_BLOCK_SIZE in infos, "INFO lacks EXPORT or BLOCK_SIZE")
    mn, pref, mx = struct.unpack(">III", infos[INFO_BLOCK_SIZE])
    check((mn, pref, mx) == (1, 4096, MAX_BLOCK), "block sizes %s" % ((mn, pref, mx),))
    reps = c.go(ctx.name)
    check(reps[-1][0] == REP_ACK, "GO after errors: %s" % rep_name(reps[-1][0]))
    usable(c, "GO errors")
    c.disconnect()
    return "ERR_UNKNOWN, INFO gives sizes (1, 4096, 64M), GO fine"


@scenario
def malformed_go(ctx):
    """GO with inconsistent lengths -> ERR_INVALID, haggling goes on."""
    c = ctx.client()
    c.handshake()
    bad = [
        b"",                                          # too short
        struct.pack(">I", 100) + b"abc" + struct.pack(">H", 0),  # name longer than data
        Client.go_data(ctx.name) + b"\x00",           # trailing byte
        struct.pack(">I", 0) + struct.pack(">H", 5),  # 5 infos announced, none sent
    ]
    for d in bad:
        reps = c.option(OPT_GO, d)
        check(reps[-1][0] == REP_ERR_INVALID, "malformed GO %r: %s" % (d[:16], rep_name(reps[-1][0])))
    reps = c.go(ctx.name)
    check(reps[-1][0] == REP_ACK, "GO after malformed ones: %s" % rep_name(reps[-1][0]))
    c.disconnect()
    return "ERR_INVALID x%d, GO fine" % len(bad)


@scenario
def meta_before_structured(ctx):
    """SET_META_CONTEXT before STRUCTURED_REPLY -> ERR_INVALID; in order it works."""
    c = ctx.client()
    c.handshake()
    reps = c.option(OPT_SET_META_CONTEXT, Client.meta_data(ctx.name))
    check(reps[-1][0] == REP_ERR_INVALID, "SET_META_CONTEXT first: %s" % rep_name(reps[-1][0]))
    reps = c.option(OPT_LIST_META_CONTEXT, Client.meta_data(ctx.name))
    check(reps[-1][0] == REP_ERR_INVALID, "LIST_META_CONTEXT first: %s" % rep_name(reps[-1][0]))
    reps = c.option(OPT_STRUCTURED_REPLY, b"x")
    check(reps[-1][0] == REP_ERR_INVALID, "STRUCTURED_REPLY with data: %s" % rep_name(reps[-1][0]))
    reps = c.option(OPT_STRUCTURED_REPLY)
    check(reps[-1][0] == REP_ACK, "STRUCTURED_REPLY: %s" % rep_name(reps[-1][0]))
    c.structured = True
    reps = c.option(OPT_SET_META_CONTEXT, Client.meta_data(ctx.name))
    check(reps[-1][0] == REP_ACK, "SET_META_CONTEXT: %s" % rep_name(reps[-1][0]))
    ctxs = [d for t, d in reps if t == REP_META_CONTEXT]
    check(len(ctxs) == 1 and ctxs[0][4:] == b"base:allocation", "meta contexts %r" % ctxs)
    ctx_id = struct.unpack(">I", ctxs[0][:4])[0]
    reps = c.go(ctx.name)
    check(reps[-1][0] == REP_ACK, "GO: %s" % rep_name(reps[-1][0]))
    ck, _ = c.request(CMD_BLOCK_STATUS, 0, 1 << 20)
    rc, err, ext = c.read_reply()
    expect_err(err, 0, "BLOCK_STATUS")
    check(ext[0] == ctx_id and ext[1], "BLOCK_STATUS for context %d: %r" % (ctx_id, ext))
    check(sum(l for l, f in ext[1]) <= 1 << 20, "extents longer than asked")
    c.disconnect()
    return "ERR_INVALID before STRUCTURED_REPLY; after it base:allocation works"


@scenario
def huge_option(ctx):
    """Option data > 64 KiB -> ERR_TOO_BIG after the data is consumed; GO works."""
    c = ctx.client()
    c.handshake()
    size = 100 << 10
    # Data that looks like options: only consumed data stays harmless.
    fake = struct.pack(">QII", IHAVEOPT, OPT_LIST, 0)
    data = (fake * (size // len(fake) + 1))[:size]
    c.send_option(OPT_GO, data)
    reps = c.read_replies(OPT_GO)
    check(reps[-1][0] == REP_ERR_TOO_BIG, "GO with 100 KiB of data: %s" % rep_name(reps[-1][0]))
    c.send_option(99, b"\0" * (1 << 20))
    reps = c.read_replies(99)
    check(reps[-1][0] == REP_ERR_TOO_BIG, "option 99 with 1 MiB of data: %s" % rep_name(reps[-1][0]))
    reps = c.go(ctx.name)
    check(reps[-1][0] == REP_ACK, "GO after huge options: %s" % rep_name(reps[-1][0]))
    usable(c, "huge options")
    c.disconnect()
    return "ERR_TOO_BIG x2 after consuming, GO fine"


@scenario
def export_name_opt(ctx):
    """Old-style EXPORT_NAME: with and without NO_ZEROES; unknown name closes."""
    for cflags in (FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, FLAG_FIXED_NEWSTYLE):
        c = ctx.client()
        c.handshake(cflags)
        c.send_option(OPT_EXPORT_NAME, ctx.name.encode())
        size, tflags = struct.unpack(">QH", c.recv_exact(10))
        if not cflags & FLAG_NO_ZEROES:
            check(c.recv_exact(124) == bytes(124), "EXPORT_NAME reply padding is not zero")
        check(size > 0 and tflags & TF_HAS_FLAGS, "EXPORT_NAME reply size %d flags 0x%x" % (size, tflags))
        c.size, c.tflags = size, tflags
        usable(c, "EXPORT_NAME (client flags 0x%x)" % cflags)
        c.disconnect()
    c = ctx.client()
    c.handshake()
    c.send_option(OPT_EXPORT_NAME, b"no-such-export")
    check(c.expect_closed(), "EXPORT_NAME for an unknown export did not close")
    c.close()
    ctx.still_serving()
    return "works with and without NO_ZEROES; unknown name closed"


@scenario
def abort(ctx):
    """ABORT -> ACK and the server closes."""
    c = ctx.client()
    c.handshake()
    c.send_option(OPT_ABORT)
    try:
        opt, rtype, _ = c.read_option_reply()
        check(rtype == REP_ACK, "ABORT: %s" % rep_name(rtype))
    except Closed:
        pass  # the spec lets the server close without the ACK
    check(c.expect_closed(), "server did not close after ABORT")
    c.close()
    ctx.still_serving()
    return "closed after ABORT"


@scenario
def options_burst(ctx):
    """Several options in one segment are answered in order."""
    c = ctx.client()
    c.handshake()
    blob = b""
    for opt, data in ((99, b""), (OPT_LIST, b""), (OPT_STRUCTURED_REPLY, b""),
                      (OPT_INFO, Client.go_data(ctx.name)), (OPT_GO, Client.go_data(ctx.name))):
        blob += struct.pack(">QII", IHAVEOPT, opt, len(data)) + data
    c.send(blob)
    check(c.read_replies(99)[-1][0] == REP_ERR_UNSUP, "burst: option 99")
    check(c.read_replies(OPT_LIST)[-1][0] == REP_ACK, "burst: LIST")
    check(c.read_replies(OPT_STRUCTURED_REPLY)[-1][0] == REP_ACK, "burst: STRUCTURED_REPLY")
    c.structured = True
    check(c.read_replies(OPT_INFO)[-1][0] == REP_ACK, "burst: INFO")
    reps = c.read_replies(OPT_GO)
    check(reps[-1][0] == REP_ACK, "burst: GO")
    usable(c, "an option burst")
    c.disconnect()
    return "5 options in one write answered in order"


# -- access control --

@scenario
def refused(ctx):
    """A client refused by --allow gets ERR_POLICY for everything, and
    EXPORT_NAME closes the connection."""
    c = ctx.client()
    c.handshake()
    for opt, data in ((OPT_LIST, b""), (OPT_INFO, Client.go_data(ctx.name)), (OPT_GO, Client.go_data(ctx.name))):
        reps = c.option(opt, data)
        check(reps[-1][0] == REP_ERR_POLICY, "refused client, option %d: %s" % (opt, rep_name(reps[-1][0])))
        check(all(t != REP_INFO and t != REP_SERVER for t, d in reps), "refused client learned something")
    c.close()
    c = ctx.client()
    c.handshake()
    c.send_option(OPT_EXPORT_NAME, ctx.name.encode())
    check(c.expect_closed(), "EXPORT_NAME from a refused client did not close")
    c.close()
    return "ERR_POLICY for LIST/INFO/GO, EXPORT_NAME closed"


@scenario
def access_rw(ctx):
    """This client is read-write: no READ_ONLY flag and a write works."""
    c = ctx.ready()
    check(not c.tflags & TF_READ_ONLY, "READ_ONLY flag set for a read-write client")
    data = b"rw" * 2048
    expect_err(c.write(0, data), 0, "WRITE by a read-write client")
    err, back = c.read(0, len(data))
    check(err == 0 and back == data, "read back after write differs")
    c.disconnect()
    return "read-write"


@scenario
def access_ro(ctx):
    """This client is read-only: READ_ONLY flag, EPERM on write, reads fine."""
    c = ctx.ready()
    check(c.tflags & TF_READ_ONLY, "READ_ONLY flag missing for a read-only client")
    expect_err(c.write(0, b"ro" * 2048), EPERM, "WRITE by a read-only client")
    usable(c, "a refused write")
    c.disconnect()
    return "read-only"


# -- TLS (the server's --tls mode) --

@scenario
def tls_required(ctx):
    """--tls require, a client that does not start TLS: every option but
    STARTTLS and ABORT gets ERR_TLS_REQD and nothing of the export (no INFO,
    no SERVER reply, not the name); EXPORT_NAME closes the connection."""
    c = ctx.client()
    c.handshake()
    opts = ((OPT_LIST, b""), (OPT_INFO, Client.go_data(ctx.name, (INFO_NAME, INFO_DESCRIPTION))),
            (OPT_GO, Client.go_data(ctx.name)), (OPT_STRUCTURED_REPLY, b""),
            (OPT_LIST_META_CONTEXT, Client.meta_data(ctx.name)), (99, b""))
    for opt, data in opts:
        reps = c.option(opt, data)
        check(len(reps) == 1 and reps[0][0] == REP_ERR_TLS_REQD,
              "option %d without TLS: %s" % (opt, [rep_name(t) for t, _ in reps]))
        check(not ctx.name or ctx.name.encode() not in reps[0][1], "the error names the export")
    reps = c.option(OPT_STARTTLS, b"junk")
    check(reps[-1][0] == REP_ERR_INVALID, "STARTTLS with data: %s" % rep_name(reps[-1][0]))
    c.close()
    c = ctx.client()
    c.handshake()
    c.send_option(OPT_EXPORT_NAME, ctx.name.encode())
    check(c.expect_closed(), "EXPORT_NAME without TLS did not close")
    c.close()
    return "ERR_TLS_REQD for %d options, EXPORT_NAME closed" % len(opts)


@scenario
def tls_starttls_ack(ctx):
    """STARTTLS gets ACK (a server with TLS on or required); a client that
    then sends plaintext instead of a TLS hello is let go."""
    c = ctx.client()
    c.handshake()
    reps = c.option(OPT_STARTTLS)
    check(reps[-1][0] == REP_ACK, "STARTTLS: %s" % rep_name(reps[-1][0]))
    c.send_option(OPT_GO, Client.go_data(ctx.name))
    check(c.expect_closed(), "plaintext after the STARTTLS ACK did not close")
    c.close()
    return "ACK, then plaintext closed"


@scenario
def tls_injection(ctx):
    """Plaintext sent right behind STARTTLS (before the ACK, as a man in the
    middle would inject it) is not taken as if it came through TLS: closed."""
    c = ctx.client()
    c.handshake()
    c.send(struct.pack(">QII", IHAVEOPT, OPT_STARTTLS, 0) +
           struct.pack(">QII", IHAVEOPT, OPT_STRUCTURED_REPLY, 0))
    try:
        ropt, rtype, _ = c.read_option_reply()
        check(ropt == OPT_STARTTLS and rtype == REP_ACK, "STARTTLS: %s" % rep_name(rtype))
    except Closed:
        pass  # closed before even the ACK went out: as good
    check(c.expect_closed(), "the server went on after plaintext behind STARTTLS")
    c.close()
    return "closed"


@scenario
def tls_unsupported(ctx):
    """A server without TLS answers STARTTLS with ERR_UNSUP; haggling goes on."""
    c = ctx.client()
    c.handshake()
    reps = c.option(OPT_STARTTLS)
    check(reps[-1][0] == REP_ERR_UNSUP, "STARTTLS without TLS: %s" % rep_name(reps[-1][0]))
    reps = c.go(ctx.name)
    check(reps[-1][0] == REP_ACK, "GO after a refused STARTTLS: %s" % rep_name(reps[-1][0]))
    usable(c, "a refused STARTTLS")
    c.disconnect()
    return "ERR_UNSUP, then GO works"


# -- shutdown --

@scenario
def inflight_at_stop(ctx):
    """--during CMD stops the server while 1000 reads are queued: every reply
    that comes is complete and right, then the server closes cleanly."""
    import subprocess
    check(ctx.during, "inflight_at_stop needs --during CMD")
    c = ctx.ready()
    blob = b""
    n = 1000
    for i in range(n):
        blob += c.request(CMD_READ, (i % 16) * (256 << 10), 256 << 10, send=False)[1]
    c.send(blob)
    proc = {}

    def run():
        proc["rc"] = subprocess.call(ctx.during, shell=True)

    t = threading.Thread(target=run)
    t.start()
    got = 0
    closed = False
    while got < n:
        try:
            ck, err, data = c.read_reply()
        except Closed as e:
            check("after 0 of" in str(e), "reply cut short by the stop: %s" % e)
            closed = True
            break
        check(err in (0, 108), "read during stop: error %d" % err)
        if err == 0:
            check(len(data) == 256 << 10, "short read data")
        got += 1
    if not closed:
        check(c.expect_closed(15), "server did not close after the stop")
    t.join()
    check(proc.get("rc") == 0, "'%s' exited with %s" % (ctx.during, proc.get("rc")))
    c.close()
    return "%d of %d replies complete before a clean close" % (got, n)


DEFAULT = [n for n in SCENARIOS if n not in ("refused", "access_rw", "access_ro", "garbage_storm", "inflight_at_stop")
           and not n.startswith("tls_")]


def num(s):
    mult = 1
    if s[-1:] in ("K", "k"):
        mult, s = 1024, s[:-1]
    elif s[-1:] in ("M", "m"):
        mult, s = 1 << 20, s[:-1]
    return int(s, 0) * mult


def do_ops(ctx, ops):
    """Run plain IO ops on one connection; exit status 1 on any error."""
    c = ctx.ready()
    for op in ops:
        f = op.split(":")
        if f[0] == "write":
            flags = CMD_FLAG_FUA if len(f) > 4 and f[4] == "fua" else 0
            err = c.write(num(f[1]), bytes([num(f[3])]) * num(f[2]), flags)
        elif f[0] == "read":
            err, data = c.read(num(f[1]), num(f[2]))
            if not err and len(f) > 3 and data != bytes([num(f[3])]) * num(f[2]):
                bad = next(i for i in range(len(data)) if data[i] != num(f[3]))
                print("%s: byte %d is 0x%02x" % (op, num(f[1]) + bad, data[bad]))
                return 1
        elif f[0] == "flush":
            err, _ = c.cmd(CMD_FLUSH)
        elif f[0] == "trim":
            err, _ = c.cmd(CMD_TRIM, num(f[1]), num(f[2]))
        elif f[0] == "zero":
            err, _ = c.cmd(CMD_WRITE_ZEROES, num(f[1]), num(f[2]))
        else:
            print("unknown op %s" % op)
            return 2
        print("%s: %s" % (op, "ok" if err == 0 else "error %d" % err))
        if err:
            return 1
    c.disconnect()
    return 0


def main(argv):
    import argparse
    p = argparse.ArgumentParser(description="raw NBD client for bad-input tests")
    p.add_argument("--name", default="")
    p.add_argument("--readonly", action="store_true")
    p.add_argument("--src", default=None)
    p.add_argument("--during", default=None, help="shell command for inflight_at_stop")
    p.add_argument("--list", action="store_true")
    p.add_argument("host", nargs="?")
    p.add_argument("port", nargs="?", type=int)
    p.add_argument("scenarios", nargs="*")
    a = p.parse_args(argv)
    if a.list:
        for n, fn in SCENARIOS.items():
            print("%-24s %s" % (n, (fn.__doc__ or "").strip().splitlines()[0]))
        return 0
    if not a.host or not a.port or not a.scenarios:
        p.print_usage(sys.stderr)
        return 2
    if ":" in a.scenarios[0] or a.scenarios[0] == "flush":
        return do_ops(Ctx(a.host, a.port, a.name, a.readonly, a.src), a.scenarios)
    names = []
    for s in a.scenarios:
        names += DEFAULT if s == "all" else [s]
    ctx = Ctx(a.host, a.port, a.name, a.readonly, a.src, a.during)
    failed = 0
    for n in names:
        fn = SCENARIOS.get(n)
        if not fn:
            print("FAIL %s: no such scenario" % n)
            failed += 1
            continue
        t0 = time.monotonic()
        try:
            what = fn(ctx)
            print("ok   %-22s %s (%.2fs)" % (n, what or "", time.monotonic() - t0), flush=True)
        except (TestFailure, Closed, OSError) as e:
            failed += 1
            print("FAIL %-22s %s: %s" % (n, type(e).__name__, e), flush=True)
            if not isinstance(e, TestFailure):
                traceback.print_exc(file=sys.stdout)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
