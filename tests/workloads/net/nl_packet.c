/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * nl_packet — netlink and packet sockets.
 *
 *   fd 60  NETLINK_ROUTE bound to a chosen port id, joined to RTMGRP_LINK
 *          (by bind), group 5 and group 33 (setsockopt: the second word of
 *          the membership bitmap), NETLINK_EXT_ACK and GET_STRICT_CHK on,
 *          SO_RCVBUF set
 *   fd 61  NETLINK_ROUTE never used: no port id
 *   fd 62  NETLINK_GENERIC, port id given by the kernel on its first request
 *   fd 63  AF_PACKET SOCK_DGRAM bound to lo for ETH_P_IP, PACKET_AUXDATA,
 *          a classic BPF filter passing only UDP to port P (held by fd 65)
 *   fd 64  AF_PACKET SOCK_RAW, protocol 0, unbound
 *   fd 65  UDP socket bound to 127.0.0.1:P (keeps the port ours)
 *
 * After SIGUSR1: port ids, memberships, options and filters as before; a
 * RTM_GETLINK dump on fd 60 lists lo; an nlctrl request on fd 62 is
 * answered; a datagram to port P+1 is filtered out and one to port P is
 * captured by fd 63 with its aux data.
 *
 * With the argument "unread": fd 60 also has the answer to an RTM_GETLINK
 * request for lo waiting unread at dump time; with "dumping": the first
 * part of an RTM_GETLINK dump (the kernel holds the rest).  The dump must
 * refuse both; after SIGUSR1 the workload reads the answer and checks the
 * rest as usual.
 */
#include "netwl.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/genetlink.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

static uint32_t seq = 100;

/* dump: every link (answered in parts, ended by NLMSG_DONE); else lo only */
static void nl_send_getlink(int fd, bool dump)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = { .h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
			 .nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0), .nlmsg_seq = ++seq },
		  .i = { .ifi_family = AF_UNSPEC, .ifi_index = dump ? 0 : (int)if_nametoindex("lo") } };
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };

	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&k, sizeof(k)) != sizeof(req))
		wl_fail("RTM_GETLINK send: %s", strerror(errno));
}

/* Read the answer; true when it lists "lo" (and, for a dump, ends with
 * DONE). */
static bool nl_read_getlink(int fd, bool dump)
{
	static char buf[1 << 16];
	bool lo = false;

	for (;;) {
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		ssize_t n;

		if (!nw_readable(fd, 5000)) {
			wl_fail("RTM_GETLINK: no answer");
			return false;
		}
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n <= 0) {
			wl_fail("RTM_GETLINK recv: %s", strerror(errno));
			return false;
		}
		WL_CHECK(from.nl_pid == 0, "RTM_GETLINK answer from port %u, not the kernel", from.nl_pid);
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (unsigned)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return lo;
			if (h->nlmsg_type == NLMSG_ERROR) {
				wl_fail("RTM_GETLINK: error %d", ((struct nlmsgerr *)NLMSG_DATA(h))->error);
				return false;
			}
			if (h->nlmsg_type == RTM_NEWLINK) {
				struct ifinfomsg *i = NLMSG_DATA(h);

				if (i->ifi_index == (int)if_nametoindex("lo"))
					lo = true;
				if (!dump)
					return lo;
			}
		}
	}
}

/* Ask nlctrl for its own family; true when answered. */
static bool genl_ask(int fd)
{
	struct {
		struct nlmsghdr h;
		struct genlmsghdr g;
		struct nlattr a;
		char name[8];
	} req;
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };
	static char buf[8192];
	ssize_t n;

	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = GENL_ID_CTRL;
	req.h.nlmsg_flags = NLM_F_REQUEST;
	req.h.nlmsg_seq = ++seq;
	req.g.cmd = CTRL_CMD_GETFAMILY;
	req.g.version = 1;
	req.a.nla_len = NLA_HDRLEN + 7;
	req.a.nla_type = CTRL_ATTR_FAMILY_NAME;
	memcpy(req.name, "nlctrl", 7);
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&k, sizeof(k)) != sizeof(req)) {
		wl_fail("nlctrl send: %s", strerror(errno));
		return false;
	}
	if (!nw_readable(fd, 5000)) {
		wl_fail("nlctrl: no answer");
		return false;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n < (ssize_t)NLMSG_HDRLEN) {
		wl_fail("nlctrl recv: %s", strerror(errno));
		return false;
	}
	return ((struct nlmsghdr *)buf)->nlmsg_type == GENL_ID_CTRL;
}

