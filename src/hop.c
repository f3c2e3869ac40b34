// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * hop.c - one hop's record engine behind one interface (hop.h): plaintext,
 * OpenSSL, tlsrec or kTLS, and the choice between them after a handshake.
 *
 * Each engine is a table of functions; the hop points at its table, and
 * the hop_*() entry points only dispatch and keep what every engine shares
 * (EOF already seen, SHUT_WR after close_notify). A new engine, or a new
 * operation on every engine, is a change in this file only.
 */
#include "config.h"

#include "pgktls/hop.h"

#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "pgktls/keysched.h"
#include "pgktls/log.h"
#include "pgktls/tls.h"
#include "pgktls/tlsrec.h"
#include "pgktls/tlv.h"

/* Records without data one kTLS read handles before it yields (as tlsrec and OpenSSL). */
#define KTLS_MAX_IDLE_RECORDS 32

static const struct hop_engine plain_engine, openssl_engine, tlsrec_engine, ktls_engine;

int hop_set_err(struct hop *h, int err, const char *what)
{
	snprintf(h->err, sizeof(h->err), "%s: %s", what, strerror(err));
	return -err;
}

static ssize_t set_err(struct hop *h, int err, const char *what)
{
	return hop_set_err(h, err, what);
}

/* ---- shared by the engines ---- */

/* Payload to the socket as it is: plain hops, and kTLS (the kernel seals it). */
static ssize_t sock_write(struct hop *h, const void *buf, size_t len)
{
	ssize_t n = send(h->fd, buf, len, MSG_NOSIGNAL);

	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EINTR)
		return -EAGAIN;
	return set_err(h, errno, "write");
}

static int no_flush(struct hop *h, struct stats *st)
{
	(void)h;
	(void)st;
	return 0;
}

static bool no_pending(const struct hop *h)
{
	(void)h;
	return false;
}

/* What the relay wants, plus what the engine's last read or write waits for. */
static uint32_t std_events(const struct hop *h, bool want_read, bool want_write)
{
	uint32_t ev = 0;

	if (want_read || h->wr_wants_read)
		ev |= EPOLLIN;
	if (want_write || h->rd_wants_write)
		ev |= EPOLLOUT;
	return ev;
}

static void summary_free(struct hop_tls_summary *sum)
{
	if (!sum)
		return;
	free(sum->sni);
	free(sum->peer_subject);
	free(sum->cipher_owned);
	free(sum);
}

/* The TLS facts of a live SSL. */
static void info_from_ssl(SSL *ssl, struct hop_info *o)
{
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;
	const char *sni;
	X509 *peer;

	o->tls = true;
	o->tls_done = SSL_is_init_finished(ssl);
	if (!o->tls_done)
		return;
	snprintf(o->version, sizeof(o->version), "%s", SSL_get_version(ssl));
	snprintf(o->cipher, sizeof(o->cipher), "%s", SSL_get_cipher_name(ssl));
	SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
	if (alpn && alpn_len < sizeof(o->alpn)) {
		memcpy(o->alpn, alpn, alpn_len);
		o->alpn[alpn_len] = '\0';
	}
	sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	if (sni)
		snprintf(o->sni, sizeof(o->sni), "%s", sni);
	peer = SSL_get0_peer_certificate(ssl);
	if (peer)
		X509_NAME_oneline(X509_get_subject_name(peer), o->peer_subject,
				  sizeof(o->peer_subject));
	o->peer_verified = tls_peer_verified(ssl);
}

/* The TLS facts of a hop whose SSL may be gone (tlsrec, kTLS): its summary then. */
static void info_tls(const struct hop *h, struct hop_info *o)
{
	const struct hop_tls_summary *s = h->summary;

	if (h->ssl) {
		info_from_ssl(h->ssl, o);
		return;
	}
	if (!s)
		return;
	o->tls = o->tls_done = true;
	snprintf(o->version, sizeof(o->version), "%s", s->version);
	snprintf(o->cipher, sizeof(o->cipher), "%s", s->cipher);
	snprintf(o->alpn, sizeof(o->alpn), "%s", s->alpn);
	if (s->sni)
		snprintf(o->sni, sizeof(o->sni), "%s", s->sni);
	if (s->peer_subject)
		snprintf(o->peer_subject, sizeof(o->peer_subject), "%s", s->peer_subject);
	o->peer_verified = s->peer_verified;
}

/* What the stats show of @h's TLS session once its SSL is gone; NULL on ENOMEM. */
static struct hop_tls_summary *summarize(SSL *ssl)
{
	struct hop_tls_summary *sum = calloc(1, sizeof(*sum));
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	X509 *peer = SSL_get0_peer_certificate(ssl);
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;

	if (!sum)
		return NULL;
	sum->version = SSL_get_version(ssl);
	sum->cipher = SSL_get_cipher_name(ssl);
	SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
	if (alpn && alpn_len < sizeof(sum->alpn))
		memcpy(sum->alpn, alpn, alpn_len);
	sum->peer_verified = tls_peer_verified(ssl);
	sum->sni = sni ? strdup(sni) : NULL;
	if (peer) {
		char subject[256];

		X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof(subject));
		sum->peer_subject = strdup(subject);
	}
	if ((sni && !sum->sni) || (peer && !sum->peer_subject)) {
		summary_free(sum);
		return NULL;
	}
	return sum;
}

/* Free the SSL, its captured kTLS secrets first. */
static void ssl_free(struct hop *h)
{
	if (!h->ssl)
		return;
	keysched_forget(h->ssl);
	SSL_free(h->ssl);
	h->ssl = NULL;
}

/* ---- plain: the socket is the stream ---- */

