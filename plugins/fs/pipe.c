// SPDX-License-Identifier: GPL-2.0-only
/*
 * Anonymous pipes (class "pipe", image fs-pipes.img of ckpt.fs.Pipe), and
 * the helpers that read and write the bytes queued in a pipe or fifo.
 *
 * Dump: one record per open file (end); the ends of one pipe share pipe_id,
 * the pipe's inode.  The queued bytes are read without consuming them: tee()
 * duplicates the pipe's buffers into a scratch pipe, which is then read, so
 * a dump with --leave-running leaves the task's data as it was.  They are
 * saved with the first end of the pipe that is dumped, together with
 * F_GETPIPE_SZ.  Both sides of a pipe must be in the dump (in any of its
 * processes): an end whose other side is only held outside the dumped tree,
 * or by nobody, is refused.
 *
 * Restore: the first end restored creates the pipe (pipe2), sets its size,
 * writes the saved bytes into it and keeps both ends until restore_resume;
 * every end then gets its own side (a further open file of the same side,
 * as a reopen through /proc made, is opened again through /proc/self/fd),
 * with its own status flags (O_NONBLOCK per end).  Pairing is by pipe_id
 * only, never by fd numbers, so ends in different processes can be paired
 * later.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fs.h"

/* ---- shared with fifo.c ------------------------------------------------------ */

int fs_pipe_peek(struct fs_priv *p, const struct ckpt_fd_info *fd, const char *what,
		 uint8_t **data, size_t *len, int *psz)
{
	int queued = 0, rfd = -1, sp[2] = { -1, -1 }, e = 0;
	uint8_t *buf = NULL;
	size_t got = 0;
	ssize_t n;

	*data = NULL;
	*len = 0;
	*psz = fcntl(fd->local_fd, F_GETPIPE_SZ);
	if (*psz < 0) {
		e = errno;
		fs_err(p, "%s: cannot read its pipe size: %s", what, strerror(e));
		return fs_errno(e);
	}
	if (ioctl(fd->local_fd, FIONREAD, &queued) < 0) {
		e = errno;
		fs_err(p, "%s: cannot read its queue length: %s", what, strerror(e));
		return fs_errno(e);
	}
	if (queued <= 0)
		return 0;

	/* tee() needs a readable side: a write-only end is opened again for
	 * reading through /proc (the same pipe; nothing is consumed). */
	if ((fd->flags & O_ACCMODE) == O_WRONLY) {
		rfd = fs_reopen(fd->local_fd, O_RDONLY | O_NONBLOCK);
		if (rfd < 0) {
			e = errno;
			fs_err(p, "%s: cannot open its read side to save the %d queued bytes: %s",
			       what, queued, strerror(e));
			return fs_errno(e);
		}
	}
	if (pipe2(sp, O_CLOEXEC | O_NONBLOCK) < 0) {
		e = errno;
		fs_err(p, "%s: cannot create a scratch pipe: %s", what, strerror(e));
		goto out;
	}
	/* as many buffer slots as the pipe has, so tee() takes all of them */
	if (fcntl(sp[1], F_GETPIPE_SZ) < *psz && fcntl(sp[1], F_SETPIPE_SZ, *psz) < 0) {
		e = errno;
		fs_err(p, "%s: cannot size a scratch pipe to %d bytes to copy its %d queued bytes: "
			  "%s (see /proc/sys/fs/pipe-max-size)",
		       what, *psz, queued, strerror(e));
		goto out;
	}
	n = tee(rfd >= 0 ? rfd : fd->local_fd, sp[1], (size_t)queued, SPLICE_F_NONBLOCK);
	if (n != queued) {
		e = n < 0 ? errno : EIO;
		if (n < 0)
			fs_err(p, "%s: cannot copy its %d queued bytes (tee): %s", what, queued,
			       strerror(e));
		else
			fs_err(p, "%s: copied %zd of its %d queued bytes; the pipe changed during "
				  "the dump",
			       what, n, queued);
		goto out;
	}
	buf = malloc((size_t)queued);
	if (!buf) {
		e = ENOMEM;
		fs_err(p, "%s: out of memory for its %d queued bytes", what, queued);
		goto out;
	}
	while (got < (size_t)queued) {
		n = read(sp[0], buf + got, (size_t)queued - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			e = n < 0 ? errno : EIO;
			fs_err(p, "%s: cannot read back its queued bytes: %s", what, strerror(e));
			goto out;
		}
		got += (size_t)n;
	}
	*data = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	if (rfd >= 0)
		close(rfd);
	if (sp[0] >= 0)
		close(sp[0]);
	if (sp[1] >= 0)
		close(sp[1]);
	return e ? fs_errno(e) : 0;
}

int fs_pipe_fill(struct fs_priv *p, int wfd, const uint8_t *data, size_t len, const char *what)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(wfd, data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			if (e == EAGAIN)
				fs_err(p, "restore: %s: its %zu queued bytes do not fit in the pipe "
					  "(%zu written); the images are damaged",
				       what, len, off);
			else
				fs_err(p, "restore: %s: cannot write its queued bytes back: %s", what,
				       strerror(e));
			return fs_errno(e);
		}
		off += (size_t)n;
	}
	return 0;
}

