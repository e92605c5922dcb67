/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * fs plugin — private declarations shared by its files.
 *
 * fs.c holds the descriptor, init/fini, lifecycle hooks and the fd hook
 * dispatch; each resource class (regfile.c, chrdev.c, fifo.c) supplies a
 * struct fs_class with its dump and restore functions.  Records of a class
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

struct fs_priv {
	const struct ckpt_host *host;
	bool skip_file_check;

	/* dump */
	struct ckpt_img *img[FS_NCLASSES];

	/* restore */
	struct fs_table tables[FS_NCLASSES];
	struct fs_fifo_hold *holds;
	size_t nholds, holds_cap;
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
};

extern const struct fs_class fs_regfile_class;
extern const struct fs_class fs_chrdev_class;
extern const struct fs_class fs_fifo_class;

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

/* True when link names an unlinked file (" (deleted)" suffix and the name
 * no longer leads to st).  *len gets the length of the path without the
 * suffix. */
bool fs_link_deleted(const char *link, const struct stat *st, size_t *len);

#endif
