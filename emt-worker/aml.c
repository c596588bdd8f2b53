/* SPDX-License-Identifier: MIT */
/*
 * The AML builder (emt-worker/aml.h). Encodings from ACPI 6.5: 20.2 (the
 * AML grammar: name strings 20.2.2, data objects 20.2.3, package length
 * 20.2.4, named objects 20.2.5, statements and expressions 20.2.5.3-4) and
 * 6.4 (resource data types: 6.4.2 small, 6.4.3 large descriptors).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "emt-worker/aml.h"

/* Opcodes (ACPI 6.5, 20.3). */
#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0a
#define AML_WORD_PREFIX 0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING_PREFIX 0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_METHOD_OP 0x14
#define AML_DUAL_NAME_PREFIX 0x2e
#define AML_MULTI_NAME_PREFIX 0x2f
#define AML_EXT_OP_PREFIX 0x5b
#define AML_DEVICE_OP 0x82     /* after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR 0x5c     /* '\\' */
#define AML_PARENT_CHAR 0x5e   /* '^' */
#define AML_LOCAL0_OP 0x60
#define AML_ARG0_OP 0x68
#define AML_NOTIFY_OP 0x86
#define AML_LEQUAL_OP 0x93
#define AML_IF_OP 0xa0
#define AML_ONES_OP 0xff

/* Resource descriptors (ACPI 6.5, 6.4). */
#define AML_RES_IRQ_NOFLAGS 0x22    /* small, type 4, 2 bytes */
#define AML_RES_IO 0x47             /* small, type 8, 7 bytes */
#define AML_RES_END_TAG 0x79        /* small, type 15, 1 byte */
#define AML_RES_MEM32_FIXED 0x86    /* large, type 6 */
#define AML_RES_EXT_IRQ 0x89        /* large, type 9 */
#define AML_RES_IO_DECODE16 0x01
#define AML_RES_MEM_RW 0x01
#define AML_RES_IRQ_CONSUMER 0x01
#define AML_RES_IRQ_EDGE 0x02

#define AML_SEG_LEN 4u
#define AML_MAX_SEGS 255u
#define AML_MAX_STRING 255u
#define AML_MAX_ISA_IRQ 15u
#define AML_MAX_ARG 6u
#define AML_MAX_LOCAL 7u
#define AML_MAX_METHOD_ARGS 7u
#define AML_PKGLEN_RESERVED 4u        /* bytes kept for a PkgLength */
#define AML_PKGLEN_MAX ((1u << 28) - 1)
/* The most a PkgLength of 1, 2 or 3 bytes holds (20.2.4: 6, 12, 20 bits). */
#define AML_PKGLEN_MAX1 0x3f
#define AML_PKGLEN_MAX2 0xfff
#define AML_PKGLEN_MAX3 0xfffff
/* The characters aml_string takes: printable ASCII (of 20.2.3's AsciiChar). */
#define AML_STRING_CHAR_MIN 0x20
#define AML_STRING_CHAR_MAX 0x7e
/* Where IO and Memory32Fixed resources must end: the port space, 4 GiB. */
#define AML_PIO_SPACE 0x10000u
#define AML_MEM32_SPACE UINT64_C(0x100000000)

/* What each open body is, for aml_close. */
enum { AML_BODY_PLAIN, AML_BODY_RESOURCES };

__attribute__((format(printf, 3, 4)))
static void aml_fail(struct aml *a, int error, const char *fmt, ...)
{
	va_list ap;

	if (a->error)
		return;
	a->error = error;
	va_start(ap, fmt);
	vsnprintf(a->err, sizeof(a->err), fmt, ap);
	va_end(ap);
}

