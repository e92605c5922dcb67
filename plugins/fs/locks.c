// SPDX-License-Identifier: GPL-2.0-only
/*
 * File locks held on regular files (regfile.c and ghost.c records carry
 * them as ckpt.fs.FileLock).
 *
 * Dump: flock() and OFD locks belong to an open file: the "lock:" lines of
 * the fdinfo of the dumper's copy of it (pidfd_getfd gives the very same
 * open file) list exactly those.  POSIX record locks belong to a process
 * and are shown in fdinfo only to their owner's own fds, so they are read
 * from /proc/locks (once per dump): every POSIX lock a process of the tree
 * holds on the inode goes into the records of that inode, with its owner.
 * A lock request that was waiting is no state of its own: seizing the
 * tree interrupts the waiting fcntl(F_SETLKW) / flock() call, which the
 * restored task restarts and so waits again; a waiting request of a tree
 * process still listed in /proc/locks is refused.  Leases are refused.
 *
 * Restore: flock and OFD locks are taken on the new open file when it is
 * created (it is the one the task gets); POSIX locks inside the owning
 * task (restore_in_task), after its fds are at their numbers.  All with
 * the non-blocking calls: a conflicting lock someone took since the dump
 * fails the restore with its name.
 *
 * A process that maps a file it holds POSIX locks on is refused: the
 * restore maps files through fds of its own that it closes in the task
 * afterwards, and closing any fd of a file drops the POSIX locks the
 * process holds on it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fs.h"

#define LK_FLOCK 1
#define LK_POSIX 2
#define LK_OFD 3

/* One parsed line of /proc/locks or of a "lock:" line of fdinfo. */
struct lk_line {
	int kind;      /* LK_*, 0 for others (LEASE, DELEG ...) */
	char type[16]; /* the kernel's word, for messages */
	bool blocked;  /* "->": a waiting request */
	bool write;
	long pid;
	unsigned int maj, min;
	uint64_t ino;
	int64_t start, end; /* end -1: EOF */
};

/* "N: [-> ]TYPE MODE RW PID MAJ:MIN:INO START END" */
static int lk_parse(const char *s, struct lk_line *l)
{
	char type[16], mode[16], rw[16], endw[24];
	long long start;
	int n;

	memset(l, 0, sizeof(*l));
	s = strchr(s, ':');
	if (!s)
		return -1;
	s++;
	while (*s == ' ' || *s == '\t')
		s++;
	if (!strncmp(s, "->", 2)) {
		l->blocked = true;
		s += 2;
	}
	n = sscanf(s, "%15s %15s %15s %ld %x:%x:%" SCNu64 " %lld %23s", type, mode, rw, &l->pid,
		   &l->maj, &l->min, &l->ino, &start, endw);
	if (n != 9)
		return -1;
	snprintf(l->type, sizeof(l->type), "%s", type);
	l->kind = !strcmp(type, "FLOCK") ? LK_FLOCK : !strcmp(type, "POSIX") ? LK_POSIX :
		  !strcmp(type, "OFDLCK") ? LK_OFD : 0;
	l->write = !strcmp(rw, "WRITE");
	l->start = start;
	l->end = !strcmp(endw, "EOF") ? -1 : strtoll(endw, NULL, 10);
	return 0;
}

static bool lk_same_file(const struct lk_line *l, const struct stat *st)
{
	return l->ino == (uint64_t)st->st_ino && l->maj == major(st->st_dev) &&
	       l->min == minor(st->st_dev);
}

static int lk_add(struct fs_priv *p, Ckpt__Fs__FileLock ***arr, size_t *n,
		  const struct lk_line *l, pid_t owner)
{
	Ckpt__Fs__FileLock *fl = malloc(sizeof(*fl)), **na;

	na = realloc(*arr, (*n + 1) * sizeof(*na));
	if (!fl || !na) {
		free(fl);
		if (na)
			*arr = na;
		fs_err(p, "dump: out of memory");
		return -ENOMEM;
	}
	*arr = na;
	ckpt__fs__file_lock__init(fl);
	fl->has_kind = fl->has_write = fl->has_start = fl->has_len = true;
	fl->kind = (uint32_t)l->kind;
	fl->write = l->write;
	fl->start = l->start;
	fl->len = l->end < 0 ? 0 : l->end - l->start + 1;
	if (l->kind == LK_POSIX) {
		fl->has_owner_pid = true;
		fl->owner_pid = owner;
	}
	(*arr)[(*n)++] = fl;
	return 0;
}

void fs_locks_free(Ckpt__Fs__FileLock **arr, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(arr[i]);
	free(arr);
}

/* True when PID maps the file st (dev, ino) anywhere. */
static bool maps_file(pid_t pid, const struct stat *st)
{
	char path[64], line[512];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned int maj, min;
		uint64_t ino;

		if (sscanf(line, "%*x-%*x %*s %*x %x:%x %" SCNu64, &maj, &min, &ino) == 3 &&
		    ino == (uint64_t)st->st_ino && maj == major(st->st_dev) &&
		    min == minor(st->st_dev))
			found = true;
	}
	fclose(f);
	return found;
}

