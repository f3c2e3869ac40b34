/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * pgproto.c - PostgreSQL wire-protocol framing, sans I/O.
 *
 * Everything here reads only the bytes it is given: every access is checked
 * against the caller's length before it happens, because the input comes
 * straight off the network (and is fed to a fuzzer). Nothing allocates and
 * nothing logs: startup packets carry user names and options that must not
 * end up in a log.
 *
 * The rules follow PostgreSQL's ProcessStartupPacket() (backend_startup.c)
 * with two deliberate tightenings: SSLRequest and GSSENCRequest must be
 * exactly 8 bytes, and the whole packet, not just its body, is bounded by
 * PG_MAX_STARTUP_PACKET. So do its answers: a packet whose length is wrong
 * gets no reply (the server only logs it, as COMMERROR, and closes), one
 * whose version or layout is wrong gets a FATAL ErrorResponse.
 */
#include "config.h"

#include "pgktls/pgproto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pgktls/tlv.h"

/* Message type bytes of the backend messages we look inside. */
#define PG_MSG_AUTH 'R'
#define PG_MSG_ERROR 'E'
#define PG_MSG_NOTICE 'N'

/* Bounds of the int32 length word of a tagged message (it counts itself). */
#define PG_MSG_MIN_LEN 4u
#define PG_MSG_MAX_LEN (1u << 30)
/* Type byte + length word. */
#define PG_MSG_HDR 5u

/* 1234.5678 and friends: the pseudo protocol major of the request codes. */
#define PG_REQUEST_MAJOR 1234u

#define SCRAM_PLUS "SCRAM-SHA-256-PLUS"

int pgproto_parse_initial(const uint8_t *buf, size_t len, size_t *pktlen, const char **why)
{
	/* Room for "unsupported frontend protocol 65535.65535" and some. */
	static __thread char proto_why[64];
	uint32_t plen, code, major, minor;
	size_t off, end;

	*pktlen = 0;
	*why = NULL;
	if (len == 0)
		return PGPROTO_NEED_MORE;
	/*
	 * A TLS record starts with 0x16; a length word starting with that byte
	 * would be far above any legal length, so one byte decides it.
	 */
	if (buf[0] == PG_TLS_HANDSHAKE_BYTE)
		return PGPROTO_TLS_HELLO;
	if (len < 4)
		return PGPROTO_NEED_MORE;

	plen = pgproto_get_u32(buf);
	if (plen < 8 || plen > PG_MAX_STARTUP_PACKET) {
		/*
		 * Not a PostgreSQL client, or one that sent something else first
		 * (node-postgres sends Terminate, 'X', when end() follows connect()
		 * at once): it would take any reply as the answer to a request.
		 */
		*why = "invalid length of startup packet";
		return -EMSGSIZE;
	}
	*pktlen = plen;
	if (len < 8)
		return PGPROTO_NEED_MORE;

	/*
	 * The code is known now: check it against the length before waiting for
	 * the rest, so a bogus header is refused at once instead of after the
	 * client has trickled in up to 10000 bytes.
	 */
	code = pgproto_get_u32(buf + 4);
	major = code >> 16;
	minor = code & 0xffff;
	switch (code) {
	case PG_SSL_REQUEST_CODE:
		if (plen != 8) {
			*why = "invalid length of SSL negotiation packet";
			return -EMSGSIZE;
		}
		return PGPROTO_SSLREQUEST;
	case PG_GSSENC_REQUEST_CODE:
		if (plen != 8) {
			*why = "invalid length of GSSAPI negotiation packet";
			return -EMSGSIZE;
		}
		return PGPROTO_GSSENCREQUEST;
	case PG_CANCEL_REQUEST_CODE:
		/* Process id (4) + secret key (4 bytes in 3.0, up to 256 in 3.2). */
		if (plen < PG_CANCEL_MIN_LEN || plen > PG_CANCEL_MAX_LEN) {
			*why = "invalid length of cancel request packet";
			return -EMSGSIZE;
		}
		return len < plen ? PGPROTO_NEED_MORE : PGPROTO_CANCEL;
	default:
		break;
	}
	if (major == PG_REQUEST_MAJOR) {
		/* A negotiation code from some future release we do not speak. */
		*why = "unsupported frontend protocol";
		return -EPROTONOSUPPORT;
	}
	if (major != 3) {
		/* Same wording as the server, so clients show the familiar text. */
		snprintf(proto_why, sizeof(proto_why), "unsupported frontend protocol %u.%u",
			 major, minor);
		*why = proto_why;
		return -EPROTONOSUPPORT;
	}
	if (len < plen)
		return PGPROTO_NEED_MORE;

	/*
	 * Body: name\0value\0 ... \0. An empty name is the terminator, and it
	 * must be the very last byte; anything after it could be smuggled past
	 * a proxy that re-parses the packet differently than the server.
	 */
	off = 8;
	end = plen;
	for (;;) {
		const uint8_t *nul;

		if (off >= end) {
			*why = "invalid startup packet layout: missing terminator";
			return -EPROTO;
		}
		if (buf[off] == '\0') {
			if (off != end - 1) {
				*why = "invalid startup packet layout: "
				       "expected terminator as last byte";
				return -EPROTO;
			}
			return PGPROTO_STARTUP;
		}
		nul = memchr(buf + off, '\0', end - off);
		if (!nul) {
			*why = "invalid startup packet layout: unterminated parameter name";
			return -EPROTO;
		}
		off = (size_t)(nul - buf) + 1;
		/*
		 * The value may be empty, but a name that runs into the end of the
		 * packet has no value at all (PostgreSQL: "missing value").
		 */
		if (off >= end) {
			*why = "invalid startup packet layout: parameter without a value";
			return -EPROTO;
		}
		nul = memchr(buf + off, '\0', end - off);
		if (!nul) {
			*why = "invalid startup packet layout: unterminated parameter value";
			return -EPROTO;
		}
		off = (size_t)(nul - buf) + 1;
	}
}

