// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * tlsmsg.c - post-handshake control records as events, no I/O (see tlsmsg.h).
 */
#include "config.h"

#include "pgktls/tlsmsg.h"

#include <errno.h>
#include <string.h>

void tlsmsg_init(struct tlsmsg *m, bool tls13, bool peer_is_server)
{
	memset(m, 0, sizeof(*m));
	m->tls13 = tls13;
	m->peer_is_server = peer_is_server;
}

void tlsmsg_save(const struct tlsmsg *m, uint8_t out[TLSMSG_SAVED_LEN])
{
	out[0] = m->answer_due;
	out[1] = m->tx_closed;
	out[2] = m->warnings;
}

int tlsmsg_restore(struct tlsmsg *m, bool tls13, bool peer_is_server,
		   const uint8_t in[TLSMSG_SAVED_LEN])
{
	tlsmsg_init(m, tls13, peer_is_server);
	if (in[0] > 1 || in[1] > 1 || in[2] > TLSMSG_MAX_WARNINGS || (in[0] && !tls13))
		return -EBADMSG;
	m->answer_due = in[0];
	m->tx_closed = in[1];
	m->warnings = in[2];
	return 0;
}

static enum tlsmsg_kind malformed(struct tlsmsg_event *ev, uint8_t alert)
{
	ev->kind = TLSMSG_MALFORMED;
	ev->alert = alert;
	return ev->kind;
}

