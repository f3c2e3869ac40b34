#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# The kTLS proof, where the kernel has kTLS (tests/ktls-vm/run-tests.sh runs it in a VM
# under a stock Debian kernel): with `ktls = required` on both hops, for TLS 1.2 and 1.3
# and each of AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305 (forced on both hops):
#   - psql, psycopg2 and pgjdbc work, and every direction of both hops is in the kernel:
#     pgktls's stats (confirmed by sock_diag) and /proc/net/tls_stat agree;
#   - bytes move by splice() (bytes_spliced), close_notify passes both ways;
#   - a client's KeyUpdate ends only that session on kernels that cannot rekey (counted,
#     logged), a corrupted record ends only its own connection;
# plus a 256 MB COPY each way arriving byte for byte, and NewSessionTickets from a TLS 1.3
# upstream (PostgreSQL 15 sends none: a stand-in server that does) ignored and counted.
# Elsewhere: skipped, or a failure under PGKTLS_REQUIRE_KTLS=1. The other side, no tls
# module, is t-ktls-fallback.sh. PGKTLS_KTLS_COPY_MB (default 256) sizes the COPYs.
. "$(dirname "$0")/lib.sh"
setup
need_ktls
"$PY" -c 'import psycopg2' 2>/dev/null || skip_all "psycopg2 is not installed for $PY"
JAR=${PGKTLS_JDBC_JAR:-/usr/share/java/postgresql.jar}
need_cmd java
[ -r "$JAR" ] || skip_all "pgjdbc not found at $JAR (apt install libpostgresql-jdbc-java)"
STAT=$PGKTLS_BUILDDIR/tools/pgktls-stat
POKE=$PGKTLS_BUILDDIR/tests/integration/tls_poke
[ -x "$STAT" ] || bail "pgktls-stat not found at $STAT"
[ -x "$POKE" ] || bail "tls_poke not found at $POKE (make check builds it)"

pg_setup main
export PX_WORKERS=1

CERT="tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
ktls = \"required\"
startup_timeout = 60000
connect_timeout = 30000"

# (The long timeouts: a JVM under the VM's emulated CPU can take over 10 s to handshake.)
# name TLS-version OpenSSL-cipher kernel-cipher: one instance per combination, both hops
# forced to it by pgktls's own settings (it is the server on one hop, the client on the other).
COMBOS="k12a128 TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256 aes-gcm-128
k12a256 TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384 aes-gcm-256
k12chacha TLSv1.2 ECDHE-ECDSA-CHACHA20-POLY1305 chacha20-poly1305
k13a128 TLSv1.3 TLS_AES_128_GCM_SHA256 aes-gcm-128
k13a256 TLSv1.3 TLS_AES_256_GCM_SHA384 aes-gcm-256
k13chacha TLSv1.3 TLS_CHACHA20_POLY1305_SHA256 chacha20-poly1305"
INSTANCES=
while read -r name ver cipher kcipher; do
	if [ "$ver" = TLSv1.2 ]; then
		ciph="tls_ciphers = \"$cipher\"
tls_server_ciphers = \"$cipher\""
	else
		ciph="tls_ciphersuites = \"$cipher\"
tls_server_ciphersuites = \"$cipher\""
	fi
	px_start "$name" "$CERT
stats_socket = \"$T/$name.sock\"
tls_min_version = \"$ver\"
tls_max_version = \"$ver\"
tls_server_min_version = \"$ver\"
tls_server_max_version = \"$ver\"
$ciph" || bail "pgktls $name did not start"
	INSTANCES+="$name ${PX_PORT[$name]} $T/$name.sock ${PX_LOG[$name]} $ver $cipher $kcipher
"
done <<<"$COMBOS"
like "$(cat "${PX_LOG[k12a128]}")" "kTLS: kernel TLS available \(ciphers: aes-gcm-128 aes-gcm-256 chacha20-poly1305\)" \
	"pgktls finds kTLS with all three ciphers at startup"

