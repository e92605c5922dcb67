// SPDX-License-Identifier: GPL-2.0-only
/*
 * fs plugin: descriptor, init/fini, lifecycle hooks and the dispatch of the
 * fd hooks to the resource classes (regfile.c, chrdev.c, fifo.c, pipe.c,
 * eventfd.c, signalfd.c, timerfd.c, epoll.c, inotify.c, memfd.c, tty.c,
 * ghost.c, fanotify.c).
 *
 * Dump: the core calls the fd dump hook once per open file; the class saves
 * one record to its image (created at its first object).  dump_finish
 * closes the images.
 * Restore: restore_start reads every image into memory (sorted by id); the
 * fd restore hook looks the object up and creates it again; restore_in_task
 * (inside the new task) sets up what is keyed by fd numbers (epoll
 * interest lists, controlling terminals); restore_resume lets go of the
 * FIFOs and the pipe ends / memfds / pty masters kept while restoring;
 * restore_finish frees.
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "mnt.h"

static const char *const fs_class_names[] = {
	[FS_REGFILE] = "regfile",
	[FS_CHRDEV] = "chrdev",
	[FS_FIFO] = "fifo",
	[FS_PIPE] = "pipe",
	[FS_EVENTFD] = "eventfd",
	[FS_SIGNALFD] = "signalfd",
	[FS_TIMERFD] = "timerfd",
	[FS_EPOLL] = "epoll",
	[FS_INOTIFY] = "inotify",
	[FS_MEMFD] = "memfd",
	[FS_TTY] = "tty",
	[FS_GHOST] = "ghost",
	[FS_FANOTIFY] = "fanotify",
	[FS_NCLASSES] = NULL,
};

static const struct fs_class *const fs_classes[FS_NCLASSES] = {
	[FS_REGFILE] = &fs_regfile_class,
	[FS_CHRDEV] = &fs_chrdev_class,
	[FS_FIFO] = &fs_fifo_class,
	[FS_PIPE] = &fs_pipe_class,
	[FS_EVENTFD] = &fs_eventfd_class,
	[FS_SIGNALFD] = &fs_signalfd_class,
	[FS_TIMERFD] = &fs_timerfd_class,
	[FS_EPOLL] = &fs_epoll_class,
	[FS_INOTIFY] = &fs_inotify_class,
	[FS_MEMFD] = &fs_memfd_class,
	[FS_TTY] = &fs_tty_class,
	[FS_GHOST] = &fs_ghost_class,
	[FS_FANOTIFY] = &fs_fanotify_class,
};

/* ---- helpers shared by the classes --------------------------------------- */

unsigned int fs_open_flags(unsigned int saved)
{
	if (saved & O_PATH)
		return O_PATH | (saved & O_NOFOLLOW) | O_CLOEXEC;
	return (saved & FS_OPEN_FLAGS) | O_CLOEXEC;
}

int fs_fixup_flags(struct fs_priv *p, int fd, unsigned int saved, const char *path)
{
	int fl;

	if (!(saved & O_ASYNC) || (saved & O_PATH))
		return 0;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_ASYNC) < 0) {
		int e = errno;

		fs_err(p, "restore: cannot set O_ASYNC on %s: %s", path, strerror(e));
		return fs_errno(e);
	}
	return 0;
}

int fs_set_fl(struct fs_priv *p, int fd, unsigned int saved, const char *what)
{
	const unsigned int settable = O_APPEND | O_ASYNC | O_NONBLOCK | O_NOATIME | O_DIRECT;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		goto err;
	if (((unsigned int)fl & settable) == (saved & settable))
		return 0;
	if (fcntl(fd, F_SETFL, (int)(((unsigned int)fl & ~settable) | (saved & settable))) < 0)
		goto err;
	return 0;
err:
	{
		int e = errno;

		fs_err(p, "restore: cannot set the file status flags 0%o on %s: %s",
		       saved & settable, what, strerror(e));
		return fs_errno(e);
	}
}

