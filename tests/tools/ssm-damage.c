/* SPDX-License-Identifier: MIT */
/*
 * ssm-damage: damaged copies of a saved-state stream, and a check of
 * streams through the project's own reader, for
 * tests/integration/test_saved_state_hostile.sh.
 *
 *   ssm-damage --out DIR A1 A2 B
 *   ssm-damage --check FILE...
 *
 * --out: A1 and A2 are two final saves of one VM, B a save of another
 * guest with the same VM options. The layout of each (header, units with
 * their first record and terminator, end unit, directory, footer) is found
 * by walking the bytes here, every step bounds-checked, and must agree with
 * what the reader (emt-worker/ssm_read.c) reports for the same file; a stream
 * that is not intact, not a final save, or that the two disagree on is
 * refused (status 1). Then every case is written to DIR:
 *
 *   - one bit flipped in every field of the header, of every unit's
 *     header, first record, data and terminator, of the end unit, of every
 *     directory entry and of the footer (the bit rotates from case to case);
 *   - truncations inside the header, at and inside every part of every
 *     unit, and all through the end unit, directory and footer;
 *   - splices: each unit replaced by the same unit of A2 (a later save of
 *     the same VM) and of B (another guest), neighbours swapped, each unit
 *     dropped and repeated, A1 continued from each unit on by A2 and by B,
 *     and the header, end unit, directory or footer taken from A2 or B.
 *     A splice whose bytes equal A1, A2 or B (say, a unit that did not
 *     change between the saves) is no damage: it is left out and counted.
 *
 * DIR/NNNN.sav is a case and DIR/NNNN.sav.what says what was done to it
 * (one line). DIR/real.list names the representative subset that the test
 * also restores with the real binaries (sd_choose_real): a case of each
 * category, and one of each kind (flip, truncation, splice) in each unit
 * and in the header, end unit, directory and footer. Nothing is random:
 * the same three streams give the same cases, byte for byte, and the same
 * subset. The layout and the counts per category go to stdout.
 *
 * --check: each FILE through ssm_validate(), the reader the worker uses,
 * from a file descriptor as the worker reads it; one line per FILE,
 * "FILE: refused: MESSAGE" or "FILE: accepted". The verdict is the
 * caller's.
 *
 * Exit status: 0 done, 1 an input stream is not usable (--out), 2 usage,
 * 4 a file could not be read or written. Names here start with sd_.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "emt-worker/ssm.h"

#define SD_MAX_UNITS 64u
#define SD_MAX_LEN (256u << 20) /* bound on an input stream's size */
#define SD_DESC_LEN 256u

/* ---- the layout of one stream -------------------------------------------- */

struct sd_unit {
	char name[SSM_NAME_MAX];
	uint32_t instance;
	size_t off;      /* unit header */
	size_t rec;      /* first record, after the name */
	size_t rec_data; /* the first record's payload */
	size_t term;     /* the terminator's type byte */
	size_t end;      /* one past the terminator */
};

struct sd_stream {
	const char *path;
	uint8_t *data;
	size_t len;
	struct sd_unit unit[SD_MAX_UNITS];
	unsigned nunits;
	size_t end_unit, dir, footer;
};

static uint32_t sd_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

__attribute__((format(printf, 3, 4)))
static int sd_bad(const struct sd_stream *s, size_t off, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ssm-damage: %s at offset 0x%zx: ", s->path, off);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -EBADMSG;
}

