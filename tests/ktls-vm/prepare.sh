#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# prepare.sh - fetch a stock Debian kernel (which has CONFIG_TLS=m) and build
# a small initramfs for it, for run.sh to boot under qemu.
#
# PGKTLS_VM_KERNEL picks the Debian suite whose kernel to boot: bookworm
# (Debian 12, Linux 6.1; the default), trixie (Debian 13, 6.12) or sid
# (unstable, the newest). The packages are fetched with `apt-get download`
# through a private apt configuration, one per suite, under the cache (its
# own sources list, package lists and archive folder): the machine's apt
# sources are never read or changed, so a Debian 12 host can boot a sid
# kernel. The mirror is the one the machine's sources use (deb.debian.org if
# none), or $PGKTLS_VM_MIRROR.
#
# Nothing here goes into the git tree: everything is cached in
# $PGKTLS_VM_CACHE (default /var/cache/pgktls-ktls-vm), one folder per kernel
# package version; apt's lists are refreshed only when they cannot name or
# fetch the kernel, so a prepared kernel boots offline.
#
# Prints the folder holding vmlinuz, initrd.gz and kver on its last line.
# Exit status: 0, 77 if the tools or the package cannot be had, 1 on error. A
# kernel that cannot be fetched (nor found in the cache) is 77 locally, but 1
# in CI (CI=true or PGKTLS_REQUIRE_KTLS_VM=1): CI must run the kernels it names.
set -eu

CACHE=${PGKTLS_VM_CACHE:-/var/cache/pgktls-ktls-vm}
SUITE=${PGKTLS_VM_KERNEL:-bookworm}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

say() { echo "ktls-vm: $*" >&2; }
skip() { say "$*"; exit 77; }
# No kernel to boot: a skip on a developer's machine, a failure in CI.
unavailable() {
	if [ "${CI:-}" = true ] || [ "${PGKTLS_REQUIRE_KTLS_VM:-0}" = 1 ]; then
		say "$* (a failure here: CI=${CI:-} PGKTLS_REQUIRE_KTLS_VM=${PGKTLS_REQUIRE_KTLS_VM:-0})"
		exit 1
	fi
	skip "$*"
}

case $SUITE in
bookworm | trixie | sid) ;;
*)
	say "PGKTLS_VM_KERNEL=$SUITE: expected bookworm, trixie or sid"
	exit 1
	;;
esac

for t in apt-get apt-cache dpkg-deb cpio depmod gzip xz; do
	command -v "$t" >/dev/null 2>&1 || skip "cannot prepare the VM: $t not found"
done
[ -r "$KEYRING" ] ||
	skip "cannot prepare the VM: no $KEYRING (apt-get install debian-archive-keyring)"
BUSYBOX=
for b in /bin/busybox /usr/bin/busybox; do
	# Only a static busybox runs inside an initramfs that has no libc.
	if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then
		BUSYBOX=$b
		break
	fi
done
[ -n "$BUSYBOX" ] ||
	skip "cannot prepare the VM: no static busybox (apt-get install busybox-static)"

# The Debian mirror the machine itself uses (one-line or deb822 sources),
# so a machine behind a local mirror keeps using it.
mirror() {
	if [ -n "${PGKTLS_VM_MIRROR:-}" ]; then
		echo "$PGKTLS_VM_MIRROR"
		return
	fi
	cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources 2>/dev/null |
		awk '/^[ \t]*#/ { next }
		     /^deb / { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; break } }
		     /^URIs:/ { for (i = 2; i <= NF; i++) print $i }' |
		grep -E '^https?://[^ ]*/debian/?$' | head -n 1 | sed 's,/$,,' | grep . ||
		echo http://deb.debian.org/debian
}

