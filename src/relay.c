// SPDX-License-Identifier: MIT
/* Copyright (c) 2026 The pgktls developers */
/*
 * relay.c - the two-way pump between a connection's hops (hop.h does
 * their I/O, whatever their engine).
 *
 * The pump reads each source into a worker-wide scratch buffer and writes
 * straight through to the destination; only what the destination will not
 * take yet is copied into the connection's own buffer, and while that
 * buffer holds data its source is not read. An idle connection therefore
 * holds no relay buffer at all.
 */
#include "config.h"

#include "pgktls/relay.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgktls/pgproto.h"
#include "pgktls/stats.h"
#include "pgktls/tlv.h"

/* Passes over both directions per wakeup: bounds the time one connection holds the loop. */
#define RELAY_MAX_PASSES 64
/* Bytes asked of one splice into the pipe (the pipe holds 64 KB by default). */
#define RELAY_PIPE_SIZE 65536u

static int reserve(struct relay_dir *d, uint32_t size)
{
	if (d->buf)
		return 0;
	d->buf = malloc(size);
	if (!d->buf)
		return -ENOMEM;
	d->cap = size;
	d->head = d->scan = d->tail = 0;
	return 0;
}

int relay_dir_reserve(struct relay_dir *d)
{
	return reserve(d, RELAY_BUF_SIZE);
}

static void count_bytes(struct relay *r, int i, size_t n)
{
	r->dir[i]->bytes += n;
	if (i == 0)
		STAT_ADD(r->stats, bytes_client_to_server, n);
	else
		STAT_ADD(r->stats, bytes_server_to_client, n);
}

void relay_dir_init(struct relay_dir *d)
{
	memset(d, 0, sizeof(*d));
	d->pipe[0] = d->pipe[1] = -1;
}

void relay_dir_free(struct relay_dir *d)
{
	free(d->buf);
	d->buf = NULL;
	d->cap = 0;
	d->head = d->scan = d->tail = 0;
}

void relay_dir_fini(struct relay_dir *d)
{
	relay_dir_free(d);
	if (d->pipe[0] >= 0)
		close(d->pipe[0]);
	if (d->pipe[1] >= 0)
		close(d->pipe[1]);
	d->pipe[0] = d->pipe[1] = -1;
	d->pipe_len = 0;
}

/* ---- splice: kernel-to-kernel moves, no userspace copy ---- */

/* Whether bytes can move from @src to @dst without passing through userspace. */
static bool can_splice(const struct hop *src, const struct hop *dst)
{
	return hop_splice(src) != HOP_SPLICE_NONE && hop_splice(dst) != HOP_SPLICE_NONE;
}

void relay_pipes_fini(struct relay_pipes *p)
{
	while (p->n > 0) {
		p->n--;
		close(p->fd[p->n][0]);
		close(p->fd[p->n][1]);
	}
}

/* Borrow an empty pipe for @d: a spare if there is one. Return: 0 or -errno. */
static int pipe_take(struct relay_pipes *p, struct relay_dir *d)
{
	if (p->n > 0) {
		p->n--;
		d->pipe[0] = p->fd[p->n][0];
		d->pipe[1] = p->fd[p->n][1];
		return 0;
	}
	if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		d->pipe[0] = d->pipe[1] = -1;
		return -errno;
	}
	return 0;
}

/*
 * @d's pipe is empty: back to the spares, or closed if there are enough. A
 * pipe adopted from another process (relay_dir_import()) came without its
 * write end: it is closed once drained.
 */
static void pipe_give(struct relay_pipes *p, struct relay_dir *d)
{
	if (d->pipe[1] < 0) {
		close(d->pipe[0]);
	} else if (p->n < RELAY_SPARE_PIPES) {
		p->fd[p->n][0] = d->pipe[0];
		p->fd[p->n][1] = d->pipe[1];
		p->n++;
	} else {
		close(d->pipe[0]);
		close(d->pipe[1]);
	}
	d->pipe[0] = d->pipe[1] = -1;
}

