/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * threads: four worker threads counting in thread-local storage, a mutex +
 * condvar ping-pong pair, and a thread blocked in read() on a FIFO at dump
 * time.  After SIGUSR1: every counter still advances and agrees with its
 * TLS copy, the ping-pong goes on, each thread kept its tid, name, signal
 * mask and sigaltstack, the reader gets the bytes written after restore,
 * and pthread_join of every thread works (clear_child_tid restored).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "workload.h"

#define NWORKERS 4

static __thread uint64_t tls_count;
static __thread pid_t tls_tid;

struct worker {
	pthread_t th;
	pid_t tid;
	_Atomic uint64_t count; /* mirror of the thread's TLS counter */
	_Atomic int stop;
	int bad;
	char altstack[16384];
};

static struct worker workers[NWORKERS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint64_t ball;            /* under mu: even = ping's turn */
static _Atomic int pp_stop;
static pthread_t ping_th, pong_th, reader_th;
static int fifo_fd;
static char reader_got[64];
static _Atomic int reader_done;
static pid_t reader_tid;

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];
	sigset_t m;
	stack_t ss = { .ss_sp = w->altstack, .ss_size = sizeof(w->altstack) };

	tls_tid = syscall(SYS_gettid);
	w->tid = tls_tid;
	snprintf(name, sizeof(name), "wl-worker-%d", (int)(w - workers));
	prctl(PR_SET_NAME, name);
	/* a per-thread mask: worker i blocks SIGRTMIN+i */
	sigemptyset(&m);
	sigaddset(&m, SIGRTMIN + (int)(w - workers));
	pthread_sigmask(SIG_BLOCK, &m, NULL);
	sigaltstack(&ss, NULL);
	while (!atomic_load(&w->stop)) {
		tls_count++;
		atomic_store(&w->count, tls_count);
		if (tls_tid != syscall(SYS_gettid))
			w->bad = 1;
	}
	/* final checks from the thread itself */
	stack_t now;
	sigaltstack(NULL, &now);
	if (now.ss_sp != w->altstack || now.ss_size != sizeof(w->altstack))
		w->bad |= 2;
	sigset_t cur;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	if (!sigismember(&cur, SIGRTMIN + (int)(w - workers)))
		w->bad |= 4;
	char got[16];
	prctl(PR_GET_NAME, got);
	if (strcmp(got, name))
		w->bad |= 8;
	return (void *)(uintptr_t)tls_count;
}

static void *pingpong(void *arg)
{
	uint64_t parity = (uintptr_t)arg;
	pthread_mutex_lock(&mu);
	while (!atomic_load(&pp_stop)) {
		while (ball % 2 != parity && !atomic_load(&pp_stop))
			pthread_cond_wait(&cv, &mu);
		ball++;
		pthread_cond_broadcast(&cv);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void *reader(void *arg)
{
	(void)arg;
	reader_tid = syscall(SYS_gettid);
	ssize_t n = read(fifo_fd, reader_got, sizeof(reader_got) - 1);
	if (n > 0)
		reader_got[n] = 0;
	atomic_store(&reader_done, 1);
	return NULL;
}

static uint64_t ball_now(void)
{
	pthread_mutex_lock(&mu);
	uint64_t b = ball;
	pthread_mutex_unlock(&mu);
	return b;
}

int main(void)
{
	char path[4096];

	wl_init("threads");
	snprintf(path, sizeof(path), "%s/threads.fifo", wl_dir());
	unlink(path);
	if (mkfifo(path, 0600))
		wl_die("mkfifo %s: %s", path, strerror(errno));
	fifo_fd = open(path, O_RDWR);
	if (fifo_fd < 0)
		wl_die("open %s: %s", path, strerror(errno));

	/* SIGUSR1 goes to the main thread only: the others inherit it blocked */
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	for (int i = 0; i < NWORKERS; i++)
		if (pthread_create(&workers[i].th, NULL, worker_main, &workers[i]))
			wl_die("pthread_create");
	pthread_create(&ping_th, NULL, pingpong, (void *)0);
	pthread_create(&pong_th, NULL, pingpong, (void *)1);
	pthread_create(&reader_th, NULL, reader, NULL);
	pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
	while (!reader_tid || !workers[NWORKERS - 1].tid)
		usleep(1000);
	usleep(100000);

	pid_t tids[NWORKERS];
	for (int i = 0; i < NWORKERS; i++)
		tids[i] = workers[i].tid;
	pid_t rtid = reader_tid;
	wl_ready();
	wl_wait_usr1();

	/* everything must still move */
	uint64_t before[NWORKERS], b0 = ball_now();
	for (int i = 0; i < NWORKERS; i++)
		before[i] = atomic_load(&workers[i].count);
	usleep(200000);
	for (int i = 0; i < NWORKERS; i++) {
		WL_CHECK(atomic_load(&workers[i].count) > before[i], "worker %d stopped counting", i);
		WL_CHECK(workers[i].tid == tids[i], "worker %d tid %d, was %d", i, workers[i].tid, tids[i]);
	}
	WL_CHECK(ball_now() > b0 + 10, "ping-pong stalled at %llu", (unsigned long long)ball_now());
	WL_CHECK(!atomic_load(&reader_done), "the reader returned before any data was written");
	WL_CHECK(write(fifo_fd, "after restore", 13) == 13, "write to fifo");
	for (int i = 0; i < 200 && !atomic_load(&reader_done); i++)
		usleep(10000);
	WL_CHECK(atomic_load(&reader_done) && !strcmp(reader_got, "after restore"),
		 "blocked reader got \"%s\"", reader_got);
	WL_CHECK(reader_tid == rtid, "reader tid changed");

	for (int i = 0; i < NWORKERS; i++)
		atomic_store(&workers[i].stop, 1);
	for (int i = 0; i < NWORKERS; i++) {
		void *res;
		WL_CHECK(pthread_join(workers[i].th, &res) == 0, "join worker %d", i);
		WL_CHECK((uintptr_t)res >= before[i], "worker %d TLS counter %llu < %llu", i,
			 (unsigned long long)(uintptr_t)res, (unsigned long long)before[i]);
		WL_CHECK(!workers[i].bad, "worker %d own checks failed (%d)", i, workers[i].bad);
	}
	atomic_store(&pp_stop, 1);
	pthread_mutex_lock(&mu);
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	WL_CHECK(pthread_join(ping_th, NULL) == 0 && pthread_join(pong_th, NULL) == 0, "join ping-pong");
	WL_CHECK(pthread_join(reader_th, NULL) == 0, "join reader");
	unlink(path);
	wl_finish();
}