static uint32_t portid(int fd)
{
	struct sockaddr_nl sa = { 0 };
	socklen_t l = sizeof(sa);

	getsockname(fd, (struct sockaddr *)&sa, &l);
	return sa.nl_pid;
}

static void groups(int fd, uint32_t map[4])
{
	socklen_t l = 4 * sizeof(uint32_t);

	memset(map, 0, 4 * sizeof(uint32_t));
	if (getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, map, &l))
		wl_fail("NETLINK_LIST_MEMBERSHIPS: %s", strerror(errno));
}

static int filter_len(int fd)
{
	socklen_t n = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER /* SO_GET_FILTER */, NULL, &n))
		return -1;
	return (int)n;
}

static void udp_to(int port, const char *payload)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0 || sendto(s, payload, strlen(payload), 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		wl_fail("udp send to %d: %s", port, strerror(errno));
	if (s >= 0)
		close(s);
}

/* Read packets from fd 63 for up to 3 s; true when one ends with payload
 * and carries PACKET_AUXDATA; any packet without it is a filter failure. */
static bool capture(const char *payload)
{
	static char buf[4096];
	char cbuf[256];

	while (nw_readable(63, 3000)) {
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(63, &mh, 0);
		bool aux = false;

		if (n <= 0)
			break;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA)
				aux = true;
		if ((size_t)n >= strlen(payload) &&
		    !memcmp(buf + n - strlen(payload), payload, strlen(payload))) {
			WL_CHECK(aux, "captured packet has no PACKET_AUXDATA");
			return true;
		}
		wl_fail("fd 63 captured a packet of %zd bytes the filter should have dropped", n);
	}
	return false;
}

