/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * config.c - pgktls.toml: a strict TOML subset into struct pgktls_config.
 *
 * Every accepted key is one row of cfg_keys[] below: its table, type, field,
 * default and a one-line doc. The parser, the defaults, config_set() and
 * config_key_names() (hence --help and tools/check-config-docs.sh) all read
 * that table, so a key cannot exist in one place and be missing in another.
 *
 * The grammar is small on purpose: tables [general] and [upstream], and
 * `key = value` where a value is a basic or literal string, a decimal
 * integer or a boolean. Everything else TOML allows (arrays, inline tables,
 * dotted keys, floats, dates, multi-line strings) is refused with a message
 * that names it, because a silently ignored line in a TLS proxy's config is
 * how certificates end up unchecked.
 *
 * config_parse_line() is a fuzz target: it never reads past the line's NUL
 * and never allocates more than the line's length (lines are capped at
 * CFG_LINE_MAX, and decoded strings live in a stack buffer of that size).
 */
#include "config.h"

#include "pgktls/config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "pgktls/hex.h"
#include "pgktls/sock.h"

/* Longest line accepted; longer is an error, so no line needs the heap. */
#define CFG_LINE_MAX 4096
/* Size of the caller's section buffer (config_parse_line() documents 32). */
#define CFG_SECTION_MAX 32
/* How many bytes of a bad input an error message quotes back. */
#define CFG_QUOTE_MAX 64
/* Room for a quoted input: every byte may become "\xNN", plus "...". */
#define CFG_QUOTE_BUF (CFG_QUOTE_MAX * 4 + 4)
/* Unknown keys longer than this are not worth a spelling suggestion. */
#define CFG_SUGGEST_MAX 64

/* Enum fields are stored through an int pointer by CFG_CHOICE. */
_Static_assert(sizeof(enum cfg_tls_verify) == sizeof(int), "enum cfg_tls_verify is not int-sized");
_Static_assert(sizeof(enum cfg_ktls) == sizeof(int), "enum cfg_ktls is not int-sized");
_Static_assert(sizeof(enum cfg_client_cert) == sizeof(int),
	       "enum cfg_client_cert is not int-sized");

enum cfg_type {
	CFG_STR,	/* char *: free text; "" means unset (NULL) */
	CFG_PATH,	/* char *: a file read at startup; validate opens it */
	CFG_SOCKET,	/* char *: a unix socket path; validate checks its directory */
	CFG_BOOL,	/* bool */
	CFG_UINT,	/* unsigned, within [min, max] */
	CFG_PORT,	/* uint16_t, 1..65535 */
	CFG_CHOICE,	/* an int-sized enum, from a word list */
	CFG_WORD,	/* char *: a word from a list, stored in its canonical spelling */
	CFG_TLSVER,	/* int: CFG_TLS_V12 or CFG_TLS_V13 (0 = no limit, if allowed) */
	CFG_HOSTS,	/* cfg->listen: comma-separated listen addresses */
	CFG_CIDRS,	/* struct sock_cidr * + count after it: an array of networks */
};

/* CFG_TLSVER: "" is accepted and means "no limit" (stored as 0). */
#define CFG_F_EMPTY_OK (1u << 0)
/* CFG_PATH: the word "system" names the OS trust store instead of a file. */
#define CFG_F_SYSTEM (1u << 1)
/* CFG_PATH: a directory is fine too (a CRL directory, as PostgreSQL's ssl_crl_dir). */
#define CFG_F_DIR_OK (1u << 2)

/* One accepted spelling of a CFG_CHOICE / CFG_WORD value. */
struct cfg_word {
	const char *word;
	int value;
	bool alias;	/* accepted, but not listed in error messages */
};

/*
 * Extra rule on a string value, run before it is stored. Writes what is
 * wrong (without the "got" part, which the caller adds) into @why.
 */
typedef int cfg_check_fn(const char *value, char *why, size_t whylen);

struct cfg_key {
	const char *name;		/* as written in the file */
	const char *section;		/* "general" or "upstream" */
	enum cfg_type type;
	size_t offset;			/* of the field in struct pgktls_config */
	const char *def;		/* default, in command-line syntax; NULL = unset */
	unsigned min, max;		/* CFG_UINT range */
	const struct cfg_word *words;	/* CFG_CHOICE, CFG_WORD: NULL-terminated */
	unsigned flags;			/* CFG_F_* */
	cfg_check_fn *check;		/* extra rule on the text, or NULL */
	const char *doc;		/* one line for --help */
};

/* Where a key (or a table header) was set; see config_where(). */
struct cfg_origin {
	char *file;	/* file name or command-line flag; NULL = still the default */
	unsigned line;	/* 1-based line in @file; 0 for the command line */
};

static const struct cfg_word verify_words[] = {
	{ "disable", CFG_VERIFY_DISABLE, false },
	{ "prefer", CFG_VERIFY_PREFER, false },
	{ "verify_ca", CFG_VERIFY_CA, false },
	{ "verify_full", CFG_VERIFY_FULL, false },
	/* PgDog writes "disabled"; libpq spells the others with a hyphen. */
	{ "disabled", CFG_VERIFY_DISABLE, true },
	{ "verify-ca", CFG_VERIFY_CA, true },
	{ "verify-full", CFG_VERIFY_FULL, true },
	{ NULL, 0, false },
};

static const struct cfg_word ktls_words[] = {
	{ "auto", CFG_KTLS_AUTO, false },
	{ "off", CFG_KTLS_OFF, false },
	{ "required", CFG_KTLS_REQUIRED, false },
	{ NULL, 0, false },
};

static const struct cfg_word client_cert_words[] = {
	{ "required", CFG_CLIENT_CERT_REQUIRED, false },
	{ "optional", CFG_CLIENT_CERT_OPTIONAL, false },
	{ NULL, 0, false },
};

/* Values are unused: log_level is stored as its canonical word. */
static const struct cfg_word log_words[] = {
	{ "error", 0, false },
	{ "warn", 1, false },
	{ "info", 2, false },
	{ "debug", 3, false },
	{ "warning", 1, true },
	{ NULL, 0, false },
};

static int check_one_host(const char *value, char *why, size_t whylen);
static int check_server_name(const char *value, char *why, size_t whylen);
static int check_hostport(const char *value, char *why, size_t whylen);
static int check_upgrade_binary(const char *value, char *why, size_t whylen);

#define OFF(field) offsetof(struct pgktls_config, field)
#define GEN "general"
#define UPS "upstream"

/*
 * The one list of keys. Order is the order of --help and of the man page.
 * Defaults are written as they would be typed on the command line and go
 * through the same conversion as user input, so they cannot drift from it.
 */
