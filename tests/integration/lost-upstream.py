#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
"""lost-upstream.py - a PostgreSQL impostor that dies mid-COPY, and a raw client to see
exactly what pgktls hands on, for t-upstream-lost.sh.

Usage: lost-upstream.py PROXY_PORT UPSTREAM_PORT CA MODE
  MODE between: CopyOutResponse, 20 CopyData, then the impostor closes (FIN) between
                two messages.
  MODE inside:  the same, then a CopyData header announcing 8000 bytes and only 100 of
                them before the close.
Prints "same" if the client received exactly the impostor's bytes after
ReadyForQuery, then "then E <SQLSTATE> <message>" if one ErrorResponse followed them,
or "then <n> more bytes" for anything else; and "eof" at the end.
"""

import socket
import ssl
import struct
import sys
import threading

from pgwire import recv_exact  # beside this file


def msg(typ, payload):
    return typ + struct.pack("!I", len(payload) + 4) + payload


def startup_packet(user):
    body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0postgres\0\0"
    return struct.pack("!I", len(body) + 4) + body


def impostor(ls, mode, sent):
    c, _ = ls.accept()
    n = struct.unpack("!I", recv_exact(c, 4))[0]
    body = recv_exact(c, n - 4)
    if struct.unpack("!I", body[:4])[0] == 80877103:
        c.sendall(b"N")
        n = struct.unpack("!I", recv_exact(c, 4))[0]
        recv_exact(c, n - 4)
    c.sendall(msg(b"R", struct.pack("!I", 0)) + msg(b"Z", b"I"))
    typ = recv_exact(c, 1)
    n = struct.unpack("!I", recv_exact(c, 4))[0]
    recv_exact(c, n - 4)
    out = msg(b"H", b"\0\0\0")
    for i in range(20):
        out += msg(b"d", (b"%d\tpayload\n" % i) * 50)
    if mode == "inside":
        out += b"d" + struct.pack("!I", 8004) + b"y" * 100
    c.sendall(out)
    sent.append(out)
    c.shutdown(socket.SHUT_WR)
    try:
        while c.recv(4096):
            pass
    except OSError:
        pass
    c.close()


def main():
    pport, uport, ca, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", uport))
    ls.listen(1)
    ls.settimeout(20)
    sent = []
    t = threading.Thread(target=impostor, args=(ls, mode, sent), daemon=True)
    t.start()

    s = socket.create_connection(("127.0.0.1", pport), timeout=20)
    s.sendall(struct.pack("!II", 8, 80877103))
    assert recv_exact(s, 1) == b"S"
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(startup_packet("trusty"))
    got = b""
    while not got.endswith(msg(b"Z", b"I")):
        got += recv_exact(s, 1)
    s.sendall(msg(b"Q", b"copy t to stdout\0"))
    got = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            break
        if not chunk:
            break
        got += chunk
    t.join(5)
    want = sent[0] if sent else b""
    if not got.startswith(want):
        print("different (%d bytes, %d expected)" % (len(got), len(want)))
    else:
        print("same")
        rest = got[len(want):]
        if rest[:1] == b"E" and len(rest) >= 5 and struct.unpack("!I", rest[1:5])[0] + 1 == len(rest):
            f = {}
            for part in rest[5:].split(b"\0"):
                if part:
                    f[chr(part[0])] = part[1:].decode()
            print("then E %s %s" % (f.get("C"), f.get("M")))
        elif rest:
            print("then %d more bytes" % len(rest))
    print("eof")


if __name__ == "__main__":
    main()
