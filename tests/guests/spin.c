/*
 * spin: never exits by itself. Prints "spin: spinning with interrupts off"
 * and then spins in a tight loop at CPL 3 with IF=0, where it runs
 * natively even on hosts that emulate CPL 0 code: the hard case for a VMM
 * that has to stop the vCPU (pause, snapshot, SIGTERM). With `smp=1` on
 * the command line every AP in the MP table is started first and spins
 * the same way.
 */
#include "lib/smp.h"

static void spin_forever(void *arg)
{
	(void)arg;
	for (;;)
		__asm__ volatile("" ::: "memory");
}

static void spin_ap_main(unsigned apic_id)
{
	guest_enter_user(spin_forever, NULL, smp_user_stack_top(apic_id));
}

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	uint64_t smp = 0;

	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		kprintf("bad multiboot magic\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	const char *cl = multiboot_cmdline((const void *)(uintptr_t)mbi_addr);
	if (cmdline_get_u64(cl, "smp", &smp) < 0 || smp > 1) {
		kprintf("spin: invalid smp=\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	if (smp) {
		if (smp_init() < 0)
			debug_exit(GUEST_EXIT_BADARG); /* smp_init printed why */
		smp_start_aps(spin_ap_main);
	}

	smp_kprintf("spin: spinning with interrupts off\n");
	__asm__ volatile("cli"); /* already clear; guest_enter_user keeps IF=0 */
	guest_enter_user(spin_forever, NULL, guest_user_stack_top);
}
