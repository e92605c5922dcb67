/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lock_mapped — POSIX locks on a file the processes also map (SQLite's
 * WAL -shm pattern).  fd 20 is lock-mapped, 8 KiB, MAP_SHARED by both:
 *
 *   parent: write lock on bytes 0..9, read lock on bytes 100..149; fd 19
 *           is the same file read-only (a write lock cannot be taken on it)
 *   child:  inherited mapping; write lock on 200..209 through its own open
 *           file at fd 21 (a second record of the inode)
 *
 * After SIGUSR1 a freshly forked checker (no locks of its own) must find
 * each lock held by the right pid with F_GETLK and be refused by F_SETLK
 * where it conflicts, and get the free bytes; the mapping must still
 * share data with the file both ways, in the parent and in the child.
 *
 * "lock_mapped hold PATH READY": take a write lock on bytes 0..9 of PATH,
 * write READY, and wait to be killed (the conflict of a failure scenario).
 */
#include "fsutil.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define SZ 8192
#define TEXT "mapped and locked"

static int setlk(int fd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return fcntl(fd, F_SETLK, &fl);
}

/* F_GETLK: the type of the conflicting lock (F_UNLCK for none), its pid. */
static short getlk(int fd, short type, off_t start, off_t len, pid_t *pid)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	if (fcntl(fd, F_GETLK, &fl))
		return -1;
	*pid = fl.l_pid;
	return fl.l_type;
}

/* A fresh process: 0, or the number of the failed check. */
static int checker(const char *path, pid_t parent, pid_t child)
{
	int fd = open(path, O_RDWR);
	pid_t pid = 0;

	if (fd < 0)
		return 1;
	if (getlk(fd, F_RDLCK, 5, 1, &pid) != F_WRLCK || pid != parent)
		return 2;
	if (getlk(fd, F_WRLCK, 120, 1, &pid) != F_RDLCK || pid != parent)
		return 3;
	if (getlk(fd, F_RDLCK, 120, 1, &pid) != F_UNLCK)
		return 4;
	if (getlk(fd, F_RDLCK, 205, 1, &pid) != F_WRLCK || pid != child)
		return 5;
	if (getlk(fd, F_WRLCK, 20, 50, &pid) != F_UNLCK)
		return 6;
	if (setlk(fd, F_WRLCK, 0, 1) == 0 || (errno != EAGAIN && errno != EACCES))
		return 7;
	if (setlk(fd, F_WRLCK, 140, 1) == 0 || (errno != EAGAIN && errno != EACCES))
		return 8;
	if (setlk(fd, F_RDLCK, 209, 1) == 0 || (errno != EAGAIN && errno != EACCES))
		return 9;
	if (setlk(fd, F_WRLCK, 20, 50) || setlk(fd, F_RDLCK, 100, 50))
		return 10;
	return 0;
}

/* Data written through the mapping shows in the file and back. */
static int shares(char *m, int fd, off_t off, const char *tag)
{
	char buf[16] = "";
	size_t n = strlen(tag);

	memcpy(m + off, tag, n);
	if (pread(fd, buf, n, off) != (ssize_t)n || memcmp(buf, tag, n))
		return 0;
	if (pwrite(fd, "file", 4, off + 16) != 4 || memcmp(m + off + 16, "file", 4))
		return 0;
	return !memcmp(m, TEXT, strlen(TEXT));
}

static int hold(const char *path, const char *ready)
{
	int fd = open(path, O_RDWR);
	char pid[24];

	if (fd < 0 || setlk(fd, F_WRLCK, 0, 10)) {
		fprintf(stderr, "hold %s: %s\n", path, strerror(errno));
		return 1;
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (wl_write_file(ready, pid))
		return 1;
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	char path[512], b;
	int go[2], res[2], st = 0;
	pid_t child, c;
	char *m;

	if (argc == 4 && !strcmp(argv[1], "hold"))
		return hold(argv[2], argv[3]);
	wl_init("lock_mapped");
	snprintf(path, sizeof(path), "%s/lock-mapped", wl_dir());
	fs_place(open(path, O_RDWR | O_CREAT | O_TRUNC, 0644), 20, "lock-mapped");
	if (ftruncate(20, SZ))
		wl_die("ftruncate: %s", strerror(errno));
	fs_write_all(20, TEXT, strlen(TEXT), "lock-mapped");
	fs_place(open(path, O_RDONLY), 19, "lock-mapped (read-only)");
	m = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, 20, 0);
	if (m == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	if (setlk(20, F_WRLCK, 0, 10) || setlk(20, F_RDLCK, 100, 50))
		wl_die("lock: %s", strerror(errno));
	if (pipe(go) || pipe(res))
		wl_die("pipe: %s", strerror(errno));
	child = fork();
	if (child < 0)
		wl_die("fork: %s", strerror(errno));
	if (child == 0) {
		close(go[1]);
		close(res[0]);
		fs_place(open(path, O_RDWR), 21, "lock-mapped (child)");
		if (setlk(21, F_WRLCK, 200, 10))
			_exit(2);
		if (write(res[1], "l", 1) != 1)
			_exit(3);
		/* woken after the restore: its mapping must still be the file's */
		if (read(go[0], &b, 1) != 1)
			_exit(4);
		_exit(shares(m, 20, 4096 + 512, "child") ? 0 : 5);
	}
	close(go[0]);
	close(res[1]);
	if (read(res[0], &b, 1) != 1)
		wl_die("the child did not take its lock");

	wl_ready();
	wl_wait_usr1();

	c = fork();
	if (c == 0)
		_exit(checker(path, getppid(), child));
	waitpid(c, &st, 0);
	WL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "lock check %d failed (status %#x)",
		 WIFEXITED(st) ? WEXITSTATUS(st) : -1, st);
	WL_CHECK(shares(m, 20, 4096, "parent"), "the parent's mapping no longer shares data "
						 "with lock-mapped");
	if (write(go[1], "g", 1) != 1)
		wl_fail("waking the child: %s", strerror(errno));
	waitpid(child, &st, 0);
	WL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		 "the child's mapping check failed (status %#x)", st);
	wl_finish();
}
