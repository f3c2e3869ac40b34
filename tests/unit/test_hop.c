// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_hop.c - a hop's engine: which one hop_engage() picks after a
 * handshake under each policy (kTLS cannot run here: the kernel has no
 * CONFIG_TLS, which is itself the "no kernel" case; test_ktls and the VM
 * cover the kTLS engine), what hop_info() reports for each, and payload
 * through the chosen engine.
 */
#include "config.h"

#include "pgktls/hop.h"

#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "pgktls/keysched.h"
#include "pgktls/ktls.h"
#include "pgktls/tlv.h"

#include "testlib.h"

static char certdir[4096];

/* A hop around the server end of a TLS 1.3 session with an OpenSSL client. */
struct hop_pair {
	SSL_CTX *sctx, *cctx;
	SSL *c;			/* the client's */
	int cfd;
	struct hop h;		/* the server end, as pgktls's client hop */
};

static void hop_pair_open(struct hop_pair *p)
{
	char path[4200];
	bool sdone = false, cdone = false;
	int sv[2];
	SSL *s;

	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	p->sctx = SSL_CTX_new(TLS_server_method());
	p->cctx = SSL_CTX_new(TLS_client_method());
	snprintf(path, sizeof(path), "%s/server-chain.pem", certdir);
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(p->sctx, path), 1);
	snprintf(path, sizeof(path), "%s/server.key", certdir);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(p->sctx, path, SSL_FILETYPE_PEM), 1);
	ck_assert_int_eq(SSL_CTX_set_num_tickets(p->sctx, 0), 1);
	ck_assert_int_eq(SSL_CTX_set_min_proto_version(p->sctx, TLS1_3_VERSION), 1);
	ck_assert_int_eq(keysched_ctx_prepare(p->sctx), 0);
	s = SSL_new(p->sctx);
	p->c = SSL_new(p->cctx);
	SSL_set_fd(s, sv[0]);
	SSL_set_fd(p->c, sv[1]);
	SSL_set_tlsext_host_name(p->c, "localhost");
	SSL_set_connect_state(p->c);
	SSL_set_accept_state(s);
	hop_init(&p->h, sv[0], "client", false);
	hop_start_tls(&p->h, s);
	p->cfd = sv[1];
	for (int i = 0; i < 1000 && !(sdone && cdone); i++) {
		struct hop_hs_result res;

		if (!cdone)
			cdone = SSL_do_handshake(p->c) == 1;
		if (!sdone) {
			int r = hop_handshake(&p->h, &res);

			ck_assert_msg(r == 0 || r == -EAGAIN, "handshake: %d %s", r, res.detail);
			sdone = r == 0;
		}
		poll(NULL, 0, 1);
	}
	ck_assert(sdone && cdone);
}

static void hop_pair_close(struct hop_pair *p)
{
	hop_close(NULL, &p->h);
	SSL_free(p->c);
	close(p->cfd);
	SSL_CTX_free(p->sctx);
	SSL_CTX_free(p->cctx);
}

/* One message each way through @p's hop, whatever its engine. */
static void exchange(struct hop_pair *p)
{
	struct stats st;
	char buf[64];
	ssize_t n = -EAGAIN;

	memset(&st, 0, sizeof(st));
	ck_assert_int_eq(hop_write(&p->h, "ping", 4), 4);
	ck_assert_int_eq(SSL_read(p->c, buf, sizeof(buf)), 4);
	ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
	ck_assert_int_eq(SSL_write(p->c, "pong", 4), 4);
	for (int i = 0; i < 100 && n == -EAGAIN; i++) {
		n = hop_read(&p->h, buf, sizeof(buf), &st);
		if (n == -EAGAIN)
			poll(NULL, 0, 1);
	}
	ck_assert_int_eq(n, 4);
	ck_assert_int_eq(memcmp(buf, "pong", 4), 0);
}

static void check_info(const struct hop *h, const char *engine)
{
	struct hop_info in;

	hop_info(h, &in);
	ck_assert_str_eq(in.engine, engine);
	ck_assert(in.tls && in.tls_done);
	ck_assert_str_eq(in.version, "TLSv1.3");
	ck_assert_str_eq(in.sni, "localhost");
	ck_assert_int_ne(in.cipher[0], '\0');
	ck_assert_str_eq(in.peer_subject, "");
	ck_assert(!in.peer_verified);
}

