// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * tls_poke.c - a PostgreSQL client that misbehaves at the TLS layer on
 * purpose, for t-ktls.sh: things libpq, psycopg2 and Python's ssl module
 * cannot do.
 *
 *   tls_poke MODE PORT [TLSv1.2|TLSv1.3]
 *
 * Connects to 127.0.0.1:PORT, sends SSLRequest, does the TLS handshake
 * (no certificate check: the tests only care about the record layer),
 * logs in as `trusty` to `postgres` (trust auth), runs `select 1`, then:
 *
 *   query      sends close_notify (no Terminate) and waits for the peer's
 *   keyupdate  SSL_key_update(SSL_KEY_UPDATE_REQUESTED), then `select 2`
 *   corrupt    `select 2` in a record with one ciphertext byte flipped
 *   hold       waits for a line on stdin, runs `select 3`, closes
 *   holdkey    as hold, with SSL_key_update(SSL_KEY_UPDATE_REQUESTED) before
 *              `select 3`, then as rekeys: a proxy that took the session
 *              over meanwhile must follow and answer the request, and keep
 *              changing its own send key, from what it was handed
 *   stalled    `copy (select md5(i::text) from generate_series(1, 600000) i) to
 *              stdout`, read nothing until the proxy's socket to us is full,
 *              then SSL_key_update(SSL_KEY_UPDATE_REQUESTED): the proxy's
 *              answer meets a full socket (EAGAIN). Then read it all: prints
 *              "answered after N of M bytes" (N: CopyData bytes read before
 *              the proxy's KeyUpdate arrived, or "never") and "sha256 HEX"
 *              of the CopyData, then runs `select 2`
 *
 * and prints one line per step ("connected TLSv1.3 ...", "query 1",
 * "after keyupdate: eof", "after corrupt: reset", ...). How the proxy ends
 * the session is printed, not judged: the test decides what is right.
 * Exit status: 0 once the first query worked, 1 before that.
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>

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

/*
 * CopyData bytes read so far, that count when the peer's first KeyUpdate
 * arrived (stalled), and the KeyUpdates received (rekeys).
 */
static size_t copy_bytes;
static long answered_at = -1;
static unsigned long key_updates;

static void on_msg(int write_p, int version, int content_type, const void *buf, size_t len,
		   SSL *ssl, void *arg)
{
	(void)version;
	(void)ssl;
	(void)arg;
	if (write_p || content_type != SSL3_RT_HANDSHAKE || len < 1 ||
	    ((const uint8_t *)buf)[0] != 24)
		return;
	key_updates++;
	if (answered_at < 0)
		answered_at = (long)copy_bytes;
}

/* Describe how a read ended: "eof (close_notify)", "eof", "reset", "error ...". */
static const char *end_of(SSL *ssl, int ret, char *buf, size_t len)
{
	int e = SSL_get_error(ssl, ret);
	int saved = errno;
	unsigned long oe = ERR_peek_error();

	if (e == SSL_ERROR_ZERO_RETURN)
		return "eof (close_notify)";
	if (e == SSL_ERROR_SYSCALL && (saved == 0 || oe != 0))
		return "eof";
	if (e == SSL_ERROR_SYSCALL && saved == ECONNRESET)
		return "reset";
	if (e == SSL_ERROR_SSL && ERR_GET_REASON(oe) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
		return "eof";
	if (e == SSL_ERROR_SYSCALL && (saved == EAGAIN || saved == EWOULDBLOCK))
		return "timeout";
	snprintf(buf, len, "error %d %s (%s)", e, saved ? strerror(saved) : "-",
		 oe ? ERR_reason_error_string(oe) : "-");
	return buf;
}

static int read_full(SSL *ssl, uint8_t *buf, size_t len, const char *what)
{
	size_t off = 0;
	char why[200];

	while (off < len) {
		int n = SSL_read(ssl, buf + off, (int)(len - off));

		if (n <= 0) {
			printf("%s: %s\n", what, end_of(ssl, n, why, sizeof(why)));
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/*
 * Read backend messages up to ReadyForQuery; print the first column of the
 * first DataRow as "query VALUE" (or the error). Return: 0 or -1 (printed).
 */
static int read_until_ready(SSL *ssl, const char *what)
{
	uint8_t hdr[5], body[8192];

	for (;;) {
		uint32_t len;

		if (read_full(ssl, hdr, 5, what) < 0)
			return -1;
		len = get32(hdr + 1);
		if (len < 4 || len - 4 > sizeof(body)) {
			printf("%s: bad message length %u\n", what, len);
			return -1;
		}
		if (read_full(ssl, body, len - 4, what) < 0)
			return -1;
		switch (hdr[0]) {
		case 'R':
			if (len < 8 || get32(body) != 0) {
				printf("%s: authentication asked for (use a trust role)\n", what);
				return -1;
			}
			break;
		case 'D':
			if (len >= 10 && get32(body + 2) <= len - 10)
				printf("query %.*s\n", (int)get32(body + 2),
				       (const char *)body + 6);
			break;
		case 'E':
			printf("%s: ErrorResponse %.*s\n", what, (int)(len - 4),
			       (const char *)body);
			break;
		case 'Z':
			return 0;
		default:
			break;
		}
	}
}

static int send_query(SSL *ssl, const char *sql);

/* The line the tests compare with the expected checksum: "sha256 <hex>". */
static void print_sha256(const unsigned char md[32])
{
	printf("sha256 ");
	for (int i = 0; i < 32; i++)
		printf("%02x", md[i]);
	printf("\n");
}

/*
 * Read a COPY TO STDOUT's messages up to ReadyForQuery, hashing the
 * CopyData. Return: 0 or -1 (printed).
 */
static int read_copy(SSL *ssl, unsigned char md[32])
{
	EVP_MD_CTX *sha = EVP_MD_CTX_new();
	uint8_t hdr[5], body[65536];

	if (!sha || !EVP_DigestInit_ex(sha, EVP_sha256(), NULL))
		return -1;
	for (;;) {
		uint32_t len;

		if (read_full(ssl, hdr, 5, "copy") < 0)
			return -1;
		len = get32(hdr + 1);
		if (len < 4 || len - 4 > sizeof(body)) {
			printf("copy: bad message length %u\n", len);
			return -1;
		}
		if (read_full(ssl, body, len - 4, "copy") < 0)
			return -1;
		if (hdr[0] == 'd') {
			EVP_DigestUpdate(sha, body, len - 4);
			copy_bytes += len - 4;
		} else if (hdr[0] == 'E') {
			printf("copy: ErrorResponse %.*s\n", (int)(len - 4), (const char *)body);
		} else if (hdr[0] == 'Z') {
			break;
		}
	}
	EVP_DigestFinal_ex(sha, md, NULL);
	EVP_MD_CTX_free(sha);
	return 0;
}

/* The stalled mode (see the top of this file). */
static int stalled(SSL *ssl, int fd)
{
	unsigned char md[32];
	int queued = 0, last = -1;

	SSL_set_msg_callback(ssl, on_msg);
	if (send_query(ssl, "copy (select md5(i::text) from generate_series(1, 600000) i) "
			    "to stdout") < 0)
		return -1;
	/* Read nothing until our receive queue stops growing: the proxy's send side is full. */
	for (int i = 0; i < 300; i++) {
		usleep(200000);
		if (ioctl(fd, FIONREAD, &queued) == -1)
			return -1;
		if (queued > 0 && queued == last)
			break;
		last = queued;
	}
	printf("stalled with %d bytes unread\n", queued);
	if (!SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) || SSL_do_handshake(ssl) != 1) {
		printf("after keyupdate: write failed\n");
		return -1;
	}
	/* Time for the proxy to read the request and meet its full socket. */
	sleep(2);
	if (read_copy(ssl, md) < 0)
		return -1;
	if (answered_at < 0)
		printf("answered never, %zu bytes\n", copy_bytes);
	else
		printf("answered after %ld of %zu bytes\n", answered_at, copy_bytes);
	print_sha256(md);
	if (send_query(ssl, "select 2") < 0 || read_until_ready(ssl, "select 2") < 0)
		return -1;
	return 0;
}

/* The rekeys mode (see the top of this file); on_msg counts from the handshake on. */
static int rekeys(SSL *ssl)
{
	unsigned char md[32];

	if (send_query(ssl, "copy (select md5(i::text) from generate_series(1, 600000) i) "
			    "to stdout") < 0 || read_copy(ssl, md) < 0)
		return -1;
	print_sha256(md);
	if (send_query(ssl, "select 2") < 0 || read_until_ready(ssl, "select 2") < 0)
		return -1;
	printf("keyupdates received %lu\n", key_updates);
	return 0;
}

static int send_query(SSL *ssl, const char *sql)
{
	uint8_t msg[256];
	size_t n = strlen(sql) + 1;

	msg[0] = 'Q';
	put32(msg + 1, (uint32_t)(4 + n));
	memcpy(msg + 5, sql, n);
	return SSL_write(ssl, msg, (int)(5 + n)) == (int)(5 + n) ? 0 : -1;
}

/*
 * Send @sql in a record with one ciphertext byte flipped: encrypt into a
 * memory BIO, corrupt it there, and write the bytes to the socket ourselves.
 */
static int send_corrupt_query(SSL *ssl, int fd, const char *sql)
{
	BIO *mem = BIO_new(BIO_s_mem()), *sock = SSL_get_wbio(ssl);
	uint8_t rec[1024];
	int n, ret = -1;

	if (!mem)
		return -1;
	BIO_up_ref(sock);
	SSL_set0_wbio(ssl, mem);	/* takes mem; drops one reference to sock */
	if (send_query(ssl, sql) < 0)
		goto out;
	n = BIO_read(mem, rec, sizeof(rec));
	if (n <= 5 + 8)
		goto out;
	rec[n - 1] ^= 0x01;	/* in the authentication tag: the record cannot verify */
	if (send(fd, rec, (size_t)n, MSG_NOSIGNAL) == n)
		ret = 0;
out:
	SSL_set0_wbio(ssl, sock);	/* takes back our reference; frees mem */
	return ret;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = 30 };
	const char *mode, *ver = argc > 3 ? argv[3] : NULL;
	static const uint8_t sslreq[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };
	static const char params[] = "user\0trusty\0database\0postgres\0";
	uint8_t startup[64], reply;
	SSL_CTX *ctx;
	SSL *ssl;
	char why[200];
	int fd, v = 0, r;

	if (argc < 3) {
		fprintf(stderr,
			"usage: %s query|keyupdate|corrupt|hold|holdkey|stalled|rekeys PORT "
			"[TLSv1.2|TLSv1.3]\n",
			argv[0]);
		return 2;
	}
	mode = argv[1];
	sa.sin_port = htons((uint16_t)atoi(argv[2]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* A proxy that hangs up mid-write must be reported, not kill us. */
	signal(SIGPIPE, SIG_IGN);

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		printf("connect: %s\n", strerror(errno));
		return 1;
	}
	/* Nothing here may hang a test: every read gives up after 30 s. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, sslreq, sizeof(sslreq), 0) != sizeof(sslreq) || recv(fd, &reply, 1, 0) != 1 ||
	    reply != 'S') {
		printf("SSLRequest refused\n");
		return 1;
	}
	ctx = SSL_CTX_new(TLS_client_method());
	if (ver && strcmp(ver, "TLSv1.2") == 0)
		v = TLS1_2_VERSION;
	else if (ver && strcmp(ver, "TLSv1.3") == 0)
		v = TLS1_3_VERSION;
	if (!ctx || (v && (!SSL_CTX_set_min_proto_version(ctx, v) ||
			   !SSL_CTX_set_max_proto_version(ctx, v))))
		return 1;
	ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_fd(ssl, fd))
		return 1;
	if (strcmp(mode, "rekeys") == 0 || strcmp(mode, "holdkey") == 0)
		SSL_set_msg_callback(ssl, on_msg);
	r = SSL_connect(ssl);
	if (r != 1) {
		printf("handshake: %s\n", end_of(ssl, r, why, sizeof(why)));
		return 1;
	}
	printf("connected %s %s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl));

	put32(startup, (uint32_t)(8 + sizeof(params)));
	put32(startup + 4, 196608);	/* protocol 3.0 */
	memcpy(startup + 8, params, sizeof(params));
	if (SSL_write(ssl, startup, (int)(8 + sizeof(params))) <= 0 ||
	    read_until_ready(ssl, "startup") < 0)
		return 1;
	if (send_query(ssl, "select 1") < 0 || read_until_ready(ssl, "select 1") < 0)
		return 1;

	if (strcmp(mode, "keyupdate") == 0) {
		if (!SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED)) {
			printf("SSL_key_update failed\n");
			return 1;
		}
		/* The KeyUpdate goes out with the next write, before the query. */
		if (send_query(ssl, "select 2") < 0) {
			printf("after keyupdate: write failed\n");
			return 0;
		}
		if (read_until_ready(ssl, "after keyupdate") == 0)
			printf("after keyupdate: still connected\n");
	} else if (strcmp(mode, "corrupt") == 0) {
		if (send_corrupt_query(ssl, fd, "select 2") < 0) {
			printf("after corrupt: write failed\n");
			return 0;
		}
		if (read_until_ready(ssl, "after corrupt") == 0)
			printf("after corrupt: still connected\n");
	} else if (strcmp(mode, "stalled") == 0) {
		if (stalled(ssl, fd) < 0)
			printf("stalled: failed\n");
	} else if (strcmp(mode, "rekeys") == 0) {
		if (rekeys(ssl) < 0)
			printf("rekeys: failed\n");
		SSL_shutdown(ssl);
	} else if (strcmp(mode, "hold") == 0 || strcmp(mode, "holdkey") == 0) {
		bool rekey = strcmp(mode, "holdkey") == 0;
		char line[16];

		printf("holding\n");
		if (!fgets(line, sizeof(line), stdin))
			line[0] = 0;
		/* The KeyUpdate goes out with the next write, before the query. */
		if (rekey && !SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED))
			printf("SSL_key_update failed\n");
		if (send_query(ssl, "select 3") == 0 && read_until_ready(ssl, "select 3") == 0 &&
		    rekey && rekeys(ssl) < 0)
			printf("rekeys: failed\n");
		SSL_shutdown(ssl);
	} else {
		uint8_t b;

		/*
		 * close_notify without a Terminate message: the proxy must pass it
		 * on, and pass the server's own close_notify back to us.
		 */
		SSL_shutdown(ssl);
		r = SSL_read(ssl, &b, 1);
		printf("after close_notify: %s\n",
		       r > 0 ? "data" : end_of(ssl, r, why, sizeof(why)));
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return 0;
}
