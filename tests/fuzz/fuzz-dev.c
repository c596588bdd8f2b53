/* SPDX-License-Identifier: MIT */
/*
 * The fuzz harness of every device core, built once per device with
 * -DDEV_DESC=<its descriptor> (tests/fuzz/module.mk): its register
 * accesses, backend input, doorbells, timers, lifecycle and saved state,
 * as fz_dev_run() decodes them (tests/fuzz/fuzzlib.h).
 */
#include "tests/fuzz/fuzzlib.h"

#ifndef DEV_DESC
#error "build with -DDEV_DESC=<the device core's struct dev_desc>"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_dev_run(&DEV_DESC, data, size);
}
