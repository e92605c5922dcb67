/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * seccomp_shared: threads that share one filter chain must share it after
 * restore.
 *
 * The main thread installs filter A (uname fails with EACCES) and then
 * starts threads t1 and t2, which inherit A (the same filter, not a copy).
 * t2 adds filter B of its own (getpgid and uname fail with ENOTTY: for
 * uname the newer B wins over A, so the order of the chain shows).  After
 * restore: A must be in force in every thread and B only in t2; then t2 installs
 * filter C (getpriority fails with EDOM) with SECCOMP_FILTER_FLAG_TSYNC.
 * The kernel accepts TSYNC only when every other thread's chain is an
 * ancestor of t2's, i.e. when main and t1 still share t2's A; afterwards
 * A, B and C are in force in all three threads (B over A for uname).
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

#define HAS_A 1
#define HAS_B 2
#define HAS_C 4
#define HAS_B_OVER_A 8 /* uname fails with B's ENOTTY */

/* nr and nr2 (-1: none) fail with err */
static long deny(int nr, int nr2, int err, unsigned int flags)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 1, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)nr2, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog p = { sizeof(f) / sizeof(f[0]), f };
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &p);
}

/* Which of the filters judge the calling thread. */
static int probe(void)
{
	struct utsname u;
	int has = 0;

	errno = 0;
	if (syscall(SYS_uname, &u) < 0)
		has |= errno == EACCES ? HAS_A : errno == ENOTTY ? HAS_B_OVER_A : 0;
	errno = 0;
	if (syscall(SYS_getpgid, 0) < 0 && errno == ENOTTY)
		has |= HAS_B;
	errno = 0;
	if (syscall(SYS_getpriority, PRIO_PROCESS, 0) < 0 && errno == EDOM)
		has |= HAS_C;
	return has;
}

enum { CMD_NONE, CMD_PROBE, CMD_ADD_B, CMD_TSYNC_C, CMD_STOP };

struct worker {
	pthread_t th;
	int cmd, seq, done; /* a command, its number, the last number done */
	long result;
};

static struct worker w[2];

static void *worker_main(void *a)
{
	struct worker *me = a;

	for (;;) {
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		int seq = __atomic_load_n(&me->seq, __ATOMIC_ACQUIRE);

		if (seq != __atomic_load_n(&me->done, __ATOMIC_ACQUIRE)) {
			switch (me->cmd) {
			case CMD_PROBE:
				me->result = probe();
				break;
			case CMD_ADD_B:
				me->result = deny(SYS_getpgid, SYS_uname, ENOTTY, 0) ? -errno : 0;
				break;
			case CMD_TSYNC_C:
				/* > 0: the id of a thread that cannot be synced */
				me->result = deny(SYS_getpriority, -1, EDOM, SECCOMP_FILTER_FLAG_TSYNC);
				if (me->result < 0)
					me->result = -errno;
				break;
			case CMD_STOP:
				__atomic_store_n(&me->done, seq, __ATOMIC_RELEASE);
				return NULL;
			}
			__atomic_store_n(&me->done, seq, __ATOMIC_RELEASE);
		}
		nanosleep(&ts, NULL);
	}
}

static long ask(int i, int cmd)
{
	int seq = w[i].seq + 1;

	w[i].cmd = cmd;
	__atomic_store_n(&w[i].seq, seq, __ATOMIC_RELEASE);
	for (int k = 0; k < 5000 && __atomic_load_n(&w[i].done, __ATOMIC_ACQUIRE) != seq; k++)
		usleep(1000);
	if (__atomic_load_n(&w[i].done, __ATOMIC_ACQUIRE) != seq) {
		wl_fail("thread t%d did not answer command %d", i + 1, cmd);
		return -1000;
	}
	return w[i].result;
}

static void expect(const char *when, int want_main, int want_t1, int want_t2)
{
	int got[3] = { probe(), (int)ask(0, CMD_PROBE), (int)ask(1, CMD_PROBE) };
	int want[3] = { want_main, want_t1, want_t2 };
	static const char *const who[3] = { "main", "t1", "t2" };

	for (int i = 0; i < 3; i++)
		WL_CHECK(got[i] == want[i], "%s: filters in force in %s: %#x, want %#x", when, who[i],
			 got[i], want[i]);
}

int main(void)
{
	long r;

	wl_init("seccomp_shared");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || deny(SYS_uname, -1, EACCES, 0))
		wl_die("cannot install filter A: %s", strerror(errno));
	for (int i = 0; i < 2; i++)
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]))
			wl_die("pthread_create failed");
	if (ask(1, CMD_ADD_B))
		wl_die("t2 cannot install filter B");
	expect("before the dump", HAS_A, HAS_A, HAS_B_OVER_A | HAS_B);
	if (wl_failed())
		wl_die("the filters are not set up as planned");
	wl_ready();

	wl_wait_usr1();

	expect("after the restore", HAS_A, HAS_A, HAS_B_OVER_A | HAS_B);
	r = ask(1, CMD_TSYNC_C);
	WL_CHECK(r == 0, "t2: seccomp(TSYNC) after the restore gave %ld (%s): the threads no longer share filter A",
		 r, r > 0 ? "the id of a thread that cannot be synced" : strerror((int)-r));
	if (r == 0)
		expect("after TSYNC", HAS_B_OVER_A | HAS_B | HAS_C, HAS_B_OVER_A | HAS_B | HAS_C,
		       HAS_B_OVER_A | HAS_B | HAS_C);
	for (int i = 0; i < 2; i++) {
		ask(i, CMD_STOP);
		pthread_join(w[i].th, NULL);
	}
	wl_finish();
}
