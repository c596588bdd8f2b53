/* SPDX-License-Identifier: MIT */
/*
 * null: a device that does nothing, for measuring the cost of an exit that
 * reaches a device process: ports 0x510-0x517 and one MMIO page at
 * 0xd0100000 (clear of the virtio-mmio slots at 0xd0000000 + 0x200 * n).
 * Writes to either are counted and otherwise ignored; reads return 0.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "device-procs/devhost/dev.h"

struct null_state {
	uint64_t writes;	/* guest writes seen; keep it the first field */
	uint64_t reads;		/* guest reads seen */
};

static void null_io(struct dev *d, unsigned region, uint64_t off, void *data,
		    unsigned len, bool write)
{
	struct null_state *s = d->state;

	(void)region;
	(void)off;
	if (write) {
		s->writes++;
	} else {
		memset(data, 0, len);
		s->reads++;
	}
}

/* The bases may be moved by configuration; these are the defaults. */
static const struct dev_region null_regions[] = {
	{DEV_PIO, 0x510, 8},
	{DEV_MMIO, 0xd0100000, 0x1000},
};

const struct dev_desc null_desc = {
	.name = "null",
	.regions = null_regions,
	.nregions = sizeof(null_regions) / sizeof(null_regions[0]),
	.state_size = sizeof(struct null_state),
	.io = null_io,
};
