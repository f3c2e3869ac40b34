// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * tlsrec.c - pgktls's own TLS record layer for established hops (see tlsrec.h).
 *
 * Record formats, after the handshake:
 *  - TLS 1.3 (RFC 8446 5.2): header 23 03 03 len; the AEAD input is
 *    content || type || zero padding; nonce = iv XOR seq; AAD = the header.
 *  - TLS 1.2 AES-GCM (RFC 5288): header type 03 03 len; 8 explicit nonce
 *    bytes (we send the sequence number, as OpenSSL does) then ciphertext;
 *    nonce = 4-byte implicit iv || explicit; AAD = seq || type || 03 03 || len.
 *  - TLS 1.2 ChaCha20-Poly1305 (RFC 7905): nonce = iv XOR seq, AAD as above.
 * Every record ends with a 16-byte tag. Sequence numbers are per direction
 * and never wrap: at 2^64 - 1 the connection ends.
 */
#include "config.h"

#include "pgktls/tlsrec.h"

#include <sys/socket.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "pgktls/keysched.h"
#include "pgktls/stats.h"
#include "pgktls/tlsmsg.h"
#include "pgktls/tlv.h"

#define REC_HDR 5
#define REC_TAG 16
#define REC_EXPLICIT 8		/* TLS 1.2 AES-GCM explicit nonce */
#define REC_MAX_PLAIN 16384u
/* RFC 5246 6.2.3 allows 2048 bytes of expansion; TLS 1.3 allows 256 (RFC 8446 5.2). */
#define REC_MAX_CIPHER (REC_MAX_PLAIN + 2048u)
#define REC_MAX_CIPHER13 (REC_MAX_PLAIN + 256u)
/*
 * Read-ahead buffer: four TLS 1.3 records of the largest size, so that a
 * burst costs one read(2) and the relay can gather a batch from it (at
 * least one whole record of TLS 1.2's largest, which this also holds).
 * It exists only while it holds bytes.
 */
#define REC_RBUF (4u * (REC_HDR + REC_MAX_PLAIN + 256u))
/* A control record (alert or KeyUpdate): 4 bytes of content at most. */
#define REC_CTRL (REC_HDR + REC_EXPLICIT + 4 + 1 + REC_TAG)
/* One data record, and room for control records queued behind it. */
#define REC_TBUF (REC_HDR + REC_EXPLICIT + REC_MAX_PLAIN + 1 + REC_TAG + 8 * REC_CTRL)

#define TYPE_ALERT TLSMSG_TYPE_ALERT
#define TYPE_HANDSHAKE TLSMSG_TYPE_HANDSHAKE
#define TYPE_DATA TLSMSG_TYPE_DATA
#define HS_HELLO_REQUEST TLSMSG_HS_HELLO_REQUEST
#define HS_CLIENT_HELLO TLSMSG_HS_CLIENT_HELLO
#define HS_NEW_SESSION_TICKET TLSMSG_HS_NEW_SESSION_TICKET
#define HS_KEY_UPDATE TLSMSG_HS_KEY_UPDATE
/*
 * Records that deliver no data (control records, empty data records) one
 * read handles before it yields, as OpenSSL's MAX_EMPTY_RECORDS: a peer
 * that sends nothing else cannot hold a worker inside one call.
 */
#define REC_MAX_IDLE_RECORDS 32
/*
 * Records sealed under one AES-GCM key before we change it (RFC 8446 5.5
 * allows about 2^24.5 full-size records; RFC 9001 6.6 takes 2^23 as the
 * confidentiality limit, and so do we). ChaCha20-Poly1305's limit (2^62)
 * is never reached. TLS 1.2 cannot change keys: the connection is closed
 * cleanly at the limit instead. PGKTLS_TEST_REKEY_RECORDS lowers it, for
 * tests only.
 */
#define REC_GCM_RECORD_LIMIT (1ull << 23)

/* One direction's AEAD state. */
struct rec_dir {
	EVP_CIPHER_CTX *ctx;		/* keyed; the nonce is set per record */
	/* The raw key of ctx: a binary upgrade moves it (tlsrec_export()); wiped at free. */
	uint8_t key[KEYSCHED_MAX_KEY];
	uint8_t iv[KEYSCHED_IV_LEN];	/* implicit IV: 12 bytes, or 4 for TLS 1.2 AES-GCM */
	uint64_t seq;			/* next record's sequence number */
};

struct tlsrec {
	struct keysched_session *ks;	/* TLS 1.3 secrets (for KeyUpdate); owned */
	struct rec_dir rx, tx;
	struct tlsmsg msg;		/* post-handshake rules and state */
	bool tls13;
	uint8_t cipher;			/* enum keysched_cipher */
	uint8_t key_len;		/* bytes of rx.key and tx.key */
	bool is_server;			/* our role (for tlsmsg and the secrets) */
	bool explicit_nonce;		/* TLS 1.2 AES-GCM */
	bool close_queued;		/* our close_notify or fatal alert is in tbuf (or sent) */
	bool clean_eof;			/* the peer's EOF came with close_notify */
	bool rx_done;			/* reading ended (EOF, close_notify or a failure) */
	bool yielded;			/* the last read stopped at REC_MAX_IDLE_RECORDS */
	int rx_err;			/* and how: 0 or -errno, returned again by every read */
	uint8_t rx_alert;		/* the fatal alert a failed read owes the peer, or 0 */
	uint16_t max_fragment;		/* largest plaintext per record we send */
	uint8_t *rbuf;			/* REC_RBUF bytes while any are unread, else NULL */
	uint32_t rhead;			/* next record to open */
	uint32_t rtail;			/* end of bytes read from the socket */
	uint32_t pt_off;		/* plaintext of the last opened record, not yet delivered */
	uint32_t pt_len;
	uint8_t *tbuf;			/* REC_TBUF bytes while records wait for the socket */
	uint32_t thead, ttail;		/* records not yet sent */
	uint32_t tx_taken;		/* plaintext in the data record queued in tbuf */
	uint32_t answer_end;		/* end of our queued KeyUpdate in tbuf; 0: none queued */
	uint64_t tx_limit;		/* records under one send key; UINT64_MAX: no limit */
	uint64_t tx_under_key;		/* records sealed under the current send key */
};

