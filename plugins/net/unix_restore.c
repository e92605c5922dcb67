// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unix sockets, restore.
 *
 * Every unix socket of the images is built at restore_start, before any
 * task exists, because the two ends of a connection, a listener and the
 * clients in its backlog, or a receiver and the senders of its datagrams
 * must be put together in a fixed order whatever their fd numbers are.
 * The fd restore hook then hands each socket out.  The order:
 *
 *  1. accepted connections: a temporary listener at the name, the peer
 *     connects, accept() gives the server end the listener's name (as the
 *     original had); the temporary listener and its file go away;
 *  2. every other socket: socketpair() for connected pairs (stream,
 *     seqpacket, and dgram sockets connected to each other), socket()
 *     for the rest; names bound (a stale socket file is unlinked first, a
 *     missing directory made, a name whose file had been removed is
 *     removed again), listeners listen with their backlog;
 *  3. clients waiting in a backlog connect to their listener, in accept
 *     order; sockets whose peer was outside the dump (ext_unix_sk)
 *     connect again by name;
 *  4. receive queues are written back: stream and seqpacket data from the
 *     peer, datagrams from the peer of a pair, else sent to the receiver's
 *     name from the socket that had the sender's name (or a temporary one
 *     with that name, or an unnamed one); a connection whose peer had been
 *     closed gets its data from a temporary end that is closed afterwards;
 *  5. one-way dgram connections (after 4: a connected receiver takes
 *     datagrams from its peer only);
 *  6. shutdown states, socket options, file flags.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"

#define UNIX_RCV_SHUTDOWN 1
#define UNIX_SEND_SHUTDOWN 2

typedef Ckpt__Net__UnixSk Usk;

struct ino_idx {
	uint64_t ino;
	size_t idx;
};

struct ubuild {
	struct net_priv *p;
	Usk **r;        /* the records (table order) */
	size_t n;
	int *fd;        /* the built sockets */
	struct ino_idx *by_ino;
	int cwd;        /* the controller's cwd, for relative names */
	int *closers;   /* temporary ends closed after the queues are written */
	size_t ncloser;
	int unnamed;    /* a temporary unnamed dgram sender */
};

static int cmp_ino(const void *a, const void *b)
{
	const struct ino_idx *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static long find_ino(const struct ubuild *b, uint64_t ino)
{
	struct ino_idx key = { .ino = ino }, *f;

	f = bsearch(&key, b->by_ino, b->n, sizeof(key), cmp_ino);
	return f ? (long)f->idx : -1;
}

static const char *type_name(uint32_t t)
{
	return t == SOCK_STREAM ? "stream" : t == SOCK_DGRAM ? "dgram" : t == SOCK_SEQPACKET ? "seqpacket" : "?";
}

static const char *name_str(const ProtobufCBinaryData *n, char *buf, size_t size)
{
	size_t o = 0, i = 0;

	if (!n->len) {
		snprintf(buf, size, "(unnamed)");
		return buf;
	}
	if (n->data[0] == 0) {
		buf[o++] = '@';
		i = 1;
	}
	for (; i < n->len && o + 1 < size; i++) {
		if (n->data[0] != 0 && n->data[i] == 0)
			break;
		buf[o++] = (n->data[i] >= 0x20 && n->data[i] < 0x7f) ? (char)n->data[i] : '?';
	}
	buf[o] = '\0';
	return buf;
}

static const char *desc(const Usk *r, char *buf, size_t size)
{
	char nm[120];

	snprintf(buf, size, "unix %s socket %llu (object %u, %s)", type_name(r->type),
		 (unsigned long long)r->ino, r->id,
		 name_str(r->has_name ? &r->name : &(ProtobufCBinaryData){ 0, NULL }, nm, sizeof(nm)));
	return buf;
}

static bool named(const Usk *r)
{
	return r->has_name && r->name.len > 0;
}

static bool is_path(const ProtobufCBinaryData *n)
{
	return n->len > 0 && n->data[0] != 0;
}

static int make_addr(const ProtobufCBinaryData *n, struct sockaddr_un *sa, socklen_t *len)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (n->len > sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, n->data, n->len);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n->len);
	return 0;
}

