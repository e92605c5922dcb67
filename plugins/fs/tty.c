// SPDX-License-Identifier: GPL-2.0-only
/*
 * Terminals (class "tty", image fs-ttys.img of ckpt.fs.Tty): pty masters
 * (/dev/ptmx), pty slaves (/dev/pts/N), /dev/tty, and with the key
 * shell_job (--shell-job) terminals outside the dumped tree.
 *
 * Dump.  The open files of the tree are listed once per dump (which pty
 * indexes have their master, which their slave in the tree; every task's
 * session, controlling terminal and its foreground group from
 * /proc/PID/stat).  A pty pair whose master the tree holds is "internal":
 * each open file of it is a record with the pair's state as far as that
 * file can read it: termios and window size (any end), packet mode and the
 * lock (master), exclusive mode (slave), whether every slave file was closed
 * (POLLHUP on the master), the session that has it as controlling terminal
 * and its foreground group.  Nothing is read out of a terminal: bytes still
 * queued (FIONREAD) cannot be read without consuming them, so they are
 * dropped with a warning.  A pair whose slave is also held or used as
 * controlling terminal by a process outside the tree is refused.
 *
 * A terminal whose other end is not in the tree (a pty slave whose master a
 * terminal emulator or sshd holds, a console, a serial line, /dev/tty of
 * such a terminal) is refused, unless shell_job is set: then it is recorded
 * as "external" and the restore gives the task the terminal ckpt restore
 * itself runs on.
 *
 * Restore.  The first record of a pty index opens /dev/ptmx until the
 * kernel hands out that index (devpts gives the lowest free one; the ptys
 * opened on the way are kept until restore_resume, and taken over when a
 * later record wants their index), unlocks it and sets termios and window
 * size through the master.  The master record gets that master; every
 * slave record its own open of the slave (TIOCGPTPEER, else /dev/pts/N),
 * with its flags.  A /dev/tty record first gets a slave file; inside the
 * task it becomes /dev/tty again once the task has its controlling
 * terminal.  Inside the task, the session leader that had the pty as
 * controlling terminal takes it (TIOCSCTTY) before it creates its children
 * (restore_before_children): a member of the session gets the terminal only
 * from its parent at fork, so every member forked after that has it again.
 * Once its children exist (restore_in_task) the leader puts the saved
 * foreground group in front (tcsetpgrp); the controller cannot do that, the
 * kernel only lets a process of the terminal's session do it.
 * restore_resume locks the pty again and sets exclusive mode when the dump
 * had them.  With shell_job it also hands the foreground of ckpt's terminal
 * to the job's group when the job was in front at the dump and ckpt restore
 * runs in front (ckpt is in that terminal's session, so it may).
 */
#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "fs.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef TIOCGEXCL
#define TIOCGEXCL _IOR('T', 0x40, int)
#endif
#ifndef TIOCGDEV
#define TIOCGDEV _IOR('T', 0x32, unsigned int)
#endif

enum { TTY_MASTER = 1, TTY_SLAVE = 2, TTY_DEVTTY = 3, TTY_EXTERNAL = 4 };

/* keys of fs_keep entries of FS_TTY besides the pty index */
#define TTY_EXTRA (1ULL << 40) /* a pty opened only to reach an index: | index */
#define TTY_SPENT (1ULL << 41) /* an extra taken over by its index */

/* keys of fs_seen entries of FS_TTY: (index, what) */
enum { SEEN_PAIR = 0, SEEN_UNREAD_MASTER, SEEN_UNREAD_SLAVE };

struct tty_proc {
	pid_t pid, sid, tpgid;
	bool has_ctty;
	unsigned int ctty_dev; /* the controlling terminal (kernel encoding) */
	uint32_t ctty_index;   /* its pty index, when it is a pty slave */
	bool ctty_pty;       /* it is a pty slave */
};

struct tty_hold {
	pid_t pid;
	uint32_t index;
};

struct tty_drv {
	unsigned int major, min_lo, min_hi;
};

struct fs_tty_scan {
	bool drivers_read;
	struct tty_drv *drv;
	size_t ndrv;
	bool tree_read;
	struct tty_proc *procs;
	size_t nprocs;
	struct tty_hold *masters; /* pty indexes whose master the tree holds */
	size_t nmasters;
	struct tty_hold *slaves;  /* ... whose slave (or /dev/tty on it) it holds */
	size_t nslaves;
};

static bool is_pts_major(unsigned int maj)
{
	return maj >= 136 && maj <= 143;
}

/* The pty index of a slave device (136..143 with 8-bit minors on old
 * kernels, 136 with 20-bit minors now). */
static uint32_t pts_index(unsigned int maj, unsigned int min)
{
	return (maj - 136) * 256 + min;
}

/* ---- dump: what the tree holds ------------------------------------------- */

void fs_tty_forget(struct fs_priv *p)
{
	struct fs_tty_scan *s = p->tty_scan;

	if (!s)
		return;
	free(s->drv);
	free(s->procs);
	free(s->masters);
	free(s->slaves);
	free(s);
	p->tty_scan = NULL;
}

static struct fs_tty_scan *get_scan(struct fs_priv *p)
{
	if (!p->tty_scan) {
		p->tty_scan = calloc(1, sizeof(*p->tty_scan));
		if (!p->tty_scan)
			fs_err(p, "dump: out of memory");
	}
	return p->tty_scan;
}

static int add_hold(struct tty_hold **arr, size_t *n, pid_t pid, uint32_t index)
{
	struct tty_hold *na;

	for (size_t i = 0; i < *n; i++)
		if ((*arr)[i].pid == pid && (*arr)[i].index == index)
			return 0;
	na = realloc(*arr, (*n + 1) * sizeof(*na));
	if (!na)
		return -ENOMEM;
	*arr = na;
	na[(*n)++] = (struct tty_hold){ pid, index };
	return 0;
}

