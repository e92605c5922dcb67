/* SPDX-License-Identifier: GPL-2.0-only */
/* amdgpu plugin: KFD topology parser and matcher, image records. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../plugins/amdgpu/topology.h"
#include "amdgpu.pb-c.h"
#include "tap.h"

/* nodes/N/properties of a GPU node, shortened (an MI210-like part). */
static const char gpu_props[] =
	"cpu_cores_count 0\n"
	"simd_count 416\n"
	"mem_banks_count 1\n"
	"caches_count 273\n"
	"gfx_target_version 90010\n"
	"vendor_id 4098\n"
	"device_id 29711\n"
	"location_id 768\n"
	"domain 0\n"
	"drm_render_minor 128\n"
	"hive_id 0\n"
	"num_sdma_engines 2\n"
	"local_mem_size 0\n"
	"fw_version 78\n"
	"unique_id 3942049185232339214\n";

static const char cpu_props[] =
	"cpu_cores_count 16\n"
	"simd_count 0\n"
	"mem_banks_count 1\n"
	"vendor_id 0\n"
	"device_id 0\n"
	"drm_render_minor 0\n";

static struct amdgpu_gpu gpu(uint32_t id, uint32_t dev, uint32_t minor)
{
	struct amdgpu_gpu g = { 0 };

	g.gpu_id = id;
	g.vendor_id = 0x1002;
	g.device_id = dev;
	g.simd_count = 416;
	g.local_mem_size = 64ULL << 30;
	g.drm_render_minor = minor;
	return g;
}

