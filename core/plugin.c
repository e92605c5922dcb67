/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Plugin host: finds, loads and checks plugins, dispatches their hooks and
 * serves them the host table.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin.h"
#include "image.h"
#include "inject.h"
#include "log.h"
#include "ptrace.h"

#include "core.pb-c.h"
#include "fdinfo.pb-c.h"
#include "inventory.pb-c.h"
#include "ipc.pb-c.h"
#include "mm.pb-c.h"
#include "pagemap.pb-c.h"
#include "pagecodec.pb-c.h"
#include "pstree.pb-c.h"

#ifndef CKPT_BUILD_PLUGIN_DIR
#error "CKPT_BUILD_PLUGIN_DIR must be defined by the build"
#endif
#ifndef CKPT_INSTALL_PLUGIN_DIR
#error "CKPT_INSTALL_PLUGIN_DIR must be defined by the build"
#endif

#define PFX "plugin"

struct plugin *plugins;
size_t nplugins;

static const struct config *loaded_cfg;
static struct plugin *current; /* whose hook runs now */

const char *plugins_current(void)
{
	return current ? current->desc->name : NULL;
}

/* Set when a plugin logs an error: the host then adds its own context at
 * info level only, so a failure reads as one line on stderr. */
static bool plugin_said_error;

static struct plugin *enter(struct plugin *p)
{
	struct plugin *prev = current;

	plugin_said_error = false;
	current = p;
	return prev;
}

static void leave(struct plugin *prev)
{
	current = prev;
}

struct plugin *plugin_find(const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < nplugins; i++)
		if (!strcmp(plugins[i].desc->name, name))
			return &plugins[i];
	return NULL;
}

/* ---- host service table -------------------------------------------------- */

static void host_log(const char *plugin, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Error from the host about a failed hook, unless the plugin said why. */
#define hook_err(...) log_msg(PFX, plugin_said_error ? CKPT_LOG_INFO : CKPT_LOG_ERROR, __VA_ARGS__)

static void host_log(const char *plugin, int level, const char *fmt, ...)
{
	char prefix[96];
	va_list ap;

	if (level <= CKPT_LOG_ERROR)
		plugin_said_error = true;

	if (!plugin)
		plugin = current ? current->desc->name : "?";
	snprintf(prefix, sizeof(prefix), "plugin:%s", plugin);
	if (level < CKPT_LOG_ERROR)
		level = CKPT_LOG_ERROR;
	if (level > CKPT_LOG_DEBUG)
		level = CKPT_LOG_DEBUG;
	va_start(ap, fmt);
	log_vmsg(prefix, level, fmt, ap);
	va_end(ap);
}

static const char *host_config_get(const char *plugin, const char *key)
{
	const struct plugin *p = plugin_find(plugin);

	/* during init the plugin is not in the table yet */
	if (!p && current && plugin && !strcmp(current->desc->name, plugin))
		p = current;
	return config_value(loaded_cfg, plugin, key, p ? p->desc->config : NULL);
}

static struct ckpt_img *host_img_create(const char *name, const char *type)
{
	struct ckpt_img *img = img_create(name, type);

	if (img && current)
		current->used = true;
	return img;
}

static const char *host_images_dir(void)
{
	return img_store_dir();
}

static size_t host_tree_pids(pid_t *out, size_t max);

static int host_img_load(const char *name, const struct ProtobufCMessageDescriptor *d,
			 struct ProtobufCMessage ***recs, size_t *n)
{
	return img_load_all(name, d, recs, n, true);
}

const struct ckpt_host host_table = {
	.version = CKPT_HOST_VERSION,
	.abi_major = CKPT_PLUGIN_ABI_MAJOR,
	.abi_minor = CKPT_PLUGIN_ABI_MINOR,
	.log = host_log,
	.config_get = host_config_get,
	.img_create = host_img_create,
	.img_open = img_open,
	.img_write = img_write,
	.img_read = img_read,
	.img_close = img_close,
	.mem_read = task_mem_read,
	.inject_syscall = inject_syscall,
	.images_dir = host_images_dir,
	.img_load = host_img_load,
	.tree_pids = host_tree_pids,
	.img_write_msg = img_write_msg,
};

/* ---- finding plugins ----------------------------------------------------- */

struct strv {
	char **v;
	size_t n;
};

static int strv_add(struct strv *sv, const char *s, size_t len)
{
	char **nv;
	size_t i;

	for (i = 0; i < sv->n; i++)
		if (strlen(sv->v[i]) == len && !strncmp(sv->v[i], s, len))
			return 0;
	nv = realloc(sv->v, (sv->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	sv->v = nv;
	nv[sv->n] = strndup(s, len);
	if (!nv[sv->n])
		return -ENOMEM;
	sv->n++;
	return 0;
}

static void strv_free(struct strv *sv)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = 0;
}

static bool valid_name(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '-'))
			return false;
	return true;
}

static bool is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* True when this process is a binary of the build tree (tests included). */
static bool in_build_tree(void)
{
	char exe[PATH_MAX], root[PATH_MAX], *slash, *real;
	ssize_t n;
	size_t len;
	bool ret;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	snprintf(root, sizeof(root), "%s", CKPT_BUILD_PLUGIN_DIR);
	slash = strrchr(root, '/');
	if (!slash || slash == root)
		return false;
	*slash = '\0';
	real = realpath(root, NULL);
	if (!real)
		return false;
	len = strlen(real);
	ret = !strncmp(exe, real, len) && exe[len] == '/';
	free(real);
	return ret;
}