static int sd_read_file(const char *path, uint8_t **out, size_t *len)
{
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t got;

		if (n == cap) {
			uint8_t *nb;

			if (cap >= SD_MAX_LEN) {
				r = -EFBIG;
				goto out_close;
			}
			nb = realloc(buf, cap ? cap * 2 : 1 << 16);
			if (!nb) {
				r = -ENOMEM;
				goto out_close;
			}
			buf = nb;
			cap = cap ? cap * 2 : 1 << 16;
		}
		got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = -errno;
			goto out_close;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
out_close:
	close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* The records of the unit at u->rec, up to and including its terminator. */
static int sd_walk_records(const struct sd_stream *s, struct sd_unit *u)
{
	size_t p = u->rec;

	for (;;) {
		uint32_t size;
		size_t used;
		uint8_t b;
		int r;

		if (p >= s->len)
			return sd_bad(s, p, "unit '%s' runs past the end",
				      u->name);
		b = s->data[p];
		if ((b & 0xe0) != SSM_REC_MAGIC)
			return sd_bad(s, p, "record type byte 0x%02x", b);
		r = ssm_size_decode(s->data + p + 1, s->len - p - 1, &size,
				    &used);
		if (r < 0 || size > SSM_BLOCK_SIZE)
			return sd_bad(s, p, "bad record size");
		if (size > s->len - p - 1 - used)
			return sd_bad(s, p, "record runs past the end");
		if (p == u->rec)
			u->rec_data = p + 1 + used;
		if ((b & SSM_REC_TYPE_MASK) == SSM_REC_TERM) {
			if (size != SSM_TERM_PAYLOAD || used != 1)
				return sd_bad(s, p, "terminator of %" PRIu32
					      " bytes", size);
			u->term = p;
			u->end = p + SSM_TERM_SIZE;
			return 0;
		}
		p += 1 + used + size;
	}
}

/* Header, units, end unit, directory, footer: found by walking the bytes. */
static int sd_walk(struct sd_stream *s)
{
	size_t p = SSM_HDR_SIZE, n;
	uint32_t count;
	int r;

	if (s->len < SSM_HDR_SIZE ||
	    memcmp(s->data, SSM_FILE_MAGIC, sizeof(SSM_FILE_MAGIC) - 1) != 0)
		return sd_bad(s, 0, "not a Bulkhead saved state");
	for (;;) {
		const uint8_t *h = s->data + p;
		struct sd_unit *u;
		uint32_t nlen;

		if (s->len - p < SSM_UNIT_HDR_SIZE)
			return sd_bad(s, p, "no room for a unit header");
		if (memcmp(h, SSM_END_MAGIC, SSM_MAGIC_LEN) == 0)
			break;
		if (memcmp(h, SSM_UNIT_MAGIC, SSM_MAGIC_LEN) != 0)
			return sd_bad(s, p, "no unit magic");
		if (s->nunits == SD_MAX_UNITS)
			return sd_bad(s, p, "more than %u units", SD_MAX_UNITS);
		nlen = sd_le32(h + SSM_UH_NAME_LEN);
		if (nlen < 2 || nlen > SSM_NAME_MAX ||
		    nlen > s->len - p - SSM_UNIT_HDR_SIZE ||
		    h[SSM_UNIT_HDR_SIZE + nlen - 1] != '\0')
			return sd_bad(s, p, "bad unit name");
		if (sd_le32(h + SSM_UH_PASS) != SSM_PASS_FINAL)
			return sd_bad(s, p, "not a final pass (a live save?)");
		u = &s->unit[s->nunits++];
		memcpy(u->name, h + SSM_UNIT_HDR_SIZE, nlen);
		for (n = 0; n + 1 < nlen; n++)
			if (u->name[n] < 0x21 || u->name[n] > 0x7e)
				return sd_bad(s, p, "bad unit name");
		u->instance = sd_le32(h + SSM_UH_INSTANCE);
		u->off = p;
		u->rec = p + SSM_UNIT_HDR_SIZE + nlen;
		r = sd_walk_records(s, u);
		if (r < 0)
			return r;
		if (u->rec_data >= u->term)
			return sd_bad(s, p, "unit '%s' holds no data", u->name);
		p = u->end;
	}
	s->end_unit = p;
	s->dir = p + SSM_UNIT_HDR_SIZE;
	if (s->len - s->dir < SSM_DIR_HDR_SIZE ||
	    memcmp(s->data + s->dir, SSM_DIR_MAGIC, SSM_MAGIC_LEN) != 0)
		return sd_bad(s, s->dir, "no directory");
	count = sd_le32(s->data + s->dir + SSM_DIR_COUNT);
	if (count != s->nunits)
		return sd_bad(s, s->dir, "directory of %" PRIu32 " entries for "
			      "%u units", count, s->nunits);
	s->footer = s->dir + SSM_DIR_HDR_SIZE + SSM_DIR_ENTRY_SIZE * count;
	if (s->footer > s->len || s->len - s->footer != SSM_FOOTER_SIZE ||
	    memcmp(s->data + s->footer, SSM_FOOTER_MAGIC, SSM_MAGIC_LEN) != 0)
		return sd_bad(s, s->footer, "no footer, or bytes after it");
	return 0;
}

/* The reader must find the same units, and the stream intact. */
static int sd_check_layout(const struct sd_stream *s)
{
	struct ssm_mem m = { .data = s->data, .len = s->len };
	struct ssm_source src = { ssm_mem_read, &m };
	struct ssm_reader *r;
	struct ssm_unit_info ui;
	struct ssm_unit_stats st;
	char err[256];
	unsigned i = 0;
	int rc;

	rc = ssm_reader_open(&src, &r, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "ssm-damage: %s is not intact: %s\n", s->path,
			err);
		return rc;
	}
	while ((rc = ssm_reader_next_unit(r, &ui)) == 0) {
		const struct sd_unit *u = &s->unit[i];

		rc = ssm_unit_skip(r);
		if (rc < 0)
			break;
		ssm_reader_unit_stats(r, &st);
		if (i == s->nunits || ui.offset != u->off ||
		    strcmp(ui.name, u->name) != 0 ||
		    ui.instance != u->instance ||
		    st.stream_bytes != u->end - u->rec) {
			ssm_reader_close(r);
			return sd_bad(s, ui.offset, "the reader sees unit '%s' "
				      "instance %" PRIu32 " (%" PRIu64 " bytes "
				      "of records), not what ssm-damage found",
				      ui.name, ui.instance, st.stream_bytes);
		}
		i++;
	}
	if (rc < 0) {
		fprintf(stderr, "ssm-damage: %s is not intact: %s\n", s->path,
			ssm_reader_error(r));
		ssm_reader_close(r);
		return rc;
	}
	ssm_reader_close(r);
	if (i != s->nunits)
		return sd_bad(s, s->end_unit, "the reader sees %u units, "
			      "ssm-damage %u", i, s->nunits);
	return 0;
}

static const struct sd_unit *sd_find(const struct sd_stream *s,
				     const struct sd_unit *like)
{
	for (unsigned i = 0; i < s->nunits; i++)
		if (strcmp(s->unit[i].name, like->name) == 0 &&
		    s->unit[i].instance == like->instance)
			return &s->unit[i];
	return NULL;
}

/* ---- cases --------------------------------------------------------------- */

enum sd_kind { SD_FLIP, SD_CUT, SD_SPLICE, SD_KINDS };

