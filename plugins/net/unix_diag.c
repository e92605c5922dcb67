// SPDX-License-Identifier: GPL-2.0-only
/*
 * NETLINK_SOCK_DIAG for unix sockets: the kernel's own view of every unix
 * socket of the network namespace — its peer (by inode), its name, the
 * socket file it is bound to, its queue lengths, its shutdown state and,
 * for a listening socket, the client sockets waiting in its backlog
 * (UNIX_DIAG_ICONS).  The dump loads the whole table once, while the tree
 * is frozen, and looks sockets up by inode.
 */
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

#define DIAG_SHOW                                                                  \
	(UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS |   \
	 UDIAG_SHOW_RQLEN)

struct diag_vec {
	struct unix_diag_ent *v;
	size_t n, cap;
};

static void diag_req(struct unix_diag_req *r, uint64_t ino)
{
	memset(r, 0, sizeof(*r));
	r->sdiag_family = AF_UNIX;
	r->udiag_states = ~0u;
	r->udiag_ino = (uint32_t)ino;
	r->udiag_show = DIAG_SHOW;
	r->udiag_cookie[0] = ~0u;
	r->udiag_cookie[1] = ~0u;
}

static void ent_free(struct unix_diag_ent *e)
{
	free(e->icons);
	e->icons = NULL;
	e->nicons = 0;
}

static int parse_msg(const struct nlmsghdr *h, struct unix_diag_ent *e)
{
	const struct unix_diag_msg *m = NLMSG_DATA(h);
	const struct rtattr *a;
	int len;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return -EBADMSG;
	memset(e, 0, sizeof(*e));
	e->ino = m->udiag_ino;
	e->type = m->udiag_type;
	e->state = m->udiag_state;
	len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (a = (const struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		const void *d = RTA_DATA(a);
		size_t dl = RTA_PAYLOAD(a);

		switch (a->rta_type) {
		case UNIX_DIAG_NAME:
			e->has_name = true;
			e->namelen = dl > sizeof(e->name) ? sizeof(e->name) : dl;
			memcpy(e->name, d, e->namelen);
			break;
		case UNIX_DIAG_VFS:
			if (dl >= sizeof(struct unix_diag_vfs)) {
				struct unix_diag_vfs v;

				memcpy(&v, d, sizeof(v));
				e->has_vfs = true;
				e->vfs_ino = v.udiag_vfs_ino;
				e->vfs_dev = v.udiag_vfs_dev;
			}
			break;
		case UNIX_DIAG_PEER:
			if (dl >= sizeof(uint32_t)) {
				uint32_t v;

				memcpy(&v, d, sizeof(v));
				e->has_peer = true;
				e->peer = v;
			}
			break;
		case UNIX_DIAG_ICONS:
			if (dl >= sizeof(uint32_t)) {
				size_t n = dl / sizeof(uint32_t);

				e->icons = calloc(n, sizeof(*e->icons));
				if (!e->icons)
					return -ENOMEM;
				for (size_t i = 0; i < n; i++) {
					uint32_t v;

					memcpy(&v, (const uint8_t *)d + i * sizeof(v), sizeof(v));
					e->icons[i] = v;
				}
				e->nicons = n;
			}
			break;
		case UNIX_DIAG_RQLEN:
			if (dl >= sizeof(struct unix_diag_rqlen)) {
				struct unix_diag_rqlen r;

				memcpy(&r, d, sizeof(r));
				e->has_rqlen = true;
				e->rqueue = r.udiag_rqueue;
				e->wqueue = r.udiag_wqueue;
			}
			break;
		case UNIX_DIAG_SHUTDOWN:
			if (dl >= 1) {
				e->has_shutdown = true;
				e->shutdown = *(const uint8_t *)d;
			}
			break;
		default:
			break;
		}
	}
	return 0;
}

static int vec_add(struct diag_vec *dv, struct unix_diag_ent *e)
{
	if (dv->n == dv->cap) {
		size_t ncap = dv->cap ? dv->cap * 2 : 256;
		struct unix_diag_ent *n = realloc(dv->v, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		dv->v = n;
		dv->cap = ncap;
	}
	dv->v[dv->n++] = *e;
	return 0;
}

/* One answer: parsed into the table. */
static int diag_cb(const struct nlmsghdr *h, void *arg)
{
	struct diag_vec *dv = arg;
	struct unix_diag_ent e;
	int ret = parse_msg(h, &e);

	if (!ret)
		ret = vec_add(dv, &e);
	if (ret)
		ent_free(&e);
	return ret;
}

static int cmp_ent(const void *a, const void *b)
{
	const struct unix_diag_ent *x = a, *y = b;

	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

int unix_diag_load(struct net_priv *p)
{
	struct diag_vec dv = { 0 };
	struct unix_diag_req req;
	int ret;

	if (p->udiag_loaded)
		return 0;
	diag_req(&req, 0);
	ret = sock_diag_query(&req, sizeof(req), true, diag_cb, &dv);
	if (ret) {
		for (size_t i = 0; i < dv.n; i++)
			ent_free(&dv.v[i]);
		free(dv.v);
		net_err(p, "dump: sock_diag cannot list the unix sockets: %s (is the unix_diag module "
			   "loaded?)",
			strerror(-ret));
		return net_errno(ret);
	}
	qsort(dv.v, dv.n, sizeof(*dv.v), cmp_ent);
	p->udiag = dv.v;
	p->nudiag = dv.n;
	p->udiag_loaded = true;
	net_debug(p, "dump: sock_diag lists %zu unix sockets", dv.n);
	return 0;
}

const struct unix_diag_ent *unix_diag_find(const struct net_priv *p, uint64_t ino)
{
	struct unix_diag_ent key = { .ino = ino };

	if (!p->udiag)
		return NULL;
	return bsearch(&key, p->udiag, p->nudiag, sizeof(key), cmp_ent);
}

void unix_diag_free(struct net_priv *p)
{
	for (size_t i = 0; i < p->nudiag; i++)
		ent_free(&p->udiag[i]);
	free(p->udiag);
	p->udiag = NULL;
	p->nudiag = 0;
	p->udiag_loaded = false;
}

int unix_diag_probe(uint64_t ino)
{
	struct diag_vec dv = { 0 };
	struct unix_diag_req req;
	int ret;

	diag_req(&req, ino);
	ret = sock_diag_query(&req, sizeof(req), false, diag_cb, &dv);
	if (!ret && (dv.n != 1 || dv.v[0].ino != ino))
		ret = -ENOENT;
	for (size_t i = 0; i < dv.n; i++)
		ent_free(&dv.v[i]);
	free(dv.v);
	return ret;
}
