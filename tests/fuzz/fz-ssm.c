/* SPDX-License-Identifier: MIT */
/*
 * The saved-state stream (emt-worker/ssm_read.c and ssm_write.c) under fuzzing, in two modes
 * picked by bit 0 of the first byte.
 *
 * Reading (bit 0 clear): the rest of the first byte (bits 1-7) bounds how
 * many bytes the source callback hands over per read (0: as many as asked),
 * so record and block boundaries fall anywhere; then u8 n and n bytes of
 * "script"; then the stream, read as a loader would: for each unit, the
 * script's next operations (low nibble: get u8, u16, u32, u64, s32, s64,
 * bool, bytes, page, str, blob; finish; skip; next unit) until it says
 * otherwise or runs out, then the unit is skipped. Oracle: no crash or
 * leak, every size bounded, errors sticky with a message.
 *
 * Round trip (bit 0 set): the input is a script for the writer (units with
 * names, instances, versions and values of every type, pages that are
 * zero, compressible or not); the stream it writes is read back with the
 * same calls. Oracle: every value, string, blob and page comes back as
 * written, every unit is found, and the reader reaches the end (1).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "emt-worker/ssm.h"
#include "tests/fuzz/fuzzlib.h"

/* A source over a buffer that hands over at most `chunk` bytes a read. */
struct fz_ssm_src {
	const uint8_t *p;
	size_t n, pos, chunk;
};

static ssize_t fz_ssm_read(void *ctx, void *buf, size_t len)
{
	struct fz_ssm_src *s = ctx;
	size_t k = s->n - s->pos;

	if (k > len)
		k = len;
	if (s->chunk && k > s->chunk)
		k = s->chunk;
	memcpy(buf, s->p + s->pos, k);
	s->pos += k;
	return (ssize_t)k;
}

enum fz_ssm_op {
	FZ_SSM_U8, FZ_SSM_U16, FZ_SSM_U32, FZ_SSM_U64, FZ_SSM_S32, FZ_SSM_S64,
	FZ_SSM_BOOL, FZ_SSM_BYTES, FZ_SSM_PAGE, FZ_SSM_STR, FZ_SSM_BLOB,
	FZ_SSM_FINISH, FZ_SSM_SKIP, FZ_SSM_NEXT,
};

/* One get of the reading mode; returns its result. */
static int fz_ssm_get(struct ssm_reader *r, enum fz_ssm_op op, uint8_t arg)
{
	static uint8_t buf[SSM_PAGE_SIZE];
	union {
		uint8_t u8; uint16_t u16; uint32_t u32; uint64_t u64;
		int32_t s32; int64_t s64; bool b;
	} v;
	size_t len;

	switch (op) {
	case FZ_SSM_U8: return ssm_get_u8(r, &v.u8);
	case FZ_SSM_U16: return ssm_get_u16(r, &v.u16);
	case FZ_SSM_U32: return ssm_get_u32(r, &v.u32);
	case FZ_SSM_U64: return ssm_get_u64(r, &v.u64);
	case FZ_SSM_S32: return ssm_get_s32(r, &v.s32);
	case FZ_SSM_S64: return ssm_get_s64(r, &v.s64);
	case FZ_SSM_BOOL: return ssm_get_bool(r, &v.b);
	case FZ_SSM_BYTES: return ssm_get_bytes(r, buf, (size_t)arg * 16);
	case FZ_SSM_PAGE: return ssm_get_page(r, buf);
	case FZ_SSM_STR: return ssm_get_str(r, (char *)buf, 1 + arg);
	case FZ_SSM_BLOB: return ssm_get_blob(r, buf, (size_t)arg * 16, &len);
	default: return ssm_unit_finish(r);
	}
}

