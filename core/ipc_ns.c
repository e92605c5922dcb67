/* SPDX-License-Identifier: GPL-2.0-only */
/* Entering a tree's ipc namespace for a while (SysV objects and the ipc
 * sysctls are those of the caller's namespace), and its sysctls. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipc_ns.h"
#include "log.h"
#include "proc.h"

int ipc_ns_enter(pid_t pid, int *back)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	*back = open("/proc/self/ns/ipc", O_RDONLY | O_CLOEXEC);
	if (*back < 0) {
		pr_err("ipc", "cannot open our own ipc namespace: %s", strerror(errno));
		return -errno;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWIPC)) {
		int err = errno;
		pr_err("ipc", "cannot enter the ipc namespace of PID %d: %s", pid, strerror(err));
		if (fd >= 0)
			close(fd);
		close(*back);
		*back = -1;
		return -err;
	}
	close(fd);
	return 0;
}

int ipc_ns_leave(int back)
{
	if (back < 0)
		return 0;
	int ret = setns(back, CLONE_NEWIPC) ? -errno : 0;
	if (ret)
		pr_err("ipc", "cannot go back to our own ipc namespace: %s", strerror(-ret));
	close(back);
	return ret;
}

int ipc_sysctl_read(const char *name, char *buf, size_t len)
{
	char path[96], *text;
	snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
	int ret = proc_read_file(path, &text, NULL);
	if (ret) {
		pr_err("ipc", "cannot read %s: %s", path, strerror(-ret));
		return ret;
	}
	snprintf(buf, len, "%s", text);
	free(text);
	return 0;
}

int ipc_sysctl_write(const char *name, const char *val)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, strlen(val)) < 0) {
		int err = errno;
		pr_err("ipc", "cannot set %s to %s: %s", path, val, strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	close(fd);
	return 0;
}
