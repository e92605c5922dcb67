/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ckpt lazy-pages: the daemon that fills the memory of a lazily restored
 * tree (see lazy.h).  Single-threaded: faults are served first, and
 * whenever no event is pending the next chunk of pages still missing is
 * pushed, so the daemon finishes even for memory the task never touches.
 *
 * Per uffd it keeps the runs of pages not yet in place, at their current
 * addresses, with their offsets in pages-PID.img.  A fork gives a new uffd
 * whose runs are the parent's at that moment (what was in place was
 * copied by the fork, what was not is missing in both); mremap moves runs;
 * munmap and madvise(DONTNEED) drop them (a later fault there reads zeros).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "inventory.pb-c.h"
#include "lazy.h"
#include "log.h"
#include "mm.pb-c.h"
#include "pageserver.h"
#include "pagemap.pb-c.h"

#define PAGE 4096ULL
#define FAULT_CHUNK (128ULL << 10) /* served from the fault on */
#define PUSH_CHUNK (4ULL << 20)    /* background push */
#define MAX_TASKS 4096

struct run {
	uint64_t addr, len, off;
};

struct ltask {
	int uffd;
	int32_t pid;       /* whose pages image */
	struct run *r;     /* sorted by addr, disjoint */
	size_t n, cap;
	bool blocked;      /* the mm is changing: wait for its event */
	uint64_t pend[64]; /* faults to answer once it is not */
	size_t npend;
};

static struct {
	struct ltask *t[MAX_TASKS];
	size_t n;
	const struct lazy_opts *o;
	int ps_fd;          /* page server, or -1: pages from the images */
	int pages_fd;       /* pages image of pages_pid */
	int32_t pages_pid;
	unsigned char *buf; /* page aligned, PUSH_CHUNK */
	uint64_t faults, fault_bytes, push_bytes, zero_pages;
	uint64_t forks, remaps, removes;
} lz = { .ps_fd = -1, .pages_fd = -1 };

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static uint64_t left_bytes(const struct ltask *t)
{
	uint64_t s = 0;
	for (size_t i = 0; i < t->n; i++)
		s += t->r[i].len;
	return s;
}

static int runs_reserve(struct ltask *t, size_t extra)
{
	if (t->n + extra <= t->cap)
		return 0;
	size_t cap = (t->n + extra) * 2 + 16;
	struct run *r = realloc(t->r, cap * sizeof(*r));
	if (!r)
		return -ENOMEM;
	t->r = r;
	t->cap = cap;
	return 0;
}

static int run_cmp(const void *a, const void *b)
{
	const struct run *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Cut [start, end) out of the runs; with shift, re-add it moved by delta. */
static int runs_cut(struct ltask *t, uint64_t start, uint64_t end, bool shift, int64_t delta)
{
	size_t cap = t->n * 3 + 1, w = 0;
	struct run *out = malloc(cap * sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		const struct run *r = &t->r[i];
		uint64_t rs = r->addr, re = r->addr + r->len;
		if (re <= start || rs >= end) {
			out[w++] = *r;
			continue;
		}
		uint64_t cs = rs > start ? rs : start, ce = re < end ? re : end;
		if (cs > rs)
			out[w++] = (struct run){ rs, cs - rs, r->off };
		if (shift)
			out[w++] = (struct run){ cs + delta, ce - cs, r->off + (cs - rs) };
		if (re > ce)
			out[w++] = (struct run){ ce, re - ce, r->off + (ce - rs) };
	}
	free(t->r);
	t->r = out;
	t->n = w;
	t->cap = cap;
	if (shift)
		qsort(t->r, t->n, sizeof(*t->r), run_cmp);
	return 0;
}

static struct run *run_at(struct ltask *t, uint64_t addr)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (t->r[mid].addr + t->r[mid].len <= addr)
			lo = mid + 1;
		else if (t->r[mid].addr > addr)
			hi = mid;
		else
			return &t->r[mid];
	}
	return NULL;
}

