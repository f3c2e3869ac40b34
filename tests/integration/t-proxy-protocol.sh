#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# PROXY protocol behind a real HAProxy (TCP mode): two pgktls instances with
# proxy_protocol = true behind `send-proxy-v2` (and one behind v1 `send-proxy`), clients
# with sslmode=verify-full through the balancer; the stats and the log of the pgktls that
# served a client show the client's own address and port; a connection without a header
# and a header from an untrusted source are refused and counted; a header split across
# segments, or followed by the SSLRequest in the same segment, works; HAProxy's health
# check (PROXY v2 LOCAL + SSLRequest, expects 'S') takes a draining pgktls out on SIGTERM,
# new clients go to the other one, and the drained one finishes its open session.
. "$(dirname "$0")/lib.sh"
setup
need_cmd haproxy
STAT=${PGKTLS_BUILDDIR}/tools/pgktls-stat
[ -x "$STAT" ] || bail "pgktls-stat not found at $STAT"
"$PY" -c 'import psycopg2, jsonschema' 2>/dev/null ||
	skip_all "python3-psycopg2 and python3-jsonschema are needed"

# count SOCK PATH: one number from the stats document (PATH in python syntax).
count() {
	"$STAT" -s "$1" --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)$2)"
}
pg_setup main

# The common part of every instance's config; $1 = trusted networks, $2 = stats socket.
conf() {
	echo "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
proxy_protocol = true
proxy_protocol_trusted = [$1]
startup_timeout = 3000
shutdown_timeout = 20000
stats_socket = \"$2\""
}
px_start a "$(conf '"127.0.0.1/32", "::1/128"' "$T/a.sock")"
px_start b "$(conf '"10.0.0.0/8", "127.0.0.1"' "$T/b.sock")"
px_start u "$(conf '"10.0.0.0/8"' "$T/u.sock")"

HA_V2=$(port_alloc)
HA_V1=$(port_alloc)
HA_U=$(port_alloc)
HA_SOCK=$T/haproxy.sock
# The check: with check-send-proxy a v2 server's checks start with a PROXY v2 LOCAL header
# (HAProxy has no client to name), then an SSLRequest; pgktls must answer 'S'. A listener
# that is gone (SIGTERM drains without listening) fails at connect.
cat >"$T/haproxy.cfg" <<EOF
global
	maxconn 200
	stats socket $HA_SOCK mode 600 level admin

defaults
	mode tcp
	timeout connect 2s
	timeout client 60s
	timeout server 60s
	timeout check 1s

frontend fe_v2
	bind 127.0.0.1:$HA_V2
	default_backend be_v2

backend be_v2
	# Always the first server that is up: a while it lives, then b.
	balance first
	option tcp-check
	tcp-check send-binary 0000000804d2162f
	tcp-check expect binary 53
	default-server inter 200ms fall 1 rise 1 send-proxy-v2 check-send-proxy
	server a 127.0.0.1:${PX_PORT[a]} check
	server b 127.0.0.1:${PX_PORT[b]} check

frontend fe_v1
	bind 127.0.0.1:$HA_V1
	default_backend be_v1

backend be_v1
	server b1 127.0.0.1:${PX_PORT[b]} send-proxy

frontend fe_u
	bind 127.0.0.1:$HA_U
	default_backend be_u

backend be_u
	server u 127.0.0.1:${PX_PORT[u]} send-proxy-v2
EOF
out=$(haproxy -c -f "$T/haproxy.cfg" 2>&1)
ok $? "haproxy -c accepts the test's configuration" || diag "$out"
haproxy -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 </dev/null &
HA_PID=$!
# lib.sh's cleanup does not know HAProxy: stop it first, keeping the exit status.
trap 'rc=$?; kill -KILL "$HA_PID" 2>/dev/null; (exit $rc); _cleanup' EXIT

