#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# TLS versions, TLS 1.2 ciphers and TLS 1.3 ciphersuites on both hops, as configured;
# startup_timeout for a client that never speaks.
. "$(dirname "$0")/lib.sh"
setup
pg_setup main

CERT="tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\""
VERIFY="tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\""
px_start tls12 "$CERT
$VERIFY
tls_max_version = \"TLSv1.2\"
tls_ciphers = \"ECDHE-ECDSA-CHACHA20-POLY1305\"
tls_server_max_version = \"TLSv1.2\"
tls_server_ciphers = \"ECDHE-ECDSA-AES128-GCM-SHA256\""
px_start tls13 "$CERT
$VERIFY
tls_min_version = \"TLSv1.3\"
tls_ciphersuites = \"TLS_CHACHA20_POLY1305_SHA256\"
tls_server_min_version = \"TLSv1.3\"
tls_server_ciphersuites = \"TLS_AES_128_GCM_SHA256\""
px_start timeout "$CERT
$VERIFY
startup_timeout = 1000"

C="sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable"
conninfo() { timeout 30 "$PGBIN/psql" -X -d "$(px_dsn "$1" "$C")" -c '\conninfo' 2>&1; }
UPQ="select version || ' ' || cipher from pg_stat_ssl where pid = pg_backend_pid()"

like "$(conninfo tls12)" "SSL connection \(protocol: TLSv1\.2, cipher: ECDHE-ECDSA-CHACHA20-POLY1305" \
	"tls_max_version + tls_ciphers: the client hop is TLS 1.2 with ChaCha20"
q_ok "tls_server_max_version + tls_server_ciphers: the upstream hop is TLS 1.2 AES-128-GCM" \
	"$(px_dsn tls12 "$C")" "$UPQ" "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256"
like "$(conninfo tls13)" "SSL connection \(protocol: TLSv1\.3, cipher: TLS_CHACHA20_POLY1305_SHA256" \
	"tls_min_version + tls_ciphersuites: the client hop is TLS 1.3 with ChaCha20"
q_ok "tls_server_ciphersuites: the upstream hop is TLS 1.3 AES-128-GCM" \
	"$(px_dsn tls13 "$C")" "$UPQ" "TLSv1.3 TLS_AES_128_GCM_SHA256"
q_fails "tls_min_version = TLSv1.3 refuses a TLS 1.2-only client" \
	"$(px_dsn tls13 "$C ssl_max_protocol_version=TLSv1.2")" "select 1" "SSL|TLS|version"
q_fails "tls_max_version = TLSv1.2 refuses a TLS 1.3-only client" \
	"$(px_dsn tls12 "$C ssl_min_protocol_version=TLSv1.3")" "select 1" "SSL|TLS|version"

# Bulk data through the non-default ciphers (10 MB each way, checked end to end).
for px in tls12 tls13; do
	out=$(q "$(px_dsn "$px" "$C")" "select md5(string_agg(md5(i::text), '')) from
		generate_series(1, 300000) i")
	want=$(pg_sql main "select md5(string_agg(md5(i::text), '')) from generate_series(1, 300000) i")
	is "$out" "$want" "$px: 10 MB result set arrives intact"
	out=$("$PY" -c 'import sys
for i in range(200000): sys.stdout.write("%d\t%s\n" % (i, "x" * (i % 97)))' |
		timeout 60 "$PGBIN/psql" -X -Atq -d "$(px_dsn "$px" "$C")" \
			-c "create temp table c (i int, t text)" -c "copy c from stdin" \
			-c "select count(*), sum(length(t)) from c" 2>&1)
	want=$("$PY" -c 'print("200000|%d" % sum(i % 97 for i in range(200000)))')
	is "$out" "$want" "$px: COPY FROM arrives intact"
done

# A client that connects and says nothing is dropped after startup_timeout.
out=$(timeout 20 "$PY" - "${PX_PORT[timeout]}" <<'PYEOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
t0 = time.monotonic()
try:
    data = s.recv(1)
except socket.timeout:
    print("still open after 10 s")
    sys.exit()
except ConnectionResetError:
    data = b""
took = time.monotonic() - t0
print("dropped %s" % ("in time" if 0.5 < took < 5 else "after %.1f s" % took))
PYEOF
)
is "$out" "dropped in time" "startup_timeout = 1000: a silent client is dropped after about 1 s"
out=$(timeout 20 "$PY" - "${PX_PORT[timeout]}" <<'PYEOF'
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(struct.pack("!II", 8, 80877103))
assert s.recv(1) == b"S"
s.settimeout(10)
t0 = time.monotonic()
try:
    data = s.recv(1)  # the handshake never starts
except socket.timeout:
    print("still open after 10 s")
    sys.exit()
except ConnectionResetError:
    data = b""
took = time.monotonic() - t0
print("dropped %s" % ("in time" if 0.5 < took < 5 else "after %.1f s" % took))
PYEOF
)
is "$out" "dropped in time" "startup_timeout = 1000: a client stalled before its TLS handshake is dropped"
q_ok "startup_timeout: a normal client is unaffected" "$(px_dsn timeout "$C")" "select 1" 1

done_testing
