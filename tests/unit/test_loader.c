/* SPDX-License-Identifier: GPL-2.0-only */
/* Unit tests of the plugin loader (core/plugin.c) with the test plugins of
 * tests/plugins, found through $CKPT_PLUGIN_PATH or a [plugin.NAME] path. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <protobuf-c/protobuf-c.h>

#include "config.h"
#include "image.h"
#include "log.h"
#include "plugin.h"
#include "capture.h"
#include "tap.h"

#ifndef TEST_PLUGIN_DIR
#error "TEST_PLUGIN_DIR must point at the built test plugins"
#endif


static struct config cfg;
static struct capture cap;

/* Load with config text (NULL: none) and --plugins list; stderr captured. */
static int load(const char *text, const char *only, const char **err)
{
	int ret;

	plugins_unload();
	config_free(&cfg);
	if (text && config_parse_string(&cfg, text, "loader.conf")) {
		CHECK(0, "config for the test parses");
		return -999;
	}
	capture_start(&cap, 2);
	ret = plugins_load(&cfg, only);
	*err = capture_end(&cap);
	return ret;
}

static int check_hook(struct plugin *p, char *msg, size_t len)
{
	const struct ckpt_lifecycle_hooks *lc = p->desc->lifecycle;

	msg[0] = '\0';
	if (!HOOK_OK(lc, 1, check))
		return -ENOSYS;
	return lc->check(p->priv, msg, len);
}

/* dump_start writes good.img through the host table: the plugin is used. */
static void test_images(struct plugin *p)
{
	char dir[] = "/tmp/ckpt-test-loader-XXXXXX";
	char path[sizeof(dir) + 16];
	const char *err;
	int ret;

	if (!mkdtemp(dir)) {
		CHECK(0, "images: temp directory");
		return;
	}
	ret = img_store_open(dir, true);
	CHECK(ret == 0, "images: store open for writing");
	ret = plugins_dump_start(1);
	CHECK(ret == 0 && p->used, "images: img_create in a hook marks the plugin used");
	img_store_close();
	ret = img_store_open(dir, false);
	CHECK(ret == 0, "images: store open for reading");
	ret = plugins_restore_start();
	CHECK(ret == 0, "images: the plugin reads its image back (%d)", ret);
	img_store_close();

	snprintf(path, sizeof(path), "%s/good.img", dir);
	unlink(path);
	ret = img_store_open(dir, false);
	capture_start(&cap, 2);
	ret = plugins_restore_start();
	err = capture_end(&cap);
	CHECK(ret == -ENOENT && strstr(err, "plugin: good: restore_start hook failed"),
	      "images: a failing hook fails the broadcast, naming the plugin");
	img_store_close();
	rmdir(dir);
	p->used = false;
}

