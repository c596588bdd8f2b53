/* SPDX-License-Identifier: MIT */
/*
 * The Linux bzImage loader (emt-worker/loader.c): synthetic bzImages built
 * in memory and loaded into a RAM buffer fenced by PROT_NONE guards, with
 * the image and the initrd copied so that they end right at a guard, so
 * any access outside guest RAM, the image or the initrd crashes the test.
 * Checked: where the kernel, initrd and command line go, boot_params (the
 * setup header copy, the loader's fields, the e820 map), the GDT and page
 * tables, the boot state, every refusal and its message, and a
 * deterministic mutation run.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "emt-worker/loader.h"
#include "tests/unit/suites.h"
#include "tests/unit/testlib.h"

#define MiB (1024ull * 1024)
#define GiB (1024 * MiB)
#define TEST_RAM (32 * MiB)

/* The synthetic image: 4 setup sectors after the boot sector, then the
 * protected-mode part. */
#define IMG_CAP 0x4000
#define SETUP_SECTS 4
#define SETUP_LEN ((SETUP_SECTS + 1) * 512)
#define PM_LEN 0x1800
#define PREF 0x1000000ull
#define ALIGN 0x200000u
#define INIT_SIZE 0x100000u
#define CMDLINE_SIZE 2047u
#define HDR_END 0x26c

/* struct boot_params / setup header offsets */
#define BP_E820_ENTRIES 0x1e8
#define BP_SENTINEL 0x1ef
#define OFF_SETUP_SECTS 0x1f1
#define OFF_SYSSIZE 0x1f4
#define OFF_BOOT_FLAG 0x1fe
#define OFF_JUMP 0x200
#define OFF_HDRS 0x202
#define OFF_VERSION 0x206
#define OFF_TYPE_OF_LOADER 0x210
#define OFF_LOADFLAGS 0x211
#define OFF_CODE32_START 0x214
#define OFF_RAMDISK_IMAGE 0x218
#define OFF_RAMDISK_SIZE 0x21c
#define OFF_HEAP_END_PTR 0x224
#define OFF_CMD_LINE_PTR 0x228
#define OFF_INITRD_ADDR_MAX 0x22c
#define OFF_KERNEL_ALIGNMENT 0x230
#define OFF_RELOCATABLE 0x234
#define OFF_XLOADFLAGS 0x236
#define OFF_CMDLINE_SIZE 0x238
#define OFF_SETUP_DATA 0x250
#define OFF_PREF_ADDRESS 0x258
#define OFF_INIT_SIZE 0x260
#define BP_HDR_LIMIT 0x290
#define BP_E820_TABLE 0x2d0

#define BP (EMT_BZ_BOOT_PARAMS_ADDR)

/* ---- guarded buffers ---------------------------------------------------- */

static struct tl_guarded ram_buf, image_buf, initrd_buf;
static uint8_t *ram;

static void bz_setup(void)
{
	tl_guarded_alloc(&ram_buf, TEST_RAM, true);
	ram = ram_buf.start;
	tl_guarded_alloc(&image_buf, IMG_CAP, true);
	tl_guarded_alloc(&initrd_buf, 24 * MiB, true);
}

static void bz_teardown(void)
{
	tl_guarded_free(&initrd_buf);
	tl_guarded_free(&image_buf);
	tl_guarded_free(&ram_buf);
	ram = NULL;
}

/* ---- little-endian access ---------------------------------------------- */

static uint64_t ram_le(uint64_t addr, size_t n)
{
	ck_assert_uint_le(addr + n, TEST_RAM);
	return tl_get_le(ram + addr, n);
}

/* Index of the first byte in [p, p + n) that is not v, or n. */
static size_t first_not(const uint8_t *p, size_t n, uint8_t v)
{
	size_t j = 0;

	while (j < n && p[j] == v)
		j++;
	return j;
}

/* ---- image builder ----------------------------------------------------- */

struct test_bz {
	uint16_t version;
	uint8_t setup_sects;      /* the file's layout */
	int setup_sects_hdr;      /* what the header says; -1: the same */
	uint8_t jump_len;         /* the header ends at 0x202 + this */
	uint8_t loadflags;
	uint16_t xloadflags;
	uint8_t relocatable;
	uint32_t kernel_alignment;
	uint64_t pref_address;
	uint32_t init_size;
	uint32_t cmdline_size;
	uint32_t initrd_addr_max;
	uint32_t syssize;
	size_t pm_len;
};

static struct test_bz default_bz(void)
{
	struct test_bz t = {
		.version = 0x020f,
		.setup_sects = SETUP_SECTS,
		.setup_sects_hdr = -1,
		.jump_len = HDR_END - 0x202,
		.loadflags = 0x01,
		.xloadflags = 0x0001,
		.relocatable = 1,
		.kernel_alignment = ALIGN,
		.pref_address = PREF,
		.init_size = INIT_SIZE,
		.cmdline_size = CMDLINE_SIZE,
		.initrd_addr_max = 0x7fffffff,
		.syssize = PM_LEN / 16,
		.pm_len = PM_LEN,
	};
	return t;
}

/* Recognisable protected-mode bytes. */
static uint8_t pm_byte(size_t j)
{
	return (uint8_t)(0x3d + j * 11 + (j >> 8));
}

/* Recognisable setup bytes (what is not a header field). */
static uint8_t setup_byte(size_t j)
{
	return (uint8_t)(0xa1 ^ (j * 5));
}

