// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * sessmove.c - established sessions moving to the process of a binary
 * upgrade: the payload (a connection's state in TLVs), the old process's
 * offer passes and answers, the new process's adoption. See sessmove.h for
 * the ownership rule (the ACK is the commit point).
 */
#include "config.h"

#include "pgktls/sessmove.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "pgktls/authinspect.h"
#include "pgktls/conn.h"
#include "pgktls/handover.h"
#include "pgktls/hop.h"
#include "pgktls/log.h"
#include "pgktls/pgproto.h"
#include "pgktls/relay.h"
#include "pgktls/stats.h"
#include "pgktls/tls.h"
#include "pgktls/tlv.h"
#include "pgktls/worker.h"

/* ---- the payload ---- */

/*
 * A connection's list. Every tag is mandatory: a binary that does not know
 * one refuses the session (NACK unsupported) rather than guess; the old
 * process then keeps it. The lists of the hops and the relay directions can
 * outgrow one TLV value (a tlsrec hop's read-ahead alone is 66 KB), so they
 * are written in place and carried in chunks (tlv_chunked_begin()).
 */
enum {
	SM_TAG_PEER = 1 | TLV_MANDATORY,	/* the client's address, as logged */
	SM_TAG_FLAGS = 2 | TLV_MANDATORY,	/* u32: CONN_F_MOVED_MASK bits */
	SM_TAG_ACCEPTED = 3 | TLV_MANDATORY,	/* u64: CLOCK_MONOTONIC ms at accept */
	SM_TAG_PIPES = 4 | TLV_MANDATORY,	/* u8: SM_PIPE_*: pipe fds after the sockets */
	SM_TAG_CLIENT = 5 | TLV_MANDATORY,	/* hop_export() of the client hop (chunks) */
	SM_TAG_SERVER = 6 | TLV_MANDATORY,	/* hop_export() of the server hop (chunks) */
	SM_TAG_C2S = 7 | TLV_MANDATORY,		/* relay_dir_export(), client to server (chunks) */
	SM_TAG_S2C = 8 | TLV_MANDATORY,		/* relay_dir_export(), server to client (chunks) */
	SM_TAG_C2S_FRAME = 9 | TLV_MANDATORY,	/* pgproto_framer_export() */
	SM_TAG_S2C_FRAME = 10 | TLV_MANDATORY,
	SM_TAG_AUTH = 11 | TLV_MANDATORY,	/* authinspect_export() */
	/* Optional: for the stats only. */
	SM_TAG_IDENTITY = 12,			/* the upstream identity's subject (identmap) */
};

#define SM_PIPE_C2S (1u << 0)
#define SM_PIPE_S2C (1u << 1)

/* The exporters, with one signature so put_list() can call any of them. */
typedef int export_fn(const void *obj, struct tlv_writer *w);

static int export_hop(const void *obj, struct tlv_writer *w)
{
	return hop_export(obj, w);
}

static int export_dir(const void *obj, struct tlv_writer *w)
{
	return relay_dir_export(obj, w);
}

static int export_framer(const void *obj, struct tlv_writer *w)
{
	return pgproto_framer_export(obj, w);
}

static int export_auth(const void *obj, struct tlv_writer *w)
{
	return authinspect_export(obj, w);
}

/* @fn's list of @obj under @tag, in as many TLVs as it needs; a failure sticks in @w. */
static int put_list(struct tlv_writer *w, uint16_t tag, export_fn *fn, const void *obj)
{
	struct tlv_writer sw;

	tlv_chunked_begin(w, &sw);
	return tlv_chunked_end(w, &sw, tag, fn(obj, &sw));
}

int sessmove_export(const struct conn *c, uint8_t *buf, size_t cap, size_t *len, int *fds,
		    uint8_t *n_fds)
{
	struct tlv_writer w;
	uint8_t pipes = 0;
	int r;

	*len = 0;
	*n_fds = 0;
	if (!conn_movable(c))
		return -EOPNOTSUPP;
	fds[(*n_fds)++] = c->client.fd;
	fds[(*n_fds)++] = c->server.fd;
	/* An empty pipe stays here (closed with the conn); one holding bytes moves with them. */
	if (c->c2s.pipe_len) {
		pipes |= SM_PIPE_C2S;
		fds[(*n_fds)++] = c->c2s.pipe[0];
	}
	if (c->s2c.pipe_len) {
		pipes |= SM_PIPE_S2C;
		fds[(*n_fds)++] = c->s2c.pipe[0];
	}
	tlv_writer_init(&w, buf, cap);
	tlv_put(&w, SM_TAG_PEER, c->peer, strnlen(c->peer, sizeof(c->peer)));
	tlv_put_u32(&w, SM_TAG_FLAGS, c->flags & CONN_F_MOVED_MASK);
	tlv_put_u64(&w, SM_TAG_ACCEPTED, c->accepted_ms);
	tlv_put_u8(&w, SM_TAG_PIPES, pipes);
	put_list(&w, SM_TAG_CLIENT, export_hop, &c->client);
	put_list(&w, SM_TAG_SERVER, export_hop, &c->server);
	put_list(&w, SM_TAG_C2S, export_dir, &c->c2s);
	put_list(&w, SM_TAG_S2C, export_dir, &c->s2c);
	put_list(&w, SM_TAG_C2S_FRAME, export_framer, &c->c2s_frame);
	put_list(&w, SM_TAG_S2C_FRAME, export_framer, &c->s2c_frame);
	r = put_list(&w, SM_TAG_AUTH, export_auth, &c->auth);
	if (!r && c->identity)
		r = tlv_put(&w, SM_TAG_IDENTITY, c->identity->subject,
			    strnlen(c->identity->subject, sizeof(c->identity->subject)));
	if (!r)
		r = tlv_writer_err(&w);
	if (r) {
		OPENSSL_cleanse(buf, w.len);
		*n_fds = 0;
		/* tlv_put() says -ENOSPC for a full buffer; -EINVAL only for a bug. */
		return r;
	}
	*len = w.len;
	return 0;
}

/* A field's chunks joined in a fresh buffer (wiped and freed by the caller). */
static int gather(const uint8_t *payload, size_t len, const struct tlv_field *f, uint8_t **out,
		  size_t *n)
{
	long got;

	*out = malloc(f->total ? f->total : 1);
	if (!*out)
		return -ENOMEM;
	got = tlv_gather(payload, len, f->tag, *out, f->total);
	if (got < 0) {
		free(*out);
		*out = NULL;
		return (int)got;
	}
	*n = (size_t)got;
	return 0;
}

/* Rebuild one hop around @fd from field @f. */
static int import_hop(struct hop *h, int fd, const char *name, const uint8_t *payload, size_t len,
		      const struct tlv_field *f)
{
	uint8_t *list;
	size_t n = 0;
	int r = gather(payload, len, f, &list, &n);

	if (r) {
		hop_init(h, fd, name, false);
		return r;
	}
	r = hop_import(h, fd, name, list, n);
	OPENSSL_cleanse(list, n);
	free(list);
	return r;
}

/* Rebuild one relay direction from field @f, with its pipe's read end @pipe_fd (or -1). */
static int import_dir(struct relay_dir *d, int *pipe_fd, const uint8_t *payload, size_t len,
		      const struct tlv_field *f)
{
	uint8_t *list;
	size_t n = 0;
	int r = gather(payload, len, f, &list, &n);

	if (r)
		return r;
	r = relay_dir_import(d, list, n);
	/* Bytes in flight may be an authentication exchange (a cleartext password). */
	OPENSSL_cleanse(list, n);
	free(list);
	if (r)
		return r;
	/* Bytes in a pipe and the pipe itself come together, or neither does. */
	if ((d->pipe_len > 0) != (*pipe_fd >= 0))
		return -EBADMSG;
	if (*pipe_fd >= 0) {
		/* Its write end stayed in the old process: drained, then closed (relay.c). */
		d->pipe[0] = *pipe_fd;
		*pipe_fd = -1;
	}
	return 0;
}

/*
 * The identity this process's runtime has for @subject: what the stats show
 * as upstream_identity. Not found (the map changed): none is shown.
 */
static const struct tls_identity *find_identity(const struct conn *c, const uint8_t *subject,
						size_t len)
{
	if (!c->rt)
		return NULL;
	for (size_t i = 0; i < c->rt->tls.n_identities; i++) {
		const struct tls_identity *id = &c->rt->tls.identities[i];

		if (strlen(id->subject) == len && !memcmp(id->subject, subject, len))
			return id;
	}
	return NULL;
}

int sessmove_import(struct conn *c, const uint8_t *payload, size_t len, int *fds, uint8_t n_fds,
		    char *why, size_t whylen)
{
	enum { F_PEER, F_FLAGS, F_ACCEPTED, F_PIPES, F_CLIENT, F_SERVER, F_C2S, F_S2C,
	       F_C2S_FRAME, F_S2C_FRAME, F_AUTH, F_IDENTITY, F_N };
	struct tlv_field f[F_N] = {
		[F_PEER] = { .tag = SM_TAG_PEER, .min_len = 1, .max_len = SOCK_ADDR_STRLEN - 1,
			     .required = true },
		[F_FLAGS] = { .tag = SM_TAG_FLAGS, .min_len = 4, .max_len = 4, .required = true },
		[F_ACCEPTED] = { .tag = SM_TAG_ACCEPTED, .min_len = 8, .max_len = 8,
				 .required = true },
		[F_PIPES] = { .tag = SM_TAG_PIPES, .min_len = 1, .max_len = 1, .required = true },
		[F_CLIENT] = { .tag = SM_TAG_CLIENT, .min_len = 1, .max_len = TLV_MAX_VALUE,
			       .required = true, .repeat = true },
		[F_SERVER] = { .tag = SM_TAG_SERVER, .min_len = 1, .max_len = TLV_MAX_VALUE,
			       .required = true, .repeat = true },
		[F_C2S] = { .tag = SM_TAG_C2S, .min_len = 1, .max_len = TLV_MAX_VALUE,
			    .required = true, .repeat = true },
		[F_S2C] = { .tag = SM_TAG_S2C, .min_len = 1, .max_len = TLV_MAX_VALUE,
			    .required = true, .repeat = true },
		[F_C2S_FRAME] = { .tag = SM_TAG_C2S_FRAME, .min_len = 1, .max_len = TLV_MAX_VALUE,
				  .required = true, .repeat = true },
		[F_S2C_FRAME] = { .tag = SM_TAG_S2C_FRAME, .min_len = 1, .max_len = TLV_MAX_VALUE,
				  .required = true, .repeat = true },
		[F_AUTH] = { .tag = SM_TAG_AUTH, .min_len = 1, .max_len = TLV_MAX_VALUE,
			     .required = true, .repeat = true },
		[F_IDENTITY] = { .tag = SM_TAG_IDENTITY, .min_len = 1,
				 .max_len = sizeof(((struct tls_identity *)0)->subject) - 1 },
	};
	int pipe_fd[2] = { -1, -1 };
	unsigned want = 2;
	uint8_t pipes, *list;
	uint32_t flags;
	size_t n = 0;
	int r;

	why[0] = '\0';
	r = tlv_parse(payload, len, f, F_N);
	if (r) {
		snprintf(why, whylen, "%s", r == -EPROTONOSUPPORT
						    ? "a mandatory field this binary does not know"
						    : "a malformed session list");
		return r;
	}
	flags = tlv_u32(&f[F_FLAGS]);
	pipes = tlv_u8(&f[F_PIPES]);
	if (flags & ~CONN_F_MOVED_MASK || pipes & ~(SM_PIPE_C2S | SM_PIPE_S2C)) {
		snprintf(why, whylen, "unknown connection flags");
		return -EBADMSG;
	}
	/* A string, as exported: a NUL inside would cut it (and the next export) short. */
	if (memchr(f[F_PEER].val, '\0', f[F_PEER].len)) {
		snprintf(why, whylen, "a malformed client address");
		return -EBADMSG;
	}
	want += !!(pipes & SM_PIPE_C2S) + !!(pipes & SM_PIPE_S2C);
	if (n_fds != want) {
		snprintf(why, whylen, "%u descriptors where the state names %u", n_fds, want);
		return -EBADMSG;
	}
	if (pipes & SM_PIPE_C2S)
		pipe_fd[0] = fds[2];
	if (pipes & SM_PIPE_S2C)
		pipe_fd[1] = fds[want - 1];
	memcpy(c->peer, f[F_PEER].val, f[F_PEER].len);
	c->peer[f[F_PEER].len] = '\0';
	c->flags = flags;
	c->accepted_ms = tlv_u64(&f[F_ACCEPTED]);

	/* From here each descriptor is the conn's (conn_discard() closes it) or still ours. */
	r = import_hop(&c->client, fds[SESSMOVE_FD_CLIENT], "client", payload, len, &f[F_CLIENT]);
	fds[SESSMOVE_FD_CLIENT] = -1;
	if (r) {
		snprintf(why, whylen, "client hop: %s", strerror(-r));
		goto out;
	}
	r = import_hop(&c->server, fds[SESSMOVE_FD_SERVER], "server", payload, len, &f[F_SERVER]);
	fds[SESSMOVE_FD_SERVER] = -1;
	if (r) {
		snprintf(why, whylen, "server hop: %s", strerror(-r));
		goto out;
	}
	r = import_dir(&c->c2s, &pipe_fd[0], payload, len, &f[F_C2S]);
	if (!r)
		r = import_dir(&c->s2c, &pipe_fd[1], payload, len, &f[F_S2C]);
	if (r) {
		snprintf(why, whylen, "relay buffers: %s", strerror(-r));
		goto out;
	}
	r = gather(payload, len, &f[F_C2S_FRAME], &list, &n);
	if (!r) {
		r = pgproto_framer_import(&c->c2s_frame, list, n);
		free(list);
	}
	if (!r && !(r = gather(payload, len, &f[F_S2C_FRAME], &list, &n))) {
		r = pgproto_framer_import(&c->s2c_frame, list, n);
		free(list);
	}
	if (!r && !(r = gather(payload, len, &f[F_AUTH], &list, &n))) {
		r = authinspect_import(&c->auth, list, n);
		free(list);
	}
	if (r)
		snprintf(why, whylen, "protocol state: %s", strerror(-r));
	else if (f[F_IDENTITY].seen)
		c->identity = find_identity(c, f[F_IDENTITY].val, f[F_IDENTITY].len);
out:
	/* A pipe the conn did not take goes back to the caller's list, to be closed there. */
	if (pipes & SM_PIPE_C2S)
		fds[2] = pipe_fd[0];
	if (pipes & SM_PIPE_S2C)
		fds[want - 1] = pipe_fd[1];
	return r;
}

/* ---- the old process: offering ---- */

/* One connection offered and not yet answered; its answer reaches its worker in it. */
struct offered {
	struct worker_call call;	/* posted to the worker on the answer */
	struct sessmove_offer *o;	/* a reference */
	struct conn *c;			/* frozen until the answer: nothing else frees it */
	uint64_t id;
	unsigned widx;
	bool ack;
	bool release;			/* sessmove_abandon() without thaw: leave the conn be */
	uint32_t reason;		/* NACK: enum handover_nack, 0 = the new process went away */
	char text[HANDOVER_TEXT_MAX + 1];
	struct offered *next;		/* in its bucket of the offer's table */
};

struct sessmove_offer {
	int fd;				/* the main thread's end; each pass sends on a dup() */
	uint16_t version;		/* the conversation's */
	unsigned refs;			/* atomic */
	bool gone;			/* atomic: the new process went away */
	pthread_mutex_t lock;		/* guards the table */
	/*
	 * The connections offered and waiting for an answer, by id: every answer
	 * looks one up, and tens of thousands may be waiting at once.
	 */
	struct offered **buckets;	/* 1 << bits chains, or NULL */
	unsigned bits;
	size_t n;
	/* Atomic counters (struct sessmove_counts). */
	uint32_t offered, moved, refused, unsettled, passes;
};

/* One worker's pass over its connections. */
struct pass_call {
	struct worker_call call;
	struct sessmove_offer *o;	/* a reference */
	int fd;				/* a dup() of o->fd, closed at the end of the pass */
};

static struct sessmove_offer *offer_get(struct sessmove_offer *o)
{
	__atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
	return o;
}

void sessmove_offer_put(struct sessmove_offer *o)
{
	if (!o || __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	pthread_mutex_destroy(&o->lock);
	free(o->buckets);
	free(o);
}

struct sessmove_offer *sessmove_offer_new(int fd, uint16_t version)
{
	struct sessmove_offer *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->fd = fd;
	o->version = version;
	o->refs = 1;
	pthread_mutex_init(&o->lock, NULL);
	return o;
}

static void add32(uint32_t *v, int32_t d)
{
	__atomic_add_fetch(v, (uint32_t)d, __ATOMIC_ACQ_REL);
}

/* Fibonacci hashing: the ids count up, the top bits of the product spread them. */
static size_t bucket_of(uint64_t id, unsigned bits)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> (64 - bits));
}

