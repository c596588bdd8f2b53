/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the MC146818 RTC core, driven through its descriptor
 * against a fake host with a controllable virtual clock and wall clock, a
 * timer table (the test advances the clock and fires what is due) and an
 * IRQ recorder.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device-procs/devhost/dev.h"
#include "rtc_state.pb-c.h"
#include "tests/unit/fakehost.h"
#include "tests/unit/suites.h"

/* Registers and bits, from the MC146818A datasheet. */
enum {
	SEC = 0x00, ALARM_SEC = 0x01, MIN = 0x02, ALARM_MIN = 0x03,
	HOUR = 0x04, ALARM_HOUR = 0x05, WDAY = 0x06, MDAY = 0x07,
	MON = 0x08, YEAR = 0x09, REG_A = 0x0a, REG_B = 0x0b, REG_C = 0x0c,
	REG_D = 0x0d, CENTURY = 0x32,
};
#define A_UIP 0x80
#define A_DV_32K 0x20
#define A_DV_RESET 0x70
#define B_SET 0x80
#define B_PIE 0x40
#define B_AIE 0x20
#define B_UIE 0x10
#define B_SQWE 0x08
#define B_DM 0x04
#define B_24H 0x02
#define B_DSE 0x01
#define C_IRQF 0x80
#define C_PF 0x40
#define C_AF 0x20
#define C_UF 0x10
#define D_VRT 0x80
#define PM 0x80

#define NS 1000000000ull
#define MS 1000000ull
#define US 1000ull
#define T0 5000ull		/* the virtual clock when a device is built */

/* ---- fake host ---------------------------------------------------------- */

static struct fakehost host;
/* What the tests' model of a guest did: timers fired, and with auto_ack
 * an interrupt handler that reads register C while the line is high. */
static struct {
	unsigned fires;
	bool auto_ack;
	unsigned acks;
	uint8_t acked;		/* C values the handler saw, or'ed */
} guest;
static struct dev *dev;

/* Seconds since the epoch of a UTC date and time. */
static int64_t utc(int y, int mon, int d, int h, int min, int s)
{
	struct tm tm = {
		.tm_year = y - 1900, .tm_mon = mon - 1, .tm_mday = d,
		.tm_hour = h, .tm_min = min, .tm_sec = s,
	};

	return (int64_t)timegm(&tm);
}

static void new_rtc(int64_t wall)
{
	host.wall = wall;
	host.clock_ns = T0;
	ck_assert_int_eq(dev_new(&rtc_desc, 0, &fakehost_ops, &host, &dev), 0);
}

/* Replace the device with a fresh one (a new process, say). */
static void renew_rtc(int64_t wall)
{
	dev_free(dev);
	dev = NULL;
	memset(host.timer, 0, sizeof(host.timer));
	host.level[0] = false;
	new_rtc(wall);
}

#define WALL_2024 utc(2024, 3, 15, 13, 45, 30)	/* a Friday */

static void rtc_setup(void)
{
	fakehost_reset(&host, 1);
	memset(&guest, 0, sizeof(guest));
	new_rtc(WALL_2024);
}

static void rtc_teardown(void)
{
	fakehost_assert_irqs(&host);
	ck_assert_uint_eq(host.arm_in_past, 0);
	ck_assert_uint_eq(host.bad_timer_id, 0);
	dev_free(dev);
	dev = NULL;
}

/* ---- access helpers ----------------------------------------------------- */

static void port_wr(unsigned off, uint8_t val)
{
	fakehost_wr8(dev, 0, off, val);
}

static uint8_t port_rd(unsigned off)
{
	return fakehost_rd8(dev, 0, off, 0xaa);
}

static uint8_t cmos_rd(unsigned index)
{
	port_wr(0, (uint8_t)index);
	return port_rd(1);
}

static void cmos_wr(unsigned index, uint8_t val)
{
	port_wr(0, (uint8_t)index);
	port_wr(1, val);
}

/* Fire every timer due by target, in deadline order, then set the clock. */
static void advance_to(uint64_t target)
{
	for (unsigned guard = 0; guard < 10000000; guard++) {
		unsigned id = DEV_MAX_TIMERS;
		uint64_t when = UINT64_MAX;

		for (unsigned i = 0; i < DEV_MAX_TIMERS; i++) {
			if (host.timer[i] && host.timer[i] <= target &&
			    host.timer[i] < when) {
				when = host.timer[i];
				id = i;
			}
		}
		if (id == DEV_MAX_TIMERS)
			break;
		if (when > host.clock_ns)
			host.clock_ns = when;
		host.timer[id] = 0;
		guest.fires++;
		dev->desc->timer(dev, id);
		if (guest.auto_ack && host.level[0]) {
			guest.acked |= cmos_rd(REG_C);
			guest.acks++;
		}
	}
	host.clock_ns = target;
}

static void advance(uint64_t ns)
{
	advance_to(host.clock_ns + ns);
}

