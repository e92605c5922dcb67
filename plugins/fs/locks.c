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
 * POSIX locks of a process that also maps the file ("late" at dump) cannot
 * be taken in the task: the core maps files through fds of its own that it
 * closes in the task after the memory switch, and closing any fd of a file
 * drops the POSIX locks the process holds on it.  They are taken at
 * restore_resume instead, when every task is back and stopped: the
 * controller finds an fd of the file in the owner (its /proc fd links,
 * matched by the inode the restore opened), writes a struct flock into a
 * scratch page it maps there, and injects fcntl(F_SETLK) into the owner.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
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
		  const struct lk_line *l, pid_t owner, bool late)
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
		fl->has_late = late;
		fl->late = late;
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
			ret = lk_add(p, arr, n, &l, fs_ns_pid((pid_t)l.pid),
				     maps_file((pid_t)l.pid, st));
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
		ret = lk_add(p, arr, n, &l, 0, false);
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

static void take_err(struct fs_priv *p, const Ckpt__Fs__FileLock *l, int e, const char *what)
{
	char of[32] = "";

	if (l->kind == LK_POSIX)
		snprintf(of, sizeof(of), " of PID %d", (int)l->owner_pid);
	if (e == EAGAIN || e == EACCES || e == EWOULDBLOCK)
		fs_err(p, "restore: %s: its %s %s lock%s (bytes %lld+%lld) is held by another "
			  "process now; release it (see /proc/locks) and restore again",
		       what, kind_name(l->kind), l->write ? "write" : "read", of,
		       (long long)l->start, (long long)l->len);
	else
		fs_err(p, "restore: %s: cannot take its %s lock%s again: %s", what,
		       kind_name(l->kind), of, strerror(e));
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
	take_err(p, l, e, what);
	return fs_errno(e);
}

/* Remember the inode of a restored file with late POSIX locks, for
 * restore_resume (the restore may have given a ghost file a new inode). */
static int late_remember(struct fs_priv *p, int fd, Ckpt__Fs__FileLock *const *l, size_t n,
			 const char *what)
{
	struct fs_late_locks *nl;
	struct stat st;
	char *w;

	if (fstat(fd, &st)) {
		int e = errno;

		fs_err(p, "restore: %s: cannot stat it: %s", what, strerror(e));
		return fs_errno(e);
	}
	for (size_t i = 0; i < p->nlate; i++)
		if (p->late[i].dev == st.st_dev && p->late[i].ino == st.st_ino)
			return 0; /* every record of the inode lists the same POSIX locks */
	nl = realloc(p->late, (p->nlate + 1) * sizeof(*nl));
	w = strdup(what);
	if (!nl || !w) {
		free(w);
		if (nl)
			p->late = nl;
		fs_err(p, "restore: out of memory");
		return -ENOMEM;
	}
	p->late = nl;
	p->late[p->nlate++] = (struct fs_late_locks){
		.dev = st.st_dev, .ino = st.st_ino, .locks = l, .n = n, .what = w,
	};
	return 0;
}

int fs_locks_restore(struct fs_priv *p, int fd, Ckpt__Fs__FileLock *const *l, size_t n,
		     const char *what)
{
	bool late = false;

	for (size_t i = 0; i < n; i++) {
		int ret;

		late |= l[i]->kind == LK_POSIX && l[i]->late;
		if (l[i]->kind != LK_FLOCK && l[i]->kind != LK_OFD)
			continue;
		ret = take(p, fd, l[i], what);
		if (ret)
			return ret;
	}
	return late ? late_remember(p, fd, l, n, what) : 0;
}

void fs_locks_forget(struct fs_priv *p)
{
	for (size_t i = 0; i < p->nlate; i++)
		free(p->late[i].what);
	free(p->late);
	p->late = NULL;
	p->nlate = 0;
}

/* ckpt's pid of the restored process that is ns_pid in the tree's pid
 * namespace, or -1. */