static ssize_t plain_read(struct hop *h, void *buf, size_t len, struct stats *st)
{
	ssize_t n = read(h->fd, buf, len);

	(void)st;
	if (n > 0)
		return n;
	if (n == 0) {
		h->rx_eof = true;
		h->clean_eof = true;
		return 0;
	}
	if (errno == EAGAIN || errno == EINTR)
		return -EAGAIN;
	return set_err(h, errno, "read");
}

static int plain_shutdown(struct hop *h)
{
	(void)h;
	return 0;
}

static void plain_info(const struct hop *h, struct hop_info *o)
{
	(void)h;
	(void)o;
}

static void plain_release(struct hop *h)
{
	(void)h;
}

/* Nothing beyond the hop's flags: the socket holds the stream. */
static int plain_export(const struct hop *h, struct tlv_writer *w)
{
	(void)w;
	return h->ssl ? -EOPNOTSUPP : 0;
}

static int plain_import(struct hop *h, const void *buf, size_t len)
{
	(void)h;
	(void)buf;
	(void)len;
	return 0;
}

static const struct hop_engine plain_engine = {
	.name = "plain",
	.read = plain_read,
	.write = sock_write,
	.shutdown = plain_shutdown,
	.flush = no_flush,
	.tx_ready = no_flush,
	.has_pending = no_pending,
	.events = std_events,
	.info = plain_info,
	.release = plain_release,
	.export = plain_export,
	.import = plain_import,
	.splice = HOP_SPLICE_STREAM,
};

/* ---- openssl: OpenSSL's record layer (the handshake, and where nothing else can) ---- */

/* Map an SSL_read/SSL_write failure to our convention. */
static ssize_t ssl_failure(struct hop *h, int ret, const char *op, bool reading)
{
	int e = SSL_get_error(h->ssl, ret);
	int saved = errno;
	char detail[128];

	switch (e) {
	case SSL_ERROR_WANT_READ:
		if (!reading)
			h->wr_wants_read = true;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		if (reading)
			h->rd_wants_write = true;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		h->rx_eof = true;
		h->clean_eof = true;
		return 0;
	case SSL_ERROR_SYSCALL:
		tls_drain_errors();
		if (saved == 0 || saved == ECONNRESET || saved == EPIPE) {
			if (reading) {
				/* The peer closed TCP without close_notify: EOF, but not clean. */
				h->rx_eof = true;
				return saved == 0 ? 0 : set_err(h, saved, op);
			}
		}
		return set_err(h, saved ? saved : EPIPE, op);
	default:
		if (reading &&
		    ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			tls_drain_errors();
			h->rx_eof = true;
			return 0;
		}
		tls_error_string(h->ssl, detail, sizeof(detail));
		snprintf(h->err, sizeof(h->err), "%s: %s", op, detail);
		return -EPROTO;
	}
}

