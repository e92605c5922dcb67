// SPDX-License-Identifier: GPL-2.0-only
/*
 * cgroup plugin: cgroup namespaces of the tree.
 *
 * Dump: a thread whose /proc/PID/task/TID/ns/cgroup differs from ckpt's own
 * is in a namespace of the tree.  Its root in each hierarchy is found by
 * reading the thread's cgroup file twice: as ckpt sees it (the full path H)
 * and from inside the namespace (ckpt's thread setns()es into it for the
 * read: /proc/.../cgroup shows paths relative to the reader's namespace).
 * The inside path N is H with the root cut off, so the root is H without
 * the suffix N.  A thread outside its namespace's root (N starts with
 * "/..") cannot tell it; another member of the namespace must.
 *
 * Restore (restore_resume: the tree exists and is stopped, the groups are
 * made, nobody is in them yet): the first member is moved into the root
 * groups and unshare(CLONE_NEWCGROUP) is injected into it, so the new
 * namespace has the saved roots; every other member joins it by injected
 * pidfd_open + setns + close.  Then the threads go to their own groups.
 * Both need CAP_SYS_ADMIN in the restored task, as they did at dump time.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup.h"

#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

/* ---- dump ------------------------------------------------------------------------- */

struct dns {
	ino_t ino;
	dev_t dev;
	Ckpt__Cgroup__Member *members;
	size_t nmembers, cap;
	struct cg_lines roots; /* one per hierarchy; path NULL: not found yet */
	bool roots_read;
	pid_t first_pid, first_tid; /* for the error message */
	char *outside;              /* a path N that started with "/.." */
};

struct dnss {
	struct dns *v;
	size_t n, cap;
};

static void dnss_free(struct dnss *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].members);
		cg_lines_free(&s->v[i].roots);
		free(s->v[i].outside);
	}
	free(s->v);
}

static struct dns *dns_get(struct dnss *s, const struct stat *st)
{
	struct dns *d;

	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].ino == st->st_ino && s->v[i].dev == st->st_dev)
			return &s->v[i];
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 4;
		struct dns *nv = realloc(s->v, ncap * sizeof(*nv));

		if (!nv)
			return NULL;
		s->v = nv;
		s->cap = ncap;
	}
	d = &s->v[s->n++];
	memset(d, 0, sizeof(*d));
	d->ino = st->st_ino;
	d->dev = st->st_dev;
	return d;
}

static int dns_add_member(struct dns *d, pid_t vpid, pid_t vtid)
{
	if (d->nmembers == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 4;
		Ckpt__Cgroup__Member *nv = realloc(d->members, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		d->members = nv;
		d->cap = ncap;
	}
	ckpt__cgroup__member__init(&d->members[d->nmembers]);
	d->members[d->nmembers].pid = vpid;
	d->members[d->nmembers].tid = vtid;
	d->nmembers++;
	return 0;
}

/* The thread's cgroup lines as seen from inside namespace nsfile. */
static int read_inside(struct cg_priv *p, int ownfd, const char *nsfile, const char *file,
		       struct cg_lines *out)
{
	int fd = open(nsfile, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWCGROUP)) {
		ret = -errno;
		close(fd);
		cg_err(p, "dump: cannot enter the cgroup namespace %s to read its root: %s", nsfile,
		       strerror(-ret));
		return ret;
	}
	close(fd);
	ret = cg_lines_read(file, out);
	/* back to ckpt's own, or every later path would be wrong */
	if (setns(ownfd, CLONE_NEWCGROUP)) {
		int e = errno;

		cg_err(p, "dump: cannot return to ckpt's own cgroup namespace: %s", strerror(e));
		if (!ret)
			cg_lines_free(out);
		return -e;
	}
	return ret;
}

/* root of H when the namespace shows it as N; NULL when N is outside it */
static char *root_of(const char *h, const char *n)
{
	size_t hl = strlen(h), nl = strlen(n);

	if (n[0] != '/' || !strncmp(n, "/..", 3))
		return NULL;
	if (!strcmp(n, "/"))
		return strdup(h);
	if (nl > hl || strcmp(h + hl - nl, n))
		return NULL;
	if (hl == nl)
		return strdup("/");
	return strndup(h, hl - nl);
}

