/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * tcp_streamer ADDR PORTFILE RESULT — the peer outside the dumped tree for
 * tcp_locked: listens on ADDR (port from bind(0), written to PORTFILE),
 * takes one connection and sends stream 1 in 256-byte chunks every 5 ms
 * while it checks stream 2 coming back, until the other side ends its
 * stream; then it ends its own and writes "PASS got=N sent=M" or
 * "FAIL: why" to RESULT.
 * tcp_streamer connect ADDR PORT RESULT — the same as the client of a
 * tcp_locked that listens.  A reset (ECONNRESET, EPIPE) is a failure: the
 * network lock must keep the peer from seeing one while the tree is gone.
 */
#include "netwl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <time.h>

static void put_file(const char *path, const char *text)
{
	char tmp[4200];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		exit(3);
	fputs(text, f);
	fclose(f);
	rename(tmp, path);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	size_t got = 0, sent = 0;
	char res[512], port[32];
	const char *result;
	uint64_t end;
	int l, s, one = 1;

	if (argc == 5 && !strcmp(argv[1], "connect")) {
		memset(&ss, 0, sizeof(ss));
		if (strchr(argv[2], ':')) {
			((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
			((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)atoi(argv[3]));
			inet_pton(AF_INET6, argv[2], &((struct sockaddr_in6 *)&ss)->sin6_addr);
			sl = sizeof(struct sockaddr_in6);
		} else {
			((struct sockaddr_in *)&ss)->sin_family = AF_INET;
			((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)atoi(argv[3]));
			inet_pton(AF_INET, argv[2], &((struct sockaddr_in *)&ss)->sin_addr);
			sl = sizeof(struct sockaddr_in);
		}
		result = argv[4];
		s = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0 || connect(s, (struct sockaddr *)&ss, sl) < 0) {
			snprintf(res, sizeof(res), "FAIL: connect to %s port %s: %s\n", argv[2], argv[3],
				 strerror(errno));
			put_file(result, res);
			return 1;
		}
		fcntl(s, F_SETFL, O_NONBLOCK);
	} else if (argc == 4) {
		result = argv[3];
		memset(&ss, 0, sizeof(ss));
		if (strchr(argv[1], ':')) {
			((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
			inet_pton(AF_INET6, argv[1], &((struct sockaddr_in6 *)&ss)->sin6_addr);
			sl = sizeof(struct sockaddr_in6);
		} else {
			((struct sockaddr_in *)&ss)->sin_family = AF_INET;
			inet_pton(AF_INET, argv[1], &((struct sockaddr_in *)&ss)->sin_addr);
			sl = sizeof(struct sockaddr_in);
		}
		l = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (l < 0 || bind(l, (struct sockaddr *)&ss, sl) < 0 || listen(l, 1) < 0 ||
		    getsockname(l, (struct sockaddr *)&ss, &sl) < 0) {
			snprintf(res, sizeof(res), "FAIL: listen on %s: %s\n", argv[1], strerror(errno));
			put_file(result, res);
			return 1;
		}
		snprintf(port, sizeof(port), "%u\n",
			 ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						       : ((struct sockaddr_in6 *)&ss)->sin6_port));
		put_file(argv[2], port);
		s = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		close(l);
		if (s < 0) {
			snprintf(res, sizeof(res), "FAIL: accept: %s\n", strerror(errno));
			put_file(result, res);
			return 1;
		}
	} else {
		fprintf(stderr, "usage: tcp_streamer ADDR PORTFILE RESULT | tcp_streamer connect ADDR PORT RESULT\n");
		return 2;
	}
	end = now_ms() + 180000;
	res[0] = '\0';
	while (!res[0]) {
		unsigned char buf[65536], out[256];
		struct pollfd pf = { .fd = s, .events = POLLIN };
		ssize_t n;

		poll(&pf, 1, 5);
		n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			for (ssize_t i = 0; i < n && !res[0]; i++)
				if (buf[i] != nw_byte(2, got + (size_t)i))
					snprintf(res, sizeof(res), "FAIL: byte %zu from the tree is 0x%02x, want 0x%02x\n",
						 got + (size_t)i, buf[i], nw_byte(2, got + (size_t)i));
			got += (size_t)n;
			continue;
		}
		if (n == 0) {
			if (shutdown(s, SHUT_WR) < 0)
				snprintf(res, sizeof(res), "FAIL: shutdown: %s\n", strerror(errno));
			else
				snprintf(res, sizeof(res), "PASS got=%zu sent=%zu\n", got, sent);
			break;
		}
		if (errno != EAGAIN && errno != EINTR) {
			snprintf(res, sizeof(res), "FAIL: recv after %zu bytes: %s\n", got, strerror(errno));
			break;
		}
		nw_fill(1, sent, out, sizeof(out));
		n = send(s, out, sizeof(out), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			sent += (size_t)n;
		else if (n < 0 && errno != EAGAIN && errno != EINTR)
			snprintf(res, sizeof(res), "FAIL: send after %zu bytes: %s\n", sent, strerror(errno));
		if (now_ms() > end)
			snprintf(res, sizeof(res), "FAIL: the tree did not end its stream in 180 s\n");
	}
	put_file(result, res);
	/* let the last bytes and our FIN go out before the socket closes */
	sleep(1);
	close(s);
	return res[0] == 'P' ? 0 : 1;
}
