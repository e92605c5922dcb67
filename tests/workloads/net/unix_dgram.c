/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * unix_dgram — a unix datagram socket bound to a path, with datagrams
 * from several senders waiting in its queue.
 *
 *   fd 20  bound to DIR/net-dgram.PID.sock (file mode 0640), 6 datagrams
 *          queued: 1, 0, 1000, 64, 300 and 5000 bytes
 *   fd 21  unnamed sender (sendto)
 *   fd 22  sender bound to the abstract name "ckpt-dgram-PID"
 *   fd 23  unnamed sender connect()ed to fd 20's path
 *   fd 24  bound to the relative name "net-rel.PID.sock" in DIR, the
 *          workload's cwd
 *
 * After SIGUSR1: the datagrams must come out in order, each whole with
 * its size (the empty one too) and its sender's address; then nothing
 * more.  Names, the socket file and fd 23's connection must be back, and
 * new datagrams must flow.
 */
#include "netwl.h"

#include <stddef.h>

static socklen_t mkaddr(struct sockaddr_un *a, const char *path, bool abstract)
{
	size_t l = strlen(path);

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (abstract) {
		memcpy(a->sun_path + 1, path, l);
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + l);
	}
	memcpy(a->sun_path, path, l);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l + 1);
}

static void send_to(int fd, const struct sockaddr_un *to, socklen_t tl, unsigned s, size_t off,
		    size_t len)
{
	unsigned char buf[8192];

	nw_fill(s, off, buf, len);
	if (sendto(fd, buf, len, 0, (const struct sockaddr *)to, tl) != (ssize_t)len)
		wl_die("sendto %zu bytes from fd %d: %s", len, fd, strerror(errno));
}

struct want {
	unsigned s;
	size_t off, len;
	int from; /* sender fd: 21/23 unnamed, 22 abstract */
};

