// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * ktls.c - install an OpenSSL session's keys into the kernel (TCP_ULP "tls"),
 * and read and write kTLS control records.
 *
 * Key schedule, in short:
 *  - TLS 1.3: the keylog callback hands us the application traffic secrets;
 *    key/iv = HKDF-Expand-Label(secret, "key"/"iv"). The secrets stay (in
 *    the SSL's ex_data) while the connection lives, because a KeyUpdate
 *    derives the next ones from them.
 *  - TLS 1.2: key_block = PRF(master secret, "key expansion",
 *    server_random + client_random); nothing is kept after install.
 * Sequence numbers right after the handshake are known, not read (OpenSSL
 * has no getter): TLS 1.2 starts both ways at 1 (Finished used 0), TLS 1.3
 * at 0 (pgktls sends no session tickets, and reads nothing after the
 * handshake before installing).
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

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "pgktls/log.h"
#include "pgktls/tls_uapi.h"

/* Handshake message types we may meet after the handshake. */
#define HS_KEY_UPDATE 24

/* Longest secret (SHA-384) we ever derive. */
#define KTLS_MAX_SECRET 48

/* One cipher the kernel can take, and how its key material is laid out. */
struct ktls_cipher {
	int nid;		/* OpenSSL's NID of the AEAD (SSL_CIPHER_get_cipher_nid) */
	uint16_t kernel_type;	/* TLS_CIPHER_* */
	uint8_t key_len;	/* bytes of write key */
	uint8_t fixed_iv_len;	/* TLS 1.2 implicit IV from the key block: 4 GCM, 12 ChaCha */
	uint8_t salt_len;	/* kernel's salt field: 4 GCM, 0 ChaCha (the whole IV is "iv") */
	const char *name;	/* for logs, as `ss -tie` spells it */
	const char *evp;	/* the EVP cipher, for pgktls's own record layer (tlsrec.c) */
};

static const struct ktls_cipher ktls_ciphers[] = {
	{ NID_aes_128_gcm, TLS_CIPHER_AES_GCM_128, 16, 4, 4, "aes-gcm-128", "AES-128-GCM" },
	{ NID_aes_256_gcm, TLS_CIPHER_AES_GCM_256, 32, 4, 4, "aes-gcm-256", "AES-256-GCM" },
	{ NID_chacha20_poly1305, TLS_CIPHER_CHACHA20_POLY1305, 32, 12, 0, "chacha20-poly1305",
	  "ChaCha20-Poly1305" },
};

/* Every struct the kernel may get; setsockopt is passed the one that matches. */
union ktls_crypto_info {
	struct tls_crypto_info info;
	struct tls12_crypto_info_aes_gcm_128 gcm128;
	struct tls12_crypto_info_aes_gcm_256 gcm256;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

/*
 * TLS 1.3 traffic secrets of one SSL, held in its ex_data from the keylog
 * callback until ktls_forget() (or SSL_free, through secrets_free()).
 */
struct ktls_secrets {
	uint8_t client[KTLS_MAX_SECRET];	/* current client application traffic secret */
	uint8_t server[KTLS_MAX_SECRET];	/* current server application traffic secret */
	uint8_t client_len;			/* 0 until the keylog line arrived */
	uint8_t server_len;
};

/*
 * What a TLS session amounts to once both directions are in the kernel: the
 * cipher and version (for rekeying) and, for TLS 1.3, the current traffic
 * secrets. Either a view of a live SSL, or detached and owning the secrets.
 */
struct ktls_session {
	const struct ktls_cipher *kc;	/* NULL: not a cipher pgktls offloads */
	const char *md;			/* HKDF hash name (static in OpenSSL) */
	bool is_server;
	int version;			/* TLS1_2_VERSION or TLS1_3_VERSION */
	struct ktls_secrets *sec;	/* TLS 1.3 only; owned when detached */
};

static pthread_once_t ex_once = PTHREAD_ONCE_INIT;
static int ex_index = -1;

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static bool probe_result;

static void secrets_wipe_free(struct ktls_secrets *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
}

/* ex_data free callback: the safety net when ktls_forget() was not called. */
static void secrets_free(void *parent PGKTLS_UNUSED, void *ptr, CRYPTO_EX_DATA *ad PGKTLS_UNUSED,
			 int idx PGKTLS_UNUSED, long argl PGKTLS_UNUSED, void *argp PGKTLS_UNUSED)
{
	secrets_wipe_free(ptr);
}

static void ex_index_init(void)
{
	ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, secrets_free);
}

static struct ktls_secrets *secrets_get(const SSL *ssl)
{
	if (ex_index < 0)
		return NULL;
	return SSL_get_ex_data(ssl, ex_index);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode the hex secret at @hex into @out; return its length, or 0 if malformed. */
static uint8_t unhex_secret(const char *hex, uint8_t *out)
{
	size_t n = strlen(hex);
	size_t i;

	if (n == 0 || n % 2 || n / 2 > KTLS_MAX_SECRET)
		return 0;
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			OPENSSL_cleanse(out, i);
			return 0;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return (uint8_t)(n / 2);
}

/*
 * The keylog callback: "LABEL <client_random hex> <secret hex>". Only the
 * two application traffic secrets are kept; OpenSSL wipes @line itself.
 */
static void keylog_cb(const SSL *cssl, const char *line)
{
	static const char client_label[] = "CLIENT_TRAFFIC_SECRET_0 ";
	static const char server_label[] = "SERVER_TRAFFIC_SECRET_0 ";
	/* OpenSSL passes a const SSL, but the ex_data slot is ours to fill. */
	SSL *ssl = (SSL *)cssl;
	struct ktls_secrets *s;
	const char *secret;
	bool is_client;

	if (!strncmp(line, client_label, sizeof(client_label) - 1))
		is_client = true;
	else if (!strncmp(line, server_label, sizeof(server_label) - 1))
		is_client = false;
	else
		return;
	secret = strchr(line + sizeof(client_label) - 1, ' ');
	if (!secret)
		return;
	secret++;

	s = secrets_get(ssl);
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return;	/* ktls_install() will report KTLS_R_NO_SECRETS */
		if (!SSL_set_ex_data(ssl, ex_index, s)) {
			free(s);
			return;
		}
	}
	if (is_client)
		s->client_len = unhex_secret(secret, s->client);
	else
		s->server_len = unhex_secret(secret, s->server);
}

int ktls_ctx_prepare(SSL_CTX *ctx)
{
	pthread_once(&ex_once, ex_index_init);
	if (ex_index < 0)
		return -ENOMEM;
	SSL_CTX_set_keylog_callback(ctx, keylog_cb);
	return 0;
}

static const struct ktls_cipher *cipher_lookup(const SSL *ssl)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int nid;
	size_t i;

	if (!c)
		return NULL;
	nid = SSL_CIPHER_get_cipher_nid(c);
	for (i = 0; i < PGKTLS_ARRAY_SIZE(ktls_ciphers); i++)
		if (ktls_ciphers[i].nid == nid)
			return &ktls_ciphers[i];
	return NULL;
}

