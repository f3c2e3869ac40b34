#!/bin/bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# make check (TAP): bench/run's choice of where the kTLS paths run (bench/run --dry-run):
# natively beside the userspace paths where the kernel has kTLS, else only in the kTLS VM
# (or not at all without the vm measure), with a note saying why. BENCH_TLS_STAT stands in
# for /proc/net/tls_stat, so both kinds of kernel are tested on any machine.
srcdir=${PGKTLS_SRCDIR:-$(dirname "$0")/..}
RUN=$srcdir/bench/run
PATHS=pgktls-tls,ktls-tls,pgbouncer-tls
n=0
fail=0

check() { # DESCRIPTION COMMAND-OUTPUT PATTERN... (!PATTERN: must not match)
	local desc=$1 out=$2 ok=1 pat
	shift 2
	for pat in "$@"; do
		case $pat in
		!*) grep -qE -- "${pat#!}" <<<"$out" && ok=0 ;;
		*) grep -qE -- "$pat" <<<"$out" || ok=0 ;;
		esac
	done
	n=$((n + 1))
	if [ $ok = 1 ]; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		printf '%s\n' "$out" | sed 's/^/# /'
		fail=1
	fi
}

echo "1..4"
out=$(BENCH_TLS_STAT=/nonexistent bash "$RUN" --dry-run --paths "$PATHS" 2>&1)
check "no kTLS here: ktls-tls leaves this machine's list, runs in the VM, says why" "$out" \
	'^bench: here: pgktls-tls pgbouncer-tls$' \
	'^bench: in the kTLS VM \(emulated\): .*ktls-tls' \
	'ktls-tls\) need a kernel with kTLS.*no /nonexistent.*kTLS VM only \(emulated\)'

out=$(BENCH_TLS_STAT=/nonexistent bash "$RUN" --dry-run --paths "$PATHS" --measures bulk 2>&1)
check "no kTLS here, no vm measure: ktls-tls not measured, and the note says so" "$out" \
	'^bench: here: pgktls-tls pgbouncer-tls$' 'not measured' '!^bench: in the kTLS VM'

stat=$(mktemp)
out=$(BENCH_TLS_STAT=$stat bash "$RUN" --dry-run --paths "$PATHS" --measures bulk,select 2>&1)
rm -f "$stat"
check "kTLS here: ktls-tls runs natively beside pgktls-tls and PgBouncer" "$out" \
	'kTLS native' '^bench: here: pgktls-tls ktls-tls pgbouncer-tls$' \
	'ktls-tls run here, beside the userspace paths'

out=$(BENCH_TLS_STAT=/nonexistent bash "$RUN" --dry-run --paths ktls-tls --measures bulk 2>&1)
rc=$?
n=$((n + 1))
if [ $rc -ne 0 ] && grep -q 'no path left to measure' <<<"$out"; then
	echo "ok $n - only kTLS paths, no kTLS, no VM: refused with a reason"
else
	echo "not ok $n - only kTLS paths, no kTLS, no VM: exit $rc"
	printf '%s\n' "$out" | sed 's/^/# /'
	fail=1
fi
exit $fail
