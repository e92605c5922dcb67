/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * timerfd_periodic — timers whose expirations go unread across the dump.
 *
 *   fd 20   CLOCK_MONOTONIC, every 50 ms, never read before the dump: at
 *           ready it has missed at least 19 ticks (the kernel then shows
 *           it_value 0); after the restore the first read must count them
 *           all, and the timer must go on ticking every 50 ms
 *   fd 21   CLOCK_MONOTONIC one-shot, 30 s, still armed
 *   fd 22   CLOCK_BOOTTIME one-shot that expired before ready, unread: one
 *           tick, disarmed, TFD_NONBLOCK off
 */
#include "fsutil.h"

#include <poll.h>
#include <sys/timerfd.h>
#include <time.h>

#define INT_NS 50000000ULL
#define MS 1000000ULL

static uint64_t ts_ns(struct timespec t)
{
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

int main(void)
{
	struct itimerspec its = { { 0, (long)INT_NS }, { 0, (long)INT_NS } };
	uint64_t t_arm0, t_arm1, t_ready, lower, ticks = 0, t_now;
	struct itimerspec cur;

	wl_init("fs/timerfd_periodic");
	fs_place(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), 20, "timerfd periodic");
	fs_place(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), 21, "timerfd one-shot");
	fs_place(timerfd_create(CLOCK_BOOTTIME, 0), 22, "timerfd expired");

	t_arm0 = wl_now_ns(CLOCK_MONOTONIC);
	if (timerfd_settime(20, 0, &its, NULL))
		wl_die("timerfd_settime: %s", strerror(errno));
	t_arm1 = wl_now_ns(CLOCK_MONOTONIC);
	its = (struct itimerspec){ { 0, 0 }, { 30, 0 } };
	if (timerfd_settime(21, 0, &its, NULL))
		wl_die("timerfd_settime: %s", strerror(errno));
	its = (struct itimerspec){ { 0, 0 }, { 0, 10 * MS } };
	if (timerfd_settime(22, 0, &its, NULL))
		wl_die("timerfd_settime: %s", strerror(errno));

	/* let ticks pile up unread */
	fs_sleep_ms(1000);
	t_ready = wl_now_ns(CLOCK_MONOTONIC);
	lower = (t_ready - t_arm1) / INT_NS; /* ticks surely due by now */

	wl_ready();
	wl_wait_usr1();

	t_now = wl_now_ns(CLOCK_MONOTONIC);
	WL_CHECK(read(20, &ticks, sizeof(ticks)) == sizeof(ticks), "periodic: read: %s", strerror(errno));
	WL_CHECK(ticks >= lower, "periodic: %llu ticks after the restore, but %llu went unread before the dump",
		 (unsigned long long)ticks, (unsigned long long)lower);
	WL_CHECK(ticks <= (t_now - t_arm0) / INT_NS + 2, "periodic: %llu ticks, more than %llu ms allow",
		 (unsigned long long)ticks, (unsigned long long)((t_now - t_arm0) / MS));
	WL_CHECK(timerfd_gettime(20, &cur) == 0 && ts_ns(cur.it_interval) == INT_NS &&
			 ts_ns(cur.it_value) > 0 && ts_ns(cur.it_value) <= INT_NS,
		 "periodic: interval %llu ns, next in %llu ns", (unsigned long long)ts_ns(cur.it_interval),
		 (unsigned long long)ts_ns(cur.it_value));
	/* still ticking */
	{
		uint64_t t0 = wl_now_ns(CLOCK_MONOTONIC), more = 0, t1;

		fs_sleep_ms(330);
		t1 = wl_now_ns(CLOCK_MONOTONIC);
		WL_CHECK(read(20, &more, sizeof(more)) == sizeof(more), "periodic: no tick in 330 ms after the restore (%s)",
			 strerror(errno));
		WL_CHECK(more + 1 >= (t1 - t0) / INT_NS && more <= (t1 - t0) / INT_NS + 1,
			 "periodic: %llu ticks in %llu ms, want one per 50 ms", (unsigned long long)more,
			 (unsigned long long)((t1 - t0) / MS));
	}

	WL_CHECK(timerfd_gettime(21, &cur) == 0 && ts_ns(cur.it_interval) == 0 &&
			 ts_ns(cur.it_value) > 20000 * MS && ts_ns(cur.it_value) <= 30000 * MS,
		 "one-shot: %llu ms left, want 20..30 s", (unsigned long long)(ts_ns(cur.it_value) / MS));
	errno = 0;
	WL_CHECK(read(21, &ticks, sizeof(ticks)) < 0 && errno == EAGAIN, "one-shot fired early (%s)", strerror(errno));

	WL_CHECK(!(fs_getfl(22) & O_NONBLOCK), "expired: fd 22 became O_NONBLOCK");
	WL_CHECK(strstr(fs_fdinfo(22), "clockid: 7") != NULL, "expired: not on CLOCK_BOOTTIME: %s", fs_fdinfo(22));
	ticks = 0;
	{
		int r = fs_poll(22, POLLIN, 0);

		WL_CHECK(r == 1, "expired: its unread tick is gone");
		if (r == 1)
			WL_CHECK(read(22, &ticks, sizeof(ticks)) == sizeof(ticks) && ticks == 1,
				 "expired: read %llu ticks, want 1", (unsigned long long)ticks);
		WL_CHECK(timerfd_gettime(22, &cur) == 0 && ts_ns(cur.it_value) == 0, "expired: armed again");
	}
	wl_finish();
}