static int put_run(struct fs_priv *p, int fd, const ProtobufCBinaryData *data, uint64_t offset,
		   uint64_t size, const char *what)
{
	size_t off = 0;

	if (offset + data->len > size) {
		fs_err(p, "restore: %s: a run at %" PRIu64 " of %zu bytes lies beyond its size %" PRIu64
			  "; the images are damaged",
		       what, offset, data->len, size);
		return -EBADMSG;
	}
	while (off < data->len) {
		ssize_t n = pwrite(fd, data->data + off, data->len - off, (off_t)(offset + off));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			fs_err(p, "restore: %s: cannot write its contents back: %s", what, strerror(e));
			return fs_errno(e);
		}
		off += (size_t)n;
	}
	return 0;
}

int fs_fill_runs(struct fs_priv *p, const char *img_name, const ProtobufCMessageDescriptor *desc,
		 fs_run_match match, const void *key, int fd, uint64_t size, const char *what)
{
	struct ckpt_img *img;
	uint64_t nrec = 0;
	int ret = 0;

	img = p->host->img_open(img_name, desc->name);
	if (!img) {
		int e = errno;

		fs_err(p, "restore: %s: cannot open image %s: %s; the images are incomplete", what,
		       img_name, strerror(e));
		return fs_errno(e);
	}
	for (;;) {
		const ProtobufCBinaryData *data;
		ProtobufCMessage *m;
		uint64_t offset;
		void *rec = NULL;
		size_t len = 0;
		int rr = p->host->img_read(img, &rec, &len);

		if (rr == 0)
			break;
		if (rr < 0) {
			fs_err(p, "restore: cannot read image %s: %s", img_name, strerror(-rr));
			ret = fs_errno(-rr);
			break;
		}
		nrec++;
		m = protobuf_c_message_unpack(desc, NULL, len, rec);
		free(rec);
		if (!m) {
			fs_err(p, "restore: image %s: record %" PRIu64 " is damaged", img_name, nrec);
			ret = -EBADMSG;
			break;
		}
		if (match(m, key, &offset, &data))
			ret = put_run(p, fd, data, offset, size, what);
		protobuf_c_message_free_unpacked(m, NULL);
		if (ret)
			break;
	}
	p->host->img_close(img);
	return ret;
}

