#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# make check (TAP): the man page and the example document exactly the keys in
# src/config.c's table. The work is in tools/check-config-docs.sh.
srcdir=${PGKTLS_SRCDIR:-$(dirname "$0")/..}
builddir=${PGKTLS_BUILDDIR:-.}

echo "1..1"
if out=$(sh "$srcdir/tools/check-config-docs.sh" "$builddir/tests/unit/dump_config_keys" \
	"$srcdir" 2>&1); then
	echo "ok 1 - config keys match pgktls.toml.5 and pgktls.toml.example"
else
	echo "not ok 1 - config keys do not match pgktls.toml.5 and pgktls.toml.example"
fi
printf '%s\n' "$out" | sed 's/^/# /'