static const struct cfg_key cfg_keys[] = {
	{ .name = "host", .section = GEN, .type = CFG_HOSTS, .offset = OFF(listen),
	  .def = "0.0.0.0",
	  .doc = "listen addresses, comma-separated; \"*\" = all (IPv4 and IPv6)" },
	{ .name = "port", .section = GEN, .type = CFG_PORT, .offset = OFF(port),
	  .def = "6432", .doc = "listen port" },
	{ .name = "proxy_protocol", .section = GEN, .type = CFG_BOOL,
	  .offset = OFF(proxy_protocol), .def = "false",
	  .doc = "require a PROXY v1/v2 header (from a load balancer) on every connection" },
	{ .name = "proxy_protocol_trusted", .section = GEN, .type = CFG_CIDRS,
	  .offset = OFF(proxy_protocol_trusted),
	  .doc = "networks allowed to send a PROXY header, e.g. [\"10.0.0.0/8\", \"::1/128\"]" },
	{ .name = "workers", .section = GEN, .type = CFG_UINT, .offset = OFF(workers),
	  .def = "0", .min = 0, .max = 256, .doc = "worker threads; 0 = one per online CPU" },
	{ .name = "log_level", .section = GEN, .type = CFG_WORD, .offset = OFF(log_level),
	  .def = "info", .words = log_words, .doc = "error, warn, info or debug" },
	{ .name = "tls_certificate", .section = GEN, .type = CFG_PATH,
	  .offset = OFF(tls_certificate), .doc = "PEM certificate chain shown to clients" },
	{ .name = "tls_private_key", .section = GEN, .type = CFG_PATH,
	  .offset = OFF(tls_private_key), .doc = "PEM private key of tls_certificate" },
	{ .name = "tls_generate_self_signed", .section = GEN, .type = CFG_BOOL,
	  .offset = OFF(tls_generate_self_signed), .def = "false",
	  .doc = "make a P-256 key and self-signed certificate at start, for the listen hosts" },
	{ .name = "tls_client_required", .section = GEN, .type = CFG_BOOL,
	  .offset = OFF(tls_client_required), .def = "false",
	  .doc = "refuse clients that do not use TLS" },
	{ .name = "tls_client_ca_certificate", .section = GEN, .type = CFG_PATH,
	  .offset = OFF(tls_client_ca_certificate),
	  .doc = "CA bundle client certificates must chain to (mutual TLS)" },
	{ .name = "tls_client_certificate", .section = GEN, .type = CFG_CHOICE,
	  .offset = OFF(tls_client_certificate), .def = "required", .words = client_cert_words,
	  .doc = "with tls_client_ca_certificate: required, or optional (checked if sent)" },
	{ .name = "tls_client_crl", .section = GEN, .type = CFG_PATH, .offset = OFF(tls_client_crl),
	  .flags = CFG_F_DIR_OK,
	  .doc = "revoked client certificates: a PEM CRL file, or a directory of hashed CRLs" },
	{ .name = "tls_private_key_passphrase_command", .section = GEN, .type = CFG_STR,
	  .offset = OFF(tls_private_key_passphrase_command),
	  .doc = "shell command printing tls_private_key's passphrase (%p: prompt)" },
	{ .name = "tls_min_version", .section = GEN, .type = CFG_TLSVER,
	  .offset = OFF(tls_min_version), .def = "TLSv1.2",
	  .doc = "lowest TLS version offered to clients" },
	{ .name = "tls_max_version", .section = GEN, .type = CFG_TLSVER,
	  .offset = OFF(tls_max_version), .flags = CFG_F_EMPTY_OK,
	  .doc = "highest TLS version offered to clients; \"\" = highest supported" },
	{ .name = "tls_ciphers", .section = GEN, .type = CFG_STR, .offset = OFF(tls_ciphers),
	  .doc = "TLS 1.2 cipher list towards clients (OpenSSL syntax)" },
	{ .name = "tls_ciphersuites", .section = GEN, .type = CFG_STR,
	  .offset = OFF(tls_ciphersuites), .doc = "TLS 1.3 ciphersuites towards clients" },
	{ .name = "tls_groups", .section = GEN, .type = CFG_STR, .offset = OFF(tls_groups),
	  .def = "X25519:P-256", .doc = "key-exchange groups towards clients" },
	{ .name = "tls_verify", .section = GEN, .type = CFG_CHOICE, .offset = OFF(tls_verify),
	  .def = "prefer", .words = verify_words,
	  .doc = "TLS towards PostgreSQL: disable, prefer, verify_ca or verify_full" },
	{ .name = "tls_server_ca_certificate", .section = GEN, .type = CFG_PATH,
	  .offset = OFF(tls_server_ca_certificate), .flags = CFG_F_SYSTEM,
	  .doc = "CA bundle for PostgreSQL's certificate, or \"system\"" },
	{ .name = "tls_server_certificate", .section = GEN, .type = CFG_PATH,
	  .offset = OFF(tls_server_certificate),
	  .doc = "client certificate pgktls presents to PostgreSQL" },
	{ .name = "tls_server_private_key", .section = GEN, .type = CFG_PATH,
	  .offset = OFF(tls_server_private_key), .doc = "private key of tls_server_certificate" },
	{ .name = "tls_server_private_key_passphrase_command", .section = GEN, .type = CFG_STR,
	  .offset = OFF(tls_server_private_key_passphrase_command),
	  .doc = "shell command printing tls_server_private_key's passphrase (%p: prompt)" },
	{ .name = "tls_server_identity_map", .section = GEN, .type = CFG_PATH,
	  .offset = OFF(tls_server_identity_map),
	  .doc = "file pairing verified client certificates with identities presented upstream" },
	{ .name = "tls_server_crl", .section = GEN, .type = CFG_PATH, .offset = OFF(tls_server_crl),
	  .flags = CFG_F_DIR_OK,
	  .doc = "revoked PostgreSQL certificates (verify_ca, verify_full): PEM file or directory" },
	{ .name = "tls_server_min_version", .section = GEN, .type = CFG_TLSVER,
	  .offset = OFF(tls_server_min_version), .def = "TLSv1.2",
	  .doc = "lowest TLS version towards PostgreSQL" },
	{ .name = "tls_server_max_version", .section = GEN, .type = CFG_TLSVER,
	  .offset = OFF(tls_server_max_version), .flags = CFG_F_EMPTY_OK,
	  .doc = "highest TLS version towards PostgreSQL; \"\" = highest supported" },
	{ .name = "tls_server_ciphers", .section = GEN, .type = CFG_STR,
	  .offset = OFF(tls_server_ciphers), .doc = "TLS 1.2 cipher list towards PostgreSQL" },
	{ .name = "tls_server_ciphersuites", .section = GEN, .type = CFG_STR,
	  .offset = OFF(tls_server_ciphersuites),
	  .doc = "TLS 1.3 ciphersuites towards PostgreSQL" },
	{ .name = "tls_server_groups", .section = GEN, .type = CFG_STR,
	  .offset = OFF(tls_server_groups), .def = "P-256:X25519",
	  .doc = "key-exchange groups towards PostgreSQL" },
	{ .name = "tls_server_name", .section = GEN, .type = CFG_STR,
	  .offset = OFF(tls_server_name), .check = check_server_name,
	  .doc = "SNI and verify_full name; default: upstream host" },
	{ .name = "startup_timeout", .section = GEN, .type = CFG_UINT,
	  .offset = OFF(startup_timeout), .def = "10000", .min = 100, .max = 3600000,
	  .doc = "ms from accept to the startup packet, TLS handshake included" },
	{ .name = "connect_timeout", .section = GEN, .type = CFG_UINT,
	  .offset = OFF(connect_timeout), .def = "5000", .min = 100, .max = 3600000,
	  .doc = "ms for the upstream connect and its TLS handshake" },
	{ .name = "ktls", .section = GEN, .type = CFG_CHOICE, .offset = OFF(ktls),
	  .def = "auto", .words = ktls_words, .doc = "kernel TLS: auto, off or required" },
	{ .name = "ktls_client", .section = GEN, .type = CFG_CHOICE, .offset = OFF(ktls_client),
	  .def = "auto", .words = ktls_words,
	  .doc = "kernel TLS on the client hop; default: ktls" },
	{ .name = "ktls_server", .section = GEN, .type = CFG_CHOICE, .offset = OFF(ktls_server),
	  .def = "auto", .words = ktls_words,
	  .doc = "kernel TLS on the PostgreSQL hop; default: ktls" },
	{ .name = "openssl_records", .section = GEN, .type = CFG_BOOL,
	  .offset = OFF(openssl_records), .def = "false",
	  .doc = "userspace TLS hops keep OpenSSL's record layer (more memory per connection)" },
	{ .name = "stats_socket", .section = GEN, .type = CFG_SOCKET, .offset = OFF(stats_socket),
	  .doc = "unix socket serving statistics as JSON; unset = off" },
	{ .name = "metrics_listen", .section = GEN, .type = CFG_STR,
	  .offset = OFF(metrics_listen), .check = check_hostport,
	  .doc = "\"ADDRESS:PORT\" serving GET /metrics (Prometheus, OpenMetrics); unset = off" },
	{ .name = "shutdown_timeout", .section = GEN, .type = CFG_UINT,
	  .offset = OFF(shutdown_timeout), .def = "30000", .min = 0, .max = 86400000,
	  .doc = "ms SIGTERM lets open connections finish before closing them" },
	{ .name = "watch_certificates", .section = GEN, .type = CFG_BOOL,
	  .offset = OFF(watch_certificates), .def = "false",
	  .doc = "reload when a certificate, key or CA file changes (inotify)" },
	{ .name = "user", .section = GEN, .type = CFG_STR, .offset = OFF(user),
	  .doc = "run as this user after binding (needs root to start)" },
	{ .name = "group", .section = GEN, .type = CFG_STR, .offset = OFF(group),
	  .doc = "run as this group after binding; default: the user's group" },
	{ .name = "pid_file", .section = GEN, .type = CFG_STR, .offset = OFF(pid_file),
	  .doc = "write the process id to this file; removed at exit" },
	{ .name = "upgrade_binary", .section = GEN, .type = CFG_STR, .offset = OFF(upgrade_binary),
	  .check = check_upgrade_binary,
	  .doc = "the binary SIGUSR2 starts to take over; default: the running one's path" },
	{ .name = "host", .section = UPS, .type = CFG_STR, .offset = OFF(upstream_host),
	  .def = "127.0.0.1", .check = check_one_host, .doc = "PostgreSQL host name or address" },
	{ .name = "port", .section = UPS, .type = CFG_PORT, .offset = OFF(upstream_port),
	  .def = "5432", .doc = "PostgreSQL port" },
	{ .name = "unix_socket", .section = UPS, .type = CFG_SOCKET,
	  .offset = OFF(upstream_unix_socket),
	  .doc = "PostgreSQL unix socket, or its directory; overrides host" },
};