# The private apt configuration of this suite.
APTDIR=$CACHE/apt/$SUITE
MIRROR=$(mirror)
mkdir -p "$APTDIR/lists/partial" "$APTDIR/archives/partial" "$APTDIR/sources.list.d"
{
	echo "deb [signed-by=$KEYRING] $MIRROR $SUITE main"
	if [ "$SUITE" = bookworm ]; then
		# A stable kernel's fixes arrive through the security archive.
		echo "deb [signed-by=$KEYRING] $MIRROR $SUITE-updates main"
		echo "deb [signed-by=$KEYRING] ${MIRROR%/debian}/debian-security $SUITE-security main"
	fi
} > "$APTDIR/sources.list.new"
if ! cmp -s "$APTDIR/sources.list.new" "$APTDIR/sources.list" 2>/dev/null; then
	mv "$APTDIR/sources.list.new" "$APTDIR/sources.list"
	rm -rf "$APTDIR/lists"/*Packages* "$APTDIR/lists"/*Release*
else
	rm -f "$APTDIR/sources.list.new"
fi
: > "$APTDIR/status"

# Check-Valid-Until=false: unstable's Release carries a Valid-Until a week ahead, and a
# mirror that serves a snapshot of the archive (as some CI networks do) serves it expired;
# the signatures are still checked against the archive keyring, and what is fetched is a
# kernel booted only in the throwaway test VM. (Found by .ci/run on a fresh chroot.)
apt_opts() {
	echo "-o Dir::Etc::sourcelist=$APTDIR/sources.list" \
		"-o Dir::Etc::sourceparts=$APTDIR/sources.list.d" \
		"-o Dir::State::Lists=$APTDIR/lists" \
		"-o Dir::State::status=$APTDIR/status" \
		"-o Dir::Cache::archives=$APTDIR/archives" \
		"-o Dir::Cache::pkgcache=$APTDIR/pkgcache.bin" \
		"-o Dir::Cache::srcpkgcache=$APTDIR/srcpkgcache.bin" \
		"-o APT::Architecture=amd64 -o Acquire::Languages=none" \
		"-o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false" \
		"-o Acquire::Check-Valid-Until=false"
}
# shellcheck disable=SC2046 # apt_opts is a list of words without spaces
papt_get() { apt-get -q $(apt_opts) "$@"; }
# shellcheck disable=SC2046
papt_cache() { apt-cache $(apt_opts) "$@"; }

update() {
	say "refreshing the $SUITE package lists from $MIRROR"
	papt_get update -qq >&2
}

# The versioned image package that the linux-image-amd64 metapackage points
# to, then the packages holding its files: from Debian 14 on (sid today),
# linux-image-VERSION only depends on linux-binary-VERSION (vmlinuz) and
# linux-modules-VERSION (the modules).
kernel_pkg() {
	papt_cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-/ { print $2; exit }'
}
content_pkgs() {
	papt_cache depends "$1" 2>/dev/null |
		awk '/Depends: linux-(binary|modules)-/ { print $2 }' | sort -u
}
version_of() {
	papt_cache show --no-all-versions "$1" 2>/dev/null |
		awk '/^Version:/ { print $2; exit }'
}

latest_cached() {
	ls -1td "$CACHE"/*/ 2>/dev/null | while read -r d; do
		[ -f "$d/ready" ] || continue
		# Folders made before the kernel matrix have no suite file: bookworm's.
		s=$(cat "$d/suite" 2>/dev/null || echo bookworm)
		[ "$s" = "$SUITE" ] && echo "${d%/}"
	done | head -n 1
}
offline() {
	d=$(latest_cached)
	[ -n "$d" ] || unavailable "cannot fetch the $SUITE kernel ($*)"
	say "$*; using the cached $d"
	echo "$d"
	exit 0
}

PKG=$(kernel_pkg)
if [ -z "$PKG" ]; then
	update || true
	PKG=$(kernel_pkg)
fi
[ -n "$PKG" ] || offline "apt cannot name the $SUITE kernel package (no mirror?)"
VER=$(version_of "$PKG")
[ -n "$VER" ] || offline "apt-cache show $PKG gave no version"
# Bump RECIPE when the initramfs contents below change, so caches rebuild.
RECIPE=r2
KEY="${PKG#linux-image-}_${VER}_$RECIPE"
DIR=$CACHE/$KEY

if [ -f "$DIR/ready" ]; then
	echo "$DIR"
	exit 0
fi

mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

