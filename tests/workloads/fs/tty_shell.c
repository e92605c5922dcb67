/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tty_shell — the "shell" of the --shell-job scenario (not a workload of
 * its own).
 *
 *   tty_shell DIR CKPT JOB
 *
 * It leads a session on a new pty (the slave is its controlling terminal,
 * the master its own end, as a terminal emulator's), starts JOB in a
 * process group of its own in the foreground with fds 0-2 on the slave, and
 * appends everything the master reads to DIR/master.log; when "PING?"
 * arrives it types "pong".  Its pid goes to DIR/shell.pid.  Commands come
 * one a line through the FIFO DIR/shell.ctl:
 *
 *   restore  run CKPT restore -D DIR/img -d --shell-job -v4 -o restore.log
 *            --pidfile DIR/restored.pid in the foreground with the slave as
 *            stdin and stdout (stderr: DIR/restore-shell.stderr); its exit
 *            status goes to DIR/restore-shell.rc, the terminal's foreground
 *            group as ckpt left it to DIR/restore-shell.fg; then the shell
 *            takes the terminal back and, when the restore worked, puts the
 *            restored job in the foreground (`fg`)
 *   quit     exit
 */
#include "fsutil.h"

#include <signal.h>
#include <sys/wait.h>

static const char *dir;
static int m = -1, s = -1;

static void path_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static void restore(const char *ckpt)
{
	char imgs[4096], pidfile[4096], errpath[4096], rcpath[4096], buf[64];
	int st = 0, rc;
	pid_t c;

	path_of(imgs, sizeof(imgs), "img");
	path_of(pidfile, sizeof(pidfile), "restored.pid");
	path_of(errpath, sizeof(errpath), "restore-shell.stderr");
	path_of(rcpath, sizeof(rcpath), "restore-shell.rc");
	c = fork();
	if (c < 0) {
		fprintf(stderr, "tty_shell: fork: %s\n", strerror(errno));
		return;
	}
	if (c == 0) {
		int e = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		setpgid(0, 0);
		tcsetpgrp(s, getpid());
		signal(SIGTTOU, SIG_DFL);
		signal(SIGTTIN, SIG_DFL);
		if (e < 0 || dup2(s, 0) < 0 || dup2(s, 1) < 0 || dup2(e, 2) < 0)
			_exit(126);
		execl(ckpt, ckpt, "restore", "-D", imgs, "-d", "--shell-job", "-v4", "-o",
		      "restore.log", "--pidfile", pidfile, (char *)NULL);
		_exit(127);
	}
	setpgid(c, c);
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;
	rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	snprintf(buf, sizeof(buf), "%d\n", (int)tcgetpgrp(s));
	path_of(errpath, sizeof(errpath), "restore-shell.fg");
	wl_write_file(errpath, buf);
	tcsetpgrp(s, getpgrp());
	if (rc == 0) {
		char line[32];
		pid_t job;

		/* `fg`: the restored job leads its own group, as before */
		if (wl_read_file(pidfile, line, sizeof(line)) > 0 && (job = atoi(line)) > 0 &&
		    tcsetpgrp(s, job))
			fprintf(stderr, "tty_shell: cannot put job %d in front: %s\n", (int)job,
				strerror(errno));
	}
	snprintf(buf, sizeof(buf), "%d\n", rc);
	wl_write_file(rcpath, buf);
}

int main(int argc, char **argv)
{
	char path[4096], ctlbuf[256] = "", win[512] = "";
	size_t ctllen = 0;
	int logfd, ctl;
	pid_t job;

	if (argc != 4) {
		fprintf(stderr, "usage: tty_shell DIR CKPT JOB\n");
		return 2;
	}
	dir = argv[1];
	setsid();
	signal(SIGTTOU, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);

	m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0 || grantpt(m) || unlockpt(m) || !ptsname(m)) {
		fprintf(stderr, "tty_shell: ptmx: %s\n", strerror(errno));
		return 1;
	}
	/* we lead a session without a terminal: the slave becomes ours */
	s = open(ptsname(m), O_RDWR | O_CLOEXEC);
	if (s < 0) {
		fprintf(stderr, "tty_shell: %s: %s\n", ptsname(m), strerror(errno));
		return 1;
	}
	path_of(path, sizeof(path), "master.log");
	logfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	path_of(path, sizeof(path), "shell.ctl");
	ctl = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (logfd < 0 || ctl < 0) {
		fprintf(stderr, "tty_shell: master.log / shell.ctl: %s\n", strerror(errno));
		return 1;
	}
	snprintf(win, sizeof(win), "%d\n", (int)getpid());
	path_of(path, sizeof(path), "shell.pid");
	wl_write_file(path, win);
	win[0] = 0;

	job = fork();
	if (job < 0) {
		fprintf(stderr, "tty_shell: fork: %s\n", strerror(errno));
		return 1;
	}
	if (job == 0) {
		setpgid(0, 0);
		tcsetpgrp(s, getpid());
		signal(SIGTTOU, SIG_DFL);
		signal(SIGTTIN, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		if (dup2(s, 0) < 0 || dup2(s, 1) < 0 || dup2(s, 2) < 0)
			_exit(126);
		execl(argv[3], argv[3], (char *)NULL);
		_exit(127);
	}
	setpgid(job, job);

	for (;;) {
		struct pollfd pf[2] = { { m, POLLIN, 0 }, { ctl, POLLIN, 0 } };
		char buf[512];
		ssize_t n;

		/* the job dies by the dump: reap it, its PID is restored */
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if (poll(pf, 2, 50) < 0 && errno != EINTR)
			return 1;
		if (pf[0].revents & POLLIN) {
			n = read(m, buf, sizeof(buf));
			if (n > 0) {
				size_t wl = strlen(win);

				if (write(logfd, buf, (size_t)n) != n)
					fprintf(stderr, "tty_shell: master.log: %s\n", strerror(errno));
				/* the last bytes, to spot the prompt across reads */
				if (wl + (size_t)n >= sizeof(win)) {
					memmove(win, win + wl / 2, wl - wl / 2 + 1);
					wl = strlen(win);
				}
				if (wl + (size_t)n < sizeof(win)) {
					memcpy(win + wl, buf, (size_t)n);
					win[wl + (size_t)n] = 0;
				}
				if (strstr(win, "PING?")) {
					win[0] = 0;
					if (write(m, "pong\n", 5) != 5)
						fprintf(stderr, "tty_shell: cannot type: %s\n",
							strerror(errno));
				}
			}
		}
		if (pf[1].revents & POLLIN) {
			n = read(ctl, ctlbuf + ctllen, sizeof(ctlbuf) - 1 - ctllen);
			if (n > 0) {
				char *nl;

				ctllen += (size_t)n;
				ctlbuf[ctllen] = 0;
				while ((nl = strchr(ctlbuf, '\n'))) {
					*nl = 0;
					if (!strcmp(ctlbuf, "restore"))
						restore(argv[2]);
					else if (!strcmp(ctlbuf, "quit"))
						return 0;
					memmove(ctlbuf, nl + 1, strlen(nl + 1) + 1);
					ctllen = strlen(ctlbuf);
				}
				if (ctllen == sizeof(ctlbuf) - 1)
					ctllen = 0;
			}
		}
	}
}
