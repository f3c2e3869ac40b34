/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * pgproto.h - PostgreSQL wire-protocol framing, sans I/O.
 *
 * Every function here works on bytes the caller already holds and never
 * touches a socket, so the whole module is unit-testable and fuzzable. The
 * proxy only parses what it must: the untagged negotiation/startup packets a
 * client sends first, and, while authentication is in progress, the
 * server's AuthenticationSASL and ErrorResponse messages (channel binding).
 */
#ifndef PGKTLS_PGPROTO_H
#define PGKTLS_PGPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgktls/compiler.h"

struct tlv_writer;

#define PG_CANCEL_REQUEST_CODE 80877102u
#define PG_SSL_REQUEST_CODE 80877103u
#define PG_GSSENC_REQUEST_CODE 80877104u
#define PG_PROTOCOL(major, minor) (((uint32_t)(major) << 16) | (uint32_t)(minor))

/* PostgreSQL's own bound on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
#define PG_MAX_STARTUP_PACKET 10000u
/* CancelRequest: 8-byte header + process id (4) + secret key (4 to 256 bytes, protocol 3.2). */
#define PG_CANCEL_MIN_LEN 16u
#define PG_CANCEL_MAX_LEN (12u + 256u)
/* First byte of a TLS handshake record: PostgreSQL 17 direct TLS. */
#define PG_TLS_HANDSHAKE_BYTE 0x16

/* What the first packet from a client is. */
enum pgproto_initial {
	PGPROTO_NEED_MORE = 0,	/* not enough bytes yet; *pktlen says how many in all, if known */
	PGPROTO_TLS_HELLO,	/* 0x16: direct TLS, nothing consumed (*pktlen = 0) */
	PGPROTO_SSLREQUEST,	/* 8 bytes */
	PGPROTO_GSSENCREQUEST,	/* 8 bytes */
	PGPROTO_CANCEL,		/* 16..268 bytes */
	PGPROTO_STARTUP,	/* StartupMessage, protocol 3.x, validated */
};

/**
 * pgproto_parse_initial() - classify and validate the first packet in @buf.
 * @buf: bytes received so far from the client (plaintext or decrypted)
 * @len: how many
 * @pktlen: out: length of the complete packet (for NEED_MORE: total needed
 *	    once the length word is known, else 0)
 * @why: out, on failure: a static, human-readable reason for the log, and
 *	 for the ErrorResponse if pgproto_refusal_sqlstate() says to send one
 *
 * Validates lengths (8..PG_MAX_STARTUP_PACKET), the protocol major version
 * (3), and that a StartupMessage is a sequence of NUL-terminated name/value
 * strings ending with a single extra NUL as its last byte.
 *
 * Return: an enum pgproto_initial value (>= 0), or -EMSGSIZE (a length that
 * no packet of its kind may have), -EPROTONOSUPPORT (a protocol version or
 * request code we do not speak), -EPROTO (a malformed StartupMessage body).
 */
PGKTLS_MUSTCHECK int pgproto_parse_initial(const uint8_t *buf, size_t len, size_t *pktlen,
					   const char **why);

/**
 * pgproto_refusal_sqlstate() - how PostgreSQL answers a first packet that
 * pgproto_parse_initial() refused with @err.
 *
 * Return: the SQLSTATE of the FATAL ErrorResponse to send ("0A000" for an
 * unsupported protocol, "08P01" for a malformed packet), or NULL where
 * PostgreSQL closes the connection without a reply (a wrong length: the
 * peer may not be a PostgreSQL client at all, or may be waiting for the
 * answer to an SSLRequest, and would misread an ErrorResponse).
 */
const char *pgproto_refusal_sqlstate(int err);

/**
 * pgproto_backend_msg() - frame one tagged message (type byte + int32 length).
 * @buf: bytes from the server
 * @len: how many
 * @type: out: the message type byte
 * @total: out: whole message length including the type byte; set as soon as
 *	   the 5-byte header is present, even when 0 is returned
 *
 * Return: 1 when a whole message is in @buf, 0 if more bytes are needed,
 * -EPROTO if the length word is below 4 or above 1 GiB.
 */
PGKTLS_MUSTCHECK int pgproto_backend_msg(const uint8_t *buf, size_t len, uint8_t *type,
					 size_t *total);

/**
 * pgproto_auth_code() - the int32 request code of an Authentication ('R') message.
 * @msg: one whole message (type byte included)
 *
 * Return: 0 and *code set, or -EPROTO if @msg is not a well-formed 'R' message.
 */
PGKTLS_MUSTCHECK int pgproto_auth_code(const uint8_t *msg, size_t len, uint32_t *code);

#define PG_AUTH_OK 0u
#define PG_AUTH_SASL 10u

/**
 * pgproto_sasl_strip_plus() - remove SCRAM-SHA-256-PLUS from AuthenticationSASL.
 * @msg: one whole 'R' message with code PG_AUTH_SASL
 * @out: where the rewritten message goes (may not alias @msg)
 * @outcap: its size (@len is always enough)
 * @outlen: out: the rewritten length
 *
 * Needed when the client hop is plaintext and the upstream hop is TLS: the
 * server offers channel binding because *its* connection is TLS, and libpq
 * refuses a -PLUS offer over a non-SSL connection.
 *
 * Return: 1 if rewritten, 0 if there was nothing to strip (or only -PLUS was
 * offered, which is left alone), -EPROTO if @msg is malformed.
 */
