/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The SysV IPC objects of a tree that has an ipc namespace of its own:
 * shared memory segments (contents saved once, sparse), message queues
 * (every message, read in place with MSG_COPY) and semaphore sets, plus the
 * namespace's sysctls.  The objects are listed by *_STAT_ANY from inside the
 * namespace: ckpt enters it for the time of the walk and goes back.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include "dump.h"
#include "image.h"
#include "ipc.pb-c.h"
#include "ipc_ns.h"
#include "log.h"
#include "proc.h"

#define SET(m, f, v)              \
	do {                      \
		(m)->has_##f = 1; \
		(m)->f = (v);     \
	} while (0)

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

static int read_u64(const char *name, uint64_t *v)
{
	char buf[128];
	int ret = ipc_sysctl_read(name, buf, sizeof(buf));
	if (ret)
		return ret;
	*v = strtoull(buf, NULL, 10);
	return 0;
}

static int read_sysctls(Ckpt__IpcSysctls *s, uint32_t *sem)
{
	uint64_t v;
	int ret;
#define RD(f, cast)                          \
	do {                                 \
		ret = read_u64(#f, &v);      \
		if (ret)                     \
			return ret;          \
		SET(s, f, (cast)v);          \
	} while (0)
	RD(shmmax, uint64_t);
	RD(shmall, uint64_t);
	RD(shmmni, uint32_t);
	RD(msgmax, uint32_t);
	RD(msgmnb, uint32_t);
	RD(msgmni, uint32_t);
	RD(shm_rmid_forced, uint32_t);
#undef RD
	char buf[128];
	static const char *const next[] = { "shm_next_id", "msg_next_id", "sem_next_id" };
	int32_t ids[3];
	for (int i = 0; i < 3; i++) {
		ret = ipc_sysctl_read(next[i], buf, sizeof(buf));
		if (ret)
			return ret;
		ids[i] = (int32_t)strtol(buf, NULL, 10);
	}
	SET(s, shm_next_id, ids[0]);
	SET(s, msg_next_id, ids[1]);
	SET(s, sem_next_id, ids[2]);
	ret = ipc_sysctl_read("sem", buf, sizeof(buf));
	if (ret)
		return ret;
	if (sscanf(buf, "%u %u %u %u", &sem[0], &sem[1], &sem[2], &sem[3]) != 4) {
		pr_err("ipc", "cannot parse /proc/sys/kernel/sem: %s", buf);
		return -EIO;
	}
	s->sem = sem;
	s->n_sem = 4;
	return 0;
}

static void fill_perm(Ckpt__IpcPerm *p, const struct ipc_perm *k, int id)
{
	SET(p, key, k->__key);
	SET(p, id, id);
	SET(p, uid, k->uid);
	SET(p, gid, k->gid);
	SET(p, cuid, k->cuid);
	SET(p, cgid, k->cgid);
	SET(p, mode, k->mode & 0777);
}

/* Attach read-only, save the data ranges of the segment (SEEK_DATA on its
 * file through map_files), detach. */
static int dump_shm_pages(int id, uint64_t size, struct img_raw *raw, Ckpt__ShmSegment *s)
{
	void *p = shmat(id, NULL, SHM_RDONLY);
	if (p == (void *)-1) {
		pr_err("ipc", "cannot attach SysV shm segment %d to read it: %s", id, strerror(errno));
		return -errno;
	}
	uint64_t start = (uint64_t)(uintptr_t)p, end = start + ((size + 4095) & ~4095ULL);
	struct proc_vmas self = { 0 };
	if (!proc_read_maps(0, &self))
		for (size_t i = 0; i < self.n; i++)
			if (self.v[i].start == start)
				end = self.v[i].end; /* huge pages round further */
	proc_free_vmas(&self);

	char path[96];
	snprintf(path, sizeof(path), "/proc/self/map_files/%llx-%llx", (unsigned long long)start,
		 (unsigned long long)end);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct statfs sfs;
	if (fd >= 0 && !fstatfs(fd, &sfs) && sfs.f_type == HUGETLBFS_MAGIC) {
		/* shmget would need SHM_HUGETLB and its page size again */
		pr_err("ipc", "SysV shm segment %d uses huge pages (SHM_HUGETLB); that is not supported yet",
		       id);
		close(fd);
		shmdt(p);
		return -ENOTSUP;
	}
	uint64_t span = end - start;
	Ckpt__ShmRun *runs = NULL;
	size_t nruns = 0;
	int ret = 0;
	for (off_t off = 0; off < (off_t)span;) {
		off_t d = off, h = span;
		if (fd >= 0) {
			d = lseek(fd, off, SEEK_DATA);
			if (d < 0 && errno == ENXIO)
				break; /* only holes left */
			if (d < 0) {
				d = off; /* no SEEK_DATA here (hugetlbfs): all of it */
				h = span;
			} else {
				/* the hole at the end is at the segment's size: the
				 * rest of its last page counts (it is mapped too) */
				h = lseek(fd, d, SEEK_HOLE);
				h = h < 0 ? (off_t)span : (h + 4095) & ~(off_t)4095;
				if (h > (off_t)span)
					h = span;
			}
		}
		if (d >= (off_t)span)
			break;
		Ckpt__ShmRun *n = realloc(runs, (nruns + 1) * sizeof(*n));
		if (!n) {
			ret = -ENOMEM;
			break;
		}
		runs = n;
		ckpt__shm_run__init(&runs[nruns]);
		SET(&runs[nruns], off, (uint64_t)d);
		SET(&runs[nruns], len, (uint64_t)(h - d));
		SET(&runs[nruns], img_offset, img_raw_offset(raw));
		nruns++;
		ret = img_raw_write(raw, (char *)p + d, h - d);
		if (ret)
			break;
		off = h;
	}
	if (fd >= 0)
		close(fd);
	shmdt(p);
	if (ret) {
		free(runs);
		return ret;
	}
	s->n_runs = nruns;
	s->runs = calloc(nruns ? nruns : 1, sizeof(*s->runs));
	if (!s->runs) {
		free(runs);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nruns; i++)
		s->runs[i] = &runs[i];
	return 0; /* runs[] is freed through s->runs[0] by the caller */
}

static int dump_shms(struct ckpt_img *img, struct img_raw *raw, uint64_t *bytes, size_t *count)
{
	struct shm_info si;
	int max = shmctl(0, SHM_INFO, (struct shmid_ds *)&si);
	if (max < 0) {
		pr_err("ipc", "SHM_INFO: %s", strerror(errno));
		return -errno;
	}
	for (int idx = 0; idx <= max; idx++) {
		struct shmid_ds ds;
		int id = shmctl(idx, SHM_STAT_ANY, &ds);
		if (id < 0) {
			if (errno == EINVAL)
				continue; /* free slot */
			pr_err("ipc", "SHM_STAT_ANY %d: %s", idx, strerror(errno));
			return -errno;
		}
		Ckpt__IpcPerm perm = CKPT__IPC_PERM__INIT;
		Ckpt__ShmSegment s = CKPT__SHM_SEGMENT__INIT;
		Ckpt__IpcRecord rec = CKPT__IPC_RECORD__INIT;
		fill_perm(&perm, &ds.shm_perm, id);
		s.perm = &perm;
		SET(&s, size, ds.shm_segsz);
		if (ds.shm_perm.mode & SHM_LOCKED)
			SET(&s, locked, true);
		if (ds.shm_perm.mode & SHM_DEST)
			SET(&s, removed, true);
		int ret = dump_shm_pages(id, ds.shm_segsz, raw, &s);
		if (ret)
			return ret;
		for (size_t i = 0; i < s.n_runs; i++)
			*bytes += s.runs[i]->len;
		rec.shm = &s;
		ret = img_write_msg(img, &rec.base);
		if (s.n_runs)
			free(s.runs[0]);
		free(s.runs);
		if (ret)
			return ret;
		(*count)++;
	}
	return 0;
}

static int dump_msgs(struct ckpt_img *img, size_t *count)
{
	struct msginfo mi;
	int max = msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);
	if (max < 0) {
		pr_err("ipc", "MSG_INFO: %s", strerror(errno));
		return -errno;
	}
	for (int idx = 0; idx <= max; idx++) {
		struct msqid_ds ds;
		int id = msgctl(idx, MSG_STAT_ANY, &ds);
		if (id < 0) {
			if (errno == EINVAL)
				continue;
			pr_err("ipc", "MSG_STAT_ANY %d: %s", idx, strerror(errno));
			return -errno;
		}
		Ckpt__IpcPerm perm = CKPT__IPC_PERM__INIT;
		Ckpt__MsgQueue q = CKPT__MSG_QUEUE__INIT;
		Ckpt__IpcRecord rec = CKPT__IPC_RECORD__INIT;
		fill_perm(&perm, &ds.msg_perm, id);
		q.perm = &perm;
		SET(&q, qbytes, ds.msg_qbytes);
		/* one message is at most the bytes the queue holds */
		size_t cap = ds.__msg_cbytes + sizeof(long);
		char *buf = malloc(cap);
		Ckpt__IpcMsg *m = calloc(ds.msg_qnum + 1, sizeof(*m));
		Ckpt__IpcMsg **pm = calloc(ds.msg_qnum + 1, sizeof(*pm));
		int ret = 0;
		if (!buf || !m || !pm)
			ret = -ENOMEM;
		for (size_t i = 0; !ret && i < ds.msg_qnum; i++) {
			ssize_t r = msgrcv(id, buf, cap - sizeof(long), (long)i,
					   IPC_NOWAIT | MSG_COPY);
			if (r < 0) {
				ret = -errno;
				pr_err("ipc", "cannot copy message %zu of SysV queue %d: %s%s", i, id,
				       strerror(errno),
				       errno == ENOSYS ? " (the kernel lacks CONFIG_CHECKPOINT_RESTORE)" : "");
				break;
			}
			ckpt__ipc_msg__init(&m[i]);
			SET(&m[i], mtype, *(long *)buf);
			m[i].has_data = 1;
			m[i].data.len = r;
			m[i].data.data = malloc(r ? r : 1);
			if (!m[i].data.data) {
				ret = -ENOMEM;
				break;
			}
			memcpy(m[i].data.data, buf + sizeof(long), r);
			pm[i] = &m[i];
			q.n_msgs = i + 1;
		}
		q.msgs = pm;
		rec.msg = &q;
		if (!ret)
			ret = img_write_msg(img, &rec.base);
		for (size_t i = 0; i < q.n_msgs; i++)
			free(m[i].data.data);
		free(m);
		free(pm);
		free(buf);
		if (ret)
			return ret;
		(*count)++;
	}
	return 0;
}

