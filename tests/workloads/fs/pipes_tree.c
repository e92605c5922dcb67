/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * pipes_tree — two pipes between a parent and its child, with bytes in
 * flight in both directions.
 *
 *   pipe A   parent -> child: the parent wrote 20000 pattern bytes (fd 20
 *            in the parent is its write end, fd 21 in the child its read end)
 *   pipe B   child -> parent: the child wrote 30000 pattern bytes (fd 22 in
 *            the child is its write end, fd 23 in the parent its read end)
 * Nobody reads before the dump; each process holds only its own ends.
 *
 * After SIGUSR1 the parent checks B's bytes, wakes the child (SIGUSR1),
 * which checks A's bytes and answers "OK" or its failure through B, then
 * exits; the parent then must see EOF on B (no other write end exists).
 */
#include "fsutil.h"

#include <sys/ioctl.h>
#include <sys/wait.h>

#define A_LEN 20000
#define B_LEN 30000

static unsigned char buf[B_LEN];

/* Read exactly len bytes of pattern seed from fd; "" or a reason. */
static const char *check_bytes(int fd, unsigned int seed, size_t len)
{
	static char why[128];
	size_t got = 0;
	int q = -1;

	if (ioctl(fd, FIONREAD, &q) || q != (int)len) {
		snprintf(why, sizeof(why), "holds %d bytes, want %zu", q, len);
		return why;
	}
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(why, sizeof(why), "read after %zu bytes: %s", got, n < 0 ? strerror(errno) : "EOF");
			return why;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < len; i++)
		if (buf[i] != fs_pat(seed, i)) {
			snprintf(why, sizeof(why), "byte %zu differs", i);
			return why;
		}
	return "";
}

static void child(void)
{
	char msg[160];
	const char *why;
	int len;

	for (size_t i = 0; i < B_LEN; i++)
		buf[i] = fs_pat(42, i);
	fs_write_all(22, buf, B_LEN, "pipe B");
	wl_wait_usr1();
	why = check_bytes(21, 41, A_LEN);
	len = snprintf(msg, sizeof(msg), "%s", *why ? why : "OK");
	if (write(22, msg, (size_t)len) != len)
		_exit(3);
	_exit(*why ? 1 : 0);
}

int main(void)
{
	int a[2], b[2], st = 0, n;
	char msg[161] = "";
	const char *why;
	pid_t c;

	wl_init("fs/pipes_tree");
	if (pipe(a) || pipe(b))
		wl_die("pipe: %s", strerror(errno));
	c = fork();
	if (c < 0)
		wl_die("fork: %s", strerror(errno));
	if (c == 0) {
		close(a[1]);
		close(b[0]);
		fs_place(a[0], 21, "child A");
		fs_place(b[1], 22, "child B");
		child();
	}
	close(a[0]);
	close(b[1]);
	fs_place(a[1], 20, "parent A");
	fs_place(b[0], 23, "parent B");
	for (size_t i = 0; i < A_LEN; i++)
		buf[i] = fs_pat(41, i);
	fs_write_all(20, buf, A_LEN, "pipe A");
	/* the child's bytes are in flight before ready */
	for (int i = 0; i < 500 && (ioctl(23, FIONREAD, &n) || n < B_LEN); i++)
		fs_sleep_ms(10);
	if (n < B_LEN)
		wl_die("the child wrote only %d bytes", n);

	wl_ready();
	wl_wait_usr1();

	why = check_bytes(23, 42, B_LEN);
	WL_CHECK(!*why, "pipe B (child -> parent): %s", why);
	WL_CHECK(kill(c, SIGUSR1) == 0, "kill child %d: %s", (int)c, strerror(errno));
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;
	n = (int)read(23, msg, sizeof(msg) - 1);
	msg[n > 0 ? n : 0] = 0;
	WL_CHECK(n == 2 && !strcmp(msg, "OK"), "the child on pipe A (parent -> child): %s", n > 0 ? msg : "no answer");
	WL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child ended with status %#x", st);
	n = (int)read(23, msg, 1);
	WL_CHECK(n == 0, "pipe B after the child exited: read gave %d, want EOF", n);
	wl_finish();
}
