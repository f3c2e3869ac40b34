#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# pgktls's userspace record layer (`ktls = "off"`: src/tlsrec.c) at a send key's record limit
# (lowered to 32 records by the test-only PGKTLS_TEST_REKEY_RECORDS), and the stats that say
# so, as t-ktls-rekey.sh checks them for kTLS:
#   1. TLS 1.3: a KeyUpdate of pgktls's own every 32 records; tls_poke counts every KeyUpdate
#      it receives in its session and `control_records.key_updates_sent` must move by exactly
#      that (the upstream hop sends too few records to reach the limit), with no close;
#   2. TLS 1.2 cannot change keys: the connection closes cleanly at the limit, exactly one
#      `key_limit_closes`, closed as `key_update`.
. "$(dirname "$0")/lib.sh"
setup
STAT=$PGKTLS_BUILDDIR/tools/pgktls-stat
POKE=$PGKTLS_BUILDDIR/tests/integration/tls_poke
for b in "$STAT" "$POKE"; do
	[ -x "$b" ] || bail "$b not found (make check builds it)"
done

pg_setup main
export PX_WORKERS=1

# count NAME PATH: a number in instance NAME's totals (PATH in Python subscript form).
count() {
	"$STAT" -s "$T/$1.sock" --json totals |
		"$PY" -c "import json, sys; print(json.load(sys.stdin)['totals']$2)"
}
closed_ku() { count "$1" "['connections']['closed_by_reason']['key_update']"; }
sent() { count "$1" "['control_records']['key_updates_sent']"; }
limit_closes() { count "$1" "['control_records']['key_limit_closes']"; }
rekeyed() { count "$1" "['control_records']['key_updates_rekeyed']"; }

CERT="tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
ktls = \"off\""

PGKTLS_TEST_REKEY_RECORDS=32 px_start lim13 "$CERT
stats_socket = \"$T/lim13.sock\"
tls_min_version = \"TLSv1.3\"
tls_server_min_version = \"TLSv1.3\"
tls_ciphersuites = \"TLS_AES_128_GCM_SHA256\"
tls_server_ciphersuites = \"TLS_AES_128_GCM_SHA256\"" || bail "pgktls lim13 did not start"
PGKTLS_TEST_REKEY_RECORDS=32 px_start lim12 "$CERT
stats_socket = \"$T/lim12.sock\"
tls_max_version = \"TLSv1.2\"
tls_server_max_version = \"TLSv1.2\"
tls_ciphers = \"ECDHE-ECDSA-AES128-GCM-SHA256\"
tls_server_ciphers = \"ECDHE-ECDSA-AES128-GCM-SHA256\"" || bail "pgktls lim12 did not start"

# ---- 1. TLS 1.3: KeyUpdates of our own, counted one for one ----
want=$(md5_series_sha256 600000)
s0=$(sent lim13)
l0=$(limit_closes lim13)
r0=$(rekeyed lim13)
k0=$(closed_ku lim13)
out=$(timeout 300 "$POKE" rekeys "${PX_PORT[lim13]}" TLSv1.3 2>&1)
diag "$out"
like "$out" "connected TLSv1.3 TLS_AES_128_GCM_SHA256" "TLS 1.3 AES-128-GCM, ktls = off"
like "$out" "sha256 $want" "... a 19 MB COPY TO STDOUT arrives intact, 32 records a key"
like "$out" "query 2" "... and the session goes on"
n=$(echo "$out" | sed -n 's/^keyupdates received \([0-9]*\)$/\1/p')
# 19.8 MB in records of at most 16 KB: at least 1200 records, so 37 or more KeyUpdates.
ok $((${n:-0} >= 37 ? 0 : 1)) "... the client received ${n:-no} KeyUpdates from pgktls"
sleep 0.3
is "$(($(sent lim13) - s0))" "${n:--1}" "... key_updates_sent counts exactly those"
is "$(limit_closes lim13) $(rekeyed lim13) $(closed_ku lim13)" "$l0 $r0 $k0" \
	"... no key_limit_close, no KeyUpdate received (key_updates_rekeyed), no key_update close"

# ---- 2. TLS 1.2 cannot change keys: one clean close at the limit ----
l0=$(limit_closes lim12)
s0=$(sent lim12)
k0=$(closed_ku lim12)
dsn="$(px_dsn lim12 "sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable")"
out=$(timeout 300 "$PGBIN/psql" -X -At -v ON_ERROR_STOP=1 -d "$dsn" \
	-c "copy (select repeat('x', 1000) from generate_series(1, 2000)) to stdout" 2>&1 >/dev/null)
# libpq's words for a close_notify where it expected data: the close was clean.
like "$out" "SSL connection has been closed unexpectedly" \
	"TLS 1.2, 32 records a key: a COPY TO STDOUT ends with close_notify ($(echo "$out" | head -n 1))"
sleep 0.3
is "$(($(limit_closes lim12) - l0)) $(($(closed_ku lim12) - k0)) $(($(sent lim12) - s0))" \
	"1 1 0" "... exactly one key_limit_close, closed as key_update, no KeyUpdate sent"
like "$(cat "${PX_LOG[lim12]}")" "hop failed: TLS 1.2 AES-GCM send key used for its limit of records" \
	"... with the reason in the log"
q_ok "TLS 1.2: a short session under the limit still works" "$dsn" "select 7" 7

done_testing
