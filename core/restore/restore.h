/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef CKPT_RESTORE_H
#define CKPT_RESTORE_H

#include <stdbool.h>
#include <sys/types.h>

#include "core.pb-c.h"
#include "fdinfo.pb-c.h"
#include "inventory.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "proc.h"
#include "pstree.pb-c.h"

struct restore_opts {
	const char *dir;
	bool detach;
	const char *pidfile;
	bool pidns;
	bool shell_job;
};

int cmd_restore(const struct restore_opts *o);

/* An fd the worker must end up with: src (open in the controller, so
 * inherited by the worker) lands at number dst. */
struct fd_move {
	int src, dst;
	bool cloexec;
};

/* Trampoline region: a code page (syscall; int3) then scratch pages. */
#define TRAMP_PAGES 16
#define TRAMP_SIZE (TRAMP_PAGES * 4096)
#define TRAMP_SCRATCH(t) ((t) + 4096)
#define TRAMP_SCRATCH_SIZE (TRAMP_SIZE - 4096)

struct rst_task {
	pid_t pid;      /* as the task sees itself */
	pid_t hpid;     /* in our pid namespace: for ptrace and /proc */
	pid_t *htids;   /* host tids of its threads, main first (restore_switch) */
	size_t nhtids;
	int parent;     /* index in the tree, -1 for the root */
	bool zombie;
	int ready_rd;   /* controller's end of the ready pipe */
	int ready_wr;   /* the worker's end, as created (src of the ready move) */
	Ckpt__PstreeEntry *pe;
	Ckpt__TaskCore *core;
	Ckpt__Mm *mm;
	Ckpt__PagemapEntry **pm;
	size_t npm;
	Ckpt__PagemapEntry **cow_pm; /* after pm[npm]: pages in another's image */
	size_t ncow;
	/* incremental dump (chain.c): per pm[i] the chain level it is read
	 * from (0: pages_fd, k: chain_fd[k]); NULL without a parent */
	int *pm_level;
	int *chain_fd;      /* number in the worker, per level */
	int *chain_host_fd; /* ours until moved into the worker */
	struct pagecodec_index **chain_ix; /* per level: compressed image, or NULL */
	size_t nchain;
	Ckpt__FdEntry **fds;
	size_t nfds;

	/* the fd plan for the worker */
	struct fd_move *moves;
	size_t nmoves;
	int pages_fd;  /* number in the worker */
	int exe_fd;
	int *vma_fd;   /* per mm->vmas[i]: number in the worker, or -1 */
	int ready_fd;  /* worker's end of the ready pipe */

	bool in_userns;      /* in the tree's own user namespace: creds as seen there */
	bool setgroups_deny; /* ...where setgroups is denied */

	size_t seccomp_shared; /* filters every thread's chain starts with */
	uint64_t tramp; /* trampoline address */
	struct proc_vmas worker_vmas; /* as the worker reported them */
};

struct rst_tree {
	struct rst_task *t; /* parents before children, the root first */
	size_t n;
	bool root_pidns;    /* the root is init of its own pid namespace */
	int userns_go[2];   /* the root waits on [0] until its user namespace has maps */
};

/* restore.c: a new time namespace for our children, with the saved offsets */
int timens_prepare(const Ckpt__TaskCore *c);
/* userns.c: the maps of the root's new user namespace, written from here */
int userns_write_maps(pid_t pid, const Ckpt__TaskCore *c);
/* files.c */
int restore_prepare_files(struct rst_task *t);
void restore_close_files(struct rst_task *t);
void restore_files_reset(void);
/* worker.c: runs in the new task (and creates its children), never returns */
void __attribute__((noreturn)) worker_main(struct rst_tree *tr, size_t idx);
/* creds.c: the thread's credentials, its last injected step */
struct inject;
int restore_creds(struct rst_task *t, struct inject *in, const Ckpt__Creds *c);
/* seccomp.c: a thread's filters, while it is still privileged */
int restore_seccomp(struct rst_task *t, struct inject *in, const Ckpt__ThreadCore *th,
		    size_t from, size_t to);
/* How many filters, oldest first, are the same in every thread. */
size_t restore_seccomp_shared(const Ckpt__TaskCore *c);
/* timers.c: POSIX timers with their ids, by injection in the main thread */
int restore_posix_timers(struct rst_task *t, struct inject *in);
/* ipc.c: SysV objects of the tree's own ipc namespace (ipc.img), made
 * before the tasks' memory is switched; removed segments go again after */
int restore_ipc_load(struct rst_tree *tr);
int restore_ipc_create(struct rst_tree *tr);
int restore_ipc_finish(struct rst_tree *tr);
void restore_ipc_free(void);
struct inject;
int restore_sysv_attach(struct rst_task *t, struct inject *in, const Ckpt__Vma *v);
/* cow.c: pages shared copy-on-write at the dump, saved by an earlier
 * process, copied in by the controller */
int restore_cow_pages(struct rst_task *t);
/* chain.c: verify the parent dumps and resolve in_parent runs */
int restore_chain_load(const struct Ckpt__Inventory *inv, struct rst_tree *tr);
void restore_chain_free(struct rst_task *t);
/* fill.c: the task's private pages from its page images (and parents),
 * written by ckpt while the mappings are still writable */
int fill_pages_from_ckpt(struct rst_task *t);
/* memory.c: switch the stopped worker into the saved task, threads included */
int restore_switch(struct rst_task *t);

#endif