static void aml_put(struct aml *a, const void *p, size_t n)
{
	if (a->error)
		return;
	if (n > a->cap - a->len) {
		aml_fail(a, -ENOSPC, "AML does not fit its %zu-byte buffer",
			 a->cap);
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_put(a, &b, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned n)
{
	uint8_t b[8];

	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	aml_put(a, b, n);
}

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	memset(a, 0, sizeof(*a));
	a->buf = buf;
	a->cap = cap;
}

int aml_finish(struct aml *a, size_t *len)
{
	if (!a->error && a->depth)
		aml_fail(a, -EINVAL, "%u AML bodies left open", a->depth);
	if (a->error)
		return a->error;
	*len = a->len;
	return 0;
}

/* ---- names ------------------------------------------------------------------ */

static bool aml_seg_char(char c, bool first)
{
	return (c >= 'A' && c <= 'Z') || c == '_' || (!first && c >= '0' &&
						      c <= '9');
}

/* Check one segment (len chars at s) and append it padded with '_'. */
static void aml_seg(struct aml *a, const char *path, const char *s, size_t len)
{
	char seg[AML_SEG_LEN] = { '_', '_', '_', '_' };

	if (len == 0 || len > AML_SEG_LEN) {
		aml_fail(a, -EINVAL, "AML name '%s': a segment of %zu "
			 "characters (1 to 4)", path, len);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (!aml_seg_char(s[i], i == 0)) {
			aml_fail(a, -EINVAL, "AML name '%s': '%c' is not allowed "
				 "there (A-Z, _, and 0-9 after the first)", path,
				 s[i]);
			return;
		}
		seg[i] = s[i];
	}
	aml_put(a, seg, AML_SEG_LEN);
}

void aml_name_string(struct aml *a, const char *path)
{
	const char *p = path, *dot;
	unsigned nsegs = 1;

	if (*p == '\\') {
		aml_byte(a, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == '^') {
			aml_byte(a, AML_PARENT_CHAR);
			p++;
		}
	}
	if (!*p) {
		aml_byte(a, AML_ZERO_OP);   /* NullName */
		return;
	}
	for (const char *q = p; *q; q++)
		nsegs += *q == '.';
	if (nsegs > AML_MAX_SEGS) {
		aml_fail(a, -EINVAL, "AML name '%s': more than %u segments",
			 path, AML_MAX_SEGS);
		return;
	}
	if (nsegs == 2) {
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	} else if (nsegs > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)nsegs);
	}
	for (;;) {
		dot = strchr(p, '.');
		aml_seg(a, path, p, dot ? (size_t)(dot - p) : strlen(p));
		if (!dot)
			break;
		p = dot + 1;
	}
}

/* ---- data --------------------------------------------------------------------- */

void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO_OP);
	} else if (v == 1) {
		aml_byte(a, AML_ONE_OP);
	} else if (v == UINT64_MAX) {
		aml_byte(a, AML_ONES_OP);
	} else if (v <= UINT8_MAX) {
		aml_byte(a, AML_BYTE_PREFIX);
		aml_le(a, v, 1);
	} else if (v <= UINT16_MAX) {
		aml_byte(a, AML_WORD_PREFIX);
		aml_le(a, v, 2);
	} else if (v <= UINT32_MAX) {
		aml_byte(a, AML_DWORD_PREFIX);
		aml_le(a, v, 4);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		aml_le(a, v, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	size_t n = strlen(s);

	if (n > AML_MAX_STRING) {
		aml_fail(a, -EINVAL, "AML string of %zu bytes (at most %u)", n,
			 AML_MAX_STRING);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] < AML_STRING_CHAR_MIN || s[i] > AML_STRING_CHAR_MAX) {
			aml_fail(a, -EINVAL, "AML string: byte 0x%02x is not "
				 "printable ASCII", (unsigned char)s[i]);
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_put(a, s, n + 1);
}

static int aml_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint8_t b[4];
	uint16_t vendor = 0;
	int h[4];

	if (strlen(id) != 7) {
		aml_fail(a, -EINVAL, "EISA id '%s': not 3 letters and 4 hex "
			 "digits", id);
		return;
	}
	for (unsigned i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			aml_fail(a, -EINVAL, "EISA id '%s': '%c' is not A-Z", id,
				 id[i]);
			return;
		}
		vendor = (uint16_t)(vendor << 5 | (id[i] - 'A' + 1));
	}
	for (unsigned i = 0; i < 4; i++) {
		h[i] = aml_hex(id[3 + i]);
		if (h[i] < 0) {
			aml_fail(a, -EINVAL, "EISA id '%s': '%c' is not a hex "
				 "digit (0-9, A-F)", id, id[3 + i]);
			return;
		}
	}
	/* The compressed vendor, big-endian, then the product's two bytes. */
	b[0] = (uint8_t)(vendor >> 8);
	b[1] = (uint8_t)vendor;
	b[2] = (uint8_t)(h[0] << 4 | h[1]);
	b[3] = (uint8_t)(h[2] << 4 | h[3]);
	aml_byte(a, AML_DWORD_PREFIX);
	aml_put(a, b, sizeof(b));
}

void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME_OP);
	aml_name_string(a, path);
}

