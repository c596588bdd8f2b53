/*
 * rtc: an MC146818 RTC test (ports 0x70/0x71, IRQ 8).
 *
 * Reads the date and time (BCD or binary per register B's DM bit, 12- or
 * 24-hour per its 24/12 bit, the century from CMOS 0x32), prints
 *   rtc: YYYY-MM-DD HH:MM:SS
 * checks the date is plausible and, with now=<unix seconds>, within
 * RTC_MAX_SKEW seconds of it. Then takes `count=` periodic interrupts at
 * the rate select `rate=` of register A: IRQ 8 through the I/O APIC (pin
 * 8, edge-triggered, active high, vector RTC_VECTOR, the PICs masked) to
 * a 64-bit IDT handler that reads register C and sends the local APIC
 * EOI; the main loop waits with sti; hlt. The TSC, calibrated against the
 * PIT, times them: the median interval must be within a factor of two of
 * the period. Runs at CPL 0. See README.md for the contract.
 */
#include "lib/guest.h"
#include "lib/irq.h"

#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71

#define RTC_SECONDS 0x00
#define RTC_MINUTES 0x02
#define RTC_HOURS 0x04
#define RTC_DAY 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d
#define RTC_CENTURY 0x32

#define RTC_A_UIP 0x80
#define RTC_A_DV_32K 0x20
#define RTC_B_SET 0x80
#define RTC_B_PIE 0x40
#define RTC_B_DM_BINARY 0x04
#define RTC_B_24H 0x02
#define RTC_C_IRQF 0x80
#define RTC_C_PF 0x40
#define RTC_HOUR_PM 0x80

#define RTC_IRQ 8
#define RTC_VECTOR 0x28
#define RTC_MAX_SKEW 300 /* seconds */
#define RTC_MAX_COUNT 1024

struct rtc_time {
	unsigned year, month, day, hour, min, sec;
};

static uint8_t cmos_read(uint8_t idx)
{
	outb(CMOS_INDEX, idx);
	return inb(CMOS_DATA);
}

static void cmos_write(uint8_t idx, uint8_t v)
{
	outb(CMOS_INDEX, idx);
	outb(CMOS_DATA, v);
}

static void fail(void) __attribute__((noreturn));
static void fail(void)
{
	debug_exit(GUEST_EXIT_FAIL);
}

/* ---- reading the clock ------------------------------------------------- */

struct rtc_raw {
	uint8_t sec, min, hour, day, month, year, century;
};

static void wait_not_uip(void)
{
	uint64_t t0 = rdtsc();

	while (cmos_read(RTC_REG_A) & RTC_A_UIP) {
		if (rdtsc() - t0 > 10000000000ull) {
			kprintf("rtc: FAIL register A's UIP never clears\n");
			fail();
		}
	}
}

static void read_raw(struct rtc_raw *r)
{
	wait_not_uip();
	r->sec = cmos_read(RTC_SECONDS);
	r->min = cmos_read(RTC_MINUTES);
	r->hour = cmos_read(RTC_HOURS);
	r->day = cmos_read(RTC_DAY);
	r->month = cmos_read(RTC_MONTH);
	r->year = cmos_read(RTC_YEAR);
	r->century = cmos_read(RTC_CENTURY);
}

/*
 * UIP clear guarantees 244 us without an update, but every access here is
 * a VM exit (and CPL 0 code may be emulated), so reading seven registers
 * can take longer than that: read until two passes agree.
 */
static void read_stable(struct rtc_raw *r)
{
	struct rtc_raw again;

	read_raw(r);
	for (unsigned tries = 0; tries < 10; tries++) {
		read_raw(&again);
		if (memcmp(r, &again, sizeof(again)) == 0)
			return;
		*r = again;
	}
	kprintf("rtc: FAIL the time registers never read the same twice\n");
	fail();
}

static int from_bcd(uint8_t v, int bcd, unsigned *out)
{
	if (!bcd) {
		*out = v;
		return 0;
	}
	if ((v & 0x0f) > 9 || (v >> 4) > 9)
		return -1;
	*out = (v >> 4) * 10 + (v & 0x0f);
	return 0;
}

static int is_leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const uint8_t days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

static uint64_t unix_seconds(const struct rtc_time *t)
{
	uint64_t days = 0;

	for (unsigned y = 1970; y < t->year; y++)
		days += is_leap(y) ? 366 : 365;
	for (unsigned m = 1; m < t->month; m++)
		days += days_in_month(t->year, m);
	days += t->day - 1;
	return ((days * 24 + t->hour) * 60 + t->min) * 60 + t->sec;
}

