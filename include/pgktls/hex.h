/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * hex.h - hexadecimal digits, for the parsers that read them (config
 * escapes, keylog secrets, certificate fingerprints in the identity map).
 */
#ifndef PGKTLS_HEX_H
#define PGKTLS_HEX_H

/** hex_digit() - the value of hex digit @c (either case), or -1 (also for '\0'). */
static inline int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif /* PGKTLS_HEX_H */
