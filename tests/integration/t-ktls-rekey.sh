#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# TLS 1.3 KeyUpdate with kTLS (`ktls = "required"`), both hops, both directions, where the
# kernel has kTLS (make check-ktls runs it in a VM under stock Debian kernels):
#   1. pgktls's own KeyUpdates at a send key's record limit (lowered to 32 records by the
#      test-only PGKTLS_TEST_REKEY_RECORDS): COPYs each way stay byte for byte intact while
#      both hops rekey their send side many times;
#   2. TLS 1.2 at the same limit: it cannot change keys, so the connection closes cleanly;
#   3. a KeyUpdate request whose answer meets a full socket (EAGAIN): the answer stays due
#      and goes out before the data behind it (tls_poke stalled);
#   4. an upstream that sends KeyUpdates mid-COPY (tls_upstream; PostgreSQL never does),
#      half of them asking for an answer.
# On Linux 6.14+ the kernel rekeys (TlsTxRekeyOk, TlsRxRekeyOk in /proc/net/tls_stat) and
# pgktls counts it; before 6.14 every case that needs a new key ends the connection
# cleanly with the key_update reason (the documented behaviour), and that is asserted.
. "$(dirname "$0")/lib.sh"
setup
need_ktls
STAT=$PGKTLS_BUILDDIR/tools/pgktls-stat
POKE=$PGKTLS_BUILDDIR/tests/integration/tls_poke
UPS=$PGKTLS_BUILDDIR/tests/integration/tls_upstream
for b in "$STAT" "$POKE" "$UPS"; do
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

# Linux 6.14 added kTLS rekeying (a second TLS_TX/TLS_RX key on a socket).
kv=$(uname -r | awk -F. '{ print $1 * 1000 + $2 }')
REKEY=0
[ "$kv" -ge 6014 ] && REKEY=1
diag "Linux $(uname -r): kernel rekeying expected: $([ $REKEY = 1 ] && echo yes || echo no)"

CERT="tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
ktls = \"required\"
startup_timeout = 60000
connect_timeout = 30000"
v13="tls_min_version = \"TLSv1.3\"
tls_server_min_version = \"TLSv1.3\"
tls_ciphersuites = \"TLS_AES_128_GCM_SHA256\"
tls_server_ciphersuites = \"TLS_AES_128_GCM_SHA256\""
v12="tls_max_version = \"TLSv1.2\"
tls_server_max_version = \"TLSv1.2\"
tls_ciphers = \"ECDHE-ECDSA-AES128-GCM-SHA256\"
tls_server_ciphers = \"ECDHE-ECDSA-AES128-GCM-SHA256\""

# Send keys that seal 32 records each: many KeyUpdates in a few MB.
PGKTLS_TEST_REKEY_RECORDS=32 px_start lim13 "$CERT
stats_socket = \"$T/lim13.sock\"
$v13" || bail "pgktls lim13 did not start"
PGKTLS_TEST_REKEY_RECORDS=32 px_start lim12 "$CERT
stats_socket = \"$T/lim12.sock\"
$v12" || bail "pgktls lim12 did not start"
px_start ans "$CERT
stats_socket = \"$T/ans.sock\"
$v13" || bail "pgktls ans did not start"

if [ $REKEY = 1 ]; then
	like "$(cat "${PX_LOG[lim13]}")" "kTLS: this kernel can rekey" \
		"pgktls's probe finds kTLS rekeying on Linux $(uname -r)"
else
	like "$(cat "${PX_LOG[lim13]}")" "kTLS: this kernel cannot rekey \(before Linux 6.14\)" \
		"pgktls's probe finds no kTLS rekeying on Linux $(uname -r)"
fi

# ---- 1. pgktls's own KeyUpdates at the record limit, both hops ----
dsn() { px_dsn "$1" "sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable"; }
pg_sql main "create table big (line text); grant all on big to alice" >/dev/null
MB=${PGKTLS_REKEY_COPY_MB:-8}
openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 0 </dev/zero 2>/dev/null |
	head -c $((MB * 3 / 4 * 1024 * 1024)) | base64 -w 1000 >"$T/big.txt"
