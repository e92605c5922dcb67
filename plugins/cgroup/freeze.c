// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgroup plugin: --freeze-cgroup.
 *
 * dump_start freezes the group, so that every task of it stops at one
 * moment and none can fork while the core seizes the tree.  The core then
 * seizes task after task (PTRACE_SEIZE, PTRACE_INTERRUPT, wait for the stop).
 *
 * cgroup2: the ptrace stop of a frozen task is reported at once.  A frozen
 * task cannot run injected syscalls though (it goes back into the freezer
 * trap), so tree_frozen thaws the group: every task of the tree stays in its
 * ptrace stop, nothing runs.
 *
 * cgroup v1: a frozen task reports the ptrace stop only once it is thawed,
 * and the core waits for each stop before it seizes the next task.  A helper
 * thread watches the group while the core seizes: as soon as a task of the
 * group has ckpt as its tracer (the interrupt follows the seize at once), it
 * moves that one thread into the root of the freezer hierarchy, which is
 * never frozen; the task leaves the refrigerator straight into the ptrace
 * stop.  The other tasks stay frozen until they are seized in turn.
 * tree_frozen thaws the group and moves the threads back to the groups they
 * came from (they are stopped under ptrace, nothing runs).
 *
 * Either way the group is thawed before the core looks at the tasks, and
 * when the dump ends it is put back in the state it had before (frozen only
 * when it was frozen before the dump).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"

#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define FREEZE_TIMEOUT_MS 10000

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the group's state ------------------------------------------------------ */

static bool is_frozen(const struct cg_freeze *fz)
{
	char *v = NULL;
	bool frozen = false;

	if (fz->v2) {
		if (!cg_read_at(fz->dir, "cgroup.events", &v))
			frozen = strstr(v, "frozen 1") != NULL;
	} else if (!cg_read_at(fz->dir, "freezer.state", &v)) {
		frozen = !strcmp(v, "FROZEN");
	}
	free(v);
	return frozen;
}

static int set_frozen(struct cg_freeze *fz, bool freeze)
{
	if (fz->v2)
		return cg_write_at(fz->dir, "cgroup.freeze", freeze ? "1" : "0");
	return cg_write_at(fz->dir, "freezer.state", freeze ? "FROZEN" : "THAWED");
}

/* ---- the tasks of the group and of the groups below it ---------------------- */

struct tid_ent {
	pid_t tid;
	char *dir;
};

struct tid_list {
	struct tid_ent *v;
	size_t n, cap;
};

static void tid_list_free(struct tid_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].dir);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/* The threads of dir and below; with check, refuse a group below that is
 * frozen by itself (it would stay frozen when dir is thawed). */
static int walk(struct cg_priv *p, const char *dir, bool v2, bool check, bool top,
		struct tid_list *out)
{
	pid_t *tids;
	size_t n;
	struct dirent *de;
	DIR *d;
	int ret;

	if (check && !top) {
		char *v = NULL;

		if (!cg_read_at(dir, v2 ? "cgroup.freeze" : "freezer.self_freezing", &v) &&
		    !strcmp(v, "1")) {
			cg_err(p, "dump: cgroup %s is frozen by itself; thaw it first (echo %s > %s/%s): "
				  "it would stay frozen while ckpt works on the tasks of %s",
			       dir, v2 ? "0" : "THAWED", dir, v2 ? "cgroup.freeze" : "freezer.state",
			       p->fz.dir);
			free(v);
			return -EBUSY;
		}
		free(v);
	}
	ret = cg_read_pids(dir, v2 ? "cgroup.threads" : "tasks", &tids, &n);
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		if (out->n == out->cap) {
			size_t ncap = out->cap ? out->cap * 2 : 32;
			struct tid_ent *nv = realloc(out->v, ncap * sizeof(*nv));

			if (!nv) {
				free(tids);
				return -ENOMEM;
			}
			out->v = nv;
			out->cap = ncap;
		}
		out->v[out->n].tid = tids[i];
		out->v[out->n].dir = strdup(dir);
		if (!out->v[out->n].dir) {
			free(tids);
			return -ENOMEM;
		}
		out->n++;
	}
	free(tids);
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char *sub;

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		sub = cg_join(dir, de->d_name);
		if (!sub) {
			ret = -ENOMEM;
			break;
		}
		ret = walk(p, sub, v2, check, false, out);
		free(sub);
		if (ret == -ENOENT)
			ret = 0; /* removed meanwhile */
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

