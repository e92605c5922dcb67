// SPDX-License-Identifier: GPL-2.0-only
/*
 * Ghost files: regular files unlinked while a task holds them open or
 * mapped (class "ghost", image fs-ghosts.img of ckpt.fs.Ghost, contents in
 * fs-ghost-data.img of ckpt.fs.GhostData).
 *
 * Dump: one record per open file and per mapping, keyed to its file by
 * (st_dev, st_ino): the name it had, status flags, position, size, mode,
 * owner, atime/mtime.  The contents are saved once per file, in runs of at
 * most 1 MiB read with pread() from a file of the dumper's own (the task's
 * position is not touched); holes (SEEK_DATA/SEEK_HOLE) are not stored, so
 * a sparse file stays sparse.  The inventory checksums fs-ghost-data.img
 * like every image, so damaged contents are refused before the restore
 * creates anything.
 *
 * A file whose opened name is gone but which has other links (nlink > 0)
 * is saved the same way, plus its file handle (name_to_handle_at).  The
 * restore opens the very inode again by that handle (open_by_handle_at on
 * a mount of its filesystem) when it still exists and is linked: the task
 * gets the same file its other links name, and nothing is created.  Its
 * size is checked like a regular file's (--file-validation).  Only when
 * the inode is gone (another machine, or every link removed since) it is
 * recreated from the saved contents as a ghost of its own (nlink 0), with
 * a warning.  Searching the filesystem for another name would be slow and
 * could find another file than the open one; the handle names the inode.
 *
 * Restore: the first record of a file creates the new inode, in the
 * directory the file was in (or its nearest ancestor still there, so the
 * file is on the same filesystem as before): O_TMPFILE, so the inode never
 * has a name while it is filled; then size, the saved runs, owner, mode,
 * times.  When the original name is free it is linked there for a moment,
 * opened by that name and unlinked at once: the open file then shows the
 * same "PATH (deleted)" as before in /proc (a second dump finds the
 * directory again).  nlink is 0 before any task gets the file, so nothing
 * is left behind if the restore fails.  Filesystems without O_TMPFILE get
 * a temporary name (.ckpt-ghost-INO-PID) that is unlinked at once.  That
 * file is kept until restore_resume; every open file of it is opened again
 * through /proc/self/fd with its own flags, and each mapping maps it.
 */
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs.h"

#define DATA_IMG "fs-ghost-data.img"
#define RUN_MAX (1u << 20)
#define HDR_MAX 48 /* room for the GhostData fields before the data */

static uint32_t ghost_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Fs__Ghost *)m)->id;
}