enum sd_cat {
	SD_FLIP_HEADER, SD_FLIP_UNIT_HDR, SD_FLIP_RECORD, SD_FLIP_DATA,
	SD_FLIP_TERM, SD_FLIP_END, SD_FLIP_DIR, SD_FLIP_FOOTER,
	SD_CUT_HEADER, SD_CUT_UNIT, SD_CUT_TAIL,
	SD_SPLICE_LATER, SD_SPLICE_OTHER, SD_SPLICE_SWAP, SD_SPLICE_DROP,
	SD_SPLICE_REPEAT, SD_SPLICE_CONTINUED, SD_SPLICE_PARTS,
	SD_CATS
};

static const struct {
	const char *name;
	enum sd_kind kind;
} sd_cats[SD_CATS] = {
	[SD_FLIP_HEADER] = { "flip-header", SD_FLIP },
	[SD_FLIP_UNIT_HDR] = { "flip-unit-header", SD_FLIP },
	[SD_FLIP_RECORD] = { "flip-first-record", SD_FLIP },
	[SD_FLIP_DATA] = { "flip-data", SD_FLIP },
	[SD_FLIP_TERM] = { "flip-terminator", SD_FLIP },
	[SD_FLIP_END] = { "flip-end-unit", SD_FLIP },
	[SD_FLIP_DIR] = { "flip-directory", SD_FLIP },
	[SD_FLIP_FOOTER] = { "flip-footer", SD_FLIP },
	[SD_CUT_HEADER] = { "cut-header", SD_CUT },
	[SD_CUT_UNIT] = { "cut-unit", SD_CUT },
	[SD_CUT_TAIL] = { "cut-end-dir-footer", SD_CUT },
	[SD_SPLICE_LATER] = { "splice-unit-from-later-save", SD_SPLICE },
	[SD_SPLICE_OTHER] = { "splice-unit-from-other-guest", SD_SPLICE },
	[SD_SPLICE_SWAP] = { "splice-swap", SD_SPLICE },
	[SD_SPLICE_DROP] = { "splice-drop", SD_SPLICE },
	[SD_SPLICE_REPEAT] = { "splice-repeat", SD_SPLICE },
	[SD_SPLICE_CONTINUED] = { "splice-continued-by-other", SD_SPLICE },
	[SD_SPLICE_PARTS] = { "splice-header-end-dir-footer", SD_SPLICE },
};

/* Where a case's damage lies, for choosing the real-binary subset: a unit
 * index, or one of these after the units. */
enum sd_where {
	SD_AT_HEADER = SD_MAX_UNITS, SD_AT_END, SD_AT_DIR, SD_AT_FOOTER,
	SD_WHERES
};

#define SD_MAX_CASES 4096u

struct sd_out {
	const char *dir;
	const struct sd_stream *in[3]; /* A1 (damaged), A2, B */
	uint8_t *buf;                  /* the case being built */
	size_t len, cap;
	unsigned bit;                  /* the next bit to flip */
	unsigned ncases, nsame;
	unsigned count[SD_CATS];
	/* case n + 1 (NNNN.sav): its category and where it lies */
	uint8_t cat[SD_MAX_CASES], where[SD_MAX_CASES];
	bool real[SD_MAX_CASES];
};

