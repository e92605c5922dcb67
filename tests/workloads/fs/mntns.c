/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mntns MODE — a process in a mount namespace of its own (everything made
 * private first), under DIR/mntns:
 *
 *   tmp/      tmpfs size=8m,mode=751,nr_inodes=500, nosuid,nodev: hello
 *             (text, also named hello2: a hard link), sub/inner, link ->
 *             hello, sparse (64 MiB with data at 0 and at 32 MiB only),
 *             fifo, owned (uid 1234, mode 0640, mtime 2001-09-09); xattrs
 *             user.ckpt on hello, trusted.ckpt on sub
 *   bind/     bind of tmp/sub, read-only
 *   hostbind/ bind of DIR/mntns-host (a host directory holding "marker")
 *   proc/     a proc mount; sys/ sysfs read-only; pts/ a devpts instance
 *             (ptmxmode=0666,mode=620); mq/ mqueue
 *   "with space"/ a tmpfs (mode=700, noexec) holding f
 *   ovl/      overlay of DIR/mntns-lower (holding "lower") with upper and
 *             work dirs in tmp/; "upper" written through it
 *   cwd in tmp/sub; fd 30 = tmp/hello O_RDWR, offset 5
 *
 * MODE shared adds shA/ (tmpfs, shared) with shB/ a slave bind of it and a
 * tmpfs shA/child mounted afterwards (which propagates to shB/child).
 * MODE pty opens a pty of pts/ (fds 31, 32) and checks it works after.
 * MODE pidinit runs all this as init (PID 1) of a pid namespace of its own,
 * with proc/sys bound read-only onto itself: its proc must show that pid
 * namespace after the restore.
 * MODE pivot first makes a tmpfs root of its own (binds of /usr, this program's directory and
 * DIR inside, a /dev/null, a proc) and pivot_roots into it, as a
 * container does; no overlay then.
 * MODE ramfs adds a ramfs on ramfs/, which the dump must refuse.
 * MODE external adds ext/, a bind of DIR/mntns-ext-a (dumped as external;
 * the restore binds DIR/mntns-ext-b there): its "marker" must read "a"
 * before and "b" after.
 *
 * After SIGUSR1 it checks the mounts under DIR/mntns in /proc/self/mountinfo
 * (mount points, types, mount and superblock options, propagation), the
 * files and their metadata, the cwd, the open fd (write through it, read
 * through the path), that the bind is read-only and that propagation works.
 */
#include "fsutil.h"

#include <sched.h>
#include <sys/ioctl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <termios.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define MB (1024 * 1024)
#define OWNED_MTIME 1000000000

static char base[512];
static const char *mode = "basic";

/* mountinfo entries under base, without ids and peer group numbers */
struct ment {
	char mp[512], fstype[32], opts[256], sopts[256];
	unsigned int shared, master;
};

static int read_mounts(struct ment *out, int max)
{
	static char text[1 << 16];
	int n = 0;

	if (wl_read_file("/proc/self/mountinfo", text, sizeof(text)) < 0)
		wl_die("mountinfo: %s", strerror(errno));
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char mp[512], opts[256], rest[1024], fstype[32], src[256], sopts[256];
		unsigned int shared = 0, master = 0;
		char *dash = strstr(line, " - ");

		if (!dash || sscanf(line, "%*u %*u %*s %*s %511s %255s %1023[^\n]", mp, opts, rest) < 2)
			continue;
		if (sscanf(dash + 3, "%31s %255s %255s", fstype, src, sopts) != 3)
			continue;
		if (strncmp(mp, base, strlen(base)) || n == max)
			continue;
		for (char *q = line; q < dash; q++) {
			if (!strncmp(q, " shared:", 8))
				shared = (unsigned int)atoi(q + 8);
			if (!strncmp(q, " master:", 8))
				master = (unsigned int)atoi(q + 8);
		}
		struct ment *m = &out[n++];
		snprintf(m->mp, sizeof(m->mp), "%s", mp + strlen(base));
		snprintf(m->fstype, sizeof(m->fstype), "%s", fstype);
		snprintf(m->opts, sizeof(m->opts), "%s", opts);
		snprintf(m->sopts, sizeof(m->sopts), "%s", sopts);
		m->shared = shared;
		m->master = master;
	}
	return n;
}

