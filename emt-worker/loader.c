/* SPDX-License-Identifier: MIT */
/*
 * Image loaders: multiboot v1 kernels (ELF32, ELF64 or the a.out kludge),
 * raw boot sectors, and Linux bzImages (64-bit boot protocol).
 *
 * The image is untrusted: a hostile user may hand us any file. So:
 *  - every offset, size and count from the image is checked against the
 *    file and against guest RAM with arithmetic that cannot wrap
 *    (range_in(), guest_range_check()) before anything is read or written;
 *  - every header field that is checked is first copied into a local
 *    struct, and only that copy is checked and used, so an image buffer
 *    that changes under us (a shared mapping of a file the user can still
 *    write) cannot slip a value past the checks;
 *  - a load that fails may leave guest RAM partly written; the VM must not
 *    be started then, only reported.
 *
 * Guest-physical layout for multiboot (see emt.h for the addresses):
 *   [EMT_MBI_ADDR, EMT_MBI_AREA_END)  multiboot info, memory map, module
 *                                      list, strings
 *   [1 MiB, ...)                       kernel segments, then the initrd as
 *                                      module 0 on the next 4 KiB boundary
 *
 * Guest-physical layout for a Linux bzImage (emt.h, docs/linux-boot.md):
 *   [0x500, 0x520)      GDT: 0x10 flat 64-bit code, 0x18 flat data
 *   [0x1000, 0x2000)    struct boot_params ("zero page")
 *   [0x2000, 0x7000)    page tables: identity map of [0, 3 GiB), 2 MiB pages
 *   [0x7000, 0x7c00)    command line
 *   [pref_address, ...) protected-mode kernel, then its init_size
 *   high                initrd, below initrd_addr_max and the end of RAM
 *
 * Specs: Multiboot 0.6.96, System V ABI (ELF) and its x86-64 supplement,
 * the Linux/x86 boot protocol (Documentation/arch/x86/boot.rst).
 */
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "emt-worker/loader.h"

#define KiB 1024
#define MiB (1024ull * KiB)
#define GiB (1024 * MiB)
#define LOADER_MIN_RAM (2 * MiB)

/* The multiboot header in the kernel image. */
#define MB_HEADER_MAGIC 0x1BADB002u
#define MB_SEARCH_LEN 8192u     /* the header lies in the first 8 KiB */
#define MB_HEADER_LEN 12u       /* magic, flags, checksum */
#define MB_HEADER_ADDRS_LEN 32u /* ... and the five address fields */
/* Its fields (Multiboot 0.6.96, 3.1.1), after the magic at 0. */
#define MB_HDR_FLAGS 4
#define MB_HDR_CHECKSUM 8
#define MB_HDR_HEADER_ADDR 12   /* the address fields, flag bit 16 */
#define MB_HDR_LOAD_ADDR 16
#define MB_HDR_LOAD_END_ADDR 20
#define MB_HDR_BSS_END_ADDR 24
#define MB_HDR_ENTRY_ADDR 28
#define MB_FLAG_PAGE_ALIGN (1u << 0)  /* modules on 4 KiB boundaries */
#define MB_FLAG_MEMINFO (1u << 1)     /* mem_* and mmap_* wanted */
#define MB_FLAG_VIDEO (1u << 2)       /* video mode wanted */
#define MB_FLAG_ADDRS (1u << 16)      /* address fields valid (a.out kludge) */
#define MB_FLAGS_REQUIRED 0xffffu     /* bits 0-15: refuse what we lack */
/* Always honoured: modules go on 4 KiB boundaries, memory info is given. */
#define MB_FLAGS_KNOWN (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMINFO)

/* What the kernel finds in eax. */
#define MB_BOOT_MAGIC 0x2BADB002u

/* The multiboot information structure (Multiboot 0.6.96, 3.3): field
 * offsets and flags; mem_lower and mem_upper count KiB. */
#define MBI_FLAGS 0
#define MBI_MEM_LOWER 4
#define MBI_MEM_UPPER 8
#define MBI_CMDLINE 16
#define MBI_MODS_COUNT 20
#define MBI_MODS_ADDR 24
#define MBI_MMAP_LENGTH 44
#define MBI_MMAP_ADDR 48
#define MBI_LOADER_NAME 64
#define MBI_SIZE 116  /* up to and including the framebuffer fields */
#define MBI_F_MEM (1u << 0)
#define MBI_F_CMDLINE (1u << 2)
#define MBI_F_MODS (1u << 3)
#define MBI_F_MMAP (1u << 6)
#define MBI_F_LOADER_NAME (1u << 9)
#define MBI_MOD_SIZE 16        /* mod_start, mod_end, string, reserved */
#define MBI_MOD_START 0
#define MBI_MOD_END 4
#define MBI_MOD_STRING 8
#define MBI_MMAP_ENTRY_SIZE 24 /* size (= 20), base_addr, length, type */
#define MBI_MMAP_SIZE 0        /* the size of the rest of the entry */
#define MBI_MMAP_BASE 4
#define MBI_MMAP_LEN 12
#define MBI_MMAP_TYPE 20
#define MBI_MMAP_AVAILABLE 1
#define MBI_MMAP_RESERVED 2
#define MBI_MMAP_ENTRIES 3

#define LOADER_NAME "bulkhead"
#define INITRD_MODULE_STRING "initrd"
#define MODULE_ALIGN 4096ull
/* Longest command line, including its terminating NUL. */
#define CMDLINE_MAX 4096u

/*
 * Linux boot protocol. File offsets of the setup header's fields (boot.rst,
 * "The Real-Mode Kernel Header"); the header sits at the same offsets in
 * struct boot_params.
 */
#define BZ_SETUP_SECTS_OFF 0x1f1
#define BZ_SYSSIZE_OFF 0x1f4
#define BZ_SIG_OFF 0x1fe           /* boot_flag, 0xAA55 */
#define BZ_JUMP_LEN_OFF 0x201      /* the header ends at 0x202 + this byte */
#define BZ_HDRS_OFF 0x202          /* "HdrS" */
#define BZ_BOOT_FLAG 0xaa55        /* at BZ_SIG_OFF */
#define BZ_HDRS "HdrS"             /* at BZ_HDRS_OFF, from protocol 2.00 */
#define BZ_HDRS_LEN 4
#define BZ_VERSION_OFF 0x206
#define BZ_TYPE_OF_LOADER_OFF 0x210
#define BZ_LOADFLAGS_OFF 0x211
#define BZ_RAMDISK_IMAGE_OFF 0x218
#define BZ_RAMDISK_SIZE_OFF 0x21c
#define BZ_HEAP_END_PTR_OFF 0x224
#define BZ_CMD_LINE_PTR_OFF 0x228
#define BZ_INITRD_ADDR_MAX_OFF 0x22c
#define BZ_KERNEL_ALIGNMENT_OFF 0x230
#define BZ_RELOCATABLE_OFF 0x234
#define BZ_XLOADFLAGS_OFF 0x236
#define BZ_CMDLINE_SIZE_OFF 0x238
#define BZ_SETUP_DATA_OFF 0x250
#define BZ_PREF_ADDRESS_OFF 0x258
#define BZ_INIT_SIZE_OFF 0x260
#define BZ_HDR_MIN_END (BZ_INIT_SIZE_OFF + 4)  /* the last field we read */

#define BZ_MIN_VERSION 0x0206      /* cmdline_size */
#define BZ_XLF_VERSION 0x020c      /* xloadflags, hence the 64-bit entry */
#define BZ_LOADED_HIGH 0x01        /* loadflags: protected mode at 1 MiB+ */
#define BZ_CAN_USE_HEAP 0x80       /* loadflags: heap_end_ptr is valid */
#define BZ_XLF_KERNEL_64 0x0001    /* xloadflags: 64-bit entry at +0x200 */
#define BZ_ENTRY64_OFF 0x200       /* into the protected-mode kernel */
#define BZ_DEFAULT_SETUP_SECTS 4   /* what setup_sects 0 means */
#define BZ_SECTOR 512
#define BZ_TYPE_OF_LOADER 0xff     /* a loader without an assigned id */
/* Only the 16-bit setup code, which we do not run, reads the heap end. */
#define BZ_HEAP_END_PTR 0xfe00
#define BZ_MAX_ALIGN GiB           /* a sane bound for kernel_alignment */
#define BZ_INITRD_ALIGN 4096ull