/* ---- v1 helper ------------------------------------------------------------- */

static pid_t tracer_of(pid_t tid)
{
	char path[64], *buf, *l;
	pid_t t = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	if (cg_read_file(path, &buf))
		return 0;
	l = strstr(buf, "\nTracerPid:");
	if (l)
		t = (pid_t)strtol(l + 11, NULL, 10);
	free(buf);
	return t;
}

static bool was_moved(struct cg_freeze *fz, pid_t tid)
{
	for (size_t i = 0; i < fz->nmoved; i++)
		if (fz->moved[i].tid == tid)
			return true;
	return false;
}

static int note_moved(struct cg_freeze *fz, pid_t tid, const char *dir)
{
	char *d = strdup(dir);

	if (!d)
		return -ENOMEM;
	pthread_mutex_lock(&fz->lock);
	if (fz->nmoved == fz->moved_cap) {
		size_t ncap = fz->moved_cap ? fz->moved_cap * 2 : 16;
		struct cg_moved *nv = realloc(fz->moved, ncap * sizeof(*nv));

		if (!nv) {
			pthread_mutex_unlock(&fz->lock);
			free(d);
			return -ENOMEM;
		}
		fz->moved = nv;
		fz->moved_cap = ncap;
	}
	fz->moved[fz->nmoved].tid = tid;
	fz->moved[fz->nmoved].dir = d;
	fz->nmoved++;
	pthread_mutex_unlock(&fz->lock);
	return 0;
}

static void *helper(void *arg)
{
	struct cg_priv *p = arg;
	struct cg_freeze *fz = &p->fz;
	pid_t self = getpid();

	while (!__atomic_load_n(&fz->stop, __ATOMIC_ACQUIRE)) {
		struct tid_list l = { 0 };
		int ret = walk(p, fz->dir, false, false, true, &l);

		for (size_t i = 0; !ret && i < l.n && !__atomic_load_n(&fz->stop, __ATOMIC_ACQUIRE); i++) {
			char tid[16];

			if (was_moved(fz, l.v[i].tid) || tracer_of(l.v[i].tid) != self)
				continue;
			/* seized: the interrupt follows the seize at once; let it
			 * be queued before the task can run again */
			sleep_us(2000);
			snprintf(tid, sizeof(tid), "%d", (int)l.v[i].tid);
			ret = note_moved(fz, l.v[i].tid, l.v[i].dir);
			if (!ret)
				ret = cg_write_at(fz->pen, "tasks", tid);
			if (ret == -ESRCH)
				ret = 0;
			if (ret) {
				fz->helper_err_tid = l.v[i].tid;
				break;
			}
		}
		tid_list_free(&l);
		if (ret && !__atomic_load_n(&fz->stop, __ATOMIC_ACQUIRE)) {
			/* never leave the core waiting for a stop that cannot
			 * come: give up the freeze instead */
			fz->helper_err = -ret;
			set_frozen(fz, false);
			break;
		}
		sleep_us(200);
	}
	return NULL;
}

static void stop_helper(struct cg_freeze *fz)
{
	if (!fz->thread_running)
		return;
	__atomic_store_n(&fz->stop, 1, __ATOMIC_RELEASE);
	pthread_join(fz->thread, NULL);
	fz->thread_running = false;
}

/* ---- hooks --------------------------------------------------------------------- */

static void free_state(struct cg_freeze *fz)
{
	for (size_t i = 0; i < fz->nmoved; i++)
		free(fz->moved[i].dir);
	free(fz->moved);
	fz->moved = NULL;
	fz->nmoved = fz->moved_cap = 0;
	free(fz->dir);
	free(fz->pen);
	fz->dir = fz->pen = NULL;
	fz->active = false;
}

/* The group is frozen (by us); wait until the kernel says so. */
static int wait_frozen(struct cg_priv *p)
{
	uint64_t end = now_ms() + FREEZE_TIMEOUT_MS;

	while (!is_frozen(&p->fz)) {
		if (now_ms() > end) {
			cg_err(p, "dump: cgroup %s did not freeze within %d s (a task in uninterruptible "
				  "sleep?); dump without --freeze-cgroup or retry",
			       p->fz.dir, FREEZE_TIMEOUT_MS / 1000);
			return -ETIMEDOUT;
		}
		sleep_us(1000);
	}
	return 0;
}

