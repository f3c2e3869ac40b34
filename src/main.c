// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * main.c - command line, start-up order, signal policy.
 *
 * Order: parse flags, load and validate the config, build the runtime (TLS
 * contexts, so a bad key is reported before anything binds; the upstream
 * address; the kTLS probe), then daemon_start() binds, drops privileges and
 * starts the workers, and daemon_run() serves signals until a stop. The
 * signals the daemon handles are blocked before any thread exists, so only
 * the main thread's signalfd ever sees them.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgktls/certgen.h"
#include "pgktls/config.h"
#include "pgktls/daemon.h"
#include "pgktls/log.h"
#include "pgktls/tls.h"
#include "pgktls/worker.h"

#define MAX_OVERRIDES 128

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: pgktls [-c FILE] [OPTIONS]\n"
		"TLS-terminating proxy for PostgreSQL with kernel TLS offload.\n"
		"\n"
		"  -c, --config FILE        configuration file (pgktls.toml)\n"
		"      --check-config       validate the configuration (files, keys, certificates)\n"
		"                           and exit: 0 if good, 1 if not\n"
		"      --generate-cert DIR  write a test CA, server and client certificate\n"
		"                           (for the -H names) to DIR, and exit\n"
		"  -H, --host ADDRS         listen addresses, comma-separated (general.host)\n"
		"  -p, --port PORT          listen port (general.port)\n"
		"  -u, --upstream TARGET    PostgreSQL: HOST:PORT, [V6ADDR]:PORT, or a unix socket\n"
		"                           directory or file (starting with /)\n"
		"      --cert FILE          certificate chain for clients (general.tls_certificate)\n"
		"      --key FILE           its private key (general.tls_private_key)\n"
		"      --tls-verify MODE    upstream TLS: disable, prefer, verify_ca, verify_full\n"
		"      --server-ca FILE     CA bundle for upstream verification, or 'system'\n"
		"      --workers N          worker threads (0 = one per CPU)\n"
		"      --log-level LEVEL    error, warn, info or debug\n"
		"  -o, --set KEY=VALUE      set any configuration key, e.g. -o upstream.port=5433\n"
		"  -V, --version            print the version and exit\n"
		"  -h, --help               print this help and exit\n"
		"\n"
		"Command-line settings override the file, also across reloads (SIGHUP).\n"
		"See pgktls(8) and pgktls.toml(5).\n");
}

/* --upstream HOST:PORT | [V6]:PORT | /unix/path, as overrides of upstream.*. */
static int upstream_overrides(const char *arg, struct daemon_override *o, size_t *n,
			      char *store, size_t storelen)
{
	const char *host = arg, *port = NULL;
	size_t hostlen;

	if (arg[0] == '/') {
		o[(*n)++] = (struct daemon_override){ "upstream.unix_socket", arg, "--upstream" };
		return 0;
	}
	if (arg[0] == '[') {
		const char *end = strchr(arg, ']');

		if (!end || (end[1] != ':' && end[1] != '\0'))
			return -EINVAL;
		host = arg + 1;
		hostlen = (size_t)(end - host);
		port = end[1] == ':' ? end + 2 : NULL;
	} else {
		const char *colon = strrchr(arg, ':');

		hostlen = colon ? (size_t)(colon - arg) : strlen(arg);
		port = colon ? colon + 1 : NULL;
	}
	if (hostlen == 0 || hostlen >= storelen)
		return -EINVAL;
	memcpy(store, host, hostlen);
	store[hostlen] = '\0';
	o[(*n)++] = (struct daemon_override){ "upstream.host", store, "--upstream" };
	if (port)
		o[(*n)++] = (struct daemon_override){ "upstream.port", port, "--upstream" };
	return 0;
}

