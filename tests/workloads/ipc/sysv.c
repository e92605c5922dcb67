/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * sysv: a parent and child in an ipc namespace of their own with every
 * kind of SysV object:
 *   - segment A (key 0x5eed, 3 pages + 100 bytes) attached read-write by
 *     both: they talk through it after the restore;
 *   - segment B (16 MiB, two pages written) attached read-only (by both,
 *     the child inherits it); segment C (private key) attached by nobody;
 *     segment D removed (IPC_RMID) while both still have it attached;
 *   - a message queue created as uid 1001, owned by 1002, qbytes lowered,
 *     with five messages of several types and sizes;
 *   - a set of four semaphores with distinct values;
 *   - changed ipc sysctls (shmmni, msgmnb, sem).
 * Objects were created and removed first, so ids are not the first ones.
 * After the restore it checks ids, keys, owners, modes, contents and
 * flags, that the child's writes reach it through A, the messages in
 * order, the semaphore values and the sysctls.
 * "sysv host": no ipc namespace of its own; a private segment attached by
 * parent and child lives on in the host's namespace while the tree is
 * dumped (its id goes to DIR/sysv-host.id); after the restore both use it
 * again and the parent removes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "workload.h"

#define KEY_A 0x5eed
#define KEY_Q 0x7001
#define KEY_S 0x5e11
#define SIZE_A (3 * WL_PAGE + 100)
#define SIZE_B (16UL << 20)
#define SIZE_C (2 * WL_PAGE)
#define SIZE_D (WL_PAGE)
#define QBYTES 8000

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

struct shared {
	_Atomic uint64_t ping, pong;
	uint64_t words[];
};

static const struct {
	long type;
	const char *text;
	size_t len; /* 0: strlen(text); else a pattern of that many bytes */
} msgs[] = {
	{ 3, "alpha", 0 }, { 1, "bravo-longer", 0 }, { 7, NULL, 1000 }, { 1, "", 0 }, { 2, "x", 0 },
};
#define NMSG (sizeof(msgs) / sizeof(msgs[0]))
static const unsigned short semvals[4] = { 0, 5, 32767, 42 }; /* [3]: 41, then a semop */

struct msgbuf_big {
	long type;
	char text[2048];
};

static size_t msg_fill(size_t i, char *buf)
{
	if (msgs[i].text) {
		size_t n = strlen(msgs[i].text);
		memcpy(buf, msgs[i].text, n);
		return n;
	}
	for (size_t k = 0; k < msgs[i].len; k++)
		buf[k] = (char)wl_word(9, k);
	return msgs[i].len;
}

static void set_sysctl(const char *name, const char *val)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
	int fd = open(path, O_WRONLY);
	if (fd < 0 || write(fd, val, strlen(val)) != (ssize_t)strlen(val))
		wl_die("cannot set %s: %s", path, strerror(errno));
	close(fd);
}

static void check_sysctl(const char *name, const char *want)
{
	char path[96], buf[128];
	snprintf(path, sizeof(path), "/proc/sys/kernel/%s", name);
	ssize_t n = wl_read_file(path, buf, sizeof(buf) - 1);
	if (n < 0) {
		wl_fail("cannot read %s", path);
		return;
	}
	buf[n] = 0;
	for (char *p = buf; *p; p++)
		if (*p == '\t')
			*p = ' ';
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
	WL_CHECK(!strcmp(buf, want), "%s is \"%s\", not \"%s\"", name, buf, want);
}

/* The perms of the mapping at addr in /proc/self/maps. */
static void check_map(void *addr, const char *perms)
{
	char buf[65536];
	char want[32];
	ssize_t n = wl_read_file("/proc/self/maps", buf, sizeof(buf) - 1);
	if (n < 0) {
		wl_fail("cannot read maps");
		return;
	}
	buf[n] = 0;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
	for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, want, strlen(want))) {
			char *sp = strchr(l, ' ');
			WL_CHECK(sp && !strncmp(sp + 1, perms, 4), "mapping at %p is not %s: %.60s",
				 addr, perms, l);
			WL_CHECK(strstr(l, "/SYSV") && strstr(l, "/SYSV") < strchr(l, '\n'),
				 "mapping at %p is no SysV shm: %.80s", addr, l);
			return;
		}
	wl_fail("nothing is mapped at %p any more", addr);
}

