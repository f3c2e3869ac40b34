/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_pgproto.c - PostgreSQL framing: every function, every error path.
 *
 * Truncation tests copy each prefix into a heap block of exactly that size,
 * so reading one byte too far shows up under valgrind (CK_FORK=no) or ASan.
 */
#include "config.h"

#include "pgktls/pgproto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

/* A packet under construction. */
struct pkt {
	uint8_t b[12000];	/* big enough for the largest startup packet + slack */
	size_t n;		/* bytes used */
};

static void put_bytes(struct pkt *p, const void *v, size_t n)
{
	ck_assert_uint_le(p->n + n, sizeof(p->b));
	memcpy(p->b + p->n, v, n);
	p->n += n;
}

/* put_str() - append @s including its NUL. */
static void put_str(struct pkt *p, const char *s)
{
	put_bytes(p, s, strlen(s) + 1);
}

static void put_u32(struct pkt *p, uint32_t v)
{
	ck_assert_uint_le(p->n + 4, sizeof(p->b));
	pgproto_put_u32(p->b + p->n, v);
	p->n += 4;
}

/* Start an untagged initial packet: length placeholder + @code. */
static void initial_begin(struct pkt *p, uint32_t code)
{
	p->n = 0;
	put_u32(p, 0);
	put_u32(p, code);
}

/* Fix the length word of an untagged packet to its current size. */
static void initial_end(struct pkt *p)
{
	pgproto_put_u32(p->b, (uint32_t)p->n);
}

static void msg_begin(struct pkt *p, uint8_t type)
{
	p->n = 0;
	put_bytes(p, &type, 1);
	put_u32(p, 0);
}

static void msg_end(struct pkt *p)
{
	pgproto_put_u32(p->b + 1, (uint32_t)(p->n - 1));
}

/* A copy of @buf in a heap block of exactly @n bytes (so overreads are caught). */
static uint8_t *exact_copy(const uint8_t *buf, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(c);
	memcpy(c, buf, n);
	return c;
}

static int parse(const uint8_t *buf, size_t n, size_t *pktlen, const char **why)
{
	uint8_t *c = exact_copy(buf, n);
	int ret;

	*pktlen = 12345;
	*why = "unset";
	ret = pgproto_parse_initial(c, n, pktlen, why);
	free(c);
	return ret;
}

/*
 * parse() expecting error @err with reason @want, answered as PostgreSQL
 * answers it: an ErrorResponse with @sqlstate, or (NULL) no reply at all.
 */
static void parse_fails_as(const uint8_t *buf, size_t n, int err, const char *sqlstate,
			   const char *want)
{
	size_t pktlen;
	const char *why, *got;

	ck_assert_int_eq(parse(buf, n, &pktlen, &why), err);
	ck_assert_ptr_nonnull(why);
	ck_assert_str_eq(why, want);
	got = pgproto_refusal_sqlstate(err);
	if (sqlstate)
		ck_assert_str_eq(got, sqlstate);
	else
		ck_assert_ptr_null(got);
}

/* A wrong length: PostgreSQL logs it and closes without a word. */
#define parse_silent(buf, n, want) parse_fails_as(buf, n, -EMSGSIZE, NULL, want)
/* An unknown protocol version: FATAL 0A000. */
#define parse_unsupported(buf, n, want) parse_fails_as(buf, n, -EPROTONOSUPPORT, "0A000", want)
/* A malformed StartupMessage body: FATAL 08P01. */
#define parse_fails(buf, n, want) parse_fails_as(buf, n, -EPROTO, "08P01", want)

/*
 * Every proper prefix of a valid initial packet must be NEED_MORE, with the
 * total known once the length word is in, and the whole packet @want.
 */
static void check_prefixes(const struct pkt *p, int want)
{
	size_t i, pktlen;
	const char *why;

	for (i = 0; i < p->n; i++) {
		ck_assert_msg(parse(p->b, i, &pktlen, &why) == PGPROTO_NEED_MORE,
			      "prefix of %zu/%zu bytes", i, p->n);
		ck_assert_uint_eq(pktlen, i < 4 ? 0 : p->n);
	}
	ck_assert_int_eq(parse(p->b, p->n, &pktlen, &why), want);
	ck_assert_uint_eq(pktlen, p->n);
}

/* What libpq 15 sends for "psql -U alice -d shop" with a few settings. */
static void libpq_startup(struct pkt *p, uint32_t proto)
{
	initial_begin(p, proto);
	put_str(p, "user");
	put_str(p, "alice");
	put_str(p, "database");
	put_str(p, "shop");
	put_str(p, "application_name");
	put_str(p, "psql");
	put_str(p, "options");
	put_str(p, "-c search_path=app -c statement_timeout=5s");
	put_str(p, "client_encoding");
	put_str(p, "UTF8");
	put_bytes(p, "", 1);
	initial_end(p);
}

START_TEST(test_initial_empty)
{
	size_t pktlen;
	const char *why;

	ck_assert_int_eq(pgproto_parse_initial(NULL, 0, &pktlen, &why), PGPROTO_NEED_MORE);
	ck_assert_uint_eq(pktlen, 0);
}
END_TEST

START_TEST(test_initial_tls_hello)
{
	/* Start of a real ClientHello record: handshake, TLS 1.0 record version. */
	static const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc };
	size_t i, pktlen;
	const char *why;

	for (i = 1; i <= sizeof(hello); i++) {
		ck_assert_int_eq(parse(hello, i, &pktlen, &why), PGPROTO_TLS_HELLO);
		ck_assert_uint_eq(pktlen, 0);
	}
}
END_TEST

START_TEST(test_initial_ssl_request)
{
	struct pkt p;
	uint8_t req[8];
	static const uint8_t want[8] = { 0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f };
	size_t pktlen;
	const char *why;

	pgproto_ssl_request(req);
	ck_assert_mem_eq(req, want, 8);

	p.n = 0;
	put_bytes(&p, req, 8);
	check_prefixes(&p, PGPROTO_SSLREQUEST);

	/* Bytes after it belong to the caller: still an 8-byte SSLRequest. */
	put_bytes(&p, "Q\0\0\0\x04", 5);
	ck_assert_int_eq(parse(p.b, p.n, &pktlen, &why), PGPROTO_SSLREQUEST);
	ck_assert_uint_eq(pktlen, 8);
}
END_TEST

