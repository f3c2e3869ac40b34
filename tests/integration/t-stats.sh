#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# The stats socket and pgktls-stat against a running pgktls with real clients: the
# document matches docs/stats.schema.json, the numbers move as they should (bytes equal
# what was sent, a refused plaintext client and a failed handshake are counted, a closed
# connection leaves the list), exit codes, Prometheus text, and a scraper that never reads
# stalls nothing. Where the kernel has kTLS (the VM: tests/ktls-vm/run.sh), the kernel's
# per-socket answer must say software for both directions of both hops, as pgktls
# recorded; elsewhere the document must say why there is no kernel view.
. "$(dirname "$0")/lib.sh"
setup
"$PY" -c 'import psycopg2' 2>/dev/null || skip_all "psycopg2 is not installed for $PY"
"$PY" -c 'import jsonschema' 2>/dev/null ||
	skip_all "python3-jsonschema is not installed for $PY (apt-get install python3-jsonschema)"
STAT=${PGKTLS_BUILDDIR}/tools/pgktls-stat
[ -x "$STAT" ] || bail "pgktls-stat not found at $STAT"
SCHEMA=$PGKTLS_SRCDIR/docs/stats.schema.json
pg_setup main

SOCK=$T/stats.sock
px_start px "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_client_ca_certificate = \"$CERTS/ca.crt\"
tls_client_required = true
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
stats_socket = \"$SOCK\""

is "$(stat -c %a "$SOCK" 2>&1)" 660 "the stats socket is mode 0660"

# valid FILE DESCRIPTION: FILE is a JSON document that matches the schema.
valid() {
	local out
	if out=$("$PY" - "$SCHEMA" "$1" 2>&1 <<'EOF'
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.validate(json.load(open(sys.argv[2])), schema)
EOF
	); then
		pass "$2"
	else
		fail "$2"
		diag "$out" "document: $(head -c 2000 "$1")"
	fi
}

"$STAT" -s "$SOCK" --json >"$T/empty.json"
is "$?" 0 "pgktls-stat --json exits 0"
valid "$T/empty.json" "the document of an idle pgktls matches the schema"

# A client the proxy must refuse (plaintext) and one whose handshake fails (no client cert).
q_fails "a plaintext client is refused" "$(px_dsn px sslmode=disable)" "select 1" "TLS is required"
q_fails "a client without a certificate fails its handshake" \
	"$(px_dsn px "sslmode=require") sslcert=/nonexistent sslkey=/nonexistent" "select 1" \
	"certificate|SSL|closed"

