/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Configuration file: INI read with inih.
 *
 * inih is driven through ini_parse_stream() with our own line reader, so we
 * know the line of every key and see every section header, also empty and
 * repeated ones (inih only reports sections through the keys in them).
 * Errors are one line, "FILE:LINE: what", the first one in the file wins.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "pagecodec.h"
#include "log.h"

#define CONFIG_DEFAULT_PATH "/etc/ckpt/ckpt.conf"
#define PLUGIN_SECTION "plugin."

enum {
	SEC_NONE = -1, /* before any section header */
	SEC_CKPT = -2, /* [ckpt] */
	SEC_BAD = -3,  /* a section already reported as wrong */
};

struct parser {
	struct config *cfg;
	const char *src;   /* name of the file in messages */
	FILE *f;           /* reading a file ... */
	const char *str;   /* ... or a string */
	char *buf;         /* getline() buffer */
	size_t bufsz;
	int line;          /* line just handed to inih */
	int section;       /* SEC_* or index into cfg->plugins */
	int ckpt_line;     /* line of the [ckpt] header, 0 when not seen */
	bool prev_key;     /* a key was seen in this section (inih multiline) */
	bool continuation; /* the current line continues a value */
	int ioerr;
	int err;           /* first error: -EINVAL or -ENOMEM */
	int err_line;
	char err_msg[512];
};

static void parse_error(struct parser *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void parse_error(struct parser *ps, const char *fmt, ...)
{
	va_list ap;

	if (ps->err)
		return;
	ps->err = -EINVAL;
	ps->err_line = ps->line;
	va_start(ap, fmt);
	vsnprintf(ps->err_msg, sizeof(ps->err_msg), fmt, ap);
	va_end(ap);
}

static void parse_nomem(struct parser *ps)
{
	if (ps->err)
		return;
	ps->err = -ENOMEM;
	ps->err_line = ps->line;
	snprintf(ps->err_msg, sizeof(ps->err_msg), "out of memory");
}

static void config_init(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = -1;
}

void config_free(struct config *cfg)
{
	size_t i, j;

	if (!cfg)
		return;
	for (i = 0; i < cfg->nplugins; i++) {
		struct cfg_plugin *p = &cfg->plugins[i];

		for (j = 0; j < p->nkv; j++) {
			free(p->kv[j].key);
			free(p->kv[j].value);
		}
		free(p->kv);
		free(p->name);
		free(p->path);
	}
	free(cfg->plugins);
	free(cfg->plugin_dir);
	free(cfg->compress);
	free(cfg->source);
	config_init(cfg);
}

int config_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	if (!s)
		return -EINVAL;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static bool valid_plugin_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '-'))
			return false;
	return true;
}

static const struct cfg_plugin *find_plugin(const struct config *cfg, const char *name)
{
	size_t i;

	if (!cfg || !name)
		return NULL;
	for (i = 0; i < cfg->nplugins; i++)
		if (!strcmp(cfg->plugins[i].name, name))
			return &cfg->plugins[i];
	return NULL;
}

struct cfg_plugin *config_plugin(struct config *cfg, const char *name)
{
	return (struct cfg_plugin *)find_plugin(cfg, name);
}

/* A section header line: start a section (the text between [ and ]). */
static void section_start(struct parser *ps, const char *name, size_t len)
{
	struct config *cfg = ps->cfg;
	struct cfg_plugin *p, *np;
	char *sec;

	ps->prev_key = false;
	ps->section = SEC_BAD;
	while (len && (name[0] == ' ' || name[0] == '\t')) {
		name++;
		len--;
	}
	while (len && (name[len - 1] == ' ' || name[len - 1] == '\t'))
		len--;
	sec = strndup(name, len);
	if (!sec) {
		parse_nomem(ps);
		return;
	}

	if (!strcmp(sec, "ckpt")) {
		if (ps->ckpt_line)
			parse_error(ps, "duplicate section [ckpt] (first at line %d)",
				    ps->ckpt_line);
		else
			ps->section = SEC_CKPT;
		ps->ckpt_line = ps->ckpt_line ?: ps->line;
		goto out;
	}
	if (strncmp(sec, PLUGIN_SECTION, strlen(PLUGIN_SECTION))) {
		parse_error(ps, "unknown section [%s] (known: [ckpt], [plugin.NAME])", sec);
		goto out;
	}
	name = sec + strlen(PLUGIN_SECTION);
	if (!valid_plugin_name(name)) {
		parse_error(ps, "bad plugin name \"%s\" in [%s] (use a-z, 0-9, _ and -)", name,
			    sec);
		goto out;
	}
	p = config_plugin(cfg, name);
	if (p) {
		parse_error(ps, "duplicate section [%s] (first at line %d)", sec, p->line);
		goto out;
	}
	np = realloc(cfg->plugins, (cfg->nplugins + 1) * sizeof(*np));
	if (!np) {
		parse_nomem(ps);
		goto out;
	}
	cfg->plugins = np;
	p = &np[cfg->nplugins];
	memset(p, 0, sizeof(*p));
	p->name = strdup(name);
	if (!p->name) {
		parse_nomem(ps);
		goto out;
	}
	p->enabled = -1;
	p->optional = -1;
	p->order = (int)cfg->nplugins;
	p->line = ps->line;
	p->source = cfg->source;
	ps->section = (int)cfg->nplugins++;
out:
	free(sec);
}

