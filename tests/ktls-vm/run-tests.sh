#!/bin/bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# run-tests.sh [TEST-COMMAND...] - `make check-ktls`: boot the kTLS VM and run
# each test command there (a shell command line, run from the build
# directory, which is the current directory), with PGKTLS_REQUIRE_KTLS=1 so a
# test that finds no kTLS fails instead of skipping.
#
# Without arguments, two boots:
#   1. with the tls module: the kTLS unit tests, t-ktls.sh (the proof:
#      every version and cipher, 256 MB COPYs, control records) and
#      t-ktls-rekey.sh (KeyUpdate: rekeyed on 6.14+, a clean close before),
#      t-upgrade-move.sh (sessions with both hops in the kernel move across a binary
#      upgrade, no TlsDecryptError; on 6.14+ the new process also changes keys from the
#      moved secrets; about 155 s), plus, with
#      PGKTLS_VM_FULL_SUITE=1, the whole integration suite with
#      `ktls = required` in every config (integration.sh);
#   2. without the tls module (PGKTLS_VM_NO_TLS=1): t-ktls-fallback.sh.
#
# PGKTLS_VM_KERNEL (bookworm, trixie, sid; see prepare.sh) picks the kernel.
# PGKTLS_VM_LIGHT=1 (tools/test's second kernel) makes t-ktls.sh's COPYs 16 MB
# instead of 256 MB (and t-upgrade-move.sh's 8 instead of 32, with 50 idle sessions, not
# 200): every version, cipher, client and control record is still checked, in about
# 3 minutes less under emulation. It also skips the second boot: the missing module is
# met the same way on every kernel (TCP_ULP "tls" fails), and the first kernel proves it.
#
# Exit status: 0 if every command passed, 1 if any failed, 77 if no VM can
# be run here (run.sh says why).
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)

LIGHT=
[ "${PGKTLS_VM_LIGHT:-0}" = 1 ] && LIGHT="PGKTLS_KTLS_COPY_MB=16 "
DEFAULT_TESTS=(
	"tests/unit/test_ktls"
	"${LIGHT}PGKTLS_SUITE_SHOW=1 $HERE/integration.sh $SRC/tests/integration/t-ktls.sh"
	"PGKTLS_SUITE_SHOW=1 $HERE/integration.sh $SRC/tests/integration/t-ktls-rekey.sh"
	"${LIGHT:+PGKTLS_MOVE_COPY_MB=8 PGKTLS_MOVE_IDLE=50 }PGKTLS_SUITE_SHOW=1 $HERE/integration.sh $SRC/tests/integration/t-upgrade-move.sh"
)
# The whole integration suite under ktls = required takes the emulated CPU longer than
# CI's budget for this stage (about 25 minutes on 2 cores): on request only.
if [ "${PGKTLS_VM_FULL_SUITE:-0}" = 1 ]; then
	DEFAULT_TESTS+=("$HERE/integration.sh")
fi
NO_TLS_TESTS=(
	"PGKTLS_REQUIRE_NO_KTLS=1 PGKTLS_SUITE_SHOW=1 $HERE/integration.sh $SRC/tests/integration/t-ktls-fallback.sh"
)

defaults=0
if [ $# -eq 0 ]; then
	set -- "${DEFAULT_TESTS[@]}"
	defaults=1
fi
for t in "$@"; do
	bin=${t%% *}
	case $bin in *=*) continue ;; esac
	if [ ! -e "$bin" ] && ! command -v "$bin" >/dev/null 2>&1; then
		echo "ktls-vm: $bin not found: run from the build directory after make" >&2
		exit 1
	fi
done

# boot [VAR=VALUE...] -- TEST...: one VM for the whole list; the same loop runs inside.
boot() {
	local envs=()
	while [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	shift
	env "${envs[@]}" "$HERE/run.sh" /bin/bash -c '
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
		cat /proc/net/tls_stat 2>&1
		exit $rc
	' ktls-vm-tests "$@"
}

start=$(date +%s)
# The whole suite needs more than run.sh's default 900 s when other VMs share the CPUs.
boot PGKTLS_REQUIRE_KTLS=1 PGKTLS_VM_TIMEOUT="${PGKTLS_VM_TIMEOUT:-1800}" -- "$@"
rc=$?
if [ $defaults = 1 ] && [ $rc -ne 77 ] && [ -z "$LIGHT" ]; then
	# The same kernel, its tls module gone: what users without kTLS get.
	boot PGKTLS_VM_NO_TLS=1 PGKTLS_REQUIRE_KTLS=0 -- "${NO_TLS_TESTS[@]}"
	rc2=$?
	[ $rc -eq 0 ] && rc=$rc2
fi
# tools/test looks for "finished in Ns with status 77".
echo "ktls-vm: run-tests.sh (${PGKTLS_VM_KERNEL:-bookworm}${LIGHT:+, light}) finished in" \
	"$(($(date +%s) - start))s with status $rc" >&2
exit $rc
