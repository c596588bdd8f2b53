/* SPDX-License-Identifier: MIT */
/* Fuzz a device process's dispatch tables: bootstrap, registering, running. */
#include "tests/fuzz/fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_devhost_dispatch(data, size);
}