static bool holds(const struct tty_hold *arr, size_t n, uint32_t index, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (arr[i].index == index && (pid <= 0 || arr[i].pid == pid))
			return true;
	return false;
}

/* Session, controlling terminal and its foreground group from
 * /proc/PID/stat; -errno when it cannot be read. */
static int read_stat(pid_t pid, struct tty_proc *out)
{
	char path[64], buf[1024], st;
	int fd, ppid, pgrp, sess, ttynr, tpgid;
	ssize_t n;
	char *q;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	q = strrchr(buf, ')');
	if (!q || sscanf(q + 1, " %c %d %d %d %d %d", &st, &ppid, &pgrp, &sess, &ttynr,
			 &tpgid) != 6)
		return -EINVAL;
	*out = (struct tty_proc){ .pid = pid, .sid = sess, .tpgid = tpgid };
	if (ttynr) {
		/* the kernel's encoding of dev_t, which major()/minor() read */
		unsigned int maj = major((dev_t)(unsigned int)ttynr);
		unsigned int min = minor((dev_t)(unsigned int)ttynr);

		out->has_ctty = true;
		out->ctty_dev = (unsigned int)ttynr;
		out->ctty_pty = is_pts_major(maj);
		out->ctty_index = out->ctty_pty ? pts_index(maj, min) : 0;
	}
	return 0;
}

/* The pty index of a master fd of another process: fdinfo's tty-index,
 * else TIOCGPTN on a copy of the fd.  -1 when unknown. */
static long master_index(pid_t pid, const char *fdname)
{
	char path[96], buf[1024], *s;
	long idx = -1;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%.20s", (int)pid, fdname);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n > 0) {
			buf[n] = 0;
			s = strstr(buf, "tty-index:");
			if (s)
				return strtol(s + 10, NULL, 10);
		}
	}
	/* an older kernel: ask the master itself */
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (pfd >= 0) {
		int lfd = (int)syscall(SYS_pidfd_getfd, pfd, atoi(fdname), 0);
		unsigned int v;

		if (lfd >= 0) {
			if (!ioctl(lfd, TIOCGPTN, &v))
				idx = v;
			close(lfd);
		}
		close(pfd);
	}
	return idx;
}

static int scan_tree(struct fs_priv *p, struct fs_tty_scan *s)
{
	const pid_t *pids;
	size_t npids;
	int ret = fs_tree_pids(p, &pids, &npids);

	if (ret)
		return ret;
	for (size_t i = 0; i < npids; i++) {
		struct tty_proc tp;
		char path[64];
		struct dirent *de;
		DIR *d;

		if (read_stat(pids[i], &tp))
			continue; /* gone; the core will tell */
		struct tty_proc *np = realloc(s->procs, (s->nprocs + 1) * sizeof(*np));

		if (!np)
			goto nomem;
		s->procs = np;
		np[s->nprocs++] = tp;

		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pids[i]);
		d = opendir(path);
		if (!d)
			continue; /* a zombie */
		while ((de = readdir(d))) {
			char fpath[128];
			struct stat st;
			unsigned int maj, min;

			if (de->d_name[0] == '.')
				continue;
			snprintf(fpath, sizeof(fpath), "/proc/%d/fd/%.20s", (int)pids[i], de->d_name);
			if (stat(fpath, &st) || !S_ISCHR(st.st_mode))
				continue;
			maj = major(st.st_rdev);
			min = minor(st.st_rdev);
			ret = 0;
			if (maj == 5 && min == 2) {
				long idx = master_index(pids[i], de->d_name);

				if (idx >= 0)
					ret = add_hold(&s->masters, &s->nmasters, pids[i], (uint32_t)idx);
			} else if (is_pts_major(maj)) {
				ret = add_hold(&s->slaves, &s->nslaves, pids[i], pts_index(maj, min));
			} else if (maj == 5 && min == 0 && tp.ctty_pty) {
				/* /dev/tty: taken to be the task's controlling terminal */
				ret = add_hold(&s->slaves, &s->nslaves, pids[i], tp.ctty_index);
			}
			if (ret) {
				closedir(d);
				goto nomem;
			}
		}
		closedir(d);
	}
	s->tree_read = true;
	return 0;
nomem:
	fs_err(p, "dump: out of memory");
	return -ENOMEM;
}

static struct fs_tty_scan *tree_scan(struct fs_priv *p)
{
	struct fs_tty_scan *s = get_scan(p);

	if (s && !s->tree_read && scan_tree(p, s))
		return NULL;
	return s;
}

static bool in_tree(const struct fs_tty_scan *s, pid_t pid)
{
	for (size_t i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid == pid)
			return true;
	return false;
}

/* A process outside the tree (not ckpt) that holds the slave of pty index
 * or has it as controlling terminal: its pid, else 0. */
