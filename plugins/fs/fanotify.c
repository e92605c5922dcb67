// SPDX-License-Identifier: GPL-2.0-only
/*
 * fanotify (class "fanotify", image fs-fanotifys.img of ckpt.fs.Fanotify).
 *
 * Dump: fdinfo of the group gives its fanotify_init() flags and event
 * flags, then one line per mark:
 *   inode       "fanotify ino:I sdev:D mflags:F mask:M ignored_mask:N ... f_handle:H"
 *   mount       "fanotify mnt_id:ID mflags:F mask:M ignored_mask:N"
 *   filesystem  "fanotify sdev:D mflags:F mask:M ignored_mask:N"
 * An inode is turned back into a path through its file handle (as for
 * inotify watches), a mount id into its mount point through the task's
 * mountinfo, a filesystem into a mount point of it.  Any other kind of
 * mark is refused.  Queued events cannot be read without consuming them:
 * they are dropped with a warning (a permission event a process waits for
 * is answered by the kernel when the group's file is closed).
 *
 * Restore: fanotify_init() with the saved flags, then fanotify_mark() per
 * mark: the mask, and the ignore mask in a second call (FAN_MARK_IGNORE or
 * FAN_MARK_IGNORED_MASK as at dump, with FAN_MARK_IGNORED_SURV_MODIFY).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs.h"

#ifndef FAN_MARK_FILESYSTEM
#define FAN_MARK_FILESYSTEM 0x00000100
#endif
#ifndef FAN_MARK_EVICTABLE
#define FAN_MARK_EVICTABLE 0x00000200
#endif
#ifndef FAN_MARK_IGNORE
#define FAN_MARK_IGNORE 0x00000400
#endif

#define MK_INODE 1
#define MK_MOUNT 2
#define MK_FS 3

/* mflags that fdinfo reports and fanotify_mark() takes back */
#define MFLAGS_KEPT (FAN_MARK_IGNORED_SURV_MODIFY | FAN_MARK_EVICTABLE | FAN_MARK_IGNORE)

static uint32_t fanotify_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Fs__Fanotify *)m)->id;
}

static void free_marks(Ckpt__Fs__FanotifyMark **m, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!m[i])
			continue;
		free(m[i]->path);
		free(m[i]->fhandle.data);
		free(m[i]);
	}
	free(m);
}

/* From the task's mountinfo: the mount point of mount id (want_id >= 0) or
 * of a mount of device sdev (a mount of its root preferred). */
static char *mount_path(pid_t pid, int want_id, unsigned int sdev)
{
	char path[64], line[PATH_MAX * 2], best[PATH_MAX] = "";
	unsigned int maj = sdev >> 20, min = sdev & 0xfffff;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	while (fgets(line, sizeof(line), f)) {
		char root[PATH_MAX], mnt[PATH_MAX];
		unsigned int ma, mi;
		int id;

		if (sscanf(line, "%d %*d %u:%u %4095s %4095s", &id, &ma, &mi, root, mnt) != 5)
			continue;
		if (want_id >= 0 ? id != want_id : (ma != maj || mi != min))
			continue;
		if (!best[0] || !strcmp(root, "/"))
			snprintf(best, sizeof(best), "%s", mnt);
		if (want_id >= 0 || !strcmp(root, "/"))
			break;
	}
	fclose(f);
	if (!best[0])
		return NULL;
	/* mountinfo escapes blanks as \040 and the like */
	for (char *s = best, *d = best; ; s++, d++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
			*d = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
			s += 3;
		} else {
			*d = *s;
		}
		if (!*s)
			break;
	}
	return strdup(best);
}

