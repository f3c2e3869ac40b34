// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * ktls.c - hand an established session's keys (keysched.c derives them) to
 * the kernel (TCP_ULP "tls", TLS_RX then TLS_TX), read and write kTLS
 * control records, and install the next key of a KeyUpdate.
 */
#include "config.h"

#include "pgktls/ktls.h"

#include <sys/socket.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "pgktls/keysched.h"
#include "pgktls/log.h"
#include "pgktls/tls_uapi.h"

/* Handshake message types we may meet after the handshake. */
#define HS_KEY_UPDATE 24

/* One cipher the kernel can take. */
struct ktls_cipher {
	uint8_t cipher;		/* enum keysched_cipher */
	uint16_t kernel_type;	/* TLS_CIPHER_* */
	const char *name;	/* for logs, as `ss -tie` spells it */
};

static const struct ktls_cipher ktls_ciphers[] = {
	{ KEYSCHED_AES_128_GCM, TLS_CIPHER_AES_GCM_128, "aes-gcm-128" },
	{ KEYSCHED_AES_256_GCM, TLS_CIPHER_AES_GCM_256, "aes-gcm-256" },
	{ KEYSCHED_CHACHA20_POLY1305, TLS_CIPHER_CHACHA20_POLY1305, "chacha20-poly1305" },
};

/* Every struct the kernel may get; setsockopt is passed the one that matches. */
union ktls_crypto_info {
	struct tls_crypto_info info;
	struct tls12_crypto_info_aes_gcm_128 gcm128;
	struct tls12_crypto_info_aes_gcm_256 gcm256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static bool probe_result;

/* The kernel's entry for @cipher (enum keysched_cipher), or NULL if it takes none. */
static const struct ktls_cipher *cipher_lookup(uint8_t cipher)
{
	size_t i;

	for (i = 0; i < PGKTLS_ARRAY_SIZE(ktls_ciphers); i++)
		if (ktls_ciphers[i].cipher == cipher)
			return &ktls_ciphers[i];
	return NULL;
}

/*
 * Fill the kernel's struct for @kc. AES-GCM: salt = the implicit 4 bytes;
 * TLS 1.3 iv = write_iv[4..11]; TLS 1.2 iv = the explicit nonce the kernel
 * starts counting from on TX, which we set to the sequence number as OpenSSL
 * does. ChaCha20: the whole 12-byte IV goes in iv, no salt.
 * Return: the size to pass to setsockopt.
 */
static socklen_t fill_crypto_info(union ktls_crypto_info *ci, const struct ktls_cipher *kc,
				  uint16_t version, const struct keysched_dir_keys *k, uint64_t seq)
{
	uint8_t rec_seq[8];
	int i;

	for (i = 7; i >= 0; i--, seq >>= 8)
		rec_seq[i] = (uint8_t)seq;
	memset(ci, 0, sizeof(*ci));
	ci->info.version = version;
	ci->info.cipher_type = kc->kernel_type;
	switch (kc->kernel_type) {
	case TLS_CIPHER_AES_GCM_128:
		memcpy(ci->gcm128.key, k->key, sizeof(ci->gcm128.key));
		memcpy(ci->gcm128.salt, k->iv, sizeof(ci->gcm128.salt));
		if (version == TLS_1_3_VERSION)
			memcpy(ci->gcm128.iv, k->iv + 4, sizeof(ci->gcm128.iv));
		else
			memcpy(ci->gcm128.iv, rec_seq, sizeof(ci->gcm128.iv));
		memcpy(ci->gcm128.rec_seq, rec_seq, sizeof(rec_seq));
		return sizeof(ci->gcm128);
	case TLS_CIPHER_AES_GCM_256:
		memcpy(ci->gcm256.key, k->key, sizeof(ci->gcm256.key));
		memcpy(ci->gcm256.salt, k->iv, sizeof(ci->gcm256.salt));
		if (version == TLS_1_3_VERSION)
			memcpy(ci->gcm256.iv, k->iv + 4, sizeof(ci->gcm256.iv));
		else
			memcpy(ci->gcm256.iv, rec_seq, sizeof(ci->gcm256.iv));
		memcpy(ci->gcm256.rec_seq, rec_seq, sizeof(rec_seq));
		return sizeof(ci->gcm256);
	default: /* TLS_CIPHER_CHACHA20_POLY1305 */
		memcpy(ci->chacha.key, k->key, sizeof(ci->chacha.key));
		memcpy(ci->chacha.iv, k->iv, sizeof(ci->chacha.iv));
		memcpy(ci->chacha.rec_seq, rec_seq, sizeof(rec_seq));
		return sizeof(ci->chacha);
	}
}

/* Hand one direction's keys to the kernel; wipes its own copy. Return 0 or -errno. */
static int set_dir(int fd, int dir, const struct ktls_cipher *kc, uint16_t version,
		   const struct keysched_dir_keys *k, uint64_t seq)
{
	union ktls_crypto_info ci;
	socklen_t len = fill_crypto_info(&ci, kc, version, k, seq);
	int ret = 0;

	if (setsockopt(fd, SOL_TLS, dir, &ci, len) == -1)
		ret = -errno;
	OPENSSL_cleanse(&ci, sizeof(ci));
	return ret;
}

static int attach_ulp(int fd)
{
	if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) == -1 && errno != EEXIST)
		return -errno;
	return 0;
}