static const struct ment *find_mount(const struct ment *v, int n, const char *mp)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(v[i].mp, mp))
			return &v[i];
	return NULL;
}

static void at(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s%s", base, rel);
}

static void put_file(const char *rel, const char *text)
{
	char p[600];
	int fd;

	at(p, sizeof(p), rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		wl_die("%s: %s", p, strerror(errno));
	fs_write_all(fd, text, strlen(text), p);
	close(fd);
}

static void get_file(const char *rel, char *buf, size_t len)
{
	char p[600];

	at(p, sizeof(p), rel);
	if (wl_read_file(p, buf, len) < 0)
		snprintf(buf, len, "<%s: %s>", rel, strerror(errno));
}

static void must(int ok, const char *what)
{
	if (!ok)
		wl_die("%s: %s", what, strerror(errno));
}

static void sub_mkdir(const char *rel)
{
	char p[600];

	at(p, sizeof(p), rel);
	must(!mkdir(p, 0755) || errno == EEXIST, p);
}

static void do_mount(const char *src, const char *rel, const char *type, unsigned long fl,
		     const char *data)
{
	char p[600];

	at(p, sizeof(p), rel);
	if (!src && (fl & MS_BIND))
		src = p;
	if (mount(src, p, type, fl, data))
		wl_die("mount %s on %s: %s", src ? src : type, p, strerror(errno));
}

/* Bind dir at the same path under root nr (the directories on the way
 * are made in nr's tmpfs). */
static void bind_same_path(const char *nr, const char *dir)
{
	char p[1200];

	snprintf(p, sizeof(p), "%s", nr);
	for (const char *c = dir; *c;) {
		const char *e = strchr(c + 1, '/');
		size_t l = e ? (size_t)(e - c) : strlen(c);
		snprintf(p + strlen(p), sizeof(p) - strlen(p), "%.*s", (int)l, c);
		must(!mkdir(p, 0755) || errno == EEXIST, p);
		c += l;
	}
	must(!mount(dir, p, NULL, MS_BIND, NULL), dir);
}

/* A root of our own, as a container has: a tmpfs holding binds of /usr
 * (libraries), this program's directory (wherever the build is), our test
 * directory, /dev/null and a proc; then pivot_root into it. */
static void enter_new_root(void)
{
	char nr[600], p[1200], q[1200], exe[600];
	ssize_t n;

	snprintf(nr, sizeof(nr), "%s/mntns-newroot", wl_dir());
	must(!mkdir(nr, 0755) || errno == EEXIST, nr);
	must(!mount("ckpt-root", nr, "tmpfs", 0, "mode=755"), "mount the new root");
	static const char *const dirs[] = { "usr", "dev", "proc", "tmp" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", nr, dirs[i]);
		must(!mkdir(p, 0755), p);
	}
	static const char *const links[][2] = { { "lib", "usr/lib" }, { "lib64", "usr/lib64" },
						 { "bin", "usr/bin" } };
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", nr, links[i][0]);
		must(!symlink(links[i][1], p), p);
	}
	snprintf(p, sizeof(p), "%s/dev/null", nr);
	must(!mknod(p, S_IFCHR | 0666, makedev(1, 3)) && !chmod(p, 0666), "mknod dev/null");
	/* our test directory and this program at the same paths inside */
	bind_same_path(nr, wl_dir());
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	must(n > 0, "readlink /proc/self/exe");
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	bind_same_path(nr, exe);
	snprintf(q, sizeof(q), "%s/usr", nr);
	must(!mount("/usr", q, NULL, MS_BIND, NULL) &&
		     !mount(NULL, q, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL),
	     "bind /usr");
	snprintf(q, sizeof(q), "%s/proc", nr);
	must(!mount("proc", q, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL), "mount proc");
	must(!chdir(nr) && !syscall(SYS_pivot_root, ".", ".") && !umount2(".", MNT_DETACH) &&
		     !chdir("/"),
	     "pivot_root");
}

