/* SPDX-License-Identifier: GPL-2.0-only */
/* Helpers shared by the benchmark workloads (memhog, treehog): text output
 * and ready/verify files, usable from signal handlers.  Define BENCH_PROG
 * (the program's name, for messages) before including. */
#ifndef CKPT_BENCHUTIL_H
#define CKPT_BENCHUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

/* Append the decimal digits of v to buf at *len (async-signal-safe). */
static void put_num(char *buf, size_t size, size_t *len, unsigned long long v)
{
	char digits[24];
	int n = 0;

	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n && *len + 1 < size)
		buf[(*len)++] = digits[--n];
	buf[*len] = '\0';
}

static void put_str(char *buf, size_t size, size_t *len, const char *s)
{
	while (*s && *len + 1 < size)
		buf[(*len)++] = *s++;
	buf[*len] = '\0';
}

/* Write text to path through path.tmp.PID and rename(); -errno on failure.
 * Async-signal-safe. */
static int write_file(const char *path, const char *text)
{
	char tmp[PATH_MAX + 32];
	size_t len = 0, tlen = strlen(text);
	int fd, err;

	if (strlen(path) + 30 >= sizeof(tmp))
		return -ENAMETOOLONG;
	put_str(tmp, sizeof(tmp), &len, path);
	put_str(tmp, sizeof(tmp), &len, ".tmp.");
	put_num(tmp, sizeof(tmp), &len, (unsigned long long)getpid());

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, text, tlen) != (ssize_t)tlen) {
		err = errno ? errno : EIO;
		close(fd);
		unlink(tmp);
		return -err;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		err = errno;
		unlink(tmp);
		return -err;
	}
	return 0;
}

static void say(const char *a, const char *b)
{
	char line[PATH_MAX + 128];
	size_t len = 0;

	put_str(line, sizeof(line), &len, BENCH_PROG ": ");
	put_str(line, sizeof(line), &len, a);
	put_str(line, sizeof(line), &len, b);
	put_str(line, sizeof(line), &len, "\n");
	if (write(STDERR_FILENO, line, len) < 0)
		return;
}

#endif
