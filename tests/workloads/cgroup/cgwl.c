/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * cgwl — cgroup memberships and settings.
 *
 *   cgwl [join=H:PATH]... [child] [thread[=H:PATH[+H:PATH...]]]... [expect=H:FILE=VALUE]...
 *
 * H names a hierarchy: a v1 controller ("cpu", "freezer", ...) or "2" for
 * cgroup2.  join= moves the main thread into a group before anything else
 * (v1: `tasks`; cgroup2: `cgroup.procs`), child forks a process that only
 * waits (it inherits the main thread's groups), each thread starts a thread
 * that moves itself into its groups (v1: `tasks`; cgroup2: `cgroup.threads`,
 * for threaded subtrees).  At ready time every task's
 * /proc/PID/task/TID/cgroup is kept.
 *
 * After SIGUSR1: every task must be in the same groups as at ready time —
 * re-rooted under the path in $CKPT_TEST_DIR/cgroup-root when the driver
 * wrote one (restore --cgroup-root) — and each expect= file of the main
 * thread's group in H must read VALUE.  The child is then killed.
 */
#include "cgutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TASKS 16
#define MAX_LINES 32

struct task {
	pid_t pid, tid;
	char cgroup[4096]; /* /proc/PID/task/TID/cgroup at ready time */
};

static struct task tasks[MAX_TASKS];
static int ntasks;
static volatile int stop_threads;

static pid_t gettid_(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static int read_cgroup(pid_t pid, pid_t tid, char *buf, size_t len)
{
	char path[96];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", (int)pid, (int)tid);
	return wl_read_file(path, buf, len) < 0 ? -1 : 0;
}

/* Move the calling thread into H:PATH; thread: a thread of a cgroup2
 * threaded subtree (cgroup.threads), else the whole process for cgroup2. */
static int join(const char *spec, int thread, char *err, size_t elen)
{
	char h[64], mnt[512], file[1200], now[4096], got[1024];
	const char *colon = strchr(spec, ':');
	int fd;

	if (!colon || (size_t)(colon - spec) >= sizeof(h)) {
		snprintf(err, elen, "bad group '%s' (want H:PATH)", spec);
		return -1;
	}
	snprintf(h, sizeof(h), "%.*s", (int)(colon - spec), spec);
	if (cg_mount_of(h, mnt, sizeof(mnt))) {
		snprintf(err, elen, "hierarchy %s is not mounted", h);
		return -1;
	}
	snprintf(file, sizeof(file), "%s%s/%s", mnt, colon + 1,
		 !strcmp(h, "2") ? (thread ? "cgroup.threads" : "cgroup.procs") : "tasks");
	fd = open(file, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1) {
		snprintf(err, elen, "joining %s: %s", file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	if (read_cgroup(getpid(), gettid_(), now, sizeof(now)) || cg_path_in(now, h, got, sizeof(got)) ||
	    strcmp(got, colon + 1)) {
		snprintf(err, elen, "after joining %s the thread is not there", file);
		return -1;
	}
	return 0;
}

struct thread_arg {
	char specs[1024];
	pid_t tid;
	int ready;
	char err[2048];
};

static void *thread_main(void *a)
{
	struct thread_arg *t = a;
	char *s, *save = NULL;
	int failed = 0;

	t->tid = gettid_();
	for (s = strtok_r(t->specs, "+", &save); s && !failed; s = strtok_r(NULL, "+", &save))
		failed = join(s, 1, t->err, sizeof(t->err)) != 0;
	__atomic_store_n(&t->ready, failed ? -1 : 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&stop_threads, __ATOMIC_ACQUIRE)) {
		struct timespec ts = { 0, 5 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void keep(pid_t pid, pid_t tid)
{
	if (ntasks == MAX_TASKS)
		wl_die("too many tasks");
	tasks[ntasks].pid = pid;
	tasks[ntasks].tid = tid;
	if (read_cgroup(pid, tid, tasks[ntasks].cgroup, sizeof(tasks[ntasks].cgroup)))
		wl_die("cannot read the cgroups of task %d/%d: %s", (int)pid, (int)tid, strerror(errno));
	ntasks++;
}

/* Every line of the saved text must be in the current one (re-rooted). */
static void check_task(const struct task *t, const char *root)
{
	char saved[4096], *line, *save = NULL, now[4096];

	if (read_cgroup(t->pid, t->tid, now, sizeof(now))) {
		wl_fail("task %d/%d: cannot read its cgroups: %s", (int)t->pid, (int)t->tid, strerror(errno));
		return;
	}
	snprintf(saved, sizeof(saved), "%s", t->cgroup);
	for (line = strtok_r(saved, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		char want[1200], key[128], got[1024];

		if (!c2)
			continue;
		*c2 = '\0';
		if (root[0])
			snprintf(want, sizeof(want), "%s%s", root, strcmp(c2 + 1, "/") ? c2 + 1 : "");
		else
			snprintf(want, sizeof(want), "%s", c2 + 1);
		/* the hierarchy: "2" for cgroup2, else its first controller or name= */
		if (c1[1] == '\0') {
			snprintf(key, sizeof(key), "2");
		} else {
			char *comma = strchr(c1 + 1, ',');

			snprintf(key, sizeof(key), "%.*s", comma ? (int)(comma - c1 - 1) : (int)strlen(c1 + 1),
				 c1 + 1);
		}
		if (cg_path_in(now, key, got, sizeof(got))) {
			wl_fail("task %d/%d: no %s line in its cgroups now", (int)t->pid, (int)t->tid, key);
			continue;
		}
		WL_CHECK(!strcmp(got, want), "task %d/%d: %s group is %s, want %s", (int)t->pid,
			 (int)t->tid, key[0] == '2' ? "cgroup2" : key, got, want);
	}
}

static void check_expect(const char *spec)
{
	char h[64], file[256], mnt[512], path[1024], full[2048], val[1024], now[4096];
	const char *colon = strchr(spec, ':'), *eq = colon ? strchr(colon, '=') : NULL;
	size_t n;

	if (!colon || !eq) {
		wl_fail("bad expect '%s'", spec);
		return;
	}
	snprintf(h, sizeof(h), "%.*s", (int)(colon - spec), spec);
	snprintf(file, sizeof(file), "%.*s", (int)(eq - colon - 1), colon + 1);
	if (cg_mount_of(h, mnt, sizeof(mnt)) || read_cgroup(getpid(), gettid_(), now, sizeof(now)) ||
	    cg_path_in(now, h, path, sizeof(path))) {
		wl_fail("expect %s: cannot find my group in %s", spec, h);
		return;
	}
	snprintf(full, sizeof(full), "%s%s/%s", mnt, path, file);
	if (wl_read_file(full, val, sizeof(val)) < 0) {
		wl_fail("cannot read %s: %s", full, strerror(errno));
		return;
	}
	n = strlen(val);
	while (n && (val[n - 1] == '\n' || val[n - 1] == ' '))
		val[--n] = '\0';
	WL_CHECK(!strcmp(val, eq + 1), "%s is '%s', want '%s'", full, val, eq + 1);
}

int main(int argc, char **argv)
{
	struct thread_arg targs[8];
	pthread_t th[8];
	int nth = 0, want_child = 0;
	pid_t child = 0;
	char err[2048], root[1024] = "", rootfile[1024];

	wl_init("cgwl");
	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "join=", 5)) {
			if (join(argv[i] + 5, 0, err, sizeof(err)))
				wl_die("%s", err);
		} else if (!strcmp(argv[i], "child")) {
			want_child = 1;
		}
	}
	if (want_child) {
		child = fork();
		if (child < 0)
			wl_die("fork: %s", strerror(errno));
		if (child == 0) {
			for (;;)
				pause();
		}
	}
	for (int i = 1; i < argc; i++) {
		struct thread_arg *t;

		if (strcmp(argv[i], "thread") && strncmp(argv[i], "thread=", 7))
			continue;
		if (nth == 8)
			wl_die("too many threads");
		t = &targs[nth];
		memset(t, 0, sizeof(*t));
		snprintf(t->specs, sizeof(t->specs), "%s", argv[i][6] == '=' ? argv[i] + 7 : "");
		if (pthread_create(&th[nth], NULL, thread_main, t))
			wl_die("pthread_create failed");
		nth++;
	}
	for (int i = 0; i < nth; i++) {
		while (!__atomic_load_n(&targs[i].ready, __ATOMIC_ACQUIRE))
			usleep(1000);
		if (targs[i].ready < 0)
			wl_die("thread %d: %s", i, targs[i].err);
	}
	keep(getpid(), getpid());
	for (int i = 0; i < nth; i++)
		keep(getpid(), targs[i].tid);
	if (child)
		keep(child, child);
	wl_ready();

	wl_wait_usr1();

	snprintf(rootfile, sizeof(rootfile), "%s/cgroup-root", wl_dir());
	if (access(rootfile, F_OK) == 0) {
		size_t n;

		if (wl_read_file(rootfile, root, sizeof(root)) < 0)
			wl_fail("cannot read %s", rootfile);
		n = strlen(root);
		while (n && (root[n - 1] == '\n' || root[n - 1] == '/'))
			root[--n] = '\0';
	}
	for (int i = 0; i < ntasks; i++)
		check_task(&tasks[i], root);
	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], "expect=", 7))
			check_expect(argv[i] + 7);

	__atomic_store_n(&stop_threads, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	if (child) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	wl_finish();
}
