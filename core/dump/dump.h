/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef CKPT_DUMP_H
#define CKPT_DUMP_H

#include <stdbool.h>
#include <sys/types.h>

#include "core.pb-c.h"
#include "inject.h"
#include "mm.pb-c.h"
#include "pagescan.h"

struct dump_opts {
	pid_t pid;
	const char *dir;
	bool leave_running;
	bool shell_job;
	bool pre_dump;        /* memory only, the tree keeps running, tracking starts */
	bool track_mem;       /* leave memory tracking behind for a later dump */
	const char *prev_dir; /* --prev-images-dir: save only what changed since */
};

int cmd_dump(const struct dump_opts *o);
/* -EINTR (said once) when a stop signal came during the dump, else 0. */
int dump_interrupted(void);

/* One process of the dumped tree.  pid/tids are ours (for ptrace and /proc),
 * vpid/vtids what the task itself sees (its innermost pid namespace). */
struct dtask {
	pid_t pid, vpid;
	pid_t ppid;           /* ours; 0 for the root */
	pid_t pgid, sid;      /* as the task sees them */
	bool zombie;
	int exit_code;        /* wait status of a zombie */
	pid_t *tids, *vtids;  /* main thread first */
	size_t ntids;
	size_t nseized;       /* threads tids[0..nseized) are seized */
	struct inject *in;    /* per thread, while injecting */
	size_t ninjecting;
	uint64_t scratch;
	Ckpt__TaskCore *core;
};

/* task.c: per-task state; registers and masks come from the injection
 * sessions (which saved them), the rest from /proc and injected syscalls */
int dump_task_core(struct dtask *t, Ckpt__TaskCore **out);
void free_task_core(Ckpt__TaskCore *c);
/* namespaces.c: the uts/ipc/time namespaces the tree has of its own
 * (recorded on the root, under injection); others are refused */
/* Before any plugin runs: the namespaces the tree's are compared with. */
void dump_note_home_namespaces(void);
int dump_check_namespaces(const struct dtask *root, const struct dtask *t);
int dump_namespaces(struct dtask *root, Ckpt__TaskCore *c);
/* userns.c: a user namespace of the tree's own (maps, setgroups), and the
 * creds of a thread inside one, as it sees them */
bool dump_in_own_userns(pid_t tid);
int dump_userns(struct dtask *root, Ckpt__TaskCore *c);
int dump_creds_in_userns(pid_t tid, struct inject *in, uint64_t scratch, Ckpt__Creds *cr);
/* ipc.c: ipc.img and ipc-pages.img, the SysV objects of the root's own
 * ipc namespace (entered for the time of the walk) */
int dump_ipc_ns(pid_t root);
/* timers.c: POSIX timers, while the task is under injection */
int dump_posix_timers(struct dtask *dt, Ckpt__TaskCore *c);
/* memory.c: mm-PID.img, pagemap-PID.img, pages-PID.img */
int dump_task_memory(pid_t pid, pid_t vpid, uint64_t brk);
/* cow.c: private pages shared copy-on-write with a task dumped earlier
 * (same frame) are saved once; the later task's pagemap refers to them. */
struct cow_ref {
	uint64_t vaddr, nr_pages, offset; /* offset in pages-<vpid>.img */
	int32_t vpid;
};
struct cow_task {
	struct {
		uint64_t vaddr, pfn;
	} *cand;               /* shared pages this task saves itself */
	size_t ncand, capcand;
	struct cow_ref *ref;   /* pages saved by an earlier task */
	size_t nref, capref;
};
void cow_begin(bool enabled);
void cow_end(void);
/* Take the pages an earlier task saved out of runs (into ct->ref);
 * *shared: how many. */
int cow_split(int pagemap_fd, struct page_runs *runs, struct cow_task *ct, uint64_t *shared);
/* After this task's runs were written from image offset base, in order:
 * its shared pages become available to later tasks. */
int cow_register(struct cow_task *ct, int32_t vpid, const struct page_runs *runs, size_t nruns,
		 uint64_t base);
void cow_task_free(struct cow_task *ct);
/* A pre-dump's pages, copied once the tree runs again (tracking is armed,
 * so what it writes meanwhile is saved again by the next dump); copy false:
 * only drop them. */
int dump_memory_deferred(bool copy);
/* files.c: fdinfo-PID.img, objects through plugins */
int dump_task_files(pid_t pid, pid_t vpid);

#endif