size=$(stat -c %s "$T/big.txt")
lines=$(wc -l <"$T/big.txt")
want=$(sha256sum <"$T/big.txt" | cut -d' ' -f1)
s0=$(sent lim13)
tx0=$(tls_stat TlsTxRekeyOk)
d0=$(tls_stat TlsDecryptError)
k0=$(closed_ku lim13)
l0=$(limit_closes lim13)
out=$(timeout 300 "$PGBIN/psql" -X -At -v ON_ERROR_STOP=1 -d "$(dsn lim13)" \
	-c "copy big from stdin" <"$T/big.txt" 2>&1)
if [ $REKEY = 1 ]; then
	is "$out" "COPY $lines" "TLS 1.3, 32 records a key: COPY FROM STDIN of $MB MB completes"
	is "$(pg_sql main "select count(*), sum(length(line) + 1) from big")" "$lines|$size" \
		"... every line and byte arrived"
	s1=$(sent lim13)
	ok $((s1 - s0 >= size / 16384 / 32 / 2 ? 0 : 1)) \
		"... pgktls sent $((s1 - s0)) KeyUpdates of its own on the upstream hop"
	via=$(copy_sha "$(dsn lim13)" big)
	is "$via" "$want" "... COPY TO STDOUT: byte for byte the file sent, through the client hop"
	s2=$(sent lim13)
	ok $((s2 - s1 >= size / 16384 / 32 / 2 ? 0 : 1)) \
		"... pgktls sent $((s2 - s1)) KeyUpdates of its own on the client hop"
	tx1=$(tls_stat TlsTxRekeyOk)
	ok $((tx1 - tx0 >= s2 - s0 ? 0 : 1)) \
		"... the kernel rekeyed each: TlsTxRekeyOk +$((tx1 - tx0)) for $((s2 - s0)) sent"
	is "$(tls_stat TlsDecryptError) $(closed_ku lim13) $(limit_closes lim13)" "$d0 $k0 $l0" \
		"... no decrypt error, no connection closed for its key"
else
	unlike "$out" "^COPY " "TLS 1.3, 32 records a key, Linux $(uname -r): the COPY does not complete"
	sleep 0.5
	is "$(limit_closes lim13) $(closed_ku lim13) $(sent lim13)" "$((l0 + 1)) $((k0 + 1)) $s0" \
		"... the connection closes at the limit, counted in key_limit_closes, closed as key_update"
	like "$(cat "${PX_LOG[lim13]}")" "hop failed: kTLS send key reached its record limit \(32 records\): this kernel cannot rekey kTLS" \
		"... with the reason in the log"
fi

# ---- 2. TLS 1.2 cannot change keys: a clean close at the limit on every kernel ----
k0=$(closed_ku lim12)
l0=$(limit_closes lim12)
# (Data of its own: before 6.14 part 1 left the table empty.)
out=$(timeout 300 "$PGBIN/psql" -X -At -v ON_ERROR_STOP=1 -d "$(dsn lim12)" \
	-c "copy (select repeat('x', 1000) from generate_series(1, 2000)) to stdout" 2>&1 >/dev/null)
# libpq's words for a close_notify where it expected data: the close was clean.
like "$out" "SSL connection has been closed unexpectedly" \
	"TLS 1.2, 32 records a key: a COPY TO STDOUT ends with close_notify ($(echo "$out" | head -n 1))"
sleep 0.5
is "$(limit_closes lim12) $(closed_ku lim12)" "$((l0 + 1)) $((k0 + 1))" \
	"... the connection closes at the limit, counted in key_limit_closes, closed as key_update"
like "$(cat "${PX_LOG[lim12]}")" "hop failed: kTLS send key reached its record limit \(32 records\): TLS 1.2 cannot change keys" \
	"... with the reason in the log"
q_ok "TLS 1.2: a short session under the limit still works" "$(dsn lim12)" "select 7" 7

