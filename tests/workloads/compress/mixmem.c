/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mixmem — memory whose pages compress like real ones (bench/mixfill.h:
 * sparse structs, text, random), for the compressed page images.
 *
 *  - CKPT_TEST_MIX_MB (default 48) MiB of private anonymous memory;
 *  - 1 MiB of it made read-only, 64 KiB made PROT_NONE after filling
 *    (restore must write pages it cannot write through the mapping);
 *  - 1 MiB of shared anonymous memory;
 *  - 1 MiB never touched, which must read as zeros.
 * After SIGUSR1 every page is regenerated and compared.
 */
#include "workload.h"
#include "mixfill.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static unsigned char want[WL_PAGE];

static void fill(unsigned char *a, size_t pages, size_t first)
{
	for (size_t i = 0; i < pages; i++)
		mix_page(a + i * WL_PAGE, first + i, WL_PAGE);
}

static void check(const char *what, const unsigned char *a, size_t pages, size_t first)
{
	size_t bad = 0, first_bad = 0;
	for (size_t i = 0; i < pages; i++) {
		mix_page(want, first + i, WL_PAGE);
		if (memcmp(a + i * WL_PAGE, want, WL_PAGE) && !bad++)
			first_bad = i;
	}
	WL_CHECK(!bad, "%s: %zu of %zu pages wrong, first %zu", what, bad, pages, first_bad);
}

int main(void)
{
	size_t mb = 48, pages;
	const char *env;

	wl_init("mixmem");
	env = getenv("CKPT_TEST_MIX_MB");
	if (env && atoi(env) > 0)
		mb = (size_t)atoi(env);
	pages = (mb << 20) / WL_PAGE;

	unsigned char *a = mmap(NULL, mb << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *ro = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *none = mmap(NULL, 64 << 10, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *sh = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned char *zero = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED || ro == MAP_FAILED || none == MAP_FAILED || sh == MAP_FAILED || zero == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	fill(a, pages, 0);
	fill(ro, 256, 1000000);
	fill(none, 16, 2000000);
	fill(sh, 256, 3000000);
	if (mprotect(ro, 1 << 20, PROT_READ) || mprotect(none, 64 << 10, PROT_NONE))
		wl_die("mprotect: %s", strerror(errno));

	wl_ready();
	wl_wait_usr1();

	check("private memory", a, pages, 0);
	check("read-only memory", ro, 256, 1000000);
	if (mprotect(none, 64 << 10, PROT_READ))
		wl_die("mprotect back: %s", strerror(errno));
	check("PROT_NONE memory", none, 16, 2000000);
	check("shared memory", sh, 256, 3000000);
	size_t nz = 0;
	for (size_t i = 0; i < (1 << 20); i++)
		nz += zero[i] != 0;
	WL_CHECK(!nz, "untouched memory: %zu bytes not zero", nz);
	wl_finish();
}