/* Assemble a bzImage in buf (IMG_CAP bytes); returns its length. */
static size_t build_bz(uint8_t *buf, const struct test_bz *t)
{
	unsigned sects = t->setup_sects ? t->setup_sects : 4;
	size_t setup_len = (sects + 1) * 512u;
	size_t len = setup_len + t->pm_len;

	ck_assert_uint_le(len, IMG_CAP);
	for (size_t j = 0; j < setup_len; j++)
		buf[j] = setup_byte(j);
	/* the header area is zero but for the fields below */
	memset(buf + OFF_SETUP_SECTS, 0, HDR_END - OFF_SETUP_SECTS);
	buf[OFF_SETUP_SECTS] = t->setup_sects_hdr < 0 ?
			       t->setup_sects : (uint8_t)t->setup_sects_hdr;
	tl_put_le(buf + OFF_SYSSIZE, t->syssize, 4);
	tl_put_le(buf + OFF_BOOT_FLAG, 0xaa55, 2);
	buf[OFF_JUMP] = 0xeb;
	buf[OFF_JUMP + 1] = t->jump_len;
	memcpy(buf + OFF_HDRS, "HdrS", 4);
	tl_put_le(buf + OFF_VERSION, t->version, 2);
	buf[OFF_LOADFLAGS] = t->loadflags;
	tl_put_le(buf + OFF_CODE32_START, 0x100000, 4);
	tl_put_le(buf + OFF_INITRD_ADDR_MAX, t->initrd_addr_max, 4);
	tl_put_le(buf + OFF_KERNEL_ALIGNMENT, t->kernel_alignment, 4);
	buf[OFF_RELOCATABLE] = t->relocatable;
	buf[OFF_RELOCATABLE + 1] = 21;  /* min_alignment */
	tl_put_le(buf + OFF_XLOADFLAGS, t->xloadflags, 2);
	tl_put_le(buf + OFF_CMDLINE_SIZE, t->cmdline_size, 4);
	tl_put_le(buf + OFF_PREF_ADDRESS, t->pref_address, 8);
	tl_put_le(buf + OFF_INIT_SIZE, t->init_size, 4);
	for (size_t j = 0; j < t->pm_len; j++)
		buf[setup_len + j] = pm_byte(j);
	return len;
}

/* ---- calling the loader ------------------------------------------------ */

struct load_opts {
	const uint8_t *initrd;
	size_t initrd_len;
	const char *cmdline;
	uint64_t ram_size;  /* 0: TEST_RAM */
};

static char err[256];

static int load(const uint8_t *img, size_t len, const struct load_opts *o,
		struct emt_boot *boot)
{
	static const struct load_opts none;
	struct emt_load_args a;
	uint8_t *copy = tl_guarded_tail(&image_buf, len);

	if (!o)
		o = &none;
	memmove(copy, img, len);
	a = (struct emt_load_args){
		.image = copy,
		.image_len = len,
		.initrd = o->initrd,
		.initrd_len = o->initrd_len,
		.cmdline = o->cmdline,
		.ram = ram,
		.ram_size = o->ram_size ? o->ram_size : TEST_RAM,
	};
	return tl_load_checked(&a, boot, err, sizeof(err));
}

static void expect_fail(const uint8_t *img, size_t len,
			const struct load_opts *o, int rc, const char *what)
{
	struct emt_boot boot;

	tl_expect_error(load(img, len, o, &boot), rc, what, err);
}

/* An initrd of len recognisable bytes ending at a guard page. */
static uint8_t initrd_byte(size_t j)
{
	return (uint8_t)(0x77 ^ j ^ (j >> 9));
}

static const uint8_t *make_initrd(size_t len, bool fill)
{
	uint8_t *p = tl_guarded_tail(&initrd_buf, len);

	if (fill)
		for (size_t j = 0; j < len; j++)
			p[j] = initrd_byte(j);
	return p;
}

/* ---- what a good load leaves ------------------------------------------- */

/* Walk the loader's page tables for va; returns the physical address. */
static uint64_t translate(uint64_t va)
{
	uint64_t cr3 = EMT_BZ_PAGE_TABLES_ADDR;
	uint64_t e;

	e = ram_le(cr3 + 8 * ((va >> 39) & 511), 8);
	ck_assert_msg(e & 1, "PML4 entry for 0x%" PRIx64 " not present", va);
	e = ram_le((e & 0x000ffffffffff000ull) + 8 * ((va >> 30) & 511), 8);
	ck_assert_msg(e & 1, "PDPT entry for 0x%" PRIx64 " not present", va);
	ck_assert_msg(!(e & 0x80), "unexpected 1 GiB page");
	e = ram_le((e & 0x000ffffffffff000ull) + 8 * ((va >> 21) & 511), 8);
	ck_assert_msg((e & 0x83) == 0x83, "PD entry for 0x%" PRIx64 " is not "
		      "a present writable 2 MiB page", va);
	return (e & 0x000fffffffe00000ull) + (va & 0x1fffff);
}

static void check_page_tables(void)
{
	uint64_t pml4 = EMT_BZ_PAGE_TABLES_ADDR;
	uint64_t pdpt = pml4 + 0x1000, pd = pdpt + 0x1000;

	ck_assert_uint_eq(ram_le(pml4, 8), pdpt | 3);
	ck_assert_uint_eq(first_not(ram + pml4 + 8, 4096 - 8, 0), 4096 - 8);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_uint_eq(ram_le(pdpt + 8 * i, 8), (pd + 0x1000 * i) | 3);
	ck_assert_uint_eq(first_not(ram + pdpt + 24, 4096 - 24, 0), 4096 - 24);
	/* every 2 MiB page of [0, 3 GiB) maps to itself */
	for (uint64_t k = 0; k < 3 * 512; k++) {
		uint64_t e = tl_get_le(ram + pd + 8 * k, 8);

		if (e != ((k << 21) | 0x83))
			ck_abort_msg("PD entry %" PRIu64 " is 0x%" PRIx64, k, e);
	}
	ck_assert_uint_eq(pd + 3 * 0x1000, EMT_BZ_PAGE_TABLES_END);
	ck_assert_uint_eq(translate(0), 0);
	ck_assert_uint_eq(translate(PREF + 0x200), PREF + 0x200);
	ck_assert_uint_eq(translate(EMT_BZ_CMDLINE_ADDR), EMT_BZ_CMDLINE_ADDR);
	ck_assert_uint_eq(translate(3 * GiB - 1), 3 * GiB - 1);
}

