/* SPDX-License-Identifier: MIT */
/*
 * ssm_write.c: the saved-state stream writer. The format is in
 * docs/ssm-format.md; the API in ssm.h.
 *
 * Writer: header, then per unit a header, records and a terminator, then
 * the end unit, the directory and the footer. Output goes through a buffer
 * to the sink; the running CRC32 covers every byte from offset 0. Small
 * writes collect in a 4 KiB data buffer: a full buffer goes out as a block
 * (zero, LZF or raw record), a partial one as a raw record when the unit
 * ends or before a page or large write.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <liblzf/lzf.h>
#include <zlib.h>

#include "emt-worker/ssm_int.h"

#define SSM_PRODUCER 1u         /* bumped when the writer changes behaviour */
#define SSM_OUT_BUF (64u * 1024)
#define SSM_LZF_PROBE 256u      /* bytes at each end checked for repeats */
#define SSM_REPEAT_HASH_BITS 10u
#define SSM_LZF_RETRY 32u       /* try every this many blocks regardless */
/* The longest block record: magic, a 3-byte size, a raw block. */
#define SSM_REC_MAX (1u + 3u + SSM_BLOCK_SIZE)

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

/* Up to len bytes from p into buf, which holds *used of cap; returns how
 * many. */
static size_t ssm_wr_copy(uint8_t *buf, size_t *used, size_t cap,
			  const uint8_t *p, size_t len)
{
	size_t n = cap - *used;

	if (n > len)
		n = len;
	memcpy(buf + *used, p, n);
	*used += n;
	return n;
}

/* Append bytes to the stream: CRC, offset, output buffer. */
static int ssm_wr_emit(struct ssm_writer *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	int r;

	while (len > 0) {
		size_t n = ssm_wr_copy(w->out, &w->out_len, SSM_OUT_BUF,
				       p, len);

		w->crc = (uint32_t)crc32(w->crc, p, (uInt)n);
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
		size_t n = ssm_wr_copy(w->data, &w->data_len, SSM_BLOCK_SIZE,
				       p, len);

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

/* v as a little-endian integer of n (2, 4 or 8) bytes. */
static int ssm_wr_le(struct ssm_writer *w, uint64_t v, size_t n)
{
	uint8_t b[8];
	int r = ssm_wr_check(w);

	if (n == 2)
		ssm_le16_put(b, (uint16_t)v);
	else if (n == 4)
		ssm_le32_put(b, (uint32_t)v);
	else
		ssm_le64_put(b, v);
	return r < 0 ? r : ssm_wr_data(w, b, n);
}

int ssm_put_u16(struct ssm_writer *w, uint16_t v)
{
	return ssm_wr_le(w, v, sizeof(v));
}

int ssm_put_u32(struct ssm_writer *w, uint32_t v)
{
	return ssm_wr_le(w, v, sizeof(v));
}

int ssm_put_u64(struct ssm_writer *w, uint64_t v)
{
	return ssm_wr_le(w, v, sizeof(v));
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
