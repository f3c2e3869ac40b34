#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# prepare.sh - fetch the stock Debian kernel (which has CONFIG_TLS=m) and
# build a small initramfs for it, for run.sh to boot under qemu.
#
# Nothing here goes into the git tree: the kernel package is downloaded with
# apt at run time and everything is cached in $PGKTLS_VM_CACHE (default
# /var/cache/pgktls-ktls-vm), one folder per kernel package version.
#
# Prints the folder holding vmlinuz, initrd.gz and kver on its last line.
# Exit status: 0, 77 if the tools or the package cannot be had, 1 on error.
set -eu

CACHE=${PGKTLS_VM_CACHE:-/var/cache/pgktls-ktls-vm}

say() { echo "ktls-vm: $*" >&2; }
skip() { say "$*"; exit 77; }

for t in apt-get apt-cache dpkg-deb cpio depmod gzip; do
	command -v "$t" >/dev/null 2>&1 || skip "cannot prepare the VM: $t not found"
done
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

# The versioned image package that the linux-image-amd64 metapackage points to.
kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-/ { print $2; exit }'
}

latest_cached() {
	ls -1d "$CACHE"/*/ 2>/dev/null | while read -r d; do
		[ -f "$d/ready" ] && echo "${d%/}"
	done | tail -n 1
}

PKG=$(kernel_pkg)
if [ -z "$PKG" ]; then
	say "apt cache lacks linux-image-amd64; running apt-get update"
	apt-get update -qq >&2 || true
	PKG=$(kernel_pkg)
fi
if [ -z "$PKG" ]; then
	# Offline: any kernel prepared before still proves the same thing.
	d=$(latest_cached)
	[ -n "$d" ] || skip "cannot find the Debian kernel package (linux-image-amd64)"
	say "apt cannot name the kernel package; using cached $d"
	echo "$d"
	exit 0
fi
VER=$(apt-cache show --no-all-versions "$PKG" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
[ -n "$VER" ] || skip "apt-cache show $PKG gave no version"
# Bump RECIPE when the initramfs contents below change, so caches rebuild.
RECIPE=r1
KEY="${PKG#linux-image-}_${VER}_$RECIPE"
DIR=$CACHE/$KEY

if [ -f "$DIR/ready" ]; then
	echo "$DIR"
	exit 0
fi

mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

say "downloading $PKG $VER"
# apt's _apt user may not write into $WORK: a harmless notice, not an error.
(cd "$WORK" && apt-get download -q "$PKG=$VER" >&2) ||
	skip "apt-get download $PKG=$VER failed (no mirror?)"
dpkg-deb -x "$WORK"/linux-image-*.deb "$WORK/pkg"

KVER=$(ls -1 "$WORK/pkg/lib/modules" | head -n 1)
[ -n "$KVER" ] || { say "no lib/modules in $PKG"; exit 1; }
VMLINUZ=$WORK/pkg/boot/vmlinuz-$KVER
[ -f "$VMLINUZ" ] || { say "no vmlinuz-$KVER in $PKG"; exit 1; }

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
# Only what the tests need: 9p over virtio, tls and its crypto, the socket
# diagnostics behind `ss -tie`, and overlayfs for writable /tmp and /run.
for sub in kernel/crypto kernel/arch/x86/crypto kernel/lib kernel/net/tls kernel/fs/9p \
	kernel/net/9p kernel/drivers/virtio kernel/fs/netfs kernel/fs/fscache \
	kernel/fs/overlayfs kernel/net/ipv4 kernel/net/core; do
	if [ -d "$WORK/pkg/$M/$sub" ]; then
		mkdir -p "$R/$M/$(dirname "$sub")"
		cp -a "$WORK/pkg/$M/$sub" "$R/$M/$sub"
	fi
done
cp "$WORK/pkg/$M"/modules.order "$WORK/pkg/$M"/modules.builtin* "$R/$M/" 2>/dev/null || true
depmod -b "$R" "$KVER"

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
touch "$WORK/out/ready"
rm -rf "$DIR"
mv "$WORK/out" "$DIR"
say "ready: $DIR ($(du -sh "$DIR/initrd.gz" | cut -f1) initramfs)"
echo "$DIR"
