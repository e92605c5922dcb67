/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ckpt restore, the controller: verify every image before anything is
 * created, recreate fd objects through their plugins, create the task with
 * its PID (clone3 set_tid) as a worker, switch its memory and registers,
 * then let it go.  Any failure kills what was created.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image.h"
#include "inventory.pb-c.h"
#include "lazy.h"
#include "log.h"
#include "plugin.h"
#include "progress.h"
#include "ptrace.h"
#include "restore.h"
#include "worker_msg.h"

static uint64_t cpu_xcr0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

static int check_inventory(const Ckpt__Inventory *inv)
{
	if (inv->has_pre_dump && inv->pre_dump) {
		pr_err("restore", "%s holds a pre-dump (memory only): restore from the dump made with --prev-images-dir pointing at it",
		       img_store_dir());
		return -EINVAL;
	}
	for (size_t i = 0; i < inv->n_plugins; i++) {
		const Ckpt__PluginRef *r = inv->plugins[i];
		if (!r->required)
			continue;
		struct plugin *p = plugin_find(r->name);
		if (!p) {
			pr_err("restore", "the dump needs plugin %s (version %s, ABI %u.%u); enable it with --plugins or [plugin.%s] in the config",
			       r->name, r->version ? r->version : "?", r->abi_major, r->abi_minor, r->name);
			return -ENOENT;
		}
		if (p->desc->abi_major != r->abi_major) {
			pr_err("restore", "the dump was written by plugin %s ABI %u.%u, the loaded one speaks %u.%u; install a compatible %s plugin",
			       r->name, r->abi_major, r->abi_minor, p->desc->abi_major,
			       p->desc->abi_minor, r->name);
			return -EPROTO;
		}
	}
	if (inv->has_xcr0) {
		uint64_t have = cpu_xcr0();
		if ((inv->xcr0 & have) != inv->xcr0) {
			pr_err("restore", "the dump relies on CPU state features %#llx, this CPU enables %#llx; restore on a machine with the same CPU features",
			       (unsigned long long)inv->xcr0, (unsigned long long)have);
			return -ENOTSUP;
		}
	}
	return 0;
}

static int read_all(const char *name, const ProtobufCMessageDescriptor *d, void ***out, size_t *n)
{
	return img_load_all(name, d, (ProtobufCMessage ***)out, n, false);
}

static int load_task(struct rst_task *t, Ckpt__PstreeEntry *pe)
{
	char name[64];
	int ret;

	t->pid = pe->pid;
	t->hpid = pe->pid;
	t->pe = pe;
	t->zombie = pe->has_zombie && pe->zombie;
	t->ready_rd = t->ready_wr = -1;
	if (t->zombie)
		return 0;
	snprintf(name, sizeof(name), "core-%d.img", t->pid);
	ret = img_read_one(name, &ckpt__task_core__descriptor, (ProtobufCMessage **)&t->core);
	if (ret)
		return ret;
	if (!t->core->n_threads || t->core->n_threads != pe->n_threads) {
		pr_err("restore", "%s: %zu threads, pstree.img says %zu", name, t->core->n_threads,
		       pe->n_threads);
		return -EBADMSG;
	}
	for (size_t i = 0; i < t->core->n_threads; i++)
		if (!t->core->threads[i]->regs) {
			pr_err("restore", "%s: thread %zu has no registers", name, i);
			return -EBADMSG;
		}
	snprintf(name, sizeof(name), "mm-%d.img", t->pid);
	ret = img_read_one(name, &ckpt__mm__descriptor, (ProtobufCMessage **)&t->mm);
	if (ret)
		return ret;
	if (!t->mm->exe) {
		pr_err("restore", "%s: no executable recorded", name);
		return -EBADMSG;
	}
	snprintf(name, sizeof(name), "pagemap-%d.img", t->pid);
	ret = read_all(name, &ckpt__pagemap_entry__descriptor, (void ***)&t->pm, &t->npm);
	if (ret)
		return ret;
	/* runs in another process's image go last, apart (cow.c) */
	size_t own = 0;
	for (size_t i = 0; i < t->npm; i++)
		if (!t->pm[i]->has_pages_of) {
			Ckpt__PagemapEntry *e = t->pm[i];
			memmove(&t->pm[own + 1], &t->pm[own], (i - own) * sizeof(*t->pm));
			t->pm[own++] = e;
		}
	t->ncow = t->npm - own;
	t->cow_pm = t->ncow ? t->pm + own : NULL;
	t->npm = own;
	snprintf(name, sizeof(name), "fdinfo-%d.img", t->pid);
	return read_all(name, &ckpt__fd_entry__descriptor, (void ***)&t->fds, &t->nfds);
}