/* The directories searched, in order, after a [plugin.NAME] path. */
static int search_dirs(const struct config *cfg, struct strv *dirs)
{
	const char *env = getenv("CKPT_PLUGIN_PATH");
	int ret;

	while (env && *env) {
		const char *colon = strchr(env, ':');
		size_t len = colon ? (size_t)(colon - env) : strlen(env);

		if (len) {
			ret = strv_add(dirs, env, len);
			if (ret)
				return ret;
		}
		env = colon ? colon + 1 : NULL;
	}
	if (cfg && cfg->plugin_dir) {
		ret = strv_add(dirs, cfg->plugin_dir, strlen(cfg->plugin_dir));
		if (ret)
			return ret;
	}
	if (in_build_tree()) {
		ret = strv_add(dirs, CKPT_BUILD_PLUGIN_DIR, strlen(CKPT_BUILD_PLUGIN_DIR));
		if (ret)
			return ret;
	}
	return strv_add(dirs, CKPT_INSTALL_PLUGIN_DIR, strlen(CKPT_INSTALL_PLUGIN_DIR));
}

/* DIR/NAME/ckpt-NAME.so (build tree layout) or DIR/ckpt-NAME.so. */
static char *find_in_dir(const char *dir, const char *name)
{
	char *path;

	if (asprintf(&path, "%s/%s/ckpt-%s.so", dir, name, name) < 0)
		return NULL;
	if (is_file(path))
		return path;
	free(path);
	if (asprintf(&path, "%s/ckpt-%s.so", dir, name) < 0)
		return NULL;
	if (is_file(path))
		return path;
	free(path);
	return NULL;
}

/* Plugin names in dir: ckpt-NAME.so files and NAME/ckpt-NAME.so. */
static int scan_dir(const char *dir, struct strv *names)
{
	struct dirent *de;
	DIR *d;
	int ret = 0;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while (!ret && (de = readdir(d))) {
		const char *n = de->d_name;
		size_t len = strlen(n);
		char *path;

		if (n[0] == '.')
			continue;
		if (len > 8 && !strncmp(n, "ckpt-", 5) && !strcmp(n + len - 3, ".so")) {
			char *name = strndup(n + 5, len - 8);

			if (!name)
				return closedir(d), -ENOMEM;
			if (valid_name(name))
				ret = strv_add(names, name, strlen(name));
			free(name);
			continue;
		}
		if (!valid_name(n))
			continue;
		if (asprintf(&path, "%s/%s/ckpt-%s.so", dir, n, n) < 0)
			return closedir(d), -ENOMEM;
		if (is_file(path))
			ret = strv_add(names, n, len);
		free(path);
	}
	closedir(d);
	return ret;
}

/* Every in-tree plugin: the build tree's when running from it, else the
 * installed ones. */
static int default_names(struct strv *names)
{
	if (in_build_tree() && is_dir(CKPT_BUILD_PLUGIN_DIR))
		return scan_dir(CKPT_BUILD_PLUGIN_DIR, names);
	return scan_dir(CKPT_INSTALL_PLUGIN_DIR, names);
}

/* ---- loading ------------------------------------------------------------- */

struct cand {
	const char *name;
	const struct cfg_plugin *sec;
	bool optional;
};

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	int ox = x->sec ? x->sec->order : INT_MAX;
	int oy = y->sec ? y->sec->order : INT_MAX;

	if (ox != oy)
		return ox < oy ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* A plugin could not be used: an error, or for an optional plugin a warning
 * (info when it just cannot work on this machine).  Returns err, or 1 when
 * the plugin is skipped. */
static int load_failed(const struct cand *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int load_failed(const struct cand *c, int err, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!c->optional) {
		pr_err(PFX, "%s", msg);
		return err;
	}
	if (err == -ENODEV || err == -ENOTSUP)
		pr_info(PFX, "%s; optional, skipped", msg);
	else
		pr_warn(PFX, "%s; optional, skipped", msg);
	return 1;
}

static int locate(const struct cand *c, const struct strv *dirs, bool must_exist,
		  char **out)
{
	char list[2048];
	size_t i, n = 0;

	*out = NULL;
	if (c->sec && c->sec->path) {
		const char *p = c->sec->path;
		char why[PATH_MAX + 64];

		if (is_dir(p)) {
			*out = find_in_dir(p, c->name);
			snprintf(why, sizeof(why), "%s has no ckpt-%s.so", p, c->name);
		} else if (is_file(p)) {
			*out = strdup(p);
			snprintf(why, sizeof(why), "%s: %s", p, strerror(ENOMEM));
		} else {
			snprintf(why, sizeof(why), "%s: %s", p,
				 access(p, F_OK) ? strerror(errno) : "not a regular file");
		}
		if (*out)
			return 0;
		if (must_exist) {
			pr_err(PFX, "%s not found: %s; check [plugin.%s] path", c->name, why,
			       c->name);
			return -ENOENT;
		}
		return load_failed(c, -ENOENT, "%s not found: %s; check [plugin.%s] path", c->name,
				   why, c->name);
	}
	for (i = 0; i < dirs->n; i++) {
		*out = find_in_dir(dirs->v[i], c->name);
		if (*out)
			return 0;
	}
	for (i = 0; i < dirs->n && n < sizeof(list); i++)
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "",
				      dirs->v[i]);
	if (must_exist) {
		pr_err(PFX, "%s not found in: %s; check --plugins or [plugin.%s] path", c->name,
		       list, c->name);
		return -ENOENT;
	}
	return load_failed(c, -ENOENT, "%s not found in: %s; check [plugin.%s] path", c->name,
			   list, c->name);
}

static const char *const host_keys[] = { "enabled", "optional", "path", NULL };

/* Load, check and init one plugin into plugins[nplugins].  0: loaded,
 * 1: optional and skipped, else -errno. */
