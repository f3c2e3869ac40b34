#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Binary upgrade (SIGUSR2) of the listening sockets, drain and refusals (handover
# protocol version 2): the new process takes the listening sockets (no refused connect
# while a client connects in a tight loop through several upgrades in a row), sessions
# opened before run queries after and finish on the old process, which then exits 0 (they
# are kept unmovable, see the config below; t-upgrade-move.sh tests sessions that move);
# systemd's main PID moves by MAINPID=; a refused takeover (handover version mismatch) and
# a new binary that crashes (at exec, or holding the sockets) leave the old process serving
# every session, and the old process logs the new one's reason even when it has gone before
# the hello (strace delays the hello); a new binary that speaks only version 1 (as phase 1
# did) is started again in version 1.
. "$(dirname "$0")/lib.sh"
need_cmd "$PY" strace
setup
pg_setup main

STAT=${PGKTLS_BUILDDIR}/tools/pgktls-stat
[ -x "$STAT" ] || bail "pgktls-stat not found at $STAT"
CLIENTS=$PGKTLS_SRCDIR/tests/integration/upgrade-clients.py
SOCK=$T/stats.sock
PIDF=$T/px.pid
C="sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable"

json() { stat_json "$SOCK" "$1"; }
count_log() { grep -Ec -- "$1" "${PX_LOG[up]}"; }

# hold_start N: N sessions open (and used) before what follows; hold_end checks them after.
hold_start() {
	rm -f "$T/hold.ready" "$T/hold.go"
	"$PY" "$CLIENTS" hold "${PX_PORT[up]}" "$CERTS/ca.crt" "$1" "$T/hold.ready" \
		"$T/hold.go" "$T/hold.out" &
	HOLD=$!
	wait_for 30 '[ -e "$T/hold.ready" ]'
	"$PGBIN/psql" -X -At -d "$(px_dsn up "$C")" -c "select pg_sleep(3), 'finished'" \
		>"$T/long.out" 2>&1 &
	LONG=$!
	sleep 0.3
}
hold_end() {
	touch "$T/hold.go"
	wait "$HOLD"
	is "$(head -n1 "$T/hold.out")" "before=$2 after=$2 errors=0" \
		"$1: $2 sessions opened before each ran a query after"
	wait "$LONG"
	like "$(cat "$T/long.out")" "finished" "$1: a query running across it finished"
}

# systemd's notify socket, stood in for by a datagram socket that logs what it gets.
NOTIFY=$T/notify.sock
"$PY" - "$NOTIFY" "$T/notify.stop" >"$T/notify.out" 2>&1 <<'PYEOF' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(0.2)
while not os.path.exists(sys.argv[2]):
    try:
        print(s.recv(4096).decode().replace("\n", " "), flush=True)
    except socket.timeout:
        pass
PYEOF
NOTIFY_PID=$!
wait_for 5 '[ -S "$NOTIFY" ]'

# openssl_records = true keeps every session's records in OpenSSL, whose state cannot
# move (only plain, tlsrec and kTLS hops can): the sessions held below stay on the old
# process and drain there, which is what this test checks. ktls = "off" keeps it so in
# the kTLS VM too, where kTLS (movable) would otherwise take the hops.
px_config up "ktls = \"off\"
openssl_records = true
tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
shutdown_timeout = 60000
stats_socket = \"$SOCK\"
pid_file = \"$PIDF\""
NOTIFY_SOCKET=$NOTIFY px_run up -c "${PX_CONF[up]}"
ok $? "pgktls starts with NOTIFY_SOCKET set"
OLD=${PX_PID[up]}

# ---- one upgrade, watched closely
loop_start "${PX_PORT[up]}"
hold_start 20
kill -USR2 "$OLD"
wait_log up "upgrade: pid [0-9]+ is ready" 30
ok $? "SIGUSR2: the new process reports ready"
NEW=$(cat "$PIDF")
ok "$([ -n "$NEW" ] && [ "$NEW" != "$OLD" ] && [ "$(cat "/proc/$NEW/comm")" = pgktls ]; echo $?)" \
	"the pid file names the new process ($OLD -> $NEW)"
PX_PID[up]=$NEW
is "$(json 'd["pid"], d["upgrade"]["previous"]["pid"], d["upgrade"]["previous"]["listeners"]')" \
	"$NEW $OLD 3" "the stats socket answers from the new process; it took 2 workers' + 1 stats socket"
ok "$(kill -0 "$OLD"; echo $?)" "the old process still runs, draining its sessions"
wait_for 15 '[ "$(json "d[\"upgrade\"][\"previous\"][\"draining\"]")" -ge 20 ]'
ok $? "the new process's stats see the old one draining the 20 held sessions" ||
	diag "upgrade: $(json 'd["upgrade"]')"