/* ---- the pipe class ------------------------------------------------------------ */

static uint32_t pipe_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Fs__Pipe *)m)->id;
}

/* Add the pipe sides the fds of pid hold to p->pipe_sides. */
static int scan_pipe_sides(struct fs_priv *p, pid_t pid, size_t *cap)
{
	char path[320], l[64], info[512];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		unsigned long long ino;
		unsigned long fl;
		const char *f;
		size_t i;
		ssize_t n;
		int ifd, side;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", (int)pid, de->d_name);
		n = readlink(path, l, sizeof(l) - 1);
		if (n < 0)
			continue;
		l[n] = 0;
		if (sscanf(l, "pipe:[%llu]", &ino) != 1)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)pid, de->d_name);
		ifd = open(path, O_RDONLY | O_CLOEXEC);
		if (ifd < 0)
			continue;
		n = read(ifd, info, sizeof(info) - 1);
		close(ifd);
		if (n <= 0)
			continue;
		info[n] = 0;
		f = strstr(info, "flags:");
		if (!f)
			continue;
		fl = strtoul(f + 6, NULL, 8);
		side = (fl & O_ACCMODE) == O_RDONLY ? 1 : (fl & O_ACCMODE) == O_WRONLY ? 2 : 3;
		for (i = 0; i < p->npipe_sides; i++)
			if (p->pipe_sides[i].ino == ino)
				break;
		if (i == p->npipe_sides) {
			if (p->npipe_sides == *cap) {
				size_t ncap = *cap ? *cap * 2 : 16;
				struct fs_pipe_sides *ns = realloc(p->pipe_sides, ncap * sizeof(*ns));

				if (!ns) {
					closedir(d);
					return -ENOMEM;
				}
				p->pipe_sides = ns;
				*cap = ncap;
			}
			p->pipe_sides[p->npipe_sides++] = (struct fs_pipe_sides){ ino, 0 };
		}
		p->pipe_sides[i].sides |= side;
	}
	closedir(d);
	return 0;
}

/* Which sides of pipe ino the processes of the dumped tree hold: bit 0
 * read, bit 1 write; -errno after an error was logged.  The tree is
 * stopped, so its fds are listed once per dump. */
static int pipe_sides(struct fs_priv *p, const struct ckpt_fd_info *fd, const char *what)
{
	if (!p->pipe_sides_known) {
		const pid_t *pids;
		size_t npids, cap = 0;
		int ret = fs_tree_pids(p, &pids, &npids);

		if (ret)
			return ret;
		for (size_t i = 0; i < npids; i++) {
			ret = scan_pipe_sides(p, pids[i], &cap);
			if (ret == -ENOMEM) {
				fs_err(p, "dump: out of memory");
				return ret;
			}
			/* a zombie has no fds to list; the task being dumped must */
			if (ret && pids[i] == fd->pid) {
				fs_err(p, "%s: cannot list the fds of PID %d: %s", what, (int)fd->pid,
				       strerror(-ret));
				return fs_errno(-ret);
			}
		}
		p->pipe_sides_known = true;
	}
	for (size_t i = 0; i < p->npipe_sides; i++)
		if (p->pipe_sides[i].ino == (uint64_t)fd->st.st_ino)
			return p->pipe_sides[i].sides;
	return 0;
}

static int pipe_dump(struct fs_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	Ckpt__Fs__Pipe r = CKPT__FS__PIPE__INIT;
	char what[96];
	uint8_t *data = NULL;
	size_t len = 0;
	int psz = 0, sides, ret;
	bool seen;

	snprintf(what, sizeof(what), "fd %d of PID %d (%s)", fd->fd, (int)fd->pid, fd->link);
	if (fd->flags & O_PATH) {
		fs_err(p, "%s: O_PATH pipe fds are not supported", what);
		return -EINVAL;
	}

	sides = pipe_sides(p, fd, what);
	if (sides < 0)
		return sides;
	if (sides != 3) {
		fs_err(p, "%s: the %s end of this pipe is open in no dumped process (a process "
			  "outside the tree holds it, or it is closed); pipes to processes outside "
			  "the dump are not supported: dump them together or close that end",
		       what, (sides & 1) ? "write" : "read");
		return -EBUSY;
	}

	ret = fs_seen_once(p, FS_PIPE, fd->st.st_ino, fd->st.st_dev, &seen);
	if (ret)
		return ret;
	if (!seen) {
		ret = fs_pipe_peek(p, fd, what, &data, &len, &psz);
		if (ret)
			return ret;
		r.has_data = true;
		r.data.data = data;
		r.data.len = len;
		if ((fd->flags & O_DIRECT) && len)
			fs_warn(p, "%s: packet-mode pipe (O_DIRECT) with %zu queued bytes: they are "
				   "restored as one run, packet boundaries are not kept",
				what, len);
	} else {
		psz = fcntl(fd->local_fd, F_GETPIPE_SZ);
		if (psz < 0) {
			ret = -errno;
			fs_err(p, "%s: cannot read its pipe size: %s", what, strerror(-ret));
			return fs_errno(-ret);
		}
	}
	if ((fd->flags & O_ASYNC))
		fs_warn(p, "%s has O_ASYNC; its signal owner is not saved", what);

	r.has_id = true;
	r.id = obj_id;
	r.has_pipe_id = true;
	r.pipe_id = fd->st.st_ino;
	r.has_flags = true;
	r.flags = fd->flags & ~(unsigned int)(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC);
	r.has_pipe_size = true;
	r.pipe_size = (uint32_t)psz;

	ret = fs_save(p, FS_PIPE, &r.base);
	free(data);
	if (ret)
		return ret;
	fs_debug(p, "%s: pipe %u, pipe %llu, flags 0%o, size %d, %zu bytes queued%s", what, obj_id,
		 (unsigned long long)r.pipe_id, r.flags, psz, len, seen ? " (saved before)" : "");
	return 0;
}

