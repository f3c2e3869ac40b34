// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * tls_upstream.c - a stand-in PostgreSQL server for pgktls's upstream hop
 * that sends TLS 1.3 KeyUpdates mid-stream (t-ktls-rekey.sh). PostgreSQL
 * never rekeys and Python's ssl module cannot, so this uses OpenSSL's
 * SSL_key_update().
 *
 *   tls_upstream PORT CERT KEY EVERY
 *
 * Listens on 127.0.0.1:PORT and serves one connection at a time, forever:
 * answers SSLRequest with 'S', accepts TLS 1.3 (no tickets), takes any
 * startup packet with AuthenticationOk, and then understands three simple
 * queries, enough for psql:
 *
 *   copy t from stdin   keeps the CopyData it receives (SHA-256 over it)
 *   copy t to stdout    sends the kept bytes back as CopyData
 *   select stats        one row: "sent S requested R received K bytes B sha256 HEX"
 *
 * While a COPY moves, every EVERY bytes (in either direction) it sends a
 * KeyUpdate, alternating update_requested and update_not_requested, and it
 * counts the KeyUpdates it receives (pgktls's answers: "received K"). The
 * totals are for the whole process. It prints "listening" once ready and
 * a line per connection on stdout.
 */
#include "config.h"

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

/* KeyUpdates sent (and how many of them asked for an answer) and received. */
static unsigned long sent, requested, received;
static size_t every;

/* What the last COPY FROM brought: kept for COPY TO and for "select stats". */
static uint8_t *kept;
static size_t kept_len, kept_cap;
static char kept_sha[2 * 32 + 1] = "-";

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Count the KeyUpdates the peer sends (handshake type 24 after the handshake). */
static void on_msg(int write_p, int version, int content_type, const void *buf, size_t len,
		   SSL *ssl, void *arg)
{
	(void)version;
	(void)ssl;
	(void)arg;
	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len >= 1 &&
	    ((const uint8_t *)buf)[0] == 24)
		received++;
}

static int read_full(SSL *ssl, void *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		int n = SSL_read(ssl, (uint8_t *)buf + off, (int)(len - off));

		if (n <= 0)
			return -1;
		off += (size_t)n;
	}
	return 0;
}

static int write_full(SSL *ssl, const void *buf, size_t len)
{
	return len == 0 || SSL_write(ssl, buf, (int)len) == (int)len ? 0 : -1;
}

static int send_msg(SSL *ssl, char type, const void *body, size_t len)
{
	uint8_t hdr[5];

	hdr[0] = (uint8_t)type;
	put32(hdr + 1, (uint32_t)(4 + len));
	return write_full(ssl, hdr, 5) || write_full(ssl, body, len) ? -1 : 0;
}

/* A KeyUpdate every @every bytes moved; it goes out at once (SSL_do_handshake). */
static int maybe_key_update(SSL *ssl, size_t *moved)
{
	bool req;

	if (*moved < every)
		return 0;
	*moved = 0;
	req = sent % 2 == 0;
	if (!SSL_key_update(ssl, req ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) ||
	    SSL_do_handshake(ssl) != 1) {
		printf("SSL_key_update failed\n");
		return -1;
	}
	sent++;
	requested += req;
	return 0;
}

static int complete(SSL *ssl, const char *tag)
{
	static const uint8_t idle = 'I';

	return send_msg(ssl, 'C', tag, strlen(tag) + 1) || send_msg(ssl, 'Z', &idle, 1) ? -1 : 0;
}

static int copy_in(SSL *ssl)
{
	static const uint8_t resp[3] = { 0, 0, 0 };	/* text, no columns */
	unsigned char md[32];
	uint8_t hdr[5];
	size_t moved = 0;
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	char tag[64];

	if (!sha || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL) || send_msg(ssl, 'G', resp, 3))
		return -1;
	kept_len = 0;
	for (;;) {
		uint32_t len;

		if (read_full(ssl, hdr, 5))
			return -1;
		len = get32(hdr + 1) - 4;
		if (hdr[0] == 'c')
			break;
		if (kept_len + len > kept_cap) {
			size_t cap = (kept_len + len) * 2;
			uint8_t *p = realloc(kept, cap);

			if (!p)
				return -1;
			kept = p;
			kept_cap = cap;
		}
		if (read_full(ssl, kept + kept_len, len))
			return -1;
		if (hdr[0] != 'd')
			continue;	/* CopyFail or Flush: not used by psql here */
		EVP_DigestUpdate(sha, kept + kept_len, len);
		kept_len += len;
		moved += len;
		if (maybe_key_update(ssl, &moved))
			return -1;
	}
	EVP_DigestFinal_ex(sha, md, NULL);
	EVP_MD_CTX_free(sha);
	for (int i = 0; i < 32; i++)
		sprintf(kept_sha + 2 * i, "%02x", md[i]);
	snprintf(tag, sizeof(tag), "COPY %zu", kept_len);
	return complete(ssl, tag);
}

