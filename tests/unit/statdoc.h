/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * statdoc.h - what the stats unit tests share: a hand-made snapshot, paths
 * into the JSON document rendered from it, and a check against
 * docs/stats.schema.json (test_statjson, test_statfmt, test_statsrv).
 */
#ifndef PGKTLS_STATDOC_H
#define PGKTLS_STATDOC_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "pgktls/statsnap.h"

/**
 * statdoc_snapshot() - fill @s with two connections: one offloaded both ways
 * (the kernel says sw for RX, hw for TX when @kernel_view), one in its
 * handshake; totals, kernel and interface facts to match. The connections
 * and interfaces are static storage: do not statsnap_fini() @s.
 */
void statdoc_snapshot(struct statsnap *s, bool kernel_view);

/** jget() - the item at @path ("a.b.0.c": array indexes as numbers); fails the test if none. */
const cJSON *jget(const cJSON *o, const char *path);

/** jnum() and jstr() - jget() that must be a number, a string. */
double jnum(const cJSON *o, const char *path);
const char *jstr(const cJSON *o, const char *path);

/**
 * statdoc_validate() - fail the test unless @doc matches
 * docs/stats.schema.json (python3-jsonschema; without it, say so and pass).
 */
void statdoc_validate(const cJSON *doc);

#endif /* PGKTLS_STATDOC_H */
