/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * restore --lazy-pages, the controller's part (see lazy.h): private
 * anonymous VMAs are left empty and registered with a userfaultfd that the
 * task creates itself; the uffd then leaves the task for the lazy-pages
 * daemon, so nothing of it stays behind in the restored process.
 */
#include <errno.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

#include "inject.h"
#include "lazy.h"
#include "log.h"
#include "pagecodec.h"
#include "ptrace.h"
#include "restore.h"

static int lazy_sock = -1;
static Ckpt__PagemapEntry **full_pm;
static size_t full_npm;

int lazy_restore_enable(const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, LAZY_SOCK_NAME) >=
	    sizeof(sa.sun_path)) {
		pr_err("lazy", "images directory path %s is too long for the lazy-pages socket", dir);
		return -ENAMETOOLONG;
	}
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = errno;
		pr_err("lazy", "no lazy-pages daemon listens on %s (%s): start `ckpt lazy-pages -D %s` first",
		       sa.sun_path, strerror(err), dir);
		close(fd);
		return -err;
	}
	lazy_sock = fd;
	return 0;
}

bool lazy_restore_on(void)
{
	return lazy_sock >= 0;
}

static bool lazy_vma(const Ckpt__Vma *v)
{
	return v->kind == CKPT__VMA_KIND__VMA_ANON && !v->has_shmem_id && v->has_pages &&
	       !(v->flags & MAP_SHARED);
}

static const Ckpt__Vma *vma_of(const Ckpt__Mm *mm, uint64_t addr)
{
	for (size_t i = 0; i < mm->n_vmas; i++)
		if (addr >= mm->vmas[i]->start && addr < mm->vmas[i]->end)
			return mm->vmas[i];
	return NULL;
}

int lazy_restore_split(struct rst_task *t)
{
	if (lazy_sock < 0)
		return 0;
	/* the daemon serves pages straight from the page image's offsets */
	if (pagecodec_image_compressed(t->pid)) {
		pr_err("restore", "PID %d: its page images are compressed; --lazy-pages cannot serve them yet: dump without --compress",
		       t->pid);
		return -ENOTSUP;
	}
	Ckpt__PagemapEntry **keep = calloc(t->npm ? t->npm : 1, sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < t->npm; i++) {
		const Ckpt__Vma *v = vma_of(t->mm, t->pm[i]->vaddr);
		if (!v || !lazy_vma(v))
			keep[n++] = t->pm[i];
	}
	full_pm = t->pm;
	full_npm = t->npm;
	t->pm = keep;
	t->npm = n;
	return 0;
}

void lazy_restore_unsplit(struct rst_task *t)
{
	if (!full_pm)
		return;
	free(t->pm);
	t->pm = full_pm;
	t->npm = full_npm;
	full_pm = NULL;
}

static int send_task(pid_t pid, int uffd)
{
	struct lazy_hello h = { pid, 0 };
	struct iovec iov = { &h, sizeof(h) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (uffd >= 0) {
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &uffd, sizeof(int));
	}
	if (sendmsg(lazy_sock, &mh, MSG_NOSIGNAL) != sizeof(h))
		return -errno;
	return 0;
}

int lazy_restore_register(struct rst_task *t, struct inject *in)
{
	uint64_t scratch = TRAMP_SCRATCH(t->tramp);
	int pidfd = -1, uffd = -1, ret;
	size_t nlazy = 0;

	if (lazy_sock < 0)
		return 0;
	for (size_t i = 0; i < t->mm->n_vmas; i++)
		nlazy += lazy_vma(t->mm->vmas[i]);
	if (!nlazy)
		return 0;

	/* the uffd must belong to the task's mm: the task creates it */
	long tfd = inject_do(in, "userfaultfd", SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK, 0, 0, 0,
			     0, 0);
	if (tfd < 0) {
		pr_err("lazy", "PID %d: cannot create a userfaultfd in the task: %s", t->pid,
		       strerror((int)-tfd));
		return (int)tfd;
	}
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP |
			    UFFD_FEATURE_EVENT_REMOVE | UFFD_FEATURE_EVENT_UNMAP,
	};
	ret = task_mem_write(t->hpid, scratch, &api, sizeof(api));
	if (ret)
		goto close_task_fd;
	long r = inject_do(in, "ioctl(UFFDIO_API)", SYS_ioctl, tfd, UFFDIO_API, scratch, 0, 0, 0);
	if (r < 0) {
		ret = (int)r;
		goto close_task_fd;
	}
	for (size_t i = 0; i < t->mm->n_vmas; i++) {
		const Ckpt__Vma *v = t->mm->vmas[i];
		if (!lazy_vma(v))
			continue;
		struct uffdio_register reg = {
			.range = { v->start, v->end - v->start },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		ret = task_mem_write(t->hpid, scratch, &reg, sizeof(reg));
		if (ret)
			goto close_task_fd;
		r = inject_do(in, "ioctl(UFFDIO_REGISTER)", SYS_ioctl, tfd, UFFDIO_REGISTER, scratch,
			      0, 0, 0);
		if (r < 0) {
			pr_err("lazy", "PID %d: cannot register %#llx-%#llx with userfaultfd: %s",
			       t->pid, (unsigned long long)v->start, (unsigned long long)v->end,
			       strerror((int)-r));
			ret = (int)r;
			goto close_task_fd;
		}
	}
	pidfd = (int)syscall(SYS_pidfd_open, t->hpid, 0);
	if (pidfd >= 0)
		uffd = (int)syscall(SYS_pidfd_getfd, pidfd, (int)tfd, 0);
	if (pidfd < 0 || uffd < 0) {
		ret = -errno;
		pr_err("lazy", "PID %d: cannot take its userfaultfd: %s", t->pid, strerror(errno));
		goto close_task_fd;
	}

close_task_fd:
	/* no trace of the uffd stays in the task */
	r = inject_do(in, "close(userfaultfd)", SYS_close, tfd, 0, 0, 0, 0, 0);
	if (!ret && r < 0)
		ret = (int)r;
	if (pidfd >= 0)
		close(pidfd);
	if (ret)
		goto out;

	ret = send_task(t->pid, uffd);
	if (ret) {
		pr_err("lazy", "PID %d: cannot hand its memory to the lazy-pages daemon: %s", t->pid,
		       strerror(-ret));
		goto out;
	}
	struct lazy_ack ack;
	ssize_t n = recv(lazy_sock, &ack, sizeof(ack), 0);
	if (n != sizeof(ack)) {
		pr_err("lazy", "PID %d: the lazy-pages daemon did not answer (%s)", t->pid,
		       n < 0 ? strerror(errno) : "it went away");
		ret = -EPIPE;
		goto out;
	}
	ack.text[sizeof(ack.text) - 1] = 0;
	if (ack.status) {
		pr_err("lazy", "PID %d: the lazy-pages daemon refused it: %s", t->pid, ack.text);
		ret = ack.status < 0 ? ack.status : -EIO;
		goto out;
	}
	pr_info("lazy", "PID %d: %zu VMA(s) left to the lazy-pages daemon", t->pid, nlazy);
out:
	if (uffd >= 0)
		close(uffd);
	return ret;
}

void lazy_restore_finish(void)
{
	if (lazy_sock < 0)
		return;
	send_task(0, -1);
	close(lazy_sock);
	lazy_sock = -1;
}

/* The same choice for the daemon, which reads mm-PID.img itself. */
bool lazy_vma_is_lazy(const Ckpt__Vma *v)
{
	return lazy_vma(v);
}
