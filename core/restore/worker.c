/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The worker: the new task, created with the saved PID, applies what a task
 * must do for itself, then stops for the controller to switch its memory.
 *
 * It runs in a raw clone3 child of the controller, so glibc's cached thread
 * state is the parent's: only plain syscalls here, no raise()/pthread_*.
 * Every signal stays blocked.  After the fd plan is applied, fds 0-2 are the
 * task's, so errors go back to the controller through the ready pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <linux/sched.h>
#include <unistd.h>

#include "kernel.h"
#include "log.h"
#include "plugin.h"
#include "proc.h"
#include "restore.h"
#include "worker_msg.h"

static int ready_fd = -1;

static void __attribute__((noreturn, format(printf, 2, 3))) worker_fail(int err, const char *fmt, ...)
{
	struct worker_msg m = { .err = err ? err : -EIO };
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m.text, sizeof(m.text), fmt, ap);
	va_end(ap);
	if (ready_fd >= 0 && write(ready_fd, &m, sizeof(m)) < 0)
		_exit(2);
	_exit(1);
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Put every planned fd at its number and close all others. */
static void apply_fd_plan(struct rst_task *t, int ready_src)
{
	int hi = t->ready_fd;
	size_t n = t->nmoves;
	int *tmp = malloc((n + 1) * sizeof(int)), *dsts = malloc((n + 1) * sizeof(int));

	if (!tmp || !dsts)
		worker_fail(-ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (t->moves[i].src > hi)
			hi = t->moves[i].src;
		if (t->moves[i].dst > hi)
			hi = t->moves[i].dst;
	}
	if (ready_src > hi)
		hi = ready_src;
	hi++;
	/* first lift every source above all numbers in play, then place them */
	for (size_t i = 0; i < n; i++) {
		tmp[i] = fcntl(t->moves[i].src, F_DUPFD_CLOEXEC, hi);
		if (tmp[i] < 0)
			worker_fail(-errno, "cannot duplicate fd %d: %s", t->moves[i].src, strerror(errno));
	}
	int rtmp = fcntl(ready_src, F_DUPFD_CLOEXEC, hi);
	if (rtmp < 0)
		worker_fail(-errno, "cannot duplicate the ready pipe: %s", strerror(errno));
	ready_fd = rtmp;
	for (size_t i = 0; i < n; i++) {
		if (dup2(tmp[i], t->moves[i].dst) < 0)
			worker_fail(-errno, "cannot place fd %d: %s", t->moves[i].dst, strerror(errno));
		if (t->moves[i].cloexec)
			fcntl(t->moves[i].dst, F_SETFD, FD_CLOEXEC);
		dsts[i] = t->moves[i].dst;
	}
	if (dup2(rtmp, t->ready_fd) < 0)
		worker_fail(-errno, "cannot place the ready pipe: %s", strerror(errno));
	ready_fd = t->ready_fd;
	dsts[n] = t->ready_fd;
	qsort(dsts, n + 1, sizeof(int), cmp_int);
	unsigned int from = 0;
	for (size_t i = 0; i <= n; i++) {
		if ((unsigned int)dsts[i] > from)
			syscall(SYS_close_range, from, dsts[i] - 1, 0);
		from = dsts[i] + 1;
	}
	syscall(SYS_close_range, from, ~0U, 0);
	free(tmp);
	free(dsts);
}

struct ksigaction {
	uint64_t handler, flags, restorer, mask;
};

static void restore_sigactions(const Ckpt__TaskCore *c)
{
	/* every signal the image does not list was at its default: the worker
	 * (ckpt, maybe with a sanitizer) may have installed handlers of its own */
	for (int sig = 1; sig <= 64; sig++) {
		struct ksigaction ka = { (uint64_t)(uintptr_t)SIG_DFL, 0, 0, 0 };
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		for (size_t i = 0; i < c->n_sigactions; i++) {
			const Ckpt__SigAction *a = c->sigactions[i];
			if (a->sig == (uint32_t)sig)
				ka = (struct ksigaction){ a->handler, a->flags, a->restorer, a->mask };
		}
		/* the raw syscall keeps the task's own sa_restorer */
		if (syscall(SYS_rt_sigaction, sig, &ka, NULL, 8))
			worker_fail(-errno, "cannot restore the handler of signal %d: %s", sig,
				    strerror(errno));
	}
}

