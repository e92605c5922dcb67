// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgroup plugin: descriptor, init/fini, config and the lifecycle hooks.
 *
 * Dump: dump_start freezes --freeze-cgroup (freeze.c); tree_frozen lets the
 * group go again once every task is stopped under ptrace, then saves the
 * cgroups of every thread of the tree and the settings of those groups
 * (dump.c) and the tree's cgroup namespaces (ns.c).  dump_finish(0) and dump_released undo the freeze.
 * Restore: restore_start reads cgroup.img and checks it against this host,
 * restore_resume creates groups, makes the namespaces and moves the threads
 * (restore.c, ns.c), restore_finish(0) removes the groups a failed restore made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cgroup.h"

static const struct {
	const char *name;
	enum cg_mode mode;
} modes[] = {
	{ "none", CG_MODE_NONE },   { "ignore", CG_MODE_NONE }, { "props", CG_MODE_PROPS },
	{ "soft", CG_MODE_SOFT },   { "full", CG_MODE_FULL },   { "strict", CG_MODE_STRICT },
};

static char *dup_config(struct cg_priv *p, const char *key)
{
	const char *v = p->host->config_get ? p->host->config_get(CG_NAME, key) : NULL;

	return v && *v ? strdup(v) : NULL;
}

static int read_config(struct cg_priv *p)
{
	const char *v = p->host->config_get ? p->host->config_get(CG_NAME, "manage_cgroups") : NULL;
	bool known = false;

	free(p->freeze_path);
	free(p->cgroup_root);
	p->freeze_path = dup_config(p, "freeze_cgroup");
	p->cgroup_root = dup_config(p, "cgroup_root");
	if (p->cgroup_root) {
		size_t l = strlen(p->cgroup_root);

		while (l > 1 && p->cgroup_root[l - 1] == '/')
			p->cgroup_root[--l] = '\0';
	}
	if (!v || !*v)
		v = "soft";
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcasecmp(v, modes[i].name))
			continue;
		p->mode = modes[i].mode;
		p->mode_name = modes[i].name;
		known = true;
	}
	if (!known) {
		cg_err(p, "unknown --manage-cgroups mode '%s'; use none, props, soft, full or strict", v);
		return -EINVAL;
	}
	return 0;
}

/* ---- init / fini ------------------------------------------------------------ */

static int cg_init(const struct ckpt_host *host, void **priv)
{
	struct cg_priv *p;

	if (!host || host->version < 3 || !host->img_write_msg ||
	    !host->log || !host->img_create || !host->img_write ||
	    !host->img_close || !host->img_load || !host->tree_pids)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->host = host;
	p->mode = CG_MODE_SOFT;
	p->mode_name = "soft";
	pthread_mutex_init(&p->fz.lock, NULL);
	*priv = p;
	return 0;
}

static void cg_fini(void *priv)
{
	struct cg_priv *p = priv;

	if (!p)
		return;
	cg_freeze_release(p);
	cg_restore_cleanup(p, false);
	pthread_mutex_destroy(&p->fz.lock);
	free(p->freeze_path);
	free(p->cgroup_root);
	free(p);
}

/* ---- lifecycle ----------------------------------------------------------------- */

static int cg_dump_start(void *priv, pid_t root)
{
	struct cg_priv *p = priv;
	int ret = read_config(p);

	if (ret)
		return ret;
	return cg_freeze_start(p, root);
}

static int cg_tree_frozen(void *priv, pid_t root)
{
	struct cg_priv *p = priv;
	int ret;

	(void)root;
	ret = cg_freeze_tree_stopped(p);
	if (ret)
		return ret;
	if (p->mode == CG_MODE_NONE)
		cg_debug(p, "dump: --manage-cgroups=none: cgroups are not saved");
	else
		ret = cg_dump(p);
	/* namespaces are saved in every mode: none makes them where the tasks land */
	if (!ret)
		ret = cg_dump_ns(p);
	return ret;
}

static int cg_dump_finish(void *priv, int ok)
{
	struct cg_priv *p = priv;

	/* a failed dump: thawed before the tree runs again */
	if (!ok)
		cg_freeze_tree_stopped(p);
	return 0;
}

static int cg_dump_released(void *priv, pid_t root, int ok)
{
	(void)root;
	(void)ok;
	cg_freeze_release(priv);
	return 0;
}

static int cg_restore_start(void *priv)
{
	struct cg_priv *p = priv;
	int ret;

	cg_restore_cleanup(p, false);
	ret = read_config(p);
	if (!ret)
		ret = cg_restore_prepare(p);
	if (!ret)
		ret = cg_ns_prepare(p);
	if (ret)
		cg_restore_cleanup(p, false);
	return ret;
}

