/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * fuzz_tlsrec.c - libFuzzer harness for tlsrec.c, pgktls's own TLS record
 * layer, on the path that reads what a client or PostgreSQL sends.
 *
 * Random bytes would all fail authentication and only exercise the header
 * check, so the input is a script of records that the harness SEALS with the
 * peer's real keys and writes into the socket the target tlsrec reads from:
 * the AEAD succeeds and the record contents reach the deep paths (TLS 1.3
 * inner type and padding, alerts, NewSessionTicket, KeyUpdate, TLS 1.2
 * renegotiation requests, sizes, sequence numbers).
 *
 * White box: this file includes ../../src/tlsrec.c, so it reaches the static
 * open_record() and the struct, and so that it needs no test-only API. (The
 * library's tlsrec.o is then not linked: this file defines its symbols.)
 * Setup, once per process: one real OpenSSL handshake per version and
 * cipher (TLS 1.2 and 1.3 x AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305)
 * over a socketpair, with an in-memory ECDSA certificate. Per input, both
 * ends of the chosen pair become fresh tlsrecs with tlsrec_new(): the TLS 1.3
 * traffic secrets that tlsrec_new() moves out of an SSL are put back first by
 * replaying the keylog lines keysched.c's callback saw during the handshake, so
 * every input starts from the same keys and sequence numbers with no
 * handshake (a few thousand inputs a second). One end is the target; the
 * other, "the peer", lends its keyed contexts: the harness's own sealer
 * (written from RFC 8446 5.2 / 5288 / 7905, not tlsrec's seal(), which has
 * no padding and no size escape hatch) encrypts with the peer's TX state,
 * and the peer's RX state opens what the target sends back.
 *
 * Input: byte 0 flags: bits 0-2 the version and cipher (% 6), bit 3 the
 * target is the client end, bit 4 a tiny send buffer on the target's socket
 * (its answers meet EAGAIN and wait in its queue), bit 5 sequence numbers
 * start just below 2^64 - 1 (byte 2: how far below, RX low nibble, TX high),
 * bit 6 TLS 1.2 AES-GCM explicit nonces that are not the sequence number,
 * bit 7 one more tlsrec_read() after the end, which must return the end
 * again (relay.c never asks: it stops at EOF and closes on an error).
 * Byte 1: the read size. Then ops, each an opcode byte (% 10) and its
 * operands (missing bytes read as 0):
 *   0 DATA l0 l1 pad: application data, (l1 << 8 | l0) % 18700 bytes (the
 *     input's next bytes, then a pattern), TLS 1.3 padding from pad
 *   1 ALERT n level desc: an alert of n % 4 bytes, TLS 1.3 padding n >> 2
 *   2 HS ctl rep msgs...: a handshake record of 1 + ctl % 4 messages, each
 *     "tsel blen body": type from tsel, body of blen bytes; bit 6 of tsel
 *     declares a longer body than there is; ctl bit 2: cut (ctl >> 4) bytes
 *     off the end, bit 3: append that many bytes; rep >= 128 repeats the
 *     messages 1 + (rep & 127) * 8 times (many answers in one record)
 *   3 KEYUPDATE req: one KeyUpdate message with request_update = req
 *   4 RAW type len bytes: TLS 1.2: a record of that content type; TLS 1.3:
 *     the inner plaintext as given (zeros only: no content type)
 *   5 CORRUPT o0 o1 bit: flip a bit of the next record after its header
 *   6 GARBAGE len bytes: raw bytes into the stream
 *   7 SPLIT k: write the stream so far, less its last k bytes, and read
 *   8 WRITE l0 l1: the target sends application data of its own
 *   9 TICKET len: a NewSessionTicket with a body of len bytes
 *
 * A model of RFC 8446/5246 record processing predicts, from what was
 * sealed, how the target must end (data, then EOF, clean close_notify, or
 * which error; after garbage: no more data, any error) and what it must
 * send back (KeyUpdate answers, no_renegotiation warnings, its own data,
 * close_notify), in order and authenticated. Checked: lengths in bounds;
 * the application data returned is exactly the plaintext of the data
 * records before the first failure or close_notify; none after it; the
 * counters; what the target sends back; no leaks, no UB (ASan, UBSan).
 *
 * Built by `./configure --enable-fuzzing` (see tests/fuzz/run.sh).
 */
#include "../../src/tlsrec.c"

#include <sys/socket.h>

#include <openssl/x509.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_tlsrec: %s:%d: %s\n", __FILE__, __LINE__,    \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* The whole stream the harness seals for one input. */
#define MAX_STREAM (256u * 1024)
/* Largest record plaintext the script may ask for: past both size limits. */
#define MAX_INNER (18700u + 1 + 16384u)
/*
 * What the target may send back, bounded so that the send buffer of an
 * AF_UNIX socket (212992 bytes of skb truesize by default) never fills
 * while one tlsrec_read() call processes a whole burst of records.
 */
#define MAX_ANSWER_BYTES (64u * 1024)
#define MAX_ANSWER_RECS 48u
#define MAX_WRITE_BYTES (96u * 1024)
#define MAX_OUT_RECS 4096u
#define MAX_ACTIONS 256u
#define OUT_CAP (512u * 1024)
/* Filler for short operands, and the target's own data. */
#define PATTERN_LEN (MAX_WRITE_BYTES + 65536u)

/* One version and cipher; a handshaken pair kept for the whole process. */
struct tmpl {
	int version;
	const char *suite;
	SSL_CTX *sctx, *cctx;
	SSL *ssl[2];			/* [0] server, [1] client: never used for records */
	char *lines[2][2];		/* their keylog lines: client, server traffic secret */
};

static struct tmpl tmpls[] = {
	{ .version = TLS1_2_VERSION, .suite = "ECDHE-ECDSA-AES128-GCM-SHA256" },
	{ .version = TLS1_2_VERSION, .suite = "ECDHE-ECDSA-AES256-GCM-SHA384" },
	{ .version = TLS1_2_VERSION, .suite = "ECDHE-ECDSA-CHACHA20-POLY1305" },
	{ .version = TLS1_3_VERSION, .suite = "TLS_AES_128_GCM_SHA256" },
	{ .version = TLS1_3_VERSION, .suite = "TLS_AES_256_GCM_SHA384" },
	{ .version = TLS1_3_VERSION, .suite = "TLS_CHACHA20_POLY1305_SHA256" },
};

static SSL_CTX_keylog_cb_func lib_keylog;	/* keysched.c's callback */
static struct tmpl *keylog_tmpl;		/* the handshake in progress */
static uint8_t pattern[PATTERN_LEN];

/* What the target sends back, as the model expects it. */
enum out_kind {
	OUT_KEY_UPDATE,		/* KeyUpdate(update_not_requested), then its TX rekeys */
	OUT_NO_RENEG,		/* warning alert no_renegotiation */
	OUT_DATA,		/* its own data: pattern + off, len */
	OUT_FATAL,		/* a fatal alert, description in off, after a failure */
};

struct out_rec {
	uint8_t kind;		/* enum out_kind */
	uint32_t off, len;	/* OUT_DATA */
};

/* How the model says the target's reading ends. */
enum term {
	T_NONE,		/* not yet: at the end of the stream, EOF without close_notify */
	T_CLOSE,	/* close_notify: 0, clean */
	T_ERR,		/* a definite -errno */
	T_ANY,		/* after garbage: no more data; any error or EOF, never clean */
};

/* A point in the stream where the harness acts: after writing the bytes before off. */
struct action {
	uint32_t off;
	bool write;	/* else a split: write up to here and read */
	uint32_t len;	/* write: bytes of the target's own data */
};

struct fz {
	struct tlsrec *t, *p;	/* target, peer */
	int fd[2];		/* [0] the target's socket, [1] the peer's */
	bool tls13, small, probe, xnonce;
	size_t rlen;		/* tlsrec_read()'s buffer size */

	/* Script state. */
	const uint8_t *in;
	size_t in_len, in_off;
	bool corrupt;		/* flip a bit of the next record */
	uint32_t corrupt_off;
	uint8_t corrupt_bit;
	uint8_t *stream;
	uint32_t slen;
	bool full;		/* MAX_STREAM reached: the rest of the script is dropped */
	struct action act[MAX_ACTIONS];
	uint32_t nact;

	/* The model. */
	struct tlsmsg msg;		/* the post-handshake rules (fuzz_tlsmsg checks them) */
	bool fatal;			/* the target owes the peer a fatal alert */
	enum term term;
	int err;			/* T_ERR */
	uint8_t *data;			/* the application data the target must return */
	uint32_t data_len;
	/* Tiny send buffer: the data offsets at which -ENOBUFS may end reading. */
	uint32_t maybe_nobufs[MAX_ANSWER_RECS];
	uint32_t nmaybe;
	uint64_t tx_seq;		/* the target's TX sequence number */
	uint64_t ctrl, alerts, tickets, key_updates;
	struct out_rec out[MAX_OUT_RECS];
	uint32_t nout;
	uint32_t answer_bytes, answer_recs;	/* see MAX_ANSWER_* */
	uint32_t write_bytes;		/* the target's own data in the script */
	uint32_t write_bytes_done;	/* and in the run */

	/* The run. */
	uint8_t *got;			/* what tlsrec_read() returned */
	uint32_t got_len;
	ssize_t result;			/* how reading ended */
	bool ended;
	uint8_t *outbuf;		/* what the target sent */
	uint32_t outlen;
	struct stats st;
	char err_msg[160];
};

static uint8_t in_byte(struct fz *f)
{
	return f->in_off < f->in_len ? f->in[f->in_off++] : 0;
}

/* @n bytes of script into @dst: the input's next bytes, then the pattern. */
static void in_bytes(struct fz *f, uint8_t *dst, size_t n)
{
	size_t k = f->in_len - f->in_off;

	if (k > n)
		k = n;
	memcpy(dst, f->in + f->in_off, k);
	f->in_off += k;
	memcpy(dst + k, pattern, n - k);
}

/* ---- setup ---- */

static void keylog_save(const SSL *ssl, const char *line)
{
	static const char *const labels[2] = { "CLIENT_TRAFFIC_SECRET_0 ",
					       "SERVER_TRAFFIC_SECRET_0 " };

	for (int i = 0; i < 2; i++) {
		if (strncmp(line, labels[i], strlen(labels[i])))
			continue;
		char **slot = &keylog_tmpl->lines[SSL_is_server(ssl) ? 0 : 1][i];

		free(*slot);
		*slot = strdup(line);
		FUZZ_CHECK(*slot);
	}
	lib_keylog(ssl, line);
}

/* A self-signed P-256 certificate: the ECDSA suites need one; nobody verifies it. */
static void make_cert(EVP_PKEY **key, X509 **cert)
{
	*key = EVP_EC_gen("P-256");
	*cert = X509_new();
	FUZZ_CHECK(*key && *cert);
	FUZZ_CHECK(ASN1_INTEGER_set(X509_get_serialNumber(*cert), 1) == 1);
	FUZZ_CHECK(X509_gmtime_adj(X509_getm_notBefore(*cert), 0));
	FUZZ_CHECK(X509_gmtime_adj(X509_getm_notAfter(*cert), 86400));
	FUZZ_CHECK(X509_NAME_add_entry_by_txt(X509_get_subject_name(*cert), "CN", MBSTRING_ASC,
					      (const unsigned char *)"fuzz", -1, -1, 0) == 1);
	FUZZ_CHECK(X509_set_issuer_name(*cert, X509_get_subject_name(*cert)) == 1);
	FUZZ_CHECK(X509_set_pubkey(*cert, *key) == 1);
	FUZZ_CHECK(X509_sign(*cert, *key, EVP_sha256()) > 0);
}

static SSL_CTX *make_ctx(bool server, const struct tmpl *tp, EVP_PKEY *key, X509 *cert)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	FUZZ_CHECK(ctx);
	FUZZ_CHECK(SSL_CTX_set_min_proto_version(ctx, tp->version) == 1);
	FUZZ_CHECK(SSL_CTX_set_max_proto_version(ctx, tp->version) == 1);
	if (tp->version == TLS1_3_VERSION)
		FUZZ_CHECK(SSL_CTX_set_ciphersuites(ctx, tp->suite) == 1);
	else
		FUZZ_CHECK(SSL_CTX_set_cipher_list(ctx, tp->suite) == 1);
	if (server) {
		FUZZ_CHECK(SSL_CTX_use_certificate(ctx, cert) == 1);
		FUZZ_CHECK(SSL_CTX_use_PrivateKey(ctx, key) == 1);
		/* A ticket would sit unread in the client's socket. */
		FUZZ_CHECK(SSL_CTX_set_num_tickets(ctx, 0) == 1);
	}
	FUZZ_CHECK(keysched_ctx_prepare(ctx) == 0);
	lib_keylog = SSL_CTX_get_keylog_callback(ctx);
	FUZZ_CHECK(lib_keylog);
	SSL_CTX_set_keylog_callback(ctx, keylog_save);
	return ctx;
}

static void tmpl_init(struct tmpl *tp, EVP_PKEY *key, X509 *cert)
{
	bool done[2] = { false, false };
	int sv[2];

	tp->sctx = make_ctx(true, tp, key, cert);
	tp->cctx = make_ctx(false, tp, key, cert);
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	tp->ssl[0] = SSL_new(tp->sctx);
	tp->ssl[1] = SSL_new(tp->cctx);
	FUZZ_CHECK(tp->ssl[0] && tp->ssl[1]);
	SSL_set_fd(tp->ssl[0], sv[0]);
	SSL_set_fd(tp->ssl[1], sv[1]);
	SSL_set_accept_state(tp->ssl[0]);
	SSL_set_connect_state(tp->ssl[1]);
	keylog_tmpl = tp;
	for (int round = 0; !done[0] || !done[1]; round++) {
		FUZZ_CHECK(round < 1000);
		for (int i = 0; i < 2; i++) {
			int r;

			if (done[i])
				continue;
			r = SSL_do_handshake(tp->ssl[i]);
			if (r == 1) {
				done[i] = true;
				continue;
			}
			r = SSL_get_error(tp->ssl[i], r);
			FUZZ_CHECK(r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE);
		}
	}
	keylog_tmpl = NULL;
	FUZZ_CHECK(SSL_version(tp->ssl[0]) == tp->version);
	/* The SSLs only hand out keys from now on: they need no socket. */
	close(sv[0]);
	close(sv[1]);
}

static void setup(void)
{
	EVP_PKEY *key;
	X509 *cert;

	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 131 + (i >> 8) + 7);
	make_cert(&key, &cert);
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(tmpls); i++)
		tmpl_init(&tmpls[i], key, cert);
	EVP_PKEY_free(key);
	X509_free(cert);
}

