/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * compiler.h - attributes and invariant checks shared by every module.
 */
#ifndef PGKTLS_COMPILER_H
#define PGKTLS_COMPILER_H

#include <stdio.h>
#include <stdlib.h>

/* A fallible function whose result must be looked at. */
#define PGKTLS_MUSTCHECK __attribute__((warn_unused_result))
#define PGKTLS_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define PGKTLS_UNUSED __attribute__((unused))

#define PGKTLS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define pgktls_likely(x) __builtin_expect(!!(x), 1)
#define pgktls_unlikely(x) __builtin_expect(!!(x), 0)

/*
 * PGKTLS_BUG_ON() - a broken invariant: report where and abort, so a core
 * dump shows the state instead of the process limping on with it.
 */
#define PGKTLS_BUG_ON(cond)                                                                \
	do {                                                                               \
		if (pgktls_unlikely(cond)) {                                               \
			fprintf(stderr, "pgktls: BUG at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                           \
		}                                                                          \
	} while (0)

#endif /* PGKTLS_COMPILER_H */
