/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The few CUDA driver API types the cuda plugin (and the fake libcuda of the
 * tests) needs.  With CKPT_HAVE_CUDA_H (meson found cuda.h) they come from
 * the toolkit's cuda.h; otherwise they are declared here with the layout and
 * values cuda.h gives them (CUDA 12.8+ / driver 550+), so the plugin builds
 * on a machine without CUDA.  Nothing here is linked: libcuda is opened with
 * dlopen at run time and every entry point is a pointer from dlsym.
 */
#ifndef CKPT_CUDA_API_H
#define CKPT_CUDA_API_H

#include <stdint.h>

#ifdef CKPT_HAVE_CUDA_H
#include <cuda.h>
#else

typedef int CUresult;

#define CUDA_SUCCESS 0
#define CUDA_ERROR_INVALID_VALUE 1
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_NOT_INITIALIZED 3
#define CUDA_ERROR_NO_DEVICE 100
#define CUDA_ERROR_OPERATING_SYSTEM 304
#define CUDA_ERROR_ILLEGAL_STATE 401
#define CUDA_ERROR_NOT_FOUND 500
#define CUDA_ERROR_NOT_READY 600
#define CUDA_ERROR_NOT_SUPPORTED 801
#define CUDA_ERROR_TIMEOUT 909
#define CUDA_ERROR_UNKNOWN 999

typedef uint64_t cuuint64_t;

typedef struct CUuuid_st {
	char bytes[16];
} CUuuid;

typedef enum CUprocessState_enum {
	CU_PROCESS_STATE_RUNNING = 0,
	CU_PROCESS_STATE_LOCKED,
	CU_PROCESS_STATE_CHECKPOINTED,
	CU_PROCESS_STATE_FAILED,
} CUprocessState;

typedef struct CUcheckpointLockArgs_st {
	unsigned int timeoutMs; /* 0: no timeout */
	unsigned int reserved0;
	cuuint64_t reserved1[7];
} CUcheckpointLockArgs;

typedef struct CUcheckpointCheckpointArgs_st {
	cuuint64_t reserved[8];
} CUcheckpointCheckpointArgs;

typedef struct CUcheckpointGpuPair_st {
	CUuuid oldUuid;
	CUuuid newUuid;
} CUcheckpointGpuPair;

typedef struct CUcheckpointRestoreArgs_st {
	CUcheckpointGpuPair *gpuPairs;
	unsigned int gpuPairsCount;
	char reserved[52 - sizeof(CUcheckpointGpuPair *)];
	cuuint64_t reserved1;
} CUcheckpointRestoreArgs;

typedef struct CUcheckpointUnlockArgs_st {
	cuuint64_t reserved[8];
} CUcheckpointUnlockArgs;

#endif /* CKPT_HAVE_CUDA_H */

/* The entry points, as pointers (the names the driver exports). */
typedef CUresult (*ckpt_cuInit_t)(unsigned int flags);
typedef CUresult (*ckpt_cuGetErrorString_t)(CUresult error, const char **str);
typedef CUresult (*ckpt_cuGetErrorName_t)(CUresult error, const char **str);
typedef CUresult (*ckpt_cuDriverGetVersion_t)(int *version);
typedef CUresult (*ckpt_cuCheckpointProcessGetRestoreThreadId_t)(int pid, int *tid);
typedef CUresult (*ckpt_cuCheckpointProcessGetState_t)(int pid, CUprocessState *state);
typedef CUresult (*ckpt_cuCheckpointProcessLock_t)(int pid, CUcheckpointLockArgs *args);
typedef CUresult (*ckpt_cuCheckpointProcessCheckpoint_t)(int pid, CUcheckpointCheckpointArgs *args);
typedef CUresult (*ckpt_cuCheckpointProcessRestore_t)(int pid, CUcheckpointRestoreArgs *args);
typedef CUresult (*ckpt_cuCheckpointProcessUnlock_t)(int pid, CUcheckpointUnlockArgs *args);

#endif
