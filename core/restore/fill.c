/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Filling a restored task's private memory from its page images, from
 * ckpt's side: a reader thread preads the images into one of two buffers
 * while the other is written into the task with process_vm_writev.
 *
 * Why not one preadv inside the task, straight from the image (DESIGN.md's
 * first plan)?  On these VMs the first user-mode touch of every fresh page
 * costs ~20 us (0.15-0.3 GB/s however the task writes it: preadv, memcpy,
 * even after MADV_POPULATE_WRITE), while process_vm_writev fills the same
 * fresh pages through the kernel at 1.6-2.5 GB/s (bench/README.md).  Two
 * copies through a warm buffer beat one copy through fresh user mappings.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "pagecodec.h"
#include "progress.h"
#include "restore.h"

#define FILL_BUF (8u << 20)
#define FILL_IOV 1024 /* UIO_MAXIOV */

/* One buffer's worth: where its bytes go in the task. */
struct fill_chunk {
	uint8_t *buf;
	size_t len;
	struct iovec iov[FILL_IOV];
	size_t niov;
	int err; /* reader: -errno, or -EBADMSG for a short image */
	bool last;
};

struct fill_job {
	struct rst_task *t;
	int *fds; /* per chain level: ckpt's own fd of that pages image */
	struct fill_chunk c[2];
	/* slot i is full when full[i]; the reader waits for !full, the
	 * writer for full */
	bool full[2];
	bool stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void put(struct fill_job *j, int slot)
{
	pthread_mutex_lock(&j->mu);
	j->full[slot] = true;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

/* Wait until slot is full (want) or empty (!want); false when stopped. */
static bool wait_slot(struct fill_job *j, int slot, bool want)
{
	pthread_mutex_lock(&j->mu);
	while (j->full[slot] != want && !j->stop)
		pthread_cond_wait(&j->cv, &j->mu);
	bool ok = !j->stop;
	pthread_mutex_unlock(&j->mu);
	return ok;
}

/* Read one buffer of contiguous image bytes: runs of the pagemap in order,
 * each run read from the image of its level. */
static int read_chunk(struct fill_job *j, struct fill_chunk *c, size_t *pi, uint64_t *part)
{
	struct rst_task *t = j->t;
	c->len = 0;
	c->niov = 0;
	while (*pi < t->npm && c->niov < FILL_IOV && c->len < FILL_BUF) {
		const Ckpt__PagemapEntry *e = t->pm[*pi];
		int lvl = t->pm_level ? t->pm_level[*pi] : 0;
		uint64_t len = e->nr_pages * 4096 - *part;
		if (len > FILL_BUF - c->len)
			len = FILL_BUF - c->len;
		struct pagecodec_index *ix = t->chain_ix ? t->chain_ix[lvl] : NULL;
		if (ix) {
			/* a compressed level of a parent chain */
			int ret = pagecodec_index_pread(ix, j->fds[lvl], c->buf + c->len, len,
							e->offset + *part);
			if (ret)
				return ret;
		}
		for (uint64_t got = ix ? len : 0; got < len;) {
			ssize_t r = pread(j->fds[lvl], c->buf + c->len + got, len - got,
					  (off_t)(e->offset + *part + got));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				pr_err("restore", "PID %d: page image ended early (offset %llu): %s",
				       t->pid, (unsigned long long)(e->offset + *part + got),
				       r < 0 ? strerror(errno) : "end of file");
				return r < 0 ? -errno : -EBADMSG;
			}
			got += (uint64_t)r;
		}
		c->iov[c->niov].iov_base = (void *)(uintptr_t)(e->vaddr + *part);
		c->iov[c->niov].iov_len = len;
		c->niov++;
		c->len += len;
		*part += len;
		if (*part == e->nr_pages * 4096) {
			(*pi)++;
			*part = 0;
		}
	}
	c->last = *pi >= t->npm;
	return 0;
}

static void *reader(void *arg)
{
	struct fill_job *j = arg;
	size_t i = 0;
	uint64_t part = 0;
	for (int slot = 0;; slot ^= 1) {
		if (!wait_slot(j, slot, false))
			break;
		struct fill_chunk *c = &j->c[slot];
		c->err = read_chunk(j, c, &i, &part);
		bool end = c->err || c->last;
		put(j, slot);
		if (end)
			break;
	}
	return NULL;
}

/* ckpt's own fd of the pages image the task has at number fd. */
static int own_fd(pid_t hpid, int fd)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", hpid, fd);
	int r = open(path, O_RDONLY | O_CLOEXEC);
	if (r < 0)
		pr_err("restore", "cannot open the page image the task has at fd %d (%s): %s", fd,
		       path, strerror(errno));
	return r < 0 ? -errno : r;
}

