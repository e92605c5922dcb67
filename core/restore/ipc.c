/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * SysV IPC at restore.  A tree with its own ipc namespace gets its objects
 * back in the new namespace before any task runs: each one with its id
 * (*_next_id), key, creator, owner and mode, segment contents, queued
 * messages in order, semaphore values; then the namespace's sysctls.  The
 * tasks attach their segments again in restore_switch (shmat by injection),
 * and a segment that was removed while attached is removed again once all
 * of them are attached.  A tree in ckpt's ipc namespace attaches the live
 * segments there, which must still be the ones it had.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "image.h"
#include "inject.h"
#include "ipc.pb-c.h"
#include "ipc_ns.h"
#include "log.h"
#include "restore.h"

#define SEMVMX 32767

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

static Ckpt__IpcRecord **recs;
static size_t nrecs;
/* Who may write the namespace's ipc sysctls: the kernel lets only the uid
 * that is root in the user namespace owning it write them (not our root,
 * when that is another user namespace), so we write them as that uid. */
static uid_t sysctl_uid;

static const char *kind_of(const Ckpt__IpcRecord *r)
{
	return r->shm ? "shm segment" : r->msg ? "message queue" : "semaphore set";
}

static const Ckpt__IpcPerm *perm_of(const Ckpt__IpcRecord *r)
{
	return r->shm ? r->shm->perm : r->msg ? r->msg->perm : r->sem ? r->sem->perm : NULL;
}

static const Ckpt__ShmSegment *find_shm(int32_t id)
{
	for (size_t i = 1; i < nrecs; i++)
		if (recs[i]->shm && recs[i]->shm->perm->id == id)
			return recs[i]->shm;
	return NULL;
}

/* Every record well formed: the sysctls first, then objects with their
 * permissions, messages with a type, semaphore values in range. */
static int check_records(void)
{
	if (!nrecs || !recs[0]->sysctls || recs[0]->sysctls->n_sem != 4) {
		pr_err("ipc", "ipc.img does not start with the namespace's sysctls; the image is damaged, dump again");
		return -EBADMSG;
	}
	for (size_t i = 1; i < nrecs; i++) {
		const Ckpt__IpcRecord *r = recs[i];
		const Ckpt__IpcPerm *p = perm_of(r);
		int n = !!r->shm + !!r->msg + !!r->sem;
		if (n != 1 || !p || !p->has_id || p->id < 0 || !p->has_key) {
			pr_err("ipc", "ipc.img: record %zu is not one SysV object with its id and key; the image is damaged, dump again",
			       i);
			return -EBADMSG;
		}
		for (size_t k = 1; k < i; k++)
			if (perm_of(recs[k])->id == p->id && !!recs[k]->shm == !!r->shm &&
			    !!recs[k]->msg == !!r->msg) {
				pr_err("ipc", "ipc.img: SysV %s id %d is listed twice; the image is damaged",
				       kind_of(r), p->id);
				return -EBADMSG;
			}
		if (r->shm && (!r->shm->size || r->shm->size > (1ULL << 46))) {
			pr_err("ipc", "ipc.img: SysV shm segment %d has a bad size %llu", p->id,
			       (unsigned long long)r->shm->size);
			return -EBADMSG;
		}
		if (r->shm)
			for (size_t k = 0; k < r->shm->n_runs; k++) {
				const Ckpt__ShmRun *run = r->shm->runs[k];
				uint64_t span = (r->shm->size + 4095) & ~4095ULL;
				if (run->off > span || run->len > span - run->off) {
					pr_err("ipc", "ipc.img: SysV shm segment %d has contents outside its %llu bytes",
					       p->id, (unsigned long long)r->shm->size);
					return -EBADMSG;
				}
			}
		if (r->msg)
			for (size_t k = 0; k < r->msg->n_msgs; k++)
				if (r->msg->msgs[k]->mtype <= 0) {
					pr_err("ipc", "ipc.img: message %zu of SysV queue %d has type %lld (must be > 0)",
					       k, p->id, (long long)r->msg->msgs[k]->mtype);
					return -EBADMSG;
				}
		if (r->sem) {
			if (!r->sem->n_values) {
				pr_err("ipc", "ipc.img: SysV semaphore set %d has no semaphore", p->id);
				return -EBADMSG;
			}
			for (size_t k = 0; k < r->sem->n_values; k++)
				if (r->sem->values[k] > SEMVMX) {
					pr_err("ipc", "ipc.img: semaphore %zu of SysV set %d has value %u (above %d)",
					       k, p->id, r->sem->values[k], SEMVMX);
					return -EBADMSG;
				}
		}
	}
	return 0;
}

