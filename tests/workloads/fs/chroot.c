/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * chroot MODE — the tree's root process has a root directory of its own.
 *
 * Under DIR/chroot-MODE ("base"): jail/ holds marker (a text only this run
 * knows), data ("0123456789data") and sub/; base/outside is a file outside
 * the jail.  The root process P opens jail/data at fd 30 (O_RDWR, offset 4),
 * enters jail/sub and chroots into jail: its / is jail, its cwd /sub.
 *
 *   mntns    P first makes a mount namespace of its own (everything
 *            private) and mounts a tmpfs on base, so the jail lies on a
 *            mount the restore must make again before the chroot
 *   plain    no namespace of its own: jail is on the host's file system
 *   deleted  jail is empty and removed after the chroot (a root directory
 *            that no longer exists): the dump must refuse it, and P still
 *            passes afterwards
 *
 * P cannot write the driver's files from inside the jail, so its child R
 * (not chrooted, in the same namespaces) reports for it: P sends lines
 * through a pipe ("READY", then "OK" or "FAIL reason"), R writes P's pid to
 * the ready file and the verdict to the result file.
 *
 * The checks (before ready and after SIGUSR1): /marker holds this run's
 * text, /outside does not exist, "/.." is "/", getcwd is /sub, fd 30 reads
 * on at offset 4 and is the file /data (same device and inode), / is on
 * the device of fd 30, and with mntns / is a tmpfs.
 */
#include "fsutil.h"

#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>

static const char *mode;
static char token[96];
static char why[1000];

static void __attribute__((format(printf, 1, 2))) bad(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	wl_vappend(why, sizeof(why), fmt, ap);
	va_end(ap);
}

#define CHECK(cond, ...)                  \
	do {                              \
		if (!(cond))              \
			bad(__VA_ARGS__); \
	} while (0)

static void put_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		wl_die("create %s: %s", path, strerror(errno));
	fs_write_all(fd, text, strlen(text), path);
	close(fd);
}

/* Inside the jail. */
static void check_jail(void)
{
	struct stat root, up, data, fd30;
	char buf[128], cwd[256];
	ssize_t n;
	int fd;

	fd = open("/marker", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		bad("/marker does not open: %s (/ is not the jail)", strerror(errno));
	} else {
		n = read(fd, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = 0;
		CHECK(!strcmp(buf, token), "/marker holds '%s', want '%s'", buf, token);
		close(fd);
	}
	CHECK(access("/outside", F_OK) && errno == ENOENT, "/outside is visible: / is not the jail");
	if (stat("/", &root) || stat("/..", &up)) {
		bad("stat / or /..: %s", strerror(errno));
		return;
	}
	CHECK(root.st_dev == up.st_dev && root.st_ino == up.st_ino,
	      "/.. is not / (the root directory is not ours)");
	CHECK(getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, "/sub"), "cwd is '%s', want /sub",
	      getcwd(cwd, sizeof(cwd)) ? cwd : strerror(errno));
	n = pread(30, buf, 4, 0);
	CHECK(n == 4 && !memcmp(buf, "0123", 4), "fd 30 does not read 0123 at 0");
	n = read(30, buf, 4);
	CHECK(n == 4 && !memcmp(buf, "4567", 4), "fd 30 does not read on at offset 4");
	if (n == 4 && lseek(30, 4, SEEK_SET) != 4)
		bad("lseek fd 30: %s", strerror(errno));
	if (fstat(30, &fd30) || stat("/data", &data)) {
		bad("stat of fd 30 or /data: %s", strerror(errno));
	} else {
		CHECK(fd30.st_dev == data.st_dev && fd30.st_ino == data.st_ino,
		      "fd 30 is not the file /data");
		CHECK(root.st_dev == fd30.st_dev, "/ is not on the device of fd 30");
	}
	if (!strcmp(mode, "mntns")) {
		struct statfs sf;

		CHECK(!statfs("/", &sf) && sf.f_type == TMPFS_MAGIC, "/ is not a tmpfs");
	}
}

static void say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int fd, const char *fmt, ...)
{
	char line[1100];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	strcat(line, "\n");
	if (write(fd, line, strlen(line)) < 0)
		_exit(3);
}

