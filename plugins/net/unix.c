// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unix sockets, dump (class "unix", image net-unix.img of ckpt.net.UnixSk).
 *
 * What a socket is comes from sock_diag (unix_diag.c): its type, state,
 * name, peer inode, shutdown state and, for a listening socket, the
 * clients waiting in its backlog.  From that each socket gets a role:
 *
 *   listening   name, backlog, the waiting clients' inodes in accept order
 *   connected   peer inode (the peer is a socket of the dumped tree)
 *   pending     a client in a listener's backlog, not accepted yet (its
 *               peer is the kernel's embryo socket, inode 0, found in the
 *               listener's UNIX_DIAG_ICONS)
 *   peer closed connected, but the other end was closed
 *   external    the peer lives outside the dumped tree: refused unless
 *               ext_unix_sk, then reconnected by the peer's name
 *   unconnected maybe bound to a name
 *
 * The receive queue is read with MSG_PEEK (queue.c), one message per
 * datagram / record, with each datagram's sender name; restore writes it
 * back from the peer.  Descriptors in flight (SCM_RIGHTS) are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"

#define UNIX_RCV_SHUTDOWN 1
#define UNIX_SEND_SHUTDOWN 2
#define ST_ESTABLISHED 1
#define ST_LISTEN 10

static const char *type_name(int t)
{
	switch (t) {
	case SOCK_STREAM:
		return "stream";
	case SOCK_DGRAM:
		return "dgram";
	case SOCK_SEQPACKET:
		return "seqpacket";
	default:
		return "?";
	}
}

/* "@abstract" or "/path", with what cannot be printed as '?'. */
static const char *name_str(const uint8_t *n, size_t len, char *buf, size_t size)
{
	size_t o = 0, i = 0;

	if (!len) {
		snprintf(buf, size, "(unnamed)");
		return buf;
	}
	if (n[0] == 0) {
		buf[o++] = '@';
		i = 1;
	}
	for (; i < len && o + 1 < size; i++) {
		if (n[0] != 0 && n[i] == 0)
			break;
		buf[o++] = (n[i] >= 0x20 && n[i] < 0x7f) ? (char)n[i] : '?';
	}
	buf[o] = '\0';
	return buf;
}

static void describe(const struct ckpt_fd_info *fd, const struct unix_diag_ent *e, char *buf,
		     size_t size)
{
	char nm[120];

	snprintf(buf, size, "fd %d of PID %d (unix %s socket %llu %s)", fd->fd, (int)fd->pid,
		 type_name(e->type), (unsigned long long)e->ino,
		 name_str(e->name, e->has_name ? e->namelen : 0, nm, sizeof(nm)));
}

static bool same_name(const struct unix_diag_ent *a, const struct unix_diag_ent *b)
{
	return a->has_name && b->has_name && a->namelen == b->namelen && a->namelen &&
	       !memcmp(a->name, b->name, a->namelen);
}

/* The listener whose backlog holds client ino, or NULL. */
static const struct unix_diag_ent *find_listener_of(const struct net_priv *p, uint64_t ino)
{
	for (size_t i = 0; i < p->nudiag; i++) {
		const struct unix_diag_ent *l = &p->udiag[i];

		if (l->state != ST_LISTEN)
			continue;
		for (size_t k = 0; k < l->nicons; k++)
			if (l->icons[k] == ino)
				return l;
	}
	return NULL;
}

/* A listening socket with the same name (and socket file): e was accepted
 * from it. */
static bool has_listener_named(const struct net_priv *p, const struct unix_diag_ent *e)
{
	for (size_t i = 0; i < p->nudiag; i++) {
		const struct unix_diag_ent *l = &p->udiag[i];

		if (l->state != ST_LISTEN || l->ino == e->ino || !same_name(l, e))
			continue;
		if (e->name[0] != 0 && l->has_vfs && e->has_vfs &&
		    (l->vfs_ino != e->vfs_ino || l->vfs_dev != e->vfs_dev))
			continue;
		return true;
	}
	return false;
}