/* The EVP ciphers, fetched once: a fetch per connection costs locks and lookups. */
static const char *const cipher_names[] = {
	"AES-128-GCM",
	"AES-256-GCM",
	"ChaCha20-Poly1305",
};
static EVP_CIPHER *ciphers[PGKTLS_ARRAY_SIZE(cipher_names)];
static pthread_once_t ciphers_once = PTHREAD_ONCE_INIT;

static void ciphers_fetch(void)
{
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(cipher_names); i++)
		ciphers[i] = EVP_CIPHER_fetch(NULL, cipher_names[i], NULL);
}

static EVP_CIPHER *cipher_get(const char *name)
{
	pthread_once(&ciphers_once, ciphers_fetch);
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(cipher_names); i++)
		if (!strcmp(cipher_names[i], name))
			return ciphers[i];
	return NULL;
}

static void put_be16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* TLS 1.3 and ChaCha20: the 12-byte IV with the sequence number XORed into its end. */
static void xor_nonce(uint8_t nonce[KEYSCHED_IV_LEN], const uint8_t iv[KEYSCHED_IV_LEN],
		      uint64_t seq)
{
	uint8_t s[8];

	put_be64(s, seq);
	memcpy(nonce, iv, KEYSCHED_IV_LEN);
	for (int i = 0; i < 8; i++)
		nonce[KEYSCHED_IV_LEN - 8 + i] ^= s[i];
}

/*
 * Key @d for @enc (1 seal, 0 open) with @k: at the start (@cipher makes the
 * context) and at each KeyUpdate (the context exists; @cipher unused).
 * Return 0 or -ENOMEM/-EPROTO.
 */
static int dir_key(struct rec_dir *d, EVP_CIPHER *cipher, const struct keysched_dir_keys *k,
		   size_t iv_len, int enc)
{
	memcpy(d->key, k->key, sizeof(d->key));
	if (!d->ctx) {
		d->ctx = EVP_CIPHER_CTX_new();
		if (!d->ctx)
			return -ENOMEM;
		if (EVP_CipherInit_ex(d->ctx, cipher, NULL, NULL, NULL, enc) != 1)
			return -EPROTO;
	}
	if (EVP_CipherInit_ex(d->ctx, NULL, NULL, k->key, NULL, enc) != 1)
		return -EPROTO;
	memset(d->iv, 0, sizeof(d->iv));
	memcpy(d->iv, k->iv, iv_len);
	return 0;
}

int tlsrec_new(SSL *ssl, struct tlsrec **out)
{
	struct keysched_keys k;
	struct tlsrec *t;
	EVP_CIPHER *cipher;
	int ret;

	*out = NULL;
	ret = keysched_export(ssl, &k);
	if (ret)
		return ret;
	cipher = cipher_get(k.evp_cipher);
	t = calloc(1, sizeof(*t));
	if (!cipher || !t) {
		ret = cipher ? -ENOMEM : -EOPNOTSUPP;
		goto err;
	}
	t->tls13 = k.version == TLS1_3_VERSION;
	t->cipher = k.cipher;
	t->key_len = k.key_len;
	t->is_server = SSL_is_server(ssl);
	tlsmsg_init(&t->msg, t->tls13, !SSL_is_server(ssl));
	t->tx_limit = UINT64_MAX;
	if (k.cipher == KEYSCHED_AES_128_GCM || k.cipher == KEYSCHED_AES_256_GCM) {
		const char *lim = getenv("PGKTLS_TEST_REKEY_RECORDS");

		t->tx_limit = lim ? strtoull(lim, NULL, 10) : REC_GCM_RECORD_LIMIT;
		if (t->tx_limit < 1)
			t->tx_limit = 1;
	}
	t->explicit_nonce = !t->tls13 && k.iv_len == 4;
	t->max_fragment = k.max_fragment;
	t->rx.seq = t->tx.seq = k.seq;
	ret = dir_key(&t->rx, cipher, &k.rx, k.iv_len, 0);
	if (!ret)
		ret = dir_key(&t->tx, cipher, &k.tx, k.iv_len, 1);
	if (ret)
		goto err;
	/* Last: it moves the secrets out of @ssl, so nothing may fail after it. */
	t->ks = keysched_detach(ssl);
	if (!t->ks) {
		ret = -ENOMEM;
		goto err;
	}
	OPENSSL_cleanse(&k, sizeof(k));
	*out = t;
	return 0;
err:
	OPENSSL_cleanse(&k, sizeof(k));
	tlsrec_free(t);
	return ret;
}

void tlsrec_free(struct tlsrec *t)
{
	if (!t)
		return;
	EVP_CIPHER_CTX_free(t->rx.ctx);
	EVP_CIPHER_CTX_free(t->tx.ctx);
	keysched_session_free(t->ks);
	/* Record buffers hold data, not keys: not wiped, like the relay's own buffers. */
	free(t->rbuf);
	free(t->tbuf);
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

bool tlsrec_has_pending(const struct tlsrec *t)
{
	return t->pt_len > 0 || t->rtail > t->rhead;
}

bool tlsrec_wants_write(const struct tlsrec *t)
{
	return t->ttail > t->thead;
}

bool tlsrec_clean_eof(const struct tlsrec *t)
{
	return t->clean_eof;
}

bool tlsrec_yielded(const struct tlsrec *t)
{
	return t->yielded;
}

bool tlsrec_tx_partial(const struct tlsrec *t)
{
	return t->tx_taken != 0;
}

/* ---- sending ---- */

/* Seal one record of @type with @len bytes of @data into tbuf. Return 0 or -errno. */
static int seal(struct tlsrec *t, uint8_t type, const uint8_t *data, uint32_t len)
{
	struct rec_dir *d = &t->tx;
	uint8_t nonce[KEYSCHED_IV_LEN], aad[13], *rec, *p;
	uint32_t ctlen, need;
	int outl;

	if (d->seq == UINT64_MAX)
		return -EOVERFLOW;
	if (t->tls13)
		ctlen = len + 1 + REC_TAG;
	else
		ctlen = len + REC_TAG + (t->explicit_nonce ? REC_EXPLICIT : 0);
	need = REC_HDR + ctlen;
	if (!t->tbuf) {
		t->tbuf = malloc(REC_TBUF);
		if (!t->tbuf)
			return -ENOMEM;
		t->thead = t->ttail = 0;
	}
	if (t->thead > 0 && REC_TBUF - t->ttail < need) {
		memmove(t->tbuf, t->tbuf + t->thead, t->ttail - t->thead);
		t->ttail -= t->thead;
		t->answer_end = t->answer_end > t->thead ? t->answer_end - t->thead : 0;
		t->thead = 0;
	}
	if (REC_TBUF - t->ttail < need)
		return -ENOBUFS;	/* a peer that asks for KeyUpdates and never reads */
	rec = t->tbuf + t->ttail;
	rec[0] = t->tls13 ? TYPE_DATA : type;
	rec[1] = 3;
	rec[2] = 3;
	put_be16(rec + 3, ctlen);
	p = rec + REC_HDR;
	if (t->tls13) {
		xor_nonce(nonce, d->iv, d->seq);
		memcpy(aad, rec, REC_HDR);
	} else {
		if (t->explicit_nonce) {
			memcpy(nonce, d->iv, 4);
			put_be64(nonce + 4, d->seq);
			memcpy(p, nonce + 4, REC_EXPLICIT);
			p += REC_EXPLICIT;
		} else {
			xor_nonce(nonce, d->iv, d->seq);
		}
		put_be64(aad, d->seq);
		aad[8] = type;
		aad[9] = 3;
		aad[10] = 3;
		put_be16(aad + 11, len);
	}
	if (EVP_CipherInit_ex(d->ctx, NULL, NULL, NULL, nonce, 1) != 1 ||
	    EVP_CipherUpdate(d->ctx, NULL, &outl, aad, t->tls13 ? REC_HDR : 13) != 1 ||
	    (len && EVP_CipherUpdate(d->ctx, p, &outl, data, (int)len) != 1) ||
	    (t->tls13 && EVP_CipherUpdate(d->ctx, p + len, &outl, &type, 1) != 1) ||
	    EVP_CipherFinal_ex(d->ctx, p + len + (t->tls13 ? 1 : 0), &outl) != 1 ||
	    EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_GET_TAG, REC_TAG,
				p + len + (t->tls13 ? 1 : 0)) != 1)
		return -EPROTO;
	d->seq++;
	t->tx_under_key++;
	t->ttail += need;
	return 0;
}