START_TEST(test_initial_gssenc_request)
{
	struct pkt p;

	initial_begin(&p, PG_GSSENC_REQUEST_CODE);
	initial_end(&p);
	ck_assert_mem_eq(p.b, "\x00\x00\x00\x08\x04\xd2\x16\x30", 8);
	check_prefixes(&p, PGPROTO_GSSENCREQUEST);
}
END_TEST

START_TEST(test_initial_negotiation_wrong_length)
{
	struct pkt p;
	static const uint32_t lens[] = { 9, 12, 16, 10000 };
	size_t i;

	for (i = 0; i < PGKTLS_ARRAY_SIZE(lens); i++) {
		initial_begin(&p, PG_SSL_REQUEST_CODE);
		pgproto_put_u32(p.b, lens[i]);
		/* Refused as soon as the code is in, without waiting for the body. */
		parse_silent(p.b, 8, "invalid length of SSL negotiation packet");

		initial_begin(&p, PG_GSSENC_REQUEST_CODE);
		pgproto_put_u32(p.b, lens[i]);
		parse_silent(p.b, 8, "invalid length of GSSAPI negotiation packet");
	}
}
END_TEST

static void cancel_packet(struct pkt *p, size_t keylen)
{
	size_t i;

	initial_begin(p, PG_CANCEL_REQUEST_CODE);
	put_u32(p, 4242);
	for (i = 0; i < keylen; i++)
		put_bytes(p, &(uint8_t){ (uint8_t)(i * 7 + 1) }, 1);
	initial_end(p);
}

START_TEST(test_initial_cancel)
{
	struct pkt p;

	/* Protocol 3.0: a 4-byte key. */
	cancel_packet(&p, 4);
	ck_assert_uint_eq(p.n, 16);
	check_prefixes(&p, PGPROTO_CANCEL);

	/* Protocol 3.2: up to 256 bytes of key. */
	cancel_packet(&p, 256);
	ck_assert_uint_eq(p.n, 268);
	check_prefixes(&p, PGPROTO_CANCEL);

	cancel_packet(&p, 32);
	check_prefixes(&p, PGPROTO_CANCEL);
}
END_TEST

START_TEST(test_initial_cancel_bad_length)
{
	struct pkt p;

	cancel_packet(&p, 257);
	ck_assert_uint_eq(p.n, 269);
	parse_silent(p.b, p.n, "invalid length of cancel request packet");
	parse_silent(p.b, 8, "invalid length of cancel request packet");

	cancel_packet(&p, 3);
	ck_assert_uint_eq(p.n, 15);
	parse_silent(p.b, p.n, "invalid length of cancel request packet");

	/* No process id at all. */
	cancel_packet(&p, 0);
	pgproto_put_u32(p.b, 8);
	parse_silent(p.b, 8, "invalid length of cancel request packet");
}
END_TEST

START_TEST(test_initial_startup_libpq)
{
	struct pkt p;

	libpq_startup(&p, PG_PROTOCOL(3, 0));
	check_prefixes(&p, PGPROTO_STARTUP);

	/* Any 3.x: the server negotiates the minor version. */
	libpq_startup(&p, PG_PROTOCOL(3, 2));
	check_prefixes(&p, PGPROTO_STARTUP);
	libpq_startup(&p, PG_PROTOCOL(3, 0xffff));
	check_prefixes(&p, PGPROTO_STARTUP);
}
END_TEST

START_TEST(test_initial_startup_protocol_options)
{
	struct pkt p;
	size_t pktlen;
	const char *why;

	/* _pq_ options and an empty value are both legal and passed on. */
	initial_begin(&p, PG_PROTOCOL(3, 0));
	put_str(&p, "user");
	put_str(&p, "bob");
	put_str(&p, "_pq_.some_extension");
	put_str(&p, "on");
	put_str(&p, "options");
	put_str(&p, "");
	put_bytes(&p, "", 1);
	initial_end(&p);
	ck_assert_int_eq(parse(p.b, p.n, &pktlen, &why), PGPROTO_STARTUP);
	ck_assert_uint_eq(pktlen, p.n);
}
END_TEST

START_TEST(test_initial_startup_boundaries)
{
	struct pkt p;
	size_t pktlen;
	const char *why;

	/* 8 bytes: a version and nothing else, not even the terminator. */
	initial_begin(&p, PG_PROTOCOL(3, 0));
	initial_end(&p);
	parse_fails(p.b, p.n, "invalid startup packet layout: missing terminator");

	/* 9 bytes: just the terminator (the server will want a user, not us). */
	put_bytes(&p, "", 1);
	initial_end(&p);
	ck_assert_int_eq(parse(p.b, p.n, &pktlen, &why), PGPROTO_STARTUP);

	/* Exactly PG_MAX_STARTUP_PACKET bytes. */
	initial_begin(&p, PG_PROTOCOL(3, 0));
	put_str(&p, "user");
	put_str(&p, "bob");
	put_str(&p, "options");
	while (p.n < PG_MAX_STARTUP_PACKET - 2)
		put_bytes(&p, "x", 1);
	put_bytes(&p, "\0", 2);
	initial_end(&p);
	ck_assert_uint_eq(p.n, 10000);
	check_prefixes(&p, PGPROTO_STARTUP);

	/* One more byte: refused as soon as the length word is in. */
	p.n -= 2;
	put_bytes(&p, "y", 1);
	put_bytes(&p, "\0", 2);
	initial_end(&p);
	ck_assert_uint_eq(p.n, 10001);
	parse_silent(p.b, p.n, "invalid length of startup packet");
	parse_silent(p.b, 4, "invalid length of startup packet");
}
END_TEST

