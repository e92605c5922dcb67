// SPDX-License-Identifier: GPL-2.0-only
/*
 * The files of a tmpfs mount of the tree (image fs-tmpfs-ID.img of
 * ckpt.fs.TmpfsNode): a walk of the mount's detached copy, so nothing
 * mounted on top of it hides or adds files.  Each name is one record with
 * its type, mode, owner and times; a symlink carries its target, a device
 * node its rdev, a second name of an inode the first name (restored with
 * link()), a regular file its size followed by records with its data runs
 * only (SEEK_DATA/SEEK_HOLE: a sparse file stays sparse).  Fifos, sockets
 * and device nodes are recreated with mknod.  Extended attributes of
 * regular files and directories are kept (an overlay upper layer marks
 * opaque directories with them); those of other kinds are not.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "mnt.h"

#define TMPFS_RUN (1u << 20) /* bytes of data per record */

struct link_seen {
	ino_t ino;
	char *path;
};

struct walk {
	struct fs_priv *p;
	struct ckpt_img *img;
	const char *what;
	struct link_seen *links;
	size_t nlinks;
	char *buf; /* TMPFS_RUN bytes */
};

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static int put(struct walk *w, const Ckpt__Fs__TmpfsNode *n)
{
	int ret = w->p->host->img_write_msg(w->img, &n->base);

	if (ret < 0)
		fs_err(w->p, "dump: cannot write the files of %s: %s", w->what, strerror(-ret));
	return ret < 0 ? fs_errno(-ret) : 0;
}

static int save_data(struct walk *w, int fd, const char *path)
{
	off_t off = 0;
	int ret = 0;

	for (;;) {
		off_t d = lseek(fd, off, SEEK_DATA), h;

		if (d < 0)
			break; /* ENXIO: no data after off */
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			break;
		for (off_t o = d; o < h;) {
			size_t want = (size_t)(h - o) < TMPFS_RUN ? (size_t)(h - o) : TMPFS_RUN;
			ssize_t r = pread(fd, w->buf, want, o);
			Ckpt__Fs__TmpfsNode n = CKPT__FS__TMPFS_NODE__INIT;

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				int e = r < 0 ? errno : EIO;

				fs_err(w->p, "dump: %s: cannot read /%s: %s", w->what, path, strerror(e));
				ret = fs_errno(e);
				goto out;
			}
			n.has_data_off = true;
			n.data_off = (uint64_t)o;
			n.has_data = true;
			n.data.data = (uint8_t *)w->buf;
			n.data.len = (size_t)r;
			ret = put(w, &n);
			if (ret)
				goto out;
			o += r;
		}
		off = h;
	}
out:
	return ret;
}

/* The extended attributes of fd into n (freed by free_xattrs). */
static int get_xattrs(struct walk *w, int fd, const char *path, Ckpt__Fs__TmpfsNode *n)
{
	char names[65536];
	ssize_t len = flistxattr(fd, names, sizeof(names));

	if (len < 0) {
		if (errno == ENOTSUP)
			return 0;
		fs_err(w->p, "dump: %s: cannot list the extended attributes of /%s: %s", w->what,
		       path, strerror(errno));
		return fs_errno(errno);
	}
	for (char *nm = names; nm < names + len; nm += strlen(nm) + 1) {
		ssize_t vl = fgetxattr(fd, nm, NULL, 0);
		Ckpt__Fs__Xattr *x, **v;

		if (vl < 0)
			continue; /* gone meanwhile, or not readable */
		x = calloc(1, sizeof(*x));
		v = realloc(n->xattrs, (n->n_xattrs + 1) * sizeof(*v));
		if (!x || !v) {
			free(x);
			if (v)
				n->xattrs = v;
			return -ENOMEM;
		}
		n->xattrs = v;
		ckpt__fs__xattr__init(x);
		v[n->n_xattrs++] = x;
		x->name = strdup(nm);
		x->has_value = true;
		x->value.data = malloc(vl ? (size_t)vl : 1);
		if (!x->name || !x->value.data)
			return -ENOMEM;
		vl = fgetxattr(fd, nm, x->value.data, (size_t)vl);
		x->value.len = vl < 0 ? 0 : (size_t)vl;
	}
	return 0;
}

