/*
 * The data blk.elf writes: 64-bit little-endian words, word w (0-63) of
 * sector s being blk_pattern(seed, s, w). Shared by the guest (blk.c) and
 * the host-side checker (blkpattern.c), so both compute the same bytes.
 */
#ifndef BULKHEAD_GUEST_BLKPATTERN_H
#define BULKHEAD_GUEST_BLKPATTERN_H

#include <stdint.h>

#define BLK_PATTERN_STEP 0x9e3779b97f4a7c15ull

/* The first word of a sector: a mix of the seed and the sector number. */
static inline uint64_t blk_pattern_base(uint64_t seed, uint64_t sector)
{
	uint64_t x = seed * 0xbf58476d1ce4e5b9ull + sector * 0x94d049bb133111ebull +
		     0x2545f4914f6cdd1dull;

	x ^= x >> 31;
	x *= 0xd6e8feb86659fd39ull;
	x ^= x >> 29;
	return x;
}

/* Each further word adds BLK_PATTERN_STEP (cheap where CPL 0 code is
 * emulated), so a sector read from the wrong place or a shifted word
 * still shows. */
static inline uint64_t blk_pattern(uint64_t seed, uint64_t sector, uint64_t word)
{
	return blk_pattern_base(seed, sector) + word * BLK_PATTERN_STEP;
}

#endif
