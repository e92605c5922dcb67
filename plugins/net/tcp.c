// SPDX-License-Identifier: GPL-2.0-only
/*
 * TCP sockets, IPv4 and IPv6 (class "tcp", image net-tcp.img of
 * ckpt.net.TcpSk).
 *
 * Closed (maybe bound) and listening sockets keep their address, backlog
 * and options.  Established connections need tcp_established
 * (--tcp-established) and TCP_REPAIR:
 *
 * Dump: the connection is locked (lock.c), a reference to the task's
 * socket is kept and put in repair mode;
 * for each queue TCP_REPAIR_QUEUE + TCP_QUEUE_SEQ give the sequence number
 * and MSG_PEEK its contents (the receive queue: bytes not read by the task;
 * the send queue: bytes not acknowledged by the peer, of which SIOCOUTQNSD
 * were never sent); TCP_MAXSEG (in repair mode: the peer's MSS), TCP_INFO's
 * window scales, SACK and timestamps, TCP_TIMESTAMP and TCP_REPAIR_WINDOW.
 * dump_finish takes the socket out of repair mode (without a window probe):
 * the task may run on.  When it was killed, fini puts the plugin's last
 * reference back in repair mode and closes it, so the kernel drops the
 * connection without a FIN or RST.
 *
 * Restore: a new socket in repair mode gets the queue sequence numbers,
 * binds the local address, "connects" (in repair mode no packet is sent),
 * gets the options, the receive queue, the sent part of the send queue and
 * the window.  restore_resume takes it out of repair mode (the kernel sends
 * a window probe, so the peer learns our window) and writes the never-sent
 * bytes the normal way.
 *
 * Connecting and half-closed states (SYN_SENT, FIN_WAIT*, CLOSE_WAIT, ...)
 * are refused for now.
 */
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "net.h"

#ifndef SO_PEEK_OFF
#define SO_PEEK_OFF 42
#endif

static const char *state_name(int s)
{
	static const char *const names[] = {
		[TCP_ESTABLISHED] = "ESTABLISHED", [TCP_SYN_SENT] = "SYN_SENT",
		[TCP_SYN_RECV] = "SYN_RECV",       [TCP_FIN_WAIT1] = "FIN_WAIT1",
		[TCP_FIN_WAIT2] = "FIN_WAIT2",     [TCP_TIME_WAIT] = "TIME_WAIT",
		[TCP_CLOSE] = "CLOSE",             [TCP_CLOSE_WAIT] = "CLOSE_WAIT",
		[TCP_LAST_ACK] = "LAST_ACK",       [TCP_LISTEN] = "LISTEN",
		[TCP_CLOSING] = "CLOSING",
	};

	if (s > 0 && s < (int)(sizeof(names) / sizeof(names[0])) && names[s])
		return names[s];
	return "?";
}

static bool get_int(int fd, int level, int name, int *v)
{
	socklen_t l = sizeof(*v);

	*v = 0;
	return getsockopt(fd, level, name, v, &l) == 0;
}

static void tcpopt_dump(int fd, int state, Ckpt__Net__TcpOpts *o, char *cong, size_t conglen)
{
	socklen_t l;
	int v;

#define GI(field, name)                                       \
	if (get_int(fd, IPPROTO_TCP, name, &v)) {             \
		o->has_##field = true;                        \
		o->field = v;                                 \
	}
#define GB(field, name)                                       \
	if (get_int(fd, IPPROTO_TCP, name, &v)) {             \
		o->has_##field = true;                        \
		o->field = v != 0;                            \
	}
	GB(nodelay, TCP_NODELAY);
	GB(cork, TCP_CORK);
	GI(keepidle, TCP_KEEPIDLE);
	GI(keepintvl, TCP_KEEPINTVL);
	GI(keepcnt, TCP_KEEPCNT);
	GI(user_timeout, TCP_USER_TIMEOUT);
	GI(notsent_lowat, TCP_NOTSENT_LOWAT);
	GI(syncnt, TCP_SYNCNT);
	GI(linger2, TCP_LINGER2);
	if (state == TCP_LISTEN) {
		GI(defer_accept, TCP_DEFER_ACCEPT);
		GI(fastopen, TCP_FASTOPEN);
	}
	if (state != TCP_ESTABLISHED) {
		GI(maxseg, TCP_MAXSEG);
		GI(window_clamp, TCP_WINDOW_CLAMP);
	}
#undef GI
#undef GB
	memset(cong, 0, conglen);
	l = (socklen_t)(conglen - 1);
	if (getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cong, &l) == 0 && cong[0])
		o->congestion = cong;
}

