// SPDX-License-Identifier: GPL-2.0-only
/*
 * The network namespace of a tree that has one of its own (image net-ns.img,
 * one ckpt.net.NetNs record).
 *
 * Dump (tree_frozen): the dumping thread joins the tree's namespace with
 * setns() and stays there until dump_finish, so sock_diag, nftables and
 * /proc/sys/net answer for that namespace.  Links, addresses and routes are
 * read through libnl-route-3, a chosen list of sysctls from /proc/sys/net,
 * the nftables ruleset as `nft list ruleset` text (the form nft(8) reads
 * back); then the whole namespace is locked (lock.c).
 *
 * Restore (restore_start): the controller thread unshares a new network
 * namespace, locks it, recreates the links (same ifindex where the kernel
 * lets us), masters, sysctls, addresses, routes and the ruleset, and stays
 * there until restore_finish: every socket the plugins create and every task
 * the core clones from then on lives in it.  A veth whose peer was outside
 * gets its outside end in ckpt's own namespace under the name given with
 * external_veth=INNER:OUTER.
 */
#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/macvlan.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

#include "net.h"

#define NS_IMG "net-ns.img"

/* Per-netns sysctls below /proc/sys/net worth keeping; "%s" is a device
 * name (all, default and every link). */
static const char *const sysctl_global[] = {
	"ipv4/ip_forward", "ipv4/ip_local_port_range", "ipv4/ip_nonlocal_bind",
	"ipv4/ping_group_range", "ipv4/tcp_syncookies", "ipv4/ip_unprivileged_port_start",
	"core/somaxconn", NULL,
};
static const char *const sysctl_dev[] = {
	"ipv6/conf/%s/disable_ipv6", "ipv4/conf/%s/forwarding", "ipv4/conf/%s/rp_filter",
	"ipv4/conf/%s/accept_redirects", "ipv4/conf/%s/proxy_arp", "ipv6/conf/%s/forwarding",
	NULL,
};

static int ns_same(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_ino == sb.st_ino &&
	       sa.st_dev == sb.st_dev;
}

static int join(struct net_priv *p, int fd, const char *what)
{
	if (setns(fd, CLONE_NEWNET)) {
		int e = errno;

		net_err(p, "cannot enter %s network namespace: %s", what, strerror(e));
		return net_errno(e);
	}
	return 0;
}

/* Back to ckpt's own namespace (every path out of dump and restore). */
void netns_leave(struct net_priv *p)
{
	if (p->home_netns >= 0) {
		if (p->in_tree_netns && setns(p->home_netns, CLONE_NEWNET))
			net_err(p, "cannot return to ckpt's network namespace: %s", strerror(errno));
		close(p->home_netns);
	}
	if (p->tree_netns >= 0)
		close(p->tree_netns);
	p->home_netns = p->tree_netns = -1;
	p->in_tree_netns = false;
	p->ns_locked = false;
}

static struct nl_sock *rtnl_open(struct net_priv *p)
{
	struct nl_sock *sk = nl_socket_alloc();
	int e;

