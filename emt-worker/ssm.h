/* SPDX-License-Identifier: MIT */
/*
 * ssm: the saved-state stream. One format for save files, live snapshots
 * and teleport, after VirtualBox's SSM v2 layout with our own magic strings;
 * docs/ssm-format.md describes it byte by byte.
 *
 *   header | unit ... | end unit | directory | footer
 *
 * A unit is the state of one component (name + instance), saved in one or
 * more passes; its data is a sequence of typed records (raw, raw-LZF,
 * raw-zero, ...) closed by a terminator that carries the running CRC32 and
 * the unit's size. Both sides work on byte streams through callbacks, never
 * on files: the writer needs no seek (the worker streams to a pipe) and the
 * reader reads strictly forward with bounded memory (the directory and the
 * footer are checked when the end is reached).
 *
 * The reader treats the stream as hostile: every size is bounded before it
 * is used, every CRC is checked, and every failure leaves a message naming
 * the unit (or "header", "unit header", "directory", "footer") and the
 * stream offset. Errors are sticky: after the first one every call returns
 * the same code, and ssm_reader_error() keeps the first message.
 *
 * Return codes: 0 (or a documented positive value), or a negative errno:
 *   -EBADMSG  malformed stream (bad magic, CRC, size, encoding, ...)
 *   -ENODATA  stream truncated
 *   -ENOTSUP  a version, flag or important record type this build lacks
 *   -EMSGSIZE data does not fit the caller's buffer (ssm_get_str, _blob)
 *   -EINVAL   API misuse (call out of order, bad argument)
 *   -ENOMEM, or whatever the sink/source callback returned
 */
#ifndef BULKHEAD_SSM_H
#define BULKHEAD_SSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SSM_VERSION_MAJOR 1u
#define SSM_VERSION_MINOR 0u

#define SSM_NAME_MAX 48u          /* unit name, including its NUL */
#define SSM_BLOCK_SIZE 4096u      /* data block; also the record size limit */
#define SSM_PAGE_SIZE 4096u       /* ssm_put_page / ssm_get_page */
#define SSM_PASS_FINAL 0xffffffffu
/* A 4 KiB block is stored LZF-compressed only if that takes at most this. */
#define SSM_LZF_MAX (SSM_BLOCK_SIZE - SSM_BLOCK_SIZE / 16)

/* Header flags. */
#define SSM_F_STREAM_CRC (1u << 0) /* always set by the writer */
#define SSM_F_LIVE_SAVE (1u << 1)  /* units may have non-final passes */

/* Record header: first byte, then the payload size (UTF-8 style). */
#define SSM_REC_MAGIC 0x80u
#define SSM_REC_IMPORTANT 0x10u
#define SSM_REC_TYPE_MASK 0x0fu
enum ssm_rec_type {
	SSM_REC_INVALID = 0,
	SSM_REC_TERM = 1,     /* terminator: flags, stream CRC, unit size */
	SSM_REC_RAW = 2,      /* payload = data */
	SSM_REC_RAW_LZF = 3,  /* u8 size in KiB, then LZF data */
	SSM_REC_RAW_ZERO = 4, /* u8 size in KiB of zero bytes */
};
#define SSM_REC_TYPES 16u

/* ---- stream layout (docs/ssm-format.md), for the reader and tools ------- */

/* Magic strings; the file magic is NUL-padded to SSM_FILE_MAGIC_LEN. */
#define SSM_FILE_MAGIC "\x7f" "BulkheadSSM\r\n\x1a\n"
#define SSM_FILE_MAGIC_LEN 32u
#define SSM_UNIT_MAGIC "\nBhUnit\n"
#define SSM_END_MAGIC "\nBhTEnd\n"
#define SSM_DIR_MAGIC "\nBhDirs\n"
#define SSM_FOOTER_MAGIC "\nBhFoot\n"
#define SSM_MAGIC_LEN 8u          /* the unit, end, directory, footer magic */

