/* SPDX-License-Identifier: MIT */
/*
 * debug-exit: a guest ends the run by writing a value to port 0xf4, like
 * QEMU's isa-debug-exit. The run ends with status (value << 1) | 1, so a
 * test guest can report its own pass or fail.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "device-procs/devhost/dev.h"


/*
 * A write of 1, 2 or 4 bytes asks for an exit with the whole value written
 * (little-endian); an 8-byte write with its low 32 bits. Reads see all ones.
 */
static void debugexit_io(struct dev *d, unsigned region, uint64_t off,
			 void *data, unsigned len, bool write)
{
	const uint8_t *bytes = data;
	uint32_t code = 0;

	if (!write) {
		memset(data, DEV_OPEN_BUS, len);
		return;
	}
	if (region != 0 || off != 0 || !len)
		return;
	for (unsigned i = 0; i < len && i < sizeof(code); i++)
		code |= (uint32_t)bytes[i] << (8 * i);
	dev_request_exit(d, code);
}

const struct dev_desc debugexit_desc = {
	.mf = &dev_mf_debugexit,
	.io = debugexit_io,
};
