/* SPDX-License-Identifier: GPL-2.0-only */
/* The worker's fd plan: objects recreated by their plugins in the
 * controller, plus the helper fds the memory switch needs (page image,
 * executable, mapped files), all inherited by the worker. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "plugin.h"
#include "restore.h"

static int add_move(struct rst_task *t, int src, int dst, bool cloexec)
{
	struct fd_move *m = realloc(t->moves, (t->nmoves + 1) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	t->moves = m;
	t->moves[t->nmoves++] = (struct fd_move){ src, dst, cloexec };
	return 0;
}

/* Open a file the task maps or runs, refusing one that changed. */
static int open_checked(const char *path, int flags, bool has_meta, uint64_t size, int64_t mtime_ns)
{
	int fd = open(path, flags | O_CLOEXEC);
	if (fd < 0) {
		int err = -errno;
		pr_err("restore", "cannot open %s: %s; restore it as it was at dump time", path,
		       strerror(errno));
		return err;
	}
	struct stat st;
	if (has_meta && !fstat(fd, &st)) {
		int64_t m = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
		if ((uint64_t)st.st_size != size || m != mtime_ns) {
			pr_err("restore", "%s changed since the dump (size %llu -> %llu); restore the original file",
			       path, (unsigned long long)size, (unsigned long long)st.st_size);
			close(fd);
			return -ESTALE;
		}
	}
	return fd;
}

/* Objects recreated so far, across every task: an open file shared by
 * several tasks is recreated once and inherited by all of them. */
static struct {
	uint32_t obj_id;
	int fd;
} *objs;
static size_t nobjs;

/* Shared anonymous memory objects: one memfd each, mapped by every task
 * that shared the object at dump time. */
static struct {
	uint64_t id;
	int fd;
} *shm;
static size_t nshm;

static int shmem_object(uint64_t id, uint64_t size)
{
	for (size_t i = 0; i < nshm; i++)
		if (shm[i].id == id)
			return shm[i].fd;
	void *n = realloc(shm, (nshm + 1) * sizeof(*shm));
	if (!n)
		return -ENOMEM;
	shm = n;
	int fd = memfd_create("ckpt-shmem", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, size)) {
		int err = -errno;
		pr_err("restore", "cannot create shared memory of %llu bytes: %s",
		       (unsigned long long)size, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err;
	}
	shm[nshm].id = id;
	shm[nshm++].fd = fd;
	return fd;
}

/* Files behind plugin-owned mappings: one fd per object, shared by every
 * mapping of it in every task. */
static struct {
	char *plugin, *klass;
	uint32_t obj_id;
	int fd;
} *pvmas;
static size_t npvmas;

static int plugin_vma_fd(const Ckpt__Vma *v)
{
	const char *klass = v->klass ? v->klass : "";
	for (size_t i = 0; i < npvmas; i++)
		if (pvmas[i].obj_id == v->obj_id && !strcmp(pvmas[i].plugin, v->plugin) &&
		    !strcmp(pvmas[i].klass, klass))
			return pvmas[i].fd;
	void *n = realloc(pvmas, (npvmas + 1) * sizeof(*pvmas));
	if (!n)
		return -ENOMEM;
	pvmas = n;
	int fd;
	int ret = plugins_restore_vma(v->plugin, klass, v->obj_id, &fd);
	if (ret)
		return ret;
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	pvmas[npvmas].plugin = strdup(v->plugin);
	pvmas[npvmas].klass = strdup(klass);
	pvmas[npvmas].obj_id = v->obj_id;
	pvmas[npvmas].fd = fd;
	if (!pvmas[npvmas].plugin || !pvmas[npvmas].klass) {
		free(pvmas[npvmas].plugin);
		free(pvmas[npvmas].klass);
		close(fd);
		return -ENOMEM;
	}
	npvmas++;
	return fd;
}

void restore_files_reset(void)
{
	for (size_t i = 0; i < npvmas; i++) {
		close(pvmas[i].fd);
		free(pvmas[i].plugin);
		free(pvmas[i].klass);
	}
	free(pvmas);
	pvmas = NULL;
	npvmas = 0;
	for (size_t i = 0; i < nshm; i++)
		close(shm[i].fd);
	free(shm);
	shm = NULL;
	nshm = 0;
	for (size_t i = 0; i < nobjs; i++)
		close(objs[i].fd);
	free(objs);
	objs = NULL;
	nobjs = 0;
}