static int load_one(struct config *cfg, const struct cand *c, const struct strv *dirs,
		    bool must_exist)
{
	const struct ckpt_plugin_desc *d;
	const struct ckpt_config_key *k;
	struct plugin *p = &plugins[nplugins], *prev, *dup;
	char *path = NULL;
	void *h;
	int ret, i;

	ret = locate(c, dirs, must_exist, &path);
	if (ret)
		return ret;

	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		ret = load_failed(c, -ENOEXEC, "%s (%s): cannot load: %s", c->name, path,
				  dlerror());
		goto out_free;
	}
	d = dlsym(h, CKPT_PLUGIN_SYMBOL);
	if (!d) {
		ret = load_failed(c, -ENOEXEC,
				  "%s (%s): no \"%s\" symbol exported; not a ckpt plugin "
				  "(define the descriptor with CKPT_PLUGIN_EXPORT)",
				  c->name, path, CKPT_PLUGIN_SYMBOL);
		goto out_close;
	}
	if (d->abi_major != CKPT_PLUGIN_ABI_MAJOR) {
		ret = load_failed(c, -ENOEXEC,
				  "%s (%s): built for plugin ABI %u.%u, this ckpt speaks %d.%d; "
				  "rebuild the plugin against ckpt-plugin %d.x",
				  c->name, path, d->abi_major, d->abi_minor, CKPT_PLUGIN_ABI_MAJOR,
				  CKPT_PLUGIN_ABI_MINOR, CKPT_PLUGIN_ABI_MAJOR);
		goto out_close;
	}
	if (d->abi_minor > CKPT_PLUGIN_ABI_MINOR) {
		ret = load_failed(c, -ENOEXEC,
				  "%s (%s): built for plugin ABI %u.%u, newer than this ckpt's %d.%d; "
				  "upgrade ckpt or rebuild the plugin against ckpt-plugin %d.%d",
				  c->name, path, d->abi_major, d->abi_minor, CKPT_PLUGIN_ABI_MAJOR,
				  CKPT_PLUGIN_ABI_MINOR, CKPT_PLUGIN_ABI_MAJOR,
				  CKPT_PLUGIN_ABI_MINOR);
		goto out_close;
	}
	if (!valid_name(d->name)) {
		ret = load_failed(c, -EINVAL,
				  "%s (%s): bad name \"%s\" in the plugin's descriptor "
				  "(use a-z, 0-9, _ and -)",
				  c->name, path, d->name ?: "(null)");
		goto out_close;
	}
	dup = plugin_find(d->name);
	if (dup) {
		ret = load_failed(c, -EEXIST, "%s (%s): duplicate plugin name \"%s\", already loaded from %s",
				  c->name, path, d->name, dup->path);
		goto out_close;
	}
	if (strcmp(d->name, c->name)) {
		ret = load_failed(c, -EINVAL,
				  "%s (%s): the plugin calls itself \"%s\"; "
				  "its file must be named ckpt-%s.so",
				  c->name, path, d->name, d->name);
		goto out_close;
	}
	if ((d->lifecycle && d->lifecycle->version == 0) || (d->fd && d->fd->version == 0)) {
		ret = load_failed(c, -EINVAL,
				  "%s (%s): %s hook table has version 0; rebuild the plugin "
				  "against ckpt-plugin %d.%d",
				  c->name, path,
				  d->lifecycle && d->lifecycle->version == 0 ? "lifecycle" : "fd",
				  CKPT_PLUGIN_ABI_MAJOR, CKPT_PLUGIN_ABI_MINOR);
		goto out_close;
	}
	for (k = d->config; k && k->key; k++) {
		for (i = 0; host_keys[i]; i++)
			if (!strcmp(k->key, host_keys[i]))
				break;
		if (host_keys[i] || (k->type != CKPT_CFG_BOOL && k->type != CKPT_CFG_INT &&
				     k->type != CKPT_CFG_STRING)) {
			ret = load_failed(c, -EINVAL,
					  "%s (%s): bad config schema: key \"%s\" %s", c->name,
					  path, k->key,
					  host_keys[i] ? "belongs to the host" : "has an unknown type");
			goto out_close;
		}
	}

	/* The user's [plugin.NAME] keys: a config error, optional or not. */
	ret = config_check_schema(config_plugin(cfg, d->name), d->config);
	if (ret)
		goto out_close;

	memset(p, 0, sizeof(*p));
	p->desc = d;
	p->handle = h;
	p->path = path;
	p->optional = c->optional;
	if (d->init) {
		prev = enter(p);
		ret = d->init(&host_table, &p->priv);
		leave(prev);
		if (ret) {
			if (ret > 0)
				ret = -EIO;
			ret = load_failed(c, ret, "%s (%s): init failed: %s", c->name, path,
					  strerror(-ret));
			memset(p, 0, sizeof(*p));
			goto out_close;
		}
	}
	p->initialized = true;
	nplugins++;
	pr_info(PFX, "loaded %s %s (ABI %u.%u) from %s", d->name, d->version ?: "?",
		d->abi_major, d->abi_minor, path);
	return 0;

out_close:
	dlclose(h);
out_free:
	free(path);
	return ret;
}

static bool any_enabled_section(const struct config *cfg)
{
	size_t i;

	for (i = 0; cfg && i < cfg->nplugins; i++)
		if (cfg->plugins[i].enabled == 1)
			return true;
	return false;
}

/* The names to load:
 *  --plugins=a,b       exactly those (not found is an error);
 *  enabled = true      when any section says so: exactly those sections;
 *  otherwise           every in-tree plugin but those set enabled = false,
 *                      optional unless the config says optional = false,
 *                      plus sections naming a path (out-of-tree plugins).
 *  A section that only sets the plugin's own keys changes no set. */
