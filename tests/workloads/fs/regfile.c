/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * regfile — a regular file held open (fd 20, O_RDWR, position 100) for
 * the checks of a file that changed between dump and restore.  After
 * SIGUSR1: the same inode as $CKPT_TEST_DIR/regfile-data, its first 8192
 * bytes (what the dump saw; the file may have grown since, when restored
 * with --file-validation=none) and the position.
 */
#include "fsutil.h"

#include <sys/stat.h>

#define LEN 8192
#define SEED 23

int main(void)
{
	static unsigned char buf[LEN];
	char path[512];
	struct stat a, b;

	wl_init("regfile");
	snprintf(path, sizeof(path), "%s/regfile-data", wl_dir());
	for (size_t i = 0; i < LEN; i++)
		buf[i] = fs_pat(SEED, i);
	fs_place(open(path, O_RDWR | O_CREAT | O_TRUNC, 0644), 20, "regfile-data");
	fs_write_all(20, buf, LEN, "regfile-data");
	if (lseek(20, 100, SEEK_SET) != 100)
		wl_die("lseek: %s", strerror(errno));

	wl_ready();
	wl_wait_usr1();

	WL_CHECK(fstat(20, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino,
		 "fd 20 is not %s", path);
	WL_CHECK(lseek(20, 0, SEEK_CUR) == 100, "position %lld, want 100", (long long)lseek(20, 0, SEEK_CUR));
	memset(buf, 0, LEN);
	WL_CHECK(pread(20, buf, LEN, 0) == LEN, "pread: %s", strerror(errno));
	for (size_t i = 0; i < LEN; i++)
		if (buf[i] != fs_pat(SEED, i)) {
			wl_fail("byte %zu differs", i);
			break;
		}
	wl_finish();
}
