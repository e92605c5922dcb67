// SPDX-License-Identifier: GPL-2.0-only
/*
 * shstk plugin: x86 user shadow stacks (CET shadow stack, Linux 6.6+).
 *
 * Dump (tree_frozen): for every process of the tree, the mappings whose
 * smaps VmFlags hold "ss" are saved with their contents (shstk-vma.img);
 * for every thread, ptrace(PTRACE_ARCH_PRCTL, ARCH_SHSTK_STATUS) gives the
 * enabled features (the kernel writes them to an address of the tracer, so
 * no syscall injection is needed) and, when the shadow stack is on, the
 * regset NT_X86_SHSTK gives the SSP (shstk-thread.img).  A tree without
 * shadow stacks writes nothing.
 *
 * Restore (restore_resume, memory and threads are back, nothing ran yet):
 * each saved mapping is unmapped (the core restored it as plain memory),
 * made again with map_shadow_stack() injected into the process and filled
 * through /proc/PID/mem (the kernel lets a forced write of the tracer into
 * shadow-stack memory); then, in each thread that had it, the shadow stack
 * is enabled with an injected arch_prctl(ARCH_SHSTK_ENABLE) (ptrace cannot
 * enable it for another task) and the SSP set through NT_X86_SHSTK.
 *
 * See docs/plugins/shstk.md: everything below that needs a shadow-stack CPU
 * is untested.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "ckpt-plugin.h"
#include "shstk_util.h"

#define SHSTK_NAME "shstk"
#define IMG_VMA "shstk-vma.img"
#define IMG_THREAD "shstk-thread.img"

struct shstk_priv {
	const struct ckpt_host *host;
	struct ckpt_img *img_vma, *img_thread;
	size_t nvmas_saved, nthreads_saved;
	/* restore */
	ProtobufCMessage **vmas, **threads;
	size_t nvmas, nthreads;
};

#define err(p, ...) (p)->host->log(SHSTK_NAME, CKPT_LOG_ERROR, __VA_ARGS__)
#define info(p, ...) (p)->host->log(SHSTK_NAME, CKPT_LOG_INFO, __VA_ARGS__)
#define dbg(p, ...) (p)->host->log(SHSTK_NAME, CKPT_LOG_DEBUG, __VA_ARGS__)

/* ---- what this machine can do --------------------------------------------- */

static bool cpu_has_shstk(void)
{
#if defined(__x86_64__)
	unsigned int a, b, c, d;

	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return false;
	return (c >> 7) & 1; /* CPUID.(EAX=7,ECX=0):ECX[7] CET_SS */
#else
	return false;
#endif
}

/* 0 and *features when the kernel knows shadow stacks, else -errno. */
static int self_status(uint64_t *features)
{
#if defined(__x86_64__)
	unsigned long f = 0;

	if (syscall(SYS_arch_prctl, ARCH_SHSTK_STATUS, &f) < 0)
		return -errno;
	*features = f;
	return 0;
#else
	(void)features;
	return -ENOTSUP;
#endif
}

static int shstk_check(void *priv, char *msg, size_t len)
{
	uint64_t f = 0;
	int r;

	(void)priv;
	if (!cpu_has_shstk()) {
		snprintf(msg, len, "no shadow-stack CPU here");
		return -ENODEV;
	}
	r = self_status(&f);
	if (r) {
		snprintf(msg, len, "the CPU has shadow stacks, the kernel does not support them "
				   "for user space (ARCH_SHSTK_STATUS: %s; Linux 6.6+ with "
				   "CONFIG_X86_USER_SHADOW_STACK needed)",
			 strerror(-r));
		return -ENOTSUP;
	}
	snprintf(msg, len, "user shadow stacks (CPU and kernel; ckpt itself runs with them %s)",
		 (f & ARCH_SHSTK_SHSTK) ? "on" : "off");
	return 0;
}

/* ---- dump ---------------------------------------------------------------------- */

