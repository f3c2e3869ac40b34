#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Binary upgrade (SIGUSR2), phase 2: established sessions move to the new process
# (issue 15). TLS on both hops, upstream verify_full; the engines are tlsrec (no kernel
# TLS, openssl_records unset) or, under PGKTLS_TEST_KTLS=required in the kTLS VM, kTLS.
#   1. A COPY TO STDOUT and a COPY FROM STDIN (PGKTLS_MOVE_COPY_MB each, default 200, 32
#      under PGKTLS_TEST_SLOW=1) a fifth of the way, the first paused (its client reads
#      nothing: pgktls's buffers are full), the second sending slowly: the binary is
#      upgraded, both go on and arrive byte for byte; both sessions were handed over and
#      adopted, a client connecting in a tight loop meanwhile sees no error, and the old
#      process exits 0.
#   2. 200 idle sessions (PGKTLS_MOVE_IDLE) move: each shows up in the new process's
#      stats with its client address, byte counts and engines, each runs a query after;
#      the old process exits 0 at once (nothing to drain).
#   3. A new process that refuses every session (PGKTLS_TEST_HANDOVER_NACK=1): they stay
#      and drain on the old process, work, and it exits 0 after them.
#   4. A refused takeover (PGKTLS_TEST_HANDOVER_VERSION=99): the old process serves on and
#      every session it holds works.
#   5. Two sessions in their handshake at the commit: the one that reaches the relay
#      within the offer's 3 s moves, the one that finishes later drains on the old process.
#   6. A new process that dies at the first session offered (PGKTLS_TEST_HANDOVER_CRASH=
#      session), after the commit: the old process relays every frozen session again.
#   7. Keys after a move: TLS 1.3 on both hops, send keys of 32 records each
#      (PGKTLS_TEST_REKEY_RECORDS): a COPY FROM STDIN (PGKTLS_MOVE_KEYS_MB, default 4) and
#      an idle session (tls_poke holdkey) move mid-way. From the traffic secrets it was
#      handed, the new process follows and answers the idle client's KeyUpdate request,
#      then sends it a 19.8 MB COPY TO STDOUT and takes the rest of the COPY FROM STDIN,
#      changing its send keys on both hops throughout: both arrive byte for byte. tlsrec
#      always can; kTLS from Linux 6.14 (before, a KeyUpdate ends a session, moved or not:
#      t-ktls-rekey).
# Under kTLS: no TlsDecryptError in /proc/net/tls_stat across the whole test. Under the
# sanitizers: no report from any of the processes.
. "$(dirname "$0")/lib.sh"
need_cmd "$PY"
"$PY" -c 'import psycopg2' 2>/dev/null || skip_all "psycopg2 is not installed for $PY"
setup
# 200 idle sessions, the COPYs and the connect loop, each with a server connection.
pg_setup main max_connections=300
pg_sql main "create table t (id int, payload text); grant all on t to trusty" >/dev/null

STAT=${PGKTLS_BUILDDIR}/tools/pgktls-stat
[ -x "$STAT" ] || bail "pgktls-stat not found at $STAT"
MOVE=$PGKTLS_SRCDIR/tests/integration/upgrade-move.py
CA=$CERTS/ca.crt
C="sslmode=verify-full sslrootcert=$CA channel_binding=disable"
DIRECT="host=${PG_SOCK[main]} port=${PG_PORT[main]} dbname=postgres user=postgres"
if [ "${PGKTLS_TEST_SLOW:-0}" = 1 ]; then
	MB=${PGKTLS_MOVE_COPY_MB:-32}
else
	MB=${PGKTLS_MOVE_COPY_MB:-200}
fi
N=${PGKTLS_MOVE_IDLE:-200}

# What the hops' directions must run: kTLS where the test demands it, userspace (tlsrec:
# openssl_records is not set) where there is no kernel TLS. With kernel TLS and
# ktls = auto either may be right, so the engines are only shown.
if [ "${PGKTLS_TEST_KTLS:-}" = required ]; then
	ENGINE=kernel
elif [ "${PGKTLS_TEST_KTLS:-}" = off ] || [ ! -r /proc/net/tls_stat ]; then
	ENGINE=userspace
else
	ENGINE=
