/* SPDX-License-Identifier: MIT */
/*
 * The image loaders (loader.c): multiboot v1 ELF and a.out-kludge kernels,
 * raw boot sectors and Linux bzImages (docs/linux-boot.md), and where each
 * puts things in guest-physical memory. Pure: no KVM, no processes; the
 * unit tests, the fuzzer and tests/tools/load-image use it as it is.
 */
#ifndef BULKHEAD_EMT_WORKER_LOADER_H
#define BULKHEAD_EMT_WORKER_LOADER_H

#include <stddef.h>
#include <stdint.h>

/* Where things go in guest-physical memory. */
#define EMT_LOW_MEM_END 0x9fc00ull      /* top of conventional memory */
#define EMT_HIGH_MEM_START 0x100000ull  /* 1 MiB */
#define EMT_BOOTSECT_ADDR 0x7c00ull     /* raw images load here */
#define EMT_MBI_ADDR 0x9000ull          /* multiboot info area */
#define EMT_MBI_AREA_END 0x9f000ull     /* end of the multiboot info area */
#define EMT_RAW_MAX (EMT_LOW_MEM_END - EMT_BOOTSECT_ADDR)

/*
 * Linux bzImage (docs/linux-boot.md): what the 64-bit boot protocol needs,
 * all below the boot sector at 0x7c00 and the multiboot info at 0x9000.
 * The kernel goes at its pref_address (at or above 1 MiB), the initrd as
 * high as it may go.
 */
#define EMT_BZ_GDT_ADDR 0x500ull          /* 4 descriptors: 0x10 code, 0x18 data */
#define EMT_BZ_GDT_LIMIT 0x1fu
#define EMT_BZ_BOOT_PARAMS_ADDR 0x1000ull /* struct boot_params, 4 KiB */
#define EMT_BZ_PAGE_TABLES_ADDR 0x2000ull /* PML4, PDPT, 3 page directories */
#define EMT_BZ_PAGE_TABLES_END 0x7000ull
#define EMT_BZ_IDMAP_END (3ull << 30)     /* identity-mapped: [0, 3 GiB) */
#define EMT_BZ_CMDLINE_ADDR 0x7000ull     /* the command line and its NUL */
#define EMT_BZ_CMDLINE_END EMT_BOOTSECT_ADDR

enum emt_image_kind {
	EMT_IMAGE_MULTIBOOT = 1,  /* multiboot v1, ELF32/ELF64 or a.out kludge */
	EMT_IMAGE_RAW = 2,        /* boot sector / flat real-mode binary */
	EMT_IMAGE_BZIMAGE = 3,    /* Linux bzImage, 64-bit boot protocol */
};

enum emt_cpu_mode {
	EMT_MODE_REAL = 1,   /* CS:IP = 0:rip, all segments 0, real mode */
	EMT_MODE_PROT32 = 2, /* multiboot: flat 32-bit protected, paging off */
	EMT_MODE_LONG64 = 3, /* Linux: 64-bit long mode, paging on (cr3), flat
			      * CS 0x10 and DS/ES/SS 0x18 from the GDT at
			      * gdt_base, interrupts off */
};

/* The boot processor's initial state, as a loader decides it. */
struct emt_boot {
	enum emt_image_kind kind;
	enum emt_cpu_mode mode;
	uint64_t rip;
	uint64_t rax, rbx, rdx, rsi, rsp;
	uint64_t cr3;                  /* EMT_MODE_LONG64 only */
	uint64_t gdt_base;             /* EMT_MODE_LONG64 only */
	uint16_t gdt_limit;            /* EMT_MODE_LONG64 only */
	/*
	 * First byte after everything loaded (for a bzImage, after the
	 * kernel's init_size reservation or the initrd, whichever is higher).
	 */
	uint64_t image_end;
};

/* What a loader gets: the image and its options, and guest RAM. */
struct emt_load_args {
	const uint8_t *image;
	size_t image_len;
	const uint8_t *initrd;   /* NULL: none */
	size_t initrd_len;
	const char *cmdline;     /* NULL or "": none */
	/*
	 * cmdline, multiboot: at most 4095 bytes; the info always has the
	 * CMDLINE flag, with "" when none was given. Raw images refuse a
	 * non-empty cmdline and any initrd. The initrd becomes module 0
	 * ("initrd") on the first 4 KiB boundary after the kernel.
	 * bzImage: at most the kernel's cmdline_size bytes and at most
	 * EMT_BZ_CMDLINE_END - EMT_BZ_CMDLINE_ADDR - 1; the initrd goes as
	 * high as initrd_addr_max and RAM allow (ramdisk_image/size).
	 */
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