START_TEST(test_initial_bad_length_word)
{
	static const uint32_t lens[] = { 0, 1, 4, 7, 10001, 0x7fffffff, 0x80000000, 0xffffffff };
	uint8_t b[8];
	size_t i;

	for (i = 0; i < PGKTLS_ARRAY_SIZE(lens); i++) {
		pgproto_put_u32(b, lens[i]);
		pgproto_put_u32(b + 4, PG_PROTOCOL(3, 0));
		parse_silent(b, 4, "invalid length of startup packet");
		parse_silent(b, 8, "invalid length of startup packet");
	}
}
END_TEST

/*
 * node-postgres sends Terminate before its SSLRequest when end() follows
 * connect() at once. PostgreSQL reads 'X',0,0,0 as a length word, logs
 * "invalid length of startup packet" and closes without a reply; an
 * ErrorResponse would be read as the answer to the SSLRequest that follows.
 */
START_TEST(test_initial_terminate_first)
{
	static const uint8_t terminate_then_ssl[] = { 'X', 0, 0, 0, 4, 0, 0, 0, 8,
						      0x04, 0xd2, 0x16, 0x2f };
	size_t i;

	for (i = 4; i <= sizeof(terminate_then_ssl); i++)
		parse_silent(terminate_then_ssl, i, "invalid length of startup packet");
	/* Other tagged messages a confused client might send first. */
	parse_silent((const uint8_t *)"Q\0\0\0\x0bSELECT 1", 4, "invalid length of startup packet");
	parse_silent((const uint8_t *)"p\0\0\0\x08pw\0", 9, "invalid length of startup packet");
}
END_TEST

START_TEST(test_initial_bad_protocol)
{
	struct pkt p;

	libpq_startup(&p, PG_PROTOCOL(2, 0));
	/* Decided from the header alone, and again with the whole packet. */
	parse_unsupported(p.b, 8, "unsupported frontend protocol 2.0");
	parse_unsupported(p.b, p.n, "unsupported frontend protocol 2.0");

	libpq_startup(&p, PG_PROTOCOL(4, 1));
	parse_unsupported(p.b, p.n, "unsupported frontend protocol 4.1");
	libpq_startup(&p, PG_PROTOCOL(0, 0));
	parse_unsupported(p.b, p.n, "unsupported frontend protocol 0.0");
	libpq_startup(&p, PG_PROTOCOL(65535, 65535));
	parse_unsupported(p.b, p.n, "unsupported frontend protocol 65535.65535");

	/* Request codes we do not know: 1234.5681 and 1234.0. */
	initial_begin(&p, PG_PROTOCOL(1234, 5681));
	initial_end(&p);
	parse_unsupported(p.b, p.n, "unsupported frontend protocol");
	libpq_startup(&p, PG_PROTOCOL(1234, 0));
	parse_unsupported(p.b, p.n, "unsupported frontend protocol");
}
END_TEST

/* A startup packet of protocol 3.0 whose body is exactly @body (@n bytes). */
static void startup_raw(struct pkt *p, const char *body, size_t n)
{
	initial_begin(p, PG_PROTOCOL(3, 0));
	put_bytes(p, body, n);
	initial_end(p);
}

#define STARTUP_RAW(p, lit) startup_raw((p), (lit), sizeof(lit) - 1)

START_TEST(test_initial_startup_layout)
{
	struct pkt p;

	STARTUP_RAW(&p, "user");
	parse_fails(p.b, p.n, "invalid startup packet layout: unterminated parameter name");
	STARTUP_RAW(&p, "user\0");
	parse_fails(p.b, p.n, "invalid startup packet layout: parameter without a value");
	STARTUP_RAW(&p, "user\0bob");
	parse_fails(p.b, p.n, "invalid startup packet layout: unterminated parameter value");
	STARTUP_RAW(&p, "user\0bob\0");
	parse_fails(p.b, p.n, "invalid startup packet layout: missing terminator");
	STARTUP_RAW(&p, "user\0bob\0database\0");
	parse_fails(p.b, p.n, "invalid startup packet layout: parameter without a value");
	/* An empty name before the end: something hides after the terminator. */
	STARTUP_RAW(&p, "user\0bob\0\0database\0postgres\0\0");
	parse_fails(p.b, p.n, "invalid startup packet layout: expected terminator as last byte");
	STARTUP_RAW(&p, "user\0bob\0\0\0");
	parse_fails(p.b, p.n, "invalid startup packet layout: expected terminator as last byte");
	STARTUP_RAW(&p, "\0user\0bob\0\0");
	parse_fails(p.b, p.n, "invalid startup packet layout: expected terminator as last byte");
}
END_TEST

/* Every prefix of every malformed layout still answers without overreading. */
START_TEST(test_initial_startup_layout_prefixes)
{
	static const struct {
		const char *body;
		size_t n;
	} bodies[] = {
		{ "user", 4 },
		{ "user\0bob", 8 },
		{ "user\0bob\0", 9 },
		{ "user\0bob\0\0x", 11 },
	};
	struct pkt p;
	size_t i, j, pktlen;
	const char *why;

	for (i = 0; i < PGKTLS_ARRAY_SIZE(bodies); i++) {
		startup_raw(&p, bodies[i].body, bodies[i].n);
		for (j = 0; j < p.n; j++)
			ck_assert_int_eq(parse(p.b, j, &pktlen, &why), PGPROTO_NEED_MORE);
		ck_assert_int_eq(parse(p.b, p.n, &pktlen, &why), -EPROTO);
	}
}
END_TEST

/* AuthenticationSASL as PostgreSQL sends it over TLS: -PLUS first. */
static void sasl_msg(struct pkt *p, const char *const *mechs, size_t nmechs)
{
	size_t i;

	msg_begin(p, 'R');
	put_u32(p, PG_AUTH_SASL);
	for (i = 0; i < nmechs; i++)
		put_str(p, mechs[i]);
	put_bytes(p, "", 1);
	msg_end(p);
}

