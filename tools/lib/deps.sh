# SPDX-License-Identifier: MIT
# Copyright (c) 2026 The pgktls developers
#
# deps.sh - install the Debian 12 packages pgktls needs to build and test (sourced by
# tools/test and tools/demo). Only what is missing is installed, so on a ready machine
# this costs one dpkg-query and no network.

# Build: compiler, autotools, libraries, the unit-test framework.
DEPS_BUILD=(build-essential autoconf automake autoconf-archive pkg-config libssl-dev libmnl-dev
	libcjson-dev check)
# Integration tests: PostgreSQL 15 and its clients; the kTLS VM (qemu, a static busybox for the
# initramfs, cpio and kmod to build it); openssl for certificates; ss from iproute2;
# clang and its runtime for the libFuzzer targets (tests/fuzz); gnutls-bin: a second TLS stack
# as client (t-tls-interop.sh).
DEPS_TEST=(postgresql-15 postgresql-client-15 python3 python3-psycopg2 python3-psycopg python3-jsonschema
	libpostgresql-jdbc-java default-jre-headless openssl iproute2 qemu-system-x86
	busybox-static cpio kmod util-linux clang libclang-rt-14-dev gnutls-bin)
# The metrics endpoint's test (t-metrics.sh): a Prometheus server with promtool, and curl.
DEPS_TEST+=(prometheus curl)
# tests/integration/t-proxy-protocol.sh: a real L4 balancer sending PROXY headers.
DEPS_TEST+=(haproxy)
# The kTLS VM's kernel matrix (tests/ktls-vm/prepare.sh): the archive keyring its private apt
# sources are signed-by, xz for the compressed modules of Debian 13 and later.
DEPS_TEST+=(debian-archive-keyring xz-utils)
# The Debian package test (tests/deb/test-deb.sh): packaging tools, lintian, debootstrap;
# systemd for systemd-socket-activate and systemd-analyze (t-socket-activation.sh).
DEPS_DEB=(debhelper dh-autoreconf dpkg-dev fakeroot lintian debootstrap git systemd)
# socat talks to the stats socket (t-reload.sh); npm fetches node-postgres over HTTPS
# (t-node.sh), which needs the CA certificates.
DEPS_TEST+=(socat ca-certificates)
# procps has /bin/kill, which pgktls.service's ExecReload= names: systemd-analyze verify
# (t-socket-activation.sh) checks that it exists. Debian's minimal installs leave it out.
DEPS_TEST+=(procps)
# strace delays the old process's handover sends (t-upgrade.sh), to make a race certain.
DEPS_TEST+=(strace)
# PostgreSQL's own SSL suite (tests/pg-ssl, `make check-pg-ssl`): its Perl test modules need
# IPC::Run, it reads pg_config.h (libpq-dev), and dpkg-source unpacks the source package.
DEPS_PG_SSL=(libipc-run-perl libpq-dev dpkg-dev perl)
# The demo needs only PostgreSQL and openssl besides the build.
DEPS_DEMO=(postgresql-15 postgresql-client-15 openssl util-linux)

deps_say() { echo "deps: $*" >&2; }

# deps_missing PKG...: print the packages that are not installed.
deps_missing() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			echo "$p"
	done
}

# deps_install PKG...: apt-get install what is missing (as root, or through sudo).
deps_install() {
	local missing sudo=()
	command -v dpkg-query >/dev/null 2>&1 || {
		deps_say "not a Debian system: install by hand: $*"
		return 0
	}
	missing=$(deps_missing "$@")
	[ -n "$missing" ] || return 0
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null 2>&1 || {
			deps_say "missing packages and no sudo: $missing"
			return 1
		}
		sudo=(sudo)
	fi
	deps_say "installing:" $missing
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q || return 1
	# shellcheck disable=SC2086 # one word per package
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends $missing </dev/null || return 1
}

# deps_node: node and npm for the node-postgres test, from Debian only when absent, so a
# node installed some other way (with its own npm) is left alone.
deps_node() {
	local pkgs=()
	command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
	command -v npm >/dev/null 2>&1 || pkgs+=(npm)
	[ ${#pkgs[@]} -eq 0 ] || deps_install "${pkgs[@]}"
}