/* ktls = off: tlsrec takes the records and the SSL is freed; the facts stay. */
START_TEST(test_engage_off)
{
	const struct hop_policy pol = { .ktls = CFG_KTLS_OFF, .kernel_tls = true };
	struct hop_pair p;

	hop_pair_open(&p);
	check_info(&p.h, "openssl");
	ck_assert_int_eq(hop_engage(&p.h, &pol), 0);
	ck_assert_ptr_null(p.h.ssl);
	ck_assert_ptr_nonnull(p.h.rec);
	ck_assert_int_eq(hop_splice(&p.h), HOP_SPLICE_NONE);
	ck_assert_int_eq(p.h.ktls.rx, KTLS_ENGINE_USERSPACE);
	ck_assert_int_eq(p.h.ktls.tx_reason, KTLS_R_DISABLED);
	check_info(&p.h, "tlsrec");
	exchange(&p);
	hop_pair_close(&p);
}
END_TEST

/* openssl_records: OpenSSL keeps the records (reading ahead). */
START_TEST(test_engage_openssl_records)
{
	const struct hop_policy pol = { .ktls = CFG_KTLS_OFF, .openssl_records = true };
	struct hop_pair p;

	hop_pair_open(&p);
	ck_assert_int_eq(hop_engage(&p.h, &pol), 0);
	ck_assert_ptr_nonnull(p.h.ssl);
	ck_assert_ptr_null(p.h.rec);
	check_info(&p.h, "openssl");
	exchange(&p);
	hop_pair_close(&p);
}
END_TEST

/* No kTLS in the kernel: auto falls back to tlsrec; required refuses (but can still write). */
START_TEST(test_engage_no_kernel)
{
	const struct hop_policy aut = { .ktls = CFG_KTLS_AUTO, .kernel_tls = false };
	const struct hop_policy req = { .ktls = CFG_KTLS_REQUIRED, .kernel_tls = false };
	struct hop_pair p;

	hop_pair_open(&p);
	ck_assert_int_eq(hop_engage(&p.h, &aut), 0);
	ck_assert_int_eq(p.h.ktls.rx_reason, KTLS_R_NO_KERNEL);
	check_info(&p.h, "tlsrec");
	exchange(&p);
	hop_pair_close(&p);

	hop_pair_open(&p);
	ck_assert_int_eq(hop_engage(&p.h, &req), -EOPNOTSUPP);
	ck_assert_int_eq(p.h.ktls.tx, KTLS_ENGINE_USERSPACE);
	ck_assert_int_eq(p.h.ktls.tx_reason, KTLS_R_NO_KERNEL);
	exchange(&p);	/* the ErrorResponse that says why still gets through */
	hop_pair_close(&p);
}
END_TEST

/* A plain hop: no TLS facts, the stream splices as it is; peek leaves the bytes. */
START_TEST(test_plain)
{
	struct hop_info in;
	struct stats st;
	struct hop h;
	char buf[8];
	int sv[2];

	memset(&st, 0, sizeof(st));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	hop_init(&h, sv[0], "client", false);
	hop_info(&h, &in);
	ck_assert_str_eq(in.engine, "plain");
	ck_assert(!in.tls && !hop_has_tls(&h));
	ck_assert_int_eq(hop_splice(&h), HOP_SPLICE_STREAM);
	ck_assert_int_eq(hop_peek(&h, buf, 1), -EAGAIN);
	ck_assert(!hop_has_unread(&h));
	ck_assert_int_eq(write(sv[1], "S", 1), 1);
	ck_assert(hop_has_unread(&h));
	ck_assert_int_eq(hop_peek(&h, buf, sizeof(buf)), 1);
	ck_assert_int_eq(hop_read(&h, buf, sizeof(buf), &st), 1);
	ck_assert_int_eq(buf[0], 'S');
	close(sv[1]);
	ck_assert_int_eq(hop_read(&h, buf, sizeof(buf), &st), 0);
	ck_assert(h.rx_eof && h.clean_eof);
	hop_close(NULL, &h);
	ck_assert_int_eq(h.fd, -1);
}
END_TEST