# ha_status SERVER: UP, DOWN, ... as HAProxy's `show stat` says (be_v2 only).
ha_status() {
	"$PY" - "$HA_SOCK" "$1" <<'EOF'
import csv, io, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
    s.sendall(b"show stat\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
except OSError as e:
    print("no-socket", e)
    sys.exit(0)
rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
for r in rows:
    if r["pxname"] == "be_v2" and r["svname"] == sys.argv[2]:
        print(r["status"].split()[0])
EOF
}

# wait_status SERVER WANT: up to 10 s for HAProxy to see SERVER as WANT.
wait_status() {
	local i st
	for ((i = 0; i < 100; i++)); do
		st=$(ha_status "$1")
		[ "$st" = "$2" ] && return 0
		sleep 0.1
	done
	diag "HAProxy says server $1 is '$st', want $2"
	diag "$(tail -n 20 "$T/haproxy.log")"
	return 1
}
wait_status a UP && wait_status b UP
ok $? "HAProxy's health check (PROXY v2 LOCAL + SSLRequest -> 'S') finds both pgktls up"
sleep 0.5
is "$(grep -c 'TLS handshake failed' "${PX_LOG[b]}")" 0 \
	"health checks (LOCAL header, then gone after 'S') are not logged as failed handshakes"
is "$(count "$T/b.sock" "['totals']['handshakes']['client']['failed']")" 0 \
	"... nor counted as handshake failures"

# The client helper: psycopg2 with verify-full, its own source address from its socket,
# and the pgktls stats document, from the client's side.
cat >"$T/pp.py" <<'EOF'
import json, os, socket, subprocess, sys, time
import psycopg2

STAT = os.environ["STAT"]
CA = os.environ["CA"]

def dsn(port):
    return ("host=localhost hostaddr=127.0.0.1 port=%s dbname=postgres user=trusty "
            "sslmode=verify-full sslrootcert=%s connect_timeout=10" % (port, CA))

def conns(sock):
    r = subprocess.run([STAT, "-s", sock, "--json", "connections"], capture_output=True,
                       text=True, timeout=20)
    if r.returncode:
        sys.exit("pgktls-stat failed: " + r.stderr)
    return json.loads(r.stdout).get("connections", [])

def source(conn):
    s = socket.socket(fileno=os.dup(conn.fileno()))
    host, port = s.getsockname()[:2]
    s.detach()
    return "%s:%d" % (host, port)

def find(sock, addr):
    return [c for c in conns(sock) if c.get("client_addr") == addr]

cmd = sys.argv[1]
if cmd == "served":
    # served HAPORT SOCK: connect through HAProxy; print the client's source address and
    # whether the pgktls behind SOCK lists a connection from exactly that address.
    conn = psycopg2.connect(dsn(sys.argv[2]))
    cur = conn.cursor()
    cur.execute("select 41 + 1")
    addr = source(conn)
    found = find(sys.argv[3], addr)
    via = found[0]["client"].get("remote") if found else None
    print("source", addr)
    print("listed", len(found))
    print("via", via)
    print("answer", cur.fetchone()[0])
    conn.close()
elif cmd == "hold":
    # hold HAPORT SOCK READY GO: open a session and a transaction, say where it is, wait
    # for GO to exist, then run one more query and commit.
    conn = psycopg2.connect(dsn(sys.argv[2]))
    cur = conn.cursor()
    cur.execute("begin; create temporary table t (x int); insert into t values (1)")
    addr = source(conn)
    with open(sys.argv[4], "w") as f:
        f.write("%s %d\n" % (addr, len(find(sys.argv[3], addr))))
    for _ in range(300):
        if os.path.exists(sys.argv[5]):
            break
        time.sleep(0.1)
    cur.execute("insert into t values (2); select sum(x) from t")
    s = cur.fetchone()[0]
    conn.commit()
    conn.close()
    print("finished", s)
elif cmd == "raw":
    # raw PGKTLS_PORT SOCK MODE: a hand-made PROXY header, then an SSLRequest; prints the
    # answer byte and whether the stats list the connection under the header's client.
    sslreq = bytes.fromhex("0000000804d2162f")
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    port, sock, mode = int(sys.argv[2]), sys.argv[3], sys.argv[4]
    addrs = bytes([192, 0, 2, 7, 127, 0, 0, 1]) + (4242).to_bytes(2, "big") + \
        port.to_bytes(2, "big")
    tlv = b"\x04\x00\x05" + b"\x00" * 5  # a NOOP TLV to skip
    v2 = sig + b"\x21\x11" + (len(addrs) + len(tlv)).to_bytes(2, "big") + addrs + tlv
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if mode == "split":
        for piece in (v2[:5], v2[5:14], v2[14:20], v2[20:]):
            s.sendall(piece)
            time.sleep(0.15)
        s.sendall(sslreq)
    elif mode == "together":
        s.sendall(v2 + sslreq)
    elif mode == "v1-together":
        s.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 4242 %d\r\n" % port +
                  sslreq)
    elif mode == "garbage":
        s.sendall(sig + b"\x21\x11\xff\xff")
    elif mode == "direct-tls":
        # PostgreSQL 17 direct TLS: the ClientHello right after the header. TCP_CORK holds
        # the header until the ClientHello joins it, so both leave in one segment.
        import ssl
        ctx = ssl.create_default_context(cafile=CA)
        ctx.set_alpn_protocols(["postgresql"])
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        s.sendall(v2)
        t = ctx.wrap_socket(s, server_hostname="localhost", do_handshake_on_connect=False)
        t.setblocking(False)
        uncorked = False
        while True:
            try:
                t.do_handshake()
                break
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                if not uncorked:
                    t.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
                    uncorked = True
                time.sleep(0.01)
        t.setblocking(True)
        print("answer", "tls", t.version(), t.selected_alpn_protocol())
        print("listed", len(find(sock, "192.0.2.7:4242")))
        t.close()
        sys.exit(0)
    elif mode == "stall":
        s.settimeout(15)
        s.sendall(v2[:20])
        t0 = time.monotonic()
        # Meanwhile the stats document lists it, in its own state, and stays valid.
        time.sleep(0.3)
        import jsonschema
        r = subprocess.run([STAT, "-s", sock, "--json"], capture_output=True, text=True,
                           timeout=20)
        doc = json.loads(r.stdout)
        jsonschema.validate(doc, json.load(open(os.environ["SCHEMA"])))
        print("states", ",".join(sorted(c["state"] for c in doc.get("connections", []))))
    try:
        b = s.recv(1)
    except ConnectionResetError:
        b = b""  # closed with the unread rest of a refused header still queued
    print("answer", b.decode("latin-1") if b else "closed")
    if mode == "stall":
        print("after", "%.1f" % (time.monotonic() - t0))
    if b == b"S":
        print("listed", len(find(sock, "192.0.2.7:4242")))
    s.close()
