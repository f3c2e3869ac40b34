/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * httpreq.h - the HTTP/1.x request head the metrics endpoint accepts, sans I/O.
 *
 * The stats thread serves one resource (GET/HEAD /metrics) and closes after
 * each answer, so all it needs is the request line and four header fields
 * (Host, Accept, Content-Length, Transfer-Encoding) of RFC 9112. This
 * module parses them from bytes the caller already holds, never touches a
 * socket, and says how to refuse anything else with a status code, so the
 * whole of it is unit-tested and fuzzed (tests/fuzz/fuzz_httpreq.c).
 */
#ifndef PGKTLS_HTTPREQ_H
#define PGKTLS_HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>

#include "pgktls/compiler.h"

#define HTTPREQ_LINE_MAX 2048	/* longest request line; beyond: 414 */
#define HTTPREQ_HEAD_MAX 8192	/* longest head, fields and empty line included; beyond: 431 */
#define HTTPREQ_ACCEPT_MAX 1024	/* all Accept field values joined; beyond: 431 */

/* The request method, as far as the endpoint cares. */
enum httpreq_method {
	HTTPREQ_GET,
	HTTPREQ_HEAD,
	HTTPREQ_OTHER,		/* a well-formed method the endpoint does not allow (405) */
};

/* What httpreq_parse() found in the bytes so far. */
enum httpreq_result {
	HTTPREQ_INCOMPLETE = 0,	/* no error yet, no end of the head yet: read more */
	HTTPREQ_DONE,		/* a whole, well-formed head */
	HTTPREQ_BAD,		/* refuse with req->status; req->error says why */
};

/* The parsed head. Offsets point into the buffer given to httpreq_parse(). */
struct httpreq {
	enum httpreq_method method;
	unsigned minor;		/* HTTP/1.<minor>: 0 or 1 (1.2 and up answer as 1.1) */
	size_t path_off;	/* the path: origin-form up to '?', or absolute-form's path */
	size_t path_len;
	size_t head_len;	/* HTTPREQ_DONE: bytes of the head, the empty line included */
	char accept[HTTPREQ_ACCEPT_MAX + 1]; /* Accept values joined by ",", "" if none */
	bool has_accept;
	unsigned status;	/* HTTPREQ_BAD: 400, 413, 414, 431 or 505 */
	const char *error;	/* HTTPREQ_BAD: a short reason for the log (static) */
};

/**
 * httpreq_parse() - parse the request head at the start of @buf.
 * @buf: every byte received so far (it need not be NUL-terminated)
 * @len: how many
 * @req: out: filled for HTTPREQ_DONE and HTTPREQ_BAD
 *
 * Call again with the grown buffer after each read: the answer depends only
 * on (@buf, @len), and an error in any complete line is found at once, so a
 * client cannot keep a malformed request open. Bytes after the head (a
 * pipelined request) are not looked at. Leading empty lines are skipped (RFC
 * 9112 2.2); a line may end in CRLF or LF; a CR elsewhere, obs-fold, a
 * control byte, a space before a field's colon, a second Host, a missing Host
 * on HTTP/1.1 or an unparsable Content-Length are 400. A request body
 * (Content-Length > 0, or any Transfer-Encoding) is 413: the endpoint takes
 * none. Once @len reaches HTTPREQ_HEAD_MAX without the empty line, 431.
 *
 * Return: HTTPREQ_INCOMPLETE, HTTPREQ_DONE or HTTPREQ_BAD.
 */
PGKTLS_MUSTCHECK enum httpreq_result httpreq_parse(const char *buf, size_t len,
						   struct httpreq *req);

/**
 * httpreq_wants_openmetrics() - content negotiation (RFC 9110 12.5.1) between
 * the Prometheus text format 0.0.4 and OpenMetrics 1.0.0.
 * @accept: the joined Accept values (struct httpreq's accept), may be ""
 *
 * OpenMetrics is chosen when "application/openmetrics-text" (with no version,
 * or version=1.0.0) has a q above 0 and not below the best q of the text
 * format ("text/plain" with no version or version=0.0.4, or the wildcard ranges
 * of all text types and of all types).
 * With no Accept, or one naming neither, the text format is the answer (an
 * exporter is better read in a format the scraper did not ask for than not
 * at all).
 *
 * Return: true for OpenMetrics.
 */
bool httpreq_wants_openmetrics(const char *accept);

#endif /* PGKTLS_HTTPREQ_H */
