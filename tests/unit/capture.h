/* SPDX-License-Identifier: GPL-2.0-only */
/* Capture of what a unit under test prints, to check its messages. */
#ifndef CKPT_CAPTURE_H
#define CKPT_CAPTURE_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Capture what a call writes to stderr or stdout, for checking messages. */
struct capture {
	int fd;    /* the stream's fd: 1 or 2 */
	int saved; /* its original, dup()ed */
	FILE *tmp;
	char text[16384];
};

static inline void capture_start(struct capture *c, int fd)
{
	fflush(stdout);
	fflush(stderr);
	c->fd = fd;
	c->tmp = tmpfile();
	c->saved = dup(fd);
	if (!c->tmp || c->saved < 0 || dup2(fileno(c->tmp), fd) < 0) {
		perror("capture");
		exit(2);
	}
	c->text[0] = '\0';
}

/* Stop capturing; the text is echoed to stderr as "# " comment lines. */
static inline const char *capture_end(struct capture *c)
{
	size_t n;
	char *line, *save = NULL;
	char copy[sizeof(c->text)];

	fflush(stdout);
	fflush(stderr);
	dup2(c->saved, c->fd);
	close(c->saved);
	rewind(c->tmp);
	n = fread(c->text, 1, sizeof(c->text) - 1, c->tmp);
	c->text[n] = '\0';
	fclose(c->tmp);
	memcpy(copy, c->text, n + 1);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fprintf(stderr, "# %s\n", line);
	return c->text;
}

#endif
