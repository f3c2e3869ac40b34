#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Certificate revocation lists on both hops. Client side (tls_client_crl): a CRL file and a
# hashed CRL directory; a revoked client certificate is refused with the certificate_revoked
# alert (as psql and openssl s_client see it), logged with its subject and serial and
# counted; an unrevoked one passes; SIGHUP picks up a new CRL file and watch_certificates a
# new CRL in the directory. Server side (tls_server_crl): PostgreSQL's certificate revoked
# under verify_ca is refused with an error naming it, and passes with a CRL that does not
# revoke it.
. "$(dirname "$0")/lib.sh"
setup
pg_setup main
STAT=${PGKTLS_BUILDDIR}/tools/pgktls-stat
[ -x "$STAT" ] || bail "pgktls-stat not found at $STAT"

C=$T/crl
mkdir -p "$C/dir"
make_crl "$C/bob.crl" ca "$CERTS/client-bob.crt"
make_crl "$C/alice.crl" ca "$CERTS/client.crt"
make_crl "$C/server.crl" ca "$CERTS/server.crt"
make_crl "$C/empty.crl" ca
# serial CERT: the serial as pgktls logs it (OpenSSL's hex, as `openssl x509 -serial`).
serial() { openssl x509 -noout -serial -in "$1" | sed 's/^serial=//'; }
BOB_SERIAL=$(serial "$CERTS/client-bob.crt")
ALICE_SERIAL=$(serial "$CERTS/client.crt")
SERVER_SERIAL=$(serial "$CERTS/server.crt")

# counter NAME SOCK: a flat counter from the stats document.
counter() {
	"$STAT" -s "$2" --json | "$PY" -c \
		'import json,sys; print(json.load(sys.stdin)["totals"]["counters"][sys.argv[1]])' \
		"$1"
}

# s_client_out NAME CERT KEY: what openssl s_client reads back after presenting CERT:
# the TLS 1.3 client learns the server's verdict on its certificate from the next read.
s_client_out() {
	(sleep 1) | timeout 10 openssl s_client -starttls postgres \
		-connect "127.0.0.1:${PX_PORT[$1]}" -CAfile "$CERTS/ca.crt" -cert "$2" -key "$3" \
		2>&1
}

CA="sslmode=verify-full sslrootcert=$CERTS/ca.crt"
ALICE="sslcert=$CERTS/client.crt sslkey=$CERTS/client.key"
BOB="sslcert=$CERTS/client-bob.crt sslkey=$CERTS/client-bob.key"

# ---- client side, a CRL file, then a new one on SIGHUP
cp "$C/bob.crl" "$C/current.crl"
px_start file "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_client_ca_certificate = \"$CERTS/ca.crt\"
tls_client_crl = \"$C/current.crl\"
tls_verify = \"disable\"
stats_socket = \"$T/file.sock\""
q_ok "CRL file: an unrevoked client certificate is accepted" "$(px_dsn file "$CA") $ALICE" \
	"select current_user" alice
q_fails "CRL file: a revoked client certificate is refused with certificate_revoked" \
	"$(px_dsn file "$CA") $BOB" "select 1" "alert certificate revoked"
like "$(s_client_out file "$CERTS/client-bob.crt" "$CERTS/client-bob.key")" \
	"alert certificate revoked.*alert number 44" \
	"CRL file: openssl s_client receives alert 44 (certificate_revoked)"
like "$(cat "${PX_LOG[file]}")" \
	"TLS handshake failed: .*certificate revoked \(subject /CN=bob, serial 0x$BOB_SERIAL\)" \
	"CRL file: the log names the revoked certificate's subject and serial"
is "$(counter client_certs_revoked "$T/file.sock")" 2 "CRL file: stats count 2 revoked clients"

cp "$C/alice.crl" "$C/current.crl.new"
mv "$C/current.crl.new" "$C/current.crl"
kill -HUP "${PX_PID[file]}"
for ((i = 0; i < 50; i++)); do
	grep -q "SIGHUP: reloaded" "${PX_LOG[file]}" && break
	sleep 0.1
done
like "$(cat "${PX_LOG[file]}")" "SIGHUP: reloaded" "CRL file: SIGHUP reloads"
q_fails "after the reload: the newly revoked certificate is refused" \
	"$(px_dsn file "$CA") $ALICE" "select 1" "alert certificate revoked"
q_ok "after the reload: the certificate no longer revoked is accepted" \
	"$(px_dsn file "$CA") $BOB" "select 1" 1
like "$(cat "${PX_LOG[file]}")" \
	"certificate revoked \(subject /CN=alice, serial 0x$ALICE_SERIAL\)" \
	"after the reload: the log names the newly revoked certificate"

# A broken CRL on reload: the reload fails, the previous CRL stays.
echo "not a CRL" >"$C/current.crl"
kill -HUP "${PX_PID[file]}"
for ((i = 0; i < 50; i++)); do
	grep -q "SIGHUP: reload failed" "${PX_LOG[file]}" && break
	sleep 0.1
done
like "$(cat "${PX_LOG[file]}")" "SIGHUP: reload failed.*tls_client_crl: no PEM CRL" \
	"a file without a CRL fails the reload, naming tls_client_crl"
