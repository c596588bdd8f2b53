/* SPDX-License-Identifier: MIT */
/* The Check suites gathered by check_main.c: one per tests/unit/check_*.c. */
#ifndef BULKHEAD_TEST_SUITES_H
#define BULKHEAD_TEST_SUITES_H

#include <check.h>

Suite *ipc_suite(void);
Suite *ring_suite(void);
Suite *loader_suite(void);
Suite *uart_suite(void);

#endif
