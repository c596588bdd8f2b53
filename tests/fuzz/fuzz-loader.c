/* SPDX-License-Identifier: MIT */
/* Fuzz the image loaders (multiboot ELF and a.out kludge, raw, bzImage). */
#include "tests/fuzz/fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_loader_run(data, size);
}
