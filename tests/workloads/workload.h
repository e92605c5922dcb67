/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Common protocol of the self-verifying workloads.
 *
 *   CKPT_TEST_READY=path   after setting up its state the workload writes its
 *                          pid to this file (tmp file + rename, so a reader
 *                          never sees a partial file).
 *   CKPT_TEST_RESULT=path  when done (usually after SIGUSR1) the workload
 *                          verifies all its state and writes "PASS\n" or
 *                          "FAIL: reason\n" there (tmp + rename), then exits
 *                          0 or 1.  Unset: the result goes to stdout.
 *   CKPT_TEST_DIR=dir      where a workload creates its files (default /tmp).
 *
 * wl_init() makes the workload a session leader (so it does not depend on
 * the driver's session), closes every inherited fd above 2 and installs the
 * SIGUSR1 handler with a distinctive mask and flags; the handler only sets
 * wl_usr1.
 */
#ifndef CKPT_WORKLOAD_H
#define CKPT_WORKLOAD_H

#include <stdarg.h>

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WL_PAGE 4096UL

/* Set by the SIGUSR1 handler. */
extern volatile sig_atomic_t wl_usr1;
/* The SIGUSR1 action as the kernel reported it right after installing it. */
extern struct sigaction wl_usr1_action;
/* Our pid when wl_ready() ran. */
extern pid_t wl_ready_pid;

void wl_init(const char *name);
/* Write our pid to $CKPT_TEST_READY. */
void wl_ready(void);
/* Sleep (in pause()) until SIGUSR1 arrived.  The driver re-sends SIGUSR1
 * until a result appears, which closes the check-then-pause race. */
void wl_wait_usr1(void);

/* Record a failed check; the first few reasons end up in the result. */
void wl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Append a message to buf ("; " between messages; what does not fit is
 * cut): for processes that report through their own channel. */
void wl_vappend(char *buf, size_t size, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
#define WL_CHECK(cond, ...)              \
	do {                             \
		if (!(cond))             \
			wl_fail(__VA_ARGS__); \
	} while (0)
int wl_failed(void);
/* Write PASS or FAIL (with the recorded reasons) and exit 0/1.  Also checks
 * that getpid() still is the pid written at ready time. */
__attribute__((noreturn)) void wl_finish(void);
/* Setup failed before ready: report and exit 2. */
__attribute__((noreturn)) void wl_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

const char *wl_dir(void);
/* Checks that SIGUSR1's action is still the one wl_init() installed. */
void wl_check_usr1_action(void);

/* Deterministic 64-bit word for (a, b): the page patterns. */
static inline uint64_t wl_word(uint64_t a, uint64_t b)
{
	uint64_t x = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL) * 0xC2B2AE3D27D4EB4FULL;

	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 29;
	return x;
}

/* Monotonic time in nanoseconds (through the vDSO). */
uint64_t wl_now_ns(int clock);

/* Members of a process tree: wl_member_setup() (before forking) installs
 * the SIGUSR2 handler; wl_member() runs in a descendant: it waits for
 * SIGUSR2, checks its parent, process group and session, writes
 * "NAME OK|BAD ..." to DIR/NAME.res and stays until killed.
 * wl_member_result() waits (5 s) for that line. */
void wl_member_setup(void);
__attribute__((noreturn)) void wl_member(const char *name, pid_t want_ppid, pid_t want_pgid,
					 pid_t want_sid);
int wl_member_result(const char *name, char *buf, size_t len);

/* Write text to path through a temporary file and rename; -1 on error. */
int wl_write_file(const char *path, const char *text);

/* Read a whole small file into buf (NUL-terminated); -1 on error. */
ssize_t wl_read_file(const char *path, char *buf, size_t size);

#endif
