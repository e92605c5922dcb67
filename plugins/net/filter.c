// SPDX-License-Identifier: GPL-2.0-only
/*
 * Classic BPF socket filters (SO_ATTACH_FILTER), which the kernel gives
 * back with SO_GET_FILTER, and SO_LOCK_FILTER.  An eBPF program attached
 * with SO_ATTACH_BPF cannot be read back: such a socket is refused.
 */
#include <linux/filter.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net.h"

#ifndef SO_GET_FILTER
#define SO_GET_FILTER SO_ATTACH_FILTER
#endif
#ifndef SO_LOCK_FILTER
#define SO_LOCK_FILTER 44
#endif

int sock_filter_dump(struct net_priv *p, int fd, ProtobufCBinaryData *out, bool *locked,
		     const char *what)
{
	socklen_t n = 0, l;
	int v = 0;
	void *buf;

	out->data = NULL;
	out->len = 0;
	*locked = false;
	/* the length is counted in instructions; 0 asks how many */
	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, NULL, &n) < 0) {
		if (errno == EACCES) {
			net_err(p, "%s has an eBPF socket filter (SO_ATTACH_BPF), which cannot be "
				   "read back; detach it before the dump",
				what);
			return -EOPNOTSUPP;
		}
		return 0; /* no filter */
	}
	if (n == 0)
		return 0;
	buf = calloc(n, sizeof(struct sock_filter));
	if (!buf)
		return -ENOMEM;
	if (getsockopt(fd, SOL_SOCKET, SO_GET_FILTER, buf, &n) < 0) {
		int e = errno;

		free(buf);
		net_err(p, "%s: cannot read its socket filter: %s", what, strerror(e));
		return net_errno(e);
	}
	out->data = buf;
	out->len = (size_t)n * sizeof(struct sock_filter);
	l = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &v, &l) == 0)
		*locked = v != 0;
	return 0;
}

int sock_filter_restore(struct net_priv *p, int fd, const ProtobufCBinaryData *f, bool locked,
			const char *what)
{
	struct sock_fprog prog;
	int one = 1;

	if (!f->len)
		return 0;
	if (f->len % sizeof(struct sock_filter) || f->len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
		net_err(p, "restore: %s: socket filter of %zu bytes; the images are damaged", what, f->len);
		return -EBADMSG;
	}
	prog.len = (unsigned short)(f->len / sizeof(struct sock_filter));
	prog.filter = (struct sock_filter *)f->data;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) {
		int e = errno;

		net_err(p, "restore: %s: cannot attach its socket filter: %s", what, strerror(e));
		return net_errno(e);
	}
	if (locked && setsockopt(fd, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one)) < 0) {
		int e = errno;

		net_err(p, "restore: %s: cannot lock its socket filter: %s", what, strerror(e));
		return net_errno(e);
	}
	return 0;
}
