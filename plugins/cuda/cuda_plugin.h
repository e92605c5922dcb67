/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * cuda plugin: shared declarations of cuda.c (hooks) and driver.c (libcuda
 * opened with dlopen, wrappers of its checkpoint API).
 */
#ifndef CKPT_CUDA_PLUGIN_H
#define CKPT_CUDA_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "cuda_api.h"

#define CUDA_NAME "cuda"

/* libcuda, opened lazily. */
struct cuda_drv {
	void *handle;
	char *path; /* what was opened (the `library` config value) */
	int version; /* cuDriverGetVersion, 0 when unknown */
	bool initialized; /* cuInit succeeded in this process */
	ckpt_cuInit_t init;
	ckpt_cuGetErrorString_t get_error_string;
	ckpt_cuGetErrorName_t get_error_name;
	ckpt_cuDriverGetVersion_t driver_get_version;
	ckpt_cuCheckpointProcessGetRestoreThreadId_t get_restore_tid;
	ckpt_cuCheckpointProcessGetState_t get_state;
	ckpt_cuCheckpointProcessLock_t lock;
	ckpt_cuCheckpointProcessCheckpoint_t checkpoint;
	ckpt_cuCheckpointProcessRestore_t restore;
	ckpt_cuCheckpointProcessUnlock_t unlock;
};

/* Open lib and resolve the checkpoint API.  0, or -ENOENT when the library
 * cannot be opened, -ENOTSUP when it has no checkpoint API (driver older
 * than 550); why gets one line either way.  Loading again with the same
 * path is a no-op; another path closes the old one first. */
int cuda_drv_load(struct cuda_drv *d, const char *lib, char *why, size_t len);
void cuda_drv_unload(struct cuda_drv *d);
static inline bool cuda_drv_loaded(const struct cuda_drv *d)
{
	return d->handle != NULL;
}

/* "CUDA_ERROR_TIMEOUT (909): the launch timed out ..." */
const char *cuda_drv_strerror(const struct cuda_drv *d, CUresult r, char *buf, size_t len);
const char *cuda_state_name(int state);

/* cuInit(0) once; restoring GPU state needs an initialised GPU, which only
 * persistence mode or a process that called cuInit keep up. */
CUresult cuda_drv_init(struct cuda_drv *d);
CUresult cuda_drv_get_state(const struct cuda_drv *d, pid_t pid, int *state);
CUresult cuda_drv_restore_tid(const struct cuda_drv *d, pid_t pid, int *tid);
CUresult cuda_drv_lock(const struct cuda_drv *d, pid_t pid, unsigned int timeout_ms);
CUresult cuda_drv_checkpoint(const struct cuda_drv *d, pid_t pid);
CUresult cuda_drv_restore(const struct cuda_drv *d, pid_t pid);
CUresult cuda_drv_unlock(const struct cuda_drv *d, pid_t pid);

#endif