# ---- the matrix: psql, psycopg2, pgjdbc; stats, sock_diag and tls_stat; splice; close_notify
cat >"$T/matrix.py" <<'EOF'
import hashlib, json, os, socket, subprocess, sys, time
import psycopg2

E = os.environ
CERTS = E["CERTS"]
inst = [dict(zip(("name", "port", "sock", "log", "ver", "cipher", "kcipher"), l.split()))
        for l in E["INSTANCES"].splitlines() if l.strip()]

def check(cond, what):
    print(("ok " if cond else "FAIL ") + what, flush=True)
    return cond

def tls_stat():
    with open("/proc/net/tls_stat") as f:
        return {k: int(v) for k, v in (l.split() for l in f if l.strip())}

def stat(i, *req):
    r = subprocess.run([E["STAT"], "-s", i["sock"], "--json", *req], capture_output=True,
                       text=True, timeout=60)
    return json.loads(r.stdout)

def totals(i):
    return stat(i, "totals")["totals"]

def dsn(i, user="alice"):
    return ("host=localhost hostaddr=127.0.0.1 port=%s dbname=postgres user=%s password=%s-pw "
            "sslmode=verify-full sslrootcert=%s/ca.crt channel_binding=disable"
            % (i["port"], user, user, CERTS))

def wait_gone(i, addr):
    for _ in range(100):
        if not [x for x in stat(i, "connections")["connections"] if x["client_addr"] == addr]:
            return True
        time.sleep(0.2)
    return False

def hops_in_kernel(i, x, who):
    """Every direction of both hops in the kernel, as pgktls and sock_diag say."""
    good = True
    for hop in ("client", "server"):
        h = x[hop]
        good &= check(h["version"] == i["ver"] and h["cipher"] == i["cipher"],
                      "%s %s: %s hop negotiated %s %s" % (i["name"], who, hop, h["version"],
                                                          h["cipher"]))
        for d in ("rx", "tx"):
            good &= check(h[d]["engine"] == "kernel_sw",
                          "%s %s: %s hop %s is in the kernel (%s)" % (i["name"], who, hop, d,
                                                                     h[d]["engine"]))
        k = h["kernel"]
        good &= check(k.get("available") and k.get("cipher") == i["kcipher"] and
                      k.get("rxconf") == "sw" and k.get("txconf") == "sw",
                      "%s %s: sock_diag: %s hop %s, rx and tx sw" % (i["name"], who, hop,
                                                                    k.get("cipher")))
    return good

