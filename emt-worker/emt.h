/* SPDX-License-Identifier: MIT */
/*
 * emt-worker: the sandboxed process that owns one VM, runs its EMTs and
 * dispatches their exits. This header is what the worker's parts share and
 * what unit tests reach.
 */
#ifndef BULKHEAD_EMT_H
#define BULKHEAD_EMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- image loaders ---------------------------------------------------- */

/* Where things go in guest-physical memory. */
#define EMT_LOW_MEM_END 0x9fc00ull      /* top of conventional memory */
#define EMT_HIGH_MEM_START 0x100000ull  /* 1 MiB */
#define EMT_BOOTSECT_ADDR 0x7c00ull     /* raw images load here */
#define EMT_MBI_ADDR 0x9000ull          /* multiboot info area */
#define EMT_MBI_AREA_END 0x9f000ull     /* end of the multiboot info area */
#define EMT_RAW_MAX (EMT_LOW_MEM_END - EMT_BOOTSECT_ADDR)

enum emt_image_kind {
	EMT_IMAGE_MULTIBOOT = 1,  /* multiboot v1, ELF32/ELF64 or a.out kludge */
	EMT_IMAGE_RAW = 2,        /* boot sector / flat real-mode binary */
	EMT_IMAGE_BZIMAGE = 3,    /* Linux bzImage (detected; not loaded yet) */
};

enum emt_cpu_mode {
	EMT_MODE_REAL = 1,   /* CS:IP = 0:rip, all segments 0, real mode */
	EMT_MODE_PROT32 = 2, /* multiboot: flat 32-bit protected, paging off */
};

/* The boot processor's initial state, as a loader decides it. */
struct emt_boot {
	enum emt_image_kind kind;
	enum emt_cpu_mode mode;
	uint64_t rip;
	uint64_t rax, rbx, rdx, rsp;
	uint64_t image_end;   /* first byte after everything loaded */
};

/* What a loader gets: the image and its options, and guest RAM. */
struct emt_load_args {
	const uint8_t *image;
	size_t image_len;
	const uint8_t *initrd;   /* NULL: none */
	size_t initrd_len;
	const char *cmdline;     /* NULL or "": none */
	uint8_t *ram;            /* guest RAM, guest-physical 0 at ram[0] */
	uint64_t ram_size;
};

/*
 * Detect the image format and load it into guest RAM, filling *boot.
 * Returns 0, or a negative errno with a one-line explanation in err
 * (-ENOEXEC: not a format we load or malformed; -E2BIG: does not fit in
 * guest RAM; -EINVAL: bad arguments such as --initrd with a raw image).
 */
int emt_load_image(const struct emt_load_args *a, struct emt_boot *boot,
		   char *err, size_t errlen);
/* Format detection only (no loading). */
enum emt_image_kind emt_detect_image(const uint8_t *image, size_t len);

#endif
