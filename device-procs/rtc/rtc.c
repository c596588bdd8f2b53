/* SPDX-License-Identifier: MIT */
/*
 * rtc: the MC146818 real-time clock and its CMOS RAM at ports 0x70 (index,
 * bit 7 masks NMI) and 0x71 (data), IRQ 8, written from the MC146818A
 * datasheet and what Linux's rtc-cmos / mc146818-lib expect.
 *
 * The clock. It starts at the host's wall clock (UTC) and advances with the
 * VM's virtual clock, so it stands still while the VM is suspended. While it
 * runs nothing ticks: the time is origin_sec plus the whole seconds of
 * virtual time since origin_ns, a second boundary of the divider chain, and
 * the time registers are encoded from that on each read. While it is held
 * (register B's SET, or the divider in register A not running), the time
 * registers are plain bytes in held[] that the guest may overwrite; when the
 * hold ends they are decoded back into origin_sec, keeping the divider's
 * phase (SET does not touch the divider; a divider leaving reset makes its
 * first update half a second later, as the datasheet says). A write to a
 * time register while the clock runs sets that field at once.
 *
 * The flags. Register C's PF, AF and UF are set by events of the divider
 * chain: periodic edges at the rate of register A, and update cycles each
 * second (UF; AF when the new time matches the alarm, where an alarm byte
 * 0xc0-0xff matches anything). They are accounted lazily: before anything
 * looks at or changes the state, the events in (flags_ns, now] are folded
 * into the flags, by arithmetic rather than by walking them. The only timer
 * (RTC_TIMER) is armed for the next event that would set IRQF =
 * (PF & PIE) | (AF & AIE) | (UF & UIE), and only while IRQF is clear: once it
 * is set nothing can change until the guest reads register C. The IRQ line
 * follows IRQF, driven only when it changes (an edge per interrupt).
 *
 * Simplifications:
 * - The divider runs only with DV = 010 (a 32.768 kHz time base, what every
 *   PC uses); any other DV value stops it (110 and 111 are its reset).
 * - UIP reads 1 during the 244 us before each second boundary; the time
 *   registers change, and UF and AF are set, at the boundary itself (the
 *   real update cycle takes a further ~2 ms).
 * - The calendar is the Gregorian one (2100 is no leap year; the chip
 *   itself would make it one), over years 0000-9999 with the century
 *   register 0x32 as part of the clock. Like the other time registers it
 *   is in the data mode of register B (BCD unless DM is set), which is how
 *   Linux reads and writes it.
 * - Changing DM or 24/12 while the clock runs re-encodes the time in the
 *   new mode (on the chip the old bytes would be misread until rewritten);
 *   held bytes are decoded in the mode at the end of the hold.
 * - Invalid held bytes (bad BCD, out-of-range fields) are clamped into
 *   range when the hold ends.
 * - DSE (daylight saving) and SQWE (square-wave pin) are kept but have no
 *   effect; there is no SQW pin.
 * - Battery-backed: a VM reset does not change the time, the alarm or
 *   NVRAM; it clears PIE, AIE, UIE, SQWE and the flags, as the RESET pin
 *   does. The wall clock is read once, when the device is built.
 * - Port 0x70 reads back the last value written to it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "device-procs/devhost/dev.h"
#include "rtc_state.pb-c.h"


/* Ports, and the CMOS address map (MC146818A datasheet, address map). */
#define RTC_PORT_INDEX 0	/* 0x70 */
#define RTC_PORT_DATA 1		/* 0x71 */
#define RTC_NPORTS 2
#define RTC_INDEX_MASK 0x7f
#define RTC_NMI_MASK 0x80

/* CMOS indexes. */
#define RTC_SECONDS 0x00
#define RTC_ALARM_SECONDS 0x01
#define RTC_MINUTES 0x02
#define RTC_ALARM_MINUTES 0x03
#define RTC_HOURS 0x04
#define RTC_ALARM_HOURS 0x05
#define RTC_DAY_OF_WEEK 0x06
#define RTC_DAY_OF_MONTH 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define RTC_REG_C 0x0c
#define RTC_REG_D 0x0d
#define RTC_NVRAM_FIRST 0x0e
#define RTC_CENTURY 0x32
#define RTC_CMOS_SIZE 128
#define RTC_NVRAM_SIZE (RTC_CMOS_SIZE - RTC_NVRAM_FIRST)	/* 114 */

