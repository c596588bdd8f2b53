/* SPDX-License-Identifier: MIT */
/*
 * vblk: a virtio block device (virtio 1.2, 5.2) on the virtio-mmio
 * transport, backed by the host's disk image (blk_pread, blk_pwrite,
 * blk_flush, blk_size).
 *
 * Offered: VERSION_1 and INDIRECT_DESC (transport), SEG_MAX, BLK_SIZE,
 * FLUSH, and RO when the instance is configured read-only. Config space:
 * capacity in 512-byte sectors (the image size at construct, rounded down),
 * seg_max, blk_size 512; the rest reads 0. One request queue of at most
 * 256 entries.
 *
 * A request is a 16-byte header (type, reserved, sector) at the start of
 * the device-readable side, then data, then the status byte: the last byte
 * of the device-writable side. How the driver splits this into descriptors
 * does not matter (2.7.4). Data goes straight between the disk and the
 * guest's buffers (no copy); only the header is copied.
 *
 * Rules (status IOERR = 1 unless said otherwise):
 * - no device-writable byte: there is nowhere to put a status, so the
 *   request completes with used length 0 and nothing is done;
 * - a header shorter than 16 bytes;
 * - IN: data is the writable side without the status byte, and no readable
 *   bytes may follow the header; OUT: data is the readable side after the
 *   header, and the writable side is the status byte alone;
 * - IN/OUT: data not a multiple of 512 bytes, or past the capacity;
 * - OUT on a read-only disk (the disk is not touched);
 * - a backend error or short transfer (what was read may already be in
 *   the guest's buffers);
 * - FLUSH: the backend's flush failed; GET_ID: up to 20 bytes of
 *   cfg.serial, NUL-padded, not NUL-terminated at 20 (it may be truncated
 *   by a shorter buffer); other types: UNSUPP = 2.
 * The used length is the data written to the guest plus the status byte.
 */
#include <errno.h>
#include <string.h>

#include "device-procs/devhost/dev.h"
#include "device-procs/virtio/virtio_mmio.h"

#define VBLK_DEVICE_ID 2u
#define VBLK_QUEUE_NUM_MAX 256u
#define VBLK_SECTOR 512u
/* Data segments per request: a header and a status besides these still
 * fit a direct chain in the largest queue. */
#define VBLK_SEG_MAX 126u
#define VBLK_ID_BYTES 20u
#define VBLK_HDR_SIZE 16u

/* Feature bits (5.2.3). */
#define VBLK_F_SEG_MAX 2
#define VBLK_F_RO 5
#define VBLK_F_BLK_SIZE 6
#define VBLK_F_FLUSH 9

/* Request types and status values (5.2.6). */
#define VBLK_T_IN 0u
#define VBLK_T_OUT 1u
#define VBLK_T_FLUSH 4u
#define VBLK_T_GET_ID 8u
#define VBLK_S_OK 0u
#define VBLK_S_IOERR 1u
#define VBLK_S_UNSUPP 2u

/* Config space layout (5.2.4): what we fill, and its length. */
#define VBLK_CFG_CAPACITY 0x00
#define VBLK_CFG_SEG_MAX 0x0c
#define VBLK_CFG_BLK_SIZE 0x14
#define VBLK_CFG_LEN 0x20	/* through the topology fields */

struct vblk_state {
	struct virtio_mmio vm;	/* first: the transport's */
	uint64_t capacity;	/* in sectors */
};

static struct vblk_state *vblk_state_of(struct dev *d)
{
	return d->state;
}

