// SPDX-License-Identifier: GPL-2.0-only
/*
 * cuda plugin: libcuda opened with dlopen at run time (the plugin is never
 * linked against it, so it loads on machines without a driver) and thin
 * wrappers of the driver's checkpoint API (cuCheckpointProcess*, CUDA 12.8+
 * headers, driver 550+).  None of these calls needs cuInit in the caller.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_plugin.h"

static void *sym(void *h, const char *name)
{
	return dlsym(h, name);
}

/* The library stays mapped: a driver may have started threads or
 * registered exit handlers in this process, dlclose is not worth the risk. */
void cuda_drv_unload(struct cuda_drv *d)
{
	free(d->path);
	memset(d, 0, sizeof(*d));
}

int cuda_drv_load(struct cuda_drv *d, const char *lib, char *why, size_t len)
{
	static const char *const required[] = {
		"cuCheckpointProcessGetState", "cuCheckpointProcessLock",
		"cuCheckpointProcessCheckpoint", "cuCheckpointProcessRestore",
		"cuCheckpointProcessUnlock",
	};
	void *h;

	if (why && len)
		why[0] = '\0';
	if (!lib || !*lib)
		lib = "libcuda.so.1";
	if (d->handle && d->path && !strcmp(d->path, lib))
		return 0;
	cuda_drv_unload(d);

	dlerror();
	h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *e = dlerror();

		if (why)
			snprintf(why, len, "%s", e ? e : "dlopen failed");
		return -ENOENT;
	}
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (!sym(h, required[i])) {
			if (why)
				snprintf(why, len,
					 "%s has no %s: the driver is too old for checkpointing "
					 "(550 or newer needed)",
					 lib, required[i]);
			dlclose(h);
			return -ENOTSUP;
		}
	}
	d->path = strdup(lib);
	if (!d->path) {
		dlclose(h);
		if (why)
			snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	d->handle = h;
	/* dlsym returns void *; POSIX guarantees it converts to a function
	 * pointer, the cast through an integer keeps -Wpedantic quiet */
#define RESOLVE(field, name) \
	d->field = (__typeof__(d->field))(uintptr_t)sym(h, name)
	RESOLVE(init, "cuInit");
	RESOLVE(get_error_string, "cuGetErrorString");
	RESOLVE(get_error_name, "cuGetErrorName");
	RESOLVE(driver_get_version, "cuDriverGetVersion");
	RESOLVE(get_restore_tid, "cuCheckpointProcessGetRestoreThreadId");
	RESOLVE(get_state, "cuCheckpointProcessGetState");
	RESOLVE(lock, "cuCheckpointProcessLock");
	RESOLVE(checkpoint, "cuCheckpointProcessCheckpoint");
	RESOLVE(restore, "cuCheckpointProcessRestore");
	RESOLVE(unlock, "cuCheckpointProcessUnlock");
#undef RESOLVE
	d->version = 0;
	if (d->driver_get_version) {
		int v = 0;

		if (d->driver_get_version(&v) == CUDA_SUCCESS)
			d->version = v;
	}
	return 0;
}

/* Names of the codes the checkpoint API documents, for a driver without
 * cuGetErrorName (or a fake one). */
static const char *known_name(int r)
{
	switch (r) {
	case 0: return "CUDA_SUCCESS";
	case 1: return "CUDA_ERROR_INVALID_VALUE";
	case 2: return "CUDA_ERROR_OUT_OF_MEMORY";
	case 3: return "CUDA_ERROR_NOT_INITIALIZED";
	case 100: return "CUDA_ERROR_NO_DEVICE";
	case 304: return "CUDA_ERROR_OPERATING_SYSTEM";
	case 401: return "CUDA_ERROR_ILLEGAL_STATE";
	case 500: return "CUDA_ERROR_NOT_FOUND";
	case 600: return "CUDA_ERROR_NOT_READY";
	case 801: return "CUDA_ERROR_NOT_SUPPORTED";
	case 909: return "CUDA_ERROR_TIMEOUT";
	case 999: return "CUDA_ERROR_UNKNOWN";
	}
	return NULL;
}

const char *cuda_drv_strerror(const struct cuda_drv *d, CUresult r, char *buf, size_t len)
{
	const char *name = NULL, *desc = NULL;

	if (d->get_error_name && d->get_error_name(r, &name) != CUDA_SUCCESS)
		name = NULL;
	if (d->get_error_string && d->get_error_string(r, &desc) != CUDA_SUCCESS)
		desc = NULL;
	if (!name)
		name = known_name((int)r);
	if (name && desc)
		snprintf(buf, len, "%s (%d): %s", name, (int)r, desc);
	else if (name || desc)
		snprintf(buf, len, "%s (%d)", name ? name : desc, (int)r);
	else
		snprintf(buf, len, "CUDA error %d", (int)r);
	return buf;
}

const char *cuda_state_name(int state)
{
	switch (state) {
	case CU_PROCESS_STATE_RUNNING: return "running";
	case CU_PROCESS_STATE_LOCKED: return "locked";
	case CU_PROCESS_STATE_CHECKPOINTED: return "checkpointed";
	case CU_PROCESS_STATE_FAILED: return "failed";
	}
	return "unknown";
}

CUresult cuda_drv_init(struct cuda_drv *d)
{
	CUresult r;

	if (d->initialized)
		return CUDA_SUCCESS;
	if (!d->init)
		return CUDA_ERROR_NOT_SUPPORTED;
	r = d->init(0);
	if (r == CUDA_SUCCESS)
		d->initialized = true;
	return r;
}

CUresult cuda_drv_get_state(const struct cuda_drv *d, pid_t pid, int *state)
{
	CUprocessState st = CU_PROCESS_STATE_RUNNING;
	CUresult r;

	if (!d->get_state)
		return CUDA_ERROR_NOT_SUPPORTED;
	r = d->get_state((int)pid, &st);
	if (r == CUDA_SUCCESS)
		*state = (int)st;
	return r;
}

CUresult cuda_drv_restore_tid(const struct cuda_drv *d, pid_t pid, int *tid)
{
	if (!d->get_restore_tid)
		return CUDA_ERROR_NOT_SUPPORTED;
	return d->get_restore_tid((int)pid, tid);
}

CUresult cuda_drv_lock(const struct cuda_drv *d, pid_t pid, unsigned int timeout_ms)
{
	CUcheckpointLockArgs args;

	if (!d->lock)
		return CUDA_ERROR_NOT_SUPPORTED;
	memset(&args, 0, sizeof(args));
	args.timeoutMs = timeout_ms;
	return d->lock((int)pid, &args);
}

CUresult cuda_drv_checkpoint(const struct cuda_drv *d, pid_t pid)
{
	CUcheckpointCheckpointArgs args;

	if (!d->checkpoint)
		return CUDA_ERROR_NOT_SUPPORTED;
	memset(&args, 0, sizeof(args));
	return d->checkpoint((int)pid, &args);
}

CUresult cuda_drv_restore(const struct cuda_drv *d, pid_t pid)
{
	CUcheckpointRestoreArgs args;

	if (!d->restore)
		return CUDA_ERROR_NOT_SUPPORTED;
	memset(&args, 0, sizeof(args)); /* no GPU remapping: same GPUs */
	return d->restore((int)pid, &args);
}

CUresult cuda_drv_unlock(const struct cuda_drv *d, pid_t pid)
{
	CUcheckpointUnlockArgs args;

	if (!d->unlock)
		return CUDA_ERROR_NOT_SUPPORTED;
	memset(&args, 0, sizeof(args));
	return d->unlock((int)pid, &args);
}
