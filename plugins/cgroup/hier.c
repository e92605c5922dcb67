// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgroup plugin: the cgroup mounts of this host, /proc/PID/cgroup lines and
 * small file helpers.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"

char *cg_strdup_printf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

char *cg_join(const char *parent, const char *child)
{
	size_t l = strlen(parent);

	while (*child == '/')
		child++;
	if (l && parent[l - 1] == '/')
		return cg_strdup_printf("%s%s", parent, child);
	return cg_strdup_printf("%s/%s", parent, child);
}

int cg_read_file(const char *path, char **out)
{
	size_t cap = 4096, len = 0;
	char *buf;
	int fd;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t r;

		if (len == cap) {
			char *nb = realloc(buf, cap * 2 + 1);

			if (!nb) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			free(buf);
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	buf[len] = '\0';
	*out = buf;
	return 0;
}

int cg_read_at(const char *dir, const char *name, char **out)
{
	char *path = cg_join(dir, name);
	int ret;

	if (!path)
		return -ENOMEM;
	ret = cg_read_file(path, out);
	free(path);
	return ret;
}

int cg_write_at(const char *dir, const char *name, const char *text)
{
	char *path = cg_join(dir, name);
	size_t len = strlen(text);
	ssize_t w;
	int fd, ret = 0;

	if (!path)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return -errno;
	do
		w = write(fd, text, len);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		ret = -errno;
	else if ((size_t)w != len)
		ret = -EIO;
	close(fd);
	return ret;
}

bool cg_exists_at(const char *dir, const char *name)
{
	char *path = cg_join(dir, name);
	bool ok;

	if (!path)
		return false;
	ok = access(path, F_OK) == 0;
	free(path);
	return ok;
}

/* ---- mounts ---------------------------------------------------------------- */

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static void unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

void cg_mounts_free(struct cg_mounts *ms)
{
	for (size_t i = 0; i < ms->n; i++) {
		free(ms->v[i].opts);
		free(ms->v[i].mnt);
		free(ms->v[i].root);
	}
	free(ms->v);
	ms->v = NULL;
	ms->n = 0;
}

int cg_mounts_read(struct cg_mounts *ms)
{
	char *buf, *line, *save = NULL;
	int ret;

	ms->v = NULL;
	ms->n = 0;
	ret = cg_read_file("/proc/self/mountinfo", &buf);
	if (ret)
		return ret;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[10] = { 0 }, *dash, *s, *sp = NULL;
		int nf = 0;
		struct cg_mount m = { 0 }, *nv;

		dash = strstr(line, " - ");
		if (!dash)
			continue;
		*dash = '\0';
		for (s = strtok_r(line, " ", &sp); s && nf < 5; s = strtok_r(NULL, " ", &sp))
			f[nf++] = s;
		if (nf < 5)
			continue;
		/* after the separator: fstype source superopts */
		sp = NULL;
		f[5] = strtok_r(dash + 3, " ", &sp);
		f[6] = f[5] ? strtok_r(NULL, " ", &sp) : NULL;
		f[7] = f[6] ? strtok_r(NULL, " ", &sp) : NULL;
		if (!f[5] || !f[7])
			continue;
		if (!strcmp(f[5], "cgroup2"))
			m.v2 = true;
		else if (strcmp(f[5], "cgroup"))
			continue;
		unescape(f[3]);
		unescape(f[4]);
		m.root = strdup(f[3]);
		m.mnt = strdup(f[4]);
		m.opts = m.v2 ? NULL : strdup(f[7]);
		nv = realloc(ms->v, (ms->n + 1) * sizeof(*nv));
		if (!m.root || !m.mnt || (!m.v2 && !m.opts) || !nv) {
			free(m.root);
			free(m.mnt);
			free(m.opts);
			if (nv)
				ms->v = nv;
			free(buf);
			cg_mounts_free(ms);
			return -ENOMEM;
		}
		ms->v = nv;
		ms->v[ms->n++] = m;
	}
	free(buf);
	return 0;
}

/* Is ctrl one of the comma-separated items of list? */
bool cg_has_ctrl(const char *list, const char *ctrl)
{
	size_t l = strlen(ctrl);

	if (!list || !l)
		return false;
	for (const char *s = list; *s;) {
		const char *e = strchr(s, ',');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		if (n == l && !strncmp(s, ctrl, l))
			return true;
		if (!e)
			break;
		s = e + 1;
	}
	return false;
}

