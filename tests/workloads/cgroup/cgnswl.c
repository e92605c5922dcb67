/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * cgnswl — a tree in a cgroup namespace of its own.
 *
 *   cgnswl [join=H:PATH | unshare | see=H:PATH | child | child-unshare=H:PATH | thread]...
 *
 * The words run in order: join= moves the process into a group (H: a v1
 * controller, or "2" for cgroup2; PATH as the cgroup mount shows it),
 * unshare makes a new cgroup namespace (rooted at the groups the process is
 * in then), see= checks that /proc/self/cgroup now shows PATH for H, child
 * forks a process, child-unshare= forks one that moves into H:PATH, makes a
 * cgroup namespace of its own there and moves on into H:PATH/in, thread
 * starts a thread.  At ready time the main thread,
 * the thread and the child each read their own /proc/self/cgroup (thread:
 * /proc/thread-self/cgroup) and the inode of their cgroup namespace.
 *
 * After SIGUSR1 each reads both again: the text must be the same as before;
 * the thread must share the main thread's cgroup namespace, the child too
 * unless it made its own (then it must not), and the main thread must be in
 * the namespace of PID 1 (nsrun's init, ckpt's) exactly when it was before.
 */
#include "cgutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct view {
	unsigned long ino;
	char cgroup[4096];
};

static int look(const char *self, struct view *v)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%s/ns/cgroup", self);
	if (stat(path, &st))
		return -1;
	v->ino = (unsigned long)st.st_ino;
	snprintf(path, sizeof(path), "/proc/%s/cgroup", self);
	return wl_read_file(path, v->cgroup, sizeof(v->cgroup)) < 0 ? -1 : 0;
}

/* Does the cgroup text show path for hierarchy h? */
static int shows(const char *text, const char *h, const char *path)
{
	char got[1024];

	return !cg_path_in(text, h, got, sizeof(got)) && !strcmp(got, path);
}

static void join(const char *spec)
{
	char h[64], mnt[512], file[1200];
	const char *colon = strchr(spec, ':');
	int fd;

	if (!colon || (size_t)(colon - spec) >= sizeof(h))
		wl_die("bad group '%s' (want H:PATH)", spec);
	snprintf(h, sizeof(h), "%.*s", (int)(colon - spec), spec);
	if (cg_mount_of(h, mnt, sizeof(mnt)))
		wl_die("hierarchy %s is not mounted", h);
	snprintf(file, sizeof(file), "%s%s/%s", mnt, colon + 1,
		 !strcmp(h, "2") ? "cgroup.procs" : "tasks");
	fd = open(file, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "0", 1) != 1)
		wl_die("joining %s: %s", file, strerror(errno));
	close(fd);
}

/* The thread looks at itself whenever asked. */
static int asked, answered, stop;
static struct view thread_view;