static ssize_t openssl_read(struct hop *h, void *buf, size_t len, struct stats *st)
{
	int r;

	(void)st;
	h->rd_wants_write = false;
	r = SSL_read(h->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
	if (r > 0)
		return r;
	return ssl_failure(h, r, "TLS read", true);
}

static ssize_t openssl_write(struct hop *h, const void *buf, size_t len)
{
	int r;

	h->wr_wants_read = false;
	r = SSL_write(h->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
	if (r > 0)
		return r;
	return ssl_failure(h, r, "TLS write", false);
}

static int openssl_shutdown(struct hop *h)
{
	int r = SSL_shutdown(h->ssl);

	if (r < 0) {
		int e = SSL_get_error(h->ssl, r);

		if (e == SSL_ERROR_WANT_WRITE)
			return -EAGAIN;
		/* The peer is gone; there is nobody to notify. */
		tls_drain_errors();
	}
	return 0;
}

static bool openssl_has_pending(const struct hop *h)
{
	return SSL_has_pending(h->ssl);
}

static void openssl_release(struct hop *h)
{
	ssl_free(h);
}

static const struct hop_engine openssl_engine = {
	.name = "openssl",
	.read = openssl_read,
	.write = openssl_write,
	.shutdown = openssl_shutdown,
	.flush = no_flush,
	.tx_ready = no_flush,
	.has_pending = openssl_has_pending,
	.events = std_events,
	.info = info_tls,
	.release = openssl_release,
	.splice = HOP_SPLICE_NONE,
};

/* ---- tlsrec: pgktls's userspace record layer ---- */

static ssize_t tlsrec_engine_read(struct hop *h, void *buf, size_t len, struct stats *st)
{
	ssize_t n = tlsrec_read(h->rec, h->fd, buf, len, st, h->err, sizeof(h->err));

	/*
	 * Records it queued (a KeyUpdate answer) need the socket writable;
	 * so does a read that yielded with records still buffered: the
	 * next EPOLLOUT brings the relay back to them.
	 */
	h->rd_wants_write = tlsrec_wants_write(h->rec) || (n == -EAGAIN && tlsrec_yielded(h->rec));
	if (n == 0) {
		h->rx_eof = true;
		h->clean_eof = tlsrec_clean_eof(h->rec);
	}
	return n;
}

static ssize_t tlsrec_engine_write(struct hop *h, const void *buf, size_t len)
{
	return tlsrec_write(h->rec, h->fd, buf, len, h->stats, h->err, sizeof(h->err));
}

static int tlsrec_engine_shutdown(struct hop *h)
{
	/* A failure means the peer is gone: nobody to notify. */
	if (tlsrec_shutdown(h->rec, h->fd) == -EAGAIN)
		return -EAGAIN;
	return 0;
}

static int tlsrec_engine_flush(struct hop *h, struct stats *st)
{
	int r = tlsrec_flush(h->rec, h->fd);

	(void)st;
	h->rd_wants_write = tlsrec_wants_write(h->rec) || tlsrec_yielded(h->rec);
	if (r < 0 && r != -EAGAIN)
		return (int)set_err(h, -r, "TLS write");
	return 0;
}

static bool tlsrec_engine_has_pending(const struct hop *h)
{
	return tlsrec_has_pending(h->rec);
}

static void tlsrec_engine_release(struct hop *h)
{
	tlsrec_free(h->rec);
	h->rec = NULL;
	ssl_free(h);
}

static int tlsrec_engine_export(const struct hop *h, struct tlv_writer *w)
{
	return tlsrec_export(h->rec, w);
}

static int tlsrec_engine_import(struct hop *h, const void *buf, size_t len)
{
	return tlsrec_import(buf, len, &h->rec);
}

static const struct hop_engine tlsrec_engine = {
	.name = "tlsrec",
	.read = tlsrec_engine_read,
	.write = tlsrec_engine_write,
	.shutdown = tlsrec_engine_shutdown,
	.flush = tlsrec_engine_flush,
	.tx_ready = no_flush,
	.has_pending = tlsrec_engine_has_pending,
	.events = std_events,
	.info = info_tls,
	.release = tlsrec_engine_release,
	.export = tlsrec_engine_export,
	.import = tlsrec_engine_import,
	.splice = HOP_SPLICE_NONE,
};

/* ---- ktls: the kernel does the records, both directions ---- */

/* Set up the post-handshake state of a kTLS hop from its SSL, once. */
static void msg_setup(struct hop *h)
{
	if (h->msg_ready || !h->ssl)
		return;
	tlsmsg_init(&h->msg, SSL_version(h->ssl) == TLS1_3_VERSION, !SSL_is_server(h->ssl));
	h->msg_ready = true;
}

/*
 * A fatal alert to a kTLS peer (RFC 8446 6.2), as far as the socket takes
 * it, and nothing on @h after it. The kernel never sends alerts itself.
 */
static void ktls_fatal(struct hop *h, uint8_t desc)
{
	if (tlsmsg_tx_closed(&h->msg))
		return;
	tlsmsg_close_sent(&h->msg);
	if (ktls_send_alert(h->fd, TLSMSG_LEVEL_FATAL, desc) < 0)
		return;	/* best effort: the connection closes anyway */
}

static int key_update_refused(struct hop *h, struct stats *st)
{
	if (st)
		STAT_INC(st, tls_key_updates_refused);
	snprintf(h->err, sizeof(h->err),
		 "peer sent a TLS 1.3 KeyUpdate and this kernel cannot rekey "
		 "kTLS (needs Linux 6.14+); cap the hop at TLSv1.2 or set "
		 "ktls = off to keep such clients");
	return -EKEYREJECTED;
}

/*
 * The send key is spent and cannot change (TLS 1.2, or a kernel before
 * 6.14): the connection ends cleanly (conn.c closes it as key_update, with
 * close_notify under the unchanged key).
 */
static int key_limit_reached(struct hop *h, struct stats *st)
{
	if (st)
		STAT_INC(st, tls_key_limit_closes);
	snprintf(h->err, sizeof(h->err),
		 "kTLS send key reached its record limit (%llu records): %s",
		 (unsigned long long)h->txb.limit,
		 h->txb.tls13 ? "this kernel cannot rekey kTLS (needs Linux 6.14+)"
			      : "TLS 1.2 cannot change keys");
	return -EKEYEXPIRED;
}

/*
 * The KeyUpdate due on @h's kTLS send side, if any: an answer to the
 * peer's request, or our own once the send key has sealed its record
 * limit (ktls.h: struct ktls_tx_budget). It goes before any other record
 * in that direction (RFC 8446 4.6.3), so a socket that takes nothing now
 * leaves it due, and writes and splices to @h wait. One KeyUpdate of ours
 * answers every request so far and resets the budget alike.
 * Return: 0, -EAGAIN, or -errno with h->err set (-EKEYEXPIRED: the key
 * is spent and cannot change).
 */
static int ktls_answer(struct hop *h, struct stats *st)
{
	bool ours;
	int r;

	if (!h->txb.limit)
		ktls_tx_budget_init(&h->txb, h->ssl, h->ks);
	r = ktls_tx_budget_check(&h->txb, h->fd);
	if (r == -EKEYEXPIRED)
		return key_limit_reached(h, st);
	ours = r == KTLS_TX_REKEY;
	if (!ours && (!h->msg_ready || !tlsmsg_answer_due(&h->msg)))
		return 0;
	/* Nothing follows our close_notify; the records left are few. */
	if (h->msg_ready && tlsmsg_tx_closed(&h->msg))
		return 0;
	r = ktls_key_update_tx(h->ssl, h->ks, h->fd);
	if (r == -EAGAIN)
		return -EAGAIN;
	if (r == -EKEYREJECTED)
		return key_update_refused(h, st);
	if (r)
		return (int)set_err(h, -r, "TLS KeyUpdate answer");
	if (h->msg_ready)
		tlsmsg_answer_sent(&h->msg);
	ktls_tx_budget_rekeyed(&h->txb);
	if (ours && st)
		STAT_INC(st, tls_key_updates_sent);
	return 0;
}

/* A handshake record on kTLS RX: tlsmsg.c says what it asks for. */
static int ktls_handshake(struct hop *h, const uint8_t *m, size_t n, struct stats *st)
{
	struct tlsmsg_event ev;
	int r;

	switch (tlsmsg_handshake(&h->msg, m, n, &ev)) {
	case TLSMSG_MALFORMED:
		ktls_fatal(h, ev.alert);
		snprintf(h->err, sizeof(h->err), "post-handshake message refused (%s)",
			 tlsmsg_alert_name(ev.alert));
		return -EPROTO;
	case TLSMSG_KEY_UPDATE:
		r = ktls_key_update_rx(h->ssl, h->ks, h->fd);
		if (r == -EKEYREJECTED)
			return key_update_refused(h, st);
		if (r)
			return (int)set_err(h, -r, "TLS KeyUpdate");
		STAT_INC(st, tls_key_updates);
		r = ktls_answer(h, st);
		if (r && r != -EAGAIN)
			return r;
		/* A full socket: the answer waits for EPOLLOUT, even with no data behind it. */
		if (r == -EAGAIN)
			h->rd_wants_write = true;
		break;
	case TLSMSG_RENEGOTIATION:
		/*
		 * OpenSSL in userspace declines with a warning no_renegotiation
		 * alert and carries on; the kernel sends no alerts, so we do. A
		 * warning the socket cannot take now is dropped, not waited for.
		 */
		if (!tlsmsg_tx_closed(&h->msg)) {
			r = ktls_send_alert(h->fd, TLSMSG_LEVEL_WARNING,
					    TLSMSG_AD_NO_RENEGOTIATION);
			if (r < 0 && r != -EAGAIN)
				return (int)set_err(h, -r, "no_renegotiation alert");
		}
		break;
	default:
		break;
	}
	STAT_ADD(st, tls_tickets, ev.tickets);
	return 0;
}

/* kTLS RX: data records are payload; the rest are events to act on (tlsmsg.h). */
static ssize_t ktls_read(struct hop *h, void *buf, size_t len, struct stats *st)
{
	struct tlsmsg_event ev;
	int idle = 0;

	msg_setup(h);
	for (;;) {
		uint8_t type = 0;
		ssize_t n = ktls_recv_record(h->fd, buf, len, &type);
		int r;

		if (n == -EAGAIN)
			return -EAGAIN;
		if (n == -EBADMSG) {
			ktls_fatal(h, TLSMSG_AD_BAD_RECORD_MAC);
			return set_err(h, EBADMSG, "kTLS record failed authentication");
		}
		if (n == -EMSGSIZE) {
			ktls_fatal(h, TLSMSG_AD_RECORD_OVERFLOW);
			return set_err(h, EMSGSIZE, "kTLS record too large");
		}
		if (n < 0)
			return set_err(h, (int)-n, "kTLS recvmsg");
		if (type == 0 && n == 0) {
			/* TCP FIN without close_notify. */
			h->rx_eof = true;
			return 0;
		}
		if (type == KTLS_RECORD_DATA && n > 0) {
			tlsmsg_data(&h->msg);
			return n;
		}
		if (type == KTLS_RECORD_ALERT) {
			STAT_INC(st, tls_control_records);
			STAT_INC(st, tls_alerts);
			switch (tlsmsg_alert(&h->msg, buf, (size_t)n, &ev)) {
			case TLSMSG_CLOSE_NOTIFY:
				h->rx_eof = true;
				h->clean_eof = true;
				return 0;
			case TLSMSG_NONE:
				break;	/* a warning, ignored */
			case TLSMSG_PEER_ALERT:
				snprintf(h->err, sizeof(h->err), "peer sent TLS alert %u/%u (%s)",
					 ev.level, ev.alert, tlsmsg_alert_name(ev.alert));
				return -ECONNRESET;
			default:
				ktls_fatal(h, ev.alert);
				snprintf(h->err, sizeof(h->err), "TLS alert record refused (%s)",
					 tlsmsg_alert_name(ev.alert));
				return -EPROTO;
			}
		} else if (type == KTLS_RECORD_HANDSHAKE) {
			STAT_INC(st, tls_control_records);
			r = ktls_handshake(h, buf, (size_t)n, st);
			if (r)
				return r;
		} else if (type != KTLS_RECORD_DATA) {
			STAT_INC(st, tls_control_records);
			ktls_fatal(h, TLSMSG_AD_UNEXPECTED_MESSAGE);
			snprintf(h->err, sizeof(h->err), "unexpected TLS record type %u", type);
			return -EPROTO;
		}
		/*
		 * An empty data record (legal, not EOF) or a control record: after
		 * a few, yield; the socket is still readable, so the loop is back.
		 */
		if (++idle >= KTLS_MAX_IDLE_RECORDS)
			return -EAGAIN;
	}
}

static ssize_t ktls_write(struct hop *h, const void *buf, size_t len)
{
	ssize_t n;
	int r;

	msg_setup(h);
	if (h->msg_ready && tlsmsg_tx_closed(&h->msg))
		return set_err(h, EPIPE, "write after a fatal alert");
	/* A KeyUpdate (answer, or ours at the limit) goes first (RFC 8446 4.6.3). */
	r = ktls_answer(h, h->stats);
	if (r < 0)
		return r;
	n = sock_write(h, buf, len);
	if (n > 0)
		ktls_tx_budget_note(&h->txb, (size_t)n);
	return n;
}

static int ktls_shutdown(struct hop *h)
{
	int r;

	/* The kernel never sends alerts: close_notify is ours to send (not after a fatal one). */
	msg_setup(h);
	if (!tlsmsg_tx_closed(&h->msg)) {
		r = ktls_send_alert(h->fd, TLSMSG_LEVEL_WARNING, TLSMSG_AD_CLOSE_NOTIFY);
		if (r == -EAGAIN)
			return -EAGAIN;
		/* The peer's KeyUpdates are still followed, but never answered now. */
		tlsmsg_close_sent(&h->msg);
	}
	return 0;
}

/* A KeyUpdate answer that waited for the socket. */
static int ktls_flush(struct hop *h, struct stats *st)
{
	int r = ktls_answer(h, st);

	h->rd_wants_write = r == -EAGAIN;
	return r == -EAGAIN ? 0 : r;
}

static int ktls_tx_ready(struct hop *h, struct stats *st)
{
	return ktls_answer(h, st);
}

static void ktls_release(struct hop *h)
{
	keysched_session_free(h->ks);
	h->ks = NULL;
	ssl_free(h);
}

/*
 * What pgktls keeps beside the kernel's record state, which moves with the
 * socket itself: the session (for KeyUpdate), the post-handshake state (a
 * KeyUpdate answer still due after EAGAIN is tlsmsg's answer_due), the
 * send key's budget, and the kTLS facts for the stats.
 */
enum {
	KT_TAG_SESSION = 1 | TLV_MANDATORY,	/* keysched_session_export()'s list */
	KT_TAG_MSG = 2 | TLV_MANDATORY,		/* tlsmsg_save()'s image */
	KT_TAG_BUDGET = 3 | TLV_MANDATORY,	/* u64 records, u64 limit (0: not set up) */
	KT_TAG_STATE = 4,			/* rx, tx, rx_reason, tx_reason, u32 err: stats */
};

static int ktls_export(const struct hop *h, struct tlv_writer *w)
{
	uint8_t msg[TLSMSG_SAVED_LEN], budget[16], st[8];
	long at;
	int r;

	/* Only once the SSL is gone: its secrets would have to be detached first. */
	if (h->ssl || !h->ks || !h->msg_ready)
		return -EOPNOTSUPP;
	at = tlv_begin(w, KT_TAG_SESSION);
	if (at < 0)
		return (int)at;
	r = keysched_session_export(h->ks, w);
	if (r)
		return r;
	tlv_end(w, at);
	tlsmsg_save(&h->msg, msg);
	tlv_put(w, KT_TAG_MSG, msg, sizeof(msg));
	for (int i = 0; i < 8; i++) {
		budget[i] = (uint8_t)(h->txb.records >> (8 * i));
		budget[8 + i] = (uint8_t)(h->txb.limit >> (8 * i));
	}
	tlv_put(w, KT_TAG_BUDGET, budget, sizeof(budget));
	st[0] = h->ktls.rx;
	st[1] = h->ktls.tx;
	st[2] = h->ktls.rx_reason;
	st[3] = h->ktls.tx_reason;
	for (int i = 0; i < 4; i++)
		st[4 + i] = (uint8_t)((uint32_t)h->ktls.err >> (8 * i));
	tlv_put(w, KT_TAG_STATE, st, sizeof(st));
	return tlv_writer_err(w);
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int ktls_import(struct hop *h, const void *buf, size_t len)
{
	struct tlv_field f[] = {
		{ .tag = KT_TAG_SESSION, .max_len = TLV_MAX_VALUE, .required = true },
		{ .tag = KT_TAG_MSG, .min_len = TLSMSG_SAVED_LEN, .max_len = TLSMSG_SAVED_LEN,
		  .required = true },
		{ .tag = KT_TAG_BUDGET, .min_len = 16, .max_len = 16, .required = true },
		{ .tag = KT_TAG_STATE, .min_len = 8, .max_len = 8 },
	};
	struct keysched_session *ks;
	uint64_t records, limit;
	int r;

	r = tlv_parse(buf, len, f, PGKTLS_ARRAY_SIZE(f));
	if (r)
		return r;
	if (f[3].seen && (f[3].val[0] > KTLS_ENGINE_KERNEL || f[3].val[1] > KTLS_ENGINE_KERNEL ||
			  f[3].val[2] >= KTLS__NREASONS || f[3].val[3] >= KTLS__NREASONS))
		return -EBADMSG;
	r = keysched_session_import(f[0].val, f[0].len, &ks);
	if (r)
		return r;
	r = tlsmsg_restore(&h->msg, ks->version == TLS1_3_VERSION, !ks->is_server, f[1].val);
	if (r) {
		keysched_session_free(ks);
		return r;
	}
	h->ks = ks;
	h->msg_ready = true;
	records = le64(f[2].val);
	limit = le64(f[2].val + 8);
	memset(&h->txb, 0, sizeof(h->txb));
	/* The cipher's entry and the version come from the session, as at first. */
	if (limit) {
		ktls_tx_budget_init(&h->txb, NULL, ks);
		h->txb.limit = limit;
		h->txb.records = records;
	}
	if (f[3].seen) {
		h->ktls.rx = f[3].val[0];
		h->ktls.tx = f[3].val[1];
		h->ktls.rx_reason = f[3].val[2];
		h->ktls.tx_reason = f[3].val[3];
		h->ktls.err = (int)((uint32_t)f[3].val[4] | (uint32_t)f[3].val[5] << 8 |
				    (uint32_t)f[3].val[6] << 16 | (uint32_t)f[3].val[7] << 24);
	}
	return 0;
}

static const struct hop_engine ktls_engine = {
	.name = "ktls",
	.read = ktls_read,
	.write = ktls_write,
	.shutdown = ktls_shutdown,
	.flush = ktls_flush,
	.tx_ready = ktls_tx_ready,
	.has_pending = no_pending,
	.events = std_events,
	.info = info_tls,
	.release = ktls_release,
	.export = ktls_export,
	.import = ktls_import,
	.splice = HOP_SPLICE_RECORDS,
};

/* ---- the interface ---- */

void hop_init(struct hop *h, int fd, const char *name, bool is_tcp)
{
	memset(h, 0, sizeof(*h));
	h->fd = fd;
	h->eng = &plain_engine;
	h->name = name;
	h->is_tcp = is_tcp;
	h->io.fd = -1;
}

void hop_start_tls(struct hop *h, SSL *ssl)
{
	h->ssl = ssl;
	h->eng = &openssl_engine;
}

int hop_handshake(struct hop *h, struct hop_hs_result *res)
{
	int r, e;

	memset(res, 0, sizeof(*res));
	tls_drain_errors();
	r = SSL_do_handshake(h->ssl);
	if (r == 1)
		return 0;
	e = SSL_get_error(h->ssl, r);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		res->events = EPOLLIN;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		res->events = EPOLLOUT;
		return -EAGAIN;
	default:
		if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN)
			res->kind = STATS_HS_FAIL_EOF;
		else if (SSL_get_verify_result(h->ssl) != X509_V_OK)
			res->kind = STATS_HS_FAIL_VERIFY;
		else
			res->kind = STATS_HS_FAIL_PROTOCOL;
		res->revoked = SSL_get_verify_result(h->ssl) == X509_V_ERR_CERT_REVOKED;
		/* With a revoked certificate, the text names it (subject and serial). */
		tls_error_string(h->ssl, res->detail, sizeof(res->detail));
		return -EPROTO;
	}
}

/*
 * OpenSSL reads records in userspace for good: let it read ahead, one
 * read(2) per burst instead of two per record (header, then body), into a
 * buffer that holds a relay batch of records. Safe only once no switch to
 * the kernel can follow (it must find OpenSSL empty). With
 * SSL_MODE_RELEASE_BUFFERS the buffer exists only while it holds bytes.
 */
static void read_ahead(struct hop *h)
{
	SSL_set_default_read_buffer_len(h->ssl,
					HOP_READ_AHEAD + 4 * SSL3_RT_MAX_ENCRYPTED_OVERHEAD);
	SSL_set_read_ahead(h->ssl, 1);
}

/*
 * A hop whose records stay in userspace: pgktls's own record layer takes
 * over from OpenSSL's and the SSL is freed (2.5 KB per idle hop instead of
 * 13 KB or more). Where it cannot (a cipher or version it does not do,
 * bytes already inside OpenSSL), or openssl_records is set, OpenSSL
 * carries on, reading ahead.
 */
static void userspace_records(struct hop *h, const struct hop_policy *p)
{
	int r;

	if (!p->openssl_records) {
		r = hop_use_tlsrec(h);
		if (r == 0)
			return;
		log_debug("%s hop: OpenSSL keeps the records: %s", h->name, strerror(-r));
	}
	read_ahead(h);
}

int hop_engage(struct hop *h, const struct hop_policy *p)
{
	struct ktls_hop_state *k = &h->ktls;
	int r;

	k->rx = k->tx = KTLS_ENGINE_USERSPACE;
	k->rx_reason = k->tx_reason = KTLS_R_NONE;
	if (p->ktls == CFG_KTLS_OFF) {
		k->rx_reason = k->tx_reason = KTLS_R_DISABLED;
		userspace_records(h, p);
		return 0;
	}
	if (!p->kernel_tls) {
		k->rx_reason = k->tx_reason = KTLS_R_NO_KERNEL;
	} else {
		r = ktls_install(h->ssl, h->fd, k);
		if (r == -ENOTRECOVERABLE)
			return -ENOTRECOVERABLE;	/* RX in the kernel, TX not: see ktls.h */
		if (r == 0) {
			PGKTLS_BUG_ON(k->rx != KTLS_ENGINE_KERNEL || k->tx != KTLS_ENGINE_KERNEL);
			h->eng = &ktls_engine;
			/* OpenSSL's state is dead weight now: keep only what kTLS needs. */
			if (hop_release_ssl(h) < 0)
				log_debug("%s hop: keeping the SSL (out of memory)", h->name);
			return 0;
		}
	}
	/*
	 * Nothing is in the kernel (ktls_install() promises it: both
	 * directions or neither), so the records stay in userspace.
	 */
	if (k->rx != KTLS_ENGINE_USERSPACE || k->tx != KTLS_ENGINE_USERSPACE)
		return -ENOTRECOVERABLE;
	userspace_records(h, p);
	return p->ktls == CFG_KTLS_REQUIRED ? -EOPNOTSUPP : 0;
}

ssize_t hop_read(struct hop *h, void *buf, size_t len, struct stats *st)
{
	if (h->rx_eof)
		return 0;
	return h->eng->read(h, buf, len, st);
}

ssize_t hop_write(struct hop *h, const void *buf, size_t len)
{
	return h->eng->write(h, buf, len);
}

bool hop_tx_partial(const struct hop *h)
{
	if (h->rec)
		return tlsrec_tx_partial(h->rec);
	/* OpenSSL keeps a record half sent the same way (SSL_write's retry contract). */
	return h->eng == &openssl_engine && SSL_want_write(h->ssl);
}

int hop_shutdown_write(struct hop *h)
{
	int r;

	if (h->tx_shut)
		return 0;
	r = h->eng->shutdown(h);
	if (r == -EAGAIN)
		return -EAGAIN;
	h->tx_shut = true;
	if (shutdown(h->fd, SHUT_WR) == -1 && errno != ENOTCONN)
		return -errno;
	return 0;
}

int hop_flush(struct hop *h, struct stats *st)
{
	return h->eng->flush(h, st);
}

int hop_tx_ready(struct hop *h, struct stats *st)
{
	return h->eng->tx_ready(h, st);
}

bool hop_has_pending(const struct hop *h)
{
	return h->eng->has_pending(h);
}

void hop_spliced_in(struct hop *h)
{
	/* Data ends a run of ignored warning alerts, spliced or not (tlsmsg.h). */
	if (h->msg_ready)
		tlsmsg_data(&h->msg);
}

void hop_spliced_out(struct hop *h, size_t n)
{
	if (h->eng == &ktls_engine)
		ktls_tx_budget_note(&h->txb, n);
}

int hop_splice_end(struct hop *h, int err)
{
	if (h->eng->splice == HOP_SPLICE_RECORDS && (err == 0 || err == EINVAL))
		return 1;
	if (err == 0) {
		h->rx_eof = true;
		h->clean_eof = true;
		return 0;
	}
	/*
	 * On the data path a record that fails authentication shows up here,
	 * not in ktls_read(): name it the same way, so the log says what
	 * happened (a corrupted or forged record), not just "Bad message".
	 */
	if (h->eng->splice == HOP_SPLICE_RECORDS && err == EBADMSG)
		return hop_set_err(h, EBADMSG, "kTLS record failed authentication");
	return hop_set_err(h, err, "splice from socket");
}

void hop_info(const struct hop *h, struct hop_info *out)
{
	memset(out, 0, sizeof(*out));
	out->engine = h->eng->name;
	out->ktls = h->ktls;
	h->eng->info(h, out);
}

ssize_t hop_peek(struct hop *h, void *buf, size_t len)
{
	ssize_t n = recv(h->fd, buf, len, MSG_PEEK);

	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EINTR)
		return -EAGAIN;
	return -errno;
}