static void set_reason(struct ktls_hop_state *st, enum ktls_reason r, int err)
{
	st->rx_reason = (uint8_t)r;
	st->tx_reason = (uint8_t)r;
	st->err = err;
}

/*
 * Kernel options past the keys, each with an environment knob ("0" off, "1" on) so one
 * build can be measured with and without, in the same boot:
 *  - PGKTLS_KTLS_RX_NO_PAD (default off): TLS_RX_EXPECT_NO_PAD (Linux 6.0+, TLS 1.3 RX).
 *    The kernel decrypts straight into the reader's buffer, betting that the peer does not
 *    pad records; a padded record is decrypted twice (TlsRxNoPadViolation). The kernel's
 *    documentation calls it safe only with a trusted peer: a client could double our
 *    decryption cost at will, and the bet pays only on recvmsg into a large buffer,
 *    not on the splice path the relay uses for bulk data. Measured: docs/KTLS.md.
 *  - PGKTLS_KTLS_TX_ZEROCOPY_RO (default on): TLS_TX_ZEROCOPY_RO (5.19+). With NIC
 *    offload, spliced pages go to the NIC without a copy; the pages must not change while
 *    in flight, which holds for what the relay splices (socket buffers, never rewritten).
 *    Software kTLS ignores it.
 * Kernels without them say ENOPROTOOPT: nothing is lost, so it is not logged.
 */
static bool knob_on(const char *name, bool dflt)
{
	const char *v = getenv(name);

	if (!v || !*v)
		return dflt;
	return strcmp(v, "0") != 0;
}

static void tune_dir(int fd, int opt, const char *what)
{
	unsigned int one = 1;

	if (setsockopt(fd, SOL_TLS, opt, &one, sizeof(one)) == -1 && errno != ENOPROTOOPT)
		log_debug("kTLS: %s: %s", what, strerror(errno));
}

/* What a keysched_export() failure means for the counters. */
static enum ktls_reason export_reason(int err)
{
	switch (err) {
	case -EPROTONOSUPPORT:
		return KTLS_R_VERSION;
	case -EOPNOTSUPP:
		return KTLS_R_CIPHER;
	case -EBUSY:
		return KTLS_R_PENDING;
	default:	/* -ENOKEY, -EPROTO */
		return KTLS_R_NO_SECRETS;
	}
}

