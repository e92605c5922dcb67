/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tcp_locked ADDR PORT — one TCP connection to a peer outside the dumped
 * tree (tests/workloads/net/tcp_streamer), with bytes flowing both ways all
 * the time, the dump and the restore included (needs --tcp-established).
 * tcp_locked listen ADDR — the other way round: listen on ADDR (port from
 * bind(0), written to $CKPT_TEST_DIR/locked.port), take one connection,
 * close the listener.
 *
 * Stream 1 comes from the peer, stream 2 goes to it; every byte is checked
 * at its offset, so a lost, repeated or reordered byte fails.  After
 * SIGUSR1 it streams 1.5 s more, shuts its sending side, reads to the end,
 * and writes "got=N sent=M" to $CKPT_TEST_DIR/locked.count: the scenario
 * compares that with what the peer counted.  A reset fails it.
 *
 * CKPT_TEST_NETNS=PATH: join that network namespace first (a tree with a
 * namespace of its own); at the end the socket must still belong to the
 * namespace the process is in (the restore made both in the new one).
 * There fd 41 is a UDP socket bound to device eth0 (SO_BINDTODEVICE),
 * which must stay bound to it.
 */
#include "netwl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <sched.h>
#include <sys/ioctl.h>

#define CHUNK 256

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	size_t got = 0, sent = 0;
	uint64_t stop_at = 0, give_up = 0;
	bool shut = false, listening;
	const char *addr;
	int s;

	const char *ns = getenv("CKPT_TEST_NETNS");

	if (ns && *ns) {
		int fd = open(ns, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNET))
			wl_die("cannot join network namespace %s: %s", ns, strerror(errno));
		close(fd);
	}
	wl_init("tcp_locked");
	if (argc != 3)
		wl_die("usage: tcp_locked ADDR PORT | tcp_locked listen ADDR");
	listening = argc == 3 && !strcmp(argv[1], "listen");
	addr = listening ? argv[2] : argv[1];
	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(listening ? 0 : (uint16_t)atoi(argv[2]));
		if (inet_pton(AF_INET6, addr, &a->sin6_addr) != 1)
			wl_die("bad address %s", addr);
		sl = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(listening ? 0 : (uint16_t)atoi(argv[2]));
		if (inet_pton(AF_INET, addr, &a->sin_addr) != 1)
			wl_die("bad address %s", addr);
		sl = sizeof(*a);
	}
	s = socket(ss.ss_family, SOCK_STREAM, 0);
	if (listening) {
		char path[4096], tmp[4200];
		int l = s;
		FILE *f;

		if (l < 0 || bind(l, (struct sockaddr *)&ss, sl) < 0 || listen(l, 1) < 0 ||
		    getsockname(l, (struct sockaddr *)&ss, &sl) < 0)
			wl_die("listen on %s: %s", addr, strerror(errno));
		snprintf(path, sizeof(path), "%s/locked.port", wl_dir());
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		f = fopen(tmp, "w");
		if (!f)
			wl_die("%s: %s", tmp, strerror(errno));
		fprintf(f, "%u\n", ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
							 : ((struct sockaddr_in6 *)&ss)->sin6_port));
		fclose(f);
		rename(tmp, path);
		s = accept(l, NULL, NULL);
		if (s < 0)
			wl_die("accept: %s", strerror(errno));
		close(l);
	} else if (s < 0 || connect(s, (struct sockaddr *)&ss, sl) < 0) {
		wl_die("connect to %s port %s: %s", addr, argv[2], strerror(errno));
	}
	nw_place(s, 40, "socket");
	s = 40;
	fcntl(s, F_SETFL, O_NONBLOCK);
	if (ns && *ns) {
		int u = socket(AF_INET, SOCK_DGRAM, 0);
		struct sockaddr_in any = { .sin_family = AF_INET };

		if (u < 0 || setsockopt(u, SOL_SOCKET, SO_BINDTODEVICE, "eth0", 4) < 0 ||
		    bind(u, (struct sockaddr *)&any, sizeof(any)) < 0)
			wl_die("UDP socket on eth0: %s", strerror(errno));
		nw_place(u, 41, "udp socket");
	}
	wl_ready();

	for (;;) {
		unsigned char buf[65536];
		struct pollfd pf = { .fd = s, .events = POLLIN };
		uint64_t now;
		ssize_t n;

		if (poll(&pf, 1, 5) < 0 && errno != EINTR)
			wl_die("poll: %s", strerror(errno));
		now = wl_now_ns(1 /* CLOCK_MONOTONIC */);
		if (wl_usr1 && !stop_at) {
			stop_at = now + 1500000000ULL;
			give_up = now + 30000000000ULL;
		}
		n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			for (ssize_t i = 0; i < n; i++)
				if (buf[i] != nw_byte(1, got + (size_t)i)) {
					wl_fail("byte %zu from the peer is 0x%02x, want 0x%02x",
						got + (size_t)i, buf[i], nw_byte(1, got + (size_t)i));
					wl_finish();
				}
			got += (size_t)n;
		} else if (n == 0) {
			if (!shut)
				wl_fail("the peer ended the stream before we did (after %zu bytes)", got);
			break;
		} else if (errno != EAGAIN && errno != EINTR) {
			wl_fail("recv after %zu bytes: %s", got, strerror(errno));
			break;
		}
		if (!shut) {
			unsigned char out[CHUNK];

			nw_fill(2, sent, out, sizeof(out));
			n = send(s, out, sizeof(out), MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				wl_fail("send after %zu bytes: %s", sent, strerror(errno));
				break;
			}
		}
		if (stop_at && !shut && now >= stop_at) {
			if (shutdown(s, SHUT_WR) < 0) {
				wl_fail("shutdown: %s", strerror(errno));
				break;
			}
			shut = true;
		}
		if (give_up && now >= give_up) {
			wl_fail("the peer did not end its stream within 30 s (got %zu bytes)", got);
			break;
		}
	}
	{
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/locked.count", wl_dir());
		f = fopen(path, "w");
		if (f) {
			fprintf(f, "got=%zu sent=%zu\n", got, sent);
			fclose(f);
		}
	}
	{
		struct stat a, b;
		int nsfd = ioctl(s, SIOCGSKNS);

		WL_CHECK(nsfd >= 0 && fstat(nsfd, &a) == 0 && stat("/proc/self/ns/net", &b) == 0 &&
				 a.st_ino == b.st_ino,
			 "the socket is not in the network namespace of the process");
		if (nsfd >= 0)
			close(nsfd);
	}
	if (ns && *ns) {
		char dev[32] = "";
		socklen_t dl = sizeof(dev) - 1;

		WL_CHECK(getsockopt(41, SOL_SOCKET, SO_BINDTODEVICE, dev, &dl) == 0 &&
				 !strcmp(dev, "eth0"),
			 "fd 41: bound to device '%s', want eth0", dev);
	}
	WL_CHECK(got > 0 && sent > 0, "nothing flowed: got %zu, sent %zu", got, sent);
	wl_finish();
}
