/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * unix_listen — listening unix sockets with connections waiting in their
 * backlog, and an accepted connection.
 *
 *   fd 30  stream listener bound to DIR/net-listen.PID.sock, backlog 5
 *   fd 31  client A, connected to fd 30, not accepted (first in the backlog)
 *   fd 32  client B bound to the abstract name "ckpt-cli-PID", connected to
 *          fd 30, not accepted (second)
 *   fd 33  seqpacket listener on the abstract name "ckpt-lsp-PID"
 *   fd 34  its client, not accepted
 *   fd 35  client of fd 30, accepted as fd 36; 2000 unread bytes 35->36,
 *          1500 bytes 36->35
 *
 * After SIGUSR1: accept() on fd 30 must give A's connection, then B's
 * (with B's name as peer), and no third; fd 33 must give fd 34's; fd 36
 * must carry the listener's name and fd 35 see it as its peer; the queued
 * bytes must be there once, and everything must carry new data; a new
 * client must be able to connect.
 */
#include "netwl.h"

#include <stddef.h>

static socklen_t mkaddr(struct sockaddr_un *a, const char *name, bool abstract)
{
	size_t l = strlen(name);

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (abstract) {
		memcpy(a->sun_path + 1, name, l);
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + l);
	}
	memcpy(a->sun_path, name, l);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l + 1);
}

