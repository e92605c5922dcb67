/* SPDX-License-Identifier: GPL-2.0-only */
/* Compressed page images: option parsing, a round trip through the block
 * writer and the restore-side filler (into this very process), and a
 * corrupted block refused by the filler itself (below the inventory). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "image.h"
#include "pagecodec.h"
#include "tap.h"

static char dir[] = "/tmp/ckpt-test-pagecodec-XXXXXX";

#define SRC_LEN ((3u << 20) + 3 * 4096)

static void fill_src(unsigned char *p, size_t len)
{
	uint64_t s = 88172645463325252ULL;
	for (size_t off = 0; off < len; off += 4096) {
		size_t page = off / 4096;
		for (size_t k = 0; k < 4096; k += 8) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			/* every third 64 KiB random, the rest text-like */
			uint64_t v = (page / 16) % 3 == 2 ? s : 0x2073692073696874ULL + (s % 4);
			memcpy(p + off + k, &v, 8);
		}
	}
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int flip(const char *name, off_t off)
{
	char path[256];
	unsigned char c;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR | O_CLOEXEC), ret = -1;
	if (fd < 0)
		return -1;
	if (pread(fd, &c, 1, off) == 1) {
		c ^= 0x5a;
		ret = pwrite(fd, &c, 1, off) == 1 ? 0 : -1;
	}
	close(fd);
	return ret;
}

/* Dump src as PID vpid's pages with codec spec; 0 or -errno. */
static int write_pages(const char *spec, pid_t vpid, const unsigned char *src, uint64_t *base)
{
	struct pagecodec_opts o;
	char name[64];
	int err;

	if (pagecodec_parse(spec, &o))
		return -EINVAL;
	pagecodec_set(&o);
	if (img_store_open(dir, true))
		return -EIO;
	snprintf(name, sizeof(name), "pages-%d.img", vpid);
	struct img_raw *raw = img_raw_create(name);
	if (!raw)
		return -errno;
	*base = img_raw_offset(raw);
	struct pagecodec_writer *w = pagecodec_writer_open(vpid, raw, &err);
	if (!w)
		return err ? err : -EINVAL;
	/* as the dump's writer thread hands them: 2 MiB, then the rest */
	err = pagecodec_writer_put(w, src, 2u << 20);
	if (!err)
		err = pagecodec_writer_put(w, src + (2u << 20), SRC_LEN - (2u << 20));
	int r = pagecodec_writer_close(w);
	if (!err)
		err = r;
	r = img_raw_close(raw);
	if (!err)
		err = r;
	img_store_close();
	struct pagecodec_opts off = { CKPT__PAGE_CODEC__PAGE_CODEC_NONE, 0 };
	pagecodec_set(&off);
	return err;
}

/* Three runs of the stream put back at scattered places of dst. */
static int fill_pages(pid_t vpid, unsigned char *dst, uint64_t base)
{
	Ckpt__PagemapEntry e[3], *pm[3];
	const uint64_t len[3] = { 5 * 4096, (2u << 20) - 4096, 0 };
	uint64_t off = base, pages_left = SRC_LEN / 4096;
	/* run k goes to dst at place[k] (pages), in reverse order */
	const uint64_t place[3] = { SRC_LEN / 4096 - 5, SRC_LEN / 4096 - 5 - 511, 0 };

	for (int k = 0; k < 3; k++) {
		ckpt__pagemap_entry__init(&e[k]);
		uint64_t n = k < 2 ? len[k] / 4096 : pages_left;
		e[k].vaddr = (uint64_t)(uintptr_t)dst + place[k] * 4096;
		e[k].nr_pages = n;
		e[k].offset = off;
		off += n * 4096;
		pages_left -= n;
		pm[k] = &e[k];
	}
	if (img_store_open(dir, false))
		return -EIO;
	int ret = pagecodec_fill(getpid(), vpid, pm, 3);
	img_store_close();
	return ret;
}

static int same_as_placed(const unsigned char *src, const unsigned char *dst)
{
	size_t a = 5 * 4096, b = (2u << 20) - 4096;
	return !memcmp(dst + SRC_LEN - a, src, a) && !memcmp(dst + SRC_LEN - a - b, src + a, b) &&
	       !memcmp(dst, src + a + b, SRC_LEN - a - b);
}

