// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * daemon.c - the process around the workers: start-up after the config is
 * known, reload, graceful shutdown, and the main thread's event loop.
 *
 * Reload builds a complete new runtime (config, TLS contexts from freshly
 * read files, upstream address) before touching anything; only when all of
 * it succeeded is it handed to the workers, each of which swaps it in
 * between events. A connection keeps the runtime it was accepted under, so
 * established sessions (offloaded or not) never notice a reload.
 */
#include "config.h"

#include "pgktls/daemon.h"

#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgktls/config.h"
#include "pgktls/ev.h"
#include "pgktls/identmap.h"
#include "pgktls/log.h"
#include "pgktls/sdlisten.h"
#include "pgktls/sock.h"
#include "pgktls/stats.h"
#include "pgktls/statsrv.h"
#include "pgktls/tls.h"
#include "pgktls/worker.h"

#define LISTEN_BACKLOG 4096
/* How often a draining daemon counts the connections still open. */
#define DRAIN_POLL_MS 100
/* Certificate rotators write several files: wait for them to settle. */
#define WATCH_DEBOUNCE_MS 300

int daemon_load_config(const struct daemon *d, struct pgktls_config **out, char *err,
		       size_t errlen)
{
	struct pgktls_config *cfg = config_new_defaults();

	*out = NULL;
	if (!cfg) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (d->config_path && config_load_file(cfg, d->config_path, err, errlen) < 0)
		goto err;
	for (size_t i = 0; i < d->n_overrides; i++) {
		const struct daemon_override *o = &d->overrides[i];

		if (config_set(cfg, o->key, o->value, o->origin, err, errlen) < 0)
			goto err;
	}
	if (config_validate(cfg, err, errlen) < 0)
		goto err;
	*out = cfg;
	return 0;
err:
	config_free(cfg);
	return -EINVAL;
}

/* Tell systemd (Type=notify) what we are doing; nothing without NOTIFY_SOCKET. */
static void sd_notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un un = { .sun_family = AF_UNIX };
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
	if (sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&un,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) == -1)
		log_warn("sd_notify %s: %s", msg, strerror(errno));
	close(fd);
}

static int write_pid_file(struct daemon *d, const char *path)
{
	char buf[32];
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd == -1) {
		log_err("general.pid_file: cannot write '%s': %s", path, strerror(errno));
		return -errno;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		log_err("general.pid_file: cannot write '%s': %s", path, strerror(errno));
		close(fd);
		return -EIO;
	}
	close(fd);
	d->pid_file_written = true;
	return 0;
}

/* After binding: become cfg->user / cfg->group for good. */
static int drop_privileges(const struct pgktls_config *cfg)
{
	struct passwd *pw = NULL;
	struct group *gr = NULL;
	gid_t gid;

	if (!cfg->user && !cfg->group)
		return 0;
	if (cfg->user && !(pw = getpwnam(cfg->user))) {
		log_err("general.user: no such user '%s'", cfg->user);
		return -ENOENT;
	}
	if (cfg->group && !(gr = getgrnam(cfg->group))) {
		log_err("general.group: no such group '%s'", cfg->group);
		return -ENOENT;
	}
	gid = gr ? gr->gr_gid : pw->pw_gid;
	/* Supplementary groups first, while we still may; then gid; uid last. */
	if ((pw ? initgroups(pw->pw_name, gid) : setgroups(1, &gid)) == -1 ||
	    setgid(gid) == -1 || (pw && setuid(pw->pw_uid) == -1)) {
		log_err("cannot drop privileges to %s%s%s: %s (start pgktls as root to use "
			"general.user / general.group)",
			cfg->user ? cfg->user : "", cfg->group ? ":" : "",
			cfg->group ? cfg->group : "", strerror(errno));
		return -EPERM;
	}
	log_info("running as %s%s%s (uid %ld, gid %ld)", cfg->user ? cfg->user : "",
		 cfg->group ? ":" : "", cfg->group ? cfg->group : "", (long)getuid(),
		 (long)getgid());
	return 0;
}

