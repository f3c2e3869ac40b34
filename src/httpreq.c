// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * httpreq.c - the HTTP/1.x request head of the metrics endpoint, sans I/O.
 *
 * Strict where leniency would let a request mean two things (RFC 9112's
 * request-smuggling rules: a space before a field's colon, obs-fold, a bare
 * CR, two Hosts, a body by Transfer-Encoding), lenient only where the RFC
 * allows it (a bare LF ends a line, empty lines before the request line).
 * Every rule is checked on each complete line as it arrives, so a malformed
 * request is refused after its first bad line, not at the time-out.
 */
#include "config.h"

#include "pgktls/httpreq.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 5.6.2: tchar. */
static bool is_tchar(unsigned char c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c && strchr("!#$%&'*+-.^_`|~", c);
}

/* A field value byte: VCHAR, obs-text, SP or HTAB (RFC 9110 5.5). */
static bool is_value_byte(unsigned char c)
{
	return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

static enum httpreq_result bad(struct httpreq *req, unsigned status, const char *why)
{
	req->status = status;
	req->error = why;
	return HTTPREQ_BAD;
}

/* Is [s, s + n) equal to the NUL-terminated @lit, ignoring ASCII case? */
static bool eq_nocase(const char *s, size_t n, const char *lit)
{
	return strlen(lit) == n && !strncasecmp(s, lit, n);
}

/* "GET /metrics HTTP/1.1", without its line ending. */
static enum httpreq_result request_line(const char *buf, size_t start, size_t n,
					struct httpreq *req)
{
	const char *l = buf + start, *sp1, *sp2, *t, *v;
	size_t mlen, tlen, vlen, i;

	if (n > HTTPREQ_LINE_MAX)
		return bad(req, 414, "request line too long");
	sp1 = memchr(l, ' ', n);
	if (!sp1 || sp1 == l)
		return bad(req, 400, "malformed request line");
	mlen = (size_t)(sp1 - l);
	for (i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)l[i]))
			return bad(req, 400, "malformed method");
	t = sp1 + 1;
	sp2 = memchr(t, ' ', n - mlen - 1);
	if (!sp2 || sp2 == t)
		return bad(req, 400, "malformed request line");
	tlen = (size_t)(sp2 - t);
	v = sp2 + 1;
	vlen = n - mlen - tlen - 2;
	for (i = 0; i < tlen; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return bad(req, 400, "malformed request target");
	/* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 2.3). */
	if (vlen != 8 || memcmp(v, "HTTP/", 5) || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
	    v[7] < '0' || v[7] > '9')
		return bad(req, 400, "malformed HTTP version");
	if (v[5] != '1')
		return bad(req, 505, "HTTP version not supported");
	req->minor = v[7] == '0' ? 0 : 1;

	if (mlen == 3 && !memcmp(l, "GET", 3))
		req->method = HTTPREQ_GET;	/* methods are case-sensitive (RFC 9110 9.1) */
	else if (mlen == 4 && !memcmp(l, "HEAD", 4))
		req->method = HTTPREQ_HEAD;
	else
		req->method = HTTPREQ_OTHER;

	/* absolute-form: a server must accept it (RFC 9112 3.2.2); keep its path. */
	if (tlen > 7 && (!strncasecmp(t, "http://", 7) || !strncasecmp(t, "https://", 8))) {
		const char *auth = t + (t[4] == ':' ? 7 : 8), *end = t + tlen, *p = auth;

		while (p < end && *p != '/' && *p != '?')
			p++;
		if (p == auth)
			return bad(req, 400, "malformed request target");
		req->path_off = (size_t)(p - buf);
		if (p == end || *p == '?') {
			req->path_len = 0;	/* no path: the caller sees "", not "/metrics" */
			return HTTPREQ_INCOMPLETE;
		}
		t = p;
		tlen = (size_t)(end - p);
	} else if (*t != '/' && !(tlen == 1 && *t == '*')) {
		return bad(req, 400, "malformed request target");
	}
	req->path_off = (size_t)(t - buf);
	for (req->path_len = 0; req->path_len < tlen && t[req->path_len] != '?';)
		req->path_len++;
	return HTTPREQ_INCOMPLETE;
}

