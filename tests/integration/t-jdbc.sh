#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# pgjdbc through pgktls: sslmode=verify-full, a query, Statement.cancel().
. "$(dirname "$0")/lib.sh"
setup
JAR=${PGKTLS_JDBC_JAR:-/usr/share/java/postgresql.jar}
need_cmd java
[ -r "$JAR" ] || skip_all "pgjdbc not found at $JAR (apt install libpostgresql-jdbc-java)"
pg_setup main

px_start px "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\""

run() {
	(cd "$T" && HOME=$T timeout 120 java ${PGKTLS_TEST_JAVA_OPTS:-} -cp "$JAR" \
		"$PGKTLS_SRCDIR/tests/integration/JdbcProbe.java" "$1" "$2" 2>&1)
}
is "$(run "${PX_PORT[px]}" "$CERTS/ca.crt")" "query alice 42
cancel 57014 quickly
after 1" "pgjdbc: verify-full through pgktls, query, cancel"
out=$(run "${PX_PORT[px]}" "$CERTS/other-ca.crt")
like "$out" "^error 08006 " "pgjdbc: verify-full with the wrong CA is refused"

done_testing