# The main probe: one psycopg2 connection (mutual TLS), held open while we look at it.
# trusty: trust auth (SCRAM channel binding cannot pass a TLS terminator).
DSN="$(px_dsn px "sslmode=verify-full sslrootcert=$CERTS/ca.crt") sslcert=$CERTS/client.crt sslkey=$CERTS/client.key user=trusty"
out=$(PXPORT=${PX_PORT[px]} PGKTLS_STAT="$STAT" SOCK="$SOCK" SCHEMA="$SCHEMA" T="$T" timeout 120 "$PY" - "$DSN" 2>&1 <<'EOF'
import json, os, socket, subprocess, sys, time
import jsonschema, psycopg2

schema = json.load(open(os.environ["SCHEMA"]))
n = 0
def stat(*req, expect=0):
    global n
    r = subprocess.run([os.environ["PGKTLS_STAT"], "-s", os.environ["SOCK"], "--json", *req],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != expect:
        print("FAIL pgktls-stat", *req, "exit", r.returncode, r.stderr.strip())
        sys.exit(1)
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, schema)
    n += 1
    with open(os.path.join(os.environ["T"], "doc-%d.json" % n), "w") as f:
        json.dump(doc, f, indent=1)
    return doc

def check(cond, what):
    print(("ok " if cond else "FAIL ") + what)

c = psycopg2.connect(sys.argv[1])
c.autocommit = True
port = socket.fromfd(c.fileno(), socket.AF_INET, socket.SOCK_STREAM).getsockname()[1]
me = "127.0.0.1:%d" % port
cur = c.cursor()
cur.execute("select 1")
cur.fetchall()

def mine(doc):
    for x in doc["connections"]:
        if x["client_addr"] == me:
            return x
    return None

doc = stat()
x = mine(doc)
check(x is not None, "the open connection is listed (%s)" % me)
if x is None:
    sys.exit(1)
cid = x["id"]
check(x["state"] == "relay", "its state is relay")
ch, sh = x["client"], x["server"]
check(ch["tls"] and ch["version"] in ("TLSv1.2", "TLSv1.3") and ch["cipher"],
      "client hop: TLS version and cipher (%s %s)" % (ch["version"], ch["cipher"]))
check(ch["sni"] == "localhost", "client hop: the SNI the client sent")
check(ch["peer_subject"] == "/CN=alice", "client hop: the client certificate's subject")
check(sh["tls"] and sh["version"] and sh["peer_subject"] == "/CN=localhost",
      "server hop: TLS with PostgreSQL's certificate")
check(sh["sni"] is None, "server hop: no SNI towards an IP address (RFC 6066)")
check(x["upstream_addr"] == sh["remote"], "upstream_addr is the server hop's peer")
check(ch["local"] == "127.0.0.1:" + os.environ["PXPORT"], "client hop: local address is the listener")

# Bytes: a simple Query message is 1 + 4 + len(sql) + 1 bytes; the rows come back whole.
sql = "select repeat('x', 100000)"
b0 = stat("connection", str(cid))["connection"]["bytes"]
cur.execute(sql)
row = cur.fetchone()
b1 = stat("connection", str(cid))["connection"]["bytes"]
d_c2s = b1["client_to_server"] - b0["client_to_server"]
d_s2c = b1["server_to_client"] - b0["server_to_client"]
check(d_c2s == 1 + 4 + len(sql) + 1, "client->server bytes grew by the Query message (%d)" % d_c2s)
check(100000 < d_s2c < 100000 + 200, "server->client bytes grew by the result (%d)" % d_s2c)

t = stat("totals")
check("connections" not in t and "totals" in t, "'totals' has totals and no connection list")
tt = t["totals"]
check(tt["clients"]["plaintext_refused"] == 1, "the refused plaintext client is counted")
check(tt["connections"]["closed_by_reason"]["tls_required"] == 1, "... and closed as tls_required")
check(tt["handshakes"]["client"]["failed"] >= 1, "the failed client handshake is counted")
check(tt["connections"]["active"] >= 1, "active connections >= 1")
lat = tt["handshakes"]["client_latency_ms"]
check(lat["count"] == tt["handshakes"]["client"]["completed"] and lat["count"] >= 1,
      "one latency sample per completed client handshake")
check(tt["bytes"]["client"]["rx"] >= b1["client_to_server"], "totals include our bytes")

k = t["kernel"]
for hop, h in (("client", ch), ("server", sh)):
    if k["ktls"]["available"]:
        for d in ("rx", "tx"):
            check(h[d]["engine"] == "kernel_sw",
                  "kTLS: %s hop %s is kernel_sw (got %s)" % (hop, d, h[d]["engine"]))
        kk = h["kernel"]
        check(kk["available"] and kk["ulp"] == "tls" and kk["rxconf"] == "sw" and kk["txconf"] == "sw",
              "kTLS: the kernel says %s hop rx and tx are software (%s)" % (hop, kk))
        check(kk.get("version") == h["version"], "kTLS: the kernel's TLS version matches")
    else:
        check(h["rx"]["engine"] == "userspace" and h["rx"]["reason"] in ("no_kernel", "disabled"),
              "no kTLS: %s hop rx is userspace with its reason (%s)" % (hop, h["rx"]))
        check(h["kernel"]["available"] is False and h["kernel"]["reason"],
              "no kTLS: %s hop says why there is no kernel view" % hop)
if not k["ktls"]["available"]:
    check(bool(k["ktls"]["reason"]), "no kTLS: the document says why (%s)" % k["ktls"]["reason"])
print("KTLS", "yes" if k["ktls"]["available"] else "no")

# The connection leaves the list once closed.
c.close()
time.sleep(0.5)
r = subprocess.run([os.environ["PGKTLS_STAT"], "-s", os.environ["SOCK"], "--json",
                    "connection", str(cid)], capture_output=True, text=True)
check(r.returncode == 1 and json.loads(r.stdout)["error"]["code"] == "not_found",
      "a closed connection is gone (connection %d: not_found, exit 1)" % cid)
doc = stat()
check(mine(doc) is None, "the closed connection left the list")
check(doc["totals"]["connections"]["closed_by_reason"]["done"] >= 1, "closed as done")
EOF
)
rc=$?
while IFS= read -r line; do
	case $line in
	"ok "*) pass "${line#ok }" ;;
	"FAIL "*) fail "${line#FAIL }" ;;
	KTLS*) KTLS=${line#KTLS } ;;
	*) diag "$line" ;;
	esac
