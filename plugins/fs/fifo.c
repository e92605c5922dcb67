// SPDX-License-Identifier: GPL-2.0-only
/*
 * Named FIFOs (class "fifo", image fs-fifos.img of ckpt.fs.Fifo).
 *
 * The bytes queued in the FIFO are saved with the first end of it that is
 * dumped (read with tee() through pipe.c's fs_pipe_peek, so nothing is
 * consumed); the ends of one FIFO are grouped by the node's dev and inode.
 * Anonymous pipes ("pipe:[ino]") are pipe.c's.
 *
 * Restore opens the node again with its flags.  Opening an end blocks (or,
 * with O_NONBLOCK, fails with ENXIO for a writer) while the other end is not
 * open, so the restore first holds the FIFO open O_RDWR, sets the pipe size
 * and writes the saved bytes back through that hold, opens the end
 * O_NONBLOCK and then clears O_NONBLOCK when the dump did not have it.  The
 * holds are let go at restore_resume, when every end is in its task (the
 * bytes stay while any end is open).  A node removed since the dump is
 * created again with mkfifo.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
	uint8_t *data = NULL;
	size_t len, dlen = 0;
	int psz = 0, ret;
	char what[PATH_MAX + 64];

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

	snprintf(what, sizeof(what), "fd %d of PID %d (fifo %s)", fd->fd, (int)fd->pid, fd->link);
	/* An O_PATH fd has no pipe behind it to ask. */
	if (!(fd->flags & O_PATH)) {
		bool seen;

		ret = fs_seen_once(p, FS_FIFO, st->st_ino, st->st_dev, &seen);
		if (ret)
			return ret;
		if (!seen) {
			ret = fs_pipe_peek(p, fd, what, &data, &dlen, &psz);
			if (ret)
				return ret;
			r.has_data = true;
			r.data.data = data;
			r.data.len = dlen;
		} else {
			psz = fcntl(fd->local_fd, F_GETPIPE_SZ);
			if (psz < 0) {
				int e = errno;

				fs_err(p, "%s: cannot read its pipe size: %s", what, strerror(e));
				return fs_errno(e);
			}
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
	free(data);
	if (ret)
		return ret;
	fs_debug(p, "%s: fifo %u flags 0%o pipe size %d, %zu bytes queued", what, obj_id, r.flags,
		 psz, dlen);
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

/* Size the FIFO held open as hfd and write its saved bytes back: the
 * largest size and the data of every record of the same node in the dump. */
static int fifo_fill(struct fs_priv *p, const Ckpt__Fs__Fifo *r, int hfd)
{
	const struct fs_table *t = &p->tables[FS_FIFO];
	const Ckpt__Fs__Fifo *with_data = NULL;
	unsigned int size = r->has_pipe_size ? r->pipe_size : 0;
	char what[PATH_MAX + 32];

	for (size_t i = 0; i < t->n; i++) {
		const Ckpt__Fs__Fifo *o = (const Ckpt__Fs__Fifo *)t->recs[i];

		if (o->dev != r->dev || o->ino != r->ino || !o->path || strcmp(o->path, r->path))
			continue;
		if (o->has_data && !with_data)
			with_data = o;
		if (o->has_pipe_size && o->pipe_size > size)
			size = o->pipe_size;
	}
	if (size && fcntl(hfd, F_GETPIPE_SZ) != (int)size && fcntl(hfd, F_SETPIPE_SZ, (int)size) < 0) {
		int e = errno;

		fs_err(p, "restore: cannot set the pipe size of fifo %s to %u: %s (see "
			  "/proc/sys/fs/pipe-max-size)",
		       r->path, size, strerror(e));
		return fs_errno(e);
	}
	if (!with_data || !with_data->data.len)
		return 0;
	snprintf(what, sizeof(what), "fifo %s", r->path);
	return fs_pipe_fill(p, hfd, with_data->data.data, with_data->data.len, what);
}

/* Hold the FIFO open O_RDWR until restore_resume (once per node), with its
 * size and queued bytes. */
static int fifo_hold(struct fs_priv *p, const Ckpt__Fs__Fifo *r, const struct stat *st)
{
	const char *path = r->path;
	struct fs_fifo_hold *h;
	struct stat hst;
	int fd, e, ret;

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
	ret = fifo_fill(p, r, fd);
	if (ret) {
		close(fd);
		return ret;
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

	ret = fifo_hold(p, r, &st);
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