/* A fresh tlsrec for end @i of @tp, keyed as right after the handshake. */
static struct tlsrec *tmpl_tlsrec(struct tmpl *tp, int i)
{
	struct tlsrec *t;

	if (tp->version == TLS1_3_VERSION) {
		/* The secrets the previous tlsrec_new() took: as the handshake gave them. */
		FUZZ_CHECK(tp->lines[i][0] && tp->lines[i][1]);
		lib_keylog(tp->ssl[i], tp->lines[i][0]);
		lib_keylog(tp->ssl[i], tp->lines[i][1]);
	}
	FUZZ_CHECK(tlsrec_new(tp->ssl[i], &t) == 0);
	return t;
}

/* ---- the peer ---- */

/* The peer's next key for one direction (RFC 8446 7.2), as the target derives its own. */
static void peer_rekey(struct tlsrec *p, bool tx)
{
	struct rec_dir *d = tx ? &p->tx : &p->rx;
	struct keysched_dir_keys k;

	FUZZ_CHECK(keysched_next_keys(p->ks, tx, &k) == 0);
	FUZZ_CHECK(EVP_CipherInit_ex(d->ctx, NULL, NULL, k.key, NULL, tx) == 1);
	memcpy(d->iv, k.iv, KEYSCHED_IV_LEN);
	d->seq = 0;
	OPENSSL_cleanse(&k, sizeof(k));
}

