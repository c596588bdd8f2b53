/* SPDX-License-Identifier: MIT */
/* Fuzz the debug-exit core: port accesses, ticks, input, saved state. */
#include "tests/fuzz/fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_dev_run(&debugexit_desc, data, size);
}
