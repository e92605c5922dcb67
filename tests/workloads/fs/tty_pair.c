/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tty_pair — a session leader on a pty pair of its own.
 *
 *   fd 10  the master (O_NONBLOCK, packet mode)
 *   fd 11  the slave, our controlling terminal: raw mode with VINTR ^G,
 *          9600 baud, window 37x123 (640x480 pixels)
 *   fd 12  /dev/tty, opened through the controlling terminal
 *   fd 13  the master of a second pty, never unlocked (its slave was never
 *          open)
 *   fd 14  the master of a third pty whose slave was opened and closed (it
 *          polls POLLHUP, reads fail with EIO)
 *
 * Before ready a line goes each way.  After SIGUSR1: the same pty indexes
 * and name, the settings above, packet mode, the locks, lines both ways
 * (slave -> master through fd 11 and fd 12), /dev/tty opens and is that
 * pty, the pty is the controlling terminal of our session and its
 * foreground group is ours; the second pty is still locked, the third
 * still hung up.  (A locked pty is never probed by opening its slave: a
 * refused open leaves the slave in I/O error for good.)
 *
 * With the argument "fg" a child in a process group of its own is made the
 * foreground group before the dump; after SIGUSR1 the foreground group must
 * be the child's again (then it is taken back for the I/O checks).  The
 * child itself only waits (tty_session checks what the members see).
 */
#include "fsutil.h"

#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>

#ifndef TIOCGDEV
#define TIOCGDEV _IOR('T', 0x32, unsigned int)
#endif

#define ROWS 37
#define COLS 123

static struct termios want;
static unsigned int index2, index3;

/* Read from fd until buf holds text (or 3 s pass); packet mode reads start
 * with a status byte, which must be TIOCPKT_DATA (0). */
static int expect(int fd, const char *text, bool packet, const char *what)
{
	char buf[512];
	size_t len = 0, tl = strlen(text);

	buf[0] = 0;
	for (int i = 0; i < 60 && !strstr(buf, text); i++) {
		char tmp[256];
		ssize_t n;

		if (fs_poll(fd, POLLIN, 50) <= 0)
			continue;
		n = read(fd, tmp, sizeof(tmp));
		if (n <= 0)
			continue;
		if (packet) {
			if (tmp[0] != 0) {
				wl_fail("%s: packet status byte %#x, want data (0)", what,
					(unsigned char)tmp[0]);
				return -1;
			}
			memmove(tmp, tmp + 1, (size_t)--n);
		}
		if (len + (size_t)n >= sizeof(buf))
			break;
		memcpy(buf + len, tmp, (size_t)n);
		len += (size_t)n;
		buf[len] = 0;
	}
	if (!strstr(buf, text) || len < tl) {
		wl_fail("%s: got '%s', want '%s'", what, buf, text);
		return -1;
	}
	return 0;
}

static void setup(unsigned int *index, char *name, size_t namelen)
{
	struct winsize ws = { ROWS, COLS, 640, 480 };
	int m, s, t, one = 1;

	m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m) || ioctl(m, TIOCGPTN, index))
		wl_die("posix_openpt: %s", strerror(errno));
	snprintf(name, namelen, "/dev/pts/%u", *index);
	fs_place(m, 10, "master");
	/* we lead a session without a terminal: this one becomes ours */
	s = open(name, O_RDWR);
	fs_place(s, 11, name);
	if (tcgetpgrp(11) != getpgrp())
		wl_die("%s did not become the controlling terminal", name);

	if (tcgetattr(11, &want))
		wl_die("tcgetattr: %s", strerror(errno));
	cfmakeraw(&want);
	want.c_cc[VINTR] = 7; /* ^G */
	want.c_cc[VMIN] = 1;
	want.c_cc[VTIME] = 0;
	cfsetispeed(&want, B9600);
	cfsetospeed(&want, B9600);
	if (tcsetattr(11, TCSANOW, &want) || ioctl(11, TIOCSWINSZ, &ws))
		wl_die("tcsetattr/TIOCSWINSZ: %s", strerror(errno));
	/* packet mode after the settings: they queue no status byte then */
	if (ioctl(10, TIOCPKT, &one))
		wl_die("TIOCPKT: %s", strerror(errno));
	if (fcntl(10, F_SETFL, fcntl(10, F_GETFL) | O_NONBLOCK))
		wl_die("O_NONBLOCK: %s", strerror(errno));
	t = open("/dev/tty", O_RDWR);
	fs_place(t, 12, "/dev/tty");

	fs_write_all(10, "ping-before\n", 12, "master");
	if (expect(11, "ping-before", false, "slave reads before the dump"))
		wl_die("no line master -> slave");
	fs_write_all(11, "pong-before\n", 12, "slave");
	if (expect(10, "pong-before", true, "master reads before the dump"))
		wl_die("no line slave -> master");

	/* a pty left locked, and one whose slave came and went */
	m = posix_openpt(O_RDWR | O_NOCTTY);
	fs_place(m, 13, "second master");
	m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m))
		wl_die("third pty: %s", strerror(errno));
	s = open(ptsname(m), O_RDWR | O_NOCTTY);
	if (s < 0)
		wl_die("third slave: %s", strerror(errno));
	close(s);
	fs_place(m, 14, "third master");
	if (ioctl(13, TIOCGPTN, &index2) || ioctl(14, TIOCGPTN, &index3))
		wl_die("TIOCGPTN: %s", strerror(errno));
	if (!(fs_poll(14, POLLIN, 0) > 0) || fs_poll(13, POLLIN, 0) != 0)
		wl_die("the third pty is not hung up or the second is");
}

