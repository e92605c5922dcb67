/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * fs plugin — private declarations shared by its files.
 *
 * fs.c holds the descriptor, init/fini, lifecycle hooks and the fd hook
 * dispatch; each resource class (regfile.c, chrdev.c, fifo.c, pipe.c,
 * eventfd.c, signalfd.c, timerfd.c, epoll.c, inotify.c, memfd.c, tty.c,
 * ghost.c, fanotify.c)
 * supplies a struct fs_class with its dump and restore functions.  Records of a class
 * go to one framed image, created at the first object of the class.
 */
#ifndef CKPT_FS_H
#define CKPT_FS_H

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <protobuf-c/protobuf-c.h>

#include "ckpt-plugin.h"
#include "fs.pb-c.h"

#define FS_NAME "fs"

enum fs_class_id {
	FS_REGFILE = 0,
	FS_CHRDEV,
	FS_FIFO,
	FS_PIPE,
	FS_EVENTFD,
	FS_SIGNALFD,
	FS_TIMERFD,
	FS_EPOLL,
	FS_INOTIFY,
	FS_MEMFD,
	FS_TTY,
	FS_GHOST,
	FS_FANOTIFY,
	FS_NCLASSES,
};

/* Records of one class loaded at restore_start, sorted by id. */
struct fs_table {
	ProtobufCMessage **recs;
	size_t n;
};

/* A FIFO held open (O_RDWR) by the restore so that write-only ends can be
 * opened without a reader and the pipe (and its size) outlives the moment
 * between opening an end and handing it to its task. */
struct fs_fifo_hold {
	dev_t dev;
	ino_t ino;
	int fd;
};

/* An object seen during one dump: (class, key), e.g. a pipe inode whose
 * queued bytes were saved already. */
struct fs_seen {
	int cls;
	uint64_t key, key2;
};

/* fds the restore keeps for an object until every fd of it is handed out
 * (the other end of a pipe, the memfd that later opens of it reopen), keyed
 * by (class, key).  Closed at restore_resume / restore_finish. */
struct fs_keep {
	int cls;
	uint64_t key;
	int fd[2];
	bool used[2];
};

/* Which sides (bit 0 read, bit 1 write) of pipe ino the dumped tree holds. */
struct fs_pipe_sides {
	uint64_t ino;
	int sides;
};

/* locks.c: a restored inode whose POSIX locks of owners that map it are
 * taken at restore_resume; locks point into the restore tables. */
struct fs_late_locks {
	dev_t dev;
	ino_t ino;
	Ckpt__Fs__FileLock *const *locks;
	size_t n;
	char *what;
};

struct fs_tty_scan; /* tty.c: the terminals the dumped tree holds */
struct mnt_restore;

struct fs_priv {
	const struct ckpt_host *host;
	bool skip_file_check; /* also file_validation = none */
	const char *file_validation; /* the config value (filesize, none) */
	bool shell_job; /* terminals outside the tree are the restoring shell's */

	/* dump */
	struct ckpt_img *img[FS_NCLASSES];
	struct ckpt_img *memfd_data; /* fs-memfd-data.img */
	struct ckpt_img *ghost_data; /* fs-ghost-data.img */
	uint32_t vma_ids;            /* ids given to memfd mappings */
	struct fs_seen *seen;
	size_t nseen, seen_cap;
	pid_t tree_root;   /* from tree_frozen */
	pid_t *tree_pids;  /* every process of the dumped tree, when asked */
	size_t ntree_pids;
	/* pipe.c: which sides of each pipe the tree holds, when asked */
	struct fs_pipe_sides *pipe_sides;
	size_t npipe_sides;
	bool pipe_sides_known;
	struct fs_tty_scan *tty_scan;

	/* restore */
	struct fs_table tables[FS_NCLASSES];
	struct fs_fifo_hold *holds;
	size_t nholds, holds_cap;
	struct fs_keep *keeps;
	size_t nkeeps, keeps_cap;
	struct mnt_restore *mnt; /* mnt.c: the tree's mount namespace being made */
	/* restore_in_task: objects already set up in this task */
	uint32_t *in_task_done;
	size_t nin_task_done, in_task_cap;
	struct fs_late_locks *late; /* locks.c, cleared with the tables */
	size_t nlate;
};

