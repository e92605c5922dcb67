/* SPDX-License-Identifier: GPL-2.0-only */
/* Unit tests of the configuration parser (core/config.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "capture.h"
#include "tap.h"

static const char good_text[] =
	"; a comment\n"
	"# another\n"
	"[ckpt]\n"
	"plugin_dir = /opt/ckpt/plugins\n"
	"log_level = debug\n"
	"\n"
	"[plugin.fs]\n"
	"enabled = yes\n"
	"optional = off\n"
	"path = /tmp/ckpt-fs.so\n"
	"level = 5\n"
	"label = hello world ; inline comment\n"
	"\n"
	"[plugin.gpu-x_1]\n"
	"enabled = FALSE\n"
	"\n"
	"[plugin.empty]\n";

static const struct ckpt_config_key schema[] = {
	{ "level", CKPT_CFG_INT, "3", "how much" },
	{ "label", CKPT_CFG_STRING, NULL, "a name" },
	{ "fast", CKPT_CFG_BOOL, "no", "go fast" },
	{ NULL, 0, NULL, NULL },
};

/* Parse text, expect failure with -EINVAL and a message containing want. */
static void expect_error(const char *what, const char *text, const char *want)
{
	struct capture cap;
	struct config cfg;
	const char *out;
	int ret;

	capture_start(&cap, 2);
	ret = config_parse_string(&cfg, text, "test.conf");
	out = capture_end(&cap);
	CHECK(ret == -EINVAL, "%s: refused with -EINVAL (got %d)", what, ret);
	CHECK(strstr(out, want) != NULL, "%s: error says '%s'", what, want);
	CHECK(strchr(out, '\n') == out + strlen(out) - 1, "%s: error is one line", what);
	CHECK(cfg.nplugins == 0 && !cfg.plugins && !cfg.source, "%s: config left empty", what);
	config_free(&cfg);
}

static void test_good(void)
{
	struct config cfg;
	struct cfg_plugin *fs, *g, *e;
	int ret;

	ret = config_parse_string(&cfg, good_text, "good.conf");
	CHECK(ret == 0, "good config parses (%d)", ret);
	if (ret)
		return;
	CHECK(cfg.source && !strcmp(cfg.source, "good.conf"), "source recorded");
	CHECK(cfg.plugin_dir && !strcmp(cfg.plugin_dir, "/opt/ckpt/plugins"), "plugin_dir");
	CHECK(cfg.log_level == CKPT_LOG_DEBUG, "log_level debug (%d)", cfg.log_level);
	CHECK(cfg.nplugins == 3, "three plugin sections (%zu)", cfg.nplugins);

	fs = config_plugin(&cfg, "fs");
	CHECK(fs != NULL, "[plugin.fs] found");
	if (fs) {
		CHECK(fs->enabled == 1 && fs->optional == 0, "fs enabled=yes optional=off");
		CHECK(fs->path && !strcmp(fs->path, "/tmp/ckpt-fs.so"), "fs path");
		CHECK(fs->nkv == 2, "fs has two own keys (%zu)", fs->nkv);
		CHECK(fs->nkv == 2 && !strcmp(fs->kv[0].key, "level") &&
			      !strcmp(fs->kv[0].value, "5") && fs->kv[0].line == 11,
		      "fs level = 5 at line 11");
		CHECK(fs->nkv == 2 && !strcmp(fs->kv[1].value, "hello world"),
		      "inline comment stripped");
		CHECK(fs->order == 0 && fs->line == 7, "fs is first, header at line 7");
		CHECK(fs->source && !strcmp(fs->source, "good.conf"), "fs knows its file");
		CHECK(config_check_schema(fs, schema) == 0, "fs keys match the schema");
	}
	g = config_plugin(&cfg, "gpu-x_1");
	CHECK(g && g->enabled == 0 && g->optional == -1 && g->order == 1,
	      "gpu-x_1 disabled, optional unset, second");
	e = config_plugin(&cfg, "empty");
	CHECK(e && e->enabled == -1 && e->nkv == 0 && e->order == 2,
	      "empty section is recorded");
	CHECK(config_plugin(&cfg, "nope") == NULL, "absent plugin not found");

	CHECK(!strcmp(config_value(&cfg, "fs", "level", schema), "5"), "value: set");
	CHECK(!strcmp(config_value(&cfg, "empty", "level", schema), "3"), "value: default");
	CHECK(!strcmp(config_value(&cfg, "nope", "fast", schema), "no"),
	      "value: default for a plugin without section");
	CHECK(config_value(&cfg, "empty", "label", schema) == NULL, "value: no default");
	CHECK(config_value(&cfg, "fs", "other", schema) == NULL, "value: unknown key");
	CHECK(!strcmp(config_value(NULL, "fs", "level", schema), "3"), "value: no config");
	config_free(&cfg);
	CHECK(cfg.nplugins == 0 && cfg.plugins == NULL, "config_free empties");
	config_free(&cfg);
}