fi
DECRYPT0=$(tls_stat TlsDecryptError)

j() { stat_json "$T/$1.sock" "$2"; }
log_has() { grep -Eq -- "$2" "${PX_LOG[$1]}"; }
count_log() { grep -Ec -- "$2" "${PX_LOG[$1]}"; }

# start NAME [GENERAL-LINES]: a pgktls of our own (a child of this shell, so `wait` gives
# its exit status) with its own stats socket and pid file.
start() {
	px_config "$1" "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
shutdown_timeout = 60000
stats_socket = \"$T/$1.sock\"
pid_file = \"$T/$1.pid\"
${2:-}"
	px_run "$1" -c "${PX_CONF[$1]}" || bail "pgktls $1 did not start"
	OLD=${PX_PID[$1]}
}

# start_knob NAME KNOB=VALUE: start instance NAME whose upgrades run the new binary with a
# test knob of the new process (a wrapper script as upgrade_binary).
start_knob() {
	printf '#!/bin/sh\n%s exec "%s" "$@"\n' "$2" "$PGKTLS_BIN" >"$T/$1.sh"
	chmod +x "$T/$1.sh"
	start "$1" "upgrade_binary = \"$T/$1.sh\""
}

# hold_idle NAME COUNT: COUNT idle sessions on instance NAME, each having run a query
# (upgrade-move.py idle; they run another once $T/go exists); HOLD is the client's pid.
hold_idle() {
	rm -f "$T/go"
	timeout 900 "$PY" "$MOVE" idle "${PX_PORT[$1]}" "$CA" "$2" "$T/$1.ready" "$T/go" \
		"$T/$1.res" &
	HOLD=$!
	wait_for 600 "[ -e '$T/$1.ready' ]"
}

# release_held NAME COUNT DESCRIPTION: the sessions hold_idle opened on NAME run their next
# query; check that each of the COUNT did, with no error.
release_held() {
	touch "$T/go"
	wait "$HOLD"
	is "$(head -n1 "$T/$1.res")" "before=$2 after=$2 errors=0" "$3" || diag "$(cat "$T/$1.res")"
}

# upgrade NAME: SIGUSR2 to OLD; wait for the new process; NEW is its pid.
upgrade() {
	local name=$1 before
	before=$(count_log "$name" "upgrade: pid [0-9]+ is ready")
	kill -USR2 "$OLD"
	wait_for 60 '[ "$(count_log "$name" "upgrade: pid [0-9]+ is ready")" -gt "$before" ]'
	ok $? "$name: SIGUSR2: the new process reports ready"
	NEW=$(cat "$T/$name.pid")
	ok "$([ -n "$NEW" ] && [ "$NEW" != "$OLD" ]; echo $?)" \
		"$name: the pid file names it ($OLD -> $NEW)"
	PX_PID[$name]=$NEW
}

# old_exits NAME SECONDS: OLD (our child) exits within SECONDS, with status 0.
old_exits() {
	local rc
	if wait_for "$2" 'gone "$OLD"'; then
		wait "$OLD"
		rc=$?
	else
		rc="still running after $2 s"
	fi
	is "$rc" 0 "$1: the old process exits with status 0 (within $2 s)"
}

# stop_new NAME: the process an upgrade started is not our child: SIGTERM, and wait.
stop_new() {
	local pid=${PX_PID[$1]}
	PX_PID[$1]=
	kill -TERM "$pid"
	wait_for 20 'gone "$pid"'
	ok $? "$1: the new process stops on SIGTERM"
}

# engines NAME: the engine of every direction of every relaying connection, kernel_* as
# kernel, each once ("userspace", "kernel", or both).
engines() {
	j "$1" '" ".join(sorted({h[x]["engine"].split("_")[0] for c in d["connections"]
	if c["state"] == "relay" for h in (c["client"], c["server"]) for x in ("rx", "tx")}))'
}
# layers NAME: the record layer of every hop of every relaying connection, each once.
layers() {
	j "$1" '" ".join(sorted({h["record_layer"] for c in d["connections"]
	if c["state"] == "relay" for h in (c["client"], c["server"])}))'
}
check_engines() {
	local got
	got=$(engines "$1")
	if [ -n "$ENGINE" ]; then
		is "$got" "$ENGINE" "$2: every hop's direction runs $ENGINE"
		is "$(layers "$1")" "$([ "$ENGINE" = kernel ] && echo ktls || echo tlsrec)" \
			"$2: ... and every hop's record layer is $([ "$ENGINE" = kernel ] &&
				echo ktls || echo tlsrec)"
	else
		pass "$2: engines $got (ktls = auto on a kernel with TLS: either may be right)"
	fi
}

