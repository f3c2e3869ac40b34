/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * testlib.h - shared helpers for the check unit tests.
 */
#ifndef PGKTLS_TESTLIB_H
#define PGKTLS_TESTLIB_H

#include <check.h>

/**
 * run_suite() - run @s with check's normal summary line.
 *
 * Return: the process exit status: 0 if every test passed, 1 otherwise.
 */
int run_suite(Suite *s);

/**
 * testlib_tmpdir() - a fresh private directory for this test process
 * (removed at exit by the caller's choice: tests leave it for post-mortems
 * under $TMPDIR). Return: its path (static storage).
 */
const char *testlib_tmpdir(void);

/**
 * testlib_make_certs() - create a CA and a server/client certificate pair
 * under @dir with the openssl command: ca.pem, server.pem (chain: leaf
 * then CA is NOT included; server-chain.pem has both), server.key,
 * client.pem, client.key. SANs: DNS:localhost, IP:127.0.0.1, IP:::1.
 *
 * Return: 0, or -1 (the test should fail).
 */
int testlib_make_certs(const char *dir);

/**
 * testlib_read_data() - read up to @len bytes of the file @name under
 * @top/tests/data into @buf; the test fails if it cannot be opened or is empty.
 *
 * Return: the number of bytes read.
 */
size_t testlib_read_data(const char *top, const char *name, void *buf, size_t len);

#endif /* PGKTLS_TESTLIB_H */