static int cg_restore_resume_hook(void *priv, pid_t root)
{
	(void)root;
	return cg_restore_resume(priv);
}

static int cg_restore_finish(void *priv, int ok)
{
	cg_restore_cleanup(priv, !ok);
	return 0;
}

static int cg_dump_namespace_hook(void *priv, pid_t pid, const char *kind)
{
	return cg_dump_namespace(priv, pid, kind);
}

static int cg_restore_namespace_hook(void *priv, const char *kind, int *fd)
{
	return cg_restore_namespace(priv, kind, fd);
}

static int cg_check(void *priv, char *msg, size_t len)
{
	struct cg_mounts ms;
	size_t off = 0, nv1 = 0;
	const struct cg_mount *v2 = NULL;

	(void)priv;
	if (cg_mounts_read(&ms)) {
		snprintf(msg, len, "cannot read /proc/self/mountinfo");
		return -ENODEV;
	}
	off += (size_t)snprintf(msg, len, "v1:");
	for (size_t i = 0; i < ms.n; i++) {
		const char *base;

		if (ms.v[i].v2) {
			if (!v2)
				v2 = &ms.v[i];
			continue;
		}
		base = strrchr(ms.v[i].mnt, '/');
		nv1++;
		if (off < len)
			off += (size_t)snprintf(msg + off, len - off, " %s", base ? base + 1 : ms.v[i].mnt);
	}
	if (!nv1 && off < len)
		off += (size_t)snprintf(msg + off, len - off, " none");
	if (off < len) {
		char *ctrls = NULL;

		if (v2)
			cg_read_at(v2->mnt, "cgroup.subtree_control", &ctrls);
		off += (size_t)snprintf(msg + off, len - off, "; cgroup2: %s%s%s%s", v2 ? v2->mnt : "none",
					v2 ? " (enabled: " : "", v2 ? (ctrls && *ctrls ? ctrls : "none") : "",
					v2 ? ")" : "");
		free(ctrls);
	}
	if (off < len)
		snprintf(msg + off, len - off, "; --freeze-cgroup: v1 freezer and cgroup2");
	cg_mounts_free(&ms);
	return nv1 || v2 ? 0 : -ENODEV;
}

/* ---- descriptor ------------------------------------------------------------------ */

static const struct ckpt_config_key cg_config[] = {
	{
		.key = "manage_cgroups",
		.type = CKPT_CFG_STRING,
		.def = "soft",
		.help = "none, props, soft, full or strict: which groups a restore creates and "
			"which settings it writes; --manage-cgroups[=MODE]",
	},
	{
		.key = "freeze_cgroup",
		.type = CKPT_CFG_STRING,
		.def = NULL,
		.help = "cgroup directory (v1 freezer or cgroup2) frozen while the tree is seized; "
			"--freeze-cgroup PATH",
	},
	{
		.key = "cgroup_root",
		.type = CKPT_CFG_STRING,
		.def = NULL,
		.help = "restore: put the saved groups under this path of every hierarchy "
			"(/a/b becomes PATH/a/b); --cgroup-root PATH",
	},
	{ .key = NULL },
};

static const struct ckpt_lifecycle_hooks cg_lifecycle = {
	.version = CKPT_LIFECYCLE_HOOKS_VERSION,
	.dump_start = cg_dump_start,
	.tree_frozen = cg_tree_frozen,
	.dump_finish = cg_dump_finish,
	.restore_start = cg_restore_start,
	.restore_resume = cg_restore_resume_hook,
	.restore_finish = cg_restore_finish,
	.check = cg_check,
	.dump_released = cg_dump_released,
	.dump_namespace = cg_dump_namespace_hook,
	.restore_namespace = cg_restore_namespace_hook,
};

static const ProtobufCMessageDescriptor *const cg_image_types[] = {
	&ckpt__cgroup__group__descriptor,
	&ckpt__cgroup__namespace__descriptor,
	NULL,
};

CKPT_PLUGIN_EXPORT = {
	.abi_major = CKPT_PLUGIN_ABI_MAJOR,
	.abi_minor = CKPT_PLUGIN_ABI_MINOR,
	.name = CG_NAME,
	.version = "0.1.0",
	.description = "cgroup memberships (v1 and cgroup2, per thread), group settings, "
		       "cgroup namespaces, --freeze-cgroup",
	.config = cg_config,
	.init = cg_init,
	.fini = cg_fini,
	.lifecycle = &cg_lifecycle,
	.image_types = cg_image_types,
};
