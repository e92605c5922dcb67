// SPDX-License-Identifier: GPL-2.0-only
/*
 * Named FIFOs (class "fifo", image fs-fifos.img of ckpt.fs.Fifo).
 *
 * Only FIFOs with an empty buffer for now: dump refuses one with queued
 * bytes.  Anonymous pipes ("pipe:[ino]") are not claimed here.
 *
 * Restore opens the node again with its flags.  Opening an end blocks (or,
 * with O_NONBLOCK, fails with ENXIO for a writer) while the other end is not
 * open, so the restore first holds the FIFO open O_RDWR, opens the end
 * O_NONBLOCK and then clears O_NONBLOCK when the dump did not have it.  The
 * holds are let go at restore_resume, when every end is in its task.  A
 * node removed since the dump is created again with mkfifo.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

static uint32_t fifo_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Fs__Fifo *)m)->id;
}

static int fifo_dump(struct fs_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	Ckpt__Fs__Fifo r = CKPT__FS__FIFO__INIT;
	const struct stat *st = &fd->st;
	int queued = 0, psz = 0, ret;
	size_t len;

	if (fd->link[0] != '/') {
		fs_err(p, "fd %d of PID %d: fifo '%s' has no path ckpt can open again; fifos of "
			  "this kind are not supported yet",
		       fd->fd, (int)fd->pid, fd->link);
		return -EINVAL;
	}
	if (fs_link_deleted(fd->link, st, &len)) {
		fs_err(p, "fd %d of PID %d: fifo %.*s was deleted; unlinked fifos are not "
			  "supported yet",
		       fd->fd, (int)fd->pid, (int)len, fd->link);
		return -ENOENT;
	}

	/* An O_PATH fd has no pipe behind it to ask. */
	if (!(fd->flags & O_PATH)) {
		if (ioctl(fd->local_fd, FIONREAD, &queued) < 0) {
			int e = errno;

			fs_err(p, "fd %d of PID %d: cannot read the queue length of fifo %s: %s",
			       fd->fd, (int)fd->pid, fd->link, strerror(e));
			return fs_errno(e);
		}
		if (queued > 0) {
			fs_err(p, "fd %d of PID %d: fifo %s has %d bytes queued; queued pipe data "
				  "is not supported yet",
			       fd->fd, (int)fd->pid, fd->link, queued);
			return -EBUSY;
		}
		psz = fcntl(fd->local_fd, F_GETPIPE_SZ);
		if (psz < 0) {
			int e = errno;

			fs_err(p, "fd %d of PID %d: cannot read the pipe size of fifo %s: %s",
			       fd->fd, (int)fd->pid, fd->link, strerror(e));
			return fs_errno(e);
		}
	}
	if ((fd->flags & O_ASYNC) && !(fd->flags & O_PATH))
		fs_warn(p, "fd %d of PID %d: fifo %s has O_ASYNC; its signal owner is not saved",
			fd->fd, (int)fd->pid, fd->link);

	r.has_id = true;
	r.id = obj_id;
	r.path = (char *)fd->link; /* pack only reads it */
	r.has_flags = true;
	r.flags = fd->flags & ~(unsigned int)(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC);
	r.has_pipe_size = true;
	r.pipe_size = (uint32_t)psz;
	r.has_mode = true;
	r.mode = st->st_mode;
	r.has_uid = true;
	r.uid = st->st_uid;
	r.has_gid = true;
	r.gid = st->st_gid;
	r.has_dev = true;
	r.dev = st->st_dev;
	r.has_ino = true;
	r.ino = st->st_ino;

	ret = fs_save(p, FS_FIFO, &r.base);
	if (ret)
		return ret;
	fs_debug(p, "fd %d of PID %d: fifo %u %s flags 0%o pipe size %d", fd->fd, (int)fd->pid,
		 obj_id, fd->link, r.flags, psz);
	return 0;
}

/* Make sure path is a FIFO, creating it again when it is gone. */
static int fifo_node(struct fs_priv *p, const Ckpt__Fs__Fifo *r, struct stat *st)
{
	mode_t perm = r->has_mode ? (r->mode & 07777) : 0600;
	int e;

	if (stat(r->path, st) == 0) {
		if (S_ISFIFO(st->st_mode))
			return 0;
		fs_err(p, "restore: %s is no longer a fifo (mode 0%o); remove what replaced it",
		       r->path, (unsigned int)st->st_mode);
		return -ESTALE;
	}
	e = errno;
	if (e != ENOENT) {
		fs_err(p, "restore: cannot stat fifo %s: %s", r->path, strerror(e));
		return fs_errno(e);
	}

	if (mkfifo(r->path, perm) < 0 && errno != EEXIST) {
		e = errno;
		fs_err(p, "restore: fifo %s is gone and cannot be created again: %s", r->path,
		       strerror(e));
		return fs_errno(e);
	}
	/* mkfifo applied our umask; give the node its own mode and owner. */
	if (chmod(r->path, perm) < 0)
		fs_warn(p, "restore: cannot set mode 0%o on the recreated fifo %s: %s",
			(unsigned int)perm, r->path, strerror(errno));
	if (r->has_uid && r->has_gid && lchown(r->path, r->uid, r->gid) < 0)
		fs_warn(p, "restore: cannot give the recreated fifo %s to %u:%u: %s", r->path,
			r->uid, r->gid, strerror(errno));
	fs_info(p, "restore: fifo %s was gone; created it again", r->path);

	if (stat(r->path, st) < 0 || !S_ISFIFO(st->st_mode)) {
		fs_err(p, "restore: the recreated fifo %s vanished or was replaced", r->path);
		return -ESTALE;
	}
	return 0;
}

