#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
"""pgwire.py - raw PostgreSQL protocol probes for the integration tests.

Usage: pgwire.py HOST PORT SCENARIO [--ca FILE] [--user NAME] [--alpn|--no-alpn]

Each scenario prints one line the test matches, e.g. "error 08P01 invalid length of
startup packet", "closed" or "ok 42". Sessions authenticate as a role with trust auth.
"""

import argparse
import socket
import ssl
import struct
import sys
import time

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104
CANCEL_REQUEST = 80877102
TIMEOUT = 15


def connect(host, port):
    s = socket.create_connection((host, port), timeout=TIMEOUT)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_msg(s):
    head = recv_exact(s, 5)
    typ, length = head[0:1], struct.unpack("!I", head[1:5])[0]
    if length < 4 or length > 1 << 24:
        raise ValueError("bad message length %d for type %r" % (length, typ))
    return typ, recv_exact(s, length - 4)


def parse_error(payload):
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


def describe_error(payload):
    f = parse_error(payload)
    return "error %s %s%s" % (f.get("C", "?"), f.get("M", ""),
                               (" HINT: " + f["H"]) if "H" in f else "")


def startup_packet(user, db="postgres", extra=None):
    body = struct.pack("!I", 196608)
    params = {"user": user, "database": db}
    params.update(extra or {})
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def request(code):
    return struct.pack("!II", 8, code)


def tls_context(ca, alpn=True):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = True
    if alpn:
        ctx.set_alpn_protocols(["postgresql"])
    return ctx


def first_reply(s):
    """The server's answer to a startup packet: an error, EOF, or an auth request."""
    try:
        typ, payload = read_msg(s)
    except (EOFError, ConnectionResetError):
        return "closed"
    if typ == b"E":
        return describe_error(payload)
    if typ == b"R":
        return "auth %d" % struct.unpack("!I", payload[:4])[0]
    return "message %r" % typ


class Session:
    """A trust-authenticated session: startup, then simple queries."""

    def __init__(self, s, user):
        self.s = s
        self.pid = self.key = None
        s.sendall(startup_packet(user, extra={"application_name": "pgwire.py"}))
        while True:
            typ, payload = read_msg(s)
            if typ == b"E":
                raise RuntimeError(describe_error(payload))
            if typ == b"R" and struct.unpack("!I", payload[:4])[0] != 0:
                raise RuntimeError("auth method %d requested; use a trust role"
                                   % struct.unpack("!I", payload[:4])[0])
            if typ == b"K":
                self.pid, self.key = struct.unpack("!II", payload[:8])
            if typ == b"Z":
                return

    def send_query(self, sql):
        body = sql.encode() + b"\0"
        self.s.sendall(b"Q" + struct.pack("!I", len(body) + 4) + body)

    def result(self):
        """Rows (first column) of the running query, or the error it ended with."""
        rows, err = [], None
        while True:
            typ, payload = read_msg(self.s)
            if typ == b"D":
                n = struct.unpack("!h", payload[:2])[0]
                if n > 0:
                    ln = struct.unpack("!i", payload[2:6])[0]
                    rows.append(None if ln < 0 else payload[6:6 + ln].decode())
            elif typ == b"E":
                err = describe_error(payload)
            elif typ == b"Z":
                return rows, err

    def query(self, sql):
        self.send_query(sql)
        return self.result()


def tls_wrap(s, args, alpn=True):
    return tls_context(args.ca, alpn).wrap_socket(s, server_hostname="localhost")


def sc_ssl_request(args):
    s = connect(args.host, args.port)
    s.sendall(request(SSL_REQUEST))
    print("reply %s" % recv_exact(s, 1).decode("latin-1"))


def sc_plain_startup(args):
    s = connect(args.host, args.port)
    s.sendall(startup_packet(args.user))
    print(first_reply(s))


def sc_gss_plain(args):
    """GSSENCRequest ('N'), then a plaintext StartupMessage."""
    s = connect(args.host, args.port)
    s.sendall(request(GSS_REQUEST))
    r = recv_exact(s, 1)
    if r != b"N":
        print("gss reply %r" % r)
        return
    s.sendall(startup_packet(args.user))
    print(first_reply(s))


def sc_gss_then_ssl(args):
    s = connect(args.host, args.port)
    s.sendall(request(GSS_REQUEST))
    r1 = recv_exact(s, 1)
    s.sendall(request(SSL_REQUEST))
    r2 = recv_exact(s, 1)
    if (r1, r2) != (b"N", b"S"):
        print("replies %r %r" % (r1, r2))
        return
    t = tls_wrap(s, args, alpn=args.alpn)
    rows, err = Session(t, args.user).query("select 6 * 7")
    print("ok %s %s" % (t.version(), rows[0]) if not err else err)


