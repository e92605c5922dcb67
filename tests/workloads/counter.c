/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * counter — CPU state and per-task kernel state.
 *
 * Spins in a loop that keeps several counters in callee-saved registers
 * (rbx, r12-r15), one in an SSE register and a window of them on the stack,
 * checking on every iteration that they still agree with each other.  The
 * dump catches it in the middle of the loop, so a restore that loses or
 * mixes up any register or the stack is caught.
 *
 * Before ready it also sets: a SIGUSR1 sigaction (workload.c), ITIMER_REAL
 * and ITIMER_VIRTUAL with long intervals, a lower RLIMIT_NOFILE soft limit
 * and RLIMIT_CORE, umask 027, a cwd in a directory it made, and a blocked
 * signal mask.  After SIGUSR1 it checks all of them, and that every other
 * signal's action and the (absent) sigaltstack are as they were.
 */
#include "workload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define STACK_SLOTS 64
#define START 1000003ULL
#define K_RBX 0x5a5a5a5a00000000ULL
#define K_R14 0x1234567ULL

struct loop_out {
	uint64_t r12, r13, r14, r15, rbx, xmm_lo, xmm_hi, bad;
};

static volatile uint64_t g_progress; /* last counter, stored by the loop */

#if defined(__x86_64__)
/*
 * r12 = c, r13 = 3c, r14 = 7c + K_R14, r15 = ~c, rbx = c + K_RBX,
 * xmm6 = {c + 1, c ^ const}, stack[c % 64] = c.
 * Each is advanced on its own (not recomputed from r12), and all relations
 * are checked on every iteration.  bad != 0: a relation broke in the loop.
 */
static void spin(uint64_t start, volatile uint64_t *stack, struct loop_out *o)
{
	uint64_t k14 = K_R14, krbx = K_RBX;

	__asm__ volatile(
		"mov %[start], %%r12\n\t"
		"lea (%%r12,%%r12,2), %%r13\n\t"
		"imul $7, %%r12, %%r14\n\t"
		"add %[k14], %%r14\n\t"
		"mov %%r12, %%r15\n\t"
		"not %%r15\n\t"
		"mov %%r12, %%rbx\n\t"
		"add %[krbx], %%rbx\n\t"
		"lea 1(%%r12), %%rax\n\t"
		"movq %%rax, %%xmm6\n\t"          /* xmm6.lo = c + 1 */
		"mov $1, %%eax\n\t"
		"movq %%rax, %%xmm5\n\t"          /* xmm5 = {1, 0} */
		"movabs $0x0123456789abcdef, %%rax\n\t"
		"movq %%rax, %%xmm7\n\t"
		"pslldq $8, %%xmm7\n\t"           /* xmm7 = {0, const} */
		"por %%xmm7, %%xmm6\n\t"          /* xmm6.hi = const */
		"xor %%eax, %%eax\n\t"
		"mov %%rax, %[bad]\n\t"
		"1:\n\t"
		"inc %%r12\n\t"
		"add $3, %%r13\n\t"
		"add $7, %%r14\n\t"
		"dec %%r15\n\t"
		"inc %%rbx\n\t"
		"paddq %%xmm5, %%xmm6\n\t"
		"mov %%r12, %%rax\n\t"
		"and $63, %%eax\n\t"
		"mov %%r12, (%[stk],%%rax,8)\n\t"
		"mov %%r12, %[prog]\n\t"
		/* checks */
		"lea (%%r12,%%r12,2), %%rax\n\t"
		"cmp %%rax, %%r13\n\t"
		"jne 2f\n\t"
		"imul $7, %%r12, %%rax\n\t"
		"add %[k14], %%rax\n\t"
		"cmp %%rax, %%r14\n\t"
		"jne 2f\n\t"
		"mov %%r15, %%rax\n\t"
		"not %%rax\n\t"
		"cmp %%rax, %%r12\n\t"
		"jne 2f\n\t"
		"mov %%rbx, %%rax\n\t"
		"sub %[krbx], %%rax\n\t"
		"cmp %%rax, %%r12\n\t"
		"jne 2f\n\t"
		"movq %%xmm6, %%rax\n\t"
		"dec %%rax\n\t"
		"cmp %%rax, %%r12\n\t"
		"jne 2f\n\t"
		"mov (%[flag]), %%eax\n\t"
		"test %%eax, %%eax\n\t"
		"jz 1b\n\t"
		"jmp 3f\n\t"
		"2:\n\t"
		"movq $1, %[bad]\n\t"
		"3:\n\t"
		"mov %%r12, %[o12]\n\t"
		"mov %%r13, %[o13]\n\t"
		"mov %%r14, %[o14]\n\t"
		"mov %%r15, %[o15]\n\t"
		"mov %%rbx, %[obx]\n\t"
		"movq %%xmm6, %[oxl]\n\t"
		"pshufd $0xee, %%xmm6, %%xmm7\n\t"
		"movq %%xmm7, %%rax\n\t"
		"mov %%rax, %[oxh]\n\t"
		: [o12] "=m"(o->r12), [o13] "=m"(o->r13), [o14] "=m"(o->r14), [o15] "=m"(o->r15),
		  [obx] "=m"(o->rbx), [oxl] "=m"(o->xmm_lo), [oxh] "=m"(o->xmm_hi), [bad] "=m"(o->bad),
		  [prog] "=m"(g_progress)
		: [start] "r"(start), [k14] "r"(k14), [krbx] "r"(krbx), [stk] "r"(stack),
		  [flag] "r"(&wl_usr1)
		: "rax", "rbx", "r12", "r13", "r14", "r15", "xmm5", "xmm6", "xmm7", "cc", "memory");
}
#else
static void spin(uint64_t start, volatile uint64_t *stack, struct loop_out *o)
{
	register uint64_t c = start, c3 = 3 * start, c7 = 7 * start + K_R14, n = ~start, b = start + K_RBX;

	o->bad = 0;
	while (!wl_usr1) {
		c++, c3 += 3, c7 += 7, n--, b++;
		stack[c % STACK_SLOTS] = c;
		g_progress = c;
		if (c3 != 3 * c || c7 != 7 * c + K_R14 || ~n != c || b - K_RBX != c) {
			o->bad = 1;
			break;
		}
	}
	o->r12 = c, o->r13 = c3, o->r14 = c7, o->r15 = n, o->rbx = b;
	o->xmm_lo = c + 1, o->xmm_hi = 0x0123456789abcdefULL;
}
#endif