#define N_KEYS PGKTLS_ARRAY_SIZE(cfg_keys)

/* Tables may each be opened once; their origins follow the keys'. */
static const char *const cfg_tables[] = { GEN, UPS };
#define N_TABLES PGKTLS_ARRAY_SIZE(cfg_tables)
#define N_ORIGINS (N_KEYS + N_TABLES)

/* A value as the lexer found it, before the key's type converts it. */
enum tval_kind {
	TV_STRING,
	TV_INTEGER,
	TV_BOOL,
	TV_ARRAY,	/* an array of strings: the items in @text, joined by commas */
};

struct tval {
	enum tval_kind kind;
	const char *text;	/* TV_STRING: the decoded string */
	long long num;		/* TV_INTEGER, clamped to +-LLONG_MAX when huge */
	bool b;			/* TV_BOOL */
	const char *raw;	/* the value as written, for "got '...'" */
	size_t rawlen;
};

/* ---- error text ---- */

static void fmt_err(char *err, size_t errlen, const char *fmt, ...) PGKTLS_PRINTF(3, 4);

static void fmt_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* "FILE:LINE: " + message, for parse errors. */
static int perr(char *err, size_t errlen, const char *file, unsigned lineno, const char *fmt, ...)
	PGKTLS_PRINTF(5, 6);

static int perr(char *err, size_t errlen, const char *file, unsigned lineno, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!err || !errlen)
		return -EINVAL;
	n = snprintf(err, errlen, "%s:%u: ", file, lineno);
	if (n >= 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/*
 * Copy @len bytes of user input into @dst for an error message: control
 * bytes become \xNN so a hostile config cannot write escape sequences to a
 * terminal or split a log line, and long input is cut with "...".
 */
static const char *quote(char *dst, size_t dstlen, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < len && i < CFG_QUOTE_MAX && o + 5 < dstlen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f) {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		} else {
			dst[o++] = (char)c;
		}
	}
	if (len > CFG_QUOTE_MAX && o + 4 <= dstlen) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

/* @why = "<what>, got '<input>'" for a value error. */
static int bad_value(char *why, size_t whylen, const char *got, size_t gotlen, const char *fmt,
		     ...) PGKTLS_PRINTF(5, 6);

static int bad_value(char *why, size_t whylen, const char *got, size_t gotlen, const char *fmt,
		     ...)
{
	char q[CFG_QUOTE_BUF];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < whylen)
		snprintf(why + n, whylen - (size_t)n, ", got '%s'",
			 quote(q, sizeof(q), got, gotlen));
	return -EINVAL;
}

static const char *errtext(int errnum, char *buf, size_t len)
{
	/* GNU strerror_r: thread-safe, unlike strerror(), for reloads. */
	return strerror_r(errnum, buf, len);
}

/* ---- key table helpers ---- */

static bool is_bare_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

static const char *skip_ws(const char *p)
{
	while (is_ws(*p))
		p++;
	return p;
}

/* "port" for [general] keys, "upstream.port" for the others: unambiguous and short. */
static const char *key_display(const struct cfg_key *k, char *buf, size_t len)
{
	if (strcmp(k->section, GEN) == 0)
		return k->name;
	snprintf(buf, len, "%s.%s", k->section, k->name);
	return buf;
}

static int find_key(const char *section, const char *name, size_t namelen)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		if (strcmp(cfg_keys[i].section, section) == 0 &&
		    strlen(cfg_keys[i].name) == namelen &&
		    memcmp(cfg_keys[i].name, name, namelen) == 0)
			return (int)i;
	}
	return -1;
}

/* "port", "general.port" or "upstream.port" -> index, or -1. */
static int find_key_dotted(const char *key)
{
	const char *dot = strchr(key, '.');

	if (!dot)
		return find_key(GEN, key, strlen(key));
	for (size_t t = 0; t < N_TABLES; t++) {
		if (strlen(cfg_tables[t]) == (size_t)(dot - key) &&
		    memcmp(cfg_tables[t], key, (size_t)(dot - key)) == 0)
			return find_key(cfg_tables[t], dot + 1, strlen(dot + 1));
	}
	return -1;
}

/*
 * Edit distance counting a swap of two neighbours as one edit ("prot" ->
 * "port"), the commonest typo. Both strings are at most CFG_SUGGEST_MAX.
 */
static unsigned edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
	unsigned d[CFG_SUGGEST_MAX + 1][CFG_SUGGEST_MAX + 1];

	for (size_t i = 0; i <= alen; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= blen; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= alen; i++) {
		for (size_t j = 1; j <= blen; j++) {
			unsigned sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			unsigned del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
			unsigned best = sub < del ? sub : del;

			if (ins < best)
				best = ins;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
			    d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[alen][blen];
}

/*
 * The key of @section (or of any table if @section is NULL, comparing
 * display names) that @name most likely meant: a small edit distance, or
 * one name being a prefix of the other ("tls_cert" -> "tls_certificate").
 */
static const struct cfg_key *suggest_key(const char *section, const char *name, size_t namelen)
{
	const struct cfg_key *best = NULL;
	unsigned best_score = UINT_MAX;
	char buf[64];

	if (namelen == 0 || namelen > CFG_SUGGEST_MAX)
		return NULL;
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		const char *cand;
		size_t clen, shorter;
		unsigned d, limit;

		if (section && strcmp(k->section, section) != 0)
			continue;
		cand = section ? k->name : key_display(k, buf, sizeof(buf));
		clen = strlen(cand);
		if (clen > CFG_SUGGEST_MAX)
			continue;
		shorter = clen < namelen ? clen : namelen;
		d = edit_distance(name, namelen, cand, clen);
		limit = namelen < 6 ? 1 : namelen < 12 ? 2 : 3;
		if (shorter >= 4 && memcmp(cand, name, shorter) == 0)
			d = 1; /* a prefix: as good as a one-letter typo */
		if (!section && strlen(k->name) == namelen && memcmp(k->name, name, namelen) == 0)
			d = 0; /* "unix_socket" given, "upstream.unix_socket" meant */
		if (d <= limit && d < best_score) {
			best = k;
			best_score = d;
		}
	}
	return best;
}

/* ---- origins ---- */

static int origin_set(struct pgktls_config *cfg, size_t idx, const char *file, unsigned line)
{
	char *copy = strdup(file);

	if (!copy)
		return -ENOMEM;
	free(cfg->origins[idx].file);
	cfg->origins[idx].file = copy;
	cfg->origins[idx].line = line;
	return 0;
}

static bool origin_is_set(const struct pgktls_config *cfg, size_t idx)
{
	return cfg->origins && idx < cfg->n_origins && cfg->origins[idx].file;
}

/* ---- value conversion ---- */

/*
 * TOML decimal integer: [+-]?(0|[1-9](_?[0-9])*). Values too large for a
 * long long are clamped: every key's range rejects them anyway, and the
 * error then quotes the input as written.
 */
static int lex_int(const char *s, size_t len, long long *out)
{
	bool neg = false;
	long long v = 0;
	size_t i = 0;
	bool digit_before = false;

	if (len && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i++;
	}
	if (i >= len)
		return -EINVAL;
	if (s[i] == '0' && i + 1 < len)
		return -EINVAL; /* leading zeros, or 0x/0o/0b prefixes */
	for (; i < len; i++) {
		if (s[i] == '_') {
			if (!digit_before || i + 1 >= len || !(s[i + 1] >= '0' && s[i + 1] <= '9'))
				return -EINVAL;
			digit_before = false;
			continue;
		}
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		digit_before = true;
		if (v > (LLONG_MAX - (s[i] - '0')) / 10)
			v = LLONG_MAX;
		else
			v = v * 10 + (s[i] - '0');
	}
	*out = neg ? -v : v;
	return 0;
}

static int set_str(char **field, const char *text)
{
	char *copy = NULL;

	if (text[0]) {
		copy = strdup(text);
		if (!copy)
			return -ENOMEM;
	}
	free(*field);
	*field = copy;
	return 0;
}

static const struct cfg_word *find_word(const struct cfg_word *words, const char *text)
{
	for (; words->word; words++) {
		if (strcmp(words->word, text) == 0)
			return words;
	}
	return NULL;
}

