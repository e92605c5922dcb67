/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * net plugin — private declarations shared by its files.
 *
 *   net.c          descriptor, init/fini, config, lifecycle hooks, fd dispatch,
 *                  image helpers
 *   sockopt.c      SOL_SOCKET and IP-level options, file flags
 *   queue.c        reading a socket's queue without consuming it (MSG_PEEK)
 *   unix_diag.c    NETLINK_SOCK_DIAG for unix sockets (peers, names, backlogs)
 *   unix.c         unix sockets: dump
 *   unix_restore.c unix sockets: restore (every unix socket of the dump is
 *                  built at restore_start, so that pairs, accepted
 *                  connections and listen queues can be put together in
 *                  the order they need)
 *   inet.c         addresses of inet sockets
 *   tcp.c          TCP: listening, bound and established (TCP_REPAIR)
 *   udp.c          UDP and UDP-Lite
 *   netlink.c      netlink sockets
 *   packet.c       packet sockets
 *   sock_diag.c    one NETLINK_SOCK_DIAG dump, message by message
 *   filter.c       classic BPF socket filters
 *   lock.c         the network lock (nftables through libnftables)
 *   netns.c        the tree's own network namespace (libnl-route-3)
 */
#ifndef CKPT_NET_H
#define CKPT_NET_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <protobuf-c/protobuf-c.h>

#include "ckpt-plugin.h"
#include "net.pb-c.h"

#define NET_NAME "net"

enum net_class_id {
	NET_UNIX = 0,
	NET_TCP,
	NET_UDP,
	NET_NETLINK,
	NET_PACKET,
	NET_NCLASSES,
};

/* Records of one class loaded at restore_start, sorted by id. */
struct net_table {
	ProtobufCMessage **recs;
	size_t n;
};

/* A TCP socket the plugin keeps a reference to while it is in repair mode.
 * Dump: the task's socket (a dup of the stolen fd), so that it can be put
 * back in normal mode (dump failed, or -R), or closed in repair mode (no
 * FIN, no RST) once the task is dead.  Restore: a dup of the new socket,
 * taken out of repair mode at restore_resume. */
struct tcp_hold {
	int fd;
	int pidfd;          /* dump: the owner, to learn whether it died */
	pid_t pid;          /* for messages */
	int task_fd;        /* dump: fd number in the task; restore: -1 */
	uint32_t id;        /* obj_id */
	uint8_t *unsent;    /* restore: bytes never sent, written after repair */
	size_t nunsent;
	bool has_sndbuf;    /* restore: SO_SNDBUF to set once the unsent bytes are out */
	uint32_t sndbuf;
	bool repair;        /* repair mode is on now */
};

/* What sock_diag says about one unix socket. */
struct unix_diag_ent {
	uint64_t ino;
	uint8_t type, state;
	bool has_peer;
	uint64_t peer;
	bool has_name;
	uint8_t name[108];
	size_t namelen;
	bool has_vfs;
	uint64_t vfs_ino;
	uint32_t vfs_dev; /* kernel encoding: major << 20 | minor */
	bool has_rqlen;
	uint32_t rqueue, wqueue;
	uint64_t *icons;
	size_t nicons;
	bool has_shutdown;
	uint8_t shutdown;
};

/* One locked TCP connection (addresses in network order, ports in host order). */
struct lock_conn {
	int family;
	uint8_t local[16], peer[16];
	uint16_t lport, pport;
};

struct net_priv {
	const struct ckpt_host *host;
	bool tcp_established;
	bool ext_unix_sk;

	/* dump */
	struct ckpt_img *img[NET_NCLASSES];
	pid_t root;
	uint64_t *tree_inos; /* socket inodes held by the dumped tree, sorted */
	size_t ntree_inos;
	bool tree_scanned;
	struct unix_diag_ent *udiag; /* every unix socket of the netns, sorted by ino */
	size_t nudiag;
	bool udiag_loaded;

	/* dump and restore */
	struct tcp_hold *holds;
	size_t nholds, holds_cap;

	/* network lock and namespace, dump and restore */
	char lock_name[64]; /* the lock table of this tree's connections, or "" */
	bool lock_table;    /* it is set up */
	bool restoring;
	bool ns_locked;     /* the tree's own namespace is locked as a whole */
	int home_netns;     /* ckpt's network namespace, or -1 */
	int tree_netns;     /* the tree's own, or -1 */
	bool in_tree_netns; /* this thread has joined it */

	/* restore */
	struct net_table tables[NET_NCLASSES];
	int *unix_fds; /* per UnixSk record (table order): the built socket, or -1 */
};

/* ---- net.c --------------------------------------------------------------- */

