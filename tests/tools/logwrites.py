#!/usr/bin/env python3
"""logwrites.py - read a dm-log-writes log and replay it, for the power-cut
durability tests (tests/vm/test_durability_*.sh).

dm-log-writes (the kernel's Documentation/admin-guide/device-mapper/
log-writes.rst) records every write a block device completed, in the order
it reached the disk's cache, with each FLUSH where it was issued and each
FUA write when it completed; `dmsetup message DEV 0 mark NAME` adds a named
mark. Replaying the log onto a blank disk up to any entry gives a state the
disk could have been in after a power cut there. This module parses the log
and replays it forwards only (each step continues from the last one, so
visiting every FLUSH of a log costs one pass).

Log layout (little-endian, in units of the logged device's logical sector,
`sectorsize` in the super block): sector 0 holds the super block (magic,
version, nr_entries, sectorsize); entries follow from sector 1. Each entry is
one sector starting with (sector, nr_sectors, flags, data_len); a mark's name
is in the same sector after the header; a write's data, nr_sectors sectors,
follows in the next sectors; a discard has no data.

Usage:
  logwrites.py list LOG             one line per entry
  logwrites.py replay LOG TARGET [--to N | --to-mark NAME]
                                    replay onto TARGET (a blank device or file)
  logwrites.py selftest             parse and replay a synthetic log
"""
import os
import struct
import subprocess
import sys
import tempfile

MAGIC = 0x6A736677736872
VERSION = 1
FLUSH, FUA, DISCARD, MARK, METADATA = 1, 2, 4, 8, 16
SUPER = struct.Struct("<QQQI")
ENTRY = struct.Struct("<QQQQ")


class LogError(Exception):
    pass


def flag_names(flags):
    names = [n for bit, n in ((FLUSH, "FLUSH"), (FUA, "FUA"), (DISCARD, "DISCARD"),
                              (MARK, "MARK"), (METADATA, "META")) if flags & bit]
    return "|".join(names) or "-"


class Entry:
    """One log entry: index, target sector and count (log sectors), flags,
    the mark's name, and where its data is in the log (byte offset)."""
    __slots__ = ("index", "sector", "nr_sectors", "flags", "mark", "data_off")

    def __repr__(self):
        what = self.mark if self.flags & MARK else "%d+%d" % (self.sector, self.nr_sectors)
        return "%d %s %s" % (self.index, flag_names(self.flags), what)