/* Spread the table over 1 << @bits chains. Return: 0 or -ENOMEM (the table is as it was). */
static int rehash(struct sessmove_offer *o, unsigned bits)
{
	struct offered **b = calloc((size_t)1 << bits, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; o->buckets && i < (size_t)1 << o->bits; i++) {
		for (struct offered *of = o->buckets[i], *next; of; of = next) {
			size_t k = bucket_of(of->id, bits);

			next = of->next;
			of->next = b[k];
			b[k] = of;
		}
	}
	free(o->buckets);
	o->buckets = b;
	o->bits = bits;
	return 0;
}

static int track(struct sessmove_offer *o, struct offered *of)
{
	size_t k;
	int r = 0;

	pthread_mutex_lock(&o->lock);
	/* Grown at one entry per chain; a table that cannot grow takes it in a longer chain. */
	if (!o->buckets || o->n >= (size_t)1 << o->bits)
		r = rehash(o, o->buckets ? o->bits + 1 : 6);
	if (o->buckets) {
		k = bucket_of(of->id, o->bits);
		of->next = o->buckets[k];
		o->buckets[k] = of;
		o->n++;
		r = 0;
	}
	pthread_mutex_unlock(&o->lock);
	return r;
}

/* Take the entry for @id out of the table. Return: it, or NULL if it is not there. */
static struct offered *untrack(struct sessmove_offer *o, uint64_t id)
{
	struct offered *of = NULL;

