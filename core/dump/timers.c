/* SPDX-License-Identifier: GPL-2.0-only */
/* POSIX timers: the list from /proc/PID/timers, the time left and the
 * overrun from the task itself (timer_gettime, timer_getoverrun). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>

#include "dump.h"
#include "log.h"
#include "proc.h"
#include "ptrace.h"

#define SET(m, f, v)              \
	do {                      \
		(m)->has_##f = 1; \
		(m)->f = (v);     \
	} while (0)

static pid_t our_tid_to_task(const struct dtask *dt, pid_t tid)
{
	for (size_t i = 0; i < dt->ntids; i++)
		if (dt->tids[i] == tid)
			return dt->vtids[i];
	return tid;
}

static int parse_notify(const char *s, int *notify)
{
	/* "signal/pid.N", "signal/tid.N", "none/pid.N", "thread/pid.N" */
	if (!strncmp(s, "signal", 6))
		*notify = SIGEV_SIGNAL;
	else if (!strncmp(s, "none", 4))
		*notify = SIGEV_NONE;
	else if (!strncmp(s, "thread", 6))
		*notify = SIGEV_THREAD;
	else
		return -EINVAL;
	if (strstr(s, "/tid."))
		*notify |= SIGEV_THREAD_ID;
	return 0;
}

int dump_posix_timers(struct dtask *dt, Ckpt__TaskCore *c)
{
	char path[64], *buf;
	struct inject *in = &dt->in[0];
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/timers", dt->pid);
	ret = proc_read_file(path, &buf, NULL);
	if (ret)
		return ret == -ENOENT ? 0 : ret;
	char *save = NULL;
	Ckpt__PosixTimer *cur = NULL;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "ID:", 3)) {
			Ckpt__PosixTimer **na = realloc(c->posix_timers,
							(c->n_posix_timers + 1) * sizeof(*na));
			cur = calloc(1, sizeof(*cur));
			if (!na || !cur) {
				free(na ? NULL : cur);
				if (na)
					c->posix_timers = na;
				ret = -ENOMEM;
				goto out;
			}
			c->posix_timers = na;
			ckpt__posix_timer__init(cur);
			c->posix_timers[c->n_posix_timers++] = cur;
			SET(cur, id, atoi(l + 3));
		} else if (cur && !strncmp(l, "signal:", 7)) {
			int signo;
			unsigned long long val;
			if (sscanf(l + 7, " %d/%llx", &signo, &val) == 2) {
				SET(cur, signo, signo);
				SET(cur, sigval, val);
			}
		} else if (cur && !strncmp(l, "notify:", 7)) {
			int notify;
			const char *s = l + 7;
			while (*s == ' ')
				s++;
			if (parse_notify(s, &notify)) {
				pr_err("dump", "PID %d: timer %d: unknown notify \"%s\"", dt->pid, cur->id, s);
				ret = -EINVAL;
				goto out;
			}
			SET(cur, notify, notify);
			const char *dot = strrchr(s, '.');
			if (dot && (notify & SIGEV_THREAD_ID))
				SET(cur, notify_tid, our_tid_to_task(dt, atoi(dot + 1)));
		} else if (cur && !strncmp(l, "ClockID:", 8)) {
			SET(cur, clock, atoi(l + 8));
		}
	}
	for (size_t i = 0; i < c->n_posix_timers; i++) {
		Ckpt__PosixTimer *t = c->posix_timers[i];
		struct itimerspec its;
		long r = inject_do(in, "timer_gettime", SYS_timer_gettime, t->id, dt->scratch, 0, 0, 0, 0);
		if (r < 0) {
			ret = r;
			goto out;
		}
		ret = task_mem_read(dt->pid, dt->scratch, &its, sizeof(its));
		if (ret)
			goto out;
		SET(t, interval_ns, its.it_interval.tv_sec * 1000000000ULL + its.it_interval.tv_nsec);
		SET(t, value_ns, its.it_value.tv_sec * 1000000000ULL + its.it_value.tv_nsec);
		r = inject_do(in, "timer_getoverrun", SYS_timer_getoverrun, t->id, 0, 0, 0, 0, 0);
		if (r < 0) {
			ret = r;
			goto out;
		}
		SET(t, overrun, r);
	}
	ret = 0;
out:
	free(buf);
	return ret;
}