/* Look at a line before inih does: count it, and note section headers the
 * way inih will see them (comments, continuation lines, then [section]). */
static void inspect_line(struct parser *ps, char *line)
{
	char *start = line, *end;

	ps->continuation = false;
	if (ps->line == 1 && !strncmp(start, "\xEF\xBB\xBF", 3))
		start += 3;
	line = start;
	while (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n' ||
	       *start == '\f' || *start == '\v')
		start++;
	if (!*start || *start == ';' || *start == '#')
		return;
	if (ps->prev_key && start > line) {
		ps->continuation = true;
		return;
	}
	if (*start != '[')
		return;
	end = strchr(start + 1, ']');
	if (!end)
		return; /* inih reports it */
	section_start(ps, start + 1, (size_t)(end - start - 1));
}

/* fgets()-like reader for inih that always hands over whole lines. */
static char *read_line(char *str, int num, void *stream)
{
	struct parser *ps = stream;
	const char *line;
	size_t len;

	if (ps->f) {
		ssize_t n = getline(&ps->buf, &ps->bufsz, ps->f);

		if (n < 0) {
			if (ferror(ps->f))
				ps->ioerr = errno ?: EIO;
			return NULL;
		}
		line = ps->buf;
		len = (size_t)n;
	} else {
		const char *nl;

		if (!ps->str || !*ps->str)
			return NULL;
		line = ps->str;
		nl = strchr(line, '\n');
		len = nl ? (size_t)(nl - line + 1) : strlen(line);
		ps->str += len;
	}
	ps->line++;
	if (num < 2)
		return NULL;
	if (len + 1 > (size_t)num) {
		parse_error(ps, "line longer than %d characters", num - 2);
		strcpy(str, "\n");
		return str;
	}
	memcpy(str, line, len);
	str[len] = '\0';
	inspect_line(ps, str);
	return str;
}

static int set_string(struct parser *ps, char **dst, const char *key, const char *sect,
		      const char *value)
{
	if (*dst) {
		parse_error(ps, "duplicate key \"%s\" in [%s]", key, sect);
		return 0;
	}
	if (!*value) {
		parse_error(ps, "empty value for %s in [%s]", key, sect);
		return 0;
	}
	*dst = strdup(value);
	if (!*dst) {
		parse_nomem(ps);
		return 0;
	}
	return 1;
}

static int parse_log_level(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	int i;

	for (i = 0; i < 4; i++)
		if (!strcasecmp(s, names[i]))
			return i;
	if (!strcasecmp(s, "warning"))
		return CKPT_LOG_WARN;
	if (s[0] >= '0' && s[0] <= '3' && !s[1])
		return s[0] - '0';
	return -1;
}

static int ckpt_key(struct parser *ps, const char *key, const char *value)
{
	struct config *cfg = ps->cfg;

	if (!strcmp(key, "plugin_dir"))
		return set_string(ps, &cfg->plugin_dir, key, "ckpt", value);
	if (!strcmp(key, "log_level")) {
		int lvl = parse_log_level(value);

		if (cfg->log_level >= 0) {
			parse_error(ps, "duplicate key \"%s\" in [ckpt]", key);
			return 0;
		}
		if (lvl < 0) {
			parse_error(ps,
				    "bad value \"%s\" for log_level in [ckpt] "
				    "(use error, warn, info, debug or 0-3)",
				    value);
			return 0;
		}
		cfg->log_level = lvl;
		return 1;
	}
	if (!strcmp(key, "compress")) {
		struct pagecodec_opts o;
		if (pagecodec_parse(value, &o)) {
			parse_error(ps,
				    "bad value \"%s\" for compress in [ckpt] "
				    "(use none, lz4, lz4:fast, lz4:ACCEL, zstd or zstd:LEVEL)",
				    value);
			return 0;
		}
		return set_string(ps, &cfg->compress, key, "ckpt", value);
	}
	parse_error(ps, "unknown key \"%s\" in [ckpt] (known: plugin_dir, log_level, compress)", key);
	return 0;
}

