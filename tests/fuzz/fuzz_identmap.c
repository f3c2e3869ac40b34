/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * fuzz_identmap.c - libFuzzer harness for the tls_server_identity_map
 * parser (src/identmap.c): quoting, escapes, fingerprints, comments and
 * duplicate detection, line by line as identmap_load() feeds it.
 *
 * Built by `./configure --enable-fuzzing` and run by tests/fuzz/run.sh with
 * the other targets. Besides memory safety (and leaks, through
 * LeakSanitizer: a refused line must free what it had parsed), the
 * contract is checked: an error names the map and the line; an accepted
 * line adds exactly one entry with its line number, non-empty file names
 * and, for a subject, one starting with '/'; every entry is found again by
 * what it matches on, first match winning. identmap_load() is left out: it
 * opens a file, and reads lines exactly as below.
 */
#include "config.h"

#include "pgktls/identmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_identmap: %s:%d: %s\n", __FILE__, __LINE__,  \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* Larger inputs only repeat what shorter ones already reach. */
#define FUZZ_MAX_INPUT 65536
#define MAP_PATH "/etc/pgktls/ids.conf"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct identmap *m;
	char *text, *line, *rest, err[1024], where[64];
	unsigned lineno = 0;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	m = identmap_new(MAP_PATH);
	text = malloc(size + 1);
	if (!m || !text) {
		identmap_free(m);
		free(text);
		return 0;
	}
	memcpy(text, data, size);
	text[size] = '\0';
	rest = text;
	/* A NUL ends the text as identmap_load() refuses it: lines up to there. */
	while ((line = strsep(&rest, "\n"))) {
		size_t before = m->n;
		int r;

		lineno++;
		err[0] = '\0';
		r = identmap_parse_line(m, line, lineno, err, sizeof(err));
		if (r < 0) {
			FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
			FUZZ_CHECK(m->n == before);
			snprintf(where, sizeof(where), "%s:%u: ", MAP_PATH, lineno);
			FUZZ_CHECK(strncmp(err, where, strlen(where)) == 0);
			break;
		}
		FUZZ_CHECK(m->n == before || m->n == before + 1);
		if (m->n > before) {
			const struct identmap_entry *e = &m->entries[before];

			FUZZ_CHECK(e->lineno == lineno);
			FUZZ_CHECK(e->cert_file && e->cert_file[0]);
			FUZZ_CHECK(e->key_file && e->key_file[0]);
			FUZZ_CHECK(e->match == IDENTMAP_SHA256 ||
				   (e->subject && e->subject[0] == '/'));
		}
	}
	for (size_t i = 0; i < m->n; i++) {
		const struct identmap_entry *e = &m->entries[i];
		static const unsigned char none[IDENTMAP_SHA256_LEN];
		long hit = e->match == IDENTMAP_SHA256
				   ? identmap_find(m, e->sha256, "")
				   : identmap_find(m, none, e->subject);

		/* Found, at this line or an earlier one that matches the same certificate. */
		FUZZ_CHECK(hit >= 0 && (size_t)hit <= i);
	}
	identmap_free(m);
	free(text);
	return 0;
}
