/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * daemon.h - the running process: its workers, the current runtime,
 * reload, graceful shutdown, and the main thread's own event loop
 * (signals through signalfd, certificate files through inotify).
 */
#ifndef PGKTLS_DAEMON_H
#define PGKTLS_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgktls/compiler.h"

struct pgktls_config;
struct runtime;
struct statsrv;
struct worker;

/* A command-line setting, re-applied on top of the file at every reload. */
struct daemon_override {
	const char *key;	/* config key, e.g. "port", "upstream.host" */
	const char *value;
	const char *origin;	/* how errors name it, e.g. "--port" */
};

/* Exit statuses (documented in pgktls(8)). */
#define DAEMON_EXIT_OK 0		/* stopped; no connection was cut */
#define DAEMON_EXIT_ERROR 1		/* configuration or start-up error */
#define DAEMON_EXIT_USAGE 2		/* bad command line */
#define DAEMON_EXIT_CUT 3		/* stopped, closing connections that were still open */

/* A listening socket an upgrade hands over (not owned: a listener's or the stats server's). */
struct daemon_lsock {
	int fd;
	unsigned kind;				/* enum handover_listener_kind */
};

struct daemon {
	const char *config_path;		/* NULL: command line only */
	char *const *argv;			/* as given (before getopt), for an upgrade */
	char exe[4096];				/* our executable at start-up ("" unknown) */
	const struct daemon_override *overrides;
	size_t n_overrides;
	struct worker *workers;
	size_t n_workers;			/* initialised */
	size_t n_started;			/* threads running (to join) */
	struct runtime *rt;			/* current; each worker holds its own reference */
	struct statsrv *stats;
	pthread_mutex_t reload_lock;		/* SIGHUP, inotify and the stats socket */
	bool pid_file_written;
	bool sockets_from_systemd;		/* socket activation: the unit owns host/port */
	struct daemon_lsock *lsocks;		/* what SIGUSR2 hands over */
	size_t n_lsocks;
	int handover_fd;			/* started by an upgrade: the link to the old
						 * process while it drains; else -1 */
	uint16_t handover_version;		/* the version that conversation speaks */
	bool handover_sessions;			/* its hello said SESSIONs will follow */
};

/**
 * daemon_load_config() - the file (if any), then the overrides, validated.
 * @out: a new config the caller owns (config_free()), NULL on failure
 * Return: 0, or -EINVAL with the first error in @err.
 */
PGKTLS_MUSTCHECK int daemon_load_config(const struct daemon *d, struct pgktls_config **out,
					char *err, size_t errlen);

/**
 * daemon_start() - from a runtime to a serving process: bind every listener
 * for every worker (or share the sockets systemd passed in LISTEN_FDS among
 * them, see sdlisten.h), the stats socket, the pid file, drop privileges, start
 * the workers and log "ready:".
 * @rt: taken over
 * Return: 0, or -errno after logging why (the caller exits 1).
 */
PGKTLS_MUSTCHECK int daemon_start(struct daemon *d, struct runtime *rt);

/**
 * daemon_reload() - re-read the configuration and every certificate, key and
 * CA file (even at unchanged paths), build new TLS contexts, and hand them
 * to the workers for new connections. Established connections keep theirs.
 * On any failure the old configuration stays entirely. Thread-safe.
 * @why: what asked ("SIGHUP", "stats socket", "inotify"), for the log
 * @msg: the result in one line, for whoever asked
 * Return: 0, or -EINVAL.
 */
int daemon_reload(struct daemon *d, const char *why, char *msg, size_t msglen);

/**
 * daemon_run() - the main thread's loop until a stop. SIGUSR2 upgrades (starts
 * the new binary, hands it the listening sockets, then drains as SIGTERM
 * does, exit 0; if the new one refuses or fails, keeps serving); SIGHUP reloads;
 * SIGTERM stops accepting and lets connections finish for shutdown_timeout
 * (a second SIGTERM, or SIGINT, cuts them at once); SIGINT stops now.
 * Return: the process exit status (DAEMON_EXIT_*).
 */
int daemon_run(struct daemon *d);

/**
 * daemon_handover_refuse() - in a process started by an upgrade that cannot
 * start (a bad config, a key that does not load): tell the old process why,
 * so it logs the reason and keeps serving. Nothing when not started by one.
 * @why: one line for the old process's log (no secrets)
 */
void daemon_handover_refuse(const char *why);

/** daemon_fini() - join and free everything; remove the pid file. */
void daemon_fini(struct daemon *d);

#endif /* PGKTLS_DAEMON_H */