static uint8_t bcd(unsigned v)
{
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

/* The date and time registers in BCD: y m d h min s (24-hour). */
static void check_time_bcd(unsigned y, unsigned m, unsigned d, unsigned h,
			   unsigned min, unsigned s)
{
	ck_assert_uint_eq(cmos_rd(SEC), bcd(s));
	ck_assert_uint_eq(cmos_rd(MIN), bcd(min));
	ck_assert_uint_eq(cmos_rd(HOUR), bcd(h));
	ck_assert_uint_eq(cmos_rd(MDAY), bcd(d));
	ck_assert_uint_eq(cmos_rd(MON), bcd(m));
	ck_assert_uint_eq(cmos_rd(YEAR), bcd(y % 100));
	ck_assert_uint_eq(cmos_rd(CENTURY), bcd(y / 100));
}

/* ---- descriptor, reading the clock -------------------------------------- */

START_TEST(test_rtc_descriptor)
{
	ck_assert_str_eq(rtc_desc.mf->name, "rtc");
	ck_assert_uint_eq(rtc_desc.mf->nregions, 1);
	ck_assert_int_eq(rtc_desc.mf->regions[0].space, DEV_PIO);
	ck_assert_uint_eq(rtc_desc.mf->regions[0].base, 0x70);
	ck_assert_uint_eq(rtc_desc.mf->regions[0].len, 2);
	ck_assert_uint_eq(rtc_desc.mf->nirqs, 1);
	ck_assert_uint_eq(rtc_desc.mf->irqs[0], 8);
	ck_assert(rtc_desc.irq_flags == NULL ||
		  rtc_desc.irq_flags[0] == DEV_IRQ_EDGE);
	ck_assert_uint_eq(rtc_desc.mf->state_version, 1);
	ck_assert_ptr_nonnull(rtc_desc.io);
	ck_assert_ptr_nonnull(rtc_desc.timer);
	ck_assert_ptr_nonnull(rtc_desc.save);
	ck_assert_ptr_nonnull(rtc_desc.load);
}
END_TEST

START_TEST(test_rtc_read_bcd)
{
	check_time_bcd(2024, 3, 15, 13, 45, 30);
	ck_assert_uint_eq(cmos_rd(WDAY), 6);		/* Friday */
	ck_assert_uint_eq(cmos_rd(REG_A), A_DV_32K | 0x06);
	ck_assert_uint_eq(cmos_rd(REG_B), B_24H);
	ck_assert_uint_eq(cmos_rd(REG_C), 0);
	ck_assert_uint_eq(cmos_rd(REG_D), D_VRT);
	ck_assert_uint_eq(host.edges[0], 0);
	ck_assert_uint_eq(host.timer[0], 0);		/* nothing enabled */
}
END_TEST

START_TEST(test_rtc_read_binary)
{
	cmos_wr(REG_B, B_24H | B_DM);
	ck_assert_uint_eq(cmos_rd(SEC), 30);
	ck_assert_uint_eq(cmos_rd(MIN), 45);
	ck_assert_uint_eq(cmos_rd(HOUR), 13);
	ck_assert_uint_eq(cmos_rd(WDAY), 6);
	ck_assert_uint_eq(cmos_rd(MDAY), 15);
	ck_assert_uint_eq(cmos_rd(MON), 3);
	ck_assert_uint_eq(cmos_rd(YEAR), 24);
	ck_assert_uint_eq(cmos_rd(CENTURY), 20);
	/* and back */
	cmos_wr(REG_B, B_24H);
	ck_assert_uint_eq(cmos_rd(HOUR), 0x13);
}
END_TEST

START_TEST(test_rtc_12_hour)
{
	static const struct {
		int hour;
		uint8_t bcd12, bin12;
	} hours[] = {
		{0, 0x12, 12}, {1, 0x01, 1}, {11, 0x11, 11},
		{12, PM | 0x12, PM | 12}, {13, PM | 0x01, PM | 1},
		{23, PM | 0x11, PM | 11},
	};

	for (unsigned i = 0; i < sizeof(hours) / sizeof(hours[0]); i++) {
		renew_rtc(utc(2024, 1, 1, hours[i].hour, 30, 0));
		ck_assert_uint_eq(cmos_rd(HOUR), bcd((unsigned)hours[i].hour));
		cmos_wr(REG_B, 0);		/* 12-hour, BCD */
		ck_assert_uint_eq(cmos_rd(HOUR), hours[i].bcd12);
		cmos_wr(REG_B, B_DM);		/* 12-hour, binary */
		ck_assert_uint_eq(cmos_rd(HOUR), hours[i].bin12);
		ck_assert_uint_eq(cmos_rd(MIN), 30);
	}

	/* 11:59:59 PM rolls to 12 AM; 11:59:59 AM to 12 PM. */
	renew_rtc(utc(2024, 1, 1, 23, 59, 59));
	cmos_wr(REG_B, 0);
	ck_assert_uint_eq(cmos_rd(HOUR), PM | 0x11);
	advance(NS);
	ck_assert_uint_eq(cmos_rd(HOUR), 0x12);
	ck_assert_uint_eq(cmos_rd(MDAY), 0x02);
	renew_rtc(utc(2024, 1, 1, 11, 59, 59));
	cmos_wr(REG_B, 0);
	ck_assert_uint_eq(cmos_rd(HOUR), 0x11);
	advance(NS);
	ck_assert_uint_eq(cmos_rd(HOUR), PM | 0x12);
}
END_TEST

START_TEST(test_rtc_set_12_hour)
{
	/* Setting 12 AM, 12 PM and 7 PM in 12-hour mode, read in 24. */
	static const struct { uint8_t reg; uint8_t h24; } sets[] = {
		{0x12, 0x00}, {PM | 0x12, 0x12}, {PM | 0x07, 0x19},
		{0x07, 0x07},
	};

	for (unsigned i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		cmos_wr(REG_B, B_SET);
		cmos_wr(HOUR, sets[i].reg);
		cmos_wr(REG_B, 0);
		ck_assert_uint_eq(cmos_rd(HOUR), sets[i].reg);
		cmos_wr(REG_B, B_24H);
		ck_assert_uint_eq(cmos_rd(HOUR), sets[i].h24);
	}
}
END_TEST

/* ---- the clock advancing ------------------------------------------------ */

START_TEST(test_rtc_advances_with_virtual_clock)
{
	advance(NS - 1);
	ck_assert_uint_eq(cmos_rd(SEC), 0x30);
	advance(1);
	ck_assert_uint_eq(cmos_rd(SEC), 0x31);
	advance(29 * NS + NS / 2);
	check_time_bcd(2024, 3, 15, 13, 46, 0);
	advance(3600 * NS);
	check_time_bcd(2024, 3, 15, 14, 46, 0);
	advance(10 * 3600 * NS);
	check_time_bcd(2024, 3, 16, 0, 46, 0);
	ck_assert_uint_eq(cmos_rd(WDAY), 7);		/* Saturday */
	advance(86400 * NS);
	ck_assert_uint_eq(cmos_rd(WDAY), 1);		/* Sunday */
	ck_assert_uint_eq(guest.fires, 0);		/* no timer needed */
}
END_TEST

START_TEST(test_rtc_stops_with_virtual_clock)
{
	advance(2 * NS);
	ck_assert_uint_eq(cmos_rd(SEC), 0x32);
	/* Suspended: the host's wall clock moves on, the virtual one not. */
	host.wall += 3600;
	ck_assert_uint_eq(cmos_rd(SEC), 0x32);
	ck_assert_uint_eq(cmos_rd(HOUR), 0x13);
	dev->desc->reset(dev);	/* not even a reset rereads the wall */
	check_time_bcd(2024, 3, 15, 13, 45, 32);
	advance(NS);
	ck_assert_uint_eq(cmos_rd(SEC), 0x33);
}
END_TEST

START_TEST(test_rtc_no_host_clocks)
{
	/* A devhost without clock, wall clock or timers. */
	struct dev *d;

	ck_assert_int_eq(dev_new(&rtc_desc, 0, &fakehost_bare_ops, &host, &d), 0);
	dev_free(dev);
	dev = d;
	check_time_bcd(2000, 1, 1, 0, 0, 0);	/* its default */
	ck_assert_uint_eq(cmos_rd(WDAY), 7);	/* a Saturday */
	cmos_wr(REG_B, B_24H | B_UIE | B_PIE | B_AIE);
	cmos_wr(REG_B, B_SET);
	cmos_wr(YEAR, 0x30);
	cmos_wr(REG_B, B_24H);
	check_time_bcd(2030, 1, 1, 0, 0, 0);
	ck_assert_uint_eq(cmos_rd(REG_C), 0);
}
END_TEST

/* ---- setting the clock -------------------------------------------------- */

START_TEST(test_rtc_set_time)
{
	advance(300 * MS);			/* phase 0.3 s */
	cmos_wr(REG_B, B_24H | B_SET);
	ck_assert_uint_eq(cmos_rd(REG_B), B_24H | B_SET);
	cmos_wr(SEC, 0x59);
	cmos_wr(MIN, 0x59);
	cmos_wr(HOUR, 0x08);
	cmos_wr(WDAY, 0x05);		/* not the true weekday (3) */
	cmos_wr(MDAY, 0x31);
	cmos_wr(MON, 0x12);
	cmos_wr(YEAR, 0x30);
	cmos_wr(CENTURY, 0x20);
	/* Held: the written bytes read back and do not advance. */
	advance(5 * NS);
	check_time_bcd(2030, 12, 31, 8, 59, 59);
	ck_assert_uint_eq(cmos_rd(WDAY), 5);
	ck_assert_uint_eq(cmos_rd(REG_A) & A_UIP, 0);
	/* Running again at 5.3 s; the divider kept its phase. */
	cmos_wr(REG_B, B_24H);
	advance(700 * MS - 1);
	check_time_bcd(2030, 12, 31, 8, 59, 59);
	advance(1);
	check_time_bcd(2030, 12, 31, 9, 0, 0);
	ck_assert_uint_eq(cmos_rd(WDAY), 5);
	advance(15 * 3600 * NS);
	check_time_bcd(2031, 1, 1, 0, 0, 0);
	ck_assert_uint_eq(cmos_rd(WDAY), 6);		/* the guest's count */
}
END_TEST

START_TEST(test_rtc_set_time_binary)
{
	cmos_wr(REG_B, B_SET | B_DM | B_24H);
	cmos_wr(SEC, 7);
	cmos_wr(MIN, 8);
	cmos_wr(HOUR, 21);
	cmos_wr(MDAY, 29);
	cmos_wr(MON, 2);
	cmos_wr(YEAR, 28);
	cmos_wr(CENTURY, 20);
	cmos_wr(REG_B, B_DM | B_24H);
	cmos_wr(REG_B, B_24H);			/* read it in BCD */
	check_time_bcd(2028, 2, 29, 21, 8, 7);
}
END_TEST

START_TEST(test_rtc_linux_set_time)
{
	/* mc146818_set_time: SET, divider reset, write, restore B, then A. */
	uint8_t b = cmos_rd(REG_B), a = cmos_rd(REG_A);

	advance(200 * MS);
	cmos_wr(REG_B, b | B_SET);
	cmos_wr(REG_A, a | A_DV_RESET);
	cmos_wr(YEAR, 0x25);
	cmos_wr(MON, 0x07);
	cmos_wr(MDAY, 0x04);
	cmos_wr(HOUR, 0x12);
	cmos_wr(MIN, 0x00);
	cmos_wr(SEC, 0x00);
	cmos_wr(CENTURY, 0x20);
	advance(3 * NS);
	cmos_wr(REG_B, b);
	check_time_bcd(2025, 7, 4, 12, 0, 0);	/* divider still in reset */
	advance(2 * NS);
	check_time_bcd(2025, 7, 4, 12, 0, 0);
	cmos_wr(REG_A, a);
	/* The first update comes half a second after the divider starts. */
	advance(500 * MS - 1);
	ck_assert_uint_eq(cmos_rd(SEC), 0x00);
	advance(1);
	ck_assert_uint_eq(cmos_rd(SEC), 0x01);
	advance(NS);
	ck_assert_uint_eq(cmos_rd(SEC), 0x02);
}
END_TEST

START_TEST(test_rtc_set_clears_uie)
{
	cmos_wr(REG_B, B_24H | B_UIE);
	cmos_wr(REG_B, B_24H | B_UIE | B_SET);
	ck_assert_uint_eq(cmos_rd(REG_B), B_24H | B_SET);
	/* While SET stays set, UIE can be set again. */
	cmos_wr(REG_B, B_24H | B_UIE | B_SET);
	ck_assert_uint_eq(cmos_rd(REG_B), B_24H | B_UIE | B_SET);
	/* No update interrupt while SET holds the clock. */
	advance(3 * NS);
	ck_assert_uint_eq(host.edges[0], 0);
	cmos_wr(REG_B, B_24H | B_UIE);
	advance(NS);
	ck_assert_uint_eq(host.edges[0], 1);
}
END_TEST

START_TEST(test_rtc_write_while_running)
{
	advance(400 * MS);
	cmos_wr(MIN, 0x10);			/* no SET: takes effect at once */
	check_time_bcd(2024, 3, 15, 13, 10, 30);
	advance(600 * MS);
	ck_assert_uint_eq(cmos_rd(SEC), 0x31);	/* phase unchanged */
	cmos_wr(YEAR, 0x99);
	cmos_wr(MON, 0x12);
	cmos_wr(MDAY, 0x31);
	cmos_wr(HOUR, 0x23);
	cmos_wr(MIN, 0x59);
	cmos_wr(SEC, 0x59);
	check_time_bcd(2099, 12, 31, 23, 59, 59);
	advance(NS);
	check_time_bcd(2100, 1, 1, 0, 0, 0);
}
END_TEST

START_TEST(test_rtc_invalid_set_is_clamped)
{
	cmos_wr(REG_B, B_24H | B_SET);
	cmos_wr(SEC, 0x7a);		/* bad BCD */
	cmos_wr(MIN, 0x61);
	cmos_wr(HOUR, 0x25);
	cmos_wr(MDAY, 0x31);
	cmos_wr(MON, 0x02);
	cmos_wr(WDAY, 0x00);
	cmos_wr(YEAR, 0x23);
	cmos_wr(CENTURY, 0x20);
	ck_assert_uint_eq(cmos_rd(SEC), 0x7a);	/* held bytes as written */
	cmos_wr(REG_B, B_24H);
	check_time_bcd(2023, 2, 28, 23, 59, 59);
	ck_assert_uint_eq(cmos_rd(WDAY), 1);
}
END_TEST

START_TEST(test_rtc_divider_stop)
{
	cmos_wr(REG_A, 0x66);			/* divider reset */
	advance(10 * NS);
	ck_assert_uint_eq(cmos_rd(SEC), 0x30);
	ck_assert_uint_eq(cmos_rd(REG_A), 0x66);
	cmos_wr(REG_A, 0x06);			/* another time base: stopped */
	advance(10 * NS);
	ck_assert_uint_eq(cmos_rd(SEC), 0x30);
	cmos_wr(REG_A, 0x26);
	advance(500 * MS);
	ck_assert_uint_eq(cmos_rd(SEC), 0x31);
}
END_TEST

/* ---- UIP ---------------------------------------------------------------- */

START_TEST(test_rtc_uip_window)
{
	for (int i = 0; i < 3; i++) {
		advance_to(T0 + (uint64_t)i * NS + NS - 244 * US - 1);
		ck_assert_uint_eq(cmos_rd(REG_A), A_DV_32K | 0x06);
		advance(1);
		ck_assert_uint_eq(cmos_rd(REG_A), A_UIP | A_DV_32K | 0x06);
		/* the registers still show the old second */
		ck_assert_uint_eq(cmos_rd(SEC), bcd(30 + (unsigned)i));
		advance(244 * US - 1);
		ck_assert_uint_eq(cmos_rd(REG_A) & A_UIP, A_UIP);
		advance(1);
		ck_assert_uint_eq(cmos_rd(REG_A) & A_UIP, 0);
		ck_assert_uint_eq(cmos_rd(SEC), bcd(31 + (unsigned)i));
	}
	/* Not while SET holds the clock, nor with the divider stopped. */
	advance_to(T0 + 4 * NS - 100 * US);
	ck_assert_uint_eq(cmos_rd(REG_A) & A_UIP, A_UIP);
	cmos_wr(REG_B, B_24H | B_SET);
	ck_assert_uint_eq(cmos_rd(REG_A) & A_UIP, 0);
	cmos_wr(REG_B, B_24H);
	ck_assert_uint_eq(cmos_rd(REG_A) & A_UIP, A_UIP);
	cmos_wr(REG_A, A_DV_RESET);
	ck_assert_uint_eq(cmos_rd(REG_A), A_DV_RESET);
	/* UIP is read-only */
	cmos_wr(REG_A, A_UIP | A_DV_32K);
	ck_assert_uint_eq(cmos_rd(REG_A) & 0x7f, A_DV_32K);
}
END_TEST

/* ---- interrupts --------------------------------------------------------- */

/*
 * The divider runs at the firmware's 1024 Hz rate from the start, so PF is
 * set in register C whenever time has passed, with or without PIE.
 */

/* Periodic interrupts over one simulated second with a guest handler. */
static void check_periodic_rate(unsigned rate, unsigned hz)
{
	guest.fires = 0;
	host.edges[0] = 0;
	guest.acks = 0;
	guest.acked = 0;
	guest.auto_ack = true;
	/* PIE from a second boundary, so exactly hz edges fit in a second. */
	advance_to(((host.clock_ns - T0) / NS + 1) * NS + T0);
	cmos_wr(REG_A, (uint8_t)(A_DV_32K | rate));
	cmos_rd(REG_C);
	cmos_wr(REG_B, B_24H | B_PIE);
	advance(NS);
	ck_assert_uint_eq(guest.fires, hz);
	ck_assert_uint_eq(host.edges[0], hz);
	ck_assert_uint_eq(guest.acks, hz);
	ck_assert_uint_eq(guest.acked, C_IRQF | C_PF | C_UF);
	cmos_wr(REG_B, B_24H);
	guest.auto_ack = false;
}

START_TEST(test_rtc_periodic_rates)
{
	check_periodic_rate(15, 2);
	check_periodic_rate(6, 1024);
	check_periodic_rate(3, 8192);
	check_periodic_rate(1, 256);
	check_periodic_rate(2, 128);
	check_periodic_rate(12, 16);
	ck_assert_uint_eq(host.timer[0], 0);	/* PIE off: nothing armed */
}
END_TEST

START_TEST(test_rtc_periodic_exact_times)
{
	/* 8192 Hz: edges at ceil(k * 1e9 / 8192) ns after the boundary. */
	cmos_wr(REG_A, A_DV_32K | 3);
	cmos_wr(REG_B, B_24H | B_PIE);
	ck_assert_uint_eq(host.timer[0], T0 + 122071);	/* 122070.3125 */
	advance_to(T0 + 122070);
	ck_assert(!host.level[0]);
	advance(1);
	ck_assert(host.level[0]);
	ck_assert_uint_eq(host.timer[0], 0);	/* IRQF set: nothing to do */
	ck_assert_uint_eq(cmos_rd(REG_C), C_IRQF | C_PF);
	ck_assert(!host.level[0]);
	ck_assert_uint_eq(host.timer[0], T0 + 244141);	/* 244140.625 */
}
END_TEST

START_TEST(test_rtc_periodic_rate_zero_and_no_pie)
{
	cmos_wr(REG_A, A_DV_32K);		/* rate 0: none */
	cmos_wr(REG_B, B_24H | B_PIE);
	ck_assert_uint_eq(host.timer[0], 0);
	advance(2 * NS);
	ck_assert_uint_eq(cmos_rd(REG_C), C_UF);	/* no PF */

	/* Without PIE nothing is armed, yet PF is set when read. */
	cmos_wr(REG_B, B_24H);
	cmos_wr(REG_A, A_DV_32K | 15);
	ck_assert_uint_eq(host.timer[0], 0);
	advance(400 * MS);
	ck_assert_uint_eq(cmos_rd(REG_C), 0);
	advance(200 * MS);
	ck_assert_uint_eq(cmos_rd(REG_C), C_PF);
	ck_assert_uint_eq(cmos_rd(REG_C), 0);
	/* Enabling PIE with PF pending raises the line at once. */
	advance(NS);
	ck_assert(!host.level[0]);
	cmos_wr(REG_B, B_24H | B_PIE);
	ck_assert(host.level[0]);
	ck_assert_uint_eq(guest.fires, 0);
	ck_assert_uint_eq(cmos_rd(REG_C), C_IRQF | C_PF | C_UF);
	ck_assert(!host.level[0]);
	/* Clearing PIE with PF pending lowers it. */
	advance(NS);
	ck_assert(host.level[0]);
	cmos_wr(REG_B, B_24H);
	ck_assert(!host.level[0]);
	ck_assert_uint_eq(cmos_rd(REG_C), C_PF | C_UF);
}
END_TEST

START_TEST(test_rtc_update_interrupt)
{
	cmos_wr(REG_B, B_24H | B_UIE);
	ck_assert_uint_eq(host.timer[0], T0 + NS);
	guest.auto_ack = true;
	advance(3 * NS);
	ck_assert_uint_eq(guest.fires, 3);
	ck_assert_uint_eq(host.edges[0], 3);
	ck_assert_uint_eq(guest.acked, C_IRQF | C_PF | C_UF);

	/* Unacknowledged: one edge, and the timer is not re-armed. */
	guest.auto_ack = false;
	advance(NS);
	ck_assert_uint_eq(host.edges[0], 4);
	ck_assert(host.level[0]);
	ck_assert_uint_eq(host.timer[0], 0);
	advance(5 * NS);
	ck_assert_uint_eq(guest.fires, 4);
	ck_assert_uint_eq(host.edges[0], 4);
	ck_assert_uint_eq(cmos_rd(REG_C), C_IRQF | C_PF | C_UF);
	ck_assert(!host.level[0]);
	ck_assert_uint_eq(host.timer[0], T0 + 10 * NS);
}
END_TEST

START_TEST(test_rtc_reg_c_clears)
{
	cmos_wr(REG_B, B_24H | B_UIE);
	advance(NS);
	ck_assert(host.level[0]);
	ck_assert_uint_eq(host.edges[0], 1);
	ck_assert_uint_eq(cmos_rd(REG_C), C_IRQF | C_PF | C_UF);
	ck_assert(!host.level[0]);
	ck_assert_uint_eq(cmos_rd(REG_C), 0);
	/* C and D are read-only. */
	advance(NS);
	cmos_wr(REG_C, 0);
	ck_assert(host.level[0]);
	cmos_wr(REG_D, 0);
	ck_assert_uint_eq(cmos_rd(REG_D), D_VRT);
	ck_assert_uint_eq(cmos_rd(REG_C), C_IRQF | C_PF | C_UF);
	ck_assert_uint_eq(host.edges[0], 2);
}
END_TEST

/* Write the alarm's second, minute and hour registers, in that order. */
static void set_alarm(uint8_t sec, uint8_t min, uint8_t hour)
{
	cmos_wr(ALARM_SEC, sec);
	cmos_wr(ALARM_MIN, min);
	cmos_wr(ALARM_HOUR, hour);
}

START_TEST(test_rtc_alarm)
{
	set_alarm(0x35, 0x45, 0x13);
	cmos_wr(REG_B, B_24H | B_AIE);
	ck_assert_uint_eq(host.timer[0], T0 + 5 * NS);	/* 13:45:35 */
	advance(5 * NS - 1);
	ck_assert(!host.level[0]);
	ck_assert_uint_eq(guest.fires, 0);
	advance(1);
	ck_assert(host.level[0]);
	ck_assert_uint_eq(cmos_rd(SEC), 0x35);
	ck_assert_uint_eq(cmos_rd(REG_C), C_IRQF | C_AF | C_PF | C_UF);
	ck_assert(!host.level[0]);
	/* The next match is a day later. */
	ck_assert_uint_eq(host.timer[0], T0 + 5 * NS + 86400 * NS);
	guest.auto_ack = true;
	advance(86400 * NS);
	ck_assert_uint_eq(guest.fires, 2);
	ck_assert_uint_eq(host.edges[0], 2);

	/* Alarm registers read back. */
	ck_assert_uint_eq(cmos_rd(ALARM_SEC), 0x35);
	ck_assert_uint_eq(cmos_rd(ALARM_MIN), 0x45);
	ck_assert_uint_eq(cmos_rd(ALARM_HOUR), 0x13);
}
END_TEST

START_TEST(test_rtc_alarm_dont_care)
{
	/* Every minute at :00. */
	set_alarm(0x00, 0xc0, 0xff);
	cmos_wr(REG_B, B_24H | B_AIE);
	ck_assert_uint_eq(host.timer[0], T0 + 30 * NS);	/* 13:46:00 */
	guest.auto_ack = true;
	advance(30 * NS + 120 * NS);
	ck_assert_uint_eq(guest.fires, 3);
	ck_assert_uint_eq(host.edges[0], 3);
	ck_assert_uint_eq(guest.acked, C_IRQF | C_AF | C_PF | C_UF);

	/* All three don't care: every second. */
	cmos_wr(ALARM_SEC, 0xc0);
	guest.fires = host.edges[0] = 0;
	advance(10 * NS);
	ck_assert_uint_eq(guest.fires, 10);
	ck_assert_uint_eq(host.edges[0], 10);

	/* Every hour at 17 past: 14:17 is the next. */
	cmos_wr(ALARM_SEC, 0x00);
	cmos_wr(ALARM_MIN, 0x17);
	ck_assert_uint_eq(host.timer[0], T0 + (30 + 31 * 60) * NS);
}
END_TEST

START_TEST(test_rtc_alarm_never)
{
	/* A seconds byte no second has: never, and nothing is armed. */
	set_alarm(0x60, 0xc0, 0xc0);
	cmos_wr(REG_B, B_24H | B_AIE);
	ck_assert_uint_eq(host.timer[0], 0);
	advance(2 * 86400 * NS);
	ck_assert_uint_eq(cmos_rd(REG_C), C_PF | C_UF);
}
END_TEST

START_TEST(test_rtc_alarm_12_hour_and_flag_without_aie)
{
	/* 1:45:40 PM in 12-hour BCD. */
	cmos_wr(REG_B, 0);
	set_alarm(0x40, 0x45, PM | 0x01);
	/* AF is set without AIE, but raises nothing. */
	advance(10 * NS);
	ck_assert(!host.level[0]);
	ck_assert_uint_eq(cmos_rd(REG_C), C_AF | C_PF | C_UF);
	/* 1:45:41 AM does not match 1:45:41 PM. */
	cmos_wr(ALARM_HOUR, 0x01);
	cmos_wr(ALARM_SEC, 0x41);
	advance(NS);
	ck_assert_uint_eq(cmos_rd(SEC), 0x41);
	ck_assert_uint_eq(cmos_rd(REG_C), C_PF | C_UF);
}
END_TEST

START_TEST(test_rtc_all_sources)
{
	/* PIE at 2 Hz, UIE and an every-second alarm together. */
	set_alarm(0xc0, 0xc0, 0xc0);
	cmos_wr(REG_A, A_DV_32K | 15);
	cmos_wr(REG_B, B_24H | B_PIE | B_AIE | B_UIE);
	guest.auto_ack = true;
	advance(10 * NS);
	/* the half-second edges, and the whole seconds with all three */
	ck_assert_uint_eq(guest.fires, 20);
	ck_assert_uint_eq(host.edges[0], 20);
	ck_assert_uint_eq(guest.acked, C_IRQF | C_PF | C_AF | C_UF);
}
END_TEST

START_TEST(test_rtc_reset_pin)
{
	cmos_wr(0x20, 0x5a);
	cmos_wr(ALARM_SEC, 0x12);
	cmos_wr(REG_B, B_DM | B_24H | B_UIE | B_PIE | B_AIE | B_SQWE | B_DSE);
	advance(NS);
	ck_assert(host.level[0]);
	dev->desc->reset(dev);
	ck_assert(!host.level[0]);
	ck_assert_uint_eq(host.timer[0], 0);
	ck_assert_uint_eq(cmos_rd(REG_B), B_DM | B_24H | B_DSE);
	ck_assert_uint_eq(cmos_rd(REG_C), 0);
	ck_assert_uint_eq(cmos_rd(0x20), 0x5a);
	ck_assert_uint_eq(cmos_rd(ALARM_SEC), 0x12);
	ck_assert_uint_eq(cmos_rd(SEC), 31);	/* binary, kept time */
}
END_TEST

/* ---- CMOS RAM and ports ------------------------------------------------- */

START_TEST(test_rtc_nvram)
{
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != CENTURY)
			cmos_wr(i, (uint8_t)(i * 7 + 3));
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != CENTURY)
			ck_assert_uint_eq(cmos_rd(i), (uint8_t)(i * 7 + 3));
	ck_assert_uint_eq(cmos_rd(CENTURY), 0x20);
	/* The time is untouched by all that. */
	check_time_bcd(2024, 3, 15, 13, 45, 30);
	/* The same byte again after many other accesses. */
	cmos_wr(0x7f, 0xee);
	ck_assert_uint_eq(cmos_rd(0x7f), 0xee);
}
END_TEST