const char *pgproto_refusal_sqlstate(int err)
{
	switch (err) {
	case -EPROTONOSUPPORT:
		return "0A000";	/* ERRCODE_FEATURE_NOT_SUPPORTED */
	case -EPROTO:
		return "08P01";	/* ERRCODE_PROTOCOL_VIOLATION */
	default:
		return NULL;	/* -EMSGSIZE: PostgreSQL closes without a reply */
	}
}

int pgproto_backend_msg(const uint8_t *buf, size_t len, uint8_t *type, size_t *total)
{
	uint32_t mlen;

	*total = 0;
	if (len < PG_MSG_HDR)
		return 0;
	*type = buf[0];
	mlen = pgproto_get_u32(buf + 1);
	if (mlen < PG_MSG_MIN_LEN || mlen > PG_MSG_MAX_LEN)
		return -EPROTO;
	*total = (size_t)mlen + 1;
	return len >= *total ? 1 : 0;
}

void pgproto_framer_init(struct pgproto_framer *f, uint32_t skip)
{
	memset(f, 0, sizeof(*f));
	f->left = skip;
}

void pgproto_framer_feed(struct pgproto_framer *f, const uint8_t *p, size_t n)
{
	while (n > 0 && !f->lost) {
		size_t take;
		uint32_t mlen;

		if (f->left) {
			/* Inside a body: skip it by count, whatever its size. */
			take = n < f->left ? n : f->left;
			f->left -= (uint32_t)take;
			p += take;
			n -= take;
			continue;
		}
		take = PG_MSG_HDR - f->hdr_len;
		if (take > n)
			take = n;
		memcpy(f->hdr + f->hdr_len, p, take);
		f->hdr_len += (uint8_t)take;
		p += take;
		n -= take;
		if (f->hdr_len < PG_MSG_HDR)
			return;
		mlen = pgproto_get_u32(f->hdr + 1);
		if (mlen < PG_MSG_MIN_LEN || mlen > PG_MSG_MAX_LEN) {
			f->lost = true;
			return;
		}
		f->last_type = f->hdr[0];
		f->left = mlen - PG_MSG_MIN_LEN;
		f->hdr_len = 0;
	}
}

/*
 * check_msg() - @msg must be exactly one message of type @type: its length
 * word must account for every byte of @len and for at least @min body bytes.
 */
static bool check_msg(const uint8_t *msg, size_t len, uint8_t type, size_t min)
{
	uint32_t mlen;

	if (len < PG_MSG_HDR + min || msg[0] != type)
		return false;
	mlen = pgproto_get_u32(msg + 1);
	return mlen >= PG_MSG_MIN_LEN && mlen <= PG_MSG_MAX_LEN && (size_t)mlen + 1 == len;
}

int pgproto_auth_code(const uint8_t *msg, size_t len, uint32_t *code)
{
	if (!check_msg(msg, len, PG_MSG_AUTH, 4))
		return -EPROTO;
	*code = pgproto_get_u32(msg + PG_MSG_HDR);
	return 0;
}

