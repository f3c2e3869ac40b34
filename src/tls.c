// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * tls.c - build the two SSL_CTXs (client-facing and upstream) from config.
 *
 * Defaults are chosen for a security review, not for compatibility with
 * ancient clients: TLS 1.2 minimum, AEAD-only forward-secret ciphers, no
 * renegotiation, no compression, no session tickets to clients (PostgreSQL
 * clients never resume, and a ticket would also shift the kTLS TX sequence).
 */
#include "config.h"

#include "pgktls/tls.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "pgktls/certgen.h"
#include "pgktls/config.h"
#include "pgktls/identmap.h"
#include "pgktls/keysched.h"
#include "pgktls/ktls.h"
#include "pgktls/log.h"

/* TLS 1.2: forward secrecy and AEAD only. TLS 1.3 suites are all AEAD. */
#define PGKTLS_DEFAULT_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"
#define PGKTLS_DEFAULT_CIPHERSUITES \
	"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"

static const unsigned char alpn_postgresql[] = {
	10, 'p', 'o', 's', 't', 'g', 'r', 'e', 's', 'q', 'l'
};

/* Blocks larger than this are record buffers (relayed data), not key material. */
#define TLS_WIPE_MAX 16384

static void *wipe_malloc(size_t n, const char *file, int line)
{
	return malloc(n);
}

static void wipe_free(void *p, const char *file, int line)
{
	size_t n;

	if (!p)
		return;
	n = malloc_usable_size(p);
	/*
	 * explicit_bzero() is glibc's vectorised memset behind a compiler
	 * barrier: as certain as OPENSSL_cleanse() not to be optimised away,
	 * several times faster on the ~3,000 small blocks OpenSSL frees per
	 * handshake (OPENSSL_cleanse stores 8 bytes per loop iteration).
	 */
	if (n <= TLS_WIPE_MAX)
		explicit_bzero(p, n);
	free(p);
}

static void *wipe_realloc(void *p, size_t n, const char *file, int line)
{
	size_t old;
	void *q;

	if (!p)
		return malloc(n);
	if (n == 0) {
		wipe_free(p, file, line);
		return NULL;
	}
	/* Never let realloc move a block and leave the old copy behind unwiped. */
	old = malloc_usable_size(p);
	q = malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	wipe_free(p, file, line);
	return q;
}

int tls_wipe_freed_memory(void)
{
	return CRYPTO_set_mem_functions(wipe_malloc, wipe_realloc, wipe_free) ? 0 : -EBUSY;
}

void tls_drain_errors(void)
{
	ERR_clear_error();
}

/*
 * The certificate a CRL revoked, recorded by verify_cb() in the SSL's
 * ex_data while the chain is checked: once the handshake has failed, the
 * store context that knew which certificate it was is gone.
 */
static int revoked_index = -1;
static pthread_once_t revoked_once = PTHREAD_ONCE_INIT;

static void revoked_free(void *parent PGKTLS_UNUSED, void *ptr, CRYPTO_EX_DATA *ad PGKTLS_UNUSED,
			 int idx PGKTLS_UNUSED, long argl PGKTLS_UNUSED, void *argp PGKTLS_UNUSED)
{
	free(ptr);
}

static void revoked_index_init(void)
{
	revoked_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, revoked_free);
}

/* "subject /CN=alice, serial 0x1A2B" of @cert into @buf. */
static void describe_cert(X509 *cert, char *buf, size_t len)
{
	char subject[256] = "?", *serial = NULL;
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);

	X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
	if (bn)
		serial = BN_bn2hex(bn);
	snprintf(buf, len, "subject %s, serial 0x%s", subject, serial ? serial : "?");
	OPENSSL_free(serial);
	BN_free(bn);
}

/*
 * Verification callback of both hops: OpenSSL's verdict stands; a revoked
 * certificate is only noted, so the failure can say which one it was.
 */
static int verify_cb(int ok, X509_STORE_CTX *store)
{
	SSL *ssl;
	X509 *cert;
	char *what;

	if (ok || X509_STORE_CTX_get_error(store) != X509_V_ERR_CERT_REVOKED)
		return ok;
	ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	cert = X509_STORE_CTX_get_current_cert(store);
	if (!ssl || !cert || revoked_index < 0 || SSL_get_ex_data(ssl, revoked_index))
		return ok;
	what = malloc(TLS_REVOKED_STRLEN);
	if (!what)
		return ok;
	describe_cert(cert, what, TLS_REVOKED_STRLEN);
	if (!SSL_set_ex_data(ssl, revoked_index, what))
		free(what);
	return ok;
}

bool tls_revoked_cert(SSL *ssl, char *buf, size_t len)
{
	const char *what;

	if (SSL_get_verify_result(ssl) != X509_V_ERR_CERT_REVOKED)
		return false;
	what = revoked_index >= 0 ? SSL_get_ex_data(ssl, revoked_index) : NULL;
	snprintf(buf, len, "%s", what ? what : "subject ?, serial ?");
	return true;
}