static pid_t host_pid_of(struct fs_priv *p, pid_t ns_pid)
{
	pid_t *pids;
	size_t n;
	pid_t found = -1;

	if (p->host->version < 3 || !p->host->tree_pids)
		return -1;
	n = p->host->tree_pids(NULL, 0);
	pids = calloc(n ? n : 1, sizeof(*pids));
	if (!pids)
		return -1;
	n = p->host->tree_pids(pids, n);
	for (size_t i = 0; i < n && found < 0; i++)
		if (fs_ns_pid(pids[i]) == ns_pid)
			found = pids[i];
	free(pids);
	return found;
}

/* The file status flags of fd n of hpid, or -1. */
static long fd_flags(pid_t hpid, const char *n)
{
	char path[320], line[128];
	unsigned long v;
	long flags = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)hpid, n);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (flags < 0 && fgets(line, sizeof(line), f))
		if (sscanf(line, "flags: %lo", &v) == 1)
			flags = (long)v;
	fclose(f);
	return flags;
}

/* The number of an fd of hpid on inode (dev, ino) that can carry a read
 * (write false) or write lock, i.e. open for reading or writing; or -1. */
static int fd_of_inode(pid_t hpid, dev_t dev, ino_t ino, bool write)
{
	char path[64];
	struct dirent *d;
	int found = -1;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)hpid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while (found < 0 && (d = readdir(dir))) {
		char lp[sizeof(path) + sizeof(d->d_name) + 1];
		struct stat st;
		long fl, acc;

		if (d->d_name[0] < '0' || d->d_name[0] > '9')
			continue;
		snprintf(lp, sizeof(lp), "%s/%s", path, d->d_name);
		if (stat(lp, &st) || st.st_dev != dev || st.st_ino != ino)
			continue;
		fl = fd_flags(hpid, d->d_name);
		if (fl < 0 || (fl & O_PATH))
			continue;
		acc = fl & O_ACCMODE;
		if (acc == O_RDWR || acc == (write ? O_WRONLY : O_RDONLY))
			found = atoi(d->d_name);
	}
	closedir(dir);
	return found;
}

static int inject(struct fs_priv *p, pid_t hpid, long nr, uint64_t a0, uint64_t a1,
		  uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, long *res)
{
	const uint64_t args[6] = { a0, a1, a2, a3, a4, a5 };

	if (!p->host->inject_syscall)
		return -ENOSYS;
	return p->host->inject_syscall(hpid, nr, args, res);
}

/* Take the late POSIX locks of owner (tree pid) on one inode, inside the
 * stopped owner: F_SETLK on a struct flock in a scratch page of its own. */
