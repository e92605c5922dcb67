/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Plugin host: finds, loads and checks plugins, calls their hooks.
 *
 * Plugin "NAME" is the file ckpt-NAME.so searched in: the [plugin.NAME]
 * path key, $CKPT_PLUGIN_PATH (colon separated), [ckpt] plugin_dir, the
 * build tree's plugins/NAME/ (when ckpt runs from its build tree), and the
 * installed plugin directory.  The enabled set: --plugins=a,b when given,
 * else the config's enabled sections, else every in-tree plugin.  Order:
 * config order, then name.
 */
#ifndef CKPT_PLUGIN_HOST_H
#define CKPT_PLUGIN_HOST_H

#include <stdbool.h>
#include "ckpt-plugin.h"
#include "config.h"

struct plugin {
	const struct ckpt_plugin_desc *desc;
	void *handle;     /* dlopen handle */
	void *priv;       /* from init */
	char *path;       /* file it came from */
	bool optional;    /* a load/init failure is a warning only */
	bool initialized;
	bool used;        /* claimed an fd or created an image during a hook:
			   * the images need it (recorded in the inventory) */
};

extern struct plugin *plugins;
extern size_t nplugins;

/* Load and init the plugins.  only: the --plugins= list (NULL when not
 * given).  Errors name the plugin and what to do; -errno.  cfg (may be
 * NULL) must stay valid until plugins_unload(): plugins read it through
 * the host table's config_get. */
int plugins_load(struct config *cfg, const char *only);
void plugins_unload(void);
struct plugin *plugin_find(const char *name);

/* Name of the plugin whose hook (or init/fini) is running now, else NULL. */
const char *plugins_current(void);

/* True when the table is present, new enough to have member, and the
 * pointer is set:  HOOK_OK(p->desc->fd, 1, dump). */
#define HOOK_OK(tbl, min_version, member) \
	((tbl) && (tbl)->version >= (min_version) && (tbl)->member)

/* BROADCAST lifecycle hooks; stop at the first failure (-errno), except
 * the *_finish ones which run everywhere and return the first error. */
int plugins_dump_start(pid_t root);
int plugins_tree_frozen(pid_t root);
int plugins_dump_finish(int ok);
int plugins_dump_released(pid_t root, int ok);
int plugins_restore_start(void);
int plugins_restore_resume(pid_t root);
int plugins_restore_finish(int ok);

/* CLAIM dispatch for a namespace of kind ("mnt") the tree's root has of
 * its own: *owner saves it.  member: pid is a tree member in another
 * namespace of kind than the root (asked of ABI 1.4 plugins only).
 * -ENOTSUP when no plugin claims it. */
int plugins_dump_namespace(pid_t root, const char *kind, bool member, struct plugin **owner);
/* The namespace plugin saved, created again: an nsfs fd in *fd, or -1 when
 * the plugin made it itself (ABI 1.4) and there is nothing to enter. */
int plugins_restore_namespace(const char *plugin, const char *kind, int *fd);

/* CLAIM dispatch for an fd; on success *owner and *klass name who took it.
 * -ENOTSUP when no plugin claims it. */
int plugins_dump_fd(const struct ckpt_fd_info *fd, uint32_t obj_id,
		    struct plugin **owner, const char **klass);
/* Restore an fd object through the plugin that owns klass. */
int plugins_restore_fd(const char *plugin, const char *klass, uint32_t obj_id, int *fd);

/* CLAIM dispatch for a file mapping the core cannot reopen by path;
 * -ENOTSUP when no plugin claims it. */
int plugins_dump_vma(const struct ckpt_vma_info *vma, struct plugin **owner, const char **klass,
		     uint32_t *obj_id);
int plugins_restore_vma(const char *plugin, const char *klass, uint32_t obj_id, int *fd);

/* Inside the restored task, before it creates its children: the
 * restore_before_children hook of the owner of klass (0 when it has none);
 * fd is where the file sits now. */
int plugins_restore_before_children(const char *plugin, const char *klass, uint32_t obj_id,
				    int fd);
/* Inside the restored task: the restore_in_task hook of the owner of klass
 * (0 when it has none). */
int plugins_restore_in_task(const char *plugin, const char *klass, uint32_t obj_id, int fd);

/* The tree's pids for the host table's tree_pids (the core sets them once
 * known, clears them with n = 0). */
void plugins_set_tree(const pid_t *pids, size_t n);

/* The host service table handed to plugins. */
extern const struct ckpt_host host_table;

/* `ckpt plugins [--json]` */
int plugins_list(bool json);

/* The protobuf descriptor for an image record type, core or plugin. */
const struct ProtobufCMessageDescriptor *plugins_find_image_type(const char *type);

#endif
