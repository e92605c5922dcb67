// SPDX-License-Identifier: GPL-2.0-only
/*
 * signalfd (class "signalfd", image fs-signalfds.img of ckpt.fs.Signalfd).
 *
 * A signalfd holds nothing but its signal mask (fdinfo "sigmask", bit N-1
 * for signal N) and its flags; the signals it reads are the task's pending
 * signals, which the core saves and queues again.  Restore calls signalfd4
 * directly with the 64-bit mask (glibc's sigset helpers refuse its own
 * internal signals 32 and 33, which a mask may hold).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs.h"

static uint32_t signalfd_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Fs__Signalfd *)m)->id;
}

static int signalfd_dump(struct fs_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	Ckpt__Fs__Signalfd r = CKPT__FS__SIGNALFD__INIT;
	char what[64], *info, *s;
	int ret;

	snprintf(what, sizeof(what), "fd %d of PID %d (signalfd)", fd->fd, (int)fd->pid);
	ret = fs_read_fdinfo(p, fd->local_fd, what, &info);
	if (ret)
		return ret;
	s = strstr(info, "sigmask:");
	if (!s) {
		free(info);
		fs_err(p, "%s: fdinfo has no sigmask line; this kernel is too old for ckpt", what);
		return -EINVAL;
	}
	r.sigmask = strtoull(s + 8, NULL, 16);
	free(info);

	r.has_id = true;
	r.id = obj_id;
	r.has_flags = true;
	r.flags = fd->flags & ~(unsigned int)O_CLOEXEC;
	r.has_sigmask = true;
	ret = fs_save(p, FS_SIGNALFD, &r.base);
	if (ret)
		return ret;
	fs_debug(p, "%s: signalfd %u mask %#" PRIx64 " flags 0%o", what, obj_id, r.sigmask, r.flags);
	return 0;
}

static int signalfd_restore(struct fs_priv *p, const ProtobufCMessage *m, int *out)
{
	const Ckpt__Fs__Signalfd *r = (const Ckpt__Fs__Signalfd *)m;
	uint64_t mask = r->sigmask;
	int fd, e, ret;

	/* O_CLOEXEC == SFD_CLOEXEC, O_NONBLOCK == SFD_NONBLOCK */
	fd = (int)syscall(SYS_signalfd4, -1, &mask, sizeof(mask),
			  O_CLOEXEC | (r->flags & O_NONBLOCK));
	if (fd < 0) {
		e = errno;
		fs_err(p, "restore: cannot create signalfd object %u (mask %#" PRIx64 "): %s", r->id,
		       mask, strerror(e));
		return fs_errno(e);
	}
	ret = fs_set_fl(p, fd, r->flags, "a signalfd");
	if (ret) {
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

const struct fs_class fs_signalfd_class = {
	.name = "signalfd",
	.img_name = "fs-signalfds.img",
	.desc = &ckpt__fs__signalfd__descriptor,
	.rec_id = signalfd_id,
	.dump = signalfd_dump,
	.restore = signalfd_restore,
};
