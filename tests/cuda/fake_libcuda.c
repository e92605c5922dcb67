/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libcuda-fake.so — a stand-in for libcuda.so.1 with the driver's checkpoint
 * API (cuCheckpointProcess*, cuGetErrorString, cuGetErrorName,
 * cuDriverGetVersion, cuInit), for the cuda plugin's tests on machines without a GPU.
 * It proves the plugin's sequencing, nothing about GPUs.
 *
 *   CKPT_FAKE_CUDA_DIR=dir   a process PID "uses CUDA" when dir/PID exists (the
 *                            test workload creates it holding "0"); the file
 *                            holds its CUprocessState as a number, so the state
 *                            survives from the dump to the restore (separate
 *                            ckpt processes).  RUNNING -lock-> LOCKED
 *                            -checkpoint-> CHECKPOINTED -restore-> LOCKED
 *                            -unlock-> RUNNING; any other step fails with
 *                            CUDA_ERROR_ILLEGAL_STATE.
 *   CKPT_FAKE_CUDA_LOG=file  every call is appended as one line:
 *                              getstate PID -> CUDA_SUCCESS running
 *                              lock PID timeout MS -> CUDA_SUCCESS
 *                              checkpoint|restore|unlock PID -> RESULT
 *                              restore_tid PID -> RESULT
 *                              init FLAGS -> CUDA_SUCCESS
 *   CKPT_FAKE_CUDA_FAIL=spec[,spec...]  spec is OP (every call of OP fails),
 *                            OP:PID (calls for PID) or OP#N (the Nth call of
 *                            OP in this process, from 1); OP is lock,
 *                            checkpoint, restore or unlock.  A failing lock
 *                            returns CUDA_ERROR_TIMEOUT and leaves the process
 *                            RUNNING, checkpoint CUDA_ERROR_OPERATING_SYSTEM,
 *                            restore CUDA_ERROR_OUT_OF_MEMORY, unlock
 *                            CUDA_ERROR_UNKNOWN; the state does not change.
 *
 * Like the real driver, which works in a thread of the target, lock,
 * checkpoint, restore and unlock need the target to run: while it is stopped
 * (ptrace, SIGSTOP) they wait (lock: up to its timeout, the others up to 3 s)
 * and then fail with CUDA_ERROR_TIMEOUT / CUDA_ERROR_NOT_READY, logged with
 * "(target stopped)".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cuda_api.h"

#define EXPORT __attribute__((visibility("default")))

