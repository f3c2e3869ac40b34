#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Certificate reload without dropping anyone: clients stream while the certificate and
# key rotate under the same paths; SIGHUP, the stats socket's "reload" request and
# watch_certificates (inotify) all reload; a broken key keeps the old configuration.
. "$(dirname "$0")/lib.sh"
setup
need_cmd socat
pg_setup main
pg_sql main "create table big as select g as id, md5(g::text) as h from generate_series(1, 400000) g;
	grant select on big to alice" >/dev/null

R=$T/rot
mkdir -p "$R"
install -m 644 "$CERTS/proxy.crt" "$R/cert.pem"
install -m 600 "$CERTS/proxy.key" "$R/key.pem"
SOCK=$T/stats.sock
px_start r "tls_certificate = \"$R/cert.pem\"
tls_private_key = \"$R/key.pem\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
stats_socket = \"$SOCK\""
PID=${PX_PID[r]}

OLD="sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable"
NEW="sslmode=verify-full sslrootcert=$CERTS/other-ca.crt channel_binding=disable"
q_ok "before: the first certificate verifies" "$(px_dsn r "$OLD")" "select 1" 1
q_fails "before: the second CA does not" "$(px_dsn r "$NEW")" "select 1" "certificate verify failed"

DIRECT="host=${PG_SOCK[main]} port=${PG_PORT[main]} dbname=postgres user=postgres"
COPYQ="copy (select * from big order by id) to stdout"
want=$("$PGBIN/psql" -X -d "$DIRECT" -c "$COPYQ" | md5sum | cut -d' ' -f1)

# A session that stays open across the reloads and keeps querying.
"$PY" - "$(px_dsn r "$OLD")" "$T/session.connected" >"$T/session.out" 2>&1 <<'PYEOF' &
import sys, time, psycopg2
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
open(sys.argv[2], "w").close()
n, end = 0, time.time() + 6
while time.time() < end:
    cur.execute("select count(*), sum(id) from big where id <= %s", (1000 + n,))
    c, s = cur.fetchone()
    assert c == 1000 + n and s == (1000 + n) * (1001 + n) // 2, (c, s)
    n += 1
    time.sleep(0.02)
print("session ok after %d queries" % n)
PYEOF
SESSION=$!

# Streams that are under way while the certificate rotates; those that connect after
# the reload meet the new certificate, so they trust both CAs.
cat "$CERTS/ca.crt" "$CERTS/other-ca.crt" >"$T/both-ca.crt"
BOTH="sslmode=verify-full sslrootcert=$T/both-ca.crt channel_binding=disable"
for i in 1 2 3 4; do
	(for j in 1 2 3; do
		"$PGBIN/psql" -X -d "$(px_dsn r "$BOTH")" -c "$COPYQ" | md5sum | cut -d' ' -f1
	done) >"$T/stream$i.sums" 2>"$T/stream$i.err" &
	eval "STREAM$i=\$!"
done
sleep 1
# The session must be connected before the certificate changes (python starts slowly on a
# loaded machine): up to 20 s more.
for ((i = 0; i < 200; i++)); do
	[ -e "$T/session.connected" ] && break
	sleep 0.1
done
install -m 644 "$CERTS/other-server.crt" "$R/cert.pem"
install -m 600 "$CERTS/other-server.key" "$R/key.pem"
kill -HUP "$PID"
sleep 0.5
ok_streams=1
for i in 1 2 3 4; do
	eval "wait \$STREAM$i"
	if [ "$(sort -u "$T/stream$i.sums")" != "$want" ] || [ "$(wc -l <"$T/stream$i.sums")" != 3 ]; then
		ok_streams=0
		diag "stream $i: $(cat "$T/stream$i.sums" "$T/stream$i.err")"
	fi
done
ok $((1 - ok_streams)) "4 clients x 3 COPY streams across the reload: every byte arrived (md5 $want)"
wait $SESSION
like "$(cat "$T/session.out")" "session ok" "a session open across the reload kept working"
like "$(cat "${PX_LOG[r]}")" "SIGHUP: reloaded" "SIGHUP reload is logged"

q_ok "after: new connections present the new certificate" "$(px_dsn r "$NEW")" "select 1" 1
q_fails "after: the old CA no longer verifies them" "$(px_dsn r "$OLD")" "select 1" \
	"certificate verify failed"

# A broken key on reload: the old (second) certificate stays, and the error says why.
printf 'not a key\n' >"$R/key.pem"
out=$(printf 'reload\n' | socat -t 5 - "UNIX-CONNECT:$SOCK")
like "$out" '"ok":false' "stats socket reload with a broken key answers ok:false"
like "$out" 'tls_private_key' "... naming the key at fault"
like "$out" 'previous configuration stays' "... and saying the old configuration stays"
kill -HUP "$PID"
sleep 0.3
like "$(cat "${PX_LOG[r]}")" "SIGHUP: reload failed" "SIGHUP with a broken key is logged as failed"
q_ok "after the failed reloads, the previous certificate is still served" "$(px_dsn r "$NEW")" \
	"select 1" 1
ok "$(kill -0 "$PID" 2>/dev/null; echo $?)" "pgktls still runs"

# Fixed again, through the stats socket this time.
install -m 600 "$CERTS/proxy.key" "$R/key.pem"
install -m 644 "$CERTS/proxy.crt" "$R/cert.pem"
out=$(printf 'reload\n' | socat -t 5 - "UNIX-CONNECT:$SOCK")
like "$out" '"ok":true' "stats socket reload answers ok:true"
q_ok "... and the first certificate is back" "$(px_dsn r "$OLD")" "select 1" 1
totals=$(printf 'totals\n' | socat -t 5 - "UNIX-CONNECT:$SOCK")
reloads=$("$PY" -c 'import json,sys; r=json.load(sys.stdin)["totals"]["config_reloads"]; print(r["ok"], r["failed"])' <<<"$totals")
is "$reloads" "2 2" "stats count 2 reloads applied and 2 refused"

# watch_certificates: no signal, the file change alone reloads.
W=$T/watch
mkdir -p "$W"
install -m 644 "$CERTS/proxy.crt" "$W/cert.pem"
install -m 600 "$CERTS/proxy.key" "$W/key.pem"
px_start w "tls_certificate = \"$W/cert.pem\"
tls_private_key = \"$W/key.pem\"
tls_verify = \"disable\"
watch_certificates = true"
q_ok "watch: the first certificate verifies" "$(px_dsn w "$OLD")" "select 1" 1
# As cert-manager does: new files written beside, then renamed over the old ones.
install -m 644 "$CERTS/other-server.crt" "$W/cert.pem.new"
install -m 600 "$CERTS/other-server.key" "$W/key.pem.new"
mv "$W/key.pem.new" "$W/key.pem"
mv "$W/cert.pem.new" "$W/cert.pem"
for _ in $(seq 1 50); do
	grep -q "certificate files changed: reloaded" "${PX_LOG[w]}" && break
	sleep 0.1
done
like "$(cat "${PX_LOG[w]}")" "certificate files changed: reloaded" "watch: the change reloads by itself"
q_ok "watch: new connections present the new certificate" "$(px_dsn w "$NEW")" "select 1" 1

px_stop r
px_stop w
done_testing
