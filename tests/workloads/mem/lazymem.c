/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lazymem — patterned anonymous memory that changes shape after restore,
 * for lazy restore (the same checks hold after a normal restore).
 *
 *  - main: CKPT_TEST_MEM_MB MiB (default 256), every word a function of its
 *    page and position, with holes: every 64th page never touched (must
 *    read zero).
 *  - remap: 16 MiB patterned, moved with mremap after the restore (before
 *    anything reads it) and grown by 1 MiB: content at the new address,
 *    zeros in the growth.
 *  - cut: 16 MiB patterned; after the restore its first quarter is
 *    munmap'ed, its second quarter madvise(MADV_DONTNEED)'d (reads zero),
 *    the rest must keep its pattern.
 * After SIGUSR1 it first forks: the child checks its copy of main (and
 * writes into it, which must not show in the parent), then the parent
 * does the mremap/munmap/madvise and checks everything.  No fd of the
 * restore (a userfaultfd) may be left open in the process.
 */
#include "../workload.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORDS (WL_PAGE / 8)
#define SIDE (16UL << 20)
#define SEED_MAIN 0x4c415a594d41494eULL
#define SEED_REMAP 0x4c415a5952454d50ULL
#define SEED_CUT 0x4c415a59435554ULL

static void fill(uint64_t *m, size_t npages, uint64_t seed, int holes)
{
	for (size_t p = 0; p < npages; p++) {
		if (holes && p % 64 == 63)
			continue;
		for (size_t w = 0; w < WORDS; w++)
			m[p * WORDS + w] = wl_word(p, w ^ seed);
	}
}

/* Pages [from, to) of m against the pattern; returns the bad page count. */
static size_t check(const char *what, const uint64_t *m, size_t from, size_t to, uint64_t seed,
		    int holes)
{
	size_t bad = 0, first = 0;
	for (size_t p = from; p < to; p++) {
		int hole = holes && p % 64 == 63, b = 0;
		for (size_t w = 0; w < WORDS; w++)
			if (m[p * WORDS + w] != (hole ? 0 : wl_word(p, w ^ seed)))
				b = 1;
		if (b && !bad++)
			first = p;
	}
	if (bad)
		wl_fail("%s: %zu of %zu pages differ, first is page %zu", what, bad, to - from, first);
	return bad;
}

static int zeros(const unsigned char *m, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (m[i])
			return 0;
	return 1;
}

static void check_no_uffd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	if (!d) {
		wl_fail("opendir /proc/self/fd: %s", strerror(errno));
		return;
	}
	while ((e = readdir(d))) {
		char path[300], target[256];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = 0;
		if (strstr(target, "userfaultfd"))
			wl_fail("fd %s is a leftover %s", e->d_name, target);
	}
	closedir(d);
}

int main(void)
{
	size_t mb = 256;
	const char *env;

	wl_init("lazymem");
	env = getenv("CKPT_TEST_MEM_MB");
	if (env && atoi(env) > 0)
		mb = (size_t)atoi(env);
	size_t size = mb << 20, npages = size / WL_PAGE, side_pages = SIDE / WL_PAGE;

	uint64_t *main_m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *remap = mmap(NULL, SIDE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t *cut = mmap(NULL, SIDE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (main_m == MAP_FAILED || remap == MAP_FAILED || cut == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	/* keep the kernel from merging the three into one VMA */
	madvise(remap, SIDE, MADV_NOHUGEPAGE);
	fill(main_m, npages, SEED_MAIN, 1);
	fill(remap, side_pages, SEED_REMAP, 0);
	fill(cut, side_pages, SEED_CUT, 0);

	wl_ready();
	wl_wait_usr1();

	check_no_uffd();

	/* a child while (much of) the memory is still missing */
	pid_t child = fork();
	if (child < 0) {
		wl_fail("fork: %s", strerror(errno));
	} else if (child == 0) {
		size_t bad = check("child's copy of main", main_m, 0, npages, SEED_MAIN, 1);
		/* its writes are its own */
		for (size_t p = 0; p < npages; p += 16)
			main_m[p * WORDS] = ~0ULL;
		_exit(bad ? 1 : 0);
	}

	/* move and grow a region nobody has read since the restore */
	uint64_t *moved = mremap(remap, SIDE, SIDE + (1UL << 20), MREMAP_MAYMOVE);
	if (moved == MAP_FAILED) {
		wl_fail("mremap: %s", strerror(errno));
	} else {
		if (moved == remap) {
			/* grown in place: force a move too */
			void *to = mmap(NULL, SIDE + (2UL << 20), PROT_NONE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (to != MAP_FAILED)
				moved = mremap(moved, SIDE + (1UL << 20), SIDE + (1UL << 20),
					       MREMAP_MAYMOVE | MREMAP_FIXED, to);
		}
		if (moved != MAP_FAILED) {
			check("remapped region", moved, 0, side_pages, SEED_REMAP, 0);
			WL_CHECK(zeros((unsigned char *)moved + SIDE, 1UL << 20),
				 "the growth of the remapped region is not zero");
		} else {
			wl_fail("mremap to a fixed address: %s", strerror(errno));
		}
	}

	/* drop parts of another one */
	size_t q = SIDE / 4;
	if (munmap(cut, q))
		wl_fail("munmap: %s", strerror(errno));
	if (madvise((char *)cut + q, q, MADV_DONTNEED))
		wl_fail("madvise: %s", strerror(errno));
	WL_CHECK(zeros((unsigned char *)cut + q, q), "the madvise(DONTNEED) quarter is not zero");
	check("cut region", cut, side_pages / 2, side_pages, SEED_CUT, 0);

	check("main", main_m, 0, npages, SEED_MAIN, 1);

	if (child > 0) {
		int st;
		if (waitpid(child, &st, 0) != child)
			wl_fail("waitpid: %s", strerror(errno));
		else if (!WIFEXITED(st) || WEXITSTATUS(st))
			wl_fail("the child's copy of main was wrong (status %#x)", st);
		/* the child's writes did not reach us */
		check("main after the child wrote its copy", main_m, 0, npages, SEED_MAIN, 1);
	}
	check_no_uffd();
	wl_finish();
}
