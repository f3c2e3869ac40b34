#!/bin/bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# integration.sh [TEST...] - run integration tests (default: `make check`'s
# list but t-ktls.sh) from the build directory, three at a time
# (PGKTLS_VM_JOBS), with `ktls = required` in every config the tests
# generate (PGKTLS_TEST_KTLS, default required), so every TLS hop they open
# goes through kTLS. Meant to run inside the kTLS VM (run-tests.sh does
# that); works anywhere.
#
# Each test's TAP output goes to $TMPDIR/pgktls-vm-suite/NAME.log and is
# printed when a test fails, as it ends (PGKTLS_SUITE_SHOW=1: as it runs). A test
# fails on a non-zero exit status, a `not ok` line or a missing plan.
# Exit status: 0 if all passed, 1 if not.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=$PWD
# Three at a time on two vCPUs: many tests spend their time waiting (timeouts, cancels).
JOBS=${PGKTLS_VM_JOBS:-3}
OUT=${TMPDIR:-/tmp}/pgktls-vm-suite

export PGKTLS_BIN=$BUILD/src/pgktls PGKTLS_SRCDIR=$SRC PGKTLS_BUILDDIR=$BUILD
export PGKTLS_TEST_KTLS=${PGKTLS_TEST_KTLS:-required}
if [ ! -x "$PGKTLS_BIN" ]; then
	echo "integration.sh: no $PGKTLS_BIN: run from the build directory after make" >&2
	exit 1
fi

if [ $# -eq 0 ]; then
	# `make check`'s list (longest first), without t-ktls.sh: run-tests.sh runs it apart.
	set -- $(sed -n '/^INTEGRATION_TESTS = /,/^$/s|^[[:space:]]*\(tests/integration/t-[a-z0-9-]*\.sh\).*|\1|p' \
		"$SRC/Makefile.am" | grep -v '/t-ktls\.sh$' | grep -v '/t-ktls-fallback\.sh$' |
		grep -v '/t-ktls-rekey\.sh$' | grep -v '/t-upgrade-move\.sh$' | sed "s|^|$SRC/|")
fi
# Volume is t-ktls.sh's job here (256 MB each way): under the emulated CPU the load test
# gets 100 clients for 15 s, and t-copy 16 MB instead of 100.
# Each COPY streamer must finish a COPY each way within the run: smaller COPYs here.
export PGKTLS_LOAD_CLIENTS=${PGKTLS_LOAD_CLIENTS:-100} PGKTLS_LOAD_SECONDS=${PGKTLS_LOAD_SECONDS:-20}
export PGKTLS_LOAD_ROWS=${PGKTLS_LOAD_ROWS:-2000}
export PGKTLS_COPY_MB=${PGKTLS_COPY_MB:-16}
export PGKTLS_TEST_SLOW=${PGKTLS_TEST_SLOW:-1}
# No AVX in the JVM's generated code: under qemu TCG (-cpu max) on the 7.2 guest, OpenJDK
# 17.0.21's JIT-compiled EC arithmetic crashed with SIGSEGV (17.0.15 timed out instead);
# with -XX:UseAVX=0 the same pgjdbc runs pass (t-jdbc, t-ktls, t-ktls-fallback use it).
export PGKTLS_TEST_JAVA_OPTS=${PGKTLS_TEST_JAVA_OPTS:--XX:UseAVX=0}
rm -rf "$OUT"
mkdir -p "$OUT"

# run_one PATH: run one test, leave "STATUS SECONDS" in $OUT/NAME.rc.
run_one() {
	local t=$1 name t0 rc
	name=$(basename "$t" .sh)
	t0=$(date +%s)
	if [ "${PGKTLS_SUITE_SHOW:-0}" = 1 ]; then
		# Live, for a long test's progress (and the numbers in its diagnostics).
		bash "$t" 2>&1 | tee "$OUT/$name.log" | sed -u "s/^/    $name: /"
		rc=${PIPESTATUS[0]}
	else
		bash "$t" >"$OUT/$name.log" 2>&1
		rc=$?
	fi
	# The exit status alone is not enough: a test that dies early may exit 0.
	if [ $rc -eq 0 ] && { grep -q '^not ok' "$OUT/$name.log" ||
		! grep -Eq '^1\.\.[0-9]+' "$OUT/$name.log"; }; then
		rc=1
	fi
	echo "$rc $(($(date +%s) - t0))" >"$OUT/$name.rc"
	# Progress on the console as each test ends: a whole run takes minutes. A failure's
	# output at once too, so a run that hits the VM's timeout still says what failed.
	echo "integration.sh: $name exit $rc after $(($(date +%s) - t0))s"
	if [ $rc -ne 0 ] && [ "${PGKTLS_SUITE_SHOW:-0}" != 1 ]; then
		sed "s/^/    $name: /" "$OUT/$name.log"
	fi
}

start=$(date +%s)
running=0
for t in "$@"; do
	if [ "$running" -ge "$JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
	run_one "$t" &
	running=$((running + 1))
done
wait

rc=0
for t in "$@"; do
	name=$(basename "$t" .sh)
	read -r trc secs <"$OUT/$name.rc" 2>/dev/null || trc=1 secs=?
	plan=$(grep -Em1 '^1\.\.' "$OUT/$name.log" 2>/dev/null)
	if [ "$trc" = 0 ]; then
		echo "ok     $name (${secs}s, plan $plan)"
	else
		echo "FAILED $name (${secs}s, exit $trc): its output is above"
		rc=1
	fi
done
echo "integration.sh: $# tests with PGKTLS_TEST_KTLS=$PGKTLS_TEST_KTLS in" \
	"$(($(date +%s) - start))s, status $rc"
exit $rc
