#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# The TLS defaults a security review checks, from the outside, on both hops: TLS 1.2
# minimum, AEAD ciphers only, no compression, no renegotiation, no session tickets or
# resumable sessions for clients; a warning for a private key others can read; TLS
# secrets gone from the daemon's memory once a session ends; and no password, startup
# packet contents or key material in the logs of a full session at log_level debug.
. "$(dirname "$0")/lib.sh"
setup
need_cmd openssl
pg_init main
# Planted secrets: a cleartext-password role, a SCRAM role, a database, an
# application_name and options. None of them may show up in pgktls' log.
PW_CLEAR=Pl4nted-Clear-Pw-7f3a
PW_SCRAM=Pl4nted-Scram-Pw-91c2
PW_WRONG=Pl4nted-Wrong-Pw-0b77
U_CLEAR=u_planted_clear_5e9
U_SCRAM=u_planted_scram_3d1
DB=db_planted_77
APP=AppName-Planted-5d1e
OPT=opt_planted_c4
pg_hba main "host all $U_CLEAR 127.0.0.1/32 password" \
	"host all $U_SCRAM 127.0.0.1/32 scram-sha-256" "host all all 127.0.0.1/32 trust"
pg_start main
pg_roles main
pg_sql main "set password_encryption = 'scram-sha-256';
	create role $U_CLEAR login password '$PW_CLEAR';
	create role $U_SCRAM login password '$PW_SCRAM';" >/dev/null
pg_sql main "create database $DB" >/dev/null

STATS=$T/stats.sock
PGKTLS_TEST_LOG_LEVEL=debug px_start px "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
stats_socket = \"$STATS\""
P=${PX_PORT[px]}
CA="sslrootcert=$CERTS/ca.crt"

# ---- client hop, seen with openssl s_client
sc() { timeout 10 openssl s_client -connect "127.0.0.1:$P" -starttls postgres \
	-CAfile "$CERTS/ca.crt" "$@" </dev/null 2>&1; }

