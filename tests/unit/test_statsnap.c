// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * test_statsnap.c - taking a stats snapshot (statsnap.c) from real worker
 * threads with no connections: the process facts, the counters summed over
 * the workers, a worker that does not answer in time reported as late (and
 * its question answered harmlessly later), the kernel facts without
 * netlink, and the uptime counted from the first statsnap_mark_start().
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pgktls/conn.h"
#include "pgktls/ev.h"
#include "pgktls/nl.h"
#include "pgktls/stats.h"
#include "pgktls/statsnap.h"
#include "pgktls/worker.h"
#include "testlib.h"

/* Workers need a runtime only to accept connections; these never accept. */
static struct runtime rt = { .refs = 1 };

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

START_TEST(test_collect_no_workers)
{
	struct nl_tls_stat ts;
	struct statsnap s;
	uint64_t t0 = wall_ms();

	ck_assert_int_eq(statsnap_collect(NULL, 0, 100, NULL, -EPERM, &s), 0);
	ck_assert_str_eq(s.version, PACKAGE_VERSION);
	ck_assert_int_eq(s.pid, (long)getpid());
	ck_assert_uint_ge(s.time_ms, t0);
	ck_assert_uint_le(s.time_ms, wall_ms());
	ck_assert_uint_eq(s.n_workers, 0);
	ck_assert_uint_eq(s.workers_late, 0);
	ck_assert_uint_eq(s.n_conns, 0);
	ck_assert_ptr_null(s.conns);
	ck_assert_uint_eq(s.totals.conns_accepted, 0);
	/* No netlink: the reason given is kept for the document. */
	ck_assert_int_eq(s.netlink_err, -EPERM);
	ck_assert_int_eq(s.n_ifaces, 0);
	/* The kernel's own counters, as this host has them (or not). */
	ck_assert_int_eq(s.tls_stat_err, nl_tls_stat_read(&ts));
	ck_assert(s.ktls_available == (s.tls_stat_err == 0));
	ck_assert(s.net_admin == nl_have_net_admin());
	statsnap_fini(&s);
	ck_assert_ptr_null(s.ifaces);
	ck_assert_uint_eq(s.n_workers, 0);
}
END_TEST

START_TEST(test_collect_workers)
{
	struct worker w[3];
	struct statsnap s;
	uint64_t t0;

	for (unsigned i = 0; i < 3; i++) {
		ck_assert_int_eq(worker_init(&w[i], i, &rt), 0);
		w[i].stats.conns_accepted = 10 * (i + 1);
		w[i].stats.tls_key_updates_sent = i;
		w[i].stats.closed_by_reason[CONN_CLOSE_DONE] = 1;
	}
	/* Workers 0 and 1 run; worker 2 never does, so it cannot answer. */
	ck_assert_int_eq(worker_start(&w[0]), 0);
	ck_assert_int_eq(worker_start(&w[1]), 0);
	t0 = ev_monotonic_ms();
	ck_assert_int_eq(statsnap_collect(w, 3, 300, NULL, -ENOENT, &s), 0);
	ck_assert_uint_ge(ev_monotonic_ms() - t0, 290);	/* waited for the late one */
	ck_assert_uint_eq(s.n_workers, 3);
	ck_assert_uint_eq(s.totals.conns_accepted, 60);
	ck_assert_uint_eq(s.totals.tls_key_updates_sent, 3);
	ck_assert_uint_eq(s.totals.closed_by_reason[CONN_CLOSE_DONE], 3);
	ck_assert_uint_eq(s.workers_late, 1);
	ck_assert_uint_eq(s.late[0], 2);
	ck_assert_uint_eq(s.n_conns, 0);
	statsnap_fini(&s);

	/* Both running workers answer at once: no waiting for the timeout. */
	t0 = ev_monotonic_ms();
	ck_assert_int_eq(statsnap_collect(w, 2, 5000, NULL, -ENOENT, &s), 0);
	ck_assert_uint_lt(ev_monotonic_ms() - t0, 2000);
	ck_assert_uint_eq(s.workers_late, 0);
	ck_assert_uint_eq(s.totals.conns_accepted, 30);
	statsnap_fini(&s);

	for (unsigned i = 0; i < 2; i++) {
		worker_stop(&w[i]);
		worker_join(&w[i]);
	}
	/* The late worker's question is answered at worker_fini(), after it was abandoned. */
	for (unsigned i = 0; i < 3; i++)
		worker_fini(&w[i]);
	ck_assert_uint_eq(rt.refs, 1);
}
END_TEST

START_TEST(test_uptime)
{
	struct statsnap s;

	ck_assert_int_eq(statsnap_collect(NULL, 0, 0, NULL, -EPERM, &s), 0);
	ck_assert_uint_eq(s.uptime_ms, 0);	/* not started yet */
	statsnap_fini(&s);
	statsnap_mark_start();
	usleep(120 * 1000);
	statsnap_mark_start();	/* a restarted server keeps the first start */
	ck_assert_int_eq(statsnap_collect(NULL, 0, 0, NULL, -EPERM, &s), 0);
	ck_assert_uint_ge(s.uptime_ms, 100);
	ck_assert_uint_lt(s.uptime_ms, 10000);
	statsnap_fini(&s);
}
END_TEST

static Suite *statsnap_suite(void)
{
	Suite *s = suite_create("statsnap");
	TCase *tc = tcase_create("collect");

	tcase_add_test(tc, test_collect_no_workers);
	tcase_add_test(tc, test_collect_workers);
	tcase_add_test(tc, test_uptime);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return run_suite(statsnap_suite());
}
