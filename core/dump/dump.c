/* SPDX-License-Identifier: GPL-2.0-only */
/* ckpt dump: seize the whole tree, save it, then kill it (or leave it
 * running).  Any failure puts every task back exactly as it was and
 * detaches. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dump.h"
#include "image.h"
#include "inventory.pb-c.h"
#include "log.h"
#include "pagecodec.h"
#include "plugin.h"
#include "proc.h"
#include "progress.h"
#include "pstree.pb-c.h"
#include "ptrace.h"
#include "track.h"

#define SCRATCH_SIZE 4096

struct dtree {
	struct dtask *t;
	size_t n;
	int own_pidns_levels; /* depth of our own pid namespace */
	bool root_pidns_init; /* the root is init of a pid namespace below ours */
};

static struct dtask *tree_find(struct dtree *tr, pid_t pid)
{
	for (size_t i = 0; i < tr->n; i++)
		if (tr->t[i].pid == pid)
			return &tr->t[i];
	return NULL;
}

static void free_tree(struct dtree *tr)
{
	for (size_t i = 0; i < tr->n; i++) {
		free(tr->t[i].tids);
		free(tr->t[i].vtids);
		free(tr->t[i].in);
		free_task_core(tr->t[i].core);
	}
	free(tr->t);
	memset(tr, 0, sizeof(*tr));
}

/* The pid a task sees for pid (last NSpid entry), and its depth. */
static int ns_pid(pid_t pid, pid_t *vpid, int *levels)
{
	struct proc_status st;
	int ret = proc_read_status(pid, &st);
	if (ret)
		return ret;
	*vpid = st.nspid_last;
	if (levels)
		*levels = st.nspid_levels;
	return 0;
}

static int add_task(struct dtree *tr, pid_t pid, pid_t ppid)
{
	struct dtask *nt = realloc(tr->t, (tr->n + 1) * sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	tr->t = nt;
	struct dtask *t = &tr->t[tr->n];
	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->ppid = ppid;
	struct proc_stat st;
	int ret = proc_read_stat(pid, &st);
	if (ret) {
		pr_err("dump", "PID %d vanished while the tree was being seized", pid);
		return ret;
	}
	t->zombie = st.state == 'Z';
	t->exit_code = st.exit_code;
	int levels;
	ret = ns_pid(pid, &t->vpid, &levels);
	if (ret)
		return ret;
	if (levels > tr->own_pidns_levels + (tr->root_pidns_init ? 1 : 0)) {
		pr_err("dump", "PID %d lives in a pid namespace nested below the tree's; nested pid namespaces are not supported yet",
		       pid);
		return -ENOTSUP;
	}
	tr->n++;
	return 0;
}

/* Seize every thread of t, until no new one appears. */
static int seize_threads(struct dtask *t)
{
	for (;;) {
		pid_t *tids;
		size_t n;
		int ret = proc_list_threads(t->pid, &tids, &n);
		if (ret)
			return ret;
		bool fresh = false;
		for (size_t i = 0; i < n; i++) {
			bool known = false;
			for (size_t k = 0; k < t->nseized; k++)
				known |= t->tids[k] == tids[i];
			if (known)
				continue;
			pid_t *nt = realloc(t->tids, (t->nseized + 1) * sizeof(*nt));
			if (!nt) {
				free(tids);
				return -ENOMEM;
			}
			t->tids = nt;
			ret = ptrace_seize_stop(tids[i], false);
			if (ret == -ESRCH)
				continue; /* exited meanwhile */
			if (ret) {
				if (ret != -EBUSY)
					pr_err("dump", "cannot seize thread %d of PID %d: %s", tids[i], t->pid,
					       strerror(-ret));
				free(tids);
				return ret;
			}
			t->tids[t->nseized++] = tids[i];
			fresh = true;
		}
		free(tids);
		if (!fresh)
			break;
	}
	/* main thread first */
	for (size_t i = 0; i < t->nseized; i++)
		if (t->tids[i] == t->pid) {
			t->tids[i] = t->tids[0];
			t->tids[0] = t->pid;
		}
	t->ntids = t->nseized;
	t->vtids = calloc(t->ntids, sizeof(pid_t));
	if (!t->vtids)
		return -ENOMEM;
	for (size_t i = 0; i < t->ntids; i++) {
		int ret = ns_pid(t->tids[i], &t->vtids[i], NULL);
		if (ret)
			return ret;
	}
	return 0;
}

/* Children of every thread of t. */
static int list_children(pid_t pid, pid_t **kids, size_t *n)
{
	pid_t *tids;
	size_t ntids, cnt = 0;
	pid_t *arr = NULL;
	int ret = proc_list_threads(pid, &tids, &ntids);
	if (ret)
		return ret;
	for (size_t i = 0; i < ntids; i++) {
		char path[96], *buf;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, tids[i]);
		if (proc_read_file(path, &buf, NULL))
			continue;
		for (char *p = buf; *p;) {
			char *end;
			long c = strtol(p, &end, 10);
			if (end == p)
				break;
			pid_t *na = realloc(arr, (cnt + 1) * sizeof(*na));
			if (!na) {
				free(buf);
				free(arr);
				free(tids);
				return -ENOMEM;
			}
			arr = na;
			arr[cnt++] = c;
			p = end;
		}
		free(buf);
	}
	free(tids);
	*kids = arr;
	*n = cnt;
	return 0;
}

