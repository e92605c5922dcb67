/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * cgroup plugin — private declarations shared by its files.
 *
 *   cgroup.c   descriptor, init/fini, config, lifecycle hooks, check
 *   hier.c     cgroup mounts (/proc/self/mountinfo), /proc/PID/cgroup lines,
 *              small file helpers
 *   dump.c     tree_frozen: every thread's groups and the groups' settings,
 *              written to cgroup.img
 *   restore.c  restore_start: checks against this host; restore_resume:
 *              create groups, write settings, move every thread
 *   ns.c       cgroup namespaces: their roots at dump (cgroup-ns.img); at
 *              restore unshared in one task moved to the root groups, joined
 *              by the other members (injected syscalls)
 *   freeze.c   --freeze-cgroup: freeze before the seize, thaw once every task
 *              is stopped under ptrace (v2 directly; v1 through a helper
 *              thread that lets each task out as ckpt seizes it)
 */
#ifndef CKPT_CGROUP_H
#define CKPT_CGROUP_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <protobuf-c/protobuf-c.h>

#include "ckpt-plugin.h"
#include "cgroup.pb-c.h"

#define CG_NAME "cgroup"
#define CG_IMG "cgroup.img"
#define CG_NS_IMG "cgroup-ns.img"

enum cg_mode {
	CG_MODE_NONE = 0,
	CG_MODE_PROPS,
	CG_MODE_SOFT,
	CG_MODE_FULL,
	CG_MODE_STRICT,
};

/* One cgroup mount of this host. */
struct cg_mount {
	bool v2;
	char *opts;  /* v1: super options ("rw,cpu,cpuacct"); v2: NULL */
	char *mnt;   /* mount point */
	char *root;  /* the mount's root inside the hierarchy ("/" usually) */
};

struct cg_mounts {
	struct cg_mount *v;
	size_t n;
};

/* One line of /proc/PID/task/TID/cgroup. */
struct cg_line {
	unsigned int id;
	char *ctrls; /* "" for cgroup2 */
	char *path;
};

struct cg_lines {
	struct cg_line *v;
	size_t n;
};

/* A group while dumping (collected from the threads' lines). */
struct cg_dgroup {
	char *ctrls, *path;
	unsigned int id;
	Ckpt__Cgroup__Member *members;
	size_t nmembers, cap;
};

/* A thread moved out of the frozen v1 freezer group while it is seized. */
struct cg_moved {
	pid_t tid;
	char *dir; /* the freezer group it came from (filesystem path) */
};

struct cg_freeze {
	bool active;        /* the group was frozen by dump_start */
	bool v2;
	bool was_frozen;    /* it was frozen before the dump */
	char *dir;          /* filesystem path of the group */
	char *pen;          /* v1: the freezer hierarchy's root (always thawed) */
	/* v1 helper thread */
	pthread_t thread;
	bool thread_running;
	pthread_mutex_t lock;
	int stop;           /* atomic: ask the helper to end */
	struct cg_moved *moved;
	size_t nmoved, moved_cap;
	int helper_err;     /* first error of the helper (errno), reported later */
	pid_t helper_err_tid;
};

/* A group of the image at restore, resolved on this host. */
struct cg_rgroup {
	const Ckpt__Cgroup__Group *g;
	const struct cg_mount *m; /* NULL: hierarchy skipped */
	char *target;             /* the path in the hierarchy after --cgroup-root */
	char *dir;                /* filesystem path */
	bool existed;             /* the directory was there at restore_start */
};

struct cg_priv {
	const struct ckpt_host *host;
	enum cg_mode mode;
	const char *mode_name;
	char *freeze_path;
	char *cgroup_root;
	struct cg_freeze fz;

	/* restore */
	ProtobufCMessage **recs;
	size_t nrecs;
	ProtobufCMessage **nsrecs; /* cgroup-ns.img */
	size_t nnsrecs;
	struct cg_rgroup *rg;
	size_t nrg;
	struct cg_mounts mounts;
	char **created; /* directories made by this restore, in creation order */
	size_t ncreated, created_cap;
};