/* The PRF / HKDF hash of the session's cipher suite, by provider name. */
static const char *cipher_md_name(const SSL *ssl)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	const EVP_MD *md = c ? SSL_CIPHER_get_handshake_digest(c) : NULL;

	return md ? EVP_MD_get0_name(md) : NULL;
}

/* Run the KDF @name with @params into @out. */
static int kdf_derive(const char *name, OSSL_PARAM *params, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, name, NULL);
	EVP_KDF_CTX *kctx = NULL;
	int ret = -EPROTO;

	if (!kdf)
		goto out;
	kctx = EVP_KDF_CTX_new(kdf);
	if (!kctx)
		goto out;
	if (EVP_KDF_derive(kctx, out, out_len, params) == 1)
		ret = 0;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return ret;
}

/* RFC 8446 7.1 HKDF-Expand-Label(secret, label, "", out_len). */
static int hkdf_expand_label(const char *md, const uint8_t *secret, size_t secret_len,
			     const char *label, uint8_t *out, size_t out_len)
{
	uint8_t info[2 + 1 + 255 + 1];
	size_t label_len = strlen("tls13 ") + strlen(label);
	size_t n = 0;
	int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
	OSSL_PARAM params[5];

	if (label_len > 255)
		return -EINVAL;
	info[n++] = (uint8_t)(out_len >> 8);
	info[n++] = (uint8_t)out_len;
	info[n++] = (uint8_t)label_len;
	memcpy(info + n, "tls13 ", 6);
	memcpy(info + n + 6, label, label_len - 6);
	n += label_len;
	info[n++] = 0;	/* empty context */

	params[0] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret,
						      secret_len);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n);
	params[4] = OSSL_PARAM_construct_end();
	return kdf_derive("HKDF", params, out, out_len);
}