static void check_gdt(void)
{
	ck_assert_uint_eq(ram_le(EMT_BZ_GDT_ADDR, 8), 0);
	ck_assert_uint_eq(ram_le(EMT_BZ_GDT_ADDR + 8, 8), 0);
	/* __BOOT_CS: base 0, limit 4 GiB, present, DPL 0, code, L=1, D=0 */
	ck_assert_uint_eq(ram_le(EMT_BZ_GDT_ADDR + 0x10, 8),
			  0x00af9b000000ffffull);
	/* __BOOT_DS: base 0, limit 4 GiB, present, DPL 0, read/write data */
	ck_assert_uint_eq(ram_le(EMT_BZ_GDT_ADDR + 0x18, 8),
			  0x00cf93000000ffffull);
}

static void check_e820(uint64_t ram_size)
{
	static const struct {
		uint64_t base, len;
		uint32_t type;
	} want[3] = {
		{ 0, 0x9fc00, 1 },
		{ 0x9fc00, 0x100000 - 0x9fc00, 2 },
		{ 0x100000, 0, 1 },  /* length: RAM above 1 MiB */
	};

	ck_assert_uint_eq(ram[BP + BP_E820_ENTRIES], 3);
	for (unsigned i = 0; i < 3; i++) {
		uint64_t e = BP + BP_E820_TABLE + 20 * i;

		ck_assert_uint_eq(ram_le(e, 8), want[i].base);
		ck_assert_uint_eq(ram_le(e + 8, 8),
				  i == 2 ? ram_size - 0x100000 : want[i].len);
		ck_assert_uint_eq(ram_le(e + 16, 4), want[i].type);
	}
	/* the rest of the table is empty */
	ck_assert_uint_eq(first_not(ram + BP + BP_E820_TABLE + 60,
				    128 * 20 - 60, 0), 128 * 20 - 60);
}

/* boot_params: the image's header, the loader's fields, zero elsewhere. */
static void check_boot_params(const uint8_t *img, uint64_t initrd_addr,
			      uint64_t initrd_len, uint64_t ram_size)
{
	const uint8_t *bp = ram + BP;

	ck_assert_uint_eq(first_not(bp, BP_E820_ENTRIES, 0), BP_E820_ENTRIES);
	ck_assert_uint_eq(first_not(bp + BP_E820_ENTRIES + 1,
				    OFF_SETUP_SECTS - BP_E820_ENTRIES - 1, 0),
			  OFF_SETUP_SECTS - BP_E820_ENTRIES - 1);
	ck_assert_uint_eq(bp[BP_SENTINEL], 0);
	for (unsigned off = OFF_SETUP_SECTS; off < HDR_END; off++) {
		switch (off) {
		case OFF_TYPE_OF_LOADER:
		case OFF_LOADFLAGS:
		case OFF_RAMDISK_IMAGE ... OFF_RAMDISK_SIZE + 3:
		case OFF_HEAP_END_PTR ... OFF_HEAP_END_PTR + 1:
		case OFF_CMD_LINE_PTR ... OFF_CMD_LINE_PTR + 3:
		case OFF_SETUP_DATA ... OFF_SETUP_DATA + 7:
			continue;
		default:
			if (bp[off] != img[off])
				ck_abort_msg("boot_params byte 0x%x is 0x%02x, "
					     "the image has 0x%02x", off,
					     bp[off], img[off]);
		}
	}
	ck_assert_uint_eq(bp[OFF_TYPE_OF_LOADER], 0xff);
	ck_assert_uint_eq(bp[OFF_LOADFLAGS], img[OFF_LOADFLAGS] | 0x80);
	ck_assert_uint_eq(tl_get_le(bp + OFF_HEAP_END_PTR, 2), 0xfe00);
	ck_assert_uint_eq(tl_get_le(bp + OFF_CMD_LINE_PTR, 4),
			  EMT_BZ_CMDLINE_ADDR);
	ck_assert_uint_eq(tl_get_le(bp + OFF_RAMDISK_IMAGE, 4), initrd_addr);
	ck_assert_uint_eq(tl_get_le(bp + OFF_RAMDISK_SIZE, 4), initrd_len);
	ck_assert_uint_eq(tl_get_le(bp + OFF_SETUP_DATA, 8), 0);
	/* past the header, up to the e820 table: nothing */
	ck_assert_uint_eq(first_not(bp + HDR_END, BP_E820_TABLE - HDR_END, 0),
			  BP_E820_TABLE - HDR_END);
	check_e820(ram_size);
	ck_assert_uint_eq(first_not(bp + BP_E820_TABLE + 128 * 20,
				    0x1000 - BP_E820_TABLE - 128 * 20, 0),
			  0x1000 - BP_E820_TABLE - 128 * 20);
}

