#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Faults: slowloris clients stalled mid-handshake and mid-startup, garbage after the
# handshake (raw bytes under TLS, random bytes inside it), a client that resets mid-COPY,
# an upstream that resets mid-stream, an upstream that refuses connections, and a daemon
# out of file descriptors. Each time: the affected connection ends with a reason in the
# log, a session running alongside is not disturbed, and new sessions still work.
# (PostgreSQL restarted under open sessions is t-relay's.)
. "$(dirname "$0")/lib.sh"
setup
pg_setup main max_connections=100

ABUSE="$PGKTLS_SRCDIR/tests/integration/abuse.py"
TLS="tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
startup_timeout = 2000
tls_verify = \"disable\""
px_start px "$TLS"
D=$(px_dsn px "sslmode=verify-full sslrootcert=$CERTS/ca.crt")

# abuse PROXY SCENARIO ARGS...: run abuse.py against a pgktls instance.
abuse() {
	local name=$1
	shift
	timeout 120 "$PY" "$ABUSE" 127.0.0.1 "${PX_PORT[$name]}" "$@" --ca "$CERTS/ca.crt"
}

# hold_start NAME SECONDS: a witness session in the background; hold_check checks it.
# hold_start returns once the session is up: a fixed pause let a loaded machine start the
# fault first (at the descriptor limit the witness itself was then refused).
hold_start() {
	rm -f "$T/hold.ready"
	abuse "$1" hold --seconds "$2" --ready-file "$T/hold.ready" >"$T/hold.out" 2>&1 &
	HOLD_PID=$!
	local i
	for ((i = 0; i < 300; i++)); do
		[ -e "$T/hold.ready" ] || ! kill -0 "$HOLD_PID" 2>/dev/null && return 0
		sleep 0.1
	done
}
hold_check() {
	wait "$HOLD_PID"
	like "$(cat "$T/hold.out")" '^hold ok [0-9]+$' "$1"
}

# wait_file FILE: up to 30 s.
wait_file() {
	local i
	for ((i = 0; i < 300; i++)); do [ -e "$1" ] && return 0; sleep 0.1; done
	return 1
}

log_count() { grep -c -E -- "$2" "${PX_LOG[$1]}"; }

# ---- slowloris: stalled mid-handshake
hold_start px 4
before=$(log_count px 'closed: timeout')
abuse px slow-handshake --clients 50 --ready-file "$T/slow1" >"$T/slow1.out" 2>&1 &
SLOW=$!
wait_file "$T/slow1" || diag "slow-handshake did not get going: $(cat "$T/slow1.out")"
q_ok "while 50 clients stall mid-handshake, a new session works" "$D" "select 1" 1
wait "$SLOW"
out=$(cat "$T/slow1.out")
like "$out" '^50 closed$' "50 clients stalled mid-handshake are all disconnected"
secs=$(sed -n 's/^last ended after \([0-9.]*\) s$/\1/p' <<<"$out")
ok "$(awk -v s="${secs:-99}" 'BEGIN { print !(s >= 1.5 && s < 8) }')" \
	"... by startup_timeout (2 s): the last after ${secs:-?} s"
is "$(($(log_count px 'closed: timeout') - before))" 50 "... each logged as 'closed: timeout'"
like "$(cat "${PX_LOG[px]}")" 'timeout: no complete TLS handshake within 2000 ms' \
	"... with the timeout named in the log"
hold_check "a session open meanwhile is not disturbed by the stalled handshakes"

# ---- slowloris: stalled mid-startup (inside TLS)
hold_start px 4
before=$(log_count px 'closed: timeout')
abuse px slow-startup --clients 50 --ready-file "$T/slow2" >"$T/slow2.out" 2>&1 &
SLOW=$!
wait_file "$T/slow2" || diag "slow-startup did not get going: $(cat "$T/slow2.out")"
q_ok "while 50 clients stall mid-startup, a new session works" "$D" "select 1" 1
wait "$SLOW"
out=$(cat "$T/slow2.out")
like "$out" '^50 error 08006 timeout: no complete startup packet' \
	"50 clients stalled mid-startup get a timeout ErrorResponse"
is "$(($(log_count px 'closed: timeout') - before))" 50 "... each logged as 'closed: timeout'"
hold_check "a session open meanwhile is not disturbed by the stalled startups"

# ---- garbage after the handshake
hold_start px 3
out=$(abuse px garbage-records)
like "$out" '^closed after' "raw bytes under TLS: the session is closed"
like "$(tail -n 5 "${PX_LOG[px]}")" 'client hop failed: .+' "... the log says why"
like "$(tail -n 5 "${PX_LOG[px]}")" 'closed: client_error' "... and closes it as client_error"
out=$(abuse px garbage-session)
like "$out" '^error 08P01 ' "random bytes inside TLS: PostgreSQL answers with a protocol error"
hold_check "a session open meanwhile is not disturbed by garbage on other connections"

# ---- a client that resets mid-COPY
hold_start px 3
out=$(abuse px vanish)
like "$out" '^vanished after' "a client resets in the middle of a large COPY"
for ((i = 0; i < 100; i++)); do
	n=$(pg_sql main "select count(*) from pg_stat_activity where application_name = 'vanish'")
	[ "$n" = 0 ] && break
	sleep 0.1