static void restore_rlimits(const Ckpt__TaskCore *c)
{
	static const char *const names[] = { "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS",
					     "NPROC", "NOFILE", "MEMLOCK", "AS", "LOCKS",
					     "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME" };
	for (size_t i = 0; i < c->n_rlimits; i++) {
		const Ckpt__RLimit *l = c->rlimits[i];
		struct rlimit r = { l->cur, l->max };
		if (l->resource >= 16)
			continue;
		if (setrlimit(l->resource, &r))
			worker_fail(-errno, "cannot set RLIMIT_%s to %llu/%llu: %s (raising a hard limit needs CAP_SYS_RESOURCE)",
				    names[l->resource], (unsigned long long)l->cur,
				    (unsigned long long)l->max, strerror(errno));
	}
}

static void queue_pending(const Ckpt__TaskCore *c, pid_t pid)
{
	/* a task may queue any siginfo to itself; signals stay blocked */
	for (size_t i = 0; i < c->n_shared_pending; i++) {
		siginfo_t si;
		if (c->shared_pending[i].len != sizeof(si))
			continue;
		memcpy(&si, c->shared_pending[i].data, sizeof(si));
		if (syscall(SYS_rt_sigqueueinfo, pid, si.si_signo, &si))
			worker_fail(-errno, "cannot queue pending signal %d: %s", si.si_signo, strerror(errno));
	}
	const Ckpt__ThreadCore *th = c->threads[0];
	for (size_t i = 0; i < th->n_pending; i++) {
		siginfo_t si;
		if (th->pending[i].len != sizeof(si))
			continue;
		memcpy(&si, th->pending[i].data, sizeof(si));
		if (syscall(SYS_rt_tgsigqueueinfo, pid, pid, si.si_signo, &si))
			worker_fail(-errno, "cannot queue pending signal %d: %s", si.si_signo, strerror(errno));
	}
}

static void unregister_own_rseq(void)
{
	if (!__rseq_size)
		return;
	void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
	/* glibc registers 32 bytes; newer ones report a smaller feature size */
	if (syscall(SYS_rseq, area, 32, RSEQ_FLAG_UNREGISTER_, RSEQ_SIG) &&
	    syscall(SYS_rseq, area, __rseq_size, RSEQ_FLAG_UNREGISTER_, RSEQ_SIG) && errno != EINVAL)
		worker_fail(-errno, "cannot unregister rseq: %s", strerror(errno));
}

static pid_t clone_child(pid_t pid, int exit_signal)
{
	pid_t tid = pid;
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = exit_signal;
	ca.set_tid = (uint64_t)(uintptr_t)&tid;
	ca.set_tid_size = 1;
	return syscall(SYS_clone3, &ca, sizeof(ca));
}

static int find_task(const struct rst_tree *tr, pid_t pid)
{
	for (size_t i = 0; i < tr->n; i++)
		if (tr->t[i].pid == pid)
			return i;
	return -1;
}

/* A zombie: set up its session and group, then die the way it died. */
static void __attribute__((noreturn)) become_zombie(const struct rst_task *t)
{
	int st = t->pe->exit_code;
	if (WIFSIGNALED(st)) {
		int sig = WTERMSIG(st);
		sigset_t one;
		signal(sig, SIG_DFL);
		sigemptyset(&one);
		sigaddset(&one, sig);
		sigprocmask(SIG_UNBLOCK, &one, NULL);
		syscall(SYS_kill, syscall(SYS_getpid), sig);
	}
	_exit(WEXITSTATUS(st));
}