static int read_pages(int32_t pid, uint64_t off, void *buf, uint64_t len)
{
	if (lz.ps_fd >= 0) {
		int ret = ps_get_pages(lz.ps_fd, (uint32_t)pid, off, buf, len);
		if (ret)
			pr_err("lazy", "the page server gave no pages of PID %d at offset %llu: %s",
			       pid, (unsigned long long)off, strerror(-ret));
		return ret;
	}
	if (lz.pages_fd < 0 || lz.pages_pid != pid) {
		char name[64];
		if (lz.pages_fd >= 0)
			close(lz.pages_fd);
		snprintf(name, sizeof(name), "pages-%d.img", pid);
		lz.pages_fd = img_raw_open(name);
		lz.pages_pid = pid;
		if (lz.pages_fd < 0)
			return lz.pages_fd;
	}
	ssize_t r = pread(lz.pages_fd, buf, len, off);
	if (r != (ssize_t)len) {
		pr_err("lazy", "pages-%d.img ends early at offset %llu", pid, (unsigned long long)off);
		return r < 0 ? -errno : -EBADMSG;
	}
	return 0;
}

static void drop_task(struct ltask *t, const char *why)
{
	if (t->n)
		pr_debug("lazy", "PID %d (uffd %d): %s; %llu bytes no longer needed", t->pid, t->uffd,
			 why, (unsigned long long)left_bytes(t));
	t->n = 0;
}

/* Put [addr, addr+len) of run-backed pages in place.  0, or -EAGAIN when
 * the mm is changing (retry after its event). */
static int serve(struct ltask *t, uint64_t addr, uint64_t len)
{
	struct run *r = run_at(t, addr);
	if (!r)
		return 0;
	if (addr + len > r->addr + r->len)
		len = r->addr + r->len - addr;
	if (len > PUSH_CHUNK)
		len = PUSH_CHUNK;
	uint64_t off = r->off + (addr - r->addr);
	int ret = read_pages(t->pid, off, lz.buf, len);
	if (ret)
		return ret;
	uint64_t done = 0;
	while (done < len) {
		struct uffdio_copy c = { .dst = addr + done, .src = (uint64_t)(uintptr_t)(lz.buf + done),
					 .len = len - done };
		if (!ioctl(t->uffd, UFFDIO_COPY, &c)) {
			done = len;
			break;
		}
		int err = errno;
		if (c.copy > 0)
			done += c.copy;
		if (err == EAGAIN) {
			if (c.copy > 0)
				continue;
			t->blocked = true;
			break;
		}
		if (err == EEXIST) {
			/* a page is there already (zero-filled after a fault outside
			 * the runs): skip that one page */
			done += PAGE;
			continue;
		}
		if (err == ESRCH) {
			drop_task(t, "the process is gone");
			return 0;
		}
		if (err == ENOENT || err == EINVAL) {
			/* no registered mapping there any more */
			done = len;
			break;
		}
		pr_err("lazy", "PID %d: UFFDIO_COPY at %#llx: %s", t->pid,
		       (unsigned long long)(addr + done), strerror(err));
		return -err;
	}
	if (done)
		runs_cut(t, addr, addr + done, false, 0);
	return t->blocked ? -EAGAIN : 0;
}

/* Answer a fault; false when the mm is changing (answer it later). */
static bool answer_fault(struct ltask *t, uint64_t addr)
{
	if (run_at(t, addr)) {
		uint64_t before = left_bytes(t);
		serve(t, addr, FAULT_CHUNK);
		lz.fault_bytes += before - left_bytes(t);
		if (t->blocked)
			return false;
		if (!run_at(t, addr))
			return true;
	}
	/* never saved (or dropped): it reads as zeros; if the page is there
	 * already, just wake the thread */
	struct uffdio_zeropage z = { .range = { addr, PAGE } };
	if (!ioctl(t->uffd, UFFDIO_ZEROPAGE, &z)) {
		lz.zero_pages++;
		return true;
	}
	if (errno == EAGAIN) {
		t->blocked = true;
		return false;
	}
	struct uffdio_range w = { addr, PAGE };
	ioctl(t->uffd, UFFDIO_WAKE, &w);
	return true;
}

static void fault(struct ltask *t, uint64_t addr)
{
	addr &= ~(PAGE - 1);
	lz.faults++;
	if (t->blocked || !answer_fault(t, addr)) {
		if (t->npend < sizeof(t->pend) / sizeof(t->pend[0]))
			t->pend[t->npend++] = addr;
		/* else: the thread faults again when woken by a later copy */
	}
}

