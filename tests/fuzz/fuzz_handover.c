// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * fuzz_handover.c - libFuzzer harness for the upgrade handover decoder: a
 * new process decodes whatever an old one (of any version) sends, and the
 * old one what the new one answers.
 *
 * Built by `./configure --enable-fuzzing` and run by tests/fuzz/run.sh with
 * the other targets. By hand, on a copy of the seeds:
 *
 *   rm -rf /tmp/corpus && cp -r tests/fuzz/corpus/handover /tmp/corpus
 *   BUILD/tests/fuzz/fuzz_handover -max_total_time=120 /tmp/corpus
 *
 * Besides memory safety, the contract daemon.c relies on is checked: a
 * decoded message re-encodes to exactly the input (one meaning per
 * datagram), except a refusal's text, which is made printable; another
 * version is reported as such with the header's fields; a refusal's text is
 * NUL-terminated printable ASCII.
 */
#include "config.h"

#include "pgktls/handover.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_handover: %s:%d: %s\n", __FILE__, __LINE__,  \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct handover_msg m;
	uint8_t again[HANDOVER_HDR_LEN + 64 + HANDOVER_TEXT_MAX];
	uint16_t v, t;
	ssize_t n;
	int r = handover_decode(data, size, &m);

	if (r == -EPROTONOSUPPORT) {
		FUZZ_CHECK(handover_decode_header(data, size, &v, &t) == 0);
		FUZZ_CHECK(v == m.version && t == m.type && v != HANDOVER_VERSION);
		return 0;
	}
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG || r == -ENOMSG);
		return 0;
	}
	FUZZ_CHECK(m.version == HANDOVER_VERSION && m.type > 0 && m.type < HANDOVER__NTYPES);
	n = handover_encode(again, sizeof(again), &m);
	FUZZ_CHECK(n == (ssize_t)size);
	if (m.type == HANDOVER_REFUSE) {
		size_t len = strlen(m.u.refuse.text);

		FUZZ_CHECK(len <= HANDOVER_TEXT_MAX);
		for (size_t i = 0; i < len; i++)
			FUZZ_CHECK(m.u.refuse.text[i] >= 0x20 && m.u.refuse.text[i] < 0x7f);
		FUZZ_CHECK(memcmp(again, data, HANDOVER_HDR_LEN + 8) == 0);
	} else {
		FUZZ_CHECK(memcmp(again, data, size) == 0);
	}
	return 0;
}
