/* SPDX-License-Identifier: GPL-2.0-only */
/* The image store: framing, checksums, inventory verification, show. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "inventory.pb-c.h"
#include "pstree.pb-c.h"
#include "show.h"
#include "tap.h"

static char dir[] = "/tmp/ckpt-test-image-XXXXXX";

/* Not reentrant: one call per expression. */
static char *path_of(const char *name)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

static int write_file(const char *name, const void *buf, size_t len)
{
	int fd = open(path_of(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, buf, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -1;
}

static size_t read_file(const char *name, void *buf, size_t len)
{
	int fd = open(path_of(name), O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return 0;
	n = read(fd, buf, len);
	close(fd);
	return n < 0 ? 0 : (size_t)n;
}

/* Flip one bit of name at off (from the end when off < 0). */
static int flip_byte(const char *name, off_t off)
{
	int fd = open(path_of(name), O_RDWR | O_CLOEXEC);
	unsigned char c;
	int ret = -1;

	if (fd < 0)
		return -1;
	if (off < 0)
		off += lseek(fd, 0, SEEK_END);
	if (pread(fd, &c, 1, off) == 1) {
		c ^= 0x10;
		ret = pwrite(fd, &c, 1, off) == 1 ? 0 : -1;
	}
	close(fd);
	return ret;
}

static off_t file_size(const char *name)
{
	struct stat st;

	return stat(path_of(name), &st) ? -1 : st.st_size;
}

static void fill(unsigned char *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 131 + seed + (i >> 8));
}

static void test_framing(void)
{
	static const size_t sizes[] = { 0, 1, 100, 70000, 3 << 20, 5 };
	unsigned char *want = malloc(3 << 20);
	struct ckpt_img *img;
	bool ok = true;
	size_t len;
	void *rec;
	int ret;

	img = img_create("frames.img", "test.Blob");
	CHECK(img != NULL, "create a framed image");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		fill(want, sizes[i], i);
		if (img_write(img, want, sizes[i]))
			ok = false;
	}
	CHECK(ok, "write records of 0 B to 3 MiB");
	CHECK(img_close(img) == 0, "close the written image");

	img = img_open("frames.img", "test.Blob");
	CHECK(img != NULL, "reopen it");
	ok = img != NULL;
	for (size_t i = 0; ok && i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		fill(want, sizes[i], i);
		ret = img_read(img, &rec, &len);
		ok = ret == 1 && len == sizes[i] && !memcmp(rec, want, len);
		if (ret == 1)
			free(rec);
	}
	CHECK(ok, "records read back as written");
	CHECK(img && img_read(img, &rec, &len) == 0, "end of image after the last record");
	img_close(img);

	img = img_open("frames.img", "test.Other");
	CHECK(!img && errno == EBADMSG, "opening with the wrong type is refused");
	img = img_open("nonexistent.img", "test.Blob");
	CHECK(!img && errno == ENOENT, "a missing image is ENOENT");
	img = img_open("frames.img", NULL);
	CHECK(img && !strcmp(img_type(img), "test.Blob"), "type NULL opens any image and tells its type");
	img_close(img);
	free(want);
}

static void test_messages(void)
{
	Ckpt__PstreeEntry e = CKPT__PSTREE_ENTRY__INIT, *got = NULL;
	uint32_t threads[] = { 10, 11, 12 };
	ProtobufCMessage *m = NULL;
	struct ckpt_img *img;
	int ret;

	e.has_pid = e.has_ppid = 1;
	e.pid = 10;
	e.ppid = 1;
	e.n_threads = 3;
	e.threads = threads;
	img = img_create("pstree.img", ckpt__pstree_entry__descriptor.name);
	ret = img_write_msg(img, &e.base);
	e.pid = 20;
	ret |= img_write_msg(img, &e.base);
	CHECK(img && !ret && !img_close(img), "write two messages");

	img = img_open("pstree.img", ckpt__pstree_entry__descriptor.name);
	ret = img_read_msg(img, &ckpt__pstree_entry__descriptor, &m);
	got = (Ckpt__PstreeEntry *)m;
	CHECK(ret == 1 && got->pid == 10 && got->n_threads == 3 && got->threads[2] == 12,
	      "first message decodes");
	if (ret == 1)
		protobuf_c_message_free_unpacked(m, NULL);
	ret = img_read_msg(img, &ckpt__pstree_entry__descriptor, &m);
	CHECK(ret == 1 && ((Ckpt__PstreeEntry *)m)->pid == 20, "second message decodes");
	if (ret == 1)
		protobuf_c_message_free_unpacked(m, NULL);
	CHECK(img_read_msg(img, &ckpt__pstree_entry__descriptor, &m) == 0, "then EOF");
	img_close(img);

	e.pid = 30;
	CHECK(img_write_one("one.img", &e.base) == 0, "img_write_one");
	m = NULL;
	ret = img_read_one("one.img", &ckpt__pstree_entry__descriptor, &m);
	CHECK(ret == 0 && m && ((Ckpt__PstreeEntry *)m)->pid == 30, "img_read_one");
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

static void test_bad_images(void)
{
	const struct img_record_entry *e;
	unsigned char buf[256], big[16];
	struct ckpt_img *img;
	struct img_header h;
	uint32_t len;
	size_t n, rlen;
	void *rec;

	img = img_create("limit.img", "test.Blob");
	CHECK(img_write(img, big, (size_t)IMG_MAX_RECORD + 1) == -E2BIG,
	      "writing a record over IMG_MAX_RECORD is refused");
	img_close(img);

	/* a header followed by a length over the limit */
	memset(&h, 0, sizeof(h));
	h.magic = IMG_MAGIC;
	h.version = IMG_FORMAT_VERSION;
	strcpy(h.type, "test.Blob");
	len = IMG_MAX_RECORD + 1;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &len, 4);
	write_file("huge.img", buf, sizeof(h) + 4);
	img = img_open("huge.img", "test.Blob");
	CHECK(img && img_read(img, &rec, &rlen) == -EBADMSG, "reading a record over the limit fails");
	img_close(img);

	/* truncated in the middle of a record */
	img = img_create("trunc.img", "test.Blob");
	img_write(img, buf, 100);
	img_close(img);
	n = read_file("trunc.img", buf, sizeof(buf));
	write_file("trunc.img", buf, n - 10);
	img = img_open("trunc.img", "test.Blob");
	CHECK(img && img_read(img, &rec, &rlen) == -EBADMSG, "a truncated record is -EBADMSG");
	img_close(img);
	/* truncated inside the length */
	write_file("trunc.img", buf, sizeof(h) + 2);
	img = img_open("trunc.img", "test.Blob");
	CHECK(img && img_read(img, &rec, &rlen) == -EBADMSG, "a truncated length is -EBADMSG");
	img_close(img);
	/* truncated inside the header */
	write_file("trunc.img", buf, 20);
	img = img_open("trunc.img", "test.Blob");
	CHECK(!img && errno == EBADMSG, "a truncated header is refused");

	memcpy(buf, "XXXX", 4);
	write_file("magic.img", buf, n);
	img = img_open("magic.img", "test.Blob");
	CHECK(!img && errno == EBADMSG, "bad magic is refused");

	memcpy(buf, &h, sizeof(h));
	((struct img_header *)buf)->version = IMG_FORMAT_VERSION + 1;
	write_file("newer.img", buf, n);
	img = img_open("newer.img", "test.Blob");
	CHECK(!img && errno == EPROTONOSUPPORT, "a newer format version is refused");

	img = img_create("../escape.img", "test.Blob");
	CHECK(!img && errno == EINVAL, "a name leaving the directory is refused");

	/* leave the store without these deliberately broken files; reopening
	 * it forgets them for the inventory */
	unlink(path_of("limit.img"));
	unlink(path_of("huge.img"));
	unlink(path_of("trunc.img"));
	unlink(path_of("magic.img"));
	unlink(path_of("newer.img"));
	img_store_close();
	CHECK(img_store_open(dir, true) == 0 && img_store_written(&e) == 0,
	      "reopened store lists nothing");
}

static void test_raw(void)
{
	const struct img_record_entry *e;
	size_t total = 0, n, found = 0;
	unsigned char *buf = malloc(8 << 20), *back = malloc(9 << 20);
	struct img_raw *r;
	int ok = 1;

	r = img_raw_create("pages.img");
	CHECK(r != NULL, "create a raw image");
	/* small writes go through the buffer, big ones straight to the file */
	for (size_t sz = 1; sz <= (4 << 20); sz *= 4) {
		fill(buf, sz, sz);
		if (img_raw_write(r, buf, sz))
			ok = 0;
		total += sz;
	}
	CHECK(ok && img_raw_offset(r) == total, "raw writes, offset %zu", total);
	CHECK(img_raw_close(r) == 0, "close the raw image");

	n = img_store_written(&e);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(e[i].name, "pages.img"))
			continue;
		found = 1;
		CHECK(!strcmp(e[i].type, "raw") && e[i].size == total, "listed as raw, %zu bytes",
		      total);
		CHECK(read_file("pages.img", back, 9 << 20) == total &&
		      e[i].xxh3 == img_hash_buf(back, total),
		      "streamed checksum equals the checksum of the file");
	}
	CHECK(found, "raw image is in the written list");

	n = img_raw_open("pages.img");
	CHECK((int)n >= 0 && (fcntl((int)n, F_GETFD) & FD_CLOEXEC), "img_raw_open gives a cloexec fd");
	if ((int)n >= 0)
		close((int)n);
	free(buf);
	free(back);
}

