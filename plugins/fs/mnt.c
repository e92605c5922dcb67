// SPDX-License-Identifier: GPL-2.0-only
/*
 * The tree's own mount namespace (image fs-mounts.img of ckpt.fs.Mount,
 * plus fs-tmpfs-ID.img per tmpfs, see mnt_tmpfs.c).
 *
 * Dump reads /proc/ROOT/mountinfo and decides for each mount how it is made
 * again: a mount equal to one ckpt itself sees (same mount point, device,
 * root and type) is inherited: the restore's new namespace is a copy of
 * ckpt's, so it is only checked.  The tree's own mounts: tmpfs (options and
 * files saved), proc/sysfs/devpts/mqueue (mounted anew), overlay (from its
 * layer options), binds of another mount of the tree or of a host path,
 * and mounts named with --external mnt[MOUNTPOINT]:KEY.  Anything else is
 * refused, naming the mount.  Propagation inside the tree: a mount that is
 * a peer or a slave of an earlier one is bound from it (peers share the
 * group, a slave gets --make-slave), others are made private or shared as
 * they were.
 *
 * Restore: unshare a mount namespace (a copy of ckpt's), check the
 * inherited mounts and unmount those the tree did not have, then create the
 * tree's mounts in order, parents first; hand the namespace to the core as
 * an fd and go back to ckpt's own.  The core enters it before it opens any
 * file of the tree (ckpt_lifecycle_hooks.restore_namespace).  A mount that appeared by propagation while the tree
 * was rebuilt is taken as it is.  A proc of a tree whose root is init of
 * its own pid namespace (and whatever lies below it) is mounted in
 * restore_resume, once that namespace exists, with the mount option pidns
 * (Linux 6.15).  A tree behind pivot_root (its "/" is not ckpt's) keeps
 * nothing of ckpt's namespace: every mount is made under a fresh directory
 * (host sources still in reach), which pivot_root then makes the root.
 * A tree whose root task is chrooted inside the namespace has its mounts
 * read through a helper standing at the namespace's root; the chroot
 * itself is the core's (TaskCore.root, like cwd).
 */
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mnt.h"

#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif

/* One line of mountinfo. */
struct mi {
	unsigned int id, parent, maj, min;
	char *root, *mp, *fstype, *source, *sopts;
	unsigned long flags;
	unsigned int shared, master;
	bool unbindable, super_ro;
	bool taken; /* matched already */
};

struct mi_list {
	struct mi *v;
	size_t n;
	char *buf;
};

static const struct {
	const char *name;
	unsigned long flag;
} mnt_flags[] = {
	{ "ro", MS_RDONLY },		{ "nosuid", MS_NOSUID },     { "nodev", MS_NODEV },
	{ "noexec", MS_NOEXEC },	{ "noatime", MS_NOATIME },   { "nodiratime", MS_NODIRATIME },
	{ "relatime", MS_RELATIME },	{ "nosymfollow", MS_NOSYMFOLLOW },
};

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = 0;
}

static unsigned long parse_flags(char *opts)
{
	unsigned long f = 0;
	char *save = NULL;

	for (char *t = strtok_r(opts, ",", &save); t; t = strtok_r(NULL, ",", &save))
		for (size_t i = 0; i < sizeof(mnt_flags) / sizeof(mnt_flags[0]); i++)
			if (!strcmp(t, mnt_flags[i].name))
				f |= mnt_flags[i].flag;
	if (!(f & (MS_NOATIME | MS_RELATIME)))
		f |= MS_STRICTATIME; /* shown as nothing; a new mount defaults to relatime */
	return f;
}

/* Super options without rw/ro (the mount call sets those). */
static void strip_rw(char *s, bool *ro)
{
	char *o = s, *save = NULL, *copy = strdup(s);

	*ro = false;
	if (!copy)
		return;
	*o = 0;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "ro")) {
			*ro = true;
			continue;
		}
		if (!strcmp(t, "rw"))
			continue;
		o += sprintf(o, "%s%s", o == s ? "" : ",", t);
	}
	free(copy);
}

static void mi_free(struct mi_list *l)
{
	free(l->v);
	free(l->buf);
	memset(l, 0, sizeof(*l));
}

/* Parse a whole mountinfo text (taken over by l). */
static int mi_parse(char *text, struct mi_list *l)
{
	size_t cap = 0;

	memset(l, 0, sizeof(*l));
	l->buf = text;
	for (char *line = text, *next; line && *line; line = next) {
		char *f[64], *save = NULL;
		int nf = 0, dash = -1;

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		for (char *t = strtok_r(line, " ", &save); t && nf < 64; t = strtok_r(NULL, " ", &save)) {
			if (!strcmp(t, "-") && dash < 0)
				dash = nf;
			f[nf++] = t;
		}
		if (nf < 10 || dash < 6 || nf < dash + 4)
			return -EBADMSG;
		if (l->n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct mi *v = realloc(l->v, ncap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			l->v = v;
			cap = ncap;
		}
		struct mi *m = &l->v[l->n++];

		memset(m, 0, sizeof(*m));
		m->id = (unsigned int)strtoul(f[0], NULL, 10);
		m->parent = (unsigned int)strtoul(f[1], NULL, 10);
		if (sscanf(f[2], "%u:%u", &m->maj, &m->min) != 2)
			return -EBADMSG;
		m->root = f[3];
		m->mp = f[4];
		unescape(m->root);
		unescape(m->mp);
		m->flags = parse_flags(f[5]);
		for (int i = 6; i < dash; i++) {
			if (!strncmp(f[i], "shared:", 7))
				m->shared = (unsigned int)strtoul(f[i] + 7, NULL, 10);
			else if (!strncmp(f[i], "master:", 7))
				m->master = (unsigned int)strtoul(f[i] + 7, NULL, 10);
			else if (!strcmp(f[i], "unbindable"))
				m->unbindable = true;
		}
		m->fstype = f[dash + 1];
		m->source = f[dash + 2];
		unescape(m->source);
		m->sopts = f[dash + 3];
		strip_rw(m->sopts, &m->super_ro);
	}
	return 0;
}

static int read_text_fd(int fd, char **out)
{
	size_t cap = 16384, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	if (lseek(fd, 0, SEEK_SET) < 0) {
		free(buf);
		return -errno;
	}
	for (;;) {
		ssize_t r;

		if (len + 1 >= cap) {
			char *n = realloc(buf, cap * 2);

			if (!n) {
				free(buf);
				return -ENOMEM;
			}
			buf = n;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = -errno;

			free(buf);
			return e;
		}
		if (!r)
			break;
		len += (size_t)r;
	}
	buf[len] = 0;
	*out = buf;
	return 0;
}

static int mi_read(struct fs_priv *p, const char *path, int fd, struct mi_list *l)
{
	char *text = NULL;
	int ret, own = -1;

	if (fd < 0) {
		own = fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			ret = -errno;
			fs_err(p, "cannot read %s: %s", path, strerror(-ret));
			return ret;
		}
	}
	ret = read_text_fd(fd, &text);
	if (own >= 0)
		close(own);
	if (ret) {
		fs_err(p, "cannot read %s: %s", path, strerror(-ret));
		return ret;
	}
	ret = mi_parse(text, l);
	if (ret) {
		mi_free(l);
		fs_err(p, "%s: a line ckpt cannot parse", path);
	}
	return ret;
}

