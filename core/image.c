/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The image store.  Every byte written goes through a streaming xxh3, so the
 * inventory lists each image's checksum without reading anything back; a
 * restore verifies them all before it touches anything.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "hash.h"

#include "image.h"
#include "inventory.pb-c.h"
#include "log.h"
#include "pageserver.h"

#define WBUF_SIZE (1u << 20)     /* write buffer of an image */
#define DIRECT_MIN (64u << 10)   /* raw writes this big skip the buffer */
#define RBUF_SIZE (256u << 10)   /* read buffer of a framed image */
#define HASH_CHUNK (4u << 20)    /* read size when verifying checksums */
#define HDR_SIZE sizeof(struct img_header)
#define INVENTORY_NAME "inventory.img"
#define INVENTORY_TMP "inventory.img.tmp"
#define RAW_TYPE "raw"

_Static_assert(sizeof(struct img_header) == 4 + 4 + IMG_TYPE_LEN, "header has no padding");

static struct {
	int dirfd;
	char *dir;
	pthread_mutex_t lock; /* images may be closed from several threads */
	struct img_record_entry *written;
	size_t nwritten, cap;
	int open_writers;
	bool keep_sent; /* streaming: keep the chain's record here too */
} store = { .dirfd = -1, .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- plain fd helpers ----------------------------------------------------- */

/* At most this much per write().  ext4 sizes its page-cache folios by the
 * write: 1 MiB writes take 1 MiB folios, which the allocator carves from
 * the large free blocks this VM hands back to its host (free page
 * reporting), so every byte lands on memory the host must back again.
 * A 2 GiB dump to ext4 took 3.2 s with 1 MiB writes and 0.84 s with
 * 256 KiB ones; tmpfs does not care (bench/README.md). */
#define WRITE_MAX (256u << 10)

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len > WRITE_MAX ? WRITE_MAX : len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= n;
	}
	return 0;
}

/* Bytes read (fewer than len only at end of file) or -errno. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		got += n;
	}
	return got;
}

static const char *dir_name(void)
{
	return store.dir ? store.dir : "(no images directory)";
}

/* Images live flat in the store: refuse anything that could leave it. */
static int check_name(const char *name)
{
	if (!name || !*name || strchr(name, '/') || !strcmp(name, ".") ||
	    !strcmp(name, "..") || strlen(name) >= NAME_MAX) {
		pr_err("image", "invalid image name \"%s\": it must be a plain file name",
		       name ? name : "(null)");
		return -EINVAL;
	}
	if (store.dirfd < 0) {
		pr_err("image", "no images directory is open for image %s", name);
		return -EBADF;
	}
	return 0;
}

/* ---- header --------------------------------------------------------------- */

static void header_fill(struct img_header *h, const char *type)
{
	memset(h, 0, sizeof(*h));
	h->magic = htole32(IMG_MAGIC);
	h->version = htole32(IMG_FORMAT_VERSION);
	strncpy(h->type, type, IMG_TYPE_LEN - 1);
}

/* Check a header read from image name against the expected type (NULL: any);
 * converts it to host order in place. */
