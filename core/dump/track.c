/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Incremental dumps without soft-dirty.
 *
 * Each tracked task gets a userfaultfd made by an injected userfaultfd()
 * (a uffd serves the mm of whoever created it); ckpt takes a copy with
 * pidfd_getfd and closes the task's fd again, so nothing is left in the
 * task.  UFFDIO_API (WP_ASYNC: the kernel itself resolves the write fault
 * and only clears the page's write-protect bit) and UFFDIO_REGISTER with
 * MODE_WP over each private mapping work from outside on that copy.
 * PAGEMAP_SCAN with PM_SCAN_WP_MATCHING write-protects the present pages
 * (only those: protecting holes would fill page tables with markers) and,
 * at the next dump, reports which of them were written since (no
 * write-protect bit) while protecting them again.
 *
 * The uffd must outlive the ckpt run (its last close unregisters and
 * unprotects everything), so a tracking run leaves a holder: a daemon
 * outside the tree that keeps the uffds and a pidfd per task, listening on
 * DIR/track.sock.  The next dump with --prev-images-dir DIR takes the uffds
 * over that socket (SCM_RIGHTS); the holder exits when that connection
 * closes, on `ckpt pre-dump --cleanup -D DIR`, when every tracked task has
 * exited, or after TRACK_TIMEOUT.
 *
 * Through a page server the pages of every dump of the chain are on the
 * other side; the sending -D keeps what the next dump reads here: the page
 * maps and the inventory it sent (image.h, IMG_SENT_INVENTORY).  The
 * server is asked to link and check the parent before the holder hands
 * over, so a refusal leaves the tracking in place.
 *
 * A page is referenced from the parent chain only when it is present now,
 * was not written since the parent, its mapping was registered since the
 * parent (PM_SCAN_CHECK_WPASYNC: a mapping made later, or moved by mremap,
 * is not), the parent holds it, and the parent's mapping there has the
 * same kind, file and offset.  Everything else is saved again.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/userfaultfd.h>

#include "dump.h"
#include "image.h"
#include "kernel.h"
#include "log.h"
#include "pageserver.h"
#include "pagemap.pb-c.h"
#include "pstree.pb-c.h"
#include "track.h"

#define TRACK_SOCK "track.sock"
#define TRACK_PID "track.pid"
#define TRACK_MAGIC 0x4b435254u /* "TRCK" */
#define TRACK_TIMEOUT_S (24 * 3600)
#define UFFD_FEATURES (UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED)

/* One tracked process. */
struct track_ctx {
	pid_t pid, vpid;
	uint64_t start_time;
	int uffd;
	bool inherited; /* from the parent's holder: writes since the parent are known */
};

/* What the parent images hold for one process. */
struct parent_task {
	pid_t vpid;
	Ckpt__Mm *mm;
	struct page_runs pages; /* every page the chain holds, sorted */
};

struct track_msg {
	uint32_t magic;
	int32_t pid, vpid;
	uint32_t n; /* in the first message: how many follow */
	uint64_t start_time;
};

static struct {
	bool on;       /* this run leaves tracking behind (pre-dump, --track-mem) */
	bool predump;
	bool use_parent;
	char link[PATH_MAX];    /* the `parent` link's target */
	char path[PATH_MAX];    /* the parent directory, as we open it */
	uint64_t parent_hash;
	bool parent_sent;       /* the parent went to a page server: only its record is here */
	struct parent_task *pt;
	size_t npt;
	struct track_ctx *c;
	size_t nc;
	int holder;             /* connection to the parent's holder */
} tk = { .holder = -1 };

static struct track_ctx *ctx_of(pid_t pid)
{
	for (size_t i = 0; i < tk.nc; i++)
		if (tk.c[i].pid == pid && tk.c[i].uffd >= 0)
			return &tk.c[i];
	return NULL;
}

static struct parent_task *parent_of(pid_t vpid)
{
	for (size_t i = 0; i < tk.npt; i++)
		if (tk.pt[i].vpid == vpid)
			return &tk.pt[i];
	return NULL;
}

static int add_ctx(const struct track_ctx *c)
{
	struct track_ctx *n = realloc(tk.c, (tk.nc + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	tk.c = n;
	tk.c[tk.nc++] = *c;
	return 0;
}

static int cmp_run(const void *a, const void *b)
{
	const struct page_run *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* ---- the parent images ---- */

static int read_inventory_hash(uint64_t *hash)
{
	int fd = openat(img_store_dirfd(), "inventory.img", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	char *buf = NULL;
	int ret = 0;
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out;
	}
	buf = malloc(st.st_size + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	if (read(fd, buf, st.st_size) != st.st_size) {
		ret = -EIO;
		goto out;
	}
	*hash = img_hash_buf(buf, st.st_size);
out:
	free(buf);
	close(fd);
	return ret;
}

static int load_parent_task(pid_t vpid)
{
	char name[64];
	struct parent_task p = { .vpid = vpid };
	Ckpt__PagemapEntry **pm = NULL;
	size_t npm = 0;

	snprintf(name, sizeof(name), "mm-%d.img", vpid);
	int ret = img_read_one(name, &ckpt__mm__descriptor, (ProtobufCMessage **)&p.mm);
	if (ret)
		return ret;
	snprintf(name, sizeof(name), "pagemap-%d.img", vpid);
	ret = img_load_all(name, &ckpt__pagemap_entry__descriptor, (ProtobufCMessage ***)&pm, &npm,
			   false);
	if (ret)
		goto fail;
	/* not the pages saved in another process's image: restore reads a
	 * parent's pages from this process's own image of it only */
	for (size_t i = 0; i < npm && !ret; i++)
		if (!pm[i]->has_pages_of)
			ret = page_runs_add(&p.pages, pm[i]->vaddr,
					    pm[i]->vaddr + pm[i]->nr_pages * 4096);
	for (size_t i = 0; i < npm; i++)
		protobuf_c_message_free_unpacked(&pm[i]->base, NULL);
	free(pm);
	if (ret)
		goto fail;
	qsort(p.pages.r, p.pages.n, sizeof(*p.pages.r), cmp_run);
	struct parent_task *n = realloc(tk.pt, (tk.npt + 1) * sizeof(*n));
	if (!n) {
		ret = -ENOMEM;
		goto fail;
	}
	tk.pt = n;
	tk.pt[tk.npt++] = p;
	return 0;
fail:
	protobuf_c_message_free_unpacked(&p.mm->base, NULL);
	page_runs_free(&p.pages);
	return ret;
}

/* Verify the parent's images (its own inventory covers its own parent by
 * hash) and keep what the page decisions need. */
static int load_parent(void)
{
	Ckpt__Inventory *inv = NULL;
	Ckpt__PstreeEntry **pst = NULL;
	size_t npst = 0;
	int ret = img_store_open(tk.path, false);
	if (ret)
		return ret;
	/* a dump streamed to a page server left only its record here */
	tk.parent_sent = faccessat(img_store_dirfd(), "inventory.img", F_OK, 0) &&
			 !faccessat(img_store_dirfd(), IMG_SENT_INVENTORY, F_OK, 0);
	if (tk.parent_sent && !ps_client_active()) {
		pr_err("track", "--prev-images-dir %s holds the record of a dump streamed to a page server (its pages are there): dump with --page-server to that server too",
		       tk.path);
		ret = -EINVAL;
		goto out;
	}
	if (tk.parent_sent) {
		ret = img_sent_verify(&inv, &tk.parent_hash); /* its error names the image */
		if (ret)
			goto out;
	} else {
		ret = img_inventory_verify(&inv); /* its error names the parent's image */
		if (ret)
			goto out;
		ret = read_inventory_hash(&tk.parent_hash);
	}
	if (!ret)
		ret = img_load_all("pstree.img", &ckpt__pstree_entry__descriptor,
				   (ProtobufCMessage ***)&pst, &npst, false);
	for (size_t i = 0; i < npst && !ret; i++)
		if (!(pst[i]->has_zombie && pst[i]->zombie))
			ret = load_parent_task(pst[i]->pid);
	if (ret)
		pr_err("track", "cannot read the previous images in %s: %s", tk.path, strerror(-ret));
out:
	for (size_t i = 0; i < npst; i++)
		protobuf_c_message_free_unpacked(&pst[i]->base, NULL);
	free(pst);
	if (inv)
		ckpt__inventory__free_unpacked(inv, NULL);
	img_store_close();
	return ret;
}

/* CRIU takes a relative --prev-images-dir from the images directory; one
 * that only exists relative to the working directory is taken from there. */
static int resolve_prev(const char *dir, const char *prev)
{
	struct stat st;
	if (prev[0] == '/') {
		snprintf(tk.path, sizeof(tk.path), "%s", prev);
		snprintf(tk.link, sizeof(tk.link), "%s", prev);
	} else {
		snprintf(tk.path, sizeof(tk.path), "%s/%s", dir, prev);
		snprintf(tk.link, sizeof(tk.link), "%s", prev);
		if (stat(tk.path, &st) || !S_ISDIR(st.st_mode)) {
			char *abs = realpath(prev, NULL);
			if (!abs) {
				pr_err("track", "--prev-images-dir %s: no such directory (relative to -D %s or to the working directory)",
				       prev, dir);
				return -ENOENT;
			}
			snprintf(tk.path, sizeof(tk.path), "%s", abs);
			snprintf(tk.link, sizeof(tk.link), "%s", abs);
			free(abs);
		}
	}
	if (stat(tk.path, &st) || !S_ISDIR(st.st_mode)) {
		pr_err("track", "--prev-images-dir %s is not a directory", prev);
		return -ENOTDIR;
	}
	return 0;
}

/* ---- the holder's side of the socket ---- */

static int sock_path(int dirfd, char *buf, size_t len)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)buf;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	snprintf(sun->sun_path, sizeof(sun->sun_path), "/proc/self/fd/%d/%s", dirfd, TRACK_SOCK);
	(void)len;
	return sizeof(*sun);
}

static int connect_holder(int dirfd)
{
	struct sockaddr_un sun;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	sock_path(dirfd, (char *)&sun, sizeof(sun));
	if (connect(s, (struct sockaddr *)&sun, sizeof(sun))) {
		int err = -errno;
		close(s);
		return err;
	}
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return s;
}

static int send_msg(int s, const struct track_msg *m, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { (void *)m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fd >= 0) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(s, &mh, MSG_NOSIGNAL) == sizeof(*m) ? 0 : -EIO;
}

static int recv_msg(int s, struct track_msg *m, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	*fd = -1;
	ssize_t r = recvmsg(s, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(c), sizeof(int));
	if (r != sizeof(*m) || m->magic != TRACK_MAGIC) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
		return -EPROTO;
	}
	return 0;
}

struct held {
	struct track_ctx c;
	int pidfd;
};

static void holder_exit(int dirfd, int lsock, dev_t dev, ino_t ino)
{
	struct stat st;
	/* the socket is ours still (not a newer holder's) */
	if (!fstatat(dirfd, TRACK_SOCK, &st, AT_SYMLINK_NOFOLLOW) && st.st_dev == dev &&
	    st.st_ino == ino) {
		unlinkat(dirfd, TRACK_SOCK, 0);
		unlinkat(dirfd, TRACK_PID, 0);
	}
	close(lsock);
	_exit(0);
}

/* Serve one connection; true when the holder's job is over. */
static bool holder_serve(int s, struct held *h, size_t n)
{
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	char cmd[4];
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &cl) || cr.uid != geteuid() ||
	    recv(s, cmd, 4, MSG_WAITALL) != 4) {
		close(s);
		return false;
	}
	if (!memcmp(cmd, "QUIT", 4)) {
		close(s);
		return true;
	}
	if (memcmp(cmd, "TAKE", 4)) {
		close(s);
		return false;
	}
	size_t live = 0;
	for (size_t i = 0; i < n; i++)
		live += h[i].c.uffd >= 0;
	struct track_msg m = { .magic = TRACK_MAGIC, .n = live };
	int ret = send_msg(s, &m, -1);
	for (size_t i = 0; i < n && !ret; i++) {
		if (h[i].c.uffd < 0)
			continue;
		m = (struct track_msg){ TRACK_MAGIC, h[i].c.pid, h[i].c.vpid, 0, h[i].c.start_time };
		ret = send_msg(s, &m, h[i].c.uffd);
	}
	if (ret) {
		close(s);
		return false;
	}
	/* the new owner decides; once it is done (or gone) ours is stale */
	tv.tv_sec = 0;
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (recv(s, cmd, sizeof(cmd), 0) > 0)
		;
	close(s);
	return true;
}