START_TEST(test_rtc_index_masking)
{
	cmos_wr(0x40, 0x11);
	/* NMI mask bit 7 does not change the register reached. */
	port_wr(0, 0x80 | 0x40);
	ck_assert_uint_eq(port_rd(1), 0x11);
	port_wr(1, 0x22);
	ck_assert_uint_eq(cmos_rd(0x40), 0x22);
	port_wr(0, 0x80 | SEC);
	ck_assert_uint_eq(port_rd(1), 0x30);
	port_wr(0, 0xff);
	port_wr(1, 0x33);
	ck_assert_uint_eq(cmos_rd(0x7f), 0x33);
	/* Port 0x70 reads back what was written, the data port keeps the
	 * index. */
	port_wr(0, 0x8d);
	ck_assert_uint_eq(port_rd(0), 0x8d);
	ck_assert_uint_eq(port_rd(1), D_VRT);
	ck_assert_uint_eq(port_rd(1), D_VRT);
}
END_TEST

START_TEST(test_rtc_wide_and_stray_access)
{
	uint8_t b[4] = {0x41, 0x99, 0, 0};
	uint8_t r[4];

	/* A 16-bit write to 0x70 writes the index, then the data. */
	dev->desc->io(dev, 0, 0, b, 2, true);
	ck_assert_uint_eq(cmos_rd(0x41), 0x99);
	memset(r, 0, sizeof(r));
	port_wr(0, 0x41);
	dev->desc->io(dev, 0, 0, r, 4, false);
	ck_assert_uint_eq(r[0], 0x41);
	ck_assert_uint_eq(r[1], 0x99);
	ck_assert_uint_eq(r[2], 0xff);
	ck_assert_uint_eq(r[3], 0xff);
	/* Outside the region: all ones, writes ignored. */
	memset(r, 0, sizeof(r));
	dev->desc->io(dev, 0, 2, r, 1, false);
	ck_assert_uint_eq(r[0], 0xff);
	dev->desc->io(dev, 0, UINT64_MAX, r, 4, false);
	ck_assert_uint_eq(r[3], 0xff);
	dev->desc->io(dev, 1, 0, r, 1, false);
	ck_assert_uint_eq(r[0], 0xff);
	b[0] = 0x41;
	b[1] = 0x55;
	dev->desc->io(dev, 0, UINT64_MAX, b, 2, true);
	dev->desc->io(dev, 3, 0, b, 2, true);
	ck_assert_uint_eq(cmos_rd(0x41), 0x99);
	dev->desc->io(dev, 0, 0, b, 0, false);
}
END_TEST

