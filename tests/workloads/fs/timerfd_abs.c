/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * timerfd_abs — a TFD_TIMER_ABSTIME timer keeps its absolute expiry.
 *
 *   fd 20   CLOCK_REALTIME, TFD_TIMER_ABSTIME, one-shot at ready + 6 s
 *   fd 21   CLOCK_MONOTONIC, TFD_TIMER_ABSTIME, at ready + 7 s, then every
 *           100 ms
 *
 * The scenario waits between dump and restore: a restore that armed them
 * with their time left instead would fire that much later.  After SIGUSR1
 * the time left must match the absolute expiry, and fd 20 must fire then.
 */
#include "fsutil.h"

#include <poll.h>
#include <sys/timerfd.h>
#include <time.h>

#define MS 1000000LL
#define SLACK (80 * MS)

static int64_t ts_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static struct timespec ns_ts(int64_t ns)
{
	return (struct timespec){ ns / 1000000000LL, ns % 1000000000LL };
}

int main(void)
{
	int64_t abs_rt, abs_mono, left, want, fired;
	struct itimerspec its, cur;
	uint64_t ticks = 0;

	wl_init("fs/timerfd_abs");
	fs_place(timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK), 20, "timerfd realtime");
	fs_place(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK), 21, "timerfd monotonic");
	abs_rt = (int64_t)wl_now_ns(CLOCK_REALTIME) + 6000 * MS;
	abs_mono = (int64_t)wl_now_ns(CLOCK_MONOTONIC) + 7000 * MS;
	its = (struct itimerspec){ { 0, 0 }, ns_ts(abs_rt) };
	if (timerfd_settime(20, TFD_TIMER_ABSTIME, &its, NULL))
		wl_die("timerfd_settime: %s", strerror(errno));
	its = (struct itimerspec){ ns_ts(100 * MS), ns_ts(abs_mono) };
	if (timerfd_settime(21, TFD_TIMER_ABSTIME, &its, NULL))
		wl_die("timerfd_settime: %s", strerror(errno));

	wl_ready();
	wl_wait_usr1();

	WL_CHECK(strstr(fs_fdinfo(20), "settime flags: 01") != NULL, "fd 20 lost TFD_TIMER_ABSTIME: %s",
		 fs_fdinfo(20));
	WL_CHECK(strstr(fs_fdinfo(21), "settime flags: 01") != NULL, "fd 21 lost TFD_TIMER_ABSTIME");
	WL_CHECK(timerfd_gettime(21, &cur) == 0, "gettime: %s", strerror(errno));
	left = ts_ns(cur.it_value);
	want = abs_mono - (int64_t)wl_now_ns(CLOCK_MONOTONIC);
	if (want > 0)
		WL_CHECK(llabs(left - want) < SLACK, "fd 21: %lld ms left, its absolute expiry is in %lld ms",
			 (long long)(left / MS), (long long)(want / MS));
	WL_CHECK(ts_ns(cur.it_interval) == 100 * MS, "fd 21 interval %lld ns", (long long)ts_ns(cur.it_interval));

	WL_CHECK(timerfd_gettime(20, &cur) == 0, "gettime: %s", strerror(errno));
	left = ts_ns(cur.it_value);
	want = abs_rt - (int64_t)wl_now_ns(CLOCK_REALTIME);
	if (want > 0) {
		WL_CHECK(llabs(left - want) < SLACK, "fd 20: %lld ms left, its absolute expiry is in %lld ms",
			 (long long)(left / MS), (long long)(want / MS));
		WL_CHECK(fs_poll(20, POLLIN, 10000) == 1, "fd 20 did not fire within 10 s");
		fired = (int64_t)wl_now_ns(CLOCK_REALTIME);
		WL_CHECK(fired >= abs_rt && fired < abs_rt + SLACK, "fd 20 fired %lld ms off its absolute expiry",
			 (long long)((fired - abs_rt) / MS));
	} else {
		printf("restore came after the expiry (%lld ms late); timing not checked\n", (long long)(-want / MS));
	}
	WL_CHECK(read(20, &ticks, sizeof(ticks)) == sizeof(ticks) && ticks == 1, "fd 20: %llu ticks, want 1",
		 (unsigned long long)ticks);
	wl_finish();
}
