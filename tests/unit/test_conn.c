/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_conn.c - the connection state machine's decisions: which close
 * reason a hop failure is counted under, and where our own ErrorResponse
 * goes when bytes for the client are still on their way.
 */
#include "config.h"

#include "pgktls/conn.h"

#include <sys/socket.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "pgktls/keysched.h"
#include "pgktls/ktls.h"
#include "pgktls/pgproto.h"
#include "pgktls/stats.h"

#include "testlib.h"

static char certdir[4096];

/*
 * Only a KeyUpdate the kernel cannot follow is key_update. A malformed
 * KeyUpdate, or any other failure whose log text names a KeyUpdate, is the
 * failing peer's error: the reason comes from the code, never the text.
 */
START_TEST(test_hop_failure_reason)
{
	static const int others[] = { -EPROTO, -EBADMSG, -ENOBUFS, -ECONNRESET, -EPIPE, -EIO,
				      -ENOMEM, -EINVAL };

	ck_assert_int_eq(conn_hop_failure_reason(true, -EKEYREJECTED), CONN_CLOSE_KEYUPDATE);
	ck_assert_int_eq(conn_hop_failure_reason(false, -EKEYREJECTED), CONN_CLOSE_KEYUPDATE);
	/* A send key at its record limit that cannot change (TLS 1.2, no kernel rekeying). */
	ck_assert_int_eq(conn_hop_failure_reason(true, -EKEYEXPIRED), CONN_CLOSE_KEYUPDATE);
	ck_assert_int_eq(conn_hop_failure_reason(false, -EKEYEXPIRED), CONN_CLOSE_KEYUPDATE);
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(others); i++) {
		ck_assert_int_eq(conn_hop_failure_reason(true, others[i]),
				 CONN_CLOSE_CLIENT_ERROR);
		ck_assert_int_eq(conn_hop_failure_reason(false, others[i]),
				 CONN_CLOSE_SERVER_ERROR);
	}
	ck_assert_str_eq(conn_close_reason_name(conn_hop_failure_reason(true, -EPROTO)),
			 "client_error");
	ck_assert_str_eq(conn_close_reason_name(conn_hop_failure_reason(false, -EKEYREJECTED)),
			 "key_update");
}
END_TEST

/* A TLS 1.3 server SSL on @sfd, handshaken with an OpenSSL client on @cfd. */
static void tls_pair(int sfd, int cfd, SSL_CTX **sctx, SSL_CTX **cctx, SSL **s, SSL **c)
{
	char path[4200];
	bool sdone = false, cdone = false;

	*sctx = SSL_CTX_new(TLS_server_method());
	*cctx = SSL_CTX_new(TLS_client_method());
	ck_assert_ptr_nonnull(*sctx);
	ck_assert_ptr_nonnull(*cctx);
	snprintf(path, sizeof(path), "%s/server-chain.pem", certdir);
	ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(*sctx, path), 1);
	snprintf(path, sizeof(path), "%s/server.key", certdir);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(*sctx, path, SSL_FILETYPE_PEM), 1);
	/* No tickets: tlsrec takes over right after the handshake, nothing in flight. */
	ck_assert_int_eq(SSL_CTX_set_num_tickets(*sctx, 0), 1);
	ck_assert_int_eq(SSL_CTX_set_min_proto_version(*sctx, TLS1_3_VERSION), 1);
	ck_assert_int_eq(keysched_ctx_prepare(*sctx), 0);
	*s = SSL_new(*sctx);
	*c = SSL_new(*cctx);
	SSL_set_fd(*s, sfd);
	SSL_set_fd(*c, cfd);
	SSL_set_accept_state(*s);
	SSL_set_connect_state(*c);
	for (int i = 0; i < 1000 && !(sdone && cdone); i++) {
		if (!cdone)
			cdone = SSL_do_handshake(*c) == 1;
		if (!sdone)
			sdone = SSL_do_handshake(*s) == 1;
		poll(NULL, 0, 1);
	}
	ck_assert(sdone && cdone);
}

/* A NoticeResponse of @len bytes in all, as a server would relay it. */
static void notice(uint8_t *out, size_t len)
{
	out[0] = 'N';
	pgproto_put_u32(out + 1, (uint32_t)(len - 1));
	out[5] = 'M';
	memset(out + 6, 'x', len - 8);
	out[len - 2] = '\0';
	out[len - 1] = '\0';
}

/*
 * Defect 12 of issue 11: the server fails before the client was sent a
 * byte, while the client's tlsrec holds a record of the server's first
 * message half sent. Our ErrorResponse used to overwrite that buffer: the
 * engine then counted the rest of its record as bytes of the
 * ErrorResponse (the client read a cut message) or failed with EIO. The
 * record must be finished first, and the ErrorResponse follow it whole.
 */
