/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * authinspect.h - the server's side of authentication as the relay passes it
 * to the client, sans I/O.
 *
 * Until AuthenticationOk, server->client bytes are framed and two messages
 * are rewritten in place: AuthenticationSASL loses SCRAM-SHA-256-PLUS where
 * channel binding cannot work (client hop plaintext, upstream hop TLS), and
 * a SCRAM channel-binding ErrorResponse gains a HINT saying how to fix it.
 * Everything else streams through as it arrives; a message too large to
 * hold is passed unmodified.
 */
#ifndef PGKTLS_AUTHINSPECT_H
#define PGKTLS_AUTHINSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgktls/compiler.h"

struct relay_dir;
struct tlv_writer;

/* The HINT added to a channel-binding ErrorResponse. */
#define AUTHINSPECT_HINT                                                                      \
	"pgktls terminates TLS, so the server's channel binding cannot match the certificate " \
	"the client saw. Connect with channel_binding=disable, or give pgktls the server's "    \
	"own certificate and key (tls_certificate, tls_private_key), or use a plaintext or "    \
	"unix-socket upstream."

struct authinspect {
	bool strip_plus;	/* set by the owner: client hop plaintext, upstream hop TLS */
	bool done;		/* AuthenticationOk passed: inspection is over */
	uint32_t skip;		/* bytes of a message not ours to look at, still to pass */
	unsigned stripped;	/* AuthenticationSASL messages rewritten, so far */
	unsigned hinted;	/* ErrorResponses given the hint, so far */
};

/**
 * authinspect_run() - inspect what arrived in @d: advance d->scan over every
 * byte that may now be written to the client, rewriting in place between
 * scan and tail (tail may move). Once @ai->done, d->scan == d->tail and
 * the caller stops inspecting.
 *
 * Return: 0, or -EPROTO for a malformed message from the server.
 */
PGKTLS_MUSTCHECK int authinspect_run(struct authinspect *ai, struct relay_dir *d);

/**
 * authinspect_export() - @ai as a TLV list (tlv.h), for a binary upgrade.
 * The bytes it has not scanned yet are the relay direction's (relay_dir_export()).
 * Return: 0, or the writer's error.
 */
PGKTLS_MUSTCHECK int authinspect_export(const struct authinspect *ai, struct tlv_writer *w);

/**
 * authinspect_import() - @ai from authinspect_export()'s list.
 * Return: 0, tlv_parse()'s errors, or -EBADMSG (a flag other than 0 or 1).
 */
PGKTLS_MUSTCHECK int authinspect_import(struct authinspect *ai, const void *buf, size_t len);

#endif /* PGKTLS_AUTHINSPECT_H */
