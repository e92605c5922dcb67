/* SPDX-License-Identifier: GPL-2.0-only */
/* Test plugin built against a newer minor of the plugin ABI than the host's. */
#include "ckpt-plugin.h"

CKPT_PLUGIN_EXPORT = {
	.abi_major = CKPT_PLUGIN_ABI_MAJOR,
	.abi_minor = CKPT_PLUGIN_ABI_MINOR + 1,
	.name = "abi_minor_newer",
	.version = "1.0",
	.description = "test plugin from a newer ABI minor",
};
