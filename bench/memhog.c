/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * memhog — benchmark workload for ckpt.
 *
 *   memhog MIB [mix]
 *
 * Closes every file descriptor above 2 that it inherited (so a dump of it
 * measures memory, not whatever the caller leaked), maps MIB MiB of private
 * anonymous memory, writes non-zero data into every page, writes its pid to
 * the file named by $CKPT_TEST_READY (through a temporary file and rename(),
 * so a reader never sees a partial file) and then sleeps in pause() until
 * it is killed.
 *
 * Every page is filled with one byte value derived from its index, and its
 * first 8 bytes hold a stamp of the index, so a page restored at the wrong
 * address or from the wrong offset is caught.  On SIGUSR1 memhog checks all
 * of its memory and writes "ok PAGES" or "bad PAGE" to the file named by
 * $CKPT_TEST_VERIFY (again through tmp + rename), then sleeps again.  The
 * benchmark uses that after a restore, outside the timed part.
 *
 * With "mix" the pages hold content that compresses like real memory
 * (bench/mixfill.h: a third sparse structs, a third text, a third random)
 * instead, for bench/bench-compress.sh; the check regenerates each page.
 *
 * The check runs in the signal handler itself.  A flag set by the handler
 * and tested after pause() returns would race with a restore: the restored
 * task re-enters its interrupted pause(), and a signal that arrives just
 * before that would be handled and then slept through.  Since the main
 * program does nothing but pause(), the handler may do real work; it only
 * uses async-signal-safe calls all the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BENCH_PROG "memhog"
#include "benchutil.h"
#include "mixfill.h"

#define STAMP_KEY 0x6d656d686f67ULL /* "memhog" */

static unsigned char *area;
static size_t npages, page_size;
static char verify_path[PATH_MAX];
static int mix;
static unsigned char mix_want[65536]; /* one regenerated page */

static unsigned char page_byte(size_t i)
{
	return (unsigned char)(i % 251 + 1); /* never zero */
}

static uint64_t page_stamp(size_t i)
{
	return ((uint64_t)i << 16) ^ STAMP_KEY;
}

static void fill(void)
{
	if (mix) {
		for (size_t i = 0; i < npages; i++)
			mix_page(area + i * page_size, i, page_size);
		return;
	}
	for (size_t i = 0; i < npages; i++) {
		unsigned char *p = area + i * page_size;
		uint64_t stamp = page_stamp(i);

		memset(p, page_byte(i), page_size);
		memcpy(p, &stamp, sizeof(stamp));
	}
}

/* Index of the first wrong page, or npages when all are right. */
static size_t check(void)
{
	if (mix) {
		for (size_t i = 0; i < npages; i++) {
			mix_page(mix_want, i, page_size);
			if (memcmp(area + i * page_size, mix_want, page_size))
				return i;
		}
		return npages;
	}
	for (size_t i = 0; i < npages; i++) {
		const unsigned char *p = area + i * page_size;
		unsigned char b = page_byte(i);
		uint64_t stamp;

		memcpy(&stamp, p, sizeof(stamp));
		if (stamp != page_stamp(i))
			return i;
		for (size_t off = sizeof(stamp); off < page_size; off++)
			if (p[off] != b)
				return i;
	}
	return npages;
}

static void on_usr1(int sig)
{
	int saved_errno = errno, err;
	size_t bad = check(), len = 0;
	char text[64];

	(void)sig;
	put_str(text, sizeof(text), &len, bad == npages ? "ok " : "bad ");
	put_num(text, sizeof(text), &len, bad == npages ? npages : bad);
	put_str(text, sizeof(text), &len, "\n");
	if (!verify_path[0]) {
		say("", text);
	} else {
		err = write_file(verify_path, text);
		if (err < 0)
			say("cannot write the check result to ", verify_path);
	}
	errno = saved_errno;
}

