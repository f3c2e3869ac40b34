// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * pgktls-stat - read pgktls's stats socket and print a table, the JSON
 * document itself, or Prometheus text. See pgktls-stat(1).
 *
 * Exit status (scripts rely on it; keep in step with the man page):
 *   0 ok, 1 the daemon answered with an error object, 2 usage,
 *   3 no socket at the path, 4 permission denied, 5 the daemon is not
 *   answering (refused, timed out, or sent something that is not JSON).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "pgktls/statfmt.h"

#define DEFAULT_SOCKET "/run/pgktls/stats.sock"
#define MAX_DOC (64u << 20)	/* refuse documents beyond 64 MiB */

enum {
	EXIT_OK = 0,
	EXIT_ANSWER_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_NO_SOCKET = 3,
	EXIT_PERMISSION = 4,
	EXIT_NOT_ANSWERING = 5,
};

enum format { FMT_TABLE, FMT_JSON, FMT_PROMETHEUS };

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: pgktls-stat [OPTIONS] [all | totals | connections | connection ID]\n"
		"Show the statistics of a running pgktls.\n"
		"\n"
		"  -s, --socket PATH   stats socket (default: $PGKTLS_STATS_SOCKET, else %s)\n"
		"  -j, --json          print the JSON document as the daemon sent it\n"
		"  -p, --prometheus    print the Prometheus text exposition format\n"
		"  -w, --watch N       refresh every N seconds until interrupted\n"
		"  -t, --timeout SECS  give up on a silent daemon after SECS (default 5)\n"
		"  -V, --version       print the version and exit\n"
		"  -h, --help          print this help and exit\n"
		"\n"
		"Exit status: 0 ok, 1 the daemon answered with an error, 2 usage, 3 no socket,\n"
		"4 permission denied, 5 the daemon is not answering. See pgktls-stat(1).\n",
		DEFAULT_SOCKET);
}

/* Connect, send @req, read everything until EOF. Return: an exit status. */
static int fetch(const char *path, const char *req, unsigned timeout_s, char **doc)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_s };
	size_t len = 0, cap = 0;
	char *buf = NULL, line[300];
	int fd, rc = EXIT_NOT_ANSWERING;

	*doc = NULL;
	if (strlen(path) >= sizeof(un.sun_path)) {
		fprintf(stderr, "pgktls-stat: %s: path too long\n", path);
		return EXIT_USAGE;
	}
	memcpy(un.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		perror("pgktls-stat: socket");
		return EXIT_NOT_ANSWERING;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&un, sizeof(un)) == -1) {
		int e = errno;

		fprintf(stderr, "pgktls-stat: %s: %s\n", path, strerror(e));
		rc = e == ENOENT || e == ENOTDIR   ? EXIT_NO_SOCKET
		     : e == EACCES || e == EPERM ? EXIT_PERMISSION
						 : EXIT_NOT_ANSWERING;
		goto out;
	}
	snprintf(line, sizeof(line), "%s\n", req);
	if (send(fd, line, strlen(line), MSG_NOSIGNAL) == -1) {
		fprintf(stderr, "pgktls-stat: %s: sending the request: %s\n", path, strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (cap - len < 65536) {
			char *nb;

			cap = cap ? cap * 2 : 131072;
			nb = cap <= MAX_DOC ? realloc(buf, cap + 1) : NULL;
			if (!nb) {
				fprintf(stderr, "pgktls-stat: answer too large\n");
				goto out;
			}
			buf = nb;
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			fprintf(stderr, "pgktls-stat: %s: %s\n", path,
				errno == EAGAIN ? "no answer in time" : strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len == 0) {
		fprintf(stderr, "pgktls-stat: %s: the daemon closed without answering\n", path);
		goto out;
	}
	buf[len] = '\0';
	*doc = buf;
	buf = NULL;
	rc = EXIT_OK;
out:
	free(buf);
	close(fd);
	return rc;
}

/* One round: fetch, parse, print. Return: an exit status. */
static int once(const char *path, const char *req, enum format fmt, unsigned timeout_s)
{
	const cJSON *err;
	cJSON *doc;
	char *text;
	int rc = fetch(path, req, timeout_s, &text);

	if (rc != EXIT_OK)
		return rc;
	doc = cJSON_Parse(text);
	if (!doc) {
		fprintf(stderr, "pgktls-stat: %s: the answer is not JSON\n", path);
		free(text);
		return EXIT_NOT_ANSWERING;
	}
	err = cJSON_GetObjectItemCaseSensitive(doc, "error");
	if (err) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(err, "message");

		if (fmt == FMT_JSON)
			fputs(text, stdout);
		fprintf(stderr, "pgktls-stat: %s\n",
			cJSON_IsString(m) ? m->valuestring : "the daemon reported an error");
		rc = EXIT_ANSWER_ERROR;
	} else if (fmt == FMT_JSON) {
		fputs(text, stdout);
	} else if (fmt == FMT_PROMETHEUS) {
		if (statfmt_prometheus(doc, false, stdout) < 0) {
			fprintf(stderr, "pgktls-stat: the answer has no totals\n");
			rc = EXIT_ANSWER_ERROR;
		}
	} else if (statfmt_table(doc, stdout) < 0) {
		rc = EXIT_ANSWER_ERROR;
	}
	fflush(stdout);
	cJSON_Delete(doc);
	free(text);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", no_argument, NULL, 'p' },
		{ "watch", required_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = getenv("PGKTLS_STATS_SOCKET");
	enum format fmt = FMT_TABLE;
	unsigned long watch = 0, timeout_s = 5;
	char req[256] = "", *end;
	int opt, rc;

	if (!path || !*path)
		path = DEFAULT_SOCKET;
	while ((opt = getopt_long(argc, argv, "s:jpw:t:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 's': path = optarg; break;
		case 'j': fmt = FMT_JSON; break;
		case 'p': fmt = FMT_PROMETHEUS; break;
		case 'w':
		case 't': {
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || v == 0 || v > 86400) {
				fprintf(stderr, "pgktls-stat: --%s: expected seconds (1-86400), "
						"got '%s'\n", opt == 'w' ? "watch" : "timeout", optarg);
				return EXIT_USAGE;
			}
			if (opt == 'w')
				watch = v;
			else
				timeout_s = v;
			break;
		}
		case 'V': printf("pgktls-stat %s\n", PACKAGE_VERSION); return EXIT_OK;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (strlen(req) + strlen(argv[i]) + 2 > sizeof(req)) {
			fprintf(stderr, "pgktls-stat: request too long\n");
			return EXIT_USAGE;
		}
		if (*req)
			strcat(req, " ");
		strcat(req, argv[i]);
	}
	if (fmt == FMT_PROMETHEUS && *req && strcmp(req, "all") && strcmp(req, "totals")) {
		fprintf(stderr, "pgktls-stat: --prometheus exports totals only, not '%s'\n", req);
		return EXIT_USAGE;
	}
	if (fmt == FMT_PROMETHEUS)
		snprintf(req, sizeof(req), "totals");
	for (;;) {
		if (watch && fmt == FMT_TABLE && isatty(STDOUT_FILENO))
			fputs("\033[H\033[2J", stdout);	/* clear, like watch(1) */
		rc = once(path, *req ? req : "all", (enum format)fmt, (unsigned)timeout_s);
		if (!watch)
			return rc;
		if (fmt == FMT_TABLE)
			putchar('\n');
		fflush(stdout);
		sleep((unsigned)watch);
	}
}
