// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * main.c - command line, start-up order, signal policy.
 *
 * Order: parse flags, load and validate config, build TLS contexts (so a
 * bad key is reported before anything binds), probe kTLS, bind every
 * listener for every worker, start workers, report ready, then wait for
 * signals in this thread. Workers never see signals (they are blocked
 * before any thread starts).
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgktls/certgen.h"
#include "pgktls/config.h"
#include "pgktls/log.h"
#include "pgktls/sock.h"
#include "pgktls/stats.h"
#include "pgktls/statsrv.h"
#include "pgktls/worker.h"

#define LISTEN_BACKLOG 4096

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
		"Command-line settings override the file. See pgktls(8) and pgktls.toml(5).\n");
}

/* --upstream HOST:PORT | [V6]:PORT | /unix/path */
static int set_upstream(struct pgktls_config *cfg, const char *arg, char *err, size_t errlen)
{
	char host[256];
	const char *colon;

	if (arg[0] == '/')
		return config_set(cfg, "upstream.unix_socket", arg, "--upstream", err, errlen);
	if (arg[0] == '[') {
		const char *end = strchr(arg, ']');

		if (!end || (end[1] != ':' && end[1] != '\0') || (size_t)(end - arg - 1) >= sizeof(host))
			goto bad;
		snprintf(host, sizeof(host), "%.*s", (int)(end - arg - 1), arg + 1);
		colon = end[1] == ':' ? end + 1 : NULL;
	} else {
		colon = strrchr(arg, ':');
		if ((size_t)(colon ? colon - arg : (ptrdiff_t)strlen(arg)) >= sizeof(host))
			goto bad;
		snprintf(host, sizeof(host), "%.*s",
			 (int)(colon ? colon - arg : (ptrdiff_t)strlen(arg)), arg);
	}
	if (config_set(cfg, "upstream.host", host, "--upstream", err, errlen) < 0)
		return -EINVAL;
	if (colon)
		return config_set(cfg, "upstream.port", colon + 1, "--upstream", err, errlen);
	return 0;
bad:
	snprintf(err, errlen, "--upstream: expected HOST:PORT, [ADDR]:PORT or /path, got '%s'",
		 arg);
	return -EINVAL;
}