START_TEST(test_backend_msg)
{
	static const char *const mechs[] = { "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256" };
	struct pkt p;
	size_t i, total;
	uint8_t type, *c;

	sasl_msg(&p, mechs, 2);
	for (i = 0; i <= p.n; i++) {
		c = exact_copy(p.b, i);
		type = 0;
		total = 777;
		ck_assert_int_eq(pgproto_backend_msg(c, i, &type, &total), i == p.n);
		if (i < 5) {
			ck_assert_uint_eq(total, 0);
		} else {
			ck_assert_uint_eq(type, 'R');
			ck_assert_uint_eq(total, p.n);
		}
		free(c);
	}

	/* A message followed by the next one: only the first is framed. */
	put_bytes(&p, "Z\0\0\0\x05I", 6);
	ck_assert_int_eq(pgproto_backend_msg(p.b, p.n, &type, &total), 1);
	ck_assert_uint_eq(total, p.n - 6);
}
END_TEST

START_TEST(test_backend_msg_lengths)
{
	uint8_t hdr[5] = { 'Z' }, type;
	size_t total;

	/* The smallest legal message: a length word and no body. */
	pgproto_put_u32(hdr + 1, 4);
	ck_assert_int_eq(pgproto_backend_msg(hdr, 5, &type, &total), 1);
	ck_assert_uint_eq(total, 5);
	ck_assert_uint_eq(type, 'Z');

	pgproto_put_u32(hdr + 1, 3);
	ck_assert_int_eq(pgproto_backend_msg(hdr, 5, &type, &total), -EPROTO);
	pgproto_put_u32(hdr + 1, 0);
	ck_assert_int_eq(pgproto_backend_msg(hdr, 5, &type, &total), -EPROTO);

	/* 1 GiB is allowed (we just wait), one byte more is not. */
	pgproto_put_u32(hdr + 1, 1u << 30);
	ck_assert_int_eq(pgproto_backend_msg(hdr, 5, &type, &total), 0);
	ck_assert_uint_eq(total, (1u << 30) + 1);
	pgproto_put_u32(hdr + 1, (1u << 30) + 1);
	ck_assert_int_eq(pgproto_backend_msg(hdr, 5, &type, &total), -EPROTO);
	pgproto_put_u32(hdr + 1, 0xffffffff);
	ck_assert_int_eq(pgproto_backend_msg(hdr, 5, &type, &total), -EPROTO);
}
END_TEST

START_TEST(test_auth_code)
{
	static const char *const mechs[] = { "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256" };
	/* AuthenticationOk and AuthenticationMD5Password (with its salt). */
	static const uint8_t ok[] = { 'R', 0, 0, 0, 8, 0, 0, 0, 0 };
	static const uint8_t md5[] = { 'R', 0, 0, 0, 12, 0, 0, 0, 5, 1, 2, 3, 4 };
	struct pkt p;
	uint32_t code;
	size_t i;
	uint8_t *c;

	ck_assert_int_eq(pgproto_auth_code(ok, sizeof(ok), &code), 0);
	ck_assert_uint_eq(code, PG_AUTH_OK);
	ck_assert_int_eq(pgproto_auth_code(md5, sizeof(md5), &code), 0);
	ck_assert_uint_eq(code, 5);
	sasl_msg(&p, mechs, 2);
	ck_assert_int_eq(pgproto_auth_code(p.b, p.n, &code), 0);
	ck_assert_uint_eq(code, PG_AUTH_SASL);

	/* Truncated or overlong: the length word must match exactly. */
	for (i = 0; i < sizeof(ok); i++) {
		c = exact_copy(ok, i);
		ck_assert_int_eq(pgproto_auth_code(c, i, &code), -EPROTO);
		free(c);
	}
	ck_assert_int_eq(pgproto_auth_code(md5, sizeof(md5) - 1, &code), -EPROTO);
	put_bytes(&p, "Z", 1);
	ck_assert_int_eq(pgproto_auth_code(p.b, p.n, &code), -EPROTO);
}
END_TEST

