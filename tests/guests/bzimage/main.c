/*
 * bzImage test guest: checks, from inside the guest, what a loader of the
 * Linux 64-bit boot protocol handed over (Documentation/arch/x86/boot.rst),
 * prints it on the UART and reports through debug-exit (codes in
 * bzimage.h). Runs at CPL 0 in 64-bit mode with no IDT, so keep it small;
 * position independent (compiled -fpie, no pointers in data), since the
 * loader may put a relocatable kernel anywhere on a kernel_alignment
 * boundary.
 *
 * Output, one item per line (numbers in hex with 0x, sizes in decimal):
 *   bzimage: 64-bit entry, boot_params at 0x<addr>
 *   bzimage: loaded at 0x<addr>
 *   bzimage: protocol 2.15, loader 0x<type_of_loader>, loadflags 0x<flags>
 *   cpu: cs=0x10 ds=0x18 es=0x18 ss=0x18 if=0 long mode
 *   cmdline: <the command line>
 *   e820: <n> entries
 *   e820: base=0x<base> len=0x<len> type=<type>     (n lines)
 *   initrd: addr=0x<addr> size=<bytes> sum=0x<32-bit byte sum>
 *       or: initrd: none
 *   bzimage: all checks passed
 * A failed check prints "bzimage: FAIL: <what>" and exits with its code.
 */
#include <stddef.h>
#include <stdint.h>

#include "bzimage.h"

/* struct boot_params: offsets of what we check. */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_SENTINEL 0x1ef
#define BP_SETUP_SECTS 0x1f1
#define BP_BOOT_FLAG 0x1fe
#define BP_HEADER 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_KERNEL_ALIGNMENT 0x230
#define BP_XLOADFLAGS 0x236
#define BP_CMDLINE_SIZE 0x238
#define BP_SETUP_DATA 0x250
#define BP_PREF_ADDRESS 0x258
#define BP_INIT_SIZE 0x260
#define BP_E820_TABLE 0x2d0
#define BP_SIZE 0x1000
#define E820_ENTRY_SIZE 20
#define E820_MAX 128
#define E820_RAM 1
#define PAGE_SIZE 4096

#define BOOT_CS 0x10
#define BOOT_DS 0x18
#define RFLAGS_IF (1u << 9)
#define CR0_PE 0x1u
#define CR0_PG 0x80000000u
#define CR4_PAE 0x20u
#define MSR_EFER 0xc0000080u
#define EFER_LMA 0x400u

/* The extent of this image in memory, from the linker script. */
extern char __bz_pm_start[] __attribute__((visibility("hidden")));
extern char __bz_mem_end[] __attribute__((visibility("hidden")));

void bz_main(const uint8_t *bp, uint64_t load)
	__attribute__((noreturn, visibility("hidden")));

/* ---- UART and debug-exit ------------------------------------------------- */

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void put_char(char c)
{
	while (!(inb(UART_BASE + 5) & 0x20))  /* LSR.THRE */
		;
	outb(UART_BASE, (uint8_t)c);
}

static void put_str(const char *s)
{
	while (*s)
		put_char(*s++);
}

