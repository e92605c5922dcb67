/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef CKPT_DUMP_H
#define CKPT_DUMP_H

#include <stdbool.h>
#include <sys/types.h>

#include "core.pb-c.h"
#include "inject.h"
#include "mm.pb-c.h"

struct dump_opts {
	pid_t pid;
	const char *dir;
	bool leave_running;
	bool shell_job;
};

int cmd_dump(const struct dump_opts *o);

/* task.c: per-task state; regs/xstate/sigmask are read before injection */
int dump_task_core(pid_t pid, struct inject *in, uint64_t scratch, Ckpt__TaskCore **out);
void free_task_core(Ckpt__TaskCore *c);
/* memory.c: mm-PID.img, pagemap-PID.img, pages-PID.img */
int dump_task_memory(pid_t pid, uint64_t brk, uint64_t skip_start, uint64_t skip_end);
/* files.c: fdinfo-PID.img, objects through plugins */
int dump_task_files(pid_t pid);

#endif
