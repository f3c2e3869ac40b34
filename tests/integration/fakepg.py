#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
"""fakepg.py - a stand-in for PostgreSQL that holds thousands of idle sessions cheaply.

Usage: fakepg.py --port PORT [--unix PATH] [--cert FILE --key FILE]

The idle-memory test needs an upstream that accepts 10,000 sessions; 10,000 PostgreSQL
backends do not fit on the benchmark machine. This server speaks just enough of the
protocol for a proxy to reach its relay state: it answers SSLRequest with 'S' (when it has a
certificate) or 'N', GSSENCRequest with 'N', and a StartupMessage with AuthenticationOk, a
few ParameterStatus messages, BackendKeyData and ReadyForQuery. A simple Query gets an
EmptyQueryResponse and ReadyForQuery (PgBouncer may send one), Terminate closes.
Prints "ready" on stdout once it listens.
"""

import argparse
import asyncio
import os
import ssl
import struct
import sys

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104
CANCEL_REQUEST = 80877102


def msg(typ, payload=b""):
    return typ + struct.pack("!I", len(payload) + 4) + payload


def param(name, value):
    return msg(b"S", name.encode() + b"\0" + value.encode() + b"\0")


WELCOME = (msg(b"R", struct.pack("!I", 0)) +
           param("server_version", "15.0") +
           param("server_encoding", "UTF8") +
           param("client_encoding", "UTF8") +
           param("DateStyle", "ISO, MDY") +
           param("integer_datetimes", "on") +
           param("standard_conforming_strings", "on") +
           param("TimeZone", "UTC") +
           param("application_name", "") +
           msg(b"K", struct.pack("!II", 4242, 4242)) +
           msg(b"Z", b"I"))
READY = msg(b"I") + msg(b"Z", b"I")


async def session(reader, writer, ctx):
    try:
        while True:
            head = await reader.readexactly(4)
            length = struct.unpack("!I", head)[0]
            if length < 8 or length > 10000:
                return
            body = await reader.readexactly(length - 4)
            code = struct.unpack("!I", body[:4])[0]
            if code == SSL_REQUEST:
                if ctx is None:
                    writer.write(b"N")
                    continue
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(ctx)
                continue
            if code == GSS_REQUEST:
                writer.write(b"N")
                continue
            if code == CANCEL_REQUEST:
                return
            break
        writer.write(WELCOME)
        await writer.drain()
        while True:
            head = await reader.readexactly(5)
            length = struct.unpack("!I", head[1:5])[0]
            if length > 4:
                await reader.readexactly(length - 4)
            if head[0:1] == b"X":
                return
            if head[0:1] == b"Q":
                writer.write(READY)
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--unix")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args()
    ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        ctx.num_tickets = 0

    def handler(r, w):
        return session(r, w, ctx)

    servers = [await asyncio.start_server(handler, "127.0.0.1", a.port, backlog=4096)]
    if a.unix:
        if os.path.exists(a.unix):
            os.unlink(a.unix)
        servers.append(await asyncio.start_unix_server(handler, a.unix, backlog=4096))
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
