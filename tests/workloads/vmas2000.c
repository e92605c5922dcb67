/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vmas2000 — many VMAs.
 *
 * Maps 2000 (CKPT_TEST_VMAS) anonymous mappings of 1-4 pages back to back,
 * fills each with its own pattern, then gives them the protections
 * PROT_READ, PROT_READ|PROT_WRITE, PROT_NONE in turn (so no two neighbours
 * merge).  After SIGUSR1 /proc/self/maps must show exactly the same
 * mappings with the same protections, and the content of every one (read
 * through /proc/self/mem, which also reads PROT_NONE memory) must be intact.
 */
#include "workload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct vma {
	uintptr_t start, end;
	char perms[8];
};

static const int prots[3] = { PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE };
static const char *perms[3] = { "r--p", "rw-p", "---p" };

static size_t pages_of(int i)
{
	return (size_t)(i % 4) + 1;
}

static uint64_t word_of(int i, size_t w)
{
	return wl_word(0x766d6173ULL + (uint64_t)i, w);
}

/* The mappings of /proc/self/maps inside [lo, hi). */
static int read_maps(uintptr_t lo, uintptr_t hi, struct vma *v, int max)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long s, e;
		char p[8];
		if (sscanf(line, "%lx-%lx %7s", &s, &e, p) != 3)
			continue;
		if (e <= lo || s >= hi)
			continue;
		if (n < max) {
			v[n].start = s;
			v[n].end = e;
			snprintf(v[n].perms, sizeof(v[n].perms), "%s", p);
		}
		n++;
	}
	fclose(f);
	return n;
}

int main(void)
{
	const char *env = getenv("CKPT_TEST_VMAS");
	int n = env && atoi(env) > 0 ? atoi(env) : 2000;
	struct vma *want, *got;
	size_t total = 0;
	uint64_t *buf;
	char *base;
	int memfd, cnt, bad = 0;

	wl_init("vmas2000");
	want = calloc((size_t)n, sizeof(*want));
	got = calloc((size_t)n + 16, sizeof(*got));
	buf = malloc(4 * WL_PAGE);
	if (!want || !got || !buf)
		wl_die("out of memory");
	for (int i = 0; i < n; i++)
		total += pages_of(i) * WL_PAGE;

	/* reserve with a guard page on each side, then drop the guards so no
	 * outside mapping can merge with the first or last one */
	base = mmap(NULL, total + 2 * WL_PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		wl_die("mmap reservation: %s", strerror(errno));
	munmap(base, WL_PAGE);
	munmap(base + WL_PAGE + total, WL_PAGE);
	base += WL_PAGE;

	for (int i = 0, off0 = 0; i < n; i++) {
		size_t len = pages_of(i) * WL_PAGE;
		uint64_t *p = mmap(base + off0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				   -1, 0);
		if (p == MAP_FAILED)
			wl_die("mmap %d: %s", i, strerror(errno));
		for (size_t w = 0; w < len / 8; w++)
			p[w] = word_of(i, w);
		if (mprotect(p, len, prots[i % 3]))
			wl_die("mprotect %d: %s", i, strerror(errno));
		want[i].start = (uintptr_t)p;
		want[i].end = (uintptr_t)p + len;
		snprintf(want[i].perms, sizeof(want[i].perms), "%s", perms[i % 3]);
		off0 += (int)len;
	}

	cnt = read_maps((uintptr_t)base, (uintptr_t)base + total, got, n + 16);
	if (cnt != n)
		wl_die("expected %d mappings before the dump, /proc/self/maps shows %d", n, cnt);
	for (int i = 0; i < n; i++)
		if (got[i].start != want[i].start || got[i].end != want[i].end || strcmp(got[i].perms, want[i].perms))
			wl_die("mapping %d is not as set up before the dump", i);

	wl_ready();
	wl_wait_usr1();

	cnt = read_maps((uintptr_t)base - WL_PAGE, (uintptr_t)base + total + WL_PAGE, got, n + 16);
	if (cnt < 0)
		wl_fail("cannot read /proc/self/maps");
	WL_CHECK(cnt == n, "/proc/self/maps shows %d mappings in the region, want %d", cnt, n);
	for (int i = 0; i < n && i < cnt; i++) {
		if (got[i].start != want[i].start || got[i].end != want[i].end || strcmp(got[i].perms, want[i].perms)) {
			wl_fail("mapping %d is %#lx-%#lx %s, want %#lx-%#lx %s", i, (unsigned long)got[i].start,
				(unsigned long)got[i].end, got[i].perms, (unsigned long)want[i].start,
				(unsigned long)want[i].end, want[i].perms);
			break;
		}
	}

	memfd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	if (memfd < 0) {
		wl_fail("open /proc/self/mem: %s", strerror(errno));
	} else {
		for (int i = 0; i < n; i++) {
			size_t len = pages_of(i) * WL_PAGE;
			if (pread(memfd, buf, len, (off_t)want[i].start) != (ssize_t)len) {
				wl_fail("read mapping %d through /proc/self/mem: %s", i, strerror(errno));
				break;
			}
			for (size_t w = 0; w < len / 8; w++)
				if (buf[w] != word_of(i, w)) {
					if (!bad++)
						wl_fail("mapping %d (%s) word %zu differs", i, want[i].perms, w);
					break;
				}
		}
		close(memfd);
		WL_CHECK(!bad, "%d mappings have wrong content", bad);
	}

	/* the protections are real, not only in maps: write to the RW ones */
	for (int i = 1; i < n && !wl_failed(); i += 3) {
		volatile uint64_t *p = (volatile uint64_t *)want[i].start;
		p[0] = p[0] ^ 1;
		WL_CHECK(p[0] == (word_of(i, 0) ^ 1), "write to mapping %d did not stick", i);
	}
	wl_finish();
}