# conn_id NAME PORT: the id of the connection whose client address ends in :PORT.
conn_id() {
	j "$1" "' '.join(str(c['id']) for c in d['connections']
	if (c.get('client_addr') or '').endswith(':$2'))"
}

# moved NAME ID PORT: c#ID of the old process (client port PORT) was handed over and
# adopted by NEW, under a new id with the same client.
moved() {
	log_has "$1" "c#[0-9]+ [^ ]*:$3: adopted: was c#$2 in pid $OLD "
	ok $? "$1: the new process adopted c#$2 of pid $OLD (port $3)"
	log_has "$1" "c#$2 [^ ]*:$3: closed: handed_over"
	ok $? "$1: ... and the old process closed c#$2 as handed_over"
}

# ---- 1. a COPY each way across the upgrade: one paused mid-transfer, one still sending
ROWS=$((MB * 1048576 / 33))
md5_series_sha256 "$ROWS" >"$T/want.out" &
WANT_PID=$!
start copy
loop_start "${PX_PORT[copy]}"
timeout 900 "$PY" "$MOVE" copyout "${PX_PORT[copy]}" "$CA" "$ROWS" "$T/out.ready" \
	"$T/out.go" "$T/out.res" &
COUT=$!
timeout 900 "$PY" "$MOVE" copyin "${PX_PORT[copy]}" "$CA" "$MB" "$T/in.ready" "$T/in.go" \
	"$T/in.res" &
CIN=$!
wait_for 300 '[ -e "$T/out.ready" ] && [ -e "$T/in.ready" ]'
ok $? "copy: a $MB MB COPY TO STDOUT and a $MB MB COPY FROM STDIN are under way"
OUT_AT=$(sed -n 's/^bytes=\([0-9]*\) .*/\1/p' "$T/out.ready")
OUT_PORT=$(sed -n 's/.* port=\([0-9]*\)$/\1/p' "$T/out.ready")
IN_AT=$(sed -n 's/^bytes=\([0-9]*\) .*/\1/p' "$T/in.ready")
IN_PORT=$(sed -n 's/.* port=\([0-9]*\)$/\1/p' "$T/in.ready")
what="out ${OUT_AT:-?} of $((ROWS * 33)) bytes, in ${IN_AT:-?} of $((MB << 20))"
ok "$([ "${OUT_AT:-0}" -gt 0 ] && [ "$OUT_AT" -lt $((ROWS * 33)) ] &&
	[ "${IN_AT:-0}" -gt 0 ] && [ "$IN_AT" -lt $((MB << 20)) ]; echo $?)" \
	"copy: both in flight at the upgrade ($what)"
OUT_ID=$(conn_id copy "$OUT_PORT")
IN_ID=$(conn_id copy "$IN_PORT")
ok "$([[ "$OUT_ID" =~ ^[0-9]+$ ]] && [[ "$IN_ID" =~ ^[0-9]+$ ]]; echo $?)" \
	"copy: the old process's stats list both (c#$OUT_ID out, c#$IN_ID in)"
check_engines copy "copy, before"
upgrade copy
ok "$([ ! -e "$T/out.res" ] && [ ! -e "$T/in.res" ]; echo $?)" \
	"copy: neither COPY has ended at the commit"
# The paused reader goes on at once: a session whose buffers are too full to move now
# moves on a later pass of the offer, as they drain. The sender keeps its slow pace until
# the new process has the end of the offer (and its verdict on every session).
touch "$T/out.go"
wait_for 30 'log_has copy "upgrade: pid $OLD offered [0-9]+ session"'
touch "$T/in.go"
wait "$COUT"
wait "$CIN"
wait "$WANT_PID"
is "$(cat "$T/out.res")" "bytes=$((ROWS * 33)) sha256=$(cat "$T/want.out")" \
	"copy: COPY TO STDOUT completes, every byte as PostgreSQL sent it"