int pgproto_sasl_strip_plus(const uint8_t *msg, size_t len, uint8_t *out, size_t outcap,
			    size_t *outlen)
{
	size_t off, n, kept = 0, dropped = 0;

	*outlen = 0;
	if (!check_msg(msg, len, PG_MSG_AUTH, 4) ||
	    pgproto_get_u32(msg + PG_MSG_HDR) != PG_AUTH_SASL)
		return -EPROTO;

	/* First pass: validate the whole list before writing anything. */
	for (off = PG_MSG_HDR + 4;; off += n + 1) {
		const uint8_t *nul;

		if (off >= len)
			return -EPROTO;	/* no closing empty string */
		nul = memchr(msg + off, '\0', len - off);
		if (!nul)
			return -EPROTO;
		n = (size_t)(nul - (msg + off));
		if (n == 0) {
			if (off != len - 1)
				return -EPROTO;	/* bytes after the list */
			break;
		}
		if (n == sizeof(SCRAM_PLUS) - 1 && !memcmp(msg + off, SCRAM_PLUS, n))
			dropped += n + 1;
		else
			kept++;
	}
	/*
	 * Only -PLUS on offer: stripping it would leave the client nothing to
	 * choose, so let it fail with the server's own offer instead.
	 */
	if (!dropped || !kept)
		return 0;
	if (outcap < len - dropped)
		return -ENOSPC;

	memcpy(out, msg, PG_MSG_HDR + 4);
	*outlen = PG_MSG_HDR + 4;
	for (off = PG_MSG_HDR + 4; off < len; off += n + 1) {
		n = strlen((const char *)msg + off);
		if (n == sizeof(SCRAM_PLUS) - 1 && !memcmp(msg + off, SCRAM_PLUS, n))
			continue;
		memcpy(out + *outlen, msg + off, n + 1);
		*outlen += n + 1;
	}
	pgproto_put_u32(out + 1, (uint32_t)(*outlen - 1));
	return 1;
}

/*
 * walk_fields() - validate an 'E'/'N' message and find its first @field.
 * @at: out: offset of the field's code byte, or 0 if there is none
 *
 * Return: 0, or -EPROTO if any field is unterminated or the terminator is
 * not the last byte.
 */
static int walk_fields(const uint8_t *msg, size_t len, uint8_t field, size_t *at)
{
	size_t off = PG_MSG_HDR;

	*at = 0;
	if (!check_msg(msg, len, PG_MSG_ERROR, 1) && !check_msg(msg, len, PG_MSG_NOTICE, 1))
		return -EPROTO;
	for (;;) {
		const uint8_t *nul;

		if (off >= len)
			return -EPROTO;
		if (msg[off] == '\0')
			return off == len - 1 ? 0 : -EPROTO;
		if (off + 1 >= len)
			return -EPROTO;
		nul = memchr(msg + off + 1, '\0', len - off - 1);
		if (!nul)
			return -EPROTO;
		if (msg[off] == field && !*at)
			*at = off;
		off = (size_t)(nul - msg) + 1;
	}
}

int pgproto_error_field(const uint8_t *msg, size_t len, uint8_t field, const char **val)
{
	size_t at;
	int ret;

	ret = walk_fields(msg, len, field, &at);
	if (ret)
		return ret;
	/* Field code 0 is the terminator, never a field. */
	if (!at || field == 0)
		return -ENOENT;
	*val = (const char *)msg + at + 1;
	return 0;
}

bool pgproto_error_is_channel_binding(const uint8_t *msg, size_t len)
{
	const char *m;

	if (len == 0 || msg[0] != PG_MSG_ERROR || pgproto_error_field(msg, len, 'M', &m))
		return false;
	/*
	 * auth-scram.c: "SCRAM channel binding check failed", "SCRAM channel
	 * binding negotiation error", "channel binding not supported by this
	 * build", "unsupported SCRAM channel-binding type ...", "unexpected SCRAM
	 * channel-binding attribute in client-final-message". The server never
	 * localises these differently in case, so a plain match is enough.
	 */
	return strstr(m, "channel binding") || strstr(m, "channel-binding");
}

int pgproto_error_add_hint(const uint8_t *msg, size_t len, const char *hint, uint8_t *out,
			   size_t outcap, size_t *outlen)
{
	size_t at, hlen = strlen(hint), need, n, endh;
	int ret;

	*outlen = 0;
	ret = walk_fields(msg, len, 'H', &at);
	if (ret)
		return ret;
	/* An existing hint grows by " hint"; a new field costs 'H' + hint + NUL. */
	if (hlen > PG_MSG_MAX_LEN)
		return -ENOSPC;
	need = len + hlen + (at ? 1 : 2);
	if (need - 1 > PG_MSG_MAX_LEN || need > outcap)
		return -ENOSPC;

	if (at) {
		/* Copy through the old hint's text, then " hint", then the rest. */
		endh = at + 1 + strlen((const char *)msg + at + 1);
		memcpy(out, msg, endh);
		n = endh;
		out[n++] = ' ';
		memcpy(out + n, hint, hlen);
		n += hlen;
		memcpy(out + n, msg + endh, len - endh);
		n += len - endh;
	} else {
		/* New field just before the terminator, the message's last byte. */
		memcpy(out, msg, len - 1);
		n = len - 1;
		out[n++] = 'H';
		memcpy(out + n, hint, hlen + 1);
		n += hlen + 1;
		out[n++] = '\0';
	}
	pgproto_put_u32(out + 1, (uint32_t)(n - 1));
	*outlen = n;
	return 0;
}

