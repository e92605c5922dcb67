/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Compression of page images (off by default; `ckpt dump --compress`).
 *
 * A compressed dump writes pages-PID.img as independent blocks of at most
 * PAGECODEC_BLOCK raw bytes, each lz4 or zstd (or stored as is when it did
 * not shrink), and lists them in pageblocks-PID.img.  The pagemap keeps the
 * offsets of the uncompressed stream.  Blocks are compressed by a small
 * pool of threads at dump, decompressed by the same at restore into a
 * buffer of ckpt and written into the task with process_vm_writev.
 * A restore finds out by itself: the presence of pageblocks-PID.img.
 */
#ifndef CKPT_PAGECODEC_H
#define CKPT_PAGECODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "pagecodec.pb-c.h"
#include "pagemap.pb-c.h"

#define PAGECODEC_BLOCK (512u << 10)

struct pagecodec_opts {
	int codec; /* CKPT__PAGE_CODEC__*; NONE: off */
	int level; /* zstd: its level; lz4: acceleration (1 default) */
};

/* Parse "zstd", "zstd:3", "lz4", "lz4:fast", "lz4:8", "none"/"off";
 * "" or NULL is the default codec.  -EINVAL, nothing logged, on error. */
int pagecodec_parse(const char *spec, struct pagecodec_opts *o);
/* The codec of this dump (none unless set). */
void pagecodec_set(const struct pagecodec_opts *o);
/* "zstd:1", "lz4:1"...: of this dump, NULL when off (for the inventory). */
const char *pagecodec_dump_name(void);

struct img_raw;
struct pagecodec_writer;
/* NULL with *err 0 when this dump does not compress. */
struct pagecodec_writer *pagecodec_writer_open(pid_t vpid, struct img_raw *raw, int *err);
/* Append len bytes of pages (the next of the uncompressed stream). */
int pagecodec_writer_put(struct pagecodec_writer *w, const void *buf, size_t len);
/* Close the block index; the raw image stays the caller's. */
int pagecodec_writer_close(struct pagecodec_writer *w);

/* Is the page image of vpid compressed (pageblocks-PID.img present)? */
bool pagecodec_image_compressed(pid_t vpid);
/* Restore: fill the pages of pm into task hpid from a compressed image.
 * 1 when the image is not compressed (the caller fills it), 0 done. */
int pagecodec_fill(pid_t hpid, pid_t vpid, Ckpt__PagemapEntry *const *pm, size_t npm);

/* Read len bytes at offset off of the uncompressed page stream of vpid
 * (for pages a task shares with another's image).  1 when that image is
 * not compressed (the caller preads it), 0 done, -errno.  Keeps the index
 * and the last block until pagecodec_pread_end(). */
int pagecodec_pread(pid_t vpid, void *buf, size_t len, uint64_t off);
void pagecodec_pread_end(void);

/* The block index of vpid's compressed page image in the open store, for
 * reads at any offset of its uncompressed stream (the levels of a parent
 * chain); *out NULL when that image is not compressed.  One reader at a
 * time: it keeps the last block. */
struct pagecodec_index;
int pagecodec_index_load(pid_t vpid, struct pagecodec_index **out);
int pagecodec_index_pread(struct pagecodec_index *ix, int fd, void *buf, size_t len,
			  uint64_t off);
void pagecodec_index_free(struct pagecodec_index *ix);

struct pagecodec_stats {
	const char *codec; /* of the compressed blocks; "none" when none shrank */
	uint64_t blocks, raw_bytes, stored_bytes;
};
/* Totals of a pageblocks image (for show). */
int pagecodec_stats(const char *name, struct pagecodec_stats *st);

#endif
