// SPDX-License-Identifier: GPL-2.0-only
/*
 * amdgpu plugin: processes using AMD GPUs through KFD (/dev/kfd, ROCm).
 *
 * fd class "kfd" (/dev/kfd) and "render" (/dev/dri/renderD*); vma class
 * "kfd-vma" / "render-vma" for their mappings.  The dump of a /dev/kfd fd
 * runs AMDKFD_IOC_CRIU_OP: PROCESS_INFO (pauses the queues), CHECKPOINT
 * (devices, buffer objects, opaque private data), and the contents of the
 * buffer objects are read through libdrm_amdgpu (dmabuf import + CPU map);
 * dump_finish runs UNPAUSE.  The restore opens the device files again (a
 * render node through the gpu_id map of the topology match), runs RESTORE
 * in the restored task (KFD state is per address space) and RESUME at
 * restore_resume.  The KFD topology of the dump is saved and matched at
 * restore_start (topology.c): a different GPU model is refused.
 *
 * See docs/plugins/amdgpu.md: nothing past the fd/vma claim runs without
 * an AMD GPU, so the ioctl paths are untested.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/kfd_ioctl.h>
#include <amdgpu.h>
#include <protobuf-c/protobuf-c.h>

#include "ckpt-plugin.h"
#include "amdgpu.pb-c.h"
#include "topology.h"

#define AMDGPU_NAME "amdgpu"
#define KFD_PATH "/dev/kfd"
#define RENDER_PREFIX "/dev/dri/renderD"
#define BO_CHUNK (1u << 20)

enum { IMG_TOPO, IMG_FD, IMG_KFD, IMG_BO, IMG_VMA, NIMG };

static const struct {
	const char *name;
	const ProtobufCMessageDescriptor *desc;
} images[NIMG] = {
	[IMG_TOPO] = { "amdgpu-topology.img", &ckpt__amdgpu__gpu_node__descriptor },
	[IMG_FD] = { "amdgpu-fd.img", &ckpt__amdgpu__device_fd__descriptor },
	[IMG_KFD] = { "amdgpu-kfd.img", &ckpt__amdgpu__kfd_process__descriptor },
	[IMG_BO] = { "amdgpu-bo.img", &ckpt__amdgpu__bo_chunk__descriptor },
	[IMG_VMA] = { "amdgpu-vma.img", &ckpt__amdgpu__device_vma__descriptor },
};

static const char *const fd_classes[] = { "kfd", "render", NULL };
static const char *const vma_classes[] = { "kfd-vma", "render-vma", NULL };

/* A process paused by PROCESS_INFO, to UNPAUSE at dump_finish. */
struct paused {
	int kfd;
	pid_t pid;
};

struct amdgpu_priv {
	const struct ckpt_host *host;
	struct ckpt_img *img[NIMG];
	bool topo_saved;
	struct paused *paused;
	size_t npaused;
	uint32_t *vma_ids; /* DeviceVma ids written in this dump */
	size_t nvma_ids;
	/* restore */
	ProtobufCMessage **recs[NIMG];
	size_t nrecs[NIMG];
	struct amdgpu_topo saved, here;
	struct amdgpu_gpu_map map[AMDGPU_MAX_GPUS];
};

#define err(p, ...) (p)->host->log(AMDGPU_NAME, CKPT_LOG_ERROR, __VA_ARGS__)
#define dbg(p, ...) (p)->host->log(AMDGPU_NAME, CKPT_LOG_DEBUG, __VA_ARGS__)

/* ---- images ------------------------------------------------------------------ */

static int save(struct amdgpu_priv *p, int which, const ProtobufCMessage *m)
{
	int r;

	if (!p->img[which]) {
		p->img[which] = p->host->img_create(images[which].name, images[which].desc->name);
		if (!p->img[which]) {
			r = errno ? -errno : -EIO;
			err(p, "dump: cannot create image %s: %s", images[which].name, strerror(-r));
			return r;
		}
	}
	r = p->host->img_write_msg(p->img[which], m);
	if (r < 0) {
		err(p, "dump: cannot write image %s: %s", images[which].name, strerror(-r));
		return r;
	}
	return 0;
}

