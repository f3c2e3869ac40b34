// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * log.c - one formatted line per call, written with a single write(2) so
 * lines from different worker threads never interleave on stderr.
 */
#include "config.h"

#include "pgktls/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

enum log_level log_threshold = LOG_LVL_INFO;

static const char *const level_names[] = {
	[LOG_LVL_ERR] = "error",
	[LOG_LVL_WARN] = "warn",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(level_names); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(name, "warning") == 0) {
		*out = LOG_LVL_WARN;
		return 0;
	}
	return -EINVAL;
}

void log_vmsg(enum log_level lvl, uint64_t conn_id, const char *peer, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ", ts.tv_nsec / 1000000,
		     level_names[lvl]);
	if (r > 0)
		n += (size_t)r;
	if (conn_id) {
		r = snprintf(line + n, sizeof(line) - n, "c#%llu %s: ", (unsigned long long)conn_id,
			     peer ? peer : "-");
		if (r > 0)
			n = n + (size_t)r < sizeof(line) ? n + (size_t)r : sizeof(line) - 1;
	}
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n = n + (size_t)r < sizeof(line) - 1 ? n + (size_t)r : sizeof(line) - 2;
	line[n++] = '\n';

	/* A short write to stderr is not worth retrying in a loop: it is a log. */
	if (write(STDERR_FILENO, line, n) < 0)
		(void)errno;
}

void log_msg(enum log_level lvl, uint64_t conn_id, const char *peer, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, conn_id, peer, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERR, 0, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
