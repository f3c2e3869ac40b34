#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Every tls_verify mode against a server with the right CA, the wrong CA, and ssl=off;
# tls_server_name; an unreachable upstream.
. "$(dirname "$0")/lib.sh"
setup
pg_setup main
pg_setup nossl ssl=off
PX_WORKERS=1

up_main="host = \"127.0.0.1\"
port = ${PG_PORT[main]}"
up_nossl="host = \"127.0.0.1\"
port = ${PG_PORT[nossl]}"

# The client hop is plaintext here; the role uses trust auth so only the upstream TLS matters.
dsn() { echo "host=127.0.0.1 port=${PX_PORT[$1]} dbname=postgres user=trusty sslmode=disable"; }

# expect NAME MODE CA TARGET WANT: WANT is t/f (upstream hop TLS or not) or FAIL.
expect() {
	local name=$1 mode=$2 ca=$3 target=$4 want=$5 up general out
	up=$up_main
	[ "$target" = nossl ] && up=$up_nossl
	general="tls_verify = \"$mode\""
	[ -n "$ca" ] && general+="
tls_server_ca_certificate = \"$CERTS/$ca\""
	[ -n "${EXTRA:-}" ] && general+="
$EXTRA"
	px_start "$name" "$general" "$up" || return
	if [ "$want" = FAIL ]; then
		q_fails "$name: refused" "$(dsn "$name")" "select 1" "upstream.*TLS|TLS.*upstream"
		out=$("$PY" "$PGWIRE" 127.0.0.1 "${PX_PORT[$name]}" plain-startup)
		like "$out" "^error 08006 .*(upstream.*TLS|TLS.*upstream)" \
			"$name: ErrorResponse 08006 naming the upstream and TLS"
	else
		q_ok "$name: works, upstream hop ssl=$want" "$(dsn "$name")" "$SQL_SSL" "$want"
	fi
}

expect disable-rightca disable ca.crt main f
expect disable-wrongca disable other-ca.crt main f
expect disable-nossl disable "" nossl f
expect prefer-rightca prefer ca.crt main t
expect prefer-wrongca prefer other-ca.crt main t
expect prefer-noca prefer "" main t
expect prefer-nossl prefer "" nossl f
expect verify_ca-rightca verify_ca ca.crt main t
expect verify_ca-wrongca verify_ca other-ca.crt main FAIL
expect verify_ca-nossl verify_ca ca.crt nossl FAIL
expect verify_full-rightca verify_full ca.crt main t
expect verify_full-wrongca verify_full other-ca.crt main FAIL
expect verify_full-nossl verify_full ca.crt nossl FAIL
EXTRA='tls_server_name = "localhost"' expect verify_full-sni-localhost verify_full ca.crt main t
EXTRA='tls_server_name = "wrong.example"' expect verify_full-wrongname verify_full ca.crt main FAIL
EXTRA='tls_server_name = "wrong.example"' expect verify_ca-wrongname verify_ca ca.crt main t
# The aliases PROTOCOL.md asks for.
expect alias-verify-full verify-full ca.crt main t

# Nothing listens on the upstream port: 08006 naming the upstream.
dead=$(port_alloc)
px_start dead 'tls_verify = "disable"' "host = \"127.0.0.1\"
port = $dead"
q_fails "unreachable upstream: refused" "$(dsn dead)" "select 1" "upstream"
out=$("$PY" "$PGWIRE" 127.0.0.1 "${PX_PORT[dead]}" plain-startup)
like "$out" "^error 08006 .*upstream" "unreachable upstream: ErrorResponse 08006 naming the upstream"
q_ok "the verify_full instance still works after the failures" "$(dsn verify_full-rightca)" \
	"select 1" 1

done_testing
