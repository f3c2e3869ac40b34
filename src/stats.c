// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
#include "config.h"

#include "pgktls/stats.h"

void stats_add(struct stats *sum, const struct stats *part)
{
#define STATS_SUM(name, help) sum->name += __atomic_load_n(&part->name, __ATOMIC_RELAXED);
	STATS_COUNTERS(STATS_SUM)
#undef STATS_SUM
	sum->conns_active += __atomic_load_n(&part->conns_active, __ATOMIC_RELAXED);
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
