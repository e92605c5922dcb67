/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * codec-speed — compression speed and ratio of the page codecs on one
 * core, measured in thread CPU time (so that other load on a shared
 * machine does not count), on memhog's "mix" content (bench/mixfill.h),
 * in the independent 512 KiB blocks ckpt uses.
 *
 *   codec-speed [MIB]     (default 256)
 */
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "mixfill.h"

#define BLOCK (512u << 10)

static double cpu_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256, len = mib << 20;
	size_t nb = len / BLOCK, cap = ZSTD_compressBound(BLOCK);
	unsigned char *src = malloc(len), *dst = malloc(len), *cmp = malloc(nb * cap);
	size_t *clen = calloc(nb, sizeof(*clen));
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	static const struct {
		const char *name;
		int zstd, level;
	} codecs[] = { { "lz4", 0, 1 }, { "lz4:fast (accel 8)", 0, 8 }, { "zstd:1", 1, 1 },
		       { "zstd:3", 1, 3 }, { "zstd:-1", 1, -1 } };

	if (!src || !dst || !cmp || !clen || !cc || !dc || !nb)
		return 1;
	for (size_t i = 0; i < len / 4096; i++)
		mix_page(src + i * 4096, i, 4096);
	/* first touch out of the timed part */
	memset(dst, 0, len);
	memset(cmp, 0, nb * cap);
	printf("| codec | ratio | compress MB/s per core | decompress MB/s per core |\n");
	printf("| --- | ---: | ---: | ---: |\n");
	for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
		size_t total = 0;
		double t0 = cpu_now();
		for (size_t b = 0; b < nb; b++) {
			const char *in = (const char *)src + b * BLOCK;
			char *out = (char *)cmp + b * cap;
			if (codecs[c].zstd)
				clen[b] = ZSTD_compressCCtx(cc, out, cap, in, BLOCK, codecs[c].level);
			else
				clen[b] = LZ4_compress_fast(in, out, BLOCK, (int)cap, codecs[c].level);
			if (clen[b] >= BLOCK) /* stored as is, as ckpt does */
				clen[b] = 0;
			total += clen[b] ? clen[b] : BLOCK;
		}
		double t1 = cpu_now();
		for (size_t b = 0; b < nb; b++) {
			const char *in = (const char *)cmp + b * cap;
			char *out = (char *)dst + b * BLOCK;
			if (!clen[b])
				memcpy(out, src + b * BLOCK, BLOCK);
			else if (codecs[c].zstd)
				ZSTD_decompressDCtx(dc, out, BLOCK, in, clen[b]);
			else
				LZ4_decompress_safe(in, out, (int)clen[b], BLOCK);
		}
		double t2 = cpu_now();
		if (memcmp(src, dst, len)) {
			fprintf(stderr, "%s: round trip differs\n", codecs[c].name);
			return 1;
		}
		printf("| %s | %.2f | %.0f | %.0f |\n", codecs[c].name, (double)len / total,
		       len / (t1 - t0) / 1e6, len / (t2 - t1) / 1e6);
	}
	return 0;
}