static void put_num(uint64_t v, unsigned base)
{
	char buf[24];
	int i = 0;

	if (base == 16)
		put_str("0x");
	do {
		unsigned d = (unsigned)(v % base);

		buf[i++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	while (i)
		put_char(buf[--i]);
}

static void put_hex(uint64_t v)
{
	put_num(v, 16);
}

static void put_dec(uint64_t v)
{
	put_num(v, 10);
}

static __attribute__((noreturn)) void bz_exit(uint8_t code)
{
	outb(DEBUG_EXIT_PORT, code);
	for (;;)
		__asm__ volatile("hlt");
}

static __attribute__((noreturn)) void fail(uint8_t code, const char *what)
{
	put_str("bzimage: FAIL: ");
	put_str(what);
	put_char('\n');
	bz_exit(code);
}

/* ---- helpers --------------------------------------------------------------- */

static uint64_t rd(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	while (n--)
		v = (v << 8) | p[n];
	return v;
}

/* Does [a, a + alen) overlap [b, b + blen)? */
static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Additive 32-bit sum of n bytes, eight at a time (16-bit lanes, folded
 * every 128 steps before they can overflow): CPL 0 code may be emulated. */
static uint32_t byte_sum(const uint8_t *p, uint64_t n)
{
	const uint64_t m = 0x00ff00ff00ff00ffull;
	uint32_t sum = 0;

	while (n && ((uintptr_t)p & 7)) {
		sum += *p++;
		n--;
	}
	while (n >= 8) {
		uint64_t words = n / 8 > 128 ? 128 : n / 8;
		const uint64_t *q = (const uint64_t *)p;
		uint64_t acc = 0;

		for (uint64_t i = 0; i < words; i++)
			acc += (q[i] & m) + ((q[i] >> 8) & m);
		acc = (acc & 0x0000ffff0000ffffull) +
		      ((acc >> 16) & 0x0000ffff0000ffffull);
		sum += (uint32_t)((acc & 0xffffffffu) + (acc >> 32));
		p += words * 8;
		n -= words * 8;
	}
	while (n--)
		sum += *p++;
	return sum;
}

/* Is [addr, addr + len) inside one usable (type 1) e820 entry? */
static int in_usable_ram(const uint8_t *bp, uint64_t addr, uint64_t len)
{
	unsigned n = bp[BP_E820_ENTRIES];

	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = bp + BP_E820_TABLE + i * E820_ENTRY_SIZE;
		uint64_t base = rd(e, 8), size = rd(e + 8, 8);

		if (rd(e + 16, 4) == E820_RAM && addr >= base &&
		    addr - base <= size && len <= size - (addr - base))
			return 1;
	}
	return 0;
}

/* ---- the checks ------------------------------------------------------------ */

static void check_cpu(void)
{
	uint16_t cs, ds, es, ss;
	uint64_t rflags, cr0, cr4;
	uint32_t lo, hi;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	__asm__ volatile("mov %%ds, %0" : "=r"(ds));
	__asm__ volatile("mov %%es, %0" : "=r"(es));
	__asm__ volatile("mov %%ss, %0" : "=r"(ss));
	__asm__ volatile("pushfq; popq %0" : "=r"(rflags));
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(MSR_EFER));

	put_str("cpu: cs=");
	put_hex(cs);
	put_str(" ds=");
	put_hex(ds);
	put_str(" es=");
	put_hex(es);
	put_str(" ss=");
	put_hex(ss);
	put_str(" if=");
	put_dec(!!(rflags & RFLAGS_IF));
	put_str((lo & EFER_LMA) && (cr0 & CR0_PG) && (cr0 & CR0_PE) &&
		(cr4 & CR4_PAE) ? " long mode\n" : " not in long mode\n");
	if (cs != BOOT_CS || ds != BOOT_DS || es != BOOT_DS || ss != BOOT_DS)
		fail(BZ_EXIT_CPU_STATE, "segments are not __BOOT_CS/__BOOT_DS");
	if (rflags & RFLAGS_IF)
		fail(BZ_EXIT_CPU_STATE, "interrupts are enabled");
	if (!(lo & EFER_LMA) || !(cr0 & CR0_PG) || !(cr4 & CR4_PAE))
		fail(BZ_EXIT_CPU_STATE, "not in long mode with paging");
}

/* boot_params must carry our own setup header plus the loader's fields. */
static void check_header(const uint8_t *bp, uint64_t init_size)
{
	unsigned version = (unsigned)rd(bp + BP_VERSION, 2);

	put_str("bzimage: protocol ");
	put_dec(version >> 8);
	put_char('.');
	put_dec(version & 0xff);
	put_str(", loader ");
	put_hex(bp[BP_TYPE_OF_LOADER]);
	put_str(", loadflags ");
	put_hex(bp[BP_LOADFLAGS]);
	put_char('\n');
	if (rd(bp + BP_BOOT_FLAG, 2) != 0xaa55)
		fail(BZ_EXIT_BOOT_PARAMS, "boot_flag is not 0xAA55");
	if (rd(bp + BP_HEADER, 4) != 0x53726448)  /* "HdrS" */
		fail(BZ_EXIT_BOOT_PARAMS, "header is not HdrS");
	if (version != BZ_VERSION || bp[BP_SETUP_SECTS] != BZ_SETUP_SECTS ||
	    rd(bp + BP_KERNEL_ALIGNMENT, 4) != BZ_KERNEL_ALIGNMENT ||
	    rd(bp + BP_XLOADFLAGS, 2) != BZ_XLF_KERNEL_64 ||
	    rd(bp + BP_CMDLINE_SIZE, 4) != BZ_CMDLINE_SIZE ||
	    rd(bp + BP_INITRD_ADDR_MAX, 4) != BZ_INITRD_ADDR_MAX ||
	    rd(bp + BP_PREF_ADDRESS, 8) != BZ_PREF_ADDRESS ||
	    rd(bp + BP_INIT_SIZE, 4) != init_size)
		fail(BZ_EXIT_BOOT_PARAMS, "setup header differs from the image's");
	if (bp[BP_SENTINEL] != 0)
		fail(BZ_EXIT_BOOT_PARAMS, "sentinel at 0x1ef is not 0");
	if (bp[BP_TYPE_OF_LOADER] == 0)
		fail(BZ_EXIT_BOOT_PARAMS, "type_of_loader not set");
	if ((bp[BP_LOADFLAGS] & (BZ_LOADED_HIGH | BZ_CAN_USE_HEAP)) !=
	    (BZ_LOADED_HIGH | BZ_CAN_USE_HEAP))
		fail(BZ_EXIT_BOOT_PARAMS, "loadflags lack LOADED_HIGH|CAN_USE_HEAP");
	if (rd(bp + BP_SETUP_DATA, 8) != 0)
		fail(BZ_EXIT_BOOT_PARAMS, "setup_data is not 0");
}