/* Send what is queued. Return 0 when all is out (tbuf freed), -EAGAIN, or -errno. */
static int flush(struct tlsrec *t, int fd)
{
	while (t->ttail > t->thead) {
		ssize_t n = send(fd, t->tbuf + t->thead, t->ttail - t->thead, MSG_NOSIGNAL);

		if (n > 0) {
			t->thead += (uint32_t)n;
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return -EAGAIN;
		return n == -1 ? -errno : -EPIPE;
	}
	free(t->tbuf);
	t->tbuf = NULL;
	t->thead = t->ttail = t->answer_end = 0;
	return 0;
}

static int send_answer(struct tlsrec *t);

/*
 * tx_limit records went out under the send key. TLS 1.3: our own
 * KeyUpdate(update_not_requested), then the next key (it also answers any
 * request due). TLS 1.2: close_notify, then -EKEYEXPIRED.
 */
static int tx_limit_reached(struct tlsrec *t, int fd)
{
	static const uint8_t close_notify[2] = { TLSMSG_LEVEL_WARNING, TLSMSG_AD_CLOSE_NOTIFY };
	int r;

	if (t->tls13) {
		t->answer_end = 0;	/* a queued answer does not count: this is a new key */
		return send_answer(t);
	}
	r = seal(t, TYPE_ALERT, close_notify, sizeof(close_notify));
	if (r == 0) {
		t->close_queued = true;
		tlsmsg_close_sent(&t->msg);
		if (flush(t, fd) < 0)
			return -EKEYEXPIRED;	/* best effort: it is closed either way */
	}
	return -EKEYEXPIRED;
}

ssize_t tlsrec_write(struct tlsrec *t, int fd, const void *buf, size_t len, struct stats *st,
		     char *err, size_t errlen)
{
	uint32_t n;
	int r;

	r = flush(t, fd);
	if (r == -EAGAIN)
		return -EAGAIN;
	if (r < 0) {
		snprintf(err, errlen, "TLS write: %s", strerror(-r));
		return r;
	}
	if (t->tx_taken) {
		/* The record made of the caller's first bytes is out now. */
		n = t->tx_taken;
		t->tx_taken = 0;
		if (n > len) {
			snprintf(err, errlen, "TLS write: retried with fewer bytes than before");
			return -EIO;
		}
		return n;
	}
	if (len == 0)
		return 0;
	if (t->close_queued) {
		snprintf(err, errlen, "TLS write after close_notify or a fatal alert");
		return -EPIPE;
	}
	/* The key has sealed all it safely may: change it (TLS 1.3) or end cleanly (TLS 1.2). */
	if (t->tx_under_key >= t->tx_limit) {
		r = tx_limit_reached(t, fd);
		if (r == -EKEYEXPIRED) {
			if (st)
				STAT_INC(st, tls_key_limit_closes);
			snprintf(err, errlen, "TLS 1.2 AES-GCM send key used for its limit of "
				 "records: connection closed (TLS 1.2 cannot change keys)");
			return r;
		}
		if (r < 0) {
			snprintf(err, errlen, "TLS KeyUpdate of our own: %s", strerror(-r));
			return r;
		}
		if (st)
			STAT_INC(st, tls_key_updates_sent);
	}
	n = len > t->max_fragment ? t->max_fragment : (uint32_t)len;
	r = seal(t, TYPE_DATA, buf, n);
	if (r < 0) {
		snprintf(err, errlen, "TLS write: %s", strerror(-r));
		return r;
	}
	r = flush(t, fd);
	if (r == 0)
		return n;
	if (r == -EAGAIN) {
		t->tx_taken = n;
		return -EAGAIN;
	}
	snprintf(err, errlen, "TLS write: %s", strerror(-r));
	return r;
}

int tlsrec_flush(struct tlsrec *t, int fd)
{
	return flush(t, fd);
}

int tlsrec_shutdown(struct tlsrec *t, int fd)
{
	static const uint8_t close_notify[2] = { 1, 0 };
	int r;

	if (!t->close_queued) {
		/*
		 * What is queued goes out first: it may fill the queue (answers to
		 * a peer that did not read), and a record half sent must be ended
		 * before anything else, close_notify or FIN, follows it.
		 */
		r = flush(t, fd);
		if (r < 0)
			return r;
		r = seal(t, TYPE_ALERT, close_notify, sizeof(close_notify));
		if (r < 0)
			return r;
		t->close_queued = true;
		/* The peer's KeyUpdates are still followed, but never answered now. */
		tlsmsg_close_sent(&t->msg);
	}
	return flush(t, fd);
}

/*
 * After a failure the peer is owed a fatal alert (RFC 8446 6.2, RFC 5246
 * 7.2.2), then nothing more: queue it behind what is queued (a record half
 * sent must end first) and send what the socket takes now. The connection
 * is closed right after, so what it does not take is lost, as with OpenSSL
 * on a non-blocking socket.
 */
static void send_fatal(struct tlsrec *t, int fd, uint8_t desc)
{
	const uint8_t alert[2] = { TLSMSG_LEVEL_FATAL, desc };

	if (t->close_queued || seal(t, TYPE_ALERT, alert, sizeof(alert)) < 0)
		return;
	t->close_queued = true;
	tlsmsg_close_sent(&t->msg);
	if (flush(t, fd) < 0)
		return;	/* best effort: nothing else to do */
}

/* ---- receiving ---- */

/*
 * Open the record at rbuf + rhead (header and @ctlen bytes, all present):
 * decrypt in place, set pt_off/pt_len and *type. Return 0 or -errno.
 */
static int open_record(struct tlsrec *t, uint32_t ctlen, uint8_t *type, char *err,
		       size_t errlen)
{
	struct rec_dir *d = &t->rx;
	uint8_t *rec = t->rbuf + t->rhead, *p = rec + REC_HDR;
	uint8_t nonce[KEYSCHED_IV_LEN], aad[13], tag[REC_TAG];
	uint32_t n = ctlen, plen;
	int outl;

	if (d->seq == UINT64_MAX) {
		snprintf(err, errlen, "TLS read: sequence number exhausted");
		return -EOVERFLOW;
	}
	/* Too short to hold a tag (and, TLS 1.3, a type): it cannot authenticate. */
	t->rx_alert = TLSMSG_AD_BAD_RECORD_MAC;
	if (t->tls13) {
		if (rec[0] != TYPE_DATA || n < REC_TAG + 1) {
			if (rec[0] != TYPE_DATA)
				t->rx_alert = TLSMSG_AD_UNEXPECTED_MESSAGE;
			snprintf(err, errlen, "TLS read: malformed TLS 1.3 record (%u, %u bytes)",
				 rec[0], n);
			return -EPROTO;
		}
		xor_nonce(nonce, d->iv, d->seq);
	} else if (t->explicit_nonce) {
		if (n < REC_EXPLICIT + REC_TAG) {
			snprintf(err, errlen, "TLS read: record too short (%u bytes)", n);
			return -EPROTO;
		}
		memcpy(nonce, d->iv, 4);
		memcpy(nonce + 4, p, REC_EXPLICIT);
		p += REC_EXPLICIT;
		n -= REC_EXPLICIT;
	} else {
		if (n < REC_TAG) {
			snprintf(err, errlen, "TLS read: record too short (%u bytes)", n);
			return -EPROTO;
		}
		xor_nonce(nonce, d->iv, d->seq);
	}
	plen = n - REC_TAG;
	if (t->tls13) {
		memcpy(aad, rec, REC_HDR);
	} else {
		put_be64(aad, d->seq);
		aad[8] = rec[0];
		aad[9] = rec[1];
		aad[10] = rec[2];
		put_be16(aad + 11, plen);
	}
	memcpy(tag, p + plen, REC_TAG);
	if (EVP_CipherInit_ex(d->ctx, NULL, NULL, NULL, nonce, 0) != 1 ||
	    EVP_CipherUpdate(d->ctx, NULL, &outl, aad, t->tls13 ? REC_HDR : 13) != 1 ||
	    (plen && EVP_CipherUpdate(d->ctx, p, &outl, p, (int)plen) != 1) ||
	    EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_SET_TAG, REC_TAG, tag) != 1 ||
	    EVP_CipherFinal_ex(d->ctx, p + plen, &outl) != 1) {
		snprintf(err, errlen, "TLS record failed authentication");
		return -EBADMSG;
	}
	d->seq++;
	t->rx_alert = TLSMSG_AD_RECORD_OVERFLOW;
	if (t->tls13) {
		/* RFC 8446 5.4: the whole TLSInnerPlaintext, padding included, is <= 2^14 + 1. */
		if (plen > REC_MAX_PLAIN + 1) {
			snprintf(err, errlen, "TLS read: inner plaintext of %u bytes exceeds 16385",
				 plen);
			return -EMSGSIZE;
		}
		/* TLSInnerPlaintext: content, type, zeros. */
		while (plen > 0 && p[plen - 1] == 0)
			plen--;
		if (plen == 0) {
			t->rx_alert = TLSMSG_AD_UNEXPECTED_MESSAGE;
			snprintf(err, errlen, "TLS read: record without a content type");
			return -EPROTO;
		}
		*type = p[--plen];
	} else {
		*type = rec[0];
	}
	if (plen > REC_MAX_PLAIN) {
		snprintf(err, errlen, "TLS read: record of %u bytes exceeds 16384", plen);
		return -EMSGSIZE;
	}
	t->rx_alert = 0;
	t->pt_off = (uint32_t)(p - t->rbuf);
	t->pt_len = plen;
	return 0;
}

