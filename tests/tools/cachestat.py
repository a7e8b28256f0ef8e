#!/usr/bin/env python3
"""cachestat.py FILE [OFF LEN] - print "cached dirty writeback" page counts of
a file range from the page cache (Linux cachestat(2), 6.5+). Exit status 77
if the kernel lacks cachestat. Used to tell whether data written through NBD
has reached stable storage: after a FLUSH or a FUA write, its pages must not
be dirty any more."""
import ctypes
import os
import sys

NR_CACHESTAT = {"x86_64": 451, "aarch64": 451}.get(os.uname().machine, 451)


class Range(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class Stat(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in
                ("cache", "dirty", "writeback", "evicted", "recently_evicted")]


def main():
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(sys.argv[1], os.O_RDONLY)
    off = int(sys.argv[2], 0) if len(sys.argv) > 2 else 0
    length = int(sys.argv[3], 0) if len(sys.argv) > 3 else 0
    r, st = Range(off, length), Stat()
    if libc.syscall(NR_CACHESTAT, fd, ctypes.byref(r), ctypes.byref(st), 0) != 0:
        e = ctypes.get_errno()
        print("cachestat: %s" % os.strerror(e), file=sys.stderr)
        return 77 if e == 38 else 1  # ENOSYS
    print(st.cache, st.dirty, st.writeback)
    return 0


if __name__ == "__main__":
    sys.exit(main())
