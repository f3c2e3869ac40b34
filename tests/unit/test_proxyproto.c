// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_proxyproto.c - the PROXY protocol parser (v1 text, v2 binary) and the
 * CIDR lists that decide who may send it.
 *
 * Every complete header is also fed one byte at a time, each prefix copied
 * into a heap block of exactly its size, so a read past the end shows up
 * under ASan or valgrind and a prefix never gives any answer but NEED_MORE.
 */
#include "config.h"

#include "pgktls/proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pgktls/sock.h"
#include "testlib.h"

/* A header under construction. */
struct pkt {
	uint8_t b[70000];
	size_t n;
};

static void put(struct pkt *p, const void *v, size_t n)
{
	ck_assert_uint_le(p->n + n, sizeof(p->b));
	memcpy(p->b + p->n, v, n);
	p->n += n;
}

/* v2 fixed part: signature, ver_cmd, family, length. */
static void v2_begin(struct pkt *p, uint8_t ver_cmd, uint8_t fam, uint16_t len)
{
	uint8_t h[4] = { ver_cmd, fam, (uint8_t)(len >> 8), (uint8_t)len };

	p->n = 0;
	put(p, PROXYPROTO_V2_SIG, PROXYPROTO_V2_SIG_LEN);
	put(p, h, sizeof(h));
}

/* Parse a copy of exactly @len bytes of @buf. */
static int parse_exact(const uint8_t *buf, size_t len, struct proxyproto_hdr *h,
		       const char **why)
{
	uint8_t *copy = malloc(len ? len : 1);
	int ret;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, buf, len);
	ret = proxyproto_parse(copy, len, h, why);
	free(copy);
	return ret;
}

/* @p parses as a complete header of @hdrlen bytes, and each prefix asks for more. */
static void parse_ok(const struct pkt *p, size_t hdrlen, struct proxyproto_hdr *h)
{
	const char *why = NULL;

	for (size_t i = 0; i < hdrlen; i++) {
		struct proxyproto_hdr scratch;

		ck_assert_msg(parse_exact(p->b, i, &scratch, &why) == PROXYPROTO_NEED_MORE,
			      "prefix of %zu bytes", i);
	}
	ck_assert_int_eq(parse_exact(p->b, p->n, h, &why), 0);
	ck_assert_uint_eq(h->len, hdrlen);
}

static int parse_str(const char *s, struct proxyproto_hdr *h, const char **why)
{
	return parse_exact((const uint8_t *)s, strlen(s), h, why);
}

static void check_addr(const struct sockaddr_storage *ss, const char *want)
{
	char buf[SOCK_ADDR_STRLEN];

	sock_addr_str((const struct sockaddr *)ss,
		      ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
					       : sizeof(struct sockaddr_in6),
		      buf, sizeof(buf));
	ck_assert_str_eq(buf, want);
}

/* ---- version 1 ---- */

START_TEST(test_v1_tcp4)
{
	static const char line[] = "PROXY TCP4 192.0.2.10 198.51.100.1 56324 6432\r\n";
	struct proxyproto_hdr h;
	struct pkt p = { .n = 0 };

	put(&p, line, strlen(line));
	put(&p, "\x00\x00\x00\x08\x04\xd2\x16\x2f", 8);	/* an SSLRequest follows */
	parse_ok(&p, strlen(line), &h);
	ck_assert_uint_eq(h.version, 1);
	ck_assert(!h.local);
	ck_assert_uint_eq(h.addrlen, sizeof(struct sockaddr_in));
	check_addr(&h.src, "192.0.2.10:56324");
	check_addr(&h.dst, "198.51.100.1:6432");
}
END_TEST

START_TEST(test_v1_tcp6)
{
	static const char line[] = "PROXY TCP6 2001:db8::1 ::1 0 65535\r\n";
	struct proxyproto_hdr h;
	struct pkt p = { .n = 0 };

	put(&p, line, strlen(line));
	parse_ok(&p, strlen(line), &h);
	ck_assert(!h.local);
	ck_assert_uint_eq(h.addrlen, sizeof(struct sockaddr_in6));
	check_addr(&h.src, "[2001:db8::1]:0");
	check_addr(&h.dst, "[::1]:65535");
}
END_TEST

START_TEST(test_v1_unknown)
{
	static const char *const lines[] = {
		"PROXY UNKNOWN\r\n",
		"PROXY UNKNOWN ffff::1 ::2 1 2\r\n",	/* the rest is ignored, per the spec */
		"PROXY UNKNOWN whatever the sender wants\r\n",
	};
	struct proxyproto_hdr h;

	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(lines); i++) {
		struct pkt p = { .n = 0 };

		put(&p, lines[i], strlen(lines[i]));
		parse_ok(&p, strlen(lines[i]), &h);
		ck_assert_uint_eq(h.version, 1);
		ck_assert(h.local);
		ck_assert_uint_eq(h.addrlen, 0);
	}
}
END_TEST

