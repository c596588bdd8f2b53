/* SPDX-License-Identifier: MIT */
/*
 * ssm: the saved-state stream writer and reader. The format is in
 * docs/ssm-format.md; the API in ssm.h.
 *
 * Writer: header, then per unit a header, records and a terminator, then
 * the end unit, the directory and the footer. Output goes through a buffer
 * to the sink; the running CRC32 covers every byte from offset 0. Small
 * writes collect in a 4 KiB data buffer: a full buffer goes out as a block
 * (zero, LZF or raw record), a partial one as a raw record when the unit
 * ends or before a page or large write.
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
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <liblzf/lzf.h>
#include <zlib.h>

#include "emt-worker/ssm.h"

#define SSM_PRODUCER 1u         /* bumped when the writer changes behaviour */
#define SSM_IN_BUF (64u * 1024) /* reader input buffer */
#define SSM_OUT_BUF (64u * 1024)
#define SSM_LZF_PROBE 256u      /* bytes at each end checked for repeats */
#define SSM_REPEAT_HASH_BITS 10u
#define SSM_LZF_RETRY 32u       /* try every this many blocks regardless */
/* The longest block record: magic, a 3-byte size, a raw block. */
#define SSM_REC_MAX (1u + 3u + SSM_BLOCK_SIZE)
#define SSM_ERR_LEN 256u
#define SSM_PAGE_MIN 4096u
#define SSM_PAGE_MAX (1024u * 1024)

static const char ssm_file_magic[SSM_FILE_MAGIC_LEN] = SSM_FILE_MAGIC;
static const char ssm_unit_magic[SSM_MAGIC_LEN] = SSM_UNIT_MAGIC;
static const char ssm_end_magic[SSM_MAGIC_LEN] = SSM_END_MAGIC;
static const char ssm_dir_magic[SSM_MAGIC_LEN] = SSM_DIR_MAGIC;
static const char ssm_footer_magic[SSM_MAGIC_LEN] = SSM_FOOTER_MAGIC;

/* ---- little-endian helpers ---------------------------------------------- */