/* The segment a task had attached, still in our ipc namespace. */
static int check_host_segment(const struct rst_task *t, const Ckpt__Vma *v)
{
	struct shmid_ds ds;
	if (shmctl(v->sysv_shmid, IPC_STAT, &ds) < 0) {
		pr_err("ipc", "PID %d had SysV shm segment %d (key %#x) attached at %#llx, and it is gone from this ipc namespace; its contents live only in the segment (the tree had no ipc namespace of its own): recreate it or dump the tree in its own ipc namespace",
		       t->pid, v->sysv_shmid, (unsigned)v->sysv_key, (unsigned long long)v->start);
		return -ENOENT;
	}
	bool removed = ds.shm_perm.mode & SHM_DEST;
	if (ds.shm_segsz != v->sysv_size ||
	    (ds.shm_perm.__key != v->sysv_key && !(removed && !ds.shm_perm.__key))) {
		pr_err("ipc", "PID %d had SysV shm segment %d (key %#x, %llu bytes) attached; segment %d here is another one (key %#x, %llu bytes)",
		       t->pid, v->sysv_shmid, (unsigned)v->sysv_key, (unsigned long long)v->sysv_size,
		       v->sysv_shmid, (unsigned)ds.shm_perm.__key, (unsigned long long)ds.shm_segsz);
		return -ESTALE;
	}
	return 0;
}

int restore_ipc_load(struct rst_tree *tr)
{
	bool own = tr->t[0].core->own_ipc;
	int ret;

	if (own) {
		ret = img_load_all("ipc.img", &ckpt__ipc_record__descriptor,
				   (ProtobufCMessage ***)&recs, &nrecs, true);
		if (ret)
			return ret;
		if (!nrecs) {
			pr_err("ipc", "ipc.img is missing or empty, but the tree has an ipc namespace of its own; the image is incomplete, dump again");
			return -ENOENT;
		}
		ret = check_records();
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < tr->n; i++) {
		const struct rst_task *t = &tr->t[i];
		if (t->zombie)
			continue;
		for (size_t k = 0; k < t->mm->n_vmas; k++) {
			const Ckpt__Vma *v = t->mm->vmas[k];
			if (v->kind != CKPT__VMA_KIND__VMA_SYSV_SHM)
				continue;
			if (!v->has_sysv_shmid || !v->has_sysv_size) {
				pr_err("ipc", "mm-%d.img: SysV shm mapping at %#llx names no segment; the image is damaged",
				       t->pid, (unsigned long long)v->start);
				return -EBADMSG;
			}
			if (!own) {
				ret = check_host_segment(t, v);
				if (ret)
					return ret;
				continue;
			}
			const Ckpt__ShmSegment *s = find_shm(v->sysv_shmid);
			if (!s || s->size != v->sysv_size) {
				pr_err("ipc", "PID %d had SysV shm segment %d (%llu bytes) attached at %#llx, but ipc.img %s; the image is damaged, dump again",
				       t->pid, v->sysv_shmid, (unsigned long long)v->sysv_size,
				       (unsigned long long)v->start,
				       s ? "gives it another size" : "does not hold it");
				return -EBADMSG;
			}
		}
	}
	return 0;
}