static uint64_t ghost_key(uint64_t dev, uint64_t ino)
{
	return ino ^ (dev << 40) ^ (dev >> 24);
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	do {
		p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	return n;
}

/* One ckpt.fs.GhostData record of the len bytes at buf + HDR_MAX.  The
 * fields are packed by hand in front of the data, in the wire format
 * protobuf-c reads back, so the run goes to the image without the copy
 * and allocation that packing it would cost (contents can be large). */
static int save_run(struct fs_priv *p, const struct stat *st, uint64_t off, uint8_t *buf,
		    size_t len)
{
	uint8_t hdr[HDR_MAX];
	size_t h = 0;
	int ret;

	if (!p->ghost_data) {
		p->ghost_data = p->host->img_create(DATA_IMG, ckpt__fs__ghost_data__descriptor.name);
		if (!p->ghost_data) {
			int e = errno;

			fs_err(p, "dump: cannot create image %s: %s", DATA_IMG, strerror(e));
			return fs_errno(e);
		}
	}
	hdr[h++] = 1 << 3 | 0; /* dev, varint */
	h += put_varint(hdr + h, (uint64_t)st->st_dev);
	hdr[h++] = 2 << 3 | 0; /* ino */
	h += put_varint(hdr + h, (uint64_t)st->st_ino);
	hdr[h++] = 3 << 3 | 0; /* offset */
	h += put_varint(hdr + h, off);
	hdr[h++] = 4 << 3 | 2; /* data, length-delimited */
	h += put_varint(hdr + h, len);
	memcpy(buf + HDR_MAX - h, hdr, h);
	ret = p->host->img_write(p->ghost_data, buf + HDR_MAX - h, h + len);
	if (ret < 0) {
		fs_err(p, "dump: cannot write image %s: %s", DATA_IMG, strerror(-ret));
		return fs_errno(-ret);
	}
	return 0;
}

/* Save the contents of the file behind lfd (any access mode, O_PATH too),
 * holes left out. */
static int save_contents(struct fs_priv *p, int lfd, const struct stat *st, const char *what)
{
	uint64_t size = (uint64_t)st->st_size, off = 0, bytes = 0;
	uint8_t *buf = NULL;
	int rfd, ret = 0;

	if (!size)
		return 0;
	/* a file of our own: readable, and its offset is ours to move */
	rfd = fs_reopen(lfd, O_RDONLY | O_NOATIME);
	if (rfd < 0 && errno == EPERM)
		rfd = fs_reopen(lfd, O_RDONLY);
	if (rfd < 0) {
		int e = errno;

		fs_err(p, "%s: cannot open the deleted file for reading its contents: %s", what,
		       strerror(e));
		return fs_errno(e);
	}
	buf = malloc(HDR_MAX + RUN_MAX);
	if (!buf) {
		fs_err(p, "%s: out of memory", what);
		ret = -ENOMEM;
		goto out;
	}
	while (off < size) {
		off_t d = lseek(rfd, (off_t)off, SEEK_DATA), h;
		uint64_t end = size;

		if (d < 0) {
			if (errno == ENXIO)
				break; /* only a hole is left */
			d = (off_t)off; /* no SEEK_DATA here: copy it all */
		} else {
			h = lseek(rfd, d, SEEK_HOLE);
			if (h > d && (uint64_t)h < size)
				end = (uint64_t)h;
		}
		off = (uint64_t)d;
		while (off < end) {
			size_t want = end - off > RUN_MAX ? RUN_MAX : (size_t)(end - off);
			ssize_t n = pread(rfd, buf + HDR_MAX, want, (off_t)off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				int e = n < 0 ? errno : EIO;

				fs_err(p, "%s: cannot read its contents at offset %" PRIu64 ": %s", what,
				       off, n < 0 ? strerror(e) : "the file shrank during the dump");
				ret = fs_errno(e);
				goto out;
			}
			ret = save_run(p, st, off, buf, (size_t)n);
			if (ret)
				goto out;
			off += (uint64_t)n;
			bytes += (uint64_t)n;
		}
	}
	fs_debug(p, "%s: saved %" PRIu64 " of %" PRIu64 " bytes (the rest are holes)", what, bytes,
		 size);
out:
	free(buf);
	close(rfd);
	return ret;
}

/* One record of the ghost file behind lfd; contents with the first. */
static int ghost_save(struct fs_priv *p, int lfd, const struct stat *st, const char *link,
		      unsigned int flags, int64_t pos, uint32_t obj_id, const char *what,
		      bool with_locks)
{
	Ckpt__Fs__Ghost r = CKPT__FS__GHOST__INIT;
	Ckpt__Fs__FileLock **locks = NULL;
	size_t nlocks = 0;
	struct {
		struct file_handle fh;
		unsigned char room[128];
	} h;
	int mnt_id;
	char path[PATH_MAX];
	size_t len;
	bool seen;
	int ret;

	fs_link_deleted(link, st, &len);
	if (len >= sizeof(path) || link[0] != '/') {
		fs_err(p, "%s: deleted file '%s' has no usable path", what, link);
		return -EINVAL;
	}
	memcpy(path, link, len);
	path[len] = 0;

	ret = fs_seen_once(p, FS_GHOST, st->st_ino, st->st_dev, &seen);
	if (ret)
		return ret;
	if (!seen) {
		if (st->st_nlink > 0)
			fs_info(p, "%s: %s was removed but the file has %u other link(s); restore "
				   "opens that inode again by its file handle",
				what, path, (unsigned int)st->st_nlink);
		ret = save_contents(p, lfd, st, what);
		if (ret)
			return ret;
	}

	if (with_locks) {
		ret = fs_locks_dump(p, lfd, st, what, &locks, &nlocks);
		if (ret)
			return ret;
		r.locks = locks;
		r.n_locks = nlocks;
	}
	r.has_id = true;
	r.id = obj_id;
	r.has_dev = r.has_ino = true;
	r.dev = st->st_dev;
	r.ino = st->st_ino;
	r.path = path;
	r.has_flags = true;
	r.flags = flags & ~(unsigned int)(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC);
	r.has_pos = true;
	r.pos = pos;
	r.has_size = true;
	r.size = (uint64_t)st->st_size;
	r.has_mode = true;
	r.mode = st->st_mode & 07777;
	r.has_uid = r.has_gid = true;
	r.uid = st->st_uid;
	r.gid = st->st_gid;
	r.has_atime_ns = r.has_mtime_ns = true;
	r.atime_ns = (int64_t)st->st_atim.tv_sec * 1000000000 + st->st_atim.tv_nsec;
	r.mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	r.has_nlink = true;
	r.nlink = (uint32_t)st->st_nlink;
	h.fh.handle_bytes = sizeof(h.room);
	if (st->st_nlink > 0 &&
	    name_to_handle_at(lfd, "", &h.fh, &mnt_id, AT_EMPTY_PATH) == 0) {
		r.has_fhandle_type = r.has_fhandle = r.has_sdev = true;
		r.fhandle_type = h.fh.handle_type;
		r.fhandle.data = h.fh.f_handle;
		r.fhandle.len = h.fh.handle_bytes;
		r.sdev = major(st->st_dev) << 20 | minor(st->st_dev);
	}
	ret = fs_save(p, FS_GHOST, &r.base);
	fs_locks_free(locks, nlocks);
	if (ret)
		return ret;
	fs_debug(p, "%s: ghost %u of %s (inode %llu, size %llu, nlink %u) flags 0%o pos %lld", what,
		 obj_id, path, (unsigned long long)r.ino, (unsigned long long)r.size, r.nlink,
		 r.flags, (long long)r.pos);
	return 0;
}

bool fs_is_ghost(const char *link, const struct stat *st)
{
	size_t len;

	return S_ISREG(st->st_mode) && link && link[0] == '/' && strncmp(link, "/memfd:", 7) &&
	       fs_link_deleted(link, st, &len);
}

static int ghost_dump(struct fs_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	char what[96];

	snprintf(what, sizeof(what), "fd %d of PID %d", fd->fd, (int)fd->pid);
	if ((fd->flags & O_ASYNC) && !(fd->flags & O_PATH))
		fs_warn(p, "%s: %s has O_ASYNC; its signal owner is not saved", what, fd->link);
	return ghost_save(p, fd->local_fd, &fd->st, fd->link, fd->flags, fd->pos, obj_id, what,
			  true);
}

int ghost_dump_vma(struct fs_priv *p, const struct ckpt_vma_info *v, uint32_t *obj_id)
{
	char what[128];
	/* what the restored mapping needs to be opened with */
	unsigned int flags = (v->shared && (v->prot & PROT_WRITE)) ? O_RDWR : O_RDONLY;

	snprintf(what, sizeof(what), "mapping %#llx-%#llx of PID %d",
		 (unsigned long long)v->start, (unsigned long long)v->end, (int)v->pid);
	*obj_id = 0x80000000u | ++p->vma_ids;
	return ghost_save(p, v->local_fd, &v->st, v->path, flags, 0, *obj_id, what, false);
}

static int ghost_dump_finish(struct fs_priv *p, int ok)
{
	int r;

	if (!p->ghost_data)
		return 0;
	r = p->host->img_close(p->ghost_data);
	p->ghost_data = NULL;
	if (ok && r < 0) {
		fs_err(p, "dump: cannot finish image %s: %s", DATA_IMG, strerror(-r));
		return fs_errno(-r);
	}
	return 0;
}

/* ---- restore ------------------------------------------------------------- */

static bool ghost_run(const ProtobufCMessage *m, const void *key, uint64_t *offset,
		      const ProtobufCBinaryData **data)
{
	const Ckpt__Fs__GhostData *d = (const Ckpt__Fs__GhostData *)m;
	const Ckpt__Fs__Ghost *r = key;

	*offset = d->offset;
	*data = &d->data;
	return d->ino == r->ino && d->dev == r->dev;
}

/* Write the saved runs of r's file into fd. */
static int fill_contents(struct fs_priv *p, const Ckpt__Fs__Ghost *r, int fd)
{
	char what[4200];

	snprintf(what, sizeof(what), "deleted file %s", r->path);
	return fs_fill_runs(p, DATA_IMG, &ckpt__fs__ghost_data__descriptor, ghost_run, r, fd,
			    r->size, what);
}

/* The directory of path, or its nearest ancestor that still exists, in dir. */
static void ghost_dir(const char *path, char *dir, size_t len, bool *same)
{
	struct stat st;
	char *s;

	snprintf(dir, len, "%s", path);
	*same = true;
	for (;;) {
		s = strrchr(dir, '/');
		if (!s || s == dir) {
			snprintf(dir, len, "/");
			break;
		}
		*s = 0;
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			break;
		*same = false;
	}
}

/* A new, nameless, empty inode in dir (O_TMPFILE, or a name unlinked at once). */
static int ghost_inode(struct fs_priv *p, const Ckpt__Fs__Ghost *r, const char *dir, bool *tmpfile)
{
	char name[PATH_MAX + 64];
	int fd, e;

	*tmpfile = true;
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
		e = errno;
		goto err;
	}
	*tmpfile = false;
	snprintf(name, sizeof(name), "%s/.ckpt-ghost-%llu-%d", strcmp(dir, "/") ? dir : "",
		 (unsigned long long)r->ino, (int)getpid());
	fd = open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		e = errno;
		goto err;
	}
	unlink(name);
	return fd;