/* Append one Accept value to req->accept, comma-joined. */
static enum httpreq_result add_accept(struct httpreq *req, const char *v, size_t n)
{
	size_t have = strlen(req->accept), sep = req->has_accept ? 1 : 0;

	if (have + sep + n > HTTPREQ_ACCEPT_MAX)
		return bad(req, 431, "Accept field too long");
	if (sep)
		req->accept[have++] = ',';
	memcpy(req->accept + have, v, n);
	req->accept[have + n] = '\0';
	req->has_accept = true;
	return HTTPREQ_INCOMPLETE;
}

/* "Name: value", without its line ending. */
static enum httpreq_result field_line(const char *l, size_t n, struct httpreq *req,
				      unsigned *hosts, long long *clen)
{
	const char *colon = memchr(l, ':', n), *v, *end = l + n;
	size_t nlen, i;

	if (*l == ' ' || *l == '\t')
		return bad(req, 400, "obsolete line folding");
	if (!colon || colon == l)
		return bad(req, 400, "malformed header field");
	nlen = (size_t)(colon - l);
	for (i = 0; i < nlen; i++)
		if (!is_tchar((unsigned char)l[i]))
			return bad(req, 400, "malformed header field name");
	for (v = colon + 1; v < end; v++)
		if (!is_value_byte((unsigned char)*v))
			return bad(req, 400, "control character in a header field");
	for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;

	if (eq_nocase(l, nlen, "Host")) {
		if (++*hosts > 1)
			return bad(req, 400, "more than one Host field");
	} else if (eq_nocase(l, nlen, "Accept")) {
		return add_accept(req, v, (size_t)(end - v));
	} else if (eq_nocase(l, nlen, "Transfer-Encoding")) {
		return bad(req, 413, "request body (Transfer-Encoding) not accepted");
	} else if (eq_nocase(l, nlen, "Content-Length")) {
		long long x = 0;

		if (v == end)
			return bad(req, 400, "malformed Content-Length");
		for (; v < end; v++) {
			if (*v < '0' || *v > '9' || x > 1000000000LL)
				return bad(req, 400, "malformed Content-Length");
			x = x * 10 + (*v - '0');
		}
		if (*clen >= 0 && *clen != x)
			return bad(req, 400, "conflicting Content-Length fields");
		*clen = x;
		if (x > 0)
			return bad(req, 413, "request body not accepted");
	}
	return HTTPREQ_INCOMPLETE;
}

enum httpreq_result httpreq_parse(const char *buf, size_t len, struct httpreq *req)
{
	size_t pos = 0, line_start;
	unsigned hosts = 0;
	long long clen = -1;
	bool have_request_line = false;
	enum httpreq_result r;

	memset(req, 0, sizeof(*req));
	/* At least one empty line before the request line is to be ignored (RFC 9112 2.2). */
	while (pos < len && (buf[pos] == '\r' || buf[pos] == '\n')) {
		if (buf[pos] == '\r' && (pos + 1 == len || buf[pos + 1] != '\n'))
			break;
		pos++;
	}
	for (;;) {
		const char *nl;
		size_t n;

		line_start = pos;
		nl = memchr(buf + pos, '\n', len - pos);
		if (!nl) {
			/* No line end yet: refuse now what can only grow too long. */
			if (!have_request_line && len - line_start > HTTPREQ_LINE_MAX)
				return bad(req, 414, "request line too long");
			if (len >= HTTPREQ_HEAD_MAX)
				return bad(req, 431, "request header fields too large");
			return HTTPREQ_INCOMPLETE;
		}
		pos = (size_t)(nl - buf) + 1;
		if (pos > HTTPREQ_HEAD_MAX)
			return bad(req, have_request_line ? 431 : 414,
				   have_request_line ? "request header fields too large"
						     : "request line too long");
		n = (size_t)(nl - (buf + line_start));
		if (n > 0 && buf[line_start + n - 1] == '\r')
			n--;
		if (memchr(buf + line_start, '\r', n))
			return bad(req, 400, "bare CR in the request head");
		if (!have_request_line) {
			r = request_line(buf, line_start, n, req);
			if (r != HTTPREQ_INCOMPLETE)
				return r;
			have_request_line = true;
			continue;
		}
		if (n == 0)
			break;	/* the empty line: the head is complete */
		r = field_line(buf + line_start, n, req, &hosts, &clen);
		if (r != HTTPREQ_INCOMPLETE)
			return r;
	}
	if (req->minor == 1 && hosts == 0)
		return bad(req, 400, "HTTP/1.1 request without Host");
	req->head_len = pos;
	return HTTPREQ_DONE;
}

