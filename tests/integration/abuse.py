#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
"""abuse.py - hostile and heavy clients for t-load.sh and t-faults.sh.

Usage: abuse.py HOST PORT SCENARIO [options]

Scenarios (each prints lines the test matches; the exit status is 0 unless said):
  load             --clients N --seconds S --copy-every K --rows R: N concurrent TLS
                   sessions (asyncio); every K-th streams COPY out and COPY in over and
                   over, the rest run short queries. Prints "connected N", then a summary;
                   exit 1 on any checksum mismatch or failed client.
  slow-handshake   N connections (--clients) that send SSLRequest and a few bytes of a
                   ClientHello, then stall; prints how each ended ("closed after S s").
  slow-startup     the same, stalling after the TLS handshake with half a StartupMessage.
  hold             one session that runs a query every 0.1 s for --seconds (--ready-file
                   once it is up); prints "hold ok N" (queries answered) or "hold error ...".
  garbage-records  a session that, once authenticated, writes raw non-TLS bytes on the
                   TCP socket under TLS; prints how it ended.
  garbage-session  a session that, once authenticated, sends random bytes inside TLS.
  vanish           a session that starts a large COPY out, reads a little, and resets
                   the connection (RST).
  fake-upstream    --listen PORT: a PostgreSQL impostor for --seconds that answers
                   startup, streams CopyData and resets the connection mid-stream.
  fd-hog           --clients N plain TCP connections held open for --seconds, or until
                   --stop-file exists (checked every 0.1 s) if given.
  burst-refused    --clients N connections at once, each sends SSLRequest; prints
                   "refused R/N in S s", R the answers that were FATAL 53300.
"""

import argparse
import asyncio
import hashlib
import os
import random
import socket
import ssl
import struct
import sys
import time

SSL_REQUEST = 80877103


def tls_context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["postgresql"])
    return ctx


def startup_packet(user, appname):
    body = struct.pack("!I", 196608)
    for k, v in (("user", user), ("database", "postgres"), ("application_name", appname)):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def msg(typ, payload):
    return typ + struct.pack("!I", len(payload) + 4) + payload


def copy_out_expected(rows):
    h = hashlib.sha256()
    for i in range(1, rows + 1):
        h.update(("%d\t%s\n" % (i, hashlib.md5(str(i).encode()).hexdigest())).encode())
    return h.hexdigest()


# ---------------------------------------------------------------- asyncio client


class Session:
    """One PostgreSQL session over TLS (asyncio streams)."""

    def __init__(self, r, w):
        self.r, self.w = r, w

    @classmethod
    async def open(cls, host, port, ctx, user, appname):
        r, w = await asyncio.open_connection(host, port)
        w.write(struct.pack("!II", 8, SSL_REQUEST))
        await w.drain()
        if await r.readexactly(1) != b"S":
            raise RuntimeError("no TLS")
        await w.start_tls(ctx, server_hostname="localhost")
        s = cls(r, w)
        w.write(startup_packet(user, appname))
        await w.drain()
        await s.until_ready()
        return s

    async def read_msg(self):
        head = await self.r.readexactly(5)
        n = struct.unpack("!I", head[1:])[0]
        return head[0:1], await self.r.readexactly(n - 4)

    async def until_ready(self):
        rows, err = [], None
        while True:
            t, p = await self.read_msg()
            if t == b"E":
                err = p
            elif t == b"D":
                rows.append(p)
            elif t == b"Z":
                if err:
                    raise RuntimeError("server error: %r" % err[:200])
                return rows

    async def query(self, sql):
        self.w.write(msg(b"Q", sql.encode() + b"\0"))
        await self.w.drain()
        out = []
        for p in await self.until_ready():
            ncol = struct.unpack("!H", p[:2])[0]
            off, row = 2, []
            for _ in range(ncol):
                n = struct.unpack("!i", p[off:off + 4])[0]
                off += 4
                row.append(p[off:off + n].decode())
                off += n
            out.append(row)
        return out

    async def copy_out(self, rows):
        sql = "copy (select i, md5(i::text) from generate_series(1, %d) i) to stdout" % rows
        self.w.write(msg(b"Q", sql.encode() + b"\0"))
        await self.w.drain()
        h, err = hashlib.sha256(), None
        while True:
            t, p = await self.read_msg()
            if t == b"d":
                h.update(p)
            elif t == b"E":
                err = p
            elif t == b"Z":
                break
        if err:
            raise RuntimeError("copy out: %r" % err[:200])
        return h.hexdigest()

    async def copy_in(self, rows, seed):
        """COPY rows in; return (our digest, the server's digest of what it stored)."""
        await self.query("truncate load_t")
        self.w.write(msg(b"Q", b"copy load_t from stdin\0"))
        await self.w.drain()
        t, p = await self.read_msg()
        if t != b"G":
            raise RuntimeError("copy in: got %r" % t)
        h, batch = hashlib.md5(), []
        for i in range(1, rows + 1):
            s = hashlib.sha1(("%d-%d" % (seed, i)).encode()).hexdigest()
            h.update(s.encode() + (b"," if i < rows else b""))
            batch.append("%d\t%s\n" % (i, s))
            if len(batch) == 200 or i == rows:
                self.w.write(msg(b"d", "".join(batch).encode()))
                batch = []
                await self.w.drain()
        self.w.write(msg(b"c", b""))
        await self.w.drain()
        await self.until_ready()
        got = await self.query("select md5(string_agg(s, ',' order by i)) from load_t")
        return h.hexdigest(), got[0][0]

    async def close(self):
        try:
            self.w.write(msg(b"X", b""))
            await self.w.drain()
            self.w.close()
            await self.w.wait_closed()
        except (OSError, ssl.SSLError, ConnectionError):
            pass


