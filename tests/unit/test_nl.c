// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_nl.c - the netlink parsers against real kernel replies recorded in
 * tests/data/ (vm61-*: Debian's 6.1 kernel in the kTLS VM, recorded with
 * tests/unit/nl_record; host-*: this machine's kernel, which has no kTLS;
 * synth-*: a NIC that does the crypto, made by nl_record from the vm61 ones),
 * a hand-built ethtool reply for the bits no recorded NIC had, and live
 * queries where the kernel allows them.
 */
#include "config.h"

#include <sys/socket.h>
#include <linux/ethtool_netlink.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include "pgktls/nl.h"
#include "testlib.h"

static size_t load(const char *name, void *buf, size_t len)
{
	return testlib_read_data(TOP_SRCDIR, name, buf, len);
}

static char buf[NL_REPLY_MAX];

START_TEST(test_diag_tls12_both_sw)
{
	struct nl_sock_info si;
	size_t n = load("vm61-diag-tls12.nl", buf, sizeof(buf));

	ck_assert_int_eq(nl_diag_parse(buf, n, 0, &si), 0);
	ck_assert_uint_eq(si.state, 1);	/* TCP_ESTABLISHED */
	ck_assert(si.has_ulp);
	ck_assert_str_eq(si.ulp, "tls");
	ck_assert(si.tls);
	ck_assert_uint_eq(si.tls_version, TLS_1_2_VERSION);
	ck_assert_uint_eq(si.tls_cipher, TLS_CIPHER_AES_GCM_128);
	ck_assert_uint_eq(si.txconf, NL_TLS_CONF_SW);
	ck_assert_uint_eq(si.rxconf, NL_TLS_CONF_SW);
	ck_assert_str_eq(nl_tls_conf_name(si.txconf), "sw");
	ck_assert_str_eq(nl_tls_cipher_name(si.tls_cipher), "aes-gcm-128");
	ck_assert_str_eq(nl_tls_version_name(si.tls_version), "TLSv1.2");
	ck_assert(!si.zc_ro_tx);
}
END_TEST

START_TEST(test_diag_tls13_tx_only)
{
	struct nl_sock_info si;
	size_t n = load("vm61-diag-tls13.nl", buf, sizeof(buf));

	ck_assert_int_eq(nl_diag_parse(buf, n, 0, &si), 0);
	ck_assert(si.tls);
	ck_assert_uint_eq(si.tls_version, TLS_1_3_VERSION);
	ck_assert_uint_eq(si.tls_cipher, TLS_CIPHER_AES_GCM_256);
	ck_assert_uint_eq(si.txconf, NL_TLS_CONF_SW);
	ck_assert_uint_eq(si.rxconf, NL_TLS_CONF_BASE);
	ck_assert_str_eq(nl_tls_conf_name(si.rxconf), "none");
	ck_assert_str_eq(nl_tls_cipher_name(si.tls_cipher), "aes-gcm-256");
}
END_TEST

/* A socket whose NIC does the crypto (TLS 1.2, both ways; nl_record synth-diag-hw). */
START_TEST(test_diag_tls12_hw)
{
	struct nl_sock_info si;
	size_t n = load("synth-diag-tls12-hw.nl", buf, sizeof(buf));

	ck_assert_int_eq(nl_diag_parse(buf, n, 0, &si), 0);
	ck_assert(si.tls);
	ck_assert_str_eq(si.ulp, "tls");
	ck_assert_uint_eq(si.tls_version, TLS_1_2_VERSION);
	ck_assert_uint_eq(si.tls_cipher, TLS_CIPHER_AES_GCM_128);
	ck_assert_uint_eq(si.txconf, NL_TLS_CONF_HW);
	ck_assert_uint_eq(si.rxconf, NL_TLS_CONF_HW);
	ck_assert_str_eq(nl_tls_conf_name(si.txconf), "hw");
	ck_assert_str_eq(nl_tls_conf_name(NL_TLS_CONF_HW_RECORD), "hw_record");
	/* The kernel sends TLS_INFO_ZC_RO_TX only with TX in hardware. */
	ck_assert(si.zc_ro_tx);
	ck_assert(!si.rx_no_pad);
	/* The software reply it was made from says sw: the change is what the test sees. */
	n = load("vm61-diag-tls12.nl", buf, sizeof(buf));
	ck_assert_int_eq(nl_diag_parse(buf, n, 0, &si), 0);
	ck_assert_uint_eq(si.txconf, NL_TLS_CONF_SW);
}
END_TEST

