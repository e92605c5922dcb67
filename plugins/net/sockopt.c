// SPDX-License-Identifier: GPL-2.0-only
/*
 * Socket options shared by every kind: SOL_SOCKET ones, IP / IPv6 ones and
 * the file status flags.
 *
 * Dump reads what applies to the family.  Restore sets an option only when
 * the new socket does not have that value already, so options the task
 * never touched stay at the kernel's defaults (and buffer sizes that were
 * never set stay auto-tuned) unless they had changed.
 */
#include <netinet/in.h>
#include <netinet/ip.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "net.h"

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif

static bool get_int(int fd, int level, int name, int *v)
{
	socklen_t l = sizeof(*v);

	*v = 0;
	return getsockopt(fd, level, name, v, &l) == 0;
}

static bool get_tv_us(int fd, int name, uint64_t *us)
{
	struct timeval tv;
	socklen_t l = sizeof(tv);

	if (getsockopt(fd, SOL_SOCKET, name, &tv, &l) < 0)
		return false;
	*us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	return true;
}

void sockopt_dump(int fd, int family, int type, Ckpt__Net__SockOpts *o)
{
	bool inet = family == AF_INET || family == AF_INET6;
	struct linger lg;
	socklen_t l;
	char dev[IFNAMSIZ + 1];
	int v;

	if (get_int(fd, SOL_SOCKET, SO_SNDBUF, &v)) {
		o->has_sndbuf = true;
		o->sndbuf = (uint32_t)v;
	}
	if (get_int(fd, SOL_SOCKET, SO_RCVBUF, &v)) {
		o->has_rcvbuf = true;
		o->rcvbuf = (uint32_t)v;
	}
	o->has_rcvtimeo_us = get_tv_us(fd, SO_RCVTIMEO, &o->rcvtimeo_us);
	o->has_sndtimeo_us = get_tv_us(fd, SO_SNDTIMEO, &o->sndtimeo_us);
	if (get_int(fd, SOL_SOCKET, SO_PRIORITY, &v)) {
		o->has_priority = true;
		o->priority = v;
	}
	if (get_int(fd, SOL_SOCKET, SO_RCVLOWAT, &v)) {
		o->has_rcvlowat = true;
		o->rcvlowat = v;
	}
	if (get_int(fd, SOL_SOCKET, SO_PASSCRED, &v)) {
		o->has_passcred = true;
		o->passcred = v != 0;
	}
	if (get_int(fd, SOL_SOCKET, SO_PEEK_OFF, &v)) {
		o->has_peek_off = true;
		o->peek_off = v;
	}
	if (get_int(fd, SOL_SOCKET, SO_TIMESTAMP, &v)) {
		o->has_timestamp = true;
		o->timestamp = v != 0;
	}
	if (family == AF_UNIX && get_int(fd, SOL_SOCKET, SO_PASSSEC, &v)) {
		o->has_passsec = true;
		o->passsec = v != 0;
	}
	if (!inet)
		return;
	if (get_int(fd, SOL_SOCKET, SO_REUSEADDR, &v)) {
		o->has_reuseaddr = true;
		o->reuseaddr = v != 0;
	}
	if (get_int(fd, SOL_SOCKET, SO_REUSEPORT, &v)) {
		o->has_reuseport = true;
		o->reuseport = v != 0;
	}
	if (get_int(fd, SOL_SOCKET, SO_MARK, &v)) {
		o->has_mark = true;
		o->mark = (uint32_t)v;
	}
	if (get_int(fd, SOL_SOCKET, SO_DONTROUTE, &v)) {
		o->has_dontroute = true;
		o->dontroute = v != 0;
	}
	l = sizeof(lg);
	if (getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &l) == 0) {
		o->has_linger = o->has_linger_s = true;
		o->linger = lg.l_onoff != 0;
		o->linger_s = lg.l_linger;
	}
	memset(dev, 0, sizeof(dev));
	l = sizeof(dev) - 1;
	if (getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, &l) == 0 && dev[0])
		o->bindtodevice = strdup(dev);
	if (type == SOCK_STREAM) {
		if (get_int(fd, SOL_SOCKET, SO_KEEPALIVE, &v)) {
			o->has_keepalive = true;
			o->keepalive = v != 0;
		}
		if (get_int(fd, SOL_SOCKET, SO_OOBINLINE, &v)) {
			o->has_oobinline = true;
			o->oobinline = v != 0;
		}
	} else if (get_int(fd, SOL_SOCKET, SO_BROADCAST, &v)) {
		o->has_broadcast = true;
		o->broadcast = v != 0;
	}
}

