/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A user namespace of the tree's own (a rootless container): its uid and
 * gid maps and setgroups state, recorded on the root.  The restore creates
 * the other namespaces of the tree from inside it, so each of them must be
 * owned by it here too; and since the workers choose PIDs from inside it,
 * the tree's pid namespace must be its own as well.  Credentials of threads
 * in it are read as the threads see them (/proc shows them as we do).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dump.h"
#include "log.h"
#include "proc.h"
#include "ptrace.h"

static int ns_stat(pid_t pid, const char *ns, struct stat *st)
{
	char path[64];
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
	return stat(path, st) ? -errno : 0;
}

bool dump_in_own_userns(pid_t tid)
{
	struct stat a, b;
	if (ns_stat(0, "user", &a) || ns_stat(tid, "user", &b))
		return false;
	return a.st_ino != b.st_ino || a.st_dev != b.st_dev;
}

/* Inode of the user namespace that owns pid's namespace of kind ns. */
static int ns_owner(pid_t pid, const char *ns, struct stat *owner)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int ufd = ioctl(fd, NS_GET_USERNS);
	int ret = ufd < 0 ? -errno : 0;
	close(fd);
	if (ret)
		return ret;
	if (fstat(ufd, owner))
		ret = -errno;
	close(ufd);
	return ret;
}

static int read_map(pid_t pid, const char *file, Ckpt__IdMapRange ***out, size_t *n)
{
	char path[64], *buf;
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	int ret = proc_read_file(path, &buf, NULL);
	if (ret) {
		pr_err("dump", "cannot read %s: %s", path, strerror(-ret));
		return ret;
	}
	char *save = NULL;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		unsigned int first, lower, count;
		if (sscanf(l, "%u %u %u", &first, &lower, &count) != 3)
			continue;
		Ckpt__IdMapRange **na = realloc(*out, (*n + 1) * sizeof(*na));
		if (!na) {
			ret = -ENOMEM;
			break;
		}
		*out = na;
		Ckpt__IdMapRange *r = malloc(sizeof(*r));
		if (!r) {
			ret = -ENOMEM;
			break;
		}
		ckpt__id_map_range__init(r);
		r->has_first = r->has_lower_first = r->has_count = 1;
		r->first = first;
		r->lower_first = lower;
		r->count = count;
		(*out)[(*n)++] = r;
	}
	free(buf);
	return ret;
}

int dump_userns(struct dtask *root, Ckpt__TaskCore *c)
{
	static const char *const owned[] = { "uts", "ipc", "time", "pid" };
	struct stat user, self, mine, owner;
	int ret;

	if (!dump_in_own_userns(root->pid))
		return 0;
	if (ns_stat(root->pid, "user", &user))
		return -ESRCH;
	/* the workers pick PIDs with clone3 set_tid, which needs privilege
	 * over the pid namespace: only one owned by the user namespace works */
	if (ns_stat(0, "pid", &self) || ns_stat(root->pid, "pid", &mine))
		return -ESRCH;
	if (self.st_ino == mine.st_ino) {
		pr_err("dump", "PID %d has a user namespace of its own but shares our pid namespace; ckpt needs the tree in its own pid namespace too (clone it with CLONE_NEWUSER|CLONE_NEWPID, or unshare --user --pid --fork)",
		       root->pid);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
		if (ns_stat(0, owned[i], &self) || ns_stat(root->pid, owned[i], &mine))
			continue; /* not on this kernel */
		if (self.st_ino == mine.st_ino)
			continue; /* shared with us: not the tree's own */
		ret = ns_owner(root->pid, owned[i], &owner);
		if (ret) {
			pr_err("dump", "PID %d: cannot find the owner of its %s namespace: %s", root->pid,
			       owned[i], strerror(-ret));
			return ret;
		}
		if (owner.st_ino != user.st_ino) {
			pr_err("dump", "PID %d: its %s namespace is not owned by its user namespace (created before it); ckpt restores a tree whose namespaces are all created inside its user namespace",
			       root->pid, owned[i]);
			return -ENOTSUP;
		}
	}
	c->has_own_user = 1;
	c->own_user = true;
	ret = read_map(root->pid, "uid_map", &c->uid_map, &c->n_uid_map);
	if (!ret)
		ret = read_map(root->pid, "gid_map", &c->gid_map, &c->n_gid_map);
	if (ret)
		return ret;
	if (!c->n_uid_map || !c->n_gid_map) {
		pr_err("dump", "PID %d: its user namespace has no %s yet; dump it once the maps are written",
		       root->pid, c->n_uid_map ? "gid_map" : "uid_map");
		return -ENOTSUP;
	}
	char path[64], *buf;
	snprintf(path, sizeof(path), "/proc/%d/setgroups", root->pid);
	ret = proc_read_file(path, &buf, NULL);
	if (ret) {
		pr_err("dump", "cannot read %s: %s", path, strerror(-ret));
		return ret;
	}
	c->has_setgroups_deny = 1;
	c->setgroups_deny = !strncmp(buf, "deny", 4);
	free(buf);
	return 0;
}

/* uids, gids and groups of a thread in a user namespace of its own, as it
 * sees them: getresuid/getresgid/getgroups, and setfs[ug]id(-1), which
 * changes nothing and returns the current value. */
int dump_creds_in_userns(pid_t tid, struct inject *in, uint64_t scratch, Ckpt__Creds *cr)
{
	uint32_t ids[3];
	long r = inject_do(in, "getresuid", SYS_getresuid, scratch, scratch + 4, scratch + 8, 0, 0, 0);
	if (r < 0)
		return r;
	int ret = task_mem_read(tid, scratch, ids, sizeof(ids));
	if (ret)
		return ret;
	memcpy(cr->uid, ids, sizeof(ids));
	r = inject_do(in, "setfsuid(-1)", SYS_setfsuid, (uint32_t)-1, 0, 0, 0, 0, 0);
	if (r < 0)
		return r;
	cr->uid[3] = r;
	r = inject_do(in, "getresgid", SYS_getresgid, scratch, scratch + 4, scratch + 8, 0, 0, 0);
	if (r < 0)
		return r;
	ret = task_mem_read(tid, scratch, ids, sizeof(ids));
	if (ret)
		return ret;
	memcpy(cr->gid, ids, sizeof(ids));
	r = inject_do(in, "setfsgid(-1)", SYS_setfsgid, (uint32_t)-1, 0, 0, 0, 0, 0);
	if (r < 0)
		return r;
	cr->gid[3] = r;
	/* the count is the one /proc gave: the scratch page holds 1024 */
	if (cr->n_groups > 1024)
		return -E2BIG;
	r = inject_do(in, "getgroups", SYS_getgroups, cr->n_groups, scratch, 0, 0, 0, 0);
	if (r < 0)
		return r;
	if ((size_t)r != cr->n_groups) {
		pr_err("dump", "thread %d: getgroups says %ld groups, /proc %zu", tid, r, cr->n_groups);
		return -EIO;
	}
	return r ? task_mem_read(tid, scratch, cr->groups, r * sizeof(uint32_t)) : 0;
}