static int copy_out(SSL *ssl)
{
	static const uint8_t resp[3] = { 0, 0, 0 };
	size_t off = 0, moved = 0;

	if (send_msg(ssl, 'H', resp, 3))
		return -1;
	while (off < kept_len) {
		size_t n = kept_len - off < 8192 ? kept_len - off : 8192;

		if (send_msg(ssl, 'd', kept + off, n))
			return -1;
		off += n;
		moved += n;
		if (maybe_key_update(ssl, &moved))
			return -1;
	}
	return send_msg(ssl, 'c', NULL, 0) || complete(ssl, "COPY 0") ? -1 : 0;
}

static int stats(SSL *ssl)
{
	/* RowDescription: one text column "stats". */
	static const uint8_t desc[] = { 0, 1, 's', 't', 'a', 't', 's', 0, 0, 0, 0, 0, 0, 0,
					0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0 };
	uint8_t row[256];
	int n;

	n = snprintf((char *)row + 6, sizeof(row) - 6,
		     "sent %lu requested %lu received %lu bytes %zu sha256 %s", sent, requested,
		     received, kept_len, kept_sha);
	row[0] = 0;
	row[1] = 1;
	put32(row + 2, (uint32_t)n);
	return send_msg(ssl, 'T', desc, sizeof(desc)) || send_msg(ssl, 'D', row, 6 + (size_t)n) ||
		       complete(ssl, "SELECT 1")
	       ? -1
	       : 0;
}

/* The startup reply psql needs: AuthenticationOk, a few parameters, BackendKeyData. */
static int startup(SSL *ssl)
{
	static const char *const params[][2] = {
		{ "server_version", "15.0" },	  { "client_encoding", "UTF8" },
		{ "server_encoding", "UTF8" },	  { "standard_conforming_strings", "on" },
		{ "integer_datetimes", "on" },	  { "DateStyle", "ISO, MDY" },
	};
	uint8_t buf[10000], zero[4] = { 0 }, key[8] = { 0, 0, 0, 42, 1, 2, 3, 4 };
	uint32_t len;

	if (read_full(ssl, buf, 4))
		return -1;
	len = get32(buf);
	if (len < 8 || len > sizeof(buf) || read_full(ssl, buf, len - 4))
		return -1;
	if (send_msg(ssl, 'R', zero, 4))
		return -1;
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		size_t a = strlen(params[i][0]) + 1, b = strlen(params[i][1]) + 1;

		memcpy(buf, params[i][0], a);
		memcpy(buf + a, params[i][1], b);
		if (send_msg(ssl, 'S', buf, a + b))
			return -1;
	}
	return send_msg(ssl, 'K', key, 8) || send_msg(ssl, 'Z', "I", 1) ? -1 : 0;
}

static void serve(SSL_CTX *ctx, int fd)
{
	static const uint8_t sslreq[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
	uint8_t hdr[8], q[512];
	SSL *ssl = NULL;

	if (recv(fd, hdr, 8, MSG_WAITALL) != 8 || memcmp(hdr, sslreq, 8) != 0 ||
	    send(fd, "S", 1, MSG_NOSIGNAL) != 1)
		goto out;
	ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_fd(ssl, fd) || SSL_accept(ssl) != 1) {
		printf("handshake failed\n");
		goto out;
	}
	printf("connected %s %s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
	if (startup(ssl))
		goto out;
	for (;;) {
		uint32_t len;
		int r = 0;

		if (read_full(ssl, hdr, 5))
			break;
		len = get32(hdr + 1) - 4;
		if (hdr[0] == 'X' || len >= sizeof(q) || read_full(ssl, q, len))
			break;
		q[len] = 0;
		if (hdr[0] != 'Q')
			continue;
		if (strstr((char *)q, "from stdin"))
			r = copy_in(ssl);
		else if (strstr((char *)q, "to stdout"))
			r = copy_out(ssl);
		else
			r = stats(ssl);
		if (r) {
			printf("session failed\n");
			break;
		}
	}
	printf("closed: sent %lu requested %lu received %lu\n", sent, requested, received);
	SSL_shutdown(ssl);
out:
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	SSL_CTX *ctx;
	int lfd, one = 1;

	if (argc != 5) {
		fprintf(stderr, "usage: %s PORT CERT KEY EVERY\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	every = strtoul(argv[4], NULL, 10);
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(ctx, argv[2]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[3], SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	/* Tickets are t-ktls.sh's subject, not this one's. */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_msg_callback(ctx, on_msg);
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd == -1 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(lfd, 8) == -1) {
		perror("listen");
		return 1;
	}
	printf("listening\n");
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd >= 0)
			serve(ctx, fd);
	}
}
