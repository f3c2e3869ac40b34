#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# metrics_listen against a real Prometheus server: pgktls in front of a real PostgreSQL
# serves GET /metrics; the text format passes `promtool check metrics`, OpenMetrics comes
# when asked for; wrong paths, methods, malformed, oversized, slow and surplus requests get
# their status and are counted (in /metrics and in the stats document). Then Prometheus
# (Debian's package, its own data directory, scrape interval 1 s, the alert rules of
# docs/pgktls-alerts.yml loaded) scrapes pgktls while psql clients hold connections and
# run a COPY of known size each way, and its query API must show pgktls_connections_active
# and the byte counters as the clients made them. The shipped docs/prometheus.yml and
# docs/pgktls-alerts.yml pass promtool, and the alert rules pass their promtool unit tests.
. "$(dirname "$0")/lib.sh"
setup
need_cmd curl prometheus promtool
STAT=${PGKTLS_BUILDDIR}/tools/pgktls-stat
[ -x "$STAT" ] || bail "pgktls-stat not found at $STAT"
pg_setup main

MPORT=$(port_alloc)
M=http://127.0.0.1:$MPORT
SOCK=$T/stats.sock
px_start px "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
stats_socket = \"$SOCK\"
metrics_listen = \"127.0.0.1:$MPORT\""
DSN="$(px_dsn px "sslmode=verify-full sslrootcert=$CERTS/ca.crt") user=trusty"

# ---------------------------------------------------------------- the endpoint itself

curl -s -D "$T/h" -o "$T/text.prom" "$M/metrics"
like "$(head -n 1 "$T/h")" '^HTTP/1.1 200 OK' "GET /metrics: 200"
like "$(cat "$T/h")" '^Content-Type: text/plain; version=0.0.4; charset=utf-8' \
	"GET /metrics: the text format 0.0.4 by default"
like "$(cat "$T/text.prom")" '^pgktls_connections_active 0$' \
	"GET /metrics: pgktls_connections_active"
if out=$(promtool check metrics <"$T/text.prom" 2>&1); then
	pass "promtool check metrics accepts the text format"
else
	fail "promtool check metrics accepts the text format"
	diag "$out"
fi
out=$("$STAT" -s "$SOCK" --prometheus | promtool check metrics 2>&1)
is "$?" 0 "promtool check metrics accepts pgktls-stat --prometheus (the same renderer)"
[ -n "$out" ] && diag "$out"

# What Prometheus 2.42 sends as Accept: OpenMetrics first.
ACCEPT_PROM='application/openmetrics-text;version=1.0.0,'
ACCEPT_PROM+='application/openmetrics-text;version=0.0.1;q=0.75,'
ACCEPT_PROM+='text/plain;version=0.0.4;q=0.5,*/*;q=0.1'
curl -s -D "$T/h" -o "$T/om.txt" -H "Accept: $ACCEPT_PROM" "$M/metrics"
like "$(cat "$T/h")" '^Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8' \
	"Accept: OpenMetrics first gets OpenMetrics 1.0.0"
is "$(tail -n 1 "$T/om.txt")" "# EOF" "OpenMetrics: ends with # EOF"
like "$(cat "$T/om.txt")" '^# TYPE pgktls_conns_accepted counter$' \
	"OpenMetrics: counter families are named without _total"
like "$(cat "$T/om.txt")" '^pgktls_conns_accepted_total [0-9]+$' \
	"OpenMetrics: ... and samples with it"
unlike "$(cat "$T/om.txt")" '^# TYPE [a-z_]+_total ' "OpenMetrics: no family named *_total"
curl -s -D "$T/h" -o /dev/null -H 'Accept: text/plain;version=0.0.4' "$M/metrics"
like "$(cat "$T/h")" '^Content-Type: text/plain; version=0.0.4' \
	"Accept: text/plain gets the text format"

curl -s --http1.0 -D "$T/h" -o "$T/h10.body" "$M/metrics"
like "$(head -n 1 "$T/h")" '^HTTP/1.1 200 ' "HTTP/1.0 GET /metrics: 200"
curl -s -I -o "$T/head" "$M/metrics"
like "$(head -n 1 "$T/head")" '^HTTP/1.1 200 ' "HEAD /metrics: 200"
like "$(cat "$T/head")" '^Content-Length: [1-9][0-9]+' \
	"HEAD /metrics: the length of the body it leaves out"
is "$(curl -s -X HEAD --max-time 5 "$M/metrics" 2>/dev/null | wc -c)" 0 "HEAD /metrics: no body"

