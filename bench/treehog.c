/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * treehog — benchmark workload for ckpt: many tasks, little memory.
 *
 *   treehog procs N      a tree of N processes
 *   treehog threads N    one process with N threads
 *
 * Every task owns TASK_KIB (64) KiB of private anonymous memory, every page
 * written with a pattern of the task's index and the page's index.
 *
 * procs: the root forks the other N-1 processes.  They are children of the
 * root, except that every 10th child forks one grandchild (so the tree has
 * depth 2); the grandchild counts towards N.  Every child and grandchild
 * fills its copy of the memory (copy-on-write, so it is its own), reports
 * its index and pid to the root through a pipe, closes the pipe and sleeps
 * in pause().  The root is started as a process-group leader (setsid) and
 * the others stay in its group, so `kill -KILL -- -ROOT` ends the tree.
 *
 * threads: the main thread starts N-1 threads (small stacks), every one of
 * them with all signals blocked; each fills its slice of one shared area
 * and then sleeps, the even ones in pause(), the odd ones in FUTEX_WAIT on
 * a word that never changes.
 *
 * When everything has started, the root closes every file descriptor above
 * 2, writes its pid to the file named by $CKPT_TEST_READY (temporary file +
 * rename, so a reader never sees a partial file) and sleeps in pause().
 *
 * On SIGUSR1 the root checks the restored state and writes "ok N" or
 * "bad WHAT INDEX" to $CKPT_TEST_VERIFY (tmp + rename again):
 *
 *   procs: every process is alive (kill(pid, 0)) with the pid it had, is
 *          not a zombie, has the same parent (/proc/PID/stat), and its
 *          memory holds its pattern (read with process_vm_readv(); the
 *          root is their ancestor, so it may).
 *   threads: /proc/self/task has exactly N entries, every thread id is
 *          still there (tgkill(pid, tid, 0)), and every slice of memory
 *          holds its pattern.
 *
 * As in memhog, the check runs in the signal handler itself (the main
 * program does nothing but pause(), and a flag tested after pause() would
 * race with the restore), with async-signal-safe calls only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_PROG "treehog"
#include "benchutil.h"

#define TASK_KIB 64
#define TASK_BYTES ((size_t)TASK_KIB << 10)
#define MAX_TASKS 100000
#define STAMP_KEY 0x74726565686f67ULL /* "treehog" */
#define THREAD_STACK (256u << 10)

enum mode { PROCS, THREADS };

static enum mode mode;
static long ntasks;
static unsigned char *area;      /* procs: TASK_BYTES; threads: ntasks slices */
static size_t page_size, task_pages;
static char verify_path[PATH_MAX];

/* procs */
static pid_t *pids;              /* pids[i] of task i; pids[0] = root */
static long *parent_of;          /* index of the parent task */
static unsigned char *readbuf;   /* TASK_BYTES, for process_vm_readv */

/* threads */
static pid_t *tids;              /* tids[i] of thread i; tids[0] = main */
static _Atomic long started;
static uint32_t futex_word;      /* never changes */

/* ---- the memory pattern ----------------------------------------------- */

static unsigned char page_byte(long task, size_t page)
{
	return (unsigned char)(((uint64_t)task * 17 + page) % 251 + 1); /* never 0 */
}

static uint64_t page_stamp(long task, size_t page)
{
	return ((uint64_t)task << 24 ^ (uint64_t)page << 8) ^ STAMP_KEY;
}

static void fill(unsigned char *mem, long task)
{
	for (size_t i = 0; i < task_pages; i++) {
		unsigned char *p = mem + i * page_size;
		uint64_t stamp = page_stamp(task, i);

		memset(p, page_byte(task, i), page_size);
		memcpy(p, &stamp, sizeof(stamp));
	}
}

static int pattern_ok(const unsigned char *mem, long task)
{
	for (size_t i = 0; i < task_pages; i++) {
		const unsigned char *p = mem + i * page_size;
		unsigned char b = page_byte(task, i);
		uint64_t stamp;

		memcpy(&stamp, p, sizeof(stamp));
		if (stamp != page_stamp(task, i))
			return 0;
		for (size_t off = sizeof(stamp); off < page_size; off++)
			if (p[off] != b)
				return 0;
	}
	return 1;
}

/* ---- the checks (signal handler context) -------------------------------- */

