#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# Graceful shutdown: SIGTERM stops accepting and lets sessions finish within
# shutdown_timeout (exit 0), cuts them after it (exit 3); SIGINT stops at once; the pid
# file comes and goes.
. "$(dirname "$0")/lib.sh"
setup
pg_setup main

CONF="tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\""
C="sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable"

# stop_status NAME SIGNAL: send SIGNAL, wait for the exit; its status lands in $STATUS.
stop_status() {
	local pid=${PX_PID[$1]}
	PX_PID[$1]= # px_stop at cleanup must not expect it to be running
	kill -"$2" "$pid"
	wait "$pid"
	STATUS=$?
}

px_start drain "$CONF
shutdown_timeout = 10000
pid_file = \"$T/drain.pid\""
is "$(cat "$T/drain.pid" 2>/dev/null)" "${PX_PID[drain]}" "pid_file holds the daemon's pid"
"$PGBIN/psql" -X -At -d "$(px_dsn drain "$C")" -c "select pg_sleep(1.5), 'finished'" \
	>"$T/drain.out" 2>&1 &
CLIENT=$!
sleep 0.5
PID=${PX_PID[drain]}
PX_PID[drain]=
kill -TERM "$PID"
sleep 0.3
q_fails "draining: new connections are refused" "$(px_dsn drain "$C")" "select 1" \
	"Connection refused|could not connect"
wait "$CLIENT"
like "$(cat "$T/drain.out")" "finished" "draining: the open session finished its query"
wait "$PID"
is "$?" 0 "SIGTERM after every session finished: exit 0"
ok "$([ ! -e "$T/drain.pid" ]; echo $?)" "the pid file is removed at exit"
like "$(cat "${PX_LOG[drain]}")" "every connection has finished" "the log says the drain completed"

px_start cut "$CONF
shutdown_timeout = 500"
"$PGBIN/psql" -X -At -d "$(px_dsn cut "$C")" -c "select pg_sleep(10)" >"$T/cut.out" 2>&1 &
CLIENT=$!
sleep 0.5
start=$(date +%s%N)
stop_status cut TERM
is "$STATUS" 3 "SIGTERM with a session past shutdown_timeout: exit 3"
ms=$((($(date +%s%N) - start) / 1000000))
ok "$([ "$ms" -lt 3000 ]; echo $?)" "... within shutdown_timeout, not the query's 10 s (${ms} ms)"
wait "$CLIENT"
isnt_rc=$?
ok "$([ "$isnt_rc" -ne 0 ]; echo $?)" "... and the cut client sees its connection end"
like "$(cat "${PX_LOG[cut]}")" "shutdown_timeout reached: closing 1 open connection" \
	"the log says how many connections were cut"

px_start int "$CONF"
"$PGBIN/psql" -X -At -d "$(px_dsn int "$C")" -c "select pg_sleep(10)" >/dev/null 2>&1 &
CLIENT=$!
sleep 0.5
start=$(date +%s%N)
stop_status int INT
is "$STATUS" 3 "SIGINT with an open session: exit 3, at once"
ms=$((($(date +%s%N) - start) / 1000000))
ok "$([ "$ms" -lt 2000 ]; echo $?)" "... in ${ms} ms"
wait "$CLIENT"

px_start idle "$CONF"
stop_status idle INT
is "$STATUS" 0 "SIGINT with nothing open: exit 0"

# systemd's Type=notify: READY=1 once listening, STOPPING=1 when the drain starts.
NOTIFY=$T/notify.sock
"$PY" - "$NOTIFY" >"$T/notify.out" 2>&1 <<'PYEOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
try:
    while True:
        msg = s.recv(4096).decode()
        print(msg, flush=True)
        if "STOPPING=1" in msg:
            break
except socket.timeout:
    pass
PYEOF
LISTENER=$!
for _ in $(seq 1 50); do [ -S "$NOTIFY" ] && break; sleep 0.1; done
px_config notify "$CONF"
NOTIFY_SOCKET=$NOTIFY px_run notify -c "${PX_CONF[notify]}"
ok $? "pgktls 'notify' starts with NOTIFY_SOCKET set"
stop_status notify TERM
wait "$LISTENER"
like "$(cat "$T/notify.out")" "^READY=1" "NOTIFY_SOCKET gets READY=1"
like "$(cat "$T/notify.out")" "^STOPPING=1" "... and STOPPING=1 on SIGTERM"

# general.user: started as root, serving as the user after binding.
if [ "$(id -u)" = 0 ]; then
	chmod 755 "$CERTS"
	chmod 644 "$CERTS/proxy.key"
	px_start asuser "$CONF
user = \"postgres\""
	uid=$(awk '/^Uid:/{print $2 "," $3 "," $4 "," $5}' "/proc/${PX_PID[asuser]}/status")
	want=$(id -u postgres)
	is "$uid" "$want,$want,$want,$want" "user = postgres: every uid of the daemon is postgres's"
	like "$(cat "${PX_LOG[asuser]}")" "running as postgres" "... and the log says so"
	q_ok "... and it serves" "$(px_dsn asuser "$C")" "select 1" 1
	px_stop asuser
	chmod 600 "$CERTS/proxy.key"
else
	skip 3 "general.user needs to start as root"
fi

done_testing
