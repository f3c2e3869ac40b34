#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
"""Clients for t-upgrade.sh, over TLS (verify-full) as role trusty.

  loop PORT CA STOP OUT
      Connect in a tight loop until the file STOP exists: SSLRequest, TLS,
      startup, `select 1`, Terminate. Writes "ok=N refused=N errors=N" to OUT,
      and the first few errors after it. A refused connect is counted apart.
  hold PORT CA N READY GO OUT
      Open N sessions and run a query on each, touch READY, wait for the file
      GO, then run a query on each again and close. Writes "before=N after=N
      errors=N" (and the errors) to OUT.
  late PORT CA READY GO OUT
      One session that stops in its handshake: SSLRequest answered, then READY
      gets "port=P" (our TCP port) and it waits for the file GO; then TLS,
      startup and `select 'one'`, "one=ok" to OUT.mid; it waits for GO.2, runs
      `select 'two'` and closes. OUT: "one=ok two=ok", or the error.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pgwire  # noqa: E402


class Args:
    def __init__(self, ca):
        self.ca = ca


def open_session(port, ca):
    s = pgwire.connect("127.0.0.1", port)
    s.sendall(pgwire.request(pgwire.SSL_REQUEST))
    answer = pgwire.recv_exact(s, 1)
    if answer != b"S":
        raise RuntimeError("SSLRequest answered %r" % answer)
    s = pgwire.tls_wrap(s, Args(ca), alpn=False)
    return s, pgwire.Session(s, "trusty")


def close_session(s):
    try:
        s.sendall(b"X\0\0\0\4")
        s.close()
    except OSError:
        pass


def loop(port, ca, stop, out):
    ok = refused = errors = 0
    notes = []
    while not os.path.exists(stop):
        try:
            s, sess = open_session(port, ca)
            rows, err = sess.query("select 1")
            if err or rows != ["1"]:
                raise RuntimeError("select 1: %r %r" % (rows, err))
            close_session(s)
            ok += 1
        except ConnectionRefusedError as e:
            refused += 1
            notes.append("refused: %s" % e)
        except Exception as e:  # noqa: BLE001 (every failure counts)
            errors += 1
            notes.append("%s: %s" % (type(e).__name__, e))
    with open(out, "w") as f:
        f.write("ok=%d refused=%d errors=%d\n" % (ok, refused, errors))
        for n in notes[:5]:
            f.write(n + "\n")


def hold(port, ca, n, ready, go, out):
    sessions, notes = [], []
    before = after = errors = 0
    for _ in range(n):
        try:
            s, sess = open_session(port, ca)
            rows, err = sess.query("select 'before'")
            if rows == ["before"] and not err:
                before += 1
            sessions.append((s, sess))
        except Exception as e:  # noqa: BLE001
            errors += 1
            notes.append("open: %s: %s" % (type(e).__name__, e))
    open(ready, "w").close()
    deadline = time.time() + 120
    while not os.path.exists(go) and time.time() < deadline:
        time.sleep(0.05)
    for s, sess in sessions:
        try:
            rows, err = sess.query("select 'after'")
            if rows == ["after"] and not err:
                after += 1
            else:
                errors += 1
                notes.append("after: %r %r" % (rows, err))
        except Exception as e:  # noqa: BLE001
            errors += 1
            notes.append("after: %s: %s" % (type(e).__name__, e))
        close_session(s)
    with open(out, "w") as f:
        f.write("before=%d after=%d errors=%d\n" % (before, after, errors))
        for n in notes[:5]:
            f.write(n + "\n")


def wait_file(path):
    deadline = time.time() + 120
    while not os.path.exists(path):
        if time.time() > deadline:
            raise RuntimeError("no %s within 120 s" % path)
        time.sleep(0.02)


def late(port, ca, ready, go, out):
    verdict = []
    try:
        s = pgwire.connect("127.0.0.1", port)
        s.sendall(pgwire.request(pgwire.SSL_REQUEST))
        answer = pgwire.recv_exact(s, 1)
        if answer != b"S":
            raise RuntimeError("SSLRequest answered %r" % answer)
        with open(ready + ".tmp", "w") as f:
            f.write("port=%d\n" % s.getsockname()[1])
        os.rename(ready + ".tmp", ready)
        wait_file(go)
        s = pgwire.tls_wrap(s, Args(ca), alpn=False)
        sess = pgwire.Session(s, "trusty")
        for word, mark in (("one", out + ".mid"), ("two", None)):
            rows, err = sess.query("select '%s'" % word)
            if err or rows != [word]:
                raise RuntimeError("select '%s': %r %r" % (word, rows, err))
            verdict.append("%s=ok" % word)
            if mark:
                with open(mark, "w") as f:
                    f.write(" ".join(verdict) + "\n")
                wait_file(go + ".2")
        close_session(s)
    except Exception as e:  # noqa: BLE001
        verdict.append("%s: %s" % (type(e).__name__, e))
    with open(out, "w") as f:
        f.write(" ".join(verdict) + "\n")


def main():
    if sys.argv[1] == "loop":
        loop(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    elif sys.argv[1] == "hold":
        hold(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6],
             sys.argv[7])
    elif sys.argv[1] == "late":
        late(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])
    else:
        sys.exit("usage: see the docstring")


if __name__ == "__main__":
    main()
