#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# systemd socket activation: under systemd-socket-activate (systemd's own tool, which binds,
# waits for the first client, then execs pgktls with LISTEN_FDS) pgktls serves
# sslmode=verify-full clients on both inherited addresses, every worker on each, never binds
# its configured port, says so in its log and stats, keeps the sockets across a reload, and
# refuses to start on a descriptor that is not a listening TCP socket. Last,
# `systemd-analyze verify` on pgktls.service and pgktls.socket as built.
. "$(dirname "$0")/lib.sh"
setup
need_cmd systemd-socket-activate systemd-analyze ss
pg_setup main
STAT=${PGKTLS_BUILDDIR}/tools/pgktls-stat
[ -x "$STAT" ] || bail "pgktls-stat not found at $STAT"

SOCK=$T/stats.sock
C="sslmode=verify-full sslrootcert=$CERTS/ca.crt channel_binding=disable"
GENERAL="tls_certificate = \"$CERTS/proxy.crt\"
tls_private_key = \"$CERTS/proxy.key\"
tls_verify = \"verify_full\"
tls_server_ca_certificate = \"$CERTS/ca.crt\"
stats_socket = \"$SOCK\""
# The configured port (PX_PORT[sa]) must stay unused: the sockets are systemd's.
px_config sa "$GENERAL"
A1=$(port_alloc)
A2=$(port_alloc)
dsn() { echo "host=localhost hostaddr=127.0.0.1 port=$1 dbname=postgres user=alice password=alice-pw $C"; }

px_spawn sa systemd-socket-activate -l "127.0.0.1:$A1" -l "127.0.0.1:$A2" \
	--fdname=first:second "$PGKTLS_BIN" -c "${PX_CONF[sa]}"
wait_log sa "Listening on 127.0.0.1:$A2"
ok $? "systemd-socket-activate listens on both addresses before pgktls runs"
unlike "$(cat "${PX_LOG[sa]}")" "ready:" "... and has not started pgktls yet (it waits for a client)"

# The first client wakes it: its connection waits in the backlog until pgktls accepts it.
q_ok "the first client (verify-full) starts pgktls and is served on the first socket" \
	"$(dsn "$A1")" "select 'first'" first
wait_log sa "ready:"
ok $? "pgktls reports ready"
q_ok "the second socket serves verify-full clients too" "$(dsn "$A2")" "select 'second'" second
q_ok "... and again on the first (the sockets stay open)" "$(dsn "$A1")" "select 2" 2
LOG=$(cat "${PX_LOG[sa]}")
like "$LOG" "ready: listening on 127.0.0.1:$A1 \(from systemd: first\), 127.0.0.1:$A2 \(from systemd: second\)" \
	"the ready line names both addresses as coming from systemd, with their names"
like "$LOG" "socket activation: 2 listening socket\(s\) from systemd; general.host and general.port are not used" \
	"the log says the configured host and port are not used"

PID=${PX_PID[sa]}
is "$(cat "/proc/$PID/comm" 2>/dev/null)" pgktls "systemd-socket-activate exec'd pgktls in its own process"
# pgktls never bound its configured port: nothing listens there, and it is free to bind.
is "$(ss -Hltn "sport = :${PX_PORT[sa]}" | wc -l)" 0 "nothing listens on the configured port ${PX_PORT[sa]}"
"$PY" -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' "${PX_PORT[sa]}"
ok $? "... and it can still be bound by someone else"
# Each worker holds its own dup of each inherited socket (2 workers), the originals closed.
for a in "$A1" "$A2"; do
	fds=$(ss -Hltnp "sport = :$a" | grep -o "pid=$PID,fd=[0-9]*" | sort -u | wc -l)
	is "$fds" 2 "port $a: one descriptor per worker (2), no stray original"
done
# (That LISTEN_* are unset afterwards is in tests/unit/test_sdlisten.c: /proc/PID/environ
# shows the environment as it was at exec, whatever the process did since.)

"$STAT" -s "$SOCK" --json >"$T/stats.json"
is "$?" 0 "pgktls-stat --json exits 0"
is "$("$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d["listen"]["from"], d["listen"]["sockets"])' "$T/stats.json")" \
	"systemd 2" "the stats say: 2 listening sockets, from systemd"

# Many clients at once over both sockets: every worker accepts from the shared queues.
pids=()
for i in $(seq 1 20); do
	port=$A1
	[ $((i % 2)) = 0 ] && port=$A2
	timeout 60 "$PGBIN/psql" -X -Atq -d "$(dsn "$port")" -c "select $i" >"$T/par-$i.out" 2>&1 &
	pids+=($!)
done
wait "${pids[@]}"
bad=0
for i in $(seq 1 20); do
	[ "$(cat "$T/par-$i.out")" = "$i" ] && continue
	bad=$((bad + 1))
	diag "client $i: $(cat "$T/par-$i.out")"
