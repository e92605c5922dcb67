/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Configuration: INI read with inih.  Source: --config FILE, else
 * $CKPT_CONFIG, else /etc/ckpt/ckpt.conf when it exists, else built-in
 * defaults.  One [plugin.NAME] section per plugin with the host keys
 * enabled, optional, path and the plugin's own keys (checked against its
 * schema once the plugin is loaded).  A [ckpt] section holds core keys
 * (plugin_dir, log_level, compress).  Unknown sections and keys are errors.
 */
#ifndef CKPT_CONFIG_H
#define CKPT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include "ckpt-plugin.h"

struct cfg_kv {
	char *key;
	char *value;
	int line;
};

struct cfg_plugin {
	char *name;
	int enabled;  /* -1 unset, 0, 1 */
	int optional; /* -1 unset, 0, 1 */
	char *path;   /* NULL unless set */
	struct cfg_kv *kv; /* the plugin's own keys */
	size_t nkv;
	int order;    /* position of the section in the file */
	int line;     /* line of its [plugin.NAME] header */
	const char *source; /* file it was read from (the config's source) */
};

struct config {
	char *source;         /* file read, or NULL for built-in defaults */
	char *plugin_dir;     /* [ckpt] plugin_dir */
	struct cfg_plugin *plugins;
	size_t nplugins;
	int log_level;        /* [ckpt] log_level as CKPT_LOG_*, -1 unset */
	char *compress;       /* [ckpt] compress: codec of dumped pages, NULL unset */
};

/* Parse path (NULL: search as above).  Errors print one line naming the
 * file, line and key, and return -EINVAL (or -errno for I/O). */
int config_load(struct config *cfg, const char *path);
/* Parse INI text (for tests). */
int config_parse_string(struct config *cfg, const char *text, const char *name);
void config_free(struct config *cfg);
struct cfg_plugin *config_plugin(struct config *cfg, const char *name);
/* Check a plugin's own keys against its schema; -EINVAL with a one-line
 * error for unknown keys or values of the wrong type. */
int config_check_schema(const struct cfg_plugin *p, const struct ckpt_config_key *schema);
/* Value of key for plugin: its config value, else its schema default. */
const char *config_value(const struct config *cfg, const char *plugin, const char *key,
			 const struct ckpt_config_key *schema);
int config_parse_bool(const char *s, bool *out);
/* Set a plugin key from the command line (--plugin-opt NAME.KEY=VALUE and
 * CRIU-style flags such as --tcp-established); checked against the plugin's
 * schema like a key of the file. */
int config_set(struct config *cfg, const char *plugin, const char *key, const char *value);

#endif
