/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * creds: tasks of other users and the small per-task settings.
 *
 *  - the root process: child subreaper, oom_score_adj 123, timer slack;
 *  - one of its threads runs as uid 2000 (raw setresuid: only that thread);
 *  - a child dropped to uid/gid 1000 with groups 100,200 and no
 *    capabilities, then set no_new_privs, a parent-death signal and
 *    dumpable 1 (the uid change had reset it to 0).
 * After SIGUSR1 everyone checks what it should still be.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workload.h"

#define SLACK_NS 1234567

static _Atomic int thread_check, thread_bad = -1;

static void *other_uid_thread(void *arg)
{
	(void)arg;
	/* the raw syscall changes this thread only (glibc would sync all) */
	if (syscall(SYS_setresuid, 2000, 2000, 2000))
		atomic_store(&thread_bad, 100);
	else
		atomic_store(&thread_bad, 0);
	while (!atomic_load(&thread_check))
		usleep(1000);
	uid_t r, e, s;
	syscall(SYS_getresuid, &r, &e, &s);
	atomic_store(&thread_bad, (r != 2000) | (e != 2000) << 1 | (s != 2000) << 2);
	return NULL;
}

static void child_check(int report_fd)
{
	char text[512] = "";
	uid_t r, e, s;
	gid_t gr, ge, gs, groups[8];
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct caps[2];
	int sig = 0, n = getgroups(8, groups);

	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	syscall(SYS_capget, &hdr, caps);
	prctl(PR_GET_PDEATHSIG, &sig);
	if (r != 1000 || e != 1000 || s != 1000)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "uids %d/%d/%d; ", r, e, s);
	if (gr != 1000 || ge != 1000 || gs != 1000)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "gids %d/%d/%d; ", gr, ge, gs);
	if (n != 2 || groups[0] != 100 || groups[1] != 200)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%d groups; ", n);
	if (caps[0].effective || caps[0].permitted || caps[1].effective || caps[1].permitted)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "has capabilities; ");
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "no_new_privs lost; ");
	if (sig != SIGHUP)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "pdeathsig %d; ", sig);
	if (prctl(PR_GET_DUMPABLE) != 1)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "dumpable %d; ",
			 prctl(PR_GET_DUMPABLE));
	snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s\n", text[0] ? "BAD" : "OK");
	if (pwrite(report_fd, text, strlen(text), 0) < 0)
		_exit(4);
}

static volatile sig_atomic_t child_go;
static void on_usr2(int s)
{
	(void)s;
	child_go = 1;
}

int main(void)
{
	char path[4200], buf[512];

	wl_init("creds");
	/* opened while still root: the test directory is not the child's to
	 * open, the inherited fd is (and parent and child share it) */
	snprintf(path, sizeof(path), "%s/creds-child.res", wl_dir());
	int report_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (report_fd < 0)
		wl_die("open %s: %s", path, strerror(errno));

	struct sigaction sa = { .sa_handler = on_usr2 };
	sigaction(SIGUSR2, &sa, NULL);
	pid_t child = fork();
	if (child == 0) {
		gid_t groups[2] = { 100, 200 };
		if (setgroups(2, groups) || setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000))
			_exit(3);
		prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		prctl(PR_SET_PDEATHSIG, SIGHUP);
		prctl(PR_SET_DUMPABLE, 1);
		while (!child_go)
			pause();
		child_check(report_fd);
		for (;;)
			pause();
	}

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	prctl(PR_SET_TIMERSLACK, SLACK_NS);
	int fd = open("/proc/self/oom_score_adj", O_WRONLY);
	if (fd < 0 || write(fd, "123", 3) != 3)
		wl_die("cannot set oom_score_adj");
	close(fd);

	pthread_t th;
	sigset_t usr, old;
	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr, &old);
	pthread_create(&th, NULL, other_uid_thread, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	while (atomic_load(&thread_bad) < 0)
		usleep(1000);
	if (atomic_load(&thread_bad))
		wl_die("the thread could not change its uid");
	usleep(50000);

	wl_ready();
	wl_wait_usr1();

	int sub = 0;
	prctl(PR_GET_CHILD_SUBREAPER, &sub);
	WL_CHECK(sub == 1, "child subreaper flag lost");
	WL_CHECK(prctl(PR_GET_TIMERSLACK) == SLACK_NS, "timer slack %d", prctl(PR_GET_TIMERSLACK));
	int n = wl_read_file("/proc/self/oom_score_adj", buf, sizeof(buf));
	WL_CHECK(n > 0 && atoi(buf) == 123, "oom_score_adj %s", buf);
	WL_CHECK(getuid() == 0 && geteuid() == 0, "the main thread is no longer root");

	atomic_store(&thread_check, 1);
	pthread_join(th, NULL);
	WL_CHECK(atomic_load(&thread_bad) == 0, "the uid 2000 thread lost its uid (%d)",
		 atomic_load(&thread_bad));

	kill(child, SIGUSR2);
	int got = -1;
	for (int i = 0; i < 500 && got <= 0; i++) {
		got = wl_read_file(path, buf, sizeof(buf));
		if (got <= 0)
			usleep(10000);
	}
	WL_CHECK(got > 0 && strstr(buf, "OK"), "child (uid 1000): %s", got > 0 ? buf : "no report");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	unlink(path);
	wl_finish();
}