/* path below prefix: the rest ("" when equal), or NULL. */
static const char *below(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	if (!strcmp(prefix, "/"))
		return path + 1;
	if (strncmp(path, prefix, n) || (path[n] && path[n] != '/'))
		return NULL;
	return path[n] ? path + n + 1 : path + n;
}

/* --external entries "mnt[A]:B,mnt[C]:D": B for A, or NULL. */
static char *external_lookup(struct fs_priv *p, const char *a)
{
	const char *v = p->host->config_get ? p->host->config_get(FS_NAME, "external_mnt") : NULL;

	while (v && !strncmp(v, "mnt[", 4)) {
		const char *close_br = strstr(v, "]:"), *end;

		if (!close_br)
			break;
		end = strstr(close_br + 2, ",mnt[");
		if (!end)
			end = close_br + strlen(close_br);
		if ((size_t)(close_br - v - 4) == strlen(a) && !strncmp(v + 4, a, strlen(a)))
			return strndup(close_br + 2, (size_t)(end - close_br - 2));
		v = *end ? end + 1 : end;
	}
	return NULL;
}

/* ---- dump ----------------------------------------------------------------- */

static bool fresh_type(const char *t)
{
	return !strcmp(t, "proc") || !strcmp(t, "sysfs") || !strcmp(t, "devpts") ||
	       !strcmp(t, "mqueue");
}

static bool dev_in(const struct mi_list *l, const struct mi *m)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].maj == m->maj && l->v[i].min == m->min)
			return true;
	return false;
}

/* Detached copies of the tree's tmpfs mounts, opened from inside its
 * namespace by a forked child (setns needs a single-threaded caller) and
 * passed back over a socket.  fds[i] for rec[i] of kind MNT_TMPFS. */
static int clone_tmpfs_mounts(struct fs_priv *p, pid_t root, Ckpt__Fs__Mount **rec, size_t n,
			      int *fds)
{
	char path[64];
	int sv[2], nsfd, ret = 0;
	pid_t child;

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)root);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		ret = -errno;
		fs_err(p, "dump: cannot reach the mount namespace of PID %d: %s", (int)root,
		       strerror(-ret));
		if (nsfd >= 0)
			close(nsfd);
		return ret;
	}
	child = fork();
	if (child == 0) {
		close(sv[0]);
		if (setns(nsfd, CLONE_NEWNS))
			_exit(1);
		for (size_t i = 0; i < n; i++) {
			if (rec[i]->kind != CKPT__FS__MOUNT_KIND__MNT_TMPFS)
				continue;
			int fd = (int)syscall(SYS_open_tree, AT_FDCWD, rec[i]->mountpoint,
					      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
			int err = fd < 0 ? errno : 0;
			char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
			struct iovec iov = { &err, sizeof(err) };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

			if (fd >= 0) {
				mh.msg_control = cbuf;
				mh.msg_controllen = sizeof(cbuf);
				struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

				c->cmsg_level = SOL_SOCKET;
				c->cmsg_type = SCM_RIGHTS;
				c->cmsg_len = CMSG_LEN(sizeof(int));
				memcpy(CMSG_DATA(c), &fd, sizeof(int));
			}
			if (sendmsg(sv[1], &mh, 0) < 0)
				_exit(1);
			if (fd >= 0)
				close(fd);
		}
		_exit(0);
	}
	close(sv[1]);
	close(nsfd);
	if (child < 0) {
		ret = -errno;
		close(sv[0]);
		fs_err(p, "dump: fork: %s", strerror(-ret));
		return ret;
	}
	for (size_t i = 0; i < n && !ret; i++) {
		if (rec[i]->kind != CKPT__FS__MOUNT_KIND__MNT_TMPFS)
			continue;
		int err = 0;
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = { &err, sizeof(err) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf) };
		ssize_t r = recvmsg(sv[0], &mh, MSG_CMSG_CLOEXEC);
		struct cmsghdr *c = r > 0 ? CMSG_FIRSTHDR(&mh) : NULL;

		if (r <= 0 || err || !c || c->cmsg_type != SCM_RIGHTS) {
			ret = -(err ? err : EIO);
			fs_err(p, "dump: cannot take a copy of mount %s (tmpfs) from inside the tree's mount namespace: %s",
			       rec[i]->mountpoint, strerror(-ret));
			break;
		}
		memcpy(&fds[i], CMSG_DATA(c), sizeof(int));
	}
	close(sv[0]);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	return ret;
}

