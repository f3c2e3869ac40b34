#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# node-postgres through pgktls: verified TLS, a query, a cancel (plaintext CancelRequest),
# end() right after connect().
# pg is installed with `npm ci` from tests/integration/node/package-lock.json into a cache
# outside the source tree, once per lock file.
. "$(dirname "$0")/lib.sh"
setup
need_cmd node npm
NODESRC=$PGKTLS_SRCDIR/tests/integration/node
lockhash=$(sha256sum "$NODESRC/package-lock.json" | cut -c1-16)
CACHE=${PGKTLS_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pgktls-node}/$lockhash
if [ ! -f "$CACHE/node_modules/pg/package.json" ]; then
	mkdir -p "$CACHE"
	cp "$NODESRC/package.json" "$NODESRC/package-lock.json" "$CACHE/"
	if ! (cd "$CACHE" && flock "$CACHE/.lock" timeout 300 npm ci --no-audit --no-fund \
		--loglevel=error) >"$T/npm.log" 2>&1; then
		cat "$T/npm.log" >&2
		skip_all "npm ci of node-postgres failed (see the log)"
	fi
fi
export NODE_PATH=$CACHE/node_modules
pg_setup main

px_start px "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\""

run() { timeout 60 node --no-deprecation "$NODESRC/probe.js" "$@" 2>&1; }
out=$(run "${PX_PORT[px]}" "$CERTS/ca.crt")
is "$out" "query alice 42 TLSv1.3
cancel 57014 quickly
after 1" "node-postgres: verified TLS through pgktls, query, cancel"
# end() right after connect(): Terminate goes out before the SSLRequest. PostgreSQL closes
# without a reply; an ErrorResponse there made node-postgres throw from its socket handler.
want=$(run "${PG_PORT[main]}" "$CERTS/ca.crt" end-at-once)
out=$(run "${PX_PORT[px]}" "$CERTS/ca.crt" end-at-once)
is "$out" "$want" "node-postgres end() at once: as straight to PostgreSQL ($want)"
is "$out" "ended" "node-postgres end() at once: no crash"
out=$(run "${PX_PORT[px]}" "$CERTS/other-ca.crt")
like "$out" "^error .*(certificate|self-signed|issuer)" \
	"node-postgres: the wrong CA is refused"

done_testing
