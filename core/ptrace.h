/* SPDX-License-Identifier: GPL-2.0-only */
/* ptrace primitives: seize/stop/detach, registers, xstate, task memory. */
#ifndef CKPT_PTRACE_H
#define CKPT_PTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

/* Seize tid and bring it to a ptrace stop.  Signals that were being
 * delivered while it stopped are delivered (never lost).  exitkill: the
 * task dies if ckpt does (restore). */
int ptrace_seize_stop(pid_t tid, bool exitkill);
int ptrace_detach(pid_t tid);
/* Wait until tid reports a stop; *sig gets WSTOPSIG, *event the ptrace
 * event.  -ESRCH when it exited instead. */
int ptrace_wait_stop(pid_t tid, int *sig, int *event);
/* From any ptrace stop to an interrupt stop, running none of its code. */
int ptrace_repark(pid_t tid);

int ptrace_get_regs(pid_t tid, struct user_regs_struct *regs);
int ptrace_set_regs(pid_t tid, const struct user_regs_struct *regs);
int ptrace_get_xstate(pid_t tid, void **buf, size_t *len);
int ptrace_set_xstate(pid_t tid, const void *buf, size_t len);
int ptrace_get_sigmask(pid_t tid, uint64_t *mask);
int ptrace_set_sigmask(pid_t tid, uint64_t mask);

int task_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len);
int task_mem_write(pid_t pid, uint64_t addr, const void *buf, size_t len);

#endif
