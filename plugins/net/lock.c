// SPDX-License-Identifier: GPL-2.0-only
/*
 * Network lock: while the tree is frozen and until it runs again, packets
 * of its TCP connections are dropped, so the peer retransmits into silence
 * instead of getting a reset from a socket that is gone, and no byte
 * arrives while the queues are read.
 *
 * nftables through libnftables (no nft binary, no shell quoting, errors
 * come back as text we can log):
 *
 *  - tree in ckpt's network namespace: table inet ckpt_lock_ROOTPID_RANDOM holds
 *    the sets conn4/conn6 of (peer, peer port, local, local port); input
 *    drops what comes from such a peer, output what goes to it.  One table
 *    per tree, so unlocking is taking the table away; its name is saved in
 *    net-lock.img for the restore, which locks the same connections again
 *    (on another host nothing is locked yet) and removes the table once the
 *    tree runs.  A failed restore leaves it: the next try needs it.
 *  - tree in a network namespace of its own: table inet ckpt_lock_ns in
 *    that namespace drops everything in and out; it dies with the
 *    namespace when the tree is killed.
 *
 * Every rule runs at priority -300, before conntrack.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <nftables/libnftables.h>

#include "net.h"

#define LOCK_NS_TABLE "ckpt_lock_ns"
#define LOCK_IMG "net-lock.img"

/* Run nft commands in the calling thread's network namespace.  out: when
 * set, the output (malloc'd).  quiet_enoent: a missing object is no error. */
int nft_run(struct net_priv *p, const char *cmd, char **out, bool quiet_enoent)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int ret;

	if (!ctx) {
		net_err(p, "nftables: cannot create a libnftables context");
		return -ENOMEM;
	}
	nft_ctx_buffer_error(ctx);
	if (out)
		nft_ctx_buffer_output(ctx);
	ret = nft_run_cmd_from_buffer(ctx, cmd);
	if (ret) {
		const char *e = nft_ctx_get_error_buffer(ctx);

		if (!(quiet_enoent && e && strstr(e, "No such file or directory")))
			net_err(p, "nftables: '%.*s' failed: %s", (int)strcspn(cmd, "\n"), cmd,
				e && *e ? e : "unknown error");
		ret = -EIO;
	} else if (out) {
		const char *o = nft_ctx_get_output_buffer(ctx);

		*out = strdup(o ? o : "");
		if (!*out)
			ret = -ENOMEM;
	}
	nft_ctx_free(ctx);
	return ret;
}

static int elem_str(const struct lock_conn *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];

	if (!inet_ntop(c->family, c->peer, a, sizeof(a)) ||
	    !inet_ntop(c->family, c->local, b, sizeof(b)))
		return -EINVAL;
	snprintf(buf, len, "%s . %u . %s . %u", a, c->pport, b, c->lport);
	return 0;
}

static int lock_conn_from(struct lock_conn *c, int family, const Ckpt__Net__InetAddr *l,
			  const Ckpt__Net__InetAddr *r)
{
	size_t alen = family == AF_INET ? 4 : 16;

	memset(c, 0, sizeof(*c));
	if (!l || !r || !l->has_addr || !r->has_addr || l->addr.len != alen ||
	    r->addr.len != alen || (family != AF_INET && family != AF_INET6))
		return -EINVAL;
	c->family = family;
	memcpy(c->local, l->addr.data, alen);
	memcpy(c->peer, r->addr.data, alen);
	c->lport = (uint16_t)l->port;
	c->pport = (uint16_t)r->port;
	/* an IPv6 socket talking to an IPv4 peer sends IPv4 packets */
	if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((struct in6_addr *)c->local) &&
	    IN6_IS_ADDR_V4MAPPED((struct in6_addr *)c->peer)) {
		c->family = AF_INET;
		memmove(c->local, c->local + 12, 4);
		memmove(c->peer, c->peer + 12, 4);
		memset(c->local + 4, 0, 12);
		memset(c->peer + 4, 0, 12);
	}
	return 0;
}

/* The table's name goes to net-lock.img, so that the restore (here or on
 * another host) knows which one to take away. */
static int save_lock_name(struct net_priv *p)
{
	Ckpt__Net__NetLock m = CKPT__NET__NET_LOCK__INIT;
	struct ckpt_img *img = p->host->img_create(LOCK_IMG, ckpt__net__net_lock__descriptor.name);
	int ret;

	if (!img) {
		ret = net_errno(errno);
		net_err(p, "cannot create image %s: %s", LOCK_IMG, strerror(errno));
		return ret;
	}
	m.table = p->lock_name;
	ret = p->host->img_write_msg(img, &m.base);
	if (p->host->img_close(img) < 0 && !ret)
		ret = -EIO;
	if (ret)
		net_err(p, "cannot write image %s", LOCK_IMG);
	return ret;
}

/* Drop the packets of one connection from now on: one nft transaction
 * makes the table (when needed) and adds the connection. */
