/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The memory switch: the stopped worker still runs ckpt's address space.
 * Through syscalls injected at the trampoline, remove every worker mapping,
 * move the vDSO group to the saved addresses, map the saved VMAs, fill them
 * with preadv straight from the page image (inside the task: one copy),
 * set the mm fields, then the registers.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <linux/prctl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/ptrace.h>
#include <linux/sched.h>
#include <stddef.h>

#include "inject.h"
#include "kernel.h"
#include "lazy.h"
#include "log.h"
#include "pagecodec.h"
#include "progress.h"
#include "ptrace.h"
#include "restore.h"

#define MADV_BIT_DONTDUMP 1
#define MADV_BIT_HUGEPAGE 2
#define MADV_BIT_NOHUGEPAGE 4
#define MADV_BIT_DONTFORK 8
#define MADV_BIT_WIPEONFORK 16

/* largest single preadv: below the kernel's MAX_RW_COUNT */
#define FILL_MAX (1ULL << 30)

static bool is_special_name(const char *n)
{
	return n && (!strcmp(n, "[vdso]") || !strcmp(n, "[vvar]") || !strcmp(n, "[vvar_vclock]") ||
		     !strcmp(n, "[vsyscall]"));
}

static int unmap_worker(struct rst_task *t, struct inject *in)
{
	for (size_t i = 0; i < t->worker_vmas.n; i++) {
		struct proc_vma *v = &t->worker_vmas.v[i];
		if (is_special_name(v->name))
			continue;
		if (v->start >= t->tramp && v->end <= t->tramp + TRAMP_SIZE)
			continue;
		long r = inject_do(in, "munmap", SYS_munmap, v->start, v->end - v->start, 0, 0, 0, 0);
		if (r < 0)
			return r;
	}
	return 0;
}

struct vdso_part {
	const char *name;
	Ckpt__VmaKind kind;
	uint64_t cur, tgt, size;
	bool have_cur, have_tgt;
};

static int move_vdso(struct rst_task *t, struct inject *in)
{
	struct vdso_part p[3] = {
		{ "[vvar]", CKPT__VMA_KIND__VMA_VVAR, 0, 0, 0, false, false },
		{ "[vvar_vclock]", CKPT__VMA_KIND__VMA_VVAR_VCLOCK, 0, 0, 0, false, false },
		{ "[vdso]", CKPT__VMA_KIND__VMA_VDSO, 0, 0, 0, false, false },
	};
	Ckpt__Mm *mm = t->mm;

	for (int k = 0; k < 3; k++) {
		for (size_t i = 0; i < t->worker_vmas.n; i++) {
			struct proc_vma *v = &t->worker_vmas.v[i];
			if (v->name && !strcmp(v->name, p[k].name)) {
				p[k].cur = v->start;
				p[k].size = v->end - v->start;
				p[k].have_cur = true;
			}
		}
		for (size_t i = 0; i < mm->n_vmas; i++) {
			Ckpt__Vma *v = mm->vmas[i];
			if (v->kind != p[k].kind)
				continue;
			if (p[k].have_cur && v->end - v->start != p[k].size) {
				pr_err("restore", "the %s of this kernel is %llu bytes, the dump's %llu: restoring across this kernel change is not supported yet",
				       p[k].name, (unsigned long long)p[k].size,
				       (unsigned long long)(v->end - v->start));
				return -ENOTSUP;
			}
			p[k].tgt = v->start;
			p[k].have_tgt = true;
		}
		if (p[k].have_cur != p[k].have_tgt) {
			pr_err("restore", "%s is %s here but %s in the dump; restoring across this kernel change is not supported yet",
			       p[k].name, p[k].have_cur ? "present" : "absent",
			       p[k].have_tgt ? "present" : "absent");
			return -ENOTSUP;
		}
	}

	/* if a target overlaps a current position, park the group first */
	bool overlap = false;
	for (int a = 0; a < 3; a++)
		for (int b = 0; b < 3; b++)
			if (p[a].have_tgt && p[b].have_cur && a != b &&
			    p[a].tgt < p[b].cur + p[b].size && p[b].cur < p[a].tgt + p[a].size)
				overlap = true;
	if (overlap) {
		size_t n = 0;
		struct range *r = calloc(mm->n_vmas + 4, sizeof(*r));
		if (!r)
			return -ENOMEM;
		for (size_t i = 0; i < mm->n_vmas; i++)
			r[n++] = (struct range){ mm->vmas[i]->start, mm->vmas[i]->end };
		r[n++] = (struct range){ t->tramp, t->tramp + TRAMP_SIZE };
		for (int k = 0; k < 3; k++)
			if (p[k].have_cur)
				r[n++] = (struct range){ p[k].cur, p[k].cur + p[k].size };
		uint64_t park;
		int ret = find_hole(r, n, 0x20000000, 64 << 20, &park);
		free(r);
		if (ret)
			return ret;
		for (int k = 0; k < 3; k++) {
			if (!p[k].have_cur)
				continue;
			long m = inject_do(in, "mremap vdso (park)", SYS_mremap, p[k].cur, p[k].size,
					   p[k].size, MREMAP_MAYMOVE | MREMAP_FIXED, park, 0);
			if (m < 0)
				return m;
			p[k].cur = park;
			park += p[k].size + 4096;
		}
	}
	for (int k = 0; k < 3; k++) {
		if (!p[k].have_cur || p[k].cur == p[k].tgt)
			continue;
		long m = inject_do(in, "mremap vdso", SYS_mremap, p[k].cur, p[k].size, p[k].size,
				   MREMAP_MAYMOVE | MREMAP_FIXED, p[k].tgt, 0);
		if (m < 0)
			return m;
	}
	return 0;
}

