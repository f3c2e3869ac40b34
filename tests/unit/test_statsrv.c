// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_statsrv.c - the stats server (statsrv.c) without a daemon: request
 * parsing, the unix socket (permissions, errors, a stale socket, scrapers
 * that never read) and the metrics_listen HTTP endpoint.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "pgktls/ev.h"
#include "pgktls/sock.h"
#include "pgktls/statsrv.h"
#include "statdoc.h"
#include "testlib.h"

START_TEST(test_parse_request)
{
	enum statsrv_what w;
	uint64_t id;
	char err[160];

#define OK(s, want)                                                                     \
	do {                                                                            \
		ck_assert_int_eq(statsrv_parse_request(s, strlen(s), &w, &id, err,      \
						       sizeof(err)),                     \
				 0);                                                    \
		ck_assert_int_eq(w, want);                                              \
	} while (0)
#define BAD(s)                                                                          \
	ck_assert_int_eq(statsrv_parse_request(s, sizeof(s) - 1, &w, &id, err, sizeof(err)), \
			 -EINVAL)
	OK("", STATSRV_ALL);
	OK("\n", STATSRV_ALL);
	OK("all\r\n", STATSRV_ALL);
	OK("  totals \n", STATSRV_TOTALS);
	OK("connections", STATSRV_CONNECTIONS);
	OK("connection 42\n", STATSRV_CONNECTION);
	ck_assert_uint_eq(id, 42);
	OK("connection\t 18446744073709551615", STATSRV_CONNECTION);
	ck_assert_uint_eq(id, UINT64_MAX);
	BAD("connection");
	BAD("connection 0");
	BAD("connection -1");
	BAD("connection 12x");
	BAD("connection 18446744073709551616");
	BAD("connectionsx");
	BAD("TOTALS");
	BAD("all\nall");
	BAD("tot\0als");
	ck_assert_ptr_nonnull(strstr(err, "NUL"));
	{
		char big[400];

		memset(big, 'a', sizeof(big));
		ck_assert_int_eq(statsrv_parse_request(big, sizeof(big), &w, &id, err, sizeof(err)),
				 -EINVAL);
	}
#undef OK
#undef BAD
}
END_TEST

/* ---- the server, with no workers ---- */

static int connect_to(const char *path)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&un, sizeof(un)) == -1) {
		close(fd);
		return -errno;
	}
	return fd;
}

static cJSON *ask(const char *path, const char *req)
{
	static char buf[1 << 20];
	size_t len = 0;
	ssize_t n;
	int fd = connect_to(path);

	ck_assert_int_ge(fd, 0);
	if (req)
		ck_assert_int_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';
	ck_assert_msg(len > 0 && buf[len - 1] == '\n', "answer not one line: %s", buf);
	return cJSON_Parse(buf);
}

START_TEST(test_server)
{
	struct statsrv_opts o = { .mode = 0640, .uid = -1, .gid = -1 };
	struct statsrv *srv, *srv2;
	char path[100];
	struct stat st;
	cJSON *doc;
	int idle[3];
	uint64_t t0;

	snprintf(path, sizeof(path), "%s/stats.sock", testlib_tmpdir());
	o.path = path;
	ck_assert_int_eq(statsrv_start(&o, NULL, 0, &srv), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0640);
	/* A second server on a live socket is refused, not a takeover. */
	ck_assert_int_eq(statsrv_start(&o, NULL, 0, &srv2), -EADDRINUSE);

	/* Scrapers that connect and never read or write must not hold up others. */
	for (int i = 0; i < 3; i++)
		idle[i] = connect_to(path);
	t0 = ev_monotonic_ms();
	doc = ask(path, "totals\n");
	ck_assert_int_eq(jnum(doc, "workers.count"), 0);
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(doc, "totals"));
	ck_assert_ptr_null(cJSON_GetObjectItem(doc, "connections"));
	cJSON_Delete(doc);
	ck_assert_uint_lt(ev_monotonic_ms() - t0, 1000);
	doc = ask(path, "connections\nignored second line\n");
	ck_assert_int_eq(cJSON_GetArraySize(jget(doc, "connections")), 0);
	cJSON_Delete(doc);
	doc = ask(path, "bogus\n");
	ck_assert_str_eq(jstr(doc, "error.code"), "bad_request");
	cJSON_Delete(doc);
	/* No request at all (nothing written, not even EOF): the whole document. */
	doc = ask(path, NULL);
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(doc, "kernel"));
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(doc, "connections"));
	statdoc_validate(doc);
	cJSON_Delete(doc);
	for (int i = 0; i < 3; i++)
		close(idle[i]);
	statsrv_stop(srv);
	ck_assert_int_eq(access(path, F_OK), -1);	/* removed at stop */

	/* A stale socket file (no server behind it) is replaced. */
	{
		struct sockaddr_un un = { .sun_family = AF_UNIX };
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);

		snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&un, sizeof(un)), 0);
		close(fd);
	}
	ck_assert_int_eq(statsrv_start(&o, NULL, 0, &srv), 0);
	doc = ask(path, "all\n");
	ck_assert_int_eq(jnum(doc, "schema"), 1);
	cJSON_Delete(doc);
	statsrv_stop(srv);
}
END_TEST

