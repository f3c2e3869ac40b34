#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
"""idle.py - open N sessions through a path and hold them idle.

Usage: idle.py HOST PORT N [--tls] [--user NAME] [--db NAME] [--parallel K]

Each session does what libpq does with sslmode=require (SSLRequest, 'S', a TLS 1.3
handshake without certificate checks) or plaintext without --tls, sends a StartupMessage
and reads until ReadyForQuery, so the proxy in between is in its relay state. Once all N
are open (or failed) it prints "ready OPENED SECONDS FAILED" on stdout and holds them until
stdin closes, then sends Terminate on each and exits. The first failures are described on
stderr, and the exit status is 1 if any session failed.
"""

import argparse
import asyncio
import ssl
import struct
import sys
import time

SSL_REQUEST = 80877103


def startup_packet(user, db):
    body = struct.pack("!I", 196608)
    for k, v in (("user", user), ("database", db), ("application_name", "bench-idle")):
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


async def open_one(a, ctx, sem):
    async with sem:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(a.host, a.port), 60)
        if ctx is not None:
            writer.write(struct.pack("!II", 8, SSL_REQUEST))
            await writer.drain()
            answer = await asyncio.wait_for(reader.readexactly(1), 60)
            if answer != b"S":
                raise RuntimeError("server answered %r to SSLRequest" % answer)
            await asyncio.wait_for(writer.start_tls(ctx), 60)
        writer.write(startup_packet(a.user, a.db))
        await writer.drain()
        while True:
            head = await asyncio.wait_for(reader.readexactly(5), 60)
            length = struct.unpack("!I", head[1:5])[0]
            body = await reader.readexactly(length - 4)
            if head[0:1] == b"E":
                raise RuntimeError("server error: %r" % body[:200])
            if head[0:1] == b"Z":
                return writer


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--user", default="bench")
    ap.add_argument("--db", default="bench")
    ap.add_argument("--parallel", type=int, default=32)
    a = ap.parse_args()
    ctx = None
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    sem = asyncio.Semaphore(a.parallel)
    t0 = time.monotonic()
    results = await asyncio.gather(*(open_one(a, ctx, sem) for _ in range(a.n)),
                                   return_exceptions=True)
    writers = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    for e in errors[:5]:
        print("idle.py: session failed: %r" % (e,), file=sys.stderr)
    print("ready %d %.1f %d" % (len(writers), time.monotonic() - t0, len(errors)), flush=True)
    # Hold until our caller closes stdin.
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for w in writers:
        try:
            w.write(b"X\0\0\0\4")
            w.close()
        except Exception:
            pass
    await asyncio.sleep(0.2)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
