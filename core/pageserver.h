/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Page server: a dump streams its images over TCP to `ckpt page-server`,
 * which writes them into its -D directory with the layout of a local dump.
 *
 * Every image goes through the socket, not only the pages: the receiver
 * then holds a complete directory whose inventory it has checked against
 * what arrived, so a restore there needs no second copy step and a lost
 * or damaged stream can never pass for a dump.
 *
 * Wire format: frames of struct ps_frame followed by len payload bytes.
 *   OPEN  id, payload "name"          a new image
 *   DATA  id, payload bytes           appended to it (big runs: 8 MiB)
 *   CLOSE id, payload ps_close        its size and xxh3 as the dumper saw them
 *   INVENTORY payload = inventory.img the last image; the server checks every
 *                                     listed image, then answers REPLY
 *   REPLY payload: int32 status, text (the server's verdict)
 *   PARENT payload ps_parent + link   the dump is incremental: the server
 *                                     links `parent` in its directory (to
 *                                     its own --prev-images-dir if given,
 *                                     else to the link text), checks that
 *                                     the chain there ends in the dump of
 *                                     that inventory hash, and answers
 *                                     REPLY before any image is sent
 * In lazy mode (page-server --lazy-pages) the server answers
 *   GET   payload ps_get              with DATA id 0: bytes of a pages image
 */
#ifndef CKPT_PAGESERVER_H
#define CKPT_PAGESERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PS_MAGIC 0x53504b43u /* "CKPS" */

enum ps_cmd {
	PS_OPEN = 1,
	PS_DATA = 2,
	PS_CLOSE = 3,
	PS_INVENTORY = 4,
	PS_REPLY = 5,
	PS_GET = 6,
	PS_PARENT = 7,
};

struct ps_frame {
	uint32_t magic;
	uint32_t cmd;
	uint32_t id;
	uint32_t pad;
	uint64_t len;
};

struct ps_close {
	uint64_t size;
	uint64_t xxh3;
	char type[48];
};

struct ps_parent {
	uint64_t xxh3; /* of the parent's inventory.img */
	/* then the link text, not NUL-terminated */
};

struct ps_get {
	uint32_t pid;  /* pages-PID.img */
	uint32_t pad;
	uint64_t off;
	uint64_t len;
};

struct ps_opts {
	const char *dir;
	const char *address; /* NULL: any */
	int port;
	bool daemon;
	int status_fd;       /* -1: none */
	bool lazy;           /* serve pages of a dump in dir to lazy-pages */
	const char *prev_dir; /* the `parent` link of an incremental dump; NULL: as sent */
};

int cmd_page_server(const struct ps_opts *o);

/* Client side, used by the image store while a dump streams. */
int ps_connect(const char *address, int port, int *fd_out);
int ps_client_connect(const char *address, int port);
bool ps_client_active(void);
int ps_client_open(const char *name, uint32_t *id);
int ps_client_data(uint32_t id, const void *buf, size_t len);
int ps_client_close(uint32_t id, const char *type, uint64_t size, uint64_t xxh3);
/* An incremental dump: have the server link and check its parent
 * (link: the dump's --prev-images-dir; hash: of the parent's inventory). */
int ps_client_parent(const char *link, uint64_t hash);
/* Send inventory.img and wait for the server's verdict. */
int ps_client_inventory(const void *buf, size_t len);
void ps_client_disconnect(void);

/* Lazy-pages side: ask a lazy page server for bytes of pages-PID.img. */
int ps_get_pages(int fd, uint32_t pid, uint64_t off, void *buf, uint64_t len);

#endif
