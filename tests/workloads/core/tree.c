/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tree: a session leader with children in two process groups, a grandchild,
 * and two zombies (one exited with 7, one killed by SIGTERM).
 *
 *   root (session leader, group R)
 *   +-- a (leader of group A)  +-- g (grandchild, group A)
 *   +-- b (group R)
 *   +-- z1 zombie: exit(7)     +-- z2 zombie: killed by SIGTERM
 *
 * After SIGUSR1 the root asks every live descendant (SIGUSR2) to check its
 * pid, parent, group and session, and to report into a file; then it reaps
 * the zombies and checks their status, and stops everyone.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workload.h"

int main(void)
{
	wl_init("tree");
	pid_t root = getpid();
	wl_member_setup();
	int p[2];
	if (pipe(p))
		wl_die("pipe");
	pid_t a = fork();
	if (a == 0) {
		setpgid(0, 0);
		pid_t g = fork();
		if (g == 0) {
			close(p[0]);
			if (write(p[1], "g", 1) != 1)
				_exit(3);
			close(p[1]);
			wl_member("g", getppid(), getpgid(0), root);
		}
		close(p[0]);
		char gs[16];
		snprintf(gs, sizeof(gs), "%d", g);
		if (write(p[1], "a", 1) != 1)
			_exit(3);
		close(p[1]);
		wl_member("a", root, getpid(), root);
	}
	setpgid(a, a);
	pid_t b = fork();
	if (b == 0) {
		close(p[0]);
		if (write(p[1], "b", 1) != 1)
			_exit(3);
		close(p[1]);
		wl_member("b", root, root, root);
	}
	pid_t z1 = fork();
	if (z1 == 0)
		_exit(7);
	pid_t z2 = fork();
	if (z2 == 0) {
		for (;;)
			pause();
	}
	kill(z2, SIGTERM);
	close(p[1]);
	char c;
	int got = 0;
	while (got < 3 && read(p[0], &c, 1) == 1)
		got++;
	close(p[0]);
	if (got != 3)
		wl_die("children did not start");
	/* both zombies really dead, not reaped */
	siginfo_t si;
	waitid(P_PID, z1, &si, WEXITED | WNOWAIT);
	waitid(P_PID, z2, &si, WEXITED | WNOWAIT);
	usleep(50000);

	wl_ready();
	wl_wait_usr1();

	kill(a, SIGUSR2);
	kill(b, SIGUSR2);
	/* the grandchild is found by its group */
	kill(-a, SIGUSR2);
	char buf[256];
	const char *names[] = { "a", "b", "g" };
	for (int i = 0; i < 3; i++) {
		if (wl_member_result(names[i], buf, sizeof(buf))) {
			wl_fail("%s did not report", names[i]);
			continue;
		}
		WL_CHECK(!strstr(buf, "BAD"), "%s", buf);
	}
	int st;
	WL_CHECK(waitpid(z1, &st, WNOHANG) == z1 && WIFEXITED(st) && WEXITSTATUS(st) == 7,
		 "zombie %d: status %#x, want exit 7", z1, st);
	WL_CHECK(waitpid(z2, &st, WNOHANG) == z2 && WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM,
		 "zombie %d: status %#x, want SIGTERM", z2, st);
	WL_CHECK(getsid(0) == root, "root is no longer a session leader");
	kill(-a, SIGKILL);
	kill(b, SIGKILL);
	waitpid(a, NULL, 0);
	waitpid(b, NULL, 0);
	wl_finish();
}