static int enabled_set(struct config *cfg, const char *only, struct strv *names,
		       bool *explicit_list, bool *defaults)
{
	size_t i;
	int ret = 0;

	*explicit_list = false;
	*defaults = false;
	if (only) {
		const char *s = only;

		*explicit_list = true;
		while (*s) {
			const char *comma = strchr(s, ',');
			size_t len = comma ? (size_t)(comma - s) : strlen(s);
			char *name;

			while (len && (*s == ' ' || *s == '\t')) {
				s++;
				len--;
			}
			while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
				len--;
			if (len) {
				name = strndup(s, len);
				if (!name)
					return -ENOMEM;
				if (!valid_name(name)) {
					pr_err(PFX, "--plugins: bad plugin name \"%s\" "
						    "(use a-z, 0-9, _ and -)", name);
					free(name);
					return -EINVAL;
				}
				ret = strv_add(names, name, len);
				free(name);
				if (ret)
					return ret;
			}
			if (!comma)
				break;
			s = comma + 1;
		}
		return 0;
	}
	if (any_enabled_section(cfg)) {
		for (i = 0; i < cfg->nplugins; i++) {
			const struct cfg_plugin *sec = &cfg->plugins[i];

			if (sec->enabled != 1)
				continue;
			ret = strv_add(names, sec->name, strlen(sec->name));
			if (ret)
				return ret;
		}
		return 0;
	}
	*defaults = true;
	ret = default_names(names);
	if (ret) {
		pr_err(PFX, "cannot list the plugin directory: %s", strerror(-ret));
		return ret;
	}
	for (i = 0; i < names->n;) {
		const struct cfg_plugin *sec = config_plugin(cfg, names->v[i]);

		if (sec && sec->enabled == 0) {
			free(names->v[i]);
			names->v[i] = names->v[--names->n];
			continue;
		}
		i++;
	}
	for (i = 0; cfg && i < cfg->nplugins; i++) {
		const struct cfg_plugin *sec = &cfg->plugins[i];
		bool have = false;

		if (!sec->path || sec->enabled == 0)
			continue;
		for (size_t k = 0; k < names->n; k++)
			have |= !strcmp(names->v[k], sec->name);
		if (!have) {
			ret = strv_add(names, sec->name, strlen(sec->name));
			if (ret)
				return ret;
		}
	}
	return 0;
}

int plugins_load(struct config *cfg, const char *only)
{
	struct strv names = { 0 }, dirs = { 0 };
	struct cand *cands = NULL;
	bool explicit_list, defaults;
	size_t i;
	int ret;

	plugins_unload();
	loaded_cfg = cfg;

	ret = enabled_set(cfg, only, &names, &explicit_list, &defaults);
	if (ret)
		goto out;
	ret = search_dirs(cfg, &dirs);
	if (ret)
		goto out;
	if (!names.n)
		goto out;

	ret = -ENOMEM;
	cands = calloc(names.n, sizeof(*cands));
	plugins = calloc(names.n, sizeof(*plugins));
	if (!cands || !plugins)
		goto out;
	for (i = 0; i < names.n; i++) {
		struct cand *c = &cands[i];

		c->name = names.v[i];
		c->sec = config_plugin(cfg, c->name);
		if (defaults)
			c->optional = !(c->sec && c->sec->optional == 0);
		else
			c->optional = c->sec && c->sec->optional == 1;
	}
	qsort(cands, names.n, sizeof(*cands), cand_cmp);

	for (i = 0; i < names.n; i++) {
		ret = load_one(cfg, &cands[i], &dirs, explicit_list);
		if (ret < 0)
			goto out;
	}
	ret = 0;
out:
	free(cands);
	strv_free(&names);
	strv_free(&dirs);
	if (ret)
		plugins_unload();
	return ret;
}

void plugins_unload(void)
{
	struct plugin *prev;
	size_t i;

	for (i = nplugins; i-- > 0;) {
		struct plugin *p = &plugins[i];

		if (p->initialized && p->desc->fini) {
			prev = enter(p);
			p->desc->fini(p->priv);
			leave(prev);
		}
		if (p->handle)
			dlclose(p->handle);
		free(p->path);
	}
	free(plugins);
	plugins = NULL;
	nplugins = 0;
	loaded_cfg = NULL;
}

/* ---- BROADCAST: lifecycle ------------------------------------------------ */

enum lc_hook {
	LC_DUMP_START,
	LC_TREE_FROZEN,
	LC_DUMP_FINISH,
	LC_RESTORE_START,
	LC_RESTORE_RESUME,
	LC_RESTORE_FINISH,
	LC_DUMP_RELEASED,
};

static const char *const lc_names[] = {
	[LC_DUMP_START] = "dump_start",
	[LC_TREE_FROZEN] = "tree_frozen",
	[LC_DUMP_FINISH] = "dump_finish",
	[LC_RESTORE_START] = "restore_start",
	[LC_RESTORE_RESUME] = "restore_resume",
	[LC_RESTORE_FINISH] = "restore_finish",
	[LC_DUMP_RELEASED] = "dump_released",
};

static int lc_call(struct plugin *p, enum lc_hook h, pid_t root, int ok)
{
	const struct ckpt_lifecycle_hooks *lc = p->desc->lifecycle;
	struct plugin *prev;
	int ret = 0;

	prev = enter(p);
	switch (h) {
	case LC_DUMP_START:
		if (HOOK_OK(lc, 1, dump_start))
			ret = lc->dump_start(p->priv, root);
		break;
	case LC_TREE_FROZEN:
		if (HOOK_OK(lc, 1, tree_frozen))
			ret = lc->tree_frozen(p->priv, root);
		break;
	case LC_DUMP_FINISH:
		if (HOOK_OK(lc, 1, dump_finish))
			ret = lc->dump_finish(p->priv, ok);
		break;
	case LC_RESTORE_START:
		if (HOOK_OK(lc, 1, restore_start))
			ret = lc->restore_start(p->priv);
		break;
	case LC_RESTORE_RESUME:
		if (HOOK_OK(lc, 1, restore_resume))
			ret = lc->restore_resume(p->priv, root);
		break;
	case LC_RESTORE_FINISH:
		if (HOOK_OK(lc, 1, restore_finish))
			ret = lc->restore_finish(p->priv, ok);
		break;
	case LC_DUMP_RELEASED:
		if (HOOK_OK(lc, 2, dump_released))
			ret = lc->dump_released(p->priv, root, ok);
		break;
	}
	leave(prev);
	return ret;
}

