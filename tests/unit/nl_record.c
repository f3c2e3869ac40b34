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
 *
 * No NIC here offloads TLS, so the hardware replies are made from recorded
 * software ones, changing only what a TLS-offloading NIC's kernel changes,
 * with the kernel's own uapi numbers (net/tls/tls_main.c tls_get_info(),
 * net/ethtool/features.c):
 *   synth-diag-hw FILE     FILE (a recorded diag-tls12 reply) as the kernel
 *                          answers for a socket whose NIC does the crypto:
 *                          TLS_INFO_TXCONF and RXCONF TLS_CONF_HW, and the
 *                          TLS_INFO_ZC_RO_TX flag (sent only with TX in hw)
 *   synth-ethtool-hw FILE IFNAME  FILE (a recorded ethtool reply) for a NIC
 *                          that has tls-hw-tx-offload, tls-hw-rx-offload and
 *                          tls-hw-record, with the first two switched on
 *                          (`ethtool -K IFNAME tls-hw-tx-offload on
 *                          tls-hw-rx-offload on`), renamed IFNAME
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

#include <libmnl/libmnl.h>
#include <linux/ethtool_netlink.h>
#include <linux/genetlink.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>

#include "pgktls/nl.h"
#include "pgktls/tls_uapi.h"

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

/* Linux 6.1's NETIF_F_HW_TLS_*_BIT: the index a real reply carries (the name is what counts). */
#define FEAT_TLS_TX 53
#define FEAT_TLS_RX 54
#define FEAT_TLS_RECORD 56

static size_t read_file(const char *path, void *buf, size_t len)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		return 0;
	}
	n = fread(buf, 1, len, f);
	fclose(f);
	return n;
}

/* Copy one attribute as it is, its type's flag bits included. */
static void copy_attr(struct nlmsghdr *nlh, const struct nlattr *a)
{
	mnl_attr_put(nlh, a->nla_type, mnl_attr_get_payload_len(a), mnl_attr_get_payload(a));
}

static void synth_tls_info(struct nlmsghdr *nlh, const struct nlattr *tls)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, tls->nla_type & NLA_TYPE_MASK);
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, tls) {
		uint16_t t = mnl_attr_get_type(a);

		if (t == TLS_INFO_TXCONF || t == TLS_INFO_RXCONF)
			mnl_attr_put_u16(nlh, t, TLS_CONF_HW);
		else if (t != TLS_INFO_ZC_RO_TX)
			copy_attr(nlh, a);
	}
	mnl_attr_put(nlh, TLS_INFO_ZC_RO_TX, 0, NULL);
	mnl_attr_nest_end(nlh, nest);
}

static ssize_t synth_diag_hw(const unsigned char *in, size_t n, unsigned char *out)
{
	const struct nlmsghdr *src = (const void *)in;
	struct nlmsghdr *nlh;
	const struct nlattr *a, *u;
	bool done = false;

	if (n < sizeof(*src) || !mnl_nlmsg_ok(src, (int)n) ||
	    src->nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return -EPROTO;
	nlh = mnl_nlmsg_put_header(out);
	*nlh = *src;
	nlh->nlmsg_len = MNL_NLMSG_HDRLEN;
	memcpy(mnl_nlmsg_put_extra_header(nlh, sizeof(struct inet_diag_msg)),
	       mnl_nlmsg_get_payload(src), sizeof(struct inet_diag_msg));
	mnl_attr_for_each(a, src, sizeof(struct inet_diag_msg)) {
		struct nlattr *nest;

		if (mnl_attr_get_type(a) != INET_DIAG_ULP_INFO) {
			copy_attr(nlh, a);
			continue;
		}
		nest = mnl_attr_nest_start(nlh, a->nla_type & NLA_TYPE_MASK);
		mnl_attr_for_each_nested(u, a) {
			if (mnl_attr_get_type(u) == INET_ULP_INFO_TLS) {
				synth_tls_info(nlh, u);
				done = true;
			} else {
				copy_attr(nlh, u);
			}
		}
		mnl_attr_nest_end(nlh, nest);
	}
	return done ? (ssize_t)nlh->nlmsg_len : -ENOENT;
}

static const struct {
	uint32_t idx;
	const char *name;
} tls_feats[] = {
	{ FEAT_TLS_TX, "tls-hw-tx-offload" },
	{ FEAT_TLS_RX, "tls-hw-rx-offload" },
	{ FEAT_TLS_RECORD, "tls-hw-record" },
};

/* One bit of a verbose bitset; with a mask, VALUE says it is set. */
static void put_bit(struct nlmsghdr *nlh, uint32_t idx, const char *name, bool value)
{
	struct nlattr *bit = mnl_attr_nest_start(nlh, ETHTOOL_A_BITSET_BITS_BIT);

	mnl_attr_put_u32(nlh, ETHTOOL_A_BITSET_BIT_INDEX, idx);
	mnl_attr_put_strz(nlh, ETHTOOL_A_BITSET_BIT_NAME, name);
	if (value)
		mnl_attr_put(nlh, ETHTOOL_A_BITSET_BIT_VALUE, 0, NULL);
	mnl_attr_nest_end(nlh, bit);
}

/* Which tls_feats[] entry a BITS_BIT nest names, or -1. */
static int tls_feat_of(const struct nlattr *bit)
{
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, bit) {
		if (mnl_attr_get_type(a) != ETHTOOL_A_BITSET_BIT_NAME)
			continue;
		for (int i = 0; i < 3; i++)
			if (!strcmp(mnl_attr_get_str(a), tls_feats[i].name))
				return i;
	}
	return -1;
}

