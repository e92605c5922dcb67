// SPDX-License-Identifier: GPL-2.0-only
/*
 * memfd (class "memfd", image fs-memfds.img of ckpt.fs.Memfd, contents in
 * fs-memfd-data.img of ckpt.fs.MemfdData).
 *
 * Dump: one record per open file, keyed to its memfd by inode: the name
 * (link "/memfd:NAME (deleted)"), status flags, file position, size, seals
 * (F_GET_SEALS), mode and owner.  The contents are saved once per inode, in
 * runs of at most 1 MiB, read with pread() (the task's file position is not
 * touched); holes are found with SEEK_DATA/SEEK_HOLE on a second open file
 * of the memfd and not stored.  hugetlbfs memfds are refused (they cannot
 * be written back with write()).  Mappings of memfds are the core's VMA
 * business and refused there today.
 *
 * Restore: the first record of an inode creates the memfd (memfd_create
 * with MFD_ALLOW_SEALING, and MFD_NOEXEC_SEAL when it had F_SEAL_EXEC),
 * sizes it, writes the runs back, sets mode and owner and then adds the
 * seals (after the writes, which F_SEAL_WRITE would forbid).  It keeps that
 * file until restore_resume: the first read-write record gets it, every
 * other open file of the same memfd is opened again through /proc/self/fd
 * with its own access mode.  Each then gets its flags and position.
 */
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "fs.h"

#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define DATA_IMG "fs-memfd-data.img"
#define RUN_MAX (1u << 20)

static uint32_t memfd_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Fs__Memfd *)m)->id;
}

static int save_run(struct fs_priv *p, uint64_t ino, uint64_t off, const uint8_t *buf, size_t len)
{
	Ckpt__Fs__MemfdData d = CKPT__FS__MEMFD_DATA__INIT;
	int ret;

	if (!p->memfd_data) {
		p->memfd_data = p->host->img_create(DATA_IMG, ckpt__fs__memfd_data__descriptor.name);
		if (!p->memfd_data) {
			int e = errno;

			fs_err(p, "dump: cannot create image %s: %s", DATA_IMG, strerror(e));
			return fs_errno(e);
		}
	}
	d.has_inode = d.has_offset = d.has_data = true;
	d.inode = ino;
	d.offset = off;
	d.data.data = (uint8_t *)buf;
	d.data.len = len;
	ret = p->host->img_write_msg(p->memfd_data, &d.base);
	if (ret < 0) {
		fs_err(p, "dump: cannot write image %s: %s", DATA_IMG, strerror(-ret));
		return fs_errno(-ret);
	}
	return 0;
}

/* Save the contents of the memfd behind fd->local_fd, holes left out. */
static int save_contents(struct fs_priv *p, const struct ckpt_fd_info *fd, const char *what)
{
	uint64_t size = (uint64_t)fd->st.st_size, off = 0, runs = 0, bytes = 0;
	int rfd = fd->local_fd, sfd, ret = 0;
	uint8_t *buf;

	if (!size)
		return 0;
	/* a file of our own for SEEK_DATA/SEEK_HOLE: the task's offset stays */
	sfd = fs_reopen(fd->local_fd, O_RDONLY);
	if ((fd->flags & O_ACCMODE) == O_WRONLY) {
		if (sfd < 0) {
			int e = errno;

			fs_err(p, "%s: cannot open the write-only memfd for reading: %s", what,
			       strerror(e));
			return fs_errno(e);
		}
		rfd = sfd;
	}
	buf = malloc(RUN_MAX);
	if (!buf) {
		fs_err(p, "%s: out of memory", what);
		ret = -ENOMEM;
		goto out;
	}
	while (off < size) {
		uint64_t end = size;

		if (sfd >= 0) {
			off_t d = lseek(sfd, (off_t)off, SEEK_DATA), h;

			if (d < 0)
				break; /* ENXIO: only a hole is left */
			off = (uint64_t)d;
			h = lseek(sfd, d, SEEK_HOLE);
			if (h > d)
				end = (uint64_t)h < size ? (uint64_t)h : size;
		}
		while (off < end) {
			size_t want = end - off > RUN_MAX ? RUN_MAX : (size_t)(end - off);
			ssize_t n = pread(rfd, buf, want, (off_t)off);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				int e = n < 0 ? errno : EIO;

				fs_err(p, "%s: cannot read its contents at offset %" PRIu64 ": %s", what,
				       off, n < 0 ? strerror(e) : "the memfd shrank during the dump");
				ret = fs_errno(e);
				goto out;
			}
			ret = save_run(p, fd->st.st_ino, off, buf, (size_t)n);
			if (ret)
				goto out;
			off += (uint64_t)n;
			runs++;
			bytes += (uint64_t)n;
		}
	}
	fs_debug(p, "%s: saved %" PRIu64 " bytes of %" PRIu64 " in %" PRIu64 " runs", what, bytes,
		 size, runs);
