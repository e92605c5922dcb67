/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The tree's own user namespace: the root is cloned into a new one and
 * waits while the controller, which is privileged in the parent namespace,
 * writes its maps.  setgroups goes first: "deny" is accepted only before
 * gid_map is written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "restore.h"

static int write_proc(pid_t pid, const char *file, const char *text, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
		int err = -errno;
		pr_err("restore", "cannot write %s of the new user namespace: %s", file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err;
	}
	close(fd);
	return 0;
}

static int write_map(pid_t pid, const char *file, Ckpt__IdMapRange **m, size_t n)
{
	/* the kernel takes a map in one write of at most a page */
	char buf[4096];
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n", m[i]->first,
				 m[i]->lower_first, m[i]->count);
		if (w < 0 || (size_t)w >= sizeof(buf) - len) {
			pr_err("restore", "%s: %zu ranges do not fit in one page", file, n);
			return -E2BIG;
		}
		len += w;
	}
	return write_proc(pid, file, buf, len);
}

int userns_write_maps(pid_t pid, const Ckpt__TaskCore *c)
{
	if (!c->n_uid_map || !c->n_gid_map) {
		pr_err("restore", "core-%u.img: the user namespace has no uid or gid map", c->pid);
		return -EBADMSG;
	}
	int ret = 0;
	if (c->setgroups_deny)
		ret = write_proc(pid, "setgroups", "deny", 4);
	if (!ret)
		ret = write_map(pid, "uid_map", c->uid_map, c->n_uid_map);
	if (!ret)
		ret = write_map(pid, "gid_map", c->gid_map, c->n_gid_map);
	return ret;
}
