/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * files — file descriptors.
 *
 *   fd 1, 2   one open file (dup2) on a log file: writes after the restore
 *             must land after the earlier ones, in order, none overwritten
 *   fd 10     O_WRONLY|O_APPEND file, its offset moved to 0 before ready:
 *             a write after restore must still append
 *   fd 11     O_RDONLY file positioned at 12445: the next read must return
 *             the bytes at that offset
 *   fd 42     the same file, FD_CLOEXEC; fd 43 without FD_CLOEXEC
 *   fd 50     /dev/null O_RDWR
 * and no other fd may exist after the restore (0 as the driver gave it).
 */
#include "workload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define FD_APPEND 10
#define FD_READ 11
#define FD_CLOEXEC_ON 42
#define FD_CLOEXEC_OFF 43
#define FD_NULL 50

#define READ_SIZE 65536
#define READ_POS 12345
#define READ_LEN 100

static unsigned char read_byte(size_t i)
{
	return (unsigned char)(i * 7 + i / 251);
}

static void put_fd(int fd, int at)
{
	if (fd < 0)
		wl_die("open: %s", strerror(errno));
	if (fd != at) {
		int fl = fcntl(fd, F_GETFD);
		if (fl < 0 || dup3(fd, at, (fl & FD_CLOEXEC) ? O_CLOEXEC : 0) != at)
			wl_die("dup2 %d->%d: %s", fd, at, strerror(errno));
		close(fd);
	}
}

static void write_all(int fd, const char *s)
{
	size_t len = strlen(s);

	if (write(fd, s, len) != (ssize_t)len)
		wl_fail("write to fd %d: %s", fd, strerror(errno));
}

/* The set of open fds, as a bitmap of the first 1024. */
static void list_fds(unsigned char *set)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	memset(set, 0, 1024);
	if (!d) {
		wl_fail("opendir /proc/self/fd: %s", strerror(errno));
		return;
	}
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == dirfd(d))
			continue;
		if (fd >= 0 && fd < 1024)
			set[fd] = 1;
		else
			wl_fail("unexpected fd %s", e->d_name);
	}
	closedir(d);
}