static int map_vmas(struct rst_task *t, struct inject *in)
{
	Ckpt__Mm *mm = t->mm;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		Ckpt__Vma *v = mm->vmas[i];
		uint64_t len = v->end - v->start;
		uint32_t prot = v->prot;
		long fd = -1;
		uint32_t flags = v->flags & (MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN);

		switch (v->kind) {
		case CKPT__VMA_KIND__VMA_VDSO:
		case CKPT__VMA_KIND__VMA_VVAR:
		case CKPT__VMA_KIND__VMA_VVAR_VCLOCK:
		case CKPT__VMA_KIND__VMA_VSYSCALL:
			continue;
		case CKPT__VMA_KIND__VMA_ANON:
			if (v->has_shmem_id) {
				/* the object every sharer maps */
				fd = t->vma_fd[i];
				flags = MAP_SHARED | (flags & MAP_GROWSDOWN);
			}
			break;
		case CKPT__VMA_KIND__VMA_SYSV_SHM: {
			int ret = restore_sysv_attach(t, in, v);
			if (ret)
				return ret;
			continue;
		}
		case CKPT__VMA_KIND__VMA_FILE_PRIVATE:
		case CKPT__VMA_KIND__VMA_FILE_SHARED:
			fd = t->vma_fd[i];
			flags &= ~MAP_ANONYMOUS;
			break;
		default:
			pr_err("restore", "mapping %#llx-%#llx has an unknown kind %d",
			       (unsigned long long)v->start, (unsigned long long)v->end, v->kind);
			return -EBADMSG;
		}
		if (v->has_pages)
			prot |= PROT_WRITE; /* to fill; mprotect'ed back after */
		long m = inject_do(in, "mmap", SYS_mmap, v->start, len, prot, flags | MAP_FIXED, fd,
				   fd < 0 ? 0 : v->pgoff);
		if (m < 0) {
			pr_err("restore", "PID %d: cannot map %#llx-%#llx (%s)", t->pid,
			       (unsigned long long)v->start, (unsigned long long)v->end,
			       v->path ? v->path : "anon");
			return m;
		}
	}
	return 0;
}