EOF
pp() {
	STAT=$STAT CA=$CERTS/ca.crt SCHEMA=$PGKTLS_SRCDIR/docs/stats.schema.json \
		timeout 60 "$PY" "$T/pp.py" "$@" 2>&1
}


# ---- psql through HAProxy with verify-full
C="sslmode=verify-full sslrootcert=$CERTS/ca.crt"
q_ok "psql through HAProxy (send-proxy-v2) with sslmode=verify-full" \
	"host=localhost hostaddr=127.0.0.1 port=$HA_V2 dbname=postgres user=trusty $C" \
	"select 'through the balancer'" "through the balancer"
q_ok "... and with SCRAM (alice)" \
	"host=localhost hostaddr=127.0.0.1 port=$HA_V2 dbname=postgres user=alice password=alice-pw
	$C channel_binding=disable" \
	"select current_user" "alice"

# ---- the stats and the log show the client's own address and port
out=$(pp served "$HA_V2" "$T/a.sock")
src=$(printf '%s\n' "$out" | sed -n 's/^source //p')
like "$src" '^127\.0\.0\.1:[0-9]+$' "the client knows its own source address ($src)"
is "$(printf '%s\n' "$out" | sed -n 's/^listed //p')" 1 \
	"v2: pgktls a's stats list the connection under the client's address and port" ||
	diag "$out"
