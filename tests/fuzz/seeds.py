#!/usr/bin/env python3
"""seeds.py - write the seed corpus of every fuzz target (tests/fuzz/corpus/).

    python3 tests/fuzz/seeds.py

Seeds are small, meaningful inputs that show each target what well-formed
input looks like (a full handshake and one of every request, a config with
every key, ...) plus a few near misses. libFuzzer mutates from there. The
files are checked in, and test_fuzz_replay replays them under make check;
this script is how they were made, and re-running it rewrites them the same.
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REP_MAGIC = 0x0003E889045565A9
REQ_MAGIC = 0x25609513

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS = 1, 2, 3, 5
OPT_INFO, OPT_GO, OPT_STRUCTURED_REPLY = 6, 7, 8
OPT_LIST_META, OPT_SET_META = 9, 10
REP_ACK, REP_SERVER, REP_INFO, REP_META = 1, 2, 3, 4
REP_ERR_UNSUP, REP_ERR_POLICY = (1 << 31) + 1, (1 << 31) + 2
CMD = dict(read=0, write=1, disc=2, flush=3, trim=4, cache=5, zero=6, status=7)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def s32(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">I", len(b)) + b


def opt(o, data=b""):
    return struct.pack(">QII", IHAVEOPT, o, len(data)) + data


def go_payload(name="", infos=(3,)):
    return s32(name) + struct.pack(">H", len(infos)) + b"".join(struct.pack(">H", i) for i in infos)


def meta_payload(name="", queries=("base:allocation",)):
    return s32(name) + struct.pack(">I", len(queries)) + b"".join(s32(q) for q in queries)


def req(cmd, off=0, length=0, flags=0, cookie=1, payload=b""):
    return struct.pack(">IHHQQI", REQ_MAGIC, flags, CMD[cmd], cookie, off, length) + payload


# ---- nbd_options: selector byte (0 GO, 1 LIST_META, 2 SET_META) + payload ----
write("nbd_options", "go-empty-name", b"\0" + go_payload(""))
write("nbd_options", "go-name-infos", b"\0" + go_payload("disk", (0, 1, 2, 3, 9)))
write("nbd_options", "go-short", b"\0" + s32("disk"))
write("nbd_options", "list-meta-all", b"\1" + meta_payload("", ()))
write("nbd_options", "list-meta-base", b"\1" + meta_payload("disk", ("base:",)))
write("nbd_options", "set-meta-base", b"\2" + meta_payload("disk", ("base:allocation", "qemu:dirty-bitmap:x")))
write("nbd_options", "set-meta-overlong-count", b"\2" + s32("") + struct.pack(">I", 1000) + s32("base:allocation"))

# ---- nbd_request: 28-byte header + size(8) + min_block(4) + caps byte ----
def caps(size=1 << 20, min_block=1, bits=0x7E):
    return struct.pack(">QIB", size, min_block, bits)


write("nbd_request", "read", req("read", 4096, 4096) + caps())
write("nbd_request", "write-fua", req("write", 0, 512, flags=1) + caps())
write("nbd_request", "write-readonly", req("write", 0, 512) + caps(bits=0x7F))
write("nbd_request", "read-df-structured", req("read", 0, 65536, flags=4) + caps())
write("nbd_request", "read-past-end", req("read", (1 << 20) - 512, 1024) + caps())
write("nbd_request", "read-max-payload", req("read", 0, 32 << 20) + caps(size=1 << 40))
write("nbd_request", "read-wrap", req("read", 0xFFFFFFFFFFFFF000, 0x2000) + caps(size=1 << 63))
write("nbd_request", "flush", req("flush") + caps())
write("nbd_request", "trim", req("trim", 0, 1 << 20) + caps())
write("nbd_request", "zero-fast-nohole", req("zero", 0, 8192, flags=0x12) + caps())
write("nbd_request", "block-status-req-one", req("status", 0, 1 << 20, flags=8) + caps())
write("nbd_request", "cache", req("cache", 0, 4096) + caps())
write("nbd_request", "min-block-4k", req("read", 512, 4096) + caps(min_block=4096))
write("nbd_request", "unknown-cmd", struct.pack(">IHHQQI", REQ_MAGIC, 0, 99, 1, 0, 512) + caps())

# ---- nbd_server: settings byte (bits 0-1 server, 2-4 piece size) + client bytes ----
CFLAGS = struct.pack(">I", 3)  # FIXED_NEWSTYLE | NO_ZEROES
full = (CFLAGS + opt(OPT_STRUCTURED_REPLY) + opt(OPT_SET_META, meta_payload("disk"))
        + opt(OPT_GO, go_payload("disk", (1, 2, 3)))
        + req("write", 0, 4096, cookie=1, payload=b"\xab" * 4096)
        + req("read", 0, 4096, cookie=2, flags=4)
        + req("flush", cookie=3)
        + req("trim", 8192, 4096, cookie=4)
        + req("zero", 16384, 4096, cookie=5, flags=0x2)
        + req("status", 0, 65536, cookie=6)
        + req("cache", 0, 4096, cookie=7)
        + req("write", 0, 512, cookie=8, flags=1, payload=b"\x01" * 512)
        + req("disc", cookie=9))
write("nbd_server", "full-session", b"\x1c" + full)  # pieces of 64 KiB
write("nbd_server", "full-session-bytewise", b"\x00" + full)  # pieces of 1 byte
write("nbd_server", "readonly-writes",
      b"\x0a" + CFLAGS + opt(OPT_GO, go_payload("")) + req("write", 0, 512, payload=b"\0" * 512)
      + req("trim", 0, 512) + req("read", 0, 512) + req("disc"))
write("nbd_server", "refused-client",
      b"\x03" + CFLAGS + opt(OPT_LIST) + opt(OPT_GO, go_payload("disk")) + opt(OPT_EXPORT_NAME, b"disk"))
write("nbd_server", "export-name-zeroes", b"\x00" + struct.pack(">I", 1) + opt(OPT_EXPORT_NAME, b"disk")
      + req("read", 0, 512) + req("disc"))
write("nbd_server", "options-misc",
      b"\x10" + CFLAGS + opt(OPT_LIST) + opt(OPT_LIST, b"x") + opt(OPT_INFO, go_payload("disk", (0, 1, 2, 3)))
      + opt(OPT_INFO, go_payload("nope")) + opt(OPT_STARTTLS) + opt(99, b"junk")
      + opt(OPT_LIST_META, meta_payload("disk")) + opt(OPT_STRUCTURED_REPLY, b"x")
      + opt(OPT_STRUCTURED_REPLY) + opt(OPT_LIST_META, meta_payload("", ())) + opt(OPT_ABORT))
write("nbd_server", "bad-requests",
      b"\x14" + CFLAGS + opt(OPT_GO, go_payload(""))
      + req("read", 1 << 20, 512, cookie=1) + req("write", (1 << 20) - 1, 2, cookie=2, payload=b"zz")
      + req("read", 0, 0, cookie=3) + req("read", 0, (32 << 20) + 1, cookie=4)
      + req("status", 0, 512, cookie=5) + req("flush", 1, 1, cookie=6)
      + struct.pack(">IHHQQI", REQ_MAGIC, 0x80, 0, 7, 0, 512) + req("read", 0, 512, cookie=8)
      + struct.pack(">IHHQQI", 0xdeadbeef, 0, 0, 9, 0, 512))
write("nbd_server", "oversized-option", b"\x18" + CFLAGS + struct.pack(">QII", IHAVEOPT, OPT_INFO, 70000)
      + b"\0" * 1000)
OPT_DST_FENCE = 0x44535446  # dst's own: a storage says who it is (UUID, epoch, start)
write("nbd_server", "fence",
      b"\x00" + CFLAGS + opt(OPT_DST_FENCE, b"\x5a" * 16 + struct.pack(">QQ", 7, 0))
      + opt(OPT_DST_FENCE, b"short") + opt(OPT_DST_FENCE, b"\x5a" * 16 + struct.pack(">QQ", 3, 0))
      + opt(OPT_GO, go_payload("")) + req("read", 0, 512) + req("disc"))
write("nbd_server", "bad-client-flags", b"\x00" + struct.pack(">I", 0x80))
write("nbd_server", "truncated-write", b"\x00" + CFLAGS + opt(OPT_GO, go_payload("")) + req("write", 0, 65536)
      + b"\x55" * 1000)

# ---- nbd_client_hs: settings byte (bit 0 extents, bits 1-2 name) + server bytes ----
def rep(o, t, data=b""):
    return struct.pack(">QIII", REP_MAGIC, o, t, len(data)) + data


GREET = struct.pack(">QQH", NBDMAGIC, IHAVEOPT, 3)
INFO_EXPORT = struct.pack(">HQH", 0, 1 << 30, 0x1FD)
INFO_BS = struct.pack(">HIII", 3, 1, 4096, 32 << 20)
write("nbd_client_hs", "all-features",
      b"\x05" + GREET + rep(OPT_STRUCTURED_REPLY, REP_ACK)
      + rep(OPT_SET_META, REP_META, struct.pack(">I", 1) + b"base:allocation") + rep(OPT_SET_META, REP_ACK)
      + rep(OPT_GO, REP_INFO, INFO_EXPORT) + rep(OPT_GO, REP_INFO, INFO_BS)
      + rep(OPT_GO, REP_INFO, struct.pack(">H", 2) + b"a description") + rep(OPT_GO, REP_ACK))
write("nbd_client_hs", "no-structured",
      b"\x04" + GREET + rep(OPT_STRUCTURED_REPLY, REP_ERR_UNSUP, b"no")
      + rep(OPT_GO, REP_INFO, INFO_EXPORT) + rep(OPT_GO, REP_ACK))
write("nbd_client_hs", "go-unsupported",
      b"\x02" + GREET + rep(OPT_STRUCTURED_REPLY, REP_ACK) + rep(OPT_GO, REP_ERR_UNSUP)
      + struct.pack(">QH", 1 << 20, 1))
write("nbd_client_hs", "not-fixed", b"\x00" + struct.pack(">QQH", NBDMAGIC, IHAVEOPT, 0)
      + struct.pack(">QH", 1 << 20, 1) + b"\0" * 124)
write("nbd_client_hs", "policy-error",
      b"\x04" + GREET + rep(OPT_STRUCTURED_REPLY, REP_ACK) + rep(OPT_GO, REP_ERR_POLICY, b"go away\x01\xff"))
write("nbd_client_hs", "oldstyle", b"\x00" + struct.pack(">QQ", NBDMAGIC, 0x00420281861253) + b"\0" * 8)
write("nbd_client_hs", "long-name", b"\x07" + GREET + rep(OPT_STRUCTURED_REPLY, REP_ACK)
      + rep(OPT_SET_META, REP_ACK) + rep(OPT_GO, REP_INFO, INFO_EXPORT) + rep(OPT_GO, REP_ACK))

# ---- nbd_uri: the URI ----
for i, u in enumerate([
    "nbd://127.0.0.1:10809/disk", "nbd://[::1]:1025", "nbd://host", "nbds://h:1/e%20x",
    "nbd+unix:///disk?socket=/run/a.sock", "nbds+unix:///?socket=%2Ftmp%2Fs&tls-certificates=x",
    "nbd://h:0", "nbd://[fe80::1%25eth0]:99/x", "nbd://h:65536", "nbd+unix://host/?socket=x",
    "http://example.com/", "nbd://%zz",
]):
    write("nbd_uri", "uri-%02d" % i, u.encode())

# ---- conf: a config ----
write("conf", "export", b"""# written by dst; edit with the dst tool
type = export
disk = /srv/disk0.img
listen = 127.0.0.1:10809
listen = [::1]:10809
socket = /run/dst/a.sock
allow = 192.168.4.0/24:ro
allow = [fd00::/64]:rw
allow = 10.0.0.5
readonly = 1
backlog = 64
buffers = 128M
max-clients = 64
client-budget = 32M
handshake-timeout = 30
idle-timeout = 0
ctl-group = disk
""")
write("conf", "storage", b"""type = storage
alg = alg_linear
chunk = 64K
node = remote start=0 size=2097152 nbd://127.0.0.1:1025
node = disk start=2097152 size=0 /srv/my disk.img
node = disk start=x /bad
io-timeout = 30
request-timeout = 5
region-size = 1M
resync-rate = 50M
uuid = 0d9ec1a25a1e4bb99c4c2fbd1e7f1e00
""")
# Every storage key a value it takes (conf_keys.c), then one near miss each:
# refused values, a key given twice, a NUL byte.
write("conf", "mirror-all-keys", b"""type = storage
alg = mirror
uuid = 00112233445566778899AABBCCDDEEFF
node = remote start=0 size=16392 label=8388608 id=00112233445566778899aabbccddeeff nbd://h:1
node = disk start=16392 size=16392 mem:8M
region-size = 4K
resync-rate = 4096
assume-clean = no
io-timeout = 0
request-timeout = 86400
backlog = 65535
tls = require
tls-psk = /etc/dst/psk
tls-verify-peer = yes
node-tls-psk = /etc/dst/psk
node-tls-username = alice
fuse = /srv/dev
migrate = n-0 remote 1048576 id=00112233445566778899aabbccddeeff nbd://h:2
on-event = /usr/local/bin/dst-hook
on-event-timeout = 30
metrics-listen = 127.0.0.1:9100
allow = 10.0.0.0/8:ro
""")
write("conf", "bad-region-size", b"type = storage\nalg = alg_mirror\nregion-size = 0\n")
write("conf", "bad-words", b"alg = raid5\ntype = volume\ntls = maybe\n")
write("conf", "bad-numbers", b"io-timeout = 99999999999\nbacklog = 0\nchunk = 48K\nbuffers = 1K\n")
write("conf", "dup-key", b"type = storage\nalg = alg_linear\nio-timeout = 5\nio-timeout = 6\n")
write("conf", "nul-byte", b"type = storage\nalg = alg_linear\x00\nalg = alg_stripe\n")
write("conf", "bad-lines", b"  key.with-ok_chars =  spaced value  \n=novalue\nno equals\nk\x01 = v\n")
write("conf", "cr-and-empty", b"a = b\r\n\n\n#c = d\nempty =\n")

# ---- ctl_line: piece-size byte + what a client sends ----
for i, (step, line) in enumerate([
    (255, b"show\n"), (0, b"stop\n"), (2, b"suspend n-0\n"), (255, b"add-node disk start=0 size=8 /srv/a b.img\n"),
    (255, b"replace n-0 remote nbd://127.0.0.1:1/ 1048576\n"), (3, b" \t ping \t\nextra"),
    (255, b"\n"), (255, b"show\0stop\n"), (255, b"w " * 33 + b"\n"),
    (255, b"resume n-0 remote nbd://127.0.0.1:2/\n"), (1, b"remove-node n-8\n"),
    (255, b"replace-abort n-0\n"), (255, b"stop force\n"),
    # an idle client's partial line (the 5 s timeout closes it), and one too long
    (0, b"show n-0 n-1"), (255, b"x" * 4200 + b"\n"),
    # dst set's live settings, and ping (dst set asks whether it runs)
    (255, b"set io-timeout 30\n"), (2, b"set resync-rate 0\n"), (255, b"ping\n"),
]):
    write("ctl_line", "line-%02d" % i, bytes([step]) + line)