START_TEST(test_v1_longest)
{
	/* The spec's worst case, exactly 107 bytes; the longest TCP6 line is 104. */
	static const char worst[] = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
				    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	static const char tcp6[] = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
				   "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	struct proxyproto_hdr h;
	struct pkt p = { .n = 0 };

	ck_assert_uint_eq(strlen(worst), PROXYPROTO_V1_MAX_LEN);
	put(&p, worst, strlen(worst));
	parse_ok(&p, strlen(worst), &h);
	ck_assert(h.local);
	p.n = 0;
	put(&p, tcp6, strlen(tcp6));
	parse_ok(&p, strlen(tcp6), &h);
	check_addr(&h.src, "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}
END_TEST

static const struct {
	const char *in;
	int ret;
} v1_bad[] = {
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", -EPROTO },		/* LF alone */
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", -EPROTO },	/* stray CR */
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", -EPROTO },		/* four fields */
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", -EPROTO },	/* six */
	{ "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", -EPROTO },	/* two spaces */
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", -EPROTO },	/* trailing space */
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", -EPROTO },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 123456\r\n", -EPROTO },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", -EPROTO },
	{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n", -EPROTO },
	{ "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", -EPROTO },
	{ "PROXY TCP4 ::1 ::1 1 2\r\n", -EPROTO },		/* IPv6 in TCP4 */
	{ "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", -EPROTO },	/* IPv4 in TCP6 */
	{ "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", -EPROTO },
	{ "PROXY UNKNOWNX\r\n", -EPROTO },
	{ "PROXY \r\n", -EPROTO },
	{ "PROXY\r\n", -ENOMSG },				/* no space: not a header */
	{ "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", -EPROTO },
	{ "GET / HTTP/1.0\r\n", -ENOMSG },
	{ "\x00\x00\x00\x08\x04\xd2\x16\x2f", -ENOMSG },		/* a bare SSLRequest */
	{ "\x16\x03\x01\x02\x00", -ENOMSG },			/* a bare ClientHello */
	{ "Proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", -ENOMSG },
};

START_TEST(test_v1_bad)
{
	const char *in = v1_bad[_i].in, *why = NULL;
	/* The SSLRequest and the ClientHello hold NULs: their length is explicit. */
	size_t len = in[0] == 0 ? 8 : in[0] == 0x16 ? 5 : strlen(in);
	struct proxyproto_hdr h;

	memset(&h, 0x5a, sizeof(h));
	ck_assert_int_eq(parse_exact((const uint8_t *)in, len, &h, &why), v1_bad[_i].ret);
	ck_assert_ptr_nonnull(why);
	ck_assert(why[0]);
	/* Untouched on failure. */
	ck_assert_uint_eq(h.version, 0x5a5a5a5a);
}
END_TEST

START_TEST(test_v1_too_long)
{
	char line[200];
	const char *why = NULL;
	struct proxyproto_hdr h;

	/* 107 bytes without a LF: refused; 106 still might become a header. */
	memset(line, 'a', sizeof(line));
	memcpy(line, "PROXY UNKNOWN ", 14);
	ck_assert_int_eq(parse_exact((uint8_t *)line, 106, &h, &why), PROXYPROTO_NEED_MORE);
	ck_assert_int_eq(parse_exact((uint8_t *)line, 107, &h, &why), -E2BIG);
	ck_assert_int_eq(parse_exact((uint8_t *)line, sizeof(line), &h, &why), -E2BIG);
	/* A LF past byte 107 does not count. */
	line[120] = '\r';
	line[121] = '\n';
	ck_assert_int_eq(parse_exact((uint8_t *)line, 122, &h, &why), -E2BIG);
	/* Exactly 107 with its CRLF is fine. */
	line[105] = '\r';
	line[106] = '\n';
	ck_assert_int_eq(parse_exact((uint8_t *)line, 107, &h, &why), 0);
	ck_assert(h.local);
	ck_assert_uint_eq(h.len, 107);
}
END_TEST

START_TEST(test_short_inputs)
{
	struct proxyproto_hdr h;
	const char *why = NULL;

	ck_assert_int_eq(proxyproto_parse(NULL, 0, &h, &why), PROXYPROTO_NEED_MORE);
	ck_assert_int_eq(parse_str("P", &h, &why), PROXYPROTO_NEED_MORE);
	ck_assert_int_eq(parse_str("PROX", &h, &why), PROXYPROTO_NEED_MORE);
	ck_assert_int_eq(parse_str("PROXY ", &h, &why), PROXYPROTO_NEED_MORE);
	ck_assert_int_eq(parse_str("PROXY TCP4 1.2.3.4", &h, &why), PROXYPROTO_NEED_MORE);
	ck_assert_int_eq(parse_str("PX", &h, &why), -ENOMSG);
	ck_assert_int_eq(parse_str("\r", &h, &why), PROXYPROTO_NEED_MORE);
	ck_assert_int_eq(parse_str("\r\n\r\n", &h, &why), PROXYPROTO_NEED_MORE);
	ck_assert_int_eq(parse_str("\r\n\n", &h, &why), -ENOMSG);
}
END_TEST

/* ---- version 2 ---- */

START_TEST(test_v2_inet)
{
	static const uint8_t addrs[12] = { 192, 0, 2, 10, 198, 51, 100, 1, 0xdc, 0x04, 0x19, 0x20 };
	struct proxyproto_hdr h;
	struct pkt p;

	v2_begin(&p, 0x21, 0x11, sizeof(addrs));
	put(&p, addrs, sizeof(addrs));
	put(&p, "\x16\x03\x01", 3);	/* a ClientHello follows */
	parse_ok(&p, 28, &h);
	ck_assert_uint_eq(h.version, 2);
	ck_assert(!h.local);
	check_addr(&h.src, "192.0.2.10:56324");
	check_addr(&h.dst, "198.51.100.1:6432");
}
END_TEST

START_TEST(test_v2_inet6)
{
	uint8_t addrs[36] = { 0x20, 0x01, 0x0d, 0xb8 };
	struct proxyproto_hdr h;
	struct pkt p;

	addrs[15] = 1;		/* src 2001:db8::1 */
	addrs[31] = 2;		/* dst ::2 */
	addrs[32] = 0xff;	/* sport 65535 */
	addrs[33] = 0xff;
	addrs[35] = 1;		/* dport 1 */
	v2_begin(&p, 0x21, 0x21, sizeof(addrs));
	put(&p, addrs, sizeof(addrs));
	parse_ok(&p, 52, &h);
	ck_assert(!h.local);
	ck_assert_uint_eq(h.addrlen, sizeof(struct sockaddr_in6));
	check_addr(&h.src, "[2001:db8::1]:65535");
	check_addr(&h.dst, "[::2]:1");
}
END_TEST

START_TEST(test_v2_local_and_unspec)
{
	uint8_t addrs[12] = { 10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2 };
	struct proxyproto_hdr h;
	struct pkt p;

	/* LOCAL, no addresses: HAProxy's health check with check-send-proxy. */
	v2_begin(&p, 0x20, 0x00, 0);
	parse_ok(&p, 16, &h);
	ck_assert(h.local);
	ck_assert_uint_eq(h.addrlen, 0);
	/* LOCAL with an address block: still ignored, whatever the family byte. */
	v2_begin(&p, 0x20, 0x11, sizeof(addrs));
	put(&p, addrs, sizeof(addrs));
	parse_ok(&p, 28, &h);
	ck_assert(h.local);
	v2_begin(&p, 0x20, 0xff, 0);
	parse_ok(&p, 16, &h);
	ck_assert(h.local);
	/* PROXY with AF_UNSPEC: the socket's addresses. */
	v2_begin(&p, 0x21, 0x00, 0);
	parse_ok(&p, 16, &h);
	ck_assert(h.local);
	/* PROXY with AF_UNIX: nothing a TCP listener can use. */
	v2_begin(&p, 0x21, 0x31, 216);
	for (int i = 0; i < 216; i++)
		put(&p, "a", 1);
	parse_ok(&p, 232, &h);
	ck_assert(h.local);
	/* UDP over IPv4 still names the client. */
	v2_begin(&p, 0x21, 0x12, sizeof(addrs));
	put(&p, addrs, sizeof(addrs));
	parse_ok(&p, 28, &h);
	ck_assert(!h.local);
	check_addr(&h.src, "10.0.0.1:1");
}
END_TEST

START_TEST(test_v2_tlvs)
{
	static const uint8_t addrs[12] = { 127, 0, 0, 1, 127, 0, 0, 1, 0x30, 0x39, 0x19, 0x20 };
	/* PP2_TYPE_ALPN "postgresql", PP2_TYPE_AUTHORITY "db", an AWS VPC endpoint id, NOOP. */
	static const uint8_t tlvs[] = {
		0x01, 0x00, 0x0a, 'p', 'o', 's', 't', 'g', 'r', 'e', 's', 'q', 'l',
		0x02, 0x00, 0x02, 'd', 'b',
		0xea, 0x00, 0x09, 0x01, 'v', 'p', 'c', 'e', '-', 'a', 'b', 'c',
		0x04, 0x00, 0x03, 0, 0, 0,
	};
	struct proxyproto_hdr h;
	struct pkt p;

	v2_begin(&p, 0x21, 0x11, sizeof(addrs) + sizeof(tlvs));
	put(&p, addrs, sizeof(addrs));
	put(&p, tlvs, sizeof(tlvs));
	put(&p, "\x00\x00\x00\x08", 4);
	parse_ok(&p, 16 + sizeof(addrs) + sizeof(tlvs), &h);
	check_addr(&h.src, "127.0.0.1:12345");
}
END_TEST

START_TEST(test_v2_bad)
{
	static const uint8_t addrs[36] = { 0 };
	struct proxyproto_hdr h;
	const char *why = NULL;
	struct pkt p;

	/* Bad signature: one byte wrong anywhere in the twelve. */
	for (size_t i = 0; i < PROXYPROTO_V2_SIG_LEN; i++) {
		v2_begin(&p, 0x21, 0x11, 12);
		put(&p, addrs, 12);
		p.b[i] ^= 0x40;
		ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), -ENOMSG);
	}
	/* Version 1 or 3 in the binary form. */
	v2_begin(&p, 0x11, 0x11, 12);
	put(&p, addrs, 12);
	ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), -EPROTO);
	v2_begin(&p, 0x31, 0x11, 12);
	put(&p, addrs, 12);
	ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), -EPROTO);
	/* Unknown command: refused as soon as the fixed part is in. */
	v2_begin(&p, 0x22, 0x11, 12);
	ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), -EPROTO);
	/* Unknown families or transports. */
	for (unsigned fam = 0; fam < 256; fam++) {
		bool known = fam == 0x00 || fam == 0x11 || fam == 0x12 || fam == 0x21 ||
			     fam == 0x22 || fam == 0x31 || fam == 0x32;

		v2_begin(&p, 0x21, (uint8_t)fam, 216);
		for (int i = 0; i < 216; i++)
			put(&p, "\0", 1);
		ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), known ? 0 : -EPROTO);
	}
	/* An unknown family, or a block too short for its family: refused from the fixed part. */
	v2_begin(&p, 0x21, 0x13, 12);
	ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), -EPROTO);
	v2_begin(&p, 0x21, 0x21, 12);
	ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), -EPROTO);
	/* Address blocks too short for their family. */
	v2_begin(&p, 0x21, 0x11, 11);
	put(&p, addrs, 11);
	ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), -EPROTO);
	v2_begin(&p, 0x21, 0x21, 35);
	put(&p, addrs, 35);
	ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), -EPROTO);
	v2_begin(&p, 0x21, 0x31, 215);
	for (int i = 0; i < 215; i++)
		put(&p, "\0", 1);
	ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), -EPROTO);
	ck_assert_ptr_nonnull(why);
}
END_TEST

