/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * mixfill — page contents that compress like real process memory, not like
 * memhog's one-byte pages (which any codec squeezes 1000:1).
 *
 * Memory is cut into 64 KiB regions, each of one kind chosen by a hash of
 * its index, about a third each:
 *   sparse: arrays of 64-byte structs, mostly zero, with a pointer-like
 *           word, a small counter and a flag in each (heaps, tables);
 *   text:   words of a small vocabulary with spaces, punctuation, newlines
 *           (strings, logs, JSON, source);
 *   random: xorshift bytes (compressed or encrypted data, hashes).
 * Page i is a pure function of i, so a checker regenerates and compares.
 * Used by bench/memhog (mode "mix") and tests/workloads/compress/mixmem.
 */
#ifndef CKPT_MIXFILL_H
#define CKPT_MIXFILL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t mix_hash(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* 0 sparse, 1 text, 2 random: the kind of page i (4 KiB pages). */
static inline int mix_kind(size_t page)
{
	return (int)(mix_hash((page >> 4) + 0x6d6978) % 3);
}

static inline void mix_page(unsigned char *p, size_t page, size_t page_size)
{
	static const char *const words[] = {
		"the", "of", "and", "to", "in", "is", "for", "that", "with", "on",
		"process", "memory", "page", "restore", "checkpoint", "kernel", "file",
		"thread", "signal", "value", "error", "request", "user", "name", "id",
		"\"key\":", "true", "false", "null", "return", "int", "static", "const",
		"2026-11-26T19:55:01Z", "INFO", "DEBUG", "http://example.org/", "data",
	};
	uint64_t s = mix_hash(page * 0x9e3779b97f4a7c15ULL + 1) | 1;
	size_t off = 0;

	switch (mix_kind(page)) {
	case 0:
		memset(p, 0, page_size);
		for (off = 0; off + 64 <= page_size; off += 64) {
			uint64_t ptr = 0x00007f3a10000000ULL + ((page * page_size + off) & ~63ULL) * 3;
			uint32_t cnt = (uint32_t)(mix_hash(page * 64 + off / 64) % 100);
			memcpy(p + off, &ptr, 8);
			memcpy(p + off + 8, &cnt, 4);
			if (cnt % 5 == 0)
				p[off + 16] = 1;
		}
		break;
	case 1:
		while (off < page_size) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			const char *w = words[s % (sizeof(words) / sizeof(words[0]))];
			size_t n = strlen(w);
			for (size_t k = 0; k < n && off < page_size; k++)
				p[off++] = (unsigned char)w[k];
			if (off < page_size)
				p[off++] = (s >> 20) % 11 == 0 ? '\n' : (s >> 24) % 13 == 0 ? ',' : ' ';
		}
		break;
	default:
		for (; off + 8 <= page_size; off += 8) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			memcpy(p + off, &s, 8);
		}
		break;
	}
}

#endif
