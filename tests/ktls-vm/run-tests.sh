#!/bin/bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# run-tests.sh [TEST-COMMAND...] - `make check-ktls`: boot the kTLS VM once
# and run each test command there (a shell command line, relative to the
# build directory, which is the current directory), with
# PGKTLS_REQUIRE_KTLS=1 so a test that finds no kTLS fails instead of
# skipping. Without arguments, runs the DEFAULT_TESTS below.
#
# Exit status: 0 if every command passed, 1 if any failed, 77 if no VM can
# be run here (run.sh says why).
set -u

HERE=$(cd "$(dirname "$0")" && pwd)

# One line per suite; each runs in the VM from the build directory.
DEFAULT_TESTS=(
	"tests/unit/test_ktls"
)

if [ $# -eq 0 ]; then
	set -- "${DEFAULT_TESTS[@]}"
fi
for t in "$@"; do
	bin=${t%% *}
	if [ ! -e "$bin" ] && ! command -v "$bin" >/dev/null 2>&1; then
		echo "ktls-vm: $bin not found: run from the build directory after make" >&2
		exit 1
	fi
done

# The same loop runs in the VM: one boot for the whole list.
export PGKTLS_REQUIRE_KTLS=1
start=$(date +%s)
"$HERE/run.sh" /bin/bash -c '
	rc=0
	for t in "$@"; do
		echo "=== ktls-vm: $t"
		t0=$(date +%s)
		if bash -c "$t"; then
			echo "=== PASS: $t ($(($(date +%s) - t0))s)"
		else
			echo "=== FAIL: $t (exit $?)"
			rc=1
		fi
	done
	echo "=== /proc/net/tls_stat after the run:"
	cat /proc/net/tls_stat
	exit $rc
' ktls-vm-tests "$@"
rc=$?
echo "ktls-vm: run-tests.sh finished in $(($(date +%s) - start))s with status $rc" >&2
exit $rc