/* Register A (datasheet, "Register A"): UIP, DV2-DV0, RS3-RS0. */
#define RTC_A_UIP 0x80
#define RTC_A_DV_MASK 0x70
#define RTC_A_DV_32K 0x20	/* 010: 32.768 kHz time base */
#define RTC_A_RS_MASK 0x0f
#define RTC_A_WRITABLE 0x7f
#define RTC_A_DEFAULT (RTC_A_DV_32K | 0x06)	/* 1024 Hz, as firmware sets */

/* Register B (datasheet, "Register B"). */
#define RTC_B_SET 0x80
#define RTC_B_PIE 0x40
#define RTC_B_AIE 0x20
#define RTC_B_UIE 0x10
#define RTC_B_SQWE 0x08
#define RTC_B_DM_BINARY 0x04
#define RTC_B_24H 0x02
#define RTC_B_DSE 0x01
#define RTC_B_DEFAULT RTC_B_24H		/* BCD, 24-hour */

/* Register C (datasheet, "Register C"): the flags, cleared by a read. */
#define RTC_C_IRQF 0x80
#define RTC_C_PF 0x40		/* same bit as PIE */
#define RTC_C_AF 0x20		/* same bit as AIE */
#define RTC_C_UF 0x10		/* same bit as UIE */
#define RTC_C_FLAGS (RTC_C_PF | RTC_C_AF | RTC_C_UF)

/* Register D (datasheet, "Register D"): valid RAM and time. */
#define RTC_D_VRT 0x80

#define RTC_HOUR_PM 0x80
#define RTC_ALARM_DONT_CARE 0xc0

#define RTC_NS_PER_SEC 1000000000LL
#define RTC_UIP_NS 244000LL
#define RTC_DIVIDER_START_NS 500000000LL
#define RTC_TIMEBASE_HZ 32768LL
#define RTC_SECS_PER_DAY 86400LL
#define RTC_SECS_PER_HOUR 3600
#define RTC_SECS_PER_MIN 60
/* The year and century registers split the year into two digits each. */
#define RTC_YEARS_PER_CENTURY 100
/* Years 0000-9999: what the year and century registers can hold. */
#define RTC_YEAR_SPAN 10000
#define RTC_TIMER 0u

/* 0000-01-01T00:00:00 and 9999-12-31T23:59:59, seconds since the epoch. */
#define RTC_MIN_SEC (-62167219200LL)
#define RTC_MAX_SEC 253402300799LL
/* Used when the host gives no wall clock: 2000-01-01T00:00:00. */
#define RTC_DEFAULT_WALL 946684800LL
/* 1970-01-01 was a Thursday, day 5 with Sunday as 1. */
#define RTC_EPOCH_WDAY_OFFSET 4u

/* The time registers, in held[] and in the saved state. */
enum rtc_field {
	RTC_F_SEC, RTC_F_MIN, RTC_F_HOUR, RTC_F_WDAY, RTC_F_MDAY, RTC_F_MON,
	RTC_F_YEAR, RTC_F_CENTURY, RTC_NFIELDS
};

struct rtc_state {
	uint8_t cmos[RTC_CMOS_SIZE];	/* alarm bytes and NVRAM; the rest 0 */
	uint8_t held[RTC_NFIELDS];	/* time registers while held */
	uint8_t reg_a;			/* RTC_A_WRITABLE bits */
	uint8_t reg_b;
	uint8_t flags;			/* RTC_C_FLAGS bits */
	uint8_t index;
	uint8_t nmi_masked;
	uint8_t wday_offset;		/* 0-6, see RTC_EPOCH_WDAY_OFFSET */
	uint8_t irq_level;		/* last level driven on line 0 */
	int64_t origin_ns;	/* virtual time of a divider second boundary */
	int64_t origin_sec;	/* the clock at origin_ns, while running */
	int64_t flags_ns;	/* flags hold every event up to this time */
	uint64_t timer_ns;	/* deadline armed on RTC_TIMER, 0 none */
};

/* ---- arithmetic --------------------------------------------------------- */

