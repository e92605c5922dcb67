/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * pipes — anonymous pipes with bytes in flight.
 *
 *   fds 20/21   pipe A: read end O_NONBLOCK, write end blocking; 10000
 *               pattern bytes queued; fd 26 is a dup of the write end
 *   fds 22/23   pipe B, F_SETPIPE_SZ 256 KiB: read end blocking, write end
 *               O_NONBLOCK; 150000 pattern bytes queued
 *   fds 24/25   pipe C, empty; written and read after the restore
 *
 * After SIGUSR1: flags and pipe sizes per end, the queued bytes exactly
 * (nothing more), that each read end still pairs with its write end, and
 * EOF once every write end of A is closed (nobody else holds one).
 */
#include "fsutil.h"

#include <sys/ioctl.h>

#define A_LEN 10000
#define B_LEN 150000
#define B_SIZE (256 * 1024)

static unsigned char buf[B_SIZE];

static void check_queue(int rfd, unsigned int seed, size_t want, const char *name)
{
	int q = -1;
	size_t got = 0;

	WL_CHECK(ioctl(rfd, FIONREAD, &q) == 0 && q == (int)want, "pipe %s holds %d bytes, want %zu",
		 name, q, want);
	if (q != (int)want)
		return;
	while (got < want) {
		ssize_t n = read(rfd, buf + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			wl_fail("pipe %s: read after %zu bytes: %s", name, got, n < 0 ? strerror(errno) : "EOF");
			return;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < want; i++) {
		if (buf[i] != fs_pat(seed, i)) {
			wl_fail("pipe %s: byte %zu is %#x, want %#x", name, i, buf[i], fs_pat(seed, i));
			return;
		}
	}
	WL_CHECK(ioctl(rfd, FIONREAD, &q) == 0 && q == 0, "pipe %s holds %d more bytes", name, q);
}

static void check_pair(int rfd, int wfd, const char *name)
{
	char msg[] = "hello after restore", got[sizeof(msg)] = "";
	ssize_t n;

	WL_CHECK(write(wfd, msg, sizeof(msg)) == (ssize_t)sizeof(msg), "pipe %s: write to fd %d: %s", name, wfd,
		 strerror(errno));
	n = read(rfd, got, sizeof(got));
	WL_CHECK(n == (ssize_t)sizeof(msg) && !memcmp(got, msg, sizeof(msg)),
		 "pipe %s: fd %d read %zd bytes '%.20s' after writing fd %d", name, rfd, n, got, wfd);
}

int main(void)
{
	int p[2];

	wl_init("fs/pipes");
	for (size_t i = 0; i < B_LEN; i++)
		buf[i] = fs_pat(2, i);

	if (pipe2(p, O_NONBLOCK))
		wl_die("pipe A: %s", strerror(errno));
	fs_place(p[0], 20, "pipe A");
	fs_place(p[1], 21, "pipe A");
	fcntl(21, F_SETFL, 0);
	for (size_t i = 0; i < A_LEN; i++)
		buf[i] = fs_pat(1, i);
	fs_write_all(21, buf, A_LEN, "pipe A");
	fs_place(dup(21), 26, "pipe A dup");

	if (pipe(p))
		wl_die("pipe B: %s", strerror(errno));
	fs_place(p[0], 22, "pipe B");
	fs_place(p[1], 23, "pipe B");
	if (fcntl(22, F_SETPIPE_SZ, B_SIZE) < B_SIZE)
		wl_die("F_SETPIPE_SZ: %s", strerror(errno));
	for (size_t i = 0; i < B_LEN; i++)
		buf[i] = fs_pat(2, i);
	fs_write_all(23, buf, B_LEN, "pipe B");
	fcntl(23, F_SETFL, O_NONBLOCK);

	if (pipe(p))
		wl_die("pipe C: %s", strerror(errno));
	fs_place(p[0], 24, "pipe C");
	fs_place(p[1], 25, "pipe C");

	wl_ready();
	wl_wait_usr1();

	WL_CHECK((fs_getfl(20) & (O_ACCMODE | O_NONBLOCK)) == (O_RDONLY | O_NONBLOCK), "fd 20 flags 0%o",
		 fs_getfl(20));
	WL_CHECK((fs_getfl(21) & (O_ACCMODE | O_NONBLOCK)) == O_WRONLY, "fd 21 flags 0%o", fs_getfl(21));
	WL_CHECK((fs_getfl(22) & (O_ACCMODE | O_NONBLOCK)) == O_RDONLY, "fd 22 flags 0%o", fs_getfl(22));
	WL_CHECK((fs_getfl(23) & (O_ACCMODE | O_NONBLOCK)) == (O_WRONLY | O_NONBLOCK), "fd 23 flags 0%o",
		 fs_getfl(23));
	WL_CHECK(fcntl(22, F_GETPIPE_SZ) == B_SIZE, "pipe B size %d, want %d", fcntl(22, F_GETPIPE_SZ), B_SIZE);
	WL_CHECK(fcntl(20, F_GETPIPE_SZ) == 65536, "pipe A size %d, want 65536", fcntl(20, F_GETPIPE_SZ));
	{
		char l20[64], l21[64], l22[64], l26[64];
		snprintf(l20, sizeof(l20), "%s", fs_fdlink(20));
		snprintf(l21, sizeof(l21), "%s", fs_fdlink(21));
		snprintf(l22, sizeof(l22), "%s", fs_fdlink(22));
		snprintf(l26, sizeof(l26), "%s", fs_fdlink(26));
		WL_CHECK(!strncmp(l20, "pipe:[", 6) && !strcmp(l20, l21) && !strcmp(l21, l26),
			 "fds 20, 21, 26 are not one pipe (%s %s %s)", l20, l21, l26);
		WL_CHECK(strcmp(l20, l22) != 0, "pipes A and B are one pipe");
	}

	check_queue(20, 1, A_LEN, "A");
	check_queue(22, 2, B_LEN, "B");
	{
		int q = -1;
		WL_CHECK(ioctl(24, FIONREAD, &q) == 0 && q == 0, "pipe C holds %d bytes, want 0", q);
	}
	check_pair(20, 21, "A");
	check_pair(20, 26, "A (dup)");
	check_pair(22, 23, "B");
	check_pair(24, 25, "C");

	/* EOF: nobody else may hold a write end of A */
	close(21);
	close(26);
	{
		char c;
		ssize_t n = read(20, &c, 1);
		WL_CHECK(n == 0, "pipe A: read after closing its write ends gave %zd (%s), want EOF", n,
			 n < 0 ? strerror(errno) : "data");
	}
	wl_finish();
}
