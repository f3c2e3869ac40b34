#!/bin/bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# ktls-idle.sh [N] - idle memory per session through pgktls with TLS on both hops,
# userspace (ktls = off) against kTLS (ktls = required), against tests/integration/fakepg.py.
# Needs a kernel with kTLS: run it in the VM from a build directory,
#   tests/ktls-vm/run.sh bash bench/ktls-idle.sh 300
# Prints one line per mode: sessions opened, RSS before and after, KB per session.
set -u
ulimit -n 65536 2>/dev/null
N=${1:-300}
HERE=$(cd "$(dirname "$0")" && pwd)
# The stand-in upstream and the idle client are test support, shared with t-idle-memory.sh.
SUPPORT=$(cd "$HERE/../tests/integration" && pwd)
BIN=${PGKTLS_BIN:-$PWD/src/pgktls}
[ -x "$BIN" ] || { echo "ktls-idle.sh: no pgktls at $BIN (run from the build dir)" >&2; exit 1; }
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$W"' EXIT
"$BIN" --generate-cert "$W/certs" >/dev/null || exit 1
/usr/bin/python3 "$SUPPORT/fakepg.py" --port 27001 --cert "$W/certs/server.pem" \
	--key "$W/certs/server.key" >"$W/fake.log" 2>&1 &
sleep 2
for mode in off required; do
	"$BIN" -H 127.0.0.1 -p 27002 -u 127.0.0.1:27001 --cert "$W/certs/server-chain.pem" \
		--key "$W/certs/server.key" --tls-verify prefer --workers 1 --log-level warn \
		-o ktls=$mode >"$W/px-$mode.log" 2>&1 &
	P=$!
	sleep 1
	# A warm-up batch first: the figure is the growth past the first sessions.
	mkfifo "$W/warm-$mode" "$W/hold-$mode"
	/usr/bin/python3 "$SUPPORT/idle.py" 127.0.0.1 27002 20 --tls --parallel 8 \
		<"$W/warm-$mode" >"$W/warm-$mode.out" &
	exec 8>"$W/warm-$mode"
	for _ in $(seq 1 120); do grep -q ready "$W/warm-$mode.out" 2>/dev/null && break; sleep 0.5; done
	r0=$(awk '/VmRSS/{print $2}' "/proc/$P/status")
	/usr/bin/python3 "$SUPPORT/idle.py" 127.0.0.1 27002 "$N" --tls --parallel 16 \
		<"$W/hold-$mode" >"$W/idle-$mode.out" &
	exec 9>"$W/hold-$mode"
	for _ in $(seq 1 1200); do grep -q ready "$W/idle-$mode.out" 2>/dev/null && break; sleep 0.5; done
	sleep 1
	r1=$(awk '/VmRSS/{print $2}' "/proc/$P/status")
	n=$(cut -d' ' -f2 "$W/idle-$mode.out")
	awk -v m="$mode" -v n="$n" -v a="$r0" -v b="$r1" 'BEGIN {
		printf "ktls=%s: %d sessions, RSS %d -> %d KB: %.1f KB per session\n", m, n, a, b,
		    n ? (b - a) / n : 0 }'
	exec 8>&- 9>&-
	sleep 1
	kill "$P"
	wait "$P" 2>/dev/null
done
