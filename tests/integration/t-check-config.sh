#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# --check-config on good and bad files, -o overrides, --version and --help.
. "$(dirname "$0")/lib.sh"
setup
make_certs

# check FILE: run --check-config; sets OUT (stdout+stderr) and RC.
check() {
	OUT=$(timeout 20 "$PGKTLS_BIN" --check-config -c "$@" 2>&1)
	RC=$?
}

# bad NAME KEY GOT-REGEX LINE CONTENT...: a file whose line LINE is wrong.
bad() {
	local name=$1 key=$2 got=$3 line=$4 f=$T/$1.toml
	shift 4
	printf '%s\n' "$@" >"$f"
	check "$f"
	is "$RC" 1 "$name: --check-config exits 1"
	like "$OUT" "^$f:$line: $key: .*got '$got'" "$name: error names $f:$line, $key and the input"
}

good=$T/good.toml
cat >"$good" <<TOML
# A file using most keys.
[general]
host = "127.0.0.1"
port = 6432
workers = 2
log_level = "debug"
tls_certificate = "$CERTS/proxy.crt"
tls_private_key = "$CERTS/proxy.key"
tls_client_required = true
tls_client_ca_certificate = "$CERTS/ca.crt"
tls_min_version = "TLSv1.2"
tls_max_version = "TLSv1.3"
tls_verify = "verify_full"
tls_server_ca_certificate = "$CERTS/ca.crt"
tls_server_certificate = "$CERTS/client.crt"
tls_server_private_key = "$CERTS/client.key"
tls_server_name = "localhost"
startup_timeout = 10000
connect_timeout = 5000
ktls = "auto"

[upstream]
host = "127.0.0.1"
port = 5432
TOML
check "$good"
is "$RC" 0 "a good file passes --check-config"
[ "$RC" = 0 ] || diag "$OUT"

printf '[general]\nport = 7000\n[upstream]\nunix_socket = "%s"\n' "$T" >"$T/minimal.toml"
check "$T/minimal.toml"
is "$RC" 0 "a minimal file with a unix-socket upstream passes"
[ "$RC" = 0 ] || diag "$OUT"

bad verify tls_verify bogus 3 '[general]' 'port = 6432' 'tls_verify = "bogus"'
bad port port 70000 2 '[general]' 'port = 70000'
bad portword port '"?abc"?' 2 '[general]' 'port = "abc"'
bad tlsver tls_min_version 'TLSv1(\.0)?' 3 '[general]' '' 'tls_min_version = "TLSv1"'
bad bool tls_client_required '"?yes"?' 2 '[general]' 'tls_client_required = "yes"'
bad ktls ktls sometimes 2 '[general]' 'ktls = "sometimes"'
bad workers workers -1 2 '[general]' 'workers = -1'

printf '[general]\nport = 6432\nno_such_key = 1\n' >"$T/unknown.toml"
check "$T/unknown.toml"
is "$RC" 1 "unknown key: exits 1"
like "$OUT" "^$T/unknown.toml:3: .*no_such_key" "unknown key: error names the file, line and key"

printf '[general]\ntls_certificate = "%s"\n' "$CERTS/proxy.crt" >"$T/nokey.toml"
check "$T/nokey.toml"
is "$RC" 1 "tls_certificate without tls_private_key: exits 1"
like "$OUT" "tls_private_key" "tls_certificate without tls_private_key: error names the missing key"

printf '[general]\ntls_certificate = "%s"\ntls_private_key = "%s"\n' \
	"$T/missing.crt" "$CERTS/proxy.key" >"$T/missing.toml"
check "$T/missing.toml"
is "$RC" 1 "a certificate file that does not exist: exits 1"
like "$OUT" "$T/missing.toml:2: tls_certificate" "missing file: error names the line and key"

printf '[general]\ntls_verify = "verify_full"\n' >"$T/noca.toml"
check "$T/noca.toml"
is "$RC" 1 "verify_full without tls_server_ca_certificate: exits 1"
like "$OUT" "tls_server_ca_certificate" "verify_full without a CA: error says what is needed"

printf '[general]\ntls_client_required = true\n' >"$T/reqnocert.toml"
check "$T/reqnocert.toml"
is "$RC" 1 "tls_client_required without a certificate: exits 1"

printf '[general]\ntls_min_version = "TLSv1.3"\ntls_max_version = "TLSv1.2"\n' >"$T/minmax.toml"
check "$T/minmax.toml"
is "$RC" 1 "tls_min_version above tls_max_version: exits 1"

printf '[general\nport = 6432\n' >"$T/syntax.toml"
check "$T/syntax.toml"
is "$RC" 1 "a broken table header: exits 1"
like "$OUT" "^$T/syntax.toml:1: " "a broken table header: error names line 1"

check "$T/does-not-exist.toml"
is "$RC" 1 "a config file that does not exist: exits 1"

# Command-line overrides go through the same checks.
check "$good" -o tls_verify=sometimes
is "$RC" 1 "-o tls_verify=sometimes: exits 1"
like "$OUT" "tls_verify: .*got 'sometimes'" "-o tls_verify=sometimes: error quotes the input"
check "$good" -o upstream.port=5433
is "$RC" 0 "-o upstream.port=5433 is accepted"
check "$good" -p 99999
is "$RC" 1 "-p 99999: exits 1"
like "$OUT" "got '99999'" "-p 99999: error quotes the input"
check "$good" --tls-verify verify_ca
is "$RC" 0 "--tls-verify verify_ca is accepted"

OUT=$("$PGKTLS_BIN" --version 2>&1)
RC=$?
is "$RC" 0 "--version exits 0"
like "$OUT" '^pgktls [0-9]+\.[0-9]+\.[0-9]+' "--version prints the version"
OUT=$("$PGKTLS_BIN" --help 2>&1)
RC=$?
is "$RC" 0 "--help exits 0"
like "$OUT" 'check-config' "--help mentions --check-config"
"$PGKTLS_BIN" --no-such-flag >/dev/null 2>&1
RC=$?
[ "$RC" -ne 0 ]
ok $? "an unknown flag exits non-zero"

# The daemon refuses to start on a bad file, with the same message.
OUT=$(timeout 20 "$PGKTLS_BIN" -c "$T/verify.toml" 2>&1)
RC=$?
[ "$RC" -ne 0 ] && [ "$RC" -ne 124 ]
ok $? "the daemon exits non-zero on a bad file"
like "$OUT" "$T/verify.toml:3: tls_verify" "the daemon reports the bad line"

done_testing