static void check_boot_state(const struct emt_boot *b, uint64_t load,
			     uint64_t image_end)
{
	ck_assert_int_eq(b->kind, EMT_IMAGE_BZIMAGE);
	ck_assert_int_eq(b->mode, EMT_MODE_LONG64);
	ck_assert_uint_eq(b->rip, load + 0x200);
	ck_assert_uint_eq(b->rsi, EMT_BZ_BOOT_PARAMS_ADDR);
	ck_assert_uint_eq(b->cr3, EMT_BZ_PAGE_TABLES_ADDR);
	ck_assert_uint_eq(b->gdt_base, EMT_BZ_GDT_ADDR);
	ck_assert_uint_eq(b->gdt_limit, 0x1f);
	ck_assert_uint_eq(b->rax, 0);
	ck_assert_uint_eq(b->rbx, 0);
	ck_assert_uint_eq(b->rdx, 0);
	ck_assert_uint_eq(b->rsp, 0);
	ck_assert_uint_eq(b->image_end, image_end);
}

static void check_kernel_at(uint64_t load, size_t pm_len)
{
	for (size_t j = 0; j < pm_len; j++)
		if (ram[load + j] != pm_byte(j))
			ck_abort_msg("kernel byte %zu at 0x%" PRIx64 " differs",
				     j, load + j);
	ck_assert_uint_eq(ram[load - 1], 0);
	ck_assert_uint_eq(ram[load + pm_len], 0);
}

static void check_initrd_at(uint64_t addr, size_t len)
{
	ck_assert_uint_eq(addr % 4096, 0);
	for (size_t j = 0; j < len; j++)
		if (ram[addr + j] != initrd_byte(j))
			ck_abort_msg("initrd byte %zu at 0x%" PRIx64 " differs",
				     j, addr + j);
}

/* ---- loading ----------------------------------------------------------- */

START_TEST(test_bz_detect)
{
	static uint8_t buf[IMG_CAP];
	struct test_bz t = default_bz();
	size_t len = build_bz(buf, &t);

	ck_assert_int_eq(emt_detect_image(buf, len), EMT_IMAGE_BZIMAGE);
	ck_assert_int_eq(emt_detect_image(buf, 0x206), EMT_IMAGE_BZIMAGE);
	ck_assert_int_eq(emt_detect_image(buf, 0x205), EMT_IMAGE_RAW);
}
END_TEST

START_TEST(test_bz_load)
{
	static uint8_t buf[IMG_CAP];
	const char *cmdline = "console=ttyS0 root=/dev/vda rw";
	struct test_bz t = default_bz();
	size_t len = build_bz(buf, &t);
	size_t ilen = 0x1234;
	struct load_opts o = { .cmdline = cmdline,
			       .initrd = make_initrd(ilen, true),
			       .initrd_len = ilen };
	uint64_t initrd_at = (TEST_RAM - ilen) & ~0xfffull;
	struct emt_boot boot;

	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	check_boot_state(&boot, PREF, initrd_at + ilen);
	check_kernel_at(PREF, PM_LEN);
	check_initrd_at(initrd_at, ilen);
	check_boot_params(buf, initrd_at, ilen, TEST_RAM);
	check_gdt();
	check_page_tables();
	ck_assert_str_eq((const char *)ram + EMT_BZ_CMDLINE_ADDR, cmdline);
	/* nothing else below 1 MiB: not the boot sector or multiboot areas */
	ck_assert_uint_eq(first_not(ram, EMT_BZ_GDT_ADDR, 0), EMT_BZ_GDT_ADDR);
	ck_assert_uint_eq(first_not(ram + 0x520, 0x1000 - 0x520, 0),
			  0x1000 - 0x520);
	ck_assert_uint_eq(first_not(ram + EMT_BOOTSECT_ADDR,
				    MiB - EMT_BOOTSECT_ADDR, 0),
			  MiB - EMT_BOOTSECT_ADDR);
	/* nor between 1 MiB and the kernel, nor between it and the initrd */
	ck_assert_uint_eq(first_not(ram + MiB, PREF - MiB, 0), PREF - MiB);
	ck_assert_uint_eq(first_not(ram + PREF + PM_LEN,
				    initrd_at - PREF - PM_LEN, 0),
			  initrd_at - PREF - PM_LEN);
}
END_TEST

START_TEST(test_bz_no_cmdline_no_initrd)
{
	static uint8_t buf[IMG_CAP];
	struct test_bz t = default_bz();
	size_t len = build_bz(buf, &t);
	struct load_opts o = { 0 };
	struct emt_boot boot;

	/* NULL and "" both give an empty command line at cmd_line_ptr */
	memset(ram + EMT_BZ_CMDLINE_ADDR, 'x', 16);
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	check_boot_state(&boot, PREF, PREF + INIT_SIZE);
	check_boot_params(buf, 0, 0, TEST_RAM);
	ck_assert_uint_eq(ram[EMT_BZ_CMDLINE_ADDR], 0);
	o.cmdline = "";
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	ck_assert_uint_eq(ram[EMT_BZ_CMDLINE_ADDR], 0);
	/* an empty initrd is no initrd */
	o.initrd = make_initrd(1, true);
	o.initrd_len = 0;
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	check_boot_params(buf, 0, 0, TEST_RAM);
	ck_assert_uint_eq(boot.image_end, PREF + INIT_SIZE);
}
END_TEST

START_TEST(test_bz_e820_ram_sizes)
{
	static uint8_t buf[IMG_CAP];
	struct test_bz t = default_bz();
	size_t len = build_bz(buf, &t);
	struct emt_boot boot;

	for (uint64_t size = 18 * MiB; size <= TEST_RAM; size += 7 * MiB) {
		struct load_opts o = { .ram_size = size };

		ck_assert_int_eq(load(buf, len, &o, &boot), 0);
		check_e820(size);
	}
}
END_TEST