static void test_good(void)
{
	struct ckpt_fd_info fi = { .pid = 1, .fd = 3, .local_fd = -1, .link = "/x" };
	struct plugin *p, *owner = NULL;
	const char *err, *klass = NULL, *v;
	char msg[128];
	int ret, fd;

	ret = load(NULL, "good", &err);
	CHECK(ret == 0, "good: loads (%d)", ret);
	CHECK(nplugins == 1, "good: one plugin loaded");
	p = plugin_find("good");
	CHECK(p && p->initialized && !p->optional && !p->used, "good: initialized");
	if (!p)
		return;
	CHECK(p->path && strstr(p->path, TEST_PLUGIN_DIR "/ckpt-good.so"), "good: path %s",
	      p->path);
	v = host_table.config_get("good", "level");
	CHECK(v && !strcmp(v, "3"), "good: config default level visible (%s)", v ?: "NULL");
	CHECK(host_table.config_get("good", "label") == NULL, "good: label has no default");
	CHECK(host_table.version == CKPT_HOST_VERSION &&
		      host_table.abi_major == CKPT_PLUGIN_ABI_MAJOR &&
		      host_table.abi_minor == CKPT_PLUGIN_ABI_MINOR,
	      "host table versions");
	CHECK(check_hook(p, msg, sizeof(msg)) == 0 && !strcmp(msg, "good: level 3"),
	      "good: check hook saw level 3 in init (%s)", msg);
	CHECK(plugins_current() == NULL, "no current plugin outside hooks");

	CHECK(plugins_dump_start(1) == 0 && plugins_tree_frozen(1) == 0 &&
		      plugins_dump_finish(1) == 0 && plugins_restore_resume(1) == 0 &&
		      plugins_restore_finish(1) == 0,
	      "good: lifecycle broadcasts succeed");
	CHECK(!p->used, "good: not used while it writes no image");
	test_images(p);
	ret = plugins_dump_fd(&fi, 1, &owner, &klass);
	CHECK(ret == -ENOTSUP && !owner && !p->used, "good: fd claimed by nobody (%d)", ret);
	capture_start(&cap, 2);
	ret = plugins_restore_fd("good", "other-class", 1, &fd);
	capture_end(&cap);
	CHECK(ret == -ENOTSUP, "good: restore of a class it does not own refused");
	capture_start(&cap, 2);
	ret = plugins_restore_fd("nosuch", "x", 1, &fd);
	err = capture_end(&cap);
	CHECK(ret == -ENOENT && strstr(err, "nosuch"), "restore through a missing plugin");

	CHECK(plugins_find_image_type("ckpt.test.GoodRecord") != NULL,
	      "image type of a plugin found");
	CHECK(plugins_find_image_type("ckpt.Inventory") != NULL, "core image type found");
	CHECK(plugins_find_image_type("ckpt.test.Nope") == NULL, "unknown image type");

	capture_start(&cap, 1);
	ret = plugins_list(false);
	err = capture_end(&cap);
	CHECK(ret == 0 && strstr(err, "good 1.2.3 (plugin ABI 1.0)") &&
		      strstr(err, "lifecycle v1 (dump_start, restore_start, check); fd v1 (dump)") &&
		      strstr(err, "fd classes:  good-file") &&
		      strstr(err, "level (int, default 3): how good"),
	      "plugins_list text");
	capture_start(&cap, 1);
	ret = plugins_list(true);
	err = capture_end(&cap);
	CHECK(ret == 0 && err[0] == '[' && strstr(err, "\"name\": \"good\"") &&
		      strstr(err, "\"abi\": {\"major\": 1, \"minor\": 0}") &&
		      strstr(err, "\"lifecycle\": {\"version\": 1, \"set\": "
				  "[\"dump_start\", \"restore_start\", \"check\"]}") &&
		      strstr(err, "\"fd_classes\": [\"good-file\"]") &&
		      strstr(err, "\"image_types\": [\"ckpt.test.GoodRecord\"]") &&
		      strstr(err, "\"help\": \"a \\\"quoted\\\" label\\\\name\"") &&
		      strstr(err, "\"default\": null"),
	      "plugins_list JSON, escaped");

	/* the config's own value wins over the default */
	ret = load("[plugin.good]\nlevel = 7\nlabel = hi\nenabled = true\n", NULL, &err);
	CHECK(ret == 0 && nplugins == 1, "good: enabled by its config section");
	v = host_table.config_get("good", "level");
	CHECK(v && !strcmp(v, "7"), "good: configured level visible");
	p = plugin_find("good");
	CHECK(p && check_hook(p, msg, sizeof(msg)) == 0 && !strcmp(msg, "good: level 7"),
	      "good: init saw the configured level");

	ret = load("[plugin.good]\ncolour = red\nenabled = true\n", NULL, &err);
	CHECK(ret == -EINVAL && nplugins == 0 &&
		      strstr(err, "loader.conf:2: unknown key \"colour\" in [plugin.good] "
				  "(known: level, label)"),
	      "good: unknown key refused by its schema");
	ret = load("[plugin.good]\nlevel = high\nenabled = true\n", NULL, &err);
	CHECK(ret == -EINVAL && strstr(err, "bad value \"high\" for level"),
	      "good: int key with non-number refused");
	ret = load("[plugin.good]\noptional = true\nlevel = high\nenabled = true\n", NULL, &err);
	CHECK(ret == -EINVAL, "good: config errors are errors for optional plugins too");
}

static void expect_refused(const char *name, const char *want1, const char *want2)
{
	const char *err;
	int ret;

	ret = load(NULL, name, &err);
	CHECK(ret < 0 && nplugins == 0, "%s: refused (%d)", name, ret);
	CHECK(strstr(err, want1) != NULL, "%s: error says '%s'", name, want1);
	CHECK(!want2 || strstr(err, want2), "%s: error says '%s'", name, want2 ?: "");
	CHECK(strstr(err, TEST_PLUGIN_DIR "/ckpt-") != NULL, "%s: error names the file", name);
	CHECK(strchr(err, '\n') == err + strlen(err) - 1, "%s: error is one line", name);
}