/* The path of a path name, as a C string. */
static void path_of(const ProtobufCBinaryData *n, char *buf, size_t size)
{
	size_t l = strnlen((const char *)n->data, n->len);

	if (l >= size)
		l = size - 1;
	memcpy(buf, n->data, l);
	buf[l] = '\0';
}

/* Relative names are resolved in the directory they were bound in. */
static int enter_dir(struct ubuild *b, const Usk *r)
{
	if (!r || !r->name_dir || !r->has_name || !is_path(&r->name) || r->name.data[0] == '/')
		return 0;
	if (chdir(r->name_dir) < 0) {
		int e = errno;
		char d[200];

		net_err(b->p, "restore: %s: cannot enter %s to bind its relative name: %s",
			desc(r, d, sizeof(d)), r->name_dir, strerror(e));
		return net_errno(e);
	}
	return 1;
}

static void leave_dir(struct ubuild *b, int entered)
{
	if (entered > 0 && b->cwd >= 0 && fchdir(b->cwd) < 0)
		net_warn(b->p, "restore: cannot return to the previous directory: %s", strerror(errno));
}

static void mkdir_parents(struct ubuild *b, const char *path)
{
	char tmp[PATH_MAX];
	size_t l = strlen(path);

	if (l >= sizeof(tmp))
		return;
	memcpy(tmp, path, l + 1);
	for (char *s = tmp + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(tmp, 0755) == 0)
			net_info(b->p, "restore: made the missing directory %s", tmp);
		*s = '/';
	}
}

/* Bind fd to name n (of record r, for messages, the directory and the
 * socket file's mode).  A stale socket file is removed first; a name whose
 * file had been removed at dump time is removed again after the bind,
 * leaving whatever now lives at that path in place. */
static int bind_to(struct ubuild *b, int fd, const ProtobufCBinaryData *n, const Usk *r,
		   bool gone, bool temp)
{
	char d[200], path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	char aside[PATH_MAX];
	struct sockaddr_un sa;
	struct stat st;
	socklen_t alen;
	bool moved = false;
	int entered, ret = 0;

	if (make_addr(n, &sa, &alen) < 0) {
		net_err(b->p, "restore: %s: its name is too long; the images are damaged",
			desc(r, d, sizeof(d)));
		return -EBADMSG;
	}
	if (!is_path(n)) {
		if (bind(fd, (struct sockaddr *)&sa, alen) == 0)
			return 0;
		ret = -errno;
		net_err(b->p, "restore: %s: cannot bind the abstract name: %s%s", desc(r, d, sizeof(d)),
			strerror(-ret),
			ret == -EADDRINUSE ? "; another process holds that name now, stop it" : "");
		return net_errno(ret);
	}

	entered = enter_dir(b, r);
	if (entered < 0)
		return entered;
	path_of(n, path, sizeof(path));
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			net_err(b->p, "restore: %s: %s exists and is not a socket; remove it and "
				      "restore again",
				desc(r, d, sizeof(d)), path);
			ret = -EEXIST;
			goto out;
		}
		if (gone) {
			/* keep the file that replaced ours: move it aside meanwhile */
			snprintf(aside, sizeof(aside), "%s.ckpt-%d", path, (int)getpid());
			if (rename(path, aside) == 0)
				moved = true;
		} else {
			unlink(path);
		}
	} else if (errno == ENOENT && strchr(path, '/')) {
		mkdir_parents(b, path);
	}
	if (bind(fd, (struct sockaddr *)&sa, alen) < 0) {
		ret = -errno;
		net_err(b->p, "restore: %s: cannot bind to %s: %s", desc(r, d, sizeof(d)), path,
			strerror(-ret));
		ret = net_errno(ret);
		goto out;
	}
	if (gone || temp) {
		unlink(path);
	} else if (r->has_name_mode) {
		if (chmod(path, r->name_mode & 07777) < 0)
			net_warn(b->p, "restore: cannot give socket file %s mode 0%o: %s", path,
				 r->name_mode & 07777, strerror(errno));
		if (r->has_name_uid && r->has_name_gid && lchown(path, r->name_uid, r->name_gid) < 0)
			net_warn(b->p, "restore: cannot give socket file %s to %u:%u: %s", path,
				 r->name_uid, r->name_gid, strerror(errno));
	}
