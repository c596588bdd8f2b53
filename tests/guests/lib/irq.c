/* Bulkhead test guests: PIC, I/O APIC, local APIC, PIT (see irq.h). */
#include "irq.h"

/* 8259 PIC data ports (OCW1: the interrupt mask). */
#define PIC1_DATA 0x21
#define PIC2_DATA 0xa1

/* Local APIC registers (offsets from GUEST_LAPIC_BASE). */
#define LAPIC_ID        0x020
#define LAPIC_TPR       0x080
#define LAPIC_SVR       0x0f0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_TIMER_ICR 0x380
#define LAPIC_TIMER_DCR 0x3e0
#define LAPIC_SVR_ENABLE   (1u << 8)
#define LAPIC_LVT_MASKED   (1u << 16)
#define LAPIC_LVT_PERIODIC (1u << 17)
#define LAPIC_DCR_DIV16    0x3u

/* I/O APIC: an index register and a data window. */
#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN    0x10
#define IOAPIC_VER    0x01
#define IOAPIC_REDIR  0x10 /* pin n: 0x10 + 2n (low), 0x11 + 2n (high) */
#define IOAPIC_MASKED (1u << 16)

/* 8254 PIT channel 2 and the port 0x61 gate. */
#define PIT_CH2     0x42
#define PIT_CMD     0x43
#define PORT_61     0x61
#define P61_GATE2   0x01
#define P61_SPEAKER 0x02
#define P61_OUT2    0x20
#define PIT_HZ      1193182ull

static uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(GUEST_LAPIC_BASE + reg);
}

static void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(GUEST_LAPIC_BASE + reg, v);
}

static uint32_t ioapic_read(uint32_t reg)
{
	mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
	return mmio_read32(IOAPIC_BASE + IOAPIC_WIN);
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
	mmio_write32(IOAPIC_BASE + IOAPIC_WIN, v);
}

void pic_mask_all(void)
{
	outb(PIC1_DATA, 0xff);
	outb(PIC2_DATA, 0xff);
}

void lapic_enable(void)
{
	lapic_write(LAPIC_TPR, 0);
	lapic_write(LAPIC_LVT_LINT0, LAPIC_LVT_MASKED);
	lapic_write(LAPIC_LVT_LINT1, LAPIC_LVT_MASKED);
	lapic_write(LAPIC_SVR, LAPIC_SVR_ENABLE | GUEST_SPURIOUS_VECTOR);
}

unsigned lapic_id(void)
{
	return lapic_read(LAPIC_ID) >> 24;
}

int ioapic_route(unsigned pin, unsigned vector, uint32_t flags)
{
	unsigned last = (ioapic_read(IOAPIC_VER) >> 16) & 0xff;

	if (pin > last) {
		kprintf("irq: I/O APIC pin %u does not exist (last is %u)\n", pin, last);
		return -1;
	}
	ioapic_write(IOAPIC_REDIR + 2 * pin, IOAPIC_MASKED);
	ioapic_write(IOAPIC_REDIR + 2 * pin + 1, lapic_id() << 24);
	ioapic_write(IOAPIC_REDIR + 2 * pin,
		     (vector & 0xff) | (flags & (IOAPIC_LEVEL | IOAPIC_ACTIVE_LOW)));
	return 0;
}

void ioapic_mask(unsigned pin)
{
	ioapic_write(IOAPIC_REDIR + 2 * pin, IOAPIC_MASKED);
}

uint32_t ioapic_entry_lo(unsigned pin)
{
	return ioapic_read(IOAPIC_REDIR + 2 * pin);
}

volatile uint64_t lapic_ticks;

static void lapic_tick(unsigned vector)
{
	(void)vector;
	lapic_ticks++;
}

void lapic_tick_start(void)
{
	guest_set_irq_handler(IRQ_VEC_TICK, lapic_tick);
	lapic_write(LAPIC_TIMER_DCR, LAPIC_DCR_DIV16);
	lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_PERIODIC | IRQ_VEC_TICK);
	lapic_write(LAPIC_TIMER_ICR, 0x200000);
}

void lapic_tick_stop(void)
{
	lapic_write(LAPIC_TIMER_ICR, 0);
	lapic_write(LAPIC_LVT_TIMER, LAPIC_LVT_MASKED | IRQ_VEC_TICK);
}

/*
 * One measurement: the TSC is read just before and just after the count's
 * last byte is written (the count starts at that write) and at every poll
 * of OUT2; the end lies between the last poll that saw OUT2 low and the
 * first that saw it high. A vCPU that was not running for a while during
 * one of those two windows makes it wide: then the measurement is
 * rejected (0), as its error could exceed 1/32. Time lost anywhere else
 * does not matter. UINT64_MAX: no PIT.
 */
static uint64_t pit_measure(uint32_t count, uint8_t p61)
{
	uint64_t t0a, t0b, prev, now;

	/* Gate high, speaker off. In mode 0 the count starts when its last
	 * byte is written (KVM's PIT ignores the gate in mode 0, a real one
	 * counts while it is high: both start here). */
	outb(PORT_61, (uint8_t)((p61 & ~P61_SPEAKER) | P61_GATE2));
	outb(PIT_CMD, 0xb0); /* channel 2, lobyte/hibyte, mode 0, binary */
	outb(PIT_CH2, (uint8_t)count);
	t0a = rdtsc();
	outb(PIT_CH2, (uint8_t)(count >> 8));
	t0b = rdtsc();
	if (inb(PORT_61) & P61_OUT2) /* already over (or no PIT at all) */
		return p61 == 0xff ? UINT64_MAX : 0;
	prev = now = rdtsc();
	while (!(inb(PORT_61) & P61_OUT2)) {
		prev = now;
		now = rdtsc();
		if (now - t0b > 10000000000ull)
			return UINT64_MAX;
	}
	now = rdtsc();
	outb(PORT_61, (uint8_t)(p61 & ~(P61_GATE2 | P61_SPEAKER)));
	uint64_t total = now - t0a;
	if ((t0b - t0a) + (now - prev) > total / 32)
		return 0;
	/* Midpoints of both windows. */
	return ((now + prev) / 2 - (t0a + t0b) / 2) * PIT_HZ / count;
}

const char *pit_tsc_error = "";

uint64_t pit_tsc_hz(unsigned ms)
{
	uint32_t count = (uint32_t)(PIT_HZ * ms / 1000);
	uint8_t p61 = inb(PORT_61);

	pit_tsc_error = "bad duration";
	if (ms == 0 || count > 0xffff)
		return 0;
	for (unsigned tries = 0; tries < 20; tries++) {
		uint64_t hz = pit_measure(count, p61);
		if (hz == UINT64_MAX) {
			pit_tsc_error = "no PIT channel 2 (OUT2 in port 0x61 never went high)";
			return 0;
		}
		if (hz) {
			pit_tsc_error = "";
			return hz;
		}
	}
	pit_tsc_error = "20 measurements against the PIT were all too uncertain";
	return 0;
}