static void fz_ssm_read_mode(uint8_t chunk, struct fz_in *in)
{
	struct fz_ssm_src src = { .chunk = chunk };
	struct ssm_source source = { fz_ssm_read, &src };
	struct ssm_unit_info ui;
	struct ssm_reader *r;
	const uint8_t *script;
	size_t nscript, si = 0;
	char err[256];
	int ret, first_err = 0;

	nscript = fz_bytes(in, fz_u8(in), &script);
	src.n = fz_bytes(in, in->n, &src.p);
	ret = ssm_reader_open(&source, &r, err, sizeof(err));
	if (ret < 0) {
		FZ_CHECK(!r && err[0], "open failed (%d) without a reason", ret);
		return;
	}
	for (unsigned units = 0; units < 64; units++) {
		ret = ssm_reader_next_unit(r, &ui);
		if (ret != 0)
			break;
		FZ_CHECK(memchr(ui.name, '\0', sizeof(ui.name)),
			 "unit name not terminated");
		while (si < nscript) {
			uint8_t op = script[si++];
			uint8_t arg = si < nscript ? script[si] : 0;

			if ((op & 0xf) == FZ_SSM_NEXT || (op & 0xf) > FZ_SSM_NEXT)
				break;
			if ((op & 0xf) == FZ_SSM_SKIP) {
				ret = ssm_unit_skip(r);
				break;
			}
			ret = fz_ssm_get(r, (enum fz_ssm_op)(op & 0xf), arg);
			if (ret < 0 && !first_err)
				first_err = ret;
			if (first_err) {
				/* Errors are sticky. */
				FZ_CHECK(ret == first_err, "error %d then %d",
					 first_err, ret);
				FZ_CHECK(ssm_reader_error(r)[0],
					 "error %d without a message", ret);
			}
			if ((op & 0xf) == FZ_SSM_FINISH)
				break;
		}
		ret = ssm_unit_skip(r);
		if (ret < 0 && !first_err)
			first_err = ret;
	}
	if (ret < 0)
		FZ_CHECK(ssm_reader_error(r)[0], "error %d without a message",
			 ret);
	ssm_reader_close(r);
}

/* ---- round trip ----------------------------------------------------------- */

#define FZ_SSM_MAX_VALUES 256u
/* Data a round trip writes at most: a few blocks keep runs quick (every
 * block is compressed, checksummed and decompressed). */
#define FZ_SSM_BUDGET (4u * SSM_BLOCK_SIZE)

/* What was written, to check what is read. */
struct fz_ssm_val {
	enum fz_ssm_op op;
	uint64_t v;
	const uint8_t *bytes;  /* in the input (bytes, str, blob, page fill) */
	size_t len;
};

struct fz_ssm_unit {
	char name[SSM_NAME_MAX];
	uint32_t instance, version;
	unsigned first, nvals;
};

static int fz_ssm_mem_write(void *ctx, const void *buf, size_t len)
{
	return ssm_mem_write(ctx, buf, len);
}

/* A page from its recipe: 0 zeros, 1 a repeated byte, else the input's
 * bytes repeated (incompressible when they vary). */
static void fz_ssm_page(const struct fz_ssm_val *v, uint8_t *page)
{
	if (v->v == 0 || !v->len) {
		memset(page, 0, SSM_PAGE_SIZE);
	} else if (v->v == 1) {
		memset(page, v->bytes[0], SSM_PAGE_SIZE);
	} else {
		uint8_t round = 0;

		for (size_t i = 0; i < SSM_PAGE_SIZE; round++)
			for (size_t k = 0; k < v->len && i < SSM_PAGE_SIZE; k++)
				page[i++] = (uint8_t)(v->bytes[k] + round);
	}
}

/* A round trip's record of what it wrote; the arrays persist between runs,
 * the counts start again at each. */
struct fz_ssm_rt {
	struct fz_ssm_val vals[FZ_SSM_MAX_VALUES];
	struct fz_ssm_unit units[16];
	uint8_t page[SSM_PAGE_SIZE], back[SSM_PAGE_SIZE];
	unsigned nunits, nvals;
	size_t budget;
};