/* The stats socket's "reload" request. */
static int stats_reload(void *arg, char *msg, size_t msglen)
{
	return daemon_reload(arg, "stats socket", msg, msglen);
}

/* Append @addr to the "listening on" list of the ready line. */
static void note_listening(char *buf, size_t len, const char *addr)
{
	if (strlen(buf) + strlen(addr) + 3 < len)
		snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? ", " : "", addr);
}

/* The usual way: one SO_REUSEPORT socket per worker per configured address. */
static int bind_configured(struct daemon *d, char *listening, size_t len)
{
	const struct pgktls_config *cfg = d->rt->cfg;
	char err[512], addr[SOCK_ADDR_STRLEN];

	for (size_t h = 0; h < cfg->n_listen; h++) {
		struct sock_addr *addrs;
		size_t n;

		if (sock_resolve(cfg->listen[h].host, cfg->port, true, &addrs, &n, err,
				 sizeof(err)) < 0) {
			log_err("general.host: %s", err);
			return -EINVAL;
		}
		for (size_t a = 0; a < n; a++) {
			sock_addr_str((struct sockaddr *)&addrs[a].ss, addrs[a].len, addr,
				      sizeof(addr));
			/* One socket per worker: SO_REUSEPORT spreads accepts over cores. */
			for (size_t i = 0; i < d->n_workers; i++) {
				int fd = sock_listen(&addrs[a], LISTEN_BACKLOG);

				if (fd < 0) {
					log_err("cannot listen on %s: %s", addr, strerror(-fd));
					free(addrs);
					return fd;
				}
				if (worker_add_listener(&d->workers[i], fd) < 0) {
					close(fd);
					free(addrs);
					return -ENOMEM;
				}
			}
			note_listening(listening, len, addr);
			STAT_INC(&stats_process, listen_sockets);
		}
		free(addrs);
	}
	return 0;
}

/*
 * Socket activation: systemd bound one socket per address. Every worker gets
 * its own dup() of each (so each listener owns and closes its own fd); the
 * workers then share one accept queue per address, and the listener's
 * EPOLLEXCLUSIVE wakes one idle worker per new connection instead of all.
 */
static int use_inherited(struct daemon *d, const struct sdlisten *sd, char *listening,
			 size_t len)
{
	char addr[SOCK_ADDR_STRLEN], entry[SOCK_ADDR_STRLEN + 80];

	for (size_t s = 0; s < sd->n; s++) {
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);

		if (getsockname(sd->fds[s], (struct sockaddr *)&ss, &sslen) == -1)
			snprintf(addr, sizeof(addr), "fd %d", sd->fds[s]);
		else
			sock_addr_str((struct sockaddr *)&ss, sslen, addr, sizeof(addr));
		for (size_t i = 0; i < d->n_workers; i++) {
			int fd = fcntl(sd->fds[s], F_DUPFD_CLOEXEC, 0);

			if (fd == -1) {
				int e = errno;

				log_err("cannot use the socket on %s from systemd: dup: %s", addr,
					strerror(e));
				return -e;
			}
			if (worker_add_listener(&d->workers[i], fd) < 0) {
				close(fd);
				return -ENOMEM;
			}
		}
		snprintf(entry, sizeof(entry), "%s (from systemd%s%s)", addr,
			 sd->names[s][0] ? ": " : "", sd->names[s]);
		note_listening(listening, len, entry);
		STAT_INC(&stats_process, listen_sockets);
	}
	d->sockets_from_systemd = true;
	stats_process.listen_from_systemd = 1;
	log_info("socket activation: %zu listening socket(s) from systemd; general.host and "
		 "general.port are not used (the socket unit owns the addresses)", sd->n);
	return 0;
}

