#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# The client hop: every libpq sslmode against pgktls, right and wrong CA, right and wrong
# host name, a certificate chain with an intermediate, and pgktls without a certificate.
. "$(dirname "$0")/lib.sh"
setup
pg_setup main

px_start tls "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"disable\""
px_start chain "tls_certificate = \"$CERTS/chain-full.crt\"
tls_private_key = \"$CERTS/chain-leaf.key\"
tls_verify = \"disable\""
px_start leafonly "tls_certificate = \"$CERTS/chain-leaf.crt\"
tls_private_key = \"$CERTS/chain-leaf.key\"
tls_verify = \"disable\""
px_start notls "tls_verify = \"disable\""

D=$(px_dsn tls)
CA=sslrootcert=$CERTS/ca.crt
SSLQ="select ssl, version from pg_stat_ssl where pid = pg_backend_pid()"

q_ok "sslmode=disable works" "$D sslmode=disable" "select 1" 1
q_ok "sslmode=allow works" "$D sslmode=allow" "select 1" 1
q_ok "sslmode=prefer works" "$D sslmode=prefer" "select 1" 1
q_ok "sslmode=require works" "$D sslmode=require" "select 1" 1
q_ok "sslmode=verify-ca with the right CA works" "$D sslmode=verify-ca $CA" "select 1" 1
q_ok "sslmode=verify-full with the right CA and host works" "$D sslmode=verify-full $CA" \
	"select current_user" alice
q_fails "sslmode=verify-ca with the wrong CA fails" \
	"$D sslmode=verify-ca sslrootcert=$CERTS/other-ca.crt" "select 1" "certificate verify failed"
q_fails "sslmode=verify-full with the wrong CA fails" \
	"$D sslmode=verify-full sslrootcert=$CERTS/other-ca.crt" "select 1" \
	"certificate verify failed"
WRONGHOST="host=wrong.example hostaddr=127.0.0.1 port=${PX_PORT[tls]} dbname=postgres"
WRONGHOST+=" user=alice password=alice-pw"
q_fails "sslmode=verify-full with the wrong host name fails" \
	"$WRONGHOST sslmode=verify-full $CA" "select 1" 'does not match host name "wrong.example"'
q_ok "sslmode=verify-ca does not check the host name" "$WRONGHOST sslmode=verify-ca $CA" \
	"select 1" 1
q_ok "sslmode=verify-full by IP address (SAN 127.0.0.1) works" \
	"host=127.0.0.1 port=${PX_PORT[tls]} dbname=postgres user=alice password=alice-pw sslmode=verify-full $CA" \
	"select 1" 1

# The client hop is really TLS: libpq reports it.
out=$(timeout 30 "$PGBIN/psql" -X -d "$D sslmode=verify-full $CA" -c '\conninfo' 2>&1)
like "$out" 'SSL connection \(protocol: TLSv1\.[23]' "\\conninfo reports a TLS client hop"
out=$(timeout 30 "$PGBIN/psql" -X -d "$D sslmode=disable" -c '\conninfo' 2>&1)
unlike "$out" 'SSL connection' "sslmode=disable gives a plaintext client hop"
# ... and the upstream hop is plaintext, as configured (tls_verify = disable).
q_ok "tls_verify=disable: PostgreSQL sees a plaintext connection" \
	"$D sslmode=verify-full $CA" "$SQL_SSL" f

# TLS 1.2 and 1.3 both work on the client hop.
q_ok "ssl_max_protocol_version=TLSv1.2 works" \
	"$D sslmode=verify-full $CA ssl_max_protocol_version=TLSv1.2" "select 1" 1
q_ok "ssl_min_protocol_version=TLSv1.3 works" \
	"$D sslmode=verify-full $CA ssl_min_protocol_version=TLSv1.3" "select 1" 1

# An intermediate CA: pgktls presents leaf + intermediate, the client trusts only the root.
DC=$(px_dsn chain)
q_ok "verify-full with only the root CA works when pgktls sends the chain" \
	"$DC sslmode=verify-full sslrootcert=$CERTS/root2-ca.crt" "select 1" 1
q_fails "verify-full against the leaf-only certificate fails (no intermediate)" \
	"$(px_dsn leafonly) sslmode=verify-full sslrootcert=$CERTS/root2-ca.crt" "select 1" \
	"certificate verify failed"

# Without a certificate pgktls answers 'N': prefer falls back, require fails.
DN=$(px_dsn notls)
q_ok "no certificate: sslmode=prefer falls back to plaintext" "$DN sslmode=prefer" "select 1" 1
q_fails "no certificate: sslmode=require fails" "$DN sslmode=require" "select 1" \
	"server does not support SSL"
out=$("$PY" "$PGWIRE" 127.0.0.1 "${PX_PORT[notls]}" ssl-request)
is "$out" "reply N" "no certificate: SSLRequest gets 'N'"
out=$("$PY" "$PGWIRE" 127.0.0.1 "${PX_PORT[tls]}" ssl-request)
is "$out" "reply S" "with a certificate: SSLRequest gets 'S'"

done_testing
