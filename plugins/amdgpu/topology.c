// SPDX-License-Identifier: GPL-2.0-only
/* amdgpu plugin: KFD topology parsing and GPU matching (pure functions). */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topology.h"

static int set_key(struct amdgpu_gpu *g, const char *key, uint64_t v, bool *gpu_id_seen)
{
	if (!strcmp(key, "gpu_id")) {
		g->gpu_id = (uint32_t)v;
		*gpu_id_seen = true;
	} else if (!strcmp(key, "vendor_id")) {
		g->vendor_id = (uint32_t)v;
	} else if (!strcmp(key, "device_id")) {
		g->device_id = (uint32_t)v;
	} else if (!strcmp(key, "simd_count")) {
		g->simd_count = (uint32_t)v;
	} else if (!strcmp(key, "local_mem_size")) {
		g->local_mem_size = v;
	} else if (!strcmp(key, "drm_render_minor")) {
		g->drm_render_minor = (uint32_t)v;
	} else if (!strcmp(key, "gfx_target_version")) {
		g->gfx_target_version = (uint32_t)v;
	}
	return 0;
}

int amdgpu_topo_parse_props(const char *text, struct amdgpu_gpu *g)
{
	bool gpu_id_seen = false;
	const char *l = text;
	uint32_t node = g->node, gpu_id = g->gpu_id;

	memset(g, 0, sizeof(*g));
	g->node = node;
	g->gpu_id = gpu_id;
	while (l && *l) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);
		char key[64], *end;
		size_t k = 0;
		uint64_t v;

		if (len) {
			while (k < len && l[k] != ' ' && l[k] != '\t')
				k++;
			if (k == 0 || k >= sizeof(key) || k == len)
				return -EBADMSG;
			memcpy(key, l, k);
			key[k] = '\0';
			while (k < len && (l[k] == ' ' || l[k] == '\t'))
				k++;
			errno = 0;
			v = strtoull(l + k, &end, 10);
			if (end == l + k || errno || (end != l + len && *end != ' ' && *end != '\t'))
				return -EBADMSG;
			set_key(g, key, v, &gpu_id_seen);
		}
		l = nl ? nl + 1 : NULL;
	}
	return (g->simd_count > 0 || g->gpu_id != 0) ? 1 : 0;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap + 8192);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 8192;
		}
		size_t r = fread(buf + n, 1, 4096, f);

		n += r;
		if (r < 4096)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static uint64_t mem_banks_size(const char *dir, const char *node)
{
	char path[512];
	struct dirent *de;
	uint64_t sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%s/mem_banks", dir, node);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char p2[800], *text, *s;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p2, sizeof(p2), "%s/%s/properties", path, de->d_name);
		text = slurp(p2);
		if (!text)
			continue;
		s = strstr(text, "size_in_bytes ");
		if (s && (s == text || s[-1] == '\n'))
			sum += strtoull(s + 14, NULL, 10);
		free(text);
	}
	closedir(d);
	return sum;
}

static int cmp_node(const void *a, const void *b)
{
	const struct amdgpu_gpu *x = a, *y = b;

	return x->node < y->node ? -1 : x->node > y->node;
}

int amdgpu_topo_read(const char *dir, struct amdgpu_topo *t)
{
	struct dirent *de;
	DIR *d = opendir(dir);

	t->n = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct amdgpu_gpu g = { 0 };
		char path[512], *text, *end;
		int r;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		g.node = (uint32_t)strtoul(de->d_name, &end, 10);
		snprintf(path, sizeof(path), "%s/%s/gpu_id", dir, de->d_name);
		text = slurp(path);
		if (text) {
			g.gpu_id = (uint32_t)strtoul(text, NULL, 10);
			free(text);
		}
		snprintf(path, sizeof(path), "%s/%s/properties", dir, de->d_name);
		text = slurp(path);
		if (!text)
			continue;
		r = amdgpu_topo_parse_props(text, &g);
		free(text);
		if (r < 0) {
			closedir(d);
			return r;
		}
		if (r == 0 || g.gpu_id == 0)
			continue; /* a CPU node */
		if (!g.local_mem_size)
			g.local_mem_size = mem_banks_size(dir, de->d_name);
		if (t->n == AMDGPU_MAX_GPUS) {
			closedir(d);
			return -E2BIG;
		}
		t->gpus[t->n++] = g;
	}
	closedir(d);
	qsort(t->gpus, t->n, sizeof(t->gpus[0]), cmp_node);
	return 0;
}

static bool same_model(const struct amdgpu_gpu *a, const struct amdgpu_gpu *b)
{
	return a->vendor_id == b->vendor_id && a->device_id == b->device_id &&
	       a->simd_count == b->simd_count && a->local_mem_size == b->local_mem_size;
}

static void describe(const struct amdgpu_gpu *g, char *buf, size_t len)
{
	snprintf(buf, len, "%04x:%04x, %u SIMDs, %" PRIu64 " MiB", g->vendor_id, g->device_id,
		 g->simd_count, g->local_mem_size >> 20);
}

int amdgpu_topo_match(const struct amdgpu_topo *saved, const struct amdgpu_topo *here,
		      struct amdgpu_gpu_map *map, char *why, size_t len)
{
	bool used[AMDGPU_MAX_GPUS] = { false };
	bool done[AMDGPU_MAX_GPUS] = { false };
	char a[96], b[96];

	/* first the GPUs that keep their gpu_id */
	for (size_t i = 0; i < saved->n; i++) {
		map[i].saved = saved->gpus[i].gpu_id;
		map[i].here = 0;
		for (size_t j = 0; j < here->n; j++) {
			if (!used[j] && here->gpus[j].gpu_id == saved->gpus[i].gpu_id &&
			    same_model(&saved->gpus[i], &here->gpus[j])) {
				used[j] = done[i] = true;
				map[i].here = here->gpus[j].gpu_id;
				break;
			}
		}
	}
	/* then the renumbered ones */
	for (size_t i = 0; i < saved->n; i++) {
		size_t other = here->n;

		if (done[i])
			continue;
		for (size_t j = 0; j < here->n; j++) {
			if (used[j])
				continue;
			if (same_model(&saved->gpus[i], &here->gpus[j])) {
				used[j] = done[i] = true;
				map[i].here = here->gpus[j].gpu_id;
				break;
			}
			if (other == here->n)
				other = j;
		}
		if (done[i])
			continue;
		describe(&saved->gpus[i], a, sizeof(a));
		if (other < here->n) {
			describe(&here->gpus[other], b, sizeof(b));
			snprintf(why, len, "GPU %u of the dump (gpu_id %#x: %s) is a different model "
					   "than the GPU left here (gpu_id %#x: %s); restore on the "
					   "same GPU model",
				 saved->gpus[i].node, saved->gpus[i].gpu_id, a, here->gpus[other].gpu_id,
				 b);
		} else {
			snprintf(why, len, "GPU %u of the dump (gpu_id %#x: %s) is missing here (%zu "
					   "GPU(s) here, %zu in the dump)",
				 saved->gpus[i].node, saved->gpus[i].gpu_id, a, here->n, saved->n);
		}
		return -ENODEV;
	}
	return 0;
}

uint32_t amdgpu_map_gpu(const struct amdgpu_gpu_map *map, size_t n, uint32_t saved)
{
	for (size_t i = 0; i < n; i++)
		if (map[i].saved == saved)
			return map[i].here;
	return 0;
}
