/*
 * Bulkhead test guests: PC interrupt hardware (lib/irq.c).
 *
 * The guests that take interrupts route them through the I/O APIC (ISA IRQ
 * n is I/O APIC pin n, as with KVM's in-kernel irqchip) to the local APIC
 * of the CPU that calls these, with both 8259 PICs masked, and install
 * their handlers with guest_set_irq_handler (guest.h), which also sends
 * the local APIC EOI. Also here: a TSC calibration against the 8254 PIT's
 * channel 2 (gated through port 0x61), and the local APIC timer as a
 * periodic wake-up so that "sti; hlt" waits can time out.
 *
 * Linked only into the guests that need it (GUEST_IRQ_OBJS in module.mk).
 * Every function here must run at CPL 0.
 */
#ifndef BULKHEAD_GUEST_IRQ_H
#define BULKHEAD_GUEST_IRQ_H

#include "guest.h"

#define IOAPIC_BASE 0xfec00000u

/* ioapic_route flags. Default: edge-triggered, active high. */
#define IOAPIC_LEVEL      (1u << 15) /* level-triggered */
#define IOAPIC_ACTIVE_LOW (1u << 13)

/* Vector of the local APIC timer started by lapic_tick_start. */
#define IRQ_VEC_TICK 0xf0

/* Mask every line of both 8259 PICs (OCW1 0xff to ports 0x21 and 0xa1). */
void pic_mask_all(void);

/* Software-enable this CPU's local APIC (SVR bit 8, spurious vector
 * GUEST_SPURIOUS_VECTOR), accept every priority (TPR 0), mask LINT0 and
 * LINT1 (the PIC's ExtINT path). */
void lapic_enable(void);

/* This CPU's local APIC id. */
unsigned lapic_id(void);

/*
 * Program I/O APIC pin `pin`: fixed delivery of `vector` to this CPU's
 * local APIC (physical destination), with `flags` (IOAPIC_LEVEL,
 * IOAPIC_ACTIVE_LOW), unmasked. Returns 0, or -1 after printing
 * "irq: ..." if the pin is beyond the I/O APIC's last redirection entry.
 */
int ioapic_route(unsigned pin, unsigned vector, uint32_t flags);

/* Mask I/O APIC pin `pin` again. */
void ioapic_mask(unsigned pin);

/* The raw low 32 bits of pin's redirection entry (for diagnostics). */
uint32_t ioapic_entry_lo(unsigned pin);

/*
 * Start the local APIC timer in periodic mode on IRQ_VEC_TICK (the
 * handler only counts), initial count 0x200000 with divide-by-16: about
 * 30 Hz on a 1 GHz APIC bus (KVM's). Its only purpose is to end a
 * "sti; hlt" now and then, so that waits can check a TSC timeout.
 */
void lapic_tick_start(void);
void lapic_tick_stop(void);
extern volatile uint64_t lapic_ticks;

/*
 * Measure the TSC frequency against the 8254 PIT (1193182 Hz): channel 2
 * in mode 0 counts down `ms` milliseconds (1-54) with its gate raised
 * through port 0x61; the TSC is read around the write that starts the
 * count and around each poll of OUT2 (port 0x61 bit 5). A measurement
 * whose start and end together are uncertain by more than 1/32 of it (the
 * vCPU did not run for a while just then) is repeated, up to 20 times.
 * Returns ticks per second, or 0 with the reason in pit_tsc_error if OUT2
 * never went high (no PIT, or no port 0x61) within 10^10 TSC ticks or
 * every measurement was uncertain.
 */
uint64_t pit_tsc_hz(unsigned ms);
extern const char *pit_tsc_error;

#endif