START_TEST(test_bz_cmdline_limits)
{
	static uint8_t buf[IMG_CAP];
	static char line[5000];
	struct test_bz t = default_bz();
	size_t len = build_bz(buf, &t);
	struct load_opts o = { .cmdline = line };
	struct emt_boot boot;

	/* exactly cmdline_size bytes: fine */
	memset(line, 'a', CMDLINE_SIZE);
	line[CMDLINE_SIZE] = '\0';
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	ck_assert_str_eq((const char *)ram + EMT_BZ_CMDLINE_ADDR, line);
	/* one more: refused, naming the kernel's limit */
	memset(line, 'b', CMDLINE_SIZE + 1);
	line[CMDLINE_SIZE + 1] = '\0';
	expect_fail(buf, len, &o, -EINVAL,
		    "command line is too long for this Linux kernel (2048 "
		    "bytes, its cmdline_size allows 2047)");

	/* a kernel that takes more than our area: the area's limit */
	t.cmdline_size = 4095;
	len = build_bz(buf, &t);
	memset(line, 'c', 3071);
	line[3071] = '\0';
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	ck_assert_str_eq((const char *)ram + EMT_BZ_CMDLINE_ADDR, line);
	ck_assert_uint_eq(ram[EMT_BOOTSECT_ADDR - 1], 0);
	ck_assert_uint_eq(ram[EMT_BOOTSECT_ADDR], 0);
	line[3071] = 'c';
	line[3072] = '\0';
	expect_fail(buf, len, &o, -EINVAL,
		    "command line is too long (3072 bytes, at most 3071 for "
		    "a Linux kernel)");
	memset(line, 'd', 4500);
	line[4500] = '\0';
	expect_fail(buf, len, &o, -EINVAL, "4500 bytes");
}
END_TEST

/* Where relocation puts the kernel, and where it then runs. */
START_TEST(test_bz_placement)
{
	static uint8_t buf[IMG_CAP];
	struct test_bz t = default_bz();
	struct emt_boot boot;
	size_t len;

	/* relocatable, pref_address 0: the first aligned address >= 1 MiB */
	t.pref_address = 0;
	len = build_bz(buf, &t);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
	check_boot_state(&boot, 2 * MiB, 2 * MiB + INIT_SIZE);
	check_kernel_at(2 * MiB, PM_LEN);
	memset(ram + 2 * MiB, 0, PM_LEN);

	/* ... with a 1 MiB alignment: at 1 MiB */
	t.kernel_alignment = 0x100000;
	t.pref_address = 0x80000;
	len = build_bz(buf, &t);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
	check_boot_state(&boot, MiB, MiB + INIT_SIZE);
	check_kernel_at(MiB, PM_LEN);
	memset(ram + MiB, 0, PM_LEN);

	/* an unaligned pref_address: loaded there, runs aligned up */
	t.kernel_alignment = ALIGN;
	t.pref_address = 0x1100000;
	len = build_bz(buf, &t);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
	check_boot_state(&boot, 0x1100000, 0x1200000 + INIT_SIZE);
	check_kernel_at(0x1100000, PM_LEN);
	memset(ram + 0x1100000, 0, PM_LEN);

	/* not relocatable: at pref_address, alignment ignored */
	t.relocatable = 0;
	t.kernel_alignment = 0x12345;
	t.pref_address = 0x180000;
	len = build_bz(buf, &t);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
	check_boot_state(&boot, 0x180000, 0x180000 + INIT_SIZE);
	check_kernel_at(0x180000, PM_LEN);
	memset(ram + 0x180000, 0, PM_LEN);

	/* setup_sects 0 means 4 */
	t = default_bz();
	t.setup_sects_hdr = 0;
	len = build_bz(buf, &t);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
	check_boot_state(&boot, PREF, PREF + INIT_SIZE);
	check_kernel_at(PREF, PM_LEN);

	/* init_size smaller than the file: the file counts */
	t = default_bz();
	t.init_size = 0x100;
	len = build_bz(buf, &t);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
	check_boot_state(&boot, PREF, PREF + PM_LEN);

	/* the kernel's init_size may end exactly at the end of RAM */
	t.init_size = (uint32_t)(TEST_RAM - PREF);
	len = build_bz(buf, &t);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
	check_boot_state(&boot, PREF, TEST_RAM);
}
END_TEST

START_TEST(test_bz_initrd_placement)
{
	static uint8_t buf[IMG_CAP];
	struct test_bz t = default_bz();
	size_t ilen = 2 * MiB + 5;
	struct load_opts o = { .initrd = make_initrd(ilen, true),
			       .initrd_len = ilen };
	struct emt_boot boot;
	uint64_t at;
	size_t len;

	/* below initrd_addr_max (the highest byte it may use) */
	t.initrd_addr_max = 0x17fffff;
	len = build_bz(buf, &t);
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	at = (0x1800000 - ilen) & ~0xfffull;
	check_boot_params(buf, at, ilen, TEST_RAM);
	check_initrd_at(at, ilen);
	ck_assert_uint_eq(boot.image_end, at + ilen);
	memset(ram + at, 0, ilen);

	/* no room above the kernel: below it */
	t = default_bz();
	t.init_size = 15 * MiB;
	len = build_bz(buf, &t);
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	at = (PREF - ilen) & ~0xfffull;
	check_boot_params(buf, at, ilen, TEST_RAM);
	check_initrd_at(at, ilen);
	ck_assert_uint_eq(boot.image_end, 31 * MiB);
	memset(ram + at, 0, ilen);

	/* exactly the room above the kernel */
	t.init_size = (uint32_t)(TEST_RAM - PREF - 3 * MiB);
	len = build_bz(buf, &t);
	o.initrd_len = 3 * MiB;
	o.initrd = make_initrd(3 * MiB, true);
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	check_boot_params(buf, TEST_RAM - 3 * MiB, 3 * MiB, TEST_RAM);
	ck_assert_uint_eq(boot.image_end, TEST_RAM);
}
END_TEST

