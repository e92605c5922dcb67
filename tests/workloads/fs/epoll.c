/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * epoll — an epoll set over eventfd, timerfd, signalfd and a pipe.
 *
 *   fd 20  eventfd, count 5          EPOLLIN | EPOLLET       data 0xa0a0...
 *   fd 21  timerfd, expired, unread  EPOLLIN | EPOLLONESHOT  data 0x21
 *   fd 22  signalfd {SIGUSR2}        EPOLLIN                 data 0x22
 *   fd 23  pipe read end, 3 bytes    EPOLLIN                 data 0x23
 *   fd 24  pipe write end            EPOLLOUT | EPOLLET      data 0x24
 *   fd 25  eventfd, count 0          EPOLLIN                 data 0x25
 *   fd 30  the epoll instance holding 20..25 (never waited on before
 *          the dump, so every edge is fresh)
 *   fd 26  eventfd, count 1, in epoll fd 31 with EPOLLONESHOT, data 0x26,
 *          reported once before the dump: it must stay disabled
 *
 * After SIGUSR1 (and SIGUSR2 queued to itself, blocked): the first wait
 * reports exactly 20, 21, 22, 23, 24 with their data; a second wait only
 * the level-triggered 22 and 23; a new edge on 20 reports it again.
 */
#include "fsutil.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>

#define D20 0xa0a0a0a0deadbeefULL

struct want {
	int fd;
	uint32_t events;
	uint64_t data;
};

static const struct want wants[] = {
	{ 20, EPOLLIN | EPOLLET, D20 },     { 21, EPOLLIN | EPOLLONESHOT, 0x21 }, { 22, EPOLLIN, 0x22 },
	{ 23, EPOLLIN, 0x23 },              { 24, EPOLLOUT | EPOLLET, 0x24 },     { 25, EPOLLIN, 0x25 },
};

/* Bit i set when wants[i] was reported (with its data and event). */
static unsigned int wait_set(int ep, const char *when)
{
	struct epoll_event ev[16];
	unsigned int set = 0;
	int n = epoll_wait(ep, ev, 16, 0);

	if (n < 0) {
		wl_fail("%s: epoll_wait: %s", when, strerror(errno));
		return 0;
	}
	for (int i = 0; i < n; i++) {
		size_t k;
		for (k = 0; k < sizeof(wants) / sizeof(wants[0]); k++)
			if (wants[k].data == ev[i].data.u64)
				break;
		if (k == sizeof(wants) / sizeof(wants[0])) {
			wl_fail("%s: event with unknown data %#llx", when, (unsigned long long)ev[i].data.u64);
			continue;
		}
		if (!(ev[i].events & (wants[k].events & (EPOLLIN | EPOLLOUT))))
			wl_fail("%s: fd %d reported events %#x", when, wants[k].fd, ev[i].events);
		set |= 1u << k;
	}
	return set;
}

int main(void)
{
	struct itimerspec its = { { 0, 0 }, { 0, 1000000 } };
	struct epoll_event ev;
	sigset_t m;
	int p[2];
	uint64_t v;
	unsigned int got;

	wl_init("fs/epoll");
	sigemptyset(&m);
	sigaddset(&m, SIGUSR2);
	sigprocmask(SIG_BLOCK, &m, NULL);

	fs_place(eventfd(5, EFD_NONBLOCK), 20, "eventfd");
	fs_place(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), 21, "timerfd");
	if (timerfd_settime(21, 0, &its, NULL))
		wl_die("timerfd_settime: %s", strerror(errno));
	fs_place(signalfd(-1, &m, SFD_NONBLOCK), 22, "signalfd");
	if (pipe2(p, O_NONBLOCK))
		wl_die("pipe: %s", strerror(errno));
	fs_place(p[0], 23, "pipe");
	fs_place(p[1], 24, "pipe");
	fs_write_all(24, "abc", 3, "pipe");
	fs_place(eventfd(0, EFD_NONBLOCK), 25, "eventfd empty");
	fs_place(epoll_create1(0), 30, "epoll");
	for (size_t k = 0; k < sizeof(wants) / sizeof(wants[0]); k++) {
		ev.events = wants[k].events;
		ev.data.u64 = wants[k].data;
		if (epoll_ctl(30, EPOLL_CTL_ADD, wants[k].fd, &ev))
			wl_die("epoll_ctl add %d: %s", wants[k].fd, strerror(errno));
	}

	fs_place(eventfd(1, EFD_NONBLOCK), 26, "eventfd oneshot");
	fs_place(epoll_create1(EPOLL_CLOEXEC), 31, "epoll 2");
	ev.events = EPOLLIN | EPOLLONESHOT;
	ev.data.u64 = 0x26;
	if (epoll_ctl(31, EPOLL_CTL_ADD, 26, &ev))
		wl_die("epoll_ctl: %s", strerror(errno));
	if (epoll_wait(31, &ev, 1, 1000) != 1 || ev.data.u64 != 0x26)
		wl_die("epoll 31 did not report fd 26");
	{
		struct timespec d = { 0, 20000000 };
		nanosleep(&d, NULL); /* the timer expires */
	}

	wl_ready();
	wl_wait_usr1();

	WL_CHECK(kill(getpid(), SIGUSR2) == 0, "kill: %s", strerror(errno));
	got = wait_set(30, "first wait");
	WL_CHECK(got == 0x1f, "first wait reported set %#x, want %#x (fds 20..24, not 25)", got, 0x1f);
	got = wait_set(30, "second wait");
	WL_CHECK(got == 0x0c, "second wait reported set %#x, want %#x (only level-triggered 22, 23)", got, 0x0c);
	v = 1;
	WL_CHECK(write(20, &v, sizeof(v)) == sizeof(v), "eventfd write: %s", strerror(errno));
	got = wait_set(30, "after a new edge");
	WL_CHECK(got == 0x0d, "after a new edge on fd 20: set %#x, want %#x", got, 0x0d);
	WL_CHECK(epoll_wait(31, &ev, 1, 0) == 0, "epoll 31 reports its one-shot item again");
	{
		const char *info = fs_fdinfo(30);
		WL_CHECK(strstr(info, "tfd:       20 events: 80000019 data: a0a0a0a0deadbeef") != NULL,
			 "fd 30 fdinfo lacks fd 20 with EPOLLET: %s", info);
		WL_CHECK(strstr(info, "tfd:       21 events: 40000000") != NULL ||
				 strstr(info, "tfd:       21 events: 40000019") != NULL,
			 "fd 30 fdinfo lacks fd 21 with EPOLLONESHOT: %s", info);
	}
	wl_finish();
}