int ktls_install(SSL *ssl, int fd, struct ktls_hop_state *st)
{
	struct keysched_keys k;
	const struct ktls_cipher *kc;
	int domain;
	socklen_t dlen = sizeof(domain);
	uint16_t kversion;
	int ret;

	memset(st, 0, sizeof(*st));
	st->rx = KTLS_ENGINE_USERSPACE;
	st->tx = KTLS_ENGINE_USERSPACE;
	memset(&k, 0, sizeof(k));

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen) == -1) {
		ret = -errno;
		set_reason(st, KTLS_R_SETSOCKOPT, -ret);
		goto out;
	}
	if (domain != AF_INET && domain != AF_INET6) {
		set_reason(st, KTLS_R_NOT_TCP, 0);
		ret = -EOPNOTSUPP;
		goto out;
	}
	ret = keysched_export(ssl, &k);
	if (ret) {
		set_reason(st, export_reason(ret), 0);
		/* Our contract predates keysched's finer codes: version and cipher are one. */
		if (ret == -EPROTONOSUPPORT)
			ret = -EOPNOTSUPP;
		goto out;
	}
	kc = cipher_lookup(k.cipher);
	if (!kc) {
		set_reason(st, KTLS_R_CIPHER, 0);
		ret = -EOPNOTSUPP;
		goto out;
	}
	/*
	 * RFC 6066 max_fragment_length: the kernel sends records of up to 16 KB
	 * whatever was negotiated, and such a client fails with record_overflow.
	 * Userspace (tlsrec, or OpenSSL) honours the limit.
	 */
	if (k.max_fragment_negotiated) {
		set_reason(st, KTLS_R_MAX_FRAGMENT, 0);
		ret = -EOPNOTSUPP;
		goto out;
	}
	kversion = k.version == TLS1_3_VERSION ? TLS_1_3_VERSION : TLS_1_2_VERSION;

	ret = attach_ulp(fd);
	if (ret) {
		set_reason(st, ret == -ENOENT ? KTLS_R_NO_KERNEL : KTLS_R_SETSOCKOPT, -ret);
		goto out;
	}
	/* RX first: if it fails, nothing is in the kernel and OpenSSL can go on. */
	ret = set_dir(fd, TLS_RX, kc, kversion, &k.rx, k.seq);
	if (ret) {
		set_reason(st, KTLS_R_SETSOCKOPT, -ret);
		goto out;
	}
	st->rx = KTLS_ENGINE_KERNEL;
	if (kversion == TLS_1_3_VERSION && knob_on("PGKTLS_KTLS_RX_NO_PAD", false))
		tune_dir(fd, TLS_RX_EXPECT_NO_PAD, "TLS_RX_EXPECT_NO_PAD");
	/* Test knob: make TX fail after RX worked (undocumented; tests/unit/test_ktls.c). */
	if (getenv("PGKTLS_TEST_KTLS_TX_FAIL"))
		ret = -ENOMEM;
	else
		ret = set_dir(fd, TLS_TX, kc, kversion, &k.tx, k.seq);
	if (ret) {
		/*
		 * RX cannot be taken back from the kernel, and OpenSSL cannot
		 * write records in step with it (its KeyUpdates and alerts would
		 * follow its own state, not the kernel's): the hop is lost.
		 */
		st->tx_reason = KTLS_R_SETSOCKOPT;
		st->err = -ret;
		ret = -ENOTRECOVERABLE;
		goto out;
	}
	st->tx = KTLS_ENGINE_KERNEL;
	if (knob_on("PGKTLS_KTLS_TX_ZEROCOPY_RO", true))
		tune_dir(fd, TLS_TX_ZEROCOPY_RO, "TLS_TX_ZEROCOPY_RO");
out:
	OPENSSL_cleanse(&k, sizeof(k));
	return ret;
}

/* One record of @type through a kTLS TX socket. */
static int send_record(int fd, uint8_t type, const void *data, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(type))];
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cmsg;
	ssize_t n;

	memset(cbuf, 0, sizeof(cbuf));
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_TLS;
	cmsg->cmsg_type = TLS_SET_RECORD_TYPE;
	cmsg->cmsg_len = CMSG_LEN(sizeof(type));
	memcpy(CMSG_DATA(cmsg), &type, sizeof(type));

	n = sendmsg(fd, &msg, MSG_NOSIGNAL);
	if (n == -1)
		return -errno;
	/* A record this small is queued whole or not at all. */
	return (size_t)n == len ? 0 : -EIO;
}