# ---- 3. a KeyUpdate answer that meets a full socket (EAGAIN) ----
want3=$(md5_series_sha256 600000)
rx0=$(tls_stat TlsRxRekeyOk)
tx0=$(tls_stat TlsTxRekeyOk)
k0=$(closed_ku ans)
out=$(timeout 300 "$POKE" stalled "${PX_PORT[ans]}" TLSv1.3 2>&1)
diag "$out"
like "$out" "stalled with [1-9][0-9]* bytes unread" "a client that does not read fills pgktls's socket to it"
if [ $REKEY = 1 ]; then
	a=$(echo "$out" | sed -n 's/^answered after \([0-9]*\) of \([0-9]*\) bytes$/\1 \2/p')
	ok $([ -n "$a" ] && [ "${a% *}" -lt $((${a#* } / 2)) ] && echo 0 || echo 1) \
		"... its KeyUpdate request is answered once the socket drains, before the data behind it ($a)"
	like "$out" "sha256 $want3" "... and the 19 MB COPY arrives intact around it"
	like "$out" "query 2" "... and the session goes on"
	ok $(($(tls_stat TlsRxRekeyOk) > rx0 && $(tls_stat TlsTxRekeyOk) > tx0 ? 0 : 1)) \
		"... TlsRxRekeyOk +$(($(tls_stat TlsRxRekeyOk) - rx0)), TlsTxRekeyOk +$(($(tls_stat TlsTxRekeyOk) - tx0))"
else
	like "$out" "copy: eof \(close_notify\)" \
		"... the KeyUpdate ends the session cleanly on Linux $(uname -r) (close_notify)"
	sleep 0.5
	is "$(closed_ku ans)" "$((k0 + 1))" "... closed as key_update"
fi

# ---- 4. an upstream that sends KeyUpdates mid-COPY ----
UPORT=$(port_alloc)
EVERY=$((256 * 1024))
"$UPS" "$UPORT" "$CERTS/server.crt" "$CERTS/server.key" "$EVERY" >"$T/ups.log" 2>&1 &
ups=$!
for ((i = 0; i < 100; i++)); do grep -qs listening "$T/ups.log" && break; sleep 0.1; done
px_start up "$CERT
stats_socket = \"$T/up.sock\"
$v13" "host = \"127.0.0.1\"
port = $UPORT" || bail "pgktls up did not start"
r0=$(count up "['control_records']['key_updates_rekeyed']")
f0=$(count up "['control_records']['key_updates_refused']")
rx0=$(tls_stat TlsRxRekeyOk)
tx0=$(tls_stat TlsTxRekeyOk)
d0=$(tls_stat TlsDecryptError)
k0=$(closed_ku up)
out=$(timeout 300 "$PGBIN/psql" -X -At -v ON_ERROR_STOP=1 -d "$(dsn up)" \
	-c "copy big from stdin" <"$T/big.txt" 2>&1)
if [ $REKEY = 1 ]; then
	is "$out" "COPY $size" "an upstream that sends KeyUpdates: COPY FROM STDIN of $MB MB completes"
	via=$(copy_sha "$(dsn up)" big)
	is "$via" "$want" "... and COPY TO STDOUT brings the same bytes back"
	st=$(timeout 60 "$PGBIN/psql" -X -At -d "$(dsn up)" -c "select stats" 2>&1)
	diag "upstream: $st"
	S=0 R=0 K=0 B=0 H=
	[[ $st == sent* ]] && read -r _ S _ R _ K _ B _ H <<<"$st"
	is "$B $H" "$size $want" "... the upstream received every byte, intact"
	ok $((S >= 2 * size / EVERY - 2 && R * 2 >= S ? 0 : 1)) \
		"... it sent $S KeyUpdates ($R of them update_requested)"
	ok $((K >= 1 && K <= R ? 0 : 1)) "... pgktls answered its requests: $K KeyUpdates back"
	sleep 0.3
	is "$(($(count up "['control_records']['key_updates_rekeyed']") - r0))" "$S" \
		"... pgktls followed every one (key_updates_rekeyed)"
	rx1=$(tls_stat TlsRxRekeyOk)
	tx1=$(tls_stat TlsTxRekeyOk)
	ok $((rx1 - rx0 >= S && tx1 - tx0 >= K ? 0 : 1)) \
		"... TlsRxRekeyOk +$((rx1 - rx0)), TlsTxRekeyOk +$((tx1 - tx0))"
	is "$(tls_stat TlsDecryptError) $(closed_ku up)" "$d0 $k0" "... no decrypt error, no key_update close"
else
	unlike "$out" "^COPY " "an upstream that sends a KeyUpdate: the COPY ends on Linux $(uname -r)"
	sleep 0.5
	is "$(count up "['control_records']['key_updates_refused']") $(closed_ku up)" \
		"$((f0 + 1)) $((k0 + 1))" "... counted as key_updates_refused, closed as key_update"
	like "$(cat "${PX_LOG[up]}")" "server hop failed: peer sent a TLS 1.3 KeyUpdate and this kernel cannot rekey" \
		"... with the reason in the log"
fi
kill "$ups" 2>/dev/null
wait "$ups" 2>/dev/null
rm -f "$T/big.txt"

done_testing