static void setup(void)
{
	char p[600], q[600];
	struct timespec ts[2] = { { OWNED_MTIME, 0 }, { OWNED_MTIME, 0 } };
	static char chunk[4096];

	if (unshare(CLONE_NEWNS))
		wl_die("unshare(CLONE_NEWNS): %s", strerror(errno));
	must(!mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), "make / private");
	if (!strcmp(mode, "pivot"))
		enter_new_root();
	snprintf(base, sizeof(base), "%s/mntns", wl_dir());
	must(!mkdir(base, 0755) || errno == EEXIST, base);
	sub_mkdir("/tmp");
	sub_mkdir("/bind");
	sub_mkdir("/hostbind");
	sub_mkdir("/proc");
	sub_mkdir("/sys");
	sub_mkdir("/pts");
	sub_mkdir("/mq");
	sub_mkdir("/with space");

	do_mount("ckpt-tmp", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
		 "size=8m,mode=751,nr_inodes=500");
	put_file("/tmp/hello", "hello world\n");
	at(p, sizeof(p), "/tmp/hello");
	at(q, sizeof(q), "/tmp/hello2");
	must(!link(p, q), "link hello2");
	must(!setxattr(p, "user.ckpt", "yes", 3, 0), "setxattr user.ckpt");
	sub_mkdir("/tmp/sub");
	at(p, sizeof(p), "/tmp/sub");
	must(!setxattr(p, "trusted.ckpt", "dir", 3, 0), "setxattr trusted.ckpt");
	put_file("/tmp/sub/inner", "inner file\n");
	at(p, sizeof(p), "/tmp/link");
	must(!symlink("hello", p), "symlink");
	at(p, sizeof(p), "/tmp/fifo");
	must(!mkfifo(p, 0600) && !chmod(p, 0620), "mkfifo");
	put_file("/tmp/owned", "owned by 1234\n");
	at(p, sizeof(p), "/tmp/owned");
	must(!chown(p, 1234, 1234) && !chmod(p, 0640) && !utimensat(AT_FDCWD, p, ts, 0), "owned");
	at(p, sizeof(p), "/tmp/sparse");
	int fd = open(p, O_WRONLY | O_CREAT, 0600);
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (char)fs_pat(7, i);
	must(fd >= 0 && pwrite(fd, chunk, sizeof(chunk), 0) == sizeof(chunk) &&
		     pwrite(fd, chunk, sizeof(chunk), 32 * MB) == sizeof(chunk) &&
		     !ftruncate(fd, 64 * MB),
	     "sparse");
	close(fd);

	at(p, sizeof(p), "/tmp/sub");
	do_mount(p, "/bind", NULL, MS_BIND, NULL);
	do_mount(NULL, "/bind", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
	snprintf(p, sizeof(p), "%s/mntns-host", wl_dir());
	do_mount(p, "/hostbind", NULL, MS_BIND, NULL);
	do_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	do_mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID, NULL);
	do_mount("devpts", "/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		 "newinstance,ptmxmode=0666,mode=620");
	do_mount("mqueue", "/mq", "mqueue", MS_NODEV, NULL);
	/* mountinfo escapes the space */
	do_mount("ckpt space", "/with space", "tmpfs", MS_NOEXEC, "size=64k,mode=700");
	put_file("/with space/f", "spaced\n");
	/* overlay: a host lower layer, upper and work dirs in the tmpfs (not
	 * behind pivot_root: its layer paths would be the tree's) */
	sub_mkdir("/ovl");
	if (!strcmp(mode, "pivot"))
		goto no_overlay;
	sub_mkdir("/tmp/ovl-up");
	sub_mkdir("/tmp/ovl-work");
	{
		char opts[2048], l[600], u[600], w[600];
		snprintf(l, sizeof(l), "%s/mntns-lower", wl_dir());
		at(u, sizeof(u), "/tmp/ovl-up");
		at(w, sizeof(w), "/tmp/ovl-work");
		snprintf(opts, sizeof(opts), "lowerdir=%s,upperdir=%s,workdir=%s", l, u, w);
		do_mount("ckpt-ovl", "/ovl", "overlay", 0, opts);
	}
	put_file("/ovl/upper", "written through overlay\n");
no_overlay:

	if (!strcmp(mode, "shared")) {
		sub_mkdir("/shA");
		sub_mkdir("/shB");
		do_mount("ckpt-shared", "/shA", "tmpfs", 0, "size=1m");
		put_file("/shA/file", "shared tmpfs\n");
		sub_mkdir("/shA/child");
		sub_mkdir("/shA/late");
		do_mount(NULL, "/shA", NULL, MS_SHARED, NULL);
		at(p, sizeof(p), "/shA");
		do_mount(p, "/shB", NULL, MS_BIND, NULL);
		do_mount(NULL, "/shB", NULL, MS_SLAVE, NULL);
		do_mount("ckpt-child", "/shA/child", "tmpfs", 0, "size=1m");
		put_file("/shA/child/c", "child\n");
	} else if (!strcmp(mode, "pty")) {
		/* a pty of the tree's own devpts instance */
		int unlock = 0;
		at(p, sizeof(p), "/pts/ptmx");
		fs_place(open(p, O_RDWR | O_NOCTTY), 31, "open pts/ptmx");
		must(!ioctl(31, TIOCSPTLCK, &unlock), "unlock pty");
		at(p, sizeof(p), "/pts/0");
		fs_place(open(p, O_RDWR | O_NOCTTY), 32, "open pts/0");
	} else if (!strcmp(mode, "ramfs")) {
		/* nothing ckpt can make again: the dump must refuse it */
		sub_mkdir("/ramfs");
		do_mount("ckpt-ramfs", "/ramfs", "ramfs", 0, NULL);
	} else if (!strcmp(mode, "external")) {
		sub_mkdir("/ext");
		snprintf(p, sizeof(p), "%s/mntns-ext-a", wl_dir());
		do_mount(p, "/ext", NULL, MS_BIND, NULL);
	}

	at(p, sizeof(p), "/tmp/sub");
	must(!chdir(p), "chdir");
	at(p, sizeof(p), "/tmp/hello");
	fs_place(open(p, O_RDWR), 30, "open hello");
	lseek(30, 5, SEEK_SET);
}

