/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The page server (see pageserver.h): receives a streamed dump into its
 * images directory, checking every image's size and xxh3 on arrival and
 * the whole set against the inventory, which it writes last; in lazy mode
 * it serves the pages of a dump it holds to `ckpt lazy-pages`.  An
 * incremental dump has it link `parent` first and check, down the chain,
 * that each level is the dump its child was made against, so a missing or
 * replaced parent fails the dump before anything is frozen.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "hash.h"

#include "image.h"
#include "inventory.pb-c.h"
#include "log.h"
#include "pageserver.h"

#define RX_CHUNK (4u << 20)
#define SOCK_BUF (4 << 20)
#define SEND_TIMEOUT_S 30

/* ---- plain socket helpers -------------------------------------------------- */

static int send_all(int fd, struct iovec *iov, int n)
{
	while (n) {
		/* MSG_NOSIGNAL: a vanished peer is an error, not a SIGPIPE */
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n };
		ssize_t r = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		while (n && (size_t)r >= iov->iov_len) {
			r -= iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (char *)iov->iov_base + r;
			iov->iov_len -= r;
		}
	}
	return 0;
}

/* 0, -EPIPE at a clean end of stream before anything was read, -errno */
static int recv_all(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t r = read(fd, (char *)buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EPIPE;
		got += r;
	}
	return 0;
}

static int send_frame(int fd, uint32_t cmd, uint32_t id, const void *a, size_t alen,
		      const void *b, size_t blen)
{
	struct ps_frame f = { htole32(PS_MAGIC), htole32(cmd), htole32(id), 0,
			      htole64(alen + blen) };
	struct iovec iov[3] = { { &f, sizeof(f) }, { (void *)a, alen }, { (void *)b, blen } };
	return send_all(fd, iov, blen ? 3 : alen ? 2 : 1);
}

static int recv_frame(int fd, struct ps_frame *f)
{
	int ret = recv_all(fd, f, sizeof(*f));
	if (ret)
		return ret;
	f->magic = le32toh(f->magic);
	f->cmd = le32toh(f->cmd);
	f->id = le32toh(f->id);
	f->len = le64toh(f->len);
	return f->magic == PS_MAGIC ? 0 : -EBADMSG;
}

