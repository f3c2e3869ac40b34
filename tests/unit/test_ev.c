// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_ev.c - the event loop: readiness, mask changes, timers in order,
 * deferred callbacks after the round, stopped watchers never called.
 */
#include "config.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <unistd.h>

#include "pgktls/ev.h"
#include "testlib.h"

static int calls, order[8], n_order;

static void count_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	char buf[16];

	calls++;
	ck_assert(events & EPOLLIN);
	ck_assert_int_gt(read(io->fd, buf, sizeof(buf)), 0);
	ev_loop_break(loop);
}

START_TEST(test_io_readable)
{
	struct ev_loop *loop = ev_loop_new();
	struct ev_io io;
	int sv[2];

	ck_assert_ptr_nonnull(loop);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	ev_io_init(&io, sv[0], count_cb);
	ck_assert_int_eq(ev_io_set(loop, &io, EPOLLIN), 0);
	ck_assert_int_eq(write(sv[1], "x", 1), 1);
	calls = 0;
	ck_assert_int_eq(ev_run(loop), 0);
	ck_assert_int_eq(calls, 1);
	/* Same mask again is a no-op; 0 removes it. */
	ck_assert_int_eq(ev_io_set(loop, &io, EPOLLIN), 0);
	ck_assert_int_eq(ev_io_set(loop, &io, 0), 0);
	ck_assert_uint_eq(io.events, 0);
	close(sv[0]);
	close(sv[1]);
	ev_loop_free(loop);
}
END_TEST

static struct ev_io *victim;

static void stop_other_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	calls++;
	ev_io_stop(loop, victim);
	ev_loop_break(loop);
}

static void never_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	ck_abort_msg("a stopped watcher was called");
}

START_TEST(test_stopped_watcher_not_called)
{
	struct ev_loop *loop = ev_loop_new();
	struct ev_io a, b;
	int sv1[2], sv2[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv1), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2), 0);
	ck_assert_int_eq(write(sv1[1], "x", 1), 1);
	ck_assert_int_eq(write(sv2[1], "x", 1), 1);
	/* Whichever is dispatched first stops the other: the other must not run. */
	ev_io_init(&a, sv1[0], stop_other_cb);
	ev_io_init(&b, sv2[0], stop_other_cb);
	ck_assert_int_eq(ev_io_set(loop, &a, EPOLLIN), 0);
	ck_assert_int_eq(ev_io_set(loop, &b, EPOLLIN), 0);
	victim = &b;
	b.cb = never_cb;
	a.cb = stop_other_cb;
	calls = 0;
	ck_assert_int_eq(ev_run(loop), 0);
	ck_assert_int_eq(calls, 1);
	close(sv1[0]);
	close(sv1[1]);
	close(sv2[0]);
	close(sv2[1]);
	ev_loop_free(loop);
}
END_TEST

struct tagged_timer {
	struct ev_timer t;
	int tag;
};

static void tagged_cb(struct ev_loop *loop, struct ev_timer *t)
{
	struct tagged_timer *tt = container_of(t, struct tagged_timer, t);

	order[n_order++] = tt->tag;
	if (n_order == 3)
		ev_loop_break(loop);
}

START_TEST(test_timers_fire_in_order)
{
	struct ev_loop *loop = ev_loop_new();
	struct tagged_timer t[4];
	uint64_t start = ev_monotonic_ms();

	n_order = 0;
	for (int i = 0; i < 4; i++) {
		ev_timer_init(&t[i].t, tagged_cb);
		t[i].tag = i;
	}
	ev_timer_start(loop, &t[0].t, 60);
	ev_timer_start(loop, &t[1].t, 20);
	ev_timer_start(loop, &t[2].t, 40);
	ev_timer_start(loop, &t[3].t, 30);
	ev_timer_stop(loop, &t[3].t);	/* stopped: must never fire */
	ck_assert(!ev_timer_armed(&t[3].t));
	ck_assert_int_eq(ev_run(loop), 0);
	ck_assert_int_eq(n_order, 3);
	ck_assert_int_eq(order[0], 1);
	ck_assert_int_eq(order[1], 2);
	ck_assert_int_eq(order[2], 0);
	ck_assert_uint_ge(ev_monotonic_ms() - start, 60);
	ev_loop_free(loop);
}
END_TEST