static int set_tcp_int(struct net_priv *p, int fd, int name, int want, const char *optname,
		       const char *what)
{
	int cur;

	if (get_int(fd, IPPROTO_TCP, name, &cur) && cur == want)
		return 0;
	if (setsockopt(fd, IPPROTO_TCP, name, &want, sizeof(want)) < 0) {
		int e = errno;

		net_err(p, "restore: %s: cannot set %s to %d: %s", what, optname, want, strerror(e));
		return net_errno(e);
	}
	return 0;
}

static int tcpopt_restore(struct net_priv *p, int fd, const Ckpt__Net__TcpOpts *o,
			  const char *what)
{
	int ret = 0;

	if (!o)
		return 0;
#define SI(field, name) \
	if (!ret && o->has_##field) \
		ret = set_tcp_int(p, fd, name, (int)o->field, #name, what)
	if (o->congestion && o->congestion[0]) {
		char cur[32] = "";
		socklen_t l = sizeof(cur) - 1;

		if ((getsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, cur, &l) < 0 ||
		     strcmp(cur, o->congestion)) &&
		    setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, o->congestion,
			       (socklen_t)strlen(o->congestion)) < 0) {
			int e = errno;

			net_err(p, "restore: %s: cannot set congestion control %s: %s (load its module)",
				what, o->congestion, strerror(e));
			return net_errno(e);
		}
	}
	SI(nodelay, TCP_NODELAY);
	SI(cork, TCP_CORK);
	SI(keepidle, TCP_KEEPIDLE);
	SI(keepintvl, TCP_KEEPINTVL);
	SI(keepcnt, TCP_KEEPCNT);
	SI(user_timeout, TCP_USER_TIMEOUT);
	SI(notsent_lowat, TCP_NOTSENT_LOWAT);
	SI(syncnt, TCP_SYNCNT);
	SI(linger2, TCP_LINGER2);
	SI(defer_accept, TCP_DEFER_ACCEPT);
	SI(fastopen, TCP_FASTOPEN);
	SI(maxseg, TCP_MAXSEG);
	SI(window_clamp, TCP_WINDOW_CLAMP);
#undef SI
	return ret;
}

/* ---- dump -------------------------------------------------------------------- */

static int set_queue(int fd, int q)
{
	return setsockopt(fd, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q));
}

/* len bytes of the selected queue, by MSG_PEEK (repair mode). */
static int peek_queue(int fd, size_t len, uint8_t **out)
{
	uint8_t *buf;
	ssize_t n;

	*out = NULL;
	if (!len)
		return 0;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	do
		n = recv(fd, buf, len, MSG_PEEK | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != len) {
		int e = n < 0 ? errno : EIO;

		free(buf);
		return -e;
	}
	*out = buf;
	return 0;
}

struct conn_dump {
	uint8_t *sendq, *recvq;
};

