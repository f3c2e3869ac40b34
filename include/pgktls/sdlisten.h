/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * sdlisten.h - listening sockets passed by systemd (socket activation), with
 * the semantics of sd_listen_fds(3): LISTEN_PID names the process they are
 * for, LISTEN_FDS how many there are, starting at fd 3, and LISTEN_FDNAMES
 * their colon-separated names. pgktls does not link libsystemd for this:
 * the protocol is three environment variables.
 */
#ifndef PGKTLS_SDLISTEN_H
#define PGKTLS_SDLISTEN_H

#include <sys/types.h>

#include <stddef.h>

#include "pgktls/compiler.h"

/* The first inherited descriptor (SD_LISTEN_FDS_START). */
#define SDLISTEN_FD_START 3
/* More sockets than this is a unit file mistake, not a deployment. */
#define SDLISTEN_MAX 64

/* What systemd handed over; n == 0 when pgktls was not socket-activated. */
struct sdlisten {
	size_t n;			/* sockets, fds SDLISTEN_FD_START .. + n - 1 */
	int fds[SDLISTEN_MAX];		/* owned: close them, or hand them on */
	char *names_buf;		/* owned copy of LISTEN_FDNAMES (NULL if unset) */
	const char *names[SDLISTEN_MAX]; /* into names_buf; "" when not named */
};

/**
 * sdlisten_parse() - how many sockets LISTEN_PID and LISTEN_FDS give this process.
 * @listen_pid: the value of LISTEN_PID, or NULL when unset
 * @listen_fds: the value of LISTEN_FDS, or NULL when unset
 * @self: this process's pid
 * @n: out: the count (0: none for us)
 * @err: when the variables are set but not for us (another pid), a note
 *       for the log; otherwise the error
 *
 * Pure (no syscalls), so every case can be tested. As sd_listen_fds(3),
 * variables meant for another process (LISTEN_PID is not @self, e.g.
 * inherited through a shell) are ignored: *@n = 0 and a note in @err.
 * Return: 0, or -EINVAL for a malformed value (not a decimal number, zero
 * or negative pid, a count above SDLISTEN_MAX) with @err filled in.
 */
PGKTLS_MUSTCHECK int sdlisten_parse(const char *listen_pid, const char *listen_fds, pid_t self,
				    size_t *n, char *err, size_t errlen);

/**
 * sdlisten_check_fd() - make sure inherited @fd is a listening TCP socket
 * (IPv4 or IPv6, SOCK_STREAM, SO_ACCEPTCONN), then make it close-on-exec
 * and non-blocking: every worker accepts from it, and a blocking accept4()
 * in a worker that lost the race would stop that worker's loop.
 * Return: 0; -ENOTSOCK (not a socket), -EPROTONOSUPPORT (not TCP over
 * IPv4/IPv6), -EINVAL (not listening) or another -errno, with @err filled.
 */
PGKTLS_MUSTCHECK int sdlisten_check_fd(int fd, char *err, size_t errlen);

/**
 * sdlisten_take() - at start-up, before any thread exists: read LISTEN_PID,
 * LISTEN_FDS and LISTEN_FDNAMES, unset all three (children must not see
 * them), and check every socket with sdlisten_check_fd().
 * @out: filled; out->n == 0 when not socket-activated. Free with sdlisten_fini().
 * @first_fd: SDLISTEN_FD_START (a parameter so tests can use fds of their own)
 * @err: the error, or a note to log when the variables were not for us
 * Return: 0, or -errno with @err filled in (the caller refuses to start:
 * a socket unit that passes the wrong thing must not be half-served).
 */
PGKTLS_MUSTCHECK int sdlisten_take(struct sdlisten *out, int first_fd, char *err, size_t errlen);

/**
 * sdlisten_fini() - close the fds still held in @l and free the names.
 * A caller that handed the fds on sets l->n = 0 first.
 */
void sdlisten_fini(struct sdlisten *l);

#endif /* PGKTLS_SDLISTEN_H */