static int header_check(const char *name, struct img_header *h, const char *type)
{
	h->magic = le32toh(h->magic);
	h->version = le32toh(h->version);
	if (h->magic != IMG_MAGIC) {
		pr_err("image", "%s/%s is not a ckpt image (bad magic 0x%08x): the file is foreign or corrupted",
		       dir_name(), name, h->magic);
		return -EBADMSG;
	}
	if (h->version > IMG_FORMAT_VERSION) {
		pr_err("image", "%s/%s has format version %u, this ckpt reads up to %u: use a newer ckpt",
		       dir_name(), name, h->version, IMG_FORMAT_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (h->version == 0 || !memchr(h->type, '\0', IMG_TYPE_LEN)) {
		pr_err("image", "%s/%s has a corrupted header", dir_name(), name);
		return -EBADMSG;
	}
	if (type && strcmp(h->type, type)) {
		pr_err("image", "%s/%s holds %s records, expected %s: wrong or corrupted image",
		       dir_name(), name, h->type, type);
		return -EBADMSG;
	}
	return 0;
}

/* ---- list of images written in this run ---------------------------------- */

static int written_add(const char *name, const char *type, uint64_t size, uint64_t hash)
{
	struct img_record_entry *e = NULL;
	int ret = 0;

	pthread_mutex_lock(&store.lock);
	/* an image created twice is listed once, as last written */
	for (size_t i = 0; i < store.nwritten; i++) {
		if (!strcmp(store.written[i].name, name)) {
			e = &store.written[i];
			break;
		}
	}
	if (!e) {
		if (store.nwritten == store.cap) {
			size_t cap = store.cap ? store.cap * 2 : 64;
			void *p = realloc(store.written, cap * sizeof(*store.written));

			if (!p) {
				ret = -ENOMEM;
				goto out;
			}
			store.written = p;
			store.cap = cap;
		}
		e = &store.written[store.nwritten];
		e->name = strdup(name);
		e->type = NULL;
		if (!e->name) {
			ret = -ENOMEM;
			goto out;
		}
		store.nwritten++;
	}
	free(e->type);
	e->type = strdup(type);
	if (!e->type) {
		/* keep the entry consistent: drop it */
		free(e->name);
		*e = store.written[--store.nwritten];
		ret = -ENOMEM;
		goto out;
	}
	e->size = size;
	e->xxh3 = hash;
out:
	pthread_mutex_unlock(&store.lock);
	if (ret)
		pr_err("image", "out of memory listing image %s", name);
	return ret;
}

static void written_free(void)
{
	for (size_t i = 0; i < store.nwritten; i++) {
		free(store.written[i].name);
		free(store.written[i].type);
	}
	free(store.written);
	store.written = NULL;
	store.nwritten = store.cap = 0;
}

size_t img_store_written(const struct img_record_entry **entries)
{
	*entries = store.written;
	return store.nwritten;
}

/* ---- store ---------------------------------------------------------------- */

int img_store_open(const char *dir, bool write)
{
	char *copy;
	int fd, ret;

	if (write && mkdir(dir, 0700) && errno != EEXIST) {
		ret = -errno;
		pr_err("image", "cannot create images directory %s: %s", dir, strerror(-ret));
		return ret;
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_err("image", "cannot open images directory %s: %s", dir, strerror(-ret));
		return ret;
	}
	copy = strdup(dir);
	if (!copy) {
		close(fd);
		pr_err("image", "out of memory opening %s", dir);
		return -ENOMEM;
	}
	img_store_close();
	store.dirfd = fd;
	store.dir = copy;
	return 0;
}

void img_store_close(void)
{
	if (store.dirfd >= 0)
		close(store.dirfd);
	store.dirfd = -1;
	free(store.dir);
	store.dir = NULL;
	written_free();
	store.open_writers = 0;
}

const char *img_store_dir(void)
{
	return store.dir;
}

int img_store_dirfd(void)
{
	return store.dirfd;
}

void img_store_keep_sent(bool on)
{
	store.keep_sent = on;
}

bool img_kept_when_sent(const char *name)
{
	return !strcmp(name, "pstree.img") || !strncmp(name, "mm-", 3) ||
	       !strncmp(name, "pagemap-", 8);
}

uint64_t img_hash_buf(const void *buf, size_t len)
{
	return ckpt_xxh3(buf, len);
}

/* ---- buffered, checksummed writer shared by framed and raw images ------- */

struct wfile {
	int fd;
	int err;            /* first write error, sticky */
	unsigned char *buf;
	size_t used;
	uint64_t flushed;   /* bytes already handed to write() */
	XXH3_state_t *xxh;
	char *name;
	uint32_t remote_id; /* streamed to a page server instead of a file */
	int keep_fd;        /* streamed and also kept here (img_store_keep_sent) */
};

static int wf_open(struct wfile *w, const char *name)
{
	int ret;

	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->keep_fd = -1;
	ret = check_name(name);
	if (ret)
		return ret;
	w->name = strdup(name);
	w->buf = malloc(WBUF_SIZE);
	w->xxh = XXH3_createState();
	if (!w->name || !w->buf || !w->xxh) {
		pr_err("image", "out of memory creating image %s", name);
		ret = -ENOMEM;
		goto err;
	}
	XXH3_64bits_reset(w->xxh);
	if (ps_client_active()) {
		if (store.keep_sent && img_kept_when_sent(name)) {
			w->keep_fd = openat(store.dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
					    0600);
			if (w->keep_fd < 0) {
				ret = -errno;
				pr_err("image", "cannot create image %s/%s: %s", dir_name(), name,
				       strerror(-ret));
				goto err;
			}
		}
		ret = ps_client_open(name, &w->remote_id);
		if (ret) {
			if (w->keep_fd >= 0)
				close(w->keep_fd);
			goto err;
		}
		__atomic_fetch_add(&store.open_writers, 1, __ATOMIC_RELAXED);
		return 0;
	}
	w->fd = openat(store.dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		ret = -errno;
		pr_err("image", "cannot create image %s/%s: %s", dir_name(), name, strerror(-ret));
		goto err;
	}
	__atomic_fetch_add(&store.open_writers, 1, __ATOMIC_RELAXED);
	return 0;
err:
	XXH3_freeState(w->xxh);
	free(w->buf);
	free(w->name);
	return ret;
}

static int wf_fail(struct wfile *w, int err)
{
	if (!w->err) {
		w->err = err;
		if (!w->remote_id) /* the page server client said it already */
			pr_err("image", "cannot write image %s/%s: %s", dir_name(), w->name, strerror(-err));
	}
	return err;
}

/* Hash and write bytes that bypass the buffer (the buffer must be empty). */
static int wf_direct(struct wfile *w, const void *p, size_t n)
{
	int ret;

	ckpt_xxh3_update(w->xxh, p, n);
	ret = w->remote_id ? ps_client_data(w->remote_id, p, n) : write_all(w->fd, p, n);
	if (!ret && w->keep_fd >= 0) {
		ret = write_all(w->keep_fd, p, n);
		if (ret) {
			pr_err("image", "cannot write image %s/%s: %s", dir_name(), w->name,
			       strerror(-ret));
			w->err = ret;
		}
	}
	if (ret)
		return wf_fail(w, ret);
	w->flushed += n;
	return 0;
}

static int wf_flush(struct wfile *w)
{
	int ret;

	if (w->err)
		return w->err;
	if (!w->used)
		return 0;
	ret = wf_direct(w, w->buf, w->used);
	w->used = 0;
	return ret;
}

static int wf_put(struct wfile *w, const void *p, size_t n)
{
	int ret;

	if (w->err)
		return w->err;
	if (n > WBUF_SIZE - w->used || n >= DIRECT_MIN) {
		ret = wf_flush(w);
		if (ret)
			return ret;
		if (n >= DIRECT_MIN)
			return wf_direct(w, p, n); /* big buffers: no copy */
	}
	memcpy(w->buf + w->used, p, n);
	w->used += n;
	return 0;
}

/* Flush, close, and list the image for the inventory when all went well. */
static int wf_close(struct wfile *w, const char *type)
{
	uint64_t size, hash;
	int ret;

	ret = wf_flush(w);
	size = w->flushed;
	hash = XXH3_64bits_digest(w->xxh);
	if (w->remote_id) {
		if (w->keep_fd >= 0 && close(w->keep_fd) && !ret) {
			ret = -errno;
			pr_err("image", "cannot write image %s/%s: %s", dir_name(), w->name,
			       strerror(-ret));
		}
		if (!ret)
			ret = ps_client_close(w->remote_id, type, size, hash);
	} else if (close(w->fd) && !ret) {
		ret = wf_fail(w, -errno);
	}
	__atomic_fetch_sub(&store.open_writers, 1, __ATOMIC_RELAXED);
	if (!ret)
		ret = written_add(w->name, type, size, hash);
	XXH3_freeState(w->xxh);
	free(w->buf);
	free(w->name);
	return ret;
}

/* ---- framed images -------------------------------------------------------- */

struct ckpt_img {
	bool writing;
	char type[IMG_TYPE_LEN];
	uint64_t nrec;      /* records written or read so far */
	struct wfile w;     /* writing */
	/* reading */
	int fd;
	char *name;
	unsigned char *buf;
	size_t len, pos;
	uint64_t off;       /* file offset of the next byte handed out */
};

struct ckpt_img *img_create(const char *name, const char *type)
{
	struct ckpt_img *img;
	struct img_header h;
	int ret;

	if (!type || !*type || strlen(type) >= IMG_TYPE_LEN || !strcmp(type, RAW_TYPE)) {
		pr_err("image", "image %s: invalid record type \"%s\"", name ? name : "(null)",
		       type ? type : "(null)");
		errno = EINVAL;
		return NULL;
	}
	if (name && !strcmp(name, INVENTORY_NAME)) {
		pr_err("image", "%s is written by the store itself", INVENTORY_NAME);
		errno = EINVAL;
		return NULL;
	}
	img = calloc(1, sizeof(*img));
	if (!img) {
		errno = ENOMEM;
		return NULL;
	}
	ret = wf_open(&img->w, name);
	if (ret)
		goto err;
	img->writing = true;
	img->fd = -1;
	strcpy(img->type, type);
	header_fill(&h, type);
	ret = wf_put(&img->w, &h, sizeof(h));
	if (ret) {
		wf_close(&img->w, type);
		goto err;
	}
	return img;
err:
	free(img);
	errno = -ret;
	return NULL;
}

int img_write(struct ckpt_img *img, const void *rec, size_t len)
{
	uint32_t le;
	int ret;

	if (!img || !img->writing)
		return -EINVAL;
	if (len > IMG_MAX_RECORD) {
		pr_err("image", "record of %zu bytes for image %s exceeds the %u byte limit",
		       len, img->w.name, IMG_MAX_RECORD);
		return -E2BIG;
	}
	le = htole32((uint32_t)len);
	ret = wf_put(&img->w, &le, sizeof(le));
	if (!ret && len)
		ret = wf_put(&img->w, rec, len);
	if (!ret)
		img->nrec++;
	return ret;
}

int img_write_msg(struct ckpt_img *img, const ProtobufCMessage *msg)
{
	struct wfile *w;
	size_t n;
	uint32_t le;
	void *tmp;
	int ret;

	if (!img || !img->writing || !msg)
		return -EINVAL;
	w = &img->w;
	n = protobuf_c_message_get_packed_size(msg);
	if (n > IMG_MAX_RECORD || 4 + n > WBUF_SIZE) {
		/* rare: too big to pack in place */
		tmp = malloc(n ? n : 1);
		if (!tmp)
			return -ENOMEM;
		protobuf_c_message_pack(msg, tmp);
		ret = img_write(img, tmp, n);
		free(tmp);
		return ret;
	}
	if (w->err)
		return w->err;
	if (4 + n > WBUF_SIZE - w->used) {
		ret = wf_flush(w);
		if (ret)
			return ret;
	}
	/* pack straight into the write buffer, no copy */
	le = htole32((uint32_t)n);
	memcpy(w->buf + w->used, &le, sizeof(le));
	protobuf_c_message_pack(msg, w->buf + w->used + sizeof(le));
	w->used += sizeof(le) + n;
	img->nrec++;
	return 0;
}

/* Copy n bytes of the image to dst; returns how many (fewer only at end of
 * file) or -errno. */
static ssize_t rd_get(struct ckpt_img *img, void *dst, size_t n)
{
	unsigned char *d = dst;
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		if (img->pos < img->len) {
			size_t c = img->len - img->pos;

			if (c > n - got)
				c = n - got;
			memcpy(d + got, img->buf + img->pos, c);
			img->pos += c;
			got += c;
			continue;
		}
		if (n - got >= RBUF_SIZE) {
			/* large record: read it in place */
			r = read_full(img->fd, d + got, n - got);
			if (r < 0)
				return r;
			got += r;
			break;
		}
		do
			r = read(img->fd, img->buf, RBUF_SIZE);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		img->len = r;
		img->pos = 0;
	}
	img->off += got;
	return got;
}

static int rd_fail(struct ckpt_img *img, ssize_t r, const char *what)
{
	if (r < 0) {
		pr_err("image", "cannot read image %s/%s: %s", dir_name(), img->name,
		       strerror((int)-r));
		return (int)r;
	}
	pr_err("image", "image %s/%s is truncated at offset %" PRIu64 " (%s): the dump is incomplete",
	       dir_name(), img->name, img->off, what);
	return -EBADMSG;
}

struct ckpt_img *img_open(const char *name, const char *type)
{
	struct ckpt_img *img;
	struct img_header h;
	ssize_t r;
	int ret;

	ret = check_name(name);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	img = calloc(1, sizeof(*img));
	if (!img)
		goto nomem;
	img->fd = -1;
	img->name = strdup(name);
	img->buf = malloc(RBUF_SIZE);
	if (!img->name || !img->buf)
		goto nomem;
	img->fd = openat(store.dirfd, name, O_RDONLY | O_CLOEXEC);
	if (img->fd < 0) {
		ret = -errno;
		/* a missing image may be normal: the caller decides */
		if (ret == -ENOENT)
			pr_debug("image", "no image %s/%s", dir_name(), name);
		else
			pr_err("image", "cannot open image %s/%s: %s", dir_name(), name,
			       strerror(-ret));
		goto err;
	}
	r = rd_get(img, &h, sizeof(h));
	if (r != (ssize_t)sizeof(h)) {
		ret = rd_fail(img, r, "header");
		goto err;
	}
	ret = header_check(name, &h, type);
	if (ret)
		goto err;
	memcpy(img->type, h.type, IMG_TYPE_LEN);
	return img;
nomem:
	pr_err("image", "out of memory opening image %s", name);
	ret = -ENOMEM;
err:
	if (img) {
		if (img->fd >= 0)
			close(img->fd);
		free(img->buf);
		free(img->name);
		free(img);
	}
	errno = -ret;
	return NULL;
}

const char *img_type(const struct ckpt_img *img)
{
	return img->type;
}

int img_read(struct ckpt_img *img, void **rec, size_t *len)
{
	uint32_t le, n;
	void *p;
	ssize_t r;

	if (!img || img->writing)
		return -EINVAL;
	r = rd_get(img, &le, sizeof(le));
	if (r == 0)
		return 0;
	if (r != sizeof(le))
		return rd_fail(img, r, "record length");
	n = le32toh(le);
	if (n > IMG_MAX_RECORD) {
		pr_err("image", "image %s/%s: record %" PRIu64 " claims %u bytes, over the %u byte limit: the image is corrupted",
		       dir_name(), img->name, img->nrec, n, IMG_MAX_RECORD);
		return -EBADMSG;
	}
	p = malloc(n ? n : 1);
	if (!p)
		return -ENOMEM;
	r = rd_get(img, p, n);
	if (r != (ssize_t)n) {
		free(p);
		return rd_fail(img, r, "record body");
	}
	img->nrec++;
	*rec = p;
	*len = n;
	return 1;
}

int img_read_msg(struct ckpt_img *img, const ProtobufCMessageDescriptor *d,
		 ProtobufCMessage **out)
{
	ProtobufCMessage *m;
	size_t len;
	void *rec;
	int ret;

	if (!img || img->writing || !d)
		return -EINVAL;
	if (strcmp(d->name, img->type)) {
		pr_err("image", "image %s/%s holds %s records, not %s", dir_name(), img->name,
		       img->type, d->name);
		return -EINVAL;
	}
	ret = img_read(img, &rec, &len);
	if (ret <= 0)
		return ret;
	m = protobuf_c_message_unpack(d, NULL, len, rec);
	free(rec);
	if (!m) {
		pr_err("image", "image %s/%s: record %" PRIu64 " does not decode as %s: the image is corrupted",
		       dir_name(), img->name, img->nrec - 1, d->name);
		return -EBADMSG;
	}
	*out = m;
	return 1;
}

int img_close(struct ckpt_img *img)
{
	int ret = 0;

	if (!img)
		return 0;
	if (img->writing) {
		ret = wf_close(&img->w, img->type);
	} else {
		close(img->fd);
		free(img->buf);
		free(img->name);
	}
	free(img);
	return ret;
}

int img_write_one(const char *name, const ProtobufCMessage *msg)
{
	struct ckpt_img *img;
	int ret;

	img = img_create(name, msg->descriptor->name);
	if (!img)
		return -errno;
	ret = img_write_msg(img, msg);
	if (ret) {
		img_close(img);
		return ret;
	}
	return img_close(img);
}

int img_read_one(const char *name, const ProtobufCMessageDescriptor *d,
		 ProtobufCMessage **out)
{
	struct ckpt_img *img;
	int ret;

	img = img_open(name, d->name);
	if (!img) {
		ret = -errno;
		if (ret == -ENOENT)
			pr_err("image", "image %s/%s is missing", dir_name(), name);
		return ret;
	}
	ret = img_read_msg(img, d, out);
	img_close(img);
	if (ret == 0) {
		pr_err("image", "image %s/%s holds no record: the image is corrupted",
		       dir_name(), name);
		return -EBADMSG;
	}
	return ret < 0 ? ret : 0;
}

int img_peek_header(const char *name, struct img_header *h)
{
	ssize_t r;
	int fd, ret;

	ret = check_name(name);
	if (ret)
		return ret;
	fd = openat(store.dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = read_full(fd, h, sizeof(*h));
	close(fd);
	if (r < 0)
		return (int)r;
	if (r != sizeof(*h) || le32toh(h->magic) != IMG_MAGIC)
		return 0;
	h->magic = IMG_MAGIC;
	h->version = le32toh(h->version);
	h->type[IMG_TYPE_LEN - 1] = '\0';
	return 1;
}

/* ---- raw images ----------------------------------------------------------- */

struct img_raw {
	struct wfile w;
};

struct img_raw *img_raw_create(const char *name)
{
	struct img_raw *r;
	int ret;

	if (name && !strcmp(name, INVENTORY_NAME)) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		errno = ENOMEM;
		return NULL;
	}
	ret = wf_open(&r->w, name);
	if (ret) {
		free(r);
		errno = -ret;
		return NULL;
	}
	return r;
}

int img_raw_write(struct img_raw *r, const void *buf, size_t len)
{
	if (!r)
		return -EINVAL;
	return wf_put(&r->w, buf, len);
}

uint64_t img_raw_offset(const struct img_raw *r)
{
	return r->w.flushed + r->w.used;
}

int img_raw_close(struct img_raw *r)
{
	int ret;

	if (!r)
		return 0;
	ret = wf_close(&r->w, RAW_TYPE);
	free(r);
	return ret;
}

int img_raw_open(const char *name)
{
	int fd, ret;

	ret = check_name(name);
	if (ret)
		return ret;
	fd = openat(store.dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_err("image", "cannot open image %s/%s: %s", dir_name(), name, strerror(-ret));
		return ret;
	}
	return fd;
}

/* ---- inventory ------------------------------------------------------------ */

int img_inventory_write(Ckpt__Inventory *inv)
{
	size_t saved_n = inv->n_images, n, rec_len, total;
	Ckpt__ImageRef **saved = inv->images, *refs = NULL, **ptrs = NULL;
	unsigned char *file = NULL;
	struct img_header h;
	uint32_t le32;
	uint64_t le64;
	int fd, ret;

	if (store.dirfd < 0) {
		pr_err("image", "no images directory is open for the inventory");
		return -EBADF;
	}
	pthread_mutex_lock(&store.lock);
	if (store.open_writers > 0) {
		pr_err("image", "%d image(s) of %s still open: every image must be closed before the inventory",
		       store.open_writers, dir_name());
		ret = -EBUSY;
		goto unlock;
	}
	n = store.nwritten;
	refs = calloc(n ? n : 1, sizeof(*refs));
	ptrs = calloc(n ? n : 1, sizeof(*ptrs));
	if (!refs || !ptrs) {
		ret = -ENOMEM;
		goto unlock;
	}
	for (size_t i = 0; i < n; i++) {
		ckpt__image_ref__init(&refs[i]);
		refs[i].name = store.written[i].name;
		refs[i].type = store.written[i].type;
		refs[i].has_size = refs[i].has_xxh3 = 1;
		refs[i].size = store.written[i].size;
		refs[i].xxh3 = store.written[i].xxh3;
		ptrs[i] = &refs[i];
	}
	inv->n_images = n;
	inv->images = ptrs;
	if (!inv->has_format_version) {
		inv->has_format_version = 1;
		inv->format_version = IMG_FORMAT_VERSION;
	}
	if (!inv->has_page_size) {
		inv->has_page_size = 1;
		inv->page_size = (uint32_t)sysconf(_SC_PAGESIZE);
	}

	/* header, one record, then the xxh3 of everything before it */
	rec_len = ckpt__inventory__get_packed_size(inv);
	if (rec_len > IMG_MAX_RECORD) {
		ret = -E2BIG;
		goto unlock;
	}
	total = HDR_SIZE + 4 + rec_len + 8;
	file = malloc(total);
	if (!file) {
		ret = -ENOMEM;
		goto unlock;
	}
	header_fill(&h, ckpt__inventory__descriptor.name);
	memcpy(file, &h, HDR_SIZE);
	le32 = htole32((uint32_t)rec_len);
	memcpy(file + HDR_SIZE, &le32, 4);
	ckpt__inventory__pack(inv, file + HDR_SIZE + 4);
	le64 = htole64(ckpt_xxh3(file, total - 8));
	memcpy(file + total - 8, &le64, 8);
	ret = 0;
unlock:
	pthread_mutex_unlock(&store.lock);
	inv->n_images = saved_n;
	inv->images = saved;
	free(refs);
	free(ptrs);
	if (ret) {
		if (ret != -EBUSY)
			pr_err("image", "cannot build the inventory of %s: %s", dir_name(),
			       strerror(-ret));
		goto out;
	}

	const char *name = INVENTORY_NAME;
	if (ps_client_active()) {
		/* last frame of the stream; the server checks the set */
		ret = ps_client_inventory(file, total);
		if (ret || !store.keep_sent)
			goto out;
		/* the same bytes: the next dump of the chain names their hash */
		name = IMG_SENT_INVENTORY;
	}
	/* a temp name and rename: a dump cut short never leaves a valid one */
	fd = openat(store.dirfd, INVENTORY_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = write_all(fd, file, total);
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && renameat(store.dirfd, INVENTORY_TMP, store.dirfd, name))
		ret = -errno;
	if (ret)
		unlinkat(store.dirfd, INVENTORY_TMP, 0);
fail:
	if (ret)
		pr_err("image", "cannot write %s/%s: %s", dir_name(), name, strerror(-ret));
out:
	free(file);
	return ret;
}

/* Read and check an inventory itself (name in dirfd, shown as dname);
 * *hash: the xxh3 of the whole file, what a child dump names its parent
 * by.  -ENOENT is not logged. */
static int inventory_load_at(int dirfd, const char *dname, const char *name,
			     Ckpt__Inventory **out, uint64_t *hash)
{
	unsigned char *file = NULL;
	struct img_header h;
	Ckpt__Inventory *inv;
	uint64_t le64;
	uint32_t le32;
	struct stat st;
	ssize_t r;
	size_t size;
	int fd, ret;

	if (dirfd < 0)
		return -EBADF;
	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		if (ret != -ENOENT)
			pr_err("image", "cannot open %s/%s: %s", dname, name,
			       strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		goto io_err;
	}
	if (st.st_size < (off_t)(HDR_SIZE + 4 + 8) ||
	    st.st_size > (off_t)(HDR_SIZE + 4 + IMG_MAX_RECORD + 8)) {
		pr_err("image", "%s/%s is truncated or corrupted (%lld bytes): dump again",
		       dname, name, (long long)st.st_size);
		ret = -EBADMSG;
		goto out;
	}
	size = st.st_size;
	file = malloc(size);
	if (!file) {
		ret = -ENOMEM;
		goto io_err;
	}
	r = read_full(fd, file, size);
	if (r < 0) {
		ret = (int)r;
		goto io_err;
	}
	if ((size_t)r != size) {
		pr_err("image", "%s/%s shrank while read", dname, name);
		ret = -EBADMSG;
		goto out;
	}
	memcpy(&h, file, HDR_SIZE);
	if (le32toh(h.magic) != IMG_MAGIC) {
		pr_err("image", "%s/%s is not a ckpt inventory (bad magic): not a ckpt dump directory",
		       dname, name);
		ret = -EBADMSG;
		goto out;
	}
	memcpy(&le64, file + size - 8, 8);
	if (le64toh(le64) != ckpt_xxh3(file, size - 8)) {
		pr_err("image", "%s/%s is corrupted (checksum mismatch): the dump cannot be trusted",
		       dname, name);
		ret = -EBADMSG;
		goto out;
	}
	ret = header_check(INVENTORY_NAME, &h, ckpt__inventory__descriptor.name);
	if (ret)
		goto out;
	memcpy(&le32, file + HDR_SIZE, 4);
	if (le32toh(le32) != size - HDR_SIZE - 4 - 8) {
		pr_err("image", "%s/%s is corrupted (bad record length)", dname, name);
		ret = -EBADMSG;
		goto out;
	}
	inv = ckpt__inventory__unpack(NULL, size - HDR_SIZE - 4 - 8, file + HDR_SIZE + 4);
	if (!inv) {
		pr_err("image", "%s/%s is corrupted (does not decode)", dname, name);
		ret = -EBADMSG;
		goto out;
	}
	if (inv->has_format_version && inv->format_version > IMG_FORMAT_VERSION_CHAIN) {
		pr_err("image", "%s was written in image format %u, this ckpt reads up to %u: use a newer ckpt",
		       dname, inv->format_version, IMG_FORMAT_VERSION_CHAIN);
		ckpt__inventory__free_unpacked(inv, NULL);
		ret = -EPROTONOSUPPORT;
		goto out;
	}
	if (hash)
		*hash = XXH3_64bits(file, size);
	*out = inv;
	ret = 0;
	goto out;
io_err:
	pr_err("image", "cannot read %s/%s: %s", dname, name, strerror(-ret));
out:
	free(file);
	close(fd);
	return ret;
}

static int inventory_load(Ckpt__Inventory **out)
{
	return inventory_load_at(store.dirfd, dir_name(), INVENTORY_NAME, out, NULL);
}

int img_inventory_load_at(int dirfd, const char *dname, const char *name,
			  Ckpt__Inventory **out, uint64_t *hash)
{
	return inventory_load_at(dirfd, dname, name, out, hash);
}

int img_inventory_read(Ckpt__Inventory **out)
{
	return inventory_load(out);
}

/* xxh3 of a whole file, read in big chunks into buf (HASH_CHUNK bytes). */
static int hash_fd(int fd, unsigned char *buf, XXH3_state_t *st, uint64_t *hash,
		   uint64_t *nread)
{
	ssize_t r;

	XXH3_64bits_reset(st);
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	*nread = 0;
	do {
		r = read_full(fd, buf, HASH_CHUNK);
		if (r < 0)
			return (int)r;
		ckpt_xxh3_update(st, buf, r);
		*nread += r;
	} while (r == HASH_CHUNK);
	*hash = XXH3_64bits_digest(st);
	return 0;
}

static int verify_image(const Ckpt__ImageRef *ref, unsigned char *buf, XXH3_state_t *xs)
{
	uint64_t hash = 0, nread = 0;
	struct stat st;
	int fd, ret;

	if (!ref->name || strchr(ref->name, '/') || !*ref->name || !strcmp(ref->name, "..") ||
	    !ref->has_size || !ref->has_xxh3) {
		pr_err("restore", "%s/%s lists a malformed image entry: the dump is corrupted",
		       dir_name(), INVENTORY_NAME);
		return -EBADMSG;
	}
	fd = openat(store.dirfd, ref->name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_err("restore", "image %s/%s %s: the dump is incomplete", dir_name(), ref->name,
		       ret == -ENOENT ? "is missing" : strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		goto io_err;
	}
	if ((uint64_t)st.st_size != ref->size) {
		pr_err("restore", "image %s/%s %s: expected %" PRIu64 " bytes, found %lld",
		       dir_name(), ref->name,
		       (uint64_t)st.st_size < ref->size ? "is truncated" : "has wrong size",
		       ref->size, (long long)st.st_size);
		ret = -EBADMSG;
		goto out;
	}
	ret = hash_fd(fd, buf, xs, &hash, &nread);
	if (ret)
		goto io_err;
	if (nread != ref->size || hash != ref->xxh3) {
		pr_err("restore", "image %s/%s is corrupted: checksum mismatch", dir_name(),
		       ref->name);
		ret = -EBADMSG;
	}
	goto out;
io_err:
	pr_err("restore", "cannot read image %s/%s: %s", dir_name(), ref->name, strerror(-ret));
out:
	close(fd);
	return ret;
}

/* Check the images inv lists (only those a sent dump keeps, when
 * sent_only) against their hashes; inv goes to *out, or is freed. */
static int verify_listed(Ckpt__Inventory *inv, bool sent_only, Ckpt__Inventory **out)
{
	unsigned char *buf = malloc(HASH_CHUNK);
	XXH3_state_t *xs = XXH3_createState();
	int ret = 0;

	if (!buf || !xs) {
		pr_err("restore", "out of memory verifying %s", dir_name());
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < inv->n_images; i++) {
		if (sent_only &&
		    (!inv->images[i]->name || !img_kept_when_sent(inv->images[i]->name)))
			continue;
		ret = verify_image(inv->images[i], buf, xs);
		if (ret)
			goto out;
	}
	*out = inv;
	inv = NULL;
out:
	if (inv)
		ckpt__inventory__free_unpacked(inv, NULL);
	XXH3_freeState(xs);
	free(buf);
	return ret;
}

int img_inventory_verify(Ckpt__Inventory **out)
{
	Ckpt__Inventory *inv = NULL;
	int ret;

	ret = inventory_load(&inv);
	if (ret == -ENOENT && !faccessat(store.dirfd, IMG_SENT_INVENTORY, F_OK, 0))
		pr_err("restore", "%s only keeps the page maps of a dump streamed to a page server: restore from the page server's directory",
		       dir_name());
	else if (ret == -ENOENT)
		pr_err("restore", "%s/%s is missing: not a complete ckpt dump (was the dump interrupted?)",
		       dir_name(), INVENTORY_NAME);
	if (ret)
		return ret;
	return verify_listed(inv, false, out);
}

int img_sent_verify(Ckpt__Inventory **out, uint64_t *hash)
{
	Ckpt__Inventory *inv = NULL;
	int ret;

	ret = inventory_load_at(store.dirfd, dir_name(), IMG_SENT_INVENTORY, &inv, hash);
	if (ret)
		return ret;
	return verify_listed(inv, true, out);
}

int img_load_all(const char *name, const ProtobufCMessageDescriptor *d, ProtobufCMessage ***out,
		 size_t *n, bool missing_ok)
{
	*out = NULL;
	*n = 0;
	struct ckpt_img *img = img_open(name, d->name);
	if (!img) {
		int err = -errno;
		if (err == -ENOENT && missing_ok)
			return 0;
		pr_err("image", "cannot open image %s: %s", name, strerror(-err));
		return err;
	}
	size_t cap = 0, cnt = 0;
	ProtobufCMessage **arr = NULL;
	int ret;
	for (;;) {
		ProtobufCMessage *m;
		ret = img_read_msg(img, d, &m);
		if (ret <= 0)
			break;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			ProtobufCMessage **na = realloc(arr, cap * sizeof(*na));
			if (!na) {
				protobuf_c_message_free_unpacked(m, NULL);
				ret = -ENOMEM;
				break;
			}
			arr = na;
		}
		arr[cnt++] = m;
	}
	img_close(img);
	if (ret < 0) {
		for (size_t i = 0; i < cnt; i++)
			protobuf_c_message_free_unpacked(arr[i], NULL);
		free(arr);
		return ret;
	}
	*out = arr;
	*n = cnt;
	return 0;
}
