/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * memfd_map: mappings of memfds (the core asks the fs plugin for the file).
 *  - memfd A, 64 KiB, mapped MAP_SHARED and still open as an fd: after
 *    restore a write through the mapping is seen by pread on the fd and a
 *    pwrite on the fd is seen in the mapping (one object, not two);
 *  - the same memfd mapped MAP_PRIVATE with pages written before the dump
 *    (copy-on-write): those keep the private data, the others follow the
 *    file;
 *  - memfd B mapped MAP_SHARED, its fd closed: contents kept.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "workload.h"

#define SZ (16 * WL_PAGE)

int main(void)
{
	wl_init("memfd_map");
	int a = memfd_create("wl-map-a", 0), b = memfd_create("wl-map-b", 0);
	if (a < 0 || b < 0 || ftruncate(a, SZ) || ftruncate(b, SZ))
		wl_die("memfd: %s", strerror(errno));
	uint64_t *sa = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, a, 0);
	uint64_t *pa = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE, a, 0);
	uint64_t *sb = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, b, 0);
	if (sa == MAP_FAILED || pa == MAP_FAILED || sb == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	size_t n = SZ / 8, per_page = WL_PAGE / 8;
	for (size_t i = 0; i < n; i++) {
		sa[i] = wl_word(1, i);
		sb[i] = wl_word(2, i);
	}
	/* private copies of the even pages only */
	for (size_t pg = 0; pg < 16; pg += 2)
		pa[pg * per_page] = wl_word(3, pg);
	close(b);

	wl_ready();
	wl_wait_usr1();

	for (size_t i = 0; i < n; i++) {
		if (sa[i] != wl_word(1, i)) {
			wl_fail("shared mapping of A lost word %zu", i);
			break;
		}
		if (sb[i] != wl_word(2, i)) {
			wl_fail("shared mapping of B (fd closed) lost word %zu", i);
			break;
		}
	}
	for (size_t pg = 0; pg < 16; pg++) {
		uint64_t want = pg % 2 ? wl_word(1, pg * per_page) : wl_word(3, pg);
		if (pa[pg * per_page] != want) {
			wl_fail("private mapping page %zu: %#llx, want %#llx", pg,
				(unsigned long long)pa[pg * per_page], (unsigned long long)want);
			break;
		}
	}
	/* one object: writes cross between the mapping and the fd */
	sa[5] = 0x1234;
	uint64_t v = 0;
	WL_CHECK(pread(a, &v, 8, 5 * 8) == 8 && v == 0x1234, "the fd does not see the mapping's write");
	v = 0x5678;
	WL_CHECK(pwrite(a, &v, 8, 7 * 8) == 8 && sa[7] == 0x5678, "the mapping does not see the fd's write");
	/* an odd (not copied) private page follows the file */
	v = 0x9abc;
	WL_CHECK(pwrite(a, &v, 8, 1 * WL_PAGE) == 8 && pa[per_page] == 0x9abc,
		 "a private page never written no longer follows the file");
	wl_finish();
}