START_TEST(test_error_after_half_sent_record)
{
	static uint8_t got[65536];
	enum { NOTICE = 16000 };
	SSL_CTX *sctx, *cctx;
	struct relay_dir d;
	struct stats st;
	struct hop h;
	uint8_t want[RELAY_BUF_SIZE];
	size_t ngot = 0, nwant;
	int sv[2], small = 4096;
	SSL *s, *c;
	ssize_t n;

	memset(&st, 0, sizeof(st));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	tls_pair(sv[0], sv[1], &sctx, &cctx, &s, &c);
	hop_init(&h, sv[0], "client", false);
	hop_start_tls(&h, s);
	ck_assert_int_eq(hop_use_tlsrec(&h), 0);
	ck_assert_int_eq(setsockopt(h.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);

	/* The relay's write of the server's first message: one record, partly sent. */
	relay_dir_init(&d);
	ck_assert_int_eq(relay_dir_reserve(&d), 0);
	notice(d.buf, NOTICE);
	d.scan = d.tail = NOTICE;
	n = hop_write(&h, d.buf, NOTICE);
	ck_assert_int_eq(n, -EAGAIN);
	ck_assert(hop_tx_partial(&h));
	ck_assert_uint_eq(d.bytes, 0);

	/* Half relayed: no message of ours may follow. */
	ck_assert_int_eq(conn_queue_error(&d, &h, false, "08006", "gone", NULL, NULL), -EBUSY);
	ck_assert_uint_eq(d.tail, NOTICE);
	/* Whole: the notice goes on, then ours. */
	ck_assert_int_eq(conn_queue_error(&d, &h, true, "08006", "gone", NULL, NULL), 0);
	nwant = d.tail;
	memcpy(want, d.buf, nwant);
	ck_assert_int_eq(want[NOTICE], 'E');
	ck_assert_uint_eq(pgproto_get_u32(want + NOTICE + 1) + 1, nwant - NOTICE);

	/* What fail()'s flush does, while the client reads. */
	for (int i = 0; i < 10000 && (d.head < d.tail || ngot < nwant); i++) {
		int r;

		if (d.head < d.tail) {
			n = hop_write(&h, d.buf + d.head, d.tail - d.head);
			ck_assert_msg(n > 0 || n == -EAGAIN, "write: %zd (%s)", n, h.err);
			if (n > 0)
				d.head += (uint32_t)n;
		}
		r = SSL_read(c, got + ngot, (int)(sizeof(got) - ngot));
		if (r > 0)
			ngot += (size_t)r;
		else
			ck_assert_int_eq(SSL_get_error(c, r), SSL_ERROR_WANT_READ);
	}
	ck_assert_uint_eq(ngot, nwant);
	ck_assert_int_eq(memcmp(got, want, nwant), 0);

	hop_close(NULL, &h);
	relay_dir_fini(&d);
	SSL_free(c);
	close(sv[1]);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
}
END_TEST

/* Nothing of the server's reached the client: our message replaces it. */
START_TEST(test_error_replaces_undelivered)
{
	struct relay_dir d;
	struct hop h;

	hop_init(&h, -1, "client", true);
	relay_dir_init(&d);
	ck_assert_int_eq(relay_dir_reserve(&d), 0);
	notice(d.buf, 100);
	d.scan = d.tail = 60;	/* half a message read, none of it sent */
	ck_assert_int_eq(conn_queue_error(&d, &h, false, "08006", "gone", NULL, NULL), 0);
	ck_assert_int_eq(d.buf[0], 'E');
	ck_assert_uint_eq(d.head, 0);
	ck_assert_uint_eq(pgproto_get_u32(d.buf + 1) + 1, d.tail);
	/* Once bytes went out, a cut message is never followed by ours. */
	d.bytes = 10;
	d.head = 5;
	ck_assert_int_eq(conn_queue_error(&d, &h, false, "08006", "gone", NULL, NULL), -EBUSY);
	relay_dir_fini(&d);
}
END_TEST

static Suite *conn_suite(void)
{
	Suite *s = suite_create("conn");
	TCase *tc = tcase_create("reasons");
	TCase *te = tcase_create("errors");

	tcase_add_test(tc, test_hop_failure_reason);
	suite_add_tcase(s, tc);
	tcase_add_test(te, test_error_after_half_sent_record);
	tcase_add_test(te, test_error_replaces_undelivered);
	tcase_set_timeout(te, 30);
	suite_add_tcase(s, te);
	return s;
}

int main(void)
{
	snprintf(certdir, sizeof(certdir), "%s", testlib_tmpdir());
	if (testlib_make_certs(certdir) != 0)
		return 1;
	return run_suite(conn_suite());
}
