#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# tls_client_certificate = "optional": a client without a certificate gets in; one with a
# valid certificate gets in and the stats show its subject as verified; a certificate from
# another CA is refused with unknown_ca, a revoked one (tls_client_crl) with
# certificate_revoked. The setting without a client CA is a config error with file:line.
. "$(dirname "$0")/lib.sh"
setup
pg_setup main
STAT=${PGKTLS_BUILDDIR}/tools/pgktls-stat
[ -x "$STAT" ] || bail "pgktls-stat not found at $STAT"

make_crl "$T/bob.crl" ca "$CERTS/client-bob.crt"
SOCK=$T/stats.sock
px_start opt "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_client_ca_certificate = \"$CERTS/ca.crt\"
tls_client_certificate = \"optional\"
tls_client_crl = \"$T/bob.crl\"
tls_verify = \"disable\"
stats_socket = \"$SOCK\""

D=$(px_dsn opt "sslmode=verify-full sslrootcert=$CERTS/ca.crt")
NOCERT="sslcert=/nonexistent sslkey=/nonexistent"
q_ok "optional: a client without a certificate gets in" "$D $NOCERT" "select current_user" alice
q_ok "optional: a client with a valid certificate gets in" \
	"$D sslcert=$CERTS/client.crt sslkey=$CERTS/client.key" "select current_user" alice
q_fails "optional: a certificate from another CA is refused with unknown_ca" \
	"$D sslcert=$CERTS/other-client.crt sslkey=$CERTS/other-client.key" "select 1" \
	"alert unknown ca"
q_fails "optional: a revoked certificate is refused with certificate_revoked" \
	"$D sslcert=$CERTS/client-bob.crt sslkey=$CERTS/client-bob.key" "select 1" \
	"alert certificate revoked"
out=$( (sleep 1) | timeout 10 openssl s_client -starttls postgres \
	-connect "127.0.0.1:${PX_PORT[opt]}" -CAfile "$CERTS/ca.crt" \
	-cert "$CERTS/other-client.crt" -key "$CERTS/other-client.key" 2>&1)
like "$out" "alert unknown ca.*alert number 48" \
	"optional: openssl s_client with another CA's certificate receives alert 48 (unknown_ca)"
q_ok "optional: a plaintext client gets in too (no certificate is needed)" \
	"$(px_dsn opt sslmode=disable)" "select 1" 1

# Two sessions held open, one with a certificate and one without: what do the stats say?
PGCONNECT_TIMEOUT=10 timeout 30 "$PGBIN/psql" -X -Atq \
	-d "$D sslcert=$CERTS/client.crt sslkey=$CERTS/client.key application_name=withcert" \
	-c "select pg_sleep(5)" >/dev/null 2>"$T/with.err" &
WITH=$!
PGCONNECT_TIMEOUT=10 timeout 30 "$PGBIN/psql" -X -Atq -d "$D $NOCERT application_name=without" \
	-c "select pg_sleep(5)" >/dev/null 2>"$T/without.err" &
WITHOUT=$!
# Both relaying (the stats list every connection; wait until two are in "relay").
for ((i = 0; i < 50; i++)); do
	"$STAT" -s "$SOCK" --json >"$T/conns.json" 2>/dev/null
	n=$("$PY" -c 'import json,sys
print(sum(c["state"] == "relay" for c in json.load(open(sys.argv[1]))["connections"]))' \
		"$T/conns.json" 2>/dev/null)
	[ "${n:-0}" = 2 ] && break
	sleep 0.1
done
got=$("$PY" - "$T/conns.json" <<'EOF'
import json, sys
conns = json.load(open(sys.argv[1]))["connections"]
print(sorted((c["client"]["peer_subject"] or "-", c["client"]["peer_verified"]) for c in conns))
EOF
)
is "$got" "[('-', False), ('/CN=alice', True)]" \
	"stats: one connection with a verified certificate (/CN=alice), one without"
wait "$WITH"
ok $? "the session with a certificate ran to the end"
wait "$WITHOUT"
ok $? "the session without a certificate ran to the end"
revoked=$("$STAT" -s "$SOCK" --json | "$PY" -c \
	'import json,sys; print(json.load(sys.stdin)["totals"]["handshakes"]["client"]["revoked"])')
is "$revoked" 1 "stats: handshakes.client.revoked counts the revoked certificate"

# required (the default with a client CA) still refuses a client without a certificate.
px_start req "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_client_ca_certificate = \"$CERTS/ca.crt\"
tls_client_certificate = \"required\"
tls_verify = \"disable\""
q_fails "required: a client without a certificate is refused" \
	"$(px_dsn req "sslmode=verify-full sslrootcert=$CERTS/ca.crt") $NOCERT" "select 1" \
	"alert certificate required"

# The setting means nothing without a client CA: an error with file and line.
printf '[general]\ntls_certificate = "%s"\ntls_private_key = "%s"\n%s\n' "$CERTS/proxy.crt" \
	"$CERTS/proxy.key" 'tls_client_certificate = "optional"' >"$T/noca.toml"
out=$(timeout 20 "$PGKTLS_BIN" --check-config -c "$T/noca.toml" 2>&1)
is "$?" 1 "--check-config: tls_client_certificate without tls_client_ca_certificate exits 1"
like "$out" "^$T/noca.toml:4: tls_client_certificate: needs tls_client_ca_certificate" \
	"... naming file:line and the key"

done_testing
