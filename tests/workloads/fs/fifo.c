/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * fifo — named FIFOs with queued bytes.
 *
 *   fds 20/21   $CKPT_TEST_DIR/fs-fifo1: read end O_NONBLOCK, write end;
 *               5000 pattern bytes queued, pipe size 128 KiB
 *   fd 22       $CKPT_TEST_DIR/fs-fifo2: only a read end (O_NONBLOCK); 3000
 *               bytes were written by a writer that closed since, so the
 *               reader gets them and then EOF
 */
#include "fsutil.h"

#include <limits.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

static unsigned char buf[8192];

static void check_data(int fd, unsigned int seed, size_t want, const char *name)
{
	size_t got = 0;
	int q = -1;

	WL_CHECK(ioctl(fd, FIONREAD, &q) == 0 && q == (int)want, "%s holds %d bytes, want %zu", name, q, want);
	while (got < want) {
		ssize_t n = read(fd, buf + got, want - got);
		if (n <= 0) {
			wl_fail("%s: read after %zu bytes: %s", name, got, n < 0 ? strerror(errno) : "EOF");
			return;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < want; i++)
		if (buf[i] != fs_pat(seed, i)) {
			wl_fail("%s: byte %zu differs", name, i);
			return;
		}
}

int main(void)
{
	char f1[PATH_MAX], f2[PATH_MAX];
	int w;

	wl_init("fs/fifo");
	snprintf(f1, sizeof(f1), "%s/fs-fifo1", wl_dir());
	snprintf(f2, sizeof(f2), "%s/fs-fifo2", wl_dir());
	unlink(f1);
	unlink(f2);
	if (mkfifo(f1, 0600) || mkfifo(f2, 0600))
		wl_die("mkfifo: %s", strerror(errno));

	fs_place(open(f1, O_RDONLY | O_NONBLOCK), 20, f1);
	fs_place(open(f1, O_WRONLY), 21, f1);
	if (fcntl(20, F_SETPIPE_SZ, 128 * 1024) < 0)
		wl_die("F_SETPIPE_SZ: %s", strerror(errno));
	for (size_t i = 0; i < 5000; i++)
		buf[i] = fs_pat(11, i);
	fs_write_all(21, buf, 5000, f1);

	fs_place(open(f2, O_RDONLY | O_NONBLOCK), 22, f2);
	w = open(f2, O_WRONLY);
	for (size_t i = 0; i < 3000; i++)
		buf[i] = fs_pat(12, i);
	fs_write_all(w, buf, 3000, f2);
	close(w);

	wl_ready();
	wl_wait_usr1();

	WL_CHECK(fcntl(20, F_GETPIPE_SZ) == 128 * 1024, "fifo1 pipe size %d", fcntl(20, F_GETPIPE_SZ));
	WL_CHECK((fs_getfl(20) & (O_ACCMODE | O_NONBLOCK)) == (O_RDONLY | O_NONBLOCK), "fd 20 flags 0%o",
		 fs_getfl(20));
	WL_CHECK((fs_getfl(21) & (O_ACCMODE | O_NONBLOCK)) == O_WRONLY, "fd 21 flags 0%o", fs_getfl(21));
	WL_CHECK(!strcmp(fs_fdlink(20), f1) && !strcmp(fs_fdlink(22), f2), "fds 20/22 link to %s / %s",
		 fs_fdlink(20), fs_fdlink(22));
	check_data(20, 11, 5000, "fifo1");
	check_data(22, 12, 3000, "fifo2");
	{
		char c;
		ssize_t n = read(22, &c, 1);
		WL_CHECK(n == 0, "fifo2 after its data: read gave %zd, want EOF (no writer)", n);
		WL_CHECK(write(21, "ping", 4) == 4, "fifo1 write: %s", strerror(errno));
		n = read(20, buf, sizeof(buf));
		WL_CHECK(n == 4 && !memcmp(buf, "ping", 4), "fifo1 read back %zd bytes", n);
	}
	unlink(f1);
	unlink(f2);
	wl_finish();
}