static void test_inventory(void)
{
	Ckpt__Inventory inv = CKPT__INVENTORY__INIT, *out = NULL;
	const struct img_record_entry *e;
	struct ckpt_img *busy;
	size_t n = img_store_written(&e);
	off_t sz;

	CHECK(img_inventory_verify(&out) == -ENOENT, "missing inventory is -ENOENT");

	busy = img_create("busy.img", "test.Blob");
	CHECK(img_inventory_write(&inv) == -EBUSY, "inventory refused while an image is open");
	img_close(busy);
	n = img_store_written(&e);

	inv.tool_version = "test";
	inv.has_root_pid = 1;
	inv.root_pid = 42;
	CHECK(img_inventory_write(&inv) == 0, "write the inventory");
	CHECK(inv.n_images == 0 && inv.images == NULL, "caller's image list left as it was");
	CHECK(img_inventory_verify(&out) == 0, "verify a good dump");
	CHECK(out && out->n_images == n && out->root_pid == 42 &&
	      out->format_version == IMG_FORMAT_VERSION && out->page_size > 0,
	      "inventory lists %zu images and the dump's facts", n);
	if (out)
		ckpt__inventory__free_unpacked(out, NULL);
	out = NULL;
	CHECK(img_inventory_read(&out) == 0 && out, "img_inventory_read");
	if (out)
		ckpt__inventory__free_unpacked(out, NULL);
	out = NULL;

	/* one flipped bit in a page image */
	flip_byte("pages.img", 5000);
	CHECK(img_inventory_verify(&out) == -EBADMSG, "flipped byte in a raw image: -EBADMSG");
	flip_byte("pages.img", 5000);
	CHECK(img_inventory_verify(&out) == 0, "restored byte verifies again");
	if (out)
		ckpt__inventory__free_unpacked(out, NULL);
	out = NULL;

	/* a truncated framed image */
	sz = file_size("frames.img");
	CHECK(truncate(path_of("frames.img"), sz - 1) == 0 &&
	      img_inventory_verify(&out) == -EBADMSG, "truncated image: -EBADMSG");

	/* a listed image that is gone */
	unlink(path_of("frames.img"));
	CHECK(img_inventory_verify(&out) == -ENOENT, "missing image: -ENOENT");

	/* the inventory itself damaged */
	CHECK(img_inventory_write(&inv) == 0, "rewrite the inventory");
	flip_byte("inventory.img", 70);
	CHECK(img_inventory_verify(&out) == -EBADMSG, "flipped byte in the inventory: -EBADMSG");
	CHECK(img_inventory_read(&out) == -EBADMSG, "and img_inventory_read refuses it too");
	flip_byte("inventory.img", 70);
	flip_byte("inventory.img", -3);
	CHECK(img_inventory_verify(&out) == -EBADMSG, "flipped byte in its checksum: -EBADMSG");

	/* a dump from a newer ckpt */
	inv.has_format_version = 1;
	inv.format_version = IMG_FORMAT_VERSION_CHAIN + 1;
	img_inventory_write(&inv);
	CHECK(img_inventory_verify(&out) == -EPROTONOSUPPORT, "newer inventory format refused");

	inv.format_version = IMG_FORMAT_VERSION;
	CHECK(img_inventory_write(&inv) == 0, "inventory for show");
}

