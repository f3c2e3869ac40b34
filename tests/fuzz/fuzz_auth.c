/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * fuzz_auth.c - libFuzzer harness for the authentication-message inspector.
 *
 * conn.c's inspect_auth() is static and needs a live connection, so this
 * harness drives the same pgproto calls in the same order over the same
 * buffer discipline as conn.c and relay.c: a RELAY_BUF_SIZE direction
 * buffer that the server's bytes are read into in chunks, the inspector
 * advancing `scan` (rewriting AuthenticationSASL and channel-binding
 * ErrorResponses in place through a 2048-byte scratch buffer), a flush that
 * writes [head, scan) and slides a partial message to the front. Keep it in
 * step with inspect_auth() and flush_dir() when they change.
 *
 * Input: byte 0 picks the hop layout (bit 0: client hop plaintext and server
 * hop TLS, where SCRAM-SHA-256-PLUS is stripped) and, with byte 1, the read
 * chunk size; the rest is the server's byte stream. Checked: no access out
 * of bounds (ASan), the buffer never wedges (full of bytes nothing may
 * write), and the bytes written out frame as the same message types, in the
 * same order, as the bytes that came in.
 *
 * Built by `./configure --enable-fuzzing` (see tests/fuzz/run.sh).
 */
#include "config.h"

#include "pgktls/pgproto.h"
#include "pgktls/relay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_auth: %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* The hint conn.c adds; its length is what matters to the buffer arithmetic. */
#define HINT                                                                                  \
	"pgktls terminates TLS, so the server's channel binding cannot match the certificate " \
	"the client saw. Connect with channel_binding=disable, or give pgktls the server's "    \
	"own certificate and key (tls_certificate, tls_private_key), or use a plaintext or "    \
	"unix-socket upstream."

/* The inspector's state: conn.c keeps these in struct conn. */
struct insp {
	bool strip_plus;	/* client hop plaintext, server hop TLS */
	bool done;		/* AuthenticationOk seen: inspection off */
	uint32_t skip;		/* bytes of a message not ours to look at */
};

/* conn.c rewrite_in_place(). */
static int rewrite(struct relay_dir *d, uint32_t at, size_t oldlen, const uint8_t *msg,
		   size_t newlen)
{
	size_t rest = d->tail - at - oldlen;

	if (at + newlen + rest > RELAY_BUF_SIZE)
		return -ENOSPC;
	memmove(d->buf + at + newlen, d->buf + at + oldlen, rest);
	memcpy(d->buf + at, msg, newlen);
	d->tail = (uint32_t)(at + newlen + rest);
	return 0;
}

/* conn.c inspect_auth(), minus logging and counters. */
static int inspect(struct insp *s, struct relay_dir *d)
{
	uint8_t out[2048];

	while (d->scan < d->tail) {
		uint8_t *msg = d->buf + d->scan;
		size_t avail = d->tail - d->scan, total = 0, outlen = 0;
		uint8_t type = 0;
		uint32_t code;
		int r;

		if (s->skip) {
			uint32_t n = avail < s->skip ? (uint32_t)avail : s->skip;

			d->scan += n;
			s->skip -= n;
			continue;
		}
		r = pgproto_backend_msg(msg, avail, &type, &total);
		if (r < 0)
			return -EPROTO;
		if (r == 0 && total == 0)
			break;
		if (type != 'R' && type != 'E') {
			s->skip = (uint32_t)total;
			continue;
		}
		if (r == 0) {
			if (total > RELAY_BUF_SIZE)
				s->skip = (uint32_t)total;
			break;
		}
		FUZZ_CHECK(total <= avail);
		if (type == 'R' && pgproto_auth_code(msg, total, &code) == 0) {
			if (code == PG_AUTH_OK) {
				s->done = true;
				d->scan = d->tail;
				return 0;
			}
			if (code == PG_AUTH_SASL && s->strip_plus &&
			    pgproto_sasl_strip_plus(msg, total, out, sizeof(out), &outlen) == 1 &&
			    rewrite(d, d->scan, total, out, outlen) == 0)
				total = outlen;
		} else if (type == 'E' && pgproto_error_is_channel_binding(msg, total) &&
			   pgproto_error_add_hint(msg, total, HINT, out, sizeof(out),
						  &outlen) == 0 &&
			   rewrite(d, d->scan, total, out, outlen) == 0) {
			total = outlen;
		}
		d->scan += (uint32_t)total;
	}
	return 0;
}

