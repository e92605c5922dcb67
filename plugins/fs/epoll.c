// SPDX-License-Identifier: GPL-2.0-only
/*
 * epoll (class "epoll", image fs-epolls.img of ckpt.fs.Epoll).
 *
 * Dump: the interest list comes from fdinfo, one "tfd: N events: X data: D"
 * line per registered target.  The kernel keys an item on (file, fd number
 * it was added with); each one is checked with kcmp(KCMP_EPOLL_TFD) to be
 * the file the task still has at that number, else the dump is refused:
 * the registration could not be made again.  Targets are fds of the
 * process whose fd the epoll was dumped through (owner_pid); an epoll
 * shared with other processes of the tree is set up by that one only, and
 * an item another process added is refused by the kcmp check.
 *
 * Restore: the restore hook (in the controller) only creates the epoll
 * instance; the targets are added in restore_in_task, inside the restored
 * owner task once all its fds are at their numbers, so every item is keyed on the
 * right (file, fd) pair.  events keeps EPOLLET, EPOLLONESHOT, EPOLLRDHUP,
 * EPOLLEXCLUSIVE and EPOLLWAKEUP; a one-shot item that already fired has
 * only those flag bits left and is added so, i.e. disabled, as it was.
 */
#include <inttypes.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs.h"

static uint32_t epoll_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Fs__Epoll *)m)->id;
}

static void free_targets(Ckpt__Fs__EpollTarget **t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(t[i]);
	free(t);
}

/* Is target fd tfd of pid still the file registered in epoll fd efd? */
static int check_target(struct fs_priv *p, const struct ckpt_fd_info *fd, const char *what, int tfd)
{
	struct kcmp_epoll_slot slot = { .efd = (uint32_t)fd->fd, .tfd = (uint32_t)tfd, .toff = 0 };
	long r = syscall(SYS_kcmp, fd->pid, fd->pid, KCMP_EPOLL_TFD, tfd, &slot);

	if (r == 0)
		return 0;
	if (r < 0 && errno == EBADF) {
		fs_err(p, "%s: its target fd %d is no longer open in PID %d (closed after "
			  "EPOLL_CTL_ADD while a dup keeps the file alive); such a registration "
			  "cannot be restored: EPOLL_CTL_DEL it before closing",
		       what, tfd, (int)fd->pid);
		return -EBADF;
	}
	if (r < 0) {
		int e = errno;

		fs_err(p, "%s: cannot check target fd %d with kcmp: %s", what, tfd, strerror(e));
		return fs_errno(e);
	}
	fs_err(p, "%s: its target fd %d now names another file in PID %d than the one "
		  "registered (closed and reused); such a registration cannot be restored",
	       what, tfd, (int)fd->pid);
	return -ESTALE;
}

static int epoll_dump(struct fs_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	Ckpt__Fs__Epoll r = CKPT__FS__EPOLL__INIT;
	Ckpt__Fs__EpollTarget **tg = NULL;
	size_t n = 0, cap = 0;
	char what[64], *info, *s;
	int ret;

	snprintf(what, sizeof(what), "fd %d of PID %d (epoll)", fd->fd, (int)fd->pid);
	ret = fs_read_fdinfo(p, fd->local_fd, what, &info);
	if (ret)
		return ret;

	for (s = info; (s = strstr(s, "tfd:")); s += 4) {
		unsigned long long data, ino = 0;
		unsigned int events, sdev = 0;
		Ckpt__Fs__EpollTarget *t;
		const char *q;
		int tfd;

		if (sscanf(s, "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3) {
			fs_err(p, "%s: cannot parse its fdinfo line '%.60s'", what, s);
			ret = -EINVAL;
			goto out;
		}
		q = strchr(s, '\n');
		{
			const char *i = strstr(s, " ino:"), *d = strstr(s, " sdev:");

			if (i && (!q || i < q))
				ino = strtoull(i + 5, NULL, 16);
			if (d && (!q || d < q))
				sdev = (unsigned int)strtoul(d + 6, NULL, 16);
		}
		ret = check_target(p, fd, what, tfd);
		if (ret)
			goto out;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			Ckpt__Fs__EpollTarget **nt = realloc(tg, ncap * sizeof(*nt));

			if (!nt) {
				fs_err(p, "%s: out of memory", what);
				ret = -ENOMEM;
				goto out;
			}
			tg = nt;
			cap = ncap;
		}
		t = malloc(sizeof(*t));
		if (!t) {
			fs_err(p, "%s: out of memory", what);
			ret = -ENOMEM;
			goto out;
		}
		ckpt__fs__epoll_target__init(t);
		t->has_tfd = true;
		t->tfd = tfd;
		t->has_events = true;
		t->events = events;
		t->has_data = true;
		t->data = data;
		t->has_ino = true;
		t->ino = ino;
		t->has_sdev = true;
		t->sdev = sdev;
		tg[n++] = t;
	}

	r.has_id = true;
	r.id = obj_id;
	r.has_flags = true;
	r.flags = fd->flags & ~(unsigned int)O_CLOEXEC;
	r.n_targets = n;
	r.targets = tg;
	r.has_owner_pid = true;
	r.owner_pid = fs_ns_pid(fd->pid);
	ret = fs_save(p, FS_EPOLL, &r.base);
	if (!ret)
		fs_debug(p, "%s: epoll %u with %zu targets", what, obj_id, n);
out:
	free(info);
	free_targets(tg, n);
	return ret;
}

static int epoll_restore(struct fs_priv *p, const ProtobufCMessage *m, int *out)
{
	const Ckpt__Fs__Epoll *r = (const Ckpt__Fs__Epoll *)m;
	int fd, ret;

	fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		fs_err(p, "restore: cannot create epoll object %u: %s", r->id, strerror(e));
		return fs_errno(e);
	}
	ret = fs_set_fl(p, fd, r->flags, "an epoll fd");
	if (ret) {
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

/* Inside the restored task: every target is at its fd number now. */
static int epoll_restore_in_task(struct fs_priv *p, const ProtobufCMessage *m, int fd)
{
	const Ckpt__Fs__Epoll *r = (const Ckpt__Fs__Epoll *)m;

	/* shared with other processes: the owner's fd numbers are meant */
	if (r->has_owner_pid && r->owner_pid != (int32_t)getpid())
		return 0;
	for (size_t i = 0; i < r->n_targets; i++) {
		const Ckpt__Fs__EpollTarget *t = r->targets[i];
		struct epoll_event ev = { .events = t->events, .data.u64 = t->data };

		if (epoll_ctl(fd, EPOLL_CTL_ADD, t->tfd, &ev) < 0) {
			int e = errno;

			fs_err(p, "restore: epoll fd %d: cannot add target fd %d (events %#x): %s%s",
			       fd, t->tfd, t->events, strerror(e),
			       e == EBADF ? " (that fd is not open in the task)" : "");
			return fs_errno(e);
		}
	}
	return 0;
}

const struct fs_class fs_epoll_class = {
	.name = "epoll",
	.img_name = "fs-epolls.img",
	.desc = &ckpt__fs__epoll__descriptor,
	.rec_id = epoll_id,
	.dump = epoll_dump,
	.restore = epoll_restore,
	.restore_in_task = epoll_restore_in_task,
};
