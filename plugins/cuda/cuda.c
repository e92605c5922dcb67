// SPDX-License-Identifier: GPL-2.0-only
/*
 * cuda plugin: checkpoint and restore of processes that use an NVIDIA GPU
 * through CUDA, with the driver's own checkpoint API (cuCheckpointProcess*,
 * driver 550+).
 *
 * The driver does the work in a thread of the target process, which cannot
 * run while ckpt holds the tree under ptrace.  So every driver call is made
 * while the tree runs:
 *
 *   dump_start      every process of the tree (found from /proc, the core
 *                   has not seized it yet) whose CUDA state is RUNNING is
 *                   locked (lock_timeout_ms), then each is checkpointed: its
 *                   GPU memory is copied into its own host memory and its GPU
 *                   resources are released, so the core dumps it like any
 *                   other process.
 *   tree_frozen     refuses a process that joined the tree since dump_start
 *                   and maps libcuda (its GPU state was not saved).
 *   dump_finish     writes cuda.img (one record per CUDA process) when the
 *                   dump worked and there is such a process; writing it makes
 *                   the plugin needed for the restore.
 *   dump_released   dump -R (2) or a failed dump (0): each process is
 *                   restored and unlocked again so it carries on; killed (1):
 *                   nothing left to do.
 *   restore_start   reads cuda.img; a dump with CUDA processes needs libcuda.
 *   restore_finish  the restored tree runs (its CUDA calls block on the
 *                   lock): each process, found again by its pid in its own
 *                   pid namespace (works with --pidns), is restored (GPU
 *                   memory back; cuInit in ckpt first, init_driver), then
 *                   each is unlocked.
 *
 * A process that does not use CUDA is left alone (cuCheckpointProcessGetState
 * fails for it).  libcuda is opened only when a hook needs it.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <protobuf-c/protobuf-c.h>

#include "ckpt-plugin.h"
#include "cuda.pb-c.h"
#include "cuda_plugin.h"

#define CUDA_IMG "cuda.img"
#define DEF_LIBRARY "libcuda.so.1"
#define DEF_LOCK_TIMEOUT_MS 10000U

struct cuda_proc {
	pid_t pid;   /* in ckpt's pid namespace */
	pid_t nspid; /* in the process's own pid namespace */
	int orig;    /* CUDA state found at dump_start (saved in cuda.img) */
	int cur;     /* what it is now, as far as the plugin knows */
	bool uncertain; /* a driver call failed: ask the driver before undoing */
	int restore_tid;
};

struct pidv {
	pid_t *v;
	size_t n, cap;
};

struct cuda_priv {
	const struct ckpt_host *host;
	struct cuda_drv drv;
	char *library;
	unsigned int lock_timeout_ms;
	bool init_driver; /* cuInit before restoring */

	struct cuda_proc *procs; /* dump: CUDA processes; restore: cuda.img */
	size_t nprocs, cap;
	struct pidv seen; /* dump: every process dump_start looked at */
};

#define cuda_log(p, lvl, ...) (p)->host->log(CUDA_NAME, lvl, __VA_ARGS__)
#define cuda_err(p, ...) cuda_log(p, CKPT_LOG_ERROR, __VA_ARGS__)
#define cuda_info(p, ...) cuda_log(p, CKPT_LOG_INFO, __VA_ARGS__)
#define cuda_dbg(p, ...) cuda_log(p, CKPT_LOG_DEBUG, __VA_ARGS__)

/* ---- small helpers ----------------------------------------------------------- */

static bool pidv_has(const struct pidv *a, pid_t p)
{
	for (size_t i = 0; i < a->n; i++)
		if (a->v[i] == p)
			return true;
	return false;
}

static int pidv_add(struct pidv *a, pid_t p)
{
	if (pidv_has(a, p))
		return 0;
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 32;
		pid_t *n = realloc(a->v, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		a->v = n;
		a->cap = ncap;
	}
	a->v[a->n++] = p;
	return 0;
}

static void pidv_free(struct pidv *a)
{
	free(a->v);
	memset(a, 0, sizeof(*a));
}

static bool is_pid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* Children of every thread of pid, from /proc/PID/task/TID/children.
 * -ENOENT when the kernel has no such files (CONFIG_PROC_CHILDREN). */
