/* SPDX-License-Identifier: GPL-2.0-only */
/* The address space: VMAs from smaps, pages to save from PAGEMAP_SCAN,
 * contents by process_vm_readv into pages-PID.img. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dump.h"
#include "image.h"
#include "log.h"
#include "pagecodec.h"
#include "pagemap.pb-c.h"
#include "pagescan.h"
#include "plugin.h"
#include "proc.h"
#include "progress.h"
#include "ptrace.h"
#include "track.h"

#define SET(m, f, v)              \
	do {                      \
		(m)->has_##f = 1; \
		(m)->f = (v);     \
	} while (0)

#define MADV_BIT_DONTDUMP 1
#define MADV_BIT_HUGEPAGE 2
#define MADV_BIT_NOHUGEPAGE 4
#define MADV_BIT_DONTFORK 8
#define MADV_BIT_WIPEONFORK 16

/* Stream buffer between process_vm_readv and the image. */
#define COPY_CHUNK (8u << 20)

/* Shared anonymous objects seen so far in this dump, with the range of
 * their pages already saved: the pages are saved once, by the first task
 * that maps them, and restored into one object every task maps again. */
struct shmem_seen {
	uint64_t id, lo, hi;
};
static struct shmem_seen *shmem;
static size_t nshmem;

static int shmem_vma(pid_t pid, const struct proc_vma *v, Ckpt__Vma *m)
{
	char path[96];
	struct stat st;
	uint64_t lo = v->pgoff, hi = v->pgoff + (v->end - v->start);

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)v->start, (unsigned long long)v->end);
	if (stat(path, &st)) {
		pr_err("mem", "PID %d: cannot stat shared memory at %#llx: %s", pid,
		       (unsigned long long)v->start, strerror(errno));
		return -errno;
	}
	SET(m, shmem_id, v->ino);
	SET(m, shmem_size, st.st_size > (off_t)hi ? (uint64_t)st.st_size : hi);
	for (size_t i = 0; i < nshmem; i++) {
		if (shmem[i].id != v->ino)
			continue;
		if (lo >= shmem[i].lo && hi <= shmem[i].hi)
			return 1; /* saved with an earlier task */
		if (lo < shmem[i].lo)
			shmem[i].lo = lo;
		if (hi > shmem[i].hi)
			shmem[i].hi = hi;
		return 0;
	}
	struct shmem_seen *n = realloc(shmem, (nshmem + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	shmem = n;
	shmem[nshmem++] = (struct shmem_seen){ v->ino, lo, hi };
	return 0;
}

/* The pages of a shared object are those it holds, whether or not this
 * task has touched them (another sharer may have written them): the data
 * ranges of the object itself, by SEEK_DATA/SEEK_HOLE. */
static int shmem_runs(pid_t pid, const struct proc_vma *v, struct page_runs *runs)
{
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)v->start, (unsigned long long)v->end);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_err("mem", "PID %d: cannot open shared memory at %#llx: %s", pid,
		       (unsigned long long)v->start, strerror(errno));
		return -errno;
	}
	off_t lo = v->pgoff, hi = v->pgoff + (v->end - v->start);
	int ret = 0;
	for (off_t off = lo; off < hi;) {
		off_t d = lseek(fd, off, SEEK_DATA);
		if (d < 0 || d >= hi)
			break;
		off_t h = lseek(fd, d, SEEK_HOLE);
		if (h < 0 || h > hi)
			h = hi;
		ret = page_runs_add(runs, v->start + (d - lo), v->start + (h - lo));
		if (ret)
			break;
		off = h;
	}
	close(fd);
	return ret;
}

/* A SysV shm attachment: its segment (the inode number of the mapped file
 * is the shm id) is saved once with the ipc namespace, or found again in
 * the host's at restore; the task keeps no pages of its own here. */
