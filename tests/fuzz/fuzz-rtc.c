/* SPDX-License-Identifier: MIT */
/* Fuzz the MC146818 RTC core (its timers run on the virtual clock):
 * port accesses, ticks, lifecycle, saved state. */
#include "tests/fuzz/fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_dev_run(&rtc_desc, data, size);
}