	pthread_mutex_lock(&o->lock);
	if (o->buckets) {
		struct offered **p = &o->buckets[bucket_of(id, o->bits)];

		while (*p && (*p)->id != id)
			p = &(*p)->next;
		if (*p) {
			of = *p;
			*p = of->next;
			o->n--;
		}
	}
	pthread_mutex_unlock(&o->lock);
	return of;
}

static const char *nack_name(uint32_t reason)
{
	switch (reason) {
	case HANDOVER_N_UNSUPPORTED:
		return "unsupported";
	case HANDOVER_N_MALFORMED:
		return "malformed";
	case HANDOVER_N_RESOURCES:
		return "resources";
	case HANDOVER_N_REFUSED:
		return "refused";
	default:
		return "gone";
	}
}

/* In the conn's worker: the answer for a frozen connection. */
static void answer_fn(struct worker *w, void *arg)
{
	struct offered *of = arg;
	struct sessmove_offer *o = of->o;

	/* A stopping worker closes (or has closed) every connection, a frozen one silently. */
	if (!of->release && !__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE)) {
		struct conn *c = of->c;

		PGKTLS_BUG_ON(c->id != of->id || !(c->flags & CONN_F_FROZEN));
		if (of->ack) {
			conn_close(c, CONN_CLOSE_HANDED_OVER);
		} else {
			clog_info(c, "the new process did not take it (%s%s%s): it stays here until "
				     "it ends",
				  nack_name(of->reason), of->text[0] ? ": " : "", of->text);
			conn_thaw(c);
		}
	}
	add32(&o->unsettled, -1);
	sessmove_offer_put(o);
	OPENSSL_cleanse(of, sizeof(*of));
	free(of);
}

