#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# test-deb.sh - the Debian package, end to end: build it with dpkg-buildpackage -us -uc -b
# from a clean git clone of HEAD, check it with lintian (no errors, no warnings), install it
# into a fresh Debian 12 root (debootstrap --variant=minbase bookworm; dependencies from
# Debian's archive through apt-get -f install), check what it installed (user, units and
# their enablement, man pages, the conffile), run pgktls --version and --check-config on the
# shipped example there, then dpkg --purge it and check that nothing is left but the user
# (kept, as Debian policy asks of system users).
#
# Usage: tests/deb/test-deb.sh [WORKDIR]   (make check-deb; tools/test runs it after make check)
# Needs root (debootstrap, chroot, mount) and Debian's archive.
#
# Environment:
#   PGKTLS_NO_DEB=1          skip (developers); CI runs it
#   PGKTLS_REQUIRE_DEB=1     a missing prerequisite is a failure, not a skip (set by CI=true)
#   PGKTLS_DEB_CACHE         where the debootstrapped root (a tar) and apt's downloaded .debs
#                            are kept between runs (default /var/cache/pgktls-test)
#   PGKTLS_DEB_MIRROR        Debian mirror (default http://deb.debian.org/debian)
#   DEB_BUILD_OPTIONS        for dpkg-buildpackage; default "nocheck": the package build would
#                            run the unit tests again, which `make check` has just run on the
#                            same tree (set it to "" to run them inside the package build too)
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${1:-$SRC/.cache/deb-test}
CACHE=${PGKTLS_DEB_CACHE:-/var/cache/pgktls-test}
MIRROR=${PGKTLS_DEB_MIRROR:-http://deb.debian.org/debian}
ROOTFS=$WORK/root
START=$(date +%s)
export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS-nocheck}
[ "${CI:-}" = true ] && PGKTLS_REQUIRE_DEB=1

say() { printf '==== check-deb: %s (%ds)\n' "$*" "$(($(date +%s) - START))"; }
die() {
	printf '==== check-deb: FAILED: %s (%ds)\n' "$*" "$(($(date +%s) - START))" >&2
	exit 1
}
skip() {
	if [ "${PGKTLS_REQUIRE_DEB:-0}" = 1 ]; then
		die "prerequisite missing: $*"
	fi
	printf '==== check-deb: SKIPPED: %s\n' "$*"
	exit 0
}

[ "${PGKTLS_NO_DEB:-0}" = 1 ] && skip "PGKTLS_NO_DEB=1"
[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot)"
for c in git dpkg-buildpackage dh lintian debootstrap chroot fakeroot; do
	command -v "$c" >/dev/null 2>&1 || skip "$c not found (tools/lib/deps.sh: DEPS_DEB)"
done
git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1 || skip "$SRC is not a git checkout"

# The chroot's mounts must be gone before anything under $WORK is removed.
cleanup() {
	local m
	for m in var/cache/apt/archives proc; do
		mountpoint -q "$ROOTFS/$m" 2>/dev/null && umount -l "$ROOTFS/$m"
	done
	return 0
}
trap cleanup EXIT
cleanup
rm -rf --one-file-system "$WORK"
mkdir -p "$WORK" "$CACHE/archives/partial"

# debian/changelog must carry configure.ac's version.
ac_version=$(sed -n 's/^AC_INIT(\[pgktls\], \[\([^]]*\)\].*/\1/p' "$SRC/configure.ac")
deb_version=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
[ "${deb_version%%-*}" = "$ac_version" ] ||
	die "debian/changelog has $deb_version, configure.ac (AC_INIT) has $ac_version"

# ---- build from a clean clone of HEAD (what CI checked out; local edits are not in it)
if [ -n "$(git -C "$SRC" status --porcelain --untracked-files=no)" ]; then
	say "note: uncommitted changes in $SRC are not in the package (it is built from HEAD)"
fi
say "clone $(git -C "$SRC" rev-parse --short HEAD)"
git clone -q --no-checkout "$SRC" "$WORK/pgktls"
git -C "$WORK/pgktls" checkout -q --detach "$(git -C "$SRC" rev-parse HEAD)"
say "dpkg-buildpackage -us -uc -b (DEB_BUILD_OPTIONS='$DEB_BUILD_OPTIONS')"
(cd "$WORK/pgktls" && nice dpkg-buildpackage -us -uc -b -j"${JOBS:-2}") >"$WORK/build.log" 2>&1 ||
	{ tail -n 60 "$WORK/build.log"; die "dpkg-buildpackage (log: $WORK/build.log)"; }
DEB=$(ls "$WORK"/pgktls_*.deb)
CHANGES=$(ls "$WORK"/pgktls_*.changes)
ls "$WORK"/pgktls-dbgsym_*.deb >/dev/null 2>&1 || die "no pgktls-dbgsym package was built"
say "built $(cd "$WORK" && ls ./*.deb | tr '\n' ' ')"

say "lintian"
lintian --fail-on error,warning --tag-display-limit 0 "$CHANGES" >"$WORK/lintian.log" 2>&1 ||
	{ cat "$WORK/lintian.log"; die "lintian reports errors or warnings"; }
cat "$WORK/lintian.log"