int daemon_start(struct daemon *d, struct runtime *rt)
{
	const struct pgktls_config *cfg = rt->cfg;
	char err[512], listening[1024] = "";
	struct sdlisten sd;
	size_t n_workers;
	int r;

	d->rt = rt;
	pthread_mutex_init(&d->reload_lock, NULL);
	/* Before any thread: this reads and unsets LISTEN_* in the environment. */
	r = sdlisten_take(&sd, SDLISTEN_FD_START, err, sizeof(err));
	if (r < 0) {
		log_err("socket activation: %s", err);
		sdlisten_fini(&sd);
		return r;
	}
	if (err[0])
		log_warn("socket activation: %s", err);
	n_workers = cfg->workers ? cfg->workers : (size_t)sysconf(_SC_NPROCESSORS_ONLN);
	if (n_workers < 1)
		n_workers = 1;
	d->workers = calloc(n_workers, sizeof(*d->workers));
	if (!d->workers) {
		sdlisten_fini(&sd);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_workers; i++) {
		r = worker_init(&d->workers[i], (unsigned)i, rt);
		if (r < 0) {
			log_err("cannot create worker %zu: %s", i, strerror(-r));
			sdlisten_fini(&sd);
			return r;
		}
		d->n_workers = i + 1;
	}
	r = sd.n ? use_inherited(d, &sd, listening, sizeof(listening))
		 : bind_configured(d, listening, sizeof(listening));
	/* The workers hold their own copies: the originals are closed either way. */
	sdlisten_fini(&sd);
	if (r < 0)
		return r;
	if (cfg->stats_socket || cfg->metrics_listen) {
		/* 0660: the owner and its group may read connection details, nobody else. */
		struct statsrv_opts so = {
			.path = cfg->stats_socket, .mode = 0660, .uid = -1, .gid = -1,
			.metrics_listen = cfg->metrics_listen,
			.reload = stats_reload, .reload_arg = d,
		};

		if (cfg->user || cfg->group) {
			/* Owned by the user we become, so it can still serve and unlink it. */
			struct passwd *pw = cfg->user ? getpwnam(cfg->user) : NULL;
			struct group *gr = cfg->group ? getgrnam(cfg->group) : NULL;

			so.uid = pw ? (long)pw->pw_uid : -1;
			so.gid = gr ? (long)gr->gr_gid : pw ? (long)pw->pw_gid : -1;
		}
		r = statsrv_start(&so, d->workers, d->n_workers, &d->stats);
		if (r < 0) {
			log_err("cannot serve statistics (stats_socket %s, metrics_listen %s): %s",
				cfg->stats_socket ? cfg->stats_socket : "unset",
				cfg->metrics_listen ? cfg->metrics_listen : "unset", strerror(-r));
			return r;
		}
	}
	if (cfg->pid_file && (r = write_pid_file(d, cfg->pid_file)) < 0)
		return r;
	r = drop_privileges(cfg);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_workers; i++) {
		r = worker_start(&d->workers[i]);
		if (r < 0) {
			log_err("cannot start worker thread %zu: %s", i, strerror(-r));
			return r;
		}
		d->n_started = i + 1;
	}
	log_info("pgktls %s ready: listening on %s (%zu workers), upstream %s (%s)",
		 PACKAGE_VERSION, listening, n_workers, rt->upstream_str,
		 rt->tls.server_side ? config_verify_name(cfg->tls_verify) : "no TLS");
	sd_notify("READY=1");
	return 0;
}