bool tls_peer_verified(const SSL *ssl)
{
	return (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) && SSL_get0_peer_certificate(ssl) &&
	       SSL_get_verify_result(ssl) == X509_V_OK;
}

const char *tls_error_string(SSL *ssl, char *buf, size_t len)
{
	unsigned long e;
	size_t n = 0;

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		const char *reason = ERR_reason_error_string(e);
		int r;

		if (n >= len - 1)
			continue;
		if (reason)
			r = snprintf(buf + n, len - n, "%s%s", n ? "; " : "", reason);
		else
			r = snprintf(buf + n, len - n, "%s%s", n ? "; " : "",
				     ERR_error_string(e, NULL));
		if (r > 0)
			n += (size_t)r < len - n ? (size_t)r : len - n - 1;
	}
	if (ssl) {
		long v = SSL_get_verify_result(ssl);
		char revoked[TLS_REVOKED_STRLEN];

		if (v != X509_V_OK && n < len - 1) {
			snprintf(buf + n, len - n, "%s%s", n ? ": " : "",
				 X509_verify_cert_error_string(v));
			n = strlen(buf);
		}
		if (n < len - 1 && tls_revoked_cert(ssl, revoked, sizeof(revoked)))
			snprintf(buf + n, len - n, " (%s)", revoked);
	}
	if (!buf[0])
		snprintf(buf, len, "no further detail from OpenSSL");
	return buf;
}

/* Report an OpenSSL failure at @where (a config key or a map line), quoting @value. */
static int where_fail(const char *where, const char *what, const char *value, char *err,
		      size_t errlen)
{
	char ossl[512];

	tls_error_string(NULL, ossl, sizeof(ossl));
	snprintf(err, errlen, "%s: %s '%s' (OpenSSL: %s)", where, what, value ? value : "", ossl);
	return -EINVAL;
}

/* Report an OpenSSL failure about config key @key, quoting @value. */
static int ctx_fail(const struct pgktls_config *cfg, const char *key, const char *what,
		    const char *value, char *err, size_t errlen)
{
	char where[256];

	return where_fail(config_where(cfg, key, where, sizeof(where)), what, value, err, errlen);
}

