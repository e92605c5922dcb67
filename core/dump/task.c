/* SPDX-License-Identifier: GPL-2.0-only */
/* Per-task state read from outside (ptrace, /proc) or, for what only the
 * task can answer, by injected syscalls into a scratch page. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dump.h"
#include "kernel.h"
#include "log.h"
#include "proc.h"
#include "ptrace.h"

#define SET(m, f, v)              \
	do {                      \
		(m)->has_##f = 1; \
		(m)->f = (v);     \
	} while (0)

/* the kernel's struct sigaction on x86_64 */
struct ksigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

static Ckpt__X86Regs *regs_to_msg(const struct user_regs_struct *r)
{
	Ckpt__X86Regs *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	ckpt__x86_regs__init(m);
#define R(f, k) SET(m, f, r->k)
	R(r15, r15); R(r14, r14); R(r13, r13); R(r12, r12); R(bp, rbp); R(bx, rbx);
	R(r11, r11); R(r10, r10); R(r9, r9); R(r8, r8); R(ax, rax); R(cx, rcx);
	R(dx, rdx); R(si, rsi); R(di, rdi); R(orig_ax, orig_rax); R(ip, rip); R(cs, cs);
	R(flags, eflags); R(sp, rsp); R(ss, ss); R(fs_base, fs_base); R(gs_base, gs_base);
	R(ds, ds); R(es, es); R(fs, fs); R(gs, gs);
#undef R
	return m;
}

static int read_pending(pid_t tid, bool shared, size_t *n, ProtobufCBinaryData **out)
{
	siginfo_t si[32];
	size_t cnt = 0;
	ProtobufCBinaryData *arr = NULL;

	for (;;) {
		struct {
			uint64_t off;
			uint32_t flags;
			int32_t nr;
		} arg = { cnt, shared ? 1 /* PTRACE_PEEKSIGINFO_SHARED */ : 0, 32 };
		long r = ptrace(PTRACE_PEEKSIGINFO, tid, &arg, si);
		if (r < 0) {
			free(arr);
			return -errno;
		}
		if (r == 0)
			break;
		ProtobufCBinaryData *na = realloc(arr, (cnt + r) * sizeof(*na));
		if (!na) {
			free(arr);
			return -ENOMEM;
		}
		arr = na;
		for (long i = 0; i < r; i++) {
			void *copy = malloc(sizeof(siginfo_t));
			if (!copy) {
				free(arr);
				return -ENOMEM;
			}
			memcpy(copy, &si[i], sizeof(siginfo_t));
			arr[cnt + i].data = copy;
			arr[cnt + i].len = sizeof(siginfo_t);
		}
		cnt += r;
	}
	*n = cnt;
	*out = arr;
	return 0;
}

/* The thread's seccomp filter chain, oldest first, as BPF programs. */
static int dump_seccomp(pid_t tid, int mode, Ckpt__ThreadCore *t)
{
	SET(t, seccomp_mode, mode);
	if (mode == 0)
		return 0;
	if (mode != 2) {
		pr_err("dump", "thread %d is in strict seccomp mode; it cannot be restored", tid);
		return -ENOTSUP;
	}
	size_t n = 0;
	for (;; n++) {
		long cnt = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, n, NULL);
		if (cnt < 0 && errno == ENOENT)
			break;
		if (cnt < 0) {
			pr_err("dump", "thread %d: cannot read seccomp filter %zu: %s", tid, n,
			       strerror(errno));
			return -errno;
		}
	}
	t->seccomp_filters = calloc(n + 1, sizeof(*t->seccomp_filters));
	if (!t->seccomp_filters)
		return -ENOMEM;
	/* index 0 is the oldest (the kernel counts back from the newest by
	 * total - index), which is the order to install them in */
	for (size_t i = 0; i < n; i++) {
		size_t idx = i;
		long cnt = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, idx, NULL);
		if (cnt <= 0)
			return cnt < 0 ? -errno : -EIO;
		void *prog = calloc(cnt, 8);
		if (!prog)
			return -ENOMEM;
		if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, idx, prog) != cnt) {
			free(prog);
			return -EIO;
		}
		t->seccomp_filters[i].data = prog;
		t->seccomp_filters[i].len = cnt * 8;
		t->n_seccomp_filters++;
	}
	return 0;
}

