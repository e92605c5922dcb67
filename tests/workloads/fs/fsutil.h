/* SPDX-License-Identifier: GPL-2.0-only */
/* Small helpers shared by the fs plugin's workloads. */
#ifndef CKPT_FS_WL_UTIL_H
#define CKPT_FS_WL_UTIL_H

#include "workload.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Move fd to number at (keeping FD_CLOEXEC off); dies on failure. */
static inline void fs_place(int fd, int at, const char *what)
{
	if (fd < 0)
		wl_die("%s: %s", what, strerror(errno));
	if (fd == at)
		return;
	if (dup2(fd, at) != at)
		wl_die("%s: dup2 %d -> %d: %s", what, fd, at, strerror(errno));
	close(fd);
}

/* The text of /proc/self/fdinfo/FD (static buffer), "" on error. */
static inline const char *fs_fdinfo(int fd)
{
	static char buf[8192];
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (wl_read_file(path, buf, sizeof(buf)) < 0)
		buf[0] = 0;
	return buf;
}

/* The link of /proc/self/fd/FD (static buffer), "" on error. */
static inline const char *fs_fdlink(int fd)
{
	static char buf[512];
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, sizeof(buf) - 1);
	buf[n < 0 ? 0 : n] = 0;
	return buf;
}

/* poll() one fd for up to ms milliseconds in all: the driver re-sends
 * SIGUSR1 every second, and an interrupted poll goes on with the time
 * left.  Returns poll's result (0 on timeout). */
static inline int fs_poll(int fd, short events, int ms)
{
	struct pollfd pf = { fd, events, 0 };
	uint64_t end = wl_now_ns(CLOCK_MONOTONIC) + (uint64_t)ms * 1000000ULL, now;
	int r;

	for (;;) {
		now = wl_now_ns(CLOCK_MONOTONIC);
		r = poll(&pf, 1, now >= end ? 0 : (int)((end - now + 999999ULL) / 1000000ULL));
		if (r >= 0 || errno != EINTR || now >= end)
			return r;
	}
}

/* nanosleep for ms milliseconds, through signals */
static inline void fs_sleep_ms(long ms)
{
	struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&d, &d) && errno == EINTR)
		;
}

static inline int fs_getfl(int fd)
{
	return fcntl(fd, F_GETFL);
}

/* Write all of buf; dies on failure (setup only). */
static inline void fs_write_all(int fd, const void *buf, size_t len, const char *what)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, (const char *)buf + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			wl_die("%s: write: %s", what, n < 0 ? strerror(errno) : "short");
		off += (size_t)n;
	}
}

/* Byte i of pattern seed. */
static inline unsigned char fs_pat(unsigned int seed, size_t i)
{
	return (unsigned char)(wl_word(seed, i / 8) >> (8 * (i % 8)));
}

#endif