/* Every plugin in order; the first failure stops it unless run_all. */
static int broadcast(enum lc_hook h, pid_t root, int ok, bool run_all)
{
	int first = 0;
	size_t i;

	for (i = 0; i < nplugins; i++) {
		struct plugin *p = &plugins[i];
		int ret;

		if (!p->initialized)
			continue;
		ret = lc_call(p, h, root, ok);
		if (!ret)
			continue;
		if (ret > 0) {
			hook_err("%s: %s hook failed (returned %d)", p->desc->name,
			       lc_names[h], ret);
			ret = -EIO;
		} else {
			hook_err("%s: %s hook failed: %s", p->desc->name, lc_names[h],
			       strerror(-ret));
		}
		if (!run_all)
			return ret;
		if (!first)
			first = ret;
	}
	return first;
}

int plugins_dump_start(pid_t root)
{
	return broadcast(LC_DUMP_START, root, 0, false);
}

int plugins_tree_frozen(pid_t root)
{
	return broadcast(LC_TREE_FROZEN, root, 0, false);
}

int plugins_dump_finish(int ok)
{
	return broadcast(LC_DUMP_FINISH, 0, ok, true);
}

int plugins_dump_released(pid_t root, int ok)
{
	return broadcast(LC_DUMP_RELEASED, root, ok, true);
}

static pid_t *tree_pid_list;
static size_t tree_pid_count;

void plugins_set_tree(const pid_t *pids, size_t n)
{
	free(tree_pid_list);
	tree_pid_list = NULL;
	tree_pid_count = 0;
	if (!n)
		return;
	tree_pid_list = malloc(n * sizeof(pid_t));
	if (!tree_pid_list)
		return;
	memcpy(tree_pid_list, pids, n * sizeof(pid_t));
	tree_pid_count = n;
}

static size_t host_tree_pids(pid_t *out, size_t max)
{
	for (size_t i = 0; i < tree_pid_count && i < max; i++)
		out[i] = tree_pid_list[i];
	return tree_pid_count;
}

int plugins_restore_start(void)
{
	return broadcast(LC_RESTORE_START, 0, 0, false);
}

int plugins_restore_resume(pid_t root)
{
	return broadcast(LC_RESTORE_RESUME, root, 0, false);
}

int plugins_restore_finish(int ok)
{
	return broadcast(LC_RESTORE_FINISH, 0, ok, true);
}

/* ---- CLAIM: namespaces ----------------------------------------------------- */

int plugins_dump_namespace(pid_t root, const char *kind, bool member, struct plugin **owner)
{
	for (size_t i = 0; i < nplugins; i++) {
		struct plugin *p = &plugins[i], *prev;
		const struct ckpt_lifecycle_hooks *lc = p->desc->lifecycle;

		if (!p->initialized || p->desc->abi_minor < 2 || !HOOK_OK(lc, 3, dump_namespace))
			continue;
		/* members are asked since ABI 1.4: older plugins expect the root */
		if (member && p->desc->abi_minor < 4)
			continue;
		prev = enter(p);
		int ret = lc->dump_namespace(p->priv, root, kind);
		leave(prev);
		if (ret == CKPT_NOT_MINE)
			continue;
		p->used = true;
		if (ret) {
			if (ret > 0)
				ret = -EIO;
			hook_err("%s: saving the %s namespace of PID %d failed: %s", p->desc->name,
				 kind, (int)root, strerror(-ret));
			return ret;
		}
		*owner = p;
		return 0;
	}
	return -ENOTSUP;
}

int plugins_restore_namespace(const char *plugin, const char *kind, int *fd)
{
	struct plugin *p = plugin_find(plugin), *prev;
	const struct ckpt_lifecycle_hooks *lc;

	if (!p || !p->initialized) {
		pr_err(PFX, "the images need plugin %s for the %s namespace, but it is not loaded; check --plugins or [plugin.%s]",
		       plugin ?: "(null)", kind, plugin ?: "NAME");
		return -ENOENT;
	}
	lc = p->desc->lifecycle;
	if (p->desc->abi_minor < 2 || !HOOK_OK(lc, 3, restore_namespace)) {
		pr_err(PFX, "%s: this version of the plugin cannot restore a %s namespace",
		       p->desc->name, kind);
		return -ENOTSUP;
	}
	*fd = -1;
	prev = enter(p);
	int ret = lc->restore_namespace(p->priv, kind, fd);
	leave(prev);
	/* since ABI 1.4, fd -1: the plugin made the namespace at its own point
	 * of the restore, nothing to enter */
	if (ret > 0 || (!ret && *fd < 0 && p->desc->abi_minor < 4))
		ret = -EIO;
	if (ret)
		hook_err("%s: recreating the %s namespace failed: %s", p->desc->name, kind,
			 strerror(-ret));
	return ret;
}

/* ---- CLAIM: file descriptors --------------------------------------------- */

static bool in_classes(const char *const *classes, const char *klass)
{
	if (!classes || !klass)
		return false;
	for (const char *const *c = classes; *c; c++)
		if (!strcmp(*c, klass))
			return true;
	return false;
}

static bool has_class(const struct ckpt_fd_hooks *fh, const char *klass)
{
	return fh && in_classes(fh->classes, klass);
}

/* The vma table exists only in descriptors of ABI 1.1 and later. */
static const struct ckpt_vma_hooks *vma_hooks(const struct plugin *p)
{
	return p->desc->abi_minor >= 1 ? p->desc->vma : NULL;
}