/* Structure sizes. */
#define SSM_HDR_SIZE 64u
#define SSM_UNIT_HDR_SIZE 44u     /* then the name, NUL included */
#define SSM_TERM_PAYLOAD 14u
#define SSM_TERM_SIZE (2u + SSM_TERM_PAYLOAD) /* type, size, payload */
#define SSM_DIR_HDR_SIZE 16u
#define SSM_DIR_ENTRY_SIZE 16u
#define SSM_FOOTER_SIZE 32u

/* File header field offsets. */
#define SSM_HDR_VER_MAJOR 32
#define SSM_HDR_VER_MINOR 34
#define SSM_HDR_PAGE_SIZE 36
#define SSM_HDR_FLAGS 40
#define SSM_HDR_BLOCK_SIZE 44
#define SSM_HDR_HOST_BITS 48
#define SSM_HDR_PRODUCER 52
#define SSM_HDR_RESERVED 56
#define SSM_HDR_CRC 60

/* Unit header field offsets (the end unit's too). */
#define SSM_UH_OFFSET 8
#define SSM_UH_STREAM_CRC 16
#define SSM_UH_CRC 20
#define SSM_UH_VERSION 24
#define SSM_UH_INSTANCE 28
#define SSM_UH_PASS 32
#define SSM_UH_FLAGS 36
#define SSM_UH_NAME_LEN 40

/* Terminator field offsets, from its type byte, and its one flag. */
#define SSM_TERM_FLAGS 2
#define SSM_TERM_STREAM_CRC 4
#define SSM_TERM_UNIT_SIZE 8
#define SSM_TERM_F_CRC 0x0001u

/* Directory, directory entry and footer field offsets. */
#define SSM_DIR_CRC 8
#define SSM_DIR_COUNT 12
#define SSM_DE_OFFSET 0
#define SSM_DE_INSTANCE 8
#define SSM_DE_NAME_CRC 12
#define SSM_FT_OFFSET 8
#define SSM_FT_STREAM_CRC 16
#define SSM_FT_COUNT 20
#define SSM_FT_RESERVED 24
#define SSM_FT_CRC 28

/* ---- size encoding (UTF-8 style, 1 to 6 bytes) -------------------------- */

#define SSM_SIZE_MAX_BYTES 6u
#define SSM_SIZE_LIMIT 0x7fffffffu /* largest encodable size */

/*
 * Encode size into buf (SSM_SIZE_MAX_BYTES), its length in *len.
 * -E2BIG if size > SSM_SIZE_LIMIT.
 */
int ssm_size_encode(uint32_t size, uint8_t *buf, size_t *len);
/*
 * Decode a size from the len bytes at buf: 0 with *size and *used,
 * -ENODATA if the encoding needs more than len bytes, -EBADMSG if it is
 * malformed (bad lead or continuation byte, or overlong: every size has
 * exactly one encoding).
 */
int ssm_size_decode(const uint8_t *buf, size_t len, uint32_t *size,
		    size_t *used);
/* Bytes in the encoding that lead starts, 0 if lead cannot start one. */
size_t ssm_size_len(uint8_t lead);

/* ---- I/O callbacks ------------------------------------------------------ */

/* write: all len bytes, or return a negative errno. */
struct ssm_sink {
	int (*write)(void *ctx, const void *buf, size_t len);
	void *ctx;
};

/* read: 1..len bytes read, 0 at the end of the stream, or a negative errno. */
struct ssm_source {
	ssize_t (*read)(void *ctx, void *buf, size_t len);
	void *ctx;
};

/* Callbacks for a file descriptor; ctx points at the int fd. EINTR retried. */
int ssm_fd_write(void *ctx, const void *buf, size_t len);
ssize_t ssm_fd_read(void *ctx, void *buf, size_t len);

/*
 * A memory buffer: ssm_mem_write appends (growing data with realloc; free
 * it with free()), ssm_mem_read reads from pos up to len.
 */
struct ssm_mem {
	uint8_t *data;
	size_t len, cap, pos;
};
int ssm_mem_write(void *ctx, const void *buf, size_t len);
ssize_t ssm_mem_read(void *ctx, void *buf, size_t len);

