#!/bin/bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# idle-mem.sh [N] [WORKERS] - idle memory per session through pgktls in userspace TLS
# mode (ktls = off, so any kernel will do), against tests/integration/fakepg.py, for both upstream
# kinds: TLS on both hops, and client TLS with a plaintext upstream. Run it from a
# build directory:
#   bash /path/to/bench/idle-mem.sh 1000      # workers = 1
#   bash /path/to/bench/idle-mem.sh 1000 0    # one worker per CPU
# Prints one line per upstream kind: sessions opened, RSS before and after, KB per
# session. The figure is the growth of VmRSS past a warm-up of 20 sessions, divided
# by the sessions opened (the recipe of bench/ktls-idle.sh and bench/run's idle measure).
# Extra pgktls options can be passed in PGKTLS_OPTS (e.g. "-o workers=2").
set -u
ulimit -n 20000 2>/dev/null
N=${1:-1000}
WORKERS=${2:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
# The stand-in upstream and the idle client are test support, shared with t-idle-memory.sh.
SUPPORT=$(cd "$HERE/../tests/integration" && pwd)
BIN=${PGKTLS_BIN:-$PWD/src/pgktls}
PY=/usr/bin/python3
[ -x "$BIN" ] || { echo "idle-mem.sh: no pgktls at $BIN (run from the build dir)" >&2; exit 1; }
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
"$BIN" --generate-cert "$W/certs" >/dev/null || exit 1
for upstream in tls plain; do
	PG=$(free_port)
	PX=$(free_port)
	if [ "$upstream" = tls ]; then
		FAKE_TLS=(--cert "$W/certs/server.pem" --key "$W/certs/server.key")
	else
		FAKE_TLS=()	# answers SSLRequest with 'N': tls_verify = prefer goes plaintext
	fi
	"$PY" "$SUPPORT/fakepg.py" --port "$PG" "${FAKE_TLS[@]}" >"$W/fake-$upstream.log" 2>&1 &
	F=$!
	for _ in $(seq 1 50); do grep -q ready "$W/fake-$upstream.log" 2>/dev/null && break; sleep 0.1; done
	# shellcheck disable=SC2086
	"$BIN" -H 127.0.0.1 -p "$PX" -u "127.0.0.1:$PG" --cert "$W/certs/server-chain.pem" \
		--key "$W/certs/server.key" --tls-verify prefer --workers "$WORKERS" \
		--log-level warn -o ktls=off ${PGKTLS_OPTS:-} >"$W/px-$upstream.log" 2>&1 &
	P=$!
	sleep 1
	mkfifo "$W/warm-$upstream" "$W/hold-$upstream"
	"$PY" "$SUPPORT/idle.py" 127.0.0.1 "$PX" 20 --tls --parallel 8 \
		<"$W/warm-$upstream" >"$W/warm-$upstream.out" &
	exec 8>"$W/warm-$upstream"
	for _ in $(seq 1 120); do grep -q ready "$W/warm-$upstream.out" 2>/dev/null && break; sleep 0.5; done
	r0=$(awk '/VmRSS/{print $2}' "/proc/$P/status")
	t0=$(awk '{print $14 + $15}' "/proc/$P/stat")
	"$PY" "$SUPPORT/idle.py" 127.0.0.1 "$PX" "$N" --tls --parallel 16 \
		<"$W/hold-$upstream" >"$W/idle-$upstream.out" &
	exec 9>"$W/hold-$upstream"
	for _ in $(seq 1 1200); do grep -q ready "$W/idle-$upstream.out" 2>/dev/null && break; sleep 0.5; done
	sleep 1
	r1=$(awk '/VmRSS/{print $2}' "/proc/$P/status")
	t1=$(awk '{print $14 + $15}' "/proc/$P/stat")
	n=$(cut -d' ' -f2 "$W/idle-$upstream.out")
	awk -v u="$upstream" -v w="$WORKERS" -v n="$n" -v a="$r0" -v b="$r1" \
		-v cpu=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
		printf "upstream=%s workers=%s: %d sessions, RSS %d -> %d KB: %.1f KB per session" \
		    " (proxy CPU %.2f ms per session)\n", u, w, n, a, b, n ? (b - a) / n : 0,
		    n ? cpu * 1000 / hz / n : 0 }'
	exec 8>&- 9>&-
	sleep 1
	kill "$P" "$F"
	wait "$P" "$F" 2>/dev/null
done
