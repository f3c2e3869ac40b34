/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * fuzz_nl.c - libFuzzer harness for the netlink reply parsers.
 *
 * The kernel is trusted, but the parsers are the one place pgktls decodes
 * nested TLV data, and a kernel newer than this code sends attributes it has
 * never seen. Every input goes to each parser: nl_diag_parse(),
 * nl_genl_family_parse(), nl_ethtool_parse() (each with no sequence check
 * and with the sequence number the input's own header carries) and
 * nl_tls_stat_parse(). The input is copied into a heap buffer of exactly its
 * size (16-byte aligned, like the callers' reply buffers), so a read past
 * the reply is caught by ASan in our code. libmnl itself is not
 * instrumented: its own bounds checks are what this exercises there.
 *
 * Seeds: the recorded kernel replies in tests/data/ (the .nl files).
 * Built by `./configure --enable-fuzzing` (see tests/fuzz/run.sh).
 */
#include "config.h"

#include "pgktls/nl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_nl: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                           \
		}                                                                          \
	} while (0)

static void check_sock(int ret, const struct nl_sock_info *si)
{
	FUZZ_CHECK(ret <= 0);
	if (ret)
		return;
	/* The name is a C string whatever the kernel sent. */
	FUZZ_CHECK(memchr(si->ulp, '\0', sizeof(si->ulp)));
	FUZZ_CHECK(si->tls ? si->has_ulp : true);
	FUZZ_CHECK(nl_tls_conf_name(si->txconf) && nl_tls_conf_name(si->rxconf));
	FUZZ_CHECK(nl_tls_cipher_name(si->tls_cipher) && nl_tls_version_name(si->tls_version));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nl_sock_info si;
	struct nl_nic_tls nic;
	struct nl_tls_stat ts;
	uint32_t seq = 0;
	uint16_t id;
	void *buf;
	int ret;

	if (size > NL_REPLY_MAX)
		return 0;
	buf = malloc(size ? size : 1);
	FUZZ_CHECK(buf);
	memcpy(buf, data, size);
	if (size >= 12)
		memcpy(&seq, data + 8, sizeof(seq));	/* nlmsg_seq */

	for (int pass = 0; pass < 2; pass++) {
		uint32_t s = pass ? seq : 0;

		ret = nl_diag_parse(buf, size, s, &si);
		check_sock(ret, &si);
		ret = nl_genl_family_parse(buf, size, s, &id);
		FUZZ_CHECK(ret <= 0);
		ret = nl_ethtool_parse(buf, size, s, &nic);
		FUZZ_CHECK(ret <= 0);
		if (!seq)
			break;
	}

	ret = nl_tls_stat_parse(buf, size, &ts);
	FUZZ_CHECK(ret == 0 || ret == -EPROTO);
	if (ret == 0) {
		FUZZ_CHECK(ts.n > 0 && ts.n <= NL_TLS_STAT_MAX);
		for (size_t i = 0; i < ts.n; i++)
			FUZZ_CHECK(memchr(ts.v[i].name, '\0', sizeof(ts.v[i].name)));
	}
	free(buf);
	return 0;
}