/* Send @req to @a, read until EOF; the caller frees the answer. */
static char *http_ask(const struct sock_addr *a, const char *req)
{
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap + 1);
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 10 };
	ssize_t n;

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_ge(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ck_assert_int_eq(connect(fd, (const struct sockaddr *)&a->ss, a->len), 0);
	ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	while ((n = recv(fd, buf + len, cap - len, 0)) > 0 && len + (size_t)n < cap)
		len += (size_t)n;
	ck_assert_int_eq(n, 0);	/* the server closed after its answer */
	buf[len] = '\0';
	close(fd);
	return buf;
}

/* metrics_listen without a unix socket, on IPv6 loopback when the host has it. */
START_TEST(test_http_server)
{
	struct statsrv_opts o = { .mode = 0640, .uid = -1, .gid = -1 };
	struct sockaddr_in6 any6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	struct sockaddr_in any4 = { .sin_family = AF_INET };
	struct statsrv *srv, *srv2;
	struct sock_addr a;
	socklen_t alen;
	char listen_at[64], *ans, *body;
	int fd;

	/* A free port: bind to 0, note the port, let it go. */
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	alen = sizeof(any6);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&any6, sizeof(any6)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&any6, &alen) == 0) {
		snprintf(listen_at, sizeof(listen_at), "[::1]:%u", ntohs(any6.sin6_port));
	} else {
		any4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd >= 0)
			close(fd);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		alen = sizeof(any4);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&any4, sizeof(any4)), 0);
		ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&any4, &alen), 0);
		snprintf(listen_at, sizeof(listen_at), "127.0.0.1:%u", ntohs(any4.sin_port));
	}
	close(fd);
	ck_assert_int_eq(sock_parse_hostport(listen_at, &a), 0);

	o.metrics_listen = "localhost:9939";
	ck_assert_int_eq(statsrv_start(&o, NULL, 0, &srv), -EINVAL);
	o.metrics_listen = listen_at;
	ck_assert_int_eq(statsrv_start(&o, NULL, 0, &srv), 0);
	/* No SO_REUSEPORT: a second server on the address fails instead of sharing it. */
	ck_assert_int_eq(statsrv_start(&o, NULL, 0, &srv2), -EADDRINUSE);

	/* A pipelined second request is not answered: one answer, then close. */
	ans = http_ask(&a, "GET /metrics HTTP/1.0\r\n\r\nGET /x HTTP/1.0\r\n\r\n");
	ck_assert_msg(!strncmp(ans, "HTTP/1.1 200 OK\r\n", 17), "%s", ans);
	ck_assert(strstr(ans, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	ck_assert(strstr(ans, "\r\nConnection: close\r\n"));
	body = strstr(ans, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	body += 4;
	ck_assert(strstr(body, "\npgktls_metrics_scrapes_total 1\n"));
	ck_assert(strstr(body, "\npgktls_workers 0\n"));
	{
		char want[64];

		snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", strlen(body));
		ck_assert_msg(strstr(ans, want), "%s", ans);
	}
	free(ans);

	ans = http_ask(&a, "HEAD /metrics HTTP/1.1\r\nHost: h\r\n"
			   "Accept: application/openmetrics-text\r\n\r\n");
	ck_assert(!strncmp(ans, "HTTP/1.1 200 OK\r\n", 17));
	ck_assert(strstr(ans, "\r\nContent-Type: application/openmetrics-text; version=1.0.0"));
	body = strstr(ans, "\r\n\r\n");
	ck_assert_ptr_nonnull(body);
	ck_assert_str_eq(body, "\r\n\r\n");	/* HEAD: no body */
	free(ans);

	ans = http_ask(&a, "PUT /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
	ck_assert(!strncmp(ans, "HTTP/1.1 405 Method Not Allowed\r\n", 33));
	ck_assert(strstr(ans, "\r\nAllow: GET, HEAD\r\n"));
	free(ans);

	ans = http_ask(&a, "GET /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
	ck_assert(strstr(ans, "\npgktls_metrics_scrapes_total 3\n"));
	ck_assert(strstr(ans, "\npgktls_metrics_requests_refused_total"
			      "{reason=\"method_not_allowed\"} 1\n"));
	free(ans);
	statsrv_stop(srv);
}
END_TEST

static Suite *statsrv_suite(void)
{
	Suite *s = suite_create("statsrv");
	TCase *tc = tcase_create("server");

	tcase_add_test(tc, test_parse_request);
	tcase_add_test(tc, test_server);
	tcase_add_test(tc, test_http_server);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(statsrv_suite());
}
