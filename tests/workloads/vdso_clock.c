/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vdso_clock — the vDSO and clocks.
 *
 * Calls clock_gettime(CLOCK_MONOTONIC / CLOCK_REALTIME) in a loop, both
 * through glibc (which uses the vDSO address it cached at startup) and
 * through __vdso_clock_gettime looked up in the vDSO image itself, checking
 * that MONOTONIC never goes backwards.  After SIGUSR1: MONOTONIC is >= the
 * last value seen before (same boot), gettimeofday works through both paths
 * and agrees with CLOCK_REALTIME, and the [vdso] mapping is still at the
 * address of AT_SYSINFO_EHDR (in getauxval, /proc/self/maps and
 * /proc/self/auxv).
 */
#include "workload.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*cgt_fn)(clockid_t, struct timespec *);
typedef int (*gtod_fn)(struct timeval *, void *);

/* Find a dynamic symbol in the vDSO mapped at base. */
static void *vdso_sym(uintptr_t base, const char *name)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
	const Elf64_Shdr *sh;
	uintptr_t load = 0;
	int have_load = 0;

	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64)
		return NULL;
	for (int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff + (size_t)i * eh->e_phentsize);
		if (ph->p_type == PT_LOAD && !have_load) {
			load = ph->p_vaddr - ph->p_offset;
			have_load = 1;
		}
	}
	sh = (const Elf64_Shdr *)(base + eh->e_shoff);
	for (int i = 0; i < eh->e_shnum; i++) {
		const Elf64_Sym *sym;
		const char *str;
		size_t n;

		if (sh[i].sh_type != SHT_DYNSYM)
			continue;
		sym = (const Elf64_Sym *)(base + sh[i].sh_offset);
		str = (const char *)(base + sh[sh[i].sh_link].sh_offset);
		n = sh[i].sh_size / sizeof(Elf64_Sym);
		for (size_t j = 0; j < n; j++)
			if (sym[j].st_name && sym[j].st_shndx != SHN_UNDEF && !strcmp(str + sym[j].st_name, name))
				return (void *)(base + sym[j].st_value - load);
	}
	return NULL;
}

/* Start of the [vdso] line in /proc/self/maps, 0 if none. */
static uintptr_t maps_vdso(void)
{
	char line[512];
	uintptr_t start = 0;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]")) {
			start = (uintptr_t)strtoull(line, NULL, 16);
			break;
		}
	fclose(f);
	return start;
}

/* AT_SYSINFO_EHDR in the kernel's copy of our auxv. */
static uintptr_t proc_auxv_vdso(void)
{
	Elf64_auxv_t av[128];
	ssize_t n;
	int fd = open("/proc/self/auxv", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, av, sizeof(av));
	close(fd);
	for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof(av[0]); i++)
		if (av[i].a_type == AT_SYSINFO_EHDR)
			return av[i].a_un.a_val;
	return 0;
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ULL + (uint64_t)ts->tv_nsec;
}

int main(void)
{
	uintptr_t vdso = getauxval(AT_SYSINFO_EHDR), m;
	struct timespec ts, ts2;
	struct timeval tv;
	uint64_t last = 0, now, iters = 0, real;
	cgt_fn vcgt;
	gtod_fn vgtod;

	wl_init("vdso_clock");
	if (!vdso)
		wl_die("no AT_SYSINFO_EHDR");
	vcgt = (cgt_fn)vdso_sym(vdso, "__vdso_clock_gettime");
	vgtod = (gtod_fn)vdso_sym(vdso, "__vdso_gettimeofday");
	if (!vcgt || !vgtod)
		wl_die("__vdso_clock_gettime / __vdso_gettimeofday not found in the vDSO");
	if (maps_vdso() != vdso)
		wl_die("[vdso] in /proc/self/maps is not at AT_SYSINFO_EHDR %#lx", (unsigned long)vdso);

	wl_ready();

	while (!wl_usr1) {
		if (clock_gettime(CLOCK_MONOTONIC, &ts) || vcgt(CLOCK_MONOTONIC, &ts2) ||
		    clock_gettime(CLOCK_REALTIME, &ts)) {
			wl_fail("clock_gettime failed in the loop");
			break;
		}
		now = ts_ns(&ts2);
		if (now < last) {
			wl_fail("CLOCK_MONOTONIC went backwards in the loop: %llu < %llu after %llu iterations",
				(unsigned long long)now, (unsigned long long)last, (unsigned long long)iters);
			break;
		}
		last = now;
		iters++;
	}

	/* glibc's path (cached vDSO pointers) */
	if (clock_gettime(CLOCK_MONOTONIC, &ts))
		wl_fail("clock_gettime(MONOTONIC): %s", strerror(errno));
	else
		WL_CHECK(ts_ns(&ts) >= last, "CLOCK_MONOTONIC %llu is below the last value %llu seen before",
			 (unsigned long long)ts_ns(&ts), (unsigned long long)last);
	/* the vDSO's own entry point */
	if (vcgt(CLOCK_MONOTONIC, &ts2))
		wl_fail("__vdso_clock_gettime(MONOTONIC) failed");
	else
		WL_CHECK(ts_ns(&ts2) >= ts_ns(&ts), "vDSO MONOTONIC %llu below glibc's %llu",
			 (unsigned long long)ts_ns(&ts2), (unsigned long long)ts_ns(&ts));
	WL_CHECK(iters > 100, "the clock loop ran only %llu times", (unsigned long long)iters);

	if (clock_gettime(CLOCK_REALTIME, &ts))
		wl_fail("clock_gettime(REALTIME): %s", strerror(errno));
	real = ts_ns(&ts) / 1000;
	if (gettimeofday(&tv, NULL))
		wl_fail("gettimeofday: %s", strerror(errno));
	else {
		uint64_t us = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
		WL_CHECK(us + 1000000 > real && us < real + 1000000, "gettimeofday %llu us is far from CLOCK_REALTIME %llu us",
			 (unsigned long long)us, (unsigned long long)real);
	}
	if (vgtod(&tv, NULL))
		wl_fail("__vdso_gettimeofday failed");
	else {
		uint64_t us = (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
		WL_CHECK(us + 1000000 > real && us < real + 1000000,
			 "vDSO gettimeofday %llu us is far from CLOCK_REALTIME %llu us", (unsigned long long)us,
			 (unsigned long long)real);
	}

	WL_CHECK(getauxval(AT_SYSINFO_EHDR) == vdso, "getauxval(AT_SYSINFO_EHDR) %#lx, was %#lx",
		 (unsigned long)getauxval(AT_SYSINFO_EHDR), (unsigned long)vdso);
	m = maps_vdso();
	WL_CHECK(m == vdso, "[vdso] is at %#lx in /proc/self/maps, was %#lx", (unsigned long)m, (unsigned long)vdso);
	m = proc_auxv_vdso();
	WL_CHECK(m == vdso, "/proc/self/auxv AT_SYSINFO_EHDR %#lx, was %#lx", (unsigned long)m, (unsigned long)vdso);

	wl_finish();
}
