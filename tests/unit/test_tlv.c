// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_tlv.c - the TLV list: what a writer puts a reader finds, byte for
 * byte; the wire form (little-endian, u16 tag and length); a full buffer
 * fails and stays failed; nesting; long values in chunks; and every way a
 * list can be malformed: cut short, a value outside its bounds, a tag twice,
 * an unknown mandatory tag (refused) or optional one (skipped), a required
 * field missing.
 */
#include "config.h"

#include "pgktls/tlv.h"

#include <errno.h>
#include <string.h>

#include "testlib.h"

#define T_A (1 | TLV_MANDATORY)
#define T_B 2
#define T_C (3 | TLV_MANDATORY)

START_TEST(test_round_trip)
{
	uint8_t buf[128];
	struct tlv_writer w;
	struct tlv_field f[] = {
		{ .tag = T_A, .min_len = 8, .max_len = 8, .required = true },
		{ .tag = T_B, .min_len = 0, .max_len = 16 },
		{ .tag = T_C, .min_len = 2, .max_len = 2, .required = true },
		{ .tag = 4, .min_len = 1, .max_len = 1 },
		{ .tag = 5, .min_len = 4, .max_len = 4 },
	};

	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(tlv_put_u64(&w, T_A, 0x0102030405060708ull), 0);
	ck_assert_int_eq(tlv_put(&w, T_B, "hello", 5), 0);
	ck_assert_int_eq(tlv_put_u16(&w, T_C, 0xbeef), 0);
	ck_assert_int_eq(tlv_put_u8(&w, 4, 0x7f), 0);
	ck_assert_int_eq(tlv_put_u32(&w, 5, 0xdeadbeef), 0);
	ck_assert_int_eq(tlv_writer_err(&w), 0);
	/* The wire form: tag and length little-endian, then the value. */
	ck_assert_uint_eq(w.len, 5 * TLV_HDR + 8 + 5 + 2 + 1 + 4);
	ck_assert_uint_eq(buf[0], 0x01);
	ck_assert_uint_eq(buf[1], 0x80);
	ck_assert_uint_eq(buf[2], 8);
	ck_assert_uint_eq(buf[3], 0);
	ck_assert_uint_eq(buf[4], 0x08);
	ck_assert_int_eq(tlv_parse(buf, w.len, f, 5), 0);
	ck_assert_uint_eq(tlv_u64(&f[0]), 0x0102030405060708ull);
	ck_assert_uint_eq(f[1].len, 5);
	ck_assert_mem_eq(f[1].val, "hello", 5);
	ck_assert_uint_eq(tlv_u16(&f[2]), 0xbeef);
	ck_assert_uint_eq(tlv_u8(&f[3]), 0x7f);
	ck_assert_uint_eq(tlv_u32(&f[4]), 0xdeadbeef);
	ck_assert_uint_eq(f[0].seen, 1);
	/* An empty list: only the required fields fail it. */
	ck_assert_int_eq(tlv_parse(buf, 0, f, 5), -ENODATA);
	ck_assert_int_eq(tlv_parse(buf, 0, f + 3, 2), 0);
	ck_assert_uint_eq(f[3].seen, 0);
}
END_TEST

START_TEST(test_writer_full)
{
	uint8_t buf[16];
	struct tlv_writer w;

	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(tlv_put_u64(&w, 1, 1), 0);
	ck_assert_uint_eq(w.len, 12);
	ck_assert_int_eq(tlv_put_u8(&w, 2, 1), -ENOSPC);
	/* Sticky: a smaller put that would fit does not slip in after the failure. */
	ck_assert_int_eq(tlv_put(&w, 3, NULL, 0), -ENOSPC);
	ck_assert_uint_eq(w.len, 12);
	ck_assert_int_eq(tlv_writer_err(&w), -ENOSPC);

	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(tlv_put(&w, 1, buf, TLV_MAX_VALUE + 1), -EINVAL);
	ck_assert_int_eq(tlv_writer_err(&w), -EINVAL);
}
END_TEST

