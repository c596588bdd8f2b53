/* SPDX-License-Identifier: MIT */
/*
 * ssm_read.c: the saved-state stream reader and ssm_validate(). The
 * format is in docs/ssm-format.md; the API in ssm.h.
 *
 * Reader: strictly forward, with fixed buffers (input, one decoded block,
 * one compressed block) and no allocation driven by the stream. Before a
 * size from the stream is used it is bounded: record sizes by the block
 * limit, name lengths by SSM_NAME_MAX, the directory's entry count by the
 * number of final-pass units actually seen. The directory is checked
 * against a CRC of the entries the reader expects, so no per-unit list is
 * kept. Every structure is CRC-checked; record data is covered by the
 * running CRC checked at each terminator and again at the footer.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liblzf/lzf.h>
#include <zlib.h>

#include "emt-worker/ssm_int.h"

#define SSM_IN_BUF (64u * 1024) /* reader input buffer */
#define SSM_PAGE_MIN 4096u
#define SSM_PAGE_MAX (1024u * 1024)

/* ---- reader ------------------------------------------------------------- */

enum ssm_rd_state {
	SSM_RS_UNITS,   /* between units: next_unit expected */
	SSM_RS_IN_UNIT, /* inside a unit's data */
	SSM_RS_DONE,    /* footer checked */
};

/* What the reader is in, for error messages. */
enum ssm_rd_ctx {
	SSM_CTX_STREAM,
	SSM_CTX_HEADER,
	SSM_CTX_UNIT_HDR,
	SSM_CTX_UNIT,
	SSM_CTX_DIR,
	SSM_CTX_FOOTER,
};

struct ssm_reader {
	struct ssm_source src;
	int err;
	enum ssm_rd_state state;
	enum ssm_rd_ctx ctx;
	struct ssm_stream_info info;
	struct ssm_unit_info unit;
	struct ssm_unit_stats stats;
	uint64_t off;          /* stream offset of the next byte consumed */
	uint32_t crc;          /* CRC32 of bytes [0, off) */
	size_t in_pos, in_len; /* unconsumed input: in[in_pos..in_len) */
	bool eof;
	uint64_t unit_start;   /* offset of the unit's first record */
	uint64_t rec_off;      /* offset of the last record header read */
	uint32_t raw_left;     /* bytes left in the current raw record */
	size_t blk_pos, blk_len; /* decoded block not yet handed out */
	uint64_t nfinal;       /* final-pass units seen */
	uint32_t dir_crc;      /* CRC of the directory entries they imply */
	char errmsg[SSM_ERR_LEN];
	uint8_t blk[SSM_BLOCK_SIZE];
	uint8_t lzf[SSM_BLOCK_SIZE];
	uint8_t in[SSM_IN_BUF];
};