int fs_read_fdinfo(struct fs_priv *p, int fd, const char *what, char **out)
{
	char path[64], *buf = NULL;
	size_t cap = 4096, len = 0;
	int pfd, e;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	pfd = open(path, O_RDONLY | O_CLOEXEC);
	if (pfd < 0)
		goto err;
	for (;;) {
		ssize_t n;

		if (!buf || len + 1 >= cap) {
			char *nb;

			if (buf)
				cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				errno = ENOMEM;
				goto err;
			}
			buf = nb;
		}
		n = read(pfd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto err;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(pfd);
	buf[len] = 0;
	*out = buf;
	return 0;
err:
	e = errno;
	if (pfd >= 0)
		close(pfd);
	free(buf);
	fs_err(p, "%s: cannot read its fdinfo: %s", what, strerror(e));
	return fs_errno(e);
}

int fs_seen_once(struct fs_priv *p, int cls, uint64_t key, uint64_t key2, bool *seen)
{
	for (size_t i = 0; i < p->nseen; i++) {
		if (p->seen[i].cls == cls && p->seen[i].key == key && p->seen[i].key2 == key2) {
			*seen = true;
			return 0;
		}
	}
	if (p->nseen == p->seen_cap) {
		size_t ncap = p->seen_cap ? p->seen_cap * 2 : 16;
		struct fs_seen *n = realloc(p->seen, ncap * sizeof(*n));

		if (!n) {
			fs_err(p, "dump: out of memory");
			return -ENOMEM;
		}
		p->seen = n;
		p->seen_cap = ncap;
	}
	p->seen[p->nseen++] = (struct fs_seen){ cls, key, key2 };
	*seen = false;
	return 0;
}

struct fs_keep *fs_keep_find(struct fs_priv *p, int cls, uint64_t key)
{
	for (size_t i = 0; i < p->nkeeps; i++)
		if (p->keeps[i].cls == cls && p->keeps[i].key == key)
			return &p->keeps[i];
	return NULL;
}

struct fs_keep *fs_keep_add(struct fs_priv *p, int cls, uint64_t key, int fd0, int fd1)
{
	struct fs_keep *k;

	if (p->nkeeps == p->keeps_cap) {
		size_t ncap = p->keeps_cap ? p->keeps_cap * 2 : 8;

		k = realloc(p->keeps, ncap * sizeof(*k));
		if (!k) {
			if (fd0 >= 0)
				close(fd0);
			if (fd1 >= 0)
				close(fd1);
			fs_err(p, "restore: out of memory");
			return NULL;
		}
		p->keeps = k;
		p->keeps_cap = ncap;
	}
	k = &p->keeps[p->nkeeps++];
	*k = (struct fs_keep){ .cls = cls, .key = key, .fd = { fd0, fd1 } };
	return k;
}

static int add_pid(struct fs_priv *p, pid_t pid, size_t *cap)
{
	for (size_t i = 0; i < p->ntree_pids; i++)
		if (p->tree_pids[i] == pid)
			return 0;
	if (p->ntree_pids == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		pid_t *n = realloc(p->tree_pids, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->tree_pids = n;
		*cap = ncap;
	}
	p->tree_pids[p->ntree_pids++] = pid;
	return 0;
}

int fs_tree_pids(struct fs_priv *p, const pid_t **pids, size_t *n)
{
	size_t cap = 0;

	if (!p->tree_pids) {
		if (p->tree_root <= 0) {
			fs_err(p, "dump: the dumped tree is not known (no tree_frozen call)");
			return -EINVAL;
		}
		if (add_pid(p, p->tree_root, &cap))
			goto nomem;
		/* breadth first over every thread's children */
		for (size_t i = 0; i < p->ntree_pids; i++) {
			char path[96];
			struct dirent *de;
			DIR *d;

			snprintf(path, sizeof(path), "/proc/%d/task", (int)p->tree_pids[i]);
			d = opendir(path);
			if (!d)
				continue; /* a zombie */
			while ((de = readdir(d))) {
				char cpath[128], *buf = NULL, *q, *end;
				size_t bcap = 0;
				FILE *f;

				if (de->d_name[0] == '.')
					continue;
				snprintf(cpath, sizeof(cpath), "%s/%.20s/children", path, de->d_name);
				f = fopen(cpath, "re");
				if (!f)
					continue;
				if (getline(&buf, &bcap, f) > 0) {
					for (q = buf;; q = end) {
						long c = strtol(q, &end, 10);

						if (end == q)
							break;
						if (c > 0 && add_pid(p, (pid_t)c, &cap)) {
							free(buf);
							fclose(f);
							closedir(d);
							goto nomem;
						}
					}
				}
				free(buf);
				fclose(f);
			}
			closedir(d);
		}
	}
	*pids = p->tree_pids;
	*n = p->ntree_pids;
	return 0;
nomem:
	fs_err(p, "dump: out of memory");
	return -ENOMEM;
}

pid_t fs_ns_pid(pid_t pid)
{
	char path[64], line[256];
	pid_t v = pid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return pid;
	while (fgets(line, sizeof(line), f)) {
		char *q, *end;

		if (strncmp(line, "NSpid:", 6))
			continue;
		/* the last one is the innermost namespace's */
		for (q = line + 6;; q = end) {
			long x = strtol(q, &end, 10);

			if (end == q)
				break;
			v = (pid_t)x;
		}
		break;
	}
	fclose(f);
	return v;
}

int fs_reopen(int fd, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, flags | O_CLOEXEC);
}

bool fs_link_deleted(const char *link, const struct stat *st, size_t *len)
{
	static const char suffix[] = " (deleted)";
	const size_t sl = sizeof(suffix) - 1;
	size_t l = strlen(link);
	struct stat now;

	*len = l;
	if (l > sl && !strcmp(link + l - sl, suffix)) {
		/* A file may really be named "x (deleted)". */
		if (stat(link, &now) == 0 && now.st_dev == st->st_dev &&
		    now.st_ino == st->st_ino)
			return false;
		*len = l - sl;
		return true;
	}
	return st->st_nlink == 0;
}

int fs_save(struct fs_priv *p, enum fs_class_id cls, const ProtobufCMessage *msg)
{
	const struct fs_class *c = fs_classes[cls];
	int ret;

	if (!p->img[cls]) {
		p->img[cls] = p->host->img_create(c->img_name, c->desc->name);
		if (!p->img[cls]) {
			int e = errno;

			fs_err(p, "dump: cannot create image %s: %s", c->img_name, strerror(e));
			return fs_errno(e);
		}
	}

	ret = p->host->img_write_msg(p->img[cls], msg);
	if (ret < 0) {
		fs_err(p, "dump: cannot write image %s: %s", c->img_name, strerror(-ret));
		return fs_errno(-ret);
	}
	return 0;
}

static bool parse_bool(const char *s, bool def)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	size_t i;

	if (!s)
		return def;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!strcasecmp(s, yes[i]))
			return true;
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (!strcasecmp(s, no[i]))
			return false;
	return def;
}

