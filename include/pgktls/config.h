/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * config.h - pgktls.toml: parse, validate, and hold the settings.
 *
 * A loaded config is immutable and shared read-only by every worker. Reload
 * (later) builds a new one and swaps it in; connections keep the one they
 * started with. The key table in config.c is the single list of accepted
 * keys: the parser, --help text and tools/check-config-docs.sh all use it.
 */
#ifndef PGKTLS_CONFIG_H
#define PGKTLS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgktls/compiler.h"

/* How pgktls treats TLS towards PostgreSQL (PgDog's tls_verify). */
enum cfg_tls_verify {
	CFG_VERIFY_DISABLE,	/* no SSLRequest: plaintext upstream */
	CFG_VERIFY_PREFER,	/* try TLS, accept any certificate, plaintext on 'N' */
	CFG_VERIFY_CA,		/* TLS required, chain checked, name not */
	CFG_VERIFY_FULL,	/* TLS required, chain and host name/IP SAN checked */
};

/* Whether record crypto moves into the kernel after the handshake. */
enum cfg_ktls {
	CFG_KTLS_AUTO,		/* use kTLS where possible, userspace otherwise */
	CFG_KTLS_OFF,		/* always userspace OpenSSL */
	CFG_KTLS_REQUIRED,	/* refuse connections that cannot be offloaded */
};

/* Whether clients must present a certificate when tls_client_ca_certificate is set. */
enum cfg_client_cert {
	CFG_CLIENT_CERT_REQUIRED,	/* no certificate, no connection (mutual TLS) */
	CFG_CLIENT_CERT_OPTIONAL,	/* asked for and checked if sent; none is fine */
};
struct sock_cidr;

/* TLS protocol versions as OpenSSL numbers them (TLS1_2_VERSION = 0x0303). */
#define CFG_TLS_V12 0x0303
#define CFG_TLS_V13 0x0304

/* One listening address: `host` may list several, separated by commas. */
struct cfg_listen {
	char *host;		/* numeric address or name; "*" means every address */
};

struct pgktls_config {
	char *path;			/* file this came from, or NULL (command line only) */

	/* [general] */
	struct cfg_listen *listen;	/* parsed from `host` (default "0.0.0.0") */
	size_t n_listen;
	uint16_t port;			/* default 6432, as PgDog */
	unsigned workers;		/* 0 = one per online CPU */
	bool proxy_protocol;		/* every connection starts with a PROXY v1/v2 header */
	struct sock_cidr *proxy_protocol_trusted; /* who may send one (an array) */
	size_t n_proxy_protocol_trusted;
	char *log_level;		/* "error" | "warn" | "info" | "debug"; default info */

	/* client-facing TLS (pgktls is the server) */
	char *tls_certificate;		/* PEM chain; NULL = answer 'N' to SSLRequest */
	char *tls_private_key;
	bool tls_generate_self_signed;	/* instead of tls_certificate: a fresh key and
					 * self-signed certificate at each start (certgen) */
	bool tls_client_required;	/* refuse plaintext StartupMessage */
	char *tls_client_ca_certificate; /* mutual TLS: CA bundle clients must chain to */
	enum cfg_client_cert tls_client_certificate; /* required (default) or optional */
	char *tls_client_crl;		/* revoked client certificates: PEM file or hashed dir */
	char *tls_private_key_passphrase_command; /* prints tls_private_key's passphrase */
	int tls_min_version;		/* CFG_TLS_V12 (default) or CFG_TLS_V13 */
	int tls_max_version;		/* 0 = highest supported */
	char *tls_ciphers;		/* TLS 1.2 cipher list (OpenSSL syntax) */
	char *tls_ciphersuites;		/* TLS 1.3 ciphersuites */
	char *tls_groups;		/* key-exchange groups, e.g. "X25519:P-256" */

	/* upstream TLS (pgktls is the client) */
	enum cfg_tls_verify tls_verify;	/* default CFG_VERIFY_PREFER */
	char *tls_server_ca_certificate; /* PEM bundle, or "system" for the OS store */
	char *tls_server_certificate;	/* client certificate pgktls presents upstream */
	char *tls_server_private_key;
	char *tls_server_private_key_passphrase_command; /* ... of tls_server_private_key */
	char *tls_server_crl;		/* revoked server certificates (verify_ca/verify_full) */
	char *tls_server_identity_map;	/* client certificate -> identity presented upstream */
	int tls_server_min_version;
	int tls_server_max_version;
	char *tls_server_ciphers;
	char *tls_server_ciphersuites;
	char *tls_server_groups;	/* default "P-256:X25519": PostgreSQL offers P-256 only */
	char *tls_server_name;		/* SNI / verify_full name; default: upstream host */

	/* timeouts, milliseconds */
	unsigned startup_timeout;	/* accept -> startup packet read (handshake included); default 10000 */
	unsigned connect_timeout;	/* upstream connect + its TLS handshake; default 5000 */