/* Settings bound to sockets, threads or identity: a reload cannot change them. */
static void warn_fixed_settings(const struct pgktls_config *old, const struct pgktls_config *new,
				bool sockets_from_systemd)
{
	char changed[256] = "";
	bool hosts_differ = old->n_listen != new->n_listen;

#define STR_DIFFERS(a, b) (((a) == NULL) != ((b) == NULL) || ((a) && strcmp((a), (b)) != 0))
#define NOTE(cond, name)                                                                   \
	do {                                                                               \
		if (cond)                                                                  \
			snprintf(changed + strlen(changed), sizeof(changed) - strlen(changed), \
				 "%s%s", changed[0] ? ", " : "", name);                    \
	} while (0)
	for (size_t i = 0; !hosts_differ && i < old->n_listen; i++)
		hosts_differ = strcmp(old->listen[i].host, new->listen[i].host) != 0;
	/* Under socket activation the addresses are the socket unit's, never ours. */
	if (sockets_from_systemd && (hosts_differ || old->port != new->port))
		log_warn("reload: host/port changed, but the listening sockets come from systemd: "
			 "the socket unit (pgktls.socket) owns the addresses; edit it instead");
	NOTE(hosts_differ && !sockets_from_systemd, "host");
	NOTE(old->port != new->port && !sockets_from_systemd, "port");
	NOTE(old->workers != new->workers, "workers");
	NOTE(STR_DIFFERS(old->stats_socket, new->stats_socket), "stats_socket");
	NOTE(STR_DIFFERS(old->metrics_listen, new->metrics_listen), "metrics_listen");
	NOTE(STR_DIFFERS(old->user, new->user), "user");
	NOTE(STR_DIFFERS(old->group, new->group), "group");
	NOTE(STR_DIFFERS(old->pid_file, new->pid_file), "pid_file");
	NOTE(old->watch_certificates != new->watch_certificates, "watch_certificates");
#undef NOTE
#undef STR_DIFFERS
	if (changed[0])
		log_warn("reload: %s changed, but cannot change while running: the old values "
			 "stay until pgktls is restarted",
			 changed);
}

int daemon_reload(struct daemon *d, const char *why, char *msg, size_t msglen)
{
	struct pgktls_config *cfg;
	struct runtime *rt;
	char err[1024];
	enum log_level lvl;
	int r = -EINVAL;

	pthread_mutex_lock(&d->reload_lock);
	log_info("%s: reloading %s", why, d->config_path ? d->config_path : "command-line settings");
	if (daemon_load_config(d, &cfg, err, sizeof(err)) < 0)
		goto fail;
	/* Reads every certificate, key and CA file again, even at unchanged paths. */
	rt = runtime_new(cfg, err, sizeof(err));
	if (!rt)
		goto fail;
	warn_fixed_settings(d->rt->cfg, rt->cfg, d->sockets_from_systemd);
	for (size_t i = 0; i < d->n_workers; i++) {
		if (worker_set_runtime(&d->workers[i], rt) < 0) {
			/* Workers already switched keep a valid runtime: no harm, but say so. */
			snprintf(err, sizeof(err), "out of memory handing the new configuration to "
						   "worker %zu", i);
			runtime_put(rt);
			goto fail;
		}
	}
	if (rt->cfg->log_level && log_level_parse(rt->cfg->log_level, &lvl) == 0)
		log_threshold = lvl;
	runtime_put(d->rt);
	d->rt = rt;
	STAT_INC(&stats_process, reloads_ok);
	snprintf(msg, msglen, "reloaded: new connections use the new configuration and "
			      "certificates; established connections are unchanged");
	log_info("%s: %s", why, msg);
	r = 0;
	goto out;
fail:
	STAT_INC(&stats_process, reloads_failed);
	snprintf(msg, msglen, "reload failed, the previous configuration stays in use: %s", err);
	log_err("%s: %s", why, msg);
out:
	pthread_mutex_unlock(&d->reload_lock);
	return r;
}

/* ---- the main thread's loop ---- */

struct mainloop {
	struct daemon *d;
	struct ev_loop *loop;
	struct ev_io sig_io;
	struct ev_io watch_io;		/* inotify; fd -1 when not watching */
	struct ev_timer debounce;	/* a burst of file events becomes one reload */
	struct ev_timer drain;		/* polls the open connection count while draining */
	uint64_t drain_deadline;
	bool draining;
	int status;
};

