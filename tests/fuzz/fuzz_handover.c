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
 * NUL-terminated printable ASCII (a SESSION_NACK's too); a SESSION's
 * payload is a view inside the input, 1..HANDOVER_SESSION_MAX bytes, with
 * 1..HANDOVER_SESSION_FDS descriptors announced and none attached by the
 * decoder; a type the header's version does not have is -ENOMSG.
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
	static uint8_t again[HANDOVER_MAX_MSG];
	struct handover_msg m;
	uint16_t v, t;
	ssize_t n;
	int r = handover_decode(data, size, &m);

	if (r == -EPROTONOSUPPORT) {
		FUZZ_CHECK(handover_decode_header(data, size, &v, &t) == 0);
		FUZZ_CHECK(v == m.version && t == m.type);
		FUZZ_CHECK(v < HANDOVER_VERSION_MIN || v > HANDOVER_VERSION);
		return 0;
	}
	if (r == -ENOMSG) {
		FUZZ_CHECK(m.type == 0 || m.type >= HANDOVER__NTYPES ||
			   (m.version == 1 && m.type > HANDOVER_STATUS));
		return 0;
	}
	if (r < 0) {
		FUZZ_CHECK(r == -EBADMSG);
		return 0;
	}
	FUZZ_CHECK(m.version >= HANDOVER_VERSION_MIN && m.version <= HANDOVER_VERSION);
	FUZZ_CHECK(m.type > 0 && m.type < HANDOVER__NTYPES);
	if (m.type == HANDOVER_SESSION) {
		const uint8_t *pl = m.u.session.payload;

		FUZZ_CHECK(m.u.session.len >= 1 && m.u.session.len <= HANDOVER_SESSION_MAX);
		FUZZ_CHECK(m.u.session.n_fds >= 1 && m.u.session.n_fds <= HANDOVER_SESSION_FDS);
		FUZZ_CHECK(pl >= data && pl + m.u.session.len == data + size);
		for (size_t i = 0; i < HANDOVER_SESSION_FDS; i++)
			FUZZ_CHECK(m.u.session.fds[i] == -1);
	}
	n = handover_encode(again, sizeof(again), &m);
	FUZZ_CHECK(n == (ssize_t)size);
	if (m.type == HANDOVER_REFUSE || m.type == HANDOVER_SESSION_NACK) {
		const char *text = m.type == HANDOVER_REFUSE ? m.u.refuse.text : m.u.session_nack.text;
		size_t len = strlen(text), fixed = m.type == HANDOVER_REFUSE ? 8 : 16;

		FUZZ_CHECK(len <= HANDOVER_TEXT_MAX && HANDOVER_HDR_LEN + fixed + len == size);
		for (size_t i = 0; i < len; i++)
			FUZZ_CHECK(text[i] >= 0x20 && text[i] < 0x7f);
		FUZZ_CHECK(memcmp(again, data, HANDOVER_HDR_LEN + fixed) == 0);
	} else {
		FUZZ_CHECK(memcmp(again, data, size) == 0);
	}
	return 0;
}