ssize_t ktls_recv_record(int fd, void *buf, size_t len, uint8_t *type)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cmsg;
	bool have_type = false;
	ssize_t n;

	*type = 0;
	n = recvmsg(fd, &msg, 0);
	if (n == -1)
		return -errno;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level == SOL_TLS && cmsg->cmsg_type == TLS_GET_RECORD_TYPE) {
			*type = *(unsigned char *)CMSG_DATA(cmsg);
			have_type = true;
		}
	}
	/* The kernel labels every record it decrypted; bytes without a label are data. */
	if (!have_type && n > 0)
		*type = KTLS_RECORD_DATA;
	return n;
}

int ktls_send_alert(int fd, uint8_t level, uint8_t desc)
{
	const uint8_t alert[2] = { level, desc };

	return send_record(fd, KTLS_RECORD_ALERT, alert, sizeof(alert));
}

/*
 * Install @u, the next generation of @ks's key for @dir (RFC 8446 7.2),
 * and wipe it. The secret only moves on once the kernel took the new key.
 */
static int install_next(const struct keysched_session *ks, int fd, int dir,
			struct keysched_update *u)
{
	const struct ktls_cipher *kc = cipher_lookup(ks->cipher);
	int ret = -EPROTO;

	if (kc)
		ret = set_dir(fd, dir, kc, TLS_1_3_VERSION, &u->keys, 0);
	if (ret) {
		OPENSSL_cleanse(u, sizeof(*u));
		/* Before Linux 6.14 a second TLS_RX/TLS_TX is refused: no rekeying there. */
		if (ret == -EBUSY || ret == -EINVAL || ret == -EEXIST)
			ret = -EKEYREJECTED;
		return ret;
	}
	keysched_advance(ks, u);
	return 0;
}

/* @ks, or a view of @ssl's session when @ks is NULL (the SSL was kept). */
static const struct keysched_session *session_of(SSL *ssl, const struct keysched_session *ks,
						 struct keysched_session *view)
{
	if (ks)
		return ks;
	keysched_view(ssl, view);
	return view;
}

int ktls_key_update_rx(SSL *ssl, struct keysched_session *ks, int fd)
{
	const struct keysched_session *s;
	struct keysched_session view;
	struct keysched_update u;
	int ret;

	s = session_of(ssl, ks, &view);
	ret = keysched_next(s, false, &u);
	if (ret)
		return ret;
	return install_next(s, fd, TLS_RX, &u);
}

int ktls_key_update_tx(SSL *ssl, struct keysched_session *ks, int fd)
{
	/* Our own KeyUpdate, update_not_requested: type, 24-bit length 1, body. */
	static const uint8_t our_update[5] = { HS_KEY_UPDATE, 0, 0, 1, 0 };
	const struct keysched_session *s;
	struct keysched_session view;
	struct keysched_update u;
	int ret;

	s = session_of(ssl, ks, &view);
	/* Nothing goes out unless the next key can be derived. */
	ret = keysched_next(s, true, &u);
	if (ret)
		return ret;
	/* Sent under the old key, so it goes out before TX is rekeyed. */
	ret = send_record(fd, KTLS_RECORD_HANDSHAKE, our_update, sizeof(our_update));
	if (ret) {
		OPENSSL_cleanse(&u, sizeof(u));
		return ret;
	}
	return install_next(s, fd, TLS_TX, &u);
}

/* A connected loopback TCP pair (client end in fds[0]); return 0 or -errno. */
static int loopback_pair(int fds[2])
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t salen = sizeof(sa);
	int lfd, ret = 0;

	fds[0] = fds[1] = -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd == -1)
		return -errno;
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(lfd, 1) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) == -1)
		goto err;
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fds[0] == -1 || connect(fds[0], (struct sockaddr *)&sa, sizeof(sa)) == -1)
		goto err;
	fds[1] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fds[1] == -1)
		goto err;
	close(lfd);
	return 0;