static void free_task(struct rst_task *t)
{
	if (t->core)
		protobuf_c_message_free_unpacked(&t->core->base, NULL);
	if (t->mm)
		protobuf_c_message_free_unpacked(&t->mm->base, NULL);
	for (size_t i = 0; i < t->npm + t->ncow; i++)
		protobuf_c_message_free_unpacked(&t->pm[i]->base, NULL);
	free(t->pm);
	for (size_t i = 0; i < t->nfds; i++)
		protobuf_c_message_free_unpacked(&t->fds[i]->base, NULL);
	free(t->fds);
	free(t->htids);
	proc_free_vmas(&t->worker_vmas);
	restore_close_files(t);
	restore_chain_free(t);
	if (t->ready_rd >= 0)
		close(t->ready_rd);
	if (t->ready_wr >= 0)
		close(t->ready_wr);
}

static void free_tree(struct rst_tree *tr)
{
	for (size_t i = 0; i < tr->n; i++)
		free_task(&tr->t[i]);
	for (int i = 0; i < 2; i++)
		if (tr->userns_go[i] >= 0)
			close(tr->userns_go[i]);
	restore_files_reset();
	free(tr->t);
	memset(tr, 0, sizeof(*tr));
}

/* Build the tree from pstree.img: parents must come before children. */
static int load_tree(struct rst_tree *tr, Ckpt__PstreeEntry **pst, size_t npst,
		     const Ckpt__Inventory *inv)
{
	tr->t = calloc(npst, sizeof(*tr->t));
	if (!tr->t)
		return -ENOMEM;
	tr->n = npst;
	tr->root_pidns = inv->has_root_in_own_pidns && inv->root_in_own_pidns;
	tr->userns_go[0] = tr->userns_go[1] = -1;
	for (size_t i = 0; i < npst; i++) {
		struct rst_task *t = &tr->t[i];
		t->parent = -1;
		int ret = load_task(t, pst[i]);
		if (ret)
			return ret;
		if (i == 0) {
			if (pst[i]->ppid) {
				pr_err("restore", "pstree.img: the first process %u has a parent", pst[i]->pid);
				return -EBADMSG;
			}
			continue;
		}
		for (size_t k = 0; k < i; k++)
			if (tr->t[k].pid == (pid_t)pst[i]->ppid)
				t->parent = k;
		if (t->parent < 0 || tr->t[t->parent].zombie) {
			pr_err("restore", "pstree.img: process %u has no live parent listed before it",
			       pst[i]->pid);
			return -EBADMSG;
		}
	}
	if (tr->t[0].zombie) {
		pr_err("restore", "pstree.img: the root process is a zombie");
		return -EBADMSG;
	}
	const Ckpt__TaskCore *rc = tr->t[0].core;
	if (rc->own_user) {
		/* the workers choose PIDs from inside: the dump made sure the
		 * pid namespace is the tree's own, owned by the user namespace */
		if (!tr->root_pidns) {
			pr_err("restore", "core-%d.img: a user namespace of its own without a pid namespace of its own; the dump is inconsistent",
			       tr->t[0].pid);
			return -EBADMSG;
		}
		for (size_t i = 0; i < npst; i++) {
			tr->t[i].in_userns = true;
			tr->t[i].setgroups_deny = rc->setgroups_deny;
		}
	}
	return 0;
}

