/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Syscall injection: run one syscall inside a stopped, seized task by
 * pointing its IP at a `syscall` instruction and single-stepping it.
 * A session saves the task's registers and signal mask (all signals are
 * blocked meanwhile, so none is lost) and puts both back at the end.
 */
#ifndef CKPT_INJECT_H
#define CKPT_INJECT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

struct inject {
	pid_t tid;
	uint64_t syscall_ip; /* address of a 0f 05 in the task */
	struct user_regs_struct saved;
	uint64_t saved_sigmask;
	bool restore_on_end;
	bool stepped; /* single-stepped: inject_end parks it again */
};

/* Find a `syscall` instruction in the task's [vdso]. */
int inject_find_vdso_syscall(pid_t pid, uint64_t *ip);
int inject_find_syscall_in(pid_t pid, uint64_t start, uint64_t end, uint64_t *ip);
int inject_begin(struct inject *in, pid_t tid, uint64_t syscall_ip);
/* *ret gets the raw syscall result (-errno on failure). */
int inject_call(struct inject *in, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		uint64_t a5, uint64_t a6, long *ret);
/* Like inject_call, but a negative result is an error (logged, returned). */
long inject_do(struct inject *in, const char *what, long nr, uint64_t a1, uint64_t a2,
	       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6);
/* Put the saved registers and signal mask back. */
int inject_end(struct inject *in);

/* Host-table form: a whole session around one call. */
int inject_syscall(pid_t tid, long nr, const uint64_t args[6], long *ret);

#endif