static void read_time(struct rtc_time *t, uint8_t regb)
{
	struct rtc_raw r;
	int bcd = !(regb & RTC_B_DM_BINARY);
	unsigned year, century, hour;
	int pm = 0;

	read_stable(&r);
	uint8_t hr = r.hour;
	if (!(regb & RTC_B_24H)) {
		pm = !!(hr & RTC_HOUR_PM);
		hr &= (uint8_t)~RTC_HOUR_PM;
	}
	if (from_bcd(r.sec, bcd, &t->sec) || from_bcd(r.min, bcd, &t->min) ||
	    from_bcd(hr, bcd, &hour) || from_bcd(r.day, bcd, &t->day) ||
	    from_bcd(r.month, bcd, &t->month) || from_bcd(r.year, bcd, &year)) {
		kprintf("rtc: FAIL bad BCD: %02x:%02x:%02x %02x/%02x/%02x (register B 0x%02x)\n",
			r.hour, r.min, r.sec, r.day, r.month, r.year, regb);
		fail();
	}
	if (!(regb & RTC_B_24H)) {
		if (hour < 1 || hour > 12) {
			kprintf("rtc: FAIL 12-hour mode hour %u\n", hour);
			fail();
		}
		hour = hour % 12 + (pm ? 12 : 0);
	}
	t->hour = hour;
	if (from_bcd(r.century, bcd, &century) || century < 19 || century > 99) {
		kprintf("rtc: century register 0x32 reads 0x%02x: assuming 20\n", r.century);
		century = 20;
	}
	t->year = century * 100 + year;
}

/* ---- periodic interrupts ------------------------------------------------- */

static volatile unsigned rtc_irqs, rtc_other, rtc_target;
static volatile uint64_t tsc_first, tsc_last;
static uint64_t gaps[RTC_MAX_COUNT]; /* TSC ticks between interrupts */

static void rtc_interrupt(unsigned vector)
{
	uint64_t now = rdtsc();
	uint8_t c = cmos_read(RTC_REG_C); /* acknowledges: lowers the IRQ line */

	(void)vector;
	if (!(c & RTC_C_PF)) {
		rtc_other++;
		return;
	}
	if (rtc_irqs >= rtc_target)
		return; /* one that came before PIE was cleared */
	if (rtc_irqs == 0)
		tsc_first = now;
	else if (rtc_irqs < RTC_MAX_COUNT)
		gaps[rtc_irqs - 1] = now - tsc_last;
	tsc_last = now;
	rtc_irqs++;
}

static void periodic_test(unsigned rate, unsigned count)
{
	unsigned freq = 32768u >> (rate - 1);

	pic_mask_all();
	lapic_enable();
	uint64_t tsc_hz = pit_tsc_hz(50);
	if (tsc_hz)
		kprintf("rtc: TSC %lu kHz (measured against the PIT)\n",
			(unsigned long)(tsc_hz / 1000));
	else
		kprintf("rtc: cannot time the TSC: %s: rate not checked\n", pit_tsc_error);

	rtc_target = count;
	guest_set_irq_handler(RTC_VECTOR, rtc_interrupt);
	uint8_t a = cmos_read(RTC_REG_A), b = cmos_read(RTC_REG_B);
	cmos_write(RTC_REG_A, (uint8_t)(RTC_A_DV_32K | rate));
	(void)cmos_read(RTC_REG_C); /* clear stale flags */
	if (ioapic_route(RTC_IRQ, RTC_VECTOR, 0) < 0)
		fail();
	lapic_tick_start(); /* wakes the hlt below now and then for the timeout */
	cmos_write(RTC_REG_B, (uint8_t)((b & ~RTC_B_SET) | RTC_B_PIE));

	uint64_t timeout = tsc_hz ? tsc_hz * 5 + tsc_hz * 4 * count / freq :
				    10000000000ull * (2 + count / freq);
	uint64_t t0 = rdtsc();
	irq_disable();
	while (rtc_irqs < count) {
		if (rdtsc() - t0 > timeout) {
			kprintf("rtc: FAIL %u of %u periodic interrupts in time (register A 0x%02x, "
				"B 0x%02x, C 0x%02x, I/O APIC pin 8 0x%08x, %lu ticks)\n",
				rtc_irqs, count, cmos_read(RTC_REG_A), cmos_read(RTC_REG_B),
				cmos_read(RTC_REG_C), ioapic_entry_lo(RTC_IRQ),
				(unsigned long)lapic_ticks);
			fail();
		}
		irq_wait();
	}
	cmos_write(RTC_REG_B, (uint8_t)(b & ~(RTC_B_SET | RTC_B_PIE)));
	ioapic_mask(RTC_IRQ);
	lapic_tick_stop();
	cmos_write(RTC_REG_A, a);
	(void)cmos_read(RTC_REG_C);
	irq_enable(); /* let anything already pending in the local APIC through */
	irq_disable();

	if (rtc_other)
		kprintf("rtc: interrupts without PF: %u\n", rtc_other);
	/*
	 * The rate check uses the median interval: a period that ends before
	 * the previous interrupt's register C read is lost (on the chip too),
	 * and a loaded host delays some interrupts by more than a period, so
	 * the mean rate can be well below the nominal one while most
	 * intervals are still one period.
	 */
	if (tsc_hz && count > 1) {
		unsigned n = count - 1;
		uint64_t median = u64_sort_median(gaps, n);
		uint64_t ticks = tsc_last - tsc_first;
		uint64_t period = tsc_hz / freq;
		uint64_t mhz = ticks ? tsc_hz * n * 1000 / ticks : 0; /* millihertz */

		kprintf("rtc: rate %lu.%03lu Hz (mean), nominal %u Hz; intervals %lu/%lu/%lu us "
			"(min/median/max), period %lu us\n",
			(unsigned long)(mhz / 1000), (unsigned long)(mhz % 1000), freq,
			(unsigned long)(gaps[0] * 1000000 / tsc_hz),
			(unsigned long)(median * 1000000 / tsc_hz),
			(unsigned long)(gaps[n - 1] * 1000000 / tsc_hz),
			(unsigned long)(period * 1000000 / tsc_hz));
		if (median < period / 2 || median > period * 2) {
			kprintf("rtc: FAIL the median interval is %lu TSC ticks, the period %lu\n",
				(unsigned long)median, (unsigned long)period);
			fail();
		}
	}
	kprintf("rtc: %u periodic interrupts\n", count);
}