static int add_children(pid_t pid, struct pidv *out)
{
	char path[64];
	struct dirent *de;
	bool any = false;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? -ESRCH : -errno;
	while (!ret && (de = readdir(d))) {
		char cpath[96];
		FILE *f;
		int c, tid;

		if (!is_pid_name(de->d_name))
			continue;
		tid = atoi(de->d_name);
		snprintf(cpath, sizeof(cpath), "/proc/%d/task/%d/children", (int)pid, tid);
		f = fopen(cpath, "re");
		if (!f) {
			if (errno == ENOENT && !any) {
				/* the thread may just have exited: tell that from a
				 * kernel without the file by the thread's directory */
				char tpath[80];
				DIR *t;

				snprintf(tpath, sizeof(tpath), "/proc/%d/task/%d", (int)pid, tid);
				t = opendir(tpath);
				if (t) {
					closedir(t);
					ret = -ENOENT;
				}
			}
			continue;
		}
		any = true;
		while (!ret && fscanf(f, "%d", &c) == 1)
			ret = pidv_add(out, (pid_t)c);
		fclose(f);
	}
	closedir(d);
	return ret;
}

/* Parent of pid from /proc/PID/stat, -1 when unknown. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;
	int ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
		return -1;
	return (pid_t)ppid;
}

/* Add the descendants of every process in out by parent links, for kernels
 * without children files. */
static int walk_by_scan(struct pidv *out)
{
	struct pidv all = { 0 }, parents = { 0 };
	struct dirent *de;
	DIR *d;
	int ret = 0;

	d = opendir("/proc");
	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		pid_t pid, pp;

		if (!is_pid_name(de->d_name))
			continue;
		pid = (pid_t)atoi(de->d_name);
		pp = parent_of(pid);
		if (pp < 0)
			continue;
		/* parallel arrays; pidv_add would drop repeated parents */
		if (all.n == all.cap) {
			size_t ncap = all.cap ? all.cap * 2 : 256;
			pid_t *a = realloc(all.v, ncap * sizeof(pid_t));
			pid_t *b = a ? realloc(parents.v, ncap * sizeof(pid_t)) : NULL;

			if (a)
				all.v = a;
			if (b)
				parents.v = b;
			if (!a || !b) {
				ret = -ENOMEM;
				break;
			}
			all.cap = parents.cap = ncap;
		}
		all.v[all.n++] = pid;
		parents.v[parents.n++] = pp;
	}
	closedir(d);
	for (size_t i = 0; !ret && i < out->n; i++) /* out grows while we go */
		for (size_t k = 0; !ret && k < all.n; k++)
			if (parents.v[k] == out->v[i])
				ret = pidv_add(out, all.v[k]);
	free(all.v);
	free(parents.v);
	return ret;
}

/* root and all its descendants (added to out), parents before children. */
static int walk_tree(pid_t root, struct pidv *out)
{
	int ret = pidv_add(out, root);

	for (size_t i = 0; !ret && i < out->n; i++) {
		ret = add_children(out->v[i], out);
		if (ret == -ESRCH && i > 0)
			ret = 0; /* exited meanwhile */
		if (ret == -ENOENT)
			return walk_by_scan(out);
	}
	return ret;
}

/* The pid of pid in its own pid namespace (last NSpid field). */
static pid_t own_nspid(pid_t pid)
{
	char path[64], line[256];
	pid_t last = pid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *s, *end;

		if (strncmp(line, "NSpid:", 6))
			continue;
		for (s = line + 6;; s = end) {
			long v = strtol(s, &end, 10);

			if (end == s)
				break;
			last = (pid_t)v;
		}
		break;
	}
	fclose(f);
	return last;
}

/* Whether /proc/PID/maps maps a file whose path contains what. */
static bool maps_mention(pid_t pid, const char *what)
{
	char path[64], line[4096 + 256];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, what) != NULL;
	fclose(f);
	return found;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000L + (t.tv_nsec - t0->tv_nsec) / 1000000L;
}

/* Whether the NVIDIA kernel driver is here. */
static bool nvidia_kernel_driver(void)
{
	return access("/proc/driver/nvidia/version", F_OK) == 0 || access("/dev/nvidiactl", F_OK) == 0;
}

