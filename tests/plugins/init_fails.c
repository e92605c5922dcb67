/* SPDX-License-Identifier: GPL-2.0-only */
/* Test plugin whose init fails with -EIO. */
#include <errno.h>
#include "ckpt-plugin.h"

static int init_fails_init(const struct ckpt_host *host, void **priv)
{
	(void)host;
	(void)priv;
	return -EIO;
}

CKPT_PLUGIN_EXPORT = {
	.abi_major = CKPT_PLUGIN_ABI_MAJOR,
	.abi_minor = CKPT_PLUGIN_ABI_MINOR,
	.name = "init_fails",
	.version = "1.0",
	.description = "test plugin whose init fails",
	.init = init_fails_init,
};
