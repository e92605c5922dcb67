/* SPDX-License-Identifier: GPL-2.0-only */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kernel.h"
#include "log.h"
#include "pagescan.h"

int page_runs_add(struct page_runs *runs, uint64_t start, uint64_t end)
{
	if (runs->n && runs->r[runs->n - 1].end == start) {
		runs->r[runs->n - 1].end = end;
		return 0;
	}
	if (runs->n == runs->cap) {
		size_t nc = runs->cap ? runs->cap * 2 : 256;
		struct page_run *nr = realloc(runs->r, nc * sizeof(*nr));
		if (!nr)
			return -ENOMEM;
		runs->r = nr;
		runs->cap = nc;
	}
	runs->r[runs->n++] = (struct page_run){ start, end };
	return 0;
}

int pagescan_range(int pagemap_fd, uint64_t start, uint64_t end, enum pagescan_mode mode,
		   struct page_runs *runs)
{
	struct page_region vec[512];
	struct pm_scan_arg arg;
	/* Everything below `covered` has been reported: a resumed walk may
	 * report regions again (walk_end can come back short). */
	uint64_t covered = start;

	memset(&arg, 0, sizeof(arg));
	arg.size = sizeof(arg);
	arg.vec = (uint64_t)(uintptr_t)vec;
	arg.vec_len = sizeof(vec) / sizeof(vec[0]);
	arg.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
	arg.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
	switch (mode) {
	case SCAN_ANON:
		/* the shared zero page reads as zeros: nothing to save */
		arg.category_inverted = PAGE_IS_PFNZERO;
		arg.category_mask = PAGE_IS_PFNZERO;
		break;
	case SCAN_PRIVATE_COW:
		arg.category_inverted = PAGE_IS_FILE | PAGE_IS_PFNZERO;
		arg.category_mask = PAGE_IS_FILE | PAGE_IS_PFNZERO;
		break;
	case SCAN_SHARED:
		break;
	}

	while (covered < end) {
		uint64_t before = covered;
		arg.start = covered;
		arg.end = end;
		arg.walk_end = 0;
		long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &arg);
		if (n < 0) {
			int err = -errno;
			pr_err("mem", "PAGEMAP_SCAN of %#llx-%#llx failed: %s",
			       (unsigned long long)start, (unsigned long long)end, strerror(errno));
			return err;
		}
		for (long i = 0; i < n; i++) {
			uint64_t s = vec[i].start, e = vec[i].end;
			if (e <= covered)
				continue;
			if (s < covered)
				s = covered;
			int ret = page_runs_add(runs, s, e);
			if (ret)
				return ret;
			covered = e;
		}
		if (arg.walk_end > covered)
			covered = arg.walk_end;
		if (covered <= before)
			break; /* no progress: the walk is over */
	}
	return 0;
}

void page_runs_free(struct page_runs *runs)
{
	free(runs->r);
	memset(runs, 0, sizeof(*runs));
}

bool pagescan_supported(void)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct page_region vec[1];
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (uint64_t)(uintptr_t)&fd & ~4095ULL,
		.vec = (uint64_t)(uintptr_t)vec,
		.vec_len = 1,
		.category_anyof_mask = PAGE_IS_PRESENT,
		.return_mask = PAGE_IS_PRESENT,
	};
	arg.end = arg.start + 4096;
	long n = ioctl(fd, PAGEMAP_SCAN, &arg);
	close(fd);
	return n >= 0;
}
