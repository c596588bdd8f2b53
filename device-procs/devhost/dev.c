/* SPDX-License-Identifier: MIT */
/*
 * dev: building and freeing a device from its descriptor. Shared by the
 * devhost runtime, the unit tests and the fuzzers.
 */
#include <errno.h>
#include <stdlib.h>

#include "device-procs/devhost/dev.h"

int dev_new(const struct dev_desc *desc, unsigned instance,
	    const struct dev_host_ops *ops, void *host, struct dev **out)
{
	return dev_new_at(desc, instance, NULL, NULL, NULL, ops, host, out);
}

int dev_new_at(const struct dev_desc *desc, unsigned instance,
	       const struct dev_region *regions, const unsigned *irqs,
	       const struct dev_config *cfg, const struct dev_host_ops *ops,
	       void *host, struct dev **out)
{
	struct dev *d;
	int ret;

	if (!desc || !desc->mf || !ops || !out)
		return -EINVAL;
	*out = NULL;
	if (desc->mf->nregions > DEV_MAX_REGIONS ||
	    desc->mf->nirqs > DEV_MAX_IRQS ||
	    desc->ndoorbells > DEV_MAX_DOORBELLS ||
	    desc->nposted > DEV_MAX_POSTED)
		return -EINVAL;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->desc = desc;
	d->instance = instance;
	d->ops = ops;
	d->host = host;
	d->nregions = desc->mf->nregions;
	for (unsigned i = 0; i < d->nregions; i++)
		d->regions[i] = regions ? regions[i] : desc->mf->regions[i];
	d->nirqs = desc->mf->nirqs;
	for (unsigned i = 0; i < d->nirqs; i++)
		d->irqs[i] = irqs ? irqs[i] : desc->mf->irqs[i];
	if (cfg)
		d->cfg = *cfg;

	if (desc->state_size) {
		d->state = calloc(1, desc->state_size);
		if (!d->state) {
			ret = -ENOMEM;
			goto out_free_dev;
		}
	}

	if (desc->construct) {
		ret = desc->construct(d);
		if (ret > 0)	/* not a -errno: a broken construct */
			ret = -EINVAL;
		if (ret < 0)
			goto out_free_state;
	}
	if (desc->reset)
		desc->reset(d);

	*out = d;
	return 0;

out_free_state:
	free(d->state);
out_free_dev:
	free(d);
	return ret;
}

void dev_free(struct dev *d)
{
	if (!d)
		return;
	free(d->state);
	free(d);
}