static void ssm_le16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void ssm_le32_put(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void ssm_le64_put(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t ssm_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t ssm_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t ssm_le64(const uint8_t *p)
{
	return (uint64_t)ssm_le32(p) | (uint64_t)ssm_le32(p + 4) << 32;
}

/* CRC32 of a structure whose 4-byte CRC field at crc_off counts as zero. */
static uint32_t ssm_struct_crc(const uint8_t *p, size_t len, size_t crc_off)
{
	static const uint8_t zero[4];
	uint32_t c = (uint32_t)crc32(0, Z_NULL, 0);

	c = (uint32_t)crc32(c, p, (uInt)crc_off);
	c = (uint32_t)crc32(c, zero, 4);
	return (uint32_t)crc32(c, p + crc_off + 4, (uInt)(len - crc_off - 4));
}

static uint32_t ssm_name_crc(const char *name)
{
	return (uint32_t)crc32(crc32(0, Z_NULL, 0), (const Bytef *)name,
			       (uInt)strlen(name));
}

static void ssm_dir_entry_encode(uint8_t *e, uint64_t off, uint32_t instance,
				 uint32_t name_crc)
{
	ssm_le64_put(e, off);
	ssm_le32_put(e + 8, instance);
	ssm_le32_put(e + 12, name_crc);
}

static bool ssm_all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* A unit name: 1..SSM_NAME_MAX-1 printable ASCII characters, no space. */
static bool ssm_name_char_ok(char c)
{
	return c > 0x20 && c < 0x7f;
}

/* ---- size encoding ------------------------------------------------------ */

size_t ssm_size_len(uint8_t lead)
{
	if (lead < 0x80)
		return 1;
	if (lead < 0xc0)
		return 0; /* a continuation byte */
	if (lead < 0xe0)
		return 2;
	if (lead < 0xf0)
		return 3;
	if (lead < 0xf8)
		return 4;
	if (lead < 0xfc)
		return 5;
	if (lead < 0xfe)
		return 6;
	return 0;
}

int ssm_size_encode(uint32_t size, uint8_t *buf, size_t *len)
{
	static const uint8_t lead_bits[SSM_SIZE_MAX_BYTES + 1] = {
		0, 0x00, 0xc0, 0xe0, 0xf0, 0xf8, 0xfc,
	};
	size_t n;

	if (size < 0x80)
		n = 1;
	else if (size < 0x800)
		n = 2;
	else if (size < 0x10000)
		n = 3;
	else if (size < 0x200000)
		n = 4;
	else if (size < 0x4000000)
		n = 5;
	else if (size <= SSM_SIZE_LIMIT)
		n = 6;
	else
		return -E2BIG;
	for (size_t i = n - 1; i > 0; i--) {
		buf[i] = (uint8_t)(0x80 | (size & 0x3f));
		size >>= 6;
	}
	buf[0] = (uint8_t)(lead_bits[n] | size);
	*len = n;
	return 0;
}

int ssm_size_decode(const uint8_t *buf, size_t len, uint32_t *size,
		    size_t *used)
{
	static const uint8_t lead_mask[SSM_SIZE_MAX_BYTES + 1] = {
		0, 0x7f, 0x1f, 0x0f, 0x07, 0x03, 0x01,
	};
	static const uint32_t min_value[SSM_SIZE_MAX_BYTES + 1] = {
		0, 0, 0x80, 0x800, 0x10000, 0x200000, 0x4000000,
	};
	size_t n;
	uint32_t v;

	if (len == 0)
		return -ENODATA;
	n = ssm_size_len(buf[0]);
	if (n == 0)
		return -EBADMSG;
	if (len < n)
		return -ENODATA;
	v = buf[0] & lead_mask[n];
	for (size_t i = 1; i < n; i++) {
		if ((buf[i] & 0xc0) != 0x80)
			return -EBADMSG;
		v = v << 6 | (buf[i] & 0x3f);
	}
	if (v < min_value[n])
		return -EBADMSG; /* overlong */
	*size = v;
	*used = n;
	return 0;
}

/* ---- I/O callbacks ------------------------------------------------------ */

int ssm_fd_write(void *ctx, const void *buf, size_t len)
{
	int fd = *(const int *)ctx;
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t ssm_fd_read(void *ctx, void *buf, size_t len)
{
	int fd = *(const int *)ctx;

	for (;;) {
		ssize_t n = read(fd, buf, len);

		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

int ssm_mem_write(void *ctx, const void *buf, size_t len)
{
	struct ssm_mem *m = ctx;

	if (len == 0)
		return 0;
	if (len > SIZE_MAX - m->len)
		return -ENOMEM;
	if (m->len + len > m->cap) {
		size_t cap = m->cap ? m->cap : 4096;
		uint8_t *p;

		while (cap < m->len + len) {
			if (cap > SIZE_MAX / 2)
				return -ENOMEM;
			cap *= 2;
		}
		p = realloc(m->data, cap);
		if (!p)
			return -ENOMEM;
		m->data = p;
		m->cap = cap;
	}
	memcpy(m->data + m->len, buf, len);
	m->len += len;
	return 0;
}

ssize_t ssm_mem_read(void *ctx, void *buf, size_t len)
{
	struct ssm_mem *m = ctx;
	size_t n = m->pos < m->len ? m->len - m->pos : 0;

	if (n > len)
		n = len;
	if (n > SSIZE_MAX)
		n = SSIZE_MAX;
	if (n == 0)
		return 0;
	memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

/* ---- writer ------------------------------------------------------------- */

struct ssm_dir_entry {
	uint64_t offset;
	uint32_t instance;
	uint32_t name_crc;
};

/* Block encoder state: one per thread that encodes. */
struct ssm_enc {
	bool lzf_hit;           /* the last block tried compressed */
	unsigned lzf_skipped;   /* blocks not tried since the last attempt */
	uint8_t lzf[SSM_BLOCK_SIZE];
};

struct ssm_pool;

struct ssm_writer {
	struct ssm_sink sink;
	uint32_t flags;
	int err;
	uint64_t off;           /* bytes emitted (buffered included) */
	uint32_t crc;           /* CRC32 of those bytes */
	bool in_unit;
	char name[SSM_NAME_MAX];
	uint32_t instance;
	uint64_t unit_start;    /* offset of the unit's first record */
	size_t data_len;        /* bytes in data[] */
	size_t out_len;         /* bytes in out[] not yet given to the sink */
	struct ssm_dir_entry *dir;
	size_t ndir, dir_cap;
	char errmsg[SSM_ERR_LEN];
	struct ssm_pool *pool;  /* page encoders, NULL: none */
	uint8_t data[SSM_BLOCK_SIZE];
	struct ssm_enc enc;
	uint8_t out[SSM_OUT_BUF];
};

static int ssm_wr_fail(struct ssm_writer *w, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record the first error (sticky) with the unit and offset; returns it. */
static int ssm_wr_fail(struct ssm_writer *w, int code, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (w->err)
		return w->err;
	w->err = code;
	if (w->in_unit)
		n = snprintf(w->errmsg, sizeof(w->errmsg),
			     "unit '%s' instance %" PRIu32
			     " at offset 0x%" PRIx64 ": ",
			     w->name, w->instance, w->off);
	else
		n = snprintf(w->errmsg, sizeof(w->errmsg),
			     "stream at offset 0x%" PRIx64 ": ", w->off);
	if (n < 0 || (size_t)n >= sizeof(w->errmsg))
		return code;
	va_start(ap, fmt);
	vsnprintf(w->errmsg + n, sizeof(w->errmsg) - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

static int ssm_wr_flush_out(struct ssm_writer *w)
{
	int r;

	if (w->out_len == 0)
		return 0;
	r = w->sink.write(w->sink.ctx, w->out, w->out_len);
	if (r < 0)
		return ssm_wr_fail(w, r, "write error: %s", strerror(-r));
	w->out_len = 0;
	return 0;
}

/* Append bytes to the stream: CRC, offset, output buffer. */
static int ssm_wr_emit(struct ssm_writer *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int r;

	while (len > 0) {
		size_t n = SSM_OUT_BUF - w->out_len;

		if (n > len)
			n = len;
		memcpy(w->out + w->out_len, p, n);
		w->crc = (uint32_t)crc32(w->crc, p, (uInt)n);
		w->out_len += n;
		w->off += n;
		p += n;
		len -= n;
		if (w->out_len == SSM_OUT_BUF) {
			r = ssm_wr_flush_out(w);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* A record header into dst (1 + SSM_SIZE_MAX_BYTES); its length, 0 if
 * size cannot be encoded. */
static size_t ssm_enc_hdr(uint8_t *dst, enum ssm_rec_type type, uint32_t size)
{
	size_t n;

	dst[0] = (uint8_t)(SSM_REC_MAGIC | SSM_REC_IMPORTANT | type);
	return ssm_size_encode(size, dst + 1, &n) < 0 ? 0 : 1 + n;
}

static int ssm_wr_rec_hdr(struct ssm_writer *w, enum ssm_rec_type type,
			  uint32_t size)
{
	uint8_t hdr[1 + SSM_SIZE_MAX_BYTES];
	size_t n = ssm_enc_hdr(hdr, type, size);

	if (n == 0)
		return ssm_wr_fail(w, -EINVAL, "record size 0x%" PRIx32
				   " not encodable", size);
	return ssm_wr_emit(w, hdr, n);
}

static int ssm_wr_raw(struct ssm_writer *w, const void *buf, size_t len)
{
	int r = ssm_wr_rec_hdr(w, SSM_REC_RAW, (uint32_t)len);

	return r < 0 ? r : ssm_wr_emit(w, buf, len);
}

/*
 * Block encoding, shared by the writer's own thread and the page encoders
 * (ssm_put_pages): one block into one record, in a caller's buffer of at
 * least SSM_REC_MAX bytes, with a struct ssm_enc per thread.
 */

/*
 * Whether n bytes hold a repeated 3-byte sequence, the least LZF can make
 * use of: a hash of each position's 3 bytes to the last position with that
 * hash, then a check of the bytes (so a collision is never a repeat).
 * Random bytes have one in 256 bytes with probability about 0.2 %.
 */
static bool ssm_has_repeat(const uint8_t *p, size_t n)
{
	uint16_t last[1u << SSM_REPEAT_HASH_BITS] = {0};  /* position + 1 */

	for (size_t i = 0; i + 3 <= n; i++) {
		uint32_t v = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 |
			     (uint32_t)p[i + 2] << 16;
		uint32_t h = (v * 2654435761u) >> (32 - SSM_REPEAT_HASH_BITS);
		size_t j = last[h];

		if (j && p[j - 1] == p[i] && p[j] == p[i + 1] &&
		    p[j + 1] == p[i + 2])
			return true;
		last[h] = (uint16_t)(i + 1);
	}
	return false;
}

/*
 * Whether to try LZF on a block. LZF takes the same few ns a byte on data
 * it cannot shrink (encrypted, already compressed) as on data it can, so
 * trying it on every such page used to be most of a save's time. It is
 * tried when the block before was stored compressed (compressible data
 * comes in runs), when the last or the first SSM_LZF_PROBE bytes hold a
 * repeat (partly filled pages end in zeros, stacks start in them), and on
 * every SSM_LZF_RETRY-th block regardless, so that data whose repeats are
 * further apart than a probe (a long period) is found within a few
 * blocks.
 */
static bool ssm_lzf_worth_it(struct ssm_enc *e, const uint8_t *p)
{
	if (e->lzf_hit || ++e->lzf_skipped >= SSM_LZF_RETRY ||
	    ssm_has_repeat(p + SSM_BLOCK_SIZE - SSM_LZF_PROBE, SSM_LZF_PROBE) ||
	    ssm_has_repeat(p, SSM_LZF_PROBE)) {
		e->lzf_skipped = 0;
		return true;
	}
	return false;
}

/*
 * One full block as a zero record, an LZF record if that saves enough, or
 * a raw record; returns the record's length. (Block payloads are at most
 * 4097 bytes, which ssm_enc_hdr() always encodes.)
 */
static size_t ssm_enc_block(struct ssm_enc *e, const uint8_t *p, uint8_t *dst)
{
	unsigned clen = 0;
	size_t n;

	if (ssm_all_zero(p, SSM_BLOCK_SIZE)) {
		n = ssm_enc_hdr(dst, SSM_REC_RAW_ZERO, 1);
		dst[n] = SSM_BLOCK_SIZE / 1024;
		return n + 1;
	}
	if (ssm_lzf_worth_it(e, p)) {
		clen = lzf_compress(p, SSM_BLOCK_SIZE, e->lzf, SSM_LZF_MAX);
		e->lzf_hit = clen != 0;
	}
	if (clen == 0) {
		n = ssm_enc_hdr(dst, SSM_REC_RAW, SSM_BLOCK_SIZE);
		memcpy(dst + n, p, SSM_BLOCK_SIZE);
		return n + SSM_BLOCK_SIZE;
	}
	n = ssm_enc_hdr(dst, SSM_REC_RAW_LZF, 1 + clen);
	dst[n] = SSM_BLOCK_SIZE / 1024;
	memcpy(dst + n + 1, e->lzf, clen);
	return n + 1 + clen;
}

/* One full block, encoded straight into the output buffer. */
static int ssm_wr_block(struct ssm_writer *w, const uint8_t *p)
{
	uint8_t *dst;
	size_t n;
	int r;

	if (SSM_OUT_BUF - w->out_len < SSM_REC_MAX) {
		r = ssm_wr_flush_out(w);
		if (r < 0)
			return r;
	}
	dst = w->out + w->out_len;
	n = ssm_enc_block(&w->enc, p, dst);
	w->crc = (uint32_t)crc32(w->crc, dst, (uInt)n);
	w->out_len += n;
	w->off += n;
	return 0;
}

/* Buffered small data out as a raw record. */
static int ssm_wr_flush_data(struct ssm_writer *w)
{
	int r;

	if (w->data_len == 0)
		return 0;
	r = ssm_wr_raw(w, w->data, w->data_len);
	w->data_len = 0;
	return r;
}

static int ssm_wr_check(struct ssm_writer *w)
{
	if (w->err)
		return w->err;
	if (!w->in_unit)
		return ssm_wr_fail(w, -EINVAL, "no unit is open");
	return 0;
}

int ssm_writer_open(const struct ssm_sink *sink, uint32_t flags,
		    struct ssm_writer **out)
{
	uint8_t h[SSM_HDR_SIZE] = {0};
	struct ssm_writer *w;
	int r;

	*out = NULL;
	if (!sink || !sink->write ||
	    (flags & ~(SSM_F_LIVE_SAVE | SSM_F_STREAM_CRC)))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->sink = *sink;
	w->flags = flags | SSM_F_STREAM_CRC;
	w->crc = (uint32_t)crc32(0, Z_NULL, 0);

	memcpy(h, ssm_file_magic, sizeof(ssm_file_magic));
	ssm_le16_put(h + SSM_HDR_VER_MAJOR, SSM_VERSION_MAJOR);
	ssm_le16_put(h + SSM_HDR_VER_MINOR, SSM_VERSION_MINOR);
	ssm_le32_put(h + SSM_HDR_PAGE_SIZE, (uint32_t)sysconf(_SC_PAGESIZE));
	ssm_le32_put(h + SSM_HDR_FLAGS, w->flags);
	ssm_le32_put(h + SSM_HDR_BLOCK_SIZE, SSM_BLOCK_SIZE);
	h[SSM_HDR_HOST_BITS] = (uint8_t)(sizeof(void *) * 8);
	ssm_le32_put(h + SSM_HDR_PRODUCER, SSM_PRODUCER);
	ssm_le32_put(h + SSM_HDR_CRC,
		     ssm_struct_crc(h, sizeof(h), SSM_HDR_CRC));
	r = ssm_wr_emit(w, h, sizeof(h));
	if (r < 0)
		goto out_free;
	*out = w;
	return 0;

out_free:
	free(w);
	return r;
}

/* A unit header (the end unit has name NULL); returns its length. */
static size_t ssm_unit_hdr_encode(uint8_t *h, const char *magic, uint64_t off,
				  uint32_t stream_crc, uint32_t version,
				  uint32_t instance, uint32_t pass,
				  const char *name)
{
	size_t name_len = name ? strlen(name) + 1 : 0;
	size_t len = SSM_UNIT_HDR_SIZE + name_len;

	memset(h, 0, SSM_UNIT_HDR_SIZE);
	memcpy(h, magic, SSM_MAGIC_LEN);
	ssm_le64_put(h + SSM_UH_OFFSET, off);
	ssm_le32_put(h + SSM_UH_STREAM_CRC, stream_crc);
	ssm_le32_put(h + SSM_UH_VERSION, version);
	ssm_le32_put(h + SSM_UH_INSTANCE, instance);
	ssm_le32_put(h + SSM_UH_PASS, pass);
	ssm_le32_put(h + SSM_UH_NAME_LEN, (uint32_t)name_len);
	if (name_len)
		memcpy(h + SSM_UNIT_HDR_SIZE, name, name_len);
	ssm_le32_put(h + SSM_UH_CRC, ssm_struct_crc(h, len, SSM_UH_CRC));
	return len;
}

int ssm_unit_begin(struct ssm_writer *w, const char *name, uint32_t instance,
		   uint32_t version, uint32_t pass)
{
	uint8_t h[SSM_UNIT_HDR_SIZE + SSM_NAME_MAX];
	size_t len, name_len;
	int r;

	if (w->err)
		return w->err;
	if (w->in_unit)
		return ssm_wr_fail(w, -EINVAL,
				   "unit_begin while the unit is open");
	name_len = name ? strnlen(name, SSM_NAME_MAX) : 0;
	if (name_len == 0 || name_len >= SSM_NAME_MAX)
		return ssm_wr_fail(w, -EINVAL,
				   "unit name must have 1 to %u characters",
				   SSM_NAME_MAX - 1);
	for (size_t i = 0; i < name_len; i++)
		if (!ssm_name_char_ok(name[i]))
			return ssm_wr_fail(w, -EINVAL,
					   "unit name holds byte 0x%02x "
					   "(printable ASCII only, no space)",
					   (unsigned char)name[i]);
	if (pass != SSM_PASS_FINAL && !(w->flags & SSM_F_LIVE_SAVE))
		return ssm_wr_fail(
			w, -EINVAL,
			"unit '%s': pass %" PRIu32
			" in a stream opened without SSM_F_LIVE_SAVE",
			name, pass);
	if (pass == SSM_PASS_FINAL) {
		if (w->ndir == w->dir_cap) {
			size_t cap = w->dir_cap ? 2 * w->dir_cap : 32;
			struct ssm_dir_entry *d =
				reallocarray(w->dir, cap, sizeof(*d));

			if (!d)
				return ssm_wr_fail(w, -ENOMEM, "out of memory");
			w->dir = d;
			w->dir_cap = cap;
		}
		w->dir[w->ndir++] = (struct ssm_dir_entry){
			.offset = w->off, .instance = instance,
			.name_crc = ssm_name_crc(name),
		};
	}
	len = ssm_unit_hdr_encode(h, ssm_unit_magic, w->off, w->crc, version,
				  instance, pass, name);
	memcpy(w->name, name, name_len + 1);
	w->instance = instance;
	w->in_unit = true;
	r = ssm_wr_emit(w, h, len);
	w->unit_start = w->off;
	w->data_len = 0;
	return r;
}

/* Small data: into the buffer; a full buffer goes out as a block. */
static int ssm_wr_data(struct ssm_writer *w, const uint8_t *p, size_t len)
{
	int r;

	while (len > 0) {
		size_t n = SSM_BLOCK_SIZE - w->data_len;

		if (n > len)
			n = len;
		memcpy(w->data + w->data_len, p, n);
		w->data_len += n;
		p += n;
		len -= n;
		if (w->data_len == SSM_BLOCK_SIZE) {
			w->data_len = 0;
			r = ssm_wr_block(w, w->data);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int ssm_put_bytes(struct ssm_writer *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int r = ssm_wr_check(w);

	if (r < 0)
		return r;
	if (len < SSM_BLOCK_SIZE)
		return ssm_wr_data(w, p, len);
	/* Large: aligned blocks straight from the caller, the rest buffered. */
	r = ssm_wr_flush_data(w);
	while (r == 0 && len >= SSM_BLOCK_SIZE) {
		r = ssm_wr_block(w, p);
		p += SSM_BLOCK_SIZE;
		len -= SSM_BLOCK_SIZE;
	}
	if (r == 0)
		r = ssm_wr_data(w, p, len);
	return r;
}

int ssm_put_page(struct ssm_writer *w, const void *page)
{
	int r = ssm_wr_check(w);

	if (r == 0)
		r = ssm_wr_flush_data(w);
	if (r == 0)
		r = ssm_wr_block(w, page);
	return r;
}

/* ---- page encoders ------------------------------------------------------ */

/*
 * ssm_put_pages() with helpers: the run is cut into batches of
 * SSM_BATCH_PAGES pages, which the helpers and the calling thread encode
 * (records, and each batch's own CRC) into slots in parallel, while the
 * calling thread writes finished batches to the sink in order and folds
 * their CRCs into the stream's with crc32_combine(). Batch i goes to slot
 * i % nslots, so it may be claimed once batch i - nslots is written.
 * Encoding the bytes is the same function as without helpers, so the
 * stream is the same whichever thread made it, but for LZF's choices at
 * each batch's start (ssm_lzf_worth_it() tries the first block in full).
 */
#define SSM_BATCH_PAGES 32u
#define SSM_BATCH_BYTES (SSM_BATCH_PAGES * SSM_REC_MAX)
/* A helper's stack: Debian's lzf_compress() keeps 512 KiB on it. */
#define SSM_HELPER_STACK (2u << 20)

enum ssm_slot_state { SSM_SLOT_FREE, SSM_SLOT_BUSY, SSM_SLOT_DONE };

struct ssm_slot {
	enum ssm_slot_state state;
	uint32_t crc;             /* CRC32 of buf[0, len) alone */
	size_t len;
	uint8_t *buf;             /* SSM_BATCH_BYTES */
};

struct ssm_pool {
	pthread_mutex_t lock;
	pthread_cond_t cv;        /* broadcast on every change below */
	bool quit;
	unsigned nhelpers, nslots;
	pthread_t helper[SSM_MAX_ENCODERS];
	struct ssm_slot slot[2 * SSM_MAX_ENCODERS];
	/* The run being written; base is NULL between runs. */
	const uint8_t *base;
	size_t count, nbatches, claimed, written;
};

static bool ssm_pool_can_claim(const struct ssm_pool *p)
{
	return p->base && p->claimed < p->nbatches &&
	       p->claimed < p->written + p->nslots;
}

/* Encode batch i into its slot, without the lock (the slot is ours). */
static void ssm_pool_encode(struct ssm_pool *p, size_t i, struct ssm_enc *e)
{
	struct ssm_slot *sl = &p->slot[i % p->nslots];
	size_t first = i * SSM_BATCH_PAGES, n = p->count - first, len = 0;

	if (n > SSM_BATCH_PAGES)
		n = SSM_BATCH_PAGES;
	/* A batch starts with a full attempt at LZF. */
	e->lzf_hit = false;
	e->lzf_skipped = SSM_LZF_RETRY - 1;
	for (size_t k = 0; k < n; k++)
		len += ssm_enc_block(e, p->base + (first + k) * SSM_BLOCK_SIZE,
				     sl->buf + len);
	sl->len = len;
	sl->crc = (uint32_t)crc32(0, sl->buf, (uInt)len);
}

/* Claim the next batch and encode it; called and returns with the lock. */
static void ssm_pool_work(struct ssm_pool *p, struct ssm_enc *e)
{
	size_t i = p->claimed++;

	p->slot[i % p->nslots].state = SSM_SLOT_BUSY;
	pthread_mutex_unlock(&p->lock);
	ssm_pool_encode(p, i, e);
	pthread_mutex_lock(&p->lock);
	p->slot[i % p->nslots].state = SSM_SLOT_DONE;
	pthread_cond_broadcast(&p->cv);
}

static void *ssm_pool_helper(void *arg)
{
	struct ssm_pool *p = arg;
	struct ssm_enc e;

	pthread_mutex_lock(&p->lock);
	while (!p->quit) {
		if (ssm_pool_can_claim(p))
			ssm_pool_work(p, &e);
		else
			pthread_cond_wait(&p->cv, &p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static void ssm_pool_free(struct ssm_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->quit = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nhelpers; i++)
		pthread_join(p->helper[i], NULL);
	for (unsigned i = 0; i < p->nslots; i++)
		free(p->slot[i].buf);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int ssm_writer_set_threads(struct ssm_writer *w, unsigned n)
{
	struct ssm_pool *p;
	pthread_attr_t attr;
	sigset_t all, old;
	int r = 0;

	if (w->pool)
		return -EBUSY;
	if (n > SSM_MAX_ENCODERS)
		n = SSM_MAX_ENCODERS;
	if (n < 2)
		return 1;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->nslots = 2 * n;
	for (unsigned i = 0; i < p->nslots; i++) {
		p->slot[i].buf = malloc(SSM_BATCH_BYTES);
		if (!p->slot[i].buf) {
			ssm_pool_free(p);
			return -ENOMEM;
		}
	}
	/* Helpers take no signals: those are the caller's business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, SSM_HELPER_STACK);
	for (unsigned i = 0; i + 1 < n; i++) {
		r = -pthread_create(&p->helper[i], &attr, ssm_pool_helper, p);
		if (r < 0)
			break;
		p->nhelpers++;
	}
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (p->nhelpers == 0) {
		ssm_pool_free(p);
		return r;
	}
	w->pool = p;
	return (int)p->nhelpers + 1;
}

/* A finished batch to the sink; its CRC joins the stream's. */
static int ssm_wr_batch(struct ssm_writer *w, const struct ssm_slot *sl)
{
	int r = w->sink.write(w->sink.ctx, sl->buf, sl->len);

	if (r < 0)
		return ssm_wr_fail(w, r, "write error: %s", strerror(-r));
	w->crc = (uint32_t)crc32_combine(w->crc, sl->crc, (z_off_t)sl->len);
	w->off += sl->len;
	return 0;
}

/* The run through the pool (the output buffer is empty). */
static int ssm_pool_run(struct ssm_writer *w, const uint8_t *base,
			size_t count)
{
	struct ssm_pool *p = w->pool;
	int r = 0;

	pthread_mutex_lock(&p->lock);
	p->base = base;
	p->count = count;
	p->nbatches = (count + SSM_BATCH_PAGES - 1) / SSM_BATCH_PAGES;
	p->claimed = p->written = 0;
	for (unsigned i = 0; i < p->nslots; i++)
		p->slot[i].state = SSM_SLOT_FREE;
	pthread_cond_broadcast(&p->cv);
	while (p->written < p->nbatches) {
		struct ssm_slot *sl = &p->slot[p->written % p->nslots];

		if (sl->state == SSM_SLOT_DONE) {
			/* After a failed write nothing more goes out: the
			 * batches encoded meanwhile are dropped. */
			if (r == 0) {
				pthread_mutex_unlock(&p->lock);
				r = ssm_wr_batch(w, sl);
				pthread_mutex_lock(&p->lock);
			}
			sl->state = SSM_SLOT_FREE;
			p->written++;
			if (r < 0)
				p->nbatches = p->claimed;  /* claim no more */
			pthread_cond_broadcast(&p->cv);
		} else if (ssm_pool_can_claim(p)) {
			ssm_pool_work(p, &w->enc);
		} else if (r < 0) {
			break;
		} else {
			pthread_cond_wait(&p->cv, &p->lock);
		}
	}
	/* After a failure: helpers may still be encoding from base. */
	for (unsigned i = 0; i < p->nslots; i++)
		while (p->slot[i].state == SSM_SLOT_BUSY)
			pthread_cond_wait(&p->cv, &p->lock);
	p->base = NULL;
	pthread_mutex_unlock(&p->lock);
	return r;
}

int ssm_put_pages(struct ssm_writer *w, const void *pages, size_t count)
{
	const uint8_t *base = pages;
	int r = ssm_wr_check(w);

	if (r == 0)
		r = ssm_wr_flush_data(w);
	if (r < 0)
		return r;
	if (!w->pool || count < 2 * SSM_BATCH_PAGES) {
		for (size_t k = 0; r == 0 && k < count; k++)
			r = ssm_wr_block(w, base + k * SSM_BLOCK_SIZE);
		return r;
	}
	r = ssm_wr_flush_out(w);
	return r < 0 ? r : ssm_pool_run(w, base, count);
}

int ssm_put_u8(struct ssm_writer *w, uint8_t v)
{
	int r = ssm_wr_check(w);

	return r < 0 ? r : ssm_wr_data(w, &v, 1);
}

int ssm_put_u16(struct ssm_writer *w, uint16_t v)
{
	uint8_t b[2];
	int r = ssm_wr_check(w);

	ssm_le16_put(b, v);
	return r < 0 ? r : ssm_wr_data(w, b, sizeof(b));
}

int ssm_put_u32(struct ssm_writer *w, uint32_t v)
{
	uint8_t b[4];
	int r = ssm_wr_check(w);

	ssm_le32_put(b, v);
	return r < 0 ? r : ssm_wr_data(w, b, sizeof(b));
}

int ssm_put_u64(struct ssm_writer *w, uint64_t v)
{
	uint8_t b[8];
	int r = ssm_wr_check(w);

	ssm_le64_put(b, v);
	return r < 0 ? r : ssm_wr_data(w, b, sizeof(b));
}

int ssm_put_s32(struct ssm_writer *w, int32_t v)
{
	return ssm_put_u32(w, (uint32_t)v);
}

int ssm_put_s64(struct ssm_writer *w, int64_t v)
{
	return ssm_put_u64(w, (uint64_t)v);
}

int ssm_put_bool(struct ssm_writer *w, bool v)
{
	return ssm_put_u8(w, v ? 1 : 0);
}

int ssm_put_blob(struct ssm_writer *w, const void *buf, size_t len)
{
	int r;

	if (len > UINT32_MAX)
		return ssm_wr_fail(w, -EINVAL, "%zu bytes are too many for one "
				   "string or blob", len);
	r = ssm_put_u32(w, (uint32_t)len);
	return r < 0 ? r : ssm_put_bytes(w, buf, len);
}

int ssm_put_str(struct ssm_writer *w, const char *s)
{
	return ssm_put_blob(w, s, strlen(s));
}

/* The terminator: type, size, flags, CRC up to here, unit size. */
static int ssm_wr_term(struct ssm_writer *w)
{
	uint8_t t[SSM_TERM_SIZE];
	uint32_t crc;
	int r;

	t[0] = SSM_REC_MAGIC | SSM_REC_IMPORTANT | SSM_REC_TERM;
	t[1] = SSM_TERM_PAYLOAD;
	ssm_le16_put(t + SSM_TERM_FLAGS, SSM_TERM_F_CRC);
	r = ssm_wr_emit(w, t, SSM_TERM_STREAM_CRC);
	if (r < 0)
		return r;
	crc = w->crc;
	ssm_le32_put(t + SSM_TERM_STREAM_CRC, crc);
	ssm_le64_put(t + SSM_TERM_UNIT_SIZE,
		     w->off + SSM_TERM_SIZE - SSM_TERM_STREAM_CRC - w->unit_start);
	/*
	 * The CRC field itself stays out of the running CRC: a CRC32 followed
	 * by the CRC of what precedes it leaves a constant register, and the
	 * running CRC would forget everything before each terminator (a unit
	 * spliced from another stream at the same offset would pass).
	 */
	r = ssm_wr_emit(w, t + SSM_TERM_STREAM_CRC, 4);
	w->crc = crc;
	return r < 0 ? r : ssm_wr_emit(w, t + SSM_TERM_UNIT_SIZE, 8);
}

int ssm_unit_end(struct ssm_writer *w)
{
	int r = ssm_wr_check(w);

	if (r == 0)
		r = ssm_wr_flush_data(w);
	if (r == 0)
		r = ssm_wr_term(w);
	if (r == 0)
		r = ssm_wr_flush_out(w);
	if (r == 0)
		w->in_unit = false;
	return r;
}

uint64_t ssm_writer_offset(const struct ssm_writer *w)
{
	return w->off;
}

const char *ssm_writer_error(const struct ssm_writer *w)
{
	return w->errmsg;
}

static int ssm_wr_directory(struct ssm_writer *w)
{
	uint8_t d[SSM_DIR_HDR_SIZE] = {0}, e[SSM_DIR_ENTRY_SIZE];
	uint32_t c;
	int r;

	if (w->ndir > UINT32_MAX)
		return ssm_wr_fail(w, -E2BIG,
				   "too many units for the directory");
	memcpy(d, ssm_dir_magic, SSM_MAGIC_LEN);
	ssm_le32_put(d + SSM_DIR_COUNT, (uint32_t)w->ndir);
	/* The CRC field is still 0 here. */
	c = (uint32_t)crc32(crc32(0, Z_NULL, 0), d, sizeof(d));
	for (size_t i = 0; i < w->ndir; i++) {
		ssm_dir_entry_encode(e, w->dir[i].offset, w->dir[i].instance,
				     w->dir[i].name_crc);
		c = (uint32_t)crc32(c, e, sizeof(e));
	}
	ssm_le32_put(d + SSM_DIR_CRC, c);
	r = ssm_wr_emit(w, d, sizeof(d));
	for (size_t i = 0; r == 0 && i < w->ndir; i++) {
		ssm_dir_entry_encode(e, w->dir[i].offset, w->dir[i].instance,
				     w->dir[i].name_crc);
		r = ssm_wr_emit(w, e, sizeof(e));
	}
	return r;
}

static int ssm_wr_footer(struct ssm_writer *w)
{
	uint8_t f[SSM_FOOTER_SIZE] = {0};

	memcpy(f, ssm_footer_magic, SSM_MAGIC_LEN);
	ssm_le64_put(f + SSM_FT_OFFSET, w->off);
	ssm_le32_put(f + SSM_FT_STREAM_CRC, w->crc);
	ssm_le32_put(f + SSM_FT_COUNT, (uint32_t)w->ndir);
	ssm_le32_put(f + SSM_FT_CRC,
		     ssm_struct_crc(f, sizeof(f), SSM_FT_CRC));
	return ssm_wr_emit(w, f, sizeof(f));
}

int ssm_writer_close(struct ssm_writer *w)
{
	uint8_t h[SSM_UNIT_HDR_SIZE];
	int r;

	if (!w)
		return 0;
	r = w->err;
	if (r == 0 && w->in_unit)
		r = ssm_wr_fail(w, -EINVAL, "closed with the unit still open");
	if (r == 0) {
		ssm_unit_hdr_encode(h, ssm_end_magic, w->off, w->crc, 0, 0,
				    SSM_PASS_FINAL, NULL);
		r = ssm_wr_emit(w, h, sizeof(h));
	}
	if (r == 0)
		r = ssm_wr_directory(w);
	if (r == 0)
		r = ssm_wr_footer(w);
	if (r == 0)
		r = ssm_wr_flush_out(w);
	ssm_pool_free(w->pool);
	free(w->dir);
	free(w);
	return r;
}

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
		n = r->in_len - r->in_pos;
		if (n > len)
			n = len;
		if (d) {
			memcpy(d, r->in + r->in_pos, n);
			d += n;
		}
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

static int ssm_rd_directory(struct ssm_reader *r)
{
	uint8_t d[SSM_DIR_HDR_SIZE], e[SSM_DIR_ENTRY_SIZE];
	uint64_t dir_off = r->off, prev = 0, bad_off = 0;
	uint32_t stored, count, c, expect;
	int64_t bad = -1;
	int rc;

	r->ctx = SSM_CTX_DIR;
	rc = ssm_rd_in(r, d, sizeof(d));
	if (rc < 0)
		return rc;
	if (memcmp(d, ssm_dir_magic, SSM_MAGIC_LEN) != 0)
		return ssm_rd_fail(r, -EBADMSG, dir_off, "bad magic");
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
	if (c != stored)
		return ssm_rd_fail(r, -EBADMSG, dir_off + SSM_DIR_CRC,
				   "CRC mismatch (stored 0x%08" PRIx32
				   ", computed 0x%08" PRIx32 ")", stored, c);
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

	r->ctx = SSM_CTX_FOOTER;
	rc = ssm_rd_in(r, f, sizeof(f));
	if (rc < 0)
		return rc;
	if (memcmp(f, ssm_footer_magic, SSM_MAGIC_LEN) != 0)
		return ssm_rd_fail(r, -EBADMSG, foff, "bad magic");
	c = ssm_struct_crc(f, sizeof(f), SSM_FT_CRC);
	if (ssm_le32(f + SSM_FT_CRC) != c)
		return ssm_rd_fail(r, -EBADMSG, foff + SSM_FT_CRC,
				   "CRC mismatch (stored 0x%08" PRIx32
				   ", computed 0x%08" PRIx32 ")",
				   ssm_le32(f + SSM_FT_CRC), c);
	if (ssm_le64(f + SSM_FT_OFFSET) != foff)
		return ssm_rd_fail(r, -EBADMSG, foff + SSM_FT_OFFSET,
				   "says offset 0x%" PRIx64,
				   ssm_le64(f + SSM_FT_OFFSET));
	if (ssm_le32(f + SSM_FT_STREAM_CRC) != stream_crc)
		return ssm_rd_fail(r, -EBADMSG, foff + SSM_FT_STREAM_CRC,
				   "stream CRC mismatch (stored 0x%08" PRIx32
				   ", computed 0x%08" PRIx32 ")",
				   ssm_le32(f + SSM_FT_STREAM_CRC), stream_crc);
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

int ssm_reader_next_unit(struct ssm_reader *r, struct ssm_unit_info *info)
{
	uint8_t h[SSM_UNIT_HDR_SIZE + SSM_NAME_MAX];
	uint64_t hoff = r->off;
	uint32_t stream_crc = r->crc, name_len, flags, c;
	struct ssm_unit_info u = {0};
	bool end;
	int rc;

	if (r->err)
		return r->err;
	if (r->state == SSM_RS_DONE)
		return 1;
	if (r->state != SSM_RS_UNITS)
		return ssm_rd_fail(r, -EINVAL, r->off, "next_unit before the "
				   "current unit was finished or skipped");
	r->ctx = SSM_CTX_UNIT_HDR;
	rc = ssm_rd_in(r, h, SSM_UNIT_HDR_SIZE);
	if (rc < 0)
		return rc;
	end = memcmp(h, ssm_end_magic, SSM_MAGIC_LEN) == 0;
	if (!end && memcmp(h, ssm_unit_magic, SSM_MAGIC_LEN) != 0)
		return ssm_rd_fail(r, -EBADMSG, hoff, "bad magic");
	name_len = ssm_le32(h + SSM_UH_NAME_LEN);
	if (end ? name_len != 0 : (name_len < 2 || name_len > SSM_NAME_MAX))
		return ssm_rd_fail(r, -EBADMSG, hoff + SSM_UH_NAME_LEN,
				   "name length %" PRIu32 " (want %s)",
				   name_len,
				   end ? "0 in the end unit" : "2 to 48");
	rc = ssm_rd_in(r, h + SSM_UNIT_HDR_SIZE, name_len);
	if (rc < 0)
		return rc;
	c = ssm_struct_crc(h, SSM_UNIT_HDR_SIZE + name_len, SSM_UH_CRC);
	if (ssm_le32(h + SSM_UH_CRC) != c)
		return ssm_rd_fail(r, -EBADMSG, hoff + SSM_UH_CRC,
				   "CRC mismatch (stored 0x%08" PRIx32
				   ", computed 0x%08" PRIx32 ")",
				   ssm_le32(h + SSM_UH_CRC), c);
	if (ssm_le64(h + SSM_UH_OFFSET) != hoff)
		return ssm_rd_fail(r, -EBADMSG, hoff + SSM_UH_OFFSET,
				   "says offset 0x%" PRIx64
				   " (spliced or shifted stream)",
				   ssm_le64(h + SSM_UH_OFFSET));
	if (ssm_le32(h + SSM_UH_STREAM_CRC) != stream_crc)
		return ssm_rd_fail(r, -EBADMSG, hoff + SSM_UH_STREAM_CRC,
				   "running CRC mismatch (stored 0x%08" PRIx32
				   ", computed 0x%08" PRIx32 ")",
				   ssm_le32(h + SSM_UH_STREAM_CRC), stream_crc);
	flags = ssm_le32(h + SSM_UH_FLAGS);
	if (flags != 0)
		return ssm_rd_fail(r, -ENOTSUP, hoff + SSM_UH_FLAGS,
				   "unknown flags 0x%08" PRIx32, flags);
	u.version = ssm_le32(h + SSM_UH_VERSION);
	u.instance = ssm_le32(h + SSM_UH_INSTANCE);
	u.pass = ssm_le32(h + SSM_UH_PASS);
	u.offset = hoff;
	if (end) {
		if (u.version || u.instance || u.pass != SSM_PASS_FINAL)
			return ssm_rd_fail(r, -EBADMSG, hoff, "end unit with "
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
	for (uint32_t i = 0; i < name_len - 1; i++) {
		char ch = (char)h[SSM_UNIT_HDR_SIZE + i];

		if (!ssm_name_char_ok(ch))
			return ssm_rd_fail(r, -EBADMSG,
					   hoff + SSM_UNIT_HDR_SIZE + i,
					   "unit name holds byte 0x%02x",
					   (unsigned char)ch);
		u.name[i] = ch;
	}
	if (h[SSM_UNIT_HDR_SIZE + name_len - 1] != 0)
		return ssm_rd_fail(r, -EBADMSG,
				   hoff + SSM_UNIT_HDR_SIZE + name_len - 1,
				   "unit name not NUL-terminated");
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

/*
 * Read the next record. A data record leaves its data in blk[] (LZF, zero)
 * or raw_left; a terminator sets *term and leaves its payload unread;
 * unknown unimportant records are skipped.
 */
static int ssm_rd_next_record(struct ssm_reader *r, bool *term)
{
	uint8_t tb = 0;
	uint32_t size;
	size_t bytes;
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
		case SSM_REC_RAW_LZF: {
			unsigned got;

			if (size < 2)
				return ssm_rd_fail(r, -EBADMSG, r->rec_off,
						   "LZF record of %" PRIu32
						   " bytes is too short", size);
			rc = ssm_rd_kib(r, &bytes);
			if (rc == 0)
				rc = ssm_rd_in(r, r->lzf, size - 1);
			if (rc < 0)
				return rc;
			got = lzf_decompress(r->lzf, size - 1, r->blk,
					     (unsigned)bytes);
			if (got != bytes)
				return ssm_rd_fail(
					r, -EBADMSG, r->rec_off,
					"LZF data does not decompress "
					"to the 0x%zx bytes claimed",
					bytes);
			r->blk_pos = 0;
			r->blk_len = bytes;
			r->stats.data_bytes += bytes;
			return 0;
		}
		case SSM_REC_RAW_ZERO:
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
			n = r->blk_len - r->blk_pos;
			if (n > len)
				n = len;
			if (dst) {
				memcpy(dst, r->blk + r->blk_pos, n);
				dst += n;
			}
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

int ssm_get_u16(struct ssm_reader *r, uint16_t *v)
{
	uint8_t b[2];
	int rc = ssm_rd_data(r, b, sizeof(b));

	if (rc == 0)
		*v = ssm_le16(b);
	return rc;
}

int ssm_get_u32(struct ssm_reader *r, uint32_t *v)
{
	uint8_t b[4];
	int rc = ssm_rd_data(r, b, sizeof(b));

	if (rc == 0)
		*v = ssm_le32(b);
	return rc;
}

int ssm_get_u64(struct ssm_reader *r, uint64_t *v)
{
	uint8_t b[8];
	int rc = ssm_rd_data(r, b, sizeof(b));

	if (rc == 0)
		*v = ssm_le64(b);
	return rc;
}

int ssm_get_s32(struct ssm_reader *r, int32_t *v)
{
	uint32_t u;
	int rc = ssm_get_u32(r, &u);

	if (rc == 0)
		*v = (int32_t)u;
	return rc;
}

int ssm_get_s64(struct ssm_reader *r, int64_t *v)
{
	uint64_t u;
	int rc = ssm_get_u64(r, &u);

	if (rc == 0)
		*v = (int64_t)u;
	return rc;
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
