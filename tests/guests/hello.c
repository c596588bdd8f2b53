/*
 * hello: the demo guest. Prints a greeting and what the multiboot loader
 * told it, then exits with success. Runs entirely at CPL 0.
 */
#include "lib/guest.h"

/* Additive 32-bit sum of n bytes. Eight bytes per step (16-bit lanes,
 * folded every 128 steps before they can overflow) because at CPL 0 this
 * may be running in an instruction emulator. */
static uint32_t byte_sum(const uint8_t *p, size_t n)
{
	const uint64_t m = 0x00ff00ff00ff00ffull;
	uint32_t sum = 0;

	while (n && ((uintptr_t)p & 7)) {
		sum += *p++;
		n--;
	}
	while (n >= 8) {
		size_t words = n / 8 > 128 ? 128 : n / 8;
		const uint64_t *q = (const uint64_t *)p;
		uint64_t acc = 0;

		for (size_t i = 0; i < words; i++)
			acc += (q[i] & m) + ((q[i] >> 8) & m);
		acc = (acc & 0x0000ffff0000ffffull) + ((acc >> 16) & 0x0000ffff0000ffffull);
		sum += (uint32_t)((acc & 0xffffffffu) + (acc >> 32));
		p += words * 8;
		n -= words * 8;
	}
	while (n--)
		sum += *p++;
	return sum;
}

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	const struct multiboot_info *mbi = (const void *)(uintptr_t)mbi_addr;

	kprintf("Hello from a Bulkhead guest!\n");
	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		kprintf("bad multiboot magic\n");
		debug_exit(GUEST_EXIT_BADARG);
	}

	const char *cmdline = multiboot_cmdline(mbi);
	kprintf("cmdline: %s\n", cmdline ? cmdline : "(none)");

	if (mbi->flags & MBI_FLAG_MEM)
		kprintf("mem: lower=%u upper=%u\n", mbi->mem_lower, mbi->mem_upper);
	else
		kprintf("mem: (none)\n");

	if (mbi->flags & MBI_FLAG_MMAP) {
		uint32_t n = 0;
		uintptr_t p, end = (uintptr_t)mbi->mmap_addr + mbi->mmap_length;

		for (p = mbi->mmap_addr; p < end; p += ((const struct multiboot_mmap_entry *)p)->size + 4)
			n++;
		kprintf("mmap: %u entries\n", n);
		for (p = mbi->mmap_addr; p < end; p += ((const struct multiboot_mmap_entry *)p)->size + 4) {
			const struct multiboot_mmap_entry *e = (const void *)p;
			kprintf("mmap: base=0x%lx len=0x%lx type=%u\n",
				(unsigned long)e->base_addr, (unsigned long)e->length, e->type);
		}
	} else {
		kprintf("mmap: 0 entries\n");
	}

	uint32_t nmods = (mbi->flags & MBI_FLAG_MODS) ? mbi->mods_count : 0;
	kprintf("modules: %u\n", nmods);
	const struct multiboot_module *mods = (const void *)(uintptr_t)mbi->mods_addr;
	for (uint32_t i = 0; i < nmods; i++) {
		const struct multiboot_module *m = &mods[i];
		uint32_t size = m->mod_end - m->mod_start;
		const char *s = m->string ? (const char *)(uintptr_t)m->string : "";

		kprintf("module %u: %u bytes, sum 0x%x, string '%s'\n", i, size,
			byte_sum((const uint8_t *)(uintptr_t)m->mod_start, size), s);
	}

	kprintf("bye\n");
	debug_exit(GUEST_EXIT_OK);
}