/* Run cmd_show with stdout captured in name; returns its result. */
static int capture_show(bool json, const char *name, char *buf, size_t len)
{
	int saved = dup(STDOUT_FILENO), fd, ret;
	size_t n;

	fflush(stdout);
	fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	ret = cmd_show(dir, json);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	fd = open(name, O_RDONLY | O_CLOEXEC);
	n = read(fd, buf, len - 1);
	close(fd);
	buf[n > 0 && n < len ? n : 0] = '\0';
	return ret;
}

static void test_show(void)
{
	static char buf[1 << 16];
	char out[300];
	int ret;

	snprintf(out, sizeof(out), "%s.show", dir);
	ret = capture_show(true, out, buf, sizeof(buf));
	CHECK(ret == 0, "show --json succeeds (%d)", ret);
	CHECK(strstr(buf, "\"name\":\"pstree.img\",\"type\":\"ckpt.PstreeEntry\"") &&
	      strstr(buf, "{\"pid\":10,\"ppid\":1,\"threads\":[10,11,12]}") &&
	      strstr(buf, "\"name\":\"pages.img\",\"type\":\"raw\"") &&
	      strstr(buf, "\"root_pid\":42"),
	      "JSON holds decoded records, raw images and the inventory");
	CHECK(strstr(buf, "\"note\":\"unknown type, load the plugin that wrote it\""),
	      "unknown record types are flagged");
	ret = capture_show(false, out, buf, sizeof(buf));
	CHECK(ret == 0 && strstr(buf, "== pstree.img (ckpt.PstreeEntry,") &&
	      strstr(buf, "  threads: [10, 11, 12]\n") && strstr(buf, "  root_pid: 42\n"),
	      "text form");
	unlink(out);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	CHECK(img_store_open(dir, true) == 0, "open the store in %s", dir);
	test_bad_images();
	test_framing();
	test_messages();
	test_raw();
	test_inventory();
	img_store_close();
	test_show();
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return tap_done();
}