static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
			  const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char *sel = NULL;

	/* A client that offers ALPN must offer "postgresql", as PostgreSQL 17 requires. */
	if (SSL_select_next_proto(&sel, outlen, alpn_postgresql, sizeof(alpn_postgresql), in,
				  inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

bool tls_alpn_is_postgresql(const SSL *ssl)
{
	const unsigned char *p = NULL;
	unsigned int len = 0;

	SSL_get0_alpn_selected(ssl, &p, &len);
	return len == sizeof(alpn_postgresql) - 1 && memcmp(p, alpn_postgresql + 1, len) == 0;
}

/* Versions, ciphers, groups and hardening common to both hops. */
static int ctx_common(SSL_CTX *ctx, const struct pgktls_config *cfg, const char *pfx, int minv,
		      int maxv, const char *ciphers, const char *suites, const char *groups,
		      enum cfg_ktls ktls, char *err, size_t errlen)
{
	char key[64];

	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
				 SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
	/*
	 * The relay hands OpenSSL whatever part of its buffer is left after a
	 * short write, and accepts a short write in return.
	 */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (!SSL_CTX_set_min_proto_version(ctx, minv ? minv : TLS1_2_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, maxv)) {
		snprintf(key, sizeof(key), "%smin_version", pfx);
		return ctx_fail(cfg, key, "cannot set protocol version", "", err, errlen);
	}
	if (!SSL_CTX_set_cipher_list(ctx, ciphers ? ciphers : PGKTLS_DEFAULT_CIPHERS)) {
		snprintf(key, sizeof(key), "%sciphers", pfx);
		return ctx_fail(cfg, key, "no usable cipher in", ciphers, err, errlen);
	}
	if (!SSL_CTX_set_ciphersuites(ctx, suites ? suites : PGKTLS_DEFAULT_CIPHERSUITES)) {
		snprintf(key, sizeof(key), "%sciphersuites", pfx);
		return ctx_fail(cfg, key, "invalid TLS 1.3 ciphersuites", suites, err, errlen);
	}
	if (groups && !SSL_CTX_set1_groups_list(ctx, groups)) {
		snprintf(key, sizeof(key), "%sgroups", pfx);
		return ctx_fail(cfg, key, "invalid groups list", groups, err, errlen);
	}
	if ((ktls == CFG_KTLS_OFF || !ktls_probe()) && cfg->openssl_records) {
		/*
		 * OpenSSL keeps this hop's records for good, so it may read ahead
		 * from the first byte: one read(2) per burst during the handshake
		 * instead of two per record (header, then body). Where kTLS or
		 * tlsrec may follow, read-ahead waits until conn.c knows
		 * (offload()): they must find every record after the handshake
		 * still in the socket.
		 */
		SSL_CTX_set_read_ahead(ctx, 1);
		return 0;
	}
	/*
	 * The keylog callback is how kTLS and tlsrec get TLS 1.3 secrets, but
	 * once one is set libssl hex-formats every secret of every handshake
	 * for it (about 400 sprintf calls per handshake, 6 % of a handshake's
	 * instructions). Only hook the contexts whose sessions can leave
	 * OpenSSL.
	 */
	if (keysched_ctx_prepare(ctx) < 0) {
		snprintf(err, errlen, "out of memory preparing the key schedule");
		return -ENOMEM;
	}
	return 0;
}

/* PostgreSQL's ssl_passphrase_command prompt, so its scripts work unchanged. */
#define PASSPHRASE_PROMPT "Enter PEM pass phrase:"
/* Longest command output read: the first line is the passphrase, the rest is dropped. */
#define PASSPHRASE_MAX 1024

/* One key's passphrase: asked for at most once per load, wiped after. */
struct passphrase {
	const char *cmd;	/* the *_passphrase_command, or NULL */
	bool asked;		/* OpenSSL found the key encrypted and called pass_cb() */
	bool failed;		/* the command failed (or there is none): @why says how */
	char why[256];		/* "exited with status 3", "printed nothing", ... */
	size_t len;
	char pass[PASSPHRASE_MAX + 1];
};

/*
 * @cmd with %p replaced by the prompt and %% by %, as PostgreSQL does; any
 * other % stays as it is. Return: a string the caller frees, or NULL.
 */
static char *passphrase_cmdline(const char *cmd)
{
	size_t n = strlen(cmd) * (sizeof(PASSPHRASE_PROMPT) - 1) + 1, o = 0;
	char *out = malloc(n);

	if (!out)
		return NULL;
	for (const char *p = cmd; *p; p++) {
		if (p[0] == '%' && p[1] == 'p') {
			memcpy(out + o, PASSPHRASE_PROMPT, sizeof(PASSPHRASE_PROMPT) - 1);
			o += sizeof(PASSPHRASE_PROMPT) - 1;
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			out[o++] = '%';
			p++;
		} else {
			out[o++] = *p;
		}
	}
	out[o] = '\0';
	return out;
}

/*
 * Start "/bin/sh -c @line" with its stdout on a pipe whose read end goes to
 * *@fd. The child gets the default signal state, not the daemon's: pgktls
 * blocks SIGTERM, SIGHUP, SIGINT and SIGQUIT in every thread and ignores
 * SIGPIPE, and a command run with those inherited (timeout(1), a pipeline)
 * could neither be stopped nor stop writing.
 */
static int spawn_shell(const char *line, pid_t *pid, int *fd)
{
	char sh[] = "sh", dash_c[] = "-c";
	char *const argv[] = { sh, dash_c, (char *)line, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dflt;
	int p[2], r;

	if (pipe2(p, O_CLOEXEC) == -1)
		return -errno;
	sigemptyset(&none);
	sigfillset(&dflt);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	/* dup2 clears close-on-exec on fd 1; both pipe ends close on exec. */
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	r = posix_spawn(pid, "/bin/sh", &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (r != 0) {
		close(p[0]);
		return -r;
	}
	*fd = p[0];
	return 0;
}

/*
 * Run the command through /bin/sh and keep the first line of what it
 * prints, without its line end. The output buffer is wiped either way.
 */
static void run_passphrase_command(struct passphrase *pp)
{
	char out[PASSPHRASE_MAX + 1], *line = passphrase_cmdline(pp->cmd);
	size_t n = 0;
	ssize_t got;
	pid_t pid = 0;
	int fd = -1, r, status;

	pp->failed = true;
	if (!line) {
		snprintf(pp->why, sizeof(pp->why), "out of memory");
		return;
	}
	r = spawn_shell(line, &pid, &fd);
	free(line);
	if (r < 0) {
		snprintf(pp->why, sizeof(pp->why), "cannot run /bin/sh: %s", strerror(-r));
		return;
	}
	/* Read to the end, so the command never dies of SIGPIPE for talking too much. */
	do {
		char sink[256];

		if (n < sizeof(out) - 1) {
			got = read(fd, out + n, sizeof(out) - 1 - n);
			if (got > 0)
				n += (size_t)got;
		} else {
			got = read(fd, sink, sizeof(sink));
			OPENSSL_cleanse(sink, sizeof(sink));
		}
	} while (got > 0 || (got == -1 && errno == EINTR));
	close(fd);
	out[n] = '\0';
	while ((r = waitpid(pid, &status, 0)) == -1 && errno == EINTR)
		;
	n = strcspn(out, "\n");
	if (n && out[n - 1] == '\r')
		n--;
	if (r == -1)
		snprintf(pp->why, sizeof(pp->why), "cannot wait for it: %s", strerror(errno));
	else if (WIFSIGNALED(status))
		snprintf(pp->why, sizeof(pp->why), "killed by signal %d", WTERMSIG(status));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		snprintf(pp->why, sizeof(pp->why), "exited with status %d", WEXITSTATUS(status));
	else if (n == 0)
		snprintf(pp->why, sizeof(pp->why), "exited 0 but printed no passphrase");
	else
		pp->failed = false;
	if (!pp->failed) {
		memcpy(pp->pass, out, n);
		pp->pass[n] = '\0';
		pp->len = n;
	}
	OPENSSL_cleanse(out, sizeof(out));
}

/* pem_password_cb: the command's answer; -1 makes OpenSSL give up on the key. */
static int pass_cb(char *buf, int size, int rwflag PGKTLS_UNUSED, void *u)
{
	struct passphrase *pp = u;

	/* OpenSSL may ask again (one decoder after another): run the command once. */
	if (!pp->asked) {
		pp->asked = true;
		if (pp->cmd) {
			run_passphrase_command(pp);
		} else {
			pp->failed = true;
			snprintf(pp->why, sizeof(pp->why), "none is set");
		}
	}
	if (pp->failed)
		return -1;
	if (pp->len > (size_t)size) {
		snprintf(pp->why, sizeof(pp->why), "printed a passphrase longer than %d bytes",
			 size);
		pp->failed = true;
		return -1;
	}
	memcpy(buf, pp->pass, pp->len);
	return (int)pp->len;
}

/*
 * Where a certificate and its key come from, for error messages: a pair of
 * config keys (tls_certificate, tls_private_key) or a line of the identity
 * map. The *_where strings are "pgktls.toml:4: tls_private_key" or
 * "identities.conf:3: private key file".
 */
struct key_source {
	const char *cert_where;
	const char *cert;		/* PEM: the certificate, then its chain */
	const char *key_where;
	const char *key;
	const char *cmd_key;		/* the passphrase command's key name */
	const char *cmd_where;
	const char *cmd;		/* the command itself, or NULL */
};

/*
 * Load @src's key, running its passphrase command if the key turns out to
 * be encrypted, and explain a failure in terms of the config: which
 * command, which key file, what went wrong. The passphrase is wiped before
 * return.
 */
static int load_private_key(SSL_CTX *ctx, const struct key_source *src, char *err, size_t errlen)
{
	struct passphrase pp = { .cmd = src->cmd };
	char ossl[512];
	int r = 0;

	SSL_CTX_set_default_passwd_cb(ctx, pass_cb);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, &pp);
	if (SSL_CTX_use_PrivateKey_file(ctx, src->key, SSL_FILETYPE_PEM) != 1) {
		if (pp.failed && src->cmd) {
			tls_drain_errors();
			snprintf(err, errlen, "%s: command '%s' for key file '%s' failed: %s",
				 src->cmd_where, src->cmd, src->key, pp.why);
			r = -EINVAL;
		} else if (pp.failed) {
			tls_drain_errors();
			snprintf(err, errlen, "%s: key file '%s' is encrypted: set %s to a command "
				 "that prints its passphrase", src->key_where, src->key,
				 src->cmd_key);
			r = -EINVAL;
		} else if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
			/* OpenSSL checks the pair while loading: say which pair, plainly. */
			r = where_fail(src->key_where, "does not match the certificate in",
				       src->cert, err, errlen);
		} else if (pp.asked) {
			tls_error_string(NULL, ossl, sizeof(ossl));
			snprintf(err, errlen, "%s: cannot decrypt key file '%s': wrong passphrase "
				 "from %s (OpenSSL: %s)", src->key_where, src->key, src->cmd_key,
				 ossl);
			r = -EINVAL;
		} else {
			r = where_fail(src->key_where, "cannot load private key", src->key, err,
				       errlen);
		}
	}
	/* The context must not keep pointers to this stack frame. */
	SSL_CTX_set_default_passwd_cb(ctx, NULL);
	SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
	OPENSSL_cleanse(&pp, sizeof(pp));
	return r;
}

/* A private key that others may read may already have been copied: say so. */
static void warn_key_file_mode(const char *where, const char *key)
{
	struct stat st;

	if (stat(key, &st) == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
		log_warn("%s: private key file %s has mode %04o: it should be readable by its "
			 "owner only (chmod 600 %s)", where, key, (unsigned)(st.st_mode & 07777),
			 key);
}

static int load_source(SSL_CTX *ctx, const struct key_source *src, char *err, size_t errlen)
{
	int r;

	warn_key_file_mode(src->key_where, src->key);
	/* The whole chain, so clients holding only the root CA can verify. */
	if (SSL_CTX_use_certificate_chain_file(ctx, src->cert) != 1)
		return where_fail(src->cert_where, "cannot load certificate chain", src->cert, err,
				  errlen);
	r = load_private_key(ctx, src, err, errlen);
	if (r < 0)
		return r;
	if (SSL_CTX_check_private_key(ctx) != 1)
		return where_fail(src->key_where, "does not match the certificate in", src->cert,
				  err, errlen);
	return 0;
}

static int load_cert_and_key(SSL_CTX *ctx, const struct pgktls_config *cfg, const char *cert_key,
			     const char *cert, const char *key_key, const char *key,
			     const char *cmd_key, const char *cmd, char *err, size_t errlen)
{
	char cert_where[256], key_where[256], cmd_where[256];
	struct key_source src = {
		.cert_where = config_where(cfg, cert_key, cert_where, sizeof(cert_where)),
		.cert = cert,
		.key_where = config_where(cfg, key_key, key_where, sizeof(key_where)),
		.key = key,
		.cmd_key = cmd_key,
		.cmd_where = config_where(cfg, cmd_key, cmd_where, sizeof(cmd_where)),
		.cmd = cmd,
	};

	return load_source(ctx, &src, err, errlen);
}

/* A CRL past its nextUpdate makes OpenSSL refuse every certificate it covers: warn at load. */
static void warn_crl_expired(const struct pgktls_config *cfg, const char *key, X509_CRL *crl)
{
	const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
	char where[256], issuer[256];

	if (!next || X509_cmp_current_time(next) > 0)
		return;
	X509_NAME_oneline(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
	log_warn("%s: the CRL of %s is past its next update: every certificate that CA issued "
		 "will be refused until a fresh CRL is installed",
		 config_where(cfg, key, where, sizeof(where)), issuer);
}

/* Every PEM CRL in @path into @store; a file without one is an error, not a no-op. */
static int load_crl_file(X509_STORE *store, const struct pgktls_config *cfg, const char *key,
			 const char *path, char *err, size_t errlen)
{
	BIO *bio = BIO_new_file(path, "r");
	X509_CRL *crl;
	unsigned long e;
	int n = 0;

	if (!bio)
		return ctx_fail(cfg, key, "cannot open CRL file", path, err, errlen);
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL))) {
		warn_crl_expired(cfg, key, crl);
		if (X509_STORE_add_crl(store, crl) != 1) {
			X509_CRL_free(crl);
			BIO_free(bio);
			return ctx_fail(cfg, key, "cannot use a CRL in", path, err, errlen);
		}
		X509_CRL_free(crl);
		n++;
	}
	BIO_free(bio);
	/* The loop ends on "no start line" at the end of the file; anything else is damage. */
	e = ERR_peek_last_error();
	if (n == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) != PEM_R_NO_START_LINE) ||
	    (e && ERR_GET_LIB(e) != ERR_LIB_PEM))
		return ctx_fail(cfg, key, n ? "damaged CRL in" : "no PEM CRL (X509 CRL) in", path,
				err, errlen);
	tls_drain_errors();
	return 0;
}

