#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Idle memory in userspace TLS mode (ktls = off) with TLS on both hops: pgktls's own
# record layer (src/tlsrec.c) takes the records over from OpenSSL after each handshake
# and frees OpenSSL's state, so an idle session must cost at most 16 kB of pgktls's RSS
# (the product target; OpenSSL 3.0 alone keeps about 35 kB for the two sessions).
# openssl_records = true keeps OpenSSL's record layer: the same sessions must then cost
# clearly more, which shows the figure comes from the switch and not from the harness.
# The upstream is tests/integration/fakepg.py (TLS, verified with verify_full) and the sessions are
# held by tests/integration/idle.py, as in docs/BENCHMARK.md's idle measure.
. "$(dirname "$0")/lib.sh"
setup
FAKEPG=$PGKTLS_SRCDIR/tests/integration/fakepg.py
IDLE=$PGKTLS_SRCDIR/tests/integration/idle.py
[ -r "$FAKEPG" ] && [ -r "$IDLE" ] || bail "tests/integration/fakepg.py or idle.py missing"
N=${PGKTLS_IDLE_SESSIONS:-300}
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ $((N * 4 + 200)) -le "$(ulimit -n)" ] || N=$((($(ulimit -n) - 200) / 4))
make_certs

FP=$(port_alloc)
"$PY" "$FAKEPG" --port "$FP" --cert "$CERTS/server.crt" --key "$CERTS/server.key" \
	>"$T/fakepg.log" 2>&1 &
FAKE_PID=$!
for _ in $(seq 1 50); do grep -qs ready "$T/fakepg.log" && break; sleep 0.1; done
grep -qs ready "$T/fakepg.log" || bail "fakepg.py did not start: $(cat "$T/fakepg.log")"

export PX_WORKERS=1
GENERAL="tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
tls_server_name = \"localhost\"
ktls = \"off\""
UPSTREAM="host = \"127.0.0.1\"
port = $FP"
px_start lean "$GENERAL" "$UPSTREAM"
px_start openssl "$GENERAL
openssl_records = true" "$UPSTREAM"

rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }

# measure NAME: hold 10 warm-up sessions, then N more; print "KB_PER_SESSION OPENED FAILED".
measure() {
	local name=$1 pid=${PX_PID[$1]} r0 r1 i
	mkfifo "$T/warm-$name" "$T/hold-$name"
	"$PY" "$IDLE" 127.0.0.1 "${PX_PORT[$name]}" 10 --tls --parallel 4 \
		<"$T/warm-$name" >"$T/warm-$name.out" 2>"$T/warm-$name.err" &
	exec 7>"$T/warm-$name"
	for ((i = 0; i < 600; i++)); do grep -qs ready "$T/warm-$name.out" && break; sleep 0.1; done
	sleep 0.5
	r0=$(rss_kb "$pid")
	"$PY" "$IDLE" 127.0.0.1 "${PX_PORT[$name]}" "$N" --tls --parallel 16 \
		<"$T/hold-$name" >"$T/hold-$name.out" 2>"$T/hold-$name.err" &
	exec 8>"$T/hold-$name"
	for ((i = 0; i < 1800; i++)); do grep -qs ready "$T/hold-$name.out" && break; sleep 0.1; done
	sleep 0.5
	r1=$(rss_kb "$pid")
	# Closing the pipes ends both holders: each session sends Terminate and closes.
	exec 7>&- 8>&-
	awk -v a="$r0" -v b="$r1" '{ printf "%.1f %d %d\n", $2 ? (b - a) / $2 : 0, $2, $4 }' \
		"$T/hold-$name.out"
}

read -r LEAN OPENED FAILED <<<"$(measure lean)"
diag "lean: $LEAN kB per idle session ($OPENED opened, $FAILED failed)"
is "$OPENED/$FAILED" "$N/0" "lean: all $N sessions reach ReadyForQuery through both TLS hops"
read -r FAT OPENED2 FAILED2 <<<"$(measure openssl)"
diag "openssl_records: $FAT kB per idle session ($OPENED2 opened, $FAILED2 failed)"
is "$OPENED2/$FAILED2" "$N/0" "openssl_records: all $N sessions reach ReadyForQuery"

if ldd "$PGKTLS_BIN" 2>/dev/null | grep -q libasan; then
	skip 2 "memory not checked under AddressSanitizer (lean $LEAN kB, openssl $FAT kB)"
else
	ok "$(awk -v x="$LEAN" 'BEGIN { print (x <= 16) ? 0 : 1 }')" \
		"an idle session with TLS on both hops costs at most 16 kB ($LEAN kB)"
	ok "$(awk -v x="$LEAN" -v y="$FAT" 'BEGIN { print (y >= x + 15) ? 0 : 1 }')" \
		"openssl_records = true keeps OpenSSL's state: $FAT kB against $LEAN kB"
fi

# Every session ended cleanly (Terminate, close_notify) and the proxies still serve.
for name in lean openssl; do
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c 'closed:' "${PX_LOG[$name]}")" -ge $((N + 10)) ] && break
		sleep 0.1
	done
	is "$(grep -c 'closed: done ' "${PX_LOG[$name]}")" "$((N + 10))" \
		"$name: every session closed as done"
	unlike "$(grep -E '^[^ ]+ (error|warn) ' "${PX_LOG[$name]}")" . "$name: no error or warning"
done
kill "$FAKE_PID" 2>/dev/null
done_testing