/* Path names: where the socket file is, and whether it is still there. */
static int dump_path_name(struct net_priv *p, const struct ckpt_fd_info *fd,
			  const struct unix_diag_ent *e, Ckpt__Net__UnixSk *r, char **dir_out)
{
	char path[PATH_MAX + 64], cwd[PATH_MAX];
	char name[sizeof(e->name) + 1];
	struct stat st;
	size_t nl = strnlen((const char *)e->name, e->namelen);

	memcpy(name, e->name, nl);
	name[nl] = '\0';
	*dir_out = NULL;
	if (name[0] == '/') {
		snprintf(path, sizeof(path), "%s", name);
	} else {
		char lp[64];
		ssize_t n;

		snprintf(lp, sizeof(lp), "/proc/%d/cwd", (int)fd->pid);
		n = readlink(lp, cwd, sizeof(cwd) - 1);
		if (n <= 0) {
			net_err(p, "fd %d of PID %d: unix socket bound to the relative path %s: cannot "
				   "read the task's cwd: %s",
				fd->fd, (int)fd->pid, name, strerror(errno));
			return net_errno(errno);
		}
		cwd[n] = '\0';
		snprintf(path, sizeof(path), "/proc/%d/cwd/%s", (int)fd->pid, name);
		*dir_out = strdup(cwd);
		if (!*dir_out)
			return -ENOMEM;
		r->name_dir = *dir_out;
	}
	if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && e->has_vfs &&
	    st.st_ino == e->vfs_ino && major(st.st_dev) == (e->vfs_dev >> 20) &&
	    minor(st.st_dev) == (e->vfs_dev & 0xfffff)) {
		r->has_name_mode = r->has_name_uid = r->has_name_gid = true;
		r->name_mode = st.st_mode & 07777;
		r->name_uid = st.st_uid;
		r->name_gid = st.st_gid;
	} else if (*dir_out) {
		net_err(p, "fd %d of PID %d: unix socket bound to the relative name %s, which does "
			   "not lead to its socket file from the task's cwd %s (it changed directory "
			   "since, or the file was removed); ckpt cannot tell where the name belongs",
			fd->fd, (int)fd->pid, name, cwd);
		return -ENOENT;
	} else {
		r->has_name_gone = true;
		r->name_gone = true;
		net_debug(p, "fd %d of PID %d: the socket file %s is gone or replaced", fd->fd,
			  (int)fd->pid, name);
	}
	return 0;
}

