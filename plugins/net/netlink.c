// SPDX-License-Identifier: GPL-2.0-only
/*
 * Netlink sockets (class "netlink", image net-netlink.img of
 * ckpt.net.NetlinkSk).
 *
 * Saved: protocol, type, the port id (when bound: explicitly or by the
 * kernel on first use), every multicast group joined, the connected
 * destination, the SOL_NETLINK options, SOL_SOCKET options and a classic
 * BPF filter.  Restore binds a new socket to the same port id, joins the
 * groups and connects it.
 *
 * Refused: a socket with unread messages or with a dump request in
 * progress.  The messages came from the kernel; nothing can queue them again
 * with the kernel as their sender, and a half-read dump cannot be resumed.
 * The task must read what it asked for first (a retried dump usually
 * finds it idle).
 */
#include <linux/netlink.h>
#include <linux/netlink_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_LIST_MEMBERSHIPS
#define NETLINK_LIST_MEMBERSHIPS 9
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

/* The boolean SOL_NETLINK options that can be read back. */
static const int nl_bool_opts[] = {
	NETLINK_PKTINFO,	 NETLINK_BROADCAST_ERROR, NETLINK_NO_ENOBUFS,
	NETLINK_LISTEN_ALL_NSID, NETLINK_CAP_ACK,	  NETLINK_EXT_ACK,
	NETLINK_GET_STRICT_CHK,
};

struct nl_diag {
	uint64_t ino;
	bool found;
	uint32_t rmem;   /* bytes waiting in the receive queue */
	uint32_t nflags; /* NDIAG_FLAG_* */
};

static int nl_diag_cb(const struct nlmsghdr *h, void *arg)
{
	const struct netlink_diag_msg *m = NLMSG_DATA(h);
	struct nl_diag *d = arg;
	const struct rtattr *a;
	int len;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)) || m->ndiag_ino != d->ino)
		return 0;
	d->found = true;
	len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (a = (const struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == NETLINK_DIAG_MEMINFO && RTA_PAYLOAD(a) >= sizeof(uint32_t))
			memcpy(&d->rmem, RTA_DATA(a), sizeof(uint32_t)); /* SK_MEMINFO_RMEM_ALLOC */
		else if (a->rta_type == NETLINK_DIAG_FLAGS && RTA_PAYLOAD(a) >= sizeof(uint32_t))
			memcpy(&d->nflags, RTA_DATA(a), sizeof(uint32_t));
	}
	return 0;
}

static int nl_diag_get(uint64_t ino, int protocol, struct nl_diag *d)
{
	struct netlink_diag_req req = {
		.sdiag_family = AF_NETLINK,
		.sdiag_protocol = (uint8_t)protocol,
		.ndiag_ino = (uint32_t)ino,
		.ndiag_show = NDIAG_SHOW_MEMINFO | NDIAG_SHOW_FLAGS,
		.ndiag_cookie = { ~0u, ~0u },
	};

	memset(d, 0, sizeof(*d));
	d->ino = ino;
	return sock_diag_dump(&req, sizeof(req), nl_diag_cb, d);
}

static int nl_groups(int fd, uint32_t **out, size_t *n)
{
	uint32_t map[64];
	socklen_t l = sizeof(map);
	size_t cnt = 0;

	*out = NULL;
	*n = 0;
	memset(map, 0, sizeof(map));
	if (getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, map, &l) < 0)
		return -errno;
	if (l > sizeof(map))
		return -E2BIG; /* more than 2048 groups: no protocol has that many */
	for (size_t i = 0; i < l / sizeof(uint32_t); i++)
		cnt += (size_t)__builtin_popcount(map[i]);
	if (!cnt)
		return 0;
	*out = calloc(cnt, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < l / sizeof(uint32_t); i++)
		for (int b = 0; b < 32; b++)
			if (map[i] & (1u << b))
				(*out)[(*n)++] = (uint32_t)(i * 32 + (size_t)b + 1);
	return 0;
}

