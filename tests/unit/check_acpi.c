/* SPDX-License-Identifier: MIT */
/*
 * The ACPI tables (emt-worker/acpi.c), read back from guest RAM as a guest
 * would: the RSDP where guests scan for it, every table's signature, length
 * and checksum, the XSDT's pointers, the FADT's hardware-reduced flags and
 * registers, the MADT's processors, I/O APIC, overrides and NMI, the DSDT's
 * devices; and the refusals.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "emt-worker/acpi.h"
#include "tests/unit/suites.h"

#define T_RAM (2u << 20)

static uint8_t *ram;
static struct acpi_machine m;
static char err[256];

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

/* A table at gpa: its signature and a checksum that adds up. */
static const uint8_t *table(uint64_t gpa, const char *sig)
{
	const uint8_t *t;

	ck_assert_uint_ge(gpa, EMT_ACPI_ADDR);
	ck_assert_uint_lt(gpa + 36, EMT_ACPI_END);
	t = ram + gpa;
	ck_assert_msg(memcmp(t, sig, 4) == 0, "not %s at 0x%llx", sig,
		      (unsigned long long)gpa);
	ck_assert_uint_le(gpa + rd32(t + 4), EMT_ACPI_END);
	ck_assert_uint_eq(sum(t, rd32(t + 4)), 0);
	ck_assert_int_eq(memcmp(t + 10, "BLKHD ", 6), 0);
	return t;
}

static void dev(const char *name, const char *hid, unsigned uid,
		enum acpi_space space, uint64_t base, uint64_t len,
		uint32_t irq, bool level)
{
	struct acpi_device *d = &m.devs[m.ndevs++];

	*d = (struct acpi_device){ .name = name, .hid = hid, .uid = uid,
				   .nres = 1, .nirqs = irq ? 1 : 0,
				   .level = level };
	d->res[0] = (struct acpi_res){ space, base, len };
	d->irqs[0] = irq;
}

static void acpi_setup(void)
{
	ram = calloc(1, T_RAM);
	ck_assert_ptr_nonnull(ram);
	memset(&m, 0, sizeof(m));
	m.ncpus = 2;
	m.ioapic_id = 2;
	dev("COM1", "PNP0501", 1, ACPI_SPACE_IO, 0x3f8, 8, 4, false);
	dev("RTC_", "PNP0B00", 0, ACPI_SPACE_IO, 0x70, 2, 8, false);
	dev("VR00", "LNRO0005", 0, ACPI_SPACE_MEM, 0xd0000000u, 0x200, 5, true);
	dev("VR01", "LNRO0005", 1, ACPI_SPACE_MEM, 0xd0000200u, 0x200, 6, true);
	m.has_pm = true;
	m.pm = (struct acpi_pm){ .sleep_control = 0x600, .sleep_status = 0x601,
				 .reset = 0x602, .reset_value = 0x42,
				 .s5_type = 5, .button_gsi = 9 };
}

static void acpi_teardown(void)
{
	free(ram);
}

static const uint8_t *find_table(const uint8_t *xsdt, const char *sig)
{
	unsigned n = (rd32(xsdt + 4) - 36) / 8;

	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = rd64(xsdt + 36 + 8 * i);

		if (memcmp(ram + gpa, sig, 4) == 0)
			return table(gpa, sig);
	}
	ck_abort_msg("the XSDT has no %s", sig);
	return NULL;
}

static bool contains(const uint8_t *p, size_t n, const char *s)
{
	size_t k = strlen(s);

	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(p + i, s, k) == 0)
			return true;
	return false;
}

START_TEST(test_acpi_rsdp_xsdt)
{
	uint64_t rsdp = 0;
	const uint8_t *p, *x;

	ck_assert_int_eq(acpi_build(ram, T_RAM, &m, &rsdp, err, sizeof(err)), 0);
	/* Where a guest scans: 16-byte aligned in 0xE0000-0xFFFFF. */
	ck_assert_uint_eq(rsdp % 16, 0);
	ck_assert_uint_ge(rsdp, 0xe0000);
	p = ram + rsdp;
	ck_assert_int_eq(memcmp(p, "RSD PTR ", 8), 0);
	ck_assert_uint_eq(sum(p, 20), 0);
	ck_assert_uint_eq(sum(p, 36), 0);
	ck_assert_uint_eq(p[15], 2);
	ck_assert_uint_eq(rd32(p + 20), 36);
	x = table(rd64(p + 24), "XSDT");
	ck_assert_uint_eq(rd32(x + 4), 36 + 2 * 8);
	find_table(x, "FACP");
	find_table(x, "APIC");
}
END_TEST