void restore_ipc_free(void)
{
	for (size_t i = 0; i < nrecs; i++)
		protobuf_c_message_free_unpacked(&recs[i]->base, NULL);
	free(recs);
	recs = NULL;
	nrecs = 0;
}

static int sysctl_set(const char *name, const char *val)
{
	uid_t euid = geteuid();
	if (sysctl_uid != euid && seteuid(sysctl_uid)) {
		pr_err("ipc", "cannot take uid %u to set %s: %s", sysctl_uid, name, strerror(errno));
		return -errno;
	}
	int ret = ipc_sysctl_write(name, val);
	if (sysctl_uid != euid && seteuid(euid)) {
		pr_err("ipc", "cannot return to uid %u: %s", euid, strerror(errno));
		return -EPERM;
	}
	return ret;
}

/* The uid outside that is root in the user namespace of PID (itself when
 * that is ours or 0 is not mapped there). */
static uid_t ns_root_uid(pid_t pid)
{
	char path[64];
	unsigned long in, out, cnt;
	uid_t uid = geteuid();
	snprintf(path, sizeof(path), "/proc/%d/uid_map", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return uid;
	while (fscanf(f, "%lu %lu %lu", &in, &out, &cnt) == 3) {
		if (in == 0 && cnt > 0) {
			uid = (uid_t)out;
			break;
		}
	}
	fclose(f);
	return uid;
}

static int write_u64(const char *name, uint64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return sysctl_set(name, buf);
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Limits wide enough for every saved object (the saved ones may be lower
 * than what the objects use: they were lowered afterwards). */
static int open_limits(const Ckpt__IpcSysctls *s)
{
	uint64_t shmmax = s->shmmax, shmall = s->shmall, shmmni = s->shmmni;
	uint64_t msgmax = s->msgmax, msgmni = s->msgmni;
	uint64_t semmsl = s->sem[0], semmns = s->sem[1], semmni = s->sem[3];
	uint64_t nshm = 0, nmsg = 0, nsem = 0, pages = 0, sems = 0;
	for (size_t i = 1; i < nrecs; i++) {
		const Ckpt__IpcRecord *r = recs[i];
		if (r->shm) {
			nshm++;
			shmmax = max64(shmmax, r->shm->size);
			pages += (r->shm->size + 4095) / 4096;
		} else if (r->msg) {
			nmsg++;
			for (size_t k = 0; k < r->msg->n_msgs; k++)
				msgmax = max64(msgmax, r->msg->msgs[k]->data.len);
		} else {
			nsem++;
			semmsl = max64(semmsl, r->sem->n_values);
			sems += r->sem->n_values;
		}
	}
	char sem[96];
	snprintf(sem, sizeof(sem), "%llu %llu %u %llu", (unsigned long long)semmsl,
		 (unsigned long long)max64(semmns, sems), s->sem[2],
		 (unsigned long long)max64(semmni, nsem));
	int ret = write_u64("shmmax", shmmax);
	if (!ret)
		ret = write_u64("shmall", max64(shmall, pages));
	if (!ret)
		ret = write_u64("shmmni", max64(shmmni, nshm));
	if (!ret)
		ret = write_u64("msgmax", msgmax);
	if (!ret)
		ret = write_u64("msgmni", max64(msgmni, nmsg));
	if (!ret)
		ret = sysctl_set("sem", sem);
	return ret;
}

static int final_sysctls(const Ckpt__IpcSysctls *s)
{
	char sem[96];
	snprintf(sem, sizeof(sem), "%u %u %u %u", s->sem[0], s->sem[1], s->sem[2], s->sem[3]);
	int ret = write_u64("shmmax", s->shmmax);
	if (!ret)
		ret = write_u64("shmall", s->shmall);
	if (!ret)
		ret = write_u64("shmmni", s->shmmni);
	if (!ret)
		ret = write_u64("msgmax", s->msgmax);
	if (!ret)
		ret = write_u64("msgmnb", s->msgmnb);
	if (!ret)
		ret = write_u64("msgmni", s->msgmni);
	if (!ret)
		ret = sysctl_set("sem", sem);
	if (!ret && s->has_shm_rmid_forced)
		ret = write_u64("shm_rmid_forced", s->shm_rmid_forced);
	/* usually -1 (unset; each creation above put it back to that and -1
	 * cannot be written); a value the tree set itself waits for its next
	 * object */
	static const char *const next[] = { "shm_next_id", "msg_next_id", "sem_next_id" };
	int32_t ids[3] = { s->has_shm_next_id ? s->shm_next_id : -1,
			   s->has_msg_next_id ? s->msg_next_id : -1,
			   s->has_sem_next_id ? s->sem_next_id : -1 };
	for (int i = 0; !ret && i < 3; i++) {
		char buf[16];
		if (ids[i] < 0)
			continue;
		snprintf(buf, sizeof(buf), "%d", ids[i]);
		ret = sysctl_set(next[i], buf);
	}
	return ret;
}

/* Create one object as its creator, with its id; returns the id or -errno. */
static int create_as(const Ckpt__IpcRecord *r, const char *next_id)
{
	const Ckpt__IpcPerm *p = r->shm ? r->shm->perm : r->msg ? r->msg->perm : r->sem->perm;
	char buf[16];
	snprintf(buf, sizeof(buf), "%d", p->id);
	int ret = sysctl_set(next_id, buf);
	if (ret)
		return ret;
	if (r->msg) {
		/* a new queue takes msgmnb as its size: no CAP_SYS_RESOURCE needed */
		ret = write_u64("msgmnb", r->msg->qbytes);
		if (ret)
			return ret;
	}
	uid_t euid = geteuid();
	gid_t egid = getegid();
	int flags = IPC_CREAT | IPC_EXCL | (int)(p->mode & 0777);
	int id = -1, err = 0;
	if (setegid(p->cgid) || seteuid(p->cuid)) {
		err = errno;
	} else {
		if (r->shm)
			id = shmget(p->key, r->shm->size, flags);
		else if (r->msg)
			id = msgget(p->key, flags);
		else
			id = semget(p->key, r->sem->n_values, flags);
		if (id < 0)
			err = errno;
	}
	if (seteuid(euid) || setegid(egid)) {
		pr_err("ipc", "cannot return to uid %d gid %d: %s", euid, egid, strerror(errno));
		return -EPERM;
	}
	if (id < 0) {
		pr_err("ipc", "cannot recreate SysV %s %d (key %#x, creator %u:%u): %s", kind_of(r),
		       p->id, (unsigned)p->key, p->cuid, p->cgid, strerror(err));
		return -err;
	}
	if (id != p->id) {
		pr_err("ipc", "SysV %s %d came back as id %d", kind_of(r), p->id, id);
		return -EEXIST;
	}
	return id;
}

static int fill_shm(const Ckpt__ShmSegment *s, int pages_fd)
{
	int id = s->perm->id;
	if (!s->n_runs)
		return 0;
	char *p = shmat(id, NULL, 0);
	if (p == (void *)-1) {
		pr_err("ipc", "cannot attach SysV shm segment %d to fill it: %s", id, strerror(errno));
		return -errno;
	}
	int ret = 0;
	for (size_t k = 0; k < s->n_runs && !ret; k++) {
		const Ckpt__ShmRun *run = s->runs[k];
		for (uint64_t done = 0; done < run->len;) {
			ssize_t r = pread(pages_fd, p + run->off + done, run->len - done,
					  run->img_offset + done);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				pr_err("ipc", "ipc-pages.img ends before the contents of SysV shm segment %d (offset %llu); the image is damaged",
				       id, (unsigned long long)(run->img_offset + done));
				ret = r < 0 ? -errno : -EBADMSG;
				break;
			}
			done += r;
		}
	}
	shmdt(p);
	return ret;
}

static int fill_msg(const Ckpt__MsgQueue *q)
{
	size_t cap = 0;
	for (size_t k = 0; k < q->n_msgs; k++)
		if (q->msgs[k]->data.len > cap)
			cap = q->msgs[k]->data.len;
	char *buf = malloc(sizeof(long) + cap + 1);
	if (!buf)
		return -ENOMEM;
	int ret = 0;
	for (size_t k = 0; k < q->n_msgs; k++) {
		const Ckpt__IpcMsg *m = q->msgs[k];
		*(long *)buf = m->mtype;
		if (m->data.len)
			memcpy(buf + sizeof(long), m->data.data, m->data.len);
		if (msgsnd(q->perm->id, buf, m->data.len, IPC_NOWAIT)) {
			ret = -errno;
			pr_err("ipc", "cannot queue message %zu (%zu bytes) on SysV queue %d again: %s",
			       k, m->data.len, q->perm->id, strerror(errno));
			break;
		}
	}
	free(buf);
	return ret;
}

static int fill_sem(const Ckpt__SemSet *s)
{
	unsigned short *v = calloc(s->n_values, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t k = 0; k < s->n_values; k++)
		v[k] = s->values[k];
	union semun arg = { .array = v };
	int ret = semctl(s->perm->id, 0, SETALL, arg) < 0 ? -errno : 0;
	if (ret)
		pr_err("ipc", "cannot set the values of SysV semaphore set %d: %s", s->perm->id,
		       strerror(-ret));
	if (!ret && s->has_operated && s->operated) {
		/* programs wait for sem_otime != 0 to know the set is set up:
		 * one semop that leaves the value as it is sets it */
		int d = v[0] ? -1 : 1;
		struct sembuf ops[2] = { { 0, (short)d, IPC_NOWAIT }, { 0, (short)-d, IPC_NOWAIT } };
		if (semop(s->perm->id, ops, 2) < 0) {
			ret = -errno;
			pr_err("ipc", "cannot mark SysV semaphore set %d as operated on: %s",
			       s->perm->id, strerror(errno));
		}
	}
	free(v);
	return ret;
}

/* Owner and mode as saved (the creator is set by create_as). */
static int set_owner(const Ckpt__IpcRecord *r)
{
	const Ckpt__IpcPerm *p = perm_of(r);
	int ret;
	if (r->shm) {
		struct shmid_ds ds;
		ret = shmctl(p->id, IPC_STAT, &ds);
		ds.shm_perm.uid = p->uid;
		ds.shm_perm.gid = p->gid;
		ds.shm_perm.mode = p->mode & 0777;
		if (!ret)
			ret = shmctl(p->id, IPC_SET, &ds);
		if (!ret && r->shm->locked)
			ret = shmctl(p->id, SHM_LOCK, NULL);
	} else if (r->msg) {
		struct msqid_ds ds;
		ret = msgctl(p->id, IPC_STAT, &ds);
		ds.msg_perm.uid = p->uid;
		ds.msg_perm.gid = p->gid;
		ds.msg_perm.mode = p->mode & 0777;
		if (!ret)
			ret = msgctl(p->id, IPC_SET, &ds);
	} else {
		struct semid_ds ds;
		union semun arg = { .buf = &ds };
		ret = semctl(p->id, 0, IPC_STAT, arg);
		ds.sem_perm.uid = p->uid;
		ds.sem_perm.gid = p->gid;
		ds.sem_perm.mode = p->mode & 0777;
		if (!ret)
			ret = semctl(p->id, 0, IPC_SET, arg);
	}
	if (ret < 0) {
		pr_err("ipc", "cannot give SysV %s %d its owner %u:%u and mode %o: %s", kind_of(r),
		       p->id, p->uid, p->gid, p->mode & 0777, strerror(errno));
		return -errno;
	}
	return 0;
}

static int create_inside(void)
{
	const Ckpt__IpcSysctls *s = recs[0]->sysctls;
	int pages_fd = -1;
	int ret = open_limits(s);
	for (size_t i = 1; !ret && i < nrecs; i++) {
		const Ckpt__IpcRecord *r = recs[i];
		int id = create_as(r, r->shm ? "shm_next_id" : r->msg ? "msg_next_id" : "sem_next_id");
		if (id < 0) {
			ret = id;
			break;
		}
		if (r->shm && r->shm->n_runs && pages_fd < 0) {
			pages_fd = img_raw_open("ipc-pages.img");
			if (pages_fd < 0) {
				ret = pages_fd;
				break;
			}
		}
		if (r->shm)
			ret = fill_shm(r->shm, pages_fd);
		else if (r->msg)
			ret = fill_msg(r->msg);
		else
			ret = fill_sem(r->sem);
		if (!ret)
			ret = set_owner(r);
	}
	if (pages_fd >= 0)
		close(pages_fd);
	if (!ret)
		ret = final_sysctls(s);
	return ret;
}

int restore_ipc_create(struct rst_tree *tr)
{
	if (!nrecs)
		return 0;
	int back, ret = ipc_ns_enter(tr->t[0].hpid, &back);
	if (ret)
		return ret;
	sysctl_uid = ns_root_uid(tr->t[0].hpid);
	ret = create_inside();
	int r2 = ipc_ns_leave(back);
	if (!ret)
		ret = r2;
	if (!ret)
		pr_info("ipc", "%zu SysV object(s) recreated in the ipc namespace of PID %d", nrecs - 1,
			tr->t[0].pid);
	return ret;
}

int restore_ipc_finish(struct rst_tree *tr)
{
	bool any = false;
	for (size_t i = 1; i < nrecs; i++)
		any |= recs[i]->shm && recs[i]->shm->removed;
	if (!any)
		return 0;
	int back, ret = ipc_ns_enter(tr->t[0].hpid, &back);
	if (ret)
		return ret;
	for (size_t i = 1; !ret && i < nrecs; i++) {
		const Ckpt__ShmSegment *s = recs[i]->shm;
		if (s && s->removed && shmctl(s->perm->id, IPC_RMID, NULL) < 0) {
			ret = -errno;
			pr_err("ipc", "cannot remove SysV shm segment %d again: %s", s->perm->id,
			       strerror(errno));
		}
	}
	int r2 = ipc_ns_leave(back);
	return ret ? ret : r2;
}

/* The task attaches its segment again (in its own ipc namespace, where the
 * segment now has the saved id) at the saved address, read-only or with
 * exec as it was; then the protection it had set since. */
int restore_sysv_attach(struct rst_task *t, struct inject *in, const Ckpt__Vma *v)
{
	long flags = 0, prot = PROT_READ | PROT_WRITE;
	if (!(v->prot & PROT_WRITE)) {
		flags |= SHM_RDONLY;
		prot = PROT_READ;
	}
	if (v->prot & PROT_EXEC) {
		flags |= SHM_EXEC;
		prot |= PROT_EXEC;
	}
	long r = inject_do(in, "shmat", SYS_shmat, v->sysv_shmid, v->start, flags, 0, 0, 0);
	if (r < 0 || (uint64_t)r != v->start) {
		pr_err("ipc", "PID %d: cannot attach SysV shm segment %d at %#llx again: %s", t->pid,
		       v->sysv_shmid, (unsigned long long)v->start,
		       r < 0 ? strerror(-r) : "attached elsewhere");
		return r < 0 ? (int)r : -EFAULT;
	}
	if (prot != (long)v->prot) {
		r = inject_do(in, "mprotect", SYS_mprotect, v->start, v->end - v->start, v->prot, 0, 0,
			      0);
		if (r < 0)
			return (int)r;
	}
	return 0;
}
