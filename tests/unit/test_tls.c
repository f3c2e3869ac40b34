// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_tls.c - the SSL_CTXs built from config: certificate/key checks with
 * useful errors, ALPN enforcement, upstream verification modes, and hop I/O
 * (relay.c) through real handshakes over socketpairs, and upstream identities
 * (tls_server_identity_map) presented for verified client certificates.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(sctx, path("server.key"), SSL_FILETYPE_PEM),
			 1);
	pair(sv);
	srv = SSL_new(sctx);
	SSL_set_fd(srv, sv[0]);
	SSL_set_accept_state(srv);
	cli = tls_new_upstream(&t, sv[1], NULL);
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
	hop_start_tls(&h, tls_new_client(&t, sv[0]));
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

/*
 * In certdir/crl: a CA that may sign CRLs (testlib's may not), leaves "good"
 * and "revoked" signed by it, ca.crl revoking "revoked", the same CRL in a
 * hashed directory, and server.key encrypted with the passphrase "s3cret".
 */
static void make_crl_certs(void)
{
	char cmd[4096];

	make_certs();
	if (access(path("crl/ca.crl"), F_OK) == 0)
		return;
	snprintf(cmd, sizeof(cmd),
		 "set -e; mkdir -p '%s/crl/dir'; cd '%s/crl'; "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
		 "  -subj /CN=crl-ca -keyout ca.key -out ca.pem "
		 "  -addext basicConstraints=critical,CA:TRUE "
		 "  -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null; "
		 "for n in good revoked; do "
		 "  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "    -subj /CN=$n -keyout $n.key -out $n.csr 2>/dev/null; "
		 "  openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -days 2 "
		 "    -set_serial 0x$(openssl rand -hex 8) -out $n.pem 2>/dev/null; "
		 "done; : > index.txt; echo 1000 > crlnumber; "
		 "printf '[ca]\\ndefault_ca = d\\n[d]\\ndatabase = index.txt\\n"
		 "crlnumber = crlnumber\\ndefault_md = sha256\\ndefault_crl_days = 2\\n' > ca.cnf; "
		 "openssl ca -config ca.cnf -keyfile ca.key -cert ca.pem -revoke revoked.pem "
		 "  2>/dev/null; "
		 "openssl ca -config ca.cnf -keyfile ca.key -cert ca.pem -gencrl -out ca.crl "
		 "  2>/dev/null; "
		 "cp ca.crl dir/$(openssl crl -hash -noout -in ca.crl).r0; "
		 "openssl pkey -in ../server.key -aes256 -passout pass:s3cret -out server-enc.key; "
		 "chmod 600 *.key",
		 certdir, certdir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Client-facing context from @kv against a client presenting @cert (NULL: none). */
static int client_cert_handshake(const char *const *kv, const char *cert, const char *key,
				 bool *verified, char *why, size_t whylen)
{
	struct pgktls_config *cfg = cfg_with(kv);
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	struct tls_contexts t;
	char err[1024];
	SSL *srv, *cli;
	int sv[2], r;

	ck_assert_msg(tls_contexts_build(cfg, &t, err, sizeof(err)) == 0, "%s", err);
	if (cert) {
		ck_assert_int_eq(SSL_CTX_use_certificate_file(cctx, cert, SSL_FILETYPE_PEM), 1);
		ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(cctx, key, SSL_FILETYPE_PEM), 1);
	}
	pair(sv);
	srv = tls_new_client(&t, sv[0]);
	cli = SSL_new(cctx);
	SSL_set_fd(cli, sv[1]);
	SSL_set_connect_state(cli);
	/* TLS 1.2: the server's verdict on the certificate is known when both are done. */
	SSL_set_max_proto_version(cli, TLS1_2_VERSION);
	r = handshake(srv, cli);
	*verified = r == 0 && tls_peer_verified(srv);
	tls_error_string(srv, why, whylen);
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

START_TEST(test_client_crl_and_optional)
{
	/* Copies: path() reuses its buffers. */
	char chain[640], key[640], ca[640], crl[640], dir[640], why[512];
	const char *file_kv[] = { "tls_certificate", chain, "tls_private_key", key,
				  "tls_verify", "disable", "tls_client_ca_certificate", ca,
				  "tls_client_crl", crl, NULL };
	const char *dir_kv[] = { "tls_certificate", chain, "tls_private_key", key,
				 "tls_verify", "disable", "tls_client_ca_certificate", ca,
				 "tls_client_crl", dir, "tls_client_certificate", "optional",
				 NULL };
	bool verified;

	make_crl_certs();
	snprintf(chain, sizeof(chain), "%s", path("server-chain.pem"));
	snprintf(key, sizeof(key), "%s", path("server.key"));
	snprintf(ca, sizeof(ca), "%s", path("crl/ca.pem"));
	snprintf(crl, sizeof(crl), "%s", path("crl/ca.crl"));
	snprintf(dir, sizeof(dir), "%s", path("crl/dir"));

	/* A CRL file: the good certificate passes, the revoked one is named. */
	ck_assert_int_eq(client_cert_handshake(file_kv, path("crl/good.pem"),
					       path("crl/good.key"), &verified, why,
					       sizeof(why)), 0);
	ck_assert(verified);
	ck_assert_int_ne(client_cert_handshake(file_kv, path("crl/revoked.pem"),
					       path("crl/revoked.key"), &verified, why,
					       sizeof(why)), 0);
	ck_assert_msg(strstr(why, "certificate revoked (subject /CN=revoked, serial 0x"), "%s",
		      why);
	/* required (the default): no certificate, no handshake. */
	ck_assert_int_ne(client_cert_handshake(file_kv, NULL, NULL, &verified, why, sizeof(why)),
			 0);

	/* A hashed directory, optional: none is fine, a revoked one is not. */
	ck_assert_int_eq(client_cert_handshake(dir_kv, NULL, NULL, &verified, why, sizeof(why)),
			 0);
	ck_assert(!verified);
	ck_assert_int_eq(client_cert_handshake(dir_kv, path("crl/good.pem"), path("crl/good.key"),
					       &verified, why, sizeof(why)), 0);
	ck_assert(verified);
	ck_assert_int_ne(client_cert_handshake(dir_kv, path("crl/revoked.pem"),
					       path("crl/revoked.key"), &verified, why,
					       sizeof(why)), 0);
	ck_assert_msg(strstr(why, "certificate revoked (subject /CN=revoked"), "%s", why);
	/* optional still checks what comes: another CA's certificate is refused. */
	ck_assert_int_ne(client_cert_handshake(dir_kv, path("client.pem"), path("client.key"),
					       &verified, why, sizeof(why)), 0);
	ck_assert_msg(strstr(why, "unable to get local issuer"), "%s", why);
}
END_TEST

START_TEST(test_crl_file_without_a_crl)
{
	const char *kv[] = { "tls_certificate", path("server-chain.pem"), "tls_private_key",
			     path("server.key"), "tls_verify", "disable",
			     "tls_client_ca_certificate", path("ca.pem"), "tls_client_crl",
			     path("ca.pem"), NULL };
	struct pgktls_config *cfg = cfg_with(kv);
	struct tls_contexts t;
	char err[1024];

	ck_assert_int_eq(tls_contexts_build(cfg, &t, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "test: tls_client_crl: no PEM CRL") && strstr(err, "ca.pem"),
		      "%s", err);
	config_free(cfg);
}
END_TEST

/* Build the client-facing context with the encrypted key and @cmd (NULL: none). */
static int build_with_passphrase(const char *cmd, char *err, size_t errlen)
{
	const char *kv[] = { "tls_certificate", path("server-chain.pem"), "tls_private_key",
			     path("crl/server-enc.key"), "tls_verify", "disable",
			     cmd ? "tls_private_key_passphrase_command" : NULL, cmd, NULL };
	struct pgktls_config *cfg = cfg_with(kv);
	struct tls_contexts t;
	int r;

	err[0] = '\0';
	r = tls_contexts_build(cfg, &t, err, errlen);
	if (r == 0)
		tls_contexts_fini(&t);
	config_free(cfg);
	return r;
}

START_TEST(test_passphrase_command)
{
	char err[1024], cmd[800];
	FILE *f;
	int r;

	make_crl_certs();
	ck_assert_msg(build_with_passphrase("echo s3cret", err, sizeof(err)) == 0, "%s", err);
	/* %p is the prompt, %% a percent sign; only the first line counts, CR LF is a line end. */
	snprintf(cmd, sizeof(cmd), "echo '%%p' > '%s'; printf 's3cret\\r\\n%%%%s\\n' more",
		 path("crl/prompt"));
	ck_assert_msg(build_with_passphrase(cmd, err, sizeof(err)) == 0, "%s", err);
	f = fopen(path("crl/prompt"), "r");
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(cmd, sizeof(cmd), f));
	fclose(f);
	ck_assert_str_eq(cmd, "Enter PEM pass phrase:\n");

	ck_assert_int_eq(build_with_passphrase("echo wrong", err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "test: tls_private_key: cannot decrypt key file '") &&
		      strstr(err, "server-enc.key': wrong passphrase"), "%s", err);
	ck_assert_int_eq(build_with_passphrase("echo s3cret; exit 3", err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "test: tls_private_key_passphrase_command: command 'echo s3cret; "
			     "exit 3' for key file '") && strstr(err, "exited with status 3"),
		      "%s", err);
	ck_assert_int_eq(build_with_passphrase("true", err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "printed no passphrase"), "%s", err);
	ck_assert_int_eq(build_with_passphrase(NULL, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "is encrypted: set tls_private_key_passphrase_command"), "%s",
		      err);
	/*
	 * The daemon blocks SIGTERM and ignores SIGPIPE: the command must not
	 * inherit either (its shell's SigBlk is zero, SigIgn lacks bit 13).
	 * The shell reads its own status with builtins only: while it waits
	 * for a child, dash blocks every signal for a moment, so a child
	 * reading /proc/$$/status could catch that instead.
	 */
	{
		sigset_t term, old;
		void (*oldpipe)(int) = signal(SIGPIPE, SIG_IGN);

		sigemptyset(&term);
		sigaddset(&term, SIGTERM);
		pthread_sigmask(SIG_BLOCK, &term, &old);
		r = build_with_passphrase("exec 3</proc/self/status; b=; i=; "
					  "while read -r k v <&3; do case $k in "
					  "SigBlk:) b=$v;; SigIgn:) i=$v;; esac; done; "
					  "case $b in ''|*[!0]*) exit 1;; esac; "
					  "[ $((0x$i & 0x1000)) = 0 ] && echo s3cret",
					  err, sizeof(err));
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		signal(SIGPIPE, oldpipe);
		ck_assert_msg(r == 0, "%s", err);
	}
	/* Never in an error: the passphrase itself. */
	ck_assert_int_eq(build_with_passphrase("echo s3cret; exit 1", err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(strstr(strstr(err, "failed:"), "s3cret"));
}
END_TEST

/* Write @text to the identity map "ids.conf" in the CRL directory; its path in @out. */
static void write_map(const char *text, char *out, size_t outlen)
{
	FILE *f;

	snprintf(out, outlen, "%s", path("crl/ids.conf"));
	f = fopen(out, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

static int build_map(const char *text, const char *cmd, struct tls_contexts *t, char *err,
		     size_t errlen)
{
	char map[640], chain[640], key[640], ca[640];
	const char *kv[] = { "tls_certificate", chain, "tls_private_key", key,
			     "tls_client_ca_certificate", ca, "tls_client_certificate", "optional",
			     "tls_server_identity_map", map, "upstream.host", "127.0.0.1",
			     cmd ? "tls_server_private_key_passphrase_command" : NULL, cmd, NULL };
	struct pgktls_config *cfg;
	int r;

	write_map(text, map, sizeof(map));
	snprintf(chain, sizeof(chain), "%s", path("server-chain.pem"));
	snprintf(key, sizeof(key), "%s", path("server.key"));
	snprintf(ca, sizeof(ca), "%s", path("crl/ca.pem"));
	cfg = cfg_with(kv);
	err[0] = '\0';
	r = tls_contexts_build(cfg, t, err, errlen);
	config_free(cfg);
	return r;
}

/* Accept any client certificate: the test reads what was presented. */
static int accept_any(X509_STORE_CTX *store PGKTLS_UNUSED, void *arg PGKTLS_UNUSED)
{
	return 1;
}

/*
 * A client presenting @cert (NULL: none) to pgktls's client side, then the
 * identity it picks presented upstream to a server that asks for a
 * certificate. Return: the upstream peer's subject in @subject ("" if none)
 * and the length of the chain the server received.
 */
static int identity_round(const struct tls_contexts *t, const char *cert, const char *key,
			  const struct tls_identity **picked, char *subject, size_t len)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method()), *sctx = SSL_CTX_new(TLS_server_method());
	STACK_OF(X509) *chain;
	SSL *srv, *cli;
	int sv[2], n = -1;

	if (cert) {
		ck_assert_int_eq(SSL_CTX_use_certificate_file(cctx, cert, SSL_FILETYPE_PEM), 1);
		ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(cctx, key, SSL_FILETYPE_PEM), 1);
	}
	pair(sv);
	srv = tls_new_client(t, sv[0]);
	cli = SSL_new(cctx);
	SSL_set_fd(cli, sv[1]);
	SSL_set_connect_state(cli);
	ck_assert_int_eq(handshake(srv, cli), 0);
	*picked = tls_identity_pick(t, srv);
	SSL_free(srv);
	SSL_free(cli);
	close(sv[0]);
	close(sv[1]);

	/* The upstream hop: PostgreSQL's side asks for a client certificate. */
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(sctx, path("server-chain.pem")), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(sctx, path("server.key"), SSL_FILETYPE_PEM),
			 1);
	SSL_CTX_set_verify(sctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(sctx, accept_any, NULL);
	pair(sv);
	srv = SSL_new(sctx);
	SSL_set_fd(srv, sv[0]);
	SSL_set_accept_state(srv);
	cli = tls_new_upstream(t, sv[1], *picked);
	ck_assert_ptr_nonnull(cli);
	ck_assert_int_eq(handshake(cli, srv), 0);
	subject[0] = '\0';
	if (SSL_get0_peer_certificate(srv)) {
		X509_NAME_oneline(X509_get_subject_name(SSL_get0_peer_certificate(srv)), subject,
				  (int)len);
		chain = SSL_get_peer_cert_chain(srv);	/* the server side: without the leaf */
		n = chain ? sk_X509_num(chain) : 0;
	}
	SSL_free(srv);
	SSL_free(cli);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	close(sv[0]);
	close(sv[1]);
	return n;
}

START_TEST(test_upstream_identity)
{
	const struct tls_identity *id;
	struct tls_contexts t;
	char text[4096], err[1024], subject[256], fp[128] = "", cmd[1024];
	FILE *p;

	make_crl_certs();
	/* good.pem's fingerprint, as openssl prints it and as an operator pastes it. */
	snprintf(cmd, sizeof(cmd), "openssl x509 -noout -fingerprint -sha256 -in '%s' | "
		 "sed 's/.*=//'", path("crl/good.pem"));
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(fgets(fp, sizeof(fp), p));
	pclose(p);
	fp[strcspn(fp, "\n")] = '\0';
	snprintf(cmd, sizeof(cmd), "cat '%s' '%s' > '%s'", path("client.pem"), path("ca.pem"),
		 path("crl/client-chain.pem"));
	ck_assert_int_eq(system(cmd), 0);

	/* good -> client (with its chain), by fingerprint; relative names. */
	snprintf(text, sizeof(text), "# identities\nsha256:%s client-chain.pem ../client.key\n",
		 fp);
	ck_assert_msg(build_map(text, NULL, &t, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(t.n_identities, 1);
	ck_assert_int_eq(identity_round(&t, path("crl/good.pem"), path("crl/good.key"), &id,
					subject, sizeof(subject)), 1);
	ck_assert_ptr_eq(id, &t.identities[0]);
	ck_assert_str_eq(id->subject, "/CN=client");
	ck_assert_str_eq(subject, "/CN=client");
	/* No certificate (optional): no identity, and no certificate upstream. */
	ck_assert_int_eq(identity_round(&t, NULL, NULL, &id, subject, sizeof(subject)), -1);
	ck_assert_ptr_null(id);
	ck_assert_str_eq(subject, "");
	tls_contexts_fini(&t);

	/* By subject, with an encrypted key unlocked by the passphrase command. */
	ck_assert_msg(build_map("subject:/CN=good ../server.pem server-enc.key\n",
				"echo s3cret", &t, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(identity_round(&t, path("crl/good.pem"), path("crl/good.key"), &id,
					subject, sizeof(subject)), 0);
	ck_assert_ptr_nonnull(id);
	ck_assert_str_eq(subject, "/CN=server");
	tls_contexts_fini(&t);

	/* Errors name the map's file and line. */
	ck_assert_int_ne(build_map("\nsubject:/CN=good ../server.pem ../client.key\n", NULL, &t,
				   err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "ids.conf:2: private key file: does not match the certificate"),
		      "%s", err);
	ck_assert_int_ne(build_map("subject:/CN=good ../server.pem server-enc.key\n", "exit 3",
				   &t, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "tls_server_private_key_passphrase_command: command 'exit 3' "
				  "for key file") &&
		      strstr(err, "exited with status 3"), "%s", err);
	ck_assert_int_ne(build_map("subject:/CN=good missing.pem ../client.key\n", NULL, &t, err,
				   sizeof(err)), 0);
	ck_assert_msg(strstr(err, "ids.conf:1: certificate file: cannot load certificate chain"),
		      "%s", err);
	ck_assert_int_ne(build_map("subject:/CN=good\n", NULL, &t, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "ids.conf:1: expected MATCH CERTIFICATE_FILE"), "%s", err);
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
	tcase_add_test(tc, test_client_crl_and_optional);
	tcase_add_test(tc, test_crl_file_without_a_crl);
	tcase_add_test(tc, test_passphrase_command);
	tcase_add_test(tc, test_upstream_identity);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(tls_suite());
}
