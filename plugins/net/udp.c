// SPDX-License-Identifier: GPL-2.0-only
/*
 * UDP and UDP-Lite sockets, IPv4 and IPv6 (class "udp", image net-udp.img
 * of ckpt.net.UdpSk).
 *
 * Saved: the local address (when bound), the peer (when connected), socket
 * and IP options and UDP_CORK.  Datagrams waiting in the receive queue are
 * counted (by MSG_PEEK, so a -R dump leaves them) but not saved: UDP may
 * lose datagrams, and they could only be queued again by sending them from
 * their original source address.  Restore binds and connects a new socket.
 */
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif

int udp_dump(struct net_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id, int family,
	     int protocol)
{
	Ckpt__Net__UdpSk r = CKPT__NET__UDP_SK__INIT;
	Ckpt__Net__InetAddr la = CKPT__NET__INET_ADDR__INIT, pa = CKPT__NET__INET_ADDR__INIT;
	Ckpt__Net__SockOpts so = CKPT__NET__SOCK_OPTS__INIT;
	Ckpt__Net__IpOpts io = CKPT__NET__IP_OPTS__INIT;
	struct sockaddr_storage lss, pss;
	struct peeked q;
	const char *what = "";
	char desc[256], ls[64], ps[64];
	socklen_t l;
	int s = fd->local_fd, v = 0, ret;
	bool connected;

	memset(&lss, 0, sizeof(lss));
	memset(&pss, 0, sizeof(pss));
	l = sizeof(lss);
	getsockname(s, (struct sockaddr *)&lss, &l);
	if (lss.ss_family != family)
		lss.ss_family = (sa_family_t)family;
	l = sizeof(pss);
	connected = getpeername(s, (struct sockaddr *)&pss, &l) == 0 && pss.ss_family == family;
	snprintf(desc, sizeof(desc), "fd %d of PID %d (UDP %s -> %s)", fd->fd, (int)fd->pid,
		 sa_str(&lss, ls, sizeof(ls)), connected ? sa_str(&pss, ps, sizeof(ps)) : "-");

	r.has_id = r.has_ino = r.has_family = r.has_protocol = r.has_flags = true;
	r.id = obj_id;
	r.ino = fd->st.st_ino;
	r.family = (uint32_t)family;
	r.protocol = (uint32_t)protocol;
	r.flags = fd->flags;
	if (!inet_is_unbound(&lss)) {
		inet_addr_from(&lss, &la);
		r.local = &la;
	}
	if (connected) {
		inet_addr_from(&pss, &pa);
		r.peer = &pa;
	}
	sockopt_dump(s, family, SOCK_DGRAM, &so);
	ipopt_dump(s, family, &io);
	r.opts = &so;
	r.ip = &io;
	l = sizeof(v);
	if (getsockopt(s, SOL_UDP, UDP_CORK, &v, &l) == 0) {
		r.has_cork = true;
		r.cork = v != 0;
	}

	ret = queue_peek(s, true, false, &q, &what);
	if (ret) {
		net_err(p, "%s: cannot read its receive queue (%s): %s", desc, what, strerror(-ret));
		free(so.bindtodevice);
		return net_errno(ret);
	}
	if (q.n) {
		r.has_dropped = true;
		r.dropped = (uint32_t)q.n;
		net_warn(p, "%s: %zu queued datagram(s) (%zu bytes) are not saved; the restored "
			    "socket starts with an empty queue",
			 desc, q.n, q.bytes);
	}
	queue_free(&q);

	ret = net_save(p, NET_UDP, &r.base);
	if (!ret)
		net_debug(p, "%s: saved as %u", desc, obj_id);
	free(so.bindtodevice);
	return ret;
}

int udp_restore(struct net_priv *p, uint32_t obj_id, int *out)
{
	const Ckpt__Net__UdpSk *r = (const Ckpt__Net__UdpSk *)net_find_rec(p, NET_UDP, obj_id);
	struct sockaddr_storage ss;
	socklen_t sl;
	char desc[200], ls[64], ps[64];
	int s, family, ret;

	if (!r) {
		net_err(p, "restore: no UDP socket object %u in net-udp.img; the images are incomplete",
			obj_id);
		return -EBADMSG;
	}
	family = (int)r->family;
	snprintf(desc, sizeof(desc), "UDP socket %u (%s -> %s)", obj_id,
		 inet_str(r->local, family, ls, sizeof(ls)),
		 r->peer ? inet_str(r->peer, family, ps, sizeof(ps)) : "-");
	if ((family != AF_INET && family != AF_INET6) ||
	    (r->protocol != IPPROTO_UDP && r->protocol != IPPROTO_UDPLITE)) {
		net_err(p, "restore: %s: family %d protocol %u; the images are damaged", desc, family,
			r->protocol);
		return -EBADMSG;
	}
	s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, (int)r->protocol);
	if (s < 0) {
		ret = net_errno(errno);
		net_err(p, "restore: %s: cannot create it: %s", desc, strerror(errno));
		return ret;
	}
	ret = ipopt_restore(p, s, family, r->ip, true, desc);
	if (!ret)
		ret = sockopt_restore_reuse(p, s, r->opts, desc);
	if (ret)
		goto fail;
	if (r->local) {
		if (inet_addr_to(r->local, family, &ss, &sl) < 0) {
			net_err(p, "restore: %s: bad local address; the images are damaged", desc);
			ret = -EBADMSG;
			goto fail;
		}
		if (bind(s, (struct sockaddr *)&ss, sl) < 0) {
			ret = net_errno(errno);
			net_err(p, "restore: %s: cannot bind: %s%s", desc, strerror(errno),
				errno == EADDRINUSE ? "; another socket holds that address now" : "");
			goto fail;
		}
	}
	if (r->peer) {
		if (inet_addr_to(r->peer, family, &ss, &sl) < 0) {
			net_err(p, "restore: %s: bad peer address; the images are damaged", desc);
			ret = -EBADMSG;
			goto fail;
		}
		if (connect(s, (struct sockaddr *)&ss, sl) < 0) {
			ret = net_errno(errno);
			net_err(p, "restore: %s: cannot connect: %s", desc, strerror(errno));
			goto fail;
		}
	}
	ret = ipopt_restore(p, s, family, r->ip, false, desc);
	if (!ret)
		ret = sockopt_restore(p, s, r->opts, desc);
	if (!ret && r->has_cork && r->cork) {
		int one = 1;

		if (setsockopt(s, SOL_UDP, UDP_CORK, &one, sizeof(one)) < 0) {
			ret = net_errno(errno);
			net_err(p, "restore: %s: cannot set UDP_CORK: %s", desc, strerror(errno));
		}
	}
	if (!ret)
		ret = sock_restore_flags(p, s, r->flags, desc);
	if (ret)
		goto fail;
	*out = s;
	return 0;
fail:
	close(s);
	return net_errno(ret);
}
