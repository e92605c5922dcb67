/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Namespaces the tree has of its own, compared with ckpt's: uts (host and
 * domain name), ipc (its SysV objects: ipc.c), time
 * (clock offsets).  Every task must share the root's; a user namespace of
 * the tree's own is in userns.c.  Pid namespaces are handled by the tree walk;
 * a mount namespace is saved by the plugin that claims it (the fs plugin),
 * or the dump is refused; network and cgroup namespaces are left to the
 * net and cgroup plugins when those are enabled.
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

static int ns_ino(pid_t pid, const char *ns, ino_t *ino)
{
	char path[64];
	struct stat st;
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
	if (stat(path, &st))
		return -errno;
	*ino = st.st_ino;
	return 0;
}

/* Namespace kinds a plugin saves and recreates itself. */
static const struct {
	const char *ns, *plugin;
} ns_owners[] = {
	{ "cgroup", "cgroup" },
};

/* The plugin that owns namespace kind ns, or NULL.  *enabled: it is loaded. */
static const char *ns_owner(const char *ns, bool *enabled)
{
	for (size_t i = 0; i < sizeof(ns_owners) / sizeof(ns_owners[0]); i++) {
		if (strcmp(ns_owners[i].ns, ns))
			continue;
		struct plugin *p = plugin_find(ns_owners[i].plugin);
		*enabled = p && p->initialized;
		return ns_owners[i].plugin;
	}
	*enabled = false;
	return NULL;
}

/* -ENOTSUP with the error when pid's own namespace of kind ns is not saved;
 * 0 when its plugin takes it. */
static int ns_refuse(pid_t pid, const char *ns)
{
	bool enabled;
	const char *owner = ns_owner(ns, &enabled);
	if (owner && enabled)
		return 0;
	if (owner)
		pr_err("dump", "PID %d has a %s namespace of its own; enable the %s plugin (--plugins=...,%s) to save it",
		       pid, ns, owner, owner);
	else
		pr_err("dump", "PID %d has a %s namespace of its own; that is not supported yet (run ckpt inside it)",
		       pid, ns);
	return -ENOTSUP;
}

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
	static const char *const ns[] = { "uts", "ipc", "time", "user", "mnt", "net", "cgroup" };
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		ino_t a, b;
		if (ns_ino(t->pid, ns[i], &a) || ns_ino(root->pid, ns[i], &b))
			continue; /* not on this kernel */
		if (a != b && !strcmp(ns[i], "user")) {
			pr_err("dump", "PID %d is in another user namespace than the tree's root %d; a tree must share one user namespace (user namespaces nested inside the tree are not supported)",
			       t->pid, root->pid);
			return -ENOTSUP;
		}
		if (a != b) {
			bool enabled;
			const char *owner = ns_owner(ns[i], &enabled);
			if (owner && enabled)
				continue;
			if (owner)
				pr_err("dump", "PID %d is in another %s namespace than the tree's root %d; enable the %s plugin (--plugins=...,%s) to save it",
				       t->pid, ns[i], root->pid, owner, owner);
			else
				pr_err("dump", "PID %d is in another %s namespace than the tree's root %d; namespaces nested inside the tree are not supported yet",
				       t->pid, ns[i], root->pid);
			return -ENOTSUP;
		}
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

	static const char *const refused[] = { "mnt", "cgroup" };
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (!ns_own(root->pid, refused[i]))
			continue;
		if (strcmp(refused[i], "mnt")) {
			if (ns_refuse(root->pid, refused[i]))
				return -ENOTSUP;
			continue;
		}
		struct plugin *owner = NULL;
		ret = plugins_dump_namespace(root->pid, refused[i], &owner);
		if (ret == -ENOTSUP) {
			pr_err("dump", "PID %d has a %s namespace of its own; no enabled plugin can save it (run ckpt inside it, or enable the fs plugin)",
			       root->pid, refused[i]);
			return ret;
		}
		if (ret)
			return ret;
		ret = add_ns_owner(c, refused[i], owner->desc->name);
		if (ret)
			return ret;
	}
	/* the net plugin saves and recreates it; without it the tree would
	 * silently come back in ckpt's own */
	if (ns_own(root->pid, "net") && !plugin_find("net")) {
		pr_err("dump", "PID %d has a network namespace of its own; enable the net plugin to dump it",
		       root->pid);
		return -ENOTSUP;
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