	if (!sk) {
		net_err(p, "netns: out of memory");
		return NULL;
	}
	e = nl_connect(sk, NETLINK_ROUTE);
	if (e < 0) {
		net_err(p, "netns: cannot open a route netlink socket: %s", nl_geterror(e));
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

static int set_bytes(ProtobufCBinaryData *b, protobuf_c_boolean *has, struct nl_addr *a)
{
	if (!a || !nl_addr_get_len(a))
		return 0;
	b->len = nl_addr_get_len(a);
	b->data = malloc(b->len);
	if (!b->data)
		return -ENOMEM;
	memcpy(b->data, nl_addr_get_binary_addr(a), b->len);
	*has = true;
	return 0;
}

static char *read_sysctl(const char *name)
{
	char path[256], buf[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/net/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return NULL;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	return strdup(buf);
}

/* ---- dump ---------------------------------------------------------------- */

struct ns_dump {
	Ckpt__Net__NetNs ns;
	char **names; /* link names for the per-device sysctls */
	size_t nnames;
};

static void ns_dump_free(struct ns_dump *d)
{
	Ckpt__Net__NetNs *ns = &d->ns;

	for (size_t i = 0; i < ns->n_links; i++) {
		free(ns->links[i]->name);
		free(ns->links[i]->kind);
		free(ns->links[i]->mac.data);
		free(ns->links[i]);
	}
	for (size_t i = 0; i < ns->n_addrs; i++) {
		free(ns->addrs[i]->local.data);
		free(ns->addrs[i]->peer.data);
		free(ns->addrs[i]->broadcast.data);
		free(ns->addrs[i]->label);
		free(ns->addrs[i]);
	}
	for (size_t i = 0; i < ns->n_routes; i++) {
		free(ns->routes[i]->dst.data);
		free(ns->routes[i]->gateway.data);
		free(ns->routes[i]->prefsrc.data);
		free(ns->routes[i]);
	}
	for (size_t i = 0; i < ns->n_sysctls; i++) {
		free(ns->sysctls[i]->name);
		free(ns->sysctls[i]->value);
		free(ns->sysctls[i]);
	}
	free(ns->links);
	free(ns->addrs);
	free(ns->routes);
	free(ns->sysctls);
	free(ns->nft_ruleset);
	free(d->names);
}

#define PUSH(arr, n, x)                                                    \
	({                                                                 \
		void *_t = realloc((arr), ((n) + 1) * sizeof(*(arr)));     \
		int _r = -ENOMEM;                                          \
		if (_t) {                                                  \
			(arr) = _t;                                        \
			(arr)[(n)++] = (x);                                \
			_r = 0;                                            \
		}                                                          \
		_r;                                                        \
	})

/* The tunnel devices the kernel puts in every new namespace once their
 * module is loaded: they come back by themselves. */
static bool fallback_tunnel(const char *kind, const char *name)
{
	static const char *const fb[][2] = {
		{ "ipip", "tunl0" },       { "sit", "sit0" },          { "ip6tnl", "ip6tnl0" },
		{ "gre", "gre0" },         { "gretap", "gretap0" },    { "erspan", "erspan0" },
		{ "ip6gre", "ip6gre0" },   { "ip6gretap", "ip6gretap0" }, { "ip6erspan", "ip6erspan0" },
		{ "vti", "ip_vti0" },      { "vti6", "ip6_vti0" },
	};

	for (size_t i = 0; kind && name && i < sizeof(fb) / sizeof(fb[0]); i++)
		if (!strcmp(kind, fb[i][0]) && !strcmp(name, fb[i][1]))
			return true;
	return false;
}

static int dump_links(struct net_priv *p, struct nl_sock *sk, struct ns_dump *d)
{
	struct nl_cache *cache;
	int ret = 0, e;

	e = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
	if (e < 0) {
		net_err(p, "netns: cannot list the links: %s", nl_geterror(e));
		return -EIO;
	}
	for (struct nl_object *o = nl_cache_get_first(cache); o && !ret; o = nl_cache_get_next(o)) {
		struct rtnl_link *l = (struct rtnl_link *)o;
		Ckpt__Net__NetLink *m = calloc(1, sizeof(*m));
		const char *kind = rtnl_link_get_type(l), *name = rtnl_link_get_name(l);
		unsigned int flags = rtnl_link_get_flags(l);
		int32_t nsid;

		if (!m)
			return -ENOMEM;
		ckpt__net__net_link__init(m);
		if (fallback_tunnel(kind, name)) {
			free(m);
			continue;
		}
		if (flags & IFF_LOOPBACK)
			kind = "loopback";
		if (!kind) {
			net_err(p, "netns: link %s has no kind the kernel tells; only loopback, veth, "
				   "dummy, bridge and macvlan links can be dumped",
				name);
			free(m);
			ret = -EOPNOTSUPP;
			break;
		}
		if (strcmp(kind, "loopback") && strcmp(kind, "veth") && strcmp(kind, "dummy") &&
		    strcmp(kind, "bridge") && strcmp(kind, "macvlan")) {
			net_err(p, "netns: link %s is a %s device; only loopback, veth, dummy, bridge "
				   "and macvlan links can be dumped, remove it before the dump",
				name, kind);
			free(m);
			ret = -EOPNOTSUPP;
			break;
		}
		m->has_ifindex = m->has_mtu = m->has_up = m->has_txqlen = true;
		m->ifindex = (uint32_t)rtnl_link_get_ifindex(l);
		m->mtu = rtnl_link_get_mtu(l);
		m->up = !!(flags & IFF_UP);
		m->txqlen = rtnl_link_get_txqlen(l);
		m->name = strdup(name);
		m->kind = strdup(kind);
		if (rtnl_link_get_master(l) > 0) {
			m->has_master = true;
			m->master = (uint32_t)rtnl_link_get_master(l);
		}
		if (!strcmp(kind, "veth")) {
			if (rtnl_link_get_link_netnsid(l, &nsid) == 0) {
				m->has_peer_outside = m->peer_outside = true;
			} else if (rtnl_link_get_link(l) > 0) {
				m->has_link = true;
				m->link = (uint32_t)rtnl_link_get_link(l);
			}
		}
		if (!strcmp(kind, "macvlan")) {
			if (rtnl_link_get_link_netnsid(l, &nsid) == 0 || rtnl_link_get_link(l) <= 0) {
				net_err(p, "netns: macvlan %s sits on a device outside the tree's network "
					   "namespace; that is not supported, only macvlans on links of "
					   "the namespace",
					name);
				ret = -EOPNOTSUPP;
			}
			m->has_link = m->has_macvlan_mode = true;
			m->link = (uint32_t)rtnl_link_get_link(l);
			m->macvlan_mode = rtnl_link_macvlan_get_mode(l);
		}
		if (!ret && strcmp(kind, "loopback"))
			ret = set_bytes(&m->mac, &m->has_mac, rtnl_link_get_addr(l));
		if (!ret && (!m->name || !m->kind))
			ret = -ENOMEM;
		if (!ret && (ret = PUSH(d->ns.links, d->ns.n_links, m)) == 0)
			ret = PUSH(d->names, d->nnames, m->name);
		if (ret && (!d->ns.n_links || d->ns.links[d->ns.n_links - 1] != m)) {
			free(m->name);
			free(m->kind);
			free(m->mac.data);
			free(m);
		}
	}
	nl_cache_free(cache);
	return ret;
}

static bool ipv6_linklocal(struct nl_addr *a)
{
	const uint8_t *b = nl_addr_get_binary_addr(a);

	return nl_addr_get_family(a) == AF_INET6 && nl_addr_get_len(a) == 16 && b[0] == 0xfe &&
	       (b[1] & 0xc0) == 0x80;
}

static int dump_addrs(struct net_priv *p, struct nl_sock *sk, struct ns_dump *d)
{
	struct nl_cache *cache;
	int ret = 0, e;

	e = rtnl_addr_alloc_cache(sk, &cache);
	if (e < 0) {
		net_err(p, "netns: cannot list the addresses: %s", nl_geterror(e));
		return -EIO;
	}
	for (struct nl_object *o = nl_cache_get_first(cache); o && !ret; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		struct nl_addr *local = rtnl_addr_get_local(a), *peer = rtnl_addr_get_peer(a);
		Ckpt__Net__NetAddr *m;

		if (!local || ipv6_linklocal(local))
			continue; /* the kernel makes those itself */
		m = calloc(1, sizeof(*m));
		if (!m)
			return -ENOMEM;
		ckpt__net__net_addr__init(m);
		m->has_ifindex = m->has_family = m->has_prefixlen = m->has_scope = m->has_flags = true;
		m->ifindex = (uint32_t)rtnl_addr_get_ifindex(a);
		m->family = (uint32_t)rtnl_addr_get_family(a);
		m->prefixlen = (uint32_t)rtnl_addr_get_prefixlen(a);
		m->scope = (uint32_t)rtnl_addr_get_scope(a);
		m->flags = rtnl_addr_get_flags(a);
		ret = set_bytes(&m->local, &m->has_local, local);
		if (!ret && peer && nl_addr_cmp(peer, local))
			ret = set_bytes(&m->peer, &m->has_peer, peer);
		if (!ret)
			ret = set_bytes(&m->broadcast, &m->has_broadcast, rtnl_addr_get_broadcast(a));
		if (!ret && rtnl_addr_get_label(a) && !(m->label = strdup(rtnl_addr_get_label(a))))
			ret = -ENOMEM;
		if (!ret)
			ret = PUSH(d->ns.addrs, d->ns.n_addrs, m);
		if (ret) {
			free(m->local.data);
			free(m->peer.data);
			free(m->broadcast.data);
			free(m->label);
			free(m);
		}
	}
	nl_cache_free(cache);
	return ret;
}

static int dump_routes(struct net_priv *p, struct nl_sock *sk, struct ns_dump *d)
{
	struct nl_cache *cache;
	int ret = 0, e;

	e = rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &cache);
	if (e < 0) {
		net_err(p, "netns: cannot list the routes: %s", nl_geterror(e));
		return -EIO;
	}
	for (struct nl_object *o = nl_cache_get_first(cache); o && !ret; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(r);
		struct rtnl_nexthop *nh;
		Ckpt__Net__NetRoute *m;
		char buf[128];

		/* the kernel's own: local table, and what it adds with an address */
		if (rtnl_route_get_table(r) == RT_TABLE_LOCAL ||
		    rtnl_route_get_protocol(r) == RTPROT_KERNEL ||
		    (rtnl_route_get_family(r) != AF_INET && rtnl_route_get_family(r) != AF_INET6))
			continue;
		if (rtnl_route_get_nnexthops(r) > 1) {
			net_err(p, "netns: route %s has several next hops; multipath routes are not "
				   "supported yet",
				dst ? nl_addr2str(dst, buf, sizeof(buf)) : "default");
			ret = -EOPNOTSUPP;
			break;
		}
		m = calloc(1, sizeof(*m));
		if (!m)
			return -ENOMEM;
		ckpt__net__net_route__init(m);
		m->has_family = m->has_table = m->has_dst_len = m->has_scope = m->has_protocol = true;
		m->has_type = m->has_priority = true;
		m->family = (uint32_t)rtnl_route_get_family(r);
		m->table = rtnl_route_get_table(r);
		m->dst_len = dst ? nl_addr_get_prefixlen(dst) : 0;
		m->scope = rtnl_route_get_scope(r);
		m->protocol = rtnl_route_get_protocol(r);
		m->type = rtnl_route_get_type(r);
		m->priority = rtnl_route_get_priority(r);
		if (dst && m->dst_len)
			ret = set_bytes(&m->dst, &m->has_dst, dst);
		if (!ret)
			ret = set_bytes(&m->prefsrc, &m->has_prefsrc, rtnl_route_get_pref_src(r));
		nh = rtnl_route_get_nnexthops(r) ? rtnl_route_nexthop_n(r, 0) : NULL;
		if (!ret && nh) {
			m->has_oif = rtnl_route_nh_get_ifindex(nh) > 0;
			m->oif = (uint32_t)rtnl_route_nh_get_ifindex(nh);
			ret = set_bytes(&m->gateway, &m->has_gateway, rtnl_route_nh_get_gateway(nh));
		}
		if (!ret)
			ret = PUSH(d->ns.routes, d->ns.n_routes, m);
		if (ret) {
			free(m->dst.data);
			free(m->gateway.data);
			free(m->prefsrc.data);
			free(m);
		}
	}
	nl_cache_free(cache);
	return ret;
}

static int add_sysctl(struct ns_dump *d, const char *name)
{
	Ckpt__Net__Sysctl *m;
	char *v = read_sysctl(name);
	int ret;

	if (!v)
		return 0; /* not on this kernel, or ipv6 is off */
	m = calloc(1, sizeof(*m));
	if (!m) {
		free(v);
		return -ENOMEM;
	}
	ckpt__net__sysctl__init(m);
	m->name = strdup(name);
	m->value = v;
	ret = m->name ? PUSH(d->ns.sysctls, d->ns.n_sysctls, m) : -ENOMEM;
	if (ret) {
		free(m->name);
		free(m->value);
		free(m);
	}
	return ret;
}

static int dump_sysctls(struct ns_dump *d)
{
	static const char *const fixed[] = { "all", "default" };
	char name[128];
	int ret = 0;

	for (size_t i = 0; !ret && sysctl_global[i]; i++)
		ret = add_sysctl(d, sysctl_global[i]);
	for (size_t k = 0; !ret && k < 2 + d->nnames; k++) {
		const char *dev = k < 2 ? fixed[k] : d->names[k - 2];

		for (size_t i = 0; !ret && sysctl_dev[i]; i++) {
			snprintf(name, sizeof(name), sysctl_dev[i], dev);
			ret = add_sysctl(d, name);
		}
	}
	return ret;
}

/* tree_frozen: does the tree have a namespace of its own?  Then join it,
 * save it and lock it. */
int netns_dump(struct net_priv *p, pid_t root)
{
	struct ns_dump d = { .ns = CKPT__NET__NET_NS__INIT };
	struct nl_sock *sk = NULL;
	struct ckpt_img *img;
	char path[64];
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)root);
	p->tree_netns = open(path, O_RDONLY | O_CLOEXEC);
	p->home_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (p->tree_netns < 0 || p->home_netns < 0) {
		ret = net_errno(errno);
		net_err(p, "netns: cannot open the network namespace of PID %d or ckpt's: %s",
			(int)root, strerror(errno));
		goto fail;
	}
	if (ns_same(p->tree_netns, p->home_netns)) {
		netns_leave(p);
		return 0;
	}
	ret = join(p, p->tree_netns, "the tree's");
	if (ret)
		goto fail;
	p->in_tree_netns = true;