/* "expected a, b, c or d" from the non-alias words. */
static void words_expected(const struct cfg_word *words, char *buf, size_t len)
{
	size_t n = 0, total = 0, o;

	for (const struct cfg_word *w = words; w->word; w++)
		total += !w->alias;
	o = (size_t)snprintf(buf, len, "expected ");
	for (const struct cfg_word *w = words; w->word && o < len; w++) {
		if (w->alias)
			continue;
		n++;
		o += (size_t)snprintf(buf + o, len - o, "%s%s",
				      n == 1 ? "" : n == total ? " or " : ", ", w->word);
	}
}

static int parse_tls_version(const char *text, int *out)
{
	const char *v = text;

	if (strncasecmp(v, "TLSv", 4) == 0)
		v += 4;
	if (strcmp(v, "1.2") == 0) {
		*out = CFG_TLS_V12;
		return 0;
	}
	if (strcmp(v, "1.3") == 0) {
		*out = CFG_TLS_V13;
		return 0;
	}
	return -EINVAL;
}

/* Versions people may still write, which deserve a reason and not just a list. */
static bool is_old_tls_version(const char *text)
{
	static const char *const old[] = {
		"SSLv2", "SSLv3", "TLSv1", "TLSv1.0", "TLSv1.1", "1", "1.0", "1.1",
	};

	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(old); i++) {
		if (strcasecmp(text, old[i]) == 0)
			return true;
	}
	return false;
}

static void free_listen(struct pgktls_config *cfg)
{
	for (size_t i = 0; i < cfg->n_listen; i++)
		free(cfg->listen[i].host);
	free(cfg->listen);
	cfg->listen = NULL;
	cfg->n_listen = 0;
}

/* `host`: "a, b ,c" -> three listen entries; "[::1]" loses its brackets. */
static int set_hosts(struct pgktls_config *cfg, const char *text, char *why, size_t whylen)
{
	struct cfg_listen *list = NULL;
	size_t n = 0, cap = 1, len = strlen(text);
	bool star = false;
	const char *p = text;
	int ret;

	for (size_t i = 0; i < len; i++)
		cap += text[i] == ',';
	list = calloc(cap, sizeof(*list));
	if (!list)
		return -ENOMEM;
	for (;;) {
		const char *end = strchr(p, ','), *b, *e;

		if (!end)
			end = p + strlen(p);
		b = skip_ws(p);
		e = end;
		while (e > b && is_ws(e[-1]))
			e--;
		if (e == b) {
			ret = bad_value(why, whylen, text, len,
					"expected addresses separated by commas, with none empty");
			goto err;
		}
		for (const char *c = b; c < e; c++) {
			if (is_ws(*c)) {
				ret = bad_value(why, whylen, text, len, "expected addresses "
						"separated by commas, not spaces");
				goto err;
			}
		}
		if (e - b >= 2 && *b == '[' && e[-1] == ']') {
			b++;
			e--;
		}
		if (e - b == 1 && *b == '*')
			star = true;
		list[n].host = strndup(b, (size_t)(e - b));
		if (!list[n].host) {
			ret = -ENOMEM;
			goto err;
		}
		n++;
		if (!*end)
			break;
		p = end + 1;
	}
	if (star && n > 1) {
		ret = bad_value(why, whylen, text, len,
				"'*' already means every address, so list it alone");
		goto err;
	}
	free_listen(cfg);
	cfg->listen = list;
	cfg->n_listen = n;
	return 0;
err:
	for (size_t i = 0; i < n; i++)
		free(list[i].host);
	free(list);
	return ret;
}

/*
 * `proxy_protocol_trusted`: networks from an array (or, on the command line,
 * one string), each item separated by a comma; replaces the whole list.
 */
static int set_cidrs(struct pgktls_config *cfg, const char *text, char *why, size_t whylen)
{
	struct sock_cidr *list = NULL;
	size_t n = 0, cap = 1;
	const char *p = text;
	int ret;

	for (const char *c = text; *c; c++)
		cap += *c == ',';
	list = calloc(cap, sizeof(*list));
	if (!list)
		return -ENOMEM;
	while (*skip_ws(p)) {
		const char *b = skip_ws(p), *end = strchr(b, ','), *e, *reason;
		char item[CFG_QUOTE_MAX];

		if (!end)
			end = b + strlen(b);
		e = end;
		while (e > b && is_ws(e[-1]))
			e--;
		if ((size_t)(e - b) >= sizeof(item) || e == b) {
			ret = bad_value(why, whylen, b, (size_t)(e - b), "expected an address or "
					"network such as \"10.0.0.0/8\" or \"::1/128\"");
			goto err;
		}
		memcpy(item, b, (size_t)(e - b));
		item[e - b] = '\0';
		if (sock_cidr_parse(item, &list[n], &reason) < 0) {
			ret = bad_value(why, whylen, item, strlen(item), "%s", reason);
			goto err;
		}
		n++;
		p = *end ? end + 1 : end;
	}
	free(cfg->proxy_protocol_trusted);
	cfg->proxy_protocol_trusted = list;
	cfg->n_proxy_protocol_trusted = n;
	return 0;
err:
	free(list);
	return ret;
}

static int check_one_host(const char *value, char *why, size_t whylen)
{
	for (const char *c = value; *c; c++) {
		if (is_ws(*c) || *c == ',') {
			snprintf(why, whylen, "expected one host name or address");
			return -EINVAL;
		}
	}
	return 0;
}

/* execve() without a PATH search: a relative name would depend on the working directory. */
static int check_upgrade_binary(const char *value, char *why, size_t whylen)
{
	if (value[0] != '/') {
		snprintf(why, whylen, "expected an absolute path");
		return -EINVAL;
	}
	return 0;
}

static int check_server_name(const char *value, char *why, size_t whylen)
{
	for (const char *c = value; *c; c++) {
		if (is_ws(*c) || *c == ',' || *c == '/') {
			snprintf(why, whylen, "expected one DNS name or IP address");
			return -EINVAL;
		}
	}
	return 0;
}

/* metrics_listen: numeric, so a typo is a config error and not a resolver's surprise. */
static int check_hostport(const char *value, char *why, size_t whylen)
{
	struct sock_addr a;

	if (sock_parse_hostport(value, &a) < 0) {
		snprintf(why, whylen,
			 "expected numeric ADDRESS:PORT, as \"127.0.0.1:9939\" or \"[::1]:9939\"");
		return -EINVAL;
	}
	return 0;
}

/*
 * Convert @v by @k's type and store it in @cfg. On error, @why holds
 * "what is wrong, got 'input'" and nothing in @cfg has changed.
 *
 * Return: 0, -EINVAL or -ENOMEM.
 */
