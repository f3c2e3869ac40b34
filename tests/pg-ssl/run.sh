#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# run.sh - PostgreSQL 15's own SSL test suite (src/test/ssl: 001_ssltests, 002_scram,
# 003_sslinfo) against the installed PostgreSQL 15, twice (`make check-pg-ssl`):
#
#   1. directly, as PostgreSQL runs it: every check must pass, or this stage is broken
#      (the suite, the source or the machine is wrong, not pgktls);
#   2. through pgktls: PgktlsShim.pm, loaded with -M before each test script, starts pgktls
#      in front of the suite's server with the server's own certificates and settings and
#      sends the suite's client connections to it. Every check must pass except those in
#      expected-failures.txt (the ones no TLS terminator can pass), and each of those must
#      fail: the list stays exact.
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
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PGBIN=${PGKTLS_PGBIN:-/usr/lib/postgresql/15/bin}
EXPECTED=$HERE/expected-failures.txt
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
for mode in direct pgktls; do
	mkdir -p "$W/$mode/src/test"
	cp -r "$SRC/src/test/ssl" "$SRC/src/test/perl" "$W/$mode/src/test/"
done
[ ${#AS[@]} -gt 0 ] && chown -R postgres: "$W"

# run_suite MODE: run every t/*.pl in MODE (direct or pgktls); TAP in $W/MODE-*.tap.
run_suite() {
	local mode=$1 dir=$W/$1/src/test/ssl t perl_cmd
	perl_cmd="perl -I$dir/../perl -I$dir/t"
	[ "$mode" = pgktls ] && perl_cmd+=" -I$W/shim -MPgktlsShim"
	for t in "$dir"/t/*.pl; do
		# PG_REGRESS: the modules run `$PG_REGRESS --config-auth DATADIR` when they use TCP;
		# pg_regress does nothing for that outside Windows (it sets up SSPI there), and it
		# is not installed with the server, so true stands in for it.
		"${AS[@]}" env -C "$dir" PATH="$PGBIN:$PATH" with_ssl=openssl TESTDIR="$dir" \
			PG_TEST_PORT_DIR="$W/portlock" PG_REGRESS=/bin/true \
			PGKTLS_BIN="$W/bin/pgktls" \
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

say "run 2: through pgktls"
run_suite pgktls
results pgktls >"$W/pgktls.ran"
via=$(cat "$W"/pgktls-*.tap | sed -n 's/^# pgktls shim: \([0-9]*\) connections through pgktls$/\1/p' |
	awk '{s += $1} END {print s + 0}')
say "through pgktls: $via client connections went through pgktls"
[ "$via" -gt 0 ] || fail "no connection went through pgktls: the shim did not work"
# A check the direct run made that this run did not reach (a script died before it) failed.
cut -f2- "$W/pgktls.ran" | sort >"$W/ran"
cut -f2- "$W/direct.results" | sort | comm -23 - "$W/ran" | sed 's/^/fail\t/' |
	cat "$W/pgktls.ran" - >"$W/pgktls.results"
p_total=$(wc -l <"$W/pgktls.results")
p_fail=$(grep -c '^fail' "$W/pgktls.results")
p_notrun=$((p_total - $(wc -l <"$W/pgktls.ran")))

# The expected failures: "FILE | NAME | REASON" lines; # starts a comment.
sed -n 's/^\([^#|][^|]*| [^|]*\) | .*/\1/p' "$EXPECTED" | sed 's/ *$//' | sort >"$W/expected"
grep '^fail' "$W/pgktls.results" | cut -f2- | sort >"$W/failed"
cut -f2- "$W/pgktls.results" | sort >"$W/all"
comm -23 "$W/failed" "$W/expected" >"$W/unexpected-fail"
comm -12 "$W/failed" "$W/expected" >"$W/expected-fail"
comm -23 "$W/expected" "$W/failed" >"$W/listed-not-failed"
comm -12 "$W/listed-not-failed" "$W/all" >"$W/unexpected-pass"
comm -23 "$W/listed-not-failed" "$W/all" >"$W/listed-not-run"

status=0
if [ -s "$W/unexpected-fail" ]; then
	say "unexpected failures through pgktls:"
	sed 's/^/    /' "$W/unexpected-fail"
	status=1
fi
if [ -s "$W/unexpected-pass" ]; then
	say "unexpected passes (listed in $(basename "$EXPECTED") but passed: remove them):"
	sed 's/^/    /' "$W/unexpected-pass"
	status=1
fi
if [ -s "$W/listed-not-run" ]; then
	say "listed in $(basename "$EXPECTED") but not run by this suite:"
	sed 's/^/    /' "$W/listed-not-run"
	status=1
fi
if [ "$p_total" != "$d_total" ]; then
	say "through pgktls $p_total checks ran, directly $d_total: names differ"
	status=1
fi
if [ "$status" != 0 ]; then
	for f in "$W"/pgktls-*.tap; do
		grep -q '^not ok' "$f" && { echo "---- $f"; grep -v '^# Checking port' "$f"; }
	done
	PGKTLS_KEEP_TMP=1
fi
say "$((p_total - p_fail)) passed, $(wc -l <"$W/unexpected-fail") failed," \
	"$(wc -l <"$W/expected-fail") expected failures" \
	"($(wc -l <"$W/unexpected-pass") unexpected passes; of $p_total checks, $p_notrun not reached;" \
	"$(elapsed))"
[ "$status" = 0 ] || fail "through pgktls (see above)"