via=$(printf '%s\n' "$out" | sed -n 's/^via //p')
ok "$([ -n "$via" ] && [ "$via" != "$src" ]; echo $?)" \
	"... while its client hop's socket peer is HAProxy ($via)"
is "$(printf '%s\n' "$out" | sed -n 's/^answer //p')" 42 "... and the session works"
sleep 0.3
like "$(cat "${PX_LOG[a]}")" "c#[0-9]+ $src: closed: done" \
	"v2: pgktls a's log lines carry the client's address and port"

out=$(pp served "$HA_V1" "$T/b.sock")
src1=$(printf '%s\n' "$out" | sed -n 's/^source //p')
is "$(printf '%s\n' "$out" | sed -n 's/^listed //p')" 1 \
	"v1 (send-proxy): pgktls b's stats list the client's address and port ($src1)" ||
	diag "$out"
sleep 0.3
like "$(cat "${PX_LOG[b]}")" "c#[0-9]+ $src1: closed: done" \
	"v1: pgktls b's log lines carry the client's address and port"

# ---- the header is read exactly, however it arrives
out=$(pp raw "${PX_PORT[a]}" "$T/a.sock" split)
is "$(printf '%s\n' "$out" | tr '\n' ' ')" "answer S listed 1 " \
	"a v2 header (with a TLV) split over four segments, then an SSLRequest: 'S', 192.0.2.7:4242"
out=$(pp raw "${PX_PORT[a]}" "$T/a.sock" together)
is "$(printf '%s\n' "$out" | tr '\n' ' ')" "answer S listed 1 " \
	"a v2 header and the SSLRequest in one segment: no byte of the SSLRequest is lost"
out=$(pp raw "${PX_PORT[a]}" "$T/a.sock" v1-together)
is "$(printf '%s\n' "$out" | tr '\n' ' ')" "answer S listed 1 " \
	"a v1 line and the SSLRequest in one segment: likewise"

out=$(pp raw "${PX_PORT[a]}" "$T/a.sock" direct-tls)
like "$(printf '%s\n' "$out" | tr '\n' ' ')" "^answer tls TLSv1\.[23] postgresql listed 1 $" \
	"a v2 header and a direct-TLS ClientHello in one segment: the handshake completes"

# ---- refusals: no header, a bad header, an untrusted source
inv0=$(count "$T/a.sock" "['totals']['clients']['proxy_invalid']")
ref0=$(count "$T/a.sock" "['totals']['connections']['closed_by_reason']['proxy_refused']")
q_fails "a direct connection without a header is refused" \
	"host=localhost hostaddr=127.0.0.1 port=${PX_PORT[a]} dbname=postgres user=trusty $C" \
	"select 1" "closed|SSL|EOF|could not"
out=$(pp raw "${PX_PORT[a]}" "$T/a.sock" garbage)
is "$out" "answer closed" "a v2 header announcing 65535 bytes is refused at once"
sleep 0.3
is "$(count "$T/a.sock" "['totals']['clients']['proxy_invalid']")" "$((inv0 + 2))" \
	"both are counted as proxy_invalid"
is "$(count "$T/a.sock" "['totals']['connections']['closed_by_reason']['proxy_refused']")" \
	"$((ref0 + 2))" "... and closed as proxy_refused"
# Half a header, then nothing: startup_timeout (3 s here) ends it.
to0=$(count "$T/a.sock" "['totals']['clients']['startup_timeouts']")
out=$(pp raw "${PX_PORT[a]}" "$T/a.sock" stall)
secs=$(printf '%s\n' "$out" | sed -n 's/^after //p')
is "$(printf '%s\n' "$out" | sed -n 's/^answer //p')" closed \
	"half a header and then silence: closed by startup_timeout" || diag "$out"
like "$(printf '%s\n' "$out" | sed -n 's/^states //p')" "proxy_header" \
	"... while it waits, the stats (valid against the schema) show it in state proxy_header" ||
	diag "$out"
ok "$(awk "BEGIN { exit !(${secs:-99} >= 2.5 && ${secs:-99} < 8) }"; echo $?)" \
	"... after about 3 s (${secs} s)"
