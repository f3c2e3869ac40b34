# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# guest.sh - runs inside the VM (busybox sh, from the initramfs's /init,
# with /job the writable share run.sh prepared): set up the host root as a
# usable system, run /job/cmd.sh in it, and leave its exit status in
# /job/status. run.sh copies this file in for every run, so the cached
# initramfs never needs rebuilding when it changes.

cut -d' ' -f1 /proc/uptime > /job/boot-time

# tls for the tests; inet_diag/tcp_diag so `ss -tie` and netlink queries
# see the ULP; overlay for the writable directories below. aesni_intel and
# ghash_clmulni_intel first: without them the kernel's gcm(aes) is the generic
# C code while OpenSSL in userspace uses AES-NI, which makes kTLS look slow.
# (Loading may fail where the CPU lacks them; the generic code still works.)
mods="aesni_intel ghash_clmulni_intel tls inet_diag tcp_diag overlay"
if [ -f /job/no-tls ]; then
	# A kernel whose tls module is missing (PGKTLS_VM_NO_TLS=1): delete it
	# from this RAM root, so neither we nor the kernel's autoload (which runs
	# this root's /sbin/modprobe on TCP_ULP "tls") can load it.
	rm -rf /lib/modules/*/kernel/net/tls
	mods="inet_diag tcp_diag overlay"
	echo "ktls-vm: without the tls module"
fi
# Kernels differ: newer ones build some in, and fold GHASH into aesni_intel
# (7.x has no ghash_clmulni_intel); only a module that is neither loaded nor
# built in is worth a line.
for m in $mods; do
	modprobe "$m" 2>/dev/null || [ -d "/sys/module/$m" ] ||
		echo "ktls-vm: no module $m in $(uname -r)"
done
ip link set lo up

mkdir -p /host /rw
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose host /host; then
	echo "ktls-vm: cannot mount the host root"
	exit 1
fi
mount -t tmpfs -o mode=755 rw /rw

# Writable views of a few host directories: an overlay keeps what is there
# (a build tree under /tmp), and writes go to RAM.
for d in tmp run var/tmp root; do
	[ -d "/host/$d" ] && [ ! -L "/host/$d" ] || continue
	n=$(echo "$d" | tr / _)
	mkdir -p "/rw/$n/upper" "/rw/$n/work"
	# The merged root takes the upper dir's mode: keep /tmp's 1777.
	chmod "$(stat -c %a "/host/$d")" "/rw/$n/upper"
	if ! mount -t overlay "ovl_$n" \
		-o "lowerdir=/host/$d,upperdir=/rw/$n/upper,workdir=/rw/$n/work" "/host/$d"; then
		echo "ktls-vm: no overlay on /$d; using an empty tmpfs"
		mount -t tmpfs -o mode=1777 "tmp_$n" "/host/$d"
	fi
done
mkdir -p /host/run/postgresql /host/run/lock 2>/dev/null

mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t devtmpfs dev /host/dev
mkdir -p /host/dev/pts /host/dev/shm 2>/dev/null
# devtmpfs lacks these links; bash's process substitution needs /dev/fd.
ln -sfn /proc/self/fd /host/dev/fd
ln -sf /proc/self/fd/0 /host/dev/stdin
ln -sf /proc/self/fd/1 /host/dev/stdout
ln -sf /proc/self/fd/2 /host/dev/stderr
mount -t devpts devpts /host/dev/pts
mount -t tmpfs -o mode=1777 shm /host/dev/shm

cp /job/cmd.sh /host/tmp/.pgktls-vm-cmd.sh
# Its own session, so a test that signals its process group (bash's
# `kill %1` on a finished job does) cannot take this script down with it.
if [ -f /job/user ]; then
	u=$(cat /job/user)
	chown "$u" /host/tmp/.pgktls-vm-cmd.sh
	setsid chroot /host /usr/sbin/runuser -u "$u" -- /bin/bash /tmp/.pgktls-vm-cmd.sh < /dev/null
else
	setsid chroot /host /bin/bash /tmp/.pgktls-vm-cmd.sh < /dev/null
fi
rc=$?
echo "ktls-vm: command exited with status $rc"
echo $rc > /job/status
# Leftover background processes must not keep the VM up.
kill -9 -1 2>/dev/null
sync
