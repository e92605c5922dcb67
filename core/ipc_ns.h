/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef CKPT_IPC_NS_H
#define CKPT_IPC_NS_H

#include <stddef.h>
#include <sys/types.h>

/* Move this thread into the ipc namespace of pid; *back is ours to return
 * to with ipc_ns_leave (which closes it; a failure there is fatal to the
 * caller's run). */
int ipc_ns_enter(pid_t pid, int *back);
int ipc_ns_leave(int back);
/* /proc/sys/kernel/NAME of the current ipc namespace. */
int ipc_sysctl_read(const char *name, char *buf, size_t len);
int ipc_sysctl_write(const char *name, const char *val);

#endif