/* ---- config and driver ------------------------------------------------------- */

static bool parse_bool(const char *s, bool def)
{
	if (!s || !*s)
		return def;
	if (!strcasecmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on"))
		return true;
	if (!strcasecmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off"))
		return false;
	return def;
}

static void read_config(struct cuda_priv *p)
{
	const char *v = NULL;
	char *end;

	if (p->host->config_get)
		v = p->host->config_get(CUDA_NAME, "library");
	free(p->library);
	p->library = strdup(v && *v ? v : DEF_LIBRARY);

	v = NULL;
	if (p->host->config_get)
		v = p->host->config_get(CUDA_NAME, "lock_timeout_ms");
	p->lock_timeout_ms = DEF_LOCK_TIMEOUT_MS;
	if (v && *v) {
		long long t;

		errno = 0;
		t = strtoll(v, &end, 10);
		if (!errno && !*end && t >= 0 && t <= (long long)UINT_MAX)
			p->lock_timeout_ms = (unsigned int)t;
		else
			cuda_info(p, "lock_timeout_ms \"%s\" is out of range; using %u", v,
				  DEF_LOCK_TIMEOUT_MS);
	}

	v = NULL;
	if (p->host->config_get)
		v = p->host->config_get(CUDA_NAME, "init_driver");
	p->init_driver = parse_bool(v, true);
}


static int load_driver(struct cuda_priv *p, char *why, size_t len)
{
	int ret;

	if (!p->library)
		return -ENOMEM;
	ret = cuda_drv_load(&p->drv, p->library, why, len);
	if (!ret)
		cuda_dbg(p, "%s loaded (CUDA driver API %d)", p->library, p->drv.version);
	return ret;
}

static const char *cerr(const struct cuda_priv *p, CUresult r, char *buf, size_t len)
{
	return cuda_drv_strerror(&p->drv, r, buf, len);
}

/* Before the first cuCheckpointProcessRestore: the checkpointed processes
 * hold no GPU resources, so without persistence mode the GPU may have been
 * torn down; a cuInit here brings it up.  A failure is only logged: with
 * persistence mode the restore works without it. */
static void init_for_restore(struct cuda_priv *p)
{
	char e[256];
	CUresult r;

	if (!p->init_driver || p->drv.initialized)
		return;
	r = cuda_drv_init(&p->drv);
	if (r != CUDA_SUCCESS)
		cuda_info(p, "cuInit failed (%s); the restore needs persistence mode then",
			  cerr(p, r, e, sizeof(e)));
	else
		cuda_dbg(p, "cuInit done");
}

static int errno_of(CUresult r)
{
	switch ((int)r) {
	case CUDA_ERROR_TIMEOUT:
		return -ETIMEDOUT;
	case CUDA_ERROR_OUT_OF_MEMORY:
		return -ENOMEM;
	case CUDA_ERROR_NOT_SUPPORTED:
		return -ENOTSUP;
	case CUDA_ERROR_INVALID_VALUE:
		return -EINVAL;
	}
	return -EIO;
}

/* ---- the list of CUDA processes ---------------------------------------------- */

static struct cuda_proc *proc_add(struct cuda_priv *p, pid_t pid)
{
	struct cuda_proc *c;

	if (p->nprocs == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 8;
		struct cuda_proc *n = realloc(p->procs, ncap * sizeof(*n));

		if (!n)
			return NULL;
		p->procs = n;
		p->cap = ncap;
	}
	c = &p->procs[p->nprocs++];
	memset(c, 0, sizeof(*c));
	c->pid = pid;
	c->nspid = pid;
	c->restore_tid = -1;
	return c;
}

static void procs_clear(struct cuda_priv *p)
{
	free(p->procs);
	p->procs = NULL;
	p->nprocs = p->cap = 0;
}

/* Ask the driver where a process stands after a failed call. */
static void refresh(struct cuda_priv *p, struct cuda_proc *c)
{
	int st;

	if (!c->uncertain)
		return;
	if (cuda_drv_get_state(&p->drv, c->pid, &st) == CUDA_SUCCESS) {
		c->cur = st;
		c->uncertain = false;
	}
}

/* Back to the state found at dump_start: restore what was checkpointed,
 * unlock what was locked.  Every process is tried; the first error is
 * logged as an error and returned, the others go to the log. */
static int undo_all(struct cuda_priv *p, const char *why)
{
	char e[256];
	int ret = 0;

	for (size_t i = 0; i < p->nprocs; i++) {
		struct cuda_proc *c = &p->procs[i];
		CUresult r;

		refresh(p, c);
		if (c->cur != CU_PROCESS_STATE_CHECKPOINTED || c->orig == CU_PROCESS_STATE_CHECKPOINTED)
			continue;
		init_for_restore(p);
		r = cuda_drv_restore(&p->drv, c->pid);
		if (r != CUDA_SUCCESS) {
			cuda_log(p, ret ? CKPT_LOG_INFO : CKPT_LOG_ERROR,
				 "PID %d: cannot restore its CUDA state after %s: %s", (int)c->pid, why,
				 cerr(p, r, e, sizeof(e)));
			c->uncertain = true;
			if (!ret)
				ret = errno_of(r);
			continue;
		}
		c->cur = CU_PROCESS_STATE_LOCKED;
	}
	for (size_t i = 0; i < p->nprocs; i++) {
		struct cuda_proc *c = &p->procs[i];
		CUresult r;

		refresh(p, c);
		if (c->cur != CU_PROCESS_STATE_LOCKED || c->orig != CU_PROCESS_STATE_RUNNING)
			continue;
		r = cuda_drv_unlock(&p->drv, c->pid);
		if (r != CUDA_SUCCESS) {
			cuda_log(p, ret ? CKPT_LOG_INFO : CKPT_LOG_ERROR,
				 "PID %d: cannot unlock its CUDA state after %s: %s", (int)c->pid, why,
				 cerr(p, r, e, sizeof(e)));
			c->uncertain = true;
			if (!ret)
				ret = errno_of(r);
			continue;
		}
		c->cur = CU_PROCESS_STATE_RUNNING;
		cuda_info(p, "PID %d: CUDA restored and unlocked after %s", (int)c->pid, why);
	}
	return ret;
}

/* ---- dump ------------------------------------------------------------------ */

static int cuda_dump_start(void *priv, pid_t root)
{
	struct cuda_priv *p = priv;
	char why[512], e[256];
	struct timespec t0;
	int ret;

	procs_clear(p);
	pidv_free(&p->seen);
	read_config(p);

	ret = load_driver(p, why, sizeof(why));
	if (ret && !nvidia_kernel_driver()) {
		/* no driver at all: no process can have GPU state */
		cuda_dbg(p, "no NVIDIA driver: no CUDA process to handle (%s)", why);
		return 0;
	}

	ret = walk_tree(root, &p->seen);
	if (ret) {
		cuda_err(p, "cannot list the processes of the tree of PID %d: %s", (int)root,
			 strerror(-ret));
		return ret;
	}

	if (!cuda_drv_loaded(&p->drv)) {
		/* a kernel driver but no usable libcuda: fine unless a process
		 * of the tree uses one we cannot drive */
		for (size_t i = 0; i < p->seen.n; i++) {
			if (maps_mention(p->seen.v[i], "/libcuda.so")) {
				cuda_err(p, "PID %d uses libcuda, but its GPU state cannot be saved: %s",
					 (int)p->seen.v[i], why);
				return -ENOTSUP;
			}
		}
		cuda_dbg(p, "no CUDA process to handle (%s)", why);
		return 0;
	}

	for (size_t i = 0; i < p->seen.n; i++) {
		pid_t pid = p->seen.v[i];
		struct cuda_proc *c;
		int st;
		CUresult r = cuda_drv_get_state(&p->drv, pid, &st);

		if (r != CUDA_SUCCESS) {
			/* a process that only loaded libcuda has no state either;
			 * say so where it would help to understand a failure later */
			cuda_log(p, maps_mention(pid, "/libcuda.so") ? CKPT_LOG_INFO : CKPT_LOG_DEBUG,
				 "PID %d: no CUDA state (%s)", (int)pid, cerr(p, r, e, sizeof(e)));
			continue;
		}
		if (st == CU_PROCESS_STATE_FAILED) {
			cuda_err(p, "PID %d: its CUDA state is FAILED (an earlier checkpoint or restore "
				    "broke it); it cannot be dumped",
				 (int)pid);
			return -EIO;
		}
		if (st != CU_PROCESS_STATE_RUNNING && st != CU_PROCESS_STATE_LOCKED &&
		    st != CU_PROCESS_STATE_CHECKPOINTED) {
			cuda_err(p, "PID %d: unknown CUDA process state %d", (int)pid, st);
			return -EIO;
		}
		c = proc_add(p, pid);
		if (!c)
			return -ENOMEM;
		c->orig = c->cur = st;
		c->nspid = own_nspid(pid);
		if (c->nspid <= 0)
			c->nspid = pid;
		if (cuda_drv_restore_tid(&p->drv, pid, &c->restore_tid) != CUDA_SUCCESS)
			c->restore_tid = -1;
		cuda_info(p, "PID %d: CUDA process, state %s, restore thread %d", (int)pid,
			  cuda_state_name(st), c->restore_tid);
	}

	/* lock them all first: processes that share GPU work must all have
	 * stopped submitting before any of them is checkpointed */
	for (size_t i = 0; i < p->nprocs; i++) {
		struct cuda_proc *c = &p->procs[i];
		CUresult r;

		if (c->cur != CU_PROCESS_STATE_RUNNING)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = cuda_drv_lock(&p->drv, c->pid, p->lock_timeout_ms);
		if (r != CUDA_SUCCESS) {
			c->uncertain = true;
			if ((int)r == CUDA_ERROR_TIMEOUT)
				cuda_err(p, "PID %d: CUDA lock timed out after %u ms (lock_timeout_ms): %s",
					 (int)c->pid, p->lock_timeout_ms, cerr(p, r, e, sizeof(e)));
			else
				cuda_err(p, "PID %d: cannot lock its CUDA state: %s", (int)c->pid,
					 cerr(p, r, e, sizeof(e)));
			return errno_of(r);
		}
		c->cur = CU_PROCESS_STATE_LOCKED;
		cuda_info(p, "PID %d: CUDA locked in %ld ms", (int)c->pid, ms_since(&t0));
	}
	for (size_t i = 0; i < p->nprocs; i++) {
		struct cuda_proc *c = &p->procs[i];
		CUresult r;

		if (c->cur != CU_PROCESS_STATE_LOCKED)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = cuda_drv_checkpoint(&p->drv, c->pid);
		if (r != CUDA_SUCCESS) {
			c->uncertain = true;
			cuda_err(p, "PID %d: cannot checkpoint its CUDA state: %s", (int)c->pid,
				 cerr(p, r, e, sizeof(e)));
			return errno_of(r);
		}
		c->cur = CU_PROCESS_STATE_CHECKPOINTED;
		cuda_info(p, "PID %d: CUDA checkpointed in %ld ms (its GPU memory is in host memory)",
			  (int)c->pid, ms_since(&t0));
	}
	return 0;
}

static int cuda_tree_frozen(void *priv, pid_t root)
{
	struct cuda_priv *p = priv;
	pid_t *pids;
	size_t n;

	(void)root;
	if (!cuda_drv_loaded(&p->drv) || !p->seen.n || !p->host->tree_pids || p->host->version < 3)
		return 0;
	n = p->host->tree_pids(NULL, 0);
	if (!n)
		return 0;
	pids = calloc(n, sizeof(*pids));
	if (!pids)
		return -ENOMEM;
	n = p->host->tree_pids(pids, n);
	for (size_t i = 0; i < n; i++) {
		if (pidv_has(&p->seen, pids[i]) || !maps_mention(pids[i], "/libcuda.so"))
			continue;
		cuda_err(p, "PID %d joined the tree after its CUDA processes were checkpointed and "
			    "uses libcuda; dump again",
			 (int)pids[i]);
		free(pids);
		return -EAGAIN;
	}
	free(pids);
	return 0;
}

static int write_image(struct cuda_priv *p)
{
	struct ckpt_img *img;
	int ret = 0;

	img = p->host->img_create(CUDA_IMG, ckpt__cuda__cuda_process__descriptor.name);
	if (!img) {
		ret = -errno;
		cuda_err(p, "cannot create %s: %s", CUDA_IMG, strerror(errno));
		return ret ? ret : -EIO;
	}
	for (size_t i = 0; !ret && i < p->nprocs; i++) {
		const struct cuda_proc *c = &p->procs[i];
		Ckpt__Cuda__CudaProcess rec = CKPT__CUDA__CUDA_PROCESS__INIT;

		rec.pid = (uint32_t)c->pid;
		rec.has_nspid = true;
		rec.nspid = (uint32_t)c->nspid;
		rec.state = (Ckpt__Cuda__CudaState)c->orig;
		if (c->restore_tid > 0) {
			rec.has_restore_tid = true;
			rec.restore_tid = c->restore_tid;
		}
		if (p->drv.version) {
			rec.has_driver_version = true;
			rec.driver_version = p->drv.version;
		}
		ret = p->host->img_write_msg(img, &rec.base);
	}
	if (ret) {
		cuda_err(p, "cannot write %s: %s", CUDA_IMG, strerror(-ret));
		p->host->img_close(img);
		return ret;
	}
	ret = p->host->img_close(img);
	if (ret)
		cuda_err(p, "cannot write %s: %s", CUDA_IMG, strerror(-ret));
	return ret;
}

static int cuda_dump_finish(void *priv, int ok)
{
	struct cuda_priv *p = priv;

	if (!ok || !p->nprocs)
		return 0;
	return write_image(p);
}

static int cuda_dump_released(void *priv, pid_t root, int ok)
{
	struct cuda_priv *p = priv;
	int ret = 0;

	(void)root;
	if (ok != 1 && p->nprocs)
		ret = undo_all(p, ok == 2 ? "the dump (left running)" : "the failed dump");
	procs_clear(p);
	pidv_free(&p->seen);
	return ret;
}

/* ---- restore ----------------------------------------------------------------- */

static int cuda_restore_start(void *priv)
{
	struct cuda_priv *p = priv;
	ProtobufCMessage **recs = NULL;
	size_t n = 0;
	char why[512];
	int ret;

	procs_clear(p);
	ret = p->host->img_load(CUDA_IMG, &ckpt__cuda__cuda_process__descriptor, &recs, &n);
	if (ret)
		return ret; /* the host said why */
	for (size_t i = 0; !ret && i < n; i++) {
		const Ckpt__Cuda__CudaProcess *r = (const Ckpt__Cuda__CudaProcess *)recs[i];
		struct cuda_proc *c = proc_add(p, (pid_t)r->pid);

		if (!c) {
			ret = -ENOMEM;
			break;
		}
		c->nspid = r->has_nspid && r->nspid ? (pid_t)r->nspid : (pid_t)r->pid;
		c->orig = (int)r->state;
		c->cur = CU_PROCESS_STATE_CHECKPOINTED; /* what its memory says */
		c->restore_tid = r->has_restore_tid ? r->restore_tid : -1;
	}
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(recs[i], NULL);
	free(recs);
	if (ret || !p->nprocs)
		return ret;

	read_config(p);
	ret = load_driver(p, why, sizeof(why));
	if (ret) {
		cuda_err(p, "the images hold %zu CUDA process(es) (PID %d%s), which need the NVIDIA "
			    "driver: %s",
			 p->nprocs, (int)p->procs[0].pid, p->nprocs > 1 ? " ..." : "", why);
		procs_clear(p);
		return ret;
	}
	cuda_info(p, "%zu CUDA process(es) to restore", p->nprocs);
	return 0;
}

struct cand {
	pid_t pid, nspid;
};

/* Where each process of cuda.img is now, as a pid of ckpt's namespace.
 * The restored processes keep their pids in their own pid namespace, so
 * they are matched by that (NSpid) among the restored tree: the core's
 * tree_pids, and the descendants of its root (with --pidns the core only
 * knows the root). */
static int map_pids(struct cuda_priv *p)
{
	struct pidv tree = { 0 };
	struct cand *cands = NULL;
	size_t n = 0;
	int ret = 0;

	if (p->host->tree_pids && p->host->version >= 3)
		n = p->host->tree_pids(NULL, 0);
	if (!n) {
		/* an older host: the pids are the dumped ones */
		cuda_dbg(p, "no restored tree known; using the dumped pids");
		return 0;
	}
	tree.v = calloc(n, sizeof(pid_t));
	if (!tree.v)
		return -ENOMEM;
	tree.cap = n;
	tree.n = p->host->tree_pids(tree.v, n);
	if (tree.n > n)
		tree.n = n;
	ret = walk_tree(tree.v[0], &tree);
	if (ret) {
		cuda_err(p, "cannot list the restored tree of PID %d: %s", (int)tree.v[0],
			 strerror(-ret));
		pidv_free(&tree);
		return ret;
	}
	cands = calloc(tree.n, sizeof(*cands));
	if (!cands) {
		pidv_free(&tree);
		return -ENOMEM;
	}
	for (size_t i = 0; i < tree.n; i++) {
		cands[i].pid = tree.v[i];
		cands[i].nspid = own_nspid(tree.v[i]);
	}
	for (size_t i = 0; !ret && i < p->nprocs; i++) {
		struct cuda_proc *c = &p->procs[i];
		pid_t found = -1;

		for (size_t k = 0; k < tree.n; k++) {
			if (cands[k].nspid != c->nspid)
				continue;
			/* the same pid in two nested namespaces: prefer the
			 * one that kept its pid here too */
			if (found < 0 || cands[k].pid == c->pid)
				found = cands[k].pid;
		}
		if (found < 0) {
			cuda_err(p, "PID %d (CUDA process) is not in the restored tree", (int)c->pid);
			ret = -ESRCH;
			break;
		}
		if (found != c->pid)
			cuda_info(p, "PID %d is PID %d here", (int)c->pid, (int)found);
		c->pid = found;
	}
	free(cands);
	pidv_free(&tree);
	return ret;
}

static int cuda_restore_finish(void *priv, int ok)
{
	struct cuda_priv *p = priv;
	struct timespec t0;
	char e[256];
	int ret = 0;

	if (!ok || !p->nprocs) {
		procs_clear(p);
		return 0;
	}
	ret = map_pids(p);
	if (ret) {
		procs_clear(p);
		return ret;
	}
	/* GPU memory back for all of them, then let them run again */
	for (size_t i = 0; i < p->nprocs; i++) {
		struct cuda_proc *c = &p->procs[i];
		CUresult r;

		if (c->orig == CU_PROCESS_STATE_CHECKPOINTED)
			continue; /* it was checkpointed before the dump: leave it so */
		init_for_restore(p);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = cuda_drv_restore(&p->drv, c->pid);
		if (r != CUDA_SUCCESS) {
			cuda_log(p, ret ? CKPT_LOG_INFO : CKPT_LOG_ERROR,
				 "PID %d: cannot restore its CUDA state: %s", (int)c->pid,
				 cerr(p, r, e, sizeof(e)));
			if (!ret)
				ret = errno_of(r);
			continue;
		}
		c->cur = CU_PROCESS_STATE_LOCKED;
		cuda_info(p, "PID %d: CUDA restored in %ld ms", (int)c->pid, ms_since(&t0));
	}
	for (size_t i = 0; i < p->nprocs; i++) {
		struct cuda_proc *c = &p->procs[i];
		CUresult r;

		if (c->cur != CU_PROCESS_STATE_LOCKED || c->orig != CU_PROCESS_STATE_RUNNING)
			continue;
		r = cuda_drv_unlock(&p->drv, c->pid);
		if (r != CUDA_SUCCESS) {
			cuda_log(p, ret ? CKPT_LOG_INFO : CKPT_LOG_ERROR,
				 "PID %d: cannot unlock its CUDA state: %s", (int)c->pid,
				 cerr(p, r, e, sizeof(e)));
			if (!ret)
				ret = errno_of(r);
			continue;
		}
		c->cur = CU_PROCESS_STATE_RUNNING;
		cuda_info(p, "PID %d: CUDA unlocked", (int)c->pid);
	}
	procs_clear(p);
	return ret;
}

/* ---- check, init ------------------------------------------------------------- */

/* "580.95.05" from /proc/driver/nvidia/version, or "" */
static void kernel_driver_version(char *out, size_t len)
{
	char line[512], *s;
	FILE *f;

	out[0] = '\0';
	f = fopen("/proc/driver/nvidia/version", "re");
	if (!f)
		return;
	if (fgets(line, sizeof(line), f) && (s = strstr(line, "Kernel Module"))) {
		size_t n;

		s += strlen("Kernel Module");
		while (*s == ' ' || *s == '\t')
			s++;
		n = strcspn(s, " \t\n");
		snprintf(out, len, "%.*s", (int)n, s);
	}
	fclose(f);
}

static int cuda_check(void *priv, char *msg, size_t len)
{
	struct cuda_priv *p = priv;
	char why[512], kver[64];
	int ret;

	read_config(p);
	ret = load_driver(p, why, sizeof(why));
	kernel_driver_version(kver, sizeof(kver));
	if (ret == -ENOTSUP) {
		snprintf(msg, len, "%s", why);
		return -ENOTSUP;
	}
	if (ret) {
		snprintf(msg, len, "no NVIDIA driver here (%s)", why);
		return -ENODEV;
	}
	snprintf(msg, len, "CUDA checkpoint API in %s (CUDA %d.%d%s%s)", p->library,
		 p->drv.version / 1000, p->drv.version % 1000 / 10, kver[0] ? ", driver " : "", kver);
	return 0;
}

static int cuda_init(const struct ckpt_host *host, void **priv)
{
	struct cuda_priv *p;

	if (!host || host->version < 3 || !host->img_write_msg ||
	    !host->log || !host->img_create || !host->img_write ||
	    !host->img_close || !host->img_load)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->host = host;
	p->lock_timeout_ms = DEF_LOCK_TIMEOUT_MS;
	*priv = p;
	return 0;
}

static void cuda_fini(void *priv)
{
	struct cuda_priv *p = priv;

	if (!p)
		return;
	for (size_t i = 0; i < p->nprocs; i++)
		if (p->procs[i].cur != p->procs[i].orig)
			cuda_info(p, "PID %d: left in CUDA state %s", (int)p->procs[i].pid,
				  cuda_state_name(p->procs[i].cur));
	procs_clear(p);
	pidv_free(&p->seen);
	cuda_drv_unload(&p->drv);
	free(p->library);
	free(p);
}

static const struct ckpt_config_key cuda_config[] = {
	{
		.key = "library",
		.type = CKPT_CFG_STRING,
		.def = DEF_LIBRARY,
		.help = "the CUDA driver library to dlopen (a path or a soname)",
	},
	{
		.key = "init_driver",
		.type = CKPT_CFG_BOOL,
		.def = "true",
		.help = "call cuInit in ckpt before restoring GPU state (keeps the GPU up without "
			"persistence mode)",
	},
	{
		.key = "lock_timeout_ms",
		.type = CKPT_CFG_INT,
		.def = "10000",
		.help = "how long a dump waits for a process's CUDA work to reach a lock point "
			"(0: no limit)",
	},
	{ .key = NULL },
};

static const struct ckpt_lifecycle_hooks cuda_lifecycle = {
	.version = CKPT_LIFECYCLE_HOOKS_VERSION,
	.dump_start = cuda_dump_start,
	.tree_frozen = cuda_tree_frozen,
	.dump_finish = cuda_dump_finish,
	.restore_start = cuda_restore_start,
	.restore_finish = cuda_restore_finish,
	.check = cuda_check,
	.dump_released = cuda_dump_released,
};

static const ProtobufCMessageDescriptor *const cuda_image_types[] = {
	&ckpt__cuda__cuda_process__descriptor,
	NULL,
};

CKPT_PLUGIN_EXPORT = {
	.abi_major = CKPT_PLUGIN_ABI_MAJOR,
	.abi_minor = CKPT_PLUGIN_ABI_MINOR,
	.name = CUDA_NAME,
	.version = "0.1.0",
	.description = "GPU state of CUDA processes, through the NVIDIA driver's checkpoint API "
		       "(driver 550+)",
	.config = cuda_config,
	.init = cuda_init,
	.fini = cuda_fini,
	.lifecycle = &cuda_lifecycle,
	.image_types = cuda_image_types,
};
