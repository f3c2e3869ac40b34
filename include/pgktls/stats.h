/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * stats.h - counters, one set per worker, summed when read.
 *
 * Each worker is the only writer of its own counters, so increments are
 * plain relaxed loads and stores (no locked instructions on the data path);
 * a reader in another thread sees each counter torn-free but the set of
 * them only approximately consistent, which is what monitoring needs.
 */
#ifndef PGKTLS_STATS_H
#define PGKTLS_STATS_H

#include <stddef.h>
#include <stdint.h>

/* X(name, help): every counter, in the order they are reported. */
#define STATS_COUNTERS(X)                                                                  \
	X(conns_accepted, "client connections accepted")                                   \
	X(conns_closed, "client connections closed (any reason)")                          \
	X(client_tls_handshakes, "TLS handshakes completed with clients")                   \
	X(client_tls_failures, "TLS handshakes with clients that failed")                   \
	X(client_direct_tls, "clients that used PostgreSQL 17 direct TLS")                  \
	X(client_plaintext, "client sessions without TLS")                                  \
	X(plaintext_refused, "plaintext clients refused by tls_client_required")            \
	X(startup_timeouts, "handshakes or startups that did not finish in time")           \
	X(protocol_errors, "malformed or illegal client negotiation packets")               \
	X(cancels_forwarded, "CancelRequests forwarded upstream")                           \
	X(upstream_connects, "upstream connections established")                            \
	X(upstream_failures, "upstream connections that failed (connect or TLS)")           \
	X(upstream_tls_handshakes, "TLS handshakes completed with PostgreSQL")              \
	X(sasl_plus_stripped, "AuthenticationSASL messages with -PLUS removed")             \
	X(channel_binding_hints, "channel-binding errors given a HINT")                     \
	X(bytes_client_to_server, "bytes relayed from clients to PostgreSQL")               \
	X(bytes_server_to_client, "bytes relayed from PostgreSQL to clients")               \
	X(bytes_spliced, "bytes moved by splice() (no userspace copy)")                     \
	X(ktls_client_engaged, "client hops with both directions in the kernel")            \
	X(ktls_server_engaged, "upstream hops with both directions in the kernel")          \
	X(ktls_fallbacks, "hops that stayed in userspace TLS")                              \
	X(ktls_refused, "connections refused because ktls = required could not be met")     \
	X(tls_control_records, "non-data TLS records seen on kTLS sockets")                 \
	X(tls_key_updates, "TLS 1.3 KeyUpdates handled by rekeying")                        \
	X(tls_key_updates_refused, "connections closed on a KeyUpdate the kernel cannot follow") \
	X(accept_backoffs, "times accept() hit a descriptor limit and backed off")

struct stats {
#define STATS_FIELD(name, help) uint64_t name;
	STATS_COUNTERS(STATS_FIELD)
#undef STATS_FIELD
	uint64_t conns_active;		/* gauge */
};

/* Increment a counter owned by the calling worker. */
#define STAT_ADD(st, field, n)                                                             \
	__atomic_store_n(&(st)->field, __atomic_load_n(&(st)->field, __ATOMIC_RELAXED) + (n), \
			 __ATOMIC_RELAXED)
#define STAT_INC(st, field) STAT_ADD(st, field, 1)
#define STAT_DEC(st, field) STAT_ADD(st, field, (uint64_t)-1)

/** stats_add() - @sum += @part, field by field (relaxed loads of @part). */
void stats_add(struct stats *sum, const struct stats *part);

/** stats_names() - counter names in field order, NULL-terminated. */
const char *const *stats_names(void);

#endif /* PGKTLS_STATS_H */