download() {
	pkgs="$PKG=$VER"
	for p in $(content_pkgs "$PKG"); do
		pkgs="$pkgs $p=$(version_of "$p")"
	done
	say "downloading from $SUITE: $pkgs"
	# apt's _apt user may not write into $WORK: a harmless notice, not an error.
	# shellcheck disable=SC2086 # a list of package=version words
	(cd "$WORK" && papt_get download $pkgs >&2)
}
if ! download; then
	# Old lists name a version the mirror has dropped (sid moves daily).
	update || offline "apt-get update for $SUITE failed"
	PKG=$(kernel_pkg)
	VER=$(version_of "$PKG")
	[ -n "$PKG" ] && [ -n "$VER" ] || offline "$SUITE has no kernel package after an update"
	KEY="${PKG#linux-image-}_${VER}_$RECIPE"
	DIR=$CACHE/$KEY
	if [ -f "$DIR/ready" ]; then
		echo "$DIR"
		exit 0
	fi
	rm -f "$WORK"/*.deb
	download || offline "apt-get download $PKG=$VER failed"
fi
for deb in "$WORK"/*.deb; do
	dpkg-deb -x "$deb" "$WORK/pkg"
done

# Debian 12 ships lib/modules and boot/vmlinuz-VERSION; from Debian 13 on
# (merged /usr) usr/lib/modules, and sid puts vmlinuz inside the module folder.
MODROOT=
for m in lib/modules usr/lib/modules; do
	if [ -d "$WORK/pkg/$m" ] && [ -n "$(ls -A "$WORK/pkg/$m")" ]; then
		MODROOT=$WORK/pkg/$m
		break
	fi
done
[ -n "$MODROOT" ] || { say "no lib/modules in $PKG"; exit 1; }
KVER=$(ls -1 "$MODROOT" | head -n 1)
VMLINUZ=
for v in "$WORK/pkg/boot/vmlinuz-$KVER" "$MODROOT/$KVER/vmlinuz"; do
	[ -f "$v" ] && VMLINUZ=$v && break
done
[ -n "$VMLINUZ" ] || { say "no vmlinuz for $KVER in $PKG"; exit 1; }

say "building the initramfs for $KVER"
R=$WORK/root
mkdir -p "$R/bin" "$R/sbin" "$R/proc" "$R/sys" "$R/dev" "$R/host" "$R/job" "$R/mnt"
cp "$BUSYBOX" "$R/bin/busybox"
for app in $("$BUSYBOX" --list); do
	[ -e "$R/bin/$app" ] || ln -s busybox "$R/bin/$app"
done
# The kernel autoloads crypto (gcm(aes), ...) through /sbin/modprobe: without
# it TLS_TX/TLS_RX fail with ENOENT.
ln -s ../bin/busybox "$R/sbin/modprobe"

M=lib/modules/$KVER
mkdir -p "$R/$M"
# Only what the tests need: 9p over virtio, tls and its crypto (AES-NI, GHASH
# and gf128mul live under arch/x86/crypto, crypto and lib), the socket
# diagnostics behind `ss -tie`, and overlayfs for writable /tmp and /run.
for sub in kernel/crypto kernel/arch/x86/crypto kernel/lib kernel/net/tls kernel/fs/9p \
	kernel/net/9p kernel/drivers/virtio kernel/fs/netfs kernel/fs/fscache \
	kernel/fs/overlayfs kernel/net/ipv4 kernel/net/core; do
	if [ -d "$MODROOT/$KVER/$sub" ]; then
		mkdir -p "$R/$M/$(dirname "$sub")"
		cp -a "$MODROOT/$KVER/$sub" "$R/$M/$sub"
	fi
done
cp "$MODROOT/$KVER"/modules.order "$MODROOT/$KVER"/modules.builtin* "$R/$M/" 2>/dev/null || true
# Debian 13 on compresses modules; busybox's modprobe loads plain .ko only.
find "$R/$M" -name '*.ko.xz' -exec xz -d {} +
if find "$R/$M" -name '*.ko.zst' | grep -q .; then
	command -v zstd >/dev/null 2>&1 || skip "cannot prepare the VM: zstd not found"
	find "$R/$M" -name '*.ko.zst' -exec zstd -q -d --rm {} +
fi
# sid ships neither modules.order nor modules.builtin; empty ones keep depmod quiet.
for f in modules.order modules.builtin modules.builtin.modinfo; do
	[ -e "$R/$M/$f" ] || : > "$R/$M/$f"
done
depmod -b "$R" "$KVER"
for m in tls 9p 9pnet_virtio; do
	# Built in (modules.builtin) is as good as a module.
	grep -q "/$m\.ko" "$R/$M/modules.dep" "$R/$M/modules.builtin" 2>/dev/null ||
		{ say "$PKG lacks the $m module"; exit 1; }
done

# The initramfs only reaches the job share; the real work is in guest.sh,
# which run.sh copies there, so editing it never needs a rebuild.
cat > "$R/init" <<'INIT'
#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_pci 9pnet_virtio 9p; do
	modprobe $m || echo "ktls-vm: modprobe $m failed"
done
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 job /job &&
	[ -f /job/guest.sh ]; then
	sh /job/guest.sh
else
	echo "ktls-vm: cannot mount the job share"
fi
poweroff -f
INIT
chmod 755 "$R/init"

mkdir -p "$WORK/out"
(cd "$R" && find . | cpio -o -H newc --quiet) | gzip -1 > "$WORK/out/initrd.gz"
cp "$VMLINUZ" "$WORK/out/vmlinuz"
echo "$KVER" > "$WORK/out/kver"
echo "$SUITE" > "$WORK/out/suite"
touch "$WORK/out/ready"
rm -rf "$DIR"
mv "$WORK/out" "$DIR"
say "ready: $DIR ($KVER from $SUITE, $(du -sh "$DIR/initrd.gz" | cut -f1) initramfs)"
echo "$DIR"