static void holder_main(int dirfd, int lsock, struct held *h, size_t n)
{
	struct stat st;
	dev_t dev = 0;
	ino_t ino = 0;
	if (!fstatat(dirfd, TRACK_SOCK, &st, AT_SYMLINK_NOFOLLOW)) {
		dev = st.st_dev;
		ino = st.st_ino;
	}
	struct pollfd *pf = calloc(n + 1, sizeof(*pf));
	if (!pf)
		holder_exit(dirfd, lsock, dev, ino);
	time_t deadline = time(NULL) + TRACK_TIMEOUT_S;
	for (;;) {
		size_t live = 0;
		pf[0] = (struct pollfd){ .fd = lsock, .events = POLLIN };
		for (size_t i = 0; i < n; i++) {
			pf[i + 1] = (struct pollfd){ .fd = h[i].pidfd, .events = POLLIN };
			live += h[i].pidfd >= 0;
		}
		time_t now = time(NULL);
		if (!live || now >= deadline)
			holder_exit(dirfd, lsock, dev, ino);
		long wait_ms = (deadline - now) * 1000;
		if (wait_ms > 3600 * 1000)
			wait_ms = 3600 * 1000;
		int r = poll(pf, n + 1, (int)wait_ms);
		if (r < 0 && errno != EINTR)
			holder_exit(dirfd, lsock, dev, ino);
		for (size_t i = 0; i < n; i++)
			if (h[i].pidfd >= 0 && pf[i + 1].revents) {
				/* the task is gone: so is what we track */
				close(h[i].pidfd);
				close(h[i].c.uffd);
				h[i].pidfd = h[i].c.uffd = -1;
			}
		if (pf[0].revents & POLLIN) {
			int s = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
			if (s >= 0 && holder_serve(s, h, n))
				holder_exit(dirfd, lsock, dev, ino);
		}
	}
}