static void test_errors(void)
{
	expect_error("unknown section", "[ckpt]\nlog_level = 1\n\n[foo]\nx = 1\n",
		     "test.conf:4: unknown section [foo]");
	expect_error("empty unknown section", "[bar]\n", "unknown section [bar]");
	expect_error("unknown key in [ckpt]", "[ckpt]\nplugin_dir = /x\nfoo = 1\n",
		     "test.conf:3: unknown key \"foo\" in [ckpt] (known: plugin_dir, log_level, compress)");
	expect_error("bad bool", "[plugin.fs]\n\nenabled = maybe\n",
		     "test.conf:3: bad value \"maybe\" for enabled in [plugin.fs]");
	expect_error("bad optional", "[plugin.fs]\noptional =\n", "for optional in [plugin.fs]");
	expect_error("bad log level", "[ckpt]\nlog_level = loud\n", "for log_level in [ckpt]");
	expect_error("duplicate section", "[plugin.fs]\na = 1\n[ckpt]\n[plugin.fs]\nb = 2\n",
		     "test.conf:4: duplicate section [plugin.fs] (first at line 1)");
	expect_error("duplicate empty section", "[plugin.fs]\n[plugin.fs]\n",
		     "test.conf:2: duplicate section [plugin.fs]");
	expect_error("duplicate [ckpt]", "[ckpt]\n[ckpt]\n", "duplicate section [ckpt]");
	expect_error("duplicate key", "[plugin.fs]\na = 1\na = 2\n",
		     "test.conf:3: duplicate key \"a\" in [plugin.fs] (first at line 2)");
	expect_error("duplicate host key", "[plugin.fs]\nenabled = 1\nenabled = 0\n",
		     "duplicate key \"enabled\"");
	expect_error("bad plugin name", "[plugin.Fs]\n", "bad plugin name \"Fs\"");
	expect_error("empty plugin name", "[plugin.]\n", "bad plugin name \"\"");
	expect_error("key outside a section", "a = 1\n", "test.conf:1: key \"a\" outside any section");
	expect_error("syntax error", "[ckpt]\nplugin_dir = /x\njunk\n", "test.conf:3: syntax error");
	expect_error("unterminated section", "[ckpt\n", "test.conf:1: syntax error");
	expect_error("continuation line", "[plugin.fs]\na = 1\n  more\n",
		     "test.conf:3: indented line continues a value");
	{
		char text[600];

		snprintf(text, sizeof(text), "[plugin.fs]\na = %0500d\n", 1);
		expect_error("long line", text, "test.conf:2: line longer than");
	}
	/* the first error wins even when a syntax error follows */
	expect_error("first error wins", "[ckpt]\nfoo = 1\njunk\n", "test.conf:2: unknown key");
	expect_error("syntax error before key error", "junk\n[ckpt]\nfoo = 1\n",
		     "test.conf:1: syntax error");
}