	ret = -EIO;
	sk = rtnl_open(p);
	if (!sk)
		goto fail;
	ret = dump_links(p, sk, &d);
	if (!ret)
		ret = dump_addrs(p, sk, &d);
	if (!ret)
		ret = dump_routes(p, sk, &d);
	if (!ret)
		ret = dump_sysctls(&d);
	if (ret) {
		if (ret == -ENOMEM)
			net_err(p, "netns: out of memory");
		goto fail;
	}
	/* before the lock goes in: the tree's own rules only */
	ret = nft_run(p, "list ruleset\n", &d.ns.nft_ruleset, false);
	if (ret) {
		net_err(p, "netns: cannot read the nftables ruleset of the tree's network namespace");
		goto fail;
	}
	ret = net_lock_ns(p);
	if (ret)
		goto fail;

	img = p->host->img_create(NS_IMG, ckpt__net__net_ns__descriptor.name);
	if (!img) {
		ret = net_errno(errno);
		net_err(p, "netns: cannot create image %s: %s", NS_IMG, strerror(errno));
		goto fail;
	}
	ret = p->host->img_write_msg(img, &d.ns.base);
	if (p->host->img_close(img) < 0 && !ret)
		ret = -EIO;
	if (ret) {
		net_err(p, "netns: cannot write image %s", NS_IMG);
		goto fail;
	}
	net_info(p, "network namespace of PID %d: %zu link(s), %zu address(es), %zu route(s), "
		    "%zu sysctl(s), %zu bytes of nftables rules; locked",
		 (int)root, d.ns.n_links, d.ns.n_addrs, d.ns.n_routes, d.ns.n_sysctls,
		 strlen(d.ns.nft_ruleset));
	nl_socket_free(sk);
	ns_dump_free(&d);
	return 0;
fail:
	if (sk)
		nl_socket_free(sk);
	ns_dump_free(&d);
	net_unlock_ns(p);
	netns_leave(p);
	return ret;
}

