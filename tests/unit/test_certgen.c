// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_certgen.c - generated certificates: the self-signed one verifies as
 * its own root and carries the right SANs, key and extensions; the set that
 * --generate-cert writes verifies with openssl(1), never overwrites, and
 * keeps keys private.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pgktls/certgen.h"
#include "testlib.h"

/* Verify @cert against a store holding only @root, for TLS server use, as @host if set. */
static int verify(X509 *cert, X509 *root, const char *host)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok;

	ck_assert_ptr_nonnull(store);
	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(X509_STORE_add_cert(store, root), 1);
	ck_assert_int_eq(X509_STORE_CTX_init(ctx, store, cert, NULL), 1);
	ck_assert_int_eq(X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER), 1);
	if (host)
		ck_assert_int_eq(X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), host,
							     0), 1);
	ok = X509_verify_cert(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok;
}

static int count_sans(X509 *cert, int type)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int n = 0;

	ck_assert_ptr_nonnull(gens);
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++)
		n += sk_GENERAL_NAME_value(gens, i)->type == type;
	GENERAL_NAMES_free(gens);
	return n;
}

static void cn_of(X509 *cert, char *buf, int len)
{
	ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName,
						   buf, len), 0);
}

static void assert_p256(EVP_PKEY *key)
{
	char group[64];
	size_t len = 0;

	ck_assert_int_eq(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
	ck_assert_int_eq(EVP_PKEY_get_group_name(key, group, sizeof(group), &len), 1);
	ck_assert_str_eq(group, "prime256v1");
}

START_TEST(test_self_signed)
{
	/* Wildcards are skipped; localhost and a spelled-differently ::1 are not duplicated. */
	const char *names[] = { "db.example.com", "10.1.2.3", "fe80::1", "*", "0.0.0.0", "::",
				"LOCALHOST", "0::1" };
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	BIGNUM *serial;
	char err[256] = "", cn[128];
	time_t now = time(NULL), t;
	int r;

	r = certgen_self_signed(names, PGKTLS_ARRAY_SIZE(names), &key, &cert, err, sizeof(err));
	ck_assert_msg(r == 0, "%d: %s", r, err);
	ck_assert_ptr_nonnull(key);
	ck_assert_ptr_nonnull(cert);

	assert_p256(key);
	ck_assert_int_eq(X509_check_private_key(cert, key), 1);
	ck_assert_int_eq(X509_verify(cert, key), 1);
	ck_assert_int_eq(verify(cert, cert, NULL), 1);
	ck_assert_int_eq(verify(cert, cert, "db.example.com"), 1);
	ck_assert_int_eq(verify(cert, cert, "localhost"), 1);
	ck_assert_int_eq(verify(cert, cert, "other.example.com"), 0);

	cn_of(cert, cn, sizeof(cn));
	ck_assert_str_eq(cn, "db.example.com");
	ck_assert_int_eq(X509_check_host(cert, "db.example.com", 0, 0, NULL), 1);
	ck_assert_int_eq(X509_check_host(cert, "localhost", 0, 0, NULL), 1);
	ck_assert_int_eq(X509_check_ip_asc(cert, "10.1.2.3", 0), 1);
	ck_assert_int_eq(X509_check_ip_asc(cert, "fe80::1", 0), 1);
	ck_assert_int_eq(X509_check_ip_asc(cert, "127.0.0.1", 0), 1);
	ck_assert_int_eq(X509_check_ip_asc(cert, "::1", 0), 1);
	ck_assert_int_eq(X509_check_ip_asc(cert, "0.0.0.0", 0), 0);
	ck_assert_int_eq(X509_check_ip_asc(cert, "10.1.2.4", 0), 0);
	/* db.example.com, localhost; 10.1.2.3, fe80::1, 127.0.0.1, ::1 */
	ck_assert_int_eq(count_sans(cert, GEN_DNS), 2);
	ck_assert_int_eq(count_sans(cert, GEN_IPADD), 4);

	ck_assert_int_eq(X509_check_ca(cert), 0);
	ck_assert_uint_eq(X509_get_key_usage(cert), KU_DIGITAL_SIGNATURE);
	ck_assert_uint_eq(X509_get_extended_key_usage(cert), XKU_SSL_SERVER);
	ck_assert_ptr_nonnull(X509_get0_subject_key_id(cert));

	/* From an hour ago, for a year. */
	t = now - 3500;
	ck_assert_int_lt(X509_cmp_time(X509_get0_notBefore(cert), &t), 0);
	t = now - 3700;
	ck_assert_int_gt(X509_cmp_time(X509_get0_notBefore(cert), &t), 0);
	t = now + 364 * 86400;
	ck_assert_int_gt(X509_cmp_time(X509_get0_notAfter(cert), &t), 0);
	t = now + 366 * 86400;
	ck_assert_int_lt(X509_cmp_time(X509_get0_notAfter(cert), &t), 0);

	serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	ck_assert_ptr_nonnull(serial);
	ck_assert_int_eq(BN_num_bits(serial), 128);
	BN_free(serial);

	EVP_PKEY_free(key);
	X509_free(cert);
}
END_TEST

START_TEST(test_self_signed_defaults_and_uniqueness)
{
	EVP_PKEY *k1 = NULL, *k2 = NULL;
	X509 *c1 = NULL, *c2 = NULL;
	char err[256] = "", cn[128];
	const char *lst[] = { "*" };

	ck_assert_int_eq(certgen_self_signed(NULL, 0, &k1, &c1, err, sizeof(err)), 0);
	ck_assert_int_eq(certgen_self_signed(lst, 1, &k2, &c2, err, sizeof(err)), 0);
	cn_of(c1, cn, sizeof(cn));
	ck_assert_str_eq(cn, "localhost");
	cn_of(c2, cn, sizeof(cn));
	ck_assert_str_eq(cn, "localhost");
	ck_assert_int_eq(count_sans(c1, GEN_DNS), 1);
	ck_assert_int_eq(count_sans(c1, GEN_IPADD), 2);
	/* Fresh key and serial each time. */
	ck_assert_int_ne(EVP_PKEY_eq(k1, k2), 1);
	ck_assert_int_ne(ASN1_INTEGER_cmp(X509_get0_serialNumber(c1), X509_get0_serialNumber(c2)),
			 0);
	ck_assert_int_eq(verify(c1, c2, "localhost"), 0);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	X509_free(c1);
	X509_free(c2);
}
END_TEST

START_TEST(test_self_signed_bad_name)
{
	const char *names[] = { "ok.example", "bad name;rm" };
	EVP_PKEY *key = (EVP_PKEY *)1;
	X509 *cert = (X509 *)1;
	char err[256] = "";

	ck_assert_int_eq(certgen_self_signed(names, 2, &key, &cert, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(key);
	ck_assert_ptr_null(cert);
	ck_assert_ptr_nonnull(strstr(err, "'bad name;rm'"));
}
END_TEST

/* What may go into a certificate: gethostname()'s "(none)" (never set) may not. */
START_TEST(test_name_ok)
{
	ck_assert(certgen_name_ok("db-1.example.com"));
	ck_assert(certgen_name_ok("localhost"));
	ck_assert(certgen_name_ok("127.0.0.1"));
	ck_assert(certgen_name_ok("::1"));
	ck_assert(!certgen_name_ok("(none)"));
	ck_assert(!certgen_name_ok(""));
	ck_assert(!certgen_name_ok("bad name;rm"));
	ck_assert(!certgen_name_ok("-leading.example"));
}
END_TEST

static const char *const all_files[] = { "ca.pem", "ca.key", "server.pem", "server-chain.pem",
					 "server.key", "client.pem", "client.key" };

static const char *in(const char *dir, const char *name)
{
	static char buf[4][1024];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static int sh(const char *fmt, ...) PGKTLS_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static X509 *load_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	ck_assert_ptr_nonnull(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_ptr_nonnull(x);
	return x;
}

static EVP_PKEY *load_key(const char *path)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;

	ck_assert_ptr_nonnull(f);
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	ck_assert_ptr_nonnull(k);
	return k;
}

static int count_pem_certs(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;
	int n = 0;

	ck_assert_ptr_nonnull(f);
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		n++;
		X509_free(x);
	}
	fclose(f);
	return n;
}

START_TEST(test_write_dir)
{
	const char *names[] = { "db.example.com", "192.0.2.7" };
	char dir[512], other[512], err[512] = "", cn[128];
	struct stat st;
	mode_t old;
	X509 *srv, *cli;
	EVP_PKEY *key;
	int r;

	snprintf(dir, sizeof(dir), "%s/gen", testlib_tmpdir());
	snprintf(other, sizeof(other), "%s/gen-other", testlib_tmpdir());
	/* A strict umask must not take the certificates' read bits. */
	old = umask(077);
	r = certgen_write_dir(dir, names, 2, err, sizeof(err));
	umask(old);
	ck_assert_msg(r == 0, "%d: %s", r, err);
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0700);
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(all_files); i++) {
		const char *p = in(dir, all_files[i]);

		ck_assert_msg(stat(p, &st) == 0, "%s missing", p);
		ck_assert_msg((st.st_mode & 07777) == (strstr(p, ".key") ? 0600u : 0644u),
			      "%s: mode %o", p, st.st_mode & 07777);
	}

	/* openssl(1) agrees: the server and client chain to the CA, for their purposes. */
	ck_assert_int_eq(sh("openssl verify -CAfile '%s' -purpose sslserver '%s' >/dev/null",
			    in(dir, "ca.pem"), in(dir, "server.pem")), 0);
	ck_assert_int_eq(sh("openssl verify -CAfile '%s' -purpose sslclient '%s' >/dev/null",
			    in(dir, "ca.pem"), in(dir, "client.pem")), 0);
	ck_assert_int_eq(sh("openssl verify -CAfile '%s' -verify_hostname db.example.com '%s' "
			    ">/dev/null", in(dir, "ca.pem"), in(dir, "server.pem")), 0);
	ck_assert_int_ne(sh("openssl verify -CAfile '%s' -purpose sslserver '%s' >/dev/null 2>&1",
			    in(dir, "ca.pem"), in(dir, "client.pem")), 0);

	/* A second CA is a different CA: its root does not verify our server. */
	ck_assert_int_eq(certgen_write_dir(other, NULL, 0, err, sizeof(err)), 0);
	ck_assert_int_ne(sh("openssl verify -CAfile '%s' '%s' >/dev/null 2>&1",
			    in(other, "ca.pem"), in(dir, "server.pem")), 0);

	srv = load_cert(in(dir, "server.pem"));
	key = load_key(in(dir, "server.key"));
	assert_p256(key);
	ck_assert_int_eq(X509_check_private_key(srv, key), 1);
	ck_assert_int_eq(X509_check_ip_asc(srv, "192.0.2.7", 0), 1);
	ck_assert_int_eq(X509_check_ip_asc(srv, "::1", 0), 1);
	ck_assert_int_eq(X509_check_host(srv, "localhost", 0, 0, NULL), 1);
	cn_of(srv, cn, sizeof(cn));
	ck_assert_str_eq(cn, "db.example.com");
	EVP_PKEY_free(key);
	X509_free(srv);

	cli = load_cert(in(dir, "client.pem"));
	key = load_key(in(dir, "client.key"));
	ck_assert_int_eq(X509_check_private_key(cli, key), 1);
	ck_assert_uint_eq(X509_get_extended_key_usage(cli), XKU_SSL_CLIENT);
	cn_of(cli, cn, sizeof(cn));
	ck_assert_str_eq(cn, CERTGEN_CLIENT_CN);
	EVP_PKEY_free(key);
	X509_free(cli);

	key = load_key(in(dir, "ca.key"));
	srv = load_cert(in(dir, "ca.pem"));
	ck_assert_int_eq(X509_check_private_key(srv, key), 1);
	ck_assert_int_eq(X509_check_ca(srv), 1);
	EVP_PKEY_free(key);
	X509_free(srv);

	ck_assert_int_eq(count_pem_certs(in(dir, "server.pem")), 1);
	ck_assert_int_eq(count_pem_certs(in(dir, "server-chain.pem")), 2);
}
END_TEST

