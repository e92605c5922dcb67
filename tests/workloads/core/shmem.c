/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * shmem: MAP_SHARED|MAP_ANONYMOUS memory shared by a parent and its child.
 * Before the dump both write a pattern into it; after the restore each
 * side writes new words and must see the other's: the memory is still
 * one object, not two copies.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workload.h"

#define PAGES 64

struct shared {
	_Atomic uint64_t ping, pong;
	uint64_t pattern[PAGES * WL_PAGE / 8 - 2];
};

int main(void)
{
	wl_init("shmem");
	struct shared *sh = mmap(NULL, PAGES * WL_PAGE, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		wl_die("mmap");
	size_t n = sizeof(sh->pattern) / 8;
	for (size_t i = 0; i < n / 2; i++)
		sh->pattern[i] = wl_word(1, i);
	pid_t child = fork();
	if (child == 0) {
		for (size_t i = n / 2; i < n; i++)
			sh->pattern[i] = wl_word(2, i);
		/* answer every ping with a pong */
		for (;;) {
			uint64_t p = atomic_load(&sh->ping);
			if (p != atomic_load(&sh->pong))
				atomic_store(&sh->pong, p);
			usleep(1000);
		}
	}
	while (sh->pattern[n - 1] != wl_word(2, n - 1))
		usleep(1000);

	wl_ready();
	wl_wait_usr1();

	for (size_t i = 0; i < n; i++)
		if (sh->pattern[i] != wl_word(i < n / 2 ? 1 : 2, i)) {
			wl_fail("word %zu of the shared memory lost its value", i);
			break;
		}
	for (uint64_t v = 1000; v < 1005; v++) {
		atomic_store(&sh->ping, v);
		int i;
		for (i = 0; i < 2000 && atomic_load(&sh->pong) != v; i++)
			usleep(1000);
		if (atomic_load(&sh->pong) != v) {
			wl_fail("the child no longer sees our writes (ping %llu, pong %llu)",
				(unsigned long long)v, (unsigned long long)atomic_load(&sh->pong));
			break;
		}
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	wl_finish();
}
