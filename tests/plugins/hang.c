/* SPDX-License-Identifier: GPL-2.0-only */
/* Test plugin: stops ckpt in the middle of a dump, after the tree was
 * frozen and syscalls were injected into it, so that a test can SIGKILL
 * ckpt there and see the tree run on.  With `file` set, the first fd the
 * dump asks about creates that file and waits for a signal. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include "ckpt-plugin.h"

struct hang {
	const struct ckpt_host *host;
	const char *file;
	bool waited; /* once per dump */
};

static int hang_init(const struct ckpt_host *host, void **priv)
{
	struct hang *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	h->host = host;
	h->file = host->config_get("hang", "file");
	*priv = h;
	return 0;
}

static void hang_fini(void *priv)
{
	free(priv);
}

static int hang_dump_fd(void *priv, const struct ckpt_fd_info *fd, uint32_t obj_id,
			const char **klass)
{
	struct hang *h = priv;
	int mark;

	(void)fd;
	(void)obj_id;
	(void)klass;
	if (!h->file || h->waited)
		return CKPT_NOT_MINE;
	h->waited = true;
	h->host->log("hang", CKPT_LOG_INFO, "waiting to be killed");
	mark = open(h->file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (mark >= 0)
		close(mark);
	pause(); /* until a signal ckpt catches (SIGTERM) or one that kills it */
	return CKPT_NOT_MINE;
}

static const struct ckpt_config_key hang_config[] = {
	{ "file", CKPT_CFG_STRING, NULL, "create this file mid-dump and wait for a signal" },
	{ NULL, 0, NULL, NULL },
};

static const char *const hang_classes[] = { "hang-file", NULL };

static const struct ckpt_fd_hooks hang_fd = {
	.version = 1,
	.classes = hang_classes,
	.dump = hang_dump_fd,
};

CKPT_PLUGIN_EXPORT = {
	.abi_major = CKPT_PLUGIN_ABI_MAJOR,
	.abi_minor = 0,
	.name = "hang",
	.version = "1.0.0",
	.description = "test plugin that stops a dump until ckpt is killed",
	.config = hang_config,
	.init = hang_init,
	.fini = hang_fini,
	.fd = &hang_fd,
};