err:
	ret = -errno;
	if (fds[0] != -1)
		close(fds[0]);
	fds[0] = -1;
	close(lfd);
	return ret;
}

/*
 * Whether the kernel takes a (dummy) TLS 1.3 TX key for @kc: the cipher's
 * crypto module may be missing even where the tls module loads.
 */
static bool probe_cipher(const struct ktls_cipher *kc)
{
	struct keysched_dir_keys k;
	int fds[2], ret;

	memset(&k, 0x5a, sizeof(k));
	if (loopback_pair(fds))
		return false;
	ret = attach_ulp(fds[0]);
	if (!ret)
		ret = set_dir(fds[0], TLS_TX, kc, TLS_1_3_VERSION, &k, 0);
	close(fds[0]);
	close(fds[1]);
	return ret == 0;
}

static void probe_run(void)
{
	char ciphers[128] = "";
	int fds[2], ret;
	size_t i;

	ret = loopback_pair(fds);
	if (ret) {
		log_warn("kTLS unavailable: no loopback TCP connection to probe with: %s",
			 strerror(-ret));
		return;
	}
	ret = attach_ulp(fds[0]);
	close(fds[0]);
	close(fds[1]);
	if (ret) {
		log_info("kTLS unavailable: TCP_ULP tls: %s%s", strerror(-ret),
			 ret == -ENOENT ? " (is the tls module loaded?)" : "");
		return;
	}
	probe_result = true;
	for (i = 0; i < PGKTLS_ARRAY_SIZE(ktls_ciphers); i++) {
		if (!probe_cipher(&ktls_ciphers[i]))
			continue;
		if (ciphers[0])
			strncat(ciphers, " ", sizeof(ciphers) - strlen(ciphers) - 1);
		strncat(ciphers, ktls_ciphers[i].name, sizeof(ciphers) - strlen(ciphers) - 1);
	}
	log_info("kTLS: kernel TLS available (ciphers: %s)", ciphers[0] ? ciphers : "none");
	if (ktls_can_rekey())
		log_info("kTLS: this kernel can rekey (TLS 1.3 KeyUpdate offloaded)");
	else
		log_info("kTLS: this kernel cannot rekey (before Linux 6.14): a TLS 1.3 KeyUpdate "
			 "or a send key at its record limit ends the connection cleanly");
}

bool ktls_probe(void)
{
	pthread_once(&probe_once, probe_run);
	return probe_result;
}

/*
 * Whether a second TLS_TX key is taken on a socket (Linux 6.14 added
 * rekeying): a dummy TLS 1.3 key twice, on a loopback pair.
 */
static pthread_once_t rekey_once = PTHREAD_ONCE_INIT;
static bool rekey_result;

static void rekey_probe_run(void)
{
	const struct ktls_cipher *kc = &ktls_ciphers[0];
	struct keysched_dir_keys k;
	int fds[2];

	memset(&k, 0x5a, sizeof(k));
	if (loopback_pair(fds))
		return;
	if (attach_ulp(fds[0]) == 0 && set_dir(fds[0], TLS_TX, kc, TLS_1_3_VERSION, &k, 0) == 0)
		rekey_result = set_dir(fds[0], TLS_TX, kc, TLS_1_3_VERSION, &k, 0) == 0;
	close(fds[0]);
	close(fds[1]);
}

bool ktls_can_rekey(void)
{
	pthread_once(&rekey_once, rekey_probe_run);
	return rekey_result;
}

/* ---- the record budget of a kTLS send key (ktls.h) ---- */

/* Records one AES-GCM send key seals (RFC 8446 5.5, RFC 9001 6.6), as tlsrec.c. */
#define KTLS_GCM_RECORD_LIMIT (1ull << 23)