int main(void)
{
	char logp[4096], appp[4096], readp[4096], before[8192], after[8192 + 64], want[8192 + 64];
	unsigned char buf[READ_LEN], fds_ready[1024], fds_now[1024];
	struct stat st0, st, st_log, st_read;
	int fd, flags;
	off_t pos;

	wl_init("files");

	snprintf(logp, sizeof(logp), "%s/files-out.%d", wl_dir(), (int)getpid());
	snprintf(appp, sizeof(appp), "%s/files-append.%d", wl_dir(), (int)getpid());
	snprintf(readp, sizeof(readp), "%s/files-read.%d", wl_dir(), (int)getpid());

	/* stdout + stderr: one open file */
	fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		wl_die("open %s: %s", logp, strerror(errno));
	if (dup2(fd, 1) != 1 || dup2(fd, 2) != 2)
		wl_die("dup2 log: %s", strerror(errno));
	close(fd);
	write_all(1, "before\n");
	write_all(2, "err-before\n");

	/* O_APPEND file, offset moved away from the end */
	put_fd(open(appp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644), FD_APPEND);
	write_all(FD_APPEND, "line1\n");
	write_all(FD_APPEND, "line2\n");
	if (lseek(FD_APPEND, 0, SEEK_SET) != 0)
		wl_die("lseek append file: %s", strerror(errno));

	/* read-only file at an offset */
	fd = open(readp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		wl_die("create %s: %s", readp, strerror(errno));
	for (size_t i = 0; i < READ_SIZE; i += sizeof(before)) {
		for (size_t j = 0; j < sizeof(before); j++)
			before[j] = (char)read_byte(i + j);
		if (write(fd, before, sizeof(before)) != (ssize_t)sizeof(before))
			wl_die("write %s: %s", readp, strerror(errno));
	}
	close(fd);
	put_fd(open(readp, O_RDONLY), FD_READ);
	if (lseek(FD_READ, READ_POS, SEEK_SET) != READ_POS || read(FD_READ, buf, READ_LEN) != READ_LEN)
		wl_die("read %s: %s", readp, strerror(errno));
	for (size_t j = 0; j < READ_LEN; j++)
		if (buf[j] != read_byte(READ_POS + j))
			wl_die("read %s returned wrong bytes before the dump", readp);

	put_fd(open(readp, O_RDONLY | O_CLOEXEC), FD_CLOEXEC_ON);
	put_fd(open(readp, O_RDONLY), FD_CLOEXEC_OFF);
	put_fd(open("/dev/null", O_RDWR), FD_NULL);

	if (fstat(0, &st0) || fstat(1, &st_log) || fstat(FD_READ, &st_read))
		wl_die("fstat: %s", strerror(errno));

	wl_ready(); /* prints its line into the log too */
	if (wl_read_file(logp, before, sizeof(before)) < 0)
		wl_die("read %s: %s", logp, strerror(errno));
	list_fds(fds_ready);

	wl_wait_usr1();

	list_fds(fds_now);
	for (int i = 0; i < 1024; i++)
		if (fds_now[i] != fds_ready[i])
			wl_fail("fd %d %s", i, fds_now[i] ? "appeared" : "is missing");

	/* fd 0 */
	if (fstat(0, &st))
		wl_fail("fstat(0): %s", strerror(errno));
	else
		WL_CHECK(st.st_mode == st0.st_mode && st.st_rdev == st0.st_rdev && st.st_ino == st0.st_ino,
			 "fd 0 is another file");

	/* O_APPEND */
	flags = fcntl(FD_APPEND, F_GETFL);
	WL_CHECK(flags >= 0 && (flags & O_APPEND) && (flags & O_ACCMODE) == O_WRONLY,
		 "append fd flags %#x, want O_WRONLY|O_APPEND", flags);
	write_all(FD_APPEND, "line3\n");
	pos = lseek(FD_APPEND, 0, SEEK_CUR);
	WL_CHECK(pos == 18, "append fd offset %lld after the write, want 18", (long long)pos);
	if (wl_read_file(appp, after, sizeof(after)) < 0)
		wl_fail("read %s: %s", appp, strerror(errno));
	else
		WL_CHECK(!strcmp(after, "line1\nline2\nline3\n"), "append file holds \"%.40s\"", after);

	/* read offset */
	flags = fcntl(FD_READ, F_GETFL);
	WL_CHECK(flags >= 0 && (flags & O_ACCMODE) == O_RDONLY && !(flags & O_APPEND), "read fd flags %#x", flags);
	pos = lseek(FD_READ, 0, SEEK_CUR);
	WL_CHECK(pos == READ_POS + READ_LEN, "read fd offset %lld, want %d", (long long)pos, READ_POS + READ_LEN);
	if (read(FD_READ, buf, READ_LEN) != READ_LEN) {
		wl_fail("read after restore: %s", strerror(errno));
	} else {
		for (size_t j = 0; j < READ_LEN; j++)
			if (buf[j] != read_byte(READ_POS + READ_LEN + j)) {
				wl_fail("read after restore returned the bytes of another offset");
				break;
			}
	}

	/* FD_CLOEXEC */
	flags = fcntl(FD_CLOEXEC_ON, F_GETFD);
	WL_CHECK(flags >= 0 && (flags & FD_CLOEXEC), "fd %d lost FD_CLOEXEC (%d)", FD_CLOEXEC_ON, flags);
	flags = fcntl(FD_CLOEXEC_OFF, F_GETFD);
	WL_CHECK(flags >= 0 && !(flags & FD_CLOEXEC), "fd %d gained FD_CLOEXEC (%d)", FD_CLOEXEC_OFF, flags);
	if (fstat(FD_CLOEXEC_ON, &st) || st.st_ino != st_read.st_ino || st.st_dev != st_read.st_dev)
		wl_fail("fd %d is not the read file", FD_CLOEXEC_ON);
	if (fstat(FD_CLOEXEC_OFF, &st) || st.st_ino != st_read.st_ino || st.st_dev != st_read.st_dev)
		wl_fail("fd %d is not the read file", FD_CLOEXEC_OFF);
	WL_CHECK(lseek(FD_CLOEXEC_ON, 0, SEEK_CUR) == 0, "fd %d offset moved", FD_CLOEXEC_ON);

	/* /dev/null */
	if (fstat(FD_NULL, &st))
		wl_fail("fstat /dev/null fd: %s", strerror(errno));
	else
		WL_CHECK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3), "fd %d is not /dev/null", FD_NULL);
	flags = fcntl(FD_NULL, F_GETFL);
	WL_CHECK(flags >= 0 && (flags & O_ACCMODE) == O_RDWR, "/dev/null fd flags %#x", flags);
	WL_CHECK(write(FD_NULL, "x", 1) == 1, "write /dev/null: %s", strerror(errno));
	WL_CHECK(read(FD_NULL, buf, 1) == 0, "read /dev/null did not return EOF");

	/* stdout / stderr */
	if (fstat(1, &st) || st.st_ino != st_log.st_ino || st.st_dev != st_log.st_dev)
		wl_fail("fd 1 is not the log file");
	if (fstat(2, &st) || st.st_ino != st_log.st_ino || st.st_dev != st_log.st_dev)
		wl_fail("fd 2 is not the log file");
	write_all(1, "after\n");
	write_all(2, "err-after\n");
	snprintf(want, sizeof(want), "%safter\nerr-after\n", before);
	if (wl_read_file(logp, after, sizeof(after)) < 0)
		wl_fail("read %s: %s", logp, strerror(errno));
	else
		WL_CHECK(!strcmp(after, want), "log file holds \"%.200s\", want \"%.200s\"", after, want);

	wl_finish();
}
