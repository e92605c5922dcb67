/* SPDX-License-Identifier: GPL-2.0-only */
/* Compressed page images: block codec, thread pool, dump and restore sides.
 * See pagecodec.h for the format. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <lz4.h>
#include <zstd.h>

#include "image.h"
#include "log.h"
#include "pagecodec.h"
#include "progress.h"
#include "ptrace.h"

/* Chosen by bench/bench-compress.sh (bench/README.md). */
#define DEFAULT_CODEC CKPT__PAGE_CODEC__PAGE_CODEC_LZ4
#define LZ4_FAST_ACCEL 8
/* Restore decompresses this much per round, then writes it into the task. */
#define FILL_BATCH (8u << 20)
#define POOL_MAX 4

static struct pagecodec_opts dump_opts = { CKPT__PAGE_CODEC__PAGE_CODEC_NONE, 0 };

/* zstd level 1, lz4 acceleration 1 (LZ4_compress_default) */
static int default_level(int codec)
{
	(void)codec;
	return 1;
}

int pagecodec_parse(const char *spec, struct pagecodec_opts *o)
{
	char name[16];
	const char *colon;
	size_t n;

	if (!spec || !*spec) {
		o->codec = DEFAULT_CODEC;
		o->level = default_level(o->codec);
		return 0;
	}
	colon = strchr(spec, ':');
	n = colon ? (size_t)(colon - spec) : strlen(spec);
	if (n >= sizeof(name))
		return -EINVAL;
	memcpy(name, spec, n);
	name[n] = '\0';
	if (!strcmp(name, "none") || !strcmp(name, "off")) {
		if (colon)
			return -EINVAL;
		o->codec = CKPT__PAGE_CODEC__PAGE_CODEC_NONE;
		o->level = 0;
		return 0;
	}
	if (!strcmp(name, "zstd"))
		o->codec = CKPT__PAGE_CODEC__PAGE_CODEC_ZSTD;
	else if (!strcmp(name, "lz4"))
		o->codec = CKPT__PAGE_CODEC__PAGE_CODEC_LZ4;
	else
		return -EINVAL;
	o->level = default_level(o->codec);
	if (!colon)
		return 0;
	const char *lv = colon + 1;
	if (o->codec == CKPT__PAGE_CODEC__PAGE_CODEC_LZ4 && !strcmp(lv, "fast")) {
		o->level = LZ4_FAST_ACCEL;
		return 0;
	}
	char *end;
	errno = 0;
	long l = strtol(lv, &end, 10);
	if (!*lv || *end || errno)
		return -EINVAL;
	if (o->codec == CKPT__PAGE_CODEC__PAGE_CODEC_ZSTD && (l < ZSTD_minCLevel() || l > ZSTD_maxCLevel() || !l))
		return -EINVAL;
	if (o->codec == CKPT__PAGE_CODEC__PAGE_CODEC_LZ4 && (l < 1 || l > 65537))
		return -EINVAL;
	o->level = (int)l;
	return 0;
}

void pagecodec_set(const struct pagecodec_opts *o)
{
	dump_opts = *o;
}

static const char *codec_name(int codec)
{
	switch (codec) {
	case CKPT__PAGE_CODEC__PAGE_CODEC_NONE:
		return "none";
	case CKPT__PAGE_CODEC__PAGE_CODEC_LZ4:
		return "lz4";
	case CKPT__PAGE_CODEC__PAGE_CODEC_ZSTD:
		return "zstd";
	}
	return "unknown";
}

const char *pagecodec_dump_name(void)
{
	static char buf[32];
	if (dump_opts.codec == CKPT__PAGE_CODEC__PAGE_CODEC_NONE)
		return NULL;
	snprintf(buf, sizeof(buf), "%s:%d", codec_name(dump_opts.codec), dump_opts.level);
	return buf;
}

/* ---- a small pool: fn(arg, i, worker) for i in [0, count) --------------- */

struct pool;
struct pool_slot {
	struct pool *p;
	int wid;
};