/* struct boot_params (the "zero page", Documentation/arch/x86/zero-page.rst):
 * what the loader fills. */
#define BP_SIZE 0x1000
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR_LIMIT 0x290         /* the setup header's room ends here */
#define BP_E820_TABLE 0x2d0
#define BP_E820_ENTRY_SIZE 20      /* addr (8), size (8), type (4) */
#define BP_E820_ADDR 0             /* struct boot_e820_entry fields */
#define BP_E820_LEN 8
#define BP_E820_TYPE 16
#define BP_E820_RAM 1
#define BP_E820_RESERVED 2
#define BP_E820_COUNT 3

/* The boot GDT: the 64-bit boot protocol wants __BOOT_CS and __BOOT_DS. */
#define BZ_BOOT_CS 0x10
#define BZ_BOOT_DS 0x18
#define BZ_GDT_CODE64 0x00af9b000000ffffull  /* flat, L=1, execute/read */
#define BZ_GDT_DATA 0x00cf93000000ffffull    /* flat, 4 GiB, read/write */

/* Page tables: 4-level, 2 MiB pages. */
#define BZ_PAGE 4096ull
#define BZ_PTE_PRESENT 0x001ull
#define BZ_PTE_WRITE 0x002ull
#define BZ_PTE_LARGE 0x080ull
#define BZ_LARGE_PAGE (2 * MiB)
#define BZ_PTES_PER_TABLE 512      /* 8-byte entries in a 4 KiB table */
#define BZ_IDMAP_PDS (EMT_BZ_IDMAP_END / GiB)

/* The fixed low-memory layout must not overlap itself or its neighbours. */
_Static_assert(EMT_BZ_GDT_ADDR + EMT_BZ_GDT_LIMIT + 1 <=
	       EMT_BZ_BOOT_PARAMS_ADDR, "GDT overlaps boot_params");
_Static_assert(EMT_BZ_BOOT_PARAMS_ADDR + BP_SIZE <= EMT_BZ_PAGE_TABLES_ADDR,
	       "boot_params overlaps the page tables");
_Static_assert(EMT_BZ_PAGE_TABLES_ADDR + (2 + BZ_IDMAP_PDS) * BZ_PAGE ==
	       EMT_BZ_PAGE_TABLES_END, "page table area has the wrong size");
_Static_assert(EMT_BZ_PAGE_TABLES_END <= EMT_BZ_CMDLINE_ADDR &&
	       EMT_BZ_CMDLINE_END <= EMT_BOOTSECT_ADDR &&
	       EMT_BOOTSECT_ADDR < EMT_MBI_ADDR,
	       "bzImage area overlaps the boot sector or multiboot areas");
_Static_assert(EMT_BZ_IDMAP_END % GiB == 0 && BZ_IDMAP_PDS <= BZ_PTES_PER_TABLE,
	       "identity map must be whole page directories");

/* Raw images: real mode, boot drive 0x80 in dl, like a BIOS. */
#define RAW_BOOT_DRIVE 0x80

/* One load in progress: its arguments and where its error goes. */
struct loader {
	const struct emt_load_args *a;
	char *err;
	size_t errlen;
};

/* A multiboot header as found in the image, fields copied out once. */
struct mb_header {
	uint64_t off;  /* file offset of the magic */
	uint32_t flags;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr;
	uint32_t entry_addr;
};

/* The parts of an ELF header we use, read once. */
struct elf_image {
	bool is64;
	uint64_t entry;
	uint64_t phoff;
	uint16_t phentsize, phnum;
};

/* One program header, read once. */
struct elf_seg {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz;
};

/* Where the kernel landed and where it starts. */
struct mb_kernel {
	uint64_t entry;
	uint64_t end;  /* first byte after the last loaded or zeroed byte */
};

/* Bump allocator over the multiboot info area in guest RAM. */
struct mbi_area {
	uint8_t *ram;
	uint64_t next, end;
};

