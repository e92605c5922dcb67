/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Patterned memory that changes in rounds, for incremental dumps.
 *
 *   memwrite [MiB]   region A of MiB (default 96): 4 of 5 pages written,
 *                    every 5th left untouched (a hole); B (4 MiB) and
 *                    M (2 MiB) patterned.
 *
 * The driver writes a round number N to $CKPT_TEST_DIR/want; the workload
 * runs rounds until it has done N and then writes N to .../done.  Round k
 * first verifies all its memory (so a pre-dump that changed anything shows
 * up while it runs), then: writes every page p of A with p % 13 == k % 13
 * (hole pages included: first touch), drops pages p % 97 == k with
 * MADV_DONTNEED (they read as zeros again), fills one page by read() from
 * a file (a write by the kernel), and checks that no userfaultfd is among
 * its fds.  Round 1 unmaps B and maps a new C; round 2 moves M with
 * mremap onto the address B had.  On SIGUSR1 everything is verified.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "workload.h"

#define B_PAGES 1024
#define M_PAGES 512
#define C_PAGES 1024

static char *A, *B, *M, *C;
static size_t npages;
static uint16_t *gen; /* per page of A: 0 = zeros */
static int rounds;
static char *b_addr; /* where B was */

static void fill(char *p, uint64_t key, uint64_t g)
{
	uint64_t *w = (uint64_t *)p;
	for (size_t i = 0; i < WL_PAGE / 8; i++)
		w[i] = wl_word(key * 512 + i, g);
}

static int check_page(const char *p, uint64_t key, uint64_t g)
{
	const uint64_t *w = (const uint64_t *)p;
	for (size_t i = 0; i < WL_PAGE / 8; i++)
		if (w[i] != (g ? wl_word(key * 512 + i, g) : 0))
			return 0;
	return 1;
}

static void verify(const char *when)
{
	size_t bad = 0, first = 0;
	for (size_t p = 0; p < npages; p++)
		if (!check_page(A + p * WL_PAGE, p, gen[p]) && !bad++)
			first = p;
	WL_CHECK(!bad, "%s: %zu pages of A differ, first %zu (gen %u)", when, bad, first, gen[first]);
	if (B)
		for (size_t p = 0; p < B_PAGES; p++)
			WL_CHECK(check_page(B + p * WL_PAGE, 100000 + p, 7), "%s: B page %zu differs", when, p);
	for (size_t p = 0; p < M_PAGES; p++)
		if (!check_page(M + p * WL_PAGE, 200000 + p, 9)) {
			wl_fail("%s: M page %zu differs", when, p);
			break;
		}
	if (C)
		for (size_t p = 0; p < C_PAGES; p++)
			if (!check_page(C + p * WL_PAGE, 300000 + p, 11)) {
				wl_fail("%s: C page %zu differs", when, p);
				break;
			}
	if (!B && rounds < 2)
		WL_CHECK(madvise(b_addr, B_PAGES * WL_PAGE, MADV_NORMAL) && errno == ENOMEM,
			 "%s: B is mapped again", when);
	/* no trace of a tracker among our fds */
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		char path[300], l[256];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(path, l, sizeof(l) - 1);
		if (n > 0) {
			l[n] = 0;
			WL_CHECK(!strstr(l, "userfaultfd"), "%s: fd %s is %s", when, e->d_name, l);
		}
	}
	if (d)
		closedir(d);
}

static void round_k(int k)
{
	char name[64];
	snprintf(name, sizeof(name), "round %d", k);
	verify(name);
	for (size_t p = k % 13; p < npages; p += 13) {
		gen[p] = k + 1;
		fill(A + p * WL_PAGE, p, gen[p]);
	}
	for (size_t p = k; p < npages; p += 97) {
		WL_CHECK(!madvise(A + p * WL_PAGE, WL_PAGE, MADV_DONTNEED), "madvise: %m");
		gen[p] = 0;
	}
	/* a page written by the kernel: read() from a file */
	size_t rp = (17 * k + 3) % npages;
	char buf[WL_PAGE], path[256];
	fill(buf, rp, 50 + k);
	snprintf(path, sizeof(path), "%s/memwrite.src", wl_dir());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	WL_CHECK(fd >= 0 && pwrite(fd, buf, WL_PAGE, 0) == (ssize_t)WL_PAGE &&
			 pread(fd, A + rp * WL_PAGE, WL_PAGE, 0) == (ssize_t)WL_PAGE,
		 "read into page %zu: %m", rp);
	if (fd >= 0)
		close(fd);
	unlink(path);
	gen[rp] = 50 + k;
	if (k == 1) {
		munmap(B, B_PAGES * WL_PAGE);
		B = NULL;
		C = mmap(NULL, C_PAGES * WL_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (C == MAP_FAILED)
			wl_die("mmap C: %m");
		for (size_t p = 0; p < C_PAGES; p++)
			fill(C + p * WL_PAGE, 300000 + p, 11);
	}
	if (k == 2) {
		char *n = mremap(M, M_PAGES * WL_PAGE, M_PAGES * WL_PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, b_addr);
		WL_CHECK(n == b_addr, "mremap M: %m");
		if (n == b_addr)
			M = n;
	}
	rounds = k;
}

static int read_num(const char *name)
{
	char path[256], buf[32] = { 0 };
	snprintf(path, sizeof(path), "%s/%s", wl_dir(), name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atoi(buf) : 0;
}

static void write_done(int k)
{
	char path[256], tmp[300], buf[32];
	snprintf(path, sizeof(path), "%s/done", wl_dir());
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int n = snprintf(buf, sizeof(buf), "%d\n", k);
	if (fd < 0 || write(fd, buf, n) != n)
		wl_die("write %s: %m", tmp);
	close(fd);
	rename(tmp, path);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 96;
	wl_init("memwrite");
	npages = mib * 256;
	A = mmap(NULL, npages * WL_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	B = mmap(NULL, B_PAGES * WL_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	M = mmap(NULL, M_PAGES * WL_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gen = calloc(npages, sizeof(*gen));
	if (A == MAP_FAILED || B == MAP_FAILED || M == MAP_FAILED || !gen)
		wl_die("allocation: %m");
	b_addr = B;
	for (size_t p = 0; p < npages; p++)
		if (p % 5) {
			gen[p] = 1;
			fill(A + p * WL_PAGE, p, 1);
		}
	for (size_t p = 0; p < B_PAGES; p++)
		fill(B + p * WL_PAGE, 100000 + p, 7);
	for (size_t p = 0; p < M_PAGES; p++)
		fill(M + p * WL_PAGE, 200000 + p, 9);
	write_done(0);
	wl_ready();
	while (!wl_usr1) {
		int want = read_num("want");
		while (rounds < want && !wl_failed())
			round_k(rounds + 1);
		if (read_num("done") != rounds)
			write_done(rounds);
		usleep(20000);
	}
	verify("after restore");
	wl_finish();
}
