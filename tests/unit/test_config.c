// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_config.c - pgktls.toml parsing, command-line overrides, validation,
 * error messages (exact text and line numbers), fixtures and the example.
 */
#include "config.h"

#include "testlib.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgktls/config.h"
#include "pgktls/sock.h"

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

/* The longest line config.c accepts (its CFG_LINE_MAX). */
#define CFG_TEST_LINE 4096

/* ---- helpers ---- */

static const char *srcdir(void)
{
	const char *s = getenv("PGKTLS_SRCDIR");

	return s && *s ? s : TOP_SRCDIR;
}

/* Feed @text line by line, as from a file named "t.toml". */
static int parse_text(struct pgktls_config *cfg, const char *text, char *err, size_t errlen)
{
	char section[32] = "", line[8192];
	unsigned lineno = 0;
	const char *p = text;
	int ret;

	err[0] = '\0';
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);

		ck_assert_uint_lt(n, sizeof(line));
		memcpy(line, p, n);
		line[n] = '\0';
		ret = config_parse_line(cfg, section, line, "t.toml", ++lineno, err, errlen);
		if (ret)
			return ret;
		p += n + (nl ? 1 : 0);
	}
	return 0;
}

static struct pgktls_config *must_parse(const char *text)
{
	struct pgktls_config *cfg = config_new_defaults();
	char err[512];

	ck_assert_ptr_nonnull(cfg);
	ck_assert_msg(parse_text(cfg, text, err, sizeof(err)) == 0, "parse failed: %s", err);
	return cfg;
}

/* Assert that @text fails to parse with exactly @expected. */
static void expect_parse_error(const char *text, const char *expected)
{
	struct pgktls_config *cfg = config_new_defaults();
	char err[512];
	int ret;

	ck_assert_ptr_nonnull(cfg);
	ret = parse_text(cfg, text, err, sizeof(err));
	ck_assert_msg(ret == -EINVAL, "'%s': expected -EINVAL, got %d", text, ret);
	ck_assert_str_eq(err, expected);
	config_free(cfg);
}

