/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Credentials of a restored thread, set by the thread itself through
 * injected syscalls, as its last step before its registers: groups,
 * bounding set, gids, uids, securebits, capabilities, ambient set,
 * no_new_privs.  Root keeps its capabilities across the uid change by
 * SECBIT_NO_SETUID_FIXUP until the saved capabilities are set.
 */
#include <errno.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "inject.h"
#include "log.h"
#include "proc.h"
#include "ptrace.h"
#include "restore.h"

static bool same_creds(const Ckpt__Creds *c, const struct proc_status *now)
{
	if (c->n_uid != 4 || c->n_gid != 4 || c->n_groups != (size_t)now->ngroups)
		return false;
	for (int i = 0; i < 4; i++)
		if (c->uid[i] != now->uid[i] || c->gid[i] != now->gid[i])
			return false;
	for (size_t i = 0; i < c->n_groups; i++)
		if (c->groups[i] != now->groups[i])
			return false;
	return c->cap_inh == now->cap_inh && c->cap_prm == now->cap_prm &&
	       c->cap_eff == now->cap_eff && c->cap_bnd == now->cap_bnd &&
	       c->cap_amb == now->cap_amb && c->no_new_privs == now->no_new_privs;
}

/* With setgroups denied in the user namespace nobody there can change the
 * groups: the thread must have been born with the saved ones. */
static int check_groups(struct rst_task *t, struct inject *in, const Ckpt__Creds *c,
			uint64_t scratch)
{
	uint32_t have[256];
	long r = inject_do(in, "getgroups", SYS_getgroups, 256, scratch, 0, 0, 0, 0);
	if (r < 0)
		return r;
	int ret = r ? task_mem_read(t->hpid, scratch, have, r * sizeof(uint32_t)) : 0;
	if (ret)
		return ret;
	bool same = (size_t)r == c->n_groups;
	for (long i = 0; same && i < r; i++)
		same = have[i] == c->groups[i];
	if (!same) {
		pr_err("restore", "thread %d: its user namespace denies setgroups, so its %zu saved supplementary groups cannot replace the %ld it inherited from ckpt; run ckpt restore with the groups the tree was created with",
		       in->tid, c->n_groups, r);
		return -EPERM;
	}
	return 0;
}

int restore_creds(struct rst_task *t, struct inject *in, const Ckpt__Creds *c)
{
	uint64_t scratch = TRAMP_SCRATCH(t->tramp);
	struct proc_status now;
	long r;
	int ret;

	if (!c)
		return 0;
	/* the thread still has the worker's credentials, which are ours; in a
	 * user namespace of the tree's own, they are those the clone gave (ids
	 * shown as we see them: no shortcut), and its bounding set is full */
	ret = proc_read_status(t->in_userns ? in->tid : 0, &now);
	if (ret)
		return ret;
	if (!t->in_userns && !c->securebits && same_creds(c, &now))
		return 0; /* the worker already has them (ckpt's own, usually) */
	if (c->n_uid != 4 || c->n_gid != 4) {
		pr_err("restore", "thread %d: malformed credentials in the image", in->tid);
		return -EBADMSG;
	}

	if (c->n_groups * sizeof(uint32_t) > TRAMP_SCRATCH_SIZE)
		return -E2BIG;
	if (c->n_groups) {
		ret = task_mem_write(t->hpid, scratch, c->groups, c->n_groups * sizeof(uint32_t));
		if (ret)
			return ret;
	}
	if (t->setgroups_deny) {
		ret = check_groups(t, in, c, scratch);
		if (ret)
			return ret;
	} else {
		r = inject_do(in, "setgroups", SYS_setgroups, c->n_groups, scratch, 0, 0, 0, 0);
		if (r < 0)
			return r;
	}
	for (int cap = 0; cap < 64; cap++) {
		if ((c->cap_bnd >> cap) & 1 || !((now.cap_bnd >> cap) & 1))
			continue;
		r = inject_do(in, "prctl(PR_CAPBSET_DROP)", SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0, 0);
		if (r < 0)
			return r;
	}
	/* keep our capabilities through the uid change */
	r = inject_do(in, "prctl(PR_SET_SECUREBITS)", SYS_prctl, PR_SET_SECUREBITS,
		      SECBIT_NO_SETUID_FIXUP, 0, 0, 0, 0);
	if (r < 0)
		return r;
	r = inject_do(in, "setresgid", SYS_setresgid, c->gid[0], c->gid[1], c->gid[2], 0, 0, 0);
	if (r < 0)
		return r;
	inject_do(in, "setfsgid", SYS_setfsgid, c->gid[3], 0, 0, 0, 0, 0);
	r = inject_do(in, "setresuid", SYS_setresuid, c->uid[0], c->uid[1], c->uid[2], 0, 0, 0);
	if (r < 0)
		return r;
	inject_do(in, "setfsuid", SYS_setfsuid, c->uid[3], 0, 0, 0, 0, 0);
	r = inject_do(in, "prctl(PR_SET_SECUREBITS)", SYS_prctl, PR_SET_SECUREBITS, c->securebits, 0,
		      0, 0, 0);
	if (r < 0)
		return r;

	struct {
		struct __user_cap_header_struct hdr;
		struct __user_cap_data_struct data[2];
	} caps;
	memset(&caps, 0, sizeof(caps));
	caps.hdr.version = _LINUX_CAPABILITY_VERSION_3;
	caps.data[0].effective = c->cap_eff;
	caps.data[1].effective = c->cap_eff >> 32;
	caps.data[0].permitted = c->cap_prm;
	caps.data[1].permitted = c->cap_prm >> 32;
	caps.data[0].inheritable = c->cap_inh;
	caps.data[1].inheritable = c->cap_inh >> 32;
	ret = task_mem_write(t->hpid, scratch, &caps, sizeof(caps));
	if (ret)
		return ret;
	r = inject_do(in, "capset", SYS_capset, scratch, scratch + sizeof(caps.hdr), 0, 0, 0, 0);
	if (r < 0)
		return r;
	for (int cap = 0; cap < 64; cap++) {
		if (!((c->cap_amb >> cap) & 1))
			continue;
		r = inject_do(in, "prctl(PR_CAP_AMBIENT_RAISE)", SYS_prctl, PR_CAP_AMBIENT,
			      PR_CAP_AMBIENT_RAISE, cap, 0, 0, 0);
		if (r < 0)
			return r;
	}
	if (c->no_new_privs) {
		r = inject_do(in, "prctl(PR_SET_NO_NEW_PRIVS)", SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0,
			      0, 0);
		if (r < 0)
			return r;
	}
	return 0;
}