static int resolve(struct cg_priv *p, const char *path)
{
	struct cg_freeze *fz = &p->fz;
	struct statfs sfs;
	size_t l;

	if (statfs(path, &sfs)) {
		int e = errno;

		if (e == ENOENT || e == ENOTDIR)
			cg_err(p, "dump: --freeze-cgroup %s: no such cgroup; give the directory of an "
				  "existing group, e.g. /sys/fs/cgroup/freezer/NAME (v1 freezer) or "
				  "/sys/fs/cgroup/unified/NAME (cgroup2)",
			       path);
		else
			cg_err(p, "dump: --freeze-cgroup %s: %s", path, strerror(e));
		return -e;
	}
	fz->dir = strdup(path);
	if (!fz->dir)
		return -ENOMEM;
	l = strlen(fz->dir);
	while (l > 1 && fz->dir[l - 1] == '/')
		fz->dir[--l] = '\0';
	if ((unsigned long)sfs.f_type == CGROUP2_SUPER_MAGIC) {
		fz->v2 = true;
		if (!cg_exists_at(fz->dir, "cgroup.freeze")) {
			cg_err(p, "dump: --freeze-cgroup %s is the root of the cgroup2 hierarchy, which "
				  "cannot be frozen; name the group below it that holds the tree",
			       path);
			return -EINVAL;
		}
		return 0;
	}
	if ((unsigned long)sfs.f_type != CGROUP_SUPER_MAGIC) {
		cg_err(p, "dump: --freeze-cgroup %s is not a cgroup directory; give a group under "
			  "/sys/fs/cgroup/freezer (v1) or /sys/fs/cgroup/unified (cgroup2)",
		       path);
		return -EINVAL;
	}
	if (!cg_exists_at(fz->dir, "freezer.state")) {
		cg_err(p, "dump: --freeze-cgroup %s is not a group of the v1 freezer hierarchy (or is "
			  "its root, which cannot be frozen); name a group under the freezer mount",
		       path);
		return -EINVAL;
	}
	return 0;
}

/* v1: the freezer hierarchy's mount holding fz->dir; its root group is
 * never frozen. */
static int find_pen(struct cg_priv *p)
{
	struct cg_mounts ms;
	int ret = cg_mounts_read(&ms);

	if (ret) {
		cg_err(p, "dump: cannot read /proc/self/mountinfo: %s", strerror(-ret));
		return ret;
	}
	for (size_t i = 0; i < ms.n && !p->fz.pen; i++) {
		const struct cg_mount *m = &ms.v[i];
		size_t l = strlen(m->mnt);

		if (m->v2 || !cg_has_ctrl(m->opts, "freezer"))
			continue;
		if (strncmp(p->fz.dir, m->mnt, l) || (p->fz.dir[l] && p->fz.dir[l] != '/'))
			continue;
		p->fz.pen = strdup(m->mnt);
		if (!p->fz.pen)
			ret = -ENOMEM;
	}
	cg_mounts_free(&ms);
	if (!ret && !p->fz.pen) {
		cg_err(p, "dump: --freeze-cgroup %s: cannot find the freezer mount it belongs to in "
			  "/proc/self/mountinfo; give the path under the mount point",
		       p->fz.dir);
		ret = -ENOENT;
	}
	return ret;
}

/* An ancestor freezes it: thawing the group itself would not help. */
static int check_parent(struct cg_priv *p)
{
	struct cg_freeze *fz = &p->fz;
	char *v = NULL;
	bool parent = false;

	if (fz->v2) {
		char *ev = NULL;

		if (!cg_read_at(fz->dir, "cgroup.freeze", &v) && !cg_read_at(fz->dir, "cgroup.events", &ev))
			parent = !strcmp(v, "0") && strstr(ev, "frozen 1");
		free(ev);
	} else if (!cg_read_at(fz->dir, "freezer.parent_freezing", &v)) {
		parent = !strcmp(v, "1");
	}
	free(v);
	if (parent) {
		cg_err(p, "dump: --freeze-cgroup %s is frozen by a group above it; thaw that one first",
		       fz->dir);
		return -EBUSY;
	}
	return 0;
}