int fill_pages_from_ckpt(struct rst_task *t)
{
	struct fill_job j;
	int nlev = 1, ret = 0;
	uint64_t total = 0, done = 0;

	if (!t->npm)
		return 0;
	memset(&j, 0, sizeof(j));
	j.t = t;
	for (size_t i = 0; i < t->npm; i++) {
		total += t->pm[i]->nr_pages * 4096;
		if (t->pm_level && t->pm_level[i] + 1 > nlev)
			nlev = t->pm_level[i] + 1;
	}
	j.fds = calloc((size_t)nlev, sizeof(int));
	j.c[0].buf = malloc(FILL_BUF);
	j.c[1].buf = malloc(FILL_BUF);
	if (!j.fds || !j.c[0].buf || !j.c[1].buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (int l = 0; l < nlev; l++)
		j.fds[l] = -1;
	for (int l = 0; l < nlev && !ret; l++) {
		int fd = own_fd(t->hpid, l ? t->chain_fd[l] : t->pages_fd);
		if (fd < 0)
			ret = fd;
		else
			j.fds[l] = fd;
	}
	if (ret)
		goto out;
	pthread_mutex_init(&j.mu, NULL);
	pthread_cond_init(&j.cv, NULL);
	progress_stage("restore", "memory");

	pthread_t th;
	int e = pthread_create(&th, NULL, reader, &j);
	if (e) {
		ret = -e;
		pr_err("restore", "cannot start the page reader thread: %s", strerror(e));
		goto out_sync;
	}
	for (int slot = 0;; slot ^= 1) {
		if (!wait_slot(&j, slot, true))
			break;
		struct fill_chunk *c = &j.c[slot];
		if (c->err) {
			ret = c->err;
			break;
		}
		size_t off = 0;
		for (size_t k = 0; k < c->niov;) {
			/* one call takes at most UIO_MAXIOV remote pieces; it may
			 * stop short at a piece boundary */
			struct iovec l = { c->buf + off, 0 };
			size_t nk = c->niov - k;
			for (size_t q = k; q < c->niov; q++)
				l.iov_len += c->iov[q].iov_len;
			ssize_t r = process_vm_writev(t->hpid, &l, 1, &c->iov[k], nk, 0);
			if (r <= 0) {
				ret = r < 0 ? -errno : -EIO;
				pr_err("restore", "PID %d: cannot write its pages at %p: %s", t->pid,
				       c->iov[k].iov_base, strerror(-ret));
				break;
			}
			/* skip the pieces written whole; a partial one is retried */
			size_t w = (size_t)r;
			off += w;
			while (k < c->niov && w >= c->iov[k].iov_len) {
				w -= c->iov[k].iov_len;
				k++;
			}
			if (w) {
				c->iov[k].iov_base = (uint8_t *)c->iov[k].iov_base + w;
				c->iov[k].iov_len -= w;
			}
		}
		if (ret)
			break;
		done += c->len;
		progress_bytes(done, total);
		bool last = c->last;
		pthread_mutex_lock(&j.mu);
		j.full[slot] = false;
		pthread_cond_broadcast(&j.cv);
		pthread_mutex_unlock(&j.mu);
		if (last)
			break;
	}
	pthread_mutex_lock(&j.mu);
	j.stop = true;
	pthread_cond_broadcast(&j.cv);
	pthread_mutex_unlock(&j.mu);
	pthread_join(th, NULL);
	progress_end();
out_sync:
	pthread_cond_destroy(&j.cv);
	pthread_mutex_destroy(&j.mu);
out:
	if (j.fds)
		for (int l = 0; l < nlev; l++)
			if (j.fds[l] >= 0)
				close(j.fds[l]);
	free(j.fds);
	free(j.c[0].buf);
	free(j.c[1].buf);
	return ret;
}