static const struct {
	int code;
	const char *name, *desc;
} errs[] = {
	{ CUDA_SUCCESS, "CUDA_SUCCESS", "no error" },
	{ CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument" },
	{ CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory" },
	{ CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error" },
	{ CUDA_ERROR_OPERATING_SYSTEM, "CUDA_ERROR_OPERATING_SYSTEM",
	  "OS call failed or operation not supported on this OS" },
	{ CUDA_ERROR_ILLEGAL_STATE, "CUDA_ERROR_ILLEGAL_STATE", "the operation cannot be performed in the present state" },
	{ CUDA_ERROR_NOT_READY, "CUDA_ERROR_NOT_READY", "device not ready" },
	{ CUDA_ERROR_NOT_SUPPORTED, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported" },
	{ CUDA_ERROR_TIMEOUT, "CUDA_ERROR_TIMEOUT", "the operation timed out" },
	{ CUDA_ERROR_UNKNOWN, "CUDA_ERROR_UNKNOWN", "unknown error" },
};

static const char *err_name(CUresult r)
{
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		if (errs[i].code == (int)r)
			return errs[i].name;
	return "CUDA_ERROR_?";
}

static const char *state_name(int st)
{
	static const char *const n[] = { "running", "locked", "checkpointed", "failed" };

	return st >= 0 && st <= 3 ? n[st] : "?";
}

static void flog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void flog(const char *fmt, ...)
{
	const char *path = getenv("CKPT_FAKE_CUDA_LOG");
	char line[512];
	va_list ap;
	int fd, n;

	if (!path || !*path)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	if (write(fd, line, (size_t)n) < 0) {
		/* nothing to do about it */
	}
	close(fd);
}

static bool state_path(int pid, char *buf, size_t len)
{
	const char *dir = getenv("CKPT_FAKE_CUDA_DIR");

	if (!dir || !*dir || pid <= 0)
		return false;
	snprintf(buf, len, "%s/%d", dir, pid);
	return true;
}

/* 0 and *st, or -1 when pid is no CUDA process. */
static int read_state(int pid, int *st)
{
	char path[4096], buf[32];
	ssize_t n;
	int fd;

	if (!state_path(pid, path, sizeof(path)))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	*st = atoi(buf); /* empty: RUNNING */
	return 0;
}

static int write_state(int pid, int st)
{
	char path[4096], tmp[4200], buf[32];
	int fd, n;

	if (!state_path(pid, path, sizeof(path)))
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	n = snprintf(buf, sizeof(buf), "%d\n", st);
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	return rename(tmp, path);
}

/* The one-letter state of pid, '?' when it does not exist. */
static char proc_state(int pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] ? p[2] : '?';
}

/* Wait up to ms for pid to run (not stopped); false when it never did. */
static bool wait_runs(int pid, unsigned int ms)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	for (unsigned int waited = 0;; waited += 10) {
		char s = proc_state(pid);

		if (s != 't' && s != 'T')
			return true;
		if (waited >= ms)
			return false;
		nanosleep(&ts, NULL);
	}
}

enum op { OP_LOCK, OP_CHECKPOINT, OP_RESTORE, OP_UNLOCK, NOPS };
static const char *const op_names[NOPS] = { "lock", "checkpoint", "restore", "unlock" };
static unsigned int op_calls[NOPS];

/* Whether CKPT_FAKE_CUDA_FAIL asks this call (the op_calls[op]-th) to fail. */
static bool should_fail(enum op op, int pid)
{
	const char *spec = getenv("CKPT_FAKE_CUDA_FAIL");
	size_t nlen = strlen(op_names[op]);

	while (spec && *spec) {
		size_t len = strcspn(spec, ",");

		if (len >= nlen && !strncmp(spec, op_names[op], nlen)) {
			const char *rest = spec + nlen;
			size_t rlen = len - nlen;

			if (rlen == 0)
				return true;
			if (rest[0] == ':' && atoi(rest + 1) == pid)
				return true;
			if (rest[0] == '#' && (unsigned int)atoi(rest + 1) == op_calls[op])
				return true;
		}
		spec += len;
		if (*spec == ',')
			spec++;
	}
	return false;
}

/* One state transition: from -> to, failing with fail_code when asked. */
static CUresult step(enum op op, int pid, int from, int to, CUresult fail_code, unsigned int wait_ms,
		     CUresult stopped_code, const char *extra)
{
	int st;

	op_calls[op]++;
	if (read_state(pid, &st)) {
		flog("%s %d%s -> %s (no CUDA process)", op_names[op], pid, extra,
		     err_name(CUDA_ERROR_INVALID_VALUE));
		return CUDA_ERROR_INVALID_VALUE;
	}
	if (!wait_runs(pid, wait_ms)) {
		flog("%s %d%s -> %s (target stopped)", op_names[op], pid, extra, err_name(stopped_code));
		return stopped_code;
	}
	if (st != from) {
		flog("%s %d%s -> %s (state %s)", op_names[op], pid, extra, err_name(CUDA_ERROR_ILLEGAL_STATE),
		     state_name(st));
		return CUDA_ERROR_ILLEGAL_STATE;
	}
	if (should_fail(op, pid)) {
		flog("%s %d%s -> %s (CKPT_FAKE_CUDA_FAIL)", op_names[op], pid, extra, err_name(fail_code));
		return fail_code;
	}
	if (write_state(pid, to)) {
		flog("%s %d%s -> %s (cannot write the state: %s)", op_names[op], pid, extra,
		     err_name(CUDA_ERROR_OPERATING_SYSTEM), strerror(errno));
		return CUDA_ERROR_OPERATING_SYSTEM;
	}
	flog("%s %d%s -> %s", op_names[op], pid, extra, err_name(CUDA_SUCCESS));
	return CUDA_SUCCESS;
}

EXPORT CUresult cuCheckpointProcessGetState(int pid, CUprocessState *state)
{
	int st;

	if (!state) {
		flog("getstate %d -> %s", pid, err_name(CUDA_ERROR_INVALID_VALUE));
		return CUDA_ERROR_INVALID_VALUE;
	}
	if (read_state(pid, &st)) {
		flog("getstate %d -> %s", pid, err_name(CUDA_ERROR_NOT_INITIALIZED));
		return CUDA_ERROR_NOT_INITIALIZED;
	}
	*state = (CUprocessState)st;
	flog("getstate %d -> %s %s", pid, err_name(CUDA_SUCCESS), state_name(st));
	return CUDA_SUCCESS;
}

EXPORT CUresult cuCheckpointProcessGetRestoreThreadId(int pid, int *tid)
{
	int st;

	if (!tid || read_state(pid, &st)) {
		flog("restore_tid %d -> %s", pid, err_name(CUDA_ERROR_INVALID_VALUE));
		return CUDA_ERROR_INVALID_VALUE;
	}
	*tid = pid;
	flog("restore_tid %d -> %s %d", pid, err_name(CUDA_SUCCESS), pid);
	return CUDA_SUCCESS;
}

EXPORT CUresult cuCheckpointProcessLock(int pid, CUcheckpointLockArgs *args)
{
	unsigned int ms = args ? args->timeoutMs : 0;
	char extra[48];

	snprintf(extra, sizeof(extra), " timeout %u", ms);
	return step(OP_LOCK, pid, CU_PROCESS_STATE_RUNNING, CU_PROCESS_STATE_LOCKED, CUDA_ERROR_TIMEOUT,
		    ms && ms < 3000 ? ms : 3000, CUDA_ERROR_TIMEOUT, extra);
}

EXPORT CUresult cuCheckpointProcessCheckpoint(int pid, CUcheckpointCheckpointArgs *args)
{
	(void)args;
	return step(OP_CHECKPOINT, pid, CU_PROCESS_STATE_LOCKED, CU_PROCESS_STATE_CHECKPOINTED,
		    CUDA_ERROR_OPERATING_SYSTEM, 3000, CUDA_ERROR_NOT_READY, "");
}

EXPORT CUresult cuCheckpointProcessRestore(int pid, CUcheckpointRestoreArgs *args)
{
	(void)args;
	return step(OP_RESTORE, pid, CU_PROCESS_STATE_CHECKPOINTED, CU_PROCESS_STATE_LOCKED,
		    CUDA_ERROR_OUT_OF_MEMORY, 3000, CUDA_ERROR_NOT_READY, "");
}

EXPORT CUresult cuCheckpointProcessUnlock(int pid, CUcheckpointUnlockArgs *args)
{
	(void)args;
	return step(OP_UNLOCK, pid, CU_PROCESS_STATE_LOCKED, CU_PROCESS_STATE_RUNNING, CUDA_ERROR_UNKNOWN,
		    3000, CUDA_ERROR_NOT_READY, "");
}

EXPORT CUresult cuGetErrorString(CUresult error, const char **str)
{
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		if (errs[i].code == (int)error) {
			*str = errs[i].desc;
			return CUDA_SUCCESS;
		}
	}
	*str = NULL;
	return CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuGetErrorName(CUresult error, const char **str)
{
	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		if (errs[i].code == (int)error) {
			*str = errs[i].name;
			return CUDA_SUCCESS;
		}
	}
	*str = NULL;
	return CUDA_ERROR_INVALID_VALUE;
}

EXPORT CUresult cuInit(unsigned int flags)
{
	flog("init %u -> %s", flags, err_name(CUDA_SUCCESS));
	return CUDA_SUCCESS;
}

EXPORT CUresult cuDriverGetVersion(int *version)
{
	if (!version)
		return CUDA_ERROR_INVALID_VALUE;
	*version = 13000;
	return CUDA_SUCCESS;
}