/* Seize the tree breadth-first: a seized task cannot fork any more, so
 * once every task is seized the set of children is final. */
static int seize_tree(struct dtree *tr, pid_t root)
{
	int ret = add_task(tr, root, 0);
	if (ret)
		return ret;
	for (size_t i = 0; i < tr->n; i++) {
		struct dtask *t = &tr->t[i];
		if (!t->zombie) {
			ret = seize_threads(t);
			if (ret)
				return ret;
		} else {
			t->tids = calloc(1, sizeof(pid_t));
			t->vtids = calloc(1, sizeof(pid_t));
			if (!t->tids || !t->vtids)
				return -ENOMEM;
			t->tids[0] = t->pid;
			t->vtids[0] = t->vpid;
			t->ntids = 1;
			continue;
		}
		pid_t *kids;
		size_t nk;
		ret = list_children(t->pid, &kids, &nk);
		if (ret)
			return ret;
		for (size_t k = 0; k < nk && !ret; k++)
			if (!tree_find(tr, kids[k]))
				ret = add_task(tr, kids[k], tr->t[i].pid);
		free(kids);
		if (ret)
			return ret;
	}
	/* pgid and sid as the tasks see them */
	for (size_t i = 0; i < tr->n; i++) {
		struct proc_stat st;
		ret = proc_read_stat(tr->t[i].pid, &st);
		if (ret)
			return ret;
		tr->t[i].pgid = st.pgid;
		tr->t[i].sid = st.sid;
		if (tr->own_pidns_levels && tr->root_pidns_init) {
			/* /proc shows them in our namespace: translate */
			for (size_t k = 0; k < tr->n; k++) {
				if (tr->t[k].pid == st.pgid)
					tr->t[i].pgid = tr->t[k].vpid;
				if (tr->t[k].pid == st.sid)
					tr->t[i].sid = tr->t[k].vpid;
			}
		}
	}
	return 0;
}

static void release_tree(struct dtree *tr, bool kill_it)
{
	for (size_t i = 0; i < tr->n; i++) {
		struct dtask *t = &tr->t[i];
		for (size_t k = 0; k < t->ninjecting; k++)
			inject_end(&t->in[k]);
		t->ninjecting = 0;
	}
	if (kill_it)
		for (size_t i = 0; i < tr->n; i++)
			if (!tr->t[i].zombie)
				kill(tr->t[i].pid, SIGKILL);
	/* Children before parents, and a thread-group leader after its other
	 * threads: as tracer we must reap each death ourselves, and a dying
	 * leader (or pid namespace init) waits for those first. */
	for (size_t i = tr->n; i-- > 0;) {
		struct dtask *t = &tr->t[i];
		for (size_t k = t->nseized; k-- > 0;) {
			if (kill_it) {
				while (waitpid(t->tids[k], NULL, __WALL) < 0 && errno == EINTR)
					;
			} else {
				ptrace_detach(t->tids[k]);
			}
		}
		t->nseized = 0;
	}
}

static void set_plugin_tree(const struct dtree *tr)
{
	pid_t *pids = calloc(tr->n + 1, sizeof(pid_t));
	if (!pids)
		return;
	for (size_t i = 0; i < tr->n; i++)
		pids[i] = tr->t[i].pid;
	plugins_set_tree(pids, tr->n);
	free(pids);
}