static int sd_write_file(const char *path, const void *data, size_t len)
{
	const uint8_t *p = data;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r = 0;

	if (fd < 0)
		return -errno;
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

static int sd_reserve(struct sd_out *o, size_t len)
{
	uint8_t *nb;

	if (len <= o->cap)
		return 0;
	if (len > 4 * (size_t)SD_MAX_LEN)
		return -EFBIG;
	nb = realloc(o->buf, len);
	if (!nb)
		return -ENOMEM;
	o->buf = nb;
	o->cap = len;
	return 0;
}

/* Append bytes [start, end) of s to the case. */
static int sd_add(struct sd_out *o, const struct sd_stream *s, size_t start,
		  size_t end)
{
	int r;

	if (start > end || end > s->len || o->len > SIZE_MAX - (end - start))
		return -EINVAL;
	r = sd_reserve(o, o->len + (end - start));
	if (r < 0)
		return r;
	memcpy(o->buf + o->len, s->data + start, end - start);
	o->len += end - start;
	return 0;
}

static bool sd_same_as_input(const struct sd_out *o)
{
	for (unsigned i = 0; i < 3; i++)
		if (o->len == o->in[i]->len &&
		    memcmp(o->buf, o->in[i]->data, o->len) == 0)
			return true;
	return false;
}

/* Write the case built in o->buf, described by desc. */
static int sd_emit(struct sd_out *o, enum sd_cat cat, unsigned where,
		   const char *desc)
{
	char path[4096], line[SD_DESC_LEN + 64];
	int r, n;

	if (where >= SD_WHERES)
		return -EINVAL;
	if (o->ncases == SD_MAX_CASES)
		return -E2BIG;
	if (sd_same_as_input(o)) {
		printf("note: left out, identical to an intact stream: %s\n",
		       desc);
		o->nsame++;
		return 0;
	}
	o->ncases++;
	n = snprintf(path, sizeof(path), "%s/%04u.sav", o->dir, o->ncases);
	if (n < 0 || (size_t)n + 6 > sizeof(path))
		return -ENAMETOOLONG;
	r = sd_write_file(path, o->buf, o->len);
	if (r < 0)
		goto out_fail;
	n = snprintf(line, sizeof(line), "%s: %s\n", sd_cats[cat].name, desc);
	strcat(path, ".what");
	r = sd_write_file(path, line, (size_t)n < sizeof(line) ?
			  (size_t)n : sizeof(line) - 1);
	if (r < 0)
		goto out_fail;
	o->count[cat]++;
	o->cat[o->ncases - 1] = (uint8_t)cat;
	o->where[o->ncases - 1] = (uint8_t)where;
	return 0;
out_fail:
	fprintf(stderr, "ssm-damage: cannot write '%s': %s\n", path,
		strerror(-r));
	return r;
}

__attribute__((format(printf, 5, 6)))
static int sd_flip(struct sd_out *o, size_t off, enum sd_cat cat,
		   unsigned where, const char *fmt, ...)
{
	const struct sd_stream *a = o->in[0];
	char what[SD_DESC_LEN], desc[SD_DESC_LEN + 64];
	unsigned bit = o->bit++ % 8;
	va_list ap;
	int r;

	if (off >= a->len)
		return -EINVAL;
	o->len = 0;
	r = sd_add(o, a, 0, a->len);
	if (r < 0)
		return r;
	o->buf[off] ^= (uint8_t)(1u << bit);
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(desc, sizeof(desc), "bit %u flipped at offset 0x%zx (%s)",
		 bit, off, what);
	return sd_emit(o, cat, where, desc);
}

__attribute__((format(printf, 5, 6)))
static int sd_cut(struct sd_out *o, size_t len, enum sd_cat cat,
		  unsigned where, const char *fmt, ...)
{
	const struct sd_stream *a = o->in[0];
	char what[SD_DESC_LEN], desc[SD_DESC_LEN + 64];
	va_list ap;
	int r;

	if (len >= a->len)
		return -EINVAL;
	o->len = 0;
	r = sd_add(o, a, 0, len);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(desc, sizeof(desc), "truncated to 0x%zx bytes (%s)", len,
		 what);
	return sd_emit(o, cat, where, desc);
}

/* A splice: the bytes [start, end) of each piece's stream, in order. */
struct sd_piece {
	const struct sd_stream *s;
	size_t start, end;
};
#define SD_PIECES(p) (p), sizeof(p) / sizeof((p)[0])

__attribute__((format(printf, 6, 7)))
static int sd_splice(struct sd_out *o, const struct sd_piece *p, size_t n,
		     enum sd_cat cat, unsigned where, const char *fmt, ...)
{
	char desc[SD_DESC_LEN];
	va_list ap;
	int r = 0;

	o->len = 0;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = sd_add(o, p[i].s, p[i].start, p[i].end);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	return sd_emit(o, cat, where, desc);
}

/* ---- the cases, part by part --------------------------------------------- */

static const char *sd_base(const struct sd_stream *s)
{
	const char *b = strrchr(s->path, '/');

	return b ? b + 1 : s->path;
}

/* A field to flip a bit in: its offset in its part, and its name. */
struct sd_field {
	size_t off;
	const char *what;
};

/* The fields of the file header, of a unit header (the end unit's too), of
 * a unit's terminator and of the footer. */
static const struct sd_field sd_hdr_fields[] = {
	{ 0, "magic, byte 0" }, { 5, "magic, byte 5" },
	{ 13, "magic, CR LF" }, { 15, "magic, Ctrl-Z LF" },
	{ 24, "magic's NUL padding" },
	{ SSM_HDR_VER_MAJOR, "format version major" },
	{ SSM_HDR_VER_MINOR, "format version minor" },
	{ SSM_HDR_PAGE_SIZE + 1, "host page size" },
	{ SSM_HDR_FLAGS, "flags" },
	{ SSM_HDR_BLOCK_SIZE + 1, "maximum block size" },
	{ SSM_HDR_HOST_BITS, "host bits" },
	{ SSM_HDR_HOST_BITS + 1, "reserved after host bits" },
	{ SSM_HDR_PRODUCER, "producer" },
	{ SSM_HDR_RESERVED, "reserved" },
	{ SSM_HDR_CRC, "header CRC" },
}, sd_uh_fields[] = {
	{ 0, "magic, byte 0" }, { 4, "magic, byte 4" },
	{ SSM_UH_OFFSET, "stream offset" },
	{ SSM_UH_OFFSET + 2, "stream offset, byte 2" },
	{ SSM_UH_STREAM_CRC, "running CRC" },
	{ SSM_UH_CRC, "header CRC" },
	{ SSM_UH_VERSION, "unit version" },
	{ SSM_UH_INSTANCE, "instance" },
	{ SSM_UH_PASS, "pass" },
	{ SSM_UH_PASS + 3, "pass, byte 3" },
	{ SSM_UH_FLAGS, "flags" },
	{ SSM_UH_NAME_LEN, "name length" },
}, sd_term_fields[] = {
	{ 0, "type byte" }, { 1, "payload size" },
	{ SSM_TERM_FLAGS, "flags" }, { SSM_TERM_FLAGS + 1, "flags, byte 1" },
	{ SSM_TERM_STREAM_CRC, "running CRC" },
	{ SSM_TERM_STREAM_CRC + 3, "running CRC, byte 3" },
	{ SSM_TERM_UNIT_SIZE, "unit size" },
	{ SSM_TERM_UNIT_SIZE + 7, "unit size, byte 7" },
}, sd_ft_fields[] = {
	{ 0, "magic, byte 0" }, { 6, "magic, byte 6" },
	{ SSM_FT_OFFSET, "stream offset" },
	{ SSM_FT_STREAM_CRC, "stream CRC" },
	{ SSM_FT_COUNT, "directory entry count" },
	{ SSM_FT_RESERVED, "reserved" },
	{ SSM_FT_CRC, "footer CRC" },
	{ SSM_FT_CRC + 3, "footer CRC, byte 3" },
};
#define SD_NFIELDS(f) (sizeof(f) / sizeof((f)[0]))

/* Flips in unit k: each header field, the name, the first record, the
 * data and each terminator field. */
static int sd_flips_unit(struct sd_out *o, unsigned k)
{
	const struct sd_unit *u = &o->in[0]->unit[k];
	size_t i, nlen = u->rec - u->off - SSM_UNIT_HDR_SIZE;
	int r = 0;

	for (i = 0; r == 0 && i < SD_NFIELDS(sd_uh_fields); i++)
		r = sd_flip(o, u->off + sd_uh_fields[i].off, SD_FLIP_UNIT_HDR,
			    k, "unit %s#%u, header: %s", u->name,
			    u->instance, sd_uh_fields[i].what);
	if (r == 0)
		r = sd_flip(o, u->off + SSM_UNIT_HDR_SIZE, SD_FLIP_UNIT_HDR, k,
			    "unit %s#%u, header: name, first character",
			    u->name, u->instance);
	if (r == 0)
		r = sd_flip(o, u->rec - 1, SD_FLIP_UNIT_HDR, k,
			    "unit %s#%u, header: name's NUL (length %zu)",
			    u->name, u->instance, nlen);
	if (r == 0)
		r = sd_flip(o, u->rec, SD_FLIP_RECORD, k, "unit %s#%u, "
			    "first record: type byte", u->name, u->instance);
	if (r == 0)
		r = sd_flip(o, u->rec + 1, SD_FLIP_RECORD, k,
			    "unit %s#%u, first record: size", u->name,
			    u->instance);
	if (r == 0)
		r = sd_flip(o, u->rec_data, SD_FLIP_RECORD, k,
			    "unit %s#%u, first record: first payload byte",
			    u->name, u->instance);
	if (r == 0)
		r = sd_flip(o, u->rec_data + (u->term - u->rec_data) / 2,
			    SD_FLIP_DATA, k, "unit %s#%u, data: the middle",
			    u->name, u->instance);
	if (r == 0)
		r = sd_flip(o, u->term - 1, SD_FLIP_DATA, k,
			    "unit %s#%u, data: the last byte", u->name,
			    u->instance);
	for (i = 0; r == 0 && i < SD_NFIELDS(sd_term_fields); i++)
		r = sd_flip(o, u->term + sd_term_fields[i].off, SD_FLIP_TERM,
			    k, "unit %s#%u, terminator: %s", u->name,
			    u->instance, sd_term_fields[i].what);
	return r;
}

/* Flips in the end unit and the directory's header. */
static int sd_flips_end_dir(struct sd_out *o)
{
	const struct sd_stream *a = o->in[0];
	int r = 0;

	for (size_t i = 0; r == 0 && i < SD_NFIELDS(sd_uh_fields); i++)
		r = sd_flip(o, a->end_unit + sd_uh_fields[i].off, SD_FLIP_END,
			    SD_AT_END, "end unit: %s", sd_uh_fields[i].what);
	if (r == 0)
		r = sd_flip(o, a->end_unit + SSM_UNIT_HDR_SIZE - 1, SD_FLIP_END,
			    SD_AT_END, "end unit: its last byte");
	if (r == 0)
		r = sd_flip(o, a->dir, SD_FLIP_DIR, SD_AT_DIR,
			    "directory: magic, byte 0");
	if (r == 0)
		r = sd_flip(o, a->dir + 3, SD_FLIP_DIR, SD_AT_DIR,
			    "directory: magic, byte 3");
	if (r == 0)
		r = sd_flip(o, a->dir + SSM_DIR_CRC, SD_FLIP_DIR, SD_AT_DIR,
			    "directory: CRC");
	if (r == 0)
		r = sd_flip(o, a->dir + SSM_DIR_COUNT, SD_FLIP_DIR, SD_AT_DIR,
			    "directory: entry count");
	if (r == 0)
		r = sd_flip(o, a->dir + SSM_DIR_COUNT + 3, SD_FLIP_DIR,
			    SD_AT_DIR, "directory: entry count, byte 3");
	return r;
}

/* Flips in each directory entry (offset, instance, name CRC), then in
 * each field of the footer. */
static int sd_flips_entries_footer(struct sd_out *o)
{
	const struct sd_stream *a = o->in[0];
	int r = 0;

	for (unsigned k = 0; r == 0 && k < a->nunits; k++) {
		size_t e = a->dir + SSM_DIR_HDR_SIZE + SSM_DIR_ENTRY_SIZE * k;
		const struct sd_unit *u = &a->unit[k];

		r = sd_flip(o, e + SSM_DE_OFFSET + k % 3, SD_FLIP_DIR,
			    SD_AT_DIR, "directory entry %u (%s#%u): offset",
			    k, u->name, u->instance);
		if (r == 0)
			r = sd_flip(o, e + SSM_DE_INSTANCE, SD_FLIP_DIR,
				    SD_AT_DIR, "directory entry %u (%s#%u): "
				    "instance", k, u->name, u->instance);
		if (r == 0)
			r = sd_flip(o, e + SSM_DE_NAME_CRC + k % 4, SD_FLIP_DIR,
				    SD_AT_DIR, "directory entry %u (%s#%u): "
				    "name CRC", k, u->name, u->instance);
	}
	for (size_t i = 0; r == 0 && i < SD_NFIELDS(sd_ft_fields); i++)
		r = sd_flip(o, a->footer + sd_ft_fields[i].off, SD_FLIP_FOOTER,
			    SD_AT_FOOTER, "footer: %s", sd_ft_fields[i].what);
	return r;
}

/* A bit flipped in every field of every part, in the stream's order. */
static int sd_flips(struct sd_out *o)
{
	const struct sd_stream *a = o->in[0];
	int r = 0;

	for (size_t i = 0; r == 0 && i < SD_NFIELDS(sd_hdr_fields); i++)
		r = sd_flip(o, sd_hdr_fields[i].off, SD_FLIP_HEADER,
			    SD_AT_HEADER, "file header: %s",
			    sd_hdr_fields[i].what);
	for (unsigned k = 0; r == 0 && k < a->nunits; k++)
		r = sd_flips_unit(o, k);
	if (r == 0)
		r = sd_flips_end_dir(o);
	if (r == 0)
		r = sd_flips_entries_footer(o);
	return r;
}

static int sd_cuts(struct sd_out *o)
{
	const struct sd_stream *a = o->in[0];
	const size_t hdr[] = { 0, 1, 16, SSM_HDR_CRC, SSM_HDR_SIZE - 1 };
	size_t i, mid_dir;
	int r = 0;

	for (i = 0; r == 0 && i < sizeof(hdr) / sizeof(hdr[0]); i++)
		r = sd_cut(o, hdr[i], SD_CUT_HEADER, SD_AT_HEADER,
			   "inside the file header");
	for (unsigned k = 0; r == 0 && k < a->nunits; k++) {
		const struct sd_unit *u = &a->unit[k];
		const struct {
			size_t len;
			const char *what;
		} at[] = {
			{ u->off, "before the unit" },
			{ u->off + 1, "inside the header's magic" },
			{ u->off + SSM_UH_NAME_LEN, "inside the header" },
			{ u->off + SSM_UNIT_HDR_SIZE, "before the name" },
			{ u->rec - 1, "before the name's NUL" },
			{ u->rec, "before the first record" },
			{ u->rec + 1, "inside the first record's header" },
			{ u->rec_data + (u->term - u->rec_data) / 2,
			  "inside the data" },
			{ u->term, "before the terminator" },
			{ u->term + SSM_TERM_STREAM_CRC, "inside the terminator" },
			{ u->end - 1, "before the terminator's last byte" },
		};

		for (i = 0; r == 0 && i < sizeof(at) / sizeof(at[0]); i++)
			r = sd_cut(o, at[i].len, SD_CUT_UNIT, k,
				   "unit %s#%u: %s", u->name, u->instance,
				   at[i].what);
	}
	mid_dir = a->dir + SSM_DIR_HDR_SIZE +
		  SSM_DIR_ENTRY_SIZE * (a->nunits / 2) + 5;
	const struct {
		size_t len;
		unsigned where;
		const char *what;
	} tail[] = {
		{ a->end_unit, SD_AT_END, "before the end unit" },
		{ a->end_unit + SSM_UH_CRC, SD_AT_END, "inside the end unit" },
		{ a->dir - 1, SD_AT_END, "before the end unit's last byte" },
		{ a->dir, SD_AT_DIR, "before the directory" },
		{ a->dir + SSM_DIR_COUNT, SD_AT_DIR, "inside the directory's "
		  "header" },
		{ a->dir + SSM_DIR_HDR_SIZE, SD_AT_DIR, "before the first "
		  "directory entry" },
		{ mid_dir, SD_AT_DIR, "inside a directory entry" },
		{ a->footer - 1, SD_AT_DIR, "before the directory's last byte" },
		{ a->footer, SD_AT_FOOTER, "before the footer" },
		{ a->footer + SSM_FT_STREAM_CRC, SD_AT_FOOTER, "inside the "
		  "footer" },
		{ a->len - 1, SD_AT_FOOTER, "before the footer's last byte" },
	};
	for (i = 0; r == 0 && i < sizeof(tail) / sizeof(tail[0]); i++)
		r = sd_cut(o, tail[i].len, SD_CUT_TAIL, tail[i].where, "%s",
			   tail[i].what);
	return r;
}

/* The unit of donor with u's name and instance, or NULL, saying so. */
static const struct sd_unit *sd_donor_unit(const struct sd_stream *donor,
					   const struct sd_unit *u)
{
	const struct sd_unit *d = sd_find(donor, u);

	if (!d)
		fprintf(stderr, "ssm-damage: %s has no unit %s#%u\n",
			donor->path, u->name, u->instance);
	return d;
}

/* Unit k of A1 replaced by the same unit of donor. */
static int sd_replace(struct sd_out *o, unsigned k,
		      const struct sd_stream *donor, enum sd_cat cat)
{
	const struct sd_stream *a = o->in[0];
	const struct sd_unit *u = &a->unit[k], *d = sd_donor_unit(donor, u);

	if (!d)
		return -ENOENT;
	const struct sd_piece p[] = {
		{ a, 0, u->off }, { donor, d->off, d->end },
		{ a, u->end, a->len }
	};
	return sd_splice(o, SD_PIECES(p), cat, k, "unit %s#%u taken from %s",
			 u->name, u->instance, sd_base(donor));
}

/* A1 up to unit k, then donor from the same unit on. */
static int sd_continue(struct sd_out *o, unsigned k,
		       const struct sd_stream *donor)
{
	const struct sd_stream *a = o->in[0];
	const struct sd_unit *u = &a->unit[k], *d = sd_donor_unit(donor, u);

	if (!d)
		return -ENOENT;
	const struct sd_piece p[] = {
		{ a, 0, u->off }, { donor, d->off, donor->len },
	};
	return sd_splice(o, SD_PIECES(p), SD_SPLICE_CONTINUED, k,
			 "%s up to unit %s#%u, then %s from that unit on",
			 sd_base(a), u->name, u->instance, sd_base(donor));
}

static int sd_splices(struct sd_out *o)
{
	const struct sd_stream *a = o->in[0], *a2 = o->in[1], *b = o->in[2];
	int r = 0;

	for (unsigned k = 0; r == 0 && k < a->nunits; k++)
		r = sd_replace(o, k, a2, SD_SPLICE_LATER);
	for (unsigned k = 0; r == 0 && k < a->nunits; k++)
		r = sd_replace(o, k, b, SD_SPLICE_OTHER);
	for (unsigned k = 0; r == 0 && k + 1 < a->nunits; k++) {
		const struct sd_unit *u = &a->unit[k], *v = &a->unit[k + 1];
		const struct sd_piece p[] = {
			{ a, 0, u->off }, { a, v->off, v->end },
			{ a, u->off, u->end }, { a, v->end, a->len },
		};

		r = sd_splice(o, SD_PIECES(p), SD_SPLICE_SWAP, k,
			      "units %s#%u and %s#%u swapped", u->name,
			      u->instance, v->name, v->instance);
	}
	for (unsigned k = 0; r == 0 && k < a->nunits; k++) {
		const struct sd_unit *u = &a->unit[k];
		const struct sd_piece p[] = {
			{ a, 0, u->off }, { a, u->end, a->len }
		};

		r = sd_splice(o, SD_PIECES(p), SD_SPLICE_DROP, k,
			      "unit %s#%u dropped", u->name, u->instance);
	}
	for (unsigned k = 0; r == 0 && k < a->nunits; k++) {
		const struct sd_unit *u = &a->unit[k];
		const struct sd_piece p[] = {
			{ a, 0, u->end }, { a, u->off, a->len }
		};

		r = sd_splice(o, SD_PIECES(p), SD_SPLICE_REPEAT, k,
			      "unit %s#%u repeated", u->name, u->instance);
	}
	for (unsigned k = 0; r == 0 && k < a->nunits; k++)
		r = sd_continue(o, k, a2);
	for (unsigned k = 0; r == 0 && k < a->nunits; k++)
		r = sd_continue(o, k, b);
	for (unsigned i = 1; r == 0 && i < 3; i++) {
		const struct sd_stream *d = o->in[i];
		const char *dn = sd_base(d);
		const struct sd_piece hdr[] = {
			{ d, 0, SSM_HDR_SIZE }, { a, SSM_HDR_SIZE, a->len }
		}, end[] = {
			{ a, 0, a->end_unit }, { d, d->end_unit, d->len }
		}, dir[] = {
			{ a, 0, a->dir }, { d, d->dir, d->len }
		}, dir_only[] = {
			{ a, 0, a->dir }, { d, d->dir, d->footer },
			{ a, a->footer, a->len }
		}, foot[] = {
			{ a, 0, a->footer }, { d, d->footer, d->len }
		};

		r = sd_splice(o, SD_PIECES(hdr), SD_SPLICE_PARTS,
			      SD_AT_HEADER, "file header taken from %s", dn);
		if (r == 0)
			r = sd_splice(o, SD_PIECES(end), SD_SPLICE_PARTS,
				      SD_AT_END, "end unit, directory and "
				      "footer taken from %s", dn);
		if (r == 0)
			r = sd_splice(o, SD_PIECES(dir), SD_SPLICE_PARTS,
				      SD_AT_DIR, "directory and footer taken "
				      "from %s", dn);
		if (r == 0)
			r = sd_splice(o, SD_PIECES(dir_only), SD_SPLICE_PARTS,
				      SD_AT_DIR, "directory taken from %s", dn);
		if (r == 0)
			r = sd_splice(o, SD_PIECES(foot), SD_SPLICE_PARTS,
				      SD_AT_FOOTER, "footer taken from %s", dn);
	}
	return r;
}

/* ---- the subset for the real binaries ----------------------------------- */

/*
 * Every case goes through the reader in process; a real restore adds the
 * worker's loader (it acts on a unit's data before the unit's terminator
 * is checked), the exit path and the processes. So one case per category,
 * and one per part (each unit; the header, end unit, directory, footer)
 * and kind (flip, truncation, splice), a unit's flip being one of its
 * first-record or data flips: the bytes the loader reads. Within each group
 * the pick rotates with the group's number, so that the picks touch
 * different fields.
 */
struct sd_group {
	int cat;        /* an enum sd_cat, or -1 for any */
	unsigned where; /* an enum sd_where or unit index, SD_WHERES for any */
	int kind;       /* an enum sd_kind, or -1 for any */
};

static bool sd_in_group(const struct sd_out *o, unsigned i,
			const struct sd_group *g)
{
	enum sd_cat c = (enum sd_cat)o->cat[i];

	if (g->cat >= 0 && c != (enum sd_cat)g->cat)
		return false;
	if (g->where != SD_WHERES && o->where[i] != g->where)
		return false;
	if (g->kind >= 0 && sd_cats[c].kind != (enum sd_kind)g->kind)
		return false;
	if (g->kind == SD_FLIP && g->where < SD_MAX_UNITS &&
	    c != SD_FLIP_RECORD && c != SD_FLIP_DATA)
		return false;
	return true;
}

static void sd_pick(struct sd_out *o, const struct sd_group *g, unsigned rot)
{
	unsigned n = 0, i;

	for (i = 0; i < o->ncases; i++)
		n += sd_in_group(o, i, g);
	if (n == 0)
		return;
	rot %= n;
	for (i = 0; i < o->ncases; i++)
		if (sd_in_group(o, i, g) && rot-- == 0)
			break;
	o->real[i] = true;
}

/* Choose the subset and list it in DIR/real.list, its size in *nreal. */
static int sd_choose_real(struct sd_out *o, unsigned *nreal)
{
	char path[4096];
	FILE *f;
	int r = 0;

	for (unsigned c = 0; c < SD_CATS; c++)
		sd_pick(o, &(struct sd_group){ (int)c, SD_WHERES, -1 },
			c * 7 + 3);
	for (unsigned w = 0; w < SD_WHERES; w++) {
		if (w >= o->in[0]->nunits && w < SD_MAX_UNITS)
			continue;
		for (unsigned k = 0; k < SD_KINDS; k++)
			sd_pick(o, &(struct sd_group){ -1, w, (int)k },
				w * 3 + k);
	}
	snprintf(path, sizeof(path), "%s/real.list", o->dir);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	*nreal = 0;
	for (unsigned i = 0; i < o->ncases; i++) {
		if (!o->real[i])
			continue;
		fprintf(f, "%04u.sav\n", i + 1);
		++*nreal;
	}
	if (ferror(f))
		r = -EIO;
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	return r;
}

/* ---- main ---------------------------------------------------------------- */

static int sd_load(struct sd_stream *s, const char *path)
{
	int r;

	s->path = path;
	r = sd_read_file(path, &s->data, &s->len);
	if (r < 0) {
		fprintf(stderr, "ssm-damage: cannot read '%s': %s\n", path,
			strerror(-r));
		return 4;
	}
	if (sd_walk(s) < 0 || sd_check_layout(s) < 0)
		return 1;
	return 0;
}

static int sd_make(const char *dir, char **paths)
{
	static struct sd_stream in[3];
	static struct sd_out out;
	struct sd_out *o = &out;
	const struct sd_stream *a = &in[0];
	unsigned flips = 0, cuts = 0, splices = 0, nreal = 0;
	int r = 0, st = 0;

	o->dir = dir;
	for (unsigned i = 0; st == 0 && i < 3; i++) {
		st = sd_load(&in[i], paths[i]);
		o->in[i] = &in[i];
	}
	if (st)
		goto out_free;
	printf("%s: %zu bytes, %u units, end unit at 0x%zx, directory at "
	       "0x%zx, footer at 0x%zx\n", a->path, a->len, a->nunits,
	       a->end_unit, a->dir, a->footer);
	for (unsigned k = 0; k < a->nunits; k++)
		printf("  unit %s#%u at 0x%zx, first record at 0x%zx, "
		       "terminator at 0x%zx\n", a->unit[k].name,
		       a->unit[k].instance, a->unit[k].off, a->unit[k].rec,
		       a->unit[k].term);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "ssm-damage: cannot create '%s': %s\n", dir,
			strerror(errno));
		st = 4;
		goto out_free;
	}
	r = sd_flips(o);
	if (r == 0)
		r = sd_cuts(o);
	if (r == 0)
		r = sd_splices(o);
	if (r == 0)
		r = sd_choose_real(o, &nreal);
	if (r < 0) {
		fprintf(stderr, "ssm-damage: cannot make the cases: %s\n",
			strerror(-r));
		st = r == -ENOENT ? 1 : 4;
		goto out_free;
	}
	for (unsigned c = 0; c < SD_CATS; c++) {
		printf("%-30s %4u cases\n", sd_cats[c].name, o->count[c]);
		if (sd_cats[c].kind == SD_FLIP)
			flips += o->count[c];
		else if (sd_cats[c].kind == SD_CUT)
			cuts += o->count[c];
		else
			splices += o->count[c];
	}
	printf("%u cases: %u bit flips, %u truncations, %u splices (%u left "
	       "out: identical to an intact stream); %u for the real "
	       "binaries\n", o->ncases, flips, cuts, splices, o->nsame, nreal);