/* ---- the calendar ------------------------------------------------------- */

START_TEST(test_rtc_calendar_rollovers)
{
	static const struct {
		int64_t from;		/* one second before */
		unsigned y, m, d, wday;
	} cases[] = {
		{0, 2024, 2, 29, 5},	/* 2024 is a leap year */
		{0, 2023, 3, 1, 4},	/* 2023 is not */
		{0, 2000, 2, 29, 3},	/* divisible by 400 */
		{0, 2100, 3, 1, 2},	/* divisible by 100 only */
		{0, 2024, 5, 1, 4},
		{0, 2024, 7, 1, 2},
		{0, 2100, 1, 1, 6},	/* century rollover */
		{0, 2025, 1, 1, 4},
		{0, 2024, 12, 1, 1},
	};
	const int64_t from[] = {
		utc(2024, 2, 28, 23, 59, 59), utc(2023, 2, 28, 23, 59, 59),
		utc(2000, 2, 28, 23, 59, 59), utc(2100, 2, 28, 23, 59, 59),
		utc(2024, 4, 30, 23, 59, 59), utc(2024, 6, 30, 23, 59, 59),
		utc(2099, 12, 31, 23, 59, 59), utc(2024, 12, 31, 23, 59, 59),
		utc(2024, 11, 30, 23, 59, 59),
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		renew_rtc(from[i]);
		advance(NS);
		check_time_bcd(cases[i].y, cases[i].m, cases[i].d, 0, 0, 0);
		ck_assert_uint_eq(cmos_rd(WDAY), cases[i].wday);
	}
	/* 2099 -> 2100 set by the guest, seen in binary. */
	cmos_wr(REG_B, B_SET | B_DM | B_24H);
	cmos_wr(CENTURY, 20);
	cmos_wr(YEAR, 99);
	cmos_wr(MON, 12);
	cmos_wr(MDAY, 31);
	cmos_wr(HOUR, 23);
	cmos_wr(MIN, 59);
	cmos_wr(SEC, 59);
	cmos_wr(REG_B, B_DM | B_24H);
	advance(NS);
	ck_assert_uint_eq(cmos_rd(CENTURY), 21);
	ck_assert_uint_eq(cmos_rd(YEAR), 0);
	ck_assert_uint_eq(cmos_rd(MON), 1);
	ck_assert_uint_eq(cmos_rd(MDAY), 1);
	ck_assert_uint_eq(cmos_rd(HOUR), 0);
	/* A 31-day month does not roll at 30, a 30-day one does. */
	cmos_wr(REG_B, B_SET | B_24H);
	cmos_wr(CENTURY, 0x21);
	cmos_wr(YEAR, 0x00);
	cmos_wr(MON, 0x01);
	cmos_wr(MDAY, 0x30);
	cmos_wr(HOUR, 0x23);
	cmos_wr(MIN, 0x59);
	cmos_wr(SEC, 0x59);
	cmos_wr(REG_B, B_24H);
	advance(NS);
	ck_assert_uint_eq(cmos_rd(MDAY), 0x31);
	ck_assert_uint_eq(cmos_rd(MON), 0x01);
}
END_TEST