START_TEST(test_bz_initrd_errors)
{
	static uint8_t buf[IMG_CAP];
	struct test_bz t = default_bz();
	size_t len;
	struct load_opts o = { 0 };

	/* fits neither above nor below the kernel */
	t.init_size = 15 * MiB;
	len = build_bz(buf, &t);
	o.initrd_len = 16 * MiB;
	o.initrd = make_initrd(o.initrd_len, false);
	expect_fail(buf, len, &o, -E2BIG,
		    "initrd is 16777216 bytes but does not fit beside the "
		    "Linux kernel (0x1000000-0x1f00000) below 0x2000000 (the "
		    "end of guest RAM) in a 32 MiB VM; raise --mem");
	/* initrd_addr_max below 1 MiB leaves no room at all */
	t = default_bz();
	t.initrd_addr_max = 0xfffff;
	len = build_bz(buf, &t);
	o.initrd_len = 0x1234;
	o.initrd = make_initrd(o.initrd_len, false);
	expect_fail(buf, len, &o, -E2BIG, "(the kernel's initrd_addr_max)");
	/* larger than RAM */
	t = default_bz();
	len = build_bz(buf, &t);
	o.initrd_len = 24 * MiB;
	o.initrd = make_initrd(o.initrd_len, false);
	o.ram_size = 24 * MiB;
	expect_fail(buf, len, &o, -E2BIG, "initrd is 25165824 bytes");
}
END_TEST

/* ---- refusals ------------------------------------------------------------ */

struct bad_bz {
	const char *name;
	void (*mutate)(struct test_bz *t);
	size_t truncate;      /* 0: keep the length */
	int rc;
	const char *what;
};

#define BAD(fn, body) static void fn(struct test_bz *t) { body; }
BAD(bad_old_version, t->version = 0x0205)
BAD(bad_ancient, t->version = 0x0200)
BAD(bad_no_xlf_version, t->version = 0x020a)
BAD(bad_setup_sects, t->setup_sects_hdr = 200)
BAD(bad_no_entry64, t->pm_len = 0x200; t->syssize = 0x20)
BAD(bad_hdr_past_room, t->jump_len = 0xff)
BAD(bad_hdr_short, t->jump_len = 0x50)
BAD(bad_zimage, t->loadflags = 0)
BAD(bad_32bit_only, t->xloadflags = 0x0002)
BAD(bad_syssize, t->syssize = PM_LEN / 16 + 1)
BAD(bad_init_size_absurd, t->init_size = 0xffffffffu)
BAD(bad_init_size_big, t->init_size = (uint32_t)(TEST_RAM - PREF + 1))
BAD(bad_pref_beyond_ram, t->pref_address = 0x40000000)
BAD(bad_pref_beyond_ram_fixed, t->pref_address = 0x40000000;
    t->relocatable = 0)
BAD(bad_pref_wraps, t->pref_address = 0xfffffffffffff000ull)
BAD(bad_fixed_low, t->pref_address = 0x10000; t->relocatable = 0)
BAD(bad_align_not_pow2, t->kernel_alignment = 0x300000)
BAD(bad_align_zero, t->kernel_alignment = 0)
BAD(bad_align_huge, t->kernel_alignment = 0x80000000u)
BAD(bad_cmdline_size, t->cmdline_size = 8)
BAD(bad_none, (void)t)

static const struct bad_bz bad_bzs[] = {
	{ "protocol 2.05", bad_old_version, 0, -ENOEXEC,
	  "Linux boot protocol 2.05 is too old: Bulkhead needs 2.06 or "
	  "later" },
	{ "protocol 2.00", bad_ancient, 0, -ENOEXEC, "2.00 is too old" },
	{ "protocol 2.10", bad_no_xlf_version, 0, -ENOEXEC,
	  "Linux boot protocol 2.10 has no 64-bit entry point" },
	{ "setup_sects beyond the file", bad_setup_sects, 0, -ENOEXEC,
	  "setup_sects 200 puts the protected-mode kernel at offset 0x19200, "
	  "but the image is only" },
	{ "no 64-bit entry", bad_no_entry64, 0, -ENOEXEC,
	  "its 64-bit entry at offset 0x200 is missing" },
	{ "header past boot_params' room", bad_hdr_past_room, 0, -ENOEXEC,
	  "claims to end at 0x301" },
	{ "header too short", bad_hdr_short, 0, -ENOEXEC,
	  "setup header ends at 0x252, too short for boot protocol 2.15" },
	{ "file ends in the header", bad_none, 0x240, -ENOEXEC,
	  "image ends at 0x240, inside the Linux setup header" },
	{ "file ends before the version", bad_none, 0x206, -ENOEXEC,
	  "image ends at 0x206, inside the Linux setup header" },
	{ "zImage", bad_zimage, 0, -ENOEXEC, "zImage" },
	{ "32-bit only", bad_32bit_only, 0, -ENOEXEC,
	  "no 64-bit entry point (xloadflags bit XLF_KERNEL_64 clear)" },
	{ "syssize beyond the file", bad_syssize, 0, -ENOEXEC,
	  "syssize says the protected-mode kernel is 6160 bytes" },
	{ "truncated", bad_none, SETUP_LEN + 0x1000, -ENOEXEC,
	  "truncated file?" },
	{ "init_size absurd", bad_init_size_absurd, 0, -E2BIG,
	  "Linux kernel's init_size (0xffffffff bytes at 0x1000000)" },
	{ "init_size one too many", bad_init_size_big, 0, -E2BIG,
	  "needs 33 MiB of guest RAM but the VM has 32 MiB; raise --mem" },
	{ "pref_address beyond RAM", bad_pref_beyond_ram, 0, -E2BIG,
	  "loaded at its pref_address (0x1800 bytes at 0x40000000)" },
	{ "fixed pref_address beyond RAM", bad_pref_beyond_ram_fixed, 0,
	  -E2BIG, "needs 1025 MiB of guest RAM" },
	{ "pref_address wraps", bad_pref_wraps, 0, -ENOEXEC,
	  "wraps around the address space" },
	{ "fixed kernel below 1 MiB", bad_fixed_low, 0, -ENOEXEC,
	  "not relocatable and must run at its pref_address 0x10000, below "
	  "1 MiB" },
	{ "alignment not a power of two", bad_align_not_pow2, 0, -ENOEXEC,
	  "kernel_alignment 0x300000 is not a power of two" },
	{ "alignment 0", bad_align_zero, 0, -ENOEXEC,
	  "kernel_alignment 0x0" },
	{ "alignment 2 GiB", bad_align_huge, 0, -ENOEXEC,
	  "kernel_alignment 0x80000000" },
	{ "cmdline longer than cmdline_size", bad_cmdline_size, 0, -EINVAL,
	  "its cmdline_size allows 8" },
};