START_TEST(test_v2_truncated)
{
	static const uint8_t addrs[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2 };
	struct proxyproto_hdr h;
	const char *why = NULL;
	struct pkt p;

	/* The length says 100 bytes of addresses and TLVs; fewer arrived so far. */
	v2_begin(&p, 0x21, 0x11, 100);
	put(&p, addrs, sizeof(addrs));
	ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), PROXYPROTO_NEED_MORE);
	for (int i = 0; i < 87; i++)
		put(&p, "\0", 1);
	ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), PROXYPROTO_NEED_MORE);
	put(&p, "\0", 1);
	ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), 0);
	ck_assert_uint_eq(h.len, 116);
}
END_TEST

START_TEST(test_v2_oversized)
{
	struct proxyproto_hdr h;
	const char *why = NULL;
	struct pkt p;

	/* Refused from the fixed part alone: nothing more is read or buffered. */
	v2_begin(&p, 0x21, 0x11, 0xffff);
	ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), -E2BIG);
	v2_begin(&p, 0x21, 0x11, PROXYPROTO_MAX_LEN - 16 + 1);
	ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), -E2BIG);
	/* The largest accepted. */
	v2_begin(&p, 0x20, 0x00, PROXYPROTO_MAX_LEN - 16);
	for (size_t i = 0; i < PROXYPROTO_MAX_LEN - 16; i++)
		put(&p, "\0", 1);
	ck_assert_int_eq(parse_exact(p.b, p.n, &h, &why), 0);
	ck_assert_uint_eq(h.len, PROXYPROTO_MAX_LEN);
}
END_TEST

