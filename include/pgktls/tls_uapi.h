/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The pgktls developers */
/*
 * tls_uapi.h - <linux/tls.h>, plus the newer parts of the kernel's TLS ABI
 * that older kernel headers lack.
 *
 * These numbers are kernel ABI (include/uapi/linux/tls.h): they never change
 * once released, so defining them here is as good as the header. pgktls then
 * builds the same code against any header, and what a kernel supports is
 * found at run time: an option the kernel does not know fails with
 * ENOPROTOOPT, an attribute it does not know is never sent. configure's
 * HAVE_DECL_* results say whether the header had them (enum members cannot
 * be tested with #ifdef).
 */
#ifndef PGKTLS_TLS_UAPI_H
#define PGKTLS_TLS_UAPI_H

#include <linux/tls.h>

/* SOL_TLS options (Linux 5.19 and 6.0). */
#ifndef TLS_TX_ZEROCOPY_RO
#define TLS_TX_ZEROCOPY_RO 3	/* TX: NIC offload may send spliced pages without a copy */
#endif
#ifndef TLS_RX_EXPECT_NO_PAD
#define TLS_RX_EXPECT_NO_PAD 4	/* RX, TLS 1.3: decrypt in place, assuming no padding */
#endif

/* INET_ULP_INFO_TLS attributes of sock_diag (enum members in the header). */
#if !HAVE_DECL_TLS_INFO_ZC_RO_TX
#define TLS_INFO_ZC_RO_TX 5
#endif
#if !HAVE_DECL_TLS_INFO_RX_NO_PAD
#define TLS_INFO_RX_NO_PAD 6
#endif

/* The highest TLS_INFO_* pgktls reads, whatever the header's TLS_INFO_MAX. */
#define PGKTLS_TLS_INFO_MAX (TLS_INFO_MAX > TLS_INFO_RX_NO_PAD ? TLS_INFO_MAX : TLS_INFO_RX_NO_PAD)

#endif /* PGKTLS_TLS_UAPI_H */