class Log:
    """A dm-log-writes log opened read-only. entries: the list of Entry."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "rb")
        head = self.f.read(SUPER.size)
        if len(head) < SUPER.size:
            raise LogError("%s: too short for a log super block" % path)
        magic, version, self.nr_entries, self.sectorsize = SUPER.unpack(head)
        if magic != MAGIC:
            raise LogError("%s: not a dm-log-writes log (magic %#x)" % (path, magic))
        if version != VERSION:
            raise LogError("%s: log version %d, expected %d" % (path, version, VERSION))
        if self.sectorsize < 512 or self.sectorsize & (self.sectorsize - 1):
            raise LogError("%s: bad sector size %d" % (path, self.sectorsize))
        self.entries = self._scan()

    def _scan(self):
        out = []
        ss = self.sectorsize
        off = ss
        size = os.fstat(self.f.fileno()).st_size
        if size == 0:  # a block device: fstat says 0
            size = self.f.seek(0, os.SEEK_END)
        for i in range(self.nr_entries):
            if off + ss > size:
                raise LogError("%s: entry %d at byte %d is past the end (%d)" % (self.path, i, off, size))
            self.f.seek(off)
            sec = self.f.read(ss)
            e = Entry()
            e.index = i
            e.sector, e.nr_sectors, e.flags, data_len = ENTRY.unpack_from(sec)
            e.mark = None
            if e.flags & MARK:
                if data_len > ss - ENTRY.size:
                    raise LogError("%s: entry %d: mark of %d bytes" % (self.path, i, data_len))
                e.mark = sec[ENTRY.size:ENTRY.size + data_len].decode("ascii", "replace")
            e.data_off = off + ss
            off += ss
            if not e.flags & DISCARD:
                off += e.nr_sectors * ss
            out.append(e)
        return out

    def data(self, e):
        self.f.seek(e.data_off)
        n = e.nr_sectors * self.sectorsize
        d = self.f.read(n)
        if len(d) != n:
            raise LogError("%s: entry %d: %d of %d data bytes" % (self.path, e.index, len(d), n))
        return d

    def find_mark(self, name):
        for e in self.entries:
            if e.mark == name:
                return e.index
        raise LogError("%s: no mark %r" % (self.path, name))


class Replayer:
    """Replays a Log onto target (path of a blank device or file), forwards:
    to(n) applies entries up to and including n. A discard is replayed as
    zeroes (what a thin or sparse disk reads after it)."""

    def __init__(self, log, target):
        self.log = log
        self.fd = os.open(target, os.O_RDWR)
        self.next = 0  # index of the first entry not applied
        self.applied = 0

    def to(self, n):
        """Apply entries up to n; the byte ranges written, [(off, len)]."""
        if n + 1 < self.next:
            raise LogError("replay is forwards only: at %d, asked for %d" % (self.next, n))
        ss = self.log.sectorsize
        done = []
        while self.next <= n:
            e = self.log.entries[self.next]
            self.next += 1
            if e.flags & MARK or e.nr_sectors == 0:
                continue
            if e.flags & DISCARD:
                left, pos = e.nr_sectors * ss, e.sector * ss
                while left:
                    k = min(left, 1 << 20)
                    os.pwrite(self.fd, bytes(k), pos)
                    pos += k
                    left -= k
            else:
                os.pwrite(self.fd, self.log.data(e), e.sector * ss)
            done.append((e.sector * ss, e.nr_sectors * ss))
            self.applied += 1
        return done

    def close(self):
        os.fsync(self.fd)
        os.close(self.fd)


def mark(devs, name):
    """Put mark name into the log of every dm-log-writes device in devs."""
    for dev in devs:
        subprocess.run(["dmsetup", "message", dev, "0", "mark", name], check=True)


def points(log, want=FLUSH | FUA | MARK):
    """The entries to stop at: every FLUSH, FUA and MARK entry, and the last."""
    pts = [e.index for e in log.entries if e.flags & want]
    if log.entries and (not pts or pts[-1] != len(log.entries) - 1):
        pts.append(len(log.entries) - 1)
    return pts


def write_synthetic(path, entries, ss=512):
    """Write a log as the kernel lays it out, for self-tests: entries are
    (sector, nr_sectors, flags, data or mark name)."""
    with open(path, "wb") as f:
        f.write(SUPER.pack(MAGIC, VERSION, len(entries), ss).ljust(ss, b"\0"))
        for sector, nr, flags, p in entries:
            mark = p if flags & MARK else b""
            f.write((ENTRY.pack(sector, nr, flags, len(mark)) + mark).ljust(ss, b"\0"))
            if not flags & (MARK | DISCARD):
                assert len(p) == nr * ss
                f.write(p)


def selftest():
    """Write a synthetic log as the kernel lays it out, parse and replay it."""
    ss = 512
    entries = []  # (sector, nr, flags, payload or mark)
    entries.append((0, 2, 0, b"\x11" * 1024))
    entries.append((4, 1, FUA, b"\x22" * 512))
    entries.append((0, 0, FLUSH, b""))
    entries.append((0, 0, MARK, b"one"))
    entries.append((1, 2, 0, b"\x33" * 1024))
    entries.append((0, 1, DISCARD, b""))
    entries.append((0, 0, MARK, b"two"))
    with tempfile.TemporaryDirectory() as d:
        lp, tp = os.path.join(d, "log"), os.path.join(d, "target")
        write_synthetic(lp, entries, ss)
        with open(tp, "wb") as f:
            f.truncate(8 * ss)
        log = Log(lp)
        got = [repr(e) for e in log.entries]
        want = ["0 - 0+2", "1 FUA 4+1", "2 FLUSH 0+0", "3 MARK one", "4 - 1+2",
                "5 DISCARD 0+1", "6 MARK two"]
        assert got == want, got
        assert points(log) == [1, 2, 3, 6], points(log)
        r = Replayer(log, tp)
        got = r.to(log.find_mark("one"))
        assert got == [(0, 1024), (2048, 512)], got
        with open(tp, "rb") as f:
            img = f.read()
        assert img == b"\x11" * 1024 + bytes(1024) + b"\x22" * 512 + bytes(1536), "replay to one"
        r.to(6)
        r.close()
        with open(tp, "rb") as f:
            img = f.read()
        assert img == bytes(512) + b"\x33" * 1024 + bytes(512) + b"\x22" * 512 + bytes(1536), "replay to two"
        try:
            r2 = Replayer(log, tp)
            r2.to(5)
            r2.to(3)
            raise AssertionError("a backwards replay was accepted")
        except LogError:
            pass
        with open(lp, "r+b") as f:
            f.write(struct.pack("<Q", 1234))
        try:
            Log(lp)
            raise AssertionError("a bad magic was accepted")
        except LogError:
            pass
    print("logwrites selftest: ok (7 entries parsed, replayed to 2 marks)")


def main(argv):
    if len(argv) >= 1 and argv[0] == "selftest":
        selftest()
        return 0
    if len(argv) >= 2 and argv[0] == "list":
        log = Log(argv[1])
        print("# %d entries, sector size %d" % (len(log.entries), log.sectorsize))
        for e in log.entries:
            print(repr(e))
        return 0
    if len(argv) >= 3 and argv[0] == "replay":
        log = Log(argv[1])
        n = len(log.entries) - 1
        if argv[3:5] and argv[3] == "--to":
            n = int(argv[4])
        elif argv[3:5] and argv[3] == "--to-mark":
            n = log.find_mark(argv[4])
        r = Replayer(log, argv[2])
        r.to(n)
        r.close()
        print("replayed %d entries (%d writes) of %d" % (n + 1, r.applied, len(log.entries)))
        return 0
    print(__doc__.split("Usage:")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except LogError as e:
        print("logwrites: %s" % e, file=sys.stderr)
        sys.exit(1)