static int parse_handle(struct fs_priv *p, const char *what, const char *s,
			Ckpt__Fs__FanotifyMark *m)
{
	unsigned int hbytes;
	int htype;
	const char *h = strstr(s, "fhandle-bytes:");

	if (!h || sscanf(h, "fhandle-bytes:%x fhandle-type:%x", &hbytes, &htype) != 2 ||
	    !(h = strstr(h, "f_handle:")) || hbytes == 0 || hbytes > 128) {
		fs_err(p, "%s: the mark on inode %llu comes with no file handle (a filesystem "
			  "without export support?), so its path cannot be found; such marks are "
			  "not supported",
		       what, (unsigned long long)m->ino);
		return -ENOTRECOVERABLE;
	}
	h += 9;
	m->fhandle.data = malloc(hbytes);
	if (!m->fhandle.data) {
		fs_err(p, "%s: out of memory", what);
		return -ENOMEM;
	}
	for (size_t i = 0; i < hbytes; i++) {
		int hi = fs_hexval(h[2 * i]), lo = hi < 0 ? -1 : fs_hexval(h[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			fs_err(p, "%s: bad f_handle in fdinfo", what);
			return -EINVAL;
		}
		m->fhandle.data[i] = (uint8_t)(hi << 4 | lo);
	}
	m->fhandle.len = hbytes;
	m->has_fhandle = m->has_fhandle_type = true;
	m->fhandle_type = htype;
	return 0;
}

static int parse_mark(struct fs_priv *p, const struct ckpt_fd_info *fd, const char *what,
		      const char *s, Ckpt__Fs__FanotifyMark *m)
{
	unsigned int sdev, mflags, mask, ign, id;
	unsigned long long ino;
	char obj[64];
	bool link = false;
	int ret;

	if (sscanf(s, "fanotify ino:%llx sdev:%x mflags:%x mask:%x ignored_mask:%x", &ino, &sdev,
		   &mflags, &mask, &ign) == 5) {
		m->kind = MK_INODE;
		m->has_ino = m->has_sdev = true;
		m->ino = ino;
		m->sdev = sdev;
		ret = parse_handle(p, what, s, m);
		if (ret)
			return ret;
		snprintf(obj, sizeof(obj), "the mark on inode %llu", ino);
		ret = fs_fhandle_path(p, what, obj, sdev, ino, m->fhandle_type, m->fhandle.data,
				      m->fhandle.len, &m->path, &link);
		if (ret)
			return ret;
		m->has_dont_follow = true;
		m->dont_follow = link;
	} else if (sscanf(s, "fanotify mnt_id:%x mflags:%x mask:%x ignored_mask:%x", &id, &mflags,
			  &mask, &ign) == 4) {
		m->kind = MK_MOUNT;
		m->has_mnt_id = true;
		m->mnt_id = (int32_t)id;
		m->path = mount_path(fd->pid, (int)id, 0);
		if (!m->path) {
			fs_err(p, "%s: its mount mark is on mount %u, which PID %d's mountinfo does "
				  "not show",
			       what, id, (int)fd->pid);
			return -ENOENT;
		}
	} else if (sscanf(s, "fanotify sdev:%x mflags:%x mask:%x ignored_mask:%x", &sdev, &mflags,
			  &mask, &ign) == 4) {
		m->kind = MK_FS;
		m->has_sdev = true;
		m->sdev = sdev;
		m->path = mount_path(fd->pid, -1, sdev);
		if (!m->path) {
			fs_err(p, "%s: its filesystem mark is on dev %u:%u, of which PID %d sees no "
				  "mount",
			       what, sdev >> 20, sdev & 0xfffff, (int)fd->pid);
			return -ENOENT;
		}
	} else {
		fs_err(p, "%s: a kind of fanotify mark ckpt does not know: '%.80s'", what, s);
		return -EINVAL;
	}
	m->has_kind = m->has_mflags = m->has_mask = m->has_ignored_mask = true;
	m->mflags = mflags;
	m->mask = mask;
	m->ignored_mask = ign;
	if (mflags & ~(unsigned int)MFLAGS_KEPT) {
		fs_err(p, "%s: a mark on %s has flags %#x that ckpt cannot set again", what, m->path,
		       mflags);
		return -EINVAL;
	}
	return 0;
}

static int fanotify_dump(struct fs_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	Ckpt__Fs__Fanotify r = CKPT__FS__FANOTIFY__INIT;
	Ckpt__Fs__FanotifyMark **ms = NULL;
	size_t n = 0;
	unsigned int iflags, eflags;
	char what[64], *info, *s;
	int ret, queued = 0;

	snprintf(what, sizeof(what), "fd %d of PID %d (fanotify)", fd->fd, (int)fd->pid);
	ret = fs_read_fdinfo(p, fd->local_fd, what, &info);
	if (ret)
		return ret;
	s = strstr(info, "fanotify flags:");
	if (!s || sscanf(s, "fanotify flags:%x event-flags:%x", &iflags, &eflags) != 2) {
		fs_err(p, "%s: its fdinfo shows no fanotify flags", what);
		ret = -EINVAL;
		goto out;
	}
	for (s = strchr(s, '\n'); s && (s = strstr(s, "\nfanotify ")); s++) {
		Ckpt__Fs__FanotifyMark *m, **nm;

		nm = realloc(ms, (n + 1) * sizeof(*nm));
		m = calloc(1, sizeof(*m));
		if (nm)
			ms = nm;
		if (!nm || !m) {
			free(m);
			fs_err(p, "%s: out of memory", what);
			ret = -ENOMEM;
			goto out;
		}
		ckpt__fs__fanotify_mark__init(m);
		ms[n++] = m;
		ret = parse_mark(p, fd, what, s + 1, m);
		if (ret)
			goto out;
	}
	if (ioctl(fd->local_fd, FIONREAD, &queued) == 0 && queued > 0)
		fs_warn(p, "%s: %d bytes of fanotify events are queued and not read yet; they are "
			   "not saved and will be lost",
			what, queued);

	r.has_id = r.has_flags = r.has_init_flags = r.has_event_flags = true;
	r.id = obj_id;
	r.flags = fd->flags & ~(unsigned int)O_CLOEXEC;
	r.init_flags = iflags;
	r.event_flags = eflags;
	r.n_marks = n;
	r.marks = ms;
	ret = fs_save(p, FS_FANOTIFY, &r.base);
	if (!ret)
		fs_debug(p, "%s: fanotify %u flags %#x event flags %#x, %zu marks", what, obj_id,
			 iflags, eflags, n);
out:
	free(info);
	free_marks(ms, n);
	return ret;
}

static int add_mark(struct fs_priv *p, int fd, const Ckpt__Fs__FanotifyMark *m, const char *what)
{
	unsigned int base = FAN_MARK_ADD, kind, keep = m->mflags & MFLAGS_KEPT;

	kind = m->kind == MK_MOUNT ? FAN_MARK_MOUNT : m->kind == MK_FS ? FAN_MARK_FILESYSTEM : 0;
	if (m->dont_follow)
		base |= FAN_MARK_DONT_FOLLOW;
	if (m->mask &&
	    fanotify_mark(fd, base | kind | (keep & FAN_MARK_EVICTABLE), m->mask, AT_FDCWD, m->path))
		goto err;
	if (m->ignored_mask) {
		unsigned int how = (keep & FAN_MARK_IGNORE) ? FAN_MARK_IGNORE : FAN_MARK_IGNORED_MASK;

		if (fanotify_mark(fd, base | kind | how | (keep & ~(unsigned int)FAN_MARK_IGNORE),
				  m->ignored_mask, AT_FDCWD, m->path))
			goto err;
	}
	return 0;
err:
	{
		int e = errno;

		fs_err(p, "restore: %s: cannot mark %s (%s, mask %#x, ignored %#x) again: %s", what,
		       m->path, m->kind == MK_MOUNT ? "mount" : m->kind == MK_FS ? "filesystem" : "inode",
		       m->mask, m->ignored_mask, strerror(e));
		return fs_errno(e);
	}
}

static int fanotify_restore(struct fs_priv *p, const ProtobufCMessage *rec, int *out)
{
	const Ckpt__Fs__Fanotify *r = (const Ckpt__Fs__Fanotify *)rec;
	char what[64];
	int fd, ret;

	snprintf(what, sizeof(what), "fanotify object %u", r->id);
	/* the flags as saved: FAN_CLOEXEC shows in fdinfo (the host sets
	 * close-on-exec on its copy itself) */
	fd = fanotify_init(r->init_flags, r->event_flags);
	if (fd < 0) {
		int e = errno;

		fs_err(p, "restore: %s: fanotify_init(%#x, %#x) failed: %s", what, r->init_flags,
		       r->event_flags, strerror(e));
		return fs_errno(e);
	}
	for (size_t i = 0; i < r->n_marks; i++) {
		const Ckpt__Fs__FanotifyMark *m = r->marks[i];

		if (!m->path || !m->has_kind || m->kind < MK_INODE || m->kind > MK_FS) {
			fs_err(p, "restore: %s: mark %zu has no path or kind; the images are damaged",
			       what, i);
			ret = -EBADMSG;
			goto err;
		}
		ret = add_mark(p, fd, m, what);
		if (ret)
			goto err;
	}
	ret = fs_set_fl(p, fd, r->flags, what);
	if (ret)
		goto err;
	*out = fd;
	return 0;
err:
	close(fd);
	return ret;
}

const struct fs_class fs_fanotify_class = {
	.name = "fanotify",
	.img_name = "fs-fanotifys.img",
	.desc = &ckpt__fs__fanotify__descriptor,
	.rec_id = fanotify_id,
	.dump = fanotify_dump,
	.restore = fanotify_restore,
};
