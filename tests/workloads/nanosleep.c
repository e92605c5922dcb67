/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * nanosleep — a task dumped while sleeping.
 *
 * Writes ready and calls nanosleep() once for CKPT_TEST_SLEEP_MS (default
 * 3000) milliseconds.  The dump interrupts the sleep; after the restore the
 * sleep must complete by itself: nanosleep() returns 0 (an EINTR would mean
 * the interrupted call was not restarted) and at least the requested time
 * has passed on CLOCK_MONOTONIC since just before the call.  Needs no
 * SIGUSR1.
 */
#include "workload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(void)
{
	const char *env = getenv("CKPT_TEST_SLEEP_MS");
	long ms = env && atol(env) > 0 ? atol(env) : 3000;
	struct timespec req = { ms / 1000, (ms % 1000) * 1000000L }, rem = { 0, 0 };
	uint64_t t0, t1;
	int rc, err;

	wl_init("nanosleep");
	t0 = wl_now_ns(CLOCK_MONOTONIC);
	wl_ready();
	rc = nanosleep(&req, &rem);
	err = errno;
	t1 = wl_now_ns(CLOCK_MONOTONIC);

	WL_CHECK(rc == 0, "nanosleep returned %d (%s), %ld.%09ld s left", rc, strerror(err), (long)rem.tv_sec,
		 rem.tv_nsec);
	WL_CHECK(t1 >= t0 + (uint64_t)ms * 1000000ULL, "slept only %llu ms of %ld",
		 (unsigned long long)((t1 - t0) / 1000000ULL), ms);
	WL_CHECK(req.tv_sec == ms / 1000 && req.tv_nsec == (ms % 1000) * 1000000L, "the request was changed");
	wl_finish();
}
