// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
#include "config.h"

#include "pgktls/stats.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct stats_process stats_process;
/* Guards stats_process.upgrade_error: a string cannot be read atomically. */
static pthread_mutex_t upgrade_error_lock = PTHREAD_MUTEX_INITIALIZER;

const uint32_t stats_hs_bounds_ms[STATS_HS_BUCKETS - 1] = STATS_HS_BOUNDS_MS;

/* stats_add() sums everything from closed_by_reason to hs_latency_sum_ms as one array. */
_Static_assert(offsetof(struct stats, hs_latency_sum_ms) + sizeof(uint64_t) -
			       offsetof(struct stats, closed_by_reason) ==
		       sizeof(((struct stats *)0)->closed_by_reason) +
			       sizeof(((struct stats *)0)->hs_failed) +
			       sizeof(((struct stats *)0)->ktls_dir_engaged) +
			       sizeof(((struct stats *)0)->ktls_dir_fallback) +
			       sizeof(((struct stats *)0)->hs_latency) + sizeof(uint64_t),
	       "struct stats arrays must be contiguous uint64_t");

static void add_words(uint64_t *sum, const uint64_t *part, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sum[i] += __atomic_load_n(&part[i], __ATOMIC_RELAXED);
}

void stats_add(struct stats *sum, const struct stats *part)
{
#define STATS_SUM(name, help) sum->name += __atomic_load_n(&part->name, __ATOMIC_RELAXED);
	STATS_COUNTERS(STATS_SUM)
#undef STATS_SUM
	sum->conns_active += __atomic_load_n(&part->conns_active, __ATOMIC_RELAXED);
	/* The arrays are plain uint64_t runs: sum them word by word. */
	add_words(sum->closed_by_reason, part->closed_by_reason,
		  (size_t)((const char *)(&part->hs_latency_sum_ms + 1) -
			   (const char *)part->closed_by_reason) / sizeof(uint64_t));
}

void stats_hs_observe(struct stats *st, uint64_t ms)
{
	size_t b = 0;

	while (b < STATS_HS_BUCKETS - 1 && ms > stats_hs_bounds_ms[b])
		b++;
	STAT_INC(st, hs_latency[b]);
	STAT_ADD(st, hs_latency_sum_ms, ms);
}

const char *const *stats_helps(void)
{
	static const char *const helps[] = {
#define STATS_HELP(name, help) help,
		STATS_COUNTERS(STATS_HELP)
#undef STATS_HELP
		NULL
	};
	return helps;
}

const char *stats_hs_fail_name(enum stats_hs_fail f)
{
	static const char *const names[STATS_HS_FAIL__N] = {
		[STATS_HS_FAIL_PROTOCOL] = "protocol",
		[STATS_HS_FAIL_VERIFY] = "verify",
		[STATS_HS_FAIL_EOF] = "eof",
		[STATS_HS_FAIL_TIMEOUT] = "timeout",
	};
	return f < STATS_HS_FAIL__N ? names[f] : "?";
}

const char *const *stats_names(void)
{
	static const char *const names[] = {
#define STATS_NAME(name, help) #name,
		STATS_COUNTERS(STATS_NAME)
#undef STATS_NAME
		NULL
	};
	return names;
}

void stats_process_upgrade_load(struct stats_process *out)
{
#define LOAD(f) out->f = __atomic_load_n(&stats_process.f, __ATOMIC_RELAXED)
	LOAD(upgrades_started);
	LOAD(upgrades_ok);
	LOAD(upgrades_failed);
	LOAD(upgrade_child_pid);
	LOAD(adopted_from_pid);
	LOAD(adopted_listeners);
	LOAD(previous_draining);
	LOAD(previous_running);
	LOAD(previous_moved);
	LOAD(previous_kept);
	LOAD(sessions_handed_over);
	LOAD(sessions_kept);
	LOAD(sessions_adopted);
#undef LOAD
	pthread_mutex_lock(&upgrade_error_lock);
	memcpy(out->upgrade_error, stats_process.upgrade_error, sizeof(out->upgrade_error));
	pthread_mutex_unlock(&upgrade_error_lock);
}

void stats_process_set_upgrade_error(const char *why)
{
	pthread_mutex_lock(&upgrade_error_lock);
	snprintf(stats_process.upgrade_error, sizeof(stats_process.upgrade_error), "%s", why);
	pthread_mutex_unlock(&upgrade_error_lock);
}
