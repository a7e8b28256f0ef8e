#!/usr/bin/env python3
# csum4k.py - dst:csum-4k checked against CRC32C computed here, with a
# table of our own (not dst's code), for tests/func/test_csum_context.sh.
#
#   csum4k.py map IMAGE < MAP.json
#       MAP.json is `nbdinfo --map=dst:csum-4k --json` of an export of
#       IMAGE: its extents must cover IMAGE from 0 to its end, each 4 KiB
#       block's status must be the block's CRC32C (the last block's of the
#       bytes there), and neighbouring extents must differ (runs merged).
#       Prints the number of extents.
#   csum4k.py probe IMAGE URI
#       (needs libnbd's python binding) BLOCK_STATUS at odd offsets and
#       lengths, with REQ_ONE, over the 4 MiB cap, with both contexts
#       selected: every answer checked against IMAGE; base:allocation's
#       answer with both selected equals its answer alone.
import json
import sys


def _table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


TABLE = _table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283, "the CRC32C table is wrong"

BLOCK = 4096
_memo = {}


def block_sum(img, k):
    """CRC32C of block k of img (bytes); identical blocks summed once."""
    b = img[k * BLOCK : (k + 1) * BLOCK]
    if b not in _memo:
        _memo[b] = crc32c(b)
    return _memo[b]


def fail(msg):
    print("csum4k: " + msg, file=sys.stderr)
    sys.exit(1)


def check_extents(img, off, ents, what, req_len=None):
    """ents: [(len, status)...] from off. Every byte's status must be its
    block's sum; returns the end they reach."""
    pos = off
    prev = None
    for i, (ln, st) in enumerate(ents):
        if ln <= 0:
            fail(f"{what}: extent of length {ln} at {pos}")
        if prev is not None and st == prev:
            fail(f"{what}: two extents in a row with status {st:#x} at {pos} (not merged)")
        end = pos + ln
        k = pos // BLOCK
        while k * BLOCK < end:
            if k * BLOCK >= len(img):
                fail(f"{what}: extent reaches {end}, past the end {len(img)}")
            want = block_sum(img, k)
            if st != want:
                fail(f"{what}: block {k} (at {k * BLOCK}) has status {st:#010x}, its CRC32C is {want:#010x}")
            k += 1
        # Merged means: the block after the extent has a different sum
        # (after a reply's last extent it may not: the reply may stop at
        # its cap).
        last = i == len(ents) - 1 and req_len is not None
        if end % BLOCK == 0 and end < len(img) and not last:
            if block_sum(img, end // BLOCK) == st:
                fail(f"{what}: extent ends at {end} but block {end // BLOCK} has the same sum (not merged)")
        prev = st
        pos = end
    return pos


def cmd_map(image):
    img = open(image, "rb").read()
    m = json.load(sys.stdin)
    ents = []
    pos = 0
    for e in m:
        if e["offset"] != pos:
            fail(f"map: extent at {e['offset']}, expected {pos}")
        ents.append((e["length"], e["type"]))
        pos += e["length"]
    end = check_extents(img, 0, ents, "map")
    if end != len(img):
        fail(f"map covers {end} bytes of {len(img)}")
    print(len(ents))


def cmd_probe(image, uri):
    import nbd

    img = open(image, "rb").read()
    size = len(img)

    def connect(*ctxs):
        h = nbd.NBD()
        for c in ctxs:
            h.add_meta_context(c)
        h.connect_uri(uri)
        for c in ctxs:
            if not h.can_meta_context(c):
                fail(f"the server did not grant {c}")
        return h

    def status(h, off, ln, flags=0):
        got = {}

        def cb(ctx, o, entries, err):
            if ctx in got:
                fail(f"two chunks for {ctx} in one reply")
            got[ctx] = list(zip(entries[0::2], entries[1::2]))
            return 0

        h.block_status(ln, off, cb, flags)
        return got

    h = connect("dst:csum-4k")
    cases = [
        (0, BLOCK),
        (1, 1),
        (BLOCK - 1, 2),
        (BLOCK + 100, 3 * BLOCK),
        (123457, 654321),
        (size - 1, 1),
        (size - 150, 150),
        (size - 3 * BLOCK - 7, 3 * BLOCK + 7),
    ]
    for off, ln in cases:
        e = status(h, off, ln)["dst:csum-4k"]
        what = f"block_status {off}+{ln}"
        end = check_extents(img, off, e, what, ln)
        if end != off + ln:
            fail(f"{what}: answer covers to {end}, not to {off + ln}")
        if off % BLOCK and e[0][0] > BLOCK - off % BLOCK and block_sum(img, off // BLOCK + 1) != e[0][1]:
            fail(f"{what}: first extent {e[0][0]} runs past its block")
        one = status(h, off, ln, nbd.CMD_FLAG_REQ_ONE)["dst:csum-4k"]
        if len(one) != 1 or one[0] != e[0]:
            fail(f"{what} REQ_ONE: {one}, expected [{e[0]}]")
    # A request over the cap: a prefix of at least 1 MiB, right as far as it goes.
    e = status(h, BLOCK * 3 + 5, size - BLOCK * 3 - 5)["dst:csum-4k"]
    end = check_extents(img, BLOCK * 3 + 5, e, "whole export", size)
    if end - (BLOCK * 3 + 5) < (1 << 20):
        fail(f"a request of the whole export covers only {end - BLOCK * 3 - 5} bytes")
    print(f"whole-export request covered {end - BLOCK * 3 - 5} bytes")
    h.shutdown()

    # Both contexts: a chunk each; base:allocation the same as alone.
    hb = connect("base:allocation")
    h2 = connect("base:allocation", "dst:csum-4k")
    for off, ln in cases + [(0, size)]:
        both = status(h2, off, ln)
        alone = status(hb, off, ln)["base:allocation"]
        if set(both) != {"base:allocation", "dst:csum-4k"}:
            fail(f"both contexts {off}+{ln}: chunks for {sorted(both)}")
        if both["base:allocation"] != alone:
            fail(f"base:allocation {off}+{ln}: {both['base:allocation']} with dst:csum-4k, {alone} alone")
        check_extents(img, off, both["dst:csum-4k"], f"both contexts {off}+{ln}", ln)
        one = status(h2, off, ln, nbd.CMD_FLAG_REQ_ONE)
        if any(len(v) != 1 for v in one.values()) or len(one) != 2:
            fail(f"both contexts {off}+{ln} REQ_ONE: {one}")
    print("probes ok")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "map":
        cmd_map(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "probe":
        cmd_probe(sys.argv[2], sys.argv[3])
    else:
        fail("usage: csum4k.py map IMAGE < MAP.json | csum4k.py probe IMAGE URI")
