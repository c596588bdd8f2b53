/* SPDX-License-Identifier: MIT */
/*
 * The Check suites gathered by check_main.c: one per tests/unit/check_*.c.
 * Declared weak so a suite whose file is not in the build is simply absent;
 * add a new suite here and in check_main.c's table.
 */
#ifndef BULKHEAD_TEST_SUITES_H
#define BULKHEAD_TEST_SUITES_H

#include <check.h>

#define SUITE_DECL(name) Suite *name##_suite(void) __attribute__((weak))

SUITE_DECL(ipc);
SUITE_DECL(ring);
SUITE_DECL(loader);
SUITE_DECL(uart);
SUITE_DECL(vmstate);
SUITE_DECL(vmreq);
SUITE_DECL(ssm);
SUITE_DECL(policy);
SUITE_DECL(rtc);
SUITE_DECL(i8042);
SUITE_DECL(virtio);
SUITE_DECL(bzimage);
SUITE_DECL(fuzzreplay);
SUITE_DECL(acpi);
SUITE_DECL(mptable);

#endif