/* ---- writer ------------------------------------------------------------- */

struct ssm_writer;

/*
 * Start a stream: writes the header. flags: 0 or SSM_F_LIVE_SAVE (the
 * stream CRC flag is always set). The sink is copied; its ctx must outlive
 * the writer. Saving needs about 600 KiB of stack: Debian's liblzf keeps
 * its 512 KiB hash table on the stack of lzf_compress().
 */
int ssm_writer_open(const struct ssm_sink *sink, uint32_t flags,
		    struct ssm_writer **out);
/*
 * Encode pages (ssm_put_pages) on n threads in all: the caller's and n - 1
 * helpers, started now and ended by ssm_writer_close(); n is capped at
 * SSM_MAX_ENCODERS. Returns how many encode (1: the caller alone, when n
 * < 2), or a negative errno when no helper could start (the writer still
 * works, on the caller's thread).
 */
#define SSM_MAX_ENCODERS 8u
int ssm_writer_set_threads(struct ssm_writer *w, unsigned n);
/*
 * Open a unit. name: 1..47 printable ASCII characters, no space. pass:
 * 0, 1, ... for live passes (SSM_F_LIVE_SAVE streams only) and
 * SSM_PASS_FINAL for the final one; only final-pass units are listed in the
 * directory. version: the unit's data version, for the loader to interpret.
 */
int ssm_unit_begin(struct ssm_writer *w, const char *name, uint32_t instance,
		   uint32_t version, uint32_t pass);
int ssm_put_u8(struct ssm_writer *w, uint8_t v);
int ssm_put_u16(struct ssm_writer *w, uint16_t v);
int ssm_put_u32(struct ssm_writer *w, uint32_t v);
int ssm_put_u64(struct ssm_writer *w, uint64_t v);
int ssm_put_s32(struct ssm_writer *w, int32_t v);
int ssm_put_s64(struct ssm_writer *w, int64_t v);
int ssm_put_bool(struct ssm_writer *w, bool v);
/* Bytes; every full 4 KiB block goes out as a zero, LZF or raw record. */
int ssm_put_bytes(struct ssm_writer *w, const void *buf, size_t len);
/* One 4 KiB page as its own block: a zero, LZF or raw record. */
int ssm_put_page(struct ssm_writer *w, const void *page);
/*
 * count consecutive 4 KiB pages, each as ssm_put_page() would write it,
 * encoded in parallel when the writer has encoder threads.
 */
int ssm_put_pages(struct ssm_writer *w, const void *pages, size_t count);
/* A C string: u32 length, then the bytes without the NUL. */
int ssm_put_str(struct ssm_writer *w, const char *s);
/* A byte string: u32 length, then the bytes (a device's packed protobuf). */
int ssm_put_blob(struct ssm_writer *w, const void *buf, size_t len);
/* Close the unit: flush buffered data, write the terminator, flush. */
int ssm_unit_end(struct ssm_writer *w);
/* Bytes written to the stream so far (for live-save output budgets). */
uint64_t ssm_writer_offset(const struct ssm_writer *w);
/* The first error, "" if none. */
const char *ssm_writer_error(const struct ssm_writer *w);
/*
 * Finish the stream (end unit, directory, footer), flush and free w.
 * If a unit is still open or an error happened earlier, nothing more is
 * written (the reader will refuse the truncated stream), w is freed and
 * the error is returned. NULL is a no-op.
 */
int ssm_writer_close(struct ssm_writer *w);

/* ---- reader ------------------------------------------------------------- */

/*
 * Data returned by ssm_get_* is bounded and well-formed but verified by
 * CRC only when the unit's terminator is checked (ssm_unit_finish), and the
 * stream as a whole only when ssm_reader_next_unit returns 1. A loader must
 * validate every value it uses (the stream is hostile) and must treat what
 * it loaded as provisional until then: never run a VM from a stream that
 * did not reach 1.
 *
 * Memory: one reader is about 74 KiB, fixed; nothing the stream says makes
 * it allocate. The reader may read up to 64 KiB ahead from the source, so
 * bytes after the footer may be consumed (and are ignored).
 */