static int ssm_rd_fail(struct ssm_reader *r, int code, uint64_t off,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Record the first error (sticky), prefixed with where; returns it. */
static int ssm_rd_fail(struct ssm_reader *r, int code, uint64_t off,
		       const char *fmt, ...)
{
	static const char *const what[] = {
		[SSM_CTX_STREAM] = "stream",
		[SSM_CTX_HEADER] = "header",
		[SSM_CTX_UNIT_HDR] = "unit header",
		[SSM_CTX_DIR] = "directory",
		[SSM_CTX_FOOTER] = "footer",
	};
	va_list ap;
	int n;

	if (r->err)
		return r->err;
	r->err = code;
	if (r->ctx == SSM_CTX_UNIT)
		n = snprintf(r->errmsg, sizeof(r->errmsg),
			     "unit '%s' instance %" PRIu32
			     " at offset 0x%" PRIx64 ": ",
			     r->unit.name, r->unit.instance, off);
	else
		n = snprintf(r->errmsg, sizeof(r->errmsg),
			     "%s at offset 0x%" PRIx64 ": ", what[r->ctx], off);
	if (n < 0 || (size_t)n >= sizeof(r->errmsg))
		return code;
	va_start(ap, fmt);
	vsnprintf(r->errmsg + n, sizeof(r->errmsg) - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

/* More input; -ENODATA at the end of the stream (not recorded as error). */
static int ssm_rd_fill(struct ssm_reader *r)
{
	ssize_t n;

	if (r->eof)
		return -ENODATA;
	n = r->src.read(r->src.ctx, r->in, sizeof(r->in));
	if (n < 0)
		return ssm_rd_fail(r, (int)n, r->off, "read error: %s",
				   strerror((int)-n));
	if (n == 0) {
		r->eof = true;
		return -ENODATA;
	}
	if ((size_t)n > sizeof(r->in))
		return ssm_rd_fail(
			r, -EIO, r->off,
			"source returned more than it was asked for");
	r->in_pos = 0;
	r->in_len = (size_t)n;
	return 0;
}

/* Up to len of the avail bytes at src into *dst (NULL: discard), moved on
 * past them; returns how many. */
static size_t ssm_rd_take(uint8_t **dst, const uint8_t *src, size_t avail,
			  size_t len)
{
	size_t n = avail < len ? avail : len;

	if (*dst) {
		memcpy(*dst, src, n);
		*dst += n;
	}
	return n;
}

/* Consume exactly len bytes into dst (NULL: discard), updating the CRC. */
static int ssm_rd_in(struct ssm_reader *r, void *dst, size_t len)
{
	uint8_t *d = dst;
	int rc;

	if (r->err)
		return r->err;
	while (len > 0) {
		size_t n;

		if (r->in_pos == r->in_len) {
			rc = ssm_rd_fill(r);
			if (rc == -ENODATA)
				return ssm_rd_fail(
					r, -ENODATA, r->off,
					"stream truncated (0x%zx more "
					"bytes expected)",
					len);
			if (rc < 0)
				return rc;
		}
		n = ssm_rd_take(&d, r->in + r->in_pos, r->in_len - r->in_pos,
				len);
		r->crc = (uint32_t)crc32(r->crc, r->in + r->in_pos, (uInt)n);
		r->in_pos += n;
		r->off += n;
		len -= n;
	}
	return 0;
}

static bool ssm_rd_pow2_in(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

static int ssm_rd_header(struct ssm_reader *r)
{
	uint8_t h[SSM_HDR_SIZE];
	struct ssm_stream_info *i = &r->info;
	uint32_t block;
	int rc;

	r->ctx = SSM_CTX_HEADER;
	rc = ssm_rd_in(r, h, sizeof(h));
	if (rc < 0)
		return rc;
	if (memcmp(h, ssm_file_magic, sizeof(ssm_file_magic)) != 0)
		return ssm_rd_fail(r, -EBADMSG, 0,
				   "bad magic: not a Bulkhead saved state");
	if (ssm_le32(h + SSM_HDR_CRC) !=
	    ssm_struct_crc(h, sizeof(h), SSM_HDR_CRC))
		return ssm_rd_fail(r, -EBADMSG, SSM_HDR_CRC,
				   "header CRC mismatch (stored 0x%08" PRIx32
				   ", computed 0x%08" PRIx32 ")",
				   ssm_le32(h + SSM_HDR_CRC),
				   ssm_struct_crc(h, sizeof(h), SSM_HDR_CRC));
	i->version_major = ssm_le16(h + SSM_HDR_VER_MAJOR);
	i->version_minor = ssm_le16(h + SSM_HDR_VER_MINOR);
	i->page_size = ssm_le32(h + SSM_HDR_PAGE_SIZE);
	i->flags = ssm_le32(h + SSM_HDR_FLAGS);
	block = ssm_le32(h + SSM_HDR_BLOCK_SIZE);
	i->host_bits = h[SSM_HDR_HOST_BITS];
	i->producer = ssm_le32(h + SSM_HDR_PRODUCER);
	if (i->version_major != SSM_VERSION_MAJOR)
		return ssm_rd_fail(
			r, -ENOTSUP, SSM_HDR_VER_MAJOR,
			"format version %u.%u; this build reads %u.x",
			i->version_major, i->version_minor, SSM_VERSION_MAJOR);
	if (i->flags & ~(SSM_F_STREAM_CRC | SSM_F_LIVE_SAVE))
		return ssm_rd_fail(r, -ENOTSUP, SSM_HDR_FLAGS,
				   "unknown flags 0x%08" PRIx32, i->flags);
	if (!(i->flags & SSM_F_STREAM_CRC))
		return ssm_rd_fail(
			r, -ENOTSUP, SSM_HDR_FLAGS,
			"stream without CRC32 (flag 0x1) is not supported");
	if (!ssm_rd_pow2_in(i->page_size, SSM_PAGE_MIN, SSM_PAGE_MAX))
		return ssm_rd_fail(r, -EBADMSG, SSM_HDR_PAGE_SIZE,
				   "host page size 0x%" PRIx32
				   " is not a power of "
				   "two from 4 KiB to 1 MiB",
				   i->page_size);
	if (block != SSM_BLOCK_SIZE)
		return ssm_rd_fail(r, -ENOTSUP, SSM_HDR_BLOCK_SIZE,
				   "max block size 0x%" PRIx32 " (this build "
				   "reads 0x%x)", block, SSM_BLOCK_SIZE);
	if (i->host_bits != 32 && i->host_bits != 64)
		return ssm_rd_fail(r, -EBADMSG, SSM_HDR_HOST_BITS,
				   "host bits %u (want 32 or 64)",
				   i->host_bits);
	if (h[SSM_HDR_HOST_BITS + 1] || h[SSM_HDR_HOST_BITS + 2] ||
	    h[SSM_HDR_HOST_BITS + 3] || ssm_le32(h + SSM_HDR_RESERVED))
		return ssm_rd_fail(r, -EBADMSG, SSM_HDR_HOST_BITS + 1,
				   "reserved fields not zero");
	r->ctx = SSM_CTX_STREAM;
	return 0;
}

int ssm_reader_open(const struct ssm_source *src, struct ssm_reader **out,
		    char *err, size_t errlen)
{
	struct ssm_reader *r;
	int rc;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	if (!src || !src->read) {
		if (errlen)
			snprintf(err, errlen, "ssm_reader_open: no source");
		return -EINVAL;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		if (errlen)
			snprintf(err, errlen, "ssm_reader_open: out of memory");
		return -ENOMEM;
	}
	r->src = *src;
	r->crc = (uint32_t)crc32(0, Z_NULL, 0);
	r->dir_crc = (uint32_t)crc32(0, Z_NULL, 0);
	rc = ssm_rd_header(r);
	if (rc < 0)
		goto out_free;
	*out = r;
	return 0;

out_free:
	if (errlen)
		snprintf(err, errlen, "%s", r->errmsg);
	free(r);
	return rc;
}

void ssm_reader_info(const struct ssm_reader *r, struct ssm_stream_info *info)
{
	*info = r->info;
}

/*
 * Read a fixed-size structure (directory, footer) at r->off into buf, as
 * ctx for the messages, and check that it starts with magic.
 */
static int ssm_rd_struct(struct ssm_reader *r, enum ssm_rd_ctx ctx,
			 uint8_t *buf, size_t len, const char *magic)
{
	uint64_t off = r->off;
	int rc;

	r->ctx = ctx;
	rc = ssm_rd_in(r, buf, len);
	if (rc < 0)
		return rc;
	if (memcmp(buf, magic, SSM_MAGIC_LEN) != 0)
		return ssm_rd_fail(r, -EBADMSG, off, "bad magic");
	return 0;
}

/* A CRC field (at off) against the CRC computed; what ("", "stream ",
 * ...) says which CRC in the message. */
static int ssm_rd_crc(struct ssm_reader *r, uint64_t off, const char *what,
		      uint32_t stored, uint32_t computed)
{
	if (stored != computed)
		return ssm_rd_fail(r, -EBADMSG, off,
				   "%sCRC mismatch (stored 0x%08" PRIx32
				   ", computed 0x%08" PRIx32 ")",
				   what, stored, computed);
	return 0;
}

static int ssm_rd_directory(struct ssm_reader *r)
{
	uint8_t d[SSM_DIR_HDR_SIZE], e[SSM_DIR_ENTRY_SIZE];
	uint64_t dir_off = r->off, prev = 0, bad_off = 0;
	uint32_t stored, count, c, expect;
	int64_t bad = -1;
	int rc;

	rc = ssm_rd_struct(r, SSM_CTX_DIR, d, sizeof(d), ssm_dir_magic);
	if (rc < 0)
		return rc;
	stored = ssm_le32(d + SSM_DIR_CRC);
	count = ssm_le32(d + SSM_DIR_COUNT);
	/* Bounded by what was seen before a single entry is read. */
	if (count != r->nfinal)
		return ssm_rd_fail(r, -EBADMSG, dir_off + SSM_DIR_COUNT,
				   "lists %" PRIu32
				   " units but the stream has %" PRIu64
				   " final-pass units",
				   count, r->nfinal);
	c = ssm_struct_crc(d, sizeof(d), SSM_DIR_CRC);
	expect = (uint32_t)crc32(0, Z_NULL, 0);
	for (uint32_t i = 0; i < count; i++) {
		uint64_t eoff;

		rc = ssm_rd_in(r, e, sizeof(e));
		if (rc < 0)
			return rc;
		c = (uint32_t)crc32(c, e, sizeof(e));
		expect = (uint32_t)crc32(expect, e, sizeof(e));
		eoff = ssm_le64(e);
		if (bad < 0 && (eoff >= dir_off || (i > 0 && eoff <= prev))) {
			bad = i;
			bad_off = eoff;
		}
		prev = eoff;
	}
	rc = ssm_rd_crc(r, dir_off + SSM_DIR_CRC, "", stored, c);
	if (rc < 0)
		return rc;
	if (bad >= 0)
		return ssm_rd_fail(r, -EBADMSG, dir_off, "entry %" PRId64
				   ": unit offset 0x%" PRIx64 " out of order",
				   bad, bad_off);
	if (expect != r->dir_crc)
		return ssm_rd_fail(
			r, -EBADMSG, dir_off,
			"entries do not match the units in the stream");
	return 0;
}

static int ssm_rd_footer(struct ssm_reader *r)
{
	uint8_t f[SSM_FOOTER_SIZE];
	uint64_t foff = r->off;
	uint32_t stream_crc = r->crc, c;
	int rc;

	rc = ssm_rd_struct(r, SSM_CTX_FOOTER, f, sizeof(f), ssm_footer_magic);
	if (rc < 0)
		return rc;
	c = ssm_struct_crc(f, sizeof(f), SSM_FT_CRC);
	rc = ssm_rd_crc(r, foff + SSM_FT_CRC, "", ssm_le32(f + SSM_FT_CRC), c);
	if (rc < 0)
		return rc;
	if (ssm_le64(f + SSM_FT_OFFSET) != foff)
		return ssm_rd_fail(r, -EBADMSG, foff + SSM_FT_OFFSET,
				   "says offset 0x%" PRIx64,
				   ssm_le64(f + SSM_FT_OFFSET));
	rc = ssm_rd_crc(r, foff + SSM_FT_STREAM_CRC, "stream ",
			ssm_le32(f + SSM_FT_STREAM_CRC), stream_crc);
	if (rc < 0)
		return rc;
	if (ssm_le32(f + SSM_FT_COUNT) != r->nfinal)
		return ssm_rd_fail(r, -EBADMSG, foff + SSM_FT_COUNT,
				   "counts %" PRIu32 " directory entries, the "
				   "directory %" PRIu64,
				   ssm_le32(f + SSM_FT_COUNT), r->nfinal);
	if (ssm_le32(f + SSM_FT_RESERVED) != 0)
		return ssm_rd_fail(r, -EBADMSG, foff + SSM_FT_RESERVED,
				   "reserved field not zero");
	return 0;
}

/*
 * Read a unit header at hoff and its name bytes into h, and check its
 * magic, name length, CRC, offset, running CRC and flags; *end for the end
 * unit.
 */
static int ssm_rd_unit_hdr(struct ssm_reader *r, uint64_t hoff, uint8_t *h,
			   uint32_t *name_len, bool *end)
{
	uint32_t stream_crc = r->crc, flags, c;
	int rc;

	r->ctx = SSM_CTX_UNIT_HDR;
	rc = ssm_rd_in(r, h, SSM_UNIT_HDR_SIZE);
	if (rc < 0)
		return rc;
	*end = memcmp(h, ssm_end_magic, SSM_MAGIC_LEN) == 0;
	if (!*end && memcmp(h, ssm_unit_magic, SSM_MAGIC_LEN) != 0)
		return ssm_rd_fail(r, -EBADMSG, hoff, "bad magic");
	*name_len = ssm_le32(h + SSM_UH_NAME_LEN);
	if (*end ? *name_len != 0
		 : (*name_len < 2 || *name_len > SSM_NAME_MAX))
		return ssm_rd_fail(r, -EBADMSG, hoff + SSM_UH_NAME_LEN,
				   "name length %" PRIu32 " (want %s)",
				   *name_len,
				   *end ? "0 in the end unit" : "2 to 48");
	rc = ssm_rd_in(r, h + SSM_UNIT_HDR_SIZE, *name_len);
	if (rc < 0)
		return rc;
	c = ssm_struct_crc(h, SSM_UNIT_HDR_SIZE + *name_len, SSM_UH_CRC);
	rc = ssm_rd_crc(r, hoff + SSM_UH_CRC, "", ssm_le32(h + SSM_UH_CRC), c);
	if (rc < 0)
		return rc;
	if (ssm_le64(h + SSM_UH_OFFSET) != hoff)
		return ssm_rd_fail(r, -EBADMSG, hoff + SSM_UH_OFFSET,
				   "says offset 0x%" PRIx64
				   " (spliced or shifted stream)",
				   ssm_le64(h + SSM_UH_OFFSET));
	rc = ssm_rd_crc(r, hoff + SSM_UH_STREAM_CRC, "running ",
			ssm_le32(h + SSM_UH_STREAM_CRC), stream_crc);
	if (rc < 0)
		return rc;
	flags = ssm_le32(h + SSM_UH_FLAGS);
	if (flags != 0)
		return ssm_rd_fail(r, -ENOTSUP, hoff + SSM_UH_FLAGS,
				   "unknown flags 0x%08" PRIx32, flags);
	return 0;
}

/* The end unit u: check it, then the directory and footer; 1 when done. */
static int ssm_rd_end_unit(struct ssm_reader *r, const struct ssm_unit_info *u)
{
	int rc;

	if (u->version || u->instance || u->pass != SSM_PASS_FINAL)
		return ssm_rd_fail(r, -EBADMSG, u->offset, "end unit with "
				   "version, instance or pass set");
	rc = ssm_rd_directory(r);
	if (rc == 0)
		rc = ssm_rd_footer(r);
	if (rc < 0)
		return rc;
	r->ctx = SSM_CTX_STREAM;
	r->state = SSM_RS_DONE;
	return 1;
}

/*
 * Check the unit name that follows the header in h (hoff: the header's
 * stream offset, for errors) and copy it into name without its NUL.
 */
static int ssm_rd_unit_name(struct ssm_reader *r, const uint8_t *h,
			    uint64_t hoff, uint32_t name_len, char *name)
{
	for (uint32_t i = 0; i < name_len - 1; i++) {
		char ch = (char)h[SSM_UNIT_HDR_SIZE + i];

		if (!ssm_name_char_ok(ch))
			return ssm_rd_fail(r, -EBADMSG,
					   hoff + SSM_UNIT_HDR_SIZE + i,
					   "unit name holds byte 0x%02x",
					   (unsigned char)ch);
		name[i] = ch;
	}
	if (h[SSM_UNIT_HDR_SIZE + name_len - 1] != 0)
		return ssm_rd_fail(r, -EBADMSG,
				   hoff + SSM_UNIT_HDR_SIZE + name_len - 1,
				   "unit name not NUL-terminated");
	return 0;
}

int ssm_reader_next_unit(struct ssm_reader *r, struct ssm_unit_info *info)
{
	uint8_t h[SSM_UNIT_HDR_SIZE + SSM_NAME_MAX];
	uint64_t hoff = r->off;
	uint32_t name_len = 0;
	struct ssm_unit_info u = {0};
	bool end = false;
	int rc;

	if (r->err)
		return r->err;
	if (r->state == SSM_RS_DONE)
		return 1;
	if (r->state != SSM_RS_UNITS)
		return ssm_rd_fail(r, -EINVAL, r->off, "next_unit before the "
				   "current unit was finished or skipped");
	rc = ssm_rd_unit_hdr(r, hoff, h, &name_len, &end);
	if (rc < 0)
		return rc;
	u.version = ssm_le32(h + SSM_UH_VERSION);
	u.instance = ssm_le32(h + SSM_UH_INSTANCE);
	u.pass = ssm_le32(h + SSM_UH_PASS);
	u.offset = hoff;
	if (end)
		return ssm_rd_end_unit(r, &u);
	rc = ssm_rd_unit_name(r, h, hoff, name_len, u.name);
	if (rc < 0)
		return rc;
	if (u.pass != SSM_PASS_FINAL && !(r->info.flags & SSM_F_LIVE_SAVE))
		return ssm_rd_fail(r, -EBADMSG, hoff + SSM_UH_PASS,
				   "pass %" PRIu32
				   " in a stream without the live-save flag",
				   u.pass);
	if (u.pass == SSM_PASS_FINAL) {
		uint8_t e[SSM_DIR_ENTRY_SIZE];

		ssm_dir_entry_encode(e, hoff, u.instance, ssm_name_crc(u.name));
		r->dir_crc = (uint32_t)crc32(r->dir_crc, e, sizeof(e));
		r->nfinal++;
	}
	r->unit = u;
	memset(&r->stats, 0, sizeof(r->stats));
	r->unit_start = r->off;
	r->raw_left = 0;
	r->blk_pos = r->blk_len = 0;
	r->ctx = SSM_CTX_UNIT;
	r->state = SSM_RS_IN_UNIT;
	if (info)
		*info = u;
	return 0;
}

/* A record header: type byte and size, the size bounded by the block limit. */
static int ssm_rd_rec_hdr(struct ssm_reader *r, uint8_t *type_byte,
			  uint32_t *size)
{
	uint8_t b[1 + SSM_SIZE_MAX_BYTES];
	size_t n, used;
	int rc;

	r->rec_off = r->off;
	rc = ssm_rd_in(r, b, 2);
	if (rc < 0)
		return rc;
	if ((b[0] & 0xe0) != SSM_REC_MAGIC)
		return ssm_rd_fail(r, -EBADMSG, r->rec_off,
				   "not a record header (byte 0x%02x)", b[0]);
	n = ssm_size_len(b[1]);
	if (n == 0)
		return ssm_rd_fail(r, -EBADMSG, r->rec_off + 1,
				   "malformed record size (lead byte 0x%02x)",
				   b[1]);
	rc = ssm_rd_in(r, b + 2, n - 1);
	if (rc < 0)
		return rc;
	if (ssm_size_decode(b + 1, n, size, &used) < 0)
		return ssm_rd_fail(r, -EBADMSG, r->rec_off + 1,
				   "malformed record size (bad continuation "
				   "byte or overlong)");
	if (*size > SSM_BLOCK_SIZE)
		return ssm_rd_fail(r, -EBADMSG, r->rec_off,
				   "record size 0x%" PRIx32
				   " exceeds the block limit 0x%x",
				   *size, SSM_BLOCK_SIZE);
	*type_byte = b[0];
	return 0;
}

/* The KiB byte of an LZF or zero record: 1 to the block size. */
static int ssm_rd_kib(struct ssm_reader *r, size_t *bytes)
{
	uint8_t kib;
	int rc = ssm_rd_in(r, &kib, 1);

	if (rc < 0)
		return rc;
	if (kib == 0 || kib > SSM_BLOCK_SIZE / 1024)
		return ssm_rd_fail(r, -EBADMSG, r->rec_off,
				   "block of %u KiB "
				   "(want 1 to %u)",
				   kib, SSM_BLOCK_SIZE / 1024);
	*bytes = (size_t)kib * 1024;
	return 0;
}

/* An LZF record of size bytes: its KiB byte, then data decoded into blk[]. */
static int ssm_rd_lzf_record(struct ssm_reader *r, uint32_t size)
{
	unsigned got;
	size_t bytes;
	int rc;

	if (size < 2)
		return ssm_rd_fail(r, -EBADMSG, r->rec_off,
				   "LZF record of %" PRIu32
				   " bytes is too short", size);
	rc = ssm_rd_kib(r, &bytes);
	if (rc == 0)
		rc = ssm_rd_in(r, r->lzf, size - 1);
	if (rc < 0)
		return rc;
	got = lzf_decompress(r->lzf, size - 1, r->blk, (unsigned)bytes);
	if (got != bytes)
		return ssm_rd_fail(r, -EBADMSG, r->rec_off,
				   "LZF data does not decompress "
				   "to the 0x%zx bytes claimed",
				   bytes);
	r->blk_pos = 0;
	r->blk_len = bytes;
	r->stats.data_bytes += bytes;
	return 0;
}

/* A zero record of size bytes: its KiB byte; blk[] holds that many zeros. */
static int ssm_rd_zero_record(struct ssm_reader *r, uint32_t size)
{
	size_t bytes;
	int rc;

	if (size != 1)
		return ssm_rd_fail(r, -EBADMSG, r->rec_off,
				   "zero record size %" PRIu32
				   " (want 1)", size);
	rc = ssm_rd_kib(r, &bytes);
	if (rc < 0)
		return rc;
	memset(r->blk, 0, bytes);
	r->blk_pos = 0;
	r->blk_len = bytes;
	r->stats.data_bytes += bytes;
	return 0;
}

/*
 * Read the next record. A data record leaves its data in blk[] (LZF, zero)
 * or raw_left; a terminator sets *term and leaves its payload unread;
 * unknown unimportant records are skipped.
 */
static int ssm_rd_next_record(struct ssm_reader *r, bool *term)
{
	uint8_t tb = 0;
	uint32_t size;
	unsigned type;
	int rc;

	*term = false;
	for (;;) {
		rc = ssm_rd_rec_hdr(r, &tb, &size);
		if (rc < 0)
			return rc;
		type = tb & SSM_REC_TYPE_MASK;
		r->stats.records[type]++;
		switch (type) {
		case SSM_REC_TERM:
			if (size != SSM_TERM_PAYLOAD)
				return ssm_rd_fail(r, -EBADMSG, r->rec_off,
						   "terminator size %" PRIu32
						   " (want %u)", size,
						   SSM_TERM_PAYLOAD);
			*term = true;
			return 0;
		case SSM_REC_RAW:
			if (size == 0)
				return ssm_rd_fail(r, -EBADMSG, r->rec_off,
						   "empty raw record");
			r->raw_left = size;
			r->stats.data_bytes += size;
			return 0;
		case SSM_REC_RAW_LZF:
			return ssm_rd_lzf_record(r, size);
		case SSM_REC_RAW_ZERO:
			return ssm_rd_zero_record(r, size);
		case SSM_REC_INVALID:
			return ssm_rd_fail(r, -EBADMSG, r->rec_off,
					   "record type 0 is invalid");
		default:
			if (tb & SSM_REC_IMPORTANT)
				return ssm_rd_fail(r, -ENOTSUP, r->rec_off,
						   "unknown important record "
						   "type %u", type);
			rc = ssm_rd_in(r, NULL, size);
			if (rc < 0)
				return rc;
			r->stats.skipped++;
			break;
		}
	}
}

static int ssm_rd_check_unit(struct ssm_reader *r)
{
	if (r->err)
		return r->err;
	if (r->state != SSM_RS_IN_UNIT)
		return ssm_rd_fail(r, -EINVAL, r->off, "no unit is open");
	return 0;
}

/* Exactly len bytes of unit data into dst (NULL: discard). */
static int ssm_rd_data(struct ssm_reader *r, uint8_t *dst, size_t len)
{
	bool term;
	int rc = ssm_rd_check_unit(r);

	while (rc == 0 && len > 0) {
		size_t n;

		if (r->blk_pos < r->blk_len) {
			n = ssm_rd_take(&dst, r->blk + r->blk_pos,
					r->blk_len - r->blk_pos, len);
			r->blk_pos += n;
			len -= n;
		} else if (r->raw_left > 0) {
			n = r->raw_left;
			if (n > len)
				n = len;
			rc = ssm_rd_in(r, dst, n);
			if (dst)
				dst += n;
			r->raw_left -= (uint32_t)n;
			len -= n;
		} else {
			rc = ssm_rd_next_record(r, &term);
			if (rc == 0 && term)
				rc = ssm_rd_fail(
					r, -EBADMSG, r->rec_off,
					"read runs past the end of the "
					"unit data (0x%zx bytes short)",
					len);
		}
	}
	return rc;
}

int ssm_get_bytes(struct ssm_reader *r, void *buf, size_t len)
{
	return ssm_rd_data(r, buf, len);
}

int ssm_get_page(struct ssm_reader *r, void *page)
{
	return ssm_rd_data(r, page, SSM_PAGE_SIZE);
}

int ssm_get_u8(struct ssm_reader *r, uint8_t *v)
{
	return ssm_rd_data(r, v, 1);
}

/* A little-endian integer of n (2, 4 or 8) bytes into *v, an integer of
 * that size (signed or not); *v is left alone on an error. */
static int ssm_rd_le(struct ssm_reader *r, void *v, size_t n)
{
	uint8_t b[8];
	int rc = ssm_rd_data(r, b, n);

	if (rc != 0)
		return rc;
	if (n == 2)
		*(uint16_t *)v = ssm_le16(b);
	else if (n == 4)
		*(uint32_t *)v = ssm_le32(b);
	else
		*(uint64_t *)v = ssm_le64(b);
	return rc;
}

int ssm_get_u16(struct ssm_reader *r, uint16_t *v)
{
	return ssm_rd_le(r, v, sizeof(*v));
}

int ssm_get_u32(struct ssm_reader *r, uint32_t *v)
{
	return ssm_rd_le(r, v, sizeof(*v));
}

int ssm_get_u64(struct ssm_reader *r, uint64_t *v)
{
	return ssm_rd_le(r, v, sizeof(*v));
}

int ssm_get_s32(struct ssm_reader *r, int32_t *v)
{
	return ssm_rd_le(r, v, sizeof(*v));
}

int ssm_get_s64(struct ssm_reader *r, int64_t *v)
{
	return ssm_rd_le(r, v, sizeof(*v));
}

int ssm_get_bool(struct ssm_reader *r, bool *v)
{
	uint64_t at = r->off;
	uint8_t b;
	int rc = ssm_get_u8(r, &b);

	if (rc < 0)
		return rc;
	if (b > 1)
		return ssm_rd_fail(r, -EBADMSG, at, "bool holds 0x%02x", b);
	*v = b;
	return 0;
}

int ssm_get_str(struct ssm_reader *r, char *buf, size_t size)
{
	uint64_t at = r->off;
	uint32_t len = 0;
	int rc = ssm_get_u32(r, &len);

	if (rc < 0)
		return rc;
	if (size == 0 || len > size - 1)
		return ssm_rd_fail(r, -EMSGSIZE, at, "string of %" PRIu32
				   " bytes does not fit a buffer of %zu", len,
				   size);
	rc = ssm_rd_data(r, (uint8_t *)buf, len);
	if (rc < 0)
		return rc;
	if (memchr(buf, 0, len))
		return ssm_rd_fail(r, -EBADMSG, at, "string holds a NUL byte");
	buf[len] = '\0';
	return 0;
}

int ssm_get_blob(struct ssm_reader *r, void *buf, size_t size, size_t *len)
{
	uint64_t at = r->off;
	uint32_t n = 0;
	int rc = ssm_get_u32(r, &n);

	if (rc < 0)
		return rc;
	if (n > size)
		return ssm_rd_fail(r, -EMSGSIZE, at,
				   "blob of %" PRIu32
				   " bytes does not fit a buffer of %zu",
				   n, size);
	rc = ssm_rd_data(r, buf, n);
	if (rc == 0)
		*len = n;
	return rc;
}

/* The terminator's payload: flags, stream CRC, unit size. */
static int ssm_rd_term(struct ssm_reader *r)
{
	uint8_t t[SSM_TERM_PAYLOAD];
	uint64_t toff = r->rec_off;
	uint32_t crc_here;
	uint16_t flags;
	int rc;

	rc = ssm_rd_in(r, t, 2);
	if (rc < 0)
		return rc;
	flags = ssm_le16(t);
	if (flags != SSM_TERM_F_CRC)
		return ssm_rd_fail(r, -EBADMSG, toff, "terminator flags 0x%04x "
				   "(want 0x%04x)", flags, SSM_TERM_F_CRC);
	crc_here = r->crc;
	rc = ssm_rd_in(r, t + 2, 4);
	r->crc = crc_here; /* the CRC field is not part of the running CRC */
	if (rc == 0)
		rc = ssm_rd_in(r, t + 6, 8);
	if (rc < 0)
		return rc;
	if (ssm_le32(t + 2) != crc_here)
		return ssm_rd_fail(r, -EBADMSG, toff,
				   "stream CRC mismatch at the "
				   "terminator (stored 0x%08" PRIx32
				   ", computed 0x%08" PRIx32 ")",
				   ssm_le32(t + 2), crc_here);
	if (ssm_le64(t + 6) != r->off - r->unit_start)
		return ssm_rd_fail(r, -EBADMSG, toff,
				   "terminator says unit size "
				   "0x%" PRIx64 ", read 0x%" PRIx64,
				   ssm_le64(t + 6), r->off - r->unit_start);
	r->stats.stream_bytes = r->off - r->unit_start;
	r->state = SSM_RS_UNITS;
	r->ctx = SSM_CTX_STREAM;
	return 0;
}

int ssm_unit_finish(struct ssm_reader *r)
{
	size_t left;
	bool term;
	int rc = ssm_rd_check_unit(r);

	if (rc < 0)
		return rc;
	left = (r->blk_len - r->blk_pos) + r->raw_left;
	if (left)
		return ssm_rd_fail(r, -EBADMSG, r->off, "0x%zx bytes of unit "
				   "data left unread", left);
	rc = ssm_rd_next_record(r, &term);
	if (rc < 0)
		return rc;
	if (!term)
		return ssm_rd_fail(
			r, -EBADMSG, r->rec_off,
			"unit data left "
			"unread (a record where the terminator belongs)");
	return ssm_rd_term(r);
}

int ssm_unit_skip(struct ssm_reader *r)
{
	bool term = false;
	int rc = ssm_rd_check_unit(r);

	while (rc == 0 && !term) {
		r->blk_pos = r->blk_len;
		rc = ssm_rd_in(r, NULL, r->raw_left);
		r->raw_left = 0;
		if (rc == 0)
			rc = ssm_rd_next_record(r, &term);
	}
	return rc < 0 ? rc : ssm_rd_term(r);
}

void ssm_reader_unit_stats(const struct ssm_reader *r,
			   struct ssm_unit_stats *st)
{
	*st = r->stats;
}

const char *ssm_reader_error(const struct ssm_reader *r)
{
	return r->errmsg;
}

int ssm_reader_close(struct ssm_reader *r)
{
	int rc;

	if (!r)
		return 0;
	rc = r->err ? r->err : r->state == SSM_RS_DONE ? 0 : -ENODATA;
	free(r);
	return rc;
}

int ssm_validate(const struct ssm_source *src, char *err, size_t errlen)
{
	struct ssm_reader *r;
	int rc = ssm_reader_open(src, &r, err, errlen);

	if (rc < 0)
		return rc;
	while ((rc = ssm_reader_next_unit(r, NULL)) == 0) {
		rc = ssm_unit_skip(r);
		if (rc < 0)
			break;
	}
	if (rc < 0 && errlen)
		snprintf(err, errlen, "%s", r->errmsg);
	ssm_reader_close(r);
	return rc < 0 ? rc : 0;
}