/* Drain the pipe into the destination; an emptied pipe goes back to the worker. */
static int splice_out(struct relay *r, int i, bool *progress)
{
	struct relay_dir *d = r->dir[i];

	if (d->pipe[0] >= 0 && d->pipe_len == 0)
		pipe_give(r->pipes, d);
	if (d->pipe_len) {
		/* A KeyUpdate due on the destination (answer, or ours) goes before these bytes. */
		int ret = hop_tx_ready(r->dst[i], r->stats);

		if (ret == -EAGAIN)
			return 0;
		if (ret < 0)
			return ret;
	}
	while (d->pipe_len) {
		ssize_t n = splice(d->pipe[0], NULL, r->dst[i]->fd, NULL, d->pipe_len,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

		if (n > 0) {
			hop_spliced_out(r->dst[i], (size_t)n);
			d->pipe_len -= (uint32_t)n;
			count_bytes(r, i, (size_t)n);
			STAT_ADD(r->stats, bytes_spliced, (uint64_t)n);
			*progress = true;
			if (d->pipe_len == 0)
				pipe_give(r->pipes, d);
			continue;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR))
			return 0;
		return hop_set_err(r->dst[i], n == 0 ? EPIPE : errno, "splice to socket");
	}
	return 0;
}

/*
 * Fill the pipe from the source. Return: 0, -errno, or 1 when the next
 * record must be read with hop_read() (hop_splice_end(): a control record
 * or an empty data record on a hop that splices records): the caller does
 * that only once the pipe is empty, so bytes keep their order.
 */