/* Fill the roots of d that are still unknown from thread pid/tid. */
static int find_roots(struct cg_priv *p, struct dns *d, int ownfd, pid_t pid, pid_t tid)
{
	char file[96], nsfile[96];
	struct cg_lines host, in;
	int ret;

	snprintf(file, sizeof(file), "/proc/%d/task/%d/cgroup", (int)pid, (int)tid);
	snprintf(nsfile, sizeof(nsfile), "/proc/%d/task/%d/ns/cgroup", (int)pid, (int)tid);
	ret = cg_lines_read(file, &host);
	if (ret)
		return ret == -ENOENT || ret == -ESRCH ? 0 : ret;
	ret = read_inside(p, ownfd, nsfile, file, &in);
	if (ret) {
		cg_lines_free(&host);
		return ret;
	}
	if (!d->roots_read) {
		/* one root per hierarchy of the thread, none known yet */
		d->roots.v = calloc(host.n ? host.n : 1, sizeof(*d->roots.v));
		if (!d->roots.v) {
			ret = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < host.n; i++) {
			d->roots.v[i].id = host.v[i].id;
			d->roots.v[i].ctrls = strdup(host.v[i].ctrls);
			d->roots.n++;
			if (!d->roots.v[i].ctrls) {
				ret = -ENOMEM;
				goto out;
			}
		}
		d->roots_read = true;
	}
	for (size_t i = 0; i < d->roots.n; i++) {
		struct cg_line *r = &d->roots.v[i];
		const char *h = NULL, *n = NULL;

		if (r->path)
			continue;
		for (size_t k = 0; k < host.n; k++)
			if (!strcmp(host.v[k].ctrls, r->ctrls))
				h = host.v[k].path;
		for (size_t k = 0; k < in.n; k++)
			if (!strcmp(in.v[k].ctrls, r->ctrls))
				n = in.v[k].path;
		if (!h || !n)
			continue;
		r->path = root_of(h, n);
		if (!r->path && !d->outside)
			d->outside = cg_strdup_printf("%s:%s", *r->ctrls ? r->ctrls : "cgroup2", n);
	}
out:
	cg_lines_free(&host);
	cg_lines_free(&in);
	return ret;
}

static bool roots_done(const struct dns *d)
{
	if (!d->roots_read)
		return false;
	for (size_t i = 0; i < d->roots.n; i++)
		if (!d->roots.v[i].path)
			return false;
	return true;
}

static int collect_ns(struct cg_priv *p, struct dnss *s)
{
	size_t n = p->host->tree_pids(NULL, 0), got;
	struct stat own;
	pid_t *pids;
	int ret = 0, ownfd;

	if (!n)
		return 0;
	if (stat("/proc/thread-self/ns/cgroup", &own))
		return 0; /* no cgroup namespaces on this kernel */
	ownfd = open("/proc/thread-self/ns/cgroup", O_RDONLY | O_CLOEXEC);
	if (ownfd < 0) {
		ret = -errno;
		cg_err(p, "dump: cannot open ckpt's own cgroup namespace: %s", strerror(errno));
		return ret;
	}
	pids = calloc(n, sizeof(*pids));
	if (!pids) {
		close(ownfd);
		return -ENOMEM;
	}
	got = p->host->tree_pids(pids, n);
	if (got < n)
		n = got;
	for (size_t i = 0; i < n && !ret; i++) {
		pid_t *tids, vpid;
		size_t nt;

		if (pids[i] <= 0 || cg_list_tids(pids[i], &tids, &nt))
			continue;
		vpid = cg_ns_tid(pids[i], pids[i]);
		for (size_t k = 0; k < nt && !ret && vpid > 0; k++) {
			char nsfile[96];
			struct stat st;
			struct dns *d;
			pid_t vtid;

			snprintf(nsfile, sizeof(nsfile), "/proc/%d/task/%d/ns/cgroup", (int)pids[i],
				 (int)tids[k]);
			if (stat(nsfile, &st))
				continue; /* gone */
			if (st.st_ino == own.st_ino && st.st_dev == own.st_dev)
				continue;
			vtid = cg_ns_tid(pids[i], tids[k]);
			if (vtid <= 0)
				continue;
			d = dns_get(s, &st);
			if (!d) {
				ret = -ENOMEM;
				break;
			}
			if (!d->nmembers) {
				d->first_pid = pids[i];
				d->first_tid = tids[k];
			}
			ret = dns_add_member(d, vpid, vtid);
			if (!ret && !roots_done(d))
				ret = find_roots(p, d, ownfd, pids[i], tids[k]);
		}
		free(tids);
	}
	free(pids);
	close(ownfd);
	return ret;
}

