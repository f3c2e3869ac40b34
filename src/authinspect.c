// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * authinspect.c - rewrite what authentication needs rewritten on its way to
 * the client. A fuzz target (tests/fuzz/fuzz_auth.c) drives it directly.
 */
#include "config.h"

#include "pgktls/authinspect.h"

#include <errno.h>
#include <string.h>

#include "pgktls/pgproto.h"
#include "pgktls/relay.h"
#include "pgktls/tlv.h"

/* Replace @oldlen bytes at @at by @msg (@newlen bytes), moving the rest. */
static int rewrite_in_place(struct relay_dir *d, uint32_t at, size_t oldlen, const uint8_t *msg,
			    size_t newlen)
{
	size_t rest = d->tail - at - oldlen;

	if (at + newlen + rest > RELAY_BUF_SIZE)
		return -ENOSPC;
	memmove(d->buf + at + newlen, d->buf + at + oldlen, rest);
	memcpy(d->buf + at, msg, newlen);
	d->tail = (uint32_t)(at + newlen + rest);
	return 0;
}

int authinspect_run(struct authinspect *ai, struct relay_dir *d)
{
	/* Both rewritten messages are small; larger ones pass unmodified. */
	uint8_t out[2048];

	while (d->scan < d->tail) {
		uint8_t *msg = d->buf + d->scan;
		size_t avail = d->tail - d->scan, total = 0, outlen = 0;
		uint8_t type = 0;
		uint32_t code;
		int r;

		if (ai->skip) {
			uint32_t n = avail < ai->skip ? (uint32_t)avail : ai->skip;

			d->scan += n;
			ai->skip -= n;
			continue;
		}
		r = pgproto_backend_msg(msg, avail, &type, &total);
		if (r < 0)
			return -EPROTO;
		if (r == 0 && total == 0)
			break;	/* header incomplete */
		if (type != 'R' && type != 'E') {
			/* Not ours to look at: let it stream through as it arrives. */
			ai->skip = (uint32_t)total;
			continue;
		}
		if (r == 0) {
			if (total > RELAY_BUF_SIZE)
				ai->skip = (uint32_t)total;	/* cannot hold it; pass */
			break;
		}
		if (type == 'R' && pgproto_auth_code(msg, total, &code) == 0) {
			if (code == PG_AUTH_OK) {
				/* Authenticated: from here on bytes pass untouched. */
				ai->done = true;
				d->scan = d->tail;
				return 0;
			}
			if (code == PG_AUTH_SASL && ai->strip_plus &&
			    pgproto_sasl_strip_plus(msg, total, out, sizeof(out), &outlen) == 1 &&
			    rewrite_in_place(d, d->scan, total, out, outlen) == 0) {
				ai->stripped++;
				total = outlen;
			}
		} else if (type == 'E' && pgproto_error_is_channel_binding(msg, total) &&
			   pgproto_error_add_hint(msg, total, AUTHINSPECT_HINT, out, sizeof(out),
						  &outlen) == 0 &&
			   rewrite_in_place(d, d->scan, total, out, outlen) == 0) {
			ai->hinted++;
			total = outlen;
		}
		d->scan += (uint32_t)total;
	}
	return 0;
}

/* ---- moving the inspection to another process (binary upgrade) ---- */

enum {
	AI_TAG_FLAGS = 1 | TLV_MANDATORY,	/* u8: bit 0 strip_plus, bit 1 done */
	AI_TAG_SKIP = 2 | TLV_MANDATORY,	/* u32 */
	AI_TAG_STRIPPED = 3,			/* u32, for the stats only */
	AI_TAG_HINTED = 4,			/* u32, for the stats only */
};

int authinspect_export(const struct authinspect *ai, struct tlv_writer *w)
{
	tlv_put_u8(w, AI_TAG_FLAGS, (uint8_t)(ai->strip_plus | ai->done << 1));
	tlv_put_u32(w, AI_TAG_SKIP, ai->skip);
	tlv_put_u32(w, AI_TAG_STRIPPED, ai->stripped);
	tlv_put_u32(w, AI_TAG_HINTED, ai->hinted);
	return tlv_writer_err(w);
}

int authinspect_import(struct authinspect *ai, const void *buf, size_t len)
{
	struct tlv_field f[] = {
		{ .tag = AI_TAG_FLAGS, .min_len = 1, .max_len = 1, .required = true },
		{ .tag = AI_TAG_SKIP, .min_len = 4, .max_len = 4, .required = true },
		{ .tag = AI_TAG_STRIPPED, .min_len = 4, .max_len = 4 },
		{ .tag = AI_TAG_HINTED, .min_len = 4, .max_len = 4 },
	};
	int r;

	memset(ai, 0, sizeof(*ai));
	r = tlv_parse(buf, len, f, PGKTLS_ARRAY_SIZE(f));
	if (r)
		return r;
	if (tlv_u8(&f[0]) > 3)
		return -EBADMSG;
	ai->strip_plus = tlv_u8(&f[0]) & 1;
	ai->done = tlv_u8(&f[0]) >> 1 & 1;
	ai->skip = tlv_u32(&f[1]);
	ai->stripped = f[2].seen ? tlv_u32(&f[2]) : 0;
	ai->hinted = f[3].seen ? tlv_u32(&f[3]) : 0;
	return 0;
}