static pid_t slave_outside(const struct fs_tty_scan *s, uint32_t index)
{
	char path[64];
	struct stat pts;
	bool have_dev = false;
	pid_t self = getpid(), found = 0;
	struct dirent *de;
	DIR *proc;

	/* the devpts instance ckpt sees: told apart from other instances
	 * (containers) whose ptys have the same numbers */
	snprintf(path, sizeof(path), "/dev/pts/%u", index);
	if (!stat(path, &pts) && S_ISCHR(pts.st_mode) && is_pts_major(major(pts.st_rdev)) &&
	    pts_index(major(pts.st_rdev), minor(pts.st_rdev)) == index)
		have_dev = true;

	proc = opendir("/proc");
	if (!proc)
		return 0;
	while (!found && (de = readdir(proc))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		struct tty_proc tp;
		struct dirent *fe;
		DIR *d;

		if (pid <= 0 || *end || pid == self || in_tree(s, (pid_t)pid))
			continue;
		if (!read_stat((pid_t)pid, &tp) && tp.has_ctty && tp.ctty_pty &&
		    tp.ctty_index == index) {
			found = (pid_t)pid;
			break;
		}
		snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
		d = opendir(path);
		if (!d)
			continue;
		while ((fe = readdir(d))) {
			char fpath[128];
			struct stat st;

			if (fe->d_name[0] == '.')
				continue;
			snprintf(fpath, sizeof(fpath), "/proc/%ld/fd/%.20s", pid, fe->d_name);
			if (stat(fpath, &st) || !S_ISCHR(st.st_mode) || !is_pts_major(major(st.st_rdev)))
				continue;
			if (pts_index(major(st.st_rdev), minor(st.st_rdev)) != index)
				continue;
			if (have_dev && st.st_dev != pts.st_dev)
				continue;
			found = (pid_t)pid;
			break;
		}
		closedir(d);
	}
	closedir(proc);
	return found;
}

/* /proc/tty/drivers: the device numbers of every terminal driver. */
static void read_drivers(struct fs_tty_scan *s)
{
	char line[512];
	FILE *f;

	s->drivers_read = true;
	f = fopen("/proc/tty/drivers", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char name[128], node[256], range[64];
		unsigned int maj, lo, hi;
		struct tty_drv *nd;

		if (sscanf(line, "%127s %255s %u %63s", name, node, &maj, range) != 4)
			continue;
		if (sscanf(range, "%u-%u", &lo, &hi) != 2) {
			if (sscanf(range, "%u", &lo) != 1)
				continue;
			hi = lo;
		}
		nd = realloc(s->drv, (s->ndrv + 1) * sizeof(*nd));
		if (!nd)
			break;
		s->drv = nd;
		nd[s->ndrv++] = (struct tty_drv){ maj, lo, hi };
	}
	fclose(f);
}

bool fs_tty_claims(struct fs_priv *p, const struct ckpt_fd_info *fd)
{
	unsigned int maj = major(fd->st.st_rdev), min = minor(fd->st.st_rdev);
	struct fs_tty_scan *s;

	if (!S_ISCHR(fd->st.st_mode))
		return false;
	if (is_pts_major(maj) || (maj == 5 && min <= 2) || maj == 4)
		return true;
	s = get_scan(p);
	if (!s)
		return false;
	if (!s->drivers_read)
		read_drivers(s);
	for (size_t i = 0; i < s->ndrv; i++)
		if (s->drv[i].major == maj && min >= s->drv[i].min_lo && min <= s->drv[i].min_hi)
			return true;
	return false;
}

/* ---- dump ---------------------------------------------------------------- */

static uint32_t tty_id(const ProtobufCMessage *m)
{
	return ((const Ckpt__Fs__Tty *)m)->id;
}

/* Session and foreground group of pty index as the tree sees them, and
 * the warnings about what of it cannot come back (once per pair). */
static void pair_session(struct fs_priv *p, const struct fs_tty_scan *s, uint32_t index,
			 const char *what, bool warn, Ckpt__Fs__Tty *r)
{
	const struct tty_proc *leader = NULL, *any = NULL;

	for (size_t i = 0; i < s->nprocs; i++) {
		const struct tty_proc *tp = &s->procs[i];

		if (!tp->has_ctty || !tp->ctty_pty || tp->ctty_index != index)
			continue;
		any = tp;
		if (tp->pid == tp->sid)
			leader = tp;
	}
	if (!any)
		return;
	if (!leader) {
		if (warn)
			fs_warn(p, "%s: pts %u is the controlling terminal of session %d, whose leader is not "
			   "in the dumped tree; the restored tasks get no controlling terminal",
			what, index, (int)any->sid);
		return;
	}
	if (!holds(s->masters, s->nmasters, index, leader->pid) &&
	    !holds(s->slaves, s->nslaves, index, leader->pid)) {
		if (warn)
			fs_warn(p, "%s: PID %d has pts %u as controlling terminal but no fd on it; it gets no "
			   "controlling terminal at restore",
			what, (int)leader->pid, index);
		return;
	}
	r->has_sid = true;
	r->sid = fs_ns_pid(leader->pid);
	/* every member inherits the leader's terminal at restore, also one
	 * that had dropped it (TIOCNOTTY) */
	for (size_t i = 0; i < s->nprocs && warn; i++) {
		const struct tty_proc *tp = &s->procs[i];

		if (tp->sid == leader->sid && !tp->has_ctty)
			fs_warn(p, "%s: PID %d of session %d has no controlling terminal; it gets pts %u, "
				   "the session's, at restore",
				what, (int)tp->pid, (int)tp->sid, index);
	}
	if (leader->tpgid > 0) {
		if (in_tree(s, leader->tpgid)) {
			r->has_fg_pgrp = true;
			r->fg_pgrp = fs_ns_pid(leader->tpgid);
		} else if (warn) {
			fs_warn(p, "%s: the foreground process group %d of pts %u has no leader in the "
				   "dumped tree; the session leader's group is put in front at restore",
				what, (int)leader->tpgid, index);
		}
	}
}

static int refuse_outside(struct fs_priv *p, const char *what)
{
	fs_err(p, "%s is a terminal whose other end is outside the dumped tree (the terminal it "
		  "was started on?); dump with --shell-job to give it the terminal of ckpt restore",
	       what);
	return -EBUSY;
}