async def load_client(a, ctx, idx, gate, stats, all_open, copy_exp):
    try:
        async with gate:
            s = await Session.open(a.host, a.port, ctx, a.user, "load-%d" % idx)
    except Exception as e:  # noqa: BLE001 - any failure is counted and shown
        stats["connect_failed"] += 1
        stats["errors"].append("connect %d: %r" % (idx, e))
        return
    stats["connected"] += 1
    try:
        await all_open.wait()
        deadline = time.monotonic() + a.seconds
        copier = a.copy_every > 0 and idx % a.copy_every == 0
        if copier:
            await s.query("create temp table load_t (i int, s text)")
        n = 0
        while time.monotonic() < deadline:
            n += 1
            if copier and n % 2:
                got = await s.copy_out(a.rows)
                stats["copy_out"] += 1
                if got != copy_exp:
                    stats["bad"] += 1
                    stats["errors"].append("copy out %d: checksum mismatch" % idx)
            elif copier:
                mine, theirs = await s.copy_in(a.rows, idx * 100000 + n)
                stats["copy_in"] += 1
                if mine != theirs:
                    stats["bad"] += 1
                    stats["errors"].append("copy in %d: checksum mismatch" % idx)
            else:
                k = random.randrange(1 << 30)
                got = await s.query("select %d * 2, md5('%d')" % (k, k))
                stats["queries"] += 1
                if got != [[str(k * 2), hashlib.md5(str(k).encode()).hexdigest()]]:
                    stats["bad"] += 1
                    stats["errors"].append("query %d: wrong answer %r" % (idx, got))
                await asyncio.sleep(random.uniform(0.0, 0.1))
    except Exception as e:  # noqa: BLE001
        stats["failed"] += 1
        stats["errors"].append("client %d: %r" % (idx, e))
    finally:
        await s.close()


async def sc_load(a):
    ctx = tls_context(a.ca)
    stats = dict(connected=0, connect_failed=0, failed=0, bad=0, queries=0, copy_out=0,
                 copy_in=0, errors=[])
    gate = asyncio.Semaphore(64)
    all_open = asyncio.Event()
    copy_exp = copy_out_expected(a.rows)
    tasks = [asyncio.create_task(load_client(a, ctx, i, gate, stats, all_open, copy_exp))
             for i in range(a.clients)]
    t0 = time.monotonic()
    while stats["connected"] + stats["connect_failed"] < a.clients:
        if time.monotonic() - t0 > 120:
            break
        await asyncio.sleep(0.05)
    print("connected %d of %d in %.1f s" % (stats["connected"], a.clients,
                                            time.monotonic() - t0), flush=True)
    if a.ready_file:
        open(a.ready_file, "w").close()
    all_open.set()
    await asyncio.gather(*tasks)
    print("queries %d copy_out %d copy_in %d bad %d failed %d connect_failed %d" % (
        stats["queries"], stats["copy_out"], stats["copy_in"], stats["bad"], stats["failed"],
        stats["connect_failed"]))
    for e in stats["errors"][:10]:
        print("error: %s" % e)
    return 0 if not (stats["bad"] or stats["failed"] or stats["connect_failed"]) else 1


