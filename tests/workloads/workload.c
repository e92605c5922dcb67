/* SPDX-License-Identifier: GPL-2.0-only */
/* The workload protocol shared by every test workload (see workload.h). */
#include "workload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t wl_usr1;
struct sigaction wl_usr1_action;
pid_t wl_ready_pid;

static const char *wl_name = "workload";
static char wl_reasons[1024];
static int wl_nfail;

static void usr1_handler(int sig)
{
	(void)sig;
	wl_usr1 = 1;
}

/* The SIGUSR1 action: distinctive mask and flags, so a restore that loses
 * or mixes up sigactions is caught. */
static void usr1_mask(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGUSR2);
	sigaddset(set, SIGWINCH);
	sigaddset(set, SIGRTMIN + 5);
}
#define WL_USR1_FLAGS (SA_RESTART | SA_ONSTACK)

void wl_init(const char *name)
{
	struct sigaction sa;

	wl_name = name;
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Our own session: the restore then needs nothing from the driver's. */
	setsid();
	/* Inherit nothing but 0, 1, 2. */
	if (syscall(SYS_close_range, 3U, ~0U, 0U)) {
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr1_handler;
	usr1_mask(&sa.sa_mask);
	sa.sa_flags = WL_USR1_FLAGS;
	if (sigaction(SIGUSR1, &sa, NULL))
		wl_die("sigaction(SIGUSR1): %s", strerror(errno));
	if (sigaction(SIGUSR1, NULL, &wl_usr1_action))
		wl_die("sigaction(SIGUSR1) read back: %s", strerror(errno));
}

void wl_check_usr1_action(void)
{
	struct sigaction now;
	sigset_t want;

	if (sigaction(SIGUSR1, NULL, &now)) {
		wl_fail("sigaction(SIGUSR1) read: %s", strerror(errno));
		return;
	}
	usr1_mask(&want);
	WL_CHECK(now.sa_handler == usr1_handler, "SIGUSR1 handler %p, want %p",
		 (void *)now.sa_handler, (void *)usr1_handler);
	WL_CHECK(now.sa_flags == wl_usr1_action.sa_flags, "SIGUSR1 sa_flags %#x, want %#x",
		 (unsigned)now.sa_flags, (unsigned)wl_usr1_action.sa_flags);
	WL_CHECK((now.sa_flags & WL_USR1_FLAGS) == WL_USR1_FLAGS, "SIGUSR1 flags lost SA_RESTART|SA_ONSTACK (%#x)",
		 (unsigned)now.sa_flags);
	WL_CHECK(now.sa_restorer == wl_usr1_action.sa_restorer, "SIGUSR1 sa_restorer %p, want %p",
		 (void *)now.sa_restorer, (void *)wl_usr1_action.sa_restorer);
	for (int s = 1; s < NSIG; s++) {
		/* glibc hides its two internal signals (32, 33) anyway */
		if (s == 32 || s == 33)
			continue;
		if (sigismember(&now.sa_mask, s) != sigismember(&want, s)) {
			wl_fail("SIGUSR1 sa_mask differs at signal %d (%s)", s,
				sigismember(&want, s) ? "missing" : "extra");
			break;
		}
	}
}

const char *wl_dir(void)
{
	const char *d = getenv("CKPT_TEST_DIR");

	return d && *d ? d : "/tmp";
}

uint64_t wl_now_ns(int clock)
{
	struct timespec ts;

	if (clock_gettime(clock, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

ssize_t wl_read_file(const char *path, char *buf, size_t size)
{
	size_t off = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while (off + 1 < size) {
		ssize_t n = read(fd, buf + off, size - 1 - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	buf[off] = 0;
	close(fd);
	return (ssize_t)off;
}

/* Write text to path atomically: a tmp file beside it, then rename. */
static int write_atomic(const char *path, const char *text)
{
	char tmp[4096];
	size_t len = strlen(text), off = 0;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%d.%llx", path, (int)getpid(),
		 (unsigned long long)wl_now_ns(CLOCK_MONOTONIC));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)n;
	}
	if (close(fd) || rename(tmp, path)) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

void wl_ready(void)
{
	const char *path = getenv("CKPT_TEST_READY");
	char buf[32];

	wl_ready_pid = getpid();
	printf("%s: ready, pid %d\n", wl_name, (int)wl_ready_pid);
	if (!path || !*path)
		return;
	snprintf(buf, sizeof(buf), "%d\n", (int)wl_ready_pid);
	if (write_atomic(path, buf))
		wl_die("cannot write ready file %s: %s", path, strerror(errno));
}

void wl_wait_usr1(void)
{
	while (!wl_usr1)
		pause();
}

void wl_vappend(char *buf, size_t size, const char *fmt, va_list ap)
{
	size_t used = strlen(buf);

	if (used && used + 2 < size) {
		strcat(buf, "; ");
		used += 2;
	}
	if (used + 1 < size)
		vsnprintf(buf + used, size - used, fmt, ap);
}

void wl_fail(const char *fmt, ...)
{
	size_t used = strlen(wl_reasons);
	va_list ap;

	wl_nfail++;
	if (wl_nfail > 4) {
		if (wl_nfail == 5 && used + 6 < sizeof(wl_reasons))
			strcat(wl_reasons, "; ...");
		return;
	}
	va_start(ap, fmt);
	wl_vappend(wl_reasons, sizeof(wl_reasons), fmt, ap);
	va_end(ap);
}

int wl_failed(void)
{
	return wl_nfail;
}

static __attribute__((noreturn)) void report(const char *text, int code)
{
	const char *path = getenv("CKPT_TEST_RESULT");

	printf("%s: %s", wl_name, text);
	fflush(stdout);
	if (path && *path && write_atomic(path, text)) {
		fprintf(stderr, "%s: cannot write result file %s: %s\n", wl_name, path, strerror(errno));
		_exit(3);
	}
	_exit(code);
}

void wl_finish(void)
{
	char text[sizeof(wl_reasons) + 16];

	if (wl_ready_pid)
		WL_CHECK(getpid() == wl_ready_pid, "getpid() is %d, was %d at ready time", (int)getpid(),
			 (int)wl_ready_pid);
	if (!wl_nfail)
		report("PASS\n", 0);
	snprintf(text, sizeof(text), "FAIL: %s\n", wl_reasons);
	report(text, 1);
}

void wl_die(const char *fmt, ...)
{
	char text[1200], msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(text, sizeof(text), "FAIL: setup: %s\n", msg);
	fprintf(stderr, "%s: %s", wl_name, text);
	{
		const char *path = getenv("CKPT_TEST_RESULT");
		if (path && *path)
			write_atomic(path, text);
	}
	_exit(2);
}

static volatile sig_atomic_t member_usr2;

static void on_member_usr2(int sig)
{
	(void)sig;
	member_usr2 = 1;
}

void wl_member_setup(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_member_usr2;
	sigaction(SIGUSR2, &sa, NULL);
}

void wl_member(const char *name, pid_t want_ppid, pid_t want_pgid, pid_t want_sid)
{
	pid_t me = getpid();
	char path[4096], text[256];
	int bad = 0;

	while (!member_usr2)
		pause();
	bad |= (getppid() != want_ppid) << 0;
	bad |= (getpgid(0) != want_pgid) << 1;
	bad |= (getsid(0) != want_sid) << 2;
	bad |= (getpid() != me) << 3;
	snprintf(text, sizeof(text), "%s %s pid %d ppid %d/%d pgid %d/%d sid %d/%d\n", name,
		 bad ? "BAD" : "OK", (int)getpid(), (int)getppid(), (int)want_ppid, (int)getpgid(0),
		 (int)want_pgid, (int)getsid(0), (int)want_sid);
	snprintf(path, sizeof(path), "%s/%s.res", wl_dir(), name);
	write_atomic(path, text);
	/* stay until stopped: the parent must not see us go early */
	for (;;)
		pause();
}

int wl_member_result(const char *name, char *buf, size_t len)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.res", wl_dir(), name);
	for (int i = 0; i < 500; i++) {
		if (wl_read_file(path, buf, len) > 0 && strchr(buf, '\n'))
			return 0;
		usleep(10000);
	}
	return -1;
}

int wl_write_file(const char *path, const char *text)
{
	return write_atomic(path, text);
}
