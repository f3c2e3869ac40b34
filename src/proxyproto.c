// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * proxyproto.c - the PROXY protocol header, versions 1 and 2, sans I/O.
 *
 * The input comes straight off the network from whoever connects, so every
 * access is checked against the caller's length first, and the module is a
 * fuzz target. What the spec (HAProxy's doc/proxy-protocol.txt) tells a
 * receiver to do is done here:
 *
 * - v2: the version nibble must be 2 and the command LOCAL or PROXY, the
 *   family/transport byte one of the seven defined values; anything else
 *   drops the connection. LOCAL (a balancer's own health check) and
 *   AF_UNSPEC carry no client: the socket's addresses stay. AF_UNIX
 *   addresses mean nothing to a TCP listener and are treated the same.
 *   TLVs after the address block are skipped.
 * - v1: one line of at most 107 bytes ending in CRLF. "UNKNOWN" keeps the
 *   socket's addresses and the rest of its line is ignored, as the spec asks.
 */
#include "config.h"

#include "pgktls/proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <string.h>

/* v2 address block sizes: two addresses and two ports. */
#define V2_INET_LEN 12u
#define V2_INET6_LEN 36u
#define V2_UNIX_LEN 216u

#define V1_PREFIX "PROXY "
#define V1_PREFIX_LEN 6u

static int set_why(const char **why, const char *text, int ret)
{
	*why = text;
	return ret;
}

/* Does @buf (@len bytes) match the start of @sig (@siglen bytes)? */
static bool prefix_matches(const uint8_t *buf, size_t len, const char *sig, size_t siglen)
{
	return memcmp(buf, sig, len < siglen ? len : siglen) == 0;
}

static void fill_in(struct sockaddr_in *sa, const uint8_t *addr, const uint8_t *port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	memcpy(&sa->sin_addr, addr, 4);
	memcpy(&sa->sin_port, port, 2);	/* both in network order already */
}

static void fill_in6(struct sockaddr_in6 *sa, const uint8_t *addr, const uint8_t *port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin6_family = AF_INET6;
	memcpy(&sa->sin6_addr, addr, 16);
	memcpy(&sa->sin6_port, port, 2);
}

/*
 * How many address bytes a PROXY command with family/transport byte @fam
 * needs, or -1 for a value the spec does not define.
 */
static int v2_addr_len(unsigned fam)
{
	switch (fam) {
	case 0x00:		/* UNSPEC */
		return 0;
	case 0x11:		/* TCP over IPv4 */
	case 0x12:		/* UDP over IPv4 */
		return V2_INET_LEN;
	case 0x21:		/* TCP over IPv6 */
	case 0x22:		/* UDP over IPv6 */
		return V2_INET6_LEN;
	case 0x31:		/* unix stream */
	case 0x32:		/* unix datagram */
		return V2_UNIX_LEN;
	default:
		return -1;
	}
}

static int parse_v2(const uint8_t *buf, size_t len, struct proxyproto_hdr *out, const char **why)
{
	struct proxyproto_hdr h;
	const uint8_t *a = buf + PROXYPROTO_V2_FIXED_LEN;
	unsigned cmd, fam;
	size_t alen, total;
	int need;

	if (len < PROXYPROTO_V2_FIXED_LEN)
		return PROXYPROTO_NEED_MORE;
	/* Everything is checked from the fixed part, before waiting for the rest. */
	if (buf[12] >> 4 != 2)
		return set_why(why, "PROXY v2 header with a version other than 2", -EPROTO);
	cmd = buf[12] & 0x0f;
	if (cmd > 1)
		return set_why(why, "PROXY v2 header with an unknown command", -EPROTO);
	fam = buf[13];
	alen = (size_t)buf[14] << 8 | buf[15];
	total = PROXYPROTO_V2_FIXED_LEN + alen;
	if (total > PROXYPROTO_MAX_LEN)
		return set_why(why, "PROXY v2 header longer than pgktls accepts", -E2BIG);
	/* LOCAL ignores the family and any address block, as the spec says. */
	need = cmd == 0 ? 0 : v2_addr_len(fam);
	if (need < 0)
		return set_why(why, "PROXY v2 header with an unknown address family or transport",
			       -EPROTO);
	if (alen < (size_t)need)
		return set_why(why, "PROXY v2 header too short for its addresses", -EPROTO);
	if (len < total)
		return PROXYPROTO_NEED_MORE;

	memset(&h, 0, sizeof(h));
	h.version = 2;
	h.len = total;
	h.local = true;
	if (cmd == 1 && need == V2_INET_LEN) {
		fill_in((struct sockaddr_in *)&h.src, a, a + 8);
		fill_in((struct sockaddr_in *)&h.dst, a + 4, a + 10);
		h.addrlen = sizeof(struct sockaddr_in);
		h.local = false;
	} else if (cmd == 1 && need == V2_INET6_LEN) {
		fill_in6((struct sockaddr_in6 *)&h.src, a, a + 32);
		fill_in6((struct sockaddr_in6 *)&h.dst, a + 16, a + 34);
		h.addrlen = sizeof(struct sockaddr_in6);
		h.local = false;
	}
	/* UNSPEC and unix addresses name nobody a TCP listener can use. */
	*out = h;
	return 0;
}

/* A decimal port, 1 to 5 digits, at most 65535. */
static int v1_port(const char *s, size_t n, uint16_t *port)
{
	unsigned v = 0;

	if (n == 0 || n > 5)
		return -EPROTO;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EPROTO;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return -EPROTO;
	*port = htons((uint16_t)v);
	return 0;
}

/* One address of a v1 line: at most INET6_ADDRSTRLEN - 1 characters. */
static int v1_addr(int af, const char *s, size_t n, void *dst)
{
	char tmp[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(tmp))
		return -EPROTO;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return inet_pton(af, tmp, dst) == 1 ? 0 : -EPROTO;
}

/*
 * The fields of a v1 line after "PROXY ", up to (not including) its CR:
 * "TCP4 src dst sport dport", "TCP6 ...", or "UNKNOWN[ anything]".
 */
static int parse_v1_fields(const char *p, size_t n, struct proxyproto_hdr *out, const char **why)
{
	const char *f[5];
	size_t fl[5], nf = 0, i = 0;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src;
	struct sockaddr_in *d4 = (struct sockaddr_in *)&out->dst;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src;
	struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&out->dst;
	int af;

	if (n >= 7 && memcmp(p, "UNKNOWN", 7) == 0 && (n == 7 || p[7] == ' '))
		return 0;	/* out->local is already set */

	/* Exactly five fields, separated by single spaces. */
	while (i <= n && nf < 5) {
		size_t s = i;

		while (i < n && p[i] != ' ')
			i++;
		f[nf] = p + s;
		fl[nf++] = i - s;
		i++;	/* past the space, or past the end */
	}
	if (nf != 5 || i <= n)
		return set_why(why, "PROXY v1 line without exactly five fields", -EPROTO);
	if (fl[0] == 4 && memcmp(f[0], "TCP4", 4) == 0)
		af = AF_INET;
	else if (fl[0] == 4 && memcmp(f[0], "TCP6", 4) == 0)
		af = AF_INET6;
	else
		return set_why(why, "PROXY v1 line with a protocol other than TCP4, TCP6, UNKNOWN",
			       -EPROTO);

	memset(&out->src, 0, sizeof(out->src));
	memset(&out->dst, 0, sizeof(out->dst));
	if (af == AF_INET) {
		s4->sin_family = d4->sin_family = AF_INET;
		if (v1_addr(af, f[1], fl[1], &s4->sin_addr) < 0 ||
		    v1_addr(af, f[2], fl[2], &d4->sin_addr) < 0)
			return set_why(why, "PROXY v1 line with a bad IPv4 address", -EPROTO);
		if (v1_port(f[3], fl[3], &s4->sin_port) < 0 ||
		    v1_port(f[4], fl[4], &d4->sin_port) < 0)
			return set_why(why, "PROXY v1 line with a bad port", -EPROTO);
		out->addrlen = sizeof(struct sockaddr_in);
	} else {
		s6->sin6_family = d6->sin6_family = AF_INET6;
		if (v1_addr(af, f[1], fl[1], &s6->sin6_addr) < 0 ||
		    v1_addr(af, f[2], fl[2], &d6->sin6_addr) < 0)
			return set_why(why, "PROXY v1 line with a bad IPv6 address", -EPROTO);
		if (v1_port(f[3], fl[3], &s6->sin6_port) < 0 ||
		    v1_port(f[4], fl[4], &d6->sin6_port) < 0)
			return set_why(why, "PROXY v1 line with a bad port", -EPROTO);
		out->addrlen = sizeof(struct sockaddr_in6);
	}
	out->local = false;
	return 0;
}

static int parse_v1(const uint8_t *buf, size_t len, struct proxyproto_hdr *out, const char **why)
{
	size_t scan = len < PROXYPROTO_V1_MAX_LEN ? len : PROXYPROTO_V1_MAX_LEN;
	const uint8_t *lf = memchr(buf, '\n', scan);
	struct proxyproto_hdr h;
	size_t linelen;
	int ret;

	if (!lf) {
		if (len >= PROXYPROTO_V1_MAX_LEN)
			return set_why(why, "PROXY v1 line longer than 107 bytes", -E2BIG);
		return PROXYPROTO_NEED_MORE;
	}
	linelen = (size_t)(lf - buf) + 1;
	if (linelen < V1_PREFIX_LEN + 2 || lf[-1] != '\r')
		return set_why(why, "PROXY v1 line not ending in CRLF", -EPROTO);
	/* The fields themselves are printable ASCII: no NUL, no stray CR. */
	for (size_t i = V1_PREFIX_LEN; i < linelen - 2; i++) {
		if (buf[i] < 0x20 || buf[i] > 0x7e)
			return set_why(why, "PROXY v1 line with a control character", -EPROTO);
	}
	memset(&h, 0, sizeof(h));
	h.version = 1;
	h.len = linelen;
	h.local = true;
	ret = parse_v1_fields((const char *)buf + V1_PREFIX_LEN, linelen - 2 - V1_PREFIX_LEN, &h,
			      why);
	if (ret)
		return ret;
	*out = h;
	return 0;
}

int proxyproto_parse(const uint8_t *buf, size_t len, struct proxyproto_hdr *out,
		     const char **why)
{
	if (len == 0)
		return PROXYPROTO_NEED_MORE;
	if (buf[0] == 'P') {
		if (!prefix_matches(buf, len, V1_PREFIX, V1_PREFIX_LEN))
			return set_why(why, "no PROXY protocol header", -ENOMSG);
		if (len < V1_PREFIX_LEN)
			return PROXYPROTO_NEED_MORE;
		return parse_v1(buf, len, out, why);
	}
	if (!prefix_matches(buf, len, PROXYPROTO_V2_SIG, PROXYPROTO_V2_SIG_LEN))
		return set_why(why, "no PROXY protocol header", -ENOMSG);
	return parse_v2(buf, len, out, why);
}
