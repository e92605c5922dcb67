// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgroup plugin, dump: the groups of every thread of the tree and the
 * settings of the groups below the hierarchy roots, one record per group.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"

/* Settings saved per v1 controller, in the order they are written back
 * (the CFS period before the quota it is measured in). */
static const struct {
	const char *ctrl;
	const char *files[4];
} v1_settings[] = {
	{ "cpu", { "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.shares", NULL } },
	{ "cpuset", { "cpuset.cpus", "cpuset.mems", NULL } },
	{ "memory", { "memory.limit_in_bytes", NULL } },
	{ "pids", { "pids.max", NULL } },
};

/* cgroup2: where present (a controller enabled in the parent) */
static const char *const v2_settings[] = {
	"cgroup.subtree_control", "cpu.weight", "cpu.max", "memory.max", "pids.max", NULL,
};

struct dgroups {
	struct cg_dgroup *v;
	size_t n, cap;
};

static void dgroups_free(struct dgroups *gs)
{
	for (size_t i = 0; i < gs->n; i++) {
		free(gs->v[i].ctrls);
		free(gs->v[i].path);
		free(gs->v[i].members);
	}
	free(gs->v);
	gs->v = NULL;
	gs->n = gs->cap = 0;
}

static struct cg_dgroup *dgroup_get(struct dgroups *gs, unsigned int id, const char *ctrls,
				     const char *path, size_t plen)
{
	struct cg_dgroup *g;

	for (size_t i = 0; i < gs->n; i++) {
		g = &gs->v[i];
		if (!strcmp(g->ctrls, ctrls) && strlen(g->path) == plen && !strncmp(g->path, path, plen))
			return g;
	}
	if (gs->n == gs->cap) {
		size_t ncap = gs->cap ? gs->cap * 2 : 16;
		struct cg_dgroup *nv = realloc(gs->v, ncap * sizeof(*nv));

		if (!nv)
			return NULL;
		gs->v = nv;
		gs->cap = ncap;
	}
	g = &gs->v[gs->n];
	memset(g, 0, sizeof(*g));
	g->id = id;
	g->ctrls = strdup(ctrls);
	g->path = strndup(path, plen);
	if (!g->ctrls || !g->path) {
		free(g->ctrls);
		free(g->path);
		return NULL;
	}
	gs->n++;
	return g;
}

