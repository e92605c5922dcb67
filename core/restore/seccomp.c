/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A thread's seccomp filters, installed by the thread itself, oldest first.
 * They are installed while the thread is still privileged (a filter without
 * no_new_privs needs CAP_SYS_ADMIN) and the rest of the restore is not
 * subject to them: the tracer set PTRACE_O_SUSPEND_SECCOMP, which ends with
 * the detach.
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

int restore_seccomp(struct rst_task *t, struct inject *in, const Ckpt__ThreadCore *th)
{
	uint64_t scratch = TRAMP_SCRATCH(t->tramp);
	uint64_t prog_at = scratch + 64;

	for (size_t i = 0; i < th->n_seccomp_filters; i++) {
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