static void check_files(void)
{
	char buf[256], p[600], q[600];
	struct stat a, b;

	get_file("/tmp/hello", buf, sizeof(buf));
	WL_CHECK(!strcmp(buf, "hello world\n"), "tmp/hello reads '%s'", buf);
	get_file("/tmp/sub/inner", buf, sizeof(buf));
	WL_CHECK(!strcmp(buf, "inner file\n"), "tmp/sub/inner reads '%s'", buf);
	get_file("/bind/inner", buf, sizeof(buf));
	WL_CHECK(!strcmp(buf, "inner file\n"), "bind/inner reads '%s'", buf);
	at(p, sizeof(p), "/tmp/hello2");
	memset(buf, 0, sizeof(buf));
	WL_CHECK(getxattr(p, "user.ckpt", buf, sizeof(buf)) == 3 && !strcmp(buf, "yes"),
		 "tmp/hello: xattr user.ckpt is '%s'", buf);
	at(p, sizeof(p), "/tmp/sub");
	memset(buf, 0, sizeof(buf));
	WL_CHECK(getxattr(p, "trusted.ckpt", buf, sizeof(buf)) == 3 && !strcmp(buf, "dir"),
		 "tmp/sub: xattr trusted.ckpt is '%s'", buf);
	get_file("/with space/f", buf, sizeof(buf));
	WL_CHECK(!strcmp(buf, "spaced\n"), "'with space/f' reads '%s'", buf);
	if (strcmp(mode, "pivot")) {
		get_file("/ovl/lower", buf, sizeof(buf));
		WL_CHECK(!strcmp(buf, "lower\n"), "ovl/lower reads '%s'", buf);
		get_file("/ovl/upper", buf, sizeof(buf));
		WL_CHECK(!strcmp(buf, "written through overlay\n"), "ovl/upper reads '%s'", buf);
		get_file("/tmp/ovl-up/upper", buf, sizeof(buf));
		WL_CHECK(!strcmp(buf, "written through overlay\n"),
			 "tmp/ovl-up/upper reads '%s'", buf);
	} else {
		/* the root is the tmpfs of enter_new_root() */
		struct statfs sf;
		WL_CHECK(!statfs("/", &sf) && sf.f_type == TMPFS_MAGIC && !access("/dev/null", W_OK) &&
				 access("/etc/passwd", F_OK),
			 "/ is not the tmpfs root of before the dump");
	}
	get_file("/hostbind/marker", buf, sizeof(buf));
	WL_CHECK(!strcmp(buf, "host\n"), "hostbind/marker reads '%s'", buf);
	at(p, sizeof(p), "/tmp/link");
	ssize_t l = readlink(p, buf, sizeof(buf) - 1);
	buf[l < 0 ? 0 : l] = 0;
	WL_CHECK(!strcmp(buf, "hello"), "tmp/link points to '%s'", buf);
	at(p, sizeof(p), "/tmp/hello");
	at(q, sizeof(q), "/tmp/hello2");
	WL_CHECK(!stat(p, &a) && !stat(q, &b) && a.st_ino == b.st_ino && a.st_nlink == 2,
		 "hello and hello2 are not one inode with 2 links");
	at(p, sizeof(p), "/tmp/fifo");
	WL_CHECK(!lstat(p, &a) && S_ISFIFO(a.st_mode) && (a.st_mode & 07777) == 0620,
		 "tmp/fifo is not a fifo of mode 0620");
	at(p, sizeof(p), "/tmp/owned");
	WL_CHECK(!stat(p, &a) && a.st_uid == 1234 && a.st_gid == 1234 &&
			 (a.st_mode & 07777) == 0640 && a.st_mtim.tv_sec == OWNED_MTIME,
		 "tmp/owned: uid %u mode %o mtime %lld", a.st_uid, a.st_mode & 07777,
		 (long long)a.st_mtim.tv_sec);
	at(p, sizeof(p), "/tmp");
	WL_CHECK(!stat(p, &a) && (a.st_mode & 07777) == 0751, "tmp has mode %o", a.st_mode & 07777);
	at(p, sizeof(p), "/tmp/sparse");
	int fd = open(p, O_RDONLY);
	static char want[4096], got[4096];
	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = (char)fs_pat(7, i);
	WL_CHECK(fd >= 0 && !fstat(fd, &a) && a.st_size == 64 * MB, "sparse: size");
	WL_CHECK(a.st_blocks * 512 <= 64 * 1024, "sparse: %lld bytes allocated, not sparse",
		 (long long)a.st_blocks * 512);
	WL_CHECK(pread(fd, got, sizeof(got), 0) == sizeof(got) && !memcmp(got, want, sizeof(got)),
		 "sparse: data at 0");
	WL_CHECK(pread(fd, got, sizeof(got), 32 * MB) == sizeof(got) &&
			 !memcmp(got, want, sizeof(got)),
		 "sparse: data at 32 MiB");
	memset(want, 0, sizeof(want));
	WL_CHECK(pread(fd, got, sizeof(got), 16 * MB) == sizeof(got) &&
			 !memcmp(got, want, sizeof(got)),
		 "sparse: hole at 16 MiB is not zero");
	close(fd);

	/* cwd inside the tmpfs */
	char cwd[600];
	at(p, sizeof(p), "/tmp/sub");
	WL_CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, p), "cwd is '%s'", cwd);
	WL_CHECK(!stat(".", &a) && !stat(p, &b) && a.st_dev == b.st_dev && a.st_ino == b.st_ino,
		 "cwd is not tmp/sub of the tmpfs");
	get_file("/tmp/sub/inner", buf, sizeof(buf));
	fd = open("inner", O_RDONLY);
	WL_CHECK(fd >= 0, "inner cannot be opened relative to the cwd");
	if (fd >= 0)
		close(fd);

	/* the open fd is the file in the tmpfs */
	at(p, sizeof(p), "/tmp/hello");
	WL_CHECK(!fstat(30, &a) && !stat(p, &b) && a.st_dev == b.st_dev && a.st_ino == b.st_ino,
		 "fd 30 is not tmp/hello");
	WL_CHECK(lseek(30, 0, SEEK_CUR) == 5, "fd 30 is at offset %lld",
		 (long long)lseek(30, 0, SEEK_CUR));
	WL_CHECK(pwrite(30, "W", 1, 0) == 1, "write through fd 30: %s", strerror(errno));
	get_file("/tmp/hello", buf, sizeof(buf));
	WL_CHECK(!strcmp(buf, "Wello world\n"), "after a write through fd 30 tmp/hello reads '%s'", buf);

	/* the bind is read-only */
	at(p, sizeof(p), "/bind/new");
	fd = open(p, O_WRONLY | O_CREAT, 0644);
	WL_CHECK(fd < 0 && errno == EROFS, "bind/ is not read-only (%s)", strerror(errno));
	if (fd >= 0)
		close(fd);

	/* our own proc */
	at(p, sizeof(p), "/proc/self");
	l = readlink(p, buf, sizeof(buf) - 1);
	buf[l < 0 ? 0 : l] = 0;
	WL_CHECK(atoi(buf) == getpid(), "proc/self is '%s', pid %d", buf, getpid());
}

