/* SPDX-License-Identifier: MIT */
/*
 * What a device may register besides its regions (emt-worker/devrules.c):
 * doorbells and posted-write ranges inside its own regions only, with
 * offsets and lengths chosen by a hostile device (wrapping sums, empty
 * ranges, regions it does not have), and no posted writes at all for a
 * device that may stop the VM.
 */
#include <stdint.h>
#include <string.h>

#include "emt-worker/devrules.h"
#include "tests/unit/suites.h"

static struct emt_dev dev;

static void rules_setup(void)
{
	memset(&dev, 0, sizeof(dev));
	/* like the null device: 8 ports, one page of MMIO */
	dev.regions[0] = (struct emt_region){ IPC_SPACE_PIO, 0x510, 8 };
	dev.regions[1] = (struct emt_region){ IPC_SPACE_MMIO, 0xd0100000, 0x1000 };
	dev.nregions = 2;
}

START_TEST(test_range_inside)
{
	ck_assert(emt_dev_range_ok(&dev, 0, 0, 8));
	ck_assert(emt_dev_range_ok(&dev, 0, 7, 1));
	ck_assert(emt_dev_range_ok(&dev, 1, 0xff8, 8));
	ck_assert(!emt_dev_range_ok(&dev, 0, 0, 9));
	ck_assert(!emt_dev_range_ok(&dev, 0, 8, 1));
	ck_assert(!emt_dev_range_ok(&dev, 1, 0xffc, 8));
	/* a region the device does not have, or past the array */
	ck_assert(!emt_dev_range_ok(&dev, 2, 0, 1));
	ck_assert(!emt_dev_range_ok(&dev, UINT32_MAX, 0, 1));
}
END_TEST

START_TEST(test_range_no_wrap)
{
	/* off + len would wrap to something small */
	ck_assert(!emt_dev_range_ok(&dev, 1, UINT64_MAX, 2));
	ck_assert(!emt_dev_range_ok(&dev, 1, 8, UINT64_MAX - 4));
	ck_assert(!emt_dev_range_ok(&dev, 1, UINT64_MAX, UINT64_MAX));
}
END_TEST

START_TEST(test_doorbell_widths)
{
	ck_assert(emt_dev_doorbell_ok(&dev, 1, 0x50, 4));
	ck_assert(emt_dev_doorbell_ok(&dev, 1, 0x50, 1));
	ck_assert(emt_dev_doorbell_ok(&dev, 1, 0x50, 8));
	ck_assert(!emt_dev_doorbell_ok(&dev, 1, 0x50, 3));
	ck_assert(!emt_dev_doorbell_ok(&dev, 1, 0x50, 0));
	ck_assert(!emt_dev_doorbell_ok(&dev, 1, 0x50, 16));
	ck_assert(!emt_dev_doorbell_ok(&dev, 1, 0xffe, 4));
	ck_assert(!emt_dev_doorbell_ok(&dev, 3, 0, 4));
}
END_TEST

START_TEST(test_posted_ranges)
{
	ck_assert(emt_dev_posted_ok(&dev, 0, 0, 8));
	ck_assert(emt_dev_posted_ok(&dev, 1, 0x100, 0x10));
	ck_assert(!emt_dev_posted_ok(&dev, 0, 0, 0));   /* empty */
	ck_assert(!emt_dev_posted_ok(&dev, 0, 4, 5));   /* past the end */
	ck_assert(!emt_dev_posted_ok(&dev, 2, 0, 1));   /* no such region */
	ck_assert(!emt_dev_posted_ok(&dev, 1, UINT64_MAX, 1));
}
END_TEST

START_TEST(test_posted_refused_for_exit)
{
	dev.may_request_exit = true;
	/* debug-exit's STOP must reach the vCPU: nothing posted, anywhere */
	ck_assert(!emt_dev_posted_ok(&dev, 0, 0, 1));
	ck_assert(!emt_dev_posted_ok(&dev, 1, 0, 0x1000));
	/* its doorbells and ranges are judged as any device's */
	ck_assert(emt_dev_doorbell_ok(&dev, 0, 0, 1));
	ck_assert(emt_dev_range_ok(&dev, 0, 0, 8));
}
END_TEST

Suite *devrules_suite(void)
{
	Suite *s = suite_create("devrules");
	TCase *tc = tcase_create("registration");

	tcase_add_checked_fixture(tc, rules_setup, NULL);
	tcase_add_test(tc, test_range_inside);
	tcase_add_test(tc, test_range_no_wrap);
	tcase_add_test(tc, test_doorbell_widths);
	tcase_add_test(tc, test_posted_ranges);
	tcase_add_test(tc, test_posted_refused_for_exit);
	suite_add_tcase(s, tc);
	return s;
}