static int save(struct shstk_priv *p, struct ckpt_img **img, const char *name,
		const ProtobufCMessage *m)
{
	int r;

	if (!*img) {
		*img = p->host->img_create(name, m->descriptor->name);
		if (!*img) {
			r = -errno;
			err(p, "dump: cannot create image %s: %s", name, strerror(-r));
			return r ? r : -EIO;
		}
	}
	r = p->host->img_write_msg(*img, m);
	if (r < 0)
		err(p, "dump: cannot write image %s: %s", name, strerror(-r));
	return r < 0 ? r : 0;
}

static char *read_text(const char *path)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	for (;;) {
		ssize_t r;

		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				goto fail;
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}

static int dump_vmas(struct shstk_priv *p, pid_t pid)
{
	struct shstk_range *rs = NULL;
	char path[64], *text;
	int n, ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	text = read_text(path);
	if (!text) {
		ret = -errno;
		err(p, "dump: cannot read %s: %s", path, strerror(-ret));
		return ret ? ret : -EIO;
	}
	n = shstk_smaps_scan(text, NULL, 0);
	if (n > 0) {
		rs = calloc((size_t)n, sizeof(*rs));
		if (!rs) {
			free(text);
			return -ENOMEM;
		}
		n = shstk_smaps_scan(text, rs, (size_t)n);
	}
	free(text);
	if (n < 0) {
		err(p, "dump: cannot parse %s", path);
		return n;
	}
	for (int i = 0; i < n && !ret; i++) {
		Ckpt__Shstk__ShstkVma v = CKPT__SHSTK__SHSTK_VMA__INIT;
		size_t len = rs[i].end - rs[i].start;
		uint8_t *data = malloc(len);

		if (!data) {
			ret = -ENOMEM;
			break;
		}
		ret = p->host->mem_read(pid, rs[i].start, data, len);
		if (ret < 0) {
			err(p, "dump: cannot read shadow stack %#" PRIx64 "-%#" PRIx64 " of PID %d: %s",
			    rs[i].start, rs[i].end, (int)pid, strerror(-ret));
		} else {
			ret = 0;
			v.pid = (uint32_t)pid;
			v.start = rs[i].start;
			v.end = rs[i].end;
			v.data.data = data;
			v.data.len = len;
			ret = save(p, &p->img_vma, IMG_VMA, &v.base);
			if (!ret)
				p->nvmas_saved++;
		}
		free(data);
	}
	free(rs);
	return ret;
}

static int dump_thread(struct shstk_priv *p, pid_t pid, pid_t tid)
{
	Ckpt__Shstk__ShstkThread t = CKPT__SHSTK__SHSTK_THREAD__INIT;
	unsigned long features = 0;
	uint64_t ssp = 0;
	struct iovec iov = { &ssp, sizeof(ssp) };

	/* x86 PTRACE_ARCH_PRCTL: addr is the argument, data the option; the
	 * status is stored at addr in the tracer's memory. */
	if (ptrace(PTRACE_ARCH_PRCTL, tid, &features, (void *)(long)ARCH_SHSTK_STATUS) < 0) {
		/* EINVAL: a kernel without user shadow stacks */
		if (errno != EINVAL && errno != EIO && errno != ENODEV)
			dbg(p, "dump: ARCH_SHSTK_STATUS of thread %d: %s", (int)tid, strerror(errno));
		return 0;
	}
	if (!(features & ARCH_SHSTK_SHSTK))
		return 0;
	if (ptrace(PTRACE_GETREGSET, tid, (void *)(long)NT_X86_SHSTK, &iov) < 0) {
		int e = errno;

		err(p, "dump: thread %d has a shadow stack but its SSP cannot be read "
		       "(NT_X86_SHSTK): %s",
		    (int)tid, strerror(e));
		return -e;
	}
	t.pid = (uint32_t)pid;
	t.tid = (uint32_t)tid;
	t.features = features;
	t.ssp = ssp;
	/* which of them the thread locked: only /proc tells */
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	FILE *st = fopen(path, "re");
	while (st && fgets(line, sizeof(line), st))
		if (!strncmp(line, "x86_Thread_features_locked:", 27)) {
			t.has_locked = true;
			t.locked = shstk_parse_feature_names(line + 27);
		}
	if (st)
		fclose(st);
	dbg(p, "dump: thread %d: shadow stack features %#lx, SSP %#" PRIx64, (int)tid, features, ssp);
	if (save(p, &p->img_thread, IMG_THREAD, &t.base))
		return -EIO;
	p->nthreads_saved++;
	return 0;
}