/* Hold the FIFO open O_RDWR until restore_resume (once per node). */
static int fifo_hold(struct fs_priv *p, const char *path, const struct stat *st)
{
	struct fs_fifo_hold *h;
	struct stat hst;
	int fd, e;

	for (size_t i = 0; i < p->nholds; i++)
		if (p->holds[i].dev == st->st_dev && p->holds[i].ino == st->st_ino)
			return 0;

	if (p->nholds == p->holds_cap) {
		size_t ncap = p->holds_cap ? p->holds_cap * 2 : 8;

		h = realloc(p->holds, ncap * sizeof(*h));
		if (!h) {
			fs_err(p, "restore: out of memory opening fifo %s", path);
			return -ENOMEM;
		}
		p->holds = h;
		p->holds_cap = ncap;
	}

	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		fs_err(p, "restore: cannot open fifo %s: %s", path, strerror(e));
		return fs_errno(e);
	}
	if (fstat(fd, &hst) < 0 || hst.st_dev != st->st_dev || hst.st_ino != st->st_ino) {
		close(fd);
		fs_err(p, "restore: fifo %s was replaced while it was being opened", path);
		return -ESTALE;
	}
	h = &p->holds[p->nholds++];
	h->dev = st->st_dev;
	h->ino = st->st_ino;
	h->fd = fd;
	return 0;
}

static int fifo_restore(struct fs_priv *p, const ProtobufCMessage *m, int *out)
{
	const Ckpt__Fs__Fifo *r = (const Ckpt__Fs__Fifo *)m;
	unsigned int saved = r->flags;
	struct stat st, fst;
	int fd, fl, e, ret;

	if (!r->path || r->path[0] != '/') {
		fs_err(p, "restore: fifo object %u has no path; the images are damaged", r->id);
		return -EBADMSG;
	}

	ret = fifo_node(p, r, &st);
	if (ret)
		return ret;

	if (saved & O_PATH) {
		fd = open(r->path, (int)fs_open_flags(saved));
		if (fd < 0) {
			e = errno;
			fs_err(p, "restore: cannot open fifo %s (O_PATH): %s", r->path,
			       strerror(e));
			return fs_errno(e);
		}
		*out = fd;
		return 0;
	}

	ret = fifo_hold(p, r->path, &st);
	if (ret)
		return ret;

	fd = open(r->path, (int)(fs_open_flags(saved) | O_NONBLOCK));
	if (fd < 0) {
		e = errno;
		fs_err(p, "restore: cannot open fifo %s (flags 0%o): %s", r->path, saved,
		       strerror(e));
		return fs_errno(e);
	}
	if (fstat(fd, &fst) < 0 || fst.st_dev != st.st_dev || fst.st_ino != st.st_ino) {
		fs_err(p, "restore: fifo %s was replaced while it was being opened", r->path);
		e = ESTALE;
		goto err;
	}

	if (r->has_pipe_size && r->pipe_size > 0) {
		int cur = fcntl(fd, F_GETPIPE_SZ);

		if (cur != (int)r->pipe_size && fcntl(fd, F_SETPIPE_SZ, (int)r->pipe_size) < 0) {
			e = errno;
			fs_err(p, "restore: cannot set the pipe size of fifo %s to %u: %s "
				  "(see /proc/sys/fs/pipe-max-size)",
			       r->path, r->pipe_size, strerror(e));
			goto err;
		}
	}

	if (!(saved & O_NONBLOCK)) {
		fl = fcntl(fd, F_GETFL);
		if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
			e = errno;
			fs_err(p, "restore: cannot clear O_NONBLOCK on fifo %s: %s", r->path,
			       strerror(e));
			goto err;
		}
	}
	e = -fs_fixup_flags(p, fd, saved, r->path);
	if (e)
		goto err;

	*out = fd;
	return 0;
err:
	close(fd);
	return fs_errno(e);
}

const struct fs_class fs_fifo_class = {
	.name = "fifo",
	.img_name = "fs-fifos.img",
	.desc = &ckpt__fs__fifo__descriptor,
	.rec_id = fifo_id,
	.dump = fifo_dump,
	.restore = fifo_restore,
};