int unix_dump(struct net_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	Ckpt__Net__UnixSk r = CKPT__NET__UNIX_SK__INIT;
	Ckpt__Net__SockOpts opts = CKPT__NET__SOCK_OPTS__INIT;
	Ckpt__Net__UnixMsg *msgs = NULL, **pmsgs = NULL;
	const struct unix_diag_ent *e, *pe = NULL;
	struct peeked q = { 0 };
	char desc[300], nm[120], *dir = NULL;
	uint64_t *icons = NULL;
	size_t nicons = 0;
	int ret;

	ret = unix_diag_load(p);
	if (ret)
		return ret;
	e = unix_diag_find(p, fd->st.st_ino);
	if (!e) {
		net_err(p, "fd %d of PID %d: sock_diag does not list unix socket %llu (%s); is it in "
			   "another network namespace?",
			fd->fd, (int)fd->pid, (unsigned long long)fd->st.st_ino, fd->link);
		return -ENOENT;
	}
	describe(fd, e, desc, sizeof(desc));
	if (e->type != SOCK_STREAM && e->type != SOCK_DGRAM && e->type != SOCK_SEQPACKET) {
		net_err(p, "%s: socket type %d is not supported", desc, e->type);
		return -EPROTONOSUPPORT;
	}

	r.has_id = r.has_ino = r.has_type = r.has_state = r.has_flags = r.has_role = true;
	r.id = obj_id;
	r.ino = e->ino;
	r.type = e->type;
	r.state = e->state;
	r.flags = fd->flags;
	r.has_shutdown = true;
	r.shutdown = e->shutdown;
	if (e->has_name && e->namelen) {
		r.has_name = true;
		r.name.data = (uint8_t *)e->name;
		r.name.len = e->namelen;
		if (e->name[0] != 0) {
			ret = dump_path_name(p, fd, e, &r, &dir);
			if (ret)
				goto out;
		}
	}

	if (e->state == ST_LISTEN) {
		r.role = CKPT__NET__UNIX_ROLE__UNIX_LISTEN;
		r.has_backlog = true;
		r.backlog = e->has_rqlen ? e->wqueue : 128;
		icons = calloc(e->nicons ? e->nicons : 1, sizeof(*icons));
		if (!icons) {
			ret = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < e->nicons; i++) {
			if (e->icons[i] && net_in_tree(p, e->icons[i])) {
				icons[nicons++] = e->icons[i];
				continue;
			}
			if (!p->ext_unix_sk) {
				net_err(p, "%s: a connection from %s waits in its backlog; accept it "
					   "before the dump, or pass --ext-unix-sk to drop it",
					desc, e->icons[i] ? "a process outside the dump" :
							     "a closed socket");
				ret = -EBUSY;
				goto out;
			}
			net_warn(p, "%s: dropping a waiting connection from outside the dump "
				    "(--ext-unix-sk); that client will see its connection reset",
				 desc);
		}
		r.n_icons = nicons;
		r.icons = icons;
	} else if (e->has_peer && e->peer) {
		pe = unix_diag_find(p, e->peer);
		if (net_in_tree(p, e->peer)) {
			r.role = CKPT__NET__UNIX_ROLE__UNIX_CONNECTED;
			r.has_peer_ino = true;
			r.peer_ino = e->peer;
			if (e->type != SOCK_DGRAM && e->has_name && e->namelen &&
			    has_listener_named(p, e)) {
				r.has_accepted = true;
				r.accepted = true;
			}
			if (e->type == SOCK_DGRAM && !(pe && pe->has_peer && pe->peer == e->ino) &&
			    !(pe && pe->has_name && pe->namelen)) {
				net_err(p, "%s: connected to unnamed socket %llu that is not connected "
					   "back; such a dgram connection cannot be made again",
					desc, (unsigned long long)e->peer);
				ret = -EINVAL;
				goto out;
			}
		} else {
			if (!p->ext_unix_sk) {
				net_err(p, "%s: its peer %llu %s is outside the dumped process; pass "
					   "--ext-unix-sk to reconnect it by name at restore",
					desc, (unsigned long long)e->peer,
					pe ? name_str(pe->name, pe->has_name ? pe->namelen : 0, nm,
						      sizeof(nm)) :
					     "");
				ret = -EXDEV;
				goto out;
			}
			if (!pe || !pe->has_name || !pe->namelen) {
				net_err(p, "%s: its peer %llu outside the dump has no name to reconnect "
					   "to; close it before the dump",
					desc, (unsigned long long)e->peer);
				ret = -EXDEV;
				goto out;
			}
			r.role = CKPT__NET__UNIX_ROLE__UNIX_EXTERNAL;
			r.has_peer_name = true;
			r.peer_name.data = (uint8_t *)pe->name;
			r.peer_name.len = pe->namelen;
			net_warn(p, "%s: peer outside the dump; restore connects again to %s "
				    "(--ext-unix-sk)",
				 desc, name_str(pe->name, pe->namelen, nm, sizeof(nm)));
		}
	} else if (e->has_peer) {
		const struct unix_diag_ent *l = e->type == SOCK_DGRAM ? NULL : find_listener_of(p, e->ino);

		if (!l) {
			r.role = CKPT__NET__UNIX_ROLE__UNIX_PEER_CLOSED;
		} else if (e->has_rqlen && e->wqueue) {
			net_err(p, "%s: it sent %u bytes on a connection its listener %llu has not "
				   "accepted yet; queued data of unaccepted connections is not "
				   "supported, accept it before the dump",
				desc, e->wqueue, (unsigned long long)l->ino);
			ret = -EBUSY;
			goto out;
		} else if (net_in_tree(p, l->ino)) {
			r.role = CKPT__NET__UNIX_ROLE__UNIX_PENDING;
			r.has_listener_ino = true;
			r.listener_ino = l->ino;
		} else if (p->ext_unix_sk && l->has_name && l->namelen) {
			r.role = CKPT__NET__UNIX_ROLE__UNIX_EXTERNAL;
			r.has_peer_name = true;
			r.peer_name.data = (uint8_t *)l->name;
			r.peer_name.len = l->namelen;
		} else {
			net_err(p, "%s: waits in the backlog of listener %llu outside the dumped "
				   "process; pass --ext-unix-sk to connect again by name",
				desc, (unsigned long long)l->ino);
			ret = -EXDEV;
			goto out;
		}
	} else {
		r.role = CKPT__NET__UNIX_ROLE__UNIX_UNCONNECTED;
	}

	sockopt_dump(fd->local_fd, AF_UNIX, e->type, &opts);
	r.opts = &opts;

	if (e->state != ST_LISTEN) {
		const char *what = "";
		bool records = e->type != SOCK_STREAM;

		ret = queue_peek(fd->local_fd, records, (e->shutdown & UNIX_RCV_SHUTDOWN) != 0, &q,
				 &what);
		if (ret) {
			net_err(p, "%s: cannot read its receive queue (%s): %s", desc, what,
				strerror(-ret));
			ret = net_errno(ret);
			goto out;
		}
		if (q.nfds) {
			net_err(p, "%s: %d file descriptor(s) are in flight in its receive queue "
				   "(SCM_RIGHTS); that is not supported yet, let the task receive "
				   "them before the dump",
				desc, q.nfds);
			ret = -EBUSY;
			goto out;
		}
	}
	if (q.n) {
		bool mutual = pe && pe->has_peer && pe->peer == e->ino;

		if (r.role == CKPT__NET__UNIX_ROLE__UNIX_EXTERNAL && e->type != SOCK_DGRAM) {
			net_err(p, "%s: %zu unread bytes came from its peer outside the dump; they "
				   "cannot be queued again, let the task read them first",
				desc, q.bytes);
			ret = -EBUSY;
			goto out;
		}
		if (e->type == SOCK_DGRAM && !(r.role == CKPT__NET__UNIX_ROLE__UNIX_CONNECTED && mutual) &&
		    !(e->has_name && e->namelen)) {
			net_err(p, "%s: %zu datagrams are queued on an unnamed socket whose senders "
				   "cannot send again; let the task read them first",
				desc, q.n);
			ret = -EBUSY;
			goto out;
		}
		msgs = calloc(q.n, sizeof(*msgs));
		pmsgs = calloc(q.n, sizeof(*pmsgs));
		if (!msgs || !pmsgs) {
			ret = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < q.n; i++) {
			ckpt__net__unix_msg__init(&msgs[i]);
			msgs[i].has_data = true;
			msgs[i].data.data = q.m[i].data;
			msgs[i].data.len = q.m[i].len;
			if (q.m[i].senderlen) {
				msgs[i].has_sender = true;
				msgs[i].sender.data = q.m[i].sender;
				msgs[i].sender.len = q.m[i].senderlen;
			}
			pmsgs[i] = &msgs[i];
		}
		r.n_rqueue = q.n;
		r.rqueue = pmsgs;
	}

	ret = net_save(p, NET_UNIX, &r.base);
	if (!ret)
		net_debug(p, "%s: saved as %u, role %d, peer %llu, %zu queued message(s), %zu bytes",
			  desc, obj_id, r.role, (unsigned long long)r.peer_ino, q.n, q.bytes);
out:
	free(opts.bindtodevice);
	free(msgs);
	free(pmsgs);
	free(icons);
	free(dir);
	queue_free(&q);
	return ret;
}