static int dump_conn(struct net_priv *p, int s, Ckpt__Net__TcpConn *c, struct conn_dump *cd,
		     const char *desc)
{
	struct tcp_repair_window w;
	struct tcp_info ti;
	socklen_t l;
	uint32_t rcv_nxt = 0, write_seq = 0;
	int inq = 0, outq = 0, unsent = 0, v, ret, peek_off = -1;
	bool have_po;
	const char *step;

	/* SO_PEEK_OFF (TCP has it since 6.9) moves where MSG_PEEK starts */
	l = sizeof(peek_off);
	have_po = getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &peek_off, &l) == 0 && peek_off >= 0;
	if (have_po) {
		v = 0;
		setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v));
	}

	step = "selecting the receive queue";
	if (set_queue(s, TCP_RECV_QUEUE) < 0)
		goto err;
	step = "reading the receive sequence (TCP_QUEUE_SEQ)";
	l = sizeof(rcv_nxt);
	if (getsockopt(s, IPPROTO_TCP, TCP_QUEUE_SEQ, &rcv_nxt, &l) < 0)
		goto err;
	step = "reading the receive queue length (SIOCINQ)";
	if (ioctl(s, SIOCINQ, &inq) < 0)
		goto err;
	step = "reading the receive queue (MSG_PEEK)";
	ret = peek_queue(s, (size_t)inq, &cd->recvq);
	if (ret) {
		errno = -ret;
		goto err;
	}
	if (have_po) {
		v = 0;
		setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &v, sizeof(v));
	}

	step = "selecting the send queue";
	if (set_queue(s, TCP_SEND_QUEUE) < 0)
		goto err;
	step = "reading the send sequence (TCP_QUEUE_SEQ)";
	l = sizeof(write_seq);
	if (getsockopt(s, IPPROTO_TCP, TCP_QUEUE_SEQ, &write_seq, &l) < 0)
		goto err;
	step = "reading the send queue length (SIOCOUTQ)";
	if (ioctl(s, SIOCOUTQ, &outq) < 0)
		goto err;
	step = "reading the unsent length (SIOCOUTQNSD)";
	if (ioctl(s, SIOCOUTQNSD, &unsent) < 0)
		goto err;
	step = "reading the send queue (MSG_PEEK)";
	ret = peek_queue(s, (size_t)outq, &cd->sendq);
	if (ret) {
		errno = -ret;
		goto err;
	}
	set_queue(s, TCP_NO_QUEUE);
	if (have_po)
		setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off));

	step = "reading TCP_INFO";
	l = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
		goto err;
	step = "reading the MSS (TCP_MAXSEG)";
	if (!get_int(s, IPPROTO_TCP, TCP_MAXSEG, &v))
		goto err;
	c->has_mss_clamp = true;
	c->mss_clamp = (uint32_t)v;
	c->has_sack_ok = c->has_tstamp_ok = c->has_wscale_ok = true;
	c->sack_ok = (ti.tcpi_options & TCPI_OPT_SACK) != 0;
	c->tstamp_ok = (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) != 0;
	c->wscale_ok = (ti.tcpi_options & TCPI_OPT_WSCALE) != 0;
	if (c->wscale_ok) {
		c->has_snd_wscale = c->has_rcv_wscale = true;
		c->snd_wscale = ti.tcpi_snd_wscale;
		c->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	if (c->tstamp_ok) {
		step = "reading TCP_TIMESTAMP";
		if (!get_int(s, IPPROTO_TCP, TCP_TIMESTAMP, &v))
			goto err;
		c->has_timestamp = true;
		c->timestamp = (uint32_t)v;
	}
	step = "reading TCP_REPAIR_WINDOW";
	l = sizeof(w);
	if (getsockopt(s, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &l) < 0)
		goto err;
	c->has_snd_wl1 = c->has_snd_wnd = c->has_max_window = c->has_rcv_wnd = c->has_rcv_wup = true;
	c->snd_wl1 = w.snd_wl1;
	c->snd_wnd = w.snd_wnd;
	c->max_window = w.max_window;
	c->rcv_wnd = w.rcv_wnd;
	c->rcv_wup = w.rcv_wup;

	c->has_send_seq = c->has_recv_seq = c->has_unsent = true;
	c->send_seq = write_seq - (uint32_t)outq;
	c->recv_seq = rcv_nxt - (uint32_t)inq;
	c->unsent = (uint32_t)(unsent > outq ? outq : unsent);
	if (outq) {
		c->has_send_queue = true;
		c->send_queue.data = cd->sendq;
		c->send_queue.len = (size_t)outq;
	}
	if (inq) {
		c->has_recv_queue = true;
		c->recv_queue.data = cd->recvq;
		c->recv_queue.len = (size_t)inq;
	}
	net_debug(p, "%s: rcv_nxt %u (%d queued), write_seq %u (%d queued, %d unsent), mss %u, "
		     "wscale %u/%u, sack %d, ts %d, snd_wnd %u, rcv_wnd %u",
		  desc, rcv_nxt, inq, write_seq, outq, unsent, c->mss_clamp, c->snd_wscale,
		  c->rcv_wscale, c->sack_ok, c->tstamp_ok, w.snd_wnd, w.rcv_wnd);
	return 0;
err:
	ret = errno ? errno : EIO;
	set_queue(s, TCP_NO_QUEUE);
	if (have_po)
		setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off));
	net_err(p, "%s: repair mode: %s failed: %s", desc, step, strerror(ret));
	return net_errno(ret);
}