/*
 * Seal @len bytes of @pt as one record at @out with the peer's TX state.
 * TLS 1.3: @pt is the whole inner plaintext (content, type, padding) and
 * the header says application_data; TLS 1.2: @type goes in the header and
 * the AAD. Return: the record's size.
 */
static uint32_t peer_seal(struct fz *f, uint8_t type, const uint8_t *pt, uint32_t len,
			  uint8_t *out)
{
	struct rec_dir *d = &f->p->tx;
	uint8_t nonce[KEYSCHED_IV_LEN], aad[13], *c = out + REC_HDR;
	uint32_t ctlen = len + REC_TAG + (f->p->explicit_nonce ? REC_EXPLICIT : 0);
	int outl;

	out[0] = f->tls13 ? TYPE_DATA : type;
	out[1] = 3;
	out[2] = 3;
	put_be16(out + 3, ctlen);
	if (f->tls13) {
		xor_nonce(nonce, d->iv, d->seq);
		memcpy(aad, out, REC_HDR);
	} else {
		if (f->p->explicit_nonce) {
			/* RFC 5288: any value unique per key; OpenSSL sends the sequence number. */
			memcpy(nonce, d->iv, 4);
			put_be64(nonce + 4, d->seq ^ (f->xnonce ? 0x0123456789abcdefu : 0));
			memcpy(c, nonce + 4, REC_EXPLICIT);
			c += REC_EXPLICIT;
		} else {
			xor_nonce(nonce, d->iv, d->seq);
		}
		put_be64(aad, d->seq);
		aad[8] = type;
		aad[9] = 3;
		aad[10] = 3;
		put_be16(aad + 11, len);
	}
	FUZZ_CHECK(EVP_CipherInit_ex(d->ctx, NULL, NULL, NULL, nonce, 1) == 1);
	FUZZ_CHECK(EVP_CipherUpdate(d->ctx, NULL, &outl, aad, f->tls13 ? REC_HDR : 13) == 1);
	FUZZ_CHECK(len == 0 || EVP_CipherUpdate(d->ctx, c, &outl, pt, (int)len) == 1);
	FUZZ_CHECK(EVP_CipherFinal_ex(d->ctx, c + len, &outl) == 1);
	FUZZ_CHECK(EVP_CIPHER_CTX_ctrl(d->ctx, EVP_CTRL_AEAD_GET_TAG, REC_TAG, c + len) == 1);
	d->seq++;
	return REC_HDR + ctlen;
}

