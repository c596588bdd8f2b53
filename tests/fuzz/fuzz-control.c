/* SPDX-License-Identifier: MIT */
/* Fuzz the control protocol: bulkheadd's dispatch tables for a client. */
#include "tests/fuzz/fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_daemon_dispatch(data, size);
}