int tcp_dump(struct net_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id, int family)
{
	Ckpt__Net__TcpSk r = CKPT__NET__TCP_SK__INIT;
	Ckpt__Net__InetAddr la = CKPT__NET__INET_ADDR__INIT, pa = CKPT__NET__INET_ADDR__INIT;
	Ckpt__Net__SockOpts so = CKPT__NET__SOCK_OPTS__INIT;
	Ckpt__Net__IpOpts io = CKPT__NET__IP_OPTS__INIT;
	Ckpt__Net__TcpOpts to = CKPT__NET__TCP_OPTS__INIT;
	Ckpt__Net__TcpConn conn = CKPT__NET__TCP_CONN__INIT;
	struct conn_dump cd = { 0 };
	struct sockaddr_storage lss, pss;
	struct tcp_info ti;
	char desc[256], ls[64], ps[64], cong[32];
	socklen_t l;
	int s = fd->local_fd, ret, hold = -1;

	memset(&ti, 0, sizeof(ti));
	l = sizeof(ti);
	if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0) {
		int e = errno;

		net_err(p, "fd %d of PID %d: cannot read TCP_INFO of %s: %s", fd->fd, (int)fd->pid,
			fd->link, strerror(e));
		return net_errno(e);
	}
	memset(&lss, 0, sizeof(lss));
	memset(&pss, 0, sizeof(pss));
	l = sizeof(lss);
	getsockname(s, (struct sockaddr *)&lss, &l);
	l = sizeof(pss);
	if (getpeername(s, (struct sockaddr *)&pss, &l) < 0)
		pss.ss_family = AF_UNSPEC;
	if (lss.ss_family != family)
		lss.ss_family = (sa_family_t)family;
	snprintf(desc, sizeof(desc), "fd %d of PID %d (TCP %s %s -> %s)", fd->fd, (int)fd->pid,
		 state_name(ti.tcpi_state), sa_str(&lss, ls, sizeof(ls)),
		 pss.ss_family == family ? sa_str(&pss, ps, sizeof(ps)) : "-");

	switch (ti.tcpi_state) {
	case TCP_CLOSE:
	case TCP_LISTEN:
		break;
	case TCP_ESTABLISHED:
		if (!p->tcp_established) {
			net_err(p, "%s: established TCP connection; pass --tcp-established to dump it",
				desc);
			return -EINVAL;
		}
		break;
	case TCP_SYN_SENT:
	case TCP_SYN_RECV:
		net_err(p, "%s: the connection is being set up; connecting sockets are not supported "
			   "yet, dump again once it is established",
			desc);
		return -EAGAIN;
	default:
		net_err(p, "%s: half-closed or closing connections are not supported yet; dump "
			   "again once it is closed",
			desc);
		return -EINVAL;
	}

	r.has_id = r.has_ino = r.has_family = r.has_state = r.has_flags = true;
	r.id = obj_id;
	r.ino = fd->st.st_ino;
	r.family = (uint32_t)family;
	r.state = ti.tcpi_state;
	r.flags = fd->flags;
	if (!inet_is_unbound(&lss)) {
		inet_addr_from(&lss, &la);
		r.local = &la;
	}
	sockopt_dump(s, family, SOCK_STREAM, &so);
	ipopt_dump(s, family, &io);
	tcpopt_dump(s, ti.tcpi_state, &to, cong, sizeof(cong));
	r.opts = &so;
	r.ip = &io;
	r.tcp = &to;

	if (ti.tcpi_state == TCP_LISTEN) {
		r.has_backlog = true;
		r.backlog = ti.tcpi_sacked;
		if (ti.tcpi_unacked)
			net_warn(p, "%s: %u connection(s) wait in its backlog; they are not saved and "
				    "their clients will see a reset",
				 desc, ti.tcpi_unacked);
	} else if (ti.tcpi_state == TCP_ESTABLISHED) {
		struct tcp_hold h = { .fd = -1, .pidfd = -1, .pid = fd->pid, .task_fd = fd->fd,
				      .id = obj_id };
		int on = TCP_REPAIR_ON;

		inet_addr_from(&pss, &pa);
		r.peer = &pa;
		/* nothing may arrive while the queues are read, and the peer must
		 * see no reset once the task is gone */
		ret = net_lock_conn(p, family, &la, &pa, desc);
		if (ret)
			goto out;
		h.fd = fcntl(s, F_DUPFD_CLOEXEC, 0);
		if (h.fd < 0) {
			ret = net_errno(errno);
			net_err(p, "%s: cannot keep a reference to it: %s", desc, strerror(errno));
			goto out;
		}
		h.pidfd = (int)syscall(SYS_pidfd_open, fd->pid, 0);
		if (setsockopt(h.fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) < 0) {
			int e = errno;

			net_err(p, "%s: cannot put it in repair mode (TCP_REPAIR): %s%s", desc,
				strerror(e), e == EPERM ? " (needs CAP_NET_ADMIN)" : "");
			close(h.fd);
			if (h.pidfd >= 0)
				close(h.pidfd);
			ret = net_errno(e);
			goto out;
		}
		h.repair = true;
		hold = net_hold_add(p, &h);
		if (hold < 0) {
			int off = TCP_REPAIR_OFF_NO_WP;

			setsockopt(h.fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off));
			close(h.fd);
			if (h.pidfd >= 0)
				close(h.pidfd);
			ret = -ENOMEM;
			goto out;
		}
		ret = dump_conn(p, h.fd, &conn, &cd, desc);
		if (ret)
			goto out;
		r.conn = &conn;
	}

	ret = net_save(p, NET_TCP, &r.base);
	if (!ret)
		net_debug(p, "%s: saved as %u", desc, obj_id);
