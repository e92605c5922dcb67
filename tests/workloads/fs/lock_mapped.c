/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * lock_mapped — a POSIX lock on a file the process also maps.  ckpt must
 * refuse the dump (the restore would drop the lock) and leave the process
 * as it was: after SIGUSR1 the lock is still held (a forked checker sees
 * it with F_GETLK) and the mapping still reads the file.
 */
#include "fsutil.h"

#include <sys/mman.h>
#include <sys/wait.h>

int main(void)
{
	char path[512];
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	char *m;

	wl_init("lock_mapped");
	snprintf(path, sizeof(path), "%s/lock-mapped", wl_dir());
	fs_place(open(path, O_RDWR | O_CREAT | O_TRUNC, 0644), 20, "lock-mapped");
	fs_write_all(20, "mapped and locked", 17, "lock-mapped");
	m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, 20, 0);
	if (m == MAP_FAILED || fcntl(20, F_SETLK, &fl))
		wl_die("mmap/lock: %s", strerror(errno));

	wl_ready();
	wl_wait_usr1();

	pid_t c = fork();
	if (c == 0) {
		int fd = open(path, O_RDWR);
		struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
		_exit(fd >= 0 && fcntl(fd, F_GETLK, &q) == 0 && q.l_type == F_WRLCK && q.l_pid == getppid() ? 0 : 1);
	}
	int st = 0;
	waitpid(c, &st, 0);
	WL_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the POSIX lock is gone after the refused dump");
	WL_CHECK(!memcmp(m, "mapped and locked", 17), "the mapping reads '%.17s'", m);
	wl_finish();
}
