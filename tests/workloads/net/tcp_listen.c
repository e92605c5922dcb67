/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tcp_listen — TCP sockets without connections (no --tcp-established
 * needed).
 *
 *   fd 50  listener on 127.0.0.1:PORT (bind(0)), backlog 7, SO_REUSEADDR
 *   fd 51  bound to 127.0.0.1 (another port), not listening
 *   fd 52  a fresh, unbound TCP socket with TCP_NODELAY
 *   fd 53  IPv6 listener on ::ffff:127.0.0.1 with IPV6_V6ONLY off
 *
 * After SIGUSR1: the addresses and options must be the same; fd 50 and
 * fd 53 must accept new connections; fd 51 must be able to listen on its
 * port; fd 52 must be able to connect.
 */
#include "netwl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

static void bind_lo(int fd, int family)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;

		s->sin_family = AF_INET;
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;
		int zero = 0;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		s->sin6_family = AF_INET6;
		inet_pton(AF_INET6, "::ffff:127.0.0.1", &s->sin6_addr);
		sl = sizeof(*s);
	}
	if (bind(fd, (struct sockaddr *)&ss, sl))
		wl_die("bind: %s", strerror(errno));
}

static int port_of(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* connect c to 127.0.0.1:port, accept on l, exchange a byte */
static void talk(int c, int l, int port, const char *what)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char x = 'z', y = 0;
	int a = -1;

	if (connect(c, (struct sockaddr *)&sa, sizeof(sa))) {
		wl_fail("%s: connect to port %d: %s", what, port, strerror(errno));
		return;
	}
	if (nw_readable(l, 3000))
		a = accept(l, NULL, NULL);
	WL_CHECK(a >= 0 && send(c, &x, 1, 0) == 1 && nw_readable(a, 3000) && recv(a, &y, 1, 0) == 1 &&
			 y == x,
		 "%s: no working connection", what);
	if (a >= 0)
		close(a);
}

int main(void)
{
	int one = 1, p50, p51, p53;

	wl_init("net/tcp_listen");
	nw_place(socket(AF_INET, SOCK_STREAM, 0), 50, "listener");
	setsockopt(50, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	bind_lo(50, AF_INET);
	if (listen(50, 7))
		wl_die("listen: %s", strerror(errno));
	nw_place(socket(AF_INET, SOCK_STREAM, 0), 51, "bound");
	bind_lo(51, AF_INET);
	nw_place(socket(AF_INET, SOCK_STREAM, 0), 52, "fresh");
	setsockopt(52, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	nw_place(socket(AF_INET6, SOCK_STREAM, 0), 53, "listener6");
	bind_lo(53, AF_INET6);
	if (listen(53, 3))
		wl_die("listen6: %s", strerror(errno));
	p50 = port_of(50);
	p51 = port_of(51);
	p53 = port_of(53);

	wl_ready();
	wl_wait_usr1();

	WL_CHECK(port_of(50) == p50, "fd 50 port %d, want %d", port_of(50), p50);
	WL_CHECK(port_of(51) == p51, "fd 51 port %d, want %d", port_of(51), p51);
	WL_CHECK(port_of(53) == p53, "fd 53 port %d, want %d", port_of(53), p53);
	WL_CHECK(port_of(52) == 0, "fd 52 got bound");
	WL_CHECK(nw_sockopt(50, SOL_SOCKET, SO_ACCEPTCONN) == 1, "fd 50 does not listen");
	WL_CHECK(nw_sockopt(53, SOL_SOCKET, SO_ACCEPTCONN) == 1, "fd 53 does not listen");
	WL_CHECK(nw_sockopt(51, SOL_SOCKET, SO_ACCEPTCONN) == 0, "fd 51 listens");
	WL_CHECK(nw_sockopt(50, SOL_SOCKET, SO_REUSEADDR) == 1, "fd 50 lost SO_REUSEADDR");
	WL_CHECK(nw_sockopt(53, IPPROTO_IPV6, IPV6_V6ONLY) == 0, "fd 53 is v6only");
	WL_CHECK(nw_sockopt(52, IPPROTO_TCP, TCP_NODELAY) == 1, "fd 52 lost TCP_NODELAY");
	WL_CHECK(nw_sockopt(52, SOL_SOCKET, SO_TYPE) == SOCK_STREAM, "fd 52 is not a stream socket");

	{
		int c = socket(AF_INET, SOCK_STREAM, 0);

		talk(c, 50, p50, "new client of fd 50");
		close(c);
		c = socket(AF_INET, SOCK_STREAM, 0);
		talk(c, 53, p53, "new client of fd 53");
		close(c);
	}
	WL_CHECK(listen(51, 2) == 0, "fd 51 cannot listen: %s", strerror(errno));
	talk(52, 51, p51, "fd 52 to fd 51");
	wl_check_usr1_action();
	wl_finish();
}