out:
	free(so.bindtodevice);
	free(cd.sendq);
	free(cd.recvq);
	return ret;
}

/* ---- dump end ------------------------------------------------------------------ */

static bool task_dead(int pidfd)
{
	struct pollfd pf = { .fd = pidfd, .events = POLLIN };

	return pidfd >= 0 && poll(&pf, 1, 0) == 1 && (pf.revents & (POLLIN | POLLHUP));
}

void tcp_dump_release(struct net_priv *p, bool finish_ok)
{
	for (size_t i = 0; i < p->nholds; i++) {
		struct tcp_hold *h = &p->holds[i];
		int off = TCP_REPAIR_OFF_NO_WP;

		if (h->task_fd < 0)
			continue; /* restore side */
		if (h->repair && setsockopt(h->fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) < 0)
			net_warn(p, "fd %d of PID %d: cannot take the connection out of repair mode: %s",
				 h->task_fd, (int)h->pid, strerror(errno));
		h->repair = false;
	}
	if (!finish_ok)
		tcp_drop_holds(p);
}

void tcp_drop_holds(struct net_priv *p)
{
	for (size_t i = 0; i < p->nholds; i++) {
		struct tcp_hold *h = &p->holds[i];

		if (h->fd >= 0 && h->task_fd >= 0) {
			bool dead = task_dead(h->pidfd);
			int v = dead ? TCP_REPAIR_ON : TCP_REPAIR_OFF_NO_WP;

			/* dead: this is the last reference, let the connection go
			 * without a FIN or RST; alive: the task's socket must work */
			if (dead != h->repair &&
			    setsockopt(h->fd, IPPROTO_TCP, TCP_REPAIR, &v, sizeof(v)) < 0)
				net_debug(p, "fd %d of PID %d: cannot switch repair mode %s: %s",
					  h->task_fd, (int)h->pid, dead ? "on" : "off", strerror(errno));
		}
		if (h->fd >= 0)
			close(h->fd);
		if (h->pidfd >= 0)
			close(h->pidfd);
		free(h->unsent);
	}
	p->nholds = 0;
}

/* ---- restore ------------------------------------------------------------------------ */

static int restore_conn(struct net_priv *p, int s, const Ckpt__Net__TcpSk *r, const char *desc,
			struct sockaddr_storage *lss, socklen_t llen)
{
	const Ckpt__Net__TcpConn *c = r->conn;
	struct tcp_repair_opt opts[4];
	struct sockaddr_storage pss;
	struct tcp_repair_window w;
	socklen_t plen;
	size_t nopts = 0, sent_part;
	const char *step;
	bool transparent = false;
	int v;

