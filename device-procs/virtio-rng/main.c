/* SPDX-License-Identifier: MIT */
/* bulkhead-dev-virtio-rng: the virtio-rng device in its own process. */
#include "device-procs/devhost/dev.h"

int main(int argc, char **argv)
{
	return dev_main(argc, argv, &vrng_desc);
}
