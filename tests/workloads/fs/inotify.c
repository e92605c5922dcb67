/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * inotify — watches that report events after the restore.
 *
 *   fd 20   inotify, IN_NONBLOCK, with watches
 *             wd 1  $DIR/ino-dir    IN_CREATE | IN_DELETE
 *             wd 2  $DIR/ino-gone   (removed before ready: a gap)
 *             wd 3  $DIR/ino-file   IN_MODIFY
 *
 * After SIGUSR1: creating ino-dir/new-after-restore must give wd 1
 * IN_CREATE with that name, writing ino-file wd 3 IN_MODIFY, and nothing
 * else; a new watch then gets wd 4, as it would have without the dump.
 */
#include "fsutil.h"

#include <limits.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>

static char dir[PATH_MAX], gone[PATH_MAX], file[PATH_MAX], other[PATH_MAX];

struct ev {
	int wd;
	uint32_t mask;
	char name[64];
};

static int read_events(struct ev *out, int max)
{
	char buf[4096] __attribute__((aligned(8)));
	int n = 0;

	if (fs_poll(20, POLLIN, 1500) != 1)
		return 0;
	fs_sleep_ms(50); /* let every event of the operation arrive */
	for (;;) {
		ssize_t len = read(20, buf, sizeof(buf));
		if (len <= 0)
			break;
		for (char *p = buf; p < buf + len;) {
			struct inotify_event *e = (struct inotify_event *)p;
			if (n < max) {
				out[n].wd = e->wd;
				out[n].mask = e->mask;
				snprintf(out[n].name, sizeof(out[n].name), "%s", e->len ? e->name : "");
				n++;
			}
			p += sizeof(*e) + e->len;
		}
	}
	return n;
}

int main(void)
{
	struct ev ev[8];
	int fd, wd, n;

	wl_init("fs/inotify");
	snprintf(dir, sizeof(dir), "%s/ino-dir", wl_dir());
	snprintf(gone, sizeof(gone), "%s/ino-gone", wl_dir());
	snprintf(file, sizeof(file), "%s/ino-file", wl_dir());
	snprintf(other, sizeof(other), "%s/ino-other", wl_dir());
	mkdir(dir, 0755);
	mkdir(gone, 0755);
	mkdir(other, 0755);
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		wl_die("create %s: %s", file, strerror(errno));
	close(fd);

	fs_place(inotify_init1(IN_NONBLOCK), 20, "inotify");
	if (inotify_add_watch(20, dir, IN_CREATE | IN_DELETE) != 1 || inotify_add_watch(20, gone, IN_ALL_EVENTS) != 2 ||
	    inotify_add_watch(20, file, IN_MODIFY) != 3)
		wl_die("inotify_add_watch: wds not 1, 2, 3 (%s)", strerror(errno));
	if (inotify_rm_watch(20, 2))
		wl_die("inotify_rm_watch: %s", strerror(errno));
	n = read_events(ev, 8);
	if (n != 1 || ev[0].wd != 2 || !(ev[0].mask & IN_IGNORED))
		wl_die("expected one IN_IGNORED for wd 2, got %d events", n);

	wl_ready();
	wl_wait_usr1();

	WL_CHECK(!strcmp(fs_fdlink(20), "anon_inode:inotify"), "fd 20 is %s", fs_fdlink(20));
	WL_CHECK(fs_getfl(20) & O_NONBLOCK, "fd 20 lost O_NONBLOCK");
	errno = 0;
	n = read_events(ev, 8);
	WL_CHECK(n == 0, "%d events queued before anything happened (first: wd %d mask %#x)", n, n ? ev[0].wd : 0,
		 n ? ev[0].mask : 0);

	{
		char path[PATH_MAX + 32];
		snprintf(path, sizeof(path), "%s/new-after-restore", dir);
		fd = open(path, O_WRONLY | O_CREAT, 0644);
		WL_CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		n = read_events(ev, 8);
		WL_CHECK(n == 1 && ev[0].wd == 1 && (ev[0].mask & IN_CREATE) && !strcmp(ev[0].name, "new-after-restore"),
			 "create in the watched dir: %d events (first: wd %d mask %#x name '%s'), want wd 1 IN_CREATE", n,
			 n ? ev[0].wd : 0, n ? ev[0].mask : 0, n ? ev[0].name : "");
		unlink(path);
		n = read_events(ev, 8);
		WL_CHECK(n == 1 && ev[0].wd == 1 && (ev[0].mask & IN_DELETE), "delete in the watched dir: %d events", n);
	}
	fd = open(file, O_WRONLY | O_APPEND);
	WL_CHECK(fd >= 0 && write(fd, "x", 1) == 1, "write %s: %s", file, strerror(errno));
	if (fd >= 0)
		close(fd);
	n = read_events(ev, 8);
	WL_CHECK(n == 1 && ev[0].wd == 3 && (ev[0].mask & IN_MODIFY),
		 "write to the watched file: %d events (first: wd %d mask %#x), want wd 3 IN_MODIFY", n, n ? ev[0].wd : 0,
		 n ? ev[0].mask : 0);
	wd = inotify_add_watch(20, other, IN_CREATE);
	WL_CHECK(wd == 4, "a new watch got wd %d, want 4", wd);
	fd = open(gone, O_RDONLY); /* the removed watch stays removed */
	if (fd >= 0)
		close(fd);
	n = read_events(ev, 8);
	WL_CHECK(n == 0, "%d events from the unwatched dir (wd %d)", n, n ? ev[0].wd : 0);
	wl_finish();
}
