#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Generated certificates, as a client sees them: `pgktls --generate-cert DIR` writes a CA,
# server and client set that libpq verifies with sslmode=verify-full (and mutual TLS), and
# tls_generate_self_signed serves a certificate that works with sslmode=require and, pinned
# as the root after fetching it from the server, with sslmode=verify-full.
. "$(dirname "$0")/lib.sh"
setup
pg_setup main

# ---- pgktls --generate-cert DIR
G=$T/gen
out=$("$PGKTLS_BIN" --generate-cert "$G" -H localhost,127.0.0.1 2>&1)
ok $? "--generate-cert exits 0" || diag "$out"
like "$out" "$G/ca.pem" "--generate-cert says what it wrote"
modes=
for f in ca.pem ca.key server.pem server-chain.pem server.key client.pem client.key; do
	modes+="$f:$(stat -c %a "$G/$f" 2>/dev/null) "
done
want="ca.pem:644 ca.key:600 server.pem:644 server-chain.pem:644 server.key:600 "
want+="client.pem:644 client.key:600 "
is "$modes" "$want" "--generate-cert writes every file, keys 0600"
is "$(stat -c %a "$G")" 700 "--generate-cert creates its directory 0700"
out=$(openssl verify -CAfile "$G/ca.pem" "$G/server.pem" 2>&1)
ok $? "openssl verify: the server certificate chains to the generated CA" || diag "$out"
before=$(cat "$G/ca.key")
out=$("$PGKTLS_BIN" --generate-cert "$G" 2>&1)
rc=$?
is "$rc" 1 "--generate-cert into a full directory fails"
like "$out" "$G/ca.pem: already exists: refusing to overwrite" "... and names the file in the way"
is "$(cat "$G/ca.key")" "$before" "... and leaves the existing key alone"

px_start gen "tls_certificate = \"$G/server-chain.pem\"
tls_private_key = \"$G/server.key\"
tls_verify = \"disable\""
D=$(px_dsn gen)
q_ok "generated set: sslmode=verify-full with ca.pem and host=localhost works" \
	"$D sslmode=verify-full sslrootcert=$G/ca.pem" "select current_user" alice
BYADDR="host=127.0.0.1 port=${PX_PORT[gen]} dbname=postgres user=alice password=alice-pw"
q_ok "generated set: sslmode=verify-full by address (IP SAN 127.0.0.1) works" \
	"$BYADDR sslmode=verify-full sslrootcert=$G/ca.pem" "select 1" 1
WRONGHOST="host=wrong.example hostaddr=127.0.0.1 port=${PX_PORT[gen]} dbname=postgres"
WRONGHOST+=" user=alice password=alice-pw"
q_fails "generated set: sslmode=verify-full with the wrong host name fails" \
	"$WRONGHOST sslmode=verify-full sslrootcert=$G/ca.pem" "select 1" \
	'does not match host name "wrong.example"'
q_fails "generated set: another CA does not verify it" \
	"$D sslmode=verify-full sslrootcert=$CERTS/ca.crt" "select 1" "certificate verify failed"

# The client certificate works for mutual TLS against the same CA.
px_start genmtls "tls_certificate = \"$G/server-chain.pem\"
tls_private_key = \"$G/server.key\"
tls_client_ca_certificate = \"$G/ca.pem\"
tls_verify = \"disable\""
DM=$(px_dsn genmtls "sslmode=verify-full sslrootcert=$G/ca.pem")
q_ok "generated set: client.pem passes mutual TLS" \
	"$DM sslcert=$G/client.pem sslkey=$G/client.key" "select 1" 1
q_fails "generated set: mutual TLS without a client certificate fails" \
	"$DM sslcert=/nonexistent sslkey=/nonexistent" "select 1" "certificate|alert|closed"

# ---- tls_generate_self_signed = true
px_start self "tls_generate_self_signed = true
tls_client_required = true
tls_verify = \"disable\""
DS=$(px_dsn self)
q_ok "self-signed: sslmode=require works" "$DS sslmode=require" "select 1" 1
q_fails "self-signed: sslmode=disable is refused (tls_client_required)" "$DS sslmode=disable" \
	"select 1" "TLS|SSL|encrypt"
# Fetch the certificate from the server, as a user pinning it would.
echo | timeout 10 openssl s_client -starttls postgres -connect "127.0.0.1:${PX_PORT[self]}" \
	-showcerts 2>/dev/null | openssl x509 -out "$T/pinned.pem" 2>/dev/null
ok $? "self-signed: openssl s_client -starttls postgres fetches the certificate"
fp=$(openssl x509 -in "$T/pinned.pem" -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//')
like "$(cat "${PX_LOG[self]}")" "SHA-256 fingerprint ${fp:-none}\$" \
	"self-signed: the log shows the served certificate's fingerprint"
q_ok "self-signed: sslmode=verify-full with the fetched certificate as root, host=localhost" \
	"$DS sslmode=verify-full sslrootcert=$T/pinned.pem" "select current_user" alice
WRONGHOST="host=wrong.example hostaddr=127.0.0.1 port=${PX_PORT[self]} dbname=postgres"
WRONGHOST+=" user=alice password=alice-pw"
q_fails "self-signed: sslmode=verify-full with the wrong host name fails" \
	"$WRONGHOST sslmode=verify-full sslrootcert=$T/pinned.pem" "select 1" \
	'does not match host name "wrong.example"'
q_fails "self-signed: sslmode=verify-full with an unrelated root fails" \
	"$DS sslmode=verify-full sslrootcert=$G/ca.pem" "select 1" "certificate verify failed"

# A machine whose host name was never set: gethostname() says "(none)", which names
# nobody. The certificate leaves it out; the start must not fail over it.
if [ "$(id -u)" = 0 ] && unshare -u true 2>/dev/null; then
	cat >"$T/noname.sh" <<EOF
#!/bin/sh
exec unshare -u $PY -c 'import os, socket, sys
socket.sethostname("(none)")
os.execv(sys.argv[1], sys.argv[1:])' "$PGKTLS_BIN" "\$@"
EOF
	chmod +x "$T/noname.sh"
	real_bin=$PGKTLS_BIN
	PGKTLS_BIN=$T/noname.sh
	px_start noname "tls_generate_self_signed = true
tls_verify = \"disable\""
	PGKTLS_BIN=$real_bin
	q_ok "host name '(none)': the self-signed certificate still serves" \
		"$(px_dsn noname) sslmode=require" "select 1" 1
	like "$(cat "${PX_LOG[noname]}")" "host name '\(none\)' is not a DNS name" \
		"... and the log says the host name was left out"
else
	skip 3 "changing the host name needs root and unshare -u"
fi

# Both a certificate and tls_generate_self_signed: ambiguous, refused.
out=$("$PGKTLS_BIN" -o tls_generate_self_signed=true --cert "$G/server.pem" \
	--key "$G/server.key" --check-config 2>&1)
rc=$?
is "$rc" 1 "tls_generate_self_signed with tls_certificate is refused"
like "$out" "tls_generate_self_signed: set together with tls_certificate" "... saying why"

done_testing
