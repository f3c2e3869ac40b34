// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_sessmove.c - a whole connection's SESSION payload (sessmove.h): a
 * relaying connection with bytes buffered in one direction and in the
 * other's splice pipe, framers mid-message and authentication inspected,
 * goes out and comes back with its descriptors (dup()s, as SCM_RIGHTS would
 * deliver them) and exports again to the very same bytes; the pipe's bytes
 * are there to read. Refused: a wrong descriptor count, a list cut anywhere,
 * an unknown mandatory field; no descriptor leaks either way. A connection
 * that is not relaying does not export; one whose bytes do not fit says so
 * (-ENOSPC), to be offered later.
 */
#include "config.h"

#include "pgktls/conn.h"
#include "pgktls/ev.h"
#include "pgktls/handover.h"
#include "pgktls/hop.h"
#include "pgktls/pgproto.h"
#include "pgktls/relay.h"
#include "pgktls/sessmove.h"
#include "pgktls/tls.h"
#include "pgktls/tlv.h"
#include "pgktls/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testlib.h"

static uint8_t payload[HANDOVER_SESSION_MAX], again[HANDOVER_SESSION_MAX];
static struct worker fake_worker;	/* only its loop: conn_discard() stops nothing on it */
/* The new process's runtime, as far as the upstream identity goes (tls_server_identity_map). */
static struct tls_identity identities[2];
static struct runtime fake_rt = { .tls = { .identities = identities, .n_identities = 2 } };

/* A blank connection as conn_new() makes one, without a runtime. */
static struct conn *blank(void)
{
	struct conn *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	c->w = &fake_worker;
	c->state = CONN_ACCEPTED;
	hop_init(&c->client, -1, "client", true);
	hop_init(&c->server, -1, "server", true);
	relay_dir_init(&c->c2s);
	relay_dir_init(&c->s2c);
	return c;
}

/*
 * A relaying connection on two socketpairs (plain hops), c2s holding 3000
 * bytes with an inspection boundary inside, s2c's pipe holding 1000.
 */
static struct conn *relaying(int peers[2])
{
	struct conn *c = blank();
	int a[2], b[2], p[2];
	uint8_t bytes[1000];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	peers[0] = a[1];
	peers[1] = b[1];
	hop_init(&c->client, a[0], "client", true);
	hop_init(&c->server, b[0], "server", false);
	c->server.rx_eof = c->server.clean_eof = true;
	c->state = CONN_RELAY;
	c->flags = CONN_F_SSL_SEEN | CONN_F_INSPECT;
	snprintf(c->peer, sizeof(c->peer), "192.0.2.7:5432");
	c->accepted_ms = 123456789;
	ck_assert_int_eq(relay_dir_reserve(&c->c2s), 0);
	for (uint32_t i = 0; i < 3500; i++)
		c->c2s.buf[i] = (uint8_t)(i * 7);
	c->c2s.head = 500;
	c->c2s.scan = 2000;
	c->c2s.tail = 3500;
	c->c2s.bytes = 42;
	memset(bytes, 'p', sizeof(bytes));
	ck_assert_int_eq(write(p[1], bytes, sizeof(bytes)), (ssize_t)sizeof(bytes));
	c->s2c.pipe[0] = p[0];
	c->s2c.pipe[1] = p[1];
	c->s2c.pipe_len = sizeof(bytes);
	c->s2c.bytes = 77;
	pgproto_framer_init(&c->c2s_frame, 0);
	pgproto_framer_feed(&c->c2s_frame, (const uint8_t *)"Q\0\0\0\20sel", 8);
	pgproto_framer_init(&c->s2c_frame, 0);
	c->auth.strip_plus = true;
	c->auth.stripped = 1;
	return c;
}

/* Close a conn's descriptors and buffers (what conn_close() would, minus the rest). */
static void drop(struct conn *c)
{
	conn_discard(c);
}

/* Dup @n of @fds, as SCM_RIGHTS hands the same files over under new numbers. */
static void dup_fds(const int *fds, int *out, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		out[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
		ck_assert_int_ge(out[i], 0);
	}
}

/*
 * PGKTLS_SESSMOVE_SEED=FILE: write this payload as a fuzz_sessstate input
 * (selector 6, descriptor count) to FILE: how tests/fuzz/corpus/sessstate's
 * connection seed was made.
 */
