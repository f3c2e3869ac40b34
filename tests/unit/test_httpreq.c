// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_httpreq.c - the metrics endpoint's HTTP request parser: what it
 * accepts (as Prometheus and curl send it), each refusal and its status,
 * byte-at-a-time arrival, and content negotiation.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgktls/httpreq.h"
#include "testlib.h"

static enum httpreq_result parse(const char *s, struct httpreq *req)
{
	return httpreq_parse(s, strlen(s), req);
}

/* [@s, @s + @n) must be refused with @status. */
static void refused_n(const char *s, size_t n, unsigned status)
{
	struct httpreq req;
	enum httpreq_result r = httpreq_parse(s, n, &req);

	ck_assert_msg(r == HTTPREQ_BAD, "accepted: '%s'", s);
	ck_assert_msg(req.status == status, "'%s': status %u, want %u (%s)", s, req.status,
		      status, req.error);
	ck_assert_ptr_nonnull(req.error);
}

static void refused(const char *s, unsigned status)
{
	refused_n(s, strlen(s), status);
}

static void path_is(const char *s, const struct httpreq *req, const char *path)
{
	ck_assert_uint_eq(req->path_len, strlen(path));
	ck_assert(!memcmp(s + req->path_off, path, req->path_len));
}

START_TEST(test_prometheus_request)
{
	/* What Prometheus 2.42 sends, byte for byte but the host. */
	static const char s[] =
		"GET /metrics HTTP/1.1\r\n"
		"Host: 127.0.0.1:9939\r\n"
		"User-Agent: Prometheus/2.42.0\r\n"
		"Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
		"version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
		"Accept-Encoding: gzip\r\n"
		"X-Prometheus-Scrape-Timeout-Seconds: 1\r\n"
		"\r\n"
		"GET /next HTTP/1.1\r\n";
	struct httpreq req;

	ck_assert_int_eq(parse(s, &req), HTTPREQ_DONE);
	ck_assert_int_eq(req.method, HTTPREQ_GET);
	ck_assert_uint_eq(req.minor, 1);
	path_is(s, &req, "/metrics");
	ck_assert_uint_eq(req.head_len, strstr(s, "GET /next") - s);
	ck_assert(req.has_accept);
	ck_assert(httpreq_wants_openmetrics(req.accept));
	/* Every proper prefix is incomplete, never an error. */
	for (size_t n = 0; n < req.head_len; n++)
		ck_assert_int_eq(httpreq_parse(s, n, &req), HTTPREQ_INCOMPLETE);
}
END_TEST

START_TEST(test_accepted_forms)
{
	struct httpreq req;
	const char *s;

	s = "HEAD /metrics?name[]=x HTTP/1.0\n\n";	/* bare LF; no Host on 1.0 */
	ck_assert_int_eq(parse(s, &req), HTTPREQ_DONE);
	ck_assert_int_eq(req.method, HTTPREQ_HEAD);
	ck_assert_uint_eq(req.minor, 0);
	path_is(s, &req, "/metrics");
	ck_assert(!req.has_accept);
	ck_assert_str_eq(req.accept, "");

	s = "\r\n\r\nGET http://example.org:9939/metrics HTTP/1.1\r\nhost: x\r\n\r\n";
	ck_assert_int_eq(parse(s, &req), HTTPREQ_DONE);
	path_is(s, &req, "/metrics");

	s = "GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n";
	ck_assert_int_eq(parse(s, &req), HTTPREQ_DONE);
	ck_assert_uint_eq(req.path_len, 0);

	s = "DELETE /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n";
	ck_assert_int_eq(parse(s, &req), HTTPREQ_DONE);
	ck_assert_int_eq(req.method, HTTPREQ_OTHER);

	s = "get /metrics HTTP/1.1\r\nHost: h\r\n\r\n";	/* methods are case-sensitive */
	ck_assert_int_eq(parse(s, &req), HTTPREQ_DONE);
	ck_assert_int_eq(req.method, HTTPREQ_OTHER);

	s = "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
	ck_assert_int_eq(parse(s, &req), HTTPREQ_DONE);
	path_is(s, &req, "*");

	s = "GET / HTTP/1.9\r\nHost: h\r\nAccept: text/plain\r\nAccept:  a/b ;q=1 \t\r\n\r\n";
	ck_assert_int_eq(parse(s, &req), HTTPREQ_DONE);
	ck_assert_uint_eq(req.minor, 1);
	ck_assert_str_eq(req.accept, "text/plain,a/b ;q=1");

	s = "GET /metrics HTTP/1.1\r\nHost:\r\nX-Empty:\r\nX-Bin: \x80\xff\r\n\r\n";
	ck_assert_int_eq(parse(s, &req), HTTPREQ_DONE);
}
END_TEST