/* How mount m of the tree is made again; -errno after an error was logged. */
static int classify(struct fs_priv *p, struct mi_list *tree, size_t idx, struct mi_list *host,
		    Ckpt__Fs__Mount **rec, bool pivoted)
{
	struct mi *m = &tree->v[idx];
	Ckpt__Fs__Mount *r = rec[idx];
	char *key = external_lookup(p, m->mp);

	if (key) {
		r->kind = CKPT__FS__MOUNT_KIND__MNT_EXTERNAL;
		r->external_key = key;
		return 0;
	}
	for (size_t i = 0; i < host->n && !pivoted; i++) {
		struct mi *h = &host->v[i];

		if (!h->taken && h->maj == m->maj && h->min == m->min && !strcmp(h->mp, m->mp) &&
		    !strcmp(h->root, m->root) && !strcmp(h->fstype, m->fstype)) {
			h->taken = true;
			r->kind = CKPT__FS__MOUNT_KIND__MNT_INHERITED;
			return 0;
		}
	}
	if (!strcmp(m->mp, "/")) {
		r->has_new_root = true;
		r->new_root = true;
	}

	/* a peer or slave is bound from the first mount of its group; any
	 * other mount of a filesystem the tree mounted itself from the first
	 * mount of that filesystem */
	unsigned int group = m->shared ? m->shared : m->master;
	int from = -1;

	for (size_t i = 0; i < idx && group && from < 0; i++) {
		if (tree->v[i].shared == group && rec[i]->kind != CKPT__FS__MOUNT_KIND__MNT_INHERITED)
			from = (int)i;
		else if (tree->v[i].shared == group) {
			fs_err(p, "dump: mount %s shares propagation with %s, a mount from outside the tree; not supported (make it private)",
			       m->mp, tree->v[i].mp);
			return -ENOTSUP;
		}
	}
	if (m->master && from < 0) {
		fs_err(p, "dump: mount %s is a slave of a mount outside the tree's mount namespace; not supported (make it private, or name it with --external mnt[%s]:KEY)",
		       m->mp, m->mp);
		return -ENOTSUP;
	}
	if (m->master && m->shared) {
		for (size_t i = 0; i < idx; i++)
			if (tree->v[i].shared == m->shared) {
				fs_err(p, "dump: mount %s is a slave and a peer of an earlier mount at once; not supported",
				       m->mp);
				return -ENOTSUP;
			}
		from = -1;
		for (size_t i = 0; i < idx && from < 0; i++)
			if (tree->v[i].shared == m->master)
				from = (int)i;
	}
	for (size_t i = 0; i < idx && from < 0; i++)
		if (tree->v[i].maj == m->maj && tree->v[i].min == m->min &&
		    rec[i]->kind != CKPT__FS__MOUNT_KIND__MNT_INHERITED &&
		    rec[i]->kind != CKPT__FS__MOUNT_KIND__MNT_HOST_BIND &&
		    rec[i]->kind != CKPT__FS__MOUNT_KIND__MNT_EXTERNAL)
			from = (int)i;
	if (from >= 0) {
		const char *rel = below(m->root, tree->v[from].root);

		if (!rel) {
			fs_err(p, "dump: mount %s shows %s of its filesystem, outside what mount %s shows (%s); not supported",
			       m->mp, m->root, tree->v[from].mp, tree->v[from].root);
			return -ENOTSUP;
		}
		r->kind = CKPT__FS__MOUNT_KIND__MNT_BIND;
		r->has_bind_from = true;
		r->bind_from = tree->v[from].id;
		r->bind_path = strdup(rel);
		return r->bind_path ? 0 : -ENOMEM;
	}
	if (!strcmp(m->root, "/") && fresh_type(m->fstype)) {
		r->kind = CKPT__FS__MOUNT_KIND__MNT_FRESH;
		return 0;
	}
	if (!strcmp(m->fstype, "tmpfs") && !dev_in(host, m)) {
		r->kind = CKPT__FS__MOUNT_KIND__MNT_TMPFS;
		if (asprintf(&r->tmpfs_image, "fs-tmpfs-%u.img", m->id) < 0) {
			r->tmpfs_image = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	if (!strcmp(m->fstype, "overlay") && !strcmp(m->root, "/")) {
		r->kind = CKPT__FS__MOUNT_KIND__MNT_OVERLAY;
		return 0;
	}
	for (size_t i = 0; i < host->n; i++) {
		struct mi *h = &host->v[i];
		const char *rel = h->maj == m->maj && h->min == m->min ? below(m->root, h->root) : NULL;

		if (!rel)
			continue;
		r->kind = CKPT__FS__MOUNT_KIND__MNT_HOST_BIND;
		if (asprintf(&r->bind_path, "%s%s%s", h->mp, *rel && strcmp(h->mp, "/") ? "/" : "",
			     rel) < 0) {
			r->bind_path = NULL;
			return -ENOMEM;
		}
		return 0;
	}
	fs_err(p, "dump: mount %s (%s from %s) of the tree's mount namespace cannot be made again; name it with --external mnt[%s]:KEY",
	       m->mp, m->fstype, m->source, m->mp);
	return -ENOTSUP;
}

/* Every --external mnt[A]:KEY of a dump must name a mount of the tree. */
static int check_externals_used(struct fs_priv *p, const struct mi_list *tree)
{
	const char *v = p->host->config_get ? p->host->config_get(FS_NAME, "external_mnt") : NULL;

	while (v && !strncmp(v, "mnt[", 4)) {
		const char *close_br = strstr(v, "]:"), *end;
		bool found = false;

		if (!close_br)
			break;
		for (size_t i = 0; i < tree->n && !found; i++)
			found = strlen(tree->v[i].mp) == (size_t)(close_br - v - 4) &&
				!strncmp(tree->v[i].mp, v + 4, (size_t)(close_br - v - 4));
		if (!found) {
			fs_err(p, "dump: --external %.*s: the tree's mount namespace has no mount at %.*s",
			       (int)(strcspn(v, ",")), v, (int)(close_br - v - 4), v + 4);
			return -EINVAL;
		}
		end = strstr(close_br + 2, ",mnt[");
		v = end ? end + 1 : close_br + strlen(close_br);
	}
	return 0;
}

static bool own_pidns(pid_t root)
{
	struct stat a, b;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)root);
	return !stat(path, &a) && !stat("/proc/self/ns/pid", &b) && a.st_ino != b.st_ino;
}

/* /proc/ROOT/mountinfo shows the mounts as ROOT sees them from its root
 * directory: a chrooted root hides every mount outside it and names the
 * others from there.  Then *fd is the mountinfo of a forked child standing
 * at the root of ROOT's namespace (the kernel fixes namespace and root when
 * the file is opened); else -1, and /proc/ROOT/mountinfo is right.  The
 * chroot itself is the core's to save, like the working directory. */
