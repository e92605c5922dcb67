/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * ghost_big — a 64 MiB ghost file (unlinked while open), sparse in part:
 * 1 MiB of data at 0, 3 MiB at 32 MiB, 4 KiB at the very end, holes
 * between.  After SIGUSR1: nlink 0, size, every data byte, zeros in the
 * holes and the holes still holes (SEEK_DATA from 1 MiB lands at 32 MiB).
 */
#include "fsutil.h"

#include <sys/stat.h>

#define MIB (1024UL * 1024)
#define SZ (64 * MIB)
#define SEED 77

static const struct { off_t off; size_t len; } runs[] = {
	{ 0, MIB }, { 32 * MIB, 3 * MIB }, { SZ - 4096, 4096 },
};

int main(void)
{
	static unsigned char buf[3 * MIB];
	char path[512];
	struct stat st;

	wl_init("ghost_big");
	snprintf(path, sizeof(path), "%s/ghost-big", wl_dir());
	unlink(path);
	fs_place(open(path, O_RDWR | O_CREAT | O_EXCL, 0644), 20, "ghost-big");
	if (ftruncate(20, SZ))
		wl_die("ftruncate: %s", strerror(errno));
	for (size_t r = 0; r < 3; r++) {
		for (size_t i = 0; i < runs[r].len; i++)
			buf[i] = fs_pat(SEED, (size_t)runs[r].off + i);
		if (pwrite(20, buf, runs[r].len, runs[r].off) != (ssize_t)runs[r].len)
			wl_die("pwrite: %s", strerror(errno));
	}
	if (lseek(20, 5 * MIB, SEEK_SET) != (off_t)(5 * MIB) || unlink(path))
		wl_die("lseek/unlink: %s", strerror(errno));

	wl_ready();
	wl_wait_usr1();

	WL_CHECK(fstat(20, &st) == 0 && st.st_nlink == 0 && st.st_size == (off_t)SZ,
		 "nlink %lu size %lld, want 0 and %lu", (unsigned long)st.st_nlink, (long long)st.st_size, SZ);
	WL_CHECK(lseek(20, 0, SEEK_CUR) == (off_t)(5 * MIB), "position %lld", (long long)lseek(20, 0, SEEK_CUR));
	for (size_t r = 0; r < 3; r++) {
		if (pread(20, buf, runs[r].len, runs[r].off) != (ssize_t)runs[r].len) {
			wl_fail("pread at %lld: %s", (long long)runs[r].off, strerror(errno));
			continue;
		}
		for (size_t i = 0; i < runs[r].len; i++)
			if (buf[i] != fs_pat(SEED, (size_t)runs[r].off + i)) {
				wl_fail("byte %lld differs", (long long)(runs[r].off + (off_t)i));
				break;
			}
	}
	WL_CHECK(pread(20, buf, MIB, 10 * MIB) == (ssize_t)MIB, "pread of a hole");
	for (size_t i = 0; i < MIB; i++)
		if (buf[i]) {
			wl_fail("hole byte %zu is %#x", 10 * MIB + i, buf[i]);
			break;
		}
	off_t d = lseek(20, 2 * MIB, SEEK_DATA);
	WL_CHECK(d == (off_t)(32 * MIB), "SEEK_DATA from 2 MiB gives %lld, want %lu (holes filled?)",
		 (long long)d, 32 * MIB);
	WL_CHECK(st.st_blocks * 512 < (blkcnt_t)(16 * MIB), "the file uses %lld bytes on disk",
		 (long long)st.st_blocks * 512);
	wl_finish();
}
