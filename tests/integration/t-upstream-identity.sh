#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Upstream client identities (tls_server_identity_map): PostgreSQL's `cert` authentication
# and clientcert=verify-full behind pgktls. Clients present certificates from their own CA
# (the "client CA", which PostgreSQL does not trust); pgktls verifies them and presents,
# upstream, the certificate the map names for each (issued by PostgreSQL's CA). A matched
# client logs in; PostgreSQL refuses an unmatched one, one without a certificate and one
# whose identity is another user's, with its own messages relayed; a reload swaps the
# identities, a broken map keeps the old ones; a bad map names its file and line.
. "$(dirname "$0")/lib.sh"
setup
need_cmd socat
make_certs
pg_init main
# cert: the certificate's CN must be the user; verify-full: a password and the certificate.
pg_hba main "hostssl all alice 127.0.0.1/32 cert" \
	"hostssl all bob 127.0.0.1/32 md5 clientcert=verify-full" \
	"hostssl all trusty 127.0.0.1/32 trust"
pg_start main
pg_roles main

# Client certificates from the client CA (other-ca): alice, bob, carol (not in the map) and
# mallory (mapped to bob's identity).
(
	cd "$CERTS" || exit 1
	set -e
	for n in alice bob carol mallory; do
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$n" \
			-keyout "cc-$n.key" -out "cc-$n.csr" 2>/dev/null
		printf '%s\n' "basicConstraints=critical,CA:FALSE" \
			"keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth" \
			>"cc-$n.ext"
		openssl x509 -req -in "cc-$n.csr" -CA other-ca.crt -CAkey other-ca.key \
			-set_serial "0x$(openssl rand -hex 8)" -days 30 -extfile "cc-$n.ext" \
			-out "cc-$n.crt" 2>/dev/null
	done
	chmod 600 cc-*.key
	rm -f cc-*.csr cc-*.ext
) || bail "client certificate generation failed"
fp() { openssl x509 -noout -fingerprint -sha256 -in "$1" | sed 's/.*=//'; }