static int save_topology(struct amdgpu_priv *p)
{
	struct amdgpu_topo *t;
	int r;

	if (p->topo_saved)
		return 0;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	r = amdgpu_topo_read(AMDGPU_TOPOLOGY_DIR, t);
	if (r) {
		err(p, "dump: cannot read the KFD topology %s: %s", AMDGPU_TOPOLOGY_DIR, strerror(-r));
		free(t);
		return r;
	}
	for (size_t i = 0; i < t->n && !r; i++) {
		Ckpt__Amdgpu__GpuNode g = CKPT__AMDGPU__GPU_NODE__INIT;

		g.node = t->gpus[i].node;
		g.gpu_id = t->gpus[i].gpu_id;
		g.vendor_id = t->gpus[i].vendor_id;
		g.device_id = t->gpus[i].device_id;
		g.has_simd_count = g.has_local_mem_size = g.has_drm_render_minor = 1;
		g.has_gfx_target_version = 1;
		g.simd_count = t->gpus[i].simd_count;
		g.local_mem_size = t->gpus[i].local_mem_size;
		g.drm_render_minor = t->gpus[i].drm_render_minor;
		g.gfx_target_version = t->gpus[i].gfx_target_version;
		r = save(p, IMG_TOPO, &g.base);
	}
	free(t);
	if (!r)
		p->topo_saved = true;
	return r;
}

/* ---- KFD checkpoint ------------------------------------------------------------ */

static int kfd_op(int kfd, struct kfd_ioctl_criu_args *a, uint32_t op)
{
	a->op = op;
	return ioctl(kfd, AMDKFD_IOC_CRIU_OP, a) < 0 ? -errno : 0;
}

/* The render node of a gpu_id: from the topology saved with this dump. */
static int render_minor_of(uint32_t gpu_id, uint32_t *minor)
{
	struct amdgpu_topo *t = calloc(1, sizeof(*t));
	int r = -ENOENT;

	if (!t)
		return -ENOMEM;
	if (amdgpu_topo_read(AMDGPU_TOPOLOGY_DIR, t) == 0) {
		for (size_t i = 0; i < t->n; i++) {
			if (t->gpus[i].gpu_id == gpu_id) {
				*minor = t->gpus[i].drm_render_minor;
				r = 0;
			}
		}
	}
	free(t);
	return r;
}

/* Copy the contents of a BO, given as a dmabuf fd, through libdrm_amdgpu:
 * import on the GPU's render node and map it for the CPU.  to_bo: write
 * buf into it (restore) instead of reading it. */
static int bo_access(uint32_t render_minor, int dmabuf, void *buf, uint64_t size, bool to_bo)
{
	struct amdgpu_bo_import_result res = { 0 };
	amdgpu_device_handle dev;
	uint32_t maj, min;
	char path[64];
	void *cpu = NULL;
	int fd, r;

	snprintf(path, sizeof(path), RENDER_PREFIX "%u", render_minor);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = amdgpu_device_initialize(fd, &maj, &min, &dev);
	if (r) {
		close(fd);
		return r;
	}
	r = amdgpu_bo_import(dev, amdgpu_bo_handle_type_dma_buf_fd, (uint32_t)dmabuf, &res);
	if (!r) {
		r = amdgpu_bo_cpu_map(res.buf_handle, &cpu);
		if (!r) {
			if (to_bo)
				memcpy(cpu, buf, size);
			else
				memcpy(buf, cpu, size);
			amdgpu_bo_cpu_unmap(res.buf_handle);
		}
		amdgpu_bo_free(res.buf_handle);
	}
	amdgpu_device_deinitialize(dev);
	close(fd);
	return r;
}

static uint32_t actual_gpu(const struct kfd_criu_device_bucket *d, uint32_t n, uint32_t user)
{
	for (uint32_t i = 0; i < n; i++)
		if (d[i].user_gpu_id == user)
			return d[i].actual_gpu_id;
	return user;
}