big_up = os.urandom(512 * 1024).hex()  # 1 MB of text each way
for i in inst:
    n = i["name"]
    t0, k0 = totals(i), tls_stat()
    c = psycopg2.connect(dsn(i))
    c.autocommit = True
    cur = c.cursor()
    s = socket.fromfd(c.fileno(), socket.AF_INET, socket.SOCK_STREAM)
    me = "127.0.0.1:%d" % s.getsockname()[1]
    s.close()
    check(c.info.ssl_attribute("protocol") == i["ver"] and
          c.info.ssl_attribute("cipher") == i["cipher"],
          "%s psycopg2: the client hop is %s %s" % (n, c.info.ssl_attribute("protocol"),
                                                   c.info.ssl_attribute("cipher")))
    cur.execute("select version, cipher from pg_stat_ssl where pid = pg_backend_pid()")
    check(cur.fetchone() == (i["ver"], i["cipher"]),
          "%s psycopg2: PostgreSQL sees the upstream hop as %s %s" % (n, i["ver"], i["cipher"]))
    k1 = tls_stat()
    check(k1["TlsCurrTxSw"] - k0["TlsCurrTxSw"] >= 2 and k1["TlsCurrRxSw"] - k0["TlsCurrRxSw"] >= 2,
          "%s psycopg2: tls_stat: TlsCurrTxSw +%d, TlsCurrRxSw +%d while connected (2 hops)"
          % (n, k1["TlsCurrTxSw"] - k0["TlsCurrTxSw"], k1["TlsCurrRxSw"] - k0["TlsCurrRxSw"]))
    xs = [x for x in stat(i, "connections")["connections"] if x["client_addr"] == me]
    if check(len(xs) == 1, "%s psycopg2: the live connection is listed" % n):
        hops_in_kernel(i, xs[0], "psycopg2")
    # 1 MB up (hashed by PostgreSQL) and 3.2 MB down (hashed here).
    cur.execute("select md5(%s)", (big_up,))
    check(cur.fetchone()[0] == hashlib.md5(big_up.encode()).hexdigest(),
          "%s psycopg2: 1 MB up arrives intact" % n)
    cur.execute("select string_agg(md5(i::text), '' order by i) from generate_series(1, 100000) i")
    want = "".join(hashlib.md5(str(j).encode()).hexdigest() for j in range(1, 100001))
    check(cur.fetchone()[0] == want, "%s psycopg2: 3.2 MB down arrives intact" % n)
    t1 = totals(i)
    spliced = t1["bytes"]["spliced"] - t0["bytes"]["spliced"]
    check(spliced >= 4000000 and t1["bytes"]["copied"] - t0["bytes"]["copied"] < 100000,
          "%s psycopg2: relayed by splice (%d bytes spliced, %d copied)"
          % (n, spliced, t1["bytes"]["copied"] - t0["bytes"]["copied"]))
    c.close()
    check(wait_gone(i, me), "%s psycopg2: the closed connection leaves the list" % n)
    t2, k2 = totals(i), tls_stat()
    check(k2["TlsTxSw"] - k0["TlsTxSw"] >= 2 and k2["TlsRxSw"] - k0["TlsRxSw"] >= 2,
          "%s psycopg2: tls_stat: TlsTxSw +%d, TlsRxSw +%d"
          % (n, k2["TlsTxSw"] - k0["TlsTxSw"], k2["TlsRxSw"] - k0["TlsRxSw"]))
    check(t2["connections"]["closed_by_reason"]["done"] - t0["connections"]["closed_by_reason"]["done"] == 1,
          "%s psycopg2: closed as done" % n)
    check(t2["control_records"]["alerts"] - t0["control_records"]["alerts"] >= 2,
          "%s psycopg2: close_notify came in on both hops (alerts +%d)"
          % (n, t2["control_records"]["alerts"] - t0["control_records"]["alerts"]))
    eng = t2["ktls"]["engaged"]
    check(all(eng[h][d] - t0["ktls"]["engaged"][h][d] == 1 for h in ("client", "server")
              for d in ("rx", "tx")), "%s psycopg2: engaged counted per hop and direction" % n)

    # psql, libpq's own client.
    k0 = tls_stat()
    r = subprocess.run([E["PGBIN"] + "/psql", "-X", "-At", "-d", dsn(i), "-c", "\\conninfo",
                        "-c", "select version || ' ' || cipher from pg_stat_ssl where pid = pg_backend_pid()"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0 and "SSL connection (protocol: %s, cipher: %s" % (i["ver"], i["cipher"]) in r.stdout
          and r.stdout.rstrip().endswith("%s %s" % (i["ver"], i["cipher"])),
          "%s psql: both hops %s %s (%s)" % (n, i["ver"], i["cipher"],
                                             (r.stdout + r.stderr).strip()[-200:].replace("\n", "; ")))
    k1 = tls_stat()
    check(k1["TlsTxSw"] - k0["TlsTxSw"] >= 2 and k1["TlsRxSw"] - k0["TlsRxSw"] >= 2 and
          k1["TlsDecryptError"] == k0["TlsDecryptError"],
          "%s psql: tls_stat: TlsTxSw +%d, TlsRxSw +%d, no decrypt error"
          % (n, k1["TlsTxSw"] - k0["TlsTxSw"], k1["TlsRxSw"] - k0["TlsRxSw"]))

    # close_notify without Terminate: passed on upstream, and PostgreSQL's comes back.
    t0 = totals(i)
    r = subprocess.run([E["POKE"], "query", i["port"], i["ver"]], capture_output=True, text=True,
                       timeout=60)
    check(r.stdout.splitlines()[-1:] == ["after close_notify: eof (close_notify)"],
          "%s: a client's close_notify reaches PostgreSQL and its close_notify comes back (%s)"
          % (n, r.stdout.strip().replace("\n", "; ")))
    time.sleep(0.3)
    t1 = totals(i)
    check(t1["control_records"]["alerts"] - t0["control_records"]["alerts"] == 2 and
          t1["connections"]["closed_by_reason"]["done"] - t0["connections"]["closed_by_reason"]["done"] == 1,
          "%s: ... two close_notify alerts counted, closed as done" % n)

# pgjdbc: one JVM, one connection to every instance, held while we look.
k0 = tls_stat()
# C1 only and the serial GC: the VM's emulated CPU makes the JVM's own work dominate.
j = subprocess.Popen(["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"] +
                     os.environ.get("PGKTLS_TEST_JAVA_OPTS", "").split() + ["-cp", E["JAR"],
                      E["JAVASRC"], CERTS + "/ca.crt"] +
                     [i["port"] for i in inst], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, text=True, cwd=E["T"])
# A stuck session must fail this step, not hang the whole run.
import threading
killer = threading.Timer(400, j.kill)
killer.start()
lines = []
for l in j.stdout:
    lines.append(l.rstrip())
    print("pgjdbc:", l.rstrip())
    if l.startswith("ready") or l.startswith("error"):
        break
# The string KtlsJdbc.java sends: hex of i * 7919 and a comma, until 1 MB.
sb, k, size = [], 0, 0
while size < 1000000:
    sb.append("%x," % (k * 7919))
    size += len(sb[-1])
    k += 1
want_md5 = hashlib.md5("".join(sb).encode()).hexdigest()
for i in inst:
    check("%s upstream %s %s" % (i["port"], i["ver"], i["cipher"]) in lines and
          "%s md5 %s echo-ok" % (i["port"], want_md5) in lines,
          "%s pgjdbc: upstream %s %s, 1 MB each way intact" % (i["name"], i["ver"], i["cipher"]))
    xs = [x for x in stat(i, "connections")["connections"] if x["state"] == "relay"]
    if check(len(xs) == 1, "%s pgjdbc: the live connection is listed" % i["name"]):
        hops_in_kernel(i, xs[0], "pgjdbc")
k1 = tls_stat()
check(k1["TlsCurrTxSw"] - k0["TlsCurrTxSw"] >= 2 * len(inst),
      "pgjdbc: tls_stat: TlsCurrTxSw +%d with %d sessions open" % (k1["TlsCurrTxSw"] - k0["TlsCurrTxSw"], len(inst)))
out, _ = j.communicate("go\n", timeout=400)
killer.cancel()
lines += out.splitlines()
check(j.returncode == 0 and all("%s after 1" % i["port"] in lines for i in inst),
      "pgjdbc: every session still works, then closes")
if j.returncode != 0:
    print("\n".join(lines))
EOF
# Its lines become TAP as they come (the VM is slow: show progress).
rc=
while IFS= read -r line; do
	case $line in
	"ok "*) pass "${line#ok }" ;;
	"FAIL "*) fail "${line#FAIL }" ;;
	"RC "*) rc=${line#RC } ;;
	*) diag "$line" ;;
	esac
