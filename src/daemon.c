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
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgktls/config.h"
#include "pgktls/ev.h"
#include "pgktls/handover.h"
#include "pgktls/identmap.h"
#include "pgktls/log.h"
#include "pgktls/sdlisten.h"
#include "pgktls/sessmove.h"
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
/*
 * How long a new process may take from its start to READY (config, TLS
 * contexts, passphrase commands, kTLS probe) before the upgrade is given up.
 */
#define UPGRADE_TIMEOUT_MS 30000
/* Each step of the conversation, seen from the new process. */
#define HANDOVER_STEP_MS 10000
/*
 * After COMMIT, how long the old process keeps offering sessions (a pass
 * every DRAIN_POLL_MS): one still in its handshake, or with more bytes in
 * flight than a SESSION holds, moves once it can; after that, what is left
 * drains here.
 */
#define OFFER_WINDOW_MS 3000

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
	/* Started by an upgrade from a process that had dropped them already. */
	if ((!pw || (getuid() == pw->pw_uid && geteuid() == pw->pw_uid)) && getgid() == gid &&
	    getegid() == gid && getuid() != 0)
		return 0;
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

/* Remember listening socket @fd (owned elsewhere) for an upgrade to hand over. */
static int note_lsock(struct daemon *d, int fd, unsigned kind)
{
	struct daemon_lsock *l = realloc(d->lsocks, (d->n_lsocks + 1) * sizeof(*l));

	if (!l)
		return -ENOMEM;
	d->lsocks = l;
	d->lsocks[d->n_lsocks++] = (struct daemon_lsock){ .fd = fd, .kind = kind };
	return 0;
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
				if (note_lsock(d, fd, HANDOVER_L_TCP) < 0) {
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
			/* One copy is enough to hand over: the new process dups its own. */
			if (i == 0 && note_lsock(d, fd, HANDOVER_L_TCP_SHARED) < 0)
				return -ENOMEM;
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

/* ---- a process started by an upgrade: take over from the old one ---- */

/* What the old process handed over, until daemon_start() gives each socket its owner. */
struct adoption {
	pid_t old_pid;
	bool sessions;		/* HANDOVER_F_SESSIONS: SESSIONs follow COMMIT */
	size_t n;
	struct daemon_lsock socks[SDLISTEN_MAX * 64];
};

/*
 * New side: the version our answers are written in: the old process's hello's
 * when we speak it (a version-1 old process reads only version 1), else ours
 * (the header is frozen and a REFUSE reads the same in every version). Only
 * the main thread writes it, before any worker runs.
 */
static uint16_t talk_version = HANDOVER_VERSION;
/* New side: HANDOVER_ENV_TEST_NACK was set (read once, before any worker runs). */
static bool test_nack;
/* New side: HANDOVER_ENV_TEST_CRASH=session: die at the first SESSION, unanswered. */
static bool test_crash_session;

void daemon_handover_refuse(const char *why)
{
	struct handover_msg m = { .version = talk_version, .type = HANDOVER_REFUSE };
	int fd = handover_child_fd();

	if (fd < 0)
		return;
	m.u.refuse.reason = HANDOVER_R_START;
	m.u.refuse.version = HANDOVER_VERSION;
	snprintf(m.u.refuse.text, sizeof(m.u.refuse.text), "%s", why);
	if (handover_send(fd, &m, -1, HANDOVER_STEP_MS) < 0)
		log_debug("upgrade: could not tell the old process why we stop");
	close(fd);
}

/* Say no to the old process, which keeps serving; @fmt is for both logs. */
static void refuse(int fd, unsigned reason, uint16_t version, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void refuse(int fd, unsigned reason, uint16_t version, const char *fmt, ...)
{
	struct handover_msg m = { .version = talk_version, .type = HANDOVER_REFUSE };
	va_list ap;

	m.u.refuse.reason = reason;
	m.u.refuse.version = version;
	va_start(ap, fmt);
	vsnprintf(m.u.refuse.text, sizeof(m.u.refuse.text), fmt, ap);
	va_end(ap);
	log_err("upgrade: refusing the takeover: %s", m.u.refuse.text);
	if (handover_send(fd, &m, -1, HANDOVER_STEP_MS) < 0)
		log_warn("upgrade: the old process did not take our refusal");
}

/*
 * The conversation up to READY, seen from the new process: the old one's
 * hello (refused when its version is not ours), then its listening sockets.
 * Return: 0 with @ad filled, or -errno (the old process keeps serving).
 */
static int adopt_receive(int fd, struct adoption *ad)
{
	const char *knob = getenv(HANDOVER_ENV_TEST_VERSION);
	unsigned only = knob ? (unsigned)strtoul(knob, NULL, 10) : 0;
	const char *crash_at = getenv(HANDOVER_ENV_TEST_CRASH);
	bool crash = crash_at && strcmp(crash_at, "session") != 0;
	struct handover_msg m;
	uint32_t expected;
	bool speak;
	int r, got;

	/* A knob is for this process only, not for the one a later upgrade starts. */
	test_nack = getenv(HANDOVER_ENV_TEST_NACK) != NULL;
	test_crash_session = crash_at && !crash;
	unsetenv(HANDOVER_ENV_TEST_VERSION);
	unsetenv(HANDOVER_ENV_TEST_CRASH);
	unsetenv(HANDOVER_ENV_TEST_NACK);
	ad->n = 0;
	r = handover_recv(fd, &m, &got, HANDOVER_STEP_MS);
	/*
	 * Any version we speak is answered in that version: a phase-1 (version 1)
	 * process can hand over to us. The test knob narrows it to one (made up)
	 * version, to force a refusal, or to version 1, to act as an older binary.
	 */
	speak = only ? m.version == only
		     : m.version >= HANDOVER_VERSION_MIN && m.version <= HANDOVER_VERSION;
	if (only >= HANDOVER_VERSION_MIN && only <= HANDOVER_VERSION)
		talk_version = (uint16_t)only;	/* as a binary that speaks only that one would */
	else if (speak)
		talk_version = m.version;
	if (r == -EPROTONOSUPPORT || (r == 0 && !speak)) {
		unsigned ours = only ? only : HANDOVER_VERSION;

		refuse(fd, HANDOVER_R_VERSION, (uint16_t)ours,
		       "the old process speaks handover version %u, this binary version %u%s",
		       m.version, ours, only ? "" : " (and older ones down to 1)");
		return -EPROTONOSUPPORT;
	}
	if (r < 0 || m.type != HANDOVER_HELLO) {
		refuse(fd, HANDOVER_R_PROTOCOL, talk_version, "expected a hello, got %s (%s)",
		       r < 0 ? "nothing" : handover_type_name(m.type), strerror(-r));
		if (r == 0)
			handover_msg_fini(&m);
		return r < 0 ? r : -EPROTO;
	}
	/* Version 1 has no features; version 2 knows HANDOVER_F_KNOWN. */
	if ((m.u.hello.features & ~(talk_version >= 2 ? HANDOVER_F_KNOWN : 0u)) != 0 ||
	    m.u.hello.listeners > PGKTLS_ARRAY_SIZE(ad->socks)) {
		refuse(fd, HANDOVER_R_VERSION, talk_version,
		       "unknown features 0x%x or too many listeners (%u)", m.u.hello.features,
		       m.u.hello.listeners);
		return -EPROTONOSUPPORT;
	}
	ad->sessions = (m.u.hello.features & HANDOVER_F_SESSIONS) != 0;
	ad->old_pid = (pid_t)m.u.hello.pid;
	expected = m.u.hello.listeners;
	m = (struct handover_msg){ .version = talk_version, .type = HANDOVER_ACCEPT };
	m.u.accept.pid = (uint32_t)getpid();
	r = handover_send(fd, &m, -1, HANDOVER_STEP_MS);
	if (r < 0)
		return r;
	for (;;) {
		r = handover_recv(fd, &m, &got, HANDOVER_STEP_MS);
		if (r < 0)
			goto err;
		if (m.type == HANDOVER_LISTENERS_END)
			break;
		if (m.type != HANDOVER_LISTENER || m.version != talk_version || got < 0 ||
		    ad->n >= expected) {
			if (got >= 0)
				close(got);
			handover_msg_fini(&m);	/* a SESSION's, before its time */
			r = -EPROTO;
			goto err;
		}
		ad->socks[ad->n++] = (struct daemon_lsock){ .fd = got, .kind = m.u.listener.kind };
	}
	if (m.u.listeners_end.count != ad->n || ad->n != expected) {
		r = -EPROTO;
		goto err;
	}
	if (crash) {
		log_err("upgrade: %s is set: crashing with the listening sockets in hand",
			HANDOVER_ENV_TEST_CRASH);
		abort();
	}
	return 0;
err:
	refuse(fd, HANDOVER_R_PROTOCOL, talk_version, "the listening sockets did not arrive "
	       "whole: %s", strerror(-r));
	for (size_t i = 0; i < ad->n; i++)
		close(ad->socks[i].fd);
	ad->n = 0;
	return r;
}

/*
 * Give every handed-over client socket to the workers: a worker's own
 * SO_REUSEPORT socket to one worker each (round robin when the worker count
 * changed, so none is left unserved: its queue would fill unanswered), a
 * shared one to every worker as its own dup(). The stats sockets stay in
 * @ad for statsrv_start(). Never binds: no moment without a listener.
 */
static int adopt_listeners(struct daemon *d, struct adoption *ad, char *listening, size_t len)
{
	char addr[SOCK_ADDR_STRLEN], key[SOCK_ADDR_STRLEN + 2], seen[4096] = "|";
	size_t next = 0, n_tcp = 0;

	for (size_t s = 0; s < ad->n; s++) {
		struct daemon_lsock *l = &ad->socks[s];
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);
		int fd = l->fd;

		if (l->kind != HANDOVER_L_TCP && l->kind != HANDOVER_L_TCP_SHARED)
			continue;
		if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1)
			snprintf(addr, sizeof(addr), "fd %d", fd);
		else
			sock_addr_str((struct sockaddr *)&ss, sslen, addr, sizeof(addr));
		/* One line per address, however many sockets share it ("|a|b|": whole entries). */
		snprintf(key, sizeof(key), "|%s|", addr);
		if (!strstr(seen, key)) {
			snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s|", addr);
			note_listening(listening, len, addr);
			STAT_INC(&stats_process, listen_sockets);
		}
		l->fd = -1;	/* from here on a listener owns it */
		n_tcp++;
		if (l->kind == HANDOVER_L_TCP) {
			struct worker *w = &d->workers[next++ % d->n_workers];

			if (worker_add_listener(w, fd) < 0) {
				close(fd);
				return -ENOMEM;
			}
			if (note_lsock(d, fd, HANDOVER_L_TCP) < 0)
				return -ENOMEM;
			continue;
		}
		d->sockets_from_systemd = true;
		stats_process.listen_from_systemd = 1;
		for (size_t i = 0; i < d->n_workers; i++) {
			int dup_fd = i + 1 < d->n_workers ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : fd;

			if (dup_fd == -1) {
				int e = errno;

				close(fd);
				return -e;
			}
			if (worker_add_listener(&d->workers[i], dup_fd) < 0) {
				close(dup_fd);
				if (dup_fd != fd)
					close(fd);
				return -ENOMEM;
			}
			if (i == 0 && note_lsock(d, dup_fd, HANDOVER_L_TCP_SHARED) < 0)
				return -ENOMEM;
		}
	}
	if (n_tcp == 0) {
		log_err("upgrade: the old process handed over no client listening socket");
		return -EINVAL;
	}
	if (next && next < d->n_workers)
		log_warn("upgrade: %zu listening socket(s) for %zu workers: some workers will not "
			 "accept (set workers as the old process had it)", next, d->n_workers);
	stats_process.adopted_listeners = ad->n;
	stats_process.adopted_from_pid = (uint64_t)ad->old_pid;
	stats_process.previous_running = 1;
	log_info("upgrade: took over %zu listening socket(s) from pid %ld; general.host and "
		 "general.port are not read again", ad->n, (long)ad->old_pid);
	return 0;
}

/* The handed-over stats socket or metrics socket of @kind, taken out of @ad (-1: none). */
static int adopt_take(struct adoption *ad, unsigned kind)
{
	for (size_t s = 0; s < ad->n; s++) {
		int fd = ad->socks[s].fd;

		if (ad->socks[s].kind == kind && fd >= 0) {
			ad->socks[s].fd = -1;
			return fd;
		}
	}
	return -1;
}

/* Whatever was handed over and found no owner (a stats socket no longer configured). */
static void adoption_fini(struct adoption *ad)
{
	for (size_t s = 0; ad && s < ad->n; s++)
		if (ad->socks[s].fd >= 0)
			close(ad->socks[s].fd);
	free(ad);
}

/* An inherited stats socket serves only if it is bound to the configured path. */
static int stats_fd_for(int fd, const char *path)
{
	struct sockaddr_un un;
	socklen_t len = sizeof(un);

	if (fd < 0)
		return -1;
	if (path && getsockname(fd, (struct sockaddr *)&un, &len) == 0 &&
	    len > offsetof(struct sockaddr_un, sun_path) &&
	    strncmp(un.sun_path, path, sizeof(un.sun_path)) == 0)
		return fd;
	close(fd);
	return -1;
}

int daemon_start(struct daemon *d, struct runtime *rt)
{
	const struct pgktls_config *cfg = rt->cfg;
	char err[512], listening[1024] = "";
	struct adoption *ad = NULL;
	struct sdlisten sd;
	size_t n_workers;
	int r, hfd;

	d->rt = rt;
	d->handover_fd = -1;
	pthread_mutex_init(&d->reload_lock, NULL);
	if (readlink("/proc/self/exe", d->exe, sizeof(d->exe) - 1) < 0)
		d->exe[0] = '\0';	/* upgrades then need upgrade_binary */
	/* Started by an upgrade? Then the old process holds the sockets for us. */
	hfd = handover_child_fd();
	if (hfd != -ENOENT) {
		if (hfd < 0) {
			log_err("upgrade: %s is set but names no handover socket: %s",
				HANDOVER_ENV_FD, strerror(-hfd));
			return hfd;
		}
		d->handover_fd = hfd;
		ad = calloc(1, sizeof(*ad));
		if (!ad) {
			refuse(hfd, HANDOVER_R_START, talk_version, "out of memory");
			return -ENOMEM;
		}
		r = adopt_receive(hfd, ad);
		if (r < 0) {
			free(ad);
			return r;
		}
		d->handover_version = talk_version;
		d->handover_sessions = ad->sessions;
	}
	/* Before any thread: this reads and unsets LISTEN_* in the environment. */
	r = sdlisten_take(&sd, SDLISTEN_FD_START, err, sizeof(err));
	if (r < 0) {
		log_err("socket activation: %s", err);
		sdlisten_fini(&sd);
		adoption_fini(ad);
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
		adoption_fini(ad);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_workers; i++) {
		r = worker_init(&d->workers[i], (unsigned)i, rt);
		if (r < 0) {
			log_err("cannot create worker %zu: %s", i, strerror(-r));
			sdlisten_fini(&sd);
			adoption_fini(ad);
			return r;
		}
		d->n_workers = i + 1;
	}
	r = ad     ? adopt_listeners(d, ad, listening, sizeof(listening))
	    : sd.n ? use_inherited(d, &sd, listening, sizeof(listening))
		   : bind_configured(d, listening, sizeof(listening));
	/* The workers hold their own copies: the originals are closed either way. */
	sdlisten_fini(&sd);
	if (r < 0) {
		if (ad)
			refuse(d->handover_fd, HANDOVER_R_START, talk_version,
			       "cannot serve the listening sockets: %s", strerror(-r));
		adoption_fini(ad);
		return r;
	}
	if (cfg->stats_socket || cfg->metrics_listen) {
		/* 0660: the owner and its group may read connection details, nobody else. */
		struct statsrv_opts so = {
			.path = cfg->stats_socket, .mode = 0660, .uid = -1, .gid = -1,
			.metrics_listen = cfg->metrics_listen,
			.reload = stats_reload, .reload_arg = d,
			.inherit = ad != NULL,
			.inherit_fd = ad ? stats_fd_for(adopt_take(ad, HANDOVER_L_STATS),
							cfg->stats_socket) : -1,
			.inherit_http_fd = ad && cfg->metrics_listen
						   ? adopt_take(ad, HANDOVER_L_METRICS) : -1,
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
			if (ad)
				refuse(d->handover_fd, HANDOVER_R_START, talk_version,
				       "cannot serve statistics: %s", strerror(-r));
			adoption_fini(ad);
			return r;
		}
		statsrv_listen_fds(d->stats, &so.inherit_fd, &so.inherit_http_fd);
		if ((so.inherit_fd >= 0 && note_lsock(d, so.inherit_fd, HANDOVER_L_STATS) < 0) ||
		    (so.inherit_http_fd >= 0 &&
		     note_lsock(d, so.inherit_http_fd, HANDOVER_L_METRICS) < 0)) {
			adoption_fini(ad);
			return -ENOMEM;
		}
	}
	adoption_fini(ad);	/* closes what found no owner */
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
	if (d->handover_fd >= 0) {
		struct handover_msg m = { .version = talk_version, .type = HANDOVER_READY };

		/*
		 * The old process is systemd's main PID: it moves MAINPID to us and
		 * says READY=1 (NotifyAccess=main would ignore our own message).
		 */
		m.u.ready.pid = (uint32_t)getpid();
		m.u.ready.listeners = (uint32_t)stats_process.adopted_listeners;
		r = handover_send(d->handover_fd, &m, -1, HANDOVER_STEP_MS);
		if (r < 0)
			log_warn("upgrade: could not tell the old process we are ready (%s); serving "
				 "anyway", strerror(-r));
		return 0;
	}
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

/* Where a binary upgrade stands, in the old process. */
enum upgrade_state {
	UPGRADE_NONE,		/* serving; SIGUSR2 starts one */
	UPGRADE_HANDING,	/* the new process runs; we still accept */
	UPGRADE_COMMITTED,	/* it is ready; we stopped accepting and drain */
};

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
	/* Old side: the new process and our end of the handover (fd -1: none). */
	enum upgrade_state upgrade;
	pid_t up_pid;
	struct ev_io up_io;
	struct ev_timer up_timer;	/* UPGRADE_TIMEOUT_MS to READY */
	uint64_t up_last_status;	/* the draining count last sent */
	uint16_t up_version;		/* our hello's: the conversation's version */
	uint32_t up_offered;		/* SESSIONs sent after COMMIT */
	uint32_t up_moved;		/* of those, ACKed: the new process has them */
	uint32_t up_kept;		/* open at COMMIT and staying here to drain */
	struct sessmove_offer *offer;	/* version 2, after COMMIT: sessions offered */
	uint64_t offer_until;		/* ev_now() when the passes stop */
	bool offer_ended;		/* SESSIONS_END sent (or the new process is gone) */
	/* New side: the old process's end while it drains (fd -1: gone). */
	struct ev_io prev_io;
	size_t adopt_next;		/* the worker the next SESSION goes to */
};

static void upgrade_fail(struct mainloop *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

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

	if (m->upgrade == UPGRADE_HANDING)
		upgrade_fail(m, "%s arrived during the handover", why);
	if (open) {
		log_warn("%s: closing %llu open connection(s)", why, (unsigned long long)open);
		m->status = DAEMON_EXIT_CUT;
	}
	ev_loop_break(m->loop);
}

static void send_status(struct mainloop *m, uint64_t open);
static void offer_tick(struct mainloop *m, uint64_t open);

static void drain_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct mainloop *m = container_of(t, struct mainloop, drain);
	bool accepting = false;
	uint64_t open;

	/*
	 * A worker that has not run its drain yet may still accept a client:
	 * ask first, then count (what it accepted before saying so is counted).
	 */
	for (size_t i = 0; i < m->d->n_workers; i++)
		accepting |= !worker_drained(&m->d->workers[i]);
	open = active_connections(m->d);
	offer_tick(m, open);
	send_status(m, open);
	/* Not before the offering is over: SESSIONS_END and its summary come first. */
	if (open == 0 && !accepting && (!m->offer || m->offer_ended)) {
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

static void start_drain(struct mainloop *m, const char *why)
{
	const struct pgktls_config *cfg = m->d->rt->cfg;

	if (m->upgrade == UPGRADE_HANDING)
		upgrade_fail(m, "%s arrived during the handover", why);
	m->draining = true;
	/* After a handover the new process is systemd's main PID: not ours to say. */
	if (m->upgrade != UPGRADE_COMMITTED)
		sd_notify("STOPPING=1");
	for (size_t i = 0; i < m->d->n_workers; i++)
		worker_drain(&m->d->workers[i]);
	log_info("%s: no longer accepting; waiting up to %u ms for %llu open connection(s)", why,
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

/* ---- binary upgrade, the old process's side (SIGUSR2) ---- */

/* Our end of the handover is closed: wait for the new process and say what became of it. */
static void reap_child(pid_t pid, char *buf, size_t len)
{
	bool killed = false;
	int status = 0;
	pid_t r = 0;

	/* It may be on its way out (it closed the pair): give it a second to say how. */
	for (int i = 0; i < 100 && (r = waitpid(pid, &status, WNOHANG)) == 0; i++)
		usleep(10 * 1000);
	if (r == 0) {
		/* Still running (or still dumping core): a zombie keeps its own status. */
		killed = kill(pid, SIGKILL) == 0;
		r = waitpid(pid, &status, 0);
	}
	if (r == -1)
		snprintf(buf, len, "was not waited for: %s", strerror(errno));
	else if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d%s", WEXITSTATUS(status),
			 WEXITSTATUS(status) == 127 ? " (could not be executed?)" : "");
	else if (WIFSIGNALED(status) && killed && WTERMSIG(status) == SIGKILL)
		snprintf(buf, len, "was killed");
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "ended");
}

static void upgrade_close(struct mainloop *m)
{
	ev_timer_stop(m->loop, &m->up_timer);
	if (m->up_io.fd >= 0) {
		ev_io_stop(m->loop, &m->up_io);
		close(m->up_io.fd);
		m->up_io.fd = -1;
	}
}

/*
 * A send to the new process failed because it is gone (or going): not the
 * reason to report. Whatever it sent before it went (a refusal: it refuses a
 * bad config without reading our hello) or its EOF is still queued, and
 * up_io_cb reads it and says why. Failing at the send would instead report
 * "cannot send" or the real reason depending on which process ran first.
 */
static bool peer_gone(int r)
{
	return r == -EPIPE || r == -ECONNRESET;
}

/* Give up the upgrade: the new process goes, we never stopped serving. */
static void upgrade_fail(struct mainloop *m, const char *fmt, ...)
{
	char why[512], fate[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	upgrade_close(m);
	reap_child(m->up_pid, fate, sizeof(fate));
	m->upgrade = UPGRADE_NONE;
	__atomic_store_n(&stats_process.upgrade_child_pid, 0, __ATOMIC_RELAXED);
	STAT_INC(&stats_process, upgrades_failed);
	log_err("upgrade failed, pid %ld keeps serving: %s; the new process (pid %ld) %s",
		(long)getpid(), why, (long)m->up_pid, fate);
	snprintf(why + strlen(why), sizeof(why) - strlen(why), "; the new process %s", fate);
	stats_process_set_upgrade_error(why);
	m->up_pid = -1;
}

static void send_status(struct mainloop *m, uint64_t open)
{
	struct handover_msg msg = { .version = m->up_version, .type = HANDOVER_STATUS };

	if (m->upgrade != UPGRADE_COMMITTED || m->up_io.fd < 0 || open == m->up_last_status)
		return;
	m->up_last_status = open;
	msg.u.status.draining = open > UINT32_MAX ? UINT32_MAX : (uint32_t)open;
	msg.u.status.moved = m->up_moved;	/* dropped by the encoder in version 1 */
	msg.u.status.kept = m->up_kept;
	if (handover_send(m->up_io.fd, &msg, -1, 0) < 0)
		log_debug("upgrade: the new process did not take our status");
}

/* The new process accepted our hello: send it every listening socket. */
static int send_listeners(struct mainloop *m)
{
	const struct daemon *d = m->d;
	struct handover_msg msg = { .version = m->up_version, .type = HANDOVER_LISTENER };
	int r;

	for (size_t i = 0; i < d->n_lsocks; i++) {
		msg.u.listener.kind = (uint8_t)d->lsocks[i].kind;
		msg.u.listener.index = (uint32_t)i;
		r = handover_send(m->up_io.fd, &msg, d->lsocks[i].fd, HANDOVER_STEP_MS);
		if (r < 0)
			return r;
	}
	msg = (struct handover_msg){ .version = m->up_version, .type = HANDOVER_LISTENERS_END };
	msg.u.listeners_end.count = (uint32_t)d->n_lsocks;
	return handover_send(m->up_io.fd, &msg, -1, HANDOVER_STEP_MS);
}

/*
 * Old side, after COMMIT, each drain tick: another pass over the workers'
 * connections while the offering window lasts; then, once every session
 * offered is settled (closed as handed over, or relaying here again),
 * SESSIONS_END and the summary. @open: the connections still here.
 */
static void offer_tick(struct mainloop *m, uint64_t open)
{
	struct sessmove_counts k;

	if (!m->offer || m->offer_ended)
		return;
	sessmove_counts(m->offer, &k);
	if (k.passes)
		return;
	if (m->up_io.fd >= 0 && open > k.unsettled && ev_now(m->loop) < m->offer_until) {
		if (sessmove_offer_pass(m->offer, m->d->workers, m->d->n_workers) < 0)
			log_warn("upgrade: out of memory or descriptors for an offering pass");
		return;
	}
	if (k.unsettled)
		return;
	m->offer_ended = true;
	m->up_offered = k.offered;
	m->up_moved = k.moved;
	m->up_kept = open > UINT32_MAX ? UINT32_MAX : (uint32_t)open;
	__atomic_store_n(&stats_process.sessions_kept, (uint64_t)m->up_kept, __ATOMIC_RELAXED);
	m->up_last_status = UINT64_MAX;	/* the next STATUS carries the new counts */
	if (m->up_io.fd >= 0) {
		struct handover_msg msg = { .version = m->up_version,
					    .type = HANDOVER_SESSIONS_END };

		msg.u.sessions_end.count = k.offered;
		if (handover_send(m->up_io.fd, &msg, -1, HANDOVER_STEP_MS) < 0)
			log_warn("upgrade: the new process did not take the end of the sessions");
	}
	log_info("upgrade: sessions: %u moved to pid %ld, %u kept here to drain (%u refused or "
		 "not taken)", k.moved, (long)m->up_pid, m->up_kept, k.refused);
}

/*
 * The new process accepts on our sockets now: hand systemd's main PID to it,
 * stop accepting, give up the stats socket's path, and drain as SIGTERM does.
 */
static void upgrade_commit(struct mainloop *m, pid_t pid)
{
	struct handover_msg msg = { .version = m->up_version, .type = HANDOVER_COMMIT };
	uint64_t open;
	char notify[64];

	ev_timer_stop(m->loop, &m->up_timer);
	m->upgrade = UPGRADE_COMMITTED;
	__atomic_store_n(&stats_process.upgrade_child_pid, 0, __ATOMIC_RELAXED);
	STAT_INC(&stats_process, upgrades_ok);
	if (handover_send(m->up_io.fd, &msg, -1, HANDOVER_STEP_MS) < 0)
		log_warn("upgrade: the new process did not take our commit");
	snprintf(notify, sizeof(notify), "MAINPID=%ld\nREADY=1", (long)pid);
	sd_notify(notify);
	/* Its own copies of the pid file and the stats socket are the ones that stay. */
	m->d->pid_file_written = false;
	statsrv_keep_path(m->d->stats);
	statsrv_stop(m->d->stats);
	m->d->stats = NULL;
	log_info("upgrade: pid %ld is ready and accepts on the %zu listening socket(s) handed "
		 "over", (long)pid, m->d->n_lsocks);
	open = active_connections(m->d);
	if (m->up_version >= 2) {
		/* Sessions move from the first drain tick on (offer_tick()). */
		m->offer = sessmove_offer_new(m->up_io.fd, m->up_version);
		m->offer_until = ev_now(m->loop) + OFFER_WINDOW_MS;
		m->offer_ended = m->offer == NULL;
		if (!m->offer)
			log_warn("upgrade: out of memory: no session moves");
		log_info("upgrade: %llu open session(s); offering pid %ld those that can move",
			 (unsigned long long)open, (long)pid);
	} else {
		m->up_kept = open > UINT32_MAX ? UINT32_MAX : (uint32_t)open;
		__atomic_store_n(&stats_process.sessions_kept, (uint64_t)m->up_kept,
				 __ATOMIC_RELAXED);
		log_info("upgrade: %u session(s) kept here to drain (the new process speaks "
			 "handover version 1: no session moves)",
			 m->up_kept);
	}
	start_drain(m, "upgrade");
}

/* Old side, after COMMIT: the new process took a session or did not. */
static void session_answer(struct mainloop *m, const struct handover_msg *msg)
{
	if (m->offer && sessmove_answer(m->offer, m->d->workers, msg)) {
		/* STATUS says it on the next drain tick (a moved session closes here). */
		if (msg->type == HANDOVER_SESSION_ACK)
			m->up_moved++;
		return;
	}
	log_warn("upgrade: the new process answered %s for c#%llu, which is not waiting for one",
		 handover_type_name(msg->type),
		 (unsigned long long)(msg->type == HANDOVER_SESSION_ACK ? msg->u.session_ack.id
									 : msg->u.session_nack.id));
}

static void upgrade_start_version(struct mainloop *m, const char *why, uint16_t version,
				  bool again);

/*
 * The new process speaks only an older version (@version): start it again
 * and talk that one; no session moves then, every one drains here. This is
 * what makes a rollback to an older binary work.
 */
static void upgrade_retry(struct mainloop *m, uint16_t version)
{
	char fate[128];

	upgrade_close(m);
	reap_child(m->up_pid, fate, sizeof(fate));
	m->upgrade = UPGRADE_NONE;
	__atomic_store_n(&stats_process.upgrade_child_pid, 0, __ATOMIC_RELAXED);
	log_info("upgrade: the new process (pid %ld) speaks handover version %u, not %u; starting "
		 "it again in version %u (its sessions cannot move: they drain here)",
		 (long)m->up_pid, version, m->up_version, version);
	m->up_pid = -1;
	upgrade_start_version(m, "upgrade", version, true);
}

static void up_io_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct mainloop *m = container_of(io, struct mainloop, up_io);
	struct handover_msg msg;
	int r, got;

	while (m->up_io.fd >= 0) {
		r = handover_recv(io->fd, &msg, &got, 0);
		if (r == -EAGAIN || r == -ETIMEDOUT)
			return;
		if (got >= 0)
			close(got);	/* nothing the new process sends carries one */
		if (m->upgrade == UPGRADE_COMMITTED) {
			/* While we drain it answers sessions, then only closes. */
			if (r < 0) {
				log_info("upgrade: the new process (pid %ld) closed the handover",
					 (long)m->up_pid);
				upgrade_close(m);
				/* What it did not answer stays here: it can no longer take it. */
				if (m->offer)
					sessmove_abandon(m->offer, m->d->workers, true);
			} else if (msg.type == HANDOVER_SESSION_ACK ||
				   msg.type == HANDOVER_SESSION_NACK) {
				session_answer(m, &msg);
			}
			handover_msg_fini(&msg);
			continue;
		}
		if (r == -ECONNRESET) {
			upgrade_fail(m, "it ended before it was ready");
			return;
		}
		if (r < 0) {
			upgrade_fail(m, "a malformed message (%s)", strerror(-r));
			return;
		}
		if (msg.version != m->up_version && msg.type != HANDOVER_REFUSE) {
			upgrade_fail(m, "it answered in handover version %u to our %u", msg.version,
				     m->up_version);
			handover_msg_fini(&msg);
			return;
		}
		switch (msg.type) {
		case HANDOVER_ACCEPT:
			r = send_listeners(m);
			if (r < 0 && !peer_gone(r)) {
				upgrade_fail(m, "cannot send the listening sockets: %s", strerror(-r));
				return;
			}
			break;
		case HANDOVER_REFUSE:
			if (msg.u.refuse.reason == HANDOVER_R_VERSION &&
			    msg.u.refuse.version >= HANDOVER_VERSION_MIN &&
			    msg.u.refuse.version < m->up_version) {
				upgrade_retry(m, msg.u.refuse.version);
				return;
			}
			upgrade_fail(m, "it refused the takeover (%s, it speaks version %u): %s",
				     handover_refusal_name(msg.u.refuse.reason),
				     msg.u.refuse.version, msg.u.refuse.text);
			return;
		case HANDOVER_READY:
			upgrade_commit(m, (pid_t)msg.u.ready.pid);
			return;
		default:
			upgrade_fail(m, "unexpected message '%s'", handover_type_name(msg.type));
			handover_msg_fini(&msg);
			return;
		}
	}
}

static void up_timer_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct mainloop *m = container_of(t, struct mainloop, up_timer);

	upgrade_fail(m, "not ready within %d ms", UPGRADE_TIMEOUT_MS);
}

/*
 * SIGUSR2: start upgrade_binary (default: our own executable's path, where a
 * package upgrade puts the new one) with our own arguments, and offer it our
 * listening sockets. We go on accepting until it says READY. The hello is in
 * @version (HANDOVER_VERSION, lower when a retry for an older binary:
 * @again, not counted as another start).
 */
static void upgrade_start_version(struct mainloop *m, const char *why, uint16_t version,
				  bool again)
{
	const char *bin = m->d->rt->cfg->upgrade_binary ? m->d->rt->cfg->upgrade_binary
							 : m->d->exe;
	struct handover_msg msg = { .version = version, .type = HANDOVER_HELLO };
	char *argv[256];
	size_t n = 0;
	int r, fd;

	if (m->draining || m->upgrade != UPGRADE_NONE) {
		log_warn("%s: %s; not upgrading", why,
			 m->draining ? "draining already" : "an upgrade is under way");
		return;
	}
	if (!bin[0] || !m->d->argv) {
		log_err("%s: cannot upgrade: the executable's path is unknown; set upgrade_binary",
			why);
		STAT_INC(&stats_process, upgrades_failed);
		return;
	}
	argv[n++] = (char *)bin;
	for (size_t i = 1; m->d->argv[i] && n + 1 < PGKTLS_ARRAY_SIZE(argv); i++)
		argv[n++] = m->d->argv[i];
	argv[n] = NULL;
	if (!again)
		STAT_INC(&stats_process, upgrades_started);
	r = handover_spawn(bin, argv, &m->up_pid, &fd);
	if (r < 0) {
		log_err("%s: cannot start %s: %s; still serving", why, bin, strerror(-r));
		stats_process_set_upgrade_error(strerror(-r));
		STAT_INC(&stats_process, upgrades_failed);
		return;
	}
	m->upgrade = UPGRADE_HANDING;
	m->up_last_status = UINT64_MAX;
	m->up_version = version;
	m->up_offered = m->up_moved = m->up_kept = 0;
	__atomic_store_n(&stats_process.upgrade_child_pid, (uint64_t)m->up_pid, __ATOMIC_RELAXED);
	log_info("%s: upgrading: started %s as pid %ld; offering it %zu listening socket(s)", why,
		 bin, (long)m->up_pid, m->d->n_lsocks);
	ev_io_init(&m->up_io, fd, up_io_cb);
	if (ev_io_set(m->loop, &m->up_io, EPOLLIN) < 0) {
		upgrade_fail(m, "epoll: %s", strerror(errno));
		return;
	}
	ev_timer_start(m->loop, &m->up_timer, UPGRADE_TIMEOUT_MS);
	msg.u.hello.pid = (uint32_t)getpid();
	/* Version 2 announces that SESSIONs (maybe none) and SESSIONS_END follow COMMIT. */
	msg.u.hello.features = version >= 2 ? HANDOVER_F_SESSIONS : 0;
	msg.u.hello.listeners = (uint32_t)m->d->n_lsocks;
	r = handover_send(fd, &msg, -1, HANDOVER_STEP_MS);
	if (r < 0 && !peer_gone(r))
		upgrade_fail(m, "cannot send the hello: %s", strerror(-r));
}

static void upgrade_start(struct mainloop *m, const char *why)
{
	upgrade_start_version(m, why, HANDOVER_VERSION, false);
}

/* ---- a process started by an upgrade: news from the old one while it drains ---- */

/*
 * One SESSION from the old process: a worker, chosen round robin, rebuilds
 * it, answers SESSION_ACK and relays it (sessmove_adopt()), or answers
 * SESSION_NACK and the old process keeps it. Refused here, without a
 * worker: a hello that did not announce sessions, and
 * PGKTLS_TEST_HANDOVER_NACK. The descriptors not taken are closed by the
 * caller's handover_msg_fini(): the old process still holds the same sockets.
 */
static void adopt_session(struct mainloop *m, struct handover_msg *msg)
{
	struct handover_msg no = { .version = m->d->handover_version,
				   .type = HANDOVER_SESSION_NACK };
	int r;

	no.u.session_nack.id = msg->u.session.id;
	if (test_crash_session) {
		log_err("upgrade: %s=session is set: crashing with a session offered, unanswered",
			HANDOVER_ENV_TEST_CRASH);
		abort();
	}
	if (!m->d->handover_sessions) {
		no.u.session_nack.reason = HANDOVER_N_MALFORMED;
		snprintf(no.u.session_nack.text, sizeof(no.u.session_nack.text),
			 "the hello did not announce sessions");
	} else if (test_nack) {
		no.u.session_nack.reason = HANDOVER_N_REFUSED;
		snprintf(no.u.session_nack.text, sizeof(no.u.session_nack.text), "%s is set",
			 HANDOVER_ENV_TEST_NACK);
	} else {
		struct worker *w = &m->d->workers[m->adopt_next++ % m->d->n_workers];

		r = sessmove_adopt(w, msg, m->prev_io.fd,
				   (pid_t)stats_process.adopted_from_pid);
		if (r == 0)
			return;
		no.u.session_nack.reason = HANDOVER_N_RESOURCES;
		snprintf(no.u.session_nack.text, sizeof(no.u.session_nack.text), "%s",
			 strerror(-r));
	}
	log_info("upgrade: not adopting c#%llu of pid %llu: %s",
		 (unsigned long long)msg->u.session.id,
		 (unsigned long long)stats_process.adopted_from_pid, no.u.session_nack.text);
	if (handover_send(m->prev_io.fd, &no, -1, HANDOVER_STEP_MS) < 0)
		log_debug("upgrade: the previous process did not take our answer");
}

static void prev_io_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	struct mainloop *m = container_of(io, struct mainloop, prev_io);
	struct handover_msg msg;
	int r, got;

	for (;;) {
		r = handover_recv(io->fd, &msg, &got, 0);
		if (r == -EAGAIN || r == -ETIMEDOUT)
			return;
		if (got >= 0)
			close(got);
		if (r < 0) {
			/* It exited (or broke the protocol): either way, it is no longer ours to follow. */
			log_info("upgrade: the previous process (pid %llu) has finished",
				 (unsigned long long)stats_process.adopted_from_pid);
			__atomic_store_n(&stats_process.previous_running, 0, __ATOMIC_RELAXED);
			__atomic_store_n(&stats_process.previous_draining, 0, __ATOMIC_RELAXED);
			ev_io_stop(loop, io);
			close(io->fd);
			io->fd = -1;
			m->d->handover_fd = -1;
			return;
		}
		switch (msg.type) {
		case HANDOVER_STATUS:
			__atomic_store_n(&stats_process.previous_draining,
					 (uint64_t)msg.u.status.draining, __ATOMIC_RELAXED);
			__atomic_store_n(&stats_process.previous_moved,
					 (uint64_t)msg.u.status.moved, __ATOMIC_RELAXED);
			__atomic_store_n(&stats_process.previous_kept,
					 (uint64_t)msg.u.status.kept, __ATOMIC_RELAXED);
			break;
		case HANDOVER_SESSION:
			adopt_session(m, &msg);
			break;
		case HANDOVER_SESSIONS_END:
			log_info("upgrade: pid %llu offered %u session(s); %llu adopted",
				 (unsigned long long)stats_process.adopted_from_pid,
				 msg.u.sessions_end.count,
				 (unsigned long long)__atomic_load_n(&stats_process.sessions_adopted,
								     __ATOMIC_RELAXED));
			break;
		default:
			break;
		}
		handover_msg_fini(&msg);	/* closes what no adoption took */
	}
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
				start_drain(m, "SIGTERM");
			break;
		case SIGUSR2:
			upgrade_start(m, "SIGUSR2");
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
	sigaddset(&sigs, SIGUSR2);
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
	ev_io_init(&m.up_io, -1, up_io_cb);
	ev_timer_init(&m.up_timer, up_timer_cb);
	ev_io_init(&m.prev_io, d->handover_fd, prev_io_cb);
	m.up_pid = -1;
	if (d->handover_fd >= 0 && ev_io_set(m.loop, &m.prev_io, EPOLLIN) < 0) {
		/* Only the stats' view of the old process's drain is lost. */
		close(d->handover_fd);
		d->handover_fd = m.prev_io.fd = -1;
	}
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
	if (m.upgrade == UPGRADE_HANDING)
		upgrade_fail(&m, "stopping");
	upgrade_close(&m);
	if (m.offer) {
		/*
		 * Sessions still frozen stay frozen: the new process may hold them
		 * (an ACK we did not read); the stop closes ours without a word.
		 */
		sessmove_abandon(m.offer, d->workers, false);
		sessmove_offer_put(m.offer);
	}
	if (m.prev_io.fd >= 0) {
		ev_io_stop(m.loop, &m.prev_io);
		close(m.prev_io.fd);
		d->handover_fd = -1;
	}
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
	free(d->lsocks);
	d->lsocks = NULL;
	d->n_lsocks = 0;
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