struct fs_class {
	const char *name;     /* resource class, as in fdinfo-PID.img */
	const char *img_name; /* its image */
	const ProtobufCMessageDescriptor *desc;
	/* obj_id of a record of this class */
	uint32_t (*rec_id)(const ProtobufCMessage *rec);
	/* 0 saved (through fs_save), CKPT_NOT_MINE, or -errno after an error
	 * was logged */
	int (*dump)(struct fs_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id);
	/* 0 with a new fd in *fd, or -errno after an error was logged */
	int (*restore)(struct fs_priv *p, const ProtobufCMessage *rec, int *fd);
	/* optional: inside the restored task, fd at its number (see
	 * ckpt_fd_hooks.restore_in_task); called once per object */
	int (*restore_in_task)(struct fs_priv *p, const ProtobufCMessage *rec, int fd);
	/* optional: inside the restored task before it creates its children,
	 * fd where the file sits then (see
	 * ckpt_fd_hooks.restore_before_children); once per fd */
	int (*restore_before_children)(struct fs_priv *p, const ProtobufCMessage *rec, int fd);
	/* optional: at dump_finish, before the class image is closed */
	int (*dump_finish)(struct fs_priv *p, int ok);
};

extern const struct fs_class fs_regfile_class;
extern const struct fs_class fs_chrdev_class;
extern const struct fs_class fs_fifo_class;
extern const struct fs_class fs_pipe_class;
extern const struct fs_class fs_eventfd_class;
extern const struct fs_class fs_signalfd_class;
extern const struct fs_class fs_timerfd_class;
extern const struct fs_class fs_epoll_class;
extern const struct fs_class fs_inotify_class;
extern const struct fs_class fs_memfd_class;
extern const struct fs_class fs_tty_class;
extern const struct fs_class fs_ghost_class;
extern const struct fs_class fs_fanotify_class;

/* tty.c: true when fd is a terminal (claimed by class "tty"); forget what
 * a dump learned; at restore_resume, lock the ptys again and set their
 * exclusive mode (before the kept masters are closed). */
bool fs_tty_claims(struct fs_priv *p, const struct ckpt_fd_info *fd);
void fs_tty_forget(struct fs_priv *p);
int fs_tty_restore_resume(struct fs_priv *p);
/* memfd.c: the memfd behind a mapping (vma hooks) */
int memfd_dump_vma(struct fs_priv *p, const struct ckpt_vma_info *v, uint32_t *obj_id);
/* inotify.c: the path of an inode from its file handle (see there); the
 * value of a hex digit or -1. */
int fs_fhandle_path(struct fs_priv *p, const char *what, const char *obj, unsigned int sdev,
		    uint64_t ino, int htype, const uint8_t *h, size_t hlen, char **path,
		    bool *is_link);
int fs_hexval(char c);
/* inotify.c: a mount of the filesystem with kernel dev sdev (its root's
 * preferred), opened for open_by_handle_at(); or -errno. */
int fs_open_mount_of(unsigned int sdev);
/* locks.c: the flock, OFD and POSIX locks on the file behind local_fd
 * (malloc'd array, free with fs_locks_free); take the flock/OFD ones on a
 * restored open file; inside the restored task, its POSIX ones.  0 or
 * -errno after an error was logged naming what. */
int fs_locks_dump(struct fs_priv *p, int local_fd, const struct stat *st, const char *what,
		  Ckpt__Fs__FileLock ***arr, size_t *n);
void fs_locks_free(Ckpt__Fs__FileLock **arr, size_t n);
int fs_locks_restore(struct fs_priv *p, int fd, Ckpt__Fs__FileLock *const *l, size_t n,
		     const char *what);
int fs_locks_restore_in_task(struct fs_priv *p, int fd, Ckpt__Fs__FileLock *const *l, size_t n,
			     const char *what);
/* locks.c: at restore_resume, the POSIX locks of owners that map their
 * file (flagged late at dump), taken by syscall injection into the stopped
 * owner; forget what fs_locks_restore remembered for that.  0 or -errno
 * after an error was logged. */
int fs_locks_restore_late(struct fs_priv *p);
void fs_locks_forget(struct fs_priv *p);
/* ghost.c: a regular file unlinked while open (link names it deleted);
 * the deleted file behind a mapping (vma hooks) */
bool fs_is_ghost(const char *link, const struct stat *st);
int ghost_dump_vma(struct fs_priv *p, const struct ckpt_vma_info *v, uint32_t *obj_id);

/* Write one record of class cls to its image (created on first use). */
int fs_save(struct fs_priv *p, enum fs_class_id cls, const ProtobufCMessage *msg);

/* Logging through the host; messages carry no trailing newline. */
#define fs_log(p, level, ...) ((p)->host->log(FS_NAME, (level), __VA_ARGS__))
#define fs_err(p, ...) fs_log(p, CKPT_LOG_ERROR, __VA_ARGS__)
#define fs_warn(p, ...) fs_log(p, CKPT_LOG_WARN, __VA_ARGS__)
#define fs_info(p, ...) fs_log(p, CKPT_LOG_INFO, __VA_ARGS__)
#define fs_debug(p, ...) fs_log(p, CKPT_LOG_DEBUG, __VA_ARGS__)

