#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# run.sh - PostgreSQL 15's own SSL test suite (src/test/ssl: 001_ssltests, 002_scram,
# 003_sslinfo) against the installed PostgreSQL 15, three times (`make check-pg-ssl`):
#
#   1. directly, as PostgreSQL runs it: every check must pass, or this stage is broken
#      (the suite, the source or the machine is wrong, not pgktls);
#   2. through pgktls as a plain terminator ("terminator" mode): PgktlsShim.pm, loaded with
#      -M before each test script, starts pgktls in front of the suite's server with the
#      server's own certificates and settings and sends the suite's client connections to
#      it. Every check must pass except those in expected-failures.txt (the ones no TLS
#      terminator can pass), and each of those must fail: the list stays exact.
#   3. through pgktls with upstream identities ("identity" mode): the same, and the shim
#      gives pgktls a tls_server_identity_map presenting each client certificate of the
#      suite upstream as itself, so PostgreSQL's certificate authentication sees the
#      certificate the client presented. Its list is expected-failures-identity.txt.
#
# The suite's source comes from Debian's archive: `apt-get source` of the postgresql-15
# version installed, through a private apt configuration (its own sources.list, lists and
# cache under the cache directory), so the machine's apt sources are never touched. The
# source is kept for the next run. Only src/test/ssl and src/test/perl are used; the suite
# runs the installed binaries in $PGBIN, as `make installcheck` would, with no build.
#
# Environment:
#   PGKTLS_BIN                  the daemon under test (set by `make check-pg-ssl`)
#   PGKTLS_PGBIN                PostgreSQL 15 binaries (default /usr/lib/postgresql/15/bin)
#   PGKTLS_PG_SRC_CACHE         where the source is kept (default /var/cache/pgktls-pg-src
#                               as root, else ~/.cache/pgktls-pg-src)
#   PGKTLS_PG_SRC               an unpacked PostgreSQL 15 source tree to use instead
#   PGKTLS_REQUIRE_INTEGRATION  1: a missing prerequisite is a failure, not a skip
#   PGKTLS_KEEP_TMP             1: keep the run directory (TAP output, server and pgktls logs)
#   PGKTLS_PG_SSL_MODES         the modes through pgktls (default "terminator identity")
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PGBIN=${PGKTLS_PGBIN:-/usr/lib/postgresql/15/bin}
MODES=${PGKTLS_PG_SSL_MODES:-terminator identity}
for m in $MODES; do
	case $m in
	terminator | identity) ;;
	*)
		echo "pg-ssl-suite: PGKTLS_PG_SSL_MODES: unknown mode '$m' (terminator, identity)" >&2
		exit 1
		;;
	esac
done
START=$(date +%s)
if [ "$(id -u)" = 0 ]; then
	CACHE=${PGKTLS_PG_SRC_CACHE:-/var/cache/pgktls-pg-src}
else
	CACHE=${PGKTLS_PG_SRC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pgktls-pg-src}
fi
W=

say() { printf 'pg-ssl-suite: %s\n' "$*"; }
elapsed() { echo "$(($(date +%s) - START))s"; }
fail() {
	say "FAILED: $*" >&2
	[ -n "$W" ] && say "run directory kept: $W" >&2
	W=
	exit 1
}
missing() {
	if [ "${PGKTLS_REQUIRE_INTEGRATION:-0}" = 1 ]; then
		fail "prerequisite missing: $* (PGKTLS_REQUIRE_INTEGRATION=1)"
	fi
	say "SKIP: $*"
	exit 0
}
cleanup() {
	if [ -n "$W" ] && [ "${PGKTLS_KEEP_TMP:-0}" != 1 ]; then
		rm -rf "$W"
	elif [ -n "$W" ]; then
		say "run directory kept: $W"
	fi
}
trap cleanup EXIT

# The suite must not pick up the caller's libpq settings.
for _v in $(env | sed -n 's/^\(PG[A-Z_]*\)=.*/\1/p'); do
	case $_v in
	PGKTLS_*) ;;
	*) unset "$_v" ;;
	esac
done
export LC_ALL=C.UTF-8

# ---------------------------------------------------------------- prerequisites

[ "${PGKTLS_SKIP_INTEGRATION:-0}" = 1 ] && { say "SKIP: PGKTLS_SKIP_INTEGRATION=1"; exit 0; }
[ -x "${PGKTLS_BIN:-}" ] || fail "pgktls binary not found at '${PGKTLS_BIN:-}'"
for b in postgres initdb pg_ctl psql pg_config; do
	[ -x "$PGBIN/$b" ] || missing "PostgreSQL 15's $b not found in $PGBIN"