static void read_config(struct fs_priv *p)
{
	const char *v = NULL;

	if (p->host->config_get)
		v = p->host->config_get(FS_NAME, "skip_file_check");
	p->skip_file_check = parse_bool(v, false);
	v = NULL;
	if (p->host->config_get)
		v = p->host->config_get(FS_NAME, "file_validation");
	p->file_validation = v;
	if (v && !strcmp(v, "none"))
		p->skip_file_check = true;
	v = NULL;
	if (p->host->config_get)
		v = p->host->config_get(FS_NAME, "shell_job");
	p->shell_job = parse_bool(v, false);
}

/* ---- init / fini ----------------------------------------------------------- */

static void forget_seen(struct fs_priv *p)
{
	free(p->seen);
	p->seen = NULL;
	p->nseen = p->seen_cap = 0;
	free(p->tree_pids);
	p->tree_pids = NULL;
	p->ntree_pids = 0;
	free(p->pipe_sides);
	p->pipe_sides = NULL;
	p->npipe_sides = 0;
	p->pipe_sides_known = false;
	fs_tty_forget(p);
}

static void drop_images(struct fs_priv *p)
{
	for (int i = 0; i < FS_NCLASSES; i++) {
		if (p->img[i])
			p->host->img_close(p->img[i]);
		p->img[i] = NULL;
	}
	if (p->memfd_data)
		p->host->img_close(p->memfd_data);
	p->memfd_data = NULL;
	if (p->ghost_data)
		p->host->img_close(p->ghost_data);
	p->ghost_data = NULL;
	forget_seen(p);
}

static void release_keeps(struct fs_priv *p)
{
	for (size_t i = 0; i < p->nkeeps; i++)
		for (int j = 0; j < 2; j++)
			if (p->keeps[i].fd[j] >= 0)
				close(p->keeps[i].fd[j]);
	free(p->keeps);
	p->keeps = NULL;
	p->nkeeps = p->keeps_cap = 0;
}

static void release_holds(struct fs_priv *p)
{
	for (size_t i = 0; i < p->nholds; i++)
		close(p->holds[i].fd);
	free(p->holds);
	p->holds = NULL;
	p->nholds = p->holds_cap = 0;
}

static void free_tables(struct fs_priv *p)
{
	for (int i = 0; i < FS_NCLASSES; i++) {
		struct fs_table *t = &p->tables[i];

		for (size_t j = 0; j < t->n; j++)
			protobuf_c_message_free_unpacked(t->recs[j], NULL);
		free(t->recs);
		t->recs = NULL;
		t->n = 0;
	}
	fs_locks_forget(p); /* points into the tables */
}

