# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# lib.sh - shared helpers for the integration tests (sourced by t-*.sh, bash only).
#
# Each test gets its own temporary directory, its own PostgreSQL 15 cluster(s) on free
# 127.0.0.1 ports and its own pgktls instance(s), so `make -j2 check` can run tests side by
# side. Everything is torn down by an EXIT trap, failure or not.
#
# Environment:
#   PGKTLS_BIN                  the daemon under test (set by `make check`)
#   PGKTLS_SRCDIR               the source tree (for pgwire.py and the node package files)
#   PGKTLS_REQUIRE_INTEGRATION  1: a missing prerequisite is a failure, not a skip (tools/test)
#   PGKTLS_SKIP_INTEGRATION     1: skip every integration test (used inside distcheck)
#   PGKTLS_PGBIN                PostgreSQL 15 binaries (default /usr/lib/postgresql/15/bin)
#   PGKTLS_KEEP_TMP             1: keep the temporary directory for a post-mortem
#   PGKTLS_TEST_LOG_LEVEL       log_level for pgktls (default info)
#   PGKTLS_TEST_KTLS            auto|off|required: `ktls = ...` in every config px_config
#                               writes (unless the test sets ktls itself); the kTLS VM runs
#                               the whole suite with `required`
#   PGKTLS_TEST_SLOW            1: startup_timeout 60 s and connect_timeout 30 s unless a
#                               test sets them (the kTLS VM's emulated CPU)

set -u

: "${PGKTLS_SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${PGKTLS_BUILDDIR:=$PGKTLS_SRCDIR}"
: "${PGKTLS_BIN:=$PGKTLS_BUILDDIR/src/pgktls}"
PGBIN=${PGKTLS_PGBIN:-/usr/lib/postgresql/15/bin}
PY=/usr/bin/python3
PGWIRE="$PGKTLS_SRCDIR/tests/integration/pgwire.py"
TEST_NAME=$(basename "$0" .sh)

# The tests must not pick up the caller's libpq settings.
for _v in $(env | sed -n 's/^\(PG[A-Z_]*\)=.*/\1/p'); do
	case $_v in
	PGKTLS_*) ;;
	*) unset "$_v" ;;
	esac
done
# CI may run us without HOME; npm and java want one.
: "${HOME:=$(getent passwd "$(id -u)" | cut -d: -f6)}"
export HOME
export PGCONNECT_TIMEOUT=10
# Hundreds of handshakes at once under an emulated CPU (the kTLS VM) take longer.
[ "${PGKTLS_TEST_SLOW:-0}" = 1 ] && PGCONNECT_TIMEOUT=60
export PGSYSCONFDIR=/nonexistent PGSERVICEFILE=/nonexistent PGPASSFILE=/nonexistent
export LC_ALL=C.UTF-8

# ---------------------------------------------------------------- TAP

_tap_n=0
_tap_failed=0
_tap_done=0
T=

diag() {
	local line
	printf '%s\n' "$@" | while IFS= read -r line; do printf '# %s\n' "$line"; done
}

# ok STATUS DESCRIPTION: a test passes when STATUS is 0.
ok() {
	_tap_n=$((_tap_n + 1))
	if [ "$1" -eq 0 ]; then
		printf 'ok %d - %s\n' "$_tap_n" "$2"
	else
		printf 'not ok %d - %s\n' "$_tap_n" "$2"
		_tap_failed=$((_tap_failed + 1))
	fi
	return "$1"
}

pass() { ok 0 "$1"; }
fail() { ok 1 "$1" || true; }

skip() { # skip COUNT REASON
	local i
	for ((i = 0; i < $1; i++)); do
		_tap_n=$((_tap_n + 1))
		printf 'ok %d # SKIP %s\n' "$_tap_n" "$2"
	done
}

# is GOT WANT DESCRIPTION
is() {
	if [ "$1" = "$2" ]; then
		pass "$3"
	else
		fail "$3"
		diag "got:  '$1'" "want: '$2'"
		return 1
	fi
}

# like TEXT EXTENDED-REGEX DESCRIPTION
like() {
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then
		pass "$3"
	else
		fail "$3"
		diag "text did not match /$2/:" "$1"
		return 1
	fi
}