/* Close everything but keep[] (the holder must hold nothing else: no log,
 * no image, no pipe of the caller). */
static void close_others(const int *keep, size_t nkeep)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int dfd = dirfd(d), fds[1024];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 1024) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == dfd)
			continue;
		bool k = false;
		for (size_t i = 0; i < nkeep; i++)
			k |= keep[i] == fd;
		if (!k && fd > 2)
			fds[n++] = fd;
	}
	closedir(d);
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

/* Leave a holder for the tracked tasks in the images directory. */
static int spawn_holder(void)
{
	int dirfd = img_store_dirfd(), ret;
	struct sockaddr_un sun;
	size_t n = 0;
	struct held *h = calloc(tk.nc ? tk.nc : 1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < tk.nc; i++) {
		if (tk.c[i].uffd < 0)
			continue;
		int pfd = syscall(SYS_pidfd_open, tk.c[i].pid, 0);
		if (pfd < 0)
			continue; /* gone already */
		h[n].c = tk.c[i];
		h[n++].pidfd = pfd;
	}
	if (!n) {
		free(h);
		pr_warn("track", "no task could be tracked: the next dump will save all memory");
		return 0;
	}
	unlinkat(dirfd, TRACK_SOCK, 0);
	int lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sock_path(dirfd, (char *)&sun, sizeof(sun));
	mode_t old = umask(077);
	if (lsock < 0 || bind(lsock, (struct sockaddr *)&sun, sizeof(sun)) || listen(lsock, 4)) {
		ret = -errno;
		umask(old);
		pr_err("track", "cannot create %s/%s for the tracking holder: %s", img_store_dir(),
		       TRACK_SOCK, strerror(errno));
		goto out;
	}
	umask(old);
	int pp[2];
	if (pipe2(pp, O_CLOEXEC)) {
		ret = -errno;
		goto out;
	}
	pid_t child = fork();
	if (child < 0) {
		ret = -errno;
		close(pp[0]);
		close(pp[1]);
		goto out;
	}
	if (child == 0) {
		/* twice: the holder belongs to no session, tree or ckpt run */
		setsid();
		pid_t holder = fork();
		if (holder != 0) {
			if (write(pp[1], &holder, sizeof(holder)) < 0)
				_exit(1);
			_exit(0);
		}
		int keep[2 * 1024 + 2];
		size_t nk = 0;
		keep[nk++] = dirfd;
		keep[nk++] = lsock;
		for (size_t i = 0; i < n && nk + 2 <= sizeof(keep) / sizeof(keep[0]); i++) {
			keep[nk++] = h[i].c.uffd;
			keep[nk++] = h[i].pidfd;
		}
		close_others(keep, nk);
		int null = open("/dev/null", O_RDWR);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
			if (null > 2)
				close(null);
		}
		if (chdir("/"))
			_exit(1);
		signal(SIGPIPE, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		holder_main(dirfd, lsock, h, n);
		_exit(0);
	}
	close(pp[1]);
	pid_t holder = -1;
	if (read(pp[0], &holder, sizeof(holder)) != sizeof(holder))
		holder = -1;
	close(pp[0]);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	if (holder <= 0) {
		ret = -ECHILD;
		pr_err("track", "the tracking holder did not start");
		unlinkat(dirfd, TRACK_SOCK, 0);
		goto out;
	}
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%d\n", holder);
	int pf = openat(dirfd, TRACK_PID, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (pf >= 0) {
		if (write(pf, buf, len) != len)
			pr_warn("track", "cannot write %s", TRACK_PID);
		close(pf);
	}
	pr_info("track", "memory of %zu process(es) tracked; holder PID %d keeps it for the next dump",
		n, holder);
	ret = 0;
out:
	if (lsock >= 0)
		close(lsock);
	for (size_t i = 0; i < n; i++)
		close(h[i].pidfd);
	free(h);
	return ret;
}

/* Take the uffds from the parent's holder; false when there is none. */
static bool take_from_holder(void)
{
	int dirfd = open(tk.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return false;
	int s = connect_holder(dirfd);
	close(dirfd);
	if (s < 0)
		return false;
	struct track_msg m;
	int fd;
	if (send(s, "TAKE", 4, MSG_NOSIGNAL) != 4 || recv_msg(s, &m, &fd)) {
		close(s);
		return false;
	}
	if (fd >= 0)
		close(fd);
	for (uint32_t i = 0; i < m.n; i++) {
		struct track_msg e;
		if (recv_msg(s, &e, &fd) || fd < 0) {
			close(s);
			return false;
		}
		struct track_ctx c = { e.pid, e.vpid, e.start_time, fd, true };
		struct proc_stat st;
		if (proc_read_stat(e.pid, &st) || st.start_time != e.start_time || add_ctx(&c)) {
			close(fd); /* exited, or its PID was reused */
			continue;
		}
	}
	tk.holder = s;
	return true;
}

/* ---- the dump's side ---- */

int track_begin(const struct dump_opts *o)
{
	tk.predump = o->pre_dump;
	tk.on = o->pre_dump || o->track_mem;
	/* streamed: the next dump of the chain reads this one's record here */
	img_store_keep_sent(tk.on && ps_client_active());
	if (!o->prev_dir)
		return 0;
	int ret = resolve_prev(o->dir, o->prev_dir);
	if (ret)
		return ret;
	ret = load_parent();
	if (ret)
		return ret;
	/* the pages it leaves out must be on the other side too: asked before
	 * the uffds are taken, so a refusal leaves the tracking as it was */
	if (ps_client_active()) {
		ret = ps_client_parent(tk.link, tk.parent_hash);
		if (ret)
			return ret;
	}
	if (!take_from_holder()) {
		pr_warn("track", "the memory of the tree was not tracked since %s (no holder: it timed out, was cleaned up, or the previous run did not track): this dump saves all memory",
			tk.path);
		return 0;
	}
	tk.use_parent = true;
	return 0;
}

int track_link_parent(void)
{
	int dirfd = img_store_dirfd();
	unlinkat(dirfd, "parent", 0);
	if (!tk.use_parent)
		return 0;
	if (symlinkat(tk.link, dirfd, "parent")) {
		int err = -errno;
		pr_err("track", "cannot create the parent link in %s: %s", img_store_dir(),
		       strerror(errno));
		return err;
	}
	return 0;
}

bool track_is_predump(void)
{
	return tk.predump;
}

int track_task(struct dtask *t)
{
	struct proc_stat st;
	if (!tk.on)
		return 0;
	int ret = proc_read_stat(t->pid, &st);
	if (ret)
		return ret;
	struct track_ctx *c = ctx_of(t->pid);
	if (c && c->start_time == st.start_time)
		return 0;
	long fd;
	ret = inject_call(&t->in[0], SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY,
			  0, 0, 0, 0, 0, &fd);
	if (ret)
		return ret;
	if (fd < 0) {
		pr_warn("track", "PID %d: no userfaultfd in it (%s): its memory is not tracked and the next dump saves all of it",
			t->pid, strerror((int)-fd));
		return 0;
	}
	int uffd = -1, pidfd = syscall(SYS_pidfd_open, t->pid, 0);
	if (pidfd >= 0) {
		uffd = syscall(SYS_pidfd_getfd, pidfd, (int)fd, 0);
		close(pidfd);
	}
	int gerr = errno;
	long r;
	/* the task keeps no trace: its fd goes at once */
	ret = inject_call(&t->in[0], SYS_close, fd, 0, 0, 0, 0, 0, &r);
	if (uffd < 0) {
		pr_warn("track", "PID %d: cannot take its userfaultfd: %s; not tracked", t->pid,
			strerror(gerr));
		return ret;
	}
	fcntl(uffd, F_SETFD, FD_CLOEXEC);
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURES };
	if (ioctl(uffd, UFFDIO_API, &api)) {
		pr_warn("track", "PID %d: this kernel has no async write-protect userfaultfd (%s); not tracked",
			t->pid, strerror(errno));
		close(uffd);
		return ret;
	}
	struct track_ctx nc = { t->pid, t->vpid, st.start_time, uffd, false };
	if (c) {
		close(c->uffd); /* a reused PID: that uffd served another task */
		*c = nc;
		return ret;
	}
	int r2 = add_ctx(&nc);
	if (r2)
		close(uffd);
	return ret ? ret : r2;
}

/* Is [start, end) registered for async write-protect? */
static int wp_registered(int pagemap_fd, uint64_t start, uint64_t end)
{
	struct page_region vec[1];
	struct pm_scan_arg a = { .size = sizeof(a), .flags = PM_SCAN_CHECK_WPASYNC,
				 .start = start, .end = end, .vec = (uint64_t)(uintptr_t)vec,
				 .vec_len = 1, .max_pages = 1,
				 .category_anyof_mask = PAGE_IS_PRESENT,
				 .return_mask = PAGE_IS_PRESENT };
	if (ioctl(pagemap_fd, PAGEMAP_SCAN, &a) >= 0)
		return 1;
	return errno == EPERM ? 0 : -errno;
}

static bool same_mapping(const Ckpt__Vma *p, const Ckpt__Vma *m, const struct proc_vma *v)
{
	if (p->kind != m->kind || (p->flags & MAP_SHARED) || p->has_shmem_id || p->plugin)
		return false;
	if (!p->path != !v->name || (p->path && strcmp(p->path, v->name)))
		return false;
	/* a file: the same offset at every address.  (maps shows 0 for anonymous
	 * memory; a moved one loses its registration and protection, so it
	 * is never taken for the parent's) */
	return p->kind == CKPT__VMA_KIND__VMA_ANON || p->pgoff - p->start == v->pgoff - v->start;
}

/* The first stretch of [at, end) the parent holds for this mapping. */
static bool parent_span(const struct parent_task *pt, const Ckpt__Vma *m, const struct proc_vma *v,
			uint64_t at, uint64_t end, uint64_t *ps, uint64_t *pe)
{
	const Ckpt__Mm *mm = pt->mm;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Ckpt__Vma *p = mm->vmas[i];
		if (p->end <= at || p->start >= end || !same_mapping(p, m, v))
			continue;
		uint64_t ws = p->start > at ? p->start : at, we = p->end < end ? p->end : end;
		/* first page run ending after ws */
		size_t lo = 0, hi = pt->pages.n;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (pt->pages.r[mid].end <= ws)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < pt->pages.n && pt->pages.r[lo].start < we) {
			*ps = pt->pages.r[lo].start > ws ? pt->pages.r[lo].start : ws;
			*pe = pt->pages.r[lo].end < we ? pt->pages.r[lo].end : we;
			return true;
		}
	}
	return false;
}

