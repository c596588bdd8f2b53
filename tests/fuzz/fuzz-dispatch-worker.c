/* SPDX-License-Identifier: MIT */
/* Fuzz the worker's dispatch tables: init, registering, the broker's
 * running phase and each device's running table. */
#include "tests/fuzz/fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_worker_dispatch(data, size);
}
