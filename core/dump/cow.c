/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Private pages a task still shares copy-on-write with a task dumped
 * before it (a parent and the children it forked, untouched since) are
 * saved once: the later task's pagemap refers to the earlier task's pages
 * image.  A shared page is one the kernel reports as not exclusively
 * mapped whose frame (PFN, shown to CAP_SYS_ADMIN in /proc/PID/pagemap)
 * an earlier task saved; the tree is stopped, so a frame holds the same
 * page for the whole dump.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump.h"
#include "log.h"

#define PM_PFN_MASK ((1ULL << 55) - 1)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_FILE (1ULL << 61)
#define PM_SWAP (1ULL << 62)
#define PM_PRESENT (1ULL << 63)
#define PM_CHUNK 8192 /* pagemap entries read at once */

/* Frames saved so far: PFN -> which task's image holds it, where. */
struct frame {
	uint64_t pfn1; /* PFN + 1; 0: free slot */
	uint64_t offset;
	int32_t vpid;
};
static struct frame *frames;
static size_t nframes, capframes;
static bool enabled;

void cow_begin(bool on)
{
	enabled = on;
}

void cow_end(void)
{
	free(frames);
	frames = NULL;
	nframes = capframes = 0;
	enabled = false;
}

static size_t slot_of(uint64_t pfn1)
{
	uint64_t h = pfn1 * 0x9E3779B97F4A7C15ULL;
	return (h ^ (h >> 29)) & (capframes - 1);
}

static const struct frame *frame_find(uint64_t pfn)
{
	if (!capframes)
		return NULL;
	for (size_t i = slot_of(pfn + 1);; i = (i + 1) & (capframes - 1)) {
		if (!frames[i].pfn1)
			return NULL;
		if (frames[i].pfn1 == pfn + 1)
			return &frames[i];
	}
}

static int frame_add(uint64_t pfn, int32_t vpid, uint64_t offset)
{
	if ((nframes + 1) * 2 > capframes) {
		size_t ncap = capframes ? capframes * 2 : 4096;
		struct frame *n = calloc(ncap, sizeof(*n)), *old = frames;
		if (!n)
			return -ENOMEM;
		size_t oldcap = capframes;
		frames = n;
		capframes = ncap;
		for (size_t i = 0; i < oldcap; i++)
			if (old[i].pfn1) {
				size_t k = slot_of(old[i].pfn1);
				while (frames[k].pfn1)
					k = (k + 1) & (capframes - 1);
				frames[k] = old[i];
			}
		free(old);
	}
	size_t k = slot_of(pfn + 1);
	while (frames[k].pfn1) {
		if (frames[k].pfn1 == pfn + 1)
			return 0; /* the first saver keeps it */
		k = (k + 1) & (capframes - 1);
	}
	frames[k] = (struct frame){ pfn + 1, offset, vpid };
	nframes++;
	return 0;
}

static int cand_add(struct cow_task *ct, uint64_t vaddr, uint64_t pfn)
{
	if (ct->ncand == ct->capcand) {
		size_t ncap = ct->capcand ? ct->capcand * 2 : 1024;
		void *n = realloc(ct->cand, ncap * sizeof(*ct->cand));
		if (!n)
			return -ENOMEM;
		ct->cand = n;
		ct->capcand = ncap;
	}
	ct->cand[ct->ncand].vaddr = vaddr;
	ct->cand[ct->ncand].pfn = pfn;
	ct->ncand++;
	return 0;
}

static int foreign_add(struct cow_task *ct, uint64_t vaddr, const struct frame *f)
{
	struct cow_ref *l = ct->nref ? &ct->ref[ct->nref - 1] : NULL;
	if (l && l->vpid == f->vpid && l->vaddr + l->nr_pages * 4096 == vaddr &&
	    l->offset + l->nr_pages * 4096 == f->offset) {
		l->nr_pages++;
		return 0;
	}
	if (ct->nref == ct->capref) {
		size_t ncap = ct->capref ? ct->capref * 2 : 64;
		void *n = realloc(ct->ref, ncap * sizeof(*ct->ref));
		if (!n)
			return -ENOMEM;
		ct->ref = n;
		ct->capref = ncap;
	}
	ct->ref[ct->nref++] = (struct cow_ref){ vaddr, 1, f->offset, f->vpid };
	return 0;
}

int cow_split(int pagemap_fd, struct page_runs *runs, struct cow_task *ct, uint64_t *shared)
{
	*shared = 0;
	if (!enabled || !runs->n)
		return 0;
	struct page_runs own = { 0 };
	uint64_t *pm = malloc(PM_CHUNK * sizeof(*pm));
	int ret = pm ? 0 : -ENOMEM;
	for (size_t k = 0; !ret && k < runs->n; k++) {
		for (uint64_t a = runs->r[k].start; !ret && a < runs->r[k].end;) {
			uint64_t n = (runs->r[k].end - a) / 4096;
			if (n > PM_CHUNK)
				n = PM_CHUNK;
			ssize_t r = pread(pagemap_fd, pm, n * 8, (off_t)(a / 4096 * 8));
			if (r != (ssize_t)(n * 8)) {
				ret = r < 0 ? -errno : -EIO;
				pr_err("mem", "cannot read pagemap at %#llx: %s", (unsigned long long)a,
				       strerror(-ret));
				break;
			}
			for (uint64_t i = 0; !ret && i < n; i++, a += 4096) {
				uint64_t e = pm[i], pfn = e & PM_PFN_MASK;
				bool cand = (e & PM_PRESENT) && !(e & (PM_SWAP | PM_FILE | PM_EXCLUSIVE)) && pfn;
				const struct frame *f = cand ? frame_find(pfn) : NULL;
				if (f) {
					ret = foreign_add(ct, a, f);
					(*shared)++;
					continue;
				}
				ret = page_runs_add(&own, a, a + 4096);
				if (!ret && cand)
					ret = cand_add(ct, a, pfn);
			}
		}
	}
	free(pm);
	if (ret) {
		page_runs_free(&own);
		return ret;
	}
	page_runs_free(runs);
	*runs = own;
	return 0;
}

int cow_register(struct cow_task *ct, int32_t vpid, const struct page_runs *runs, size_t nruns,
		 uint64_t base)
{
	size_t c = 0;
	uint64_t off = base;
	for (size_t i = 0; i < nruns && c < ct->ncand; i++)
		for (size_t k = 0; k < runs[i].n; k++) {
			const struct page_run *r = &runs[i].r[k];
			while (c < ct->ncand && ct->cand[c].vaddr < r->end) {
				if (ct->cand[c].vaddr >= r->start) {
					int ret = frame_add(ct->cand[c].pfn, vpid,
							    off + (ct->cand[c].vaddr - r->start));
					if (ret)
						return ret;
				}
				c++;
			}
			off += r->end - r->start;
		}
	return 0;
}

void cow_task_free(struct cow_task *ct)
{
	free(ct->cand);
	free(ct->ref);
	memset(ct, 0, sizeof(*ct));
}