void ktls_tx_budget_init(struct ktls_tx_budget *b, SSL *ssl, struct keysched_session *ks)
{
	const struct keysched_session *s;
	struct keysched_session view;
	const char *lim;

	b->limit = UINT64_MAX;
	if (!ssl && !ks)
		return;
	s = session_of(ssl, ks, &view);
	b->kc = cipher_lookup(s->cipher);
	b->tls13 = s->version == TLS1_3_VERSION;
	/* ChaCha20-Poly1305's limit (2^62 records) is never reached. */
	if (!b->kc || b->kc->kernel_type == TLS_CIPHER_CHACHA20_POLY1305)
		return;
	lim = getenv("PGKTLS_TEST_REKEY_RECORDS");
	b->limit = lim ? strtoull(lim, NULL, 10) : KTLS_GCM_RECORD_LIMIT;
	if (b->limit < 1)
		b->limit = 1;
}

/*
 * The kernel's record sequence number of @fd's send key: the records sealed
 * under it (from 0 for a TLS 1.3 key pgktls installed, from 1 for TLS 1.2,
 * whose Finished took 0). getsockopt(TLS_TX) returns the key too: wiped.
 */
static int tx_rec_seq(int fd, const struct ktls_cipher *kc, uint64_t *seq)
{
	union ktls_crypto_info ci;
	socklen_t len;
	const uint8_t *rs;
	int ret = 0;

	switch (kc->kernel_type) {
	case TLS_CIPHER_AES_GCM_128:
		len = sizeof(ci.gcm128);
		rs = ci.gcm128.rec_seq;
		break;
	case TLS_CIPHER_AES_GCM_256:
		len = sizeof(ci.gcm256);
		rs = ci.gcm256.rec_seq;
		break;
	default:
		len = sizeof(ci.chacha);
		rs = ci.chacha.rec_seq;
		break;
	}
	memset(&ci, 0, sizeof(ci));
	if (getsockopt(fd, SOL_TLS, TLS_TX, &ci, &len) == -1) {
		ret = -errno;
	} else {
		*seq = 0;
		for (int i = 0; i < 8; i++)
			*seq = *seq << 8 | rs[i];
	}
	OPENSSL_cleanse(&ci, sizeof(ci));
	return ret;
}

int ktls_tx_budget_check(struct ktls_tx_budget *b, int fd)
{
	uint64_t seq = 0;

	if (b->records < b->limit || b->limit == 0)
		return 0;
	/* The noted count is an upper bound: ask the kernel before acting on it. */
	if (b->kc && tx_rec_seq(fd, b->kc, &seq) == 0)
		b->records = seq;
	if (b->records < b->limit)
		return 0;
	if (b->tls13 && ktls_can_rekey())
		return KTLS_TX_REKEY;
	return -EKEYEXPIRED;
}

const char *ktls_reason_name(enum ktls_reason r)
{
	static const char *const names[KTLS__NREASONS] = {
		[KTLS_R_NONE] = "none",
		[KTLS_R_DISABLED] = "disabled",
		[KTLS_R_NO_KERNEL] = "no_kernel",
		[KTLS_R_NOT_TCP] = "not_tcp",
		[KTLS_R_VERSION] = "version",
		[KTLS_R_CIPHER] = "cipher",
		[KTLS_R_PENDING] = "pending",
		[KTLS_R_NO_SECRETS] = "no_secrets",
		[KTLS_R_SETSOCKOPT] = "setsockopt",
		[KTLS_R_MAX_FRAGMENT] = "max_fragment",
	};

	if ((unsigned int)r >= KTLS__NREASONS)
		return "unknown";
	return names[r];
}

const char *ktls_engine_name(enum ktls_engine e)
{
	switch (e) {
	case KTLS_ENGINE_NONE:
		return "none";
	case KTLS_ENGINE_USERSPACE:
		return "userspace";
	case KTLS_ENGINE_KERNEL:
		return "kernel";
	}
	return "unknown";
}