	if (!c || !r->peer || inet_addr_to(r->peer, (int)r->family, &pss, &plen) < 0 || !r->local) {
		net_err(p, "restore: %s: the connection record is incomplete; the images are damaged",
			desc);
		return -EBADMSG;
	}
	if (c->unsent > c->send_queue.len) {
		net_err(p, "restore: %s: more unsent bytes than queued; the images are damaged", desc);
		return -EBADMSG;
	}
	step = "TCP_REPAIR";
	v = TCP_REPAIR_ON;
	if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &v, sizeof(v)) < 0)
		goto err;
	step = "the send sequence (TCP_QUEUE_SEQ)";
	if (set_queue(s, TCP_SEND_QUEUE) < 0 ||
	    setsockopt(s, IPPROTO_TCP, TCP_QUEUE_SEQ, &c->send_seq, sizeof(c->send_seq)) < 0)
		goto err;
	step = "the receive sequence (TCP_QUEUE_SEQ)";
	if (set_queue(s, TCP_RECV_QUEUE) < 0 ||
	    setsockopt(s, IPPROTO_TCP, TCP_QUEUE_SEQ, &c->recv_seq, sizeof(c->recv_seq)) < 0)
		goto err;
	step = "bind to the local address";
	if (bind(s, (struct sockaddr *)lss, llen) < 0) {
		int lvl = r->family == AF_INET6 ? SOL_IPV6 : SOL_IP;
		int opt = r->family == AF_INET6 ? IPV6_TRANSPARENT : IP_TRANSPARENT;

		if (errno != EADDRNOTAVAIL)
			goto err;
		/* a migration: the address comes to this host once the tree
		 * runs (until then nobody here answers for it, so the peer
		 * gets no reset); a transparent socket may use it already */
		v = 1;
		if (setsockopt(s, lvl, opt, &v, sizeof(v)) < 0 ||
		    bind(s, (struct sockaddr *)lss, llen) < 0) {
			errno = EADDRNOTAVAIL;
			goto err;
		}
		transparent = !(r->ip && r->ip->has_transparent && r->ip->transparent);
		net_info(p, "restore: %s: the local address is not on this host (yet); bound "
			    "transparently",
			 desc);
	}
	step = "connect in repair mode";
	if (connect(s, (struct sockaddr *)&pss, plen) < 0)
		goto err;
	if (transparent) {
		int lvl = r->family == AF_INET6 ? SOL_IPV6 : SOL_IP;
		int opt = r->family == AF_INET6 ? IPV6_TRANSPARENT : IP_TRANSPARENT;

		v = 0;
		setsockopt(s, lvl, opt, &v, sizeof(v));
	}

	if (c->has_mss_clamp) {
		opts[nopts].opt_code = TCPOPT_MAXSEG;
		opts[nopts++].opt_val = c->mss_clamp;
	}
	if (c->wscale_ok) {
		opts[nopts].opt_code = TCPOPT_WINDOW;
		opts[nopts++].opt_val = c->snd_wscale | (c->rcv_wscale << 16);
	}
	if (c->sack_ok) {
		opts[nopts].opt_code = TCPOPT_SACK_PERMITTED;
		opts[nopts++].opt_val = 0;
	}
	if (c->tstamp_ok) {
		opts[nopts].opt_code = TCPOPT_TIMESTAMP;
		opts[nopts++].opt_val = 0;
	}
	step = "the connection options (TCP_REPAIR_OPTIONS)";
	if (nopts && setsockopt(s, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts,
				(socklen_t)(nopts * sizeof(opts[0]))) < 0)
		goto err;
	step = "TCP_TIMESTAMP";
	if (c->tstamp_ok && c->has_timestamp &&
	    setsockopt(s, IPPROTO_TCP, TCP_TIMESTAMP, &c->timestamp, sizeof(c->timestamp)) < 0)
		goto err;

	step = "the receive queue";
	if (c->recv_queue.len) {
		size_t off = 0;

		sock_grow_buf(s, c->recv_queue.len, true);
		if (set_queue(s, TCP_RECV_QUEUE) < 0)
			goto err;
		while (off < c->recv_queue.len) {
			ssize_t n = send(s, c->recv_queue.data + off, c->recv_queue.len - off,
					 MSG_DONTWAIT | MSG_NOSIGNAL);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				goto err;
			off += (size_t)n;
		}
	}
	step = "the send queue";
	sent_part = c->send_queue.len - c->unsent;
	if (sent_part) {
		size_t off = 0;

		sock_grow_buf(s, c->send_queue.len, false);
		if (set_queue(s, TCP_SEND_QUEUE) < 0)
			goto err;
		while (off < sent_part) {
			ssize_t n = send(s, c->send_queue.data + off, sent_part - off,
					 MSG_DONTWAIT | MSG_NOSIGNAL);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				goto err;
			off += (size_t)n;
		}
	}
	set_queue(s, TCP_NO_QUEUE);
	if (c->has_snd_wnd) {
		step = "the window (TCP_REPAIR_WINDOW)";
		w.snd_wl1 = c->snd_wl1;
		w.snd_wnd = c->snd_wnd;
		w.max_window = c->max_window;
		w.rcv_wnd = c->rcv_wnd;
		w.rcv_wup = c->rcv_wup;
		if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)) < 0)
			goto err;
	}
	return 0;