void aml_name_integer(struct aml *a, const char *path, uint64_t v)
{
	aml_name(a, path);
	aml_integer(a, v);
}

void aml_name_string_value(struct aml *a, const char *path, const char *s)
{
	aml_name(a, path);
	aml_string(a, s);
}

void aml_name_eisaid(struct aml *a, const char *path, const char *id)
{
	aml_name(a, path);
	aml_eisaid(a, id);
}

/* ---- bodies and their package lengths ------------------------------------------ */

/* Keep room for a PkgLength here; aml_close writes it. */
static void aml_open_body(struct aml *a, unsigned kind)
{
	static const uint8_t room[AML_PKGLEN_RESERVED];

	if (a->error)
		return;
	if (a->depth == AML_MAX_DEPTH) {
		aml_fail(a, -EINVAL, "AML nested deeper than %u",
			 AML_MAX_DEPTH);
		return;
	}
	a->kind[a->depth] = (uint8_t)kind;
	a->open[a->depth++] = a->len;
	aml_put(a, room, sizeof(room));
}

/* Move the bytes from `from` to the end by `shift` (may be negative). */
static void aml_shift(struct aml *a, size_t from, long shift)
{
	if (shift > 0 && (size_t)shift > a->cap - a->len) {
		aml_fail(a, -ENOSPC, "AML does not fit its %zu-byte buffer",
			 a->cap);
		return;
	}
	memmove(a->buf + from + shift, a->buf + from, a->len - from);
	a->len = (size_t)((long)a->len + shift);
}

/* A resource template's end: the end tag, and its size in front. */
static void aml_close_resources(struct aml *a, size_t at)
{
	size_t start = at + AML_PKGLEN_RESERVED, n;
	uint8_t size[9];
	struct aml sz;

	aml_byte(a, AML_RES_END_TAG);
	aml_byte(a, 0);               /* checksum 0: none */
	n = a->len - start;
	aml_init(&sz, size, sizeof(size));
	aml_integer(&sz, n);
	aml_shift(a, start, (long)sz.len);
	if (!a->error)
		memcpy(a->buf + start, size, sz.len);
}