/* Offer @c (movable) over @fd, with @buf (HANDOVER_SESSION_MAX bytes) for its payload. */
static void offer_one(struct sessmove_offer *o, struct worker *w, struct conn *c, int fd,
		      uint8_t *buf)
{
	struct handover_msg m = { .version = o->version, .type = HANDOVER_SESSION };
	struct offered *of;
	size_t len;
	int r;

	r = sessmove_export(c, buf, HANDOVER_SESSION_MAX, &len, m.u.session.fds,
			    &m.u.session.n_fds);
	if (r == -ENOSPC) {
		/* Its buffers in flight fill more than one SESSION: a later pass, once they drain. */
		clog_debug(c, "not offered yet: its buffered bytes do not fit one message");
		return;
	}
	if (r < 0) {
		clog_warn(c, "cannot offer it to the new process (%s): it stays here", strerror(-r));
		c->flags |= CONN_F_KEPT;
		return;
	}
	of = calloc(1, sizeof(*of));
	if (!of) {
		OPENSSL_cleanse(buf, len);
		return;	/* the next pass tries again */
	}
	of->o = offer_get(o);
	of->c = c;
	of->id = c->id;
	of->widx = w->idx;
	of->call.fn = answer_fn;
	of->call.arg = of;
	/* Frozen and listed before it is sent: the answer may come before send returns. */
	conn_freeze(c);
	if (track(o, of) < 0) {
		OPENSSL_cleanse(buf, len);
		sessmove_offer_put(o);
		free(of);
		conn_thaw(c);
		return;
	}
	add32(&o->offered, 1);
	add32(&o->unsettled, 1);
	m.u.session.id = c->id;
	m.u.session.payload = buf;
	m.u.session.len = (uint32_t)len;
	r = handover_send(fd, &m, -1, SESSMOVE_SEND_MS);
	OPENSSL_cleanse(buf, len);
	if (r == 0) {
		clog_debug(c, "offered to the new process (%zu bytes of state, %u descriptors)", len,
			   m.u.session.n_fds);
		return;
	}
	if (r == -EPIPE || r == -ECONNRESET)
		__atomic_store_n(&o->gone, true, __ATOMIC_RELEASE);
	/* Not sent, so never answered: unless sessmove_abandon() took it, it is ours to undo. */
	if (untrack(o, c->id) == of) {
		add32(&o->offered, -1);
		add32(&o->unsettled, -1);
		sessmove_offer_put(o);
		free(of);
		clog_warn(c, "could not offer it to the new process (%s): it stays here",
			  strerror(-r));
		conn_thaw(c);
	}
}

