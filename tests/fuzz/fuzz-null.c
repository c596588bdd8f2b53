/* SPDX-License-Identifier: MIT */
/* Fuzz the null device core: port accesses, ticks, input, saved state. */
#include "tests/fuzz/fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_dev_run(&null_desc, data, size);
}