static int tty_dump(struct fs_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	Ckpt__Fs__Tty r = CKPT__FS__TTY__INIT;
	Ckpt__Fs__TtyTermios tr = CKPT__FS__TTY_TERMIOS__INIT;
	Ckpt__Fs__TtyWinsize ws = CKPT__FS__TTY_WINSIZE__INIT;
	unsigned int maj = major(fd->st.st_rdev), min = minor(fd->st.st_rdev);
	unsigned int dev = (unsigned int)((min & 0xffu) | (maj << 8) | ((min & ~0xffu) << 12));
	struct fs_tty_scan *s;
	struct termios t;
	struct winsize w;
	char what[PATH_MAX + 64];
	uint32_t index = 0;
	int kind, v, ret;
	bool seen, first;

	snprintf(what, sizeof(what), "fd %d of PID %d (%s)", fd->fd, (int)fd->pid, fd->link);
	if (fd->flags & O_PATH) {
		fs_err(p, "%s: O_PATH terminal fds are not supported", what);
		return -EINVAL;
	}
	s = tree_scan(p);
	if (!s)
		return -ENOMEM;

	if (maj == 5 && min == 2) {
		unsigned int n;

		if (ioctl(fd->local_fd, TIOCGPTN, &n)) {
			ret = errno;
			fs_err(p, "%s: cannot read the pty index of this master (TIOCGPTN): %s", what,
			       strerror(ret));
			return fs_errno(ret);
		}
		kind = TTY_MASTER;
		index = n;
		dev = (unsigned int)(((n & 0xffu) | (136u << 8) | ((n & ~0xffu) << 12)));
	} else if (is_pts_major(maj)) {
		index = pts_index(maj, min);
		kind = holds(s->masters, s->nmasters, index, 0) ? TTY_SLAVE : TTY_EXTERNAL;
	} else if (maj == 5 && min == 0) {
		if (ioctl(fd->local_fd, TIOCGDEV, &dev)) {
			ret = errno;
			if (ret == EIO)
				fs_err(p, "%s: /dev/tty of a terminal that was hung up; hung-up "
					  "terminals are not supported",
				       what);
			else
				fs_err(p, "%s: cannot tell which terminal this /dev/tty is (TIOCGDEV): %s",
				       what, strerror(ret));
			return fs_errno(ret);
		}
		maj = major((dev_t)dev);
		min = minor((dev_t)dev);
		if (is_pts_major(maj) && holds(s->masters, s->nmasters, pts_index(maj, min), 0)) {
			kind = TTY_DEVTTY;
			index = pts_index(maj, min);
		} else {
			kind = TTY_EXTERNAL;
		}
	} else {
		kind = TTY_EXTERNAL;
	}

	r.has_id = true;
	r.id = obj_id;
	r.has_kind = true;
	r.kind = (uint32_t)kind;
	r.has_flags = true;
	r.flags = fd->flags & ~(unsigned int)(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC);
	r.path = (char *)fd->link; /* pack only reads it */
	r.has_rdev = true;
	r.rdev = dev;

	if (kind == TTY_EXTERNAL) {
		if (!p->shell_job)
			return refuse_outside(p, what);
		/* a job in the foreground of its shell's terminal: handed the
		 * foreground of ckpt's terminal again at restore_resume */
		for (size_t i = 0; i < s->nprocs && !r.has_fg_pgrp; i++) {
			const struct tty_proc *tp = &s->procs[i];

			if (tp->has_ctty && tp->ctty_dev == dev && tp->tpgid > 0 &&
			    in_tree(s, tp->tpgid)) {
				r.has_fg_pgrp = true;
				r.fg_pgrp = fs_ns_pid(tp->tpgid);
			}
		}
		ret = fs_save(p, FS_TTY, &r.base);
		if (!ret)
			fs_debug(p, "%s: tty %u, the terminal outside the tree (shell job), foreground "
				    "group %d",
				 what, obj_id, r.fg_pgrp);
		return ret;
	}

	r.has_index = true;
	r.index = index;
	r.has_slave_held = true;
	r.slave_held = holds(s->slaves, s->nslaves, index, 0);

	ret = fs_seen_once(p, FS_TTY, index, SEEN_PAIR, &seen);
	if (ret)
		return ret;
	first = !seen;
	if (first) {
		pid_t out = slave_outside(s, index);

		if (out) {
			fs_err(p, "%s: pts %u is also open in PID %d (or its controlling terminal), "
				  "which is outside the dumped tree; dump that process too",
			       what, index, (int)out);
			return -EBUSY;
		}
	}

	if (tcgetattr(fd->local_fd, &t)) {
		ret = errno;
		if (ret == EIO)
			fs_err(p, "%s: the terminal was hung up (its other end is gone); hung-up "
				  "terminals are not supported",
			       what);
		else
			fs_err(p, "%s: cannot read its terminal settings: %s", what, strerror(ret));
		return fs_errno(ret);
	}
	tr.has_iflag = tr.has_oflag = tr.has_cflag = tr.has_lflag = tr.has_line = true;
	tr.iflag = t.c_iflag;
	tr.oflag = t.c_oflag;
	tr.cflag = t.c_cflag;
	tr.lflag = t.c_lflag;
	tr.line = t.c_line;
	tr.has_cc = true;
	tr.cc.data = t.c_cc;
	tr.cc.len = sizeof(t.c_cc);
	tr.has_ispeed = tr.has_ospeed = true;
	tr.ispeed = (uint32_t)cfgetispeed(&t);
	tr.ospeed = (uint32_t)cfgetospeed(&t);
	r.termios = &tr;
	if (!ioctl(fd->local_fd, TIOCGWINSZ, &w)) {
		ws.has_row = ws.has_col = ws.has_xpixel = ws.has_ypixel = true;
		ws.row = w.ws_row;
		ws.col = w.ws_col;
		ws.xpixel = w.ws_xpixel;
		ws.ypixel = w.ws_ypixel;
		r.winsize = &ws;
	}

	if (kind == TTY_MASTER) {
		struct pollfd pf = { fd->local_fd, POLLIN, 0 };

		if (!ioctl(fd->local_fd, TIOCGPKT, &v)) {
			r.has_packet = true;
			r.packet = v != 0;
		}
		if (!ioctl(fd->local_fd, TIOCGPTLCK, &v)) {
			r.has_locked = true;
			r.locked = v != 0;
		}
		if (poll(&pf, 1, 0) >= 0 && (pf.revents & POLLHUP) && !r.slave_held) {
			r.has_slave_closed = true;
			r.slave_closed = true;
		}
	} else {
		/* a line discipline other than N_TTY holds state of its own */
		if (!ioctl(fd->local_fd, TIOCGETD, &v) && v != N_TTY) {
			fs_err(p, "%s: the terminal runs line discipline %d; only the default one "
				  "(N_TTY) is supported",
			       what, v);
			return -ENOTSUP;
		}
		if (!ioctl(fd->local_fd, TIOCGEXCL, &v)) {
			r.has_exclusive = true;
			r.exclusive = v != 0;
		}
	}

	/* queued bytes cannot be read without consuming them */
	if (!ioctl(fd->local_fd, FIONREAD, &v) && v > 0) {
		r.has_unread = true;
		r.unread = (uint32_t)v;
		ret = fs_seen_once(p, FS_TTY, index,
				   kind == TTY_MASTER ? SEEN_UNREAD_MASTER : SEEN_UNREAD_SLAVE, &seen);
		if (ret)
			return ret;
		if (!seen)
			fs_warn(p, "%s: %d byte(s) %s are not saved (a terminal's queue cannot be "
				   "read without consuming it); they are lost at restore",
				what, v,
				kind == TTY_MASTER ? "that the slave side wrote and the master did "
						     "not read yet"
						   : "of input that the slave side did not read yet");
	}

	pair_session(p, s, index, what, first, &r);

	ret = fs_save(p, FS_TTY, &r.base);
	if (ret)
		return ret;
	fs_debug(p, "%s: tty %u, %s of pty %u, flags 0%o%s%s%s, session %d, foreground %d", what,
		 obj_id,
		 kind == TTY_MASTER ? "master" : kind == TTY_SLAVE ? "slave" : "/dev/tty", index,
		 r.flags, r.packet ? ", packet mode" : "", r.locked ? ", locked" : "",
		 r.slave_closed ? ", slave closed" : "", r.sid, r.fg_pgrp);
	return 0;
}