static int ns_mountinfo(struct fs_priv *p, pid_t root, int *fd)
{
	char path[64], link[8], c;
	int nsfd, go[2], ready[2], ret = 0;
	ssize_t ll;
	pid_t child;

	*fd = -1;
	snprintf(path, sizeof(path), "/proc/%d/root", (int)root);
	ll = readlink(path, link, sizeof(link));
	if (ll == 1 && link[0] == '/')
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)root);
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0 || pipe2(go, O_CLOEXEC)) {
		ret = -errno;
		fs_err(p, "dump: cannot reach the mount namespace of PID %d: %s", (int)root,
		       strerror(-ret));
		if (nsfd >= 0)
			close(nsfd);
		return ret;
	}
	if (pipe2(ready, O_CLOEXEC)) {
		ret = -errno;
		fs_err(p, "dump: pipe: %s", strerror(-ret));
		close(nsfd);
		close(go[0]);
		close(go[1]);
		return ret;
	}
	child = fork();
	if (child == 0) {
		close(go[1]);
		close(ready[0]);
		c = setns(nsfd, CLONE_NEWNS) ? 'x' : 'k';
		if (write(ready[1], &c, 1) != 1)
			_exit(1);
		/* stay until the parent opened our mountinfo */
		while (read(go[0], &c, 1) < 0)
			;
		_exit(0);
	}
	close(nsfd);
	close(go[0]);
	close(ready[1]);
	if (child < 0) {
		ret = -errno;
		fs_err(p, "dump: fork: %s", strerror(-ret));
	} else if (read(ready[0], &c, 1) != 1 || c != 'k') {
		ret = -EPERM;
		fs_err(p, "dump: cannot enter the mount namespace of PID %d to read its mounts",
		       (int)root);
	} else {
		snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)child);
		*fd = open(path, O_RDONLY | O_CLOEXEC);
		if (*fd < 0) {
			ret = -errno;
			fs_err(p, "dump: cannot read the mounts of PID %d's namespace: %s",
			       (int)root, strerror(-ret));
		}
	}
	close(go[1]);
	close(ready[0]);
	if (child > 0)
		while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
			;
	return ret;
}

int mnt_dump_namespace(struct fs_priv *p, pid_t root)
{
	struct mi_list tree = { 0 }, host = { 0 };
	Ckpt__Fs__Mount **rec = NULL;
	struct ckpt_img *img = NULL;
	char path[64];
	int *fds = NULL, ret, mi_fd = -1;

	ret = ns_mountinfo(p, root, &mi_fd);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)root);
	ret = mi_read(p, path, mi_fd, &tree);
	if (mi_fd >= 0)
		close(mi_fd);
	if (!ret)
		ret = mi_read(p, "/proc/self/mountinfo", -1, &host);
	if (ret)
		goto out;
	/* behind pivot_root when its root is not ckpt's: then nothing of
	 * ckpt's namespace is kept and every mount is made again */
	const struct mi *troot = NULL, *hroot = NULL;
	for (size_t i = 0; i < tree.n; i++)
		if (!strcmp(tree.v[i].mp, "/"))
			troot = &tree.v[i];
	for (size_t i = 0; i < host.n; i++)
		if (!strcmp(host.v[i].mp, "/"))
			hroot = &host.v[i];
	bool pivoted = !troot || !hroot || troot->maj != hroot->maj || troot->min != hroot->min ||
		       strcmp(troot->root, hroot->root) || strcmp(troot->fstype, hroot->fstype);
	if (!troot) {
		fs_err(p, "dump: the mount namespace of PID %d shows no root mount", (int)root);
		ret = -ENOTSUP;
		goto out;
	}
	rec = calloc(tree.n ? tree.n : 1, sizeof(*rec));
	fds = malloc((tree.n ? tree.n : 1) * sizeof(int));
	if (!rec || !fds) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < tree.n; i++) {
		struct mi *m = &tree.v[i];
		Ckpt__Fs__Mount *r = calloc(1, sizeof(*r));

		fds[i] = -1;
		if (!r) {
			ret = -ENOMEM;
			goto out;
		}
		ckpt__fs__mount__init(r);
		rec[i] = r;
		r->has_id = r->has_parent_id = r->has_flags = r->has_kind = r->has_dev = true;
		r->id = m->id;
		r->parent_id = m->parent;
		r->mountpoint = m->mp;
		r->root = m->root;
		r->fstype = m->fstype;
		r->source = m->source;
		r->super_opts = m->sopts;
		r->flags = (uint32_t)m->flags;
		r->dev = (uint64_t)makedev(m->maj, m->min);
		if (m->super_ro) {
			r->has_super_ro = true;
			r->super_ro = true;
		}
		if (m->shared) {
			r->has_shared = true;
			r->shared = m->shared;
		}
		if (m->master) {
			r->has_master = true;
			r->master = m->master;
		}
		if (m->unbindable) {
			r->has_unbindable = true;
			r->unbindable = true;
		}
		ret = classify(p, &tree, i, &host, rec, pivoted);
		if (ret)
			goto out;
		/* the root is init of its own pid namespace: its proc can only
		 * be mounted once the restored namespace exists */
		if (r->kind == CKPT__FS__MOUNT_KIND__MNT_FRESH && !strcmp(m->fstype, "proc") &&
		    own_pidns(root)) {
			r->has_tree_pidns = true;
			r->tree_pidns = true;
		}
		fs_debug(p, "dump: mount %u %s (%s): kind %d", m->id, m->mp, m->fstype, r->kind);
	}
	ret = check_externals_used(p, &tree);
	if (!ret)
		ret = clone_tmpfs_mounts(p, root, rec, tree.n, fds);
	for (size_t i = 0; i < tree.n && !ret; i++) {
		struct stat st;
		char what[PATH_MAX + 16];

		if (fds[i] < 0)
			continue;
		snprintf(what, sizeof(what), "tmpfs %s", tree.v[i].mp);
		if (fstat(fds[i], &st) || st.st_dev != rec[i]->dev) {
			fs_err(p, "dump: mount %s (tmpfs) is hidden under another mount; its files cannot be read",
			       tree.v[i].mp);
			ret = -ENOTSUP;
			break;
		}
		ret = tmpfs_save(p, fds[i], rec[i]->tmpfs_image, what);
	}
	if (ret)
		goto out;
	img = p->host->img_create(MNT_IMG, ckpt__fs__mount__descriptor.name);
	if (!img) {
		ret = fs_errno(errno);
		fs_err(p, "dump: cannot create image %s: %s", MNT_IMG, strerror(-ret));
		goto out;
	}
	for (size_t i = 0; i < tree.n && !ret; i++) {
		ret = p->host->img_write_msg(img, &rec[i]->base);
		if (ret < 0)
			fs_err(p, "dump: cannot write image %s: %s", MNT_IMG, strerror(-ret));
	}
	int r = p->host->img_close(img);
	if (!ret && r < 0) {
		ret = r;
		fs_err(p, "dump: cannot finish image %s: %s", MNT_IMG, strerror(-r));
	}
	if (!ret)
		fs_info(p, "dump: %zu mount(s) of PID %d's mount namespace saved", tree.n, (int)root);
out:
	for (size_t i = 0; rec && i < tree.n; i++) {
		if (fds && fds[i] >= 0)
			close(fds[i]);
		if (!rec[i])
			continue;
		free(rec[i]->bind_path);
		free(rec[i]->external_key);
		free(rec[i]->tmpfs_image);
		free(rec[i]);
	}
	free(rec);
	free(fds);
	mi_free(&tree);
	mi_free(&host);
	/* never -ENOTSUP: that would read as "not mine" */
	return ret < 0 ? fs_errno(-ret) : 0;
}