struct ssm_reader;

struct ssm_stream_info {
	uint16_t version_major, version_minor;
	uint32_t flags;       /* SSM_F_* */
	uint32_t page_size;   /* the saving host's page size */
	uint32_t producer;    /* the writer's build (informational) */
	uint8_t host_bits;    /* 64 */
};

struct ssm_unit_info {
	char name[SSM_NAME_MAX];
	uint32_t instance;
	uint32_t version;     /* unit data version */
	uint32_t pass;        /* SSM_PASS_FINAL for the final pass */
	uint64_t offset;      /* stream offset of the unit header */
};

/* What the records of the current (or last) unit held. */
struct ssm_unit_stats {
	uint64_t records[SSM_REC_TYPES]; /* by type, terminator included */
	uint64_t skipped;      /* unknown unimportant records skipped */
	uint64_t
		stream_bytes; /* record bytes on the stream, terminator incl. */
	uint64_t data_bytes;   /* decoded data bytes */
};

/*
 * Read and check the header. On failure *out is NULL and err (if errlen)
 * holds the reason. The source is copied; its ctx must outlive the reader.
 */
int ssm_reader_open(const struct ssm_source *src, struct ssm_reader **out,
		    char *err, size_t errlen);
void ssm_reader_info(const struct ssm_reader *r, struct ssm_stream_info *info);
/*
 * Move to the next unit: 0 with *info filled, or 1 when the end unit was
 * reached and the directory and footer (whole-stream CRC) have been
 * checked: only then is the stream known to be complete and intact. The
 * previous unit must have been finished (ssm_unit_finish/ssm_unit_skip).
 */
int ssm_reader_next_unit(struct ssm_reader *r, struct ssm_unit_info *info);
int ssm_get_u8(struct ssm_reader *r, uint8_t *v);
int ssm_get_u16(struct ssm_reader *r, uint16_t *v);
int ssm_get_u32(struct ssm_reader *r, uint32_t *v);
int ssm_get_u64(struct ssm_reader *r, uint64_t *v);
int ssm_get_s32(struct ssm_reader *r, int32_t *v);
int ssm_get_s64(struct ssm_reader *r, int64_t *v);
/* A byte other than 0 or 1 fails. */
int ssm_get_bool(struct ssm_reader *r, bool *v);
/* Exactly len bytes of unit data; running past the terminator fails. */
int ssm_get_bytes(struct ssm_reader *r, void *buf, size_t len);
int ssm_get_page(struct ssm_reader *r, void *page);
/*
 * A string from ssm_put_str into buf (size bytes, NUL included): -EMSGSIZE
 * if it does not fit, -EBADMSG if it holds a NUL.
 */
int ssm_get_str(struct ssm_reader *r, char *buf, size_t size);
/*
 * A blob from ssm_put_blob into buf (size bytes), its length in *len:
 * -EMSGSIZE if it is longer than size (nothing more is read).
 */
int ssm_get_blob(struct ssm_reader *r, void *buf, size_t size, size_t *len);
/*
 * End the unit: its data must have been consumed exactly (unknown
 * unimportant records may remain); checks the terminator's CRC and size.
 */
int ssm_unit_finish(struct ssm_reader *r);
/* Skip the rest of the unit (still checking every record), then finish. */
int ssm_unit_skip(struct ssm_reader *r);
void ssm_reader_unit_stats(const struct ssm_reader *r,
			   struct ssm_unit_stats *st);
/* The first error, "" if none. */
const char *ssm_reader_error(const struct ssm_reader *r);
/*
 * Free r. Returns 0 if the whole stream was read and checked (next_unit
 * returned 1) without error, else the error (-ENODATA if it was closed
 * early without one). NULL is a no-op.
 */
int ssm_reader_close(struct ssm_reader *r);

/*
 * Read a whole stream, skipping every unit, and check everything. For a
 * broker or a tool that wants to know a file is sound before using it.
 */
int ssm_validate(const struct ssm_source *src, char *err, size_t errlen);

#endif