/* One value from the input, written and recorded in *v; bytes, a page or
 * a blob cost a page of the budget. Returns the put's result. */
static int fz_ssm_put(struct ssm_writer *w, struct fz_in *in,
		      struct fz_ssm_rt *rt, struct fz_ssm_val *v)
{
	uint8_t op = fz_u8(in) % (FZ_SSM_BLOB + 1);
	int ret;

	/* Out of budget: only scalars from here on. */
	if (op >= FZ_SSM_BYTES && rt->budget < SSM_PAGE_SIZE)
		op %= FZ_SSM_BYTES;

	v->op = (enum fz_ssm_op)op;
	v->bytes = NULL;
	v->len = 0;
	switch (v->op) {
	case FZ_SSM_U8: v->v = fz_u8(in);
		ret = ssm_put_u8(w, (uint8_t)v->v); break;
	case FZ_SSM_U16: v->v = fz_u16(in);
		ret = ssm_put_u16(w, (uint16_t)v->v); break;
	case FZ_SSM_U32: v->v = fz_u32(in);
		ret = ssm_put_u32(w, (uint32_t)v->v); break;
	case FZ_SSM_U64: v->v = fz_u64(in);
		ret = ssm_put_u64(w, v->v); break;
	case FZ_SSM_S32: v->v = fz_u32(in);
		ret = ssm_put_s32(w, (int32_t)v->v); break;
	case FZ_SSM_S64: v->v = fz_u64(in);
		ret = ssm_put_s64(w, (int64_t)v->v); break;
	case FZ_SSM_BOOL: v->v = fz_u8(in) & 1;
		ret = ssm_put_bool(w, v->v); break;
	case FZ_SSM_BYTES:
		/* Repeated up to 17 times (past a block, so LZF and zero
		 * records come into play). */
		v->len = fz_bytes(in, fz_u8(in), &v->bytes);
		v->v = fz_u8(in) % 3;
		rt->budget -= SSM_PAGE_SIZE;
		ret = 0;
		for (uint64_t k = 0; k <= v->v * 8 && !ret; k++)
			ret = ssm_put_bytes(w, v->bytes, v->len);
		break;
	case FZ_SSM_PAGE:
		v->v = fz_u8(in) % 3;
		v->len = fz_bytes(in, 1 + fz_u8(in) % 64, &v->bytes);
		rt->budget -= SSM_PAGE_SIZE;
		fz_ssm_page(v, rt->page);
		ret = ssm_put_page(w, rt->page);
		break;
	case FZ_SSM_STR:
		/* No NUL inside: the reader refuses those. */
		v->len = fz_bytes(in, fz_u8(in), &v->bytes);
		v->len = strnlen((const char *)v->bytes, v->len);
		{
			char s[256];

			memcpy(s, v->bytes, v->len);
			s[v->len] = '\0';
			ret = ssm_put_str(w, s);
		}
		break;
	default:
		v->len = fz_bytes(in, fz_u16(in) % 2048, &v->bytes);
		rt->budget -= SSM_PAGE_SIZE;
		ret = ssm_put_blob(w, v->bytes, v->len);
		break;
	}
	return ret;
}

/* The next unit of the input: a name the writer accepts, its instance and
 * version, then up to 15 values. */
static void fz_ssm_write_unit(struct ssm_writer *w, struct fz_in *in,
			      struct fz_ssm_rt *rt)
{
	struct fz_ssm_unit *u = &rt->units[rt->nunits];
	unsigned n = fz_u8(in) % 16;
	const uint8_t *nm;
	size_t nl = fz_bytes(in, 1 + fz_u8(in) % (SSM_NAME_MAX - 1), &nm);
	int ret;

