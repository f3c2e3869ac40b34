#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Raw protocol probes (pgwire.py): bytes pipelined after SSLRequest, garbage, truncated,
# unterminated and oversized startup packets, Terminate before SSLRequest (each answered, or
# not, as PostgreSQL itself does), GSSENCRequest then SSLRequest, direct TLS
# with and without ALPN, while a healthy session keeps working.
. "$(dirname "$0")/lib.sh"
setup
pg_setup main

px_start px "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\""
P=${PX_PORT[px]}
wire() { "$PY" "$PGWIRE" 127.0.0.1 "$P" "$@" --ca "$CERTS/ca.crt"; }

# A healthy TLS session that queries every 50 ms until told to stop.
timeout 120 "$PY" - "$(px_dsn px "sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable")" "$T/stop" \
	>"$T/healthy.out" 2>&1 <<'PYEOF' &
import os, sys, time
import psycopg2
conn = psycopg2.connect(sys.argv[1])
conn.autocommit = True
cur = conn.cursor()
n = 0
while not os.path.exists(sys.argv[2]):
    cur.execute("select %s::int * 2", (n,))
    assert cur.fetchone()[0] == n * 2
    n += 1
    time.sleep(0.05)
print("healthy %d" % n)
PYEOF
healthy=$!
sleep 1

out=$(wire ssl-pipelined)
like "$out" "^error 08P01 received unencrypted data after SSL request" \
	"StartupMessage pipelined after SSLRequest: refused with 08P01"
# A wrong length gets no reply, as from PostgreSQL (it only logs "invalid length of startup
# packet"): the peer may be waiting for the answer to an SSLRequest it sent next.
out=$(wire garbage)
is "$out" "closed" "an HTTP request instead of a startup packet: closed without a reply"
out=$(wire oversized)
is "$out" "closed" "a 10001-byte startup packet: closed without a reply"
out=$(wire terminate-then-ssl)
is "$out" "closed" "Terminate before SSLRequest (node-postgres end() at once): closed, no 'E'"
out=$(wire truncated)
is "$out" "closed" "a truncated startup packet then EOF: closed without a reply"
out=$(wire unterminated)
like "$out" "^error 08P01 " "a startup packet without its terminator: 08P01"
out=$(wire bad-protocol)
like "$out" "^error 0A000 unsupported frontend protocol 9\.0" "protocol 9.0: 0A000"
# The same probes straight to PostgreSQL: pgktls answers (or not) as the server does.
for sc in garbage terminate-then-ssl truncated unterminated bad-protocol; do
	want=$("$PY" "$PGWIRE" 127.0.0.1 "${PG_PORT[main]}" "$sc" | cut -d' ' -f1-2)
	got=$(wire "$sc" | cut -d' ' -f1-2)
	is "$got" "$want" "$sc: answered as PostgreSQL answers it ($want)"
done
out=$(wire gss-then-ssl)
like "$out" "^ok TLSv1\.[23] 42$" "GSSENCRequest ('N') then SSLRequest ('S') then TLS works"
out=$(wire gss-then-ssl --no-alpn)
like "$out" "^ok TLSv1\.[23] 42$" "after SSLRequest, TLS without ALPN works (libpq 15 sends none)"
out=$(wire direct-tls)
like "$out" "^ok TLSv1\.[23] 42$" "direct TLS with ALPN postgresql works"
out=$(wire direct-tls --no-alpn)
unlike "$out" "^ok " "direct TLS without ALPN is refused"
like "$out" "handshake failed|closed|error" "direct TLS without ALPN: handshake or session fails"

# The same with openssl s_client, as a second opinion on ALPN.
alpn_probe() {
	timeout 10 openssl s_client -connect "127.0.0.1:$P" -servername localhost \
		-CAfile "$CERTS/ca.crt" "$@" </dev/null 2>&1
}
out=$(alpn_probe -alpn postgresql)
like "$out" "ALPN protocol: postgresql" "openssl s_client -alpn postgresql: ALPN negotiated"
out=$(alpn_probe -alpn http/1.1)
unlike "$out" "ALPN protocol: http/1.1" "openssl s_client -alpn http/1.1: not accepted"

touch "$T/stop"
wait "$healthy"
rc=$?
is "$rc $(cat "$T/healthy.out" | sed 's/ [0-9]*$//')" "0 healthy" \
	"a concurrent TLS session kept working through all of that"
[ "$rc" = 0 ] || diag "$(cat "$T/healthy.out")"
q_ok "new sessions still work afterwards" \
	"$(px_dsn px "sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable")" "select 1" 1

done_testing