static void check_e820(const uint8_t *bp, uint64_t load, uint64_t init_size)
{
	unsigned n = bp[BP_E820_ENTRIES];
	uint64_t prev_end = 0;

	put_str("e820: ");
	put_dec(n);
	put_str(" entries\n");
	if (n == 0 || n > E820_MAX)
		fail(BZ_EXIT_E820, "e820_entries is 0 or above 128");
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = bp + BP_E820_TABLE + i * E820_ENTRY_SIZE;
		uint64_t base = rd(e, 8), len = rd(e + 8, 8);

		put_str("e820: base=");
		put_hex(base);
		put_str(" len=");
		put_hex(len);
		put_str(" type=");
		put_dec(rd(e + 16, 4));
		put_char('\n');
		if (len == 0 || base + len < base)
			fail(BZ_EXIT_E820, "an e820 entry is empty or wraps");
		if (i && base < prev_end)
			fail(BZ_EXIT_E820, "e820 entries overlap or are unsorted");
		prev_end = base + len;
	}
	if (!in_usable_ram(bp, load, init_size))
		fail(BZ_EXIT_E820, "the kernel's init_size is not in usable RAM");
	if (!in_usable_ram(bp, (uintptr_t)bp, BP_SIZE))
		fail(BZ_EXIT_E820, "boot_params is not in usable RAM");
}

static void check_cmdline(const uint8_t *bp)
{
	uint64_t addr = rd(bp + BP_CMD_LINE_PTR, 4) |
			rd(bp + BP_EXT_CMD_LINE_PTR, 4) << 32;
	const char *cmd = (const char *)(uintptr_t)addr;
	uint64_t len = 0;

	if (addr == 0)
		fail(BZ_EXIT_CMDLINE, "cmd_line_ptr is 0");
	while (len <= BZ_CMDLINE_SIZE && cmd[len])
		len++;
	if (len > BZ_CMDLINE_SIZE)
		fail(BZ_EXIT_CMDLINE, "command line longer than cmdline_size");
	if (!in_usable_ram(bp, addr, len + 1))
		fail(BZ_EXIT_CMDLINE, "command line is not in usable RAM");
	put_str("cmdline: ");
	put_str(cmd);
	put_char('\n');
}

static void check_initrd(const uint8_t *bp, uint64_t load, uint64_t init_size)
{
	uint64_t addr = rd(bp + BP_RAMDISK_IMAGE, 4) |
			rd(bp + BP_EXT_RAMDISK_IMAGE, 4) << 32;
	uint64_t size = rd(bp + BP_RAMDISK_SIZE, 4) |
			rd(bp + BP_EXT_RAMDISK_SIZE, 4) << 32;

	if (size == 0) {
		put_str("initrd: none\n");
		return;
	}
	if (addr % PAGE_SIZE)
		fail(BZ_EXIT_INITRD, "initrd is not page aligned");
	if (addr + size - 1 > BZ_INITRD_ADDR_MAX)
		fail(BZ_EXIT_INITRD, "initrd ends above initrd_addr_max");
	if (!in_usable_ram(bp, addr, size))
		fail(BZ_EXIT_INITRD, "initrd is not in usable RAM");
	if (overlaps(addr, size, load, init_size) ||
	    overlaps(addr, size, (uintptr_t)bp, BP_SIZE))
		fail(BZ_EXIT_INITRD, "initrd overlaps the kernel or boot_params");
	put_str("initrd: addr=");
	put_hex(addr);
	put_str(" size=");
	put_dec(size);
	put_str(" sum=");
	put_hex(byte_sum((const uint8_t *)(uintptr_t)addr, size));
	put_char('\n');
}

void bz_main(const uint8_t *bp, uint64_t load)
{
	uint64_t init_size = (uint64_t)(__bz_mem_end - __bz_pm_start);

	put_str("bzimage: 64-bit entry, boot_params at ");
	put_hex((uintptr_t)bp);
	put_str("\nbzimage: loaded at ");
	put_hex(load);
	put_char('\n');
	if (load < 0x100000 || load % BZ_KERNEL_ALIGNMENT)
		fail(BZ_EXIT_PLACEMENT, "not loaded on a kernel_alignment "
		     "boundary above 1 MiB");
	check_header(bp, init_size);
	check_cpu();
	check_cmdline(bp);
	check_e820(bp, load, init_size);
	check_initrd(bp, load, init_size);
	put_str("bzimage: all checks passed\n");
	bz_exit(BZ_EXIT_OK);
}
