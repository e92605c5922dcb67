// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgroup plugin, restore.
 *
 * restore_start reads cgroup.img and resolves every group on this host: the
 * mount of its hierarchy (a controller this host does not mount is an
 * error), its path under --cgroup-root, and whether it exists; the checks of
 * the mode (props: every group must exist; strict: an existing group must
 * have the saved settings) fail the restore before any task exists.
 *
 * restore_resume (every task and thread exists, nothing runs yet) creates
 * the missing groups (soft, full, strict), writes the settings (props and
 * full: every group; soft and strict: the groups this restore created) and
 * moves every thread into its groups: v1 writes the thread id to `tasks`;
 * cgroup2 writes the process to `cgroup.procs` of its main thread's group
 * and a thread whose group differs (a threaded subtree) to `cgroup.threads`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"

static const char *hier_name(const Ckpt__Cgroup__Group *g)
{
	return *g->controllers ? g->controllers : "cgroup2";
}

static Ckpt__Cgroup__Group *rec(const struct cg_priv *p, size_t i)
{
	return (Ckpt__Cgroup__Group *)p->recs[i];
}

static bool sets_everything(const struct cg_priv *p)
{
	return p->mode == CG_MODE_PROPS || p->mode == CG_MODE_FULL;
}

static bool creates(const struct cg_priv *p)
{
	return p->mode == CG_MODE_SOFT || p->mode == CG_MODE_FULL || p->mode == CG_MODE_STRICT;
}

/* The group's path after --cgroup-root. */
static char *target_of(const struct cg_priv *p, const char *path)
{
	if (!p->cgroup_root || !*p->cgroup_root)
		return strdup(path);
	if (!strcmp(path, "/"))
		return strdup(p->cgroup_root);
	return cg_join(p->cgroup_root, path);
}

/* ---- comparing settings ------------------------------------------------------- */

static bool has_token(const char *list, const char *tok, size_t len)
{
	for (const char *s = list; *s;) {
		const char *e;

		while (*s == ' ')
			s++;
		e = strchr(s, ' ');
		if (!e)
			e = s + strlen(s);
		if ((size_t)(e - s) == len && !strncmp(s, tok, len))
			return true;
		s = e;
	}
	return false;
}

/* Every word of want is in have (cgroup.subtree_control). */
static bool words_in(const char *want, const char *have)
{
	for (const char *s = want; *s;) {
		const char *e;

		while (*s == ' ')
			s++;
		if (!*s)
			break;
		e = strchr(s, ' ');
		if (!e)
			e = s + strlen(s);
		if (!has_token(have, s, (size_t)(e - s)))
			return false;
		s = e;
	}
	return true;
}

static bool same_setting(const char *name, const char *want, const char *have)
{
	if (!strcmp(name, "cgroup.subtree_control"))
		return words_in(want, have) && words_in(have, want);
	return !strcmp(want, have);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* devices.list now, as sorted lines; 0 or -errno */
static int devices_now(const char *dir, char ***lines, size_t *n)
{
	char *buf, *l, *save = NULL, **v = NULL;
	size_t cnt = 0;
	int ret = cg_read_at(dir, "devices.list", &buf);

	*lines = NULL;
	*n = 0;
	if (ret)
		return ret;
	for (l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char **nv = realloc(v, (cnt + 1) * sizeof(*nv));

		if (!nv || !(nv[cnt] = strdup(l))) {
			if (nv)
				v = nv;
			for (size_t i = 0; i < cnt; i++)
				free(v[i]);
			free(v);
			free(buf);
			return -ENOMEM;
		}
		v = nv;
		cnt++;
	}
	free(buf);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_str);
	*lines = v;
	*n = cnt;
	return 0;
}

