/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * statfmt.h - turn a stats document (the JSON statsrv serves, parsed with
 * cJSON) into text: a table for people, and the Prometheus text exposition
 * format for monitoring. Used by pgktls-stat; kept in the library so the
 * unit tests can check the output.
 */
#ifndef PGKTLS_STATFMT_H
#define PGKTLS_STATFMT_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "pgktls/compiler.h"

/**
 * statfmt_prometheus() - write @doc (a whole document or a "totals" one) as
 * Prometheus text exposition format 0.0.4: counters as pgktls_*_total with
 * HELP and TYPE lines, labels for hop, direction, reason, engine. Connections
 * are not exported one by one (unbounded label values).
 * @out: where to write
 *
 * Return: 0, or -EINVAL if @doc is an error object or lacks "totals".
 */
PGKTLS_MUSTCHECK int statfmt_prometheus(const cJSON *doc, FILE *out);

/**
 * statfmt_table() - write @doc as a summary of the totals (if present),
 * then one row per connection (if present) with its offload per direction.
 *
 * Return: 0, or -EINVAL if @doc is an error object.
 */
PGKTLS_MUSTCHECK int statfmt_table(const cJSON *doc, FILE *out);

#endif /* PGKTLS_STATFMT_H */