int main(int argc, char **argv)
{
	bool unread = argc > 1 && !strcmp(argv[1], "unread");
	bool dumping = argc > 1 && !strcmp(argv[1], "dumping");
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	struct sockaddr_in u = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP) };
	socklen_t ul = sizeof(u);
	uint32_t g0[4], g[4], pid60, pid62;
	int one = 1, rb = 300000, g5 = RTNLGRP_IPV4_IFADDR, g33 = 33, port, rb0, flen;

	wl_init("net/nl_packet");
	nw_place(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), 60, "route");
	setsockopt(60, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
	nl.nl_pid = 0x40000000u | (uint32_t)getpid();
	/* The refusal variants keep a reply queued in a deliberately small
	 * buffer: a link or address event anywhere on the host (another
	 * test's namespace going away) would overflow it, so they join no
	 * group that carries such events. */
	if (unread || dumping)
		nl.nl_groups = 0;
	if (bind(60, (struct sockaddr *)&nl, sizeof(nl)))
		wl_die("bind netlink: %s", strerror(errno));
	if ((!unread && !dumping &&
	     setsockopt(60, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g5, sizeof(g5))) ||
	    setsockopt(60, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g33, sizeof(g33)) ||
	    setsockopt(60, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one)) ||
	    setsockopt(60, SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one)))
		wl_die("netlink options: %s", strerror(errno));
	nw_place(socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE), 61, "route-unused");
	nw_place(socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC), 62, "generic");
	if (!genl_ask(62))
		wl_die("nlctrl did not answer before the dump");

	nw_place(socket(AF_INET, SOCK_DGRAM, 0), 65, "udp");
	if (bind(65, (struct sockaddr *)&u, sizeof(u)) || getsockname(65, (struct sockaddr *)&u, &ul))
		wl_die("udp bind: %s", strerror(errno));
	port = ntohs(u.sin_port);
	{
		/* IP header of 20 bytes assumed (no options on loopback UDP) */
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 9),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 3),
			BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 22),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)port, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, 0xffff),
			BPF_STMT(BPF_RET | BPF_K, 0),
		};
		struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

		nw_place(socket(AF_PACKET, SOCK_DGRAM, 0), 63, "packet");
		if (setsockopt(63, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) ||
		    setsockopt(63, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)))
			wl_die("packet options: %s", strerror(errno));
	}
	ll.sll_ifindex = (int)if_nametoindex("lo");
	if (bind(63, (struct sockaddr *)&ll, sizeof(ll)))
		wl_die("packet bind: %s", strerror(errno));
	nw_place(socket(AF_PACKET, SOCK_RAW, 0), 64, "packet-raw");

	pid60 = portid(60);
	pid62 = portid(62);
	groups(60, g0);
	rb0 = nw_sockopt(60, SOL_SOCKET, SO_RCVBUF);
	flen = filter_len(63);
	if (pid62 == 0 || flen != 6)
		wl_die("setup: generic port id %u, filter length %d", pid62, flen);
	if (unread || dumping) {
		int small = 1;

		/* a tiny buffer, so that a dump stops after its first part */
		if (dumping)
			setsockopt(60, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
		nl_send_getlink(60, dumping);
	}

	wl_ready();
	wl_wait_usr1();

	if (unread || dumping) {
		WL_CHECK(nl_read_getlink(60, dumping),
			 "the RTM_GETLINK answer queued before the dump is wrong");
		if (dumping)
			setsockopt(60, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
	}
	WL_CHECK(portid(60) == pid60, "fd 60 port id %u, want %u", portid(60), pid60);
	WL_CHECK(portid(61) == 0, "fd 61 got port id %u", portid(61));
	WL_CHECK(portid(62) == pid62, "fd 62 port id %u, want %u", portid(62), pid62);
	groups(60, g);
	WL_CHECK(!memcmp(g, g0, sizeof(g)), "fd 60 groups %08x %08x, want %08x %08x", g[0], g[1], g0[0],
		 g0[1]);
	WL_CHECK(nw_sockopt(60, SOL_NETLINK, NETLINK_EXT_ACK) == 1, "fd 60 lost NETLINK_EXT_ACK");
	WL_CHECK(nw_sockopt(60, SOL_NETLINK, NETLINK_GET_STRICT_CHK) == 1,
		 "fd 60 lost NETLINK_GET_STRICT_CHK");
	WL_CHECK(nw_sockopt(60, SOL_NETLINK, NETLINK_NO_ENOBUFS) == 0, "fd 60 has NETLINK_NO_ENOBUFS");
	WL_CHECK(nw_sockopt(60, SOL_SOCKET, SO_RCVBUF) == rb0, "fd 60 SO_RCVBUF %d, want %d",
		 nw_sockopt(60, SOL_SOCKET, SO_RCVBUF), rb0);
	WL_CHECK(nw_sockopt(61, SOL_SOCKET, SO_PROTOCOL) == NETLINK_ROUTE, "fd 61 protocol");
	WL_CHECK(nw_sockopt(62, SOL_SOCKET, SO_PROTOCOL) == NETLINK_GENERIC, "fd 62 protocol");
	nl_send_getlink(60, true);
	WL_CHECK(nl_read_getlink(60, true), "RTM_GETLINK on fd 60 after restore does not list lo");
	WL_CHECK(genl_ask(62), "nlctrl on fd 62 after restore did not answer");

	WL_CHECK(nw_sockopt(63, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM, "fd 63 type");
	WL_CHECK(nw_sockopt(63, SOL_PACKET, PACKET_AUXDATA) == 1, "fd 63 lost PACKET_AUXDATA");
	WL_CHECK(filter_len(63) == flen, "fd 63 filter of %d insns, want %d", filter_len(63), flen);
	{
		struct sockaddr_ll b = { 0 };
		socklen_t bl = sizeof(b);

		getsockname(63, (struct sockaddr *)&b, &bl);
		WL_CHECK(b.sll_ifindex == ll.sll_ifindex && b.sll_protocol == htons(ETH_P_IP),
			 "fd 63 bound to ifindex %d protocol 0x%04x", b.sll_ifindex, ntohs(b.sll_protocol));
	}
	WL_CHECK(nw_sockopt(64, SOL_SOCKET, SO_TYPE) == SOCK_RAW, "fd 64 type");
	udp_to(port == 65535 ? port - 1 : port + 1, "ckpt-not-this-one");
	udp_to(port, "ckpt-packet-payload");
	WL_CHECK(capture("ckpt-packet-payload"), "fd 63 did not capture the datagram to port %d", port);
	wl_finish();
}
