/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * fanotify — two fanotify groups with every kind of mark.
 *
 *   fd 20  FAN_CLASS_NOTIF|FAN_NONBLOCK: inode mark FAN_MODIFY on fan-file,
 *          mount mark FAN_CLOSE_WRITE on the mount of the test directory,
 *          ignore mask FAN_CLOSE_WRITE (surviving modify) on fan-ignored
 *   fd 21  FAN_CLASS_NOTIF|FAN_REPORT_FID: filesystem mark FAN_CREATE on the
 *          test directory's filesystem
 * Both are tried before the dump (and drained).  After SIGUSR1: the
 * fanotify lines of fdinfo are the ones of before the dump (same flags,
 * same marks), writing fan-file gives FAN_MODIFY and FAN_CLOSE_WRITE on
 * it, writing fan-ignored gives no FAN_CLOSE_WRITE, creating fan-new
 * gives FAN_CREATE to the FID group.  Only events of this process count
 * (other processes use the same mount).
 */
#include "fsutil.h"

#include <sys/fanotify.h>
#include <sys/stat.h>

#ifndef FAN_MARK_FILESYSTEM
#define FAN_MARK_FILESYSTEM 0x00000100
#endif

static char dir[400];

static char *path_of(const char *name)
{
	static char p[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static void touch(const char *name)
{
	int fd = open(path_of(name), O_WRONLY | O_CREAT, 0644);

	if (fd < 0 || write(fd, "x", 1) != 1)
		wl_fail("writing %s: %s", name, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Events of group fd for this process within ms: masks or'ed per file. */
struct seen {
	unsigned long long file, ignored, other;
	int fid_events;
};

static void collect(int fd, int ms, struct seen *s)
{
	static char buf[65536] __attribute__((aligned(8)));

	memset(s, 0, sizeof(*s));
	while (fs_poll(fd, POLLIN, ms) > 0) {
		ssize_t n = read(fd, buf, sizeof(buf));
		struct fanotify_event_metadata *m = (void *)buf;

		if (n <= 0)
			break;
		for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			if (m->pid != getpid()) {
				if (m->fd >= 0)
					close(m->fd);
				continue;
			}
			if (m->fd == FAN_NOFD) {
				s->fid_events++;
				s->other |= m->mask;
				continue;
			}
			const char *l = fs_fdlink(m->fd);
			if (!strcmp(l, path_of("fan-file")))
				s->file |= m->mask;
			else if (!strcmp(l, path_of("fan-ignored")))
				s->ignored |= m->mask;
			else
				s->other |= m->mask;
			close(m->fd);
		}
		ms = 200; /* a little more for what follows */
	}
}

/* The sorted "fanotify" lines of fd's fdinfo, joined. */
static void marks_of(int fd, char *out, size_t len)
{
	char lines[16][300];
	int n = 0;
	const char *s = fs_fdinfo(fd);

	while (s && *s && n < 16) {
		const char *e = strchr(s, '\n');
		size_t l = e ? (size_t)(e - s) : strlen(s);
		if (!strncmp(s, "fanotify", 8))
			snprintf(lines[n++], sizeof(lines[0]), "%.*s", (int)l, s);
		s = e ? e + 1 : NULL;
	}
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (strcmp(lines[i], lines[j]) > 0) {
				char t[300];
				memcpy(t, lines[i], sizeof(t));
				memcpy(lines[i], lines[j], sizeof(t));
				memcpy(lines[j], t, sizeof(t));
			}
	out[0] = 0;
	for (int i = 0; i < n; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s|", lines[i]);
}

int main(void)
{
	static char before20[4096], before21[4096], after[4096];
	struct seen s;

	wl_init("fanotify");
	snprintf(dir, sizeof(dir), "%s", wl_dir());
	touch("fan-file");
	touch("fan-ignored");
	unlink(path_of("fan-new"));
	fs_place(fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE), 20, "fanotify A");
	fs_place(fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID, O_RDONLY), 21, "fanotify B");
	if (fanotify_mark(20, FAN_MARK_ADD, FAN_MODIFY, AT_FDCWD, path_of("fan-file")) ||
	    fanotify_mark(20, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CLOSE_WRITE, AT_FDCWD, dir) ||
	    fanotify_mark(20, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY,
			  FAN_CLOSE_WRITE, AT_FDCWD, path_of("fan-ignored")) ||
	    fanotify_mark(21, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_CREATE, AT_FDCWD, dir))
		wl_die("fanotify_mark: %s", strerror(errno));
	/* the marks work before the dump */
	touch("fan-file");
	touch("fan-ignored");
	collect(20, 2000, &s);
	if (!(s.file & FAN_MODIFY) || !(s.file & FAN_CLOSE_WRITE) || (s.ignored & FAN_CLOSE_WRITE))
		wl_die("fanotify does not work here before the dump (file %#llx ignored %#llx)", s.file,
		       s.ignored);
	marks_of(20, before20, sizeof(before20));
	marks_of(21, before21, sizeof(before21));

	wl_ready();
	wl_wait_usr1();

	marks_of(20, after, sizeof(after));
	WL_CHECK(!strcmp(before20, after), "group A: fdinfo '%s', before the dump '%s'", after, before20);
	marks_of(21, after, sizeof(after));
	WL_CHECK(!strcmp(before21, after), "group B: fdinfo '%s', before the dump '%s'", after, before21);
	WL_CHECK(fs_getfl(20) & O_NONBLOCK, "group A lost O_NONBLOCK");
	touch("fan-file");
	touch("fan-ignored");
	collect(20, 3000, &s);
	WL_CHECK(s.file & FAN_MODIFY, "no FAN_MODIFY on fan-file after the restore (%#llx)", s.file);
	WL_CHECK(s.file & FAN_CLOSE_WRITE, "no FAN_CLOSE_WRITE (mount mark) on fan-file after the restore");
	WL_CHECK(!(s.ignored & FAN_CLOSE_WRITE), "the ignore mask on fan-ignored is gone (%#llx)", s.ignored);
	touch("fan-new");
	fcntl(21, F_SETFL, O_NONBLOCK);
	collect(21, 3000, &s);
	WL_CHECK(s.fid_events > 0 && (s.other & FAN_CREATE), "no FAN_CREATE (filesystem mark) after the restore");
	wl_finish();
}