done
is "$bad" 0 "20 concurrent clients over both sockets all get their answer"

# Reload with another port in the file: the inherited sockets stay, a warning says why.
sed -i "s/^port = ${PX_PORT[sa]}\$/port = $(port_alloc)/" "${PX_CONF[sa]}"
kill -HUP "$PID"
wait_log sa "SIGHUP: reloaded"
ok $? "SIGHUP reloads"
like "$(cat "${PX_LOG[sa]}")" "the socket unit \(pgktls.socket\) owns the addresses" \
	"a changed port under socket activation: the log says the socket unit owns the address"
q_ok "after the reload both inherited sockets still serve" "$(dsn "$A1")" "select 3" 3
q_ok "... the second too" "$(dsn "$A2")" "select 4" 4
px_stop sa

# Without LISTEN_FDS pgktls binds its configured port as always; with variables meant for
# another process it says so and binds too.
px_config own "$GENERAL"
LISTEN_PID=1 LISTEN_FDS=2 px_run own -c "${PX_CONF[own]}"
ok $? "LISTEN_PID of another process: pgktls starts anyway"
like "$(cat "${PX_LOG[own]}")" "LISTEN_FDS is for process 1, not this one" "... and logs that it ignored them"
q_ok "... and serves on its own configured port" "$(px_dsn own "$C")" "select 5" 5
px_stop own

# A descriptor that is not a listening socket: a clear error, exit 1, nothing half-served.
px_config bad "$GENERAL"
out=$(sh -c 'LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=pgktls.socket exec "$0" -c "$1" 3<"$1"' \
	"$PGKTLS_BIN" "${PX_CONF[bad]}" 2>&1)
is "$?" 1 "fd 3 a regular file: pgktls exits 1"
like "$out" "socket activation: socket 1 of 1 from systemd \('pgktls.socket'\): fd 3 is not a socket" \
	"... saying which socket and why"
out=$(sh -c 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" -c "$1"' "$PGKTLS_BIN" "${PX_CONF[bad]}" \
	2>&1 3>&-)
is "$?" 1 "LISTEN_FDS=1 with fd 3 closed: pgktls exits 1"
"$PY" - "$PGKTLS_BIN" "${PX_CONF[bad]}" >"$T/bad.out" 2>&1 <<'PYEOF'
import os, socket, subprocess, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))            # bound, never listen()ed (as with Accept=yes)
os.dup2(s.fileno(), 3)
r = subprocess.run(["sh", "-c", 'LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" -c "$1"'] + sys.argv[1:],
                   pass_fds=(3,), capture_output=True, text=True, timeout=20)
print("rc=%d" % r.returncode)
print(r.stderr)
PYEOF
like "$(cat "$T/bad.out")" "^rc=1$" "a bound but not listening TCP socket: exit 1"
like "$(cat "$T/bad.out")" "error socket activation: .*fd 3 is a TCP socket that is not listening" \
	"... and the error says so"

# systemd-analyze verify on both units as built, with ExecStart pointing at this build's
# binary (verify checks it exists) and the man pages of this tree (it checks
# Documentation=man: with man(1)). The pgktls user need not exist: verify does not check it.
U=$T/units
mkdir -p "$U" "$T/man/man1" "$T/man/man5" "$T/man/man8"
[ -f "$PGKTLS_BUILDDIR/tools/pgktls.service" ] || bail "tools/pgktls.service not built"
sbindir=$(sed -n 's|^ExecStart=\(.*\)/pgktls -c .*|\1|p' "$PGKTLS_BUILDDIR/tools/pgktls.service")
sed -e "s|$sbindir/pgktls|$PGKTLS_BIN|g" "$PGKTLS_BUILDDIR/tools/pgktls.service" >"$U/pgktls.service"
cp "$PGKTLS_SRCDIR/tools/pgktls.socket" "$U/pgktls.socket"
cp "$PGKTLS_SRCDIR/docs/pgktls-stat.1" "$T/man/man1/"
cp "$PGKTLS_SRCDIR/docs/pgktls.toml.5" "$T/man/man5/"
cp "$PGKTLS_SRCDIR/docs/pgktls.8" "$T/man/man8/"
out=$(MANPATH=$T/man SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$U/pgktls.service" \
	"$U/pgktls.socket" 2>&1)
rc=$?
is "$rc" 0 "systemd-analyze verify passes on pgktls.service and pgktls.socket"
[ -z "$out" ] || diag "$out"
# The check can fail: a broken socket unit is refused.
sed 's/^ListenStream=.*/ListenStream=not-an-address/' "$U/pgktls.socket" >"$U/broken.socket"
MANPATH=$T/man systemd-analyze verify "$U/broken.socket" >/dev/null 2>&1
ok "$([ $? -ne 0 ]; echo $?)" "... and fails on a socket unit with a bad ListenStream="

done_testing