bool hop_has_unread(const struct hop *h)
{
	int avail = 0;

	return ioctl(h->fd, FIONREAD, &avail) == 0 && avail > 0;
}

int hop_release_ssl(struct hop *h)
{
	struct hop_tls_summary *sum = summarize(h->ssl);
	struct keysched_session *ks;

	msg_setup(h);
	if (!sum)
		return -ENOMEM;
	/* Detach last: it moves the secrets out, so nothing may fail after it. */
	ks = keysched_detach(h->ssl);
	if (!ks) {
		summary_free(sum);
		return -ENOMEM;
	}
	h->ks = ks;
	h->summary = sum;
	SSL_free(h->ssl);
	h->ssl = NULL;
	return 0;
}

int hop_use_tlsrec(struct hop *h)
{
	struct hop_tls_summary *sum = summarize(h->ssl);
	int r;

	if (!sum)
		return -ENOMEM;
	/* Last: on success the secrets have moved out of the SSL. */
	r = tlsrec_new(h->ssl, &h->rec);
	if (r < 0) {
		summary_free(sum);
		return r;
	}
	h->summary = sum;
	h->eng = &tlsrec_engine;
	/* Anything queued for OpenSSL's peer went out during the handshake. */
	SSL_free(h->ssl);
	h->ssl = NULL;
	h->rd_wants_write = h->wr_wants_read = false;
	return 0;
}