/*
 * Our KeyUpdate(update_not_requested), sealed under the old key, then TX
 * moves on. One that is still queued, not yet sent, answers every request
 * that came since (RFC 8446 4.6.3): a peer that asks and never reads gets
 * one answer, not a queue that fills up.
 */
static int send_answer(struct tlsrec *t)
{
	static const uint8_t our_update[5] = { HS_KEY_UPDATE, 0, 0, 1, 0 };
	struct keysched_dir_keys k;
	int r;

	if (t->answer_end > t->thead) {
		tlsmsg_answer_sent(&t->msg);
		return 0;
	}
	memset(&k, 0, sizeof(k));
	r = seal(t, TYPE_HANDSHAKE, our_update, sizeof(our_update));
	if (!r)
		r = keysched_next_keys(t->ks, true, &k);
	if (!r)
		r = dir_key(&t->tx, NULL, &k, KEYSCHED_IV_LEN, 1);
	if (!r) {
		t->tx.seq = 0;
		t->tx_under_key = 0;
		t->answer_end = t->ttail;
		tlsmsg_answer_sent(&t->msg);
	}
	OPENSSL_cleanse(&k, sizeof(k));
	return r;
}

/* A handshake record after the handshake: tlsmsg.c says what it asks for. */
static int handshake_record(struct tlsrec *t, const uint8_t *m, uint32_t len, struct stats *st,
			    char *err, size_t errlen)
{
	static const uint8_t no_renegotiation[2] = { TLSMSG_LEVEL_WARNING,
						     TLSMSG_AD_NO_RENEGOTIATION };
	struct tlsmsg_event ev;
	struct keysched_dir_keys k;
	int r = 0;

	switch (tlsmsg_handshake(&t->msg, m, len, &ev)) {
	case TLSMSG_MALFORMED:
		t->rx_alert = ev.alert;
		snprintf(err, errlen, "post-handshake message refused (%s)",
			 tlsmsg_alert_name(ev.alert));
		return -EPROTO;
	case TLSMSG_KEY_UPDATE:
		r = keysched_next_keys(t->ks, false, &k);
		if (!r)
			r = dir_key(&t->rx, NULL, &k, KEYSCHED_IV_LEN, 0);
		OPENSSL_cleanse(&k, sizeof(k));
		if (!r) {
			t->rx.seq = 0;
			if (tlsmsg_answer_due(&t->msg))
				r = send_answer(t);
		}
		if (r) {
			snprintf(err, errlen, "TLS KeyUpdate: %s", strerror(-r));
			return r;
		}
		STAT_INC(st, tls_key_updates);
		break;
	case TLSMSG_RENEGOTIATION:
		/* Declined with a warning, as OpenSSL does; nothing once we closed. */
		if (!t->close_queued)
			r = seal(t, TYPE_ALERT, no_renegotiation, sizeof(no_renegotiation));
		if (r) {
			snprintf(err, errlen, "no_renegotiation alert: %s", strerror(-r));
			return r;
		}
		break;
	default:
		break;
	}
	/* pgktls never resumes: tickets are counted, not kept. */
	STAT_ADD(st, tls_tickets, ev.tickets);
	return 0;
}