static int dgroup_add_member(struct cg_dgroup *g, pid_t vpid, pid_t vtid)
{
	if (g->nmembers == g->cap) {
		size_t ncap = g->cap ? g->cap * 2 : 4;
		Ckpt__Cgroup__Member *nv = realloc(g->members, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		g->members = nv;
		g->cap = ncap;
	}
	ckpt__cgroup__member__init(&g->members[g->nmembers]);
	g->members[g->nmembers].pid = vpid;
	g->members[g->nmembers].tid = vtid;
	g->nmembers++;
	return 0;
}

/* The group of one line, its ancestors below the root, and the member. */
static int add_line(struct dgroups *gs, const struct cg_line *l, pid_t vpid, pid_t vtid)
{
	const char *path = l->path;
	size_t len = strlen(path);
	struct cg_dgroup *g;

	if (!len || path[0] != '/')
		return 0; /* a path we cannot name (another cgroup namespace's) */
	g = dgroup_get(gs, l->id, l->ctrls, path, len);
	if (!g)
		return -ENOMEM;
	if (dgroup_add_member(g, vpid, vtid))
		return -ENOMEM;
	for (size_t i = len; i-- > 1;) {
		if (path[i] != '/')
			continue;
		if (!dgroup_get(gs, l->id, l->ctrls, path, i))
			return -ENOMEM;
	}
	return 0;
}

static int cmp_dgroup(const void *a, const void *b)
{
	const struct cg_dgroup *x = a, *y = b;
	int c = strcmp(x->ctrls, y->ctrls);

	/* a parent's path is a prefix of its children's: it sorts first */
	return c ? c : strcmp(x->path, y->path);
}

/* Every thread of every process of the tree. */
static int collect(struct cg_priv *p, struct dgroups *gs)
{
	size_t n = p->host->tree_pids(NULL, 0), got;
	pid_t *pids;
	int ret = 0;

	if (!n) {
		cg_err(p, "dump: the core did not tell which processes the tree holds");
		return -EINVAL;
	}
	pids = calloc(n, sizeof(*pids));
	if (!pids)
		return -ENOMEM;
	got = p->host->tree_pids(pids, n);
	if (got < n)
		n = got;
	for (size_t i = 0; i < n && !ret; i++) {
		pid_t pid = pids[i], vpid, *tids;
		size_t nt;

		if (pid <= 0)
			continue;
		if (cg_list_tids(pid, &tids, &nt))
			continue; /* a zombie or gone: nothing to put anywhere */
		vpid = cg_ns_tid(pid, pid);
		for (size_t k = 0; k < nt && !ret; k++) {
			struct cg_lines ls;
			char file[96];
			pid_t vtid;

			snprintf(file, sizeof(file), "/proc/%d/task/%d/cgroup", (int)pid, (int)tids[k]);
			if (cg_lines_read(file, &ls))
				continue;
			vtid = cg_ns_tid(pid, tids[k]);
			if (vpid <= 0 || vtid <= 0) {
				cg_lines_free(&ls);
				continue;
			}
			for (size_t j = 0; j < ls.n && !ret; j++)
				ret = add_line(gs, &ls.v[j], vpid, vtid);
			cg_lines_free(&ls);
		}
		free(tids);
	}
	free(pids);
	if (ret)
		cg_err(p, "dump: out of memory while collecting the tree's cgroups");
	return ret;
}

static int add_setting(Ckpt__Cgroup__Group *r, const char *name, char *value)
{
	Ckpt__Cgroup__Setting **nv = realloc(r->settings, (r->n_settings + 1) * sizeof(*nv));
	Ckpt__Cgroup__Setting *s;

	if (!nv)
		return -ENOMEM;
	r->settings = nv;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	ckpt__cgroup__setting__init(s);
	s->name = strdup(name);
	s->value = value;
	if (!s->name) {
		free(s);
		return -ENOMEM;
	}
	r->settings[r->n_settings++] = s;
	return 0;
}

static int read_devices(Ckpt__Cgroup__Group *r, const char *dir)
{
	char *buf, *line, *save = NULL;

	if (cg_read_at(dir, "devices.list", &buf))
		return 0;
	r->has_has_devices = 1;
	r->has_devices = 1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char **nv = realloc(r->device_rules, (r->n_device_rules + 1) * sizeof(*nv));

		if (!nv) {
			free(buf);
			return -ENOMEM;
		}
		r->device_rules = nv;
		nv[r->n_device_rules] = strdup(line);
		if (!nv[r->n_device_rules]) {
			free(buf);
			return -ENOMEM;
		}
		r->n_device_rules++;
	}
	free(buf);
	return 0;
}

static int read_settings(struct cg_priv *p, const struct cg_mounts *ms, const struct cg_dgroup *g,
			 Ckpt__Cgroup__Group *r)
{
	const struct cg_mount *m;
	char *dir, *v;
	int ret = 0;

	if (!strcmp(g->path, "/"))
		return 0; /* the hierarchy's root has no settings of its own */
	m = cg_mount_find(ms, g->ctrls);
	if (!m) {
		cg_debug(p, "dump: hierarchy '%s' is not mounted here; %s saved without settings",
			 g->ctrls, g->path);
		return 0;
	}
	dir = cg_dir_of(m, g->path);
	if (!dir) {
		cg_debug(p, "dump: group %s of '%s' is outside the mount %s; saved without settings",
			 g->path, g->ctrls, m->mnt);
		return 0;
	}
	if (!cg_exists_at(dir, "cgroup.procs")) {
		cg_debug(p, "dump: %s is not readable; group %s saved without settings", dir, g->path);
		free(dir);
		return 0;
	}
	r->has_settings_read = r->settings_read = 1;
	if (!*g->ctrls) {
		if (!cg_read_at(dir, "cgroup.type", &v))
			r->type = v;
		for (size_t i = 0; v2_settings[i] && !ret; i++)
			if (!cg_read_at(dir, v2_settings[i], &v)) {
				ret = add_setting(r, v2_settings[i], v);
				if (ret)
					free(v);
			}
	} else {
		for (size_t c = 0; c < sizeof(v1_settings) / sizeof(v1_settings[0]) && !ret; c++) {
			if (!cg_has_ctrl(g->ctrls, v1_settings[c].ctrl))
				continue;
			for (size_t i = 0; v1_settings[c].files[i] && !ret; i++)
				if (!cg_read_at(dir, v1_settings[c].files[i], &v)) {
					ret = add_setting(r, v1_settings[c].files[i], v);
					if (ret)
						free(v);
				}
		}
		if (!ret && cg_has_ctrl(g->ctrls, "devices"))
			ret = read_devices(r, dir);
	}
	free(dir);
	return ret;
}

