/* SPDX-License-Identifier: MIT */
/*
 * vrng: a virtio entropy device (virtio 1.2, 5.4) on the virtio-mmio
 * transport. One request queue; each chain's device-writable buffers are
 * filled from the host's entropy source, at most VRNG_MAX_PER_REQUEST
 * bytes per chain, and the used length says how many bytes were filled
 * (from the start of the writable side; fewer when the source runs dry).
 * Device-readable buffers (which a driver must not send) are ignored. No
 * device features, no config space.
 */
#include <sys/types.h>

#include "device-procs/devhost/dev.h"
#include "device-procs/virtio/virtio_mmio.h"

#define VRNG_DEVICE_ID 4u
#define VRNG_QUEUE_NUM_MAX 256u
#define VRNG_MAX_PER_REQUEST (64u << 10)

struct vrng_state {
	struct virtio_mmio vm;	/* first: the transport's */
};

/* Fill len bytes at buf; returns how many were filled. */
static size_t vrng_fill(struct dev *d, uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = d->ops->entropy(d->host, buf + done, len - done);

		if (n <= 0 || (size_t)n > len - done)
			break;	/* dry, failed, or a lying host */
		done += (size_t)n;
	}
	return done;
}

static uint32_t vrng_handle(struct dev *d, unsigned queue,
			    const struct virtio_chain *c)
{
	struct virtio_cursor cur;
	uint32_t filled = 0;
	uint8_t *piece;
	size_t n;

	(void)queue;
	if (!d->ops->entropy)
		return 0;
	virtio_cursor_init(&cur, c, true, 0, VRNG_MAX_PER_REQUEST);
	while ((n = virtio_cursor_next(&cur, &piece)) != 0) {
		size_t got = vrng_fill(d, piece, n);

		filled += (uint32_t)got;
		if (got < n)
			break;
	}
	return filled;
}

static uint64_t vrng_features(struct dev *d)
{
	(void)d;
	return 0;
}

static const struct virtio_device vrng_virtio = {
	.device_id = VRNG_DEVICE_ID,
	.nqueues = 1,
	.queue_num_max = VRNG_QUEUE_NUM_MAX,
	.features = vrng_features,
	.handle = vrng_handle,
};

static int vrng_construct(struct dev *d)
{
	return virtio_mmio_construct(d, &vrng_virtio);
}

static const uint8_t vrng_irq_flags[] = {DEV_IRQ_LEVEL};

static const struct dev_doorbell vrng_doorbells[] = {
	{0, VIRTIO_MMIO_QUEUE_NOTIFY, 4},
};

const struct dev_desc vrng_desc = {
	.mf = &dev_mf_virtio_rng,
	.irq_flags = vrng_irq_flags,
	.doorbells = vrng_doorbells,
	.ndoorbells = sizeof(vrng_doorbells) / sizeof(vrng_doorbells[0]),
	.state_size = sizeof(struct vrng_state),
	.construct = vrng_construct,
	.io = virtio_mmio_io,
	.reset = virtio_mmio_reset,
	.notify = virtio_mmio_notify,
	.save = virtio_mmio_save,
	.load = virtio_mmio_load,
};