out=$(sc -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0')
like "$out" 'alert protocol version|unsupported protocol|no protocols available' \
	"client hop: TLS 1.1 is refused"
out=$(sc -tls1_2 -sess_out "$T/s12")
like "$out" 'New, TLSv1.2, Cipher is ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)' \
	"client hop: TLS 1.2 negotiates an ECDHE AEAD cipher"
like "$out" 'Compression: NONE' "client hop: no compression"
unlike "$out" 'TLS session ticket' "client hop: TLS 1.2 sends no session ticket"
like "$out" 'Session-ID: *$' "client hop: TLS 1.2 gives no session id to resume"
ok "$([ -s "$T/s12" ] && echo 1 || echo 0)" "client hop: TLS 1.2 leaves no session to resume (-sess_out)"
out=$( (sleep 1.5) | timeout 10 openssl s_client -connect "127.0.0.1:$P" -starttls postgres \
	-CAfile "$CERTS/ca.crt" -tls1_3 -sess_out "$T/s13" 2>&1)
like "$out" 'New, TLSv1.3, Cipher is TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)' \
	"client hop: TLS 1.3 with an AEAD suite"
unlike "$out" 'Post-Handshake New Session Ticket' "client hop: TLS 1.3 sends no NewSessionTicket"
ok "$([ -s "$T/s13" ] && echo 1 || echo 0)" "client hop: TLS 1.3 leaves no session to resume (-sess_out)"
for c in ECDHE-ECDSA-AES128-SHA ECDHE-ECDSA-AES256-SHA384 AES128-GCM-SHA256; do
	out=$(sc -tls1_2 -cipher "$c")
	like "$out" 'Cipher is \(NONE\)|handshake failure' "client hop: $c (CBC or no forward secrecy) is refused"
done
out=$( (sleep 1; echo R; sleep 2) | timeout 10 openssl s_client -connect "127.0.0.1:$P" \
	-starttls postgres -CAfile "$CERTS/ca.crt" -tls1_2 2>&1)
like "$out" 'no renegotiation' "client hop: a renegotiation is refused"

# ---- upstream hop: what PostgreSQL saw, and servers that offer too little
D=$(px_dsn px "sslmode=verify-full $CA")
out=$(q "$D" "select version || ' ' || cipher from pg_stat_ssl where pid = pg_backend_pid()")
like "$out" '^TLSv1\.3 TLS_(AES_(128|256)_GCM_SHA(256|384)|CHACHA20_POLY1305_SHA256)$' \
	"upstream hop: TLS 1.3 with an AEAD suite (as PostgreSQL reports it)"

# weak-upstream MODE: a PostgreSQL impostor that says 'S' and offers only MODE.
weak_upstream() {
	timeout 30 "$PY" - "$1" "$2" "$CERTS" <<'PYEOF'
import socket, ssl, sys
mode, port, certs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(certs + "/server.crt", certs + "/server.key")
if mode == "tls11":
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
else:
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0")
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(4)
open(certs + "/../weak-" + mode, "w").close()
c, _ = ls.accept()
c.recv(8)
c.sendall(b"S")
try:
    ctx.wrap_socket(c, server_side=True)
    print("handshake completed")
except (ssl.SSLError, OSError) as e:
    print("handshake failed: %s" % e)
PYEOF
}
for mode in tls11 cbc; do
	WP=$(port_alloc)
	weak_upstream "$mode" "$WP" >"$T/weak-$mode.out" 2>&1 &
	WPID=$!
	for ((i = 0; i < 100; i++)); do [ -e "$T/weak-$mode" ] && break; sleep 0.1; done
	px_start "weak-$mode" "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"" "host = \"127.0.0.1\"
port = $WP"
	q_fails "upstream hop: a server offering only $mode is refused" \
		"$(px_dsn "weak-$mode" "sslmode=verify-full $CA")" "select 1" "upstream"
	wait "$WPID"
	like "$(cat "$T/weak-$mode.out")" "handshake failed" "... the handshake never completes"
	like "$(cat "${PX_LOG[weak-$mode]}")" 'upstream TLS handshake failed|closed: upstream_failed' \
		"... and the log says the upstream handshake failed"
done

# ---- a private key others can read: a warning that names the file and its mode
cp "$CERTS/proxy.key" "$T/loose.key"
chmod 644 "$T/loose.key"
px_start loose "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$T/loose.key\"
tls_verify = \"disable\""
like "$(cat "${PX_LOG[loose]}")" "warn .*private key file $T/loose.key has mode 0644" \
	"a private key readable by others: warned at load time, with its name and mode"
unlike "$(cat "${PX_LOG[px]}")" 'private key file .* has mode' "a 0600 key: no warning"

# ---- secrets in memory: gone once the session ends
if [ "$(id -u)" = 0 ]; then
	out=$(timeout 60 "$PY" - "$P" "$CERTS/ca.crt" "${PX_PID[px]}" "$T/keylog" <<'PYEOF'
import socket, ssl, struct, sys, time
port, ca, pid, keylog = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]

def secrets():
    """The TLS 1.3 traffic secrets of our session, from the client's key log."""
    out = []
    for line in open(keylog):
        f = line.split()
        if len(f) == 3 and f[0].endswith("TRAFFIC_SECRET_0"):
            out.append(bytes.fromhex(f[2]))
    return out

def found(needles):
    """How many of needles are anywhere in pgktls' writable memory."""
    hits = set()
    mem = open("/proc/%d/mem" % pid, "rb", 0)
    for line in open("/proc/%d/maps" % pid):
        f = line.split()
        if "rw" not in f[1]:
            continue
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        # ASan's shadow and allocator reserve terabytes: no heap of ours is that big.
        if hi - lo > 1 << 30:
            continue
        for at in range(lo, hi, 1 << 24):
            try:
                mem.seek(at)
                data = mem.read(min(hi, at + (1 << 24) + 64) - at)
            except (OSError, OverflowError, ValueError):
                continue
            for n in needles:
                if n in data:
                    hits.add(n)
    return len(hits)

ctx = ssl.create_default_context(cafile=ca)
ctx.keylog_filename = keylog
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
s = socket.create_connection(("127.0.0.1", port))
s.sendall(struct.pack("!II", 8, 80877103))
assert s.recv(1) == b"S"
ss = ctx.wrap_socket(s, server_hostname="localhost")
body = struct.pack("!I", 196608) + b"user\0trusty\0database\0postgres\0\0"
ss.sendall(struct.pack("!I", len(body) + 4) + body)
while True:
    h = ss.recv(5)
    n = struct.unpack("!I", h[1:])[0]
    while n > 4:
        n -= len(ss.recv(n - 4))
    if h[0:1] == b"Z":
        break
sec = secrets()
print("secrets %d, in memory while open: %d" % (len(sec), found(sec)))
ss.sendall(b"X\0\0\0\4")
ss.close()
time.sleep(1)
print("in memory after close: %d" % found(sec))
PYEOF
)
	diag "$out"
	like "$out" '^secrets [1-9][0-9]*, in memory while open: [1-9]' \
		"memory scan finds the session's TLS traffic secrets while it is open"
	# OpenSSL 3.0 frees the SSL, which holds the TLS 1.3 traffic secrets, without
	# wiping it all: pgktls's allocation functions wipe every block OpenSSL frees.
	like "$out" 'in memory after close: 0$' "... and none of them once it has ended"