# ---------------------------------------------------------------- blocking probes


def connect(a):
    s = socket.create_connection((a.host, a.port), timeout=30)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def tls_session(a, appname):
    """A TLS session, authenticated and ready for a query: (ssl socket, raw socket)."""
    s = connect(a)
    s.sendall(struct.pack("!II", 8, SSL_REQUEST))
    if s.recv(1) != b"S":
        raise RuntimeError("no TLS")
    ss = tls_context(a.ca).wrap_socket(s, server_hostname="localhost")
    ss.sendall(startup_packet(a.user, appname))
    while True:
        t, p = read_msg(ss)
        if t == b"E":
            raise RuntimeError("error %r" % p[:200])
        if t == b"Z":
            return ss


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed")
        buf += chunk
    return buf


def read_msg(s):
    head = recv_exact(s, 5)
    n = struct.unpack("!I", head[1:])[0]
    return head[0:1], recv_exact(s, n - 4)


def how_it_ended(s, t0):
    """Read until the peer closes: 'error CODE ...' or 'closed', with the time."""
    s.settimeout(60)
    what = "closed"
    try:
        while True:
            t, p = read_msg(s)
            if t == b"E":
                f = dict((chr(x[0]), x[1:].decode("utf-8", "replace"))
                         for x in p.split(b"\0") if x)
                what = "error %s %s" % (f.get("C", "?"), f.get("M", ""))
    except (EOFError, OSError, ssl.SSLError, ValueError, struct.error):
        pass
    return "%s after %.1f s" % (what, time.monotonic() - t0)


def sc_slow(a, stage):
    socks = []
    t0 = time.monotonic()
    for _ in range(a.clients):
        s = connect(a)
        s.sendall(struct.pack("!II", 8, SSL_REQUEST))
        if recv_exact(s, 1) != b"S":
            raise RuntimeError("no TLS")
        if stage == "handshake":
            # The first bytes of a TLS record header and ClientHello, then nothing.
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01")
        else:
            s = tls_context(a.ca).wrap_socket(s, server_hostname="localhost")
            s.sendall(startup_packet(a.user, "slow")[:7])
        socks.append(s)
    print("stalled %d" % len(socks), flush=True)
    if a.ready_file:
        open(a.ready_file, "w").close()
    ends = [how_it_ended(s, t0) for s in socks]
    for e in sorted(set(e.rsplit(" after ", 1)[0] for e in ends)):
        print("%d %s" % (sum(1 for x in ends if x.startswith(e + " after")), e))
    print("last ended after %.1f s" % (time.monotonic() - t0))
    return 0


def sc_hold(a):
    t0 = time.monotonic()
    n = 0
    try:
        ss = tls_session(a, "hold")
        if a.ready_file:
            open(a.ready_file, "w").close()
        t0 = time.monotonic()  # the witness's time counts from when it is up
        while time.monotonic() - t0 < a.seconds:
            ss.sendall(msg(b"Q", b"select 1\0"))
            while True:
                t, _ = read_msg(ss)
                if t == b"E":
                    raise RuntimeError("query failed")
                if t == b"Z":
                    break
            n += 1
            time.sleep(0.1)
        ss.sendall(msg(b"X", b""))
        ss.close()
    except Exception as e:  # noqa: BLE001
        print("hold error after %d queries: %r" % (n, e))
        return 1
    print("hold ok %d" % n)
    return 0


def sc_garbage_records(a):
    ss = tls_session(a, "garbage-records")
    raw = socket.socket(fileno=os.dup(ss.fileno()))
    # Looks like an application-data record, but is not one pgktls' keys can open.
    raw.sendall(b"\x17\x03\x03\x00\x40" + os.urandom(64))
    raw.close()
    print(how_it_ended(ss, time.monotonic()))
    return 0


def sc_garbage_session(a):
    ss = tls_session(a, "garbage-session")
    # Random bytes, but the first is no frontend message type: a valid type drawn at
    # random ('Q', 'P', 'B', 'F', 'd') with a length under PostgreSQL's 1 GB limit left
    # the backend waiting for the rest of that message (about one run in 200).
    ss.sendall(b"\xff" + os.urandom(4095))
    print(how_it_ended(ss, time.monotonic()))
    return 0