is "$(count "$T/a.sock" "['totals']['clients']['startup_timeouts']") $(count "$T/a.sock" \
	"['totals']['clients']['proxy_invalid']")" "$((to0 + 1)) $((inv0 + 3))" \
	"... counted as a startup timeout and as proxy_invalid"
like "$(cat "${PX_LOG[a]}")" \
	"refused: no complete PROXY header within 3000 ms \\(startup_timeout\\)" \
	"... with a log line that says so"
prom=$("$STAT" -s "$T/a.sock" --prometheus | sed -n 's/^pgktls_proxy_invalid_total //p')
is "$prom" "$((inv0 + 3))" "pgktls-stat --prometheus: pgktls_proxy_invalid_total"
like "$(cat "${PX_LOG[a]}")" "refused: no PROXY protocol header \\(proxy_protocol = true" \
	"the log says a header was missing"
like "$(cat "${PX_LOG[a]}")" "refused: PROXY v2 header longer than pgktls accepts" \
	"the log says the header was too long"

q_fails "a header from a source outside proxy_protocol_trusted is refused" \
	"host=localhost hostaddr=127.0.0.1 port=$HA_U dbname=postgres user=trusty $C" \
	"select 1" "closed|SSL|EOF|could not"
sleep 0.3
# (HAProxy may retry a server that closes at once, so at least one.)
n=$(count "$T/u.sock" "['totals']['clients']['proxy_untrusted']")
ok "$([ "$n" -ge 1 ]; echo $?)" "... counted as proxy_untrusted ($n)"
like "$(cat "${PX_LOG[u]}")" \
	"127\\.0\\.0\\.1:[0-9]+: refused: source not in proxy_protocol_trusted" \
	"... with a log line naming the balancer's address"

# SIGHUP applies a new trusted list to new connections.
sed -i 's|^proxy_protocol_trusted = .*|proxy_protocol_trusted = ["10.0.0.0/8", "127.0.0.0/8"]|' \
	"${PX_CONF[u]}"
kill -HUP "${PX_PID[u]}"
for ((i = 0; i < 50; i++)); do
	grep -q 'SIGHUP: reloaded' "${PX_LOG[u]}" && break
	sleep 0.1
done
q_ok "after a reload that trusts 127.0.0.0/8, the same balancer's clients get through" \
	"host=localhost hostaddr=127.0.0.1 port=$HA_U dbname=postgres user=trusty $C" \
	"select 'trusted now'" "trusted now"

# ---- drain: SIGTERM takes a out of the balancer, b takes new clients, a finishes its session
rm -f "$T/ready" "$T/go"
pp hold "$HA_V2" "$T/a.sock" "$T/ready" "$T/go" >"$T/hold.out" &
HOLD=$!
for ((i = 0; i < 100; i++)); do
	[ -s "$T/ready" ] && break
	sleep 0.1
done
read -r hsrc hlisted <"$T/ready"
is "$hlisted" 1 "a session in a transaction through HAProxy is on pgktls a ($hsrc)"
PID=${PX_PID[a]}
PX_PID[a]= # stopped here, not by px_stop
kill -TERM "$PID"
wait_status a DOWN
ok $? "after SIGTERM, HAProxy's check marks the draining pgktls a DOWN"
out=$(pp served "$HA_V2" "$T/b.sock")
is "$(printf '%s\n' "$out" | sed -n 's/^listed //p')" 1 \
	"a new client through HAProxy lands on pgktls b" || diag "$out"
touch "$T/go"
wait "$HOLD"
is "$(cat "$T/hold.out")" "finished 3" \
	"the session open on the draining pgktls a completes its transaction after SIGTERM"
wait "$PID"
is "$?" 0 "pgktls a exits 0 once its last session is done"
like "$(cat "${PX_LOG[a]}")" "c#[0-9]+ $hsrc: closed: done" \
	"... and logged the drained session under the client's address"

kill -TERM "$HA_PID"
wait "$HA_PID" 2>/dev/null
done_testing