static int key_set(struct pgktls_config *cfg, const struct cfg_key *k, const struct tval *v,
		   char *why, size_t whylen)
{
	char *field = (char *)cfg + k->offset;
	const struct cfg_word *w;
	char expected[128];
	int ret, ver;

	switch (k->type) {
	case CFG_BOOL:
		if (v->kind != TV_BOOL)
			return bad_value(why, whylen, v->raw, v->rawlen, "expected true or false");
		*(bool *)(void *)field = v->b;
		return 0;
	case CFG_UINT:
	case CFG_PORT: {
		unsigned min = k->type == CFG_PORT ? 1 : k->min;
		unsigned max = k->type == CFG_PORT ? 65535 : k->max;

		if (v->kind != TV_INTEGER || v->num < (long long)min || v->num > (long long)max)
			return bad_value(why, whylen, v->raw, v->rawlen,
					 "expected an integer from %u to %u", min, max);
		if (k->type == CFG_PORT)
			*(uint16_t *)(void *)field = (uint16_t)v->num;
		else
			*(unsigned *)(void *)field = (unsigned)v->num;
		return 0;
	}
	default:
		break;
	}

	if (k->type == CFG_CIDRS && (v->kind == TV_ARRAY || v->kind == TV_STRING))
		return set_cidrs(cfg, v->text, why, whylen);
	/* Every other type takes a string. */
	if (v->kind != TV_STRING)
		return bad_value(why, whylen, v->raw, v->rawlen, "expected a string in quotes");
	if (k->check && v->text[0]) {
		char what[96];

		if (k->check(v->text, what, sizeof(what)))
			return bad_value(why, whylen, v->text, strlen(v->text), "%s", what);
	}

	switch (k->type) {
	case CFG_STR:
	case CFG_PATH:
	case CFG_SOCKET:
		/* CFG_F_SYSTEM's "system" is stored as the word too. */
		return set_str((char **)(void *)field, v->text);
	case CFG_CHOICE:
	case CFG_WORD:
		w = find_word(k->words, v->text);
		if (!w) {
			words_expected(k->words, expected, sizeof(expected));
			return bad_value(why, whylen, v->text, strlen(v->text), "%s", expected);
		}
		if (k->type == CFG_WORD) {
			/* Store the canonical spelling: "warning" -> "warn". */
			for (const struct cfg_word *c = k->words; c->word; c++) {
				if (!c->alias && c->value == w->value) {
					w = c;
					break;
				}
			}
			return set_str((char **)(void *)field, w->word);
		}
		*(int *)(void *)field = w->value;
		if (k->offset == OFF(ktls)) {
			/* ktls_client/ktls_server follow ktls unless set themselves. */
			for (size_t i = 0; i < N_KEYS; i++) {
				size_t off = cfg_keys[i].offset;

				if ((off == OFF(ktls_client) || off == OFF(ktls_server)) &&
				    !origin_is_set(cfg, i))
					*(int *)(void *)((char *)cfg + off) = w->value;
			}
		}
		return 0;
	case CFG_TLSVER:
		if (k->flags & CFG_F_EMPTY_OK && !v->text[0]) {
			*(int *)(void *)field = 0;
			return 0;
		}
		if (parse_tls_version(v->text, &ver) == 0) {
			*(int *)(void *)field = ver;
			return 0;
		}
		ret = bad_value(why, whylen, v->text, strlen(v->text), "%s",
				k->flags & CFG_F_EMPTY_OK ?
				"expected TLSv1.2, TLSv1.3 or \"\" for no limit" :
				"expected TLSv1.2 or TLSv1.3");
		if (is_old_tls_version(v->text)) {
			size_t n = strlen(why);

			snprintf(why + n, whylen - n, " (TLS 1.2 is the minimum: older versions "
				 "are insecure)");
		}
		return ret;
	case CFG_HOSTS:
		return set_hosts(cfg, v->text, why, whylen);
	default:
		break;
	}
	PGKTLS_BUG_ON(1);
	return -EINVAL;
}

/*
 * A value from the command line (or a table default): no quotes, so the
 * key's type decides how to read it.
 */
static void tval_from_text(const struct cfg_key *k, const char *text, struct tval *v)
{
	memset(v, 0, sizeof(*v));
	v->kind = TV_STRING;
	v->text = text;
	v->raw = text;
	v->rawlen = strlen(text);
	if (k->type == CFG_BOOL) {
		if (strcmp(text, "true") == 0 || strcmp(text, "false") == 0) {
			v->kind = TV_BOOL;
			v->b = text[0] == 't';
		}
	} else if (k->type == CFG_UINT || k->type == CFG_PORT) {
		if (lex_int(text, v->rawlen, &v->num) == 0)
			v->kind = TV_INTEGER;
	}
}

/* ---- the line parser ---- */

