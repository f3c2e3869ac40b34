/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * statjson.h - the stats document: a snapshot (statsnap.h) rendered as one
 * cJSON tree (see docs/STATS.md and docs/stats.schema.json). No I/O: the
 * server (statsrv.c) prints it, and statfmt.c renders its totals as tables
 * and Prometheus text.
 */
#ifndef PGKTLS_STATJSON_H
#define PGKTLS_STATJSON_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "pgktls/statsnap.h"

/* Which part of the document to render. */
enum statjson_part {
	STATJSON_ALL,		/* the whole document */
	STATJSON_TOTALS,	/* counters and the kernel, no connection list */
	STATJSON_CONNECTIONS,	/* the connection list only */
	STATJSON_CONNECTION,	/* one connection, by id */
};

/**
 * statjson_render() - the document, or the part @what of it (schema:
 * docs/stats.schema.json), from @s.
 * Return: a new cJSON tree the caller frees with cJSON_Delete(), or NULL on
 * ENOMEM. STATJSON_CONNECTION for an unknown @id renders an error object.
 */
cJSON *statjson_render(const struct statsnap *s, enum statjson_part what, uint64_t id);

/**
 * statjson_error() - {"schema": N, "error": {"code": @code, "message": @msg}}.
 * Return: a new tree (cJSON_Delete()), or NULL on ENOMEM.
 */
cJSON *statjson_error(const char *code, const char *msg);

/**
 * statjson_refusal_name() - the document's (and the metric label's) name for @r:
 * "bad_request", "not_found", "method_not_allowed", "timeout", "too_large",
 * "version_not_supported", "busy", "aborted", "internal".
 * Return: static storage.
 */
const char *statjson_refusal_name(enum statsnap_refusal r);

#endif /* PGKTLS_STATJSON_H */
