// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_ktls.c - key installation over real loopback TCP connections.
 *
 * Both ends are OpenSSL in this process; after the handshake one or both
 * hand their keys to the kernel with ktls_install(), and bytes must still
 * arrive intact each way. Where the kernel has no kTLS (this build host:
 * no CONFIG_TLS), the kernel cases are reported as skipped and only the
 * fallbacks are checked; tests/ktls-vm/run-tests.sh runs this binary under
 * a stock Debian kernel with PGKTLS_REQUIRE_KTLS=1, which turns those skips
 * into failures.
 *
 * The "tlsrec" cases run everywhere: one end (or both) hands its keys to
 * pgktls's own userspace record layer (tlsrec.c, keyed by keysched_export())
 * instead of the kernel, and talks to OpenSSL on the other end.
 */
#include "config.h"

#include "pgktls/ev.h"
#include "pgktls/keysched.h"
#include "pgktls/ktls.h"
#include "pgktls/nl.h"
#include "pgktls/relay.h"
#include "pgktls/stats.h"
#include "pgktls/tls_uapi.h"
#include "pgktls/tlsmsg.h"
#include "pgktls/tlsrec.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "testlib.h"

static char certdir[4096];

/* The kernel cases need kTLS; whether to skip or fail without it. */
static bool need_kernel(void)
{
	const char *req = getenv("PGKTLS_REQUIRE_KTLS");

	if (ktls_probe())
		return true;
	if (req && !strcmp(req, "1"))
		ck_abort_msg("PGKTLS_REQUIRE_KTLS=1 but the kernel has no kTLS (TCP_ULP tls)");
	fprintf(stderr, "SKIP %s: kernel has no kTLS\n", tcase_name());
	return false;
}

/* One version/cipher combination. */
struct combo {
	int version;		/* TLS1_2_VERSION or TLS1_3_VERSION */
	const char *suite;	/* OpenSSL name: cipher list (1.2) or ciphersuite (1.3) */
	uint16_t kernel_cipher;	/* what getsockopt(TLS_TX) must report */
};

