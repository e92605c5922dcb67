/* SPDX-License-Identifier: GPL-2.0-only */
/* Which pages of a range hold data worth saving, as runs, via PAGEMAP_SCAN. */
#ifndef CKPT_PAGESCAN_H
#define CKPT_PAGESCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct page_run {
	uint64_t start, end;
};

struct page_runs {
	struct page_run *r;
	size_t n, cap;
};

enum pagescan_mode {
	SCAN_ANON,        /* private anonymous: present or swapped, not the zero page */
	SCAN_PRIVATE_COW, /* private file mapping: only anonymous (COW'd) pages */
	SCAN_SHARED,      /* shared memory: every present or swapped page */
};

/* Append to runs the pages of [start, end) to save; adjacent runs merge. */
int pagescan_range(int pagemap_fd, uint64_t start, uint64_t end, enum pagescan_mode mode,
		   struct page_runs *runs);
void page_runs_free(struct page_runs *runs);
/* Append [start, end), merging with the last run when adjacent. */
int page_runs_add(struct page_runs *runs, uint64_t start, uint64_t end);
/* Is PAGEMAP_SCAN usable here (on our own pagemap)? */
bool pagescan_supported(void);

#endif