out:
	free(buf);
	if (sfd >= 0)
		close(sfd);
	return ret;
}

static int memfd_dump(struct fs_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	Ckpt__Fs__Memfd r = CKPT__FS__MEMFD__INIT;
	const char *name = fd->link + 7; /* "/memfd:" */
	char what[400], nbuf[300];
	struct statfs sfs;
	size_t nlen = strlen(name);
	bool seen;
	int seals, ret;

	if (nlen >= 10 && !strcmp(name + nlen - 10, " (deleted)"))
		nlen -= 10;
	if (nlen >= sizeof(nbuf))
		nlen = sizeof(nbuf) - 1;
	memcpy(nbuf, name, nlen);
	nbuf[nlen] = 0;
	snprintf(what, sizeof(what), "fd %d of PID %d (memfd %s)", fd->fd, (int)fd->pid, nbuf);

	if (fd->flags & O_PATH) {
		fs_err(p, "%s: O_PATH memfd fds are not supported", what);
		return -EINVAL;
	}
	if (fstatfs(fd->local_fd, &sfs) < 0) {
		int e = errno;

		fs_err(p, "%s: fstatfs failed: %s", what, strerror(e));
		return fs_errno(e);
	}
	if (sfs.f_type == HUGETLBFS_MAGIC) {
		fs_err(p, "%s: hugetlb memfds (MFD_HUGETLB) are not supported yet", what);
		return -EINVAL;
	}
	if (sfs.f_type != TMPFS_MAGIC) {
		fs_err(p, "%s: not on shmem (filesystem magic %#lx); not a memfd ckpt knows", what,
		       (unsigned long)sfs.f_type);
		return -EINVAL;
	}
	seals = fcntl(fd->local_fd, F_GET_SEALS);
	if (seals < 0) {
		int e = errno;

		fs_err(p, "%s: F_GET_SEALS failed: %s", what, strerror(e));
		return fs_errno(e);
	}
	if (fd->flags & O_ASYNC)
		fs_warn(p, "%s has O_ASYNC; its signal owner is not saved", what);

	ret = fs_seen_once(p, FS_MEMFD, fd->st.st_ino, fd->st.st_dev, &seen);
	if (ret)
		return ret;
	if (!seen) {
		ret = save_contents(p, fd, what);
		if (ret)
			return ret;
	}

	r.has_id = true;
	r.id = obj_id;
	r.has_inode = true;
	r.inode = fd->st.st_ino;
	r.name = nbuf;
	r.has_flags = true;
	r.flags = fd->flags & ~(unsigned int)(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC);
	r.has_pos = true;
	r.pos = fd->pos;
	r.has_size = true;
	r.size = (uint64_t)fd->st.st_size;
	r.has_seals = true;
	r.seals = (uint32_t)seals;
	r.has_mode = true;
	r.mode = fd->st.st_mode & 07777;
	r.has_uid = r.has_gid = true;
	r.uid = fd->st.st_uid;
	r.gid = fd->st.st_gid;
	ret = fs_save(p, FS_MEMFD, &r.base);
	if (ret)
		return ret;
	fs_debug(p, "%s: memfd %u inode %llu size %llu seals %#x pos %lld flags 0%o", what, obj_id,
		 (unsigned long long)r.inode, (unsigned long long)r.size, r.seals,
		 (long long)r.pos, r.flags);
	return 0;
}

static int memfd_dump_finish(struct fs_priv *p, int ok)
{
	int r;

	if (!p->memfd_data)
		return 0;
	r = p->host->img_close(p->memfd_data);
	p->memfd_data = NULL;
	if (ok && r < 0) {
		fs_err(p, "dump: cannot finish image %s: %s", DATA_IMG, strerror(-r));
		return fs_errno(-r);
	}
	return 0;
}

static bool memfd_run(const ProtobufCMessage *m, const void *key, uint64_t *offset,
		      const ProtobufCBinaryData **data)
{
	const Ckpt__Fs__MemfdData *d = (const Ckpt__Fs__MemfdData *)m;
	const Ckpt__Fs__Memfd *r = key;

	*offset = d->offset;
	*data = &d->data;
	return d->inode == r->inode;
}

/* Write the saved runs of r's inode into fd. */
static int fill_contents(struct fs_priv *p, const Ckpt__Fs__Memfd *r, int fd)
{
	char what[400];

	snprintf(what, sizeof(what), "memfd %s", r->name);
	return fs_fill_runs(p, DATA_IMG, &ckpt__fs__memfd_data__descriptor, memfd_run, r, fd,
			    r->size, what);
}