static void check_settings(unsigned int index, const char *name)
{
	struct termios t;
	struct winsize ws;
	unsigned int n = ~0u;
	int v;

	WL_CHECK(ioctl(10, TIOCGPTN, &n) == 0 && n == index, "pty index %u, want %u", n, index);
	WL_CHECK(!strcmp(fs_fdlink(10), "/dev/ptmx") || !strcmp(fs_fdlink(10), "/dev/pts/ptmx"),
		 "fd 10 is '%s', want /dev/ptmx", fs_fdlink(10));
	WL_CHECK(!strcmp(fs_fdlink(11), name), "fd 11 is '%s', want %s", fs_fdlink(11), name);
	WL_CHECK(!strcmp(fs_fdlink(12), "/dev/tty"), "fd 12 is '%s', want /dev/tty", fs_fdlink(12));
	WL_CHECK(fcntl(10, F_GETFL) & O_NONBLOCK, "the master lost O_NONBLOCK");
	WL_CHECK(!(fcntl(11, F_GETFL) & O_NONBLOCK), "the slave got O_NONBLOCK");
	if (tcgetattr(11, &t)) {
		wl_fail("tcgetattr: %s", strerror(errno));
	} else {
		WL_CHECK(t.c_iflag == want.c_iflag && t.c_oflag == want.c_oflag &&
				 t.c_cflag == want.c_cflag && t.c_lflag == want.c_lflag,
			 "termios flags %o/%o/%o/%o, want %o/%o/%o/%o", t.c_iflag, t.c_oflag,
			 t.c_cflag, t.c_lflag, want.c_iflag, want.c_oflag, want.c_cflag, want.c_lflag);
		WL_CHECK(t.c_cc[VINTR] == 7, "VINTR is %#x, want ^G", t.c_cc[VINTR]);
		WL_CHECK(!memcmp(t.c_cc, want.c_cc, sizeof(t.c_cc)), "c_cc differs");
		WL_CHECK(cfgetospeed(&t) == B9600 && cfgetispeed(&t) == B9600, "speed is not 9600");
	}
	if (ioctl(11, TIOCGWINSZ, &ws))
		wl_fail("TIOCGWINSZ: %s", strerror(errno));
	else
		WL_CHECK(ws.ws_row == ROWS && ws.ws_col == COLS && ws.ws_xpixel == 640 &&
				 ws.ws_ypixel == 480,
			 "window %ux%u (%ux%u px), want %ux%u (640x480)", ws.ws_row, ws.ws_col,
			 ws.ws_xpixel, ws.ws_ypixel, ROWS, COLS);
	v = -1;
	WL_CHECK(ioctl(10, TIOCGPKT, &v) == 0 && v == 1, "packet mode is %d, want 1", v);
	/* (not probed with an open of the slave: a refused open leaves the
	 * slave in I/O error for good) */
	v = -1;
	WL_CHECK(ioctl(10, TIOCGPTLCK, &v) == 0 && v == 0, "the pty lock is %d, want 0", v);

	n = ~0u;
	WL_CHECK(ioctl(13, TIOCGPTN, &n) == 0 && n == index2, "second pty index %u, want %u", n,
		 index2);
	v = -1;
	WL_CHECK(ioctl(13, TIOCGPTLCK, &v) == 0 && v == 1, "the second pty's lock is %d, want 1",
		 v);
	WL_CHECK(fs_poll(13, POLLIN, 0) == 0, "the second pty polls ready");
	n = ~0u;
	WL_CHECK(ioctl(14, TIOCGPTN, &n) == 0 && n == index3, "third pty index %u, want %u", n,
		 index3);
	{
		struct pollfd pf = { 14, POLLIN, 0 };
		char c;

		WL_CHECK(poll(&pf, 1, 0) == 1 && (pf.revents & POLLHUP),
			 "the third pty is not hung up (revents %#x)", pf.revents);
		WL_CHECK(read(14, &c, 1) < 0 && errno == EIO, "reading the third master: %s, want EIO",
			 strerror(errno));
	}
}

