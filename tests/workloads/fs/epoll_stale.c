/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * epoll_stale — an epoll item whose fd number was closed while a dup
 * keeps its file alive: the kernel keeps the registration under the old
 * number, which no longer names the file, so the dump must be refused.
 *
 *   fd 20   epoll holding (eventfd, fd 30), data 0x30
 *   fd 31   the eventfd (count 1); fd 30 is closed
 */
#include "fsutil.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

int main(void)
{
	struct epoll_event ev = { EPOLLIN, { .u64 = 0x30 } };

	wl_init("fs/epoll_stale");
	fs_place(epoll_create1(0), 20, "epoll");
	fs_place(eventfd(1, EFD_NONBLOCK), 30, "eventfd");
	if (epoll_ctl(20, EPOLL_CTL_ADD, 30, &ev))
		wl_die("epoll_ctl: %s", strerror(errno));
	fs_place(dup(30), 31, "dup");
	close(30);

	wl_ready();
	wl_wait_usr1();

	memset(&ev, 0, sizeof(ev));
	WL_CHECK(epoll_wait(20, &ev, 1, 0) == 1 && ev.data.u64 == 0x30, "the epoll item is gone after the failed dump");
	wl_finish();
}