/* Write one record of class cls to its image (created on first use). */
int net_save(struct net_priv *p, enum net_class_id cls, const ProtobufCMessage *msg);
/* Find a loaded record by obj_id. */
const ProtobufCMessage *net_find_rec(struct net_priv *p, enum net_class_id cls, uint32_t id);
/* Add a hold; returns its index or -errno. */
int net_hold_add(struct net_priv *p, const struct tcp_hold *h);

#define net_log(p, level, ...) ((p)->host->log(NET_NAME, (level), __VA_ARGS__))
#define net_err(p, ...) net_log(p, CKPT_LOG_ERROR, __VA_ARGS__)
#define net_warn(p, ...) net_log(p, CKPT_LOG_WARN, __VA_ARGS__)
#define net_info(p, ...) net_log(p, CKPT_LOG_INFO, __VA_ARGS__)
#define net_debug(p, ...) net_log(p, CKPT_LOG_DEBUG, __VA_ARGS__)

/* -e for a hook's return value; never CKPT_NOT_MINE (-ENOTSUP), which
 * would tell the host "not mine" instead of "failed". */
static inline int net_errno(int e)
{
	if (e < 0)
		e = -e;
	if (e == 0 || -e == CKPT_NOT_MINE)
		e = EIO;
	return -e;
}

/* True when the sorted tree set holds ino. */
bool net_in_tree(const struct net_priv *p, uint64_t ino);

/* ---- sockopt.c ------------------------------------------------------------ */

/* Read the SOL_SOCKET options of fd into o (fields set with has_*).
 * family: AF_UNIX / AF_INET / AF_INET6 (which options make sense). */
void sockopt_dump(int fd, int family, int type, Ckpt__Net__SockOpts *o);
/* Set them again.  Errors are logged naming what; -errno. */
int sockopt_restore(struct net_priv *p, int fd, const Ckpt__Net__SockOpts *o,
		    const char *what);
/* SO_REUSEADDR / SO_REUSEPORT only (before bind). */
int sockopt_restore_reuse(struct net_priv *p, int fd, const Ckpt__Net__SockOpts *o,
			  const char *what);
void ipopt_dump(int fd, int family, Ckpt__Net__IpOpts *o);
/* before_bind: the options that must be set before bind (v6only, freebind,
 * transparent); else the others. */
int ipopt_restore(struct net_priv *p, int fd, int family, const Ckpt__Net__IpOpts *o,
		  bool before_bind, const char *what);
/* O_NONBLOCK (and a warning for O_ASYNC) from the saved status flags. */
int sock_restore_flags(struct net_priv *p, int fd, uint32_t flags, const char *what);
/* Make sure fd can take size bytes of writes (SO_SNDBUFFORCE), and
 * size bytes of receive queue (SO_RCVBUFFORCE) when rcv. */
void sock_grow_buf(int fd, size_t size, bool rcv);

/* ---- queue.c ------------------------------------------------------------ */

struct peeked_msg {
	uint8_t *data;
	size_t len;
	uint8_t sender[110]; /* sockaddr_un sun_path bytes */
	size_t senderlen;    /* 0: unnamed */
};

struct peeked {
	struct peeked_msg *m;
	size_t n, cap;
	size_t bytes;
	int nfds;            /* SCM_RIGHTS fds found (refused) */
};

/* Read the receive queue of fd without consuming it: SO_PEEK_OFF is set to
 * walk it and put back as it was.  records: one message per datagram /
 * seqpacket record (else stream bytes in runs).  stop_on_eof: a read of 0
 * ends the walk (stream, or a socket shut down for receiving).  0 or
 * -errno (errors are not logged; *what says which step failed). */
int queue_peek(int fd, bool records, bool stop_on_eof, struct peeked *q, const char **what);
void queue_free(struct peeked *q);

/* ---- unix_diag.c ------------------------------------------------------ */

/* Load every unix socket of this network namespace.  0 or -errno. */
int unix_diag_load(struct net_priv *p);
const struct unix_diag_ent *unix_diag_find(const struct net_priv *p, uint64_t ino);
void unix_diag_free(struct net_priv *p);
/* One socket, for `check`: 0 when sock_diag answers for ino. */
int unix_diag_probe(uint64_t ino);

/* ---- classes -------------------------------------------------------------- */

int unix_dump(struct net_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id);
int unix_restore_all(struct net_priv *p);
int unix_restore(struct net_priv *p, uint32_t obj_id, int *fd);
void unix_restore_cleanup(struct net_priv *p);