q_fails "... and the previous CRL still refuses its certificate" \
	"$(px_dsn file "$CA") $ALICE" "select 1" "alert certificate revoked"

# ---- client side, a hashed directory, watched
cp "$C/bob.crl" "$C/dir/ca.crl"
openssl rehash "$C/dir" 2>/dev/null || bail "openssl rehash failed"
px_start dir "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_client_ca_certificate = \"$CERTS/ca.crt\"
tls_client_crl = \"$C/dir\"
tls_verify = \"disable\"
watch_certificates = true
stats_socket = \"$T/dir.sock\""
q_ok "CRL directory: an unrevoked client certificate is accepted" \
	"$(px_dsn dir "$CA") $ALICE" "select current_user" alice
q_fails "CRL directory: a revoked client certificate is refused with certificate_revoked" \
	"$(px_dsn dir "$CA") $BOB" "select 1" "alert certificate revoked"
like "$(cat "${PX_LOG[dir]}")" "certificate revoked \(subject /CN=bob, serial 0x$BOB_SERIAL\)" \
	"CRL directory: the log names the revoked certificate"
is "$(counter client_certs_revoked "$T/dir.sock")" 1 "CRL directory: stats count 1 revoked client"
# A new CRL replaces the old one inside the directory: watch_certificates reloads. The
# watch also covers the config file's directory ($T), where every q() writes its errors:
# let those reloads settle, then change only the CRL and probe with s_client, which
# writes nothing under $T, so only the directory's own watch can pick the change up.
sleep 1
reloads=$(grep -c "certificate files changed: reloaded" "${PX_LOG[dir]}")
cp "$C/alice.crl" "$C/dir/ca.crl.new"
mv "$C/dir/ca.crl.new" "$C/dir/ca.crl"
for ((i = 0; i < 20; i++)); do
	s_client_out dir "$CERTS/client.crt" "$CERTS/client.key" | grep -q "certificate revoked" &&
		break
done
like "$(s_client_out dir "$CERTS/client.crt" "$CERTS/client.key")" "alert certificate revoked" \
	"CRL directory: a new CRL in the directory takes effect without a signal"
ok "$(($(grep -c "certificate files changed: reloaded" "${PX_LOG[dir]}") > reloads ? 0 : 1))" \
	"CRL directory: ... through a watch_certificates reload"
q_fails "CRL directory, after the change: the newly revoked certificate is refused" \
	"$(px_dsn dir "$CA") $ALICE" "select 1" "alert certificate revoked"
q_ok "CRL directory, after the change: the other one is accepted" \
	"$(px_dsn dir "$CA") $BOB" "select 1" 1

# ---- server side: PostgreSQL's certificate revoked, under verify_ca
# trusty: trust auth, so only the upstream TLS decides.
TRUSTY="host=127.0.0.1 dbname=postgres user=trusty sslmode=disable"
px_start srv-revoked "tls_verify = \"verify_ca\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
tls_server_crl = \"$C/server.crl\"
stats_socket = \"$T/srv.sock\""
q_fails "server CRL: PostgreSQL's revoked certificate is refused, the client is told why" \
	"$TRUSTY port=${PX_PORT[srv-revoked]}" "select 1" \
	"DETAIL: .*certificate revoked \(subject /CN=localhost, serial 0x$SERVER_SERIAL\)"
like "$(cat "$T/q.err")" \
	"FATAL: +pgktls: upstream .*: TLS handshake failed \(tls_verify = verify_ca\)" \
	"server CRL: ... as a failed upstream TLS handshake (08006)"
like "$(cat "${PG_DIR[main]}/server.log")" "alert certificate revoked" \
	"server CRL: PostgreSQL received the certificate_revoked alert"
is "$(counter server_certs_revoked "$T/srv.sock")" 1 "server CRL: stats count 1 revoked server"
px_start srv-ok "tls_verify = \"verify_ca\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
tls_server_crl = \"$C/bob.crl\""
q_ok "server CRL: an unrevoked PostgreSQL certificate passes" \
	"$TRUSTY port=${PX_PORT[srv-ok]}" "$SQL_SSL" t
mkdir -p "$C/srvdir"
cp "$C/server.crl" "$C/srvdir/"
openssl rehash "$C/srvdir" 2>/dev/null || bail "openssl rehash failed"
px_start srv-dir "tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
tls_server_crl = \"$C/srvdir\""
q_fails "server CRL directory: the revoked certificate is refused under verify_full" \
	"$TRUSTY port=${PX_PORT[srv-dir]}" "select 1" "certificate revoked"

# ---- configuration errors, as --check-config reports them
printf '[general]\ntls_verify = "prefer"\ntls_server_crl = "%s"\n' "$C/server.crl" \
	>"$T/bad-srv.toml"
out=$(timeout 20 "$PGKTLS_BIN" --check-config -c "$T/bad-srv.toml" 2>&1)
is "$?" 1 "--check-config: tls_server_crl without verification exits 1"
like "$out" "^$T/bad-srv.toml:3: tls_server_crl: needs tls_verify" "... naming file:line and key"

done_testing