/* ---- restore -------------------------------------------------------------- */

struct built {
	uint32_t id;      /* mount id at the dump */
	uint64_t new_id;  /* mount id in the new namespace */
	const Ckpt__Fs__Mount *rec;
};

struct builder {
	struct fs_priv *p;
	Ckpt__Fs__Mount **recs;
	size_t n;
	int nsfd;  /* the new namespace, once made */
	int mi_fd; /* /proc/self/mountinfo of the builder, opened first */
	uint64_t *known; /* mount ids of the new namespace accounted for */
	size_t nknown;
	struct built *done;
	size_t ndone;
	/* a tree behind pivot_root: its mounts are made under stage, then
	 * pivot_root makes stage the root (pivoted) */
	char *stage;
	char **staged; /* mount point under stage, per record */
	bool stage_made, pivoted;
};

/* Where record r is mounted now: under the stage until the pivot. */
static const char *where(const struct builder *b, const Ckpt__Fs__Mount *r)
{
	if (!b->staged || b->pivoted)
		return r->mountpoint;
	for (size_t i = 0; i < b->n; i++)
		if (b->recs[i] == r)
			return b->staged[i];
	return r->mountpoint;
}

static bool is_known(const struct builder *b, uint64_t id)
{
	for (size_t i = 0; i < b->nknown; i++)
		if (b->known[i] == id)
			return true;
	return false;
}

static int add_known(struct builder *b, uint64_t id)
{
	uint64_t *k = realloc(b->known, (b->nknown + 1) * sizeof(*k));

	if (!k)
		return -ENOMEM;
	b->known = k;
	k[b->nknown++] = id;
	return 0;
}

static const struct built *built_of(const struct builder *b, uint32_t id)
{
	for (size_t i = 0; i < b->ndone; i++)
		if (b->done[i].id == id)
			return &b->done[i];
	return NULL;
}

/* The mount id of what path shows now (the top mount). */
static int top_mount_id(const char *path, uint64_t *id)
{
	struct statx sx;

	if (statx(AT_FDCWD, path, AT_NO_AUTOMOUNT, STATX_MNT_ID, &sx))
		return -errno;
	if (!(sx.stx_mask & STATX_MNT_ID))
		return -ENOTSUP;
	*id = sx.stx_mnt_id;
	return 0;
}

static int set_propagation(struct fs_priv *p, const char *mp, unsigned long how, const char *name)
{
	if (mount(NULL, mp, NULL, how, NULL)) {
		int e = errno;

		fs_err(p, "restore: cannot make mount %s %s: %s", mp, name, strerror(e));
		return fs_errno(e);
	}
	return 0;
}

/* Options of a fresh proc/devpts mount that mean something to a new one. */
static char *fresh_opts(const Ckpt__Fs__Mount *r)
{
	static const char *const keep_proc[] = { "hidepid=", "subset=", "gid=", NULL };
	static const char *const keep_devpts[] = { "gid=", "uid=", "mode=", "ptmxmode=", "max=",
						   NULL };
	const char *const *keep = !strcmp(r->fstype, "proc")     ? keep_proc
				  : !strcmp(r->fstype, "devpts") ? keep_devpts
								 : NULL;
	char *out = calloc(1, (r->super_opts ? strlen(r->super_opts) : 0) + 16), *o = out;
	char *copy = r->super_opts ? strdup(r->super_opts) : strdup(""), *save = NULL;

	if (!out || !copy) {
		free(out);
		free(copy);
		return NULL;
	}
	if (!strcmp(r->fstype, "devpts"))
		o += sprintf(o, "newinstance");
	for (char *t = strtok_r(copy, ",", &save); t && keep; t = strtok_r(NULL, ",", &save))
		for (size_t i = 0; keep[i]; i++)
			if (!strncmp(t, keep[i], strlen(keep[i])))
				o += sprintf(o, "%s%s", o == out ? "" : ",", t);
	free(copy);
	return out;
}

static unsigned long mount_flags(const Ckpt__Fs__Mount *r)
{
	return r->flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
			   MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME | MS_NOSYMFOLLOW);
}

