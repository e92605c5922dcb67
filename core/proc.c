/* SPDX-License-Identifier: GPL-2.0-only */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"
#include "proc.h"

int proc_read_file(const char *path, char **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 16384, n = 0;
	char *b = malloc(cap);
	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (cap - n < 4096) {
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				close(fd);
				return -ENOMEM;
			}
			b = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, b + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int err = -errno;
			free(b);
			close(fd);
			return err;
		}
		if (r == 0)
			break;
		n += r;
	}
	close(fd);
	b[n] = 0;
	*buf = b;
	if (len)
		*len = n;
	return 0;
}

int proc_readlink(const char *path, char *buf, size_t len)
{
	ssize_t r = readlink(path, buf, len - 1);
	if (r < 0)
		return -errno;
	buf[r] = 0;
	return 0;
}

static int vmas_push(struct proc_vmas *out, size_t *cap)
{
	if (out->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct proc_vma *nv = realloc(out->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		out->v = nv;
		*cap = nc;
	}
	memset(&out->v[out->n], 0, sizeof(out->v[0]));
	out->n++;
	return 0;
}

/* One maps line: "start-end perms offset major:minor inode   name" */
static int parse_maps_line(const char *line, struct proc_vma *v)
{
	char perms[5];
	int name_off = 0;
	unsigned long long start, end, off, ino;
	unsigned int maj, min;

	if (sscanf(line, "%llx-%llx %4s %llx %x:%x %llu %n", &start, &end, perms, &off, &maj, &min,
		   &ino, &name_off) < 7)
		return -EINVAL;
	v->start = start;
	v->end = end;
	v->pgoff = off;
	v->dev_major = maj;
	v->dev_minor = min;
	v->ino = ino;
	v->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
		  (perms[2] == 'x' ? PROT_EXEC : 0);
	v->shared = perms[3] == 's';
	const char *name = line + name_off;
	size_t nl = strcspn(name, "\n");
	if (nl) {
		v->name = strndup(name, nl);
		if (!v->name)
			return -ENOMEM;
	}
	return 0;
}

static bool is_vma_header(const char *line)
{
	/* smaps: a VMA header starts with a hex address and a '-' */
	const char *p = line;
	while (isxdigit((unsigned char)*p))
		p++;
	return p != line && *p == '-';
}

static int parse_maps_text(char *text, struct proc_vmas *out)
{
	size_t cap = 0;
	int ret;
	char *save = NULL;

	out->v = NULL;
	out->n = 0;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (is_vma_header(line)) {
			ret = vmas_push(out, &cap);
			if (ret)
				goto err;
			ret = parse_maps_line(line, &out->v[out->n - 1]);
			if (ret)
				goto err;
		} else if (out->n && !strncmp(line, "VmFlags:", 8)) {
			const char *f = line + 8;
			while (*f == ' ')
				f++;
			snprintf(out->v[out->n - 1].vmflags, sizeof(out->v[0].vmflags), "%s", f);
		}
	}
	return 0;
err:
	proc_free_vmas(out);
	return ret;
}

int proc_parse_maps(const char *text, struct proc_vmas *out)
{
	char *copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	int ret = parse_maps_text(copy, out);
	free(copy);
	return ret;
}

static int read_vma_file(pid_t pid, const char *file, struct proc_vmas *out)
{
	char path[64], *buf;
	/* pid 0: ourselves, also when /proc belongs to an outer pid namespace */
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	else
		snprintf(path, sizeof(path), "/proc/self/%s", file);
	int ret = proc_read_file(path, &buf, NULL);
	if (ret)
		return ret;
	ret = parse_maps_text(buf, out);
	free(buf);
	return ret;
}

int proc_read_vmas(pid_t pid, struct proc_vmas *out)
{
	return read_vma_file(pid, "smaps", out);
}

int proc_read_maps(pid_t pid, struct proc_vmas *out)
{
	return read_vma_file(pid, "maps", out);
}

void proc_free_vmas(struct proc_vmas *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i].name);
	free(v->v);
	v->v = NULL;
	v->n = 0;
}

bool vma_has_flag(const struct proc_vma *v, const char *two)
{
	for (const char *p = v->vmflags; p[0] && p[1]; p += 3) {
		if (p[0] == two[0] && p[1] == two[1])
			return true;
		if (!p[2])
			break;
	}
	return false;
}

int proc_read_stat(pid_t pid, struct proc_stat *st)
{
	char path[64], *buf;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	int ret = proc_read_file(path, &buf, NULL);
	if (ret)
		return ret;
	/* comm may hold spaces and parens: fields start after the last ')' */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ') {
		free(buf);
		return -EINVAL;
	}
	p += 2;
	unsigned long long f[64] = { 0 };
	int nf = 0;
	memset(st, 0, sizeof(*st));
	st->state = *p;
	p += 2;
	/* field 4 onward */
	while (*p && nf < 60) {
		char *end;
		f[nf++] = strtoull(p, &end, 10);
		if (*end == '-') /* negative numbers, e.g. priority */
			end = end + strcspn(end, " ");
		p = end;
		while (*p == ' ')
			p++;
	}
	free(buf);
	/* f[k] holds stat field k+4 (1-based numbering of proc(5)) */
#define F(n) f[(n) - 4]
	if (nf < 48)
		return -EINVAL;
	st->ppid = F(4);
	st->pgid = F(5);
	st->sid = F(6);
	st->flags = F(9);
	st->num_threads = F(20);
	st->start_time = F(22);
	st->start_code = F(26);
	st->end_code = F(27);
	st->start_stack = F(28);
	st->exit_signal = F(38);
	st->start_data = F(45);
	st->end_data = F(46);
	st->start_brk = F(47);
	st->arg_start = F(48);
	st->arg_end = F(49);
	st->env_start = F(50);
	st->env_end = F(51);
	if (nf >= 49)
		st->exit_code = F(52);
