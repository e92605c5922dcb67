/* SPDX-License-Identifier: GPL-2.0-only */
/* Parsers for what /proc tells about a task. */
#ifndef CKPT_PROC_H
#define CKPT_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define VMA_NAME_MAX 4096

struct proc_vma {
	uint64_t start, end, pgoff;
	uint32_t prot;     /* PROT_* */
	bool shared;       /* 's' in the perms column */
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	char *name;        /* path, "[heap]" ..., or NULL */
	char vmflags[128]; /* VmFlags line from smaps, two-letter codes */
};

struct proc_vmas {
	struct proc_vma *v;
	size_t n;
};

/* Parse /proc/PID/smaps (VmFlags included).  smaps walks every page
 * table of the task (~60 ms per 2 GiB mapped here): read it once. */
int proc_read_vmas(pid_t pid, struct proc_vmas *out);
/* The layout only, from /proc/PID/maps (no VmFlags, no page walk). */
int proc_read_maps(pid_t pid, struct proc_vmas *out);
/* Parse a maps-format text buffer (no VmFlags). */
int proc_parse_maps(const char *text, struct proc_vmas *out);
void proc_free_vmas(struct proc_vmas *v);
bool vma_has_flag(const struct proc_vma *v, const char *two);

struct proc_stat {
	char state;
	pid_t ppid, pgid, sid;
	unsigned long flags;
	int exit_signal;
	uint64_t start_code, end_code, start_stack;
	uint64_t start_data, end_data, start_brk;
	uint64_t arg_start, arg_end, env_start, env_end;
	int num_threads;
	int exit_code; /* field 52: wait status of a zombie */
	uint64_t start_time; /* field 22: tells a reused PID apart */
};
int proc_read_stat(pid_t pid, struct proc_stat *st);

struct proc_status {
	uint32_t umask;
	pid_t nspid_last; /* pid in the innermost pid namespace */
	int nspid_levels;
	uid_t uid[4];
	gid_t gid[4];
	gid_t groups[256];
	int ngroups;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	bool no_new_privs;
	int seccomp;
};
int proc_read_status(pid_t pid, struct proc_status *st);

/* Read a whole /proc file into a malloc'd NUL-terminated buffer. */
int proc_read_file(const char *path, char **buf, size_t *len);
int proc_readlink(const char *path, char *buf, size_t len);

/* rlimits from /proc/PID/limits (prlimit() is refused for other uids here). */
struct proc_rlimit {
	uint64_t cur, max;
};
int proc_read_limits(pid_t pid, struct proc_rlimit lim[16]);

/* Threads of a process from /proc/PID/task. */
int proc_list_threads(pid_t pid, pid_t **tids, size_t *n);



/* Address ranges, for finding room in an address space. */
struct range {
	uint64_t start, end;
};
/* Lowest page-aligned start >= lo of `size` free bytes (plus a guard page on
 * each side) overlapping none of the ranges. */
int find_hole(const struct range *r, size_t n, uint64_t lo, uint64_t size, uint64_t *addr);
#endif