static void pass_fn(struct worker *w, void *arg)
{
	struct pass_call *pc = arg;
	struct sessmove_offer *o = pc->o;
	uint8_t *buf = NULL;

	if (!__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE) &&
	    !__atomic_load_n(&o->gone, __ATOMIC_ACQUIRE))
		buf = malloc(HANDOVER_SESSION_MAX);
	for (struct conn *c = w->conns, *next; c && buf; c = next) {
		/* conn_thaw() may close @c (its list entry goes), never another. */
		next = c->next;
		if (__atomic_load_n(&o->gone, __ATOMIC_ACQUIRE))
			break;
		if (conn_movable(c))
			offer_one(o, w, c, pc->fd, buf);
	}
	free(buf);
	close(pc->fd);
	add32(&o->passes, -1);
	sessmove_offer_put(o);
	free(pc);
}

int sessmove_offer_pass(struct sessmove_offer *o, struct worker *workers, size_t n)
{
	if (__atomic_load_n(&o->passes, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&o->gone, __ATOMIC_ACQUIRE))
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct pass_call *pc = calloc(1, sizeof(*pc));

		if (!pc)
			return -ENOMEM;
		pc->fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 0);
		if (pc->fd < 0) {
			int r = -errno;

			free(pc);
			return r;
		}
		pc->o = offer_get(o);
		pc->call.fn = pass_fn;
		pc->call.arg = pc;
		add32(&o->passes, 1);
		worker_call(&workers[i], &pc->call);
	}
	return 0;
}