START_TEST(test_diag_ulp_without_keys)
{
	struct nl_sock_info si;
	size_t n = load("vm61-diag-ulp.nl", buf, sizeof(buf));

	ck_assert_int_eq(nl_diag_parse(buf, n, 0, &si), 0);
	ck_assert(si.has_ulp);
	ck_assert_str_eq(si.ulp, "tls");
	ck_assert_uint_eq(si.txconf, NL_TLS_CONF_BASE);
	ck_assert_uint_eq(si.rxconf, NL_TLS_CONF_BASE);
}
END_TEST

START_TEST(test_diag_plain)
{
	static const char *const files[] = { "vm61-diag-plain.nl", "host-diag-plain.nl" };
	struct nl_sock_info si;

	for (size_t i = 0; i < 2; i++) {
		size_t n = load(files[i], buf, sizeof(buf));

		ck_assert_int_eq(nl_diag_parse(buf, n, 0, &si), 0);
		ck_assert_uint_eq(si.state, 1);
		ck_assert(!si.has_ulp);
		ck_assert(!si.tls);
		ck_assert_uint_eq(si.txconf, NL_TLS_CONF_UNKNOWN);
	}
}
END_TEST

START_TEST(test_diag_missing_and_seq)
{
	struct nl_sock_info si;
	size_t n = load("vm61-diag-missing.nl", buf, sizeof(buf));
	const struct nlmsghdr *nlh = (const void *)buf;

	ck_assert_int_eq(nl_diag_parse(buf, n, 0, &si), -ENOENT);
	/* A reply to another request (wrong sequence number) is refused. */
	n = load("vm61-diag-tls12.nl", buf, sizeof(buf));
	ck_assert_int_lt(nl_diag_parse(buf, n, nlh->nlmsg_seq + 1, &si), 0);
	ck_assert_int_eq(nl_diag_parse(buf, n, nlh->nlmsg_seq, &si), 0);
}
END_TEST

START_TEST(test_diag_truncated)
{
	struct nl_sock_info si;
	size_t n = load("vm61-diag-tls12.nl", buf, sizeof(buf));
	struct nlmsghdr *nlh = (void *)buf;

	/* Every truncation is refused or parsed, never read past the end. */
	for (size_t cut = 0; cut < n; cut++)
		ck_assert_int_ne(nl_diag_parse(buf, cut, 0, &si), 0);
	/* A header claiming more than there is. */
	nlh->nlmsg_len = (uint32_t)n + 64;
	ck_assert_int_ne(nl_diag_parse(buf, n, 0, &si), 0);
	/* A payload too short for inet_diag_msg. */
	nlh->nlmsg_len = sizeof(*nlh) + 8;
	ck_assert_int_eq(nl_diag_parse(buf, nlh->nlmsg_len, 0, &si), -EPROTO);
}
END_TEST

/*
 * Regression (tests/fuzz/fuzz_nl): an NLMSG_ERROR whose code is INT_MIN,
 * which libmnl negates into errno (overflow); and other codes that are no
 * errno. Each is a malformed reply, never a negated errno from us.
 */
START_TEST(test_error_code_not_an_errno)
{
	static const int32_t codes[] = { INT32_MIN, 100000, -100000 };
	struct {
		struct nlmsghdr nlh;
		struct nlmsgerr err;
	} msg;
	struct nl_sock_info si;

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		memset(&msg, 0, sizeof(msg));
		msg.nlh.nlmsg_len = sizeof(msg);
		msg.nlh.nlmsg_type = NLMSG_ERROR;
		msg.err.error = codes[i];
		ck_assert_int_eq(nl_diag_parse(&msg, sizeof(msg), 0, &si), -EPROTO);
	}
	/* A real errno still comes through as itself. */
	msg.err.error = -EPERM;
	ck_assert_int_eq(nl_diag_parse(&msg, sizeof(msg), 0, &si), -EPERM);
}
END_TEST

/*
 * Regression (tests/fuzz/fuzz_nl): a second message whose length word is
 * above INT_MAX passed libmnl's signed check and sent the walk out of the
 * buffer (SIGSEGV). Every parser must refuse such a chain.
 */
