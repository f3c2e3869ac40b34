#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Query cancel through pgktls: psql (SIGINT -> libpq PQcancel, plaintext CancelRequest),
# psycopg2's conn.cancel(), and a CancelRequest sent after TLS; plaintext and TLS client
# hops, TLS upstream.
. "$(dirname "$0")/lib.sh"
setup
pg_setup main

px_start px "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\""

# psql_cancel DESCRIPTION CONNINFO: SIGINT after 2 s must cancel a 30 s sleep quickly.
psql_cancel() {
	local t0 t1 out rc
	t0=$(date +%s)
	out=$(timeout -k 10 -s INT 2 "$PGBIN/psql" -X -d "$2" -c "select pg_sleep(30)" 2>&1)
	rc=$?
	t1=$(date +%s)
	if printf '%s\n' "$out" | grep -q 'canceling statement due to user request' &&
		[ $((t1 - t0)) -lt 10 ]; then
		pass "$1 (took $((t1 - t0)) s)"
	else
		fail "$1"
		diag "status $rc after $((t1 - t0)) s:" "$out"
	fi
}

D="$(px_dsn px) channel_binding=disable"
psql_cancel "psql: SIGINT cancels pg_sleep(30), plaintext client hop" "$D sslmode=disable"
psql_cancel "psql: SIGINT cancels pg_sleep(30), TLS client hop" \
	"$D sslmode=verify-full sslrootcert=$CERTS/ca.crt"

# psycopg2: cancel one of two sessions; the other must be left alone, and the cancelled
# session must stay usable.
pyc() {
	timeout 60 "$PY" - "$1" <<'PYEOF' 2>&1
import sys, threading, time
import psycopg2, psycopg2.errors
dsn = sys.argv[1]
a = psycopg2.connect(dsn)
b = psycopg2.connect(dsn)
res = {}
def other():
    cur = b.cursor()
    t = time.monotonic()
    cur.execute("select pg_sleep(3), 'done'")
    res["b"] = (cur.fetchone()[1], time.monotonic() - t)
th = threading.Thread(target=other)
th.start()
threading.Timer(1.0, a.cancel).start()
t0 = time.monotonic()
cur = a.cursor()
try:
    cur.execute("select pg_sleep(30)")
    print("not cancelled")
    sys.exit(0)
except psycopg2.errors.QueryCanceled:
    took = time.monotonic() - t0
th.join()
a.rollback()
cur.execute("select 41 + 1")
print("cancelled %s; other %s %s; then %d" % (
    "quickly" if took < 10 else "after %.1f s" % took, res["b"][0],
    "in full" if res["b"][1] >= 2.9 else "early (%.1f s)" % res["b"][1], cur.fetchone()[0]))
PYEOF
}
want="cancelled quickly; other done in full; then 42"
is "$(pyc "$D sslmode=disable")" "$want" \
	"psycopg2 cancel, plaintext client hop: only the right session is cancelled"
is "$(pyc "$D sslmode=verify-full sslrootcert=$CERTS/ca.crt")" "$want" \
	"psycopg2 cancel, TLS client hop: only the right session is cancelled"

# Raw protocol: the CancelRequest itself after an SSLRequest and a TLS handshake.
cancelled_ok "$("$PY" "$PGWIRE" 127.0.0.1 "${PX_PORT[px]}" cancel --session-tls --cancel-tls \
	--ca "$CERTS/ca.crt")" "CancelRequest sent inside TLS cancels a TLS session"
cancelled_ok "$("$PY" "$PGWIRE" 127.0.0.1 "${PX_PORT[px]}" cancel --cancel-tls \
	--ca "$CERTS/ca.crt")" "CancelRequest sent inside TLS cancels a plaintext session"
cancelled_ok "$("$PY" "$PGWIRE" 127.0.0.1 "${PX_PORT[px]}" cancel)" \
	"plaintext CancelRequest cancels a plaintext session"

done_testing