static int sysv_shm_vma(pid_t pid, const struct proc_vma *v, Ckpt__Vma *m)
{
	char path[96];
	struct stat st;
	unsigned int key = 0;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)v->start, (unsigned long long)v->end);
	if (stat(path, &st)) {
		pr_err("mem", "PID %d: cannot stat SysV shm at %#llx: %s", pid,
		       (unsigned long long)v->start, strerror(errno));
		return -errno;
	}
	sscanf(v->name, "/SYSV%8x", &key);
	if (v->pgoff || v->end - v->start < (uint64_t)st.st_size) {
		pr_err("mem", "PID %d: SysV shm segment %llu (key %#x) is attached only in part at %#llx-%#llx (munmap or mremap after shmat); that cannot be restored",
		       pid, (unsigned long long)v->ino, key, (unsigned long long)v->start,
		       (unsigned long long)v->end);
		return -ENOTSUP;
	}
	m->kind = CKPT__VMA_KIND__VMA_SYSV_SHM;
	m->flags = MAP_SHARED;
	SET(m, sysv_shmid, (int32_t)v->ino);
	SET(m, sysv_key, (int32_t)key);
	SET(m, sysv_size, st.st_size);
	return 1;
}

/* Ask the plugins for the file behind a mapping; -ENOTSUP when none
 * claims it.  Returns like classify(). */
static int plugin_vma(pid_t pid, const struct proc_vma *v, Ckpt__Vma *m, enum pagescan_mode *mode)
{
	char path[96];
	struct ckpt_vma_info info;
	struct plugin *owner = NULL;
	const char *klass = NULL;
	uint32_t obj_id = 0;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)v->start, (unsigned long long)v->end);
	memset(&info, 0, sizeof(info));
	info.local_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (info.local_fd < 0)
		return -ENOTSUP;
	fstat(info.local_fd, &info.st);
	info.pid = pid;
	info.start = v->start;
	info.end = v->end;
	info.pgoff = v->pgoff;
	info.prot = v->prot;
	info.shared = v->shared;
	info.path = v->name;
	int ret = plugins_dump_vma(&info, &owner, &klass, &obj_id);
	close(info.local_fd);
	if (ret)
		return ret;
	m->kind = v->shared ? CKPT__VMA_KIND__VMA_FILE_SHARED : CKPT__VMA_KIND__VMA_FILE_PRIVATE;
	m->plugin = (char *)owner->desc->name;
	m->klass = (char *)klass;
	SET(m, obj_id, obj_id);
	if (v->shared)
		return 1; /* the plugin saved the contents */
	*mode = SCAN_PRIVATE_COW;
	return 0;
}

static int classify(pid_t pid, const struct proc_vma *v, Ckpt__Vma *m, enum pagescan_mode *mode)
{
	const char *name = v->name;
	bool file = v->ino != 0 || (name && name[0] == '/');

	m->has_kind = 1;
	SET(m, flags, v->shared ? MAP_SHARED : MAP_PRIVATE);
	if (name && !strcmp(name, "[vdso]")) {
		m->kind = CKPT__VMA_KIND__VMA_VDSO;
		return 1;
	}
	if (name && !strcmp(name, "[vvar]")) {
		m->kind = CKPT__VMA_KIND__VMA_VVAR;
		return 1;
	}
	if (name && !strcmp(name, "[vvar_vclock]")) {
		m->kind = CKPT__VMA_KIND__VMA_VVAR_VCLOCK;
		return 1;
	}
	if (name && !strcmp(name, "[vsyscall]")) {
		m->kind = CKPT__VMA_KIND__VMA_VSYSCALL;
		return 1;
	}
	if (vma_has_flag(v, "io") || vma_has_flag(v, "pf")) {
		pr_err("mem", "PID %d: mapping %#llx-%#llx (%s) is device memory; no plugin handles it",
		       pid, (unsigned long long)v->start, (unsigned long long)v->end,
		       name ? name : "anon");
		return -ENOTSUP;
	}
	if (name && !strncmp(name, "/SYSV", 5) && v->shared)
		return sysv_shm_vma(pid, v, m);
	bool zero = name && !strncmp(name, "/dev/zero", 9); /* shared anonymous memory */
	if (track_is_predump() && name && !zero &&
	    (strstr(name, " (deleted)") || !strncmp(name, "/memfd:", 7) || !strncmp(name, "/SYSV", 5))) {
		/* only a plugin could save it: left to the dump */
		m->kind = v->shared ? CKPT__VMA_KIND__VMA_FILE_SHARED : CKPT__VMA_KIND__VMA_FILE_PRIVATE;
		return 1;
	}
	if (name && !zero && (strstr(name, " (deleted)") || !strncmp(name, "/memfd:", 7))) {
		/* a file we cannot reopen by path: a plugin may own it */
		int ret = plugin_vma(pid, v, m, mode);
		if (ret != -ENOTSUP)
			return ret;
	}
	if (name && !zero && (strstr(name, " (deleted)") || !strncmp(name, "/memfd:", 7))) {
		pr_err("mem", "PID %d: mapping %#llx-%#llx of %s: deleted files and memfd are not supported yet",
		       pid, (unsigned long long)v->start, (unsigned long long)v->end, name);
		return -ENOTSUP;
	}
	if (!file || zero) {
		m->kind = CKPT__VMA_KIND__VMA_ANON;
		m->flags |= MAP_ANONYMOUS;
		*mode = v->shared ? SCAN_SHARED : SCAN_ANON;
		if (v->shared)
			return shmem_vma(pid, v, m);
		return 0;
	}
	struct stat st;
	if (stat(name, &st)) {
		pr_err("mem", "PID %d: mapped file %s is not reachable: %s", pid, name, strerror(errno));
		return -errno;
	}
	SET(m, file_size, st.st_size);
	SET(m, file_mtime_ns, st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec);
	if (v->shared) {
		m->kind = CKPT__VMA_KIND__VMA_FILE_SHARED;
		return 1; /* the file holds the contents */
	}
	m->kind = CKPT__VMA_KIND__VMA_FILE_PRIVATE;
	*mode = SCAN_PRIVATE_COW;
	return 0;
}