out_free:
	free(o->buf);
	for (unsigned i = 0; i < 3; i++)
		free(in[i].data);
	return st;
}

static int sd_check(char **paths, int n)
{
	char err[256];
	int status = 0;

	for (int i = 0; i < n; i++) {
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		struct ssm_source src = { ssm_fd_read, &fd };

		if (fd < 0) {
			fprintf(stderr, "ssm-damage: cannot open '%s': %s\n",
				paths[i], strerror(errno));
			status = 4;
			continue;
		}
		err[0] = '\0';
		if (ssm_validate(&src, err, sizeof(err)) < 0)
			printf("%s: refused: %s\n", paths[i], err);
		else
			printf("%s: accepted\n", paths[i]);
		close(fd);
	}
	return status;
}

static void sd_usage(FILE *f)
{
	fprintf(f, "usage: ssm-damage --out DIR A1 A2 B\n"
		   "       ssm-damage --check FILE...\n"
		   "  -o, --out DIR  write damaged copies of A1 to DIR (A2: a "
		   "later save of the same VM, B: another guest's)\n"
		   "  -c, --check    check each FILE with the saved-state "
		   "reader: 'FILE: refused: MESSAGE' or 'FILE: accepted'\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "check", no_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *out = NULL;
	bool check = false;
	int c;

	while ((c = getopt_long(argc, argv, "o:ch", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'c':
			check = true;
			break;
		case 'h':
			sd_usage(stdout);
			return 0;
		default:
			sd_usage(stderr);
			return 2;
		}
	}
	if (check && !out && optind < argc)
		return sd_check(argv + optind, argc - optind);
	if (out && !check && argc - optind == 3)
		return sd_make(out, argv + optind);
	sd_usage(stderr);
	return 2;
}
