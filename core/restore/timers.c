/* SPDX-License-Identifier: GPL-2.0-only */
/* POSIX timers, created by the task with their saved ids
 * (PR_TIMER_CREATE_RESTORE_IDS) and armed with the time they had left. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

#include "inject.h"
#include "log.h"
#include "ptrace.h"
#include "restore.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#endif

static int create_one(struct rst_task *t, struct inject *in, const Ckpt__PosixTimer *pt)
{
	uint64_t scratch = TRAMP_SCRATCH(t->tramp);
	struct {
		struct sigevent sev;
		timer_t id;
		struct itimerspec its;
	} arg;
	memset(&arg, 0, sizeof(arg));
	arg.sev.sigev_notify = pt->notify;
	arg.sev.sigev_signo = pt->signo;
	arg.sev.sigev_value.sival_ptr = (void *)(uintptr_t)pt->sigval;
	/* SIGEV_THREAD_ID's target sits where glibc keeps _sigev_un._tid */
	if (pt->notify & SIGEV_THREAD_ID)
		memcpy((char *)&arg.sev + offsetof(struct sigevent, sigev_notify) + sizeof(int),
		       &pt->notify_tid, sizeof(int));
	arg.id = (timer_t)(intptr_t)pt->id;
	arg.its.it_interval.tv_sec = pt->interval_ns / 1000000000ULL;
	arg.its.it_interval.tv_nsec = pt->interval_ns % 1000000000ULL;
	arg.its.it_value.tv_sec = pt->value_ns / 1000000000ULL;
	arg.its.it_value.tv_nsec = pt->value_ns % 1000000000ULL;
	int ret = task_mem_write(t->hpid, scratch, &arg, sizeof(arg));
	if (ret)
		return ret;
	uint64_t a_sev = scratch, a_id = scratch + offsetof(typeof(arg), id),
		 a_its = scratch + offsetof(typeof(arg), its);
	long r = inject_do(in, "timer_create", SYS_timer_create, pt->clock, a_sev, a_id, 0, 0, 0);
	if (r < 0)
		return r;
	int got;
	ret = task_mem_read(t->hpid, a_id, &got, sizeof(got));
	if (ret)
		return ret;
	if (got != pt->id) {
		pr_err("restore", "PID %d: POSIX timer %d came back as %d", t->pid, pt->id, got);
		return -EEXIST;
	}
	if (!pt->value_ns) {
		if (!pt->interval_ns)
			return 0; /* disarmed */
		/* fired, re-armed only when its pending signal is delivered:
		 * that signal is restored with the others; arm the next period */
		arg.its.it_value = arg.its.it_interval;
		ret = task_mem_write(t->hpid, a_its, &arg.its, sizeof(arg.its));
		if (ret)
			return ret;
	}
	r = inject_do(in, "timer_settime", SYS_timer_settime, pt->id, 0, a_its, 0, 0, 0);
	return r < 0 ? r : 0;
}

int restore_posix_timers(struct rst_task *t, struct inject *in)
{
	const Ckpt__TaskCore *c = t->core;
	long r;
	int ret = 0;

	if (!c->n_posix_timers)
		return 0;
	r = inject_do(in, "prctl(PR_TIMER_CREATE_RESTORE_IDS)", SYS_prctl,
		      PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0, 0);
	if (r < 0) {
		pr_err("restore", "PID %d has POSIX timers, and this kernel cannot create them with chosen ids (Linux 6.15+ needed)",
		       t->pid);
		return r;
	}
	for (size_t i = 0; i < c->n_posix_timers && !ret; i++)
		ret = create_one(t, in, c->posix_timers[i]);
	r = inject_do(in, "prctl(PR_TIMER_CREATE_RESTORE_IDS)", SYS_prctl,
		      PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0, 0);
	return ret ? ret : (r < 0 ? r : 0);
}