static int dump_thread(pid_t tid, pid_t vtid, struct inject *in, uint64_t scratch,
		       Ckpt__ThreadCore **out)
{
	Ckpt__ThreadCore *t = calloc(1, sizeof(*t));
	void *xs = NULL;
	size_t xs_len = 0;
	int ret;

	if (!t)
		return -ENOMEM;
	ckpt__thread_core__init(t);
	SET(t, tid, vtid);
	/* the injection session saved the real registers and mask */
	t->regs = regs_to_msg(&in->saved);
	if (!t->regs) {
		ret = -ENOMEM;
		goto err;
	}
	SET(t, sigmask, in->saved_sigmask);
	ret = ptrace_get_xstate(tid, &xs, &xs_len);
	if (ret) {
		pr_err("dump", "task %d: cannot read xstate: %s", tid, strerror(-ret));
		goto err;
	}
	t->has_xstate = 1;
	t->xstate.data = xs;
	t->xstate.len = xs_len;

	struct rseq_conf rc;
	memset(&rc, 0, sizeof(rc));
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION_, tid, sizeof(rc), &rc) >= 0 && rc.rseq_abi_pointer) {
		t->rseq = calloc(1, sizeof(*t->rseq));
		if (!t->rseq) {
			ret = -ENOMEM;
			goto err;
		}
		ckpt__rseq__init(t->rseq);
		SET(t->rseq, ptr, rc.rseq_abi_pointer);
		SET(t->rseq, len, rc.rseq_abi_size);
		SET(t->rseq, sig, rc.signature);
	}

	uint64_t head = 0;
	size_t hlen = 0;
	if (syscall(SYS_get_robust_list, tid, &head, &hlen) == 0) {
		SET(t, robust_list, head);
		SET(t, robust_list_len, hlen);
	}

	/* what only the task can tell: asked through injected syscalls */
	long r = inject_do(in, "prctl(PR_GET_TID_ADDRESS)", SYS_prctl, PR_GET_TID_ADDRESS, scratch, 0,
			   0, 0, 0);
	if (r < 0) {
		ret = r;
		goto err;
	}
	uint64_t ctid;
	ret = task_mem_read(tid, scratch, &ctid, sizeof(ctid));
	if (ret)
		goto err;
	SET(t, clear_child_tid, ctid);

	r = inject_do(in, "sigaltstack", SYS_sigaltstack, 0, scratch, 0, 0, 0, 0);
	if (r < 0) {
		ret = r;
		goto err;
	}
	stack_t ss;
	ret = task_mem_read(tid, scratch, &ss, sizeof(ss));
	if (ret)
		goto err;
	SET(t, altstack_sp, (uint64_t)(uintptr_t)ss.ss_sp);
	SET(t, altstack_size, ss.ss_size);
	SET(t, altstack_flags, ss.ss_flags);

	/* credentials: per thread, as the kernel keeps them */
	struct proc_status ps;
	ret = proc_read_status(tid, &ps);
	if (ret)
		goto err;
	t->creds = calloc(1, sizeof(*t->creds));
	if (!t->creds) {
		ret = -ENOMEM;
		goto err;
	}
	ckpt__creds__init(t->creds);
	t->creds->uid = calloc(4, sizeof(uint32_t));
	t->creds->gid = calloc(4, sizeof(uint32_t));
	t->creds->groups = calloc(ps.ngroups + 1, sizeof(uint32_t));
	if (!t->creds->uid || !t->creds->gid || !t->creds->groups) {
		ret = -ENOMEM;
		goto err;
	}
	t->creds->n_uid = t->creds->n_gid = 4;
	for (int i = 0; i < 4; i++) {
		t->creds->uid[i] = ps.uid[i];
		t->creds->gid[i] = ps.gid[i];
	}
	t->creds->n_groups = ps.ngroups;
	for (int i = 0; i < ps.ngroups; i++)
		t->creds->groups[i] = ps.groups[i];
	SET(t->creds, cap_inh, ps.cap_inh);
	SET(t->creds, cap_prm, ps.cap_prm);
	SET(t->creds, cap_eff, ps.cap_eff);
	SET(t->creds, cap_bnd, ps.cap_bnd);
	SET(t->creds, cap_amb, ps.cap_amb);
	SET(t->creds, no_new_privs, ps.no_new_privs);
	if (dump_in_own_userns(tid)) {
		ret = dump_creds_in_userns(tid, in, scratch, t->creds);
		if (ret)
			goto err;
	}
	ret = dump_seccomp(tid, ps.seccomp, t);
	if (ret)
		goto err;
	r = inject_do(in, "prctl(PR_GET_SECUREBITS)", SYS_prctl, PR_GET_SECUREBITS, 0, 0, 0, 0, 0);
	if (r < 0) {
		ret = r;
		goto err;
	}
	SET(t->creds, securebits, r);

	r = inject_do(in, "prctl(PR_GET_PDEATHSIG)", SYS_prctl, PR_GET_PDEATHSIG, scratch, 0, 0, 0, 0);
	if (r < 0) {
		ret = r;
		goto err;
	}
	int pdeath;
	ret = task_mem_read(tid, scratch, &pdeath, sizeof(pdeath));
	if (ret)
		goto err;
	SET(t, pdeath_sig, pdeath);
	r = inject_do(in, "prctl(PR_GET_TIMERSLACK)", SYS_prctl, PR_GET_TIMERSLACK, 0, 0, 0, 0, 0);
	if (r < 0) {
		ret = r;
		goto err;
	}
	SET(t, timerslack_ns, r);

	char path[64], comm[64] = "";
	char *buf;
	snprintf(path, sizeof(path), "/proc/%d/comm", tid);
	if (!proc_read_file(path, &buf, NULL)) {
		snprintf(comm, sizeof(comm), "%s", buf);
		comm[strcspn(comm, "\n")] = 0;
		free(buf);
	}
	t->comm = strdup(comm);

	ret = read_pending(tid, false, &t->n_pending, &t->pending);
	if (ret) {
		pr_err("dump", "task %d: cannot read pending signals: %s", tid, strerror(-ret));
		goto err;
	}
	*out = t;
	return 0;