static int fill_pages(struct rst_task *t, struct inject *in)
{
	uint64_t scratch = TRAMP_SCRATCH(t->tramp);
	size_t max_iov = TRAMP_SCRATCH_SIZE / sizeof(struct iovec);
	struct iovec *iov = calloc(max_iov, sizeof(*iov));
	uint64_t total = 0, done = 0;
	/* a parent chain reads each level, compressed or not, in fill.c */
	int ret = t->pm_level ? 1 : pagecodec_fill(t->hpid, t->pid, t->pm, t->npm);
	bool compressed_level = false;

	if (ret != 1) { /* compressed: decompressed by ckpt, written into the task */
		free(iov);
		return ret;
	}
	for (size_t k = 0; t->chain_ix && k < t->nchain; k++)
		compressed_level |= t->chain_ix[k] != NULL;
	/* from ckpt's side unless asked for the task's own preadv (fill.c
	 * says why); a compressed level is only read from ckpt's side */
	const char *how = getenv("CKPT_PAGE_FILL");
	if (!how || strcmp(how, "task") || compressed_level) {
		free(iov);
		return fill_pages_from_ckpt(t);
	}
	ret = 0;
	if (!iov)
		return -ENOMEM;
	if (max_iov > UIO_MAXIOV)
		max_iov = UIO_MAXIOV;
	for (size_t i = 0; i < t->npm; i++)
		total += t->pm[i]->nr_pages * 4096;
	progress_stage("restore", "memory");

	size_t i = 0;
	uint64_t part = 0; /* bytes of pm[i] already queued */
	while (i < t->npm) {
		size_t n = 0;
		uint64_t off = t->pm[i]->offset + part, bytes = 0;
		/* with a parent chain, each run names the image it is read from */
		int lvl = t->pm_level ? t->pm_level[i] : 0;
		int fd = lvl ? t->chain_fd[lvl] : t->pages_fd;
		while (i < t->npm && n < max_iov && bytes < FILL_MAX) {
			Ckpt__PagemapEntry *e = t->pm[i];
			if (e->offset + part != off + bytes || (t->pm_level && t->pm_level[i] != lvl))
				break; /* not contiguous in the image */
			uint64_t len = e->nr_pages * 4096 - part;
			if (len > FILL_MAX - bytes)
				len = FILL_MAX - bytes;
			iov[n].iov_base = (void *)(uintptr_t)(e->vaddr + part);
			iov[n].iov_len = len;
			n++;
			bytes += len;
			part += len;
			if (part == e->nr_pages * 4096) {
				i++;
				part = 0;
			}
		}
		ret = task_mem_write(t->hpid, scratch, iov, n * sizeof(*iov));
		if (ret)
			break;
		long r = inject_do(in, "preadv pages", SYS_preadv, fd, scratch, n, off, 0, 0);
		if (r < 0) {
			ret = r;
			break;
		}
		if ((uint64_t)r != bytes) {
			pr_err("restore", "PID %d: page image ended early (%ld of %llu bytes at offset %llu)",
			       t->pid, r, (unsigned long long)bytes, (unsigned long long)off);
			ret = -EBADMSG;
			break;
		}
		done += bytes;
		progress_bytes(done, total);
	}
	progress_end();
	free(iov);
	return ret;
}

