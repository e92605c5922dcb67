/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * pidns_init: the dumped root is init (PID 1) of its own pid namespace,
 * with a child and a grandchild inside.  The starter outside writes the
 * init's outer pid as the ready pid and goes away.  After restore (into a
 * new pid namespace, where the PIDs inside are the same) SIGUSR1 makes init
 * check it is still PID 1 and ask its descendants to check themselves.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workload.h"

int main(void)
{
	int p[2];
	char buf[256];

	wl_init("pidns_init");
	wl_member_setup();
	if (unshare(CLONE_NEWPID))
		wl_die("unshare(CLONE_NEWPID): %s", strerror(errno));
	if (pipe(p))
		wl_die("pipe");
	pid_t init = fork();
	if (init < 0)
		wl_die("fork: %s", strerror(errno));
	if (init > 0) {
		/* the starter: report the init's pid as we see it, then leave */
		close(p[1]);
		if (read(p[0], buf, 1) != 1)
			wl_die("the namespace's init did not start");
		const char *ready = getenv("CKPT_TEST_READY");
		snprintf(buf, sizeof(buf), "%d\n", (int)init);
		if (ready && wl_write_file(ready, buf))
			wl_die("cannot write %s", ready);
		printf("pidns_init: ready, init is pid %d outside\n", (int)init);
		fflush(stdout);
		_exit(0);
	}
	/* PID 1 of the new namespace, leading its own session (the starter's
	 * session is not visible inside) */
	close(p[0]);
	setsid();
	pid_t child = fork();
	if (child == 0) {
		close(p[1]);
		pid_t gc = fork();
		if (gc == 0)
			wl_member("grandchild", 2, 1, 1);
		wl_member("child", 1, 1, 1);
	}
	usleep(100000);
	wl_ready_pid = getpid();
	if (write(p[1], "r", 1) != 1)
		_exit(2);
	close(p[1]);

	wl_wait_usr1();
	WL_CHECK(getpid() == 1, "init is pid %d, not 1", (int)getpid());
	WL_CHECK(child == 2, "the child is pid %d", (int)child);
	kill(-1, SIGUSR2); /* every other process of the namespace */
	const char *names[] = { "child", "grandchild" };
	for (int i = 0; i < 2; i++) {
		if (wl_member_result(names[i], buf, sizeof(buf))) {
			wl_fail("%s did not report", names[i]);
			continue;
		}
		WL_CHECK(!strstr(buf, "BAD"), "%s", buf);
	}
	kill(-1, SIGKILL);
	while (wait(NULL) > 0)
		;
	wl_finish();
}