static int dump_sems(struct ckpt_img *img, size_t *count)
{
	struct seminfo si;
	union semun arg = { .__buf = &si };
	int max = semctl(0, 0, SEM_INFO, arg);
	if (max < 0) {
		pr_err("ipc", "SEM_INFO: %s", strerror(errno));
		return -errno;
	}
	for (int idx = 0; idx <= max; idx++) {
		struct semid_ds ds;
		arg.buf = &ds;
		int id = semctl(idx, 0, SEM_STAT_ANY, arg);
		if (id < 0) {
			if (errno == EINVAL)
				continue;
			pr_err("ipc", "SEM_STAT_ANY %d: %s", idx, strerror(errno));
			return -errno;
		}
		unsigned short *vals = calloc(ds.sem_nsems + 1, sizeof(*vals));
		uint32_t *v32 = calloc(ds.sem_nsems + 1, sizeof(*v32));
		int ret = 0;
		arg.array = vals;
		if (!vals || !v32)
			ret = -ENOMEM;
		else if (semctl(id, 0, GETALL, arg) < 0) {
			ret = -errno;
			pr_err("ipc", "cannot read the values of SysV semaphore set %d: %s", id,
			       strerror(errno));
		}
		if (!ret) {
			Ckpt__IpcPerm perm = CKPT__IPC_PERM__INIT;
			Ckpt__SemSet s = CKPT__SEM_SET__INIT;
			Ckpt__IpcRecord rec = CKPT__IPC_RECORD__INIT;
			fill_perm(&perm, &ds.sem_perm, id);
			s.perm = &perm;
			for (size_t i = 0; i < ds.sem_nsems; i++)
				v32[i] = vals[i];
			s.values = v32;
			s.n_values = ds.sem_nsems;
			if (ds.sem_otime)
				SET(&s, operated, true);
			rec.sem = &s;
			ret = img_write_msg(img, &rec.base);
		}
		free(vals);
		free(v32);
		if (ret)
			return ret;
		(*count)++;
	}
	return 0;
}