int net_lock_conn(struct net_priv *p, int family, const Ckpt__Net__InetAddr *local,
		  const Ckpt__Net__InetAddr *peer, const char *desc)
{
	struct lock_conn c;
	char el[128], *cmd = NULL;
	const char *t;
	bool first;
	int ret;

	if (p->ns_locked)
		return 0; /* the whole namespace is locked */
	if (lock_conn_from(&c, family, local, peer) || elem_str(&c, el, sizeof(el))) {
		net_err(p, "%s: cannot lock it: no local or peer address", desc);
		return -EINVAL;
	}
	first = !p->lock_name[0];
	if (first) {
		uint32_t rnd = 0;

		/* the root's pid alone may repeat: trees in pid namespaces of
		 * their own share the host's network namespace */
		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			rnd = (uint32_t)time(NULL) ^ (uint32_t)getpid();
		snprintf(p->lock_name, sizeof(p->lock_name), "ckpt_lock_%d_%08x", (int)p->root,
			 rnd);
	}
	t = p->lock_name;
	if (asprintf(&cmd,
		     "add table inet %s\n"
		     "add set inet %s conn4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; }\n"
		     "add set inet %s conn6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; }\n"
		     "add chain inet %s input { type filter hook input priority -300; policy accept; }\n"
		     "add chain inet %s output { type filter hook output priority -300; policy accept; }\n"
		     "flush chain inet %s input\n"
		     "flush chain inet %s output\n"
		     "add rule inet %s input ip saddr . tcp sport . ip daddr . tcp dport @conn4 drop\n"
		     "add rule inet %s input ip6 saddr . tcp sport . ip6 daddr . tcp dport @conn6 drop\n"
		     "add rule inet %s output ip daddr . tcp dport . ip saddr . tcp sport @conn4 drop\n"
		     "add rule inet %s output ip6 daddr . tcp dport . ip6 saddr . tcp sport @conn6 drop\n"
		     "add element inet %s %s { %s }\n",
		     t, t, t, t, t, t, t, t, t, t, t, t, c.family == AF_INET ? "conn4" : "conn6",
		     el) < 0)
		return -ENOMEM;
	ret = nft_run(p, cmd, NULL, false);
	free(cmd);
	if (ret) {
		net_err(p, "%s: cannot lock the connection (nftables table inet %s); is nf_tables "
			   "available?",
			desc, t);
		if (first)
			p->lock_name[0] = '\0';
		return ret;
	}
	p->lock_table = true;
	if (first && !p->restoring) {
		ret = save_lock_name(p);
		if (ret)
			return ret;
		net_info(p, "the tree's TCP connections are locked in nftables table inet %s", t);
	}
	net_debug(p, "%s: locked in table inet %s", desc, t);
	return 0;
}

/* restore_start: the connections of the images stay locked until the tree
 * runs (on another host nothing is locked yet). */
int net_lock_restore(struct net_priv *p)
{
	const struct net_table *t = &p->tables[NET_TCP];
	ProtobufCMessage **recs = NULL;
	size_t n = 0;
	int ret;

	ret = p->host->img_load(LOCK_IMG, &ckpt__net__net_lock__descriptor, &recs, &n);
	if (ret)
		return net_errno(ret);
	if (n) {
		const Ckpt__Net__NetLock *m = (const Ckpt__Net__NetLock *)recs[0];

		if (!m->table || strncmp(m->table, "ckpt_lock_", 10) ||
		    strlen(m->table) >= sizeof(p->lock_name) ||
		    m->table[strspn(m->table, "abcdefghijklmnopqrstuvwxyz_0123456789")]) {
			net_err(p, "restore: %s names no valid lock table; the images are damaged",
				LOCK_IMG);
			ret = -EBADMSG;
		} else {
			snprintf(p->lock_name, sizeof(p->lock_name), "%s", m->table);
		}
	}
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(recs[i], NULL);
	free(recs);
	if (ret || !p->lock_name[0] || p->ns_locked)
		return ret;
	for (size_t i = 0; i < t->n; i++) {
		const Ckpt__Net__TcpSk *r = (const Ckpt__Net__TcpSk *)t->recs[i];
		char desc[64];

		if (!r->conn)
			continue;
		snprintf(desc, sizeof(desc), "restore: TCP socket %u", r->id);
		ret = net_lock_conn(p, (int)r->family, r->local, r->peer, desc);
		if (ret)
			return ret;
	}
	return 0;
}

/* Let the locked connections' packets through again. */
void net_unlock_conns(struct net_priv *p)
{
	char cmd[128];

	if (!p->lock_name[0])
		return;
	snprintf(cmd, sizeof(cmd), "delete table inet %s\n", p->lock_name);
	if (nft_run(p, cmd, NULL, true) == 0)
		net_debug(p, "unlocked: table inet %s removed", p->lock_name);
	p->lock_name[0] = '\0';
	p->lock_table = false;
}

/* Forget the lock without touching it (it stays for the restore). */
void net_lock_forget(struct net_priv *p)
{
	p->lock_name[0] = '\0';
	p->lock_table = false;
}

/* Lock the whole network namespace the calling thread is in. */
int net_lock_ns(struct net_priv *p)
{
	static const char cmd[] =
		"add table inet " LOCK_NS_TABLE "\n"
		"add chain inet " LOCK_NS_TABLE " input { type filter hook input priority -300; policy drop; }\n"
		"add chain inet " LOCK_NS_TABLE " output { type filter hook output priority -300; policy drop; }\n";
	int ret = nft_run(p, cmd, NULL, false);

	if (ret) {
		net_err(p, "cannot lock the network namespace of the tree (nftables table inet "
			   LOCK_NS_TABLE ")");
		return ret;
	}
	p->ns_locked = true;
	return 0;
}

void net_unlock_ns(struct net_priv *p)
{
	if (!p->ns_locked)
		return;
	nft_run(p, "delete table inet " LOCK_NS_TABLE "\n", NULL, true);
	p->ns_locked = false;
}

/* `check`: can nftables be driven here?  0 yes. */
int net_lock_probe(void)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int ret;

	if (!ctx)
		return -ENOMEM;
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	ret = nft_run_cmd_from_buffer(ctx, "list tables\n") ? -EIO : 0;
	nft_ctx_free(ctx);
	return ret;
}
