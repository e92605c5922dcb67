/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * pipe_outside — a pipe whose write end lives in another process, outside
 * the dumped tree: the dump must be refused and leave this one running.
 *
 *   fd 20   read end; the write end is held by a helper that is not our
 *           child (double fork), which wrote "helper PID\n" into it
 *
 * After SIGUSR1: the helper's line must still be there (a failed dump
 * consumed nothing); the helper is killed.
 */
#include "fsutil.h"

#include <sys/ioctl.h>
#include <sys/wait.h>

int main(void)
{
	char buf[64] = "";
	int p[2], q = -1, hp = 0;
	pid_t c;

	wl_init("fs/pipe_outside");
	if (pipe(p))
		wl_die("pipe: %s", strerror(errno));
	c = fork();
	if (c < 0)
		wl_die("fork: %s", strerror(errno));
	if (c == 0) {
		if (fork() == 0) {
			char line[32];
			int n;

			close(p[0]);
			n = snprintf(line, sizeof(line), "helper %d\n", (int)getpid());
			if (write(p[1], line, (size_t)n) != n)
				_exit(1);
			for (;;)
				pause();
		}
		_exit(0);
	}
	waitpid(c, NULL, 0);
	close(p[1]);
	fs_place(p[0], 20, "pipe");
	/* wait for the helper's line */
	for (int i = 0; i < 200 && (ioctl(20, FIONREAD, &q) || q <= 0); i++)
		usleep(10000);
	if (q <= 0)
		wl_die("the helper wrote nothing");

	wl_ready();
	wl_wait_usr1();

	WL_CHECK(ioctl(20, FIONREAD, &q) == 0 && q > 0, "the pipe is empty after the failed dump");
	if (read(20, buf, sizeof(buf) - 1) > 0 && sscanf(buf, "helper %d", &hp) == 1 && hp > 1)
		kill(hp, SIGKILL);
	else
		wl_fail("the pipe held '%s', not the helper's line", buf);
	wl_finish();
}