	/* kTLS (issue 3) */
	enum cfg_ktls ktls;		/* default for both hops */
	enum cfg_ktls ktls_client;	/* client hop; defaults to ktls */
	enum cfg_ktls ktls_server;	/* upstream hop; defaults to ktls */
	bool openssl_records;		/* userspace hops keep OpenSSL's record layer, not tlsrec */

	/* stats endpoint (issue 4); NULL = off */
	char *stats_socket;
	/* metrics over HTTP (issue 14): "ADDRESS:PORT"; NULL = off */
	char *metrics_listen;

	/* running as a service */
	unsigned shutdown_timeout;	/* ms SIGTERM waits for connections to finish; default 30000 */
	bool watch_certificates;	/* reload when certificate/key/CA files change (inotify) */
	char *user;			/* drop privileges to this user after binding */
	char *group;			/* ... and this group (default: the user's) */
	char *pid_file;			/* write the process id here; NULL = none */
	char *upgrade_binary;		/* SIGUSR2 starts this; NULL = our own executable */

	/* [upstream] */
	char *upstream_host;		/* default "127.0.0.1" */
	uint16_t upstream_port;		/* default 5432 */
	char *upstream_unix_socket;	/* socket file or directory; overrides host/port */

	/* Where each key was set: see config_key_origin(). Opaque to callers. */
	struct cfg_origin *origins;
	size_t n_origins;
};

/**
 * config_new_defaults() - a config holding only default values.
 *
 * Return: a new config the caller frees with config_free(), or NULL on ENOMEM.
 */
struct pgktls_config *config_new_defaults(void);

/**
 * config_load_file() - parse @path into @cfg, on top of what @cfg holds.
 * @cfg: from config_new_defaults()
 * @path: pgktls.toml
 * @err: buffer for one error line: "path:line: key: what is wrong, got 'input'"
 * @errlen: its size
 *
 * Stops at the first error. Does not validate cross-key rules; call
 * config_validate() after command-line overrides.
 *
 * Return: 0, or -errno (-EINVAL for a bad file, -ENOENT/-EACCES if unreadable).
 */
PGKTLS_MUSTCHECK int config_load_file(struct pgktls_config *cfg, const char *path, char *err,
				      size_t errlen);

/**
 * config_parse_line() - parse one line of a config file (the fuzz target).
 * @cfg: config being built
 * @section: in/out: current section name buffer (at least 32 bytes), "" at file start
 * @line: one line, without its newline, NUL-terminated
 * @origin_file: the file name used in errors and origins
 * @lineno: 1-based line number
 *
 * Return: 0, or -EINVAL with @err filled.
 */
PGKTLS_MUSTCHECK int config_parse_line(struct pgktls_config *cfg, char *section, const char *line,
				       const char *origin_file, unsigned lineno, char *err,
				       size_t errlen);

/**
 * config_set() - set one key from the command line, with the file's syntax
 * rules for the value (but no quoting needed).
 * @key: "port", "upstream.host", "general.tls_verify" ... (section prefix optional
 *       for [general] keys; required for [upstream] keys)
 * @value: the raw value, e.g. "6432", "verify_full", "/etc/pgktls/server.pem"
 * @origin: how errors name it, e.g. "--port"
 *
 * Return: 0, or -EINVAL with "@origin: key: what is wrong, got 'value'" in @err.
 */
PGKTLS_MUSTCHECK int config_set(struct pgktls_config *cfg, const char *key, const char *value,
				const char *origin, char *err, size_t errlen);

/**
 * config_validate() - cross-key rules and files: everything a running daemon
 * would otherwise discover too late.
 *
 * Checks: cert without key (and the reverse), every named file exists and is
 * readable, min <= max version, upstream host or unix_socket set, verify_ca /
 * verify_full without tls_server_ca_certificate. Certificate/key *matching* is
 * checked when TLS contexts are built (tls.c), which reports through
 * config_where().
 *
 * Return: 0, or -EINVAL with the error in @err (with the file and line of the
 * key at fault where it came from a file).
 */
PGKTLS_MUSTCHECK int config_validate(const struct pgktls_config *cfg, char *err, size_t errlen);

/**
 * config_where() - "pgktls.toml:12: tls_private_key" or "--key: tls_private_key"
 * or "default: tls_private_key", for error messages about a key.
 * @key: the key name as in the file ("tls_private_key", "upstream.host")
 *
 * Return: @buf.
 */
const char *config_where(const struct pgktls_config *cfg, const char *key, char *buf, size_t len);

/** config_free() - free @cfg and everything it owns; NULL is fine. */
void config_free(struct pgktls_config *cfg);

/**
 * config_key_names() - the accepted keys, "general.port", "upstream.host" ...,
 * NULL-terminated (for --help and the docs check).
 */
const char *const *config_key_names(void);

const char *config_verify_name(enum cfg_tls_verify v);
const char *config_ktls_name(enum cfg_ktls k);
/** config_client_cert_name() - "required" or "optional". */
const char *config_client_cert_name(enum cfg_client_cert c);
/** config_tls_version_name() - "TLSv1.2", "TLSv1.3" or "any" for 0. */
const char *config_tls_version_name(int v);

#endif /* PGKTLS_CONFIG_H */