static size_t utf8_encode(unsigned long cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Decode the basic string starting at @p (on its opening quote) into @out,
 * which has room for the rest of the line: every escape is at least as long
 * as what it decodes to. Sets *@end past the closing quote.
 */
static int lex_basic_string(const char *p, char *out, const char **end, char *why, size_t whylen)
{
	const char *start = p;
	size_t o = 0;

	for (p++; *p != '"'; p++) {
		unsigned long cp = 0;
		int digits;

		if (!*p)
			return bad_value(why, whylen, start, strlen(start), "unterminated string");
		if (*p != '\\') {
			out[o++] = *p;
			continue;
		}
		p++;
		switch (*p) {
		case '"': out[o++] = '"'; continue;
		case '\\': out[o++] = '\\'; continue;
		case 'n': out[o++] = '\n'; continue;
		case 't': out[o++] = '\t'; continue;
		case 'r': out[o++] = '\r'; continue;
		case 'b': out[o++] = '\b'; continue;
		case 'f': out[o++] = '\f'; continue;
		case 'u': digits = 4; break;
		case 'U': digits = 8; break;
		case '\0':
			return bad_value(why, whylen, start, strlen(start), "unterminated string");
		default:
			return bad_value(why, whylen, p - 1, 2,
					 "invalid escape in string (known: \\\" \\\\ \\n \\t "
					 "\\uXXXX)");
		}
		for (int i = 1; i <= digits; i++) {
			int h = hex_digit(p[i]); /* stops at the NUL: hex_digit('\0') is -1 */

			if (h < 0)
				return bad_value(why, whylen, p - 1,
						 strnlen(p - 1, (size_t)digits + 2),
						 "expected %d hex digits after \\%c", digits, *p);
			cp = cp << 4 | (unsigned long)h;
		}
		if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return bad_value(why, whylen, p - 1, (size_t)digits + 2,
					 "not a usable Unicode character");
		o += utf8_encode(cp, out + o);
		p += digits;
	}
	out[o] = '\0';
	*end = p + 1;
	return 0;
}

/*
 * Read the value at @p into @v. Decoded strings go to @buf (CFG_LINE_MAX + 1
 * bytes). Sets *@end just past the value.
 */
/*
 * A one-line array of strings, [ "a", 'b', ] (trailing comma allowed), at
 * @p (on its '['). The items go to @buf joined by commas: decoded strings
 * are never longer than their quoted form, so @buf has room.
 */
static int lex_array(const char *p, struct tval *v, char *buf, const char **end, char *why,
		     size_t whylen)
{
	const char *start = p;
	size_t o = 0;
	int ret;

	p = skip_ws(p + 1);
	while (*p != ']') {
		const char *q;

		if (*p == '"') {
			ret = lex_basic_string(p, buf + o, &q, why, whylen);
			if (ret)
				return ret;
			o += strlen(buf + o);
		} else if (*p == '\'') {
			q = strchr(p + 1, '\'');
			if (!q)
				return bad_value(why, whylen, p, strlen(p), "unterminated string");
			memcpy(buf + o, p + 1, (size_t)(q - p - 1));
			o += (size_t)(q - p - 1);
			q++;
		} else {
			return bad_value(why, whylen, start, strlen(start), *p ?
					 "expected an array of quoted strings on one line" :
					 "unterminated array: it must end on the same line");
		}
		if (q - p == 2)
			return bad_value(why, whylen, start, strlen(start),
					 "expected no empty strings in the array");
		p = skip_ws(q);
		if (*p == ',') {
			buf[o++] = ',';
			p = skip_ws(p + 1);
		} else if (*p != ']') {
			return bad_value(why, whylen, start, strlen(start), *p ?
					 "expected ',' or ']' after an array item" :
					 "unterminated array: it must end on the same line");
		}
	}
	buf[o] = '\0';
	v->kind = TV_ARRAY;
	v->text = buf;
	*end = p + 1;
	v->rawlen = (size_t)(*end - start);
	return 0;
}

static int lex_value(const char *p, struct tval *v, char *buf, const char **end, char *why,
		     size_t whylen, bool array_ok)
{
	const char *q;
	int ret;

	memset(v, 0, sizeof(*v));
	v->raw = p;
	if (*p == '"') {
		if (p[1] == '"' && p[2] == '"')
			return bad_value(why, whylen, p, strlen(p),
					 "multi-line strings are not supported");
		ret = lex_basic_string(p, buf, end, why, whylen);
		if (ret)
			return ret;
		v->kind = TV_STRING;
		v->text = buf;
		v->rawlen = (size_t)(*end - p);
		return 0;
	}
	if (*p == '\'') {
		if (p[1] == '\'' && p[2] == '\'')
			return bad_value(why, whylen, p, strlen(p),
					 "multi-line strings are not supported");
		q = strchr(p + 1, '\'');
		if (!q)
			return bad_value(why, whylen, p, strlen(p), "unterminated string");
		memcpy(buf, p + 1, (size_t)(q - p - 1));
		buf[q - p - 1] = '\0';
		v->kind = TV_STRING;
		v->text = buf;
		*end = q + 1;
		v->rawlen = (size_t)(*end - p);
		return 0;
	}
	if (*p == '[' && array_ok)
		return lex_array(p, v, buf, end, why, whylen);
	if (*p == '[')
		return bad_value(why, whylen, p, strlen(p), "arrays are not supported");
	if (*p == '{')
		return bad_value(why, whylen, p, strlen(p), "inline tables are not supported");

	for (q = p; *q && !is_ws(*q) && *q != '#'; q++)
		;
	v->rawlen = (size_t)(q - p);
	*end = q;
	if (v->rawlen == 0)
		return bad_value(why, whylen, p, 0, "missing value");
	if (v->rawlen == 4 && memcmp(p, "true", 4) == 0) {
		v->kind = TV_BOOL;
		v->b = true;
		return 0;
	}
	if (v->rawlen == 5 && memcmp(p, "false", 5) == 0) {
		v->kind = TV_BOOL;
		v->b = false;
		return 0;
	}
	if (lex_int(p, v->rawlen, &v->num) == 0) {
		v->kind = TV_INTEGER;
		return 0;
	}
	return bad_value(why, whylen, p, v->rawlen,
			 "expected a quoted string, a decimal integer or true/false");
}

static int parse_table(struct pgktls_config *cfg, char *section, const char *p, const char *file,
		       unsigned lineno, char *err, size_t errlen)
{
	char q[CFG_QUOTE_BUF];
	const char *line = p, *name;
	size_t namelen, t;

	if (p[1] == '[')
		return perr(err, errlen, file, lineno,
			    "arrays of tables ([[...]]) are not supported, got '%s'",
			    quote(q, sizeof(q), line, strlen(line)));
	p = skip_ws(p + 1);
	name = p;
	while (is_bare_char(*p))
		p++;
	namelen = (size_t)(p - name);
	p = skip_ws(p);
	if (namelen == 0 || *p != ']')
		return perr(err, errlen, file, lineno,
			    "expected a table header [general] or [upstream], got '%s'",
			    quote(q, sizeof(q), line, strlen(line)));
	p = skip_ws(p + 1);
	if (*p && *p != '#')
		return perr(err, errlen, file, lineno,
			    "unexpected text after the table header, got '%s'",
			    quote(q, sizeof(q), p, strlen(p)));
	for (t = 0; t < N_TABLES; t++) {
		if (strlen(cfg_tables[t]) == namelen && memcmp(cfg_tables[t], name, namelen) == 0)
			break;
	}
	if (t == N_TABLES)
		return perr(err, errlen, file, lineno,
			    "unknown table [%s]: expected [general] or [upstream]",
			    quote(q, sizeof(q), name, namelen));
	if (origin_is_set(cfg, N_KEYS + t) && cfg->origins[N_KEYS + t].line &&
	    strcmp(cfg->origins[N_KEYS + t].file, file) == 0)
		return perr(err, errlen, file, lineno,
			    "table [%s] is defined twice (first at line %u)", cfg_tables[t],
			    cfg->origins[N_KEYS + t].line);
	if (origin_set(cfg, N_KEYS + t, file, lineno))
		return -ENOMEM;
	snprintf(section, CFG_SECTION_MAX, "%s", cfg_tables[t]);
	return 0;
}

int config_parse_line(struct pgktls_config *cfg, char *section, const char *line,
		      const char *origin_file, unsigned lineno, char *err, size_t errlen)
{
	char q[CFG_QUOTE_BUF], why[CFG_QUOTE_BUF + 256], dbuf[64];
	char buf[CFG_LINE_MAX + 1];
	const struct cfg_key *k;
	const char *p, *key, *end = NULL;
	const char *file = origin_file ? origin_file : "(config)";
	size_t len = strnlen(line, CFG_LINE_MAX + 1), keylen;
	struct tval v;
	int idx, ret;

	if (len > CFG_LINE_MAX)
		return perr(err, errlen, file, lineno, "line is longer than %d bytes",
			    CFG_LINE_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		/* TOML allows no control characters but tab, even in comments. */
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return perr(err, errlen, file, lineno,
				    "control character 0x%02x in column %zu", c, i + 1);
	}

	p = skip_ws(line);
	if (!*p || *p == '#')
		return 0;
	if (*p == '[')
		return parse_table(cfg, section, p, file, lineno, err, errlen);

	if (*p == '"' || *p == '\'')
		return perr(err, errlen, file, lineno, "quoted keys are not supported, got '%s'",
			    quote(q, sizeof(q), p, strlen(p)));
	key = p;
	while (is_bare_char(*p))
		p++;
	keylen = (size_t)(p - key);
	p = skip_ws(p);
	if (keylen == 0)
		return perr(err, errlen, file, lineno,
			    "expected 'key = value' or a [table], got '%s'",
			    quote(q, sizeof(q), key, strlen(key)));
	if (*p == '.')
		return perr(err, errlen, file, lineno, "dotted keys are not supported, got '%s'",
			    quote(q, sizeof(q), key, strcspn(key, "= \t")));
	if (*p != '=')
		return perr(err, errlen, file, lineno, "expected '=' after the key, got '%s'",
			    quote(q, sizeof(q), key, strlen(key)));
	p = skip_ws(p + 1);

	if (!section[0])
		return perr(err, errlen, file, lineno,
			    "key '%s' comes before any table: put it under [general] or [upstream]",
			    quote(q, sizeof(q), key, keylen));
	idx = find_key(section, key, keylen);
	if (idx < 0) {
		const struct cfg_key *s = suggest_key(section, key, keylen);
		char sq[CFG_QUOTE_BUF];

		quote(q, sizeof(q), key, keylen);
		/* Right key, wrong table: say where it belongs. */
		for (size_t t = 0; t < N_TABLES; t++) {
			if (strcmp(cfg_tables[t], section) != 0 &&
			    find_key(cfg_tables[t], key, keylen) >= 0)
				return perr(err, errlen, file, lineno,
					    "unknown key '%s' in [%s]: it belongs in [%s]", q,
					    section, cfg_tables[t]);
		}
		if (s)
			return perr(err, errlen, file, lineno,
				    "unknown key '%s' in [%s]; did you mean '%s'?", q, section,
				    quote(sq, sizeof(sq), s->name, strlen(s->name)));
		return perr(err, errlen, file, lineno, "unknown key '%s' in [%s]", q, section);
	}
	k = &cfg_keys[idx];
	if (origin_is_set(cfg, (size_t)idx) && cfg->origins[idx].line &&
	    strcmp(cfg->origins[idx].file, file) == 0)
		return perr(err, errlen, file, lineno, "%s: duplicate key (first set at line %u)",
			    key_display(k, dbuf, sizeof(dbuf)), cfg->origins[idx].line);

	ret = lex_value(p, &v, buf, &end, why, sizeof(why), k->type == CFG_CIDRS);
	if (ret)
		return perr(err, errlen, file, lineno, "%s: %s", key_display(k, dbuf, sizeof(dbuf)),
			    why);
	p = skip_ws(end);
	if (*p && *p != '#')
		return perr(err, errlen, file, lineno,
			    "%s: unexpected text after the value, got '%s'",
			    key_display(k, dbuf, sizeof(dbuf)), quote(q, sizeof(q), p, strlen(p)));

	ret = key_set(cfg, k, &v, why, sizeof(why));
	if (ret == -ENOMEM) {
		fmt_err(err, errlen, "%s:%u: out of memory", file, lineno);
		return ret;
	}
	if (ret)
		return perr(err, errlen, file, lineno, "%s: %s", key_display(k, dbuf, sizeof(dbuf)),
			    why);
	ret = origin_set(cfg, (size_t)idx, file, lineno);
	if (ret)
		fmt_err(err, errlen, "%s:%u: out of memory", file, lineno);
	return ret;
}

/* ---- public API ---- */

struct pgktls_config *config_new_defaults(void)
{
	struct pgktls_config *cfg = calloc(1, sizeof(*cfg));
	char why[256];
	struct tval v;
	int ret;

	if (!cfg)
		return NULL;
	cfg->origins = calloc(N_ORIGINS, sizeof(*cfg->origins));
	if (!cfg->origins)
		goto err;
	cfg->n_origins = N_ORIGINS;
	for (size_t i = 0; i < N_KEYS; i++) {
		if (!cfg_keys[i].def)
			continue;
		tval_from_text(&cfg_keys[i], cfg_keys[i].def, &v);
		ret = key_set(cfg, &cfg_keys[i], &v, why, sizeof(why));
		/* A default that the key's own type rejects is a bug in the table. */
		PGKTLS_BUG_ON(ret == -EINVAL);
		if (ret)
			goto err;
	}
	return cfg;
err:
	config_free(cfg);
	return NULL;
}

int config_load_file(struct pgktls_config *cfg, const char *path, char *err, size_t errlen)
{
	char section[CFG_SECTION_MAX] = "";
	char line[CFG_LINE_MAX + 2], ebuf[128];
	unsigned lineno = 1;
	size_t len = 0;
	bool dropped = false;
	struct stat st;
	char *copy;
	FILE *f;
	int c, ret = 0;

	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		fmt_err(err, errlen, "%s: cannot open: %s", path,
			errtext(-ret, ebuf, sizeof(ebuf)));
		return ret;
	}
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fmt_err(err, errlen, "%s: cannot read: is a directory", path);
		ret = -EISDIR;
		goto out;
	}
	for (;;) {
		c = getc(f);
		if (c == EOF && len == 0)
			break;
		if (c == EOF || c == '\n') {
			/* CRLF files are valid TOML. */
			if (!dropped && len && line[len - 1] == '\r')
				len--;
			line[len] = '\0';
			/* A UTF-8 byte-order mark is noise some editors add. */
			if (lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0)
				memmove(line, line + 3, len - 2);
			ret = config_parse_line(cfg, section, line, path, lineno, err, errlen);
			if (ret)
				goto out;
			if (c == EOF)
				break;
			len = 0;
			dropped = false;
			lineno++;
			continue;
		}
		if (c == '\0') {
			ret = perr(err, errlen, path, lineno, "NUL byte in line");
			goto out;
		}
		/* Keep one byte past the limit so config_parse_line() sees it is too long. */
		if (len <= CFG_LINE_MAX)
			line[len++] = (char)c;
		else
			dropped = true;
	}
	if (ferror(f)) {
		fmt_err(err, errlen, "%s: read error", path);
		ret = -EIO;
		goto out;
	}
	copy = strdup(path);
	if (!copy) {
		fmt_err(err, errlen, "%s: out of memory", path);
		ret = -ENOMEM;
		goto out;
	}
	free(cfg->path);
	cfg->path = copy;