/* ---- the model ---- */

static void model_end(struct fz *f, enum term term, int err)
{
	f->term = term;
	f->err = err;
}

/*
 * A failure that the target answers with fatal alert @alert (RFC 8446 6.2):
 * queued behind its answers, unless its sequence numbers are exhausted.
 */
static void model_fail(struct fz *f, int err, uint8_t alert)
{
	model_end(f, T_ERR, err);
	if (f->tx_seq == UINT64_MAX)
		return;
	f->tx_seq++;
	f->fatal = true;
	FUZZ_CHECK(f->nout < MAX_OUT_RECS);
	f->out[f->nout++] = (struct out_rec){ .kind = OUT_FATAL, .off = alert };
}

/* Size of a record the target seals with @len bytes of content. */
static uint32_t target_rec_size(const struct fz *f, uint32_t len)
{
	if (f->tls13)
		return REC_HDR + len + 1 + REC_TAG;
	return REC_HDR + len + REC_TAG + (f->t->explicit_nonce ? REC_EXPLICIT : 0);
}

/*
 * One answer the target seals while it handles a handshake record, into a
 * queue that starts empty (with a large send buffer every record's answers
 * are flushed before the next record). Return: false when the seal fails.
 */
static bool model_answer(struct fz *f, enum out_kind kind, uint32_t *used, bool dry)
{
	uint32_t need = target_rec_size(f, kind == OUT_KEY_UPDATE ? 5 : 2);

	if (dry) {
		*used += need;
		return true;
	}
	if (f->tx_seq == UINT64_MAX) {
		model_end(f, T_ERR, -EOVERFLOW);
		return false;
	}
	if (*used + need > REC_TBUF) {
		model_end(f, T_ERR, -ENOBUFS);
		return false;
	}
	/* One point per record (at most MAX_ANSWER_RECS of them). */
	if (f->small && (f->nmaybe == 0 || f->maybe_nobufs[f->nmaybe - 1] != f->data_len)) {
		FUZZ_CHECK(f->nmaybe < PGKTLS_ARRAY_SIZE(f->maybe_nobufs));
		f->maybe_nobufs[f->nmaybe++] = f->data_len;
	}
	*used += need;
	f->tx_seq++;
	FUZZ_CHECK(f->nout < MAX_OUT_RECS);
	f->out[f->nout++] = (struct out_rec){ .kind = (uint8_t)kind };
	if (kind == OUT_KEY_UPDATE)
		f->tx_seq = 0;
	return true;
}

/*
 * A post-handshake handshake record. Which messages are allowed is
 * tlsmsg.c's to say (fuzz_tlsmsg checks it against its own model of RFC
 * 8446 4.6 and RFC 5246 7.4.1); this models what the record layer does with
 * the answer: rekey, answer a request once, decline a renegotiation once
 * per record, or fail with the alert named. @dry: only count the answer
 * bytes, on a copy of the state. Return: KeyUpdates that rekeyed the
 * target's RX (the peer's TX must follow).
 */
static uint32_t model_handshake(struct fz *f, const uint8_t *m, uint32_t len, bool dry,
				uint32_t *used)
{
	struct tlsmsg copy = f->msg, *mm = dry ? &copy : &f->msg;
	struct tlsmsg_event ev;

	*used = 0;
	switch (tlsmsg_handshake(mm, m, len, &ev)) {
	case TLSMSG_MALFORMED:
		if (!dry)
			model_fail(f, -EPROTO, ev.alert);
		return 0;
	case TLSMSG_KEY_UPDATE:
		if (tlsmsg_answer_due(mm)) {
			/* A large send buffer: each answer is out before the next request. */
			tlsmsg_answer_sent(mm);
			if (!model_answer(f, OUT_KEY_UPDATE, used, dry))
				return 1;
		}
		if (!dry)
			f->key_updates++;
		break;
	case TLSMSG_RENEGOTIATION:
		if (!model_answer(f, OUT_NO_RENEG, used, dry))
			return 0;
		break;
	default:
		break;
	}
	if (!dry)
		f->tickets += ev.tickets;
	return ev.kind == TLSMSG_KEY_UPDATE;
}

/*
 * What the target does with a record sealed from @pt (see peer_seal()),
 * @ctlen bytes after the header, sealed at sequence number @seq.
 * Return: KeyUpdates the peer's TX must follow.
 */