static void free_xattrs(Ckpt__Fs__TmpfsNode *n)
{
	for (size_t i = 0; i < n->n_xattrs; i++) {
		free(n->xattrs[i]->name);
		free(n->xattrs[i]->value.data);
		free(n->xattrs[i]);
	}
	free(n->xattrs);
	n->xattrs = NULL;
	n->n_xattrs = 0;
}

/* One name: its record, then (directories) its children. */
static int save_node(struct walk *w, int dirfd, const char *name, const char *path,
		     const struct stat *st);

static int save_dir(struct walk *w, int fd, const char *path)
{
	int dfd = dup(fd), ret = 0;
	struct dirent *de;
	DIR *d;

	if (dfd < 0 || !(d = fdopendir(dfd))) {
		int e = errno;

		if (dfd >= 0)
			close(dfd);
		fs_err(w->p, "dump: %s: cannot list %s: %s", w->what, *path ? path : "/",
		       strerror(e));
		return fs_errno(e);
	}
	while (!ret && (errno = 0, de = readdir(d))) {
		struct stat st;
		char *sub;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (asprintf(&sub, "%s%s%s", path, *path ? "/" : "", de->d_name) < 0) {
			ret = -ENOMEM;
			break;
		}
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
			int e = errno;

			fs_err(w->p, "dump: %s: cannot stat %s: %s", w->what, sub, strerror(e));
			ret = fs_errno(e);
		} else {
			ret = save_node(w, fd, de->d_name, sub, &st);
		}
		free(sub);
	}
	closedir(d);
	return ret;
}

static int save_node(struct walk *w, int dirfd, const char *name, const char *path,
		     const struct stat *st)
{
	Ckpt__Fs__TmpfsNode n = CKPT__FS__TMPFS_NODE__INIT;
	char target[PATH_MAX + 1];
	int ret;

	n.path = (char *)path;
	n.has_mode = n.has_uid = n.has_gid = n.has_atime_ns = n.has_mtime_ns = true;
	n.mode = st->st_mode;
	n.uid = st->st_uid;
	n.gid = st->st_gid;
	n.atime_ns = ts_ns(&st->st_atim);
	n.mtime_ns = ts_ns(&st->st_mtim);

	if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
		for (size_t i = 0; i < w->nlinks; i++) {
			if (w->links[i].ino == st->st_ino) {
				n.hardlink = w->links[i].path;
				return put(w, &n);
			}
		}
		struct link_seen *l = realloc(w->links, (w->nlinks + 1) * sizeof(*l));

		if (!l)
			return -ENOMEM;
		w->links = l;
		l[w->nlinks].ino = st->st_ino;
		l[w->nlinks].path = strdup(path);
		if (!l[w->nlinks].path)
			return -ENOMEM;
		w->nlinks++;
	}

	if (S_ISLNK(st->st_mode)) {
		ssize_t len = readlinkat(dirfd, name, target, sizeof(target) - 1);

		if (len < 0) {
			int e = errno;

			fs_err(w->p, "dump: %s: cannot read the link %s: %s", w->what, path,
			       strerror(e));
			return fs_errno(e);
		}
		target[len] = 0;
		n.symlink = target;
	} else if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
		n.has_rdev = true;
		n.rdev = st->st_rdev;
	} else if (S_ISREG(st->st_mode)) {
		n.has_size = true;
		n.size = (uint64_t)st->st_size;
	}
	if (!S_ISREG(st->st_mode) && !S_ISDIR(st->st_mode))
		return put(w, &n);

	int fd = openat(dirfd, name,
			O_RDONLY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC |
				(S_ISDIR(st->st_mode) ? O_DIRECTORY : 0));
	if (fd < 0) {
		int e = errno;

		fs_err(w->p, "dump: %s: cannot open /%s: %s", w->what, path, strerror(e));
		return fs_errno(e);
	}
	ret = get_xattrs(w, fd, path, &n);
	if (!ret)
		ret = put(w, &n);
	free_xattrs(&n);
	if (!ret)
		ret = S_ISREG(st->st_mode) ? save_data(w, fd, path) : save_dir(w, fd, path);
	close(fd);
	return ret;
}