int netlink_dump(struct net_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id, int type,
		 int protocol)
{
	Ckpt__Net__NetlinkSk r = CKPT__NET__NETLINK_SK__INIT;
	Ckpt__Net__SockOpts so = CKPT__NET__SOCK_OPTS__INIT;
	struct sockaddr_nl self = { 0 }, peer = { 0 };
	struct nl_diag d;
	uint32_t *groups = NULL;
	size_t ngroups = 0;
	socklen_t l;
	char desc[200];
	bool locked;
	int ret;

	snprintf(desc, sizeof(desc), "fd %d of PID %d (netlink protocol %d, %s)", fd->fd,
		 (int)fd->pid, protocol, fd->link);
	ret = nl_diag_get(fd->st.st_ino, protocol, &d);
	if (ret) {
		net_err(p, "%s: sock_diag cannot describe it: %s (is the netlink_diag module loaded?)",
			desc, strerror(-ret));
		return net_errno(ret);
	}
	l = sizeof(self);
	if (getsockname(fd->local_fd, (struct sockaddr *)&self, &l) < 0) {
		int e = errno;

		net_err(p, "%s: getsockname: %s", desc, strerror(e));
		return net_errno(e);
	}
	/* sock_diag lists bound sockets only; an unbound one has no queue */
	if (!d.found && self.nl_pid) {
		net_err(p, "%s: sock_diag does not list it", desc);
		return -ENOENT;
	}
	if (d.nflags & NDIAG_FLAG_CB_RUNNING) {
		net_err(p, "%s: a netlink dump request is in progress on it, which cannot be resumed "
			   "after a restore; retry when the task has read the whole answer",
			desc);
		return -EBUSY;
	}
	if (d.rmem) {
		net_err(p, "%s: %u bytes of unread netlink messages, which cannot be queued again "
			   "(their sender is the kernel); retry when the task has read them",
			desc, d.rmem);
		return -EBUSY;
	}

	l = sizeof(peer);
	if (getpeername(fd->local_fd, (struct sockaddr *)&peer, &l) < 0)
		memset(&peer, 0, sizeof(peer));
	ret = nl_groups(fd->local_fd, &groups, &ngroups);
	if (ret) {
		net_err(p, "%s: cannot list its multicast groups: %s", desc, strerror(-ret));
		return net_errno(ret);
	}

	r.has_id = r.has_ino = r.has_protocol = r.has_type = r.has_flags = true;
	r.id = obj_id;
	r.ino = fd->st.st_ino;
	r.protocol = (uint32_t)protocol;
	r.type = (uint32_t)type;
	r.flags = fd->flags;
	if (self.nl_pid) {
		r.has_portid = true;
		r.portid = self.nl_pid;
	}
	r.groups = groups;
	r.n_groups = ngroups;
	if (peer.nl_pid || peer.nl_groups) {
		r.has_dst_portid = r.has_dst_group = true;
		r.dst_portid = peer.nl_pid;
		r.dst_group = peer.nl_groups;
	}
	r.has_nl_opts = true;
	for (size_t i = 0; i < sizeof(nl_bool_opts) / sizeof(nl_bool_opts[0]); i++) {
		int v = 0;

		l = sizeof(v);
		if (getsockopt(fd->local_fd, SOL_NETLINK, nl_bool_opts[i], &v, &l) == 0 && v)
			r.nl_opts |= 1u << nl_bool_opts[i];
	}
	sockopt_dump(fd->local_fd, AF_NETLINK, type, &so);
	r.opts = &so;
	ret = sock_filter_dump(p, fd->local_fd, &r.filter, &locked, desc);
	if (ret)
		goto out;
	r.has_filter = r.filter.len > 0;
	r.has_filter_locked = locked;
	r.filter_locked = locked;

	ret = net_save(p, NET_NETLINK, &r.base);
	if (!ret)
		net_debug(p, "%s: port id %u, %zu group(s), saved as %u", desc, self.nl_pid, ngroups,
			  obj_id);
out:
	free(r.filter.data);
	free(groups);
	free(so.bindtodevice);
	return ret;
}

int netlink_restore(struct net_priv *p, uint32_t obj_id, int *out)
{
	const Ckpt__Net__NetlinkSk *r =
		(const Ckpt__Net__NetlinkSk *)net_find_rec(p, NET_NETLINK, obj_id);
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char desc[160];
	int s, ret = 0;

	if (!r) {
		net_err(p, "restore: no netlink socket object %u in net-netlink.img; the images are "
			   "incomplete",
			obj_id);
		return -EBADMSG;
	}
	snprintf(desc, sizeof(desc), "netlink socket %u (protocol %u, port id %u)", obj_id,
		 r->protocol, r->portid);
	s = socket(AF_NETLINK, (int)r->type | SOCK_CLOEXEC, (int)r->protocol);
	if (s < 0) {
		ret = net_errno(errno);
		net_err(p, "restore: %s: cannot create it: %s", desc, strerror(errno));
		return ret;
	}
	ret = sockopt_restore(p, s, r->opts, desc);
	for (size_t i = 0; !ret && i < sizeof(nl_bool_opts) / sizeof(nl_bool_opts[0]); i++) {
		int v = 1, o = nl_bool_opts[i];

		if (!(r->nl_opts & (1u << o)))
			continue;
		if (setsockopt(s, SOL_NETLINK, o, &v, sizeof(v)) < 0) {
			ret = net_errno(errno);
			net_err(p, "restore: %s: cannot set netlink option %d: %s", desc, o,
				strerror(errno));
		}
	}
	if (!ret && r->has_filter)
		ret = sock_filter_restore(p, s, &r->filter, r->filter_locked, desc);
	if (ret)
		goto fail;
	if (r->has_portid) {
		sa.nl_pid = r->portid;
		if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			ret = net_errno(errno);
			net_err(p, "restore: %s: cannot bind to its port id: %s%s", desc, strerror(errno),
				errno == EADDRINUSE ? "; another netlink socket holds it now" : "");
			goto fail;
		}
	}
	for (size_t i = 0; i < r->n_groups; i++) {
		int g = (int)r->groups[i];

		if (setsockopt(s, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)) < 0) {
			ret = net_errno(errno);
			net_err(p, "restore: %s: cannot join multicast group %d: %s", desc, g,
				strerror(errno));
			goto fail;
		}
	}
	if (r->has_dst_portid || r->has_dst_group) {
		struct sockaddr_nl d = { .nl_family = AF_NETLINK,
					 .nl_pid = r->dst_portid,
					 .nl_groups = r->dst_group };

		if (connect(s, (struct sockaddr *)&d, sizeof(d)) < 0) {
			ret = net_errno(errno);
			net_err(p, "restore: %s: cannot connect to port id %u: %s", desc, r->dst_portid,
				strerror(errno));
			goto fail;
		}
	}
	ret = sock_restore_flags(p, s, r->flags, desc);
	if (ret)
		goto fail;
	*out = s;
	return 0;
fail:
	close(s);
	return net_errno(ret);
}