	/* A name the writer accepts: printable, no space. */
	for (size_t i = 0; i < nl; i++)
		u->name[i] = (char)(0x21 + nm[i] % 0x5e);
	u->name[nl ? nl : 1] = '\0';
	if (!nl)
		u->name[0] = 'u';
	u->instance = fz_u8(in);
	u->version = fz_u8(in);
	u->first = rt->nvals;
	ret = ssm_unit_begin(w, u->name, u->instance, u->version,
			     SSM_PASS_FINAL);
	FZ_CHECK(ret == 0, "unit_begin(%s): %d", u->name, ret);
	for (unsigned i = 0; i < n && rt->nvals < FZ_SSM_MAX_VALUES; i++) {
		struct fz_ssm_val *v = &rt->vals[rt->nvals++];

		ret = fz_ssm_put(w, in, rt, v);
		FZ_CHECK(ret == 0, "put %d: %d (%s)", v->op, ret,
			 ssm_writer_error(w));
	}
	u->nvals = rt->nvals - u->first;
	ret = ssm_unit_end(w);
	FZ_CHECK(ret == 0, "unit_end: %d (%s)", ret, ssm_writer_error(w));
	rt->nunits++;
}

/* Reads back a scalar (up to FZ_SSM_BOOL) into *got, widened as written. */
static int fz_ssm_get_scalar(struct ssm_reader *r, enum fz_ssm_op op,
			     uint64_t *got)
{
	union {
		uint8_t u8; uint16_t u16; uint32_t u32;
		int32_t s32; int64_t s64; bool b;
	} g;
	int ret;

	switch (op) {
	case FZ_SSM_U8: ret = ssm_get_u8(r, &g.u8);
		*got = g.u8; break;
	case FZ_SSM_U16: ret = ssm_get_u16(r, &g.u16);
		*got = g.u16; break;
	case FZ_SSM_U32: ret = ssm_get_u32(r, &g.u32);
		*got = g.u32; break;
	case FZ_SSM_U64: ret = ssm_get_u64(r, got);
		break;
	case FZ_SSM_S32: ret = ssm_get_s32(r, &g.s32);
		*got = (uint32_t)g.s32; break;
	case FZ_SSM_S64: ret = ssm_get_s64(r, &g.s64);
		*got = (uint64_t)g.s64; break;
	default: ret = ssm_get_bool(r, &g.b);
		*got = g.b; break;
	}
	return ret;
}

/* Reads back bytes, a page, a string or a blob, checking each is what
 * *v says was written. */
static int fz_ssm_get_data(struct ssm_reader *r, const struct fz_ssm_val *v,
			   struct fz_ssm_rt *rt)
{
	uint8_t *back = rt->back;
	size_t len;
	int ret = 0;

	switch (v->op) {
	case FZ_SSM_BYTES:
		for (uint64_t j = 0; j <= v->v * 8 && !ret; j++) {
			ret = ssm_get_bytes(r, back, v->len);
			FZ_CHECK(ret || !v->len ||
				 !memcmp(back, v->bytes, v->len),
				 "bytes differ");
		}
		break;
	case FZ_SSM_PAGE:
		fz_ssm_page(v, rt->page);
		ret = ssm_get_page(r, back);
		FZ_CHECK(ret || !memcmp(back, rt->page, SSM_PAGE_SIZE),
			 "page differs");
		break;
	case FZ_SSM_STR:
		ret = ssm_get_str(r, (char *)back, 256);
		FZ_CHECK(ret || (strlen((char *)back) == v->len &&
				 !memcmp(back, v->bytes, v->len)),
			 "string differs");
		break;
	default:
		ret = ssm_get_blob(r, back, sizeof(rt->back), &len);
		FZ_CHECK(ret || (len == v->len &&
				 (!len || !memcmp(back, v->bytes, len))),
			 "blob differs");
		break;
	}
	return ret;
}