static void pingpong(struct shared *a)
{
	for (uint64_t v = 1000; v < 1005; v++) {
		atomic_store(&a->ping, v);
		int i;
		for (i = 0; i < 2000 && atomic_load(&a->pong) != v; i++)
			usleep(1000);
		if (atomic_load(&a->pong) != v) {
			wl_fail("the child no longer writes where we read (ping %llu, pong %llu)",
				(unsigned long long)v, (unsigned long long)atomic_load(&a->pong));
			break;
		}
	}
}

static void __attribute__((noreturn)) ponger(struct shared *a)
{
	/* answer every ping through the segment with a pong */
	for (;;) {
		uint64_t p = atomic_load(&a->ping);
		if (p != atomic_load(&a->pong))
			atomic_store(&a->pong, p);
		usleep(1000);
	}
}

static void __attribute__((noreturn)) host_mode(void)
{
	int id = shmget(IPC_PRIVATE, SIZE_A, 0600);
	struct shared *a = id < 0 ? (void *)-1 : shmat(id, NULL, 0);
	if (a == (void *)-1)
		wl_die("shm: %s", strerror(errno));
	char path[4096], buf[32];
	snprintf(path, sizeof(path), "%s/sysv-host.id", wl_dir());
	snprintf(buf, sizeof(buf), "%d\n", id);
	if (wl_write_file(path, buf))
		wl_die("cannot write %s", path);
	size_t na = (SIZE_A - sizeof(*a)) / 8;
	for (size_t i = 0; i < na; i++)
		a->words[i] = wl_word(5, i);
	pid_t child = fork();
	if (child == 0)
		ponger(a);
	wl_ready();
	wl_wait_usr1();
	struct shmid_ds sd;
	WL_CHECK(!shmctl(id, IPC_STAT, &sd) && sd.shm_nattch == 2,
		 "segment %d is gone or not attached twice", id);
	for (size_t i = 0; i < na; i++)
		if (a->words[i] != wl_word(5, i)) {
			wl_fail("word %zu of the segment lost its value", i);
			break;
		}
	pingpong(a);
	check_map(a, "rw-s");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	shmctl(id, IPC_RMID, NULL);
	wl_finish();
}