void hop_close(struct ev_loop *loop, struct hop *h)
{
	if (h->io.fd >= 0)
		ev_io_stop(loop, &h->io);
	h->eng->release(h);
	/* Whatever the engine, nothing it held may outlive the hop. */
	ssl_free(h);
	keysched_session_free(h->ks);
	h->ks = NULL;
	tlsrec_free(h->rec);
	h->rec = NULL;
	summary_free(h->summary);
	h->summary = NULL;
	h->eng = &plain_engine;
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	h->io.fd = -1;
}

uint32_t hop_events(const struct hop *h, bool want_read, bool want_write)
{
	return h->eng->events(h, want_read, want_write);
}

/* ---- moving a hop to another process (binary upgrade) ---- */

/* Tags of hop_export()'s list. */
enum {
	HOP_TAG_ENGINE = 1 | TLV_MANDATORY,	/* the engine's name */
	HOP_TAG_FLAGS = 2 | TLV_MANDATORY,	/* u8: HOP_F_* */
	HOP_TAG_STATE = 3 | TLV_MANDATORY,	/* the engine's export() list */
	/* The TLS summary: for the stats only, so a reader may skip it. */
	HOP_TAG_VERSION = 4,
	HOP_TAG_CIPHER = 5,
	HOP_TAG_ALPN = 6,
	HOP_TAG_SNI = 7,
	HOP_TAG_PEER = 8,
	HOP_TAG_VERIFIED = 9,
};