int main(void)
{
	struct pagecodec_opts o;
	static const char *const good[] = { "", "lz4", "lz4:fast", "lz4:3", "zstd", "zstd:3", "zstd:-5", "none", "off" };
	static const char *const bad[] = { "gzip", "lz4:0", "lz4:x", "zstd:0", "zstd:99", "zstd:", "none:1", "lz4:fast:1" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(pagecodec_parse(good[i], &o) == 0, "parse \"%s\"", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(pagecodec_parse(bad[i], &o) == -EINVAL, "refuse \"%s\"", bad[i]);
	CHECK(pagecodec_parse("", &o) == 0 && o.codec != CKPT__PAGE_CODEC__PAGE_CODEC_NONE,
	      "--compress alone picks a codec");
	CHECK(pagecodec_dump_name() == NULL, "off by default");

	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp");
		return tap_done();
	}
	unsigned char *src = malloc(SRC_LEN);
	unsigned char *dst = mmap(NULL, SRC_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!src || dst == MAP_FAILED) {
		CHECK(0, "memory");
		return tap_done();
	}
	fill_src(src, SRC_LEN);

	static const char *const codecs[] = { "lz4", "lz4:fast", "zstd:1", "zstd:3" };
	for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
		pid_t vpid = 100 + (pid_t)c;
		uint64_t base = 0;
		char name[64];
		struct pagecodec_stats st;

		CHECK(write_pages(codecs[c], vpid, src, &base) == 0, "%s: write", codecs[c]);
		memset(dst, 0, SRC_LEN);
		CHECK(fill_pages(vpid, dst, base) == 0, "%s: fill", codecs[c]);
		CHECK(same_as_placed(src, dst), "%s: every page back where the pagemap says", codecs[c]);

		snprintf(name, sizeof(name), "pageblocks-%d.img", vpid);
		img_store_open(dir, false);
		int r = pagecodec_stats(name, &st);
		img_store_close();
		CHECK(r == 0 && st.raw_bytes == SRC_LEN && st.stored_bytes < SRC_LEN * 3 / 4 &&
			      !strcmp(st.codec, codecs[c][0] == 'l' ? "lz4" : "zstd"),
		      "%s: stats %llu -> %llu bytes (%s)", codecs[c], (unsigned long long)st.raw_bytes,
		      (unsigned long long)st.stored_bytes, st.codec);

		/* random access across block boundaries */
		unsigned char *rb = malloc(SRC_LEN);
		img_store_open(dir, false);
		r = rb ? pagecodec_pread(vpid, rb, SRC_LEN - 12345, base + 12345) : -ENOMEM;
		int r2 = rb ? pagecodec_pread(vpid, rb + SRC_LEN - 12345, 100, base + 777) : -ENOMEM;
		CHECK(r == 0 && r2 == 0 && !memcmp(rb, src + 12345, SRC_LEN - 12345) &&
			      !memcmp(rb + SRC_LEN - 12345, src + 777, 100),
		      "%s: pread of the stream at any offset", codecs[c]);
		CHECK(pagecodec_pread(vpid, rb, 10, base + SRC_LEN) == -EBADMSG,
		      "%s: pread past the end refused", codecs[c]);
		pagecodec_pread_end();
		img_store_close();
		free(rb);

		/* a byte of the first block, compressed text; then one of a random
		 * block stored as is (third 64 KiB run: the random part) */
		snprintf(name, sizeof(name), "pages-%d.img", vpid);
		CHECK(flip(name, (off_t)base + 100) == 0, "%s: corrupt a compressed block", codecs[c]);
		r = fill_pages(vpid, dst, base);
		CHECK(r == -EBADMSG || r == -EILSEQ, "%s: the corrupted block is refused (%d)", codecs[c], r);
	}

	CHECK(fill_pages(999, dst, 0) == 1, "an uncompressed image is left to the caller");
	img_store_open(dir, false);
	CHECK(pagecodec_pread(999, dst, 10, 0) == 1, "pread of an uncompressed image is left to the caller");
	img_store_close();
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(src);
	munmap(dst, SRC_LEN);
	return tap_done();
}
