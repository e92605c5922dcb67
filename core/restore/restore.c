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
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image.h"
#include "inventory.pb-c.h"
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
	struct ckpt_img *img = img_open(name, d->name);
	if (!img) {
		int err = -errno;
		pr_err("restore", "cannot open image %s: %s", name, strerror(errno));
		return err;
	}
	size_t cap = 0, cnt = 0;
	void **arr = NULL;
	int ret;
	for (;;) {
		ProtobufCMessage *m;
		ret = img_read_msg(img, d, &m);
		if (ret <= 0)
			break;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			void **na = realloc(arr, cap * sizeof(*na));
			if (!na) {
				protobuf_c_message_free_unpacked(m, NULL);
				ret = -ENOMEM;
				break;
			}
			arr = na;
		}
		arr[cnt++] = m;
	}
	img_close(img);
	if (ret < 0) {
		for (size_t i = 0; i < cnt; i++)
			protobuf_c_message_free_unpacked(arr[i], NULL);
		free(arr);
		return ret;
	}
	*out = arr;
	*n = cnt;
	return 0;
}

static int load_task(struct rst_task *t, Ckpt__PstreeEntry *pe)
{
	char name[64];
	int ret;

	t->pid = pe->pid;
	t->pe = pe;
	snprintf(name, sizeof(name), "core-%d.img", t->pid);
	ret = img_read_one(name, &ckpt__task_core__descriptor, (ProtobufCMessage **)&t->core);
	if (ret)
		return ret;
	if (t->core->n_threads != 1 || !t->core->threads[0]->regs) {
		pr_err("restore", "%s: expected exactly one thread with registers", name);
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
	snprintf(name, sizeof(name), "fdinfo-%d.img", t->pid);
	return read_all(name, &ckpt__fd_entry__descriptor, (void ***)&t->fds, &t->nfds);
}

static void free_task(struct rst_task *t)
{
	if (t->core)
		protobuf_c_message_free_unpacked(&t->core->base, NULL);
	if (t->mm)
		protobuf_c_message_free_unpacked(&t->mm->base, NULL);
	for (size_t i = 0; i < t->npm; i++)
		protobuf_c_message_free_unpacked(&t->pm[i]->base, NULL);
	free(t->pm);
	for (size_t i = 0; i < t->nfds; i++)
		protobuf_c_message_free_unpacked(&t->fds[i]->base, NULL);
	free(t->fds);
	proc_free_vmas(&t->worker_vmas);
	restore_close_files(t);
}

/* The trampoline must miss the task's VMAs and ckpt's own (the worker
 * starts as a copy of this process). */
static int pick_trampoline(struct rst_task *t)
{
	struct proc_vmas self;
	int ret = proc_read_vmas(0, &self);
	if (ret)
		return ret;
	size_t n = 0;
	struct range *r = calloc(self.n + t->mm->n_vmas + 1, sizeof(*r));
	if (!r) {
		proc_free_vmas(&self);
		return -ENOMEM;
	}
	for (size_t i = 0; i < self.n; i++)
		r[n++] = (struct range){ self.v[i].start, self.v[i].end };
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		r[n++] = (struct range){ t->mm->vmas[i]->start, t->mm->vmas[i]->end };
	ret = find_hole(r, n, 0x10000000, TRAMP_SIZE, &t->tramp);
	free(r);
	proc_free_vmas(&self);
	if (ret)
		pr_err("restore", "no room for the restore trampoline");
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

static pid_t clone_with_pid(pid_t pid, int exit_signal)
{
	pid_t tid = pid;
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = exit_signal;
	ca.set_tid = (uint64_t)(uintptr_t)&tid;
	ca.set_tid_size = 1;
	return syscall(SYS_clone3, &ca, sizeof(ca));
}

/* Create, fill and release one task; on return it runs (or is dead). */
static int restore_one(struct rst_task *t)
{
	int pfd[2] = { -1, -1 }, ret;
	pid_t child = -1;
	sigset_t all, old;

	ret = restore_prepare_files(t);
	if (ret)
		return ret;
	ret = pick_trampoline(t);
	if (ret)
		return ret;
	if (pipe2(pfd, O_CLOEXEC)) {
		ret = -errno;
		pr_err("restore", "pipe: %s", strerror(errno));
		return ret;
	}
	struct fd_move *m = realloc(t->moves, (t->nmoves + 1) * sizeof(*m));
	if (!m) {
		ret = -ENOMEM;
		goto fail;
	}
	t->moves = m;
	t->moves[t->nmoves++] = (struct fd_move){ pfd[1], t->ready_fd, true };

	progress_stage("restore", "creating task");
	/* the worker starts with every signal blocked */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	int exit_signal = t->core->has_exit_signal ? (int)t->core->exit_signal : SIGCHLD;
	child = clone_with_pid(t->pid, exit_signal);
	if (child == 0)
		worker_main(t);
	int cerr = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	t->nmoves--; /* the pipe's write end is the worker's now */
	close(pfd[1]);
	pfd[1] = -1;
	if (child < 0) {
		if (cerr == EEXIST)
			pr_err("restore", "PID %d is already in use; stop that process or restore with --pidns",
			       t->pid);
		else if (cerr == EINVAL)
			pr_err("restore", "PID %d cannot be created here (above pid_max?)", t->pid);
		else
			pr_err("restore", "cannot create PID %d: %s", t->pid, strerror(cerr));
		ret = -cerr;
		goto fail;
	}
	if (child != t->pid) {
		pr_err("restore", "asked for PID %d, got %d", t->pid, child);
		ret = -EIO;
		goto fail;
	}

	struct worker_msg msg;
	ret = read_full(pfd[0], &msg, sizeof(msg));
	if (ret) {
		pr_err("restore", "PID %d died while setting itself up", t->pid);
		goto fail;
	}
	if (msg.err) {
		pr_err("restore", "PID %d: %s", t->pid, msg.text);
		ret = msg.err;
		goto fail;
	}
	char *maps = malloc(msg.maps_len + 1);
	if (!maps) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = read_full(pfd[0], maps, msg.maps_len);
	if (!ret) {
		maps[msg.maps_len] = 0;
		ret = proc_parse_maps(maps, &t->worker_vmas);
	}
	free(maps);
	if (ret) {
		pr_err("restore", "PID %d: bad report from the worker", t->pid);
		goto fail;
	}
	close(pfd[0]);
	pfd[0] = -1;

	ret = ptrace_seize_stop(t->pid, true);
	if (ret) {
		pr_err("restore", "cannot seize the new PID %d: %s", t->pid, strerror(-ret));
		goto fail;
	}
	ret = restore_switch(t);
	if (ret)
		goto fail;
	progress_stage("restore", "resuming");
	ret = plugins_restore_resume(t->pid);
	if (ret)
		goto fail;
	ret = ptrace_detach(t->pid);
	if (ret) {
		pr_err("restore", "cannot release PID %d: %s", t->pid, strerror(-ret));
		goto fail;
	}
	progress_end();
	return 0;
fail:
	progress_end();
	if (child > 0) {
		kill(child, SIGKILL);
		while (waitpid(child, NULL, __WALL) < 0 && errno == EINTR)
			;
	}
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	return ret ? ret : -EIO;
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
static int __attribute__((noreturn)) pidns_init(struct rst_task *t, int fd)
{
	int ret = restore_one(t);
	char ok = ret ? 1 : 0;
	if (write(fd, &ok, 1) != 1 || ret)
		_exit(1);
	close(fd);
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
		if (w == t->pid)
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
	struct rst_task t;
	bool started = false;
	int ret;

	memset(&t, 0, sizeof(t));
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
	if (npst != 1) {
		pr_err("restore", "pstree.img holds %zu processes; process trees are not supported yet", npst);
		ret = -ENOTSUP;
		goto out;
	}
	ret = load_task(&t, pst[0]);
	if (ret)
		goto out;
	ret = plugins_restore_start();
	started = true;
	if (ret)
		goto out;

	pid_t visible = t.pid, waitfor = t.pid;
	if (o->pidns) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) || unshare(CLONE_NEWPID)) {
			ret = -errno;
			pr_err("restore", "cannot create a pid namespace: %s", strerror(errno));
			goto out;
		}
		pid_t init = fork();
		if (init == 0) {
			close(p[0]);
			pidns_init(&t, p[1]);
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
		pr_info("restore", "PID %d restored in a new pid namespace (PID %d outside)", t.pid, visible);
	} else {
		ret = restore_one(&t);
		if (ret)
			goto out;
		pr_info("restore", "PID %d restored", t.pid);
	}
	plugins_restore_finish(1);
	started = false;
	if (o->pidfile)
		write_pidfile(o->pidfile, visible);
	if (!o->detach) {
		/* like criu restore without -d: wait and pass on the exit status */
		free_task(&t);
		img_store_close();
		exit(wait_exit_status(waitfor));
	}
out:
	if (started)
		plugins_restore_finish(0);
	free_task(&t);
	for (size_t i = 0; i < npst; i++)
		protobuf_c_message_free_unpacked(&pst[i]->base, NULL);
	free(pst);
	if (inv)
		protobuf_c_message_free_unpacked(&inv->base, NULL);
	img_store_close();
	return ret;
}
