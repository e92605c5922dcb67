// SPDX-License-Identifier: GPL-2.0-only
/*
 * inotify (class "inotify", image fs-inotifys.img of ckpt.fs.Inotify).
 *
 * Dump: fdinfo has one "inotify wd:W ino:I sdev:D mask:M ... f_handle:H"
 * line per watch.  The watched inode is turned back into a path through its
 * file handle: open_by_handle_at() on a mount of the same filesystem (from
 * /proc/self/mountinfo, a mount of the filesystem's root preferred), then
 * readlink of the result.  A watch whose inode cannot be found that way
 * (deleted, a filesystem without file handles, no mount of it here) is
 * refused with the watch named.  Events queued but not read yet cannot be
 * saved without consuming them: they are dropped, with a warning.
 *
 * Restore: inotify_init1, then inotify_add_watch for every watch in wd
 * order; the kernel hands out wds in increasing order, so a gap (a watch
 * removed before the dump) is skipped by adding and removing a watch on a
 * scratch directory; the IN_IGNORED events that leaves are read away.  A
 * wd that still comes out different fails the restore.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs.h"

#define WATCH_MASK (IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK)

static uint32_t inotify_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Fs__Inotify *)m)->id;
}

static void free_watches(Ckpt__Fs__InotifyWatch **w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!w[i])
			continue;
		free(w[i]->path);
		free(w[i]->fhandle.data);
		free(w[i]);
	}
	free(w);
}

/* A mount point of the filesystem with kernel dev sdev, or -errno. */
int fs_open_mount_of(unsigned int sdev)
{
	unsigned int maj = sdev >> 20, min = sdev & 0xfffff;
	char line[PATH_MAX * 2], best[PATH_MAX] = "";
	int fd = -ENOENT;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned int ma, mi;
		char root[PATH_MAX], mnt[PATH_MAX];

		if (sscanf(line, "%*d %*d %u:%u %4095s %4095s", &ma, &mi, root, mnt) != 4)
			continue;
		if (ma != maj || mi != min)
			continue;
		/* a mount of the filesystem's root reaches every inode of it */
		if (!best[0] || !strcmp(root, "/"))
			snprintf(best, sizeof(best), "%s", mnt);
		if (!strcmp(root, "/"))
			break;
	}
	fclose(f);
	if (best[0]) {
		/* mountinfo escapes blanks as \040 and the like */
		char un[PATH_MAX];
		size_t j = 0;

		for (size_t i = 0; best[i] && j + 1 < sizeof(un); i++) {
			if (best[i] == '\\' && best[i + 1] >= '0' && best[i + 1] <= '3' &&
			    best[i + 2] && best[i + 3]) {
				un[j++] = (char)(((best[i + 1] - '0') << 6) | ((best[i + 2] - '0') << 3) |
						 (best[i + 3] - '0'));
				i += 3;
			} else {
				un[j++] = best[i];
			}
		}
		un[j] = 0;
		/* not O_PATH: open_by_handle_at() refuses such a mount fd */
		fd = open(un, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
		if (fd < 0)
			fd = -errno;
	}
	return fd;
}

int fs_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The path of inode ino (file handle htype/h of filesystem sdev), through
 * open_by_handle_at() on a mount of that filesystem; obj names it in
 * errors.  *path is malloc'd.  Shared with fanotify.c. */
int fs_fhandle_path(struct fs_priv *p, const char *what, const char *obj, unsigned int sdev,
		    uint64_t ino, int htype, const uint8_t *h, size_t hlen, char **path,
		    bool *is_link)
{
	struct file_handle *fh;
	char lnk[64], buf[PATH_MAX];
	struct stat st;
	int mfd, fd, e;
	ssize_t n;

	mfd = fs_open_mount_of(sdev);
	if (mfd < 0) {
		fs_err(p, "%s: %s (inode %llu on dev %u:%u): no mount of that filesystem is "
			  "visible to ckpt, so its path cannot be found",
		       what, obj, (unsigned long long)ino, sdev >> 20, sdev & 0xfffff);
		return fs_errno(-mfd);
	}
	fh = malloc(sizeof(*fh) + hlen);
	if (!fh) {
		close(mfd);
		fs_err(p, "%s: out of memory", what);
		return -ENOMEM;
	}
	fh->handle_bytes = (unsigned int)hlen;
	fh->handle_type = htype;
	memcpy(fh->f_handle, h, hlen);
	fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC | O_NOFOLLOW);
	e = errno;
	free(fh);
	close(mfd);
	if (fd < 0) {
		fs_err(p, "%s: %s (inode %llu on dev %u:%u): cannot open the inode by its file "
			  "handle: %s%s",
		       what, obj, (unsigned long long)ino, sdev >> 20, sdev & 0xfffff, strerror(e),
		       e == ESTALE ? " (it was deleted)" : "");
		return fs_errno(e);
	}
	snprintf(lnk, sizeof(lnk), "/proc/self/fd/%d", fd);
	n = readlink(lnk, buf, sizeof(buf) - 1);
	e = errno;
	if (n >= 0) {
		buf[n] = 0;
		if (fstat(fd, &st) < 0)
			st.st_ino = 0;
	}
	close(fd);
	if (n < 0) {
		fs_err(p, "%s: %s: cannot read the path of the inode: %s", what, obj, strerror(e));
		return fs_errno(e);
	}
	if (buf[0] != '/' || st.st_ino != ino || (n > 10 && !strcmp(buf + n - 10, " (deleted)"))) {
		fs_err(p, "%s: %s (inode %llu) has no path ckpt can reach again ('%s')", what, obj,
		       (unsigned long long)ino, buf);
		return -ENOENT;
	}
	*path = strdup(buf);
	if (!*path) {
		fs_err(p, "%s: out of memory", what);
		return -ENOMEM;
	}
	if (is_link)
		*is_link = S_ISLNK(st.st_mode);
	return 0;
}