out:
	if (moved && rename(aside, path) < 0)
		net_warn(b->p, "restore: cannot move %s back to %s: %s", aside, path, strerror(errno));
	leave_dir(b, entered);
	return ret;
}

/* connect() to name n; rel: the record whose directory resolves a relative
 * name. */
static int connect_to(struct ubuild *b, int fd, const ProtobufCBinaryData *n, const Usk *rel,
		      const Usk *r, const char *whom)
{
	struct sockaddr_un sa;
	socklen_t alen;
	char d[200], nm[120];
	int entered, ret = 0, fl;

	if (make_addr(n, &sa, &alen) < 0)
		return -EBADMSG;
	entered = enter_dir(b, rel);
	if (entered < 0)
		return entered;
	fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (connect(fd, (struct sockaddr *)&sa, alen) < 0) {
		ret = -errno;
		net_err(b->p, "restore: %s: cannot connect to %s %s: %s%s", desc(r, d, sizeof(d)), whom,
			name_str(n, nm, sizeof(nm)), strerror(-ret),
			ret == -ECONNREFUSED || ret == -ENOENT ? "; start the peer first" :
			ret == -EAGAIN ? " (its backlog is full)" : "");
		ret = net_errno(ret);
	}
	fcntl(fd, F_SETFL, fl);
	leave_dir(b, entered);
	return ret;
}

static int new_sock(struct ubuild *b, const Usk *r)
{
	int fd = socket(AF_UNIX, (int)r->type | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		char d[200];
		int e = errno;

		net_err(b->p, "restore: %s: cannot create it: %s", desc(r, d, sizeof(d)), strerror(e));
		return net_errno(e);
	}
	return fd;
}

/* Its own name, unless the name came from accept(). */
static int bind_own(struct ubuild *b, size_t i)
{
	const Usk *r = b->r[i];

	if (!named(r) || r->accepted)
		return 0;
	return bind_to(b, b->fd[i], &r->name, r, r->name_gone, false);
}

static long peer_of(struct ubuild *b, size_t i, bool need_back)
{
	const Usk *r = b->r[i];
	char d[200];
	long k = r->has_peer_ino ? find_ino(b, r->peer_ino) : -1;

	if (k < 0 || b->r[k]->type != r->type ||
	    (need_back && !(b->r[k]->has_peer_ino && b->r[k]->peer_ino == r->ino))) {
		net_err(b->p, "restore: %s: its peer %llu is not in the images or not connected "
			      "back; the images are damaged",
			desc(r, d, sizeof(d)), (unsigned long long)r->peer_ino);
		return -EBADMSG;
	}
	return k;
}

static bool mutual(struct ubuild *b, size_t i)
{
	const Usk *r = b->r[i];
	long k;

	if (r->role != CKPT__NET__UNIX_ROLE__UNIX_CONNECTED || !r->has_peer_ino)
		return false;
	k = find_ino(b, r->peer_ino);
	return k >= 0 && b->r[k]->role == CKPT__NET__UNIX_ROLE__UNIX_CONNECTED &&
	       b->r[k]->has_peer_ino && b->r[k]->peer_ino == r->ino;
}

