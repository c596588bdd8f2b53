/* SPDX-License-Identifier: MIT */
/*
 * null: a device that does nothing, for measuring the cost of an exit that
 * reaches a device process: ports 0x510-0x517 and one MMIO page at
 * 0xd0100000 (clear of the virtio-mmio slots at 0xd0000000 + 0x200 * n).
 * Writes to either are counted and otherwise ignored, and may be posted
 * (the EMT does not wait for them); a read returns the number of writes
 * seen so far, masked to its width, so a guest can check that posted writes
 * reached the device before a later read.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "device-procs/devhost/dev.h"

/* Its regions, as device-procs/manifest.c places them. */
#define NULL_REGION_PIO 0u
#define NULL_REGION_MMIO 1u
#define NULL_PIO_LEN 8		/* ports 0x510-0x517 */
#define NULL_MMIO_LEN 0x1000	/* one page at 0xd0100000 */

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
		uint64_t v = s->writes;

		memcpy(data, &v, len);   /* little-endian, len <= 8 */
		s->reads++;
	}
}

/* Nothing a write does can be seen: every write may be posted. */
static const struct dev_posted null_posted[] = {
	{NULL_REGION_PIO, 0, NULL_PIO_LEN},
	{NULL_REGION_MMIO, 0, NULL_MMIO_LEN},
};

const struct dev_desc null_desc = {
	.mf = &dev_mf_null,
	.posted = null_posted,
	.nposted = sizeof(null_posted) / sizeof(null_posted[0]),
	.state_size = sizeof(struct null_state),
	.io = null_io,
};