static uint64_t active_connections(const struct daemon *d)
{
	uint64_t n = 0;

	for (size_t i = 0; i < d->n_workers; i++)
		n += worker_active(&d->workers[i]);
	return n;
}

static void stop_now(struct mainloop *m, const char *why)
{
	uint64_t open = active_connections(m->d);

	if (open) {
		log_warn("%s: closing %llu open connection(s)", why, (unsigned long long)open);
		m->status = DAEMON_EXIT_CUT;
	}
	ev_loop_break(m->loop);
}

static void drain_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct mainloop *m = container_of(t, struct mainloop, drain);
	uint64_t open = active_connections(m->d);

	if (open == 0) {
		log_info("every connection has finished");
		ev_loop_break(loop);
		return;
	}
	if (ev_now(loop) >= m->drain_deadline) {
		stop_now(m, "shutdown_timeout reached");
		return;
	}
	ev_timer_start(loop, t, DRAIN_POLL_MS);
}

static void start_drain(struct mainloop *m)
{
	const struct pgktls_config *cfg = m->d->rt->cfg;

	m->draining = true;
	sd_notify("STOPPING=1");
	for (size_t i = 0; i < m->d->n_workers; i++)
		worker_drain(&m->d->workers[i]);
	log_info("SIGTERM: no longer accepting; waiting up to %u ms for %llu open connection(s)",
		 cfg->shutdown_timeout, (unsigned long long)active_connections(m->d));
	m->drain_deadline = ev_now(m->loop) + cfg->shutdown_timeout;
	ev_timer_start(m->loop, &m->drain, 0);
}

static void do_reload(struct mainloop *m, const char *why)
{
	char msg[1200];

	sd_notify("RELOADING=1");
	(void)daemon_reload(m->d, why, msg, sizeof(msg));
	sd_notify("READY=1");
}

static void signal_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct mainloop *m = container_of(io, struct mainloop, sig_io);
	struct signalfd_siginfo si;

	while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			do_reload(m, "SIGHUP");
			break;
		case SIGTERM:
			if (m->draining || m->d->rt->cfg->shutdown_timeout == 0)
				stop_now(m, "SIGTERM");
			else
				start_drain(m);
			break;
		default:	/* SIGINT, SIGQUIT: now */
			stop_now(m, strsignal((int)si.ssi_signo));
			break;
		}
	}
}

static void debounce_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct mainloop *m = container_of(t, struct mainloop, debounce);

	do_reload(m, "certificate files changed");
}

static void watch_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct mainloop *m = container_of(io, struct mainloop, watch_io);
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	/* Any change in a watched directory: rotators rename, symlink-swap or rewrite. */
	while (read(io->fd, buf, sizeof(buf)) > 0)
		;
	ev_timer_start(loop, &m->debounce, WATCH_DEBOUNCE_MS);
}

/* Watch the directory of @file (and @file itself if it is a CRL directory). */
static bool watch_file(int fd, const char *file)
{
	char copy[4096];
	struct stat st;

	if (!file || strcmp(file, "system") == 0)
		return false;
	snprintf(copy, sizeof(copy), "%s", file);
	/* A CRL directory (HASH.r0 files): what changes is inside it. */
	if (stat(file, &st) == 0 && S_ISDIR(st.st_mode) &&
	    inotify_add_watch(fd, file, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE |
					    IN_ATTRIB) == -1)
		log_warn("watch_certificates: cannot watch the directory '%s': %s", file,
			 strerror(errno));
	if (inotify_add_watch(fd, dirname(copy), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE |
						 IN_DELETE | IN_ATTRIB) == -1) {
		log_warn("watch_certificates: cannot watch the directory of '%s': %s", file,
			 strerror(errno));
		return false;
	}
	return true;
}

/*
 * Watch the directories of every file the TLS contexts are built from (CRLs
 * included, and the identity map with each certificate and key it names).
 */