static uint32_t model_record(struct fz *f, uint8_t type, const uint8_t *pt, uint32_t len,
			     uint32_t ctlen, uint64_t seq, bool corrupt)
{
	struct tlsmsg_event ev;
	uint32_t used;

	if (ctlen > (f->tls13 ? REC_MAX_PLAIN + 256 : REC_MAX_CIPHER)) {
		model_fail(f, -EPROTO, 22);	/* record_overflow */
		return 0;
	}
	if (seq == UINT64_MAX) {
		model_end(f, T_ERR, -EOVERFLOW);
		return 0;
	}
	if (f->tls13 && ctlen < REC_TAG + 1) {
		/* An empty TLSInnerPlaintext: refused before it is opened. */
		model_fail(f, -EPROTO, 20);	/* bad_record_mac */
		return 0;
	}
	if (corrupt) {
		model_fail(f, -EBADMSG, 20);
		return 0;
	}
	if (f->tls13) {
		/* RFC 8446 5.4: at most 2^14 + 1 bytes of inner plaintext, padding included. */
		if (len > REC_MAX_PLAIN + 1) {
			model_fail(f, -EMSGSIZE, 22);
			return 0;
		}
		/* TLSInnerPlaintext: the last non-zero byte is the type. */
		while (len > 0 && pt[len - 1] == 0)
			len--;
		if (len == 0) {
			model_fail(f, -EPROTO, 10);	/* unexpected_message */
			return 0;
		}
		type = pt[--len];
	}
	if (len > REC_MAX_PLAIN) {
		model_fail(f, -EMSGSIZE, 22);
		return 0;
	}
	if (type == TYPE_DATA) {
		memcpy(f->data + f->data_len, pt, len);
		f->data_len += len;
		if (len)
			tlsmsg_data(&f->msg);
		return 0;
	}
	f->ctrl++;
	if (type == TYPE_ALERT) {
		f->alerts++;
		switch (tlsmsg_alert(&f->msg, pt, len, &ev)) {
		case TLSMSG_CLOSE_NOTIFY:
			model_end(f, T_CLOSE, 0);
			break;
		case TLSMSG_PEER_ALERT:
			/* Nothing is sent back after a fatal alert. */
			model_end(f, T_ERR, -ECONNRESET);
			break;
		case TLSMSG_MALFORMED:
			model_fail(f, -EPROTO, ev.alert);
			break;
		default:
			break;	/* a warning: ignored */
		}
		return 0;
	}
	if (type != TYPE_HANDSHAKE) {
		model_fail(f, -EPROTO, 10);
		return 0;
	}
	return model_handshake(f, pt, len, false, &used);
}

/* ---- the script ---- */

/*
 * Append one record: @content (with, for TLS 1.3 unless @raw13, @type and
 * @pad zeros after it) sealed by the peer; the model follows it.
 */
static void emit(struct fz *f, uint8_t type, const uint8_t *content, uint32_t clen, uint32_t pad,
		 bool raw13)
{
	static uint8_t pt[MAX_INNER + 64];
	uint32_t len = clen, rec, ctlen, rekeys = 0;
	uint64_t seq = f->p->tx.seq;
	bool corrupt = f->corrupt;

	f->corrupt = false;
	if (f->full)
		return;
	if (len > MAX_INNER - 1)
		len = MAX_INNER - 1;
	memmove(pt, content, len);
	if (f->tls13 && !raw13) {
		if (pad > MAX_INNER - len - 1)
			pad = MAX_INNER - len - 1;
		pt[len++] = type;
		memset(pt + len, 0, pad);
		len += pad;
	}
	if (f->slen + REC_HDR + REC_EXPLICIT + len + REC_TAG > MAX_STREAM) {
		f->full = true;
		return;
	}
	rec = peer_seal(f, type, pt, len, f->stream + f->slen);
	ctlen = rec - REC_HDR;
	if (corrupt) {
		uint32_t at = REC_HDR + f->corrupt_off % ctlen;

		f->stream[f->slen + at] ^= (uint8_t)(1u << (f->corrupt_bit & 7));
	}
	f->slen += rec;
	if (f->term == T_NONE)
		rekeys = model_record(f, type, pt, len, ctlen, seq, corrupt);
	/* The target rekeyed its RX after this record: the peer's TX follows. */
	if (f->term == T_NONE)
		while (rekeys--)
			peer_rekey(f->p, true);
}

/* A handshake record, unless its answers could fill the target's send buffer. */
static void emit_handshake(struct fz *f, const uint8_t *m, uint32_t len)
{
	uint32_t used;

	if (f->term == T_NONE) {
		model_handshake(f, m, len, true, &used);
		if (used && (f->answer_recs >= MAX_ANSWER_RECS ||
			     f->answer_bytes + used > MAX_ANSWER_BYTES))
			return;
		if (used) {
			f->answer_recs++;
			f->answer_bytes += used;
		}
	}
	emit(f, TYPE_HANDSHAKE, m, len, 0, false);
}

static void add_action(struct fz *f, uint32_t off, bool write, uint32_t len)
{
	if (f->nact >= MAX_ACTIONS)
		return;
	if (f->nact > 0 && off < f->act[f->nact - 1].off)
		off = f->act[f->nact - 1].off;
	f->act[f->nact++] = (struct action){ .off = off, .write = write, .len = len };
}