int tmpfs_save(struct fs_priv *p, int rootfd, const char *img_name, const char *what)
{
	struct walk w = { .p = p, .what = what };
	struct stat st;
	int ret;

	w.buf = malloc(TMPFS_RUN);
	if (!w.buf)
		return -ENOMEM;
	w.img = p->host->img_create(img_name, ckpt__fs__tmpfs_node__descriptor.name);
	if (!w.img) {
		int e = errno;

		free(w.buf);
		fs_err(p, "dump: cannot create image %s: %s", img_name, strerror(e));
		return fs_errno(e);
	}
	if (fstat(rootfd, &st)) {
		ret = fs_errno(errno);
		fs_err(p, "dump: %s: cannot stat its root: %s", what, strerror(-ret));
	} else {
		ret = save_node(&w, rootfd, ".", "", &st);
	}
	int r = p->host->img_close(w.img);
	if (!ret && r < 0) {
		fs_err(p, "dump: cannot finish image %s: %s", img_name, strerror(-r));
		ret = fs_errno(-r);
	}
	for (size_t i = 0; i < w.nlinks; i++)
		free(w.links[i].path);
	free(w.links);
	free(w.buf);
	return ret;
}

/* ---- restore ------------------------------------------------------------- */

/* Owner, mode and times go on last, deepest first: creating a name
 * changes its directory's mtime, and a read-only mode would get in the
 * way of filling. */
struct meta {
	char *path;
	mode_t mode;
	uid_t uid;
	gid_t gid;
	int64_t atime_ns, mtime_ns;
};

static int apply_meta(struct fs_priv *p, int rootfd, const struct meta *m, const char *what)
{
	const char *path = *m->path ? m->path : ".";
	struct timespec ts[2] = {
		{ m->atime_ns / 1000000000, m->atime_ns % 1000000000 },
		{ m->mtime_ns / 1000000000, m->mtime_ns % 1000000000 },
	};

	if (fchownat(rootfd, path, m->uid, m->gid, AT_SYMLINK_NOFOLLOW) ||
	    (!S_ISLNK(m->mode) && fchmodat(rootfd, path, m->mode & 07777, 0)) ||
	    utimensat(rootfd, path, ts, AT_SYMLINK_NOFOLLOW)) {
		int e = errno;

		fs_err(p, "restore: %s: cannot set owner, mode or times of /%s: %s", what, m->path,
		       strerror(e));
		return fs_errno(e);
	}
	return 0;
}