static void *thread_main(void *a)
{
	(void)a;
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		int n = __atomic_load_n(&asked, __ATOMIC_ACQUIRE);

		if (n != __atomic_load_n(&answered, __ATOMIC_ACQUIRE)) {
			if (look("thread-self", &thread_view))
				thread_view.ino = 0;
			__atomic_store_n(&answered, n, __ATOMIC_RELEASE);
		}
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static int ask_thread(struct view *v)
{
	int n = __atomic_add_fetch(&asked, 1, __ATOMIC_ACQ_REL);

	for (int i = 0; i < 5000 && __atomic_load_n(&answered, __ATOMIC_ACQUIRE) != n; i++)
		usleep(1000);
	if (__atomic_load_n(&answered, __ATOMIC_ACQUIRE) != n || !thread_view.ino)
		return -1;
	*v = thread_view;
	return 0;
}

/* The child answers each byte on req with its view on resp. */
static __attribute__((noreturn)) void child_main(int req, int resp, const char *own_ns)
{
	if (own_ns) {
		char in[1200];

		join(own_ns);
		if (unshare(CLONE_NEWCGROUP))
			_exit(5);
		snprintf(in, sizeof(in), "%s/in", own_ns);
		join(in);
	}
	for (;;) {
		struct view v;
		char c;
		ssize_t r = read(req, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1)
			_exit(0);
		if (look("self", &v))
			v.ino = 0;
		if (write(resp, &v, sizeof(v)) != (ssize_t)sizeof(v))
			_exit(1);
	}
}

static int ask_child(int req, int resp, struct view *v)
{
	size_t got = 0;

	if (write(req, "?", 1) != 1)
		return -1;
	while (got < sizeof(*v)) {
		ssize_t r = read(resp, (char *)v + got, sizeof(*v) - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return v->ino ? 0 : -1;
}

static void compare(const char *who, const struct view *before, const struct view *now)
{
	WL_CHECK(!strcmp(before->cgroup, now->cgroup),
		 "%s: /proc/self/cgroup changed: was '%s', is '%s'", who, before->cgroup, now->cgroup);
}

int main(int argc, char **argv)
{
	struct view main_v, thread_v, child_v, now;
	int req[2] = { -1, -1 }, resp[2] = { -1, -1 }, have_thread = 0;
	pid_t child = 0;
	pthread_t th;
	struct stat init_ns;
	int child_own_ns = 0, main_in_init;

	wl_init("cgnswl");
	for (int i = 1; i < argc; i++) {
		if (!strncmp(argv[i], "join=", 5)) {
			join(argv[i] + 5);
		} else if (!strcmp(argv[i], "unshare")) {
			if (unshare(CLONE_NEWCGROUP))
				wl_die("unshare(CLONE_NEWCGROUP): %s", strerror(errno));
		} else if (!strncmp(argv[i], "see=", 4)) {
			char *h = strdup(argv[i] + 4), *colon = h ? strchr(h, ':') : NULL;

			if (!colon)
				wl_die("bad see '%s'", argv[i]);
			*colon = '\0';
			if (look("self", &main_v) || !shows(main_v.cgroup, h, colon + 1))
				wl_die("after the setup /proc/self/cgroup does not show %s for %s: %s",
				       colon + 1, h, main_v.cgroup);
			free(h);
		} else if (!strcmp(argv[i], "child") || !strncmp(argv[i], "child-unshare=", 14)) {
			child_own_ns = argv[i][5] == '-';
			if (pipe(req) || pipe(resp))
				wl_die("pipe: %s", strerror(errno));
			child = fork();
			if (child < 0)
				wl_die("fork: %s", strerror(errno));
			if (child == 0) {
				close(req[1]);
				close(resp[0]);
				child_main(req[0], resp[1], child_own_ns ? argv[i] + 14 : NULL);
			}
			close(req[0]);
			close(resp[1]);
		} else if (!strcmp(argv[i], "thread")) {
			if (pthread_create(&th, NULL, thread_main, NULL))
				wl_die("pthread_create failed");
			have_thread = 1;
		} else {
			wl_die("unknown word '%s'", argv[i]);
		}
	}
	if (look("self", &main_v))
		wl_die("cannot read my cgroups: %s", strerror(errno));
	if (have_thread && ask_thread(&thread_v))
		wl_die("the thread did not answer");
	if (child && ask_child(req[1], resp[0], &child_v))
		wl_die("the child did not answer");
	if ((have_thread && thread_v.ino != main_v.ino) ||
	    (child && (child_v.ino != main_v.ino) != child_own_ns))
		wl_die("the tree's cgroup namespaces are not as planned before the dump");
	if (stat("/proc/1/ns/cgroup", &init_ns))
		wl_die("cannot stat /proc/1/ns/cgroup: %s", strerror(errno));
	main_in_init = (unsigned long)init_ns.st_ino == main_v.ino;
	wl_ready();

	wl_wait_usr1();

	if (look("self", &now)) {
		wl_fail("cannot read my cgroups: %s", strerror(errno));
	} else {
		compare("main thread", &main_v, &now);
		if (!stat("/proc/1/ns/cgroup", &init_ns))
			WL_CHECK(((unsigned long)init_ns.st_ino == now.ino) == main_in_init,
				 "the main thread is %sin the cgroup namespace of PID 1, it was %s",
				 main_in_init ? "not " : "", main_in_init ? "before" : "not before");
		main_v.ino = now.ino;
	}
	if (have_thread) {
		if (ask_thread(&now)) {
			wl_fail("the thread did not answer after the restore");
		} else {
			compare("thread", &thread_v, &now);
			WL_CHECK(now.ino == main_v.ino, "the thread is in cgroup namespace %lu, the main thread in %lu",
				 now.ino, main_v.ino);
		}
		__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
		pthread_join(th, NULL);
	}
	if (child) {
		if (ask_child(req[1], resp[0], &now)) {
			wl_fail("the child did not answer after the restore");
		} else {
			compare("child", &child_v, &now);
			WL_CHECK((now.ino != main_v.ino) == child_own_ns,
				 "the child is in cgroup namespace %lu, its parent in %lu; want %s",
				 now.ino, main_v.ino, child_own_ns ? "another" : "the same");
		}
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	wl_finish();
}
