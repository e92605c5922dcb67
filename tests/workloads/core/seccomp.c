/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * seccomp: a child installs two filters (with no_new_privs): the first
 * makes uname() fail with EACCES, the second makes getpriority() fail with
 * ENOTTY.  After restore both must still be in force in the child and in
 * no one else; the child reports through a file it inherited.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workload.h"

static int deny(int nr, int err)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog p = { sizeof(f) / sizeof(f[0]), f };
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p);
}

static volatile sig_atomic_t go;
static void on_usr2(int s)
{
	(void)s;
	go = 1;
}

int main(void)
{
	char path[4200], buf[256];
	wl_init("seccomp");
	snprintf(path, sizeof(path), "%s/seccomp-child.res", wl_dir());
	int report = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (report < 0)
		wl_die("open %s", path);
	struct sigaction sa = { .sa_handler = on_usr2 };
	sigaction(SIGUSR2, &sa, NULL);

	pid_t child = fork();
	if (child == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || deny(SYS_uname, EACCES) ||
		    deny(SYS_getpriority, ENOTTY))
			_exit(3);
		while (!go)
			pause();
		struct utsname u;
		int bad = 0;
		errno = 0;
		bad |= !(uname(&u) < 0 && errno == EACCES);
		errno = 0;
		bad |= (getpriority(PRIO_PROCESS, 0) != -1 || errno != ENOTTY) << 1;
		bad |= (getpid() <= 0) << 2;
		bad |= (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) != 2) << 3;
		snprintf(buf, sizeof(buf), "%s %d\n", bad ? "BAD" : "OK", bad);
		if (pwrite(report, buf, strlen(buf), 0) < 0)
			_exit(4);
		for (;;)
			pause();
	}
	usleep(100000);
	wl_ready();
	wl_wait_usr1();

	struct utsname u;
	WL_CHECK(uname(&u) == 0, "the parent got the child's filter");
	kill(child, SIGUSR2);
	int n = -1;
	for (int i = 0; i < 500 && n <= 0; i++) {
		n = pread(report, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			usleep(10000);
	}
	if (n > 0)
		buf[n] = 0;
	WL_CHECK(n > 0 && !strncmp(buf, "OK", 2), "child: %s", n > 0 ? buf : "no report");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	unlink(path);
	wl_finish();
}