err:
	ckpt__thread_core__free_unpacked(t, NULL);
	return ret;
}

/* The restore finds a chroot again by its path.  In ckpt's own mount
 * namespace that path must lead to the very directory: not when another
 * mount was put over it (or over a directory above it) since. */
static int root_reachable(pid_t pid, const char *root)
{
	struct stat a, b, na, nb;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", pid);
	if (stat(path, &na) || stat("/proc/self/ns/mnt", &nb) || na.st_ino != nb.st_ino)
		return 0; /* a namespace of the tree's own: its plugin rebuilds it */
	snprintf(path, sizeof(path), "/proc/%d/root", pid);
	if (stat(path, &a))
		return -errno;
	if (stat(root, &b) || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		pr_err("dump", "PID %d: its root directory %s (chroot) is hidden under another mount (or gone); the path would lead elsewhere at restore",
		       pid, root);
		return -ENOTSUP;
	}
	return 0;
}

int dump_task_core(struct dtask *dt, Ckpt__TaskCore **out)
{
	pid_t pid = dt->pid;
	struct inject *in = &dt->in[0];
	uint64_t scratch = dt->scratch;
	Ckpt__TaskCore *c = calloc(1, sizeof(*c));
	struct proc_status st;
	struct proc_stat pst;
	char path[PATH_MAX + 64], *buf;
	int ret;

	if (!c)
		return -ENOMEM;
	ckpt__task_core__init(c);
	SET(c, pid, dt->vpid);

	ret = proc_read_status(pid, &st);
	if (ret)
		goto err;
	SET(c, umask, st.umask);
	ret = proc_read_stat(pid, &pst);
	if (ret)
		goto err;
	SET(c, exit_signal, pst.exit_signal);

	snprintf(path, sizeof(path), "/proc/%d/personality", pid);
	if (!proc_read_file(path, &buf, NULL)) {
		SET(c, personality, strtoul(buf, NULL, 16));
		free(buf);
	}
	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if (!proc_read_file(path, &buf, NULL)) {
		buf[strcspn(buf, "\n")] = 0;
		c->comm = buf;
	}
	char cwd[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
	ret = proc_readlink(path, cwd, sizeof(cwd));
	if (ret)
		goto err;
	if (strstr(cwd, " (deleted)")) {
		pr_err("dump", "PID %d: its working directory %s was removed; cannot restore it", pid, cwd);
		ret = -ENOENT;
		goto err;
	}
	c->cwd = strdup(cwd);
	/* a chroot: the path reads from the root of the task's mount
	 * namespace (or ckpt's, when it is the same), as cwd does */
	snprintf(path, sizeof(path), "/proc/%d/root", pid);
	ret = proc_readlink(path, cwd, sizeof(cwd));
	if (ret)
		goto err;
	if (strstr(cwd, " (deleted)")) {
		pr_err("dump", "PID %d: its root directory %s (chroot) was removed; cannot restore it",
		       pid, cwd);
		ret = -ENOENT;
		goto err;
	}
	if (strcmp(cwd, "/")) {
		ret = root_reachable(pid, cwd);
		if (ret)
			goto err;
		c->root = strdup(cwd);
	}

	/* sigactions: every signal but SIGKILL/SIGSTOP */
	c->sigactions = calloc(64, sizeof(*c->sigactions));
	if (!c->sigactions) {
		ret = -ENOMEM;
		goto err;
	}
	for (int sig = 1; sig <= 64; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		long r = inject_do(in, "rt_sigaction", SYS_rt_sigaction, sig, 0, scratch, 8, 0, 0);
		if (r < 0) {
			ret = r;
			goto err;
		}
		struct ksigaction ka;
		ret = task_mem_read(pid, scratch, &ka, sizeof(ka));
		if (ret)
			goto err;
		if (ka.handler == (uint64_t)(uintptr_t)SIG_DFL && !ka.flags && !ka.mask)
			continue;
		Ckpt__SigAction *a = calloc(1, sizeof(*a));
		if (!a) {
			ret = -ENOMEM;
			goto err;
		}
		ckpt__sig_action__init(a);
		SET(a, sig, sig);
		SET(a, handler, ka.handler);
		SET(a, flags, ka.flags);
		SET(a, restorer, ka.restorer);
		SET(a, mask, ka.mask);
		c->sigactions[c->n_sigactions++] = a;
	}

	c->itimers = calloc(3, sizeof(*c->itimers));
	if (!c->itimers) {
		ret = -ENOMEM;
		goto err;
	}
	for (int which = 0; which < 3; which++) {
		long r = inject_do(in, "getitimer", SYS_getitimer, which, scratch, 0, 0, 0, 0);
		if (r < 0) {
			ret = r;
			goto err;
		}
		struct itimerval it;
		ret = task_mem_read(pid, scratch, &it, sizeof(it));
		if (ret)
			goto err;
		if (!it.it_value.tv_sec && !it.it_value.tv_usec && !it.it_interval.tv_sec &&
		    !it.it_interval.tv_usec)
			continue;
		Ckpt__ITimer *t = calloc(1, sizeof(*t));
		if (!t) {
			ret = -ENOMEM;
			goto err;
		}
		ckpt__itimer__init(t);
		SET(t, which, which);
		SET(t, interval_us, it.it_interval.tv_sec * 1000000ULL + it.it_interval.tv_usec);
		SET(t, value_us, it.it_value.tv_sec * 1000000ULL + it.it_value.tv_usec);
		c->itimers[c->n_itimers++] = t;
	}

	long r = inject_do(in, "prctl(PR_GET_CHILD_SUBREAPER)", SYS_prctl, PR_GET_CHILD_SUBREAPER,
			   scratch, 0, 0, 0, 0);
	if (r < 0) {
		ret = r;
		goto err;
	}
	int subreaper;
	ret = task_mem_read(pid, scratch, &subreaper, sizeof(subreaper));
	if (ret)
		goto err;
	SET(c, child_subreaper, subreaper != 0);
	r = inject_do(in, "prctl(PR_GET_DUMPABLE)", SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0, 0);
	if (r < 0) {
		ret = r;
		goto err;
	}
	SET(c, dumpable, r);
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", pid);
	if (!proc_read_file(path, &buf, NULL)) {
		SET(c, oom_score_adj, atoi(buf));
		free(buf);
	}

	long brk = inject_do(in, "brk", SYS_brk, 0, 0, 0, 0, 0, 0);
	if (brk < 0) {
		ret = brk;
		goto err;
	}
	SET(c, brk, brk);

	struct proc_rlimit lim[16];
	ret = proc_read_limits(pid, lim);
	if (ret) {
		pr_err("dump", "PID %d: cannot parse /proc/%d/limits", pid, pid);
		goto err;
	}
	c->rlimits = calloc(16, sizeof(*c->rlimits));
	if (!c->rlimits) {
		ret = -ENOMEM;
		goto err;
	}
	for (int i = 0; i < 16; i++) {
		Ckpt__RLimit *l = calloc(1, sizeof(*l));
		if (!l) {
			ret = -ENOMEM;
			goto err;
		}
		ckpt__rlimit__init(l);
		SET(l, resource, i);
		SET(l, cur, lim[i].cur);
		SET(l, max, lim[i].max);
		c->rlimits[c->n_rlimits++] = l;
	}

	ret = read_pending(pid, true, &c->n_shared_pending, &c->shared_pending);
	if (ret) {
		pr_err("dump", "PID %d: cannot read pending signals: %s", pid, strerror(-ret));
		goto err;
	}

	c->threads = calloc(dt->ntids, sizeof(*c->threads));
	if (!c->threads) {
		ret = -ENOMEM;
		goto err;
	}
	for (size_t i = 0; i < dt->ntids; i++) {
		ret = dump_thread(dt->tids[i], dt->vtids[i], &dt->in[i], scratch, &c->threads[i]);
		if (ret)
			goto err;
		c->n_threads++;
	}
	*out = c;
	return 0;
err:
	free_task_core(c);
	return ret;
}

void free_task_core(Ckpt__TaskCore *c)
{
	/* every part was malloc'd separately, as the unpacker does */
	if (c)
		ckpt__task_core__free_unpacked(c, NULL);
}
