/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * tlv.h - a list of tagged values in a bounded buffer: how a module writes
 * its state for a binary upgrade (the phase 2 SESSION payload of
 * handover.c) so that the new process can read it back, and so that a
 * newer writer can add fields an older reader skips.
 *
 * Wire form: a sequence of { u16 tag, u16 length, length bytes }, all
 * integers little-endian (both processes run on the same machine; the
 * form is still fixed so that a fuzzer input means one thing). A tag with
 * TLV_MANDATORY set is one a reader must understand: an unknown mandatory
 * tag fails the parse (-EPROTONOSUPPORT), an unknown optional one is
 * skipped. A value may itself be a TLV list (nesting: each module owns
 * its own tag space).
 *
 * No allocation, no I/O: the writer fills the caller's buffer, the reader
 * points into the caller's bytes.
 */
#ifndef PGKTLS_TLV_H
#define PGKTLS_TLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgktls/compiler.h"

/* Tag bit: a reader that does not know this tag must refuse the whole list. */
#define TLV_MANDATORY 0x8000u
/* Bytes before each value. */
#define TLV_HDR 4u
/* Largest value in one TLV; longer data is written as several (see tlv_put_chunked()). */
#define TLV_MAX_VALUE 0xffffu

/**
 * struct tlv_writer - appends TLVs to a bounded buffer.
 * @buf: the caller's buffer
 * @cap: its size
 * @len: bytes written so far
 * @err: the first failure (sticky): later puts do nothing
 */
struct tlv_writer {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err;
};

/**
 * struct tlv_field - one tag a reader expects, and what tlv_parse() found.
 * @tag: the tag, TLV_MANDATORY included if writers set it
 * @min_len: shortest value accepted
 * @max_len: longest value accepted (per TLV when @repeat)
 * @required: the list must carry it
 * @repeat: it may appear several times (a long value in chunks, in order)
 * @seen: out: how many times it appeared
 * @val: out: the first occurrence's value, pointing into the parsed bytes
 * @len: out: the first occurrence's length
 * @total: out: the sum of every occurrence's length
 */
struct tlv_field {
	uint16_t tag;
	uint16_t min_len;
	uint16_t max_len;
	bool required;
	bool repeat;
	unsigned int seen;
	const uint8_t *val;
	uint16_t len;
	size_t total;
};

/**
 * tlv_writer_init() - start writing into @buf of @cap bytes; nothing to free.
 */
void tlv_writer_init(struct tlv_writer *w, void *buf, size_t cap);

/**
 * tlv_put() - append one TLV.
 * @w: the writer
 * @tag: the tag (with TLV_MANDATORY where a reader must know it)
 * @val: @len bytes (may be NULL when @len is 0)
 * @len: at most TLV_MAX_VALUE
 *
 * A failure also sticks in @w (tlv_writer_err()), so a sequence of puts
 * can be checked once at its end.
 *
 * Return: 0, -EINVAL (@len too long), -ENOSPC (the buffer is full), or
 * the earlier failure.
 */
int tlv_put(struct tlv_writer *w, uint16_t tag, const void *val, size_t len);

/** tlv_put_u8() - append a one-byte value. Return: as tlv_put(). */
int tlv_put_u8(struct tlv_writer *w, uint16_t tag, uint8_t v);

/** tlv_put_u16() - append a little-endian u16. Return: as tlv_put(). */
int tlv_put_u16(struct tlv_writer *w, uint16_t tag, uint16_t v);

/** tlv_put_u32() - append a little-endian u32. Return: as tlv_put(). */
int tlv_put_u32(struct tlv_writer *w, uint16_t tag, uint32_t v);

/** tlv_put_u64() - append a little-endian u64. Return: as tlv_put(). */
int tlv_put_u64(struct tlv_writer *w, uint16_t tag, uint64_t v);

/**
 * tlv_put_chunked() - append @len bytes as TLVs of @tag of at most
 * TLV_MAX_VALUE bytes each, in order (none when @len is 0); read back with
 * a @repeat field and tlv_gather().
 * Return: as tlv_put().
 */
int tlv_put_chunked(struct tlv_writer *w, uint16_t tag, const void *val, size_t len);

/**
 * tlv_chunked_begin() - open a value of @w that may outgrow one TLV (a
 * nested list of any length), written in place, with no copy buffer.
 * @w: the writer
 * @sub: out: a writer for the value, on the free tail of @w's buffer
 *
 * Write the value with @sub, then close it with tlv_chunked_end(), which
 * lays it out as tlv_put_chunked() would. Nothing else may be put in @w
 * in between. Pairs nest: a value's writer may open its own.
 */
void tlv_chunked_begin(struct tlv_writer *w, struct tlv_writer *sub);

/**
 * tlv_chunked_end() - close the value tlv_chunked_begin() opened, as TLVs
 * of @tag (none when it is empty).
 * @w: the writer
 * @sub: the value's writer
 * @tag: the tag of each chunk
 * @status: 0, or the failure that stopped the value's writer (it sticks in
 *	@w, as a put's would)
 *
 * What the value leaves in @w's buffer past the new end (all of it on a
 * failure) is wiped: it may be keys.
 *
 * Return: 0, or the failure (@w's earlier one, @status, or @sub's), also
 * sticky in @w.
 */
int tlv_chunked_end(struct tlv_writer *w, struct tlv_writer *sub, uint16_t tag, int status);

/**
 * tlv_begin() - open a nested list under @tag: the puts that follow, up to
 * tlv_end(), form its value.
 * Return: the offset tlv_end() needs, or a negative errno (also sticky).
 */
long tlv_begin(struct tlv_writer *w, uint16_t tag);

/**
 * tlv_end() - close the nested list tlv_begin() opened at @at.
 * Return: 0, -EINVAL (the nested value outgrew TLV_MAX_VALUE), or the
 * sticky failure.
 */
int tlv_end(struct tlv_writer *w, long at);

/** tlv_writer_err() - the first failure of @w's puts, or 0. */
PGKTLS_MUSTCHECK int tlv_writer_err(const struct tlv_writer *w);

/**
 * tlv_parse() - check a TLV list and find the expected fields in it.
 * @buf: the list, @len bytes
 * @f: the fields expected, @n of them; their out members are reset first
 *
 * Return: 0; -EBADMSG (a TLV cut short, a value outside its field's
 * bounds, a field that may appear once appearing twice); -EPROTONOSUPPORT
 * (an unknown tag with TLV_MANDATORY set); -ENODATA (a required field
 * missing). Unknown optional tags are skipped.
 */
PGKTLS_MUSTCHECK int tlv_parse(const void *buf, size_t len, struct tlv_field *f, size_t n);

/**
 * tlv_gather() - copy every occurrence of @tag in the list @buf (already
 * accepted by tlv_parse()), in order, into @dst.
 * Return: bytes copied, or -EMSGSIZE when they exceed @cap.
 */
PGKTLS_MUSTCHECK long tlv_gather(const void *buf, size_t len, uint16_t tag, void *dst,
				 size_t cap);

/** tlv_u8() - a found field's one-byte value (its bounds made it 1 byte). */
uint8_t tlv_u8(const struct tlv_field *f);

/** tlv_u16() - a found field's little-endian u16 value (2 bytes). */
uint16_t tlv_u16(const struct tlv_field *f);

/** tlv_u32() - a found field's little-endian u32 value (4 bytes). */
uint32_t tlv_u32(const struct tlv_field *f);

/** tlv_u64() - a found field's little-endian u64 value (8 bytes). */
uint64_t tlv_u64(const struct tlv_field *f);

#endif /* PGKTLS_TLV_H */
