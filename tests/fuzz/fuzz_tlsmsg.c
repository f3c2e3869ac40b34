/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * fuzz_tlsmsg.c - libFuzzer harness for tlsmsg.c, the post-handshake rules,
 * against a model of RFC 8446 4.6, 5.1, 6 and RFC 5246 7.2 / 7.4.1 written
 * separately here (a table of who may send which message under which
 * version, and each body's form), so that a rule broken in one is caught by
 * the other.
 *
 * Input: byte 0: bit 0 TLS 1.3, bit 1 the peer is the server. Then records,
 * each an op byte and, for records, a length byte and that many bytes (cut
 * short at the end of the input); each record is passed in a buffer of
 * exactly its size (ASan sees any read past it):
 *   op % 5 == 0  a handshake record       1  an alert record
 *   2            application data         3  our KeyUpdate answer went out
 *   4            our close_notify went out
 * After each step the event (kind, alert, level, tickets) and the state
 * seen from outside (answer due, closed) must match the model's.
 */
#include "config.h"

#include "pgktls/tlsmsg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_tlsmsg: %s:%d: %s\n", __FILE__, __LINE__,    \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* ---- the model ---- */

struct model {
	bool v13, from_server;
	bool due, closed;
	int run;		/* warnings ignored in a row */
};

struct verdict {
	enum tlsmsg_kind kind;
	int alert, level, tickets;
};

/* Which post-handshake messages each side may send (RFC 8446 4.6, RFC 5246 7.4.1.1). */
enum who { NOBODY, SERVER13, ANY13, SERVER12, CLIENT12 };

static enum who sender_of(uint8_t type)
{
	switch (type) {
	case 0:		/* hello_request */
		return SERVER12;
	case 1:		/* client_hello: renegotiation */
		return CLIENT12;
	case 4:		/* new_session_ticket */
		return SERVER13;
	case 24:	/* key_update */
		return ANY13;
	default:
		return NOBODY;
	}
}

static bool may_send(const struct model *m, enum who w)
{
	switch (w) {
	case SERVER13:
		return m->v13 && m->from_server;
	case ANY13:
		return m->v13;
	case SERVER12:
		return !m->v13 && m->from_server;
	case CLIENT12:
		return !m->v13 && !m->from_server;
	case NOBODY:
		break;
	}
	return false;
}

static size_t be(const uint8_t *p, int n)
{
	size_t v = 0;

	while (n-- > 0)
		v = v << 8 | *p++;
	return v;
}

/* NewSessionTicket (RFC 8446 4.6.1): the sum of its parts is its length. */
static bool nst_well_formed(const uint8_t *b, size_t n)
{
	size_t nonce, tkt, ext;

	if (n < 9)
		return false;
	nonce = b[8];
	if (n < 9 + nonce + 2)
		return false;
	tkt = be(b + 9 + nonce, 2);
	if (tkt < 1 || n < 9 + nonce + 2 + tkt + 2)
		return false;
	ext = be(b + 9 + nonce + 2 + tkt, 2);
	return ext <= 65534 && 9 + nonce + 2 + tkt + 2 + ext == n;
}

static struct verdict bad(int alert)
{
	return (struct verdict){ .kind = TLSMSG_MALFORMED, .alert = alert };
}

static struct verdict model_handshake(struct model *m, const uint8_t *r, size_t n)
{
	struct verdict v = { .kind = TLSMSG_NONE };
	bool reneg = false;
	size_t at = 0;

	if (n == 0)
		return bad(10);
	do {
		size_t blen;
		uint8_t t;

		if (at + 4 > n)
			return bad(50);
		t = r[at];
		blen = be(r + at + 1, 3);
		if (at + 4 + blen > n)
			return bad(50);
		if (!may_send(m, sender_of(t)))
			return bad(10);
		if (t == 4) {
			if (!nst_well_formed(r + at + 4, blen))
				return bad(50);
			v.tickets++;
		} else if (t == 0) {
			if (blen)
				return bad(50);
			reneg = true;
		} else if (t == 1) {
			reneg = true;
		} else {
			/* key_update: one byte, 0 or 1, and the last thing in its record. */
			if (blen != 1)
				return bad(50);
			if (r[at + 4] != 0 && r[at + 4] != 1)
				return bad(47);
			if (at + 5 < n)
				return bad(10);
			if (r[at + 4] == 1 && !m->closed)
				m->due = true;
			v.kind = TLSMSG_KEY_UPDATE;
			return v;
		}
		at += 4 + blen;
	} while (at < n);
	if (reneg)
		v.kind = TLSMSG_RENEGOTIATION;
	return v;
}

static struct verdict model_alert(struct model *m, const uint8_t *r, size_t n)
{
	struct verdict v = { .kind = TLSMSG_NONE };
	bool warning, closure;

	if (n != 2)
		return bad(50);
	if (r[0] < 1 || r[0] > 2)
		return bad(47);
	warning = r[0] == 1;
	/* TLS 1.3 ignores the level of close_notify; TLS 1.2 needs a warning. */
	closure = r[1] == 0 && (m->v13 || warning);
	if (closure) {
		v.kind = TLSMSG_CLOSE_NOTIFY;
		return v;
	}
	if (m->v13 ? r[1] == 90 : warning) {
		m->run++;
		if (m->run >= 5)
			return bad(10);
		return v;
	}
	v.kind = TLSMSG_PEER_ALERT;
	v.alert = r[1];
	v.level = r[0];
	return v;
}

/* ---- the harness ---- */

static void check(const struct tlsmsg_event *ev, enum tlsmsg_kind kind, const struct verdict *v)
{
	FUZZ_CHECK(ev->kind == kind);
	FUZZ_CHECK(kind == v->kind);
	FUZZ_CHECK(ev->tickets == v->tickets || v->kind == TLSMSG_MALFORMED);
	if (v->kind == TLSMSG_MALFORMED || v->kind == TLSMSG_PEER_ALERT)
		FUZZ_CHECK(ev->alert == v->alert);
	if (v->kind == TLSMSG_PEER_ALERT)
		FUZZ_CHECK(ev->level == v->level);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct model mod;
	struct tlsmsg m;
	size_t off = 1;

	if (size < 1)
		return 0;
	memset(&mod, 0, sizeof(mod));
	mod.v13 = data[0] & 1;
	mod.from_server = data[0] & 2;
	tlsmsg_init(&m, mod.v13, mod.from_server);
	while (off < size) {
		uint8_t op = data[off++] % 5;
		struct tlsmsg_event ev;
		struct verdict v;
		size_t n = 0;
		uint8_t *rec;

		if (op <= 1 && off < size) {
			n = data[off++];
			if (n > size - off)
				n = size - off;
		}
		switch (op) {
		case 0:
		case 1:
			rec = malloc(n ? n : 1);
			FUZZ_CHECK(rec);
			memcpy(rec, data + off, n);
			off += n;
			if (op == 0) {
				v = model_handshake(&mod, rec, n);
				check(&ev, tlsmsg_handshake(&m, rec, n, &ev), &v);
			} else {
				v = model_alert(&mod, rec, n);
				check(&ev, tlsmsg_alert(&m, rec, n, &ev), &v);
			}
			free(rec);
			if (v.kind == TLSMSG_MALFORMED || v.kind == TLSMSG_PEER_ALERT ||
			    v.kind == TLSMSG_CLOSE_NOTIFY)
				return 0;	/* the hop's input ends here */
			break;
		case 2:
			tlsmsg_data(&m);
			mod.run = 0;
			break;
		case 3:
			tlsmsg_answer_sent(&m);
			mod.due = false;
			break;
		case 4:
			tlsmsg_close_sent(&m);
			mod.closed = true;
			break;
		}
		FUZZ_CHECK(tlsmsg_answer_due(&m) == (mod.due && !mod.closed));
		FUZZ_CHECK(tlsmsg_tx_closed(&m) == mod.closed);
	}
	return 0;
}