static int plugin_bool(struct parser *ps, struct cfg_plugin *p, int *dst, const char *key,
		       const char *value)
{
	bool b;

	if (*dst >= 0) {
		parse_error(ps, "duplicate key \"%s\" in [plugin.%s]", key, p->name);
		return 0;
	}
	if (config_parse_bool(value, &b)) {
		parse_error(ps,
			    "bad value \"%s\" for %s in [plugin.%s] "
			    "(use true/false, yes/no, on/off or 1/0)",
			    value, key, p->name);
		return 0;
	}
	*dst = b;
	return 1;
}

static int plugin_key(struct parser *ps, struct cfg_plugin *p, const char *key,
		      const char *value)
{
	struct cfg_kv *kv;
	char sect[128];
	size_t i;

	if (!strcmp(key, "enabled"))
		return plugin_bool(ps, p, &p->enabled, key, value);
	if (!strcmp(key, "optional"))
		return plugin_bool(ps, p, &p->optional, key, value);
	if (!strcmp(key, "path")) {
		snprintf(sect, sizeof(sect), "plugin.%s", p->name);
		return set_string(ps, &p->path, key, sect, value);
	}

	for (i = 0; i < p->nkv; i++) {
		if (!strcmp(p->kv[i].key, key)) {
			parse_error(ps, "duplicate key \"%s\" in [plugin.%s] (first at line %d)",
				    key, p->name, p->kv[i].line);
			return 0;
		}
	}
	kv = realloc(p->kv, (p->nkv + 1) * sizeof(*kv));
	if (!kv) {
		parse_nomem(ps);
		return 0;
	}
	p->kv = kv;
	kv = &kv[p->nkv];
	kv->key = strdup(key);
	kv->value = strdup(value);
	kv->line = ps->line;
	if (!kv->key || !kv->value) {
		free(kv->key);
		free(kv->value);
		parse_nomem(ps);
		return 0;
	}
	p->nkv++;
	return 1;
}

static int handler(void *user, const char *section, const char *key, const char *value)
{
	struct parser *ps = user;

	(void)section; /* tracked by inspect_line(), which also sees empty sections */
	if (!key)
		return 1;
	if (!value)
		value = "";
	if (ps->continuation) {
		parse_error(ps, "indented line continues a value; multi-line values "
				"are not supported");
		return 0;
	}
	ps->prev_key = true;
	switch (ps->section) {
	case SEC_NONE:
		parse_error(ps, "key \"%s\" outside any section", key);
		return 0;
	case SEC_BAD:
		return 1; /* the section was reported already */
	case SEC_CKPT:
		return ckpt_key(ps, key, value);
	default:
		return plugin_key(ps, &ps->cfg->plugins[ps->section], key, value);
	}
}

static int parse(struct config *cfg, struct parser *ps)
{
	int ret;

	ps->cfg = cfg;
	ps->section = SEC_NONE;
	ret = ini_parse_stream(read_line, ps, handler, ps);
	free(ps->buf);
	ps->buf = NULL;

	if (ret > 0 && (!ps->err || ret < ps->err_line)) {
		pr_err("config", "%s:%d: syntax error (expected [section], key = value or a comment)",
		       ps->src, ret);
		ret = -EINVAL;
	} else if (ps->err) {
		pr_err("config", "%s:%d: %s", ps->src, ps->err_line, ps->err_msg);
		ret = ps->err;
	} else if (ps->ioerr) {
		pr_err("config", "%s: read error: %s", ps->src, strerror(ps->ioerr));
		ret = -ps->ioerr;
	} else if (ret == -2) {
		pr_err("config", "%s: out of memory", ps->src);
		ret = -ENOMEM;
	} else if (ret) {
		pr_err("config", "%s: cannot parse", ps->src);
		ret = -EINVAL;
	}
	if (ret)
		config_free(cfg);
	return ret;
}

int config_parse_string(struct config *cfg, const char *text, const char *name)
{
	struct parser ps = { 0 };

	config_init(cfg);
	cfg->source = strdup(name ?: "<string>");
	if (!cfg->source)
		return -ENOMEM;
	ps.src = cfg->source;
	ps.str = text ?: "";
	return parse(cfg, &ps);
}

static int load_file(struct config *cfg, const char *path, const char *via)
{
	struct parser ps = { 0 };
	int ret;

	ps.f = fopen(path, "re");
	if (!ps.f) {
		ret = -errno;
		if (via)
			pr_err("config", "%s: %s (given by %s)", path, strerror(-ret), via);
		else
			pr_err("config", "%s: %s", path, strerror(-ret));
		return ret;
	}
	cfg->source = strdup(path);
	if (!cfg->source) {
		fclose(ps.f);
		return -ENOMEM;
	}
	ps.src = cfg->source;
	ret = parse(cfg, &ps);
	fclose(ps.f);
	return ret;
}