static void free_lines(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* 1: devices.list of dir holds exactly the saved rules, 0: not, -errno */
static int devices_match(const Ckpt__Cgroup__Group *g, const char *dir)
{
	char **now, **want;
	size_t n;
	int ret = devices_now(dir, &now, &n);

	if (ret)
		return ret;
	if (n != g->n_device_rules) {
		free_lines(now, n);
		return 0;
	}
	want = calloc(n + 1, sizeof(*want));
	if (!want) {
		free_lines(now, n);
		return -ENOMEM;
	}
	memcpy(want, g->device_rules, n * sizeof(*want));
	if (n)
		qsort(want, n, sizeof(*want), cmp_str);
	ret = 1;
	for (size_t i = 0; i < n && ret; i++)
		ret = !strcmp(want[i], now[i]);
	free(want);
	free_lines(now, n);
	return ret;
}

/* ---- restore_start ------------------------------------------------------------------ */

static int check_strict(struct cg_priv *p, const struct cg_rgroup *r)
{
	const Ckpt__Cgroup__Group *g = r->g;

	for (size_t i = 0; i < g->n_settings; i++) {
		const Ckpt__Cgroup__Setting *s = g->settings[i];
		char *now = NULL;
		int ret = cg_read_at(r->dir, s->name, &now);

		if (ret) {
			cg_err(p, "restore: cgroup %s (%s) has no %s here (%s); --manage-cgroups=strict "
				  "needs the saved settings: enable the controller or use "
				  "--manage-cgroups=soft",
			       r->target, hier_name(g), s->name, strerror(-ret));
			return -ENOENT;
		}
		if (!same_setting(s->name, s->value, now)) {
			cg_err(p, "restore: cgroup %s (%s) exists with %s = '%s', the dump saved '%s'; "
				  "--manage-cgroups=strict refuses it: set it, remove the group, or use "
				  "--manage-cgroups=soft",
			       r->target, hier_name(g), s->name, now, s->value);
			free(now);
			return -EEXIST;
		}
		free(now);
	}
	if (g->has_has_devices && g->has_devices) {
		int m = devices_match(g, r->dir);

		if (m == 0) {
			cg_err(p, "restore: cgroup %s (devices) exists with other device rules than the "
				  "dump saved; --manage-cgroups=strict refuses it: remove the group or use "
				  "--manage-cgroups=soft",
			       r->target);
			return -EEXIST;
		}
	}
	return 0;
}

int cg_restore_prepare(struct cg_priv *p)
{
	int ret;

	if (p->mode == CG_MODE_NONE)
		return 0;
	ret = p->host->img_load(CG_IMG, &ckpt__cgroup__group__descriptor, &p->recs, &p->nrecs);
	if (ret)
		return ret;
	if (!p->nrecs)
		return 0;
	if (p->cgroup_root && p->cgroup_root[0] != '/') {
		cg_err(p, "restore: --cgroup-root %s must be an absolute path inside the hierarchies "
			  "(e.g. /restored)",
		       p->cgroup_root);
		return -EINVAL;
	}
	ret = cg_mounts_read(&p->mounts);
	if (ret) {
		cg_err(p, "restore: cannot read /proc/self/mountinfo: %s", strerror(-ret));
		return ret;
	}
	p->rg = calloc(p->nrecs, sizeof(*p->rg));
	if (!p->rg)
		return -ENOMEM;
	p->nrg = p->nrecs;
	for (size_t i = 0; i < p->nrecs; i++) {
		struct cg_rgroup *r = &p->rg[i];
		const Ckpt__Cgroup__Group *g = rec(p, i);

		r->g = g;
		r->m = cg_mount_find(&p->mounts, g->controllers);
		if (!r->m) {
			if (!strncmp(g->controllers, "name=", 5)) {
				cg_info(p, "restore: named hierarchy %s is not mounted here; its "
					   "memberships are not restored",
					g->controllers);
				continue;
			}
			if (*g->controllers)
				cg_err(p, "restore: the dump has tasks in cgroup %s of the v1 controller "
					  "%s, which this host does not mount; mount it (mount -t cgroup "
					  "-o %s cgroup /sys/fs/cgroup/%s) or restore with "
					  "--manage-cgroups=none",
				       g->path, g->controllers, g->controllers, g->controllers);
			else
				cg_err(p, "restore: the dump has tasks in cgroup2 group %s, and this host "
					  "has no cgroup2 mount; mount it (mount -t cgroup2 none "
					  "/sys/fs/cgroup/unified) or restore with --manage-cgroups=none",
				       g->path);
			return -ENOENT;
		}
		r->target = target_of(p, g->path);
		if (!r->target)
			return -ENOMEM;
		r->dir = cg_dir_of(r->m, r->target);
		if (!r->dir) {
			cg_err(p, "restore: cgroup %s (%s) is outside the part of the hierarchy that "
				  "%s shows (mount root %s); restore with --cgroup-root under %s",
			       r->target, hier_name(g), r->m->mnt, r->m->root, r->m->root);
			return -ENOENT;
		}
		r->existed = access(r->dir, F_OK) == 0;
		if (!r->existed && errno == ENOTDIR) {
			/* a control file on the way (--cgroup-root /cgroup.procs/x) */
			cg_err(p, "restore: cgroup %s (%s) cannot be created: a part of %s is a file, "
				  "not a group; choose another --cgroup-root",
			       r->target, hier_name(g), r->dir);
			return -ENOTDIR;
		}
		if (!r->existed && !creates(p)) {
			cg_err(p, "restore: cgroup %s (%s) does not exist (%s); create it, or restore with "
				  "--manage-cgroups=soft so that ckpt creates the missing groups",
			       r->target, hier_name(g), r->dir);
			return -ENOENT;
		}
		if (r->existed && p->mode == CG_MODE_STRICT) {
			ret = check_strict(p, r);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* ---- restore_resume: groups ------------------------------------------------------------- */

static int note_created(struct cg_priv *p, const char *dir)
{
	char *d;

	if (p->ncreated == p->created_cap) {
		size_t ncap = p->created_cap ? p->created_cap * 2 : 16;
		char **nv = realloc(p->created, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		p->created = nv;
		p->created_cap = ncap;
	}
	d = strdup(dir);
	if (!d)
		return -ENOMEM;
	p->created[p->ncreated++] = d;
	return 0;
}

/* A new v1 cpuset group has no CPUs and no memory nodes: no task could
 * join it.  Start it with its parent's (the saved settings follow). */
static int init_cpuset(struct cg_priv *p, const char *dir)
{
	static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
	char *parent = strdup(dir), *slash;
	int ret = 0;

	if (!parent)
		return -ENOMEM;
	slash = strrchr(parent, '/');
	if (slash)
		*slash = '\0';
	for (size_t i = 0; i < 2 && !ret; i++) {
		char *v = NULL;

		if (cg_read_at(parent, files[i], &v))
			continue;
		if (*v)
			ret = cg_write_at(dir, files[i], v);
		if (ret)
			cg_err(p, "restore: cannot give the new cpuset group %s the %s '%s' of its "
				  "parent: %s",
			       dir, files[i], v, strerror(-ret));
		free(v);
	}
	free(parent);
	return ret;
}

/* mkdir -p of r->dir below the mount point. */
static int make_dirs(struct cg_priv *p, struct cg_rgroup *r)
{
	size_t ml = strlen(r->m->mnt);
	char *d = strdup(r->dir);
	int ret = 0;

	if (!d)
		return -ENOMEM;
	for (char *s = d + ml; !ret;) {
		char *slash;

		while (*s == '/')
			s++;
		if (!*s)
			break;
		slash = strchr(s, '/');
		if (slash)
			*slash = '\0';
		if (mkdir(d, 0755) == 0) {
			ret = note_created(p, d);
			if (!ret && !r->m->v2 && cg_has_ctrl(r->m->opts, "cpuset"))
				ret = init_cpuset(p, d);
			cg_debug(p, "restore: created cgroup %s", d);
		} else if (errno != EEXIST) {
			ret = -errno;
			cg_err(p, "restore: cannot create cgroup %s (%s): %s; check the permissions "
				  "there or restore with --manage-cgroups=none",
			       d, hier_name(r->g), strerror(errno));
		}
		if (!slash)
			break;
		*slash = '/';
		s = slash + 1;
	}
	free(d);
	return ret;
}

static int write_setting(struct cg_priv *p, const struct cg_rgroup *r, const char *name,
			 const char *text, const char *want)
{
	int ret = cg_write_at(r->dir, name, text);

	if (!ret)
		return 0;
	if (ret == -ENOENT)
		cg_err(p, "restore: cgroup %s (%s) has no %s on this host: the controller is missing "
			  "or not enabled for it (cgroup2: the parent's cgroup.subtree_control); "
			  "enable it or restore with --manage-cgroups=none",
		       r->target, hier_name(r->g), name);
	else
		cg_err(p, "restore: cannot set %s of cgroup %s (%s) to '%s': %s", name, r->target,
		       hier_name(r->g), want, strerror(-ret));
	return ret;
}

static int apply_devices(struct cg_priv *p, const struct cg_rgroup *r)
{
	const Ckpt__Cgroup__Group *g = r->g;
	int m = devices_match(g, r->dir), ret;

	if (m == 1)
		return 0;
	if (g->n_device_rules == 1 && !strcmp(g->device_rules[0], "a *:* rwm"))
		return write_setting(p, r, "devices.allow", "a", g->device_rules[0]);
	ret = write_setting(p, r, "devices.deny", "a", "a");
	for (size_t i = 0; i < g->n_device_rules && !ret; i++)
		ret = write_setting(p, r, "devices.allow", g->device_rules[i], g->device_rules[i]);
	return ret;
}

static int apply_settings(struct cg_priv *p, const struct cg_rgroup *r)
{
	const Ckpt__Cgroup__Group *g = r->g;
	int ret = 0;

	for (size_t i = 0; i < g->n_settings && !ret; i++) {
		const Ckpt__Cgroup__Setting *s = g->settings[i];
		char *now = NULL;

		if (!cg_read_at(r->dir, s->name, &now) && same_setting(s->name, s->value, now)) {
			free(now);
			continue;
		}
		if (!strcmp(s->name, "cgroup.subtree_control")) {
			/* enable what is missing, one controller at a time */
			char *dup = strdup(s->value), *save = NULL;

			if (!dup) {
				free(now);
				return -ENOMEM;
			}
			for (char *c = strtok_r(dup, " ", &save); c && !ret; c = strtok_r(NULL, " ", &save)) {
				char *plus;

				if (now && has_token(now, c, strlen(c)))
					continue;
				plus = cg_strdup_printf("+%s", c);
				ret = plus ? write_setting(p, r, s->name, plus, s->value) : -ENOMEM;
				free(plus);
			}
			free(dup);
		} else {
			ret = write_setting(p, r, s->name, s->value, s->value);
		}
		free(now);
	}
	if (!ret && g->has_has_devices && g->has_devices)
		ret = apply_devices(p, r);
	return ret;
}

static int make_groups(struct cg_priv *p)
{
	int ret = 0;

	for (size_t i = 0; i < p->nrg && !ret; i++) {
		struct cg_rgroup *r = &p->rg[i];
		const Ckpt__Cgroup__Group *g = r->g;
		bool made;

		if (!r->m)
			continue;
		made = !r->existed; /* absent at restore_start: this restore makes it */
		if (made && creates(p))
			ret = make_dirs(p, r);
		if (ret)
			break;
		/* a cgroup2 group of a threaded subtree is threaded from the start */
		if (made && r->m->v2 && g->type && !strcmp(g->type, "threaded")) {
			ret = cg_write_at(r->dir, "cgroup.type", "threaded");
			if (ret)
				cg_err(p, "restore: cannot make cgroup2 group %s threaded: %s", r->target,
				       strerror(-ret));
		}
		if (ret || !g->settings_read)
			continue;
		if (sets_everything(p) || made)
			ret = apply_settings(p, r);
	}
	return ret;
}

/* ---- restore_resume: tasks -------------------------------------------------------------- */

int cg_tmap_build(struct cg_priv *p, struct cg_tmap *m)
{
	size_t n = p->host->tree_pids(NULL, 0), got;
	pid_t *pids;

	if (!n)
		return 0;
	pids = calloc(n, sizeof(*pids));
	if (!pids)
		return -ENOMEM;
	got = p->host->tree_pids(pids, n);
	if (got < n)
		n = got;
	for (size_t i = 0; i < n; i++) {
		pid_t *tids, vpid;
		size_t nt;

		if (pids[i] <= 0 || cg_list_tids(pids[i], &tids, &nt))
			continue;
		vpid = cg_ns_tid(pids[i], pids[i]);
		for (size_t k = 0; k < nt && vpid > 0; k++) {
			pid_t vtid = cg_ns_tid(pids[i], tids[k]);

			if (vtid <= 0)
				continue;
			if (m->n == m->cap) {
				size_t ncap = m->cap ? m->cap * 2 : 32;
				struct cg_tmap_ent *nv = realloc(m->v, ncap * sizeof(*nv));

				if (!nv) {
					free(tids);
					free(pids);
					return -ENOMEM;
				}
				m->v = nv;
				m->cap = ncap;
			}
			m->v[m->n++] = (struct cg_tmap_ent){ vpid, vtid, pids[i], tids[k] };
		}
		free(tids);
	}
	free(pids);
	return 0;
}

const struct cg_tmap_ent *cg_tmap_find(const struct cg_tmap *m, pid_t vpid, pid_t vtid)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->v[i].vpid == vpid && m->v[i].vtid == vtid)
			return &m->v[i];
	return NULL;
}

static int move_one(struct cg_priv *p, const struct cg_rgroup *r, const char *file, pid_t id,
		    pid_t vid)
{
	char s[16];
	int ret;

	snprintf(s, sizeof(s), "%d", (int)id);
	ret = cg_write_at(r->dir, file, s);
	if (ret == -ESRCH)
		return 0; /* a zombie: it belongs nowhere any more */
	if (ret)
		cg_err(p, "restore: cannot move %s %d into cgroup %s (%s): %s (%s/%s)",
		       strcmp(file, "cgroup.procs") ? "thread" : "process", (int)vid, r->target,
		       hier_name(r->g), strerror(-ret), r->dir, file);
	return ret;
}

/* cgroup2 group of the main thread of process vpid, or NULL */
static const struct cg_rgroup *v2_leader_group(const struct cg_priv *p, pid_t vpid)
{
	for (size_t i = 0; i < p->nrg; i++) {
		const struct cg_rgroup *r = &p->rg[i];

		if (!r->m || !r->m->v2)
			continue;
		for (size_t k = 0; k < r->g->n_members; k++)
			if (r->g->members[k]->pid == vpid && r->g->members[k]->tid == vpid)
				return r;
	}
	return NULL;
}

const struct cg_rgroup *cg_rgroup_find(const struct cg_priv *p, const char *ctrls,
				       const char *path)
{
	for (size_t i = 0; i < p->nrg; i++)
		if (!strcmp(p->rg[i].g->controllers, ctrls) && !strcmp(p->rg[i].g->path, path))
			return &p->rg[i];
	return NULL;
}

static int move_tasks(struct cg_priv *p, const struct cg_tmap *tm)
{
	const struct cg_tmap *m = tm;
	size_t moved = 0, missing = 0;
	int ret = 0;

	/* pass 0: v1 threads and cgroup2 processes; pass 1: cgroup2 threads
	 * that are in another group than their main thread */
	for (int pass = 0; pass < 2 && !ret; pass++) {
		for (size_t i = 0; i < p->nrg && !ret; i++) {
			const struct cg_rgroup *r = &p->rg[i];

			if (!r->m || (!r->m->v2 && pass == 1))
				continue;
			for (size_t k = 0; k < r->g->n_members && !ret; k++) {
				const Ckpt__Cgroup__Member *mb = r->g->members[k];
				const struct cg_tmap_ent *e = cg_tmap_find(m, mb->pid, mb->tid);
				bool leader = mb->pid == mb->tid;

				if (!r->m->v2) {
					if (!e) {
						missing++;
						continue;
					}
					ret = move_one(p, r, "tasks", e->htid, mb->tid);
				} else if (pass == 0 && leader) {
					if (!e) {
						missing++;
						continue;
					}
					ret = move_one(p, r, "cgroup.procs", e->hpid, mb->pid);
				} else if (pass == 1 && !leader && v2_leader_group(p, mb->pid) != r) {
					if (!e) {
						missing++;
						continue;
					}
					ret = move_one(p, r, "cgroup.threads", e->htid, mb->tid);
				} else {
					continue;
				}
				moved++;
			}
		}
	}
	if (!ret && missing)
		cg_warn(p, "restore: %zu thread(s) of the dump were not found in the restored tree; "
			   "their cgroups were not restored",
			missing);
	if (!ret)
		cg_info(p, "restore: %zu membership(s) restored", moved);
	return ret;
}

int cg_restore_resume(struct cg_priv *p)
{
	bool groups = p->mode != CG_MODE_NONE && p->nrg;
	struct cg_tmap m = { 0 };
	int ret = 0;

	if (!groups && !p->nnsrecs)
		return 0;
	if (groups)
		ret = make_groups(p);
	if (!ret)
		ret = cg_tmap_build(p, &m);
	/* a namespace takes its root from the groups its first task is in
	 * when it is made: before the tasks go to their own groups */
	if (!ret)
		ret = cg_ns_restore(p, &m);
	if (!ret && groups)
		ret = move_tasks(p, &m);
	free(m.v);
	return ret;
}

void cg_restore_cleanup(struct cg_priv *p, bool failed)
{
	/* a failed restore removes the groups it made; the killed tasks
	 * may take a moment to leave them */
	for (size_t i = p->ncreated; i-- > 0;) {
		if (failed) {
			for (int t = 0; t < 50 && rmdir(p->created[i]) && errno == EBUSY; t++) {
				struct timespec ts = { 0, 10 * 1000 * 1000 };

				nanosleep(&ts, NULL);
			}
		}
		free(p->created[i]);
	}
	free(p->created);
	p->created = NULL;
	p->ncreated = p->created_cap = 0;
	for (size_t i = 0; i < p->nrg; i++) {
		free(p->rg[i].target);
		free(p->rg[i].dir);
	}
	free(p->rg);
	p->rg = NULL;
	p->nrg = 0;
	for (size_t i = 0; i < p->nrecs; i++)
		protobuf_c_message_free_unpacked(p->recs[i], NULL);
	free(p->recs);
	p->recs = NULL;
	p->nrecs = 0;
	cg_mounts_free(&p->mounts);
	cg_ns_cleanup(p);
}
