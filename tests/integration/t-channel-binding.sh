#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# The SCRAM channel-binding matrix of PROTOCOL.md, with libpq (psql) as the client.
. "$(dirname "$0")/lib.sh"
setup
pg_init main
pg_hba main "host all alice 127.0.0.1/32 scram-sha-256" "local all alice scram-sha-256"
pg_start main
pg_roles main

VERIFY="tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\""
# Client TLS, upstream plaintext.
px_start tls-plain "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"disable\""
# Client TLS, upstream unix socket.
px_start tls-unix "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"" "unix_socket = \"${PG_SOCK[main]}/.s.PGSQL.${PG_PORT[main]}\""
# Client plaintext, upstream TLS: pgktls must strip SCRAM-SHA-256-PLUS.
px_start plain-tls "$VERIFY"
# TLS both hops, pgktls's own certificate (differs from the server's).
px_start tls-tls "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
$VERIFY"
# TLS both hops, pgktls presents the server's own certificate and key.
px_start tls-tls-same "tls_certificate = \"$CERTS/server.crt\"
tls_private_key = \"$CERTS/server.key\"
$VERIFY"

CA="sslrootcert=$CERTS/ca.crt"
q_ok "client TLS + plaintext upstream: SCRAM works (channel_binding=prefer)" \
	"$(px_dsn tls-plain "sslmode=verify-full $CA")" "$SQL_SSL" f
q_ok "client TLS + unix-socket upstream: SCRAM works (channel_binding=prefer)" \
	"$(px_dsn tls-unix "sslmode=verify-full $CA")" "select current_user" alice
q_ok "client plaintext + TLS upstream: SCRAM works (-PLUS stripped)" \
	"$(px_dsn plain-tls "sslmode=disable")" "$SQL_SSL" t
q_ok "client plaintext + TLS upstream: SCRAM works with sslmode=prefer too" \
	"$(px_dsn plain-tls "sslmode=prefer")" "$SQL_SSL" t
q_fails "client plaintext + TLS upstream: channel_binding=require is refused by libpq" \
	"$(px_dsn plain-tls "sslmode=disable channel_binding=require")" "select 1" \
	"channel binding"
q_fails "TLS both hops, proxy certificate != server's: channel binding fails" \
	"$(px_dsn tls-tls "sslmode=verify-full $CA")" "select 1" "channel binding"
q_fails "TLS both hops, proxy certificate != server's: the error carries the HINT" \
	"$(px_dsn tls-tls "sslmode=verify-full $CA")" "select 1" "HINT: .*channel_binding=disable"
q_ok "TLS both hops, channel_binding=disable works" \
	"$(px_dsn tls-tls "sslmode=verify-full $CA channel_binding=disable")" "$SQL_SSL" t
q_ok "TLS both hops, proxy presents the server's certificate: channel_binding=require works" \
	"$(px_dsn tls-tls-same "sslmode=verify-full $CA channel_binding=require")" "$SQL_SSL" t
q_ok "TLS both hops, proxy presents the server's certificate: default prefer works" \
	"$(px_dsn tls-tls-same "sslmode=verify-full $CA")" "select current_user" alice
q_fails "wrong password through the proxy still fails" \
	"$(px_dsn tls-tls-same "sslmode=verify-full $CA password=wrong")" "select 1" \
	"password authentication failed"

done_testing