/* Make one mount of the tree; its source is found by kind. */
static int make_mount(struct builder *b, const Ckpt__Fs__Mount *r)
{
	struct fs_priv *p = b->p;
	unsigned long fl = mount_flags(r);
	const char *mp = where(b, r);
	char *src = NULL, *opts = NULL;
	struct stat st;
	int ret = 0;

	switch (r->kind) {
	case CKPT__FS__MOUNT_KIND__MNT_TMPFS:
		if (mount(r->source, mp, "tmpfs", fl & ~MS_RDONLY, r->super_opts)) {
			ret = -errno;
			fs_err(p, "restore: cannot mount tmpfs on %s (%s): %s", mp,
			       r->super_opts ? r->super_opts : "", strerror(errno));
			return fs_errno(-ret);
		}
		{
			char what[PATH_MAX + 16];
			int fd = open(mp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			snprintf(what, sizeof(what), "tmpfs %s", mp);
			if (fd < 0) {
				ret = -errno;
				fs_err(p, "restore: cannot open the new tmpfs %s: %s", mp,
				       strerror(errno));
				return fs_errno(-ret);
			}
			ret = tmpfs_fill(p, fd, r->tmpfs_image, what);
			close(fd);
			if (ret)
				return ret;
		}
		if ((r->super_ro && mount(NULL, mp, NULL, MS_REMOUNT | MS_RDONLY | fl, r->super_opts)) ||
		    ((fl & MS_RDONLY) && mount(NULL, mp, NULL, MS_REMOUNT | MS_BIND | fl, NULL))) {
			ret = -errno;
			fs_err(p, "restore: cannot make tmpfs %s read-only: %s", mp, strerror(errno));
			return fs_errno(-ret);
		}
		return 0;
	case CKPT__FS__MOUNT_KIND__MNT_FRESH:
		opts = fresh_opts(r);
		if (!opts)
			return -ENOMEM;
		if (mount(r->source, mp, r->fstype, fl, *opts ? opts : NULL)) {
			ret = -errno;
			fs_err(p, "restore: cannot mount %s on %s (%s): %s", r->fstype, mp, opts,
			       strerror(errno));
		}
		free(opts);
		return ret ? fs_errno(-ret) : 0;
	case CKPT__FS__MOUNT_KIND__MNT_OVERLAY:
		if (mount(r->source, mp, "overlay", fl, r->super_opts)) {
			ret = -errno;
			fs_err(p, "restore: cannot mount overlay on %s (%s): %s; its layers must be where they were",
			       mp, r->super_opts ? r->super_opts : "", strerror(errno));
			return fs_errno(-ret);
		}
		return 0;
	case CKPT__FS__MOUNT_KIND__MNT_BIND: {
		const struct built *from = built_of(b, r->bind_from);

		if (!from) {
			fs_err(p, "restore: mount %s is bound from mount %u, which the images do not hold before it",
			       mp, r->bind_from);
			return -EBADMSG;
		}
		if (asprintf(&src, "%s%s%s", where(b, from->rec),
			     r->bind_path && *r->bind_path ? "/" : "", r->bind_path ? r->bind_path : "") < 0)
			return -ENOMEM;
		break;
	}
	case CKPT__FS__MOUNT_KIND__MNT_HOST_BIND:
		src = r->bind_path ? strdup(r->bind_path) : NULL;
		if (!src)
			return -EBADMSG;
		if (stat(src, &st)) {
			fs_err(p, "restore: bind mount %s: its source %s is missing here (%s); put it back or restore where it exists",
			       mp, src, strerror(errno));
			free(src);
			return -ENOENT;
		}
		break;
	case CKPT__FS__MOUNT_KIND__MNT_EXTERNAL:
		src = external_lookup(p, r->external_key ? r->external_key : "");
		if (!src) {
			fs_err(p, "restore: mount %s was external (key %s); give --external mnt[%s]:PATH",
			       mp, r->external_key ? r->external_key : "?",
			       r->external_key ? r->external_key : "KEY");
			return -ENOENT;
		}
		break;
	default:
		fs_err(p, "restore: mount %s has kind %d, which this fs plugin does not know", mp,
		       r->kind);
		return -EBADMSG;
	}
	if (mount(src, mp, NULL, MS_BIND, NULL) ||
	    mount(NULL, mp, NULL, MS_REMOUNT | MS_BIND | fl, NULL)) {
		ret = -errno;
		fs_err(p, "restore: cannot bind %s on %s: %s", src, mp, strerror(errno));
	}
	free(src);
	return ret ? fs_errno(-ret) : 0;
}

/* Propagation of a mount of the tree, once it exists. */
static int propagate(struct builder *b, const Ckpt__Fs__Mount *r)
{
	const char *mp = where(b, r);
	int ret = 0;

	if (r->master) {
		ret = set_propagation(b->p, mp, MS_SLAVE, "a slave");
		if (!ret && r->shared)
			ret = set_propagation(b->p, mp, MS_SHARED, "shared");
	} else if (r->shared) {
		ret = set_propagation(b->p, mp, MS_SHARED, "shared");
	} else {
		ret = set_propagation(b->p, mp, MS_PRIVATE, "private");
	}
	return ret;
}

static int record_done(struct builder *b, const Ckpt__Fs__Mount *r, uint64_t new_id)
{
	struct built *d = realloc(b->done, (b->ndone + 1) * sizeof(*d));

	if (!d)
		return -ENOMEM;
	b->done = d;
	d[b->ndone++] = (struct built){ r->id, new_id, r };
	return add_known(b, new_id);
}

/* Mounts of the new namespace (a copy of ckpt's): keep those the tree
 * had, unmount the others, set their propagation as the tree had it. */
static int match_inherited(struct builder *b)
{
	struct fs_priv *p = b->p;
	struct mi_list now;
	int ret = mi_read(p, "/proc/self/mountinfo", b->mi_fd, &now);

	if (ret)
		return ret;
	for (size_t i = 0; i < b->n && !ret; i++) {
		const Ckpt__Fs__Mount *r = b->recs[i];
		struct mi *hit = NULL;

		if (r->kind != CKPT__FS__MOUNT_KIND__MNT_INHERITED)
			continue;
		for (size_t k = 0; k < now.n && !hit; k++)
			if (!now.v[k].taken && !strcmp(now.v[k].mp, r->mountpoint) &&
			    !strcmp(now.v[k].fstype, r->fstype) && !strcmp(now.v[k].root, r->root))
				hit = &now.v[k];
		if (!hit) {
			fs_err(p, "restore: mount %s (%s) that the tree shared with ckpt's mount namespace is missing here; mount it again",
			       r->mountpoint, r->fstype);
			ret = -ENOENT;
			break;
		}
		hit->taken = true;
		if (hit->flags != mount_flags(r) &&
		    mount(NULL, r->mountpoint, NULL, MS_REMOUNT | MS_BIND | mount_flags(r), NULL)) {
			fs_err(p, "restore: cannot set the flags of mount %s as the tree had them: %s",
			       r->mountpoint, strerror(errno));
			ret = -errno;
			break;
		}
		ret = record_done(b, r, hit->id);
	}
	/* deepest first: what the tree did not have goes, unless a kept
	 * mount lies on or under it */
	for (size_t pass = 0; !ret && pass < now.n; pass++) {
		struct mi *deep = NULL;

		for (size_t k = 0; k < now.n; k++)
			if (!now.v[k].taken && (!deep || strlen(now.v[k].mp) > strlen(deep->mp)))
				deep = &now.v[k];
		if (!deep)
			break;
		deep->taken = true;
		bool keep = !strcmp(deep->mp, "/");

		for (size_t k = 0; k < b->ndone && !keep; k++) {
			const char *rel = below(b->done[k].rec->mountpoint, deep->mp);

			keep = rel != NULL;
		}
		if (keep) {
			ret = add_known(b, deep->id); /* not one to adopt later */
			continue;
		}
		if (umount2(deep->mp, MNT_DETACH)) {
			fs_err(p, "restore: cannot unmount %s, which the tree did not have: %s",
			       deep->mp, strerror(errno));
			ret = -errno;
		} else {
			fs_debug(p, "restore: unmounted %s (not in the tree's namespace)", deep->mp);
		}
	}
	for (size_t i = 0; i < b->ndone && !ret; i++) {
		const Ckpt__Fs__Mount *r = b->done[i].rec;

		if (r->master && !r->shared)
			ret = set_propagation(p, r->mountpoint, MS_SLAVE, "a slave");
		else if (!r->master && !r->shared)
			ret = set_propagation(p, r->mountpoint, MS_PRIVATE, "private");
	}
	mi_free(&now);
	return ret;
}

/* A mount at mp that appeared by propagation and is not accounted for. */
static int adopt(struct builder *b, const Ckpt__Fs__Mount *r, uint64_t *id)
{
	struct mi_list now;
	int ret = mi_read(b->p, "/proc/self/mountinfo", b->mi_fd, &now);

	*id = 0;
	if (ret)
		return ret;
	for (size_t k = 0; k < now.n; k++)
		if (!is_known(b, now.v[k].id) && !strcmp(now.v[k].mp, where(b, r)) &&
		    !strcmp(now.v[k].fstype, r->fstype))
			*id = now.v[k].id;
	mi_free(&now);
	return 0;
}

/* Below a proc of the tree's own pid namespace, or bound from such a
 * mount: made in restore_resume, once that namespace exists. */
static bool deferred(const struct builder *b, const Ckpt__Fs__Mount *r)
{
	for (size_t i = 0; i < b->n; i++) {
		const Ckpt__Fs__Mount *q = b->recs[i];

		if (q == r)
			break;
		if (q->tree_pidns && below(r->mountpoint, q->mountpoint))
			return true;
		if (r->kind == CKPT__FS__MOUNT_KIND__MNT_BIND && r->bind_from == q->id &&
		    deferred(b, q))
			return true;
	}
	return r->tree_pidns;
}

/* proc of pid namespace pidns_fd (the mount option pidns, Linux 6.15),
 * with the proc options of the dump, through the new mount API */
static int mount_proc_of(struct builder *b, const Ckpt__Fs__Mount *r, int pidns_fd)
{
	struct fs_priv *p = b->p;
	static const struct {
		unsigned long ms;
		unsigned int attr;
	} attrs[] = {
		{ MS_RDONLY, MOUNT_ATTR_RDONLY },	{ MS_NOSUID, MOUNT_ATTR_NOSUID },
		{ MS_NODEV, MOUNT_ATTR_NODEV },		{ MS_NOEXEC, MOUNT_ATTR_NOEXEC },
		{ MS_NOATIME, MOUNT_ATTR_NOATIME },	{ MS_STRICTATIME, MOUNT_ATTR_STRICTATIME },
		{ MS_NODIRATIME, MOUNT_ATTR_NODIRATIME }, { MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW },
	};
	unsigned long fl = mount_flags(r);
	unsigned int at = 0;
	char *opts = fresh_opts(r), *save = NULL;
	int fsfd = -1, mfd = -1, ret = 0;
	const char *step = "fsopen";

	if (!opts)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
		if (fl & attrs[i].ms)
			at |= attrs[i].attr;
	fsfd = fsopen("proc", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		goto err;
	step = "its pid namespace (mount option pidns, Linux 6.15 and later)";
	if (fsconfig(fsfd, FSCONFIG_SET_FD, "pidns", NULL, pidns_fd))
		goto err;
	step = "its options";
	for (char *t = strtok_r(opts, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');

		if (!eq)
			continue;
		*eq = 0;
		if (fsconfig(fsfd, FSCONFIG_SET_STRING, t, eq + 1, 0))
			goto err;
	}
	step = "the superblock";
	if (fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0))
		goto err;
	step = "the mount";
	mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, at);
	if (mfd < 0 || move_mount(mfd, "", AT_FDCWD, where(b, r), MOVE_MOUNT_F_EMPTY_PATH))
		goto err;
	goto out;
err:
	ret = -errno;
	fs_err(p, "restore: cannot mount the proc of the tree's pid namespace on %s: %s: %s",
	       r->mountpoint, step, strerror(errno));
out:
	if (mfd >= 0)
		close(mfd);
	if (fsfd >= 0)
		close(fsfd);
	free(opts);
	return ret ? fs_errno(-ret) : 0;
}

/* Make the tree's own mounts in order: now (pidns_fd < 0) those that can
 * be, in restore_resume the deferred ones. */
static int make_mounts(struct builder *b, int pidns_fd)
{
	struct fs_priv *p = b->p;
	int ret = 0;

	for (size_t i = 0; i < b->n && !ret; i++) {
		const Ckpt__Fs__Mount *r = b->recs[i];
		uint64_t id = 0;

		if (r->kind == CKPT__FS__MOUNT_KIND__MNT_INHERITED || deferred(b, r) != (pidns_fd >= 0))
			continue;
		/* mountinfo as read here hides what lies outside our root once
		 * we pivoted: nothing to adopt then */
		ret = b->pivoted ? 0 : adopt(b, r, &id);
		if (ret)
			break;
		if (id) {
			fs_debug(p, "restore: mount %s came by propagation", r->mountpoint);
		} else {
			struct stat st;

			if (stat(where(b, r), &st)) {
				fs_err(p, "restore: mount point %s is missing here (%s); create it",
				       r->mountpoint, strerror(errno));
				ret = -ENOENT;
				break;
			}
			ret = r->tree_pidns ? mount_proc_of(b, r, pidns_fd) : make_mount(b, r);
			if (!ret)
				ret = top_mount_id(where(b, r), &id);
			if (ret)
				break;
		}
		ret = propagate(b, r);
		if (!ret)
			ret = record_done(b, r, id);
	}
	for (size_t i = 0; i < b->ndone && !ret; i++)
		if (b->done[i].rec->unbindable && deferred(b, b->done[i].rec) == (pidns_fd >= 0))
			ret = set_propagation(p, where(b, b->done[i].rec), MS_UNBINDABLE,
					      "unbindable");
	return ret;
}

/* A tree behind pivot_root: nothing of ckpt's namespace stays.  Its
 * mounts are made under a fresh directory (sources outside the tree are
 * still reachable), which then becomes the root. */
static int pivot_build(struct builder *b)
{
	struct fs_priv *p = b->p;
	int ret;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		fs_err(p, "restore: cannot make the new mount namespace private: %s", strerror(errno));
		return -errno;
	}
	if (!mkdtemp(b->stage)) {
		ret = -errno;
		fs_err(p, "restore: cannot create %s for the tree's root: %s", b->stage,
		       strerror(errno));
		return ret;
	}
	b->stage_made = true;
	b->staged = calloc(b->n, sizeof(char *));
	if (!b->staged)
		return -ENOMEM;
	for (size_t i = 0; i < b->n; i++) {
		const char *mp = b->recs[i]->mountpoint;

		if (asprintf(&b->staged[i], "%s%s", b->stage, strcmp(mp, "/") ? mp : "") < 0) {
			b->staged[i] = NULL;
			return -ENOMEM;
		}
	}
	ret = make_mounts(b, -1);
	if (!ret && (chdir(b->stage) || syscall(SYS_pivot_root, ".", ".") ||
		     umount2(".", MNT_DETACH) || chdir("/"))) {
		ret = -errno;
		fs_err(p, "restore: cannot make %s the tree's root (pivot_root): %s", b->stage,
		       strerror(errno));
	}
	if (!ret)
		b->pivoted = true;
	return ret;
}

