#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Load: as many concurrent TLS clients as the file limits allow (1000 by default), every
# tenth streaming COPY out and COPY in over and over, the rest running short queries, for
# a bounded time. Every stream's checksum must match, memory stays bounded (the peak per
# connection is reported), and pgktls holds as many descriptors afterwards as before.
#
# Environment: PGKTLS_LOAD_CLIENTS (default 1000), PGKTLS_LOAD_SECONDS (default 30),
# PGKTLS_LOAD_ROWS (rows per COPY, default 20000).
. "$(dirname "$0")/lib.sh"
setup

# Room for every client three times over (client socket, pgktls' two, the backend's).
ulimit -n "$(ulimit -Hn)" 2>/dev/null
LIMIT=$(ulimit -n)
N=${PGKTLS_LOAD_CLIENTS:-1000}
SECS=${PGKTLS_LOAD_SECONDS:-30}
ROWS=${PGKTLS_LOAD_ROWS:-20000}
if [ $((N * 3 + 200)) -gt "$LIMIT" ]; then
	N=$(((LIMIT - 200) / 3))
	diag "ulimit -n is $LIMIT: $N clients"
fi
[ "$N" -ge 100 ] || skip_all "ulimit -n $LIMIT allows fewer than 100 clients"

pg_setup main max_connections=$((N + 20))
px_start px "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"disable\"
startup_timeout = 30000"
PID=${PX_PID[px]}

# Descriptors other than pipes: the workers keep up to 32 spare splice pipes each
# (counted apart, below), so pipes may outlive the connections that used them.
fds() { find "/proc/$PID/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null | grep -vc '^pipe:'; }
pipes() { find "/proc/$PID/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null | grep -c '^pipe:'; }
status_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$PID/status"; }

# A warm-up session, so what OpenSSL and the workers allocate once is in the baseline.
q_ok "a session before the load" "$(px_dsn px "sslmode=verify-full sslrootcert=$CERTS/ca.crt")" \
	"select 1" 1
sleep 0.5
FD0=$(fds) PIPES0=$(pipes)
RSS0=$(status_kb VmRSS)
diag "before: $FD0 descriptors, VmRSS $RSS0 kB"

timeout $((SECS + 180)) "$PY" "$PGKTLS_SRCDIR/tests/integration/abuse.py" 127.0.0.1 \
	"${PX_PORT[px]}" load --clients "$N" --seconds "$SECS" --copy-every 10 --rows "$ROWS" \
	--ca "$CERTS/ca.crt" --ready-file "$T/ready" >"$T/load.out" 2>&1 &
LOAD=$!
for ((i = 0; i < 1800; i++)); do [ -e "$T/ready" ] && break; sleep 0.1; done
sleep 1
FD1=$(fds)
RSS1=$(status_kb VmRSS)
diag "with $N clients connected: $FD1 descriptors, VmRSS $RSS1 kB"
wait "$LOAD"
rc=$?
out=$(cat "$T/load.out")
diag "$out"
is "$rc" 0 "$N TLS clients for $SECS s: no failure, no checksum mismatch"
like "$out" "^connected $N of $N " "all $N clients were connected at once"
ok "$([ "$FD1" -ge $((FD0 + 2 * N)) ] && echo 0 || echo 1)" \
	"... each holding its two descriptors in pgktls ($FD1 with them, $FD0 before)"
copies=$(sed -n 's/^queries [0-9]* copy_out \([0-9]*\) copy_in \([0-9]*\) .*/\1 \2/p' <<<"$out")
read -r cout cin <<<"$copies"
ok "$([ "${cout:-0}" -ge $((N / 10)) ] && [ "${cin:-0}" -ge $((N / 10)) ] && echo 0 || echo 1)" \
	"every COPY streamer got through at least one COPY out and one COPY in ($cout, $cin)"

# Every connection is gone from pgktls' descriptor table.
for ((i = 0; i < 100; i++)); do
	FD2=$(fds)
	[ "$FD2" -le "$FD0" ] && break
	sleep 0.2
done
is "$FD2" "$FD0" "no descriptor leak: $FD2 after the load, $FD0 before"
PIPES2=$(pipes)
ok $((PIPES2 - PIPES0 <= 2 * 32 * ${PX_WORKERS:-2} ? 0 : 1)) \
	"... and no pipe leak: $PIPES2 pipe descriptors after, $PIPES0 before (spares allowed)"

HWM=$(status_kb VmHWM)
PER=$(((HWM - RSS0) / N))
diag "peak VmHWM $HWM kB: $PER kB per connection above the idle $RSS0 kB"
# Two SSL objects and at most two 17 KB relay buffers per connection. ASan's redzones
# and quarantine say nothing about the daemon's own use: no bound under it.
if ldd "$PGKTLS_BIN" 2>/dev/null | grep -q libasan; then
	skip 1 "memory bound not checked under AddressSanitizer ($PER kB per connection)"
else
	ok "$([ "$PER" -le 128 ] && echo 0 || echo 1)" \
		"memory stays bounded: peak $PER kB per connection (at most 128)"
fi
unlike "$(grep -E '^[^ ]+ (error|warn) ' "${PX_LOG[px]}")" . "no error or warning in the log"

q_ok "a session after the load" "$(px_dsn px "sslmode=verify-full sslrootcert=$CERTS/ca.crt")" \
	"select 1" 1
done_testing