START_TEST(test_acpi_fadt)
{
	uint64_t rsdp = 0;
	const uint8_t *f, *d;

	ck_assert_int_eq(acpi_build(ram, T_RAM, &m, &rsdp, err, sizeof(err)), 0);
	f = find_table(table(rd64(ram + rsdp + 24), "XSDT"), "FACP");
	ck_assert_uint_eq(rd32(f + 4), 276);
	ck_assert_uint_eq(f[8], 6);
	/* HW_REDUCED_ACPI, RESET_REG_SUP, PWR_BUTTON (a device) */
	ck_assert_uint_ne(rd32(f + 112) & (1u << 20), 0);
	ck_assert_uint_ne(rd32(f + 112) & (1u << 10), 0);
	ck_assert_uint_ne(rd32(f + 112) & (1u << 4), 0);
	/* the 8042 is there */
	ck_assert_uint_ne((f[109] | f[110] << 8) & 0x2, 0);
	/* RESET_REG: an I/O port, byte wide; then its value */
	ck_assert_uint_eq(f[116], 1);
	ck_assert_uint_eq(rd64(f + 120), 0x602);
	ck_assert_uint_eq(f[128], 0x42);
	/* SLEEP_CONTROL_REG and SLEEP_STATUS_REG */
	ck_assert_uint_eq(f[244], 1);
	ck_assert_uint_eq(rd64(f + 248), 0x600);
	ck_assert_uint_eq(f[256], 1);
	ck_assert_uint_eq(rd64(f + 260), 0x601);
	/* DSDT and X_DSDT agree */
	ck_assert_uint_eq(rd32(f + 40), rd64(f + 140));
	d = table(rd64(f + 140), "DSDT");
	ck_assert(contains(d, rd32(d + 4), "COM1"));
	ck_assert(contains(d, rd32(d + 4), "VR01"));
	ck_assert(contains(d, rd32(d + 4), "LNRO0005"));
	ck_assert(contains(d, rd32(d + 4), "ACPI0013"));
	ck_assert(contains(d, rd32(d + 4), "_S5_"));
	ck_assert(contains(d, rd32(d + 4), "_EVT"));
}
END_TEST

START_TEST(test_acpi_madt)
{
	uint64_t rsdp = 0;
	const uint8_t *t, *e, *end;
	unsigned lapics = 0, ioapics = 0, overrides = 0, nmis = 0;
	uint32_t seen_gsi = 0;

	m.ncpus = 4;
	m.ioapic_id = 4;
	ck_assert_int_eq(acpi_build(ram, T_RAM, &m, &rsdp, err, sizeof(err)), 0);
	t = find_table(table(rd64(ram + rsdp + 24), "XSDT"), "APIC");
	ck_assert_uint_eq(rd32(t + 36), 0xfee00000u);
	end = t + rd32(t + 4);
	for (e = t + 44; e < end; e += e[1]) {
		ck_assert_uint_ge(e[1], 2);
		switch (e[0]) {
		case 0:
			ck_assert_uint_eq(e[3], lapics);   /* APIC id i */
			ck_assert_uint_eq(rd32(e + 4) & 1, 1);
			lapics++;
			break;
		case 1:
			ck_assert_uint_eq(e[2], 4);
			ck_assert_uint_eq(rd32(e + 4), 0xfec00000u);
			ck_assert_uint_eq(rd32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			/* the virtio lines: level, active high, identity */
			ck_assert_uint_eq(e[3], rd32(e + 4));
			ck_assert_uint_eq(e[8] | e[9] << 8, 0x000d);
			seen_gsi |= 1u << e[3];
			overrides++;
			break;
		case 4:
			ck_assert_uint_eq(e[2], 0xff);
			ck_assert_uint_eq(e[5], 1);
			nmis++;
			break;
		default:
			ck_abort_msg("MADT entry type %u", e[0]);
		}
	}
	ck_assert_ptr_eq(e, end);
	ck_assert_uint_eq(lapics, 4);
	ck_assert_uint_eq(ioapics, 1);
	ck_assert_uint_eq(overrides, 2);
	ck_assert_uint_eq(seen_gsi, (1u << 5) | (1u << 6));
	ck_assert_uint_eq(nmis, 1);
}
END_TEST

START_TEST(test_acpi_refuses)
{
	uint64_t rsdp = 0;

	m.devs[0].name = "SERIAL0";
	ck_assert_int_eq(acpi_build(ram, T_RAM, &m, &rsdp, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "cannot build the DSDT"));
	ck_assert_ptr_nonnull(strstr(err, "a segment of 7 characters"));

	acpi_teardown();
	acpi_setup();
	m.devs[1].hid = "PNP0b00";   /* not an EISA id: then a string, fine */
	m.devs[2].res[0].space = ACPI_SPACE_IO;
	m.devs[2].res[0].len = 512;
	ck_assert_int_eq(acpi_build(ram, T_RAM, &m, &rsdp, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "512 I/O ports in one range"));

	acpi_teardown();
	acpi_setup();
	m.ncpus = 0;
	ck_assert_int_eq(acpi_build(ram, T_RAM, &m, &rsdp, err, sizeof(err)),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "0 vCPUs"));

	acpi_teardown();
	acpi_setup();
	ck_assert_int_eq(acpi_build(ram, 0x80000, &m, &rsdp, err,
				    sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "do not reach"));
}
END_TEST

START_TEST(test_acpi_without_pm)
{
	uint64_t rsdp = 0;
	const uint8_t *f, *d;

	m.has_pm = false;
	ck_assert_int_eq(acpi_build(ram, T_RAM, &m, &rsdp, err, sizeof(err)), 0);
	f = find_table(table(rd64(ram + rsdp + 24), "XSDT"), "FACP");
	ck_assert_uint_eq(rd32(f + 112) & (1u << 10), 0);
	ck_assert_uint_eq(rd64(f + 248), 0);
	d = table(rd64(f + 140), "DSDT");
	ck_assert(!contains(d, rd32(d + 4), "_S5_"));
	ck_assert(!contains(d, rd32(d + 4), "PWRB"));
}
END_TEST

Suite *acpi_suite(void)
{
	Suite *s = suite_create("acpi");
	TCase *tc = tcase_create("tables");

	tcase_add_checked_fixture(tc, acpi_setup, acpi_teardown);
	tcase_add_test(tc, test_acpi_rsdp_xsdt);
	tcase_add_test(tc, test_acpi_fadt);
	tcase_add_test(tc, test_acpi_madt);
	tcase_add_test(tc, test_acpi_refuses);
	tcase_add_test(tc, test_acpi_without_pm);
	suite_add_tcase(s, tc);
	return s;
}