bool sessmove_answer(struct sessmove_offer *o, struct worker *workers,
		     const struct handover_msg *msg)
{
	bool ack = msg->type == HANDOVER_SESSION_ACK;
	struct offered *of = untrack(o, ack ? msg->u.session_ack.id : msg->u.session_nack.id);

	if (!of)
		return false;
	of->ack = ack;
	if (ack) {
		add32(&o->moved, 1);
		STAT_INC(&stats_process, sessions_handed_over);
	} else {
		add32(&o->refused, 1);
		of->reason = msg->u.session_nack.reason ? msg->u.session_nack.reason
							: HANDOVER_N_REFUSED;
		snprintf(of->text, sizeof(of->text), "%s", msg->u.session_nack.text);
	}
	worker_call(&workers[of->widx], &of->call);
	return true;
}

void sessmove_abandon(struct sessmove_offer *o, struct worker *workers, bool thaw)
{
	struct offered **b;
	size_t n_buckets;

	__atomic_store_n(&o->gone, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&o->lock);
	b = o->buckets;
	n_buckets = b ? (size_t)1 << o->bits : 0;
	o->buckets = NULL;
	o->bits = 0;
	o->n = 0;
	pthread_mutex_unlock(&o->lock);
	for (size_t i = 0; i < n_buckets; i++) {
		for (struct offered *of = b[i], *next; of; of = next) {
			/* Once posted, @of is its worker's (answer_fn() frees it). */
			next = of->next;
			of->ack = false;
			of->release = !thaw;
			of->reason = 0;
			snprintf(of->text, sizeof(of->text), "the new process went away");
			add32(&o->refused, 1);
			worker_call(&workers[of->widx], &of->call);
		}
	}
	free(b);
}