/* ---- content negotiation ---- */

/* A q-value (RFC 9110 12.4.2) in thousandths, or -1 if malformed. */
static int qvalue(const char *s, size_t n)
{
	int q = 0, scale = 1000;

	if (n == 0 || (s[0] != '0' && s[0] != '1'))
		return -1;
	q = (s[0] - '0') * 1000;
	if (n == 1)
		return q;
	if (s[1] != '.' || n > 5)
		return -1;
	for (size_t i = 2; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		scale /= 10;
		q += (s[i] - '0') * scale;
	}
	return q > 1000 ? -1 : q;
}

/* Trim spaces and tabs from both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
	while (*n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* Which format one media range names. */
enum range_kind { RANGE_NONE, RANGE_TEXT, RANGE_OPENMETRICS };

/* One element of the Accept list: its kind and q (thousandths). */
static enum range_kind media_range(const char *s, size_t n, int *q)
{
	const char *semi = memchr(s, ';', n), *type = s, *p, *next;
	size_t tlen = semi ? (size_t)(semi - s) : n;
	bool om, text, version_ok = true;

	*q = 1000;
	trim(&type, &tlen);
	om = eq_nocase(type, tlen, "application/openmetrics-text");
	text = eq_nocase(type, tlen, "text/plain");
	if (!om && !text && !eq_nocase(type, tlen, "text/*") && !eq_nocase(type, tlen, "*/*"))
		return RANGE_NONE;
	/* Parameters: version (for our two types) and q; others are ignored. */
	for (p = semi; p; p = next) {
		const char *name = p + 1, *eq, *val;
		size_t plen, nlen, vlen;

		next = memchr(name, ';', (size_t)(s + n - name));
		plen = (size_t)((next ? next : s + n) - name);
		eq = memchr(name, '=', plen);
		if (!eq)
			continue;
		nlen = (size_t)(eq - name);
		trim(&name, &nlen);
		val = eq + 1;
		vlen = plen - (size_t)(val - (p + 1));
		trim(&val, &vlen);
		if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
			val++;
			vlen -= 2;
		}
		if (eq_nocase(name, nlen, "q")) {
			*q = qvalue(val, vlen);
			if (*q < 0)
				return RANGE_NONE;
		} else if (eq_nocase(name, nlen, "version")) {
			version_ok = om ? eq_nocase(val, vlen, "1.0.0")
					: text ? eq_nocase(val, vlen, "0.0.4") : true;
		}
	}
	if (!version_ok)
		return RANGE_NONE;
	return om ? RANGE_OPENMETRICS : RANGE_TEXT;
}

bool httpreq_wants_openmetrics(const char *accept)
{
	const char *s = accept, *end = accept + strlen(accept);
	int best_om = -1, best_text = -1;

	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		size_t n = comma ? (size_t)(comma - s) : (size_t)(end - s);
		int q;

		switch (media_range(s, n, &q)) {
		case RANGE_OPENMETRICS:
			best_om = q > best_om ? q : best_om;
			break;
		case RANGE_TEXT:
			best_text = q > best_text ? q : best_text;
			break;
		case RANGE_NONE:
			break;
		}
		s += n + (comma ? 1 : 0);
	}
	return best_om > 0 && best_om >= best_text;
}