/* Whether @dir holds a name `openssl rehash` gives CRLs: 8 hex digits, ".r", a number. */
static bool dir_has_hashed_crl(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool found = false;

	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		const char *n = e->d_name;

		found = strlen(n) > 10 && strspn(n, "0123456789abcdef") == 8 && n[8] == '.' &&
			n[9] == 'r' && strspn(n + 10, "0123456789") == strlen(n + 10);
	}
	closedir(d);
	return found;
}

/*
 * The revocation list of one hop (tls_client_crl or tls_server_crl): a PEM
 * file, read now, or a directory of hashed names (PostgreSQL's ssl_crl_dir),
 * which OpenSSL reads as each CA's CRL is needed. Either way every
 * certificate of the chain, not only the leaf, must be covered by a CRL of
 * its issuer, as PostgreSQL checks (X509_V_FLAG_CRL_CHECK_ALL).
 */
static int load_crl(SSL_CTX *ctx, const struct pgktls_config *cfg, const char *key,
		    const char *path, char *err, size_t errlen)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	X509_LOOKUP *lookup;
	struct stat st;
	char where[256];
	int r;

	if (!path)
		return 0;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		lookup = X509_STORE_add_lookup(store, X509_LOOKUP_hash_dir());
		if (!lookup || X509_LOOKUP_add_dir(lookup, path, X509_FILETYPE_PEM) != 1)
			return ctx_fail(cfg, key, "cannot use CRL directory", path, err, errlen);
		if (!dir_has_hashed_crl(path))
			log_warn("%s: directory %s holds no CRL under a hashed name (HASH.r0): run "
				 "`openssl rehash %s`, or every certificate will be refused",
				 config_where(cfg, key, where, sizeof(where)), path, path);
	} else {
		r = load_crl_file(store, cfg, key, path, err, errlen);
		if (r < 0)
			return r;
	}
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	return 0;
}

