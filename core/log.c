/* SPDX-License-Identifier: GPL-2.0-only */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static FILE *log_file;
static int verbosity = CKPT_LOG_WARN;
static struct timespec log_start;

int log_init(const char *path, int v)
{
	verbosity = v;
	clock_gettime(CLOCK_MONOTONIC, &log_start);
	if (!path)
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		int err = errno;
		fprintf(stderr, "ckpt: cannot open log file %s: %s\n", path, strerror(err));
		return -err;
	}
	log_file = fdopen(fd, "w");
	if (!log_file) {
		close(fd);
		return -ENOMEM;
	}
	setvbuf(log_file, NULL, _IOLBF, 0);
	return 0;
}

void log_fini(void)
{
	if (log_file)
		fclose(log_file);
	log_file = NULL;
}

void log_set_verbosity(int v)
{
	verbosity = v;
}

int log_verbosity(void)
{
	return verbosity;
}

bool log_stderr_is_tty(void)
{
	return isatty(STDERR_FILENO);
}

/* In a restore worker fds 0-2 are the task's: errors are kept for the
 * controller instead of printed. */
static char *worker_buf;
static size_t worker_len;

void log_worker_mode(char *buf, size_t len)
{
	worker_buf = buf;
	worker_len = len;
	if (log_file) {
		/* its fd is gone with the worker's fd table: drop the FILE quietly */
		log_file = NULL;
	}
	if (len)
		buf[0] = 0;
}

static const char *level_name[] = { "error", "warning", "info", "debug" };

void log_vmsg(const char *prefix, int level, const char *fmt, va_list ap)
{
	int saved = errno;
	char line[2048];

	vsnprintf(line, sizeof(line), fmt, ap);
	size_t n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = 0;
	if (worker_buf) {
		if (level <= CKPT_LOG_ERROR && !worker_buf[0])
			snprintf(worker_buf, worker_len, "%s: %s", prefix, line);
		errno = saved;
		return;
	}

	if (log_file && (level <= verbosity || level <= CKPT_LOG_WARN)) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		double t = (now.tv_sec - log_start.tv_sec) + (now.tv_nsec - log_start.tv_nsec) / 1e9;
		fprintf(log_file, "(%9.6f) %5d %s: %s%s%s\n", t, (int)getpid(), prefix,
			level <= CKPT_LOG_WARN ? level_name[level < 0 ? 0 : level] : "",
			level <= CKPT_LOG_WARN ? ": " : "", line);
	}
	/* stderr: errors and warnings always, the rest only with -v when no log file */
	if (level <= CKPT_LOG_WARN || (!log_file && level <= verbosity)) {
		if (level == CKPT_LOG_ERROR)
			fprintf(stderr, "ckpt: %s: %s\n", prefix, line);
		else if (level == CKPT_LOG_WARN)
			fprintf(stderr, "ckpt: %s: warning: %s\n", prefix, line);
		else
			fprintf(stderr, "ckpt: %s: %s\n", prefix, line);
	}
	errno = saved;
}

void log_msg(const char *prefix, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(prefix, level, fmt, ap);
	va_end(ap);
}