/*
 * Pages stream through a few buffers: the dumper queues the ranges of one
 * buffer, and two copy threads each read a queued buffer out of the task
 * with process_vm_readv and append it to the image (and its checksum) in
 * queue order.  Reading the task is the slow half (GUP of every remote
 * page), so both cores read; only the appends take turns.
 */
#define PW_SLOTS 3
#define PW_WORKERS 2

enum { SLOT_FREE, SLOT_QUEUED, SLOT_BUSY };

struct pw_slot {
	char *buf;
	struct iovec local[UIO_MAXIOV], remote[UIO_MAXIOV];
	int niov;
	size_t filled;
	uint64_t seq;
	int state;
};

struct page_writer {
	pid_t pid;
	struct img_raw *raw;
	struct pagecodec_writer *codec; /* NULL: pages stored as they are */
	struct ckpt_img *pagemap;
	struct pw_slot slot[PW_SLOTS];
	struct pw_slot *cur;  /* the one the dumper fills */
	uint64_t offset;      /* image offset of cur's first byte */
	uint64_t done, total;
	bool task_runs;       /* pre-dump: the task runs; what it unmapped reads as zeros */

	pthread_t thread[PW_WORKERS];
	int nthreads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t qseq, wseq;  /* next to queue, next to append */
	bool stop;
	int err;
};