/* Set level/name to want unless it is that already.  0 or -errno. */
static int set_int(struct net_priv *p, int fd, int level, int name, int want,
		   const char *optname, const char *what)
{
	int cur;

	if (get_int(fd, level, name, &cur) && cur == want)
		return 0;
	if (setsockopt(fd, level, name, &want, sizeof(want)) < 0) {
		int e = errno;

		net_err(p, "restore: %s: cannot set %s to %d: %s", what, optname, want, strerror(e));
		return net_errno(e);
	}
	return 0;
}

static int set_bool(struct net_priv *p, int fd, int level, int name, bool want,
		    const char *optname, const char *what)
{
	int cur;

	if (get_int(fd, level, name, &cur) && (cur != 0) == want)
		return 0;
	return set_int(p, fd, level, name, want ? 1 : 0, optname, what);
}

/* SO_SNDBUF / SO_RCVBUF: the kernel doubles what is set. */
static int set_buf(struct net_priv *p, int fd, bool rcv, uint32_t want, const char *what)
{
	int cur, v = (int)(want / 2);

	if (get_int(fd, SOL_SOCKET, rcv ? SO_RCVBUF : SO_SNDBUF, &cur) && (uint32_t)cur == want)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, rcv ? SO_RCVBUFFORCE : SO_SNDBUFFORCE, &v, sizeof(v)) == 0 ||
	    setsockopt(fd, SOL_SOCKET, rcv ? SO_RCVBUF : SO_SNDBUF, &v, sizeof(v)) == 0)
		return 0;
	net_err(p, "restore: %s: cannot set %s to %u: %s", what, rcv ? "SO_RCVBUF" : "SO_SNDBUF",
		want, strerror(errno));
	return net_errno(errno);
}

static int set_tv(struct net_priv *p, int fd, int name, uint64_t us, const char *optname,
		  const char *what)
{
	struct timeval tv = { .tv_sec = (time_t)(us / 1000000u), .tv_usec = (suseconds_t)(us % 1000000u) };
	uint64_t cur;

	if (get_tv_us(fd, name, &cur) && cur == us)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, name, &tv, sizeof(tv)) < 0) {
		int e = errno;

		net_err(p, "restore: %s: cannot set %s: %s", what, optname, strerror(e));
		return net_errno(e);
	}
	return 0;
}

int sockopt_restore_reuse(struct net_priv *p, int fd, const Ckpt__Net__SockOpts *o,
			  const char *what)
{
	int ret = 0;

	if (!o)
		return 0;
	if (o->has_reuseaddr)
		ret = set_bool(p, fd, SOL_SOCKET, SO_REUSEADDR, o->reuseaddr, "SO_REUSEADDR", what);
	if (!ret && o->has_reuseport)
		ret = set_bool(p, fd, SOL_SOCKET, SO_REUSEPORT, o->reuseport, "SO_REUSEPORT", what);
	if (!ret && o->bindtodevice && o->bindtodevice[0] &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, o->bindtodevice,
		       (socklen_t)strlen(o->bindtodevice)) < 0) {
		int e = errno;

		net_err(p, "restore: %s: cannot bind to device %s: %s (does the interface exist here?)",
			what, o->bindtodevice, strerror(e));
		ret = net_errno(e);
	}
	return ret;
}

