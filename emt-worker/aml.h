/* SPDX-License-Identifier: MIT */
/*
 * emt-worker/aml.h: a small builder of ACPI Machine Language (ACPI 6.5,
 * chapter 20), enough for the DSDT Bulkhead writes for each VM
 * (emt-worker/acpi.c): names, scopes, devices, methods with If, LEqual and
 * Notify, integers, strings, EISA ids, packages and resource templates (I/O
 * ports, ISA IRQs, fixed 32-bit memory, extended interrupts).
 *
 * Usage: aml_init() on a buffer, then calls that append; a construct with
 * a body (scope, device, method, if, package, buffer) is opened with
 * aml_open_*() and closed with aml_close(), which writes its PkgLength.
 * Errors are sticky: the first one (a name or value out of range, the
 * buffer full, unbalanced opens) is kept with its reason in a->err, every
 * later call does nothing, and aml_finish() returns it.
 */
#ifndef BULKHEAD_AML_H
#define BULKHEAD_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 16u

struct aml {
	uint8_t *buf;
	size_t cap;
	size_t len;
	size_t open[AML_MAX_DEPTH];   /* where each open body's PkgLength is */
	uint8_t kind[AML_MAX_DEPTH];  /* and what it is */
	unsigned depth;
	int error;                    /* 0, or the first -errno */
	char err[160];                /* its reason */
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
/* Every open closed and no error: the bytes written, else the error. */
int aml_finish(struct aml *a, size_t *len);

/* ---- names and data ------------------------------------------------------------ */

/*
 * A name path: "\\", "\\_SB_", "\\_SB.COM1", "^PARN", "COM1", "_HID". Each
 * segment is 1-4 of A-Z 0-9 _ (not starting with a digit), padded with
 * '_'. Anything else is refused with -EINVAL.
 */
void aml_name_string(struct aml *a, const char *path);
/* An integer as the smallest of Zero, One, Ones, Byte, Word, DWord, QWord. */
void aml_integer(struct aml *a, uint64_t v);
/* A string of printable ASCII (0x20-0x7e), at most 255 bytes. */
void aml_string(struct aml *a, const char *s);
/* EISAID("PNP0501"): three letters A-Z, four hex digits, as a DWord. */
void aml_eisaid(struct aml *a, const char *id);
/* Name(path, ...): the object follows (an integer, string, package...). */
void aml_name(struct aml *a, const char *path);
/* Name(path, Integer) and Name(path, String) in one call. */
void aml_name_integer(struct aml *a, const char *path, uint64_t v);
void aml_name_string_value(struct aml *a, const char *path, const char *s);
void aml_name_eisaid(struct aml *a, const char *path, const char *id);

/* ---- bodies ------------------------------------------------------------------------ */

void aml_open_scope(struct aml *a, const char *path);
void aml_open_device(struct aml *a, const char *path);
/* Method(path, nargs (0-7), NotSerialized). */
void aml_open_method(struct aml *a, const char *path, unsigned nargs);
/* If (predicate): the predicate is the next term written, then the body. */
void aml_open_if(struct aml *a);
/* Package(n) { ... }: n elements follow (at most 255). */
void aml_open_package(struct aml *a, unsigned n);
/* ResourceTemplate() { ... }: a Buffer whose descriptors follow; closing
 * it adds the end tag and the buffer's size. */
void aml_open_resources(struct aml *a);
void aml_close(struct aml *a);

/* ---- terms ------------------------------------------------------------------------- */

/* LEqual(x, y): the two operands are the next two terms. */
void aml_lequal(struct aml *a);
/* Argn (0-6), Localn (0-7). */
void aml_arg(struct aml *a, unsigned n);
void aml_local(struct aml *a, unsigned n);
/* Notify(path, value). */
void aml_notify(struct aml *a, const char *path, uint8_t value);

/* ---- resource descriptors (inside aml_open_resources) ------------------------------- */

/* IO(Decode16, base, base, 1, len). */
void aml_res_io(struct aml *a, uint16_t base, uint8_t len);
/* IRQNoFlags() { irq }: an ISA IRQ, 0-15, edge, active high. */
void aml_res_irq(struct aml *a, unsigned irq);
/* Memory32Fixed(ReadWrite, base, len). */
void aml_res_mem32(struct aml *a, uint32_t base, uint32_t len);
/* Interrupt(ResourceConsumer, Level or Edge, ActiveHigh, Exclusive) { gsi } */
void aml_res_interrupt(struct aml *a, uint32_t gsi, bool level);

#endif