err:
	v = errno ? errno : EIO;
	net_err(p, "restore: %s: repair mode: setting %s failed: %s%s", desc, step, strerror(v),
		v == EADDRINUSE || v == EADDRNOTAVAIL ?
			" (is the original connection still open, or its address in use?)" : "");
	return net_errno(v);
}

int tcp_restore(struct net_priv *p, uint32_t obj_id, int *out)
{
	const Ckpt__Net__TcpSk *r = (const Ckpt__Net__TcpSk *)net_find_rec(p, NET_TCP, obj_id);
	struct sockaddr_storage lss;
	socklen_t llen = 0;
	char desc[200], ls[64], ps[64];
	int s, ret = 0, family;
	bool bound;

	if (!r) {
		net_err(p, "restore: no TCP socket object %u in net-tcp.img; the images are incomplete",
			obj_id);
		return -EBADMSG;
	}
	family = (int)r->family;
	if (family != AF_INET && family != AF_INET6) {
		net_err(p, "restore: TCP socket object %u has family %d; the images are damaged", obj_id,
			family);
		return -EBADMSG;
	}
	snprintf(desc, sizeof(desc), "TCP socket %u (%s %s -> %s)", obj_id, state_name((int)r->state),
		 inet_str(r->local, family, ls, sizeof(ls)),
		 r->peer ? inet_str(r->peer, family, ps, sizeof(ps)) : "-");
	bound = r->local && inet_addr_to(r->local, family, &lss, &llen) == 0;
	if (r->local && !bound) {
		net_err(p, "restore: %s: bad local address; the images are damaged", desc);
		return -EBADMSG;
	}

	s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
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

	switch (r->state) {
	case TCP_CLOSE:
	case TCP_LISTEN:
		if (bound) {
			int one = 1;

			/* the port may be shared with connections restored before
			 * (accepted ones); SO_REUSEADDR is set back below */
			if (r->state == TCP_LISTEN)
				setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(s, (struct sockaddr *)&lss, llen) < 0) {
				ret = net_errno(errno);
				net_err(p, "restore: %s: cannot bind: %s%s", desc, strerror(errno),
					errno == EADDRINUSE ? "; another socket holds that address now" : "");
				goto fail;
			}
		}
		if (r->state == TCP_LISTEN) {
			ret = tcpopt_restore(p, s, r->tcp, desc);
			if (ret)
				goto fail;
			if (listen(s, r->has_backlog ? (int)r->backlog : 128) < 0) {
				ret = net_errno(errno);
				net_err(p, "restore: %s: listen failed: %s", desc, strerror(errno));
				goto fail;
			}
		}
		break;
	case TCP_ESTABLISHED:
		if (!p->tcp_established) {
			net_err(p, "restore: %s: the images hold an established TCP connection; pass "
				   "--tcp-established to restore it",
				desc);
			ret = -EINVAL;
			goto fail;
		}
		if (!bound) {
			net_err(p, "restore: %s: an established connection without a local address; the "
				   "images are damaged",
				desc);
			ret = -EBADMSG;
			goto fail;
		}
		ret = restore_conn(p, s, r, desc, &lss, llen);
		if (ret)
			goto fail;
		break;
	default:
		net_err(p, "restore: %s: state %u cannot be restored; the images are damaged", desc,
			r->state);
		ret = -EBADMSG;
		goto fail;
	}

	ret = ipopt_restore(p, s, family, r->ip, false, desc);
	if (!ret && r->state != TCP_LISTEN)
		ret = tcpopt_restore(p, s, r->tcp, desc);
	if (!ret) {
		Ckpt__Net__SockOpts so;

		if (r->opts) {
			so = *r->opts;
			/* the send buffer must hold the unsent bytes until
			 * restore_resume; it gets its size there */
			if (r->state == TCP_ESTABLISHED && r->conn && r->conn->unsent)
				so.has_sndbuf = false;
		}
		ret = sockopt_restore(p, s, r->opts ? &so : NULL, desc);
	}
	if (!ret)
		ret = sock_restore_flags(p, s, r->flags, desc);
	if (ret)
		goto fail;

	if (r->state == TCP_ESTABLISHED) {
		const Ckpt__Net__TcpConn *c = r->conn;
		struct tcp_hold h = { .fd = -1, .pidfd = -1, .pid = 0, .task_fd = -1, .id = obj_id,
				      .repair = true };

		h.fd = fcntl(s, F_DUPFD_CLOEXEC, 0);
		if (h.fd < 0) {
			ret = net_errno(errno);
			net_err(p, "restore: %s: cannot keep a reference to it: %s", desc, strerror(errno));
			goto fail;
		}
		if (c->unsent) {
			h.unsent = malloc(c->unsent);
			if (!h.unsent) {
				close(h.fd);
				ret = -ENOMEM;
				goto fail;
			}
			memcpy(h.unsent, c->send_queue.data + c->send_queue.len - c->unsent, c->unsent);
			h.nunsent = c->unsent;
			if (r->opts && r->opts->has_sndbuf) {
				h.has_sndbuf = true;
				h.sndbuf = r->opts->sndbuf;
			}
		}
		if (net_hold_add(p, &h) < 0) {
			close(h.fd);
			free(h.unsent);
			ret = -ENOMEM;
			goto fail;
		}
	}
	net_debug(p, "restore: %s made", desc);
	*out = s;
	return 0;