done < <(INSTANCES="$INSTANCES" STAT="$STAT" POKE="$POKE" PGBIN="$PGBIN" CERTS="$CERTS" \
	JAR="$JAR" JAVASRC="$PGKTLS_SRCDIR/tests/integration/KtlsJdbc.java" T="$T" \
	timeout 900 "$PY" -u "$T/matrix.py" 2>&1
	echo "RC $?")
is "$rc" 0 "the matrix driver finished"

# ---- KeyUpdate and a corrupted record: each ends only its own session ----
# count NAME PATH: a number in instance NAME's totals (PATH in Python subscript form).
count() {
	"$STAT" -s "$T/$1.sock" --json totals |
		"$PY" -c "import json, sys; print(json.load(sys.stdin)['totals']$2)"
}
# Linux 6.14 added rekeying (a second TLS_RX/TLS_TX); before it a KeyUpdate ends the session.
kv=$(uname -r | awk -F. '{ print $1 * 1000 + $2 }')
for name in k13a128 k13a256 k13chacha; do
	port=${PX_PORT[$name]}
	r0=$(count "$name" "['control_records']['key_updates_refused']")
	c0=$(count "$name" "['connections']['closed_by_reason']['key_update']")
	mkfifo "$T/hold-$name"
	"$POKE" hold "$port" <"$T/hold-$name" >"$T/hold-$name.out" 2>&1 &
	holder=$!
	exec 7>"$T/hold-$name"
	out=$(timeout 60 "$POKE" keyupdate "$port" TLSv1.3 2>&1)
	if [ "$kv" -lt 6014 ]; then
		like "$out" "after keyupdate: (eof|reset|write failed)" \
			"$name: a client's KeyUpdate ends its session on Linux $(uname -r) (cannot rekey)"
		sleep 0.3
		is "$(count "$name" "['control_records']['key_updates_refused']") $(count "$name" \
			"['connections']['closed_by_reason']['key_update']")" "$((r0 + 1)) $((c0 + 1))" \
			"$name: ... counted as key_updates_refused and closed as key_update"
		like "$(cat "${PX_LOG[$name]}")" "client hop failed: peer sent a TLS 1.3 KeyUpdate and this kernel cannot rekey" \
			"$name: ... with the reason in the log"
	else
		like "$out" "query 2" "$name: a client's KeyUpdate is rekeyed (Linux $(uname -r))"
	fi
	# A record with a flipped byte: the kernel's EBADMSG ends that connection only.
	d0=$(tls_stat TlsDecryptError)
	e0=$(count "$name" "['connections']['closed_by_reason']['client_error']")
	out=$(timeout 60 "$POKE" corrupt "$port" TLSv1.3 2>&1)
	like "$out" "after corrupt: (eof|reset)" "$name: a corrupted record ends its connection"
	sleep 0.3
	is "$(tls_stat TlsDecryptError) $(count "$name" "['connections']['closed_by_reason']['client_error']")" \
		"$((d0 + 1)) $((e0 + 1))" "$name: ... TlsDecryptError +1, closed as client_error"
	like "$(cat "${PX_LOG[$name]}")" "client hop failed: kTLS record failed authentication: Bad message" \
		"$name: ... logged as a bad record (EBADMSG)"
	echo go >&7
	exec 7>&-
	wait "$holder"
	is "$(cat "$T/hold-$name.out")" "connected TLSv1.3 $(echo "$COMBOS" | awk -v n="$name" '$1 == n { print $3 }')
