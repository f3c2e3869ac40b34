#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# check-config-docs.sh - fail if the config key table and the docs disagree.
#
# Usage: check-config-docs.sh DUMP_CONFIG_KEYS [SRCDIR]
#
# DUMP_CONFIG_KEYS is tests/unit/dump_config_keys (built by `make check`),
# which prints config_key_names(): the keys of the one table in src/config.c,
# as "general.port", "upstream.host". Asking the code, rather than grepping
# its source, means the list cannot be fooled by formatting or comments.
#
# The docs are read by their layout:
#  - docs/pgktls.toml.5: a ".TP" whose next line is ".B <key>", under an
#    ".SS [general]" or ".SS [upstream]" heading, outside .RS/.RE blocks;
#  - docs/pgktls.toml.example: "key = " or "#key = " at the start of a line
#    (prose comments start with "# "), under a [general] or [upstream] line.
#
# Prints every key missing from a document and every documented key the code
# does not know, and exits 1 if there is any.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 DUMP_CONFIG_KEYS [SRCDIR]" >&2
	exit 2
fi
dump=$1
srcdir=${2:-$(dirname "$0")/..}
man="$srcdir/docs/pgktls.toml.5"
example="$srcdir/docs/pgktls.toml.example"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-config-docs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if ! "$dump" > "$tmp/code.raw"; then
	echo "$dump failed" >&2
	exit 1
fi
if [ ! -s "$tmp/code.raw" ]; then
	echo "$dump printed no keys" >&2
	exit 1
fi

awk '
/^\.SH/ { sec = ""; tp = 0; next }
/^\.SS/ {
	sec = ""
	if ($0 ~ /\[general\]/) sec = "general"
	else if ($0 ~ /\[upstream\]/) sec = "upstream"
	tp = 0; next
}
/^\.RS/ { depth++; tp = 0; next }
/^\.RE/ { depth--; tp = 0; next }
/^\.TP/ { tp = 1; next }
tp && depth == 0 && sec != "" && /^\.B[ \t]/ { print sec "." $2 }
{ tp = 0 }
' "$man" > "$tmp/man.raw"

awk '
/^\[[A-Za-z0-9_-]+\][ \t]*(#.*)?$/ {
	sec = $0; sub(/^\[/, "", sec); sub(/\].*/, "", sec); next
}
/^#?[A-Za-z0-9_-]+[ \t]*=/ {
	key = $0; sub(/^#/, "", key); sub(/[ \t]*=.*/, "", key)
	print (sec == "" ? "(no table)" : sec) "." key
}
' "$example" > "$tmp/example.raw"

status=0
sort -u "$tmp/code.raw" > "$tmp/code"
for doc in man example; do
	case $doc in
	man) file=$man ;;
	example) file=$example ;;
	esac
	sort "$tmp/$doc.raw" | uniq -d | while read -r key; do
		echo "$file: documents $key more than once"
	done > "$tmp/$doc.dups"
	sort -u "$tmp/$doc.raw" > "$tmp/$doc"
	comm -23 "$tmp/code" "$tmp/$doc" | sed "s|^|$file: missing key |" > "$tmp/$doc.missing"
	comm -13 "$tmp/code" "$tmp/$doc" | sed "s|^|$file: documents unknown key |" \
		> "$tmp/$doc.unknown"
	for f in "$tmp/$doc.dups" "$tmp/$doc.missing" "$tmp/$doc.unknown"; do
		if [ -s "$f" ]; then
			cat "$f"
			status=1
		fi
	done
done

if [ $status -eq 0 ]; then
	echo "all $(wc -l < "$tmp/code") config keys are documented in $man and $example"
fi
exit $status
