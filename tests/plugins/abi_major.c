/* SPDX-License-Identifier: GPL-2.0-only */
/* Test plugin built for a plugin ABI major the host does not speak. */
#include "ckpt-plugin.h"

CKPT_PLUGIN_EXPORT = {
	.abi_major = CKPT_PLUGIN_ABI_MAJOR + 1,
	.abi_minor = 0,
	.name = "abi_major",
	.version = "1.0",
	.description = "test plugin from a future ABI major",
};
