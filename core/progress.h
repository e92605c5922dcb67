/* SPDX-License-Identifier: GPL-2.0-only */
/* Progress of a long dump or restore on a terminal: stage, MB done, MB/s. */
#ifndef CKPT_PROGRESS_H
#define CKPT_PROGRESS_H
#include <stdint.h>
void progress_stage(const char *cmd, const char *stage);
void progress_bytes(uint64_t done, uint64_t total);
void progress_end(void);
#endif
