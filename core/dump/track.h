/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Memory tracking for incremental dumps (pre-dump, --track-mem,
 * --prev-images-dir) without soft-dirty: a userfaultfd created inside each
 * task by an injected syscall, registered write-protect in async mode over
 * its private mappings; PAGEMAP_SCAN then tells which pages were written
 * since the last dump and write-protects them again.  Between two dumps a
 * small holder process keeps the userfaultfds and hands them over a unix
 * socket in the images directory.
 */
#ifndef CKPT_TRACK_H
#define CKPT_TRACK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "pagescan.h"
#include "proc.h"

struct dump_opts;
struct dtask;

/* Before the images directory is opened: load and verify the parent images,
 * take the userfaultfds over from the parent's holder. */
int track_begin(const struct dump_opts *o);
/* After the images directory is opened: the `parent` link. */
int track_link_parent(void);
/* Under injection, per task: give the task a userfaultfd when tracking. */
int track_task(struct dtask *t);
/* Pages of one mapping: those to save in save, those the parent chain
 * holds unchanged in parent.  -ENOTSUP: not tracked, scan as usual. */
int track_vma_pages(pid_t pid, pid_t vpid, const struct proc_vma *v, const Ckpt__Vma *m,
		    enum pagescan_mode mode, int pagemap_fd, struct page_runs *save,
		    struct page_runs *parent);
/* A pre-dump leaves alone what only a plugin could save. */
bool track_is_predump(void);
void track_inventory(Ckpt__Inventory *inv);
/* The dump succeeded (the inventory is next): leave a holder when tracking
 * goes on.  Then track_end lets everything go (ok: the parent's holder may
 * exit; else tracking is lost and undone). */
int track_commit(void);
void track_end(void);
/* ckpt pre-dump --cleanup -D DIR */
int track_cleanup(const char *dir);

#endif