# Sessions on the openssl engine are not movable: every open session is kept, none moved.
# The old process counts them kept once its offer ends (up to 3 s after the commit).
# How many are open at a given instant: the 20 held, the long query's (0 or 1: it may have
# finished by the end of the offer) and the loop client's (0 to 2: its next session can be
# accepted before the old process has seen the last one's close, which under ASan takes a
# while). So 20 to 23.
OPEN_RE='2[0-3]'
wait_log up "upgrade: sessions: [0-9]+ moved to pid $NEW" 15
like "$(grep "upgrade: sessions:" "${PX_LOG[up]}")" \
	"upgrade: sessions: 0 moved to pid $NEW, $OPEN_RE kept here to drain" \
	"version 2: the old process logs that it moved none and kept every open session"
wait_for 5 '[ "$(json "d[\"upgrade\"][\"previous\"][\"kept\"]")" -ge 20 ]'
like "$(json 'd["upgrade"]["previous"]["moved"], d["upgrade"]["previous"]["kept"],
	d["upgrade"]["sessions"]["adopted"]')" "^0 $OPEN_RE 0$" \
	"... and the new process's stats say so"
q_ok "a new connection is served" "$(px_dsn up "$C")" "select 'new'" new
hold_end "upgrade" 20
wait "$OLD"
is "$?" 0 "the old process exits 0 once its sessions finished"
wait_for 15 '[ "$(json "d[\"upgrade\"][\"previous\"][\"running\"]")" = False ]'
ok $? "... and the new process's stats say it is gone"
like "$(grep "no longer accepting" "${PX_LOG[up]}")" \
	"upgrade: no longer accepting; waiting up to 60000 ms for $OPEN_RE open" \
	"the old process drained as SIGTERM does"
diag "$(grep -E "no longer accepting|upgrade: sessions:" "${PX_LOG[up]}")"
like "$(cat "$T/notify.out")" "MAINPID=$NEW READY=1" "systemd is told MAINPID=$NEW with READY=1"

# ---- upgrades in a row while a client connects in a tight loop
for i in 1 2 3; do
	P=$(cat "$PIDF")
	before=$(count_log "upgrade: pid [0-9]+ is ready")
	kill -USR2 "$P"
	wait_for 30 '[ "$(count_log "upgrade: pid [0-9]+ is ready")" -gt "$before" ]'
	ok $? "upgrade $i of 3: the next process is ready"
	wait_for 25 'gone "$P"'
	ok $? "... and the previous one ($P) has exited"
	PX_PID[up]=$(cat "$PIDF")
done
loop_stop "three upgrades in a row"
is "$(count_log "every connection has finished")" 4 "each old process finished every session"

# ---- a takeover the new binary refuses: version mismatch (test knob)
CUR=$(cat "$PIDF")
cat >"$T/mismatch.sh" <<EOF
#!/bin/sh
PGKTLS_TEST_HANDOVER_VERSION=99 exec "$PGKTLS_BIN" "\$@"
EOF
cat >"$T/crash-exec.sh" <<'EOF'
#!/bin/sh
kill -SEGV $$
EOF
cat >"$T/crash-held.sh" <<EOF
#!/bin/sh
PGKTLS_TEST_HANDOVER_CRASH=1 exec "$PGKTLS_BIN" "\$@"
EOF
chmod +x "$T/mismatch.sh" "$T/crash-exec.sh" "$T/crash-held.sh"

# use_binary FILE: point upgrade_binary at FILE with a reload of the running process.
use_binary() {
	local before
	before=$(count_log "reloaded:")
	sed -i '/^upgrade_binary/d' "${PX_CONF[up]}"
	sed -i "/^\[general\]/a upgrade_binary = \"$1\"" "${PX_CONF[up]}"
	kill -HUP "$CUR"
	wait_for 10 '[ "$(count_log "reloaded:")" -gt "$before" ]'
}