static void write_seed(const uint8_t *p, size_t len, uint8_t n)
{
	const char *path = getenv("PGKTLS_SESSMOVE_SEED");
	uint8_t head[2] = { 6, (uint8_t)(n - 1) };
	FILE *f;

	if (!path)
		return;
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(head, 1, 2, f), 2);
	ck_assert_uint_eq(fwrite(p, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

START_TEST(test_round_trip)
{
	int peers[2], fds[HANDOVER_SESSION_FDS], got[HANDOVER_SESSION_FDS], kept[3];
	struct conn *c = relaying(peers), *d = blank();
	struct tls_identity old_identity = { .subject = "CN=app,O=example" };
	size_t len, len2;
	uint8_t n, n2;
	char why[200], rd[1000];

	ck_assert(conn_movable(c));
	snprintf(identities[0].subject, sizeof(identities[0].subject), "CN=other");
	snprintf(identities[1].subject, sizeof(identities[1].subject), "CN=app,O=example");
	c->identity = &old_identity;
	d->rt = &fake_rt;
	ck_assert_int_eq(sessmove_export(c, payload, sizeof(payload), &len, fds, &n), 0);
	ck_assert_uint_eq(n, 3);	/* client, server, s2c's pipe (c2s has none) */
	write_seed(payload, len, n);
	ck_assert_int_eq(fds[0], c->client.fd);
	ck_assert_int_eq(fds[1], c->server.fd);
	ck_assert_int_eq(fds[2], c->s2c.pipe[0]);
	dup_fds(fds, got, n);
	memcpy(kept, got, sizeof(kept));
	ck_assert_int_eq(sessmove_import(d, payload, len, got, n, why, sizeof(why)), 0);
	/* Every descriptor taken. */
	ck_assert_int_eq(got[0], -1);
	ck_assert_int_eq(got[1], -1);
	ck_assert_int_eq(got[2], -1);
	ck_assert_int_eq(d->client.fd, kept[0]);
	ck_assert_int_eq(d->server.fd, kept[1]);
	ck_assert_int_eq(d->s2c.pipe[0], kept[2]);
	ck_assert_int_eq(d->s2c.pipe[1], -1);	/* the write end stays behind */
	ck_assert_int_eq(d->c2s.pipe[0], -1);
	ck_assert_str_eq(d->peer, c->peer);
	ck_assert_uint_eq(d->flags, c->flags);
	ck_assert_uint_eq(d->accepted_ms, c->accepted_ms);
	ck_assert(d->server.rx_eof && d->server.clean_eof && !d->server.is_tcp);
	ck_assert(d->client.is_tcp && !d->client.rx_eof);
	ck_assert_uint_eq(d->c2s.tail - d->c2s.head, 3000);
	ck_assert_uint_eq(d->c2s.scan - d->c2s.head, 1500);
	ck_assert_mem_eq(d->c2s.buf + d->c2s.head, c->c2s.buf + c->c2s.head, 3000);
	ck_assert_uint_eq(d->c2s.bytes, 42);
	ck_assert_uint_eq(d->s2c.bytes, 77);
	ck_assert_uint_eq(d->s2c.pipe_len, 1000);
	ck_assert_uint_eq(d->c2s_frame.left, c->c2s_frame.left);
	ck_assert_uint_eq(d->c2s_frame.last_type, 'Q');
	ck_assert(d->auth.strip_plus && d->auth.stripped == 1 && !d->auth.done);
	/* The upstream identity, found again by subject in the new runtime (for the stats). */
	ck_assert_ptr_eq(d->identity, &identities[1]);
	/* The same state, once more: the very same bytes. */
	d->state = CONN_RELAY;
	ck_assert_int_eq(sessmove_export(d, again, sizeof(again), &len2, fds, &n2), 0);
	ck_assert_uint_eq(n2, n);
	ck_assert_uint_eq(len2, len);
	ck_assert_mem_eq(again, payload, len);
	/* The pipe's bytes, through the adopted read end. */
	ck_assert_int_eq(read(d->s2c.pipe[0], rd, sizeof(rd)), (ssize_t)sizeof(rd));
	ck_assert_int_eq(rd[0], 'p');
	ck_assert_int_eq(rd[999], 'p');
	/* A frozen connection, or one the new process refused, is not offered (again). */
	c->flags |= CONN_F_KEPT;
	ck_assert(!conn_movable(c));
	ck_assert_int_eq(sessmove_export(c, again, sizeof(again), &len2, fds, &n2), -EOPNOTSUPP);
	d->rt = NULL;	/* not a reference */
	drop(d);
	for (unsigned i = 0; i < n; i++)
		ck_assert(!fd_open(kept[i]));
	drop(c);
	close(peers[0]);
	close(peers[1]);
}
END_TEST

START_TEST(test_refused)
{
	int peers[2], fds[HANDOVER_SESSION_FDS], got[HANDOVER_SESSION_FDS];
	struct conn *c = relaying(peers), *d;
	struct tlv_writer w;
	size_t len;
	uint8_t n;
	char why[200];

	ck_assert_int_eq(sessmove_export(c, payload, sizeof(payload), &len, fds, &n), 0);

	/* One descriptor short, or one too many: refused, none taken. */
	dup_fds(fds, got, n);
	d = blank();
	ck_assert_int_eq(sessmove_import(d, payload, len, got, n - 1, why, sizeof(why)),
			 -EBADMSG);
	ck_assert_str_eq(why, "2 descriptors where the state names 3");
	for (unsigned i = 0; i < n; i++) {
		ck_assert(fd_open(got[i]));
		close(got[i]);
	}
	drop(d);

	/* Cut anywhere: refused; what was taken is the conn's, the rest still ours. */
	for (size_t cut = 0; cut < len; cut += cut < 200 ? 1 : 1009) {
		dup_fds(fds, got, n);
		d = blank();
		ck_assert_int_lt(sessmove_import(d, payload, cut, got, n, why, sizeof(why)), 0);
		ck_assert(why[0]);
		drop(d);
		for (unsigned i = 0; i < n; i++)
			if (got[i] >= 0)
				close(got[i]);
	}

	/* A client address with a NUL inside (found by fuzz_sessstate): refused, not cut short. */
	memcpy(again, payload, len);
	ck_assert_uint_eq(again[0] | again[1] << 8, 1 | TLV_MANDATORY);	/* the first TLV: PEER */
	again[TLV_HDR + 3] = '\0';
	dup_fds(fds, got, n);
	d = blank();
	ck_assert_int_eq(sessmove_import(d, again, len, got, n, why, sizeof(why)), -EBADMSG);
	ck_assert_str_eq(why, "a malformed client address");
	drop(d);
	for (unsigned i = 0; i < n; i++)
		if (got[i] >= 0)
			close(got[i]);

	/* A mandatory field this binary does not know: unsupported, not guessed. */
	memcpy(again, payload, len);
	tlv_writer_init(&w, again + len, sizeof(again) - len);
	ck_assert_int_eq(tlv_put_u8(&w, 0x7ff0 | TLV_MANDATORY, 1), 0);
	dup_fds(fds, got, n);
	d = blank();
	ck_assert_int_eq(sessmove_import(d, again, len + w.len, got, n, why, sizeof(why)),
			 -EPROTONOSUPPORT);
	ck_assert_str_eq(why, "a mandatory field this binary does not know");
	drop(d);
	for (unsigned i = 0; i < n; i++)
		if (got[i] >= 0)
			close(got[i]);

	/* Too little room: -ENOSPC, nothing half written counts. */
	ck_assert_int_eq(sessmove_export(c, again, len - 1, &len, fds, &n), -ENOSPC);
	ck_assert_uint_eq(n, 0);

	/* Not relaying: nothing to move. */
	c->state = CONN_UPSTREAM_TLS;
	ck_assert(!conn_movable(c));
	ck_assert_int_eq(sessmove_export(c, again, sizeof(again), &len, fds, &n), -EOPNOTSUPP);
	drop(c);
	close(peers[0]);
	close(peers[1]);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("sessmove");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_refused);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	int r;

	fake_worker.loop = ev_loop_new();
	r = run_suite(suite());
	ev_loop_free(fake_worker.loop);
	return r;
}
