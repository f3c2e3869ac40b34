/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * fuzz_auth.c - libFuzzer harness for the authentication-message inspector.
 *
 * It drives authinspect_run() (what conn.c's relay callback runs) over the
 * buffer discipline of relay.c: a RELAY_BUF_SIZE direction buffer that the
 * server's bytes are read into in chunks, the inspector advancing `scan`
 * (rewriting AuthenticationSASL and channel-binding ErrorResponses in place),
 * a flush that writes [head, scan) and slides a partial message to the
 * front. Keep flush() in step with relay.c's flush_dir() when it changes.
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

#include "pgktls/authinspect.h"
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
	struct authinspect s = { 0 };
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
	sentcap = size * 2 + sizeof(AUTHINSPECT_HINT) * (size / 5 + 1) + 16;
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
		ret = authinspect_run(&s, &d);
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