/* Make the namespace (in_namespace with no nsfd) and its mounts. */
static int build(struct builder *b, int unused)
{
	struct fs_priv *p = b->p;
	int ret;

	(void)unused;
	if (unshare(CLONE_NEWNS)) {
		fs_err(p, "restore: cannot create a mount namespace: %s", strerror(errno));
		return -errno;
	}
	/* before the tree's mounts replace ckpt's /proc */
	b->nsfd = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	if (b->nsfd < 0) {
		fs_err(p, "restore: cannot hold the new mount namespace: %s", strerror(errno));
		return -errno;
	}
	/* shows this namespace for as long as it is open */
	b->mi_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (b->mi_fd < 0) {
		fs_err(p, "restore: cannot read /proc/self/mountinfo: %s", strerror(errno));
		return -errno;
	}
	if (!b->stage) {
		ret = match_inherited(b);
		if (!ret)
			ret = make_mounts(b, -1);
	} else {
		ret = pivot_build(b);
	}
	if (!ret)
		fs_info(p, "restore: %zu mount(s) of the tree's mount namespace in place", b->ndone);
	return ret;
}

struct mnt_restore {
	struct builder b;
	bool pending; /* deferred mounts left for restore_resume */
};

/* Run fn in the tree's namespace nsfd (-1: fn makes a new one and moves
 * there) and come back to ours: ckpt's own namespace is never touched. */