# unlike TEXT EXTENDED-REGEX DESCRIPTION
unlike() {
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then
		fail "$3"
		diag "text matched /$2/:" "$1"
		return 1
	else
		pass "$3"
	fi
}

# skip_all REASON: the whole file is skipped, or fails under PGKTLS_REQUIRE_INTEGRATION=1.
skip_all() {
	if [ "${PGKTLS_REQUIRE_INTEGRATION:-0}" = 1 ]; then
		echo "1..1"
		echo "not ok 1 - prerequisite missing: $1 (PGKTLS_REQUIRE_INTEGRATION=1)"
		exit 1
	fi
	echo "1..0 # SKIP $1"
	exit 0
}

bail() {
	echo "Bail out! $*"
	exit 1
}

# done_testing: stop what is left (checking pgktls survived), print the plan, exit.
done_testing() {
	_px_stop_all
	_tap_done=1
	echo "1..$_tap_n"
	if [ "$_tap_failed" -gt 0 ]; then
		_dump_logs
		exit 1
	fi
	exit 0
}

# ---------------------------------------------------------------- prerequisites

# need_cmd CMD...: skip the file when a command is missing.
need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip_all "$c not found"
	done
}

# need_ktls: kernel TLS here (loading the tls module as root), else skip the whole test, or
# fail it under PGKTLS_REQUIRE_KTLS=1 (make check-ktls: in its VM kTLS must be there).
need_ktls() {
	if [ ! -r /proc/net/tls_stat ] && [ "$(id -u)" = 0 ]; then
		modprobe tls 2>/dev/null
	fi
	[ -r /proc/net/tls_stat ] && return 0
	if [ "${PGKTLS_REQUIRE_KTLS:-0}" = 1 ]; then
		echo "1..1"
		echo "not ok 1 - kernel TLS available (PGKTLS_REQUIRE_KTLS=1): no /proc/net/tls_stat"
		exit 1
	fi
	echo "1..0 # SKIP no kernel TLS here (no /proc/net/tls_stat): make check-ktls runs this in a VM"
	exit 0
}

# setup: common prerequisites, the temp directory and the cleanup trap. Call it first.
setup() {
	[ "${PGKTLS_SKIP_INTEGRATION:-0}" = 1 ] && {
		echo "1..0 # SKIP PGKTLS_SKIP_INTEGRATION=1"
		exit 0
	}
	[ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] && [ -x "$PGBIN/psql" ] ||
		skip_all "PostgreSQL 15 not found in $PGBIN"
	[ -x "$PY" ] || skip_all "$PY not found"
	need_cmd openssl timeout
	[ -x "$PGKTLS_BIN" ] || bail "pgktls binary not found at $PGKTLS_BIN"
	if [ "$(id -u)" = 0 ]; then
		getent passwd postgres >/dev/null || skip_all "running as root without a postgres user"
		need_cmd runuser
		# cd first: initdb and pg_ctl fail if the caller's directory is closed to them.
		PG_AS=(env -C / runuser -u postgres --)
	else
		PG_AS=()
	fi
	T=$(mktemp -d "${TMPDIR:-/tmp}/pgktls-$TEST_NAME.XXXXXX") || bail "mktemp failed"
	# The database runs as `postgres` when we are root: it must reach its directories.
	chmod 755 "$T"
	trap _cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	trap 'exit 129' HUP
	trap 'exit 141' PIPE
	diag "temporary directory $T"
}

# ---------------------------------------------------------------- ports

# port_alloc: print a free 127.0.0.1 TCP port, reserved for this test until cleanup.
# Ports come from 20000-29999 (below the kernel's ephemeral range, so no outgoing
# connection takes them); a directory per port, created atomically, keeps parallel tests
# apart, and a bind test makes sure nothing else holds the port.
port_alloc() {
	local root=${TMPDIR:-/tmp}/pgktls-test-ports p pid i
	mkdir -p "$root" 2>/dev/null && chmod 1777 "$root" 2>/dev/null
	for ((i = 0; i < 500; i++)); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 10000))
		if ! mkdir "$root/$p" 2>/dev/null; then
			pid=$(cat "$root/$p/pid" 2>/dev/null)
			if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
				rm -rf "$root/$p" # left by a test that was killed
			fi
			continue
		fi
		echo $$ >"$root/$p/pid"
		if "$PY" - "$p" <<'EOF'; then
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
			echo "$root/$p" >>"$T/ports"
			echo "$p"
			return 0
		fi
		rm -rf "${root:?}/$p"
	done
	bail "no free port found"
}