static int splice_in(struct relay *r, int i, bool *progress)
{
	struct relay_dir *d = r->dir[i];
	struct hop *src = r->src[i];
	ssize_t n;
	int ret;

	if (d->pipe[0] < 0 && pipe_take(r->pipes, d) < 0) {
		/*
		 * Out of descriptors (a pipe costs two): this direction copies
		 * through userspace instead. Slower, but nobody is dropped.
		 */
		d->no_pipe = true;
		return 0;
	}
	/* Full, or adopted without its write end: the source waits until it drains. */
	if (d->pipe_len >= RELAY_PIPE_SIZE || d->pipe[1] < 0)
		return 0;
	n = splice(src->fd, NULL, d->pipe[1], NULL, RELAY_PIPE_SIZE - d->pipe_len,
		   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (n > 0) {
		d->pipe_len += (uint32_t)n;
		*progress = true;
		if (r->frame[i])
			pgproto_framer_lose(r->frame[i]);
		hop_spliced_in(src);
		/* Records splice one at a time: only a plain stream shows a drained socket. */
		if (hop_splice(src) == HOP_SPLICE_STREAM &&
		    (size_t)n < RELAY_PIPE_SIZE - (d->pipe_len - (size_t)n))
			r->rx_ready[i] = false;
		return 0;
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
		if (errno == EAGAIN)
			r->rx_ready[i] = false;
		return 0;
	}
	/* 1: a record to read with hop_read(); 0: EOF; or the failure. */
	ret = hop_splice_end(src, n == 0 ? 0 : errno);
	if (ret == 0)
		*progress = true;
	return ret;
}

/* Write what may be written from @d; -errno only for a real failure. */
static int flush_dir(struct relay *r, int i, bool *progress)
{
	struct relay_dir *d = r->dir[i];

	while (d->scan > d->head) {
		ssize_t n = hop_write(r->dst[i], d->buf + d->head, d->scan - d->head);

		if (n == -EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		d->head += (uint32_t)n;
		count_bytes(r, i, (size_t)n);
		*progress = true;
	}
	if (d->head == d->tail && d->buf) {
		/* Drained. Idle connections keep no buffer, unless inspection needs one. */
		if (r->inspect[i])
			d->head = d->scan = d->tail = 0;
		else
			relay_dir_free(d);
	} else if (d->head == d->scan && d->head > 0 && r->inspect[i]) {
		/* A partial message waits for more: slide it to the front for room. */
		memmove(d->buf, d->buf + d->head, d->tail - d->head);
		d->tail -= d->head;
		d->scan = d->head = 0;
	}
	return 0;
}

/*
 * After a read of @n bytes out of @asked from src[i]: may more be waiting?
 * The hop knows of bytes its engine read ahead (hop_has_pending()); a
 * socket that returned less than asked was drained at that moment.
 */
static void note_read(struct relay *r, int i, ssize_t n, size_t asked)
{
	struct hop *src = r->src[i];

	if (n == -EAGAIN || n <= 0)
		r->rx_ready[i] = n != -EAGAIN && !src->rx_eof;
	else
		r->rx_ready[i] = hop_has_pending(src) || (size_t)n == asked;
}

/*
 * Read a batch into scratch and write straight through; keep only what is
 * left. One read of a userspace engine returns one record (8 KB from
 * PostgreSQL); gathering what it already holds lets the write side send
 * 16 KB records, and fewer of them, for the same bytes. Nothing waits for
 * data to arrive.
 */
static int pass_through(struct relay *r, int i, bool *progress)
{
	struct relay_dir *d = r->dir[i];
	struct hop *src = r->src[i];
	size_t got = 0, off = 0;
	ssize_t n;

	do {
		size_t room = RELAY_BATCH_SIZE - got;

		n = hop_read(src, r->scratch + got, room, r->stats);
		note_read(r, i, n, room);
		if (n <= 0)
			break;
		got += (size_t)n;
	} while (RELAY_BATCH_SIZE - got >= RELAY_BUF_SIZE && hop_has_pending(src));
	if (n != -EAGAIN || got > 0)
		*progress = true;
	if (r->frame[i])
		pgproto_framer_feed(r->frame[i], r->scratch, got);
	while (off < got) {
		ssize_t w = hop_write(r->dst[i], r->scratch + off, got - off);

		if (w == -EAGAIN)
			break;
		if (w < 0)
			return (int)w;
		off += (size_t)w;
		count_bytes(r, i, (size_t)w);
	}
	if (off < got) {
		/* The destination is full: stash the rest (at most one batch). */
		if (reserve(d, (uint32_t)(got - off > RELAY_BUF_SIZE ? got - off
								      : RELAY_BUF_SIZE)) < 0)
			return -ENOMEM;
		memcpy(d->buf, r->scratch + off, got - off);
		d->head = 0;
		d->scan = d->tail = (uint32_t)(got - off);
	}
	/* A read that failed after others succeeded: their bytes went first. */
	return n < 0 && n != -EAGAIN ? (int)n : 0;
}

/* Read into the direction's own buffer (inspection needs whole messages). */
static int read_buffered(struct relay *r, int i, bool *progress)
{
	struct relay_dir *d = r->dir[i];
	ssize_t n;

	if (relay_dir_reserve(d) < 0)
		return -ENOMEM;
	if (d->tail >= d->cap)
		return 0;
	n = hop_read(r->src[i], d->buf + d->tail, d->cap - d->tail, r->stats);
	note_read(r, i, n, d->cap - d->tail);
	if (n == -EAGAIN)
		return 0;
	*progress = true;
	if (n < 0)
		return (int)n;
	if (n == 0)
		return 0;
	if (r->frame[i])
		pgproto_framer_feed(r->frame[i], d->buf + d->tail, (size_t)n);
	d->tail += (uint32_t)n;
	if (r->inspect[i])
		return r->inspect[i](r->inspect_arg, d);
	d->scan = d->tail;
	return 0;
}

/* One step of direction @i: flush, read more if there is room, pass EOF on. */
static int step(struct relay *r, int i, bool *progress, struct hop **failed)
{
	struct relay_dir *d = r->dir[i];
	struct hop *src = r->src[i], *dst = r->dst[i];
	int ret;

	if (d->done)
		return 0;
	ret = flush_dir(r, i, progress);
	if (ret < 0)
		goto fail_dst;
	ret = splice_out(r, i, progress);
	if (ret < 0)
		goto fail_dst;
	if (!r->rx_ready[i])
		goto eof;
	if (!src->rx_eof && !r->inspect[i] && d->head == d->tail && !d->no_pipe &&
	    can_splice(src, dst)) {
		ret = splice_in(r, i, progress);
		if (ret < 0)
			goto fail_either;
		if (ret == 1 && d->pipe_len == 0) {
			/* Control or empty record: hop_read() it, then splice resumes. */
			ret = read_buffered(r, i, progress);
			if (ret < 0)
				goto fail_either;
			ret = flush_dir(r, i, progress);
			if (ret < 0)
				goto fail_dst;
		}
		ret = splice_out(r, i, progress);
		if (ret < 0)
			goto fail_dst;
	} else if (!src->rx_eof && relay_dir_pending(d) == 0 && !r->inspect[i]) {
		ret = pass_through(r, i, progress);
		if (ret < 0)
			goto fail_either;
	} else if (!src->rx_eof && (r->inspect[i] || relay_dir_pending(d) == 0)) {
		ret = read_buffered(r, i, progress);
		if (ret < 0)
			goto fail_either;
		ret = flush_dir(r, i, progress);
		if (ret < 0)
			goto fail_dst;
	}
eof:
	if (src->rx_eof && d->scan < d->tail)
		d->scan = d->tail;	/* nothing more will complete a partial message */
	if (src->rx_eof && relay_dir_pending(d) == 0 && r->on_eof && !d->eof_told) {
		d->eof_told = true;
		r->on_eof(r->inspect_arg, i, d);
		ret = flush_dir(r, i, progress);
		if (ret < 0)
			goto fail_dst;
	}
	if (src->rx_eof && relay_dir_pending(d) == 0) {
		ret = hop_shutdown_write(dst);
		if (ret == -EAGAIN)
			return 0;
		/* A failed shutdown means the destination is gone: nothing left to tell it. */
		d->done = true;
		*progress = true;
	}
	return 0;

fail_either:
	/* A read error belongs to the source unless the source recorded nothing. */
	*failed = src->err[0] ? src : dst;
	return ret;
fail_dst:
	*failed = dst;
	return ret;
}

void relay_init(struct relay *r, struct hop *client, struct hop *server, struct relay_dir *c2s,
		struct relay_dir *s2c, struct stats *st, uint8_t *scratch,
		struct relay_pipes *pipes)
{
	memset(r, 0, sizeof(*r));
	r->src[0] = r->dst[1] = client;
	r->src[1] = r->dst[0] = server;
	r->dir[0] = c2s;
	r->dir[1] = s2c;
	r->rx_ready[0] = r->rx_ready[1] = true;
	r->stats = st;
	client->stats = server->stats = st;
	r->scratch = scratch;
	r->pipes = pipes;
}

enum relay_status relay_run(struct relay *r, struct ev_loop *loop, struct hop **failed_hop)
{
	struct hop *h0 = r->src[0], *h1 = r->src[1];
	bool want_read[2], want_write[2];

	for (int i = 0; i < 2; i++) {
		r->err = hop_flush(r->src[i], r->stats);
		if (r->err < 0) {
			*failed_hop = r->src[i];
			return RELAY_FAILED;
		}
	}
	for (int pass = 0; pass < RELAY_MAX_PASSES; pass++) {
		bool progress = false;

		for (int i = 0; i < 2; i++) {
			r->err = step(r, i, &progress, failed_hop);
			if (r->err < 0)
				return RELAY_FAILED;
		}
		if (!progress)
			break;
	}
	if (r->dir[0]->done && r->dir[1]->done)
		return RELAY_FINISHED;

	/* h0 is the client: it is read for direction 0 and written for direction 1. */
	for (int i = 0; i < 2; i++) {
		struct relay_dir *d = r->dir[i];

		bool buf_empty = d->head == d->tail;
		bool splicing = !d->no_pipe && can_splice(r->src[i], r->dst[i]);

		want_read[i] = !d->done && !r->src[i]->rx_eof &&
			       ((buf_empty && (d->pipe_len == 0 ||
					       (splicing && d->pipe_len < RELAY_PIPE_SIZE &&
						d->pipe[1] >= 0))) ||
				(r->inspect[i] && d->tail < RELAY_BUF_SIZE));
		want_write[i] = !d->done &&
				(d->scan > d->head || d->pipe_len > 0 || r->src[i]->rx_eof);
	}
	if (ev_io_set(loop, &h0->io, hop_events(h0, want_read[0], want_write[1])) < 0 ||
	    ev_io_set(loop, &h1->io, hop_events(h1, want_read[1], want_write[0])) < 0) {
		*failed_hop = h0;
		r->err = -errno;
		snprintf(h0->err, sizeof(h0->err), "epoll_ctl: %s", strerror(errno));
		return RELAY_FAILED;
	}
	return RELAY_AGAIN;
}

/* ---- moving a direction to another process (binary upgrade) ---- */

enum {
	RD_TAG_LENGTH = 1 | TLV_MANDATORY,	/* u32: bytes buffered, before DATA */
	RD_TAG_SCAN = 2 | TLV_MANDATORY,	/* u32: inspection boundary, from the first */
	RD_TAG_BYTES = 3 | TLV_MANDATORY,	/* u64: delivered so far */
	RD_TAG_FLAGS = 4 | TLV_MANDATORY,	/* u8: RD_F_* */
	RD_TAG_PIPE_LEN = 5 | TLV_MANDATORY,	/* u32: bytes in the splice pipe */
	RD_TAG_DATA = 6 | TLV_MANDATORY,	/* the buffered bytes (chunks) */
};

#define RD_F_DONE (1u << 0)
#define RD_F_EOF_TOLD (1u << 1)
/* A pipe never holds more than the kernel's largest (fs.pipe-max-size defaults to 1 MB). */
#define RD_MAX_PIPE_LEN (1u << 30)

int relay_dir_export(const struct relay_dir *d, struct tlv_writer *w)
{
	uint32_t n = d->tail - d->head;

	tlv_put_u32(w, RD_TAG_LENGTH, n);
	tlv_put_u32(w, RD_TAG_SCAN, d->scan - d->head);
	tlv_put_u64(w, RD_TAG_BYTES, d->bytes);
	tlv_put_u8(w, RD_TAG_FLAGS, (d->done ? RD_F_DONE : 0) | (d->eof_told ? RD_F_EOF_TOLD : 0));
	tlv_put_u32(w, RD_TAG_PIPE_LEN, d->pipe_len);
	if (n)
		tlv_put_chunked(w, RD_TAG_DATA, d->buf + d->head, n);
	return tlv_writer_err(w);
}

int relay_dir_import(struct relay_dir *d, const void *buf, size_t len)
{
	struct tlv_field f[] = {
		{ .tag = RD_TAG_LENGTH, .min_len = 4, .max_len = 4, .required = true },
		{ .tag = RD_TAG_SCAN, .min_len = 4, .max_len = 4, .required = true },
		{ .tag = RD_TAG_BYTES, .min_len = 8, .max_len = 8, .required = true },
		{ .tag = RD_TAG_FLAGS, .min_len = 1, .max_len = 1, .required = true },
		{ .tag = RD_TAG_PIPE_LEN, .min_len = 4, .max_len = 4, .required = true },
		{ .tag = RD_TAG_DATA, .min_len = 1, .max_len = TLV_MAX_VALUE, .repeat = true },
	};
	uint32_t n, scan, pipe_len;
	uint8_t flags;
	long got;
	int r;

	r = tlv_parse(buf, len, f, PGKTLS_ARRAY_SIZE(f));
	if (r)
		return r;
	n = tlv_u32(&f[0]);
	scan = tlv_u32(&f[1]);
	flags = tlv_u8(&f[3]);
	pipe_len = tlv_u32(&f[4]);
	if (n != f[5].total || n > RELAY_BATCH_SIZE || scan > n ||
	    (flags & ~(RD_F_DONE | RD_F_EOF_TOLD)) || pipe_len > RD_MAX_PIPE_LEN)
		return -EBADMSG;
	if (n) {
		/* As a stash of a batch is reserved (read_batch()): at least a whole buffer. */
		r = reserve(d, n > RELAY_BUF_SIZE ? n : RELAY_BUF_SIZE);
		if (r)
			return r;
		got = tlv_gather(buf, len, RD_TAG_DATA, d->buf, d->cap);
		if (got != (long)n) {
			relay_dir_free(d);
			return -EBADMSG;
		}
		d->head = 0;
		d->scan = scan;
		d->tail = n;
	}
	d->bytes = tlv_u64(&f[2]);
	d->done = flags & RD_F_DONE;
	d->eof_told = flags & RD_F_EOF_TOLD;
	d->pipe_len = pipe_len;
	return 0;
}
