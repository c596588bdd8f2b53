/*
 * pit: the 8254 PIT's channel 0 as the periodic timer (IRQ 0), and what
 * becomes of the ticks a guest misses.
 *
 * Channel 0 in mode 2 (rate generator) at `hz=` (default 100) raises IRQ
 * 0 through the I/O APIC (pin 0, edge-triggered, active high, vector
 * PIT_VECTOR, the PICs masked) to a 64-bit IDT handler that counts and
 * sends the local APIC EOI. First `count=` (default 8) interrupts, whose
 * median interval, timed by the TSC calibrated against channel 2, must be
 * within a factor of two of the period. Then interrupts stay off for
 * `miss=` (default 20) periods while the timer runs on, and the guest
 * counts the interrupts that arrive within one period of turning them
 * back on. A PIT that drops lost ticks delivers the one the local APIC
 * latched meanwhile and the next one or two (3 here); one that makes them
 * up (KVM's "reinject" mode) delivers every missed tick, one per EOI, well
 * within the period (20 of 20 here). More than half of them fails. Prints
 *   pit: N periodic interrupts, intervals A/B/C us (min/median/max), period P us
 *   pit: K interrupts within a period after missing M
 *   pit: lost ticks are dropped
 * and exits through debug-exit. Runs at CPL 0. See README.md.
 */
#include "lib/guest.h"
#include "lib/irq.h"

#define PIT_CH0 0x40
#define PIT_MODE 0x43
#define PIT_CH0_RATEGEN_LOHI 0x34 /* channel 0, lobyte/hibyte, mode 2 */
#define PIT_CH0_OFF 0x30          /* channel 0, lobyte/hibyte, mode 0 */
#define PIT_HZ 1193182u
#define PIT_IRQ 0
#define PIT_VECTOR 0x29
#define PIT_MAX_COUNT 256

static void fail(void) __attribute__((noreturn));
static void fail(void)
{
	debug_exit(GUEST_EXIT_FAIL);
}

static volatile unsigned pit_irqs;
static volatile uint64_t pit_tsc[PIT_MAX_COUNT];

static void pit_interrupt(unsigned vector)
{
	unsigned n = pit_irqs;

	(void)vector;
	if (n < PIT_MAX_COUNT)
		pit_tsc[n] = rdtsc();
	pit_irqs = n + 1;
}

static void pit_start(unsigned hz)
{
	unsigned div = PIT_HZ / hz;

	outb(PIT_MODE, PIT_CH0_RATEGEN_LOHI);
	outb(PIT_CH0, (uint8_t)div);
	outb(PIT_CH0, (uint8_t)(div >> 8));
}

/* Wait with interrupts on until `n` have come or `ticks` TSC ticks pass. */
static void pit_wait_irqs(unsigned n, uint64_t ticks)
{
	uint64_t t0 = rdtsc();

	while (pit_irqs < n && rdtsc() - t0 < ticks)
		irq_wait();
}

/* The median interval of the first `count` interrupts against the period. */
static void pit_check_rate(unsigned count, uint64_t period, uint64_t tsc_hz)
{
	uint64_t gaps[PIT_MAX_COUNT];
	unsigned n = count - 1;

	for (unsigned i = 0; i < n; i++)
		gaps[i] = pit_tsc[i + 1] - pit_tsc[i];
	uint64_t median = u64_sort_median(gaps, n);
	kprintf("pit: %u periodic interrupts, intervals %lu/%lu/%lu us (min/median/max), "
		"period %lu us\n", count, (unsigned long)(gaps[0] * 1000000 / tsc_hz),
		(unsigned long)(median * 1000000 / tsc_hz),
		(unsigned long)(gaps[n - 1] * 1000000 / tsc_hz),
		(unsigned long)(period * 1000000 / tsc_hz));
	if (median < period / 2 || median > period * 2) {
		kprintf("pit: FAIL the median interval is %lu TSC ticks, the period %lu\n",
			(unsigned long)median, (unsigned long)period);
		fail();
	}
}

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	const struct multiboot_info *mbi = (const void *)(uintptr_t)mbi_addr;
	uint64_t hz = 100, count = 8, miss = 20;

	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		kprintf("bad multiboot magic\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	const char *cmdline = multiboot_cmdline(mbi);
	if (cmdline_get_u64(cmdline, "hz", &hz) < 0 || hz < 20 || hz > 1000 ||
	    cmdline_get_u64(cmdline, "count", &count) < 0 || count < 3 ||
	    count > PIT_MAX_COUNT || cmdline_get_u64(cmdline, "miss", &miss) < 0 ||
	    miss < 8 || miss > 1000) {
		kprintf("pit: invalid hz= (20-1000), count= (3-%u) or miss= (8-1000)\n",
			PIT_MAX_COUNT);
		debug_exit(GUEST_EXIT_BADARG);
	}

	pic_mask_all();
	lapic_enable();
	uint64_t tsc_hz = pit_tsc_hz(50);
	if (!tsc_hz) {
		kprintf("pit: FAIL cannot time the TSC: %s\n", pit_tsc_error);
		fail();
	}
	uint64_t period = tsc_hz / hz;

	guest_set_irq_handler(PIT_VECTOR, pit_interrupt);
	if (ioapic_route(PIT_IRQ, PIT_VECTOR, 0) < 0)
		fail();
	lapic_tick_start(); /* ends the hlt in irq_wait now and then */
	irq_disable();
	pit_start((unsigned)hz);

	/* The rate: count interrupts, timed by the TSC. */
	pit_wait_irqs((unsigned)count, period * count * 4 + tsc_hz * 5);
	if (pit_irqs < count) {
		kprintf("pit: FAIL %u of %lu periodic interrupts in time (I/O APIC pin 0 "
			"0x%08x)\n", pit_irqs, (unsigned long)count, ioapic_entry_lo(PIT_IRQ));
		fail();
	}
	pit_check_rate((unsigned)count, period, tsc_hz);

	/* Lost ticks: interrupts off for `miss` periods, the timer running. */
	uint64_t t0 = rdtsc();
	while (rdtsc() - t0 < period * miss)
		__asm__ volatile("pause");
	unsigned before = pit_irqs;
	pit_wait_irqs(before + (unsigned)miss, period); /* returns with IF=0 */
	unsigned after = pit_irqs - before;

	outb(PIT_MODE, PIT_CH0_OFF); /* one count of 0 and then silence */
	ioapic_mask(PIT_IRQ);
	lapic_tick_stop();
	kprintf("pit: %u interrupts within a period after missing %lu\n", after,
		(unsigned long)miss);
	if (after > miss / 2) {
		kprintf("pit: FAIL lost ticks are made up (%u of %lu came at once)\n", after,
			(unsigned long)miss);
		fail();
	}
	kprintf("pit: lost ticks are dropped\n");
	debug_exit(GUEST_EXIT_OK);
}
