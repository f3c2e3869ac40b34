#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Where the kernel has no kTLS (no tls module: this machine, or the kTLS VM booted with
# PGKTLS_VM_NO_TLS=1): `ktls = auto` serves psql, psycopg2 and pgjdbc in userspace TLS and
# says why per connection; `ktls = required` refuses every TLS hop with a clear
# ErrorResponse, and still serves connections with no TLS on either hop (nothing to
# offload). Skipped where kTLS is available (t-ktls.sh covers that), or a failure there
# under PGKTLS_REQUIRE_NO_KTLS=1.
. "$(dirname "$0")/lib.sh"
setup
if [ -r /proc/net/tls_stat ]; then
	if [ "${PGKTLS_REQUIRE_NO_KTLS:-0}" = 1 ]; then
		echo "1..1"
		echo "not ok 1 - the tls module is absent (PGKTLS_REQUIRE_NO_KTLS=1): /proc/net/tls_stat exists"
		exit 1
	fi
	echo "1..0 # SKIP this kernel has kTLS (/proc/net/tls_stat): t-ktls.sh tests it"
	exit 0
fi
"$PY" -c 'import psycopg2' 2>/dev/null || skip_all "psycopg2 is not installed for $PY"
JAR=${PGKTLS_JDBC_JAR:-/usr/share/java/postgresql.jar}
need_cmd java
[ -r "$JAR" ] || skip_all "pgjdbc not found at $JAR (apt install libpostgresql-jdbc-java)"
STAT=$PGKTLS_BUILDDIR/tools/pgktls-stat
[ -x "$STAT" ] || bail "pgktls-stat not found at $STAT"
pg_setup main
export PX_WORKERS=1

# Generous timeouts: under the VM's emulated CPU a JVM's handshake can take seconds.
CERT="tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
startup_timeout = 60000
connect_timeout = 30000"
VERIFY="tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\""
px_start auto "$CERT
$VERIFY
ktls = \"auto\"
stats_socket = \"$T/auto.sock\""
px_start req "$CERT
$VERIFY
ktls = \"required\"
stats_socket = \"$T/req.sock\""
px_start reqplain "$CERT
tls_verify = \"disable\"
ktls = \"required\""
like "$(cat "${PX_LOG[auto]}")" "kTLS unavailable: TCP_ULP tls: No such file or directory" \
	"startup says kTLS is unavailable, and why"

C="sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable"
UPQ="select ssl from pg_stat_ssl where pid = pg_backend_pid()"

# ---- ktls = auto: every client served in userspace, with the reason recorded ----
q_ok "auto: psql through userspace TLS on both hops" "$(px_dsn auto "$C")" "$UPQ" t
out=$(timeout 120 "$PY" - "$(px_dsn auto "$C")" "$STAT" "$T/auto.sock" 2>&1 <<'EOF'
import json, socket, subprocess, sys
import psycopg2
c = psycopg2.connect(sys.argv[1])
cur = c.cursor()
cur.execute("select md5(string_agg(md5(i::text), '')) from generate_series(1, 100000) i")
print("query", len(cur.fetchone()[0]))
me = "127.0.0.1:%d" % socket.fromfd(c.fileno(), socket.AF_INET, socket.SOCK_STREAM).getsockname()[1]
doc = json.loads(subprocess.run([sys.argv[2], "-s", sys.argv[3], "--json"], capture_output=True,
                                text=True).stdout)
x = [x for x in doc["connections"] if x["client_addr"] == me][0]
for hop in ("client", "server"):
    print(hop, " ".join("%s=%s/%s" % (d, x[hop][d]["engine"], x[hop][d].get("reason"))
                        for d in ("rx", "tx")))
print("kernel", doc["kernel"]["ktls"]["available"], doc["kernel"]["ktls"]["reason"] is not None)
c.close()
EOF
)
is "$out" "query 32
client rx=userspace/no_kernel tx=userspace/no_kernel
server rx=userspace/no_kernel tx=userspace/no_kernel
kernel False True" "auto: psycopg2 served; stats say userspace because of no_kernel, per hop and direction"
run_jdbc() {
	(cd "$T" && HOME=$T timeout 120 java ${PGKTLS_TEST_JAVA_OPTS:-} -cp "$JAR" \
		"$PGKTLS_SRCDIR/tests/integration/JdbcProbe.java" "$1" "$CERTS/ca.crt" 2>&1)
}
is "$(run_jdbc "${PX_PORT[auto]}")" "query alice 42
cancel 57014 quickly
after 1" "auto: pgjdbc served (query and cancel)"
out=$("$STAT" -s "$T/auto.sock" --json totals | "$PY" -c '
import json, sys
t = json.load(sys.stdin)["totals"]
f = t["ktls"]["fallbacks"]
print(min(f[h][d]["no_kernel"] for h in ("client", "server") for d in ("rx", "tx")) >= 3,
      sum(t["ktls"]["engaged"][h][d] for h in ("client", "server") for d in ("rx", "tx")),
      t["ktls"]["refused"])')
is "$out" "True 0 0" "auto: every direction of every session counted as a no_kernel fallback"

# ---- ktls = required: a clear refusal wherever a hop has TLS ----
q_fails "required: psql is refused with an ErrorResponse that says why" "$(px_dsn req "$C")" \
	"select 1" "FATAL: +pgktls: kernel TLS offload is required \(ktls = required\) but not possible"
like "$(cat "$T/q.err")" "DETAIL: +client hop: receive no_kernel, send no_kernel" \
	"required: ... its DETAIL names the hop and the reason"
like "$(cat "$T/q.err")" "HINT: +Set ktls = auto" "required: ... and its HINT the way out"
q_fails "required: a plaintext client is refused on the TLS upstream hop" \
	"$(px_dsn req "sslmode=disable")" "select 1" "DETAIL: +server hop: receive no_kernel"
out=$(timeout 60 "$PY" - "$(px_dsn req "$C")" 2>&1 <<'EOF'
import sys
import psycopg2
try:
    psycopg2.connect(sys.argv[1])
    print("connected")
except psycopg2.OperationalError as e:
    print("refused:", str(e).strip().splitlines()[0])
EOF
)
like "$out" "^refused: .*kernel TLS offload is required" "required: psycopg2 is refused, and told why"
# (pgjdbc gets the same ErrorResponse; one JVM start less matters under the VM's emulated CPU.)
out=$("$STAT" -s "$T/req.sock" --json totals | "$PY" -c '
import json, sys
t = json.load(sys.stdin)["totals"]
print(t["ktls"]["refused"], t["connections"]["closed_by_reason"]["ktls_required"])')
is "$out" "3 3" "required: every refusal counted (ktls.refused, closed as ktls_required)"
q_ok "required: no TLS on either hop, nothing to offload: served" \
	"$(px_dsn reqplain "sslmode=disable")" "select 'plain'" plain

done_testing