static void op_handshake(struct fz *f)
{
	static const uint8_t types[8] = { HS_HELLO_REQUEST, HS_CLIENT_HELLO, HS_NEW_SESSION_TICKET,
					  HS_KEY_UPDATE,    HS_KEY_UPDATE,   2, 20, 0 };
	static uint8_t m[MAX_INNER];
	uint8_t ctl = in_byte(f), rep = in_byte(f), extra = ctl >> 4;
	uint32_t len = 0, one, times = rep & 0x80 ? 1 + (rep & 0x7fu) * 8 : 1;

	for (int i = 0; i <= (ctl & 3); i++) {
		uint8_t tsel = in_byte(f), blen = in_byte(f);
		uint8_t type = (tsel & 7) == 7 ? in_byte(f) : types[tsel & 7];
		/* A body declared longer than it is: fragmented, or oversized. */
		uint32_t declared = blen + (tsel & 0x40 ? 1u + (tsel >> 3 & 7) * 0x1000 : 0);

		m[len] = type;
		m[len + 1] = (uint8_t)(declared >> 16);
		m[len + 2] = (uint8_t)(declared >> 8);
		m[len + 3] = (uint8_t)declared;
		in_bytes(f, m + len + 4, blen);
		len += 4 + blen;
	}
	one = len;
	for (uint32_t i = 1; i < times && len + one <= sizeof(m) - 16; i++) {
		memcpy(m + len, m, one);
		len += one;
	}
	if (ctl & 4)
		len = extra > len ? 0 : len - extra;
	if (ctl & 8) {
		in_bytes(f, m + len, extra);
		len += extra;
	}
	emit_handshake(f, m, len);
}

/* Build the stream and the model from the script. */
static void script(struct fz *f)
{
	static uint8_t buf[MAX_INNER];

	while (f->in_off < f->in_len && !f->full) {
		uint8_t op = in_byte(f) % 10, a, b, c;
		uint32_t len;

		switch (op) {
		case 0:	/* DATA */
			a = in_byte(f);
			b = in_byte(f);
			c = in_byte(f);
			len = ((uint32_t)b << 8 | a) % 18700;
			in_bytes(f, buf, len);
			emit(f, TYPE_DATA, buf, len, c < 0xf0 ? c : (c - 0xefu) * 1024, false);
			break;
		case 1:	/* ALERT */
			a = in_byte(f);
			buf[0] = in_byte(f);
			buf[1] = in_byte(f);
			buf[2] = 0xaa;
			emit(f, TYPE_ALERT, buf, a & 3, a >> 2, false);
			break;
		case 2:
			op_handshake(f);
			break;
		case 3:	/* KEYUPDATE */
			buf[0] = HS_KEY_UPDATE;
			buf[1] = buf[2] = 0;
			buf[3] = 1;
			buf[4] = in_byte(f);
			emit_handshake(f, buf, 5);
			break;
		case 4:	/* RAW */
			a = in_byte(f);
			len = in_byte(f);
			in_bytes(f, buf, len);
			emit(f, a, buf, len, 0, true);
			break;
		case 5:	/* CORRUPT */
			a = in_byte(f);
			b = in_byte(f);
			f->corrupt = true;
			f->corrupt_off = (uint32_t)b << 8 | a;
			f->corrupt_bit = in_byte(f);
			break;
		case 6:	/* GARBAGE */
			len = in_byte(f);
			if (f->slen + len > MAX_STREAM) {
				f->full = true;
				break;
			}
			in_bytes(f, f->stream + f->slen, len);
			f->slen += len;
			if (len && f->term == T_NONE)
				model_end(f, T_ANY, 0);
			break;
		case 7:	/* SPLIT */
			a = in_byte(f);
			add_action(f, a > f->slen ? 0 : f->slen - a, false, 0);
			break;
		case 8:	/* WRITE */
			a = in_byte(f);
			b = in_byte(f);
			len = ((uint32_t)b << 8 | a) % 40000 + 1;
			/* Near 2^64 its sequence number would end the connection mid-write. */
			if (f->term != T_NONE || f->tx_seq > UINT64_MAX - 64 ||
			    f->write_bytes + len > MAX_WRITE_BYTES)
				break;
			add_action(f, f->slen, true, len);
			for (uint32_t off = 0; off < len; off += f->t->max_fragment) {
				uint32_t n = len - off < f->t->max_fragment ? len - off
									    : f->t->max_fragment;

				FUZZ_CHECK(f->nout < MAX_OUT_RECS);
				f->out[f->nout++] = (struct out_rec){
					.kind = OUT_DATA, .off = f->write_bytes + off, .len = n
				};
				f->tx_seq++;
			}
			f->write_bytes += len;
			break;
		case 9:	/* TICKET: well formed (RFC 8446 4.6.1), a ticket of 1 + len bytes */
			len = in_byte(f);
			buf[0] = HS_NEW_SESSION_TICKET;
			buf[1] = 0;
			buf[2] = 0;
			buf[3] = (uint8_t)(8 + 1 + 2 + 1 + len + 2);
			memset(buf + 4, 0, 9);		/* lifetime, age_add, empty nonce */
			buf[13] = 0;
			buf[14] = (uint8_t)(1 + len);
			in_bytes(f, buf + 15, 1 + len);
			buf[16 + len] = 0;		/* no extensions */
			buf[17 + len] = 0;
			emit_handshake(f, buf, 18 + len);
			break;
		}
	}
}

/* ---- the run ---- */

/* Take what the target sent. */
static void drain(struct fz *f)
{
	for (;;) {
		ssize_t n = read(f->fd[1], f->outbuf + f->outlen, OUT_CAP - f->outlen);

		if (n > 0) {
			f->outlen += (uint32_t)n;
			FUZZ_CHECK(f->outlen < OUT_CAP);
			continue;
		}
		FUZZ_CHECK(n == -1 && errno == EAGAIN);
		return;
	}
}

