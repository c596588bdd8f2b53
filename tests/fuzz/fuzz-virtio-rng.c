/* SPDX-License-Identifier: MIT */
/* Fuzz the virtio-rng core and the virtio-mmio transport:
 * register accesses, doorbells, and the virtqueues and descriptor chains
 * the input writes into guest RAM. */
#include "tests/fuzz/fuzzlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_dev_run(&vrng_desc, data, size);
}