START_TEST(test_huge_second_message)
{
	static const char crash[] =
		TOP_SRCDIR "/tests/fuzz/corpus/nl/crash-huge-second-nlmsg_len.nl";
	struct nl_sock_info si;
	struct nl_nic_tls nic;
	struct nlmsghdr *second;
	uint16_t id;
	size_t n = load("vm61-diag-tls12.nl", buf, sizeof(buf));
	FILE *f;

	ck_assert_uint_lt(n + 64, sizeof(buf));
	second = (void *)(buf + NLMSG_ALIGN(n));
	memset(second, 0xe3, 64);
	n = NLMSG_ALIGN(n) + 64;
	ck_assert_int_eq(nl_diag_parse(buf, n, 0, &si), -EPROTO);
	ck_assert_int_eq(nl_genl_family_parse(buf, n, 0, &id), -EPROTO);
	ck_assert_int_eq(nl_ethtool_parse(buf, n, 0, &nic), -EPROTO);

	/* The input the fuzzer found, byte for byte. */
	f = fopen(crash, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", crash);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	ck_assert_int_eq(nl_diag_parse(buf, n, 0, &si), -EPROTO);
	ck_assert_int_eq(nl_genl_family_parse(buf, n, 0, &id), -EPROTO);
	ck_assert_int_eq(nl_ethtool_parse(buf, n, 0, &nic), -EPROTO);
}
END_TEST

START_TEST(test_ethtool_recorded)
{
	static const char *const files[] = { "vm61-ethtool-lo.nl", "host-ethtool-eth0.nl" };
	struct nl_nic_tls t;

	for (size_t i = 0; i < 2; i++) {
		size_t n = load(files[i], buf, sizeof(buf));

		memset(&t, 0xff, sizeof(t));
		ck_assert_int_eq(nl_ethtool_parse(buf, n, 0, &t), 0);
		/* Neither virtual NIC offloads TLS. */
		ck_assert(!t.hw_tx && !t.hw_rx && !t.hw_record);
		ck_assert(!t.on_tx && !t.on_rx && !t.on_record);
	}
}
END_TEST

/* A NIC with all three TLS features, tx and rx switched on (nl_record synth-ethtool-hw). */
START_TEST(test_ethtool_tls_nic_reply)
{
	struct nl_nic_tls t;
	size_t n = load("synth-ethtool-eth0-tls-hw.nl", buf, sizeof(buf));

	ck_assert_int_eq(nl_ethtool_parse(buf, n, 0, &t), 0);
	ck_assert(t.hw_tx && t.hw_rx && t.hw_record);
	ck_assert(t.on_tx && t.on_rx);
	ck_assert(!t.on_record);
}
END_TEST

static void put_bit(struct nlmsghdr *nlh, unsigned idx, const char *name, bool value)
{
	struct nlattr *bit = mnl_attr_nest_start(nlh, ETHTOOL_A_BITSET_BITS_BIT);

	mnl_attr_put_u32(nlh, ETHTOOL_A_BITSET_BIT_INDEX, idx);
	mnl_attr_put_strz(nlh, ETHTOOL_A_BITSET_BIT_NAME, name);
	if (value)
		mnl_attr_put(nlh, ETHTOOL_A_BITSET_BIT_VALUE, 0, NULL);
	mnl_attr_nest_end(nlh, bit);
}

/* A FEATURES_GET reply as a TLS-capable NIC would send it, built by hand. */
static size_t build_nic_reply(char *out)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(out);
	struct genlmsghdr *g;
	struct nlattr *set, *bits;

	nlh->nlmsg_type = 0x1b;	/* some dynamic family id */
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = ETHTOOL_MSG_FEATURES_GET_REPLY;
	g->version = 1;
	mnl_attr_put(nlh, 0x7f, 4, "junk");	/* unknown attribute: skipped */
	/* hw: no mask, so every listed bit is supported. */
	set = mnl_attr_nest_start(nlh, ETHTOOL_A_FEATURES_HW);
	mnl_attr_put(nlh, ETHTOOL_A_BITSET_NOMASK, 0, NULL);
	mnl_attr_put_u32(nlh, ETHTOOL_A_BITSET_SIZE, 64);
	bits = mnl_attr_nest_start(nlh, ETHTOOL_A_BITSET_BITS);
	put_bit(nlh, 3, "tx-checksum-ipv4", false);
	put_bit(nlh, 40, "tls-hw-tx-offload", false);
	put_bit(nlh, 41, "tls-hw-rx-offload", false);
	mnl_attr_nest_end(nlh, bits);
	mnl_attr_nest_end(nlh, set);
	/* active, with a mask: only bits with VALUE are on. */
	set = mnl_attr_nest_start(nlh, ETHTOOL_A_FEATURES_ACTIVE);
	mnl_attr_put_u32(nlh, ETHTOOL_A_BITSET_SIZE, 64);
	bits = mnl_attr_nest_start(nlh, ETHTOOL_A_BITSET_BITS);
	put_bit(nlh, 40, "tls-hw-tx-offload", true);
	put_bit(nlh, 41, "tls-hw-rx-offload", false);
	put_bit(nlh, 45, "tls-hw-record", false);
	mnl_attr_nest_end(nlh, bits);
	mnl_attr_nest_end(nlh, set);
	return nlh->nlmsg_len;
}