/* Drop the read buffer once it holds nothing: an idle hop keeps none. */
static void rbuf_release(struct tlsrec *t)
{
	if (t->rbuf && t->pt_len == 0 && t->rhead == t->rtail) {
		free(t->rbuf);
		t->rbuf = NULL;
		t->rhead = t->rtail = 0;
	}
}

/*
 * Act on the record just opened (its plaintext at pt_off, pt_len).
 * Return: 1 to read on (data left in pt_len is delivered first), 0 at
 * close_notify, or -errno.
 */
static int on_record(struct tlsrec *t, int fd, uint8_t type, struct stats *st, char *err,
		     size_t errlen)
{
	const uint8_t *m = t->rbuf + t->pt_off;
	uint32_t len = t->pt_len;
	struct tlsmsg_event ev;
	int r;

	if (type == TYPE_DATA) {
		/* An empty one is legal, and is not EOF. */
		if (len)
			tlsmsg_data(&t->msg);
		return 1;
	}
	t->pt_len = 0;
	STAT_INC(st, tls_control_records);
	if (type == TYPE_ALERT) {
		STAT_INC(st, tls_alerts);
		switch (tlsmsg_alert(&t->msg, m, len, &ev)) {
		case TLSMSG_CLOSE_NOTIFY:
			t->clean_eof = true;
			return 0;
		case TLSMSG_NONE:
			return 1;	/* a warning, ignored */
		case TLSMSG_PEER_ALERT:
			snprintf(err, errlen, "peer sent TLS alert %u/%u (%s)", ev.level, ev.alert,
				 tlsmsg_alert_name(ev.alert));
			return -ECONNRESET;
		default:
			t->rx_alert = ev.alert;
			snprintf(err, errlen, "TLS alert record refused (%s)",
				 tlsmsg_alert_name(ev.alert));
			return -EPROTO;
		}
	}
	if (type != TYPE_HANDSHAKE) {
		t->rx_alert = TLSMSG_AD_UNEXPECTED_MESSAGE;
		snprintf(err, errlen, "unexpected TLS record type %u", type);
		return -EPROTO;
	}
	r = handshake_record(t, m, len, st, err, errlen);
	if (r)
		return r;
	r = flush(t, fd);
	if (r < 0 && r != -EAGAIN) {
		snprintf(err, errlen, "TLS write: %s", strerror(-r));
		return r;
	}
	return 1;
}

static ssize_t read_records(struct tlsrec *t, int fd, void *buf, size_t len, struct stats *st,
			    char *err, size_t errlen)
{
	unsigned int idle = 0;
	ssize_t n;
	int r;

	/* Records a previous read queued (KeyUpdate answer, alert) go first. */
	r = flush(t, fd);
	if (r < 0 && r != -EAGAIN) {
		snprintf(err, errlen, "TLS write: %s", strerror(-r));
		return r;
	}
	for (;;) {
		uint32_t avail = t->rtail - t->rhead, ctlen = 0;
		uint8_t type;

		if (t->pt_len > 0) {
			uint32_t k = len < t->pt_len ? (uint32_t)len : t->pt_len;

			memcpy(buf, t->rbuf + t->pt_off, k);
			t->pt_off += k;
			t->pt_len -= k;
			rbuf_release(t);
			return k;
		}
		if (avail >= REC_HDR) {
			const uint8_t *h = t->rbuf + t->rhead;

			ctlen = (uint32_t)h[3] << 8 | h[4];
			if (h[1] != 3 || h[2] != 3 ||
			    ctlen > (t->tls13 ? REC_MAX_CIPHER13 : REC_MAX_CIPHER)) {
				t->rx_alert = h[1] != 3 || h[2] != 3 ? TLSMSG_AD_PROTOCOL_VERSION
								     : TLSMSG_AD_RECORD_OVERFLOW;
				snprintf(err, errlen, "TLS read: bad header %02x %02x%02x %u",
					 h[0], h[1], h[2], ctlen);
				return -EPROTO;
			}
		}
		if (avail >= REC_HDR && avail >= REC_HDR + ctlen) {
			r = open_record(t, ctlen, &type, err, errlen);
			if (r)
				return r;
			t->rhead += REC_HDR + ctlen;
			r = on_record(t, fd, type, st, err, errlen);
			rbuf_release(t);
			if (r <= 0)
				return r;
			/* Records that bring no data: yield after a few (tlsrec_yielded()). */
			if (t->pt_len == 0 && ++idle >= REC_MAX_IDLE_RECORDS) {
				t->yielded = true;
				return -EAGAIN;
			}
			continue;
		}
		/* Need more bytes: make room at the front, then read ahead. */
		if (!t->rbuf) {
			t->rbuf = malloc(REC_RBUF);
			if (!t->rbuf) {
				snprintf(err, errlen, "TLS read: %s", strerror(ENOMEM));
				return -ENOMEM;
			}
			t->rhead = t->rtail = 0;
		} else if (t->rhead > 0) {
			memmove(t->rbuf, t->rbuf + t->rhead, t->rtail - t->rhead);
			t->rtail -= t->rhead;
			t->rhead = 0;
		}
		n = read(fd, t->rbuf + t->rtail, REC_RBUF - t->rtail);
		if (n > 0) {
			t->rtail += (uint32_t)n;
			continue;
		}
		if (n == 0) {
			/* TCP FIN without close_notify (mid-record or not): EOF, not clean. */
			t->rhead = t->rtail = 0;
			rbuf_release(t);
			return 0;
		}
		if (errno == EAGAIN || errno == EINTR) {
			rbuf_release(t);
			return -EAGAIN;
		}
		r = -errno;
		snprintf(err, errlen, "TLS read: %s", strerror(errno));
		return r;
	}
}