static int in_namespace(struct fs_priv *p, int nsfd, int (*fn)(struct builder *, int), struct builder *b,
			int arg)
{
	int self_ns = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
	int cwd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (self_ns < 0 || cwd < 0) {
		r = -errno;
		fs_err(p, "restore: cannot hold ckpt's own mount namespace: %s", strerror(errno));
	} else if (nsfd >= 0 && setns(nsfd, CLONE_NEWNS)) {
		r = -errno;
		fs_err(p, "restore: cannot enter the tree's mount namespace: %s", strerror(errno));
	} else {
		r = fn(b, arg);
		if (setns(self_ns, CLONE_NEWNS) || fchdir(cwd)) {
			fs_err(p, "restore: cannot return to ckpt's own mount namespace: %s",
			       strerror(errno));
			if (!r)
				r = -errno;
		}
	}
	if (self_ns >= 0)
		close(self_ns);
	if (cwd >= 0)
		close(cwd);
	return r;
}

void mnt_restore_free(struct fs_priv *p)
{
	struct mnt_restore *m = p->mnt;

	if (!m)
		return;
	if (m->b.nsfd >= 0)
		close(m->b.nsfd);
	if (m->b.mi_fd >= 0)
		close(m->b.mi_fd);
	for (size_t i = 0; i < m->b.n; i++)
		protobuf_c_message_free_unpacked(&m->b.recs[i]->base, NULL);
	free(m->b.recs);
	free(m->b.known);
	free(m->b.done);
	if (m->b.stage_made)
		rmdir(m->b.stage);
	free(m->b.stage);
	for (size_t i = 0; m->b.staged && i < m->b.n; i++)
		free(m->b.staged[i]);
	free(m->b.staged);
	free(m);
	p->mnt = NULL;
}

int mnt_restore_resume(struct fs_priv *p)
{
	struct mnt_restore *m = p->mnt;
	pid_t root;
	char path[64];
	int pidns, ret;

	if (!m || !m->pending)
		return 0;
	m->pending = false;
	if (!p->host->tree_pids || p->host->tree_pids(&root, 1) < 1) {
		fs_err(p, "restore: the restored tree is not known; cannot mount its proc");
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)root);
	pidns = open(path, O_RDONLY | O_CLOEXEC);
	if (pidns < 0) {
		ret = -errno;
		fs_err(p, "restore: cannot open the pid namespace of the restored tree: %s",
		       strerror(errno));
		return ret;
	}
	ret = in_namespace(p, m->b.nsfd, make_mounts, &m->b, pidns);
	close(pidns);
	if (!ret)
		fs_info(p, "restore: the mounts that need the tree's pid namespace are in place");
	return ret;
}

int mnt_restore_namespace(struct fs_priv *p, int *out)
{
	struct mnt_restore *m;
	int ret;

	mnt_restore_free(p);
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->b.nsfd = -1;
	m->b.p = p;
	m->b.mi_fd = -1;
	p->mnt = m;
	ret = p->host->img_load(MNT_IMG, &ckpt__fs__mount__descriptor,
				(ProtobufCMessage ***)&m->b.recs, &m->b.n);
	if (ret)
		return fs_errno(-ret);
	if (!m->b.n) {
		fs_err(p, "restore: the dump saved a mount namespace, but %s lists no mount; the images are incomplete",
		       MNT_IMG);
		return -EBADMSG;
	}
	for (size_t i = 0; i < m->b.n; i++) {
		const Ckpt__Fs__Mount *r = m->b.recs[i];

		if (!r->mountpoint || !r->fstype || !r->root || r->mountpoint[0] != '/' ||
		    (r->kind == CKPT__FS__MOUNT_KIND__MNT_TMPFS && !r->tmpfs_image)) {
			fs_err(p, "restore: %s: record %zu is damaged", MNT_IMG, i);
			return -EBADMSG;
		}
		if (deferred(&m->b, r))
			m->pending = true;
		if (r->new_root && !m->b.stage && !(m->b.stage = strdup("/tmp/ckpt-root.XXXXXX")))
			return -ENOMEM;
	}

	/* built in a namespace of its own that we leave again at once: the
	 * fd keeps it */
	int r = in_namespace(p, -1, build, &m->b, 0);
	if (m->b.stage_made) {
		/* the directory of ckpt's namespace the root was made on: the
		 * tree's namespace no longer needs it */
		rmdir(m->b.stage);
		m->b.stage_made = false;
	}
	if (!r) {
		/* the core takes one fd; ours stays for restore_resume */
		*out = fcntl(m->b.nsfd, F_DUPFD_CLOEXEC, 0);
		if (*out < 0)
			r = -errno;
	}
	if (r)
		mnt_restore_free(p);
	return r < 0 ? (r == -ENOENT || r == -EBADMSG ? r : fs_errno(-r)) : 0;
}