done
for c in perl prove openssl; do
	command -v "$c" >/dev/null 2>&1 || missing "$c not found"
done
perl -MIPC::Run -e 1 2>/dev/null || missing "Perl's IPC::Run (apt-get install libipc-run-perl)"
# The suite reads pg_config.h for what the build supports.
[ -r "$("$PGBIN/pg_config" --includedir)/pg_config.h" ] ||
	missing "pg_config.h not found (apt-get install libpq-dev)"
AS=()
if [ "$(id -u)" = 0 ]; then
	# PostgreSQL refuses to run as root: the suite runs as postgres.
	getent passwd postgres >/dev/null || missing "running as root without a postgres user"
	command -v runuser >/dev/null 2>&1 || missing "runuser not found"
	AS=(runuser -u postgres --)
fi

# ---------------------------------------------------------------- the source

# fetch_source: set SRC to an unpacked postgresql-15 source package, the installed version
# if the archive has it, else the newest 15.x it has.
fetch_source() {
	local want got v apt=$CACHE/apt tree dsc opts
	want=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null) ||
		missing "postgresql-15 is not installed as a Debian package"
	tree=$CACHE/for-$want
	if [ -f "$tree/.complete" ]; then
		SRC=$tree/src
		say "source: postgresql-15 $(cat "$tree/.version") (cached in $tree)"
		return 0
	fi
	if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-source >/dev/null 2>&1; then
		missing "apt-get and dpkg-source (dpkg-dev) are needed to fetch the source"
	fi
	mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sourceparts" \
		"$CACHE/dl" || fail "cannot create $CACHE"
	# bookworm-updates and bookworm-security too: the installed server may come from either.
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	cat >"$apt/sources.list" <<EOF
deb-src [signed-by=$keyring] http://deb.debian.org/debian bookworm main
deb-src [signed-by=$keyring] http://deb.debian.org/debian bookworm-updates main
deb-src [signed-by=$keyring] http://deb.debian.org/debian-security bookworm-security main
EOF
	opts=(-q -o "Dir::Etc::sourcelist=$apt/sources.list"
		-o "Dir::Etc::sourceparts=$apt/sourceparts"
		-o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache")
	# As root apt downloads as user _apt, which may not write here.
	[ "$(id -u)" = 0 ] && opts+=(-o APT::Sandbox::User=root)
	say "fetching the postgresql-15 source package (private apt configuration in $apt)"
	(
		# Only one run fetches at a time; the others wait and then find the cache.
		flock 9
		[ -f "$tree/.complete" ] && exit 0
		apt-get "${opts[@]}" update >"$CACHE/apt-update.log" 2>&1 ||
			{ cat "$CACHE/apt-update.log"; exit 1; }
		cd "$CACHE/dl" || exit 1
		# The installed version if it can be had, else the newest other 15.x that can (a
		# mirror may list a version it does not serve): src/test/ssl is the same suite.
		got=
		for v in "$want" $(apt-cache "${opts[@]}" showsrc postgresql-15 |
			sed -n 's/^Version: //p' | sort -rV | uniq | grep -vxF "$want"); do
			if apt-get "${opts[@]}" source --download-only "postgresql-15=$v" \
				>"$CACHE/apt-source.log" 2>&1; then
				got=$v
				break
			fi
			say "postgresql-15 $v: not available from the archive"
		done
		[ -n "$got" ] || { cat "$CACHE/apt-source.log"; exit 1; }
		[ "$got" = "$want" ] || say "using the source of $got for the installed $want"
		dsc=postgresql-15_${got#*:}.dsc
		rm -rf "$tree"
		mkdir -p "$tree/src/src/test"
		dpkg-source -x "$dsc" "$tree/full" >"$CACHE/dpkg-source.log" 2>&1 ||
			{ cat "$CACHE/dpkg-source.log"; exit 1; }
		# Keep only what the suite uses (2 MB of the 200 MB tree) and not the package.
		mv "$tree/full/src/test/ssl" "$tree/full/src/test/perl" "$tree/src/src/test/" &&
			rm -rf "$tree/full" "$tree"/postgresql-15_* "$CACHE"/dl/postgresql-15_* || exit 1
		echo "$got" >"$tree/.version"
		touch "$tree/.complete"
	) 9>"$CACHE/.lock" || missing "could not fetch the postgresql-15 source from Debian's archive"
	SRC=$tree/src
	say "source: postgresql-15 $(cat "$tree/.version") (now cached in $tree) ($(elapsed))"
}

if [ -n "${PGKTLS_PG_SRC:-}" ]; then
	SRC=$PGKTLS_PG_SRC
else
	fetch_source
fi
if [ ! -d "$SRC/src/test/ssl/t" ] || [ ! -d "$SRC/src/test/perl/PostgreSQL" ]; then
	fail "$SRC has no src/test/ssl and src/test/perl"
fi

# ---------------------------------------------------------------- running the suite

W=$(mktemp -d "${TMPDIR:-/tmp}/pgktls-pg-ssl.XXXXXX") || fail "mktemp"
chmod 755 "$W"
mkdir -p "$W/bin" "$W/shim" "$W/portlock"
# Copies, so the suite's user (postgres, when we are root) can read and run them.
cp "$PGKTLS_BIN" "$W/bin/pgktls"
cp "$HERE/PgktlsShim.pm" "$W/shim/"
for mode in direct $MODES; do
	mkdir -p "$W/$mode/src/test"
	cp -r "$SRC/src/test/ssl" "$SRC/src/test/perl" "$W/$mode/src/test/"
done
[ ${#AS[@]} -gt 0 ] && chown -R postgres: "$W"

# run_suite MODE: run every t/*.pl in MODE (direct, terminator or identity); TAP in
# $W/MODE-*.tap.
run_suite() {
	local mode=$1 dir=$W/$1/src/test/ssl t perl_cmd identities=0
	perl_cmd="perl -I$dir/../perl -I$dir/t"
	[ "$mode" != direct ] && perl_cmd+=" -I$W/shim -MPgktlsShim"
	[ "$mode" = identity ] && identities=1
	for t in "$dir"/t/*.pl; do
		# PG_REGRESS: the modules run `$PG_REGRESS --config-auth DATADIR` when they use TCP;
		# pg_regress does nothing for that outside Windows (it sets up SSPI there), and it
		# is not installed with the server, so true stands in for it.
		"${AS[@]}" env -C "$dir" PATH="$PGBIN:$PATH" with_ssl=openssl TESTDIR="$dir" \
			PG_TEST_PORT_DIR="$W/portlock" PG_REGRESS=/bin/true \
			PGKTLS_BIN="$W/bin/pgktls" PGKTLS_SHIM_IDENTITIES=$identities \
			prove -v --exec "$perl_cmd" "t/$(basename "$t")" \
			>"$W/$mode-$(basename "$t" .pl).tap" 2>&1
	done
}

# results MODE: one line per check, "STATUS<TAB>FILE | NAME", STATUS pass or fail (a TODO
# check counts as passed, as prove counts it).
results() {
	local f
	for f in "$W/$1"-*.tap; do
		awk -v file="$(basename "$f" .tap | sed "s/^$1-//").pl" '
			/^(not )?ok [0-9]+/ {
				st = ($0 ~ /^not ok/) ? "fail" : "pass"
				line = $0
				todo = (line ~ / # TODO/)
				sub(/ # (TODO|SKIP|skip).*$/, "", line)
				num = line
				sub(/^(not )?ok /, "", num)
				sub(/[^0-9].*$/, "", num)
				sub(/^(not )?ok [0-9]+/, "", line)
				sub(/^ -/, "", line)
				sub(/^ /, "", line)
				# A check without a name (the TODO skips) is known by its number.
				if (line == "") line = "check " num
				if (todo) st = "pass"
				n[line]++
				if (n[line] > 1) line = line " (" n[line] ")"
				printf "%s\t%s | %s\n", st, file, line
			}' "$f"
	done
}

# planned MODE: the number of checks the scripts planned.
planned() {
	cat "$W/$1"-*.tap | sed -n 's/^1\.\.\([0-9]*\).*/\1/p' | awk '{s += $1} END {print s + 0}'
}

say "run 1: directly against PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}')"
run_suite direct
results direct >"$W/direct.results"
d_total=$(wc -l <"$W/direct.results")
d_fail=$(grep -c '^fail' "$W/direct.results")
d_plan=$(planned direct)
say "direct: $((d_total - d_fail))/$d_plan passed ($(elapsed))"
if [ "$d_fail" != 0 ] || [ "$d_total" != "$d_plan" ] || [ "$d_plan" = 0 ]; then
	grep '^fail' "$W/direct.results" | cut -f2- | sed 's/^/    /'
	tail -n 30 "$W"/direct-*.tap
	fail "BROKEN: the suite does not pass directly against PostgreSQL ($d_total of $d_plan" \
		"checks ran, $d_fail failed): nothing it says about pgktls can be trusted"
fi

# check_mode MODE EXPECTED-FILE: run the suite through pgktls in MODE and compare with the
# direct run and the expected failures. Prints the mode's count line; returns 1 on a
# difference (the details printed above the count).
check_mode() {
	local mode=$1 expected=$2 via total nfail notrun st=0 f
	run_suite "$mode"
	results "$mode" >"$W/$mode.ran"
	via=$(cat "$W/$mode"-*.tap |
		sed -n 's/^# pgktls shim: \([0-9]*\) connections through pgktls$/\1/p' |
		awk '{s += $1} END {print s + 0}')
	say "$mode: $via client connections went through pgktls"
	if [ "$via" -le 0 ]; then
		say "$mode: FAILED: no connection went through pgktls: the shim did not work"
		return 1
	fi
	# A check the direct run made that this run did not reach (a script died before it)
	# failed.
	cut -f2- "$W/$mode.ran" | sort >"$W/$mode.ransorted"
	cut -f2- "$W/direct.results" | sort | comm -23 - "$W/$mode.ransorted" |
		sed 's/^/fail\t/' | cat "$W/$mode.ran" - >"$W/$mode.results"
	total=$(wc -l <"$W/$mode.results")
	nfail=$(grep -c '^fail' "$W/$mode.results")
	notrun=$((total - $(wc -l <"$W/$mode.ran")))

	# The expected failures: "FILE | NAME | REASON" lines; # starts a comment.
	sed -n 's/^\([^#|][^|]*| [^|]*\) | .*/\1/p' "$expected" | sed 's/ *$//' |
		sort >"$W/$mode.expected"
	grep '^fail' "$W/$mode.results" | cut -f2- | sort >"$W/$mode.failed"
	cut -f2- "$W/$mode.results" | sort >"$W/$mode.all"
	comm -23 "$W/$mode.failed" "$W/$mode.expected" >"$W/$mode.unexpected-fail"
	comm -12 "$W/$mode.failed" "$W/$mode.expected" >"$W/$mode.expected-fail"
	comm -23 "$W/$mode.expected" "$W/$mode.failed" >"$W/$mode.listed-not-failed"
	comm -12 "$W/$mode.listed-not-failed" "$W/$mode.all" >"$W/$mode.unexpected-pass"
	comm -23 "$W/$mode.listed-not-failed" "$W/$mode.all" >"$W/$mode.listed-not-run"

	if [ -s "$W/$mode.unexpected-fail" ]; then
		say "$mode: unexpected failures through pgktls:"
		sed 's/^/    /' "$W/$mode.unexpected-fail"
		st=1
	fi
	if [ -s "$W/$mode.unexpected-pass" ]; then
		say "$mode: unexpected passes (listed in $(basename "$expected") but passed:" \
			"remove them):"
		sed 's/^/    /' "$W/$mode.unexpected-pass"
		st=1
	fi
	if [ -s "$W/$mode.listed-not-run" ]; then
		say "$mode: listed in $(basename "$expected") but not run by this suite:"
		sed 's/^/    /' "$W/$mode.listed-not-run"
		st=1
	fi
	if [ "$total" != "$d_total" ]; then
		say "$mode: through pgktls $total checks ran, directly $d_total: names differ"
		st=1
	fi
	if [ "$st" != 0 ]; then
		for f in "$W/$mode"-*.tap; do
			grep -q '^not ok' "$f" &&
				{ echo "---- $f"; grep -v '^# Checking port' "$f"; }
		done
		PGKTLS_KEEP_TMP=1
	fi
	COUNTS+=("pg-ssl-suite ($mode): $((total - nfail)) passed,\
 $(wc -l <"$W/$mode.unexpected-fail") failed,\
 $(wc -l <"$W/$mode.expected-fail") expected failures\
 ($(wc -l <"$W/$mode.unexpected-pass") unexpected passes; of $total checks, $notrun not\
 reached; $(elapsed))")
	printf '%s\n' "${COUNTS[-1]}"
	return "$st"
}

COUNTS=()
status=0
n=2
for mode in $MODES; do
	case $mode in
	terminator)
		say "run $n: through pgktls as a terminator (no identity map)"
		check_mode terminator "$HERE/expected-failures.txt" || status=1
		;;
	identity)
		say "run $n: through pgktls with upstream identities (tls_server_identity_map)"
		check_mode identity "$HERE/expected-failures-identity.txt" || status=1
		;;
	esac
	n=$((n + 1))
done
# Both counts together at the end, where a CI log is read.
printf '%s\n' "${COUNTS[@]}"
[ "$status" = 0 ] || fail "through pgktls (see above)"