static void start_watching(struct mainloop *m)
{
	const struct pgktls_config *cfg = m->d->rt->cfg;
	const struct tls_contexts *tls = &m->d->rt->tls;
	const char *files[] = { cfg->tls_certificate, cfg->tls_private_key,
				cfg->tls_client_ca_certificate, cfg->tls_server_ca_certificate,
				cfg->tls_server_certificate, cfg->tls_server_private_key,
				cfg->tls_client_crl, cfg->tls_server_crl,
				cfg->tls_server_identity_map, m->d->config_path };
	int fd, n = 0;

	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd == -1) {
		log_warn("watch_certificates: inotify: %s; reload with SIGHUP instead",
			 strerror(errno));
		return;
	}
	for (size_t i = 0; i < PGKTLS_ARRAY_SIZE(files); i++)
		n += watch_file(fd, files[i]);
	for (size_t i = 0; tls->identity_map && i < tls->identity_map->n; i++) {
		n += watch_file(fd, tls->identity_map->entries[i].cert_file);
		n += watch_file(fd, tls->identity_map->entries[i].key_file);
	}
	if (n == 0) {
		close(fd);
		return;
	}
	ev_io_init(&m->watch_io, fd, watch_cb);
	if (ev_io_set(m->loop, &m->watch_io, EPOLLIN) < 0) {
		close(fd);
		m->watch_io.fd = -1;
		return;
	}
	log_info("watch_certificates: reloading when certificate files change");
}

int daemon_run(struct daemon *d)
{
	struct mainloop m = { .d = d, .status = DAEMON_EXIT_OK };
	sigset_t sigs;
	int fd;

	m.loop = ev_loop_new();
	if (!m.loop) {
		log_err("cannot create the main loop: %s", strerror(errno));
		return DAEMON_EXIT_ERROR;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGQUIT);
	fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd == -1) {
		log_err("signalfd: %s", strerror(errno));
		ev_loop_free(m.loop);
		return DAEMON_EXIT_ERROR;
	}
	ev_io_init(&m.sig_io, fd, signal_cb);
	ev_io_init(&m.watch_io, -1, watch_cb);
	ev_timer_init(&m.debounce, debounce_cb);
	ev_timer_init(&m.drain, drain_cb);
	if (ev_io_set(m.loop, &m.sig_io, EPOLLIN) < 0) {
		log_err("epoll: %s", strerror(errno));
		close(fd);
		ev_loop_free(m.loop);
		return DAEMON_EXIT_ERROR;
	}
	if (d->rt->cfg->watch_certificates)
		start_watching(&m);
	if (ev_run(m.loop) < 0) {
		log_err("main loop: %s", strerror(errno));
		m.status = DAEMON_EXIT_ERROR;
	}
	log_info("stopping");
	ev_io_stop(m.loop, &m.sig_io);
	close(fd);
	if (m.watch_io.fd >= 0) {
		ev_io_stop(m.loop, &m.watch_io);
		close(m.watch_io.fd);
	}
	ev_loop_free(m.loop);
	return m.status;
}

void daemon_fini(struct daemon *d)
{
	/* The stats thread reads the workers: it goes first. */
	statsrv_stop(d->stats);
	d->stats = NULL;
	for (size_t i = 0; i < d->n_started; i++)
		worker_stop(&d->workers[i]);
	for (size_t i = 0; i < d->n_started; i++)
		worker_join(&d->workers[i]);
	for (size_t i = 0; i < d->n_workers; i++)
		worker_fini(&d->workers[i]);
	free(d->workers);
	d->workers = NULL;
	d->n_workers = 0;
	if (d->pid_file_written && d->rt && d->rt->cfg->pid_file &&
	    unlink(d->rt->cfg->pid_file) == -1)
		log_warn("general.pid_file: cannot remove '%s': %s", d->rt->cfg->pid_file,
			 strerror(errno));
	runtime_put(d->rt);
	d->rt = NULL;
	pthread_mutex_destroy(&d->reload_lock);
	log_info("stopped");
}
