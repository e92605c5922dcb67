/* SPDX-License-Identifier: GPL-2.0-only */
/* ckpt dump: seize, save, then kill (or leave running).  Any failure puts
 * the task back exactly as it was and detaches. */
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
#include "plugin.h"
#include "proc.h"
#include "progress.h"
#include "pstree.pb-c.h"
#include "ptrace.h"

#define SCRATCH_SIZE 4096

/* Precheck what this version cannot dump, before touching the task. */
static int dump_precheck(pid_t pid)
{
	struct proc_status st;
	char path[64], *buf;
	int ret;

	if (pid <= 0 || (kill(pid, 0) && errno == ESRCH)) {
		pr_err("dump", "no process with PID %d; check the -t argument", pid);
		return -ESRCH;
	}
	if (pid == getpid()) {
		pr_err("dump", "PID %d is ckpt itself", pid);
		return -EINVAL;
	}
	ret = proc_read_status(pid, &st);
	if (ret) {
		pr_err("dump", "cannot read /proc/%d/status: %s", pid, strerror(-ret));
		return ret;
	}
	if (st.nspid_last != pid) {
		pr_err("dump", "PID %d lives in a nested pid namespace (it sees itself as %d); run ckpt inside that namespace",
		       pid, st.nspid_last);
		return -ENOTSUP;
	}
	pid_t *tids;
	size_t ntids;
	ret = proc_list_threads(pid, &tids, &ntids);
	if (ret)
		return ret;
	free(tids);
	if (ntids != 1) {
		pr_err("dump", "PID %d has %zu threads; multi-threaded processes are not supported yet", pid, ntids);
		return -ENOTSUP;
	}
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	if (!proc_read_file(path, &buf, NULL)) {
		bool kids = buf[0] && buf[0] != '\n';
		free(buf);
		if (kids) {
			pr_err("dump", "PID %d has child processes; process trees are not supported yet", pid);
			return -ENOTSUP;
		}
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

static int write_pstree(pid_t pid)
{
	struct proc_stat st;
	int ret = proc_read_stat(pid, &st);
	if (ret)
		return ret;
	uint32_t tid = pid;
	Ckpt__PstreeEntry e = CKPT__PSTREE_ENTRY__INIT;
	e.has_pid = e.has_ppid = e.has_pgid = e.has_sid = 1;
	e.pid = pid;
	e.ppid = 0; /* the root */
	e.pgid = st.pgid;
	e.sid = st.sid;
	e.n_threads = 1;
	e.threads = &tid;
	return img_write_one("pstree.img", &e.base);
}

static int write_inventory(pid_t pid, const Ckpt__TaskCore *core)
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
	inv.root_pid = pid;
	inv.has_dump_time_ns = 1;
	inv.dump_time_ns = now.tv_sec * 1000000000ULL + now.tv_nsec;
	inv.has_page_size = 1;
	inv.page_size = getpagesize();
	if (core->n_threads && core->threads[0]->has_xstate) {
		inv.has_xcr0 = inv.has_xstate_size = 1;
		inv.xcr0 = xstate_features(&core->threads[0]->xstate);
		inv.xstate_size = core->threads[0]->xstate.len;
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
static int map_scratch(pid_t pid, struct inject *in, uint64_t *addr)
{
	struct proc_vmas vmas;
	int ret = proc_read_vmas(pid, &vmas);
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
		pr_err("dump", "PID %d: no room for a scratch page", pid);
		return ret;
	}
	long m = inject_do(in, "mmap scratch", SYS_mmap, hole, SCRATCH_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, (uint64_t)-1, 0);
	if (m < 0)
		return m;
	*addr = m;
	return 0;
}

int cmd_dump(const struct dump_opts *o)
{
	pid_t pid = o->pid;
	struct inject in = { 0 };
	bool seized = false, injecting = false, started = false;
	uint64_t scratch = 0;
	Ckpt__TaskCore *core = NULL;
	int ret;

	ret = dump_precheck(pid);
	if (ret)
		return ret;
	ret = img_store_open(o->dir, true);
	if (ret)
		return ret;
	unlinkat(img_store_dirfd(), "inventory.img", 0);

	progress_stage("dump", "plugins");
	ret = plugins_dump_start(pid);
	started = true;
	if (ret)
		goto fail;

	progress_stage("dump", "seizing");
	ret = ptrace_seize_stop(pid, false);
	if (ret) {
		if (ret != -EBUSY)
			pr_err("dump", "cannot seize PID %d: %s", pid, strerror(-ret));
		goto fail;
	}
	seized = true;
	ret = plugins_tree_frozen(pid);
	if (ret)
		goto fail;

	progress_stage("dump", "task state");
	uint64_t sysip;
	ret = inject_find_vdso_syscall(pid, &sysip);
	if (ret)
		goto fail;
	ret = inject_begin(&in, pid, sysip);
	if (ret) {
		pr_err("dump", "PID %d: cannot take over its registers: %s", pid, strerror(-ret));
		goto fail;
	}
	injecting = true;
	ret = map_scratch(pid, &in, &scratch);
	if (ret)
		goto fail;
	ret = dump_task_core(pid, &in, scratch, &core);
	if (ret)
		goto fail;
	long r = inject_do(&in, "munmap scratch", SYS_munmap, scratch, SCRATCH_SIZE, 0, 0, 0, 0);
	if (r < 0) {
		ret = r;
		goto fail;
	}
	scratch = 0;
	/* registers and mask go back now: the task must look untouched */
	ret = inject_end(&in);
	injecting = false;
	if (ret)
		goto fail;

	ret = write_pstree(pid);
	if (ret)
		goto fail;
	char name[64];
	snprintf(name, sizeof(name), "core-%d.img", pid);
	ret = img_write_one(name, &core->base);
	if (ret)
		goto fail;
	ret = dump_task_memory(pid, core->brk, 0, 0);
	if (ret)
		goto fail;
	progress_stage("dump", "files");
	ret = dump_task_files(pid);
	if (ret)
		goto fail;
	ret = plugins_dump_finish(1);
	started = false;
	if (ret)
		goto fail;
	ret = write_inventory(pid, core);
	if (ret)
		goto fail;
	progress_end();

	if (o->leave_running) {
		ptrace_detach(pid);
		pr_info("dump", "PID %d dumped to %s and left running", pid, o->dir);
	} else {
		kill(pid, SIGKILL);
		/* as its tracer we see it die: the PID is free once its parent reaps */
		int st;
		while (waitpid(pid, &st, __WALL) < 0 && errno == EINTR)
			;
		pr_info("dump", "PID %d dumped to %s and killed", pid, o->dir);
	}
	free_task_core(core);
	img_store_close();
	return 0;

fail:
	progress_end();
	if (injecting) {
		if (scratch)
			inject_do(&in, "munmap scratch", SYS_munmap, scratch, SCRATCH_SIZE, 0, 0, 0, 0);
		inject_end(&in);
	}
	if (seized)
		ptrace_detach(pid);
	if (started)
		plugins_dump_finish(0);
	unlinkat(img_store_dirfd(), "inventory.img", 0);
	free_task_core(core);
	img_store_close();
	pr_info("dump", "dump of PID %d failed; the process was left running", pid);
	return ret ? ret : -EIO;
}