static int kfd_dump(struct amdgpu_priv *p, const struct ckpt_fd_info *fd, uint32_t obj_id)
{
	Ckpt__Amdgpu__KfdProcess kp = CKPT__AMDGPU__KFD_PROCESS__INIT;
	struct kfd_ioctl_criu_args a = { 0 };
	struct kfd_criu_device_bucket *devs = NULL;
	struct kfd_criu_bo_bucket *bos = NULL;
	Ckpt__Amdgpu__KfdDevice *kd = NULL, **kdp = NULL;
	Ckpt__Amdgpu__KfdBo *kb = NULL, **kbp = NULL;
	struct paused *np;
	uint8_t *priv_data = NULL, *chunk = NULL;
	int r;

	a.pid = (uint32_t)fd->pid;
	r = kfd_op(fd->local_fd, &a, KFD_CRIU_OP_PROCESS_INFO);
	if (r) {
		err(p, "dump: KFD_CRIU_OP_PROCESS_INFO for PID %d: %s", (int)fd->pid, strerror(-r));
		return r;
	}
	np = realloc(p->paused, (p->npaused + 1) * sizeof(*np));
	if (!np)
		return -ENOMEM;
	p->paused = np;
	p->paused[p->npaused].kfd = dup(fd->local_fd);
	p->paused[p->npaused++].pid = fd->pid;

	devs = calloc(a.num_devices + 1, sizeof(*devs));
	bos = calloc(a.num_bos + 1, sizeof(*bos));
	priv_data = malloc(a.priv_data_size + 1);
	if (!devs || !bos || !priv_data) {
		r = -ENOMEM;
		goto out;
	}
	a.devices = (uintptr_t)devs;
	a.bos = (uintptr_t)bos;
	a.priv_data = (uintptr_t)priv_data;
	r = kfd_op(fd->local_fd, &a, KFD_CRIU_OP_CHECKPOINT);
	if (r) {
		err(p, "dump: KFD_CRIU_OP_CHECKPOINT for PID %d: %s", (int)fd->pid, strerror(-r));
		goto out;
	}
	kd = calloc(a.num_devices + 1, sizeof(*kd));
	kdp = calloc(a.num_devices + 1, sizeof(*kdp));
	kb = calloc(a.num_bos + 1, sizeof(*kb));
	kbp = calloc(a.num_bos + 1, sizeof(*kbp));
	chunk = malloc(BO_CHUNK);
	if (!kd || !kdp || !kb || !kbp || !chunk) {
		r = -ENOMEM;
		goto out;
	}
	for (uint32_t i = 0; i < a.num_devices; i++) {
		ckpt__amdgpu__kfd_device__init(&kd[i]);
		kd[i].user_gpu_id = devs[i].user_gpu_id;
		kd[i].actual_gpu_id = devs[i].actual_gpu_id;
		kdp[i] = &kd[i];
	}
	for (uint32_t i = 0; i < a.num_bos && !r; i++) {
		uint32_t minor;

		ckpt__amdgpu__kfd_bo__init(&kb[i]);
		kb[i].addr = bos[i].addr;
		kb[i].size = bos[i].size;
		kb[i].offset = bos[i].offset;
		kb[i].gpu_id = bos[i].gpu_id;
		kb[i].alloc_flags = bos[i].alloc_flags;
		kbp[i] = &kb[i];
		if ((int32_t)bos[i].dmabuf_fd < 0 ||
		    render_minor_of(actual_gpu(devs, a.num_devices, bos[i].gpu_id), &minor))
			continue;
		uint8_t *all = malloc(bos[i].size ? bos[i].size : 1);

		if (!all) {
			r = -ENOMEM;
			break;
		}
		r = bo_access(minor, (int)bos[i].dmabuf_fd, all, bos[i].size, false);
		if (r)
			err(p, "dump: cannot read buffer object %u (%" PRIu64 " bytes at %#" PRIx64
			       ") of PID %d: %s",
			    i, (uint64_t)bos[i].size, (uint64_t)bos[i].addr, (int)fd->pid,
			    strerror(r < 0 ? -r : r));
		for (uint64_t off = 0; !r && off < bos[i].size; off += BO_CHUNK) {
			Ckpt__Amdgpu__BoChunk c = CKPT__AMDGPU__BO_CHUNK__INIT;

			c.id = obj_id;
			c.bo = i;
			c.offset = off;
			c.data.data = all + off;
			c.data.len = bos[i].size - off < BO_CHUNK ? bos[i].size - off : BO_CHUNK;
			r = save(p, IMG_BO, &c.base);
		}
		free(all);
		kb[i].has_has_contents = 1;
		kb[i].has_contents = !r;
	}
	if (r)
		goto out;
	kp.id = obj_id;
	kp.pid = (uint32_t)fd->pid;
	kp.n_devices = a.num_devices;
	kp.devices = kdp;
	kp.n_bos = a.num_bos;
	kp.bos = kbp;
	kp.num_objects = a.num_objects;
	kp.priv_data.data = priv_data;
	kp.priv_data.len = a.priv_data_size;
	r = save(p, IMG_KFD, &kp.base);
out:
	for (uint32_t i = 0; bos && i < a.num_bos; i++)
		if ((int32_t)bos[i].dmabuf_fd >= 0 && a.op == KFD_CRIU_OP_CHECKPOINT)
			close((int)bos[i].dmabuf_fd);
	free(devs);
	free(bos);
	free(priv_data);
	free(kd);
	free(kdp);
	free(kb);
	free(kbp);
	free(chunk);
	return r;
}