/* 1. accepted connections */
static int build_accepted(struct ubuild *b, size_t i)
{
	const Usk *r = b->r[i];
	int tl = -1, c = -1, a = -1, ret;
	long k = peer_of(b, i, true);
	char d[200];

	if (k < 0)
		return (int)k;
	if (b->fd[k] >= 0) {
		net_err(b->p, "restore: %s: its peer was built twice; the images are damaged",
			desc(r, d, sizeof(d)));
		return -EBADMSG;
	}
	tl = new_sock(b, r);
	if (tl < 0)
		return tl;
	ret = bind_to(b, tl, &r->name, r, false, false);
	if (ret)
		goto fail;
	if (listen(tl, 1) < 0) {
		ret = -errno;
		net_err(b->p, "restore: %s: cannot listen on its name: %s", desc(r, d, sizeof(d)),
			strerror(-ret));
		goto fail;
	}
	c = new_sock(b, b->r[k]);
	if (c < 0) {
		ret = c;
		goto fail;
	}
	b->fd[k] = c;
	if (b->r[k]->accepted)
		net_warn(b->p, "restore: %s: both ends carry a listener's name; its peer keeps none",
			 desc(r, d, sizeof(d)));
	ret = bind_own(b, (size_t)k);
	if (ret)
		goto fail;
	ret = connect_to(b, c, &r->name, r, b->r[k], "its peer's listener");
	if (ret)
		goto fail;
	a = accept4(tl, NULL, NULL, SOCK_CLOEXEC);
	if (a < 0) {
		ret = -errno;
		net_err(b->p, "restore: %s: cannot accept its connection again: %s",
			desc(r, d, sizeof(d)), strerror(-ret));
		goto fail;
	}
	b->fd[i] = a;
	/* the listener's file goes: the real listener (if any) binds later */
	if (is_path(&r->name)) {
		char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
		int entered = enter_dir(b, r);

		path_of(&r->name, path, sizeof(path));
		if (entered >= 0) {
			unlink(path);
			leave_dir(b, entered);
		}
	}
	close(tl);
	return 0;
fail:
	if (tl >= 0)
		close(tl);
	return net_errno(ret);
}

/* 2. the rest */
static int build_one(struct ubuild *b, size_t i)
{
	const Usk *r = b->r[i];
	char d[200];
	int ret, sv[2];

	if (b->fd[i] >= 0)
		return 0;
	switch (r->role) {
	case CKPT__NET__UNIX_ROLE__UNIX_CONNECTED:
		if (mutual(b, i)) {
			long k = peer_of(b, i, true);

			if (k < 0)
				return (int)k;
			if (socketpair(AF_UNIX, (int)r->type | SOCK_CLOEXEC, 0, sv) < 0) {
				ret = -errno;
				net_err(b->p, "restore: %s: socketpair failed: %s", desc(r, d, sizeof(d)),
					strerror(-ret));
				return net_errno(ret);
			}
			b->fd[i] = sv[0];
			b->fd[k] = sv[1];
			ret = bind_own(b, i);
			if (!ret)
				ret = bind_own(b, (size_t)k);
			return ret;
		}
		if (r->type != SOCK_DGRAM) {
			net_err(b->p, "restore: %s: its peer is not connected back; the images are "
				      "damaged",
				desc(r, d, sizeof(d)));
			return -EBADMSG;
		}
		break; /* one-way dgram: phase 5 */
	case CKPT__NET__UNIX_ROLE__UNIX_PEER_CLOSED:
		if (r->type == SOCK_DGRAM)
			break; /* phase 5 */
		if (socketpair(AF_UNIX, (int)r->type | SOCK_CLOEXEC, 0, sv) < 0) {
			ret = -errno;
			net_err(b->p, "restore: %s: socketpair failed: %s", desc(r, d, sizeof(d)),
				strerror(-ret));
			return net_errno(ret);
		}
		b->fd[i] = sv[0];
		b->closers[i] = sv[1];
		return bind_own(b, i);
	case CKPT__NET__UNIX_ROLE__UNIX_UNCONNECTED:
	case CKPT__NET__UNIX_ROLE__UNIX_LISTEN:
	case CKPT__NET__UNIX_ROLE__UNIX_PENDING:
	case CKPT__NET__UNIX_ROLE__UNIX_EXTERNAL:
		break;
	default:
		net_err(b->p, "restore: %s: unknown role %d; use the plugin version that wrote the "
			      "images",
			desc(r, d, sizeof(d)), r->role);
		return -EINVAL;
	}
	ret = new_sock(b, r);
	if (ret < 0)
		return ret;
	b->fd[i] = ret;
	ret = bind_own(b, i);
	if (ret)
		return ret;
	if (r->role == CKPT__NET__UNIX_ROLE__UNIX_LISTEN) {
		if (!named(r)) {
			net_err(b->p, "restore: %s: a listening socket without a name; the images are "
				      "damaged",
				desc(r, d, sizeof(d)));
			return -EBADMSG;
		}
		if (listen(b->fd[i], r->has_backlog ? (int)r->backlog : 128) < 0) {
			ret = -errno;
			net_err(b->p, "restore: %s: listen failed: %s", desc(r, d, sizeof(d)),
				strerror(-ret));
			return net_errno(ret);
		}
	}
	return 0;
}