static int write_ns(struct cg_priv *p, struct ckpt_img *img, const struct dns *d)
{
	Ckpt__Cgroup__Namespace r = CKPT__CGROUP__NAMESPACE__INIT;
	Ckpt__Cgroup__NsRoot *roots = calloc(d->roots.n + 1, sizeof(*roots));
	Ckpt__Cgroup__NsRoot **rootp = calloc(d->roots.n + 1, sizeof(*rootp));
	Ckpt__Cgroup__Member **mp = calloc(d->nmembers + 1, sizeof(*mp));
	int ret = -ENOMEM;

	if (!roots || !rootp || !mp)
		goto out;
	r.has_inode = 1;
	r.inode = d->ino;
	for (size_t i = 0; i < d->roots.n; i++) {
		ckpt__cgroup__ns_root__init(&roots[i]);
		roots[i].controllers = d->roots.v[i].ctrls;
		roots[i].path = d->roots.v[i].path;
		rootp[i] = &roots[i];
	}
	r.roots = rootp;
	r.n_roots = d->roots.n;
	for (size_t i = 0; i < d->nmembers; i++)
		mp[i] = &d->members[i];
	r.members = mp;
	r.n_members = d->nmembers;
	ret = p->host->img_write_msg(img, &r.base);
	if (ret < 0)
		cg_err(p, "dump: cannot write image %s: %s", CG_NS_IMG, strerror(-ret));
	else
		ret = 0;
out:
	free(roots);
	free(rootp);
	free(mp);
	return ret;
}

/* CLAIM dump_namespace: every cgroup namespace of the tree, the root's and
 * its members', is saved by cg_dump_ns (tree_frozen). */
int cg_dump_namespace(struct cg_priv *p, pid_t pid, const char *kind)
{
	(void)p;
	(void)pid;
	return strcmp(kind, "cgroup") ? CKPT_NOT_MINE : 0;
}

