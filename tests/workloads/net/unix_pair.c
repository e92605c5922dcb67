/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * unix_pair — connected unix sockets with data queued both ways.
 *
 *   fd 10/11  stream socketpair: 100000 unread bytes 10->11, 3000 bytes
 *             11->10; fd 10 O_NONBLOCK and SO_SNDBUF 50000, fd 11
 *             SO_RCVTIMEO 2.5 s
 *   fd 12/13  seqpacket pair: records of 1, 700 and 5000 bytes 12->13, one
 *             of 42 bytes 13->12; 13 has SO_PASSCRED (so it autobound a
 *             name when it sent)
 *   fd 14/15  stream pair: 500 bytes 14->15, then shutdown(14, SHUT_WR)
 *   fd 16     stream socket whose peer wrote 777 bytes and was closed
 *   fd 17/18  dgram socketpair: datagrams of 10 and 20 bytes 17->18, one
 *             empty datagram 18->17
 *
 * After SIGUSR1 every queue must hold exactly what it held (message
 * boundaries kept, nothing lost, nothing twice), names and options must be
 * the same, the shutdown and closed-peer ends must read EOF after their
 * data, and more data must flow both ways.
 *
 * "unix_pair inflight": fd 11 has a file descriptor (/dev/null) in flight
 * (SCM_RIGHTS) from fd 10: the dump must be refused; afterwards it must still arrive.
 * "unix_pair external": fd 10's peer lives in a helper process outside the
 * dumped one: the dump must be refused (no --ext-unix-sk); afterwards the
 * helper must still echo.
 * "unix_pair ext_server": fd 10 is connected to a helper process (outside
 * the dumped one) listening on DIR/net-ext.PID.sock, which echoes on every
 * connection it accepts; dumped with --ext-unix-sk, the restore connects
 * fd 10 to it again, and it must echo.
 */
#include "netwl.h"

#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>

struct name {
	struct sockaddr_un a;
	socklen_t l;
};

static void get_names(int fd, struct name *self, struct name *peer)
{
	memset(self, 0, sizeof(*self));
	memset(peer, 0, sizeof(*peer));
	self->l = peer->l = sizeof(self->a);
	if (getsockname(fd, (struct sockaddr *)&self->a, &self->l))
		self->l = 0;
	if (getpeername(fd, (struct sockaddr *)&peer->a, &peer->l))
		peer->l = 0;
}

static void check_names(int fd, const struct name *s0, const struct name *p0)
{
	struct name s, p;

	get_names(fd, &s, &p);
	WL_CHECK(s.l == s0->l && !memcmp(&s.a, &s0->a, s.l), "fd %d: its name changed", fd);
	WL_CHECK(p.l == p0->l && !memcmp(&p.a, &p0->a, p.l), "fd %d: its peer's name changed", fd);
}

static void send_rec(int fd, unsigned s, size_t off, size_t len)
{
	unsigned char buf[8192];

	nw_fill(s, off, buf, len);
	if (send(fd, buf, len, 0) != (ssize_t)len)
		wl_die("send %zu bytes on fd %d: %s", len, fd, strerror(errno));
}

static void expect_rec(int fd, unsigned s, size_t off, size_t len, const char *what)
{
	unsigned char buf[8192], want[8192];
	ssize_t n;

	if (!nw_readable(fd, 3000)) {
		wl_fail("%s: no record of %zu bytes", what, len);
		return;
	}
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	nw_fill(s, off, want, len);
	WL_CHECK(n == (ssize_t)len, "%s: record of %zd bytes, want %zu", what, n, len);
	if (n == (ssize_t)len)
		WL_CHECK(!memcmp(buf, want, len), "%s: record contents differ", what);
}

static void expect_eof(int fd, const char *what)
{
	char c;
	ssize_t n;

	WL_CHECK(nw_readable(fd, 3000), "%s: no end of stream", what);
	n = recv(fd, &c, 1, MSG_DONTWAIT);
	WL_CHECK(n == 0, "%s: read returned %zd (%s), want end of stream", what, n,
		 n < 0 ? strerror(errno) : "data");
}

