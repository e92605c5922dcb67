/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ckpt-plugin.h — the public SDK for ckpt plugins.
 *
 * A plugin is a shared object that exports exactly one symbol, the const
 * descriptor named by CKPT_PLUGIN_SYMBOL.  Everything the plugin may do with
 * the core goes through the versioned host service table handed to init().
 *
 * ABI rules (see ckpt-plugin(7)):
 *  - the host refuses a plugin whose abi_major differs from its own, or whose
 *    abi_minor is newer than its own;
 *  - every hook table starts with its own version; a hook added later is
 *    appended and the table version bumped; the host calls a hook only when
 *    the table is new enough and the pointer is set;
 *  - new members of the descriptor and of the host table are only appended.
 */
#ifndef CKPT_PLUGIN_H
#define CKPT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKPT_PLUGIN_ABI_MAJOR 1
#define CKPT_PLUGIN_ABI_MINOR 4

/* The one symbol a plugin exports. */
#define CKPT_PLUGIN_SYMBOL "ckpt_plugin"
#define CKPT_PLUGIN_EXPORT \
	__attribute__((visibility("default"))) const struct ckpt_plugin_desc ckpt_plugin

/* Return value of a CLAIM hook that does not own the object. */
#define CKPT_NOT_MINE (-95) /* -ENOTSUP */

enum ckpt_log_level {
	CKPT_LOG_ERROR = 0,
	CKPT_LOG_WARN = 1,
	CKPT_LOG_INFO = 2,
	CKPT_LOG_DEBUG = 3,
};

/* ---- configuration schema ------------------------------------------------ */

enum ckpt_config_type {
	CKPT_CFG_BOOL = 1,
	CKPT_CFG_INT = 2,
	CKPT_CFG_STRING = 3,
};

/* One key a plugin accepts in its [plugin.NAME] section.  Arrays of these
 * end with an entry whose key is NULL.  The keys enabled, optional and path
 * belong to the host and must not be declared. */
struct ckpt_config_key {
	const char *key;
	enum ckpt_config_type type;
	const char *def;  /* default as text, or NULL for none */
	const char *help; /* one line for `ckpt plugins` and ckpt.conf(5) */
};

/* ---- host service table -------------------------------------------------- */

struct ckpt_img; /* an open framed image file, opaque */
struct ProtobufCMessage;
struct ProtobufCMessageDescriptor;

#define CKPT_HOST_VERSION 3

struct ckpt_host {
	uint32_t version; /* CKPT_HOST_VERSION of the host */
	uint32_t abi_major, abi_minor;

	/* Logging; every line gets the plugin's name as prefix. */
	void (*log)(const char *plugin, int level, const char *fmt, ...)
		__attribute__((format(printf, 3, 4)));

	/* The plugin's config value for key (its default when unset), or NULL. */
	const char *(*config_get)(const char *plugin, const char *key);

	/* Framed images of length-prefixed records in the images directory.
	 * type is the protobuf message full name of the records (shown by
	 * `ckpt show`).  create/open return NULL and set errno on failure;
	 * open fails with ENOENT when the image does not exist and with
	 * EBADMSG when its header or type is wrong. */
	struct ckpt_img *(*img_create)(const char *name, const char *type);
	struct ckpt_img *(*img_open)(const char *name, const char *type);
	int (*img_write)(struct ckpt_img *img, const void *rec, size_t len);
	/* 1: *rec (malloc'd, free() it) and *len set; 0: end of image; -errno. */
	int (*img_read)(struct ckpt_img *img, void **rec, size_t *len);
	int (*img_close)(struct ckpt_img *img);

	/* Read memory of a seized task (also unreadable mappings). */
	int (*mem_read)(pid_t pid, uint64_t addr, void *buf, size_t len);

	/* Run one syscall in a seized, stopped task; *ret gets the raw result
	 * (negative errno on failure).  Returns 0 when the syscall ran. */
	int (*inject_syscall)(pid_t tid, long nr, const uint64_t args[6], long *ret);

	/* The images directory being written or read. */
	const char *(*images_dir)(void);

	/* version 2 (ABI 1.1) */
	/* Every record of framed image name, unpacked with d, in a malloc'd
	 * array: free each with protobuf_c_message_free_unpacked(), then the
	 * array.  An image that does not exist has no record.  A damaged
	 * image is logged and gives -EBADMSG. */
	int (*img_load)(const char *name, const struct ProtobufCMessageDescriptor *d,
			struct ProtobufCMessage ***recs, size_t *n);