err:
	fs_err(p, "restore: cannot create the deleted file %s again in %s: %s", r->path, dir,
	       strerror(e));
	return fs_errno(e);
}

/* Give the filled tmpfile fd the original name for a moment and reopen it
 * by that name, so its open files show "PATH (deleted)" as at the dump.
 * Returns the new fd (nlink 0 again), or fd itself when the name is taken. */
static int ghost_rename(struct fs_priv *p, const Ckpt__Fs__Ghost *r, int fd)
{
	char self[64];
	struct stat a, b;
	int nfd;

	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, self, AT_FDCWD, r->path, AT_SYMLINK_FOLLOW) < 0) {
		fs_debug(p, "restore: %s: cannot link the new inode at its old name (%s); its "
			    "open files show another name",
			 r->path, strerror(errno));
		return fd;
	}
	nfd = open(r->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (nfd >= 0 && (fstat(nfd, &a) || fstat(fd, &b) || a.st_ino != b.st_ino ||
			 a.st_dev != b.st_dev)) {
		/* the name was replaced between link and open: not ours to remove */
		close(nfd);
		fs_warn(p, "restore: %s was replaced while the deleted file was restored", r->path);
		return fd;
	}
	if (unlink(r->path) < 0) {
		int e = errno;

		fs_err(p, "restore: cannot unlink %s again: %s", r->path, strerror(e));
		if (nfd >= 0)
			close(nfd);
		return fs_errno(e);
	}
	if (nfd < 0)
		return fd;
	close(fd);
	return nfd;
}