/* dump_finish: the namespace runs on (failed dump, -R): unlock it.  When
 * the tree is killed next, go home but keep the namespace at hand until
 * dump_released: the dump may still fail (inventory). */
void netns_dump_finish(struct net_priv *p, int ok)
{
	if (ok != 1) {
		net_unlock_ns(p);
		netns_leave(p);
		return;
	}
	if (p->in_tree_netns && p->home_netns >= 0) {
		if (setns(p->home_netns, CLONE_NEWNET))
			net_err(p, "cannot return to ckpt's network namespace: %s", strerror(errno));
		else
			p->in_tree_netns = false;
	}
}

/* The tree was killed: take every link of its namespace down before the
 * namespace dies.  Its teardown drops the lock table before it unregisters
 * the devices, and a peer's segment arriving in between would be answered
 * with a reset (seen on a quiet machine); a link that is down passes
 * nothing. */
static void links_down(struct net_priv *p)
{
	struct nl_sock *sk = rtnl_open(p);
	struct nl_cache *cache = NULL;

	if (!sk)
		return;
	if (rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache) == 0) {
		for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
			struct rtnl_link *l = (struct rtnl_link *)o, *c;

			if ((rtnl_link_get_flags(l) & (IFF_UP | IFF_LOOPBACK)) != IFF_UP)
				continue;
			c = rtnl_link_alloc();
			if (!c)
				break;
			rtnl_link_unset_flags(c, IFF_UP);
			if (rtnl_link_change(sk, l, c, 0) < 0)
				net_warn(p, "cannot take link %s of the dumped namespace down",
					 rtnl_link_get_name(l));
			rtnl_link_put(c);
		}
		nl_cache_free(cache);
	}
	nl_socket_free(sk);
}

