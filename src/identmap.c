// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * identmap.c - parse tls_server_identity_map and match client certificates
 * against it. No OpenSSL here: tls.c loads the files an entry names and
 * computes the client's fingerprint and subject.
 */
#include "config.h"

#include "pgktls/identmap.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgktls/hex.h"

/* Longest field: a subject can be long, a path up to PATH_MAX. */
#define FIELD_MAX 4096

struct identmap *identmap_new(const char *path)
{
	struct identmap *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->path = strdup(path);
	if (!m->path) {
		free(m);
		return NULL;
	}
	return m;
}

static void entry_fini(struct identmap_entry *e)
{
	free(e->subject);
	free(e->cert_file);
	free(e->key_file);
}

void identmap_free(struct identmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++)
		entry_fini(&m->entries[i]);
	free(m->entries);
	free(m->path);
	free(m);
}

/*
 * The next field of @*p into @out: blanks skipped, a quoted field
 * unquoted. Return: 1 for a field, 0 at the end of the line (or a comment),
 * -EINVAL for an unterminated quote or an overlong field (@why says which).
 */
static int next_field(const char **p, char *out, size_t outlen, const char **why)
{
	const char *s = *p;
	size_t n = 0;

	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	if (!*s || *s == '#') {
		*p = s;
		return 0;
	}
	if (*s == '"') {
		for (s++; *s && *s != '"'; s++) {
			if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
				s++;
			if (n + 1 >= outlen)
				goto too_long;
			out[n++] = *s;
		}
		if (*s != '"') {
			*why = "unterminated quoted field";
			return -EINVAL;
		}
		s++;
		if (*s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '#') {
			*why = "a quoted field must be followed by a blank";
			return -EINVAL;
		}
	} else {
		for (; *s && *s != ' ' && *s != '\t' && *s != '\r' && *s != '#'; s++) {
			if (n + 1 >= outlen)
				goto too_long;
			out[n++] = *s;
		}
	}
	out[n] = '\0';
	*p = s;
	return 1;
too_long:
	*why = "field too long";
	return -EINVAL;
}

