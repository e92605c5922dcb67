/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Pages a process still shared copy-on-write with an earlier process of
 * the tree at the dump were saved once, in that process's pages image.
 * They are copied from there into this process's memory (the mappings are
 * writable while they are filled).  They are not shared again: each
 * process's memory is built on its own after the tree exists, so the
 * copy-on-write link a fork made cannot be made again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "image.h"
#include "log.h"
#include "pagecodec.h"
#include "restore.h"

#define COW_CHUNK (4u << 20)

int restore_cow_pages(struct rst_task *t)
{
	if (!t->ncow)
		return 0;
	char *buf = malloc(COW_CHUNK);
	if (!buf)
		return -ENOMEM;
	int fd = -1, fd_of = -1, ret = 0;
	for (size_t i = 0; !ret && i < t->ncow; i++) {
		const Ckpt__PagemapEntry *e = t->cow_pm[i];
		if (e->pages_of != fd_of) {
			char name[64];
			if (fd >= 0)
				close(fd);
			fd_of = e->pages_of;
			snprintf(name, sizeof(name), "pages-%d.img", fd_of);
			fd = e->pages_of == t->pid ? -EINVAL : img_raw_open(name);
			if (fd < 0) {
				pr_err("restore", "PID %d: the pages it shared with PID %d are not in the images; the dump is damaged",
				       t->pid, e->pages_of);
				ret = fd;
				break;
			}
		}
		uint64_t len = e->nr_pages * 4096;
		for (uint64_t done = 0; done < len;) {
			size_t n = len - done > COW_CHUNK ? COW_CHUNK : len - done;
			/* a compressed image is read through its blocks */
			int c = pagecodec_pread(e->pages_of, buf, n, e->offset + done);
			if (c < 0) {
				ret = c;
				break;
			}
			ssize_t r = c == 1 ? pread(fd, buf, n, e->offset + done) : (ssize_t)n;
			if (r != (ssize_t)n) {
				pr_err("restore", "PID %d: pages-%d.img ends before the pages it shares with PID %d (offset %llu); the dump is damaged",
				       t->pid, e->pages_of, e->pages_of,
				       (unsigned long long)(e->offset + done));
				ret = r < 0 ? -errno : -EBADMSG;
				break;
			}
			struct iovec l = { buf, n }, rm = { (void *)(uintptr_t)(e->vaddr + done), n };
			r = process_vm_writev(t->hpid, &l, 1, &rm, 1, 0);
			if (r != (ssize_t)n) {
				ret = r < 0 ? -errno : -EIO;
				pr_err("restore", "PID %d: cannot write its pages at %#llx: %s", t->pid,
				       (unsigned long long)(e->vaddr + done), strerror(-ret));
				break;
			}
			done += n;
		}
	}
	pagecodec_pread_end();
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}
