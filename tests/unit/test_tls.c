// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_tls.c - the SSL_CTXs built from config: certificate/key checks with
 * useful errors, ALPN enforcement, upstream verification modes, and hop I/O
 * (relay.c) through real handshakes over socketpairs.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "pgktls/config.h"
#include "pgktls/ktls.h"
#include "pgktls/relay.h"
#include "pgktls/stats.h"
#include "pgktls/tls.h"
#include "testlib.h"

static char certdir[512];

static void make_certs(void)
{
	snprintf(certdir, sizeof(certdir), "%s/certs", testlib_tmpdir());
	if (access(certdir, F_OK) == 0)
		return;
	ck_assert_int_eq(mkdir(certdir, 0700), 0);
	ck_assert_int_eq(testlib_make_certs(certdir), 0);
}

static const char *path(const char *name)
{
	static char buf[4][640];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", certdir, name);
	return buf[i];
}

static struct pgktls_config *cfg_with(const char *const *kv)
{
	struct pgktls_config *cfg = config_new_defaults();
	char err[512];

	ck_assert_ptr_nonnull(cfg);
	for (; kv[0]; kv += 2)
		ck_assert_msg(config_set(cfg, kv[0], kv[1], "test", err, sizeof(err)) == 0, "%s",
			      err);
	return cfg;
}

/* Drive two non-blocking handshakes over a socketpair until both finish or one fails. */
static int handshake(SSL *a, SSL *b)
{
	int ra = 0, rb = 0;

	for (int i = 0; i < 1000 && (ra != 1 || rb != 1); i++) {
		if (ra != 1) {
			ra = SSL_do_handshake(a);
			if (ra <= 0 && SSL_get_error(a, ra) != SSL_ERROR_WANT_READ &&
			    SSL_get_error(a, ra) != SSL_ERROR_WANT_WRITE)
				return -1;
		}
		if (rb != 1) {
			rb = SSL_do_handshake(b);
			if (rb <= 0 && SSL_get_error(b, rb) != SSL_ERROR_WANT_READ &&
			    SSL_get_error(b, rb) != SSL_ERROR_WANT_WRITE)
				return -2;
		}
	}
	return ra == 1 && rb == 1 ? 0 : -3;
}

static void pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
}

START_TEST(test_key_mismatch_names_the_key)
{
	const char *kv[] = { "tls_certificate", path("server.pem"), "tls_private_key",
			     path("client.key"), "tls_verify", "disable", NULL };
	struct pgktls_config *cfg = cfg_with(kv);
	struct tls_contexts t;
	char err[1024];

	ck_assert_int_eq(tls_contexts_build(cfg, &t, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "tls_private_key") && strstr(err, "does not match"), "%s", err);
	ck_assert_msg(strstr(err, "server.pem"), "%s", err);
	config_free(cfg);
}
END_TEST

START_TEST(test_bad_cipher_list_refused)
{
	const char *kv[] = { "tls_certificate", path("server.pem"), "tls_private_key",
			     path("server.key"), "tls_ciphers", "NOT-A-CIPHER", "tls_verify",
			     "disable", NULL };
	struct pgktls_config *cfg = cfg_with(kv);
	struct tls_contexts t;
	char err[1024];

	ck_assert_int_eq(tls_contexts_build(cfg, &t, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "tls_ciphers") && strstr(err, "NOT-A-CIPHER"), "%s", err);
	config_free(cfg);
}
END_TEST