static bool in_tree(const pid_t *pids, size_t n, long pid)
{
	for (size_t i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

/* POSIX locks (and waiting requests) of the tree on st, from /proc/locks. */
static int posix_locks(struct fs_priv *p, const struct stat *st, const char *what,
		       Ckpt__Fs__FileLock ***arr, size_t *n)
{
	const pid_t *pids;
	size_t npids;
	char *line = NULL;
	size_t cap = 0;
	int ret;
	FILE *f;

	f = fopen("/proc/locks", "re");
	if (!f) {
		int e = errno;

		fs_err(p, "%s: cannot read /proc/locks: %s", what, strerror(e));
		return fs_errno(e);
	}
	ret = fs_tree_pids(p, &pids, &npids);
	while (!ret && getline(&line, &cap, f) > 0) {
		struct lk_line l;

		if (lk_parse(line, &l) || !lk_same_file(&l, st) || !in_tree(pids, npids, l.pid))
			continue;
		if (l.blocked) {
			fs_err(p, "%s: PID %ld is waiting for a %s lock on it; dump again once no "
				  "lock request of the tree is pending",
			       what, l.pid, l.type);
			ret = -EBUSY;
		} else if (l.kind == LK_POSIX) {
			if (maps_file((pid_t)l.pid, st)) {
				fs_err(p, "%s: PID %ld holds POSIX locks on a file it also maps; "
					  "ckpt cannot restore that pair yet (unmap it, or use OFD "
					  "locks)",
				       what, l.pid);
				ret = -EINVAL;
			} else {
				ret = lk_add(p, arr, n, &l, fs_ns_pid((pid_t)l.pid));
			}
		}
	}
	free(line);
	fclose(f);
	return ret;
}

int fs_locks_dump(struct fs_priv *p, int local_fd, const struct stat *st, const char *what,
		  Ckpt__Fs__FileLock ***arr, size_t *n)
{
	char *info = NULL, *s;
	int ret;

	*arr = NULL;
	*n = 0;
	ret = fs_read_fdinfo(p, local_fd, what, &info);
	if (ret)
		return ret;
	for (s = info; s && *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : NULL) {
		struct lk_line l;

		if (strncmp(s, "lock:", 5))
			continue;
		if (lk_parse(s + 5, &l)) {
			fs_err(p, "%s: cannot parse the lock line of its fdinfo: %.60s", what, s);
			ret = -EINVAL;
			break;
		}
		if (l.kind == LK_POSIX)
			continue; /* the process's: from /proc/locks */
		if (l.kind == 0) {
			fs_err(p, "%s: holds a %s (a lease or delegation); ckpt cannot restore those",
			       what, l.type);
			ret = -EINVAL;
			break;
		}
		ret = lk_add(p, arr, n, &l, 0);
		if (ret)
			break;
	}
	free(info);
	if (!ret)
		ret = posix_locks(p, st, what, arr, n);
	if (ret) {
		fs_locks_free(*arr, *n);
		*arr = NULL;
		*n = 0;
	}
	return ret;
}

static const char *kind_name(uint32_t k)
{
	return k == LK_FLOCK ? "flock" : k == LK_POSIX ? "POSIX" : k == LK_OFD ? "OFD" : "?";
}

static int take(struct fs_priv *p, int fd, const Ckpt__Fs__FileLock *l, const char *what)
{
	struct flock fl = {
		.l_type = l->write ? F_WRLCK : F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = l->start,
		.l_len = l->len,
	};
	int r, e;

	if (l->kind == LK_FLOCK)
		r = flock(fd, (l->write ? LOCK_EX : LOCK_SH) | LOCK_NB);
	else
		r = fcntl(fd, l->kind == LK_OFD ? F_OFD_SETLK : F_SETLK, &fl);
	if (!r)
		return 0;
	e = errno;
	if (e == EAGAIN || e == EACCES || e == EWOULDBLOCK)
		fs_err(p, "restore: %s: its %s %s lock (bytes %lld+%lld) is held by another process "
			  "now; release it (see /proc/locks) and restore again",
		       what, kind_name(l->kind), l->write ? "write" : "read", (long long)l->start,
		       (long long)l->len);
	else
		fs_err(p, "restore: %s: cannot take its %s lock again: %s", what,
		       kind_name(l->kind), strerror(e));
	return fs_errno(e);
}

int fs_locks_restore(struct fs_priv *p, int fd, Ckpt__Fs__FileLock *const *l, size_t n,
		     const char *what)
{
	for (size_t i = 0; i < n; i++) {
		int ret;

		if (l[i]->kind != LK_FLOCK && l[i]->kind != LK_OFD)
			continue;
		ret = take(p, fd, l[i], what);
		if (ret)
			return ret;
	}
	return 0;
}

int fs_locks_restore_in_task(struct fs_priv *p, int fd, Ckpt__Fs__FileLock *const *l, size_t n,
			     const char *what)
{
	pid_t self = (pid_t)syscall(SYS_getpid);

	for (size_t i = 0; i < n; i++) {
		int ret;

		if (l[i]->kind != LK_POSIX || l[i]->owner_pid != self)
			continue;
		ret = take(p, fd, l[i], what);
		if (ret)
			return ret;
	}
	return 0;
}