static int dump_precheck(pid_t pid, struct dtree *tr)
{
	if (pid <= 0 || (kill(pid, 0) && errno == ESRCH)) {
		pr_err("dump", "no process with PID %d; check the -t argument", pid);
		return -ESRCH;
	}
	if (pid == getpid()) {
		pr_err("dump", "PID %d is ckpt itself", pid);
		return -EINVAL;
	}
	pid_t self_v, root_v;
	int self_levels, root_levels;
	int ret = ns_pid(getpid(), &self_v, &self_levels);
	if (!ret)
		ret = ns_pid(pid, &root_v, &root_levels);
	if (ret) {
		pr_err("dump", "cannot read /proc/%d/status: %s", pid, strerror(-ret));
		return ret;
	}
	tr->own_pidns_levels = self_levels;
	if (root_levels > self_levels) {
		if (root_v != 1 || root_levels != self_levels + 1) {
			pr_err("dump", "PID %d lives in a pid namespace (it sees itself as %d) but is not its init; dump the namespace's init or run ckpt inside the namespace",
			       pid, root_v);
			return -ENOTSUP;
		}
		tr->root_pidns_init = true;
	}
	return 0;
}

static uint64_t xstate_features(const ProtobufCBinaryData *xs)
{
	/* NT_X86_XSTATE: the first software-reserved word after the 464-byte
	 * fxsave part holds the kernel's XCR0 */
	uint64_t v = 0;
	if (xs->len >= 464 + 8)
		memcpy(&v, xs->data + 464, sizeof(v));
	return v;
}

static int write_pstree(struct dtree *tr)
{
	struct ckpt_img *img = img_create("pstree.img", "ckpt.PstreeEntry");
	int ret = 0;
	if (!img)
		return -errno;
	for (size_t i = 0; i < tr->n && !ret; i++) {
		struct dtask *t = &tr->t[i];
		struct dtask *parent = t->ppid ? tree_find(tr, t->ppid) : NULL;
		uint32_t *th = calloc(t->ntids, sizeof(*th));
		if (!th) {
			ret = -ENOMEM;
			break;
		}
		for (size_t k = 0; k < t->ntids; k++)
			th[k] = t->vtids[k];
		Ckpt__PstreeEntry e = CKPT__PSTREE_ENTRY__INIT;
		e.has_pid = e.has_ppid = e.has_pgid = e.has_sid = 1;
		e.pid = t->vpid;
		e.ppid = parent ? parent->vpid : 0;
		e.pgid = t->pgid;
		e.sid = t->sid;
		e.n_threads = t->ntids;
		e.threads = th;
		if (t->zombie) {
			e.has_zombie = e.has_exit_code = 1;
			e.zombie = true;
			e.exit_code = t->exit_code;
		}
		ret = img_write_msg(img, &e.base);
		free(th);
	}
	int r2 = img_close(img);
	return ret ? ret : r2;
}

static int write_inventory(struct dtree *tr)
{
	Ckpt__Inventory inv = CKPT__INVENTORY__INIT;
	struct utsname u;
	struct timespec now;
	Ckpt__PluginRef *refs = calloc(nplugins ? nplugins : 1, sizeof(*refs));
	Ckpt__PluginRef **prefs = calloc(nplugins ? nplugins : 1, sizeof(*prefs));
	int ret;

	if (!refs || !prefs) {
		ret = -ENOMEM;
		goto out;
	}
	uname(&u);
	clock_gettime(CLOCK_REALTIME, &now);
	inv.has_format_version = 1;
	inv.format_version = IMG_FORMAT_VERSION;
	inv.tool_version = CKPT_VERSION;
	inv.kernel = u.release;
	inv.arch = u.machine;
	inv.has_root_pid = 1;
	inv.root_pid = tr->t[0].vpid;
	inv.has_root_in_own_pidns = 1;
	inv.root_in_own_pidns = tr->root_pidns_init;
	inv.has_dump_time_ns = 1;
	inv.dump_time_ns = now.tv_sec * 1000000000ULL + now.tv_nsec;
	inv.has_page_size = 1;
	inv.page_size = getpagesize();
	inv.page_codec = (char *)pagecodec_dump_name();
	track_inventory(&inv);
	for (size_t i = 0; i < tr->n; i++) {
		const Ckpt__TaskCore *core = tr->t[i].core;
		if (core && core->n_threads && core->threads[0]->has_xstate) {
			inv.has_xcr0 = inv.has_xstate_size = 1;
			inv.xcr0 = xstate_features(&core->threads[0]->xstate);
			inv.xstate_size = core->threads[0]->xstate.len;
			break;
		}
	}
	for (size_t i = 0; i < nplugins; i++) {
		Ckpt__PluginRef *r = &refs[i];
		ckpt__plugin_ref__init(r);
		r->name = (char *)plugins[i].desc->name;
		r->version = (char *)plugins[i].desc->version;
		r->has_abi_major = r->has_abi_minor = r->has_required = 1;
		r->abi_major = plugins[i].desc->abi_major;
		r->abi_minor = plugins[i].desc->abi_minor;
		r->required = plugins[i].used;
		prefs[i] = r;
	}
	inv.n_plugins = nplugins;
	inv.plugins = prefs;
	ret = img_inventory_write(&inv);
out:
	free(refs);
	free(prefs);
	return ret;
}