/* Tell systemd (Type=notify) we are serving; silently nothing without NOTIFY_SOCKET. */
static void notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	static const char msg[] = "READY=1";
	size_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') || strlen(path) >= sizeof(un.sun_path))
		return;
	len = strlen(path);
	memcpy(un.sun_path, path, len);
	if (un.sun_path[0] == '@')
		un.sun_path[0] = '\0';	/* abstract namespace */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return;
	if (sendto(fd, msg, sizeof(msg) - 1, 0, (struct sockaddr *)&un,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) == -1)
		log_warn("sd_notify READY=1: %s", strerror(errno));
	close(fd);
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
	/* Flags are applied after the file, in order, so they override it. */
	struct {
		const char *key, *value, *origin;
	} sets[128];
	size_t n_sets = 0, n_workers;
	const char *path = NULL, *upstream_arg = NULL;
	struct pgktls_config *cfg;
	struct runtime *rt;
	struct worker *workers;
	struct statsrv *stats = NULL;
	char err[1024], addr[SOCK_ADDR_STRLEN], listening[512] = "";
	bool check_only = false;
	const char *gencert_dir = NULL, *gencert_hosts = NULL;
	enum log_level lvl;
	sigset_t sigs;
	int opt, sig, status = 0;

	while ((opt = getopt_long(argc, argv, "c:H:p:u:o:Vh", opts, NULL)) != -1) {
		const char *key = NULL, *origin = NULL;

		if (opt == 'H')
			gencert_hosts = optarg;	/* --generate-cert names the server by them */
		switch (opt) {
		case 'c': path = optarg; continue;
		case OPT_CHECK: check_only = true; continue;
		case OPT_GENERATE_CERT: gencert_dir = optarg; continue;
		case 'u': upstream_arg = optarg; continue;
		case 'V': printf("pgktls %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
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
				return 2;
			}
			*eq = '\0';
			key = optarg;
			sets[n_sets].value = eq + 1;
			origin = "-o";
			break;
		}
		default: usage(stderr); return 2;
		}
		if (n_sets == PGKTLS_ARRAY_SIZE(sets)) {
			fprintf(stderr, "pgktls: too many options\n");
			return 2;
		}
		sets[n_sets].key = key;
		if (opt != 'o')
			sets[n_sets].value = optarg;
		sets[n_sets].origin = origin;
		n_sets++;
	}
	if (optind < argc) {
		fprintf(stderr, "pgktls: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
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

	cfg = config_new_defaults();
	if (!cfg)
		fatal("out of memory");
	if (path && config_load_file(cfg, path, err, sizeof(err)) < 0)
		goto config_error;
	for (size_t i = 0; i < n_sets; i++)
		if (config_set(cfg, sets[i].key, sets[i].value, sets[i].origin, err, sizeof(err)) < 0)
			goto config_error;
	if (upstream_arg && set_upstream(cfg, upstream_arg, err, sizeof(err)) < 0)
		goto config_error;
	if (config_validate(cfg, err, sizeof(err)) < 0)
		goto config_error;
	if (cfg->log_level && log_level_parse(cfg->log_level, &lvl) == 0)
		log_threshold = lvl;
	if (check_only)
		log_threshold = LOG_LVL_WARN;	/* no kTLS probe chatter for a config check */

	rt = runtime_new(cfg, err, sizeof(err));
	if (!rt) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	cfg = (struct pgktls_config *)rt->cfg;
	if (check_only) {
		printf("%s: configuration OK\n", path ? path : "command line");
		runtime_put(rt);
		return 0;
	}

	/* Before any thread exists, so every worker inherits the mask. */
	signal(SIGPIPE, SIG_IGN);	/* OpenSSL writes with write(2), not MSG_NOSIGNAL */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	n_workers = cfg->workers ? cfg->workers : (size_t)sysconf(_SC_NPROCESSORS_ONLN);
	if (n_workers < 1)
		n_workers = 1;
	workers = calloc(n_workers, sizeof(*workers));
	if (!workers)
		fatal("out of memory");
	for (size_t i = 0; i < n_workers; i++)
		if (worker_init(&workers[i], (unsigned)i, rt) < 0)
			fatal("cannot create worker %zu: %s", i, strerror(errno));

	for (size_t h = 0; h < cfg->n_listen; h++) {
		struct sock_addr *addrs;
		size_t n;

		if (sock_resolve(cfg->listen[h].host, cfg->port, true, &addrs, &n, err, sizeof(err)) < 0)
			fatal("general.host: %s", err);
		for (size_t a = 0; a < n; a++) {
			sock_addr_str((struct sockaddr *)&addrs[a].ss, addrs[a].len, addr, sizeof(addr));
			/* One socket per worker: SO_REUSEPORT spreads accepts over cores. */
			for (size_t i = 0; i < n_workers; i++) {
				int fd = sock_listen(&addrs[a], LISTEN_BACKLOG);

				if (fd < 0)
					fatal("cannot listen on %s: %s", addr, strerror(-fd));
				if (worker_add_listener(&workers[i], fd) < 0)
					fatal("cannot listen on %s: out of memory", addr);
			}
			if (strlen(listening) + strlen(addr) + 3 < sizeof(listening))
				snprintf(listening + strlen(listening),
					 sizeof(listening) - strlen(listening), "%s%s",
					 listening[0] ? ", " : "", addr);
		}
		free(addrs);
	}
	for (size_t i = 0; i < n_workers; i++)
		if (worker_start(&workers[i]) < 0)
			fatal("cannot start worker thread %zu", i);
	if (cfg->stats_socket) {
		/* 0660: the owner and its group may read connection details, nobody else. */
		struct statsrv_opts so = { .path = cfg->stats_socket, .mode = 0660, .uid = -1,
					   .gid = -1 };
		int r = statsrv_start(&so, workers, n_workers, &stats);

		if (r < 0)
			fatal("general.stats_socket: cannot serve on %s: %s", cfg->stats_socket,
			      strerror(-r));
	}

	log_info("pgktls %s ready: listening on %s (%zu workers), upstream %s (%s)",
		 PACKAGE_VERSION, listening, n_workers, rt->upstream_str,
		 rt->tls.server_side ? config_verify_name(cfg->tls_verify) : "no TLS");
	notify_ready();

	for (;;) {
		sig = sigwaitinfo(&sigs, NULL);
		if (sig == -1) {
			if (errno == EINTR)
				continue;
			fatal("sigwaitinfo: %s", strerror(errno));
		}
		if (sig == SIGHUP) {
			STAT_INC(&stats_process, reloads_failed);
			log_warn("SIGHUP: configuration reload is not supported yet; ignoring");
			continue;
		}
		log_info("%s: stopping", strsignal(sig));
		break;
	}
	/* The stats thread reads the workers: it goes first. */
	statsrv_stop(stats);
	for (size_t i = 0; i < n_workers; i++)
		worker_stop(&workers[i]);
	for (size_t i = 0; i < n_workers; i++) {
		worker_join(&workers[i]);
		worker_fini(&workers[i]);
	}
	free(workers);
	runtime_put(rt);
	log_info("stopped");
	return status;

config_error:
	fprintf(stderr, "%s\n", err);
	config_free(cfg);
	return 1;
}
