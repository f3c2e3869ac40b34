// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * fuzz_proxyproto.c - libFuzzer harness for the PROXY protocol header parser
 * and the CIDR parser behind proxy_protocol_trusted.
 *
 * Built by `./configure --enable-fuzzing` and run by tests/fuzz/run.sh with
 * the other targets. By hand, on a copy of the seeds:
 *
 *   rm -rf /tmp/corpus && cp -r tests/fuzz/corpus/proxyproto /tmp/corpus
 *   BUILD/tests/fuzz/fuzz_proxyproto -max_total_time=120 /tmp/corpus
 *
 * Besides memory safety, the contract conn.c relies on is checked: a
 * complete header's length lies within the input and the bound, bytes after
 * it never change the answer, and every shorter prefix of it asks for more
 * (so consuming what was fed while the parser asks for more never takes a
 * byte past the header).
 */
#include "config.h"

#include "pgktls/proxyproto.h"

#include <netinet/in.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgktls/sock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_proxyproto: %s:%d: %s\n", __FILE__, __LINE__, \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* Parse an exact-size heap copy, so ASan sees a read one byte too far. */
static int parse_copy(const uint8_t *data, size_t len, struct proxyproto_hdr *h,
		      const char **why)
{
	uint8_t *copy = malloc(len ? len : 1);
	int ret;

	if (!copy)
		abort();
	memcpy(copy, data, len);
	ret = proxyproto_parse(copy, len, h, why);
	free(copy);
	return ret;
}

static void fuzz_header(const uint8_t *data, size_t size)
{
	struct proxyproto_hdr h, h2;
	const char *why = NULL;
	int ret;

	ret = parse_copy(data, size, &h, &why);
	if (ret < 0) {
		FUZZ_CHECK(ret == -ENOMSG || ret == -EPROTO || ret == -E2BIG);
		FUZZ_CHECK(why && *why);
		return;
	}
	if (ret == PROXYPROTO_NEED_MORE) {
		FUZZ_CHECK(size < PROXYPROTO_MAX_LEN);
		return;
	}
	FUZZ_CHECK(ret == 0);
	FUZZ_CHECK(h.len > 0 && h.len <= size && h.len <= PROXYPROTO_MAX_LEN);
	FUZZ_CHECK(h.version == 1 || h.version == 2);
	if (h.version == 1)
		FUZZ_CHECK(h.len <= PROXYPROTO_V1_MAX_LEN && data[h.len - 1] == '\n');
	else
		FUZZ_CHECK(h.len >= PROXYPROTO_V2_FIXED_LEN);
	if (h.local) {
		FUZZ_CHECK(h.addrlen == 0);
	} else {
		FUZZ_CHECK(h.addrlen == sizeof(struct sockaddr_in) ||
			   h.addrlen == sizeof(struct sockaddr_in6));
		FUZZ_CHECK(h.src.ss_family == h.dst.ss_family);
		FUZZ_CHECK(h.src.ss_family ==
			   (h.addrlen == sizeof(struct sockaddr_in) ? AF_INET : AF_INET6));
	}

	/* The header alone gives the same answer. */
	FUZZ_CHECK(parse_copy(data, h.len, &h2, &why) == 0);
	FUZZ_CHECK(h2.len == h.len && h2.local == h.local && h2.addrlen == h.addrlen &&
		   memcmp(&h2.src, &h.src, sizeof(h.src)) == 0);
	/* Each prefix only asks for more (quadratic: long TLV blocks are left out). */
	if (h.len > 512)
		return;
	for (size_t i = 0; i < h.len; i++)
		FUZZ_CHECK(parse_copy(data, i, &h2, &why) == PROXYPROTO_NEED_MORE);
}

static void fuzz_cidr(const uint8_t *data, size_t size)
{
	struct sock_cidr c;
	struct sockaddr_in6 sa;
	const char *why = NULL;
	char *text;

	if (size > 64)
		return;
	text = malloc(size + 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	if (sock_cidr_parse(text, &c, &why) == 0) {
		FUZZ_CHECK(c.family == AF_INET || c.family == AF_INET6);
		FUZZ_CHECK(c.prefix <= (c.family == AF_INET ? 32u : 128u));
		/* A network contains its own address. */
		memset(&sa, 0, sizeof(sa));
		if (c.family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;

			s4->sin_family = AF_INET;
			memcpy(&s4->sin_addr, c.addr, 4);
		} else {
			sa.sin6_family = AF_INET6;
			memcpy(&sa.sin6_addr, c.addr, 16);
		}
		FUZZ_CHECK(sock_cidr_match(&c, 1, (struct sockaddr *)&sa));
	} else {
		FUZZ_CHECK(why && *why);
	}
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_header(data, size);
	fuzz_cidr(data, size);
	return 0;
}