/* 3. backlogs and outside peers */
static int connect_pending(struct ubuild *b)
{
	char d[200];
	int ret;

	for (size_t i = 0; i < b->n; i++) {
		const Usk *l = b->r[i];

		if (l->role != CKPT__NET__UNIX_ROLE__UNIX_LISTEN)
			continue;
		for (size_t j = 0; j < l->n_icons; j++) {
			long k = find_ino(b, l->icons[j]);

			if (k < 0 || b->r[k]->role != CKPT__NET__UNIX_ROLE__UNIX_PENDING ||
			    b->r[k]->listener_ino != l->ino) {
				net_err(b->p, "restore: %s: waiting client %llu is not in the images; "
					      "the images are damaged",
					desc(l, d, sizeof(d)), (unsigned long long)l->icons[j]);
				return -EBADMSG;
			}
			ret = connect_to(b, b->fd[k], &l->name, l, b->r[k], "its listener");
			if (ret)
				return ret;
			b->closers[k] = -2; /* connected */
		}
	}
	for (size_t i = 0; i < b->n; i++) {
		const Usk *r = b->r[i];

		if (r->role == CKPT__NET__UNIX_ROLE__UNIX_PENDING && b->closers[i] != -2) {
			net_err(b->p, "restore: %s: waits for listener %llu, which does not list it; "
				      "the images are damaged",
				desc(r, d, sizeof(d)), (unsigned long long)r->listener_ino);
			return -EBADMSG;
		}
		if (r->role == CKPT__NET__UNIX_ROLE__UNIX_PENDING)
			b->closers[i] = -1;
		if (r->role != CKPT__NET__UNIX_ROLE__UNIX_EXTERNAL || r->type == SOCK_DGRAM)
			continue;
		if (!r->has_peer_name || !r->peer_name.len) {
			net_err(b->p, "restore: %s: no name to reconnect to; the images are damaged",
				desc(r, d, sizeof(d)));
			return -EBADMSG;
		}
		ret = connect_to(b, b->fd[i], &r->peer_name, NULL, r, "its outside peer");
		if (ret)
			return ret;
		net_info(b->p, "restore: %s: connected again to its outside peer", desc(r, d, sizeof(d)));
	}
	return 0;
}

static int send_all(struct ubuild *b, int fd, const Usk *r, const ProtobufCBinaryData *data,
		    bool records, const struct sockaddr_un *to, socklen_t tolen)
{
	size_t off = 0;
	char d[200];

	do {
		ssize_t n = sendto(fd, data->data + off, data->len - off, MSG_DONTWAIT | MSG_NOSIGNAL,
				   (const struct sockaddr *)to, to ? tolen : 0);

		if (n < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			net_err(b->p, "restore: %s: cannot queue %zu bytes again: %s%s",
				desc(r, d, sizeof(d)), data->len - off, strerror(e),
				e == EAGAIN ? " (the queue does not fit; see net.unix.max_dgram_qlen)" : "");
			return net_errno(e);
		}
		if (records && (size_t)n != data->len) {
			net_err(b->p, "restore: %s: a %zu-byte message went out as %zd bytes",
				desc(r, d, sizeof(d)), data->len, n);
			return -EIO;
		}
		off += (size_t)n;
	} while (off < data->len);
	return 0;
}

/* A socket to send a datagram from, with the sender's name when possible.
 * *tmp: a socket made here, to be closed (and its file removed) after. */