int plugins_dump_vma(const struct ckpt_vma_info *vma, struct plugin **owner, const char **klass,
		     uint32_t *obj_id)
{
	for (size_t i = 0; i < nplugins; i++) {
		struct plugin *p = &plugins[i], *prev;
		const struct ckpt_vma_hooks *vh = vma_hooks(p);
		const char *k = NULL;

		if (!p->initialized || !HOOK_OK(vh, 1, dump))
			continue;
		prev = enter(p);
		int ret = vh->dump(p->priv, vma, obj_id, &k);
		leave(prev);
		if (ret == CKPT_NOT_MINE)
			continue;
		p->used = true;
		if (ret) {
			if (ret > 0)
				ret = -EIO;
			hook_err("%s: dumping the mapping %#llx-%#llx of task %d (%s) failed: %s",
				 p->desc->name, (unsigned long long)vma->start,
				 (unsigned long long)vma->end, (int)vma->pid, vma->path ?: "?",
				 strerror(-ret));
			return ret;
		}
		if (!in_classes(vh->classes, k)) {
			pr_err(PFX, "%s: claimed a mapping as class \"%s\", which it does not register in its vma classes",
			       p->desc->name, k ?: "(null)");
			return -EINVAL;
		}
		*owner = p;
		*klass = k;
		return 0;
	}
	return -ENOTSUP;
}

int plugins_restore_vma(const char *plugin, const char *klass, uint32_t obj_id, int *fd)
{
	struct plugin *p = plugin_find(plugin), *prev;
	if (!p || !p->initialized) {
		pr_err(PFX, "the images need plugin %s for a \"%s\" mapping, but it is not loaded; check --plugins or [plugin.%s]",
		       plugin ?: "(null)", klass ?: "(null)", plugin ?: "NAME");
		return -ENOENT;
	}
	const struct ckpt_vma_hooks *vh = vma_hooks(p);
	if (!HOOK_OK(vh, 1, restore) || !in_classes(vh->classes, klass)) {
		pr_err(PFX, "%s: cannot restore \"%s\" mappings", p->desc->name, klass ?: "(null)");
		return -ENOTSUP;
	}
	*fd = -1;
	prev = enter(p);
	int ret = vh->restore(p->priv, klass, obj_id, fd);
	leave(prev);
	if (ret > 0 || (!ret && *fd < 0))
		ret = -EIO;
	if (ret)
		hook_err("%s: restoring \"%s\" mapping object %u failed: %s", p->desc->name, klass,
			 obj_id, strerror(-ret));
	return ret;
}

int plugins_dump_fd(const struct ckpt_fd_info *fd, uint32_t obj_id,
		    struct plugin **owner, const char **klass)
{
	struct plugin *prev;
	size_t i;

	for (i = 0; i < nplugins; i++) {
		struct plugin *p = &plugins[i];
		const struct ckpt_fd_hooks *fh = p->desc->fd;
		const char *k = NULL;
		int ret;

		if (!p->initialized || !HOOK_OK(fh, 1, dump))
			continue;
		prev = enter(p);
		ret = fh->dump(p->priv, fd, obj_id, &k);
		leave(prev);
		if (ret == CKPT_NOT_MINE)
			continue;

		if (owner)
			*owner = p;
		if (klass)
			*klass = k;
		p->used = true;
		if (ret) {
			if (ret > 0)
				ret = -EIO;
			hook_err("%s: dumping fd %d of task %d (%s) failed: %s", p->desc->name,
			       fd->fd, (int)fd->pid, fd->link ?: "?", strerror(-ret));
			return ret;
		}
		if (!has_class(fh, k)) {
			pr_err(PFX, "%s: claimed fd %d of task %d as class \"%s\", which the plugin "
				    "does not register in its fd classes",
			       p->desc->name, fd->fd, (int)fd->pid, k ?: "(null)");
			return -EINVAL;
		}
		return 0;
	}
	return -ENOTSUP;
}

int plugins_restore_fd(const char *plugin, const char *klass, uint32_t obj_id, int *fd)
{
	struct plugin *p = plugin_find(plugin), *prev;
	const struct ckpt_fd_hooks *fh;
	int ret;

	if (!p || !p->initialized) {
		pr_err(PFX, "the images need plugin %s for \"%s\" files, but it is not loaded; "
			    "check --plugins or [plugin.%s]",
		       plugin ?: "(null)", klass ?: "(null)", plugin ?: "NAME");
		return -ENOENT;
	}
	fh = p->desc->fd;
	if (!has_class(fh, klass)) {
		pr_err(PFX, "%s: the images hold \"%s\" files, a class this version of the "
			    "plugin does not handle",
		       p->desc->name, klass ?: "(null)");
		return -ENOTSUP;
	}
	if (!HOOK_OK(fh, 1, restore)) {
		pr_err(PFX, "%s: cannot restore \"%s\" files (the plugin has no fd restore hook)",
		       p->desc->name, klass);
		return -ENOTSUP;
	}
	*fd = -1;
	prev = enter(p);
	ret = fh->restore(p->priv, klass, obj_id, fd);
	leave(prev);
	if (ret > 0)
		ret = -EIO;
	if (!ret && *fd < 0)
		ret = -EIO;
	if (ret)
		hook_err("%s: restoring \"%s\" file %u failed: %s", p->desc->name, klass,
		       obj_id, strerror(-ret));
	return ret;
}

int plugins_restore_before_children(const char *plugin, const char *klass, uint32_t obj_id,
				    int fd)
{
	struct plugin *p = plugin_find(plugin), *prev;
	int ret;

	if (!p || !p->initialized)
		return -ENOENT;
	if (p->desc->abi_minor < 3 || !HOOK_OK(p->desc->fd, 3, restore_before_children))
		return 0;
	prev = enter(p);
	ret = p->desc->fd->restore_before_children(p->priv, klass, obj_id, fd);
	leave(prev);
	if (ret > 0)
		ret = -EIO;
	if (ret)
		hook_err("%s: setting up \"%s\" object %u in the task before its children failed: %s",
			 p->desc->name, klass, obj_id, strerror(-ret));
	return ret;
}

