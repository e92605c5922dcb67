/* SPDX-License-Identifier: GPL-2.0-only */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "progress.h"

static const char *cur_cmd = "", *cur_stage = "";
static double stage_start, last_draw;
static int drawn;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void progress_stage(const char *cmd, const char *stage)
{
	cur_cmd = cmd;
	cur_stage = stage;
	stage_start = now_s();
	pr_info(cmd, "stage: %s", stage);
	if (log_stderr_is_tty()) {
		fprintf(stderr, "\r\033[K%s: %s", cmd, stage);
		drawn = 1;
	}
}

void progress_bytes(uint64_t done, uint64_t total)
{
	if (!log_stderr_is_tty())
		return;
	double t = now_s();
	if (done < total && t - last_draw < 0.1)
		return;
	last_draw = t;
	double el = t - stage_start;
	double mb = done / 1048576.0;
	fprintf(stderr, "\r\033[K%s: %s %.0f/%.0f MiB (%llu pages) %.0f MB/s", cur_cmd, cur_stage, mb,
		total / 1048576.0, (unsigned long long)(done / 4096),
		el > 0 ? done / 1e6 / el : 0.0);
	drawn = 1;
}

void progress_end(void)
{
	if (drawn && log_stderr_is_tty())
		fprintf(stderr, "\r\033[K");
	drawn = 0;
}