	/* version 3 (ABI 1.1) */
	/* The processes of the tree being dumped or restored, as pids of the
	 * namespace ckpt runs in, root first; the count (may exceed max). 0
	 * before the tree is known (dump_start) or once it is gone. */
	size_t (*tree_pids)(pid_t *out, size_t max);
	/* Pack a protobuf-c message and append it as one record. */
	int (*img_write_msg)(struct ckpt_img *img, const struct ProtobufCMessage *msg);
};

/* ---- hook tables --------------------------------------------------------- */

/* Tree lifecycle: every hook is BROADCAST (every enabled plugin runs, in
 * config order, then by name), except the namespace hooks of version 3,
 * which are CLAIM.  A non-zero return fails the operation. */
#define CKPT_LIFECYCLE_HOOKS_VERSION 3

struct ckpt_lifecycle_hooks {
	uint32_t version;
	/* Before the tree is seized. */
	int (*dump_start)(void *priv, pid_t root);
	/* Every task of the tree is stopped under ptrace. */
	int (*tree_frozen)(void *priv, pid_t root);
	/* Dump ended, the tree is still stopped; ok is 0 on failure (undo
	 * whatever dump_start did), 1 when the tree is killed next, 2 when it
	 * keeps running (dump -R; since ABI 1.1, earlier hosts passed 1).
	 * On success plugins close their images here. */
	int (*dump_finish)(void *priv, int ok);
	/* Before any restored task exists; plugins read their images. */
	int (*restore_start)(void *priv);
	/* Memory and threads are back, the tree has not run yet. */
	int (*restore_resume)(void *priv, pid_t root);
	/* Restore ended; ok is 0 on failure. */
	int (*restore_finish)(void *priv, int ok);
	/* `ckpt check`: write one line on what works here; 0 usable,
	 * -ENODEV/-ENOTSUP when the plugin can do nothing on this machine. */
	int (*check)(void *priv, char *msg, size_t len);
	/* version 2 (ABI 1.1) */
	/* After the tree was released: ok is 1 when it was killed, 2 when it
	 * runs on (dump -R), 0 when the dump failed and it runs on.  For state
	 * that a running task must finish itself (a GPU driver thread). */
	int (*dump_released)(void *priv, pid_t root, int ok);
	/* version 3 (ABI 1.2) */
	/* CLAIM: the tree's root has a namespace of kind ("mnt", "net",
	 * "cgroup") of its own.  0: this plugin saves it (the tree is stopped;
	 * it may have done so in tree_frozen already); CKPT_NOT_MINE: not this
	 * plugin's.  The dump is refused when no plugin claims it; the claimant
	 * is recorded and asked by restore_namespace.
	 * Since ABI 1.4 (asked of plugins built for 1.4 or later only) root may
	 * also be a member of the tree in another namespace of kind than the
	 * root's, for kinds other than mnt and net (those are made once for the
	 * whole tree): claiming it says the plugin saves such members' own
	 * namespaces too; the dump is refused when nobody does. */
	int (*dump_namespace)(void *priv, pid_t root, const char *kind);
	/* Restore, for the plugin that claimed kind at the dump: create the
	 * namespace again, before any task exists and before any file of the
	 * tree is opened, and return an fd of it (an nsfs file, as
	 * /proc/PID/ns/KIND) in *fd.  The core enters it, opens the tree's
	 * files and creates the tree inside, then goes back to its own.
	 * Called after restore_start.
	 * Since ABI 1.4: 0 with *fd = -1 says the plugin recreates the
	 * namespace itself at its own point of the restore (in restore_start,
	 * or by syscalls it injects in restore_resume) and the core has
	 * nothing to enter; the plugin checks here that its images hold it. */
	int (*restore_namespace)(void *priv, const char *kind, int *fd);
};

/* What the core learned about one file descriptor of a dumped task. */
struct ckpt_fd_info {
	pid_t pid;         /* task owning the fd */
	int fd;            /* its number there */
	int local_fd;      /* the same open file in the dumper (pidfd_getfd) */
	struct stat st;    /* fstat() of it */
	const char *link;  /* readlink of /proc/PID/fd/N */
	unsigned int flags; /* file status flags from fdinfo, O_CLOEXEC removed */
	int64_t pos;       /* file position from fdinfo */
	int mnt_id;        /* mount id from fdinfo */
};