/* Create the pipe of r (both ends kept), with its size and queued bytes. */
static struct fs_keep *pipe_create(struct fs_priv *p, const Ckpt__Fs__Pipe *r, const char *what)
{
	const struct fs_table *t = &p->tables[FS_PIPE];
	const Ckpt__Fs__Pipe *with_data = NULL;
	unsigned int size = r->pipe_size;
	bool direct = false;
	int pfd[2], e;

	for (size_t i = 0; i < t->n; i++) {
		const Ckpt__Fs__Pipe *o = (const Ckpt__Fs__Pipe *)t->recs[i];

		if (o->pipe_id != r->pipe_id)
			continue;
		if (o->has_data && !with_data)
			with_data = o;
		if (o->has_pipe_size && o->pipe_size > size)
			size = o->pipe_size;
		if ((o->flags & O_DIRECT) && (o->flags & O_ACCMODE) != O_RDONLY)
			direct = true;
	}

	/* Packet mode is a property of the write side's open file and can
	 * only be asked for at creation. */
	if (pipe2(pfd, O_CLOEXEC | O_NONBLOCK | (direct ? O_DIRECT : 0)) < 0) {
		e = errno;
		fs_err(p, "restore: %s: cannot create the pipe: %s", what, strerror(e));
		errno = e;
		return NULL;
	}
	if (size && fcntl(pfd[0], F_GETPIPE_SZ) != (int)size &&
	    fcntl(pfd[0], F_SETPIPE_SZ, (int)size) < 0) {
		e = errno;
		fs_err(p, "restore: %s: cannot set the pipe size to %u: %s (see "
			  "/proc/sys/fs/pipe-max-size)",
		       what, size, strerror(e));
		goto err;
	}
	if (with_data && with_data->data.len) {
		int ret = fs_pipe_fill(p, pfd[1], with_data->data.data, with_data->data.len, what);

		if (ret) {
			e = -ret;
			goto err;
		}
	}
	return fs_keep_add(p, FS_PIPE, r->pipe_id, pfd[0], pfd[1]);
err:
	close(pfd[0]);
	close(pfd[1]);
	errno = e;
	return NULL;
}

static int pipe_restore(struct fs_priv *p, const ProtobufCMessage *m, int *out)
{
	const Ckpt__Fs__Pipe *r = (const Ckpt__Fs__Pipe *)m;
	unsigned int acc = r->flags & O_ACCMODE;
	struct fs_keep *k;
	char what[64];
	int side, fd, ret;

	snprintf(what, sizeof(what), "pipe object %u (pipe:[%llu])", r->id,
		 (unsigned long long)r->pipe_id);
	if (!r->has_pipe_id || !r->has_flags) {
		fs_err(p, "restore: %s has no pipe id or flags; the images are damaged", what);
		return -EBADMSG;
	}

	k = fs_keep_find(p, FS_PIPE, r->pipe_id);
	if (!k) {
		k = pipe_create(p, r, what);
		if (!k)
			return fs_errno(errno);
	}

	side = acc == O_WRONLY ? 1 : 0;
	if (acc != O_RDWR && !k->used[side]) {
		fd = fcntl(k->fd[side], F_DUPFD_CLOEXEC, 0);
		k->used[side] = true;
	} else {
		/* another open file of the same side (or a read-write one, as an
		 * open of /proc/PID/fd/N gives) */
		fd = fs_reopen(k->fd[side], (int)acc | O_NONBLOCK);
	}
	if (fd < 0) {
		int e = errno;

		fs_err(p, "restore: %s: cannot get its %s end: %s", what,
		       acc == O_WRONLY ? "write" : acc == O_RDONLY ? "read" : "read-write",
		       strerror(e));
		return fs_errno(e);
	}
	/* O_DIRECT was given at creation to both ends; the flags say who keeps it */
	ret = fs_set_fl(p, fd, r->flags, what);
	if (ret) {
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

const struct fs_class fs_pipe_class = {
	.name = "pipe",
	.img_name = "fs-pipes.img",
	.desc = &ckpt__fs__pipe__descriptor,
	.rec_id = pipe_id,
	.dump = pipe_dump,
	.restore = pipe_restore,
};