query 1
holding
query 3" "$name: a concurrent session kept working through both"
done
# TLS 1.2 has no KeyUpdate; a bad record there ends its connection the same way.
for name in k12a128 k12chacha; do
	d0=$(tls_stat TlsDecryptError)
	out=$(timeout 60 "$POKE" corrupt "${PX_PORT[$name]}" TLSv1.2 2>&1)
	like "$out" "after corrupt: (eof|reset)" "$name: a corrupted TLS 1.2 record ends its connection"
	is "$(tls_stat TlsDecryptError)" "$((d0 + 1))" "$name: ... TlsDecryptError +1"
	q_ok "$name: the instance still serves" "$(px_dsn "$name" "sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable")" \
		"select 7" 7
done

# ---- 256 MB COPY each way through kTLS on both hops, byte for byte ----
name=k13a256
D=$(px_dsn "$name" "sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable")
pg_sql main "create table big (line text); grant all on big to alice" >/dev/null
# 256 MiB (by default) of base64 lines (from an AES-CTR keystream: fast, and nothing repeats).
openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 0 </dev/zero 2>/dev/null |
	head -c $((${PGKTLS_KTLS_COPY_MB:-256} * 3 / 4 * 1024 * 1024)) | base64 -w 1000 >"$T/big.txt"
