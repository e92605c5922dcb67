/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The image store: a directory of image files.
 *
 * Framed image:  struct img_header, then records, each a little-endian u32
 *                length followed by that many bytes of a packed protobuf
 *                message of the type named in the header.
 * Raw image:     bytes only (page contents), described by pagemap records in
 *                a framed image.
 * inventory.img: framed, type ckpt.Inventory, written last; lists every
 *                other image with its size and xxh3-64 checksum, the plugins
 *                used and the kernel/CPU the dump relied on.  Its own last
 *                8 bytes are the xxh3-64 of everything before them.
 */
#ifndef CKPT_IMAGE_H
#define CKPT_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#define IMG_MAGIC 0x54504b43u /* "CKPT" little-endian */
#define IMG_FORMAT_VERSION 1
/* The inventory of a dump whose pagemaps refer to a parent dump (in_parent
 * runs): a ckpt that cannot follow the chain must refuse it, not read
 * those pages from the wrong place. */
#define IMG_FORMAT_VERSION_CHAIN 2
#define IMG_TYPE_LEN 48
#define IMG_MAX_RECORD (64u << 20) /* a record larger than this is corrupt */

struct img_header {
	uint32_t magic;
	uint32_t version;
	char type[IMG_TYPE_LEN]; /* NUL-padded protobuf full name, or "raw" */
};

struct ckpt_img; /* framed, opaque */
struct img_raw;  /* raw, opaque */

/* Open the images directory; for writing it is created when missing. */
int img_store_open(const char *dir, bool write);
void img_store_close(void);
const char *img_store_dir(void);
int img_store_dirfd(void);

/* Framed images (the host table's img_* point at these). NULL + errno. */
struct ckpt_img *img_create(const char *name, const char *type);
struct ckpt_img *img_open(const char *name, const char *type);
int img_write(struct ckpt_img *img, const void *rec, size_t len);
int img_read(struct ckpt_img *img, void **rec, size_t *len); /* 1 rec, 0 EOF */
int img_close(struct ckpt_img *img);
/* img_open with type NULL accepts any record type; this returns it. */
const char *img_type(const struct ckpt_img *img);
/* Read the header of image name: 1 and *h filled when it is a framed
 * image (magic matches), 0 when it is not (raw), -errno when unreadable. */
int img_peek_header(const char *name, struct img_header *h);

/* protobuf-c conveniences over the above */
int img_write_msg(struct ckpt_img *img, const ProtobufCMessage *msg);
/* 1: *out unpacked (free with protobuf_c_message_free_unpacked), 0: EOF */
int img_read_msg(struct ckpt_img *img, const ProtobufCMessageDescriptor *d,
		 ProtobufCMessage **out);
/* Whole-image helpers for images holding exactly one record. */
int img_write_one(const char *name, const ProtobufCMessage *msg);
int img_read_one(const char *name, const ProtobufCMessageDescriptor *d,
		 ProtobufCMessage **out);

/* Every record of a framed image, unpacked, in a malloc'd array (free each
 * record, then the array).  A missing image is an error unless missing_ok,
 * then it has no record. */
int img_load_all(const char *name, const ProtobufCMessageDescriptor *d, ProtobufCMessage ***out,
		 size_t *n, bool missing_ok);

/* Raw images: written sequentially, checksummed while written. */
struct img_raw *img_raw_create(const char *name);
int img_raw_write(struct img_raw *r, const void *buf, size_t len);
uint64_t img_raw_offset(const struct img_raw *r);
int img_raw_close(struct img_raw *r);
/* Open a raw image for reading; returns an fd (O_RDONLY|O_CLOEXEC) or -errno. */
int img_raw_open(const char *name);

/* Names an image was created with in this run (for the inventory). */
struct img_record_entry {
	char *name;
	char *type;
	uint64_t size;
	uint64_t xxh3;
};
size_t img_store_written(const struct img_record_entry **entries);

/*
 * Inventory.  Written last by dump (after every other image is closed) from
 * inv, with the image list filled in by the store.  Verification at restore
 * reads it, checks its own checksum, then every listed image's size and
 * checksum; any mismatch is a one-line error naming the image.  On success
 * *out holds the decoded inventory (free with
 * protobuf_c_message_free_unpacked).  img_inventory_write fills
 * inv->images for the write only and puts the caller's values back; it
 * fails with -EBUSY while an image created by the store is still open.
 * An image or inventory of a newer format version is refused with
 * -EPROTONOSUPPORT.
 */
/* protobuf-c >= 1.4 names the generated struct without a leading '_'. */
struct Ckpt__Inventory;
int img_inventory_write(struct Ckpt__Inventory *inv);
int img_inventory_verify(struct Ckpt__Inventory **out);
/* Read the inventory without verifying the other images (for show).
 * -ENOENT (not logged) when there is none. */
int img_inventory_read(struct Ckpt__Inventory **out);

uint64_t img_hash_buf(const void *buf, size_t len);

/* Load and check inventory name in dirfd (shown as dname) without the
 * store; *hash (may be NULL): xxh3 of the whole file, by which a child
 * dump names its parent.  -ENOENT is not logged. */
int img_inventory_load_at(int dirfd, const char *dname, const char *name,
			  struct Ckpt__Inventory **out, uint64_t *hash);

/*
 * A dump of a pre-dump chain streamed to a page server keeps, in its local
 * -D, what the next dump of the chain reads to decide which pages the
 * parent holds: pstree.img, mm-*.img, pagemap-*.img (the very bytes sent)
 * and, once the server verified the set, the inventory that was sent,
 * under IMG_SENT_INVENTORY (never inventory.img: the directory is no
 * dump; its pages are on the other side).
 */
#define IMG_SENT_INVENTORY "sent-inventory.img"
void img_store_keep_sent(bool on);
bool img_kept_when_sent(const char *name);
/* Verify IMG_SENT_INVENTORY of the open store and the images kept with it. */
int img_sent_verify(struct Ckpt__Inventory **out, uint64_t *hash);

#endif