static void test_parse(void)
{
	struct amdgpu_gpu g = { 0 };
	int r;

	r = amdgpu_topo_parse_props(gpu_props, &g);
	CHECK(r == 1, "GPU node recognised");
	CHECK(g.vendor_id == 0x1002 && g.device_id == 29711, "vendor and device id");
	CHECK(g.simd_count == 416 && g.drm_render_minor == 128 && g.gfx_target_version == 90010,
	      "simd count, render minor, gfx target");
	r = amdgpu_topo_parse_props("simd_count 4\ngpu_id 51234\nlocal_mem_size 1024", &g);
	CHECK(r == 1 && g.gpu_id == 51234 && g.local_mem_size == 1024,
	      "gpu_id and memory size in the text, no final newline");
	memset(&g, 0, sizeof(g));
	CHECK(amdgpu_topo_parse_props(cpu_props, &g) == 0, "CPU node: not a GPU");
	CHECK(amdgpu_topo_parse_props("simd_count\n", &g) == -EBADMSG, "key without value refused");
	CHECK(amdgpu_topo_parse_props("simd_count abc\n", &g) == -EBADMSG, "bad number refused");
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static void test_read(void)
{
	char dir[] = "/tmp/ckpt-test-kfd-XXXXXX", p[256];
	struct amdgpu_topo *t = calloc(1, sizeof(*t));
	int r;

	if (!mkdtemp(dir) || !t) {
		CHECK(0, "temp dir");
		free(t);
		return;
	}
	snprintf(p, sizeof(p), "%s/0", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/0/properties", dir);
	write_file(p, cpu_props);
	snprintf(p, sizeof(p), "%s/0/gpu_id", dir);
	write_file(p, "0\n");
	snprintf(p, sizeof(p), "%s/1", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/1/properties", dir);
	write_file(p, gpu_props);
	snprintf(p, sizeof(p), "%s/1/gpu_id", dir);
	write_file(p, "45412\n");
	snprintf(p, sizeof(p), "%s/1/mem_banks", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/1/mem_banks/0", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/1/mem_banks/0/properties", dir);
	write_file(p, "heap_type 1\nsize_in_bytes 68702699520\nflags 0\n");
	r = amdgpu_topo_read(dir, t);
	CHECK(r == 0 && t->n == 1, "reader: one GPU node of two (got %d, %zu)", r, t->n);
	CHECK(t->n == 1 && t->gpus[0].node == 1 && t->gpus[0].gpu_id == 45412, "node and gpu_id");
	CHECK(t->n == 1 && t->gpus[0].local_mem_size == 68702699520ULL,
	      "memory size from mem_banks");
	CHECK(amdgpu_topo_read("/nonexistent-kfd", t) == -ENOENT, "missing topology: -ENOENT");
	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	if (system(p))
		CHECK(0, "cleanup");
	free(t);
}

static void test_match(void)
{
	struct amdgpu_topo *s = calloc(1, sizeof(*s)), *h = calloc(1, sizeof(*h));
	struct amdgpu_gpu_map map[AMDGPU_MAX_GPUS];
	char why[400] = "";
	int r;

	if (!s || !h) {
		CHECK(0, "alloc");
		goto out;
	}
	s->gpus[0] = gpu(100, 0x740f, 128);
	s->gpus[1] = gpu(200, 0x740f, 129);
	s->n = 2;
	*h = *s;
	r = amdgpu_topo_match(s, h, map, why, sizeof(why));
	CHECK(r == 0 && map[0].here == 100 && map[1].here == 200, "same GPUs: identity map");

	/* gpu_ids renumbered here */
	h->gpus[0].gpu_id = 300;
	h->gpus[1].gpu_id = 100; /* the old id of GPU 0 on the other GPU: same model */
	r = amdgpu_topo_match(s, h, map, why, sizeof(why));
	CHECK(r == 0, "renumbered gpu_ids: matched (%s)", why);
	CHECK(amdgpu_map_gpu(map, 2, 100) == 100 && amdgpu_map_gpu(map, 2, 200) == 300,
	      "renumbered: 100 keeps its id, 200 -> 300");
	CHECK(amdgpu_map_gpu(map, 2, 999) == 0, "unknown gpu_id maps to 0");

	h->gpus[0].gpu_id = 500;
	h->gpus[1].gpu_id = 600;
	r = amdgpu_topo_match(s, h, map, why, sizeof(why));
	CHECK(r == 0 && amdgpu_map_gpu(map, 2, 100) == 500 && amdgpu_map_gpu(map, 2, 200) == 600,
	      "all new ids: mapped in order");

	/* one GPU fewer */
	h->n = 1;
	r = amdgpu_topo_match(s, h, map, why, sizeof(why));
	CHECK(r == -ENODEV && strstr(why, "missing"), "missing GPU refused: %s", why);

	/* a different model */
	*h = *s;
	h->gpus[1].device_id = 0x73bf;
	r = amdgpu_topo_match(s, h, map, why, sizeof(why));
	CHECK(r == -ENODEV && strstr(why, "different model"), "different device id refused: %s",
	      why);
	*h = *s;
	h->gpus[0].local_mem_size = 32ULL << 30;
	r = amdgpu_topo_match(s, h, map, why, sizeof(why));
	CHECK(r == -ENODEV, "different memory size refused");
	h->n = 0;
	s->n = 0;
	CHECK(amdgpu_topo_match(s, h, map, why, sizeof(why)) == 0, "no GPU in the dump: nothing to do");
out:
	free(s);
	free(h);
}

static void test_records(void)
{
	Ckpt__Amdgpu__KfdProcess kp = CKPT__AMDGPU__KFD_PROCESS__INIT, *kb;
	Ckpt__Amdgpu__KfdDevice d = CKPT__AMDGPU__KFD_DEVICE__INIT, *dp[1] = { &d };
	Ckpt__Amdgpu__KfdBo bo[2], *bop[2] = { &bo[0], &bo[1] };
	Ckpt__Amdgpu__GpuNode g = CKPT__AMDGPU__GPU_NODE__INIT, *gb;
	Ckpt__Amdgpu__DeviceFd f = CKPT__AMDGPU__DEVICE_FD__INIT, *fb;
	uint8_t priv[100], *buf;
	size_t len;

	for (size_t i = 0; i < sizeof(priv); i++)
		priv[i] = (uint8_t)(255 - i);
	d.user_gpu_id = 100;
	d.actual_gpu_id = 300;
	for (int i = 0; i < 2; i++) {
		ckpt__amdgpu__kfd_bo__init(&bo[i]);
		bo[i].addr = 0x7f0000000000ULL + (uint64_t)i * 0x200000;
		bo[i].size = 0x200000;
		bo[i].offset = 0x1000ULL * (uint64_t)i;
		bo[i].gpu_id = 100;
		bo[i].alloc_flags = 0x80000001u;
	}
	kp.id = 7;
	kp.pid = 1234;
	kp.n_devices = 1;
	kp.devices = dp;
	kp.n_bos = 2;
	kp.bos = bop;
	kp.num_objects = 5;
	kp.priv_data.data = priv;
	kp.priv_data.len = sizeof(priv);
	len = protobuf_c_message_get_packed_size(&kp.base);
	buf = malloc(len);
	protobuf_c_message_pack(&kp.base, buf);
	kb = ckpt__amdgpu__kfd_process__unpack(NULL, len, buf);
	free(buf);
	CHECK(kb && kb->id == 7 && kb->pid == 1234 && kb->num_objects == 5, "KfdProcess round trip");
	CHECK(kb && kb->n_devices == 1 && kb->devices[0]->actual_gpu_id == 300, "devices");
	CHECK(kb && kb->n_bos == 2 && kb->bos[1]->addr == 0x7f0000200000ULL &&
		      kb->bos[1]->alloc_flags == 0x80000001u && !kb->bos[1]->has_has_contents,
	      "buffer objects");
	CHECK(kb && kb->priv_data.len == sizeof(priv) && !memcmp(kb->priv_data.data, priv, sizeof(priv)),
	      "private data");
	ckpt__amdgpu__kfd_process__free_unpacked(kb, NULL);

	g.node = 2;
	g.gpu_id = 45412;
	g.vendor_id = 0x1002;
	g.device_id = 0x740f;
	g.has_simd_count = g.has_local_mem_size = 1;
	g.simd_count = 416;
	g.local_mem_size = 64ULL << 30;
	len = protobuf_c_message_get_packed_size(&g.base);
	buf = malloc(len);
	protobuf_c_message_pack(&g.base, buf);
	gb = ckpt__amdgpu__gpu_node__unpack(NULL, len, buf);
	CHECK(gb && gb->gpu_id == 45412 && gb->local_mem_size == 64ULL << 30 && !gb->has_drm_render_minor,
	      "GpuNode round trip");
	CHECK(!ckpt__amdgpu__gpu_node__unpack(NULL, 3, buf), "truncated GpuNode refused");
	free(buf);
	ckpt__amdgpu__gpu_node__free_unpacked(gb, NULL);

	f.id = 3;
	f.kind = CKPT__AMDGPU__DEVICE_KIND__RENDER;
	f.has_render_minor = 1;
	f.render_minor = 129;
	len = protobuf_c_message_get_packed_size(&f.base);
	buf = malloc(len);
	protobuf_c_message_pack(&f.base, buf);
	fb = ckpt__amdgpu__device_fd__unpack(NULL, len, buf);
	free(buf);
	CHECK(fb && fb->kind == CKPT__AMDGPU__DEVICE_KIND__RENDER && fb->render_minor == 129,
	      "DeviceFd round trip");
	ckpt__amdgpu__device_fd__free_unpacked(fb, NULL);
}

int main(void)
{
	test_parse();
	test_read();
	test_match();
	test_records();
	return tap_done();
}