read -r _ rows _ sum <"$T/in.res"
sent=$(sed -n 's/^COPY [0-9]* bytes=\([0-9]*\) sha256=.*/\1/p' "$T/in.res")
ok "$([ "${sent:-0}" -ge $((MB << 20)) ]; echo $?)" \
	"copy: COPY FROM STDIN completes (${sent:-no} bytes)" || diag "$(cat "$T/in.res")"
is "sha256=$(copy_sha "$DIRECT" t)" "${sum:-none}" "copy: the table holds exactly the bytes sent ($rows rows)"
moved copy "$OUT_ID" "$OUT_PORT"
moved copy "$IN_ID" "$IN_PORT"
like "$(cat "${PX_LOG[copy]}")" \
	"upgrade: sessions: [0-9]+ moved to pid $NEW, [0-9]+ kept here to drain" \
	"copy: the old process logs what moved"
like "$(cat "${PX_LOG[copy]}")" \
	"upgrade: pid $OLD offered [0-9]+ session\(s\); ([2-9]|[1-9][0-9]+) adopted" \
	"copy: ... and the new one what it adopted"
ok "$([ "$(j copy 'd["upgrade"]["sessions"]["adopted"]')" -ge 2 ]; echo $?)" \
	"copy: the new process's stats count them adopted"
old_exits copy 60
wait_for 15 '[ "$(j copy "d[\"upgrade\"][\"previous\"][\"running\"]")" = False ]'
ok $? "copy: ... and the new process's stats say it is gone"
ok "$([ "$(j copy 'd["upgrade"]["previous"]["moved"]')" -ge 2 ]; echo $?)" \
	"copy: previous.moved counts both COPY sessions"
loop_stop "copy"
q_ok "copy: the new process serves a new connection" "$(px_dsn copy "$C")" "select 'new'" new
stop_new copy

# ---- 2. idle sessions (N of them) move, and each runs a query after
start idle
loop_start "${PX_PORT[idle]}"
hold_idle idle "$N"
is "$(grep -c '^port=' "$T/idle.ready")" "$N" "idle: $N sessions open, each ran a query"
"$STAT" -s "$T/idle.sock" --json >"$T/idle.before.json"
check_engines idle "idle, before"
upgrade idle
# The $N (and whatever the loop had open) moved: nothing is left to drain.
old_exits idle 30
wait_for 15 'log_has idle "upgrade: pid $OLD offered [0-9]+ session\(s\); [0-9]+ adopted"'
ok $? "idle: the new process logs the end of the sessions"
"$STAT" -s "$T/idle.sock" --json >"$T/idle.after.json"
# Each of the $N: adopted under a new id the log names, listed by the new process in
# relay with the same client address, its byte counts carried over and the same engines.
"$PY" - "$T/idle.before.json" "$T/idle.after.json" "$T/idle.ready" "${PX_LOG[idle]}" "$OLD" \
	>"$T/idle.check" <<'PYEOF'
import json, re, sys
before, after = (json.load(open(f)) for f in sys.argv[1:3])
ports = [l.split("=")[1].strip() for l in open(sys.argv[3]) if l.startswith("port=")]
new_of = {}
for line in open(sys.argv[4], errors="replace"):
    m = re.search(r"adopted: (?:c#\d+ )?was c#(\d+) in pid %s\b" % sys.argv[5], line)
    if m:
        new_of[int(m.group(1))] = int(re.search(r"c#(\d+)", line).group(1))
def by_port(doc):
    return {c["client_addr"].rsplit(":", 1)[1]: c for c in doc["connections"]
            if c.get("client_addr")}
def engines(c):
    return [c[h][x]["engine"] for h in ("client", "server") for x in ("rx", "tx")]
b, a = by_port(before), by_port(after)
good, bad = 0, []
for p in ports:
    o, n = b.get(p), a.get(p)
    why = (not o and "not in the old stats" or not n and "not in the new stats"
           or new_of.get(o["id"]) is None and "no adopted line for c#%d" % o["id"]
           or new_of[o["id"]] != n["id"] and "adopted as c#%d, listed as c#%d"
           % (new_of[o["id"]], n["id"])
           or n["state"] != "relay" and "state " + n["state"]
           or n["bytes"] != o["bytes"] and "bytes %s, were %s" % (n["bytes"], o["bytes"])
           or engines(n) != engines(o) and "engines %s, were %s" % (engines(n), engines(o))
           or None)
    if why:
        bad.append("port %s: %s" % (p, why))
    else:
        good += 1
