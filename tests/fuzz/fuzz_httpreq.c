/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * fuzz_httpreq.c - libFuzzer harness for the metrics endpoint's HTTP request
 * parser (src/httpreq.c), the one piece of pgktls that parses bytes from
 * whoever can reach metrics_listen.
 *
 * Built by `./configure --enable-fuzzing` and run by tests/fuzz/run.sh with
 * the other targets. By hand, on a copy of the seeds:
 *
 *   rm -rf /tmp/corpus && cp -r tests/fuzz/corpus/httpreq /tmp/corpus
 *   BUILD/tests/fuzz/fuzz_httpreq -max_total_time=120 /tmp/corpus
 *
 * Besides memory safety, the contract the stats thread relies on is checked:
 * the answer for a prefix is never DONE unless the head is complete, an
 * error stays an error as bytes are added (the stats thread refuses at the
 * first one), offsets stay inside the buffer, statuses are the documented
 * ones, and the head never exceeds HTTPREQ_HEAD_MAX. The input also goes to
 * content negotiation as an Accept value.
 */
#include "config.h"

#include "pgktls/httpreq.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_httpreq: %s:%d: %s\n", __FILE__, __LINE__,   \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

static void check_one(const char *buf, size_t len, enum httpreq_result r,
		      const struct httpreq *req)
{
	switch (r) {
	case HTTPREQ_INCOMPLETE:
		FUZZ_CHECK(len < HTTPREQ_HEAD_MAX);
		break;
	case HTTPREQ_DONE:
		FUZZ_CHECK(req->head_len > 0 && req->head_len <= len);
		FUZZ_CHECK(req->head_len <= HTTPREQ_HEAD_MAX);
		FUZZ_CHECK(buf[req->head_len - 1] == '\n');
		FUZZ_CHECK(req->path_off + req->path_len <= req->head_len);
		FUZZ_CHECK(req->minor <= 1);
		FUZZ_CHECK(req->method <= HTTPREQ_OTHER);
		FUZZ_CHECK(strlen(req->accept) <= HTTPREQ_ACCEPT_MAX);
		FUZZ_CHECK(!memchr(buf + req->path_off, '?', req->path_len));
		break;
	case HTTPREQ_BAD:
		FUZZ_CHECK(req->error != NULL);
		FUZZ_CHECK(req->status == 400 || req->status == 413 || req->status == 414 ||
			   req->status == 431 || req->status == 505);
		break;
	default:
		FUZZ_CHECK(!"unknown result");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct httpreq req, again;
	enum httpreq_result whole, r;
	size_t cut;
	char *accept;

	whole = httpreq_parse(buf, size, &req);
	check_one(buf, size, whole, &req);
	/* The same bytes give the same answer (the stats thread parses again after each read). */
	r = httpreq_parse(buf, size, &again);
	FUZZ_CHECK(r == whole && again.status == req.status && again.head_len == req.head_len);
	if (whole == HTTPREQ_DONE) {
		/* Nothing after the head changes it. */
		r = httpreq_parse(buf, req.head_len, &again);
		FUZZ_CHECK(r == HTTPREQ_DONE && again.head_len == req.head_len &&
			   again.path_off == req.path_off && again.path_len == req.path_len &&
			   again.method == req.method && !strcmp(again.accept, req.accept));
		/* Every shorter prefix is merely incomplete. */
		cut = size > 0 ? (size_t)data[0] % req.head_len : 0;
		r = httpreq_parse(buf, cut, &again);
		FUZZ_CHECK(r == HTTPREQ_INCOMPLETE);
		(void)httpreq_wants_openmetrics(req.accept);
	}
	if (whole == HTTPREQ_INCOMPLETE && size > 0) {
		/* A prefix of an incomplete head is incomplete too. */
		r = httpreq_parse(buf, size / 2, &again);
		FUZZ_CHECK(r == HTTPREQ_INCOMPLETE);
	}

	accept = malloc(size + 1);
	if (!accept)
		abort();
	memcpy(accept, data, size);
	accept[size] = '\0';
	(void)httpreq_wants_openmetrics(accept);
	free(accept);
	return 0;
}