START_TEST(test_write_dir_refuses_to_overwrite)
{
	const char *bad[] = { "a b" };
	char dir[512], err[512] = "", before[4096], after[4096];
	struct stat st;
	FILE *f;
	size_t n1, n2;

	snprintf(dir, sizeof(dir), "%s/gen-twice", testlib_tmpdir());
	ck_assert_int_eq(certgen_write_dir(dir, NULL, 0, err, sizeof(err)), 0);
	f = fopen(in(dir, "ca.key"), "r");
	ck_assert_ptr_nonnull(f);
	n1 = fread(before, 1, sizeof(before), f);
	fclose(f);

	ck_assert_int_eq(certgen_write_dir(dir, NULL, 0, err, sizeof(err)), -EEXIST);
	ck_assert_msg(strstr(err, "/gen-twice/ca.pem") && strstr(err, "overwrite"), "%s", err);
	f = fopen(in(dir, "ca.key"), "r");
	ck_assert_ptr_nonnull(f);
	n2 = fread(after, 1, sizeof(after), f);
	fclose(f);
	ck_assert_uint_eq(n1, n2);
	ck_assert_int_eq(memcmp(before, after, n1), 0);

	/* One file in the way, even the last one: nothing at all is written. */
	snprintf(dir, sizeof(dir), "%s/gen-partial", testlib_tmpdir());
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	f = fopen(in(dir, "client.key"), "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	ck_assert_int_eq(certgen_write_dir(dir, NULL, 0, err, sizeof(err)), -EEXIST);
	ck_assert_msg(strstr(err, "/gen-partial/client.key"), "%s", err);
	ck_assert_int_ne(stat(in(dir, "ca.pem"), &st), 0);
	ck_assert_int_ne(stat(in(dir, "server.key"), &st), 0);
	/* An existing directory keeps its mode. */
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0755);

	/* A bad name is reported before anything is written. */
	snprintf(dir, sizeof(dir), "%s/gen-badname", testlib_tmpdir());
	ck_assert_int_eq(certgen_write_dir(dir, bad, 1, err, sizeof(err)), -EINVAL);
	ck_assert_int_ne(stat(in(dir, "ca.pem"), &st), 0);
	ck_assert_int_ne(stat(in(dir, "ca.key"), &st), 0);
}
END_TEST

static Suite *certgen_suite(void)
{
	Suite *s = suite_create("certgen");
	TCase *tc = tcase_create("certgen");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_self_signed);
	tcase_add_test(tc, test_self_signed_defaults_and_uniqueness);
	tcase_add_test(tc, test_self_signed_bad_name);
	tcase_add_test(tc, test_name_ok);
	tcase_add_test(tc, test_write_dir);
	tcase_add_test(tc, test_write_dir_refuses_to_overwrite);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(certgen_suite());
}