static void check_shared(const struct ment *now, int n)
{
	const struct ment *a = find_mount(now, n, "/shA"), *b = find_mount(now, n, "/shB");
	const struct ment *c = find_mount(now, n, "/shA/child"), *c2 = find_mount(now, n, "/shB/child");
	char buf[64], p[600], q[600];
	struct stat sa, sb;

	if (!a || !b || !c || !c2) {
		wl_fail("shared: a mount is missing (shA %d shB %d shA/child %d shB/child %d)", !!a,
			!!b, !!c, !!c2);
		return;
	}
	WL_CHECK(a->shared && b->master == a->shared && !b->shared,
		 "shared: shA shared:%u, shB shared:%u master:%u", a->shared, b->shared, b->master);
	WL_CHECK(c->shared && c2->master == c->shared,
		 "shared: shA/child shared:%u, shB/child master:%u", c->shared, c2->master);
	get_file("/shB/child/c", buf, sizeof(buf));
	WL_CHECK(!strcmp(buf, "child\n"), "shB/child/c reads '%s'", buf);
	get_file("/shB/file", buf, sizeof(buf));
	WL_CHECK(!strcmp(buf, "shared tmpfs\n"), "shB/file reads '%s'", buf);
	/* a new mount under the master shows up in the slave, not back */
	do_mount("late", "/shA/late", "tmpfs", 0, "size=1m");
	at(p, sizeof(p), "/shA/late");
	at(q, sizeof(q), "/shB/late");
	WL_CHECK(!stat(p, &sa) && !stat(q, &sb) && sa.st_dev == sb.st_dev,
		 "shared: a mount on shA/late did not propagate to shB/late");
	umount2(p, MNT_DETACH);
}

