/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * fuzz_sessstate.c - libFuzzer harness for the session state a binary
 * upgrade moves (phase 2): arbitrary bytes into tlsrec_import(),
 * hop_import() and keysched_session_import(), which must refuse what they
 * cannot take with an errno and never read past the input or leak. What
 * one of them accepts must export again, and that export must import and
 * export to the same bytes (a field read but not written back, or written
 * differently, shows here).
 *
 * The same for what moves beside the hops: relay_dir_import(),
 * pgproto_framer_import(), authinspect_import().
 *
 * Input: byte 0 % 6 picks the reader (0 tlsrec, 1 hop, 2 keysched, 3 relay
 * direction, 4 framer, 5 authinspect); the rest is the TLV list, passed in
 * a buffer of exactly its size.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgktls/authinspect.h"
#include "pgktls/hop.h"
#include "pgktls/keysched.h"
#include "pgktls/pgproto.h"
#include "pgktls/relay.h"
#include "pgktls/tlsrec.h"
#include "pgktls/tlv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_sessstate: %s:%d: %s\n", __FILE__, __LINE__, \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

#define OUT_CAP (160u * 1024u)

/* Export what was imported, twice removed: both exports must be equal. */
static void check_tlsrec(const struct tlsrec *t, uint8_t *a, uint8_t *b)
{
	struct tlv_writer w1, w2;
	struct tlsrec *t2 = NULL;

	tlv_writer_init(&w1, a, OUT_CAP);
	FUZZ_CHECK(tlsrec_export(t, &w1) == 0);
	FUZZ_CHECK(tlsrec_import(a, w1.len, &t2) == 0);
	tlv_writer_init(&w2, b, OUT_CAP);
	FUZZ_CHECK(tlsrec_export(t2, &w2) == 0);
	FUZZ_CHECK(w1.len == w2.len && !memcmp(a, b, w1.len));
	tlsrec_free(t2);
}

static void check_hop(const struct hop *h, uint8_t *a, uint8_t *b)
{
	struct tlv_writer w1, w2;
	struct hop h2;

	tlv_writer_init(&w1, a, OUT_CAP);
	FUZZ_CHECK(hop_export(h, &w1) == 0);
	FUZZ_CHECK(hop_import(&h2, -1, "fuzz", a, w1.len) == 0);
	tlv_writer_init(&w2, b, OUT_CAP);
	FUZZ_CHECK(hop_export(&h2, &w2) == 0);
	FUZZ_CHECK(w1.len == w2.len && !memcmp(a, b, w1.len));
	hop_close(NULL, &h2);
}

static void check_keysched(const struct keysched_session *ks, uint8_t *a, uint8_t *b)
{
	struct keysched_session *ks2 = NULL;
	struct tlv_writer w1, w2;

	tlv_writer_init(&w1, a, OUT_CAP);
	FUZZ_CHECK(keysched_session_export(ks, &w1) == 0);
	FUZZ_CHECK(keysched_session_import(a, w1.len, &ks2) == 0);
	tlv_writer_init(&w2, b, OUT_CAP);
	FUZZ_CHECK(keysched_session_export(ks2, &w2) == 0);
	FUZZ_CHECK(w1.len == w2.len && !memcmp(a, b, w1.len));
	keysched_session_free(ks2);
}

/* Export @x with @exp, import with @imp into @y, export again: the same bytes. */
#define CHECK_SMALL(x, y, exp, imp, a, b)                                                  \
	do {                                                                               \
		struct tlv_writer w1_, w2_;                                                \
                                                                                           \
		tlv_writer_init(&w1_, (a), OUT_CAP);                                       \
		FUZZ_CHECK(exp((x), &w1_) == 0);                                           \
		FUZZ_CHECK(imp((y), (a), w1_.len) == 0);                                   \
		tlv_writer_init(&w2_, (b), OUT_CAP);                                       \
		FUZZ_CHECK(exp((y), &w2_) == 0);                                           \
		FUZZ_CHECK(w1_.len == w2_.len && !memcmp((a), (b), w1_.len));              \
	} while (0)

static void other_state(unsigned int which, const uint8_t *in, size_t len, uint8_t *a,
			uint8_t *b)
{
	switch (which) {
	case 3: {
		struct relay_dir d, e;

		relay_dir_init(&d);
		if (relay_dir_import(&d, in, len) == 0) {
			FUZZ_CHECK(d.head <= d.scan && d.scan <= d.tail && d.tail <= d.cap);
			relay_dir_init(&e);
			CHECK_SMALL(&d, &e, relay_dir_export, relay_dir_import, a, b);
			relay_dir_free(&e);
		} else {
			FUZZ_CHECK(d.buf == NULL);
		}
		relay_dir_free(&d);
		break;
	}
	case 4: {
		struct pgproto_framer f, g;

		if (pgproto_framer_import(&f, in, len) == 0)
			CHECK_SMALL(&f, &g, pgproto_framer_export, pgproto_framer_import, a, b);
		else
			FUZZ_CHECK(f.lost);
		break;
	}
	default: {
		struct authinspect x, y;

		if (authinspect_import(&x, in, len) == 0)
			CHECK_SMALL(&x, &y, authinspect_export, authinspect_import, a, b);
		break;
	}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t a[OUT_CAP], b[OUT_CAP];
	uint8_t *in;
	size_t len;

	if (size < 1)
		return 0;
	len = size - 1;
	in = malloc(len ? len : 1);
	if (!in)
		return 0;
	memcpy(in, data + 1, len);
	switch (data[0] % 6) {
	case 0: {
		struct tlsrec *t = NULL;

		if (tlsrec_import(in, len, &t) == 0) {
			FUZZ_CHECK(t != NULL);
			check_tlsrec(t, a, b);
			tlsrec_free(t);
		} else {
			FUZZ_CHECK(t == NULL);
		}
		break;
	}
	case 1: {
		struct hop h;

		if (hop_import(&h, -1, "fuzz", in, len) == 0)
			check_hop(&h, a, b);
		hop_close(NULL, &h);
		break;
	}
	case 2: {
		struct keysched_session *ks = NULL;

		if (keysched_session_import(in, len, &ks) == 0) {
			FUZZ_CHECK(ks != NULL);
			check_keysched(ks, a, b);
			keysched_session_free(ks);
		} else {
			FUZZ_CHECK(ks == NULL);
		}
		break;
	}
	default:
		other_state(data[0] % 6, in, len, a, b);
		break;
	}
	free(in);
	return 0;
}
