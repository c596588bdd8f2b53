/* SPDX-License-Identifier: MIT */
/* What a device may register besides its regions (devrules.h). */
#include "emt-worker/devrules.h"

bool emt_dev_range_ok(const struct emt_dev *d, uint32_t region, uint64_t off,
		      uint64_t len)
{
	const struct emt_region *rg;

	if (region >= d->nregions)
		return false;
	rg = &d->regions[region];
	return off < rg->len && len <= rg->len - off;
}

bool emt_dev_doorbell_ok(const struct emt_dev *d, uint32_t region,
			 uint64_t off, uint64_t len)
{
	if (len != 1 && len != 2 && len != 4 && len != 8)
		return false;
	return emt_dev_range_ok(d, region, off, len);
}

bool emt_dev_posted_ok(const struct emt_dev *d, uint32_t region, uint64_t off,
		       uint64_t len)
{
	if (d->may_request_exit || len == 0)
		return false;
	return emt_dev_range_ok(d, region, off, len);
}