START_TEST(test_bz_refused)
{
	static uint8_t buf[IMG_CAP];
	const struct bad_bz *c = &bad_bzs[_i];
	struct test_bz t = default_bz();
	struct load_opts o = { .cmdline = "console=ttyS0" };
	size_t len;

	c->mutate(&t);
	len = build_bz(buf, &t);
	if (c->truncate)
		len = c->truncate;
	ck_assert_int_eq(emt_detect_image(buf, len), EMT_IMAGE_BZIMAGE);
	expect_fail(buf, len, &o, c->rc, c->what);
	/* a refused image leaves guest RAM as it was */
	ck_assert_uint_eq(first_not(ram, 2 * MiB, 0), 2 * MiB);
	ck_assert_uint_eq(first_not(ram + PREF, 2 * MiB, 0), 2 * MiB);
}
END_TEST

/* Above 3 GiB the identity map ends: nothing may be placed there. */
START_TEST(test_bz_big_ram)
{
	static uint8_t buf[IMG_CAP];
	struct tl_guarded big = { 0 };
	struct test_bz t = default_bz();
	uint64_t size = 4 * GiB;
	struct emt_load_args a;
	struct emt_boot boot;
	size_t len, ilen = 0x3000;

	if (sizeof(size_t) < 8)
		return;
	/* lazily backed: only the pages the loader touches are allocated */
	big.len = size;
	big.map_len = size;
	big.map = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (big.map == MAP_FAILED)
		return;
	t.initrd_addr_max = 0xffffffff;
	len = build_bz(buf, &t);
	a = (struct emt_load_args){
		.image = buf, .image_len = len,
		.initrd = make_initrd(ilen, true), .initrd_len = ilen,
		.ram = big.map, .ram_size = size,
	};
	ck_assert_int_eq(emt_load_image(&a, &boot, err, sizeof(err)), 0);
	/* the initrd ends at 3 GiB, the e820 map still covers all RAM */
	ck_assert_uint_eq(tl_get_le(big.map + BP + OFF_RAMDISK_IMAGE, 4),
			  3 * GiB - ilen);
	ck_assert_uint_eq(tl_get_le(big.map + BP + BP_E820_TABLE + 48, 8),
			  size - MiB);

	t.pref_address = 3 * GiB - 0x200000;
	t.init_size = 0x200001;
	len = build_bz(buf, &t);
	a.image_len = len;
	a.initrd = NULL;
	ck_assert_int_eq(emt_load_image(&a, &boot, err, sizeof(err)),
			 -ENOEXEC);
	ck_assert_msg(strstr(err, "ends above the 3 GiB the loader "
			     "identity-maps"), "%s", err);
	munmap(big.map, size);
}
END_TEST

/* ---- mutation ---------------------------------------------------------- */

static const uint64_t interesting_vals[] = {
	0, 1, 2, 4, 0x7f, 0x80, 0xff, 0x100, 0x200, 0x206, 0x20c,
	0x20f, 0x1000, 0x7fff, 0xffff, 0x10000, 0x100000, 0x200000,
	0xf00000, PREF, TEST_RAM - PREF, TEST_RAM - 1, TEST_RAM,
	TEST_RAM + 1, 0x7fffffff, 0x80000000, 0xc0000000, 0xfffffffe,
	0xffffffff, 0x100000000ull, 0x8000000000000000ull,
	0xfffffffffffff000ull, UINT64_MAX,
};

static struct tl_mutator mut = {
	.vals = interesting_vals,
	.nvals = sizeof(interesting_vals) / sizeof(interesting_vals[0]),
};

static uint64_t rng(void)
{
	return tl_rng(&mut);
}

/* Flip, set and overwrite bytes, mostly in the setup header. */
static void mutate(uint8_t *img, size_t *len)
{
	tl_mutate(&mut, img, len, 0x1f1, BP_HDR_LIMIT);
}

/* What a refused image must leave untouched: the loader's low area. */
#define LOW_CHECK 0x8000

/*
 * Load a mutant and check what came back; after a success, clear what it
 * wrote so that the next failure can be checked to write nothing. Plain
 * ifs: Check records every passing assertion.
 */