/* ---- restore ------------------------------------------------------------- */

/* The state of pty index merged from all its records. */
struct pty_state {
	const Ckpt__Fs__TtyTermios *termios;
	const Ckpt__Fs__TtyWinsize *winsize;
	const char *ptmx;
	bool packet, locked, exclusive, slave_closed, slave_held;
	int32_t sid, fg_pgrp;
	size_t nmasters;
};

static void pty_merge(struct fs_priv *p, uint32_t index, struct pty_state *st)
{
	const struct fs_table *t = &p->tables[FS_TTY];

	memset(st, 0, sizeof(*st));
	for (size_t i = 0; i < t->n; i++) {
		const Ckpt__Fs__Tty *o = (const Ckpt__Fs__Tty *)t->recs[i];

		if (o->kind == TTY_EXTERNAL || !o->has_index || o->index != index)
			continue;
		if (o->termios && !st->termios)
			st->termios = o->termios;
		if (o->winsize && !st->winsize)
			st->winsize = o->winsize;
		if (o->kind == TTY_MASTER) {
			st->nmasters++;
			st->packet = o->packet;
			st->locked = o->locked;
			st->slave_closed = o->slave_closed;
			if (o->path && strstr(o->path, "ptmx"))
				st->ptmx = o->path;
		} else {
			st->slave_held = true;
		}
		if (o->exclusive)
			st->exclusive = true;
		if (o->slave_held)
			st->slave_held = true;
		if (o->has_sid && o->sid > 0)
			st->sid = o->sid;
		if (o->has_fg_pgrp && o->fg_pgrp > 0)
			st->fg_pgrp = o->fg_pgrp;
	}
	if (st->slave_held)
		st->slave_closed = false;
}