#define HOP_F_TCP (1u << 0)
#define HOP_F_RX_EOF (1u << 1)
#define HOP_F_TX_SHUT (1u << 2)
#define HOP_F_CLEAN_EOF (1u << 3)
#define HOP_F_RD_WANTS_WRITE (1u << 4)
#define HOP_F_WR_WANTS_READ (1u << 5)
#define HOP_F_ALL ((1u << 6) - 1)

/* The engines a hop can move with, by name. */
static const struct hop_engine *const movable_engines[] = { &plain_engine, &tlsrec_engine,
							   &ktls_engine };

bool hop_movable(const struct hop *h)
{
	if (!h->eng->export || (h->eng == &plain_engine && h->ssl))
		return false;
	/* kTLS: once its SSL is freed (hop_release_ssl()), which it is unless memory ran out. */
	return h->eng != &ktls_engine || (!h->ssl && h->ks && h->msg_ready);
}

static void summary_export(const struct hop_tls_summary *s, struct tlv_writer *w)
{
	tlv_put(w, HOP_TAG_VERSION, s->version, strlen(s->version));
	tlv_put(w, HOP_TAG_CIPHER, s->cipher, strlen(s->cipher));
	tlv_put(w, HOP_TAG_ALPN, s->alpn, strnlen(s->alpn, sizeof(s->alpn)));
	if (s->sni)
		tlv_put(w, HOP_TAG_SNI, s->sni, strlen(s->sni));
	if (s->peer_subject)
		tlv_put(w, HOP_TAG_PEER, s->peer_subject, strlen(s->peer_subject));
	tlv_put_u8(w, HOP_TAG_VERIFIED, s->peer_verified);
}

