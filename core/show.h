/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef CKPT_SHOW_H
#define CKPT_SHOW_H
#include <stdbool.h>
/* `ckpt show DIR [--json]`: decode every image of DIR (core and plugin
 * records through their protobuf descriptors; raw images summarized). */
int cmd_show(const char *dir, bool json);
#endif