# raw REQUEST: send REQUEST (Python escapes: \r, \xNN) on a fresh connection, then read
# the answer until the server closes. Prints the status code (or "none") and the seconds
# until the close, then the answer's header fields.
raw() {
	"$PY" - "$MPORT" "$1" <<'EOF'
import codecs, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
t0 = time.monotonic()
s.sendall(codecs.decode(sys.argv[2], "unicode_escape").encode("latin-1"))
resp = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        resp += b
except OSError as e:
    print("error", e)
line = resp.split(b"\r\n", 1)[0].decode("latin-1")
code = line.split(" ")[1] if line.startswith("HTTP/1.1 ") else "none"
print(code, "%.1f" % (time.monotonic() - t0))
sys.stdout.flush()
for h in resp.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
    print(h.decode("latin-1"))
EOF
}

# status DESCRIPTION WANT REQUEST: the answer's status code.
status() {
	local out
	out=$(raw "$3")
	like "$out" "^$2 " "$1 -> $2"
}

status "GET /other" 404 'GET /other HTTP/1.1\r\nHost: x\r\n\r\n'
status "HEAD /" 404 'HEAD / HTTP/1.1\r\nHost: x\r\n\r\n'
out=$(raw 'POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')
like "$out" '^405 ' "POST /metrics -> 405"
like "$out" '^Allow: GET, HEAD$' "... with Allow: GET, HEAD"
status "DELETE /metrics" 405 'DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n'
status "a request line without a version" 400 'GET /metrics\r\n\r\n'
status "a space before a field's colon" 400 'GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n'
status "HTTP/1.1 without Host" 400 'GET /metrics HTTP/1.1\r\n\r\n'
status "binary garbage" 400 '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n'
status "HTTP/2.0" 505 'GET /metrics HTTP/2.0\r\n\r\n'
status "a request body" 413 'GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello'
status "a 3000-byte path" 414 "GET /$(head -c 3000 /dev/zero | tr '\0' a) HTTP/1.1\\r\\n\\r\\n"
# Oversized headers, sent whole: the 431 must arrive despite the unread rest (no reset).
big=$(head -c 30000 /dev/zero | tr '\0' a)
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $big" "$M/metrics")
is "$code" 431 "a 30000-byte header (curl) -> 431"
out=$(raw 'GET /metrics HTTP/1.1\r\nHost: x\r\n')
like "$out" '^408 [2-9]\.' "a request head not complete in 2 s -> 408, after 2 s"
# A client that gives up halfway: not answered, counted as aborted.
"$PY" - "$MPORT" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /metr")
time.sleep(0.2)
s.close()
EOF
# 64 clients at once is the limit (shared with the unix socket): the 65th gets 503.
out=$("$PY" - "$MPORT" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
time.sleep(0.3)
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(5)
print(s.recv(4096).split(b"\r\n", 1)[0].decode())
for h in held:
    h.close()
EOF
)
like "$out" '^HTTP/1.1 503 ' "the 65th concurrent client -> 503"
# The held connections (no byte sent) were not requests: they are not counted.
sleep 0.5
status "after them, GET /metrics" 200 'GET /metrics HTTP/1.0\r\n\r\n'

# metric NAME{LABELS} [FILE]: the value of one sample in text exposition format.
metric() {
	awk -v k="$1" '$1 == k { print $2 }' "${2:-$T/now.prom}"
}
curl -s -o "$T/now.prom" "$M/metrics"
declare -A WANT_REFUSED=([bad_request]=4 [not_found]=2 [method_not_allowed]=2 [timeout]=1
	[too_large]=3 [version_not_supported]=1 [busy]=1 [aborted]=1 [internal]=0)
for r in "${!WANT_REFUSED[@]}"; do
	is "$(metric "pgktls_metrics_requests_refused_total{reason=\"$r\"}")" \
		"${WANT_REFUSED[$r]}" "refused requests counted in /metrics: $r"
done
"$STAT" -s "$SOCK" --json >"$T/doc.json"
is "$("$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))["totals"]["metrics_endpoint"]
print(d["enabled"], d["refused"]["bad_request"], d["refused"]["too_large"], d["refused"]["busy"],
      d["scrapes"] >= 8)' "$T/doc.json")" "True 4 3 1 True" \
	"the stats document counts the same (refusals, scrapes)"
px_alive px
ok $? "pgktls is still running after the abuse"

# ---------------------------------------------------------------- a real Prometheus

