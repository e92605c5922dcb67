/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tty_session — a session on a pty whose leader forked two children, every
 * member with the pty as controlling terminal.
 *
 *   leader  fd 10 the master, fd 11 the slave (controlling terminal, raw)
 *   child A stays in the leader's process group; fd 11 the slave, fd 12
 *           /dev/tty opened before the dump
 *   child B leads a process group of its own, the pty's foreground group;
 *           fd 11 the slave
 *
 * Each child waits on a pipe of its own (fd 20) for the leader's go and
 * writes its findings to DIR/tty_session.NAME.  Before ready the same checks
 * run once, so the test cannot pass by what the restore did not have to
 * bring back.  After SIGUSR1 every member checks: its session and group,
 * that the pty is its controlling terminal (/proc/self/stat tty_nr), ttyname
 * of fd 11, TIOCGSID (the leader) and tcgetpgrp (B's group) through fd 11,
 * and that open("/dev/tty") works and is the pty; A that its fd 12 is still
 * /dev/tty; B sends a line to the master and reads one from it (the leader
 * does the other end).
 */
#include "fsutil.h"

#include <stdarg.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>

#ifndef TIOCGDEV
#define TIOCGDEV _IOR('T', 0x32, unsigned int)
#endif

static unsigned int index_;
static char name[64];
static pid_t leader, child_b;

/* A child's failed checks, written to its file (the result file is the
 * leader's alone). */
static char why[1000];
static bool is_child;

static void __attribute__((format(printf, 1, 2))) bad(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (!is_child) {
		char line[512];

		vsnprintf(line, sizeof(line), fmt, ap);
		wl_fail("%s", line);
	} else {
		wl_vappend(why, sizeof(why), fmt, ap);
	}
	va_end(ap);
}

#define CHECK(cond, ...)            \
	do {                        \
		if (!(cond))        \
			bad(__VA_ARGS__); \
	} while (0)

/* Read from fd until buf holds text (or 3 s pass). */
static int expect(int fd, const char *text, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = 0;
	for (int i = 0; i < 60 && !strstr(buf, text); i++) {
		ssize_t n;

		if (fs_poll(fd, POLLIN, 50) <= 0)
			continue;
		n = read(fd, buf + len, size - 1 - len);
		if (n <= 0)
			continue;
		len += (size_t)n;
		buf[len] = 0;
		if (len + 1 >= size)
			break;
	}
	return strstr(buf, text) ? 0 : -1;
}

/* The controlling terminal as /proc/self/stat shows it (field 7). */
static unsigned int stat_tty_nr(void)
{
	char buf[1024], *p;
	unsigned int nr = 0;

	if (wl_read_file("/proc/self/stat", buf, sizeof(buf)) < 0 || !(p = strrchr(buf, ')')))
		return 0;
	if (sscanf(p + 2, "%*c %*d %*d %*d %u", &nr) != 1)
		return 0;
	return nr;
}

/* What every member checks; "who" names it in the messages.  Returns the
 * failed checks go through bad(). */
static void check_member(const char *who, pid_t want_pgrp)
{
	unsigned int dev = 0, nr = stat_tty_nr();
	const char *tn = ttyname(11);
	int t;

	CHECK(getsid(0) == leader, "%s: session %d, want %d", who, (int)getsid(0), (int)leader);
	CHECK(getpgrp() == want_pgrp, "%s: process group %d, want %d", who, (int)getpgrp(),
		 (int)want_pgrp);
	CHECK(major(nr) == 136 && minor(nr) == index_,
		 "%s: controlling terminal %u:%u in /proc/self/stat, want 136:%u", who, major(nr),
		 minor(nr), index_);
	CHECK(tn && !strcmp(tn, name), "%s: ttyname(11) is %s, want %s", who, tn ? tn : "(none)",
		 name);
	CHECK(tcgetsid(11) == leader, "%s: TIOCGSID %d (%s), want %d", who, (int)tcgetsid(11),
		 strerror(errno), (int)leader);
	CHECK(tcgetpgrp(11) == child_b, "%s: foreground group %d (%s), want %d", who,
		 (int)tcgetpgrp(11), strerror(errno), (int)child_b);
	t = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (t < 0) {
		bad("%s: /dev/tty does not open: %s", who, strerror(errno));
		return;
	}
	CHECK(ioctl(t, TIOCGDEV, &dev) == 0 && major(dev) == 136 && minor(dev) == index_,
		 "%s: /dev/tty is %u:%u, want 136:%u", who, major(dev), minor(dev), index_);
	close(t);
}

/* A child: check now, then wait for the go (one byte on fd 20) and check
 * again; the findings go to DIR/tty_session.WHO and a byte to fd 21. */
static void __attribute__((noreturn)) child(const char *who, bool own_group)
{
	char path[512], buf[1100], c;
	pid_t pgrp = own_group ? getpid() : leader;

	is_child = true;

	for (int round = 0; round < 2; round++) {
		if (round && read(20, &c, 1) != 1)
			bad("%s: no go from the leader: %s", who, strerror(errno));
		check_member(who, pgrp);
		if (!own_group) {
			unsigned int dev = 0;

			CHECK(!strcmp(fs_fdlink(12), "/dev/tty"), "%s: fd 12 is '%s', want /dev/tty",
				 who, fs_fdlink(12));
			CHECK(ioctl(12, TIOCGDEV, &dev) == 0 && major(dev) == 136 &&
					 minor(dev) == index_,
				 "%s: fd 12 is %u:%u, want 136:%u", who, major(dev), minor(dev), index_);
		} else {
			const char *out = round ? "from-b-after\n" : "from-b-before\n";
			const char *in = round ? "to-b-after" : "to-b-before";
			ssize_t n = write(11, out, strlen(out));

			CHECK(n == (ssize_t)strlen(out), "%s: write to the slave: %s", who,
				 n < 0 ? strerror(errno) : "short");
			CHECK(!expect(11, in, buf, sizeof(buf)), "%s: read '%s' from the slave, want '%s'",
				 who, buf, in);
		}
		snprintf(path, sizeof(path), "%s/tty_session.%s", wl_dir(), who);
		if (why[0]) {
			snprintf(buf, sizeof(buf), "FAIL %s: %s\n", round ? "after" : "before", why);
			wl_write_file(path, buf);
		} else {
			wl_write_file(path, round ? "OK after\n" : "OK before\n");
		}
		if (write(21, "k", 1) != 1)
			_exit(3);
		if (round || why[0])
			for (;;)
				pause();
	}
	_exit(0);
}

/* The leader: wait for a child's byte on fd and check its file. */
static void collect(int fd, const char *who, const char *want)
{
	char path[512], buf[256] = "";
	char c;

	snprintf(path, sizeof(path), "%s/tty_session.%s", wl_dir(), who);
	if (fs_poll(fd, POLLIN, 5000) <= 0 || read(fd, &c, 1) != 1) {
		wl_fail("child %s gave no answer (%s)", who,
			wl_read_file(path, buf, sizeof(buf)) > 0 ? buf : "no file");
		return;
	}
	if (wl_read_file(path, buf, sizeof(buf)) < 0 || strncmp(buf, want, strlen(want)))
		wl_fail("child %s: '%s', want '%s'", who, buf, want);
}

static pid_t spawn(const char *who, bool own_group, int go[2], int ack[2])
{
	pid_t k;

	if (pipe(go) || pipe(ack))
		wl_die("pipe: %s", strerror(errno));
	k = fork();
	if (k < 0)
		wl_die("fork: %s", strerror(errno));
	if (k == 0) {
		if (own_group)
			setpgid(0, 0);
		close(10);
		fs_place(go[0], 20, "go");
		fs_place(ack[1], 21, "ack");
		close(go[1]);
		close(ack[0]);
		if (own_group)
			child_b = getpid();
		else
			fs_place(open("/dev/tty", O_RDWR), 12, "/dev/tty");
		/* until the leader made B's group the foreground group */
		for (int i = 0; i < 1000 && tcgetpgrp(11) != child_b; i++)
			fs_sleep_ms(5);
		child(who, own_group);
	}
	if (own_group)
		setpgid(k, k);
	close(go[0]);
	close(ack[1]);
	return k;
}

int main(void)
{
	int m, s, one_go[2], one_ack[2], b_go[2], b_ack[2];
	char buf[512];
	struct termios tio;
	sigset_t tt;
	pid_t a;

	wl_init("fs/tty_session");
	leader = getpid();
	/* tcsetpgrp from a background group: no SIGTTOU stop */
	sigemptyset(&tt);
	sigaddset(&tt, SIGTTOU);
	sigprocmask(SIG_BLOCK, &tt, NULL);

	m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m) || ioctl(m, TIOCGPTN, &index_))
		wl_die("posix_openpt: %s", strerror(errno));
	snprintf(name, sizeof(name), "/dev/pts/%u", index_);
	fs_place(m, 10, "master");
	s = open(name, O_RDWR); /* we lead a session without one: it becomes ours */
	fs_place(s, 11, name);
	if (tcgetattr(11, &tio))
		wl_die("tcgetattr: %s", strerror(errno));
	cfmakeraw(&tio);
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	if (tcsetattr(11, TCSANOW, &tio))
		wl_die("tcsetattr: %s", strerror(errno));

	child_b = spawn("B", true, b_go, b_ack);
	a = spawn("A", false, one_go, one_ack);
	if (tcsetpgrp(11, child_b))
		wl_die("tcsetpgrp: %s", strerror(errno));

	/* the first round: everything holds before the dump */
	collect(one_ack[0], "A", "OK before");
	if (expect(10, "from-b-before", buf, sizeof(buf)))
		wl_fail("the master read '%s', want from-b-before", buf);
	fs_write_all(10, "to-b-before\n", 12, "master");
	collect(b_ack[0], "B", "OK before");
	check_member("leader", leader);
	if (wl_failed())
		wl_die("the session is not as wanted before the dump");

	wl_ready();
	wl_wait_usr1();

	check_member("leader", leader);
	WL_CHECK(getpgid(a) == leader && getpgid(child_b) == child_b,
		 "the children's groups are %d and %d, want %d and %d", (int)getpgid(a),
		 (int)getpgid(child_b), (int)leader, (int)child_b);
	if (write(one_go[1], "g", 1) != 1 || write(b_go[1], "g", 1) != 1)
		wl_fail("cannot tell the children to go: %s", strerror(errno));
	collect(one_ack[0], "A", "OK after");
	if (expect(10, "from-b-after", buf, sizeof(buf)))
		wl_fail("the master read '%s' after the restore, want from-b-after", buf);
	fs_write_all(10, "to-b-after\n", 11, "master");
	collect(b_ack[0], "B", "OK after");

	kill(a, SIGKILL);
	kill(child_b, SIGKILL);
	waitpid(a, NULL, 0);
	waitpid(child_b, NULL, 0);
	wl_finish();
}