else
	skip 2 "reading the daemon's memory needs root"
fi

# ---- a full session with planted secrets, at log_level debug
PD="host=localhost hostaddr=127.0.0.1 port=$P dbname=$DB application_name=$APP"
VF="sslmode=verify-full $CA channel_binding=disable"
q_ok "cleartext password, application_name and options over TLS" \
	"$PD user=$U_CLEAR password=$PW_CLEAR $VF options=-csearch_path=$OPT" \
	"show search_path" "$OPT"
q_ok "SCRAM password over TLS" \
	"$PD user=$U_SCRAM password=$PW_SCRAM $VF" \
	"select current_user" "$U_SCRAM"
q_fails "a wrong password is refused" \
	"$PD user=$U_CLEAR password=$PW_WRONG $VF" \
	"select 1" "password authentication failed"
q_ok "cleartext password over a plaintext client hop" \
	"$PD user=$U_CLEAR password=$PW_CLEAR sslmode=disable" \
	"select 1" 1
# The stats endpoint, while a planted session is open.
timeout 20 "$PGBIN/psql" -X -Atq -d "$PD user=$U_SCRAM password=$PW_SCRAM $VF" \
	-c "select pg_sleep(3)" >/dev/null 2>&1 &
SPID=$!
sleep 1.5
STAT_BIN=$PGKTLS_BUILDDIR/tools/pgktls-stat
if [ -x "$STAT_BIN" ]; then
	"$STAT_BIN" -s "$STATS" --json all >"$T/stats.json" 2>&1
	"$STAT_BIN" -s "$STATS" connections >>"$T/stats.json" 2>&1
fi
wait "$SPID"
# A key that does not match its certificate: the error names files, never contents.
px_config badkey "tls_certificate = \"$CERTS/client.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"disable\""
"$PGKTLS_BIN" -c "${PX_CONF[badkey]}" >"$T/badkey.log" 2>&1 </dev/null
ok "$([ $? -ne 0 ] && echo 0 || echo 1)" "a key that does not match its certificate stops the daemon"
like "$(cat "$T/badkey.log")" 'tls_private_key: does not match' \
	"... with an error that names the key, not its contents"

# The scan: every secret, and every line of the private keys' PEM.
mapfile -t PEM < <(cat "$CERTS/proxy.key" "$CERTS/server.key" | grep -v -- '-----' | grep -E '.{16}')
LOGS=("${PX_LOG[@]}" "$T/badkey.log")
[ -s "$T/stats.json" ] && LOGS+=("$T/stats.json")
leaks=
for s in "$PW_CLEAR" "$PW_SCRAM" "$PW_WRONG" "$U_CLEAR" "$U_SCRAM" "$DB" "$APP" "$OPT" "${PEM[@]}"; do
	if grep -lF -- "$s" "${LOGS[@]}" >/dev/null 2>&1; then
		leaks+="$s in $(grep -lF -- "$s" "${LOGS[@]}" | tr '\n' ' ')"$'\n'
	fi
done
n=$(cat "${PX_LOG[px]}" | wc -l)
ok "$([ "$n" -gt 50 ] && echo 0 || echo 1)" "the debug log of those sessions is not empty ($n lines)"
is "$leaks" "" "no password, user, database, application_name, option or key PEM line in any log"
done_testing
