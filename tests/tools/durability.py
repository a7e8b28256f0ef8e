#!/usr/bin/env python3
"""durability.py - a client that knows what it was promised, and a checker
that replays dm-log-writes logs to every FLUSH, FUA and mark and holds the
disk to those promises (tests/vm/test_durability_*.sh).

  durability.py write URI OFFSET BLOCKS ROUNDS JOURNAL LOGDEV...
      Through NBD (libnbd, URI of a dst storage), write self-describing 4 KiB
      blocks (block number, generation, a payload derived from both) at
      random places of BLOCKS blocks from byte OFFSET, QD up to 24, some with
      FUA, a FLUSH in most rounds sent while writes are still in flight.
      What must survive a power cut from then on: every write acknowledged
      before a FLUSH was sent, once that FLUSH is acknowledged; a FUA write,
      once it is acknowledged. After each round (its FLUSH and FUA writes
      acknowledged) a mark "dur-N" goes into every LOGDEV (dm-log-writes:
      dmsetup message LOGDEV 0 mark dur-N) and JOURNAL records, for dur-N,
      the generation of every block that must be there.
  durability.py check LOG DEVOFF TARGET JOURNAL
      Replay LOG (of a disk holding the storage's byte 0 at DEVOFF) onto
      TARGET (blank, at least that size), stopping at every FLUSH, FUA and
      mark entry: there, every block must be whole (its payload matches its
      number and generation) and at least as new as the last mark before
      that point requires, and no newer than was ever written. Prints
      "points=P checks=C required=R lost=L torn=T" and fails unless
      lost and torn are 0 and some marks were found.
"""
import hashlib
import json
import os
import random
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import logwrites  # noqa: E402

BS = 4096
HDR = struct.Struct("<8sQQ")
MAGIC = b"dstdur01"


_memo = {}