done <<<"$out"
is "$rc" 0 "the probe script finished"
if [ "${PGKTLS_REQUIRE_KTLS:-0}" = 1 ]; then
	is "${KTLS:-}" yes "kTLS is available (PGKTLS_REQUIRE_KTLS=1)"
fi

# Prometheus and the table.
prom=$("$STAT" -s "$SOCK" --prometheus)
is "$?" 0 "pgktls-stat --prometheus exits 0"
like "$prom" '^pgktls_plaintext_refused_total 1$' "Prometheus: the refused client"
like "$prom" '^# TYPE pgktls_client_tls_handshake_seconds histogram$' "Prometheus: the histogram"
like "$prom" '^pgktls_client_tls_handshake_seconds_bucket\{le="\+Inf"\} [1-9]' \
	"Prometheus: handshakes in the +Inf bucket"
bad=$(printf '%s\n' "$prom" | grep -Ev '^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? [-+0-9.e]+)$')
is "$bad" "" "Prometheus: every line is a comment or a sample"

# A connection in the table, with its offload per direction.
timeout 60 "$PGBIN/psql" -X -Atq -d "$DSN" -c "select pg_sleep(8)" >/dev/null 2>&1 &
sleeper=$!
# Wait for it to be relaying (slow under the VM's emulated CPU).
for ((i = 0; i < 100; i++)); do
	table=$("$STAT" -s "$SOCK")
	rc=$?
	printf '%s\n' "$table" | grep -q ' relay ' && break
	sleep 0.2
done
is "$rc" 0 "pgktls-stat (table) exits 0"
like "$table" '^connections +[0-9]+ active' "table: the totals"
like "$table" 'relay .*TLSv1\.[23] (kernel_sw|userspace\(no_kernel\))/' "table: a row with its offload"

# Scrapers that connect and never read must not stall anything.
"$PY" - "$SOCK" <<'EOF' &
import socket, sys, time
socks = []
for i in range(20):
    s = socket.socket(socket.AF_UNIX)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    s.connect(sys.argv[1])
    s.sendall(b"all\n")
    socks.append(s)
time.sleep(8)
EOF
hogs=$!
sleep 0.5
t0=$(date +%s%N)
"$STAT" -s "$SOCK" --json totals >/dev/null
rc=$?
t1=$(date +%s%N)
is "$rc" 0 "pgktls-stat answers while 20 scrapers never read"
ok $(( (t1 - t0) / 1000000 < 2000 ? 0 : 1 )) "... within 2 s ($(( (t1 - t0) / 1000000 )) ms)"
q_ok "the proxy serves clients meanwhile" "$DSN" "select 42" 42
wait "$sleeper"
kill "$hogs" 2>/dev/null
wait "$hogs" 2>/dev/null

# Exit codes a script can rely on.
"$STAT" -s "$T/nonexistent.sock" >/dev/null 2>&1
is "$?" 3 "exit 3: no socket"
"$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$T/stale.sock"
"$STAT" -s "$T/stale.sock" >/dev/null 2>&1
is "$?" 5 "exit 5: a socket nobody serves"
"$STAT" --bogus >/dev/null 2>&1
is "$?" 2 "exit 2: usage"
"$STAT" -s "$SOCK" connection abc >/dev/null 2>"$T/err"
is "$?" 1 "exit 1: a malformed request gets the daemon's error"
like "$(cat "$T/err")" "expected a connection id" "... with its message"
if [ "$(id -u)" = 0 ] && getent passwd nobody >/dev/null; then
	# A copy nobody can run: the build tree may be closed to it (a clone in /root).
	install -m 755 "$STAT" "$T/pgktls-stat"
	runuser -u nobody -- "$T/pgktls-stat" -s "$SOCK" >/dev/null 2>&1
	is "$?" 4 "exit 4: permission denied (nobody, socket mode 0660)"
else
	"$STAT" -s "$SOCK" >/dev/null 2>&1
	is "$?" 0 "(not root: the permission test needs another user)"
fi

px_alive px
ok $? "pgktls survived"
done_testing
