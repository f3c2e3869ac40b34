#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# PostgreSQL dying mid-stream (SIGKILL of its backend, or an impostor that just closes):
# when the upstream closes between two of its messages, the client gets FATAL 08006
# (server closed the connection unexpectedly) before the close;
# inside a half-relayed message it gets a clean close and not one byte more. A server that
# says why it closes (pg_terminate_backend: FATAL 57P01) is passed on unchanged. Framing is
# followed where bytes pass through userspace (ktls = "off" here); spliced bytes are not
# seen, and there the client just sees the close.
. "$(dirname "$0")/lib.sh"
setup
need_cmd psql
pg_setup main

TLS="ktls = \"off\"
tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\""
LOST=$PGKTLS_SRCDIR/tests/integration/lost-upstream.py

# ---- an impostor upstream that closes between two messages, or inside one
FAKE_PORT=$(port_alloc)
px_start fake "$TLS" "host = \"127.0.0.1\"
port = $FAKE_PORT"
out=$(timeout 60 "$PY" "$LOST" "${PX_PORT[fake]}" "$FAKE_PORT" "$CERTS/ca.crt" between 2>&1)
is "$out" "same
then E 08006 server closed the connection unexpectedly
eof" "upstream gone between two messages: every byte, then FATAL 08006, then the close"
out=$(timeout 60 "$PY" "$LOST" "${PX_PORT[fake]}" "$FAKE_PORT" "$CERTS/ca.crt" inside 2>&1)
is "$out" "same
eof" "upstream gone inside a message: every byte it sent and nothing more, then the close"
like "$(cat "${PX_LOG[fake]}")" "upstream closed the connection unexpectedly" \
	"... the log says the upstream closed unexpectedly"

# ---- a real backend killed (SIGKILL) during COPY TO STDOUT
px_start px "$TLS
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\""
DSN=$(px_dsn px "sslmode=verify-full sslrootcert=$CERTS/ca.crt user=trusty application_name=doomed")
COPYQ="copy (select g, repeat('x', 200) from generate_series(1, 100000000) g) to stdout"
backend_pid() {
	local i pid
	for ((i = 0; i < 100; i++)); do
		pid=$(pg_sql main "select pid from pg_stat_activity
			where application_name = 'doomed' and state = 'active'")
		[ -n "$pid" ] && { echo "$pid"; return 0; }
		sleep 0.1
	done
	return 1
}
wait_pg() {
	local i
	for ((i = 0; i < 100; i++)); do
		pg_sql main "select 1" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

# killed SQL: run SQL with psql through pgktls, SIGKILL its backend once busy, print what
# psql said. (psql, not psycopg2: over TLS psycopg2 shows only libpq's own "SSL connection
# has been closed unexpectedly", even after a FATAL from PostgreSQL itself.)
killed() {
	local client pid
	(timeout 60 "$PGBIN/psql" -X -v VERBOSITY=verbose -d "$DSN" -c "$1" \
		>/dev/null 2>"$T/killed.err") &
	client=$!
	pid=$(backend_pid) && sleep 0.5 && kill -9 "$pid"
	wait "$client"
	cat "$T/killed.err"
	wait_pg || bail "PostgreSQL did not come back after the crash"
}

# A backend killed while the client waits for its answer: between two messages.
out=$(killed "select pg_sleep(30)")
like "$out" "FATAL:  08006: server closed the connection unexpectedly" \
	"backend SIGKILLed during a query: psql shows FATAL 08006"
like "$out" "DETAIL:  pgktls lost its connection to upstream" "... with pgktls's DETAIL"

# During COPY TO STDOUT the backend's last send() mostly ends inside a CopyData message:
# then psql sees the close (libpq's own "closed unexpectedly"), never bytes of ours inside
# the message; where it ended between two, FATAL 08006.
out=$(killed "$COPYQ")
like "$out" "(FATAL:  08006: server closed the connection unexpectedly|closed unexpectedly)" \
	"backend SIGKILLed mid-COPY: FATAL 08006, or a clean close inside a message"
unlike "$out" "invalid|unexpected message type|lost synchronization" "... and never garbage"

# ---- pg_terminate_backend: the server's own FATAL 57P01 passes unchanged, nothing added
(timeout 60 "$PGBIN/psql" -X -v VERBOSITY=verbose -d "$DSN" -c "$COPYQ" \
	>/dev/null 2>"$T/term.err") &
client=$!
pid=$(backend_pid) && sleep 0.5 && pg_sql main "select pg_terminate_backend($pid)" >/dev/null
wait "$client"
like "$(cat "$T/term.err")" "FATAL:  57P01: terminating connection due to administrator command" \
	"pg_terminate_backend: the server's FATAL 57P01 reaches the client"
unlike "$(cat "$T/term.err")" "08006" "... and pgktls adds no 08006 after it"
q_ok "new sessions work afterwards" "$DSN" "select 1" 1

done_testing
