#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# PostgreSQL `cert` auth behind pgktls: the proxy presents tls_server_certificate upstream.
. "$(dirname "$0")/lib.sh"
setup
pg_init main
pg_hba main "hostssl all alice,bob 127.0.0.1/32 cert" "hostnossl all all 127.0.0.1/32 reject"
pg_start main
pg_roles main

VERIFY="tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\""
px_start withcert "$VERIFY
tls_server_certificate = \"$CERTS/client.crt\"
tls_server_private_key = \"$CERTS/client.key\""
px_start nocert "$VERIFY"
px_start wrongca "$VERIFY
tls_server_certificate = \"$CERTS/other-client.crt\"
tls_server_private_key = \"$CERTS/other-client.key\""

C="sslmode=verify-full sslrootcert=$CERTS/ca.crt"
D="host=localhost hostaddr=127.0.0.1 dbname=postgres $C"
q_ok "cert auth: pgktls's client certificate (CN=alice) logs alice in, no password" \
	"$D port=${PX_PORT[withcert]} user=alice" "select current_user" alice
q_ok "cert auth: PostgreSQL sees the certificate pgktls presented" \
	"$D port=${PX_PORT[withcert]} user=alice" \
	"select client_dn from pg_stat_ssl where pid = pg_backend_pid()" "/CN=alice"
q_fails "cert auth: CN=alice does not log in bob" "$D port=${PX_PORT[withcert]} user=bob" \
	"select 1" 'certificate authentication failed for user "bob"'
q_fails "cert auth: without tls_server_certificate the server refuses" \
	"$D port=${PX_PORT[nocert]} user=alice" "select 1" \
	"certificate|connection requires a valid client certificate"
q_fails "cert auth: a certificate from an unknown CA is refused upstream" \
	"$D port=${PX_PORT[wrongca]} user=alice" "select 1" "certificate|unknown ca|upstream|TLS"
q_fails "the client's own certificate does not help: it stops at the proxy" \
	"$D port=${PX_PORT[nocert]} user=alice sslcert=$CERTS/client.crt sslkey=$CERTS/client.key" \
	"select 1" "certificate"

done_testing
