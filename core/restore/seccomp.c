/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A thread's seccomp filters, installed by the thread itself, oldest first.
 * They are installed while the thread is still privileged (a filter without
 * no_new_privs needs CAP_SYS_ADMIN) and the rest of the restore is not
 * subject to them: the tracer set PTRACE_O_SUSPEND_SECCOMP, which ends with
 * the detach.
 *
 * Threads share filters: a thread inherits its creator's chain by
 * reference, and seccomp(TSYNC) only succeeds while every other thread's
 * chain is an ancestor of the caller's.  No interface tells from outside
 * whether two threads' filters are the same object (kcmp has no seccomp
 * type, PTRACE_SECCOMP_GET_FILTER gives the program, /proc the count), so
 * the filters that open every thread's chain with the same program are
 * taken as shared: the main thread installs them before it creates the
 * other threads, which inherit them; each thread adds the rest of its own.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <string.h>
#include <sys/syscall.h>

#include "inject.h"
#include "log.h"
#include "ptrace.h"
#include "restore.h"

size_t restore_seccomp_shared(const Ckpt__TaskCore *c)
{
	if (!c->n_threads)
		return 0;
	const Ckpt__ThreadCore *m = c->threads[0];
	size_t n = m->n_seccomp_filters;
	for (size_t k = 1; k < c->n_threads && n; k++) {
		const Ckpt__ThreadCore *th = c->threads[k];
		size_t same = 0;
		while (same < n && same < th->n_seccomp_filters &&
		       m->seccomp_filters[same].len == th->seccomp_filters[same].len &&
		       !memcmp(m->seccomp_filters[same].data, th->seccomp_filters[same].data,
			       m->seccomp_filters[same].len))
			same++;
		n = same;
	}
	return n;
}

int restore_seccomp(struct rst_task *t, struct inject *in, const Ckpt__ThreadCore *th,
		    size_t from, size_t to)
{
	uint64_t scratch = TRAMP_SCRATCH(t->tramp);
	uint64_t prog_at = scratch + 64;

	if (to > th->n_seccomp_filters)
		to = th->n_seccomp_filters;
	for (size_t i = from; i < to; i++) {
		const ProtobufCBinaryData *f = &th->seccomp_filters[i];
		if (!f->len || f->len % sizeof(struct sock_filter) ||
		    f->len > TRAMP_SCRATCH_SIZE - 64) {
			pr_err("restore", "thread %u: seccomp filter %zu has a bad size (%zu bytes)",
			       th->tid, i, f->len);
			return -EBADMSG;
		}
		struct sock_fprog fp = { .len = f->len / sizeof(struct sock_filter),
					 .filter = (struct sock_filter *)(uintptr_t)prog_at };
		int ret = task_mem_write(t->hpid, prog_at, f->data, f->len);
		if (!ret)
			ret = task_mem_write(t->hpid, scratch, &fp, sizeof(fp));
		if (ret)
			return ret;
		long r = inject_do(in, "seccomp(SECCOMP_SET_MODE_FILTER)", SYS_seccomp,
				   SECCOMP_SET_MODE_FILTER, 0, scratch, 0, 0, 0);
		if (r < 0)
			return r;
	}
	return 0;
}
