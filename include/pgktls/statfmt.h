/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * statfmt.h - turn a stats document (the JSON statsrv serves, parsed with
 * cJSON) into text: a table for people, and the Prometheus text exposition
 * format (or OpenMetrics) for monitoring. Used by pgktls-stat and by the
 * daemon's HTTP metrics endpoint (statsrv.c); in the library so both share
 * it and the unit tests can check the output.
 */
#ifndef PGKTLS_STATFMT_H
#define PGKTLS_STATFMT_H

#include <stdbool.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "pgktls/compiler.h"

/**
 * statfmt_prometheus() - write @doc (a whole document or a "totals" one) as
 * Prometheus text exposition format 0.0.4, or as OpenMetrics 1.0.0: counters
 * as pgktls_*_total with HELP and TYPE lines, labels for hop, direction,
 * reason, engine; each family's samples together. Connections are not
 * exported one by one (unbounded label values).
 * @openmetrics: OpenMetrics (counter families named without "_total", an
 *	info family, "# EOF" at the end) instead of the text format
 * @out: where to write
 *
 * Used by pgktls-stat --prometheus and by the daemon's metrics_listen endpoint.
 * Return: 0, or -EINVAL if @doc is an error object or lacks "totals".
 */
PGKTLS_MUSTCHECK int statfmt_prometheus(const cJSON *doc, bool openmetrics, FILE *out);

/**
 * statfmt_table() - write @doc as a summary of the totals (if present),
 * then one row per connection (if present) with its offload per direction.
 *
 * Return: 0, or -EINVAL if @doc is an error object.
 */
PGKTLS_MUSTCHECK int statfmt_table(const cJSON *doc, FILE *out);

#endif /* PGKTLS_STATFMT_H */