static int split_parent(const struct parent_task *pt, const Ckpt__Vma *m,
			const struct proc_vma *v, uint64_t s, uint64_t e, struct page_runs *save,
			struct page_runs *parent)
{
	uint64_t ps, pe;
	int ret = 0;
	while (s < e && !ret) {
		if (!parent_span(pt, m, v, s, e, &ps, &pe))
			return page_runs_add(save, s, e);
		if (ps > s)
			ret = page_runs_add(save, s, ps);
		if (!ret)
			ret = page_runs_add(parent, ps, pe);
		s = pe;
	}
	return ret;
}

int track_vma_pages(pid_t pid, pid_t vpid, const struct proc_vma *v, const Ckpt__Vma *m,
		    enum pagescan_mode mode, int pagemap_fd, struct page_runs *save,
		    struct page_runs *parent)
{
	struct track_ctx *c = ctx_of(pid);
	if (!c || v->shared || m->plugin || (mode != SCAN_ANON && mode != SCAN_PRIVATE_COW))
		return -ENOTSUP;
	int reg = wp_registered(pagemap_fd, v->start, v->end);
	if (reg < 0)
		return -ENOTSUP;
	/* Registering again with our uffd changes nothing where it is ours
	 * already; EBUSY: the task registered it with a uffd of its own, whose
	 * write-protect state is none of ours to read or reset. */
	struct uffdio_register r = { .range = { v->start, v->end - v->start },
				     .mode = UFFDIO_REGISTER_MODE_WP };
	if (ioctl(c->uffd, UFFDIO_REGISTER, &r)) {
		pr_debug("track", "PID %d: mapping %#llx-%#llx not tracked: %s", pid,
			 (unsigned long long)v->start, (unsigned long long)v->end, strerror(errno));
		return -ENOTSUP;
	}
	/* ours since the parent: its writes since then are known */
	const struct parent_task *pt = tk.use_parent && c->inherited ? parent_of(vpid) : NULL;
	bool known = reg && pt;