/*
 * A verbose bitset with the first @n_on TLS bits set. With a mask (hw: every
 * feature listed, VALUE on the set ones) the listed TLS bits get VALUE; without
 * one (the kernel lists set bits only) they are added.
 */
static void synth_bitset(struct nlmsghdr *nlh, const struct nlattr *set, int n_on)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, set->nla_type & NLA_TYPE_MASK), *bits;
	bool seen[3] = { false, false, false };
	const struct nlattr *a, *b;
	bool nomask = false;

	mnl_attr_for_each_nested(a, set)
		nomask |= mnl_attr_get_type(a) == ETHTOOL_A_BITSET_NOMASK;
	mnl_attr_for_each_nested(a, set) {
		if (mnl_attr_get_type(a) != ETHTOOL_A_BITSET_BITS) {
			copy_attr(nlh, a);
			continue;
		}
		bits = mnl_attr_nest_start(nlh, a->nla_type & NLA_TYPE_MASK);
		mnl_attr_for_each_nested(b, a) {
			int i = tls_feat_of(b);

			if (i < 0) {
				copy_attr(nlh, b);
				continue;
			}
			seen[i] = true;
			if (i < n_on || !nomask)
				put_bit(nlh, tls_feats[i].idx, tls_feats[i].name,
					i < n_on && !nomask);
		}
		for (int i = 0; i < n_on; i++)
			if (!seen[i])
				put_bit(nlh, tls_feats[i].idx, tls_feats[i].name, !nomask);
		mnl_attr_nest_end(nlh, bits);
	}
	mnl_attr_nest_end(nlh, nest);
}

static void synth_header(struct nlmsghdr *nlh, const struct nlattr *hdr, const char *ifname)
{
	struct nlattr *nest = mnl_attr_nest_start(nlh, hdr->nla_type & NLA_TYPE_MASK);
	const struct nlattr *a;

	mnl_attr_for_each_nested(a, hdr) {
		if (mnl_attr_get_type(a) == ETHTOOL_A_HEADER_DEV_NAME)
			mnl_attr_put_strz(nlh, ETHTOOL_A_HEADER_DEV_NAME, ifname);
		else
			copy_attr(nlh, a);
	}
	mnl_attr_nest_end(nlh, nest);
}

static ssize_t synth_ethtool_hw(const unsigned char *in, size_t n, const char *ifname,
				unsigned char *out)
{
	const struct nlmsghdr *src = (const void *)in;
	struct nlmsghdr *nlh;
	const struct nlattr *a;

	if (n < sizeof(*src) || !mnl_nlmsg_ok(src, (int)n) || src->nlmsg_type < NLMSG_MIN_TYPE)
		return -EPROTO;
	nlh = mnl_nlmsg_put_header(out);
	*nlh = *src;
	nlh->nlmsg_len = MNL_NLMSG_HDRLEN;
	memcpy(mnl_nlmsg_put_extra_header(nlh, sizeof(struct genlmsghdr)),
	       mnl_nlmsg_get_payload(src), sizeof(struct genlmsghdr));
	mnl_attr_for_each(a, src, sizeof(struct genlmsghdr)) {
		switch (mnl_attr_get_type(a)) {
		case ETHTOOL_A_FEATURES_HEADER:
			synth_header(nlh, a, ifname);
			break;
		case ETHTOOL_A_FEATURES_HW:
			synth_bitset(nlh, a, 3);	/* supported: all three */
			break;
		case ETHTOOL_A_FEATURES_WANTED:
		case ETHTOOL_A_FEATURES_ACTIVE:
			synth_bitset(nlh, a, 2);	/* switched on: tx and rx */
			break;
		default:
			copy_attr(nlh, a);
		}
	}
	return (ssize_t)nlh->nlmsg_len;
}

int main(int argc, char **argv)
{
	static unsigned char buf[NL_REPLY_MAX];
	struct sockaddr_storage l, r;
	socklen_t ll = sizeof(l), rl = sizeof(r);
	struct nl_ctx *ctx;
	ssize_t n;
	int a, b, rc;

	if (argc >= 3 && !strncmp(argv[1], "synth-", 6)) {
		static unsigned char in[NL_REPLY_MAX];
		size_t len = read_file(argv[2], in, sizeof(in));

		n = -EINVAL;
		if (len && !strcmp(argv[1], "synth-diag-hw"))
			n = synth_diag_hw(in, len, buf);
		else if (len && argc >= 4 && !strcmp(argv[1], "synth-ethtool-hw"))
			n = synth_ethtool_hw(in, len, argv[3], buf);
		if (n < 0) {
			fprintf(stderr, "%s: %s\n", argv[1], strerror((int)-n));
			return 1;
		}
		dump(buf, n);
		return 0;
	}
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
