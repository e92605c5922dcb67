/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Restore from an incremental dump: pages marked in_parent live in an
 * earlier dump of the chain (DIR/parent, its parent, ...).  Each parent is
 * verified like the dump itself (inventory, sizes, xxh3 of every image) and
 * must be the very inventory its child was dumped against (the child records
 * its hash).  Then every in_parent run is resolved to the image that holds
 * it, and the pagemap becomes a flat list of runs, each with the chain level
 * whose pages image it is read from (fill_pages: one preadv per contiguous
 * run of one image).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "pagecodec.h"
#include "restore.h"

#define CHAIN_MAX 64

struct level_task {
	Ckpt__PagemapEntry **pm; /* sorted by vaddr */
	size_t npm;
	int pages_fd;            /* ours, -1 when the level has none for the task */
	struct pagecodec_index *ix; /* its block index when compressed */
};

struct level {
	char dir[PATH_MAX];
	struct level_task *lt;   /* per task of the tree */
};

static int cmp_pm(const void *a, const void *b)
{
	const Ckpt__PagemapEntry *x = *(Ckpt__PagemapEntry *const *)a;
	const Ckpt__PagemapEntry *y = *(Ckpt__PagemapEntry *const *)b;
	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

static int inventory_hash(uint64_t *hash)
{
	int fd = openat(img_store_dirfd(), "inventory.img", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	int ret = 0;
	char *buf = NULL;
	if (fstat(fd, &st)) {
		ret = -errno;
	} else if (!(buf = malloc(st.st_size + 1))) {
		ret = -ENOMEM;
	} else if (read(fd, buf, st.st_size) != st.st_size) {
		ret = -EIO;
	} else {
		*hash = img_hash_buf(buf, st.st_size);
	}
	free(buf);
	close(fd);
	return ret;
}

/* Open, verify and load one level; *next_hash: what its own parent must be. */
static int load_level(struct level *lv, const char *child, const struct rst_tree *tr,
		      uint64_t want, bool *has_next, uint64_t *next_hash)
{
	Ckpt__Inventory *inv = NULL;
	uint64_t hash = 0;
	struct stat st;
	int ret = stat(lv->dir, &st) ? -errno : 0;
	if (!ret)
		ret = img_store_open(lv->dir, false);
	if (ret) {
		pr_err("restore", "%s/parent: the images it was dumped against are gone: %s", child,
		       strerror(-ret));
		return ret;
	}
	ret = img_inventory_verify(&inv); /* its error names the parent's image */
	if (ret)
		return ret;
	ret = inventory_hash(&hash);
	if (ret || hash != want) {
		pr_err("restore", "%s/parent (%s) is not the dump %s was made against (its inventory changed): the chain was modified or replaced",
		       child, lv->dir, child);
		ret = ret ? ret : -EBADMSG;
		goto out;
	}
	*has_next = inv->has_parent_inventory_xxh3;
	*next_hash = inv->parent_inventory_xxh3;
	lv->lt = calloc(tr->n, sizeof(*lv->lt));
	if (!lv->lt) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < tr->n; i++) {
		struct level_task *l = &lv->lt[i];
		char name[64];
		l->pages_fd = -1;
		if (tr->t[i].zombie)
			continue;
		snprintf(name, sizeof(name), "pagemap-%d.img", tr->t[i].pid);
		ret = img_load_all(name, &ckpt__pagemap_entry__descriptor,
				   (ProtobufCMessage ***)&l->pm, &l->npm, true);
		if (ret)
			goto out;
		/* pages saved in another process's image are never taken from a
		 * parent (the dump does not count them as the parent's) */
		size_t own = 0;
		for (size_t k = 0; k < l->npm; k++) {
			if (l->pm[k]->has_pages_of)
				protobuf_c_message_free_unpacked(&l->pm[k]->base, NULL);
			else
				l->pm[own++] = l->pm[k];
		}
		l->npm = own;
		qsort(l->pm, l->npm, sizeof(*l->pm), cmp_pm);
		snprintf(name, sizeof(name), "pages-%d.img", tr->t[i].pid);
		if (l->npm)
			l->pages_fd = img_raw_open(name);
		if (l->npm && l->pages_fd < 0) {
			ret = l->pages_fd;
			l->pages_fd = -1;
			goto out;
		}
		/* offsets are of the uncompressed stream: read through the blocks */
		if (l->npm)
			ret = pagecodec_index_load(tr->t[i].pid, &l->ix);
		if (ret)
			goto out;
	}
out:
	if (inv)
		protobuf_c_message_free_unpacked(&inv->base, NULL);
	return ret;
}

struct flat {
	Ckpt__PagemapEntry **pm;
	int *lvl;
	size_t n, cap;
};

static int flat_add(struct flat *f, uint64_t vaddr, uint64_t len, uint64_t offset, int lvl)
{
	if (f->n && f->lvl[f->n - 1] == lvl) {
		Ckpt__PagemapEntry *l = f->pm[f->n - 1];
		if (l->vaddr + l->nr_pages * 4096 == vaddr && l->offset + l->nr_pages * 4096 == offset) {
			l->nr_pages += len / 4096;
			return 0;
		}
	}
	if (f->n == f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 64;
		Ckpt__PagemapEntry **np = realloc(f->pm, nc * sizeof(*np));
		if (!np)
			return -ENOMEM;
		f->pm = np;
		int *nl = realloc(f->lvl, nc * sizeof(*nl));
		if (!nl)
			return -ENOMEM;
		f->lvl = nl;
		f->cap = nc;
	}
	Ckpt__PagemapEntry *e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	ckpt__pagemap_entry__init(e);
	e->has_vaddr = e->has_nr_pages = e->has_offset = 1;
	e->vaddr = vaddr;
	e->nr_pages = len / 4096;
	e->offset = offset;
	f->pm[f->n] = e;
	f->lvl[f->n++] = lvl;
	return 0;
}

/* [s, e) from level k (1-based in lv[k - 1]) down the chain. */
static int resolve(struct level *lv, size_t nlv, size_t k, size_t ti, pid_t pid, uint64_t s,
		   uint64_t e, struct flat *f)
{
	if (k > nlv) {
		pr_err("restore", "PID %d: pages at %#llx are marked as in the parent, but the chain ends before them: the images are inconsistent",
		       pid, (unsigned long long)s);
		return -EBADMSG;
	}
	struct level_task *l = &lv[k - 1].lt[ti];
	/* first entry ending after s */
	size_t lo = 0, hi = l->npm;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (l->pm[mid]->vaddr + l->pm[mid]->nr_pages * 4096 <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (s < e) {
		Ckpt__PagemapEntry *p = lo < l->npm ? l->pm[lo] : NULL;
		if (!p || p->vaddr > s) {
			pr_err("restore", "PID %d: page %#llx is marked as in the parent, but %s does not hold it: the images are inconsistent",
			       pid, (unsigned long long)s, lv[k - 1].dir);
			return -EBADMSG;
		}
		uint64_t pe = p->vaddr + p->nr_pages * 4096, upto = pe < e ? pe : e;
		int ret = p->in_parent ? resolve(lv, nlv, k + 1, ti, pid, s, upto, f)
				       : flat_add(f, s, upto - s, p->offset + (s - p->vaddr), (int)k);
		if (ret)
			return ret;
		s = upto;
		lo++;
	}
	return 0;
}

static int flatten(struct rst_task *t, size_t ti, struct level *lv, size_t nlv)
{
	struct flat f = { 0 };
	int ret = 0;
	for (size_t i = 0; i < t->npm && !ret; i++) {
		Ckpt__PagemapEntry *e = t->pm[i];
		ret = e->in_parent ? resolve(lv, nlv, 1, ti, t->pid, e->vaddr,
					     e->vaddr + e->nr_pages * 4096, &f)
				   : flat_add(&f, e->vaddr, e->nr_pages * 4096, e->offset, 0);
	}
	if (ret) {
		for (size_t i = 0; i < f.n; i++)
			free(f.pm[i]);
		free(f.pm);
		free(f.lvl);
		return ret;
	}
	/* the runs in another process's image stay last (cow.c) */
	Ckpt__PagemapEntry **all = realloc(f.pm, (f.n + t->ncow + 1) * sizeof(*all));
	if (!all) {
		for (size_t i = 0; i < f.n; i++)
			free(f.pm[i]);
		free(f.pm);
		free(f.lvl);
		return -ENOMEM;
	}
	if (t->ncow)
		memcpy(all + f.n, t->cow_pm, t->ncow * sizeof(*all));
	for (size_t i = 0; i < t->npm; i++)
		protobuf_c_message_free_unpacked(&t->pm[i]->base, NULL);
	free(t->pm);
	t->pm = all;
	t->npm = f.n;
	t->cow_pm = t->ncow ? all + f.n : NULL;
	t->pm_level = f.lvl;
	return 0;
}

int restore_chain_load(const Ckpt__Inventory *inv, struct rst_tree *tr)
{
	char top[PATH_MAX];
	struct level *lv = NULL;
	size_t nlv = 0;
	bool any = false;
	int ret = 0;

	snprintf(top, sizeof(top), "%s", img_store_dir());
	for (size_t i = 0; i < tr->n; i++)
		for (size_t k = 0; k < tr->t[i].npm; k++)
			any |= tr->t[i].pm[k]->in_parent;
	if (!any)
		return 0;
	if (!inv->has_parent_inventory_xxh3) {
		pr_err("restore", "%s has pages marked as in a parent dump but names none: the images are inconsistent",
		       top);
		return -EBADMSG;
	}
	bool more = true;
	uint64_t want = inv->parent_inventory_xxh3;
	char child[PATH_MAX];
	snprintf(child, sizeof(child), "%s", top);
	while (more) {
		if (nlv == CHAIN_MAX) {
			pr_err("restore", "%s: the parent chain is longer than %d dumps (a loop?)", top,
			       CHAIN_MAX);
			ret = -ELOOP;
			goto out;
		}
		struct level *n = realloc(lv, (nlv + 1) * sizeof(*n));
		if (!n) {
			ret = -ENOMEM;
			goto out;
		}
		lv = n;
		memset(&lv[nlv], 0, sizeof(lv[nlv]));
		snprintf(lv[nlv].dir, sizeof(lv[nlv].dir), "%.*s/parent", PATH_MAX - 8, child);
		nlv++;
		ret = load_level(&lv[nlv - 1], child, tr, want, &more, &want);
		if (ret)
			goto out;
		snprintf(child, sizeof(child), "%s", lv[nlv - 1].dir);
	}
	ret = img_store_open(top, false); /* the dump's own images next */
	for (size_t i = 0; i < tr->n && !ret; i++) {
		struct rst_task *t = &tr->t[i];
		if (t->zombie)
			continue;
		ret = flatten(t, i, lv, nlv);
		if (ret)
			break;
		t->chain_fd = calloc(nlv + 1, sizeof(int));
		t->chain_host_fd = calloc(nlv + 1, sizeof(int));
		t->chain_ix = calloc(nlv + 1, sizeof(*t->chain_ix));
		if (!t->chain_fd || !t->chain_host_fd || !t->chain_ix) {
			ret = -ENOMEM;
			break;
		}
		t->nchain = nlv + 1;
		t->chain_host_fd[0] = -1;
		ret = pagecodec_index_load(t->pid, &t->chain_ix[0]);
		for (size_t k = 0; k < nlv; k++) {
			t->chain_host_fd[k + 1] = lv[k].lt[i].pages_fd;
			lv[k].lt[i].pages_fd = -1;
			t->chain_ix[k + 1] = lv[k].lt[i].ix;
			lv[k].lt[i].ix = NULL;
		}
	}
	if (!ret)
		pr_info("restore", "pages read through a chain of %zu parent dump(s)", nlv);
out:
	for (size_t k = 0; k < nlv; k++) {
		if (!lv[k].lt)
			continue;
		for (size_t i = 0; i < tr->n; i++) {
			struct level_task *l = &lv[k].lt[i];
			for (size_t j = 0; j < l->npm; j++)
				protobuf_c_message_free_unpacked(&l->pm[j]->base, NULL);
			free(l->pm);
			if (l->pages_fd >= 0)
				close(l->pages_fd);
			pagecodec_index_free(l->ix);
		}
		free(lv[k].lt);
	}
	free(lv);
	/* back to the dump itself */
	int r2 = img_store_open(top, false);
	return ret ? ret : r2;
}

void restore_chain_free(struct rst_task *t)
{
	for (size_t k = 0; t->chain_host_fd && k < t->nchain; k++)
		if (t->chain_host_fd[k] >= 0)
			close(t->chain_host_fd[k]);
	for (size_t k = 0; t->chain_ix && k < t->nchain; k++)
		pagecodec_index_free(t->chain_ix[k]);
	free(t->chain_ix);
	t->chain_ix = NULL;
	free(t->chain_host_fd);
	free(t->chain_fd);
	free(t->pm_level);
	t->chain_host_fd = t->chain_fd = t->pm_level = NULL;
	t->nchain = 0;
}
