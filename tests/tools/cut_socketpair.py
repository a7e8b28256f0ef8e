#!/usr/bin/env python3
"""cut_socketpair.py PID - shut down (both ways) every unnamed, connected
AF_UNIX stream socket of process PID: the daemon's ends of socketpairs, such
as the one a storage's kernel NBD device talks through. Its named sockets
(listeners, control connections) are left alone.

A fault injection for the tests: the process sees its peer hang up and the
peer sees the process hang up, as if the connection broke, while both stay
alive. Uses pidfd_getfd(2) (Linux 5.6), so it needs the right to ptrace PID
(root). Prints how many it cut; exit status 1 if none.
"""
import ctypes
import os
import socket
import sys

SYS_PIDFD_GETFD = 438  # x86_64 and the generic table alike


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: cut_socketpair.py PID")
    pid = int(sys.argv[1])
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    cut = 0
    for name in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, name))
        except OSError:
            continue
        if not target.startswith("socket:"):
            continue
        fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
        if fd < 0:
            continue
        s = socket.socket(fileno=fd)
        try:
            if s.family != socket.AF_UNIX or s.type != socket.SOCK_STREAM:
                continue
            if s.getsockname() or s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                continue
            try:
                if s.getpeername():
                    continue  # a client of a named socket
            except OSError:
                continue  # not connected
            s.shutdown(socket.SHUT_RDWR)
            cut += 1
        finally:
            s.close()
    os.close(pidfd)
    print(cut)
    sys.exit(0 if cut else 1)


if __name__ == "__main__":
    main()