static int64_t rtc_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	if ((a % b) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static int64_t rtc_floor_mod(int64_t a, int64_t b)
{
	return a - rtc_floor_div(a, b) * b;
}

static int64_t rtc_clamp(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/*
 * Days since 1970-01-01 of a proleptic Gregorian date (m 1-12, d 1-31).
 * This and rtc_civil_from_days are Howard Hinnant's days_from_civil and
 * civil_from_days; their numbers are the algorithm's (400-year eras of
 * 146097 days, March-based years, 719468 days from 0000-03-01 to 1970).
 */
static int64_t rtc_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	if (m <= 2)
		y--;
	era = rtc_floor_div(y, 400);
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void rtc_civil_from_days(int64_t days, int64_t *y, unsigned *m,
				unsigned *d)
{
	int64_t z = days + 719468;
	int64_t era = rtc_floor_div(z, 146097);
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool rtc_leap_year(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned rtc_days_in_month(int64_t y, unsigned m)
{
	static const uint8_t days[12] = {
		31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31,
	};

	if (m == 2 && rtc_leap_year(y))
		return 29;
	return days[m - 1];
}

/* ---- register encoding -------------------------------------------------- */

static bool rtc_binary(const struct rtc_state *s)
{
	return s->reg_b & RTC_B_DM_BINARY;
}

/* v < 100 in the data mode. */
static uint8_t rtc_to_reg(const struct rtc_state *s, unsigned v)
{
	if (rtc_binary(s))
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

/* Any byte; bad BCD digits give values that are clamped later. */
static unsigned rtc_from_reg(const struct rtc_state *s, uint8_t b)
{
	if (rtc_binary(s))
		return b;
	return (b >> 4) * 10u + (b & 0x0fu);
}

/* Hour 0-23 as the hours register holds it: 24-hour, or 1-12 with PM. */
static uint8_t rtc_encode_hour(const struct rtc_state *s, unsigned hour)
{
	unsigned h12 = hour % 12 ? hour % 12 : 12;

	if (s->reg_b & RTC_B_24H)
		return rtc_to_reg(s, hour);
	return rtc_to_reg(s, h12) | (hour >= 12 ? RTC_HOUR_PM : 0);
}

static unsigned rtc_decode_hour(const struct rtc_state *s, uint8_t b)
{
	int64_t h12;

	if (s->reg_b & RTC_B_24H)
		return (unsigned)rtc_clamp(rtc_from_reg(s, b), 0, 23);
	h12 = rtc_clamp(rtc_from_reg(s, b & ~RTC_HOUR_PM), 1, 12);
	return (unsigned)(h12 % 12) + (b & RTC_HOUR_PM ? 12 : 0);
}

/* The time registers for clock value t (seconds since the epoch). */
static void rtc_encode(const struct rtc_state *s, int64_t t,
		       uint8_t regs[RTC_NFIELDS])
{
	int64_t days = rtc_floor_div(t, RTC_SECS_PER_DAY);
	unsigned tod = (unsigned)rtc_floor_mod(t, RTC_SECS_PER_DAY);
	int64_t y;
	unsigned m, d;

	rtc_civil_from_days(days, &y, &m, &d);
	y = rtc_floor_mod(y, RTC_YEAR_SPAN);
	regs[RTC_F_SEC] = rtc_to_reg(s, tod % RTC_SECS_PER_MIN);
	regs[RTC_F_MIN] = rtc_to_reg(s, tod / RTC_SECS_PER_MIN % 60);
	regs[RTC_F_HOUR] = rtc_encode_hour(s, tod / RTC_SECS_PER_HOUR);
	regs[RTC_F_WDAY] = rtc_to_reg(s, (unsigned)rtc_floor_mod(
		days + s->wday_offset, 7) + 1);
	regs[RTC_F_MDAY] = rtc_to_reg(s, d);
	regs[RTC_F_MON] = rtc_to_reg(s, m);
	regs[RTC_F_YEAR] = rtc_to_reg(s, (unsigned)(y % RTC_YEARS_PER_CENTURY));
	regs[RTC_F_CENTURY] = rtc_to_reg(s,
					 (unsigned)(y / RTC_YEARS_PER_CENTURY));
}

/* The clock value of time registers (clamped into range), and the day of
 * week offset that makes them read back the written day of week. */
static int64_t rtc_decode(const struct rtc_state *s,
			  const uint8_t regs[RTC_NFIELDS], uint8_t *wday_offset)
{
	int64_t sec = rtc_clamp(rtc_from_reg(s, regs[RTC_F_SEC]), 0, 59);
	int64_t min = rtc_clamp(rtc_from_reg(s, regs[RTC_F_MIN]), 0, 59);
	int64_t hour = rtc_decode_hour(s, regs[RTC_F_HOUR]);
	int64_t wday = rtc_clamp(rtc_from_reg(s, regs[RTC_F_WDAY]), 1, 7);
	unsigned mon = (unsigned)rtc_clamp(rtc_from_reg(s, regs[RTC_F_MON]),
					   1, 12);
	int64_t year = rtc_clamp(rtc_from_reg(s, regs[RTC_F_YEAR]), 0, 99) +
		       RTC_YEARS_PER_CENTURY *
		       rtc_clamp(rtc_from_reg(s, regs[RTC_F_CENTURY]), 0, 99);
	unsigned mday = (unsigned)rtc_clamp(rtc_from_reg(s, regs[RTC_F_MDAY]),
					    1, rtc_days_in_month(year, mon));
	int64_t days = rtc_days_from_civil(year, mon, mday);

	*wday_offset = (uint8_t)rtc_floor_mod(wday - 1 - days, 7);
	return days * RTC_SECS_PER_DAY + hour * RTC_SECS_PER_HOUR +
	       min * RTC_SECS_PER_MIN + sec;
}

/* The time field a CMOS index holds, or -1. */
static int rtc_time_field(unsigned index)
{
	switch (index) {
	case RTC_SECONDS:
		return RTC_F_SEC;
	case RTC_MINUTES:
		return RTC_F_MIN;
	case RTC_HOURS:
		return RTC_F_HOUR;
	case RTC_DAY_OF_WEEK:
		return RTC_F_WDAY;
	case RTC_DAY_OF_MONTH:
		return RTC_F_MDAY;
	case RTC_MONTH:
		return RTC_F_MON;
	case RTC_YEAR:
		return RTC_F_YEAR;
	case RTC_CENTURY:
		return RTC_F_CENTURY;
	}
	return -1;
}

/* ---- the divider chain and the clock ------------------------------------ */

static bool rtc_running(const struct rtc_state *s)
{
	return (s->reg_a & RTC_A_DV_MASK) == RTC_A_DV_32K;
}

/* The time registers are held bytes, not the running clock. */
static bool rtc_held(const struct rtc_state *s)
{
	return (s->reg_b & RTC_B_SET) || !rtc_running(s);
}

/* Whole seconds of the divider since origin_ns. */
static int64_t rtc_secs_since_origin(const struct rtc_state *s, int64_t now)
{
	return rtc_floor_div(now - s->origin_ns, RTC_NS_PER_SEC);
}

/* The running clock at virtual time now. */
static int64_t rtc_clock_sec(const struct rtc_state *s, int64_t now)
{
	return s->origin_sec + rtc_secs_since_origin(s, now);
}

/* 32.768 kHz ticks of the divider from origin_ns to now. */
static int64_t rtc_ticks_at(const struct rtc_state *s, int64_t now)
{
	int64_t d = now - s->origin_ns;
	int64_t q = rtc_floor_div(d, RTC_NS_PER_SEC);
	int64_t r = d - q * RTC_NS_PER_SEC;

	return q * RTC_TIMEBASE_HZ + r * RTC_TIMEBASE_HZ / RTC_NS_PER_SEC;
}

/* The first virtual time at which rtc_ticks_at reaches n. */
static int64_t rtc_tick_time(const struct rtc_state *s, int64_t n)
{
	int64_t q = rtc_floor_div(n, RTC_TIMEBASE_HZ);
	int64_t r = n - q * RTC_TIMEBASE_HZ;

	return s->origin_ns + q * RTC_NS_PER_SEC +
	       (r * RTC_NS_PER_SEC + RTC_TIMEBASE_HZ - 1) / RTC_TIMEBASE_HZ;
}

/*
 * log2 of the periodic interrupt's period in time-base ticks, 0 for none:
 * rates 3-15 are 32768 >> (rate - 1) Hz, and with a 32.768 kHz time base
 * rates 1 and 2 are 256 and 128 Hz (the datasheet's table).
 */
static unsigned rtc_periodic_shift(const struct rtc_state *s)
{
	unsigned rate = s->reg_a & RTC_A_RS_MASK;

	if (!rtc_running(s) || rate == 0)
		return 0;
	if (rate <= 2)
		return rate + 6;
	return rate - 1;
}

static bool rtc_uip(const struct rtc_state *s, int64_t now)
{
	if (rtc_held(s))
		return false;
	return rtc_floor_mod(now - s->origin_ns, RTC_NS_PER_SEC) >=
	       RTC_NS_PER_SEC - RTC_UIP_NS;
}

static bool rtc_alarm_byte_matches(uint8_t alarm, uint8_t val)
{
	return (alarm & RTC_ALARM_DONT_CARE) == RTC_ALARM_DONT_CARE ||
	       alarm == val;
}

/*
 * The first clock second t >= from whose seconds, minutes and hours match
 * the alarm registers in the current mode. The alarm depends on the time of
 * day only, so if two days hold none, there is none.
 */
static bool rtc_next_alarm(const struct rtc_state *s, int64_t from,
			   int64_t *out)
{
	uint64_t sec_ok = 0, min_ok = 0;
	uint32_t hour_ok = 0;
	int64_t day = from - rtc_floor_mod(from, RTC_SECS_PER_DAY);
	unsigned tod = (unsigned)rtc_floor_mod(from, RTC_SECS_PER_DAY);

	for (unsigned v = 0; v < 60; v++) {
		if (rtc_alarm_byte_matches(s->cmos[RTC_ALARM_SECONDS],
					   rtc_to_reg(s, v)))
			sec_ok |= 1ull << v;
		if (rtc_alarm_byte_matches(s->cmos[RTC_ALARM_MINUTES],
					   rtc_to_reg(s, v)))
			min_ok |= 1ull << v;
	}
	for (unsigned h = 0; h < 24; h++)
		if (rtc_alarm_byte_matches(s->cmos[RTC_ALARM_HOURS],
					   rtc_encode_hour(s, h)))
			hour_ok |= 1u << h;
	if (!sec_ok || !min_ok || !hour_ok)
		return false;

	for (int pass = 0; pass < 2; pass++) {
		unsigned h = tod / RTC_SECS_PER_HOUR;
		unsigned m = tod / RTC_SECS_PER_MIN % 60;
		unsigned sec = tod % RTC_SECS_PER_MIN;

		for (; h < 24; h++, m = 0, sec = 0) {
			if (!(hour_ok >> h & 1))
				continue;
			for (; m < 60; m++, sec = 0) {
				uint64_t rest = sec_ok >> sec;

				if (!(min_ok >> m & 1) || !rest)
					continue;
				*out = day + h * RTC_SECS_PER_HOUR +
				       m * RTC_SECS_PER_MIN + sec +
				       __builtin_ctzll(rest);
				return true;
			}
		}
		day += RTC_SECS_PER_DAY;
		tod = 0;
	}
	return false;
}

/* Fold the divider's events in (flags_ns, now] into the flags. */
static void rtc_catch_up(struct rtc_state *s, int64_t now)
{
	int64_t from = s->flags_ns;
	unsigned shift = rtc_periodic_shift(s);
	int64_t s0, s1, t;

	if (now <= from)
		return;
	s->flags_ns = now;
	if (!rtc_running(s))
		return;
	if (shift && !(s->flags & RTC_C_PF) &&
	    rtc_ticks_at(s, now) >> shift != rtc_ticks_at(s, from) >> shift)
		s->flags |= RTC_C_PF;
	if (s->reg_b & RTC_B_SET)
		return;		/* update cycles are inhibited */
	s0 = rtc_secs_since_origin(s, from);
	s1 = rtc_secs_since_origin(s, now);
	if (s1 <= s0)
		return;
	s->flags |= RTC_C_UF;
	if (!(s->flags & RTC_C_AF) &&
	    rtc_next_alarm(s, s->origin_sec + s0 + 1, &t) &&
	    t <= s->origin_sec + s1)
		s->flags |= RTC_C_AF;
}

static bool rtc_irqf(const struct rtc_state *s)
{
	return s->flags & s->reg_b & RTC_C_FLAGS;
}

/* When the next event that sets IRQF happens, 0 if none can. */
static int64_t rtc_next_deadline(const struct rtc_state *s, int64_t now)
{
	unsigned shift = rtc_periodic_shift(s);
	int64_t best = INT64_MAX, t;

	if (!rtc_running(s) || rtc_irqf(s))
		return 0;
	if ((s->reg_b & RTC_B_PIE) && shift) {
		t = ((rtc_ticks_at(s, now) >> shift) + 1) << shift;
		t = rtc_tick_time(s, t);
		if (t < best)
			best = t;
	}
	if (!(s->reg_b & RTC_B_SET)) {
		int64_t next = rtc_secs_since_origin(s, now) + 1;

		if ((s->reg_b & RTC_B_UIE) &&
		    s->origin_ns + next * RTC_NS_PER_SEC < best)
			best = s->origin_ns + next * RTC_NS_PER_SEC;
		if ((s->reg_b & RTC_B_AIE) &&
		    rtc_next_alarm(s, s->origin_sec + next, &t)) {
			t = s->origin_ns + (t - s->origin_sec) * RTC_NS_PER_SEC;
			if (t < best)
				best = t;
		}
	}
	return best == INT64_MAX ? 0 : best;
}

static int64_t rtc_now(struct dev *d)
{
	uint64_t now = dev_clock_ns(d);

	/* Far beyond any run; keeps the arithmetic clear of overflow. */
	return now > (uint64_t)INT64_MAX / 4 ? INT64_MAX / 4 : (int64_t)now;
}

static int64_t rtc_wall_clock(struct dev *d)
{
	int64_t wall = RTC_DEFAULT_WALL;

	if (d->ops->wall_clock)
		wall = d->ops->wall_clock(d->host);
	return rtc_clamp(wall, RTC_MIN_SEC, RTC_MAX_SEC);
}

/* Drive the IRQ line to IRQF and arm the timer for the next event. */
static void rtc_update(struct dev *d, int64_t now)
{
	struct rtc_state *s = d->state;
	bool level = rtc_irqf(s);
	int64_t deadline;

	if (level != (bool)s->irq_level) {
		s->irq_level = level;
		dev_irq_set(d, 0, level);
	}
	deadline = rtc_next_deadline(s, now);
	if ((uint64_t)deadline != s->timer_ns) {
		s->timer_ns = (uint64_t)deadline;
		dev_timer_arm(d, RTC_TIMER, s->timer_ns);
	}
}

/* ---- registers ---------------------------------------------------------- */

/* Registers A and B together decide whether the clock is held. */
static void rtc_write_control(struct rtc_state *s, int64_t now, uint8_t a,
			      uint8_t b)
{
	bool was_held = rtc_held(s), was_running = rtc_running(s);
	bool will_hold = (b & RTC_B_SET) ||
			 (a & RTC_A_DV_MASK) != RTC_A_DV_32K;

	/* UIE is cleared when SET goes to 1. */
	if ((b & RTC_B_SET) && !(s->reg_b & RTC_B_SET))
		b &= ~RTC_B_UIE;
	/* Entering a hold: the registers keep what they showed. */
	if (!was_held && will_hold)
		rtc_encode(s, rtc_clock_sec(s, now), s->held);
	s->reg_a = a & RTC_A_WRITABLE;
	s->reg_b = b;
	if (!was_running && rtc_running(s)) {
		s->origin_ns = now - RTC_DIVIDER_START_NS;
		s->flags_ns = now;
	}
	/* Leaving it: the clock continues from the held registers. */
	if (was_held && !rtc_held(s))
		s->origin_sec = rtc_decode(s, s->held, &s->wday_offset) -
				rtc_secs_since_origin(s, now);
}

static void rtc_write_time(struct rtc_state *s, int64_t now,
			   enum rtc_field f, uint8_t val)
{
	uint8_t regs[RTC_NFIELDS];

	if (rtc_held(s)) {
		s->held[f] = val;
		return;
	}
	rtc_encode(s, rtc_clock_sec(s, now), regs);
	regs[f] = val;
	s->origin_sec = rtc_decode(s, regs, &s->wday_offset) -
			rtc_secs_since_origin(s, now);
}

static uint8_t rtc_read_time(const struct rtc_state *s, int64_t now,
			     enum rtc_field f)
{
	uint8_t regs[RTC_NFIELDS];

	if (rtc_held(s))
		return s->held[f];
	rtc_encode(s, rtc_clock_sec(s, now), regs);
	return regs[f];
}

static uint8_t rtc_read_reg(struct rtc_state *s, int64_t now, unsigned index)
{
	int field = rtc_time_field(index);
	uint8_t val;

	if (field >= 0)
		return rtc_read_time(s, now, (enum rtc_field)field);
	switch (index) {
	case RTC_REG_A:
		return s->reg_a | (rtc_uip(s, now) ? RTC_A_UIP : 0);
	case RTC_REG_B:
		return s->reg_b;
	case RTC_REG_C:
		val = s->flags | (rtc_irqf(s) ? RTC_C_IRQF : 0);
		s->flags = 0;
		return val;
	case RTC_REG_D:
		return RTC_D_VRT;
	}
	return s->cmos[index];	/* alarm bytes and NVRAM */
}

static void rtc_write_reg(struct rtc_state *s, int64_t now, unsigned index,
			  uint8_t val)
{
	int field = rtc_time_field(index);

	if (field >= 0) {
		rtc_write_time(s, now, (enum rtc_field)field, val);
		return;
	}
	switch (index) {
	case RTC_REG_A:
		rtc_write_control(s, now, val, s->reg_b);
		break;
	case RTC_REG_B:
		rtc_write_control(s, now, s->reg_a, val);
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break;	/* read-only */
	default:
		s->cmos[index] = val;
		break;
	}
}

/*
 * Ports 0x70 and 0x71 are bytes: a wider access covers the following port
 * as a wider port access does on the bus. Bytes outside the region read as
 * all ones and ignore writes.
 */
static void rtc_io(struct dev *d, unsigned region, uint64_t off, void *data,
		   unsigned len, bool write)
{
	struct rtc_state *s = d->state;
	uint8_t *bytes = data;
	int64_t now = rtc_now(d);

	rtc_catch_up(s, now);
	for (unsigned i = 0; i < len; i++) {
		if (region != 0 || off >= RTC_NPORTS || i >= RTC_NPORTS - off) {
			if (!write)
				bytes[i] = DEV_OPEN_BUS;
		} else if (off + i == RTC_PORT_INDEX) {
			if (write) {
				s->index = bytes[i] & RTC_INDEX_MASK;
				s->nmi_masked = !!(bytes[i] & RTC_NMI_MASK);
			} else {
				bytes[i] = s->index |
					   (s->nmi_masked ? RTC_NMI_MASK : 0);
			}
		} else if (write) {
			rtc_write_reg(s, now, s->index, bytes[i]);
		} else {
			bytes[i] = rtc_read_reg(s, now, s->index);
		}
	}
	rtc_update(d, now);
}

static void rtc_timer(struct dev *d, unsigned id)
{
	struct rtc_state *s = d->state;
	int64_t now = rtc_now(d);

	if (id == RTC_TIMER)
		s->timer_ns = 0;	/* it fired: nothing is armed now */
	rtc_catch_up(s, now);
	rtc_update(d, now);
}

/* ---- lifecycle ---------------------------------------------------------- */

static int rtc_construct(struct dev *d)
{
	struct rtc_state *s = d->state;
	int64_t now = rtc_now(d);

	s->reg_a = RTC_A_DEFAULT;
	s->reg_b = RTC_B_DEFAULT;
	s->wday_offset = RTC_EPOCH_WDAY_OFFSET;
	s->origin_ns = now;
	s->origin_sec = rtc_wall_clock(d);
	s->flags_ns = now;
	return 0;
}

/* The RESET pin: the clock, alarm and NVRAM are battery-backed. */
static void rtc_reset(struct dev *d)
{
	struct rtc_state *s = d->state;
	int64_t now = rtc_now(d);

	rtc_catch_up(s, now);
	s->reg_b &= ~(RTC_B_PIE | RTC_B_AIE | RTC_B_UIE | RTC_B_SQWE);
	s->flags = 0;
	s->index = 0;
	s->nmi_masked = 0;
	rtc_update(d, now);
}

/* ---- saved state -------------------------------------------------------- */

static int rtc_save(struct dev *d, uint8_t **buf, size_t *len)
{
	struct rtc_state snap = *(const struct rtc_state *)d->state;
	int64_t now = rtc_now(d);
	uint8_t time[RTC_NFIELDS];
	uint8_t nvram[RTC_NVRAM_SIZE];
	RtcState m = RTC_STATE__INIT;
	size_t size;
	uint8_t *out;

	rtc_catch_up(&snap, now);
	memcpy(nvram, snap.cmos + RTC_NVRAM_FIRST, sizeof(nvram));
	nvram[RTC_CENTURY - RTC_NVRAM_FIRST] = 0;
	m.index = snap.index;
	m.nmi_masked = snap.nmi_masked;
	m.nvram.data = nvram;
	m.nvram.len = sizeof(nvram);
	m.alarm_seconds = snap.cmos[RTC_ALARM_SECONDS];
	m.alarm_minutes = snap.cmos[RTC_ALARM_MINUTES];
	m.alarm_hours = snap.cmos[RTC_ALARM_HOURS];
	m.reg_a = snap.reg_a;
	m.reg_b = snap.reg_b;
	m.flags = snap.flags;
	if (rtc_held(&snap)) {
		memcpy(time, snap.held, sizeof(time));
	} else {
		int64_t sec = rtc_clock_sec(&snap, now);

		rtc_encode(&snap, sec, time);
		m.wall_offset = sec - rtc_wall_clock(d);
	}
	m.time.data = time;
	m.time.len = sizeof(time);
	if (rtc_running(&snap))
		m.phase_ns = (uint64_t)rtc_floor_mod(now - snap.origin_ns,
						     RTC_NS_PER_SEC);
	m.wday_offset = snap.wday_offset;

	size = rtc_state__get_packed_size(&m);
	out = malloc(size ? size : 1);
	if (!out)
		return -ENOMEM;
	rtc_state__pack(&m, out);
	*buf = out;
	*len = size;
	return 0;
}

/* Every field of a saved state within what the device can hold. */
static bool rtc_state_valid(const RtcState *m)
{
	/* Further than the calendar reaches in either direction. */
	const int64_t max_offset = RTC_MAX_SEC - RTC_MIN_SEC;

	return m->index <= RTC_INDEX_MASK &&
	       m->nvram.len == RTC_NVRAM_SIZE &&
	       m->nvram.data[RTC_CENTURY - RTC_NVRAM_FIRST] == 0 &&
	       m->alarm_seconds <= UINT8_MAX && m->alarm_minutes <= UINT8_MAX &&
	       m->alarm_hours <= UINT8_MAX &&
	       m->reg_a <= RTC_A_WRITABLE && m->reg_b <= UINT8_MAX &&
	       !(m->flags & ~(uint32_t)RTC_C_FLAGS) &&
	       m->time.len == RTC_NFIELDS &&
	       m->wall_offset >= -max_offset && m->wall_offset <= max_offset &&
	       m->phase_ns < (uint64_t)RTC_NS_PER_SEC &&
	       m->wday_offset < 7;
}

static int rtc_load(struct dev *d, const uint8_t *buf, size_t len,
		    uint32_t version)
{
	struct rtc_state *s = d->state;
	struct rtc_state n;
	int64_t now = rtc_now(d);
	RtcState *m;

	if (version != d->desc->mf->state_version || (!buf && len))
		return -EINVAL;
	m = rtc_state__unpack(NULL, len, buf);
	if (!m)
		return -EBADMSG;
	if (!rtc_state_valid(m)) {
		rtc_state__free_unpacked(m, NULL);
		return -EINVAL;
	}

	memset(&n, 0, sizeof(n));
	memcpy(n.cmos + RTC_NVRAM_FIRST, m->nvram.data, RTC_NVRAM_SIZE);
	n.cmos[RTC_ALARM_SECONDS] = (uint8_t)m->alarm_seconds;
	n.cmos[RTC_ALARM_MINUTES] = (uint8_t)m->alarm_minutes;
	n.cmos[RTC_ALARM_HOURS] = (uint8_t)m->alarm_hours;
	memcpy(n.held, m->time.data, RTC_NFIELDS);
	n.reg_a = (uint8_t)m->reg_a;
	n.reg_b = (uint8_t)m->reg_b;
	n.flags = (uint8_t)m->flags;
	n.index = (uint8_t)m->index;
	n.nmi_masked = m->nmi_masked;
	n.wday_offset = (uint8_t)m->wday_offset;
	n.origin_ns = now - (int64_t)m->phase_ns;
	n.origin_sec = rtc_wall_clock(d) + m->wall_offset;
	n.flags_ns = now;
	/* What the host has now, so rtc_update changes only what differs. */
	n.irq_level = s->irq_level;
	n.timer_ns = s->timer_ns;
	rtc_state__free_unpacked(m, NULL);

	*s = n;
	rtc_update(d, now);
	return 0;
}

static const uint8_t rtc_irq_flags[] = {DEV_IRQ_EDGE};

const struct dev_desc rtc_desc = {
	.mf = &dev_mf_rtc,
	.irq_flags = rtc_irq_flags,
	.state_size = sizeof(struct rtc_state),
	.construct = rtc_construct,
	.io = rtc_io,
	.reset = rtc_reset,
	.timer = rtc_timer,
	.save = rtc_save,
	.load = rtc_load,
};
