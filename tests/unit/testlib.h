/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * testlib.h - shared helpers for the check unit tests.
 */
#ifndef PGKTLS_TESTLIB_H
#define PGKTLS_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <check.h>
#include <openssl/ssl.h>

#include "pgktls/stats.h"

struct tlsrec;

/**
 * run_suite() - run @s with check's normal summary line.
 *
 * Return: the process exit status: 0 if every test passed, 1 otherwise.
 */
int run_suite(Suite *s);

/**
 * testlib_tmpdir() - a fresh private directory for this test process
 * (removed at exit by the caller's choice: tests leave it for post-mortems
 * under $TMPDIR). Return: its path (static storage).
 */
const char *testlib_tmpdir(void);

/**
 * testlib_make_certs() - create a CA and a server/client certificate pair
 * under @dir with the openssl command: ca.pem, server.pem (chain: leaf
 * then CA is NOT included; server-chain.pem has both), server.key,
 * client.pem, client.key. SANs: DNS:localhost, IP:127.0.0.1, IP:::1.
 *
 * Return: 0, or -1 (the test should fail).
 */
int testlib_make_certs(const char *dir);

/**
 * testlib_read_data() - read up to @len bytes of the file @name under
 * @top/tests/data into @buf; the test fails if it cannot be opened or is empty.
 *
 * Return: the number of bytes read.
 */
size_t testlib_read_data(const char *top, const char *name, void *buf, size_t len);

/*
 * TLS endpoints over loopback TCP, shared by test_ktls and test_tlsrec: two
 * OpenSSL ends after a real handshake, each of which may then hand its
 * records to the kernel (ktls) or to tlsrec, and helpers that move bytes
 * through whichever engine each end uses. They fail the test on any
 * unexpected error.
 */

/* One version/cipher combination. */
struct combo {
	int version;		/* TLS1_2_VERSION or TLS1_3_VERSION */
	const char *suite;	/* OpenSSL name: cipher list (1.2) or ciphersuite (1.3) */
	uint16_t kernel_cipher;	/* what getsockopt(TLS_TX) must report */
};

/* TLS 1.2 then 1.3, each with AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305. */
#define TESTLIB_NCOMBOS 6
extern const struct combo combos[TESTLIB_NCOMBOS];

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

/**
 * testlib_tls_init() - make the certificates make_ctx() uses (testlib_make_certs()
 * under testlib_tmpdir()). Call once from main(), before any test forks.
 *
 * Return: 0, or -1.
 */
int testlib_tls_init(void);

/** set_nonblock() - O_NONBLOCK on @fd. */
void set_nonblock(int fd);

/** tcp_pair() - a connected loopback TCP pair: kTLS needs TCP, a socketpair will not do. */
void tcp_pair(int *cfd, int *sfd);

/**
 * make_ctx() - a server or client SSL_CTX for exactly @version and @suite, with
 * the test certificates, @num_tickets session tickets (server), and the key
 * schedule's keylog hook. The caller frees it.
 */
SSL_CTX *make_ctx(bool server, int version, const char *suite, int num_tickets);

/** testlib_handshake() - drive both handshakes in turn over non-blocking sockets to the end. */
void testlib_handshake(SSL *c, SSL *s);

/** pair_open() - two connected, handshaken ends; undone by pair_close(). */
void pair_open(struct conn_pair *p, int version, const char *suite, int num_tickets);
void pair_close(struct conn_pair *p);

/** ep_write() - write some of @buf through @e's engine: bytes written, 0 if it would block. */
size_t ep_write(struct ep *e, const void *buf, size_t len);

/**
 * ep_read() - read some application data into @buf through @e's engine.
 * Return: bytes read, 0 if it would block, -1 if only a control record was
 * consumed (counted in @e).
 */
ssize_t ep_read(struct ep *e, void *buf, size_t len);

/** pattern() - byte @off of the test stream salted with @salt. */
uint8_t pattern(size_t off, unsigned int salt);

/**
 * pump_ex() - move @total pattern bytes from @w to @r, checking each byte on
 * arrival; with @fill_first, write until the socket takes nothing first, so a
 * write meets EAGAIN whatever the machine's load.
 */
void pump_ex(struct ep *w, struct ep *r, size_t total, unsigned int salt, bool fill_first);
void pump(struct ep *w, struct ep *r, size_t total, unsigned int salt);

/** send_msg() - send a short message and read it back whole on the other end. */
void send_msg(struct ep *w, struct ep *r, const char *msg);

/** wait_readable() - wait (at most 10 s) until @fd is readable. */
void wait_readable(int fd);

/** use_tlsrec() - hand @e's records to tlsrec and free its SSL, as hop_use_tlsrec() does. */
void use_tlsrec(struct ep *e);

#endif /* PGKTLS_TESTLIB_H */