fail:
	close(s);
	return net_errno(ret);
}

int tcp_resume(struct net_priv *p)
{
	int ret = 0;

	for (size_t i = 0; i < p->nholds; i++) {
		struct tcp_hold *h = &p->holds[i];
		int off = TCP_REPAIR_OFF;

		if (h->task_fd >= 0 || h->fd < 0)
			continue; /* not a restored socket */
		if (h->repair && setsockopt(h->fd, IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)) < 0) {
			net_err(p, "restore: TCP socket %u: cannot take it out of repair mode: %s", h->id,
				strerror(errno));
			ret = net_errno(errno);
			break;
		}
		h->repair = false;
		if (h->nunsent) {
			size_t o = 0;

			sock_grow_buf(h->fd, h->nunsent, false);
			while (o < h->nunsent) {
				ssize_t n = send(h->fd, h->unsent + o, h->nunsent - o,
						 MSG_DONTWAIT | MSG_NOSIGNAL);

				if (n < 0 && errno == EINTR)
					continue;
				if (n <= 0) {
					net_err(p, "restore: TCP socket %u: cannot send its %zu unsent "
						   "bytes: %s",
						h->id, h->nunsent - o, n < 0 ? strerror(errno) : "short write");
					ret = n < 0 ? net_errno(errno) : -EIO;
					break;
				}
				o += (size_t)n;
			}
			if (ret)
				break;
			if (h->has_sndbuf) {
				int v = (int)(h->sndbuf / 2);

				if (setsockopt(h->fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
					setsockopt(h->fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
			}
		}
	}
	/* The sockets are the task's now; keeping a reference here would keep
	 * them open after the task closes them (a --pidns restore's init
	 * lives on). */
	if (!ret) {
		for (size_t i = 0; i < p->nholds; i++)
			if (p->holds[i].task_fd < 0 && p->holds[i].fd >= 0) {
				close(p->holds[i].fd);
				p->holds[i].fd = -1;
			}
	}
	return ret;
}

int tcp_check_repair(char *why, size_t len)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP), on = TCP_REPAIR_ON, e;

	if (s < 0) {
		snprintf(why, len, "no TCP socket: %s", strerror(errno));
		return -errno;
	}
	if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on)) < 0) {
		e = errno;
		snprintf(why, len, "TCP_REPAIR refused: %s%s", strerror(e),
			 e == EPERM ? " (needs CAP_NET_ADMIN)" : "");
		close(s);
		return -e;
	}
	close(s);
	snprintf(why, len, "TCP_REPAIR works");
	return 0;
}