/* dump_released: the dump failed after all, the tree runs on: unlock; or
 * the tree was killed: its links go down. */
void netns_dump_released(struct net_priv *p, int ok)
{
	if (ok == 1 && p->ns_locked && p->tree_netns >= 0 && !p->in_tree_netns &&
	    join(p, p->tree_netns, "the tree's") == 0) {
		p->in_tree_netns = true;
		links_down(p);
	}
	if (!ok && p->ns_locked && p->tree_netns >= 0 && !p->in_tree_netns &&
	    join(p, p->tree_netns, "the tree's") == 0) {
		p->in_tree_netns = true;
		net_unlock_ns(p);
	}
	netns_leave(p);
}

/* ---- restore --------------------------------------------------------------- */

/* The outside name the user gave for a veth of the namespace, or NULL. */
static const char *external_veth(struct net_priv *p, const char *inner, char *buf, size_t len)
{
	const char *v = p->host->config_get ? p->host->config_get(NET_NAME, "external_veth") : NULL;
	size_t il = strlen(inner);

	while (v && *v) {
		size_t n = strcspn(v, ",");

		if (n > il + 1 && !strncmp(v, inner, il) && v[il] == ':') {
			snprintf(buf, len, "%.*s", (int)(n - il - 1), v + il + 1);
			return buf;
		}
		v += n;
		if (*v)
			v++;
	}
	return NULL;
}

static int new_ifindex(const Ckpt__Net__NetNs *ns, const int *map, uint32_t old)
{
	for (size_t i = 0; i < ns->n_links; i++)
		if (ns->links[i]->ifindex == old)
			return map[i];
	return 0;
}

