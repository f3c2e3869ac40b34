#!/bin/bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# run.sh COMMAND [ARG...] - run COMMAND as root under a stock Debian kernel
# (which has kTLS) in a qemu TCG VM, and exit with its exit status.
#
# The VM sees this machine's root read-only at the same paths (over 9p),
# with writable overlays on /tmp, /run, /var/tmp and /root, so binaries in a
# build tree under /tmp run unchanged and may write there (changes stay in
# the VM). COMMAND runs in the caller's working directory with the caller's
# PATH, HOME, LANG, TMPDIR and every CK_* and PGKTLS_* variable, plus the
# variables named in $PGKTLS_VM_ENV. With PGKTLS_VM_USER=name it runs as
# that user instead (postgres refuses root). With PGKTLS_VM_NO_TLS=1 the
# guest has no tls module at all (the fallback tests).
#
# Environment: PGKTLS_VM_KERNEL (bookworm, trixie or sid: the Debian suite
# whose kernel boots, see prepare.sh), PGKTLS_VM_TIMEOUT (seconds, default 900: then qemu is
# killed), PGKTLS_VM_CACHE (see prepare.sh), PGKTLS_VM_MEM (MB, 2048),
# PGKTLS_VM_SMP (2).
# Exit status: COMMAND's, 77 if no VM can be run here, 124 on timeout,
# 1 if the VM died without reporting a status.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TIMEOUT=${PGKTLS_VM_TIMEOUT:-900}

say() { echo "ktls-vm: $*" >&2; }

if [ $# -eq 0 ]; then
	echo "usage: $0 COMMAND [ARG...]" >&2
	exit 2
fi
QEMU=$(command -v qemu-system-x86_64) || {
	say "cannot run the kTLS VM: qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
	exit 77
}
if ! "$QEMU" -accel help 2>/dev/null | grep -qx tcg; then
	say "cannot run the kTLS VM: $QEMU has no TCG accelerator"
	exit 77
fi

DIR=$(sh "$HERE/prepare.sh" | tail -n 1)
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ] || [ ! -f "$DIR/ready" ]; then
	[ "$rc" -eq 77 ] && exit 77
	say "prepare.sh failed ($rc)"
	exit 1
fi

JOB=$(mktemp -d "${TMPDIR:-/tmp}/pgktls-vm-job.XXXXXX")
trap 'rm -rf "$JOB"' EXIT
cp "$HERE/guest.sh" "$JOB/guest.sh"

# The command as a bash script; %q quotes every word and value exactly.
{
	printf 'cd %q || exit 125\n' "$PWD"
	names="PATH HOME LANG LC_ALL TERM TMPDIR ${PGKTLS_VM_ENV:-}"
	for v in $names $(compgen -e | grep -E '^(CK_|PGKTLS_)'); do
		[ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"
	done
	# Only the overlays are writable in the VM.
	case "${TMPDIR:-/tmp}" in
	/tmp | /tmp/* | /run/* | /var/tmp | /var/tmp/*) ;;
	*) echo 'export TMPDIR=/tmp' ;;
	esac
	printf 'exec'
	printf ' %q' "$@"
	echo
} > "$JOB/cmd.sh"
[ -n "${PGKTLS_VM_USER:-}" ] && printf '%s\n' "$PGKTLS_VM_USER" > "$JOB/user"
[ "${PGKTLS_VM_NO_TLS:-0}" = 1 ] && touch "$JOB/no-tls"

cmd="$*"
say "booting $(cat "$DIR/kver") (TCG, timeout ${TIMEOUT}s): $(echo "${cmd:0:72}" | head -n 1)"
start=$(date +%s)
# A kernel that panics before the guest's userspace starts (no boot-time file: seen
# under TCG on a loaded host, as "IO-APIC + timer doesn't work" on 6.1 and an int3
# oops in ktime_get on 7.2) is booted again, up to three times in all: nothing of
# COMMAND has run yet.
for try in 1 2 3; do
	# stdin from /dev/null: qemu must not grab the caller's terminal. sed -u, not
	# tr: the console must reach a log file line by line, not 4 KB at a time.
	timeout -k 10 "$TIMEOUT" "$QEMU" \
		-accel tcg -cpu max -m "${PGKTLS_VM_MEM:-2048}" -smp "${PGKTLS_VM_SMP:-2}" \
		-nodefaults -display none -no-reboot -serial stdio \
		-kernel "$DIR/vmlinuz" -initrd "$DIR/initrd.gz" \
		-append "console=ttyS0 quiet loglevel=3 panic=-1" \
		-virtfs local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap \
		-virtfs local,path="$JOB",mount_tag=job,security_model=none \
		< /dev/null 2>&1 | sed -u 's/\r//g'
	qrc=${PIPESTATUS[0]}
	[ -f "$JOB/status" ] || [ -f "$JOB/boot-time" ] && break
	[ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ] && break
	[ $try -lt 3 ] &&
		say "the kernel did not reach the guest's userspace (qemu exit $qrc): booting again"
done
elapsed=$(($(date +%s) - start))

if [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
	say "timed out after ${TIMEOUT}s: qemu killed"
	exit 124
fi
if [ ! -f "$JOB/status" ]; then
	say "the VM reported no exit status (qemu exit $qrc, ${elapsed}s): crashed or failed to boot"
	exit 1
fi
status=$(cat "$JOB/status")
say "exit status $status after ${elapsed}s (boot $(cat "$JOB/boot-time" 2>/dev/null || echo '?')s)"
exit "$status"
