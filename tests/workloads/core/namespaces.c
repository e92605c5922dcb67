/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * namespaces: the dumped process lives in uts, ipc and time namespaces of
 * its own (a starter creates them, forks it inside, reports its pid and
 * goes away).  After restore: the host name is the one it set, the
 * monotonic clock keeps its +1000 s offset (it never goes back), and its
 * ipc and time namespaces still differ from those of the harness (PID 1).
 * "namespaces user": a user namespace of its own but no pid namespace, which ckpt must
 * refuse, leaving the process running.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

#define HOST "ckpt-test-host"

static int same_ns(const char *ns)
{
	char a[64], b[64];
	struct stat sa, sb;
	snprintf(a, sizeof(a), "/proc/self/ns/%s", ns);
	snprintf(b, sizeof(b), "/proc/1/ns/%s", ns);
	if (stat(a, &sa) || stat(b, &sb))
		return -1;
	return sa.st_ino == sb.st_ino;
}

int main(int argc, char **argv)
{
	int p[2];
	char buf[64];
	int user = argc > 1 && !strcmp(argv[1], "user");

	wl_init("namespaces");
	if (user) {
		if (unshare(CLONE_NEWUSER))
			wl_die("unshare(CLONE_NEWUSER): %s", strerror(errno));
	} else {
		if (unshare(CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWTIME))
			wl_die("unshare: %s", strerror(errno));
		if (sethostname(HOST, strlen(HOST)))
			wl_die("sethostname");
		int fd = open("/proc/self/timens_offsets", O_WRONLY);
		if (fd < 0 || write(fd, "monotonic 1000 0\n", 17) != 17)
			wl_die("timens_offsets: %s", strerror(errno));
		close(fd);
	}
	if (pipe(p))
		wl_die("pipe");
	pid_t child = fork();
	if (child > 0) {
		close(p[1]);
		if (read(p[0], buf, 1) != 1)
			wl_die("the child did not start");
		const char *ready = getenv("CKPT_TEST_READY");
		snprintf(buf, sizeof(buf), "%d\n", (int)child);
		if (ready && wl_write_file(ready, buf))
			wl_die("cannot write %s", ready);
		_exit(0);
	}
	close(p[0]);
	uint64_t before = wl_now_ns(CLOCK_MONOTONIC);
	if (!user && before < 1000ULL * 1000000000ULL)
		wl_die("the time namespace offset is not in effect");
	wl_ready_pid = getpid();
	if (write(p[1], "r", 1) != 1)
		_exit(2);
	close(p[1]);

	wl_wait_usr1();
	if (user) {
		WL_CHECK(same_ns("user") != 1, "no longer in its own user namespace");
		wl_finish();
	}
	char host[64] = "";
	gethostname(host, sizeof(host));
	WL_CHECK(!strcmp(host, HOST), "host name is \"%s\"", host);
	uint64_t after = wl_now_ns(CLOCK_MONOTONIC);
	WL_CHECK(after >= before, "CLOCK_MONOTONIC went back by %.1f s (offset lost?)",
		 (before - after) / 1e9);
	WL_CHECK(same_ns("ipc") == 0, "back in the harness's ipc namespace");
	WL_CHECK(same_ns("uts") == 0, "back in the harness's uts namespace");
	WL_CHECK(same_ns("time") == 0, "back in the harness's time namespace");
	wl_finish();
}
