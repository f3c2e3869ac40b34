#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# The client hop's record layer against other TLS stacks, in userspace (ktls = off: pgktls's
# tlsrec, and openssl_records = true: OpenSSL): `openssl s_client -starttls postgres` with
# KeyUpdate storms (50 `k` and 50 `K` lines), a TLS 1.2 renegotiation (`R`), a 512-byte
# max_fragment_length, 1000-byte records from the client; and GnuTLS (`gnutls-cli
# --starttls-proto=postgres`) with its own KeyUpdates. Each time: the data is intact, the
# session goes on (or, for the renegotiation, ends with a clear alert), and pgktls does not
# spin: its CPU time stays near zero while the session is idle and after it closed.
# Where the kernel has kTLS (make check-ktls's VM) the same cases run a third time against
# `ktls = required` (instance kern): KeyUpdates go on from Linux 6.14, before that the
# session ends cleanly (close reason key_update); a 512-byte max_fragment_length, which the
# kernel cannot honour, is refused with an ErrorResponse rather than offloaded.
. "$(dirname "$0")/lib.sh"
setup
need_cmd openssl python3
pg_setup main

CERT="tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\""
px_start rec "$CERT
ktls = \"off\""
px_start ossl "$CERT
ktls = \"off\"
openssl_records = true"
PXS="rec ossl"
REKEY=0
if [ -r /proc/net/tls_stat ]; then
	px_start kern "$CERT
ktls = \"required\"
stats_socket = \"$T/kern.sock\""
	PXS="rec ossl kern"
	kv=$(uname -r | awk -F. '{ print $1 * 1000 + $2 }')
	[ "$kv" -ge 6014 ] && REKEY=1
	diag "kTLS here: instance kern (ktls = required); kernel rekeying: $REKEY"
fi
# closed_ku NAME: connections pgktls NAME closed for a KeyUpdate it could not follow.
closed_ku() {
	"$PGKTLS_BUILDDIR/tools/pgktls-stat" -s "$T/$1.sock" --json totals | "$PY" -c 'import json, sys
print(json.load(sys.stdin)["totals"]["connections"]["closed_by_reason"].get("key_update", 0))'
}

# PostgreSQL messages, written once: the startup packet (user trusty, trusted from
# 127.0.0.1) and Sync + Query messages. A query starts with Sync ('S') because s_client
# takes a 'Q' at the start of what it reads as its quit command.
python3 - "$T" <<'EOF'
import struct, sys
d = sys.argv[1]
body = struct.pack('!I', 196608) + b'user\0trusty\0database\0postgres\0\0'
open(f'{d}/startup.bin', 'wb').write(struct.pack('!I', len(body) + 4) + body)
def query(name, sql):
    q = sql.encode() + b'\0'
    open(f'{d}/{name}.bin', 'wb').write(b'S\0\0\0\4' + b'Q' + struct.pack('!I', len(q) + 4) + q)
query('q1', "select 'result' || '-1'")
query('q2', "select 'result' || '-2'")
query('big', "select repeat('ab', 10000)")
query('long', "select 'len' || '-' || length('" + 'x' * 5000 + "')")
EOF
BIG=$(printf 'ab%.0s' $(seq 10000))

# cpu_ticks PID: user + system clock ticks pgktls has used so far.
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# idle_ticks NAME: the clock ticks pgktls NAME uses in 1.5 s.
idle_ticks() {
	local pid=${PX_PID[$1]} a b
	a=$(cpu_ticks "$pid")
	sleep 1.5
	b=$(cpu_ticks "$pid")
	echo $((b - a))
}

# ticks_ok NAME WHAT TICKS: at most 15 ticks in 1.5 s (10%; a worker that spins uses ~150).
ticks_ok() {
	if [ "$3" -le 15 ]; then
		pass "$1: $2: pgktls idle ($3 ticks in 1.5 s)"
	else
		fail "$1: $2: pgktls idle ($3 ticks in 1.5 s)"
	fi
}

# idle_cpu_ok NAME WHAT: pgktls NAME is idle now.
idle_cpu_ok() {
	ticks_ok "$1" "$2" "$(idle_ticks "$1")"
}

# s_client_session NAME OUT FEED-FUNCTION S_CLIENT-ARGS...: run s_client against pgktls
# NAME with what FEED-FUNCTION writes as its input; stdout in OUT, stderr in OUT.err.
s_client_session() {
	local name=$1 out=$2 feed=$3
	shift 3
	"$feed" "$name" | timeout 60 openssl s_client -starttls postgres \
		-connect "127.0.0.1:${PX_PORT[$name]}" -servername localhost \
		-CAfile "$CERTS/ca.crt" "$@" >"$out" 2>"$out.err"
}

# Input for a KeyUpdate storm: a query, 50 KeyUpdates, 50 with update requested, a query,
# then (session idle and open) pgktls's CPU is sampled.
feed_storm() {
	cat "$T/startup.bin"
	sleep 0.5
	cat "$T/q1.bin"
	sleep 0.3
	for _ in $(seq 50); do printf 'k\n'; sleep 0.02; done
	for _ in $(seq 50); do printf 'K\n'; sleep 0.02; done
	sleep 0.3
	cat "$T/q2.bin"
	sleep 0.5
	idle_ticks "$1" >"$T/storm-ticks"
}

feed_reneg() {
	cat "$T/startup.bin"
	sleep 0.5
	cat "$T/q1.bin"
	sleep 0.3
	printf 'R\n'
	sleep 0.5
	cat "$T/q2.bin"
	sleep 0.5
}

feed_big() {
	cat "$T/startup.bin"
	sleep 0.5
	cat "$T/big.bin"
	sleep 0.3
	cat "$T/long.bin"
	sleep 1
}

