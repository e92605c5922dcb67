/* SPDX-License-Identifier: GPL-2.0-only */
/* What the cgroup workloads read from /proc: where a hierarchy is mounted
 * and which path a task has in it.  H is a v1 controller name ("cpu") or
 * "2" for the unified hierarchy. */
#ifndef CKPT_CGUTIL_H
#define CKPT_CGUTIL_H

#include <stdio.h>
#include <string.h>

#include "../workload.h"

/* The mount point of hierarchy h ("2": cgroup2). */
static inline int cg_mount_of(const char *h, char *out, size_t len)
{
	static char buf[65536];
	char *line, *save = NULL;

	if (wl_read_file("/proc/self/mountinfo", buf, sizeof(buf)) < 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char mnt[512], fstype[64], opts[512];
		const char *dash = strstr(line, " - ");
		int found = 0;

		if (!dash || sscanf(line, "%*s %*s %*s %*s %511s", mnt) != 1 ||
		    sscanf(dash + 3, "%63s %*s %511s", fstype, opts) != 2)
			continue;
		if (!strcmp(h, "2")) {
			found = !strcmp(fstype, "cgroup2");
		} else if (!strcmp(fstype, "cgroup")) {
			char *o, *s2 = NULL;

			for (o = strtok_r(opts, ",", &s2); o; o = strtok_r(NULL, ",", &s2))
				found |= !strcmp(o, h);
		}
		if (found) {
			snprintf(out, len, "%s", mnt);
			return 0;
		}
	}
	return -1;
}

/* The path of hierarchy h in a /proc/.../cgroup text. */
static inline int cg_path_in(const char *text, const char *h, char *out, size_t len)
{
	char copy[4096], *line, *save = NULL;

	snprintf(copy, sizeof(copy), "%s", text);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		int match = 0;

		if (!c2)
			continue;
		*c2 = '\0';
		if (!strcmp(h, "2")) {
			match = c1[1] == '\0' && !strncmp(line, "0:", 2);
		} else {
			char *o, *s2 = NULL;

			for (o = strtok_r(c1 + 1, ",", &s2); o; o = strtok_r(NULL, ",", &s2))
				match |= !strcmp(o, h);
		}
		if (match) {
			snprintf(out, len, "%s", c2 + 1);
			return 0;
		}
	}
	return -1;
}

#endif