def sc_direct_tls(args):
    s = connect(args.host, args.port)
    try:
        t = tls_wrap(s, args, alpn=args.alpn)
    except (ssl.SSLError, ConnectionResetError, OSError) as e:
        print("handshake failed: %s" % e)
        return
    if args.alpn and t.selected_alpn_protocol() != "postgresql":
        print("alpn not negotiated: %r" % t.selected_alpn_protocol())
        return
    try:
        t.sendall(startup_packet(args.user))
        reply = first_reply(t)
    except (ssl.SSLError, ConnectionResetError, OSError) as e:
        print("closed: %s" % e)
        return
    if reply != "auth 0":
        print(reply)
        return
    # Drain to ReadyForQuery, then a query proves the session is usable.
    while read_msg(t)[0] != b"Z":
        pass
    sess = Session.__new__(Session)
    sess.s = t
    rows, err = sess.query("select 6 * 7")
    print("ok %s %s" % (t.version(), rows[0]) if not err else err)


def sc_ssl_pipelined(args):
    """SSLRequest with a plaintext StartupMessage in the same segment (CVE-2021-23214)."""
    s = connect(args.host, args.port)
    s.sendall(request(SSL_REQUEST) + startup_packet(args.user))
    try:
        r = s.recv(1)
    except ConnectionResetError:
        print("closed")
        return
    if r == b"E":
        length = struct.unpack("!I", recv_exact(s, 4))[0]
        print(describe_error(recv_exact(s, length - 4)))
    elif r == b"S":
        # PostgreSQL's way: finish the handshake, then report the error inside TLS.
        try:
            t = tls_wrap(s, args)
            print(first_reply(t))
        except (ssl.SSLError, OSError) as e:
            print("handshake failed after S: %s" % e)
    elif not r:
        print("closed")
    else:
        print("reply %r" % r)


def sc_terminate_then_ssl(args):
    """What node-postgres sends when end() follows connect() at once: Terminate, then
    SSLRequest. PostgreSQL reads 'X\\0\\0\\0' as a length word and closes without a reply."""
    s = connect(args.host, args.port)
    s.sendall(b"X\0\0\0\x04" + request(SSL_REQUEST))
    try:
        r = s.recv(1)
    except ConnectionResetError:
        r = b""
    print("closed" if not r else "reply %r" % r)