int cg_dump_ns(struct cg_priv *p)
{
	struct dnss s = { 0 };
	struct ckpt_img *img = NULL;
	int ret = collect_ns(p, &s);

	if (ret == -ENOMEM)
		cg_err(p, "dump: out of memory while collecting cgroup namespaces");
	for (size_t i = 0; i < s.n && !ret; i++) {
		const struct dns *d = &s.v[i];

		if (roots_done(d))
			continue;
		cg_err(p, "dump: PID %d is in a cgroup namespace whose root cannot be found from "
			  "outside: its tasks are all outside that root (%s); move one of them back "
			  "below the root",
		       (int)d->first_pid, d->outside ? d->outside : "no cgroup lines");
		ret = -ENOTSUP;
	}
	if (ret || !s.n)
		goto out;
	img = p->host->img_create(CG_NS_IMG, ckpt__cgroup__namespace__descriptor.name);
	if (!img) {
		ret = -errno;
		cg_err(p, "dump: cannot create image %s: %s", CG_NS_IMG, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < s.n && !ret; i++) {
		ret = write_ns(p, img, &s.v[i]);
		for (size_t k = 0; !ret && k < s.v[i].roots.n; k++)
			cg_debug(p, "dump: cgroup namespace %lu: root %s in %s",
				 (unsigned long)s.v[i].ino, s.v[i].roots.v[k].path,
				 *s.v[i].roots.v[k].ctrls ? s.v[i].roots.v[k].ctrls : "cgroup2");
	}
	if (!ret)
		cg_info(p, "dump: %zu cgroup namespace(s) saved", s.n);
	{
		int r = p->host->img_close(img);

		if (!ret && r < 0) {
			cg_err(p, "dump: cannot finish image %s: %s", CG_NS_IMG, strerror(-r));
			ret = r;
		}
	}
out:
	dnss_free(&s);
	return ret;
}

/* ---- restore ---------------------------------------------------------------------- */

static const Ckpt__Cgroup__Namespace *nsrec(const struct cg_priv *p, size_t i)
{
	return (const Ckpt__Cgroup__Namespace *)p->nsrecs[i];
}

int cg_ns_prepare(struct cg_priv *p)
{
	int ret = p->host->img_load(CG_NS_IMG, &ckpt__cgroup__namespace__descriptor, &p->nsrecs,
				    &p->nnsrecs);

	if (ret)
		return ret;
	if (p->nnsrecs && !p->host->inject_syscall) {
		cg_err(p, "restore: the dump has cgroup namespaces and this ckpt cannot run syscalls "
			  "in restored tasks; use a newer ckpt");
		return -ENOTSUP;
	}
	if (p->nnsrecs && p->mode == CG_MODE_NONE)
		cg_info(p, "restore: --manage-cgroups=none: %zu cgroup namespace(s) are made with "
			   "their roots where the tasks are, not where the dump saw them",
			p->nnsrecs);
	return 0;
}

/* restore_namespace: the namespaces are unshared by the tree itself in
 * restore_resume; nothing for the core to enter. */
int cg_restore_namespace(struct cg_priv *p, const char *kind, int *fd)
{
	if (strcmp(kind, "cgroup"))
		return CKPT_NOT_MINE;
	if (!p->nnsrecs) {
		cg_err(p, "restore: the core image says the tree had a cgroup namespace of its own, "
			  "but %s holds none; the images are damaged", CG_NS_IMG);
		return -EBADMSG;
	}
	*fd = -1;
	return 0;
}

void cg_ns_cleanup(struct cg_priv *p)
{
	for (size_t i = 0; i < p->nnsrecs; i++)
		protobuf_c_message_free_unpacked(p->nsrecs[i], NULL);
	free(p->nsrecs);
	p->nsrecs = NULL;
	p->nnsrecs = 0;
}

/* Run one syscall in thread tid; its result, or -errno. */
static long inject(struct cg_priv *p, pid_t tid, long nr, uint64_t a0, uint64_t a1)
{
	uint64_t args[6] = { a0, a1, 0, 0, 0, 0 };
	long res = 0;
	int ret = p->host->inject_syscall(tid, nr, args, &res);

	return ret ? ret : res;
}

static const char *why(long err)
{
	return err == -EPERM ? "Operation not permitted (the task lacks CAP_SYS_ADMIN)"
			     : strerror((int)-err);
}

/* Move thread e into the namespace's root group of every hierarchy that
 * this restore manages. */
static int move_to_roots(struct cg_priv *p, const Ckpt__Cgroup__Namespace *ns,
			 const struct cg_tmap_ent *e)
{
	for (size_t i = 0; i < ns->n_roots; i++) {
		const struct cg_rgroup *r = cg_rgroup_find(p, ns->roots[i]->controllers,
							   ns->roots[i]->path);
		char s[16];
		int ret;

		if (!r || !r->m)
			continue; /* a hierarchy this host does not have */
		snprintf(s, sizeof(s), "%d", (int)e->htid);
		ret = cg_write_at(r->dir, r->m->v2 ? "cgroup.procs" : "tasks", s);
		if (ret) {
			cg_err(p, "restore: cannot move thread %d into %s, the root of its cgroup "
				  "namespace in %s: %s",
			       (int)e->vtid, r->dir, *r->g->controllers ? r->g->controllers : "cgroup2",
			       strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int restore_one(struct cg_priv *p, const Ckpt__Cgroup__Namespace *ns,
		       const struct cg_tmap *m)
{
	const struct cg_tmap_ent *first = NULL;
	size_t joined = 0;
	long r;
	int ret;

	/* a main thread if there is one: a pidfd names it without PIDFD_THREAD */
	for (size_t i = 0; i < ns->n_members && !first; i++)
		if (ns->members[i]->pid == ns->members[i]->tid)
			first = cg_tmap_find(m, ns->members[i]->pid, ns->members[i]->tid);
	for (size_t i = 0; i < ns->n_members && !first; i++)
		first = cg_tmap_find(m, ns->members[i]->pid, ns->members[i]->tid);
	if (!first) {
		cg_warn(p, "restore: no task of cgroup namespace %lu is in the restored tree",
			(unsigned long)ns->inode);
		return 0;
	}
	if (p->mode != CG_MODE_NONE) {
		ret = move_to_roots(p, ns, first);
		if (ret)
			return ret;
	}
	r = inject(p, first->htid, SYS_unshare, CLONE_NEWCGROUP, 0);
	if (r < 0) {
		cg_err(p, "restore: thread %d cannot make its cgroup namespace: unshare: %s",
		       (int)first->vtid, why(r));
		return (int)r;
	}
	for (size_t i = 0; i < ns->n_members; i++) {
		const struct cg_tmap_ent *e = cg_tmap_find(m, ns->members[i]->pid, ns->members[i]->tid);
		bool leader = first->vpid == first->vtid;
		long fd;

		if (!e || e == first)
			continue;
		/* the pid as the joining task sees it: the tree shares one pid namespace */
		fd = inject(p, e->htid, SYS_pidfd_open, leader ? first->vpid : first->vtid,
			    leader ? 0 : PIDFD_THREAD);
		if (fd < 0) {
			cg_err(p, "restore: thread %d cannot join the cgroup namespace of %d: "
				  "pidfd_open: %s",
			       (int)e->vtid, (int)first->vtid, why(fd));
			return (int)fd;
		}
		r = inject(p, e->htid, SYS_setns, (uint64_t)fd, CLONE_NEWCGROUP);
		inject(p, e->htid, SYS_close, (uint64_t)fd, 0);
		if (r < 0) {
			cg_err(p, "restore: thread %d cannot join the cgroup namespace of %d: setns: %s",
			       (int)e->vtid, (int)first->vtid, why(r));
			return (int)r;
		}
		joined++;
	}
	cg_debug(p, "restore: cgroup namespace made by thread %d, joined by %zu thread(s)",
		 (int)first->vtid, joined);
	return 0;
}

int cg_ns_restore(struct cg_priv *p, const struct cg_tmap *m)
{
	int ret = 0;

	for (size_t i = 0; i < p->nnsrecs && !ret; i++)
		ret = restore_one(p, nsrec(p, i), m);
	if (!ret && p->nnsrecs)
		cg_info(p, "restore: %zu cgroup namespace(s) restored", p->nnsrecs);
	return ret;
}
