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
 * into failures. The endpoints and pumps are shared with test_tlsrec.c
 * (testlib.c).
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

/* Note @n one-byte kTLS writes from @e (each its own record) in @b. */
static void budget_writes(struct ep *e, struct ktls_tx_budget *b, int n)
{
	for (int i = 0; i < n; i++) {
		ck_assert_uint_eq(ep_write(e, "x", 1), 1);
		ktls_tx_budget_note(b, 1);
	}
}

/*
 * The record budget of a kTLS send key (10 records here): the noted count
 * is an upper bound, the kernel's rec_seq the truth. At the limit TLS 1.3
 * rekeys where the kernel can (our KeyUpdate, which OpenSSL follows), and
 * is spent otherwise, as TLS 1.2 always is; ChaCha20-Poly1305 has no limit.
 * Cases: 0 TLS 1.3 AES-128-GCM, 1 TLS 1.2 AES-128-GCM, 2 TLS 1.3 ChaCha20.
 */
START_TEST(test_tx_budget)
{
	const struct combo *cb = &combos[_i == 0 ? 3 : _i == 1 ? 0 : 5];
	struct ktls_tx_budget b;
	struct conn_pair p;
	char buf[64];
	int got = 0, want, r;

	if (!need_kernel())
		return;
	ck_assert_int_eq(ktls_can_rekey(), kernel_can_rekey());
	pair_open(&p, cb->version, cb->suite, 0);
	install_ok(&p.s, kernel_version(cb->version), cb->kernel_cipher);
	memset(&b, 0, sizeof(b));
	ck_assert_int_eq(setenv("PGKTLS_TEST_REKEY_RECORDS", "10", 1), 0);
	ktls_tx_budget_init(&b, p.s.ssl, NULL);
	ck_assert_int_eq(unsetenv("PGKTLS_TEST_REKEY_RECORDS"), 0);
	if (_i == 2) {
		budget_writes(&p.s, &b, 20);
		ck_assert_int_eq(ktls_tx_budget_check(&b, p.s.fd), 0);
		want = 20;
		goto drain;
	}
	/* 5 records noted as 10: the kernel says 5 (TLS 1.2: 6, its sequence starts at 1). */
	budget_writes(&p.s, &b, 5);
	ck_assert_uint_ge(b.records, 10);
	ck_assert_int_eq(ktls_tx_budget_check(&b, p.s.fd), 0);
	ck_assert_uint_eq(b.records, _i == 1 ? 6 : 5);
	budget_writes(&p.s, &b, 5);
	r = ktls_tx_budget_check(&b, p.s.fd);
	if (_i == 1 || !kernel_can_rekey()) {
		ck_assert_int_eq(r, -EKEYEXPIRED);
		want = 10;
		goto drain;
	}
	ck_assert_int_eq(r, KTLS_TX_REKEY);
	ck_assert_int_eq(ktls_key_update_tx(p.s.ssl, NULL, p.s.fd), 0);
	ktls_tx_budget_rekeyed(&b);
	budget_writes(&p.s, &b, 2);
	/* Under the new key the kernel counts from 0 again. */
	b.records = 10;
	ck_assert_int_eq(ktls_tx_budget_check(&b, p.s.fd), 0);
	ck_assert_uint_eq(b.records, 2);
	want = 12;
drain:
	/* OpenSSL reads every byte, across our KeyUpdate. */
	for (int idle = 0; idle < 100 && got < want; idle++) {
		wait_readable(p.c.fd);
		r = SSL_read(p.c.ssl, buf, sizeof(buf));
		if (r > 0)
			got += r;
	}
	ck_assert_int_eq(got, want);
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
	testlib_handshake(p.c.ssl, p.s.ssl);
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
	testlib_handshake(p.c.ssl, p.s.ssl);
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

	tc = tcase_create("kernel");
	tcase_add_loop_test(tc, test_both_ends, 0, (int)PGKTLS_ARRAY_SIZE(combos));
	tcase_add_loop_test(tc, test_userspace_peer, 0, 2 * (int)PGKTLS_ARRAY_SIZE(combos));
	tcase_add_test(tc, test_session_tickets);
	tcase_add_test(tc, test_key_update);
	tcase_add_loop_test(tc, test_tx_budget, 0, 3);
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
	if (testlib_tls_init()) {
		fprintf(stderr, "cannot make test certificates in %s\n", testlib_tmpdir());
		return 1;
	}
	/* Once here, so forked tests inherit the answer and it is logged once. */
	ktls_probe();
	return run_suite(ktls_suite());
}