static void retry_faults(struct ltask *t)
{
	size_t n = t->npend;
	t->npend = 0;
	for (size_t i = 0; i < n; i++)
		fault(t, t->pend[i]);
}

static int add_task(int uffd, int32_t pid, const struct run *r, size_t n)
{
	if (lz.n == MAX_TASKS) {
		pr_err("lazy", "too many processes to serve (%d)", MAX_TASKS);
		return -E2BIG;
	}
	struct ltask *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->uffd = uffd;
	t->pid = pid;
	if (runs_reserve(t, n ? n : 1)) {
		free(t);
		return -ENOMEM;
	}
	memcpy(t->r, r, n * sizeof(*r));
	t->n = n;
	qsort(t->r, t->n, sizeof(*t->r), run_cmp);
	lz.t[lz.n++] = t;
	return 0;
}

static int handle_events(struct ltask *t)
{
	struct uffd_msg m[32];
	for (;;) {
		ssize_t r = read(t->uffd, m, sizeof(m));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		if (r == 0)
			return -EPIPE;
		t->blocked = false;
		for (size_t i = 0; i < (size_t)r / sizeof(m[0]); i++) {
			struct uffd_msg *e = &m[i];
			switch (e->event) {
			case UFFD_EVENT_PAGEFAULT:
				fault(t, e->arg.pagefault.address);
				break;
			case UFFD_EVENT_FORK: {
				int ret = add_task((int)e->arg.fork.ufd, t->pid, t->r, t->n);
				if (ret) {
					close((int)e->arg.fork.ufd);
					return ret;
				}
				lz.forks++;
				pr_debug("lazy", "PID %d forked: new uffd %u with %llu bytes to serve",
					 t->pid, e->arg.fork.ufd, (unsigned long long)left_bytes(t));
				break;
			}
			case UFFD_EVENT_REMAP:
				lz.remaps++;
				runs_cut(t, e->arg.remap.from, e->arg.remap.from + e->arg.remap.len, true,
					 (int64_t)(e->arg.remap.to - e->arg.remap.from));
				break;
			case UFFD_EVENT_REMOVE:
			case UFFD_EVENT_UNMAP:
				lz.removes++;
				runs_cut(t, e->arg.remove.start, e->arg.remove.end, false, 0);
				break;
			}
		}
	}
}

/* A task handed over by the restore: the runs of its lazy VMAs. */
static int load_task(int uffd, int32_t pid, char *why, size_t whylen)
{
	char name[64];
	Ckpt__Mm *mm = NULL;
	ProtobufCMessage **pm = NULL;
	size_t npm = 0;
	struct run *r = NULL;
	size_t n = 0;
	int ret;

	snprintf(name, sizeof(name), "mm-%d.img", pid);
	ret = img_read_one(name, &ckpt__mm__descriptor, (ProtobufCMessage **)&mm);
	if (ret) {
		snprintf(why, whylen, "cannot read %s: %s", name, strerror(-ret));
		return ret;
	}
	snprintf(name, sizeof(name), "pagemap-%d.img", pid);
	ret = img_load_all(name, &ckpt__pagemap_entry__descriptor, &pm, &npm, false);
	if (ret) {
		snprintf(why, whylen, "cannot read %s: %s", name, strerror(-ret));
		goto out;
	}
	r = calloc(npm ? npm : 1, sizeof(*r));
	if (!r) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < npm; i++) {
		const Ckpt__PagemapEntry *e = (const Ckpt__PagemapEntry *)pm[i];
		if (e->has_pages_of)
			continue; /* copied in by the restore itself (cow.c) */
		if (!e->has_offset || e->base.n_unknown_fields) {
			/* pages kept elsewhere (a parent image of an incremental
			 * dump): serving offset 0 would be wrong memory */
			snprintf(why, whylen, "%s has pages this daemon cannot locate (an incremental dump?); restore it without --lazy-pages",
				 name);
			ret = -ENOTSUP;
			goto out;
		}
		for (size_t k = 0; k < mm->n_vmas; k++) {
			const Ckpt__Vma *v = mm->vmas[k];
			if (e->vaddr >= v->start && e->vaddr < v->end && lazy_vma_is_lazy(v) &&
			    e->vaddr + e->nr_pages * PAGE <= v->end)
				r[n++] = (struct run){ e->vaddr, e->nr_pages * PAGE, e->offset };
		}
	}
	ret = add_task(uffd, pid, r, n);
	if (!ret) {
		uint64_t b = 0;
		for (size_t i = 0; i < n; i++)
			b += r[i].len;
		snprintf(why, whylen, "%zu runs, %llu bytes", n, (unsigned long long)b);
		pr_info("lazy", "PID %d: serving %llu bytes in %zu runs", pid, (unsigned long long)b, n);
	}
