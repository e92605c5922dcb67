/* SPDX-License-Identifier: GPL-2.0-only */
/* The fd table.  The core only knows fd numbers and which open file each
 * refers to; what the open file is, and how to recreate it, belongs to the
 * plugin that claims it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dump.h"
#include "fdinfo.pb-c.h"
#include "image.h"
#include "log.h"
#include "plugin.h"
#include "proc.h"

struct dumped_file {
	pid_t pid;
	int fd;
	uint32_t obj_id;
	const char *klass;
	struct plugin *owner;
};

static struct dumped_file *dumped;
static size_t ndumped;
static uint32_t next_obj_id = 1;

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

static int list_fds(pid_t pid, int **fds, size_t *n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	size_t cap = 32, cnt = 0;
	int *arr = malloc(cap * sizeof(*arr));
	struct dirent *de;
	while (arr && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (cnt == cap) {
			int *na = realloc(arr, cap * 2 * sizeof(*arr));
			if (!na) {
				free(arr);
				arr = NULL;
				break;
			}
			arr = na;
			cap *= 2;
		}
		arr[cnt++] = atoi(de->d_name);
	}
	closedir(d);
	if (!arr)
		return -ENOMEM;
	qsort(arr, cnt, sizeof(int), cmp_int);
	*fds = arr;
	*n = cnt;
	return 0;
}

static int read_fdinfo(pid_t pid, int fd, unsigned int *flags, int64_t *pos, int *mnt_id)
{
	char path[64], *buf;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	int ret = proc_read_file(path, &buf, NULL);
	if (ret)
		return ret;
	char *p;
	if ((p = strstr(buf, "pos:")))
		*pos = strtoll(p + 4, NULL, 10);
	if ((p = strstr(buf, "flags:")))
		*flags = strtoul(p + 6, NULL, 8);
	if ((p = strstr(buf, "mnt_id:")))
		*mnt_id = atoi(p + 7);
	free(buf);
	return 0;
}

/* An open file already dumped (dup'ed fds, or later shared between tasks). */
static struct dumped_file *find_same_file(pid_t pid, int fd)
{
	for (size_t i = 0; i < ndumped; i++)
		if (syscall(SYS_kcmp, dumped[i].pid, pid, KCMP_FILE, dumped[i].fd, fd) == 0)
			return &dumped[i];
	return NULL;
}

int dump_task_files(pid_t pid, pid_t vpid)
{
	int *fds = NULL, pidfd = -1, ret;
	size_t nfds = 0;
	char name[64];
	struct ckpt_img *img = NULL;

	ret = list_fds(pid, &fds, &nfds);
	if (ret) {
		pr_err("files", "PID %d: cannot list its fds: %s", pid, strerror(-ret));
		return ret;
	}
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		ret = -errno;
		pr_err("files", "PID %d: pidfd_open failed: %s", pid, strerror(errno));
		goto out;
	}
	snprintf(name, sizeof(name), "fdinfo-%d.img", vpid);
	img = img_create(name, "ckpt.FdEntry");
	if (!img) {
		ret = -errno;
		goto out;
	}
	struct dumped_file *nd = realloc(dumped, (ndumped + nfds) * sizeof(*nd));
	if (!nd && nfds) {
		ret = -ENOMEM;
		goto out;
	}
	dumped = nd;

	for (size_t i = 0; i < nfds; i++) {
		int fd = fds[i];
		struct ckpt_fd_info info;
		char link[PATH_MAX + 32], path[64];
		const char *klass = NULL;
		struct plugin *owner = NULL;
		uint32_t obj_id;

		memset(&info, 0, sizeof(info));
		info.pid = pid;
		info.fd = fd;
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
		ret = proc_readlink(path, link, sizeof(link));
		if (ret)
			goto out;
		info.link = link;
		ret = read_fdinfo(pid, fd, &info.flags, &info.pos, &info.mnt_id);
		if (ret)
			goto out;
		bool cloexec = info.flags & O_CLOEXEC;
		info.flags &= ~O_CLOEXEC;

		struct dumped_file *same = find_same_file(pid, fd);
		if (same) {
			obj_id = same->obj_id;
			klass = same->klass;
			owner = same->owner;
		} else {
			info.local_fd = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
			if (info.local_fd < 0) {
				ret = -errno;
				pr_err("files", "PID %d: cannot get fd %d (%s): %s", pid, fd, link,
				       strerror(errno));
				goto out;
			}
			fstat(info.local_fd, &info.st);
			obj_id = next_obj_id++;
			ret = plugins_dump_fd(&info, obj_id, &owner, &klass);
			close(info.local_fd);
			if (ret == -ENOTSUP) {
				pr_err("files", "fd %d of PID %d (%s) is not claimed by any plugin; enable a plugin that handles it (see `ckpt plugins`)",
				       fd, pid, link);
				goto out;
			}
			if (ret)
				goto out;
			dumped[ndumped++] = (struct dumped_file){ pid, fd, obj_id, klass, owner };
		}

		Ckpt__FdEntry fe = CKPT__FD_ENTRY__INIT;
		fe.has_fd = 1;
		fe.fd = fd;
		fe.has_cloexec = 1;
		fe.cloexec = cloexec;
		fe.klass = (char *)klass;
		fe.plugin = (char *)owner->desc->name;
		fe.has_obj_id = 1;
		fe.obj_id = obj_id;
		ret = img_write_msg(img, &fe.base);
		if (ret)
			goto out;
		pr_debug("files", "PID %d fd %d: %s object %u (%s)", pid, fd, klass, obj_id, link);
	}
	ret = 0;
out:
	if (img) {
		int r2 = img_close(img);
		if (!ret)
			ret = r2;
	}
	if (pidfd >= 0)
		close(pidfd);
	free(fds);
	return ret;
}