out:
	fclose(f);
	return ret;
}

int config_set(struct pgktls_config *cfg, const char *key, const char *value, const char *origin,
	       char *err, size_t errlen)
{
	char q[CFG_QUOTE_BUF], why[CFG_QUOTE_BUF + 256], dbuf[64];
	const struct cfg_key *k;
	struct tval v;
	int idx, ret;

	idx = find_key_dotted(key);
	if (idx < 0) {
		const struct cfg_key *s = suggest_key(NULL, key, strlen(key));

		quote(q, sizeof(q), key, strlen(key));
		if (s)
			fmt_err(err, errlen, "%s: unknown key '%s'; did you mean '%s'?", origin, q,
				key_display(s, dbuf, sizeof(dbuf)));
		else
			fmt_err(err, errlen, "%s: unknown key '%s'", origin, q);
		return -EINVAL;
	}
	k = &cfg_keys[idx];
	tval_from_text(k, value, &v);
	ret = key_set(cfg, k, &v, why, sizeof(why));
	if (ret == -ENOMEM) {
		fmt_err(err, errlen, "%s: out of memory", origin);
		return ret;
	}
	if (ret) {
		fmt_err(err, errlen, "%s: %s: %s", origin, key_display(k, dbuf, sizeof(dbuf)), why);
		return ret;
	}
	ret = origin_set(cfg, (size_t)idx, origin, 0);
	if (ret)
		fmt_err(err, errlen, "%s: out of memory", origin);
	return ret;
}

const char *config_where(const struct pgktls_config *cfg, const char *key, char *buf, size_t len)
{
	int idx = find_key_dotted(key);
	const struct cfg_origin *o;
	char dbuf[64];

	if (!buf || !len)
		return buf;
	if (idx < 0) {
		snprintf(buf, len, "%s", key);
		return buf;
	}
	key = key_display(&cfg_keys[idx], dbuf, sizeof(dbuf));
	if (!origin_is_set(cfg, (size_t)idx)) {
		snprintf(buf, len, "default: %s", key);
		return buf;
	}
	o = &cfg->origins[idx];
	if (o->line)
		snprintf(buf, len, "%s:%u: %s", o->file, o->line, key);
	else
		snprintf(buf, len, "%s: %s", o->file, key);
	return buf;
}

/* ---- validation ---- */

