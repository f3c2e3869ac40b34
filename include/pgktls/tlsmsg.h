/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * tlsmsg.h - what a peer's control records mean once the handshake is done,
 * with no I/O: the one place where post-handshake handshake messages and
 * alerts are checked, for both record engines (tlsrec.c in userspace and the
 * kTLS control-record path in relay.c).
 *
 * The caller opens a record (or the kernel does), hands its plaintext to
 * tlsmsg_handshake() or tlsmsg_alert(), and acts on the event: rekey its
 * receive side, send one KeyUpdate answer, decline a renegotiation, close,
 * or send the fatal alert the event names. The rules, checked here once:
 *
 *  - Per version and direction (RFC 8446 4.6, RFC 5246 7.4.1): a
 *    NewSessionTicket only from a TLS 1.3 server, and well formed; a
 *    KeyUpdate only under TLS 1.3, with a body of one byte that is 0 or 1,
 *    and last in its record (RFC 8446 5.1: a key change ends the record); a
 *    HelloRequest (empty) only from a TLS 1.2 server, a ClientHello only from
 *    a TLS 1.2 client: renegotiation requests, declined with a warning
 *    no_renegotiation alert as OpenSSL does. Anything else, an empty record,
 *    or a message cut off at the end of its record (pgktls does not
 *    reassemble handshake messages across records) is refused with the
 *    alert RFC 8446 6.2 names (unexpected_message, decode_error,
 *    illegal_parameter).
 *  - Alerts are two bytes, level 1 or 2 (else decode_error or
 *    illegal_parameter). close_notify ends the peer's side: under TLS 1.3
 *    at either level (RFC 8446 6: the level is ignored), under TLS 1.2 as a
 *    warning (a fatal close_notify is a fatal alert, as for OpenSSL). TLS
 *    1.3's other closure alert, user_canceled, and TLS 1.2 warning alerts
 *    other than close_notify are ignored, as OpenSSL ignores them, but at
 *    most TLSMSG_MAX_WARNINGS in a row without application data between
 *    them (OpenSSL's MAX_WARN_ALERT_COUNT): then unexpected_message. Every
 *    other alert is fatal (under TLS 1.3 whatever its level).
 *  - One answer for a burst of KeyUpdate requests (RFC 8446 4.6.3: an
 *    implementation that receives several while silent responds with a
 *    single update): a request sets an answer due; the engine sends it before
 *    its next record and calls tlsmsg_answer_sent(). Once our close_notify
 *    is out (tlsmsg_close_sent()) no answer is due any more, though the
 *    peer's key changes are still followed.
 */
#ifndef PGKTLS_TLSMSG_H
#define PGKTLS_TLSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Record content types (RFC 8446 5.1). */
#define TLSMSG_TYPE_ALERT 21
#define TLSMSG_TYPE_HANDSHAKE 22
#define TLSMSG_TYPE_DATA 23

/* Handshake message types seen after the handshake. */
#define TLSMSG_HS_HELLO_REQUEST 0
#define TLSMSG_HS_CLIENT_HELLO 1
#define TLSMSG_HS_NEW_SESSION_TICKET 4
#define TLSMSG_HS_KEY_UPDATE 24

/* Alert levels and the descriptions pgktls sends or tells apart (RFC 8446 6). */
#define TLSMSG_LEVEL_WARNING 1
#define TLSMSG_LEVEL_FATAL 2
#define TLSMSG_AD_CLOSE_NOTIFY 0
#define TLSMSG_AD_UNEXPECTED_MESSAGE 10
#define TLSMSG_AD_BAD_RECORD_MAC 20
#define TLSMSG_AD_RECORD_OVERFLOW 22
#define TLSMSG_AD_ILLEGAL_PARAMETER 47
#define TLSMSG_AD_DECODE_ERROR 50
#define TLSMSG_AD_PROTOCOL_VERSION 70
#define TLSMSG_AD_USER_CANCELED 90
#define TLSMSG_AD_NO_RENEGOTIATION 100

/* Warning alerts ignored in a row before the peer is cut off (OpenSSL's limit). */
#define TLSMSG_MAX_WARNINGS 5

/* What one control record asks of the engine. */
enum tlsmsg_kind {
	TLSMSG_NONE,		/* nothing (tickets, an ignored warning alert) */
	TLSMSG_KEY_UPDATE,	/* the peer's send key moved on: rekey our receive side */
	TLSMSG_RENEGOTIATION,	/* TLS 1.2: decline with a warning no_renegotiation */
	TLSMSG_CLOSE_NOTIFY,	/* the peer closed its side, cleanly */
	TLSMSG_PEER_ALERT,	/* the peer sent a fatal alert: the connection is over */
	TLSMSG_MALFORMED,	/* a protocol violation: send fatal alert @alert and close */
};

/**
 * struct tlsmsg_event - the outcome of one control record.
 * @kind: what to do
 * @alert: %TLSMSG_MALFORMED: the fatal alert to send; %TLSMSG_PEER_ALERT:
 *	the description the peer sent (with @level)
 * @level: %TLSMSG_PEER_ALERT: the level the peer sent
 * @tickets: NewSessionTickets in the record (counted, never kept)
 */
struct tlsmsg_event {
	enum tlsmsg_kind kind;
	uint8_t alert;
	uint8_t level;
	uint16_t tickets;
};

/**
 * struct tlsmsg - the post-handshake state of one hop; embed it, set it up
 * with tlsmsg_init(). Its fields are private to tlsmsg.c.
 */
struct tlsmsg {
	bool tls13;
	bool peer_is_server;
	bool answer_due;	/* a KeyUpdate request is unanswered */
	bool tx_closed;		/* our close_notify (or a fatal alert) is out */
	uint8_t warnings;	/* warning alerts in a row */
};

/**
 * tlsmsg_init() - start the post-handshake state of a hop.
 * @tls13: the hop negotiated TLS 1.3 (else TLS 1.2)
 * @peer_is_server: the peer is the TLS server (we are the client)
 */
void tlsmsg_init(struct tlsmsg *m, bool tls13, bool peer_is_server);

/**
 * tlsmsg_handshake() - check a handshake record's plaintext.
 * @rec: the record's content (one or more whole messages)
 * @len: its length
 * @ev: out: the event (%TLSMSG_NONE, %TLSMSG_KEY_UPDATE, %TLSMSG_RENEGOTIATION
 *	or %TLSMSG_MALFORMED), with the tickets counted
 *
 * A KeyUpdate with update_requested makes an answer due (tlsmsg_answer_due()).
 *
 * Return: @ev->kind.
 */
enum tlsmsg_kind tlsmsg_handshake(struct tlsmsg *m, const uint8_t *rec, size_t len,
				  struct tlsmsg_event *ev);

/**
 * tlsmsg_alert() - check an alert record's plaintext.
 * @ev: out: %TLSMSG_NONE (ignored warning), %TLSMSG_CLOSE_NOTIFY,
 *	%TLSMSG_PEER_ALERT or %TLSMSG_MALFORMED
 *
 * Return: @ev->kind.
 */
enum tlsmsg_kind tlsmsg_alert(struct tlsmsg *m, const uint8_t *rec, size_t len,
			      struct tlsmsg_event *ev);

/** tlsmsg_data() - application data arrived: the run of ignored warnings ends. */
void tlsmsg_data(struct tlsmsg *m);

/**
 * tlsmsg_answer_due() - whether a KeyUpdate(update_not_requested) must go
 * out before our next record: the peer asked since we last sent one, and
 * our close_notify is not out.
 */
bool tlsmsg_answer_due(const struct tlsmsg *m);

/** tlsmsg_answer_sent() - our KeyUpdate is queued and our send key moved on. */
void tlsmsg_answer_sent(struct tlsmsg *m);

/**
 * tlsmsg_close_sent() - our close_notify (or a fatal alert) is queued:
 * nothing more may be sent on this hop, KeyUpdate answers and
 * no_renegotiation warnings included.
 */
void tlsmsg_close_sent(struct tlsmsg *m);

/** tlsmsg_tx_closed() - whether tlsmsg_close_sent() was called. */
bool tlsmsg_tx_closed(const struct tlsmsg *m);

/** tlsmsg_alert_name() - the RFC name of alert description @desc, for logs. */
const char *tlsmsg_alert_name(uint8_t desc);

/* Bytes of tlsmsg_save()'s image. */
#define TLSMSG_SAVED_LEN 3

/**
 * tlsmsg_save() - the mutable state of @m (answer due, closed, warnings in
 * a row) as TLSMSG_SAVED_LEN bytes, for a binary upgrade; the version and
 * the peer's role are the engine's to carry.
 */
void tlsmsg_save(const struct tlsmsg *m, uint8_t out[TLSMSG_SAVED_LEN]);

/**
 * tlsmsg_restore() - tlsmsg_init() with @tls13 and @peer_is_server, then
 * the state tlsmsg_save() wrote into @in.
 * Return: 0, or -EBADMSG (a flag other than 0 or 1, more warnings than
 * TLSMSG_MAX_WARNINGS, an answer due under TLS 1.2); @m is then as
 * tlsmsg_init() left it.
 */
int tlsmsg_restore(struct tlsmsg *m, bool tls13, bool peer_is_server,
		   const uint8_t in[TLSMSG_SAVED_LEN]);

#endif /* PGKTLS_TLSMSG_H */
