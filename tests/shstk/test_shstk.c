/* SPDX-License-Identifier: GPL-2.0-only */
/* shstk plugin: smaps "ss" detection, image records (encode, parse, checks). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/shstk/shstk_util.h"
#include "tap.h"

static const char smaps[] =
	"55d0c0a00000-55d0c0a21000 r--p 00000000 08:01 1234                       /usr/bin/cat\n"
	"Size:                132 kB\n"
	"KernelPageSize:        4 kB\n"
	"VmFlags: rd mr mw me dw sd \n"
	"7f1234000000-7f1234800000 rw-p 00000000 00:00 0 \n"
	"Size:               8192 kB\n"
	"Rss:                   8 kB\n"
	"VmFlags: rd wr mr mw me ac ss \n"
	"7ffd0000a000-7ffd0002b000 rw-p 00000000 00:00 0                          [stack]\n"
	"Size:                132 kB\n"
	"VmFlags: rd wr mr mw me gd ac\n"
	"7ffd00100000-7ffd00101000 rw-p 00000000 00:00 0 \n"
	"VmFlags: ss rd\n"
	"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
	"VmFlags: ex sss\n";

static void test_smaps(void)
{
	struct shstk_range r[4];
	int n;

	CHECK(shstk_vmflags_has_ss("VmFlags: rd wr ss"), "ss at the end");
	CHECK(shstk_vmflags_has_ss("VmFlags: ss rd\n"), "ss first");
	CHECK(!shstk_vmflags_has_ss("VmFlags: rd wr sd mss ssx"), "no ss inside other flags");
	CHECK(!shstk_vmflags_has_ss("Size: ss"), "only VmFlags lines count");

	n = shstk_smaps_scan(smaps, NULL, 0);
	CHECK(n == 2, "two shadow stacks counted with max 0 (got %d)", n);
	n = shstk_smaps_scan(smaps, r, 4);
	CHECK(n == 2, "two shadow stacks found");
	CHECK(n == 2 && r[0].start == 0x7f1234000000ULL && r[0].end == 0x7f1234800000ULL,
	      "first range");
	CHECK(n == 2 && r[1].start == 0x7ffd00100000ULL && r[1].end == 0x7ffd00101000ULL,
	      "second range");
	n = shstk_smaps_scan(smaps, r, 1);
	CHECK(n == 2 && r[0].start == 0x7f1234000000ULL, "max 1: count still 2, first filled");
	CHECK(shstk_smaps_scan("", r, 4) == 0, "empty smaps: none");
	CHECK(shstk_smaps_scan("55d0c0a00000-55d0c0a21000 r--p 0 08:01 1 /x\nVmFlags: rd mr\n", r,
			       4) == 0,
	      "no ss flag: none (the common case)");
	CHECK(shstk_smaps_scan("zzzz\n7000-6000 rw-p 0 0:0 0\nVmFlags: ss\n", r, 4) == -EBADMSG,
	      "a header with end <= start is refused");
}

static void test_records(void)
{
	Ckpt__Shstk__ShstkVma v = CKPT__SHSTK__SHSTK_VMA__INIT, *vb;
	Ckpt__Shstk__ShstkThread t = CKPT__SHSTK__SHSTK_THREAD__INIT, *tb;
	uint8_t data[8192], *buf;
	size_t len;
	char why[200];

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	v.pid = 42;
	v.start = 0x7f0000000000ULL;
	v.end = v.start + sizeof(data);
	v.data.data = data;
	v.data.len = sizeof(data);
	len = protobuf_c_message_get_packed_size(&v.base);
	buf = malloc(len);
	protobuf_c_message_pack(&v.base, buf);
	vb = ckpt__shstk__shstk_vma__unpack(NULL, len, buf);
	free(buf);
	CHECK(vb && vb->pid == 42 && vb->start == v.start && vb->end == v.end, "vma round trip");
	CHECK(vb && vb->data.len == sizeof(data) && !memcmp(vb->data.data, data, sizeof(data)),
	      "vma contents round trip");
	CHECK(vb && shstk_vma_valid(vb, why, sizeof(why)) == 0, "vma valid");

	t.pid = 42;
	t.tid = 43;
	t.features = ARCH_SHSTK_SHSTK | ARCH_SHSTK_WRSS;
	t.ssp = v.end - 24;
	len = protobuf_c_message_get_packed_size(&t.base);
	buf = malloc(len);
	protobuf_c_message_pack(&t.base, buf);
	tb = ckpt__shstk__shstk_thread__unpack(NULL, len, buf);
	CHECK(tb && tb->tid == 43 && tb->features == 3 && tb->ssp == v.end - 24, "thread round trip");
	CHECK(!ckpt__shstk__shstk_thread__unpack(NULL, len - 1, buf), "a truncated record is refused");
	free(buf);
	if (vb && tb) {
		const Ckpt__Shstk__ShstkVma *vs[1] = { vb };

		CHECK(shstk_thread_valid(tb, vs, 1, why, sizeof(why)) == 0, "SSP inside its stack");
		tb->ssp = vb->end;
		CHECK(shstk_thread_valid(tb, vs, 1, why, sizeof(why)) == 0, "empty stack: SSP at end");
		tb->ssp = vb->end + 8;
		CHECK(shstk_thread_valid(tb, vs, 1, why, sizeof(why)) == -EBADMSG,
		      "SSP outside every stack refused: %s", why);
		tb->ssp = vb->end - 20;
		CHECK(shstk_thread_valid(tb, vs, 1, why, sizeof(why)) == -EBADMSG,
		      "unaligned SSP refused: %s", why);
		tb->pid = 7;
		tb->ssp = vb->end - 24;
		CHECK(shstk_thread_valid(tb, vs, 1, why, sizeof(why)) == -EBADMSG,
		      "a stack of another process does not count");
		tb->features = 0;
		CHECK(shstk_thread_valid(tb, vs, 0, why, sizeof(why)) == 0,
		      "shadow stack off: nothing to check");
		vb->data.len -= 1;
		CHECK(shstk_vma_valid(vb, why, sizeof(why)) == -EBADMSG, "short contents refused: %s",
		      why);
		vb->data.len += 1;
		vb->end = vb->start;
		CHECK(shstk_vma_valid(vb, why, sizeof(why)) == -EBADMSG, "empty range refused");
	}
	ckpt__shstk__shstk_vma__free_unpacked(vb, NULL);
	ckpt__shstk__shstk_thread__free_unpacked(tb, NULL);
}

static void test_locked_names(void)
{
	CHECK(shstk_parse_feature_names("\tshstk wrss\n") == (ARCH_SHSTK_SHSTK | ARCH_SHSTK_WRSS),
	      "locked: both names");
	CHECK(shstk_parse_feature_names("\tshstk\n") == ARCH_SHSTK_SHSTK, "locked: shstk only");
	CHECK(shstk_parse_feature_names("\n") == 0, "locked: none");
	CHECK(shstk_parse_feature_names(" wrssx shstkk") == 0, "locked: no prefix matches");
}

/* The whole plugin, loaded like ckpt loads it, with a host whose images
 * hold one thread that ran with a shadow stack: on this machine (no
 * shadow-stack support) restore_start must refuse with one error line. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include "ckpt-plugin.h"

static int logged_errors;
static char last_error[512];

static void fake_log(const char *plugin, int level, const char *fmt, ...)
{
	(void)plugin;
	if (level != CKPT_LOG_ERROR)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	logged_errors++;
}

static int fake_img_load(const char *name, const struct ProtobufCMessageDescriptor *d,
			 struct ProtobufCMessage ***recs, size_t *n)
{
	(void)d;
	*recs = NULL;
	*n = 0;
	if (!strcmp(name, "shstk-vma.img")) {
		/* the stack the SSP points into, with its contents */
		Ckpt__Shstk__ShstkVma *v = calloc(1, sizeof(*v));
		*recs = calloc(1, sizeof(**recs));
		if (!v || !*recs)
			return -ENOMEM;
		ckpt__shstk__shstk_vma__init(v);
		v->pid = 42;
		v->start = 0x7f0000000000ULL;
		v->end = 0x7f0000002000ULL;
		v->data.len = 0x2000;
		v->data.data = calloc(1, 0x2000);
		(*recs)[0] = &v->base;
		*n = 1;
		return 0;
	}
	if (strcmp(name, "shstk-thread.img"))
		return 0;
	Ckpt__Shstk__ShstkThread *t = calloc(1, sizeof(*t));
	*recs = calloc(1, sizeof(**recs));
	if (!t || !*recs)
		return -ENOMEM;
	ckpt__shstk__shstk_thread__init(t);
	t->pid = t->tid = 42;
	t->features = ARCH_SHSTK_SHSTK;
	t->ssp = 0x7f0000001000ULL;
	(*recs)[0] = &t->base;
	*n = 1;
	return 0;
}

