/*
 * kloop: a probe of how the host runs guest kernel code. Runs `loops=N`
 * (default 20000000) iterations of a three-instruction loop at CPL 0 with
 * interrupts off, prints "kloop: <N> loops at CPL 0" and exits with
 * success. On hardware-assisted KVM (Intel VMX, AMD SVM, nested or not)
 * that takes milliseconds; on a host that emulates CPL 0 code instruction
 * by instruction (KVM on PVM) it takes tens of seconds. make check times
 * it, with a bound, to tell which tests need a nested host (the ones that
 * boot a full Linux kernel, which runs at CPL 0).
 * Bad loops=: "kloop: invalid loops=" and exit 2 (status 5).
 */
#include "lib/guest.h"

#define KLOOP_DEFAULT_LOOPS 20000000ull

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	uint64_t loops = KLOOP_DEFAULT_LOOPS;

	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		kprintf("bad multiboot magic\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	const char *cl = multiboot_cmdline((const void *)(uintptr_t)mbi_addr);
	if (cmdline_get_u64(cl, "loops", &loops) < 0) {
		kprintf("kloop: invalid loops=\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	/* The empty asm keeps the compiler from folding the loop away. */
	for (uint64_t i = 0; i < loops; i++)
		__asm__ volatile("" ::: "memory");
	kprintf("kloop: %lu loops at CPL 0\n", (unsigned long)loops);
	debug_exit(GUEST_EXIT_OK);
}