/* A file that had other links: the same inode by its file handle, when it
 * is still there and linked.  fd (O_RDWR), -ENOENT to recreate it from
 * the contents, or another -errno after an error was logged. */
static int ghost_linked(struct fs_priv *p, const Ckpt__Fs__Ghost *r)
{
	struct {
		struct file_handle fh;
		unsigned char room[128];
	} h;
	struct stat st;
	int mfd, fd;

	if (!r->nlink || !r->has_fhandle || r->fhandle.len > sizeof(h.room))
		return -ENOENT;
	mfd = fs_open_mount_of(r->sdev);
	if (mfd < 0)
		goto gone;
	h.fh.handle_bytes = (unsigned int)r->fhandle.len;
	h.fh.handle_type = r->fhandle_type;
	memcpy(h.fh.f_handle, r->fhandle.data, r->fhandle.len);
	fd = open_by_handle_at(mfd, &h.fh, O_RDWR | O_CLOEXEC);
	close(mfd);
	if (fd < 0)
		goto gone;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink == 0 ||
	    st.st_ino != r->ino) {
		close(fd);
		goto gone;
	}
	if (!p->skip_file_check && (uint64_t)st.st_size != r->size) {
		fs_err(p, "restore: the file that %s was a link of changed since the dump (size "
			  "%llu -> %llu); put the dumped version back, or restore with "
			  "--file-validation=none",
		       r->path, (unsigned long long)r->size, (unsigned long long)st.st_size);
		close(fd);
		return -ESTALE;
	}
	fs_debug(p, "restore: %s: opened the same inode again through its other link(s)",
		 r->path);
	return fd;