# The identities pgktls holds: PostgreSQL's CA issued them (client.crt is CN=alice).
ID=$T/ids
mkdir -p "$ID"
cp "$CERTS/client.crt" "$CERTS/client.key" "$CERTS/client-bob.crt" "$CERTS/client-bob.key" "$ID/"
chmod 600 "$ID"/*.key
MAP=$ID/identities.conf
cat >"$MAP" <<EOF
# client certificate (client CA)      identity presented to PostgreSQL (PostgreSQL's CA)
sha256:$(fp "$CERTS/cc-alice.crt")    client.crt       client.key
"subject:/CN=bob"                     client-bob.crt   client-bob.key
subject:/CN=mallory                   client-bob.crt   client-bob.key
EOF
SOCK=$T/stats.sock
px_start id "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_client_ca_certificate = \"$CERTS/other-ca.crt\"
tls_client_certificate = \"optional\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
tls_server_identity_map = \"$MAP\"
stats_socket = \"$SOCK\""
like "$(cat "${PX_LOG[id]}")" "tls_server_identity_map: 3 upstream identities from $MAP" \
	"start-up loads the 3 identities and says from where"

dsn() { # USER CERT-NAME|none [EXTRA]
	local c=""
	[ "$2" != none ] && c="sslcert=$CERTS/cc-$2.crt sslkey=$CERTS/cc-$2.key"
	echo "host=localhost hostaddr=127.0.0.1 port=${PX_PORT[id]} dbname=postgres user=$1" \
		"sslmode=verify-full sslrootcert=$CERTS/ca.crt $c ${3:-}"
}
SQL_DN="select client_dn from pg_stat_ssl where pid = pg_backend_pid()"

# Matched by fingerprint: cert authentication as alice, and PostgreSQL saw the identity.
q_ok "alice's certificate (by fingerprint): cert authentication as alice" \
	"$(dsn alice alice)" "$SQL_DN" "/CN=alice"
like "$(cat "${PX_LOG[id]}")" "upstream identity /CN=alice \\($MAP:2\\)" \
	"the log names the identity presented and its map line"
# Matched by subject: clientcert=verify-full plus bob's password.
q_ok "bob's certificate (by subject): md5 + clientcert=verify-full as bob" \
	"$(dsn bob bob password=bob-pw)" "$SQL_DN" "/CN=bob"
# Unmatched: pgktls presents nothing; PostgreSQL's own refusal reaches the client.
q_fails "carol (verified, no map line): refused by PostgreSQL" "$(dsn alice carol)" "select 1" \
	"connection requires a valid client certificate"
# No certificate under tls_client_certificate = optional: today's behaviour.
q_ok "no certificate: a trust user still gets in (optional)" "$(dsn trusty none)" "$SQL_DN" ""
q_fails "no certificate: cert authentication refused by PostgreSQL" "$(dsn alice none)" \
	"select 1" "connection requires a valid client certificate"
# mallory's identity is bob's: PostgreSQL refuses it for alice, with its own message.
q_fails "mallory (identity bob) as alice: cert authentication fails in PostgreSQL" \
	"$(dsn alice mallory)" "select 1" 'certificate authentication failed for user "alice"'
q_ok "mallory (identity bob) as bob: verify-full accepts the identity" \
	"$(dsn bob mallory password=bob-pw)" "$SQL_DN" "/CN=bob"
# A certificate from a CA pgktls does not trust never reaches the map.
q_fails "a client certificate pgktls cannot verify: refused at the handshake" \
	"$(dsn alice none "sslcert=$CERTS/client.crt sslkey=$CERTS/client.key")" \
	"select 1" "unknown ca|certificate verify failed|SSL error"

# The stats show the identity of a live connection.
timeout 30 "$PGBIN/psql" -X -Atq -d "$(dsn alice alice)" -c "select pg_sleep(4)" \
	>/dev/null 2>&1 &
sleeper=$!
conns=""
for ((i = 0; i < 50; i++)); do
	conns=$(printf 'connections\n' | socat -t 5 - "UNIX-CONNECT:$SOCK")
	printf '%s' "$conns" | grep -q '"state":"relay"' && break
	sleep 0.1
done
ids=$("$PY" -c 'import json,sys
d=json.load(sys.stdin)
print(",".join(sorted(str(c["upstream_identity"]) for c in d["connections"])))' <<<"$conns")
is "$ids" "/CN=alice" "stats: the live connection reports upstream_identity /CN=alice"
wait "$sleeper"

# Reload swaps the identities: alice's certificate now stands for bob.
cat >"$MAP" <<EOF
sha256:$(fp "$CERTS/cc-alice.crt") client-bob.crt client-bob.key
EOF
kill -HUP "${PX_PID[id]}"
wait_log id "SIGHUP: reloaded" || fail "SIGHUP reload of the new map is logged"
q_fails "after reload: alice's certificate no longer authenticates alice" "$(dsn alice alice)" \
	"select 1" 'certificate authentication failed for user "alice"'
q_ok "after reload: alice's certificate now presents bob's identity" \
	"$(dsn bob alice password=bob-pw)" "$SQL_DN" "/CN=bob"
q_fails "after reload: bob's own certificate has no line any more" \
	"$(dsn bob bob password=bob-pw)" "select 1" "connection requires a valid client certificate"

# A broken map on reload: an error with file:line, and the previous identities stay.
printf '# broken\nsha256:12 client.crt client.key\n' >"$MAP"
kill -HUP "${PX_PID[id]}"
wait_log id "SIGHUP: reload failed" || true
like "$(grep 'reload failed' "${PX_LOG[id]}")" \
	"previous configuration stays in use: $MAP:2: expected 'sha256:' and 64 hex digits" \
	"a broken map on reload: refused, naming the map file and line"
q_ok "after the failed reload: the previous identities still work" \
	"$(dsn bob alice password=bob-pw)" "$SQL_DN" "/CN=bob"
# A key that does not match its certificate, at reload: file:line again.
printf 'subject:/CN=bob client-bob.crt client.key\n' >"$MAP"
out=$(printf 'reload\n' | socat -t 5 - "UNIX-CONNECT:$SOCK")
like "$out" "\"ok\":false.*$MAP:1: private key file: does not match the certificate" \
	"a key that does not match: the stats reload answers with the map's file and line"

# At start-up a bad map stops pgktls, naming the file and line.
printf 'sha256:%s client.crt\n' "$(fp "$CERTS/cc-alice.crt")" >"$MAP"
out=$("$PGKTLS_BIN" -c "${PX_CONF[id]}" --check-config 2>&1)
rc=$?
ok $((rc == 0)) "--check-config with a bad map fails (status $rc)"
like "$out" "$MAP:1: expected MATCH CERTIFICATE_FILE PRIVATE_KEY_FILE, got 2 fields" \
	"--check-config names the map's file and line"

px_stop id

# watch_certificates: changing the map file alone reloads it.
printf 'sha256:%s client.crt client.key\n' "$(fp "$CERTS/cc-alice.crt")" >"$MAP"
px_start w "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_client_ca_certificate = \"$CERTS/other-ca.crt\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
tls_server_identity_map = \"$MAP\"
watch_certificates = true"
PX_PORT[id]=${PX_PORT[w]}
q_ok "watch: alice's certificate authenticates alice" "$(dsn alice alice)" "$SQL_DN" "/CN=alice"
printf 'sha256:%s client-bob.crt client-bob.key\n' "$(fp "$CERTS/cc-alice.crt")" >"$MAP.new"
mv "$MAP.new" "$MAP"
wait_log w "certificate files changed: reloaded" ||
	fail "watch: a change of the map file reloads by itself"
q_ok "watch: after the change alice's certificate presents bob's identity" \
	"$(dsn bob alice password=bob-pw)" "$SQL_DN" "/CN=bob"
px_stop w
done_testing
