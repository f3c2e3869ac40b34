// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * tlv.c - tagged values in a bounded buffer (see tlv.h).
 */
#include "config.h"

#include "pgktls/tlv.h"

#include <errno.h>
#include <string.h>

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = n; i > 0; i--)
		v = v << 8 | p[i - 1];
	return v;
}

void tlv_writer_init(struct tlv_writer *w, void *buf, size_t cap)
{
	w->buf = buf;
	w->cap = cap;
	w->len = 0;
	w->err = 0;
}

static int fail(struct tlv_writer *w, int err)
{
	if (!w->err)
		w->err = err;
	return w->err;
}

int tlv_put(struct tlv_writer *w, uint16_t tag, const void *val, size_t len)
{
	if (w->err)
		return w->err;
	if (len > TLV_MAX_VALUE)
		return fail(w, -EINVAL);
	if (w->cap - w->len < TLV_HDR || w->cap - w->len - TLV_HDR < len)
		return fail(w, -ENOSPC);
	put_le(w->buf + w->len, tag, 2);
	put_le(w->buf + w->len + 2, len, 2);
	if (len)
		memcpy(w->buf + w->len + TLV_HDR, val, len);
	w->len += TLV_HDR + len;
	return 0;
}

static int put_int(struct tlv_writer *w, uint16_t tag, uint64_t v, size_t n)
{
	uint8_t b[8];

	put_le(b, v, n);
	return tlv_put(w, tag, b, n);
}

int tlv_put_u8(struct tlv_writer *w, uint16_t tag, uint8_t v)
{
	return put_int(w, tag, v, 1);
}

int tlv_put_u16(struct tlv_writer *w, uint16_t tag, uint16_t v)
{
	return put_int(w, tag, v, 2);
}

int tlv_put_u32(struct tlv_writer *w, uint16_t tag, uint32_t v)
{
	return put_int(w, tag, v, 4);
}

int tlv_put_u64(struct tlv_writer *w, uint16_t tag, uint64_t v)
{
	return put_int(w, tag, v, 8);
}

int tlv_put_chunked(struct tlv_writer *w, uint16_t tag, const void *val, size_t len)
{
	const uint8_t *p = val;

	while (len > 0) {
		size_t k = len > TLV_MAX_VALUE ? TLV_MAX_VALUE : len;
		int r = tlv_put(w, tag, p, k);

		if (r)
			return r;
		p += k;
		len -= k;
	}
	return w->err;
}

/*
 * The value is written past room for the most chunk headers it could need
 * (one per TLV_MAX_VALUE bytes of the free tail, plus one), so that
 * tlv_chunked_end() can slide each chunk down behind its header: every
 * move goes to a lower address, and a header never lands on bytes not yet
 * moved.
 */
void tlv_chunked_begin(struct tlv_writer *w, struct tlv_writer *sub)
{
	size_t room = w->cap - w->len;
	size_t headers = TLV_HDR * (room / TLV_MAX_VALUE + 1);

	if (w->err || !w->buf || headers > room) {
		tlv_writer_init(sub, w->buf ? w->buf + w->len : NULL, 0);
		sub->err = w->err;
		return;
	}
	tlv_writer_init(sub, w->buf + w->len + headers, room - headers);
}

int tlv_chunked_end(struct tlv_writer *w, struct tlv_writer *sub, uint16_t tag, int status)
{
	const uint8_t *src = sub->buf;
	uint8_t *out = w->buf ? w->buf + w->len : NULL;
	size_t left = sub->len;
	int r = w->err ? w->err : status ? status : sub->err;

	if (r)
		fail(w, r);
	while (!r && left > 0) {
		size_t k = left > TLV_MAX_VALUE ? TLV_MAX_VALUE : left;

		put_le(out, tag, 2);
		put_le(out + 2, k, 2);
		memmove(out + TLV_HDR, src, k);
		out += TLV_HDR + k;
		src += k;
		left -= k;
	}
	if (!r)
		w->len = (size_t)(out - w->buf);
	/* From the new end to the end of what the value's writer wrote. */
	if (sub->len)
		explicit_bzero(out, (size_t)(sub->buf + sub->len - out));
	sub->len = 0;
	return r;
}

long tlv_begin(struct tlv_writer *w, uint16_t tag)
{
	size_t at = w->len;
	int r = tlv_put(w, tag, NULL, 0);

	return r ? r : (long)at;
}

int tlv_end(struct tlv_writer *w, long at)
{
	size_t vlen;

	if (w->err)
		return w->err;
	if (at < 0 || (size_t)at + TLV_HDR > w->len)
		return fail(w, -EINVAL);
	vlen = w->len - (size_t)at - TLV_HDR;
	if (vlen > TLV_MAX_VALUE)
		return fail(w, -EINVAL);
	put_le(w->buf + at + 2, vlen, 2);
	return 0;
}

int tlv_writer_err(const struct tlv_writer *w)
{
	return w->err;
}

int tlv_parse(const void *buf, size_t len, struct tlv_field *f, size_t n)
{
	const uint8_t *p = buf;
	size_t off = 0;

	for (size_t i = 0; i < n; i++) {
		f[i].seen = 0;
		f[i].val = NULL;
		f[i].len = 0;
		f[i].total = 0;
	}
	while (off < len) {
		uint16_t tag, vlen;
		size_t i;

		if (len - off < TLV_HDR)
			return -EBADMSG;
		tag = (uint16_t)get_le(p + off, 2);
		vlen = (uint16_t)get_le(p + off + 2, 2);
		if (len - off - TLV_HDR < vlen)
			return -EBADMSG;
		for (i = 0; i < n && f[i].tag != tag; i++)
			;
		if (i == n) {
			if (tag & TLV_MANDATORY)
				return -EPROTONOSUPPORT;
		} else {
			if (vlen < f[i].min_len || vlen > f[i].max_len)
				return -EBADMSG;
			if (f[i].seen && !f[i].repeat)
				return -EBADMSG;
			if (!f[i].seen) {
				f[i].val = p + off + TLV_HDR;
				f[i].len = vlen;
			}
			f[i].seen++;
			f[i].total += vlen;
		}
		off += TLV_HDR + vlen;
	}
	for (size_t i = 0; i < n; i++)
		if (f[i].required && !f[i].seen)
			return -ENODATA;
	return 0;
}

long tlv_gather(const void *buf, size_t len, uint16_t tag, void *dst, size_t cap)
{
	const uint8_t *p = buf;
	uint8_t *d = dst;
	size_t off = 0, got = 0;

	while (len - off >= TLV_HDR) {
		uint16_t t = (uint16_t)get_le(p + off, 2);
		uint16_t vlen = (uint16_t)get_le(p + off + 2, 2);

		if (len - off - TLV_HDR < vlen)
			break;
		if (t == tag) {
			if (cap - got < vlen)
				return -EMSGSIZE;
			memcpy(d + got, p + off + TLV_HDR, vlen);
			got += vlen;
		}
		off += TLV_HDR + vlen;
	}
	return (long)got;
}

uint8_t tlv_u8(const struct tlv_field *f)
{
	return f->len >= 1 ? f->val[0] : 0;
}

uint16_t tlv_u16(const struct tlv_field *f)
{
	return f->len >= 2 ? (uint16_t)get_le(f->val, 2) : 0;
}

uint32_t tlv_u32(const struct tlv_field *f)
{
	return f->len >= 4 ? (uint32_t)get_le(f->val, 4) : 0;
}

uint64_t tlv_u64(const struct tlv_field *f)
{
	return f->len >= 8 ? get_le(f->val, 8) : 0;
}