/* ---- fd hooks ------------------------------------------------------------------ */

static int device_kind(const char *link, const struct stat *st)
{
	if (!S_ISCHR(st->st_mode) || !link)
		return 0;
	if (!strcmp(link, KFD_PATH))
		return CKPT__AMDGPU__DEVICE_KIND__KFD;
	if (!strncmp(link, RENDER_PREFIX, strlen(RENDER_PREFIX)))
		return CKPT__AMDGPU__DEVICE_KIND__RENDER;
	return 0;
}

static uint32_t gpu_of_minor(uint32_t minor)
{
	struct amdgpu_topo *t = calloc(1, sizeof(*t));
	uint32_t id = 0;

	if (!t)
		return 0;
	if (amdgpu_topo_read(AMDGPU_TOPOLOGY_DIR, t) == 0)
		for (size_t i = 0; i < t->n; i++)
			if (t->gpus[i].drm_render_minor == minor)
				id = t->gpus[i].gpu_id;
	free(t);
	return id;
}

static int amdgpu_fd_dump(void *priv, const struct ckpt_fd_info *fd, uint32_t obj_id,
			  const char **klass)
{
	struct amdgpu_priv *p = priv;
	Ckpt__Amdgpu__DeviceFd d = CKPT__AMDGPU__DEVICE_FD__INIT;
	int kind = device_kind(fd->link, &fd->st), r;

	if (!kind)
		return CKPT_NOT_MINE;
	r = save_topology(p);
	if (r)
		return r;
	d.id = obj_id;
	d.kind = kind;
	d.has_flags = d.has_pid = 1;
	d.flags = fd->flags;
	d.pid = (uint32_t)fd->pid;
	if (kind == CKPT__AMDGPU__DEVICE_KIND__RENDER) {
		d.has_render_minor = d.has_gpu_id = 1;
		d.render_minor = minor(fd->st.st_rdev);
		d.gpu_id = gpu_of_minor(d.render_minor);
	}
	r = save(p, IMG_FD, &d.base);
	if (!r && kind == CKPT__AMDGPU__DEVICE_KIND__KFD)
		r = kfd_dump(p, fd, obj_id);
	if (!r)
		*klass = fd_classes[kind == CKPT__AMDGPU__DEVICE_KIND__KFD ? 0 : 1];
	return r == CKPT_NOT_MINE ? -EIO : r;
}

static const ProtobufCMessage *find(struct amdgpu_priv *p, int which, uint32_t id)
{
	for (size_t i = 0; i < p->nrecs[which]; i++) {
		const ProtobufCMessage *m = p->recs[which][i];
		uint32_t rid = which == IMG_FD    ? ((const Ckpt__Amdgpu__DeviceFd *)m)->id
			       : which == IMG_KFD ? ((const Ckpt__Amdgpu__KfdProcess *)m)->id
			       : which == IMG_VMA ? ((const Ckpt__Amdgpu__DeviceVma *)m)->id
						  : UINT32_MAX;

		if (rid == id)
			return m;
	}
	return NULL;
}

