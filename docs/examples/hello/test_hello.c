/* Loads ckpt-hello.so the way ckpt does and drives its hooks with a fake
 * host table.  Usage: test_hello PATH/ckpt-hello.so */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <ckpt-plugin.h>

static char last[512];         /* the last line logged */
static const char *refuse = "false";

static void fake_log(const char *plugin, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last, sizeof(last), fmt, ap);
	va_end(ap);
	printf("# [%s:%d] %s\n", plugin, level, last);
}

static const char *fake_config_get(const char *plugin, const char *key)
{
	if (strcmp(plugin, "hello"))
		return NULL;
	if (!strcmp(key, "tag"))
		return "test";
	if (!strcmp(key, "refuse_dump"))
		return refuse;
	return NULL;
}

static const char *fake_images_dir(void)
{
	return "/nonexistent";
}

static const struct ckpt_host host = {
	.version = CKPT_HOST_VERSION,
	.abi_major = CKPT_PLUGIN_ABI_MAJOR,
	.abi_minor = CKPT_PLUGIN_ABI_MINOR,
	.log = fake_log,
	.config_get = fake_config_get,
	.images_dir = fake_images_dir,
};

static int failures, n;

static void ok(int cond, const char *what)
{
	printf("%s %d - %s\n", cond ? "ok" : "not ok", ++n, what);
	if (!cond)
		failures++;
}

int main(int argc, char **argv)
{
	const struct ckpt_plugin_desc *d;
	const struct ckpt_lifecycle_hooks *lc;
	char msg[128] = "";
	void *so, *priv = NULL;

	if (argc != 2) {
		fprintf(stderr, "usage: %s ckpt-hello.so\n", argv[0]);
		return 2;
	}
	so = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!so) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	d = dlsym(so, CKPT_PLUGIN_SYMBOL);
	ok(d != NULL, "exports " CKPT_PLUGIN_SYMBOL);
	if (!d)
		return 1;
	ok(d->abi_major == CKPT_PLUGIN_ABI_MAJOR && d->abi_minor <= CKPT_PLUGIN_ABI_MINOR,
	   "ABI is loadable");
	ok(!strcmp(d->name, "hello"), "name is hello");
	ok(d->config && !strcmp(d->config[0].key, "tag") && d->config[2].key == NULL,
	   "declares tag and refuse_dump");
	lc = d->lifecycle;
	ok(lc && lc->version >= 1 && lc->dump_start && lc->dump_finish, "lifecycle hooks set");

	ok(d->init(&host, &priv) == 0, "init");
	ok(lc->check(priv, msg, sizeof(msg)) == 0 && strstr(msg, "test:"), "check");
	ok(lc->dump_start(priv, 1234) == 0 && strstr(last, "test: dump of 1234 starts"),
	   "dump_start logs the pid with the tag");
	ok(lc->dump_finish(priv, 1) == 0 && strstr(last, "dump succeeded"), "dump_finish");
	d->fini(priv);

	refuse = "yes";
	ok(d->init(&host, &priv) == 0, "init with refuse_dump = yes");
	ok(lc->dump_start(priv, 1234) == -EPERM, "dump_start refuses");
	d->fini(priv);

	dlclose(so);
	printf("1..%d\n", n);
	return failures ? 1 : 0;
}