gone:
	fs_warn(p, "restore: %s had %u other link(s) at the dump, but that inode is gone; "
		   "recreating it from the saved contents as an unlinked file",
		r->path, r->nlink);
	return -ENOENT;
}

static int ghost_create(struct fs_priv *p, const Ckpt__Fs__Ghost *r)
{
	char dir[PATH_MAX];
	bool same, tmpfile;
	struct stat st;
	int fd, e, ret;

	fd = ghost_linked(p, r);
	if (fd != -ENOENT)
		return fd;
	ghost_dir(r->path, dir, sizeof(dir), &same);
	if (!same)
		fs_warn(p, "restore: the directory of deleted file %s is gone; recreating it in %s",
			r->path, dir);
	fd = ghost_inode(p, r, dir, &tmpfile);
	if (fd < 0)
		return fd;
	if (r->size && ftruncate(fd, (off_t)r->size) < 0) {
		e = errno;
		fs_err(p, "restore: cannot size deleted file %s to %llu bytes: %s", r->path,
		       (unsigned long long)r->size, strerror(e));
		goto err;
	}
	if (r->size) {
		ret = fill_contents(p, r, fd);
		if (ret) {
			e = -ret;
			goto err;
		}
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		fs_err(p, "restore: cannot stat the new deleted file %s: %s", r->path, strerror(e));
		goto err;
	}
	/* owner first: chown drops set-user-ID bits */
	if (r->has_uid && r->has_gid && (st.st_uid != r->uid || st.st_gid != r->gid) &&
	    fchown(fd, r->uid, r->gid) < 0) {
		e = errno;
		fs_err(p, "restore: cannot give deleted file %s to %u:%u: %s", r->path, r->uid,
		       r->gid, strerror(e));
		goto err;
	}
	if (r->has_mode && fchmod(fd, r->mode) < 0) {
		e = errno;
		fs_err(p, "restore: cannot set mode 0%o on deleted file %s: %s", r->mode, r->path,
		       strerror(e));
		goto err;
	}
	if (tmpfile && same) {
		fd = ghost_rename(p, r, fd);
		if (fd < 0)
			return fd;
	}
	if (r->has_atime_ns && r->has_mtime_ns) {
		struct timespec ts[2] = {
			{ r->atime_ns / 1000000000, r->atime_ns % 1000000000 },
			{ r->mtime_ns / 1000000000, r->mtime_ns % 1000000000 },
		};

		if (futimens(fd, ts) < 0)
			fs_warn(p, "restore: cannot set the times of deleted file %s: %s", r->path,
				strerror(errno));
	}
	fs_debug(p, "restore: deleted file %s recreated (%s), %llu bytes", r->path,
		 tmpfile ? "O_TMPFILE" : "temporary name", (unsigned long long)r->size);
	return fd;
err:
	close(fd);
	return fs_errno(e);
}

