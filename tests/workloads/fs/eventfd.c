/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * eventfd — counters.
 *
 *   fd 20   eventfd, blocking, counter 12345678901 (more than 32 bits)
 *   fd 21   eventfd EFD_SEMAPHORE | EFD_NONBLOCK, counter 3
 *   fd 22   eventfd EFD_NONBLOCK, counter 0
 */
#include "fsutil.h"

#include <sys/eventfd.h>

#define BIG 12345678901ULL

int main(void)
{
	uint64_t v;

	wl_init("fs/eventfd");
	fs_place(eventfd(0, 0), 20, "eventfd");
	v = BIG;
	if (write(20, &v, sizeof(v)) != sizeof(v))
		wl_die("eventfd write: %s", strerror(errno));
	fs_place(eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK), 21, "eventfd semaphore");
	fs_place(eventfd(0, EFD_NONBLOCK), 22, "eventfd empty");

	wl_ready();
	wl_wait_usr1();

	WL_CHECK(!strcmp(fs_fdlink(20), "anon_inode:[eventfd]"), "fd 20 is %s", fs_fdlink(20));
	WL_CHECK(!(fs_getfl(20) & O_NONBLOCK), "fd 20 became O_NONBLOCK");
	WL_CHECK(fs_getfl(21) & O_NONBLOCK, "fd 21 lost O_NONBLOCK");
	v = 0;
	/* fd 20 blocks: only read it when it has a count */
	WL_CHECK(fs_poll(20, POLLIN, 0) == 1 && read(20, &v, sizeof(v)) == sizeof(v) && v == BIG,
		 "fd 20 counter %llu, want %llu", (unsigned long long)v, BIG);
	for (int i = 0; i < 3; i++) {
		v = 0;
		WL_CHECK(read(21, &v, sizeof(v)) == sizeof(v) && v == 1,
			 "semaphore read %d gave %llu (%s), want 1", i, (unsigned long long)v, strerror(errno));
	}
	errno = 0;
	WL_CHECK(read(21, &v, sizeof(v)) < 0 && errno == EAGAIN, "semaphore: a 4th read did not block (%s)",
		 strerror(errno));
	errno = 0;
	WL_CHECK(read(22, &v, sizeof(v)) < 0 && errno == EAGAIN, "fd 22 not empty (%s)", strerror(errno));
	v = 7;
	WL_CHECK(write(22, &v, sizeof(v)) == sizeof(v), "fd 22 write: %s", strerror(errno));
	v = 0;
	WL_CHECK(read(22, &v, sizeof(v)) == sizeof(v) && v == 7, "fd 22 read back %llu", (unsigned long long)v);
	wl_finish();
}
