/* SPDX-License-Identifier: MIT */
/*
 * Image loaders: synthetic multiboot ELF32/ELF64 and a.out-kludge images,
 * raw boot sectors and bzImage headers, built in memory and loaded into a
 * RAM buffer fenced by PROT_NONE guards. load() also copies every image so
 * that it ends right at a guard, so any access outside guest RAM, the image
 * or the initrd crashes the test.
 */
#include <check.h>
#include <elf.h>
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
#define TEST_RAM (8 * MiB)

#define MB_MAGIC 0x1BADB002u
#define MB_BOOT_MAGIC 0x2BADB002u
#define MB_FLAG_PAGE_ALIGN (1u << 0)
#define MB_FLAG_MEMINFO (1u << 1)
#define MB_FLAG_VIDEO (1u << 2)
#define MB_FLAG_ADDRS (1u << 16)

/* Layout of the synthetic ELF images. */
#define IMG_CAP 0x4000
#define MB_OFF 0x200       /* multiboot header (after ehdr + phdrs) */
#define SEG_DATA_OFF 0x400 /* file data of segment i at + i * SEG_SLOT */
#define SEG_SLOT 0x800

/* Multiboot info fields we check. */
#define MBI_FLAGS_ALL ((1u << 0) | (1u << 2) | (1u << 3) | (1u << 6) | \
		       (1u << 9))

/* ---- guarded buffers ---------------------------------------------------- */

/* Guest RAM, and a fenced copy of every image load() hands the loader. */
static struct tl_guarded ram_buf, image_buf;
static uint8_t *ram;

static void ram_setup(void)
{
	tl_guarded_alloc(&ram_buf, TEST_RAM, false);
	ram = ram_buf.start;
	tl_guarded_alloc(&image_buf, EMT_RAW_MAX + 1, false);
}

static void ram_teardown(void)
{
	tl_guarded_free(&image_buf);
	tl_guarded_free(&ram_buf);
	ram = NULL;
}

/* ---- little-endian access ---------------------------------------------- */

static uint32_t ram32(uint64_t addr)
{
	ck_assert_uint_le(addr + 4, TEST_RAM);
	return (uint32_t)tl_get_le(ram + addr, 4);
}

static uint64_t ram64(uint64_t addr)
{
	ck_assert_uint_le(addr + 8, TEST_RAM);
	return tl_get_le(ram + addr, 8);
}

/* ---- image builders ---------------------------------------------------- */

struct test_seg {
	uint32_t type;   /* 0: PT_LOAD */
	uint64_t paddr;
	uint64_t vaddr;  /* 0: same as paddr */
	uint32_t filesz; /* at most SEG_SLOT */
	uint64_t memsz;
};

struct test_elf {
	bool is64;
	int nsegs;
	struct test_seg seg[3];
	uint64_t entry;
	bool no_mb;        /* leave the multiboot header out */
	uint32_t mb_flags;
	uint32_t mb_off;   /* 0: MB_OFF */
	uint32_t addrs[5]; /* header, load, load_end, bss_end, entry addr */
};

/* Recognisable file bytes: segment i, byte j. */
static uint8_t seg_byte(int i, size_t j)
{
	return (uint8_t)(0x11 * (i + 1) + j * 7 + 1);
}

static void put_mb_header(uint8_t *buf, uint32_t off, uint32_t flags,
			  const uint32_t addrs[5])
{
	tl_put_le(buf + off, MB_MAGIC, 4);
	tl_put_le(buf + off + 4, flags, 4);
	tl_put_le(buf + off + 8, -(MB_MAGIC + flags), 4);
	if (flags & MB_FLAG_ADDRS)
		for (int i = 0; i < 5; i++)
			tl_put_le(buf + off + 12 + 4 * i, addrs[i], 4);
}

/* Where a header field sits in each ELF class, and how wide it is there. */
struct elf_field {
	size_t at64, at32;
	size_t w64, w32;
};