# ---------------------------------------------------------------- certificates

# make_certs: ECDSA P-256 certificates in $T/certs (see the list below).
#   ca.crt                 test CA; server.crt/key (PostgreSQL) and proxy.crt/key (pgktls),
#                          both with SANs localhost, 127.0.0.1, ::1
#   client.crt/key         CN=alice (the test role), signed by ca
#   client-bob.crt/key     CN=bob, signed by ca
#   other-ca.crt           an unrelated CA; other-client.crt/key and other-server.crt/key
#                          are signed by it
#   root2-ca.crt           a second root; inter-ca.crt is signed by it, chain-leaf.crt by
#                          the intermediate; chain-full.crt = leaf + intermediate
make_certs() {
	local d=$T/certs
	mkdir -p "$d"
	(
		cd "$d" || exit 1
		set -e
		mkca() { # name CN [issuer]
			openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
			printf '%s\n' "basicConstraints=critical,CA:TRUE" \
				"keyUsage=critical,keyCertSign,cRLSign" \
				"subjectKeyIdentifier=hash" >"$1.ext"
			if [ $# -ge 3 ]; then
				echo "authorityKeyIdentifier=keyid" >>"$1.ext"
				openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" \
					-set_serial "0x$(openssl rand -hex 8)" -days 30 \
					-extfile "$1.ext" -out "$1.crt" 2>/dev/null
			else
				openssl x509 -req -in "$1.csr" -signkey "$1.key" -days 30 \
					-extfile "$1.ext" -out "$1.crt" 2>/dev/null
			fi
		}
		mkleaf() { # name CN issuer
			openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
				-subj "/CN=$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
			printf '%s\n' "basicConstraints=critical,CA:FALSE" \
				"keyUsage=critical,digitalSignature" \
				"extendedKeyUsage=serverAuth,clientAuth" \
				"subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
				"authorityKeyIdentifier=keyid" >"$1.ext"
			openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" \
				-set_serial "0x$(openssl rand -hex 8)" -days 30 \
				-extfile "$1.ext" -out "$1.crt" 2>/dev/null
		}
		mkca ca "pgktls test CA"
		mkleaf server localhost ca
		mkleaf proxy localhost ca
		mkleaf client alice ca
		mkleaf client-bob bob ca
		mkca other-ca "pgktls unrelated CA"
		mkleaf other-server localhost other-ca
		mkleaf other-client alice other-ca
		mkca root2-ca "pgktls root 2"
		mkca inter-ca "pgktls intermediate" root2-ca
		mkleaf chain-leaf localhost inter-ca
		cat chain-leaf.crt inter-ca.crt >chain-full.crt
		chmod 600 ./*.key
		chmod 644 ./*.crt
		rm -f ./*.csr ./*.ext
	) || bail "certificate generation failed"
	CERTS=$d
}

# make_crl OUT CA [CERT...]: a CRL of CA (a name in $CERTS: CA.crt, CA.key) revoking the
# given certificate files (paths), valid for 30 days, written to OUT. An empty list makes an
# empty CRL (the CA revokes nothing). Uses a throw-away `openssl ca` database per call.
make_crl() {
	local out=$1 ca=$2 db c
	shift 2
	db=$(mktemp -d "$T/crldb.XXXXXX") || bail "mktemp failed"
	: >"$db/index.txt"
	echo 1000 >"$db/crlnumber"
	printf '%s\n' "[ca]" "default_ca = d" "[d]" "database = $db/index.txt" \
		"crlnumber = $db/crlnumber" "default_md = sha256" "default_crl_days = 30" \
		>"$db/ca.cnf"
	for c in "$@"; do
		openssl ca -config "$db/ca.cnf" -keyfile "$CERTS/$ca.key" -cert "$CERTS/$ca.crt" \
			-revoke "$c" >"$db/log" 2>&1 ||
			{ cat "$db/log"; bail "openssl ca -revoke failed"; }
	done
	openssl ca -config "$db/ca.cnf" -keyfile "$CERTS/$ca.key" -cert "$CERTS/$ca.crt" \
		-gencrl -out "$out" >"$db/log" 2>&1 ||
		{ cat "$db/log"; bail "openssl ca -gencrl failed"; }
	rm -rf "$db"
}

# ---------------------------------------------------------------- PostgreSQL

declare -A PG_PORT PG_DIR PG_SOCK

# pg_init NAME [ssl=on|off] [max_connections=N]: initdb a cluster (not started yet).
# Superuser `postgres` over the unix socket is trusted; pg_hba adds the rest.
pg_init() {
	local name=$1 ssl=on maxconn=50 arg dir
	shift
	for arg in "$@"; do
		case $arg in
		ssl=*) ssl=${arg#ssl=} ;;
		max_connections=*) maxconn=${arg#max_connections=} ;;
		*) bail "pg_init: unknown option $arg" ;;
		esac
	done
	[ -n "${CERTS:-}" ] || make_certs
	dir=$T/pg-$name
	mkdir -p "$dir/sock"
	[ ${#PG_AS[@]} -gt 0 ] && chown -R postgres: "$dir"
	"${PG_AS[@]}" "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
		--no-sync --no-instructions >"$T/initdb-$name.log" 2>&1 ||
		{ cat "$T/initdb-$name.log"; bail "initdb failed"; }
	PG_PORT[$name]=$(port_alloc)
	PG_DIR[$name]=$dir
	PG_SOCK[$name]=$dir/sock
	cp "$CERTS/server.crt" "$CERTS/server.key" "$CERTS/ca.crt" "$dir/data/"
	[ ${#PG_AS[@]} -gt 0 ] && chown postgres: "$dir/data/server.crt" "$dir/data/server.key" \
		"$dir/data/ca.crt"
	cat >>"$dir/data/postgresql.conf" <<EOF
port = ${PG_PORT[$name]}
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
max_connections = $maxconn
shared_buffers = 16MB
fsync = off
synchronous_commit = off
full_page_writes = off
ssl = $ssl
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'ca.crt'
log_connections = on
log_line_prefix = '%m [%p] %q%u@%d '
EOF
	pg_hba "$name" "host all all 127.0.0.1/32 trust"
}

# pg_hba NAME LINE...: replace pg_hba.conf (after the superuser's unix-socket line).
pg_hba() {
	local name=$1
	shift
	{
		echo "local all postgres trust"
		printf '%s\n' "$@"
	} >"${PG_DIR[$name]}/data/pg_hba.conf"
	if [ -f "${PG_DIR[$name]}/data/postmaster.pid" ]; then
		pg_sql "$name" "select pg_reload_conf()" >/dev/null
		sleep 0.3
	fi
}

pg_start() {
	local name=$1
	"${PG_AS[@]}" "$PGBIN/pg_ctl" -D "${PG_DIR[$name]}/data" -l "${PG_DIR[$name]}/server.log" \
		-w -t 60 start >"$T/pg_ctl-$name.log" 2>&1 ||
		{ cat "$T/pg_ctl-$name.log" "${PG_DIR[$name]}/server.log"; bail "pg_ctl start failed"; }
	_PG_RUNNING+=("$name")
}

pg_stop() {
	"${PG_AS[@]}" "$PGBIN/pg_ctl" -D "${PG_DIR[$1]}/data" -m immediate -w stop >/dev/null 2>&1
}

# pg_sql NAME SQL: run SQL as the superuser over the unix socket; prints unaligned rows.
pg_sql() {
	"$PGBIN/psql" -X -At -v ON_ERROR_STOP=1 -h "${PG_SOCK[$1]}" -p "${PG_PORT[$1]}" \
		-U postgres -d postgres -c "$2"
}

# pg_roles NAME: the standard test roles.
#   alice  SCRAM password alice-pw   bob  MD5 password bob-pw   trusty  no password
pg_roles() {
	pg_sql "$1" "set password_encryption = 'scram-sha-256';
		create role alice login password 'alice-pw';
		set password_encryption = 'md5';
		create role bob login password 'bob-pw';
		create role trusty login;
		grant pg_read_all_stats to alice, bob, trusty;" >/dev/null || bail "creating roles failed"
}

# pg_setup NAME [pg_init options]: init + roles + start, with an hba for every auth method:
# trusty trust, bob md5, alice scram-sha-256 (over TCP, TLS or not, and the unix socket).
pg_setup() {
	local name=$1
	shift
	pg_init "$name" "$@"
	pg_hba "$name" \
		"local all trusty trust" "local all bob md5" "local all alice scram-sha-256" \
		"host all trusty 127.0.0.1/32 trust" "host all bob 127.0.0.1/32 md5" \
		"host all alice 127.0.0.1/32 scram-sha-256"
	pg_start "$name"
	pg_roles "$name"
}

# tls_stat NAME: the kernel's kTLS counter NAME from /proc/net/tls_stat (nothing where the
# kernel has no kTLS).
tls_stat() { awk -v k="$1" '$1 == k { print $2 }' /proc/net/tls_stat 2>/dev/null; }

# md5_series_sha256 N: the SHA-256 of what `copy (select md5(i::text) from
# generate_series(1, N) i) to stdout` sends (one md5 hex digest and a newline per row).
md5_series_sha256() {
	"$PY" -c 'import hashlib, sys
h = hashlib.sha256()
for i in range(1, int(sys.argv[1]) + 1):
    h.update(hashlib.md5(str(i).encode()).hexdigest().encode() + b"\n")
print(h.hexdigest())' "$1"
}

# ---------------------------------------------------------------- pgktls

declare -A PX_PORT PX_PID PX_LOG PX_CONF
_PX_NAMES=()
_PG_RUNNING=()

# px_config NAME GENERAL-LINES [UPSTREAM-LINES]: write $T/px-NAME.toml on a fresh port.
# host, port, workers and log_level come first; the upstream defaults to the `main`
# cluster over TCP.
px_config() {
	local name=$1 general=${2:-} upstream=${3:-}
	PX_PORT[$name]=$(port_alloc)
	PX_CONF[$name]=$T/px-$name.toml
	if [ -z "$upstream" ]; then
		upstream="host = \"127.0.0.1\"
port = ${PG_PORT[main]:-5432}"
	fi
	# A test that chooses its own ktls keeps it (a key given twice is a config error).
	if [ -n "${PGKTLS_TEST_KTLS:-}" ] && ! printf '%s\n' "$general" | grep -Eq '^ktls'; then
		general="ktls = \"$PGKTLS_TEST_KTLS\"
$general"
	fi
	# Under an emulated CPU a JVM can take over 10 s to handshake: longer default timeouts.
	if [ "${PGKTLS_TEST_SLOW:-0}" = 1 ]; then
		printf '%s\n' "$general" | grep -Eq '^startup_timeout' ||
			general="startup_timeout = 60000
$general"
		printf '%s\n' "$general" | grep -Eq '^connect_timeout' ||
			general="connect_timeout = 30000
$general"
	fi
	cat >"${PX_CONF[$name]}" <<EOF
# $TEST_NAME: $name
[general]
host = "127.0.0.1"
port = ${PX_PORT[$name]}
workers = ${PX_WORKERS:-2}
log_level = "${PGKTLS_TEST_LOG_LEVEL:-info}"
$general

[upstream]
$upstream
EOF
}

# px_run NAME ARGS...: start pgktls with ARGS and wait for its `ready:` line.
# Return: 0 once ready; 1 (with the log in diag) if it exits or does not get ready in 15 s.
px_run() {
	local name=$1 i
	shift
	PX_LOG[$name]=$T/px-$name.log
	"$PGKTLS_BIN" "$@" 2>"${PX_LOG[$name]}" </dev/null &
	PX_PID[$name]=$!
	_PX_NAMES+=("$name")
	for ((i = 0; i < 150; i++)); do
		if grep -qs 'ready:' "${PX_LOG[$name]}"; then
			return 0
		fi
		if ! kill -0 "${PX_PID[$name]}" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	diag "pgktls $name did not get ready; its log:"
	diag "$(tail -n 30 "${PX_LOG[$name]}")"
	return 1
}

# px_spawn NAME CMD...: start CMD (a wrapper that execs pgktls, such as
# systemd-socket-activate) in the background, stderr in $T/px-NAME.log, stopped by px_stop
# and cleanup like px_run's instances. Does not wait for anything.
px_spawn() {
	local name=$1
	shift
	PX_LOG[$name]=$T/px-$name.log
	"$@" 2>"${PX_LOG[$name]}" </dev/null &
	PX_PID[$name]=$!
	_PX_NAMES+=("$name")
}

# wait_log NAME EXTENDED-REGEX [SECONDS]: wait (default 15 s) until instance NAME's log
# matches. Return: 0, or 1 when it exited or the time ran out.
wait_log() {
	local name=$1 re=$2 i
	for ((i = 0; i < ${3:-15} * 10; i++)); do
		grep -Eqs -- "$re" "${PX_LOG[$name]}" && return 0
		kill -0 "${PX_PID[$name]}" 2>/dev/null || break
		sleep 0.1
	done
	grep -Eqs -- "$re" "${PX_LOG[$name]}"
}

# px_start NAME GENERAL-LINES [UPSTREAM-LINES]: px_config + px_run, a TAP line for it.
px_start() {
	px_config "$@"
	px_run "$1" -c "${PX_CONF[$1]}"
	ok $? "pgktls '$1' starts and reports ready (port ${PX_PORT[$1]})"
}

# px_alive NAME: the instance is still running.
px_alive() {
	kill -0 "${PX_PID[$1]}" 2>/dev/null
}

# px_stop NAME: SIGTERM; it must exit 0 within 10 s. Emits a TAP line.
px_stop() {
	local name=$1 pid=${PX_PID[$1]:-} i rc
	[ -n "$pid" ] || return 0
	PX_PID[$name]=
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"
		rc=$?
		fail "pgktls '$name' was still running at the end (it exited with status $rc)"
		diag "$(tail -n 30 "${PX_LOG[$name]}")"
		return 1
	fi
	kill -TERM "$pid"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null
		fail "pgktls '$name' exits within 10 s of SIGTERM"
		return 1
	fi
	wait "$pid"
	rc=$?
	is "$rc" 0 "pgktls '$name' exits 0 on SIGTERM"
}

_px_stop_all() {
	local n
	for n in "${_PX_NAMES[@]}"; do
		px_stop "$n"
	done
}

_dump_logs() {
	local n f
	for n in "${_PX_NAMES[@]}"; do
		f=${PX_LOG[$n]}
		[ -s "$f" ] || continue
		diag "---- last lines of pgktls '$n' log ($f)"
		diag "$(tail -n 40 "$f")"
	done
}

_cleanup() {
	local rc=$? n pid
	trap - EXIT INT TERM HUP
	# Our reader may be gone (`t-foo.sh | head`): cleaning up must not die of SIGPIPE.
	trap '' PIPE
	for n in "${_PX_NAMES[@]}"; do
		pid=${PX_PID[$n]:-}
		[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	done
	for n in "${_PG_RUNNING[@]}"; do
		pg_stop "$n"
	done
	# A test that died before done_testing still says why in its log.
	[ "$_tap_done" = 1 ] || _dump_logs
	if [ -n "$T" ] && [ -f "$T/ports" ]; then
		while read -r n; do rm -rf "$n"; done <"$T/ports"
	fi
	if [ -n "$T" ]; then
		if [ "${PGKTLS_KEEP_TMP:-0}" = 1 ]; then
			echo "# kept $T" >&2
		else
			rm -rf "$T"
		fi
	fi
	exit "$rc"
}

# ---------------------------------------------------------------- clients

# q CONNINFO SQL: run SQL with psql; stdout gets the rows, $T/q.err the errors.
# Return: psql's status (timeout after 60 s gives 124).
q() {
	timeout 60 "$PGBIN/psql" -X -Atq -v ON_ERROR_STOP=1 -d "$1" -c "$2" 2>"$T/q.err"
}

# copy_sha CONNINFO TABLE [SECONDS]: the sha256 (hex alone) of COPY TABLE TO STDOUT
# through CONNINFO, within SECONDS (300); that of no bytes when the COPY fails.
copy_sha() {
	timeout "${3:-300}" "$PGBIN/psql" -X -d "$1" -c "copy $2 to stdout" | sha256sum |
		cut -d' ' -f1
}

# q_ok DESCRIPTION CONNINFO SQL WANT: the query succeeds and prints WANT.
q_ok() {
	local out rc
	out=$(q "$2" "$3")
	rc=$?
	if [ $rc -eq 0 ] && [ "$out" = "$4" ]; then
		pass "$1"
		return 0
	fi
	fail "$1"
	diag "conninfo: $2" "query: $3" "status $rc, want '$4', got '$out'" "$(cat "$T/q.err")"
	return 1
}

# q_fails DESCRIPTION CONNINFO SQL ERROR-REGEX: the connection or query fails and the
# error text matches ERROR-REGEX.
q_fails() {
	local out rc err
	out=$(q "$2" "$3")
	rc=$?
	err=$(cat "$T/q.err")
	if [ $rc -ne 0 ] && [ $rc -ne 124 ] && printf '%s\n' "$err" | grep -Eq -- "$4"; then
		pass "$1"
		return 0
	fi
	fail "$1"
	diag "conninfo: $2" "status $rc (want failure matching /$4/), output '$out'" "$err"
	return 1
}

# conninfo NAME [EXTRA]: libpq conninfo for pgktls instance NAME, as user alice.
px_dsn() {
	echo "host=localhost hostaddr=127.0.0.1 port=${PX_PORT[$1]} dbname=postgres user=alice password=alice-pw ${2:-}"
}

# The SQL that reports whether the upstream hop (PostgreSQL's view) is TLS.
SQL_SSL="select ssl from pg_stat_ssl where pid = pg_backend_pid()"

# cancelled_ok OUTPUT DESCRIPTION: pgwire.py's cancel line says 57014 within 10 seconds.
cancelled_ok() {
	local secs
	secs=$(printf '%s\n' "$1" | sed -n 's/^error 57014 .* after \([0-9.]*\) s$/\1/p')
	if [ -n "$secs" ] && awk "BEGIN { exit !($secs < 10) }"; then
		pass "$2"
		return 0
	fi
	fail "$2"
	diag "want 'error 57014 ... after N s' with N < 10, got: $1"
	return 1
}

# ---------------------------------------------------------------- upgrades (SIGUSR2)

# wait_for SECONDS SHELL-CONDITION: until the condition (evaluated each time) holds.
# Return: 0, or 1 when the time ran out.
wait_for() {
	local end=$((SECONDS + $1))
	while [ "$SECONDS" -lt "$end" ]; do
		eval "$2" && return 0
		sleep 0.1
	done
	eval "$2"
}

# gone PID: the process has exited (or is not ours to signal).
gone() { ! kill -0 "$1" 2>/dev/null; }

# stat_json SOCKET EXPR: evaluate the Python EXPR on the stats document (as `d`) that
# pgktls-stat --json reads from SOCKET, print the result.
stat_json() {
	"$PGKTLS_BUILDDIR/tools/pgktls-stat" -s "$1" --json 2>/dev/null | "$PY" -c "import json, sys
d = json.load(sys.stdin)
print($2)"
}

# loop_start PORT / loop_stop NAME: a client connecting in a tight loop (SSLRequest, TLS
# verify-full, `select 1`, Terminate: upgrade-clients.py's loop) to pgktls on PORT, and
# the TAP verdict on it: not one refused connect, not one error.
loop_start() {
	rm -f "$T/loop.stop"
	"$PY" "$PGKTLS_SRCDIR/tests/integration/upgrade-clients.py" loop "$1" "$CERTS/ca.crt" \
		"$T/loop.stop" "$T/loop.out" &
	LOOP=$!
	sleep 0.5
}
loop_stop() {
	touch "$T/loop.stop"
	wait "$LOOP"
	like "$(head -n1 "$T/loop.out")" "^ok=[1-9][0-9]* refused=0 errors=0$" \
		"$1: a client connecting in a tight loop saw no refusal and no error"
	diag "loop: $(cat "$T/loop.out")"
}