/* Export @h into @buf, free it as a handed-over hop is, and import it around a new fd. */
static void move_hop(struct hop *h, uint8_t *buf, size_t cap)
{
	const char *name = h->name;
	struct tlv_writer w;
	int fd = dup(h->fd);

	ck_assert_int_ge(fd, 0);
	tlv_writer_init(&w, buf, cap);
	ck_assert_int_eq(hop_export(h, &w), 0);
	hop_close(NULL, h);
	ck_assert_int_eq(hop_import(h, fd, name, buf, w.len), 0);
	memset(buf, 0, w.len);
}

/*
 * Binary upgrade: a tlsrec hop moves (engine, flags, keys, the TLS facts
 * for the stats) and carries on; an openssl hop cannot; a plain hop keeps
 * its EOF; an engine this binary does not adopt is refused.
 */
START_TEST(test_move)
{
	const struct hop_policy off = { .ktls = CFG_KTLS_OFF, .kernel_tls = true };
	const struct hop_policy keep = { .ktls = CFG_KTLS_OFF, .openssl_records = true };
	static uint8_t buf[160 * 1024];
	struct tlv_writer w;
	struct hop_pair p;
	struct stats st;
	struct hop h;
	char c;
	int sv[2];

	hop_pair_open(&p);
	ck_assert_int_eq(hop_engage(&p.h, &off), 0);
	exchange(&p);
	ck_assert(hop_movable(&p.h));
	move_hop(&p.h, buf, sizeof(buf));
	ck_assert_ptr_nonnull(p.h.rec);
	check_info(&p.h, "tlsrec");
	exchange(&p);
	move_hop(&p.h, buf, sizeof(buf));
	exchange(&p);
	hop_pair_close(&p);

	hop_pair_open(&p);
	ck_assert_int_eq(hop_engage(&p.h, &keep), 0);
	ck_assert(!hop_movable(&p.h));
	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(hop_export(&p.h, &w), -EOPNOTSUPP);
	hop_pair_close(&p);

	memset(&st, 0, sizeof(st));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	hop_init(&h, sv[0], "server", false);
	close(sv[1]);
	ck_assert_int_eq(hop_read(&h, &c, 1, &st), 0);
	move_hop(&h, buf, sizeof(buf));
	ck_assert_str_eq(h.eng->name, "plain");
	ck_assert(h.rx_eof && h.clean_eof && !h.tx_shut && !h.is_tcp);
	ck_assert_str_eq(h.name, "server");
	/* An engine name this binary does not adopt: refused, a plain hop left to close. */
	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(hop_export(&h, &w), 0);
	ck_assert_uint_eq(buf[2], 5);
	memcpy(buf + 4, "ktlsx", 5);
	hop_close(NULL, &h);
	ck_assert_int_eq(hop_import(&h, -1, "server", buf, w.len), -EOPNOTSUPP);
	ck_assert_str_eq(h.eng->name, "plain");
	hop_close(NULL, &h);
}
END_TEST

/*
 * A kTLS hop's side of the state (no kernel needed: the kernel's record
 * state moves with the socket, and import does not touch it): the session
 * for KeyUpdate, the post-handshake state with an answer due, the send
 * key's budget and the kTLS facts come back, and export again the same.
 */
