#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Relaying the protocol faithfully: NegotiateProtocolVersion, protocol 3.2 requests, a large
# startup packet, byte-at-a-time input, bytes pipelined behind the startup packet; and
# teardown: clients that vanish and backends that are terminated.
. "$(dirname "$0")/lib.sh"
setup
pg_setup main max_connections=150
# Backends notice a vanished client even while a query runs (PostgreSQL 14+).
pg_sql main "alter system set client_connection_check_interval = '200ms'" >/dev/null
pg_sql main "select pg_reload_conf()" >/dev/null

px_start px "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\""
P=${PX_PORT[px]}
wire() { "$PY" "$PGWIRE" 127.0.0.1 "$P" "$@" --ca "$CERTS/ca.crt"; }

# The server's own answers, for comparison (straight to PostgreSQL).
direct() { "$PY" "$PGWIRE" 127.0.0.1 "${PG_PORT[main]}" "$@"; }

for sc in pq-option proto32 big-startup startup-plus-query; do
	want=$(direct "$sc")
	is "$(wire "$sc")" "$want" "$sc: the client sees what PostgreSQL sends ($want)"
done
like "$(direct proto32)" "^v\(3\.0\) R " "(PostgreSQL 15 itself answers protocol 3.2 with NegotiateProtocolVersion)"
like "$(wire fragmented)" "^R .*Z \| rows \['1'\]$" \
	"SSLRequest and startup packet sent one byte at a time work"

# Clients that reset their connections: the backends behind them must go away.
out=$(wire abrupt --user trusty)
is "$out" "reset 20" "20 sessions (10 mid-query) reset by the client"
n=
for ((i = 0; i < 50; i++)); do
	n=$(pg_sql main "select count(*) from pg_stat_activity where application_name = 'pgwire-abrupt'")
	[ "$n" = 0 ] && break
	sleep 0.2
done
is "$n" 0 "their 20 backends are gone within 10 s"

# A terminated backend: PostgreSQL's FATAL reaches the client through pgktls, then EOF.
is "$(wire terminated)" "$(direct terminated)" \
	"pg_terminate_backend: the client gets what PostgreSQL sends, then EOF"
like "$(wire terminated)" "^error 57P01 terminating connection due to administrator command then closed$" \
	"pg_terminate_backend: FATAL 57P01, then a clean close"
q_ok "pgktls still serves new sessions" \
	"$(px_dsn px "sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable")" \
	"select 1" 1

# PostgreSQL goes down under an open session and comes back.
D=$(px_dsn px "sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable")
timeout 60 "$PY" - "$D" "$T/restarted" >"$T/restart.out" 2>&1 <<'PYEOF' &
import os, sys, time
import psycopg2
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
cur.execute("select 1")
open(sys.argv[2] + ".ready", "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.1)
try:
    cur.execute("select 1")
    print("old session: still alive")
except psycopg2.Error as e:
    print("old session: %s" % type(e).__name__)
PYEOF
sess=$!
for ((i = 0; i < 100; i++)); do [ -e "$T/restarted.ready" ] && break; sleep 0.1; done
pg_stop main
q_fails "PostgreSQL down: a new session gets an error naming the upstream" "$D" "select 1" \
	"upstream"
"${PG_AS[@]}" "$PGBIN/pg_ctl" -D "${PG_DIR[main]}/data" -l "${PG_DIR[main]}/server.log" -w \
	start >/dev/null 2>&1
touch "$T/restarted"
wait "$sess"
is "$(cat "$T/restart.out")" "old session: OperationalError" \
	"PostgreSQL restarted: the old session fails cleanly"
q_ok "PostgreSQL restarted: new sessions work again" "$D" "select 1" 1

# Splice borrows a pipe only while bytes sit in it: sessions that moved data both ways
# and went idle hold their two sockets, not two pipes each on top. The sessions run one
# after the other, so each worker keeps at most two spare pipes (four descriptors).
px_start splice "tls_verify = \"disable\""
N=60
fds() { ls -l "/proc/${PX_PID[splice]}/fd" | grep -c "$1"; }
sock0=$(fds 'socket:') pipe0=$(fds 'pipe:')
cat >"$T/splice.py" <<'PYEOF'
import sys, psycopg2
port, n, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conns, ok = [], 0
for _ in range(n):
    c = psycopg2.connect(host="127.0.0.1", port=port, dbname="postgres", user="trusty",
                         sslmode="disable")
    cur = c.cursor()
    cur.execute("select length(repeat('x', 300000)), length(%s)", ("y" * 300000,))
    ok += cur.fetchone() == (300000, 300000)
    conns.append(c)
open(ready, "w").close()
sys.stdin.read()
print(ok)
PYEOF
mkfifo "$T/splice.go"
"$PY" "$T/splice.py" "${PX_PORT[splice]}" "$N" "$T/splice.ready" <"$T/splice.go" >"$T/splice.out" &
held=$!
exec 7>"$T/splice.go"
for ((i = 0; i < 300; i++)); do [ -e "$T/splice.ready" ] && break; sleep 0.1; done
sleep 0.5
sock1=$(fds 'socket:') pipe1=$(fds 'pipe:')
exec 7>&-
wait "$held"
is "$(cat "$T/splice.out")" "$N" "$N plaintext sessions move 300 KB each way through splice"
is "$((sock1 - sock0))" "$((2 * N))" "... and, idle, hold their two sockets each"
ok $((pipe1 - pipe0 <= 2 * 4 ? 0 : 1)) \
	"... and no pipes of their own ($((pipe1 - pipe0)) pipe descriptors in all; the spares allow 8)"

done_testing