int hop_export(const struct hop *h, struct tlv_writer *w)
{
	struct tlv_writer sw;
	uint8_t flags = 0;
	int r;

	if (!hop_movable(h))
		return -EOPNOTSUPP;
	flags |= h->is_tcp ? HOP_F_TCP : 0;
	flags |= h->rx_eof ? HOP_F_RX_EOF : 0;
	flags |= h->tx_shut ? HOP_F_TX_SHUT : 0;
	flags |= h->clean_eof ? HOP_F_CLEAN_EOF : 0;
	flags |= h->rd_wants_write ? HOP_F_RD_WANTS_WRITE : 0;
	flags |= h->wr_wants_read ? HOP_F_WR_WANTS_READ : 0;
	tlv_put(w, HOP_TAG_ENGINE, h->eng->name, strlen(h->eng->name));
	tlv_put_u8(w, HOP_TAG_FLAGS, flags);
	/* The engine's list can outgrow one TLV value (tlsrec's read-ahead alone is 66 KB). */
	tlv_chunked_begin(w, &sw);
	r = tlv_chunked_end(w, &sw, HOP_TAG_STATE, h->eng->export(h, &sw));
	if (r)
		return r;
	if (h->summary)
		summary_export(h->summary, w);
	return tlv_writer_err(w);
}