static void test_refused(void)
{
	char want[128];

	snprintf(want, sizeof(want), "built for plugin ABI %d.0, this ckpt speaks %d.%d",
		 CKPT_PLUGIN_ABI_MAJOR + 1, CKPT_PLUGIN_ABI_MAJOR, CKPT_PLUGIN_ABI_MINOR);
	expect_refused("abi_major", want, "rebuild the plugin against ckpt-plugin 1.x");
	snprintf(want, sizeof(want), "built for plugin ABI %d.%d, newer than this ckpt's %d.%d",
		 CKPT_PLUGIN_ABI_MAJOR, CKPT_PLUGIN_ABI_MINOR + 1, CKPT_PLUGIN_ABI_MAJOR,
		 CKPT_PLUGIN_ABI_MINOR);
	expect_refused("abi_minor_newer", want, NULL);
	expect_refused("no_symbol", "no_symbol (", "no \"ckpt_plugin\" symbol");
	expect_refused("init_fails", "init_fails (", "init failed: Input/output error");
}

static void test_optional_and_order(void)
{
	const char *err;
	int ret;

	ret = load("[plugin.init_fails]\noptional = true\nenabled = true\n[plugin.good]\nenabled = true\n", NULL, &err);
	CHECK(ret == 0 && nplugins == 1 && plugin_find("good") && !plugin_find("init_fails"),
	      "optional + failing init: skipped, the rest loads");
	CHECK(strstr(err, "warning: init_fails (") && strstr(err, "optional, skipped"),
	      "optional + failing init: a warning");
	ret = load("[plugin.abi_major]\noptional = yes\nenabled = 1\n[plugin.missing_plugin]\noptional = 1\nenabled = 1\n",
		   NULL, &err);
	CHECK(ret == 0 && nplugins == 0, "optional wrong ABI and optional missing: skipped");
	ret = load("[plugin.init_fails]\noptional = false\nenabled = true\n[plugin.good]\nenabled = true\n", NULL, &err);
	CHECK(ret == -EIO && nplugins == 0, "non-optional failing init fails the load");

	ret = load("[plugin.missing_hook]\nenabled = true\n[plugin.good]\nenabled = true\n", NULL, &err);
	CHECK(ret == 0 && nplugins == 2 && !strcmp(plugins[0].desc->name, "missing_hook") &&
		      !strcmp(plugins[1].desc->name, "good"),
	      "order: config order");
	ret = load(NULL, "missing_hook, good", &err);
	CHECK(ret == 0 && nplugins == 2 && !strcmp(plugins[0].desc->name, "good"),
	      "order: by name without config");
	ret = load("[plugin.missing_hook]\n", "good,missing_hook", &err);
	CHECK(ret == 0 && nplugins == 2 && !strcmp(plugins[0].desc->name, "missing_hook"),
	      "order: config sections first, then name");

	ret = load("[plugin.good]\nenabled = false\n[plugin.missing_hook]\nenabled = true\n", NULL, &err);
	CHECK(ret == 0 && nplugins == 1 && plugin_find("missing_hook"),
	      "enabled = false leaves a plugin out");
	ret = load("[plugin.good]\nenabled = false\n", "good", &err);
	CHECK(ret == 0 && nplugins == 1 && plugin_find("good"), "--plugins overrides enabled");

	ret = load("[plugin.nosuch]\noptional = true\n", "nosuch", &err);
	CHECK(ret == -ENOENT, "--plugins: a name not found is an error, optional or not");
	CHECK(strstr(err, "nosuch not found in: " TEST_PLUGIN_DIR) &&
		      strstr(err, "check --plugins or [plugin.nosuch] path"),
	      "not found: error lists the directories");
	ret = load(NULL, "Bad!", &err);
	CHECK(ret == -EINVAL, "--plugins: bad name refused");
	ret = load(NULL, "", &err);
	CHECK(ret == 0 && nplugins == 0, "--plugins= empty loads nothing");

	/* no --plugins, no enabled section: the in-tree plugins, optional */
	ret = load("[plugin.good]\nenabled = no\n", NULL, &err);
	CHECK(ret == 0 && !plugin_find("good"), "defaults: in-tree plugins only (%zu loaded)",
	      nplugins);
	size_t ndefault = nplugins;

	/* configuring a plugin's own keys must not switch the others off */
	ret = load("[plugin.fs]\nskip_file_check = true\n", NULL, &err);
	CHECK(ret == 0 && nplugins == ndefault && plugin_find("fs"),
	      "a section with only plugin keys keeps the default set (%zu loaded)", nplugins);

	/* a section naming a path adds that plugin to the defaults */
	char text[512];
	snprintf(text, sizeof(text), "[plugin.good]\npath = %s/ckpt-good.so\n", TEST_PLUGIN_DIR);
	ret = load(text, NULL, &err);
	CHECK(ret == 0 && nplugins == ndefault + 1 && plugin_find("good") && plugin_find("fs"),
	      "a section with a path adds an out-of-tree plugin to the defaults");
}