int cg_freeze_start(struct cg_priv *p, pid_t root)
{
	struct cg_freeze *fz = &p->fz;
	struct tid_list l = { 0 };
	bool found = false;
	int ret;

	if (!p->freeze_path || !*p->freeze_path)
		return 0;
	__atomic_store_n(&fz->stop, 0, __ATOMIC_RELEASE);
	fz->helper_err = 0;
	ret = resolve(p, p->freeze_path);
	if (!ret)
		ret = check_parent(p);
	if (!ret && !fz->v2)
		ret = find_pen(p);
	if (!ret)
		ret = walk(p, fz->dir, fz->v2, true, true, &l); /* refuses self-frozen subgroups */
	tid_list_free(&l);
	if (ret) {
		if (ret != -EBUSY && ret != -ENOENT && ret != -EINVAL && ret != -ENOMEM)
			cg_err(p, "dump: cannot read the tasks of cgroup %s: %s", fz->dir, strerror(-ret));
		free_state(fz);
		return ret;
	}
	fz->was_frozen = is_frozen(fz);
	ret = set_frozen(fz, true);
	if (ret) {
		cg_err(p, "dump: cannot freeze cgroup %s: %s", fz->dir, strerror(-ret));
		free_state(fz);
		return ret;
	}
	fz->active = true;
	ret = wait_frozen(p);
	if (ret)
		goto undo;
	/* frozen: the set of tasks is final */
	ret = walk(p, fz->dir, fz->v2, false, true, &l);
	if (ret) {
		cg_err(p, "dump: cannot read the tasks of cgroup %s: %s", fz->dir, strerror(-ret));
		goto undo;
	}
	for (size_t i = 0; i < l.n; i++)
		found |= l.v[i].tid == root;
	cg_info(p, "dump: froze cgroup %s (%s, %zu thread(s))", fz->dir, fz->v2 ? "cgroup2" : "v1 freezer",
		l.n);
	tid_list_free(&l);
	if (!found) {
		cg_err(p, "dump: PID %d is not in cgroup %s nor below it; --freeze-cgroup must name "
			  "the group that holds the dumped tree",
		       (int)root, fz->dir);
		ret = -ESRCH;
		goto undo;
	}
	if (!fz->v2) {
		ret = pthread_create(&fz->thread, NULL, helper, p);
		if (ret) {
			cg_err(p, "dump: cannot start the freezer helper thread: %s", strerror(ret));
			ret = -ret;
			goto undo;
		}
		fz->thread_running = true;
	}
	return 0;
undo:
	if (!fz->was_frozen)
		set_frozen(fz, false);
	free_state(fz);
	return ret;
}

/* Stop the helper, thaw, put the threads the helper moved back. */
static void let_go(struct cg_priv *p, bool quiet)
{
	struct cg_freeze *fz = &p->fz;
	int ret;

	stop_helper(fz);
	ret = set_frozen(fz, false);
	if (ret && !quiet)
		cg_warn(p, "cannot thaw cgroup %s: %s", fz->dir, strerror(-ret));
	if (fz->nmoved && !quiet)
		cg_info(p, "dump: %zu thread(s) were let out of the frozen v1 group one by one as ckpt "
			   "seized them; moving them back",
			fz->nmoved);
	for (size_t i = 0; i < fz->nmoved; i++) {
		char tid[16];

		snprintf(tid, sizeof(tid), "%d", (int)fz->moved[i].tid);
		ret = cg_write_at(fz->moved[i].dir, "tasks", tid);
		if (ret && ret != -ESRCH && !quiet)
			cg_warn(p, "cannot move thread %d back into freezer cgroup %s: %s",
				(int)fz->moved[i].tid, fz->moved[i].dir, strerror(-ret));
		free(fz->moved[i].dir);
	}
	fz->nmoved = 0;
	if (fz->helper_err && !quiet)
		cg_warn(p, "dump: could not let thread %d out of the frozen cgroup %s (%s); the group "
			   "was thawed early, the dump is not from one frozen moment",
			(int)fz->helper_err_tid, fz->dir, strerror(fz->helper_err));
	fz->helper_err = 0;
}

int cg_freeze_tree_stopped(struct cg_priv *p)
{
	if (!p->fz.active)
		return 0;
	let_go(p, false);
	cg_info(p, "dump: every task is stopped; thawed cgroup %s", p->fz.dir);
	return 0;
}

void cg_freeze_release(struct cg_priv *p)
{
	struct cg_freeze *fz = &p->fz;

	if (!fz->active)
		return;
	let_go(p, true);
	if (fz->was_frozen) {
		set_frozen(fz, true);
		cg_info(p, "dump: cgroup %s is frozen again, as it was before the dump", fz->dir);
	}
	free_state(fz);
}
