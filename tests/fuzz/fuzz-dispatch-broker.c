/* SPDX-License-Identifier: MIT */
/* Fuzz the broker's dispatch table for what a worker sends. */
#include "tests/fuzz/fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_broker_dispatch(data, size);
}
