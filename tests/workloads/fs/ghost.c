/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ghost — a regular file unlinked while open and mapped (a "ghost file").
 *
 *   fd 20  O_RDWR, position 1234, shared with the child (one open file)
 *   fd 21  O_WRONLY|O_APPEND, a second open file of the same inode
 *   fd 22  O_RDONLY, position 777
 *   a MAP_SHARED mapping (parent and child) and a MAP_PRIVATE one with
 *   one copy-on-write page; mode 0640, mtime set; then the name is removed.
 *   fd 23  O_RDWR on ghost-linked, which also has the name ghost-other;
 *          ghost-linked is removed (nlink 1): after restore fd 23 must be
 *          the inode ghost-other names (a write through it is seen there).
 *          With the argument "linked-gone" the test driver removed
 *          ghost-other before the restore: fd 23 must then be an unlinked
 *          file of its own with the contents of the dump.
 *   ghost-maponly: mapped MAP_SHARED, its fd closed, then unlinked: only
 *          the mapping holds it; after restore it keeps its contents and
 *          /proc/self/maps names it "(deleted)".
 *
 * After SIGUSR1 the parent checks: nlink 0 and one inode behind every fd,
 * the name still gone, size, mode, mtime, contents through the fds and the
 * mappings, positions, flags, the /proc link.  It writes a marker with
 * pwrite and wakes the child, which checks the same file, finds the
 * marker in its mapping, reads 4 bytes through the shared fd 20 (moving
 * the shared position) and writes its own marker through the mapping.  The
 * parent then sees the child's marker through pread and its position moved
 * by 4: one file, one open file, as before the dump.
 */
#include "fsutil.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define SZ ((int)(10 * WL_PAGE + 100))
#define SEED 41
#define MTIME_S 1600000000

static char path[512];
static unsigned char *sh, *pr;

static int check_common(const char *who, char *why, int wl)
{
	struct stat st;
	const char *l;
	size_t i;

	if (fstat(20, &st)) {
		snprintf(why, wl, "%s: fstat: %s", who, strerror(errno));
		return -1;
	}
	if (st.st_nlink != 0) {
		snprintf(why, wl, "%s: nlink %lu, want 0", who, (unsigned long)st.st_nlink);
		return -1;
	}
	if (st.st_size != SZ) {
		snprintf(why, wl, "%s: size %lld, want %d", who, (long long)st.st_size, SZ);
		return -1;
	}
	l = fs_fdlink(20);
	if (strncmp(l, path, strlen(path)) || !strstr(l, " (deleted)")) {
		snprintf(why, wl, "%s: fd 20 links to '%.100s', want '%.100s (deleted)'", who, l, path);
		return -1;
	}
	for (i = 0; i < SZ; i++)
		if (sh[i] != fs_pat(SEED, i) && !(i >= 3 * WL_PAGE && i < 3 * WL_PAGE + 8) &&
		    i != 5000 && i != 6000) {
			snprintf(why, wl, "%s: shared mapping byte %zu differs", who, i);
			return -1;
		}
	return 0;
}

static void child(int res)
{
	char why[256] = "OK";
	off_t pos;

	wl_wait_usr1();
	if (check_common("child", why, (int)sizeof(why)) == 0) {
		unsigned char b[4];

		pos = lseek(20, 0, SEEK_CUR);
		if (pos != 1234)
			snprintf(why, sizeof(why), "child: fd 20 at %lld, want 1234", (long long)pos);
		else if (sh[5000] != 0xa5)
			snprintf(why, sizeof(why), "child: the parent's pwrite is not in the shared mapping");
		else if (read(20, b, 4) != 4 || b[0] != fs_pat(SEED, 1234))
			snprintf(why, sizeof(why), "child: read at 1234 through fd 20 failed");
		else
			sh[6000] = 0x5a;
	}
	if (write(res, why, strlen(why)) < 0)
		_exit(3);
	_exit(strcmp(why, "OK") ? 1 : 0);
}

