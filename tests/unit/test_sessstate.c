// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_sessstate.c - the connection state a binary upgrade moves beside the
 * hops (phase 2): a relay direction (buffered bytes, the inspection
 * boundary, counters, EOF flags, the pipe's byte count), a PostgreSQL
 * message framer caught mid-header and mid-body, and the authentication
 * inspection. Each goes out and back in, and what comes back behaves as
 * the original would; malformed lists are refused.
 */
#include "config.h"

#include "pgktls/authinspect.h"
#include "pgktls/pgproto.h"
#include "pgktls/relay.h"
#include "pgktls/tlv.h"

#include <errno.h>
#include <string.h>

#include "testlib.h"

static uint8_t buf[256 * 1024];

START_TEST(test_relay_dir)
{
	struct relay_dir d, e;
	struct tlv_writer w;

	/* A direction holding a whole batch, its boundary inside, read from an offset. */
	relay_dir_init(&d);
	d.buf = malloc(RELAY_BATCH_SIZE + 100);
	ck_assert_ptr_nonnull(d.buf);
	d.cap = RELAY_BATCH_SIZE + 100;
	for (uint32_t i = 0; i < d.cap; i++)
		d.buf[i] = (uint8_t)(i * 13 + (i >> 9));
	d.head = 100;
	d.scan = 5000;
	d.tail = RELAY_BATCH_SIZE + 100;
	d.bytes = 123456789012ull;
	d.eof_told = true;
	d.pipe_len = 777;
	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(relay_dir_export(&d, &w), 0);
	relay_dir_init(&e);
	ck_assert_int_eq(relay_dir_import(&e, buf, w.len), 0);
	ck_assert_uint_eq(e.tail - e.head, d.tail - d.head);
	ck_assert_uint_eq(e.scan - e.head, d.scan - d.head);
	ck_assert_mem_eq(e.buf + e.head, d.buf + d.head, d.tail - d.head);
	ck_assert_uint_ge(e.cap, e.tail);
	ck_assert_uint_eq(e.bytes, d.bytes);
	ck_assert(e.eof_told && !e.done);
	ck_assert_uint_eq(e.pipe_len, 777);
	ck_assert_int_eq(e.pipe[0], -1);
	ck_assert_uint_eq(relay_dir_pending(&e), relay_dir_pending(&d));
	/* Cut anywhere: refused, and nothing allocated stays behind. */
	for (size_t cut = 0; cut < w.len; cut += cut < 64 ? 1 : 997) {
		struct relay_dir f;

		relay_dir_init(&f);
		ck_assert_int_ne(relay_dir_import(&f, buf, cut), 0);
		ck_assert_ptr_null(f.buf);
	}
	relay_dir_fini(&e);
	relay_dir_fini(&d);

	/* An idle direction: no buffer on either side. */
	relay_dir_init(&d);
	d.done = true;
	d.bytes = 5;
	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(relay_dir_export(&d, &w), 0);
	relay_dir_init(&e);
	ck_assert_int_eq(relay_dir_import(&e, buf, w.len), 0);
	ck_assert_ptr_null(e.buf);
	ck_assert(e.done && !e.eof_told);
	ck_assert_uint_eq(e.bytes, 5);
	/* A boundary past the bytes: refused. */
	ck_assert_uint_eq(buf[4 + 4], 2);	/* the second TLV is SCAN */
	buf[4 + 4 + 4] = 1;
	relay_dir_init(&e);
	ck_assert_int_eq(relay_dir_import(&e, buf, w.len), -EBADMSG);
}
END_TEST

/* A framer moved at any byte of a stream goes on to the same messages. */
START_TEST(test_framer)
{
	/* 'Z' (6 bytes), 'D' with a 40-byte body, 'C' (9 bytes). */
	uint8_t s[5 + 1 + 5 + 40 + 5 + 4];
	struct pgproto_framer a, b;
	struct tlv_writer w;
	size_t n = 0;

	s[n++] = 'Z';
	memcpy(s + n, "\0\0\0\5I", 5);
	n += 5;
	s[n++] = 'D';
	memcpy(s + n, "\0\0\0\54", 4);
	n += 4;
	memset(s + n, 'x', 40);
	n += 40;
	s[n++] = 'C';
	memcpy(s + n, "\0\0\0\10abcd", 8);
	n += 8;
	ck_assert_uint_eq(n, sizeof(s));
	for (size_t at = 0; at <= n; at++) {
		pgproto_framer_init(&a, 0);
		pgproto_framer_feed(&a, s, at);
		tlv_writer_init(&w, buf, sizeof(buf));
		ck_assert_int_eq(pgproto_framer_export(&a, &w), 0);
		ck_assert_int_eq(pgproto_framer_import(&b, buf, w.len), 0);
		ck_assert_uint_eq(b.hdr_len, a.hdr_len);
		ck_assert_mem_eq(b.hdr, a.hdr, a.hdr_len);
		ck_assert_uint_eq(b.left, a.left);
		pgproto_framer_feed(&a, s + at, n - at);
		pgproto_framer_feed(&b, s + at, n - at);
		ck_assert_uint_eq(b.last_type, 'C');
		ck_assert(!b.lost);
		/* hdr beyond hdr_len is stale in @a: not state. */
		ck_assert_uint_eq(b.left, a.left);
		ck_assert_uint_eq(b.hdr_len, a.hdr_len);
		ck_assert_uint_eq(b.last_type, a.last_type);
		ck_assert_int_eq(b.lost, a.lost);
	}
	/* Refused: a header longer than one, a flag that is not 0 or 1; the framer is lost then. */
	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(tlv_put_u32(&w, 1 | TLV_MANDATORY, 0), 0);
	ck_assert_int_eq(tlv_put(&w, 2 | TLV_MANDATORY, "123456", 6), 0);
	ck_assert_int_eq(tlv_put_u8(&w, 3 | TLV_MANDATORY, 0), 0);
	ck_assert_int_eq(tlv_put_u8(&w, 4 | TLV_MANDATORY, 0), 0);
	ck_assert_int_eq(pgproto_framer_import(&b, buf, w.len), -EBADMSG);
	ck_assert(b.lost);
	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(tlv_put_u32(&w, 1 | TLV_MANDATORY, 0), 0);
	ck_assert_int_eq(tlv_put(&w, 2 | TLV_MANDATORY, "", 0), 0);
	ck_assert_int_eq(tlv_put_u8(&w, 3 | TLV_MANDATORY, 0), 0);
	ck_assert_int_eq(tlv_put_u8(&w, 4 | TLV_MANDATORY, 2), 0);
	ck_assert_int_eq(pgproto_framer_import(&b, buf, w.len), -EBADMSG);
}
END_TEST

START_TEST(test_authinspect)
{
	struct authinspect a = { .strip_plus = true, .skip = 70000, .stripped = 3, .hinted = 1 };
	struct authinspect b;
	struct tlv_writer w;

	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(authinspect_export(&a, &w), 0);
	ck_assert_int_eq(authinspect_import(&b, buf, w.len), 0);
	ck_assert_mem_eq(&a, &b, sizeof(a));
	a.done = true;
	a.strip_plus = false;
	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(authinspect_export(&a, &w), 0);
	ck_assert_int_eq(authinspect_import(&b, buf, w.len), 0);
	ck_assert(b.done && !b.strip_plus);
	/* The flags first: a bit this binary does not know is refused. */
	buf[TLV_HDR] = 4;
	ck_assert_int_eq(authinspect_import(&b, buf, w.len), -EBADMSG);
	ck_assert_int_eq(authinspect_import(&b, buf, 3), -EBADMSG);
}
END_TEST

static Suite *sessstate_suite(void)
{
	Suite *s = suite_create("sessstate");
	TCase *tc = tcase_create("state");

	tcase_add_test(tc, test_relay_dir);
	tcase_add_test(tc, test_framer);
	tcase_add_test(tc, test_authinspect);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(sessstate_suite());
}
