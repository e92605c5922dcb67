/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * demo — a friendly counter for the README demo.
 *
 * Prints "demo: tick N (pid P)" to stdout every 0.5 s.  Follows the
 * workload protocol (ready file; SIGUSR1 ends it).
 */
#include "workload.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	unsigned long tick = 0;

	wl_init("demo");
	wl_ready();
	while (!wl_usr1) {
		struct timespec ts = { 0, 500000000L };

		printf("demo: tick %lu (pid %d)\n", ++tick, (int)getpid());
		fflush(stdout);
		while (nanosleep(&ts, &ts) && errno == EINTR && !wl_usr1)
			;
	}
	wl_finish();
}