/*
 * tls_generate_self_signed: a new key and certificate for the listen hosts and
 * this machine's name. The fingerprint is logged because it is the only way a
 * client can learn, out of band, which certificate to pin.
 */
static int use_generated_cert(SSL_CTX *ctx, const struct pgktls_config *cfg, char *err,
			      size_t errlen)
{
	char host[HOST_NAME_MAX + 1], why[512], cn[256], fp[3 * EVP_MAX_MD_SIZE] = "";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	const char **names;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	size_t n = 0;
	int r;

	names = calloc(cfg->n_listen + 1, sizeof(*names));
	if (!names) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* certgen skips the wildcards ("*", 0.0.0.0, ::) that name no host. */
	for (size_t i = 0; i < cfg->n_listen; i++)
		names[n++] = cfg->listen[i].host;
	if (gethostname(host, sizeof(host)) == 0 && host[0]) {
		host[sizeof(host) - 1] = '\0';
		/*
		 * A machine whose name was never set reports the kernel's
		 * "(none)": that names nobody, and must not stop the start.
		 */
		if (certgen_name_ok(host))
			names[n++] = host;
		else
			log_info("tls_generate_self_signed: host name '%s' is not a DNS name: "
				 "left out of the certificate", host);
	}
	r = certgen_self_signed(names, n, &key, &cert, why, sizeof(why));
	free(names);
	if (r < 0) {
		char where[256];

		snprintf(err, errlen, "%s: cannot generate a certificate: %s",
			 config_where(cfg, "tls_generate_self_signed", where, sizeof(where)), why);
		return r;
	}
	if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1) {
		r = ctx_fail(cfg, "tls_generate_self_signed",
			     "cannot use the generated certificate", "true", err, errlen);
		goto out;
	}
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
				      sizeof(cn)) < 0)
		snprintf(cn, sizeof(cn), "?");
	/* "AB:CD:...", as `openssl x509 -fingerprint -sha256` prints it. */
	if (X509_digest(cert, EVP_sha256(), md, &mdlen) == 1 && mdlen > 0) {
		for (unsigned int i = 0; i < mdlen; i++)
			snprintf(fp + 3 * i, sizeof(fp) - 3 * i, "%02X:", md[i]);
		fp[3 * mdlen - 1] = '\0';
	}
	log_info("tls_generate_self_signed: new self-signed certificate for CN %s, "
		 "SHA-256 fingerprint %s", cn, fp);
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	return r;
}