/* State and parent pid of pid from /proc/PID/stat; 0 or -1. */
static int proc_stat(pid_t pid, char *state, pid_t *ppid)
{
	char path[64], buf[512];
	size_t len = 0;
	ssize_t n;
	char *p;
	long v = 0;
	int fd;

	put_str(path, sizeof(path), &len, "/proc/");
	put_num(path, sizeof(path), &len, (unsigned long long)pid);
	put_str(path, sizeof(path), &len, "/stat");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* "PID (COMM) S PPID ...": COMM may hold anything, so from the last ')' */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2] || p[3] != ' ')
		return -1;
	*state = p[2];
	for (p += 4; *p >= '0' && *p <= '9'; p++)
		v = v * 10 + (*p - '0');
	*ppid = (pid_t)v;
	return 0;
}

/* NULL when all is well, else what is wrong with task *bad. */
static const char *check_procs(long *bad)
{
	struct iovec local = { readbuf, TASK_BYTES }, remote;
	char state;
	pid_t ppid;

	*bad = 0;
	if (!pattern_ok(area, 0))
		return "memory";
	for (long i = 1; i < ntasks; i++) {
		*bad = i;
		if (kill(pids[i], 0) < 0)
			return "gone";
		if (proc_stat(pids[i], &state, &ppid) < 0)
			return "stat";
		if (state == 'Z' || state == 'X')
			return "dead";
		if (ppid != pids[parent_of[i]])
			return "parent";
		remote.iov_base = area;
		remote.iov_len = TASK_BYTES;
		if (process_vm_readv(pids[i], &local, 1, &remote, 1, 0) != (ssize_t)TASK_BYTES)
			return "readv";
		if (!pattern_ok(readbuf, i))
			return "memory";
	}
	return NULL;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Entries in /proc/self/task, or -1. */
static long count_tasks(void)
{
	char buf[8192];
	long count = 0;
	long n;
	int fd;

	fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);

			if (d->d_name[0] != '.')
				count++;
			off += d->d_reclen;
		}
	}
	close(fd);
	return n < 0 ? -1 : count;
}

static const char *check_threads(long *bad)
{
	pid_t me = getpid();

	*bad = count_tasks();
	if (*bad != ntasks)
		return "task-count";
	for (long i = 0; i < ntasks; i++) {
		*bad = i;
		if (syscall(SYS_tgkill, me, tids[i], 0) < 0)
			return "tid";
		if (!pattern_ok(area + i * TASK_BYTES, i))
			return "memory";
	}
	return NULL;
}

static void on_usr1(int sig)
{
	int saved_errno = errno;
	const char *what;
	char text[96];
	size_t len = 0;
	long bad;

	(void)sig;
	what = mode == PROCS ? check_procs(&bad) : check_threads(&bad);
	if (!what) {
		put_str(text, sizeof(text), &len, "ok ");
		put_num(text, sizeof(text), &len, (unsigned long long)ntasks);
	} else {
		put_str(text, sizeof(text), &len, "bad ");
		put_str(text, sizeof(text), &len, what);
		put_str(text, sizeof(text), &len, " ");
		if (bad < 0)
			put_str(text, sizeof(text), &len, "-1");
		else
			put_num(text, sizeof(text), &len, (unsigned long long)bad);
	}
	put_str(text, sizeof(text), &len, "\n");
	if (!verify_path[0])
		say("", text);
	else if (write_file(verify_path, text) < 0)
		say("cannot write the check result to ", verify_path);
	errno = saved_errno;
}

/* ---- setting up ---------------------------------------------------------- */

static void close_inherited_fds(void)
{
	struct rlimit rl;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
#endif
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > 65536)
		rl.rlim_cur = 65536;
	for (int fd = 3; fd < (int)rl.rlim_cur; fd++)
		close(fd);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		fprintf(stderr, "treehog: out of memory\n");
		exit(1);
	}
	return p;
}

static unsigned char *map_area(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		fprintf(stderr, "treehog: mmap of %zu bytes: %s\n", size, strerror(errno));
		exit(1);
	}
	return p;
}

struct hello {
	int32_t index;
	int32_t pid;
};

/* A child or grandchild: fill, say hello, sleep until killed. */
static void __attribute__((noreturn)) member(long index, int wfd)
{
	struct hello h = { (int32_t)index, (int32_t)getpid() };

	fill(area, index);
	if (write(wfd, &h, sizeof(h)) != (ssize_t)sizeof(h))
		_exit(3);
	close(wfd);
	for (;;)
		pause();
}