print("good=%d" % good)
print("\n".join(bad[:5]))
PYEOF
is "$(head -n1 "$T/idle.check")" "good=$N" \
	"idle: all $N adopted, listed in relay with their address, byte counts and engines" ||
	diag "$(cat "$T/idle.check")"
check_engines idle "idle, after"
adopted=$(j idle 'd["upgrade"]["sessions"]["adopted"]')
ok "$([ "${adopted:-0}" -ge "$N" ]; echo $?)" "idle: the new process's stats count $adopted adopted"
is "$(j idle 'd["upgrade"]["previous"]["moved"], d["upgrade"]["previous"]["draining"],
	d["upgrade"]["previous"]["running"]')" "$adopted 0 False" \
	"idle: ... previous moved $adopted, draining 0, not running"
like "$(cat "${PX_LOG[idle]}")" \
	"upgrade: sessions: $adopted moved to pid $NEW, [0-9]+ kept here to drain" \
	"idle: the old process logs $adopted moved"
is "$(count_log idle ": closed: handed_over")" "$adopted" \
	"idle: ... and closed each as handed_over"
release_held idle "$N" "idle: each of the $N ran a query after the upgrade"
loop_stop "idle"
stop_new idle

# ---- 3. the new process refuses every session: they stay and drain on the old one
start_knob nack PGKTLS_TEST_HANDOVER_NACK=1
hold_idle nack 20
ok $? "nack: 20 sessions open"
upgrade nack
wait_for 15 '[ "$(j nack "d[\"upgrade\"][\"previous\"][\"kept\"]")" = 20 ]'
ok $? "nack: the new process's stats see the old one keep the 20"
is "$(j nack 'd["upgrade"]["previous"]["moved"], d["upgrade"]["previous"]["kept"],
	d["upgrade"]["previous"]["draining"], d["upgrade"]["sessions"]["adopted"]')" \
	"0 20 20 0" "nack: previous moved 0, kept 20, draining 20; adopted 0"
like "$(cat "${PX_LOG[nack]}")" "upgrade: sessions: 0 moved to pid $NEW, 20 kept here to drain" \
	"nack: the old process logs that it keeps them"
ok "$(kill -0 "$OLD"; echo $?)" "nack: the old process still runs"
q_ok "nack: the new process serves a new connection" "$(px_dsn nack "$C")" "select 'n'" n
release_held nack 20 "nack: each of the 20 ran a query after the upgrade, on the old process"
old_exits nack 30
is "$(count_log nack ": closed: handed_over")" 0 "nack: no session was closed as handed_over"
stop_new nack

# ---- 4. a refused takeover: the old process serves on, every session intact
start_knob ref PGKTLS_TEST_HANDOVER_VERSION=99
hold_idle ref 20
ok $? "refused: 20 sessions open"
kill -USR2 "$OLD"
wait_log ref "upgrade failed, pid $OLD keeps serving: it refused the takeover \(version" 40
ok $? "refused: version 99: the takeover is refused, the old process says it keeps serving"
is "$(cat "$T/ref.pid") $(j ref 'd["pid"], d["upgrade"]["failed"],
	d["upgrade"]["sessions"]["handed_over"]')" "$OLD $OLD 1 0" \
	"refused: the pid file and the stats still name it; one failure, nothing handed over"
q_ok "refused: a new connection is served" "$(px_dsn ref "$C")" "select 'r'" r
release_held ref 20 "refused: each of the 20 ran a query after"

