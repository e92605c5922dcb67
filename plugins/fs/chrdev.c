// SPDX-License-Identifier: GPL-2.0-only
/*
 * Character devices (class "chrdev", image fs-chrdevs.img of ckpt.fs.ChrDev).
 *
 * Only the stateless memory devices are claimed: /dev/null, /dev/zero,
 * /dev/full, /dev/random and /dev/urandom (major 1).  Their open file holds
 * nothing but its flags, so restore opens the same path again and checks it
 * is still the same device.  Every other device (ttys, GPUs, tun ...) is
 * left to the plugin that knows its state.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs.h"

static bool chrdev_supported(unsigned int maj, unsigned int min)
{
	if (maj != 1)
		return false;
	switch (min) {
	case 3: /* null */
	case 5: /* zero */
	case 7: /* full */
	case 8: /* random */
	case 9: /* urandom */
		return true;
	default:
		return false;
	}
}

static uint32_t chrdev_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Fs__ChrDev *)m)->id;
}

static int chrdev_dump(struct fs_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	Ckpt__Fs__ChrDev r = CKPT__FS__CHR_DEV__INIT;
	unsigned int maj = major(fd->st.st_rdev), min = minor(fd->st.st_rdev);
	size_t len;
	int ret;

	if (!chrdev_supported(maj, min)) {
		fs_debug(p, "fd %d of PID %d: character device %u:%u (%s) is not handled by fs",
			 fd->fd, (int)fd->pid, maj, min, fd->link);
		return CKPT_NOT_MINE;
	}
	if (fd->link[0] != '/') {
		fs_err(p, "fd %d of PID %d: character device %u:%u has no path ckpt can open "
			  "again (link '%s'); devices opened this way are not supported yet",
		       fd->fd, (int)fd->pid, maj, min, fd->link);
		return -EINVAL;
	}
	if (fs_link_deleted(fd->link, &fd->st, &len)) {
		fs_err(p, "fd %d of PID %d: device node %.*s (%u:%u) was deleted; unlinked device "
			  "nodes are not supported yet",
		       fd->fd, (int)fd->pid, (int)len, fd->link, maj, min);
		return -ENOENT;
	}

	r.has_id = true;
	r.id = obj_id;
	r.path = (char *)fd->link; /* pack only reads it */
	r.has_flags = true;
	r.flags = fd->flags & ~(unsigned int)(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC);
	r.has_rdev_major = true;
	r.rdev_major = maj;
	r.has_rdev_minor = true;
	r.rdev_minor = min;
	r.has_mode = true;
	r.mode = fd->st.st_mode;

	ret = fs_save(p, FS_CHRDEV, &r.base);
	if (ret)
		return ret;
	fs_debug(p, "fd %d of PID %d: chrdev %u %s (%u:%u) flags 0%o", fd->fd, (int)fd->pid,
		 obj_id, fd->link, maj, min, r.flags);
	return 0;
}

static int chrdev_restore(struct fs_priv *p, const ProtobufCMessage *m, int *out)
{
	const Ckpt__Fs__ChrDev *r = (const Ckpt__Fs__ChrDev *)m;
	struct stat st;
	int fd, e;

	if (!r->path || r->path[0] != '/' || !r->has_rdev_major || !r->has_rdev_minor) {
		fs_err(p, "restore: chrdev object %u has no path or device number; the images "
			  "are damaged",
		       r->id);
		return -EBADMSG;
	}

	fd = open(r->path, (int)fs_open_flags(r->flags));
	if (fd < 0) {
		e = errno;
		if (e == ENOENT)
			fs_err(p, "restore: device node %s (%u:%u) is gone; create it again "
				  "(mknod %s c %u %u)",
			       r->path, r->rdev_major, r->rdev_minor, r->path, r->rdev_major,
			       r->rdev_minor);
		else
			fs_err(p, "restore: cannot open device %s (flags 0%o): %s", r->path,
			       r->flags, strerror(e));
		return fs_errno(e);
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		fs_err(p, "restore: cannot stat %s: %s", r->path, strerror(e));
		goto err;
	}
	if (!S_ISCHR(st.st_mode) || major(st.st_rdev) != r->rdev_major ||
	    minor(st.st_rdev) != r->rdev_minor) {
		if (S_ISCHR(st.st_mode))
			fs_err(p, "restore: %s is now device %u:%u, the dump had %u:%u; fix the "
				  "device node",
			       r->path, major(st.st_rdev), minor(st.st_rdev), r->rdev_major,
			       r->rdev_minor);
		else
			fs_err(p, "restore: %s is no longer a character device (mode 0%o), the dump "
				  "had %u:%u; fix the device node",
			       r->path, (unsigned int)st.st_mode, r->rdev_major, r->rdev_minor);
		e = ESTALE;
		goto err;
	}
	e = -fs_fixup_flags(p, fd, r->flags, r->path);
	if (e)
		goto err;

	*out = fd;
	return 0;
err:
	close(fd);
	return fs_errno(e);
}

const struct fs_class fs_chrdev_class = {
	.name = "chrdev",
	.img_name = "fs-chrdevs.img",
	.desc = &ckpt__fs__chr_dev__descriptor,
	.rec_id = chrdev_id,
	.dump = chrdev_dump,
	.restore = chrdev_restore,
};
