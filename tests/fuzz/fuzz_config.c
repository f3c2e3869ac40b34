/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * fuzz_config.c - libFuzzer harness for the pgktls.toml parser.
 *
 * Every input is parsed twice: as a file through config_load_file() (from a
 * memfd, so nothing touches the disk), which is what the daemon does with
 * byte-order marks, CRLF, NUL bytes and over-long lines; and line by line
 * through config_parse_line(), the function the file loader calls, with the
 * section buffer carried from line to line. Whatever parses is then looked
 * at the way the daemon would: config_where() on every key, and a copy of
 * the origins. An error must always come with a message that names a place.
 * Leaks (a value replaced by a later line, an error half-way through a key)
 * are caught by LeakSanitizer.
 *
 * config_validate() is left out on purpose: it opens the files the input
 * names, so a fuzzed path could reach anything on the machine.
 *
 * Built by `./configure --enable-fuzzing` (see tests/fuzz/run.sh).
 */
#include "config.h"

#include "pgktls/config.h"

#include <sys/mman.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_config: %s:%d: %s\n", __FILE__, __LINE__,    \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* Larger inputs only repeat what shorter ones already reach. */
#define FUZZ_MAX_INPUT 65536

/* Use what a parsed config holds, as the daemon would: every getter must cope. */
static void touch(const struct pgktls_config *cfg)
{
	const char *const *keys = config_key_names();
	char where[256];

	for (size_t i = 0; keys[i]; i++) {
		const char *w = config_where(cfg, keys[i], where, sizeof(where));

		FUZZ_CHECK(w && strlen(w) < sizeof(where));
	}
	FUZZ_CHECK(config_verify_name(cfg->tls_verify) != NULL);
	FUZZ_CHECK(config_ktls_name(cfg->ktls) != NULL);
	FUZZ_CHECK(config_tls_version_name(cfg->tls_min_version) != NULL);
	for (size_t i = 0; i < cfg->n_listen; i++)
		FUZZ_CHECK(cfg->listen[i].host != NULL);
}

static void fuzz_file(const uint8_t *data, size_t size)
{
	struct pgktls_config *cfg = config_new_defaults();
	char path[64], err[512];
	int fd, ret;

	FUZZ_CHECK(cfg);
	fd = memfd_create("fuzz.toml", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	err[0] = '\0';
	ret = config_load_file(cfg, path, err, sizeof(err));
	FUZZ_CHECK(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
	if (ret)
		FUZZ_CHECK(strncmp(err, path, strlen(path)) == 0);
	else
		touch(cfg);
	config_free(cfg);
	close(fd);
}

static void fuzz_lines(const uint8_t *data, size_t size)
{
	struct pgktls_config *cfg = config_new_defaults();
	char section[32] = "", err[512];	/* 32: the documented minimum */
	char *text = malloc(size + 1), *line, *next;
	unsigned lineno = 1;
	int ret = 0;

	FUZZ_CHECK(cfg && text);
	memcpy(text, data, size);
	text[size] = '\0';
	for (line = text; line; line = next, lineno++) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		err[0] = '\0';
		ret = config_parse_line(cfg, section, line, "fuzz.toml", lineno, err, sizeof(err));
		FUZZ_CHECK(ret == 0 || ret == -EINVAL || ret == -ENOMEM);
		FUZZ_CHECK(memchr(section, '\0', sizeof(section)));
		if (ret) {
			FUZZ_CHECK(strncmp(err, "fuzz.toml:", 10) == 0);
			break;
		}
	}
	if (ret == 0)
		touch(cfg);
	config_free(cfg);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > FUZZ_MAX_INPUT)
		return 0;
	fuzz_file(data, size);
	fuzz_lines(data, size);
	return 0;
}