static int mode_inflight(void)
{
	int sv[2], nul;
	char b = 'x';
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cb;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
			     .msg_controllen = sizeof(cb.buf) };
	struct cmsghdr *c;
	int got = -1;

	nul = open("/dev/null", O_RDONLY);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || nul < 0)
		wl_die("socketpair/open: %s", strerror(errno));
	nw_place(sv[0], 10, "pair");
	nw_place(sv[1], 11, "pair");
	memset(&cb, 0, sizeof(cb));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &nul, sizeof(int));
	if (sendmsg(10, &mh, 0) != 1)
		wl_die("sendmsg SCM_RIGHTS: %s", strerror(errno));
	close(nul);

	wl_ready();
	wl_wait_usr1();

	memset(&cb, 0, sizeof(cb));
	mh.msg_controllen = sizeof(cb.buf);
	WL_CHECK(recvmsg(11, &mh, MSG_DONTWAIT) == 1 && b == 'x', "the message with the fd is gone");
	c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(&got, CMSG_DATA(c), sizeof(int));
	WL_CHECK(got >= 0, "no fd arrived");
	if (got >= 0) {
		struct stat st;

		WL_CHECK(!fstat(got, &st) && S_ISCHR(st.st_mode), "the fd is not /dev/null");
	}
	wl_finish();
}

static int mode_external(void)
{
	int sv[2];
	char line[32] = "";
	int hp = 0;
	pid_t c;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		wl_die("socketpair: %s", strerror(errno));
	c = fork();
	if (c < 0)
		wl_die("fork: %s", strerror(errno));
	if (c == 0) {
		if (fork() == 0) {
			char buf[256];
			int n;

			setsid();
			close(sv[0]);
			n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
			if (write(sv[1], buf, (size_t)n) != n)
				_exit(1);
			while ((n = (int)read(sv[1], buf, sizeof(buf))) > 0)
				if (write(sv[1], buf, (size_t)n) != n)
					_exit(1);
			_exit(0);
		}
		_exit(0);
	}
	waitpid(c, NULL, 0);
	close(sv[1]);
	nw_place(sv[0], 10, "pair");
	if (!nw_readable(10, 5000) || read(10, line, sizeof(line) - 1) <= 0 ||
	    sscanf(line, "%d", &hp) != 1 || hp <= 1)
		wl_die("the helper did not say hello");

	wl_ready();
	wl_wait_usr1();

	{
		char buf[16] = "";

		WL_CHECK(write(10, "echo", 4) == 4, "write to the helper: %s", strerror(errno));
		WL_CHECK(nw_readable(10, 5000) && read(10, buf, sizeof(buf)) == 4 &&
				 !memcmp(buf, "echo", 4),
			 "the helper does not echo");
	}
	kill(hp, SIGKILL);
	wl_finish();
}

static int mode_ext_server(void)
{
	struct sockaddr_un a;
	socklen_t al;
	char path[200], line[32] = "";
	int hp = 0, ok = 0;
	pid_t c;

	snprintf(path, sizeof(path), "%s/net-ext.%d.sock", wl_dir(), (int)getpid());
	unlink(path);
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a.sun_path))
		wl_die("%s is too long for a socket name", path);
	memcpy(a.sun_path, path, strlen(path) + 1);
	al = (socklen_t)sizeof(a);
	c = fork();
	if (c < 0)
		wl_die("fork: %s", strerror(errno));
	if (c == 0) {
		if (fork() == 0) {
			int l = socket(AF_UNIX, SOCK_STREAM, 0), first = 1;
			char buf[256];

			/* out of our session and group: their ids are our PID,
			 * which the restore needs free */
			setsid();

			if (l < 0 || bind(l, (struct sockaddr *)&a, al) || listen(l, 4))
				_exit(1);
			for (;;) {
				int s = accept(l, NULL, NULL), n;

				if (s < 0)
					continue;
				if (first) {
					n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
					if (write(s, buf, (size_t)n) != n)
						_exit(1);
					first = 0;
				}
				while ((n = (int)read(s, buf, sizeof(buf))) > 0)
					if (write(s, buf, (size_t)n) != n)
						break;
				close(s);
			}
		}
		_exit(0);
	}
	waitpid(c, NULL, 0);
	nw_place(socket(AF_UNIX, SOCK_STREAM, 0), 10, "client");
	for (int i = 0; i < 500 && !ok; i++) {
		ok = connect(10, (struct sockaddr *)&a, al) == 0;
		if (!ok)
			usleep(10000);
	}
	if (!ok || !nw_readable(10, 5000) || read(10, line, sizeof(line) - 1) <= 0 ||
	    sscanf(line, "%d", &hp) != 1 || hp <= 1)
		wl_die("the helper server did not say hello");

	wl_ready();
	wl_wait_usr1();

	{
		char buf[16] = "";
		struct sockaddr_un pa;
		socklen_t pl = sizeof(pa);

		WL_CHECK(!getpeername(10, (struct sockaddr *)&pa, &pl) && !strcmp(pa.sun_path, path),
			 "fd 10 is not connected to %s", path);
		WL_CHECK(write(10, "echo", 4) == 4, "write to the helper: %s", strerror(errno));
		WL_CHECK(nw_readable(10, 5000) && read(10, buf, sizeof(buf)) == 4 &&
				 !memcmp(buf, "echo", 4),
			 "the helper does not echo");
	}
	kill(hp, SIGKILL);
	unlink(path);
	wl_finish();
}

