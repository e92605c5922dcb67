/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * locks — file locks held at dump time, and one lock request waiting.
 *
 *   fd 20  lk-flock: flock(LOCK_EX)
 *   fd 21  lk-posix: POSIX write lock on bytes 10..29, read lock 100..EOF
 *   fd 22  lk-ofd:   OFD write lock on bytes 0..99
 *   child "waiter": its own open file of lk-posix, blocked in F_SETLKW
 *          on bytes 10..29 (held by the parent)
 *
 * After SIGUSR1 a freshly forked checker (no locks of its own) must find
 * each lock held by the right owner: LOCK_NB fails on lk-flock, F_GETLK
 * reports the parent's pid for both POSIX ranges and nothing in between,
 * F_OFD_GETLK reports the OFD lock (pid -1).  The waiter must still be
 * waiting; the parent then drops bytes 10..29 and the waiter must get them.
 */
#include "fsutil.h"

#include <sys/file.h>
#include <sys/wait.h>

static char dir[400];

static int lkopen(const char *name, int flags)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return open(path, flags | O_CREAT, 0644);
}

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return fcntl(fd, cmd, &fl);
}

/* F_GETLK-like probe: the conflicting lock's type and pid. */
static short probe(int fd, int cmd, short type, off_t start, off_t len, pid_t *pid)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	if (fcntl(fd, cmd, &fl))
		return -1;
	*pid = fl.l_pid;
	return fl.l_type;
}

/* Runs in a fresh child: 0, or the number of the failed check. */
static int checker(pid_t owner)
{
	int f = lkopen("lk-flock", O_RDWR), p = lkopen("lk-posix", O_RDWR), o = lkopen("lk-ofd", O_RDWR);
	pid_t pid = 0;

	if (f < 0 || p < 0 || o < 0)
		return 1;
	if (flock(f, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		return 2;
	if (flock(f, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		return 3;
	if (probe(p, F_GETLK, F_RDLCK, 15, 1, &pid) != F_WRLCK || pid != owner)
		return 4;
	if (probe(p, F_GETLK, F_WRLCK, 150, 10, &pid) != F_RDLCK || pid != owner)
		return 5;
	if (probe(p, F_GETLK, F_RDLCK, 150, 10, &pid) != F_UNLCK)
		return 6;
	if (probe(p, F_GETLK, F_WRLCK, 40, 50, &pid) != F_UNLCK)
		return 7;
	if (probe(o, F_OFD_GETLK, F_RDLCK, 50, 1, &pid) != F_WRLCK || pid != -1)
		return 8;
	if (probe(o, F_OFD_GETLK, F_RDLCK, 100, 10, &pid) != F_UNLCK)
		return 9;
	return 0;
}

static void waiter(int res)
{
	int fd = lkopen("lk-posix", O_RDWR);

	if (fd < 0)
		_exit(2);
	if (setlk(fd, F_SETLKW, F_WRLCK, 10, 20)) {
		dprintf(res, "F_SETLKW failed: %s", strerror(errno));
		_exit(1);
	}
	if (write(res, "got", 3) != 3)
		_exit(3);
	_exit(0);
}

int main(void)
{
	int res[2];
	pid_t w;

	wl_init("locks");
	snprintf(dir, sizeof(dir), "%s", wl_dir());
	fs_place(lkopen("lk-flock", O_RDWR), 20, "lk-flock");
	fs_place(lkopen("lk-posix", O_RDWR), 21, "lk-posix");
	fs_place(lkopen("lk-ofd", O_RDWR), 22, "lk-ofd");
	if (flock(20, LOCK_EX | LOCK_NB) || setlk(21, F_SETLK, F_WRLCK, 10, 20) ||
	    setlk(21, F_SETLK, F_RDLCK, 100, 0) || setlk(22, F_OFD_SETLK, F_WRLCK, 0, 100))
		wl_die("locking: %s", strerror(errno));
	if (pipe(res))
		wl_die("pipe: %s", strerror(errno));
	w = fork();
	if (w < 0)
		wl_die("fork: %s", strerror(errno));
	if (w == 0) {
		close(res[0]);
		waiter(res[1]);
	}
	close(res[1]);
	/* the waiter is queued on our lock before we say ready */
	for (int i = 0; i < 500; i++) {
		char buf[4096];
		if (wl_read_file("/proc/locks", buf, sizeof(buf)) > 0 && strstr(buf, "->"))
			break;
		fs_sleep_ms(10);
	}

	wl_ready();
	wl_wait_usr1();

	pid_t c = fork();
	if (c == 0)
		_exit(checker(getppid()));
	int st = 0;
	waitpid(c, &st, 0);
	WL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "lock check %d failed (status %#x)",
		 WIFEXITED(st) ? WEXITSTATUS(st) : -1, st);

	char buf[128] = "";
	fcntl(res[0], F_SETFL, O_NONBLOCK);
	WL_CHECK(read(res[0], buf, sizeof(buf)) < 0 && errno == EAGAIN,
		 "the waiter got the lock while the parent held it: %s", buf);
	if (setlk(21, F_SETLK, F_UNLCK, 10, 20))
		wl_fail("unlock: %s", strerror(errno));
	WL_CHECK(fs_poll(res[0], POLLIN, 5000) == 1, "the waiter did not get the lock once free");
	ssize_t n = read(res[0], buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	WL_CHECK(!strcmp(buf, "got"), "the waiter: '%s'", buf);
	waitpid(w, &st, 0);
	wl_finish();
}