static int create_link(struct net_priv *p, struct nl_sock *sk, const Ckpt__Net__NetNs *ns,
		       size_t i, int *map, bool *made)
{
	const Ckpt__Net__NetLink *m = ns->links[i];
	struct rtnl_link *l = NULL, *peer = NULL;
	char outer[IFNAMSIZ + 1];
	int e;

	if (!strcmp(m->kind, "loopback"))
		return 0;
	if (made[i])
		return 0; /* the other end of an inside veth pair */
	if (!strcmp(m->kind, "veth")) {
		l = rtnl_link_veth_alloc();
		if (!l)
			return -ENOMEM;
		peer = rtnl_link_veth_get_peer(l);
		if (m->peer_outside) {
			if (!external_veth(p, m->name, outer, sizeof(outer))) {
				net_err(p, "restore: veth %s of the tree's network namespace had its peer "
					   "outside; name the outside end with --external veth[%s]:NAME "
					   "(config key external_veth=%s:NAME)",
					m->name, m->name, m->name);
				rtnl_link_put(peer);
				rtnl_link_veth_release(l);
				return -ENOENT;
			}
			rtnl_link_set_name(peer, outer);
			rtnl_link_set_ns_fd(peer, p->home_netns);
		} else {
			for (size_t k = 0; k < ns->n_links; k++) {
				const Ckpt__Net__NetLink *o = ns->links[k];

				if (k != i && m->has_link && o->ifindex == m->link) {
					rtnl_link_set_name(peer, o->name);
					rtnl_link_set_ifindex(peer, (int)o->ifindex);
					struct nl_addr *a = o->has_mac ? nl_addr_build(AF_LLC, o->mac.data, o->mac.len) : NULL;

					if (a) {
						rtnl_link_set_addr(peer, a);
						nl_addr_put(a);
					}
					made[k] = true;
				}
			}
		}
		rtnl_link_put(peer);
	} else if (!strcmp(m->kind, "macvlan")) {
		l = rtnl_link_macvlan_alloc();
		if (!l)
			return -ENOMEM;
		rtnl_link_set_link(l, new_ifindex(ns, map, m->link));
		rtnl_link_macvlan_set_mode(l, m->macvlan_mode);
	} else {
		l = rtnl_link_alloc();
		if (!l)
			return -ENOMEM;
		rtnl_link_set_type(l, m->kind);
	}
	rtnl_link_set_name(l, m->name);
	rtnl_link_set_ifindex(l, (int)m->ifindex);
	if (m->has_mtu)
		rtnl_link_set_mtu(l, m->mtu);
	if (m->has_txqlen)
		rtnl_link_set_txqlen(l, m->txqlen);
	if (m->has_mac) {
		struct nl_addr *a = nl_addr_build(AF_LLC, m->mac.data, m->mac.len);

		if (a) {
			rtnl_link_set_addr(l, a);
			nl_addr_put(a);
		}
	}
	e = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
	if (e == -NLE_BUSY || e == -NLE_EXIST) {
		/* that ifindex is taken here: let the kernel pick one */
		rtnl_link_set_ifindex(l, 0);
		e = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
	}
	if (!strcmp(m->kind, "veth"))
		rtnl_link_veth_release(l);
	else
		rtnl_link_put(l);
	if (e < 0) {
		net_err(p, "restore: cannot create %s link %s%s%s: %s", m->kind, m->name,
			m->peer_outside ? " with its outside end " : "",
			m->peer_outside ? outer : "", nl_geterror(e));
		return -EIO;
	}
	made[i] = true;
	return 0;
}

/* Where the kernel put the links made so far (loopback is always there). */
static int lookup_ifindices(struct net_priv *p, struct nl_sock *sk, const Ckpt__Net__NetNs *ns,
			    int *map, const bool *made)
{
	struct nl_cache *cache;
	int e = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);

	if (e < 0) {
		net_err(p, "restore: cannot list the new links: %s", nl_geterror(e));
		return -EIO;
	}
	for (size_t i = 0; i < ns->n_links; i++) {
		if (!made[i] && strcmp(ns->links[i]->kind, "loopback"))
			continue;
		map[i] = rtnl_link_name2i(cache, ns->links[i]->name);
		if (map[i] <= 0) {
			net_err(p, "restore: link %s is missing after it was created",
				ns->links[i]->name);
			nl_cache_free(cache);
			return -EIO;
		}
	}
	nl_cache_free(cache);
	return 0;
}

static int set_up(struct net_priv *p, const char *name)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret = 0;

	if (s < 0)
		return net_errno(errno);
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) < 0)) {
		ret = net_errno(errno);
		net_err(p, "restore: cannot bring link %s up: %s", name, strerror(errno));
	}
	close(s);
	return ret;
}

