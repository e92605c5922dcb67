/* SPDX-License-Identifier: GPL-2.0-only */
/* Test plugin with an fd hook table of version 1 whose dump hook is NULL:
 * the host must not call it. */
#include "ckpt-plugin.h"

static const char *const missing_hook_classes[] = { "missing", NULL };

static const struct ckpt_fd_hooks missing_hook_fd = {
	.version = 1,
	.classes = missing_hook_classes,
	.dump = NULL,
	.restore = NULL,
};

CKPT_PLUGIN_EXPORT = {
	.abi_major = CKPT_PLUGIN_ABI_MAJOR,
	.abi_minor = CKPT_PLUGIN_ABI_MINOR,
	.name = "missing_hook",
	.version = "1.0",
	.description = "test plugin with a hook table missing its hooks",
	.fd = &missing_hook_fd,
};
