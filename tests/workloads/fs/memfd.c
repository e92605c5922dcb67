/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * memfd — memfds with contents, holes, seals, offsets.
 *
 *   fd 20   memfd "ckpt test memfd" (MFD_ALLOW_SEALING): 200000 pattern
 *           bytes at 0, 4096 at 3 MiB, size 4 MiB (holes between), sealed
 *           F_SEAL_SHRINK | F_SEAL_GROW, offset 777
 *   fd 21   dup of fd 20
 *   fd 22   the same memfd opened again O_RDONLY through /proc, offset 1234
 *   fd 23   memfd "plain" (no MFD_ALLOW_SEALING: seals F_SEAL_SEAL),
 *           "0123456789", offset 3, O_APPEND
 *   fd 24   memfd "sealed-write": "immutable", F_SEAL_WRITE | F_SEAL_SEAL
 */
#include "fsutil.h"

#include <sys/mman.h>
#include <sys/stat.h>

#define MB (1024 * 1024)
#define LEN1 200000
#define OFF2 (3 * MB)
#define LEN2 4096
#define SIZE (4 * MB)

static unsigned char buf[LEN1];

int main(void)
{
	struct stat a, b;
	char path[64], small[32];

	wl_init("fs/memfd");
	fs_place(memfd_create("ckpt test memfd", MFD_ALLOW_SEALING), 20, "memfd");
	for (size_t i = 0; i < LEN1; i++)
		buf[i] = fs_pat(31, i);
	fs_write_all(20, buf, LEN1, "memfd");
	for (size_t i = 0; i < LEN2; i++)
		buf[i] = fs_pat(32, i);
	if (pwrite(20, buf, LEN2, OFF2) != LEN2 || ftruncate(20, SIZE))
		wl_die("memfd: %s", strerror(errno));
	if (fcntl(20, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		wl_die("F_ADD_SEALS: %s", strerror(errno));
	lseek(20, 777, SEEK_SET);
	fs_place(dup(20), 21, "dup");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", 20);
	fs_place(open(path, O_RDONLY), 22, "reopen");
	lseek(22, 1234, SEEK_SET);

	fs_place(memfd_create("plain", 0), 23, "memfd plain");
	fs_write_all(23, "0123456789", 10, "memfd plain");
	lseek(23, 3, SEEK_SET);
	fcntl(23, F_SETFL, O_APPEND);

	fs_place(memfd_create("sealed-write", MFD_ALLOW_SEALING), 24, "memfd sealed");
	fs_write_all(24, "immutable", 9, "memfd sealed");
	if (fcntl(24, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL))
		wl_die("F_ADD_SEALS: %s", strerror(errno));

	wl_ready();
	wl_wait_usr1();

	WL_CHECK(!strcmp(fs_fdlink(20), "/memfd:ckpt test memfd (deleted)"), "fd 20 is %s", fs_fdlink(20));
	WL_CHECK(!strcmp(fs_fdlink(23), "/memfd:plain (deleted)"), "fd 23 is %s", fs_fdlink(23));
	WL_CHECK(fstat(20, &a) == 0 && fstat(22, &b) == 0 && a.st_ino == b.st_ino, "fds 20 and 22 are not one memfd");
	WL_CHECK(a.st_size == SIZE, "size %lld, want %d", (long long)a.st_size, SIZE);
	WL_CHECK(fcntl(20, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW), "fd 20 seals %#x", fcntl(20, F_GET_SEALS));
	WL_CHECK(lseek(21, 0, SEEK_CUR) == 777, "fd 21 (dup of 20) at %lld, want 777", (long long)lseek(21, 0, SEEK_CUR));
	WL_CHECK(lseek(22, 0, SEEK_CUR) == 1234, "fd 22 at %lld, want 1234", (long long)lseek(22, 0, SEEK_CUR));
	WL_CHECK((fs_getfl(22) & O_ACCMODE) == O_RDONLY, "fd 22 flags 0%o", fs_getfl(22));
	WL_CHECK((fs_getfl(20) & O_ACCMODE) == O_RDWR, "fd 20 flags 0%o", fs_getfl(20));

	WL_CHECK(pread(22, buf, LEN1, 0) == LEN1, "pread: %s", strerror(errno));
	for (size_t i = 0; i < LEN1; i++)
		if (buf[i] != fs_pat(31, i)) {
			wl_fail("byte %zu differs", i);
			break;
		}
	WL_CHECK(pread(22, buf, LEN2, OFF2) == LEN2, "pread: %s", strerror(errno));
	for (size_t i = 0; i < LEN2; i++)
		if (buf[i] != fs_pat(32, i)) {
			wl_fail("byte %zu at 3 MiB differs", i);
			break;
		}
	{
		static const size_t holes[] = { LEN1, MB, OFF2 - 1, OFF2 + LEN2, SIZE - 1 };
		for (size_t i = 0; i < sizeof(holes) / sizeof(holes[0]); i++) {
			unsigned char c = 0xff;
			WL_CHECK(pread(22, &c, 1, (off_t)holes[i]) == 1 && c == 0, "byte at %zu is %#x, want 0", holes[i], c);
		}
	}
	/* one inode: a write through fd 20 shows through fd 22 */
	WL_CHECK(pwrite(20, "Z", 1, 5) == 1, "pwrite: %s", strerror(errno));
	WL_CHECK(pread(22, small, 1, 5) == 1 && small[0] == 'Z', "fd 22 does not see fd 20's write");
	errno = 0;
	WL_CHECK(ftruncate(20, 100) < 0 && errno == EPERM, "F_SEAL_SHRINK not enforced (%s)", strerror(errno));
	errno = 0;
	WL_CHECK(pwrite(20, "x", 1, SIZE) < 0 && errno == EPERM, "F_SEAL_GROW not enforced (%s)", strerror(errno));

	WL_CHECK(fcntl(23, F_GET_SEALS) == F_SEAL_SEAL, "fd 23 seals %#x, want F_SEAL_SEAL", fcntl(23, F_GET_SEALS));
	WL_CHECK(lseek(23, 0, SEEK_CUR) == 3, "fd 23 at %lld", (long long)lseek(23, 0, SEEK_CUR));
	WL_CHECK(fs_getfl(23) & O_APPEND, "fd 23 lost O_APPEND");
	memset(small, 0, sizeof(small));
	WL_CHECK(pread(23, small, 20, 0) == 10 && !memcmp(small, "0123456789", 10), "fd 23 holds '%s'", small);

	WL_CHECK(fcntl(24, F_GET_SEALS) == (F_SEAL_WRITE | F_SEAL_SEAL), "fd 24 seals %#x", fcntl(24, F_GET_SEALS));
	errno = 0;
	WL_CHECK(pwrite(24, "x", 1, 0) < 0 && errno == EPERM, "F_SEAL_WRITE not enforced (%s)", strerror(errno));
	memset(small, 0, sizeof(small));
	WL_CHECK(pread(24, small, 20, 0) == 9 && !memcmp(small, "immutable", 9), "fd 24 holds '%s'", small);
	wl_finish();
}