START_TEST(test_rtc_wall_clock_extremes)
{
	renew_rtc(INT64_MIN);
	check_time_bcd(0, 1, 1, 0, 0, 0);
	renew_rtc(INT64_MAX);
	check_time_bcd(9999, 12, 31, 23, 59, 59);
	advance(NS);
	check_time_bcd(0, 1, 1, 0, 0, 0);	/* the registers wrap */
	renew_rtc(0);
	check_time_bcd(1970, 1, 1, 0, 0, 0);
	ck_assert_uint_eq(cmos_rd(WDAY), 5);
}
END_TEST

/* ---- saved state -------------------------------------------------------- */

static void save(uint8_t **buf, size_t *len)
{
	fakehost_save(dev, buf, len);
}

/* Every register except C (which reading clears) and A's UIP. */
static void snapshot_regs(uint8_t regs[128])
{
	uint8_t index = port_rd(0);

	for (unsigned i = 0; i < 128; i++)
		if (i != REG_C)
			regs[i] = cmos_rd(i);
	regs[REG_A] &= 0x7f;
	regs[REG_C] = 0;
	port_wr(0, index);
}

START_TEST(test_rtc_save_load_round_trip)
{
	uint8_t regs[128], again[128];
	uint8_t *buf;
	size_t len;

	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != CENTURY)
			cmos_wr(i, (uint8_t)(i ^ 0xa5));
	set_alarm(0x40, 0xc5, 0x13);
	cmos_wr(REG_A, A_DV_32K | 14);
	cmos_wr(REG_B, B_24H | B_DSE | B_SQWE | B_UIE);
	cmos_wr(WDAY, 0x02);		/* the guest's own weekday */
	advance(2 * NS + 300 * MS);	/* 13:45:32.3, an update pending */
	host.wall = WALL_2024 + 2;	/* the host's clock went along */
	ck_assert(host.level[0]);
	port_wr(0, 0x80 | 0x21);
	snapshot_regs(regs);
	port_wr(0, 0x80 | 0x21);
	save(&buf, &len);

	/* A new process, 100 s of wall time later, its clock elsewhere. */
	renew_rtc(WALL_2024 + 2 + 100);
	host.clock_ns = 77 * NS + 123;
	ck_assert(!host.level[0]);
	ck_assert_int_eq(dev->desc->load(dev, buf, len, 1), 0);
	free(buf);
	/* The pending update interrupt is still due. */
	ck_assert(host.level[0]);
	ck_assert_uint_eq(port_rd(0), 0x80 | 0x21);
	snapshot_regs(again);
	/* Continuous with the wall clock: 100 s on. */
	check_time_bcd(2024, 3, 15, 13, 47, 12);
	regs[SEC] = again[SEC];
	regs[MIN] = again[MIN];
	ck_assert_mem_eq(regs, again, sizeof(regs));
	ck_assert_uint_eq(cmos_rd(REG_C), C_IRQF | C_PF | C_UF);
	/* The divider phase came along: the next second in 0.7 s. */
	ck_assert_uint_eq(host.timer[0], 77 * NS + 123 + 700 * MS);
	advance(700 * MS - 1);
	ck_assert_uint_eq(cmos_rd(SEC), 0x12);
	advance(1);
	ck_assert_uint_eq(cmos_rd(SEC), 0x13);
	ck_assert(host.level[0]);
}
END_TEST

