// SPDX-License-Identifier: GPL-2.0-only
/*
 * Regular files (class "regfile", image fs-regfiles.img of ckpt.fs.RegFile).
 *
 * Dump saves the path, status flags, position and, to notice a file that
 * changed in between, its size and mtime.  Restore opens the path again
 * with the same access mode and status flags (never creating or truncating
 * anything), checks it is the same size unless skip_file_check is set (or
 * file_validation = none, --file-validation=none), and
 * seeks to the saved position.  A file that is gone is always an error.
 * Unlinked files are ghost.c's, memfds memfd.c's.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"

static uint32_t regfile_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Fs__RegFile *)m)->id;
}

static int regfile_dump(struct fs_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	Ckpt__Fs__RegFile r = CKPT__FS__REG_FILE__INIT;
	const struct stat *st = &fd->st;
	Ckpt__Fs__FileLock **locks = NULL;
	size_t len, nlocks = 0;
	struct stat now;
	char what[96];
	char *path;
	int ret;

	/* memfd (and hugetlb memfd) files: shmem with no name; not ours. */
	if (st->st_nlink == 0 && !strncmp(fd->link, "/memfd:", 7))
		return CKPT_NOT_MINE;

	if (fd->link[0] != '/') {
		fs_err(p, "fd %d of PID %d: regular file '%s' has no path ckpt can open again; "
			  "files of this kind are not supported yet",
		       fd->fd, (int)fd->pid, fd->link);
		return -EINVAL;
	}
	if (fs_link_deleted(fd->link, st, &len)) {
		fs_err(p, "fd %d of PID %d: %.*s was deleted; unlinked files are not supported yet",
		       fd->fd, (int)fd->pid, (int)len, fd->link);
		return -ENOENT;
	}
	if (stat(fd->link, &now) == 0 && (now.st_dev != st->st_dev || now.st_ino != st->st_ino))
		fs_warn(p, "fd %d of PID %d: %s now names another file than the open one (renamed "
			   "over, or seen from another mount namespace); restore will open what "
			   "the path names",
			fd->fd, (int)fd->pid, fd->link);
	if ((fd->flags & O_ASYNC) && !(fd->flags & O_PATH))
		fs_warn(p, "fd %d of PID %d: %s has O_ASYNC; its signal owner is not saved",
			fd->fd, (int)fd->pid, fd->link);

	snprintf(what, sizeof(what), "fd %d of PID %d (%.40s)", fd->fd, (int)fd->pid, fd->link);
	ret = fs_locks_dump(p, fd->local_fd, st, what, &locks, &nlocks);
	if (ret)
		return ret;
	r.locks = locks;
	r.n_locks = nlocks;

	path = (char *)fd->link; /* protobuf-c wants char *; pack only reads it */
	r.has_id = true;
	r.id = obj_id;
	r.path = path;
	r.has_flags = true;
	r.flags = fd->flags & ~(unsigned int)(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC);
	r.has_pos = true;
	r.pos = fd->pos;
	r.has_size = true;
	r.size = (uint64_t)st->st_size;
	r.has_mtime_ns = true;
	r.mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	r.has_mode = true;
	r.mode = st->st_mode;
	r.has_dev = true;
	r.dev = st->st_dev;
	r.has_ino = true;
	r.ino = st->st_ino;
	r.has_mnt_id = true;
	r.mnt_id = fd->mnt_id;

	ret = fs_save(p, FS_REGFILE, &r.base);
	fs_locks_free(locks, nlocks);
	if (ret)
		return ret;
	fs_debug(p, "fd %d of PID %d: regfile %u %s flags 0%o pos %lld, %zu lock(s)", fd->fd,
		 (int)fd->pid, obj_id, fd->link, r.flags, (long long)r.pos, nlocks);
	return 0;
}

static int regfile_restore(struct fs_priv *p, const ProtobufCMessage *m, int *out)
{
	const Ckpt__Fs__RegFile *r = (const Ckpt__Fs__RegFile *)m;
	unsigned int saved = r->flags;
	struct stat st;
	int fd, e;

	if (!r->path || r->path[0] != '/') {
		fs_err(p, "restore: regfile object %u has no path; the images are damaged", r->id);
		return -EBADMSG;
	}

	fd = open(r->path, (int)fs_open_flags(saved));
	if (fd < 0) {
		e = errno;
		if (e == ENOENT)
			fs_err(p, "restore: %s is gone (open regular file, object %u); put it back "
				  "where it was at the dump",
			       r->path, r->id);
		else
			fs_err(p, "restore: cannot open %s (flags 0%o): %s", r->path, saved,
			       strerror(e));
		return fs_errno(e);
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		fs_err(p, "restore: cannot stat %s: %s", r->path, strerror(e));
		goto err;
	}
	if (!S_ISREG(st.st_mode)) {
		fs_err(p, "restore: %s is no longer a regular file (mode 0%o); restore it or remove "
			  "what replaced it",
		       r->path, (unsigned int)st.st_mode);
		e = ESTALE;
		goto err;
	}
	if (!p->skip_file_check && r->has_size && (uint64_t)st.st_size != r->size) {
		fs_err(p, "restore: %s changed since the dump (size %llu -> %llu); put the dumped "
			  "version back, or restore with --file-validation=none",
		       r->path, (unsigned long long)r->size, (unsigned long long)st.st_size);
		e = ESTALE;
		goto err;
	}
	if (!p->skip_file_check && r->has_mtime_ns &&
	    (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != r->mtime_ns)
		fs_debug(p, "restore: %s has another mtime than at the dump (same size)", r->path);

	if (!(saved & O_PATH) && r->pos != 0 && lseek(fd, r->pos, SEEK_SET) != r->pos) {
		e = errno;
		fs_err(p, "restore: cannot seek %s to offset %lld: %s", r->path,
		       (long long)r->pos, strerror(e));
		goto err;
	}
	e = -fs_fixup_flags(p, fd, saved, r->path);
	if (e)
		goto err;
	e = -fs_locks_restore(p, fd, r->locks, r->n_locks, r->path);
	if (e)
		goto err;

	*out = fd;
	return 0;
err:
	close(fd);
	return fs_errno(e);
}

/* POSIX locks belong to the process: taken inside it. */
static int regfile_restore_in_task(struct fs_priv *p, const ProtobufCMessage *m, int fd)
{
	const Ckpt__Fs__RegFile *r = (const Ckpt__Fs__RegFile *)m;

	return fs_locks_restore_in_task(p, fd, r->locks, r->n_locks, r->path);
}

const struct fs_class fs_regfile_class = {
	.name = "regfile",
	.img_name = "fs-regfiles.img",
	.desc = &ckpt__fs__reg_file__descriptor,
	.rec_id = regfile_id,
	.dump = regfile_dump,
	.restore = regfile_restore,
	.restore_in_task = regfile_restore_in_task,
};