/* Open the device of a saved fd or mapping on this machine. */
static int open_device(struct amdgpu_priv *p, int kind, uint32_t gpu_id, uint32_t minor_saved,
		       uint32_t flags, int *out)
{
	char path[64];
	uint32_t minor = minor_saved;
	int fd;

	if (kind == CKPT__AMDGPU__DEVICE_KIND__KFD) {
		snprintf(path, sizeof(path), "%s", KFD_PATH);
	} else {
		if (gpu_id) {
			uint32_t here = amdgpu_map_gpu(p->map, p->saved.n, gpu_id);

			for (size_t i = 0; here && i < p->here.n; i++)
				if (p->here.gpus[i].gpu_id == here)
					minor = p->here.gpus[i].drm_render_minor;
		}
		snprintf(path, sizeof(path), RENDER_PREFIX "%u", minor);
	}
	fd = open(path, (flags & O_ACCMODE ? flags & O_ACCMODE : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		err(p, "restore: cannot open %s: %s", path, strerror(e));
		return -e;
	}
	*out = fd;
	return 0;
}

static int amdgpu_fd_restore(void *priv, const char *klass, uint32_t obj_id, int *fd)
{
	struct amdgpu_priv *p = priv;
	const Ckpt__Amdgpu__DeviceFd *d = (const void *)find(p, IMG_FD, obj_id);

	(void)klass;
	*fd = -1;
	if (!d) {
		err(p, "restore: device fd %u is not in %s; the images are damaged", obj_id,
		    images[IMG_FD].name);
		return -EBADMSG;
	}
	return open_device(p, d->kind, d->gpu_id, d->render_minor, d->flags, fd);
}

/* In the restored task: KFD state belongs to its address space. */
static int amdgpu_fd_restore_in_task(void *priv, const char *klass, uint32_t obj_id, int fd)
{
	struct amdgpu_priv *p = priv;
	const Ckpt__Amdgpu__KfdProcess *kp;
	struct kfd_ioctl_criu_args a = { 0 };
	struct kfd_criu_device_bucket *devs;
	struct kfd_criu_bo_bucket *bos;
	int r;

	if (strcmp(klass, "kfd"))
		return 0;
	kp = (const void *)find(p, IMG_KFD, obj_id);
	if (!kp)
		return 0; /* /dev/kfd open, no process state yet */
	devs = calloc(kp->n_devices + 1, sizeof(*devs));
	bos = calloc(kp->n_bos + 1, sizeof(*bos));
	if (!devs || !bos) {
		free(devs);
		free(bos);
		return -ENOMEM;
	}
	for (size_t i = 0; i < kp->n_devices; i++) {
		uint32_t here = amdgpu_map_gpu(p->map, p->saved.n, kp->devices[i]->actual_gpu_id);
		int dfd = -1;

		devs[i].user_gpu_id = kp->devices[i]->user_gpu_id;
		devs[i].actual_gpu_id = here ? here : kp->devices[i]->actual_gpu_id;
		r = open_device(p, CKPT__AMDGPU__DEVICE_KIND__RENDER, kp->devices[i]->actual_gpu_id,
				0, O_RDWR, &dfd);
		if (r)
			goto out;
		devs[i].drm_fd = (uint32_t)dfd;
	}
	for (size_t i = 0; i < kp->n_bos; i++) {
		bos[i].addr = kp->bos[i]->addr;
		bos[i].size = kp->bos[i]->size;
		bos[i].offset = kp->bos[i]->offset;
		bos[i].gpu_id = kp->bos[i]->gpu_id;
		bos[i].alloc_flags = kp->bos[i]->alloc_flags;
		bos[i].dmabuf_fd = UINT32_MAX;
	}
	a.devices = (uintptr_t)devs;
	a.bos = (uintptr_t)bos;
	a.priv_data = (uintptr_t)kp->priv_data.data;
	a.priv_data_size = kp->priv_data.len;
	a.num_devices = (uint32_t)kp->n_devices;
	a.num_bos = (uint32_t)kp->n_bos;
	a.num_objects = kp->num_objects;
	r = kfd_op(fd, &a, KFD_CRIU_OP_RESTORE);
	if (r) {
		err(p, "restore: KFD_CRIU_OP_RESTORE: %s", strerror(-r));
		goto out;
	}
	/* contents back, chunk by chunk */
	for (size_t c = 0; !r && c < p->nrecs[IMG_BO]; c++) {
		const Ckpt__Amdgpu__BoChunk *ch = (const void *)p->recs[IMG_BO][c];
		uint32_t here;

		if (ch->id != obj_id || ch->bo >= kp->n_bos || (int32_t)bos[ch->bo].dmabuf_fd < 0)
			continue;
		if (ch->offset + ch->data.len > kp->bos[ch->bo]->size) {
			r = -EBADMSG;
			break;
		}
		here = amdgpu_map_gpu(p->map, p->saved.n, kp->bos[ch->bo]->gpu_id);
		for (size_t i = 0; i < p->here.n; i++) {
			if (p->here.gpus[i].gpu_id != here)
				continue;
			/* whole-BO access per chunk: simple, slow; see the docs */
			uint8_t *all = malloc(kp->bos[ch->bo]->size);

			if (!all) {
				r = -ENOMEM;
				break;
			}
			r = bo_access(p->here.gpus[i].drm_render_minor, (int)bos[ch->bo].dmabuf_fd,
				      all, kp->bos[ch->bo]->size, false);
			if (!r) {
				memcpy(all + ch->offset, ch->data.data, ch->data.len);
				r = bo_access(p->here.gpus[i].drm_render_minor,
					      (int)bos[ch->bo].dmabuf_fd, all,
					      kp->bos[ch->bo]->size, true);
			}
			free(all);
		}
	}
	if (r)
		err(p, "restore: cannot write back the buffer objects: %s", strerror(r < 0 ? -r : r));
out:
	for (size_t i = 0; i < kp->n_devices; i++)
		if (devs[i].drm_fd)
			close((int)devs[i].drm_fd);
	for (size_t i = 0; i < kp->n_bos; i++)
		if ((int32_t)bos[i].dmabuf_fd >= 0)
			close((int)bos[i].dmabuf_fd);
	free(devs);
	free(bos);
	return r;
}

/* ---- vma hooks ----------------------------------------------------------------- */

static int amdgpu_vma_dump(void *priv, const struct ckpt_vma_info *vma, uint32_t *obj_id,
			   const char **klass)
{
	struct amdgpu_priv *p = priv;
	Ckpt__Amdgpu__DeviceVma v = CKPT__AMDGPU__DEVICE_VMA__INIT;
	int kind = device_kind(vma->path, &vma->st), r;
	uint32_t *n;

	if (!kind)
		return CKPT_NOT_MINE;
	v.kind = kind;
	if (kind == CKPT__AMDGPU__DEVICE_KIND__KFD) {
		v.id = 1;
	} else {
		v.has_render_minor = v.has_gpu_id = 1;
		v.render_minor = minor(vma->st.st_rdev);
		v.gpu_id = gpu_of_minor(v.render_minor);
		v.id = 0x10000 + v.render_minor;
	}
	*obj_id = v.id;
	*klass = vma_classes[kind == CKPT__AMDGPU__DEVICE_KIND__KFD ? 0 : 1];
	for (size_t i = 0; i < p->nvma_ids; i++)
		if (p->vma_ids[i] == v.id)
			return 0;
	r = save_topology(p);
	if (!r)
		r = save(p, IMG_VMA, &v.base);
	if (r)
		return r;
	n = realloc(p->vma_ids, (p->nvma_ids + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	p->vma_ids = n;
	p->vma_ids[p->nvma_ids++] = v.id;
	return 0;
}

static int amdgpu_vma_restore(void *priv, const char *klass, uint32_t obj_id, int *fd)
{
	struct amdgpu_priv *p = priv;
	const Ckpt__Amdgpu__DeviceVma *v = (const void *)find(p, IMG_VMA, obj_id);

	(void)klass;
	*fd = -1;
	if (!v) {
		err(p, "restore: device mapping %u is not in %s; the images are damaged", obj_id,
		    images[IMG_VMA].name);
		return -EBADMSG;
	}
	return open_device(p, v->kind, v->gpu_id, v->render_minor, O_RDWR, fd);
}

/* ---- lifecycle ----------------------------------------------------------------- */

static void close_images(struct amdgpu_priv *p, int ok, int *ret)
{
	for (int i = 0; i < NIMG; i++) {
		if (p->img[i] && p->host->img_close(p->img[i]) < 0 && ok && ret && !*ret) {
			err(p, "dump: cannot finish image %s", images[i].name);
			*ret = -EIO;
		}
		p->img[i] = NULL;
	}
}

static void unpause_all(struct amdgpu_priv *p)
{
	for (size_t i = 0; i < p->npaused; i++) {
		struct kfd_ioctl_criu_args a = { 0 };
		int r;

		if (p->paused[i].kfd < 0)
			continue;
		a.pid = (uint32_t)p->paused[i].pid;
		r = kfd_op(p->paused[i].kfd, &a, KFD_CRIU_OP_UNPAUSE);
		if (r)
			err(p, "KFD_CRIU_OP_UNPAUSE for PID %d: %s", (int)p->paused[i].pid, strerror(-r));
		close(p->paused[i].kfd);
	}
	free(p->paused);
	p->paused = NULL;
	p->npaused = 0;
}

static void reset_dump(struct amdgpu_priv *p)
{
	close_images(p, 0, NULL);
	unpause_all(p);
	free(p->vma_ids);
	p->vma_ids = NULL;
	p->nvma_ids = 0;
	p->topo_saved = false;
}

static int amdgpu_dump_start(void *priv, pid_t root)
{
	(void)root;
	reset_dump(priv);
	return 0;
}

static int amdgpu_dump_finish(void *priv, int ok)
{
	struct amdgpu_priv *p = priv;
	int ret = 0;

	close_images(p, ok, &ret);
	unpause_all(p);
	free(p->vma_ids);
	p->vma_ids = NULL;
	p->nvma_ids = 0;
	p->topo_saved = false;
	return ret;
}

static void drop_restore(struct amdgpu_priv *p)
{
	for (int i = 0; i < NIMG; i++) {
		for (size_t j = 0; j < p->nrecs[i]; j++)
			protobuf_c_message_free_unpacked(p->recs[i][j], NULL);
		free(p->recs[i]);
		p->recs[i] = NULL;
		p->nrecs[i] = 0;
	}
	p->saved.n = p->here.n = 0;
}

static int amdgpu_restore_start(void *priv)
{
	struct amdgpu_priv *p = priv;
	char why[400];
	int r = 0;

	drop_restore(p);
	for (int i = 0; i < NIMG && !r; i++)
		r = p->host->img_load(images[i].name, images[i].desc, &p->recs[i], &p->nrecs[i]);
	if (r)
		goto fail;
	if (!p->nrecs[IMG_FD] && !p->nrecs[IMG_VMA])
		return 0; /* no GPU in this dump */
	if (p->nrecs[IMG_TOPO] > AMDGPU_MAX_GPUS) {
		r = -EBADMSG;
		goto fail;
	}
	for (size_t i = 0; i < p->nrecs[IMG_TOPO]; i++) {
		const Ckpt__Amdgpu__GpuNode *g = (const void *)p->recs[IMG_TOPO][i];
		struct amdgpu_gpu *s = &p->saved.gpus[i];

		s->node = g->node;
		s->gpu_id = g->gpu_id;
		s->vendor_id = g->vendor_id;
		s->device_id = g->device_id;
		s->simd_count = g->simd_count;
		s->local_mem_size = g->local_mem_size;
		s->drm_render_minor = g->drm_render_minor;
		s->gfx_target_version = g->gfx_target_version;
	}
	p->saved.n = p->nrecs[IMG_TOPO];
	r = access(KFD_PATH, F_OK) ? -ENODEV : amdgpu_topo_read(AMDGPU_TOPOLOGY_DIR, &p->here);
	if (r) {
		err(p, "restore: the dump holds AMD GPU state and this machine has %s",
		    r == -ENODEV ? "no AMD GPU (/dev/kfd missing)" : "no readable KFD topology");
		goto fail;
	}
	r = amdgpu_topo_match(&p->saved, &p->here, p->map, why, sizeof(why));
	if (r) {
		err(p, "restore: %s", why);
		goto fail;
	}
	return 0;
fail:
	drop_restore(p);
	return r;
}

static int amdgpu_restore_resume(void *priv, pid_t root)
{
	struct amdgpu_priv *p = priv;
	int kfd, r = 0;

	(void)root;
	if (!p->nrecs[IMG_KFD])
		return 0;
	kfd = open(KFD_PATH, O_RDWR | O_CLOEXEC);
	if (kfd < 0) {
		err(p, "restore: cannot open %s: %s", KFD_PATH, strerror(errno));
		return -ENODEV;
	}
	for (size_t i = 0; i < p->nrecs[IMG_KFD] && !r; i++) {
		struct kfd_ioctl_criu_args a = { 0 };

		a.pid = ((const Ckpt__Amdgpu__KfdProcess *)p->recs[IMG_KFD][i])->pid;
		r = kfd_op(kfd, &a, KFD_CRIU_OP_RESUME);
		if (r)
			err(p, "restore: KFD_CRIU_OP_RESUME for PID %u: %s", a.pid, strerror(-r));
	}
	close(kfd);
	return r;
}

static int amdgpu_restore_finish(void *priv, int ok)
{
	(void)ok;
	drop_restore(priv);
	return 0;
}

static int amdgpu_check(void *priv, char *msg, size_t len)
{
	struct amdgpu_topo *t;
	int fd = open(KFD_PATH, O_RDWR | O_CLOEXEC), e;

	(void)priv;
	if (fd < 0) {
		e = errno;
		if (e == ENOENT)
			snprintf(msg, len, "no AMD GPU (/dev/kfd missing)");
		else
			snprintf(msg, len, "cannot open /dev/kfd: %s", strerror(e));
		return -ENODEV;
	}
	close(fd);
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	e = amdgpu_topo_read(AMDGPU_TOPOLOGY_DIR, t);
	if (e)
		snprintf(msg, len, "/dev/kfd opens, the KFD topology cannot be read: %s", strerror(-e));
	else if (!t->n)
		snprintf(msg, len, "/dev/kfd opens, but KFD lists no GPU");
	else
		snprintf(msg, len, "%zu AMD GPU(s) (first: %04x:%04x, gpu_id %#x), KFD CRIU ioctls",
			 t->n, t->gpus[0].vendor_id, t->gpus[0].device_id, t->gpus[0].gpu_id);
	free(t);
	return e ? -ENODEV : 0;
}

/* ---- descriptor ------------------------------------------------------------------ */

static int amdgpu_init(const struct ckpt_host *host, void **priv)
{
	struct amdgpu_priv *p;

	if (!host || host->version < 3 || !host->img_write_msg ||
	    !host->log || !host->img_create || !host->img_write ||
	    !host->img_close || !host->img_load)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->host = host;
	*priv = p;
	return 0;
}

static void amdgpu_fini(void *priv)
{
	struct amdgpu_priv *p = priv;

	if (!p)
		return;
	reset_dump(p);
	drop_restore(p);
	free(p);
}

static const struct ckpt_lifecycle_hooks amdgpu_lifecycle = {
	.version = CKPT_LIFECYCLE_HOOKS_VERSION,
	.dump_start = amdgpu_dump_start,
	.dump_finish = amdgpu_dump_finish,
	.restore_start = amdgpu_restore_start,
	.restore_resume = amdgpu_restore_resume,
	.restore_finish = amdgpu_restore_finish,
	.check = amdgpu_check,
};

static const struct ckpt_fd_hooks amdgpu_fd_hooks = {
	.version = CKPT_FD_HOOKS_VERSION,
	.classes = fd_classes,
	.dump = amdgpu_fd_dump,
	.restore = amdgpu_fd_restore,
	.restore_in_task = amdgpu_fd_restore_in_task,
};

static const struct ckpt_vma_hooks amdgpu_vma_hooks = {
	.version = CKPT_VMA_HOOKS_VERSION,
	.classes = vma_classes,
	.dump = amdgpu_vma_dump,
	.restore = amdgpu_vma_restore,
};

static const ProtobufCMessageDescriptor *const amdgpu_image_types[] = {
	&ckpt__amdgpu__gpu_node__descriptor,
	&ckpt__amdgpu__device_fd__descriptor,
	&ckpt__amdgpu__kfd_process__descriptor,
	&ckpt__amdgpu__bo_chunk__descriptor,
	&ckpt__amdgpu__device_vma__descriptor,
	NULL,
};

CKPT_PLUGIN_EXPORT = {
	.abi_major = CKPT_PLUGIN_ABI_MAJOR,
	.abi_minor = CKPT_PLUGIN_ABI_MINOR,
	.name = AMDGPU_NAME,
	.version = "0.1.0",
	.description = "AMD GPUs through KFD (/dev/kfd, render nodes): KFD CRIU ioctls, "
		       "buffer objects, topology matching",
	.init = amdgpu_init,
	.fini = amdgpu_fini,
	.lifecycle = &amdgpu_lifecycle,
	.fd = &amdgpu_fd_hooks,
	.image_types = amdgpu_image_types,
	.vma = &amdgpu_vma_hooks,
};