#define ELF_FIELD(hdr, f) {						\
	offsetof(Elf64_##hdr, f), offsetof(Elf32_##hdr, f),		\
	sizeof(((Elf64_##hdr *)0)->f), sizeof(((Elf32_##hdr *)0)->f),	\
}
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const struct elf_field ehdr_fields[] = {
	ELF_FIELD(Ehdr, e_type), ELF_FIELD(Ehdr, e_machine),
	ELF_FIELD(Ehdr, e_version), ELF_FIELD(Ehdr, e_entry),
	ELF_FIELD(Ehdr, e_phoff), ELF_FIELD(Ehdr, e_ehsize),
	ELF_FIELD(Ehdr, e_phentsize), ELF_FIELD(Ehdr, e_phnum),
};

static const struct elf_field phdr_fields[] = {
	ELF_FIELD(Phdr, p_type), ELF_FIELD(Phdr, p_offset),
	ELF_FIELD(Phdr, p_vaddr), ELF_FIELD(Phdr, p_paddr),
	ELF_FIELD(Phdr, p_filesz), ELF_FIELD(Phdr, p_memsz),
};

/* Write the n values v, in order, to the fields f of a header at p. */
static void put_elf_fields(uint8_t *p, bool is64, const struct elf_field *f,
			   const uint64_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (is64)
			tl_put_le(p + f[i].at64, v[i], f[i].w64);
		else
			tl_put_le(p + f[i].at32, v[i], f[i].w32);
	}
}

/* Assemble an ELF executable in buf (IMG_CAP bytes); returns its length. */
static size_t build_elf(uint8_t *buf, const struct test_elf *t)
{
	size_t ehsize = t->is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	size_t phsize = t->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	uint32_t mb_off = t->mb_off ? t->mb_off : MB_OFF;
	size_t len = SEG_DATA_OFF + (size_t)t->nsegs * SEG_SLOT;

	memset(buf, 0, IMG_CAP);
	memcpy(buf, ELFMAG, SELFMAG);
	buf[EI_CLASS] = t->is64 ? ELFCLASS64 : ELFCLASS32;
	buf[EI_DATA] = ELFDATA2LSB;
	buf[EI_VERSION] = EV_CURRENT;
	put_elf_fields(buf, t->is64, ehdr_fields, (const uint64_t[]){
		ET_EXEC, t->is64 ? EM_X86_64 : EM_386, EV_CURRENT, t->entry,
		ehsize, ehsize, phsize, (uint64_t)t->nsegs,
	}, ARRAY_LEN(ehdr_fields));
	for (int i = 0; i < t->nsegs; i++) {
		const struct test_seg *s = &t->seg[i];
		uint8_t *ph = buf + ehsize + (size_t)i * phsize;
		uint64_t off = SEG_DATA_OFF + (uint64_t)i * SEG_SLOT;
		uint64_t vaddr = s->vaddr ? s->vaddr : s->paddr;
		uint32_t type = s->type ? s->type : PT_LOAD;

		ck_assert_uint_le(s->filesz, SEG_SLOT);
		for (size_t j = 0; j < s->filesz; j++)
			buf[off + j] = seg_byte(i, j);
		put_elf_fields(ph, t->is64, phdr_fields, (const uint64_t[]){
			type, off, vaddr, s->paddr, s->filesz, s->memsz,
		}, ARRAY_LEN(phdr_fields));
	}
	if (!t->no_mb) {
		ck_assert_uint_le(mb_off + 32, IMG_CAP);
		put_mb_header(buf, mb_off, t->mb_flags, t->addrs);
		if (len < mb_off + 32u)
			len = mb_off + 32u;
	}
	return len;
}

/* The usual kernel: text at 1 MiB, data plus bss at 2 MiB. */
static struct test_elf default_elf(bool is64)
{
	struct test_elf t = {
		.is64 = is64,
		.nsegs = 2,
		.seg = {
			{ .paddr = 0x100000, .filesz = 0x600, .memsz = 0x600 },
			{ .paddr = 0x200000, .filesz = 0x300, .memsz = 0x2345 },
		},
		.entry = 0x100010,
		.mb_flags = MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMINFO,
	};
	return t;
}

#define DEFAULT_END 0x202345ull

/* An a.out-kludge image: a flat binary with the header at 0x40. */
#define AOUT_LEN 0x1000
#define AOUT_HDR 0x40
#define AOUT_BASE 0x100000u

static uint8_t aout_byte(size_t j)
{
	return (uint8_t)(0x90 + j * 13);
}

static size_t build_aout(uint8_t *buf, uint32_t flags, const uint32_t addrs[5])
{
	memset(buf, 0, IMG_CAP);
	for (size_t j = 0; j < AOUT_LEN; j++)
		buf[j] = aout_byte(j);
	put_mb_header(buf, AOUT_HDR, flags | MB_FLAG_ADDRS, addrs);
	return AOUT_LEN;
}

static const uint32_t aout_default_addrs[5] = {
	AOUT_BASE + AOUT_HDR,   /* header_addr */
	AOUT_BASE,              /* load_addr */
	AOUT_BASE + AOUT_LEN,   /* load_end_addr */
	AOUT_BASE + 0x1800,     /* bss_end_addr */
	AOUT_BASE + 0x80,       /* entry_addr */
};

/* ---- calling the loader ------------------------------------------------ */

struct load_opts {
	const uint8_t *initrd;
	size_t initrd_len;
	const char *cmdline;
	uint64_t ram_size; /* 0: TEST_RAM */
	uint8_t *ram;      /* NULL: the fixture's */
};

static char err[256];

static int load(const uint8_t *img, size_t len, const struct load_opts *o,
		struct emt_boot *boot)
{
	static const struct load_opts none;
	struct emt_load_args a;

	if (!o)
		o = &none;
	/* the image ends right at a guard page: any over-read crashes */
	if (img && image_buf.map && len <= image_buf.len) {
		memmove(image_buf.start + image_buf.len - len, img, len);
		img = image_buf.start + image_buf.len - len;
	}
	a = (struct emt_load_args){
		.image = img,
		.image_len = len,
		.initrd = o->initrd,
		.initrd_len = o->initrd_len,
		.cmdline = o->cmdline,
		.ram = o->ram ? o->ram : ram,
		.ram_size = o->ram_size ? o->ram_size : TEST_RAM,
	};
	return tl_load_checked(&a, boot, err, sizeof(err));
}

/* Expect failure rc with a message containing what. */
static void expect_fail(const uint8_t *img, size_t len,
			const struct load_opts *o, int rc, const char *what)
{
	struct emt_boot boot;

	tl_expect_error(load(img, len, o, &boot), rc, what, err);
}

/* Check the multiboot info structure the loader built. */
static void check_mbi(const char *cmdline, uint32_t mods_count,
		      uint64_t ram_size)
{
	uint64_t info = EMT_MBI_ADDR;
	uint64_t top = ram_size < 4 * GiB ? ram_size : 4 * GiB;
	uint64_t mmap, cmd, name;
	static const struct {
		uint64_t base, len;
		uint32_t type;
	} want[3] = {
		{ 0, EMT_LOW_MEM_END, 1 },
		{ EMT_LOW_MEM_END, 0x100000 - EMT_LOW_MEM_END, 2 },
		{ 0x100000, 0, 1 },  /* length filled below */
	};

	ck_assert_uint_eq(ram32(info + 0), MBI_FLAGS_ALL);
	ck_assert_uint_eq(ram32(info + 4), 639);
	ck_assert_uint_eq(ram32(info + 8), (top - MiB) / 1024);
	ck_assert_uint_eq(ram32(info + 12), 0);  /* boot_device unset */
	ck_assert_uint_eq(ram32(info + 20), mods_count);
	ck_assert_uint_ge(ram32(info + 24), EMT_MBI_ADDR);
	ck_assert_uint_le(ram32(info + 24) + 16ull * mods_count,
			  EMT_MBI_AREA_END);

	ck_assert_uint_eq(ram32(info + 44), 3 * 24);
	mmap = ram32(info + 48);
	ck_assert_uint_ge(mmap, EMT_MBI_ADDR);
	ck_assert_uint_le(mmap + 3 * 24, EMT_MBI_AREA_END);
	for (int i = 0; i < 3; i++) {
		uint64_t e = mmap + 24ull * i;
		uint64_t len = i == 2 ? ram_size - 0x100000 : want[i].len;

		ck_assert_uint_eq(ram32(e), 20);
		ck_assert_uint_eq(ram64(e + 4), want[i].base);
		ck_assert_uint_eq(ram64(e + 12), len);
		ck_assert_uint_eq(ram32(e + 20), want[i].type);
	}

	cmd = ram32(info + 16);
	ck_assert_uint_ge(cmd, EMT_MBI_ADDR);
	ck_assert_uint_lt(cmd + strlen(cmdline), EMT_MBI_AREA_END);
	ck_assert_str_eq((const char *)ram + cmd, cmdline);

	name = ram32(info + 64);
	ck_assert_uint_ge(name, EMT_MBI_ADDR);
	ck_assert_uint_lt(name + 8, EMT_MBI_AREA_END);
	ck_assert_str_eq((const char *)ram + name, "bulkhead");
}

static void check_boot_multiboot(const struct emt_boot *b, uint64_t entry,
				 uint64_t end)
{
	ck_assert_int_eq(b->kind, EMT_IMAGE_MULTIBOOT);
	ck_assert_int_eq(b->mode, EMT_MODE_PROT32);
	ck_assert_uint_eq(b->rip, entry);
	ck_assert_uint_eq(b->rax, MB_BOOT_MAGIC);
	ck_assert_uint_eq(b->rbx, EMT_MBI_ADDR);
	ck_assert_uint_eq(b->image_end, end);
}

/* ---- detection --------------------------------------------------------- */

START_TEST(test_detect_kinds)
{
	static uint8_t buf[IMG_CAP];
	struct test_elf t = default_elf(false);
	size_t len;

	ck_assert_int_eq(emt_detect_image(NULL, 0), EMT_IMAGE_RAW);
	ck_assert_int_eq(emt_detect_image(buf, 0), EMT_IMAGE_RAW);

	len = build_elf(buf, &t);
	ck_assert_int_eq(emt_detect_image(buf, len), EMT_IMAGE_MULTIBOOT);
	t.no_mb = true;  /* still an ELF: the loader reports what is missing */
	len = build_elf(buf, &t);
	ck_assert_int_eq(emt_detect_image(buf, len), EMT_IMAGE_MULTIBOOT);
	ck_assert_int_eq(emt_detect_image(buf, 4), EMT_IMAGE_MULTIBOOT);
	ck_assert_int_eq(emt_detect_image(buf, 3), EMT_IMAGE_RAW);

	len = build_aout(buf, 0, aout_default_addrs);
	ck_assert_int_eq(emt_detect_image(buf, len), EMT_IMAGE_MULTIBOOT);
	/* a multiboot header without bit 16 in a flat file: raw */
	put_mb_header(buf, AOUT_HDR, MB_FLAG_MEMINFO, aout_default_addrs);
	ck_assert_int_eq(emt_detect_image(buf, len), EMT_IMAGE_RAW);

	memset(buf, 0, sizeof(buf));
	buf[0x1fe] = 0x55;
	buf[0x1ff] = 0xaa;
	ck_assert_int_eq(emt_detect_image(buf, 512), EMT_IMAGE_RAW);
	memcpy(buf + 0x202, "HdrS", 4);
	ck_assert_int_eq(emt_detect_image(buf, 0x400), EMT_IMAGE_BZIMAGE);
	ck_assert_int_eq(emt_detect_image(buf, 0x205), EMT_IMAGE_RAW);
	buf[0x1fe] = 0;
	ck_assert_int_eq(emt_detect_image(buf, 0x400), EMT_IMAGE_RAW);
}
END_TEST

/* ---- multiboot ELF ----------------------------------------------------- */

/* Index of the first byte in [p, p + n) that is not v, or n. */
static size_t first_not(const uint8_t *p, size_t n, uint8_t v)
{
	size_t j = 0;

	while (j < n && p[j] == v)
		j++;
	return j;
}

/* Index of the first byte of segment i's data that differs, or n. */
static size_t first_seg_diff(const uint8_t *p, int i, size_t n)
{
	size_t j = 0;

	while (j < n && p[j] == seg_byte(i, j))
		j++;
	return j;
}

static void check_default_segments(void)
{
	ck_assert_uint_eq(first_seg_diff(ram + 0x100000, 0, 0x600), 0x600);
	ck_assert_uint_eq(ram[0x100600], 0xcc);  /* past memsz: untouched */
	ck_assert_uint_eq(ram[0xfffff], 0);  /* below 1 MiB: untouched */
	ck_assert_uint_eq(first_seg_diff(ram + 0x200000, 1, 0x300), 0x300);
	/* the bss is zeroed */
	ck_assert_uint_eq(first_not(ram + 0x200300, 0x2045, 0), 0x2045);
	ck_assert_uint_eq(ram[DEFAULT_END], 0xcc);
	ck_assert_uint_eq(ram[0x1fffff], 0xcc);
}

static void run_default_elf(bool is64)
{
	static uint8_t buf[IMG_CAP];
	struct test_elf t = default_elf(is64);
	size_t len = build_elf(buf, &t);
	struct load_opts o = { .cmdline = "console=ttyS0 quiet" };
	struct emt_boot boot;

	memset(ram + MiB, 0xcc, TEST_RAM - MiB);
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	check_default_segments();
	check_boot_multiboot(&boot, 0x100010, DEFAULT_END);
	check_mbi("console=ttyS0 quiet", 0, TEST_RAM);
	/* nothing below the info area was touched */
	ck_assert_uint_eq(first_not(ram, EMT_MBI_ADDR, 0), EMT_MBI_ADDR);
}

START_TEST(test_elf32_load)
{
	run_default_elf(false);
}
END_TEST

START_TEST(test_elf64_load)
{
	run_default_elf(true);
}
END_TEST

START_TEST(test_elf_no_cmdline)
{
	static uint8_t buf[IMG_CAP];
	struct test_elf t = default_elf(false);
	size_t len = build_elf(buf, &t);
	struct load_opts o = { .cmdline = NULL };
	struct emt_boot boot;

	/* NULL and "" both give CMDLINE set and an empty string */
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	check_mbi("", 0, TEST_RAM);
	o.cmdline = "";
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	check_mbi("", 0, TEST_RAM);
}
END_TEST

START_TEST(test_elf_cmdline_limit)
{
	static uint8_t buf[IMG_CAP];
	static char line[5000];
	struct test_elf t = default_elf(true);
	size_t len = build_elf(buf, &t);
	struct load_opts o = { .cmdline = line };
	struct emt_boot boot;

	memset(line, 'a', 4095);
	line[4095] = '\0';
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	check_mbi(line, 0, TEST_RAM);

	memset(line, 'b', 4096);
	line[4096] = '\0';
	expect_fail(buf, len, &o, -EINVAL,
		    "command line is too long (4096 bytes, at most 4095)");
}
END_TEST

START_TEST(test_elf_initrd)
{
	static uint8_t buf[IMG_CAP];
	struct test_elf t = default_elf(false);
	size_t len = build_elf(buf, &t);
	struct tl_guarded g = { 0 };
	size_t ilen = 0x12345;
	uint8_t *initrd;
	struct emt_boot boot;
	uint64_t mods;

	tl_guarded_alloc(&g, ilen, false);
	initrd = g.start + g.len - ilen;
	for (size_t j = 0; j < ilen; j++)
		initrd[j] = (uint8_t)(j * 31 + 5);
	memset(ram + MiB, 0xcc, TEST_RAM - MiB);

	struct load_opts o = { .initrd = initrd, .initrd_len = ilen,
			       .cmdline = "root=/dev/ram0" };
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	check_default_segments();
	check_boot_multiboot(&boot, 0x100010, 0x203000 + ilen);
	check_mbi("root=/dev/ram0", 1, TEST_RAM);

	mods = ram32(EMT_MBI_ADDR + 24);
	ck_assert_uint_eq(ram32(mods), 0x203000);  /* 4 KiB after 0x202345 */
	ck_assert_uint_eq(ram32(mods) % 4096, 0);
	ck_assert_uint_eq(ram32(mods + 4), 0x203000 + ilen);
	ck_assert_str_eq((const char *)ram + ram32(mods + 8), "initrd");
	ck_assert_uint_eq(ram32(mods + 12), 0);
	ck_assert_mem_eq(ram + 0x203000, initrd, ilen);
	ck_assert_uint_eq(ram[0x203000 + ilen], 0xcc);
	tl_guarded_free(&g);
}
END_TEST

START_TEST(test_elf_initrd_fit)
{
	static uint8_t buf[IMG_CAP];
	struct test_elf t = default_elf(true);
	size_t len = build_elf(buf, &t);
	size_t room = TEST_RAM - 0x203000;
	uint8_t *initrd = calloc(1, room + 1);
	struct emt_boot boot;
	struct load_opts o = { .initrd = initrd, .initrd_len = room };

	ck_assert_ptr_nonnull(initrd);
	initrd[room - 1] = 0x5a;
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	ck_assert_uint_eq(boot.image_end, TEST_RAM);
	ck_assert_uint_eq(ram[TEST_RAM - 1], 0x5a);

	o.initrd_len = room + 1;
	expect_fail(buf, len, &o, -E2BIG, "initrd");
	ck_assert_msg(strstr(err, "the VM has 8 MiB"), "%s", err);

	o.initrd_len = 0;  /* an empty module is still a module */
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	ck_assert_uint_eq(ram32(EMT_MBI_ADDR + 20), 1);
	ck_assert_uint_eq(ram32(ram32(EMT_MBI_ADDR + 24)), 0x203000);
	ck_assert_uint_eq(ram32(ram32(EMT_MBI_ADDR + 24) + 4), 0x203000);
	ck_assert_uint_eq(boot.image_end, 0x203000);
	free(initrd);
}
END_TEST

START_TEST(test_elf_higher_half_entry)
{
	static uint8_t buf[IMG_CAP];
	struct test_elf t = default_elf(true);
	struct emt_boot boot;
	size_t len;

	/* linked at 0xffffffff80100000, loaded at 1 MiB; entry is virtual */
	t.seg[0].vaddr = 0xffffffff80100000ull;
	t.seg[1].vaddr = 0xffffffff80200000ull;
	t.entry = 0xffffffff80100020ull;
	len = build_elf(buf, &t);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
	check_boot_multiboot(&boot, 0x100020, DEFAULT_END);

	/* a physical entry is taken as is */
	t.entry = 0x200100;
	len = build_elf(buf, &t);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
	ck_assert_uint_eq(boot.rip, 0x200100);
}
END_TEST

START_TEST(test_elf_segments_skipped)
{
	static uint8_t buf[IMG_CAP];
	struct test_elf t = default_elf(false);
	struct emt_boot boot;
	size_t len;

	/* non-LOAD and empty LOAD headers are ignored, wherever they point */
	t.nsegs = 3;
	t.seg[1].type = PT_NOTE;
	t.seg[1].paddr = 0x10;
	t.seg[2] = (struct test_seg){ .paddr = 0x500, .filesz = 0, .memsz = 0 };
	len = build_elf(buf, &t);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
	check_boot_multiboot(&boot, 0x100010, 0x100600);
}
END_TEST

START_TEST(test_elf_optional_flags)
{
	static uint8_t buf[IMG_CAP];
	struct test_elf t = default_elf(false);
	struct emt_boot boot;
	size_t len;

	/* bits 17-31 are optional: ignored; no flags at all is fine too */
	t.mb_flags = (1u << 17) | (1u << 31);
	len = build_elf(buf, &t);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
	t.mb_flags = 0;
	len = build_elf(buf, &t);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
}
END_TEST

START_TEST(test_mb_header_position)
{
	static uint8_t buf[IMG_CAP];
	struct test_elf t = default_elf(false);
	struct emt_boot boot;
	size_t len;

	/* the whole 12-byte header must lie in the first 8192 bytes */
	t.mb_off = 8192 - 12;
	len = build_elf(buf, &t);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);

	t.mb_off = 8192 - 8;
	len = build_elf(buf, &t);
	expect_fail(buf, len, NULL, -ENOEXEC, "ELF image has no multiboot header");

	t.mb_off = 8192;
	len = build_elf(buf, &t);
	expect_fail(buf, len, NULL, -ENOEXEC, "ELF image has no multiboot header");

	/* misaligned magic does not count */
	t.no_mb = true;
	len = build_elf(buf, &t);
	put_mb_header(buf, MB_OFF + 2, 0, NULL);
	expect_fail(buf, len, NULL, -ENOEXEC, "ELF image has no multiboot header");

	/* a stray magic with a bad checksum before the real header */
	t.no_mb = false;
	t.mb_off = 0;
	len = build_elf(buf, &t);
	tl_put_le(buf + MB_OFF - 16, MB_MAGIC, 4);
	tl_put_le(buf + MB_OFF - 12, 0x12345678, 4);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
}
END_TEST

START_TEST(test_elf_bit16_wins)
{
	static uint8_t buf[IMG_CAP];
	struct test_elf t = default_elf(false);
	struct emt_boot boot;
	size_t len;

	/* bit 16 set in an ELF: the whole file goes to 3 MiB */
	t.mb_flags = MB_FLAG_ADDRS;
	t.addrs[0] = 0x300000 + MB_OFF;
	t.addrs[1] = 0x300000;
	t.addrs[2] = 0;
	t.addrs[3] = 0;
	t.addrs[4] = 0x300000 + SEG_DATA_OFF;
	len = build_elf(buf, &t);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
	check_boot_multiboot(&boot, 0x300000 + SEG_DATA_OFF, 0x300000 + len);
	ck_assert_mem_eq(ram + 0x300000, buf, len);
	ck_assert_uint_eq(ram[0x100000], 0);  /* the PT_LOADs were not used */
}
END_TEST

START_TEST(test_big_ram)
{
	static uint8_t buf[IMG_CAP];
	struct test_elf t = default_elf(false);
	struct tl_guarded big = { 0 };
	uint64_t size = 6 * GiB;
	uint8_t initrd[0x100] = { 1 };
	struct load_opts o = { .ram_size = size };
	struct emt_boot boot;
	size_t len;

	/*
	 * Lazily backed: only the pages the loader touches are allocated.
	 * A host that will not even reserve 6 GiB (strict overcommit, a
	 * 32-bit build) skips this test.
	 */
	if (sizeof(size_t) < 8 || !tl_guarded_try_alloc(&big, size, true))
		return;
	o.ram = big.start;
	ram = big.start;  /* for check_mbi */
	len = build_elf(buf, &t);
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	/* ram32() checks against TEST_RAM; the info area is below that */
	check_mbi("", 0, size);

	/* a segment ending above 4 GiB cannot run in 32-bit mode */
	t.nsegs = 1;
	t.seg[0] = (struct test_seg){ .paddr = 0xfffff000, .filesz = 0x10,
				      .memsz = 0x2000 };
	t.entry = 0xfffff000;
	len = build_elf(buf, &t);
	expect_fail(buf, len, &o, -ENOEXEC, "above 4 GiB");

	/* a module must end below 4 GiB even when RAM goes on */
	t.seg[0].memsz = 0x1000;
	len = build_elf(buf, &t);
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	ck_assert_uint_eq(boot.image_end, 4 * GiB);
	o.initrd = initrd;
	o.initrd_len = sizeof(initrd);
	expect_fail(buf, len, &o, -E2BIG, "below 4 GiB");

	ram = ram_buf.start;
	tl_guarded_free(&big);
}
END_TEST

/* ---- malformed ELF images, one table row each --------------------------- */

struct patch {
	size_t off, width;
	uint64_t val;
};

struct bad_elf {
	const char *name;
	bool is64;
	size_t truncate;      /* 0: keep the length */
	uint32_t mb_flags;    /* 0: the default flags */
	struct patch p[3];    /* width 0: unused */
	int rc;
	const char *what;     /* expected in the message */
};

#define EH(cls, f) offsetof(Elf##cls##_Ehdr, f), \
	sizeof(((Elf##cls##_Ehdr *)0)->f)
#define PH(cls, i, f) \
	sizeof(Elf##cls##_Ehdr) + (i) * sizeof(Elf##cls##_Phdr) + \
	offsetof(Elf##cls##_Phdr, f), sizeof(((Elf##cls##_Phdr *)0)->f)
#define IDENT(i) (i), 1

static const struct bad_elf bad_elves[] = {
	{ "truncated header", false, 40, 0, { { 0 } }, -ENOEXEC,
	  "ELF header is truncated (40 bytes, need 52)" },
	{ "truncated ELF64 header", true, 60, 0, { { 0 } }, -ENOEXEC,
	  "ELF header is truncated" },
	{ "truncated ident", false, 10, 0, { { 0 } }, -ENOEXEC,
	  "ELF header is truncated" },
	{ "bad class", false, 0, 0, { { IDENT(EI_CLASS), 3 } }, -ENOEXEC,
	  "ELF class 3" },
	{ "class none", true, 0, 0, { { IDENT(EI_CLASS), 0 } }, -ENOEXEC,
	  "ELF class 0" },
	{ "big-endian", false, 0, 0, { { IDENT(EI_DATA), ELFDATA2MSB } },
	  -ENOEXEC, "little-endian" },
	{ "ident version", false, 0, 0, { { IDENT(EI_VERSION), 2 } },
	  -ENOEXEC, "ELF version" },
	{ "ELF32 for x86-64", false, 0, 0, { { EH(32, e_machine), EM_X86_64 } },
	  -ENOEXEC, "ELF machine 62" },
	{ "ELF64 for i386", true, 0, 0, { { EH(64, e_machine), EM_386 } },
	  -ENOEXEC, "ELF machine 3" },
	{ "ARM", false, 0, 0, { { EH(32, e_machine), EM_ARM } }, -ENOEXEC,
	  "ELF machine" },
	{ "shared object", false, 0, 0, { { EH(32, e_type), ET_DYN } },
	  -ENOEXEC, "not an executable" },
	{ "e_phoff beyond file", false, 0, 0, { { EH(32, e_phoff), 0x10000 } },
	  -ENOEXEC, "program headers" },
	{ "e_phoff at the end", true, 0, 0,
	  { { EH(64, e_phoff), SEG_DATA_OFF + 2 * SEG_SLOT - 56 } }, -ENOEXEC,
	  "lie outside the file" },
	{ "e_phoff + table overflows", true, 0, 0,
	  { { EH(64, e_phoff), 0xffffffffffffffc0ull },
	    { EH(64, e_phnum), 0xfffe } }, -ENOEXEC, "lie outside the file" },
	{ "e_phnum too large", false, 0, 0, { { EH(32, e_phnum), 0xfffe } },
	  -ENOEXEC, "lie outside the file" },
	{ "e_phnum PN_XNUM", false, 0, 0, { { EH(32, e_phnum), PN_XNUM } },
	  -ENOEXEC, "PN_XNUM" },
	{ "e_phnum zero", false, 0, 0, { { EH(32, e_phnum), 0 } }, -ENOEXEC,
	  "no program headers" },
	{ "phentsize wrong", false, 0, 0, { { EH(32, e_phentsize), 40 } },
	  -ENOEXEC, "program header size is 40 bytes, expected 32" },
	{ "phentsize 64-bit too small", true, 0, 0,
	  { { EH(64, e_phentsize), 32 } }, -ENOEXEC, "program header size" },
	{ "phentsize zero", true, 0, 0, { { EH(64, e_phentsize), 0 } },
	  -ENOEXEC, "program header size" },
	{ "p_offset beyond file", false, 0, 0,
	  { { PH(32, 1, p_offset), 0x10000 } }, -ENOEXEC,
	  "ELF program header 1 lies outside the file" },
	{ "p_offset 0xffffffff", false, 0, 0,
	  { { PH(32, 0, p_offset), 0xffffffff } }, -ENOEXEC,
	  "ELF program header 0 lies outside the file" },
	{ "p_filesz 0xffffffff", false, 0, 0,
	  { { PH(32, 1, p_filesz), 0xffffffff },
	    { PH(32, 1, p_memsz), 0xffffffff } }, -ENOEXEC,
	  "ELF program header 1 lies outside the file" },
	{ "p_offset + p_filesz overflows", true, 0, 0,
	  { { PH(64, 1, p_offset), 0xffffffffffffff00ull } }, -ENOEXEC,
	  "ELF program header 1 lies outside the file" },
	{ "p_filesz huge", true, 0, 0,
	  { { PH(64, 0, p_filesz), UINT64_MAX },
	    { PH(64, 0, p_memsz), UINT64_MAX } }, -ENOEXEC,
	  "ELF program header 0 lies outside the file" },
	{ "p_filesz one past the file", false, 0, 0,
	  { { PH(32, 1, p_offset), SEG_DATA_OFF + 2 * SEG_SLOT - 0x2ff } },
	  -ENOEXEC, "lies outside the file" },
	{ "p_filesz > p_memsz", false, 0, 0, { { PH(32, 0, p_memsz), 0x100 } },
	  -ENOEXEC, "file size (0x600) larger than its memory size (0x100)" },
	{ "segment below 1 MiB", false, 0, 0,
	  { { PH(32, 0, p_paddr), 0x8000 }, { EH(32, e_entry), 0x8000 } },
	  -ENOEXEC, "below 1 MiB" },
	{ "segment at 0", true, 0, 0, { { PH(64, 1, p_paddr), 0 } }, -ENOEXEC,
	  "below 1 MiB" },
	{ "segment just below 1 MiB", false, 0, 0,
	  { { PH(32, 1, p_paddr), 0xfffff } }, -ENOEXEC, "below 1 MiB" },
	{ "segment beyond RAM", false, 0, 0,
	  { { PH(32, 1, p_paddr), 0x7ff000 } }, -E2BIG,
	  "the image needs 9 MiB of guest RAM but the VM has 8 MiB" },
	{ "bss beyond RAM", true, 0, 0,
	  { { PH(64, 1, p_memsz), TEST_RAM } }, -E2BIG, "guest RAM" },
	{ "segment far beyond RAM", false, 0, 0,
	  { { PH(32, 1, p_paddr), 0x80000000 } }, -E2BIG, "guest RAM" },
	{ "ELF32 segment across 4 GiB", false, 0, 0,
	  { { PH(32, 1, p_paddr), 0xfffff000 } }, -ENOEXEC, "above 4 GiB" },
	{ "ELF64 segment above 4 GiB", true, 0, 0,
	  { { PH(64, 1, p_paddr), 0x100000000ull } }, -ENOEXEC, "above 4 GiB" },
	{ "paddr + memsz overflows", true, 0, 0,
	  { { PH(64, 1, p_paddr), 0xfffffffffffff000ull } }, -ENOEXEC,
	  "wraps around" },
	{ "memsz overflows", true, 0, 0,
	  { { PH(64, 0, p_memsz), UINT64_MAX } }, -ENOEXEC, "wraps around" },
	{ "entry outside segments", false, 0, 0,
	  { { EH(32, e_entry), 0x300000 } }, -ENOEXEC,
	  "entry point 0x300000 is not inside any loaded segment" },
	{ "entry at a segment's end", true, 0, 0,
	  { { EH(64, e_entry), DEFAULT_END } }, -ENOEXEC, "entry point" },
	{ "entry zero", false, 0, 0, { { EH(32, e_entry), 0 } }, -ENOEXEC,
	  "entry point" },
	{ "entry above 4 GiB", true, 0, 0,
	  { { EH(64, e_entry), 0x100100010ull } }, -ENOEXEC, "entry point" },
	{ "no PT_LOAD", false, 0, 0,
	  { { PH(32, 0, p_type), PT_NOTE }, { PH(32, 1, p_type), PT_DYNAMIC } },
	  -ENOEXEC, "no loadable segments" },
	{ "only empty PT_LOADs", true, 0, 0,
	  { { PH(64, 0, p_memsz), 0 }, { PH(64, 0, p_filesz), 0 },
	    { EH(64, e_phnum), 1 } }, -ENOEXEC, "no loadable segments" },
	{ "multiboot header missing", false, 0, 0, { { MB_OFF, 4, 0 } },
	  -ENOEXEC, "ELF image has no multiboot header" },
	{ "bad checksum", false, 0, 0, { { MB_OFF + 8, 4, 0x12345678 } },
	  -ENOEXEC, "multiboot header checksum is wrong" },
	{ "video mode", false, 0, MB_FLAG_VIDEO | MB_FLAG_MEMINFO, { { 0 } },
	  -ENOEXEC, "video mode" },
	{ "unknown required bit 5", true, 0, 1u << 5, { { 0 } }, -ENOEXEC,
	  "flag bit 5" },
	{ "unknown required bit 15", false, 0, (1u << 15) | 1, { { 0 } },
	  -ENOEXEC, "flag bit 15" },
	{ "unknown required bit 3", false, 0, 1u << 3, { { 0 } }, -ENOEXEC,
	  "flag bit 3" },
};

START_TEST(test_bad_elf)
{
	static uint8_t buf[IMG_CAP];
	const struct bad_elf *c = &bad_elves[_i];
	struct test_elf t = default_elf(c->is64);
	size_t len;

	if (c->mb_flags)
		t.mb_flags = c->mb_flags;
	len = build_elf(buf, &t);
	for (int i = 0; i < 3 && c->p[i].width; i++)
		tl_put_le(buf + c->p[i].off, c->p[i].val, c->p[i].width);
	if (c->truncate)
		len = c->truncate;

	struct emt_boot boot;
	int rc = load(buf, len, NULL, &boot);

	ck_assert_msg(rc == c->rc, "%s: expected %d, got %d: %s", c->name,
		      c->rc, rc, err);
	ck_assert_msg(strstr(err, c->what), "%s: error '%s' does not mention "
		      "'%s'", c->name, err, c->what);
	ck_assert_int_eq(boot.kind, 0);  /* *boot untouched on failure */
}
END_TEST

/* ---- a.out kludge ------------------------------------------------------ */

START_TEST(test_aout_load)
{
	static uint8_t buf[IMG_CAP];
	size_t len = build_aout(buf, MB_FLAG_MEMINFO, aout_default_addrs);
	struct emt_boot boot;
	struct load_opts o = { .cmdline = "a.out" };
	uint32_t addrs[5];

	memset(ram + MiB, 0xcc, TEST_RAM - MiB);
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	check_boot_multiboot(&boot, AOUT_BASE + 0x80, AOUT_BASE + 0x1800);
	ck_assert_mem_eq(ram + AOUT_BASE, buf, AOUT_LEN);
	ck_assert_uint_eq(first_not(ram + AOUT_BASE + AOUT_LEN, 0x800, 0),
			  0x800);
	ck_assert_uint_eq(ram[AOUT_BASE + 0x1800], 0xcc);
	check_mbi("a.out", 0, TEST_RAM);

	/* load_end_addr 0: the rest of the file; bss_end_addr 0: no bss;
	 * the load may start inside the file, before the header */
	memcpy(addrs, aout_default_addrs, sizeof(addrs));
	addrs[0] = 0x400000 + 0x20;  /* header 0x20 bytes after load start */
	addrs[1] = 0x400000;
	addrs[2] = 0;
	addrs[3] = 0;
	addrs[4] = 0x400000;
	len = build_aout(buf, 0, addrs);
	ck_assert_int_eq(load(buf, len, NULL, &boot), 0);
	check_boot_multiboot(&boot, 0x400000, 0x400000 + AOUT_LEN - 0x20);
	ck_assert_mem_eq(ram + 0x400000, buf + 0x20, AOUT_LEN - 0x20);
	ck_assert_uint_eq(ram[0x400000 + AOUT_LEN - 0x20], 0xcc);

	/* an initrd after an a.out kernel */
	uint8_t initrd[100];

	memset(initrd, 0x77, sizeof(initrd));
	o.initrd = initrd;
	o.initrd_len = sizeof(initrd);
	len = build_aout(buf, MB_FLAG_PAGE_ALIGN, aout_default_addrs);
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);
	ck_assert_uint_eq(ram32(ram32(EMT_MBI_ADDR + 24)), AOUT_BASE + 0x2000);
	ck_assert_mem_eq(ram + AOUT_BASE + 0x2000, initrd, sizeof(initrd));
	ck_assert_uint_eq(boot.image_end, AOUT_BASE + 0x2000 + sizeof(initrd));
}
END_TEST

struct bad_aout {
	const char *name;
	uint32_t flags;
	int field;        /* -1: none; else index into the address fields */
	uint32_t val;
	size_t truncate;  /* 0: keep the length */
	int rc;
	const char *what;
};

static const struct bad_aout bad_aouts[] = {
	{ "load_addr above header_addr", 0, 1, AOUT_BASE + 0x44, 0, -ENOEXEC,
	  "load_addr 0x100044 is above header_addr 0x100040" },
	{ "load starts before the file", 0, 1, AOUT_BASE - 0x1000, 0, -ENOEXEC,
	  "before the file" },
	{ "load_end_addr below load_addr", 0, 2, AOUT_BASE - 1, 0, -ENOEXEC,
	  "load_end_addr" },
	{ "load_end_addr equal to load_addr", 0, 2, AOUT_BASE, 0, -ENOEXEC,
	  "load_end_addr" },
	{ "load_end_addr past the file", 0, 2, AOUT_BASE + AOUT_LEN + 1, 0,
	  -ENOEXEC, "lies outside the file" },
	{ "load_end_addr huge", 0, 2, 0xffffffff, 0, -ENOEXEC,
	  "lies outside the file" },
	{ "bss_end_addr below load end", 0, 3, AOUT_BASE + 0x800, 0, -ENOEXEC,
	  "bss_end_addr" },
	{ "bss beyond RAM", 0, 3, 0x900000, 0, -E2BIG, "guest RAM" },
	{ "bss above 4 GiB", 0, 3, 0xffffffff, 0, -E2BIG, "guest RAM" },
	{ "entry in bss", 0, 4, AOUT_BASE + 0x1100, 0, -ENOEXEC, "entry_addr" },
	{ "entry before load", 0, 4, AOUT_BASE - 4, 0, -ENOEXEC, "entry_addr" },
	{ "address fields truncated", 0, -1, 0, AOUT_HDR + 20, -ENOEXEC,
	  "past the end of the file" },
	{ "video mode", MB_FLAG_VIDEO, -1, 0, 0, -ENOEXEC, "video mode" },
	{ "unknown bit", 1u << 8, -1, 0, 0, -ENOEXEC, "flag bit 8" },
	{ "bad checksum", 0, -2, 0, 0, -ENOEXEC, "checksum is wrong" },
};

START_TEST(test_bad_aout)
{
	static uint8_t buf[IMG_CAP];
	const struct bad_aout *c = &bad_aouts[_i];
	uint32_t addrs[5];
	size_t len;

	memcpy(addrs, aout_default_addrs, sizeof(addrs));
	if (c->field >= 0)
		addrs[c->field] = c->val;
	len = build_aout(buf, c->flags, addrs);
	if (c->field == -2)
		tl_put_le(buf + AOUT_HDR + 8, 0, 4);
	if (c->truncate)
		len = c->truncate;
	ck_assert_int_eq(emt_detect_image(buf, len), EMT_IMAGE_MULTIBOOT);

	struct emt_boot boot;
	int rc = load(buf, len, NULL, &boot);

	ck_assert_msg(rc == c->rc, "%s: expected %d, got %d: %s", c->name,
		      c->rc, rc, err);
	ck_assert_msg(strstr(err, c->what), "%s: error '%s' does not mention "
		      "'%s'", c->name, err, c->what);
}
END_TEST

START_TEST(test_aout_below_1mib)
{
	static uint8_t buf[IMG_CAP];
	uint32_t addrs[5] = { 0x8040, 0x8000, 0x9000, 0, 0x8080 };
	size_t len = build_aout(buf, 0, addrs);

	expect_fail(buf, len, NULL, -ENOEXEC, "below 1 MiB");
}
END_TEST

/* ---- raw images, bzImage, arguments ------------------------------------ */

START_TEST(test_raw_load)
{
	static uint8_t sect[512];
	struct emt_boot boot;

	for (size_t j = 0; j < sizeof(sect); j++)
		sect[j] = (uint8_t)(j ^ 0x5c);
	sect[510] = 0x55;
	sect[511] = 0xaa;
	ck_assert_int_eq(emt_detect_image(sect, sizeof(sect)), EMT_IMAGE_RAW);
	ck_assert_int_eq(load(sect, sizeof(sect), NULL, &boot), 0);
	ck_assert_int_eq(boot.kind, EMT_IMAGE_RAW);
	ck_assert_int_eq(boot.mode, EMT_MODE_REAL);
	ck_assert_uint_eq(boot.rip, 0x7c00);
	ck_assert_uint_eq(boot.rdx, 0x80);
	ck_assert_uint_eq(boot.rsp, 0x7c00);
	ck_assert_uint_eq(boot.rax, 0);
	ck_assert_uint_eq(boot.rbx, 0);
	ck_assert_uint_eq(boot.image_end, 0x7e00);
	ck_assert_mem_eq(ram + 0x7c00, sect, sizeof(sect));
	ck_assert_uint_eq(ram[0x7bff], 0);
	ck_assert_uint_eq(ram[0x7e00], 0);

	/* an empty command line is no command line */
	struct load_opts o = { .cmdline = "" };

	ck_assert_int_eq(load(sect, sizeof(sect), &o, &boot), 0);
}
END_TEST

START_TEST(test_raw_errors)
{
	static uint8_t img[EMT_RAW_MAX + 1];
	size_t max = EMT_RAW_MAX;
	struct emt_boot boot;
	uint8_t one = 0xf4;

	memset(img, 0x90, max + 1);
	ck_assert_int_eq(load(img, max, NULL, &boot), 0);
	ck_assert_uint_eq(boot.image_end, EMT_LOW_MEM_END);
	ck_assert_uint_eq(ram[EMT_LOW_MEM_END - 1], 0x90);
	ck_assert_uint_eq(ram[EMT_LOW_MEM_END], 0);
	expect_fail(img, max + 1, NULL, -E2BIG, "raw image");

	expect_fail(&one, 0, NULL, -ENOEXEC, "empty");
	expect_fail(NULL, 0, NULL, -ENOEXEC, "empty");

	struct load_opts o = { .initrd = &one, .initrd_len = 1 };

	expect_fail(&one, 1, &o, -EINVAL,
		    "--initrd needs a multiboot or Linux image");
	o = (struct load_opts){ .cmdline = "quiet" };
	expect_fail(&one, 1, &o, -EINVAL,
		    "--cmdline needs a multiboot or Linux image");
}
END_TEST

/* A bare signature is a Linux image, but not one we load (check_bzimage.c
 * has the loader's own tests). */
START_TEST(test_bzimage_refused)
{
	static uint8_t buf[0x1000];

	buf[0x1fe] = 0x55;
	buf[0x1ff] = 0xaa;
	memcpy(buf + 0x202, "HdrS", 4);
	expect_fail(buf, sizeof(buf), NULL, -ENOEXEC,
		    "Linux boot protocol 0.00 is too old");
}
END_TEST

START_TEST(test_small_ram)
{
	static uint8_t buf[IMG_CAP];
	struct test_elf t = default_elf(false);
	size_t len = build_elf(buf, &t);
	struct load_opts o = { .ram_size = 2 * MiB - 1 };
	struct emt_boot boot;

	expect_fail(buf, len, &o, -EINVAL, "2 MiB");
	o.ram_size = 2 * MiB;  /* the second segment ends past 2 MiB */
	expect_fail(buf, len, &o, -E2BIG, "needs 3 MiB of guest RAM but the "
		    "VM has 2 MiB");
	t.nsegs = 1;
	len = build_elf(buf, &t);
	ck_assert_int_eq(load(buf, len, &o, &boot), 0);

	struct emt_load_args a = { .image = buf, .image_len = len };

	ck_assert_int_eq(emt_load_image(&a, &boot, NULL, 0), -EINVAL);
	ck_assert_int_eq(emt_load_image(NULL, &boot, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_ne(err, "");
}
END_TEST

/* ---- mutation ---------------------------------------------------------- */

static const uint64_t interesting_vals[] = {
	0, 1, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0xffff, 0x10000,
	0x7c00, 0x9000, 0x9fc00, 0xfffff, 0x100000, 0x200000,
	TEST_RAM - 1, TEST_RAM, TEST_RAM + 1, 0x7fffffff, 0x80000000,
	0xfffffffe, 0xffffffff, 0x100000000ull, 0x7fffffffffffffffull,
	0x8000000000000000ull, 0xfffffffffffff000ull, UINT64_MAX,
};

static struct tl_mutator mut = {
	.vals = interesting_vals,
	.nvals = sizeof(interesting_vals) / sizeof(interesting_vals[0]),
};

static uint64_t rng(void)
{
	return tl_rng(&mut);
}

/* Flip, set and overwrite bytes, mostly in the headers. */
static void mutate(uint8_t *img, size_t *len, uint32_t mb_off)
{
	tl_mutate(&mut, img, len, 0, 0x240);
	/* often keep the checksum right so flag changes get further */
	if (rng() % 2 && mb_off + 12 <= *len) {
		uint32_t flags = (uint32_t)tl_get_le(img + mb_off + 4, 4);

		if (rng() % 4 == 0)
			flags &= ~MB_FLAG_VIDEO & ~0xfff8u;
		tl_put_le(img + mb_off + 4, flags, 4);
		tl_put_le(img + mb_off + 8, -(MB_MAGIC + flags), 4);
	}
}

/*
 * Load a mutant and check what came back. Plain ifs rather than ck_assert:
 * Check records every passing assertion, which would dominate the run.
 */
static void check_mutant(const uint8_t *img, size_t len,
			 const struct load_opts *o)
{
	struct emt_boot boot;
	int rc = load(img, len, o, &boot);

	if (rc != 0 && rc != -ENOEXEC && rc != -E2BIG && rc != -EINVAL)
		ck_abort_msg("unexpected error %d: %s", rc, err);
	if (rc)
		return;
	if (boot.image_end > TEST_RAM)
		ck_abort_msg("image_end 0x%" PRIx64 " beyond RAM",
			     boot.image_end);
	switch (boot.kind) {
	case EMT_IMAGE_MULTIBOOT:
		if (boot.mode != EMT_MODE_PROT32 ||
		    boot.rip < EMT_HIGH_MEM_START ||
		    boot.rip >= boot.image_end || boot.rax != MB_BOOT_MAGIC ||
		    boot.rbx != EMT_MBI_ADDR)
			ck_abort_msg("bad multiboot state: rip 0x%" PRIx64
				     " end 0x%" PRIx64, boot.rip,
				     boot.image_end);
		/* nothing loaded below the info area */
		if (first_not(ram, EMT_MBI_ADDR, 0) != EMT_MBI_ADDR)
			ck_abort_msg("multiboot load wrote below 0x%llx",
				     EMT_MBI_ADDR);
		break;
	case EMT_IMAGE_RAW:
		tl_check_raw_load(&boot, ram, len);
		break;
	default:
		ck_abort_msg("kind %d loaded", boot.kind);
	}
}

#define MUTANTS_PER_BASE 2000

START_TEST(test_mutations)
{
	static uint8_t base[IMG_CAP], work[IMG_CAP];
	static uint8_t initrd_data[0x1234];
	struct tl_guarded initrd_buf = { 0 };
	struct test_elf t;
	uint32_t mb_off = MB_OFF;
	size_t base_len, len;
	uint8_t *initrd;
	int ok = 0;

	switch (_i) {
	case 0:
		t = default_elf(false);
		base_len = build_elf(base, &t);
		break;
	case 1:
		t = default_elf(true);
		base_len = build_elf(base, &t);
		break;
	default:
		base_len = build_aout(base, 0, aout_default_addrs);
		mb_off = AOUT_HDR;
		break;
	}
	memset(initrd_data, 0xab, sizeof(initrd_data));
	tl_guarded_alloc(&initrd_buf, sizeof(initrd_data), false);
	initrd = tl_guarded_place(&initrd_buf, initrd_data,
				  sizeof(initrd_data));

	mut.rng = 0x9e3779b97f4a7c15ull + (uint64_t)_i;
	for (int n = 0; n < MUTANTS_PER_BASE; n++) {
		struct load_opts o = { 0 };

		memcpy(work, base, base_len);
		len = base_len;
		mutate(work, &len, mb_off);
		if (rng() % 2) {
			o.initrd = initrd;
			o.initrd_len = sizeof(initrd_data);
		}
		if (rng() % 2)
			o.cmdline = "console=ttyS0";
		check_mutant(work, len, &o);
		ok += err[0] == '\0';
	}
	/* the mutations must leave some images loadable, or they test little */
	ck_assert_int_gt(ok, MUTANTS_PER_BASE / 20);
	ck_assert_int_lt(ok, MUTANTS_PER_BASE);
	tl_guarded_free(&initrd_buf);
}
END_TEST

START_TEST(test_random_elves)
{
	static uint8_t work[0x800];

	mut.rng = 0x0123456789abcdefull;
	for (int n = 0; n < 1000; n++) {
		size_t len = rng() % sizeof(work);

		for (size_t j = 0; j < len; j++)
			work[j] = (uint8_t)rng();
		if (len >= 6) {
			memcpy(work, ELFMAG, SELFMAG);
			work[EI_CLASS] = (uint8_t)(1 + rng() % 2);
			work[EI_DATA] = ELFDATA2LSB;
		}
		if (len >= 8 && rng() % 2)
			work[EI_VERSION] = EV_CURRENT;
		check_mutant(work, len, NULL);
	}
}
END_TEST

Suite *loader_suite(void)
{
	Suite *s = suite_create("loader");
	TCase *tc;

	tc = tcase_create("detect");
	tcase_add_test(tc, test_detect_kinds);
	suite_add_tcase(s, tc);

	tc = tcase_create("multiboot");
	tcase_add_checked_fixture(tc, ram_setup, ram_teardown);
	tcase_add_test(tc, test_elf32_load);
	tcase_add_test(tc, test_elf64_load);
	tcase_add_test(tc, test_elf_no_cmdline);
	tcase_add_test(tc, test_elf_cmdline_limit);
	tcase_add_test(tc, test_elf_initrd);
	tcase_add_test(tc, test_elf_initrd_fit);
	tcase_add_test(tc, test_elf_higher_half_entry);
	tcase_add_test(tc, test_elf_segments_skipped);
	tcase_add_test(tc, test_elf_optional_flags);
	tcase_add_test(tc, test_mb_header_position);
	tcase_add_test(tc, test_elf_bit16_wins);
	tcase_add_test(tc, test_big_ram);
	tcase_add_test(tc, test_aout_load);
	tcase_add_test(tc, test_aout_below_1mib);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_checked_fixture(tc, ram_setup, ram_teardown);
	tcase_add_loop_test(tc, test_bad_elf, 0,
			    sizeof(bad_elves) / sizeof(bad_elves[0]));
	tcase_add_loop_test(tc, test_bad_aout, 0,
			    sizeof(bad_aouts) / sizeof(bad_aouts[0]));
	suite_add_tcase(s, tc);

	tc = tcase_create("raw");
	tcase_add_checked_fixture(tc, ram_setup, ram_teardown);
	tcase_add_test(tc, test_raw_load);
	tcase_add_test(tc, test_raw_errors);
	tcase_add_test(tc, test_bzimage_refused);
	tcase_add_test(tc, test_small_ram);
	suite_add_tcase(s, tc);

	tc = tcase_create("mutation");
	tcase_add_checked_fixture(tc, ram_setup, ram_teardown);
	tcase_add_loop_test(tc, test_mutations, 0, 3);
	tcase_add_test(tc, test_random_elves);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	return s;
}
