/*
 * idle: an idle guest, for the memory and idle-CPU benchmarks (bench/).
 * Masks both 8259 PICs, prints "idle: ready" and then halts with
 * interrupts enabled forever. The local APIC stays as the VMM left it
 * (its timer is never started) and every I/O APIC pin stays masked, so
 * nothing wakes it: the vCPU costs nothing until the VMM stops it.
 * Reads no command-line keys. Runs at CPL 0.
 */
#include "lib/guest.h"
#include "lib/irq.h"

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	(void)mbi_addr;
	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		kprintf("bad multiboot magic\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	pic_mask_all();
	kprintf("idle: ready\n");
	for (;;)
		irq_wait();
}