int main(int argc, char **argv)
{
	static struct ment before[64], after[64];
	int nb, na;
	char buf[64];

	wl_init("fs/mntns");
	if (argc > 1)
		mode = argv[1];
	int ready_pipe = -1;
	if (!strcmp(mode, "pidinit")) {
		/* become init of a pid namespace of our own; the starter
		 * reports our outer pid and leaves */
		int pp[2];
		if (unshare(CLONE_NEWPID) || pipe(pp))
			wl_die("unshare(CLONE_NEWPID): %s", strerror(errno));
		pid_t init = fork();
		if (init < 0)
			wl_die("fork: %s", strerror(errno));
		if (init > 0) {
			const char *ready = getenv("CKPT_TEST_READY");
			close(pp[1]);
			if (read(pp[0], buf, 1) != 1)
				_exit(2);
			snprintf(buf, sizeof(buf), "%d\n", (int)init);
			if (ready && wl_write_file(ready, buf))
				wl_die("cannot write %s", ready);
			_exit(0);
		}
		close(pp[0]);
		setsid();
		ready_pipe = pp[1];
	}
	setup();
	if (!strcmp(mode, "pidinit")) {
		/* a read-only bind below the proc: made after the proc at restore */
		do_mount(NULL, "/proc/sys", NULL, MS_BIND, NULL);
		do_mount(NULL, "/proc/sys", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL);
	}
	nb = read_mounts(before, 64);
	if (!strcmp(mode, "external")) {
		get_file("/ext/marker", buf, sizeof(buf));
		if (strcmp(buf, "a\n"))
			wl_die("ext/marker reads '%s' before the dump", buf);
	}
	if (ready_pipe >= 0) {
		wl_ready_pid = getpid();
		if (write(ready_pipe, "r", 1) != 1)
			_exit(2);
		close(ready_pipe);
	} else {
		wl_ready();
	}
	wl_wait_usr1();
	if (ready_pipe >= 0)
		WL_CHECK(getpid() == 1, "init of the pid namespace is pid %d", (int)getpid());

	na = read_mounts(after, 64);
	WL_CHECK(na == nb, "%d mounts under %s, %d before", na, base, nb);
	for (int i = 0; i < nb; i++) {
		const struct ment *m = find_mount(after, na, before[i].mp);

		if (!m) {
			wl_fail("mount %s is gone", before[i].mp);
			continue;
		}
		WL_CHECK(!strcmp(m->fstype, before[i].fstype), "mount %s: type %s, was %s", m->mp,
			 m->fstype, before[i].fstype);
		WL_CHECK(!strcmp(m->opts, before[i].opts), "mount %s: options %s, were %s", m->mp,
			 m->opts, before[i].opts);
		WL_CHECK(!strcmp(m->sopts, before[i].sopts), "mount %s: superblock options %s, were %s",
			 m->mp, m->sopts, before[i].sopts);
		WL_CHECK(!m->shared == !before[i].shared && !m->master == !before[i].master,
			 "mount %s: propagation shared:%u master:%u, was shared:%u master:%u", m->mp,
			 m->shared, m->master, before[i].shared, before[i].master);
	}
	check_files();
	if (!strcmp(mode, "shared"))
		check_shared(after, na);
	if (!strcmp(mode, "pty")) {
		struct stat a, b;
		char p[600], got[16] = { 0 };
		at(p, sizeof(p), "/pts/0");
		WL_CHECK(!fstat(32, &a) && !stat(p, &b) && a.st_rdev == b.st_rdev &&
				 a.st_dev == b.st_dev,
			 "pty: fd 32 is not pts/0 of the tree's devpts");
		WL_CHECK(write(31, "ping\n", 5) == 5, "pty: write to the master: %s", strerror(errno));
		WL_CHECK(fs_poll(32, POLLIN, 2000) == 1 && read(32, got, sizeof(got) - 1) > 0 &&
				 !strncmp(got, "ping", 4),
			 "pty: the slave read '%s'", got);
	}
	if (!strcmp(mode, "external")) {
		get_file("/ext/marker", buf, sizeof(buf));
		WL_CHECK(!strcmp(buf, "b\n"), "ext/marker reads '%s' after the restore, want the b side",
			 buf);
	}
	wl_finish();
}