static int dgram_sender(struct ubuild *b, const Usk *r, const Ckpt__Net__UnixMsg *m, int *tmp)
{
	struct sockaddr_un sa;
	socklen_t alen;
	int fd;

	*tmp = -1;
	if (m->has_sender && m->sender.len) {
		for (size_t i = 0; i < b->n; i++) {
			const Usk *s = b->r[i];

			if (s->type == SOCK_DGRAM && named(s) && !s->accepted && b->fd[i] >= 0 &&
			    s->name.len == m->sender.len &&
			    !memcmp(s->name.data, m->sender.data, s->name.len))
				return b->fd[i];
		}
		/* a sender outside the dump, or closed since: borrow its name */
		fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && make_addr(&m->sender, &sa, &alen) == 0) {
			struct stat st;
			char path[sizeof(sa.sun_path) + 1];
			bool ispath = is_path(&m->sender);

			if (ispath)
				path_of(&m->sender, path, sizeof(path));
			if ((!ispath || (path[0] == '/' && lstat(path, &st) < 0 && errno == ENOENT)) &&
			    bind(fd, (struct sockaddr *)&sa, alen) == 0) {
				sock_grow_buf(fd, 1 << 20, false);
				*tmp = fd;
				return fd;
			}
		}
		if (fd >= 0)
			close(fd);
		{
			char d[200], nm[120];

			net_warn(b->p, "restore: %s: a datagram from %s is queued again from an "
				       "unnamed socket (that name is taken or relative)",
				 desc(r, d, sizeof(d)), name_str(&m->sender, nm, sizeof(nm)));
		}
	}
	if (b->unnamed < 0) {
		b->unnamed = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (b->unnamed < 0)
			return net_errno(errno);
		sock_grow_buf(b->unnamed, 8 << 20, false);
	}
	return b->unnamed;
}

static void drop_sender(const Ckpt__Net__UnixMsg *m, int tmp)
{
	if (tmp < 0)
		return;
	close(tmp);
	if (is_path(&m->sender)) {
		char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];

		path_of(&m->sender, path, sizeof(path));
		unlink(path);
	}
}

/* 4. receive queues */
static int refill(struct ubuild *b, size_t i)
{
	const Usk *r = b->r[i];
	bool records = r->type != SOCK_STREAM;
	size_t total = 0;
	int writer = -1, ret = 0;
	char d[200];

	if (!r->n_rqueue)
		return 0;
	for (size_t j = 0; j < r->n_rqueue; j++)
		total += r->rqueue[j]->data.len;

	if (r->role == CKPT__NET__UNIX_ROLE__UNIX_PEER_CLOSED && r->type != SOCK_DGRAM) {
		writer = b->closers[i];
	} else if (mutual(b, i) || (r->role == CKPT__NET__UNIX_ROLE__UNIX_CONNECTED &&
				    r->type != SOCK_DGRAM)) {
		long k = peer_of(b, i, false);

		if (k < 0)
			return (int)k;
		writer = b->fd[k];
	} else if (r->type != SOCK_DGRAM) {
		net_err(b->p, "restore: %s: %zu queued bytes but no peer to send them; the images are "
			      "damaged",
			desc(r, d, sizeof(d)), total);
		return -EBADMSG;
	}

	if (writer >= 0) {
		sock_grow_buf(writer, total, false);
		for (size_t j = 0; j < r->n_rqueue && !ret; j++)
			ret = send_all(b, writer, r, &r->rqueue[j]->data, records, NULL, 0);
		return ret;
	}

	/* datagrams to a named receiver */
	if (!named(r) || r->accepted) {
		net_err(b->p, "restore: %s: queued datagrams but no name to send them to; the images "
			      "are damaged",
			desc(r, d, sizeof(d)));
		return -EBADMSG;
	}
	for (size_t j = 0; j < r->n_rqueue && !ret; j++) {
		const Ckpt__Net__UnixMsg *m = r->rqueue[j];
		struct sockaddr_un to;
		socklen_t tolen = 0;
		int tmp, fd, entered;

		fd = dgram_sender(b, r, m, &tmp);
		if (fd < 0)
			return fd;
		make_addr(&r->name, &to, &tolen);
		entered = enter_dir(b, r);
		if (entered < 0) {
			drop_sender(m, tmp);
			return entered;
		}
		sock_grow_buf(fd, m->data.len, false);
		ret = send_all(b, fd, r, &m->data, true, &to, tolen);
		leave_dir(b, entered);
		drop_sender(m, tmp);
	}
	return ret;
}

