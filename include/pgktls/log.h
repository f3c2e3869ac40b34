/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * log.h - leveled logging to stderr, with a per-connection prefix.
 *
 * Every line is one write(2) so lines from worker threads never interleave.
 * Never pass keys, passwords or startup-packet contents to these functions.
 */
#ifndef PGKTLS_LOG_H
#define PGKTLS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "pgktls/compiler.h"

enum log_level {
	LOG_LVL_ERR,	/* something failed that an operator must look at */
	LOG_LVL_WARN,	/* degraded but serving (fallback, refused client) */
	LOG_LVL_INFO,	/* lifecycle: start, stop, connection open/close */
	LOG_LVL_DEBUG,	/* state transitions and protocol detail */
};

/* Current threshold; read without a lock, written only before workers start. */
extern enum log_level log_threshold;

/**
 * log_level_parse() - map "error", "warn", "info", "debug" to a level.
 * @name: the word from config or command line
 * @out: where to store the level
 *
 * Return: 0, or -EINVAL for an unknown word.
 */
PGKTLS_MUSTCHECK int log_level_parse(const char *name, enum log_level *out);

/**
 * log_enabled() - whether a message at @lvl would be written.
 *
 * Used by the macros below so debug arguments are not even formatted when off.
 */
static inline bool log_enabled(enum log_level lvl)
{
	return lvl <= log_threshold;
}

/**
 * log_msg() - write one line at @lvl.
 * @conn_id: 0 for a line not about a connection, else the connection id
 * @peer: the peer address of that connection, or NULL
 */
void log_msg(enum log_level lvl, uint64_t conn_id, const char *peer, const char *fmt, ...)
	PGKTLS_PRINTF(4, 5);
void log_vmsg(enum log_level lvl, uint64_t conn_id, const char *peer, const char *fmt,
	      va_list ap) PGKTLS_PRINTF(4, 0);

#define LOG_AT(lvl, id, peer, ...)                                                        \
	do {                                                                              \
		if (log_enabled(lvl))                                                     \
			log_msg(lvl, id, peer, __VA_ARGS__);                              \
	} while (0)

#define log_err(...) LOG_AT(LOG_LVL_ERR, 0, NULL, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_LVL_WARN, 0, NULL, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_LVL_INFO, 0, NULL, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_LVL_DEBUG, 0, NULL, __VA_ARGS__)

/* Connection-scoped: @c is any struct with `id` and `peer` (a char array) fields. */
#define clog_err(c, ...) LOG_AT(LOG_LVL_ERR, (c)->id, (c)->peer, __VA_ARGS__)
#define clog_warn(c, ...) LOG_AT(LOG_LVL_WARN, (c)->id, (c)->peer, __VA_ARGS__)
#define clog_info(c, ...) LOG_AT(LOG_LVL_INFO, (c)->id, (c)->peer, __VA_ARGS__)
#define clog_debug(c, ...) LOG_AT(LOG_LVL_DEBUG, (c)->id, (c)->peer, __VA_ARGS__)

/*
 * fatal() - log and exit(1). Only before the event loops start (config,
 * binding); a connection problem never exits the process.
 */
void fatal(const char *fmt, ...) PGKTLS_PRINTF(1, 2) __attribute__((noreturn));

#endif /* PGKTLS_LOG_H */