int sockopt_restore(struct net_priv *p, int fd, const Ckpt__Net__SockOpts *o, const char *what)
{
	int ret = 0;

	if (!o)
		return 0;
#define B(field, name) \
	if (!ret && o->has_##field) \
		ret = set_bool(p, fd, SOL_SOCKET, name, o->field, #name, what)
#define I(field, name) \
	if (!ret && o->has_##field) \
		ret = set_int(p, fd, SOL_SOCKET, name, (int)o->field, #name, what)
	if (o->has_sndbuf)
		ret = set_buf(p, fd, false, o->sndbuf, what);
	if (!ret && o->has_rcvbuf)
		ret = set_buf(p, fd, true, o->rcvbuf, what);
	if (!ret && o->has_rcvtimeo_us)
		ret = set_tv(p, fd, SO_RCVTIMEO, o->rcvtimeo_us, "SO_RCVTIMEO", what);
	if (!ret && o->has_sndtimeo_us)
		ret = set_tv(p, fd, SO_SNDTIMEO, o->sndtimeo_us, "SO_SNDTIMEO", what);
	B(reuseaddr, SO_REUSEADDR);
	B(reuseport, SO_REUSEPORT);
	B(keepalive, SO_KEEPALIVE);
	I(priority, SO_PRIORITY);
	I(mark, SO_MARK);
	B(broadcast, SO_BROADCAST);
	B(oobinline, SO_OOBINLINE);
	I(rcvlowat, SO_RCVLOWAT);
	B(passcred, SO_PASSCRED);
	B(passsec, SO_PASSSEC);
	B(dontroute, SO_DONTROUTE);
	B(timestamp, SO_TIMESTAMP);
	I(peek_off, SO_PEEK_OFF);
#undef B
#undef I
	if (!ret && o->has_linger) {
		struct linger lg = { .l_onoff = o->linger, .l_linger = o->linger_s }, cur;
		socklen_t l = sizeof(cur);

		if ((getsockopt(fd, SOL_SOCKET, SO_LINGER, &cur, &l) < 0 ||
		     (cur.l_onoff != 0) != o->linger || cur.l_linger != lg.l_linger) &&
		    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0) {
			int e = errno;

			net_err(p, "restore: %s: cannot set SO_LINGER: %s", what, strerror(e));
			ret = net_errno(e);
		}
	}
	return ret;
}

void ipopt_dump(int fd, int family, Ckpt__Net__IpOpts *o)
{
	int v;

	if (family == AF_INET) {
		if (get_int(fd, IPPROTO_IP, IP_TOS, &v)) {
			o->has_tos = true;
			o->tos = (uint32_t)v;
		}
		if (get_int(fd, IPPROTO_IP, IP_TTL, &v)) {
			o->has_ttl = true;
			o->ttl = v;
		}
		if (get_int(fd, IPPROTO_IP, IP_FREEBIND, &v)) {
			o->has_freebind = true;
			o->freebind = v != 0;
		}
		if (get_int(fd, IPPROTO_IP, IP_TRANSPARENT, &v)) {
			o->has_transparent = true;
			o->transparent = v != 0;
		}
		if (get_int(fd, IPPROTO_IP, IP_RECVERR, &v)) {
			o->has_recverr = true;
			o->recverr = v != 0;
		}
		if (get_int(fd, IPPROTO_IP, IP_PKTINFO, &v)) {
			o->has_pktinfo = true;
			o->pktinfo = v != 0;
		}
		return;
	}
	if (get_int(fd, IPPROTO_IPV6, IPV6_TCLASS, &v)) {
		o->has_tos = true;
		o->tos = (uint32_t)v;
	}
	if (get_int(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &v)) {
		o->has_ttl = true;
		o->ttl = v;
	}
	if (get_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v)) {
		o->has_v6only = true;
		o->v6only = v != 0;
	}
	if (get_int(fd, IPPROTO_IPV6, IPV6_FREEBIND, &v)) {
		o->has_freebind = true;
		o->freebind = v != 0;
	}
	if (get_int(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &v)) {
		o->has_transparent = true;
		o->transparent = v != 0;
	}
	if (get_int(fd, IPPROTO_IPV6, IPV6_RECVERR, &v)) {
		o->has_recverr = true;
		o->recverr = v != 0;
	}
	if (get_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &v)) {
		o->has_pktinfo = true;
		o->pktinfo = v != 0;
	}
}

int ipopt_restore(struct net_priv *p, int fd, int family, const Ckpt__Net__IpOpts *o,
		  bool before_bind, const char *what)
{
	bool v4 = family == AF_INET;
	int lvl = v4 ? IPPROTO_IP : IPPROTO_IPV6, ret = 0;

	if (!o)
		return 0;
	if (before_bind) {
		if (!v4 && o->has_v6only)
			ret = set_bool(p, fd, lvl, IPV6_V6ONLY, o->v6only, "IPV6_V6ONLY", what);
		if (!ret && o->has_freebind)
			ret = set_bool(p, fd, lvl, v4 ? IP_FREEBIND : IPV6_FREEBIND, o->freebind,
				       "IP_FREEBIND", what);
		if (!ret && o->has_transparent)
			ret = set_bool(p, fd, lvl, v4 ? IP_TRANSPARENT : IPV6_TRANSPARENT,
				       o->transparent, "IP_TRANSPARENT", what);
		return ret;
	}
	if (o->has_tos)
		ret = set_int(p, fd, lvl, v4 ? IP_TOS : IPV6_TCLASS, (int)o->tos,
			      v4 ? "IP_TOS" : "IPV6_TCLASS", what);
	if (!ret && o->has_ttl)
		ret = set_int(p, fd, lvl, v4 ? IP_TTL : IPV6_UNICAST_HOPS, o->ttl,
			      v4 ? "IP_TTL" : "IPV6_UNICAST_HOPS", what);
	if (!ret && o->has_recverr)
		ret = set_bool(p, fd, lvl, v4 ? IP_RECVERR : IPV6_RECVERR, o->recverr, "IP_RECVERR",
			       what);
	if (!ret && o->has_pktinfo)
		ret = set_bool(p, fd, lvl, v4 ? IP_PKTINFO : IPV6_RECVPKTINFO, o->pktinfo,
			       "IP_PKTINFO", what);
	return ret;
}

int sock_restore_flags(struct net_priv *p, int fd, uint32_t flags, const char *what)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return net_errno(errno);
	if (flags & O_ASYNC)
		net_warn(p, "restore: %s had O_ASYNC; its signal owner is not saved, O_ASYNC is left off",
			 what);
	if (((fl & O_NONBLOCK) != 0) == ((flags & O_NONBLOCK) != 0))
		return 0;
	fl = (flags & O_NONBLOCK) ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
	if (fcntl(fd, F_SETFL, fl) < 0) {
		int e = errno;

		net_err(p, "restore: %s: cannot set its file flags: %s", what, strerror(e));
		return net_errno(e);
	}
	return 0;
}

void sock_grow_buf(int fd, size_t size, bool rcv)
{
	int cur, want;

	if (size > (1u << 29))
		size = 1u << 29;
	want = (int)size + (1 << 20);
	if (get_int(fd, SOL_SOCKET, rcv ? SO_RCVBUF : SO_SNDBUF, &cur) && cur / 2 >= want)
		return;
	if (setsockopt(fd, SOL_SOCKET, rcv ? SO_RCVBUFFORCE : SO_SNDBUFFORCE, &want,
		       sizeof(want)) < 0)
		setsockopt(fd, SOL_SOCKET, rcv ? SO_RCVBUF : SO_SNDBUF, &want, sizeof(want));
}