/* Create the children of task idx, each a worker for its own task. */
static void create_children(struct rst_tree *tr, size_t idx)
{
	struct rst_task *t = &tr->t[idx];
	for (size_t i = 0; i < tr->n; i++) {
		struct rst_task *c = &tr->t[i];
		if (c->parent != (int)idx)
			continue;
		int exit_signal = c->core && c->core->has_exit_signal ? (int)c->core->exit_signal : SIGCHLD;
		pid_t k = clone_child(c->pid, exit_signal);
		if (k == 0)
			worker_main(tr, i);
		if (k < 0)
			worker_fail(-errno, "cannot create child PID %d: %s%s", c->pid, strerror(errno),
				    errno == EEXIST ? " (the PID is in use)" : "");
		/* like a shell: the parent sets the group too, so no sibling
		 * waits for a leader that has not set its own yet */
		if (c->pe->pgid == (uint32_t)c->pid)
			setpgid(k, k);
		else if (c->pe->pgid != t->pe->pgid && find_task(tr, c->pe->pgid) >= 0)
			setpgid(k, c->pe->pgid);
	}
	/* zombies must be dead before we stop, and their SIGCHLD is not ours
	 * to keep: the saved pending signals are queued afterwards */
	bool zombies = false;
	for (size_t i = 0; i < tr->n; i++) {
		struct rst_task *c = &tr->t[i];
		if (c->parent != (int)idx || !c->zombie)
			continue;
		siginfo_t si;
		while (waitid(P_PID, c->pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
			;
		zombies = true;
	}
	if (zombies) {
		sigset_t chld;
		struct timespec zero = { 0, 0 };
		sigemptyset(&chld);
		sigaddset(&chld, SIGCHLD);
		while (sigtimedwait(&chld, NULL, &zero) > 0)
			;
	}
}

/* What the children inherit at fork and cannot get later (a controlling
 * terminal): the plugins set it up now, on the files where the controller
 * left them. */
static void before_children(const struct rst_task *t, const char *errbuf)
{
	for (size_t i = 0; i < t->nfds; i++) {
		const Ckpt__FdEntry *e = t->fds[i];
		int src = -1;

		for (size_t k = 0; k < t->nmoves && src < 0; k++)
			if (t->moves[k].dst == (int)e->fd)
				src = t->moves[k].src;
		if (src < 0 || !e->plugin || !e->klass)
			continue;
		int ret = plugins_restore_before_children(e->plugin, e->klass, e->obj_id, src);
		if (ret)
			worker_fail(ret, "fd %u (%s): %s", e->fd, e->klass,
				    errbuf[0] ? errbuf : strerror(-ret));
	}
}

static void join_session_and_group(const struct rst_tree *tr, const struct rst_task *t)
{
	if (t->pe->sid == (uint32_t)t->pid) {
		if (setsid() < 0)
			worker_fail(-errno, "setsid: %s", strerror(errno));
		return;
	}
	if (t->pe->pgid == (uint32_t)t->pid) {
		if (setpgid(0, 0))
			worker_fail(-errno, "setpgid: %s", strerror(errno));
	} else if (find_task(tr, t->pe->pgid) >= 0 && getpgid(0) != (pid_t)t->pe->pgid) {
		if (setpgid(0, t->pe->pgid))
			worker_fail(-errno, "cannot join process group %u: %s", t->pe->pgid,
				    strerror(errno));
	}
}

/* The root of a tree with its own user namespace, born in it: wait for the
 * controller to write the maps, then make the time namespace from inside
 * so that it is owned by the user namespace too. */
static void enter_userns(struct rst_tree *tr, const Ckpt__TaskCore *c)
{
	char go;
	close(tr->userns_go[1]);
	tr->userns_go[1] = -1;
	if (read(tr->userns_go[0], &go, 1) != 1)
		_exit(1); /* the controller failed and says why */
	close(tr->userns_go[0]);
	tr->userns_go[0] = -1;
	if (!c->own_time)
		return;
	int ret = timens_prepare(c);
	if (ret)
		worker_fail(ret, "cannot create a time namespace with the saved clock offsets: %s",
			    strerror(-ret));
	int fd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWTIME))
		worker_fail(-errno, "cannot enter the new time namespace: %s", strerror(errno));
	close(fd);
}

