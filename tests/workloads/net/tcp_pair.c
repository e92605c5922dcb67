/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tcp_pair — established TCP connections between a client and a server
 * socket of this process, with unread data both ways (needs
 * --tcp-established).
 *
 *   fd 40  IPv4 listener on 127.0.0.1 (port from bind(0)), SO_RCVBUF 64 KiB
 *   fd 41  client connected to it: TCP_NODELAY, SO_SNDBUF 64 KiB; it wrote
 *          until its send buffer was full, so bytes wait in fd 42's receive
 *          queue and in its own send queue (some never sent: window full)
 *   fd 42  the accepted server end: SO_KEEPALIVE, TCP_KEEPIDLE 77; wrote
 *          2000 bytes fd 41 has not read
 *   fd 46  IPv6 listener on ::ffff:127.0.0.1 (IPV6_V6ONLY off), above the
 *          fd of its accepted connection (restored after it)
 *   fd 44  IPv6 client, fd 45 its accepted end: 1000 bytes unread each way
 *
 * After SIGUSR1: every byte must arrive once and in order, more data must
 * flow both ways, addresses and options must be the same and the
 * listeners must accept new connections.  With a failed dump (or -R) the
 * same checks hold for the original process.
 */
#include "netwl.h"

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>

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

static void check_names(int fd, const struct names *n0)
{
	struct names n;

	names_of(fd, &n);
	WL_CHECK(n.sl == n0->sl && !memcmp(&n.s, &n0->s, n.sl), "fd %d: its local address changed", fd);
	WL_CHECK(n.pl == n0->pl && !memcmp(&n.p, &n0->p, n.pl), "fd %d: its peer address changed", fd);
}

static int listener(int family, int at, int rcvbuf)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, zero = 0;

	memset(&ss, 0, sizeof(ss));
	nw_place(socket(family, SOCK_STREAM, 0), at, "listener");
	setsockopt(at, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (rcvbuf)
		setsockopt(at, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&ss;

		s->sin_family = AF_INET;
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sl = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

		setsockopt(at, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		s->sin6_family = AF_INET6;
		inet_pton(AF_INET6, "::ffff:127.0.0.1", &s->sin6_addr);
		sl = sizeof(*s);
	}
	if (bind(at, (struct sockaddr *)&ss, sl) || listen(at, 4))
		wl_die("listen (family %d): %s", family, strerror(errno));
	return at;
}

static void connect_to(int c, int l)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(l, (struct sockaddr *)&ss, &sl) || connect(c, (struct sockaddr *)&ss, sl))
		wl_die("connect: %s", strerror(errno));
}

/* A new client of listener l can connect and talk. */
static void new_client(int l, int family, const char *what)
{
	int c = socket(family, SOCK_STREAM, 0), a;
	char x = 'n', y = 0;

	connect_to(c, l);
	WL_CHECK(nw_readable(l, 3000), "%s: nothing to accept", what);
	a = accept(l, NULL, NULL);
	WL_CHECK(a >= 0 && send(c, &x, 1, 0) == 1 && nw_readable(a, 3000) && recv(a, &y, 1, 0) == 1 &&
			 y == x,
		 "%s: a new connection does not work", what);
	close(c);
	if (a >= 0)
		close(a);
}

int main(int argc, char **argv)
{
	static const int fds[] = { 40, 41, 42, 44, 45, 46 };
	struct names n0[47];
	int one = 1, idle = 77, buf = 65536;
	size_t c2s = 0;
	int outq = 0;

	(void)argc;
	(void)argv;
	wl_init("net/tcp_pair");

	/* IPv4 */
	listener(AF_INET, 40, buf);
	nw_place(socket(AF_INET, SOCK_STREAM, 0), 41, "client");
	setsockopt(41, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(41, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	connect_to(41, 40);
	nw_place(accept(40, NULL, NULL), 42, "accept");
	setsockopt(42, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(42, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	if (nw_send_stream(42, 2, 0, 2000, "42->41"))
		wl_die("queueing 42->41");
	/* fill: the peer's receive buffer, then our send buffer */
	for (int stall = 0; stall < 20;) {
		unsigned char b[4096];
		ssize_t n;

		nw_fill(1, c2s, b, sizeof(b));
		n = send(41, b, sizeof(b), MSG_DONTWAIT);
		if (n > 0) {
			c2s += (size_t)n;
			stall = 0;
			continue;
		}
		if (n < 0 && errno != EAGAIN)
			wl_die("send: %s", strerror(errno));
		stall++;
		usleep(10000);
	}
	ioctl(41, SIOCOUTQ, &outq);
	if (outq <= 0)
		wl_die("nothing stayed in the client's send queue (%zu bytes written)", c2s);

	/* IPv6 (v4-mapped loopback) */
	listener(AF_INET6, 46, 0);
	nw_place(socket(AF_INET6, SOCK_STREAM, 0), 44, "client6");
	connect_to(44, 46);
	nw_place(accept(46, NULL, NULL), 45, "accept6");
	if (nw_send_stream(44, 3, 0, 1000, "44->45") || nw_send_stream(45, 4, 0, 1000, "45->44"))
		wl_die("queueing v6");
	usleep(50000);

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		names_of(fds[i], &n0[fds[i]]);
	printf("ready: %zu bytes 41->42 (%d in 41's send queue)\n", c2s, outq);

	wl_ready();
	wl_wait_usr1();

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		check_names(fds[i], &n0[fds[i]]);
	WL_CHECK(nw_sockopt(41, IPPROTO_TCP, TCP_NODELAY) == 1, "fd 41 lost TCP_NODELAY");
	WL_CHECK(nw_sockopt(42, SOL_SOCKET, SO_KEEPALIVE) == 1, "fd 42 lost SO_KEEPALIVE");
	WL_CHECK(nw_sockopt(42, IPPROTO_TCP, TCP_KEEPIDLE) == 77, "fd 42 TCP_KEEPIDLE is %d",
		 nw_sockopt(42, IPPROTO_TCP, TCP_KEEPIDLE));
	WL_CHECK(nw_sockopt(40, SOL_SOCKET, SO_ACCEPTCONN) == 1, "fd 40 does not listen");

	nw_expect_stream(41, 2, 0, 2000, "42->41 queued");
	nw_expect_stream(42, 1, 0, c2s, "41->42 queued");
	nw_expect_stream(45, 3, 0, 1000, "44->45 queued");
	nw_expect_stream(44, 4, 0, 1000, "45->44 queued");
	nw_expect_nothing(41, 200, "42->41");
	nw_expect_nothing(42, 0, "41->42");
	nw_expect_nothing(44, 0, "45->44");
	nw_expect_nothing(45, 0, "44->45");

	nw_send_stream(41, 1, c2s, 50000, "41->42 new");
	nw_expect_stream(42, 1, c2s, 50000, "41->42 new");
	nw_send_stream(42, 2, 2000, 30000, "42->41 new");
	nw_expect_stream(41, 2, 2000, 30000, "42->41 new");
	nw_send_stream(44, 3, 1000, 5000, "44->45 new");
	nw_expect_stream(45, 3, 1000, 5000, "44->45 new");
	nw_send_stream(45, 4, 1000, 5000, "45->44 new");
	nw_expect_stream(44, 4, 1000, 5000, "45->44 new");

	new_client(40, AF_INET, "IPv4 listener");
	WL_CHECK(nw_sockopt(46, SOL_SOCKET, SO_ACCEPTCONN) == 1, "fd 46 does not listen");
	new_client(46, AF_INET6, "IPv6 listener");
	wl_check_usr1_action();
	wl_finish();
}
