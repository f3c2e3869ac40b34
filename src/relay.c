// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * relay.c - hop I/O (plaintext, OpenSSL, or kTLS per direction) and the
 * two-way pump between a connection's hops.
 *
 * The pump reads each source into a worker-wide scratch buffer and writes
 * straight through to the destination; only what the destination will not
 * take yet is copied into the connection's own buffer, and while that
 * buffer holds data its source is not read. An idle connection therefore
 * holds no relay buffer at all.
 */
#include "config.h"

#include "pgktls/relay.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "pgktls/keysched.h"
#include "pgktls/pgproto.h"
#include "pgktls/stats.h"
#include "pgktls/tls.h"
#include "pgktls/tlsrec.h"

/* Passes over both directions per wakeup: bounds the time one connection holds the loop. */
#define RELAY_MAX_PASSES 64
/* Bytes asked of one splice into the pipe (the pipe holds 64 KB by default). */
#define RELAY_PIPE_SIZE 65536u

void hop_init(struct hop *h, int fd, const char *name, bool is_tcp)
{
	memset(h, 0, sizeof(*h));
	h->fd = fd;
	h->name = name;
	h->is_tcp = is_tcp;
	h->io.fd = -1;
}

static bool rx_in_kernel(const struct hop *h)
{
	return h->ktls.rx == KTLS_ENGINE_KERNEL;
}

static bool tx_in_kernel(const struct hop *h)
{
	return h->ktls.tx == KTLS_ENGINE_KERNEL;
}

static ssize_t set_err(struct hop *h, int err, const char *what)
{
	snprintf(h->err, sizeof(h->err), "%s: %s", what, strerror(err));
	return -err;
}

/* Map an SSL_read/SSL_write/SSL_shutdown failure to our convention. */
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

/* Records without data one kTLS read handles before it yields (as tlsrec and OpenSSL). */
#define KTLS_MAX_IDLE_RECORDS 32

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
	if (!tx_in_kernel(h) || tlsmsg_tx_closed(&h->msg))
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
 * The KeyUpdate answer due on @h's kTLS send side, if any: it goes before
 * any other record in that direction (RFC 8446 4.6.3), so a socket that
 * takes nothing now leaves it due, and writes and splices to @h wait.
 * Return: 0, -EAGAIN, or -errno with h->err set.
 */
