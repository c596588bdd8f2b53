/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the ACPI PM core (device-procs/acpi-pm/acpipm.c) against
 * the fake host: power-off only for SLP_EN with the \_S5 type, reset only
 * for RESET_VALUE, the power button as one pulse of its line, and every
 * other write ignored; its saved state, and hostile states refused.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acpi_pm_state.pb-c.h"
#include "device-procs/devhost/dev.h"
#include "tests/unit/fakehost.h"
#include "tests/unit/suites.h"

static struct fakehost host;
static struct dev *dev;

static void pm_setup(void)
{
	fakehost_dev_new(&host, 1, &acpipm_desc, &dev);
}

static void pm_teardown(void)
{
	fakehost_dev_free(&host, &dev);
}

static void pm_out(uint64_t reg, uint8_t v)
{
	fakehost_wr8(dev, 0, reg, v);
}

static uint8_t pm_in(uint64_t reg)
{
	return fakehost_rd8(dev, 0, reg, 0xee);
}

static uint8_t slp(unsigned typ, bool en)
{
	return (uint8_t)((typ << ACPI_PM_SLP_TYP_SHIFT) | (en ? ACPI_PM_SLP_EN : 0));
}

START_TEST(test_entry)
{
	ck_assert_ptr_eq(acpipm_desc.mf, &dev_mf_acpi_pm);
	ck_assert_uint_eq(dev->nregions, 1);
	ck_assert_uint_eq(dev->regions[0].space, DEV_PIO);
	ck_assert_uint_eq(dev->regions[0].len, ACPI_PM_NREGS);
	ck_assert_uint_eq(dev->nirqs, 1);
	ck_assert(dev_mf_acpi_pm.flags & DEV_MF_POWEROFF);
	ck_assert(dev_mf_acpi_pm.flags & DEV_MF_RESET);
	/* the S5 type fits SLP_TYP's three bits */
	ck_assert_uint_eq(slp(ACPI_PM_S5_TYPE, false) & ~ACPI_PM_SLP_TYP_MASK, 0);
}
END_TEST

START_TEST(test_s5_powers_off)
{
	pm_out(ACPI_PM_SLEEP_CONTROL, slp(ACPI_PM_S5_TYPE, false));
	ck_assert_uint_eq(host.poweroffs, 0);  /* no SLP_EN: nothing */
	pm_out(ACPI_PM_SLEEP_CONTROL, slp(ACPI_PM_S5_TYPE, true));
	ck_assert_uint_eq(host.poweroffs, 1);
	ck_assert_uint_eq(host.resets, 0);
	ck_assert_uint_eq(host.exits, 0);
}
END_TEST

/* Every other sleep type, with and without SLP_EN, and the bits outside
 * SLP_TYP and SLP_EN: no power-off, no reset. */
START_TEST(test_other_sleep_states_do_nothing)
{
	for (unsigned v = 0; v < 256; v++) {
		unsigned typ = (v & ACPI_PM_SLP_TYP_MASK) >> ACPI_PM_SLP_TYP_SHIFT;

		if ((v & ACPI_PM_SLP_EN) && typ == ACPI_PM_S5_TYPE)
			continue;
		pm_out(ACPI_PM_SLEEP_CONTROL, (uint8_t)v);
	}
	ck_assert_uint_eq(host.poweroffs, 0);
	ck_assert_uint_eq(host.resets, 0);
	ck_assert_uint_eq(host.edges[0], 0);
}
END_TEST

START_TEST(test_reset_value_only)
{
	for (unsigned v = 0; v < 256; v++)
		if (v != ACPI_PM_RESET_VALUE)
			pm_out(ACPI_PM_RESET, (uint8_t)v);
	ck_assert_uint_eq(host.resets, 0);
	pm_out(ACPI_PM_RESET, ACPI_PM_RESET_VALUE);
	ck_assert_uint_eq(host.resets, 1);
	ck_assert_uint_eq(host.poweroffs, 0);
}
END_TEST

/* A 4-byte write at 0 is the three registers and one past them, each
 * byte its own register: here S5 with SLP_EN and the reset value. */
START_TEST(test_wide_access_is_bytes)
{
	uint32_t v = slp(ACPI_PM_S5_TYPE, true) |
		     (uint32_t)ACPI_PM_RESET_VALUE << 16 | 0xffu << 24;
	uint8_t r[4];

	dev->desc->io(dev, 0, 0, &v, 4, true);
	ck_assert_uint_eq(host.poweroffs, 1);
	ck_assert_uint_eq(host.resets, 1);
	memset(r, 0xee, sizeof(r));
	dev->desc->io(dev, 0, 0, r, 4, false);
	for (unsigned i = 0; i < 4; i++)
		ck_assert_uint_eq(r[i], 0);
}
END_TEST