def sc_vanish(a):
    ss = tls_session(a, "vanish")
    ss.sendall(msg(b"Q", b"copy (select repeat('x', 100) from generate_series(1, 5000000)) "
                         b"to stdout\0"))
    got = 0
    while got < 1 << 20:
        got += len(ss.recv(65536))
    raw = socket.socket(fileno=os.dup(ss.fileno()))
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()
    ss.close()
    print("vanished after %d bytes" % got)
    return 0


def sc_fake_upstream(a):
    """Answer startup like PostgreSQL (trust), then stream CopyData and reset."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.listen))
    ls.listen(16)
    ls.settimeout(a.seconds)
    if a.ready_file:
        open(a.ready_file, "w").close()
    served = 0
    try:
        while True:
            c, _ = ls.accept()
            c.settimeout(10)
            try:
                n = struct.unpack("!I", recv_exact(c, 4))[0]
                body = recv_exact(c, n - 4)
                if struct.unpack("!I", body[:4])[0] == SSL_REQUEST:
                    c.sendall(b"N")
                    n = struct.unpack("!I", recv_exact(c, 4))[0]
                    recv_exact(c, n - 4)
                c.sendall(msg(b"R", struct.pack("!I", 0)) + msg(b"Z", b"I"))
                t, _ = read_msg(c)  # the client's query
                c.sendall(msg(b"H", b"\0\0\0"))
                for _ in range(200):
                    c.sendall(msg(b"d", b"y" * 8000))
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                served += 1
            except (OSError, EOFError):
                pass
            c.close()
    except socket.timeout:
        pass
    print("fake upstream served %d" % served)
    return 0


def sc_burst_refused(a):
    """--clients N connections at once, each sending SSLRequest; counts the FATAL 53300
    refusals among the answers and how long the slowest took."""
    t0 = time.monotonic()
    socks = []
    for _ in range(a.clients):
        s = socket.create_connection((a.host, a.port), timeout=10)
        s.sendall(struct.pack("!II", 8, SSL_REQUEST))
        socks.append(s)
    refused = 0
    for s in socks:
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        s.close()
        if data[:1] == b"E" and b"C53300\0" in data and b"too many clients" in data:
            refused += 1
    print("refused %d/%d in %.1f s" % (refused, a.clients, time.monotonic() - t0))
    return 0


def sc_fd_hog(a):
    socks = []
    for _ in range(a.clients):
        try:
            socks.append(socket.create_connection((a.host, a.port), timeout=5))
        except OSError:
            break
    print("holding %d" % len(socks), flush=True)
    if a.ready_file:
        open(a.ready_file, "w").close()
    # Held until the test says so: a fixed time raced the test's checks under load (the
    # burst then met a worker with descriptors again and waited out startup_timeout).
    end = time.monotonic() + a.seconds
    while time.monotonic() < end and not (a.stop_file and os.path.exists(a.stop_file)):
        time.sleep(0.1)
    for s in socks:
        s.close()
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("scenario")
    p.add_argument("--ca")
    p.add_argument("--user", default="trusty")
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--copy-every", type=int, default=10)
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--listen", type=int)
    p.add_argument("--ready-file")
    p.add_argument("--stop-file")
    a = p.parse_args()
    sc = {
        "load": lambda: asyncio.run(sc_load(a)),
        "slow-handshake": lambda: sc_slow(a, "handshake"),
        "slow-startup": lambda: sc_slow(a, "startup"),
        "hold": lambda: sc_hold(a),
        "garbage-records": lambda: sc_garbage_records(a),
        "garbage-session": lambda: sc_garbage_session(a),
        "vanish": lambda: sc_vanish(a),
        "fake-upstream": lambda: sc_fake_upstream(a),
        "fd-hog": lambda: sc_fd_hog(a),
        "burst-refused": lambda: sc_burst_refused(a),
    }.get(a.scenario)
    if not sc:
        p.error("unknown scenario %s" % a.scenario)
    try:
        sys.exit(sc())
    except Exception as e:  # noqa: BLE001 - one line the test can show
        print("exception: %r" % e)
        sys.exit(2)


if __name__ == "__main__":
    main()