int main(int argc, char **argv)
{
	struct name s0[19], p0[19];
	int sv[2], one = 1, sb = 50000;
	struct timeval tv = { 2, 500000 }, tv2;
	socklen_t l;
	unsigned char rec0[1];

	wl_init("net/unix_pair");
	if (argc > 1 && !strcmp(argv[1], "inflight"))
		return mode_inflight();
	if (argc > 1 && !strcmp(argv[1], "external"))
		return mode_external();
	if (argc > 1 && !strcmp(argv[1], "ext_server"))
		return mode_ext_server();

	/* 10/11 stream */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		wl_die("socketpair: %s", strerror(errno));
	nw_place(sv[0], 10, "stream pair");
	nw_place(sv[1], 11, "stream pair");
	if (setsockopt(10, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb)) ||
	    setsockopt(11, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		wl_die("setsockopt: %s", strerror(errno));
	/* 100000 bytes do not fit a 100000-byte buffer at once: write as 11 reads nothing */
	{
		int big = 400000;

		setsockopt(10, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		if (nw_send_stream(10, 1, 0, 100000, "10->11"))
			wl_die("cannot queue 100000 bytes");
		setsockopt(10, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
	}
	if (nw_send_stream(11, 2, 0, 3000, "11->10"))
		wl_die("cannot queue 3000 bytes");
	fcntl(10, F_SETFL, fcntl(10, F_GETFL) | O_NONBLOCK);

	/* 12/13 seqpacket */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv))
		wl_die("socketpair seqpacket: %s", strerror(errno));
	nw_place(sv[0], 12, "seqpacket pair");
	nw_place(sv[1], 13, "seqpacket pair");
	setsockopt(13, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
	send_rec(12, 3, 0, 1);
	send_rec(12, 3, 1, 700);
	send_rec(12, 3, 701, 5000);
	send_rec(13, 4, 0, 42);

	/* 14/15 stream, 14 shut down for writing */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		wl_die("socketpair: %s", strerror(errno));
	nw_place(sv[0], 14, "shutdown pair");
	nw_place(sv[1], 15, "shutdown pair");
	if (nw_send_stream(14, 5, 0, 500, "14->15") || shutdown(14, SHUT_WR))
		wl_die("shutdown pair: %s", strerror(errno));

	/* 16: peer closed */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		wl_die("socketpair: %s", strerror(errno));
	nw_place(sv[0], 16, "closed pair");
	if (nw_send_stream(sv[1], 6, 0, 777, "closed->16"))
		wl_die("closed pair");
	close(sv[1]);

	/* 17/18 dgram */
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv))
		wl_die("socketpair dgram: %s", strerror(errno));
	nw_place(sv[0], 17, "dgram pair");
	nw_place(sv[1], 18, "dgram pair");
	send_rec(17, 7, 0, 10);
	send_rec(17, 7, 10, 20);
	if (send(18, rec0, 0, 0) != 0)
		wl_die("empty datagram: %s", strerror(errno));

	for (int fd = 10; fd <= 18; fd++)
		get_names(fd, &s0[fd], &p0[fd]);
	WL_CHECK(s0[13].l > sizeof(sa_family_t), "fd 13 did not autobind");
	sb = nw_sockopt(10, SOL_SOCKET, SO_SNDBUF);

	wl_ready();
	wl_wait_usr1();

	for (int fd = 10; fd <= 18; fd++) {
		check_names(fd, &s0[fd], &p0[fd]);
		WL_CHECK(nw_sockopt(fd, SOL_SOCKET, SO_DOMAIN) == AF_UNIX, "fd %d is not a unix socket", fd);
	}
	WL_CHECK(fcntl(10, F_GETFL) & O_NONBLOCK, "fd 10 lost O_NONBLOCK");
	WL_CHECK(!(fcntl(11, F_GETFL) & O_NONBLOCK), "fd 11 got O_NONBLOCK");
	WL_CHECK(nw_sockopt(10, SOL_SOCKET, SO_SNDBUF) == sb, "fd 10 SO_SNDBUF %d, want %d",
		 nw_sockopt(10, SOL_SOCKET, SO_SNDBUF), sb);
	l = sizeof(tv2);
	WL_CHECK(!getsockopt(11, SOL_SOCKET, SO_RCVTIMEO, &tv2, &l) && tv2.tv_sec == 2 &&
			 tv2.tv_usec == 500000,
		 "fd 11 SO_RCVTIMEO changed");
	WL_CHECK(nw_sockopt(13, SOL_SOCKET, SO_PASSCRED) == 1, "fd 13 lost SO_PASSCRED");
	WL_CHECK(nw_sockopt(12, SOL_SOCKET, SO_TYPE) == SOCK_SEQPACKET, "fd 12 is not seqpacket");
	WL_CHECK(nw_sockopt(17, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM, "fd 17 is not dgram");

	/* stream pair: old data, then new both ways */
	nw_expect_stream(11, 1, 0, 100000, "10->11 queued");
	nw_expect_stream(10, 2, 0, 3000, "11->10 queued");
	nw_expect_nothing(11, 100, "10->11");
	nw_expect_nothing(10, 100, "11->10");
	nw_send_stream(10, 1, 100000, 5000, "10->11 new");
	nw_expect_stream(11, 1, 100000, 5000, "10->11 new");
	nw_send_stream(11, 2, 3000, 100, "11->10 new");
	nw_expect_stream(10, 2, 3000, 100, "11->10 new");

	/* seqpacket records */
	expect_rec(13, 3, 0, 1, "seqpacket 12->13 #1");
	expect_rec(13, 3, 1, 700, "seqpacket 12->13 #2");
	expect_rec(13, 3, 701, 5000, "seqpacket 12->13 #3");
	expect_rec(12, 4, 0, 42, "seqpacket 13->12");
	nw_expect_nothing(13, 100, "seqpacket 12->13");
	send_rec(13, 4, 42, 99);
	expect_rec(12, 4, 42, 99, "seqpacket 13->12 new");

	/* shutdown */
	nw_expect_stream(15, 5, 0, 500, "14->15 before shutdown");
	expect_eof(15, "15 after the peer's shutdown");
	WL_CHECK(send(14, "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EPIPE,
		 "fd 14 can write after shutdown(SHUT_WR)");
	nw_send_stream(15, 8, 0, 300, "15->14");
	nw_expect_stream(14, 8, 0, 300, "15->14");

	/* closed peer */
	nw_expect_stream(16, 6, 0, 777, "closed->16");
	expect_eof(16, "16 after its peer closed");

	/* dgram pair */
	expect_rec(18, 7, 0, 10, "dgram 17->18 #1");
	expect_rec(18, 7, 10, 20, "dgram 17->18 #2");
	expect_rec(17, 9, 0, 0, "dgram 18->17 empty");
	nw_expect_nothing(18, 100, "dgram 17->18");
	send_rec(17, 7, 30, 33);
	expect_rec(18, 7, 30, 33, "dgram 17->18 new");

	wl_check_usr1_action();
	wl_finish();
}