static int fs_init(const struct ckpt_host *host, void **priv)
{
	struct fs_priv *p;

	if (!host || host->version < 3 /* img_load, img_write_msg */ || !host->img_load ||
	    !host->img_write_msg || !host->log || !host->img_create ||
	    !host->img_open || !host->img_write || !host->img_read || !host->img_close)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->host = host;
	read_config(p);
	*priv = p;
	return 0;
}

static void fs_fini(void *priv)
{
	struct fs_priv *p = priv;

	if (!p)
		return;
	drop_images(p);
	release_holds(p);
	release_keeps(p);
	free_tables(p);
	free(p->in_task_done);
	mnt_restore_free(p);
	free(p);
}

/* ---- lifecycle --------------------------------------------------------------- */

static int fs_dump_start(void *priv, pid_t root)
{
	struct fs_priv *p = priv;

	drop_images(p); /* left from an earlier dump that never finished */
	read_config(p);
	p->tree_root = root;
	return 0;
}

static int fs_tree_frozen(void *priv, pid_t root)
{
	struct fs_priv *p = priv;

	/* walked again when needed, now that the tree is stopped */
	forget_seen(p);
	p->tree_root = root;
	return 0;
}

static int fs_dump_finish(void *priv, int ok)
{
	struct fs_priv *p = priv;
	int ret = 0;

	for (int i = 0; i < FS_NCLASSES; i++) {
		int r;

		if (fs_classes[i]->dump_finish) {
			r = fs_classes[i]->dump_finish(p, ok);
			if (ok && r < 0 && !ret)
				ret = r;
		}
		if (!p->img[i])
			continue;
		r = p->host->img_close(p->img[i]);
		p->img[i] = NULL;
		if (ok && r < 0 && !ret) {
			fs_err(p, "dump: cannot finish image %s: %s", fs_classes[i]->img_name,
			       strerror(-r));
			ret = fs_errno(-r);
		}
	}
	forget_seen(p);
	return ret;
}

static int cmp_rec_id(const void *a, const void *b, void *arg)
{
	const struct fs_class *c = arg;
	uint32_t x = c->rec_id(*(ProtobufCMessage *const *)a);
	uint32_t y = c->rec_id(*(ProtobufCMessage *const *)b);

	return x < y ? -1 : x > y;
}

static int load_table(struct fs_priv *p, enum fs_class_id cls)
{
	const struct fs_class *c = fs_classes[cls];
	struct fs_table *t = &p->tables[cls];
	int ret;

	/* the host reads and unpacks them; a missing image: no object of this kind */
	ret = p->host->img_load(c->img_name, c->desc, &t->recs, &t->n);
	if (ret)
		return fs_errno(-ret);
	if (t->n)
		qsort_r(t->recs, t->n, sizeof(*t->recs), cmp_rec_id, (void *)c);
	for (size_t i = 1; i < t->n; i++) {
		if (c->rec_id(t->recs[i]) == c->rec_id(t->recs[i - 1])) {
			fs_err(p, "restore: image %s holds object %u twice; the images are damaged",
			       c->img_name, c->rec_id(t->recs[i]));
			return -EBADMSG;
		}
	}
	fs_debug(p, "restore: %zu %s object(s) from %s", t->n, c->name, c->img_name);
	return 0;
}

static int fs_restore_start(void *priv)
{
	struct fs_priv *p = priv;
	int ret;

	free_tables(p);
	release_holds(p);
	release_keeps(p);
	p->nin_task_done = 0;
	read_config(p);
	if (p->file_validation && strcmp(p->file_validation, "filesize") &&
	    strcmp(p->file_validation, "none")) {
		fs_err(p, "restore: file_validation '%s' is not known; use filesize (the default) or "
			  "none (--file-validation=none)",
		       p->file_validation);
		return -EINVAL;
	}
	for (int i = 0; i < FS_NCLASSES; i++) {
		ret = load_table(p, i);
		if (ret) {
			free_tables(p);
			return ret;
		}
	}
	return 0;
}