START_TEST(test_ethtool_tls_nic)
{
	struct nl_nic_tls t;
	size_t n = build_nic_reply(buf);

	ck_assert_int_eq(nl_ethtool_parse(buf, n, 0, &t), 0);
	ck_assert(t.hw_tx);
	ck_assert(t.hw_rx);
	ck_assert(!t.hw_record);
	ck_assert(t.on_tx);
	ck_assert(!t.on_rx);
	ck_assert(!t.on_record);
	ck_assert_int_eq(nl_ethtool_parse(buf, n / 2, 0, &t), -EPROTO);
}
END_TEST

START_TEST(test_tls_stat)
{
	struct nl_tls_stat s;
	size_t n = load("vm61-tls_stat.txt", buf, sizeof(buf));

	ck_assert_int_eq(nl_tls_stat_parse(buf, n, &s), 0);
	ck_assert_uint_eq(s.n, 12);
	ck_assert_str_eq(s.v[0].name, "TlsCurrTxSw");
	ck_assert_str_eq(s.v[4].name, "TlsTxSw");
	ck_assert_uint_eq(s.v[4].value, 2);
	ck_assert_str_eq(s.v[5].name, "TlsRxSw");
	ck_assert_uint_eq(s.v[5].value, 1);
	ck_assert_str_eq(s.v[11].name, "TlsRxNoPadViolation");
	ck_assert_int_eq(nl_tls_stat_parse("garbage\n\n", 9, &s), -EPROTO);
}
END_TEST

/* Live: this kernel's own answers (kTLS or not, the plain parts always work). */
START_TEST(test_live_queries)
{
	struct sockaddr_in sin = { .sin_family = AF_INET }, l, r;
	socklen_t len = sizeof(sin), ll = sizeof(l), rl = sizeof(r);
	struct nl_ctx *ctx;
	struct nl_sock_info si;
	struct nl_nic_tls t;
	int ls, a, b, rc;

	ck_assert_int_eq(nl_open(&ctx), 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(ls, (void *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(ls, 1), 0);
	ck_assert_int_eq(getsockname(ls, (void *)&sin, &len), 0);
	a = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_eq(connect(a, (void *)&sin, sizeof(sin)), 0);
	b = accept(ls, NULL, NULL);
	ck_assert_int_ge(b, 0);
	ck_assert_int_eq(getsockname(a, (void *)&l, &ll), 0);
	ck_assert_int_eq(getpeername(a, (void *)&r, &rl), 0);
	rc = nl_diag_query(ctx, (void *)&l, (void *)&r, &si);
	if (rc == -ENOENT || rc == -EOPNOTSUPP) {
		/* No inet_diag/tcp_diag here (a container, a minimal kernel). */
		fprintf(stderr, "test_nl: sock_diag unavailable here (%s)\n", strerror(-rc));
	} else {
		ck_assert_int_eq(rc, 0);
		ck_assert_uint_eq(si.state, 1);
		ck_assert(!si.tls);
		/* The same 4-tuple from the other end is the other socket. */
		r.sin_port = htons(1);
		ck_assert_int_eq(nl_diag_query(ctx, (void *)&l, (void *)&r, &si), -ENOENT);
	}
	rc = nl_ethtool_query(ctx, "lo", &t);
	ck_assert_msg(rc == 0 || rc == -EOPNOTSUPP, "ethtool lo: %s", strerror(-rc));
	if (rc == 0)
		ck_assert(!t.hw_tx);
	rc = nl_ethtool_query(ctx, "no-such-if0", &t);
	ck_assert_int_lt(rc, 0);
	close(a);
	close(b);
	close(ls);
	nl_close(ctx);
}
END_TEST

static Suite *nl_suite(void)
{
	Suite *s = suite_create("nl");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_diag_tls12_both_sw);
	tcase_add_test(tc, test_diag_tls13_tx_only);
	tcase_add_test(tc, test_diag_tls12_hw);
	tcase_add_test(tc, test_diag_ulp_without_keys);
	tcase_add_test(tc, test_diag_plain);
	tcase_add_test(tc, test_diag_missing_and_seq);
	tcase_add_test(tc, test_diag_truncated);
	tcase_add_test(tc, test_huge_second_message);
	tcase_add_test(tc, test_error_code_not_an_errno);
	tcase_add_test(tc, test_ethtool_recorded);
	tcase_add_test(tc, test_ethtool_tls_nic);
	tcase_add_test(tc, test_ethtool_tls_nic_reply);
	tcase_add_test(tc, test_tls_stat);
	tcase_add_test(tc, test_live_queries);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(nl_suite());
}
