// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * dump_config_keys.c - print config_key_names(), one per line, for
 * tools/check-config-docs.sh: the docs are checked against the code's own
 * key table instead of a grep of its source.
 */
#include "config.h"

#include <stdio.h>

#include "pgktls/config.h"

int main(void)
{
	for (const char *const *k = config_key_names(); *k; k++) {
		if (puts(*k) == EOF)
			return 1;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