/* The trampoline must miss the task's VMAs and ckpt's own (the worker
 * starts as a copy of this process). */
static int pick_trampoline(struct rst_task *t, const struct proc_vmas *self)
{
	size_t n = 0;
	struct range *r = calloc(self->n + t->mm->n_vmas + 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < self->n; i++)
		r[n++] = (struct range){ self->v[i].start, self->v[i].end };
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		r[n++] = (struct range){ t->mm->vmas[i]->start, t->mm->vmas[i]->end };
	int ret = find_hole(r, n, 0x10000000, TRAMP_SIZE, &t->tramp);
	free(r);
	if (ret)
		pr_err("restore", "no room for the restore trampoline of PID %d", t->pid);
	return ret;
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = read(fd, (char *)buf + done, len - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EPIPE;
		done += r;
	}
	return 0;
}

/* A time namespace takes its offsets before any process enters it: make
 * it the caller's for children and set them. */
int timens_prepare(const Ckpt__TaskCore *c)
{
	if (unshare(CLONE_NEWTIME))
		return -errno;
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "monotonic %lld %lld\nboottime %lld %lld\n",
			 (long long)(c->time_monotonic_ns / 1000000000LL),
			 (long long)(c->time_monotonic_ns % 1000000000LL),
			 (long long)(c->time_boottime_ns / 1000000000LL),
			 (long long)(c->time_boottime_ns % 1000000000LL));
	int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, n) != n) {
		int err = -errno;
		if (fd >= 0)
			close(fd);
		return err;
	}
	close(fd);
	return 0;
}

/* The root is born inside it.  In a user namespace of the tree's own, the
 * root makes it itself (it must be owned by that namespace). */
static int prepare_time_ns(const Ckpt__TaskCore *c)
{
	if (!c->own_time || c->own_user)
		return 0;
	int ret = timens_prepare(c);
	if (ret)
		pr_err("restore", "cannot create a time namespace with the saved clock offsets: %s",
		       strerror(-ret));
	return ret;
}

/* The controller's own mount namespace and cwd while it stands in the
 * tree's: files of the tree are opened, and the tree created, inside. */
#define NS_ENTERED_MAX 8

/* ckpt's own namespaces, entered again once the tree's root exists. */
struct ns_return {
	int own_fd[NS_ENTERED_MAX]; /* in the order entered */
	size_t n;
	int cwd_fd; /* with the mount namespace: our working directory */
};

/* Ask the plugin that saved each namespace of the tree to recreate it, and
 * enter those it hands back an fd of; a plugin that makes it itself at its
 * own point of the restore (fd -1) leaves nothing to enter. */
static int enter_tree_namespaces(const Ckpt__TaskCore *c, struct ns_return *back)
{
	back->n = 0;
	back->cwd_fd = -1;
	for (size_t i = 0; i < c->n_ns_owners; i++) {
		const Ckpt__NsOwner *o = c->ns_owners[i];
		char own[64];
		int fd, ret;
		if (!o->kind || !o->plugin || !*o->kind || strchr(o->kind, '/') ||
		    strlen(o->kind) > 16) {
			pr_err("restore", "core image: a namespace record without a valid kind or plugin; the images are damaged");
			return -EBADMSG;
		}
		for (size_t j = 0; j < i; j++)
			if (c->ns_owners[j]->kind && !strcmp(c->ns_owners[j]->kind, o->kind)) {
				pr_err("restore", "core image: the %s namespace is listed twice; the images are damaged",
				       o->kind);
				return -EBADMSG;
			}
		ret = plugins_restore_namespace(o->plugin, o->kind, &fd);
		if (ret)
			return ret;
		if (fd < 0)
			continue;
		if (back->n == NS_ENTERED_MAX) {
			close(fd);
			pr_err("restore", "core image: too many namespaces to enter");
			return -EBADMSG;
		}
		snprintf(own, sizeof(own), "/proc/self/ns/%s", o->kind);
		int own_fd = open(own, O_RDONLY | O_CLOEXEC);
		if (own_fd < 0) {
			ret = -errno;
			pr_err("restore", "cannot open ckpt's own %s namespace: %s", o->kind, strerror(errno));
			close(fd);
			return ret;
		}
		bool mnt = !strcmp(o->kind, "mnt");
		if (mnt && back->cwd_fd < 0)
			back->cwd_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (setns(fd, 0)) {
			ret = -errno;
			pr_err("restore", "cannot enter the recreated %s namespace: %s", o->kind, strerror(errno));
			close(own_fd);
			close(fd);
			return ret;
		}
		close(fd);
		back->own_fd[back->n++] = own_fd;
	}
	return 0;
}