START_TEST(test_rtc_save_load_held)
{
	uint8_t *buf;
	size_t len;

	cmos_wr(REG_B, B_SET | B_24H);
	cmos_wr(YEAR, 0x77);
	cmos_wr(SEC, 0x7a);		/* bad BCD, kept as written */
	cmos_wr(REG_A, A_DV_32K | 15);
	advance(300 * MS);
	save(&buf, &len);

	renew_rtc(WALL_2024 + 5000);
	ck_assert_int_eq(dev->desc->load(dev, buf, len, 1), 0);
	free(buf);
	ck_assert_uint_eq(cmos_rd(YEAR), 0x77);
	ck_assert_uint_eq(cmos_rd(SEC), 0x7a);
	ck_assert_uint_eq(cmos_rd(MIN), 0x45);
	ck_assert_uint_eq(cmos_rd(REG_B), B_SET | B_24H);
	/* The divider runs under SET: PF comes at the restored phase. */
	advance(200 * MS - 1);
	ck_assert_uint_eq(cmos_rd(REG_C), 0);
	advance(1);
	ck_assert_uint_eq(cmos_rd(REG_C), C_PF);
	cmos_wr(REG_B, B_24H);
	check_time_bcd(2077, 3, 15, 13, 45, 59);
}
END_TEST