PPORT=$(port_alloc)
P=http://127.0.0.1:$PPORT
cp "$PGKTLS_SRCDIR/docs/pgktls-alerts.yml" "$T/pgktls-alerts.yml"
cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - pgktls-alerts.yml
scrape_configs:
  - job_name: pgktls
    static_configs:
      - targets: ["127.0.0.1:$MPORT"]
EOF
PROM_PID=
# prom_stop: SIGTERM, and it must be gone within 20 s (a TSDB head flush at most).
prom_stop() {
	local i rc
	[ -n "$PROM_PID" ] || return 0
	kill -TERM "$PROM_PID" 2>/dev/null
	for ((i = 0; i < 200; i++)); do
		kill -0 "$PROM_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$PROM_PID" 2>/dev/null; then
		kill -KILL "$PROM_PID"
		wait "$PROM_PID" 2>/dev/null
		PROM_PID=
		fail "prometheus exits within 20 s of SIGTERM"
		return 1
	fi
	wait "$PROM_PID"
	rc=$?
	PROM_PID=
	is "$rc" 0 "prometheus exits 0 on SIGTERM (in $((i / 10)).$((i % 10)) s)"
}
# Prometheus goes down with the test, whatever happens (then lib.sh's cleanup runs).
trap '_rc=$?; [ -n "$PROM_PID" ] && kill -KILL "$PROM_PID" 2>/dev/null; (exit $_rc); _cleanup' EXIT

t0=$(date +%s.%N)
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom-data" \
	--web.listen-address="127.0.0.1:$PPORT" --log.level=warn \
	>"$T/prometheus.log" 2>&1 </dev/null &
PROM_PID=$!
for ((i = 0; i < 600; i++)); do
	curl -sf -o /dev/null "$P/-/ready" && break
	kill -0 "$PROM_PID" 2>/dev/null || break
	sleep 0.1
done
if curl -sf -o /dev/null "$P/-/ready"; then
	secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	pass "prometheus is ready (in $secs s)"
else
	fail "prometheus is ready within 60 s"
	diag "$(tail -n 20 "$T/prometheus.log")"
	done_testing
	exit 1
fi

# q EXPR: the value of the first sample of an instant query, or "none".
pq() {
	curl -s --max-time 5 --data-urlencode "query=$1" "$P/api/v1/query" | "$PY" -c '
import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "none")
except Exception:
    print("none")'
}

# pq_wait DESCRIPTION EXPR WANT [SECONDS]: poll until the query gives WANT.
pq_wait() {
	local v i
	for ((i = 0; i < ${4:-20} * 5; i++)); do
		v=$(pq "$2")
		[ "$v" = "$3" ] && break
		sleep 0.2
	done
	is "$v" "$3" "$1"
}

# doc_value PATH: a value from the stats document's totals ("bytes.client.tx").
doc_value() {
	"$STAT" -s "$SOCK" --json totals | "$PY" -c '
import json, sys
v = json.load(sys.stdin)["totals"]
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$1"
}

# synced: Prometheus's latest byte counters equal the daemon's own (no traffic meanwhile).
# Sets B_TX and B_RX (client hop: tx to clients, rx from them).
synced() {
	local i tx rx ptx prx
	for ((i = 0; i < 100; i++)); do
		tx=$(doc_value bytes.client.tx)
		rx=$(doc_value bytes.client.rx)
		ptx=$(pq 'pgktls_hop_bytes_total{hop="client",direction="tx"}')
		prx=$(pq 'pgktls_hop_bytes_total{hop="client",direction="rx"}')
		[ "$tx" = "$ptx" ] && [ "$rx" = "$prx" ] && break
		sleep 0.2
	done
	B_TX=$ptx B_RX=$prx
	[ "$tx" = "$ptx" ] && [ "$rx" = "$prx" ]
	ok $? "$1: Prometheus's byte counters equal the stats document's (tx $ptx/$tx, rx $prx/$rx)"
}

pq_wait "Prometheus scrapes pgktls: up == 1" 'up{job="pgktls"}' 1 30
targets=$(curl -s "$P/api/v1/targets")
like "$targets" '"health":"up"' "the target is healthy"
like "$targets" '"lastError":""' \
	"... with no scrape error (Prometheus parsed the OpenMetrics it asked for)"
pq_wait "the refusals are in Prometheus too (timeout)" \
	'pgktls_metrics_requests_refused_total{reason="timeout"}' 1
pq_wait "... and too_large" 'pgktls_metrics_requests_refused_total{reason="too_large"}' 3
synced "before the clients"
TX0=$B_TX RX0=$B_RX

