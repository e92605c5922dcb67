/* SPDX-License-Identifier: GPL-2.0-only */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>

#include "inject.h"
#include "log.h"
#include "proc.h"
#include "ptrace.h"

int inject_find_syscall_in(pid_t pid, uint64_t start, uint64_t end, uint64_t *ip)
{
	size_t len = end - start;
	unsigned char *buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	int ret = task_mem_read(pid, start, buf, len);
	if (!ret) {
		ret = -ENOENT;
		for (size_t off = 0; off + 1 < len; off++) {
			if (buf[off] == 0x0f && buf[off + 1] == 0x05) {
				*ip = start + off;
				ret = 0;
				break;
			}
		}
	}
	free(buf);
	return ret;
}

int inject_find_vdso_syscall(pid_t pid, uint64_t *ip)
{
	struct proc_vmas vmas;
	int ret = proc_read_maps(pid, &vmas);
	if (ret)
		return ret;
	ret = -ENOENT;
	for (size_t i = 0; i < vmas.n; i++) {
		struct proc_vma *v = &vmas.v[i];
		if (v->name && !strcmp(v->name, "[vdso]")) {
			ret = inject_find_syscall_in(pid, v->start, v->end, ip);
			break;
		}
	}
	proc_free_vmas(&vmas);
	if (ret)
		pr_err("inject", "no syscall instruction found in the vDSO of %d", pid);
	return ret;
}

int inject_begin(struct inject *in, pid_t tid, uint64_t syscall_ip)
{
	int ret;
	memset(in, 0, sizeof(*in));
	in->tid = tid;
	in->syscall_ip = syscall_ip;
	ret = ptrace_get_regs(tid, &in->saved);
	if (ret)
		return ret;
	ret = ptrace_get_sigmask(tid, &in->saved_sigmask);
	if (ret)
		return ret;
	/* keep every signal pending while we step the task */
	ret = ptrace_set_sigmask(tid, ~0ULL);
	if (ret)
		return ret;
	in->restore_on_end = true;
	return 0;
}

int inject_call(struct inject *in, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		uint64_t a5, uint64_t a6, long *ret)
{
	struct user_regs_struct r = in->saved;
	int err;

	r.rip = in->syscall_ip;
	r.rax = nr;
	r.rdi = a1;
	r.rsi = a2;
	r.rdx = a3;
	r.r10 = a4;
	r.r8 = a5;
	r.r9 = a6;
	/* no syscall restart for the stop we are in */
	r.orig_rax = (uint64_t)-1;
	err = ptrace_set_regs(in->tid, &r);
	if (err)
		return err;
	in->stepped = true;
	for (;;) {
		int sig, event;
		if (ptrace(PTRACE_SINGLESTEP, in->tid, 0, 0))
			return -errno;
		err = ptrace_wait_stop(in->tid, &sig, &event);
		if (err)
			return err;
		if (sig == SIGTRAP && event == 0)
			break;
		/* clone3 reports the new thread mid-syscall: step on to its end */
		if (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_FORK ||
		    event == PTRACE_EVENT_VFORK)
			continue;
		/* A stop other than our step (e.g. a late interrupt): the
		 * syscall has not run if the IP did not move. */
		struct user_regs_struct now;
		err = ptrace_get_regs(in->tid, &now);
		if (err)
			return err;
		if (now.rip != in->syscall_ip)
			break;
	}
	err = ptrace_get_regs(in->tid, &r);
	if (err)
		return err;
	if (r.rip != in->syscall_ip + 2) {
		pr_err("inject", "task %d: syscall %ld did not complete (ip %llx)", in->tid, nr,
		       (unsigned long long)r.rip);
		return -EIO;
	}
	*ret = (long)r.rax;
	return 0;
}

long inject_do(struct inject *in, const char *what, long nr, uint64_t a1, uint64_t a2,
	       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6)
{
	long ret;
	int err = inject_call(in, nr, a1, a2, a3, a4, a5, a6, &ret);
	if (err) {
		pr_err("inject", "task %d: %s: cannot run syscall %ld: %s", in->tid, what, nr,
		       strerror(-err));
		return err;
	}
	if (ret < 0 && ret > -4096) {
		pr_err("inject", "task %d: %s failed: %s", in->tid, what, strerror((int)-ret));
		return ret;
	}
	return ret;
}

int inject_end(struct inject *in)
{
	int ret = 0, r0 = 0;
	if (!in->restore_on_end)
		return 0;
	if (in->stepped)
		r0 = ptrace_repark(in->tid);
	in->stepped = false;
	ret = ptrace_set_regs(in->tid, &in->saved);
	int r2 = ptrace_set_sigmask(in->tid, in->saved_sigmask);
	in->restore_on_end = false;
	return r0 ? r0 : ret ? ret : r2;
}

int inject_syscall(pid_t tid, long nr, const uint64_t args[6], long *ret)
{
	struct inject in;
	uint64_t ip;
	int err = inject_find_vdso_syscall(tid, &ip);
	if (err)
		return err;
	err = inject_begin(&in, tid, ip);
	if (err)
		return err;
	err = inject_call(&in, nr, args[0], args[1], args[2], args[3], args[4], args[5], ret);
	int e2 = inject_end(&in);
	return err ? err : e2;
}