static int same_itimer_interval(const struct itimerval *a, const struct itimerval *b)
{
	return a->it_interval.tv_sec == b->it_interval.tv_sec && a->it_interval.tv_usec == b->it_interval.tv_usec;
}

static int tv_le(const struct timeval *a, const struct timeval *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_usec <= b->tv_usec);
}

static void check_itimer(int which, const char *name, const struct itimerval *saved)
{
	struct itimerval now;

	if (getitimer(which, &now)) {
		wl_fail("getitimer(%s): %s", name, strerror(errno));
		return;
	}
	WL_CHECK(same_itimer_interval(&now, saved), "%s interval %ld.%06ld, want %ld.%06ld", name,
		 (long)now.it_interval.tv_sec, (long)now.it_interval.tv_usec, (long)saved->it_interval.tv_sec,
		 (long)saved->it_interval.tv_usec);
	WL_CHECK(now.it_value.tv_sec || now.it_value.tv_usec, "%s is disarmed", name);
	WL_CHECK(tv_le(&now.it_value, &saved->it_value), "%s value %ld.%06ld is above the %ld.%06ld left at ready",
		 name, (long)now.it_value.tv_sec, (long)now.it_value.tv_usec, (long)saved->it_value.tv_sec,
		 (long)saved->it_value.tv_usec);
}

static void check_rlimit(int res, const char *name, const struct rlimit *saved)
{
	struct rlimit now;

	if (getrlimit(res, &now)) {
		wl_fail("getrlimit(%s): %s", name, strerror(errno));
		return;
	}
	WL_CHECK(now.rlim_cur == saved->rlim_cur && now.rlim_max == saved->rlim_max,
		 "%s is %llu/%llu, want %llu/%llu", name, (unsigned long long)now.rlim_cur,
		 (unsigned long long)now.rlim_max, (unsigned long long)saved->rlim_cur,
		 (unsigned long long)saved->rlim_max);
}

/* Every signal's action at ready time: a restore must not add handlers
 * (e.g. the restorer's own) nor drop any. */