void sessmove_counts(const struct sessmove_offer *o, struct sessmove_counts *out)
{
	out->offered = __atomic_load_n(&o->offered, __ATOMIC_ACQUIRE);
	out->moved = __atomic_load_n(&o->moved, __ATOMIC_ACQUIRE);
	out->refused = __atomic_load_n(&o->refused, __ATOMIC_ACQUIRE);
	out->unsettled = __atomic_load_n(&o->unsettled, __ATOMIC_ACQUIRE);
	out->passes = __atomic_load_n(&o->passes, __ATOMIC_ACQUIRE);
}

/* ---- the new process: adopting ---- */

struct adopt_call {
	struct worker_call call;
	struct handover_msg msg;	/* the SESSION, its payload and descriptors ours */
	int fd;				/* a dup() of the handover socket, for the answer */
	pid_t from_pid;
};

static uint32_t nack_reason(int err)
{
	if (err == -EPROTONOSUPPORT || err == -EOPNOTSUPP)
		return HANDOVER_N_UNSUPPORTED;
	if (err == -ENOMEM || err == -EMFILE || err == -ENFILE)
		return HANDOVER_N_RESOURCES;
	return HANDOVER_N_MALFORMED;
}

static void adopt_fn(struct worker *w, void *arg)
{
	struct adopt_call *ac = arg;
	struct handover_msg *m = &ac->msg;
	struct handover_msg no = { .version = m->version, .type = HANDOVER_SESSION_NACK };
	struct handover_msg yes = { .version = m->version, .type = HANDOVER_SESSION_ACK };
	uint64_t old_id = m->u.session.id;
	struct conn *c = NULL;
	int r;

	no.u.session_nack.id = yes.u.session_ack.id = old_id;
	if (__atomic_load_n(&w->stopping, __ATOMIC_ACQUIRE)) {
		no.u.session_nack.reason = HANDOVER_N_REFUSED;
		snprintf(no.u.session_nack.text, sizeof(no.u.session_nack.text),
			 "the new process is stopping");
		goto refuse;
	}
	c = conn_new(w, worker_untrack_conn);
	if (!c) {
		no.u.session_nack.reason = HANDOVER_N_RESOURCES;
		snprintf(no.u.session_nack.text, sizeof(no.u.session_nack.text), "out of memory");
		goto refuse;
	}
	r = sessmove_import(c, m->u.session.payload, m->u.session.len, m->u.session.fds,
			    m->u.session.n_fds, no.u.session_nack.text,
			    sizeof(no.u.session_nack.text));
	if (r < 0) {
		no.u.session_nack.reason = nack_reason(r);
		goto refuse;
	}
	/*
	 * The commit point: once the old process has our ACK it closes its copies.
	 * Not sent, it never will, and keeps relaying: ours must then go unused.
	 */
	/*
	 * Counted first (workers adopt at once: an atomic add, not STAT_INC), as the
	 * old process may report it (SESSIONS_END) as soon as it has the ACK.
	 */
	__atomic_add_fetch(&stats_process.sessions_adopted, 1, __ATOMIC_RELAXED);
	r = handover_send(ac->fd, &yes, -1, SESSMOVE_SEND_MS);
	if (r < 0) {
		__atomic_sub_fetch(&stats_process.sessions_adopted, 1, __ATOMIC_RELAXED);
		log_warn("upgrade: could not confirm c#%llu of pid %ld (%s): it stays there",
			 (unsigned long long)old_id, (long)ac->from_pid, strerror(-r));
		conn_discard(c);
		goto out;
	}
	worker_track_conn(w, c);
	clog_info(c, "adopted: was c#%llu in pid %ld (client->server %llu bytes, "
		     "server->client %llu bytes so far)",
		  (unsigned long long)old_id, (long)ac->from_pid, (unsigned long long)c->c2s.bytes,
		  (unsigned long long)c->s2c.bytes);
	conn_resume(c);
	goto out;
refuse:
	log_info("upgrade: not adopting c#%llu of pid %ld: %s", (unsigned long long)old_id,
		 (long)ac->from_pid, no.u.session_nack.text);
	if (c)
		conn_discard(c);
	if (handover_send(ac->fd, &no, -1, SESSMOVE_SEND_MS) < 0)
		log_debug("upgrade: the previous process did not take our answer");
out:
	handover_msg_fini(m);	/* wipes the payload, closes what no hop took */
	close(ac->fd);
	free(ac);
}

int sessmove_adopt(struct worker *w, struct handover_msg *msg, int fd, pid_t from_pid)
{
	struct adopt_call *ac = calloc(1, sizeof(*ac));

	if (!ac)
		return -ENOMEM;
	ac->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (ac->fd < 0) {
		int r = -errno;

		free(ac);
		return r;
	}
	ac->from_pid = from_pid;
	ac->msg = *msg;
	msg->u.session.payload = NULL;
	msg->u.session.len = 0;
	for (size_t i = 0; i < HANDOVER_SESSION_FDS; i++)
		msg->u.session.fds[i] = -1;
	ac->call.fn = adopt_fn;
	ac->call.arg = ac;
	worker_call(w, &ac->call);
	return 0;
}