/* relay.c's hop_read() loop: read until -EAGAIN, EOF or an error. */
static void drive(struct fz *f)
{
	static uint8_t buf[70000];
	int stalls = 0;

	while (!f->ended) {
		ssize_t n;
		bool ww;

		/* Every failure says what happened, in this call. */
		f->err_msg[0] = '\0';
		n = tlsrec_read(f->t, f->fd[0], buf, f->rlen, &f->st, f->err_msg,
				sizeof(f->err_msg));
		ww = tlsrec_wants_write(f->t);

		drain(f);
		if (n > 0) {
			FUZZ_CHECK((size_t)n <= f->rlen);
			FUZZ_CHECK(f->got_len + (size_t)n <= f->data_len);
			memcpy(f->got + f->got_len, buf, (size_t)n);
			f->got_len += (uint32_t)n;
			continue;
		}
		if (n == -EAGAIN) {
			/* Its queue waits for a writable socket: drain() made room. */
			if (ww && ++stalls < 10000)
				continue;
			/* It yielded after many records without data: relay.c comes back. */
			if (tlsrec_yielded(f->t) && ++stalls < 100000)
				continue;
			return;
		}
		f->ended = true;
		f->result = n;
		if (n < 0)
			FUZZ_CHECK(f->err_msg[0] != '\0');
	}
}

/* Write the stream up to @to, reading whenever the socket is full. */
static void feed(struct fz *f, uint32_t *off, uint32_t to)
{
	while (*off < to && !f->ended) {
		ssize_t n = write(f->fd[1], f->stream + *off, to - *off);

		if (n > 0) {
			*off += (uint32_t)n;
			continue;
		}
		FUZZ_CHECK(n == -1 && errno == EAGAIN);
		drive(f);
	}
	drive(f);
}

/* The target sends its own data, as relay.c's flush_dir() does. */
static void target_write(struct fz *f, uint32_t off, uint32_t len)
{
	uint32_t done = 0;

	for (int tries = 0; done < len; tries++) {
		ssize_t n = tlsrec_write(f->t, f->fd[0], pattern + off + done, len - done,
					 &f->st, f->err_msg, sizeof(f->err_msg));

		FUZZ_CHECK(tries < 100000);
		drain(f);
		if (n == -EAGAIN)
			continue;
		FUZZ_CHECK(n > 0 && (uint32_t)n <= len - done);
		done += (uint32_t)n;
	}
}

/* Open the target's records with the peer's RX state; check each against the model. */
static void check_output(struct fz *f, int shut, bool exact)
{
	struct tlsrec *p = f->p;
	uint32_t off = 0, i = 0, nexp = f->nout;
	bool closed = false;
	uint8_t type;
	char err[160];

	p->rbuf = f->outbuf;
	while (off < f->outlen) {
		const uint8_t *h = f->outbuf + off, *m;
		uint32_t ctlen;

		FUZZ_CHECK(!closed);
		FUZZ_CHECK(f->outlen - off >= REC_HDR);
		ctlen = (uint32_t)h[3] << 8 | h[4];
		FUZZ_CHECK(h[1] == 3 && h[2] == 3 && f->outlen - off >= REC_HDR + ctlen);
		p->rhead = off;
		FUZZ_CHECK(open_record(p, ctlen, &type, err, sizeof(err)) == 0);
		m = p->rbuf + p->pt_off;
		off += REC_HDR + ctlen;
		if (type == TYPE_ALERT && p->pt_len == 2 && m[0] == 1 && m[1] == 0) {
			closed = true;
			continue;
		}
		/*
		 * Not exact (a tiny send buffer): an answer still queued answers the
		 * requests that came after it, so the model's later ones may be
		 * missing; and after garbage, a fatal alert it cannot name may end it.
		 */
		while (!exact && i < nexp && f->out[i].kind == OUT_KEY_UPDATE &&
		       type != TYPE_HANDSHAKE)
			i++;
		if (!exact && i == nexp && type == TYPE_ALERT && p->pt_len == 2 && m[0] == 2) {
			closed = true;
			continue;
		}
		/* Nothing the model does not know of, even when it cannot say how much. */
		FUZZ_CHECK(i < nexp);
		if (f->out[i].kind == OUT_FATAL) {
			FUZZ_CHECK(type == TYPE_ALERT && p->pt_len == 2);
			FUZZ_CHECK(m[0] == 2 && m[1] == f->out[i].off);
			closed = true;
		} else if (f->out[i].kind == OUT_DATA) {
			FUZZ_CHECK(type == TYPE_DATA && p->pt_len == f->out[i].len);
			FUZZ_CHECK(!memcmp(m, pattern + f->out[i].off, p->pt_len));
		} else if (f->out[i].kind == OUT_NO_RENEG) {
			FUZZ_CHECK(type == TYPE_ALERT && p->pt_len == 2);
			FUZZ_CHECK(m[0] == 1 && m[1] == 100);
		} else {
			FUZZ_CHECK(type == TYPE_HANDSHAKE && p->pt_len == 5);
			FUZZ_CHECK(!memcmp(m, "\x18\0\0\1\0", 5));
		}
		if (type == TYPE_HANDSHAKE)
			peer_rekey(p, false);
		i++;
	}
	p->rbuf = NULL;
	p->rhead = p->pt_off = p->pt_len = 0;
	if (exact) {
		FUZZ_CHECK(i == nexp);
		FUZZ_CHECK(closed == (shut == 0 || f->fatal));
	}
}