int plugins_restore_in_task(const char *plugin, const char *klass, uint32_t obj_id, int fd)
{
	struct plugin *p = plugin_find(plugin), *prev;
	int ret;

	if (!p || !p->initialized)
		return -ENOENT;
	if (!HOOK_OK(p->desc->fd, 2, restore_in_task))
		return 0;
	prev = enter(p);
	ret = p->desc->fd->restore_in_task(p->priv, klass, obj_id, fd);
	leave(prev);
	if (ret > 0)
		ret = -EIO;
	if (ret)
		hook_err("%s: setting up \"%s\" fd %d in the task failed: %s", p->desc->name, klass,
			 fd, strerror(-ret));
	return ret;
}

/* ---- image types --------------------------------------------------------- */

static const ProtobufCMessageDescriptor *const core_types[] = {
	&ckpt__inventory__descriptor,
	&ckpt__pstree_entry__descriptor,
	&ckpt__task_core__descriptor,
	&ckpt__thread_core__descriptor,
	&ckpt__mm__descriptor,
	&ckpt__vma__descriptor,
	&ckpt__pagemap_entry__descriptor,
	&ckpt__page_block__descriptor,
	&ckpt__fd_entry__descriptor,
	&ckpt__ipc_record__descriptor,
	NULL,
};

const struct ProtobufCMessageDescriptor *plugins_find_image_type(const char *type)
{
	const ProtobufCMessageDescriptor *const *t;
	size_t i;

	if (!type)
		return NULL;
	for (t = core_types; *t; t++)
		if (!strcmp((*t)->name, type))
			return *t;
	for (i = 0; i < nplugins; i++)
		for (t = plugins[i].desc->image_types; t && *t; t++)
			if ((*t)->name && !strcmp((*t)->name, type))
				return *t;
	return NULL;
}

/* ---- `ckpt plugins` ------------------------------------------------------ */

static void json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		switch (ch) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\b':
			fputs("\\b", f);
			break;
		case '\f':
			fputs("\\f", f);
			break;
		default:
			if (ch < 0x20 || ch == 0x7f)
				fprintf(f, "\\u%04x", ch);
			else
				fputc(ch, f);
		}
	}
	fputc('"', f);
}

static const char *cfg_type_name(enum ckpt_config_type t)
{
	switch (t) {
	case CKPT_CFG_BOOL:
		return "bool";
	case CKPT_CFG_INT:
		return "int";
	case CKPT_CFG_STRING:
		return "string";
	}
	return "?";
}

struct hook_ent {
	const char *name;
	bool set;
};

/* Hooks set in each table; n entries written to out. */
static size_t lifecycle_hooks(const struct ckpt_lifecycle_hooks *lc, struct hook_ent *out)
{
	size_t n = 0;

	if (!lc || lc->version < 1)
		return 0;
	out[n++] = (struct hook_ent){ "dump_start", lc->dump_start };
	out[n++] = (struct hook_ent){ "tree_frozen", lc->tree_frozen };
	out[n++] = (struct hook_ent){ "dump_finish", lc->dump_finish };
	out[n++] = (struct hook_ent){ "restore_start", lc->restore_start };
	out[n++] = (struct hook_ent){ "restore_resume", lc->restore_resume };
	out[n++] = (struct hook_ent){ "restore_finish", lc->restore_finish };
	out[n++] = (struct hook_ent){ "check", lc->check };
	if (lc->version >= 2)
		out[n++] = (struct hook_ent){ "dump_released", lc->dump_released };
	if (lc->version >= 3) {
		out[n++] = (struct hook_ent){ "dump_namespace", lc->dump_namespace };
		out[n++] = (struct hook_ent){ "restore_namespace", lc->restore_namespace };
	}
	return n;
}

static size_t vma_hook_list(const struct ckpt_vma_hooks *vh, struct hook_ent *out)
{
	size_t n = 0;

	if (!vh || vh->version < 1)
		return 0;
	out[n++] = (struct hook_ent){ "dump", vh->dump };
	out[n++] = (struct hook_ent){ "restore", vh->restore };
	return n;
}

static size_t fd_hooks(const struct ckpt_fd_hooks *fh, struct hook_ent *out)
{
	size_t n = 0;

	if (!fh || fh->version < 1)
		return 0;
	out[n++] = (struct hook_ent){ "dump", fh->dump };
	out[n++] = (struct hook_ent){ "restore", fh->restore };
	if (fh->version >= 2)
		out[n++] = (struct hook_ent){ "restore_in_task", fh->restore_in_task };
	if (fh->version >= 3)
		out[n++] = (struct hook_ent){ "restore_before_children",
					      fh->restore_before_children };
	return n;
}

static void list_json_hooks(FILE *f, const char *table, uint32_t version,
			    const struct hook_ent *h, size_t n, bool *first)
{
	size_t i;
	bool any = false;

	fprintf(f, "%s\"%s\": {\"version\": %u, \"set\": [", *first ? "" : ", ", table,
		version);
	for (i = 0; i < n; i++) {
		if (!h[i].set)
			continue;
		fprintf(f, "%s", any ? ", " : "");
		json_str(f, h[i].name);
		any = true;
	}
	fputs("]}", f);
	*first = false;
}

