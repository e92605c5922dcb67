/* SPDX-License-Identifier: GPL-2.0-only */
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "pagescan.h"
#include "plugin.h"

struct feature {
	const char *name;
	bool required; /* ckpt cannot dump/restore without it */
	bool ok;
	char detail[160];
};

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static bool probe_ptrace(char *d, size_t n)
{
	pid_t c = fork();
	if (c == 0) {
		pause();
		_exit(0);
	}
	if (c < 0) {
		snprintf(d, n, "fork: %s", strerror(errno));
		return false;
	}
	bool ok = ptrace(PTRACE_SEIZE, c, 0, 0) == 0 && ptrace(PTRACE_INTERRUPT, c, 0, 0) == 0;
	if (!ok)
		snprintf(d, n, "%s", strerror(errno));
	else
		snprintf(d, n, "PTRACE_SEIZE + PTRACE_INTERRUPT");
	kill(c, SIGKILL);
	waitpid(c, NULL, __WALL);
	return ok;
}

static bool probe_clone3_set_tid(char *d, size_t n)
{
	/* a set_tid of 0 pid entries with size 1 must be refused with EINVAL,
	 * not ENOSYS/E2BIG, where set_tid is supported */
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.set_tid_size = 1;
	ca.set_tid = 0;
	long r = syscall(SYS_clone3, &ca, sizeof(ca));
	if (r == 0)
		_exit(0);
	bool ok = r < 0 && errno == EINVAL;
	snprintf(d, n, ok ? "clone3 with set_tid" : "clone3 set_tid unavailable: %s", strerror(errno));
	return ok;
}

static bool probe_pidfd_getfd(char *d, size_t n)
{
	int pfd = syscall(SYS_pidfd_open, getpid(), 0);
	if (pfd < 0) {
		snprintf(d, n, "pidfd_open: %s", strerror(errno));
		return false;
	}
	int fd = syscall(SYS_pidfd_getfd, pfd, 2, 0);
	bool ok = fd >= 0;
	snprintf(d, n, ok ? "pidfd_open + pidfd_getfd" : "pidfd_getfd: %s", strerror(errno));
	if (fd >= 0)
		close(fd);
	close(pfd);
	return ok;
}

static bool probe_vm_readv(char *d, size_t n)
{
	char src[8] = "ckpt", dst[8] = "";
	struct iovec l = { dst, sizeof(dst) }, r = { src, sizeof(src) };
	bool ok = process_vm_readv(getpid(), &l, 1, &r, 1, 0) == sizeof(src) && !strcmp(dst, "ckpt");
	snprintf(d, n, ok ? "process_vm_readv" : "process_vm_readv: %s", strerror(errno));
	return ok;
}

static bool probe_uffd(char *d, size_t n)
{
	int fd = syscall(SYS_userfaultfd, 0);
	bool ok = fd >= 0;
	snprintf(d, n, ok ? "userfaultfd (incremental dumps, lazy restore)" : "userfaultfd: %s",
		 strerror(errno));
	if (fd >= 0)
		close(fd);
	return ok;
}

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif

/* Queued SysV messages are saved by reading them in place (MSG_COPY needs
 * CONFIG_CHECKPOINT_RESTORE); probed in a throwaway ipc namespace. */
