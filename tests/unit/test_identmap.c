// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_identmap.c - the tls_server_identity_map file: accepted lines
 * (fingerprints in both spellings, subjects, quoting, comments, relative
 * paths), every refusal with its file:line, and first-match lookup.
 * Loading the certificates an entry names is tls.c's, tested in test_tls.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgktls/identmap.h"
#include "testlib.h"

#define FP_HEX "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define FP_COLONS "9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:" \
		  "D1:5D:6C:15:B0:F0:0A:08"

static const unsigned char fp[IDENTMAP_SHA256_LEN] = {
	0x9f, 0x86, 0xd0, 0x81, 0x88, 0x4c, 0x7d, 0x65, 0x9a, 0x2f, 0xea, 0xa0, 0xc5, 0x5a, 0xd0,
	0x15, 0xa3, 0xbf, 0x4f, 0x1b, 0x2b, 0x0b, 0x82, 0x2c, 0xd1, 0x5d, 0x6c, 0x15, 0xb0, 0xf0,
	0x0a, 0x08,
};

static const unsigned char other_fp[IDENTMAP_SHA256_LEN] = { 1 };

/* Parse @text (lines separated by \n) as the map "/etc/pgktls/ids.conf". */
static int parse(const char *text, struct identmap **out, char *err, size_t errlen)
{
	struct identmap *m = identmap_new("/etc/pgktls/ids.conf");
	char *copy = strdup(text), *save = NULL, *line;
	unsigned lineno = 0;
	int r = 0;

	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_nonnull(copy);
	err[0] = '\0';
	/* strsep, not strtok: empty lines count. */
	save = copy;
	while (r == 0 && (line = strsep(&save, "\n")))
		r = identmap_parse_line(m, line, ++lineno, err, errlen);
	free(copy);
	if (r < 0) {
		identmap_free(m);
		m = NULL;
	}
	*out = m;
	return r;
}