START_TEST(test_nested_and_chunked)
{
	static uint8_t big[3 * TLV_MAX_VALUE / 2], back[sizeof(big)], buf[sizeof(big) + 64];
	struct tlv_writer w;
	struct tlv_field outer[] = {
		{ .tag = 10, .max_len = 64, .required = true },
		{ .tag = 11, .max_len = TLV_MAX_VALUE, .repeat = true, .required = true },
	};
	struct tlv_field inner[] = {
		{ .tag = 1, .min_len = 4, .max_len = 4, .required = true },
	};
	long at;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + i / 251);
	tlv_writer_init(&w, buf, sizeof(buf));
	at = tlv_begin(&w, 10);
	ck_assert_int_ge(at, 0);
	ck_assert_int_eq(tlv_put_u32(&w, 1, 42), 0);
	ck_assert_int_eq(tlv_end(&w, at), 0);
	ck_assert_int_eq(tlv_put_chunked(&w, 11, big, sizeof(big)), 0);
	ck_assert_int_eq(tlv_writer_err(&w), 0);
	ck_assert_int_eq(tlv_parse(buf, w.len, outer, 2), 0);
	ck_assert_uint_eq(outer[0].len, TLV_HDR + 4);
	ck_assert_int_eq(tlv_parse(outer[0].val, outer[0].len, inner, 1), 0);
	ck_assert_uint_eq(tlv_u32(&inner[0]), 42);
	ck_assert_uint_eq(outer[1].seen, 2);
	ck_assert_uint_eq(outer[1].total, sizeof(big));
	ck_assert_int_eq(tlv_gather(buf, w.len, 11, back, sizeof(back)), (long)sizeof(big));
	ck_assert_mem_eq(back, big, sizeof(big));
	ck_assert_int_eq(tlv_gather(buf, w.len, 11, back, sizeof(back) - 1), -EMSGSIZE);
	/* A chunk field that may appear once refuses the second chunk. */
	outer[1].repeat = false;
	ck_assert_int_eq(tlv_parse(buf, w.len, outer, 2), -EBADMSG);
}
END_TEST

/* Bytes [from, to) of @buf are all zero. */
static bool zeroed(const uint8_t *buf, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++)
		if (buf[i])
			return false;
	return true;
}

/*
 * A value written in place (tlv_chunked_begin/end) reads back as
 * tlv_put_chunked() of the same bytes would, nested two deep, and leaves no
 * stale copy of itself past the end; a failed value changes nothing and is
 * wiped.
 */
START_TEST(test_chunked_in_place)
{
	static uint8_t big[2 * TLV_MAX_VALUE + 77], buf[sizeof(big) + 256], ref[sizeof(buf)];
	static uint8_t in_ref[sizeof(buf)], mid_ref[sizeof(buf)];
	struct tlv_writer w, sub, inner, rw;
	size_t start, in_len;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13 + i / 509 + 1);
	/* The reference: the same three lists, each written apart and copied in chunks. */
	tlv_writer_init(&rw, in_ref, sizeof(in_ref));
	ck_assert_int_eq(tlv_put_u32(&rw, 5, 42), 0);
	ck_assert_int_eq(tlv_put_chunked(&rw, 6, big, sizeof(big)), 0);
	in_len = rw.len;
	tlv_writer_init(&rw, mid_ref, sizeof(mid_ref));
	ck_assert_int_eq(tlv_put_u16(&rw, 1, 7), 0);
	ck_assert_int_eq(tlv_put_chunked(&rw, 2, in_ref, in_len), 0);
	tlv_writer_init(&w, ref, sizeof(ref));
	ck_assert_int_eq(tlv_put_u8(&w, 9, 1), 0);
	ck_assert_int_eq(tlv_put_chunked(&w, 20, mid_ref, rw.len), 0);
	ck_assert_int_eq(tlv_put_u8(&w, 9, 2), 0);
	ck_assert_int_eq(tlv_writer_err(&w), 0);
	start = w.len;

	/* In place, two deep. */
	memset(buf, 0, sizeof(buf));
	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(tlv_put_u8(&w, 9, 1), 0);
	tlv_chunked_begin(&w, &sub);
	ck_assert_int_eq(tlv_put_u16(&sub, 1, 7), 0);
	tlv_chunked_begin(&sub, &inner);
	ck_assert_int_eq(tlv_put_u32(&inner, 5, 42), 0);
	ck_assert_int_eq(tlv_put_chunked(&inner, 6, big, sizeof(big)), 0);
	ck_assert_int_eq(tlv_chunked_end(&sub, &inner, 2, 0), 0);
	ck_assert_int_eq(tlv_chunked_end(&w, &sub, 20, 0), 0);
	ck_assert_int_eq(tlv_put_u8(&w, 9, 2), 0);
	ck_assert_int_eq(tlv_writer_err(&w), 0);
	ck_assert_uint_eq(w.len, start);
	ck_assert_mem_eq(buf, ref, w.len);
	ck_assert(zeroed(buf, w.len, sizeof(buf)));

	/* An empty value: no TLV at all. */
	tlv_writer_init(&w, buf, sizeof(buf));
	tlv_chunked_begin(&w, &sub);
	ck_assert_int_eq(tlv_chunked_end(&w, &sub, 20, 0), 0);
	ck_assert_uint_eq(w.len, 0);

	/* The value's writer failed: @w keeps its length, sticks, and the value is wiped. */
	memset(buf, 0, sizeof(buf));
	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(tlv_put_u8(&w, 9, 1), 0);
	start = w.len;
	tlv_chunked_begin(&w, &sub);
	ck_assert_int_eq(tlv_put(&sub, 3, big, 5000), 0);
	ck_assert_int_eq(tlv_chunked_end(&w, &sub, 20, -EOPNOTSUPP), -EOPNOTSUPP);
	ck_assert_uint_eq(w.len, start);
	ck_assert_int_eq(tlv_writer_err(&w), -EOPNOTSUPP);
	ck_assert(zeroed(buf, start, sizeof(buf)));
	ck_assert_int_eq(tlv_put_u8(&w, 9, 2), -EOPNOTSUPP);

	/* The value outgrew the buffer: -ENOSPC, sticky, wiped. */
	memset(buf, 0, sizeof(buf));
	tlv_writer_init(&w, buf, sizeof(big) / 2);
	tlv_chunked_begin(&w, &sub);
	ck_assert_int_eq(tlv_put_chunked(&sub, 3, big, sizeof(big)), -ENOSPC);
	ck_assert_int_eq(tlv_chunked_end(&w, &sub, 20, 0), -ENOSPC);
	ck_assert_uint_eq(w.len, 0);
	ck_assert_int_eq(tlv_writer_err(&w), -ENOSPC);
	ck_assert(zeroed(buf, 0, sizeof(buf)));

	/* A writer that had already failed: the value writes nothing. */
	tlv_chunked_begin(&w, &sub);
	ck_assert_int_eq(tlv_put_u8(&sub, 1, 1), -ENOSPC);
	ck_assert_int_eq(tlv_chunked_end(&w, &sub, 20, 0), -ENOSPC);
}
END_TEST