/* SIGUSR2: write PCT % of the pages again (every (100/PCT)th, the same
 * values: the contents stay checkable) and report "touched N" to
 * $CKPT_BENCH_TOUCHED; PCT from $CKPT_BENCH_TOUCH_PCT.  For the frozen time
 * of incremental dumps (bench-incremental.sh). */
static size_t touch_step;
static char touched_path[PATH_MAX];

static void on_usr2(int sig)
{
	int saved_errno = errno;
	size_t n = 0, len = 0;
	char text[64];

	(void)sig;
	for (size_t i = 0; i < npages; i += touch_step, n++) {
		volatile uint64_t *w = (volatile uint64_t *)(area + i * page_size);
		*w = page_stamp(i);
	}
	put_str(text, sizeof(text), &len, "touched ");
	put_num(text, sizeof(text), &len, n);
	put_str(text, sizeof(text), &len, "\n");
	if (touched_path[0] && write_file(touched_path, text) < 0)
		say("cannot write ", touched_path);
	errno = saved_errno;
}

static void close_inherited_fds(void)
{
	struct rlimit rl;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
		return;
#endif
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur > 65536)
		rl.rlim_cur = 65536;
	for (int fd = 3; fd < (int)rl.rlim_cur; fd++)
		close(fd);
}

int main(int argc, char **argv)
{
	const char *ready = getenv("CKPT_TEST_READY");
	const char *vpath = getenv("CKPT_TEST_VERIFY");
	struct sigaction sa;
	unsigned long mib;
	char *end, text[32];
	size_t size;
	long ps;
	int err;

	if (argc == 3 && !strcmp(argv[2], "mix"))
		mix = 1;
	else if (argc != 2) {
		fprintf(stderr, "usage: %s MIB [mix]\n", argv[0]);
		return 2;
	}
	close_inherited_fds();
	errno = 0;
	mib = strtoul(argv[1], &end, 10);
	if (errno || end == argv[1] || *end || mib == 0 || mib > (SIZE_MAX >> 20)) {
		fprintf(stderr, "memhog: bad size '%s' (MiB, a positive integer)\n", argv[1]);
		return 2;
	}
	ps = sysconf(_SC_PAGESIZE);
	if (ps <= 0) {
		perror("memhog: sysconf(_SC_PAGESIZE)");
		return 1;
	}
	page_size = (size_t)ps;
	if (mix && page_size > sizeof(mix_want)) {
		fprintf(stderr, "memhog: page size %ld is too large for mix\n", ps);
		return 1;
	}
	size = (size_t)mib << 20;
	npages = size / page_size;

	if (vpath) {
		if (strlen(vpath) >= sizeof(verify_path)) {
			fprintf(stderr, "memhog: CKPT_TEST_VERIFY is too long\n");
			return 1;
		}
		strcpy(verify_path, vpath);
	}

	area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) {
		fprintf(stderr, "memhog: mmap of %lu MiB: %s\n", mib, strerror(errno));
		return 1;
	}
	fill();

	/* Only now: a check before the memory is filled would report junk. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGUSR1, &sa, NULL) < 0) {
		perror("memhog: sigaction");
		return 1;
	}

	const char *pct = getenv("CKPT_BENCH_TOUCH_PCT"), *tpath = getenv("CKPT_BENCH_TOUCHED");
	if (pct && atoi(pct) > 0 && tpath && strlen(tpath) < sizeof(touched_path)) {
		touch_step = 100 / atoi(pct);
		if (!touch_step)
			touch_step = 1;
		strcpy(touched_path, tpath);
		sa.sa_handler = on_usr2;
		if (sigaction(SIGUSR2, &sa, NULL) < 0) {
			perror("memhog: sigaction");
			return 1;
		}
	}

	snprintf(text, sizeof(text), "%d\n", (int)getpid());
	if (ready) {
		err = write_file(ready, text);
		if (err < 0) {
			fprintf(stderr, "memhog: cannot write %s: %s\n", ready, strerror(-err));
			return 1;
		}
	} else {
		fputs(text, stdout);
		fflush(stdout);
	}

	for (;;)
		pause();
}