/* Open a slave of the pty behind master m with the saved flags. */
static int open_slave(int m, uint32_t index, unsigned int flags)
{
	int of = (int)(flags & (O_ACCMODE | O_NONBLOCK | O_APPEND)) | O_NOCTTY | O_CLOEXEC;
	char path[64];
	struct stat st;
	int fd, e;

	fd = ioctl(m, TIOCGPTPEER, of);
	if (fd >= 0 || (errno != EINVAL && errno != ENOTTY))
		return fd;
	/* before Linux 4.13: by path, checked to be that pty */
	snprintf(path, sizeof(path), "/dev/pts/%u", index);
	fd = open(path, of);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) || !S_ISCHR(st.st_mode) || !is_pts_major(major(st.st_rdev)) ||
	    pts_index(major(st.st_rdev), minor(st.st_rdev)) != index) {
		e = errno ? errno : ESTALE;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int open_ptmx(const struct pty_state *st)
{
	int fd = -1;

	if (st->ptmx)
		fd = open(st->ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	return fd;
}

/* Put the saved settings on the new pair (through the master: the kernel
 * applies termios and window size of a master to its slave). */
static int pty_setup(struct fs_priv *p, int m, uint32_t index, const struct pty_state *st,
		     const char *what)
{
	int zero = 0, one = 1, e;

	if (ioctl(m, TIOCSPTLCK, &zero)) {
		e = errno;
		fs_err(p, "restore: %s: cannot unlock the new pty: %s", what, strerror(e));
		return fs_errno(e);
	}
	if (st->termios) {
		const Ckpt__Fs__TtyTermios *tr = st->termios;
		struct termios t;

		memset(&t, 0, sizeof(t));
		t.c_iflag = tr->iflag;
		t.c_oflag = tr->oflag;
		t.c_cflag = tr->cflag;
		t.c_lflag = tr->lflag;
		t.c_line = (cc_t)tr->line;
		if (tr->has_cc)
			memcpy(t.c_cc, tr->cc.data,
			       tr->cc.len < sizeof(t.c_cc) ? tr->cc.len : sizeof(t.c_cc));
		if (tr->has_ispeed)
			cfsetispeed(&t, (speed_t)tr->ispeed);
		if (tr->has_ospeed)
			cfsetospeed(&t, (speed_t)tr->ospeed);
		if (tcsetattr(m, TCSANOW, &t)) {
			e = errno;
			fs_err(p, "restore: %s: cannot set the terminal settings: %s", what,
			       strerror(e));
			return fs_errno(e);
		}
	}
	if (st->winsize) {
		struct winsize w = {
			.ws_row = (unsigned short)st->winsize->row,
			.ws_col = (unsigned short)st->winsize->col,
			.ws_xpixel = (unsigned short)st->winsize->xpixel,
			.ws_ypixel = (unsigned short)st->winsize->ypixel,
		};

		if (ioctl(m, TIOCSWINSZ, &w)) {
			e = errno;
			fs_err(p, "restore: %s: cannot set the window size: %s", what, strerror(e));
			return fs_errno(e);
		}
	}
	if (st->slave_closed) {
		/* open and close the slave once: the master then reads EIO, as it did */
		int s = open_slave(m, index, O_RDWR | O_NONBLOCK);

		if (s < 0) {
			e = errno;
			fs_err(p, "restore: %s: cannot open the slave: %s", what, strerror(e));
			return fs_errno(e);
		}
		close(s);
	}
	/* last: changing termios may queue a status byte for packet mode;
	 * enabling it starts with none */
	if (st->packet && ioctl(m, TIOCPKT, &one)) {
		e = errno;
		fs_err(p, "restore: %s: cannot set packet mode: %s", what, strerror(e));
		return fs_errno(e);
	}
	return 0;
}

/* Create pty index with its settings; its master is kept until
 * restore_resume.  NULL after an error was logged (errno set). */
static struct fs_keep *pty_create(struct fs_priv *p, uint32_t index, const char *what)
{
	struct pty_state st;
	struct fs_keep *k;
	int m = -1, e, ret;

	pty_merge(p, index, &st);
	if (st.nmasters > 1) {
		fs_err(p, "restore: %s: %zu master records for one pty; the images are damaged", what,
		       st.nmasters);
		errno = EBADMSG;
		return NULL;
	}

	/* a pty opened earlier on the way to another index */
	k = fs_keep_find(p, FS_TTY, TTY_EXTRA | index);
	if (k) {
		m = k->fd[0];
		k->fd[0] = -1;
		k->key = TTY_SPENT;
	}
	/* devpts hands out the lowest free index: open until ours comes */
	for (uint64_t tries = 0; m < 0; tries++) {
		unsigned int got;
		int fd = open_ptmx(&st);

		if (fd < 0) {
			e = errno;
			fs_err(p, "restore: %s: cannot open /dev/ptmx: %s", what, strerror(e));
			errno = e;
			return NULL;
		}
		if (ioctl(fd, TIOCGPTN, &got)) {
			e = errno;
			close(fd);
			fs_err(p, "restore: %s: cannot read the index of a new pty: %s", what,
			       strerror(e));
			errno = e;
			return NULL;
		}
		if (got == index) {
			m = fd;
			break;
		}
		if (got > index || tries > index) {
			close(fd);
			fs_err(p, "restore: %s: pty %u is in use here (the kernel hands out %u); close "
				  "what holds /dev/pts/%u or restore where it is free",
			       what, index, got, index);
			errno = EADDRINUSE;
			return NULL;
		}
		if (!fs_keep_add(p, FS_TTY, TTY_EXTRA | got, fd, -1)) {
			errno = ENOMEM;
			return NULL;
		}
	}

	ret = pty_setup(p, m, index, &st, what);
	if (ret) {
		close(m);
		errno = -ret;
		return NULL;
	}
	k = fs_keep_add(p, FS_TTY, index, m, -1);
	if (!k)
		errno = ENOMEM;
	else
		fs_debug(p, "restore: pty %u created%s%s", index, st.packet ? ", packet mode" : "",
			 st.slave_closed ? ", slave closed" : "");
	return k;
}

/* The terminal ckpt restore runs on: its fd 0, 1 or 2 when one is a
 * terminal, else its /dev/tty (*opened set: close it); -1 when none. */
static int own_terminal(bool *opened)
{
	int fd;

	*opened = false;
	for (int i = 0; i < 3; i++)
		if (isatty(i))
			return i;
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	*opened = fd >= 0;
	return fd;
}

/* --shell-job: the terminal ckpt restore runs on. */
static int restore_external(struct fs_priv *p, const Ckpt__Fs__Tty *r, int *out)
{
	const unsigned int same = O_ACCMODE | O_APPEND | O_NONBLOCK | O_ASYNC;
	const char *path = r->path ? r->path : "a terminal";
	int src, fd, fl;
	bool opened;

	if (!p->shell_job) {
		fs_err(p, "restore: the tree ran on the terminal of the shell it was started from "
			  "(%s, dumped with --shell-job); restore with --shell-job from a shell",
		       path);
		return -EINVAL;
	}
	src = own_terminal(&opened);
	if (src < 0) {
		fs_err(p, "--shell-job: ckpt restore has no terminal to give the job; run it from a "
			  "shell");
		return -ENOTTY;
	}
	fl = fcntl(src, F_GETFL);
	if (fl >= 0 && ((unsigned int)fl & same) == (r->flags & same)) {
		/* the same kind of open file: share ckpt's, as a shell's job does */
		fd = opened ? src : fcntl(src, F_DUPFD_CLOEXEC, 0);
		opened = false;
	} else {
		/* other flags (O_NONBLOCK ...) must not change ckpt's own file */
		fd = fs_reopen(src, (int)fs_open_flags(r->flags) | O_NOCTTY);
		if (fd >= 0 && fs_set_fl(p, fd, r->flags, path)) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0) {
		int e = errno;

		fs_err(p, "restore: cannot give the task ckpt's terminal (fd %d) for %s: %s", src,
		       path, strerror(e));
		if (opened)
			close(src);
		return fs_errno(e);
	}
	if (opened)
		close(src);
	fs_debug(p, "restore: tty %u (%s): ckpt's terminal", r->id, path);
	*out = fd;
	return 0;
}

static int tty_restore(struct fs_priv *p, const ProtobufCMessage *m, int *out)
{
	const Ckpt__Fs__Tty *r = (const Ckpt__Fs__Tty *)m;
	struct fs_keep *k;
	char what[96];
	int fd, ret;

	if (r->kind == TTY_EXTERNAL)
		return restore_external(p, r, out);
	if ((r->kind != TTY_MASTER && r->kind != TTY_SLAVE && r->kind != TTY_DEVTTY) ||
	    !r->has_index || !r->has_flags) {
		fs_err(p, "restore: tty object %u has kind %u, no pty index or no flags; the images "
			  "are damaged",
		       r->id, r->kind);
		return -EBADMSG;
	}
	snprintf(what, sizeof(what), "tty object %u (pty %u)", r->id, r->index);

	k = fs_keep_find(p, FS_TTY, r->index);
	if (!k) {
		k = pty_create(p, r->index, what);
		if (!k)
			return fs_errno(errno);
	}
	if (r->kind == TTY_MASTER) {
		if (k->used[0]) {
			fs_err(p, "restore: %s: a second open file of one pty master; the images are "
				  "damaged",
			       what);
			return -EBADMSG;
		}
		fd = fcntl(k->fd[0], F_DUPFD_CLOEXEC, 0);
		k->used[0] = true;
	} else {
		/* a /dev/tty record gets a file of the slave until the task
		 * has its controlling terminal (restore_in_task) */
		fd = open_slave(k->fd[0], r->index, r->flags);
	}
	if (fd < 0) {
		int e = errno;

		fs_err(p, "restore: %s: cannot open its %s: %s", what,
		       r->kind == TTY_MASTER ? "master" : "slave", strerror(e));
		return fs_errno(e);
	}
	ret = fs_set_fl(p, fd, r->flags, what);
	if (ret) {
		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

/* Inside the task: make the fg group the terminal's foreground group.  The
 * group may not exist yet (its leader is created by another task at the same
 * time): try for a while. */
static int set_foreground(struct fs_priv *p, int fd, pid_t fg, uint32_t index)
{
	const struct timespec step = { 0, 10 * 1000 * 1000 };
	int e = 0;

	for (int i = 0; i < 500; i++) {
		if (tcgetpgrp(fd) == fg || !tcsetpgrp(fd, fg))
			return 0;
		e = errno;
		if (e != ESRCH && e != EPERM)
			break;
		nanosleep(&step, NULL);
	}
	fs_err(p, "restore: cannot put process group %d in the foreground of pts %u: %s", (int)fg,
	       index, strerror(e));
	return fs_errno(e);
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Inside the task: turn the slave file standing in for /dev/tty (at fd and
 * every other fd of this task on the same open file) into /dev/tty. */
static void become_dev_tty(struct fs_priv *p, const Ckpt__Fs__Tty *r, int fd)
{
	pid_t me = (pid_t)syscall(SYS_getpid);
	int nfd, *fds = NULL;
	size_t n = 0, cap = 0;
	unsigned int dev;
	struct dirent *de;
	DIR *d;

	nfd = open("/dev/tty", (int)(r->flags & (O_ACCMODE | O_APPEND | O_NONBLOCK)) | O_CLOEXEC);
	if (nfd < 0) {
		/* no controlling terminal here: the session's leader is
		 * not in the tree */
		fs_debug(p, "restore: tty %u stays a file of pts %u (no /dev/tty here: %s)", r->id,
			 r->index, strerror(errno));
		return;
	}
	if (ioctl(nfd, TIOCGDEV, &dev) || !is_pts_major(major((dev_t)dev)) ||
	    pts_index(major((dev_t)dev), minor((dev_t)dev)) != r->index ||
	    fs_set_fl(p, nfd, r->flags, "/dev/tty")) {
		close(nfd);
		return;
	}
	d = opendir("/proc/self/fd");
	if (!d) {
		close(nfd);
		return;
	}
	while ((de = readdir(d))) {
		char *end;
		long x = strtol(de->d_name, &end, 10);

		if (de->d_name[0] == '.' || *end || x == dirfd(d) || x == nfd)
			continue;
		if (x != fd && syscall(SYS_kcmp, me, me, KCMP_FILE, fd, (int)x) != 0)
			continue;
		if (n == cap) {
			int *nf = realloc(fds, (cap = cap ? cap * 2 : 8) * sizeof(*nf));

			if (!nf)
				break;
			fds = nf;
		}
		fds[n++] = (int)x;
	}
	closedir(d);
	if (n)
		qsort(fds, n, sizeof(*fds), cmp_int);
	for (size_t i = 0; i < n; i++) {
		int fdfl = fcntl(fds[i], F_GETFD);

		dup3(nfd, fds[i], fdfl >= 0 && (fdfl & FD_CLOEXEC) ? O_CLOEXEC : 0);
	}
	free(fds);
	close(nfd);
}

/* Whether this task is the restored leader of the session that had pty
 * index as controlling terminal. */
static bool ctty_leader(struct fs_priv *p, uint32_t index, struct pty_state *st)
{
	pid_t me = (pid_t)syscall(SYS_getpid);

	pty_merge(p, index, st);
	return st->sid > 0 && st->sid == me && getsid(0) == me;
}

/* Inside the task before its children exist: the session leader takes the
 * terminal now, because a member gets its controlling terminal only from
 * its parent at fork (the kernel never hands it to the session's existing
 * members when the leader takes it later). */
static int tty_restore_before_children(struct fs_priv *p, const ProtobufCMessage *m, int fd)
{
	const Ckpt__Fs__Tty *r = (const Ckpt__Fs__Tty *)m;
	struct pty_state st;

	/* a shell job's terminal is ckpt's: the task got it as controlling
	 * terminal from ckpt's session, nothing to take */
	if (r->kind == TTY_EXTERNAL || !r->has_index || !ctty_leader(p, r->index, &st))
		return 0;
	if (ioctl(fd, TIOCSCTTY, 0)) {
		int e = errno;

		fs_err(p, "restore: cannot make pts %u the controlling terminal of PID %d: %s",
		       r->index, (int)syscall(SYS_getpid), strerror(e));
		return fs_errno(e);
	}
	return 0;
}

/* Inside the task, its children created: the leader puts the saved
 * foreground group in front (it may be a child's), and every task turns
 * its /dev/tty files back into /dev/tty. */
static int tty_restore_in_task(struct fs_priv *p, const ProtobufCMessage *m, int fd)
{
	const Ckpt__Fs__Tty *r = (const Ckpt__Fs__Tty *)m;
	struct pty_state st;
	int ret;

	if (r->kind == TTY_EXTERNAL || !r->has_index)
		return 0;
	if (ctty_leader(p, r->index, &st) && st.fg_pgrp > 0 && st.fg_pgrp != getpgid(0)) {
		ret = set_foreground(p, fd, st.fg_pgrp, r->index);
		if (ret)
			return ret;
	}
	if (r->kind == TTY_DEVTTY)
		become_dev_tty(p, r, fd);
	return 0;
}

/* --shell-job: a job that was in the foreground of its terminal gets the
 * foreground of ckpt's terminal, when ckpt has it (a shell ran ckpt restore
 * as its foreground job).  Every task exists now, none runs yet.  From here
 * it works: ckpt is in the terminal's session, the restored root too. */
static void shell_job_foreground(struct fs_priv *p)
{
	const struct fs_table *t = &p->tables[FS_TTY];
	pid_t fg = 0, me = getpgrp();
	bool opened;
	int fd;

	for (size_t i = 0; i < t->n && !fg; i++) {
		const Ckpt__Fs__Tty *o = (const Ckpt__Fs__Tty *)t->recs[i];

		if (o->kind == TTY_EXTERNAL && o->has_fg_pgrp && o->fg_pgrp > 0)
			fg = o->fg_pgrp;
	}
	if (!fg || !p->shell_job || me <= 0)
		return;
	fd = own_terminal(&opened);
	if (fd < 0)
		return;
	if (tcgetsid(fd) != getsid(0) || tcgetpgrp(fd) != me) {
		fs_debug(p, "restore: ckpt is not in the foreground of its terminal; the job's group "
			    "%d stays in the background",
			 (int)fg);
	} else if (tcsetpgrp(fd, fg)) {
		fs_warn(p, "restore: cannot put the job's process group %d in the foreground of "
			   "ckpt's terminal: %s",
			(int)fg, strerror(errno));
	} else {
		fs_debug(p, "restore: process group %d is in the foreground of ckpt's terminal",
			 (int)fg);
	}
	if (opened)
		close(fd);
}

int fs_tty_restore_resume(struct fs_priv *p)
{
	shell_job_foreground(p);
	for (size_t i = 0; i < p->nkeeps; i++) {
		struct fs_keep *k = &p->keeps[i];
		struct pty_state st;
		uint32_t index;

		if (k->cls != FS_TTY || k->key >= TTY_EXTRA || k->fd[0] < 0)
			continue;
		index = (uint32_t)k->key;
		pty_merge(p, index, &st);
		if (st.exclusive && st.slave_held) {
			/* the tasks hold the slave: closing this one hangs nothing up */
			int s = open_slave(k->fd[0], index, O_RDWR | O_NONBLOCK);

			if (s < 0 || ioctl(s, TIOCEXCL))
				fs_warn(p, "restore: cannot set exclusive mode on pts %u: %s", index,
					strerror(errno));
			if (s >= 0)
				close(s);
		}
		if (st.locked) {
			int one = 1;

			if (ioctl(k->fd[0], TIOCSPTLCK, &one))
				fs_warn(p, "restore: cannot lock pty %u again: %s", index,
					strerror(errno));
		}
	}
	return 0;
}

const struct fs_class fs_tty_class = {
	.name = "tty",
	.img_name = "fs-ttys.img",
	.desc = &ckpt__fs__tty__descriptor,
	.rec_id = tty_id,
	.dump = tty_dump,
	.restore = tty_restore,
	.restore_in_task = tty_restore_in_task,
	.restore_before_children = tty_restore_before_children,
};
