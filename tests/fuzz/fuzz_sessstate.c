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
 * pgproto_framer_import(), authinspect_import(); and for a whole
 * connection's SESSION payload, sessmove_import(), with descriptors.
 *
 * Input: byte 0 % 7 picks the reader (0 tlsrec, 1 hop, 2 keysched, 3 relay
 * direction, 4 framer, 5 authinspect, 6 connection: then byte 1 % 5 is the
 * descriptor count, each one /dev/null); the rest is the TLV list, passed
 * in a buffer of exactly its size.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgktls/authinspect.h"
#include "pgktls/conn.h"
#include "pgktls/handover.h"
#include "pgktls/hop.h"
#include "pgktls/keysched.h"
#include "pgktls/pgproto.h"
#include "pgktls/relay.h"
#include "pgktls/sessmove.h"
#include "pgktls/tlsrec.h"
#include "pgktls/tlv.h"
#include "pgktls/worker.h"

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

/* conn_discard() reaches the loop only for a hop in epoll: never here. */
static struct worker fuzz_worker;

/* A blank connection, as conn_new() makes one (no runtime: nothing here needs one). */
static struct conn *blank_conn(void)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (!c)
		abort();
	c->w = &fuzz_worker;
	hop_init(&c->client, -1, "client", true);
	hop_init(&c->server, -1, "server", true);
	relay_dir_init(&c->c2s);
	relay_dir_init(&c->s2c);
	return c;
}

/* @n descriptors on /dev/null, standing in for the sockets and pipes SCM_RIGHTS brings. */
static void null_fds(int *fds, unsigned n)
{
	for (unsigned i = 0; i < HANDOVER_SESSION_FDS; i++)
		fds[i] = i < n ? open("/dev/null", O_RDONLY | O_CLOEXEC) : -1;
}

static void close_fds(int *fds)
{
	for (unsigned i = 0; i < HANDOVER_SESSION_FDS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/*
 * A connection's payload: refused cleanly, or accepted and then exported,
 * imported and exported again to the same bytes with the same descriptors.
 */
static void check_conn(const uint8_t *in, size_t len, unsigned n_fds, uint8_t *a, uint8_t *b)
{
	static uint8_t big_a[HANDOVER_SESSION_MAX], big_b[HANDOVER_SESSION_MAX];
	struct conn *c = blank_conn(), *d;
	int fds[HANDOVER_SESSION_FDS], out[HANDOVER_SESSION_FDS];
	size_t la, lb;
	uint8_t na, nb;
	char why[HANDOVER_TEXT_MAX + 1];

	(void)a;
	(void)b;
	null_fds(fds, n_fds);
	if (sessmove_import(c, in, len, fds, (uint8_t)n_fds, why, sizeof(why)) == 0) {
		FUZZ_CHECK(why[0] == '\0');
		for (unsigned i = 0; i < n_fds; i++)
			FUZZ_CHECK(fds[i] == -1);
		c->state = CONN_RELAY;
		if (sessmove_export(c, big_a, sizeof(big_a), &la, out, &na) == 0) {
			FUZZ_CHECK(na == n_fds);
			d = blank_conn();
			null_fds(fds, na);
			FUZZ_CHECK(sessmove_import(d, big_a, la, fds, na, why, sizeof(why)) == 0);
			d->state = CONN_RELAY;
			FUZZ_CHECK(sessmove_export(d, big_b, sizeof(big_b), &lb, out, &nb) == 0);
			FUZZ_CHECK(la == lb && na == nb && !memcmp(big_a, big_b, la));
			conn_discard(d);
		}
	} else {
		FUZZ_CHECK(why[0] != '\0');
	}
	conn_discard(c);
	close_fds(fds);
}

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
	if (data[0] % 7 == 6) {
		if (len >= 1)
			check_conn(in + 1, len - 1, 1 + in[0] % HANDOVER_SESSION_FDS, a, b);
		free(in);
		return 0;
	}
	switch (data[0] % 7) {
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
		other_state(data[0] % 7, in, len, a, b);
		break;
	}
	free(in);
	return 0;
}
