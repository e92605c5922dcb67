/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * cow [MIB [CHILDREN]]: a parent fills MIB MiB (default 32) of private
 * anonymous memory, then forks CHILDREN (default 4) that leave it alone
 * except child k, which rewrites pages 16k..16k+3: most pages stay shared
 * copy-on-write, and the dump saves them once.  After the restore the
 * parent checks its memory, then wakes the children through a pipe: each
 * checks that it sees the parent's pages and its own rewritten ones, that
 * a write of its own stays private, and exits with the verdict.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workload.h"

#define WORDS (WL_PAGE / 8)

static uint64_t *mem;
static size_t pages;

/* Which pattern page p has in process k (0: the parent's). */
static int owner(size_t p, int k)
{
	return k && p >= (size_t)16 * k && p < (size_t)16 * k + 4 ? k : 0;
}

static void fill(size_t p, int k)
{
	for (size_t w = 0; w < WORDS; w += 64)
		mem[p * WORDS + w] = wl_word(100 + k, p * WORDS + w);
}

/* First page whose words do not match process k's view, or -1. */
static long check(int k)
{
	for (size_t p = 0; p < pages; p++) {
		int o = owner(p, k);
		for (size_t w = 0; w < WORDS; w += 64)
			if (mem[p * WORDS + w] != wl_word(100 + o, p * WORDS + w))
				return (long)p;
	}
	return -1;
}

static void __attribute__((noreturn)) child(int k, int rfd, int done)
{
	for (size_t p = 16 * k; p < 16 * (size_t)k + 4 && p < pages; p++)
		fill(p, k);
	char c = 'd';
	if (write(done, &c, 1) != 1)
		_exit(3);
	close(done);
	while (read(rfd, &c, 1) != 1)
		if (errno != EINTR)
			_exit(3);
	long bad = check(k);
	if (bad >= 0)
		_exit(1);
	/* a write of ours stays ours: the parent checks page 1 after we exit */
	mem[WORDS] = 0xdead;
	_exit(0);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 32;
	int nkids = argc > 2 ? atoi(argv[2]) : 4;
	int p[2], d[2];
	pid_t kids[64];

	wl_init("cow");
	if (nkids < 1 || nkids > 64 || mib < 1)
		wl_die("bad arguments");
	pages = mib * 256;
	if ((size_t)16 * nkids + 4 > pages)
		wl_die("too little memory for %d children", nkids);
	mem = mmap(NULL, pages * WL_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		wl_die("mmap");
	for (size_t i = 0; i < pages; i++)
		fill(i, 0);
	if (pipe(p) || pipe(d))
		wl_die("pipe");
	for (int k = 1; k <= nkids; k++) {
		kids[k - 1] = fork();
		if (kids[k - 1] < 0)
			wl_die("fork");
		if (kids[k - 1] == 0) {
			close(p[1]);
			close(d[0]);
			child(k, p[0], d[1]);
		}
	}
	close(p[0]);
	close(d[1]);
	for (int k = 0; k < nkids; k++) {
		char c;
		if (read(d[0], &c, 1) != 1)
			wl_die("a child died before rewriting its pages");
	}
	close(d[0]);

	wl_ready();
	wl_wait_usr1();

	long bad = check(0);
	WL_CHECK(bad < 0, "page %ld of the parent lost its contents", bad);
	char go[64];
	memset(go, 'g', sizeof(go));
	if (write(p[1], go, nkids) != nkids)
		wl_fail("cannot wake the children: %s", strerror(errno));
	for (int k = 0; k < nkids; k++) {
		int st;
		if (waitpid(kids[k], &st, 0) != kids[k])
			wl_fail("child %d: %s", k + 1, strerror(errno));
		else
			WL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
				 "child %d found its memory wrong (status %#x)", k + 1, st);
	}
	WL_CHECK(mem[WORDS] == wl_word(100, WORDS), "a child's write reached the parent's memory");
	wl_finish();
}
