/* SPDX-License-Identifier: MIT */
/* Helpers shared by the unit suites (tests/unit/testlib.h). */
#include <check.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/unit/testlib.h"

void tl_put_le(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

uint64_t tl_get_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	while (n--)
		v = (v << 8) | p[n];
	return v;
}

uint64_t tl_xorshift64s(uint64_t *s)
{
	/* xorshift64*: deterministic, good enough to scatter mutations */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

uint64_t tl_rng(struct tl_mutator *m)
{
	return tl_xorshift64s(&m->rng);
}

uint64_t tl_interesting(struct tl_mutator *m)
{
	uint64_t v = m->vals[tl_rng(m) % m->nvals];

	switch (tl_rng(m) % 4) {
	case 0:
		return v + (tl_rng(m) % 16) - 8;
	case 1:
		return tl_rng(m);
	default:
		return v;
	}
}

void tl_mutate(struct tl_mutator *m, uint8_t *img, size_t *len, size_t lo,
	       size_t hi)
{
	int n = 1 + (int)(tl_rng(m) % 4);

	for (int k = 0; k < n; k++) {
		size_t off = tl_rng(m) % 4 ? lo + tl_rng(m) % (hi - lo)
					   : tl_rng(m) % *len;
		size_t width;

		if (off >= *len)
			continue;
		switch (tl_rng(m) % 5) {
		case 0:
			img[off] ^= (uint8_t)(1u << (tl_rng(m) % 8));
			continue;
		case 1:
			img[off] = (uint8_t)tl_rng(m);
			continue;
		case 2:
			width = 2;
			break;
		case 3:
			width = 4;
			break;
		default:
			width = 8;
			break;
		}
		if (off + width > *len)
			continue;
		tl_put_le(img + off, tl_interesting(m), width);
	}
	if (tl_rng(m) % 16 == 0)
		*len = tl_rng(m) % (*len + 1);
}

bool tl_guarded_try_alloc(struct tl_guarded *g, size_t len, bool noreserve)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	int flags = MAP_PRIVATE | MAP_ANONYMOUS |
		    (noreserve ? MAP_NORESERVE : 0);

	g->len = (len + page - 1) / page * page;
	g->map_len = g->len + 2 * TL_GUARD_LEN;
	g->map = mmap(NULL, g->map_len, PROT_NONE, flags, -1, 0);
	if (g->map == MAP_FAILED) {
		g->map = NULL;
		return false;
	}
	g->start = g->map + TL_GUARD_LEN;
	if (mprotect(g->start, g->len, PROT_READ | PROT_WRITE) != 0) {
		munmap(g->map, g->map_len);
		g->map = NULL;
		return false;
	}
	return true;
}

void tl_guarded_alloc(struct tl_guarded *g, size_t len, bool noreserve)
{
	ck_assert_msg(tl_guarded_try_alloc(g, len, noreserve),
		      "cannot map %zu guarded bytes", len);
}

void tl_guarded_free(struct tl_guarded *g)
{
	if (g->map)
		munmap(g->map, g->map_len);
	g->map = NULL;
}

uint8_t *tl_guarded_tail(struct tl_guarded *g, size_t len)
{
	ck_assert_uint_le(len, g->len);
	return g->start + g->len - len;
}

uint8_t *tl_guarded_place(struct tl_guarded *g, const void *data,
			  size_t len)
{
	uint8_t *p = g->start + g->len - len;

	ck_assert_uint_le(len, g->len);
	memcpy(p, data, len);
	return p;
}

int tl_load_checked(const struct emt_load_args *a, struct emt_boot *boot,
		    char *err, size_t err_size)
{
	int rc;

	memset(boot, 0, sizeof(*boot));
	memset(err, 'X', err_size);
	rc = emt_load_image(a, boot, err, err_size);
	/* plain ifs: each passing ck_assert costs a write in Check */
	if (!memchr(err, '\0', err_size))
		ck_abort_msg("err is not NUL-terminated");
	if (rc == 0 && err[0] != '\0')
		ck_abort_msg("success left an error: %s", err);
	if (rc != 0 && (err[0] == '\0' || strchr(err, '\n')))
		ck_abort_msg("error %d without a one-line message", rc);
	return rc;
}

void tl_expect_error(int got, int rc, const char *what, const char *err)
{
	ck_assert_msg(got == rc, "expected %d (%s), got %d: %s", rc, what, got,
		      err);
	ck_assert_msg(strstr(err, what) != NULL,
		      "error '%s' does not mention '%s'", err, what);
}

void tl_check_raw_load(const struct emt_boot *boot, uint8_t *ram, size_t len)
{
	if (boot->mode != EMT_MODE_REAL ||
	    boot->rip != EMT_BOOTSECT_ADDR ||
	    boot->image_end != EMT_BOOTSECT_ADDR + len)
		ck_abort_msg("bad raw state");
	memset(ram + EMT_BOOTSECT_ADDR, 0, len);
}
