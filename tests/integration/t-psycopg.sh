#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# psycopg2 and psycopg 3 through pgktls: verify-full TLS, queries, cancel.
. "$(dirname "$0")/lib.sh"
setup
"$PY" -c 'import psycopg2' 2>/dev/null || skip_all "psycopg2 is not installed for $PY"
"$PY" -c 'import psycopg' 2>/dev/null || skip_all "psycopg (3) is not installed for $PY"
pg_setup main

px_start px "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\""
D=$(px_dsn px "sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable")

for mod in psycopg2 psycopg; do
	out=$(timeout 60 "$PY" - "$mod" "$D" <<'PYEOF' 2>&1
import importlib, sys, threading, time
mod = importlib.import_module(sys.argv[1])
conn = mod.connect(sys.argv[2])
cur = conn.cursor()
cur.execute("select current_user, %s::int * 2, (select ssl from pg_stat_ssl where pid = pg_backend_pid())", (21,))
user, n, upstream_tls = cur.fetchone()
print("query %s %d upstream-tls %s" % (user, n, upstream_tls))
print("client-ssl %s" % (conn.pgconn.ssl_in_use if hasattr(conn, "pgconn") else conn.info.ssl_in_use))
cur.execute("select string_agg(md5(i::text), '') from generate_series(1, 20000) i")
print("big %d" % len(cur.fetchone()[0]))
conn.rollback()
threading.Timer(1.0, conn.cancel).start()
t0 = time.monotonic()
try:
    cur.execute("select pg_sleep(30)")
    print("cancel none")
except mod.errors.QueryCanceled:
    print("cancel %s" % ("quickly" if time.monotonic() - t0 < 10 else "slowly"))
conn.rollback()
cur.execute("select 1")
print("after %d" % cur.fetchone()[0])
PYEOF
)
	is "$out" "query alice 42 upstream-tls True
client-ssl True
big 640000
cancel quickly
after 1" "$mod: verify-full through pgktls, queries, cancel"
done

done_testing