static struct ev_defer dfr;
static int deferred_ran;

static void defer_cb(struct ev_defer *d)
{
	deferred_ran++;
}

static void defer_io_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	char c;

	ck_assert_int_eq(read(io->fd, &c, 1), 1);
	ev_defer(loop, &dfr, defer_cb);
	ev_defer(loop, &dfr, defer_cb);	/* queued once only */
	ck_assert_int_eq(deferred_ran, 0);	/* not before the round ends */
	ev_loop_break(loop);
}

START_TEST(test_defer_after_round)
{
	struct ev_loop *loop = ev_loop_new();
	struct ev_io io;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(write(sv[1], "x", 1), 1);
	ev_io_init(&io, sv[0], defer_io_cb);
	ck_assert_int_eq(ev_io_set(loop, &io, EPOLLIN), 0);
	deferred_ran = 0;
	ck_assert_int_eq(ev_run(loop), 0);
	ck_assert_int_eq(deferred_ran, 1);
	close(sv[0]);
	close(sv[1]);
	ev_loop_free(loop);
}
END_TEST

/* Owners closed after the loop ended (worker_fini's listeners) are freed by ev_loop_free(). */
START_TEST(test_defer_after_loop_runs_at_free)
{
	struct ev_loop *loop = ev_loop_new();

	deferred_ran = 0;
	ev_defer(loop, &dfr, defer_cb);
	ck_assert_int_eq(deferred_ran, 0);
	ev_loop_free(loop);
	ck_assert_int_eq(deferred_ran, 1);
}
END_TEST

static void wake_cb(struct ev_loop *loop, void *arg)
{
	*(int *)arg += 1;
	ev_loop_break(loop);
}

START_TEST(test_wakeup)
{
	struct ev_loop *loop = ev_loop_new();
	int woken = 0;

	ev_loop_set_wakeup_cb(loop, wake_cb, &woken);
	ev_loop_wakeup(loop);
	ev_loop_wakeup(loop);	/* collapses into one callback */
	ck_assert_int_eq(ev_run(loop), 0);
	ck_assert_int_eq(woken, 1);
	ev_loop_free(loop);
}
END_TEST

static void hup_cb(struct ev_loop *loop, struct ev_io *io, uint32_t events)
{
	/* A hangup while only writing is wanted must still reach the handler as IN. */
	ck_assert(events & EPOLLIN);
	calls++;
	ev_loop_break(loop);
}

START_TEST(test_hangup_reported_as_readable)
{
	struct ev_loop *loop = ev_loop_new();
	struct ev_io io;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ev_io_init(&io, sv[0], hup_cb);
	ck_assert_int_eq(ev_io_set(loop, &io, EPOLLIN), 0);
	close(sv[1]);
	calls = 0;
	ck_assert_int_eq(ev_run(loop), 0);
	ck_assert_int_eq(calls, 1);
	close(sv[0]);
	ev_loop_free(loop);
}
END_TEST

static Suite *ev_suite(void)
{
	Suite *s = suite_create("ev");
	TCase *tc = tcase_create("loop");

	tcase_add_test(tc, test_io_readable);
	tcase_add_test(tc, test_stopped_watcher_not_called);
	tcase_add_test(tc, test_timers_fire_in_order);
	tcase_add_test(tc, test_defer_after_round);
	tcase_add_test(tc, test_defer_after_loop_runs_at_free);
	tcase_add_test(tc, test_wakeup);
	tcase_add_test(tc, test_hangup_reported_as_readable);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(ev_suite());
}