/* The path of the watched inode, through its file handle. */
static int watch_path(struct fs_priv *p, const char *what, Ckpt__Fs__InotifyWatch *w)
{
	char obj[32];

	snprintf(obj, sizeof(obj), "watch %u", w->wd);
	return fs_fhandle_path(p, what, obj, w->sdev, w->ino, w->fhandle_type, w->fhandle.data,
			       w->fhandle.len, &w->path, NULL);
}

static int cmp_wd(const void *a, const void *b)
{
	const Ckpt__Fs__InotifyWatch *x = *(Ckpt__Fs__InotifyWatch *const *)a;
	const Ckpt__Fs__InotifyWatch *y = *(Ckpt__Fs__InotifyWatch *const *)b;

	return x->wd < y->wd ? -1 : x->wd > y->wd;
}

static int parse_watch(struct fs_priv *p, const char *what, const char *s,
		       Ckpt__Fs__InotifyWatch *w)
{
	unsigned int wd, sdev, mask, hbytes;
	unsigned long long ino;
	int htype;
	const char *h;
	size_t i;

	if (sscanf(s, "inotify wd:%x ino:%llx sdev:%x mask:%x", &wd, &ino, &sdev, &mask) != 4) {
		fs_err(p, "%s: cannot parse its fdinfo line '%.80s'", what, s);
		return -EINVAL;
	}
	w->has_wd = w->has_ino = w->has_sdev = w->has_mask = true;
	w->wd = wd;
	w->ino = ino;
	w->sdev = sdev;
	w->mask = mask & WATCH_MASK;
	h = strstr(s, "fhandle-bytes:");
	if (!h || sscanf(h, "fhandle-bytes:%x fhandle-type:%x", &hbytes, &htype) != 2 ||
	    !(h = strstr(h, "f_handle:")) || hbytes == 0 || hbytes > 128) {
		fs_err(p, "%s: watch %u (inode %llu) comes with no file handle (a filesystem "
			  "without export support?), so its path cannot be found; such watches are "
			  "not supported",
		       what, wd, ino);
		return -ENOTRECOVERABLE;
	}
	h += 9;
	w->fhandle.data = malloc(hbytes);
	if (!w->fhandle.data) {
		fs_err(p, "%s: out of memory", what);
		return -ENOMEM;
	}
	for (i = 0; i < hbytes; i++) {
		int hi = fs_hexval(h[2 * i]), lo = hi < 0 ? -1 : fs_hexval(h[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			fs_err(p, "%s: watch %u: bad f_handle in fdinfo", what, wd);
			return -EINVAL;
		}
		w->fhandle.data[i] = (uint8_t)(hi << 4 | lo);
	}
	w->fhandle.len = hbytes;
	w->has_fhandle = true;
	w->has_fhandle_type = true;
	w->fhandle_type = htype;
	return 0;
}

static int inotify_dump(struct fs_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	Ckpt__Fs__Inotify r = CKPT__FS__INOTIFY__INIT;
	Ckpt__Fs__InotifyWatch **ws = NULL;
	size_t n = 0, cap = 0;
	char what[64], *info, *s;
	int ret, queued = 0;

	snprintf(what, sizeof(what), "fd %d of PID %d (inotify)", fd->fd, (int)fd->pid);
	ret = fs_read_fdinfo(p, fd->local_fd, what, &info);
	if (ret)
		return ret;

	for (s = info; (s = strstr(s, "inotify wd:")); s += 11) {
		Ckpt__Fs__InotifyWatch *w;

		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			Ckpt__Fs__InotifyWatch **nw = realloc(ws, ncap * sizeof(*nw));

			if (!nw) {
				fs_err(p, "%s: out of memory", what);
				ret = -ENOMEM;
				goto out;
			}
			ws = nw;
			cap = ncap;
		}
		w = calloc(1, sizeof(*w));
		if (!w) {
			fs_err(p, "%s: out of memory", what);
			ret = -ENOMEM;
			goto out;
		}
		ckpt__fs__inotify_watch__init(w);
		ws[n++] = w;
		ret = parse_watch(p, what, s, w);
		if (!ret)
			ret = watch_path(p, what, w);
		if (ret)
			goto out;
	}
	qsort(ws, n, sizeof(*ws), cmp_wd);

	if (ioctl(fd->local_fd, FIONREAD, &queued) == 0 && queued > 0)
		fs_warn(p, "%s: %d bytes of inotify events are queued and not read yet; they are "
			   "not saved and will be lost",
			what, queued);

	r.has_id = true;
	r.id = obj_id;
	r.has_flags = true;
	r.flags = fd->flags & ~(unsigned int)O_CLOEXEC;
	r.n_watches = n;
	r.watches = ws;
	ret = fs_save(p, FS_INOTIFY, &r.base);
	if (!ret)
		fs_debug(p, "%s: inotify %u with %zu watches", what, obj_id, n);
out:
	free(info);
	free_watches(ws, n);
	return ret;
}