# refused NAME BINARY LOG-REGEX [stat]: an upgrade to BINARY fails; CUR keeps serving
# everything. With "stat", pgktls-stat --upgrade asks and must report the failure.
refused() {
	local failed rc
	failed=$(json 'd["upgrade"]["failed"]')
	use_binary "$2"
	loop_start "${PX_PORT[up]}"
	hold_start 10
	if [ "${4:-}" = stat ]; then
		"$STAT" -s "$SOCK" --upgrade >"$T/up.out" 2>"$T/up.err"
		rc=$?
		is "$rc" 1 "$1: pgktls-stat --upgrade exits 1"
		like "$(cat "$T/up.err")" "upgrade failed, pid $CUR keeps serving: $3" \
			"$1: ... and says why"
	else
		kill -USR2 "$CUR"
	fi
	wait_log up "upgrade failed, pid $CUR keeps serving: $3" 40
	ok $? "$1: the old process logs why and keeps serving" ||
		diag "$(grep "upgrade failed" "${PX_LOG[up]}")"
	ok "$(kill -0 "$CUR"; echo $?)" "$1: the old process runs"
	is "$(cat "$PIDF")" "$CUR" "$1: the pid file still names it"
	is "$(json 'd["pid"], d["upgrade"]["state"], d["upgrade"]["failed"]')" \
		"$CUR none $((failed + 1))" "$1: its stats count the failure"
	q_ok "$1: a new connection is served" "$(px_dsn up "$C")" "select 'still'" still
	hold_end "$1" 10
	loop_stop "$1"
}
refused "version mismatch" "$T/mismatch.sh" \
	"it refused the takeover \(version, it speaks version 99\)" stat
refused "crash at exec" "$T/crash-exec.sh" "it ended before it was ready.*was killed by signal 11"
refused "crash holding the sockets" "$T/crash-held.sh" \
	"it ended before it was ready.*was killed by signal 6"

# ---- the same failures when the new process has gone before the old one sends its hello.
# A crash at exec, or a config refused (the new process refuses it without reading the
# hello), can both end the new process first on a loaded machine: the old process's send
# then fails (EPIPE), and it must still report what the new process left, not the send.
# strace makes that order certain: it delays each sendmsg of the old process's main thread,
# where the handover runs, by 300 ms (the new process ends within a few ms of its start).
# late_hello NAME LOG-REGEX: an upgrade (to upgrade_binary), the hello late, fails with REGEX.
late_hello() {
	local before strace_pid
	before=$(count_log "upgrade failed")
	strace -p "$CUR" -e trace=sendmsg -e inject=sendmsg:delay_enter=300000 -o /dev/null \
		2>"$T/strace.err" &
	strace_pid=$!
	wait_for 10 'grep -q "attached" "$T/strace.err" || ! kill -0 "$strace_pid" 2>/dev/null'
	if ! grep -q "attached" "$T/strace.err"; then
		# Not attached (a non-root run under Yama's ptrace_scope 1): no delay, no test.
		kill "$strace_pid" 2>/dev/null
		wait "$strace_pid"
		if [ "${PGKTLS_REQUIRE_INTEGRATION:-0}" = 1 ]; then
			fail "$1: strace attaches to pgktls"
			diag "$(cat "$T/strace.err")"
		else
			skip 2 "strace cannot attach to pgktls: $(head -n1 "$T/strace.err")"
		fi
		return
	fi
	kill -USR2 "$CUR"
	wait_for 40 '[ "$(count_log "upgrade failed")" -gt "$before" ]'
	kill -INT "$strace_pid"
	wait "$strace_pid"
	like "$(grep "upgrade failed" "${PX_LOG[up]}" | tail -n 1)" \
		"upgrade failed, pid $CUR keeps serving: $2" "$1"
	q_ok "... and the old process serves on" "$(px_dsn up "$C")" "select 'on'" on
}
use_binary "$T/crash-exec.sh"
late_hello "gone before the hello (a crash at exec): the old process says it ended" \
	"it ended before it was ready.*was killed by signal 11"

# A bad configuration in the new process: refused with its reason, the old one serves on;
# the same when it has gone before the hello.
use_binary "$PGKTLS_BIN"
echo "no_such_key = 1" >>"${PX_CONF[up]}"
kill -USR2 "$CUR"
wait_log up \
	"upgrade failed, pid $CUR keeps serving: it refused the takeover \(start.*no_such_key" 30
ok $? "a config the new process rejects: refused with the reason, the old one serves on"
late_hello "gone before the hello (a config it rejects): the old process gives its reason" \
	"it refused the takeover \(start.*no_such_key"
sed -i '/^no_such_key/d' "${PX_CONF[up]}"

# ---- a new binary that speaks only handover version 1 (phase 1's, or a rollback to it):
# it refuses our version-2 hello, so the old process starts it again in version 1.
cat >"$T/v1.sh" <<EOF
#!/bin/sh
PGKTLS_TEST_HANDOVER_VERSION=1 exec "$PGKTLS_BIN" "\$@"
EOF
chmod +x "$T/v1.sh"
use_binary "$T/v1.sh"
hold_start 5
before=$(count_log "upgrade: pid [0-9]+ is ready")
kill -USR2 "$CUR"
wait_for 40 '[ "$(count_log "upgrade: pid [0-9]+ is ready")" -gt "$before" ]'
ok $? "version 1 only: the upgrade goes through"
like "$(cat "${PX_LOG[up]}")" \
	"speaks handover version 1, not 2; starting it again in version 1" \
	"... after the old process started it again in version 1"