/* The file must open for reading and not be a directory (unless @dir_ok). */
static int check_readable(const struct pgktls_config *cfg, const char *key, const char *path,
			  bool dir_ok, char *err, size_t errlen)
{
	char where[PATH_MAX + 64], ebuf[128];
	struct stat st;
	int fd, e;

	/* O_NONBLOCK: a FIFO named by mistake must not hang startup. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		e = errno;
		fmt_err(err, errlen, "%s: cannot read '%s': %s",
			config_where(cfg, key, where, sizeof(where)), path,
			errtext(e, ebuf, sizeof(ebuf)));
		return -EINVAL;
	}
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && !dir_ok) {
		close(fd);
		fmt_err(err, errlen, "%s: cannot read '%s': Is a directory",
			config_where(cfg, key, where, sizeof(where)), path);
		return -EINVAL;
	}
	close(fd);
	return 0;
}

/* "/a/b/c" -> "/a/b", "c" -> ".", "/c" -> "/". */
static void parent_dir(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(buf, len, ".");
	else if (slash == path)
		snprintf(buf, len, "/");
	else
		snprintf(buf, len, "%.*s", (int)(slash - path), path);
}

/*
 * A unix socket path: if it exists it must be a socket (or, for the
 * upstream, a directory holding .s.PGSQL.<port>); if not, its directory
 * must exist, since PostgreSQL (or our stats server) creates the socket.
 */
static int check_socket_path(const struct pgktls_config *cfg, const char *key, const char *path,
			     bool dir_ok, char *err, size_t errlen)
{
	char where[PATH_MAX + 64], dir[PATH_MAX], ebuf[128];
	struct stat st;
	int e;

	if (stat(path, &st) == 0) {
		if (S_ISSOCK(st.st_mode) || (dir_ok && S_ISDIR(st.st_mode)))
			return 0;
		fmt_err(err, errlen, "%s: '%s' exists and is not a %s",
			config_where(cfg, key, where, sizeof(where)), path,
			dir_ok ? "socket or a directory" : "socket");
		return -EINVAL;
	}
	e = errno;
	if (e == ENOENT) {
		parent_dir(path, dir, sizeof(dir));
		if (stat(dir, &st) == -1)
			e = errno;
		else if (!S_ISDIR(st.st_mode))
			e = ENOTDIR;
		else
			return 0;
		fmt_err(err, errlen, "%s: cannot use '%s': directory '%s': %s",
			config_where(cfg, key, where, sizeof(where)), path, dir,
			errtext(e, ebuf, sizeof(ebuf)));
		return -EINVAL;
	}
	fmt_err(err, errlen, "%s: cannot use '%s': %s",
		config_where(cfg, key, where, sizeof(where)), path,
		errtext(e, ebuf, sizeof(ebuf)));
	return -EINVAL;
}

/* Both halves of a certificate/key pair, or neither. */
static int check_pair(const struct pgktls_config *cfg, const char *cert_key, const char *cert,
		      const char *pkey_key, const char *pkey, char *err, size_t errlen)
{
	char where[PATH_MAX + 64];

	if (cert && !pkey) {
		fmt_err(err, errlen, "%s: set without %s",
			config_where(cfg, cert_key, where, sizeof(where)), pkey_key);
		return -EINVAL;
	}
	if (pkey && !cert) {
		fmt_err(err, errlen, "%s: set without %s",
			config_where(cfg, pkey_key, where, sizeof(where)), cert_key);
		return -EINVAL;
	}
	return 0;
}

static int check_versions(const struct pgktls_config *cfg, const char *min_key, int min,
			  const char *max_key, int max, char *err, size_t errlen)
{
	char where[PATH_MAX + 64];

	if (max && min > max) {
		fmt_err(err, errlen, "%s: %s is below %s %s",
			config_where(cfg, max_key, where, sizeof(where)),
			config_tls_version_name(max), min_key, config_tls_version_name(min));
		return -EINVAL;
	}
	return 0;
}

/* Whether @key was set (file or command line), not left at its default. */
static bool key_is_set(const struct pgktls_config *cfg, const char *key)
{
	int idx = find_key_dotted(key);

	return idx >= 0 && origin_is_set(cfg, (size_t)idx);
}

/* @key only means something with @needed set: say so rather than ignore it. */
static int check_needs(const struct pgktls_config *cfg, const char *key, bool set, bool have,
		       const char *needed, char *err, size_t errlen)
{
	char where[PATH_MAX + 64];

	if (!set || have)
		return 0;
	fmt_err(err, errlen, "%s: needs %s", config_where(cfg, key, where, sizeof(where)), needed);
	return -EINVAL;
}

/* Client certificates, revocation lists and passphrase commands: each needs its partner. */
static int check_client_certs(const struct pgktls_config *cfg, char *err, size_t errlen)
{
	bool verify = cfg->tls_verify == CFG_VERIFY_CA || cfg->tls_verify == CFG_VERIFY_FULL;
	int ret;

	ret = check_needs(cfg, "tls_client_certificate", key_is_set(cfg, "tls_client_certificate"),
			  cfg->tls_client_ca_certificate,
			  "tls_client_ca_certificate (the CA that client certificates are checked "
			  "against)", err, errlen);
	if (!ret)
		ret = check_needs(cfg, "tls_client_crl", cfg->tls_client_crl,
				  cfg->tls_client_ca_certificate,
				  "tls_client_ca_certificate: without it no client certificate is "
				  "checked, so none can be found revoked", err, errlen);
	if (!ret)
		ret = check_needs(cfg, "tls_server_crl", cfg->tls_server_crl, verify,
				  "tls_verify = \"verify_ca\" or \"verify_full\": otherwise "
				  "PostgreSQL's certificate is not checked", err, errlen);
	if (!ret)
		ret = check_needs(cfg, "tls_private_key_passphrase_command",
				  cfg->tls_private_key_passphrase_command, cfg->tls_private_key,
				  "tls_private_key (the key it unlocks)", err, errlen);
	if (!ret)
		ret = check_needs(cfg, "tls_server_private_key_passphrase_command",
				  cfg->tls_server_private_key_passphrase_command,
				  cfg->tls_server_private_key || cfg->tls_server_identity_map,
				  "tls_server_private_key or tls_server_identity_map (the keys it "
				  "unlocks)", err, errlen);
	/* Only a verified client certificate picks an identity: it needs the CA to verify. */
	if (!ret)
		ret = check_needs(cfg, "tls_server_identity_map", cfg->tls_server_identity_map,
				  cfg->tls_client_ca_certificate,
				  "tls_client_ca_certificate: an identity is chosen by the client's "
				  "verified certificate", err, errlen);
	if (!ret)
		ret = check_needs(cfg, "tls_server_identity_map", cfg->tls_server_identity_map,
				  cfg->tls_verify != CFG_VERIFY_DISABLE &&
					  !cfg->upstream_unix_socket,
				  "TLS towards PostgreSQL (upstream.host and tls_verify other than "
				  "\"disable\"): identities are presented in the upstream handshake",
				  err, errlen);
	return ret;
}

int config_validate(const struct pgktls_config *cfg, char *err, size_t errlen)
{
	char where[PATH_MAX + 64], dbuf[64];
	int ret;

	ret = check_pair(cfg, "tls_certificate", cfg->tls_certificate, "tls_private_key",
			 cfg->tls_private_key, err, errlen);
	if (ret)
		return ret;
	ret = check_pair(cfg, "tls_server_certificate", cfg->tls_server_certificate,
			 "tls_server_private_key", cfg->tls_server_private_key, err, errlen);
	if (ret)
		return ret;

	for (size_t i = 0; i < N_KEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		const char *path;

		if (k->type != CFG_PATH && k->type != CFG_SOCKET)
			continue;
		path = *(char *const *)(const void *)((const char *)cfg + k->offset);
		if (!path)
			continue;
		if (k->type == CFG_SOCKET)
			ret = check_socket_path(cfg, key_display(k, dbuf, sizeof(dbuf)), path,
						k->offset == OFF(upstream_unix_socket), err,
						errlen);
		else if (k->flags & CFG_F_SYSTEM && strcmp(path, "system") == 0)
			continue;
		else
			ret = check_readable(cfg, k->name, path, k->flags & CFG_F_DIR_OK, err,
					     errlen);
		if (ret)
			return ret;
	}

	if (cfg->tls_generate_self_signed && cfg->tls_certificate) {
		fmt_err(err, errlen, "%s: set together with tls_certificate: use one or the other",
			config_where(cfg, "tls_generate_self_signed", where, sizeof(where)));
		return -EINVAL;
	}
	if (cfg->tls_client_required && !cfg->tls_certificate && !cfg->tls_generate_self_signed) {
		fmt_err(err, errlen, "%s: needs tls_certificate and tls_private_key: "
			"clients cannot use TLS without them",
			config_where(cfg, "tls_client_required", where, sizeof(where)));
		return -EINVAL;
	}
	if (cfg->tls_client_ca_certificate && !cfg->tls_certificate &&
	    !cfg->tls_generate_self_signed) {
		fmt_err(err, errlen, "%s: needs tls_certificate and tls_private_key: "
			"clients cannot use TLS without them",
			config_where(cfg, "tls_client_ca_certificate", where, sizeof(where)));
		return -EINVAL;
	}
	if (cfg->proxy_protocol && !cfg->n_proxy_protocol_trusted) {
		fmt_err(err, errlen, "%s: needs proxy_protocol_trusted, the networks of the load "
			"balancers allowed to send the header (e.g. [\"10.0.0.0/8\"])",
			config_where(cfg, "proxy_protocol", where, sizeof(where)));
		return -EINVAL;
	}
	ret = check_client_certs(cfg, err, errlen);
	if (ret)
		return ret;
	ret = check_versions(cfg, "tls_min_version", cfg->tls_min_version, "tls_max_version",
			     cfg->tls_max_version, err, errlen);
	if (ret)
		return ret;
	ret = check_versions(cfg, "tls_server_min_version", cfg->tls_server_min_version,
			     "tls_server_max_version", cfg->tls_server_max_version, err, errlen);
	if (ret)
		return ret;

	if ((cfg->tls_verify == CFG_VERIFY_CA || cfg->tls_verify == CFG_VERIFY_FULL) &&
	    !cfg->tls_server_ca_certificate) {
		fmt_err(err, errlen, "%s: %s needs tls_server_ca_certificate "
			"(a CA file, or \"system\" for the OS trust store)",
			config_where(cfg, "tls_verify", where, sizeof(where)),
			config_verify_name(cfg->tls_verify));
		return -EINVAL;
	}
	if (!cfg->upstream_host && !cfg->upstream_unix_socket) {
		fmt_err(err, errlen, "%s: no upstream: set upstream.host or upstream.unix_socket",
			config_where(cfg, "upstream.host", where, sizeof(where)));
		return -EINVAL;
	}
	if (cfg->upstream_unix_socket &&
	    (cfg->tls_verify == CFG_VERIFY_CA || cfg->tls_verify == CFG_VERIFY_FULL)) {
		fmt_err(err, errlen, "%s: PostgreSQL offers no TLS over unix sockets, so "
			"tls_verify = \"%s\" cannot work: use upstream.host, or tls_verify "
			"\"prefer\" or \"disable\"",
			config_where(cfg, "upstream.unix_socket", where, sizeof(where)),
			config_verify_name(cfg->tls_verify));
		return -EINVAL;
	}
	return 0;
}

void config_free(struct pgktls_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];

		switch (k->type) {
		case CFG_STR:
		case CFG_PATH:
		case CFG_SOCKET:
		case CFG_WORD:
			free(*(char **)(void *)((char *)cfg + k->offset));
			break;
		default:
			break;
		}
	}
	free_listen(cfg);
	free(cfg->proxy_protocol_trusted);
	for (size_t i = 0; cfg->origins && i < cfg->n_origins; i++)
		free(cfg->origins[i].file);
	free(cfg->origins);
	free(cfg->path);
	free(cfg);
}

/* "general.port" style names, built once from the table. */
static const char *key_names[N_KEYS + 1];
static char key_names_buf[N_KEYS][64];
static pthread_once_t key_names_once = PTHREAD_ONCE_INIT;

static void key_names_init(void)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		snprintf(key_names_buf[i], sizeof(key_names_buf[i]), "%s.%s", cfg_keys[i].section,
			 cfg_keys[i].name);
		key_names[i] = key_names_buf[i];
	}
	key_names[N_KEYS] = NULL;
}

const char *const *config_key_names(void)
{
	pthread_once(&key_names_once, key_names_init);
	return key_names;
}

const char *config_verify_name(enum cfg_tls_verify v)
{
	for (const struct cfg_word *w = verify_words; w->word; w++) {
		if (!w->alias && w->value == (int)v)
			return w->word;
	}
	return "unknown";
}

const char *config_client_cert_name(enum cfg_client_cert c)
{
	for (const struct cfg_word *w = client_cert_words; w->word; w++) {
		if (w->value == (int)c)
			return w->word;
	}
	return "unknown";
}

const char *config_ktls_name(enum cfg_ktls k)
{
	for (const struct cfg_word *w = ktls_words; w->word; w++) {
		if (w->value == (int)k)
			return w->word;
	}
	return "unknown";
}

const char *config_tls_version_name(int v)
{
	switch (v) {
	case 0:
		return "any";
	case CFG_TLS_V12:
		return "TLSv1.2";
	case CFG_TLS_V13:
		return "TLSv1.3";
	default:
		return "unknown";
	}
}
