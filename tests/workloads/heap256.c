/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * heap256 — anonymous and private file-backed memory.
 *
 *  - 256 MiB (CKPT_TEST_HEAP_MB) of malloc'd memory, every 8-byte word a
 *    function of its page and position; after SIGUSR1 every word and the
 *    checksum taken at ready time are verified.
 *  - 1 MiB of anonymous memory never touched: must still read as zeros.
 *  - a MAP_PRIVATE mapping of a 16-page file (fd closed after mmap), every
 *    page read, some pages written: the written pages must keep the new
 *    content, the others must match the file, and the file must be
 *    unchanged on disk.
 */
#include "workload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ZERO_SIZE (1UL << 20)
#define FILE_PAGES 16
#define WORDS (WL_PAGE / 8)
#define SEED 0x4845415032353600ULL /* "HEAP256" */

static const int written_pages[] = { 1, 4, 5, 10, 15 };

static int is_written(int page)
{
	for (size_t i = 0; i < sizeof(written_pages) / sizeof(written_pages[0]); i++)
		if (written_pages[i] == page)
			return 1;
	return 0;
}

static uint64_t file_word(int page, size_t w)
{
	return wl_word(1000 + (uint64_t)page, w);
}

static uint64_t cow_word(int page, size_t w)
{
	return wl_word(2000 + (uint64_t)page, w);
}

int main(void)
{
	size_t mb = 256, size, npages, bad_pages = 0, first_bad = 0;
	uint64_t *heap, sum = 0, sum_now = 0;
	unsigned char *zero;
	uint64_t *map, filebuf[WORDS];
	char path[4096];
	const char *env;
	int fd;

	wl_init("heap256");
	env = getenv("CKPT_TEST_HEAP_MB");
	if (env && atoi(env) > 0)
		mb = (size_t)atoi(env);
	size = mb << 20;
	npages = size / WL_PAGE;

	heap = malloc(size);
	if (!heap)
		wl_die("malloc %zu MiB failed", mb);
	for (size_t p = 0; p < npages; p++) {
		uint64_t *pg = heap + p * WORDS;
		for (size_t w = 0; w < WORDS; w++) {
			pg[w] = wl_word(p, w ^ SEED);
			sum += pg[w] * (w + 1);
		}
	}

	zero = mmap(NULL, ZERO_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (zero == MAP_FAILED)
		wl_die("mmap zero region: %s", strerror(errno));

	/* the file behind the private mapping */
	snprintf(path, sizeof(path), "%s/heap256-map.%d", wl_dir(), (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		wl_die("create %s: %s", path, strerror(errno));
	for (int p = 0; p < FILE_PAGES; p++) {
		for (size_t w = 0; w < WORDS; w++)
			filebuf[w] = file_word(p, w);
		if (pwrite(fd, filebuf, sizeof(filebuf), (off_t)p * WL_PAGE) != (ssize_t)sizeof(filebuf))
			wl_die("write %s: %s", path, strerror(errno));
	}
	map = mmap(NULL, FILE_PAGES * WL_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		wl_die("mmap %s: %s", path, strerror(errno));
	close(fd);
	/* read every page (page cache pages mapped), then COW some of them */
	for (int p = 0; p < FILE_PAGES; p++)
		if (map[p * WORDS] != file_word(p, 0))
			wl_die("file mapping page %d reads wrong before the dump", p);
	for (int p = 0; p < FILE_PAGES; p++)
		if (is_written(p))
			for (size_t w = 0; w < WORDS; w++)
				map[p * WORDS + w] = cow_word(p, w);

	wl_ready();
	wl_wait_usr1();

	/* the heap, word by word, and its checksum */
	for (size_t p = 0; p < npages; p++) {
		const uint64_t *pg = heap + p * WORDS;
		int bad = 0;
		for (size_t w = 0; w < WORDS; w++) {
			sum_now += pg[w] * (w + 1);
			if (pg[w] != wl_word(p, w ^ SEED))
				bad = 1;
		}
		if (bad && !bad_pages++)
			first_bad = p;
	}
	WL_CHECK(!bad_pages, "%zu of %zu heap pages differ, first is page %zu", bad_pages, npages, first_bad);
	WL_CHECK(sum_now == sum, "heap checksum %#llx, was %#llx", (unsigned long long)sum_now,
		 (unsigned long long)sum);

	for (size_t i = 0; i < ZERO_SIZE; i++)
		if (zero[i]) {
			wl_fail("untouched region not zero at offset %zu (%#x)", i, zero[i]);
			break;
		}

	for (int p = 0; p < FILE_PAGES; p++) {
		for (size_t w = 0; w < WORDS; w++) {
			uint64_t want = is_written(p) ? cow_word(p, w) : file_word(p, w);
			if (map[p * WORDS + w] != want) {
				wl_fail("private file mapping page %d (%s) word %zu differs", p,
					is_written(p) ? "written" : "unwritten", w);
				break;
			}
		}
	}

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		wl_fail("reopen %s: %s", path, strerror(errno));
	} else {
		for (int p = 0; p < FILE_PAGES; p++) {
			if (pread(fd, filebuf, sizeof(filebuf), (off_t)p * WL_PAGE) != (ssize_t)sizeof(filebuf)) {
				wl_fail("read back %s page %d failed", path, p);
				break;
			}
			if (filebuf[0] != file_word(p, 0) || filebuf[WORDS - 1] != file_word(p, WORDS - 1)) {
				wl_fail("file %s page %d changed on disk", path, p);
				break;
			}
		}
		close(fd);
	}

	wl_finish();
}