static uint32_t get_be16(const uint8_t *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

/*
 * A TLS 1.3 NewSessionTicket body (RFC 8446 4.6.1): lifetime and age_add
 * (4 bytes each), nonce<0..255>, ticket<1..2^16-1>, extensions<0..2^16-2>,
 * with nothing after them. The extensions themselves are not looked into:
 * pgktls keeps no ticket.
 */
static bool ticket_ok(const uint8_t *b, uint32_t len)
{
	uint32_t off = 8, n;

	if (len < off + 1)
		return false;
	off += 1 + b[off];			/* nonce */
	if (len < off + 2)
		return false;
	n = get_be16(b + off);			/* ticket */
	if (n == 0 || len - off - 2 < n)
		return false;
	off += 2 + n;
	if (len < off + 2)
		return false;
	n = get_be16(b + off);			/* extensions */
	return len - off - 2 == n && n <= 0xfffe;
}

enum tlsmsg_kind tlsmsg_handshake(struct tlsmsg *m, const uint8_t *rec, size_t len,
				 struct tlsmsg_event *ev)
{
	size_t off = 0;

	memset(ev, 0, sizeof(*ev));
	/* RFC 8446 5.1: no zero-length fragments of handshake type. */
	if (len == 0)
		return malformed(ev, TLSMSG_AD_UNEXPECTED_MESSAGE);
	while (off < len) {
		const uint8_t *b = rec + off + 4;
		uint32_t body;

		if (len - off < 4)
			return malformed(ev, TLSMSG_AD_DECODE_ERROR);
		body = (uint32_t)rec[off + 1] << 16 | (uint32_t)rec[off + 2] << 8 | rec[off + 3];
		if (body > len - off - 4)
			return malformed(ev, TLSMSG_AD_DECODE_ERROR);
		switch (rec[off]) {
		case TLSMSG_HS_NEW_SESSION_TICKET:
			/* TLS 1.2 sends its ticket inside the handshake, never after it. */
			if (!m->tls13 || !m->peer_is_server)
				return malformed(ev, TLSMSG_AD_UNEXPECTED_MESSAGE);
			if (!ticket_ok(b, body))
				return malformed(ev, TLSMSG_AD_DECODE_ERROR);
			ev->tickets++;
			break;
		case TLSMSG_HS_KEY_UPDATE:
			if (!m->tls13)
				return malformed(ev, TLSMSG_AD_UNEXPECTED_MESSAGE);
			if (body != 1)
				return malformed(ev, TLSMSG_AD_DECODE_ERROR);
			if (b[0] > 1)
				return malformed(ev, TLSMSG_AD_ILLEGAL_PARAMETER);
			/* What follows a key change is under the new key: not in this record. */
			if (off + 5 != len)
				return malformed(ev, TLSMSG_AD_UNEXPECTED_MESSAGE);
			ev->kind = TLSMSG_KEY_UPDATE;
			if (b[0] && !m->tx_closed)
				m->answer_due = true;
			return ev->kind;
		case TLSMSG_HS_HELLO_REQUEST:
			if (m->tls13 || !m->peer_is_server)
				return malformed(ev, TLSMSG_AD_UNEXPECTED_MESSAGE);
			if (body != 0)
				return malformed(ev, TLSMSG_AD_DECODE_ERROR);
			ev->kind = TLSMSG_RENEGOTIATION;
			break;
		case TLSMSG_HS_CLIENT_HELLO:
			if (m->tls13 || m->peer_is_server)
				return malformed(ev, TLSMSG_AD_UNEXPECTED_MESSAGE);
			ev->kind = TLSMSG_RENEGOTIATION;
			break;
		default:
			return malformed(ev, TLSMSG_AD_UNEXPECTED_MESSAGE);
		}
		off += 4 + body;
	}
	return ev->kind;
}

enum tlsmsg_kind tlsmsg_alert(struct tlsmsg *m, const uint8_t *rec, size_t len,
			     struct tlsmsg_event *ev)
{
	uint8_t level, desc;

	memset(ev, 0, sizeof(*ev));
	if (len != 2)
		return malformed(ev, TLSMSG_AD_DECODE_ERROR);
	level = rec[0];
	desc = rec[1];
	if (level != TLSMSG_LEVEL_WARNING && level != TLSMSG_LEVEL_FATAL)
		return malformed(ev, TLSMSG_AD_ILLEGAL_PARAMETER);
	if (desc == TLSMSG_AD_CLOSE_NOTIFY && (m->tls13 || level == TLSMSG_LEVEL_WARNING)) {
		ev->kind = TLSMSG_CLOSE_NOTIFY;
		return ev->kind;
	}
	if ((m->tls13 && desc == TLSMSG_AD_USER_CANCELED) ||
	    (!m->tls13 && level == TLSMSG_LEVEL_WARNING)) {
		/* A close_notify should follow a user_canceled; a TLS 1.2 warning is advice. */
		if (++m->warnings >= TLSMSG_MAX_WARNINGS)
			return malformed(ev, TLSMSG_AD_UNEXPECTED_MESSAGE);
		return ev->kind;
	}
	ev->kind = TLSMSG_PEER_ALERT;
	ev->level = level;
	ev->alert = desc;
	return ev->kind;
}

void tlsmsg_data(struct tlsmsg *m)
{
	m->warnings = 0;
}

bool tlsmsg_answer_due(const struct tlsmsg *m)
{
	return m->answer_due && !m->tx_closed;
}

void tlsmsg_answer_sent(struct tlsmsg *m)
{
	m->answer_due = false;
}

void tlsmsg_close_sent(struct tlsmsg *m)
{
	m->tx_closed = true;
	m->answer_due = false;
}

bool tlsmsg_tx_closed(const struct tlsmsg *m)
{
	return m->tx_closed;
}

const char *tlsmsg_alert_name(uint8_t desc)
{
	switch (desc) {
	case TLSMSG_AD_CLOSE_NOTIFY:
		return "close_notify";
	case TLSMSG_AD_UNEXPECTED_MESSAGE:
		return "unexpected_message";
	case TLSMSG_AD_BAD_RECORD_MAC:
		return "bad_record_mac";
	case TLSMSG_AD_RECORD_OVERFLOW:
		return "record_overflow";
	case 40:
		return "handshake_failure";
	case 42:
		return "bad_certificate";
	case 45:
		return "certificate_expired";
	case 46:
		return "certificate_unknown";
	case TLSMSG_AD_ILLEGAL_PARAMETER:
		return "illegal_parameter";
	case 48:
		return "unknown_ca";
	case TLSMSG_AD_DECODE_ERROR:
		return "decode_error";
	case 51:
		return "decrypt_error";
	case TLSMSG_AD_PROTOCOL_VERSION:
		return "protocol_version";
	case 80:
		return "internal_error";
	case TLSMSG_AD_USER_CANCELED:
		return "user_canceled";
	case TLSMSG_AD_NO_RENEGOTIATION:
		return "no_renegotiation";
	}
	return "unknown";
}