/* Unit i read back: found where it was written, every value as written. */
static void fz_ssm_read_unit(struct ssm_reader *r, struct fz_ssm_rt *rt,
			     unsigned i)
{
	const struct fz_ssm_unit *u = &rt->units[i];
	struct ssm_unit_info ui;
	int ret;

	ret = ssm_reader_next_unit(r, &ui);
	FZ_CHECK(ret == 0 && strcmp(ui.name, u->name) == 0 &&
		 ui.instance == u->instance && ui.version == u->version,
		 "unit %u: %d '%s' (%s)", i, ret, ui.name,
		 ssm_reader_error(r));
	for (unsigned k = 0; k < u->nvals; k++) {
		const struct fz_ssm_val *v = &rt->vals[u->first + k];
		uint64_t got = 0;

		if (v->op <= FZ_SSM_BOOL)
			ret = fz_ssm_get_scalar(r, v->op, &got);
		else
			ret = fz_ssm_get_data(r, v, rt);
		FZ_CHECK(ret == 0, "unit %s value %u (op %d): %d (%s)",
			 u->name, k, v->op, ret, ssm_reader_error(r));
		if (v->op <= FZ_SSM_BOOL)
			FZ_CHECK(got == (v->op == FZ_SSM_S32 ?
					 (uint32_t)v->v : v->v),
				 "value %u of %s: wrote 0x%llx, read 0x%llx",
				 k, u->name, (unsigned long long)v->v,
				 (unsigned long long)got);
	}
	ret = ssm_unit_finish(r);
	FZ_CHECK(ret == 0, "unit_finish %s: %d (%s)", u->name, ret,
		 ssm_reader_error(r));
}

/* Read it all back, through a source of odd-sized reads. */
static void fz_ssm_read_back(const struct ssm_mem *mem, struct fz_ssm_rt *rt)
{
	struct fz_ssm_src src = { .p = mem->data, .n = mem->len,
				  .chunk = 1 + mem->len % 4093 };
	struct ssm_source source = { fz_ssm_read, &src };
	struct ssm_unit_info ui;
	struct ssm_reader *r;
	char err[256];
	int ret;

	ret = ssm_reader_open(&source, &r, err, sizeof(err));
	FZ_CHECK(ret == 0, "reader_open: %d (%s)", ret, err);
	for (unsigned i = 0; i < rt->nunits; i++)
		fz_ssm_read_unit(r, rt, i);
	ret = ssm_reader_next_unit(r, &ui);
	FZ_CHECK(ret == 1, "end of stream: %d (%s)", ret, ssm_reader_error(r));
	ret = ssm_reader_close(r);
	FZ_CHECK(ret == 0, "reader_close: %d", ret);
}

static void fz_ssm_roundtrip(struct fz_in *in)
{
	static struct fz_ssm_rt rt;
	struct ssm_mem mem = { 0 };
	struct ssm_sink sink = { fz_ssm_mem_write, &mem };
	struct ssm_writer *w;
	int ret;

	rt.nunits = 0;
	rt.nvals = 0;
	rt.budget = FZ_SSM_BUDGET;
	ret = ssm_writer_open(&sink, 0, &w);
	FZ_CHECK(ret == 0, "writer_open: %d", ret);
	while (!fz_done(in) && rt.nunits < 16 &&
	       rt.nvals < FZ_SSM_MAX_VALUES && rt.budget)
		fz_ssm_write_unit(w, in, &rt);
	ret = ssm_writer_close(w);
	FZ_CHECK(ret == 0, "writer_close: %d", ret);
	fz_ssm_read_back(&mem, &rt);
	free(mem.data);
}

int fz_ssm_run(const uint8_t *data, size_t size)
{
	struct fz_in in;
	uint8_t b;

	fz_quiet();
	fz_in_init(&in, data, size);
	b = fz_u8(&in);
	if (b & 1)
		fz_ssm_roundtrip(&in);
	else
		fz_ssm_read_mode(b >> 1, &in);
	return 0;
}
