#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Mutual TLS on the client hop (tls_client_ca_certificate), and tls_client_required.
. "$(dirname "$0")/lib.sh"
setup
pg_setup main

px_start mtls "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_client_ca_certificate = \"$CERTS/ca.crt\"
tls_verify = \"disable\""
px_start mtls-req "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_client_ca_certificate = \"$CERTS/ca.crt\"
tls_client_required = true
tls_verify = \"disable\""
px_start req "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_client_required = true
tls_verify = \"disable\""

CA=sslrootcert=$CERTS/ca.crt
D=$(px_dsn mtls "sslmode=verify-full $CA")
q_ok "mTLS: a client certificate from the trusted CA is accepted" \
	"$D sslcert=$CERTS/client.crt sslkey=$CERTS/client.key" "select current_user" alice
q_fails "mTLS: a client without a certificate is rejected" \
	"$D sslcert=/nonexistent sslkey=/nonexistent" "select 1" "certificate|SSL|closed"
q_fails "mTLS: a client certificate from another CA is rejected" \
	"$D sslcert=$CERTS/other-client.crt sslkey=$CERTS/other-client.key" "select 1" \
	"certificate|SSL|closed|unknown ca"
# A plaintext client does not present a certificate at all: mutual TLS alone
# refuses it, as does tls_client_required (next instance).
q_fails "mTLS: a plaintext client is rejected (a client certificate implies TLS)" \
	"$(px_dsn mtls sslmode=disable)" "select 1" "TLS is required"
q_fails "mTLS + tls_client_required: a plaintext client is rejected" \
	"$(px_dsn mtls-req sslmode=disable)" "select 1" "TLS is required"
q_ok "mTLS + tls_client_required: a client certificate from the trusted CA is accepted" \
	"$(px_dsn mtls-req "sslmode=verify-full $CA") sslcert=$CERTS/client.crt sslkey=$CERTS/client.key" \
	"select current_user" alice
q_fails "mTLS + tls_client_required: a client without a certificate is rejected" \
	"$(px_dsn mtls-req "sslmode=require") sslcert=/nonexistent sslkey=/nonexistent" "select 1" \
	"certificate|SSL|closed"
q_ok "mTLS: the proxy still works after rejected clients" \
	"$D sslcert=$CERTS/client.crt sslkey=$CERTS/client.key" "select 1" 1

# tls_client_required: plaintext startup refused with the documented text and SQLSTATE.
q_fails "tls_client_required: sslmode=disable is refused with 'TLS is required'" \
	"$(px_dsn req sslmode=disable)" "select 1" "TLS is required"
out=$("$PY" "$PGWIRE" 127.0.0.1 "${PX_PORT[req]}" plain-startup --user alice)
like "$out" "^error 28000 TLS is required" "tls_client_required: FATAL 28000 on the wire"
out=$("$PY" "$PGWIRE" 127.0.0.1 "${PX_PORT[req]}" gss-plain --user alice)
like "$out" "^error 28000 TLS is required" \
	"tls_client_required: GSSENCRequest ('N') then plaintext startup is refused too"
q_ok "tls_client_required: sslmode=require is accepted" "$(px_dsn req sslmode=require)" \
	"select 1" 1
q_ok "tls_client_required: sslmode=verify-full is accepted" \
	"$(px_dsn req "sslmode=verify-full $CA")" "select current_user" alice
q_ok "tls_client_required: sslmode=prefer upgrades to TLS" \
	"$(px_dsn req sslmode=prefer)" "select 1" 1
# Cancel requests come in plaintext (libpq 15 PQcancel): they must still be accepted.
out=$("$PY" "$PGWIRE" 127.0.0.1 "${PX_PORT[req]}" cancel --session-tls --ca "$CERTS/ca.crt")
cancelled_ok "$out" \
	"tls_client_required: a plaintext CancelRequest still cancels a TLS session"
out=$("$PY" "$PGWIRE" 127.0.0.1 "${PX_PORT[req]}" cancel --session-tls --cancel-tls \
	--ca "$CERTS/ca.crt")
cancelled_ok "$out" \
	"tls_client_required: a CancelRequest after TLS cancels a TLS session"

done_testing
