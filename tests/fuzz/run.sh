#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# tests/fuzz/run.sh - run every libFuzzer target for a bounded time; fail on any crash,
# leak, timeout or sanitizer report.
#
# Usage: tests/fuzz/run.sh [BUILD_DIR]   (a tree configured with --enable-fuzzing;
#        `make fuzz` there does the same)
# Environment:
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_JOBS      targets run side by side (default 2)
#   FUZZ_TARGETS   which targets (default: auth config handover httpreq identmap nl pgproto
#                  proxyproto sessstate tlsmsg tlsrec)
#   FUZZ_OUT       where the log, the grown corpus and crash artifacts go
#                  (default BUILD_DIR/fuzz-out; the corpus in the tree is never written)
#
# Seeds: tests/fuzz/corpus/<target>/ (crashes found once stay there as regression
# inputs), plus the recorded netlink replies in tests/data/ for the nl target and the
# unit tests' config files in tests/data/config/ for the config target.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-.}" && pwd)
SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-2}
ALL_TARGETS="auth config handover httpreq identmap nl pgproto proxyproto sessstate tlsmsg tlsrec"
read -r -a TARGETS <<<"${FUZZ_TARGETS:-$ALL_TARGETS}"
OUT=${FUZZ_OUT:-$BUILD/fuzz-out}

# Leaks count as failures; UBSan stops at the first report (the flags make it fatal too).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

for t in "${TARGETS[@]}"; do
	[ -x "$BUILD/tests/fuzz/fuzz_$t" ] || {
		echo "run.sh: $BUILD/tests/fuzz/fuzz_$t missing: configure with --enable-fuzzing" >&2
		exit 2
	}
done
rm -rf "$OUT"
mkdir -p "$OUT"

# run_one TARGET: fuzz one target into $OUT/TARGET.{log,rc}.
run_one() {
	local t=$1 corpus=$OUT/$t-corpus rc
	mkdir -p "$corpus" "$OUT/$t-artifacts"
	cp "$SRC/tests/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null
	if [ "$t" = nl ]; then
		cp "$SRC"/tests/data/*.nl "$SRC"/tests/data/*tls_stat.txt "$corpus/"
	fi
	# The unit tests' config files are seeds as they are, not copies kept in the corpus.
	if [ "$t" = config ]; then
		cp "$SRC"/tests/data/config/*.toml "$corpus/"
	fi
	"$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$OUT/$t-artifacts/" "$corpus" >"$OUT/$t.log" 2>&1
	rc=$?
	# A sanitizer report without a failing status would still be a finding.
	if [ $rc = 0 ] && grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
		"$OUT/$t.log"; then
		rc=99
	fi
	echo $rc >"$OUT/$t.rc"
}

echo "run.sh: ${TARGETS[*]}: ${SECONDS_EACH}s each, $JOBS at a time, output in $OUT"
running=0
for t in "${TARGETS[@]}"; do
	run_one "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

failed=0
for t in "${TARGETS[@]}"; do
	rc=$(cat "$OUT/$t.rc" 2>/dev/null || echo 98)
	stats=$(grep -E '^stat::(number_of_executed_units|new_units_added)' "$OUT/$t.log" |
		sed 's/^stat:://; s/: */=/' | tr '\n' ' ')
	cov=$(grep -Eo 'cov: [0-9]+' "$OUT/$t.log" | tail -n 1)
	if [ "$rc" = 0 ]; then
		echo "ok   fuzz_$t: $stats$cov"
	else
		failed=1
		echo "FAIL fuzz_$t (status $rc): $stats"
		grep -E -A30 'ERROR: |runtime error:|fuzz_[a-z]+: .*:[0-9]+: |^==[0-9]+== ' \
			"$OUT/$t.log" | head -n 60
		ls "$OUT/$t-artifacts/" | sed "s|^|  artifact: $OUT/$t-artifacts/|"
		echo "  reproduce: $BUILD/tests/fuzz/fuzz_$t ARTIFACT; then add it to" \
			"tests/fuzz/corpus/$t/ and a unit test"
	fi
done
exit $failed