static int dump_process(struct shstk_priv *p, pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	uint64_t f;
	int ret = 0;

	/* Without CPU and kernel support no shadow-stack mapping can exist
	 * (map_shadow_stack fails), and smaps costs a page-table walk. */
	if (cpu_has_shstk() && !self_status(&f))
		ret = dump_vmas(p, pid);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while (!ret && (de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		ret = dump_thread(p, pid, (pid_t)atoi(de->d_name));
	}
	closedir(d);
	return ret;
}

static void close_images(struct shstk_priv *p)
{
	if (p->img_vma)
		p->host->img_close(p->img_vma);
	if (p->img_thread)
		p->host->img_close(p->img_thread);
	p->img_vma = p->img_thread = NULL;
}

static int shstk_dump_start(void *priv, pid_t root)
{
	struct shstk_priv *p = priv;

	(void)root;
	close_images(p);
	p->nvmas_saved = p->nthreads_saved = 0;
	return 0;
}

static int shstk_tree_frozen(void *priv, pid_t root)
{
	struct shstk_priv *p = priv;
	pid_t *pids = NULL;
	size_t n = 0;
	int ret = 0;

	if (p->host->version >= 3 && p->host->tree_pids)
		n = p->host->tree_pids(NULL, 0);
	if (n) {
		pids = calloc(n, sizeof(*pids));
		if (!pids)
			return -ENOMEM;
		n = p->host->tree_pids(pids, n);
	} else {
		pids = calloc(1, sizeof(*pids));
		if (!pids)
			return -ENOMEM;
		pids[0] = root;
		n = 1;
	}
	for (size_t i = 0; i < n && !ret; i++)
		ret = dump_process(p, pids[i]);
	free(pids);
	if (!ret && (p->nvmas_saved || p->nthreads_saved))
		info(p, "dump: %zu shadow stack(s), %zu thread(s) with shadow stacks", p->nvmas_saved,
		     p->nthreads_saved);
	else if (!ret)
		dbg(p, "dump: no shadow stack in the %zu process(es) of the tree", n);
	return ret;
}

static int shstk_dump_finish(void *priv, int ok)
{
	struct shstk_priv *p = priv;
	int ret = 0;

	if (p->img_vma && p->host->img_close(p->img_vma) < 0 && ok)
		ret = -EIO;
	if (p->img_thread && p->host->img_close(p->img_thread) < 0 && ok)
		ret = -EIO;
	p->img_vma = p->img_thread = NULL;
	if (ret)
		err(p, "dump: cannot finish the shstk images");
	return ret;
}

/* ---- restore ------------------------------------------------------------------- */

static void free_recs(ProtobufCMessage ***recs, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		protobuf_c_message_free_unpacked((*recs)[i], NULL);
	free(*recs);
	*recs = NULL;
	*n = 0;
}

static void drop_restore(struct shstk_priv *p)
{
	free_recs(&p->vmas, &p->nvmas);
	free_recs(&p->threads, &p->nthreads);
}

static int shstk_restore_start(void *priv)
{
	struct shstk_priv *p = priv;
	char why[200];
	int ret;

	drop_restore(p);
	ret = p->host->img_load(IMG_VMA, &ckpt__shstk__shstk_vma__descriptor, &p->vmas, &p->nvmas);
	if (!ret)
		ret = p->host->img_load(IMG_THREAD, &ckpt__shstk__shstk_thread__descriptor,
					&p->threads, &p->nthreads);
	if (ret)
		goto fail;
	if (!p->nvmas && !p->nthreads)
		return 0; /* the common case: no shadow stack in the tree */
	for (size_t i = 0; i < p->nvmas; i++) {
		ret = shstk_vma_valid((Ckpt__Shstk__ShstkVma *)p->vmas[i], why, sizeof(why));
		if (ret) {
			err(p, "restore: %s; the images are damaged", why);
			goto fail;
		}
	}
	for (size_t i = 0; i < p->nthreads; i++) {
		ret = shstk_thread_valid((Ckpt__Shstk__ShstkThread *)p->threads[i],
					 (const Ckpt__Shstk__ShstkVma *const *)p->vmas, p->nvmas, why,
					 sizeof(why));
		if (ret) {
			err(p, "restore: %s; the images are damaged", why);
			goto fail;
		}
	}
	if (p->nthreads) {
		uint64_t f;

		if (!cpu_has_shstk() || self_status(&f)) {
			err(p, "restore: %zu thread(s) of the dump ran with shadow stacks, and this "
			       "machine %s; restore on a machine with user shadow stacks",
			    p->nthreads,
			    cpu_has_shstk() ? "has a kernel without user shadow stacks"
					    : "has no shadow-stack CPU");
			ret = -ENOTSUP;
			goto fail;
		}
	}
	return 0;
fail:
	drop_restore(p);
	return ret < 0 ? ret : -EIO;
}

static int inject(struct shstk_priv *p, pid_t tid, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
		  long *res)
{
	const uint64_t args[6] = { a0, a1, a2, 0, 0, 0 };
	int r = p->host->inject_syscall(tid, nr, args, res);

	if (r) {
		err(p, "restore: cannot run syscall %ld in thread %d: %s", nr, (int)tid, strerror(-r));
		return r < 0 ? r : -EIO;
	}
	return 0;
}

static int restore_vma(struct shstk_priv *p, const Ckpt__Shstk__ShstkVma *v)
{
	pid_t pid = (pid_t)v->pid;
	uint64_t len = v->end - v->start;
	char path[64];
	long res;
	int fd, ret;
	size_t off = 0;

	/* The core made it again as plain memory: replace it. */
	ret = inject(p, pid, SYS_munmap, v->start, len, 0, &res);
	if (ret)
		return ret;
	/* No token: the SSP is set directly through the regset, nothing
	 * switches to this stack with RSTORSSP. */
	ret = inject(p, pid, SYS_map_shadow_stack, v->start, len, 0, &res);
	if (ret)
		return ret;
	if (res < 0 || (uint64_t)res != v->start) {
		err(p, "restore: map_shadow_stack(%#" PRIx64 ", %" PRIu64 ") in PID %d gave %ld (%s)",
		    v->start, len, (int)pid, res, res < 0 ? strerror((int)-res) : "another address");
		return res < 0 ? (int)res : -EADDRNOTAVAIL;
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		err(p, "restore: cannot open %s: %s", path, strerror(-ret));
		return ret;
	}
	while (off < v->data.len) {
		ssize_t w = pwrite(fd, v->data.data + off, v->data.len - off, (off_t)(v->start + off));

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			ret = w < 0 ? -errno : -EIO;
			err(p, "restore: cannot fill shadow stack %#" PRIx64 " of PID %d: %s", v->start,
			    (int)pid, strerror(-ret));
			break;
		}
		off += (size_t)w;
	}
	close(fd);
	return ret;
}