static void test_schema(void)
{
	struct capture cap;
	struct config cfg;
	struct cfg_plugin *p;
	const char *out;
	int ret;

	ret = config_parse_string(&cfg,
				  "[plugin.a]\nlevel = 12\nfast = on\nlabel = x\n"
				  "[plugin.b]\nlevel = 2\ncolour = red\n"
				  "[plugin.c]\nlevel = high\n"
				  "[plugin.d]\nfast = sometimes\n"
				  "[plugin.e]\nlevel = -4\n"
				  "[plugin.f]\nlevel = 99999999999999999999999\n",
				  "schema.conf");
	CHECK(ret == 0, "schema config parses");
	if (ret)
		return;
	CHECK(config_check_schema(config_plugin(&cfg, "a"), schema) == 0, "schema: valid keys");
	CHECK(config_check_schema(config_plugin(&cfg, "e"), schema) == 0, "schema: negative int");
	CHECK(config_check_schema(NULL, schema) == 0, "schema: no section");

	capture_start(&cap, 2);
	ret = config_check_schema(config_plugin(&cfg, "b"), schema);
	out = capture_end(&cap);
	CHECK(ret == -EINVAL, "schema: unknown plugin key refused");
	CHECK(strstr(out, "schema.conf:7: unknown key \"colour\" in [plugin.b] "
			  "(known: level, label, fast)") != NULL,
	      "schema: error names file, line, key and known keys");

	capture_start(&cap, 2);
	ret = config_check_schema(config_plugin(&cfg, "c"), schema);
	out = capture_end(&cap);
	CHECK(ret == -EINVAL, "schema: int key with non-number refused");
	CHECK(strstr(out, "schema.conf:9: bad value \"high\" for level in [plugin.c]") != NULL,
	      "schema: bad int message");

	capture_start(&cap, 2);
	ret = config_check_schema(config_plugin(&cfg, "d"), schema);
	capture_end(&cap);
	CHECK(ret == -EINVAL, "schema: bool key with non-bool refused");

	capture_start(&cap, 2);
	ret = config_check_schema(config_plugin(&cfg, "f"), schema);
	capture_end(&cap);
	CHECK(ret == -EINVAL, "schema: out-of-range int refused");

	p = config_plugin(&cfg, "a");
	capture_start(&cap, 2);
	ret = config_check_schema(p, NULL);
	out = capture_end(&cap);
	CHECK(ret == -EINVAL && strstr(out, "takes no keys"), "schema: plugin without keys");
	config_free(&cfg);
}

static void test_bool(void)
{
	static const char *const t[] = { "true", "yes", "on", "1", "TRUE", "Yes" };
	static const char *const f[] = { "false", "no", "off", "0", "Off" };
	bool b;
	size_t i;
	int ok = 1;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		ok &= config_parse_bool(t[i], &b) == 0 && b;
	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		ok &= config_parse_bool(f[i], &b) == 0 && !b;
	CHECK(ok, "bools: true/false yes/no on/off 1/0");
	CHECK(config_parse_bool("2", &b) == -EINVAL && config_parse_bool("", &b) == -EINVAL &&
		      config_parse_bool(NULL, &b) == -EINVAL,
	      "bools: others refused");
}

static void test_load(void)
{
	char path[] = "/tmp/ckpt-test-config-XXXXXX";
	struct capture cap;
	struct config cfg;
	const char *out;
	FILE *f;
	int fd, ret;

	fd = mkstemp(path);
	CHECK(fd >= 0, "temp config created");
	if (fd < 0)
		return;
	f = fdopen(fd, "w");
	fputs(good_text, f);
	fclose(f);

	unsetenv("CKPT_CONFIG");
	ret = config_load(&cfg, path);
	CHECK(ret == 0 && cfg.source && !strcmp(cfg.source, path) && cfg.nplugins == 3,
	      "load: explicit path");
	config_free(&cfg);

	capture_start(&cap, 2);
	ret = config_load(&cfg, "/nonexistent/ckpt.conf");
	out = capture_end(&cap);
	CHECK(ret == -ENOENT, "load: missing explicit file is an error (%d)", ret);
	CHECK(strstr(out, "/nonexistent/ckpt.conf") != NULL, "load: error names the file");

	setenv("CKPT_CONFIG", path, 1);
	ret = config_load(&cfg, NULL);
	CHECK(ret == 0 && cfg.source && !strcmp(cfg.source, path), "load: $CKPT_CONFIG");
	config_free(&cfg);

	setenv("CKPT_CONFIG", "/nonexistent/env.conf", 1);
	capture_start(&cap, 2);
	ret = config_load(&cfg, NULL);
	out = capture_end(&cap);
	CHECK(ret == -ENOENT && strstr(out, "CKPT_CONFIG"), "load: missing $CKPT_CONFIG is an error");
	unsetenv("CKPT_CONFIG");

	if (access("/etc/ckpt/ckpt.conf", F_OK) == 0) {
		printf("# /etc/ckpt/ckpt.conf exists: built-in defaults not tested\n");
	} else {
		ret = config_load(&cfg, NULL);
		CHECK(ret == 0 && cfg.source == NULL && cfg.nplugins == 0 &&
			      cfg.log_level == -1 && !cfg.plugin_dir,
		      "load: built-in defaults");
		config_free(&cfg);
	}
	unlink(path);
}

int main(void)
{
	log_init(NULL, CKPT_LOG_WARN);
	test_good();
	test_errors();
	test_schema();
	test_bool();
	test_load();
	return tap_done();
}