static int fs_restore_resume(void *priv, pid_t root)
{
	struct fs_priv *p = priv;

	(void)root;
	/* a proc of the tree's own pid namespace, now that it exists */
	int ret = mnt_restore_resume(p);
	if (ret)
		return ret;
	/* ptys: locked and exclusive again, now that every slave is open */
	fs_tty_restore_resume(p);
	/* Every fd is in its task now; FIFO ends see the true reader and
	 * writer counts from here on, and a pipe whose write end the task
	 * closed sees EOF. */
	release_holds(p);
	release_keeps(p);
	/* POSIX locks of processes that map their file: only now that the
	 * core closed its mapping fds in them */
	return fs_locks_restore_late(p);
}

static int fs_restore_finish(void *priv, int ok)
{
	struct fs_priv *p = priv;

	(void)ok;
	release_holds(p);
	release_keeps(p);
	free_tables(p);
	mnt_restore_free(p);
	return 0;
}

/* The tree's own mount namespace: mnt.c */
static int fs_dump_namespace(void *priv, pid_t root, const char *kind)
{
	if (strcmp(kind, "mnt"))
		return CKPT_NOT_MINE;
	return mnt_dump_namespace(priv, root);
}

static int fs_restore_namespace(void *priv, const char *kind, int *fd)
{
	if (strcmp(kind, "mnt"))
		return -EINVAL;
	return mnt_restore_namespace(priv, fd);
}

static int fs_check(void *priv, char *msg, size_t len)
{
	(void)priv;
	snprintf(msg, len, "regular files, character devices (null, zero, full, random, "
			   "urandom), fifos and pipes with their data, eventfd, signalfd, timerfd, "
			   "epoll, inotify, fanotify, memfd, deleted (ghost) files, file locks, ptys and "
			   "terminals (--shell-job), mount namespaces");
	return 0;
}

/* ---- fd hooks -------------------------------------------------------------- */

static int fs_fd_dump(void *priv, const struct ckpt_fd_info *fd, uint32_t obj_id,
		      const char **klass)
{
	struct fs_priv *p = priv;
	mode_t m = fd->st.st_mode;
	enum fs_class_id cls;
	int ret;

	if (!fd->link)
		return CKPT_NOT_MINE;
	if (S_ISREG(m) && fd->st.st_nlink == 0 && !strncmp(fd->link, "/memfd:", 7))
		cls = FS_MEMFD;
	else if (fs_is_ghost(fd->link, &fd->st))
		cls = FS_GHOST;
	else if (S_ISREG(m))
		cls = FS_REGFILE;
	else if (S_ISCHR(m) && fs_tty_claims(p, fd))
		cls = FS_TTY;
	else if (S_ISCHR(m))
		cls = FS_CHRDEV;
	else if (S_ISFIFO(m) && !strncmp(fd->link, "pipe:[", 6))
		cls = FS_PIPE;
	else if (S_ISFIFO(m))
		cls = FS_FIFO;
	else if (!strcmp(fd->link, "anon_inode:[eventfd]"))
		cls = FS_EVENTFD;
	else if (!strcmp(fd->link, "anon_inode:[signalfd]"))
		cls = FS_SIGNALFD;
	else if (!strcmp(fd->link, "anon_inode:[timerfd]"))
		cls = FS_TIMERFD;
	else if (!strcmp(fd->link, "anon_inode:[eventpoll]"))
		cls = FS_EPOLL;
	else if (!strcmp(fd->link, "anon_inode:inotify"))
		cls = FS_INOTIFY;
	else if (!strcmp(fd->link, "anon_inode:[fanotify]"))
		cls = FS_FANOTIFY;
	else
		return CKPT_NOT_MINE;

	ret = fs_classes[cls]->dump(p, fd, obj_id);
	if (ret == 0)
		*klass = fs_class_names[cls];
	return ret;
}