static void test_path_key(void)
{
	char text[1024];
	const char *err;
	int ret;

	unsetenv("CKPT_PLUGIN_PATH");
	snprintf(text, sizeof(text), "[plugin.good]\npath = %s/ckpt-good.so\nenabled = true\n", TEST_PLUGIN_DIR);
	ret = load(text, NULL, &err);
	CHECK(ret == 0 && nplugins == 1, "[plugin.good] path = file");
	snprintf(text, sizeof(text), "[plugin.good]\npath = %s\nenabled = true\n", TEST_PLUGIN_DIR);
	ret = load(text, NULL, &err);
	CHECK(ret == 0 && nplugins == 1, "[plugin.good] path = directory");
	ret = load("[plugin.good]\npath = /nonexistent/ckpt-good.so\nenabled = true\n", NULL, &err);
	CHECK(ret == -ENOENT && strstr(err, "/nonexistent/ckpt-good.so"),
	      "[plugin.good] path missing: error");
	snprintf(text, sizeof(text), "[ckpt]\nplugin_dir = %s\n[plugin.good]\nenabled = true\n", TEST_PLUGIN_DIR);
	ret = load(text, NULL, &err);
	CHECK(ret == 0 && nplugins == 1, "[ckpt] plugin_dir");
	setenv("CKPT_PLUGIN_PATH", "/nonexistent:" TEST_PLUGIN_DIR, 1);
	ret = load(NULL, "good", &err);
	CHECK(ret == 0 && nplugins == 1, "$CKPT_PLUGIN_PATH with several directories");
}

static void test_missing_hook(void)
{
	struct ckpt_fd_info fi = { .pid = 1, .fd = 3, .local_fd = -1, .link = "/x" };
	struct plugin *owner = NULL;
	const char *err, *klass = NULL;
	int ret, fd = -1;

	ret = load(NULL, "missing_hook", &err);
	CHECK(ret == 0 && nplugins == 1, "missing_hook: loads");
	ret = plugins_dump_fd(&fi, 1, &owner, &klass);
	CHECK(ret == -ENOTSUP && !owner, "missing_hook: dump_fd not called, -ENOTSUP");
	capture_start(&cap, 2);
	ret = plugins_restore_fd("missing_hook", "missing", 1, &fd);
	capture_end(&cap);
	CHECK(ret == -ENOTSUP, "missing_hook: restore_fd not called, -ENOTSUP");
	/* an fd table of version 1 has no restore_in_task: never read past it */
	CHECK(plugins_restore_in_task("missing_hook", "missing", 1, 0) == 0,
	      "missing_hook: fd table v1, restore_in_task skipped");
	CHECK(plugins_restore_before_children("missing_hook", "missing", 1, 0) == 0,
	      "missing_hook: fd table v1, restore_before_children skipped");
	capture_start(&cap, 1);
	ret = plugins_list(false);
	err = capture_end(&cap);
	CHECK(ret == 0 && strstr(err, "fd v1 (none set)"), "missing_hook: listed");
}

int main(void)
{
	log_init(NULL, CKPT_LOG_WARN);
	setenv("CKPT_PLUGIN_PATH", TEST_PLUGIN_DIR, 1);
	test_good();
	test_refused();
	test_optional_and_order();
	test_missing_hook();
	test_path_key();
	plugins_unload();
	config_free(&cfg);
	return tap_done();
}