V1=$(cat "$PIDF")
PX_PID[up]=$V1
is "$(json 'd["upgrade"]["previous"]["pid"], d["upgrade"]["previous"]["listeners"]')" \
	"$CUR 3" "... the new process took the 3 listening sockets"
hold_end "version 1" 5
wait_for 30 'gone "$CUR"'
ok $? "... and the old process exits"
CUR=$V1
use_binary "$PGKTLS_BIN"

# And after all that, an upgrade still works (asked for by pgktls-stat, which waits for it).
out=$("$STAT" -s "$SOCK" --upgrade 2>&1)
rc=$?
PX_PID[up]=$(cat "$PIDF")
is "$rc" 0 "pgktls-stat --upgrade after the failures: exit 0"
like "$out" "^upgraded: pid $CUR -> ${PX_PID[up]} \(3 listening socket\(s\) handed over" \
	"... and it names both processes"
wait_for 30 'gone "$CUR"'
ok $? "... and the old process exits"
q_ok "the last process serves" "$(px_dsn up "$C")" "select 'last'" last

# The last process is not our child: stop it by hand.
LAST=${PX_PID[up]}
PX_PID[up]=
kill -TERM "$LAST"
wait_for 15 'gone "$LAST"'
ok $? "the last process stops on SIGTERM"
ok "$([ ! -e "$PIDF" ] && [ ! -e "$SOCK" ]; echo $?)" \
	"... and removes the pid file and the stats socket"
touch "$T/notify.stop"
wait "$NOTIFY_PID"

# ---- socket activation and metrics_listen: systemd's sockets and the HTTP socket move too
if command -v systemd-socket-activate >/dev/null && command -v ss >/dev/null; then
	A1=$(port_alloc)
	A2=$(port_alloc)
	MP=$(port_alloc)
	SOCK2=$T/stats2.sock
	px_config sa "tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
stats_socket = \"$SOCK2\"
metrics_listen = \"127.0.0.1:$MP\"
pid_file = \"$T/sa.pid\""
	dsn() {
		echo "host=localhost hostaddr=127.0.0.1 port=$1 dbname=postgres user=alice" \
			"password=alice-pw $C"
	}
	metrics() { "$PY" -c 'import sys, urllib.request
url = "http://127.0.0.1:%s/metrics" % sys.argv[1]
print(urllib.request.urlopen(url, timeout=5).status)' "$MP"; }
	px_spawn sa systemd-socket-activate -l "127.0.0.1:$A1" -l "127.0.0.1:$A2" \
		"$PGKTLS_BIN" -c "${PX_CONF[sa]}"
	wait_log sa "Listening on 127.0.0.1:$A2"
	q_ok "socket activation: the first client starts pgktls" "$(dsn "$A1")" "select 1" 1
	wait_log sa "ready:"
	SA_OLD=$(cat "$T/sa.pid")
	kill -USR2 "$SA_OLD"
	wait_for 30 'gone "$SA_OLD"'
	ok $? "socket activation: upgraded, and the old process has exited"
	SA_NEW=$(cat "$T/sa.pid")
	PX_PID[sa]=$SA_NEW
	q_ok "... the first systemd socket is served by the new process" "$(dsn "$A1")" "select 'a1'" a1
	q_ok "... and the second" "$(dsn "$A2")" "select 'a2'" a2
	SOCK=$SOCK2
	is "$(json 'd["pid"], d["listen"]["from"], d["upgrade"]["previous"]["listeners"]')" \
		"$SA_NEW systemd 4" \
		"... its stats: sockets from systemd, 4 handed over (2, stats, metrics)"
	is "$(metrics)" 200 "... and it answers GET /metrics on the handed-over socket"
	for a in "$A1" "$A2"; do
		fds=$(ss -Hltnp "sport = :$a" | grep -o "pid=$SA_NEW,fd=[0-9]*" | sort -u | wc -l)
		is "$fds" 2 "port $a: one descriptor per worker (2) in the new process"
	done
	PX_PID[sa]=
	kill -TERM "$SA_NEW"
	wait_for 15 'gone "$SA_NEW"'
	ok $? "the upgraded socket-activated process stops on SIGTERM"
else
	skip 9 "systemd-socket-activate or ss is not installed (packages systemd, iproute2)"
fi

done_testing
