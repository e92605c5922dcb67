/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * amdgpu plugin — the KFD topology: parsing of the properties files and the
 * matching of the GPUs of a dump against those of this machine.  Pure
 * functions (the reader takes the sysfs root as an argument), unit-tested
 * by tests/amdgpu/.
 */
#ifndef CKPT_AMDGPU_TOPOLOGY_H
#define CKPT_AMDGPU_TOPOLOGY_H

#include <stddef.h>
#include <stdint.h>

#define AMDGPU_TOPOLOGY_DIR "/sys/class/kfd/kfd/topology/nodes"
#define AMDGPU_MAX_GPUS 64

struct amdgpu_gpu {
	uint32_t node;
	uint32_t gpu_id;
	uint32_t vendor_id, device_id;
	uint32_t simd_count;
	uint64_t local_mem_size;
	uint32_t drm_render_minor;
	uint32_t gfx_target_version;
};

struct amdgpu_topo {
	struct amdgpu_gpu gpus[AMDGPU_MAX_GPUS];
	size_t n;
};

/* One gpu_id of the dump and the one it becomes here. */
struct amdgpu_gpu_map {
	uint32_t saved, here;
};

/* Parse the text of nodes/N/properties ("key value" lines) into *g (gpu_id
 * too, when the text has a gpu_id line).  1: a GPU node (simd_count > 0 or
 * gpu_id set), 0: a CPU node, -EBADMSG: unparsable text. */
int amdgpu_topo_parse_props(const char *text, struct amdgpu_gpu *g);

/* Read every GPU node under dir (AMDGPU_TOPOLOGY_DIR on a real machine):
 * N/properties, N/gpu_id, N/mem_banks/M/properties (size_in_bytes) when
 * local_mem_size is 0.  0 or -errno. */
int amdgpu_topo_read(const char *dir, struct amdgpu_topo *t);

/* Match the GPUs of the dump (saved) to those here: the same vendor, device
 * id, SIMD count and memory size; a GPU keeps its gpu_id when the GPU with
 * that id here is the same model, else takes the first unused one of the
 * same model.  Fills map[0..saved->n) and returns 0, or -ENODEV with why
 * set (a GPU missing here, or a different model). */
int amdgpu_topo_match(const struct amdgpu_topo *saved, const struct amdgpu_topo *here,
		      struct amdgpu_gpu_map *map, char *why, size_t len);

/* The gpu_id here for a gpu_id of the dump, or 0 when none. */
uint32_t amdgpu_map_gpu(const struct amdgpu_gpu_map *map, size_t n, uint32_t saved);

#endif