START_TEST(test_reads)
{
	ck_assert_uint_eq(pm_in(ACPI_PM_SLEEP_CONTROL), 0);
	ck_assert_uint_eq(pm_in(ACPI_PM_SLEEP_STATUS), 0);
	ck_assert_uint_eq(pm_in(ACPI_PM_RESET), 0);
	ck_assert_uint_eq(pm_in(ACPI_PM_NREGS + 5), 0);
	/* writing the status register's bits clears, never sets */
	pm_out(ACPI_PM_SLEEP_STATUS, 0xff);
	ck_assert_uint_eq(pm_in(ACPI_PM_SLEEP_STATUS), 0);
}
END_TEST

START_TEST(test_power_button_pulses)
{
	ck_assert_ptr_nonnull(acpipm_desc.power_button);
	for (unsigned i = 1; i <= 3; i++) {
		acpipm_desc.power_button(dev);
		ck_assert_uint_eq(host.edges[0], i);
		ck_assert(!host.level[0]);  /* edge: back down at once */
	}
	ck_assert_uint_eq(host.poweroffs, 0);
}
END_TEST

static size_t pm_pack(const AcpiPmState *m, uint8_t *buf)
{
	return acpi_pm_state__pack(m, buf);
}

START_TEST(test_save_load)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	struct dev *d2;
	struct fakehost h2;
	AcpiPmState *m;

	acpipm_desc.power_button(dev);
	acpipm_desc.power_button(dev);
	ck_assert_int_eq(dev->desc->save(dev, &buf, &len), 0);
	m = acpi_pm_state__unpack(NULL, len, buf);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->presses, 2);
	acpi_pm_state__free_unpacked(m, NULL);

	fakehost_reset(&h2, 1);
	ck_assert_int_eq(dev_new(&acpipm_desc, 0, &fakehost_ops, &h2, &d2), 0);
	ck_assert_int_eq(d2->desc->load(d2, buf, len,
					dev_mf_acpi_pm.state_version), 0);
	/* an unknown version, and bytes that are no message */
	ck_assert_int_eq(d2->desc->load(d2, buf, len,
					dev_mf_acpi_pm.state_version + 1), -EINVAL);
	{
		const uint8_t junk[] = { 0xff, 0xff, 0xff };

		ck_assert_int_eq(d2->desc->load(d2, junk, sizeof(junk),
						dev_mf_acpi_pm.state_version),
				 -EBADMSG);
	}
	free(buf);
	dev_free(d2);
}
END_TEST

/* A state with status bits other than WAK_STS is refused and changes
 * nothing; WAK_STS itself loads and reads back. */
START_TEST(test_load_hostile)
{
	AcpiPmState m = ACPI_PM_STATE__INIT;
	uint8_t buf[64];
	size_t len;

	m.sleep_status = 0x81;
	len = pm_pack(&m, buf);
	ck_assert_int_eq(dev->desc->load(dev, buf, len,
					 dev_mf_acpi_pm.state_version), -EINVAL);
	ck_assert_uint_eq(pm_in(ACPI_PM_SLEEP_STATUS), 0);
	m.sleep_status = 0x80;
	len = pm_pack(&m, buf);
	ck_assert_int_eq(dev->desc->load(dev, buf, len,
					 dev_mf_acpi_pm.state_version), 0);
	ck_assert_uint_eq(pm_in(ACPI_PM_SLEEP_STATUS), 0x80);
	pm_out(ACPI_PM_SLEEP_STATUS, 0x80);
	ck_assert_uint_eq(pm_in(ACPI_PM_SLEEP_STATUS), 0);
}
END_TEST

Suite *acpipm_suite(void)
{
	Suite *s = suite_create("acpipm");
	TCase *tc = tcase_create("acpipm");

	tcase_add_checked_fixture(tc, pm_setup, pm_teardown);
	tcase_add_test(tc, test_entry);
	tcase_add_test(tc, test_s5_powers_off);
	tcase_add_test(tc, test_other_sleep_states_do_nothing);
	tcase_add_test(tc, test_reset_value_only);
	tcase_add_test(tc, test_wide_access_is_bytes);
	tcase_add_test(tc, test_reads);
	tcase_add_test(tc, test_power_button_pulses);
	tcase_add_test(tc, test_save_load);
	tcase_add_test(tc, test_load_hostile);
	suite_add_tcase(s, tc);
	return s;
}