/* 5. one-way dgram connections, dgram sockets whose peer is gone or outside */
static int connect_dgram(struct ubuild *b, size_t i)
{
	const Usk *r = b->r[i];
	char d[200];

	if (r->type != SOCK_DGRAM)
		return 0;
	if (r->role == CKPT__NET__UNIX_ROLE__UNIX_CONNECTED && !mutual(b, i)) {
		long k = peer_of(b, i, false);

		if (k < 0)
			return (int)k;
		if (!named(b->r[k])) {
			net_err(b->p, "restore: %s: its peer has no name to connect to; the images are "
				      "damaged",
				desc(r, d, sizeof(d)));
			return -EBADMSG;
		}
		return connect_to(b, b->fd[i], &b->r[k]->name, b->r[k], r, "its peer");
	}
	if (r->role == CKPT__NET__UNIX_ROLE__UNIX_EXTERNAL)
		return connect_to(b, b->fd[i], &r->peer_name, NULL, r, "its outside peer");
	if (r->role == CKPT__NET__UNIX_ROLE__UNIX_PEER_CLOSED) {
		/* connected to a socket that is gone: connect to a temporary
		 * one, then close it (the next send fails as it would have) */
		struct sockaddr_un sa;
		socklen_t l = sizeof(sa_family_t);
		int t = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		if (t < 0 || bind(t, (struct sockaddr *)&sa, l) < 0 ||
		    getsockname(t, (struct sockaddr *)&sa, (l = sizeof(sa), &l)) < 0 ||
		    connect(b->fd[i], (struct sockaddr *)&sa, l) < 0) {
			int e = errno;

			if (t >= 0)
				close(t);
			net_err(b->p, "restore: %s: cannot connect it to a closed peer again: %s",
				desc(r, d, sizeof(d)), strerror(e));
			return net_errno(e);
		}
		close(t);
	}
	return 0;
}

/* 6. shutdown, options, flags */
static int finish_one(struct ubuild *b, size_t i)
{
	const Usk *r = b->r[i];
	char d[200];
	int how = -1, ret;

	desc(r, d, sizeof(d));
	if (r->has_shutdown && r->role != CKPT__NET__UNIX_ROLE__UNIX_PEER_CLOSED &&
	    r->role != CKPT__NET__UNIX_ROLE__UNIX_LISTEN) {
		unsigned int s = r->shutdown & (UNIX_RCV_SHUTDOWN | UNIX_SEND_SHUTDOWN);

		how = s == (UNIX_RCV_SHUTDOWN | UNIX_SEND_SHUTDOWN) ? SHUT_RDWR :
		      s == UNIX_RCV_SHUTDOWN ? SHUT_RD : s == UNIX_SEND_SHUTDOWN ? SHUT_WR : -1;
	}
	if (how >= 0 && shutdown(b->fd[i], how) < 0 && errno != ENOTCONN) {
		int e = errno;

		net_err(b->p, "restore: %s: cannot shut it down again: %s", d, strerror(e));
		return net_errno(e);
	}
	ret = sockopt_restore(b->p, b->fd[i], r->opts, d);
	if (!ret)
		ret = sock_restore_flags(b->p, b->fd[i], r->flags, d);
	return ret;
}

void unix_restore_cleanup(struct net_priv *p)
{
	size_t n = p->tables[NET_UNIX].n;

	if (p->unix_fds) {
		for (size_t i = 0; i < n; i++)
			if (p->unix_fds[i] >= 0)
				close(p->unix_fds[i]);
	}
	free(p->unix_fds);
	p->unix_fds = NULL;
}