static int build_client_side(const struct pgktls_config *cfg, SSL_CTX **out, char *err,
			     size_t errlen)
{
	SSL_CTX *ctx;
	int r;

	*out = NULL;
	if (!cfg->tls_certificate && !cfg->tls_generate_self_signed)
		return 0;
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return ctx_fail(cfg, "tls_certificate", "cannot create TLS context for", "",
				err, errlen);
	r = ctx_common(ctx, cfg, "tls_", cfg->tls_min_version, cfg->tls_max_version,
		       cfg->tls_ciphers, cfg->tls_ciphersuites, cfg->tls_groups, cfg->ktls_client,
		       err, errlen);
	if (r < 0)
		goto err;
	/* No tickets: nobody resumes, and kTLS TX must start at sequence 0. */
	SSL_CTX_set_num_tickets(ctx, 0);
	if (cfg->tls_generate_self_signed)
		r = use_generated_cert(ctx, cfg, err, errlen);
	else
		r = load_cert_and_key(ctx, cfg, "tls_certificate", cfg->tls_certificate,
				      "tls_private_key", cfg->tls_private_key,
				      "tls_private_key_passphrase_command",
				      cfg->tls_private_key_passphrase_command, err, errlen);
	if (r < 0)
		goto err;
	if (cfg->tls_client_ca_certificate) {
		STACK_OF(X509_NAME) *names;

		if (SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca_certificate, NULL) != 1) {
			r = ctx_fail(cfg, "tls_client_ca_certificate", "cannot load CA bundle",
				     cfg->tls_client_ca_certificate, err, errlen);
			goto err;
		}
		names = SSL_load_client_CA_file(cfg->tls_client_ca_certificate);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
		r = load_crl(ctx, cfg, "tls_client_crl", cfg->tls_client_crl, err, errlen);
		if (r < 0)
			goto err;
		/*
		 * optional: the certificate is asked for and, if one comes, must
		 * verify (a bad one still fails the handshake); none is fine.
		 */
		SSL_CTX_set_verify(ctx, cfg->tls_client_certificate == CFG_CLIENT_CERT_OPTIONAL
					? SSL_VERIFY_PEER
					: SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
				   verify_cb);
	}
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select_cb, NULL);
	*out = ctx;
	return 0;
err:
	SSL_CTX_free(ctx);
	return r;
}

/* tls_verify = prefer: the server's chain is not checked (see build_server_side). */
static int accept_unauthenticated(X509_STORE_CTX *store PGKTLS_UNUSED, void *arg PGKTLS_UNUSED)
{
	return 1;
}

