#!/usr/bin/env python3
"""fsync_writer.py DIR N LIST - N files of 64 KiB of random bytes in DIR,
written and fsynced one after another; each file's sha256 goes into LIST
(sha256sum's format, names relative to DIR) only once its fsync returned.
So after a crash or a daemon's death, every file in LIST must be whole: the
VM tests that kill dstd under a mounted filesystem check them with
`sha256sum -c`."""
import hashlib
import os
import sys


def main():
    d, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(d, exist_ok=True)
    with open(out, "w") as log:
        for i in range(n):
            data = os.urandom(65536)
            p = os.path.join(d, "w%04d" % i)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            log.write("%s  %s\n" % (hashlib.sha256(data).hexdigest(), os.path.relpath(p, d)))
            log.flush()


if __name__ == "__main__":
    main()
