/* SPDX-License-Identifier: MIT */
/* The MP table, read back the way a guest finds it. */
#include <stdlib.h>
#include <string.h>

#include "emt-worker/mptable.h"
#include "tests/unit/suites.h"

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static uint32_t get32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Search the BIOS area as the spec says; returns the floating pointer. */
static const uint8_t *find_fp(const uint8_t *ram)
{
	for (uint32_t a = 0xf0000; a < 0x100000; a += 16)
		if (memcmp(ram + a, "_MP_", 4) == 0 && sum8(ram + a, 16) == 0)
			return ram + a;
	return NULL;
}

static void check_cpus(unsigned ncpus)
{
	uint8_t *ram = calloc(1, 2 << 20);
	const uint8_t *fp, *ct, *e;
	unsigned procs = 0, bsp = 0, ioapics = 0, irqs = 0;
	uint16_t len, count;

	ck_assert_int_eq(emt_mptable_build(ram, 2 << 20, ncpus), 0);
	fp = find_fp(ram);
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fp[8], 1);
	ck_assert_int_eq(fp[9], 4);
	ct = ram + get32(fp + 4);
	ck_assert_mem_eq(ct, "PCMP", 4);
	len = (uint16_t)(ct[4] | ct[5] << 8);
	count = (uint16_t)(ct[34] | ct[35] << 8);
	ck_assert_int_eq(sum8(ct, len), 0);
	ck_assert_uint_eq(get32(ct + 36), 0xfee00000u);
	e = ct + 44;
	for (unsigned i = 0; i < count; i++) {
		ck_assert(e < ct + len);
		switch (e[0]) {
		case 0:
			ck_assert_int_eq(e[1], procs);  /* APIC id = index */
			ck_assert(e[3] & 1);
			if (e[3] & 2)
				bsp++;
			procs++;
			e += 20;
			break;
		case 2:
			ck_assert_int_eq(e[1], ncpus);
			ck_assert_uint_eq(get32(e + 4), 0xfec00000u);
			ioapics++;
			e += 8;
			break;
		case 3:
			irqs++;
			e += 8;
			break;
		case 1:
		case 4:
			e += 8;
			break;
		default:
			ck_abort_msg("unknown entry type %u", e[0]);
		}
	}
	ck_assert_ptr_eq(e, ct + len);
	ck_assert_uint_eq(procs, ncpus);
	ck_assert_uint_eq(bsp, 1);
	ck_assert_uint_eq(ioapics, 1);
	ck_assert_uint_eq(irqs, 15);
	free(ram);
}

START_TEST(test_mptable_cpus)
{
	check_cpus(1);
	check_cpus(2);
	check_cpus(4);
	check_cpus(16);
}
END_TEST

START_TEST(test_mptable_bad_args)
{
	uint8_t *ram = calloc(1, 2 << 20);

	ck_assert_int_lt(emt_mptable_build(ram, 2 << 20, 0), 0);
	ck_assert_int_lt(emt_mptable_build(ram, 2 << 20, 17), 0);
	ck_assert_int_lt(emt_mptable_build(ram, 0x80000, 1), 0);
	free(ram);
}
END_TEST

Suite *mptable_suite(void)
{
	Suite *s = suite_create("mptable");
	TCase *tc = tcase_create("mptable");

	tcase_add_test(tc, test_mptable_cpus);
	tcase_add_test(tc, test_mptable_bad_args);
	suite_add_tcase(s, tc);
	return s;
}