static int write_sysctl(struct net_priv *p, const Ckpt__Net__Sysctl *s)
{
	char path[256], *cur;
	int fd, ret = 0;
	size_t n;

	if (!s->name || !s->value || strstr(s->name, ".."))
		return -EBADMSG;
	cur = read_sysctl(s->name);
	if (cur && !strcmp(cur, s->value)) {
		free(cur);
		return 0;
	}
	free(cur);
	snprintf(path, sizeof(path), "/proc/sys/net/%s", s->name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	n = strlen(s->value);
	if (fd < 0 || write(fd, s->value, n) != (ssize_t)n) {
		ret = net_errno(errno);
		net_err(p, "restore: cannot set sysctl net.%s to '%s': %s", s->name, s->value,
			strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

static struct nl_addr *addr_of(const ProtobufCBinaryData *b, int family)
{
	return nl_addr_build(family, b->data, b->len);
}

static int restore_addr(struct net_priv *p, struct nl_sock *sk, const Ckpt__Net__NetNs *ns,
			const int *map, const Ckpt__Net__NetAddr *m)
{
	struct rtnl_addr *a = rtnl_addr_alloc();
	struct nl_addr *x;
	char buf[128] = "?";
	int e;

	if (!a)
		return -ENOMEM;
	rtnl_addr_set_ifindex(a, new_ifindex(ns, map, m->ifindex));
	rtnl_addr_set_family(a, (int)m->family);
	x = addr_of(&m->local, (int)m->family);
	if (x) {
		nl_addr2str(x, buf, sizeof(buf));
		rtnl_addr_set_local(a, x);
		nl_addr_put(x);
	}
	if (m->has_peer && (x = addr_of(&m->peer, (int)m->family))) {
		rtnl_addr_set_peer(a, x);
		nl_addr_put(x);
	}
	if (m->has_broadcast && (x = addr_of(&m->broadcast, (int)m->family))) {
		rtnl_addr_set_broadcast(a, x);
		nl_addr_put(x);
	}
	rtnl_addr_set_prefixlen(a, (int)m->prefixlen);
	rtnl_addr_set_scope(a, (int)m->scope);
	rtnl_addr_set_flags(a, m->flags & (IFA_F_NODAD | IFA_F_NOPREFIXROUTE | IFA_F_HOMEADDRESS |
					   IFA_F_MANAGETEMPADDR));
	if (m->label)
		rtnl_addr_set_label(a, m->label);
	e = rtnl_addr_add(sk, a, 0);
	rtnl_addr_put(a);
	if (e < 0 && e != -NLE_EXIST) {
		net_err(p, "restore: cannot add address %s/%u: %s", buf, m->prefixlen, nl_geterror(e));
		return -EIO;
	}
	return 0;
}

static int restore_route(struct net_priv *p, struct nl_sock *sk, const Ckpt__Net__NetNs *ns,
			 const int *map, const Ckpt__Net__NetRoute *m)
{
	struct rtnl_route *r = rtnl_route_alloc();
	struct rtnl_nexthop *nh = NULL;
	struct nl_addr *x;
	char buf[128] = "default";
	int e, fam = (int)m->family;

	if (!r)
		return -ENOMEM;
	rtnl_route_set_family(r, (uint8_t)fam);
	rtnl_route_set_table(r, m->table);
	if (m->has_dst)
		x = addr_of(&m->dst, fam);
	else
		x = nl_addr_build(fam, NULL, 0);
	if (x) {
		nl_addr_set_prefixlen(x, (int)m->dst_len);
		if (m->has_dst)
			nl_addr2str(x, buf, sizeof(buf));
		rtnl_route_set_dst(r, x);
		nl_addr_put(x);
	}
	rtnl_route_set_scope(r, (uint8_t)m->scope);
	rtnl_route_set_protocol(r, (uint8_t)m->protocol);
	rtnl_route_set_type(r, (uint8_t)m->type);
	rtnl_route_set_priority(r, m->priority);
	if (m->has_prefsrc && (x = addr_of(&m->prefsrc, fam))) {
		rtnl_route_set_pref_src(r, x);
		nl_addr_put(x);
	}
	if (m->has_oif || m->has_gateway) {
		nh = rtnl_route_nh_alloc();
		if (!nh) {
			rtnl_route_put(r);
			return -ENOMEM;
		}
		if (m->has_oif)
			rtnl_route_nh_set_ifindex(nh, new_ifindex(ns, map, m->oif));
		if (m->has_gateway && (x = addr_of(&m->gateway, fam))) {
			rtnl_route_nh_set_gateway(nh, x);
			nl_addr_put(x);
		}
		rtnl_route_add_nexthop(r, nh);
	}
	e = rtnl_route_add(sk, r, NLM_F_CREATE);
	rtnl_route_put(r);
	if (e < 0 && e != -NLE_EXIST) {
		net_err(p, "restore: cannot add route %s: %s", buf, nl_geterror(e));
		return -EIO;
	}
	return 0;
}

static int restore_ns(struct net_priv *p, const Ckpt__Net__NetNs *ns)
{
	struct nl_sock *sk = rtnl_open(p);
	int *map = calloc(ns->n_links + 1, sizeof(*map));
	bool *made = calloc(ns->n_links + 1, sizeof(*made));
	int ret = 0;

	if (!sk || !map || !made) {
		ret = sk ? -ENOMEM : -EIO;
		goto out;
	}
	for (size_t i = 0; !ret && i < ns->n_links; i++) {
		if (!ns->links[i]->name || !ns->links[i]->kind) {
			net_err(p, "restore: %s: a link without name or kind; the images are damaged",
				NS_IMG);
			ret = -EBADMSG;
			break;
		}
		/* macvlans after the links they sit on */
		if (strcmp(ns->links[i]->kind, "macvlan"))
			ret = create_link(p, sk, ns, i, map, made);
	}
	if (!ret)
		ret = lookup_ifindices(p, sk, ns, map, made);
	for (size_t i = 0; !ret && i < ns->n_links; i++)
		if (!strcmp(ns->links[i]->kind, "macvlan"))
			ret = create_link(p, sk, ns, i, map, made);
	if (!ret)
		ret = lookup_ifindices(p, sk, ns, map, made);
	for (size_t i = 0; !ret && i < ns->n_links; i++) {
		const Ckpt__Net__NetLink *m = ns->links[i];
		int e;

		if (!m->has_master)
			continue;
		e = rtnl_link_enslave_ifindex(sk, new_ifindex(ns, map, m->master), map[i]);
		if (e < 0) {
			net_err(p, "restore: cannot attach link %s to its master: %s", m->name,
				nl_geterror(e));
			ret = -EIO;
		}
	}
	/* before addresses: disable_ipv6 and forwarding change what an address does */
	for (size_t i = 0; !ret && i < ns->n_sysctls; i++)
		ret = write_sysctl(p, ns->sysctls[i]);
	for (size_t i = 0; !ret && i < ns->n_links; i++)
		if (ns->links[i]->up)
			ret = set_up(p, ns->links[i]->name);
	for (size_t i = 0; !ret && i < ns->n_addrs; i++)
		ret = restore_addr(p, sk, ns, map, ns->addrs[i]);
	/* routes through a gateway need the route to it first: two rounds */
	for (int round = 0; !ret && round < 2; round++) {
		for (size_t i = 0; !ret && i < ns->n_routes; i++) {
			bool gw = ns->routes[i]->has_gateway;

			if ((round == 0) != gw)
				ret = restore_route(p, sk, ns, map, ns->routes[i]);
		}
	}
	if (!ret && ns->nft_ruleset && ns->nft_ruleset[0]) {
		ret = nft_run(p, ns->nft_ruleset, NULL, false);
		if (ret)
			net_err(p, "restore: cannot load the nftables ruleset of the tree's network "
				   "namespace");
	}
	if (ret == -ENOMEM)
		net_err(p, "restore: out of memory");
out:
	if (sk)
		nl_socket_free(sk);
	free(map);
	free(made);
	return ret;
}

/* restore_start: when the images hold a namespace, make it and move in. */
int netns_restore(struct net_priv *p)
{
	ProtobufCMessage **recs = NULL;
	size_t n = 0;
	int ret;

	ret = p->host->img_load(NS_IMG, &ckpt__net__net_ns__descriptor, &recs, &n);
	if (ret)
		return net_errno(ret);
	if (!n)
		return 0;
	if (n != 1) {
		net_err(p, "restore: %s holds %zu namespaces; the images are damaged", NS_IMG, n);
		ret = -EBADMSG;
		goto out;
	}
	p->home_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (p->home_netns < 0) {
		ret = net_errno(errno);
		net_err(p, "restore: cannot open ckpt's network namespace: %s", strerror(errno));
		goto out;
	}
	if (unshare(CLONE_NEWNET)) {
		ret = net_errno(errno);
		net_err(p, "restore: cannot create a network namespace: %s", strerror(errno));
		goto fail;
	}
	p->in_tree_netns = true;
	p->tree_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	ret = net_lock_ns(p);
	if (!ret)
		ret = restore_ns(p, (const Ckpt__Net__NetNs *)recs[0]);
	if (ret)
		goto fail;
	net_info(p, "restore: network namespace recreated and locked");
	goto out;
fail:
	netns_leave(p);
out:
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(recs[i], NULL);
	free(recs);
	return ret;
}

/* CLAIM dump_namespace: the tree's network namespace is saved by netns_dump
 * (tree_frozen). */
int netns_dump_namespace(struct net_priv *p, pid_t root, const char *kind)
{
	(void)p;
	(void)root;
	return strcmp(kind, "net") ? CKPT_NOT_MINE : 0;
}

/* restore_namespace: netns_restore (restore_start) made it and this thread
 * is in it, so is every task the core creates; nothing to enter. */
int netns_restore_namespace(struct net_priv *p, const char *kind, int *fd)
{
	if (strcmp(kind, "net"))
		return CKPT_NOT_MINE;
	if (!p->in_tree_netns) {
		net_err(p, "restore: the core image says the tree had a network namespace of its own, "
			   "but %s holds none; the images are damaged", NS_IMG);
		return -EBADMSG;
	}
	*fd = -1;
	return 0;
}

/* restore_finish: open the namespace when the tree runs, and go home. */
void netns_restore_finish(struct net_priv *p, int ok)
{
	if (ok)
		net_unlock_ns(p);
	netns_leave(p);
}
