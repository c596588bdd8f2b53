/*
 * reset: the guest resets itself with a triple fault and checks that it
 * booted again. RAM above the image survives a reset (only conventional
 * memory is cleared and the image reloaded), so a marker at 8 MiB tells
 * the two boots apart.
 *
 *   first boot:  prints "reset: first boot", then triple-faults (an empty
 *                IDT, then ud2: #UD cannot be delivered, nor can #DF)
 *   second boot: prints "reset: second boot, the machine was reset" and
 *                exits through debug-exit with 0
 * Needs --mem of at least 16M.
 */
#include "lib/guest.h"

#define RESET_MARKER_ADDR 0x800000ull
#define RESET_MARKER 0x7265736574216b6full

struct idtr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	volatile uint64_t *marker = (volatile uint64_t *)RESET_MARKER_ADDR;
	struct idtr empty = { 0, 0 };

	(void)mb_magic;
	(void)mbi_addr;
	if (*marker == RESET_MARKER) {
		*marker = 0;
		kprintf("reset: second boot, the machine was reset\n");
		debug_exit(0);
	}
	*marker = RESET_MARKER;
	kprintf("reset: first boot\n");
	__asm__ volatile("lidt %0; ud2" : : "m"(empty));
	kprintf("reset: still running after the triple fault\n");
	debug_exit(1);
}