static int accept_wait(int l, struct sockaddr_un *peer, socklen_t *pl)
{
	if (!nw_readable(l, 3000))
		return -1;
	return accept4(l, (struct sockaddr *)peer, pl, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

/* one byte from client c arrives on accepted a */
static void same_conn(int c, int a, char tag, const char *what)
{
	char got = 0;

	WL_CHECK(send(c, &tag, 1, MSG_NOSIGNAL) == 1, "%s: send: %s", what, strerror(errno));
	WL_CHECK(nw_readable(a, 3000) && recv(a, &got, 1, MSG_DONTWAIT) == 1 && got == tag,
		 "%s: the accepted connection is not the expected client's", what);
}

int main(void)
{
	struct sockaddr_un la, ba, sa, got;
	socklen_t ll, bl, sl, gl;
	char path[200], name[64];

	wl_init("net/unix_listen");
	snprintf(path, sizeof(path), "%s/net-listen.%d.sock", wl_dir(), (int)getpid());
	unlink(path);
	ll = mkaddr(&la, path, false);
	snprintf(name, sizeof(name), "ckpt-cli-%d", (int)getpid());
	bl = mkaddr(&ba, name, true);
	snprintf(name, sizeof(name), "ckpt-lsp-%d", (int)getpid());
	sl = mkaddr(&sa, name, true);

	nw_place(socket(AF_UNIX, SOCK_STREAM, 0), 30, "listener");
	if (bind(30, (struct sockaddr *)&la, ll) || listen(30, 5))
		wl_die("listen on %s: %s", path, strerror(errno));

	/* the accepted connection first, so only A and B wait */
	nw_place(socket(AF_UNIX, SOCK_STREAM, 0), 35, "client 35");
	if (connect(35, (struct sockaddr *)&la, ll))
		wl_die("connect 35: %s", strerror(errno));
	nw_place(accept(30, NULL, NULL), 36, "accept 36");
	if (nw_send_stream(35, 1, 0, 2000, "35->36") || nw_send_stream(36, 2, 0, 1500, "36->35"))
		wl_die("queueing");

	nw_place(socket(AF_UNIX, SOCK_STREAM, 0), 31, "client A");
	if (connect(31, (struct sockaddr *)&la, ll))
		wl_die("connect A: %s", strerror(errno));
	nw_place(socket(AF_UNIX, SOCK_STREAM, 0), 32, "client B");
	if (bind(32, (struct sockaddr *)&ba, bl) || connect(32, (struct sockaddr *)&la, ll))
		wl_die("connect B: %s", strerror(errno));

	nw_place(socket(AF_UNIX, SOCK_SEQPACKET, 0), 33, "seqpacket listener");
	if (bind(33, (struct sockaddr *)&sa, sl) || listen(33, 3))
		wl_die("seqpacket listen: %s", strerror(errno));
	nw_place(socket(AF_UNIX, SOCK_SEQPACKET, 0), 34, "seqpacket client");
	if (connect(34, (struct sockaddr *)&sa, sl))
		wl_die("seqpacket connect: %s", strerror(errno));

	wl_ready();
	wl_wait_usr1();

	gl = sizeof(got);
	WL_CHECK(!getsockname(30, (struct sockaddr *)&got, &gl) && !strcmp(got.sun_path, path),
		 "fd 30 is not bound to %s", path);
	WL_CHECK(nw_sockopt(30, SOL_SOCKET, SO_ACCEPTCONN) == 1, "fd 30 does not listen");
	WL_CHECK(nw_sockopt(33, SOL_SOCKET, SO_ACCEPTCONN) == 1, "fd 33 does not listen");
	gl = sizeof(got);
	WL_CHECK(!getsockname(36, (struct sockaddr *)&got, &gl) && !strcmp(got.sun_path, path),
		 "accepted fd 36 does not carry the listener's name");
	gl = sizeof(got);
	WL_CHECK(!getpeername(35, (struct sockaddr *)&got, &gl) && !strcmp(got.sun_path, path),
		 "fd 35's peer is not %s", path);
	gl = sizeof(got);
	WL_CHECK(!getsockname(32, (struct sockaddr *)&got, &gl) && gl == bl && !memcmp(&got, &ba, bl),
		 "client B lost its name");

	{
		struct sockaddr_un pa;
		socklen_t pl = sizeof(pa);
		int a = accept_wait(30, &pa, &pl), b;

		WL_CHECK(a >= 0, "no first connection waits on fd 30");
		if (a >= 0) {
			same_conn(31, a, 'A', "first accept");
			WL_CHECK(pl <= sizeof(sa_family_t), "client A has a name now");
		}
		pl = sizeof(pa);
		b = accept_wait(30, &pa, &pl);
		WL_CHECK(b >= 0, "no second connection waits on fd 30");
		if (b >= 0) {
			same_conn(32, b, 'B', "second accept");
			WL_CHECK(pl == bl && !memcmp(&pa, &ba, bl), "the second connection is not from B's name");
		}
		WL_CHECK(!nw_readable(30, 100), "a third connection waits on fd 30");
	}
	{
		int a = accept_wait(33, NULL, NULL);

		WL_CHECK(a >= 0, "no connection waits on fd 33");
		if (a >= 0)
			same_conn(34, a, 'S', "seqpacket accept");
	}

	nw_expect_stream(36, 1, 0, 2000, "35->36 queued");
	nw_expect_stream(35, 2, 0, 1500, "36->35 queued");
	nw_expect_nothing(36, 100, "35->36");
	nw_expect_nothing(35, 100, "36->35");
	nw_send_stream(35, 1, 2000, 3000, "35->36 new");
	nw_expect_stream(36, 1, 2000, 3000, "35->36 new");
	nw_send_stream(36, 2, 1500, 700, "36->35 new");
	nw_expect_stream(35, 2, 1500, 700, "36->35 new");

	{
		int c = socket(AF_UNIX, SOCK_STREAM, 0), a;

		WL_CHECK(c >= 0 && !connect(c, (struct sockaddr *)&la, ll), "a new client cannot connect: %s",
			 strerror(errno));
		a = accept_wait(30, NULL, NULL);
		WL_CHECK(a >= 0, "the new client was not accepted");
		if (a >= 0 && c >= 0)
			same_conn(c, a, 'N', "new client");
	}
	unlink(path);
	wl_check_usr1_action();
	wl_finish();
}