START_TEST(test_refusals)
{
	char *big;

	refused("GET\r\n\r\n", 400);
	refused("GET /metrics\r\n", 400);			/* HTTP/0.9 */
	refused("GET  /metrics HTTP/1.1\r\n", 400);
	refused("GET /metrics HTTP/1.1 \r\n", 400);
	refused("G(T /metrics HTTP/1.1\r\n", 400);
	refused("GET metrics HTTP/1.1\r\n", 400);
	refused("GET /met\x01rics HTTP/1.1\r\n", 400);
	refused("GET /m\xc3\xa9trics HTTP/1.1\r\n", 400);
	refused("GET http:///x HTTP/1.1\r\n", 400);
	refused("GET /metrics http/1.1\r\n", 400);
	refused("GET /metrics HTTP/1.10\r\n", 400);
	refused("GET /metrics HTTP/2.0\r\n", 505);
	refused("GET /metrics HTTP/0.9\r\n", 505);
	refused("GET /metrics HTTP/1.1\r\n\r\n", 400);		/* no Host */
	refused("GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
	refused("GET /metrics HTTP/1.1\r\nHost : a\r\n", 400);
	refused("GET /metrics HTTP/1.1\r\nHost: a\r\n folded\r\n", 400);
	refused("GET /metrics HTTP/1.1\r\nHost: a\rb\r\n", 400);
	refused("GET /metrics HTTP/1.1\rHost: a\r\n", 400);
	refused("GET /metrics HTTP/1.1\r\nno colon\r\n", 400);
	refused("GET /metrics HTTP/1.1\r\n: v\r\n", 400);
	refused("GET /metrics HTTP/1.1\r\nX: a\x7f\r\n", 400);
	refused_n("GET /metrics HTTP/1.1\r\nX: a\0b\r\n", 31, 400);
	refused("GET /metrics HTTP/1.1\r\nContent-Length: x\r\n", 400);
	refused("GET /metrics HTTP/1.1\r\nContent-Length:\r\n", 400);
	refused("GET /metrics HTTP/1.1\r\nContent-Length: 99999999999999\r\n", 400);
	refused("GET /metrics HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 1\r\n", 400);
	refused("GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n", 413);
	refused("POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", 413);

	/* Sizes: a long line is refused before its end arrives. */
	big = malloc(HTTPREQ_HEAD_MAX + 100);
	ck_assert_ptr_nonnull(big);
	memset(big, 'a', HTTPREQ_HEAD_MAX + 99);
	big[HTTPREQ_HEAD_MAX + 99] = '\0';
	memcpy(big, "GET /", 5);
	refused(big, 414);
	/* A request line of 2047 bytes is fine; a field that never ends is not. */
	strcpy(big + HTTPREQ_LINE_MAX - 10, " HTTP/1.1\r\nHost: h\r\nX: ");
	memset(big + strlen(big), 'b', HTTPREQ_HEAD_MAX + 99 - strlen(big));
	big[HTTPREQ_HEAD_MAX + 99] = '\0';
	refused(big, 431);
	/* Many small fields add up to the same. */
	strcpy(big, "GET / HTTP/1.1\r\n");
	while (strlen(big) < HTTPREQ_HEAD_MAX)
		strcat(big, "X-Filler: 0123456789\r\n");
	refused(big, 431);
	/* An Accept too long on its own. */
	strcpy(big, "GET / HTTP/1.1\r\nAccept: ");
	memset(big + strlen(big), 'x', HTTPREQ_ACCEPT_MAX + 1);
	strcpy(big + 24 + HTTPREQ_ACCEPT_MAX + 1, "\r\n");
	refused(big, 431);
	free(big);
}
END_TEST

START_TEST(test_incremental)
{
	/* A bad line is refused as soon as it is complete, not at the end of the head. */
	static const char s[] = "GET /metrics HTTP/1.1\r\nBad Name: x\r\nHost: h\r\n";
	size_t bad_end = strstr(s, "Host") - s;
	struct httpreq req;

	for (size_t n = 0; n < bad_end; n++)
		ck_assert_int_eq(httpreq_parse(s, n, &req), HTTPREQ_INCOMPLETE);
	ck_assert_int_eq(httpreq_parse(s, bad_end, &req), HTTPREQ_BAD);
	ck_assert_uint_eq(req.status, 400);
}
END_TEST

START_TEST(test_negotiation)
{
	static const struct {
		const char *accept;
		bool om;
	} cases[] = {
		{ "", false },
		{ "*/*", false },
		{ "application/json", false },
		{ "application/openmetrics-text", true },
		{ "Application/OpenMetrics-Text; Version=\"1.0.0\"", true },
		{ "application/openmetrics-text;version=0.0.1", false },
		{ "application/openmetrics-text;version=2.0.0,text/plain", false },
		{ "application/openmetrics-text;q=0", false },
		{ "application/openmetrics-text;q=0.5,text/plain;version=0.0.4", false },
		{ "application/openmetrics-text;q=0.5,text/plain;q=0.5", true },
		{ "application/openmetrics-text;q=0.9,text/plain;version=0.0.5", true },
		{ "application/openmetrics-text;q=1.5", false },
		{ "application/openmetrics-text;q=x", false },
		{ "text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0;q=0.6",
		  true },
		{ "text/*;q=0.3, application/openmetrics-text ; version=1.0.0 ; q=0.2", false },
		{ ",,;,application/openmetrics-text;;=;q=", false },
		{ ",,;,application/openmetrics-text;;=;", true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(httpreq_wants_openmetrics(cases[i].accept) == cases[i].om,
			      "Accept: %s: want %s", cases[i].accept,
			      cases[i].om ? "OpenMetrics" : "text");
}
END_TEST

static Suite *httpreq_suite(void)
{
	Suite *s = suite_create("httpreq");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_prometheus_request);
	tcase_add_test(tc, test_accepted_forms);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_incremental);
	tcase_add_test(tc, test_negotiation);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(httpreq_suite());
}
