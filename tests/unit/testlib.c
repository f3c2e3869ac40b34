// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
#include "config.h"

#include "testlib.h"

#include <sys/socket.h>
#include <linux/tls.h>
#include <netinet/in.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgktls/keysched.h"
#include "pgktls/ktls.h"
#include "pgktls/tls_uapi.h"
#include "pgktls/tlsmsg.h"
#include "pgktls/tlsrec.h"

int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

const char *testlib_tmpdir(void)
{
	static char dir[PATH_MAX];
	const char *base;

	if (dir[0])
		return dir;
	base = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/pgktls-unit-XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		abort();
	}
	return dir;
}

int testlib_make_certs(const char *dir)
{
	char cmd[4096];

	/* ECDSA P-256, as the daemon's own --generate-cert does. */
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd '%s'; "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
		 "  -subj /CN=pgktls-test-ca -keyout ca.key -out ca.pem "
		 "  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
		 "  2>/dev/null; "
		 "for n in server client; do "
		 "  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "    -subj /CN=$n -keyout $n.key -out $n.csr 2>/dev/null; "
		 "  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\\n' > $n.ext; "
		 "  openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
		 "    -extfile $n.ext -out $n.pem 2>/dev/null; "
		 "done; cat server.pem ca.pem > server-chain.pem; chmod 600 *.key",
		 dir);
	return system(cmd) == 0 ? 0 : -1;
}

size_t testlib_read_data(const char *top, const char *name, void *buf, size_t len)
{
	char path[PATH_MAX];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/tests/data/%s", top, name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	n = fread(buf, 1, len, f);
	fclose(f);
	ck_assert_uint_gt(n, 0);
	return n;
}

/* ---- TLS endpoints over loopback TCP, for test_ktls and test_tlsrec ---- */

static char certdir[4096];

int testlib_tls_init(void)
{
	snprintf(certdir, sizeof(certdir), "%s", testlib_tmpdir());
	return testlib_make_certs(certdir);
}

const struct combo combos[TESTLIB_NCOMBOS] = {
	{ TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", TLS_CIPHER_AES_GCM_128 },
	{ TLS1_2_VERSION, "ECDHE-ECDSA-AES256-GCM-SHA384", TLS_CIPHER_AES_GCM_256 },
	{ TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305", TLS_CIPHER_CHACHA20_POLY1305 },
	{ TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", TLS_CIPHER_AES_GCM_128 },
	{ TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", TLS_CIPHER_AES_GCM_256 },
	{ TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", TLS_CIPHER_CHACHA20_POLY1305 },
};

void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	ck_assert_int_ne(fl, -1);
	ck_assert_int_ne(fcntl(fd, F_SETFL, fl | O_NONBLOCK), -1);
}

/* A connected loopback TCP pair: kTLS needs TCP, a socketpair will not do. */
void tcp_pair(int *cfd, int *sfd)
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

SSL_CTX *make_ctx(bool server, int version, const char *suite, int num_tickets)
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

/* One step of @ssl's handshake: true once it is done; anything but "wait" fails the test. */
static bool handshake_step(SSL *ssl, const char *who)
{
	int r = SSL_do_handshake(ssl), e;

	if (r == 1)
		return true;
	e = SSL_get_error(ssl, r);
	ck_assert_msg(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE,
		      "%s handshake: SSL error %d", who, e);
	return false;
}

/* Drive both handshakes in turn over non-blocking sockets until both are done. */
void testlib_handshake(SSL *c, SSL *s)
{
	bool cdone = false, sdone = false;
	int idle = 0;

	while (!cdone || !sdone) {
		struct pollfd pfd[2] = {
			{ .fd = SSL_get_fd(c), .events = POLLIN },
			{ .fd = SSL_get_fd(s), .events = POLLIN },
		};
		int r;

		if (!cdone)
			cdone = handshake_step(c, "client");
		if (!sdone)
			sdone = handshake_step(s, "server");
		if (!cdone || !sdone) {
			r = poll(pfd, 2, 100);
			ck_assert_int_ge(r, 0);
			ck_assert_msg(++idle < 300, "handshake stalled");
		}
	}
}

/* Two connected, handshaken ends with the given server/client contexts. */
void pair_open(struct conn_pair *p, int version, const char *suite, int num_tickets)
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
	testlib_handshake(p->c.ssl, p->s.ssl);
	ck_assert_int_eq(SSL_version(p->s.ssl), version);
	ck_assert_str_eq(SSL_CIPHER_get_name(SSL_get_current_cipher(p->s.ssl)), suite);
}

void pair_close(struct conn_pair *p)
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

/* Write some of @buf; return bytes written, 0 if it would block. */
size_t ep_write(struct ep *e, const void *buf, size_t len)
{
	ssize_t n;
	int r;

	if (e->rec) {
		n = tlsrec_write(e->rec, e->fd, buf, len, &e->st, e->err, sizeof(e->err));
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
ssize_t ep_read(struct ep *e, void *buf, size_t len)
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

			tlsmsg_init(&m, SSL_version(e->ssl) == TLS1_3_VERSION,
				    !SSL_is_server(e->ssl));
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

uint8_t pattern(size_t off, unsigned int salt)
{
	return (uint8_t)((off % 251) ^ salt ^ (off >> 16));
}

/* Move @total pattern bytes from @w to @r, checking each byte on arrival. */
void pump_ex(struct ep *w, struct ep *r, size_t total, unsigned int salt, bool fill_first)
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

void pump(struct ep *w, struct ep *r, size_t total, unsigned int salt)
{
	pump_ex(w, r, total, salt, false);
}

/* Send a short message and read it back whole on the other end. */
void send_msg(struct ep *w, struct ep *r, const char *msg)
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
void wait_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	ck_assert_int_eq(poll(&pfd, 1, 10000), 1);
}

void use_tlsrec(struct ep *e)
{
	int ret = tlsrec_new(e->ssl, &e->rec);

	ck_assert_msg(ret == 0, "tlsrec_new: %s", strerror(-ret));
	ck_assert_ptr_nonnull(e->rec);
	keysched_forget(e->ssl);
	SSL_free(e->ssl);
	e->ssl = NULL;
}
