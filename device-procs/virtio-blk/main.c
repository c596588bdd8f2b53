/* SPDX-License-Identifier: MIT */
/* bulkhead-dev-virtio-blk: the virtio-blk device in its own process. */
#include "device-procs/devhost/dev.h"

int main(int argc, char **argv)
{
	return dev_main(argc, argv, &vblk_desc);
}
