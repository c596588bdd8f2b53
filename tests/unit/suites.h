/* SPDX-License-Identifier: MIT */
/*
 * The Check suites gathered by check_main.c: one per tests/unit/check_*.c,
 * Suite *<name>_suite(void) in tests/unit/check_<name>.c. The list is
 * made by make from the file names (build/tests/unit-suites.h): a new
 * check_*.c is run without being added anywhere, and one whose suite is
 * missing fails to link.
 */
#ifndef BULKHEAD_TEST_SUITES_H
#define BULKHEAD_TEST_SUITES_H

#include <check.h>

#define UNIT_SUITE(name) Suite *name##_suite(void);
#include "unit-suites.h"
#undef UNIT_SUITE

#endif