int main(int argc, char **argv)
{
	int linked_gone = argc > 1 && !strcmp(argv[1], "linked-gone");
	unsigned char *buf = malloc(SZ);
	struct timespec ts[2] = { { MTIME_S - 5, 0 }, { MTIME_S, 123456789 } };
	int fd, res[2];
	pid_t kid;

	wl_init("ghost");
	snprintf(path, sizeof(path), "%s/ghost-file", wl_dir());
	for (size_t i = 0; i < SZ; i++)
		buf[i] = fs_pat(SEED, i);
	unlink(path);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	fs_place(fd, 20, "ghost-file");
	fs_write_all(20, buf, SZ, "ghost-file");
	if (fchmod(20, 0640))
		wl_die("fchmod: %s", strerror(errno));
	fs_place(open(path, O_WRONLY | O_APPEND), 21, "ghost-file append");
	fs_place(open(path, O_RDONLY), 22, "ghost-file read");
	sh = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, 20, 0);
	pr = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE, 22, 0);
	if (sh == MAP_FAILED || pr == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	/* page 2 of the private mapping is a copy of its own */
	memset(pr + 2 * WL_PAGE, 0xcc, WL_PAGE);
	/* page 3 written through the shared mapping: the file's contents */
	for (int i = 0; i < 8; i++)
		sh[3 * WL_PAGE + i] = (unsigned char)(0xe0 + i);
	if (msync(sh, SZ, MS_SYNC) || futimens(20, ts))
		wl_die("msync/futimens: %s", strerror(errno));
	if (lseek(20, 1234, SEEK_SET) != 1234 || lseek(22, 777, SEEK_SET) != 777)
		wl_die("lseek: %s", strerror(errno));
	if (unlink(path))
		wl_die("unlink: %s", strerror(errno));
	char maponly[600];
	snprintf(maponly, sizeof(maponly), "%s/ghost-maponly", wl_dir());
	unlink(maponly);
	fd = open(maponly, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || ftruncate(fd, 2 * WL_PAGE))
		wl_die("ghost-maponly: %s", strerror(errno));
	uint64_t *mo = mmap(NULL, 2 * WL_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mo == MAP_FAILED)
		wl_die("mmap ghost-maponly: %s", strerror(errno));
	for (size_t i = 0; i < 2 * WL_PAGE / 8; i++)
		mo[i] = wl_word(SEED, i);
	close(fd);
	if (unlink(maponly))
		wl_die("unlink ghost-maponly: %s", strerror(errno));
	char linked[600], other[600];
	snprintf(linked, sizeof(linked), "%s/ghost-linked", wl_dir());
	snprintf(other, sizeof(other), "%s/ghost-other", wl_dir());
	unlink(linked);
	unlink(other);
	fs_place(open(linked, O_RDWR | O_CREAT | O_EXCL, 0644), 23, "ghost-linked");
	fs_write_all(23, "linked!", 7, "ghost-linked");
	if (link(linked, other) || unlink(linked))
		wl_die("link/unlink: %s", strerror(errno));
	if (pipe(res))
		wl_die("pipe: %s", strerror(errno));
	kid = fork();
	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid == 0) {
		close(res[0]);
		child(res[1]);
	}
	close(res[1]);

	wl_ready();
	wl_wait_usr1();

	char why[256];
	struct stat st, s1, s2;
	if (check_common("parent", why, (int)sizeof(why)))
		wl_fail("%s", why);
	WL_CHECK(access(path, F_OK) != 0 && errno == ENOENT, "%s exists again after the restore", path);
	if (fstat(20, &st) || fstat(21, &s1) || fstat(22, &s2))
		wl_fail("fstat: %s", strerror(errno));
	WL_CHECK(st.st_ino == s1.st_ino && st.st_ino == s2.st_ino && st.st_dev == s2.st_dev,
		 "fds 20/21/22 are not one file any more (inodes %lu %lu %lu)",
		 (unsigned long)st.st_ino, (unsigned long)s1.st_ino, (unsigned long)s2.st_ino);
	WL_CHECK((st.st_mode & 07777) == 0640, "mode 0%o, want 0640", st.st_mode & 07777);
	WL_CHECK(st.st_mtim.tv_sec == MTIME_S && st.st_mtim.tv_nsec == 123456789,
		 "mtime %lld.%09ld, want %d.123456789", (long long)st.st_mtim.tv_sec,
		 st.st_mtim.tv_nsec, MTIME_S);
	WL_CHECK(lseek(22, 0, SEEK_CUR) == 777, "fd 22 at %lld, want 777", (long long)lseek(22, 0, SEEK_CUR));
	WL_CHECK((fs_getfl(21) & (O_ACCMODE | O_APPEND)) == (O_WRONLY | O_APPEND), "fd 21 flags 0%o",
		 fs_getfl(21));
	WL_CHECK((fs_getfl(20) & O_ACCMODE) == O_RDWR && (fs_getfl(22) & O_ACCMODE) == O_RDONLY,
		 "fd 20/22 access modes 0%o/0%o", fs_getfl(20), fs_getfl(22));
	memset(buf, 0, SZ);
	WL_CHECK(pread(22, buf, SZ, 0) == SZ, "pread of fd 22: %s", strerror(errno));
	for (size_t i = 0; i < SZ; i++) {
		unsigned char want = (i >= 3 * WL_PAGE && i < 3 * WL_PAGE + 8) ? (unsigned char)(0xe0 + i - 3 * WL_PAGE)
									: fs_pat(SEED, i);
		if (buf[i] != want || (i / WL_PAGE != 2 && pr[i] != want) ||
		    (i / WL_PAGE == 2 && pr[i] != 0xcc)) {
			wl_fail("contents differ at byte %zu (file %#x, private mapping %#x)", i, buf[i], pr[i]);
			break;
		}
	}
	/* parent -> child through the file, child -> parent through the mapping */
	unsigned char m = 0xa5, c = 0;
	WL_CHECK(pwrite(20, &m, 1, 5000) == 1, "pwrite: %s", strerror(errno));
	kill(kid, SIGUSR1);
	ssize_t n = read(res[0], why, sizeof(why) - 1);
	why[n > 0 ? n : 0] = 0;
	int wst = 0;
	waitpid(kid, &wst, 0);
	WL_CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0 && !strcmp(why, "OK"), "child: %s (status %#x)",
		 why, wst);
	if (!strcmp(why, "OK")) {
		WL_CHECK(pread(22, &c, 1, 6000) == 1 && c == 0x5a, "the child's write is not in the file (%#x)", c);
		WL_CHECK(lseek(20, 0, SEEK_CUR) == 1238, "fd 20 at %lld after the child's read, want 1238",
			 (long long)lseek(20, 0, SEEK_CUR));
	}
	/* the private page 2 does not follow the file, page 4 does */
	m = 0x11;
	WL_CHECK(pwrite(20, &m, 1, 4 * WL_PAGE) == 1 && pr[4 * WL_PAGE] == 0x11 && pr[2 * WL_PAGE] == 0xcc,
		 "the private mapping does not follow the file as before");
	struct stat l1, l2;
	char lb[8] = "";
	WL_CHECK(lseek(23, 0, SEEK_CUR) == 7, "fd 23 at %lld, want 7", (long long)lseek(23, 0, SEEK_CUR));
	if (linked_gone) {
		WL_CHECK(fstat(23, &l1) == 0 && l1.st_nlink == 0 && l1.st_size == 7 &&
				 pread(23, lb, 7, 0) == 7 && !memcmp(lb, "linked!", 7),
			 "fd 23 (its other link removed before the restore): nlink %lu size %lld '%.7s'",
			 (unsigned long)l1.st_nlink, (long long)l1.st_size, lb);
		WL_CHECK(access(other, F_OK) != 0, "ghost-other exists again");
	} else {
		WL_CHECK(fstat(23, &l1) == 0 && stat(other, &l2) == 0 && l1.st_ino == l2.st_ino &&
				 l1.st_dev == l2.st_dev && l1.st_nlink == 1,
			 "fd 23 is not the inode ghost-other names (nlink %lu)", (unsigned long)l1.st_nlink);
		int of = open(other, O_RDONLY);
		WL_CHECK(write(23, "X", 1) == 1 && of >= 0 && pread(of, lb, 8, 0) == 8 &&
				 !memcmp(lb, "linked!X", 8),
			 "a write through fd 23 is not seen through ghost-other ('%.8s')", lb);
		if (of >= 0)
			close(of);
	}
	WL_CHECK(access(linked, F_OK) != 0, "ghost-linked exists again");
	for (size_t i = 0; i < 2 * WL_PAGE / 8; i++)
		if (mo[i] != wl_word(SEED, i)) {
			wl_fail("ghost-maponly (mapping only) word %zu differs", i);
			break;
		}
	static char maps[65536];
	char want[700];
	snprintf(want, sizeof(want), "%s (deleted)", maponly);
	WL_CHECK(wl_read_file("/proc/self/maps", maps, sizeof(maps)) > 0 && strstr(maps, want),
		 "/proc/self/maps does not show %s", want);
	WL_CHECK(access(maponly, F_OK) != 0, "ghost-maponly exists again");
	WL_CHECK(write(21, "tail", 4) == 4 && fstat(22, &s2) == 0 && s2.st_size == SZ + 4,
		 "append through fd 21 did not grow the file to %d", SZ + 4);
	wl_finish();
}