void worker_main(struct rst_tree *tr, size_t idx)
{
	struct rst_task *t = &tr->t[idx];
	Ckpt__TaskCore *c = t->core;

	ready_fd = t->ready_wr;
	/* die with the parent: nothing half-restored may survive the controller */
	prctl(PR_SET_PDEATHSIG, SIGKILL);

	if (idx == 0 && c->own_user)
		enter_userns(tr, c);
	if (idx == 0 && c->own_uts &&
	    ((c->hostname && sethostname(c->hostname, strlen(c->hostname))) ||
	     (c->domainname && setdomainname(c->domainname, strlen(c->domainname)))))
		worker_fail(-errno, "cannot set the host name of the new uts namespace: %s",
			    strerror(errno));
	join_session_and_group(tr, t);
	if (t->zombie)
		become_zombie(t);
	static char errbuf[400];
	log_worker_mode(errbuf, sizeof(errbuf));
	before_children(t, errbuf);
	create_children(tr, idx);

	apply_fd_plan(t, t->ready_wr);

	/* per-fd state keyed by the task's fd numbers (epoll and the like) */
	for (size_t i = 0; i < t->nfds; i++) {
		Ckpt__FdEntry *e = t->fds[i];
		int ret = plugins_restore_in_task(e->plugin, e->klass, e->obj_id, e->fd);
		if (ret)
			worker_fail(ret, "fd %u (%s): %s", e->fd, e->klass,
				    errbuf[0] ? errbuf : strerror(-ret));
	}

	if (c->cwd && chdir(c->cwd))
		worker_fail(-errno, "cannot enter working directory %s: %s", c->cwd, strerror(errno));
	umask(c->umask);
	if (c->has_personality && personality(c->personality) < 0)
		worker_fail(-errno, "personality %#x: %s", c->personality, strerror(errno));
	if (c->comm)
		prctl(PR_SET_NAME, c->comm);

	restore_sigactions(c);
	queue_pending(c, t->pid);

	/* the trampoline: a syscall instruction and scratch room */
	void *tr_map = mmap((void *)t->tramp, TRAMP_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (tr_map != (void *)t->tramp)
		worker_fail(-errno, "cannot map the trampoline at %#llx: %s",
			    (unsigned long long)t->tramp, strerror(errno));
	static const unsigned char code[] = { 0x0f, 0x05, 0xcc, 0xcc };
	memcpy(tr_map, code, sizeof(code));

	unregister_own_rseq();

	for (size_t i = 0; i < c->n_itimers; i++) {
		const Ckpt__ITimer *it = c->itimers[i];
		struct itimerval v = {
			.it_interval = { it->interval_us / 1000000, it->interval_us % 1000000 },
			.it_value = { it->value_us / 1000000, it->value_us % 1000000 },
		};
		if (!v.it_value.tv_sec && !v.it_value.tv_usec) {
			/* This kernel re-arms a periodic timer only when its
			 * signal is delivered: 0 left with an interval means it
			 * fired and its SIGALRM is still pending (restored with
			 * the other pending signals).  Arm it for the next
			 * period, or it would never fire again. */
			if (!it->interval_us)
				continue; /* disarmed */
			v.it_value = v.it_interval;
		}
		if (setitimer(it->which, &v, NULL))
			worker_fail(-errno, "setitimer %u: %s", it->which, strerror(errno));
	}

	/* report our own mappings: the controller removes them all */
	char *maps;
	size_t len;
	int ret = proc_read_file("/proc/self/maps", &maps, &len);
	if (ret)
		worker_fail(ret, "cannot read /proc/self/maps: %s", strerror(-ret));

	/* the root last: the tree's files are open, /proc read, and the
	 * working directory was entered by its full path (it may lie outside
	 * the root, as chroot leaves it) */
	if (c->root && chroot(c->root))
		worker_fail(-errno, "cannot make %s the root directory (chroot): %s", c->root,
			    strerror(errno));

	restore_rlimits(c);

	struct worker_msg ok = { .err = 0, .maps_len = len };
	if (write(ready_fd, &ok, sizeof(ok)) != sizeof(ok))
		_exit(1);
	for (size_t off = 0; off < len;) {
		ssize_t w = write(ready_fd, maps + off, len - off);
		if (w <= 0)
			_exit(1);
		off += w;
	}
	free(maps);
	close(ready_fd);
	for (;;)
		syscall(SYS_pause);
}