static struct sigaction actions[NSIG];

static void save_actions(void)
{
	for (int s = 1; s < NSIG; s++)
		if (s != 32 && s != 33 && sigaction(s, NULL, &actions[s]))
			wl_die("sigaction(%d): %s", s, strerror(errno));
}

static void check_actions(void)
{
	struct sigaction now;

	for (int s = 1; s < NSIG; s++) {
		if (s == 32 || s == 33)
			continue;
		if (sigaction(s, NULL, &now)) {
			wl_fail("sigaction(%d): %s", s, strerror(errno));
			return;
		}
		if (now.sa_handler != actions[s].sa_handler || now.sa_flags != actions[s].sa_flags) {
			wl_fail("signal %d (%s): handler %p flags %#x, was %p flags %#x", s, strsignal(s),
				(void *)now.sa_handler, (unsigned)now.sa_flags, (void *)actions[s].sa_handler,
				(unsigned)actions[s].sa_flags);
			return;
		}
	}
}

static void block_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGUSR2);
	sigaddset(set, SIGPIPE);
	sigaddset(set, SIGRTMIN + 3);
	sigaddset(set, SIGTTIN);
}

int main(void)
{
	volatile uint64_t stack[STACK_SLOTS];
	struct itimerval real = { .it_interval = { 3600, 250000 }, .it_value = { 3600, 250000 } };
	struct itimerval virt = { .it_interval = { 1800, 500000 }, .it_value = { 1800, 500000 } };
	struct itimerval real_saved, virt_saved;
	struct rlimit nofile, core, nofile_saved, core_saved;
	struct stat cwd_st, st;
	sigset_t blocked, now_mask;
	char cwd[4096], buf[4096];
	struct loop_out o;
	stack_t ss_saved, ss_now;
	uint64_t ready_progress;
	mode_t um;

	wl_init("counter");

	for (int i = 0; i < STACK_SLOTS; i++)
		stack[i] = 0; /* the loop overwrites every slot long before the dump */

	/* cwd: a directory of our own */
	snprintf(cwd, sizeof(cwd), "%s/counter-cwd.%d", wl_dir(), (int)getpid());
	if (mkdir(cwd, 0750) && errno != EEXIST)
		wl_die("mkdir %s: %s", cwd, strerror(errno));
	if (chdir(cwd) || stat(".", &cwd_st))
		wl_die("chdir %s: %s", cwd, strerror(errno));
	umask(027);

	/* rlimits: lower NOFILE's soft limit and both CORE limits */
	if (getrlimit(RLIMIT_NOFILE, &nofile) || getrlimit(RLIMIT_CORE, &core))
		wl_die("getrlimit: %s", strerror(errno));
	nofile.rlim_cur = nofile.rlim_cur > 200 ? 200 : nofile.rlim_cur / 2;
	core.rlim_max = core.rlim_max == RLIM_INFINITY || core.rlim_max > (1 << 20) ? (1 << 20) : core.rlim_max;
	core.rlim_cur = core.rlim_max / 2;
	if (setrlimit(RLIMIT_NOFILE, &nofile) || setrlimit(RLIMIT_CORE, &core))
		wl_die("setrlimit: %s", strerror(errno));
	getrlimit(RLIMIT_NOFILE, &nofile_saved);
	getrlimit(RLIMIT_CORE, &core_saved);

	/* itimers with long, odd intervals (they never fire during a test) */
	if (setitimer(ITIMER_REAL, &real, NULL) || setitimer(ITIMER_VIRTUAL, &virt, NULL))
		wl_die("setitimer: %s", strerror(errno));

	/* blocked signals */
	block_set(&blocked);
	if (sigprocmask(SIG_BLOCK, &blocked, NULL) || sigprocmask(SIG_BLOCK, NULL, &blocked))
		wl_die("sigprocmask: %s", strerror(errno));

	save_actions();
	if (sigaltstack(NULL, &ss_saved))
		wl_die("sigaltstack: %s", strerror(errno));
	getitimer(ITIMER_REAL, &real_saved);
	getitimer(ITIMER_VIRTUAL, &virt_saved);
	ready_progress = START;
	g_progress = START;
	wl_ready();

	spin(START, stack, &o);

	/* registers and stack */
	WL_CHECK(!o.bad, "register relations broke inside the loop at counter %llu (r13 %llu r14 %llu r15 %#llx "
			 "rbx %#llx xmm6 %llu)",
		 (unsigned long long)o.r12, (unsigned long long)o.r13, (unsigned long long)o.r14,
		 (unsigned long long)o.r15, (unsigned long long)o.rbx, (unsigned long long)o.xmm_lo);
	WL_CHECK(o.r13 == 3 * o.r12 && o.r14 == 7 * o.r12 + K_R14 && o.r15 == ~o.r12 && o.rbx == o.r12 + K_RBX,
		 "callee-saved registers disagree (r12 %llu r13 %llu r14 %llu r15 %#llx rbx %#llx)",
		 (unsigned long long)o.r12, (unsigned long long)o.r13, (unsigned long long)o.r14,
		 (unsigned long long)o.r15, (unsigned long long)o.rbx);
	WL_CHECK(o.xmm_lo == o.r12 + 1 && o.xmm_hi == 0x0123456789abcdefULL, "xmm6 is {%#llx, %#llx}, want {%#llx, %#llx}",
		 (unsigned long long)o.xmm_lo, (unsigned long long)o.xmm_hi, (unsigned long long)o.r12 + 1,
		 0x0123456789abcdefULL);
	WL_CHECK(o.r12 > ready_progress + 1000, "counter %llu did not advance past %llu (+1000)",
		 (unsigned long long)o.r12, (unsigned long long)ready_progress);
	WL_CHECK(g_progress == o.r12, "progress in memory %llu, counter %llu", (unsigned long long)g_progress,
		 (unsigned long long)o.r12);
	for (int i = 0; i < STACK_SLOTS; i++) {
		uint64_t v = stack[i];
		if (v % STACK_SLOTS != (uint64_t)i || v > o.r12 || v + STACK_SLOTS <= o.r12) {
			wl_fail("stack slot %d holds %llu (counter %llu)", i, (unsigned long long)v,
				(unsigned long long)o.r12);
			break;
		}
	}

	wl_check_usr1_action();
	check_actions();
	if (sigaltstack(NULL, &ss_now))
		wl_fail("sigaltstack: %s", strerror(errno));
	else
		WL_CHECK(ss_now.ss_flags == ss_saved.ss_flags && ss_now.ss_sp == ss_saved.ss_sp &&
				 ss_now.ss_size == ss_saved.ss_size,
			 "sigaltstack is %p+%zu flags %#x, was %p+%zu flags %#x", ss_now.ss_sp, ss_now.ss_size,
			 (unsigned)ss_now.ss_flags, ss_saved.ss_sp, ss_saved.ss_size, (unsigned)ss_saved.ss_flags);
	check_itimer(ITIMER_REAL, "ITIMER_REAL", &real_saved);
	check_itimer(ITIMER_VIRTUAL, "ITIMER_VIRTUAL", &virt_saved);
	check_rlimit(RLIMIT_NOFILE, "RLIMIT_NOFILE", &nofile_saved);
	check_rlimit(RLIMIT_CORE, "RLIMIT_CORE", &core_saved);

	um = umask(0);
	umask(um);
	WL_CHECK(um == 027, "umask %03o, want 027", (unsigned)um);

	if (!getcwd(buf, sizeof(buf)))
		wl_fail("getcwd: %s", strerror(errno));
	else
		WL_CHECK(!strcmp(buf, cwd), "cwd %s, want %s", buf, cwd);
	if (stat(".", &st))
		wl_fail("stat(.): %s", strerror(errno));
	else
		WL_CHECK(st.st_ino == cwd_st.st_ino && st.st_dev == cwd_st.st_dev, "cwd is another directory (inode)");

	if (sigprocmask(SIG_BLOCK, NULL, &now_mask))
		wl_fail("sigprocmask: %s", strerror(errno));
	for (int s = 1; s < NSIG; s++) {
		if (s == 32 || s == 33)
			continue;
		if (sigismember(&now_mask, s) != sigismember(&blocked, s)) {
			wl_fail("blocked mask differs at signal %d (%s)", s,
				sigismember(&blocked, s) ? "not blocked" : "blocked");
			break;
		}
	}

	rmdir(cwd);
	wl_finish();
}