/* Map a scratch page in the task, in a hole away from its mappings. */
static int map_scratch(struct dtask *t)
{
	struct proc_vmas vmas;
	int ret = proc_read_maps(t->pid, &vmas);
	if (ret)
		return ret;
	struct range *r = calloc(vmas.n + 1, sizeof(*r));
	if (!r) {
		proc_free_vmas(&vmas);
		return -ENOMEM;
	}
	for (size_t i = 0; i < vmas.n; i++)
		r[i] = (struct range){ vmas.v[i].start, vmas.v[i].end };
	uint64_t hole;
	ret = find_hole(r, vmas.n, 0x10000000, SCRATCH_SIZE, &hole);
	free(r);
	proc_free_vmas(&vmas);
	if (ret) {
		pr_err("dump", "PID %d: no room for a scratch page", t->pid);
		return ret;
	}
	long m = inject_do(&t->in[0], "mmap scratch", SYS_mmap, hole, SCRATCH_SIZE,
			   PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			   (uint64_t)-1, 0);
	if (m < 0)
		return m;
	t->scratch = m;
	return 0;
}

/* Everything a task can tell only through injected syscalls, then the
 * task is put back as it was (scratch page gone, registers restored). */
static int dump_task_state(struct dtask *t, bool is_root)
{
	uint64_t sysip;
	int ret = inject_find_vdso_syscall(t->pid, &sysip);
	if (ret)
		return ret;
	t->in = calloc(t->ntids, sizeof(*t->in));
	if (!t->in)
		return -ENOMEM;
	for (size_t i = 0; i < t->ntids; i++) {
		ret = inject_begin(&t->in[i], t->tids[i], sysip);
		if (ret) {
			pr_err("dump", "thread %d: cannot take over its registers: %s", t->tids[i],
			       strerror(-ret));
			return ret;
		}
		t->ninjecting++;
	}
	ret = map_scratch(t);
	if (ret)
		return ret;
	ret = dump_task_core(t, &t->core);
	if (!ret)
		ret = dump_posix_timers(t, t->core);
	if (!ret && is_root)
		ret = dump_namespaces(t, t->core);
	if (!ret && is_root)
		ret = dump_userns(t, t->core);
	if (!ret)
		ret = track_task(t);
	long r = inject_do(&t->in[0], "munmap scratch", SYS_munmap, t->scratch, SCRATCH_SIZE, 0, 0,
			   0, 0);
	if (!ret && r < 0)
		ret = r;
	t->scratch = 0;
	/* registers and masks go back now: the task must look untouched */
	for (size_t i = 0; i < t->ninjecting; i++) {
		int r2 = inject_end(&t->in[i]);
		if (!ret)
			ret = r2;
	}
	t->ninjecting = 0;
	return ret;
}

/* From the seize to the release (or kill) of the tree. */
static void log_frozen(const struct timespec *from)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pr_info("dump", "the tree was frozen for %.1f ms",
		(now.tv_sec - from->tv_sec) * 1e3 + (now.tv_nsec - from->tv_nsec) / 1e6);
}

/* SIGINT, SIGTERM or SIGHUP while the tree is seized: stop at the next
 * step and take the failure path (network unlocked, TCP repair undone,
 * tree detached as it was) instead of dying with the tree in our hands. */
static volatile sig_atomic_t stop_signal;
static bool stop_reported, stop_ignored;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

int dump_interrupted(void)
{
	int sig = stop_signal;

	if (!sig || stop_ignored)
		return 0;
	if (!stop_reported)
		pr_err("dump", "interrupted by SIG%s; the tree is left running as it was",
		       sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
	stop_reported = true;
	return -EINTR;
}

static int dump_run(const struct dump_opts *o);

int cmd_dump(const struct dump_opts *o)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	struct sigaction sa = { .sa_handler = on_stop_signal, .sa_flags = SA_RESTART }, old[3];

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);
	int ret = dump_run(o);
	for (size_t i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	return ret;
}