int main(void)
{
	static const struct want q[] = {
		{ 1, 0, 1, 21 },   { 2, 0, 0, 22 },    { 1, 1, 1000, 21 },
		{ 3, 0, 64, 23 },  { 2, 0, 300, 22 },  { 1, 1001, 5000, 21 },
	};
	struct sockaddr_un srv, ab, rel, got;
	socklen_t srvl, abl, rell, gl;
	char path[200], relname[64], relpath[300];
	unsigned char buf[8192], want[8192];
	struct stat st;

	wl_init("net/unix_dgram");
	snprintf(path, sizeof(path), "%s/net-dgram.%d.sock", wl_dir(), (int)getpid());
	snprintf(relname, sizeof(relname), "net-rel.%d.sock", (int)getpid());
	snprintf(relpath, sizeof(relpath), "%s/%s", wl_dir(), relname);
	unlink(path);
	unlink(relpath);
	srvl = mkaddr(&srv, path, false);
	{
		char an[64];

		snprintf(an, sizeof(an), "ckpt-dgram-%d", (int)getpid());
		abl = mkaddr(&ab, an, true);
	}

	nw_place(socket(AF_UNIX, SOCK_DGRAM, 0), 20, "server");
	if (bind(20, (struct sockaddr *)&srv, srvl) || chmod(path, 0640))
		wl_die("bind %s: %s", path, strerror(errno));
	nw_place(socket(AF_UNIX, SOCK_DGRAM, 0), 21, "sender 1");
	nw_place(socket(AF_UNIX, SOCK_DGRAM, 0), 22, "sender 2");
	if (bind(22, (struct sockaddr *)&ab, abl))
		wl_die("bind abstract: %s", strerror(errno));
	nw_place(socket(AF_UNIX, SOCK_DGRAM, 0), 23, "sender 3");
	if (connect(23, (struct sockaddr *)&srv, srvl))
		wl_die("connect: %s", strerror(errno));
	nw_place(socket(AF_UNIX, SOCK_DGRAM, 0), 24, "relative");
	if (chdir(wl_dir()))
		wl_die("chdir: %s", strerror(errno));
	rell = mkaddr(&rel, relname, false);
	if (bind(24, (struct sockaddr *)&rel, rell))
		wl_die("bind %s: %s", relname, strerror(errno));

	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		if (q[i].from == 23) {
			nw_fill(q[i].s, q[i].off, buf, q[i].len);
			if (send(23, buf, q[i].len, 0) != (ssize_t)q[i].len)
				wl_die("send on the connected socket: %s", strerror(errno));
		} else {
			send_to(q[i].from, &srv, srvl, q[i].s, q[i].off, q[i].len);
		}
	}

	wl_ready();
	wl_wait_usr1();

	gl = sizeof(got);
	WL_CHECK(!getsockname(20, (struct sockaddr *)&got, &gl) && !strcmp(got.sun_path, path),
		 "fd 20 is not bound to %s", path);
	WL_CHECK(!stat(path, &st) && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0640,
		 "%s is not a socket file with mode 0640", path);
	gl = sizeof(got);
	WL_CHECK(!getsockname(22, (struct sockaddr *)&got, &gl) && gl == abl && !memcmp(&got, &ab, abl),
		 "fd 22 lost its abstract name");
	gl = sizeof(got);
	WL_CHECK(!getpeername(23, (struct sockaddr *)&got, &gl) && !strcmp(got.sun_path, path),
		 "fd 23 is not connected to %s", path);
	gl = sizeof(got);
	WL_CHECK(!getsockname(24, (struct sockaddr *)&got, &gl) && !strcmp(got.sun_path, relname),
		 "fd 24 is not bound to %s", relname);
	WL_CHECK(!stat(relpath, &st) && S_ISSOCK(st.st_mode), "%s is not a socket file", relpath);

	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		ssize_t n;

		if (!nw_readable(20, 3000)) {
			wl_fail("datagram %zu is missing", i + 1);
			break;
		}
		gl = sizeof(got);
		memset(&got, 0, sizeof(got));
		n = recvfrom(20, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&got, &gl);
		nw_fill(q[i].s, q[i].off, want, q[i].len);
		if (n != (ssize_t)q[i].len || memcmp(buf, want, q[i].len)) {
			wl_fail("datagram %zu: %zd bytes, want %zu (or its contents differ)", i + 1, n,
				q[i].len);
			continue;
		}
		if (q[i].from == 22)
			WL_CHECK(gl == abl && !memcmp(&got, &ab, abl),
				 "datagram %zu does not come from the abstract name", i + 1);
		else
			WL_CHECK(gl <= sizeof(sa_family_t), "datagram %zu has a sender name", i + 1);
	}
	nw_expect_nothing(20, 100, "fd 20");

	/* new traffic */
	nw_fill(4, 0, buf, 10);
	WL_CHECK(send(23, buf, 10, 0) == 10, "send on fd 23: %s", strerror(errno));
	WL_CHECK(nw_readable(20, 3000) && recv(20, want, sizeof(want), MSG_DONTWAIT) == 10 &&
			 !memcmp(buf, want, 10),
		 "fd 23's new datagram did not arrive");
	{
		struct sockaddr_un ra;
		socklen_t ral = mkaddr(&ra, relpath, false);

		WL_CHECK(sendto(21, buf, 7, 0, (struct sockaddr *)&ra, ral) == 7, "sendto %s: %s",
			 relpath, strerror(errno));
		WL_CHECK(nw_readable(24, 3000) && recv(24, want, sizeof(want), MSG_DONTWAIT) == 7,
			 "fd 24 got nothing");
	}
	send_to(22, &srv, srvl, 5, 0, 123);
	gl = sizeof(got);
	WL_CHECK(nw_readable(20, 3000) &&
			 recvfrom(20, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&got, &gl) == 123 &&
			 gl == abl,
		 "fd 22's new datagram did not arrive from its name");
	unlink(path);
	unlink(relpath);
	wl_check_usr1_action();
	wl_finish();
}