# ---- 5. sessions still in their handshake at the commit: one that reaches the relay
# within the offer (3 s) moves, one that finishes its handshake after it stays and drains
CLIENTS=$PGKTLS_SRCDIR/tests/integration/upgrade-clients.py
start late
"$PY" "$CLIENTS" late "${PX_PORT[late]}" "$CA" "$T/a.ready" "$T/a.go" "$T/a.out" &
LA=$!
"$PY" "$CLIENTS" late "${PX_PORT[late]}" "$CA" "$T/b.ready" "$T/b.go" "$T/b.out" &
LB=$!
wait_for 60 '[ -e "$T/a.ready" ] && [ -e "$T/b.ready" ]'
ok $? "late: two sessions wait in their handshake (SSLRequest answered)"
PA=$(sed -n 's/^port=//p' "$T/a.ready")
PB=$(sed -n 's/^port=//p' "$T/b.ready")
upgrade late
touch "$T/a.go"
wait_for 30 '[ -e "$T/a.out.mid" ]'
ok $? "late: the first finishes its handshake and runs a query right after the commit"
wait_log late "upgrade: sessions: [0-9]+ moved to pid $NEW" 15
like "$(cat "${PX_LOG[late]}")" "upgrade: sessions: 1 moved to pid $NEW, 1 kept here to drain" \
	"late: the old process moved one and kept the other when its offer ended"
log_has late "c#[0-9]+ 127\.0\.0\.1:$PA: adopted: was c#[0-9]+ in pid $OLD"
ok $? "late: ... the first was adopted (port $PA)"
! log_has late "127\.0\.0\.1:$PB: adopted"
ok $? "late: ... the second was not (port $PB)"
touch "$T/b.go"
wait_for 30 '[ -e "$T/b.out.mid" ]'
ok $? "late: the second finishes its handshake on the old process, which no longer accepts"
touch "$T/a.go.2" "$T/b.go.2"
wait "$LA"
wait "$LB"
is "$(cat "$T/a.out") / $(cat "$T/b.out")" "one=ok two=ok / one=ok two=ok" \
	"late: both sessions run a second query, one in each process"
old_exits late 30
is "$(j late 'd["upgrade"]["previous"]["moved"], d["upgrade"]["previous"]["kept"]')" "1 1" \
	"late: the new process's stats: previous moved 1, kept 1"
stop_new late

# ---- 6. the new process dies with sessions offered (unanswered): the old one relays them again
start_knob crash PGKTLS_TEST_HANDOVER_CRASH=session
hold_idle crash 20
ok $? "crash: 20 sessions open"
upgrade crash
wait_log crash "upgrade: the new process \(pid $NEW\) closed the handover" 30
ok $? "crash: the new process died at the first session offered, unanswered"
wait_log crash "upgrade: sessions: 0 moved to pid $NEW, 20 kept here to drain" 15
ok $? "crash: the old process took back every session it had frozen, and says so"
# At least the SESSION it died on was frozen and taken back. The pass stops at the closed
# socket: the sessions it had not reached yet were never frozen (nothing to take back).
back=$(count_log crash "did not take it \(gone: the new process went away\)")
ok "$([ "$back" -ge 1 ] && [ "$back" -le 20 ]; echo $?)" \
	"crash: ... the $back frozen and unanswered are relayed again (logged as taken back)"
release_held crash 20 "crash: each of the 20 ran a query after, on the old process"
old_exits crash 30
is "$(count_log crash ": closed: handed_over")" 0 "crash: no session was closed as handed_over"
PX_PID[crash]=

# ---- 7. keys after a move: the new process rekeys from the secrets it was handed
POKE=$PGKTLS_BUILDDIR/tests/integration/tls_poke
cr() { j keys "d['totals']['control_records']['$1']"; }
kv=$(uname -r | awk -F. '{ print $1 * 1000 + $2 }')
if [ "$ENGINE" != userspace ] && [ "$kv" -lt 6014 ]; then
	why="Linux $(uname -r) cannot rekey kTLS (before 6.14): a KeyUpdate ends a session"
	skip 14 "keys: $why there, moved or not (t-ktls-rekey checks that)"
else
	KMB=${PGKTLS_MOVE_KEYS_MB:-4}
	# What tls_poke's COPY (600,000 rows of md5, 19.8 MB) must hash to.
	md5_series_sha256 600000 >"$T/kwant.out" &
	KWANT=$!
	pg_sql main "truncate t" >/dev/null
	# The new process inherits the environment, so its send keys seal 32 records too.
	PGKTLS_TEST_REKEY_RECORDS=32 start keys 'tls_min_version = "TLSv1.3"
