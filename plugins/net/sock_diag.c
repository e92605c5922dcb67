// SPDX-License-Identifier: GPL-2.0-only
/*
 * One NETLINK_SOCK_DIAG request, answered message by message: the netlink
 * and packet classes ask the kernel about every socket of their family in
 * this network namespace and pick theirs by inode; unix_diag.c loads the
 * whole table, or asks for one socket.
 */
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

int sock_diag_query(const void *req, size_t reqlen, bool dump,
		    int (*cb)(const struct nlmsghdr *h, void *arg), void *arg)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct nlmsghdr hdr = {
		.nlmsg_len = (uint32_t)NLMSG_LENGTH(reqlen),
		.nlmsg_type = SOCK_DIAG_BY_FAMILY,
		.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0)),
		.nlmsg_seq = 1,
	};
	struct iovec iov[2] = { { &hdr, NLMSG_HDRLEN }, { (void *)req, reqlen } };
	struct msghdr mh = { .msg_name = &sa, .msg_namelen = sizeof(sa), .msg_iov = iov, .msg_iovlen = 2 };
	size_t bufsz = 64 << 10;
	uint8_t *buf;
	int nl, ret = 0;
	bool done = false;

	nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -errno;
	buf = malloc(bufsz);
	if (!buf) {
		close(nl);
		return -ENOMEM;
	}
	if (sendmsg(nl, &mh, 0) < 0) {
		ret = -errno;
		done = true;
	}
	while (!done) {
		ssize_t n = recv(nl, buf, bufsz, 0);
		struct nlmsghdr *h;
		int len;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			break;
		}
		len = (int)n;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned int)len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *err = NLMSG_DATA(h);

				ret = err->error ? err->error : -EIO;
				done = true;
				break;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
				continue;
			ret = cb(h, arg);
			if (ret || !dump) {
				done = true;
				break;
			}
		}
	}
	free(buf);
	close(nl);
	return ret;
}

int sock_diag_dump(const void *req, size_t reqlen,
		   int (*cb)(const struct nlmsghdr *h, void *arg), void *arg)
{
	return sock_diag_query(req, reqlen, true, cb, arg);
}
