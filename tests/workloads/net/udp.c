/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * udp — UDP sockets on 127.0.0.1.
 *
 *   fd 60  bound to 127.0.0.1 (bind(0)), SO_RCVBUF 100000, IP_TOS 0x10
 *   fd 61  connect()ed to fd 60 (so bound to a port by the kernel)
 *   fd 62  IPv6 socket bound to ::ffff:127.0.0.1, connected to fd 60
 *   fd 63  unbound, SO_BROADCAST
 *
 * After SIGUSR1: addresses, connections and options must be the same and
 * datagrams must flow between fd 60 and fds 61 and 62 both ways.
 */
#include "netwl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>

struct names {
	struct sockaddr_storage s, p;
	socklen_t sl, pl;
};

static void names_of(int fd, struct names *n)
{
	memset(n, 0, sizeof(*n));
	n->sl = n->pl = sizeof(n->s);
	if (getsockname(fd, (struct sockaddr *)&n->s, &n->sl))
		n->sl = 0;
	if (getpeername(fd, (struct sockaddr *)&n->p, &n->pl))
		n->pl = 0;
}

int main(void)
{
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 lo6 = { .sin6_family = AF_INET6 };
	struct sockaddr_storage srv, from;
	struct sockaddr_in6 srv6;
	struct names n0[64], n;
	socklen_t sl = sizeof(srv), fl;
	int rb = 100000, tos = 0x10, one = 1, zero = 0, rb0;
	char buf[64];

	wl_init("net/udp");
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &lo6.sin6_addr);
	nw_place(socket(AF_INET, SOCK_DGRAM, 0), 60, "server");
	setsockopt(60, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
	setsockopt(60, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	if (bind(60, (struct sockaddr *)&lo, sizeof(lo)) || getsockname(60, (struct sockaddr *)&srv, &sl))
		wl_die("bind: %s", strerror(errno));
	nw_place(socket(AF_INET, SOCK_DGRAM, 0), 61, "client");
	if (connect(61, (struct sockaddr *)&srv, sl))
		wl_die("connect: %s", strerror(errno));
	nw_place(socket(AF_INET6, SOCK_DGRAM, 0), 62, "client6");
	setsockopt(62, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	memset(&srv6, 0, sizeof(srv6));
	srv6.sin6_family = AF_INET6;
	srv6.sin6_port = ((struct sockaddr_in *)&srv)->sin_port;
	srv6.sin6_addr = lo6.sin6_addr;
	if (bind(62, (struct sockaddr *)&lo6, sizeof(lo6)) ||
	    connect(62, (struct sockaddr *)&srv6, sizeof(srv6)))
		wl_die("v6: %s", strerror(errno));
	nw_place(socket(AF_INET, SOCK_DGRAM, 0), 63, "unbound");
	setsockopt(63, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
	for (int fd = 60; fd <= 63; fd++)
		names_of(fd, &n0[fd]);
	rb0 = nw_sockopt(60, SOL_SOCKET, SO_RCVBUF);

	wl_ready();
	wl_wait_usr1();

	for (int fd = 60; fd <= 63; fd++) {
		names_of(fd, &n);
		WL_CHECK(n.sl == n0[fd].sl && !memcmp(&n.s, &n0[fd].s, n.sl), "fd %d: local address changed", fd);
		WL_CHECK(n.pl == n0[fd].pl && !memcmp(&n.p, &n0[fd].p, n.pl), "fd %d: peer changed", fd);
		WL_CHECK(nw_sockopt(fd, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM, "fd %d is not a UDP socket", fd);
	}
	WL_CHECK(nw_sockopt(60, SOL_SOCKET, SO_RCVBUF) == rb0, "fd 60 SO_RCVBUF %d, want %d",
		 nw_sockopt(60, SOL_SOCKET, SO_RCVBUF), rb0);
	WL_CHECK(nw_sockopt(60, IPPROTO_IP, IP_TOS) == tos, "fd 60 lost IP_TOS");
	WL_CHECK(nw_sockopt(63, SOL_SOCKET, SO_BROADCAST) == 1, "fd 63 lost SO_BROADCAST");
	WL_CHECK(nw_sockopt(62, IPPROTO_IPV6, IPV6_V6ONLY) == 0, "fd 62 became v6only");

	/* 61 -> 60 -> 61 */
	WL_CHECK(send(61, "ping61", 6, 0) == 6, "send on fd 61: %s", strerror(errno));
	fl = sizeof(from);
	WL_CHECK(nw_readable(60, 3000) &&
			 recvfrom(60, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl) == 6 &&
			 !memcmp(buf, "ping61", 6),
		 "fd 60 did not get fd 61's datagram");
	WL_CHECK(fl == n0[61].sl && !memcmp(&from, &n0[61].s, fl), "fd 61's datagram came from elsewhere");
	WL_CHECK(sendto(60, "pong", 4, 0, (struct sockaddr *)&n0[61].s, n0[61].sl) == 4, "sendto 61");
	WL_CHECK(nw_readable(61, 3000) && recv(61, buf, sizeof(buf), MSG_DONTWAIT) == 4, "fd 61 got no reply");

	/* 62 -> 60 -> 62 */
	WL_CHECK(send(62, "ping62", 6, 0) == 6, "send on fd 62: %s", strerror(errno));
	fl = sizeof(from);
	WL_CHECK(nw_readable(60, 3000) &&
			 recvfrom(60, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl) == 6 &&
			 !memcmp(buf, "ping62", 6),
		 "fd 60 did not get fd 62's datagram");
	WL_CHECK(fl == sizeof(struct sockaddr_in) &&
			 ((struct sockaddr_in *)&from)->sin_port ==
				 ((struct sockaddr_in6 *)&n0[62].s)->sin6_port,
		 "fd 62's datagram came from another port");
	WL_CHECK(sendto(60, "pong", 4, 0, (struct sockaddr *)&from, fl) == 4, "sendto 62");
	WL_CHECK(nw_readable(62, 3000) && recv(62, buf, sizeof(buf), MSG_DONTWAIT) == 4, "fd 62 got no reply");
	wl_check_usr1_action();
	wl_finish();
}