static int loader_fail(struct loader *l, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record a one-line error for the caller and return rc. */
static int loader_fail(struct loader *l, int rc, const char *fmt, ...)
{
	va_list ap;

	if (l->err && l->errlen) {
		va_start(ap, fmt);
		vsnprintf(l->err, l->errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Does [off, off + len) lie within [0, total)? Cannot overflow. */
static bool range_in(uint64_t off, uint64_t len, uint64_t total)
{
	return off <= total && len <= total - off;
}

static uint64_t read_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = n; i > 0; i--)
		v = (v << 8) | p[i - 1];
	return v;
}

static uint32_t read_le32(const uint8_t *p)
{
	return (uint32_t)read_le(p, 4);
}

static void write_le(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Read a field of an ELF structure at p, little-endian, by its C name. */
#define ELF_FIELD(p, type, field) \
	read_le((p) + offsetof(type, field), sizeof(((type *)0)->field))
#define ELF_EHDR(p, is64, field) \
	((is64) ? ELF_FIELD(p, Elf64_Ehdr, field) \
		: ELF_FIELD(p, Elf32_Ehdr, field))
#define ELF_PHDR(p, is64, field) \
	((is64) ? ELF_FIELD(p, Elf64_Phdr, field) \
		: ELF_FIELD(p, Elf32_Phdr, field))

static uint64_t mib_floor(uint64_t bytes)
{
	return bytes / MiB;
}

static uint64_t mib_ceil(uint64_t bytes)
{
	return bytes / MiB + (bytes % MiB != 0);
}

static bool is_elf(const uint8_t *image, size_t len)
{
	return len >= SELFMAG && memcmp(image, ELFMAG, SELFMAG) == 0;
}

static bool is_bzimage(const uint8_t *image, size_t len)
{
	return len >= BZ_HDRS_OFF + BZ_HDRS_LEN &&
	       read_le(image + BZ_SIG_OFF, 2) == BZ_BOOT_FLAG &&
	       memcmp(image + BZ_HDRS_OFF, BZ_HDRS, BZ_HDRS_LEN) == 0;
}

/*
 * Find the multiboot header: the magic on a 4-byte boundary with the whole
 * 12-byte header inside the first 8 KiB. The first header whose checksum
 * holds wins; if none holds, the first magic is returned with *sum_ok false
 * so the caller can say the checksum is wrong.
 */
static bool mb_find_header(const uint8_t *image, size_t len, uint64_t *off,
			   bool *sum_ok)
{
	size_t limit = len < MB_SEARCH_LEN ? len : MB_SEARCH_LEN;
	bool seen = false;

	*sum_ok = false;
	for (size_t o = 0; o + MB_HEADER_LEN <= limit; o += 4) {
		uint32_t magic = read_le32(image + o);
		uint32_t sum;

		if (magic != MB_HEADER_MAGIC)
			continue;
		/* the spec's sum is modulo 2^32: the wrap is intended */
		sum = magic + read_le32(image + o + MB_HDR_FLAGS) +
		      read_le32(image + o + MB_HDR_CHECKSUM);
		if (sum == 0) {
			*off = o;
			*sum_ok = true;
			return true;
		}
		if (!seen) {
			*off = o;
			seen = true;
		}
	}
	return seen;
}

enum emt_image_kind emt_detect_image(const uint8_t *image, size_t len)
{
	uint64_t off;
	bool sum_ok;

	if (!image)
		return EMT_IMAGE_RAW;
	if (is_elf(image, len))
		return EMT_IMAGE_MULTIBOOT;
	if (is_bzimage(image, len))
		return EMT_IMAGE_BZIMAGE;
	/* A bad checksum still counts, so the loader can say what is wrong. */
	if (mb_find_header(image, len, &off, &sum_ok) &&
	    (read_le32(image + off + MB_HDR_FLAGS) & MB_FLAG_ADDRS))
		return EMT_IMAGE_MULTIBOOT;
	return EMT_IMAGE_RAW;
}

/*
 * Check that [addr, addr + len) is somewhere a multiboot kernel may load:
 * at or above 1 MiB, below 4 GiB (it starts in 32-bit mode) and inside RAM.
 */
static int guest_range_check(struct loader *l, const char *what,
			     uint64_t addr, uint64_t len)
{
	uint64_t ram = l->a->ram_size;
	uint64_t end;

	if (len > UINT64_MAX - addr)
		return loader_fail(l, -ENOEXEC,
				   "%s (0x%" PRIx64 " + 0x%" PRIx64
				   " bytes) wraps around the address space",
				   what, addr, len);
	end = addr + len;
	if (addr < EMT_HIGH_MEM_START)
		return loader_fail(l, -ENOEXEC,
				   "%s loads at 0x%" PRIx64 ", below 1 MiB "
				   "(reserved for the multiboot info and "
				   "real-mode areas)", what, addr);
	if (end > 4 * GiB)
		return loader_fail(l, -ENOEXEC,
				   "%s ends at 0x%" PRIx64 ", above 4 GiB "
				   "(a multiboot kernel starts in 32-bit mode)",
				   what, end);
	if (end > ram)
		return loader_fail(l, -E2BIG,
				   "%s ends at 0x%" PRIx64 ": the image needs "
				   "%" PRIu64 " MiB of guest RAM but the VM has "
				   "%" PRIu64 " MiB", what, end, mib_ceil(end),
				   mib_floor(ram));
	return 0;
}

/* Read and check the ELF file header; program headers are checked later. */
static int elf_read_header(struct loader *l, struct elf_image *e)
{
	const uint8_t *img = l->a->image;
	size_t len = l->a->image_len;
	/* Per class: header sizes and the machine it must be for. */
	static const struct {
		size_t ehsize, phsize;
		uint16_t machine;
	} classes[] = {
		[ELFCLASS32] = { sizeof(Elf32_Ehdr), sizeof(Elf32_Phdr),
				 EM_386 },
		[ELFCLASS64] = { sizeof(Elf64_Ehdr), sizeof(Elf64_Phdr),
				 EM_X86_64 },
	};
	size_t ehsize, phsize;
	uint16_t type, machine, want_machine;

	if (len < EI_NIDENT)
		return loader_fail(l, -ENOEXEC,
				   "ELF header is truncated (%zu bytes)", len);
	if (img[EI_CLASS] != ELFCLASS32 && img[EI_CLASS] != ELFCLASS64)
		return loader_fail(l, -ENOEXEC,
				   "ELF class %u is not supported (need ELF32 "
				   "or ELF64)", img[EI_CLASS]);
	e->is64 = img[EI_CLASS] == ELFCLASS64;
	ehsize = classes[img[EI_CLASS]].ehsize;
	phsize = classes[img[EI_CLASS]].phsize;
	want_machine = classes[img[EI_CLASS]].machine;
	if (img[EI_DATA] != ELFDATA2LSB)
		return loader_fail(l, -ENOEXEC,
				   "ELF image is not little-endian (data "
				   "encoding %u)", img[EI_DATA]);
	if (img[EI_VERSION] != EV_CURRENT)
		return loader_fail(l, -ENOEXEC,
				   "ELF version %u is not supported",
				   img[EI_VERSION]);
	if (len < ehsize)
		return loader_fail(l, -ENOEXEC,
				   "ELF header is truncated (%zu bytes, need "
				   "%zu)", len, ehsize);

	type = (uint16_t)ELF_EHDR(img, e->is64, e_type);
	machine = (uint16_t)ELF_EHDR(img, e->is64, e_machine);
	e->entry = ELF_EHDR(img, e->is64, e_entry);
	e->phoff = ELF_EHDR(img, e->is64, e_phoff);
	e->phentsize = (uint16_t)ELF_EHDR(img, e->is64, e_phentsize);
	e->phnum = (uint16_t)ELF_EHDR(img, e->is64, e_phnum);

	if (type != ET_EXEC)
		return loader_fail(l, -ENOEXEC,
				   "ELF type %u is not an executable (ET_EXEC)",
				   type);
	if (machine != want_machine)
		return loader_fail(l, -ENOEXEC,
				   "ELF machine %u is not supported (an ELF%d "
				   "kernel must be %s)", machine,
				   e->is64 ? 64 : 32,
				   e->is64 ? "EM_X86_64" : "EM_386");
	if (e->phentsize != phsize)
		return loader_fail(l, -ENOEXEC,
				   "ELF program header size is %u bytes, "
				   "expected %zu", e->phentsize, phsize);
	if (e->phnum == 0)
		return loader_fail(l, -ENOEXEC,
				   "ELF image has no program headers");
	if (e->phnum == PN_XNUM)
		return loader_fail(l, -ENOEXEC,
				   "ELF image uses extended program header "
				   "numbering (PN_XNUM), which is not "
				   "supported");
	/* 16-bit times 16-bit: the product cannot overflow 64 bits. */
	if (!range_in(e->phoff, (uint64_t)e->phnum * e->phentsize, len))
		return loader_fail(l, -ENOEXEC,
				   "ELF program headers (%u at offset 0x%" PRIx64
				   ") lie outside the file (%zu bytes)",
				   e->phnum, e->phoff, len);
	return 0;
}

static void elf_read_phdr(const uint8_t *p, bool is64, struct elf_seg *s)
{
	s->type = (uint32_t)ELF_PHDR(p, is64, p_type);
	s->offset = ELF_PHDR(p, is64, p_offset);
	s->vaddr = ELF_PHDR(p, is64, p_vaddr);
	s->paddr = ELF_PHDR(p, is64, p_paddr);
	s->filesz = ELF_PHDR(p, is64, p_filesz);
	s->memsz = ELF_PHDR(p, is64, p_memsz);
}

/*
 * Load every PT_LOAD segment at its p_paddr and zero its bss. The entry
 * point must lie inside a loaded segment: e_entry is taken as a physical
 * address if some segment's [p_paddr, p_paddr + p_memsz) holds it, else,
 * as GRUB does for higher-half kernels, as a virtual address translated
 * through the segment whose [p_vaddr, p_vaddr + p_memsz) holds it.
 */
static int elf_load(struct loader *l, const struct elf_image *e,
		    struct mb_kernel *k)
{
	const uint8_t *img = l->a->image;
	size_t len = l->a->image_len;
	uint64_t end = 0, virt_entry = 0;
	bool phys_hit = false, virt_hit = false;
	unsigned loaded = 0;
	char what[48];
	int rc;

	for (unsigned i = 0; i < e->phnum; i++) {
		struct elf_seg s;

		elf_read_phdr(img + e->phoff + (uint64_t)i * e->phentsize,
			      e->is64, &s);
		if (s.type != PT_LOAD)
			continue;
		if (!range_in(s.offset, s.filesz, len))
			return loader_fail(l, -ENOEXEC,
					   "ELF program header %u lies outside "
					   "the file (0x%" PRIx64 " bytes at "
					   "offset 0x%" PRIx64 ", file is %zu "
					   "bytes)", i, s.filesz, s.offset,
					   len);
		if (s.filesz > s.memsz)
			return loader_fail(l, -ENOEXEC,
					   "ELF program header %u has a file "
					   "size (0x%" PRIx64 ") larger than "
					   "its memory size (0x%" PRIx64 ")",
					   i, s.filesz, s.memsz);
		if (s.memsz == 0)
			continue;
		snprintf(what, sizeof(what), "ELF program header %u", i);
		rc = guest_range_check(l, what, s.paddr, s.memsz);
		if (rc)
			return rc;

		memcpy(l->a->ram + s.paddr, img + s.offset, s.filesz);
		memset(l->a->ram + s.paddr + s.filesz, 0, s.memsz - s.filesz);
		loaded++;
		if (s.paddr + s.memsz > end)
			end = s.paddr + s.memsz;

		if (e->entry >= s.paddr && e->entry - s.paddr < s.memsz)
			phys_hit = true;
		if (!virt_hit && e->entry >= s.vaddr &&
		    e->entry - s.vaddr < s.memsz) {
			virt_entry = s.paddr + (e->entry - s.vaddr);
			virt_hit = true;
		}
	}
	if (!loaded)
		return loader_fail(l, -ENOEXEC,
				   "ELF image has no loadable segments "
				   "(no non-empty PT_LOAD)");
	if (!phys_hit && !virt_hit)
		return loader_fail(l, -ENOEXEC,
				   "ELF entry point 0x%" PRIx64 " is not inside "
				   "any loaded segment", e->entry);
	k->entry = phys_hit ? e->entry : virt_entry;
	/* Implied by the segment checks; kept so the rule is written down. */
	if (k->entry >= 4 * GiB)
		return loader_fail(l, -ENOEXEC,
				   "ELF entry point 0x%" PRIx64 " is above 4 GiB",
				   k->entry);
	k->end = end;
	return 0;
}

/*
 * Load through the header's address fields (flags bit 16, the "a.out
 * kludge"): the file byte at the header's offset goes to header_addr, the
 * load starts header_addr - load_addr bytes before it and runs to
 * load_end_addr (0: the end of the file); bss_end_addr (0: none) ends a
 * zeroed bss; entry_addr must point into the loaded bytes.
 */
static int mb_load_addrs(struct loader *l, const struct mb_header *h,
			 struct mb_kernel *k)
{
	size_t len = l->a->image_len;
	uint64_t skip, file_off, load_len, load_end, mem_end;
	int rc;

	if (h->load_addr > h->header_addr)
		return loader_fail(l, -ENOEXEC,
				   "multiboot load_addr 0x%x is above "
				   "header_addr 0x%x", h->load_addr,
				   h->header_addr);
	skip = (uint64_t)h->header_addr - h->load_addr;
	if (skip > h->off)
		return loader_fail(l, -ENOEXEC,
				   "multiboot header_addr - load_addr (0x%"
				   PRIx64 ") is larger than the header's file "
				   "offset (0x%" PRIx64 "): the load would "
				   "start before the file", skip, h->off);
	file_off = h->off - skip;
	if (h->load_end_addr == 0) {
		load_len = len - file_off;
	} else {
		if (h->load_end_addr <= h->load_addr)
			return loader_fail(l, -ENOEXEC,
					   "multiboot load_end_addr 0x%x is "
					   "not above load_addr 0x%x",
					   h->load_end_addr, h->load_addr);
		load_len = (uint64_t)h->load_end_addr - h->load_addr;
		if (!range_in(file_off, load_len, len))
			return loader_fail(l, -ENOEXEC,
					   "multiboot load range (0x%" PRIx64
					   " bytes at file offset 0x%" PRIx64
					   ") lies outside the file (%zu "
					   "bytes)", load_len, file_off, len);
	}
	/* load_addr < 2^32 and load_len <= len: no overflow. */
	load_end = h->load_addr + load_len;
	mem_end = load_end;
	if (h->bss_end_addr) {
		if (h->bss_end_addr < load_end)
			return loader_fail(l, -ENOEXEC,
					   "multiboot bss_end_addr 0x%x is "
					   "below the end of the loaded data "
					   "(0x%" PRIx64 ")", h->bss_end_addr,
					   load_end);
		mem_end = h->bss_end_addr;
	}
	rc = guest_range_check(l, "multiboot image", h->load_addr,
			       mem_end - h->load_addr);
	if (rc)
		return rc;
	if (h->entry_addr < h->load_addr || h->entry_addr >= load_end)
		return loader_fail(l, -ENOEXEC,
				   "multiboot entry_addr 0x%x is outside the "
				   "loaded image (0x%x-0x%" PRIx64 ")",
				   h->entry_addr, h->load_addr, load_end);

	memcpy(l->a->ram + h->load_addr, l->a->image + file_off, load_len);
	memset(l->a->ram + load_end, 0, mem_end - load_end);
	k->entry = h->entry_addr;
	k->end = mem_end;
	return 0;
}

/* Take len bytes, aligned, from the info area and zero them. */
static int mbi_alloc(struct mbi_area *m, uint64_t len, uint64_t align,
		     uint64_t *addr)
{
	uint64_t at = (m->next + align - 1) & ~(align - 1);

	if (at > m->end || len > m->end - at)
		return -ENOSPC;
	memset(m->ram + at, 0, len);
	m->next = at + len;
	*addr = at;
	return 0;
}

/* Copy a NUL-terminated string of len bytes (without NUL) into the area. */
static int mbi_add_string(struct mbi_area *m, const char *s, size_t len,
			  uint64_t *addr)
{
	int rc = mbi_alloc(m, (uint64_t)len + 1, 1, addr);

	if (rc)
		return rc;
	memcpy(m->ram + *addr, s, len);
	return 0;
}

static void mbi_put_mmap(uint8_t *p, uint64_t base, uint64_t len,
			 uint32_t type)
{
	write_le(p + MBI_MMAP_SIZE, MBI_MMAP_ENTRY_SIZE - MBI_MMAP_BASE, 4);
	write_le(p + MBI_MMAP_BASE, base, 8);
	write_le(p + MBI_MMAP_LEN, len, 8);
	write_le(p + MBI_MMAP_TYPE, type, 4);
}

/*
 * Build the multiboot information in [EMT_MBI_ADDR, EMT_MBI_AREA_END).
 * The command line is always passed (CMDLINE set), "" when none was given;
 * MODS is always set, with one module (the initrd) or none.
 */
static int mbi_build(struct loader *l, const char *cmdline, size_t cmdline_len,
		     bool have_initrd, uint64_t mod_start, uint64_t mod_end)
{
	struct mbi_area m = {
		.ram = l->a->ram,
		.next = EMT_MBI_ADDR,
		.end = EMT_MBI_AREA_END,
	};
	uint64_t ram = l->a->ram_size;
	uint64_t top = ram < 4 * GiB ? ram : 4 * GiB;
	uint64_t info, mmap_at, mods, name, cmd, modstr;
	uint8_t *p;
	int rc;

	rc = mbi_alloc(&m, MBI_SIZE, 8, &info);
	if (rc)
		goto out_full;
	rc = mbi_alloc(&m, MBI_MMAP_ENTRIES * MBI_MMAP_ENTRY_SIZE, 8, &mmap_at);
	if (rc)
		goto out_full;
	/* One slot even when there is no module: mods_addr stays valid. */
	rc = mbi_alloc(&m, MBI_MOD_SIZE, 8, &mods);
	if (rc)
		goto out_full;
	rc = mbi_add_string(&m, LOADER_NAME, strlen(LOADER_NAME), &name);
	if (rc)
		goto out_full;
	rc = mbi_add_string(&m, INITRD_MODULE_STRING,
			    strlen(INITRD_MODULE_STRING), &modstr);
	if (rc)
		goto out_full;
	rc = mbi_add_string(&m, cmdline, cmdline_len, &cmd);
	if (rc)
		goto out_full;

	p = l->a->ram + mmap_at;
	mbi_put_mmap(p, 0, EMT_LOW_MEM_END, MBI_MMAP_AVAILABLE);
	mbi_put_mmap(p + MBI_MMAP_ENTRY_SIZE, EMT_LOW_MEM_END,
		     EMT_HIGH_MEM_START - EMT_LOW_MEM_END, MBI_MMAP_RESERVED);
	mbi_put_mmap(p + 2 * MBI_MMAP_ENTRY_SIZE, EMT_HIGH_MEM_START,
		     ram - EMT_HIGH_MEM_START, MBI_MMAP_AVAILABLE);

	if (have_initrd) {
		p = l->a->ram + mods;
		write_le(p + MBI_MOD_START, mod_start, 4);
		write_le(p + MBI_MOD_END, mod_end, 4);
		write_le(p + MBI_MOD_STRING, modstr, 4);
		/* p + 12: reserved, zeroed by mbi_alloc */
	}

	p = l->a->ram + info;
	write_le(p + MBI_FLAGS, MBI_F_MEM | MBI_F_CMDLINE | MBI_F_MODS |
		 MBI_F_MMAP | MBI_F_LOADER_NAME, 4);
	write_le(p + MBI_MEM_LOWER, EMT_LOW_MEM_END / KiB, 4);
	write_le(p + MBI_MEM_UPPER, (top - EMT_HIGH_MEM_START) / KiB, 4);
	write_le(p + MBI_CMDLINE, cmd, 4);
	write_le(p + MBI_MODS_COUNT, have_initrd ? 1 : 0, 4);
	write_le(p + MBI_MODS_ADDR, mods, 4);
	write_le(p + MBI_MMAP_LENGTH, MBI_MMAP_ENTRIES * MBI_MMAP_ENTRY_SIZE, 4);
	write_le(p + MBI_MMAP_ADDR, mmap_at, 4);
	write_le(p + MBI_LOADER_NAME, name, 4);
	return 0;

out_full:
	return loader_fail(l, -E2BIG,
			   "multiboot information does not fit in its area "
			   "(0x%llx-0x%llx)", EMT_MBI_ADDR, EMT_MBI_AREA_END);
}

/* Place the initrd as module 0 on the first 4 KiB boundary after *end. */
static int mb_place_initrd(struct loader *l, uint64_t *end,
			   uint64_t *mod_start, uint64_t *mod_end)
{
	uint64_t ram = l->a->ram_size;
	uint64_t top = ram < 4 * GiB ? ram : 4 * GiB;
	uint64_t start = (*end + MODULE_ALIGN - 1) & ~(MODULE_ALIGN - 1);
	uint64_t free_bytes = start < top ? top - start : 0;
	uint64_t len = l->a->initrd_len;

	if (len > free_bytes) {
		if (top < ram)
			return loader_fail(l, -E2BIG,
					   "initrd is %" PRIu64 " bytes but "
					   "only %" PRIu64 " bytes are free "
					   "below 4 GiB after the kernel (from "
					   "0x%" PRIx64 ")", len, free_bytes,
					   start);
		return loader_fail(l, -E2BIG,
				   "initrd is %" PRIu64 " bytes but only %"
				   PRIu64 " bytes of guest RAM are free after "
				   "the kernel (from 0x%" PRIx64 "): the image "
				   "needs %" PRIu64 " MiB of guest RAM but the "
				   "VM has %" PRIu64 " MiB", len, free_bytes,
				   start, mib_ceil(start + len),
				   mib_floor(ram));
	}
	if (len)  /* an empty module may start at the very end of RAM */
		memcpy(l->a->ram + start, l->a->initrd, len);
	*mod_start = start;
	*mod_end = start + len;
	*end = start + len;
	return 0;
}

/* Read and check the multiboot header of any multiboot image. */
static int mb_read_header(struct loader *l, bool elf, struct mb_header *h)
{
	const uint8_t *img = l->a->image;
	size_t len = l->a->image_len;
	uint32_t unknown;
	bool sum_ok;

	if (!mb_find_header(img, len, &h->off, &sum_ok))
		return loader_fail(l, -ENOEXEC,
				   "%s has no multiboot header in its first "
				   "%u bytes", elf ? "ELF image" : "image",
				   MB_SEARCH_LEN);
	if (!sum_ok)
		return loader_fail(l, -ENOEXEC,
				   "multiboot header checksum is wrong (header "
				   "at offset 0x%" PRIx64 ")", h->off);
	h->flags = read_le32(img + h->off + MB_HDR_FLAGS);
	if (h->flags & MB_FLAG_VIDEO)
		return loader_fail(l, -ENOEXEC,
				   "multiboot header asks for a video mode "
				   "(flag bit 2), but Bulkhead provides no "
				   "framebuffer");
	unknown = h->flags & MB_FLAGS_REQUIRED & ~MB_FLAGS_KNOWN;
	if (unknown)
		return loader_fail(l, -ENOEXEC,
				   "multiboot header requires unsupported "
				   "feature (flag bit %d)",
				   __builtin_ctz(unknown));
	if (!(h->flags & MB_FLAG_ADDRS))
		return 0;
	if (h->off + MB_HEADER_ADDRS_LEN > MB_SEARCH_LEN ||
	    h->off + MB_HEADER_ADDRS_LEN > len)
		return loader_fail(l, -ENOEXEC,
				   "multiboot header at offset 0x%" PRIx64
				   " has address fields (flag bit 16) past the "
				   "%s", h->off,
				   h->off + MB_HEADER_ADDRS_LEN > len ?
				   "end of the file" : "first 8192 bytes");
	h->header_addr = read_le32(img + h->off + MB_HDR_HEADER_ADDR);
	h->load_addr = read_le32(img + h->off + MB_HDR_LOAD_ADDR);
	h->load_end_addr = read_le32(img + h->off + MB_HDR_LOAD_END_ADDR);
	h->bss_end_addr = read_le32(img + h->off + MB_HDR_BSS_END_ADDR);
	h->entry_addr = read_le32(img + h->off + MB_HDR_ENTRY_ADDR);
	return 0;
}

static int load_multiboot(struct loader *l, struct emt_boot *b)
{
	const struct emt_load_args *a = l->a;
	bool elf = is_elf(a->image, a->image_len);
	/* No command line is passed as "" (see emt.h). */
	const char *cmdline = a->cmdline ? a->cmdline : "";
	size_t cmdline_len = a->cmdline ? strnlen(a->cmdline, CMDLINE_MAX) : 0;
	struct elf_image e = { 0 };
	struct mb_header h = { 0 };
	struct mb_kernel k = { 0 };
	uint64_t mod_start = 0, mod_end = 0;
	int rc;

	if (cmdline_len >= CMDLINE_MAX) {
		cmdline_len = strlen(cmdline);
		rc = loader_fail(l, -EINVAL,
				 "command line is too long (%zu bytes, at most "
				 "%u)", cmdline_len, CMDLINE_MAX - 1);
		goto out;
	}
	/* A file that says ELF must be a sound x86 ELF executable. */
	if (elf) {
		rc = elf_read_header(l, &e);
		if (rc)
			goto out;
	}
	rc = mb_read_header(l, elf, &h);
	if (rc)
		goto out;
	/* Bit 16 wins over the ELF headers, as the spec says. */
	if (h.flags & MB_FLAG_ADDRS)
		rc = mb_load_addrs(l, &h, &k);
	else if (elf)
		rc = elf_load(l, &e, &k);
	else
		rc = loader_fail(l, -ENOEXEC,
				 "multiboot image is neither ELF nor has "
				 "address fields (flag bit 16)");
	if (rc)
		goto out;
	if (a->initrd) {
		rc = mb_place_initrd(l, &k.end, &mod_start, &mod_end);
		if (rc)
			goto out;
	}
	rc = mbi_build(l, cmdline, cmdline_len, a->initrd != NULL, mod_start,
		       mod_end);
	if (rc)
		goto out;

	b->mode = EMT_MODE_PROT32;
	b->rip = k.entry;
	b->rax = MB_BOOT_MAGIC;
	b->rbx = EMT_MBI_ADDR;
	b->image_end = k.end;
out:
	return rc;
}

/* ---- Linux bzImage ---------------------------------------------------- */

/*
 * The setup header as found in the image: its bytes copied once into raw
 * (everything from the file start up to the header's end; the rest zero),
 * and the fields we use read from that copy.
 */
struct bz_header {
	uint8_t raw[BP_HDR_LIMIT];
	uint32_t hdr_end;            /* 0x202 + the byte at 0x201 */
	uint16_t version;
	uint8_t loadflags;
	uint16_t xloadflags;
	bool relocatable;
	uint32_t syssize;            /* protected-mode size in 16-byte units */
	uint32_t initrd_addr_max;    /* highest address the initrd may use */
	uint32_t kernel_alignment;
	uint32_t cmdline_size;       /* longest command line, without NUL */
	uint32_t init_size;
	uint64_t pref_address;
	uint64_t setup_len;          /* file offset of the protected-mode part */
	uint64_t pm_len;             /* its length: the rest of the file */
};

/* Where everything goes; decided before guest RAM is written. */
struct bz_plan {
	uint64_t load;               /* protected-mode kernel */
	uint64_t runtime;            /* where it runs: init_size from here */
	uint64_t kernel_end;         /* end of [load, runtime + init_size) */
	uint64_t initrd_addr, initrd_len;  /* 0, 0: none */
	const char *cmdline;
	size_t cmdline_len;
};

static uint64_t align_up(uint64_t v, uint64_t align)
{
	return (v + align - 1) & ~(align - 1);
}

static uint64_t bz_field(const struct bz_header *h, unsigned off, size_t n)
{
	return read_le(h->raw + off, n);
}

/* "2.15" from 0x020f. */
#define BZ_VER(v) ((v) >> 8), ((v) & 0xff)

/*
 * Copy the setup header into h->raw (zero past its end) once the file
 * shows one, and check that it ends inside both boot_params and the file.
 */
static int bz_copy_header(struct loader *l, struct bz_header *h)
{
	const uint8_t *img = l->a->image;
	size_t len = l->a->image_len;
	size_t snap = len < BP_HDR_LIMIT ? len : BP_HDR_LIMIT;

	memset(h, 0, sizeof(*h));
	memcpy(h->raw, img, snap);
	/* detection saw these in the file; the copy is what counts */
	if (snap < BZ_HDRS_OFF + BZ_HDRS_LEN ||
	    bz_field(h, BZ_SIG_OFF, 2) != BZ_BOOT_FLAG ||
	    memcmp(h->raw + BZ_HDRS_OFF, BZ_HDRS, BZ_HDRS_LEN) != 0)
		return loader_fail(l, -ENOEXEC,
				   "Linux setup header is missing (no boot "
				   "flag 0xAA55 at 0x1fe or no \"HdrS\" at "
				   "0x202)");
	h->hdr_end = BZ_HDRS_OFF + h->raw[BZ_JUMP_LEN_OFF];
	if (h->hdr_end > BP_HDR_LIMIT)
		return loader_fail(l, -ENOEXEC,
				   "Linux setup header claims to end at 0x%x "
				   "(the jump at 0x200), past 0x%x where "
				   "boot_params has room for it", h->hdr_end,
				   BP_HDR_LIMIT);
	if (h->hdr_end > len)
		return loader_fail(l, -ENOEXEC,
				   "image ends at 0x%zx, inside the Linux "
				   "setup header (which ends at 0x%x)", len,
				   h->hdr_end);
	memset(h->raw + h->hdr_end, 0, BP_HDR_LIMIT - h->hdr_end);
	return 0;
}

/* A boot protocol with the 64-bit entry (2.12+), and a header that long. */
static int bz_check_version(struct loader *l, struct bz_header *h)
{
	static const struct {
		uint16_t min;
		const char *why;
	} needs[] = {
		{ BZ_MIN_VERSION, "is too old: Bulkhead needs 2.06 or later "
				  "(Linux 2.6.22+)" },
		{ BZ_XLF_VERSION, "has no 64-bit entry point: Bulkhead boots "
				  "Linux through the 64-bit boot protocol "
				  "(2.12 or later, Linux 3.8+)" },
	};

	h->version = (uint16_t)bz_field(h, BZ_VERSION_OFF, 2);
	for (size_t i = 0; i < sizeof(needs) / sizeof(needs[0]); i++)
		if (h->version < needs[i].min)
			return loader_fail(l, -ENOEXEC,
					   "Linux boot protocol %u.%02u %s",
					   BZ_VER(h->version), needs[i].why);
	if (h->hdr_end < BZ_HDR_MIN_END)
		return loader_fail(l, -ENOEXEC,
				   "Linux setup header ends at 0x%x, too short "
				   "for boot protocol %u.%02u (fields up to "
				   "0x%x)", h->hdr_end, BZ_VER(h->version),
				   BZ_HDR_MIN_END);
	return 0;
}

/*
 * Where the protected-mode kernel starts (after the setup sectors), and
 * that the file holds all of it, 64-bit entry point included.
 */
static int bz_check_layout(struct loader *l, struct bz_header *h)
{
	size_t len = l->a->image_len;
	unsigned setup_sects;

	setup_sects = h->raw[BZ_SETUP_SECTS_OFF];
	if (setup_sects == 0)
		setup_sects = BZ_DEFAULT_SETUP_SECTS;
	h->setup_len = (uint64_t)(setup_sects + 1) * BZ_SECTOR;
	if (h->setup_len >= len)
		return loader_fail(l, -ENOEXEC,
				   "Linux setup_sects %u puts the protected-"
				   "mode kernel at offset 0x%" PRIx64 ", but "
				   "the image is only %zu bytes", setup_sects,
				   h->setup_len, len);
	h->pm_len = len - h->setup_len;
	if ((uint64_t)h->syssize * 16 > h->pm_len)
		return loader_fail(l, -ENOEXEC,
				   "Linux syssize says the protected-mode "
				   "kernel is %" PRIu64 " bytes, but the image "
				   "holds only %" PRIu64 " after the setup "
				   "sectors (truncated file?)",
				   (uint64_t)h->syssize * 16, h->pm_len);
	if (h->pm_len <= BZ_ENTRY64_OFF)
		return loader_fail(l, -ENOEXEC,
				   "Linux protected-mode kernel is only %"
				   PRIu64 " bytes: its 64-bit entry at offset "
				   "0x%x is missing", h->pm_len, BZ_ENTRY64_OFF);
	return 0;
}

/* Read and check the setup header of a bzImage. */
static int bz_read_header(struct loader *l, struct bz_header *h)
{
	int rc;

	rc = bz_copy_header(l, h);
	if (rc == 0)
		rc = bz_check_version(l, h);
	if (rc)
		return rc;
	h->loadflags = h->raw[BZ_LOADFLAGS_OFF];
	h->xloadflags = (uint16_t)bz_field(h, BZ_XLOADFLAGS_OFF, 2);
	h->relocatable = h->raw[BZ_RELOCATABLE_OFF] != 0;
	h->syssize = (uint32_t)bz_field(h, BZ_SYSSIZE_OFF, 4);
	h->initrd_addr_max = (uint32_t)bz_field(h, BZ_INITRD_ADDR_MAX_OFF, 4);
	h->kernel_alignment = (uint32_t)bz_field(h, BZ_KERNEL_ALIGNMENT_OFF, 4);
	h->cmdline_size = (uint32_t)bz_field(h, BZ_CMDLINE_SIZE_OFF, 4);
	h->init_size = (uint32_t)bz_field(h, BZ_INIT_SIZE_OFF, 4);
	h->pref_address = bz_field(h, BZ_PREF_ADDRESS_OFF, 8);

	if (!(h->loadflags & BZ_LOADED_HIGH))
		return loader_fail(l, -ENOEXEC,
				   "Linux image is a zImage (loadflags bit "
				   "LOADED_HIGH clear), which must load at "
				   "0x10000: use a bzImage");
	if (!(h->xloadflags & BZ_XLF_KERNEL_64))
		return loader_fail(l, -ENOEXEC,
				   "Linux kernel has no 64-bit entry point "
				   "(xloadflags bit XLF_KERNEL_64 clear): a "
				   "32-bit kernel cannot be booted; Bulkhead "
				   "uses the 64-bit boot protocol");
	return bz_check_layout(l, h);
}

/*
 * Check that [addr, addr + len) lies in memory the kernel can use at entry:
 * guest RAM inside the identity map. what names the range for the error.
 */
static int bz_range_check(struct loader *l, const char *what, uint64_t addr,
			  uint64_t len)
{
	uint64_t ram = l->a->ram_size;
	uint64_t end;

	if (len > UINT64_MAX - addr)
		return loader_fail(l, -ENOEXEC,
				   "%s (0x%" PRIx64 " bytes at 0x%" PRIx64
				   ") wraps around the address space", what,
				   len, addr);
	end = addr + len;
	if (end > EMT_BZ_IDMAP_END && ram > EMT_BZ_IDMAP_END)
		return loader_fail(l, -ENOEXEC,
				   "%s (0x%" PRIx64 " bytes at 0x%" PRIx64
				   ") ends above the %llu GiB the loader "
				   "identity-maps", what, len, addr,
				   EMT_BZ_IDMAP_END / GiB);
	if (end > ram)
		return loader_fail(l, -E2BIG,
				   "%s (0x%" PRIx64 " bytes at 0x%" PRIx64
				   ") ends at 0x%" PRIx64 ": the kernel needs "
				   "%" PRIu64 " MiB of guest RAM but the VM has "
				   "%" PRIu64 " MiB; raise --mem", what, len,
				   addr, end, mib_ceil(end), mib_floor(ram));
	return 0;
}

/*
 * Decide where the kernel goes. The boot protocol: a relocatable kernel
 * should be loaded at pref_address; wherever it is loaded, it moves itself
 * up to pref_address and its kernel_alignment before decompressing, and
 * needs init_size bytes from there (its "runtime start"). A kernel that is
 * not relocatable must be loaded at pref_address. We load at pref_address,
 * or, for a relocatable kernel whose pref_address lies below 1 MiB (where
 * the loader's tables are), at the first aligned address above 1 MiB.
 */
static int bz_place_kernel(struct loader *l, const struct bz_header *h,
			   struct bz_plan *p)
{
	uint64_t pref = h->pref_address;
	uint64_t align = h->kernel_alignment;
	char what[96];
	int rc;

	if (h->relocatable) {
		if (align == 0 || (align & (align - 1)) || align > BZ_MAX_ALIGN)
			return loader_fail(l, -ENOEXEC,
					   "Linux kernel_alignment 0x%" PRIx64
					   " is not a power of two up to 1 GiB",
					   align);
		p->load = pref >= EMT_HIGH_MEM_START ?
			  pref : align_up(EMT_HIGH_MEM_START, align);
	} else {
		if (pref < EMT_HIGH_MEM_START)
			return loader_fail(l, -ENOEXEC,
					   "Linux kernel is not relocatable and "
					   "must run at its pref_address 0x%"
					   PRIx64 ", below 1 MiB", pref);
		p->load = pref;
	}
	snprintf(what, sizeof(what), "Linux kernel loaded at %s",
		 p->load == pref ? "its pref_address" :
		 "its first kernel_alignment boundary above 1 MiB");
	rc = bz_range_check(l, what, p->load, h->pm_len);
	if (rc)
		return rc;
	/* p->load is now inside RAM, so none of this can wrap. */
	p->runtime = p->load;
	if (h->relocatable) {
		if (p->runtime < pref)
			p->runtime = pref;
		p->runtime = align_up(p->runtime, align);
	}
	rc = bz_range_check(l, "Linux kernel's init_size", p->runtime,
			    h->init_size);
	if (rc)
		return rc;
	p->kernel_end = p->runtime + h->init_size;
	if (p->kernel_end < p->load + h->pm_len)
		p->kernel_end = p->load + h->pm_len;
	return 0;
}

static int bz_check_cmdline(struct loader *l, const struct bz_header *h,
			    struct bz_plan *p)
{
	const size_t area = EMT_BZ_CMDLINE_END - EMT_BZ_CMDLINE_ADDR - 1;
	const char *cmdline = l->a->cmdline ? l->a->cmdline : "";
	size_t len = strnlen(cmdline, CMDLINE_MAX);

	if (len >= CMDLINE_MAX)
		len = strlen(cmdline);
	if (len > h->cmdline_size)
		return loader_fail(l, -EINVAL,
				   "command line is too long for this Linux "
				   "kernel (%zu bytes, its cmdline_size allows "
				   "%u)", len, h->cmdline_size);
	if (len > area)
		return loader_fail(l, -EINVAL,
				   "command line is too long (%zu bytes, at "
				   "most %zu for a Linux kernel)", len, area);
	p->cmdline = cmdline;
	p->cmdline_len = len;
	return 0;
}

/*
 * Put the initrd as high as it may go: below initrd_addr_max, the end of
 * RAM and the identity map, on a page boundary, above the kernel's
 * [load, kernel_end) or else below it (but above 1 MiB).
 */
static int bz_place_initrd(struct loader *l, const struct bz_header *h,
			   struct bz_plan *p)
{
	uint64_t ram = l->a->ram_size;
	uint64_t len = l->a->initrd_len;
	uint64_t top = ram < EMT_BZ_IDMAP_END ? ram : EMT_BZ_IDMAP_END;
	uint64_t below;
	const char *bound = ram < EMT_BZ_IDMAP_END ? "the end of guest RAM" :
			    "the identity map";

	if (!l->a->initrd || len == 0)
		return 0;
	if (len > UINT32_MAX)
		return loader_fail(l, -E2BIG,
				   "initrd is %" PRIu64 " bytes, more than the "
				   "boot protocol's ramdisk_size can describe",
				   len);
	if ((uint64_t)h->initrd_addr_max + 1 < top) {
		top = (uint64_t)h->initrd_addr_max + 1;
		bound = "the kernel's initrd_addr_max";
	}
	if (len <= top) {
		p->initrd_addr = (top - len) & ~(BZ_INITRD_ALIGN - 1);
		if (p->initrd_addr >= p->kernel_end)
			goto out_found;
	}
	below = top < p->load ? top : p->load;
	if (len <= below) {
		p->initrd_addr = (below - len) & ~(BZ_INITRD_ALIGN - 1);
		if (p->initrd_addr >= EMT_HIGH_MEM_START)
			goto out_found;
	}
	return loader_fail(l, -E2BIG,
			   "initrd is %" PRIu64 " bytes but does not fit "
			   "beside the Linux kernel (0x%" PRIx64 "-0x%" PRIx64
			   ") below 0x%" PRIx64 " (%s) in a %" PRIu64 " MiB "
			   "VM; raise --mem", len, p->load, p->kernel_end,
			   top, bound, mib_floor(ram));
out_found:
	p->initrd_len = len;
	return 0;
}

static void bz_put_e820(uint8_t *bp, unsigned i, uint64_t base, uint64_t len,
			uint32_t type)
{
	uint8_t *e = bp + BP_E820_TABLE + i * BP_E820_ENTRY_SIZE;

	write_le(e + BP_E820_ADDR, base, 8);
	write_le(e + BP_E820_LEN, len, 8);
	write_le(e + BP_E820_TYPE, type, 4);
}

static void bz_write_boot_params(const struct loader *l,
				 const struct bz_header *h,
				 const struct bz_plan *p)
{
	uint8_t *bp = l->a->ram + EMT_BZ_BOOT_PARAMS_ADDR;
	uint64_t ram = l->a->ram_size;

	memset(bp, 0, BP_SIZE);
	memcpy(bp + BZ_SETUP_SECTS_OFF, h->raw + BZ_SETUP_SECTS_OFF,
	       h->hdr_end - BZ_SETUP_SECTS_OFF);
	bp[BZ_TYPE_OF_LOADER_OFF] = BZ_TYPE_OF_LOADER;
	bp[BZ_LOADFLAGS_OFF] = h->loadflags | BZ_CAN_USE_HEAP;
	write_le(bp + BZ_HEAP_END_PTR_OFF, BZ_HEAP_END_PTR, 2);
	write_le(bp + BZ_CMD_LINE_PTR_OFF, EMT_BZ_CMDLINE_ADDR, 4);
	write_le(bp + BZ_RAMDISK_IMAGE_OFF, p->initrd_addr, 4);
	write_le(bp + BZ_RAMDISK_SIZE_OFF, p->initrd_len, 4);
	/* the loader passes no setup_data list, whatever the image says */
	write_le(bp + BZ_SETUP_DATA_OFF, 0, 8);

	bz_put_e820(bp, 0, 0, EMT_LOW_MEM_END, BP_E820_RAM);
	bz_put_e820(bp, 1, EMT_LOW_MEM_END,
		    EMT_HIGH_MEM_START - EMT_LOW_MEM_END, BP_E820_RESERVED);
	bz_put_e820(bp, 2, EMT_HIGH_MEM_START, ram - EMT_HIGH_MEM_START,
		    BP_E820_RAM);
	bp[BP_E820_ENTRIES] = BP_E820_COUNT;
}

/* Identity-map [0, EMT_BZ_IDMAP_END) with 2 MiB pages. */
static void bz_write_page_tables(uint8_t *ram)
{
	const uint64_t pml4 = EMT_BZ_PAGE_TABLES_ADDR;
	const uint64_t pdpt = pml4 + BZ_PAGE;
	const uint64_t pd = pdpt + BZ_PAGE;
	const uint64_t dir = BZ_PTE_PRESENT | BZ_PTE_WRITE;

	memset(ram + pml4, 0, EMT_BZ_PAGE_TABLES_END - pml4);
	write_le(ram + pml4, pdpt | dir, 8);
	for (uint64_t i = 0; i < BZ_IDMAP_PDS; i++) {
		write_le(ram + pdpt + 8 * i, (pd + i * BZ_PAGE) | dir, 8);
		for (uint64_t j = 0; j < BZ_PTES_PER_TABLE; j++)
			write_le(ram + pd + i * BZ_PAGE + 8 * j,
				 (i * GiB + j * BZ_LARGE_PAGE) | dir |
				 BZ_PTE_LARGE, 8);
	}
}

static void bz_write_gdt(uint8_t *ram)
{
	uint8_t *gdt = ram + EMT_BZ_GDT_ADDR;

	memset(gdt, 0, EMT_BZ_GDT_LIMIT + 1);
	write_le(gdt + BZ_BOOT_CS, BZ_GDT_CODE64, 8);
	write_le(gdt + BZ_BOOT_DS, BZ_GDT_DATA, 8);
}

static int load_bzimage(struct loader *l, struct emt_boot *b)
{
	const struct emt_load_args *a = l->a;
	struct bz_header h;
	struct bz_plan p = { 0 };
	uint8_t *cmd;
	int rc;

	rc = bz_read_header(l, &h);
	if (rc)
		goto out;
	rc = bz_check_cmdline(l, &h, &p);
	if (rc)
		goto out;
	rc = bz_place_kernel(l, &h, &p);
	if (rc)
		goto out;
	rc = bz_place_initrd(l, &h, &p);
	if (rc)
		goto out;

	/* Everything is checked; only now is guest RAM written. */
	memcpy(a->ram + p.load, a->image + h.setup_len, h.pm_len);
	if (p.initrd_len)
		memcpy(a->ram + p.initrd_addr, a->initrd, p.initrd_len);
	cmd = a->ram + EMT_BZ_CMDLINE_ADDR;
	memset(cmd, 0, EMT_BZ_CMDLINE_END - EMT_BZ_CMDLINE_ADDR);
	memcpy(cmd, p.cmdline, p.cmdline_len);
	bz_write_gdt(a->ram);
	bz_write_page_tables(a->ram);
	bz_write_boot_params(l, &h, &p);

	b->mode = EMT_MODE_LONG64;
	b->rip = p.load + BZ_ENTRY64_OFF;
	b->rsi = EMT_BZ_BOOT_PARAMS_ADDR;
	b->cr3 = EMT_BZ_PAGE_TABLES_ADDR;
	b->gdt_base = EMT_BZ_GDT_ADDR;
	b->gdt_limit = EMT_BZ_GDT_LIMIT;
	b->image_end = p.kernel_end;
	if (p.initrd_len && p.initrd_addr + p.initrd_len > b->image_end)
		b->image_end = p.initrd_addr + p.initrd_len;
out:
	return rc;
}

static int load_raw(struct loader *l, struct emt_boot *b)
{
	const struct emt_load_args *a = l->a;

	if (a->initrd)
		return loader_fail(l, -EINVAL,
				   "--initrd needs a multiboot or Linux image");
	if (a->cmdline && a->cmdline[0])
		return loader_fail(l, -EINVAL,
				   "--cmdline needs a multiboot or Linux image");
	if (a->image_len > EMT_RAW_MAX)
		return loader_fail(l, -E2BIG,
				   "raw image is %zu bytes but at most %llu fit "
				   "between 0x%llx and 0x%llx", a->image_len,
				   EMT_RAW_MAX, EMT_BOOTSECT_ADDR,
				   EMT_LOW_MEM_END);
	/* Implied by ram_size >= 2 MiB; kept so the rule is written down. */
	if (!range_in(EMT_BOOTSECT_ADDR, a->image_len, a->ram_size))
		return loader_fail(l, -E2BIG,
				   "raw image does not fit in guest RAM");

	memcpy(a->ram + EMT_BOOTSECT_ADDR, a->image, a->image_len);
	b->mode = EMT_MODE_REAL;
	b->rip = EMT_BOOTSECT_ADDR;
	b->rdx = RAW_BOOT_DRIVE;
	b->rsp = EMT_BOOTSECT_ADDR;
	b->image_end = EMT_BOOTSECT_ADDR + a->image_len;
	return 0;
}

int emt_load_image(const struct emt_load_args *a, struct emt_boot *boot,
		   char *err, size_t errlen)
{
	struct loader l = { .a = a, .err = err, .errlen = errlen };
	struct emt_boot b = { 0 };
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!a || !boot || !a->ram) {
		rc = loader_fail(&l, -EINVAL,
				 "loader called without arguments, guest RAM "
				 "or boot state");
		goto out;
	}
	if (a->ram_size < LOADER_MIN_RAM) {
		rc = loader_fail(&l, -EINVAL,
				 "guest RAM is %" PRIu64 " KiB but the loader "
				 "needs at least 2 MiB", a->ram_size / KiB);
		goto out;
	}
	if (!a->image || a->image_len == 0) {
		rc = loader_fail(&l, -ENOEXEC, "image is empty");
		goto out;
	}

	b.kind = emt_detect_image(a->image, a->image_len);
	switch (b.kind) {
	case EMT_IMAGE_MULTIBOOT:
		rc = load_multiboot(&l, &b);
		break;
	case EMT_IMAGE_RAW:
		rc = load_raw(&l, &b);
		break;
	case EMT_IMAGE_BZIMAGE:
		rc = load_bzimage(&l, &b);
		break;
	default:
		rc = loader_fail(&l, -ENOEXEC, "unknown image kind %d",
				 (int)b.kind);
		break;
	}
	if (rc == 0)
		*boot = b;
out:
	return rc;
}