PGKTLS_MUSTCHECK int pgproto_sasl_strip_plus(const uint8_t *msg, size_t len, uint8_t *out,
					     size_t outcap, size_t *outlen);

/**
 * pgproto_error_field() - find one field of an ErrorResponse/NoticeResponse.
 * @msg: one whole 'E' or 'N' message
 * @field: field code, e.g. 'C' (SQLSTATE), 'M' (message), 'S' (severity)
 * @val: out: pointer into @msg at the NUL-terminated value
 *
 * Return: 0 if found, -ENOENT if absent, -EPROTO if malformed.
 */
PGKTLS_MUSTCHECK int pgproto_error_field(const uint8_t *msg, size_t len, uint8_t field,
					 const char **val);

/**
 * pgproto_error_is_channel_binding() - whether an ErrorResponse from the
 * server is a SCRAM channel-binding failure ("SCRAM channel binding check
 * failed", "... negotiation error", ...).
 */
bool pgproto_error_is_channel_binding(const uint8_t *msg, size_t len);

/**
 * pgproto_error_add_hint() - copy an ErrorResponse, setting its 'H' field.
 * @hint: text to put in (appended after an existing hint, separated by a space)
 *
 * Return: 0 with *outlen set, -ENOSPC if @outcap is too small, -EPROTO if
 * @msg is malformed.
 */
PGKTLS_MUSTCHECK int pgproto_error_add_hint(const uint8_t *msg, size_t len, const char *hint,
					    uint8_t *out, size_t outcap, size_t *outlen);

/**
 * pgproto_build_error() - build an ErrorResponse pgktls itself sends.
 * @severity: "FATAL" or "ERROR" (written as both 'S' and 'V')
 * @sqlstate: five characters, e.g. "08P01"
 * @message: primary message ('M')
 * @detail: 'D' field or NULL
 * @hint: 'H' field or NULL
 *
 * Return: the message length, or 0 if it does not fit in @cap (nothing usable
 * is left in @out then).
 */
size_t pgproto_build_error(uint8_t *out, size_t cap, const char *severity, const char *sqlstate,
			   const char *message, const char *detail, const char *hint);

/*
 * Where a stream of tagged messages stands, from its bytes alone: headers
 * are read, bodies skipped by count, nothing is copied beyond a header
 * split across reads. The relay feeds it what passes through userspace, so
 * the connection can tell whether a stream stopped between two messages.
 */
struct pgproto_framer {
	uint32_t left;		/* bytes of the current message (or skipped packet) still due */
	uint8_t hdr[5];		/* a header split across feeds */
	uint8_t hdr_len;	/* bytes of it so far */
	uint8_t last_type;	/* type byte of the last message begun; 0 before any */
	bool lost;		/* bytes passed unseen, or a bad length: position unknown */
};

/**
 * pgproto_framer_init() - a framer at the start of a stream.
 * @skip: bytes of an untagged packet that come first (the StartupMessage
 *	  of a client stream), or 0
 */
void pgproto_framer_init(struct pgproto_framer *f, uint32_t skip);

/** pgproto_framer_feed() - account for the next @n bytes of the stream. */
void pgproto_framer_feed(struct pgproto_framer *f, const uint8_t *p, size_t n);

/** pgproto_framer_lose() - bytes passed without being fed: the position is unknown. */
static inline void pgproto_framer_lose(struct pgproto_framer *f)
{
	f->lost = true;
}

/**
 * pgproto_framer_at_boundary() - whether every message begun has ended
 * (so a whole message may follow), as far as the framer can tell.
 */
static inline bool pgproto_framer_at_boundary(const struct pgproto_framer *f)
{
	return !f->lost && f->left == 0 && f->hdr_len == 0;
}

/** pgproto_get_u32() - read a big-endian uint32. */
static inline uint32_t pgproto_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/** pgproto_put_u32() - write a big-endian uint32. */
static inline void pgproto_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/** pgproto_ssl_request() - the 8-byte SSLRequest pgktls sends upstream. */
void pgproto_ssl_request(uint8_t out[8]);

/**
 * pgproto_framer_export() - @f as a TLV list (tlv.h), for a binary upgrade.
 * Return: 0, or the writer's error.
 */
PGKTLS_MUSTCHECK int pgproto_framer_export(const struct pgproto_framer *f,
					   struct tlv_writer *w);

/**
 * pgproto_framer_import() - @f from pgproto_framer_export()'s list.
 * Return: 0, tlv_parse()'s errors, or -EBADMSG (a value the framer never
 * holds); @f is then a lost framer (nothing is guessed from it).
 */
PGKTLS_MUSTCHECK int pgproto_framer_import(struct pgproto_framer *f, const void *buf,
					   size_t len);

#endif /* PGKTLS_PGPROTO_H */