static void vblk_put_le(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t vblk_get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint64_t vblk_features(struct dev *d)
{
	uint64_t f = VIRTIO_FEATURE(VBLK_F_SEG_MAX) |
		     VIRTIO_FEATURE(VBLK_F_BLK_SIZE) |
		     VIRTIO_FEATURE(VBLK_F_FLUSH);

	if (d->cfg.readonly)
		f |= VIRTIO_FEATURE(VBLK_F_RO);
	return f;
}

static void vblk_config(struct dev *d, uint8_t *buf)
{
	vblk_put_le(buf + VBLK_CFG_CAPACITY, vblk_state_of(d)->capacity, 8);
	vblk_put_le(buf + VBLK_CFG_SEG_MAX, VBLK_SEG_MAX, 4);
	vblk_put_le(buf + VBLK_CFG_BLK_SIZE, VBLK_SECTOR, 4);
}

/* Whether len bytes at sector lie within the disk (no overflow). */
static bool vblk_in_range(const struct vblk_state *s, uint64_t sector,
			  uint64_t len)
{
	return len % VBLK_SECTOR == 0 && sector <= s->capacity &&
	       len / VBLK_SECTOR <= s->capacity - sector;
}

/* Transfer len bytes between buf and the disk at pos, all or nothing. */
static int vblk_transfer(struct dev *d, uint8_t *buf, size_t len,
			 uint64_t pos, bool to_disk)
{
	const struct dev_host_ops *ops = d->ops;

	if (to_disk ? !ops->blk_pwrite : !ops->blk_pread)
		return -ENODEV;
	while (len) {
		ssize_t n = to_disk ? ops->blk_pwrite(d->host, buf, len, pos) :
				      ops->blk_pread(d->host, buf, len, pos);

		if (n < 0)
			return (int)n;
		if (n == 0 || (size_t)n > len)
			return -EIO;	/* end of the image, or a lying host */
		buf += n;
		len -= (size_t)n;
		pos += (uint64_t)n;
	}
	return 0;
}

/* IN: disk -> the writable side before the status byte. */
static uint8_t vblk_read(struct dev *d, const struct virtio_chain *c,
			 uint64_t sector, uint32_t *used)
{
	uint64_t len = c->write_len - 1, pos = sector * VBLK_SECTOR;
	struct virtio_cursor cur;
	uint8_t *piece;
	size_t n;

	if (c->read_len != VBLK_HDR_SIZE ||
	    !vblk_in_range(vblk_state_of(d), sector, len))
		return VBLK_S_IOERR;
	/* From here the guest's buffers may change, whatever happens. */
	*used = (uint32_t)len;
	virtio_cursor_init(&cur, c, true, 0, len);
	while ((n = virtio_cursor_next(&cur, &piece)) != 0) {
		if (vblk_transfer(d, piece, n, pos, false))
			return VBLK_S_IOERR;
		pos += n;
	}
	return VBLK_S_OK;
}

/* OUT: the readable side after the header -> disk. */
static uint8_t vblk_write(struct dev *d, const struct virtio_chain *c,
			  uint64_t sector)
{
	uint64_t len = c->read_len - VBLK_HDR_SIZE, pos = sector * VBLK_SECTOR;
	struct virtio_cursor cur;
	uint8_t *piece;
	size_t n;

	if (d->cfg.readonly || c->write_len != 1 ||
	    !vblk_in_range(vblk_state_of(d), sector, len))
		return VBLK_S_IOERR;
	virtio_cursor_init(&cur, c, false, VBLK_HDR_SIZE, len);
	while ((n = virtio_cursor_next(&cur, &piece)) != 0) {
		if (vblk_transfer(d, piece, n, pos, true))
			return VBLK_S_IOERR;
		pos += n;
	}
	return VBLK_S_OK;
}

static uint8_t vblk_flush(struct dev *d)
{
	if (!d->ops->blk_flush || d->ops->blk_flush(d->host) < 0)
		return VBLK_S_IOERR;
	return VBLK_S_OK;
}

static uint8_t vblk_get_id(struct dev *d, const struct virtio_chain *c,
			   uint32_t *used)
{
	char id[VBLK_ID_BYTES];
	const char *serial = d->cfg.serial ? d->cfg.serial : "";
	size_t n = strnlen(serial, sizeof(id));
	uint64_t room = c->write_len - 1;

	if (c->read_len != VBLK_HDR_SIZE)
		return VBLK_S_IOERR;
	memset(id, 0, sizeof(id));
	memcpy(id, serial, n);
	*used = (uint32_t)virtio_chain_write(c, 0, id,
					     room < sizeof(id) ? room :
								 sizeof(id));
	return VBLK_S_OK;
}

static uint32_t vblk_handle(struct dev *d, unsigned queue,
			    const struct virtio_chain *c)
{
	uint8_t hdr[VBLK_HDR_SIZE], status;
	uint32_t used = 0;
	uint64_t sector;

	(void)queue;
	if (c->write_len == 0)
		return 0;	/* no status byte: nothing to answer with */
	if (virtio_chain_read(c, 0, hdr, sizeof(hdr)) != sizeof(hdr)) {
		status = VBLK_S_IOERR;
		goto out_status;
	}
	sector = vblk_get_le(hdr + 8, 8);
	switch (vblk_get_le(hdr, 4)) {
	case VBLK_T_IN:
		status = vblk_read(d, c, sector, &used);
		break;
	case VBLK_T_OUT:
		status = vblk_write(d, c, sector);
		break;
	case VBLK_T_FLUSH:
		status = c->read_len == VBLK_HDR_SIZE && c->write_len == 1 ?
			 vblk_flush(d) : VBLK_S_IOERR;
		break;
	case VBLK_T_GET_ID:
		status = vblk_get_id(d, c, &used);
		break;
	default:
		status = VBLK_S_UNSUPP;
		break;
	}
out_status:
	virtio_chain_write(c, c->write_len - 1, &status, 1);
	return used + 1;
}

static const struct virtio_device vblk_virtio = {
	.device_id = VBLK_DEVICE_ID,
	.nqueues = 1,
	.queue_num_max = VBLK_QUEUE_NUM_MAX,
	.features = vblk_features,
	.config_len = VBLK_CFG_LEN,
	.config = vblk_config,
	.handle = vblk_handle,
};

static int vblk_construct(struct dev *d)
{
	struct vblk_state *s = vblk_state_of(d);
	int ret = virtio_mmio_construct(d, &vblk_virtio);

	if (ret)
		return ret;
	s->capacity = d->ops->blk_size ?
		      d->ops->blk_size(d->host) / VBLK_SECTOR : 0;
	return 0;
}

static const uint8_t vblk_irq_flags[] = {DEV_IRQ_LEVEL};

static const struct dev_doorbell vblk_doorbells[] = {
	{0, VIRTIO_MMIO_QUEUE_NOTIFY, 4},
};

const struct dev_desc vblk_desc = {
	.mf = &dev_mf_virtio_blk,
	.irq_flags = vblk_irq_flags,
	.doorbells = vblk_doorbells,
	.ndoorbells = sizeof(vblk_doorbells) / sizeof(vblk_doorbells[0]),
	.state_size = sizeof(struct vblk_state),
	.construct = vblk_construct,
	.io = virtio_mmio_io,
	.reset = virtio_mmio_reset,
	.notify = virtio_mmio_notify,
	.save = virtio_mmio_save,
	.load = virtio_mmio_load,
};