/* Create the memfd of r with contents, mode, owner and seals. */
static int memfd_create_seed(struct fs_priv *p, const Ckpt__Fs__Memfd *r)
{
	unsigned int mflags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
	struct stat st;
	int fd, e, ret;

	mflags |= (r->seals & F_SEAL_EXEC) ? MFD_NOEXEC_SEAL : MFD_EXEC;
	fd = memfd_create(r->name, mflags);
	if (fd < 0 && errno == EINVAL && !(r->seals & F_SEAL_EXEC))
		fd = memfd_create(r->name, mflags & ~MFD_EXEC); /* kernel before 6.3 */
	if (fd < 0) {
		e = errno;
		fs_err(p, "restore: cannot create memfd %s: %s%s", r->name, strerror(e),
		       e == EACCES ? " (vm.memfd_noexec forbids executable memfds)" : "");
		return fs_errno(e);
	}
	if (r->size && ftruncate(fd, (off_t)r->size) < 0) {
		e = errno;
		fs_err(p, "restore: cannot size memfd %s to %llu bytes: %s", r->name,
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
	if (fstat(fd, &st) == 0) {
		if (r->has_mode && (st.st_mode & 07777) != r->mode && fchmod(fd, r->mode) < 0) {
			e = errno;
			fs_err(p, "restore: cannot set mode 0%o on memfd %s: %s", r->mode, r->name,
			       strerror(e));
			goto err;
		}
		if (r->has_uid && r->has_gid && (st.st_uid != r->uid || st.st_gid != r->gid) &&
		    fchown(fd, r->uid, r->gid) < 0) {
			e = errno;
			fs_err(p, "restore: cannot give memfd %s to %u:%u: %s", r->name, r->uid, r->gid,
			       strerror(e));
			goto err;
		}
	}
	if (r->seals && fcntl(fd, F_ADD_SEALS, (int)r->seals) < 0) {
		e = errno;
		fs_err(p, "restore: cannot seal memfd %s with %#x: %s", r->name, r->seals, strerror(e));
		goto err;
	}
	return fd;
err:
	close(fd);
	return fs_errno(e);
}

static int memfd_restore(struct fs_priv *p, const ProtobufCMessage *m, int *out)
{
	const Ckpt__Fs__Memfd *r = (const Ckpt__Fs__Memfd *)m;
	unsigned int acc = r->flags & O_ACCMODE;
	struct fs_keep *k;
	char what[320];
	int fd, ret;

	if (!r->name || !r->has_inode || !r->has_flags) {
		fs_err(p, "restore: memfd object %u has no name, inode or flags; the images are "
			  "damaged",
		       r->id);
		return -EBADMSG;
	}
	snprintf(what, sizeof(what), "memfd %s (object %u)", r->name, r->id);
	k = fs_keep_find(p, FS_MEMFD, r->inode);
	if (!k) {
		int seed = memfd_create_seed(p, r);

		if (seed < 0)
			return seed;
		k = fs_keep_add(p, FS_MEMFD, r->inode, seed, -1);
		if (!k)
			return -ENOMEM;
	}
	if (acc == O_RDWR && !k->used[0]) {
		fd = fcntl(k->fd[0], F_DUPFD_CLOEXEC, 0);
		k->used[0] = true;
	} else {
		fd = fs_reopen(k->fd[0], (int)acc);
	}
	if (fd < 0) {
		int e = errno;

		fs_err(p, "restore: %s: cannot open it (flags 0%o): %s", what, r->flags, strerror(e));
		return fs_errno(e);
	}
	ret = fs_set_fl(p, fd, r->flags, what);
	if (ret)
		goto err;
	if (r->pos && lseek(fd, (off_t)r->pos, SEEK_SET) < 0) {
		int e = errno;

		fs_err(p, "restore: %s: cannot seek to %lld: %s", what, (long long)r->pos,
		       strerror(e));
		ret = fs_errno(e);
		goto err;
	}
	*out = fd;
	return 0;
err:
	close(fd);
	return ret;
}

const struct fs_class fs_memfd_class = {
	.name = "memfd",
	.img_name = "fs-memfds.img",
	.desc = &ckpt__fs__memfd__descriptor,
	.rec_id = memfd_id,
	.dump = memfd_dump,
	.restore = memfd_restore,
	.dump_finish = memfd_dump_finish,
};

/* Mappings of a memfd: saved as a memfd object of its own (the contents
 * once per inode, shared with the fds of the same memfd), under an id of
 * the plugin's, above the core's fd object ids. */
int memfd_dump_vma(struct fs_priv *p, const struct ckpt_vma_info *v, uint32_t *obj_id)
{
	struct ckpt_fd_info fd;

	memset(&fd, 0, sizeof(fd));
	fd.pid = v->pid;
	fd.fd = -1;
	fd.local_fd = v->local_fd;
	fd.st = v->st;
	fd.link = v->path;
	/* what the restored mapping needs to be opened with */
	fd.flags = (v->shared && (v->prot & PROT_WRITE)) ? O_RDWR : O_RDONLY;
	*obj_id = 0x80000000u | ++p->vma_ids;
	return memfd_dump(p, &fd, *obj_id);
}