/* A copy of a found field's bytes as a string; NULL if absent or ENOMEM (*oom set). */
static char *field_dup(const struct tlv_field *f, bool *oom)
{
	char *s;

	if (!f->seen)
		return NULL;
	s = strndup((const char *)f->val, f->len);
	if (!s)
		*oom = true;
	return s;
}

/* The summary from its fields (f[0] version .. f[5] verified); NULL on ENOMEM. */
static struct hop_tls_summary *summary_import(const struct tlv_field *f)
{
	static const char *const versions[] = { "TLSv1.2", "TLSv1.3" };
	struct hop_tls_summary *s = calloc(1, sizeof(*s));
	bool oom = false;

	if (!s)
		return NULL;
	/* OpenSSL's static names (SSL_get_version()), which the summary points to. */
	s->version = "";
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(versions); i++)
		if (f[0].len == strlen(versions[i]) && !memcmp(f[0].val, versions[i], f[0].len))
			s->version = versions[i];
	s->cipher_owned = field_dup(&f[1], &oom);
	s->cipher = s->cipher_owned ? s->cipher_owned : "";
	if (f[2].seen)
		memcpy(s->alpn, f[2].val, f[2].len);
	s->sni = field_dup(&f[3], &oom);
	s->peer_subject = field_dup(&f[4], &oom);
	s->peer_verified = f[5].seen && tlv_u8(&f[5]);
	if (oom) {
		summary_free(s);
		return NULL;
	}
	return s;
}

int hop_import(struct hop *h, int fd, const char *name, const void *buf, size_t len)
{
	enum { F_ENGINE, F_FLAGS, F_STATE, F_VERSION, F_CIPHER, F_ALPN, F_SNI, F_PEER,
	       F_VERIFIED, F_N };
	struct tlv_field f[F_N] = {
		[F_ENGINE] = { .tag = HOP_TAG_ENGINE, .min_len = 1, .max_len = 16,
			       .required = true },
		[F_FLAGS] = { .tag = HOP_TAG_FLAGS, .min_len = 1, .max_len = 1, .required = true },
		[F_STATE] = { .tag = HOP_TAG_STATE, .min_len = 1, .max_len = TLV_MAX_VALUE,
			      .repeat = true },
		[F_VERSION] = { .tag = HOP_TAG_VERSION, .max_len = 16 },
		[F_CIPHER] = { .tag = HOP_TAG_CIPHER, .max_len = 63 },
		[F_ALPN] = { .tag = HOP_TAG_ALPN, .max_len = sizeof(h->summary->alpn) - 1 },
		[F_SNI] = { .tag = HOP_TAG_SNI, .max_len = 255 },
		[F_PEER] = { .tag = HOP_TAG_PEER, .max_len = 255 },
		[F_VERIFIED] = { .tag = HOP_TAG_VERIFIED, .min_len = 1, .max_len = 1 },
	};
	const struct hop_engine *eng = NULL;
	uint8_t *state, flags;
	long n;
	int r;

	hop_init(h, fd, name, false);
	r = tlv_parse(buf, len, f, F_N);
	if (r)
		return r;
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(movable_engines); i++)
		if (strlen(movable_engines[i]->name) == f[F_ENGINE].len &&
		    !memcmp(movable_engines[i]->name, f[F_ENGINE].val, f[F_ENGINE].len))
			eng = movable_engines[i];
	if (!eng)
		return -EOPNOTSUPP;
	flags = tlv_u8(&f[F_FLAGS]);
	if (flags & ~HOP_F_ALL)
		return -EBADMSG;
	/* The engine's list, joined from its chunks (hop_export()). */
	state = malloc(f[F_STATE].total ? f[F_STATE].total : 1);
	if (!state)
		return -ENOMEM;
	n = tlv_gather(buf, len, HOP_TAG_STATE, state, f[F_STATE].total);
	r = n < 0 ? (int)n : eng->import(h, state, (size_t)n);
	OPENSSL_cleanse(state, f[F_STATE].total);
	free(state);
	if (r)
		return r;
	h->eng = eng;
	h->is_tcp = flags & HOP_F_TCP;
	h->rx_eof = flags & HOP_F_RX_EOF;
	h->tx_shut = flags & HOP_F_TX_SHUT;
	h->clean_eof = flags & HOP_F_CLEAN_EOF;
	h->rd_wants_write = flags & HOP_F_RD_WANTS_WRITE;
	h->wr_wants_read = flags & HOP_F_WR_WANTS_READ;
	if (eng != &plain_engine) {
		h->summary = summary_import(f + F_VERSION);
		if (!h->summary) {
			eng->release(h);
			h->eng = &plain_engine;
			return -ENOMEM;
		}
	}
	return 0;
}
