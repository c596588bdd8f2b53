/* SPDX-License-Identifier: MIT */
/* Fuzz the saved-state stream: the reader on hostile streams, and writer to
 * reader round trips. */
#include "tests/fuzz/fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_ssm_run(data, size);
}
