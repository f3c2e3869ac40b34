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
#include <signal.h>
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
		"  -t, --timeout SECS  give up on a silent daemon after SECS (default 5; with\n"
		"                      --upgrade, the wait for its outcome, default 60)\n"
		"  -U, --upgrade       upgrade the daemon's binary (SIGUSR2 to the pid it\n"
		"                      reports) and wait for the outcome: 0 upgraded, 1 failed\n"
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
		fprintf(stderr, "pgktls-stat: %s: sending the request: %s\n", path,
			strerror(errno));
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

/* The daemon's pid and its upgrade counters, from one "totals" document. */
struct upgrade_view {
	long pid;
	double started, failed;
	long previous_pid;	/* 0: not started by an upgrade */
	double previous_listeners, previous_draining;
	char error[300];
};

static int upgrade_view(const char *path, struct upgrade_view *v)
{
	const cJSON *up, *prev, *x;
	cJSON *doc;
	char *text;
	int rc = fetch(path, "totals", 5, &text);

	memset(v, 0, sizeof(*v));
	if (rc != EXIT_OK)
		return rc;
	doc = cJSON_Parse(text);
	free(text);
	up = cJSON_GetObjectItemCaseSensitive(doc, "upgrade");
	x = cJSON_GetObjectItemCaseSensitive(doc, "pid");
	if (!cJSON_IsObject(up) || !cJSON_IsNumber(x)) {
		fprintf(stderr, "pgktls-stat: %s: this pgktls does not report upgrades\n", path);
		cJSON_Delete(doc);
		return EXIT_ANSWER_ERROR;
	}
	v->pid = (long)x->valuedouble;
	x = cJSON_GetObjectItemCaseSensitive(up, "started");
	v->started = cJSON_IsNumber(x) ? x->valuedouble : 0;
	x = cJSON_GetObjectItemCaseSensitive(up, "failed");
	v->failed = cJSON_IsNumber(x) ? x->valuedouble : 0;
	x = cJSON_GetObjectItemCaseSensitive(up, "last_error");
	snprintf(v->error, sizeof(v->error), "%s", cJSON_IsString(x) ? x->valuestring : "");
	prev = cJSON_GetObjectItemCaseSensitive(up, "previous");
	x = cJSON_GetObjectItemCaseSensitive(prev, "pid");
	v->previous_pid = cJSON_IsNumber(x) ? (long)x->valuedouble : 0;
	x = cJSON_GetObjectItemCaseSensitive(prev, "listeners");
	v->previous_listeners = cJSON_IsNumber(x) ? x->valuedouble : 0;
	x = cJSON_GetObjectItemCaseSensitive(prev, "draining");
	v->previous_draining = cJSON_IsNumber(x) ? x->valuedouble : 0;
	cJSON_Delete(doc);
	return EXIT_OK;
}

/*
 * --upgrade: SIGUSR2 to the pid the daemon reports, then watch the stats
 * socket (the new process serves the same one) until the outcome shows:
 * another pid that names ours as its previous one, or our failure count up.
 */
static int upgrade(const char *path, unsigned timeout_s)
{
	struct upgrade_view before, now;
	int rc = upgrade_view(path, &before);

	if (rc != EXIT_OK)
		return rc;
	if (kill((pid_t)before.pid, SIGUSR2) == -1) {
		fprintf(stderr, "pgktls-stat: cannot signal pgktls (pid %ld): %s\n", before.pid,
			strerror(errno));
		return errno == EPERM ? EXIT_PERMISSION : EXIT_NOT_ANSWERING;
	}
	for (unsigned i = 0; i < timeout_s * 10; i++) {
		usleep(100 * 1000);
		if (upgrade_view(path, &now) != EXIT_OK)
			continue;	/* a moment between the two processes: ask again */
		if (now.pid != before.pid && now.previous_pid == before.pid) {
			printf("upgraded: pid %ld -> %ld (%.0f listening socket(s) handed over; pid "
			       "%ld drains %.0f connection(s))\n", before.pid, now.pid,
			       now.previous_listeners, before.pid, now.previous_draining);
			return EXIT_OK;
		}
		if (now.pid == before.pid && now.failed > before.failed) {
			fprintf(stderr, "pgktls-stat: upgrade failed, pid %ld keeps serving: %s\n",
				now.pid, now.error[0] ? now.error : "see its log");
			return EXIT_ANSWER_ERROR;
		}
		if (i == 20 && now.pid == before.pid && now.started == before.started) {
			fprintf(stderr, "pgktls-stat: pid %ld did not start an upgrade (draining, or "
					"one already under way: see its log)\n", now.pid);
			return EXIT_ANSWER_ERROR;
		}
	}
	fprintf(stderr, "pgktls-stat: no outcome of the upgrade within %u s\n", timeout_s);
	return EXIT_NOT_ANSWERING;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", no_argument, NULL, 'p' },
		{ "watch", required_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "upgrade", no_argument, NULL, 'U' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = getenv("PGKTLS_STATS_SOCKET");
	enum format fmt = FMT_TABLE;
	unsigned long watch = 0, timeout_s = 5;
	char req[256] = "", *end;
	bool do_upgrade = false, timeout_given = false;
	int opt, rc;

	if (!path || !*path)
		path = DEFAULT_SOCKET;
	while ((opt = getopt_long(argc, argv, "s:jpw:t:UVh", opts, NULL)) != -1) {
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
				fprintf(stderr,
					"pgktls-stat: --%s: expected seconds (1-86400), got '%s'\n",
					opt == 'w' ? "watch" : "timeout", optarg);
				return EXIT_USAGE;
			}
			if (opt == 'w')
				watch = v;
			else
				timeout_s = v;
			timeout_given = timeout_given || opt == 't';
			break;
		}
		case 'U': do_upgrade = true; break;
		case 'V': printf("pgktls-stat %s\n", PACKAGE_VERSION); return EXIT_OK;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (do_upgrade) {
		if (optind < argc || watch) {
			fprintf(stderr, "pgktls-stat: --upgrade takes no request and no --watch\n");
			return EXIT_USAGE;
		}
		return upgrade(path, timeout_given ? (unsigned)timeout_s : 60);
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