static const ProtobufCMessage *find_rec(const struct fs_table *t, const struct fs_class *c,
					uint32_t id)
{
	if (!t->n)
		return NULL;
	size_t lo = 0, hi = t->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t v = c->rec_id(t->recs[mid]);

		if (v == id)
			return t->recs[mid];
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const ProtobufCMessage *fs_find_rec(struct fs_priv *p, enum fs_class_id cls, uint32_t id)
{
	return find_rec(&p->tables[cls], fs_classes[cls], id);
}

static int class_of(const char *klass)
{
	int cls;

	for (cls = 0; cls < FS_NCLASSES; cls++)
		if (klass && !strcmp(klass, fs_class_names[cls]))
			break;
	return cls;
}

static int fs_fd_restore(void *priv, const char *klass, uint32_t obj_id, int *fd)
{
	struct fs_priv *p = priv;
	const ProtobufCMessage *rec;
	const struct fs_class *c;
	int cls = class_of(klass);

	if (cls == FS_NCLASSES) {
		fs_err(p, "restore: object %u has class '%s', which the fs plugin does not know; "
			  "use the plugin version that wrote the images",
		       obj_id, klass ? klass : "(none)");
		return -EINVAL;
	}
	c = fs_classes[cls];
	rec = find_rec(&p->tables[cls], c, obj_id);
	if (!rec) {
		fs_err(p, "restore: no %s object %u in %s; the images are incomplete",
		       c->name, obj_id, c->img_name);
		return -EBADMSG;
	}
	*fd = -1;
	return c->restore(p, rec, fd);
}

static int fs_fd_restore_before_children(void *priv, const char *klass, uint32_t obj_id,
					 int fd)
{
	struct fs_priv *p = priv;
	const ProtobufCMessage *rec;
	const struct fs_class *c;
	int cls = class_of(klass);

	if (cls == FS_NCLASSES || !fs_classes[cls]->restore_before_children)
		return 0;
	c = fs_classes[cls];
	rec = find_rec(&p->tables[cls], c, obj_id);
	if (!rec) {
		fs_err(p, "restore: no %s object %u in %s; the images are incomplete", c->name,
		       obj_id, c->img_name);
		return -EBADMSG;
	}
	return c->restore_before_children(p, rec, fd);
}

static int fs_fd_restore_in_task(void *priv, const char *klass, uint32_t obj_id, int fd)
{
	struct fs_priv *p = priv;
	const ProtobufCMessage *rec;
	const struct fs_class *c;
	int cls = class_of(klass);

	if (cls == FS_NCLASSES || !fs_classes[cls]->restore_in_task)
		return 0;
	c = fs_classes[cls];
	/* an object behind several fd numbers is set up once */
	for (size_t i = 0; i < p->nin_task_done; i++)
		if (p->in_task_done[i] == obj_id)
			return 0;
	if (p->nin_task_done == p->in_task_cap) {
		size_t ncap = p->in_task_cap ? p->in_task_cap * 2 : 16;
		uint32_t *n = realloc(p->in_task_done, ncap * sizeof(*n));

		if (!n) {
			fs_err(p, "restore: out of memory in the task");
			return -ENOMEM;
		}
		p->in_task_done = n;
		p->in_task_cap = ncap;
	}
	p->in_task_done[p->nin_task_done++] = obj_id;
	rec = find_rec(&p->tables[cls], c, obj_id);
	if (!rec) {
		fs_err(p, "restore: no %s object %u in %s; the images are incomplete", c->name,
		       obj_id, c->img_name);
		return -EBADMSG;
	}
	return c->restore_in_task(p, rec, fd);
}

/* ---- mappings: memfds and deleted files ------------------------------------------------------------ */

static const char *const fs_vma_classes[] = { "memfd", "ghost", NULL };

static int fs_vma_dump(void *priv, const struct ckpt_vma_info *v, uint32_t *obj_id,
		       const char **klass)
{
	if (fs_is_ghost(v->path, &v->st)) {
		*klass = "ghost";
		return ghost_dump_vma(priv, v, obj_id);
	}
	if (!v->path || strncmp(v->path, "/memfd:", 7) || !S_ISREG(v->st.st_mode))
		return CKPT_NOT_MINE;
	*klass = "memfd";
	return memfd_dump_vma(priv, v, obj_id);
}

static int fs_vma_restore(void *priv, const char *klass, uint32_t obj_id, int *fd)
{
	/* the object is a memfd record like those of fds */
	return fs_fd_restore(priv, klass, obj_id, fd);
}

static const struct ckpt_vma_hooks fs_vma_hooks = {
	.version = CKPT_VMA_HOOKS_VERSION,
	.classes = fs_vma_classes,
	.dump = fs_vma_dump,
	.restore = fs_vma_restore,
};

/* ---- descriptor -------------------------------------------------------------- */

static const struct ckpt_config_key fs_config[] = {
	{
		.key = "skip_file_check",
		.type = CKPT_CFG_BOOL,
		.def = "false",
		.help = "restore regular files even when their size changed since the dump",
	},
	{
		.key = "file_validation",
		.type = CKPT_CFG_STRING,
		.def = "filesize",
		.help = "how restore checks regular files: filesize, or none (--file-validation)",
	},
	{
		.key = "shell_job",
		.type = CKPT_CFG_BOOL,
		.def = "false",
		.help = "terminals outside the tree are the shell's: restore gives ckpt's (--shell-job)",
	},
	{
		.key = "external_mnt",
		.type = CKPT_CFG_STRING,
		.def = NULL,
		.help = "--external: mnt[MOUNTPOINT]:KEY at dump, mnt[KEY]:HOST_PATH at restore, comma separated",
	},
	{ .key = NULL },
};

static const struct ckpt_lifecycle_hooks fs_lifecycle = {
	.version = CKPT_LIFECYCLE_HOOKS_VERSION,
	.dump_start = fs_dump_start,
	.tree_frozen = fs_tree_frozen,
	.dump_finish = fs_dump_finish,
	.restore_start = fs_restore_start,
	.restore_resume = fs_restore_resume,
	.restore_finish = fs_restore_finish,
	.check = fs_check,
	.dump_namespace = fs_dump_namespace,
	.restore_namespace = fs_restore_namespace,
};

static const struct ckpt_fd_hooks fs_fd_hooks = {
	.version = CKPT_FD_HOOKS_VERSION,
	.classes = fs_class_names,
	.dump = fs_fd_dump,
	.restore = fs_fd_restore,
	.restore_in_task = fs_fd_restore_in_task,
	.restore_before_children = fs_fd_restore_before_children,
};

static const ProtobufCMessageDescriptor *const fs_image_types[] = {
	&ckpt__fs__reg_file__descriptor,
	&ckpt__fs__chr_dev__descriptor,
	&ckpt__fs__fifo__descriptor,
	&ckpt__fs__pipe__descriptor,
	&ckpt__fs__eventfd__descriptor,
	&ckpt__fs__signalfd__descriptor,
	&ckpt__fs__timerfd__descriptor,
	&ckpt__fs__epoll__descriptor,
	&ckpt__fs__inotify__descriptor,
	&ckpt__fs__memfd__descriptor,
	&ckpt__fs__memfd_data__descriptor,
	&ckpt__fs__tty__descriptor,
	&ckpt__fs__ghost__descriptor,
	&ckpt__fs__ghost_data__descriptor,
	&ckpt__fs__fanotify__descriptor,
	&ckpt__fs__mount__descriptor,
	&ckpt__fs__tmpfs_node__descriptor,
	NULL,
};

CKPT_PLUGIN_EXPORT = {
	.abi_major = CKPT_PLUGIN_ABI_MAJOR,
	.abi_minor = CKPT_PLUGIN_ABI_MINOR,
	.name = FS_NAME,
	.version = "0.5.0",
	.description = "regular files, character devices, fifos, pipes, eventfd, signalfd, "
		       "timerfd, epoll, inotify, fanotify, memfd, deleted files, file locks, terminals "
		       "and mount namespaces",
	.config = fs_config,
	.init = fs_init,
	.fini = fs_fini,
	.lifecycle = &fs_lifecycle,
	.fd = &fs_fd_hooks,
	.image_types = fs_image_types,
	.vma = &fs_vma_hooks,
};