/* ---- trusted networks ---- */

static struct sockaddr_storage addr_of(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		ss.ss_family = AF_INET;
	} else {
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr),
				 1);
		ss.ss_family = AF_INET6;
	}
	return ss;
}

START_TEST(test_cidr)
{
	static const char *const nets[] = { "10.0.0.0/8", "127.0.0.1/32", "::1/128",
					    "2001:db8:80::/41", "192.168.1.7" };
	struct sock_cidr list[PGKTLS_ARRAY_SIZE(nets)];
	struct sockaddr_storage ss;
	const char *why;

	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(nets); i++)
		ck_assert_int_eq(sock_cidr_parse(nets[i], &list[i], &why), 0);
	ck_assert_uint_eq(list[4].prefix, 32);
#define IN(ip, want)                                                                       \
	do {                                                                               \
		ss = addr_of(ip);                                                          \
		ck_assert_msg(sock_cidr_match(list, PGKTLS_ARRAY_SIZE(list),               \
					      (struct sockaddr *)&ss) == (want), "%s", ip);       \
	} while (0)
	IN("10.0.0.0", true);
	IN("10.255.255.255", true);
	IN("11.0.0.0", false);
	IN("9.255.255.255", false);
	IN("127.0.0.1", true);
	IN("127.0.0.2", false);
	IN("::1", true);
	IN("::2", false);
	IN("::ffff:10.1.2.3", true);		/* IPv4-mapped */
	IN("::ffff:127.0.0.2", false);
	IN("2001:db8:80::1", true);
	IN("2001:db8:ff:ffff::1", true);	/* /41: the 9th bit of the third group */
	IN("2001:db8:100::", false);
	IN("192.168.1.7", true);
	IN("192.168.1.8", false);