static void tune_socket(int fd)
{
	int one = 1, buf = SOCK_BUF;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

static const char *addr_text(const char *address)
{
	return address ? address : "*";
}

/* ---- client: the dump side ------------------------------------------------- */

static struct {
	int fd;
	char peer[128];
	uint32_t next_id;
	int err; /* sticky: the first failure, logged once */
	pthread_mutex_t mu;
} cl = { .fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER };

int ps_connect(const char *address, int port, int *fd_out)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	char svc[16];
	int fd = -1, ret, err = ECONNREFUSED;

	if (!address)
		address = "127.0.0.1";
	snprintf(svc, sizeof(svc), "%d", port);
	ret = getaddrinfo(address, svc, &hints, &res);
	if (ret) {
		pr_err("page-server", "cannot resolve page server address %s: %s", address,
		       gai_strerror(ret));
		return -EINVAL;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		tune_socket(fd);
		if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		pr_err("page-server", "cannot connect to the page server at %s port %d: %s; start `ckpt page-server --port %d` there first",
		       address, port, strerror(err), port);
		return -err;
	}
	/* a peer that stops reading must not hold the frozen tree forever */
	struct timeval tv = { SEND_TIMEOUT_S, 0 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	*fd_out = fd;
	return 0;
}

int ps_client_connect(const char *address, int port)
{
	int ret = ps_connect(address, port, &cl.fd);
	if (ret)
		return ret;
	snprintf(cl.peer, sizeof(cl.peer), "%s port %d", address ? address : "127.0.0.1", port);
	cl.next_id = 1;
	cl.err = 0;
	return 0;
}

bool ps_client_active(void)
{
	return cl.fd >= 0;
}

void ps_client_disconnect(void)
{
	if (cl.fd >= 0)
		close(cl.fd);
	cl.fd = -1;
}

static int client_fail(int err, const char *what)
{
	if (!cl.err) {
		cl.err = err;
		pr_err("page-server", "lost the page server at %s while sending %s: %s; the dump is not complete",
		       cl.peer, what, strerror(-err));
	}
	return cl.err;
}

static int client_send(uint32_t cmd, uint32_t id, const void *a, size_t alen, const void *b,
		       size_t blen, const char *what)
{
	pthread_mutex_lock(&cl.mu);
	int ret = cl.err;
	if (!ret) {
		ret = send_frame(cl.fd, cmd, id, a, alen, b, blen);
		if (ret)
			ret = client_fail(ret, what);
	}
	pthread_mutex_unlock(&cl.mu);
	return ret;
}

int ps_client_open(const char *name, uint32_t *id)
{
	pthread_mutex_lock(&cl.mu);
	*id = cl.next_id++;
	pthread_mutex_unlock(&cl.mu);
	return client_send(PS_OPEN, *id, name, strlen(name), NULL, 0, name);
}

int ps_client_data(uint32_t id, const void *buf, size_t len)
{
	return client_send(PS_DATA, id, buf, len, NULL, 0, "image data");
}

int ps_client_close(uint32_t id, const char *type, uint64_t size, uint64_t xxh3)
{
	struct ps_close c;
	memset(&c, 0, sizeof(c));
	c.size = htole64(size);
	c.xxh3 = htole64(xxh3);
	snprintf(c.type, sizeof(c.type), "%s", type);
	return client_send(PS_CLOSE, id, &c, sizeof(c), NULL, 0, "image data");
}

/* The server's REPLY to what was just sent: 0, or its error (logged). */
static int client_verdict(const char *what, const char *ok_fmt_what)
{
	struct ps_frame f;
	int32_t status;
	int ret = recv_frame(cl.fd, &f);
	if (!ret && (f.cmd != PS_REPLY || f.len < 4 || f.len > 4096))
		ret = -EBADMSG;
	char text[4097] = "";
	if (!ret)
		ret = recv_all(cl.fd, &status, 4);
	if (!ret)
		ret = recv_all(cl.fd, text, f.len - 4);
	if (ret) {
		char w[128];
		snprintf(w, sizeof(w), "%s (no verdict came back)", what);
		return client_fail(ret, w);
	}
	text[f.len - 4] = 0;
	status = (int32_t)le32toh((uint32_t)status);
	if (status) {
		pr_err("page-server", "the page server at %s rejected %s: %s", cl.peer, what, text);
		cl.err = status < 0 ? status : -EIO;
		return cl.err;
	}
	pr_info("page-server", "the page server at %s %s: %s", cl.peer, ok_fmt_what, text);
	return 0;
}

int ps_client_parent(const char *link, uint64_t hash)
{
	struct ps_parent p = { htole64(hash) };
	int ret = client_send(PS_PARENT, 0, &p, sizeof(p), link, strlen(link), "the parent link");
	return ret ? ret : client_verdict("the parent dump", "linked the parent dump");
}

int ps_client_inventory(const void *buf, size_t len)
{
	int ret = client_send(PS_INVENTORY, 0, buf, len, NULL, 0, "the inventory");
	if (ret)
		return ret;
	/* the dump succeeds only when the other side has checked everything */
	return client_verdict("the images", "verified the images");
}

int ps_get_pages(int fd, uint32_t pid, uint64_t off, void *buf, uint64_t len)
{
	struct ps_get g = { htole32(pid), 0, htole64(off), htole64(len) };
	int ret = send_frame(fd, PS_GET, 0, &g, sizeof(g), NULL, 0);
	if (ret)
		return ret;
	struct ps_frame f;
	ret = recv_frame(fd, &f);
	if (ret)
		return ret;
	if (f.cmd == PS_REPLY) {
		int32_t status = -EIO;
		if (f.len >= 4)
			recv_all(fd, &status, 4);
		status = (int32_t)le32toh((uint32_t)status);
		return status < 0 ? status : -EIO;
	}
	if (f.cmd != PS_DATA || f.len != len)
		return -EBADMSG;
	return recv_all(fd, buf, len);
}

/* ---- server ---------------------------------------------------------------- */

struct rx_image {
	char name[256];
	char type[48];
	int fd;            /* open while receiving */
	XXH3_state_t *xs;
	uint64_t size, xxh3;
	bool done;
};

struct rx {
	int dirfd;
	const char *dir;
	struct rx_image *img; /* indexed by id - 1 */
	size_t nimg;
	uint64_t bytes;
	size_t ndone;
	unsigned char *buf;
	const char *prev_dir;  /* page-server --prev-images-dir */
	bool parent_set;       /* `parent` linked and checked for this dump */
	uint64_t parent_hash;
};

static bool name_ok(const char *n)
{
	return *n && !strchr(n, '/') && strcmp(n, ".") && strcmp(n, "..") &&
	       strcmp(n, "inventory.img") && strcmp(n, "inventory.img.tmp");
}

static int reply(int fd, int32_t status, const char *text)
{
	uint32_t s = htole32((uint32_t)status);
	return send_frame(fd, PS_REPLY, 0, &s, 4, text, strlen(text));
}

static struct rx_image *rx_get(struct rx *rx, uint32_t id, bool open)
{
	if (id == 0 || id > 1u << 20)
		return NULL;
	if (id > rx->nimg) {
		if (!open)
			return NULL;
		size_t n = id + 64;
		struct rx_image *a = realloc(rx->img, n * sizeof(*a));
		if (!a)
			return NULL;
		memset(a + rx->nimg, 0, (n - rx->nimg) * sizeof(*a));
		for (size_t i = rx->nimg; i < n; i++)
			a[i].fd = -1;
		rx->img = a;
		rx->nimg = n;
	}
	struct rx_image *im = &rx->img[id - 1];
	if (open == (im->name[0] != 0))
		return NULL; /* opened twice, or never */
	return im;
}

static int rx_open(struct rx *rx, const struct ps_frame *f, int sock)
{
	char name[256];
	if (f->len == 0 || f->len >= sizeof(name))
		return -EBADMSG;
	int ret = recv_all(sock, name, f->len);
	if (ret)
		return ret;
	name[f->len] = 0;
	struct rx_image *im = rx_get(rx, f->id, true);
	if (!im || !name_ok(name)) {
		pr_err("page-server", "the dump sent a bad image name \"%s\"", name);
		return -EBADMSG;
	}
	im->fd = openat(rx->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (im->fd < 0) {
		pr_err("page-server", "cannot create %s/%s: %s", rx->dir, name, strerror(errno));
		return -errno;
	}
	im->xs = XXH3_createState();
	if (!im->xs)
		return -ENOMEM;
	XXH3_64bits_reset(im->xs);
	snprintf(im->name, sizeof(im->name), "%s", name);
	return 0;
}

static int rx_data(struct rx *rx, const struct ps_frame *f, int sock)
{
	struct rx_image *im = rx_get(rx, f->id, false);
	if (!im || im->done)
		return -EBADMSG;
	uint64_t left = f->len;
	while (left) {
		size_t n = left > RX_CHUNK ? RX_CHUNK : left;
		int ret = recv_all(sock, rx->buf, n);
		if (ret)
			return ret;
		ckpt_xxh3_update(im->xs, rx->buf, n);
		for (size_t done = 0; done < n;) {
			ssize_t w = write(im->fd, rx->buf + done, n - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				pr_err("page-server", "cannot write %s/%s: %s", rx->dir, im->name,
				       strerror(w < 0 ? errno : EIO));
				return w < 0 ? -errno : -EIO;
			}
			done += w;
		}
		im->size += n;
		rx->bytes += n;
		left -= n;
	}
	return 0;
}

static int rx_close(struct rx *rx, const struct ps_frame *f, int sock)
{
	struct ps_close c;
	if (f->len != sizeof(c))
		return -EBADMSG;
	int ret = recv_all(sock, &c, sizeof(c));
	if (ret)
		return ret;
	struct rx_image *im = rx_get(rx, f->id, false);
	if (!im || im->done)
		return -EBADMSG;
	im->xxh3 = XXH3_64bits_digest(im->xs);
	XXH3_freeState(im->xs);
	im->xs = NULL;
	ret = close(im->fd) ? -errno : 0;
	im->fd = -1;
	im->done = true;
	memcpy(im->type, c.type, sizeof(im->type));
	im->type[sizeof(im->type) - 1] = 0;
	if (ret) {
		pr_err("page-server", "cannot write %s/%s: %s", rx->dir, im->name, strerror(-ret));
		return ret;
	}
	if (le64toh(c.size) != im->size || le64toh(c.xxh3) != im->xxh3) {
		pr_err("page-server", "image %s arrived damaged (%llu bytes, checksum %s): the dump is not usable",
		       im->name, (unsigned long long)im->size,
		       le64toh(c.xxh3) != im->xxh3 ? "mismatch" : "ok");
		return -EBADMSG;
	}
	rx->ndone++;
	return 0;
}

#define CHAIN_MAX 64

/* dirfd/parent must lead to the dump whose inventory hashes to want, and
 * so on down the chain: each level's inventory intact and the very one its
 * child was made against (their images were checked when they arrived; a
 * restore checks them all again). */
static int check_chain(int dirfd, const char *dir, uint64_t want, char *why, size_t whylen)
{
	char path[PATH_MAX];
	int fd = dup(dirfd), ret = 0;
	snprintf(path, sizeof(path), "%s", dir);
	for (int depth = 0; fd >= 0; depth++) {
		Ckpt__Inventory *inv = NULL;
		uint64_t hash = 0;
		char next[PATH_MAX];
		snprintf(next, sizeof(next), "%.*s/parent", PATH_MAX - 8, path);
		int pfd = openat(fd, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(fd);
		fd = -1;
		if (pfd < 0) {
			ret = -errno;
			snprintf(why, whylen, "%.300s: %s on this side; start the page server with --prev-images-dir naming the previous dump of the chain here",
				 next, strerror(errno));
			break;
		}
		snprintf(path, sizeof(path), "%s", next);
		ret = depth >= CHAIN_MAX ? -ELOOP
					 : img_inventory_load_at(pfd, path, "inventory.img", &inv, &hash);
		if (ret) {
			snprintf(why, whylen, "%.300s holds no intact dump (%s): the chain on this side is broken",
				 path, ret == -ENOENT ? "no inventory.img" :
				 ret == -ELOOP ? "the chain loops" : strerror(-ret));
			close(pfd);
			break;
		}
		if (hash != want) {
			snprintf(why, whylen, "%.300s is not the dump the source made this one against (its inventory differs): the chain on this side was replaced or modified",
				 path);
			ret = -EBADMSG;
		} else if (inv->has_parent_inventory_xxh3) {
			want = inv->parent_inventory_xxh3;
			fd = pfd;
			pfd = -1;
		}
		ckpt__inventory__free_unpacked(inv, NULL);
		if (pfd >= 0)
			close(pfd);
		if (ret)
			break;
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

/* An incremental dump: link `parent` and check the chain before any image
 * comes (the dump has frozen nothing yet). */
static int rx_parent(struct rx *rx, const struct ps_frame *f, int sock, char *why, size_t whylen)
{
	struct ps_parent p;
	char link[PATH_MAX];
	if (f->len <= sizeof(p) || f->len - sizeof(p) >= sizeof(link) || rx->parent_set)
		return -EBADMSG;
	int ret = recv_all(sock, &p, sizeof(p));
	if (!ret)
		ret = recv_all(sock, link, f->len - sizeof(p));
	if (ret)
		return ret;
	link[f->len - sizeof(p)] = 0;
	const char *target = rx->prev_dir ? rx->prev_dir : link;
	unlinkat(rx->dirfd, "parent", 0);
	if (symlinkat(target, rx->dirfd, "parent")) {
		ret = -errno;
		snprintf(why, whylen, "cannot create the parent link %.300s/parent: %s", rx->dir,
			 strerror(errno));
		return ret;
	}
	ret = check_chain(rx->dirfd, rx->dir, le64toh(p.xxh3), why, whylen);
	if (ret) {
		unlinkat(rx->dirfd, "parent", 0);
		return ret;
	}
	rx->parent_set = true;
	rx->parent_hash = le64toh(p.xxh3);
	snprintf(why, whylen, "%.200s/parent -> %.200s", rx->dir, target);
	return 0;
}

/* The inventory: its own checksum, then every image it lists must have
 * arrived with that size and xxh3.  Written last, by rename. */
static int rx_inventory(struct rx *rx, const struct ps_frame *f, int sock, char *why,
			size_t whylen)
{
	const size_t hdr = sizeof(struct img_header);
	if (f->len < hdr + 4 + 8 || f->len > hdr + 4 + IMG_MAX_RECORD + 8)
		return -EBADMSG;
	unsigned char *file = malloc(f->len);
	if (!file)
		return -ENOMEM;
	Ckpt__Inventory *inv = NULL;
	int ret = recv_all(sock, file, f->len);
	if (ret)
		goto out;
	uint64_t sum;
	uint32_t reclen;
	memcpy(&sum, file + f->len - 8, 8);
	memcpy(&reclen, file + hdr, 4);
	if (le64toh(sum) != ckpt_xxh3(file, f->len - 8) ||
	    le32toh(reclen) != f->len - hdr - 4 - 8) {
		snprintf(why, whylen, "inventory.img arrived damaged");
		ret = -EBADMSG;
		goto out;
	}
	inv = ckpt__inventory__unpack(NULL, le32toh(reclen), file + hdr + 4);
	if (!inv) {
		snprintf(why, whylen, "inventory.img does not decode");
		ret = -EBADMSG;
		goto out;
	}
	if (inv->has_parent_inventory_xxh3 &&
	    (!rx->parent_set || rx->parent_hash != inv->parent_inventory_xxh3)) {
		snprintf(why, whylen, "the dump refers to a parent dump that was not linked and checked here");
		ret = -EBADMSG;
		goto out;
	}
	if (!inv->has_parent_inventory_xxh3 && rx->parent_set) {
		/* it saved all memory after all */
		unlinkat(rx->dirfd, "parent", 0);
		rx->parent_set = false;
	}
	for (size_t i = 0; i < inv->n_images; i++) {
		const Ckpt__ImageRef *r = inv->images[i];
		const struct rx_image *im = NULL;
		/* the last one sent under a name is the one on disk */
		for (size_t k = rx->nimg; k-- > 0 && !im;)
			if (rx->img[k].done && r->name && !strcmp(rx->img[k].name, r->name))
				im = &rx->img[k];
		if (!im) {
			snprintf(why, whylen, "incomplete image set: %s never arrived",
				 r->name ? r->name : "?");
			ret = -EBADMSG;
			goto out;
		}
		if (!r->has_size || !r->has_xxh3 || r->size != im->size || r->xxh3 != im->xxh3) {
			snprintf(why, whylen, "image %s does not match the inventory (checksum mismatch)",
				 im->name);
			ret = -EBADMSG;
			goto out;
		}
	}
	int fd = openat(rx->dirfd, "inventory.img.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			0600);
	if (fd < 0) {
		ret = -errno;
	} else {
		ret = write(fd, file, f->len) == (ssize_t)f->len ? 0 : -EIO;
		if (close(fd) && !ret)
			ret = -errno;
		if (!ret && renameat(rx->dirfd, "inventory.img.tmp", rx->dirfd, "inventory.img"))
			ret = -errno;
	}
	if (ret)
		snprintf(why, whylen, "cannot write %s/inventory.img: %s", rx->dir, strerror(-ret));
	else
		snprintf(why, whylen, "%zu images, %llu bytes in %s", inv->n_images,
			 (unsigned long long)rx->bytes, rx->dir);
out:
	if (inv)
		ckpt__inventory__free_unpacked(inv, NULL);
	free(file);
	return ret;
}

static void rx_free(struct rx *rx)
{
	for (size_t i = 0; i < rx->nimg; i++) {
		if (rx->img[i].fd >= 0)
			close(rx->img[i].fd);
		if (rx->img[i].xs)
			XXH3_freeState(rx->img[i].xs);
	}
	free(rx->img);
	free(rx->buf);
}

static int serve_dump(int sock, const char *peer, const struct ps_opts *o)
{
	struct rx rx = { .dirfd = img_store_dirfd(), .dir = o->dir, .prev_dir = o->prev_dir };
	char why[512] = "";
	int ret = 0;

	rx.buf = malloc(RX_CHUNK);
	if (!rx.buf)
		return -ENOMEM;
	/* until the new inventory lands, the directory is no dump; a parent
	 * is linked only when this dump asks for one */
	unlinkat(rx.dirfd, "inventory.img", 0);
	unlinkat(rx.dirfd, "parent", 0);
	for (;;) {
		struct ps_frame f;
		ret = recv_frame(sock, &f);
		if (ret)
			break;
		switch (f.cmd) {
		case PS_OPEN:
			ret = rx_open(&rx, &f, sock);
			break;
		case PS_DATA:
			ret = rx_data(&rx, &f, sock);
			break;
		case PS_CLOSE:
			ret = rx_close(&rx, &f, sock);
			break;
		case PS_PARENT:
			ret = rx_parent(&rx, &f, sock, why, sizeof(why));
			if (ret && !why[0])
				break;
			if (ret) {
				pr_err("page-server", "the incremental dump from %s cannot go on: %s", peer, why);
				reply(sock, ret, why);
				goto out;
			}
			pr_info("page-server", "parent of the dump from %s: %s", peer, why);
			ret = reply(sock, 0, why);
			why[0] = 0;
			break;
		case PS_INVENTORY:
			ret = rx_inventory(&rx, &f, sock, why, sizeof(why));
			/* logged before the dump hears it: the log is final then */
			if (ret)
				pr_err("page-server", "the dump from %s is not usable: %s", peer, why);
			else
				pr_info("page-server", "received a complete dump from %s: %s", peer, why);
			reply(sock, ret, why);
			goto out;
		default:
			ret = -EBADMSG;
			break;
		}
		if (ret)
			break;
	}
	if (ret == -EBADMSG)
		pr_err("page-server", "the stream from %s is malformed; the image set in %s is incomplete (no inventory.img)",
		       peer, o->dir);
	else
		pr_err("page-server", "the connection from %s ended before the dump finished (%zu image(s), %llu bytes received: %s); the image set in %s is incomplete (no inventory.img)",
		       peer, rx.ndone, (unsigned long long)rx.bytes,
		       ret == -EPIPE ? "connection closed" : strerror(-ret), o->dir);
	ret = ret ? ret : -EPIPE;
out:
	rx_free(&rx);
	return ret;
}

/* Lazy mode: answer GET requests from a dump this server holds. */
static int serve_lazy(int sock, const char *peer)
{
	unsigned char *buf = malloc(RX_CHUNK);
	int pages_fd = -1;
	uint32_t cur = 0;
	uint64_t served = 0;
	int ret;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		struct ps_frame f;
		struct ps_get g;
		ret = recv_frame(sock, &f);
		if (ret == -EPIPE) {
			ret = 0; /* the lazy-pages daemon is done */
			break;
		}
		if (!ret && (f.cmd != PS_GET || f.len != sizeof(g)))
			ret = -EBADMSG;
		if (!ret)
			ret = recv_all(sock, &g, sizeof(g));
		if (ret)
			break;
		uint32_t pid = le32toh(g.pid);
		uint64_t off = le64toh(g.off), len = le64toh(g.len);
		if (pages_fd < 0 || pid != cur) {
			char name[64];
			if (pages_fd >= 0)
				close(pages_fd);
			snprintf(name, sizeof(name), "pages-%u.img", pid);
			pages_fd = img_raw_open(name);
			cur = pid;
			if (pages_fd < 0) {
				reply(sock, pages_fd, "no such pages image");
				continue;
			}
		}
		struct ps_frame d = { htole32(PS_MAGIC), htole32(PS_DATA), 0, 0, htole64(len) };
		struct iovec iov = { &d, sizeof(d) };
		ret = send_all(sock, &iov, 1);
		while (!ret && len) {
			size_t n = len > RX_CHUNK ? RX_CHUNK : len;
			ssize_t r = pread(pages_fd, buf, n, off);
			if (r != (ssize_t)n) {
				/* the frame promised len bytes: the stream cannot go on */
				ret = r < 0 ? -errno : -EBADMSG;
				break;
			}
			iov = (struct iovec){ buf, n };
			ret = send_all(sock, &iov, 1);
			off += n;
			len -= n;
			served += n;
		}
		if (ret)
			break;
	}
	if (ret)
		pr_err("page-server", "serving pages to %s failed: %s", peer, strerror(-ret));
	else
		pr_info("page-server", "served %llu bytes of pages to %s", (unsigned long long)served, peer);
	if (pages_fd >= 0)
		close(pages_fd);
	free(buf);
	return ret;
}

static int listen_on(const char *address, int port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res = NULL;
	char svc[16];
	int fd = -1, err = EADDRNOTAVAIL;

	snprintf(svc, sizeof(svc), "%d", port);
	int ret = getaddrinfo(address, svc, &hints, &res);
	if (ret) {
		pr_err("page-server", "cannot resolve %s: %s", addr_text(address), gai_strerror(ret));
		return -EINVAL;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int one = 1;
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		tune_socket(fd);
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 4))
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		pr_err("page-server", "cannot listen on %s port %d: %s", addr_text(address), port,
		       strerror(err));
		return -err;
	}
	return fd;
}

int cmd_page_server(const struct ps_opts *o)
{
	int ret, lfd, sock;

	if (o->port <= 0 || o->port > 65535) {
		pr_err("page-server", "page-server needs --port N (1-65535)");
		return -EINVAL;
	}
	ret = img_store_open(o->dir, !o->lazy);
	if (ret)
		return ret;
	if (o->lazy) {
		/* what it serves must be a complete, intact dump */
		Ckpt__Inventory *inv = NULL;
		ret = img_inventory_verify(&inv);
		if (ret)
			goto out_store;
		ckpt__inventory__free_unpacked(inv, NULL);
	}
	lfd = listen_on(o->address, o->port);
	if (lfd < 0) {
		ret = lfd;
		goto out_store;
	}
	if (o->daemon) {
		pid_t p = fork();
		if (p < 0) {
			ret = -errno;
			goto out_listen;
		}
		if (p > 0)
			_exit(0); /* listening already: the caller may connect now */
		setsid();
	}
	if (o->status_fd >= 0) {
		char c = 0;
		if (write(o->status_fd, &c, 1) != 1)
			pr_warn("page-server", "cannot write to --status-fd %d: %s", o->status_fd,
				strerror(errno));
		close(o->status_fd);
	}
	signal(SIGPIPE, SIG_IGN);
	pr_info("page-server", "listening on %s port %d for %s", addr_text(o->address), o->port,
		o->lazy ? "lazy page requests" : "a dump");

	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	do
		sock = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
	while (sock < 0 && errno == EINTR);
	if (sock < 0) {
		ret = -errno;
		pr_err("page-server", "accept: %s", strerror(errno));
		goto out_listen;
	}
	close(lfd);
	lfd = -1;
	char host[NI_MAXHOST] = "?", serv[NI_MAXSERV] = "?", peer[NI_MAXHOST + NI_MAXSERV + 8];
	getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(peer, sizeof(peer), "%s port %s", host, serv);
	ret = o->lazy ? serve_lazy(sock, peer) : serve_dump(sock, peer, o);
	close(sock);
out_listen:
	if (lfd >= 0)
		close(lfd);
out_store:
	img_store_close();
	return ret;
}
