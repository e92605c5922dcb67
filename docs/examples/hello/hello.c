/* hello — an example ckpt plugin: logs the start and end of every dump and
 * restore, and can be told to refuse dumps (to try the failure path). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ckpt-plugin.h>

#define NAME "hello"

struct hello {
	const struct ckpt_host *host;
	const char *tag;   /* [plugin.hello] tag */
	bool refuse_dump;  /* [plugin.hello] refuse_dump */
	unsigned int dumps;
};

#define say(h, level, ...) ((h)->host->log(NAME, (level), __VA_ARGS__))

/* Booleans arrive as text; ckpt has already checked they are valid. */
static bool parse_bool(const char *s, bool def)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };

	if (!s)
		return def;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!strcasecmp(s, yes[i]))
			return true;
	return false;
}

static int hello_init(const struct ckpt_host *host, void **priv)
{
	struct hello *h;

	if (host->abi_major != CKPT_PLUGIN_ABI_MAJOR)
		return -EPROTO; /* cannot happen: ckpt checked it already */
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->host = host;
	h->tag = host->config_get(NAME, "tag");
	if (!h->tag)
		h->tag = "hello";
	h->refuse_dump = parse_bool(host->config_get(NAME, "refuse_dump"), false);
	*priv = h;
	return 0;
}

static void hello_fini(void *priv)
{
	struct hello *h = priv;

	say(h, CKPT_LOG_DEBUG, "%s: unloading after %u dump(s)", h->tag, h->dumps);
	free(h);
}

static int hello_dump_start(void *priv, pid_t root)
{
	struct hello *h = priv;

	if (h->refuse_dump) {
		say(h, CKPT_LOG_ERROR, "%s: refusing to dump %d (refuse_dump is set)",
		    h->tag, (int)root);
		return -EPERM;
	}
	say(h, CKPT_LOG_INFO, "%s: dump of %d starts, images in %s", h->tag, (int)root,
	    h->host->images_dir());
	return 0;
}

static int hello_dump_finish(void *priv, int ok)
{
	struct hello *h = priv;

	if (ok)
		h->dumps++;
	say(h, CKPT_LOG_INFO, "%s: dump %s", h->tag, ok ? "succeeded" : "failed");
	return 0;
}

static int hello_restore_finish(void *priv, int ok)
{
	struct hello *h = priv;

	say(h, CKPT_LOG_INFO, "%s: restore %s", h->tag, ok ? "succeeded" : "failed");
	return 0;
}

static int hello_check(void *priv, char *msg, size_t len)
{
	struct hello *h = priv;

	snprintf(msg, len, "%s: works everywhere", h->tag);
	return 0;
}

static const struct ckpt_lifecycle_hooks hello_lifecycle = {
	.version = CKPT_LIFECYCLE_HOOKS_VERSION,
	.dump_start = hello_dump_start,
	.dump_finish = hello_dump_finish,
	.restore_finish = hello_restore_finish,
	.check = hello_check,
};

static const struct ckpt_config_key hello_config[] = {
	{ .key = "tag", .type = CKPT_CFG_STRING, .def = "hello",
	  .help = "word that starts every log line of this plugin" },
	{ .key = "refuse_dump", .type = CKPT_CFG_BOOL, .def = "false",
	  .help = "make every dump fail (to try the failure path)" },
	{ .key = NULL },
};

CKPT_PLUGIN_EXPORT = {
	.abi_major = CKPT_PLUGIN_ABI_MAJOR,
	.abi_minor = CKPT_PLUGIN_ABI_MINOR,
	.name = NAME,
	.version = "1.0.0",
	.description = "logs the start and end of every dump and restore",
	.config = hello_config,
	.init = hello_init,
	.fini = hello_fini,
	.lifecycle = &hello_lifecycle,
};