enum {
	OPT_CHECK = 256,
	OPT_CERT,
	OPT_KEY,
	OPT_TLS_VERIFY,
	OPT_SERVER_CA,
	OPT_WORKERS,
	OPT_LOG_LEVEL,
	OPT_GENERATE_CERT,
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, OPT_CHECK },
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "upstream", required_argument, NULL, 'u' },
		{ "cert", required_argument, NULL, OPT_CERT },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "tls-verify", required_argument, NULL, OPT_TLS_VERIFY },
		{ "server-ca", required_argument, NULL, OPT_SERVER_CA },
		{ "workers", required_argument, NULL, OPT_WORKERS },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "generate-cert", required_argument, NULL, OPT_GENERATE_CERT },
		{ "set", required_argument, NULL, 'o' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct daemon_override overrides[MAX_OVERRIDES];
	static char upstream_host[256];
	struct daemon d = { .overrides = overrides, .handover_fd = -1 };
	static char **argv_copy;	/* static: reachable until exit (no leak report) */
	struct pgktls_config *cfg;
	struct runtime *rt;
	char err[1024];
	bool check_only = false;
	const char *gencert_dir = NULL, *gencert_hosts = NULL;
	enum log_level lvl;
	sigset_t sigs;
	size_t n = 0;
	int opt, status;

	/* Before OpenSSL allocates anything: wipe what it frees (session keys). */
	if (tls_wipe_freed_memory() < 0)
		fprintf(stderr, "pgktls: warning: OpenSSL allocated before start-up; freed "
				"session keys will not be wiped\n");

	/* An upgrade starts the new binary with these: before getopt permutes and -o edits them. */
	argv_copy = calloc((size_t)argc + 1, sizeof(*argv_copy));
	for (int i = 0; argv_copy && i < argc; i++)
		if (!(argv_copy[i] = strdup(argv[i])))
			argv_copy = NULL;	/* out of memory at start-up: no upgrades */
	d.argv = argv_copy;

	while ((opt = getopt_long(argc, argv, "c:H:p:u:o:Vh", opts, NULL)) != -1) {
		const char *key = NULL, *origin = NULL, *value = optarg;

		if (n + 2 > MAX_OVERRIDES) {
			fprintf(stderr, "pgktls: too many options\n");
			return DAEMON_EXIT_USAGE;
		}
		if (opt == 'H')
			gencert_hosts = optarg;	/* --generate-cert names the server by them */
		switch (opt) {
		case 'c': d.config_path = optarg; continue;
		case OPT_CHECK: check_only = true; continue;
		case OPT_GENERATE_CERT: gencert_dir = optarg; continue;
		case 'V': printf("pgktls %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		case 'u':
			if (upstream_overrides(optarg, overrides, &n, upstream_host,
					       sizeof(upstream_host)) < 0) {
				fprintf(stderr, "pgktls: --upstream: expected HOST:PORT, [ADDR]:PORT "
						"or /path, got '%s'\n", optarg);
				return DAEMON_EXIT_USAGE;
			}
			continue;
		case 'H': key = "host"; origin = "--host"; break;
		case 'p': key = "port"; origin = "--port"; break;
		case OPT_CERT: key = "tls_certificate"; origin = "--cert"; break;
		case OPT_KEY: key = "tls_private_key"; origin = "--key"; break;
		case OPT_TLS_VERIFY: key = "tls_verify"; origin = "--tls-verify"; break;
		case OPT_SERVER_CA: key = "tls_server_ca_certificate"; origin = "--server-ca"; break;
		case OPT_WORKERS: key = "workers"; origin = "--workers"; break;
		case OPT_LOG_LEVEL: key = "log_level"; origin = "--log-level"; break;
		case 'o': {
			char *eq = strchr(optarg, '=');

			if (!eq) {
				fprintf(stderr, "pgktls: -o: expected KEY=VALUE, got '%s'\n", optarg);
				return DAEMON_EXIT_USAGE;
			}
			*eq = '\0';
			key = optarg;
			value = eq + 1;
			origin = "-o";
			break;
		}
		default: usage(stderr); return DAEMON_EXIT_USAGE;
		}
		overrides[n++] = (struct daemon_override){ key, value, origin };
	}
	if (optind < argc) {
		fprintf(stderr, "pgktls: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return DAEMON_EXIT_USAGE;
	}
	if (gencert_dir) {
		/* Certificates for testing: no config is read. certgen skips wildcards. */
		const char *names[32];
		char hosts[1024], *save = NULL;
		size_t n_names = 0;

		snprintf(hosts, sizeof(hosts), "%s", gencert_hosts ? gencert_hosts : "localhost");
		for (char *h = strtok_r(hosts, ", \t", &save);
		     h && n_names < PGKTLS_ARRAY_SIZE(names); h = strtok_r(NULL, ", \t", &save))
			names[n_names++] = h;
		if (certgen_write_dir(gencert_dir, names, n_names, err, sizeof(err)) < 0) {
			fprintf(stderr, "pgktls: --generate-cert: %s\n", err);
			return 1;
		}
		printf("%s/ca.pem, ca.key: a new CA (give ca.pem to clients as sslrootcert)\n"
		       "%s/server.pem, server-chain.pem, server.key: signed by it, for %s, "
		       "localhost, 127.0.0.1, ::1\n"
		       "%s/client.pem, client.key: signed by it, CN %s\n",
		       gencert_dir, gencert_dir, gencert_hosts ? gencert_hosts : "localhost",
		       gencert_dir, CERTGEN_CLIENT_CN);
		return 0;
	}
	d.n_overrides = n;

	if (daemon_load_config(&d, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		daemon_handover_refuse(err);
		return DAEMON_EXIT_ERROR;
	}
	if (cfg->log_level && log_level_parse(cfg->log_level, &lvl) == 0)
		log_threshold = lvl;
	if (check_only)
		log_threshold = LOG_LVL_WARN;	/* no kTLS probe chatter for a config check */
	rt = runtime_new(cfg, err, sizeof(err));
	if (!rt) {
		fprintf(stderr, "%s\n", err);
		daemon_handover_refuse(err);
		return DAEMON_EXIT_ERROR;
	}
	if (check_only) {
		printf("%s: configuration OK\n", d.config_path ? d.config_path : "command line");
		runtime_put(rt);
		return 0;
	}

	/* Before any thread exists, so every thread inherits the mask. */
	signal(SIGPIPE, SIG_IGN);	/* OpenSSL writes with write(2), not MSG_NOSIGNAL */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT);
	sigaddset(&sigs, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	if (daemon_start(&d, rt) < 0) {
		daemon_fini(&d);
		return DAEMON_EXIT_ERROR;
	}
	status = daemon_run(&d);
	daemon_fini(&d);
	return status;
}
