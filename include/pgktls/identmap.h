/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * identmap.h - the upstream identity map (tls_server_identity_map): which
 * certificate pgktls presents to PostgreSQL for which verified client
 * certificate, in the spirit of pg_ident.conf.
 *
 *   # MATCH                                     CERTIFICATE_FILE      PRIVATE_KEY_FILE
 *   sha256:9F86D081884C7D659A2FEAA0C55AD015...  alice-chain.pem       alice.key
 *   subject:/CN=bob/O=Example                   /etc/pgktls/bob.pem   /etc/pgktls/bob.key
 *   "subject:/CN=carol/O=Example Inc"           carol.pem             carol.key
 *
 * This module parses the file and matches entries; it loads no certificate
 * (tls.c does, naming each entry by file:line). The first line that matches
 * wins, as in pg_hba.conf.
 */
#ifndef PGKTLS_IDENTMAP_H
#define PGKTLS_IDENTMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "pgktls/compiler.h"

/* Length of a SHA-256 digest, the one fingerprint a map line may use. */
#define IDENTMAP_SHA256_LEN 32

/* What a line matches the client's (verified) leaf certificate on. */
enum identmap_match {
	IDENTMAP_SHA256,	/* the leaf's SHA-256 fingerprint (over its DER form), as
				 * `openssl x509 -fingerprint -sha256` prints it */
	IDENTMAP_SUBJECT,	/* its subject in OpenSSL's one-line form, "/CN=alice/O=Example" */
};

/* One line of the map. */
struct identmap_entry {
	enum identmap_match match;
	unsigned char sha256[IDENTMAP_SHA256_LEN]; /* IDENTMAP_SHA256 */
	char *subject;		/* IDENTMAP_SUBJECT; owned */
	char *cert_file;	/* PEM: the certificate, then its chain; owned, absolute or
				 * relative to the map's directory as written */
	char *key_file;		/* PEM private key, maybe encrypted; owned, as cert_file */
	unsigned lineno;	/* for "identities.conf:3: ..." */
};

struct identmap {
	char *path;		/* the map file, as configured; owned */
	struct identmap_entry *entries; /* in file order; owned */
	size_t n;
};

/**
 * identmap_new() - an empty map for lines of @path.
 * Return: a map the caller frees with identmap_free(), or NULL on ENOMEM.
 */
struct identmap *identmap_new(const char *path);

/** identmap_free() - free @m and its entries; NULL is fine. */
void identmap_free(struct identmap *m);

/**
 * identmap_parse_line() - add one line of the map file to @m.
 * @line: without its newline, NUL-terminated
 * @lineno: 1-based
 * @err: "identities.conf:3: expected 'sha256:<64 hex digits>', got 'sha256:12'"
 *
 * Fields are separated by blanks; a field may be written in double quotes
 * (to hold blanks, with \" and \\ inside). '#' starts a comment outside
 * quotes. Blank and comment lines add nothing. A relative file name is
 * taken relative to the map file's directory. A MATCH already used on an
 * earlier line is an error (that line could never be reached).
 *
 * Return: 0, -EINVAL with @err filled, or -ENOMEM.
 */
PGKTLS_MUSTCHECK int identmap_parse_line(struct identmap *m, const char *line, unsigned lineno,
					 char *err, size_t errlen);

/**
 * identmap_load() - read and parse the map file @path.
 * @out: the map on success (freed with identmap_free()), NULL on failure
 * @err: "identities.conf:3: ..." or "identities.conf: cannot read: ..."
 *
 * A file with no entry is fine (every client gets tls_server_certificate).
 *
 * Return: 0, -EINVAL for a bad line, -errno if unreadable, -ENOMEM.
 */
PGKTLS_MUSTCHECK int identmap_load(const char *path, struct identmap **out, char *err,
				   size_t errlen);

/**
 * identmap_find() - the first entry matching a client certificate.
 * @sha256: its SHA-256 fingerprint (over the DER encoding)
 * @subject: its subject, X509_NAME_oneline() form
 *
 * The caller has verified the certificate: this compares, nothing more.
 * Return: the index of the entry in @m->entries, or -1.
 */
long identmap_find(const struct identmap *m, const unsigned char sha256[IDENTMAP_SHA256_LEN],
		   const char *subject);

#endif /* PGKTLS_IDENTMAP_H */