/* Back to our own namespaces once the tree's files are open and its root
 * exists (its children are created inside it, by the workers). */
static int leave_tree_namespaces(struct ns_return *back)
{
	int ret = 0;
	while (back->n > 0) {
		int fd = back->own_fd[--back->n];
		if (setns(fd, 0) && !ret) {
			ret = -errno;
			pr_err("restore", "cannot return to ckpt's own namespace: %s", strerror(errno));
		}
		close(fd);
	}
	if (back->cwd_fd >= 0) {
		if (fchdir(back->cwd_fd) && !ret)
			ret = -errno;
		close(back->cwd_fd);
		back->cwd_fd = -1;
	}
	return ret;
}

static pid_t clone_root(const struct rst_tree *tr)
{
	pid_t tid = tr->t[0].pid;
	const Ckpt__TaskCore *c = tr->t[0].core;
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = c->has_exit_signal ? (int)c->exit_signal : SIGCHLD;
	if (c->own_uts)
		ca.flags |= CLONE_NEWUTS;
	if (c->own_ipc)
		ca.flags |= CLONE_NEWIPC;
	/* the namespaces created with it are owned by it */
	if (c->own_user)
		ca.flags |= CLONE_NEWUSER;
	if (tr->root_pidns) {
		/* the root is init of a new pid namespace: PID 1 there */
		ca.flags |= CLONE_NEWPID;
		return syscall(SYS_clone3, &ca, sizeof(ca));
	}
	ca.set_tid = (uint64_t)(uintptr_t)&tid;
	ca.set_tid_size = 1;
	return syscall(SYS_clone3, &ca, sizeof(ca));
}

/* Our pid for the task whose own pid (innermost namespace) is vpid, found
 * among the children of the process we know as hparent. */
static pid_t host_pid_of(pid_t hparent, pid_t vpid)
{
	pid_t *tids, found = -1;
	size_t n;
	if (proc_list_threads(hparent, &tids, &n))
		return -1;
	for (size_t i = 0; i < n && found < 0; i++) {
		char path[96], *buf;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", hparent, tids[i]);
		if (proc_read_file(path, &buf, NULL))
			continue;
		for (char *p = buf; *p && found < 0;) {
			char *end;
			long c = strtol(p, &end, 10);
			if (end == p)
				break;
			struct proc_status st;
			if (!proc_read_status(c, &st) && st.nspid_last == vpid)
				found = c;
			p = end;
		}
		free(buf);
	}
	free(tids);
	return found;
}

/* Read one worker's report: its verdict, then its own mappings. */
static int read_report(struct rst_task *t)
{
	struct worker_msg msg;
	int ret = read_full(t->ready_rd, &msg, sizeof(msg));
	if (ret) {
		pr_err("restore", "PID %d died while setting itself up", t->pid);
		return -ECHILD;
	}
	if (msg.err) {
		pr_err("restore", "PID %d: %s", t->pid, msg.text);
		return msg.err;
	}
	char *maps = malloc(msg.maps_len + 1);
	if (!maps)
		return -ENOMEM;
	ret = read_full(t->ready_rd, maps, msg.maps_len);
	if (!ret) {
		maps[msg.maps_len] = 0;
		ret = proc_parse_maps(maps, &t->worker_vmas);
	}
	free(maps);
	if (ret)
		pr_err("restore", "PID %d: bad report from the worker", t->pid);
	close(t->ready_rd);
	t->ready_rd = -1;
	return ret;
}

