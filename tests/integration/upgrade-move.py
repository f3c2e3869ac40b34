#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
"""psycopg2 clients for t-upgrade-move.sh, over TLS (verify-full) as role trusty.

Each one stops at a point the test chooses (it touches READY, then waits for the file GO),
so the binary upgrade happens while it is in a known state, and writes its verdict to OUT.

  copyout PORT CA ROWS READY GO OUT
      COPY (select md5(i::text) from generate_series(1, ROWS) i) TO STDOUT, pausing (not
      reading) after a fifth of it. READY gets "bytes=N port=P" (what arrived so far, our
      TCP port); OUT gets "bytes=N sha256=HEX" or "error ...".
  copyin PORT CA MB READY GO OUT
      COPY t FROM STDIN of MB megabytes of rows "id<TAB>payload". After a fifth it does
      not pause but slows down (the rest would take 32 s at that pace) until GO, so the
      session is busy, not frozen, whenever the upgrade comes, and still far from done.
      READY as above; OUT gets "COPY rows bytes=N sha256=HEX" (of what was sent) or
      "error ...".
  idle PORT CA N READY GO OUT
      Open N sessions and run a query on each; READY gets one "port=P" line per session;
      after GO, a query on each again, then close. OUT: "before=N after=N errors=N" and the
      first errors.
"""
import hashlib
import os
import socket
import sys
import time

import psycopg2


def dsn(port, ca):
    return ("host=localhost hostaddr=127.0.0.1 port=%d dbname=postgres user=trusty "
            "sslmode=verify-full sslrootcert=%s channel_binding=disable "
            "connect_timeout=60" % (port, ca))


def local_port(conn):
    """Our end's TCP port: how the test finds this session in pgktls's stats."""
    s = socket.socket(fileno=os.dup(conn.fileno()))
    try:
        return s.getsockname()[1]
    finally:
        s.close()


def pause(ready, go, text):
    """Tell the test where we are (atomically: write, then rename), then wait for GO."""
    with open(ready + ".tmp", "w") as f:
        f.write(text)
    os.rename(ready + ".tmp", ready)
    deadline = time.time() + 300
    while not os.path.exists(go):
        if time.time() > deadline:
            raise RuntimeError("no GO within 300 s")
        time.sleep(0.05)


class Sink:
    """COPY TO's output: hashed and counted, with one pause on the way."""

    def __init__(self, at, cb):
        self.h = hashlib.sha256()
        self.n = 0
        self.at = at
        self.cb = cb

    def write(self, b):
        if isinstance(b, str):
            b = b.encode()
        self.h.update(b)
        self.n += len(b)
        if self.cb and self.n >= self.at:
            cb, self.cb = self.cb, None
            cb(self.n)
        return len(b)


class Source:
    """COPY FROM's input, made on the fly, hashed as sent; from AT on, slow until GO."""

    def __init__(self, total, at, ready, go, text):
        self.h = hashlib.sha256()
        self.n = 0
        self.rows = 0
        self.total = total
        self.at = at
        self.ready, self.go, self.text = ready, go, text
        self.told = self.fast = False
        self.buf = b""

    def read(self, size=-1):
        if not self.fast and self.n >= self.at:
            if not self.told:
                with open(self.ready + ".tmp", "w") as f:
                    f.write(self.text % self.n)
                os.rename(self.ready + ".tmp", self.ready)
                self.told = True
            self.fast = os.path.exists(self.go)
            if not self.fast:
                time.sleep(65536 / (self.total / 40))
        while len(self.buf) < 65536 and self.n + len(self.buf) < self.total:
            rows = []
            for _ in range(256):
                d = hashlib.md5(str(self.rows).encode()).hexdigest()
                rows.append(b"%d\t%s%s%s\n" % (self.rows, d.encode(), d[::-1].encode(),
                                               d.encode()))
                self.rows += 1
            self.buf += b"".join(rows)
        out, self.buf = self.buf[:65536], self.buf[65536:]
        self.h.update(out)
        self.n += len(out)
        return out


def copyout(port, ca, rows, ready, go, out):
    conn = psycopg2.connect(dsn(port, ca))
    me = local_port(conn)
    # A fifth of the rows' bytes (33 each: 32 hex digits and a newline).
    sink = Sink(rows * 33 // 5, lambda n: pause(ready, go, "bytes=%d port=%d\n" % (n, me)))
    try:
        with conn.cursor() as cur:
            cur.copy_expert("copy (select md5(i::text) from generate_series(1, %d) i) "
                            "to stdout" % rows, sink, size=65536)
        result = "bytes=%d sha256=%s" % (sink.n, sink.h.hexdigest())
    except Exception as e:  # noqa: BLE001 (the test prints whatever went wrong)
        result = "error after %d bytes: %s: %s" % (sink.n, type(e).__name__, e)
    conn.close()
    with open(out, "w") as f:
        f.write(result.strip() + "\n")


def copyin(port, ca, mb, ready, go, out):
    conn = psycopg2.connect(dsn(port, ca))
    me = local_port(conn)
    total = mb << 20
    src = Source(total, total // 5, ready, go, "bytes=%%d port=%d\n" % me)
    try:
        with conn.cursor() as cur:
            cur.copy_expert("copy t from stdin", src, size=65536)
            rows = cur.rowcount
        conn.commit()
        result = "COPY %d bytes=%d sha256=%s" % (rows, src.n, src.h.hexdigest())
    except Exception as e:  # noqa: BLE001
        result = "error after %d bytes: %s: %s" % (src.n, type(e).__name__, e)
    conn.close()
    with open(out, "w") as f:
        f.write(result.strip() + "\n")


def query(conn, word):
    with conn.cursor() as cur:
        cur.execute("select %s", (word,))
        return cur.fetchone()[0] == word


def idle(port, ca, n, ready, go, out):
    conns, notes = [], []
    before = after = errors = 0
    for _ in range(n):
        try:
            conn = psycopg2.connect(dsn(port, ca))
            conn.autocommit = True
            if query(conn, "before"):
                before += 1
            conns.append(conn)
        except Exception as e:  # noqa: BLE001
            errors += 1
            notes.append("open: %s: %s" % (type(e).__name__, e))
    pause(ready, go, "".join("port=%d\n" % local_port(c) for c in conns))
    for conn in conns:
        try:
            if query(conn, "after"):
                after += 1
            else:
                errors += 1
                notes.append("after: wrong answer")
        except Exception as e:  # noqa: BLE001
            errors += 1
            notes.append("after: %s: %s" % (type(e).__name__, str(e).strip()))
        conn.close()
    with open(out, "w") as f:
        f.write("before=%d after=%d errors=%d\n" % (before, after, errors))
        for line in notes[:5]:
            f.write(line + "\n")


def main():
    modes = {"copyout": copyout, "copyin": copyin, "idle": idle}
    if len(sys.argv) != 8 or sys.argv[1] not in modes:
        sys.exit("usage: see the docstring")
    modes[sys.argv[1]](int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), *sys.argv[5:])


if __name__ == "__main__":
    main()