struct pool {
	pthread_t th[POOL_MAX];
	struct pool_slot slot[POOL_MAX];
	int nth;      /* helper threads; the caller is worker 0 */
	pthread_mutex_t mu;
	pthread_cond_t work, idle;
	void (*fn)(void *arg, size_t i, int wid);
	void *arg;
	size_t count, next, done;
	bool stop;
};

static void *pool_main(void *a)
{
	struct pool_slot *s = a;
	struct pool *p = s->p;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->next >= p->count)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->stop)
			break;
		size_t i = p->next++;
		pthread_mutex_unlock(&p->mu);
		p->fn(p->arg, i, s->wid);
		pthread_mutex_lock(&p->mu);
		if (++p->done == p->count)
			pthread_cond_signal(&p->idle);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* Workers in all: one per CPU, at most POOL_MAX. */
static int pool_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	return n > POOL_MAX ? POOL_MAX : (int)n;
}

static void pool_init(struct pool *p)
{
	memset(p, 0, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->idle, NULL);
	for (int i = 1; i < pool_workers(); i++) {
		p->slot[p->nth] = (struct pool_slot){ p, i };
		if (pthread_create(&p->th[p->nth], NULL, pool_main, &p->slot[p->nth]))
			break; /* fewer helpers: slower, still right */
		p->nth++;
	}
}