static int late_take_owner(struct fs_priv *p, const struct fs_late_locks *lt, pid_t owner)
{
	const long pg = sysconf(_SC_PAGESIZE);
	long addr = 0, res = 0;
	int fds[2], ret = 0; /* for read, write locks */
	pid_t hpid;

	hpid = host_pid_of(p, owner);
	if (hpid < 0) {
		fs_err(p, "restore: %s: PID %d, which held POSIX locks on it, is not in the "
			  "restored tree; the images are damaged",
		       lt->what, (int)owner);
		return -ESRCH;
	}
	fds[0] = fd_of_inode(hpid, lt->dev, lt->ino, false);
	fds[1] = fd_of_inode(hpid, lt->dev, lt->ino, true);
	for (size_t i = 0; i < lt->n; i++) {
		const Ckpt__Fs__FileLock *l = lt->locks[i];

		if (l->kind != LK_POSIX || !l->late || l->owner_pid != owner || fds[l->write] >= 0)
			continue;
		fs_err(p, "restore: %s: PID %d held a POSIX %s lock on it but has no fd of it open "
			  "for %s after the restore; ckpt cannot take it again",
		       lt->what, (int)owner, l->write ? "write" : "read",
		       l->write ? "writing" : "reading");
		return -ENOENT;
	}
	ret = inject(p, hpid, SYS_mmap, 0, (uint64_t)pg, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, (uint64_t)-1, 0, &addr);
	if (!ret && addr < 0 && addr > -4096)
		ret = (int)addr;
	if (ret) {
		fs_err(p, "restore: %s: cannot map a scratch page in PID %d to take its POSIX "
			  "locks: %s",
		       lt->what, (int)owner, strerror(-ret));
		return fs_errno(-ret);
	}
	for (size_t i = 0; i < lt->n && !ret; i++) {
		const Ckpt__Fs__FileLock *l = lt->locks[i];
		struct flock fl = {
			.l_type = l->write ? F_WRLCK : F_RDLCK,
			.l_whence = SEEK_SET,
			.l_start = l->start,
			.l_len = l->len,
		};
		struct iovec lv = { &fl, sizeof(fl) }, rv = { (void *)addr, sizeof(fl) };

		if (l->kind != LK_POSIX || !l->late || l->owner_pid != owner)
			continue;
		if (process_vm_writev(hpid, &lv, 1, &rv, 1, 0) != (ssize_t)sizeof(fl)) {
			ret = errno ? -errno : -EIO;
			fs_err(p, "restore: %s: cannot write into PID %d to take its POSIX locks: %s",
			       lt->what, (int)owner, strerror(-ret));
			break;
		}
		ret = inject(p, hpid, SYS_fcntl, (uint64_t)fds[l->write], F_SETLK, (uint64_t)addr,
			     0, 0, 0, &res);
		if (ret) {
			fs_err(p, "restore: %s: cannot run fcntl in PID %d to take its POSIX "
				  "locks: %s",
			       lt->what, (int)owner, strerror(-ret));
			break;
		}
		if (res < 0) {
			take_err(p, l, (int)-res, lt->what);
			ret = (int)res;
		} else {
			fs_debug(p, "restore: %s: POSIX %s lock %lld+%lld of PID %d taken on its "
				    "fd %d after its memory is back",
				 lt->what, l->write ? "write" : "read", (long long)l->start,
				 (long long)l->len, (int)owner, fds[l->write]);
		}
	}
	/* the task runs on without the page either way */
	if (inject(p, hpid, SYS_munmap, (uint64_t)addr, (uint64_t)pg, 0, 0, 0, 0, &res) || res < 0)
		fs_warn(p, "restore: %s: cannot unmap the scratch page at %#lx in PID %d",
			lt->what, addr, (int)owner);
	return ret ? fs_errno(-ret) : 0;
}

int fs_locks_restore_late(struct fs_priv *p)
{
	for (size_t i = 0; i < p->nlate; i++) {
		const struct fs_late_locks *lt = &p->late[i];

		for (size_t j = 0; j < lt->n; j++) {
			const Ckpt__Fs__FileLock *l = lt->locks[j];
			bool before = false;
			int ret;

			if (l->kind != LK_POSIX || !l->late)
				continue;
			for (size_t k = 0; k < j && !before; k++)
				before = lt->locks[k]->kind == LK_POSIX && lt->locks[k]->late &&
					 lt->locks[k]->owner_pid == l->owner_pid;
			if (before)
				continue; /* that owner's locks are taken already */
			ret = late_take_owner(p, lt, l->owner_pid);
			if (ret)
				return ret;
		}
	}
	return 0;
}

int fs_locks_restore_in_task(struct fs_priv *p, int fd, Ckpt__Fs__FileLock *const *l, size_t n,
			     const char *what)
{
	pid_t self = (pid_t)syscall(SYS_getpid);

	for (size_t i = 0; i < n; i++) {
		int ret;

		if (l[i]->kind != LK_POSIX || l[i]->owner_pid != self || l[i]->late)
			continue;
		ret = take(p, fd, l[i], what);
		if (ret)
			return ret;
	}
	return 0;
}