static bool watched(const Ckpt__Fs__Inotify *r, const struct stat *st)
{
	for (size_t i = 0; i < r->n_watches; i++) {
		const Ckpt__Fs__InotifyWatch *w = r->watches[i];
		struct stat ws;

		if (w->path && stat(w->path, &ws) == 0 && ws.st_dev == st->st_dev &&
		    ws.st_ino == st->st_ino)
			return true;
	}
	return false;
}

/* A directory no watch of r is on, for the watches that fill wd gaps. */
static const char *scratch_dir(const Ckpt__Fs__Inotify *r)
{
	static const char *const cand[] = { "/", "/proc", "/dev", "/sys", "/tmp", "/run", "/etc" };
	struct stat st;

	for (size_t i = 0; i < sizeof(cand) / sizeof(cand[0]); i++)
		if (stat(cand[i], &st) == 0 && !watched(r, &st))
			return cand[i];
	return NULL;
}

/* Read away every event queued on fd (non-blocking). */
static void drain(int fd)
{
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static int inotify_restore(struct fs_priv *p, const ProtobufCMessage *m, int *out)
{
	const Ckpt__Fs__Inotify *r = (const Ckpt__Fs__Inotify *)m;
	const char *scratch = NULL;
	bool gaps = false;
	int fd, e, ret;
	int next = 1; /* the wd the kernel hands out next */

	fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0) {
		e = errno;
		fs_err(p, "restore: cannot create inotify object %u: %s%s", r->id, strerror(e),
		       e == EMFILE ? " (see /proc/sys/fs/inotify/max_user_instances)" : "");
		return fs_errno(e);
	}
	for (size_t i = 0; i < r->n_watches; i++) {
		const Ckpt__Fs__InotifyWatch *w = r->watches[i];
		int wd;

		if (!w->path || !w->has_wd || (i && w->wd <= r->watches[i - 1]->wd)) {
			fs_err(p, "restore: inotify object %u: watch %zu has no path or is out of wd "
				  "order; the images are damaged",
			       r->id, i);
			e = EBADMSG;
			goto err;
		}
		/* skip the wds of watches removed before the dump */
		while (next < (int)w->wd) {
			int s;

			if (!scratch)
				scratch = scratch_dir(r);
			if (!scratch) {
				fs_err(p, "restore: inotify object %u: no scratch directory to skip wd %d "
					  "with",
				       r->id, next);
				e = ENOENT;
				goto err;
			}
			s = inotify_add_watch(fd, scratch, IN_DELETE_SELF | IN_DONT_FOLLOW);
			if (s < 0) {
				e = errno;
				fs_err(p, "restore: inotify object %u: cannot add a scratch watch on %s to "
					  "skip wd %d: %s",
				       r->id, scratch, next, strerror(e));
				goto err;
			}
			inotify_rm_watch(fd, s);
			gaps = true;
			next = s + 1;
		}
		wd = inotify_add_watch(fd, w->path, w->mask | IN_DONT_FOLLOW);
		if (wd < 0) {
			e = errno;
			fs_err(p, "restore: inotify object %u: cannot watch %s again (wd %u, mask %#x): "
				  "%s%s",
			       r->id, w->path, w->wd, w->mask, strerror(e),
			       e == ENOSPC ? " (see /proc/sys/fs/inotify/max_user_watches)" : "");
			goto err;
		}
		if (wd != (int)w->wd) {
			fs_err(p, "restore: inotify object %u: watching %s gave wd %d, the dump had %u "
				  "(two watches on one inode?)",
			       r->id, w->path, wd, w->wd);
			e = EEXIST;
			goto err;
		}
		next = wd + 1;
	}
	if (gaps)
		drain(fd); /* the IN_IGNORED events of the scratch watches */
	ret = fs_set_fl(p, fd, r->flags, "an inotify fd");
	if (ret) {
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
err:
	close(fd);
	return fs_errno(e);
}

const struct fs_class fs_inotify_class = {
	.name = "inotify",
	.img_name = "fs-inotifys.img",
	.desc = &ckpt__fs__inotify__descriptor,
	.rec_id = inotify_id,
	.dump = inotify_dump,
	.restore = inotify_restore,
};