/* Every item of ctrls is an option of m (v1). */
static bool mount_has_all(const struct cg_mount *m, const char *ctrls)
{
	char *dup = strdup(ctrls), *save = NULL;
	bool ok = dup != NULL;

	if (!dup)
		return false;
	for (char *c = strtok_r(dup, ",", &save); c && ok; c = strtok_r(NULL, ",", &save))
		ok = cg_has_ctrl(m->opts, c);
	free(dup);
	return ok;
}

const struct cg_mount *cg_mount_find(const struct cg_mounts *ms, const char *ctrls)
{
	const struct cg_mount *best = NULL;

	for (size_t i = 0; i < ms->n; i++) {
		const struct cg_mount *m = &ms->v[i];

		if (!*ctrls ? !m->v2 : (m->v2 || !mount_has_all(m, ctrls)))
			continue;
		/* several mounts of one hierarchy: the one showing all of it */
		if (!best || (!strcmp(m->root, "/") && strcmp(best->root, "/")))
			best = m;
	}
	return best;
}

char *cg_dir_of(const struct cg_mount *m, const char *path)
{
	size_t rl = strlen(m->root);

	if (!strcmp(m->root, "/"))
		return cg_join(m->mnt, path);
	if (strncmp(path, m->root, rl) || (path[rl] && path[rl] != '/'))
		return NULL;
	return cg_join(m->mnt, path[rl] ? path + rl : "/");
}

/* ---- /proc ---------------------------------------------------------------- */

void cg_lines_free(struct cg_lines *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].ctrls);
		free(l->v[i].path);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int cg_lines_read(const char *file, struct cg_lines *out)
{
	char *buf, *line, *save = NULL;
	int ret;

	out->v = NULL;
	out->n = 0;
	ret = cg_read_file(file, &buf);
	if (ret)
		return ret;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		struct cg_line *nv;

		if (!c2)
			continue;
		*c1 = *c2 = '\0';
		nv = realloc(out->v, (out->n + 1) * sizeof(*nv));
		if (!nv) {
			ret = -ENOMEM;
			break;
		}
		out->v = nv;
		nv[out->n].id = (unsigned int)strtoul(line, NULL, 10);
		nv[out->n].ctrls = strdup(c1 + 1);
		nv[out->n].path = strdup(c2 + 1);
		out->n++;
		if (!nv[out->n - 1].ctrls || !nv[out->n - 1].path) {
			ret = -ENOMEM;
			break;
		}
	}
	free(buf);
	if (ret)
		cg_lines_free(out);
	return ret;
}

pid_t cg_ns_tid(pid_t pid, pid_t tid)
{
	char path[96], *buf, *l;
	pid_t last = -ENOENT;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	ret = cg_read_file(path, &buf);
	if (ret)
		return ret;
	l = strstr(buf, "\nNSpid:");
	if (l) {
		char *s = l + 7, *end;

		for (;;) {
			long v = strtol(s, &end, 10);

			if (end == s)
				break;
			last = (pid_t)v;
			s = end;
		}
	} else {
		last = tid; /* a kernel without NSpid: no pid namespaces to care about */
	}
	free(buf);
	return last;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return x < y ? -1 : x > y;
}

int cg_list_tids(pid_t pid, pid_t **tids, size_t *n)
{
	char path[64];
	struct dirent *de;
	pid_t *v = NULL;
	size_t cnt = 0;
	DIR *d;

	*tids = NULL;
	*n = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		pid_t *nv;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		nv = realloc(v, (cnt + 1) * sizeof(*nv));
		if (!nv) {
			free(v);
			closedir(d);
			return -ENOMEM;
		}
		v = nv;
		v[cnt++] = (pid_t)strtol(de->d_name, NULL, 10);
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_pid);
	*tids = v;
	*n = cnt;
	return 0;
}

int cg_read_pids(const char *dir, const char *name, pid_t **pids, size_t *n)
{
	char *buf, *s;
	pid_t *v = NULL;
	size_t cnt = 0;
	int ret;

	*pids = NULL;
	*n = 0;
	ret = cg_read_at(dir, name, &buf);
	if (ret)
		return ret;
	for (s = buf; *s;) {
		char *end;
		long x = strtol(s, &end, 10);
		pid_t *nv;

		if (end == s)
			break;
		s = end;
		nv = realloc(v, (cnt + 1) * sizeof(*nv));
		if (!nv) {
			free(v);
			free(buf);
			return -ENOMEM;
		}
		v = nv;
		v[cnt++] = (pid_t)x;
	}
	free(buf);
	*pids = v;
	*n = cnt;
	return 0;
}