static void list_json(FILE *f)
{
	struct hook_ent h[16];
	size_t i, n;

	fputs("[", f);
	for (i = 0; i < nplugins; i++) {
		const struct plugin *p = &plugins[i];
		const struct ckpt_plugin_desc *d = p->desc;
		const ProtobufCMessageDescriptor *const *t;
		const struct ckpt_config_key *k;
		const char *const *c;
		bool first = true;

		fputs(i ? ",\n  {" : "\n  {", f);
		fputs("\"name\": ", f);
		json_str(f, d->name);
		fputs(", \"version\": ", f);
		json_str(f, d->version);
		fprintf(f, ", \"abi\": {\"major\": %u, \"minor\": %u}", d->abi_major, d->abi_minor);
		fputs(", \"path\": ", f);
		json_str(f, p->path);
		fputs(", \"description\": ", f);
		json_str(f, d->description);
		fprintf(f, ", \"optional\": %s", p->optional ? "true" : "false");

		fputs(", \"hooks\": {", f);
		n = lifecycle_hooks(d->lifecycle, h);
		if (d->lifecycle)
			list_json_hooks(f, "lifecycle", d->lifecycle->version, h, n, &first);
		n = fd_hooks(d->fd, h);
		if (d->fd)
			list_json_hooks(f, "fd", d->fd->version, h, n, &first);
		n = vma_hook_list(vma_hooks(p), h);
		if (vma_hooks(p))
			list_json_hooks(f, "vma", vma_hooks(p)->version, h, n, &first);
		fputs("}", f);

		fputs(", \"fd_classes\": [", f);
		for (c = d->fd && d->fd->version >= 1 ? d->fd->classes : NULL; c && *c; c++) {
			if (c != d->fd->classes)
				fputs(", ", f);
			json_str(f, *c);
		}
		fputs("], \"vma_classes\": [", f);
		const char *const *vc = vma_hooks(p) ? vma_hooks(p)->classes : NULL;
		for (c = vc; c && *c; c++) {
			if (c != vc)
				fputs(", ", f);
			json_str(f, *c);
		}
		fputs("], \"image_types\": [", f);
		for (t = d->image_types; t && *t; t++) {
			if (t != d->image_types)
				fputs(", ", f);
			json_str(f, (*t)->name);
		}
		fputs("], \"config\": [", f);
		for (k = d->config; k && k->key; k++) {
			fputs(k != d->config ? ", {\"key\": " : "{\"key\": ", f);
			json_str(f, k->key);
			fputs(", \"type\": ", f);
			json_str(f, cfg_type_name(k->type));
			fputs(", \"default\": ", f);
			json_str(f, k->def);
			fputs(", \"help\": ", f);
			json_str(f, k->help);
			fputs("}", f);
		}
		fputs("]}", f);
	}
	fputs(nplugins ? "\n]\n" : "]\n", f);
}

static void list_text_hooks(FILE *f, const char *table, uint32_t version,
			    const struct hook_ent *h, size_t n, bool *first)
{
	size_t i;
	bool any = false;

	fprintf(f, "%s%s v%u (", *first ? "" : "; ", table, version);
	for (i = 0; i < n; i++) {
		if (!h[i].set)
			continue;
		fprintf(f, "%s%s", any ? ", " : "", h[i].name);
		any = true;
	}
	fprintf(f, "%s)", any ? "" : "none set");
	*first = false;
}

static void list_text(FILE *f)
{
	struct hook_ent h[16];
	size_t i, n;

	if (!nplugins) {
		fputs("no plugins loaded\n", f);
		return;
	}
	for (i = 0; i < nplugins; i++) {
		const struct plugin *p = &plugins[i];
		const struct ckpt_plugin_desc *d = p->desc;
		const ProtobufCMessageDescriptor *const *t;
		const struct ckpt_config_key *k;
		const char *const *c;
		bool first = true;

		if (i)
			fputc('\n', f);
		fprintf(f, "%s %s (plugin ABI %u.%u)%s\n", d->name, d->version ?: "?",
			d->abi_major, d->abi_minor, p->optional ? ", optional" : "");
		fprintf(f, "  path:        %s\n", p->path);
		if (d->description)
			fprintf(f, "  description: %s\n", d->description);
		fputs("  hooks:       ", f);
		n = lifecycle_hooks(d->lifecycle, h);
		if (d->lifecycle)
			list_text_hooks(f, "lifecycle", d->lifecycle->version, h, n, &first);
		n = fd_hooks(d->fd, h);
		if (d->fd)
			list_text_hooks(f, "fd", d->fd->version, h, n, &first);
		n = vma_hook_list(vma_hooks(p), h);
		if (vma_hooks(p))
			list_text_hooks(f, "vma", vma_hooks(p)->version, h, n, &first);
		fputs(first ? "none\n" : "\n", f);

		fputs("  fd classes:  ", f);
		c = d->fd && d->fd->version >= 1 ? d->fd->classes : NULL;
		if (!c || !*c)
			fputs("none", f);
		for (; c && *c; c++)
			fprintf(f, "%s%s", c != d->fd->classes ? ", " : "", *c);
		fputc('\n', f);

		if (vma_hooks(p) && vma_hooks(p)->classes && *vma_hooks(p)->classes) {
			fputs("  vma classes: ", f);
			for (c = vma_hooks(p)->classes; *c; c++)
				fprintf(f, "%s%s", c != vma_hooks(p)->classes ? ", " : "", *c);
			fputc('\n', f);
		}

		fputs("  image types: ", f);
		if (!d->image_types || !*d->image_types)
			fputs("none", f);
		for (t = d->image_types; t && *t; t++)
			fprintf(f, "%s%s", t != d->image_types ? ", " : "", (*t)->name);
		fputc('\n', f);

		fputs("  config:", f);
		if (!d->config || !d->config->key)
			fputs("      none", f);
		fputc('\n', f);
		for (k = d->config; k && k->key; k++) {
			fprintf(f, "    %s (%s", k->key, cfg_type_name(k->type));
			if (k->def)
				fprintf(f, ", default %s", k->def);
			fprintf(f, ")%s%s\n", k->help ? ": " : "", k->help ?: "");
		}
	}
}

int plugins_list(bool json)
{
	if (json)
		list_json(stdout);
	else
		list_text(stdout);
	fflush(stdout);
	return ferror(stdout) ? -EIO : 0;
}
