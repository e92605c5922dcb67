/* SPDX-License-Identifier: GPL-2.0-only */
/* Minimal TAP output for unit tests: "ok N - name" / "not ok N - name". */
#ifndef CKPT_TAP_H
#define CKPT_TAP_H
#include <stdio.h>

static int tap_n, tap_failed;

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		int ok_ = !!(cond);                                        \
		tap_n++;                                                   \
		if (!ok_)                                                  \
			tap_failed++;                                      \
		printf("%s %d - ", ok_ ? "ok" : "not ok", tap_n);          \
		printf(__VA_ARGS__);                                       \
		printf("%s\n", ok_ ? "" : "  (" #cond ")");                \
		fflush(stdout);                                            \
	} while (0)

static inline int tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}
#endif