static void write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs(content, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

/* A file under this process's temp dir; created with @content if non-NULL. */
static const char *tmpfile_path(const char *name, const char *content, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", testlib_tmpdir(), name);
	if (content)
		write_file(buf, content);
	return buf;
}

/* ---- defaults ---- */

START_TEST(test_defaults)
{
	struct pgktls_config *cfg = config_new_defaults();
	char where[128], err[256];

	ck_assert_ptr_nonnull(cfg);
	ck_assert_ptr_null(cfg->path);
	ck_assert_uint_eq(cfg->n_listen, 1);
	ck_assert_str_eq(cfg->listen[0].host, "0.0.0.0");
	ck_assert_uint_eq(cfg->port, 6432);
	ck_assert_uint_eq(cfg->workers, 0);
	ck_assert_str_eq(cfg->log_level, "info");
	ck_assert_ptr_null(cfg->tls_certificate);
	ck_assert_ptr_null(cfg->tls_private_key);
	ck_assert(!cfg->tls_client_required);
	ck_assert_ptr_null(cfg->tls_client_ca_certificate);
	ck_assert_int_eq(cfg->tls_client_certificate, CFG_CLIENT_CERT_REQUIRED);
	ck_assert_ptr_null(cfg->tls_client_crl);
	ck_assert_ptr_null(cfg->tls_private_key_passphrase_command);
	ck_assert_ptr_null(cfg->tls_server_private_key_passphrase_command);
	ck_assert_ptr_null(cfg->tls_server_crl);
	ck_assert_ptr_null(cfg->tls_server_identity_map);
	ck_assert_int_eq(cfg->tls_min_version, CFG_TLS_V12);
	ck_assert_int_eq(cfg->tls_max_version, 0);
	ck_assert_ptr_null(cfg->tls_ciphers);
	ck_assert_ptr_null(cfg->tls_ciphersuites);
	ck_assert_str_eq(cfg->tls_groups, "X25519:P-256");
	ck_assert_int_eq(cfg->tls_verify, CFG_VERIFY_PREFER);
	ck_assert_ptr_null(cfg->tls_server_ca_certificate);
	ck_assert_ptr_null(cfg->tls_server_certificate);
	ck_assert_ptr_null(cfg->tls_server_private_key);
	ck_assert_int_eq(cfg->tls_server_min_version, CFG_TLS_V12);
	ck_assert_int_eq(cfg->tls_server_max_version, 0);
	ck_assert_ptr_null(cfg->tls_server_ciphers);
	ck_assert_ptr_null(cfg->tls_server_ciphersuites);
	ck_assert_str_eq(cfg->tls_server_groups, "P-256:X25519");
	ck_assert_ptr_null(cfg->tls_server_name);
	ck_assert_uint_eq(cfg->startup_timeout, 10000);
	ck_assert_uint_eq(cfg->connect_timeout, 5000);
	ck_assert_int_eq(cfg->ktls, CFG_KTLS_AUTO);
	ck_assert_int_eq(cfg->ktls_client, CFG_KTLS_AUTO);
	ck_assert_int_eq(cfg->ktls_server, CFG_KTLS_AUTO);
	ck_assert_ptr_null(cfg->stats_socket);
	ck_assert_ptr_null(cfg->metrics_listen);
	ck_assert_str_eq(cfg->upstream_host, "127.0.0.1");
	ck_assert_uint_eq(cfg->upstream_port, 5432);
	ck_assert_ptr_null(cfg->upstream_unix_socket);

	ck_assert_str_eq(config_where(cfg, "tls_private_key", where, sizeof(where)),
			 "default: tls_private_key");
	ck_assert_str_eq(config_where(cfg, "upstream.host", where, sizeof(where)),
			 "default: upstream.host");
	ck_assert_int_eq(config_validate(cfg, err, sizeof(err)), 0);
	config_free(cfg);
	config_free(NULL);
}
END_TEST

/* ---- every key ---- */

static const char all_keys_text[] =
	"# every key, none at its default\n"
	"[general]\n"
	"host = \"127.0.0.1, ::1 ,[::2]\"\n"
	"port = 7000\n"
	"workers = 256\n"
	"log_level = \"debug\"\n"
	"tls_certificate = \"/c.pem\"\n"
	"tls_private_key = '/c.key'\n"
	"tls_generate_self_signed = true\n"
	"tls_client_required = true\n"
	"tls_client_ca_certificate = \"/ca.pem\"\n"
	"tls_min_version = \"1.3\"\n"
	"tls_max_version = \"TLSv1.3\"\n"
	"tls_ciphers = \"ECDHE-ECDSA-AES128-GCM-SHA256\"\n"
	"tls_ciphersuites = \"TLS_AES_128_GCM_SHA256\"\n"
	"tls_groups = \"P-384\"\n"
	"tls_verify = \"verify-full\"\n"
	"tls_server_ca_certificate = \"system\"\n"
	"tls_server_certificate = \"/sc.pem\"\n"
	"tls_server_private_key = \"/sc.key\"\n"
	"tls_server_min_version = \"TLSv1.3\"\n"
	"tls_server_max_version = \"1.3\"\n"
	"tls_server_ciphers = \"AES256-GCM-SHA384\"\n"
	"tls_server_ciphersuites = \"TLS_CHACHA20_POLY1305_SHA256\"\n"
	"tls_server_groups = \"X448\"\n"
	"tls_server_name = \"db.example.com\"\n"
	"startup_timeout = 1_000\n"
	"connect_timeout = 3600000\n"
	"ktls = \"required\"\n"
	"ktls_client = \"off\"\n"
	"ktls_server = \"auto\"\n"
	"openssl_records = true\n"
	"stats_socket = \"/run/s.sock\"\n"
	"metrics_listen = \"[::1]:9939\"\n"
	"shutdown_timeout = 0\n"
	"watch_certificates = true\n"
	"user = \"pgktls\"\n"
	"group = \"ssl-cert\"\n"
	"pid_file = \"/run/pgktls.pid\"\n"
	"upgrade_binary = \"/usr/sbin/pgktls\"\n"
	"tls_client_certificate = \"optional\"\n"
	"tls_client_crl = \"/crl.pem\"\n"
	"tls_server_crl = \"/crl.d\"\n"
	"tls_server_identity_map = \"/etc/pgktls/identities.conf\"\n"
	"tls_private_key_passphrase_command = \"echo %p\"\n"
	"tls_server_private_key_passphrase_command = \"cat /s\"\n"
	"proxy_protocol = true\n"
	"proxy_protocol_trusted = [ \"10.0.0.0/8\", '127.0.0.1' , \"::1/128\", ]\n"
	"\n"
	"[upstream]\n"
	"host = \"db.example.com\"\n"
	"port = 5433\n"
	"unix_socket = \"/var/run/postgresql\"\n";

START_TEST(test_every_key_parses)
{
	struct pgktls_config *cfg = must_parse(all_keys_text);
	const char *const *names;
	char where[128];
	size_t n = 0;

	ck_assert_uint_eq(cfg->n_listen, 3);
	ck_assert_str_eq(cfg->listen[0].host, "127.0.0.1");
	ck_assert_str_eq(cfg->listen[1].host, "::1");
	ck_assert_str_eq(cfg->listen[2].host, "::2");
	ck_assert_uint_eq(cfg->port, 7000);
	ck_assert_uint_eq(cfg->workers, 256);
	ck_assert_str_eq(cfg->log_level, "debug");
	ck_assert_str_eq(cfg->tls_certificate, "/c.pem");
	ck_assert_str_eq(cfg->tls_private_key, "/c.key");
	ck_assert(cfg->tls_generate_self_signed);
	ck_assert(cfg->tls_client_required);
	ck_assert_str_eq(cfg->tls_client_ca_certificate, "/ca.pem");
	ck_assert_int_eq(cfg->tls_min_version, CFG_TLS_V13);
	ck_assert_int_eq(cfg->tls_max_version, CFG_TLS_V13);
	ck_assert_str_eq(cfg->tls_ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
	ck_assert_str_eq(cfg->tls_ciphersuites, "TLS_AES_128_GCM_SHA256");
	ck_assert_str_eq(cfg->tls_groups, "P-384");
	ck_assert_int_eq(cfg->tls_verify, CFG_VERIFY_FULL);
	ck_assert_str_eq(cfg->tls_server_ca_certificate, "system");
	ck_assert_str_eq(cfg->tls_server_certificate, "/sc.pem");
	ck_assert_str_eq(cfg->tls_server_private_key, "/sc.key");
	ck_assert_int_eq(cfg->tls_server_min_version, CFG_TLS_V13);
	ck_assert_int_eq(cfg->tls_server_max_version, CFG_TLS_V13);
	ck_assert_str_eq(cfg->tls_server_ciphers, "AES256-GCM-SHA384");
	ck_assert_str_eq(cfg->tls_server_ciphersuites, "TLS_CHACHA20_POLY1305_SHA256");
	ck_assert_str_eq(cfg->tls_server_groups, "X448");
	ck_assert_str_eq(cfg->tls_server_name, "db.example.com");
	ck_assert_uint_eq(cfg->startup_timeout, 1000);
	ck_assert_uint_eq(cfg->connect_timeout, 3600000);
	ck_assert_int_eq(cfg->ktls, CFG_KTLS_REQUIRED);
	ck_assert_int_eq(cfg->ktls_client, CFG_KTLS_OFF);
	ck_assert_int_eq(cfg->ktls_server, CFG_KTLS_AUTO);
	ck_assert(cfg->openssl_records);
	ck_assert_str_eq(cfg->stats_socket, "/run/s.sock");
	ck_assert_str_eq(cfg->metrics_listen, "[::1]:9939");
	ck_assert_uint_eq(cfg->shutdown_timeout, 0);
	ck_assert(cfg->watch_certificates);
	ck_assert_str_eq(cfg->user, "pgktls");
	ck_assert_str_eq(cfg->group, "ssl-cert");
	ck_assert_str_eq(cfg->pid_file, "/run/pgktls.pid");
	ck_assert_str_eq(cfg->upgrade_binary, "/usr/sbin/pgktls");
	ck_assert_int_eq(cfg->tls_client_certificate, CFG_CLIENT_CERT_OPTIONAL);
	ck_assert_str_eq(cfg->tls_client_crl, "/crl.pem");
	ck_assert_str_eq(cfg->tls_server_crl, "/crl.d");
	ck_assert_str_eq(cfg->tls_server_identity_map, "/etc/pgktls/identities.conf");
	ck_assert_str_eq(cfg->tls_private_key_passphrase_command, "echo %p");
	ck_assert_str_eq(cfg->tls_server_private_key_passphrase_command, "cat /s");
	ck_assert(cfg->proxy_protocol);
	ck_assert_uint_eq(cfg->n_proxy_protocol_trusted, 3);
	ck_assert_int_eq(cfg->proxy_protocol_trusted[0].family, AF_INET);
	ck_assert_uint_eq(cfg->proxy_protocol_trusted[0].prefix, 8);
	ck_assert_uint_eq(cfg->proxy_protocol_trusted[1].prefix, 32);
	ck_assert_int_eq(cfg->proxy_protocol_trusted[2].family, AF_INET6);
	ck_assert_uint_eq(cfg->proxy_protocol_trusted[2].prefix, 128);
	ck_assert_str_eq(cfg->upstream_host, "db.example.com");
	ck_assert_uint_eq(cfg->upstream_port, 5433);
	ck_assert_str_eq(cfg->upstream_unix_socket, "/var/run/postgresql");

	/* The text above must set every key in the table: a new key needs a line here. */
	for (names = config_key_names(); *names; names++, n++) {
		config_where(cfg, *names, where, sizeof(where));
		ck_assert_msg(strncmp(where, "t.toml:", 7) == 0, "key %s not covered: %s", *names,
			      where);
	}
	ck_assert_uint_eq(n, 49);
	ck_assert_str_eq(config_where(cfg, "tls_private_key", where, sizeof(where)),
			 "t.toml:8: tls_private_key");
	ck_assert_str_eq(config_where(cfg, "general.port", where, sizeof(where)),
			 "t.toml:4: port");
	ck_assert_str_eq(config_where(cfg, "upstream.port", where, sizeof(where)),
			 "t.toml:52: upstream.port");
	config_free(cfg);
}
END_TEST

START_TEST(test_value_aliases)
{
	static const struct {
		const char *line;
		enum cfg_tls_verify verify;
	} verify[] = {
		{ "tls_verify = \"disable\"", CFG_VERIFY_DISABLE },
		{ "tls_verify = \"disabled\"", CFG_VERIFY_DISABLE },
		{ "tls_verify = \"prefer\"", CFG_VERIFY_PREFER },
		{ "tls_verify = \"verify_ca\"", CFG_VERIFY_CA },
		{ "tls_verify = 'verify-ca'", CFG_VERIFY_CA },
		{ "tls_verify = \"verify_full\"", CFG_VERIFY_FULL },
		{ "tls_verify = \"verify-full\"", CFG_VERIFY_FULL },
	};
	struct pgktls_config *cfg;
	char text[128];

	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(verify); i++) {
		snprintf(text, sizeof(text), "[general]\n%s\n", verify[i].line);
		cfg = must_parse(text);
		ck_assert_int_eq(cfg->tls_verify, verify[i].verify);
		config_free(cfg);
	}
	cfg = must_parse("[general]\nlog_level = \"warning\"\ntls_min_version = \"tlsv1.3\"\n"
			 "tls_max_version = \"\"\nhost = \"*\"\ntls_certificate = \"\"\n");
	ck_assert_str_eq(cfg->log_level, "warn");
	ck_assert_int_eq(cfg->tls_min_version, CFG_TLS_V13);
	ck_assert_int_eq(cfg->tls_max_version, 0);
	ck_assert_uint_eq(cfg->n_listen, 1);
	ck_assert_str_eq(cfg->listen[0].host, "*");
	ck_assert_ptr_null(cfg->tls_certificate);
	config_free(cfg);

	/* Integer edge values and TOML's underscores. */
	cfg = must_parse("[general]\nport = 1\nworkers = 0\nstartup_timeout = +100\n"
			 "connect_timeout = 3_600_000\n[upstream]\nport = 65535\n");
	ck_assert_uint_eq(cfg->port, 1);
	ck_assert_uint_eq(cfg->workers, 0);
	ck_assert_uint_eq(cfg->startup_timeout, 100);
	ck_assert_uint_eq(cfg->connect_timeout, 3600000);
	ck_assert_uint_eq(cfg->upstream_port, 65535);
	config_free(cfg);
}
END_TEST

/* ---- exact error messages ---- */

static const struct {
	const char *text;
	const char *err;
} bad[] = {
	/* execve() without PATH: a relative upgrade_binary would depend on the cwd */
	{ "[general]\nupgrade_binary = \"sbin/pgktls\"",
	  "t.toml:2: upgrade_binary: expected an absolute path, got 'sbin/pgktls'" },
	/* TLS versions */
	{ "[general]\ntls_min_version = \"TLSv1\"",
	  "t.toml:2: tls_min_version: expected TLSv1.2 or TLSv1.3, got 'TLSv1' (TLS 1.2 is the "
	  "minimum: older versions are insecure)" },
	{ "[general]\n\ntls_min_version = \"1.1\"",
	  "t.toml:3: tls_min_version: expected TLSv1.2 or TLSv1.3, got '1.1' (TLS 1.2 is the "
	  "minimum: older versions are insecure)" },
	{ "[general]\ntls_min_version = \"TLSv2\"",
	  "t.toml:2: tls_min_version: expected TLSv1.2 or TLSv1.3, got 'TLSv2'" },
	{ "[general]\ntls_min_version = \"\"",
	  "t.toml:2: tls_min_version: expected TLSv1.2 or TLSv1.3, got ''" },
	{ "[general]\ntls_max_version = \"x\"",
	  "t.toml:2: tls_max_version: expected TLSv1.2, TLSv1.3 or \"\" for no limit, got 'x'" },
	{ "[general]\ntls_server_min_version = \"SSLv3\"",
	  "t.toml:2: tls_server_min_version: expected TLSv1.2 or TLSv1.3, got 'SSLv3' (TLS 1.2 "
	  "is the minimum: older versions are insecure)" },
	{ "[general]\ntls_min_version = 1.2",
	  "t.toml:2: tls_min_version: expected a quoted string, a decimal integer or true/false, "
	  "got '1.2'" },
	/* unknown keys and tables */
	{ "[general]\n\n\ntls_cert = \"a\"",
	  "t.toml:4: unknown key 'tls_cert' in [general]; did you mean 'tls_certificate'?" },
	{ "[general]\ntls_verfy = \"prefer\"",
	  "t.toml:2: unknown key 'tls_verfy' in [general]; did you mean 'tls_verify'?" },
	{ "[general]\nprot = 1",
	  "t.toml:2: unknown key 'prot' in [general]; did you mean 'port'?" },
	{ "[general]\ndefault_pool_size = 10",
	  "t.toml:2: unknown key 'default_pool_size' in [general]" },
	{ "[upstream]\ntls_verify = \"prefer\"",
	  "t.toml:2: unknown key 'tls_verify' in [upstream]: it belongs in [general]" },
	{ "[general]\nunix_socket = \"/tmp\"",
	  "t.toml:2: unknown key 'unix_socket' in [general]: it belongs in [upstream]" },
	{ "[databases]", "t.toml:1: unknown table [databases]: expected [general] or [upstream]" },
	{ "[[databases]]",
	  "t.toml:1: arrays of tables ([[...]]) are not supported, got '[[databases]]'" },
	{ "[general.tls]",
	  "t.toml:1: expected a table header [general] or [upstream], got '[general.tls]'" },
	{ "[\"general\"]",
	  "t.toml:1: expected a table header [general] or [upstream], got '[\"general\"]'" },
	{ "[general] x", "t.toml:1: unexpected text after the table header, got 'x'" },
	{ "[general]\n[upstream]\n[general]",
	  "t.toml:3: table [general] is defined twice (first at line 1)" },
	{ "port = 6432",
	  "t.toml:1: key 'port' comes before any table: put it under [general] or [upstream]" },
	/* keys */
	{ "[general]\ngeneral.port = 1",
	  "t.toml:2: dotted keys are not supported, got 'general.port'" },
	{ "[general]\n\"port\" = 5",
	  "t.toml:2: quoted keys are not supported, got '\"port\" = 5'" },
	{ "[general]\nport", "t.toml:2: expected '=' after the key, got 'port'" },
	{ "[general]\nport 6432", "t.toml:2: expected '=' after the key, got 'port 6432'" },
	{ "[general]\n= 5", "t.toml:2: expected 'key = value' or a [table], got '= 5'" },
	{ "[general]\nport = 6432\n# again\nport = 6433",
	  "t.toml:4: port: duplicate key (first set at line 2)" },
	{ "[upstream]\nhost = \"a\"\n[general]\nhost = \"b\"\n[upstream]\nhost = \"c\"",
	  "t.toml:5: table [upstream] is defined twice (first at line 1)" },
	/* integers */
	{ "[general]\nport = 0", "t.toml:2: port: expected an integer from 1 to 65535, got '0'" },
	{ "[general]\nport = 65536",
	  "t.toml:2: port: expected an integer from 1 to 65535, got '65536'" },
	{ "[general]\nport = 99999999999999999999999",
	  "t.toml:2: port: expected an integer from 1 to 65535, got '99999999999999999999999'" },
	{ "[general]\nport = \"6432\"",
	  "t.toml:2: port: expected an integer from 1 to 65535, got '\"6432\"'" },
	{ "[general]\nport = 64__32",
	  "t.toml:2: port: expected a quoted string, a decimal integer or true/false, "
	  "got '64__32'" },
	{ "[general]\nport = 6432_",
	  "t.toml:2: port: expected a quoted string, a decimal integer or true/false, "
	  "got '6432_'" },
	{ "[general]\nport = 0x10",
	  "t.toml:2: port: expected a quoted string, a decimal integer or true/false, "
	  "got '0x10'" },
	{ "[general]\nport = 0644",
	  "t.toml:2: port: expected a quoted string, a decimal integer or true/false, "
	  "got '0644'" },
	{ "[general]\nport = 1e3",
	  "t.toml:2: port: expected a quoted string, a decimal integer or true/false, "
	  "got '1e3'" },
	{ "[general]\nworkers = 257",
	  "t.toml:2: workers: expected an integer from 0 to 256, got '257'" },
	{ "[general]\nworkers = -1",
	  "t.toml:2: workers: expected an integer from 0 to 256, got '-1'" },
	{ "[general]\nstartup_timeout = 99",
	  "t.toml:2: startup_timeout: expected an integer from 100 to 3600000, got '99'" },
	{ "[general]\nconnect_timeout = 3_600_001",
	  "t.toml:2: connect_timeout: expected an integer from 100 to 3600000, got '3_600_001'" },
	{ "[upstream]\nport = 0",
	  "t.toml:2: upstream.port: expected an integer from 1 to 65535, got '0'" },
	/* booleans, choices, strings */
	{ "[general]\ntls_client_required = \"true\"",
	  "t.toml:2: tls_client_required: expected true or false, got '\"true\"'" },
	{ "[general]\ntls_client_required = 1",
	  "t.toml:2: tls_client_required: expected true or false, got '1'" },
	{ "[general]\ntls_client_required = yes",
	  "t.toml:2: tls_client_required: expected a quoted string, a decimal integer or "
	  "true/false, got 'yes'" },
	{ "[general]\ntls_verify = \"full\"",
	  "t.toml:2: tls_verify: expected disable, prefer, verify_ca or verify_full, got 'full'" },
	{ "[general]\ntls_verify = verify_full",
	  "t.toml:2: tls_verify: expected a quoted string, a decimal integer or true/false, "
	  "got 'verify_full'" },
	{ "[general]\nktls = \"on\"", "t.toml:2: ktls: expected auto, off or required, got 'on'" },
	{ "[general]\nktls_server = \"\"",
	  "t.toml:2: ktls_server: expected auto, off or required, got ''" },
	{ "[general]\nlog_level = \"trace\"",
	  "t.toml:2: log_level: expected error, warn, info or debug, got 'trace'" },
	{ "[general]\ntls_certificate = 5",
	  "t.toml:2: tls_certificate: expected a string in quotes, got '5'" },
	{ "[general]\ntls_groups = false",
	  "t.toml:2: tls_groups: expected a string in quotes, got 'false'" },
	{ "[general]\nhost = \"a,,b\"",
	  "t.toml:2: host: expected addresses separated by commas, with none empty, got 'a,,b'" },
	{ "[general]\nhost = \"\"",
	  "t.toml:2: host: expected addresses separated by commas, with none empty, got ''" },
	{ "[general]\nhost = \"a b\"",
	  "t.toml:2: host: expected addresses separated by commas, not spaces, got 'a b'" },
	{ "[general]\nhost = \"*, ::\"",
	  "t.toml:2: host: '*' already means every address, so list it alone, got '*, ::'" },
	{ "[upstream]\nhost = \"a b\"",
	  "t.toml:2: upstream.host: expected one host name or address, got 'a b'" },
	{ "[upstream]\nhost = \"a,b\"",
	  "t.toml:2: upstream.host: expected one host name or address, got 'a,b'" },
	{ "[general]\ntls_server_name = \"a b\"",
	  "t.toml:2: tls_server_name: expected one DNS name or IP address, got 'a b'" },
	{ "[general]\nmetrics_listen = \"localhost:9939\"",
	  "t.toml:2: metrics_listen: expected numeric ADDRESS:PORT, "
	  "as \"127.0.0.1:9939\" or \"[::1]:9939\", got 'localhost:9939'" },
	{ "[general]\nmetrics_listen = \"::1:9939\"",
	  "t.toml:2: metrics_listen: expected numeric ADDRESS:PORT, "
	  "as \"127.0.0.1:9939\" or \"[::1]:9939\", got '::1:9939'" },
	{ "[general]\nmetrics_listen = \"127.0.0.1\"",
	  "t.toml:2: metrics_listen: expected numeric ADDRESS:PORT, "
	  "as \"127.0.0.1:9939\" or \"[::1]:9939\", got '127.0.0.1'" },
	{ "[general]\nmetrics_listen = \"127.0.0.1:0\"",
	  "t.toml:2: metrics_listen: expected numeric ADDRESS:PORT, "
	  "as \"127.0.0.1:9939\" or \"[::1]:9939\", got '127.0.0.1:0'" },
	{ "[general]\nmetrics_listen = \"127.0.0.1:65536\"",
	  "t.toml:2: metrics_listen: expected numeric ADDRESS:PORT, "
	  "as \"127.0.0.1:9939\" or \"[::1]:9939\", got '127.0.0.1:65536'" },
	{ "[general]\nmetrics_listen = \"[::1]9939\"",
	  "t.toml:2: metrics_listen: expected numeric ADDRESS:PORT, "
	  "as \"127.0.0.1:9939\" or \"[::1]:9939\", got '[::1]9939'" },
	{ "[general]\nmetrics_listen = \"[::1:9939\"",
	  "t.toml:2: metrics_listen: expected numeric ADDRESS:PORT, "
	  "as \"127.0.0.1:9939\" or \"[::1]:9939\", got '[::1:9939'" },
	{ "[general]\nmetrics_listen = \"1.2.3:80\"",
	  "t.toml:2: metrics_listen: expected numeric ADDRESS:PORT, "
	  "as \"127.0.0.1:9939\" or \"[::1]:9939\", got '1.2.3:80'" },
	/* syntax TOML has and we do not */
	{ "[general]\nport = [1, 2]", "t.toml:2: port: arrays are not supported, got '[1, 2]'" },
	/* proxy_protocol_trusted: an array of networks, on one line */
	{ "[general]\nproxy_protocol_trusted = [\"10.0.0.1/8\"]",
	  "t.toml:2: proxy_protocol_trusted: the address has bits set beyond the prefix length, "
	  "got '10.0.0.1/8'" },
	{ "[general]\nproxy_protocol_trusted = [\"::1/128\", \"10.0.0.0/33\"]",
	  "t.toml:2: proxy_protocol_trusted: an IPv4 prefix length is at most 32, "
	  "got '10.0.0.0/33'" },
	{ "[general]\nproxy_protocol_trusted = [\"lb.example.com\"]",
	  "t.toml:2: proxy_protocol_trusted: expected an address or network such as "
	  "\"10.0.0.0/8\" or \"::1/128\", got 'lb.example.com'" },
	{ "[general]\nproxy_protocol_trusted = [\"\"]",
	  "t.toml:2: proxy_protocol_trusted: expected no empty strings in the array, "
	  "got '[\"\"]'" },
	{ "[general]\nproxy_protocol_trusted = [10]",
	  "t.toml:2: proxy_protocol_trusted: expected an array of quoted strings on one line, "
	  "got '[10]'" },
	{ "[general]\nproxy_protocol_trusted = [\"10.0.0.0/8\"",
	  "t.toml:2: proxy_protocol_trusted: unterminated array: it must end on the same line, "
	  "got '[\"10.0.0.0/8\"'" },
	{ "[general]\nproxy_protocol_trusted = [\"10.0.0.0/8\" \"::1\"]",
	  "t.toml:2: proxy_protocol_trusted: expected ',' or ']' after an array item, "
	  "got '[\"10.0.0.0/8\" \"::1\"]'" },
	{ "[general]\nproxy_protocol_trusted = [\"10.0.0.0/8\",,]",
	  "t.toml:2: proxy_protocol_trusted: expected an array of quoted strings on one line, "
	  "got '[\"10.0.0.0/8\",,]'" },
	{ "[general]\nproxy_protocol_trusted = [\"10.0.0.0/8\"] x",
	  "t.toml:2: proxy_protocol_trusted: unexpected text after the value, got 'x'" },
	{ "[general]\nproxy_protocol = \"yes\"",
	  "t.toml:2: proxy_protocol: expected true or false, got '\"yes\"'" },
	{ "[general]\nhost = { a = 1 }",
	  "t.toml:2: host: inline tables are not supported, got '{ a = 1 }'" },
	{ "[general]\ntls_ciphers = \"\"\"x\"\"\"",
	  "t.toml:2: tls_ciphers: multi-line strings are not supported, got '\"\"\"x\"\"\"'" },
	{ "[general]\ntls_ciphers = '''x'''",
	  "t.toml:2: tls_ciphers: multi-line strings are not supported, got ''''x''''" },
	{ "[general]\nport =", "t.toml:2: port: missing value, got ''" },
	{ "[general]\nport = # none", "t.toml:2: port: missing value, got ''" },
	{ "[general]\nport = 6432 6433",
	  "t.toml:2: port: unexpected text after the value, got '6433'" },
	{ "[general]\ntls_groups = \"a\" \"b\"",
	  "t.toml:2: tls_groups: unexpected text after the value, got '\"b\"'" },
	{ "[general]\ntls_groups = \"a\"b",
	  "t.toml:2: tls_groups: unexpected text after the value, got 'b'" },
	/* strings */
	{ "[general]\ntls_certificate = \"abc",
	  "t.toml:2: tls_certificate: unterminated string, got '\"abc'" },
	{ "[general]\ntls_certificate = 'abc",
	  "t.toml:2: tls_certificate: unterminated string, got ''abc'" },
	{ "[general]\ntls_certificate = \"abc\\\"",
	  "t.toml:2: tls_certificate: unterminated string, got '\"abc\\\"'" },
	{ "[general]\ntls_certificate = \"abc\\",
	  "t.toml:2: tls_certificate: unterminated string, got '\"abc\\'" },
	{ "[general]\ntls_certificate = \"a\\qb\"",
	  "t.toml:2: tls_certificate: invalid escape in string (known: \\\" \\\\ \\n \\t \\uXXXX), "
	  "got '\\q'" },
	{ "[general]\ntls_certificate = \"\\u12\"",
	  "t.toml:2: tls_certificate: expected 4 hex digits after \\u, got '\\u12\"'" },
	{ "[general]\ntls_certificate = \"\\U0001F60\"",
	  "t.toml:2: tls_certificate: expected 8 hex digits after \\U, got '\\U0001F60\"'" },
	{ "[general]\ntls_certificate = \"\\u0000\"",
	  "t.toml:2: tls_certificate: not a usable Unicode character, got '\\u0000'" },
	{ "[general]\ntls_certificate = \"\\ud800\"",
	  "t.toml:2: tls_certificate: not a usable Unicode character, got '\\ud800'" },
	{ "[general]\ntls_certificate = \"\\U00110000\"",
	  "t.toml:2: tls_certificate: not a usable Unicode character, got '\\U00110000'" },
	/* bytes */
	{ "[general]\nport = 6432\x01",
	  "t.toml:2: control character 0x01 in column 12" },
	{ "[general]\n# comment \x7f", "t.toml:2: control character 0x7f in column 11" },
	{ "[general]\nport = 6432\r", "t.toml:2: control character 0x0d in column 12" },
};

START_TEST(test_bad_input)
{
	expect_parse_error(bad[_i].text, bad[_i].err);
}
END_TEST

START_TEST(test_long_lines)
{
	struct pgktls_config *cfg = config_new_defaults();
	char section[32] = "general", err[256];
	char *line = malloc(CFG_TEST_LINE + 2);

	ck_assert_ptr_nonnull(line);
	/* 4096 bytes is fine... */
	memset(line, 'a', CFG_TEST_LINE);
	line[0] = '#';
	line[CFG_TEST_LINE] = '\0';
	ck_assert_int_eq(config_parse_line(cfg, section, line, "t.toml", 9, err, sizeof(err)), 0);
	/* ...4097 is not. */
	line[CFG_TEST_LINE] = 'a';
	line[CFG_TEST_LINE + 1] = '\0';
	ck_assert_int_eq(config_parse_line(cfg, section, line, "t.toml", 9, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "t.toml:9: line is longer than 4096 bytes");

	/* A long bad value is quoted back cut short, never overflowing err. */
	memset(line, 'x', CFG_TEST_LINE);
	memcpy(line, "port = ", 7);
	line[CFG_TEST_LINE] = '\0';
	ck_assert_int_eq(config_parse_line(cfg, section, line, "t.toml", 1, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "t.toml:1: port: expected a quoted string, a decimal integer or "
			      "true/false, got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'");
	free(line);
	config_free(cfg);
}
END_TEST

START_TEST(test_escapes_and_comments)
{
	struct pgktls_config *cfg = must_parse(
		"  # indented comment\n"
		"\t[ general ]   # table comment\n"
		"\n"
		"tls_ciphers = \"a\\\"b\\\\c\\td\\ne\\u00e9\\U0001F600\\r\\b\\f\"\n"
		"tls_ciphersuites = 'C:\\dir\\n # not a comment \"'\n"
		"tls_groups = \"a#b\" # a comment with \"quotes\" and = signs\n"
		"  port\t=\t7000# tight comment\n"
		"tls_client_required=true#x\n"
		"tls_server_groups = \"\"\n");

	ck_assert_str_eq(cfg->tls_ciphers, "a\"b\\c\td\ne\xc3\xa9\xf0\x9f\x98\x80\r\b\f");
	ck_assert_str_eq(cfg->tls_ciphersuites, "C:\\dir\\n # not a comment \"");
	ck_assert_str_eq(cfg->tls_groups, "a#b");
	ck_assert_uint_eq(cfg->port, 7000);
	ck_assert(cfg->tls_client_required);
	/* "" unsets a string: tls.c then uses OpenSSL's default. */
	ck_assert_ptr_null(cfg->tls_server_groups);
	config_free(cfg);
}
END_TEST

/* ---- command line ---- */

START_TEST(test_config_set)
{
	struct pgktls_config *cfg;
	char err[256], where[128];

	cfg = must_parse("[general]\nport = 7000\ntls_verify = \"disable\"\n");

	ck_assert_str_eq(config_where(cfg, "port", where, sizeof(where)), "t.toml:2: port");
	/* The command line overrides the file: not a duplicate. */
	ck_assert_int_eq(config_set(cfg, "port", "8000", "--port", err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg->port, 8000);
	ck_assert_str_eq(config_where(cfg, "port", where, sizeof(where)), "--port: port");
	ck_assert_int_eq(config_set(cfg, "general.port", "8001", "--set", err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg->port, 8001);
	ck_assert_int_eq(config_set(cfg, "general.tls_verify", "verify-ca", "-v", err,
				    sizeof(err)), 0);
	ck_assert_int_eq(cfg->tls_verify, CFG_VERIFY_CA);
	ck_assert_int_eq(config_set(cfg, "upstream.port", "5433", "--upstream-port", err,
				    sizeof(err)), 0);
	ck_assert_uint_eq(cfg->upstream_port, 5433);
	ck_assert_uint_eq(cfg->port, 8001);
	ck_assert_int_eq(config_set(cfg, "upstream.host", "db", "--upstream", err, sizeof(err)),
			 0);
	ck_assert_str_eq(cfg->upstream_host, "db");
	ck_assert_str_eq(config_where(cfg, "upstream.host", where, sizeof(where)),
			 "--upstream: upstream.host");
	/* No quoting on the command line: the value is taken as it is. */
	ck_assert_int_eq(config_set(cfg, "tls_certificate", "/a b/\"c\".pem", "--cert", err,
				    sizeof(err)), 0);
	ck_assert_str_eq(cfg->tls_certificate, "/a b/\"c\".pem");
	ck_assert_int_eq(config_set(cfg, "tls_certificate", "", "--cert", err, sizeof(err)), 0);
	ck_assert_ptr_null(cfg->tls_certificate);
	ck_assert_int_eq(config_set(cfg, "tls_client_required", "true", "-r", err, sizeof(err)),
			 0);
	ck_assert(cfg->tls_client_required);
	ck_assert_int_eq(config_set(cfg, "workers", "1_0", "-w", err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg->workers, 10);
	ck_assert_int_eq(config_set(cfg, "host", "::1,127.0.0.1", "--listen", err, sizeof(err)),
			 0);
	ck_assert_uint_eq(cfg->n_listen, 2);
	ck_assert_str_eq(cfg->listen[1].host, "127.0.0.1");
	/* A list on the command line is one string, comma-separated. */
	ck_assert_int_eq(config_set(cfg, "proxy_protocol_trusted", "10.0.0.0/8, ::1", "--set",
				    err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg->n_proxy_protocol_trusted, 2);
	ck_assert_uint_eq(cfg->proxy_protocol_trusted[1].prefix, 128);
	ck_assert_int_eq(config_set(cfg, "proxy_protocol_trusted", "10.0.0.0/8,x", "--set",
				    err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "--set: proxy_protocol_trusted: expected an address or network "
			 "such as \"10.0.0.0/8\" or \"::1/128\", got 'x'");
	ck_assert_uint_eq(cfg->n_proxy_protocol_trusted, 2);

	/* Errors: the origin replaces FILE:LINE, the value is quoted as given. */
	ck_assert_int_eq(config_set(cfg, "port", "abc", "--port", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "--port: port: expected an integer from 1 to 65535, got 'abc'");
	ck_assert_uint_eq(cfg->port, 8001);
	ck_assert_int_eq(config_set(cfg, "port", "", "--port", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "--port: port: expected an integer from 1 to 65535, got ''");
	ck_assert_int_eq(config_set(cfg, "upstream.port", "70000", "-P", err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "-P: upstream.port: expected an integer from 1 to 65535, "
			      "got '70000'");
	ck_assert_int_eq(config_set(cfg, "tls_client_required", "yes", "-r", err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "-r: tls_client_required: expected true or false, got 'yes'");
	ck_assert_int_eq(config_set(cfg, "tls_min_version", "TLSv1.1", "--tls-min", err,
				    sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "--tls-min: tls_min_version: expected TLSv1.2 or TLSv1.3, got "
			      "'TLSv1.1' (TLS 1.2 is the minimum: older versions are insecure)");
	ck_assert_int_eq(config_set(cfg, "tls_verify", "strict", "--verify", err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "--verify: tls_verify: expected disable, prefer, verify_ca or "
			      "verify_full, got 'strict'");
	ck_assert_int_eq(cfg->tls_verify, CFG_VERIFY_CA);
	ck_assert_int_eq(config_set(cfg, "unix_socket", "/tmp", "--socket", err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "--socket: unknown key 'unix_socket'; did you mean "
			      "'upstream.unix_socket'?");
	ck_assert_int_eq(config_set(cfg, "tls_cert", "/x", "-c", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "-c: unknown key 'tls_cert'; did you mean 'tls_certificate'?");
	ck_assert_int_eq(config_set(cfg, "upstream.tls_verify", "x", "-c", err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "-c: unknown key 'upstream.tls_verify'");
	ck_assert_int_eq(config_set(cfg, "databases.port", "1", "-c", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "-c: unknown key 'databases.port'");
	ck_assert_int_eq(config_set(cfg, "zzzzzz", "1", "-c", err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "-c: unknown key 'zzzzzz'");
	config_free(cfg);
}
END_TEST

/* ktls_client/ktls_server follow ktls unless set, whatever the order. */
START_TEST(test_ktls_inheritance)
{
	struct pgktls_config *cfg;
	char err[256];

	cfg = must_parse("[general]\nktls = \"off\"\n");
	ck_assert_int_eq(cfg->ktls_client, CFG_KTLS_OFF);
	ck_assert_int_eq(cfg->ktls_server, CFG_KTLS_OFF);
	config_free(cfg);

	cfg = must_parse("[general]\nktls_client = \"auto\"\nktls = \"required\"\n");
	ck_assert_int_eq(cfg->ktls, CFG_KTLS_REQUIRED);
	ck_assert_int_eq(cfg->ktls_client, CFG_KTLS_AUTO);
	ck_assert_int_eq(cfg->ktls_server, CFG_KTLS_REQUIRED);
	config_free(cfg);

	cfg = must_parse("[general]\nktls = \"required\"\nktls_server = \"off\"\n");
	ck_assert_int_eq(cfg->ktls_client, CFG_KTLS_REQUIRED);
	ck_assert_int_eq(cfg->ktls_server, CFG_KTLS_OFF);
	/* The command line's ktls still leaves the explicitly set one alone. */
	ck_assert_int_eq(config_set(cfg, "ktls", "auto", "--ktls", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg->ktls_client, CFG_KTLS_AUTO);
	ck_assert_int_eq(cfg->ktls_server, CFG_KTLS_OFF);
	ck_assert_int_eq(config_set(cfg, "ktls_client", "off", "--ktls-client", err, sizeof(err)),
			 0);
	ck_assert_int_eq(config_set(cfg, "ktls", "required", "--ktls", err, sizeof(err)), 0);
	ck_assert_int_eq(cfg->ktls_client, CFG_KTLS_OFF);
	config_free(cfg);
}
END_TEST

/* ---- validation ---- */

struct vfiles {
	char cert[512], key[512], ca[512], dir[512], missing[512];
};

static void make_vfiles(struct vfiles *f)
{
	tmpfile_path("v-cert.pem", "not checked here: tls.c loads it\n", f->cert, sizeof(f->cert));
	tmpfile_path("v-key.pem", "x\n", f->key, sizeof(f->key));
	tmpfile_path("v-ca.pem", "x\n", f->ca, sizeof(f->ca));
	tmpfile_path("v-dir", NULL, f->dir, sizeof(f->dir));
	if (mkdir(f->dir, 0700) == -1)
		ck_assert_int_eq(errno, EEXIST);
	tmpfile_path("no-such-dir/x.pem", NULL, f->missing, sizeof(f->missing));
}

/* Parse @text and validate: @expected is the exact error, or NULL for success. */
static void expect_validate(const char *text, const char *expected)
{
	struct pgktls_config *cfg = must_parse(text);
	char err[2048];
	int ret = config_validate(cfg, err, sizeof(err));

	if (!expected) {
		ck_assert_msg(ret == 0, "'%s' should validate: %s", text, err);
	} else {
		ck_assert_msg(ret == -EINVAL, "'%s' should not validate", text);
		ck_assert_str_eq(err, expected);
	}
	config_free(cfg);
}

START_TEST(test_validate)
{
	struct vfiles f;
	char text[8192], exp[2048];

	make_vfiles(&f);

	snprintf(text, sizeof(text),
		 "[general]\ntls_certificate = \"%s\"\ntls_private_key = \"%s\"\n"
		 "tls_client_required = true\ntls_client_ca_certificate = \"%s\"\n"
		 "tls_verify = \"verify_full\"\ntls_server_ca_certificate = \"%s\"\n"
		 "tls_server_certificate = \"%s\"\ntls_server_private_key = \"%s\"\n"
		 "tls_min_version = \"TLSv1.3\"\ntls_max_version = \"TLSv1.3\"\n"
		 "stats_socket = \"%s/stats.sock\"\n",
		 f.cert, f.key, f.ca, f.ca, f.cert, f.key, f.dir);
	expect_validate(text, NULL);

	/* PROXY protocol: on, but from nobody */
	expect_validate("[general]\nproxy_protocol = true\n",
			"t.toml:2: proxy_protocol: needs proxy_protocol_trusted, the networks of "
			"the load balancers allowed to send the header (e.g. [\"10.0.0.0/8\"])");
	expect_validate("[general]\nproxy_protocol = true\nproxy_protocol_trusted = []\n",
			"t.toml:2: proxy_protocol: needs proxy_protocol_trusted, the networks of "
			"the load balancers allowed to send the header (e.g. [\"10.0.0.0/8\"])");
	expect_validate("[general]\nproxy_protocol = true\nproxy_protocol_trusted = [\"::1\"]\n",
			NULL);

	/* pairs */
	snprintf(text, sizeof(text), "[general]\ntls_certificate = \"%s\"\n", f.cert);
	expect_validate(text, "t.toml:2: tls_certificate: set without tls_private_key");
	snprintf(text, sizeof(text), "[general]\n\ntls_private_key = \"%s\"\n", f.key);
	expect_validate(text, "t.toml:3: tls_private_key: set without tls_certificate");
	snprintf(text, sizeof(text), "[general]\ntls_server_certificate = \"%s\"\n", f.cert);
	expect_validate(text,
			"t.toml:2: tls_server_certificate: set without tls_server_private_key");
	snprintf(text, sizeof(text), "[general]\ntls_server_private_key = \"%s\"\n", f.key);
	expect_validate(text,
			"t.toml:2: tls_server_private_key: set without tls_server_certificate");

	/* files */
	snprintf(text, sizeof(text),
		 "[general]\ntls_certificate = \"%s\"\ntls_private_key = \"%s\"\n", f.cert,
		 f.missing);
	snprintf(exp, sizeof(exp),
		 "t.toml:3: tls_private_key: cannot read '%s': No such file or directory",
		 f.missing);
	expect_validate(text, exp);
	snprintf(text, sizeof(text),
		 "[general]\ntls_certificate = \"%s\"\ntls_private_key = \"%s\"\n", f.dir, f.key);
	snprintf(exp, sizeof(exp), "t.toml:2: tls_certificate: cannot read '%s': Is a directory",
		 f.dir);
	expect_validate(text, exp);
	snprintf(text, sizeof(text),
		 "[general]\ntls_certificate = \"%s\"\ntls_private_key = \"%s\"\n"
		 "tls_client_ca_certificate = \"%s\"\n", f.cert, f.key, f.missing);
	snprintf(exp, sizeof(exp), "t.toml:4: tls_client_ca_certificate: cannot read '%s': "
		 "No such file or directory", f.missing);
	expect_validate(text, exp);
	snprintf(text, sizeof(text), "[general]\ntls_server_ca_certificate = \"%s\"\n", f.missing);
	snprintf(exp, sizeof(exp), "t.toml:2: tls_server_ca_certificate: cannot read '%s': "
		 "No such file or directory", f.missing);
	expect_validate(text, exp);
	/* A FIFO named by mistake must not block startup in open(). */
	snprintf(exp, sizeof(exp), "%s/v-fifo", testlib_tmpdir());
	if (mkfifo(exp, 0600) == -1)
		ck_assert_int_eq(errno, EEXIST);
	snprintf(text, sizeof(text), "[general]\ntls_server_ca_certificate = \"%s\"\n", exp);
	expect_validate(text, NULL);
	/* "system" is the OS store, not a file... */
	expect_validate("[general]\ntls_verify = \"verify_ca\"\n"
			"tls_server_ca_certificate = \"system\"\n", NULL);
	/* ...for tls_server_ca_certificate only. */
	snprintf(text, sizeof(text), "[general]\ntls_certificate = \"system\"\n"
		 "tls_private_key = \"%s\"\n", f.key);
	expect_validate(text, "t.toml:2: tls_certificate: cannot read 'system': No such file or "
			      "directory");

	/* TLS towards clients needs the server certificate. */
	expect_validate("[general]\ntls_client_required = true\n",
			"t.toml:2: tls_client_required: needs tls_certificate and "
			"tls_private_key: clients cannot use TLS without them");
	snprintf(text, sizeof(text), "[general]\ntls_client_ca_certificate = \"%s\"\n", f.ca);
	expect_validate(text, "t.toml:2: tls_client_ca_certificate: needs tls_certificate and "
			      "tls_private_key: clients cannot use TLS without them");
	/* ... or a generated one, but not both. */
	snprintf(text, sizeof(text),
		 "[general]\ntls_generate_self_signed = true\ntls_client_required = true\n"
		 "tls_client_ca_certificate = \"%s\"\n", f.ca);
	expect_validate(text, NULL);
	snprintf(text, sizeof(text),
		 "[general]\ntls_certificate = \"%s\"\ntls_private_key = \"%s\"\n"
		 "tls_generate_self_signed = true\n", f.cert, f.key);
	expect_validate(text, "t.toml:4: tls_generate_self_signed: set together with "
			      "tls_certificate: use one or the other");

	/* versions */
	expect_validate("[general]\ntls_min_version = \"TLSv1.3\"\ntls_max_version = \"1.2\"\n",
			"t.toml:3: tls_max_version: TLSv1.2 is below tls_min_version TLSv1.3");
	expect_validate("[general]\ntls_server_max_version = \"TLSv1.2\"\n"
			"tls_server_min_version = \"TLSv1.3\"\n",
			"t.toml:2: tls_server_max_version: TLSv1.2 is below "
			"tls_server_min_version TLSv1.3");
	expect_validate("[general]\ntls_min_version = \"TLSv1.3\"\ntls_max_version = \"\"\n",
			NULL);

	/* upstream verification */
	expect_validate("[general]\n\ntls_verify = \"verify_full\"\n",
			"t.toml:3: tls_verify: verify_full needs tls_server_ca_certificate "
			"(a CA file, or \"system\" for the OS trust store)");
	expect_validate("[general]\ntls_verify = \"verify-ca\"\n",
			"t.toml:2: tls_verify: verify_ca needs tls_server_ca_certificate "
			"(a CA file, or \"system\" for the OS trust store)");
	snprintf(text, sizeof(text), "[general]\ntls_verify = \"verify_full\"\n"
		 "tls_server_ca_certificate = \"system\"\n[upstream]\nunix_socket = \"%s\"\n",
		 f.dir);
	expect_validate(text, "t.toml:5: upstream.unix_socket: PostgreSQL offers no TLS over unix "
			      "sockets, so tls_verify = \"verify_full\" cannot work: use "
			      "upstream.host, or tls_verify \"prefer\" or \"disable\"");
	snprintf(text, sizeof(text), "[upstream]\nunix_socket = \"%s\"\n", f.dir);
	expect_validate(text, NULL);
	snprintf(text, sizeof(text), "[upstream]\nunix_socket = \"%s/.s.PGSQL.5432\"\n", f.dir);
	expect_validate(text, NULL);
	snprintf(text, sizeof(text), "[upstream]\nunix_socket = \"%s\"\n", f.cert);
	snprintf(exp, sizeof(exp), "t.toml:2: upstream.unix_socket: '%s' exists and is not a "
		 "socket or a directory", f.cert);
	expect_validate(text, exp);
	snprintf(text, sizeof(text), "[upstream]\nunix_socket = \"%s\"\n", f.missing);
	snprintf(exp, sizeof(exp), "t.toml:2: upstream.unix_socket: cannot use '%s': directory "
		 "'%s/no-such-dir': No such file or directory", f.missing, testlib_tmpdir());
	expect_validate(text, exp);
	expect_validate("[upstream]\nhost = \"\"\n",
			"t.toml:2: upstream.host: no upstream: set upstream.host or "
			"upstream.unix_socket");

	/* stats socket: created by us, so only its directory must exist */
	snprintf(text, sizeof(text), "[general]\nstats_socket = \"%s\"\n", f.missing);
	snprintf(exp, sizeof(exp), "t.toml:2: stats_socket: cannot use '%s': directory "
		 "'%s/no-such-dir': No such file or directory", f.missing, testlib_tmpdir());
	expect_validate(text, exp);
	snprintf(text, sizeof(text), "[general]\nstats_socket = \"%s\"\n", f.dir);
	snprintf(exp, sizeof(exp), "t.toml:2: stats_socket: '%s' exists and is not a socket",
		 f.dir);
	expect_validate(text, exp);
}
END_TEST

/* Optional client certificates, CRLs and passphrase commands: each needs its partner. */
START_TEST(test_validate_client_certs)
{
	struct vfiles f;
	char text[8192], exp[2048], base[4096];

	make_vfiles(&f);
	snprintf(base, sizeof(base), "[general]\ntls_certificate = \"%s\"\n"
		 "tls_private_key = \"%s\"\n", f.cert, f.key);

	/* tls_client_certificate: both words, and only with a client CA. */
	snprintf(text, sizeof(text), "%stls_client_ca_certificate = \"%s\"\n"
		 "tls_client_certificate = \"optional\"\n", base, f.ca);
	expect_validate(text, NULL);
	snprintf(text, sizeof(text), "%stls_client_certificate = \"required\"\n", base);
	expect_validate(text, "t.toml:4: tls_client_certificate: needs tls_client_ca_certificate "
			      "(the CA that client certificates are checked against)");
	expect_parse_error("[general]\ntls_client_certificate = \"maybe\"\n",
			   "t.toml:2: tls_client_certificate: expected required or optional, "
			   "got 'maybe'");

	/* CRLs: a file or a directory, each with what makes it mean something. */
	snprintf(text, sizeof(text), "%stls_client_ca_certificate = \"%s\"\n"
		 "tls_client_crl = \"%s\"\n", base, f.ca, f.dir);
	expect_validate(text, NULL);
	snprintf(text, sizeof(text), "%stls_client_ca_certificate = \"%s\"\n"
		 "tls_client_crl = \"%s\"\n", base, f.ca, f.ca);
	expect_validate(text, NULL);
	snprintf(text, sizeof(text), "%stls_client_crl = \"%s\"\n", base, f.ca);
	expect_validate(text, "t.toml:4: tls_client_crl: needs tls_client_ca_certificate: "
			      "without it no client certificate is checked, so none can be found "
			      "revoked");
	snprintf(text, sizeof(text), "%stls_client_ca_certificate = \"%s\"\n"
		 "tls_client_crl = \"%s\"\n", base, f.ca, f.missing);
	snprintf(exp, sizeof(exp), "t.toml:5: tls_client_crl: cannot read '%s': No such file or "
		 "directory", f.missing);
	expect_validate(text, exp);
	snprintf(text, sizeof(text), "[general]\ntls_verify = \"verify_ca\"\n"
		 "tls_server_ca_certificate = \"%s\"\ntls_server_crl = \"%s\"\n", f.ca, f.dir);
	expect_validate(text, NULL);
	snprintf(text, sizeof(text), "[general]\ntls_server_crl = \"%s\"\n", f.ca);
	expect_validate(text, "t.toml:2: tls_server_crl: needs tls_verify = \"verify_ca\" or "
			      "\"verify_full\": otherwise PostgreSQL's certificate is not checked");

	/* Passphrase commands: free text, but only with the key they unlock. */
	snprintf(text, sizeof(text), "%stls_private_key_passphrase_command = \"echo '%%p'\"\n",
		 base);
	expect_validate(text, NULL);
	expect_validate("[general]\ntls_private_key_passphrase_command = \"echo x\"\n",
			"t.toml:2: tls_private_key_passphrase_command: needs tls_private_key (the "
			"key it unlocks)");
	expect_validate("[general]\n\ntls_server_private_key_passphrase_command = \"echo x\"\n",
			"t.toml:3: tls_server_private_key_passphrase_command: needs "
			"tls_server_private_key or tls_server_identity_map (the keys it unlocks)");

	/*
	 * tls_server_identity_map: a readable file, chosen by verified client
	 * certificates (so a client CA), presented in an upstream handshake
	 * (so TLS upstream). It also gives the passphrase command keys to unlock.
	 */
	snprintf(text, sizeof(text), "%stls_client_ca_certificate = \"%s\"\n"
		 "tls_server_identity_map = \"%s\"\n"
		 "tls_server_private_key_passphrase_command = \"echo x\"\n", base, f.ca, f.ca);
	expect_validate(text, NULL);
	snprintf(text, sizeof(text), "%stls_server_identity_map = \"%s\"\n", base, f.ca);
	expect_validate(text, "t.toml:4: tls_server_identity_map: needs tls_client_ca_certificate: "
			      "an identity is chosen by the client's verified certificate");
	snprintf(text, sizeof(text), "%stls_client_ca_certificate = \"%s\"\n"
		 "tls_verify = \"disable\"\ntls_server_identity_map = \"%s\"\n", base, f.ca, f.ca);
	expect_validate(text, "t.toml:6: tls_server_identity_map: needs TLS towards PostgreSQL "
			      "(upstream.host and tls_verify other than \"disable\"): identities "
			      "are presented in the upstream handshake");
	snprintf(text, sizeof(text), "%stls_client_ca_certificate = \"%s\"\n"
		 "tls_server_identity_map = \"%s\"\n", base, f.ca, f.missing);
	snprintf(exp, sizeof(exp), "t.toml:5: tls_server_identity_map: cannot read '%s': No such "
		 "file or directory", f.missing);
	expect_validate(text, exp);
}
END_TEST

START_TEST(test_validate_command_line)
{
	struct pgktls_config *cfg = config_new_defaults();
	struct vfiles f;
	char err[2048], exp[2048];

	make_vfiles(&f);
	ck_assert_int_eq(config_set(cfg, "tls_certificate", f.cert, "--cert", err, sizeof(err)),
			 0);
	ck_assert_int_eq(config_validate(cfg, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "--cert: tls_certificate: set without tls_private_key");
	ck_assert_int_eq(config_set(cfg, "tls_private_key", f.missing, "--key", err, sizeof(err)),
			 0);
	ck_assert_int_eq(config_validate(cfg, err, sizeof(err)), -EINVAL);
	snprintf(exp, sizeof(exp), "--key: tls_private_key: cannot read '%s': No such file or "
		 "directory", f.missing);
	ck_assert_str_eq(err, exp);
	ck_assert_int_eq(config_set(cfg, "tls_private_key", f.key, "--key", err, sizeof(err)), 0);
	ck_assert_int_eq(config_validate(cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(cfg, "upstream.host", "", "--upstream-host", err,
				    sizeof(err)), 0);
	ck_assert_int_eq(config_validate(cfg, err, sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "--upstream-host: upstream.host: no upstream: set upstream.host "
			      "or upstream.unix_socket");
	config_free(cfg);
}
END_TEST

/* A real unix socket passes as upstream.unix_socket and as stats_socket. */
START_TEST(test_validate_socket)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct pgktls_config *cfg = config_new_defaults();
	char path[PATH_MAX], err[512];
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	tmpfile_path("s.sock", NULL, path, sizeof(path));
	unlink(path);
	ck_assert_uint_lt(strlen(path), sizeof(sun.sun_path));
	strcpy(sun.sun_path, path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(config_set(cfg, "upstream.unix_socket", path, "-s", err, sizeof(err)), 0);
	ck_assert_int_eq(config_set(cfg, "stats_socket", path, "-S", err, sizeof(err)), 0);
	ck_assert_msg(config_validate(cfg, err, sizeof(err)) == 0, "%s", err);
	close(fd);
	unlink(path);
	config_free(cfg);
}
END_TEST

/* ---- files ---- */

START_TEST(test_load_file)
{
	struct pgktls_config *cfg = config_new_defaults();
	char path[PATH_MAX], exp[PATH_MAX + 128], err[PATH_MAX + 256];
	char *big;
	FILE *f;

	/* CRLF line ends, a byte-order mark, no newline at the end. */
	tmpfile_path("crlf.toml", "\xef\xbb\xbf# bom\r\n[general]\r\nport = 7001\r\n\r\n"
		     "[upstream]\r\nport = 5499", path, sizeof(path));
	ck_assert_int_eq(config_load_file(cfg, path, err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg->port, 7001);
	ck_assert_uint_eq(cfg->upstream_port, 5499);
	ck_assert_str_eq(cfg->path, path);
	config_free(cfg);

	/* The error carries the path and the right line. */
	cfg = config_new_defaults();
	tmpfile_path("bad.toml", "# one\n[general]\nport = 7001\n\n# five\nworkers = \"2\"\n",
		     path, sizeof(path));
	ck_assert_int_eq(config_load_file(cfg, path, err, sizeof(err)), -EINVAL);
	snprintf(exp, sizeof(exp), "%s:6: workers: expected an integer from 0 to 256, got '\"2\"'",
		 path);
	ck_assert_str_eq(err, exp);
	config_free(cfg);

	/* A NUL byte would hide the rest of its line. */
	cfg = config_new_defaults();
	tmpfile_path("nul.toml", NULL, path, sizeof(path));
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fwrite("[general]\nport = 1\0 # x\n", 1, 24, f);
	fclose(f);
	ck_assert_int_eq(config_load_file(cfg, path, err, sizeof(err)), -EINVAL);
	snprintf(exp, sizeof(exp), "%s:2: NUL byte in line", path);
	ck_assert_str_eq(err, exp);
	config_free(cfg);

	/* An overlong line is reported, even with a CR hiding where the limit falls. */
	cfg = config_new_defaults();
	big = malloc(CFG_TEST_LINE + 64);
	ck_assert_ptr_nonnull(big);
	strcpy(big, "[general]\n#");
	memset(big + 11, 'a', CFG_TEST_LINE - 1);
	strcpy(big + 10 + CFG_TEST_LINE, "\rport = 1\n");
	tmpfile_path("long.toml", big, path, sizeof(path));
	ck_assert_int_eq(config_load_file(cfg, path, err, sizeof(err)), -EINVAL);
	snprintf(exp, sizeof(exp), "%s:2: line is longer than 4096 bytes", path);
	ck_assert_str_eq(err, exp);
	/* Exactly 4096 bytes plus CRLF is fine. */
	config_free(cfg);
	cfg = config_new_defaults();
	strcpy(big + 10 + CFG_TEST_LINE, "\r\nport = 1\n");
	tmpfile_path("long.toml", big, path, sizeof(path));
	ck_assert_msg(config_load_file(cfg, path, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(cfg->port, 1);
	free(big);
	config_free(cfg);

	/* Unreadable files. */
	cfg = config_new_defaults();
	tmpfile_path("absent.toml", NULL, path, sizeof(path));
	ck_assert_int_eq(config_load_file(cfg, path, err, sizeof(err)), -ENOENT);
	snprintf(exp, sizeof(exp), "%s: cannot open: No such file or directory", path);
	ck_assert_str_eq(err, exp);
	ck_assert_int_eq(config_load_file(cfg, testlib_tmpdir(), err, sizeof(err)), -EISDIR);
	snprintf(exp, sizeof(exp), "%s: cannot read: is a directory", testlib_tmpdir());
	ck_assert_str_eq(err, exp);
	ck_assert_ptr_null(cfg->path);
	config_free(cfg);
}
END_TEST

/*
 * tests/data/config: good-*.toml must load and validate; bad-*.toml carry
 * "# expect: <error>" (a load error) or "# expect-validate: <error>", where
 * @FILE@ stands for the fixture's path.
 */
static void check_fixture(const char *path, const char *name)
{
	struct pgktls_config *cfg = config_new_defaults();
	char err[PATH_MAX + 512], line[1024], expected[PATH_MAX + 512] = "";
	bool at_validate = false;
	int ret;
	FILE *f;

	ck_assert_ptr_nonnull(cfg);
	if (strncmp(name, "bad-", 4) == 0) {
		f = fopen(path, "r");
		ck_assert_ptr_nonnull(f);
		while (fgets(line, sizeof(line), f)) {
			const char *e = NULL;
			char *at;

			if (strncmp(line, "# expect: ", 10) == 0) {
				e = line + 10;
			} else if (strncmp(line, "# expect-validate: ", 19) == 0) {
				e = line + 19;
				at_validate = true;
			}
			if (!e)
				continue;
			line[strcspn(line, "\r\n")] = '\0';
			at = strstr(e, "@FILE@");
			ck_assert_msg(at != NULL, "%s: expectation without @FILE@", name);
			snprintf(expected, sizeof(expected), "%.*s%s%s", (int)(at - e), e, path,
				 at + 6);
			break;
		}
		fclose(f);
		ck_assert_msg(expected[0], "%s has no '# expect:' line", name);
	}
	ret = config_load_file(cfg, path, err, sizeof(err));
	if (ret == 0)
		ret = config_validate(cfg, err, sizeof(err));
	else
		ck_assert_msg(!at_validate, "%s: failed at load, not validate: %s", name, err);
	if (!expected[0]) {
		ck_assert_msg(ret == 0, "%s: %s", name, err);
	} else {
		ck_assert_msg(ret == -EINVAL, "%s: loaded and validated", name);
		ck_assert_str_eq(err, expected);
	}
	config_free(cfg);
}

START_TEST(test_fixtures)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	unsigned good = 0, badn = 0;
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/tests/data/config", srcdir());
	d = opendir(dir);
	ck_assert_msg(d != NULL, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);

		if (n < 5 || strcmp(de->d_name + n - 5, ".toml") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		check_fixture(path, de->d_name);
		if (strncmp(de->d_name, "good-", 5) == 0)
			good++;
		else if (strncmp(de->d_name, "bad-", 4) == 0)
			badn++;
		else
			ck_abort_msg("%s: fixtures are named good-* or bad-*", de->d_name);
	}
	closedir(d);
	ck_assert_uint_ge(good, 3);
	ck_assert_uint_ge(badn, 3);
}
END_TEST

/* The shipped example is a valid config, and it spells out the defaults. */
START_TEST(test_example)
{
	struct pgktls_config *cfg = config_new_defaults(), *def = config_new_defaults();
	char path[PATH_MAX], err[PATH_MAX + 256];

	snprintf(path, sizeof(path), "%s/docs/pgktls.toml.example", srcdir());
	ck_assert_msg(config_load_file(cfg, path, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(config_validate(cfg, err, sizeof(err)) == 0, "%s", err);
	/* Every value it sets is the default it documents. */
	ck_assert_str_eq(cfg->listen[0].host, def->listen[0].host);
	ck_assert_uint_eq(cfg->port, def->port);
	ck_assert_uint_eq(cfg->workers, def->workers);
	ck_assert_str_eq(cfg->log_level, def->log_level);
	ck_assert_int_eq(cfg->tls_min_version, def->tls_min_version);
	ck_assert_int_eq(cfg->tls_max_version, def->tls_max_version);
	ck_assert_str_eq(cfg->tls_groups, def->tls_groups);
	ck_assert_str_eq(cfg->tls_server_groups, def->tls_server_groups);
	ck_assert_int_eq(cfg->tls_verify, def->tls_verify);
	ck_assert_uint_eq(cfg->startup_timeout, def->startup_timeout);
	ck_assert_uint_eq(cfg->connect_timeout, def->connect_timeout);
	ck_assert_int_eq(cfg->ktls_client, def->ktls_client);
	ck_assert_str_eq(cfg->upstream_host, def->upstream_host);
	ck_assert_uint_eq(cfg->upstream_port, def->upstream_port);
	config_free(def);
	config_free(cfg);
}
END_TEST

/* ---- names ---- */

START_TEST(test_names)
{
	const char *const *names = config_key_names();
	size_t n = 0;
	bool port = false, uport = false, usock = false;

	for (; names[n]; n++) {
		ck_assert_msg(strncmp(names[n], "general.", 8) == 0 ||
				      strncmp(names[n], "upstream.", 9) == 0,
			      "%s", names[n]);
		for (size_t j = 0; j < n; j++)
			ck_assert_str_ne(names[j], names[n]);
		port |= strcmp(names[n], "general.port") == 0;
		uport |= strcmp(names[n], "upstream.port") == 0;
		usock |= strcmp(names[n], "upstream.unix_socket") == 0;
	}
	ck_assert(port && uport && usock);
	ck_assert_ptr_eq(config_key_names(), names);

	ck_assert_str_eq(config_verify_name(CFG_VERIFY_DISABLE), "disable");
	ck_assert_str_eq(config_verify_name(CFG_VERIFY_PREFER), "prefer");
	ck_assert_str_eq(config_verify_name(CFG_VERIFY_CA), "verify_ca");
	ck_assert_str_eq(config_verify_name(CFG_VERIFY_FULL), "verify_full");
	ck_assert_str_eq(config_ktls_name(CFG_KTLS_AUTO), "auto");
	ck_assert_str_eq(config_ktls_name(CFG_KTLS_OFF), "off");
	ck_assert_str_eq(config_ktls_name(CFG_KTLS_REQUIRED), "required");
	ck_assert_str_eq(config_tls_version_name(0), "any");
	ck_assert_str_eq(config_tls_version_name(CFG_TLS_V12), "TLSv1.2");
	ck_assert_str_eq(config_tls_version_name(CFG_TLS_V13), "TLSv1.3");
}
END_TEST

/* ---- robustness (config_parse_line is a fuzz target) ---- */

START_TEST(test_parse_line_any_bytes)
{
	static const char alphabet[] = "\"'\\u#=[]{}. ,\tTLSv1.23_-aeflnrstu0x\x01\x7f\xc3\xff";
	static const char *const sections[] = { "", "general", "upstream" };
	struct pgktls_config *cfg = config_new_defaults();
	char line[256], err[96 + 8], section[32];
	unsigned seed = 12345;

	ck_assert_ptr_nonnull(cfg);
	for (int iter = 0; iter < 20000; iter++) {
		size_t len, errlen;
		int ret;

		seed = seed * 1103515245u + 12345u;
		len = (seed >> 16) % (sizeof(line) - 1);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			line[i] = alphabet[(seed >> 16) % (sizeof(alphabet) - 1)];
		}
		/* Often start like a real assignment, to get past the key. */
		if (iter % 2 && len > 8)
			memcpy(line, iter % 4 == 1 ? "port = " : "tls_ciphers = \"", 7);
		line[len] = '\0';
		snprintf(section, sizeof(section), "%s", sections[iter % 3]);
		errlen = 1 + (size_t)iter % 96;
		memset(err, 'Z', sizeof(err));
		ret = config_parse_line(cfg, section, line, "f.toml", 1, err, errlen);
		ck_assert_msg(ret == 0 || ret == -EINVAL, "ret %d", ret);
		ck_assert_msg(memchr(err, '\0', errlen) != NULL || ret == 0, "err not terminated");
		ck_assert_int_eq(err[errlen], 'Z'); /* nothing written past errlen */
		/* The file-level duplicate check would stop the loop: forget origins. */
		config_free(cfg);
		cfg = config_new_defaults();
		ck_assert_ptr_nonnull(cfg);
	}
	/* No error buffer at all is allowed too. */
	ck_assert_int_eq(config_parse_line(cfg, section, "[nope]", "f", 1, NULL, 0), -EINVAL);
	config_free(cfg);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_every_key_parses);
	tcase_add_test(tc, test_value_aliases);
	tcase_add_loop_test(tc, test_bad_input, 0, (int)PGKTLS_ARRAY_SIZE(bad));
	tcase_add_test(tc, test_long_lines);
	tcase_add_test(tc, test_escapes_and_comments);
	tcase_add_test(tc, test_config_set);
	tcase_add_test(tc, test_ktls_inheritance);
	tcase_add_test(tc, test_validate);
	tcase_add_test(tc, test_validate_client_certs);
	tcase_add_test(tc, test_validate_command_line);
	tcase_add_test(tc, test_validate_socket);
	tcase_add_test(tc, test_load_file);
	tcase_add_test(tc, test_fixtures);
	tcase_add_test(tc, test_example);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_parse_line_any_bytes);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(config_suite());
}