	struct page_region vec[512];
	struct pm_scan_arg a;
	uint64_t covered = v->start;
	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	/* protect again what is reported: the next dump sees the writes after this one */
	a.flags = PM_SCAN_CHECK_WPASYNC | (tk.on ? PM_SCAN_WP_MATCHING : 0);
	a.vec = (uint64_t)(uintptr_t)vec;
	a.vec_len = sizeof(vec) / sizeof(vec[0]);
	a.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
	a.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_WRITTEN | PAGE_IS_FILE |
			PAGE_IS_PFNZERO;
	uint64_t skip = mode == SCAN_ANON ? PAGE_IS_PFNZERO : PAGE_IS_FILE | PAGE_IS_PFNZERO;
	while (covered < v->end) {
		uint64_t before = covered;
		a.start = covered;
		a.end = v->end;
		a.walk_end = 0;
		long n = ioctl(pagemap_fd, PAGEMAP_SCAN, &a);
		if (n < 0) {
			int err = -errno;
			pr_err("track", "PID %d: PAGEMAP_SCAN of %#llx-%#llx failed: %s", pid,
			       (unsigned long long)v->start, (unsigned long long)v->end,
			       strerror(errno));
			return err;
		}
		for (long i = 0; i < n; i++) {
			uint64_t s = vec[i].start, e = vec[i].end;
			if (e <= covered)
				continue;
			if (s < covered)
				s = covered;
			covered = e;
			if (vec[i].categories & skip)
				continue;
			int ret = known && !(vec[i].categories & PAGE_IS_WRITTEN)
					  ? split_parent(pt, m, v, s, e, save, parent)
					  : page_runs_add(save, s, e);
			if (ret)
				return ret;
		}
		if (a.walk_end > covered)
			covered = a.walk_end;
		if (covered <= before)
			break;
	}
	return 0;
}