#undef IN
	/* An empty list trusts nobody; /0 trusts everybody of its family. */
	ss = addr_of("10.0.0.1");
	ck_assert(!sock_cidr_match(list, 0, (struct sockaddr *)&ss));
	ck_assert_int_eq(sock_cidr_parse("0.0.0.0/0", &list[0], &why), 0);
	ck_assert(sock_cidr_match(list, 1, (struct sockaddr *)&ss));
	ss = addr_of("::3");
	ck_assert(!sock_cidr_match(list, 1, (struct sockaddr *)&ss));
}
END_TEST

START_TEST(test_cidr_bad)
{
	static const char *const bad[] = { "", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129",
					   "10.0.0.1/8", "10.0.0.0/8/8", "10.0.0.0/+8",
					   "10.0.0.0/0008", "ten", "10.0.0.0 /8", "::1/-1",
					   "fe80::1%eth0/128" };
	struct sock_cidr c;
	const char *why;

	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(bad); i++) {
		why = NULL;
		ck_assert_msg(sock_cidr_parse(bad[i], &c, &why) == -EINVAL, "%s", bad[i]);
		ck_assert_ptr_nonnull(why);
	}
	ck_assert_int_eq(sock_cidr_parse("10.0.0.1/8", &c, &why), -EINVAL);
	ck_assert_str_eq(why, "the address has bits set beyond the prefix length");
}
END_TEST

static Suite *proxyproto_suite(void)
{
	Suite *s = suite_create("proxyproto");
	TCase *tc = tcase_create("v1");

	tcase_add_test(tc, test_v1_tcp4);
	tcase_add_test(tc, test_v1_tcp6);
	tcase_add_test(tc, test_v1_unknown);
	tcase_add_test(tc, test_v1_longest);
	tcase_add_loop_test(tc, test_v1_bad, 0, (int)PGKTLS_ARRAY_SIZE(v1_bad));
	tcase_add_test(tc, test_v1_too_long);
	tcase_add_test(tc, test_short_inputs);
	suite_add_tcase(s, tc);

	tc = tcase_create("v2");
	tcase_add_test(tc, test_v2_inet);
	tcase_add_test(tc, test_v2_inet6);
	tcase_add_test(tc, test_v2_local_and_unspec);
	tcase_add_test(tc, test_v2_tlvs);
	tcase_add_test(tc, test_v2_bad);
	tcase_add_test(tc, test_v2_truncated);
	tcase_add_test(tc, test_v2_oversized);
	suite_add_tcase(s, tc);

	tc = tcase_create("cidr");
	tcase_add_test(tc, test_cidr);
	tcase_add_test(tc, test_cidr_bad);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(proxyproto_suite());
}