static void pool_run(struct pool *p, void (*fn)(void *, size_t, int), void *arg, size_t count)
{
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	p->count = count;
	p->next = 0;
	p->done = 0;
	pthread_cond_broadcast(&p->work);
	for (;;) {
		if (p->next >= p->count)
			break;
		size_t i = p->next++;
		pthread_mutex_unlock(&p->mu);
		fn(arg, i, 0);
		pthread_mutex_lock(&p->mu);
		p->done++;
	}
	while (p->done < p->count)
		pthread_cond_wait(&p->idle, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

static void pool_fini(struct pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nth; i++)
		pthread_join(p->th[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->idle);
}

/* ---- dump ----------------------------------------------------------------- */

struct cblock {
	char *out;      /* capacity: bound */
	size_t out_len; /* 0: store as is */
	uint64_t xxh;
	int err;
};

struct pagecodec_writer {
	pid_t vpid;
	struct img_raw *raw;
	struct ckpt_img *idx;
	struct pagecodec_opts o;
	struct pool pool;
	ZSTD_CCtx *cctx[POOL_MAX];
	uint64_t raw_offset;
	size_t bound;
	struct cblock *blk;
	size_t nblk;
	const char *in; /* the buffer being compressed */
	size_t in_len;
	uint64_t raw_bytes, stored_bytes;
};

static size_t block_bound(const struct pagecodec_opts *o)
{
	if (o->codec == CKPT__PAGE_CODEC__PAGE_CODEC_ZSTD)
		return ZSTD_compressBound(PAGECODEC_BLOCK);
	return (size_t)LZ4_compressBound(PAGECODEC_BLOCK);
}

static void compress_one(void *arg, size_t i, int wid)
{
	struct pagecodec_writer *w = arg;
	struct cblock *b = &w->blk[i];
	const char *src = w->in + i * PAGECODEC_BLOCK;
	size_t n = w->in_len - i * PAGECODEC_BLOCK;
	size_t r = 0;

	if (n > PAGECODEC_BLOCK)
		n = PAGECODEC_BLOCK;
	b->err = 0;
	b->xxh = img_hash_buf(src, n);
	if (w->o.codec == CKPT__PAGE_CODEC__PAGE_CODEC_ZSTD) {
		r = ZSTD_compressCCtx(w->cctx[wid], b->out, w->bound, src, n, w->o.level);
		if (ZSTD_isError(r)) {
			b->err = -EIO;
			r = 0;
		}
	} else {
		int c = LZ4_compress_fast(src, b->out, (int)n, (int)w->bound, w->o.level);
		if (c <= 0)
			b->err = -EIO;
		r = c > 0 ? (size_t)c : 0;
	}
	b->out_len = r < n ? r : 0;
}

struct pagecodec_writer *pagecodec_writer_open(pid_t vpid, struct img_raw *raw, int *err)
{
	char name[64];
	struct pagecodec_writer *w;

	*err = 0;
	if (dump_opts.codec == CKPT__PAGE_CODEC__PAGE_CODEC_NONE)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w) {
		*err = -ENOMEM;
		return NULL;
	}
	w->vpid = vpid;
	w->raw = raw;
	w->o = dump_opts;
	w->raw_offset = img_raw_offset(raw);
	w->bound = block_bound(&w->o);
	if (w->o.codec == CKPT__PAGE_CODEC__PAGE_CODEC_ZSTD)
		for (int i = 0; i < POOL_MAX; i++)
			if (!(w->cctx[i] = ZSTD_createCCtx())) {
				*err = -ENOMEM;
				goto fail;
			}
	snprintf(name, sizeof(name), "pageblocks-%d.img", vpid);
	w->idx = img_create(name, ckpt__page_block__descriptor.name);
	if (!w->idx) {
		*err = -errno;
		goto fail;
	}
	pool_init(&w->pool);
	return w;
fail:
	for (int i = 0; i < POOL_MAX; i++)
		ZSTD_freeCCtx(w->cctx[i]);
	free(w);
	return NULL;
}

int pagecodec_writer_put(struct pagecodec_writer *w, const void *buf, size_t len)
{
	size_t nb = (len + PAGECODEC_BLOCK - 1) / PAGECODEC_BLOCK;
	int ret;

	if (nb > w->nblk) {
		struct cblock *n = realloc(w->blk, nb * sizeof(*n));
		if (!n)
			return -ENOMEM;
		w->blk = n;
		for (size_t i = w->nblk; i < nb; i++) {
			w->blk[i].out = malloc(w->bound);
			if (!w->blk[i].out)
				return -ENOMEM;
			w->nblk = i + 1;
		}
	}
	w->in = buf;
	w->in_len = len;
	pool_run(&w->pool, compress_one, w, nb);

	for (size_t i = 0; i < nb; i++) {
		struct cblock *b = &w->blk[i];
		size_t n = len - i * PAGECODEC_BLOCK;
		if (n > PAGECODEC_BLOCK)
			n = PAGECODEC_BLOCK;
		if (b->err) {
			pr_err("mem", "PID %d: %s compression of a page block failed", w->vpid,
			       codec_name(w->o.codec));
			return b->err;
		}
		Ckpt__PageBlock pb = CKPT__PAGE_BLOCK__INIT;
		pb.has_codec = 1;
		pb.codec = b->out_len ? w->o.codec : CKPT__PAGE_CODEC__PAGE_CODEC_NONE;
		pb.has_raw_offset = 1;
		pb.raw_offset = w->raw_offset;
		pb.has_raw_len = 1;
		pb.raw_len = n;
		pb.has_offset = 1;
		pb.offset = img_raw_offset(w->raw);
		pb.has_len = 1;
		pb.len = b->out_len ? b->out_len : n;
		pb.has_raw_xxh3 = 1;
		pb.raw_xxh3 = b->xxh;
		ret = img_raw_write(w->raw, b->out_len ? b->out : (const char *)buf + i * PAGECODEC_BLOCK,
				    pb.len);
		if (!ret)
			ret = img_write_msg(w->idx, &pb.base);
		if (ret)
			return ret;
		w->raw_offset += n;
		w->raw_bytes += n;
		w->stored_bytes += pb.len;
	}
	return 0;
}

int pagecodec_writer_close(struct pagecodec_writer *w)
{
	int ret = 0;
	if (!w)
		return 0;
	pool_fini(&w->pool);
	if (w->idx)
		ret = img_close(w->idx);
	if (w->raw_bytes)
		pr_info("mem", "PID %d: pages %s: %llu bytes stored in %llu", w->vpid,
			pagecodec_dump_name(), (unsigned long long)w->raw_bytes,
			(unsigned long long)w->stored_bytes);
	for (size_t i = 0; i < w->nblk; i++)
		free(w->blk[i].out);
	free(w->blk);
	for (int i = 0; i < POOL_MAX; i++)
		ZSTD_freeCCtx(w->cctx[i]);
	free(w);
	return ret;
}

/* ---- restore -------------------------------------------------------------- */

bool pagecodec_image_compressed(pid_t vpid)
{
	char name[64];
	snprintf(name, sizeof(name), "pageblocks-%d.img", vpid);
	return faccessat(img_store_dirfd(), name, F_OK, 0) == 0;
}

struct filler {
	pid_t hpid, vpid;
	Ckpt__PageBlock **b;
	size_t nb;
	size_t first;   /* first block of this round */
	char *cbuf, *dbuf;
	int *err;
	ZSTD_DCtx *dctx[POOL_MAX];
	struct iovec local[UIO_MAXIOV], remote[UIO_MAXIOV];
	int niov;
	size_t iov_bytes;
};

/* One block into dst (raw_len bytes), checked against its checksum. */
static int decode_block(const Ckpt__PageBlock *b, const char *src, char *dst, ZSTD_DCtx *dctx)
{
	int err = 0;

	switch (b->codec) {
	case CKPT__PAGE_CODEC__PAGE_CODEC_NONE:
		memcpy(dst, src, b->raw_len);
		break;
	case CKPT__PAGE_CODEC__PAGE_CODEC_LZ4:
		if (LZ4_decompress_safe(src, dst, (int)b->len, (int)b->raw_len) != (int)b->raw_len)
			err = -EBADMSG;
		break;
	case CKPT__PAGE_CODEC__PAGE_CODEC_ZSTD: {
		size_t r = ZSTD_decompressDCtx(dctx, dst, b->raw_len, src, b->len);
		if (ZSTD_isError(r) || r != b->raw_len)
			err = -EBADMSG;
		break;
	}
	default:
		err = -EPROTONOSUPPORT;
	}
	if (!err && b->has_raw_xxh3 && img_hash_buf(dst, b->raw_len) != b->raw_xxh3)
		err = -EILSEQ;
	return err;
}

static void decompress_one(void *arg, size_t k, int wid)
{
	struct filler *f = arg;
	const Ckpt__PageBlock *b = f->b[f->first + k], *b0 = f->b[f->first];

	f->err[k] = decode_block(b, f->cbuf + (b->offset - b0->offset),
				 f->dbuf + (b->raw_offset - b0->raw_offset), f->dctx[wid]);
}

static int flush_iov(struct filler *f)
{
	if (!f->niov)
		return 0;
	ssize_t r = process_vm_writev(f->hpid, f->local, f->niov, f->remote, f->niov, 0);
	if (r != (ssize_t)f->iov_bytes) {
		/* a partial write: go range by range through /proc/PID/mem */
		for (int i = 0; i < f->niov; i++) {
			int ret = task_mem_write(f->hpid, (uint64_t)(uintptr_t)f->remote[i].iov_base,
						 f->local[i].iov_base, f->local[i].iov_len);
			if (ret) {
				pr_err("mem", "PID %d: cannot write its pages at %p: %s", f->vpid,
				       f->remote[i].iov_base, strerror(-ret));
				return ret;
			}
		}
	}
	f->niov = 0;
	f->iov_bytes = 0;
	return 0;
}

/* Blocks must tile the stream in order, in the file and uncompressed. */
static int check_blocks(const char *name, Ckpt__PageBlock **b, size_t nb)
{
	for (size_t i = 0; i < nb; i++) {
		const Ckpt__PageBlock *x = b[i];
		if (!x->has_raw_offset || !x->has_offset || !x->raw_len || x->raw_len > FILL_BATCH ||
		    x->len > x->raw_len || !x->len ||
		    (i && (x->raw_offset != b[i - 1]->raw_offset + b[i - 1]->raw_len ||
			   x->offset != b[i - 1]->offset + b[i - 1]->len))) {
			pr_err("mem", "%s: block %zu is malformed; the image is corrupted", name, i);
			return -EBADMSG;
		}
		if (x->codec != CKPT__PAGE_CODEC__PAGE_CODEC_NONE && x->codec != CKPT__PAGE_CODEC__PAGE_CODEC_LZ4 &&
		    x->codec != CKPT__PAGE_CODEC__PAGE_CODEC_ZSTD) {
			pr_err("mem", "%s: block %zu uses codec %d, which this ckpt does not know; restore with a newer ckpt",
			       name, i, x->codec);
			return -EPROTONOSUPPORT;
		}
	}
	return 0;
}

int pagecodec_fill(pid_t hpid, pid_t vpid, Ckpt__PagemapEntry *const *pm, size_t npm)
{
	char name[64], pname[64];
	struct filler f = { .hpid = hpid, .vpid = vpid };
	struct pool pool;
	bool pool_up = false;
	int fd = -1, ret;

	if (!pagecodec_image_compressed(vpid))
		return 1;
	snprintf(name, sizeof(name), "pageblocks-%d.img", vpid);
	snprintf(pname, sizeof(pname), "pages-%d.img", vpid);
	ret = img_load_all(name, &ckpt__page_block__descriptor, (ProtobufCMessage ***)&f.b, &f.nb,
			   false);
	if (ret)
		return ret;
	ret = check_blocks(name, f.b, f.nb);
	if (ret)
		goto out;
	fd = img_raw_open(pname);
	if (fd < 0) {
		ret = fd;
		goto out;
	}
	f.cbuf = mmap(NULL, FILL_BATCH, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	f.dbuf = mmap(NULL, FILL_BATCH, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	f.err = calloc(FILL_BATCH / 4096 + 1, sizeof(int));
	if (f.cbuf == MAP_FAILED || f.dbuf == MAP_FAILED || !f.err) {
		ret = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < POOL_MAX; i++)
		if (!(f.dctx[i] = ZSTD_createDCtx())) {
			ret = -ENOMEM;
			goto out;
		}
	pool_init(&pool);
	pool_up = true;

	uint64_t total = 0, done = 0;
	for (size_t i = 0; i < npm; i++)
		total += pm[i]->nr_pages * 4096;
	progress_stage("restore", "memory");

	size_t pmi = 0;
	uint64_t part = 0; /* bytes of pm[pmi] already written */
	for (size_t bi = 0; bi < f.nb;) {
		size_t bj = bi;
		uint64_t raw = 0, comp = 0;
		while (bj < f.nb && raw + f.b[bj]->raw_len <= FILL_BATCH && bj - bi < FILL_BATCH / 4096) {
			raw += f.b[bj]->raw_len;
			comp += f.b[bj]->len;
			bj++;
		}
		for (uint64_t got = 0; got < comp;) {
			ssize_t r = pread(fd, f.cbuf + got, comp - got, f.b[bi]->offset + got);
			if (r <= 0) {
				ret = r < 0 ? -errno : -EBADMSG;
				pr_err("mem", "%s: cannot read block %zu: %s", pname, bi,
				       r < 0 ? strerror(errno) : "the image ended early");
				goto out;
			}
			got += r;
		}
		f.first = bi;
		pool_run(&pool, decompress_one, &f, bj - bi);
		for (size_t k = 0; k < bj - bi; k++) {
			if (!f.err[k])
				continue;
			ret = f.err[k];
			pr_err("mem", "%s: block %zu (at offset %llu) %s; the image is corrupted", pname,
			       bi + k, (unsigned long long)f.b[bi + k]->offset,
			       ret == -EILSEQ ? "decompresses to the wrong bytes (checksum)" :
						"does not decompress");
			goto out;
		}

		uint64_t lo = f.b[bi]->raw_offset, hi = lo + raw;
		while (pmi < npm) {
			const Ckpt__PagemapEntry *e = pm[pmi];
			uint64_t pos = e->offset + part, end = e->offset + e->nr_pages * 4096;
			if (pos >= hi)
				break;
			if (pos < lo) {
				pr_err("mem", "%s: pagemap run at %#llx lies outside the block index; the image is corrupted",
				       name, (unsigned long long)e->vaddr);
				ret = -EBADMSG;
				goto out;
			}
			uint64_t n = (end < hi ? end : hi) - pos;
			if (f.niov == UIO_MAXIOV) {
				ret = flush_iov(&f);
				if (ret)
					goto out;
			}
			f.local[f.niov].iov_base = f.dbuf + (pos - lo);
			f.local[f.niov].iov_len = n;
			f.remote[f.niov].iov_base = (void *)(uintptr_t)(e->vaddr + part);
			f.remote[f.niov].iov_len = n;
			f.niov++;
			f.iov_bytes += n;
			part += n;
			if (pos + n == end) {
				pmi++;
				part = 0;
			}
		}
		ret = flush_iov(&f);
		if (ret)
			goto out;
		done += raw;
		progress_bytes(done < total ? done : total, total);
		bi = bj;
	}
	if (pmi < npm) {
		pr_err("mem", "%s: the blocks end before the pagemap's pages; the image is corrupted",
		       name);
		ret = -EBADMSG;
		goto out;
	}
	progress_end();
	ret = 0;
out:
	if (pool_up)
		pool_fini(&pool);
	for (int i = 0; i < POOL_MAX; i++)
		ZSTD_freeDCtx(f.dctx[i]);
	if (f.cbuf && f.cbuf != MAP_FAILED)
		munmap(f.cbuf, FILL_BATCH);
	if (f.dbuf && f.dbuf != MAP_FAILED)
		munmap(f.dbuf, FILL_BATCH);
	free(f.err);
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < f.nb; i++)
		protobuf_c_message_free_unpacked(&f.b[i]->base, NULL);
	free(f.b);
	return ret;
}

/* ---- random access: shared pages, and the levels of a parent chain ------ */

struct pagecodec_index {
	char name[64];          /* pages-PID.img, for errors */
	Ckpt__PageBlock **b;
	size_t nb, cached;      /* cached: block in dbuf, or nb */
	char *cbuf, *dbuf;
	ZSTD_DCtx *dctx;
};

void pagecodec_index_free(struct pagecodec_index *ix)
{
	if (!ix)
		return;
	for (size_t i = 0; i < ix->nb; i++)
		protobuf_c_message_free_unpacked(&ix->b[i]->base, NULL);
	free(ix->b);
	free(ix->cbuf);
	free(ix->dbuf);
	ZSTD_freeDCtx(ix->dctx);
	free(ix);
}

int pagecodec_index_load(pid_t vpid, struct pagecodec_index **out)
{
	char name[64];
	size_t max = 0;
	int ret;

	*out = NULL;
	if (!pagecodec_image_compressed(vpid))
		return 0;
	struct pagecodec_index *ix = calloc(1, sizeof(*ix));
	if (!ix)
		return -ENOMEM;
	snprintf(ix->name, sizeof(ix->name), "pages-%d.img", vpid);
	snprintf(name, sizeof(name), "pageblocks-%d.img", vpid);
	ret = img_load_all(name, &ckpt__page_block__descriptor, (ProtobufCMessage ***)&ix->b,
			   &ix->nb, false);
	if (!ret)
		ret = check_blocks(name, ix->b, ix->nb);
	if (ret)
		goto fail;
	for (size_t i = 0; i < ix->nb; i++)
		if (ix->b[i]->raw_len > max)
			max = ix->b[i]->raw_len; /* len <= raw_len: checked */
	ix->cbuf = malloc(max ? max : 1);
	ix->dbuf = malloc(max ? max : 1);
	ix->dctx = ZSTD_createDCtx();
	if (!ix->cbuf || !ix->dbuf || !ix->dctx) {
		ret = -ENOMEM;
		goto fail;
	}
	ix->cached = ix->nb;
	*out = ix;
	return 0;
fail:
	pagecodec_index_free(ix);
	return ret;
}

int pagecodec_index_pread(struct pagecodec_index *ix, int fd, void *buf, size_t len,
			  uint64_t off)
{
	char *out = buf;
	int ret;

	while (len) {
		size_t lo = 0, hi = ix->nb;
		while (lo < hi) { /* first block ending after off */
			size_t mid = (lo + hi) / 2;
			if (ix->b[mid]->raw_offset + ix->b[mid]->raw_len <= off)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == ix->nb || ix->b[lo]->raw_offset > off) {
			pr_err("mem", "%s: no block holds offset %llu; the image is corrupted", ix->name,
			       (unsigned long long)off);
			return -EBADMSG;
		}
		const Ckpt__PageBlock *b = ix->b[lo];
		if (ix->cached != lo) {
			ix->cached = ix->nb;
			if (pread(fd, ix->cbuf, b->len, b->offset) != (ssize_t)b->len) {
				pr_err("mem", "%s: cannot read block %zu; the image is truncated",
				       ix->name, lo);
				return -EBADMSG;
			}
			ret = decode_block(b, ix->cbuf, ix->dbuf, ix->dctx);
			if (ret) {
				pr_err("mem", "%s: block %zu does not decompress to its bytes; the image is corrupted",
				       ix->name, lo);
				return ret;
			}
			ix->cached = lo;
		}
		size_t at = off - b->raw_offset, n = b->raw_len - at;
		if (n > len)
			n = len;
		memcpy(out, ix->dbuf + at, n);
		out += n;
		off += n;
		len -= n;
	}
	return 0;
}

static struct {
	pid_t vpid; /* 0: nothing open */
	int fd;
	struct pagecodec_index *ix;
} rd = { .fd = -1 };

void pagecodec_pread_end(void)
{
	if (rd.fd >= 0)
		close(rd.fd);
	pagecodec_index_free(rd.ix);
	rd.vpid = 0;
	rd.fd = -1;
	rd.ix = NULL;
}

int pagecodec_pread(pid_t vpid, void *buf, size_t len, uint64_t off)
{
	char name[64];
	int ret;

	if (rd.vpid != vpid) {
		if (!pagecodec_image_compressed(vpid))
			return 1;
		pagecodec_pread_end();
		ret = pagecodec_index_load(vpid, &rd.ix);
		if (ret)
			return ret;
		snprintf(name, sizeof(name), "pages-%d.img", vpid);
		rd.fd = img_raw_open(name);
		if (rd.fd < 0) {
			ret = rd.fd;
			rd.fd = -1;
			pagecodec_pread_end();
			return ret;
		}
		rd.vpid = vpid;
	}
	return pagecodec_index_pread(rd.ix, rd.fd, buf, len, off);
}

/* ---- show ----------------------------------------------------------------- */

int pagecodec_stats(const char *name, struct pagecodec_stats *st)
{
	Ckpt__PageBlock **b = NULL;
	size_t nb = 0;
	int ret = img_load_all(name, &ckpt__page_block__descriptor, (ProtobufCMessage ***)&b, &nb,
			       false);
	if (ret)
		return ret;
	memset(st, 0, sizeof(*st));
	st->codec = "none";
	st->blocks = nb;
	for (size_t i = 0; i < nb; i++) {
		st->raw_bytes += b[i]->raw_len;
		st->stored_bytes += b[i]->len;
		if (b[i]->codec != CKPT__PAGE_CODEC__PAGE_CODEC_NONE)
			st->codec = codec_name(b[i]->codec);
		protobuf_c_message_free_unpacked(&b[i]->base, NULL);
	}
	free(b);
	return 0;
}
