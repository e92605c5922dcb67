/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef CKPT_WORKER_MSG_H
#define CKPT_WORKER_MSG_H
#include <stddef.h>
/* First thing on the ready pipe: the worker's verdict; on success its
 * /proc/self/maps text follows (maps_len bytes). */
struct worker_msg {
	int err;
	size_t maps_len;
	char text[512];
};
#endif