int main(int argc, char **argv)
{
	wl_init("sysv");
	if (argc > 1 && !strcmp(argv[1], "host"))
		host_mode();
	if (unshare(CLONE_NEWIPC))
		wl_die("unshare(CLONE_NEWIPC): %s", strerror(errno));
	set_sysctl("shmmni", "1234");
	set_sysctl("msgmnb", "12000");
	set_sysctl("sem", "250 32000 64 128");
	/* spend some ids: the objects below do not get the first ones */
	for (int i = 0; i < 3; i++) {
		msgctl(msgget(IPC_PRIVATE, 0600), IPC_RMID, NULL);
		shmctl(shmget(IPC_PRIVATE, 4096, 0600), IPC_RMID, NULL);
		semctl(semget(IPC_PRIVATE, 1, 0600), 0, IPC_RMID);
	}

	int ida = shmget(KEY_A, SIZE_A, IPC_CREAT | 0640);
	int idb = shmget(IPC_PRIVATE, SIZE_B, 0604);
	int idc = shmget(IPC_PRIVATE, SIZE_C, 0600);
	int idd = shmget(IPC_PRIVATE, SIZE_D, 0600);
	if (ida < 0 || idb < 0 || idc < 0 || idd < 0)
		wl_die("shmget: %s", strerror(errno));
	struct shared *a = shmat(ida, NULL, 0);
	char *b = shmat(idb, NULL, 0);
	uint64_t *c = shmat(idc, NULL, 0);
	uint64_t *d = shmat(idd, NULL, 0);
	if (a == (void *)-1 || b == (void *)-1 || c == (void *)-1 || d == (void *)-1)
		wl_die("shmat: %s", strerror(errno));
	size_t na = (SIZE_A - sizeof(*a)) / 8;
	for (size_t i = 0; i < na; i++)
		a->words[i] = wl_word(1, i);
	memset(b + 5 * WL_PAGE, 0xb5, WL_PAGE);
	memset(b + SIZE_B - WL_PAGE, 0x5b, WL_PAGE);
	for (size_t i = 0; i < SIZE_C / 8; i++)
		c[i] = wl_word(3, i);
	for (size_t i = 0; i < SIZE_D / 8; i++)
		d[i] = wl_word(4, i);
	/* B read-only from now on; C detached; D removed but attached */
	shmdt(b);
	b = shmat(idb, NULL, SHM_RDONLY);
	shmdt(c);
	if (b == (void *)-1 || shmctl(idd, IPC_RMID, NULL))
		wl_die("shm setup: %s", strerror(errno));

	/* the queue is created as uid/gid 1001, then given to 1002 */
	if (setegid(1001) || seteuid(1001))
		wl_die("seteuid: %s", strerror(errno));
	int idq = msgget(KEY_Q, IPC_CREAT | 0660);
	if (seteuid(0) || setegid(0) || idq < 0)
		wl_die("msgget: %s", strerror(errno));
	struct msqid_ds qd;
	if (msgctl(idq, IPC_STAT, &qd))
		wl_die("msgctl");
	qd.msg_perm.uid = 1002;
	qd.msg_perm.gid = 1003;
	qd.msg_qbytes = QBYTES;
	if (msgctl(idq, IPC_SET, &qd))
		wl_die("msgctl IPC_SET: %s", strerror(errno));
	for (size_t i = 0; i < NMSG; i++) {
		struct msgbuf_big m = { .type = msgs[i].type };
		size_t n = msg_fill(i, m.text);
		if (msgsnd(idq, &m, n, IPC_NOWAIT))
			wl_die("msgsnd %zu: %s", i, strerror(errno));
	}

	int ids = semget(KEY_S, 4, IPC_CREAT | 0606);
	unsigned short initial[4] = { semvals[0], semvals[1], semvals[2], semvals[3] - 1 };
	union semun arg = { .array = initial };
	if (ids < 0 || semctl(ids, 0, SETALL, arg))
		wl_die("sem: %s", strerror(errno));
	struct sembuf op = { 3, 1, 0 }; /* sem_otime != 0: "set up" */
	if (semop(ids, &op, 1))
		wl_die("semop: %s", strerror(errno));

	pid_t child = fork();
	if (child == 0)
		ponger(a);

	wl_ready();
	wl_wait_usr1();

	/* segments: ids, keys, sizes, flags, contents */
	struct shmid_ds sd;
	WL_CHECK(shmget(KEY_A, 0, 0) == ida, "key %#x no longer gives segment %d", KEY_A, ida);
	if (shmctl(ida, IPC_STAT, &sd))
		wl_fail("segment A %d is gone: %s", ida, strerror(errno));
	else {
		WL_CHECK(sd.shm_segsz == SIZE_A, "segment A has %zu bytes", (size_t)sd.shm_segsz);
		WL_CHECK((sd.shm_perm.mode & 0777) == 0640, "segment A has mode %o", sd.shm_perm.mode);
		WL_CHECK(sd.shm_nattch == 2, "segment A has %lu attachments, not 2",
			 (unsigned long)sd.shm_nattch);
	}
	for (size_t i = 0; i < na; i++)
		if (a->words[i] != wl_word(1, i)) {
			wl_fail("word %zu of segment A lost its value", i);
			break;
		}
	pingpong(a);
	check_map(a, "rw-s");
	check_map(b, "r--s");
	check_map(d, "rw-s");
	if (shmctl(idb, IPC_STAT, &sd))
		wl_fail("segment B %d is gone", idb);
	else
		WL_CHECK(sd.shm_segsz == SIZE_B && (sd.shm_perm.mode & 0777) == 0604 &&
				 sd.shm_nattch == 2,
			 "segment B: %zu bytes, mode %o, %lu attachments", (size_t)sd.shm_segsz,
			 sd.shm_perm.mode, (unsigned long)sd.shm_nattch);
	for (size_t i = 0; i < SIZE_B; i += WL_PAGE) {
		char want = i == 5 * WL_PAGE ? (char)0xb5 : i == SIZE_B - WL_PAGE ? 0x5b : 0;
		if (b[i] != want || b[i + WL_PAGE - 1] != want) {
			wl_fail("page %zu of segment B lost its contents", i / WL_PAGE);
			break;
		}
	}
	c = shmat(idc, NULL, SHM_RDONLY);
	if (c == (void *)-1)
		wl_fail("segment C %d cannot be attached: %s", idc, strerror(errno));
	else {
		for (size_t i = 0; i < SIZE_C / 8; i++)
			if (c[i] != wl_word(3, i)) {
				wl_fail("word %zu of the unattached segment C lost its value", i);
				break;
			}
		shmdt(c);
	}
	if (shmctl(idd, IPC_STAT, &sd))
		wl_fail("removed segment D %d is gone while attached", idd);
	else
		WL_CHECK((sd.shm_perm.mode & SHM_DEST) && sd.shm_perm.__key == IPC_PRIVATE,
			 "segment D is no longer marked removed (mode %o)", sd.shm_perm.mode);
	for (size_t i = 0; i < SIZE_D / 8; i++)
		if (d[i] != wl_word(4, i)) {
			wl_fail("word %zu of the removed segment D lost its value", i);
			break;
		}

	/* the queue: id, owner, creator, size, messages in order */
	WL_CHECK(msgget(KEY_Q, 0) == idq, "key %#x no longer gives queue %d", KEY_Q, idq);
	if (msgctl(idq, IPC_STAT, &qd))
		wl_fail("queue %d is gone", idq);
	else {
		WL_CHECK(qd.msg_perm.uid == 1002 && qd.msg_perm.gid == 1003 &&
				 qd.msg_perm.cuid == 1001 && qd.msg_perm.cgid == 1001,
			 "queue owner %u:%u creator %u:%u", qd.msg_perm.uid, qd.msg_perm.gid,
			 qd.msg_perm.cuid, qd.msg_perm.cgid);
		WL_CHECK((qd.msg_perm.mode & 0777) == 0660, "queue mode %o", qd.msg_perm.mode);
		WL_CHECK(qd.msg_qbytes == QBYTES, "queue holds %lu bytes, not %d",
			 (unsigned long)qd.msg_qbytes, QBYTES);
		WL_CHECK(qd.msg_qnum == NMSG, "queue has %lu messages, not %zu",
			 (unsigned long)qd.msg_qnum, NMSG);
	}
	for (size_t i = 0; i < NMSG; i++) {
		struct msgbuf_big m, want;
		ssize_t r = msgrcv(idq, &m, sizeof(m.text), 0, IPC_NOWAIT);
		size_t n = msg_fill(i, want.text);
		if (r < 0) {
			wl_fail("message %zu is missing: %s", i, strerror(errno));
			break;
		}
		WL_CHECK(m.type == msgs[i].type && (size_t)r == n && !memcmp(m.text, want.text, n),
			 "message %zu is type %ld, %zd bytes; wanted type %ld, %zu bytes", i, m.type, r,
			 msgs[i].type, n);
	}

	/* semaphores */
	unsigned short now[4] = { 9, 9, 9, 9 };
	arg.array = now;
	WL_CHECK(semget(KEY_S, 0, 0) == ids, "key %#x no longer gives semaphore set %d", KEY_S, ids);
	if (semctl(ids, 0, GETALL, arg))
		wl_fail("semaphore set %d is gone", ids);
	else
		for (int i = 0; i < 4; i++)
			WL_CHECK(now[i] == semvals[i], "semaphore %d is %u, not %u", i, now[i],
				 semvals[i]);
	struct semid_ds ssd;
	arg.buf = &ssd;
	if (!semctl(ids, 0, IPC_STAT, arg))
		WL_CHECK((ssd.sem_perm.mode & 0777) == 0606 && ssd.sem_nsems == 4 && ssd.sem_otime,
			 "semaphore set mode %o, %lu semaphores, otime %ld", ssd.sem_perm.mode,
			 (unsigned long)ssd.sem_nsems, (long)ssd.sem_otime);

	check_sysctl("shmmni", "1234");
	check_sysctl("msgmnb", "12000");
	check_sysctl("sem", "250 32000 64 128");
	check_sysctl("msg_next_id", "-1");

	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	wl_finish();
}