static int dump_inside(struct ckpt_img *img, struct img_raw *raw, size_t n[3], uint64_t *bytes)
{
	Ckpt__IpcSysctls sc = CKPT__IPC_SYSCTLS__INIT;
	Ckpt__IpcRecord rec = CKPT__IPC_RECORD__INIT;
	uint32_t sem[4];
	int ret = read_sysctls(&sc, sem);
	if (ret)
		return ret;
	rec.sysctls = &sc;
	ret = img_write_msg(img, &rec.base);
	if (!ret)
		ret = dump_shms(img, raw, bytes, &n[0]);
	if (!ret)
		ret = dump_msgs(img, &n[1]);
	if (!ret)
		ret = dump_sems(img, &n[2]);
	return ret;
}

int dump_ipc_ns(pid_t root)
{
	size_t n[3] = { 0, 0, 0 };
	uint64_t bytes = 0;
	int back, ret;

	struct ckpt_img *img = img_create("ipc.img", "ckpt.IpcRecord");
	struct img_raw *raw = img_raw_create("ipc-pages.img");
	if (!img || !raw) {
		ret = -errno;
		goto out;
	}
	ret = ipc_ns_enter(root, &back);
	if (ret)
		goto out;
	ret = dump_inside(img, raw, n, &bytes);
	int r2 = ipc_ns_leave(back);
	if (!ret)
		ret = r2;
	if (!ret)
		pr_info("ipc", "ipc namespace of PID %d: %zu shm segment(s) (%llu bytes saved), %zu message queue(s), %zu semaphore set(s)",
			root, n[0], (unsigned long long)bytes, n[1], n[2]);
out:
	if (raw) {
		int r = img_raw_close(raw);
		if (!ret)
			ret = r;
	}
	if (img) {
		int r = img_close(img);
		if (!ret)
			ret = r;
	}
	return ret;
}