#undef F
	return 0;
}

int proc_read_status(pid_t pid, struct proc_status *st)
{
	char path[64], *buf;
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	int ret = proc_read_file(path, &buf, NULL);
	if (ret)
		return ret;
	memset(st, 0, sizeof(*st));
	char *save = NULL;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "Umask:", 6))
			st->umask = strtoul(l + 6, NULL, 8);
		else if (!strncmp(l, "NSpid:", 6)) {
			char *p = l + 6, *end;
			for (;;) {
				long v = strtol(p, &end, 10);
				if (end == p)
					break;
				st->nspid_last = v;
				st->nspid_levels++;
				p = end;
			}
		} else if (!strncmp(l, "Uid:", 4))
			sscanf(l + 4, "%u %u %u %u", &st->uid[0], &st->uid[1], &st->uid[2], &st->uid[3]);
		else if (!strncmp(l, "Gid:", 4))
			sscanf(l + 4, "%u %u %u %u", &st->gid[0], &st->gid[1], &st->gid[2], &st->gid[3]);
		else if (!strncmp(l, "Groups:", 7)) {
			char *p = l + 7, *end;
			while (st->ngroups < 256) {
				unsigned long g = strtoul(p, &end, 10);
				if (end == p)
					break;
				st->groups[st->ngroups++] = g;
				p = end;
			}
		} else if (!strncmp(l, "CapInh:", 7))
			st->cap_inh = strtoull(l + 7, NULL, 16);
		else if (!strncmp(l, "CapPrm:", 7))
			st->cap_prm = strtoull(l + 7, NULL, 16);
		else if (!strncmp(l, "CapEff:", 7))
			st->cap_eff = strtoull(l + 7, NULL, 16);
		else if (!strncmp(l, "CapBnd:", 7))
			st->cap_bnd = strtoull(l + 7, NULL, 16);
		else if (!strncmp(l, "CapAmb:", 7))
			st->cap_amb = strtoull(l + 7, NULL, 16);
		else if (!strncmp(l, "NoNewPrivs:", 11))
			st->no_new_privs = atoi(l + 11);
		else if (!strncmp(l, "Seccomp:", 8))
			st->seccomp = atoi(l + 8);
	}
	free(buf);
	return 0;
}

/* The rows of /proc/PID/limits in RLIMIT_* order. */
static const char *const limit_names[16] = {
	"Max cpu time", "Max file size", "Max data size", "Max stack size",
	"Max core file size", "Max resident set", "Max processes", "Max open files",
	"Max locked memory", "Max address space", "Max file locks", "Max pending signals",
	"Max msgqueue size", "Max nice priority", "Max realtime priority", "Max realtime timeout",
};

static uint64_t limit_value(const char *s)
{
	if (!strncmp(s, "unlimited", 9))
		return RLIM_INFINITY;
	return strtoull(s, NULL, 10);
}

int proc_read_limits(pid_t pid, struct proc_rlimit lim[16])
{
	char path[64], *buf;
	snprintf(path, sizeof(path), "/proc/%d/limits", pid);
	int ret = proc_read_file(path, &buf, NULL);
	if (ret)
		return ret;
	int found = 0;
	char *save = NULL;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		for (int i = 0; i < 16; i++) {
			size_t nl = strlen(limit_names[i]);
			if (strncmp(l, limit_names[i], nl) || l[nl] != ' ')
				continue;
			/* columns are fixed: name (26 chars), soft (21), hard (21), units */
			if (strlen(l) < 26 + 21)
				continue;
			lim[i].cur = limit_value(l + 26);
			lim[i].max = limit_value(l + 26 + 21);
			found++;
		}
	}
	free(buf);
	return found == 16 ? 0 : -EINVAL;
}

int proc_list_threads(pid_t pid, pid_t **tids, size_t *n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	size_t cap = 8, cnt = 0;
	pid_t *t = malloc(cap * sizeof(*t));
	if (!t) {
		closedir(d);
		return -ENOMEM;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (cnt == cap) {
			pid_t *nt = realloc(t, cap * 2 * sizeof(*t));
			if (!nt) {
				free(t);
				closedir(d);
				return -ENOMEM;
			}
			t = nt;
			cap *= 2;
		}
		t[cnt++] = atoi(de->d_name);
	}
	closedir(d);
	*tids = t;
	*n = cnt;
	return 0;
}

#define HOLE_TOP 0x7ffffffff000ULL

static bool hole_free(const struct range *r, size_t n, uint64_t s, uint64_t e)
{
	for (size_t i = 0; i < n; i++)
		if (s < r[i].end + 4096 && r[i].start < e + 4096)
			return false;
	return true;
}

int find_hole(const struct range *r, size_t n, uint64_t lo, uint64_t size, uint64_t *addr)
{
	uint64_t best = UINT64_MAX;
	if (hole_free(r, n, lo, lo + size))
		best = lo;
	for (size_t i = 0; i < n && best != lo; i++) {
		uint64_t c = r[i].end + 4096;
		if (c < lo || c >= best || c + size + 4096 > HOLE_TOP)
			continue;
		if (hole_free(r, n, c, c + size))
			best = c;
	}
	if (best == UINT64_MAX)
		return -ENOMEM;
	*addr = best;
	return 0;
}