size=$(stat -c %s "$T/big.txt")
want=$(sha256sum <"$T/big.txt" | cut -d' ' -f1)
diag "COPY data: $size bytes, $(wc -l <"$T/big.txt") lines"
sp0=$(count "$name" "['bytes']['spliced']")
d0=$(tls_stat TlsDecryptError)
t0=$(date +%s.%N)
out=$(timeout 600 "$PGBIN/psql" -X -At -v ON_ERROR_STOP=1 -d "$D" -c "copy big from stdin" \
	<"$T/big.txt" 2>&1)
t1=$(date +%s.%N)
is "$out" "COPY $(wc -l <"$T/big.txt")" "COPY FROM STDIN of $((size >> 20)) MB through kTLS completes"
diag "COPY FROM took $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s"
is "$(pg_sql main "select count(*), sum(length(line) + 1) from big")" "$(wc -l <"$T/big.txt")|$size" \
	"COPY FROM: every line and byte arrived"
# Back out through pgktls: the same bytes as the file both ways (lines keep their order in a
# fresh heap), so neither direction lost, added or changed a byte.
t0=$(date +%s.%N)
via=$(copy_sha "$D" big 600)
t1=$(date +%s.%N)
diag "COPY TO took $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s"
is "$via" "$want" "COPY TO STDOUT of $((size >> 20)) MB through kTLS: byte for byte the file sent"
sp1=$(count "$name" "['bytes']['spliced']")
ok $((sp1 - sp0 >= 2 * size ? 0 : 1)) "both COPYs went by splice ($((sp1 - sp0)) bytes spliced)"
is "$(tls_stat TlsDecryptError)" "$d0" "no record failed to decrypt during the COPYs"
rm -f "$T/big.txt"

# ---- NewSessionTicket: PostgreSQL 15 sends none, so a stand-in TLS 1.3 upstream does ----
NSTPORT=$(port_alloc)
"$PY" - "$NSTPORT" "$CERTS" >"$T/nst.log" 2>&1 <<'EOF' &
import socket, ssl, struct, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
ctx.load_cert_chain(sys.argv[2] + "/server.crt", sys.argv[2] + "/server.key")
ctx.num_tickets = 3
ls = socket.create_server(("127.0.0.1", int(sys.argv[1])))
print("listening", flush=True)
def read(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            return None
        b += d
    return b
while True:
    raw, _ = ls.accept()
    if read(raw, 8) != b"\0\0\0\x08\x04\xd2\x16\x2f":
        raw.close()
        continue
    raw.sendall(b"S")
    s = ctx.wrap_socket(raw, server_side=True)
    n = struct.unpack("!I", read(s, 4))[0]
    read(s, n - 4)
    s.sendall(b"R\0\0\0\x08\0\0\0\0" + b"Z\0\0\0\x05I")
    while True:
        h = read(s, 5)
        if not h or h[0:1] == b"X":
            break
        read(s, struct.unpack("!I", h[1:])[0] - 4)
        v = b"tickets-ignored"
        s.sendall(b"D" + struct.pack("!IHI", 4 + 2 + 4 + len(v), 1, len(v)) + v +
                  b"C\0\0\0\x0dSELECT 1\0" + b"Z\0\0\0\x05I")
    s.unwrap()
    s.close()
EOF
nst=$!
for ((i = 0; i < 100; i++)); do grep -qs listening "$T/nst.log" && break; sleep 0.1; done
px_start nst "$CERT
stats_socket = \"$T/nst.sock\"" "host = \"127.0.0.1\"
port = $NSTPORT"
out=$(timeout 60 "$POKE" query "${PX_PORT[nst]}" TLSv1.3 2>&1)
like "$out" "query tickets-ignored" "TLS 1.3 upstream that sends NewSessionTickets: data flows"
like "$out" "after close_notify: eof \(close_notify\)" "... and close_notify passes both ways"
sleep 0.3
is "$(count nst "['control_records']['tickets']") $(count nst "['ktls']['engaged']['server']['rx']")" \
	"3 1" "... its 3 tickets arrive on the kTLS socket, counted and ignored"
kill "$nst" 2>/dev/null
wait "$nst" 2>/dev/null

done_testing