/* 64 hex digits, in pairs optionally separated by ':' (openssl's "AB:CD:..."). */
static bool parse_sha256(const char *s, unsigned char out[IDENTMAP_SHA256_LEN])
{
	for (size_t i = 0; i < IDENTMAP_SHA256_LEN; i++) {
		int hi, lo;

		if (i > 0 && *s == ':')
			s++;
		hi = hex_digit((unsigned char)s[0]);
		lo = hi < 0 ? -1 : hex_digit((unsigned char)s[1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (unsigned char)(hi << 4 | lo);
		s += 2;
	}
	return *s == '\0';
}

/* @file as written if absolute, else under the directory of the map @base. */
static char *resolve(const char *base, const char *file)
{
	const char *slash = strrchr(base, '/');
	size_t dlen = slash ? (size_t)(slash - base) + 1 : 0;
	char *out;

	if (file[0] == '/' || dlen == 0)
		return strdup(file);
	out = malloc(dlen + strlen(file) + 1);
	if (!out)
		return NULL;
	memcpy(out, base, dlen);
	strcpy(out + dlen, file);
	return out;
}

static bool same_match(const struct identmap_entry *a, const struct identmap_entry *b)
{
	if (a->match != b->match)
		return false;
	if (a->match == IDENTMAP_SHA256)
		return memcmp(a->sha256, b->sha256, sizeof(a->sha256)) == 0;
	return strcmp(a->subject, b->subject) == 0;
}

int identmap_parse_line(struct identmap *m, const char *line, unsigned lineno, char *err,
			size_t errlen)
{
	char fields[4][FIELD_MAX];
	struct identmap_entry e = { .lineno = lineno }, *grown;
	const char *p = line, *why = NULL;
	int n = 0, r = 0;

	while (n < 4 && (r = next_field(&p, fields[n], sizeof(fields[n]), &why)) == 1)
		n++;
	if (n < 4 && r < 0) {
		snprintf(err, errlen, "%s:%u: %s", m->path, lineno, why);
		return -EINVAL;
	}
	if (n == 0)
		return 0;
	if (n == 4) {
		snprintf(err, errlen, "%s:%u: expected MATCH CERTIFICATE_FILE PRIVATE_KEY_FILE, "
			 "got a fourth field '%.64s'", m->path, lineno, fields[3]);
		return -EINVAL;
	}
	if (n < 3) {
		snprintf(err, errlen, "%s:%u: expected MATCH CERTIFICATE_FILE PRIVATE_KEY_FILE, "
			 "got %d field%s", m->path, lineno, n, n == 1 ? "" : "s");
		return -EINVAL;
	}
	if (strncmp(fields[0], "sha256:", 7) == 0) {
		e.match = IDENTMAP_SHA256;
		if (!parse_sha256(fields[0] + 7, e.sha256)) {
			snprintf(err, errlen, "%s:%u: expected 'sha256:' and 64 hex digits (pairs "
				 "may be separated by ':'), got '%.128s'", m->path, lineno,
				 fields[0]);
			return -EINVAL;
		}
	} else if (strncmp(fields[0], "subject:", 8) == 0) {
		e.match = IDENTMAP_SUBJECT;
		if (fields[0][8] != '/') {
			snprintf(err, errlen, "%s:%u: expected a subject in OpenSSL's one-line "
				 "form ('subject:/CN=alice/O=Example'), got '%.128s'", m->path,
				 lineno, fields[0]);
			return -EINVAL;
		}
	} else {
		snprintf(err, errlen, "%s:%u: expected MATCH as 'sha256:<fingerprint>' or "
			 "'subject:/CN=...', got '%.128s'", m->path, lineno, fields[0]);
		return -EINVAL;
	}
	if (e.match == IDENTMAP_SUBJECT) {
		e.subject = strdup(fields[0] + 8);
		if (!e.subject)
			goto nomem;
	}
	for (size_t i = 0; i < m->n; i++) {
		if (same_match(&m->entries[i], &e)) {
			snprintf(err, errlen, "%s:%u: '%.128s' is already matched on line %u: this "
				 "line could never be used", m->path, lineno, fields[0],
				 m->entries[i].lineno);
			entry_fini(&e);
			return -EINVAL;
		}
	}
	e.cert_file = resolve(m->path, fields[1]);
	e.key_file = resolve(m->path, fields[2]);
	if (!e.cert_file || !e.key_file)
		goto nomem;
	grown = realloc(m->entries, (m->n + 1) * sizeof(*m->entries));
	if (!grown)
		goto nomem;
	m->entries = grown;
	m->entries[m->n++] = e;
	return 0;
nomem:
	entry_fini(&e);
	snprintf(err, errlen, "%s:%u: out of memory", m->path, lineno);
	return -ENOMEM;
}

int identmap_load(const char *path, struct identmap **out, char *err, size_t errlen)
{
	struct identmap *m;
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	ssize_t len;
	FILE *f;
	int r = 0;

	*out = NULL;
	m = identmap_new(path);
	if (!m) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-r));
		identmap_free(m);
		return r;
	}
	while ((len = getline(&line, &cap, f)) != -1) {
		size_t l = (size_t)len;

		lineno++;
		if (l > 0 && line[l - 1] == '\n')
			line[--l] = '\0';
		if (strlen(line) != l) {
			snprintf(err, errlen, "%s:%u: a NUL byte in the line", path, lineno);
			r = -EINVAL;
			break;
		}
		r = identmap_parse_line(m, line, lineno, err, errlen);
		if (r < 0)
			break;
	}
	if (r == 0 && ferror(f)) {
		r = -EIO;
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(EIO));
	}
	free(line);
	fclose(f);
	if (r < 0) {
		identmap_free(m);
		return r;
	}
	*out = m;
	return 0;
}

long identmap_find(const struct identmap *m, const unsigned char sha256[IDENTMAP_SHA256_LEN],
		   const char *subject)
{
	for (size_t i = 0; i < m->n; i++) {
		const struct identmap_entry *e = &m->entries[i];

		bool hit = e->match == IDENTMAP_SHA256
				   ? memcmp(e->sha256, sha256, IDENTMAP_SHA256_LEN) == 0
				   : strcmp(e->subject, subject) == 0;

		if (hit)
			return (long)i;
	}
	return -1;
}