START_TEST(test_move_ktls)
{
	static uint8_t in[4096], out1[4096], out2[4096];
	const uint16_t M = TLV_MANDATORY;
	uint8_t secret[32], budget[16] = { 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80 };
	const uint8_t msg[TLSMSG_SAVED_LEN] = { 1, 0, 2 };
	const uint8_t st[8] = { KTLS_ENGINE_KERNEL, KTLS_ENGINE_KERNEL, 0, 0, 0, 0, 0, 0 };
	struct tlv_writer w, ws;
	uint8_t state[1024];
	struct hop_info info;
	struct hop h;
	long at;

	memset(secret, 0x5a, sizeof(secret));
	tlv_writer_init(&ws, state, sizeof(state));
	at = tlv_begin(&ws, 1 | M);
	tlv_put_u8(&ws, 1 | M, KEYSCHED_AES_128_GCM);
	tlv_put_u16(&ws, 2 | M, TLS1_3_VERSION);
	tlv_put_u8(&ws, 3 | M, 1);
	tlv_put(&ws, 4 | M, secret, sizeof(secret));
	tlv_put(&ws, 5 | M, secret, sizeof(secret));
	ck_assert_int_eq(tlv_end(&ws, at), 0);
	tlv_put(&ws, 2 | M, msg, sizeof(msg));
	tlv_put(&ws, 3 | M, budget, sizeof(budget));
	tlv_put(&ws, 4, st, sizeof(st));
	ck_assert_int_eq(tlv_writer_err(&ws), 0);
	tlv_writer_init(&w, in, sizeof(in));
	tlv_put(&w, 1 | M, "ktls", 4);
	tlv_put_u8(&w, 2 | M, 1);
	tlv_put(&w, 3 | M, state, ws.len);
	tlv_put(&w, 4, "TLSv1.3", 7);
	tlv_put(&w, 5, "TLS_AES_128_GCM_SHA256", 22);
	ck_assert_int_eq(tlv_writer_err(&w), 0);

	ck_assert_int_eq(hop_import(&h, -1, "server", in, w.len), 0);
	ck_assert_str_eq(h.eng->name, "ktls");
	ck_assert_int_eq(hop_splice(&h), HOP_SPLICE_RECORDS);
	ck_assert(h.is_tcp && h.msg_ready && hop_movable(&h));
	ck_assert_ptr_nonnull(h.ks);
	ck_assert_int_eq(h.ks->version, TLS1_3_VERSION);
	ck_assert(h.ks->is_server);
	ck_assert(tlsmsg_answer_due(&h.msg));
	ck_assert_uint_eq(h.txb.records, 7);
	ck_assert_uint_eq(h.txb.limit, 1ull << 23);
	ck_assert(h.txb.tls13);
	hop_info(&h, &info);
	ck_assert_str_eq(info.engine, "ktls");
	ck_assert_str_eq(info.version, "TLSv1.3");
	ck_assert_str_eq(info.cipher, "TLS_AES_128_GCM_SHA256");
	ck_assert_int_eq(info.ktls.rx, KTLS_ENGINE_KERNEL);
	ck_assert_int_eq(info.ktls.tx, KTLS_ENGINE_KERNEL);

	tlv_writer_init(&w, out1, sizeof(out1));
	ck_assert_int_eq(hop_export(&h, &w), 0);
	hop_close(NULL, &h);
	ck_assert_int_eq(hop_import(&h, -1, "server", out1, w.len), 0);
	tlv_writer_init(&ws, out2, sizeof(out2));
	ck_assert_int_eq(hop_export(&h, &ws), 0);
	ck_assert_uint_eq(ws.len, w.len);
	ck_assert_mem_eq(out2, out1, w.len);
	hop_close(NULL, &h);

	/* A secret of the wrong length for the cipher's hash: refused, nothing kept. */
	tlv_writer_init(&ws, state, sizeof(state));
	at = tlv_begin(&ws, 1 | M);
	tlv_put_u8(&ws, 1 | M, KEYSCHED_AES_256_GCM);
	tlv_put_u16(&ws, 2 | M, TLS1_3_VERSION);
	tlv_put_u8(&ws, 3 | M, 1);
	tlv_put(&ws, 4 | M, secret, sizeof(secret));
	tlv_put(&ws, 5 | M, secret, sizeof(secret));
	ck_assert_int_eq(tlv_end(&ws, at), 0);
	tlv_put(&ws, 2 | M, msg, sizeof(msg));
	tlv_put(&ws, 3 | M, budget, sizeof(budget));
	tlv_writer_init(&w, in, sizeof(in));
	tlv_put(&w, 1 | M, "ktls", 4);
	tlv_put_u8(&w, 2 | M, 1);
	tlv_put(&w, 3 | M, state, ws.len);
	ck_assert_int_eq(hop_import(&h, -1, "server", in, w.len), -EBADMSG);
	ck_assert_str_eq(h.eng->name, "plain");
	ck_assert_ptr_null(h.ks);
	hop_close(NULL, &h);
}
END_TEST

static Suite *hop_suite(void)
{
	Suite *s = suite_create("hop");
	TCase *tc = tcase_create("engines");

	tcase_add_test(tc, test_engage_off);
	tcase_add_test(tc, test_engage_openssl_records);
	tcase_add_test(tc, test_engage_no_kernel);
	tcase_add_test(tc, test_plain);
	tcase_add_test(tc, test_move);
	tcase_add_test(tc, test_move_ktls);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	snprintf(certdir, sizeof(certdir), "%s", testlib_tmpdir());
	if (testlib_make_certs(certdir) != 0)
		return 1;
	return run_suite(hop_suite());
}