static int read_hello(int rfd, struct hello *h)
{
	size_t got = 0;

	while (got < sizeof(*h)) {
		ssize_t n = read(rfd, (char *)h + got, sizeof(*h) - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static void kill_all(long upto)
{
	for (long i = 1; i < upto; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
}

static int start_procs(void)
{
	long next = 1, children = 0;
	int p[2];

	pids = xcalloc((size_t)ntasks, sizeof(*pids));
	parent_of = xcalloc((size_t)ntasks, sizeof(*parent_of));
	readbuf = map_area(TASK_BYTES);
	area = map_area(TASK_BYTES);
	fill(area, 0);
	pids[0] = getpid();

	if (pipe2(p, O_CLOEXEC) < 0) {
		perror("treehog: pipe");
		return -1;
	}
	while (next < ntasks) {
		long me = next++, grand = 0, want;
		pid_t pid;

		if (++children % 10 == 0 && next < ntasks)
			grand = next++;
		pid = fork();
		if (pid < 0) {
			fprintf(stderr, "treehog: fork of task %ld: %s\n", me, strerror(errno));
			kill_all(me);
			return -1;
		}
		if (pid == 0) {
			close(p[0]);
			if (grand) {
				pid_t g = fork();

				if (g < 0)
					_exit(4);
				if (g == 0)
					member(grand, p[1]);
			}
			member(me, p[1]);
		}
		pids[me] = pid;
		parent_of[me] = 0;
		want = grand ? 2 : 1;
		while (want--) {
			struct hello h;

			if (read_hello(p[0], &h) < 0 || (h.index != me && h.index != grand) ||
			    (h.index == me && h.pid != pid)) {
				fprintf(stderr, "treehog: task %ld did not start\n", me);
				kill_all(next);
				return -1;
			}
			if (h.index == grand) {
				pids[grand] = h.pid;
				parent_of[grand] = me;
			}
		}
	}
	close(p[0]);
	close(p[1]);
	return 0;
}

static void *worker(void *arg)
{
	long index = (long)(intptr_t)arg;

	tids[index] = (pid_t)syscall(SYS_gettid);
	fill(area + index * TASK_BYTES, index);
	atomic_fetch_add(&started, 1);
	for (;;) {
		if (index % 2)
			syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		else
			pause();
	}
	return NULL;
}

static int start_threads(void)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int err;

	tids = xcalloc((size_t)ntasks, sizeof(*tids));
	area = map_area((size_t)ntasks * TASK_BYTES);
	tids[0] = (pid_t)syscall(SYS_gettid);
	fill(area, 0);

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* threads inherit the mask: only the main thread takes SIGUSR1 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (long i = 1; i < ntasks; i++) {
		pthread_t th;

		err = pthread_create(&th, &attr, worker, (void *)(intptr_t)i);
		if (err) {
			fprintf(stderr, "treehog: thread %ld: %s\n", i, strerror(err));
			return -1;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	while (atomic_load(&started) < ntasks - 1)
		usleep(1000);
	return 0;
}

int main(int argc, char **argv)
{
	const char *ready = getenv("CKPT_TEST_READY");
	const char *vpath = getenv("CKPT_TEST_VERIFY");
	struct sigaction sa;
	char *end, text[32];
	long ps;
	int err;

	if (argc != 3 || (strcmp(argv[1], "procs") && strcmp(argv[1], "threads"))) {
		fprintf(stderr, "usage: %s procs|threads N\n", argv[0]);
		return 2;
	}
	mode = strcmp(argv[1], "procs") ? THREADS : PROCS;
	errno = 0;
	ntasks = strtol(argv[2], &end, 10);
	if (errno || end == argv[2] || *end || ntasks < 1 || ntasks > MAX_TASKS) {
		fprintf(stderr, "treehog: bad task count '%s' (1..%d)\n", argv[2], MAX_TASKS);
		return 2;
	}
	ps = sysconf(_SC_PAGESIZE);
	if (ps <= 0 || TASK_BYTES % (size_t)ps) {
		fprintf(stderr, "treehog: unusable page size %ld\n", ps);
		return 1;
	}
	page_size = (size_t)ps;
	task_pages = TASK_BYTES / page_size;
	if (vpath) {
		if (strlen(vpath) >= sizeof(verify_path)) {
			fprintf(stderr, "treehog: CKPT_TEST_VERIFY is too long\n");
			return 1;
		}
		strcpy(verify_path, vpath);
	}
	close_inherited_fds();

	if ((mode == PROCS ? start_procs() : start_threads()) < 0)
		return 1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGUSR1, &sa, NULL) < 0) {
		perror("treehog: sigaction");
		return 1;
	}

	snprintf(text, sizeof(text), "%d\n", (int)getpid());
	if (ready) {
		err = write_file(ready, text);
		if (err < 0) {
			fprintf(stderr, "treehog: cannot write %s: %s\n", ready, strerror(-err));
			return 1;
		}
	} else {
		fputs(text, stdout);
		fflush(stdout);
	}

	for (;;)
		pause();
}
