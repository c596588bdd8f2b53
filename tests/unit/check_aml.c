/* SPDX-License-Identifier: MIT */
/*
 * The AML builder (emt-worker/aml.c): the bytes it writes against the
 * bytes ACPICA's iasl writes for the same ASL, each encoding's edge cases
 * (integers, package lengths of 1 to 3 bytes, name paths), and every
 * refusal of a name or value out of range, with its message.
 */
#include <errno.h>
#include <string.h>

#include "emt-worker/aml.h"
#include "tests/unit/suites.h"

static uint8_t buf[8192];
static struct aml a;
static size_t len;

static void aml_setup(void)
{
	memset(buf, 0xcc, sizeof(buf));
	aml_init(&a, buf, sizeof(buf));
	len = 0;
}

static void expect(const uint8_t *want, size_t n)
{
	ck_assert_int_eq(aml_finish(&a, &len), 0);
	ck_assert_uint_eq(len, n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(buf[i] == want[i], "byte %zu: 0x%02x, iasl 0x%02x",
			      i, buf[i], want[i]);
}

static void expect_refused(int error, const char *text)
{
	ck_assert_int_eq(aml_finish(&a, &len), error);
	ck_assert_msg(strstr(a.err, text), "message '%s' lacks '%s'", a.err,
		      text);
}

/*
 * iasl -tc of (ASL, the DSDT body):
 *   Scope (\_SB) {
 *     Device (COM1) { Name (_HID, EisaId ("PNP0501")) Name (_UID, One)
 *       Name (_CRS, ResourceTemplate () { IO (Decode16, 0x03F8, 0x03F8,
 *         0x01, 0x08) IRQNoFlags () {4} }) }
 *     Device (VR00) { Name (_HID, "LNRO0005") Name (_UID, Zero)
 *       Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite,
 *         0xD0000000, 0x00000200) Interrupt (ResourceConsumer, Level,
 *         ActiveHigh, Exclusive) {5} }) }
 *     Device (PWRB) { Name (_HID, EisaId ("PNP0C0C")) Name (_UID, Zero) }
 *     Device (GED0) { Name (_HID, "ACPI0013") Name (_UID, Zero)
 *       Name (_CRS, ResourceTemplate () { Interrupt (ResourceConsumer,
 *         Edge, ActiveHigh, Exclusive) {9} })
 *       Method (_EVT, 1, NotSerialized) { If (Arg0 == 9) {
 *         Notify (PWRB, 0x80) } } } }
 *   Name (\_S5, Package (0x04) { 5, Zero, Zero, Zero })
 * (iasl writes \_SB and \_S5 as _SB_ and _S5_ from the root scope.)
 */
static const uint8_t iasl_dsdt[] = {
	0x10, 0x4b, 0x0c, 0x5f, 0x53, 0x42, 0x5f, 0x5b, 0x82, 0x2b, 0x43, 0x4f,
	0x4d, 0x31, 0x08, 0x5f, 0x48, 0x49, 0x44, 0x0c, 0x41, 0xd0, 0x05, 0x01,
	0x08, 0x5f, 0x55, 0x49, 0x44, 0x01, 0x08, 0x5f, 0x43, 0x52, 0x53, 0x11,
	0x10, 0x0a, 0x0d, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08, 0x22,
	0x10, 0x00, 0x79, 0x00, 0x5b, 0x82, 0x3a, 0x56, 0x52, 0x30, 0x30, 0x08,
	0x5f, 0x48, 0x49, 0x44, 0x0d, 0x4c, 0x4e, 0x52, 0x4f, 0x30, 0x30, 0x30,
	0x35, 0x00, 0x08, 0x5f, 0x55, 0x49, 0x44, 0x00, 0x08, 0x5f, 0x43, 0x52,
	0x53, 0x11, 0x1a, 0x0a, 0x17, 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00,
	0xd0, 0x00, 0x02, 0x00, 0x00, 0x89, 0x06, 0x00, 0x01, 0x01, 0x05, 0x00,
	0x00, 0x00, 0x79, 0x00, 0x5b, 0x82, 0x15, 0x50, 0x57, 0x52, 0x42, 0x08,
	0x5f, 0x48, 0x49, 0x44, 0x0c, 0x41, 0xd0, 0x0c, 0x0c, 0x08, 0x5f, 0x55,
	0x49, 0x44, 0x00, 0x5b, 0x82, 0x43, 0x04, 0x47, 0x45, 0x44, 0x30, 0x08,
	0x5f, 0x48, 0x49, 0x44, 0x0d, 0x41, 0x43, 0x50, 0x49, 0x30, 0x30, 0x31,
	0x33, 0x00, 0x08, 0x5f, 0x55, 0x49, 0x44, 0x00, 0x08, 0x5f, 0x43, 0x52,
	0x53, 0x11, 0x0e, 0x0a, 0x0b, 0x89, 0x06, 0x00, 0x03, 0x01, 0x09, 0x00,
	0x00, 0x00, 0x79, 0x00, 0x14, 0x13, 0x5f, 0x45, 0x56, 0x54, 0x01, 0xa0,
	0x0c, 0x93, 0x68, 0x0a, 0x09, 0x86, 0x50, 0x57, 0x52, 0x42, 0x0a, 0x80,
	0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x07, 0x04, 0x0a, 0x05, 0x00, 0x00,
	0x00,
};

START_TEST(test_aml_as_iasl)
{
	aml_open_scope(&a, "_SB");
	aml_open_device(&a, "COM1");
	aml_name_eisaid(&a, "_HID", "PNP0501");
	aml_name_integer(&a, "_UID", 1);
	aml_name(&a, "_CRS");
	aml_open_resources(&a);
	aml_res_io(&a, 0x3f8, 8);
	aml_res_irq(&a, 4);
	aml_close(&a);
	aml_close(&a);
	aml_open_device(&a, "VR00");
	aml_name_string_value(&a, "_HID", "LNRO0005");
	aml_name_integer(&a, "_UID", 0);
	aml_name(&a, "_CRS");
	aml_open_resources(&a);
	aml_res_mem32(&a, 0xd0000000u, 0x200);
	aml_res_interrupt(&a, 5, true);
	aml_close(&a);
	aml_close(&a);
	aml_open_device(&a, "PWRB");
	aml_name_eisaid(&a, "_HID", "PNP0C0C");
	aml_name_integer(&a, "_UID", 0);
	aml_close(&a);
	aml_open_device(&a, "GED0");
	aml_name_string_value(&a, "_HID", "ACPI0013");
	aml_name_integer(&a, "_UID", 0);
	aml_name(&a, "_CRS");
	aml_open_resources(&a);
	aml_res_interrupt(&a, 9, false);
	aml_close(&a);
	aml_open_method(&a, "_EVT", 1);
	aml_open_if(&a);
	aml_lequal(&a);
	aml_arg(&a, 0);
	aml_integer(&a, 9);
	aml_notify(&a, "PWRB", 0x80);
	aml_close(&a);
	aml_close(&a);
	aml_close(&a);
	aml_close(&a);
	aml_name(&a, "_S5");
	aml_open_package(&a, 4);
	aml_integer(&a, 5);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_close(&a);
	expect(iasl_dsdt, sizeof(iasl_dsdt));
}
END_TEST

START_TEST(test_aml_integers)
{
	static const uint8_t want[] = {
		0x00, 0x01, 0xff, 0x0a, 0x02, 0x0a, 0xff, 0x0b, 0x00, 0x01,
		0x0b, 0xff, 0xff, 0x0c, 0x00, 0x00, 0x01, 0x00,
		0x0c, 0xff, 0xff, 0xff, 0xff,
		0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
		0x0e, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	};
	const uint64_t v[] = { 0, 1, UINT64_MAX, 2, 0xff, 0x100, 0xffff,
			       0x10000, 0xffffffffu, UINT64_C(0x100000000),
			       UINT64_MAX - 1 };

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		aml_integer(&a, v[i]);
	expect(want, sizeof(want));
}
END_TEST

/* A package of n Zero elements: its PkgLength in 1, 2 and 3 bytes. */
static void pkg_of(unsigned n)
{
	aml_open_package(&a, n > 255 ? 255 : n);
	for (unsigned i = 0; i < n; i++)
		aml_integer(&a, 0);
	aml_close(&a);
}

START_TEST(test_aml_pkglength)
{
	/* body = 1 (count) + n; total = body + pkglength bytes */
	pkg_of(61);                   /* total 63: one byte */
	ck_assert_int_eq(aml_finish(&a, &len), 0);
	ck_assert_uint_eq(len, 1 + 63);
	ck_assert_uint_eq(buf[1], 63);

	aml_setup();
	pkg_of(62);                   /* total 65: two bytes */
	ck_assert_int_eq(aml_finish(&a, &len), 0);
	ck_assert_uint_eq(len, 1 + 65);
	ck_assert_uint_eq(buf[1], 0x40 | (65 & 0xf));
	ck_assert_uint_eq(buf[2], 65 >> 4);
	ck_assert_uint_eq(buf[3], 62);   /* the count, right after */

	aml_setup();
	/* A body of 4094 bytes: 4096 with two length bytes is past 0xfff,
	 * so three. */
	aml_open_package(&a, 1);
	for (unsigned i = 0; i < 4093; i++)
		aml_integer(&a, 0);
	aml_close(&a);
	ck_assert_int_eq(aml_finish(&a, &len), 0);
	ck_assert_uint_eq(len, 1 + 3 + 4094);
	ck_assert_uint_eq(buf[1] >> 6, 2);
	ck_assert_uint_eq((buf[1] & 0xf) | buf[2] << 4 | buf[3] << 12,
			  4094 + 3);
}
END_TEST

START_TEST(test_aml_name_paths)
{
	static const uint8_t want[] = {
		0x5c, 0x00,                                  /* \ */
		0x5c, 0x5f, 0x53, 0x42, 0x5f,                /* \_SB_ */
		0x5c, 0x2e, 0x5f, 0x53, 0x42, 0x5f, 0x50, 0x57, 0x52,
		0x42,                                        /* \_SB.PWRB */
		0x5e, 0x5e, 0x41, 0x5f, 0x5f, 0x5f,          /* ^^A */
		0x2f, 0x03, 0x41, 0x5f, 0x5f, 0x5f, 0x42, 0x5f, 0x5f,
		0x5f, 0x43, 0x31, 0x5f, 0x5f,                /* A.B.C1 */
	};

	aml_name_string(&a, "\\");
	aml_name_string(&a, "\\_SB");
	aml_name_string(&a, "\\_SB.PWRB");
	aml_name_string(&a, "^^A");
	aml_name_string(&a, "A.B.C1");
	expect(want, sizeof(want));
}
END_TEST

START_TEST(test_aml_refuses)
{
	static const struct {
		const char *name;
		const char *why;
	} bad[] = {
		{ "TOOLONG", "a segment of 7 characters" },
		{ "1ABC", "'1' is not allowed there" },
		{ "ab", "'a' is not allowed there" },
		{ "A..B", "a segment of 0 characters" },
		{ "\\_SB.", "a segment of 0 characters" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aml_setup();
		aml_name_string(&a, bad[i].name);
		expect_refused(-EINVAL, bad[i].why);
	}
	aml_setup();
	aml_eisaid(&a, "PNP050");
	expect_refused(-EINVAL, "not 3 letters and 4 hex digits");
	aml_setup();
	aml_eisaid(&a, "pnp0501");
	expect_refused(-EINVAL, "'p' is not A-Z");
	aml_setup();
	aml_eisaid(&a, "PNP05G1");
	expect_refused(-EINVAL, "'G' is not a hex digit");
	aml_setup();
	aml_string(&a, "tab\there");
	expect_refused(-EINVAL, "byte 0x09 is not printable ASCII");
	aml_setup();
	aml_open_method(&a, "_EVT", 8);
	expect_refused(-EINVAL, "with 8 arguments");
	aml_setup();
	aml_arg(&a, 7);
	expect_refused(-EINVAL, "Arg7 does not exist");
	aml_setup();
	aml_local(&a, 8);
	expect_refused(-EINVAL, "Local8 does not exist");
	aml_setup();
	aml_open_package(&a, 256);
	expect_refused(-EINVAL, "package of 256 elements");
}
END_TEST

START_TEST(test_aml_refuses_resources)
{
	aml_res_io(&a, 0x3f8, 8);
	expect_refused(-EINVAL, "IO outside a resource template");
	aml_setup();
	aml_open_resources(&a);
	aml_res_irq(&a, 16);
	expect_refused(-EINVAL, "ISA IRQs are 0-15");
	aml_setup();
	aml_open_resources(&a);
	aml_res_io(&a, 0xfffc, 8);
	expect_refused(-EINVAL, "not inside the port space");
	aml_setup();
	aml_open_resources(&a);
	aml_res_mem32(&a, 0xfffff000u, 0x2000);
	expect_refused(-EINVAL, "not below 4 GiB");
}
END_TEST

START_TEST(test_aml_unbalanced_and_full)
{
	uint8_t small[8];
	int r;

	aml_open_scope(&a, "_SB");
	expect_refused(-EINVAL, "1 AML bodies left open");
	aml_setup();
	aml_close(&a);
	expect_refused(-EINVAL, "aml_close without an open body");
	/* A full buffer is an error, sticky, and nothing is written past. */
	aml_init(&a, small, sizeof(small));
	aml_string(&a, "too long for eight");
	len = a.len;
	ck_assert_uint_le(len, sizeof(small));
	aml_integer(&a, 1);
	ck_assert_uint_eq(a.len, len);
	r = aml_finish(&a, &len);
	ck_assert_int_eq(r, -ENOSPC);
	ck_assert_ptr_nonnull(strstr(a.err, "8-byte buffer"));
}
END_TEST

Suite *aml_suite(void)
{
	Suite *s = suite_create("aml");
	TCase *tc = tcase_create("builder");

	tcase_add_checked_fixture(tc, aml_setup, NULL);
	tcase_add_test(tc, test_aml_as_iasl);
	tcase_add_test(tc, test_aml_integers);
	tcase_add_test(tc, test_aml_pkglength);
	tcase_add_test(tc, test_aml_name_paths);
	tcase_add_test(tc, test_aml_refuses);
	tcase_add_test(tc, test_aml_refuses_resources);
	tcase_add_test(tc, test_aml_unbalanced_and_full);
	suite_add_tcase(s, tc);
	return s;
}