/* put_field() - append field @code with value @val at *@off. */
static void put_field(uint8_t *out, size_t *off, uint8_t code, const char *val)
{
	size_t n = strlen(val) + 1;

	out[(*off)++] = code;
	memcpy(out + *off, val, n);
	*off += n;
}

size_t pgproto_build_error(uint8_t *out, size_t cap, const char *severity, const char *sqlstate,
			   const char *message, const char *detail, const char *hint)
{
	size_t need, off;

	/* A malformed SQLSTATE would make clients misreport the error class. */
	if (!severity || !sqlstate || !message || strlen(sqlstate) != 5)
		return 0;
	/* Header, S, V, C, M and the terminator; each field is code + text + NUL. */
	need = PG_MSG_HDR + 2 * (strlen(severity) + 2) + 7 + strlen(message) + 2 + 1;
	if (detail)
		need += strlen(detail) + 2;
	if (hint)
		need += strlen(hint) + 2;
	if (need > cap || need - 1 > PG_MSG_MAX_LEN)
		return 0;

	out[0] = PG_MSG_ERROR;
	pgproto_put_u32(out + 1, (uint32_t)(need - 1));
	off = PG_MSG_HDR;
	put_field(out, &off, 'S', severity);
	/* 'V' is the never-translated severity (9.6+); ours is never translated. */
	put_field(out, &off, 'V', severity);
	put_field(out, &off, 'C', sqlstate);
	put_field(out, &off, 'M', message);
	if (detail)
		put_field(out, &off, 'D', detail);
	if (hint)
		put_field(out, &off, 'H', hint);
	out[off++] = '\0';
	PGKTLS_BUG_ON(off != need);
	return need;
}

void pgproto_ssl_request(uint8_t out[8])
{
	pgproto_put_u32(out, 8);
	pgproto_put_u32(out + 4, PG_SSL_REQUEST_CODE);
}

/* ---- moving a framer to another process (binary upgrade) ---- */

enum {
	PF_TAG_LEFT = 1 | TLV_MANDATORY,	/* u32 */
	PF_TAG_HDR = 2 | TLV_MANDATORY,		/* the header bytes so far (0 to 5) */
	PF_TAG_LAST_TYPE = 3 | TLV_MANDATORY,	/* u8 */
	PF_TAG_LOST = 4 | TLV_MANDATORY,	/* u8 */
};

int pgproto_framer_export(const struct pgproto_framer *f, struct tlv_writer *w)
{
	tlv_put_u32(w, PF_TAG_LEFT, f->left);
	tlv_put(w, PF_TAG_HDR, f->hdr, f->hdr_len);
	tlv_put_u8(w, PF_TAG_LAST_TYPE, f->last_type);
	tlv_put_u8(w, PF_TAG_LOST, f->lost);
	return tlv_writer_err(w);
}

int pgproto_framer_import(struct pgproto_framer *f, const void *buf, size_t len)
{
	struct tlv_field t[] = {
		{ .tag = PF_TAG_LEFT, .min_len = 4, .max_len = 4, .required = true },
		{ .tag = PF_TAG_HDR, .max_len = PG_MSG_HDR, .required = true },
		{ .tag = PF_TAG_LAST_TYPE, .min_len = 1, .max_len = 1, .required = true },
		{ .tag = PF_TAG_LOST, .min_len = 1, .max_len = 1, .required = true },
	};
	int r;

	memset(f, 0, sizeof(*f));
	f->lost = true;
	r = tlv_parse(buf, len, t, PGKTLS_ARRAY_SIZE(t));
	if (r)
		return r;
	if (tlv_u8(&t[3]) > 1 || tlv_u32(&t[0]) > PG_MSG_MAX_LEN)
		return -EBADMSG;
	f->left = tlv_u32(&t[0]);
	memcpy(f->hdr, t[1].val, t[1].len);
	f->hdr_len = (uint8_t)t[1].len;
	f->last_type = tlv_u8(&t[2]);
	f->lost = tlv_u8(&t[3]);
	return 0;
}