void guest_main(uint32_t mb_magic, uint32_t mbi_addr)
{
	const struct multiboot_info *mbi = (const void *)(uintptr_t)mbi_addr;
	uint64_t now = 0, rate = 11, count = 16;
	int have_now;

	if (mb_magic != MULTIBOOT_BOOTLOADER_MAGIC) {
		kprintf("bad multiboot magic\n");
		debug_exit(GUEST_EXIT_BADARG);
	}
	const char *cmdline = multiboot_cmdline(mbi);
	have_now = cmdline_get_u64(cmdline, "now", &now);
	if (have_now < 0 || cmdline_get_u64(cmdline, "rate", &rate) < 0 || rate < 3 ||
	    rate > 15 || cmdline_get_u64(cmdline, "count", &count) < 0 || count < 1 ||
	    count > RTC_MAX_COUNT) {
		kprintf("rtc: invalid now=, rate= (3-15) or count= (1-%u)\n", RTC_MAX_COUNT);
		debug_exit(GUEST_EXIT_BADARG);
	}

	uint8_t b = cmos_read(RTC_REG_B);
	if (b == 0xff && cmos_read(RTC_REG_A) == 0xff) {
		kprintf("rtc: FAIL no RTC at ports 0x70/0x71 (registers A and B read 0xff)\n");
		fail();
	}
	kprintf("rtc: register A 0x%02x B 0x%02x D 0x%02x (%s, %s)\n", cmos_read(RTC_REG_A), b,
		cmos_read(RTC_REG_D), b & RTC_B_DM_BINARY ? "binary" : "BCD",
		b & RTC_B_24H ? "24-hour" : "12-hour");

	struct rtc_time t;
	read_time(&t, b);
	kprintf("rtc: %04u-%02u-%02u %02u:%02u:%02u\n", t.year, t.month, t.day, t.hour, t.min,
		t.sec);
	if (t.year < 2024 || t.year > 2099 || t.month < 1 || t.month > 12 || t.day < 1 ||
	    t.day > days_in_month(t.year, t.month) || t.hour > 23 || t.min > 59 || t.sec > 59) {
		kprintf("rtc: FAIL implausible date and time\n");
		fail();
	}
	if (have_now) {
		uint64_t secs = unix_seconds(&t);
		uint64_t skew = secs > now ? secs - now : now - secs;
		if (skew > RTC_MAX_SKEW) {
			kprintf("rtc: FAIL the clock says %lu, now=%lu: %lu s apart\n",
				(unsigned long)secs, (unsigned long)now, (unsigned long)skew);
			fail();
		}
		kprintf("rtc: within %lu s of now=%lu\n", (unsigned long)skew, (unsigned long)now);
	}

	periodic_test((unsigned)rate, (unsigned)count);
	debug_exit(GUEST_EXIT_OK);
}
