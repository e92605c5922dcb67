// SPDX-License-Identifier: GPL-2.0-only
/* shstk plugin: smaps parsing and record checks (pure functions). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shstk_util.h"

int shstk_vmflags_has_ss(const char *line)
{
	const char *p;

	if (strncmp(line, "VmFlags:", 8))
		return 0;
	p = line + 8;
	for (;;) {
		size_t n;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '\n')
			return 0;
		n = strcspn(p, " \t\n");
		if (n == 2 && p[0] == 's' && p[1] == 's')
			return 1;
		p += n;
	}
}

/* A mapping header: "START-END PERMS ..." with hex addresses. */
static int parse_header(const char *line, uint64_t *start, uint64_t *end)
{
	char *e;

	*start = strtoull(line, &e, 16);
	if (e == line || *e != '-')
		return 0;
	line = e + 1;
	*end = strtoull(line, &e, 16);
	if (e == line || *e != ' ')
		return 0;
	return 1;
}

int shstk_smaps_scan(const char *text, struct shstk_range *out, size_t max)
{
	uint64_t start = 0, end = 0;
	int have = 0, n = 0;
	const char *l = text;

	while (l && *l) {
		const char *nl = strchr(l, '\n');
		size_t len = nl ? (size_t)(nl - l) : strlen(l);

		/* smaps keys are "Name:" words; a header starts with a hex digit */
		if (len && ((l[0] >= '0' && l[0] <= '9') || (l[0] >= 'a' && l[0] <= 'f'))) {
			const char *sp = memchr(l, ' ', len);
			const char *colon = memchr(l, ':', len);

			if (!colon || (sp && sp < colon)) {
				if (!parse_header(l, &start, &end) || end <= start)
					return -EBADMSG;
				have = 1;
			}
		} else if (have && len >= 8 && !strncmp(l, "VmFlags:", 8)) {
			char buf[256];

			if (len >= sizeof(buf))
				len = sizeof(buf) - 1;
			memcpy(buf, l, len);
			buf[len] = '\0';
			if (shstk_vmflags_has_ss(buf)) {
				if ((size_t)n < max) {
					out[n].start = start;
					out[n].end = end;
				}
				n++;
			}
			have = 0;
		}
		l = nl ? nl + 1 : NULL;
	}
	return n;
}

int shstk_vma_valid(const Ckpt__Shstk__ShstkVma *v, char *why, size_t len)
{
	if (v->end <= v->start || (v->start & 4095) || (v->end & 4095)) {
		snprintf(why, len, "shadow stack %#" PRIx64 "-%#" PRIx64 " is not a page range",
			 v->start, v->end);
		return -EBADMSG;
	}
	if (v->data.len != v->end - v->start) {
		snprintf(why, len, "shadow stack %#" PRIx64 "-%#" PRIx64 " holds %zu bytes, not %" PRIu64,
			 v->start, v->end, v->data.len, v->end - v->start);
		return -EBADMSG;
	}
	return 0;
}

int shstk_thread_valid(const Ckpt__Shstk__ShstkThread *t, const Ckpt__Shstk__ShstkVma *const *vmas,
		       size_t nvmas, char *why, size_t len)
{
	if (!(t->features & ARCH_SHSTK_SHSTK))
		return 0; /* nothing to restore for it */
	if (t->ssp & 7) {
		snprintf(why, len, "thread %u: SSP %#" PRIx64 " is not 8-byte aligned", t->tid, t->ssp);
		return -EBADMSG;
	}
	/* SSP points at the last entry pushed; an empty stack has it at end. */
	for (size_t i = 0; i < nvmas; i++)
		if (vmas[i]->pid == t->pid && t->ssp > vmas[i]->start && t->ssp <= vmas[i]->end)
			return 0;
	snprintf(why, len, "thread %u: SSP %#" PRIx64 " lies in no saved shadow stack", t->tid, t->ssp);
	return -EBADMSG;
}

uint64_t shstk_parse_feature_names(const char *text)
{
	uint64_t f = 0;
	while (text && *text) {
		while (*text == ' ' || *text == '\t')
			text++;
		size_t n = strcspn(text, " \t\n");
		if (n == 5 && !strncmp(text, "shstk", 5))
			f |= ARCH_SHSTK_SHSTK;
		else if (n == 4 && !strncmp(text, "wrss", 4))
			f |= ARCH_SHSTK_WRSS;
		if (!n)
			break;
		text += n;
	}
	return f;
}