/* R: report for P. */
static void __attribute__((noreturn)) reporter(int fd, pid_t p)
{
	char buf[2048];
	size_t len = 0;

	for (;;) {
		char *nl;
		ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n <= 0) {
			wl_fail("the chrooted process gave no verdict (%s)",
				n < 0 ? strerror(errno) : "pipe closed");
			wl_finish();
		}
		len += (size_t)n;
		buf[len] = 0;
		while ((nl = strchr(buf, '\n'))) {
			*nl = 0;
			if (!strcmp(buf, "READY")) {
				const char *path = getenv("CKPT_TEST_READY");
				char pid[32];

				snprintf(pid, sizeof(pid), "%d\n", (int)p);
				printf("fs/chroot %s: ready, pid %d\n", mode, (int)p);
				fflush(stdout);
				if (path && *path && wl_write_file(path, pid))
					wl_die("cannot write ready file %s: %s", path, strerror(errno));
			} else if (!strcmp(buf, "OK")) {
				wl_finish();
			} else {
				wl_fail("%s", buf);
				wl_finish();
			}
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len + 1);
		}
	}
}

int main(int argc, char **argv)
{
	char base[512], jail[600], path[700];
	struct timespec ts;
	int pfd[2];
	pid_t r;

	mode = argc > 1 ? argv[1] : "plain";
	if (strcmp(mode, "mntns") && strcmp(mode, "plain") && strcmp(mode, "deleted"))
		wl_die("unknown mode %s", mode);
	wl_init(!strcmp(mode, "mntns") ? "fs/chroot mntns" : !strcmp(mode, "plain") ? "fs/chroot plain" : "fs/chroot deleted");
	snprintf(base, sizeof(base), "%s/chroot-%s", wl_dir(), mode);
	snprintf(jail, sizeof(jail), "%s/jail", base);
	if (mkdir(base, 0755) && errno != EEXIST)
		wl_die("mkdir %s: %s", base, strerror(errno));
	if (!strcmp(mode, "mntns")) {
		if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
			wl_die("unshare/private: %s", strerror(errno));
		if (mount("ckpt-chroot", base, "tmpfs", 0, "size=4m,mode=755"))
			wl_die("mount tmpfs on %s: %s", base, strerror(errno));
	}
	if (mkdir(jail, 0755) && errno != EEXIST)
		wl_die("mkdir %s: %s", jail, strerror(errno));
	snprintf(path, sizeof(path), "%s/outside", base);
	put_file(path, "outside\n");
	if (strcmp(mode, "deleted")) {
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(token, sizeof(token), "marker %d %ld.%09ld", (int)getpid(), (long)ts.tv_sec,
			 ts.tv_nsec);
		snprintf(path, sizeof(path), "%s/marker", jail);
		put_file(path, token);
		snprintf(path, sizeof(path), "%s/data", jail);
		put_file(path, "0123456789data");
		fs_place(open(path, O_RDWR), 30, path);
		if (lseek(30, 4, SEEK_SET) != 4)
			wl_die("lseek: %s", strerror(errno));
		snprintf(path, sizeof(path), "%s/sub", jail);
		if (mkdir(path, 0755) && errno != EEXIST)
			wl_die("mkdir %s: %s", path, strerror(errno));
	}

	if (pipe(pfd))
		wl_die("pipe: %s", strerror(errno));
	r = fork();
	if (r < 0)
		wl_die("fork: %s", strerror(errno));
	if (r == 0) {
		close(pfd[1]);
		close(30);
		if (chdir(wl_dir()))
			wl_die("chdir %s: %s", wl_dir(), strerror(errno));
		reporter(pfd[0], getppid());
	}
	close(pfd[0]);

	/* from here on the driver's files are out of reach: R reports */
	if (!strcmp(mode, "deleted")) {
		/* cwd stays outside the jail, which then goes */
		if (chdir(base) || chroot("jail") || rmdir("jail")) {
			say(pfd[1], "FAIL setup: chroot into a removed directory: %s", strerror(errno));
			goto out;
		}
		say(pfd[1], "READY");
		wl_wait_usr1();
		say(pfd[1], "OK");
	} else {
		snprintf(path, sizeof(path), "%s/sub", jail);
		if (chdir(path) || chroot(jail)) {
			say(pfd[1], "FAIL setup: chroot %s: %s", jail, strerror(errno));
			goto out;
		}
		check_jail();
		if (why[0]) {
			say(pfd[1], "FAIL setup: before the dump: %s", why);
			goto out;
		}
		say(pfd[1], "READY");
		wl_wait_usr1();
		check_jail();
		if (why[0])
			say(pfd[1], "FAIL %s", why);
		else
			say(pfd[1], "OK");
	}
out:
	close(pfd[1]);
	waitpid(r, NULL, 0);
	return 0;
}
