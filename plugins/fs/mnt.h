/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * fs plugin — the tree's own mount namespace (mnt.c) and the files of its
 * tmpfs mounts (mnt_tmpfs.c).
 */
#ifndef CKPT_FS_MNT_H
#define CKPT_FS_MNT_H

#include "fs.h"
#include "mnt.pb-c.h"

#define MNT_IMG "fs-mounts.img"

/* lifecycle hooks: namespace kind "mnt" */
int mnt_dump_namespace(struct fs_priv *p, pid_t root);
int mnt_restore_namespace(struct fs_priv *p, int *fd);
/* restore_resume: the mounts that needed the tree's pid namespace (a proc
 * of its own when the root is init of one); restore_finish: forget */
int mnt_restore_resume(struct fs_priv *p);
void mnt_restore_free(struct fs_priv *p);

/* Save every file under rootfd (the root of a detached copy of the mount)
 * to image img_name; what names the mount in errors.  0 or -errno after
 * an error was logged. */
int tmpfs_save(struct fs_priv *p, int rootfd, const char *img_name, const char *what);
/* Create the saved files under rootfd (the root of the new, empty tmpfs). */
int tmpfs_fill(struct fs_priv *p, int rootfd, const char *img_name, const char *what);

#endif