static int tls13_dir_keys(const struct ktls_cipher *kc, const char *md, const uint8_t *secret,
			  size_t secret_len, struct ktls_dir_keys *k)
{
	int ret;

	ret = hkdf_expand_label(md, secret, secret_len, "key", k->key, kc->key_len);
	if (ret)
		return ret;
	return hkdf_expand_label(md, secret, secret_len, "iv", k->iv, KTLS_IV_LEN);
}

/* TLS 1.2 (RFC 5246 6.3, AEAD suites): client key, server key, client IV, server IV. */
static int tls12_keys(SSL *ssl, const struct ktls_cipher *kc, const char *md,
		      struct ktls_dir_keys *client, struct ktls_dir_keys *server)
{
	SSL_SESSION *sess = SSL_get_session(ssl);
	uint8_t master[SSL_MAX_MASTER_KEY_LENGTH];
	uint8_t seed[13 + 2 * SSL3_RANDOM_SIZE];
	uint8_t block[2 * KTLS_MAX_KEY + 2 * KTLS_IV_LEN];
	size_t master_len, block_len = 2u * kc->key_len + 2u * kc->fixed_iv_len;
	OSSL_PARAM params[4];
	int ret = -ENOKEY;

	if (!sess)
		return -ENOKEY;
	master_len = SSL_SESSION_get_master_key(sess, master, sizeof(master));
	if (master_len == 0)
		goto out;
	memcpy(seed, "key expansion", 13);
	if (SSL_get_server_random(ssl, seed + 13, SSL3_RANDOM_SIZE) != SSL3_RANDOM_SIZE ||
	    SSL_get_client_random(ssl, seed + 13 + SSL3_RANDOM_SIZE, SSL3_RANDOM_SIZE) !=
		    SSL3_RANDOM_SIZE)
		goto out;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, master, master_len);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, seed, sizeof(seed));
	params[3] = OSSL_PARAM_construct_end();
	ret = kdf_derive("TLS1-PRF", params, block, block_len);
	if (ret)
		goto out;
	memcpy(client->key, block, kc->key_len);
	memcpy(server->key, block + kc->key_len, kc->key_len);
	memcpy(client->iv, block + 2 * kc->key_len, kc->fixed_iv_len);
	memcpy(server->iv, block + 2 * kc->key_len + kc->fixed_iv_len, kc->fixed_iv_len);
out:
	OPENSSL_cleanse(master, sizeof(master));
	OPENSSL_cleanse(block, sizeof(block));
	return ret;
}

/*
 * Fill the kernel's struct for @kc. AES-GCM: salt = the implicit 4 bytes;
 * TLS 1.3 iv = write_iv[4..11]; TLS 1.2 iv = the explicit nonce the kernel
 * starts counting from on TX, which we set to the sequence number as OpenSSL
 * does. ChaCha20: the whole 12-byte IV goes in iv, no salt.
 * Return: the size to pass to setsockopt.
 */