void track_inventory(Ckpt__Inventory *inv)
{
	if (tk.predump) {
		inv->has_pre_dump = 1;
		inv->pre_dump = true;
	}
	if (tk.use_parent) {
		inv->has_format_version = 1;
		inv->format_version = IMG_FORMAT_VERSION_CHAIN;
		inv->has_parent_inventory_xxh3 = 1;
		inv->parent_inventory_xxh3 = tk.parent_hash;
	}
}

int track_commit(void)
{
	if (!tk.on)
		return 0;
	return spawn_holder();
}

void track_end(void)
{
	for (size_t i = 0; i < tk.nc; i++)
		if (tk.c[i].uffd >= 0)
			close(tk.c[i].uffd);
	free(tk.c);
	tk.c = NULL;
	tk.nc = 0;
	if (tk.holder >= 0)
		close(tk.holder); /* the parent's holder exits now */
	tk.holder = -1;
	for (size_t i = 0; i < tk.npt; i++) {
		protobuf_c_message_free_unpacked(&tk.pt[i].mm->base, NULL);
		page_runs_free(&tk.pt[i].pages);
	}
	free(tk.pt);
	tk.pt = NULL;
	tk.npt = 0;
	tk.use_parent = false;
}

int track_cleanup(const char *dir)
{
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		pr_err("track", "cannot open %s: %s", dir, strerror(errno));
		return -errno;
	}
	int s = connect_holder(dirfd);
	if (s < 0) {
		close(dirfd);
		pr_info("track", "no tracking holder in %s: nothing to clean up", dir);
		return 0;
	}
	int ret = send(s, "QUIT", 4, MSG_NOSIGNAL) == 4 ? 0 : -EIO;
	/* wait until it is gone */
	char c;
	while (!ret && recv(s, &c, 1, 0) > 0)
		;
	close(s);
	for (int i = 0; i < 100 && !faccessat(dirfd, TRACK_SOCK, F_OK, AT_SYMLINK_NOFOLLOW); i++)
		usleep(10000);
	close(dirfd);
	if (ret)
		pr_err("track", "cannot reach the tracking holder in %s", dir);
	else
		pr_info("track", "tracking of %s stopped", dir);
	return ret;
}