int tcp_dump(struct net_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id, int family);
int tcp_restore(struct net_priv *p, uint32_t obj_id, int *fd);
/* restore_resume: repair off, unsent data out. */
int tcp_resume(struct net_priv *p);
/* dump_finish / fini: put the task's sockets back or let them go silently. */
void tcp_dump_release(struct net_priv *p, bool finish_ok);
void tcp_drop_holds(struct net_priv *p);
/* `check`: does TCP_REPAIR work here?  0 yes, else -errno with why. */
int tcp_check_repair(char *why, size_t len);

int udp_dump(struct net_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id, int family,
	     int protocol);
int udp_restore(struct net_priv *p, uint32_t obj_id, int *fd);

int netlink_dump(struct net_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id, int type,
		 int protocol);
int netlink_restore(struct net_priv *p, uint32_t obj_id, int *fd);
int packet_dump(struct net_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id, int type);
int packet_restore(struct net_priv *p, uint32_t obj_id, int *fd);

/* ---- sock_diag.c, filter.c --------------------------------------------- */

struct nlmsghdr;
/* Send one SOCK_DIAG_BY_FAMILY dump request (req: the family's request
 * struct) and call cb for every answer; a non-zero cb return ends it.  0 or
 * -errno. */
int sock_diag_dump(const void *req, size_t reqlen,
		   int (*cb)(const struct nlmsghdr *h, void *arg), void *arg);
/* The same, for one socket when !dump (the first answer ends it). */
int sock_diag_query(const void *req, size_t reqlen, bool dump,
		    int (*cb)(const struct nlmsghdr *h, void *arg), void *arg);
/* The classic BPF filter of fd (out->data malloc'ed, len 0: none) and
 * whether it is locked; an eBPF filter is refused (logged).  0 or -errno. */
int sock_filter_dump(struct net_priv *p, int fd, ProtobufCBinaryData *out, bool *locked,
		     const char *what);
int sock_filter_restore(struct net_priv *p, int fd, const ProtobufCBinaryData *f, bool locked,
			const char *what);
/* ---- lock.c ---------------------------------------------------------------- */

/* Run nft commands (libnftables) in this thread's namespace; out: its
 * output, malloc'd.  quiet_enoent: a missing object is not logged. */
int nft_run(struct net_priv *p, const char *cmd, char **out, bool quiet_enoent);
/* Drop the packets of one connection until net_unlock_conns. */
int net_lock_conn(struct net_priv *p, int family, const Ckpt__Net__InetAddr *local,
		  const Ckpt__Net__InetAddr *peer, const char *desc);
/* restore_start: lock the established connections of net-tcp.img. */
int net_lock_restore(struct net_priv *p);
/* Take the lock table away. */
void net_unlock_conns(struct net_priv *p);
/* Forget it, leaving it in place (the tree was killed: it waits for the
 * restore). */
void net_lock_forget(struct net_priv *p);
/* The whole namespace this thread is in. */
int net_lock_ns(struct net_priv *p);
void net_unlock_ns(struct net_priv *p);
/* `check`: 0 when nftables answers here. */
int net_lock_probe(void);

/* ---- netns.c ---------------------------------------------------------------- */

/* tree_frozen: when the tree has a network namespace of its own, join it,
 * save it to net-ns.img and lock it. */
int netns_dump(struct net_priv *p, pid_t root);
/* ok as dump_finish's: unlock unless the tree is killed; leave it. */
void netns_dump_finish(struct net_priv *p, int ok);
void netns_dump_released(struct net_priv *p, int ok);
/* restore_start: recreate the saved namespace and move this thread in. */
int netns_restore(struct net_priv *p);
void netns_restore_finish(struct net_priv *p, int ok);
/* Back to ckpt's namespace, fds closed. */
void netns_leave(struct net_priv *p);
int netns_dump_namespace(struct net_priv *p, pid_t root, const char *kind);
int netns_restore_namespace(struct net_priv *p, const char *kind, int *fd);

/* ---- inet.c ---------------------------------------------------------------- */

/* sockaddr -> InetAddr (addr bytes point into ss; keep ss alive while packing). */
void inet_addr_from(const struct sockaddr_storage *ss, Ckpt__Net__InetAddr *a);
/* InetAddr -> sockaddr of family; 0 or -EINVAL when malformed. */
int inet_addr_to(const Ckpt__Net__InetAddr *a, int family, struct sockaddr_storage *ss,
		 socklen_t *len);
/* "127.0.0.1:80" / "[::1]:80" */
const char *inet_str(const Ckpt__Net__InetAddr *a, int family, char *buf, size_t len);
const char *sa_str(const struct sockaddr_storage *ss, char *buf, size_t len);
/* Port 0 and wildcard address: not bound. */
bool inet_is_unbound(const struct sockaddr_storage *ss);

#endif
