/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tty_job — a job that a shell (tty_shell) started on its terminal: fds 0,
 * 1 and 2 are the slave of a pty whose master the shell holds, outside the
 * dumped tree.  Unlike the other workloads it stays in the shell's session
 * (no setsid); the shell gave it a process group of its own in front.
 *
 * After SIGUSR1 (restored by the shell with --shell-job): fds 0-2 are still
 * one open file of that same terminal, the session is still the shell's,
 * /dev/tty opens and is that terminal; "job-output-after PID" goes to
 * stdout (the shell logs what its master reads) and the answer to "PING?"
 * ("pong", typed by the shell) must come in on stdin.
 */
#include "fsutil.h"

#include <linux/kcmp.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef TIOCGDEV
#define TIOCGDEV _IOR('T', 0x32, unsigned int)
#endif

static void on_usr1(int sig)
{
	(void)sig;
	wl_usr1 = 1;
}

/* Read a line from stdin within 10 s (the shell types it). */
static void expect_line(const char *want)
{
	char buf[256];
	size_t len = 0;

	buf[0] = 0;
	for (int i = 0; i < 100 && !strchr(buf, '\n'); i++) {
		ssize_t n;

		if (fs_poll(0, POLLIN, 100) <= 0)
			continue;
		n = read(0, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			continue;
		len += (size_t)n;
		buf[len] = 0;
	}
	WL_CHECK(!strncmp(buf, want, strlen(want)), "stdin gave '%s', want '%s'", buf, want);
}

int main(void)
{
	struct sigaction sa;
	char name[256];
	struct stat st;
	unsigned int dev = 0;
	pid_t sid, me;
	sigset_t tt;
	int t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	syscall(SYS_close_range, 3U, ~0U, 0U);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGUSR1, &sa, NULL))
		wl_die("sigaction: %s", strerror(errno));
	/* a read or write from the background fails instead of stopping us */
	sigemptyset(&tt);
	sigaddset(&tt, SIGTTIN);
	sigaddset(&tt, SIGTTOU);
	sigprocmask(SIG_BLOCK, &tt, NULL);

	for (int i = 0; i < 3; i++)
		if (!isatty(i))
			wl_die("fd %d is not a terminal", i);
	if (ttyname_r(0, name, sizeof(name)))
		wl_die("ttyname: %s", strerror(errno));
	sid = getsid(0);
	if (sid == getpid())
		wl_die("the job leads its own session; it must run in the shell's");
	printf("job-hello-before %d\n", (int)getpid());

	wl_ready();
	wl_wait_usr1();

	me = getpid();
	for (int i = 0; i < 3; i++)
		WL_CHECK(isatty(i), "fd %d is not a terminal after the restore", i);
	WL_CHECK(!strcmp(fs_fdlink(0), name), "fd 0 is '%s', want %s", fs_fdlink(0), name);
	WL_CHECK(syscall(SYS_kcmp, me, me, KCMP_FILE, 0, 1) == 0 &&
			 syscall(SYS_kcmp, me, me, KCMP_FILE, 0, 2) == 0,
		 "fds 0, 1 and 2 are no longer one open file");
	WL_CHECK(getsid(0) == sid, "session %d, want the shell's %d", (int)getsid(0), (int)sid);
	t = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (t < 0) {
		wl_fail("/dev/tty does not open: %s", strerror(errno));
	} else {
		WL_CHECK(ioctl(t, TIOCGDEV, &dev) == 0 && !fstat(0, &st) && (dev_t)dev == st.st_rdev,
			 "/dev/tty is not the terminal on fd 0");
		close(t);
	}
	printf("job-output-after %d\n", (int)me);
	printf("PING?\n");
	expect_line("pong");
	wl_finish();
}