# ---- a fresh Debian 12 root: debootstrapped once, then unpacked from the cache
if [ ! -f "$CACHE/bookworm-minbase.tar" ]; then
	say "debootstrap --variant=minbase bookworm (once; cached in $CACHE)"
	rm -rf --one-file-system "$CACHE/root.tmp"
	debootstrap --variant=minbase bookworm "$CACHE/root.tmp" "$MIRROR" \
		>"$WORK/debootstrap.log" 2>&1 ||
		{ tail -n 30 "$WORK/debootstrap.log"; die "debootstrap"; }
	tar -C "$CACHE/root.tmp" -cf "$CACHE/bookworm-minbase.tar.new" .
	mv "$CACHE/bookworm-minbase.tar.new" "$CACHE/bookworm-minbase.tar"
	rm -rf --one-file-system "$CACHE/root.tmp"
fi
say "unpack the Debian 12 root"
mkdir -p "$ROOTFS"
tar -C "$ROOTFS" -xf "$CACHE/bookworm-minbase.tar"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
# Nothing starts services inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
mount -t proc proc "$ROOTFS/proc"
# apt's downloads outlive the root: the dependencies are fetched once.
mount --bind "$CACHE/archives" "$ROOTFS/var/cache/apt/archives"
in_root() { chroot "$ROOTFS" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
	DEBIAN_FRONTEND=noninteractive "$@"; }

say "apt-get update in the root"
in_root apt-get -q update >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log"; die "apt-get update"; }
cp "$DEB" "$ROOTFS/tmp/"
say "dpkg -i $(basename "$DEB") + apt-get -f install"
# dpkg -i fails on the missing dependencies; apt-get -f install fetches them and configures.
in_root dpkg -i "/tmp/$(basename "$DEB")" >>"$WORK/apt.log" 2>&1 || true
in_root apt-get -q -y --no-install-recommends -f install >>"$WORK/apt.log" 2>&1 ||
	{ tail -n 40 "$WORK/apt.log"; die "apt-get -f install"; }
status=$(in_root dpkg-query -W -f='${Status}' pgktls)
[ "$status" = "install ok installed" ] || { tail -n 40 "$WORK/apt.log"; die "pgktls is '$status'"; }

# ---- what the package installed
fails=0
check() { # check DESCRIPTION COMMAND...
	if "${@:2}" >>"$WORK/checks.log" 2>&1; then
		echo "ok - $1"
	else
		echo "not ok - $1"
		fails=$((fails + 1))
	fi
}
VERSION=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
check "pgktls --version prints pgktls ${VERSION%%-*}" \
	sh -c "[ \"\$(chroot '$ROOTFS' pgktls --version)\" = 'pgktls ${VERSION%%-*}' ]"
check "pgktls --check-config accepts the shipped /etc/pgktls/pgktls.toml" \
	in_root pgktls --check-config -c /etc/pgktls/pgktls.toml
check "pgktls-stat is installed" test -x "$ROOTFS/usr/bin/pgktls-stat"
check "the system user pgktls exists (sysusers.d)" in_root getent passwd pgktls
check "... with the group pgktls" in_root getent group pgktls
check "... as a system account (uid < 1000)" \
	sh -c "[ \$(chroot '$ROOTFS' id -u pgktls) -lt 1000 ]"
check "/etc/pgktls/pgktls.toml is a conffile" \
	sh -c "chroot '$ROOTFS' dpkg-query -W -f='\${Conffiles}' pgktls | grep -q ' /etc/pgktls/pgktls.toml '"
for u in pgktls.service pgktls.socket; do
	check "$u is installed in /lib/systemd/system" test -f "$ROOTFS/lib/systemd/system/$u"
done
check "pgktls.service is enabled (multi-user.target.wants)" \
	test -L "$ROOTFS/etc/systemd/system/multi-user.target.wants/pgktls.service"
check "pgktls.socket is not enabled (opt-in: it takes over host/port)" \
	test ! -e "$ROOTFS/etc/systemd/system/sockets.target.wants/pgktls.socket"
check "ExecStart runs /usr/sbin/pgktls with /etc/pgktls/pgktls.toml" \
	grep -qx 'ExecStart=/usr/sbin/pgktls -c /etc/pgktls/pgktls.toml' \
	"$ROOTFS/lib/systemd/system/pgktls.service"
# --man=no: the root has no man-db; the man pages are checked as files below.
check "systemd-analyze verify passes on the installed units (ExecReload's /bin/kill too)" \
	in_root systemd-analyze verify --man=no /lib/systemd/system/pgktls.service \
	/lib/systemd/system/pgktls.socket
for m in man8/pgktls.8 man5/pgktls.toml.5 man1/pgktls-stat.1; do
	check "man page $m is installed" test -f "$ROOTFS/usr/share/man/$m.gz"
done

say "dpkg --purge pgktls"
check "dpkg --purge pgktls succeeds" in_root dpkg --purge pgktls
check "/etc/pgktls is gone after purge" test ! -e "$ROOTFS/etc/pgktls"
check "/usr/sbin/pgktls is gone" test ! -e "$ROOTFS/usr/sbin/pgktls"
check "the units are gone" test ! -e "$ROOTFS/lib/systemd/system/pgktls.service"
check "the enablement symlink is gone" \
	test ! -e "$ROOTFS/etc/systemd/system/multi-user.target.wants/pgktls.service"
check "the user pgktls is kept (Debian policy: system users are not removed)" \
	in_root getent passwd pgktls
check "dpkg no longer knows pgktls" sh -c "! chroot '$ROOTFS' dpkg-query -W pgktls"

cleanup
if [ "$fails" -gt 0 ]; then
	echo "---- $WORK/checks.log"
	cat "$WORK/checks.log"
	die "$fails check(s) failed"
fi
rm -rf --one-file-system "$ROOTFS"
say "passed"