static void kill_created(struct rst_tree *tr, pid_t root)
{
	/* the workers die with their parents (PDEATHSIG), the tree with its root */
	for (size_t i = tr->n; i-- > 0;)
		if (tr->t[i].hpid > 0 && i)
			kill(tr->t[i].hpid, SIGKILL);
	if (root > 0) {
		kill(root, SIGKILL);
		while (waitpid(root, NULL, __WALL) < 0 && errno == EINTR)
			;
	}
}

/* Create, fill and release the whole tree; on return it runs. */
static int restore_tree(struct rst_tree *tr)
{
	struct proc_vmas self = { 0 };
	struct ns_return back = { .n = 0, .cwd_fd = -1 };
	pid_t root = -1;
	sigset_t all, old;
	int ret;

	ret = proc_read_maps(0, &self);
	if (ret)
		return ret;
	/* paths of the tree's files mean what they meant in its namespace */
	ret = enter_tree_namespaces(tr->t[0].core, &back);
	if (ret)
		goto fail;
	for (size_t i = 0; i < tr->n; i++) {
		struct rst_task *t = &tr->t[i];
		int p[2];
		if (t->zombie)
			continue;
		ret = restore_prepare_files(t);
		if (!ret)
			ret = pick_trampoline(t, &self);
		if (ret)
			goto fail;
		if (pipe2(p, O_CLOEXEC)) {
			ret = -errno;
			pr_err("restore", "pipe: %s", strerror(errno));
			goto fail;
		}
		t->ready_rd = p[0];
		t->ready_wr = p[1];
	}
	proc_free_vmas(&self);

	ret = prepare_time_ns(tr->t[0].core);
	if (ret)
		goto fail;
	if (tr->t[0].core->own_user && pipe2(tr->userns_go, O_CLOEXEC)) {
		ret = -errno;
		pr_err("restore", "pipe: %s", strerror(errno));
		goto fail;
	}
	progress_stage("restore", "creating tasks");
	/* the workers start with every signal blocked */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	root = clone_root(tr);
	if (root == 0)
		worker_main(tr, 0);
	int cerr = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	int lret = leave_tree_namespaces(&back);
	for (size_t i = 0; i < tr->n; i++)
		if (tr->t[i].ready_wr >= 0) {
			close(tr->t[i].ready_wr);
			tr->t[i].ready_wr = -1;
		}
	if (root < 0) {
		if (tr->t[0].core->own_user && (cerr == EPERM || cerr == ENOSPC || cerr == EUSERS))
			pr_err("restore", "cannot create the user namespace of PID %d: %s (see user.max_user_namespaces and the uid/gid maps in user_namespaces(7))",
			       tr->t[0].pid, strerror(cerr));
		else if (cerr == EEXIST)
			pr_err("restore", "PID %d is already in use; stop that process or restore with --pidns",
			       tr->t[0].pid);
		else if (cerr == EINVAL)
			pr_err("restore", "PID %d cannot be created here (above pid_max?)", tr->t[0].pid);
		else
			pr_err("restore", "cannot create PID %d: %s", tr->t[0].pid, strerror(cerr));
		ret = -cerr;
		goto fail;
	}
	tr->t[0].hpid = root;
	if (lret) {
		ret = lret;
		goto fail;
	}
	if (!tr->root_pidns && root != tr->t[0].pid) {
		pr_err("restore", "asked for PID %d, got %d", tr->t[0].pid, root);
		ret = -EIO;
		goto fail;
	}
	if (tr->userns_go[1] >= 0) {
		/* the root waits in its new user namespace for the maps */
		close(tr->userns_go[0]);
		tr->userns_go[0] = -1;
		ret = userns_write_maps(root, tr->t[0].core);
		if (!ret && write(tr->userns_go[1], "g", 1) != 1)
			ret = -errno;
		close(tr->userns_go[1]);
		tr->userns_go[1] = -1;
		if (ret)
			goto fail;
	}

	for (size_t i = 0; i < tr->n; i++) {
		struct rst_task *t = &tr->t[i];
		if (t->zombie)
			continue;
		ret = read_report(t);
		if (ret)
			goto fail;
		if (i && tr->root_pidns) {
			t->hpid = host_pid_of(tr->t[t->parent].hpid, t->pid);
			if (t->hpid < 0) {
				pr_err("restore", "cannot find the new PID %d from outside its namespace", t->pid);
				ret = -ESRCH;
				goto fail;
			}
		}
	}

	ret = restore_ipc_create(tr);
	if (ret)
		goto fail;
	for (size_t i = 0; i < tr->n; i++) {
		struct rst_task *t = &tr->t[i];
		if (t->zombie)
			continue;
		ret = ptrace_seize_stop(t->hpid, true);
		if (ret) {
			pr_err("restore", "cannot seize the new PID %d: %s", t->pid, strerror(-ret));
			goto fail;
		}
		ret = restore_switch(t);
		if (ret)
			goto fail;
	}
	ret = restore_ipc_finish(tr);
	if (ret)
		goto fail;
	progress_stage("restore", "resuming");
	pid_t *pids = calloc(tr->n + 1, sizeof(pid_t));
	if (pids) {
		for (size_t i = 0; i < tr->n; i++)
			pids[i] = tr->t[i].hpid;
		plugins_set_tree(pids, tr->n);
		free(pids);
	}
	ret = plugins_restore_resume(tr->t[0].pid);
	if (ret)
		goto fail;
	for (size_t i = 0; i < tr->n; i++) {
		struct rst_task *t = &tr->t[i];
		for (size_t k = 0; k < t->nhtids; k++) {
			ret = ptrace_detach(t->htids[k]);
			if (ret) {
				pr_err("restore", "cannot release thread %d of PID %d: %s", t->htids[k],
				       t->pid, strerror(-ret));
				goto fail;
			}
		}
	}
	progress_end();
	lazy_restore_finish();
	return 0;
fail:
	progress_end();
	leave_tree_namespaces(&back);
	proc_free_vmas(&self);
	kill_created(tr, root);
	lazy_restore_finish();
	return ret ? ret : -EIO;
}
/* A tree holds one fd per object plus helpers per task in the controller. */
static void raise_nofile_limit(void)
{
	struct rlimit r;
	if (!getrlimit(RLIMIT_NOFILE, &r) && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

static int write_pidfile(const char *path, pid_t pid)
{
	FILE *f = fopen(path, "we");
	if (!f) {
		pr_err("restore", "cannot write pidfile %s: %s", path, strerror(errno));
		return -errno;
	}
	fprintf(f, "%d\n", pid);
	return fclose(f) ? -errno : 0;
}

static int wait_exit_status(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + WTERMSIG(st);
}

/* --pidns: this child is init of a new pid namespace; it restores the task
 * inside, reports through fd, then reaps until the task is gone. */
static int __attribute__((noreturn)) pidns_init(struct rst_tree *tr, int fd)
{
	/* /proc must show this namespace: to us and to the restored tree */
	int ret = 0;
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) {
		pr_err("restore", "cannot mount /proc for the new pid namespace: %s", strerror(errno));
		ret = -errno;
	}
	if (!ret)
		ret = restore_tree(tr);
	char ok = ret ? 1 : 0;
	if (write(fd, &ok, 1) != 1 || ret)
		_exit(1);
	/* the tree runs: hold none of its files (a pipe's reader must see
	 * EOF when its writers close), nor our caller's terminal */
	syscall(SYS_close_range, 0, ~0U, 0);
	prctl(PR_SET_NAME, "ckpt-pidns-init");
	int status = 0;
	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, __WALL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (w == tr->t[0].pid)
			status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	_exit(status);
}

static pid_t child_of(pid_t parent)
{
	char path[64], *buf;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", parent, parent);
	if (proc_read_file(path, &buf, NULL))
		return -1;
	pid_t p = atoi(buf);
	free(buf);
	return p > 0 ? p : -1;
}

int cmd_restore(const struct restore_opts *o)
{
	Ckpt__Inventory *inv = NULL;
	Ckpt__PstreeEntry **pst = NULL;
	size_t npst = 0;
	struct rst_tree tr = { 0 };
	bool started = false;
	int ret;

	ret = img_store_open(o->dir, false);
	if (ret)
		return ret;
	progress_stage("restore", "verifying images");
	ret = img_inventory_verify(&inv);
	if (ret)
		goto out;
	ret = check_inventory(inv);
	if (ret)
		goto out;
	ret = read_all("pstree.img", &ckpt__pstree_entry__descriptor, (void ***)&pst, &npst);
	if (ret)
		goto out;
	if (!npst) {
		pr_err("restore", "pstree.img lists no process");
		ret = -EBADMSG;
		goto out;
	}
	ret = load_tree(&tr, pst, npst, inv);
	if (!ret)
		ret = restore_ipc_load(&tr);
	if (ret)
		goto out;
	ret = restore_chain_load(inv, &tr);
	if (ret)
		goto out;
	raise_nofile_limit();
	ret = plugins_restore_start();
	started = true;
	if (ret)
		goto out;

	pid_t visible = tr.t[0].pid, waitfor = tr.t[0].pid;
	if (o->pidns && !tr.root_pidns) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) || unshare(CLONE_NEWPID)) {
			ret = -errno;
			pr_err("restore", "cannot create a pid namespace: %s", strerror(errno));
			goto out;
		}
		pid_t init = fork();
		if (init == 0) {
			close(p[0]);
			pidns_init(&tr, p[1]);
		}
		close(p[1]);
		if (init < 0) {
			ret = -errno;
			close(p[0]);
			goto out;
		}
		char ok = 1;
		if (read(p[0], &ok, 1) != 1 || ok) {
			close(p[0]);
			waitpid(init, NULL, 0);
			ret = -EIO;
			goto out;
		}
		close(p[0]);
		visible = child_of(init);
		waitfor = init;
		pr_info("restore", "PID %d restored in a new pid namespace (PID %d outside)",
			tr.t[0].pid, visible);
	} else {
		ret = restore_tree(&tr);
		if (ret)
			goto out;
		visible = waitfor = tr.t[0].hpid;
		pr_info("restore", "%zu process(es) restored, root PID %d%s", tr.n, tr.t[0].pid,
			tr.root_pidns ? " (init of a new pid namespace)" : "");
	}
	if (o->pidns && !tr.root_pidns)
		plugins_set_tree(&visible, 1); /* the root, as we see it from here */
	ret = plugins_restore_finish(1);
	plugins_set_tree(NULL, 0);
	started = false;
	if (ret) {
		/* a plugin could not finish (a GPU that would not come back):
		 * nothing half-restored may keep running */
		if (o->pidns && !tr.root_pidns)
			kill(waitfor, SIGKILL);
		else
			kill_created(&tr, tr.t[0].hpid);
		pr_info("restore", "a plugin failed after the tree was running; it was killed");
		goto out;
	}
	if (o->pidfile)
		write_pidfile(o->pidfile, visible);
	if (!o->detach) {
		/* like criu restore without -d: wait and pass on the exit status */
		free_tree(&tr);
		restore_ipc_free();
		img_store_close();
		exit(wait_exit_status(waitfor));
	}
out:
	if (started)
		plugins_restore_finish(0);
	free_tree(&tr);
	restore_ipc_free();
	for (size_t i = 0; i < npst; i++)
		protobuf_c_message_free_unpacked(&pst[i]->base, NULL);
	free(pst);
	if (inv)
		protobuf_c_message_free_unpacked(&inv->base, NULL);
	img_store_close();
	return ret;
}