# Three sessions held open: pgktls_connections_active must say 3, then 0 once they end.
sleepers=()
for i in 1 2 3; do
	timeout 60 "$PGBIN/psql" -X -Atq -d "$DSN" -c "select pg_sleep(55)" >/dev/null 2>&1 &
	sleepers+=($!)
done
pq_wait "pgktls_connections_active is 3 while three psql sessions are open" \
	pgktls_connections_active 3
is "$(doc_value connections.active)" 3 "... as the stats document says"
pg_sql main "select pg_terminate_backend(pid) from pg_stat_activity
	where query = 'select pg_sleep(55)'" >/dev/null
wait "${sleepers[@]}"
pq_wait "pgktls_connections_active is 0 once they ended" pgktls_connections_active 0

# A COPY of known size each way: 2000 rows of 999 bytes + newline out, 1 000 000 bytes in.
pg_sql main "create table sink (t text); grant insert on sink to trusty" >/dev/null
head -c 1000000 /dev/zero | tr '\0' y | fold -w 999 >"$T/in.txt"
IN_BYTES=$(stat -c %s "$T/in.txt")
timeout 60 "$PGBIN/psql" -X -Atq -v ON_ERROR_STOP=1 -d "$DSN" \
	-c "copy (select repeat('x', 999) from generate_series(1, 2000)) to stdout" >"$T/out.txt"
is "$(stat -c %s "$T/out.txt")" 2000000 "COPY TO STDOUT through pgktls: 2 000 000 bytes"
timeout 60 "$PGBIN/psql" -X -Atq -v ON_ERROR_STOP=1 -d "$DSN" -c "copy sink from stdin" \
	<"$T/in.txt"
is "$?" 0 "COPY FROM STDIN through pgktls: $IN_BYTES bytes"
synced "after the clients"
# What the clients moved, plus protocol framing: startup, authentication, parameter
# status, one 5-byte header per CopyData, errors for the three terminated sessions.
d_tx=$((B_TX - TX0)) d_rx=$((B_RX - RX0))
ok $((!(d_tx >= 2000000 + 2000 * 5 && d_tx < 2000000 + 2000 * 5 + 8000))) \
	"pgktls_hop_bytes_total{hop=client,direction=tx} grew by the COPY out and framing ($d_tx)"
ok $((!(d_rx >= IN_BYTES && d_rx < IN_BYTES + 6000))) \
	"pgktls_hop_bytes_total{hop=client,direction=rx} grew by the COPY in and framing ($d_rx)"
is "$(pq 'pgktls_conns_accepted_total')" "$(doc_value counters.conns_accepted)" \
	"pgktls_conns_accepted_total matches the stats document"
v=$(pq 'pgktls_metrics_scrapes_total')
ok $((!(${v:-0} >= 3))) "pgktls_metrics_scrapes_total counts Prometheus's scrapes ($v)"

# The alert rules evaluate against real data without errors. Which fire depends on the
# machine (no kTLS in the kernel: PgktlsKtlsFallbacksRising is pending, rightly); an up
# pgktls with a reachable PostgreSQL must not be reported down or cut off.
for ((i = 0; i < 50; i++)); do
	rules=$(curl -s "$P/api/v1/rules" | "$PY" -c '
import json, sys
rs = [r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]
print(len(rs), sorted(set(r["health"] for r in rs)))
print("active:", " ".join(r["name"] for r in rs if r["state"] != "inactive"))')
	[ "$(head -n 1 <<<"$rules")" = "7 ['ok']" ] && break
	sleep 0.2
done
is "$(head -n 1 <<<"$rules")" "7 ['ok']" \
	"Prometheus evaluates the 7 alert rules of docs/pgktls-alerts.yml without errors"
diag "alert rules $(tail -n 1 <<<"$rules")"
unlike "$(tail -n 1 <<<"$rules")" 'PgktlsDown|PgktlsUpstreamFailures|PgktlsConnectionLimit' \
	"... and neither down, nor upstream failures, nor the connection limit is reported"
prom_stop

# ---------------------------------------------------------------- the shipped files

out=$(promtool check config "$PGKTLS_SRCDIR/docs/prometheus.yml" 2>&1)
ok $? "promtool check config docs/prometheus.yml" || diag "$out"
out=$(promtool check rules "$PGKTLS_SRCDIR/docs/pgktls-alerts.yml" 2>&1)
ok $? "promtool check rules docs/pgktls-alerts.yml" || diag "$out"
out=$(cd "$PGKTLS_SRCDIR/tests/data" && promtool test rules pgktls-alerts.test.yml 2>&1)
ok $? "promtool test rules: the alerts fire on the series they should (tests/data)" ||
	diag "$out"

px_stop px
done_testing
