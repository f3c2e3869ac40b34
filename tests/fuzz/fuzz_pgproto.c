/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * fuzz_pgproto.c - libFuzzer harness for the PostgreSQL framing code.
 *
 * Built by `./configure --enable-fuzzing` (clang; the library is built with
 * coverage instrumentation, ASan and UBSan) and run, with the other targets,
 * by tests/fuzz/run.sh (`make fuzz`). One target by hand, on a copy of the
 * seed corpus so new inputs do not land in git:
 *
 *   rm -rf /tmp/corpus && cp -r tests/fuzz/corpus/pgproto /tmp/corpus
 *   BUILD/tests/fuzz/fuzz_pgproto -max_total_time=120 /tmp/corpus
 *
 * Every input is fed to each parser, both as it is and, when it frames as a
 * backend message, as that one message; the outputs are then checked against
 * the invariants the callers rely on, so a wrong answer aborts just like an
 * out-of-bounds read does.
 */
#include "config.h"

#include "pgktls/pgproto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the module's contract failed: let the fuzzer record it. */
#define FUZZ_CHECK(cond)                                                                   \
	do {                                                                               \
		if (!(cond)) {                                                             \
			fprintf(stderr, "fuzz_pgproto: %s:%d: %s\n", __FILE__, __LINE__,   \
				#cond);                                                    \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* Beyond this, the quadratic prefix check costs more than it finds. */
#define PREFIX_CHECK_MAX 512

static void fuzz_initial(const uint8_t *data, size_t size)
{
	size_t pktlen, plen2, i;
	const char *why = NULL, *why2;
	int ret, ret2;

	ret = pgproto_parse_initial(data, size, &pktlen, &why);
	if (ret < 0) {
		FUZZ_CHECK((ret == -EPROTO || ret == -EPROTONOSUPPORT || ret == -EMSGSIZE) &&
			   why && *why);
		/* A wrong length gets no reply; the rest an ErrorResponse. */
		FUZZ_CHECK((pgproto_refusal_sqlstate(ret) == NULL) == (ret == -EMSGSIZE));
		return;
	}
	switch (ret) {
	case PGPROTO_NEED_MORE:
		FUZZ_CHECK(pktlen == 0 || (pktlen > size && pktlen <= PG_MAX_STARTUP_PACKET));
		return;
	case PGPROTO_TLS_HELLO:
		FUZZ_CHECK(pktlen == 0 && size >= 1 && data[0] == PG_TLS_HANDSHAKE_BYTE);
		return;
	case PGPROTO_SSLREQUEST:
	case PGPROTO_GSSENCREQUEST:
		FUZZ_CHECK(pktlen == 8);
		break;
	case PGPROTO_CANCEL:
		FUZZ_CHECK(pktlen >= PG_CANCEL_MIN_LEN && pktlen <= PG_CANCEL_MAX_LEN);
		break;
	case PGPROTO_STARTUP:
		FUZZ_CHECK(pktlen > 8 && pktlen <= PG_MAX_STARTUP_PACKET);
		/* Ends in the terminator, right after the last value's NUL if any. */
		FUZZ_CHECK(data[pktlen - 1] == '\0' && (pktlen == 9 || data[pktlen - 2] == '\0'));
		break;
	default:
		FUZZ_CHECK(0);
	}
	FUZZ_CHECK(pktlen <= size);

	/* The packet alone gives the same answer: trailing bytes never matter. */
	ret2 = pgproto_parse_initial(data, pktlen, &plen2, &why2);
	FUZZ_CHECK(ret2 == ret && plen2 == pktlen);

	/* A complete, valid packet: each of its prefixes only ever asks for more. */
	if (pktlen > PREFIX_CHECK_MAX)
		return;
	for (i = 0; i < pktlen; i++) {
		ret2 = pgproto_parse_initial(data, i, &plen2, &why2);
		FUZZ_CHECK(ret2 == PGPROTO_NEED_MORE);
		FUZZ_CHECK(plen2 == (i < 4 ? 0 : pktlen));
	}
}

static void fuzz_sasl(const uint8_t *msg, size_t len)
{
	uint8_t *out = malloc(len ? len : 1), *again;
	size_t outlen, againlen;
	uint32_t code;
	int ret;

	if (!out)
		abort();
	ret = pgproto_sasl_strip_plus(msg, len, out, len, &outlen);
	FUZZ_CHECK(ret == 1 || ret == 0 || ret == -EPROTO);
	if (ret == 1) {
		/* Shorter, still a SASL request, with nothing left to strip. */
		FUZZ_CHECK(outlen < len && outlen >= 10);
		FUZZ_CHECK(pgproto_auth_code(out, outlen, &code) == 0 && code == PG_AUTH_SASL);
		again = malloc(outlen);
		if (!again)
			abort();
		FUZZ_CHECK(pgproto_sasl_strip_plus(out, outlen, again, outlen, &againlen) == 0);
		free(again);
	}
	free(out);
}

static void fuzz_error(const uint8_t *msg, size_t len)
{
	static const uint8_t codes[] = { 'S', 'V', 'C', 'M', 'D', 'H', 0 };
	static const char hint[] = "pgktls hint";
	const char *val, *h;
	uint8_t *out;
	size_t i, outcap = len + sizeof(hint) + 1, outlen, total;
	uint8_t type;
	int ret, malformed = 0;

	for (i = 0; i < sizeof(codes); i++) {
		ret = pgproto_error_field(msg, len, codes[i], &val);
		FUZZ_CHECK(ret == 0 || ret == -ENOENT || ret == -EPROTO);
		if (ret == 0) {
			/* The value lies inside the message and ends inside it. */
			FUZZ_CHECK((const uint8_t *)val > msg && (const uint8_t *)val < msg + len);
			FUZZ_CHECK(memchr(val, '\0', len - (size_t)((const uint8_t *)val - msg)));
		}
		if (ret == -EPROTO)
			malformed = 1;
	}
	if (pgproto_error_is_channel_binding(msg, len))
		FUZZ_CHECK(!malformed && msg[0] == 'E');

	out = malloc(outcap);
	if (!out)
		abort();
	ret = pgproto_error_add_hint(msg, len, hint, out, outcap, &outlen);
	FUZZ_CHECK(ret == 0 || ret == -EPROTO);
	FUZZ_CHECK((ret == -EPROTO) == malformed);
	if (ret == 0) {
		FUZZ_CHECK(outlen <= outcap && outlen > len);
		FUZZ_CHECK(pgproto_backend_msg(out, outlen, &type, &total) == 1);
		FUZZ_CHECK(total == outlen && type == msg[0]);
		FUZZ_CHECK(pgproto_error_field(out, outlen, 'H', &h) == 0);
		i = strlen(h);
		FUZZ_CHECK(i >= sizeof(hint) - 1 && !strcmp(h + i - (sizeof(hint) - 1), hint));
		/* One byte short must be refused, not overflowed. */
		FUZZ_CHECK(pgproto_error_add_hint(msg, len, hint, out, outlen - 1, &total) ==
			   -ENOSPC);
	}
	free(out);
}

/* Build an ErrorResponse around the input (as text) and read it back. */
static void fuzz_build(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	uint8_t *out;
	const char *val;
	size_t cap = 2 * size + 64, n;	/* text goes in twice: M and H */

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	out = malloc(cap);
	if (!out)
		abort();
	n = pgproto_build_error(out, cap, "FATAL", "08P01", text, NULL, text);
	FUZZ_CHECK(n > 0 && n <= cap);
	FUZZ_CHECK(pgproto_error_field(out, n, 'M', &val) == 0 && !strcmp(val, text));
	FUZZ_CHECK(pgproto_error_field(out, n, 'H', &val) == 0 && !strcmp(val, text));
	FUZZ_CHECK(pgproto_error_field(out, n, 'D', &val) == -ENOENT);
	FUZZ_CHECK(pgproto_build_error(out, n - 1, "FATAL", "08P01", text, NULL, text) == 0);
	free(out);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t type;
	size_t total = 0;
	uint32_t code;
	int ret;

	fuzz_initial(data, size);

	/* Everything as the raw buffer: length-word mismatches are common here. */
	ret = pgproto_auth_code(data, size, &code);
	FUZZ_CHECK(ret == 0 || ret == -EPROTO);
	fuzz_sasl(data, size);
	fuzz_error(data, size);

	/* And as the one message it frames, which reaches the inner parsers. */
	ret = pgproto_backend_msg(data, size, &type, &total);
	FUZZ_CHECK(ret == 1 || ret == 0 || ret == -EPROTO);
	if (ret == 1) {
		FUZZ_CHECK(total >= 5 && total <= size && type == data[0]);
		ret = pgproto_auth_code(data, total, &code);
		FUZZ_CHECK(ret == 0 || ret == -EPROTO);
		FUZZ_CHECK(ret == -EPROTO || (data[0] == 'R' && total >= 9));
		fuzz_sasl(data, total);
		fuzz_error(data, total);
	}
	if (size <= 4096)
		fuzz_build(data, size);
	return 0;
}
