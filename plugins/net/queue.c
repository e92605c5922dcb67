// SPDX-License-Identifier: GPL-2.0-only
/*
 * Reading a socket's receive queue without consuming it.
 *
 * MSG_PEEK alone always starts at the head of the queue; with SO_PEEK_OFF
 * the kernel starts at a byte offset instead, so the walk sets the offset
 * before every read (the kernel moves it too, but a datagram that did not
 * fit the buffer must be read again from the same place) and puts the
 * task's own SO_PEEK_OFF back at the end.  A dump with -R thus leaves the
 * queue exactly as it was.
 *
 * File descriptors in flight (SCM_RIGHTS) come out of a peek as new fds in
 * this process: they are closed and counted, and the caller refuses the
 * socket.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

#define QUEUE_MAX_BYTES (512u << 20)
#define QUEUE_MAX_MSGS (1u << 20)

void queue_free(struct peeked *q)
{
	for (size_t i = 0; i < q->n; i++)
		free(q->m[i].data);
	free(q->m);
	memset(q, 0, sizeof(*q));
}

static int add_msg(struct peeked *q, const uint8_t *data, size_t len, bool append,
		   const struct sockaddr_un *from, socklen_t fromlen)
{
	struct peeked_msg *m;

	if (append && q->n) {
		uint8_t *nd;

		m = &q->m[q->n - 1];
		nd = realloc(m->data, m->len + len);
		if (!nd && m->len + len)
			return -ENOMEM;
		m->data = nd;
		memcpy(m->data + m->len, data, len);
		m->len += len;
		q->bytes += len;
		return 0;
	}
	if (q->n == q->cap) {
		size_t ncap = q->cap ? q->cap * 2 : 16;
		struct peeked_msg *n = realloc(q->m, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		q->m = n;
		q->cap = ncap;
	}
	m = &q->m[q->n];
	memset(m, 0, sizeof(*m));
	m->data = malloc(len ? len : 1);
	if (!m->data)
		return -ENOMEM;
	memcpy(m->data, data, len);
	m->len = len;
	if (from && fromlen > offsetof(struct sockaddr_un, sun_path)) {
		size_t nl = fromlen - offsetof(struct sockaddr_un, sun_path);

		if (nl > sizeof(m->sender))
			nl = sizeof(m->sender);
		memcpy(m->sender, from->sun_path, nl);
		m->senderlen = nl;
	}
	q->n++;
	q->bytes += len;
	return 0;
}

/* Close what a peek handed us; count the fds in flight. */
static void scan_cmsgs(struct msghdr *mh, struct peeked *q)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_RIGHTS || c->cmsg_type == SCM_PIDFD) {
			size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			int *fds = (int *)CMSG_DATA(c);

			for (size_t i = 0; i < n; i++) {
				int fd;

				memcpy(&fd, &fds[i], sizeof(fd));
				if (fd >= 0)
					close(fd);
			}
			if (c->cmsg_type == SCM_RIGHTS)
				q->nfds += (int)n;
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)
		q->nfds++; /* something did not fit: treat as fds in flight */
}

int queue_peek(int fd, bool records, bool stop_on_eof, struct peeked *q, const char **what)
{
	size_t cap = 64 << 10, off = 0;
	int orig = -1, ret = 0;
	bool have_orig;
	socklen_t l = sizeof(orig);
	uint8_t *buf;
	union {
		struct cmsghdr h;
		char b[4096];
	} cbuf;

	memset(q, 0, sizeof(*q));
	have_orig = getsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &orig, &l) == 0;
	buf = malloc(cap);
	if (!buf) {
		*what = "allocating a buffer";
		return -ENOMEM;
	}
	for (;;) {
		struct sockaddr_un from;
		struct iovec iov = { .iov_base = buf, .iov_len = cap };
		struct msghdr mh = {
			.msg_name = records ? &from : NULL,
			.msg_namelen = records ? sizeof(from) : 0,
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = cbuf.b,
			.msg_controllen = sizeof(cbuf.b),
		};
		int o = (int)off;
		ssize_t n;

		if (off > INT32_MAX || setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &o, sizeof(o)) < 0) {
			ret = off > INT32_MAX ? -EFBIG : -errno;
			*what = "setting SO_PEEK_OFF";
			break;
		}
		memset(&from, 0, sizeof(from));
		n = recvmsg(fd, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC |
					     (records ? MSG_TRUNC : 0));
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno == EINTR)
				continue;
			ret = -errno;
			*what = "reading the queue with MSG_PEEK";
			break;
		}
		scan_cmsgs(&mh, q);
		if (records && (size_t)n > cap) {
			/* a datagram larger than the buffer: again, whole */
			uint8_t *nb = realloc(buf, (size_t)n);

			if (!nb) {
				ret = -ENOMEM;
				*what = "allocating a buffer";
				break;
			}
			buf = nb;
			cap = (size_t)n;
			continue;
		}
		if (n == 0 && (!records || stop_on_eof))
			break; /* end of stream / shut down for receiving */
		ret = add_msg(q, buf, (size_t)n, !records, records ? &from : NULL, mh.msg_namelen);
		if (ret) {
			*what = "saving the queue";
			break;
		}
		off += (size_t)n;
		if (q->bytes > QUEUE_MAX_BYTES || q->n > QUEUE_MAX_MSGS) {
			ret = -EFBIG;
			*what = "reading the queue (more than 512 MiB or 1M messages queued)";
			break;
		}
	}
	free(buf);
	if (have_orig)
		setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &orig, sizeof(orig));
	if (ret)
		queue_free(q);
	return ret;
}
