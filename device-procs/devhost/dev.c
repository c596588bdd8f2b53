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
	struct dev *d;
	int ret;

	if (!desc || !ops || !out)
		return -EINVAL;
	*out = NULL;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->desc = desc;
	d->instance = instance;
	d->ops = ops;
	d->host = host;

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
