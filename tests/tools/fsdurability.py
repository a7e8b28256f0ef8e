#!/usr/bin/env python3
"""fsdurability.py - a metadata-heavy workload on a mounted filesystem that
marks each fsync in dm-log-writes logs, and the check that replays such a
log to every FLUSH, FUA and mark: fsck clean, fsynced files intact
(tests/vm/test_durability_ext4.sh).

  fsdurability.py load DIR STEPS JOURNAL LOGDEV...
      In DIR: creates, small appends, renames (within and across
      directories), unlinks, truncates, mkdir/rmdir, symlinks; every few
      steps a new file in DIR/keep is written and fsynced with its
      directory, then a mark "fs-N" goes into every LOGDEV (dmsetup message
      LOGDEV 0 mark fs-N) and JOURNAL records the file's sha256 under fs-N.
      Kept files are never touched again.
  fsdurability.py check LOG TARGET FIRSTMARK JOURNAL
      Replay LOG onto TARGET (a blank file or device), stopping at every
      FLUSH, FUA and mark entry from mark FIRSTMARK on (the filesystem is
      made by then). At each: a copy of TARGET gets its journal recovered
      (e2fsck -E journal_only), then e2fsck -fn must find it clean, and every
      file fsynced before the last mark so far must read back whole
      (debugfs). Prints "points=P fscks=F files=C lost=L unclean=U" and fails
      unless lost and unclean are 0.
"""
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import logwrites  # noqa: E402


def load(top, steps, journal, logdevs):
    rnd = random.Random(17)
    dirs = [os.path.join(top, "d%d" % i) for i in range(6)]
    keep = os.path.join(top, "keep")
    for d in dirs + [keep]:
        os.makedirs(d, exist_ok=True)
    fd = os.open(top, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    files = []
    kept = []
    nops = dict.fromkeys(("create", "append", "rename", "unlink", "truncate", "mkdir",
                          "rmdir", "symlink", "fsync"), 0)
    serial = 0
    for step in range(steps):
        op = rnd.choice(("create", "create", "append", "append", "rename", "unlink",
                         "truncate", "mkdir", "rmdir", "symlink"))
        if op in ("append", "rename", "unlink", "truncate") and not files:
            op = "create"
        serial += 1
        if op == "create":
            p = os.path.join(rnd.choice(dirs), "f%d" % serial)
            with open(p, "wb") as f:
                f.write(os.urandom(rnd.choice((0, 100, 3000, 4096, 9000, 40000))))
            files.append(p)
        elif op == "append":
            with open(rnd.choice(files), "ab") as f:
                f.write(os.urandom(rnd.randrange(1, 600)))
        elif op == "rename":
            i = rnd.randrange(len(files))
            q = os.path.join(rnd.choice(dirs), "r%d" % serial)
            os.rename(files[i], q)
            files[i] = q
        elif op == "unlink":
            os.unlink(files.pop(rnd.randrange(len(files))))
        elif op == "truncate":
            os.truncate(rnd.choice(files), rnd.randrange(0, 5000))
        elif op == "mkdir":
            os.makedirs(os.path.join(rnd.choice(dirs), "s%d" % serial, "t"))
        elif op == "rmdir":
            d = rnd.choice(dirs)
            subs = [s for s in os.listdir(d) if s.startswith("s")]
            if subs:
                shutil.rmtree(os.path.join(d, subs[0]))
        elif op == "symlink":
            os.symlink("../f%d" % rnd.randrange(serial), os.path.join(rnd.choice(dirs), "l%d" % serial))
        nops[op] += 1
        if step % 8 == 7:
            name = "k%d" % len(kept)
            data = os.urandom(rnd.choice((1, 4096, 5000, 30000, 70000)))
            fd = os.open(os.path.join(keep, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            fd = os.open(keep, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
            nops["fsync"] += 1
            mark = "fs-%d" % len(kept)
            logwrites.mark(logdevs, mark)
            kept.append({"mark": mark, "name": name, "sha256": hashlib.sha256(data).hexdigest()})
    with open(journal, "w") as f:
        json.dump({"kept": kept}, f)
    print("fsdurability load: %s; %d files left in the churn"
          % (", ".join("%d %s" % (n, op) for op, n in nops.items()), len(files)))


def run(cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def check(logpath, target, firstmark, journal):
    with open(journal) as f:
        kept = json.load(f)["kept"]
    by_mark = {k["mark"]: k for k in kept}
    log = logwrites.Log(logpath)
    start = log.find_mark(firstmark)
    rep = logwrites.Replayer(log, target)
    tmp = tempfile.mkdtemp(prefix="fsdur.")
    snap = os.path.join(tmp, "snap")
    points = fscks = files = lost = unclean = marks_seen = same = 0
    checked = False
    due = []  # kept files whose mark the replay has passed
    bad = []
    for p in logwrites.points(log):
        if p < start:
            continue
        wrote = rep.to(p)
        e = log.entries[p]
        new_mark = e.mark in by_mark
        if new_mark:
            due.append(by_mark[e.mark])
            marks_seen += 1
        points += 1
        # The disk is as it was at the last point checked, and no file is
        # newly due: that check holds here too.
        if not wrote and not new_mark and checked:
            same += 1
            continue
        checked = True
        shutil.copyfile(target, snap)
        r = run(["e2fsck", "-E", "journal_only", "-y", snap])
        if r.returncode > 1:
            unclean += 1
            bad.append("entry %d: journal recovery: status %d: %s" % (p, r.returncode, r.stdout[-300:]))
            continue
        r = run(["e2fsck", "-fn", snap])
        fscks += 1
        if r.returncode != 0:
            unclean += 1
            bad.append("entry %d: e2fsck -fn: status %d: %s" % (p, r.returncode, r.stdout[-500:]))
        # One debugfs for all the files due here.
        outdir = os.path.join(tmp, "out")
        shutil.rmtree(outdir, ignore_errors=True)
        os.mkdir(outdir)
        cmds = os.path.join(tmp, "cmds")
        with open(cmds, "w") as f:
            for k in due:
                f.write("dump /keep/%s %s/%s\n" % (k["name"], outdir, k["name"]))
        if due:
            run(["debugfs", "-f", cmds, snap])
        for k in due:
            files += 1
            try:
                with open(os.path.join(outdir, k["name"]), "rb") as f:
                    got = hashlib.sha256(f.read()).hexdigest()
            except OSError:
                got = None
            if got != k["sha256"]:
                lost += 1
                bad.append("entry %d: keep/%s (fsynced before %s) is %s" % (
                    p, k["name"], k["mark"], "missing" if got is None else "not what was written"))
    rep.close()
    shutil.rmtree(tmp)
    print("fsdurability check %s: points=%d (%d as the one before) marks=%d fscks=%d files=%d "
          "lost=%d unclean=%d" % (os.path.basename(logpath), points, same, marks_seen, fscks,
                                  files, lost, unclean))
    for b in bad[:8]:
        print("  " + b, file=sys.stderr)
    if marks_seen != len(kept):
        print("  only %d of %d marks found in the log" % (marks_seen, len(kept)), file=sys.stderr)
        return 1
    return 1 if lost or unclean or not files else 0


def main(a):
    if len(a) >= 5 and a[0] == "load":
        load(a[1], int(a[2]), a[3], a[4:])
        return 0
    if len(a) == 5 and a[0] == "check":
        return check(a[1], a[2], a[3], a[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