START_TEST(test_malformed)
{
	uint8_t buf[64];
	struct tlv_writer w;
	struct tlv_field f[] = {
		{ .tag = T_A, .min_len = 2, .max_len = 2, .required = true },
	};
	size_t good;

	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(tlv_put_u16(&w, T_A, 7), 0);
	good = w.len;
	ck_assert_int_eq(tlv_parse(buf, good, f, 1), 0);
	/* Cut anywhere: inside the header or inside the value. */
	for (size_t cut = 1; cut < good; cut++)
		ck_assert_int_eq(tlv_parse(buf, cut, f, 1), -EBADMSG);
	/* A length that runs past the end. */
	buf[2] = 3;
	ck_assert_int_eq(tlv_parse(buf, good, f, 1), -EBADMSG);
	buf[2] = 2;
	/* A value outside the field's bounds. */
	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(tlv_put_u32(&w, T_A, 7), 0);
	ck_assert_int_eq(tlv_parse(buf, w.len, f, 1), -EBADMSG);
	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(tlv_put_u8(&w, T_A, 7), 0);
	ck_assert_int_eq(tlv_parse(buf, w.len, f, 1), -EBADMSG);
	/* The same tag twice. */
	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(tlv_put_u16(&w, T_A, 7), 0);
	ck_assert_int_eq(tlv_put_u16(&w, T_A, 8), 0);
	ck_assert_int_eq(tlv_parse(buf, w.len, f, 1), -EBADMSG);
	/* Unknown tags: optional ones skipped (before and after), a mandatory one refused. */
	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(tlv_put(&w, 0x7777, "xyz", 3), 0);
	ck_assert_int_eq(tlv_put_u16(&w, T_A, 9), 0);
	ck_assert_int_eq(tlv_put(&w, 0x0042, NULL, 0), 0);
	ck_assert_int_eq(tlv_parse(buf, w.len, f, 1), 0);
	ck_assert_uint_eq(tlv_u16(&f[0]), 9);
	ck_assert_int_eq(tlv_put(&w, 0x0042 | TLV_MANDATORY, NULL, 0), 0);
	ck_assert_int_eq(tlv_parse(buf, w.len, f, 1), -EPROTONOSUPPORT);
	/* A required field missing. */
	tlv_writer_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(tlv_put_u16(&w, 6, 9), 0);
	ck_assert_int_eq(tlv_parse(buf, w.len, f, 1), -ENODATA);
}
END_TEST

static Suite *tlv_suite(void)
{
	Suite *s = suite_create("tlv");
	TCase *tc = tcase_create("tlv");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_writer_full);
	tcase_add_test(tc, test_nested_and_chunked);
	tcase_add_test(tc, test_chunked_in_place);
	tcase_add_test(tc, test_malformed);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(tlv_suite());
}