static int finish_vmas(struct rst_task *t, struct inject *in)
{
	Ckpt__Mm *mm = t->mm;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		Ckpt__Vma *v = mm->vmas[i];
		uint64_t len = v->end - v->start;
		if (v->kind >= CKPT__VMA_KIND__VMA_VDSO)
			continue;
		if (v->has_pages && !(v->prot & PROT_WRITE)) {
			long r = inject_do(in, "mprotect", SYS_mprotect, v->start, len, v->prot, 0, 0, 0);
			if (r < 0)
				return r;
		}
		static const struct {
			uint32_t bit;
			int advice;
		} adv[] = {
			{ MADV_BIT_DONTDUMP, MADV_DONTDUMP },   { MADV_BIT_HUGEPAGE, MADV_HUGEPAGE },
			{ MADV_BIT_NOHUGEPAGE, MADV_NOHUGEPAGE }, { MADV_BIT_DONTFORK, MADV_DONTFORK },
			{ MADV_BIT_WIPEONFORK, MADV_WIPEONFORK },
		};
		for (size_t k = 0; k < sizeof(adv) / sizeof(adv[0]); k++) {
			if (!(v->madv & adv[k].bit))
				continue;
			long r = inject_do(in, "madvise", SYS_madvise, v->start, len, adv[k].advice, 0, 0, 0);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int set_mm_fields(struct rst_task *t, struct inject *in)
{
	Ckpt__Mm *mm = t->mm;
	struct prctl_mm_map map = {
		.start_code = mm->start_code,
		.end_code = mm->end_code,
		.start_data = mm->start_data,
		.end_data = mm->end_data,
		.start_brk = mm->start_brk,
		.brk = mm->brk,
		.start_stack = mm->start_stack,
		.arg_start = mm->arg_start,
		.arg_end = mm->arg_end,
		.env_start = mm->env_start,
		.env_end = mm->env_end,
		.auxv_size = mm->n_auxv * sizeof(uint64_t),
		.exe_fd = t->exe_fd,
	};
	uint64_t scratch = TRAMP_SCRATCH(t->tramp);
	uint64_t auxv_at = scratch + 4096;
	if (map.auxv_size > TRAMP_SCRATCH_SIZE - 4096)
		return -E2BIG;
	map.auxv = (__u64 *)(uintptr_t)auxv_at;
	int ret = task_mem_write(t->hpid, scratch, &map, sizeof(map));
	if (!ret && map.auxv_size)
		ret = task_mem_write(t->hpid, auxv_at, mm->auxv, map.auxv_size);
	if (ret)
		return ret;
	long r = inject_do(in, "prctl(PR_SET_MM_MAP)", SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, scratch,
			   sizeof(map), 0, 0);
	return r < 0 ? r : 0;
}

/* Per-thread kernel state, asked for by the thread itself. */
static int set_thread_state(struct rst_task *t, struct inject *in, const Ckpt__ThreadCore *th,
			    bool main_thread)
{
	uint64_t scratch = TRAMP_SCRATCH(t->tramp);
	long r;
	int ret;

	if (th->has_altstack_sp) {
		/* also when disabled: the worker may have had one of its own */
		stack_t ss = { .ss_sp = (void *)(uintptr_t)th->altstack_sp,
			       .ss_flags = th->altstack_flags & ~SS_ONSTACK,
			       .ss_size = th->altstack_size };
		if (ss.ss_flags & SS_DISABLE)
			ss = (stack_t){ .ss_flags = SS_DISABLE };
		ret = task_mem_write(t->hpid, scratch, &ss, sizeof(ss));
		if (ret)
			return ret;
		r = inject_do(in, "sigaltstack", SYS_sigaltstack, scratch, 0, 0, 0, 0, 0);
		if (r < 0)
			return r;
	}
	if (th->rseq && th->rseq->ptr) {
		r = inject_do(in, "rseq", SYS_rseq, th->rseq->ptr, th->rseq->len, 0, th->rseq->sig, 0, 0);
		if (r < 0)
			return r;
	}
	if (th->has_robust_list) {
		r = inject_do(in, "set_robust_list", SYS_set_robust_list, th->robust_list,
			      th->robust_list_len, 0, 0, 0, 0);
		if (r < 0)
			return r;
	}
	r = inject_do(in, "set_tid_address", SYS_set_tid_address, th->clear_child_tid, 0, 0, 0, 0, 0);
	if (r < 0)
		return r;
	if (th->has_timerslack_ns) {
		r = inject_do(in, "prctl(PR_SET_TIMERSLACK)", SYS_prctl, PR_SET_TIMERSLACK,
			      th->timerslack_ns, 0, 0, 0, 0);
		if (r < 0)
			return r;
	}
	if (main_thread)
		return 0;
	/* the worker did these for the main thread itself */
	if (th->comm) {
		char comm[16];
		snprintf(comm, sizeof(comm), "%s", th->comm);
		ret = task_mem_write(t->hpid, scratch, comm, sizeof(comm));
		if (ret)
			return ret;
		r = inject_do(in, "prctl(PR_SET_NAME)", SYS_prctl, PR_SET_NAME, scratch, 0, 0, 0, 0);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < th->n_pending; i++) {
		siginfo_t si;
		if (th->pending[i].len != sizeof(si))
			continue;
		memcpy(&si, th->pending[i].data, sizeof(si));
		ret = task_mem_write(t->hpid, scratch, &si, sizeof(si));
		if (ret)
			return ret;
		r = inject_do(in, "rt_tgsigqueueinfo", SYS_rt_tgsigqueueinfo, t->pid, th->tid,
			      si.si_signo, scratch, 0, 0);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Credentials, then what a credential change resets: the parent-death
 * signal (and, process-wide, dumpable: restore_switch). */
static int thread_creds(struct rst_task *t, struct inject *in, const Ckpt__ThreadCore *th)
{
	int ret = restore_creds(t, in, th->creds);
	if (ret)
		return ret;
	long r = inject_do(in, "prctl(PR_SET_PDEATHSIG)", SYS_prctl, PR_SET_PDEATHSIG,
			   th->has_pdeath_sig ? th->pdeath_sig : 0, 0, 0, 0, 0);
	return r < 0 ? r : 0;
}

static void regs_from_msg(const Ckpt__X86Regs *m, struct user_regs_struct *r)
{
#define R(f, k) r->k = m->f
	R(r15, r15); R(r14, r14); R(r13, r13); R(r12, r12); R(bp, rbp); R(bx, rbx);
	R(r11, r11); R(r10, r10); R(r9, r9); R(r8, r8); R(ax, rax); R(cx, rcx);
	R(dx, rdx); R(si, rsi); R(di, rdi); R(orig_ax, orig_rax); R(ip, rip); R(cs, cs);
	R(flags, eflags); R(sp, rsp); R(ss, ss); R(fs_base, fs_base); R(gs_base, gs_base);
	R(ds, ds); R(es, es); R(fs, fs); R(gs, gs);
#undef R
}

/* A syscall interrupted by the dump: do what the kernel's restart logic
 * would have done, since the restart block of the dumped task is gone. */
static void fix_interrupted_syscall(struct user_regs_struct *r)
{
	long ax = (long)r->rax;
	if ((long)r->orig_rax < 0)
		return;
	switch (-ax) {
	case KERN_ERESTARTSYS:
	case KERN_ERESTARTNOINTR:
	case KERN_ERESTARTNOHAND:
		r->rip -= 2;
		r->rax = r->orig_rax;
		break;
	case KERN_ERESTART_RESTARTBLOCK:
		/* sleeps are restarted from their arguments; others see EINTR */
		if (r->orig_rax == SYS_nanosleep || r->orig_rax == SYS_clock_nanosleep) {
			r->rip -= 2;
			r->rax = r->orig_rax;
		} else {
			r->rax = (uint64_t)-EINTR;
		}
		break;
	}
	r->orig_rax = (uint64_t)-1;
}

/* Registers, FPU state and signal mask: the very last step of a thread. */
static int set_thread_regs(pid_t htid, const Ckpt__ThreadCore *th)
{
	int ret = ptrace_set_sigmask(htid, th->sigmask);
	if (ret)
		return ret;
	if (th->has_xstate) {
		ret = ptrace_set_xstate(htid, th->xstate.data, th->xstate.len);
		if (ret) {
			pr_err("restore", "thread %u: cannot set its FPU/AVX state: %s", th->tid,
			       strerror(-ret));
			return ret;
		}
	}
	struct user_regs_struct regs;
	memset(&regs, 0, sizeof(regs));
	regs_from_msg(th->regs, &regs);
	fix_interrupted_syscall(&regs);
	ret = ptrace_set_regs(htid, &regs);
	if (ret)
		pr_err("restore", "thread %u: cannot set its registers: %s", th->tid, strerror(-ret));
	return ret;
}

/* Our tid for the new thread the task knows as vtid. */
static pid_t host_tid(struct rst_task *t, pid_t vtid)
{
	if (t->hpid == t->pid)
		return vtid;
	pid_t *tids, found = -1;
	size_t n;
	if (proc_list_threads(t->hpid, &tids, &n))
		return -1;
	for (size_t i = 0; i < n && found < 0; i++) {
		struct proc_status st;
		if (!proc_read_status(tids[i], &st) && st.nspid_last == vtid)
			found = tids[i];
	}
	free(tids);
	return found;
}

/* Create thread th with its tid by clone3 in the task; it starts stopped
 * (PTRACE_O_TRACECLONE), then gets its own state. */
static int create_thread(struct rst_task *t, struct inject *in, const Ckpt__ThreadCore *th)
{
	uint64_t scratch = TRAMP_SCRATCH(t->tramp);
	struct {
		struct clone_args ca;
		pid_t tid;
	} arg;
	memset(&arg, 0, sizeof(arg));
	arg.ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
		       CLONE_SYSVSEM;
	arg.tid = th->tid;
	arg.ca.set_tid = scratch + offsetof(typeof(arg), tid);
	arg.ca.set_tid_size = 1;
	int ret = task_mem_write(t->hpid, scratch, &arg, sizeof(arg));
	if (ret)
		return ret;
	long r = inject_do(in, "clone3 thread", SYS_clone3, scratch, sizeof(arg.ca), 0, 0, 0, 0);
	if (r < 0) {
		pr_err("restore", "PID %d: cannot create thread %u: %s", t->pid, th->tid,
		       strerror((int)-r));
		return r;
	}
	pid_t htid = host_tid(t, th->tid);
	if (htid < 0)
		return -ESRCH;
	t->htids[t->nhtids++] = htid;
	int sig, event;
	ret = ptrace_wait_stop(htid, &sig, &event);
	if (ret)
		return ret;
	struct inject tin;
	ret = inject_begin(&tin, htid, t->tramp);
	if (ret)
		return ret;
	tin.restore_on_end = false;
	ret = set_thread_state(t, &tin, th, false);
	if (!ret)
		ret = restore_seccomp(t, &tin, th, t->seccomp_shared, th->n_seccomp_filters);
	if (!ret)
		ret = thread_creds(t, &tin, th);
	if (ret)
		return ret;
	return set_thread_regs(htid, th);
}

int restore_switch(struct rst_task *t)
{
	struct inject in;
	int ret;

	t->htids = calloc(t->core->n_threads, sizeof(pid_t));
	if (!t->htids)
		return -ENOMEM;
	t->htids[t->nhtids++] = t->hpid;
	/* threads we create start stopped and traced */
	/* threads we create start stopped and traced; the filters we install
	 * must not judge our own injected syscalls (until the detach) */
	long opts = PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE;
	for (size_t i = 0; i < t->core->n_threads; i++)
		if (t->core->threads[i]->n_seccomp_filters)
			opts |= PTRACE_O_SUSPEND_SECCOMP;
	if (ptrace(PTRACE_SETOPTIONS, t->hpid, 0, opts))
		return -errno;
	ret = inject_begin(&in, t->hpid, t->tramp);
	if (ret)
		return ret;
	in.restore_on_end = false; /* the worker's registers are never wanted back */

	progress_stage("restore", "address space");
	ret = unmap_worker(t, &in);
	if (ret)
		return ret;
	ret = move_vdso(t, &in);
	if (ret)
		return ret;
	ret = map_vmas(t, &in);
	if (ret)
		return ret;
	/* --lazy-pages: private anonymous memory is the daemon's to fill */
	ret = lazy_restore_split(t);
	if (ret)
		return ret;
	ret = fill_pages(t, &in);
	lazy_restore_unsplit(t);
	if (!ret)
		ret = restore_cow_pages(t);
	if (!ret)
		ret = lazy_restore_register(t, &in);
	if (ret)
		return ret;
	ret = finish_vmas(t, &in);
	if (ret)
		return ret;
	ret = set_mm_fields(t, &in);
	if (ret)
		return ret;
	/* helper fds are the controller's, not the task's; the ready pipe too:
	 * the worker may be stopped before it got to close it itself */
	for (int fd = t->pages_fd; fd <= t->ready_fd; fd++) {
		long r;
		ret = inject_call(&in, SYS_close, fd, 0, 0, 0, 0, 0, &r);
		if (ret)
			return ret;
	}
	ret = set_thread_state(t, &in, t->core->threads[0], true);
	if (ret)
		return ret;
	/* the filters all threads share, before the threads: they inherit them */
	t->seccomp_shared = restore_seccomp_shared(t->core);
	if (t->seccomp_shared)
		pr_debug("restore", "PID %d: %zu seccomp filter(s) shared by its %zu thread(s)", t->pid,
			 t->seccomp_shared, t->core->n_threads);
	ret = restore_seccomp(t, &in, t->core->threads[0], 0, t->seccomp_shared);
	if (ret)
		return ret;
	for (size_t i = 1; i < t->core->n_threads; i++) {
		ret = create_thread(t, &in, t->core->threads[i]);
		if (ret)
			return ret;
	}

	/* after the threads: a timer may signal one of them */
	ret = restore_posix_timers(t, &in);
	if (ret)
		return ret;

	/* process-wide flags, then the main thread's credentials: only now,
	 * as creating threads with chosen tids needs the worker's privileges */
	Ckpt__TaskCore *c = t->core;
	if (c->has_child_subreaper && c->child_subreaper) {
		long r = inject_do(&in, "prctl(PR_SET_CHILD_SUBREAPER)", SYS_prctl,
				   PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0, 0);
		if (r < 0)
			return r;
	}
	ret = restore_seccomp(t, &in, c->threads[0], t->seccomp_shared,
			      c->threads[0]->n_seccomp_filters);
	if (ret)
		return ret;
	ret = thread_creds(t, &in, c->threads[0]);
	if (ret)
		return ret;
	if (c->has_dumpable) {
		/* after the uid change, which resets it */
		long r = inject_do(&in, "prctl(PR_SET_DUMPABLE)", SYS_prctl, PR_SET_DUMPABLE,
				   c->dumpable, 0, 0, 0, 0);
		if (r < 0)
			return r;
	}
	if (c->has_oom_score_adj) {
		char path[64], val[16];
		snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", t->hpid);
		snprintf(val, sizeof(val), "%d", c->oom_score_adj);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, val, strlen(val)) < 0)
			pr_warn("restore", "PID %d: cannot set oom_score_adj %d: %s", t->pid,
				c->oom_score_adj, strerror(errno));
		if (fd >= 0)
			close(fd);
	}

	/* last: leave through the task's own vDSO and drop the trampoline */
	uint64_t vdso_start = 0, vdso_end = 0;
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		if (t->mm->vmas[i]->kind == CKPT__VMA_KIND__VMA_VDSO) {
			vdso_start = t->mm->vmas[i]->start;
			vdso_end = t->mm->vmas[i]->end;
		}
	if (vdso_start) {
		uint64_t ip;
		ret = inject_find_syscall_in(t->hpid, vdso_start, vdso_end, &ip);
		if (ret)
			return ret;
		in.syscall_ip = ip;
		long r = inject_do(&in, "munmap trampoline", SYS_munmap, t->tramp, TRAMP_SIZE, 0, 0, 0, 0);
		if (r < 0)
			return r;
	}
	return set_thread_regs(t->hpid, t->core->threads[0]);
}