static void free_record(Ckpt__Cgroup__Group *r)
{
	for (size_t i = 0; i < r->n_settings; i++) {
		free(r->settings[i]->name);
		free(r->settings[i]->value);
		free(r->settings[i]);
	}
	free(r->settings);
	for (size_t i = 0; i < r->n_device_rules; i++)
		free(r->device_rules[i]);
	free(r->device_rules);
	free(r->members);
	free(r->type);
}

static int write_record(struct cg_priv *p, struct ckpt_img *img, const Ckpt__Cgroup__Group *r)
{
	int ret = p->host->img_write_msg(img, &r->base);
	if (ret < 0)
		cg_err(p, "dump: cannot write image %s: %s", CG_IMG, strerror(-ret));
	return ret < 0 ? ret : 0;
}

int cg_dump(struct cg_priv *p)
{
	struct dgroups gs = { 0 };
	struct cg_mounts ms = { 0 };
	struct ckpt_img *img = NULL;
	size_t nmembers = 0;
	int ret;

	ret = collect(p, &gs);
	if (ret)
		goto out;
	if (gs.n)
		qsort(gs.v, gs.n, sizeof(*gs.v), cmp_dgroup);
	ret = cg_mounts_read(&ms);
	if (ret) {
		cg_err(p, "dump: cannot read /proc/self/mountinfo: %s", strerror(-ret));
		goto out;
	}
	img = p->host->img_create(CG_IMG, ckpt__cgroup__group__descriptor.name);
	if (!img) {
		ret = -errno;
		cg_err(p, "dump: cannot create image %s: %s", CG_IMG, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < gs.n && !ret; i++) {
		const struct cg_dgroup *g = &gs.v[i];
		Ckpt__Cgroup__Group r = CKPT__CGROUP__GROUP__INIT;

		r.controllers = g->ctrls;
		r.path = g->path;
		r.has_hierarchy_id = 1;
		r.hierarchy_id = g->id;
		ret = read_settings(p, &ms, g, &r);
		if (!ret && g->nmembers) {
			r.members = calloc(g->nmembers, sizeof(*r.members));
			if (!r.members)
				ret = -ENOMEM;
			for (size_t k = 0; !ret && k < g->nmembers; k++)
				r.members[k] = &g->members[k];
			r.n_members = g->nmembers;
		}
		if (!ret)
			ret = write_record(p, img, &r);
		else if (ret == -ENOMEM)
			cg_err(p, "dump: out of memory while saving cgroup %s", g->path);
		nmembers += g->nmembers;
		free_record(&r);
	}
	if (!ret)
		cg_info(p, "dump: %zu group(s), %zu memberships saved", gs.n, nmembers);
out:
	if (img) {
		int r = p->host->img_close(img);

		if (!ret && r < 0) {
			cg_err(p, "dump: cannot finish image %s: %s", CG_IMG, strerror(-r));
			ret = r;
		}
	}
	cg_mounts_free(&ms);
	dgroups_free(&gs);
	return ret;
}
