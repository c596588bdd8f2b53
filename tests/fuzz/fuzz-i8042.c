/* SPDX-License-Identifier: MIT */
/* Fuzz the i8042 keyboard controller core:
 * port accesses, ticks, lifecycle, saved state. */
#include "tests/fuzz/fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_dev_run(&i8042_desc, data, size);
}