/*
 * The end of the input is final: after close_notify, data that follows is
 * ignored (RFC 8446 6.1), and after a fatal alert or a record that failed
 * nothing more is read (RFC 8446 6.2, RFC 5246 7.2.2), however often the
 * caller asks.
 */
ssize_t tlsrec_read(struct tlsrec *t, int fd, void *buf, size_t len, struct stats *st, char *err,
		    size_t errlen)
{
	ssize_t n;

	if (t->rx_done) {
		if (t->rx_err)
			snprintf(err, errlen, "TLS read after a failure: %s", strerror(-t->rx_err));
		return t->rx_err;
	}
	t->yielded = false;
	n = read_records(t, fd, buf, len, st, err, errlen);
	if (n < 0 && n != -EAGAIN && t->rx_alert)
		send_fatal(t, fd, t->rx_alert);
	if (n <= 0 && n != -EAGAIN) {
		t->rx_done = true;
		t->rx_err = (int)n;
		/* Nothing more will be read from it: tlsrec_has_pending() is false from now on. */
		free(t->rbuf);
		t->rbuf = NULL;
		t->rhead = t->rtail = t->pt_off = t->pt_len = 0;
	}
	return n;
}

/* ---- moving a hop to another process (binary upgrade) ---- */

/*
 * Tags of tlsrec_export()'s list. Every one changes what the hop does
 * next, so all are mandatory: a reader that does not know one must refuse
 * the session rather than lose a byte or a sequence number.
 */
enum {
	TR_TAG_VERSION = 1 | TLV_MANDATORY,	/* u16: 0x0303 or 0x0304 */
	TR_TAG_CIPHER = 2 | TLV_MANDATORY,	/* u8: enum keysched_cipher */
	TR_TAG_SERVER = 3 | TLV_MANDATORY,	/* u8: we are the TLS server */
	TR_TAG_SESSION = 4 | TLV_MANDATORY,	/* keysched_session_export()'s list */
	TR_TAG_RX_KEY = 5 | TLV_MANDATORY,	/* the peer's write key */
	TR_TAG_RX_IV = 6 | TLV_MANDATORY,	/* 12 bytes */
	TR_TAG_RX_SEQ = 7 | TLV_MANDATORY,	/* u64: next record to open */
	TR_TAG_TX_KEY = 8 | TLV_MANDATORY,
	TR_TAG_TX_IV = 9 | TLV_MANDATORY,
	TR_TAG_TX_SEQ = 10 | TLV_MANDATORY,	/* u64: next record to seal */
	TR_TAG_MSG = 11 | TLV_MANDATORY,	/* tlsmsg_save()'s image */
	TR_TAG_FLAGS = 12 | TLV_MANDATORY,	/* u8: TR_F_* */
	TR_TAG_RX_ERR = 13 | TLV_MANDATORY,	/* u32: rx_err, two's complement */
	TR_TAG_RX_ALERT = 14 | TLV_MANDATORY,	/* u8 */
	TR_TAG_MAX_FRAGMENT = 15 | TLV_MANDATORY, /* u16 */
	TR_TAG_TX_LIMIT = 16 | TLV_MANDATORY,	/* u64 */
	TR_TAG_TX_UNDER_KEY = 17 | TLV_MANDATORY, /* u64 */
	TR_TAG_TX_TAKEN = 18 | TLV_MANDATORY,	/* u32 */
	TR_TAG_ANSWER_END = 19 | TLV_MANDATORY,	/* u32: from the start of SEALED; 0: none */
	TR_TAG_PLAIN = 20 | TLV_MANDATORY,	/* opened, not delivered (chunks) */
	TR_TAG_CIPHERTEXT = 21 | TLV_MANDATORY,	/* read ahead, not opened (chunks) */
	TR_TAG_SEALED = 22 | TLV_MANDATORY,	/* sealed, not sent (chunks) */
	/*
	 * u32 x 3: the byte counts of PLAIN, CIPHERTEXT and SEALED, written
	 * before them, so that a list cut after any whole TLV is refused
	 * rather than read as fewer bytes in flight.
	 */
	TR_TAG_LENGTHS = 23 | TLV_MANDATORY,
};

#define TR_F_CLOSE_QUEUED (1u << 0)
#define TR_F_CLEAN_EOF (1u << 1)
#define TR_F_RX_DONE (1u << 2)
#define TR_F_YIELDED (1u << 3)
#define TR_F_ALL (TR_F_CLOSE_QUEUED | TR_F_CLEAN_EOF | TR_F_RX_DONE | TR_F_YIELDED)

static void dir_export(struct tlv_writer *w, const struct rec_dir *d, uint8_t key_len,
		       uint16_t tag_key, uint16_t tag_iv, uint16_t tag_seq)
{
	tlv_put(w, tag_key, d->key, key_len);
	tlv_put(w, tag_iv, d->iv, sizeof(d->iv));
	tlv_put_u64(w, tag_seq, d->seq);
}