def block(seed, blk, gen):
    """The 4 KiB a write of generation gen of block blk carries."""
    k = (seed, blk, gen)
    b = _memo.get(k)
    if b is None:
        d = hashlib.sha256(b"%d/%d/%d" % k).digest()
        b = _memo[k] = (HDR.pack(MAGIC, blk, gen) + d * (BS // len(d)))[:BS]
    return b


def write(uri, offset, nblocks, rounds, journal, logdevs):
    import nbd

    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    h = nbd.NBD()
    h.connect_uri(uri)
    if not h.can_flush() or not h.can_fua():
        sys.exit("durability: %s does not offer FLUSH and FUA" % uri)
    gen = {}       # blk -> last generation sent
    acked = {}     # blk -> last generation acknowledged
    durable = {}   # blk -> generation that must survive from now on
    inflight = {}  # cookie -> (blk, gen, fua, buffer)
    busy = set()   # blocks with a write in flight (NBD does not order them)
    marks = []
    nwrites = nfua = nflush = 0

    def reap():
        for c in list(inflight):
            if h.aio_command_completed(c):  # raises on an error reply
                blk, g, fua, _ = inflight.pop(c)
                busy.discard(blk)
                acked[blk] = max(acked.get(blk, 0), g)
                if fua:
                    durable[blk] = max(durable.get(blk, 0), g)

    def send(n):
        nonlocal nwrites, nfua
        for _ in range(n):
            blk = rnd.randrange(nblocks)
            while blk in busy:
                blk = rnd.randrange(nblocks)
            g = gen.get(blk, 0) + 1
            gen[blk] = g
            fua = rnd.random() < 0.12
            buf = nbd.Buffer.from_bytearray(bytearray(block(seed, blk, g)))
            c = h.aio_pwrite(buf, offset + blk * BS, flags=nbd.CMD_FLAG_FUA if fua else 0)
            inflight[c] = (blk, g, fua, buf)
            busy.add(blk)
            nwrites += 1
            nfua += fua

    for r in range(rounds):
        send(16)
        while len(inflight) > 8:
            h.poll(-1)
            reap()
        snapshot = dict(acked) if rnd.random() < 0.85 else None
        fc = h.aio_flush() if snapshot is not None else None
        send(8)
        while inflight or (fc is not None and not h.aio_command_completed(fc)):
            h.poll(-1)
            reap()
        if snapshot is not None:
            nflush += 1
            for blk, g in snapshot.items():
                durable[blk] = max(durable.get(blk, 0), g)
        name = "dur-%d" % r
        logwrites.mark(logdevs, name)
        marks.append({"name": name, "durable": sorted(durable.items())})
    h.flush()
    h.shutdown()
    with open(journal, "w") as f:
        json.dump({"seed": seed, "offset": offset, "blocks": nblocks,
                   "written": sorted(gen.items()), "marks": marks}, f)
    print("durability write: %d writes (%d FUA), %d flushes, %d marks, %d blocks of %d touched"
          % (nwrites, nfua, nflush, len(marks), len(gen), nblocks))


def check(logpath, devoff, target, journal):
    with open(journal) as f:
        j = json.load(f)
    seed, offset, nblocks = j["seed"], j["offset"], j["blocks"]
    written = dict(j["written"])
    req_of = {m["name"]: dict(m["durable"]) for m in j["marks"]}
    log = logwrites.Log(logpath)
    rep = logwrites.Replayer(log, target)
    base = devoff + offset
    end = base + nblocks * BS
    fd = os.open(target, os.O_RDONLY)
    points = checks = required = lost = torn = marks_seen = 0
    req = {}
    cur = {}  # blk -> generation on the replayed disk now
    bad = []

    def scan(lo, hi, p):
        """Read blocks lo..hi-1 of the replayed disk into cur."""
        nonlocal torn
        img = os.pread(fd, (hi - lo) * BS, base + lo * BS)
        for blk in range(lo, hi):
            d = img[(blk - lo) * BS:(blk - lo + 1) * BS]
            if d == bytes(BS):
                cur[blk] = 0
                continue
            magic, b, g = HDR.unpack_from(d)
            if magic != MAGIC or b != blk or g > written.get(blk, 0) or d != block(seed, blk, g):
                torn += 1
                cur[blk] = -1
                bad.append("entry %d: block %d holds neither a write of it nor zeroes" % (p, blk))
            else:
                cur[blk] = g

    # Each block is held to the promise at each point; the verdict of a
    # block changes only when it is written or a mark raises the promise,
    # so only those are looked at again (deficit: the blocks short now).
    deficit = set()

    def judge(blk):
        if 0 <= cur[blk] < req.get(blk, 0):
            deficit.add(blk)
        else:
            deficit.discard(blk)

    scan(0, nblocks, -1)
    nreq = 0
    for p in logwrites.points(log):
        changed = set()
        for off, ln in rep.to(p):
            lo, hi = max(off, base), min(off + ln, end)
            if lo < hi:
                lo, hi = (lo - base) // BS, (hi - base + BS - 1) // BS
                scan(lo, hi, p)
                changed.update(range(lo, hi))
        e = log.entries[p]
        if e.mark in req_of:
            req = req_of[e.mark]
            nreq = sum(1 for blk in written if req.get(blk, 0) > 0)
            marks_seen += 1
            changed = written
        for blk in changed:
            if blk in written:
                judge(blk)
        points += 1
        checks += len(written)
        required += nreq
        lost += len(deficit)
        for blk in sorted(deficit)[:3]:
            bad.append("entry %d (after %s): block %d is at generation %d, %d was made durable"
                       % (p, e.mark if e.mark else "a mark", blk, cur[blk], req[blk]))
    rep.close()
    os.close(fd)
    print("durability check %s: points=%d marks=%d checks=%d required=%d lost=%d torn=%d"
          % (os.path.basename(logpath), points, marks_seen, checks, required, lost, torn))
    for b in bad[:10]:
        print("  " + b, file=sys.stderr)
    if marks_seen != len(req_of):
        print("  only %d of %d marks found in the log" % (marks_seen, len(req_of)), file=sys.stderr)
        return 1
    return 1 if lost or torn or not required else 0


def selftest():
    """The checker on synthetic logs: it passes a log that keeps its
    promises and counts a lost and a torn block where one does not."""
    import contextlib
    import io
    import tempfile

    seed, S = 7, BS // 512
    # Block 0: generation 1 flushed before mark dur-0, generation 2 written
    # after it (may be lost); block 1: generation 1, FUA, before dur-1.
    journal = {"seed": seed, "offset": 0, "blocks": 2, "written": [[0, 2], [1, 1]],
               "marks": [{"name": "dur-0", "durable": [[0, 1]]},
                         {"name": "dur-1", "durable": [[0, 1], [1, 1]]}]}
    good = [(0, S, 0, block(seed, 0, 1)), (0, 0, logwrites.FLUSH, b""),
            (0, 0, logwrites.MARK, b"dur-0"), (S, S, logwrites.FUA, block(seed, 1, 1)),
            (0, 0, logwrites.MARK, b"dur-1"), (0, S, 0, block(seed, 0, 2))]
    # The flushed write of block 0 missing: lost at dur-0, the FUA and
    # dur-1; block 1 torn at the FUA: counted once, not as lost.
    lossy = [(0, 0, logwrites.FLUSH, b""), (0, 0, logwrites.MARK, b"dur-0"),
             (S, S, logwrites.FUA, block(seed, 1, 1)[:-1] + b"x"),
             (0, 0, logwrites.MARK, b"dur-1")]
    with tempfile.TemporaryDirectory() as d:
        jp, lp, tp = (os.path.join(d, n) for n in ("journal", "log", "target"))
        with open(jp, "w") as f:
            json.dump(journal, f)
        results = []
        for entries in (good, lossy):
            logwrites.write_synthetic(lp, entries)
            with open(tp, "wb") as f:
                f.truncate(2 * BS)
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                rc = check(lp, 0, tp, jp)
            results.append((rc, out.getvalue().split(": ", 1)[1].strip()))
    assert results[0] == (0, "points=5 marks=2 checks=10 required=6 lost=0 torn=0"), results[0]
    assert results[1] == (1, "points=4 marks=2 checks=8 required=4 lost=3 torn=1"), results[1]
    print("durability selftest: ok (a kept promise passes; a lost and a torn block are counted)")


def main(a):
    if a == ["selftest"]:
        selftest()
        return 0
    if len(a) >= 7 and a[0] == "write":
        write(a[1], int(a[2]), int(a[3]), int(a[4]), a[5], a[6:])
        return 0
    if len(a) == 5 and a[0] == "check":
        return check(a[1], int(a[2]), a[3], a[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