/* relay.c flush_dir() against a destination that takes everything. */
static void flush(struct relay_dir *d, uint8_t *sent, size_t *nsent, size_t sentcap)
{
	size_t n = d->scan - d->head;

	FUZZ_CHECK(*nsent + n <= sentcap);
	memcpy(sent + *nsent, d->buf + d->head, n);
	*nsent += n;
	d->head = d->scan;
	if (d->head == d->tail) {
		d->head = d->scan = d->tail = 0;
	} else if (d->head > 0) {
		memmove(d->buf, d->buf + d->head, d->tail - d->head);
		d->tail -= d->head;
		d->scan = d->head = 0;
	}
}

/*
 * The message types of the well-framed prefix of @buf, into @types.
 * Return: how many; *@used: the bytes they take.
 */
static size_t frame_types(const uint8_t *buf, size_t len, uint8_t *types, size_t cap,
			  size_t *used)
{
	size_t off = 0, n = 0, total;
	uint8_t type;

	while (n < cap && pgproto_backend_msg(buf + off, len - off, &type, &total) == 1) {
		types[n++] = type;
		off += total;
	}
	*used = off;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t types_in[4096], types_out[4096];
	struct relay_dir d = { 0 };
	struct insp s = { 0 };
	uint8_t *sent;
	size_t chunk, off, nsent = 0, sentcap, nin, nout, used_in, used_out;
	int ret = 0;

	if (size < 2)
		return 0;
	s.strip_plus = data[0] & 1;
	chunk = 1 + (((size_t)(data[0] >> 1) << 8 | data[1]) % RELAY_BUF_SIZE);
	data += 2;
	size -= 2;

	d.buf = malloc(RELAY_BUF_SIZE);
	/* Each channel-binding hint can add its length once per message. */
	sentcap = size * 2 + sizeof(HINT) * (size / 5 + 1) + 16;
	sent = malloc(sentcap);
	FUZZ_CHECK(d.buf && sent);

	for (off = 0; off < size && !s.done;) {
		size_t n = size - off;

		if (n > chunk)
			n = chunk;
		if (n > RELAY_BUF_SIZE - d.tail)
			n = RELAY_BUF_SIZE - d.tail;
		/* relay.c reads only while there is room; no room and nothing to write wedges. */
		FUZZ_CHECK(n > 0);
		memcpy(d.buf + d.tail, data + off, n);
		d.tail += (uint32_t)n;
		off += n;
		ret = inspect(&s, &d);
		FUZZ_CHECK(d.head <= d.scan && d.scan <= d.tail && d.tail <= RELAY_BUF_SIZE);
		if (ret)
			break;
		flush(&d, sent, &nsent, sentcap);
	}
	if (ret == 0) {
		/* EOF or inspection over: the rest passes untouched (relay.c). */
		d.scan = d.tail;
		flush(&d, sent, &nsent, sentcap);
		FUZZ_CHECK(nsent + (size - off) <= sentcap);
		memcpy(sent + nsent, data + off, size - off);
		nsent += size - off;

		/* Rewrites change contents, never the framing of the stream. */
		nin = frame_types(data, size, types_in, sizeof(types_in), &used_in);
		nout = frame_types(sent, nsent, types_out, sizeof(types_out), &used_out);
		if (nin < sizeof(types_in) && nout < sizeof(types_out)) {
			FUZZ_CHECK(nin == nout && memcmp(types_in, types_out, nin) == 0);
			FUZZ_CHECK(size - used_in == nsent - used_out);
		}
	}
	free(sent);
	free(d.buf);
	return 0;
}