/* After the restore: a failed write is a failed check, not a setup error. */
static void put(int fd, const char *text, const char *what)
{
	ssize_t n = write(fd, text, strlen(text));

	WL_CHECK(n == (ssize_t)strlen(text), "%s: write gave %zd: %s", what, n,
		 n < 0 ? strerror(errno) : "short");
}

static void check_ctty(unsigned int index, pid_t fg)
{
	unsigned int dev = 0;
	int t;

	WL_CHECK(getsid(0) == getpid(), "sid %d, want %d", (int)getsid(0), (int)getpid());
	WL_CHECK(tcgetsid(11) == getpid(), "tcgetsid %d, want %d (not our controlling terminal?)",
		 (int)tcgetsid(11), (int)getpid());
	WL_CHECK(tcgetpgrp(11) == fg, "foreground group %d, want %d", (int)tcgetpgrp(11), (int)fg);
	t = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (t < 0) {
		wl_fail("/dev/tty does not open: %s", strerror(errno));
		return;
	}
	WL_CHECK(ioctl(t, TIOCGDEV, &dev) == 0 && major(dev) == 136 && minor(dev) == index,
		 "/dev/tty is %u:%u, want 136:%u", major(dev), minor(dev), index);
	close(t);
	dev = 0;
	WL_CHECK(ioctl(12, TIOCGDEV, &dev) == 0 && major(dev) == 136 && minor(dev) == index,
		 "fd 12 (/dev/tty) is %u:%u, want 136:%u", major(dev), minor(dev), index);
}

int main(int argc, char **argv)
{
	bool fgmode = argc > 1 && !strcmp(argv[1], "fg");
	unsigned int index = 0;
	char name[64];
	pid_t child = 0;
	sigset_t tt;

	wl_init(fgmode ? "fs/tty_pair fg" : "fs/tty_pair");
	/* tcsetpgrp from a background group: no SIGTTOU stop */
	sigemptyset(&tt);
	sigaddset(&tt, SIGTTOU);
	sigprocmask(SIG_BLOCK, &tt, NULL);
	setup(&index, name, sizeof(name));
	if (fgmode) {
		child = fork();
		if (child < 0)
			wl_die("fork: %s", strerror(errno));
		if (child == 0) {
			setpgid(0, 0);
			for (;;)
				pause();
		}
		setpgid(child, child);
		if (tcsetpgrp(11, child))
			wl_die("tcsetpgrp: %s", strerror(errno));
	}

	wl_ready();
	wl_wait_usr1();

	check_settings(index, name);
	check_ctty(index, fgmode ? child : getpgrp());
	if (fgmode) {
		WL_CHECK(getpgid(child) == child, "the child's group is %d, want %d",
			 (int)getpgid(child), (int)child);
		if (tcsetpgrp(11, getpgrp()))
			wl_fail("cannot take the foreground back: %s", strerror(errno));
	}
	/* both ways, and through /dev/tty */
	put(10, "ping-after\n", "master");
	expect(11, "ping-after", false, "slave reads after the restore");
	put(11, "pong-after\n", "slave");
	expect(10, "pong-after", true, "master reads after the restore");
	put(12, "devtty-after\n", "/dev/tty");
	expect(10, "devtty-after", true, "master reads what /dev/tty wrote");
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	wl_finish();
}