static int build_server_side(const struct pgktls_config *cfg, SSL_CTX **out, char *err,
			     size_t errlen)
{
	SSL_CTX *ctx;
	int r;

	*out = NULL;
	/* No TLS upstream: tls_verify disable, or a unix socket (PostgreSQL has none there). */
	if (cfg->tls_verify == CFG_VERIFY_DISABLE || cfg->upstream_unix_socket)
		return 0;
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return ctx_fail(cfg, "tls_verify", "cannot create TLS context for", "", err,
				errlen);
	r = ctx_common(ctx, cfg, "tls_server_", cfg->tls_server_min_version,
		       cfg->tls_server_max_version, cfg->tls_server_ciphers,
		       cfg->tls_server_ciphersuites, cfg->tls_server_groups, cfg->ktls_server, err,
		       errlen);
	if (r < 0)
		goto err;
	if (cfg->tls_server_certificate) {
		r = load_cert_and_key(ctx, cfg, "tls_server_certificate",
				      cfg->tls_server_certificate, "tls_server_private_key",
				      cfg->tls_server_private_key,
				      "tls_server_private_key_passphrase_command",
				      cfg->tls_server_private_key_passphrase_command, err, errlen);
		if (r < 0)
			goto err;
	}
	if (cfg->tls_verify == CFG_VERIFY_CA || cfg->tls_verify == CFG_VERIFY_FULL) {
		const char *ca = cfg->tls_server_ca_certificate;

		if (!ca || strcmp(ca, "system") == 0) {
			if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
				r = ctx_fail(cfg, "tls_server_ca_certificate",
					     "cannot load the system trust store", "system", err,
					     errlen);
				goto err;
			}
		} else if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
			r = ctx_fail(cfg, "tls_server_ca_certificate", "cannot load CA bundle", ca,
				     err, errlen);
			goto err;
		}
		r = load_crl(ctx, cfg, "tls_server_crl", cfg->tls_server_crl, err, errlen);
		if (r < 0)
			goto err;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
	} else {
		/* prefer: encryption without authentication, as libpq's sslmode=prefer. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		/*
		 * Under SSL_VERIFY_NONE libssl still runs X509_verify_cert() on
		 * the server's chain and only ignores the result: skip that work,
		 * and leave the verify result X509_V_OK instead of an error no one
		 * asked about (it would make stats count a failed handshake as a
		 * verification failure).
		 */
		SSL_CTX_set_cert_verify_callback(ctx, accept_unauthenticated, NULL);
	}
	if (SSL_CTX_set_alpn_protos(ctx, alpn_postgresql, sizeof(alpn_postgresql)) != 0) {
		r = ctx_fail(cfg, "tls_verify", "cannot set ALPN", "postgresql", err, errlen);
		goto err;
	}
	*out = ctx;
	return 0;
err:
	SSL_CTX_free(ctx);
	return r;
}

/* ---- upstream identities (tls_server_identity_map) ---- */

static void identities_free(struct tls_contexts *t)
{
	for (size_t i = 0; i < t->n_identities; i++) {
		X509_free(t->identities[i].cert);
		sk_X509_pop_free(t->identities[i].chain, X509_free);
		EVP_PKEY_free(t->identities[i].key);
	}
	free(t->identities);
	t->identities = NULL;
	t->n_identities = 0;
	identmap_free(t->identity_map);
	t->identity_map = NULL;
}

/*
 * Load one map line's certificate chain and key. A scratch context does the
 * loading, so a map line gets the same checks and messages as
 * tls_server_certificate (chain, key match, passphrase command); the
 * identity then keeps references to what it loaded.
 */
static int load_identity(const struct pgktls_config *cfg, const struct identmap *map,
			 const struct identmap_entry *e, struct tls_identity *id, char *err,
			 size_t errlen)
{
	char cert_where[PATH_MAX + 64], key_where[PATH_MAX + 64], cmd_where[256];
	const char *cmd_key = "tls_server_private_key_passphrase_command";
	struct key_source src = {
		.cert_where = cert_where,
		.cert = e->cert_file,
		.key_where = key_where,
		.key = e->key_file,
		.cmd_key = cmd_key,
		.cmd_where = config_where(cfg, cmd_key, cmd_where, sizeof(cmd_where)),
		.cmd = cfg->tls_server_private_key_passphrase_command,
	};
	STACK_OF(X509) *chain = NULL;
	SSL_CTX *ctx;
	int r;

	snprintf(cert_where, sizeof(cert_where), "%s:%u: certificate file", map->path, e->lineno);
	snprintf(key_where, sizeof(key_where), "%s:%u: private key file", map->path, e->lineno);
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return where_fail(cert_where, "cannot create a TLS context for", e->cert_file,
				  err, errlen);
	r = load_source(ctx, &src, err, errlen);
	if (r < 0)
		goto out;
	id->entry = e;
	id->cert = SSL_CTX_get0_certificate(ctx);
	id->key = SSL_CTX_get0_privatekey(ctx);
	if (SSL_CTX_get0_chain_certs(ctx, &chain) != 1 || !id->cert || !id->key ||
	    !X509_up_ref(id->cert)) {
		id->cert = NULL;
		r = where_fail(cert_where, "cannot use", e->cert_file, err, errlen);
		goto out;
	}
	if (!EVP_PKEY_up_ref(id->key)) {
		id->key = NULL;
		r = where_fail(key_where, "cannot use", e->key_file, err, errlen);
		goto out;
	}
	if (chain && sk_X509_num(chain) > 0) {
		id->chain = X509_chain_up_ref(chain);
		if (!id->chain) {
			r = where_fail(cert_where, "cannot use the chain in", e->cert_file, err,
				       errlen);
			goto out;
		}
	}
	X509_NAME_oneline(X509_get_subject_name(id->cert), id->subject, sizeof(id->subject));
out:
	SSL_CTX_free(ctx);
	return r;
}