/* Read a queued buffer's ranges out of the task. */
static int pw_read(struct page_writer *w, struct pw_slot *s)
{
	ssize_t r = process_vm_readv(w->pid, s->local, s->niov, s->remote, s->niov, 0);
	if (r == (ssize_t)s->filled)
		return 0;
	/* unreadable (PROT_NONE) pages or a partial read: go range by range
	 * through /proc/PID/mem */
	for (int i = 0; i < s->niov; i++) {
		int ret = task_mem_read(w->pid, (uint64_t)(uintptr_t)s->remote[i].iov_base,
					s->local[i].iov_base, s->local[i].iov_len);
		if (ret && w->task_runs) {
			/* gone since the scan: the next dump cannot take it
			 * from here (its mapping is not the tracked one) */
			memset(s->local[i].iov_base, 0, s->local[i].iov_len);
			continue;
		}
		if (ret) {
			pr_err("mem", "PID %d: cannot read memory at %p: %s", w->pid,
			       s->remote[i].iov_base, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void *pw_worker(void *arg)
{
	struct page_writer *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct pw_slot *s = NULL;
		for (int i = 0; i < PW_SLOTS; i++)
			if (w->slot[i].state == SLOT_QUEUED && (!s || w->slot[i].seq < s->seq))
				s = &w->slot[i];
		if (!s) {
			if (w->stop)
				break;
			pthread_cond_wait(&w->cv, &w->mu);
			continue;
		}
		s->state = SLOT_BUSY;
		bool failed = w->err != 0;
		pthread_mutex_unlock(&w->mu);
		int ret = failed ? 0 : pw_read(w, s);
		pthread_mutex_lock(&w->mu);
		while (w->wseq != s->seq)
			pthread_cond_wait(&w->cv, &w->mu);
		failed = w->err != 0;
		pthread_mutex_unlock(&w->mu);
		/* appends in queue order: only this thread is here now */
		if (!ret && !failed)
			ret = w->codec ? pagecodec_writer_put(w->codec, s->buf, s->filled) :
					 img_raw_write(w->raw, s->buf, s->filled);
		pthread_mutex_lock(&w->mu);
		if (ret && !w->err)
			w->err = ret;
		w->done += s->filled;
		w->wseq++;
		s->niov = 0;
		s->filled = 0;
		s->state = SLOT_FREE;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Wait until every queued buffer is appended; the first error. */
static int pw_drain(struct page_writer *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->wseq != w->qseq)
		pthread_cond_wait(&w->cv, &w->mu);
	int err = w->err;
	pthread_mutex_unlock(&w->mu);
	return err;
}

/* Queue the filled buffer and take a free one. */
static int pw_flush(struct page_writer *w)
{
	struct pw_slot *s = w->cur;
	if (!s->niov)
		return 0;
	pthread_mutex_lock(&w->mu);
	s->seq = w->qseq++;
	s->state = SLOT_QUEUED;
	pthread_cond_broadcast(&w->cv);
	w->offset += s->filled;
	struct pw_slot *f = NULL;
	while (!w->err) {
		for (int i = 0; i < PW_SLOTS && !f; i++)
			if (w->slot[i].state == SLOT_FREE)
				f = &w->slot[i];
		if (f)
			break;
		pthread_cond_wait(&w->cv, &w->mu);
	}
	int err = w->err ? w->err : dump_interrupted();
	uint64_t done = w->done;
	if (f) {
		f->state = SLOT_BUSY; /* the dumper's, until queued */
		w->cur = f;
	}
	pthread_mutex_unlock(&w->mu);
	progress_bytes(done, w->total);
	return err;
}

static int pw_start(struct page_writer *w)
{
	for (int i = 0; i < PW_SLOTS; i++) {
		w->slot[i].buf = mmap(NULL, COPY_CHUNK, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (w->slot[i].buf == MAP_FAILED) {
			w->slot[i].buf = NULL;
			return -ENOMEM;
		}
		w->slot[i].state = SLOT_FREE;
	}
	w->cur = &w->slot[0];
	w->cur->state = SLOT_BUSY;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	for (int i = 0; i < PW_WORKERS; i++) {
		int ret = pthread_create(&w->thread[i], NULL, pw_worker, w);
		if (ret)
			return -ret;
		w->nthreads++;
	}
	return 0;
}

/* Stop the copy threads (after the last buffer); the first error. */
static int pw_stop(struct page_writer *w)
{
	int ret = 0;
	if (w->nthreads) {
		ret = pw_drain(w);
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		for (int i = 0; i < w->nthreads; i++)
			pthread_join(w->thread[i], NULL);
		w->nthreads = 0;
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
	}
	for (int i = 0; i < PW_SLOTS; i++)
		if (w->slot[i].buf)
			munmap(w->slot[i].buf, COPY_CHUNK);
	return ret;
}

/* A run the parent chain holds: a record, no bytes. */
static int pw_add_parent_run(struct page_writer *w, uint64_t start, uint64_t end)
{
	Ckpt__PagemapEntry pe = CKPT__PAGEMAP_ENTRY__INIT;
	SET(&pe, vaddr, start);
	SET(&pe, nr_pages, (end - start) / 4096);
	SET(&pe, in_parent, true);
	return img_write_msg(w->pagemap, &pe.base);
}

static int pw_add_run(struct page_writer *w, uint64_t start, uint64_t end)
{
	Ckpt__PagemapEntry pe = CKPT__PAGEMAP_ENTRY__INIT;
	SET(&pe, vaddr, start);
	SET(&pe, nr_pages, (end - start) / 4096);
	SET(&pe, offset, w->offset + w->cur->filled);
	int ret = img_write_msg(w->pagemap, &pe.base);
	if (ret)
		return ret;
	while (start < end) {
		struct pw_slot *s = w->cur;
		if (s->filled == COPY_CHUNK || s->niov == UIO_MAXIOV) {
			ret = pw_flush(w);
			if (ret)
				return ret;
			s = w->cur;
		}
		size_t n = end - start;
		if (n > COPY_CHUNK - s->filled)
			n = COPY_CHUNK - s->filled;
		s->local[s->niov].iov_base = s->buf + s->filled;
		s->local[s->niov].iov_len = n;
		s->remote[s->niov].iov_base = (void *)(uintptr_t)start;
		s->remote[s->niov].iov_len = n;
		s->niov++;
		s->filled += n;
		start += n;
	}
	return 0;
}

static int read_auxv(pid_t pid, Ckpt__Mm *mm)
{
	char path[64], *buf;
	size_t len;
	snprintf(path, sizeof(path), "/proc/%d/auxv", pid);
	int ret = proc_read_file(path, &buf, &len);
	if (ret)
		return ret;
	mm->n_auxv = len / 8;
	mm->auxv = malloc(len + 8);
	if (!mm->auxv) {
		free(buf);
		return -ENOMEM;
	}
	memcpy(mm->auxv, buf, len);
	free(buf);
	return 0;
}

/* A pre-dump's page runs, to copy after the tree was released. */
struct deferred {
	pid_t pid, vpid;
	size_t n;
	struct page_runs *runs, *pruns;
	uint64_t total, nshared;
	struct cow_task cow;
};
static struct deferred *deferred;
static size_t ndeferred;

static int write_pages(pid_t pid, pid_t vpid, size_t nvmas, struct page_runs *runs,
		       struct page_runs *pruns, uint64_t total, struct cow_task *cow,
		       uint64_t nshared, bool task_runs);

int dump_task_memory(pid_t pid, pid_t vpid, uint64_t brk)
{
	struct proc_vmas vmas = { 0 };
	struct proc_stat st;
	struct page_runs *runs = NULL, *pruns = NULL;
	Ckpt__Mm mm = CKPT__MM__INIT;
	struct cow_task cow = { 0 };
	char path[64], name[64];
	int pagemap_fd = -1, ret;

	ret = proc_read_stat(pid, &st);
	if (ret)
		return ret;
	ret = proc_read_vmas(pid, &vmas);
	if (ret) {
		pr_err("mem", "PID %d: cannot read its mappings: %s", pid, strerror(-ret));
		return ret;
	}
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0) {
		ret = -errno;
		pr_err("mem", "PID %d: cannot open %s: %s", pid, path, strerror(errno));
		goto out;
	}

	SET(&mm, start_code, st.start_code);
	SET(&mm, end_code, st.end_code);
	SET(&mm, start_data, st.start_data);
	SET(&mm, end_data, st.end_data);
	SET(&mm, start_brk, st.start_brk);
	SET(&mm, brk, brk);
	SET(&mm, start_stack, st.start_stack);
	SET(&mm, arg_start, st.arg_start);
	SET(&mm, arg_end, st.arg_end);
	SET(&mm, env_start, st.env_start);
	SET(&mm, env_end, st.env_end);
	ret = read_auxv(pid, &mm);
	if (ret)
		goto out;
	char exe[PATH_MAX];
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	ret = proc_readlink(path, exe, sizeof(exe));
	if (ret) {
		pr_err("mem", "PID %d: cannot read its exe link: %s", pid, strerror(-ret));
		goto out;
	}
	if (strstr(exe, " (deleted)")) {
		pr_err("mem", "PID %d: its executable %s was deleted; cannot restore it", pid, exe);
		ret = -ENOENT;
		goto out;
	}
	struct stat est;
	if (stat(exe, &est)) {
		ret = -errno;
		pr_err("mem", "PID %d: executable %s: %s", pid, exe, strerror(errno));
		goto out;
	}
	mm.exe = exe;
	SET(&mm, exe_size, est.st_size);
	SET(&mm, exe_mtime_ns, est.st_mtim.tv_sec * 1000000000LL + est.st_mtim.tv_nsec);

	mm.vmas = calloc(vmas.n, sizeof(*mm.vmas));
	Ckpt__Vma *vm = calloc(vmas.n, sizeof(*vm));
	runs = calloc(vmas.n, sizeof(*runs));
	pruns = calloc(vmas.n, sizeof(*pruns));
	if (!mm.vmas || !vm || !runs || !pruns) {
		free(vm);
		ret = -ENOMEM;
		goto out;
	}
	uint64_t total = 0, nshared = 0;
	for (size_t i = 0; i < vmas.n; i++) {
		struct proc_vma *v = &vmas.v[i];
		Ckpt__Vma *m = &vm[i];
		enum pagescan_mode mode = SCAN_ANON;

		ckpt__vma__init(m);
		SET(m, start, v->start);
		SET(m, end, v->end);
		SET(m, prot, v->prot);
		SET(m, pgoff, v->pgoff);
		m->path = v->name;
		uint32_t madv = 0;
		if (vma_has_flag(v, "dd"))
			madv |= MADV_BIT_DONTDUMP;
		if (vma_has_flag(v, "hg"))
			madv |= MADV_BIT_HUGEPAGE;
		if (vma_has_flag(v, "nh"))
			madv |= MADV_BIT_NOHUGEPAGE;
		if (vma_has_flag(v, "dc"))
			madv |= MADV_BIT_DONTFORK;
		if (vma_has_flag(v, "wf"))
			madv |= MADV_BIT_WIPEONFORK;
		SET(m, madv, madv);
		ret = classify(pid, v, m, &mode);
		if (ret < 0)
			goto out_vm;
		if (vma_has_flag(v, "gd"))
			m->flags |= MAP_GROWSDOWN;
		mm.vmas[mm.n_vmas++] = m;
		if (ret == 1)
			continue; /* no pages of ours */
		uint64_t shared = 0;
		if (m->has_shmem_id) {
			ret = shmem_runs(pid, v, &runs[i]);
		} else {
			/* with tracking: only what changed since the parent */
			ret = track_vma_pages(pid, vpid, v, m, mode, pagemap_fd, &runs[i], &pruns[i]);
			if (ret == -ENOTSUP)
				ret = pagescan_range(pagemap_fd, v->start, v->end, mode, &runs[i]);
			/* of what is saved here, what an earlier task saves */
			if (!ret)
				ret = cow_split(pagemap_fd, &runs[i], &cow, &shared);
		}
		if (ret)
			goto out_vm;
		SET(m, has_pages, runs[i].n > 0 || pruns[i].n > 0 || shared);
		nshared += shared;
		for (size_t k = 0; k < runs[i].n; k++)
			total += runs[i].r[k].end - runs[i].r[k].start;
	}

	snprintf(name, sizeof(name), "mm-%d.img", vpid);
	ret = img_write_one(name, &mm.base);
	if (ret)
		goto out_vm;

	if (track_is_predump()) {
		/* copied once the tree runs again (dump_memory_deferred) */
		struct deferred *nd = realloc(deferred, (ndeferred + 1) * sizeof(*nd));
		if (!nd) {
			ret = -ENOMEM;
			goto out_vm;
		}
		deferred = nd;
		deferred[ndeferred++] = (struct deferred){ pid, vpid, vmas.n, runs, pruns, total,
							   nshared, cow };
		memset(&cow, 0, sizeof(cow)); /* the deferred copy owns it now */
		runs = pruns = NULL;
		goto out_vm;
	}
	ret = write_pages(pid, vpid, vmas.n, runs, pruns, total, &cow, nshared, false);
out_vm:
	free(vm);
out:
	cow_task_free(&cow);
	for (size_t i = 0; i < vmas.n; i++) {
		if (runs)
			page_runs_free(&runs[i]);
		if (pruns)
			page_runs_free(&pruns[i]);
	}
	free(runs);
	free(pruns);
	free(mm.vmas);
	free(mm.auxv);
	if (pagemap_fd >= 0)
		close(pagemap_fd);
	proc_free_vmas(&vmas);
	return ret;
}

/* pagemap-PID.img and pages-PID.img from the runs of every mapping. */
static int write_pages(pid_t pid, pid_t vpid, size_t nvmas, struct page_runs *runs,
		       struct page_runs *pruns, uint64_t total, struct cow_task *cow,
		       uint64_t nshared, bool task_runs)
{
	struct page_writer *w;
	char name[64];
	int ret;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->pid = pid;
	w->total = total;
	w->task_runs = task_runs;
	snprintf(name, sizeof(name), "pages-%d.img", vpid);
	w->raw = img_raw_create(name);
	snprintf(name, sizeof(name), "pagemap-%d.img", vpid);
	w->pagemap = img_create(name, "ckpt.PagemapEntry");
	if (!w->raw || !w->pagemap) {
		ret = -errno;
		goto out_vm;
	}
	w->offset = img_raw_offset(w->raw);
	uint64_t base = w->offset;
	w->codec = pagecodec_writer_open(vpid, w->raw, &ret);
	if (ret)
		goto out_vm;
	ret = pw_start(w);
	if (ret)
		goto out_vm;
	progress_stage("dump", "memory");
	for (size_t i = 0; i < nvmas; i++) {
		/* both kinds of run in address order */
		size_t k = 0, p = 0;
		while (k < runs[i].n || p < pruns[i].n) {
			if (p < pruns[i].n && (k == runs[i].n || pruns[i].r[p].start < runs[i].r[k].start)) {
				ret = pw_add_parent_run(w, pruns[i].r[p].start, pruns[i].r[p].end);
				p++;
			} else {
				ret = pw_add_run(w, runs[i].r[k].start, runs[i].r[k].end);
				k++;
			}
			if (ret)
				goto out_vm;
		}
	}
	ret = pw_flush(w);
	if (!ret)
		ret = cow_register(cow, vpid, runs, nvmas, base);
	for (size_t k = 0; !ret && k < cow->nref; k++) {
		Ckpt__PagemapEntry pe = CKPT__PAGEMAP_ENTRY__INIT;
		SET(&pe, vaddr, cow->ref[k].vaddr);
		SET(&pe, nr_pages, cow->ref[k].nr_pages);
		SET(&pe, offset, cow->ref[k].offset);
		SET(&pe, pages_of, cow->ref[k].vpid);
		ret = img_write_msg(w->pagemap, &pe.base);
	}
	if (ret)
		goto out_vm;
	progress_end();
	pr_info("mem", "PID %d: %zu mappings, %llu pages saved, %llu shared with an earlier process",
		pid, nvmas, (unsigned long long)(total / 4096), (unsigned long long)nshared);
out_vm:
	{
		int r1 = pw_stop(w);
		if (!ret)
			ret = r1;
		r1 = pagecodec_writer_close(w->codec);
		if (!ret)
			ret = r1;
		if (w->raw) {
			int r2 = img_raw_close(w->raw);
			if (!ret)
				ret = r2;
		}
		if (w->pagemap) {
			int r2 = img_close(w->pagemap);
			if (!ret)
				ret = r2;
		}
		free(w);
	}
	return ret;
}

int dump_memory_deferred(bool copy)
{
	int ret = 0;
	for (size_t d = 0; d < ndeferred; d++) {
		struct deferred *e = &deferred[d];
		if (copy && !ret)
			ret = write_pages(e->pid, e->vpid, e->n, e->runs, e->pruns, e->total, &e->cow,
					  e->nshared, true);
		cow_task_free(&e->cow);
		for (size_t i = 0; i < e->n; i++) {
			page_runs_free(&e->runs[i]);
			page_runs_free(&e->pruns[i]);
		}
		free(e->runs);
		free(e->pruns);
	}
	free(deferred);
	deferred = NULL;
	ndeferred = 0;
	return ret;
}
