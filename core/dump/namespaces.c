/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Namespaces the tree has of its own, compared with ckpt's: uts (host and
 * domain name), ipc (its SysV objects: ipc.c), time (clock offsets); every
 * task must share the root's.  A user namespace of the tree's own is in
 * userns.c, pid namespaces are handled by the tree walk.  Mount, network and
 * cgroup namespaces are saved by the plugin that claims them (CLAIM hook
 * dump_namespace), or the dump is refused; which plugin that is, the core
 * does not know.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include "dump.h"
#include "log.h"
#include "plugin.h"
#include "proc.h"
#include "ptrace.h"

#define SET(m, f, v)              \
	do {                      \
		(m)->has_##f = 1; \
		(m)->f = (v);     \
	} while (0)

static const char *const all_kinds[] = { "uts", "ipc", "time", "user", "mnt", "net", "cgroup" };
#define NKINDS (sizeof(all_kinds) / sizeof(all_kinds[0]))

/* ckpt's own namespaces as they were before the plugins ran: a plugin may
 * move the dumping thread into the tree's (the net plugin does). */
static struct {
	ino_t ino;
	int err;
} home[NKINDS];
static bool home_read;

static int ns_ino(pid_t pid, const char *ns, ino_t *ino)
{
	char path[64];
	struct stat st;
	if (!pid && home_read)
		for (size_t i = 0; i < NKINDS; i++)
			if (!strcmp(all_kinds[i], ns)) {
				*ino = home[i].ino;
				return home[i].err;
			}
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
	if (stat(path, &st))
		return -errno;
	*ino = st.st_ino;
	return 0;
}

void dump_note_home_namespaces(void)
{
	home_read = false;
	for (size_t i = 0; i < NKINDS; i++)
		home[i].err = ns_ino(0, all_kinds[i], &home[i].ino);
	home_read = true;
}

/* Kernel namespace kinds that a plugin saves and recreates (CLAIM hook
 * dump_namespace); uts, ipc and time are the core's, user is userns.c's,
 * pid is the tree walk's. */
static const char *const plugin_kinds[] = { "mnt", "net", "cgroup" };

/* Kinds recreated once for the whole tree: every task must share the root's. */
static const char *const whole_tree_kinds[] = { "mnt", "net" };

static bool in_list(const char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

#define IN(v, s) in_list(v, sizeof(v) / sizeof(v[0]), s)

/* Does pid have a namespace of this kind other than ours? */
static bool ns_own(pid_t pid, const char *ns)
{
	ino_t ours = 0, theirs = 0;
	if (ns_ino(0, ns, &ours) || ns_ino(pid, ns, &theirs))
		return false; /* not on this kernel */
	return ours != theirs;
}

/* -ENOTSUP when t's namespaces differ from the root's. */
int dump_check_namespaces(const struct dtask *root, const struct dtask *t)
{
	const char *const *ns = all_kinds;
	for (size_t i = 0; i < NKINDS; i++) {
		ino_t a, b;
		if (ns_ino(t->pid, ns[i], &a) || ns_ino(root->pid, ns[i], &b))
			continue; /* not on this kernel */
		if (a == b)
			continue;
		if (!strcmp(ns[i], "user")) {
			pr_err("dump", "PID %d is in another user namespace than the tree's root %d; a tree must share one user namespace (user namespaces nested inside the tree are not supported)",
			       t->pid, root->pid);
			return -ENOTSUP;
		}
		if (IN(plugin_kinds, ns[i]) && !IN(whole_tree_kinds, ns[i])) {
			struct plugin *owner = NULL;
			int ret = plugins_dump_namespace(t->pid, ns[i], true, &owner);
			if (!ret)
				continue;
			if (ret != -ENOTSUP)
				return ret;
			pr_err("dump", "PID %d is in another %s namespace than the tree's root %d; no enabled plugin saves it (`ckpt plugins` lists them)",
			       t->pid, ns[i], root->pid);
			return -ENOTSUP;
		}
		pr_err("dump", "PID %d is in another %s namespace than the tree's root %d; namespaces nested inside the tree are not supported yet",
		       t->pid, ns[i], root->pid);
		return -ENOTSUP;
	}
	return 0;
}

static int add_ns_owner(Ckpt__TaskCore *c, const char *kind, const char *plugin)
{
	Ckpt__NsOwner **v = realloc(c->ns_owners, (c->n_ns_owners + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->ns_owners = v;
	Ckpt__NsOwner *o = malloc(sizeof(*o));
	if (!o)
		return -ENOMEM;
	ckpt__ns_owner__init(o);
	o->kind = strdup(kind);
	o->plugin = strdup(plugin);
	c->ns_owners[c->n_ns_owners++] = o;
	if (!o->kind || !o->plugin)
		return -ENOMEM;
	return 0;
}

int dump_namespaces(struct dtask *root, Ckpt__TaskCore *c)
{
	int ret;

	for (size_t i = 0; i < sizeof(plugin_kinds) / sizeof(plugin_kinds[0]); i++) {
		const char *kind = plugin_kinds[i];
		struct plugin *owner = NULL;
		if (!ns_own(root->pid, kind))
			continue;
		ret = plugins_dump_namespace(root->pid, kind, false, &owner);
		if (ret == -ENOTSUP) {
			/* without its plugin the tree would come back in ckpt's own */
			pr_err("dump", "PID %d has a %s namespace of its own; no enabled plugin saves it (run ckpt inside it; `ckpt plugins` lists the plugins)",
			       root->pid, kind);
			return ret;
		}
		if (ret)
			return ret;
		ret = add_ns_owner(c, kind, owner->desc->name);
		if (ret)
			return ret;
	}
	if (ns_own(root->pid, "uts")) {
		struct utsname u;
		long r = inject_do(&root->in[0], "uname", SYS_uname, root->scratch, 0, 0, 0, 0, 0);
		if (r < 0)
			return r;
		ret = task_mem_read(root->pid, root->scratch, &u, sizeof(u));
		if (ret)
			return ret;
		SET(c, own_uts, true);
		c->hostname = strdup(u.nodename);
		c->domainname = strdup(u.domainname);
		if (!c->hostname || !c->domainname)
			return -ENOMEM;
	}
	if (ns_own(root->pid, "ipc"))
		SET(c, own_ipc, true);
	if (ns_own(root->pid, "time")) {
		char path[64], *buf;
		snprintf(path, sizeof(path), "/proc/%d/timens_offsets", root->pid);
		ret = proc_read_file(path, &buf, NULL);
		if (ret)
			return ret;
		SET(c, own_time, true);
		char *save = NULL;
		for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			char clk[32];
			long long sec, nsec;
			if (sscanf(l, "%31s %lld %lld", clk, &sec, &nsec) != 3)
				continue;
			int64_t v = sec * 1000000000LL + nsec;
			if (!strcmp(clk, "monotonic") || !strcmp(clk, "1"))
				SET(c, time_monotonic_ns, v);
			else if (!strcmp(clk, "boottime") || !strcmp(clk, "7"))
				SET(c, time_boottime_ns, v);
		}
		free(buf);
	}
	return 0;
}