out:
	free(r);
	for (size_t i = 0; i < npm; i++)
		protobuf_c_message_free_unpacked(pm[i], NULL);
	free(pm);
	if (mm)
		protobuf_c_message_free_unpacked(&mm->base, NULL);
	return ret;
}

/* One message of the restore: 1 a task was added, 0 the restore is over,
 * -errno the connection broke. */
static int control_msg(int cfd)
{
	struct lazy_hello h;
	struct iovec iov = { &h, sizeof(h) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			     .msg_controllen = sizeof(u.buf) };
	ssize_t r = recvmsg(cfd, &mh, MSG_CMSG_CLOEXEC);
	if (r <= 0)
		return r < 0 ? -errno : 0;
	int uffd = -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(&uffd, CMSG_DATA(c), sizeof(int));
	if (r != sizeof(h) || h.pid == 0) {
		if (uffd >= 0)
			close(uffd);
		return 0;
	}
	struct lazy_ack ack;
	memset(&ack, 0, sizeof(ack));
	if (uffd < 0) {
		ack.status = -EBADF;
		snprintf(ack.text, sizeof(ack.text), "no userfaultfd came with PID %d", h.pid);
	} else {
		ack.status = load_task(uffd, h.pid, ack.text, sizeof(ack.text));
		if (ack.status)
			close(uffd);
	}
	if (send(cfd, &ack, sizeof(ack), MSG_NOSIGNAL) != sizeof(ack))
		return -errno;
	return 1;
}

/* The next missing chunk of some task, round robin; 1 when something was
 * pushed or is blocked, 0 when nothing is left anywhere. */
static int push_some(size_t *cursor)
{
	bool blocked = false;
	for (size_t k = 0; k < lz.n; k++) {
		struct ltask *t = lz.t[(*cursor + k) % lz.n];
		if (!t->n)
			continue;
		if (t->blocked) {
			blocked = true;
			continue;
		}
		uint64_t before = left_bytes(t);
		int ret = serve(t, t->r[0].addr, PUSH_CHUNK);
		if (ret && ret != -EAGAIN)
			drop_task(t, "its pages cannot be read");
		lz.push_bytes += before - left_bytes(t);
		*cursor = (*cursor + k + 1) % lz.n;
		return 1;
	}
	return blocked ? 2 : 0;
}

static int listen_sock(const char *dir)
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
	unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 1)) {
		int err = errno;
		pr_err("lazy", "cannot listen on %s: %s", sa.sun_path, strerror(err));
		close(fd);
		return -err;
	}
	return fd;
}

