#!/usr/bin/env python3
"""notify_listen.py - a stand-in for systemd's notification socket.

    notify_listen.py SOCKET_PATH OUT_FILE

Binds an AF_UNIX datagram socket at SOCKET_PATH (what $NOTIFY_SOCKET names
for a service) and appends every datagram it receives to OUT_FILE, one
"KEY=VALUE" per line, flushed at once so a test can poll the file. Runs
until killed.
"""
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s.bind(path)
with open(out, "a") as f:
    f.write("LISTENING=1\n")
    f.flush()
    while True:
        msg = s.recv(4096).decode("utf-8", "replace")
        for line in msg.split("\n"):
            if line:
                f.write(line + "\n")
        f.flush()
