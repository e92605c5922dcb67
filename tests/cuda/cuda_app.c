/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * cuda_app [NCHILD] — a process tree that "uses CUDA" for the fake libcuda
 * (tests/cuda/fake_libcuda.c): each of its processes (the root and NCHILD
 * children, default 0) creates $CKPT_FAKE_CUDA_DIR/PID holding "0"
 * (CU_PROCESS_STATE_RUNNING) before ready; CKPT_FAKE_CUDA_NOMARK=1 leaves the
 * markers out (a tree without CUDA).
 *
 * Every process does "CUDA work" in a loop: it reads its state file and, as
 * a real CUDA call would block on a locked process, only counts work while
 * the state is RUNNING.  On SIGUSR1 the root gives the driver 5 s to unlock
 * every process of the tree, then checks: every state is RUNNING again, its
 * children still run under it, and its own work advanced since ready.
 * Children leave when their parent is gone.
 */
#include "workload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILD 8

static char state_dir[4096];
static bool nomark;

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* The fake CUDA state of pid: 0 running ... ; -1 no marker. */
static int cuda_state(pid_t pid)
{
	char path[4200], buf[32];

	snprintf(path, sizeof(path), "%s/%d", state_dir, (int)pid);
	if (wl_read_file(path, buf, sizeof(buf)) < 0)
		return -1;
	return atoi(buf);
}

static void mark(pid_t pid)
{
	char path[4200];

	if (nomark)
		return;
	snprintf(path, sizeof(path), "%s/%d", state_dir, (int)pid);
	if (wl_write_file(path, "0\n"))
		wl_die("cannot create %s: %s", path, strerror(errno));
}

static __attribute__((noreturn)) void child_main(pid_t parent)
{
	mark(getpid());
	while (getppid() == parent) {
		(void)cuda_state(getpid()); /* "CUDA work" */
		sleep_ms(20);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	int nchild = argc > 1 ? atoi(argv[1]) : 0;
	pid_t kids[MAX_CHILD], self;
	unsigned long work = 0, work_at_ready;
	const char *env;

	wl_init("cuda_app");
	if (nchild < 0 || nchild > MAX_CHILD)
		wl_die("NCHILD must be 0..%d", MAX_CHILD);
	nomark = (env = getenv("CKPT_FAKE_CUDA_NOMARK")) && *env && strcmp(env, "0");
	env = getenv("CKPT_FAKE_CUDA_DIR");
	if (env && *env)
		snprintf(state_dir, sizeof(state_dir), "%s", env);
	else
		snprintf(state_dir, sizeof(state_dir), "%s/cuda-state", wl_dir());
	if (mkdir(state_dir, 0755) && errno != EEXIST)
		wl_die("mkdir %s: %s", state_dir, strerror(errno));

	self = getpid();
	mark(self);
	for (int i = 0; i < nchild; i++) {
		kids[i] = fork();
		if (kids[i] < 0)
			wl_die("fork: %s", strerror(errno));
		if (kids[i] == 0)
			child_main(self);
	}
	/* ready once every child has its marker */
	for (int i = 0; i < nchild && !nomark; i++) {
		int tries = 0;

		while (cuda_state(kids[i]) < 0) {
			if (++tries > 500)
				wl_die("child %d made no marker", (int)kids[i]);
			sleep_ms(10);
		}
	}
	work_at_ready = work;
	wl_ready();

	while (!wl_usr1) {
		if (nomark || cuda_state(self) == 0)
			work++;
		sleep_ms(5);
	}

	if (!nomark) {
		/* a CUDA call blocks until the driver unlocks us */
		bool all_running = false;

		for (int t = 0; t < 500 && !all_running; t++) {
			all_running = cuda_state(self) == 0;
			for (int i = 0; i < nchild; i++)
				all_running = all_running && cuda_state(kids[i]) == 0;
			if (!all_running)
				sleep_ms(10);
		}
		WL_CHECK(cuda_state(self) == 0, "pid %d: CUDA state %d after 5 s, want 0 (running)",
			 (int)self, cuda_state(self));
		for (int i = 0; i < nchild; i++)
			WL_CHECK(cuda_state(kids[i]) == 0, "child %d: CUDA state %d after 5 s, want 0 (running)",
				 (int)kids[i], cuda_state(kids[i]));
	}
	for (int i = 0; i < nchild; i++) {
		char path[64], buf[512], *p;
		int ppid = -1;

		snprintf(path, sizeof(path), "/proc/%d/stat", (int)kids[i]);
		if (wl_read_file(path, buf, sizeof(buf)) < 0) {
			wl_fail("child %d is gone", (int)kids[i]);
			continue;
		}
		p = strrchr(buf, ')');
		if (p)
			sscanf(p + 1, " %*c %d", &ppid);
		WL_CHECK(ppid == (int)self, "child %d has parent %d, want %d", (int)kids[i], ppid, (int)self);
	}
	WL_CHECK(work > work_at_ready, "no CUDA work done since ready (%lu)", work);
	wl_finish();
}