static socklen_t fill_crypto_info(union ktls_crypto_info *ci, const struct ktls_cipher *kc,
				  uint16_t version, const struct ktls_dir_keys *k, uint64_t seq)
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
		   const struct ktls_dir_keys *k, uint64_t seq)
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
 * Both directions' keys of an established session, and what they are for.
 * Shared by the kernel path and pgktls's own record layer. On failure
 * *reason says why (KTLS_R_*) and nothing is left in @rx or @tx.
 */
static int session_keys(SSL *ssl, const struct ktls_cipher **kcp, int *versionp,
			struct ktls_dir_keys *rx, struct ktls_dir_keys *tx,
			enum ktls_reason *reason)
{
	struct ktls_dir_keys client, server;
	const struct ktls_cipher *kc;
	struct ktls_secrets *s;
	const char *md;
	int ret;

	memset(&client, 0, sizeof(client));
	memset(&server, 0, sizeof(server));
	*versionp = SSL_version(ssl);
	if (*versionp != TLS1_2_VERSION && *versionp != TLS1_3_VERSION) {
		*reason = KTLS_R_VERSION;
		return -EOPNOTSUPP;
	}
	kc = cipher_lookup(ssl);
	md = cipher_md_name(ssl);
	if (!kc || !md) {
		*reason = KTLS_R_CIPHER;
		return -EOPNOTSUPP;
	}
	/* Bytes OpenSSL already pulled from the socket would be lost to the new reader. */
	if (SSL_has_pending(ssl) || SSL_pending(ssl) > 0) {
		*reason = KTLS_R_PENDING;
		return -EBUSY;
	}
	if (*versionp == TLS1_3_VERSION) {
		s = secrets_get(ssl);
		if (!s || !s->client_len || !s->server_len) {
			*reason = KTLS_R_NO_SECRETS;
			return -ENOKEY;
		}
		ret = tls13_dir_keys(kc, md, s->client, s->client_len, &client);
		if (!ret)
			ret = tls13_dir_keys(kc, md, s->server, s->server_len, &server);
	} else {
		ret = tls12_keys(ssl, kc, md, &client, &server);
	}
	if (ret) {
		*reason = KTLS_R_NO_SECRETS;
		goto out;
	}
	*kcp = kc;
	*rx = SSL_is_server(ssl) ? client : server;
	*tx = SSL_is_server(ssl) ? server : client;
out:
	OPENSSL_cleanse(&client, sizeof(client));
	OPENSSL_cleanse(&server, sizeof(server));
	return ret;
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

int ktls_install(SSL *ssl, int fd, struct ktls_hop_state *st)
{
	struct ktls_dir_keys rx, tx;
	const struct ktls_cipher *kc = NULL;
	enum ktls_reason reason = KTLS_R_NONE;
	int version, domain;
	socklen_t dlen = sizeof(domain);
	uint16_t kversion;
	uint64_t seq;
	int ret;

	memset(st, 0, sizeof(*st));
	st->rx = KTLS_ENGINE_USERSPACE;
	st->tx = KTLS_ENGINE_USERSPACE;
	memset(&rx, 0, sizeof(rx));
	memset(&tx, 0, sizeof(tx));

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
	ret = session_keys(ssl, &kc, &version, &rx, &tx, &reason);
	if (ret) {
		set_reason(st, reason, 0);
		goto out;
	}
	/*
	 * RFC 6066 max_fragment_length: the kernel sends records of up to 16 KB
	 * whatever was negotiated, and such a client fails with record_overflow.
	 * Userspace (tlsrec, or OpenSSL) honours the limit.
	 */
	if (SSL_SESSION_get_max_fragment_length(SSL_get_session(ssl)) !=
	    TLSEXT_max_fragment_length_DISABLED) {
		set_reason(st, KTLS_R_MAX_FRAGMENT, 0);
		ret = -EOPNOTSUPP;
		goto out;
	}
	/* TLS 1.2 starts both ways at 1 (Finished used 0), TLS 1.3 at 0. */
	kversion = version == TLS1_3_VERSION ? TLS_1_3_VERSION : TLS_1_2_VERSION;
	seq = version == TLS1_3_VERSION ? 0 : 1;

	ret = attach_ulp(fd);
	if (ret) {
		set_reason(st, ret == -ENOENT ? KTLS_R_NO_KERNEL : KTLS_R_SETSOCKOPT, -ret);
		goto out;
	}
	/* RX first: if it fails, nothing is in the kernel and OpenSSL can go on. */
	ret = set_dir(fd, TLS_RX, kc, kversion, &rx, seq);
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
		ret = set_dir(fd, TLS_TX, kc, kversion, &tx, seq);
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
	OPENSSL_cleanse(&rx, sizeof(rx));
	OPENSSL_cleanse(&tx, sizeof(tx));
	return ret;
}

int ktls_export_keys(SSL *ssl, struct ktls_keys *k)
{
	const struct ktls_cipher *kc = NULL;
	enum ktls_reason reason = KTLS_R_NONE;
	SSL_SESSION *sess = SSL_get_session(ssl);
	uint8_t mfl = sess ? SSL_SESSION_get_max_fragment_length(sess) : 0;
	int ret;

	memset(k, 0, sizeof(*k));
	ret = session_keys(ssl, &kc, &k->version, &k->rx, &k->tx, &reason);
	if (ret) {
		OPENSSL_cleanse(k, sizeof(*k));
		k->reason = reason;
		return ret;
	}
	k->evp_cipher = kc->evp;
	k->key_len = kc->key_len;
	/* TLS 1.2 AES-GCM: 4 implicit bytes, the other 8 travel in each record. */
	k->iv_len = k->version == TLS1_3_VERSION ? KTLS_IV_LEN : kc->fixed_iv_len;
	k->seq = k->version == TLS1_3_VERSION ? 0 : 1;
	/* RFC 6066 max_fragment_length, if the client asked for it: 2^(8 + code). */
	k->max_fragment = mfl >= TLSEXT_max_fragment_length_512 &&
				  mfl <= TLSEXT_max_fragment_length_4096
			  ? (uint16_t)(256u << mfl)
			  : 16384;
	return 0;
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
 * Move @secret to the next generation (RFC 8446 7.2) and install it for
 * @dir. The secret is only replaced once the kernel took the new key.
 */
static int rekey_dir(const struct ktls_session *ks, int fd, int dir, uint8_t *secret,
		     size_t secret_len)
{
	uint8_t next[KTLS_MAX_SECRET];
	struct ktls_dir_keys k;
	int ret;

	if (!ks->kc || !ks->md)
		return -EPROTO;
	memset(&k, 0, sizeof(k));
	ret = hkdf_expand_label(ks->md, secret, secret_len, "traffic upd", next, secret_len);
	if (ret)
		goto out;
	ret = tls13_dir_keys(ks->kc, ks->md, next, secret_len, &k);
	if (ret)
		goto out;
	ret = set_dir(fd, dir, ks->kc, TLS_1_3_VERSION, &k, 0);
	if (ret) {
		/* Before Linux 6.14 a second TLS_RX/TLS_TX is refused: no rekeying there. */
		if (ret == -EBUSY || ret == -EINVAL || ret == -EEXIST)
			ret = -EKEYREJECTED;
		goto out;
	}
	memcpy(secret, next, secret_len);
out:
	OPENSSL_cleanse(next, sizeof(next));
	OPENSSL_cleanse(&k, sizeof(k));
	return ret;
}

/*
 * The traffic secret @ks reads with (@tx false) or sends with (@tx true):
 * a server sends with the server secret and reads with the client's.
 */
static int dir_secret(const struct ktls_session *ks, bool tx, uint8_t **secret, size_t *len)
{
	struct ktls_secrets *s = ks->sec;

	if (ks->version != TLS1_3_VERSION)
		return -EPROTO;
	if (!s || !s->client_len || !s->server_len)
		return -ENOKEY;
	*secret = ks->is_server == tx ? s->server : s->client;
	*len = ks->is_server == tx ? s->server_len : s->client_len;
	return 0;
}

static void session_view(SSL *ssl, struct ktls_session *ks);

/* @ks, or a view of @ssl's session when @ks is NULL (the SSL was kept). */
static const struct ktls_session *session_of(SSL *ssl, struct ktls_session *ks,
					     struct ktls_session *view)
{
	if (ks)
		return ks;
	session_view(ssl, view);
	return view;
}

int ktls_key_update_rx(SSL *ssl, struct ktls_session *ks, int fd)
{
	const struct ktls_session *s;
	struct ktls_session view;
	uint8_t *secret;
	size_t len;
	int ret;

	s = session_of(ssl, ks, &view);
	ret = dir_secret(s, false, &secret, &len);
	if (!ret)
		ret = rekey_dir(s, fd, TLS_RX, secret, len);
	return ret;
}

int ktls_key_update_tx(SSL *ssl, struct ktls_session *ks, int fd)
{
	/* Our own KeyUpdate, update_not_requested: type, 24-bit length 1, body. */
	static const uint8_t our_update[5] = { HS_KEY_UPDATE, 0, 0, 1, 0 };
	const struct ktls_session *s;
	struct ktls_session view;
	uint8_t *secret;
	size_t len;
	int ret;

	s = session_of(ssl, ks, &view);
	ret = dir_secret(s, true, &secret, &len);
	if (ret)
		return ret;
	/* Sent under the old key, so it goes out before TX is rekeyed. */
	ret = send_record(fd, KTLS_RECORD_HANDSHAKE, our_update, sizeof(our_update));
	if (ret)
		return ret;
	return rekey_dir(s, fd, TLS_TX, secret, len);
}

int ktls_session_next_keys(struct ktls_session *ks, bool tx, struct ktls_dir_keys *k)
{
	struct ktls_secrets *s = ks->sec;
	uint8_t next[KTLS_MAX_SECRET];
	uint8_t *secret;
	size_t len;
	int ret;

	memset(k, 0, sizeof(*k));
	if (ks->version != TLS1_3_VERSION || !ks->kc || !ks->md)
		return -EPROTO;
	if (!s || !s->client_len || !s->server_len)
		return -ENOKEY;
	/* A server sends with the server secret and reads with the client's. */
	secret = ks->is_server == tx ? s->server : s->client;
	len = ks->is_server == tx ? s->server_len : s->client_len;
	ret = hkdf_expand_label(ks->md, secret, len, "traffic upd", next, len);
	if (!ret)
		ret = tls13_dir_keys(ks->kc, ks->md, next, len, k);
	if (!ret)
		memcpy(secret, next, len);
	else
		OPENSSL_cleanse(k, sizeof(*k));
	OPENSSL_cleanse(next, sizeof(next));
	return ret;
}

/* A view of a live SSL as a session (the secrets stay the SSL's). */
static void session_view(SSL *ssl, struct ktls_session *ks)
{
	ks->kc = cipher_lookup(ssl);
	ks->md = cipher_md_name(ssl);
	ks->is_server = SSL_is_server(ssl);
	ks->version = SSL_version(ssl);
	ks->sec = secrets_get(ssl);
}

struct ktls_session *ktls_detach(SSL *ssl)
{
	struct ktls_session *ks = calloc(1, sizeof(*ks));

	if (!ks)
		return NULL;
	session_view(ssl, ks);
	/* The secrets move over: the SSL can now be freed without taking them along. */
	if (ks->sec)
		SSL_set_ex_data(ssl, ex_index, NULL);
	return ks;
}

void ktls_session_free(struct ktls_session *ks)
{
	if (!ks)
		return;
	secrets_wipe_free(ks->sec);
	free(ks);
}

void ktls_forget(SSL *ssl)
{
	struct ktls_secrets *s = secrets_get(ssl);

	if (!s)
		return;
	SSL_set_ex_data(ssl, ex_index, NULL);
	secrets_wipe_free(s);
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
	struct ktls_dir_keys k;
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
}

bool ktls_probe(void)
{
	pthread_once(&probe_once, probe_run);
	return probe_result;
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