static int create_node(struct fs_priv *p, int rootfd, const Ckpt__Fs__TmpfsNode *n, int *filefd,
		       const char *what)
{
	mode_t type = n->mode & S_IFMT;
	int e = 0;

	if (n->hardlink) {
		if (linkat(rootfd, n->hardlink, rootfd, n->path, 0))
			e = errno;
	} else if (!*n->path) {
		if (type != S_IFDIR)
			e = ENOTDIR;
	} else if (type == S_IFDIR) {
		if (mkdirat(rootfd, n->path, 0700))
			e = errno;
	} else if (type == S_IFLNK) {
		if (!n->symlink || symlinkat(n->symlink, rootfd, n->path))
			e = n->symlink ? errno : EBADMSG;
	} else if (type == S_IFREG) {
		int fd = openat(rootfd, n->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				0600);

		if (fd < 0 || ftruncate(fd, (off_t)n->size)) {
			e = errno;
			if (fd >= 0)
				close(fd);
		} else {
			*filefd = fd;
		}
	} else if (type == S_IFIFO || type == S_IFSOCK || type == S_IFCHR || type == S_IFBLK) {
		if (mknodat(rootfd, n->path, type | 0600, (dev_t)n->rdev))
			e = errno;
	} else {
		e = EBADMSG;
	}
	if (!e && n->n_xattrs && !n->hardlink && (type == S_IFREG || type == S_IFDIR)) {
		int fd = type == S_IFREG ? *filefd
					 : openat(rootfd, *n->path ? n->path : ".",
						  O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		for (size_t i = 0; fd >= 0 && !e && i < n->n_xattrs; i++) {
			const Ckpt__Fs__Xattr *x = n->xattrs[i];

			if (x->name && fsetxattr(fd, x->name, x->value.data, x->value.len, 0)) {
				e = errno;
				fs_err(p, "restore: %s: cannot set extended attribute %s of /%s: %s",
				       what, x->name, n->path, strerror(e));
				return fs_errno(e);
			}
		}
		if (fd < 0)
			e = errno;
		if (type == S_IFDIR && fd >= 0)
			close(fd);
	}
	if (e)
		fs_err(p, "restore: %s: cannot create /%s: %s", what, n->path, strerror(e));
	return e ? fs_errno(e) : 0;
}

int tmpfs_fill(struct fs_priv *p, int rootfd, const char *img_name, const char *what)
{
	struct ckpt_img *img = p->host->img_open(img_name, ckpt__fs__tmpfs_node__descriptor.name);
	struct meta *metas = NULL;
	size_t nmetas = 0;
	int filefd = -1, ret = 0;

	if (!img) {
		int e = errno;

		fs_err(p, "restore: cannot open image %s (files of %s): %s", img_name, what,
		       strerror(e));
		return fs_errno(e);
	}
	for (;;) {
		Ckpt__Fs__TmpfsNode *n;
		void *rec;
		size_t len;
		int r = p->host->img_read(img, &rec, &len);

		if (r <= 0) {
			if (r < 0) {
				fs_err(p, "restore: cannot read image %s: %s", img_name, strerror(-r));
				ret = fs_errno(-r);
			}
			break;
		}
		n = ckpt__fs__tmpfs_node__unpack(NULL, len, rec);
		free(rec);
		if (!n || (!n->path && (filefd < 0 || !n->has_data))) {
			fs_err(p, "restore: image %s holds a damaged record", img_name);
			if (n)
				ckpt__fs__tmpfs_node__free_unpacked(n, NULL);
			ret = -EBADMSG;
			break;
		}
		if (!n->path) {
			size_t done = 0;

			while (done < n->data.len) {
				ssize_t w = pwrite(filefd, n->data.data + done, n->data.len - done,
						   (off_t)(n->data_off + done));
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0) {
					ret = fs_errno(w < 0 ? errno : EIO);
					fs_err(p, "restore: %s: cannot write file data: %s", what,
					       strerror(-ret));
					break;
				}
				done += (size_t)w;
			}
			ckpt__fs__tmpfs_node__free_unpacked(n, NULL);
			if (ret)
				break;
			continue;
		}
		if (filefd >= 0)
			close(filefd);
		filefd = -1;
		ret = create_node(p, rootfd, n, &filefd, what);
		if (!ret && !n->hardlink) {
			struct meta *m = realloc(metas, (nmetas + 1) * sizeof(*m));

			if (!m || !(m[nmetas].path = strdup(n->path))) {
				if (m)
					metas = m;
				ret = -ENOMEM;
			} else {
				metas = m;
				m[nmetas].mode = n->mode;
				m[nmetas].uid = n->uid;
				m[nmetas].gid = n->gid;
				m[nmetas].atime_ns = n->atime_ns;
				m[nmetas].mtime_ns = n->mtime_ns;
				nmetas++;
			}
		}
		ckpt__fs__tmpfs_node__free_unpacked(n, NULL);
		if (ret)
			break;
	}
	if (filefd >= 0)
		close(filefd);
	p->host->img_close(img);
	for (size_t i = nmetas; i-- > 0;) {
		if (!ret)
			ret = apply_meta(p, rootfd, &metas[i], what);
		free(metas[i].path);
	}
	free(metas);
	return ret;
}