START_TEST(test_auth_code_malformed)
{
	/* Not 'R'; a length word too short to hold the code; an overlong word. */
	static const uint8_t e[] = { 'E', 0, 0, 0, 8, 0, 0, 0, 0 };
	static const uint8_t shortlen[] = { 'R', 0, 0, 0, 4 };
	static const uint8_t badlen[] = { 'R', 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
	uint32_t code;

	ck_assert_int_eq(pgproto_auth_code(e, sizeof(e), &code), -EPROTO);
	ck_assert_int_eq(pgproto_auth_code(shortlen, sizeof(shortlen), &code), -EPROTO);
	ck_assert_int_eq(pgproto_auth_code(badlen, sizeof(badlen), &code), -EPROTO);
}
END_TEST

static int strip(const struct pkt *in, struct pkt *out, size_t outcap)
{
	uint8_t *c = exact_copy(in->b, in->n);
	int ret;

	out->n = 99;
	ret = pgproto_sasl_strip_plus(c, in->n, out->b, outcap, &out->n);
	free(c);
	return ret;
}

START_TEST(test_sasl_strip_real)
{
	static const char *const both[] = { "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256" };
	static const char *const plain[] = { "SCRAM-SHA-256" };
	struct pkt in, out, want;
	uint32_t code;
	uint8_t type;
	size_t total;

	sasl_msg(&in, both, 2);
	/* The exact bytes PostgreSQL 15 sends over TLS. */
	ck_assert_uint_eq(in.n, 1 + 4 + 4 + 19 + 14 + 1);
	ck_assert_mem_eq(in.b, "R\0\0\0\x2a\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0", in.n);

	ck_assert_int_eq(strip(&in, &out, in.n), 1);
	sasl_msg(&want, plain, 1);
	ck_assert_uint_eq(out.n, want.n);
	ck_assert_mem_eq(out.b, want.b, want.n);
	/* The rewritten message frames and parses as a whole one. */
	ck_assert_int_eq(pgproto_backend_msg(out.b, out.n, &type, &total), 1);
	ck_assert_uint_eq(total, out.n);
	ck_assert_int_eq(pgproto_auth_code(out.b, out.n, &code), 0);
	ck_assert_uint_eq(code, PG_AUTH_SASL);

	/* Nothing left to strip the second time. */
	ck_assert_int_eq(strip(&want, &out, sizeof(out.b)), 0);
}
END_TEST

START_TEST(test_sasl_strip_order_and_names)
{
	static const char *const many[] = { "A-MECH", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256",
					    "SCRAM-SHA-256-PLUS", "Z" };
	static const char *const kept[] = { "A-MECH", "SCRAM-SHA-256", "Z" };
	/* Near misses are other mechanisms and must stay. */
	static const char *const near[] = { "SCRAM-SHA-256-PLUSX", "SCRAM-SHA-256-PLU",
					    "scram-sha-256-plus", "SCRAM-SHA-256" };
	static const char *const only_plus[] = { "SCRAM-SHA-256-PLUS" };
	struct pkt in, out, want;

	sasl_msg(&in, many, 5);
	sasl_msg(&want, kept, 3);
	ck_assert_int_eq(strip(&in, &out, sizeof(out.b)), 1);
	ck_assert_uint_eq(out.n, want.n);
	ck_assert_mem_eq(out.b, want.b, want.n);

	sasl_msg(&in, near, 4);
	ck_assert_int_eq(strip(&in, &out, sizeof(out.b)), 0);
	ck_assert_uint_eq(out.n, 0);

	/* Only -PLUS: left alone, the client gets the server's own offer. */
	sasl_msg(&in, only_plus, 1);
	ck_assert_int_eq(strip(&in, &out, sizeof(out.b)), 0);

	/* An empty list is well-formed and has nothing to strip. */
	sasl_msg(&in, NULL, 0);
	ck_assert_int_eq(strip(&in, &out, sizeof(out.b)), 0);
}
END_TEST

START_TEST(test_sasl_strip_space)
{
	static const char *const both[] = { "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256" };
	struct pkt in, out;

	sasl_msg(&in, both, 2);
	ck_assert_int_eq(strip(&in, &out, in.n - 19), 1);
	ck_assert_uint_eq(out.n, in.n - 19);
	ck_assert_int_eq(strip(&in, &out, in.n - 20), -ENOSPC);
}
END_TEST

START_TEST(test_sasl_strip_malformed)
{
	static const char *const both[] = { "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256" };
	struct pkt in, out;
	size_t i;

	/* Not SASL: AuthenticationOk, MD5. */
	msg_begin(&in, 'R');
	put_u32(&in, PG_AUTH_OK);
	msg_end(&in);
	ck_assert_int_eq(strip(&in, &out, sizeof(out.b)), -EPROTO);
	msg_begin(&in, 'R');
	put_u32(&in, 5);
	put_bytes(&in, "salt", 4);
	msg_end(&in);
	ck_assert_int_eq(strip(&in, &out, sizeof(out.b)), -EPROTO);

	/* Missing closing empty string; bytes after it; no NUL at all. */
	msg_begin(&in, 'R');
	put_u32(&in, PG_AUTH_SASL);
	put_str(&in, "SCRAM-SHA-256-PLUS");
	put_str(&in, "SCRAM-SHA-256");
	msg_end(&in);
	ck_assert_int_eq(strip(&in, &out, sizeof(out.b)), -EPROTO);
	put_bytes(&in, "\0x", 2);
	msg_end(&in);
	ck_assert_int_eq(strip(&in, &out, sizeof(out.b)), -EPROTO);
	msg_begin(&in, 'R');
	put_u32(&in, PG_AUTH_SASL);
	put_bytes(&in, "SCRAM-SHA-256-PLUS", 18);
	msg_end(&in);
	ck_assert_int_eq(strip(&in, &out, sizeof(out.b)), -EPROTO);

	/* Wrong type, and a length word that does not match. */
	sasl_msg(&in, both, 2);
	in.b[0] = 'E';
	ck_assert_int_eq(strip(&in, &out, sizeof(out.b)), -EPROTO);
	sasl_msg(&in, both, 2);
	in.n--;
	ck_assert_int_eq(strip(&in, &out, sizeof(out.b)), -EPROTO);

	/*
	 * Every prefix, with the length word made to agree, so the list itself
	 * is what ends early: always malformed, never an overread.
	 */
	sasl_msg(&in, both, 2);
	for (i = 0; i < in.n; i++) {
		struct pkt pre;

		pre.n = i;
		memcpy(pre.b, in.b, i);
		if (i >= 5)
			msg_end(&pre);
		ck_assert_int_eq(strip(&pre, &out, sizeof(out.b)), -EPROTO);
	}
}
END_TEST

/* What PostgreSQL 15 sends for a wrong password, fields in the server's order. */
static void server_error(struct pkt *p, uint8_t type, const char *msg)
{
	msg_begin(p, type);
	put_str(p, "SFATAL");
	put_str(p, "VFATAL");
	put_str(p, "C28P01");
	put_bytes(p, "M", 1);
	put_str(p, msg);
	put_str(p, "Fauth.c");
	put_str(p, "L335");
	put_str(p, "Rauth_failed");
	put_bytes(p, "", 1);
	msg_end(p);
}

static int field(const struct pkt *p, uint8_t code, char *val, size_t cap)
{
	uint8_t *c = exact_copy(p->b, p->n);
	const char *v = NULL;
	int ret;

	ret = pgproto_error_field(c, p->n, code, &v);
	if (ret == 0) {
		ck_assert_ptr_nonnull(v);
		ck_assert_uint_lt(strlen(v), cap);
		strcpy(val, v);
	}
	free(c);
	return ret;
}

START_TEST(test_error_field_real)
{
	struct pkt p;
	char v[256];

	server_error(&p, 'E', "password authentication failed for user \"alice\"");
	ck_assert_int_eq(field(&p, 'S', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "FATAL");
	ck_assert_int_eq(field(&p, 'V', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "FATAL");
	ck_assert_int_eq(field(&p, 'C', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "28P01");
	ck_assert_int_eq(field(&p, 'M', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "password authentication failed for user \"alice\"");
	ck_assert_int_eq(field(&p, 'R', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "auth_failed");
	ck_assert_int_eq(field(&p, 'H', v, sizeof(v)), -ENOENT);
	ck_assert_int_eq(field(&p, 'D', v, sizeof(v)), -ENOENT);
	ck_assert_int_eq(field(&p, 0, v, sizeof(v)), -ENOENT);

	/* NoticeResponse has the same layout. */
	server_error(&p, 'N', "hello");
	ck_assert_int_eq(field(&p, 'M', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "hello");
}
END_TEST

START_TEST(test_error_field_edge)
{
	struct pkt p;
	char v[64];

	/* No fields at all. */
	msg_begin(&p, 'E');
	put_bytes(&p, "", 1);
	msg_end(&p);
	ck_assert_int_eq(field(&p, 'M', v, sizeof(v)), -ENOENT);

	/* An empty value, and a repeated field: the first one counts. */
	msg_begin(&p, 'E');
	put_str(&p, "D");
	put_str(&p, "Mfirst");
	put_str(&p, "Msecond");
	put_bytes(&p, "", 1);
	msg_end(&p);
	ck_assert_int_eq(field(&p, 'D', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "");
	ck_assert_int_eq(field(&p, 'M', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "first");
}
END_TEST

START_TEST(test_error_field_malformed)
{
	struct pkt p, pre;
	char v[64];
	size_t i;

	/* Terminator not last, even when the field sought comes first. */
	msg_begin(&p, 'E');
	put_str(&p, "Mboom");
	put_bytes(&p, "", 1);
	put_str(&p, "Dhidden");
	msg_end(&p);
	ck_assert_int_eq(field(&p, 'M', v, sizeof(v)), -EPROTO);

	/* Missing terminator; unterminated value; a code with no value. */
	msg_begin(&p, 'E');
	put_str(&p, "Mboom");
	msg_end(&p);
	ck_assert_int_eq(field(&p, 'M', v, sizeof(v)), -EPROTO);
	msg_begin(&p, 'E');
	put_bytes(&p, "Mboom", 5);
	msg_end(&p);
	ck_assert_int_eq(field(&p, 'M', v, sizeof(v)), -EPROTO);
	msg_begin(&p, 'E');
	put_str(&p, "Mboom");
	put_bytes(&p, "D", 1);
	msg_end(&p);
	ck_assert_int_eq(field(&p, 'M', v, sizeof(v)), -EPROTO);

	/* Wrong type; length word disagreeing with the buffer; empty body. */
	server_error(&p, 'R', "x");
	ck_assert_int_eq(field(&p, 'M', v, sizeof(v)), -EPROTO);
	server_error(&p, 'E', "x");
	p.n--;
	ck_assert_int_eq(field(&p, 'M', v, sizeof(v)), -EPROTO);
	msg_begin(&p, 'E');
	msg_end(&p);
	ck_assert_int_eq(field(&p, 'M', v, sizeof(v)), -EPROTO);

	/* Every prefix, with and without a matching length word. */
	server_error(&p, 'E', "password authentication failed for user \"alice\"");
	for (i = 0; i < p.n; i++) {
		pre.n = i;
		memcpy(pre.b, p.b, i);
		ck_assert_int_eq(field(&pre, 'M', v, sizeof(v)), -EPROTO);
		if (i >= 5) {
			msg_end(&pre);
			ck_assert_int_eq(field(&pre, 'M', v, sizeof(v)), -EPROTO);
		}
	}
}
END_TEST

static bool is_cb(const struct pkt *p)
{
	uint8_t *c = exact_copy(p->b, p->n);
	bool ret = pgproto_error_is_channel_binding(c, p->n);

	free(c);
	return ret;
}

START_TEST(test_error_channel_binding)
{
	/* The server's own texts (auth-scram.c). */
	static const char *const yes[] = {
		"SCRAM channel binding check failed",
		"SCRAM channel binding negotiation error",
		"channel binding not supported by this build",
		"unsupported SCRAM channel-binding type \"tls-unique\"",
		"unexpected SCRAM channel-binding attribute in client-final-message",
	};
	static const char *const no[] = {
		"password authentication failed for user \"alice\"",
		"SCRAM Channel Binding check failed",
		"malformed SCRAM message",
		"",
	};
	struct pkt p;
	size_t i;

	for (i = 0; i < PGKTLS_ARRAY_SIZE(yes); i++) {
		server_error(&p, 'E', yes[i]);
		ck_assert_msg(is_cb(&p), "%s", yes[i]);
		/* A notice is not a failure. */
		server_error(&p, 'N', yes[i]);
		ck_assert(!is_cb(&p));
		/* Malformed: not recognised. */
		server_error(&p, 'E', yes[i]);
		p.n--;
		ck_assert(!is_cb(&p));
	}
	for (i = 0; i < PGKTLS_ARRAY_SIZE(no); i++) {
		server_error(&p, 'E', no[i]);
		ck_assert_msg(!is_cb(&p), "%s", no[i]);
	}

	/* Only the primary message counts, not the detail. */
	msg_begin(&p, 'E');
	put_str(&p, "SFATAL");
	put_str(&p, "Mmalformed SCRAM message");
	put_str(&p, "DThe client selected SCRAM-SHA-256 without channel binding, but ...");
	put_bytes(&p, "", 1);
	msg_end(&p);
	ck_assert(!is_cb(&p));

	ck_assert(!pgproto_error_is_channel_binding(NULL, 0));
}
END_TEST

static int add_hint(const struct pkt *in, const char *hint, struct pkt *out, size_t cap)
{
	uint8_t *c = exact_copy(in->b, in->n);
	int ret;

	out->n = 99;
	ret = pgproto_error_add_hint(c, in->n, hint, out->b, cap, &out->n);
	free(c);
	return ret;
}

START_TEST(test_error_add_hint_new)
{
	static const char hint[] = "pgktls: set channel_binding=disable";
	struct pkt in, out;
	char v[256];
	uint8_t type;
	size_t total;

	server_error(&in, 'E', "SCRAM channel binding check failed");
	ck_assert_int_eq(add_hint(&in, hint, &out, sizeof(out.b)), 0);
	ck_assert_uint_eq(out.n, in.n + 2 + strlen(hint));
	ck_assert_int_eq(pgproto_backend_msg(out.b, out.n, &type, &total), 1);
	ck_assert_uint_eq(total, out.n);
	ck_assert_uint_eq(type, 'E');
	ck_assert_int_eq(field(&out, 'H', v, sizeof(v)), 0);
	ck_assert_str_eq(v, hint);
	/* Everything else is untouched, in order. */
	ck_assert_mem_eq(out.b + 5, in.b + 5, in.n - 6);
	ck_assert_int_eq(field(&out, 'M', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "SCRAM channel binding check failed");
	ck_assert_int_eq(field(&out, 'R', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "auth_failed");
	ck_assert(is_cb(&out));

	/* Exactly enough room, and one byte less. */
	ck_assert_int_eq(add_hint(&in, hint, &out, in.n + 2 + strlen(hint)), 0);
	ck_assert_int_eq(add_hint(&in, hint, &out, in.n + 1 + strlen(hint)), -ENOSPC);

	/* An empty hint still adds the field. */
	ck_assert_int_eq(add_hint(&in, "", &out, sizeof(out.b)), 0);
	ck_assert_int_eq(field(&out, 'H', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "");
}
END_TEST

START_TEST(test_error_add_hint_existing)
{
	struct pkt in, out, again;
	char v[256];

	msg_begin(&in, 'E');
	put_str(&in, "SFATAL");
	put_str(&in, "Mboom");
	put_str(&in, "Hold hint.");
	put_str(&in, "Fauth.c");
	put_bytes(&in, "", 1);
	msg_end(&in);
	ck_assert_int_eq(add_hint(&in, "new hint.", &out, sizeof(out.b)), 0);
	ck_assert_uint_eq(out.n, in.n + 1 + 9);
	ck_assert_int_eq(field(&out, 'H', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "old hint. new hint.");
	ck_assert_int_eq(field(&out, 'F', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "auth.c");

	/* And again, on its own output. */
	ck_assert_int_eq(add_hint(&out, "third.", &again, sizeof(again.b)), 0);
	ck_assert_int_eq(field(&again, 'H', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "old hint. new hint. third.");

	ck_assert_int_eq(add_hint(&in, "new hint.", &out, in.n + 10), 0);
	ck_assert_int_eq(add_hint(&in, "new hint.", &out, in.n + 9), -ENOSPC);
}
END_TEST

START_TEST(test_error_add_hint_malformed)
{
	struct pkt in, out;

	server_error(&in, 'E', "boom");
	in.n--;
	ck_assert_int_eq(add_hint(&in, "h", &out, sizeof(out.b)), -EPROTO);
	server_error(&in, 'R', "boom");
	ck_assert_int_eq(add_hint(&in, "h", &out, sizeof(out.b)), -EPROTO);
	msg_begin(&in, 'E');
	put_bytes(&in, "Hunterminated", 13);
	msg_end(&in);
	ck_assert_int_eq(add_hint(&in, "h", &out, sizeof(out.b)), -EPROTO);
}
END_TEST

START_TEST(test_build_error)
{
	uint8_t out[512], type;
	char v[256];
	struct pkt p;
	size_t n, total;
	static const char want[] = "E\0\0\0\x22SFATAL\0VFATAL\0C08P01\0Mno TLS\0\0";

	n = pgproto_build_error(out, sizeof(out), "FATAL", "08P01", "no TLS", NULL, NULL);
	ck_assert_uint_eq(n, sizeof(want) - 1);
	ck_assert_mem_eq(out, want, n);

	n = pgproto_build_error(out, sizeof(out), "FATAL", "28000",
				"pgktls: client certificate required",
				"The connection was refused before reaching the server.",
				"Connect with sslcert and sslkey.");
	ck_assert_uint_gt(n, 0);
	ck_assert_int_eq(pgproto_backend_msg(out, n, &type, &total), 1);
	ck_assert_uint_eq(type, 'E');
	ck_assert_uint_eq(total, n);
	memcpy(p.b, out, n);
	p.n = n;
	ck_assert_int_eq(field(&p, 'S', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "FATAL");
	ck_assert_int_eq(field(&p, 'V', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "FATAL");
	ck_assert_int_eq(field(&p, 'C', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "28000");
	ck_assert_int_eq(field(&p, 'M', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "pgktls: client certificate required");
	ck_assert_int_eq(field(&p, 'D', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "The connection was refused before reaching the server.");
	ck_assert_int_eq(field(&p, 'H', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "Connect with sslcert and sslkey.");
	ck_assert(!is_cb(&p));

	/* Detail only. */
	n = pgproto_build_error(out, sizeof(out), "ERROR", "08006", "m", "d", NULL);
	memcpy(p.b, out, n);
	p.n = n;
	ck_assert_int_eq(field(&p, 'D', v, sizeof(v)), 0);
	ck_assert_str_eq(v, "d");
	ck_assert_int_eq(field(&p, 'H', v, sizeof(v)), -ENOENT);
}
END_TEST

START_TEST(test_build_error_space)
{
	uint8_t out[128], pattern[128];
	size_t n, cap;

	n = pgproto_build_error(out, sizeof(out), "FATAL", "08P01", "msg", "detail", "hint");
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_eq(pgproto_build_error(out, n, "FATAL", "08P01", "msg", "detail",
					      "hint"), n);
	/* Too small, at every size: 0, and nothing written. */
	memset(pattern, 0xa5, sizeof(pattern));
	for (cap = 0; cap < n; cap++) {
		memcpy(out, pattern, sizeof(out));
		ck_assert_uint_eq(pgproto_build_error(out, cap, "FATAL", "08P01", "msg",
						      "detail", "hint"), 0);
		ck_assert_mem_eq(out, pattern, sizeof(out));
	}

	/* A SQLSTATE that is not five characters is a caller bug: refused. */
	ck_assert_uint_eq(pgproto_build_error(out, sizeof(out), "FATAL", "08P0", "m", NULL,
					      NULL), 0);
	ck_assert_uint_eq(pgproto_build_error(out, sizeof(out), "FATAL", "08P011", "m", NULL,
					      NULL), 0);
}
END_TEST

/* A server stream: DataRow, CopyData (big), ReadyForQuery; fed in every split. */
START_TEST(test_framer_splits)
{
	struct pkt p;
	struct pgproto_framer f;
	uint8_t big[9000];
	size_t ends[3], cut, k;

	memset(big, 'y', sizeof(big));
	p.n = 0;
	put_bytes(&p, "D\0\0\0\x0b\0\x01\0\0\0\x01x", 12);
	ends[0] = p.n;
	put_bytes(&p, "d", 1);
	put_u32(&p, 4 + sizeof(big));
	put_bytes(&p, big, sizeof(big));
	ends[1] = p.n;
	put_bytes(&p, "Z\0\0\0\x05I", 6);
	ends[2] = p.n;

	/* Cut anywhere: at a boundary exactly at the ends of messages. */
	for (cut = 0; cut <= p.n; cut++) {
		bool boundary = cut == 0 || cut == ends[0] || cut == ends[1] || cut == ends[2];

		pgproto_framer_init(&f, 0);
		pgproto_framer_feed(&f, p.b, cut);
		ck_assert_msg(pgproto_framer_at_boundary(&f) == boundary, "cut at %zu", cut);
		pgproto_framer_feed(&f, p.b + cut, p.n - cut);
		ck_assert(pgproto_framer_at_boundary(&f));
		ck_assert_int_eq(f.last_type, 'Z');
	}
	/* One byte at a time. */
	pgproto_framer_init(&f, 0);
	for (k = 0; k < p.n; k++) {
		pgproto_framer_feed(&f, p.b + k, 1);
		if (k + 1 == ends[0])
			ck_assert_int_eq(f.last_type, 'D');
	}
	ck_assert(pgproto_framer_at_boundary(&f));
	ck_assert_int_eq(f.last_type, 'Z');
}
END_TEST

START_TEST(test_framer_skip_lost)
{
	struct pkt p;
	struct pgproto_framer f;

	/* A client stream: the StartupMessage (untagged) is skipped, then Terminate. */
	libpq_startup(&p, PG_PROTOCOL(3, 0));
	put_bytes(&p, "X\0\0\0\x04", 5);
	pgproto_framer_init(&f, pgproto_get_u32(p.b));
	pgproto_framer_feed(&f, p.b, p.n - 5);
	ck_assert(pgproto_framer_at_boundary(&f));
	ck_assert_int_eq(f.last_type, 0);
	pgproto_framer_feed(&f, p.b + p.n - 5, 5);
	ck_assert(pgproto_framer_at_boundary(&f));
	ck_assert_int_eq(f.last_type, 'X');

	/* A length below 4 is no PostgreSQL stream: position unknown for good. */
	pgproto_framer_init(&f, 0);
	pgproto_framer_feed(&f, (const uint8_t *)"Z\0\0\0\x03", 5);
	ck_assert(!pgproto_framer_at_boundary(&f));
	pgproto_framer_feed(&f, (const uint8_t *)"Z\0\0\0\x05I", 6);
	ck_assert(!pgproto_framer_at_boundary(&f));

	/* Bytes that went past unseen (spliced) lose the position too. */
	pgproto_framer_init(&f, 0);
	pgproto_framer_lose(&f);
	ck_assert(!pgproto_framer_at_boundary(&f));
}
END_TEST

static Suite *pgproto_suite(void)
{
	Suite *s = suite_create("pgproto");
	TCase *tc;

	tc = tcase_create("initial");
	tcase_add_test(tc, test_initial_empty);
	tcase_add_test(tc, test_initial_tls_hello);
	tcase_add_test(tc, test_initial_ssl_request);
	tcase_add_test(tc, test_initial_gssenc_request);
	tcase_add_test(tc, test_initial_negotiation_wrong_length);
	tcase_add_test(tc, test_initial_cancel);
	tcase_add_test(tc, test_initial_cancel_bad_length);
	tcase_add_test(tc, test_initial_startup_libpq);
	tcase_add_test(tc, test_initial_startup_protocol_options);
	tcase_add_test(tc, test_initial_startup_boundaries);
	tcase_add_test(tc, test_initial_bad_length_word);
	tcase_add_test(tc, test_initial_terminate_first);
	tcase_add_test(tc, test_initial_bad_protocol);
	tcase_add_test(tc, test_initial_startup_layout);
	tcase_add_test(tc, test_initial_startup_layout_prefixes);
	suite_add_tcase(s, tc);

	tc = tcase_create("backend");
	tcase_add_test(tc, test_backend_msg);
	tcase_add_test(tc, test_backend_msg_lengths);
	tcase_add_test(tc, test_auth_code);
	tcase_add_test(tc, test_auth_code_malformed);
	tcase_add_test(tc, test_sasl_strip_real);
	tcase_add_test(tc, test_sasl_strip_order_and_names);
	tcase_add_test(tc, test_sasl_strip_space);
	tcase_add_test(tc, test_sasl_strip_malformed);
	suite_add_tcase(s, tc);

	tc = tcase_create("framer");
	tcase_add_test(tc, test_framer_splits);
	tcase_add_test(tc, test_framer_skip_lost);
	suite_add_tcase(s, tc);

	tc = tcase_create("error");
	tcase_add_test(tc, test_error_field_real);
	tcase_add_test(tc, test_error_field_edge);
	tcase_add_test(tc, test_error_field_malformed);
	tcase_add_test(tc, test_error_channel_binding);
	tcase_add_test(tc, test_error_add_hint_new);
	tcase_add_test(tc, test_error_add_hint_existing);
	tcase_add_test(tc, test_error_add_hint_malformed);
	tcase_add_test(tc, test_build_error);
	tcase_add_test(tc, test_build_error_space);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(pgproto_suite());
}