/* Client-facing context with a client that offers @alpn (NULL = none). */
static int client_side_handshake(const unsigned char *alpn, unsigned alpn_len, bool *got_pg)
{
	const char *kv[] = { "tls_certificate", path("server-chain.pem"), "tls_private_key",
			     path("server.key"), "tls_verify", "disable", NULL };
	struct pgktls_config *cfg = cfg_with(kv);
	struct tls_contexts t;
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *srv, *cli;
	char err[1024];
	int sv[2], r;

	ck_assert_int_eq(tls_contexts_build(cfg, &t, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(t.client_side);
	ck_assert_ptr_null(t.server_side);	/* tls_verify = disable */
	pair(sv);
	srv = tls_new_client(&t, sv[0]);
	ck_assert_ptr_nonnull(srv);
	/* The client trusts only the root: the server must send the whole chain. */
	ck_assert_int_eq(SSL_CTX_load_verify_locations(cctx, path("ca.pem"), NULL), 1);
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	cli = SSL_new(cctx);
	SSL_set_fd(cli, sv[1]);
	SSL_set_connect_state(cli);
	SSL_set1_host(cli, "localhost");
	if (alpn)
		SSL_set_alpn_protos(cli, alpn, alpn_len);
	r = handshake(srv, cli);
	if (r == 0)
		*got_pg = tls_alpn_is_postgresql(srv);
	SSL_free(srv);
	SSL_free(cli);
	SSL_CTX_free(cctx);
	close(sv[0]);
	close(sv[1]);
	tls_contexts_fini(&t);
	config_free(cfg);
	ERR_clear_error();
	return r;
}

START_TEST(test_alpn)
{
	static const unsigned char pg[] = "\x0apostgresql";
	static const unsigned char http[] = "\x08http/1.1";
	bool got = false;

	ck_assert_int_eq(client_side_handshake(pg, sizeof(pg) - 1, &got), 0);
	ck_assert(got);
	got = true;
	ck_assert_int_eq(client_side_handshake(NULL, 0, &got), 0);	/* libpq < 17 */
	ck_assert(!got);
	/* Offering ALPN without "postgresql" fails the handshake, as PostgreSQL 17 does. */
	ck_assert_int_ne(client_side_handshake(http, sizeof(http) - 1, &got), 0);
}
END_TEST

static long last_verify_result;	/* of the last upstream_handshake() */

/* pgktls as the upstream client against a server using @cert, with tls_verify = @mode. */
static int upstream_handshake(const char *mode, const char *ca, const char *name, char *why,
			      size_t whylen)
{
	const char *kv[] = { "tls_verify", mode, "tls_server_ca_certificate", ca,
			     "upstream.host", name, NULL };
	struct pgktls_config *cfg = cfg_with(kv);
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	struct tls_contexts t;
	char err[1024];
	SSL *srv, *cli;
	int sv[2], r;

	ck_assert_int_eq(tls_contexts_build(cfg, &t, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(t.server_side);
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(sctx, path("server-chain.pem")), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(sctx, path("server.key"), SSL_FILETYPE_PEM), 1);
	pair(sv);
	srv = SSL_new(sctx);
	SSL_set_fd(srv, sv[0]);
	SSL_set_accept_state(srv);
	cli = tls_new_upstream(&t, sv[1]);
	ck_assert_ptr_nonnull(cli);
	r = handshake(cli, srv);
	last_verify_result = SSL_get_verify_result(cli);
	tls_error_string(cli, why, whylen);
	SSL_free(srv);
	SSL_free(cli);
	SSL_CTX_free(sctx);
	close(sv[0]);
	close(sv[1]);
	tls_contexts_fini(&t);
	config_free(cfg);
	return r;
}

START_TEST(test_upstream_verify_modes)
{
	char why[512], other[640];

	/* A CA that did not sign the server: the server's own leaf stands in for it. */
	snprintf(other, sizeof(other), "%s", path("client.pem"));
	ck_assert_int_eq(upstream_handshake("verify_full", path("ca.pem"), "localhost", why,
					    sizeof(why)), 0);
	ck_assert_int_eq(upstream_handshake("verify_full", path("ca.pem"), "127.0.0.1", why,
					    sizeof(why)), 0);
	ck_assert_int_ne(upstream_handshake("verify_full", path("ca.pem"), "db.example.com", why,
					    sizeof(why)), 0);
	ck_assert_msg(strstr(why, "mismatch") || strstr(why, "verify"), "%s", why);
	ck_assert_int_eq(upstream_handshake("verify_ca", path("ca.pem"), "db.example.com", why,
					    sizeof(why)), 0);
	ck_assert_int_ne(upstream_handshake("verify_ca", other, "localhost", why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, "certificate"), "%s", why);
	ck_assert_int_eq(upstream_handshake("prefer", other, "localhost", why, sizeof(why)), 0);
	/*
	 * prefer does not build the chain at all: the result is not the
	 * "unable to get local issuer" that X509_verify_cert() would leave.
	 */
	ck_assert_int_eq(last_verify_result, X509_V_OK);
}
END_TEST

/* hop_read/hop_write/hop_shutdown_write over userspace TLS, as the relay uses them. */
START_TEST(test_hop_io_over_tls)
{
	const char *kv[] = { "tls_certificate", path("server-chain.pem"), "tls_private_key",
			     path("server.key"), "tls_verify", "disable", NULL };
	struct pgktls_config *cfg = cfg_with(kv);
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	struct tls_contexts t;
	struct stats stats = { 0 };
	struct hop h;
	char err[1024], buf[64];
	SSL *cli;
	int sv[2];

	ck_assert_int_eq(tls_contexts_build(cfg, &t, err, sizeof(err)), 0);
	pair(sv);
	hop_init(&h, sv[0], "client", false);
	h.ssl = tls_new_client(&t, sv[0]);
	cli = SSL_new(cctx);
	SSL_set_fd(cli, sv[1]);
	SSL_set_connect_state(cli);
	ck_assert_int_eq(handshake(h.ssl, cli), 0);
	ck_assert_int_eq(hop_read(&h, buf, sizeof(buf), &stats), -EAGAIN);
	ck_assert_int_eq(SSL_write(cli, "hello", 5), 5);
	ck_assert_int_eq(hop_read(&h, buf, sizeof(buf), &stats), 5);
	ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
	ck_assert_int_eq(hop_write(&h, "world", 5), 5);
	ck_assert_int_eq(SSL_read(cli, buf, sizeof(buf)), 5);
	ck_assert_int_eq(memcmp(buf, "world", 5), 0);
	/* Our close_notify reaches the peer as a clean TLS EOF. */
	ck_assert_int_eq(hop_shutdown_write(&h), 0);
	ck_assert_int_eq(SSL_read(cli, buf, sizeof(buf)), 0);
	ck_assert_int_eq(SSL_get_error(cli, 0), SSL_ERROR_ZERO_RETURN);
	/* And the peer's close_notify is a clean EOF for us. */
	SSL_shutdown(cli);
	ck_assert_int_eq(hop_read(&h, buf, sizeof(buf), &stats), 0);
	ck_assert(h.rx_eof && h.clean_eof);
	SSL_free(h.ssl);
	h.ssl = NULL;
	SSL_free(cli);
	SSL_CTX_free(cctx);
	close(sv[0]);
	close(sv[1]);
	tls_contexts_fini(&t);
	config_free(cfg);
}
END_TEST

/*
 * A context gets the keylog hook (and libssl's hex formatting of every
 * secret) only where a hop's records can leave OpenSSL: to the kernel (its
 * ktls mode is not off and the kernel has kTLS) or to tlsrec (the default:
 * openssl_records = false). Only where OpenSSL keeps the records for good
 * does it read ahead from the first handshake byte.
 */
START_TEST(test_keylog_only_where_records_leave_openssl)
{
	const char *off[] = { "tls_certificate", path("server-chain.pem"), "tls_private_key",
			      path("server.key"), "tls_verify", "prefer", "ktls", "off",
			      "openssl_records", "true", NULL };
	const char *mixed[] = { "tls_certificate", path("server-chain.pem"), "tls_private_key",
				path("server.key"), "tls_verify", "prefer", "ktls_client", "auto",
				"ktls_server", "off", "openssl_records", "true", NULL };
	const char *tlsrec[] = { "tls_certificate", path("server-chain.pem"), "tls_private_key",
				 path("server.key"), "tls_verify", "prefer", "ktls", "off", NULL };
	struct pgktls_config *cfg = cfg_with(off);
	struct tls_contexts t;
	char err[1024];

	ck_assert_int_eq(tls_contexts_build(cfg, &t, err, sizeof(err)), 0);
	ck_assert_ptr_nonnull(t.client_side);
	ck_assert_ptr_nonnull(t.server_side);
	ck_assert(SSL_CTX_get_keylog_callback(t.client_side) == NULL);
	ck_assert(SSL_CTX_get_keylog_callback(t.server_side) == NULL);
	/* OpenSSL's records for good: read-ahead from the first handshake byte. */
	ck_assert_int_eq(SSL_CTX_get_read_ahead(t.client_side), 1);
	ck_assert_int_eq(SSL_CTX_get_read_ahead(t.server_side), 1);
	tls_contexts_fini(&t);
	config_free(cfg);

	cfg = cfg_with(mixed);
	ck_assert_int_eq(tls_contexts_build(cfg, &t, err, sizeof(err)), 0);
	ck_assert(ktls_probe() == (SSL_CTX_get_keylog_callback(t.client_side) != NULL));
	ck_assert(SSL_CTX_get_keylog_callback(t.server_side) == NULL);
	/* kTLS may take the client hop over: no read-ahead before conn.c decides. */
	ck_assert_int_eq(SSL_CTX_get_read_ahead(t.client_side), ktls_probe() ? 0 : 1);
	ck_assert_int_eq(SSL_CTX_get_read_ahead(t.server_side), 1);
	tls_contexts_fini(&t);
	config_free(cfg);

	/* tlsrec takes the records (the default): it needs the secrets and an empty OpenSSL. */
	cfg = cfg_with(tlsrec);
	ck_assert_int_eq(tls_contexts_build(cfg, &t, err, sizeof(err)), 0);
	ck_assert(SSL_CTX_get_keylog_callback(t.client_side) != NULL);
	ck_assert(SSL_CTX_get_keylog_callback(t.server_side) != NULL);
	ck_assert_int_eq(SSL_CTX_get_read_ahead(t.client_side), 0);
	ck_assert_int_eq(SSL_CTX_get_read_ahead(t.server_side), 0);
	tls_contexts_fini(&t);
	config_free(cfg);
}
END_TEST

static Suite *tls_suite(void)
{
	Suite *s = suite_create("tls");
	TCase *tc = tcase_create("contexts");

	tcase_add_unchecked_fixture(tc, make_certs, NULL);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_key_mismatch_names_the_key);
	tcase_add_test(tc, test_bad_cipher_list_refused);
	tcase_add_test(tc, test_alpn);
	tcase_add_test(tc, test_upstream_verify_modes);
	tcase_add_test(tc, test_hop_io_over_tls);
	tcase_add_test(tc, test_keylog_only_where_records_leave_openssl);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(tls_suite());
}