void aml_close(struct aml *a)
{
	size_t at, body, total;
	unsigned n;

	if (a->error)
		return;
	if (!a->depth) {
		aml_fail(a, -EINVAL, "aml_close without an open body");
		return;
	}
	a->depth--;
	at = a->open[a->depth];
	if (a->kind[a->depth] == AML_BODY_RESOURCES)
		aml_close_resources(a, at);
	if (a->error)
		return;
	body = a->len - at - AML_PKGLEN_RESERVED;
	n = body + 1 <= AML_PKGLEN_MAX1 ? 1 : body + 2 <= AML_PKGLEN_MAX2 ? 2 :
	    body + 3 <= AML_PKGLEN_MAX3 ? 3 : 4;
	total = body + n;
	if (total > AML_PKGLEN_MAX) {
		aml_fail(a, -E2BIG, "AML body of %zu bytes", body);
		return;
	}
	aml_shift(a, at + AML_PKGLEN_RESERVED, -(long)(AML_PKGLEN_RESERVED - n));
	if (n == 1) {
		a->buf[at] = (uint8_t)total;
		return;
	}
	/* Lead byte: the count of bytes that follow, the low nibble. */
	a->buf[at] = (uint8_t)((n - 1) << 6 | (total & 0xf));
	for (unsigned i = 1; i < n; i++)
		a->buf[at + i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
}

void aml_open_scope(struct aml *a, const char *path)
{
	aml_byte(a, AML_SCOPE_OP);
	aml_open_body(a, AML_BODY_PLAIN);
	aml_name_string(a, path);
}

void aml_open_device(struct aml *a, const char *path)
{
	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	aml_open_body(a, AML_BODY_PLAIN);
	aml_name_string(a, path);
}

void aml_open_method(struct aml *a, const char *path, unsigned nargs)
{
	if (nargs > AML_MAX_METHOD_ARGS) {
		aml_fail(a, -EINVAL, "AML method '%s' with %u arguments (at "
			 "most %u)", path, nargs, AML_MAX_METHOD_ARGS);
		return;
	}
	aml_byte(a, AML_METHOD_OP);
	aml_open_body(a, AML_BODY_PLAIN);
	aml_name_string(a, path);
	aml_byte(a, (uint8_t)nargs);  /* NotSerialized, SyncLevel 0 */
}

void aml_open_if(struct aml *a)
{
	aml_byte(a, AML_IF_OP);
	aml_open_body(a, AML_BODY_PLAIN);
}

void aml_open_package(struct aml *a, unsigned n)
{
	if (n > UINT8_MAX) {
		aml_fail(a, -EINVAL, "AML package of %u elements (at most %u)",
			 n, UINT8_MAX);
		return;
	}
	aml_byte(a, AML_PACKAGE_OP);
	aml_open_body(a, AML_BODY_PLAIN);
	aml_byte(a, (uint8_t)n);
}

void aml_open_resources(struct aml *a)
{
	aml_byte(a, AML_BUFFER_OP);
	aml_open_body(a, AML_BODY_RESOURCES);
}

/* ---- terms ---------------------------------------------------------------------- */

void aml_lequal(struct aml *a)
{
	aml_byte(a, AML_LEQUAL_OP);
}

void aml_arg(struct aml *a, unsigned n)
{
	if (n > AML_MAX_ARG) {
		aml_fail(a, -EINVAL, "Arg%u does not exist (Arg0-Arg%u)", n,
			 AML_MAX_ARG);
		return;
	}
	aml_byte(a, (uint8_t)(AML_ARG0_OP + n));
}

void aml_local(struct aml *a, unsigned n)
{
	if (n > AML_MAX_LOCAL) {
		aml_fail(a, -EINVAL, "Local%u does not exist (Local0-Local%u)",
			 n, AML_MAX_LOCAL);
		return;
	}
	aml_byte(a, (uint8_t)(AML_LOCAL0_OP + n));
}

void aml_notify(struct aml *a, const char *path, uint8_t value)
{
	aml_byte(a, AML_NOTIFY_OP);
	aml_name_string(a, path);
	aml_integer(a, value);
}

/* ---- resource descriptors --------------------------------------------------------- */

static bool aml_in_resources(struct aml *a, const char *what)
{
	if (a->error)
		return false;
	if (!a->depth || a->kind[a->depth - 1] != AML_BODY_RESOURCES) {
		aml_fail(a, -EINVAL, "AML %s outside a resource template", what);
		return false;
	}
	return true;
}

void aml_res_io(struct aml *a, uint16_t base, uint8_t len)
{
	if (!aml_in_resources(a, "IO"))
		return;
	if (len == 0 || (uint32_t)base + len > AML_PIO_SPACE) {
		aml_fail(a, -EINVAL, "AML IO 0x%x length %u: not inside the "
			 "port space", base, len);
		return;
	}
	aml_byte(a, AML_RES_IO);
	aml_byte(a, AML_RES_IO_DECODE16);
	aml_le(a, base, 2);           /* minimum */
	aml_le(a, base, 2);           /* maximum */
	aml_byte(a, 1);               /* alignment */
	aml_byte(a, len);
}

void aml_res_irq(struct aml *a, unsigned irq)
{
	if (!aml_in_resources(a, "IRQNoFlags"))
		return;
	if (irq > AML_MAX_ISA_IRQ) {
		aml_fail(a, -EINVAL, "AML IRQNoFlags %u: ISA IRQs are 0-%u", irq,
			 AML_MAX_ISA_IRQ);
		return;
	}
	aml_byte(a, AML_RES_IRQ_NOFLAGS);
	aml_le(a, 1u << irq, 2);
}

void aml_res_mem32(struct aml *a, uint32_t base, uint32_t len)
{
	if (!aml_in_resources(a, "Memory32Fixed"))
		return;
	if (len == 0 || (uint64_t)base + len > AML_MEM32_SPACE) {
		aml_fail(a, -EINVAL, "AML Memory32Fixed 0x%x length 0x%x: not "
			 "below 4 GiB", base, len);
		return;
	}
	aml_byte(a, AML_RES_MEM32_FIXED);
	aml_le(a, 9, 2);              /* the length of what follows */
	aml_byte(a, AML_RES_MEM_RW);
	aml_le(a, base, 4);
	aml_le(a, len, 4);
}

void aml_res_interrupt(struct aml *a, uint32_t gsi, bool level)
{
	if (!aml_in_resources(a, "Interrupt"))
		return;
	aml_byte(a, AML_RES_EXT_IRQ);
	aml_le(a, 6, 2);              /* flags, count, one interrupt */
	aml_byte(a, AML_RES_IRQ_CONSUMER | (level ? 0 : AML_RES_IRQ_EDGE));
	aml_byte(a, 1);
	aml_le(a, gsi, 4);
}