def sc_garbage(args):
    s = connect(args.host, args.port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    print(first_reply(s))


def sc_oversized(args):
    s = connect(args.host, args.port)
    body = struct.pack("!I", 196608) + b"user\0" + b"x" * (10001 - 4 - 4 - 5 - 2) + b"\0\0"
    pkt = struct.pack("!I", 10001) + body
    assert len(pkt) == 10001
    try:
        s.sendall(pkt)
    except (BrokenPipeError, ConnectionResetError):
        pass
    print(first_reply(s))


def sc_truncated(args):
    """Declares 64 bytes, sends 20, then half-closes."""
    s = connect(args.host, args.port)
    s.sendall(struct.pack("!II", 64, 196608) + b"user\0alice\0x")
    s.shutdown(socket.SHUT_WR)
    print(first_reply(s))


def sc_unterminated(args):
    """A complete packet whose parameter list lacks the final terminator."""
    s = connect(args.host, args.port)
    body = struct.pack("!I", 196608) + b"user\0trusty\0database\0postgres"
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    print(first_reply(s))


def sc_bad_protocol(args):
    s = connect(args.host, args.port)
    body = struct.pack("!I", 0x00090000) + b"user\0trusty\0\0"
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    print(first_reply(s))


def sc_cancel(args):
    """pg_sleep(30) in one session, CancelRequest on a second connection: over TLS
    (after SSLRequest) with --cancel-tls, plaintext otherwise."""
    s = connect(args.host, args.port)
    if args.session_tls:
        s.sendall(request(SSL_REQUEST))
        if recv_exact(s, 1) != b"S":
            print("no TLS for the session")
            return
        s = tls_wrap(s, args)
    sess = Session(s, args.user)
    sess.send_query("select pg_sleep(30)")
    time.sleep(1)
    t0 = time.monotonic()
    c = connect(args.host, args.port)
    if args.cancel_tls:
        c.sendall(request(SSL_REQUEST))
        if recv_exact(c, 1) != b"S":
            print("no TLS for the cancel")
            return
        c = tls_wrap(c, args)
    c.sendall(struct.pack("!IIII", 16, CANCEL_REQUEST, sess.pid, sess.key))
    rows, err = sess.result()
    print("%s after %.1f s" % (err or "no error: %r" % rows, time.monotonic() - t0))


def session_messages(s, first_query=None):
    """After the startup packet: the message types up to ReadyForQuery, then the result of
    @first_query (if given) as "rows [...]" or the error."""
    types = []
    while True:
        typ, payload = read_msg(s)
        types.append(typ.decode())
        if typ == b"E":
            return "error in startup: %s" % describe_error(payload)
        if typ == b"v":
            types[-1] = "v(%d.%d)" % struct.unpack("!HH", payload[:4])
        if typ == b"Z":
            break
    out = " ".join(t for t in types if t not in ("S",))
    if first_query:
        sess = Session.__new__(Session)
        sess.s = s
        rows, err = sess.result() if first_query == "pipelined" else sess.query(first_query)
        out += " | " + (err or "rows %s" % rows)
    return out


def sc_pq_option(args):
    """An unknown _pq_ protocol option: the server answers NegotiateProtocolVersion."""
    s = connect(args.host, args.port)
    s.sendall(startup_packet(args.user, extra={"_pq_.pgktls_test": "1"}))
    print(session_messages(s, "select 1"))


def sc_proto32(args):
    """Protocol 3.2 (PostgreSQL 18 clients may ask): PostgreSQL 15 negotiates down to 3.0."""
    s = connect(args.host, args.port)
    body = (struct.pack("!I", 0x00030002) + b"user\0" + args.user.encode() +
            b"\0database\0postgres\0\0")
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    print(session_messages(s, "select 1"))


def sc_big_startup(args):
    """A 9000-byte startup packet (below the 10000-byte limit) must be accepted."""
    s = connect(args.host, args.port)
    pkt = startup_packet(args.user, extra={"application_name": "a" * (9000 - 44)})
    s.sendall(pkt)
    print("%d bytes: %s" % (len(pkt), session_messages(s, "select 1")))


def sc_fragmented(args):
    """SSLRequest and startup packet one byte at a time, then TLS."""
    s = connect(args.host, args.port)
    for b in request(SSL_REQUEST):
        s.sendall(bytes([b]))
        time.sleep(0.01)
    if recv_exact(s, 1) != b"S":
        print("no S")
        return
    t = tls_wrap(s, args)
    for b in startup_packet(args.user):
        t.sendall(bytes([b]))
        time.sleep(0.005)
    print(session_messages(t, "select 1"))


def sc_startup_plus_query(args):
    """The startup packet and a Query in one segment: the query must not be lost."""
    s = connect(args.host, args.port)
    body = b"select 'pipelined'\0"
    s.sendall(startup_packet(args.user) + b"Q" + struct.pack("!I", len(body) + 4) + body)
    print(session_messages(s, "pipelined"))


def sc_abrupt(args):
    """Open 20 sessions that start a long query, then reset them all (RST)."""
    socks = []
    for i in range(20):
        s = connect(args.host, args.port)
        sess = Session.__new__(Session)
        sess.s = s
        s.sendall(startup_packet(args.user, extra={"application_name": "pgwire-abrupt"}))
        while read_msg(s)[0] != b"Z":
            pass
        if i % 2:
            sess.send_query("select pg_sleep(60)")
        socks.append(s)
    time.sleep(0.5)
    for s in socks:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    print("reset 20")


def sc_terminated(args):
    """A backend terminated by another session: its FATAL must reach the client, then EOF."""
    a = Session(connect(args.host, args.port), args.user)
    b = Session(connect(args.host, args.port), args.user)
    rows, err = b.query("select pg_terminate_backend(%d)" % a.pid)
    if err or rows != ["t"]:
        print("pg_terminate_backend: %s" % (err or rows))
        return
    try:
        typ, payload = read_msg(a.s)
    except (EOFError, ConnectionResetError) as e:
        print("no message: %s" % e)
        return
    out = describe_error(payload) if typ == b"E" else "message %r" % typ
    try:
        rest = a.s.recv(1)
        out += " then " + ("closed" if not rest else "more data")
    except (ConnectionResetError, socket.timeout) as e:
        out += " then %s" % type(e).__name__
    print(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("scenario")
    p.add_argument("--ca")
    p.add_argument("--user", default="trusty")
    p.add_argument("--no-alpn", dest="alpn", action="store_false")
    p.add_argument("--session-tls", action="store_true")
    p.add_argument("--cancel-tls", action="store_true")
    args = p.parse_args()
    fn = globals().get("sc_" + args.scenario.replace("-", "_"))
    if not fn:
        sys.exit("unknown scenario " + args.scenario)
    try:
        fn(args)
    except Exception as e:  # the test matches the line, so say what happened
        print("exception %s: %s" % (type(e).__name__, e))


if __name__ == "__main__":
    main()