/* File descriptors.  dump is CLAIM: the first plugin that does not return
 * CKPT_NOT_MINE owns the open file; it saves what it needs under obj_id
 * (unique in this dump; an open file shared by several fds is dumped once)
 * and names its resource class in *klass (one of classes[]).  restore is
 * called for the owning class only and returns a new fd for the object. */
#define CKPT_FD_HOOKS_VERSION 3

struct ckpt_fd_hooks {
	uint32_t version;
	const char *const *classes; /* NULL-terminated resource class names */
	int (*dump)(void *priv, const struct ckpt_fd_info *fd, uint32_t obj_id,
		    const char **klass);
	int (*restore)(void *priv, const char *klass, uint32_t obj_id, int *fd);
	/* version 2 (ABI 1.1) */
	/* Called inside the restored task itself, once every fd of the task is
	 * at its number and before its memory is switched, for each fd of a
	 * class of this plugin: for state keyed by fd number (epoll
	 * registrations, fcntl owners).  Runs in a forked copy of ckpt: use
	 * host->log for errors, never stdio (fds 0-2 are the task's). */
	int (*restore_in_task)(void *priv, const char *klass, uint32_t obj_id, int fd);
	/* version 3 (ABI 1.3) */
	/* Called inside the restored task after it joined its session and
	 * process group and before it creates its children, for each fd of a
	 * class of this plugin; fd is where the open file sits at that moment
	 * (not its saved number, which is only in place for restore_in_task).
	 * For state a child inherits from its parent at fork and cannot get
	 * afterwards: a controlling terminal, which only the session leader
	 * can take and each member only inherits.  Same rules as
	 * restore_in_task. */
	int (*restore_before_children)(void *priv, const char *klass, uint32_t obj_id, int fd);
};

/* A file mapping of a dumped task whose file the core cannot simply
 * reopen by path (a memfd, a deleted file, ...). */
struct ckpt_vma_info {
	pid_t pid;          /* task owning the mapping */
	uint64_t start, end; /* addresses */
	uint64_t pgoff;     /* offset in the file, bytes */
	uint32_t prot;      /* PROT_* */
	int shared;         /* MAP_SHARED (1) or MAP_PRIVATE (0) */
	const char *path;   /* the name /proc/PID/maps shows */
	int local_fd;       /* the mapped file, opened through map_files */
	struct stat st;     /* fstat() of it */
};

/* File mappings.  dump is CLAIM: the first plugin that does not return
 * CKPT_NOT_MINE owns the file behind the mapping and saves it (its
 * contents included: the core saves only the private, copy-on-write pages
 * of a MAP_PRIVATE mapping); *obj_id names it (the plugin's own id,
 * unique per file among the plugin's objects of that class, so several
 * mappings and fds of one file can share it).  restore returns an fd of
 * the file to map, opened for reading and, for a writable shared mapping,
 * writing.  Table version 1 appeared with ABI 1.1. */
#define CKPT_VMA_HOOKS_VERSION 1

struct ckpt_vma_hooks {
	uint32_t version;
	const char *const *classes; /* NULL-terminated resource class names */
	int (*dump)(void *priv, const struct ckpt_vma_info *vma, uint32_t *obj_id,
		    const char **klass);
	int (*restore)(void *priv, const char *klass, uint32_t obj_id, int *fd);
};

/* Forward declaration from protobuf-c, so plugins can list the record types
 * of their images for `ckpt show` without this header including it. */
struct ProtobufCMessageDescriptor;

/* ---- the descriptor ------------------------------------------------------ */

struct ckpt_plugin_desc {
	uint32_t abi_major; /* CKPT_PLUGIN_ABI_MAJOR the plugin was built with */
	uint32_t abi_minor; /* CKPT_PLUGIN_ABI_MINOR the plugin was built with */
	const char *name;   /* [a-z0-9_-]+, unique */
	const char *version;
	const char *description;
	const struct ckpt_config_key *config; /* NULL or key==NULL-terminated */

	int (*init)(const struct ckpt_host *host, void **priv);
	void (*fini)(void *priv);

	const struct ckpt_lifecycle_hooks *lifecycle; /* may be NULL */
	const struct ckpt_fd_hooks *fd;               /* may be NULL */

	/* Record types of the images this plugin writes, NULL-terminated. */
	const struct ProtobufCMessageDescriptor *const *image_types;

	/* ABI 1.1: read by the host only when abi_minor >= 1 */
	const struct ckpt_vma_hooks *vma; /* may be NULL */
};

#ifdef __cplusplus
}
#endif
#endif /* CKPT_PLUGIN_H */