#define cg_log(p, level, ...) ((p)->host->log(CG_NAME, (level), __VA_ARGS__))
#define cg_err(p, ...) cg_log(p, CKPT_LOG_ERROR, __VA_ARGS__)
#define cg_warn(p, ...) cg_log(p, CKPT_LOG_WARN, __VA_ARGS__)
#define cg_info(p, ...) cg_log(p, CKPT_LOG_INFO, __VA_ARGS__)
#define cg_debug(p, ...) cg_log(p, CKPT_LOG_DEBUG, __VA_ARGS__)

/* hier.c */
int cg_mounts_read(struct cg_mounts *ms);
void cg_mounts_free(struct cg_mounts *ms);
/* The mount of a hierarchy named as in /proc/PID/cgroup, or NULL. */
const struct cg_mount *cg_mount_find(const struct cg_mounts *ms, const char *ctrls);
/* Filesystem path of group path in mount m (malloc'd), NULL when the
 * group is outside the part of the hierarchy the mount shows. */
char *cg_dir_of(const struct cg_mount *m, const char *path);
int cg_lines_read(const char *file, struct cg_lines *out);
void cg_lines_free(struct cg_lines *l);
bool cg_has_ctrl(const char *list, const char *ctrl);
/* Read a small file; trailing newlines removed.  0 or -errno. */
int cg_read_file(const char *path, char **out);
int cg_read_at(const char *dir, const char *name, char **out);
/* Write text in one write(2).  0 or -errno. */
int cg_write_at(const char *dir, const char *name, const char *text);
bool cg_exists_at(const char *dir, const char *name);
char *cg_strdup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The innermost id of NSpid in /proc/PID/task/TID/status, or -errno. */
pid_t cg_ns_tid(pid_t pid, pid_t tid);
/* The threads of pid (sorted), or -errno. */
int cg_list_tids(pid_t pid, pid_t **tids, size_t *n);
/* pids (or tids) listed in a cgroup file, -errno */
int cg_read_pids(const char *dir, const char *name, pid_t **pids, size_t *n);
/* Path of a group joined with a child name ("/" + "a" = "/a"). */
char *cg_join(const char *parent, const char *child);

/* A restored thread: its ids in the image and here. */
struct cg_tmap_ent {
	pid_t vpid, vtid; /* as in the image */
	pid_t hpid, htid; /* here */
};

struct cg_tmap {
	struct cg_tmap_ent *v;
	size_t n, cap;
};

/* dump.c */
int cg_dump(struct cg_priv *p);

/* restore.c */
int cg_restore_prepare(struct cg_priv *p);
int cg_restore_resume(struct cg_priv *p);
void cg_restore_cleanup(struct cg_priv *p, bool failed);
/* Every thread of the restored tree (free m->v). */
int cg_tmap_build(struct cg_priv *p, struct cg_tmap *m);
const struct cg_tmap_ent *cg_tmap_find(const struct cg_tmap *m, pid_t vpid, pid_t vtid);
/* The group of the image for hierarchy ctrls and path, or NULL. */
const struct cg_rgroup *cg_rgroup_find(const struct cg_priv *p, const char *ctrls,
				       const char *path);

/* ns.c */
int cg_dump_ns(struct cg_priv *p);
int cg_dump_namespace(struct cg_priv *p, pid_t pid, const char *kind);
int cg_restore_namespace(struct cg_priv *p, const char *kind, int *fd);
int cg_ns_prepare(struct cg_priv *p);
/* After the groups exist, before the threads are moved into them. */
int cg_ns_restore(struct cg_priv *p, const struct cg_tmap *m);
void cg_ns_cleanup(struct cg_priv *p);

/* freeze.c */
int cg_freeze_start(struct cg_priv *p, pid_t root);
/* Every task is stopped under ptrace: let the group go. */
int cg_freeze_tree_stopped(struct cg_priv *p);
/* Undo whatever is left (failed dump, the end of any dump). */
void cg_freeze_release(struct cg_priv *p);

#endif