static int restore_thread(struct shstk_priv *p, const Ckpt__Shstk__ShstkThread *t)
{
	pid_t tid = (pid_t)t->tid;
	uint64_t ssp = t->ssp;
	struct iovec iov = { &ssp, sizeof(ssp) };
	long res;
	int ret;

	if (!(t->features & ARCH_SHSTK_SHSTK))
		return 0;
	/* only the task itself may enable it: inject; the kernel gives it a new
	 * shadow stack, left mapped (the thread's exit frees it) */
	ret = inject(p, tid, SYS_arch_prctl, ARCH_SHSTK_ENABLE, ARCH_SHSTK_SHSTK, 0, &res);
	if (!ret && res < 0) {
		err(p, "restore: arch_prctl(ARCH_SHSTK_ENABLE) in thread %d: %s", (int)tid,
		    strerror((int)-res));
		return (int)res;
	}
	if (!ret && (t->features & ARCH_SHSTK_WRSS)) {
		ret = inject(p, tid, SYS_arch_prctl, ARCH_SHSTK_ENABLE, ARCH_SHSTK_WRSS, 0, &res);
		if (!ret && res < 0) {
			err(p, "restore: enabling WRSS in thread %d: %s", (int)tid, strerror((int)-res));
			return (int)res;
		}
	}
	if (!ret && t->has_locked && t->locked) {
		/* lock what was locked, as the thread did itself */
		ret = inject(p, tid, SYS_arch_prctl, ARCH_SHSTK_LOCK, t->locked, 0, &res);
		if (!ret && res < 0) {
			err(p, "restore: locking shadow-stack features %#llx in thread %d: %s",
			    (unsigned long long)t->locked, (int)tid, strerror((int)-res));
			return (int)res;
		}
	}
	if (ret)
		return ret;
	if (ptrace(PTRACE_SETREGSET, tid, (void *)(long)NT_X86_SHSTK, &iov) < 0) {
		ret = -errno;
		err(p, "restore: cannot set the SSP of thread %d to %#" PRIx64 ": %s", (int)tid, ssp,
		    strerror(-ret));
		return ret;
	}
	return 0;
}

