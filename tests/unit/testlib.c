// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
#include "config.h"

#include "testlib.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

const char *testlib_tmpdir(void)
{
	static char dir[PATH_MAX];
	const char *base;

	if (dir[0])
		return dir;
	base = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/pgktls-unit-XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		abort();
	}
	return dir;
}

int testlib_make_certs(const char *dir)
{
	char cmd[4096];

	/* ECDSA P-256, as the daemon's own --generate-cert does. */
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd '%s'; "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
		 "  -subj /CN=pgktls-test-ca -keyout ca.key -out ca.pem "
		 "  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
		 "  2>/dev/null; "
		 "for n in server client; do "
		 "  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "    -subj /CN=$n -keyout $n.key -out $n.csr 2>/dev/null; "
		 "  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\\n' > $n.ext; "
		 "  openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
		 "    -extfile $n.ext -out $n.pem 2>/dev/null; "
		 "done; cat server.pem ca.pem > server-chain.pem; chmod 600 *.key",
		 dir);
	return system(cmd) == 0 ? 0 : -1;
}

size_t testlib_read_data(const char *top, const char *name, void *buf, size_t len)
{
	char path[PATH_MAX];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/tests/data/%s", top, name);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	n = fread(buf, 1, len, f);
	fclose(f);
	ck_assert_uint_gt(n, 0);
	return n;
}
