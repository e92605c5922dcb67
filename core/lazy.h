/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Lazy restore.  `ckpt lazy-pages -D DIR` runs first and listens on
 * DIR/lazy-pages.sock.  `ckpt restore --lazy-pages` maps private anonymous
 * memory without filling it, makes the restored task register those VMAs
 * with a userfaultfd (injected syscalls: the uffd belongs to the caller's
 * mm), takes the uffd out of the task with pidfd_getfd, closes it there and
 * hands it to the daemon over the socket (SCM_RIGHTS).  The daemon serves
 * faults with UFFDIO_COPY, pushes the rest in the background, follows
 * fork, mremap, munmap and madvise(DONTNEED), and exits when every page
 * is in place.
 */
#ifndef CKPT_LAZY_H
#define CKPT_LAZY_H

#include <stdbool.h>
#include <stdint.h>

#define LAZY_SOCK_NAME "lazy-pages.sock"

/* Controller -> daemon, one per task, with the uffd as SCM_RIGHTS; pid
 * names pagemap-PID.img.  pid 0 (no fd): the restore is over. */
struct lazy_hello {
	int32_t pid;
	int32_t pad;
};
/* Daemon -> controller: 0 or -errno, and why. */
struct lazy_ack {
	int32_t status;
	char text[252];
};

struct lazy_opts {
	const char *dir;
	const char *ps_address; /* NULL: pages from DIR, else from this page server */
	int ps_port;
	bool daemon;
	int status_fd;
};

int cmd_lazy_pages(const struct lazy_opts *o);

/* Restore side (restore/lazy.c). */
int lazy_restore_enable(const char *dir);
bool lazy_restore_on(void);
struct rst_task;
struct inject;
/* Leave out of t->pm what the daemon will serve (lazy_restore_unsplit puts
 * the full list back). */
int lazy_restore_split(struct rst_task *t);
void lazy_restore_unsplit(struct rst_task *t);
/* Register the lazy VMAs of t with a fresh uffd and hand it over. */
int lazy_restore_register(struct rst_task *t, struct inject *in);
/* The whole tree is handed over (or the restore failed). */
void lazy_restore_finish(void);
/* Which VMAs are lazy: private anonymous ones with saved pages. */
#include "mm.pb-c.h"
bool lazy_vma_is_lazy(const Ckpt__Vma *v);

#endif