START_TEST(test_rtc_save_is_pure)
{
	uint8_t *a, *b;
	size_t alen, blen;

	cmos_wr(REG_B, B_24H | B_UIE);
	advance(3 * NS + 5);
	save(&a, &alen);
	save(&b, &blen);
	ck_assert_uint_eq(alen, blen);
	ck_assert_mem_eq(a, b, alen);
	/* Saving read nothing: register C still has its flags. */
	ck_assert_uint_eq(cmos_rd(REG_C), C_IRQF | C_PF | C_UF);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_rtc_load_hostile)
{
	struct fakehost_saved sv;
	uint8_t *orig, short_bytes[3] = {1, 2, 3};
	uint8_t nvram[114], bad_nvram[114];
	size_t orig_len;
	RtcState *good;
	RtcState m;

	cmos_wr(0x30, 0x42);
	cmos_wr(REG_B, B_24H | B_UIE);
	advance(1500 * MS);
	save(&orig, &orig_len);
	sv = (struct fakehost_saved){ dev, orig, orig_len };
	good = rtc_state__unpack(NULL, orig_len, orig);
	ck_assert_ptr_nonnull(good);
	ck_assert_uint_eq(good->nvram.len, sizeof(nvram));
	memcpy(nvram, good->nvram.data, sizeof(nvram));

	/* Wrong version, garbage, NULL. */
	fakehost_refuse(&sv, orig, orig_len, 0);
	fakehost_refuse(&sv, orig, orig_len, 2);
	fakehost_refuse(&sv, (const uint8_t *)"\xff\xff\xff\xff", 4, 1);
	fakehost_refuse(&sv, NULL, 10, 1);
	fakehost_refuse(&sv, NULL, 0, 1);	/* all fields missing */

#define REFUSE(field, value) do {				\
		m = *good;					\
		m.field = value;				\
		fakehost_refuse_msg(&sv, &m.base);		\
	} while (0)
	REFUSE(index, 128);
	REFUSE(index, UINT32_MAX);
	REFUSE(alarm_seconds, 256);
	REFUSE(alarm_minutes, 0x100);
	REFUSE(alarm_hours, 1000);
	REFUSE(reg_a, 0x80);
	REFUSE(reg_b, 0x100);
	REFUSE(flags, 0x80);
	REFUSE(flags, 0x01);
	REFUSE(phase_ns, NS);
	REFUSE(phase_ns, UINT64_MAX);
	REFUSE(wday_offset, 7);
	REFUSE(wall_offset, INT64_MAX);
	REFUSE(wall_offset, INT64_MIN);
	REFUSE(wall_offset, 400000000000LL);
	REFUSE(nvram.len, 113);
	REFUSE(nvram.len, 0);
	REFUSE(time.len, 7);
	REFUSE(time.len, 0);
	m = *good;
	m.time.data = short_bytes;
	m.time.len = sizeof(short_bytes);
	fakehost_refuse_msg(&sv, &m.base);
	memcpy(bad_nvram, nvram, sizeof(bad_nvram));
	bad_nvram[CENTURY - 0x0e] = 0x20;
	m = *good;
	m.nvram.data = bad_nvram;
	fakehost_refuse_msg(&sv, &m.base);