int restore_prepare_files(struct rst_task *t)
{
	int maxfd = 2, ret;

	for (size_t i = 0; i < t->nfds; i++) {
		Ckpt__FdEntry *e = t->fds[i];
		int fd = -1;
		for (size_t k = 0; k < nobjs; k++)
			if (objs[k].obj_id == e->obj_id)
				fd = objs[k].fd;
		if (fd < 0) {
			if (!e->plugin || !e->klass) {
				pr_err("restore", "fd %u of PID %d has no owning plugin in the image", e->fd, t->pid);
				ret = -EBADMSG;
				goto out;
			}
			ret = plugins_restore_fd(e->plugin, e->klass, e->obj_id, &fd);
			if (ret) {
				pr_info("restore", "fd %u of PID %d (%s object %u): plugin %s could not recreate it: %s",
				       e->fd, t->pid, e->klass, e->obj_id, e->plugin, strerror(-ret));
				goto out;
			}
			/* the controller never needs them across exec */
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			void *no = realloc(objs, (nobjs + 1) * sizeof(*objs));
			if (!no) {
				close(fd);
				ret = -ENOMEM;
				goto out;
			}
			objs = no;
			objs[nobjs].obj_id = e->obj_id;
			objs[nobjs++].fd = fd;
		}
		ret = add_move(t, fd, e->fd, e->cloexec);
		if (ret)
			goto out;
		if ((int)e->fd > maxfd)
			maxfd = e->fd;
	}

	/* helpers live above every fd of the task */
	int next = maxfd + 1;
	char name[64];
	snprintf(name, sizeof(name), "pages-%d.img", t->pid);
	int fd = img_raw_open(name);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	t->pages_fd = next++;
	ret = add_move(t, fd, t->pages_fd, true);
	if (ret)
		goto out;
	/* the page images of the parent chain, between pages_fd and ready_fd */
	for (size_t k = 1; k < t->nchain; k++) {
		t->chain_fd[k] = -1;
		if (t->chain_host_fd[k] < 0)
			continue;
		t->chain_fd[k] = next++;
		ret = add_move(t, t->chain_host_fd[k], t->chain_fd[k], true);
		if (ret)
			goto out;
		t->chain_host_fd[k] = -1; /* the move owns it now */
	}

	Ckpt__Mm *mm = t->mm;
	fd = open_checked(mm->exe, O_RDONLY, mm->has_exe_size, mm->exe_size, mm->exe_mtime_ns);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	t->exe_fd = next++;
	ret = add_move(t, fd, t->exe_fd, true);
	if (ret)
		goto out;

	t->vma_fd = malloc(mm->n_vmas * sizeof(int));
	if (!t->vma_fd && mm->n_vmas) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < mm->n_vmas; i++) {
		Ckpt__Vma *v = mm->vmas[i];
		t->vma_fd[i] = -1;
		if (v->has_shmem_id) {
			fd = shmem_object(v->shmem_id, v->shmem_size);
			if (fd < 0) {
				ret = fd;
				goto out;
			}
			for (size_t k = 0; k < t->nmoves && t->vma_fd[i] < 0; k++)
				if (t->moves[k].src == fd)
					t->vma_fd[i] = t->moves[k].dst;
			if (t->vma_fd[i] >= 0)
				continue;
			t->vma_fd[i] = next++;
			ret = add_move(t, fd, t->vma_fd[i], true);
			if (ret)
				goto out;
			continue;
		}
		if (v->kind != CKPT__VMA_KIND__VMA_FILE_PRIVATE && v->kind != CKPT__VMA_KIND__VMA_FILE_SHARED)
			continue;
		if (v->plugin) {
			fd = plugin_vma_fd(v);
			if (fd < 0) {
				ret = fd;
				goto out;
			}
			for (size_t k = 0; k < t->nmoves && t->vma_fd[i] < 0; k++)
				if (t->moves[k].src == fd)
					t->vma_fd[i] = t->moves[k].dst;
			if (t->vma_fd[i] >= 0)
				continue;
			t->vma_fd[i] = next++;
			ret = add_move(t, fd, t->vma_fd[i], true);
			if (ret)
				goto out;
			continue;
		}
		bool rw = v->kind == CKPT__VMA_KIND__VMA_FILE_SHARED && (v->prot & PROT_WRITE);
		/* one fd per file: reuse the previous VMA's when the path repeats */
		for (size_t k = 0; k < i; k++)
			if (t->vma_fd[k] >= 0 && !strcmp(mm->vmas[k]->path, v->path) &&
			    !(rw && !(mm->vmas[k]->kind == CKPT__VMA_KIND__VMA_FILE_SHARED &&
				      (mm->vmas[k]->prot & PROT_WRITE)))) {
				t->vma_fd[i] = t->vma_fd[k];
				break;
			}
		if (t->vma_fd[i] >= 0)
			continue;
		fd = open_checked(v->path, rw ? O_RDWR : O_RDONLY, v->has_file_size, v->file_size,
				  v->file_mtime_ns);
		if (fd < 0) {
			ret = fd;
			goto out;
		}
		t->vma_fd[i] = next++;
		ret = add_move(t, fd, t->vma_fd[i], true);
		if (ret)
			goto out;
	}
	t->ready_fd = next++;
	ret = 0;
out:
	return ret;
}

void restore_close_files(struct rst_task *t)
{
	/* object fds are shared between tasks: closed by restore_files_reset's
	 * caller through the object list; only this task's helpers here */
	for (size_t i = 0; i < t->nmoves; i++) {
		bool seen = false, obj = false;
		for (size_t k = 0; k < i; k++)
			seen |= t->moves[k].src == t->moves[i].src;
		for (size_t k = 0; k < nobjs; k++)
			obj |= objs[k].fd == t->moves[i].src;
		for (size_t k = 0; k < nshm; k++)
			obj |= shm[k].fd == t->moves[i].src;
		for (size_t k = 0; k < npvmas; k++)
			obj |= pvmas[k].fd == t->moves[i].src;
		if (!seen && !obj && t->moves[i].src >= 0)
			close(t->moves[i].src);
	}
	free(t->moves);
	t->moves = NULL;
	t->nmoves = 0;
	free(t->vma_fd);
	t->vma_fd = NULL;
}