static bool probe_msg_copy(char *d, size_t n)
{
	pid_t c = fork();
	if (c == 0) {
		struct {
			long type;
			char text[8];
		} m = { 7, "ckpt" };
		if (unshare(CLONE_NEWIPC))
			_exit(3);
		int q = msgget(IPC_PRIVATE, 0600);
		if (q < 0 || msgsnd(q, &m, 5, 0))
			_exit(3);
		memset(&m, 0, sizeof(m));
		if (msgrcv(q, &m, sizeof(m.text), 0, IPC_NOWAIT | MSG_COPY) != 5)
			_exit(errno == ENOSYS ? 1 : 2);
		_exit(m.type == 7 && !strcmp(m.text, "ckpt") ? 0 : 2);
	}
	int st = 0;
	if (c < 0 || waitpid(c, &st, 0) != c || !WIFEXITED(st)) {
		snprintf(d, n, "cannot probe: %s", strerror(errno));
		return false;
	}
	static const char *const why[] = {
		"msgrcv MSG_COPY (SysV message queues of an ipc namespace)",
		"msgrcv MSG_COPY missing (kernel without CONFIG_CHECKPOINT_RESTORE): SysV queues cannot be saved",
		"msgrcv MSG_COPY returned a wrong message",
		"cannot create an ipc namespace with a queue to probe",
	};
	int code = WEXITSTATUS(st) < 4 ? WEXITSTATUS(st) : 2;
	snprintf(d, n, "%s", why[code]);
	return code == 0;
}

int cmd_check(bool json)
{
	struct feature f[] = {
		{ "ptrace", true, false, "" },
		{ "pagemap_scan", true, false, "" },
		{ "clone3_set_tid", true, false, "" },
		{ "pidfd_getfd", true, false, "" },
		{ "process_vm_readv", true, false, "" },
		{ "userfaultfd", false, false, "" },
		{ "sysv_msg_copy", false, false, "" },
	};
	f[0].ok = probe_ptrace(f[0].detail, sizeof(f[0].detail));
	f[1].ok = pagescan_supported();
	snprintf(f[1].detail, sizeof(f[1].detail), "%s", f[1].ok ? "PAGEMAP_SCAN ioctl" : "PAGEMAP_SCAN missing (Linux 6.7+ needed)");
	f[2].ok = probe_clone3_set_tid(f[2].detail, sizeof(f[2].detail));
	f[3].ok = probe_pidfd_getfd(f[3].detail, sizeof(f[3].detail));
	f[4].ok = probe_vm_readv(f[4].detail, sizeof(f[4].detail));
	f[5].ok = probe_uffd(f[5].detail, sizeof(f[5].detail));
	f[6].ok = probe_msg_copy(f[6].detail, sizeof(f[6].detail));
	size_t nf = sizeof(f) / sizeof(f[0]);
	bool all = true;

	if (json)
		printf("{\"features\":[");
	for (size_t i = 0; i < nf; i++) {
		all &= f[i].ok || !f[i].required;
		if (json) {
			printf("%s{\"name\":", i ? "," : "");
			json_str(f[i].name);
			printf(",\"ok\":%s,\"required\":%s,\"detail\":", f[i].ok ? "true" : "false",
			       f[i].required ? "true" : "false");
			json_str(f[i].detail);
			printf("}");
		} else {
			printf("%-18s %-4s %s\n", f[i].name, f[i].ok ? "ok" : (f[i].required ? "FAIL" : "no"),
			       f[i].detail);
		}
	}
	if (json)
		printf("],\"plugins\":[");
	for (size_t i = 0; i < nplugins; i++) {
		const struct ckpt_lifecycle_hooks *lc = plugins[i].desc->lifecycle;
		char msg[256] = "loaded";
		int r = 0;
		if (HOOK_OK(lc, 1, check))
			r = lc->check(plugins[i].priv, msg, sizeof(msg));
		const char *state = r == 0 ? "ok" : "unavailable";
		if (json) {
			printf("%s{\"name\":", i ? "," : "");
			json_str(plugins[i].desc->name);
			printf(",\"state\":\"%s\",\"detail\":", state);
			json_str(msg);
			printf("}");
		} else {
			printf("plugin %-11s %-4s %s\n", plugins[i].desc->name, r == 0 ? "ok" : "n/a", msg);
		}
	}
	if (json)
		printf("],\"ok\":%s}\n", all ? "true" : "false");
	else
		printf("%s\n", all ? "Looks good." : "Some required features are missing.");
	return all ? 0 : -ENOTSUP;
}
