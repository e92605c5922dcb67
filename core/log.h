/* SPDX-License-Identifier: GPL-2.0-only */
/* Logging: every line carries a subsystem prefix ("dump", "restore",
 * "plugin:fs" ...).  Errors always reach stderr as one line; the log file
 * (-o) gets everything up to the verbosity (-v). */
#ifndef CKPT_LOG_H
#define CKPT_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include "ckpt-plugin.h"

int log_init(const char *path, int verbosity); /* path may be NULL */
void log_fini(void);
void log_msg(const char *prefix, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(const char *prefix, int level, const char *fmt, va_list ap);
bool log_stderr_is_tty(void);
int log_verbosity(void);
void log_set_verbosity(int v);
/* From now on keep the first error in buf instead of printing anything. */
void log_worker_mode(char *buf, size_t len);

#define pr_err(pfx, ...) log_msg(pfx, CKPT_LOG_ERROR, __VA_ARGS__)
#define pr_warn(pfx, ...) log_msg(pfx, CKPT_LOG_WARN, __VA_ARGS__)
#define pr_info(pfx, ...) log_msg(pfx, CKPT_LOG_INFO, __VA_ARGS__)
#define pr_debug(pfx, ...) log_msg(pfx, CKPT_LOG_DEBUG, __VA_ARGS__)

#endif