int config_load(struct config *cfg, const char *path)
{
	const char *env;

	config_init(cfg);
	if (path)
		return load_file(cfg, path, "--config");
	env = getenv("CKPT_CONFIG");
	if (env && *env)
		return load_file(cfg, env, "$CKPT_CONFIG");
	if (access(CONFIG_DEFAULT_PATH, F_OK) == 0)
		return load_file(cfg, CONFIG_DEFAULT_PATH, NULL);
	return 0; /* built-in defaults */
}

static bool valid_int(const char *s)
{
	char *end;

	if (!*s)
		return false;
	errno = 0;
	(void)strtoll(s, &end, 10);
	return !errno && !*end;
}

int config_check_schema(const struct cfg_plugin *p, const struct ckpt_config_key *schema)
{
	const struct ckpt_config_key *k;
	char where[PATH_MAX + 32];
	size_t i;

	if (!p)
		return 0;
	for (i = 0; i < p->nkv; i++) {
		const struct cfg_kv *kv = &p->kv[i];
		bool b;

		if (!kv->line)
			snprintf(where, sizeof(where), "command line: ");
		else if (p->source)
			snprintf(where, sizeof(where), "%s:%d: ", p->source, kv->line);
		else
			where[0] = '\0';

		for (k = schema; k && k->key; k++)
			if (!strcmp(k->key, kv->key))
				break;
		if (!k || !k->key) {
			char known[512] = "";
			size_t n = 0;

			for (k = schema; k && k->key && n < sizeof(known); k++)
				n += (size_t)snprintf(known + n, sizeof(known) - n, "%s%s",
						      n ? ", " : "", k->key);
			pr_err("config", "%sunknown key \"%s\" in [plugin.%s] (%s%s)", where,
			       kv->key, p->name, n ? "known: " : "the plugin takes no keys",
			       known);
			return -EINVAL;
		}
		if ((k->type == CKPT_CFG_INT && !valid_int(kv->value)) ||
		    (k->type == CKPT_CFG_BOOL && config_parse_bool(kv->value, &b))) {
			pr_err("config", "%sbad value \"%s\" for %s in [plugin.%s]: expected %s%s",
			       where, kv->value, kv->key, p->name,
			       k->type == CKPT_CFG_INT ? "an integer" : "a bool",
			       k->type == CKPT_CFG_BOOL ? " (true/false, yes/no, on/off, 1/0)" : "");
			return -EINVAL;
		}
		if (k->type != CKPT_CFG_INT && k->type != CKPT_CFG_BOOL &&
		    k->type != CKPT_CFG_STRING) {
			pr_err("config", "%s[plugin.%s]: key %s has unknown type %d in the plugin's schema",
			       where, p->name, kv->key, (int)k->type);
			return -EINVAL;
		}
	}
	return 0;
}

const char *config_value(const struct config *cfg, const char *plugin, const char *key,
			 const struct ckpt_config_key *schema)
{
	const struct cfg_plugin *p = find_plugin(cfg, plugin);
	const struct ckpt_config_key *k;
	size_t i;

	if (!key)
		return NULL;
	for (i = 0; p && i < p->nkv; i++)
		if (!strcmp(p->kv[i].key, key))
			return p->kv[i].value;
	for (k = schema; k && k->key; k++)
		if (!strcmp(k->key, key))
			return k->def;
	return NULL;
}

int config_set(struct config *cfg, const char *plugin, const char *key, const char *value)
{
	struct cfg_plugin *p = config_plugin(cfg, plugin);

	if (!p) {
		struct cfg_plugin *np = realloc(cfg->plugins, (cfg->nplugins + 1) * sizeof(*np));
		if (!np)
			return -ENOMEM;
		cfg->plugins = np;
		p = &cfg->plugins[cfg->nplugins++];
		memset(p, 0, sizeof(*p));
		p->name = strdup(plugin);
		if (!p->name)
			return -ENOMEM;
		p->enabled = -1;
		p->optional = -1;
		p->order = INT_MAX; /* sorts like a plugin without a section */
		p->source = "command line";
	}
	for (size_t i = 0; i < p->nkv; i++) {
		if (strcmp(p->kv[i].key, key))
			continue;
		char *v = strdup(value);
		if (!v)
			return -ENOMEM;
		free(p->kv[i].value);
		p->kv[i].value = v;
		return 0;
	}
	struct cfg_kv *nkv = realloc(p->kv, (p->nkv + 1) * sizeof(*nkv));
	if (!nkv)
		return -ENOMEM;
	p->kv = nkv;
	p->kv[p->nkv].key = strdup(key);
	p->kv[p->nkv].value = strdup(value);
	p->kv[p->nkv].line = 0;
	if (!p->kv[p->nkv].key || !p->kv[p->nkv].value)
		return -ENOMEM;
	p->nkv++;
	return 0;
}