for px in $PXS; do
	s_client_session $px "$T/storm-$px.out" feed_storm -tls1_3
	if [ $px = kern ] && [ $REKEY = 0 ]; then
		# Before 6.14 the kernel cannot take a new key: the first KeyUpdate ends it.
		grep -aq 'result-1' "$T/storm-$px.out" && [ "$(closed_ku $px)" -ge 1 ]
		ok $? "$px: s_client, 50 k and 50 K lines: query before answered, then closed as key_update"
	else
		grep -aq 'result-1' "$T/storm-$px.out" && grep -aq 'result-2' "$T/storm-$px.out"
		ok $? "$px: s_client, 50 k and 50 K lines: queries before and after answered"
	fi
	[ $? = 0 ] || diag "$(tail -c 600 "$T/storm-$px.out" | tr -c '[:print:]\n' .)" \
		"$(tail -n 5 "$T/storm-$px.out.err")"
	ticks_ok $px "after 100 KeyUpdates, session open" "$(cat "$T/storm-ticks")"
	# Two lines read at once make one command: most, not always all, become KeyUpdates.
	n=$(grep -ac KEYUPDATE "$T/storm-$px.out.err")
	if [ $px = kern ] && [ $REKEY = 0 ]; then
		[ "$n" -ge 1 ]
	else
		[ "$n" -ge 50 ]
	fi
	ok $? "$px: s_client sent its KeyUpdates ($n)"
	idle_cpu_ok $px "after the storm, session closed"

	s_client_session $px "$T/reneg-$px.out" feed_reneg -tls1_2
	grep -aq 'result-1' "$T/reneg-$px.out"
	ok $? "$px: s_client -tls1_2: query before R answered"
	# OpenSSL declines a renegotiation with a warning no_renegotiation, which the client
	# takes as the end: either the session goes on, or the client names that alert.
	like "$(cat "$T/reneg-$px.out" "$T/reneg-$px.out.err" | tr -c '[:print:]\n' .)" \
		'result-2|no renegotiation' "$px: s_client R: session goes on or ends on no_renegotiation"
	px_alive $px
	ok $? "$px: pgktls still running after the renegotiation attempt"
	idle_cpu_ok $px "after the renegotiation attempt"

	s_client_session $px "$T/mfl-$px.out" feed_big -maxfraglen 512
	if [ $px = kern ]; then
		grep -aq 'kernel TLS offload is required' "$T/mfl-$px.out" &&
			! grep -aqF "$BIG" "$T/mfl-$px.out"
		ok $? "$px: s_client -maxfraglen 512: refused with an ErrorResponse, not offloaded"
		[ $? = 0 ] || diag "$(tail -c 400 "$T/mfl-$px.out" | tr -c '[:print:]\n' .)"
	else
		grep -aqF "$BIG" "$T/mfl-$px.out"
		ok $? "$px: s_client -maxfraglen 512: 20000 bytes of result arrive intact"
	fi
	s_client_session $px "$T/split-$px.out" feed_big -max_send_frag 1000 -split_send_frag 1000
	grep -aq 'len-5000' "$T/split-$px.out" && grep -aqF "$BIG" "$T/split-$px.out"
	ok $? "$px: s_client -split_send_frag 1000: a 5 KB query in 1000-byte records, result intact"
done

# GnuTLS: a second TLS stack, which also updates its keys right after the handshake
# (--rehandshake: under TLS 1.3 a KeyUpdate asking pgktls to update too).
if command -v gnutls-cli >/dev/null 2>&1; then
	feed_gnutls() {
		cat "$T/startup.bin"
		sleep 0.5
		cat "$T/q1.bin"
		sleep 0.3
		cat "$T/big.bin"
		sleep 1
	}
	for px in $PXS; do
		[ $px = kern ] && [ $REKEY = 0 ] && continue # its KeyUpdate: the storm case above
		feed_gnutls $px | timeout 60 gnutls-cli --starttls-proto=postgres \
			--x509cafile="$CERTS/ca.crt" --rehandshake -p "${PX_PORT[$px]}" \
			localhost >"$T/gnutls-$px.out" 2>"$T/gnutls-$px.err"
		grep -aq 'ReHandshake was completed' "$T/gnutls-$px.out" &&
			grep -aq 'result-1' "$T/gnutls-$px.out" && grep -aqF "$BIG" "$T/gnutls-$px.out"
		ok $? "$px: gnutls-cli --rehandshake (a KeyUpdate): queries answered, results intact"
		[ $? = 0 ] || diag "$(tail -n 8 "$T/gnutls-$px.err")"
		idle_cpu_ok $px "after gnutls-cli"
	done
elif [ "${PGKTLS_REQUIRE_INTEGRATION:-0}" = 1 ]; then
	fail "gnutls-cli not found (package gnutls-bin)"
else
	skip 4 "gnutls-cli not found (package gnutls-bin)"
fi

if [ -r /proc/net/tls_stat ]; then
	# Every kern case above that was not refused ran with its client hop in the kernel:
	# the storm, the renegotiation and the split records, and GnuTLS where it ran.
	want=3
	[ $REKEY = 1 ] && command -v gnutls-cli >/dev/null 2>&1 && want=4
	engaged=$("$PGKTLS_BUILDDIR/tools/pgktls-stat" -s "$T/kern.sock" --json totals |
		"$PY" -c 'import json, sys; print(json.load(sys.stdin)["totals"]["ktls"]["hops_engaged_client"])')
	ok $([ "${engaged:-0}" -ge $want ] && echo 0 || echo 1) \
		"kern: the client hops were offloaded (hops_engaged_client = ${engaged:-?} of $want)"
fi
for px in $PXS; do px_stop $px; done
done_testing