done
is "$n" 0 "... its backend goes away"
like "$(grep -E 'closed: (client_gone|client_error)' "${PX_LOG[px]}" | tail -n 1)" \
	'closed: client_(gone|error) \(client->server [0-9]+ bytes, server->client [0-9]+ bytes' \
	"... and the log says how it ended"
hold_check "a session open meanwhile is not disturbed by the reset"

# ---- an upstream that resets mid-stream
FAKE_PORT=$(port_alloc)
timeout 60 "$PY" "$ABUSE" 127.0.0.1 0 fake-upstream --listen "$FAKE_PORT" --seconds 15 \
	--ready-file "$T/fake" >"$T/fake.out" 2>&1 &
wait_file "$T/fake" || diag "fake upstream did not start: $(cat "$T/fake.out")"
px_start fake "$TLS" "host = \"127.0.0.1\"
port = $FAKE_PORT"
DF=$(px_dsn fake "sslmode=verify-full sslrootcert=$CERTS/ca.crt")
hold_start px 3
q_fails "an upstream that resets mid-stream: the client gets an error" "$DF" \
	"copy (select 1) to stdout" "closed|lost|terminated|SSL|EOF"
# Two wordings: a reset inside a message ends the hop ("server hop failed"); one between
# messages is told to the client as 08006 first ("upstream closed ... client told").
like "$(cat "${PX_LOG[fake]}")" \
	'server hop failed: .+|upstream closed the connection unexpectedly \(.+\): client told' \
	"... the log says the server hop failed"
like "$(cat "${PX_LOG[fake]}")" 'closed: server_error' "... and closes it as server_error"
q_fails "the same upstream again: handled the same way" "$DF" "copy (select 1) to stdout" \
	"closed|lost|terminated|SSL|EOF"
hold_check "a session on another instance is not disturbed"
px_alive fake
ok $? "pgktls survives upstreams that reset"

# ---- an upstream that refuses connections
DEAD_PORT=$(port_alloc)
px_start dead "$TLS" "host = \"127.0.0.1\"
port = $DEAD_PORT"
q_fails "an upstream that refuses: the client is told why" \
	"$(px_dsn dead "sslmode=verify-full sslrootcert=$CERTS/ca.crt")" "select 1" \
	"upstream.*(refused|connect)"
like "$(cat "${PX_LOG[dead]}")" 'closed: upstream_failed' "... logged as upstream_failed"
px_alive dead
ok $? "pgktls keeps running with its upstream down"

# ---- out of file descriptors: accept backs off, logs it, recovers
cat >"$T/lowfd.sh" <<EOF
#!/bin/sh
ulimit -n 48
exec "$PGKTLS_BIN" "\$@"
EOF
chmod +x "$T/lowfd.sh"
REAL_BIN=$PGKTLS_BIN
PGKTLS_BIN=$T/lowfd.sh
# The hog's connections must hold their descriptors until the burst is done: with the 2 s
# startup_timeout above they were closed under load before the burst came, which then
# found free descriptors and waited out that timeout instead of being refused.
PX_WORKERS=1 px_config lowfd "${TLS/startup_timeout = 2000/startup_timeout = 60000}
stats_socket = \"$T/lowfd-stats.sock\""
px_run lowfd -c "${PX_CONF[lowfd]}"
ok $? "pgktls starts with 'ulimit -n 48'"
PGKTLS_BIN=$REAL_BIN
DL=$(px_dsn lowfd "sslmode=verify-full sslrootcert=$CERTS/ca.crt")
hold_start lowfd 6
abuse lowfd fd-hog --clients 80 --seconds 60 --ready-file "$T/hog" --stop-file "$T/hog-stop" \
	>"$T/hog.out" 2>&1 &
HOG=$!
wait_file "$T/hog"
sleep 0.5
like "$(cat "${PX_LOG[lowfd]}")" 'accept: Too many open files; refusing new connections' \
	"out of descriptors: new connections are refused, and the log says so"
# With a spare descriptor each client at the limit is accepted and refused at once, as
# PostgreSQL's postmaster refuses one it cannot serve: FATAL 53300, in plaintext.
out=$(abuse lowfd burst-refused --clients 40)
like "$out" "^refused 40/40 in [0-2]\.[0-9] s$" \
	"a burst of 40 clients at the limit: all refused with 53300 within 3 s"
touch "$T/hog-stop"
wait "$HOG"
ok=1
for ((i = 0; i < 20; i++)); do
	if q "$DL" "select 1" >/dev/null; then ok=0; break; fi
	sleep 0.5
done
ok $ok "... and accepts again once descriptors are free"
refused=$("$PGKTLS_BUILDDIR/tools/pgktls-stat" -s "$T/lowfd-stats.sock" --json | "$PY" -c \
	'import json, sys; print(json.load(sys.stdin)["totals"]["counters"]["accept_refused_nofd"])')
ok $([ "${refused:-0}" -ge 40 ] && echo 0 || echo 1) \
	"... and the refusals are counted (accept_refused_nofd = ${refused:-?})"
hold_check "a session open before the descriptors ran out is not disturbed"

q_ok "after all that, the first instance still serves" "$D" "select 'still here'" "still here"
done_testing