#undef REFUSE

	/* The good one still loads. */
	ck_assert_int_eq(dev->desc->load(dev, orig, orig_len, 1), 0);
	ck_assert_uint_eq(cmos_rd(0x30), 0x42);
	rtc_state__free_unpacked(good, NULL);
	free(orig);
}
END_TEST

START_TEST(test_rtc_load_mutations)
{
	uint8_t *orig, *buf;
	size_t orig_len;
	uint64_t x = 0x9e3779b97f4a7c15ull;
	unsigned accepted = 0, refused = 0;

	cmos_wr(REG_B, B_24H | B_AIE | B_PIE);
	cmos_wr(ALARM_SEC, 0xc0);
	advance(1700 * MS);
	save(&orig, &orig_len);
	buf = malloc(orig_len + 16);
	ck_assert_ptr_nonnull(buf);

	for (unsigned round = 0; round < 5000; round++) {
		size_t len = orig_len;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(buf, orig, orig_len);
		if (x % 4 == 0)
			len = (size_t)(x >> 8) % orig_len;	/* truncated */
		for (unsigned k = 0; k < 1 + (x >> 16) % 4; k++)
			buf[(x >> (20 + 8 * k)) % orig_len] ^=
				(uint8_t)(1u << ((x >> (28 + k)) % 8));
		if (dev->desc->load(dev, buf, len, 1) == 0) {
			/* Whatever it accepted is usable ... */
			accepted++;
			for (unsigned i = 0; i < 16; i++)
				cmos_rd(i);
			advance(NS / 3);
			/* ... then go back to the reference. */
			ck_assert_int_eq(dev->desc->load(dev, orig, orig_len,
							 1), 0);
		} else {
			uint8_t *now;
			size_t now_len;

			refused++;
			save(&now, &now_len);
			ck_assert_uint_eq(now_len, orig_len);
			ck_assert_mem_eq(now, orig, orig_len);
			free(now);
		}
		/* keep the clock where orig was taken, for the compare */
		ck_assert_int_eq(dev->desc->load(dev, orig, orig_len, 1), 0);
	}
	ck_assert_uint_gt(accepted, 0);
	ck_assert_uint_gt(refused, 0);
	free(buf);
	free(orig);
}
END_TEST

Suite *rtc_suite(void)
{
	Suite *s = suite_create("rtc");
	TCase *clock = tcase_create("clock");
	TCase *set = tcase_create("set");
	TCase *irq = tcase_create("interrupts");
	TCase *ram = tcase_create("cmos-ports");
	TCase *cal = tcase_create("calendar");
	TCase *state = tcase_create("saved-state");

	tcase_add_checked_fixture(clock, rtc_setup, rtc_teardown);
	tcase_add_test(clock, test_rtc_descriptor);
	tcase_add_test(clock, test_rtc_read_bcd);
	tcase_add_test(clock, test_rtc_read_binary);
	tcase_add_test(clock, test_rtc_12_hour);
	tcase_add_test(clock, test_rtc_advances_with_virtual_clock);
	tcase_add_test(clock, test_rtc_stops_with_virtual_clock);
	tcase_add_test(clock, test_rtc_no_host_clocks);
	tcase_add_test(clock, test_rtc_uip_window);
	tcase_add_test(clock, test_rtc_divider_stop);
	suite_add_tcase(s, clock);

	tcase_add_checked_fixture(set, rtc_setup, rtc_teardown);
	tcase_add_test(set, test_rtc_set_time);
	tcase_add_test(set, test_rtc_set_time_binary);
	tcase_add_test(set, test_rtc_set_12_hour);
	tcase_add_test(set, test_rtc_linux_set_time);
	tcase_add_test(set, test_rtc_set_clears_uie);
	tcase_add_test(set, test_rtc_write_while_running);
	tcase_add_test(set, test_rtc_invalid_set_is_clamped);
	suite_add_tcase(s, set);

	tcase_add_checked_fixture(irq, rtc_setup, rtc_teardown);
	tcase_add_test(irq, test_rtc_periodic_rates);
	tcase_add_test(irq, test_rtc_periodic_exact_times);
	tcase_add_test(irq, test_rtc_periodic_rate_zero_and_no_pie);
	tcase_add_test(irq, test_rtc_update_interrupt);
	tcase_add_test(irq, test_rtc_reg_c_clears);
	tcase_add_test(irq, test_rtc_alarm);
	tcase_add_test(irq, test_rtc_alarm_dont_care);
	tcase_add_test(irq, test_rtc_alarm_never);
	tcase_add_test(irq, test_rtc_alarm_12_hour_and_flag_without_aie);
	tcase_add_test(irq, test_rtc_all_sources);
	tcase_add_test(irq, test_rtc_reset_pin);
	tcase_set_timeout(irq, 60);
	suite_add_tcase(s, irq);

	tcase_add_checked_fixture(ram, rtc_setup, rtc_teardown);
	tcase_add_test(ram, test_rtc_nvram);
	tcase_add_test(ram, test_rtc_index_masking);
	tcase_add_test(ram, test_rtc_wide_and_stray_access);
	suite_add_tcase(s, ram);

	tcase_add_checked_fixture(cal, rtc_setup, rtc_teardown);
	tcase_add_test(cal, test_rtc_calendar_rollovers);
	tcase_add_test(cal, test_rtc_wall_clock_extremes);
	suite_add_tcase(s, cal);

	tcase_add_checked_fixture(state, rtc_setup, rtc_teardown);
	tcase_add_test(state, test_rtc_save_load_round_trip);
	tcase_add_test(state, test_rtc_save_load_held);
	tcase_add_test(state, test_rtc_save_is_pure);
	tcase_add_test(state, test_rtc_load_hostile);
	tcase_add_test(state, test_rtc_load_mutations);
	tcase_set_timeout(state, 60);
	suite_add_tcase(s, state);

	return s;
}
