// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * nl_record.c - record real kernel netlink replies for the .nl files in tests/data/.
 *
 * Usage: nl_record KIND [IFNAME]
 *   diag-plain   a loopback TCP socket without a ULP
 *   diag-tls12   ULP "tls", TLS 1.2 AES-GCM-128 keys in both directions
 *   diag-tls13   ULP "tls", TLS 1.3 AES-GCM-256 key for TX only (RX: none)
 *   diag-ulp     ULP "tls" attached, no keys
 *   diag-missing a 4-tuple no socket has (the kernel answers ENOENT)
 *   ethtool      ETHTOOL_MSG_FEATURES_GET for IFNAME
 * Prints the reply as one line of hex on stdout (xxd -r -p turns it back).
 * The keys are random bytes: no record is ever sent, the kernel only has to
 * accept them. kTLS replies need a kernel with kTLS: run it in the VM
 * (tests/ktls-vm/run.sh). Not a test; built by `make check` only.
 */
#include "config.h"

#include <sys/socket.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pgktls/nl.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

static int tcp_pair(int *a, int *b)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (l < 0 || bind(l, (void *)&sin, sizeof(sin)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (void *)&sin, &len) < 0)
		return -1;
	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (*a < 0 || connect(*a, (void *)&sin, sizeof(sin)) < 0)
		return -1;
	*b = accept(l, NULL, NULL);
	close(l);
	return *b < 0 ? -1 : 0;
}

static int attach(int fd, int kind)
{
	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0)
		return -errno;
	if (kind == 12) {
		struct tls12_crypto_info_aes_gcm_128 ci = { 0 };

		ci.info.version = TLS_1_2_VERSION;
		ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
		memset(ci.key, 0x42, sizeof(ci.key));
		if (setsockopt(fd, SOL_TLS, TLS_RX, &ci, sizeof(ci)) < 0 ||
		    setsockopt(fd, SOL_TLS, TLS_TX, &ci, sizeof(ci)) < 0)
			return -errno;
	} else if (kind == 13) {
		struct tls12_crypto_info_aes_gcm_256 ci = { 0 };

		ci.info.version = TLS_1_3_VERSION;
		ci.info.cipher_type = TLS_CIPHER_AES_GCM_256;
		memset(ci.key, 0x42, sizeof(ci.key));
		if (setsockopt(fd, SOL_TLS, TLS_TX, &ci, sizeof(ci)) < 0)
			return -errno;
	}
	return 0;
}

static void dump(const unsigned char *buf, ssize_t n)
{
	for (ssize_t i = 0; i < n; i++)
		printf("%02x", buf[i]);
	printf("\n");
}

int main(int argc, char **argv)
{
	static unsigned char buf[NL_REPLY_MAX];
	struct sockaddr_storage l, r;
	socklen_t ll = sizeof(l), rl = sizeof(r);
	struct nl_ctx *ctx;
	ssize_t n;
	int a, b, rc;

	if (argc < 2 || nl_open(&ctx) < 0) {
		fprintf(stderr, "usage: nl_record KIND [IFNAME] (see the source)\n");
		return 2;
	}
	if (!strcmp(argv[1], "ethtool")) {
		n = nl_ethtool_exchange(ctx, argc > 2 ? argv[2] : "lo", buf, sizeof(buf));
		goto out;
	}
	if (tcp_pair(&a, &b) < 0) {
		perror("tcp pair");
		return 1;
	}
	rc = 0;
	if (!strcmp(argv[1], "diag-tls12"))
		rc = attach(a, 12);
	else if (!strcmp(argv[1], "diag-tls13"))
		rc = attach(a, 13);
	else if (!strcmp(argv[1], "diag-ulp"))
		rc = attach(a, 0);
	if (rc < 0) {
		fprintf(stderr, "kTLS setup: %s\n", strerror(-rc));
		return 1;
	}
	getsockname(a, (void *)&l, &ll);
	getpeername(a, (void *)&r, &rl);
	if (!strcmp(argv[1], "diag-missing"))
		((struct sockaddr_in *)&r)->sin_port = htons(1);
	n = nl_diag_exchange(ctx, (void *)&l, (void *)&r, buf, sizeof(buf));
out:
	if (n < 0) {
		fprintf(stderr, "exchange: %s\n", strerror((int)-n));
		return 1;
	}
	dump(buf, n);
	nl_close(ctx);
	return 0;
}
