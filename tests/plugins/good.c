/* SPDX-License-Identifier: GPL-2.0-only */
/* Test plugin: a valid plugin with a config schema, a lifecycle table with a
 * check hook, an fd table that claims nothing and one image type.  When an
 * images directory is open, dump_start writes good.img through the host
 * table and restore_start reads it back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <protobuf-c/protobuf-c.h>
#include "ckpt-plugin.h"

struct good {
	const struct ckpt_host *host;
	int level;
};

static int good_init(const struct ckpt_host *host, void **priv)
{
	struct good *g = calloc(1, sizeof(*g));
	const char *level;

	if (!g)
		return -ENOMEM;
	g->host = host;
	level = host->config_get("good", "level");
	g->level = level ? atoi(level) : -1;
	host->log("good", CKPT_LOG_DEBUG, "init, level %d", g->level);
	*priv = g;
	return 0;
}

static void good_fini(void *priv)
{
	free(priv);
}

static int good_check(void *priv, char *msg, size_t len)
{
	struct good *g = priv;

	snprintf(msg, len, "good: level %d", g->level);
	return 0;
}

#define GOOD_IMG "good.img"
#define GOOD_TYPE "ckpt.test.GoodRecord"
#define GOOD_REC "good record"

static int good_dump_start(void *priv, pid_t root)
{
	struct good *g = priv;
	struct ckpt_img *img;
	int ret;

	(void)root;
	if (!g->host->images_dir())
		return 0;
	img = g->host->img_create(GOOD_IMG, GOOD_TYPE);
	if (!img)
		return -errno;
	ret = g->host->img_write(img, GOOD_REC, strlen(GOOD_REC));
	if (g->host->img_close(img) && !ret)
		ret = -EIO;
	return ret;
}

static int good_restore_start(void *priv)
{
	struct good *g = priv;
	struct ckpt_img *img;
	void *rec = NULL;
	size_t len = 0;
	int ret;

	img = g->host->img_open(GOOD_IMG, GOOD_TYPE);
	if (!img)
		return -errno;
	ret = g->host->img_read(img, &rec, &len);
	if (ret == 1)
		ret = len == strlen(GOOD_REC) && !memcmp(rec, GOOD_REC, len) ? 0 : -EBADMSG;
	else if (ret == 0)
		ret = -ENODATA;
	free(rec);
	g->host->img_close(img);
	return ret;
}

static int good_dump_fd(void *priv, const struct ckpt_fd_info *fd, uint32_t obj_id,
			const char **klass)
{
	(void)priv;
	(void)fd;
	(void)obj_id;
	(void)klass;
	return CKPT_NOT_MINE;
}

static const struct ckpt_config_key good_config[] = {
	{ "level", CKPT_CFG_INT, "3", "how good, 0-9" },
	{ "label", CKPT_CFG_STRING, NULL, "a \"quoted\" label\\name" },
	{ NULL, 0, NULL, NULL },
};

static const struct ckpt_lifecycle_hooks good_lifecycle = {
	.version = 1, /* the lifecycle table as ABI 1.0 defined it */
	.dump_start = good_dump_start,
	.restore_start = good_restore_start,
	.check = good_check,
};

static const char *const good_classes[] = { "good-file", NULL };

static const struct ckpt_fd_hooks good_fd = {
	.version = 1, /* the fd table as ABI 1.0 defined it */
	.classes = good_classes,
	.dump = good_dump_fd,
};

/* A record type with no fields, enough for a lookup by name. */
static const ProtobufCMessageDescriptor good_record = {
	.magic = PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC,
	.name = "ckpt.test.GoodRecord",
	.short_name = "GoodRecord",
	.c_name = "Ckpt__Test__GoodRecord",
	.package_name = "ckpt.test",
	.sizeof_message = sizeof(ProtobufCMessage),
};

static const ProtobufCMessageDescriptor *const good_types[] = { &good_record, NULL };

CKPT_PLUGIN_EXPORT = {
	.abi_major = CKPT_PLUGIN_ABI_MAJOR,
	.abi_minor = 0, /* built against ABI 1.0: an older minor must keep loading */
	.name = "good",
	.version = "1.2.3",
	.description = "test plugin that loads",
	.config = good_config,
	.init = good_init,
	.fini = good_fini,
	.lifecycle = &good_lifecycle,
	.fd = &good_fd,
	.image_types = good_types,
};
