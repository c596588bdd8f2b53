/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the unit suites that are not about the fake device
 * host: little-endian access to byte buffers and the deterministic image
 * mutator of the loaders' mutation runs.
 */
#ifndef BULKHEAD_TESTS_TESTLIB_H
#define BULKHEAD_TESTS_TESTLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "emt-worker/loader.h"

void tl_put_le(uint8_t *p, uint64_t v, size_t n);
uint64_t tl_get_le(const uint8_t *p, size_t n);

/*
 * A buffer between two PROT_NONE guards. The guards are large (reserving
 * address space costs nothing) so that a read far past the end crashes too
 * instead of landing in some other mapping.
 */
#define TL_GUARD_LEN (64ull << 20)

struct tl_guarded {
	uint8_t *map;
	size_t map_len;
	uint8_t *start; /* first usable byte */
	size_t len;     /* usable bytes, a multiple of the page size */
};

/* Map len usable bytes between guards; false if the system refuses. */
bool tl_guarded_try_alloc(struct tl_guarded *g, size_t len, bool noreserve);
/* The same, asserting that it worked. */
void tl_guarded_alloc(struct tl_guarded *g, size_t len, bool noreserve);
void tl_guarded_free(struct tl_guarded *g);
/* Where data of len bytes ends right at the trailing guard. */
uint8_t *tl_guarded_tail(struct tl_guarded *g, size_t len);
/* Copy data there. */
uint8_t *tl_guarded_place(struct tl_guarded *g, const void *data,
			  size_t len);

/*
 * Call emt_load_image(a) with a fresh boot and an err of err_size bytes
 * filled with 'X', and require a NUL-terminated err, empty on success and
 * one line on failure. Returns what the loader returned.
 */
int tl_load_checked(const struct emt_load_args *a, struct emt_boot *boot,
		    char *err, size_t err_size);
/* Require that a load returned rc (got) with an error mentioning what. */
void tl_expect_error(int got, int rc, const char *what, const char *err);

/* After a mutant loaded as a raw boot sector of len bytes: check the boot
 * state, clear what it wrote to ram (plain ifs, as in a mutation run). */
void tl_check_raw_load(const struct emt_boot *boot, uint8_t *ram, size_t len);

/* The next number of the xorshift64* generator whose state is *s. */
uint64_t tl_xorshift64s(uint64_t *s);

/* A mutation run's generator and the values it likes to write. */
struct tl_mutator {
	uint64_t rng;           /* xorshift64* state: seed it */
	const uint64_t *vals;   /* interesting values */
	size_t nvals;
};

/* The next pseudo-random number of m. */
uint64_t tl_rng(struct tl_mutator *m);
/* One of m's values, sometimes nudged by up to 8, sometimes random. */
uint64_t tl_interesting(struct tl_mutator *m);
/*
 * Flip, set and overwrite 1 to 4 bytes of img, three times in four at an
 * offset in [lo, hi), else anywhere; now and then truncate *len.
 */
void tl_mutate(struct tl_mutator *m, uint8_t *img, size_t *len, size_t lo,
	       size_t hi);

#endif
