// SPDX-License-Identifier: GPL-2.0-only
/*
 * net plugin: descriptor, init/fini, config, lifecycle hooks and the
 * dispatch of the fd hooks to the socket kinds (unix.c, tcp.c, udp.c,
 * netlink.c, packet.c).
 *
 * Dump: tree_frozen lists the socket inodes the dumped tree holds (so a unix
 * peer can be told inside from outside); the fd dump hook saves one record
 * per socket to the image of its kind.  TCP connections are read in repair
 * mode; dump_finish takes them out of it again (the task may keep running:
 * -R or a failed dump) and fini closes the plugin's own reference in repair
 * mode when the task died, so no FIN or RST leaves for a connection that is
 * to be restored.
 * Restore: restore_start reads every image and builds all unix sockets;
 * the fd restore hook hands them out (TCP and UDP sockets are made there);
 * restore_resume takes the TCP sockets out of repair mode.
 */
#include <dirent.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <unistd.h>

#include "net.h"

struct net_class {
	const char *name;
	const char *img_name;
	const ProtobufCMessageDescriptor *desc;
	uint32_t (*rec_id)(const ProtobufCMessage *rec);
};

static uint32_t unix_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Net__UnixSk *)m)->id;
}

static uint32_t tcp_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Net__TcpSk *)m)->id;
}

static uint32_t udp_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Net__UdpSk *)m)->id;
}

static uint32_t netlink_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Net__NetlinkSk *)m)->id;
}

static uint32_t packet_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Net__PacketSk *)m)->id;
}

static const struct net_class net_classes[NET_NCLASSES] = {
	[NET_UNIX] = { "unix", "net-unix.img", &ckpt__net__unix_sk__descriptor, unix_id },
	[NET_TCP] = { "tcp", "net-tcp.img", &ckpt__net__tcp_sk__descriptor, tcp_id },
	[NET_UDP] = { "udp", "net-udp.img", &ckpt__net__udp_sk__descriptor, udp_id },
	[NET_NETLINK] = { "netlink", "net-netlink.img", &ckpt__net__netlink_sk__descriptor,
			  netlink_id },
	[NET_PACKET] = { "packet", "net-packet.img", &ckpt__net__packet_sk__descriptor,
			 packet_id },
};

static const char *const net_class_names[] = {
	[NET_UNIX] = "unix",
	[NET_TCP] = "tcp",
	[NET_UDP] = "udp",
	[NET_NETLINK] = "netlink",
	[NET_PACKET] = "packet",
	[NET_NCLASSES] = NULL,
};

/* ---- helpers shared by the classes --------------------------------------- */

int net_save(struct net_priv *p, enum net_class_id cls, const ProtobufCMessage *msg)
{
	const struct net_class *c = &net_classes[cls];
	int ret;

	if (!p->img[cls]) {
		p->img[cls] = p->host->img_create(c->img_name, c->desc->name);
		if (!p->img[cls]) {
			int e = errno;

			net_err(p, "dump: cannot create image %s: %s", c->img_name, strerror(e));
			return net_errno(e);
		}
	}
	ret = p->host->img_write_msg(p->img[cls], msg);
	if (ret < 0) {
		net_err(p, "dump: cannot write image %s: %s", c->img_name, strerror(-ret));
		return net_errno(ret);
	}
	return 0;
}

static const ProtobufCMessage *find_in(const struct net_table *t, const struct net_class *c,
				       uint32_t id)
{
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t v = c->rec_id(t->recs[mid]);

		if (v == id)
			return t->recs[mid];
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const ProtobufCMessage *net_find_rec(struct net_priv *p, enum net_class_id cls, uint32_t id)
{
	return find_in(&p->tables[cls], &net_classes[cls], id);
}

int net_hold_add(struct net_priv *p, const struct tcp_hold *h)
{
	if (p->nholds == p->holds_cap) {
		size_t ncap = p->holds_cap ? p->holds_cap * 2 : 8;
		struct tcp_hold *n = realloc(p->holds, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->holds = n;
		p->holds_cap = ncap;
	}
	p->holds[p->nholds] = *h;
	return (int)p->nholds++;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

bool net_in_tree(const struct net_priv *p, uint64_t ino)
{
	return p->tree_inos &&
	       bsearch(&ino, p->tree_inos, p->ntree_inos, sizeof(ino), cmp_u64) != NULL;
}

static bool parse_bool(const char *s, bool def)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };

	if (!s)
		return def;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!strcasecmp(s, yes[i]))
			return true;
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (!strcasecmp(s, no[i]))
			return false;
	return def;
}

