/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the net workloads: deterministic byte streams, reads
 * with a time limit, fd placement.
 */
#ifndef CKPT_NETWL_H
#define CKPT_NETWL_H

#include "workload.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Byte i of stream s. */
static inline unsigned char nw_byte(unsigned s, size_t i)
{
	return (unsigned char)(wl_word(s, i / 8) >> ((i % 8) * 8));
}

static inline void nw_fill(unsigned s, size_t from, unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = nw_byte(s, from + i);
}

/* Move fd to number at (keeping FD_CLOEXEC off). */
static inline void nw_place(int fd, int at, const char *what)
{
	if (fd < 0)
		wl_die("%s: %s", what, strerror(errno));
	if (fd == at)
		return;
	if (dup2(fd, at) != at)
		wl_die("dup2 %s -> %d: %s", what, at, strerror(errno));
	close(fd);
}

/* Wait up to ms for fd to be readable (1), or not (0). */
static inline int nw_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

/* Read exactly len bytes of stream s starting at offset from; each byte
 * is checked.  Waits at most 5 s for data.  0 when all matched. */
static inline int nw_expect_stream(int fd, unsigned s, size_t from, size_t len, const char *what)
{
	unsigned char buf[65536];
	size_t got = 0;

	while (got < len) {
		size_t want = len - got > sizeof(buf) ? sizeof(buf) : len - got;
		ssize_t n;

		if (!nw_readable(fd, 5000)) {
			wl_fail("%s: only %zu of %zu bytes arrived", what, got, len);
			return -1;
		}
		n = recv(fd, buf, want, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			wl_fail("%s: read after %zu of %zu bytes: %s", what, got, len,
				n < 0 ? strerror(errno) : "end of stream");
			return -1;
		}
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != nw_byte(s, from + got + (size_t)i)) {
				wl_fail("%s: byte %zu is 0x%02x, want 0x%02x", what, got + (size_t)i,
					buf[i], nw_byte(s, from + got + (size_t)i));
				return -1;
			}
		got += (size_t)n;
	}
	return 0;
}

/* Nothing more to read within ms. */
static inline void nw_expect_nothing(int fd, int ms, const char *what)
{
	char c;
	ssize_t n;

	if (!nw_readable(fd, ms))
		return;
	n = recv(fd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
	if (n > 0)
		wl_fail("%s: more data than expected", what);
}

/* Write len bytes of stream s from offset from, all of them (blocking). */
static inline int nw_send_stream(int fd, unsigned s, size_t from, size_t len, const char *what)
{
	unsigned char buf[65536];
	size_t done = 0;

	while (done < len) {
		size_t n = len - done > sizeof(buf) ? sizeof(buf) : len - done;
		ssize_t w;

		nw_fill(s, from + done, buf, n);
		w = send(fd, buf, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			if (poll(&p, 1, 5000) != 1) {
				wl_fail("%s: cannot write for 5 s", what);
				return -1;
			}
			continue;
		}
		if (w <= 0) {
			wl_fail("%s: write: %s", what, strerror(errno));
			return -1;
		}
		done += (size_t)w;
	}
	return 0;
}

static inline int nw_sockopt(int fd, int level, int name)
{
	int v = -12345;
	socklen_t l = sizeof(v);

	if (getsockopt(fd, level, name, &v, &l))
		return -12345;
	return v;
}

#endif
