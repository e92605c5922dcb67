/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * signals: pending signals and timers across a checkpoint.
 *  - three real-time signals queued with values 1, 2, 3 (blocked: pending
 *    on the process) must arrive in order with their values and SI_QUEUE;
 *  - a blocked SIGUSR2 stays pending;
 *  - a signal queued to one thread (SIGRTMIN+1, value 42) stays with it;
 *  - ITIMER_REAL (20 ms) and a POSIX timer (CLOCK_MONOTONIC, 20 ms,
 *    SIGRTMIN+2 carrying 0xbeef) keep firing, the timer keeps its id.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

static _Atomic int alrm, ptimer, ptimer_bad, rt_got[8], nrt, rt_bad, usr2;
static _Atomic int thread_go, thread_result = -1;
static pid_t thread_tid;

static void on_alrm(int s)
{
	(void)s;
	alrm++;
}

static void on_ptimer(int s, siginfo_t *si, void *uc)
{
	(void)s;
	(void)uc;
	if (si->si_value.sival_int != 0xbeef || si->si_code != SI_TIMER)
		ptimer_bad++;
	ptimer++;
}

static void on_rt(int s, siginfo_t *si, void *uc)
{
	(void)s;
	(void)uc;
	int n = nrt++;
	if (n < 8)
		rt_got[n] = si->si_value.sival_int;
	if (si->si_code != SI_QUEUE)
		rt_bad++;
}

static void on_usr2(int s)
{
	(void)s;
	usr2++;
}

static void *thread_main(void *arg)
{
	(void)arg;
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGRTMIN + 1);
	pthread_sigmask(SIG_BLOCK, &m, NULL);
	thread_tid = syscall(SYS_gettid);
	while (!atomic_load(&thread_go))
		usleep(1000);
	siginfo_t si;
	struct timespec zero = { 0, 0 };
	int r = sigtimedwait(&m, &si, &zero);
	atomic_store(&thread_result, r == SIGRTMIN + 1 ? si.si_value.sival_int : -2);
	return NULL;
}

int main(void)
{
	wl_init("signals");
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alrm;
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_handler = NULL;
	sa.sa_flags = SA_SIGINFO;
	sa.sa_sigaction = on_rt;
	sigaction(SIGRTMIN, &sa, NULL);
	sa.sa_sigaction = on_ptimer;
	sigaction(SIGRTMIN + 2, &sa, NULL);

	/* SIGRTMIN+1 is only ever for the thread; SIGRTMIN and SIGUSR2 stay
	 * pending on the process: blocked everywhere */
	sigset_t blk;
	sigemptyset(&blk);
	sigaddset(&blk, SIGRTMIN + 1);
	sigaddset(&blk, SIGUSR1);
	sigaddset(&blk, SIGRTMIN);
	sigaddset(&blk, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &blk, NULL);
	pthread_t th;
	pthread_create(&th, NULL, thread_main, NULL);
	while (!thread_tid)
		usleep(1000);
	sigemptyset(&blk);
	sigaddset(&blk, SIGRTMIN + 1);
	sigaddset(&blk, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &blk, NULL);

	sigemptyset(&blk);
	sigaddset(&blk, SIGRTMIN);
	sigaddset(&blk, SIGUSR2);
	for (int v = 1; v <= 3; v++)
		sigqueue(getpid(), SIGRTMIN, (union sigval){ .sival_int = v });
	kill(getpid(), SIGUSR2);
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	si.si_signo = SIGRTMIN + 1;
	si.si_code = SI_QUEUE;
	si.si_pid = getpid();
	si.si_value.sival_int = 42;
	syscall(SYS_rt_tgsigqueueinfo, getpid(), thread_tid, SIGRTMIN + 1, &si);

	struct itimerval it = { { 0, 20000 }, { 0, 20000 } };
	setitimer(ITIMER_REAL, &it, NULL);
	timer_t tid;
	struct sigevent sev;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGRTMIN + 2;
	sev.sigev_value.sival_int = 0xbeef;
	/* a few timers first, so the one we check does not have id 0 */
	timer_t spare[3];
	for (int i = 0; i < 3; i++)
		timer_create(CLOCK_MONOTONIC, &sev, &spare[i]);
	timer_delete(spare[1]);
	if (timer_create(CLOCK_MONOTONIC, &sev, &tid))
		wl_die("timer_create");
	struct itimerspec its = { { 0, 20000000 }, { 0, 20000000 } };
	timer_settime(tid, 0, &its, NULL);
	usleep(100000);

	wl_ready();
	wl_wait_usr1();

	int a0 = alrm, p0 = ptimer;
	for (int i = 0; i < 100 && (alrm < a0 + 3 || ptimer < p0 + 3); i++)
		usleep(10000);
	WL_CHECK(alrm >= a0 + 3, "ITIMER_REAL stopped (%d -> %d)", a0, alrm);
	WL_CHECK(ptimer >= p0 + 3, "the POSIX timer stopped (%d -> %d)", p0, ptimer);
	WL_CHECK(!ptimer_bad, "POSIX timer signals with a wrong value/code: %d", ptimer_bad);
	struct itimerspec now;
	WL_CHECK(timer_gettime(tid, &now) == 0 && now.it_interval.tv_nsec == 20000000,
		 "timer %ld lost its id or interval", (long)(intptr_t)tid);
	WL_CHECK(timer_gettime(spare[1], &now) != 0, "a deleted timer id came back");
	WL_CHECK(timer_gettime(spare[2], &now) == 0, "a spare timer is gone");

	WL_CHECK(nrt == 0 && usr2 == 0, "blocked signals arrived early");
	sigprocmask(SIG_UNBLOCK, &blk, NULL);
	WL_CHECK(nrt == 3, "%d of 3 queued real-time signals arrived", nrt);
	WL_CHECK(rt_got[0] == 1 && rt_got[1] == 2 && rt_got[2] == 3, "RT values %d,%d,%d", rt_got[0],
		 rt_got[1], rt_got[2]);
	WL_CHECK(!rt_bad, "RT signals lost SI_QUEUE");
	WL_CHECK(usr2 == 1, "pending SIGUSR2 arrived %d times", usr2);

	atomic_store(&thread_go, 1);
	pthread_join(th, NULL);
	WL_CHECK(atomic_load(&thread_result) == 42, "the thread's own pending signal: %d",
		 atomic_load(&thread_result));
	wl_finish();
}