static void read_config(struct net_priv *p)
{
	const char *v = NULL;

	if (p->host->config_get)
		v = p->host->config_get(NET_NAME, "tcp_established");
	p->tcp_established = parse_bool(v, false);
	v = NULL;
	if (p->host->config_get)
		v = p->host->config_get(NET_NAME, "ext_unix_sk");
	p->ext_unix_sk = parse_bool(v, false);
}

/* ---- the dumped tree's sockets ------------------------------------------- */

struct u64v {
	uint64_t *v;
	size_t n, cap;
};

static int u64v_add(struct u64v *a, uint64_t x)
{
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 64;
		uint64_t *n = realloc(a->v, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		a->v = n;
		a->cap = ncap;
	}
	a->v[a->n++] = x;
	return 0;
}

static int scan_task_fds(pid_t pid, struct u64v *inos)
{
	char path[64], link[64], lp[64 + 256];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(lp, sizeof(lp), "%s/%s", path, de->d_name);
		n = readlink(lp, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (strncmp(link, "socket:[", 8))
			continue;
		ret = u64v_add(inos, strtoull(link + 8, NULL, 10));
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

/* Every task of the tree under root: root, its threads' children, ... */
static int scan_tree(struct net_priv *p, pid_t root)
{
	struct u64v pids = { 0 }, inos = { 0 };
	int ret;

	ret = u64v_add(&pids, (uint64_t)root);
	for (size_t i = 0; !ret && i < pids.n; i++) {
		pid_t pid = (pid_t)pids.v[i];
		char path[64];
		struct dirent *de;
		DIR *d;

		ret = scan_task_fds(pid, &inos);
		if (ret)
			break;
		snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
		d = opendir(path);
		if (!d)
			continue;
		while (!ret && (de = readdir(d))) {
			char cp[64 + 256 + 16];
			FILE *f;
			long c;

			if (de->d_name[0] == '.')
				continue;
			snprintf(cp, sizeof(cp), "%s/%s/children", path, de->d_name);
			f = fopen(cp, "re");
			if (!f)
				continue;
			while (!ret && fscanf(f, "%ld", &c) == 1)
				ret = u64v_add(&pids, (uint64_t)c);
			fclose(f);
		}
		closedir(d);
	}
	free(pids.v);
	if (ret) {
		free(inos.v);
		net_err(p, "dump: cannot list the sockets of the tree of PID %d: %s", (int)root,
			strerror(-ret));
		return net_errno(ret);
	}
	if (inos.n)
		qsort(inos.v, inos.n, sizeof(*inos.v), cmp_u64);
	free(p->tree_inos);
	p->tree_inos = inos.v;
	p->ntree_inos = inos.n;
	p->tree_scanned = true;
	return 0;
}

/* ---- init / fini ------------------------------------------------------------ */

static void drop_images(struct net_priv *p)
{
	for (int i = 0; i < NET_NCLASSES; i++) {
		if (p->img[i])
			p->host->img_close(p->img[i]);
		p->img[i] = NULL;
	}
}

static void free_tables(struct net_priv *p)
{
	for (int i = 0; i < NET_NCLASSES; i++) {
		struct net_table *t = &p->tables[i];

		for (size_t j = 0; j < t->n; j++)
			protobuf_c_message_free_unpacked(t->recs[j], NULL);
		free(t->recs);
		t->recs = NULL;
		t->n = 0;
	}
}

static void drop_dump_state(struct net_priv *p)
{
	free(p->tree_inos);
	p->tree_inos = NULL;
	p->ntree_inos = 0;
	p->tree_scanned = false;
	unix_diag_free(p);
}

static int net_init(const struct ckpt_host *host, void **priv)
{
	struct net_priv *p;

	if (!host || host->version < 3 /* img_load, img_write_msg */ || !host->img_load ||
	    !host->img_write_msg || !host->log || !host->img_create || !host->img_open ||
	    !host->img_write || !host->img_read || !host->img_close)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->host = host;
	p->home_netns = p->tree_netns = -1;
	read_config(p);
	*priv = p;
	return 0;
}

static void net_fini(void *priv)
{
	struct net_priv *p = priv;

	if (!p)
		return;
	drop_images(p);
	tcp_drop_holds(p);
	netns_leave(p);
	free(p->holds);
	unix_restore_cleanup(p);
	free_tables(p);
	drop_dump_state(p);
	free(p);
}

/* ---- lifecycle ------------------------------------------------------------------ */

static int net_dump_start(void *priv, pid_t root)
{
	struct net_priv *p = priv;

	drop_images(p);
	tcp_drop_holds(p);
	drop_dump_state(p);
	netns_leave(p);
	net_lock_forget(p);
	p->restoring = false;
	read_config(p);
	p->root = root;
	return 0;
}

static int net_tree_frozen(void *priv, pid_t root)
{
	struct net_priv *p = priv;
	int ret;

	p->root = root;
	/* before any socket is looked at: sock_diag and the lock must work in
	 * the tree's namespace */
	ret = netns_dump(p, root);
	return ret ? ret : scan_tree(p, root);
}

static int net_dump_finish(void *priv, int ok)
{
	struct net_priv *p = priv;
	int ret = 0;

	for (int i = 0; i < NET_NCLASSES; i++) {
		int r;

		if (!p->img[i])
			continue;
		r = p->host->img_close(p->img[i]);
		p->img[i] = NULL;
		if (ok && r < 0 && !ret) {
			net_err(p, "dump: cannot finish image %s: %s", net_classes[i].img_name,
				strerror(-r));
			ret = net_errno(r);
		}
	}
	/* The task may run on (-R, or this dump failed): its connections must
	 * work again.  When it is killed instead, fini closes the plugin's
	 * references in repair mode. */
	tcp_dump_release(p, ok && !ret);
	/* killed: the lock stays until the restore; else the tree runs on.
	 * dump_released undoes it should the dump still fail after this. */
	if (!ok || ok == 2 || ret)
		net_unlock_conns(p);
	netns_dump_finish(p, ret ? 0 : ok);
	drop_dump_state(p);
	return ret;
}

static int net_dump_released(void *priv, pid_t root, int ok)
{
	struct net_priv *p = priv;

	(void)root;
	if (!ok)
		net_unlock_conns(p);
	net_lock_forget(p);
	netns_dump_released(p, ok);
	return 0;
}

static int cmp_rec_id(const void *a, const void *b, void *arg)
{
	const struct net_class *c = arg;
	uint32_t x = c->rec_id(*(ProtobufCMessage *const *)a);
	uint32_t y = c->rec_id(*(ProtobufCMessage *const *)b);

	return x < y ? -1 : x > y;
}

static int load_table(struct net_priv *p, enum net_class_id cls)
{
	const struct net_class *c = &net_classes[cls];
	struct net_table *t = &p->tables[cls];
	int ret;

	/* the host reads and unpacks them; a missing image: no socket of this kind */
	ret = p->host->img_load(c->img_name, c->desc, &t->recs, &t->n);
	if (ret)
		return net_errno(-ret);
	if (t->n)
		qsort_r(t->recs, t->n, sizeof(*t->recs), cmp_rec_id, (void *)c);
	for (size_t i = 1; i < t->n; i++) {
		if (c->rec_id(t->recs[i]) == c->rec_id(t->recs[i - 1])) {
			net_err(p, "restore: image %s holds object %u twice; the images are damaged",
				c->img_name, c->rec_id(t->recs[i]));
			return -EBADMSG;
		}
	}
	net_debug(p, "restore: %zu %s socket(s) from %s", t->n, c->name, c->img_name);
	return 0;
}

static int net_restore_start(void *priv)
{
	struct net_priv *p = priv;
	int ret;

	unix_restore_cleanup(p);
	tcp_drop_holds(p);
	free_tables(p);
	netns_leave(p);
	net_lock_forget(p);
	p->restoring = true;
	read_config(p);
	for (int i = 0; i < NET_NCLASSES; i++) {
		ret = load_table(p, i);
		if (ret)
			goto fail;
	}
	/* the namespace first: every socket is made in it */
	ret = netns_restore(p);
	if (!ret)
		ret = net_lock_restore(p);
	if (!ret)
		ret = unix_restore_all(p);
	if (ret)
		goto fail;
	return 0;
fail:
	unix_restore_cleanup(p);
	free_tables(p);
	netns_leave(p);
	net_lock_forget(p);
	return ret;
}

static int net_restore_resume(void *priv, pid_t root)
{
	(void)root;
	return tcp_resume(priv);
}

static int net_restore_finish(void *priv, int ok)
{
	struct net_priv *p = priv;

	unix_restore_cleanup(p);
	tcp_drop_holds(p);
	free_tables(p);
	/* a failed restore keeps the connections locked for the next try */
	if (ok)
		net_unlock_conns(p);
	net_lock_forget(p);
	netns_restore_finish(p, ok);
	return 0;
}

static int net_check(void *priv, char *msg, size_t len)
{
	char why[160];
	int sv[2], rt;
	bool diag = false;
	struct stat st;

	(void)priv;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
		if (fstat(sv[0], &st) == 0)
			diag = unix_diag_probe(st.st_ino) == 0;
		close(sv[0]);
		close(sv[1]);
	}
	rt = tcp_check_repair(why, sizeof(why));
	snprintf(msg, len, "unix sockets (%s), udp, netlink, packet, tcp listening; established "
			   "tcp: %s; network lock: %s",
		 diag ? "sock_diag works" : "sock_diag UNAVAILABLE: unix sockets cannot be dumped",
		 rt == 0 ? "TCP_REPAIR works" : why,
		 net_lock_probe() == 0 ? "nftables works" : "nftables UNAVAILABLE (nf_tables module?)");
	return 0;
}

/* ---- fd hooks --------------------------------------------------------------- */

static const char *family_name(int f)
{
	switch (f) {
	case AF_NETLINK:
		return "netlink";
	case AF_PACKET:
		return "packet";
	case AF_INET:
		return "inet";
	case AF_INET6:
		return "inet6";
	case AF_UNIX:
		return "unix";
	default:
		return NULL;
	}
}

/* Sockets of another network namespace would be made in ours at restore. */
static int check_netns(struct net_priv *p, const struct ckpt_fd_info *fd)
{
	struct stat self, sk;
	int ns = ioctl(fd->local_fd, SIOCGSKNS);

	if (ns < 0)
		return 0; /* no way to tell here */
	/* this thread is in the tree's namespace when it has one */
	if (fstat(ns, &sk) == 0 && stat("/proc/thread-self/ns/net", &self) == 0 &&
	    (sk.st_ino != self.st_ino || sk.st_dev != self.st_dev)) {
		close(ns);
		net_err(p, "fd %d of PID %d: socket %s belongs to another network namespace than "
			   "the tree's; sockets of other namespaces are not supported",
			fd->fd, (int)fd->pid, fd->link);
		return -EXDEV;
	}
	close(ns);
	return 0;
}

static int net_fd_dump(void *priv, const struct ckpt_fd_info *fd, uint32_t obj_id,
		       const char **klass)
{
	struct net_priv *p = priv;
	int family = -1, type = -1, proto = -1, ret;
	socklen_t l;
	enum net_class_id cls;

	if (!S_ISSOCK(fd->st.st_mode))
		return CKPT_NOT_MINE;
	l = sizeof(family);
	if (getsockopt(fd->local_fd, SOL_SOCKET, SO_DOMAIN, &family, &l) < 0) {
		int e = errno;

		net_err(p, "fd %d of PID %d: cannot learn the family of socket %s: %s", fd->fd,
			(int)fd->pid, fd->link, strerror(e));
		return net_errno(e);
	}
	l = sizeof(type);
	getsockopt(fd->local_fd, SOL_SOCKET, SO_TYPE, &type, &l);
	l = sizeof(proto);
	getsockopt(fd->local_fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l);

	ret = check_netns(p, fd);
	if (ret)
		return ret;
	if (!p->tree_scanned) {
		ret = scan_tree(p, p->root > 0 ? p->root : fd->pid);
		if (ret)
			return ret;
	}

	if (family == AF_UNIX) {
		cls = NET_UNIX;
		ret = unix_dump(p, fd, obj_id);
	} else if ((family == AF_INET || family == AF_INET6) && type == SOCK_STREAM &&
		   proto == IPPROTO_TCP) {
		cls = NET_TCP;
		ret = tcp_dump(p, fd, obj_id, family);
	} else if ((family == AF_INET || family == AF_INET6) && type == SOCK_DGRAM &&
		   (proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE)) {
		cls = NET_UDP;
		ret = udp_dump(p, fd, obj_id, family, proto);
	} else if (family == AF_NETLINK) {
		cls = NET_NETLINK;
		ret = netlink_dump(p, fd, obj_id, type, proto);
	} else if (family == AF_PACKET && (type == SOCK_RAW || type == SOCK_DGRAM)) {
		cls = NET_PACKET;
		ret = packet_dump(p, fd, obj_id, type);
	} else {
		const char *fn = family_name(family);

		if (family == AF_INET || family == AF_INET6)
			net_err(p, "fd %d of PID %d: %s socket of type %d, protocol %d (%s) is not "
				   "supported yet (only TCP and UDP); close it before the dump",
				fd->fd, (int)fd->pid, fn, type, proto, fd->link);
		else if (fn)
			net_err(p, "fd %d of PID %d: %s sockets (%s) are not supported yet; close it "
				   "before the dump",
				fd->fd, (int)fd->pid, fn, fd->link);
		else
			net_err(p, "fd %d of PID %d: sockets of address family %d (%s) are not "
				   "supported; close it before the dump",
				fd->fd, (int)fd->pid, family, fd->link);
		return -EPROTONOSUPPORT;
	}
	if (ret == 0)
		*klass = net_class_names[cls];
	return ret == CKPT_NOT_MINE ? -EIO : ret;
}

static int net_fd_restore(void *priv, const char *klass, uint32_t obj_id, int *fd)
{
	struct net_priv *p = priv;

	*fd = -1;
	if (klass && !strcmp(klass, "unix"))
		return unix_restore(p, obj_id, fd);
	if (klass && !strcmp(klass, "tcp"))
		return tcp_restore(p, obj_id, fd);
	if (klass && !strcmp(klass, "udp"))
		return udp_restore(p, obj_id, fd);
	if (klass && !strcmp(klass, "netlink"))
		return netlink_restore(p, obj_id, fd);
	if (klass && !strcmp(klass, "packet"))
		return packet_restore(p, obj_id, fd);
	net_err(p, "restore: object %u has class '%s', which the net plugin does not know; use "
		   "the plugin version that wrote the images",
		obj_id, klass ? klass : "(none)");
	return -EINVAL;
}

/* ---- descriptor ------------------------------------------------------------------ */

static const struct ckpt_config_key net_config[] = {
	{
		.key = "tcp_established",
		.type = CKPT_CFG_BOOL,
		.def = "false",
		.help = "dump and restore established TCP connections (TCP_REPAIR); "
			"--tcp-established",
	},
	{
		.key = "ext_unix_sk",
		.type = CKPT_CFG_BOOL,
		.def = "false",
		.help = "allow unix sockets whose peer is outside the dumped tree "
			"(reconnected by name at restore); --ext-unix-sk",
	},
	{
		.key = "external_veth",
		.type = CKPT_CFG_STRING,
		.def = NULL,
		.help = "restore: INNER:OUTER[,...] names the outside end of each veth of the "
			"tree's network namespace whose peer was outside; --external veth[INNER]:OUTER",
	},
	{ .key = NULL },
};

static int net_dump_namespace(void *priv, pid_t root, const char *kind)
{
	return netns_dump_namespace(priv, root, kind);
}

static int net_restore_namespace(void *priv, const char *kind, int *fd)
{
	return netns_restore_namespace(priv, kind, fd);
}

static const struct ckpt_lifecycle_hooks net_lifecycle = {
	.version = CKPT_LIFECYCLE_HOOKS_VERSION,
	.dump_start = net_dump_start,
	.tree_frozen = net_tree_frozen,
	.dump_finish = net_dump_finish,
	.restore_start = net_restore_start,
	.restore_resume = net_restore_resume,
	.restore_finish = net_restore_finish,
	.check = net_check,
	.dump_released = net_dump_released,
	.dump_namespace = net_dump_namespace,
	.restore_namespace = net_restore_namespace,
};

static const struct ckpt_fd_hooks net_fd_hooks = {
	.version = CKPT_FD_HOOKS_VERSION,
	.classes = net_class_names,
	.dump = net_fd_dump,
	.restore = net_fd_restore,
};

static const ProtobufCMessageDescriptor *const net_image_types[] = {
	&ckpt__net__unix_sk__descriptor,
	&ckpt__net__tcp_sk__descriptor,
	&ckpt__net__udp_sk__descriptor,
	&ckpt__net__netlink_sk__descriptor,
	&ckpt__net__packet_sk__descriptor,
	&ckpt__net__net_ns__descriptor,
	&ckpt__net__net_lock__descriptor,
	NULL,
};

CKPT_PLUGIN_EXPORT = {
	.abi_major = CKPT_PLUGIN_ABI_MAJOR,
	.abi_minor = CKPT_PLUGIN_ABI_MINOR,
	.name = NET_NAME,
	.version = "0.1.0",
	.description = "unix, TCP (established via TCP_REPAIR), UDP, netlink and packet sockets, "
		       "the network lock, network namespaces",
	.config = net_config,
	.init = net_init,
	.fini = net_fini,
	.lifecycle = &net_lifecycle,
	.fd = &net_fd_hooks,
	.image_types = net_image_types,
};