static const struct combo combos[] = {
	{ TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", TLS_CIPHER_AES_GCM_128 },
	{ TLS1_2_VERSION, "ECDHE-ECDSA-AES256-GCM-SHA384", TLS_CIPHER_AES_GCM_256 },
	{ TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305", TLS_CIPHER_CHACHA20_POLY1305 },
	{ TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", TLS_CIPHER_AES_GCM_128 },
	{ TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", TLS_CIPHER_AES_GCM_256 },
	{ TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", TLS_CIPHER_CHACHA20_POLY1305 },
};

/* One end of a connection: OpenSSL, plus whether its keys are in the kernel. */
struct ep {
	SSL *ssl;
	int fd;
	bool ktls;	/* records go through the kernel: use fd, never ssl */
	int tickets;	/* NewSessionTickets seen as kTLS handshake records */
	struct tlsrec *rec; /* records go through tlsrec: ssl is freed */
	struct stats st;    /* what tlsrec counted */
	int eagain;	/* tlsrec writes that had to be retried */
	char err[160];	/* tlsrec's last error */
};

struct conn_pair {
	SSL_CTX *sctx, *cctx;
	struct ep s, c;
};

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	ck_assert_int_ne(fl, -1);
	ck_assert_int_ne(fcntl(fd, F_SETFL, fl | O_NONBLOCK), -1);
}

/* A connected loopback TCP pair: kTLS needs TCP, a socketpair will not do. */
static void tcp_pair(int *cfd, int *sfd)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int lfd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ne(lfd, -1);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
	*cfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ne(*cfd, -1);
	ck_assert_int_eq(connect(*cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*sfd = accept(lfd, NULL, NULL);
	ck_assert_int_ne(*sfd, -1);
	close(lfd);
}

static SSL_CTX *make_ctx(bool server, int version, const char *suite, int num_tickets)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	char path[4200];

	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(SSL_CTX_set_min_proto_version(ctx, version), 1);
	ck_assert_int_eq(SSL_CTX_set_max_proto_version(ctx, version), 1);
	if (version == TLS1_3_VERSION)
		ck_assert_int_eq(SSL_CTX_set_ciphersuites(ctx, suite), 1);
	else
		ck_assert_int_eq(SSL_CTX_set_cipher_list(ctx, suite), 1);
	if (server) {
		snprintf(path, sizeof(path), "%s/server-chain.pem", certdir);
		ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(ctx, path), 1);
		snprintf(path, sizeof(path), "%s/server.key", certdir);
		ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM), 1);
		ck_assert_int_eq(SSL_CTX_set_num_tickets(ctx, (size_t)num_tickets), 1);
	} else {
		snprintf(path, sizeof(path), "%s/ca.pem", certdir);
		ck_assert_int_eq(SSL_CTX_load_verify_locations(ctx, path, NULL), 1);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	ck_assert_int_eq(keysched_ctx_prepare(ctx), 0);
	return ctx;
}

/* Drive both handshakes in turn over non-blocking sockets until both are done. */
static void handshake(SSL *c, SSL *s)
{
	bool cdone = false, sdone = false;
	int idle = 0;

	while (!cdone || !sdone) {
		struct pollfd pfd[2] = {
			{ .fd = SSL_get_fd(c), .events = POLLIN },
			{ .fd = SSL_get_fd(s), .events = POLLIN },
		};
		int r, e;

		if (!cdone) {
			r = SSL_do_handshake(c);
			if (r == 1) {
				cdone = true;
			} else {
				e = SSL_get_error(c, r);
				ck_assert_msg(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE,
					      "client handshake: SSL error %d", e);
			}
		}
		if (!sdone) {
			r = SSL_do_handshake(s);
			if (r == 1) {
				sdone = true;
			} else {
				e = SSL_get_error(s, r);
				ck_assert_msg(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE,
					      "server handshake: SSL error %d", e);
			}
		}
		if (!cdone || !sdone) {
			r = poll(pfd, 2, 100);
			ck_assert_int_ge(r, 0);
			ck_assert_msg(++idle < 300, "handshake stalled");
		}
	}
}

/* Two connected, handshaken ends with the given server/client contexts. */
static void pair_open(struct conn_pair *p, int version, const char *suite, int num_tickets)
{
	int cfd, sfd;

	memset(p, 0, sizeof(*p));
	p->sctx = make_ctx(true, version, suite, num_tickets);
	p->cctx = make_ctx(false, version, suite, 0);
	tcp_pair(&cfd, &sfd);
	set_nonblock(cfd);
	set_nonblock(sfd);
	p->s.fd = sfd;
	p->c.fd = cfd;
	p->s.ssl = SSL_new(p->sctx);
	p->c.ssl = SSL_new(p->cctx);
	ck_assert_ptr_nonnull(p->s.ssl);
	ck_assert_ptr_nonnull(p->c.ssl);
	SSL_set_fd(p->s.ssl, sfd);
	SSL_set_fd(p->c.ssl, cfd);
	SSL_set_tlsext_host_name(p->c.ssl, "localhost");
	ck_assert_int_eq(SSL_set1_host(p->c.ssl, "localhost"), 1);
	SSL_set_accept_state(p->s.ssl);
	SSL_set_connect_state(p->c.ssl);
	handshake(p->c.ssl, p->s.ssl);
	ck_assert_int_eq(SSL_version(p->s.ssl), version);
	ck_assert_str_eq(SSL_CIPHER_get_name(SSL_get_current_cipher(p->s.ssl)), suite);
}

static void pair_close(struct conn_pair *p)
{
	if (p->s.ssl)
		keysched_forget(p->s.ssl);
	if (p->c.ssl)
		keysched_forget(p->c.ssl);
	tlsrec_free(p->s.rec);
	tlsrec_free(p->c.rec);
	SSL_free(p->s.ssl);
	SSL_free(p->c.ssl);
	SSL_CTX_free(p->sctx);
	SSL_CTX_free(p->cctx);
	close(p->s.fd);
	close(p->c.fd);
}

/* ktls_install() that must move both directions into the kernel. */
static void install_ok(struct ep *e, uint16_t version, uint16_t kernel_cipher)
{
	struct ktls_hop_state st;
	struct tls_crypto_info ci;
	socklen_t len = sizeof(ci);
	int ret;

	ret = ktls_install(e->ssl, e->fd, &st);
	ck_assert_msg(ret == 0, "ktls_install: %s (rx %s/%s, tx %s/%s, errno %d)", strerror(-ret),
		      ktls_engine_name(st.rx), ktls_reason_name(st.rx_reason),
		      ktls_engine_name(st.tx), ktls_reason_name(st.tx_reason), st.err);
	ck_assert_int_eq(st.rx, KTLS_ENGINE_KERNEL);
	ck_assert_int_eq(st.tx, KTLS_ENGINE_KERNEL);
	ck_assert_int_eq(st.rx_reason, KTLS_R_NONE);
	ck_assert_int_eq(st.tx_reason, KTLS_R_NONE);
	e->ktls = true;

	/* The kernel reports what it was given; the header-sized buffer gets no key. */
	memset(&ci, 0, sizeof(ci));
	ck_assert_int_eq(getsockopt(e->fd, SOL_TLS, TLS_TX, &ci, &len), 0);
	ck_assert_uint_eq(ci.version, version);
	ck_assert_uint_eq(ci.cipher_type, kernel_cipher);
	len = sizeof(ci);
	ck_assert_int_eq(getsockopt(e->fd, SOL_TLS, TLS_RX, &ci, &len), 0);
	ck_assert_uint_eq(ci.version, version);
	ck_assert_uint_eq(ci.cipher_type, kernel_cipher);
}

static uint16_t kernel_version(int version)
{
	return version == TLS1_3_VERSION ? TLS_1_3_VERSION : TLS_1_2_VERSION;
}

/* Write some of @buf; return bytes written, 0 if it would block. */
static size_t ep_write(struct ep *e, const void *buf, size_t len)
{
	ssize_t n;
	int r;

	if (e->rec) {
		n = tlsrec_write(e->rec, e->fd, buf, len, e->err, sizeof(e->err));
		if (n == -EAGAIN) {
			e->eagain++;
			return 0;
		}
		ck_assert_msg(n > 0, "tlsrec_write: %zd %s", n, e->err);
		return (size_t)n;
	}
	if (e->ktls) {
		n = write(e->fd, buf, len);
		if (n == -1) {
			ck_assert_msg(errno == EAGAIN, "kTLS write: %s", strerror(errno));
			return 0;
		}
		return (size_t)n;
	}
	r = SSL_write(e->ssl, buf, (int)len);
	if (r > 0)
		return (size_t)r;
	r = SSL_get_error(e->ssl, r);
	ck_assert_msg(r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE, "SSL_write: %d", r);
	return 0;
}

/*
 * Read some application data into @buf. Return bytes read, 0 if it would
 * block, -1 if only a control record was consumed (counted in @e).
 */
static ssize_t ep_read(struct ep *e, void *buf, size_t len)
{
	uint8_t type;
	ssize_t n;
	int r;

	if (e->rec) {
		n = tlsrec_read(e->rec, e->fd, buf, len, &e->st, e->err, sizeof(e->err));
		if (n == -EAGAIN)
			return 0;
		ck_assert_msg(n > 0, "tlsrec_read: %s", n ? e->err : "EOF");
		return n;
	}
	if (e->ktls) {
		n = ktls_recv_record(e->fd, buf, len, &type);
		if (n == -EAGAIN)
			return 0;
		ck_assert_msg(n > 0, "ktls_recv_record: %s", n ? strerror((int)-n) : "EOF");
		if (type == KTLS_RECORD_HANDSHAKE) {
			struct tlsmsg m;
			struct tlsmsg_event ev;

			tlsmsg_init(&m, SSL_version(e->ssl) == TLS1_3_VERSION, !SSL_is_server(e->ssl));
			ck_assert_int_eq(tlsmsg_handshake(&m, buf, (size_t)n, &ev), TLSMSG_NONE);
			ck_assert_uint_ge(ev.tickets, 1);
			e->tickets++;
			return -1;
		}
		ck_assert_int_eq(type, KTLS_RECORD_DATA);
		return n;
	}
	r = SSL_read(e->ssl, buf, (int)len);
	if (r > 0)
		return r;
	r = SSL_get_error(e->ssl, r);
	ck_assert_msg(r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE, "SSL_read: %d", r);
	return 0;
}

static uint8_t pattern(size_t off, unsigned int salt)
{
	return (uint8_t)((off % 251) ^ salt ^ (off >> 16));
}

/* Move @total pattern bytes from @w to @r, checking each byte on arrival. */
static void pump_ex(struct ep *w, struct ep *r, size_t total, unsigned int salt, bool fill_first)
{
	static uint8_t src[65536], dst[65536];
	size_t wrote = 0, got = 0, i;
	int idle = 0;

	/*
	 * Fill first: write without reading until the writer's socket takes
	 * nothing, so a write meets EAGAIN whatever the machine's load (a
	 * reader as fast as the writer may never let it happen).
	 */
	while (fill_first && wrote < total) {
		size_t chunk = total - wrote < sizeof(src) ? total - wrote : sizeof(src);
		size_t m;

		for (i = 0; i < chunk; i++)
			src[i] = pattern(wrote + i, salt);
		m = ep_write(w, src, chunk);
		wrote += m;
		if (m == 0)
			break;
	}
	while (got < total) {
		bool moved = false;
		ssize_t n;

		if (wrote < total) {
			size_t chunk = total - wrote < sizeof(src) ? total - wrote : sizeof(src);
			size_t m;

			for (i = 0; i < chunk; i++)
				src[i] = pattern(wrote + i, salt);
			m = ep_write(w, src, chunk);
			wrote += m;
			moved |= m > 0;
		}
		n = ep_read(r, dst, sizeof(dst));
		if (n > 0) {
			ck_assert_uint_le(got + (size_t)n, total);
			for (i = 0; i < (size_t)n; i++)
				if (dst[i] != pattern(got + i, salt))
					ck_abort_msg("byte %zu differs", got + i);
			got += (size_t)n;
		}
		moved |= n != 0;
		if (!moved) {
			struct pollfd pfd[2] = {
				{ .fd = w->fd, .events = wrote < total ? POLLOUT : 0 },
				{ .fd = r->fd, .events = POLLIN },
			};

			ck_assert_int_ge(poll(pfd, 2, 100), 0);
			ck_assert_msg(++idle < 100, "transfer stalled at %zu/%zu", got, total);
		} else {
			idle = 0;
		}
	}
}

static void pump(struct ep *w, struct ep *r, size_t total, unsigned int salt)
{
	pump_ex(w, r, total, salt, false);
}

/* Send a short message and read it back whole on the other end. */
static void send_msg(struct ep *w, struct ep *r, const char *msg)
{
	size_t len = strlen(msg), got = 0;
	char buf[256];
	int idle = 0;

	ck_assert_uint_eq(ep_write(w, msg, len), len);
	while (got < len) {
		ssize_t n = ep_read(r, buf + got, sizeof(buf) - got);

		if (n > 0) {
			got += (size_t)n;
		} else if (n == 0) {
			struct pollfd pfd = { .fd = r->fd, .events = POLLIN };

			ck_assert_int_ge(poll(&pfd, 1, 100), 0);
			ck_assert_msg(++idle < 100, "message stalled");
		}
	}
	ck_assert_uint_eq(got, len);
	ck_assert_mem_eq(buf, msg, len);
}

/* Wait until @fd is readable (the records to test are in flight). */
static void wait_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
}

/* The whole life of a connection with both ends in the kernel. */
START_TEST(test_both_ends)
{
	const struct combo *cb = &combos[_i];
	struct conn_pair p;
	uint8_t buf[64], type;
	ssize_t n;

	if (!need_kernel())
		return;
	pair_open(&p, cb->version, cb->suite, 0);

	/*
	 * The client installs and talks at once; the server installs later
	 * with that record still queued in TCP, as pgktls does with a
	 * StartupMessage. The kernel must decrypt it after TLS_RX.
	 */
	install_ok(&p.c, kernel_version(cb->version), cb->kernel_cipher);
	ck_assert_uint_eq(ep_write(&p.c, "early", 5), 5);
	wait_readable(p.s.fd);
	install_ok(&p.s, kernel_version(cb->version), cb->kernel_cipher);
	n = ktls_recv_record(p.s.fd, buf, sizeof(buf), &type);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(type, KTLS_RECORD_DATA);
	ck_assert_mem_eq(buf, "early", 5);

	send_msg(&p.s, &p.c, "server to client");
	pump(&p.c, &p.s, 1536 * 1024 + 7, 0x11);
	pump(&p.s, &p.c, 1536 * 1024 + 3, 0x22);
	send_msg(&p.c, &p.s, "client to server after bulk");

	/* close_notify is an alert record on the other side, then EOF. */
	ck_assert_int_eq(ktls_send_alert(p.c.fd, 1, 0), 0);
	ck_assert_int_eq(shutdown(p.c.fd, SHUT_WR), 0);
	wait_readable(p.s.fd);
	n = ktls_recv_record(p.s.fd, buf, sizeof(buf), &type);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(type, KTLS_RECORD_ALERT);
	ck_assert_int_eq(buf[0], 1);
	ck_assert_int_eq(buf[1], 0);
	wait_readable(p.s.fd);
	n = ktls_recv_record(p.s.fd, buf, sizeof(buf), &type);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(type, 0);
	pair_close(&p);
}
END_TEST

/*
 * One end in the kernel, the other plain OpenSSL: the wire format must be
 * the same (two kTLS ends would agree even on a wrong key or sequence).
 * _i: the combo, plus PGKTLS_ARRAY_SIZE(combos) if the kernel end is the client.
 */
START_TEST(test_userspace_peer)
{
	const size_t ncombos = PGKTLS_ARRAY_SIZE(combos);
	const struct combo *cb = &combos[(size_t)_i % ncombos];
	bool kclient = (size_t)_i >= ncombos;
	struct conn_pair p;
	struct ep *k, *u;
	uint8_t rb[16], type;
	char buf[16];
	int r, idle = 0;
	ssize_t n;

	if (!need_kernel())
		return;
	pair_open(&p, cb->version, cb->suite, 0);
	k = kclient ? &p.c : &p.s;
	u = kclient ? &p.s : &p.c;

	/* The userspace end speaks first, before the other end installs. */
	ck_assert_uint_eq(ep_write(u, "hello", 5), 5);
	wait_readable(k->fd);
	install_ok(k, kernel_version(cb->version), cb->kernel_cipher);
	n = ktls_recv_record(k->fd, rb, sizeof(rb), &type);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(type, KTLS_RECORD_DATA);
	ck_assert_mem_eq(rb, "hello", 5);
	send_msg(k, u, "reply");
	pump(u, k, 1200 * 1024, 0x33);
	pump(k, u, 1200 * 1024, 0x44);

	/* Our close_notify is one OpenSSL understands. */
	ck_assert_int_eq(ktls_send_alert(k->fd, 1, 0), 0);
	for (;;) {
		r = SSL_read(u->ssl, buf, sizeof(buf));
		if (r > 0)
			ck_abort_msg("data after close_notify");
		r = SSL_get_error(u->ssl, r);
		if (r != SSL_ERROR_WANT_READ)
			break;
		wait_readable(u->fd);
		ck_assert_int_lt(++idle, 100);
	}
	ck_assert_int_eq(r, SSL_ERROR_ZERO_RETURN);
	pair_close(&p);
}
END_TEST

/*
 * A TLS 1.3 server that sends tickets (pgktls's own never does): the
 * client installs at sequence 0 and meets them as handshake records,
 * which are ignored. The server stays in userspace: its TX sequence is
 * past the tickets, which ktls_install() cannot know.
 */
START_TEST(test_session_tickets)
{
	const struct combo *cb = &combos[3];
	struct conn_pair p;

	if (!need_kernel())
		return;
	pair_open(&p, cb->version, cb->suite, 2);
	install_ok(&p.c, TLS_1_3_VERSION, cb->kernel_cipher);
	send_msg(&p.s, &p.c, "after the tickets");
	ck_assert_int_eq(p.c.tickets, 2);
	send_msg(&p.c, &p.s, "and back");
	pump(&p.s, &p.c, 300 * 1024, 0x55);
	pair_close(&p);
}
END_TEST

/* Whether this kernel accepts a second TLS_TX (rekeying, Linux 6.14+). */
static bool kernel_can_rekey(void)
{
	struct tls12_crypto_info_aes_gcm_128 ci;
	int cfd, sfd, ret;

	tcp_pair(&cfd, &sfd);
	memset(&ci, 0x42, sizeof(ci));
	ci.info.version = TLS_1_3_VERSION;
	ci.info.cipher_type = TLS_CIPHER_AES_GCM_128;
	ck_assert_int_eq(setsockopt(cfd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")), 0);
	ck_assert_int_eq(setsockopt(cfd, SOL_TLS, TLS_TX, &ci, sizeof(ci)), 0);
	ret = setsockopt(cfd, SOL_TLS, TLS_TX, &ci, sizeof(ci));
	close(cfd);
	close(sfd);
	return ret == 0;
}

/* A userspace client asks for a KeyUpdate; the kTLS server rekeys or refuses. */
START_TEST(test_key_update)
{
	const struct combo *cb = &combos[3];
	struct conn_pair p;
	uint8_t buf[64], type;
	bool can_rekey;
	ssize_t n;
	int r;

	if (!need_kernel())
		return;
	can_rekey = kernel_can_rekey();
	fprintf(stderr, "kernel rekeying: %s\n", can_rekey ? "yes" : "no");
	pair_open(&p, cb->version, cb->suite, 0);
	install_ok(&p.s, TLS_1_3_VERSION, cb->kernel_cipher);
	send_msg(&p.c, &p.s, "before");

	ck_assert_int_eq(SSL_key_update(p.c.ssl, SSL_KEY_UPDATE_REQUESTED), 1);
	ck_assert_uint_eq(ep_write(&p.c, "after", 5), 5);
	wait_readable(p.s.fd);
	n = ktls_recv_record(p.s.fd, buf, sizeof(buf), &type);
	ck_assert_int_eq(type, KTLS_RECORD_HANDSHAKE);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(buf[0], 24);
	ck_assert_int_eq(buf[4], 1);	/* update_requested */
	/* What relay.c does with it: follow the new receive key, then answer. */
	r = ktls_key_update_rx(p.s.ssl, NULL, p.s.fd);
	if (r == 0)
		r = ktls_key_update_tx(p.s.ssl, NULL, p.s.fd);
	if (can_rekey) {
		ck_assert_int_eq(r, 0);
		wait_readable(p.s.fd);
		n = ktls_recv_record(p.s.fd, buf, sizeof(buf), &type);
		ck_assert_int_eq(n, 5);
		ck_assert_mem_eq(buf, "after", 5);
		/* We answered with our own KeyUpdate and a new TX key: OpenSSL follows. */
		send_msg(&p.s, &p.c, "rekeyed reply");
	} else {
		ck_assert_int_eq(r, -EKEYREJECTED);
		/* The kernel kept the old key: the next record cannot be decrypted. */
		wait_readable(p.s.fd);
		n = ktls_recv_record(p.s.fd, buf, sizeof(buf), &type);
		ck_assert_int_eq(n, -EBADMSG);
	}
	pair_close(&p);
}
END_TEST

/*
 * What an operator sees: `ss -tie` shows the ULP with version, cipher and
 * software crypto both ways (Linux 6.1 shows it only to CAP_NET_ADMIN).
 */
START_TEST(test_ss_shows_ulp)
{
	struct conn_pair p;
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char cmd[256], out[8192];
	size_t n;
	FILE *f;

	if (!need_kernel())
		return;
	if (geteuid() != 0 || system("command -v ss >/dev/null 2>&1") != 0) {
		fprintf(stderr, "SKIP %s: needs root and ss\n", tcase_name());
		return;
	}
	pair_open(&p, TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", 0);
	install_ok(&p.s, TLS_1_3_VERSION, TLS_CIPHER_AES_GCM_256);
	ck_assert_int_eq(getsockname(p.s.fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(cmd, sizeof(cmd), "ss -tieH state established '( sport = :%u )' 2>&1",
		 ntohs(sa.sin_port));
	f = popen(cmd, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(out, 1, sizeof(out) - 1, f);
	out[n] = 0;
	ck_assert_int_eq(pclose(f), 0);
	ck_assert_msg(strstr(out, "tcp-ulp-tls") && strstr(out, "version: 1.3") &&
			      strstr(out, "cipher: aes-gcm-256") && strstr(out, "rxconf: sw") &&
			      strstr(out, "txconf: sw"),
		      "ss -tie shows: %s", out);
	pair_close(&p);
}
END_TEST

/* A SOL_TLS option's value, or -errno (ENOPROTOOPT: a kernel older than the option). */
static int tls_opt(int fd, int opt)
{
	unsigned int v = 0;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_TLS, opt, &v, &len) == -1)
		return -errno;
	return (int)v;
}

/* What sock_diag says of @fd (pgktls-stat's view); false where it cannot ask. */
static bool diag_of(int fd, struct nl_sock_info *si)
{
	struct sockaddr_storage l, r;
	socklen_t ll = sizeof(l), rl = sizeof(r);
	struct nl_ctx *ctx;
	int rc;

	if (nl_open(&ctx) < 0)
		return false;
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&l, &ll), 0);
	ck_assert_int_eq(getpeername(fd, (struct sockaddr *)&r, &rl), 0);
	rc = nl_diag_query(ctx, (struct sockaddr *)&l, (struct sockaddr *)&r, si);
	nl_close(ctx);
	return rc == 0 && si->tls;
}

/*
 * The kernel options ktls_install() sets past the keys, and their knobs:
 * TLS_RX_EXPECT_NO_PAD on a TLS 1.3 receiver (Linux 6.0+; reported by
 * sock_diag as TLS_INFO_RX_NO_PAD) only with PGKTLS_KTLS_RX_NO_PAD=1,
 * TLS_TX_ZEROCOPY_RO on every sender (5.19+; sock_diag reports it only with
 * NIC offload) unless PGKTLS_KTLS_TX_ZEROCOPY_RO=0. Data still flows both
 * ways. _i: 0 TLS 1.3, 1 TLS 1.2.
 */
START_TEST(test_kernel_options)
{
	const struct combo *cb = &combos[_i ? 0 : 3];
	struct nl_sock_info si;
	struct conn_pair p;
	int on, off;

	if (!need_kernel())
		return;
	pair_open(&p, cb->version, cb->suite, 0);
	/* The client with the defaults but zero-copy off, the server with both on. */
	unsetenv("PGKTLS_KTLS_RX_NO_PAD");
	setenv("PGKTLS_KTLS_TX_ZEROCOPY_RO", "0", 1);
	install_ok(&p.c, kernel_version(cb->version), cb->kernel_cipher);
	setenv("PGKTLS_KTLS_RX_NO_PAD", "1", 1);
	unsetenv("PGKTLS_KTLS_TX_ZEROCOPY_RO");
	install_ok(&p.s, kernel_version(cb->version), cb->kernel_cipher);
	unsetenv("PGKTLS_KTLS_RX_NO_PAD");

	on = tls_opt(p.s.fd, TLS_RX_EXPECT_NO_PAD);
	off = tls_opt(p.c.fd, TLS_RX_EXPECT_NO_PAD);
	if (on == -ENOPROTOOPT) {
		fprintf(stderr, "SKIP %s: no TLS_RX_EXPECT_NO_PAD in this kernel (before 6.0)\n",
			tcase_name());
	} else if (cb->version == TLS1_3_VERSION) {
		ck_assert_int_eq(on, 1);
		ck_assert_int_eq(off, 0);
	} else {
		/* The option exists for TLS 1.3 only: the kernel refuses to read it. */
		ck_assert_int_eq(on, -EINVAL);
	}
	on = tls_opt(p.s.fd, TLS_TX_ZEROCOPY_RO);
	if (on != -ENOPROTOOPT) {
		ck_assert_int_eq(on, 1);
		ck_assert_int_eq(tls_opt(p.c.fd, TLS_TX_ZEROCOPY_RO), 0);
	}
	if (geteuid() == 0 && diag_of(p.s.fd, &si)) {
		ck_assert_uint_eq(si.txconf, NL_TLS_CONF_SW);
		ck_assert(si.rx_no_pad == (cb->version == TLS1_3_VERSION && tls_opt(p.s.fd,
						TLS_RX_EXPECT_NO_PAD) == 1));
		ck_assert(!si.zc_ro_tx);	/* software TX: never reported */
		ck_assert(diag_of(p.c.fd, &si));
		ck_assert(!si.rx_no_pad);
	}
	pump(&p.c, &p.s, 1024 * 1024 + 5, 0x33);
	pump(&p.s, &p.c, 1024 * 1024 + 9, 0x44);
	send_msg(&p.c, &p.s, "after the options");
	pair_close(&p);
}
END_TEST

/*
 * Which handshake records are refused is tlsmsg's business (test_tlsmsg);
 * ktls.c only rekeys, and only under TLS 1.3.
 */
START_TEST(test_handshake_record_parse)
{
	struct conn_pair p;

	pair_open(&p, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", 0);
	ck_assert_int_eq(ktls_key_update_rx(p.s.ssl, NULL, p.s.fd), -EPROTO);
	ck_assert_int_eq(ktls_key_update_tx(p.s.ssl, NULL, p.s.fd), -EPROTO);
	pair_close(&p);
}
END_TEST

/* Userspace must still work after a refused install. */
static void still_userspace(struct conn_pair *p)
{
	p->s.ktls = false;
	p->c.ktls = false;
	send_msg(&p->c, &p->s, "still here");
	pump(&p->s, &p->c, 200 * 1024, 0x66);
}

/* Without kTLS in the kernel, install fails cleanly with KTLS_R_NO_KERNEL. */
START_TEST(test_no_kernel_fallback)
{
	const struct combo *cb = &combos[_i];
	struct ktls_hop_state st;
	struct conn_pair p;
	int ret;

	if (ktls_probe()) {
		fprintf(stderr, "SKIP %s: kernel has kTLS, cannot test its absence\n",
			tcase_name());
		return;
	}
	pair_open(&p, cb->version, cb->suite, 0);
	ret = ktls_install(p.s.ssl, p.s.fd, &st);
	ck_assert_int_eq(ret, -ENOENT);
	ck_assert_int_eq(st.rx, KTLS_ENGINE_USERSPACE);
	ck_assert_int_eq(st.tx, KTLS_ENGINE_USERSPACE);
	ck_assert_int_eq(st.rx_reason, KTLS_R_NO_KERNEL);
	ck_assert_int_eq(st.tx_reason, KTLS_R_NO_KERNEL);
	ck_assert_int_eq(st.err, ENOENT);
	ret = ktls_install(p.c.ssl, p.c.fd, &st);
	ck_assert_int_eq(ret, -ENOENT);
	ck_assert_int_eq(st.rx_reason, KTLS_R_NO_KERNEL);
	still_userspace(&p);
	pair_close(&p);
}
END_TEST

/* OpenSSL holding unread bytes: refuse before touching the socket. */
START_TEST(test_pending_refused)
{
	struct ktls_hop_state st;
	struct conn_pair p;
	char buf[4];
	int r;
	char ulp[16] = "";
	socklen_t len = sizeof(ulp);

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	ck_assert_uint_eq(ep_write(&p.c, "0123456789", 10), 10);
	wait_readable(p.s.fd);
	r = SSL_read(p.s.ssl, buf, sizeof(buf));
	ck_assert_int_eq(r, 4);
	ck_assert_int_gt(SSL_pending(p.s.ssl), 0);
	ck_assert_int_eq(ktls_install(p.s.ssl, p.s.fd, &st), -EBUSY);
	ck_assert_int_eq(st.rx, KTLS_ENGINE_USERSPACE);
	ck_assert_int_eq(st.tx, KTLS_ENGINE_USERSPACE);
	ck_assert_int_eq(st.rx_reason, KTLS_R_PENDING);
	ck_assert_int_eq(st.tx_reason, KTLS_R_PENDING);
	/* No ULP attached (where one could be): the socket is untouched. */
	if (getsockopt(p.s.fd, IPPROTO_TCP, TCP_ULP, ulp, &len) == 0)
		ck_assert_str_eq(ulp, "");
	r = SSL_read(p.s.ssl, buf, sizeof(buf));
	ck_assert_int_eq(r, 4);
	ck_assert_mem_eq(buf, "4567", 4);
	pair_close(&p);
}
END_TEST

static void use_tlsrec(struct ep *e)
{
	int ret = tlsrec_new(e->ssl, &e->rec);

	ck_assert_msg(ret == 0, "tlsrec_new: %s", strerror(-ret));
	ck_assert_ptr_nonnull(e->rec);
	keysched_forget(e->ssl);
	SSL_free(e->ssl);
	e->ssl = NULL;
}

/*
 * A client that negotiated max_fragment_length (RFC 6066) is never offloaded:
 * the kernel would send it 16 KB records and it would fail with
 * record_overflow. tlsrec takes the hop instead and keeps to 512 bytes, which
 * OpenSSL on the client checks. The refusal comes before the kernel is asked,
 * so this runs everywhere.
 */
START_TEST(test_max_fragment_not_offloaded)
{
	struct ktls_hop_state st;
	struct conn_pair p;
	int cfd, sfd;

	memset(&p, 0, sizeof(p));
	p.sctx = make_ctx(true, combos[_i].version, combos[_i].suite, 0);
	p.cctx = make_ctx(false, combos[_i].version, combos[_i].suite, 0);
	ck_assert_int_eq(SSL_CTX_set_tlsext_max_fragment_length(p.cctx,
								TLSEXT_max_fragment_length_512), 1);
	tcp_pair(&cfd, &sfd);
	set_nonblock(cfd);
	set_nonblock(sfd);
	p.s.fd = sfd;
	p.c.fd = cfd;
	p.s.ssl = SSL_new(p.sctx);
	p.c.ssl = SSL_new(p.cctx);
	SSL_set_fd(p.s.ssl, sfd);
	SSL_set_fd(p.c.ssl, cfd);
	SSL_set_accept_state(p.s.ssl);
	SSL_set_connect_state(p.c.ssl);
	handshake(p.c.ssl, p.s.ssl);
	ck_assert_int_eq(ktls_install(p.s.ssl, p.s.fd, &st), -EOPNOTSUPP);
	ck_assert_int_eq(st.rx, KTLS_ENGINE_USERSPACE);
	ck_assert_int_eq(st.tx, KTLS_ENGINE_USERSPACE);
	ck_assert_int_eq(st.rx_reason, KTLS_R_MAX_FRAGMENT);
	ck_assert_str_eq(ktls_reason_name(st.tx_reason), "max_fragment");
	use_tlsrec(&p.s);
	pump(&p.s, &p.c, 100 * 1000, 0x66);
	pump(&p.c, &p.s, 10 * 1000, 0x67);
	pair_close(&p);
}
END_TEST

/*
 * TX refused after RX went to the kernel (forced by the test knob): RX
 * cannot be taken back, so ktls_install() says the hop is lost and conn.c
 * closes the connection under any ktls mode; no direction is left to
 * OpenSSL beside a kernel one.
 */
START_TEST(test_tx_fails_after_rx)
{
	struct ktls_hop_state st;
	struct conn_pair p;

	if (!need_kernel())
		return;
	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	ck_assert_int_eq(setenv("PGKTLS_TEST_KTLS_TX_FAIL", "1", 1), 0);
	ck_assert_int_eq(ktls_install(p.s.ssl, p.s.fd, &st), -ENOTRECOVERABLE);
	ck_assert_int_eq(unsetenv("PGKTLS_TEST_KTLS_TX_FAIL"), 0);
	ck_assert_int_eq(st.rx, KTLS_ENGINE_KERNEL);
	ck_assert_int_eq(st.tx, KTLS_ENGINE_USERSPACE);
	ck_assert_int_eq(st.tx_reason, KTLS_R_SETSOCKOPT);
	ck_assert_int_eq(st.err, ENOMEM);
	pair_close(&p);
}
END_TEST

/* A unix socket is refused as not TCP, and the session goes on in userspace. */
START_TEST(test_not_tcp)
{
	struct ktls_hop_state st;
	struct conn_pair p;
	int sv[2];

	memset(&p, 0, sizeof(p));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	set_nonblock(sv[0]);
	set_nonblock(sv[1]);
	p.sctx = make_ctx(true, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	p.cctx = make_ctx(false, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	p.s.ssl = SSL_new(p.sctx);
	p.c.ssl = SSL_new(p.cctx);
	p.c.fd = sv[0];
	p.s.fd = sv[1];
	SSL_set_fd(p.c.ssl, sv[0]);
	SSL_set_fd(p.s.ssl, sv[1]);
	SSL_set_accept_state(p.s.ssl);
	SSL_set_connect_state(p.c.ssl);
	handshake(p.c.ssl, p.s.ssl);
	ck_assert_int_eq(ktls_install(p.s.ssl, p.s.fd, &st), -EOPNOTSUPP);
	ck_assert_int_eq(st.rx_reason, KTLS_R_NOT_TCP);
	ck_assert_int_eq(st.tx_reason, KTLS_R_NOT_TCP);
	still_userspace(&p);
	pair_close(&p);
}
END_TEST

/* The per-SSL secrets are captured for TLS 1.3 only, and keysched_forget() drops them. */
START_TEST(test_forget)
{
	struct conn_pair p;

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", 0);
	keysched_forget(p.s.ssl);
	keysched_forget(p.s.ssl);	/* twice is harmless */
	/* Without secrets, a KeyUpdate cannot be followed. */
	ck_assert_int_eq(ktls_key_update_rx(p.s.ssl, NULL, p.s.fd), -ENOKEY);
	pair_close(&p);	/* SSL_free runs the ex_data free callback for the client's */
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(ktls_reason_name(KTLS_R_NONE), "none");
	ck_assert_str_eq(ktls_reason_name(KTLS_R_DISABLED), "disabled");
	ck_assert_str_eq(ktls_reason_name(KTLS_R_NO_KERNEL), "no_kernel");
	ck_assert_str_eq(ktls_reason_name(KTLS_R_NOT_TCP), "not_tcp");
	ck_assert_str_eq(ktls_reason_name(KTLS_R_VERSION), "version");
	ck_assert_str_eq(ktls_reason_name(KTLS_R_CIPHER), "cipher");
	ck_assert_str_eq(ktls_reason_name(KTLS_R_PENDING), "pending");
	ck_assert_str_eq(ktls_reason_name(KTLS_R_NO_SECRETS), "no_secrets");
	ck_assert_str_eq(ktls_reason_name(KTLS_R_SETSOCKOPT), "setsockopt");
	ck_assert_str_eq(ktls_reason_name(KTLS__NREASONS), "unknown");
	ck_assert_str_eq(ktls_engine_name(KTLS_ENGINE_NONE), "none");
	ck_assert_str_eq(ktls_engine_name(KTLS_ENGINE_USERSPACE), "userspace");
	ck_assert_str_eq(ktls_engine_name(KTLS_ENGINE_KERNEL), "kernel");
}
END_TEST

/* The probe agrees with a direct attempt, and repeats its answer. */
START_TEST(test_probe)
{
	int cfd, sfd, r, err;
	bool first = ktls_probe();

	tcp_pair(&cfd, &sfd);
	r = setsockopt(cfd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"));
	err = errno;
	ck_assert_int_eq(first, r == 0);
	if (r)
		ck_assert_int_eq(err, ENOENT);
	ck_assert_int_eq(ktls_probe(), first);
	close(cfd);
	close(sfd);
}
END_TEST


/* ---- tlsrec: pgktls's userspace record layer against OpenSSL ---- */

/* Hand @e's records to tlsrec and free its SSL, as hop_use_tlsrec() does. */

/* Read from a tlsrec end until it returns something other than -EAGAIN. */
static ssize_t rec_read_wait(struct ep *e, void *buf, size_t len)
{
	for (int idle = 0; idle < 100; idle++) {
		ssize_t n = tlsrec_read(e->rec, e->fd, buf, len, &e->st, e->err, sizeof(e->err));

		if (n != -EAGAIN)
			return n;
		wait_readable(e->fd);
	}
	ck_abort_msg("tlsrec_read stalled");
	return -1;
}

/* Every version and cipher; tlsrec on the server, the client, or both ends. */
START_TEST(test_tlsrec_bulk)
{
	const struct combo *cb = &combos[_i % PGKTLS_ARRAY_SIZE(combos)];
	int ends = _i / (int)PGKTLS_ARRAY_SIZE(combos);	/* 0 server, 1 client, 2 both */
	struct conn_pair p;

	pair_open(&p, cb->version, cb->suite, 0);
	if (ends != 1)
		use_tlsrec(&p.s);
	if (ends != 0)
		use_tlsrec(&p.c);
	send_msg(&p.c, &p.s, "hello through tlsrec");
	send_msg(&p.s, &p.c, "and back");
	pump(&p.c, &p.s, 1024 * 1024 + 7, 0x11);
	pump(&p.s, &p.c, 1024 * 1024 + 13, 0x22);
	ck_assert(!tlsrec_has_pending(ends != 1 ? p.s.rec : p.c.rec));
	pair_close(&p);
}
END_TEST

/* A small send buffer forces short writes: the retry contract must keep bytes in order. */
START_TEST(test_tlsrec_short_writes)
{
	const struct combo *cb = &combos[_i];
	struct conn_pair p;
	int small = 4096;

	pair_open(&p, cb->version, cb->suite, 0);
	/* Only the sender's buffer: a tiny receive window would stall TCP itself. */
	ck_assert_int_eq(setsockopt(p.s.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	use_tlsrec(&p.s);
	pump_ex(&p.s, &p.c, 2 * 1024 * 1024, 0x33, true);
	ck_assert_int_gt(p.s.eagain, 0);
	ck_assert(!tlsrec_wants_write(p.s.rec));
	pair_close(&p);
}
END_TEST

/* NewSessionTickets from an OpenSSL server are skipped and counted. */
START_TEST(test_tlsrec_tickets)
{
	struct conn_pair p;

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", 2);
	use_tlsrec(&p.c);
	send_msg(&p.s, &p.c, "after the tickets");
	ck_assert_uint_eq(p.c.st.tls_tickets, 2);
	ck_assert_uint_eq(p.c.st.tls_control_records, 2);
	send_msg(&p.c, &p.s, "and back");
	pair_close(&p);
}
END_TEST

/*
 * The OpenSSL end sends a KeyUpdate (requested, or not); the tlsrec end
 * rekeys RX, answers and rekeys TX when asked, and both keep talking.
 */
START_TEST(test_tlsrec_key_update)
{
	const struct combo *cb = &combos[3 + _i % 3];
	bool requested = _i >= 3;
	struct conn_pair p;

	pair_open(&p, cb->version, cb->suite, 0);
	use_tlsrec(&p.s);
	send_msg(&p.c, &p.s, "before");
	for (int round = 1; round <= 3; round++) {
		ck_assert_int_eq(SSL_key_update(p.c.ssl, requested ? SSL_KEY_UPDATE_REQUESTED
								   : SSL_KEY_UPDATE_NOT_REQUESTED),
				 1);
		send_msg(&p.c, &p.s, "after");
		ck_assert_uint_eq(p.s.st.tls_key_updates, (uint64_t)round);
		send_msg(&p.s, &p.c, "reply under whichever key applies");
		pump(&p.c, &p.s, 100 * 1000, 0x44);
		pump(&p.s, &p.c, 100 * 1000, 0x45);
	}
	pair_close(&p);
}
END_TEST

/* close_notify both ways, and a bare FIN, are told apart. */
START_TEST(test_tlsrec_eof)
{
	const struct combo *cb = &combos[_i];
	struct conn_pair p;
	char buf[64];
	ssize_t n;
	int r;

	pair_open(&p, cb->version, cb->suite, 0);
	use_tlsrec(&p.s);
	send_msg(&p.c, &p.s, "last words");
	/* OpenSSL's close_notify: EOF, clean. */
	ck_assert_int_ge(SSL_shutdown(p.c.ssl), 0);
	n = rec_read_wait(&p.s, buf, sizeof(buf));
	ck_assert_int_eq(n, 0);
	ck_assert(tlsrec_clean_eof(p.s.rec));
	ck_assert_uint_eq(p.s.st.tls_alerts, 1);
	/* Ours: OpenSSL sees SSL_ERROR_ZERO_RETURN. */
	ck_assert_int_eq(tlsrec_shutdown(p.s.rec, p.s.fd), 0);
	wait_readable(p.c.fd);
	r = SSL_read(p.c.ssl, buf, sizeof(buf));
	ck_assert_int_le(r, 0);
	ck_assert_int_eq(SSL_get_error(p.c.ssl, r), SSL_ERROR_ZERO_RETURN);
	pair_close(&p);

	/* A FIN without close_notify is EOF, but not a clean one. */
	pair_open(&p, cb->version, cb->suite, 0);
	use_tlsrec(&p.s);
	send_msg(&p.c, &p.s, "then the line drops");
	ck_assert_int_eq(shutdown(p.c.fd, SHUT_WR), 0);
	n = rec_read_wait(&p.s, buf, sizeof(buf));
	ck_assert_int_eq(n, 0);
	ck_assert(!tlsrec_clean_eof(p.s.rec));
	pair_close(&p);
}
END_TEST

/*
 * The TLS 1.3 record number @seq that @client (or any end) sends
 * (AES-128-GCM; no KeyUpdate yet), sealed here with its exported keys from @inner (content, type, padding)
 * into @rec. Return: the record's size.
 */
static size_t seal13(SSL *client, uint64_t seq, const uint8_t *inner, size_t len, uint8_t *rec)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	struct keysched_keys k;
	int outl;

	ck_assert_ptr_nonnull(ctx);
	ck_assert_int_eq(keysched_export(client, &k), 0);
	ck_assert_str_eq(k.evp_cipher, "AES-128-GCM");
	for (int i = 0; i < 8; i++)
		k.tx.iv[KEYSCHED_IV_LEN - 1 - i] ^= (uint8_t)(seq >> (8 * i));
	rec[0] = 23;
	rec[1] = 3;
	rec[2] = 3;
	rec[3] = (uint8_t)((len + 16) >> 8);
	rec[4] = (uint8_t)(len + 16);
	ck_assert_int_eq(EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, k.tx.key, k.tx.iv), 1);
	ck_assert_int_eq(EVP_EncryptUpdate(ctx, NULL, &outl, rec, 5), 1);
	ck_assert_int_eq(EVP_EncryptUpdate(ctx, rec + 5, &outl, inner, (int)len), 1);
	ck_assert_int_eq(EVP_EncryptFinal_ex(ctx, rec + 5 + len, &outl), 1);
	ck_assert_int_eq(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, rec + 5 + len), 1);
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(&k, sizeof(k));
	return 5 + len + 16;
}

/* Send @rec from the client's socket, then FIN: an accepted record would end in plain EOF. */
static ssize_t send_sealed(struct conn_pair *p, const uint8_t *rec, size_t len)
{
	char buf[64];

	ck_assert_int_eq(write(p->c.fd, rec, len), (ssize_t)len);
	ck_assert_int_eq(shutdown(p->c.fd, SHUT_WR), 0);
	return rec_read_wait(&p->s, buf, sizeof(buf));
}

/*
 * Data after close_notify is ignored (RFC 8446 6.1), however often the
 * reader asks: EOF is final. No TLS stack sends a record after its
 * close_notify (tlsrec refuses too: see test_tlsrec_nothing_after_close),
 * so both records are sealed here with the client's keys. (Found by
 * fuzz_tlsrec.)
 */
START_TEST(test_tlsrec_data_after_close)
{
	static const uint8_t close_notify[] = { 1, 0, 21 }, after[] = { 'a', 'f', 't', 23 };
	uint8_t rec[2 * 64];
	struct conn_pair p;
	char buf[64];
	size_t len;
	ssize_t n;

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	len = seal13(p.c.ssl, 0, close_notify, sizeof(close_notify), rec);
	len += seal13(p.c.ssl, 1, after, sizeof(after), rec + len);
	use_tlsrec(&p.s);
	ck_assert_int_eq(write(p.c.fd, rec, len), (ssize_t)len);
	n = rec_read_wait(&p.s, buf, sizeof(buf));
	ck_assert_int_eq(n, 0);
	ck_assert(tlsrec_clean_eof(p.s.rec));
	/* "aft" sat in the socket or in tlsrec's buffer: neither may come out. */
	ck_assert(!tlsrec_has_pending(p.s.rec));
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tlsrec_read(p.s.rec, p.s.fd, buf, sizeof(buf), &p.s.st, p.s.err,
					     sizeof(p.s.err)),
				 0);
	pair_close(&p);
}
END_TEST

/* After its own close_notify tlsrec sends nothing: no data, no KeyUpdate answer. */
START_TEST(test_tlsrec_nothing_after_close)
{
	const struct combo *cb = &combos[_i];
	struct conn_pair p;
	char buf[64];
	ssize_t n;
	int r;

	pair_open(&p, cb->version, cb->suite, 0);
	use_tlsrec(&p.s);
	send_msg(&p.c, &p.s, "before");
	ck_assert_int_eq(tlsrec_shutdown(p.s.rec, p.s.fd), 0);
	n = tlsrec_write(p.s.rec, p.s.fd, "after", 5, p.s.err, sizeof(p.s.err));
	ck_assert_int_eq(n, -EPIPE);
	if (cb->version == TLS1_3_VERSION) {
		/* The client asks for an update: followed, never answered, reading goes on. */
		ck_assert_int_eq(SSL_key_update(p.c.ssl, SSL_KEY_UPDATE_REQUESTED), 1);
		send_msg(&p.c, &p.s, "still reading");
		ck_assert_uint_eq(p.s.st.tls_key_updates, 1);
		ck_assert(!tlsrec_wants_write(p.s.rec));
	}
	/* The client sees close_notify and nothing else. */
	wait_readable(p.c.fd);
	r = SSL_read(p.c.ssl, buf, sizeof(buf));
	ck_assert_int_le(r, 0);
	ck_assert_int_eq(SSL_get_error(p.c.ssl, r), SSL_ERROR_ZERO_RETURN);
	pair_close(&p);
}
END_TEST

/*
 * A KeyUpdate must end its record (RFC 8446 5.1). OpenSSL never sends
 * anything else, so the record is sealed here with the client's keys: a
 * KeyUpdate, then an empty NewSessionTicket. (Found writing fuzz_tlsrec's model.)
 */
START_TEST(test_tlsrec_key_update_mid_record)
{
	static const uint8_t inner[] = { 24, 0, 0, 1, 0, 4, 0, 0, 0, 22 };
	uint8_t rec[5 + sizeof(inner) + 16];
	struct conn_pair p;
	size_t len;

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	len = seal13(p.c.ssl, 0, inner, sizeof(inner), rec);
	use_tlsrec(&p.s);
	ck_assert_int_eq(send_sealed(&p, rec, len), -EPROTO);
	ck_assert_uint_eq(p.s.st.tls_key_updates, 0);
	pair_close(&p);
}
END_TEST

/* What the OpenSSL end @e reads once tlsrec failed: the fatal alert tlsrec sent, by name. */
static const char *sees_alert(struct ep *e)
{
	char buf[64];
	int r;

	wait_readable(e->fd);
	r = SSL_read(e->ssl, buf, sizeof(buf));
	ck_assert_int_le(r, 0);
	ck_assert_int_eq(SSL_get_error(e->ssl, r), SSL_ERROR_SSL);
	/* OpenSSL names a received alert "ssl/tls alert <name>" (SSL_AD_REASON_OFFSET). */
	return ERR_reason_error_string(ERR_peek_last_error());
}

/*
 * TLS 1.3 records are at most 2^14 + 256 bytes after the header (RFC 8446
 * 5.2), whatever the padding; TLS 1.2's 2^14 + 2048 does not apply. And the
 * whole inner plaintext, content type and padding included, is at most
 * 2^14 + 1 bytes (RFC 8446 5.4): one byte more is record_overflow, even
 * when the content itself is one byte.
 */
START_TEST(test_tlsrec_tls13_record_overflow)
{
	static uint8_t inner[16384 + 256 - 16 + 1], rec[5 + sizeof(inner) + 16];
	struct conn_pair p;
	char buf[64];
	size_t len;

	memset(inner, 0, sizeof(inner));
	inner[0] = 'x';
	inner[1] = 23;
	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	len = seal13(p.c.ssl, 0, inner, sizeof(inner), rec);
	use_tlsrec(&p.s);
	ck_assert_int_eq(send_sealed(&p, rec, len), -EPROTO);
	ck_assert_msg(strstr(p.s.err, "bad header"), "%s", p.s.err);
	pair_close(&p);

	/* Under the record limit, over the inner plaintext limit: refused, and said so. */
	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	len = seal13(p.c.ssl, 0, inner, 16384 + 2, rec);
	use_tlsrec(&p.s);
	ck_assert_int_eq(write(p.c.fd, rec, len), (ssize_t)len);
	ck_assert_int_eq(rec_read_wait(&p.s, buf, sizeof(buf)), -EMSGSIZE);
	ck_assert_str_eq(sees_alert(&p.c), "tlsv1 alert record overflow");
	pair_close(&p);

	/* At the limit: accepted. */
	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	len = seal13(p.c.ssl, 0, inner, 16384 + 1, rec);
	use_tlsrec(&p.s);
	ck_assert_int_eq(write(p.c.fd, rec, len), (ssize_t)len);
	ck_assert_int_eq(rec_read_wait(&p.s, buf, sizeof(buf)), 1);
	ck_assert_int_eq(buf[0], 'x');
	pair_close(&p);
}
END_TEST

/*
 * A peer that asks for KeyUpdates and reads nothing gets one answer for all
 * the requests that came while the last one waits in tlsrec's queue (RFC
 * 8446 4.6.3), so the queue never fills: reading goes on however many it
 * sends. (It used to answer each, and fail with -ENOBUFS after a few
 * hundred.) tlsrec_shutdown() then sends the queue whole and its
 * close_notify, as the socket allows. After the handshake both ends move to
 * a socketpair with a small send buffer on tlsrec's side.
 */
START_TEST(test_tlsrec_shutdown_full_queue)
{
	struct conn_pair p;
	int small = 4096, u[2], r = 0, i;
	char buf[256];
	ssize_t n = -EAGAIN;

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	use_tlsrec(&p.s);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, u), 0);
	ck_assert_int_eq(setsockopt(u[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	ck_assert_int_eq(SSL_set_fd(p.c.ssl, u[1]), 1);
	for (i = 0; i < 3000; i++) {
		ck_assert_int_eq(SSL_key_update(p.c.ssl, SSL_KEY_UPDATE_REQUESTED), 1);
		ck_assert_int_eq(SSL_do_handshake(p.c.ssl), 1);
		n = tlsrec_read(p.s.rec, u[0], buf, sizeof(buf), &p.s.st, p.s.err,
				sizeof(p.s.err));
		ck_assert_msg(n == -EAGAIN, "tlsrec_read: %zd %s", n, p.s.err);
	}
	ck_assert_uint_eq(p.s.st.tls_key_updates, 3000);
	/* The client takes the answers (KeyUpdates for it), then the close_notify. */
	for (i = 0; i < 10000; i++) {
		r = tlsrec_shutdown(p.s.rec, u[0]);
		ck_assert_msg(r == 0 || r == -EAGAIN, "tlsrec_shutdown: %s", strerror(-r));
		r = SSL_read(p.c.ssl, buf, sizeof(buf));
		ck_assert_int_le(r, 0);
		r = SSL_get_error(p.c.ssl, r);
		if (r == SSL_ERROR_ZERO_RETURN)
			break;
		ck_assert_msg(r == SSL_ERROR_WANT_READ, "SSL_read: SSL error %d", r);
	}
	ck_assert_int_eq(r, SSL_ERROR_ZERO_RETURN);
	close(u[0]);
	close(u[1]);
	pair_close(&p);
}
END_TEST

/*
 * TLS 1.3 user_canceled is a closure alert (RFC 8446 6.1) that OpenSSL
 * ignores, waiting for the close_notify that should follow: so does tlsrec,
 * and data goes on. Only a run of them with nothing between is cut off.
 */
START_TEST(test_tlsrec_user_canceled)
{
	static const uint8_t canceled[] = { 1, 90, 21 }, ok[] = { 'o', 'k', 23 };
	uint8_t rec[8 * 64];
	struct conn_pair p;
	char buf[64];
	size_t len;

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	len = seal13(p.c.ssl, 0, canceled, sizeof(canceled), rec);
	len += seal13(p.c.ssl, 1, ok, sizeof(ok), rec + len);
	use_tlsrec(&p.s);
	ck_assert_int_eq(write(p.c.fd, rec, len), (ssize_t)len);
	ck_assert_int_eq(rec_read_wait(&p.s, buf, sizeof(buf)), 2);
	ck_assert_mem_eq(buf, "ok", 2);
	ck_assert_uint_eq(p.s.st.tls_alerts, 1);
	pair_close(&p);

	/* Five in a row: unexpected_message, as OpenSSL's MAX_WARN_ALERT_COUNT. */
	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	len = 0;
	for (uint64_t i = 0; i < 5; i++)
		len += seal13(p.c.ssl, i, canceled, sizeof(canceled), rec + len);
	use_tlsrec(&p.s);
	ck_assert_int_eq(write(p.c.fd, rec, len), (ssize_t)len);
	ck_assert_int_eq(rec_read_wait(&p.s, buf, sizeof(buf)), -EPROTO);
	ck_assert_str_eq(sees_alert(&p.c), "sslv3 alert unexpected message");
	pair_close(&p);
}
END_TEST

/*
 * Post-handshake messages are checked by direction: a NewSessionTicket from
 * the client is refused with unexpected_message (RFC 8446 4.6.1: servers
 * send them), and a malformed one with decode_error.
 */
START_TEST(test_tlsrec_ticket_from_client)
{
	static const uint8_t ticket[] = { 4, 0, 0, 14, 0, 0, 0, 60, 1, 2, 3, 4, 0, 0, 1, 0xaa,
					  0, 0, 22 };
	static const uint8_t bad_ticket[] = { 4, 0, 0, 0, 22 };
	uint8_t rec[64];
	struct conn_pair p;
	size_t len;

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	len = seal13(p.c.ssl, 0, ticket, sizeof(ticket), rec);
	use_tlsrec(&p.s);
	ck_assert_int_eq(send_sealed(&p, rec, len), -EPROTO);
	ck_assert_uint_eq(p.s.st.tls_tickets, 0);
	ck_assert_str_eq(sees_alert(&p.c), "sslv3 alert unexpected message");
	pair_close(&p);

	/* The client end reads a malformed ticket from the server. */
	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	len = seal13(p.s.ssl, 0, bad_ticket, sizeof(bad_ticket), rec);
	use_tlsrec(&p.c);
	ck_assert_int_eq(write(p.s.fd, rec, len), (ssize_t)len);
	ck_assert_int_eq(rec_read_wait(&p.c, rec, sizeof(rec)), -EPROTO);
	ck_assert_str_eq(sees_alert(&p.s), "tlsv1 alert decode error");
	pair_close(&p);
}
END_TEST

/*
 * Records that bring no data are handled 32 to a call, then the read
 * yields with the rest still pending (OpenSSL caps empty records at 32): a
 * peer cannot hold a worker inside one call.
 */
START_TEST(test_tlsrec_idle_records_yield)
{
	static const uint8_t empty[] = { 23 }, x[] = { 'x', 23 };
	static uint8_t rec[41 * 32];
	struct conn_pair p;
	char buf[64];
	size_t len = 0;
	ssize_t n;
	uint64_t i;

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	for (i = 0; i < 40; i++)
		len += seal13(p.c.ssl, i, empty, sizeof(empty), rec + len);
	len += seal13(p.c.ssl, i, x, sizeof(x), rec + len);
	use_tlsrec(&p.s);
	ck_assert_int_eq(write(p.c.fd, rec, len), (ssize_t)len);
	wait_readable(p.s.fd);
	n = tlsrec_read(p.s.rec, p.s.fd, buf, sizeof(buf), &p.s.st, p.s.err, sizeof(p.s.err));
	ck_assert_int_eq(n, -EAGAIN);
	ck_assert(tlsrec_yielded(p.s.rec));
	ck_assert(tlsrec_has_pending(p.s.rec));
	n = tlsrec_read(p.s.rec, p.s.fd, buf, sizeof(buf), &p.s.st, p.s.err, sizeof(p.s.err));
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(buf[0], 'x');
	pair_close(&p);
}
END_TEST

/*
 * Before an AES-GCM send key reaches its safe number of records (RFC 8446
 * 5.5; 2^23 by default, 10 here through the test knob), tlsrec sends a
 * KeyUpdate of its own (update_not_requested) and changes keys: the peer,
 * tlsrec or OpenSSL, follows, and data keeps flowing both ways.
 */
START_TEST(test_tlsrec_rekey_at_limit)
{
	bool openssl_peer = _i == 1;
	struct conn_pair p;

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	ck_assert_int_eq(setenv("PGKTLS_TEST_REKEY_RECORDS", "10", 1), 0);
	use_tlsrec(&p.s);
	ck_assert_int_eq(unsetenv("PGKTLS_TEST_REKEY_RECORDS"), 0);
	if (!openssl_peer)
		use_tlsrec(&p.c);
	for (int i = 0; i < 35; i++)
		send_msg(&p.s, &p.c, "under a key that is changed every 10 records");
	if (!openssl_peer)
		ck_assert_uint_eq(p.c.st.tls_key_updates, 3);
	send_msg(&p.c, &p.s, "and back");
	pump(&p.s, &p.c, 300 * 1000, 0x77);
	pair_close(&p);
}
END_TEST

/*
 * TLS 1.2 cannot change keys: at the limit tlsrec closes cleanly
 * (close_notify) and the write fails with -EKEYEXPIRED; the peer reads all
 * the data, then a clean EOF.
 */
START_TEST(test_tlsrec_tls12_limit_closes)
{
	struct conn_pair p;
	char buf[64];
	ssize_t n;
	int r, got = 0;

	pair_open(&p, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", 0);
	ck_assert_int_eq(setenv("PGKTLS_TEST_REKEY_RECORDS", "10", 1), 0);
	use_tlsrec(&p.s);
	ck_assert_int_eq(unsetenv("PGKTLS_TEST_REKEY_RECORDS"), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_uint_eq(ep_write(&p.s, "0123456789", 10), 10);
	n = tlsrec_write(p.s.rec, p.s.fd, "0123456789", 10, p.s.err, sizeof(p.s.err));
	ck_assert_int_eq(n, -EKEYEXPIRED);
	for (int idle = 0; idle < 100; idle++) {
		wait_readable(p.c.fd);
		r = SSL_read(p.c.ssl, buf, sizeof(buf));
		if (r > 0) {
			got += r;
			continue;
		}
		r = SSL_get_error(p.c.ssl, r);
		if (r != SSL_ERROR_WANT_READ)
			break;
	}
	ck_assert_int_eq(got, 100);
	ck_assert_int_eq(r, SSL_ERROR_ZERO_RETURN);
	pair_close(&p);
}
END_TEST

static void no_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	(void)loop;
	(void)io;
	(void)events;
}

/*
 * Issue 11, defect 1: the client asks for a KeyUpdate while pgktls's socket
 * to it is full, then sends close_notify. The answer waits in tlsrec's
 * queue; the client's reading side is at EOF, so no read flushes it, and
 * nothing flows the other way to flush it either. Once the client has
 * drained its socket, the next relay pass must send the answer and stop
 * asking epoll for EPOLLOUT: a mask that kept it would wake the worker
 * forever (level-triggered, the socket stays writable). (relay.c, driven
 * here over a TCP pair to an OpenSSL client and a socketpair upstream.)
 */
START_TEST(test_relay_no_epollout_after_queue_drains)
{
	static uint8_t scratch[RELAY_BATCH_SIZE], junk[4096];
	struct relay_dir c2s, s2c;
	struct relay_pipes pipes = { .n = 0 };
	struct hop h0, h1, *failed = NULL;
	struct stats st;
	struct relay r;
	struct ev_loop *loop = ev_loop_new();
	struct conn_pair p;
	int small = 4096, sp[2];
	enum relay_status rs;

	ck_assert_ptr_nonnull(loop);
	memset(&st, 0, sizeof(st));
	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	ck_assert_int_eq(setsockopt(p.s.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	hop_init(&h0, p.s.fd, "client", true);
	h0.ssl = p.s.ssl;
	p.s.ssl = NULL;
	p.s.fd = -1;
	ck_assert_int_eq(hop_use_tlsrec(&h0), 0);
	ev_io_init(&h0.io, h0.fd, no_cb);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
	hop_init(&h1, sp[0], "server", false);
	ev_io_init(&h1.io, h1.fd, no_cb);
	relay_dir_init(&c2s);
	relay_dir_init(&s2c);
	memset(&r, 0, sizeof(r));
	r.src[0] = r.dst[1] = &h0;
	r.src[1] = r.dst[0] = &h1;
	r.dir[0] = &c2s;
	r.dir[1] = &s2c;
	r.stats = &st;
	r.scratch = scratch;
	r.pipes = &pipes;

	/* The client: a KeyUpdate request, then close_notify. */
	ck_assert_int_eq(SSL_key_update(p.c.ssl, SSL_KEY_UPDATE_REQUESTED), 1);
	ck_assert_int_eq(SSL_do_handshake(p.c.ssl), 1);
	ck_assert_int_ge(SSL_shutdown(p.c.ssl), 0);
	wait_readable(h0.fd);
	/*
	 * The socket to the client is full (of bytes the client will drain
	 * raw), until the client reads: filled again after a pause, as TCP
	 * moves what it can into the client's receive buffer.
	 */
	memset(junk, 0x17, sizeof(junk));
	for (int round = 0; round < 5; round++) {
		while (send(h0.fd, junk, sizeof(junk), MSG_NOSIGNAL) > 0)
			;
		ck_assert_int_eq(errno, EAGAIN);
		usleep(20000);
	}
	while (send(h0.fd, junk, sizeof(junk), MSG_NOSIGNAL) > 0)
		;
	r.rx_ready[0] = r.rx_ready[1] = true;
	rs = relay_run(&r, loop, &failed);
	ck_assert_int_eq(rs, RELAY_AGAIN);
	ck_assert(h0.rx_eof && h0.clean_eof);
	ck_assert_uint_eq(st.tls_key_updates, 1);
	ck_assert(tlsrec_wants_write(h0.rec));
	ck_assert(h0.io.events & EPOLLOUT);

	/* The client drains its socket; epoll reports h0 writable; one relay pass. */
	for (int idle = 0; idle < 50; idle++) {
		uint8_t buf[65536];

		if (recv(p.c.fd, buf, sizeof(buf), 0) > 0) {
			idle = 0;
			continue;
		}
		usleep(2000);
	}
	rs = relay_run(&r, loop, &failed);
	ck_assert_int_eq(rs, RELAY_AGAIN);
	ck_assert(!tlsrec_wants_write(h0.rec));
	ck_assert_msg(!(h0.io.events & EPOLLOUT), "EPOLLOUT still asked for: the worker spins");
	ck_assert(!h0.rd_wants_write);

	hop_close(loop, &h0);
	hop_close(loop, &h1);
	close(sp[1]);
	relay_dir_fini(&c2s);
	relay_dir_fini(&s2c);
	relay_pipes_fini(&pipes);
	ev_loop_free(loop);
	pair_close(&p);
}
END_TEST

/* A forged record fails authentication; a malformed header is refused. */
START_TEST(test_tlsrec_forged)
{
	const struct combo *cb = &combos[_i];
	uint8_t rec[5 + 40], buf[64];
	struct conn_pair p;
	ssize_t n;

	memset(rec, 0xa5, sizeof(rec));
	rec[0] = 23;
	rec[1] = 3;
	rec[2] = 3;
	rec[3] = 0;
	rec[4] = 40;
	pair_open(&p, cb->version, cb->suite, 0);
	use_tlsrec(&p.s);
	send_msg(&p.c, &p.s, "genuine");
	ck_assert_int_eq(write(p.c.fd, rec, sizeof(rec)), (ssize_t)sizeof(rec));
	n = rec_read_wait(&p.s, buf, sizeof(buf));
	ck_assert_int_eq(n, -EBADMSG);
	ck_assert_str_eq(p.s.err, "TLS record failed authentication");
	/* RFC 8446 5.2, RFC 5246 7.2.2: the peer is told, with a fatal bad_record_mac. */
	ck_assert_str_eq(sees_alert(&p.c), "sslv3 alert bad record mac");
	pair_close(&p);

	pair_open(&p, cb->version, cb->suite, 0);
	use_tlsrec(&p.s);
	rec[2] = 1;	/* TLS 1.0 in the header */
	ck_assert_int_eq(write(p.c.fd, rec, sizeof(rec)), (ssize_t)sizeof(rec));
	n = rec_read_wait(&p.s, buf, sizeof(buf));
	ck_assert_int_eq(n, -EPROTO);
	pair_close(&p);
}
END_TEST

/* Bytes already inside OpenSSL: tlsrec refuses and OpenSSL carries on. */
START_TEST(test_tlsrec_pending_refused)
{
	struct conn_pair p;
	struct tlsrec *rec = (struct tlsrec *)&p;
	char buf[64];
	int r;

	pair_open(&p, TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0);
	SSL_set_read_ahead(p.s.ssl, 1);
	ck_assert_uint_eq(ep_write(&p.c, "one", 3), 3);
	ck_assert_uint_eq(ep_write(&p.c, "two", 3), 3);
	wait_readable(p.s.fd);
	usleep(20000);
	ck_assert_int_eq(SSL_read(p.s.ssl, buf, 1), 1);
	ck_assert_int_eq(tlsrec_new(p.s.ssl, &rec), -EBUSY);
	ck_assert_ptr_null(rec);
	r = SSL_read(p.s.ssl, buf, sizeof(buf));
	ck_assert_int_eq(r, 2);
	ck_assert_mem_eq(buf, "ne", 2);
	r = SSL_read(p.s.ssl, buf, sizeof(buf));
	ck_assert_int_eq(r, 3);
	ck_assert_mem_eq(buf, "two", 3);
	send_msg(&p.c, &p.s, "OpenSSL still works");
	pair_close(&p);
}
END_TEST

static Suite *ktls_suite(void)
{
	Suite *s = suite_create("ktls");
	TCase *tc;

	tc = tcase_create("basics");
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_probe);
	tcase_add_test(tc, test_handshake_record_parse);
	tcase_add_test(tc, test_pending_refused);
	tcase_add_test(tc, test_not_tcp);
	tcase_add_loop_test(tc, test_max_fragment_not_offloaded, 0,
			    (int)PGKTLS_ARRAY_SIZE(combos));
	tcase_add_test(tc, test_forget);
	tcase_add_loop_test(tc, test_no_kernel_fallback, 0, (int)PGKTLS_ARRAY_SIZE(combos));
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);

	tc = tcase_create("tlsrec");
	tcase_add_loop_test(tc, test_tlsrec_bulk, 0, 3 * (int)PGKTLS_ARRAY_SIZE(combos));
	tcase_add_loop_test(tc, test_tlsrec_short_writes, 0, (int)PGKTLS_ARRAY_SIZE(combos));
	tcase_add_test(tc, test_tlsrec_tickets);
	tcase_add_loop_test(tc, test_tlsrec_key_update, 0, 6);
	tcase_add_loop_test(tc, test_tlsrec_eof, 0, (int)PGKTLS_ARRAY_SIZE(combos));
	tcase_add_loop_test(tc, test_tlsrec_forged, 0, (int)PGKTLS_ARRAY_SIZE(combos));
	tcase_add_test(tc, test_tlsrec_data_after_close);
	tcase_add_loop_test(tc, test_tlsrec_nothing_after_close, 0,
			    (int)PGKTLS_ARRAY_SIZE(combos));
	tcase_add_test(tc, test_tlsrec_key_update_mid_record);
	tcase_add_test(tc, test_tlsrec_tls13_record_overflow);
	tcase_add_test(tc, test_tlsrec_shutdown_full_queue);
	tcase_add_test(tc, test_tlsrec_user_canceled);
	tcase_add_test(tc, test_tlsrec_ticket_from_client);
	tcase_add_test(tc, test_tlsrec_idle_records_yield);
	tcase_add_loop_test(tc, test_tlsrec_rekey_at_limit, 0, 2);
	tcase_add_test(tc, test_tlsrec_tls12_limit_closes);
	tcase_add_test(tc, test_relay_no_epollout_after_queue_drains);
	tcase_add_test(tc, test_tlsrec_pending_refused);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);

	tc = tcase_create("kernel");
	tcase_add_loop_test(tc, test_both_ends, 0, (int)PGKTLS_ARRAY_SIZE(combos));
	tcase_add_loop_test(tc, test_userspace_peer, 0, 2 * (int)PGKTLS_ARRAY_SIZE(combos));
	tcase_add_test(tc, test_session_tickets);
	tcase_add_test(tc, test_key_update);
	tcase_add_test(tc, test_ss_shows_ulp);
	tcase_add_loop_test(tc, test_kernel_options, 0, 2);
	tcase_add_test(tc, test_tx_fails_after_rx);
	/* TCG in the VM is slow; a stall still fails through the poll limits. */
	tcase_set_timeout(tc, 300);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	snprintf(certdir, sizeof(certdir), "%s", testlib_tmpdir());
	if (testlib_make_certs(certdir)) {
		fprintf(stderr, "cannot make test certificates in %s\n", certdir);
		return 1;
	}
	/* Once here, so forked tests inherit the answer and it is logged once. */
	ktls_probe();
	return run_suite(ktls_suite());
}
