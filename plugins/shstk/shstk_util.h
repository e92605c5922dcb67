/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * shstk plugin — the pure parts (no ptrace, no host): smaps "ss" detection
 * and the checks of the image records.  Unit-tested in tests/shstk/.
 */
#ifndef CKPT_SHSTK_UTIL_H
#define CKPT_SHSTK_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "shstk.pb-c.h"

/* asm/prctl.h of older distributions lacks these. */
#ifndef ARCH_SHSTK_ENABLE
#define ARCH_SHSTK_ENABLE 0x5001
#define ARCH_SHSTK_DISABLE 0x5002
#define ARCH_SHSTK_LOCK 0x5003
#define ARCH_SHSTK_UNLOCK 0x5004
#define ARCH_SHSTK_STATUS 0x5005
#endif
#ifndef ARCH_SHSTK_SHSTK
#define ARCH_SHSTK_SHSTK (1ULL << 0)
#define ARCH_SHSTK_WRSS (1ULL << 1)

/* The features named in a /proc/PID/status line such as
 * "x86_Thread_features_locked:\tshstk wrss" (the text after the colon). */
uint64_t shstk_parse_feature_names(const char *text);
#endif
#ifndef NT_X86_SHSTK
#define NT_X86_SHSTK 0x204
#endif
#ifndef SYS_map_shadow_stack
#define SYS_map_shadow_stack 453
#endif
#ifndef SHADOW_STACK_SET_TOKEN
#define SHADOW_STACK_SET_TOKEN (1ULL << 0)
#endif
#ifndef PTRACE_ARCH_PRCTL
#define PTRACE_ARCH_PRCTL 30
#endif

struct shstk_range {
	uint64_t start, end;
};

/* The shadow-stack mappings in the text of /proc/PID/smaps: those whose
 * VmFlags line holds the two-letter flag "ss".  Fills up to max ranges,
 * returns how many there are (may exceed max), or -EBADMSG when a mapping
 * header cannot be parsed. */
int shstk_smaps_scan(const char *text, struct shstk_range *out, size_t max);

/* Whether one VmFlags line ("VmFlags: rd wr mr mw me ac ss") holds "ss". */
int shstk_vmflags_has_ss(const char *line);

/* Checks of the records read back: 0, or -EBADMSG with why set. */
int shstk_vma_valid(const Ckpt__Shstk__ShstkVma *v, char *why, size_t len);
int shstk_thread_valid(const Ckpt__Shstk__ShstkThread *t, const Ckpt__Shstk__ShstkVma *const *vmas,
		       size_t nvmas, char *why, size_t len);

#endif