/* tls_server_identity_map: the map, then every identity it names, loaded now. */
static int build_identities(const struct pgktls_config *cfg, struct tls_contexts *t, char *err,
			    size_t errlen)
{
	int r;

	if (!cfg->tls_server_identity_map || !t->server_side)
		return 0;
	r = identmap_load(cfg->tls_server_identity_map, &t->identity_map, err, errlen);
	if (r < 0)
		return r;
	t->identities = calloc(t->identity_map->n ? t->identity_map->n : 1,
			       sizeof(*t->identities));
	if (!t->identities) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < t->identity_map->n; i++) {
		/* Counted as loaded before loading, so a failure frees what it got. */
		t->n_identities++;
		r = load_identity(cfg, t->identity_map, &t->identity_map->entries[i],
				  &t->identities[i], err, errlen);
		if (r < 0)
			return r;
	}
	log_info("tls_server_identity_map: %zu upstream identit%s from %s", t->n_identities,
		 t->n_identities == 1 ? "y" : "ies", t->identity_map->path);
	return 0;
}

const struct tls_identity *tls_identity_pick(const struct tls_contexts *t, SSL *client)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char subject[256];
	X509 *peer;
	long i;

	if (!t->n_identities || !client || !tls_peer_verified(client))
		return NULL;
	peer = SSL_get0_peer_certificate(client);
	if (X509_digest(peer, EVP_sha256(), md, &mdlen) != 1 || mdlen != IDENTMAP_SHA256_LEN) {
		tls_drain_errors();
		return NULL;
	}
	X509_NAME_oneline(X509_get_subject_name(peer), subject, sizeof(subject));
	i = identmap_find(t->identity_map, md, subject);
	return i < 0 ? NULL : &t->identities[i];
}

int tls_contexts_build(const struct pgktls_config *cfg, struct tls_contexts *out, char *err,
		       size_t errlen)
{
	const char *name;
	unsigned char tmp[sizeof(struct in6_addr)];
	int r;

	memset(out, 0, sizeof(*out));
	pthread_once(&revoked_once, revoked_index_init);
	tls_drain_errors();
	r = build_client_side(cfg, &out->client_side, err, errlen);
	if (r < 0)
		return r;
	r = build_server_side(cfg, &out->server_side, err, errlen);
	if (r < 0)
		goto err;
	r = build_identities(cfg, out, err, errlen);
	if (r < 0)
		goto err;
	out->verify_peer = cfg->tls_verify == CFG_VERIFY_CA || cfg->tls_verify == CFG_VERIFY_FULL;
	out->verify_full = cfg->tls_verify == CFG_VERIFY_FULL;
	name = cfg->tls_server_name ? cfg->tls_server_name : cfg->upstream_host;
	if (name) {
		out->server_name = strdup(name);
		if (!out->server_name) {
			r = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto err;
		}
		out->server_name_is_ip = inet_pton(AF_INET, name, tmp) == 1 ||
					 inet_pton(AF_INET6, name, tmp) == 1;
	}
	return 0;
err:
	tls_contexts_fini(out);
	return r;
}

void tls_contexts_fini(struct tls_contexts *t)
{
	SSL_CTX_free(t->client_side);
	SSL_CTX_free(t->server_side);
	identities_free(t);
	free(t->server_name);
	memset(t, 0, sizeof(*t));
}

SSL *tls_new_client(const struct tls_contexts *t, int fd)
{
	SSL *ssl = SSL_new(t->client_side);

	if (!ssl)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

SSL *tls_new_upstream(const struct tls_contexts *t, int fd, const struct tls_identity *id)
{
	SSL *ssl = SSL_new(t->server_side);

	if (!ssl)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1)
		goto err;
	if (id) {
		/*
		 * The identity replaces tls_server_certificate outright: with
		 * both loaded (in different key-type slots) OpenSSL could
		 * present either.
		 */
		SSL_certs_clear(ssl);
		if (SSL_use_cert_and_key(ssl, id->cert, id->key, id->chain, 1) != 1)
			goto err;
	}
	if (t->server_name) {
		/* SNI only for names (RFC 6066 forbids IP literals), as libpq does. */
		if (!t->server_name_is_ip && SSL_set_tlsext_host_name(ssl, t->server_name) != 1)
			goto err;
		if (t->verify_full) {
			X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

			if (t->server_name_is_ip) {
				if (X509_VERIFY_PARAM_set1_ip_asc(vp, t->server_name) != 1)
					goto err;
			} else if (SSL_set1_host(ssl, t->server_name) != 1) {
				goto err;
			}
		}
	}
	SSL_set_connect_state(ssl);
	return ssl;
err:
	SSL_free(ssl);
	return NULL;
}