static int shstk_restore_resume(void *priv, pid_t root)
{
	struct shstk_priv *p = priv;
	int ret = 0;

	(void)root;
	for (size_t i = 0; i < p->nvmas && !ret; i++)
		ret = restore_vma(p, (Ckpt__Shstk__ShstkVma *)p->vmas[i]);
	for (size_t i = 0; i < p->nthreads && !ret; i++)
		ret = restore_thread(p, (Ckpt__Shstk__ShstkThread *)p->threads[i]);
	return ret;
}

static int shstk_restore_finish(void *priv, int ok)
{
	(void)ok;
	drop_restore(priv);
	return 0;
}

/* ---- descriptor ------------------------------------------------------------------ */

static int shstk_init(const struct ckpt_host *host, void **priv)
{
	struct shstk_priv *p;

	if (!host || host->version < 3 || !host->img_write_msg ||
	    !host->log || !host->img_create || !host->img_write ||
	    !host->img_close || !host->img_load || !host->mem_read || !host->inject_syscall)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->host = host;
	*priv = p;
	return 0;
}

static void shstk_fini(void *priv)
{
	struct shstk_priv *p = priv;

	if (!p)
		return;
	close_images(p);
	drop_restore(p);
	free(p);
}

static const struct ckpt_lifecycle_hooks shstk_lifecycle = {
	.version = CKPT_LIFECYCLE_HOOKS_VERSION,
	.dump_start = shstk_dump_start,
	.tree_frozen = shstk_tree_frozen,
	.dump_finish = shstk_dump_finish,
	.restore_start = shstk_restore_start,
	.restore_resume = shstk_restore_resume,
	.restore_finish = shstk_restore_finish,
	.check = shstk_check,
};

static const ProtobufCMessageDescriptor *const shstk_image_types[] = {
	&ckpt__shstk__shstk_vma__descriptor,
	&ckpt__shstk__shstk_thread__descriptor,
	NULL,
};

CKPT_PLUGIN_EXPORT = {
	.abi_major = CKPT_PLUGIN_ABI_MAJOR,
	.abi_minor = CKPT_PLUGIN_ABI_MINOR,
	.name = SHSTK_NAME,
	.version = "0.1.0",
	.description = "x86 user shadow stacks (CET): shadow-stack mappings, SSP, features",
	.init = shstk_init,
	.fini = shstk_fini,
	.lifecycle = &shstk_lifecycle,
	.image_types = shstk_image_types,
};
