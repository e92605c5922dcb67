/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * blocked_read — a task dumped while blocked in read().
 *
 * Opens the FIFO named by argv[1] (or $CKPT_TEST_FIFO) O_RDWR, moves it to
 * fd 0, writes ready and blocks in read(0).  The driver restores it and then
 * writes one line into the FIFO; the workload checks it got exactly that
 * line ($CKPT_TEST_EXPECT, default "hello after restore") and reports.
 * It needs no SIGUSR1.
 */
#include "workload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *fifo = argc > 1 ? argv[1] : getenv("CKPT_TEST_FIFO");
	const char *expect = getenv("CKPT_TEST_EXPECT");
	char buf[512], want[512];
	size_t got = 0;
	struct stat st;
	int fd;

	wl_init("blocked_read");
	if (!fifo || !*fifo)
		wl_die("usage: blocked_read FIFO (or CKPT_TEST_FIFO)");
	if (!expect || !*expect)
		expect = "hello after restore";
	snprintf(want, sizeof(want), "%s\n", expect);

	fd = open(fifo, O_RDWR);
	if (fd < 0)
		wl_die("open %s: %s", fifo, strerror(errno));
	if (fstat(fd, &st) || !S_ISFIFO(st.st_mode))
		wl_die("%s is not a FIFO", fifo);
	if (dup2(fd, 0) != 0)
		wl_die("dup2: %s", strerror(errno));
	close(fd);

	wl_ready();

	/* Read up to the end of the first line. */
	while (got < sizeof(buf) - 1) {
		ssize_t n = read(0, buf + got, sizeof(buf) - 1 - got);
		if (n < 0) {
			wl_fail("read(0) failed: %s", strerror(errno));
			break;
		}
		if (n == 0) {
			wl_fail("read(0) returned EOF");
			break;
		}
		got += (size_t)n;
		if (memchr(buf, '\n', got))
			break;
	}
	buf[got] = 0;
	if (!wl_failed())
		WL_CHECK(!strcmp(buf, want), "read \"%.100s\", want \"%.100s\"", buf, want);
	if (fstat(0, &st) || !S_ISFIFO(st.st_mode))
		wl_fail("fd 0 is no longer a FIFO");
	wl_finish();
}