static void refused(const char *text, const char *expected)
{
	struct identmap *m;
	char err[1024];

	ck_assert_int_eq(parse(text, &m, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(m);
	ck_assert_msg(strcmp(err, expected) == 0, "got '%s'\nwant '%s'", err, expected);
}

START_TEST(test_accepted)
{
	static const char text[] =
		"# pgktls upstream identities\n"
		"\n"
		"sha256:" FP_HEX "  alice.pem  keys/alice.key   # a comment\n"
		"\t subject:/CN=bob/O=Example\t/etc/ssl/bob.pem\t/etc/ssl/bob.key\n"
		"\"subject:/CN=carol \\\"C\\\"/O=Example Inc\" \"my certs/carol.pem\" carol.key\n"
		"   # indented comment\n"
		"subject:/CN=dave ../dave.pem dave.key\r\n";
	struct identmap *m;
	char err[1024];
	const struct identmap_entry *e;

	ck_assert_msg(parse(text, &m, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(m->n, 4);
	e = &m->entries[0];
	ck_assert_int_eq(e->match, IDENTMAP_SHA256);
	ck_assert(memcmp(e->sha256, fp, sizeof(fp)) == 0);
	/* Relative to the map's directory, as written otherwise. */
	ck_assert_str_eq(e->cert_file, "/etc/pgktls/alice.pem");
	ck_assert_str_eq(e->key_file, "/etc/pgktls/keys/alice.key");
	ck_assert_uint_eq(e->lineno, 3);
	e = &m->entries[1];
	ck_assert_int_eq(e->match, IDENTMAP_SUBJECT);
	ck_assert_str_eq(e->subject, "/CN=bob/O=Example");
	ck_assert_str_eq(e->cert_file, "/etc/ssl/bob.pem");
	ck_assert_uint_eq(e->lineno, 4);
	e = &m->entries[2];
	ck_assert_str_eq(e->subject, "/CN=carol \"C\"/O=Example Inc");
	ck_assert_str_eq(e->cert_file, "/etc/pgktls/my certs/carol.pem");
	e = &m->entries[3];
	ck_assert_str_eq(e->subject, "/CN=dave");
	ck_assert_str_eq(e->cert_file, "/etc/pgktls/../dave.pem");
	ck_assert_str_eq(e->key_file, "/etc/pgktls/dave.key");
	ck_assert_uint_eq(e->lineno, 7);
	identmap_free(m);
}
END_TEST

START_TEST(test_fingerprint_spellings)
{
	struct identmap *m;
	char err[1024];

	/* openssl x509 -fingerprint -sha256 prints upper case with colons. */
	ck_assert_msg(parse("sha256:" FP_COLONS " a.pem a.key", &m, err, sizeof(err)) == 0, "%s",
		      err);
	ck_assert(memcmp(m->entries[0].sha256, fp, sizeof(fp)) == 0);
	identmap_free(m);
}
END_TEST

START_TEST(test_refusals)
{
	refused("\n\nsha256:" FP_HEX " a.pem",
		"/etc/pgktls/ids.conf:3: expected MATCH CERTIFICATE_FILE PRIVATE_KEY_FILE, got 2 "
		"fields");
	refused("subject:/CN=a a.pem a.key extra",
		"/etc/pgktls/ids.conf:1: expected MATCH CERTIFICATE_FILE PRIVATE_KEY_FILE, got a "
		"fourth field 'extra'");
	refused("sha256:9f86 a.pem a.key",
		"/etc/pgktls/ids.conf:1: expected 'sha256:' and 64 hex digits (pairs may be "
		"separated by ':'), got 'sha256:9f86'");
	refused("sha256:" FP_HEX "00 a.pem a.key",
		"/etc/pgktls/ids.conf:1: expected 'sha256:' and 64 hex digits (pairs may be "
		"separated by ':'), got 'sha256:" FP_HEX "00'");
	refused("subject:CN=alice a.pem a.key",
		"/etc/pgktls/ids.conf:1: expected a subject in OpenSSL's one-line form "
		"('subject:/CN=alice/O=Example'), got 'subject:CN=alice'");
	refused("cn:alice a.pem a.key",
		"/etc/pgktls/ids.conf:1: expected MATCH as 'sha256:<fingerprint>' or "
		"'subject:/CN=...', got 'cn:alice'");
	refused("\"subject:/CN=alice a.pem a.key",
		"/etc/pgktls/ids.conf:1: unterminated quoted field");
	refused("\"subject:/CN=alice\"a.pem a.key",
		"/etc/pgktls/ids.conf:1: a quoted field must be followed by a blank");
	/* A second line for the same certificate could never be reached. */
	refused("subject:/CN=a a.pem a.key\n# x\nsubject:/CN=a b.pem b.key",
		"/etc/pgktls/ids.conf:3: 'subject:/CN=a' is already matched on line 1: this line "
		"could never be used");
	refused("sha256:" FP_HEX " a.pem a.key\nsha256:" FP_COLONS " b.pem b.key",
		"/etc/pgktls/ids.conf:2: 'sha256:" FP_COLONS "' is already matched on line 1: "
		"this line could never be used");
}
END_TEST

START_TEST(test_find_first_match)
{
	struct identmap *m;
	char err[1024];

	ck_assert_msg(parse("subject:/CN=alice s.pem s.key\n"
			    "sha256:" FP_HEX " f.pem f.key\n"
			    "subject:/CN=bob b.pem b.key\n", &m, err, sizeof(err)) == 0, "%s", err);
	/* Subject and fingerprint both match: the earlier line wins. */
	ck_assert_int_eq(identmap_find(m, fp, "/CN=alice"), 0);
	ck_assert_int_eq(identmap_find(m, fp, "/CN=mallory"), 1);
	ck_assert_int_eq(identmap_find(m, other_fp, "/CN=bob"), 2);
	/* Exact subjects: no prefix, no case folding. */
	ck_assert_int_eq(identmap_find(m, other_fp, "/CN=alice/O=Example"), -1);
	ck_assert_int_eq(identmap_find(m, other_fp, "/CN=Alice"), -1);
	ck_assert_int_eq(identmap_find(m, other_fp, ""), -1);
	identmap_free(m);
}
END_TEST

START_TEST(test_load_file)
{
	char path[4096], err[1024];
	struct identmap *m = (struct identmap *)1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/ids.conf", testlib_tmpdir());
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("# none yet\n\nsubject:/CN=a a.pem /k/a.key\nsubject:/CN=b b.pem\n", f);
	fclose(f);
	ck_assert_int_eq(identmap_load(path, &m, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(m);
	ck_assert_msg(strstr(err, "/ids.conf:4: expected MATCH") != NULL, "%s", err);

	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs("subject:/CN=a a.pem /k/a.key", f);	/* no newline at the end */
	fclose(f);
	ck_assert_msg(identmap_load(path, &m, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(m->n, 1);
	ck_assert_str_eq(m->entries[0].key_file, "/k/a.key");
	ck_assert(strncmp(m->entries[0].cert_file, testlib_tmpdir(),
			  strlen(testlib_tmpdir())) == 0);
	identmap_free(m);

	/* An empty map is a map: every client gets tls_server_certificate. */
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_msg(identmap_load(path, &m, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(m->n, 0);
	identmap_free(m);

	unlink(path);
	ck_assert_int_eq(identmap_load(path, &m, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_null(m);
	ck_assert_msg(strstr(err, "ids.conf: cannot read: No such file") != NULL, "%s", err);
}
END_TEST

static Suite *identmap_suite(void)
{
	Suite *s = suite_create("identmap");
	TCase *tc = tcase_create("map");

	tcase_add_test(tc, test_accepted);
	tcase_add_test(tc, test_fingerprint_spellings);
	tcase_add_test(tc, test_refusals);
	tcase_add_test(tc, test_find_first_match);
	tcase_add_test(tc, test_load_file);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(identmap_suite());
}