int tlsrec_export(const struct tlsrec *t, struct tlv_writer *w)
{
	uint8_t msg[TLSMSG_SAVED_LEN];
	uint8_t flags = 0;
	long at;
	int r;

	uint8_t lens[12];
	uint32_t ct = t->rtail - t->rhead, sealed = t->ttail - t->thead;

	tlv_put_u16(w, TR_TAG_VERSION, t->tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
	for (int i = 0; i < 4; i++) {
		lens[i] = (uint8_t)(t->pt_len >> (8 * i));
		lens[4 + i] = (uint8_t)(ct >> (8 * i));
		lens[8 + i] = (uint8_t)(sealed >> (8 * i));
	}
	tlv_put(w, TR_TAG_LENGTHS, lens, sizeof(lens));
	tlv_put_u8(w, TR_TAG_CIPHER, t->cipher);
	tlv_put_u8(w, TR_TAG_SERVER, t->is_server);
	at = tlv_begin(w, TR_TAG_SESSION);
	if (at >= 0) {
		r = keysched_session_export(t->ks, w);
		if (r)
			return r;
		tlv_end(w, at);
	}
	dir_export(w, &t->rx, t->key_len, TR_TAG_RX_KEY, TR_TAG_RX_IV, TR_TAG_RX_SEQ);
	dir_export(w, &t->tx, t->key_len, TR_TAG_TX_KEY, TR_TAG_TX_IV, TR_TAG_TX_SEQ);
	tlsmsg_save(&t->msg, msg);
	tlv_put(w, TR_TAG_MSG, msg, sizeof(msg));
	flags |= t->close_queued ? TR_F_CLOSE_QUEUED : 0;
	flags |= t->clean_eof ? TR_F_CLEAN_EOF : 0;
	flags |= t->rx_done ? TR_F_RX_DONE : 0;
	flags |= t->yielded ? TR_F_YIELDED : 0;
	tlv_put_u8(w, TR_TAG_FLAGS, flags);
	tlv_put_u32(w, TR_TAG_RX_ERR, (uint32_t)t->rx_err);
	tlv_put_u8(w, TR_TAG_RX_ALERT, t->rx_alert);
	tlv_put_u16(w, TR_TAG_MAX_FRAGMENT, t->max_fragment);
	tlv_put_u64(w, TR_TAG_TX_LIMIT, t->tx_limit);
	tlv_put_u64(w, TR_TAG_TX_UNDER_KEY, t->tx_under_key);
	tlv_put_u32(w, TR_TAG_TX_TAKEN, t->tx_taken);
	/* An answer at or before thead is sent: as none queued (send_answer()). */
	tlv_put_u32(w, TR_TAG_ANSWER_END, t->answer_end > t->thead ? t->answer_end - t->thead : 0);
	/* Last, after LENGTHS: see TR_TAG_LENGTHS. */
	if (t->pt_len)
		tlv_put_chunked(w, TR_TAG_PLAIN, t->rbuf + t->pt_off, t->pt_len);
	if (ct)
		tlv_put_chunked(w, TR_TAG_CIPHERTEXT, t->rbuf + t->rhead, ct);
	if (sealed)
		tlv_put_chunked(w, TR_TAG_SEALED, t->tbuf + t->thead, sealed);
	return tlv_writer_err(w);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One direction from its fields (f[0] key, f[1] iv, f[2] seq). */
static int dir_import(struct rec_dir *d, EVP_CIPHER *cipher, const struct tlv_field *f,
		      int enc)
{
	struct keysched_dir_keys k;
	int r;

	memset(&k, 0, sizeof(k));
	memcpy(k.key, f[0].val, f[0].len);
	memcpy(k.iv, f[1].val, KEYSCHED_IV_LEN);
	r = dir_key(d, cipher, &k, KEYSCHED_IV_LEN, enc);
	OPENSSL_cleanse(&k, sizeof(k));
	d->seq = tlv_u64(&f[2]);
	return r;
}

/* Copy the chunks of @tag into a new buffer of @size at @off. Return 0 or -errno. */
static int buf_import(const void *buf, size_t len, uint16_t tag, uint8_t **dst, size_t size,
		      uint32_t off)
{
	long n;

	if (!*dst) {
		*dst = malloc(size);
		if (!*dst)
			return -ENOMEM;
	}
	n = tlv_gather(buf, len, tag, *dst + off, size - off);
	return n < 0 ? (int)n : 0;
}

int tlsrec_import(const void *buf, size_t len, struct tlsrec **out)
{
	enum {
		F_VERSION, F_CIPHER, F_SERVER, F_SESSION, F_RX_KEY, F_RX_IV, F_RX_SEQ, F_TX_KEY,
		F_TX_IV, F_TX_SEQ, F_MSG, F_FLAGS, F_RX_ERR, F_RX_ALERT, F_MAX_FRAGMENT,
		F_TX_LIMIT, F_TX_UNDER_KEY, F_TX_TAKEN, F_ANSWER_END, F_PLAIN, F_CIPHERTEXT,
		F_SEALED, F_LENGTHS, F_N
	};
#define FIX(t_, n) { .tag = (t_), .min_len = (n), .max_len = (n), .required = true }
#define CHUNKS(t_) { .tag = (t_), .min_len = 1, .max_len = TLV_MAX_VALUE, .repeat = true }
	struct tlv_field f[F_N] = {
		[F_VERSION] = FIX(TR_TAG_VERSION, 2),
		[F_CIPHER] = FIX(TR_TAG_CIPHER, 1),
		[F_SERVER] = FIX(TR_TAG_SERVER, 1),
		[F_SESSION] = { .tag = TR_TAG_SESSION, .max_len = TLV_MAX_VALUE, .required = true },
		[F_RX_KEY] = { .tag = TR_TAG_RX_KEY, .min_len = 16, .max_len = KEYSCHED_MAX_KEY,
			       .required = true },
		[F_RX_IV] = FIX(TR_TAG_RX_IV, KEYSCHED_IV_LEN),
		[F_RX_SEQ] = FIX(TR_TAG_RX_SEQ, 8),
		[F_TX_KEY] = { .tag = TR_TAG_TX_KEY, .min_len = 16, .max_len = KEYSCHED_MAX_KEY,
			       .required = true },
		[F_TX_IV] = FIX(TR_TAG_TX_IV, KEYSCHED_IV_LEN),
		[F_TX_SEQ] = FIX(TR_TAG_TX_SEQ, 8),
		[F_MSG] = FIX(TR_TAG_MSG, TLSMSG_SAVED_LEN),
		[F_FLAGS] = FIX(TR_TAG_FLAGS, 1),
		[F_RX_ERR] = FIX(TR_TAG_RX_ERR, 4),
		[F_RX_ALERT] = FIX(TR_TAG_RX_ALERT, 1),
		[F_MAX_FRAGMENT] = FIX(TR_TAG_MAX_FRAGMENT, 2),
		[F_TX_LIMIT] = FIX(TR_TAG_TX_LIMIT, 8),
		[F_TX_UNDER_KEY] = FIX(TR_TAG_TX_UNDER_KEY, 8),
		[F_TX_TAKEN] = FIX(TR_TAG_TX_TAKEN, 4),
		[F_ANSWER_END] = FIX(TR_TAG_ANSWER_END, 4),
		[F_PLAIN] = CHUNKS(TR_TAG_PLAIN),
		[F_CIPHERTEXT] = CHUNKS(TR_TAG_CIPHERTEXT),
		[F_SEALED] = CHUNKS(TR_TAG_SEALED),
		[F_LENGTHS] = FIX(TR_TAG_LENGTHS, 12),
	};
#undef FIX
#undef CHUNKS
	struct keysched_session *ks = NULL;
	struct tlsrec *t = NULL;
	EVP_CIPHER *cipher;
	size_t key_len, plain, ct, sealed;
	uint32_t answer, taken;
	uint8_t flags;
	int version, err, r;

	*out = NULL;
	r = tlv_parse(buf, len, f, F_N);
	if (r)
		return r;
	version = tlv_u16(&f[F_VERSION]);
	if (version != TLS1_2_VERSION && version != TLS1_3_VERSION)
		return -EPROTONOSUPPORT;
	switch (tlv_u8(&f[F_CIPHER])) {
	case KEYSCHED_AES_128_GCM:
		cipher = cipher_get("AES-128-GCM");
		key_len = 16;
		break;
	case KEYSCHED_AES_256_GCM:
		cipher = cipher_get("AES-256-GCM");
		key_len = 32;
		break;
	case KEYSCHED_CHACHA20_POLY1305:
		cipher = cipher_get("ChaCha20-Poly1305");
		key_len = 32;
		break;
	default:
		return -EOPNOTSUPP;
	}
	if (!cipher)
		return -EOPNOTSUPP;
	flags = tlv_u8(&f[F_FLAGS]);
	err = (int)tlv_u32(&f[F_RX_ERR]);
	plain = f[F_PLAIN].total;
	ct = f[F_CIPHERTEXT].total;
	sealed = f[F_SEALED].total;
	answer = tlv_u32(&f[F_ANSWER_END]);
	taken = tlv_u32(&f[F_TX_TAKEN]);
	/* Every value within what this layer itself could have produced. */
	if (plain != le32(f[F_LENGTHS].val) || ct != le32(f[F_LENGTHS].val + 4) ||
	    sealed != le32(f[F_LENGTHS].val + 8) ||
	    f[F_RX_KEY].len != key_len || f[F_TX_KEY].len != key_len ||
	    tlv_u8(&f[F_SERVER]) > 1 || (flags & ~TR_F_ALL) ||
	    err > 0 || err < -4095 || (err && !(flags & TR_F_RX_DONE)) ||
	    tlv_u16(&f[F_MAX_FRAGMENT]) < 64 || tlv_u16(&f[F_MAX_FRAGMENT]) > REC_MAX_PLAIN ||
	    tlv_u64(&f[F_TX_LIMIT]) < 1 || taken > REC_MAX_PLAIN ||
	    plain > REC_MAX_PLAIN || plain + ct > REC_RBUF ||
	    ((flags & TR_F_RX_DONE) && plain + ct > 0) ||
	    sealed > REC_TBUF || answer > sealed || (answer && version != TLS1_3_VERSION))
		return -EBADMSG;
	r = keysched_session_import(f[F_SESSION].val, f[F_SESSION].len, &ks);
	if (r)
		return r;
	if (ks->cipher != tlv_u8(&f[F_CIPHER]) || ks->version != version ||
	    ks->is_server != tlv_u8(&f[F_SERVER])) {
		r = -EBADMSG;
		goto err;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		r = -ENOMEM;
		goto err;
	}
	t->ks = ks;
	ks = NULL;
	t->tls13 = version == TLS1_3_VERSION;
	t->cipher = tlv_u8(&f[F_CIPHER]);
	t->key_len = (uint8_t)key_len;
	t->is_server = tlv_u8(&f[F_SERVER]);
	t->explicit_nonce = !t->tls13 && t->cipher != KEYSCHED_CHACHA20_POLY1305;
	r = tlsmsg_restore(&t->msg, t->tls13, !t->is_server, f[F_MSG].val);
	if (!r)
		r = dir_import(&t->rx, cipher, &f[F_RX_KEY], 0);
	if (!r)
		r = dir_import(&t->tx, cipher, &f[F_TX_KEY], 1);
	if (r)
		goto err;
	t->close_queued = flags & TR_F_CLOSE_QUEUED;
	t->clean_eof = flags & TR_F_CLEAN_EOF;
	t->rx_done = flags & TR_F_RX_DONE;
	t->yielded = flags & TR_F_YIELDED;
	t->rx_err = err;
	t->rx_alert = tlv_u8(&f[F_RX_ALERT]);
	t->max_fragment = tlv_u16(&f[F_MAX_FRAGMENT]);
	t->tx_limit = tlv_u64(&f[F_TX_LIMIT]);
	t->tx_under_key = tlv_u64(&f[F_TX_UNDER_KEY]);
	t->tx_taken = taken;
	/*
	 * The plaintext goes first in the new read buffer and the ciphertext
	 * right after it, as read_records() would have them once the
	 * plaintext is delivered.
	 */
	if (plain + ct > 0) {
		r = buf_import(buf, len, TR_TAG_PLAIN, &t->rbuf, REC_RBUF, 0);
		if (!r)
			r = buf_import(buf, len, TR_TAG_CIPHERTEXT, &t->rbuf, REC_RBUF,
				       (uint32_t)plain);
		if (r)
			goto err;
		t->pt_off = 0;
		t->pt_len = (uint32_t)plain;
		t->rhead = (uint32_t)plain;
		t->rtail = (uint32_t)(plain + ct);
	}
	if (sealed > 0) {
		r = buf_import(buf, len, TR_TAG_SEALED, &t->tbuf, REC_TBUF, 0);
		if (r)
			goto err;
		t->thead = 0;
		t->ttail = (uint32_t)sealed;
		t->answer_end = answer;
	}
	*out = t;
	return 0;
err:
	keysched_session_free(ks);
	tlsrec_free(t);
	return r;
}