static int dump_run(const struct dump_opts *o)
{
	struct dtree tr = { 0 };
	bool started = false, leave_running = o->leave_running || o->pre_dump;
	int ret;

	ret = dump_precheck(o->pid, &tr);
	if (ret)
		return ret;
	ret = track_begin(o);
	if (ret) {
		track_end();
		return ret;
	}
	ret = img_store_open(o->dir, true);
	if (ret) {
		track_end();
		return ret;
	}
	unlinkat(img_store_dirfd(), "inventory.img", 0);
	unlinkat(img_store_dirfd(), IMG_SENT_INVENTORY, 0);
	ret = track_link_parent();
	if (ret)
		goto fail;

	dump_note_home_namespaces();
	/* a pre-dump saves memory only: the plugins' objects wait for the dump */
	if (!o->pre_dump) {
		progress_stage("dump", "plugins");
		ret = plugins_dump_start(o->pid);
		started = true;
		if (ret)
			goto fail;
	}

	progress_stage("dump", "seizing");
	struct timespec frozen_at;
	clock_gettime(CLOCK_MONOTONIC, &frozen_at);
	ret = seize_tree(&tr, o->pid);
	if (!ret)
		ret = dump_interrupted();
	if (ret)
		goto fail;
	if (!o->pre_dump) {
		set_plugin_tree(&tr);
		ret = plugins_tree_frozen(o->pid);
		if (ret)
			goto fail;
	}

	progress_stage("dump", "task state");
	for (size_t i = 0; i < tr.n; i++) {
		if (tr.t[i].zombie)
			continue;
		ret = dump_interrupted();
		if (!ret)
			ret = dump_check_namespaces(&tr.t[0], &tr.t[i]);
		if (!ret)
			ret = dump_task_state(&tr.t[i], i == 0);
		if (ret)
			goto fail;
	}
	if (tr.t[0].core->own_ipc) {
		progress_stage("dump", "ipc namespace");
		ret = dump_ipc_ns(tr.t[0].pid);
		if (ret)
			goto fail;
	}
	ret = write_pstree(&tr);
	if (ret)
		goto fail;
	cow_begin(tr.n > 1 && !o->pre_dump); /* a pre-dump copies later */
	for (size_t i = 0; i < tr.n; i++) {
		struct dtask *t = &tr.t[i];
		char name[64];
		if (t->zombie)
			continue;
		if (!o->pre_dump) {
			snprintf(name, sizeof(name), "core-%d.img", t->vpid);
			ret = img_write_one(name, &t->core->base);
			if (ret)
				goto fail;
		}
		ret = dump_task_memory(t->pid, t->vpid, t->core->brk);
		if (ret)
			goto fail;
		if (o->pre_dump)
			continue;
		ret = dump_task_files(t->pid, t->vpid);
		if (!ret)
			ret = dump_interrupted();
		if (ret)
			goto fail;
	}
	cow_end();
	if (!o->pre_dump) {
		progress_stage("dump", "plugins");
		/* 1: the tree is killed next; 2: it keeps running (-R) */
		ret = plugins_dump_finish(leave_running ? 2 : 1);
		started = false;
		if (ret)
			goto fail;
	}
	if (o->pre_dump) {
		/* the pages are copied while the tree runs again */
		release_tree(&tr, false);
		log_frozen(&frozen_at);
		ret = dump_memory_deferred(true);
		if (ret)
			goto fail;
	}
	ret = dump_interrupted();
	if (!ret)
		ret = write_inventory(&tr);
	if (!ret)
		ret = track_commit();
	if (ret)
		goto fail;
	stop_ignored = true; /* committed: the rest is quick and finishes */
	progress_end();

	release_tree(&tr, !leave_running);
	if (!o->pre_dump)
		log_frozen(&frozen_at);
	track_end();
	if (!o->pre_dump)
		plugins_dump_released(o->pid, leave_running ? 2 : 1);
	plugins_set_tree(NULL, 0);
	pr_info("dump", "%zu process(es) of PID %d %s to %s%s", tr.n, o->pid,
		o->pre_dump ? "pre-dumped" : "dumped", o->dir,
		leave_running ? " and left running" : " and killed");
	free_tree(&tr);
	img_store_close();
	return 0;

fail:
	cow_end();
	progress_end();
	/* plugins undo their part (TCP repair mode...) before the tree runs */
	if (started)
		plugins_dump_finish(0);
	release_tree(&tr, false);
	dump_memory_deferred(false);
	track_end();
	if (!o->pre_dump)
		plugins_dump_released(o->pid, 0);
	plugins_set_tree(NULL, 0);
	unlinkat(img_store_dirfd(), "inventory.img", 0);
	unlinkat(img_store_dirfd(), IMG_SENT_INVENTORY, 0);
	free_tree(&tr);
	img_store_close();
	pr_info("dump", "dump of PID %d failed; the tree was left running", o->pid);
	return ret ? ret : -EIO;
}