static int ghost_restore(struct fs_priv *p, const ProtobufCMessage *m, int *out)
{
	const Ckpt__Fs__Ghost *r = (const Ckpt__Fs__Ghost *)m;
	uint64_t key;
	struct fs_keep *k;
	char what[PATH_MAX + 64];
	int fd, ret;

	if (!r->path || r->path[0] != '/' || !r->has_ino || !r->has_dev || !r->has_flags) {
		fs_err(p, "restore: deleted-file object %u has no path, inode or flags; the images "
			  "are damaged",
		       r->id);
		return -EBADMSG;
	}
	snprintf(what, sizeof(what), "deleted file %s (object %u)", r->path, r->id);
	key = ghost_key(r->dev, r->ino);
	k = fs_keep_find(p, FS_GHOST, key);
	if (!k) {
		int seed = ghost_create(p, r);

		if (seed < 0)
			return seed;
		k = fs_keep_add(p, FS_GHOST, key, seed, -1);
		if (!k)
			return -ENOMEM;
	}
	if ((r->flags & O_ACCMODE) == O_RDWR && !(r->flags & O_PATH) && !k->used[0]) {
		fd = fcntl(k->fd[0], F_DUPFD_CLOEXEC, 0);
		k->used[0] = true;
		if (fd >= 0) {
			ret = fs_set_fl(p, fd, r->flags, what);
			if (ret)
				goto err;
		}
	} else {
		fd = fs_reopen(k->fd[0], (int)fs_open_flags(r->flags));
	}
	if (fd < 0) {
		int e = errno;

		fs_err(p, "restore: %s: cannot open it (flags 0%o): %s", what, r->flags, strerror(e));
		return fs_errno(e);
	}
	if (!(r->flags & O_PATH) && r->pos && lseek(fd, (off_t)r->pos, SEEK_SET) < 0) {
		int e = errno;

		fs_err(p, "restore: %s: cannot seek to %lld: %s", what, (long long)r->pos,
		       strerror(e));
		ret = fs_errno(e);
		goto err;
	}
	ret = fs_fixup_flags(p, fd, r->flags, what);
	if (ret)
		goto err;
	ret = fs_locks_restore(p, fd, r->locks, r->n_locks, what);
	if (ret)
		goto err;
	*out = fd;
	return 0;
err:
	close(fd);
	return ret;
}

/* POSIX locks belong to the process: taken inside it. */
static int ghost_restore_in_task(struct fs_priv *p, const ProtobufCMessage *m, int fd)
{
	const Ckpt__Fs__Ghost *r = (const Ckpt__Fs__Ghost *)m;

	return fs_locks_restore_in_task(p, fd, r->locks, r->n_locks, r->path);
}

const struct fs_class fs_ghost_class = {
	.name = "ghost",
	.img_name = "fs-ghosts.img",
	.desc = &ckpt__fs__ghost__descriptor,
	.rec_id = ghost_id,
	.dump = ghost_dump,
	.restore = ghost_restore,
	.restore_in_task = ghost_restore_in_task,
	.dump_finish = ghost_dump_finish,
};