static void *fake_ptr(void)
{
	return NULL;
}

static void test_refused_without_support(void)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/../../plugins/shstk/ckpt-shstk.so", TEST_PLUGIN_DIR);
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	const struct ckpt_plugin_desc *d = h ? dlsym(h, CKPT_PLUGIN_SYMBOL) : NULL;
	CHECK(d != NULL, "plugin loads from %s", path);
	if (!d)
		return;
	struct ckpt_host host;
	memset(&host, 0, sizeof(host));
	host.version = CKPT_HOST_VERSION;
	host.log = fake_log;
	host.img_load = fake_img_load;
	/* present but never called on this path */
	host.img_create = (void *)fake_ptr;
	host.img_write = (void *)fake_ptr;
	host.img_close = (void *)fake_ptr;
	host.mem_read = (void *)fake_ptr;
	host.inject_syscall = (void *)fake_ptr;
	host.img_write_msg = (void *)fake_ptr;
	void *priv = NULL;
	CHECK(d->init(&host, &priv) == 0, "init");
	int ret = d->lifecycle->restore_start(priv);
	CHECK(ret == -ENOTSUP && logged_errors == 1 && strstr(last_error, "shadow stack"),
	      "an image needing shadow stacks is refused here: %d, \"%s\"", ret, last_error);
	d->fini(priv);
	dlclose(h);
}

int main(void)
{
	test_locked_names();
	test_refused_without_support();
	test_smaps();
	test_records();
	return tap_done();
}
