/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef CKPT_CHECK_H
#define CKPT_CHECK_H
#include <stdbool.h>
/* `ckpt check [--json]`: which kernel features and plugins work here. */
int cmd_check(bool json);
#endif
