// SPDX-License-Identifier: GPL-2.0-only
/*
 * eventfd (class "eventfd", image fs-eventfds.img of ckpt.fs.Eventfd).
 *
 * Dump reads the counter ("eventfd-count", hex) and the semaphore mode
 * ("eventfd-semaphore") from fdinfo; nothing is read from the eventfd, so
 * the counter stays as it was.  Restore creates an eventfd in the same mode
 * with O_NONBLOCK as saved and writes the counter into it (a write takes
 * the full 64-bit range, eventfd()'s initial value only 32 bits).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fs.h"

static uint32_t eventfd_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Fs__Eventfd *)m)->id;
}

static int eventfd_dump(struct fs_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	Ckpt__Fs__Eventfd r = CKPT__FS__EVENTFD__INIT;
	char what[64], *info, *s;
	int ret;

	snprintf(what, sizeof(what), "fd %d of PID %d (eventfd)", fd->fd, (int)fd->pid);
	ret = fs_read_fdinfo(p, fd->local_fd, what, &info);
	if (ret)
		return ret;
	s = strstr(info, "eventfd-count:");
	if (!s) {
		free(info);
		fs_err(p, "%s: fdinfo has no eventfd-count; this kernel is too old for ckpt", what);
		return -EINVAL;
	}
	r.count = strtoull(s + 14, NULL, 16);
	s = strstr(info, "eventfd-semaphore:");
	if (!s) {
		free(info);
		fs_err(p, "%s: fdinfo has no eventfd-semaphore line, so EFD_SEMAPHORE cannot be told; "
			  "this kernel is too old for ckpt to save eventfds",
		       what);
		return -EINVAL;
	}
	r.semaphore = strtoul(s + 18, NULL, 10) != 0;
	free(info);

	r.has_id = true;
	r.id = obj_id;
	r.has_flags = true;
	r.flags = fd->flags & ~(unsigned int)O_CLOEXEC;
	r.has_count = true;
	r.has_semaphore = true;
	ret = fs_save(p, FS_EVENTFD, &r.base);
	if (ret)
		return ret;
	fs_debug(p, "%s: eventfd %u count %" PRIu64 "%s flags 0%o", what, obj_id, r.count,
		 r.semaphore ? " semaphore" : "", r.flags);
	return 0;
}

static int eventfd_restore(struct fs_priv *p, const ProtobufCMessage *m, int *out)
{
	const Ckpt__Fs__Eventfd *r = (const Ckpt__Fs__Eventfd *)m;
	int fd, e, ret;

	if (r->count == UINT64_MAX) {
		fs_err(p, "restore: eventfd object %u has the impossible count 2^64-1; the images are "
			  "damaged",
		       r->id);
		return -EBADMSG;
	}
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | (r->semaphore ? EFD_SEMAPHORE : 0));
	if (fd < 0) {
		e = errno;
		fs_err(p, "restore: cannot create eventfd object %u: %s", r->id, strerror(e));
		return fs_errno(e);
	}
	if (r->count) {
		uint64_t v = r->count;

		if (write(fd, &v, sizeof(v)) != sizeof(v)) {
			e = errno;
			fs_err(p, "restore: cannot set the count of eventfd object %u to %" PRIu64
				  ": %s",
			       r->id, r->count, strerror(e));
			close(fd);
			return fs_errno(e);
		}
	}
	ret = fs_set_fl(p, fd, r->flags, "an eventfd");
	if (ret) {
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

const struct fs_class fs_eventfd_class = {
	.name = "eventfd",
	.img_name = "fs-eventfds.img",
	.desc = &ckpt__fs__eventfd__descriptor,
	.rec_id = eventfd_id,
	.dump = eventfd_dump,
	.restore = eventfd_restore,
};