int unix_restore_all(struct net_priv *p)
{
	struct net_table *t = &p->tables[NET_UNIX];
	struct ubuild b = { .p = p, .n = t->n, .cwd = -1, .unnamed = -1 };
	int ret = 0;

	unix_restore_cleanup(p);
	if (!t->n)
		return 0;
	b.r = (Usk **)t->recs;
	b.fd = malloc(b.n * sizeof(*b.fd));
	b.closers = malloc(b.n * sizeof(*b.closers));
	b.by_ino = malloc(b.n * sizeof(*b.by_ino));
	if (!b.fd || !b.closers || !b.by_ino) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < b.n; i++) {
		b.fd[i] = -1;
		b.closers[i] = -1;
		b.by_ino[i] = (struct ino_idx){ b.r[i]->ino, i };
		if (b.r[i]->type != SOCK_STREAM && b.r[i]->type != SOCK_DGRAM &&
		    b.r[i]->type != SOCK_SEQPACKET) {
			net_err(p, "restore: unix socket object %u has type %u; the images are damaged",
				b.r[i]->id, b.r[i]->type);
			ret = -EBADMSG;
			goto out;
		}
	}
	qsort(b.by_ino, b.n, sizeof(*b.by_ino), cmp_ino);
	for (size_t i = 1; i < b.n; i++)
		if (b.by_ino[i].ino == b.by_ino[i - 1].ino) {
			net_err(p, "restore: unix socket %llu appears twice in net-unix.img; the images "
				   "are damaged",
				(unsigned long long)b.by_ino[i].ino);
			ret = -EBADMSG;
			goto out;
		}
	b.cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);

	for (size_t i = 0; i < b.n && !ret; i++)
		if (b.r[i]->role == CKPT__NET__UNIX_ROLE__UNIX_CONNECTED && b.r[i]->accepted &&
		    b.r[i]->type != SOCK_DGRAM && b.fd[i] < 0 && named(b.r[i]))
			ret = build_accepted(&b, i);
	for (size_t i = 0; i < b.n && !ret; i++)
		ret = build_one(&b, i);
	if (!ret)
		ret = connect_pending(&b);
	for (size_t i = 0; i < b.n && !ret; i++)
		ret = refill(&b, i);
	for (size_t i = 0; i < b.n; i++)
		if (b.closers[i] >= 0) {
			close(b.closers[i]);
			b.closers[i] = -1;
		}
	for (size_t i = 0; i < b.n && !ret; i++)
		ret = connect_dgram(&b, i);
	for (size_t i = 0; i < b.n && !ret; i++)
		ret = finish_one(&b, i);
	if (!ret)
		net_debug(p, "restore: %zu unix socket(s) built", b.n);
out:
	if (b.unnamed >= 0)
		close(b.unnamed);
	if (b.cwd >= 0)
		close(b.cwd);
	if (b.closers)
		for (size_t i = 0; i < b.n; i++)
			if (b.closers[i] >= 0)
				close(b.closers[i]);
	free(b.closers);
	free(b.by_ino);
	if (ret) {
		if (b.fd)
			for (size_t i = 0; i < b.n; i++)
				if (b.fd[i] >= 0)
					close(b.fd[i]);
		free(b.fd);
		return net_errno(ret);
	}
	p->unix_fds = b.fd;
	return 0;
}

int unix_restore(struct net_priv *p, uint32_t obj_id, int *fd)
{
	struct net_table *t = &p->tables[NET_UNIX];
	const ProtobufCMessage *rec = net_find_rec(p, NET_UNIX, obj_id);
	size_t i;

	if (!rec) {
		net_err(p, "restore: no unix socket object %u in net-unix.img; the images are "
			   "incomplete",
			obj_id);
		return -EBADMSG;
	}
	for (i = 0; i < t->n; i++)
		if (t->recs[i] == rec)
			break;
	if (!p->unix_fds || i == t->n || p->unix_fds[i] < 0) {
		net_err(p, "restore: unix socket object %u was not built or was handed out already",
			obj_id);
		return -EINVAL;
	}
	*fd = p->unix_fds[i];
	p->unix_fds[i] = -1;
	return 0;
}