/* -e for a hook's return value; never CKPT_NOT_MINE (-ENOTSUP), which
 * would tell the host "not mine" instead of "failed". */
static inline int fs_errno(int e)
{
	if (e <= 0)
		e = EIO;
	if (-e == CKPT_NOT_MINE)
		e = EIO;
	return -e;
}

/* Flags that may be given to open() at restore: the access mode and the
 * status flags; never O_CREAT, O_EXCL, O_TRUNC, O_DIRECTORY, O_TMPFILE or
 * kernel-internal bits.  O_ASYNC is set afterwards with F_SETFL. */
#define FS_OPEN_FLAGS                                                         \
	(O_ACCMODE | O_APPEND | O_NONBLOCK | O_DIRECT | O_NOATIME | O_SYNC |   \
	 O_DSYNC | O_LARGEFILE | O_NOFOLLOW)

/* open() flags for a saved flags word (O_CLOEXEC added: the host installs
 * the fd in its task itself). */
unsigned int fs_open_flags(unsigned int saved);
/* After open(): apply what open() cannot (O_ASYNC).  0 or -errno. */
int fs_fixup_flags(struct fs_priv *p, int fd, unsigned int saved, const char *path);

/* Set the status flags F_SETFL can change (O_APPEND, O_ASYNC, O_NONBLOCK,
 * O_NOATIME, O_DIRECT) to the saved ones.  0 or -errno after an error was
 * logged naming what. */
int fs_set_fl(struct fs_priv *p, int fd, unsigned int saved, const char *what);

/* /proc/self/fdinfo/FD into a malloc'd, NUL-terminated buffer; 0 or -errno
 * after an error was logged naming what. */
int fs_read_fdinfo(struct fs_priv *p, int fd, const char *what, char **buf);
/* Whether record m of a contents image belongs to the file named by key;
 * if so, where its bytes go. */
typedef bool (*fs_run_match)(const ProtobufCMessage *m, const void *key, uint64_t *offset,
			     const ProtobufCBinaryData **data);
/* Restore: write every saved run of one file (the records of img_name that
 * match() gives to key) back into fd, each checked against the file's size;
 * what names the file in errors. */
int fs_fill_runs(struct fs_priv *p, const char *img_name, const ProtobufCMessageDescriptor *desc,
		 fs_run_match match, const void *key, int fd, uint64_t size, const char *what);

/* During a dump: *seen true when (cls, key, key2) was seen before;
 * remembers it.  0 or -ENOMEM after an error was logged. */
int fs_seen_once(struct fs_priv *p, int cls, uint64_t key, uint64_t key2, bool *seen);

/* During a dump: the processes of the dumped tree (all stopped, so the
 * set is final); 0 or -errno after an error was logged. */
int fs_tree_pids(struct fs_priv *p, const pid_t **pids, size_t *n);

/* The pid of a process as seen in its own pid namespace (NSpid), which is
 * its getpid() after a restore; pid itself when that cannot be read. */
pid_t fs_ns_pid(pid_t pid);

/* During a restore: the kept fds of (cls, key), or NULL. */
struct fs_keep *fs_keep_find(struct fs_priv *p, int cls, uint64_t key);
/* Keep fd0/fd1 (either may be -1) for (cls, key); takes them over (closes
 * them on failure).  NULL after an error was logged. */
struct fs_keep *fs_keep_add(struct fs_priv *p, int cls, uint64_t key, int fd0, int fd1);

/* Open the open file behind fd again through /proc/self/fd with flags
 * (O_CLOEXEC added): a new open file of the same inode. */
int fs_reopen(int fd, int flags);

/* The queued bytes of a pipe or fifo without consuming them (tee into a
 * scratch pipe).  *data is malloc'd (NULL when empty), *psz gets
 * F_GETPIPE_SZ.  0 or -errno after an error was logged naming what. */
int fs_pipe_peek(struct fs_priv *p, const struct ckpt_fd_info *fd, const char *what,
		 uint8_t **data, size_t *len, int *psz);
/* Write len bytes into a pipe through its write side wfd (set O_NONBLOCK
 * first: they must fit).  0 or -errno after an error was logged. */
int fs_pipe_fill(struct fs_priv *p, int wfd, const uint8_t *data, size_t len, const char *what);

/* Find the record of class cls with obj_id id in the restore tables. */
const ProtobufCMessage *fs_find_rec(struct fs_priv *p, enum fs_class_id cls, uint32_t id);

/* True when link names an unlinked file (" (deleted)" suffix and the name
 * no longer leads to st).  *len gets the length of the path without the
 * suffix. */
bool fs_link_deleted(const char *link, const struct stat *st, size_t *len);

#endif
