/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * unclaimed_fd — holds a file descriptor of a kind a plugin set may not
 * handle, for the "dump must fail and leave the task running" tests.
 *
 *     unclaimed_fd eventfd      an eventfd at fd 20 holding the count 42
 *     unclaimed_fd socketpair   a unix socketpair at fds 20, 21 with "ping"
 *                               queued towards fd 21
 *     unclaimed_fd pidfd        a pidfd of itself at fd 20
 *
 * After SIGUSR1 it checks the object is still there with its content (a
 * failed dump must not have consumed or changed it) and reports.
 */
#include "workload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "eventfd";
	int sv[2];

	wl_init("unclaimed_fd");
	if (!strcmp(kind, "eventfd")) {
		int fd = eventfd(0, EFD_NONBLOCK);
		uint64_t v = 42;
		if (fd < 0 || dup2(fd, 20) != 20 || write(20, &v, sizeof(v)) != sizeof(v))
			wl_die("eventfd: %s", strerror(errno));
		close(fd);
	} else if (!strcmp(kind, "socketpair")) {
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || dup2(sv[0], 20) != 20 || dup2(sv[1], 21) != 21)
			wl_die("socketpair: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		if (write(20, "ping", 4) != 4)
			wl_die("socket write: %s", strerror(errno));
	} else if (!strcmp(kind, "pidfd")) {
		int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
		if (fd < 0 || dup2(fd, 20) != 20)
			wl_die("pidfd_open: %s", strerror(errno));
		close(fd);
	} else {
		wl_die("unknown kind %s (eventfd, socketpair, pidfd)", kind);
	}

	wl_ready();
	wl_wait_usr1();

	if (!strcmp(kind, "eventfd")) {
		uint64_t v = 0;
		WL_CHECK(read(20, &v, sizeof(v)) == sizeof(v) && v == 42, "eventfd count %llu, want 42 (%s)",
			 (unsigned long long)v, strerror(errno));
	} else if (!strcmp(kind, "pidfd")) {
		char path[64], text[2048], *pid;
		snprintf(path, sizeof(path), "/proc/self/fdinfo/20");
		pid = wl_read_file(path, text, sizeof(text)) > 0 ? strstr(text, "\nPid:") : NULL;
		WL_CHECK(pid && atoi(pid + 5) == getpid(), "fd 20 is not a pidfd of this process");
		WL_CHECK(syscall(SYS_pidfd_send_signal, 20, 0, NULL, 0) == 0, "pidfd_send_signal: %s",
			 strerror(errno));
	} else {
		char buf[8] = { 0 };
		ssize_t n = recv(21, buf, sizeof(buf), MSG_DONTWAIT);
		WL_CHECK(n == 4 && !memcmp(buf, "ping", 4), "socket queue holds %zd bytes \"%.4s\", want \"ping\"", n,
			 buf);
		WL_CHECK(write(21, "pong", 4) == 4, "socket write back: %s", strerror(errno));
		n = recv(20, buf, sizeof(buf), MSG_DONTWAIT);
		WL_CHECK(n == 4 && !memcmp(buf, "pong", 4), "socket pair does not connect fd 21 to fd 20");
	}
	wl_finish();
}
