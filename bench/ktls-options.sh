#!/bin/bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# bench/ktls-options.sh - the kernel options pgktls sets past the keys, measured with and
# without: bench/run natively (this kernel must have kTLS) once per setting, the same
# pgktls binary with the knob in its environment, then /proc/net/tls_stat.
#   on      PGKTLS_KTLS_RX_NO_PAD=1 (TLS_RX_EXPECT_NO_PAD), zero-copy on (the default)
#   nopad0  PGKTLS_KTLS_RX_NO_PAD=0: pgktls's default
#   zc0     PGKTLS_KTLS_RX_NO_PAD=1 and PGKTLS_KTLS_TX_ZEROCOPY_RO=0
# In the kTLS VM, from a build directory:
#   PGKTLS_BIN=$PWD/src/pgktls PGKTLS_VM_KERNEL=sid PGKTLS_VM_MEM=3072 \
#       tests/ktls-vm/run.sh bash $SRC/bench/ktls-options.sh
# Environment: KNOB_VARIANTS (default "on nopad0 zc0"), KNOB_REPS (2), KNOB_MB (32),
# PGKTLS_BIN (as bench/run). Results: /tmp/knob-VARIANT/ and the console.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
for v in ${KNOB_VARIANTS:-on nopad0 zc0}; do
	unset PGKTLS_KTLS_RX_NO_PAD PGKTLS_KTLS_TX_ZEROCOPY_RO
	case $v in
	on) export PGKTLS_KTLS_RX_NO_PAD=1 ;;
	nopad0) export PGKTLS_KTLS_RX_NO_PAD=0 ;;
	zc0) export PGKTLS_KTLS_RX_NO_PAD=1 PGKTLS_KTLS_TX_ZEROCOPY_RO=0 ;;
	*) echo "ktls-options: unknown variant $v" >&2; exit 2 ;;
	esac
	echo "=== $v (load $(cut -d' ' -f1-3 /proc/loadavg))"
	bash "$HERE/run" --no-install --paths pgktls-tls,ktls-tls --measures bulk,select \
		--secs 5 --reps "${KNOB_REPS:-2}" --bulk-mb "${KNOB_MB:-32}" --out "/tmp/knob-$v" 2>&1 |
		grep -E '^bench'
	sed "s/^/RAW $v	/" "/tmp/knob-$v/raw.tsv"
done
echo "=== /proc/net/tls_stat"
cat /proc/net/tls_stat