static void check_mutant(const uint8_t *img, size_t len,
			 const struct load_opts *o)
{
	uint64_t ram_size = o->ram_size ? o->ram_size : TEST_RAM;
	const uint8_t *bp = ram + BP;
	struct emt_boot boot;
	uint64_t load_at, ird, ird_len;
	int rc = load(img, len, o, &boot);

	if (rc != 0 && rc != -ENOEXEC && rc != -E2BIG && rc != -EINVAL)
		ck_abort_msg("unexpected error %d: %s", rc, err);
	if (rc) {
		if (first_not(ram, LOW_CHECK, 0) != LOW_CHECK)
			ck_abort_msg("a refused image wrote low memory: %s",
				     err);
		return;
	}
	if (boot.image_end > ram_size)
		ck_abort_msg("image_end 0x%" PRIx64 " beyond RAM",
			     boot.image_end);
	switch (boot.kind) {
	case EMT_IMAGE_BZIMAGE:
		load_at = boot.rip - 0x200;
		ird = tl_get_le(bp + OFF_RAMDISK_IMAGE, 4);
		ird_len = tl_get_le(bp + OFF_RAMDISK_SIZE, 4);
		if (boot.mode != EMT_MODE_LONG64 || load_at < MiB ||
		    boot.rip >= boot.image_end ||
		    boot.rsi != EMT_BZ_BOOT_PARAMS_ADDR ||
		    boot.cr3 != EMT_BZ_PAGE_TABLES_ADDR ||
		    tl_get_le(bp + OFF_BOOT_FLAG, 2) != 0xaa55 ||
		    memcmp(bp + OFF_HDRS, "HdrS", 4) != 0 ||
		    bp[BP_E820_ENTRIES] != 3 || bp[OFF_TYPE_OF_LOADER] != 0xff ||
		    tl_get_le(bp + OFF_CMD_LINE_PTR, 4) !=
		    EMT_BZ_CMDLINE_ADDR ||
		    tl_get_le(bp + OFF_SETUP_DATA, 8) != 0)
			ck_abort_msg("bad bzImage state: rip 0x%" PRIx64
				     " end 0x%" PRIx64, boot.rip,
				     boot.image_end);
		/* the initrd: below the kernel, or above it and last */
		if (ird_len != (o->initrd ? o->initrd_len : 0) ||
		    (ird_len && (ird % 4096 || ird < MiB ||
				 ird + ird_len > ram_size ||
				 !(ird + ird_len <= load_at ||
				   (ird > load_at &&
				    boot.image_end == ird + ird_len)))))
			ck_abort_msg("bad initrd 0x%" PRIx64 "+%" PRIu64
				     " kernel 0x%" PRIx64 " end 0x%" PRIx64,
				     ird, ird_len, load_at, boot.image_end);
		if (load_at + 0x1000 <= ram_size)
			memset(ram + load_at, 0, 0x1000);
		if (ird_len)
			memset(ram + ird, 0, ird_len);
		memset(ram, 0, EMT_BOOTSECT_ADDR);
		break;
	case EMT_IMAGE_RAW:
		tl_check_raw_load(&boot, ram, len);
		break;
	default:
		ck_abort_msg("kind %d loaded", boot.kind);
	}
}

#define MUTANTS 3000

START_TEST(test_bz_mutations)
{
	static uint8_t base[IMG_CAP], work[IMG_CAP];
	struct test_bz t = default_bz();
	size_t base_len, len, ilen = 0x2345;
	const uint8_t *initrd = make_initrd(ilen, true);
	int ok = 0;

	if (_i == 1)  /* a kernel that fills RAM: the initrd goes below */
		t.init_size = (uint32_t)(TEST_RAM - PREF);
	base_len = build_bz(base, &t);
	mut.rng = 0x9e3779b97f4a7c15ull + (uint64_t)_i;
	for (int n = 0; n < MUTANTS; n++) {
		struct load_opts o = { 0 };

		memcpy(work, base, base_len);
		len = base_len;
		mutate(work, &len);
		if (rng() % 2) {
			o.initrd = initrd;
			o.initrd_len = rng() % 8 ? ilen : rng() % (ilen + 1);
		}
		if (rng() % 2)
			o.cmdline = "console=ttyS0";
		if (rng() % 4 == 0)
			o.ram_size = 2 * MiB + (rng() % 30) * MiB;
		check_mutant(work, len, &o);
		ok += err[0] == '\0';
	}
	/* the mutations must leave some images loadable, or they test little */
	ck_assert_int_gt(ok, MUTANTS / 20);
	ck_assert_int_lt(ok, MUTANTS);
}
END_TEST

Suite *bzimage_suite(void)
{
	Suite *s = suite_create("bzimage");
	TCase *tc;

	tc = tcase_create("load");
	tcase_add_checked_fixture(tc, bz_setup, bz_teardown);
	tcase_add_test(tc, test_bz_detect);
	tcase_add_test(tc, test_bz_load);
	tcase_add_test(tc, test_bz_no_cmdline_no_initrd);
	tcase_add_test(tc, test_bz_e820_ram_sizes);
	tcase_add_test(tc, test_bz_cmdline_limits);
	tcase_add_test(tc, test_bz_placement);
	tcase_add_test(tc, test_bz_initrd_placement);
	tcase_add_test(tc, test_bz_initrd_errors);
	tcase_add_test(tc, test_bz_big_ram);
	suite_add_tcase(s, tc);

	tc = tcase_create("refused");
	tcase_add_checked_fixture(tc, bz_setup, bz_teardown);
	tcase_add_loop_test(tc, test_bz_refused, 0,
			    sizeof(bad_bzs) / sizeof(bad_bzs[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("mutation");
	tcase_add_checked_fixture(tc, bz_setup, bz_teardown);
	tcase_add_loop_test(tc, test_bz_mutations, 0, 2);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return s;
}
