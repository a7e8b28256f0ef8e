#!/usr/bin/env python3
"""silent_server.py - a TCP server that accepts and never says a word.

For the connect and handshake timeouts: an NBD client of it waits for a
greeting that never comes.

Usage: silent_server.py PORTFILE [PORT]
Listens on 127.0.0.1:PORT (default: a free port), writes the port to
PORTFILE once listening, then accepts connections and holds them, reading
nothing and sending nothing, until killed. It prints the number of
connections it took when it ends (SIGTERM).
"""
import os
import signal
import socket
import sys


def main():
    portfile = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(64)
    held = []

    def bye(*_):
        print("silent_server: took %d connections" % len(held), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, bye)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    while True:
        c, _ = s.accept()
        held.append(c)


if __name__ == "__main__":
    main()