static int ktls_answer(struct hop *h, struct stats *st)
{
	int r;

	if (!h->msg_ready || !tlsmsg_answer_due(&h->msg))
		return 0;
	if (!tx_in_kernel(h)) {
		/* Never write a record the kernel did not seal into the stream. */
		snprintf(h->err, sizeof(h->err),
			 "TLS KeyUpdate answer: the send direction is not in the kernel");
		return -EPROTO;
	}
	r = ktls_key_update_tx(h->ssl, h->ks, h->fd);
	if (r == -EAGAIN)
		return -EAGAIN;
	if (r == -EKEYREJECTED)
		return key_update_refused(h, st);
	if (r)
		return (int)set_err(h, -r, "TLS KeyUpdate answer");
	tlsmsg_answer_sent(&h->msg);
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
		break;
	case TLSMSG_RENEGOTIATION:
		/*
		 * OpenSSL in userspace declines with a warning no_renegotiation
		 * alert and carries on; the kernel sends no alerts, so we do. A
		 * warning the socket cannot take now is dropped, not waited for.
		 */
		if (tx_in_kernel(h) && !tlsmsg_tx_closed(&h->msg)) {
			r = ktls_send_alert(h->fd, TLSMSG_LEVEL_WARNING, TLSMSG_AD_NO_RENEGOTIATION);
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

/*
 * Records waiting on @h for its socket, whatever the relay reads or writes
 * there: tlsrec's queue (KeyUpdate answers, alerts) and a kTLS KeyUpdate
 * answer. Sent as soon as the socket takes them, and what @h asks of epoll
 * is recomputed, so that an emptied queue stops asking for EPOLLOUT.
 * Return: 0, or -errno with h->err set.
 */
static int flush_control(struct hop *h, struct stats *st)
{
	int r = 0;

	if (h->rec) {
		r = tlsrec_flush(h->rec, h->fd);
		h->rd_wants_write = tlsrec_wants_write(h->rec) || tlsrec_yielded(h->rec);
		if (r < 0 && r != -EAGAIN)
			return (int)set_err(h, -r, "TLS write");
		return 0;
	}
	if (tx_in_kernel(h)) {
		r = ktls_answer(h, st);
		h->rd_wants_write = r == -EAGAIN;
	}
	return r == -EAGAIN ? 0 : r;
}

ssize_t hop_read(struct hop *h, void *buf, size_t len, struct stats *st)
{
	ssize_t n;
	int r;

	if (h->rx_eof)
		return 0;
	if (rx_in_kernel(h))
		return ktls_read(h, buf, len, st);
	if (h->rec) {
		n = tlsrec_read(h->rec, h->fd, buf, len, st, h->err, sizeof(h->err));
		/*
		 * Records it queued (a KeyUpdate answer) need the socket writable;
		 * so does a read that yielded with records still buffered: the
		 * next EPOLLOUT brings the relay back to them.
		 */
		h->rd_wants_write = tlsrec_wants_write(h->rec) ||
				    (n == -EAGAIN && tlsrec_yielded(h->rec));
		if (n == 0) {
			h->rx_eof = true;
			h->clean_eof = tlsrec_clean_eof(h->rec);
		}
		return n;
	}
	if (h->ssl) {
		h->rd_wants_write = false;
		r = SSL_read(h->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
		if (r > 0)
			return r;
		return ssl_failure(h, r, "TLS read", true);
	}
	n = read(h->fd, buf, len);
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

ssize_t hop_write(struct hop *h, const void *buf, size_t len)
{
	ssize_t n;
	int r;

	if (h->rec)
		return tlsrec_write(h->rec, h->fd, buf, len, h->err, sizeof(h->err));
	if (tx_in_kernel(h) && h->msg_ready) {
		if (tlsmsg_tx_closed(&h->msg))
			return set_err(h, EPIPE, "write after a fatal alert");
		/* A KeyUpdate answer goes before any data (RFC 8446 4.6.3). */
		r = ktls_answer(h, NULL);
		if (r < 0)
			return r;
	}
	if (h->ssl && !tx_in_kernel(h)) {
		h->wr_wants_read = false;
		r = SSL_write(h->ssl, buf, (int)(len > INT32_MAX ? INT32_MAX : len));
		if (r > 0)
			return r;
		return ssl_failure(h, r, "TLS write", false);
	}
	n = send(h->fd, buf, len, MSG_NOSIGNAL);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EINTR)
		return -EAGAIN;
	return set_err(h, errno, "write");
}

int hop_shutdown_write(struct hop *h)
{
	int r;

	if (h->tx_shut)
		return 0;
	if (tx_in_kernel(h)) {
		/* The kernel never sends alerts: close_notify is ours to send (not after a fatal one). */
		msg_setup(h);
		if (!tlsmsg_tx_closed(&h->msg)) {
			r = ktls_send_alert(h->fd, TLSMSG_LEVEL_WARNING, TLSMSG_AD_CLOSE_NOTIFY);
			if (r == -EAGAIN)
				return -EAGAIN;
			/* The peer's KeyUpdates are still followed, but never answered now. */
			tlsmsg_close_sent(&h->msg);
		}
	} else if (h->rec) {
		/* A failure means the peer is gone: nobody to notify. */
		if (tlsrec_shutdown(h->rec, h->fd) == -EAGAIN)
			return -EAGAIN;
	} else if (h->ssl) {
		r = SSL_shutdown(h->ssl);
		if (r < 0) {
			int e = SSL_get_error(h->ssl, r);

			if (e == SSL_ERROR_WANT_WRITE)
				return -EAGAIN;
			/* The peer is gone; there is nobody to notify. */
			tls_drain_errors();
		}
	}
	h->tx_shut = true;
	if (shutdown(h->fd, SHUT_WR) == -1 && errno != ENOTCONN)
		return -errno;
	return 0;
}

static void summary_free(struct hop_tls_summary *sum)
{
	if (!sum)
		return;
	free(sum->sni);
	free(sum->peer_subject);
	free(sum);
}

void hop_close(struct ev_loop *loop, struct hop *h)
{
	if (h->io.fd >= 0)
		ev_io_stop(loop, &h->io);
	if (h->ssl) {
		keysched_forget(h->ssl);
		SSL_free(h->ssl);
		h->ssl = NULL;
	}
	keysched_session_free(h->ks);
	h->ks = NULL;
	tlsrec_free(h->rec);
	h->rec = NULL;
	summary_free(h->summary);
	h->summary = NULL;
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	h->io.fd = -1;
}

/* What the stats show of @h's TLS session once its SSL is gone; NULL on ENOMEM. */
static struct hop_tls_summary *summarize(SSL *ssl)
{
	struct hop_tls_summary *sum = calloc(1, sizeof(*sum));
	const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	X509 *peer = SSL_get0_peer_certificate(ssl);

	if (!sum)
		return NULL;
	sum->version = SSL_get_version(ssl);
	sum->cipher = SSL_get_cipher_name(ssl);
	sum->alpn_postgresql = tls_alpn_is_postgresql(ssl);
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
	/* Anything queued for OpenSSL's peer went out during the handshake. */
	SSL_free(h->ssl);
	h->ssl = NULL;
	h->rd_wants_write = h->wr_wants_read = false;
	return 0;
}

uint32_t hop_events(const struct hop *h, bool want_read, bool want_write)
{
	uint32_t ev = 0;

	if (want_read || h->wr_wants_read)
		ev |= EPOLLIN;
	if (want_write || h->rd_wants_write)
		ev |= EPOLLOUT;
	return ev;
}

static int reserve(struct relay_dir *d, uint32_t size)
{
	if (d->buf)
		return 0;
	d->buf = malloc(size);
	if (!d->buf)
		return -ENOMEM;
	d->cap = size;
	d->head = d->scan = d->tail = 0;
	return 0;
}

int relay_dir_reserve(struct relay_dir *d)
{
	return reserve(d, RELAY_BUF_SIZE);
}

static void count_bytes(struct relay *r, int i, size_t n)
{
	r->dir[i]->bytes += n;
	if (i == 0)
		STAT_ADD(r->stats, bytes_client_to_server, n);
	else
		STAT_ADD(r->stats, bytes_server_to_client, n);
}

void relay_dir_init(struct relay_dir *d)
{
	memset(d, 0, sizeof(*d));
	d->pipe[0] = d->pipe[1] = -1;
}

void relay_dir_free(struct relay_dir *d)
{
	free(d->buf);
	d->buf = NULL;
	d->cap = 0;
	d->head = d->scan = d->tail = 0;
}

void relay_dir_fini(struct relay_dir *d)
{
	relay_dir_free(d);
	if (d->pipe[0] >= 0) {
		close(d->pipe[0]);
		close(d->pipe[1]);
	}
	d->pipe[0] = d->pipe[1] = -1;
	d->pipe_len = 0;
}

/* ---- splice: kernel-to-kernel moves, no userspace copy ---- */

/* Whether bytes can leave @h's socket without OpenSSL (plaintext or kTLS RX). */
static bool can_splice_from(const struct hop *h)
{
	return (!h->ssl && !h->rec) || rx_in_kernel(h);
}

static bool can_splice_to(const struct hop *h)
{
	return (!h->ssl && !h->rec) || tx_in_kernel(h);
}

void relay_pipes_fini(struct relay_pipes *p)
{
	while (p->n > 0) {
		p->n--;
		close(p->fd[p->n][0]);
		close(p->fd[p->n][1]);
	}
}

/* Borrow an empty pipe for @d: a spare if there is one. Return: 0 or -errno. */
static int pipe_take(struct relay_pipes *p, struct relay_dir *d)
{
	if (p->n > 0) {
		p->n--;
		d->pipe[0] = p->fd[p->n][0];
		d->pipe[1] = p->fd[p->n][1];
		return 0;
	}
	if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		d->pipe[0] = d->pipe[1] = -1;
		return -errno;
	}
	return 0;
}

/* @d's pipe is empty: back to the spares, or closed if there are enough. */
static void pipe_give(struct relay_pipes *p, struct relay_dir *d)
{
	if (p->n < RELAY_SPARE_PIPES) {
		p->fd[p->n][0] = d->pipe[0];
		p->fd[p->n][1] = d->pipe[1];
		p->n++;
	} else {
		close(d->pipe[0]);
		close(d->pipe[1]);
	}
	d->pipe[0] = d->pipe[1] = -1;
}

/* Drain the pipe into the destination; an emptied pipe goes back to the worker. */
static int splice_out(struct relay *r, int i, bool *progress)
{
	struct relay_dir *d = r->dir[i];

	if (d->pipe[0] >= 0 && d->pipe_len == 0)
		pipe_give(r->pipes, d);
	if (d->pipe_len && tx_in_kernel(r->dst[i])) {
		/* A KeyUpdate answer due on the destination goes before these bytes. */
		int ret = ktls_answer(r->dst[i], r->stats);

		if (ret == -EAGAIN)
			return 0;
		if (ret < 0)
			return ret;
	}
	while (d->pipe_len) {
		ssize_t n = splice(d->pipe[0], NULL, r->dst[i]->fd, NULL, d->pipe_len,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

		if (n > 0) {
			d->pipe_len -= (uint32_t)n;
			count_bytes(r, i, (size_t)n);
			STAT_ADD(r->stats, bytes_spliced, (uint64_t)n);
			*progress = true;
			if (d->pipe_len == 0)
				pipe_give(r->pipes, d);
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return 0;
		return (int)set_err(r->dst[i], n == 0 ? EPIPE : errno, "splice to socket");
	}
	return 0;
}

/*
 * Fill the pipe from the source. Return: 0, -errno, or 1 when the next
 * record must be read with recvmsg (a kTLS control record, or an empty
 * data record that splice reports as 0): the caller does that only once
 * the pipe is empty, so bytes keep their order.
 */
static int splice_in(struct relay *r, int i, bool *progress)
{
	struct relay_dir *d = r->dir[i];
	struct hop *src = r->src[i];
	ssize_t n;

	if (d->pipe[0] < 0 && pipe_take(r->pipes, d) < 0) {
		/*
		 * Out of descriptors (a pipe costs two): this direction copies
		 * through userspace instead. Slower, but nobody is dropped.
		 */
		d->no_pipe = true;
		return 0;
	}
	if (d->pipe_len >= RELAY_PIPE_SIZE)
		return 0;
	n = splice(src->fd, NULL, d->pipe[1], NULL, RELAY_PIPE_SIZE - d->pipe_len,
		   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n > 0) {
		d->pipe_len += (uint32_t)n;
		*progress = true;
		if (r->frame[i])
			pgproto_framer_lose(r->frame[i]);
		/* Data ends a run of ignored warning alerts, spliced or not (tlsmsg.h). */
		if (src->msg_ready)
			tlsmsg_data(&src->msg);
		/* kTLS splices one record at a time: only plain TCP shows a drained socket. */
		if (!rx_in_kernel(src) && (size_t)n < RELAY_PIPE_SIZE - (d->pipe_len - (size_t)n))
			r->rx_ready[i] = false;
		return 0;
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
		if (errno == EAGAIN)
			r->rx_ready[i] = false;
		return 0;
	}
	if (rx_in_kernel(src) && (n == 0 || errno == EINVAL))
		return 1;
	if (n == 0) {
		src->rx_eof = true;
		src->clean_eof = true;
		*progress = true;
		return 0;
	}
	/*
	 * On the data path a record that fails authentication shows up here,
	 * not in ktls_read(): name it the same way, so the log says what
	 * happened (a corrupted or forged record), not just "Bad message".
	 */
	if (rx_in_kernel(src) && errno == EBADMSG)
		return (int)set_err(src, EBADMSG, "kTLS record failed authentication");
	return (int)set_err(src, errno, "splice from socket");
}

/* Write what may be written from @d; -errno only for a real failure. */
static int flush_dir(struct relay *r, int i, bool *progress)
{
	struct relay_dir *d = r->dir[i];

	while (d->scan > d->head) {
		ssize_t n = hop_write(r->dst[i], d->buf + d->head, d->scan - d->head);

		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		d->head += (uint32_t)n;
		count_bytes(r, i, (size_t)n);
		*progress = true;
	}
	if (d->head == d->tail && d->buf) {
		/* Drained. Idle connections keep no buffer, unless inspection needs one. */
		if (r->inspect[i])
			d->head = d->scan = d->tail = 0;
		else
			relay_dir_free(d);
	} else if (d->head == d->scan && d->head > 0 && r->inspect[i]) {
		/* A partial message waits for more: slide it to the front for room. */
		memmove(d->buf, d->buf + d->head, d->tail - d->head);
		d->tail -= d->head;
		d->scan = d->head = 0;
	}
	return 0;
}

/*
 * Whether a source that just returned data holds more that costs no
 * syscall to get: only userspace TLS knows (a read-ahead burst sits in
 * OpenSSL's or tlsrec's buffer). A socket is read once per pass: a second read
 * would most often return EAGAIN.
 */
static bool has_buffered(const struct hop *src)
{
	if (src->rec)
		return tlsrec_has_pending(src->rec);
	return src->ssl && !rx_in_kernel(src) && SSL_has_pending(src->ssl);
}

/*
 * After a read of @n bytes out of @asked from src[i]: may more be waiting?
 * Userspace TLS knows (bytes OpenSSL read ahead); a plain or kTLS socket
 * that returned less than asked was drained at that moment.
 */
static void note_read(struct relay *r, int i, ssize_t n, size_t asked)
{
	struct hop *src = r->src[i];

	if (n == -EAGAIN || n <= 0)
		r->rx_ready[i] = n != -EAGAIN && !src->rx_eof;
	else
		r->rx_ready[i] = has_buffered(src) || (size_t)n == asked;
}

/*
 * Read a batch into scratch and write straight through; keep only what is
 * left. One SSL_read returns one record (8 KB from PostgreSQL); gathering
 * what OpenSSL already holds lets the write side send 16 KB records, and
 * fewer of them, for the same bytes. Nothing waits for data to arrive.
 */
static int pass_through(struct relay *r, int i, bool *progress)
{
	struct relay_dir *d = r->dir[i];
	struct hop *src = r->src[i];
	size_t got = 0, off = 0;
	ssize_t n;

	do {
		size_t room = RELAY_BATCH_SIZE - got;

		n = hop_read(src, r->scratch + got, room, r->stats);
		note_read(r, i, n, room);
		if (n <= 0)
			break;
		got += (size_t)n;
	} while (RELAY_BATCH_SIZE - got >= RELAY_BUF_SIZE && has_buffered(src));
	if (n != -EAGAIN || got > 0)
		*progress = true;
	if (r->frame[i])
		pgproto_framer_feed(r->frame[i], r->scratch, got);
	while (off < got) {
		ssize_t w = hop_write(r->dst[i], r->scratch + off, got - off);

		if (w == -EAGAIN)
			break;
		if (w < 0)
			return (int)w;
		off += (size_t)w;
		count_bytes(r, i, (size_t)w);
	}
	if (off < got) {
		/* The destination is full: stash the rest (at most one batch). */
		if (reserve(d, (uint32_t)(got - off > RELAY_BUF_SIZE ? got - off
								      : RELAY_BUF_SIZE)) < 0)
			return -ENOMEM;
		memcpy(d->buf, r->scratch + off, got - off);
		d->head = 0;
		d->scan = d->tail = (uint32_t)(got - off);
	}
	/* A read that failed after others succeeded: their bytes went first. */
	return n < 0 && n != -EAGAIN ? (int)n : 0;
}

/* Read into the direction's own buffer (inspection needs whole messages). */
static int read_buffered(struct relay *r, int i, bool *progress)
{
	struct relay_dir *d = r->dir[i];
	ssize_t n;

	if (relay_dir_reserve(d) < 0)
		return -ENOMEM;
	if (d->tail >= d->cap)
		return 0;
	n = hop_read(r->src[i], d->buf + d->tail, d->cap - d->tail, r->stats);
	note_read(r, i, n, d->cap - d->tail);
	if (n == -EAGAIN)
		return 0;
	*progress = true;
	if (n < 0)
		return (int)n;
	if (n == 0)
		return 0;
	if (r->frame[i])
		pgproto_framer_feed(r->frame[i], d->buf + d->tail, (size_t)n);
	d->tail += (uint32_t)n;
	if (r->inspect[i])
		return r->inspect[i](r->inspect_arg, d);
	d->scan = d->tail;
	return 0;
}

/* One step of direction @i: flush, read more if there is room, pass EOF on. */
static int step(struct relay *r, int i, bool *progress, struct hop **failed)
{
	struct relay_dir *d = r->dir[i];
	struct hop *src = r->src[i], *dst = r->dst[i];
	int ret;

	if (d->done)
		return 0;
	ret = flush_dir(r, i, progress);
	if (ret < 0)
		goto fail_dst;
	ret = splice_out(r, i, progress);
	if (ret < 0)
		goto fail_dst;
	if (!r->rx_ready[i])
		goto eof;
	if (!src->rx_eof && !r->inspect[i] && d->head == d->tail && !d->no_pipe &&
	    can_splice_from(src) &&
	    can_splice_to(dst)) {
		ret = splice_in(r, i, progress);
		if (ret < 0)
			goto fail_either;
		if (ret == 1 && d->pipe_len == 0) {
			/* Control or empty record: recvmsg it, then splice resumes. */
			ret = read_buffered(r, i, progress);
			if (ret < 0)
				goto fail_either;
			ret = flush_dir(r, i, progress);
			if (ret < 0)
				goto fail_dst;
		}
		ret = splice_out(r, i, progress);
		if (ret < 0)
			goto fail_dst;
	} else if (!src->rx_eof && relay_dir_pending(d) == 0 && !r->inspect[i]) {
		ret = pass_through(r, i, progress);
		if (ret < 0)
			goto fail_either;
	} else if (!src->rx_eof && (r->inspect[i] || relay_dir_pending(d) == 0)) {
		ret = read_buffered(r, i, progress);
		if (ret < 0)
			goto fail_either;
		ret = flush_dir(r, i, progress);
		if (ret < 0)
			goto fail_dst;
	}
eof:
	if (src->rx_eof && d->scan < d->tail)
		d->scan = d->tail;	/* nothing more will complete a partial message */
	if (src->rx_eof && relay_dir_pending(d) == 0 && r->on_eof && !d->eof_told) {
		d->eof_told = true;
		r->on_eof(r->inspect_arg, i, d);
		ret = flush_dir(r, i, progress);
		if (ret < 0)
			goto fail_dst;
	}
	if (src->rx_eof && relay_dir_pending(d) == 0) {
		ret = hop_shutdown_write(dst);
		if (ret == -EAGAIN)
			return 0;
		/* A failed shutdown means the destination is gone: nothing left to tell it. */
		d->done = true;
		*progress = true;
	}
	return 0;

fail_either:
	/* A read error belongs to the source unless the source recorded nothing. */
	*failed = src->err[0] ? src : dst;
	return ret;
fail_dst:
	*failed = dst;
	return ret;
}

void relay_init(struct relay *r, struct hop *client, struct hop *server, struct relay_dir *c2s,
		struct relay_dir *s2c, struct stats *st, uint8_t *scratch,
		struct relay_pipes *pipes)
{
	memset(r, 0, sizeof(*r));
	r->src[0] = r->dst[1] = client;
	r->src[1] = r->dst[0] = server;
	r->dir[0] = c2s;
	r->dir[1] = s2c;
	r->rx_ready[0] = r->rx_ready[1] = true;
	r->stats = st;
	r->scratch = scratch;
	r->pipes = pipes;
}

enum relay_status relay_run(struct relay *r, struct ev_loop *loop, struct hop **failed_hop)
{
	struct hop *h0 = r->src[0], *h1 = r->src[1];
	bool want_read[2], want_write[2];

	for (int i = 0; i < 2; i++) {
		if (flush_control(r->src[i], r->stats) < 0) {
			*failed_hop = r->src[i];
			return RELAY_FAILED;
		}
	}
	for (int pass = 0; pass < RELAY_MAX_PASSES; pass++) {
		bool progress = false;

		for (int i = 0; i < 2; i++) {
			r->err = step(r, i, &progress, failed_hop);
			if (r->err < 0)
				return RELAY_FAILED;
		}
		if (!progress)
			break;
	}
	if (r->dir[0]->done && r->dir[1]->done)
		return RELAY_FINISHED;

	/* h0 is the client: it is read for direction 0 and written for direction 1. */
	for (int i = 0; i < 2; i++) {
		struct relay_dir *d = r->dir[i];

		bool buf_empty = d->head == d->tail;
		bool splicing = !d->no_pipe && can_splice_from(r->src[i]) &&
				can_splice_to(r->dst[i]);

		want_read[i] = !d->done && !r->src[i]->rx_eof &&
			       ((buf_empty && (d->pipe_len == 0 ||
					       (splicing && d->pipe_len < RELAY_PIPE_SIZE))) ||
				(r->inspect[i] && d->tail < RELAY_BUF_SIZE));
		want_write[i] = !d->done &&
				(d->scan > d->head || d->pipe_len > 0 || r->src[i]->rx_eof);
	}
	if (ev_io_set(loop, &h0->io, hop_events(h0, want_read[0], want_write[1])) < 0 ||
	    ev_io_set(loop, &h1->io, hop_events(h1, want_read[1], want_write[0])) < 0) {
		*failed_hop = h0;
		r->err = -errno;
		snprintf(h0->err, sizeof(h0->err), "epoll_ctl: %s", strerror(errno));
		return RELAY_FAILED;
	}
	return RELAY_AGAIN;
}