/* How reading ended, against the model. Return: whether the model was exact. */
static bool check_end(struct fz *f)
{
	bool clean = tlsrec_clean_eof(f->t);

	FUZZ_CHECK(f->ended);
	FUZZ_CHECK(f->result <= 0 && f->result != -EAGAIN);
	/* What follows the end is never read: relay.c must not be told otherwise. */
	FUZZ_CHECK(!tlsrec_has_pending(f->t));
	FUZZ_CHECK(!memcmp(f->got, f->data, f->got_len < f->data_len ? f->got_len
									 : f->data_len));
	if (f->small && f->result == -ENOBUFS) {
		/* A queue that had not drained met the next record's answers. */
		bool found = f->term == T_ERR && f->err == -ENOBUFS && f->got_len == f->data_len;

		for (uint32_t i = 0; i < f->nmaybe; i++)
			found |= f->maybe_nobufs[i] == f->got_len;
		FUZZ_CHECK(found);
		return false;
	}
	switch (f->term) {
	case T_NONE:
		FUZZ_CHECK(f->result == 0 && !clean);
		break;
	case T_CLOSE:
		FUZZ_CHECK(f->result == 0 && clean);
		break;
	case T_ERR:
		if (f->result != f->err)
			fprintf(stderr, "fuzz_tlsrec: expected %d, got %zd (%s)\n", f->err,
				f->result, f->err_msg);
		FUZZ_CHECK(f->result == f->err);
		break;
	case T_ANY:
		/* Nothing forged authenticates: no data after the garbage, no clean close. */
		FUZZ_CHECK(f->got_len <= f->data_len);
		FUZZ_CHECK(!clean);
		return false;
	}
	FUZZ_CHECK(f->got_len == f->data_len);
	FUZZ_CHECK(f->st.tls_control_records == f->ctrl);
	FUZZ_CHECK(f->st.tls_alerts == f->alerts);
	FUZZ_CHECK(f->st.tls_tickets == f->tickets);
	FUZZ_CHECK(f->st.tls_key_updates == f->key_updates);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t rlens[8] = { 1, 5, 100, 1000, 4096, 16384, 16385, 65536 };
	static uint8_t stream[MAX_STREAM], expect[MAX_STREAM], got[MAX_STREAM], outbuf[OUT_CAP];
	static struct fz fz;
	static bool ready;
	struct tmpl *tp;
	struct fz *f;
	uint32_t off = 0;
	uint8_t flags;
	bool exact;
	int shut, tries;

	if (size < 3)
		return 0;
	if (!ready) {
		setup();
		ready = true;
	}
	/* Static: ASan makes every fresh 256 KB buffer cost more than the run itself. */
	f = &fz;
	memset(f, 0, sizeof(*f));
	flags = data[0];
	tp = &tmpls[(flags & 7) % PGKTLS_ARRAY_SIZE(tmpls)];
	f->tls13 = tp->version == TLS1_3_VERSION;
	f->small = flags & 0x10;
	f->xnonce = flags & 0x40;
	f->probe = flags & 0x80;
	f->rlen = rlens[data[1] & 7] + (data[1] >> 3);
	f->t = tmpl_tlsrec(tp, flags & 8 ? 1 : 0);
	f->p = tmpl_tlsrec(tp, flags & 8 ? 0 : 1);
	if (flags & 0x20) {
		/* Near the end of the sequence space (2^64 - 1 is never used). */
		f->t->rx.seq = f->p->tx.seq = UINT64_MAX - (data[2] & 15);
		f->t->tx.seq = f->p->rx.seq = UINT64_MAX - (data[2] >> 4);
	}
	f->tx_seq = f->t->tx.seq;
	tlsmsg_init(&f->msg, f->tls13, flags & 8);
	f->in = data + 3;
	f->in_len = size - 3;
	f->stream = stream;
	f->data = expect;
	f->got = got;
	f->outbuf = outbuf;
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, f->fd) == 0);
	if (f->small) {
		int one = 1;	/* the kernel's minimum */

		FUZZ_CHECK(setsockopt(f->fd[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof(one)) == 0);
	}

	script(f);

	/* Run: the stream in the chunks the script asked for, the target's writes between. */
	for (uint32_t i = 0; i < f->nact; i++) {
		feed(f, &off, f->act[i].off);
		if (f->act[i].write && !f->ended) {
			target_write(f, f->write_bytes_done, f->act[i].len);
			f->write_bytes_done += f->act[i].len;
		}
	}
	feed(f, &off, f->slen);
	/* The peer is done: FIN. */
	FUZZ_CHECK(shutdown(f->fd[1], SHUT_WR) == 0);
	drive(f);
	exact = check_end(f);
	if (f->probe) {
		uint8_t buf[64];
		ssize_t n;

		f->err_msg[0] = '\0';
		n = tlsrec_read(f->t, f->fd[0], buf, sizeof(buf), &f->st, f->err_msg,
				sizeof(f->err_msg));
		/* Nothing after close_notify, a fatal alert or a failure (RFC 8446 6). */
		FUZZ_CHECK(n == f->result);
		FUZZ_CHECK(n == 0 || f->err_msg[0] != '\0');
		FUZZ_CHECK(tlsrec_clean_eof(f->t) == (f->term == T_CLOSE && f->result == 0));
		drain(f);
	}
	/* relay.c's hop_shutdown_write(): close_notify, retried while the socket is full. */
	for (tries = 0; (shut = tlsrec_shutdown(f->t, f->fd[0])) == -EAGAIN; tries++) {
		FUZZ_CHECK(tries < 100000);
		drain(f);
	}
	drain(f);
	/* Its queue goes out first, so only an exhausted sequence number stops it. */
	FUZZ_CHECK(shut == 0 || shut == -EOVERFLOW);
	if (exact && !f->small) {
		int want = 0;

		if (f->tx_seq == UINT64_MAX && !f->fatal)
			want = -EOVERFLOW;
		FUZZ_CHECK(shut == want);
	}
	check_output(f, shut, exact && !f->small);
	FUZZ_CHECK(!tlsrec_wants_write(f->t) || shut != 0);

	tlsrec_free(f->t);
	tlsrec_free(f->p);
	close(f->fd[0]);
	close(f->fd[1]);
	return 0;
}