int cmd_lazy_pages(const struct lazy_opts *o)
{
	int lfd = -1, cfd = -1, ret;
	char sock_path[4200];

	lz.o = o;
	ret = img_store_open(o->dir, false);
	if (ret)
		return ret;
	if (o->ps_address) {
		ret = ps_connect(o->ps_address, o->ps_port, &lz.ps_fd);
		if (ret)
			goto out;
	} else {
		/* the pages served must be the ones the dump wrote */
		Ckpt__Inventory *inv = NULL;
		ret = img_inventory_verify(&inv);
		if (ret)
			goto out;
		ckpt__inventory__free_unpacked(inv, NULL);
	}
	lz.buf = mmap(NULL, PUSH_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (lz.buf == MAP_FAILED) {
		lz.buf = NULL;
		ret = -ENOMEM;
		goto out;
	}
	lfd = listen_sock(o->dir);
	if (lfd < 0) {
		ret = lfd;
		goto out;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/%s", o->dir, LAZY_SOCK_NAME);
	if (o->daemon) {
		pid_t p = fork();
		if (p < 0) {
			ret = -errno;
			goto out;
		}
		if (p > 0)
			_exit(0); /* listening already: restore may connect now */
		setsid();
	}
	if (o->status_fd >= 0) {
		char c = 0;
		if (write(o->status_fd, &c, 1) != 1)
			pr_warn("lazy", "cannot write to --status-fd %d", o->status_fd);
		close(o->status_fd);
	}
	signal(SIGPIPE, SIG_IGN);
	pr_info("lazy", "waiting for `ckpt restore --lazy-pages` on %s", sock_path);
	do
		cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	while (cfd < 0 && errno == EINTR);
	if (cfd < 0) {
		ret = -errno;
		pr_err("lazy", "accept on %s: %s", sock_path, strerror(errno));
		goto out;
	}
	close(lfd);
	lfd = -1;
	unlink(sock_path);

	uint64_t t0 = now_ms();
	size_t cursor = 0;
	/* tests and benchmarks: hold the background push back for a while, so
	 * that faults, forks and mremaps meet memory that is still missing */
	const char *delay_env = getenv("CKPT_LAZY_PUSH_DELAY_MS");
	uint64_t push_from = t0 + (delay_env ? strtoull(delay_env, NULL, 10) : 0);
	struct pollfd *pfd = calloc(MAX_TASKS + 1, sizeof(*pfd));
	if (!pfd) {
		ret = -ENOMEM;
		goto out;
	}
	bool restore_done = false;
	int work = 1;
	ret = 0;
	for (;;) {
		size_t np = 0;
		if (!restore_done)
			pfd[np++] = (struct pollfd){ cfd, POLLIN, 0 };
		for (size_t i = 0; i < lz.n; i++)
			pfd[np++] = (struct pollfd){ lz.t[i]->uffd, POLLIN, 0 };
		bool left = false;
		for (size_t i = 0; i < lz.n; i++)
			left |= lz.t[i]->n > 0;
		if (restore_done && !left)
			break;
		int tmo = !left ? -1 : work == 1 ? 0 : 10;
		uint64_t now = now_ms();
		if (left && now < push_from)
			tmo = (int)(push_from - now);
		int n = poll(pfd, np, tmo);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		if (n == 0) {
			if (work == 2)
				for (size_t i = 0; i < lz.n; i++) {
					lz.t[i]->blocked = false; /* retry */
					if (lz.t[i]->npend)
						retry_faults(lz.t[i]);
				}
			work = push_some(&cursor);
			continue;
		}
		size_t k = 0;
		if (!restore_done) {
			if (pfd[k].revents) {
				int r = control_msg(cfd);
				if (r <= 0) {
					restore_done = true;
					pr_info("lazy", "the restore handed over %zu process(es)%s", lz.n,
						r < 0 ? " and went away" : "");
				}
			}
			k++;
		}
		size_t ntasks = lz.n; /* a fork adds tasks while we go */
		for (size_t i = 0; i < ntasks && k < np; i++, k++) {
			if (!pfd[k].revents)
				continue;
			int r = handle_events(lz.t[i]);
			if (r && r != -EAGAIN)
				drop_task(lz.t[i], "its userfaultfd failed");
			if (lz.t[i]->npend && !lz.t[i]->blocked)
				retry_faults(lz.t[i]);
		}
		work = 1;
	}
	free(pfd);
	if (!ret)
		pr_info("lazy", "all pages served in %llu ms: %llu faults (%llu bytes), %llu bytes pushed, %llu zero pages, %llu forks, %llu remaps, %llu unmaps/removes",
			(unsigned long long)(now_ms() - t0), (unsigned long long)lz.faults,
			(unsigned long long)lz.fault_bytes, (unsigned long long)lz.push_bytes,
			(unsigned long long)lz.zero_pages, (unsigned long long)lz.forks,
			(unsigned long long)lz.remaps, (unsigned long long)lz.removes);
out:
	for (size_t i = 0; i < lz.n; i++) {
		close(lz.t[i]->uffd);
		free(lz.t[i]->r);
		free(lz.t[i]);
	}
	lz.n = 0;
	if (cfd >= 0)
		close(cfd);
	if (lfd >= 0) {
		close(lfd);
		unlink(sock_path);
	}
	if (lz.pages_fd >= 0)
		close(lz.pages_fd);
	if (lz.ps_fd >= 0)
		close(lz.ps_fd);
	if (lz.buf)
		munmap(lz.buf, PUSH_CHUNK);
	img_store_close();
	return ret;
}