tls_server_min_version = "TLSv1.3"'
	mkfifo "$T/poke.in"
	"$POKE" holdkey "${PX_PORT[keys]}" TLSv1.3 <"$T/poke.in" >"$T/poke.out" 2>&1 &
	KPOKE=$!
	exec 7>"$T/poke.in"
	timeout 900 "$PY" "$MOVE" copyin "${PX_PORT[keys]}" "$CA" "$KMB" "$T/kin.ready" \
		"$T/kin.go" "$T/kin.res" &
	KIN=$!
	wait_for 300 '[ -e "$T/kin.ready" ] && grep -q "^holding" "$T/poke.out"'
	ok $? "keys: TLS 1.3, 32 records a key: a $KMB MB COPY FROM STDIN and an idle session run"
	sent0=$(cr key_updates_sent)
	ok "$([ "${sent0:-0}" -ge 1 ]; echo $?)" \
		"keys: the old process changed its send keys before the move ($sent0 KeyUpdates)"
	rx0=$(tls_stat TlsRxRekeyOk)
	tx0=$(tls_stat TlsTxRekeyOk)
	upgrade keys
	wait_for 30 'log_has keys "upgrade: pid $OLD offered [0-9]+ session"'
	touch "$T/kin.go"
	echo go >&7
	exec 7>&-
	wait "$KIN"
	wait "$KPOKE"
	wait "$KWANT"
	read -r _ krows _ ksum <"$T/kin.res"
	is "sha256=$(copy_sha "$DIRECT" t)" "${ksum:-none}" \
		"keys: COPY FROM STDIN completes; the table holds exactly the bytes sent ($krows rows)"
	poke=$(cat "$T/poke.out")
	like "$poke" "query 3" \
		"keys: the idle session's KeyUpdate request, after the move, is followed: it runs a query"
	like "$poke" "sha256 $(cat "$T/kwant.out")" \
		"keys: ... then a 19.8 MB COPY TO STDOUT arrives intact" || diag "$poke"
	n=$(sed -n 's/^keyupdates received \([0-9]*\)$/\1/p' <<<"$poke")
	ok "$([ "${n:-0}" -ge 10 ]; echo $?)" \
		"keys: ... with ${n:-no} KeyUpdates of the new process's (the answer, then every 32 records)"
	ok "$([ "$(j keys 'd["upgrade"]["sessions"]["adopted"]')" -ge 2 ]; echo $?)" \
		"keys: the new process adopted both sessions"
	sent=$(cr key_updates_sent)
	ok "$([ "${sent:-0}" -ge 10 ]; echo $?)" \
		"keys: it went on changing its send keys on both hops of the moved sessions ($sent)"
	is "$(cr key_updates_rekeyed) $(j keys \
		"d['totals']['connections']['closed_by_reason'].get('key_update', 0)")" \
		"1 0" "keys: it followed the client's KeyUpdate once, and closed nothing for its key"
	if [ "$ENGINE" = kernel ]; then
		tx=$(($(tls_stat TlsTxRekeyOk) - tx0))
		rx=$(($(tls_stat TlsRxRekeyOk) - rx0))
		ok "$([ "$tx" -ge "$sent" ] && [ "$rx" -ge 1 ]; echo $?)" \
			"keys: the kernel rekeyed: TlsTxRekeyOk +$tx, TlsRxRekeyOk +$rx"
	else
		pass "keys: (userspace: tlsrec changed the keys itself)"
	fi
	old_exits keys 60
	stop_new keys
fi

# ---- kTLS: not one record failed to decrypt, before or after a move
if [ -n "$DECRYPT0" ]; then
	is "$(tls_stat TlsDecryptError)" "$DECRYPT0" "/proc/net/tls_stat: TlsDecryptError unchanged"
else
	skip 1 "no /proc/net/tls_stat here (no kernel TLS)"
fi

# ---- under ASan/UBSan (tools/test's sanitizer run): no report from any process, old or
# new, across the handovers. A new process is not our child, so its exit status cannot
# say; its report is in the log it shares with the old one.
px_stop ref
unlike "$(grep -hE -A3 "Sanitizer|runtime error:" "${PX_LOG[@]}" | head -n 40)" \
	"AddressSanitizer|LeakSanitizer|runtime error:" \
	"no sanitizer report in any process's log"

done_testing
