/* SPDX-License-Identifier: MIT */
/*
 * virtio_mmio: the virtio-mmio transport (modern register layout, version
 * 2) and split-virtqueue processing, shared by the virtio device cores
 * (virtio-blk, virtio-rng). Written from the OASIS virtio 1.1/1.2
 * specification, sections 2 (basic facilities), 2.7 (split virtqueues) and
 * 4.2 (virtio over MMIO).
 *
 * A virtio device core is a struct virtio_device (ID, features, queues,
 * config space, a request handler) plus a state struct whose FIRST member
 * is a struct virtio_mmio. Its dev_desc points io, notify, reset, save and
 * load straight at the virtio_mmio_* functions below, and its construct
 * calls virtio_mmio_construct.
 *
 * The transport does all the guest-facing validation: every descriptor is
 * read once into a local copy, every index is checked against its table,
 * chains are bounded (no loops), and every buffer is mapped through
 * dev_mem_map, so a request handler only ever sees buffers that lie wholly
 * in guest RAM, device-readable ones first. The contents of those buffers
 * stay guest-controlled: a handler copies what it validates.
 */
#ifndef BULKHEAD_VIRTIO_MMIO_H
#define BULKHEAD_VIRTIO_MMIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device-procs/devhost/dev.h"

/* Size of the register block: control registers, then config at 0x100. */
#define VIRTIO_MMIO_REGION_SIZE 0x200u
#define VIRTIO_MMIO_CONFIG 0x100u
#define VIRTIO_MMIO_CONFIG_MAX (VIRTIO_MMIO_REGION_SIZE - VIRTIO_MMIO_CONFIG)

/* Control register offsets (virtio 1.2, 4.2.2). All are 32 bits wide. */
#define VIRTIO_MMIO_MAGIC_VALUE 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_VENDOR_ID 0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS 0x060
#define VIRTIO_MMIO_INTERRUPT_ACK 0x064
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_SHM_SEL 0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW 0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH 0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW 0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH 0x0bc
#define VIRTIO_MMIO_CONFIG_GENERATION 0x0fc

#define VIRTIO_MMIO_MAGIC 0x74726976u	/* "virt" */
#define VIRTIO_MMIO_VERSION_MODERN 2u
#define VIRTIO_MMIO_VENDOR 0x6b6c7542u	/* "Bulk" */

/* InterruptStatus bits. */
#define VIRTIO_MMIO_INT_VRING 0x1u	/* a used buffer was added */
#define VIRTIO_MMIO_INT_CONFIG 0x2u	/* configuration (or status) change */

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01u
#define VIRTIO_STATUS_DRIVER 0x02u
#define VIRTIO_STATUS_DRIVER_OK 0x04u
#define VIRTIO_STATUS_FEATURES_OK 0x08u
#define VIRTIO_STATUS_NEEDS_RESET 0x40u
#define VIRTIO_STATUS_FAILED 0x80u

/* Transport feature bits (6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_FEATURE(bit) (1ull << (bit))

/* Split virtqueue layout (2.7). */
#define VIRTQ_DESC_F_NEXT 0x1u
#define VIRTQ_DESC_F_WRITE 0x2u
#define VIRTQ_DESC_F_INDIRECT 0x4u
#define VIRTQ_AVAIL_F_NO_INTERRUPT 0x1u
#define VIRTQ_DESC_SIZE 16u
#define VIRTQ_USED_ELEM_SIZE 8u
/* The largest queue the spec allows (2.6); ours are far smaller. */
#define VIRTQ_NUM_LIMIT 32768u

/* Limits of this implementation. */
#define VIRTIO_MAX_QUEUES 4u
/* Buffers in one chain, direct and indirect together. A direct chain is
 * also bounded by its queue's size, an indirect table by this. */
#define VIRTIO_CHAIN_MAX 256u
/* Bytes in one chain (both directions); keeps used lengths in 32 bits. */
#define VIRTIO_CHAIN_MAX_BYTES (256ull << 20)

/* One buffer of a validated chain: wholly inside guest RAM. */
struct virtio_buf {
	uint8_t *host;		/* where dev_mem_map put it */
	uint64_t gpa;
	uint32_t len;		/* never 0: empty descriptors are dropped */
	bool writable;		/* device-writable */
};

/*
 * A validated descriptor chain. bufs[0, nread) are device-readable,
 * bufs[nread, nbufs) device-writable; read_len and write_len are their
 * byte totals (each at most VIRTIO_CHAIN_MAX_BYTES).
 */
struct virtio_chain {
	uint16_t head;
	unsigned nbufs;
	unsigned nread;
	uint64_t read_len;
	uint64_t write_len;
	struct virtio_buf bufs[VIRTIO_CHAIN_MAX];
};

/* A walk over a byte range of the readable or the writable side. */
struct virtio_cursor {
	const struct virtio_chain *chain;
	unsigned idx;		/* current buffer */
	unsigned end;		/* one past the last buffer of this side */
	uint64_t off;		/* offset within bufs[idx] */
	uint64_t left;		/* bytes still to walk */
};

/* What a virtio device core tells the transport. */
struct virtio_device {
	uint32_t device_id;
	unsigned nqueues;		/* at most VIRTIO_MAX_QUEUES */
	uint16_t queue_num_max;		/* a power of two */
	/* Device feature bits offered (the transport adds VERSION_1 and
	 * INDIRECT_DESC). May depend on d->cfg. */
	uint64_t (*features)(struct dev *d);
	/* Bytes of device config space (at most VIRTIO_MMIO_CONFIG_MAX), and
	 * a function filling that many bytes of it, little-endian. Config
	 * writes are ignored (no writable fields). config may be NULL when
	 * config_len is 0. */
	unsigned config_len;
	void (*config)(struct dev *d, uint8_t *buf);
	/*
	 * Serve one validated chain from queue `queue`; returns the number of
	 * bytes written into its device-writable buffers (the used length,
	 * at most c->write_len).
	 */
	uint32_t (*handle)(struct dev *d, unsigned queue,
			   const struct virtio_chain *c);
	/* Device reset (after the transport's own). May be NULL. */
	void (*reset)(struct dev *d);
};

struct virtio_queue {
	uint32_t num;		/* QueueNum as written; checked at ready */
	bool ready;
	uint64_t desc_addr;
	uint64_t driver_addr;	/* the available ring */
	uint64_t device_addr;	/* the used ring */
	uint16_t last_avail;	/* next available ring entry to take */
	uint16_t used_idx;	/* the used ring's idx, as last published */
};

/* Transport state; the first member of a virtio device's state. */
struct virtio_mmio {
	const struct virtio_device *vdev;
	uint32_t status;
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint64_t driver_features;
	bool driver_features_bad;	/* bits written beyond word 1 */
	uint32_t queue_sel;
	uint32_t interrupt_status;
	uint32_t config_generation;
	bool irq_level;			/* last level driven on line 0 */
	struct virtio_queue queues[VIRTIO_MAX_QUEUES];
	struct virtio_chain chain;	/* scratch for the chain being served */
};

/* For a device's construct: checks d's region and IRQ, records vdev. */
int virtio_mmio_construct(struct dev *d, const struct virtio_device *vdev);

/* dev_desc callbacks. */
void virtio_mmio_io(struct dev *d, unsigned region, uint64_t off, void *data,
		    unsigned len, bool write);
void virtio_mmio_notify(struct dev *d, unsigned idx);
void virtio_mmio_reset(struct dev *d);
int virtio_mmio_save(struct dev *d, uint8_t **buf, size_t *len);
int virtio_mmio_load(struct dev *d, const uint8_t *buf, size_t len,
		     uint32_t version);

/* Features offered to the driver: the device's plus the transport's. */
uint64_t virtio_mmio_offered(struct dev *d);
/* Whether the driver accepted feature `bit`. */
bool virtio_mmio_has_feature(const struct dev *d, unsigned bit);

/* Walk [skip, skip + len) of the chain's writable (writable=true) or
 * readable side, clipped to that side's length. */
void virtio_cursor_init(struct virtio_cursor *cur,
			const struct virtio_chain *c, bool writable,
			uint64_t skip, uint64_t len);
/* The next piece: its length (0 at the end) and address in *ptr. */
size_t virtio_cursor_next(struct virtio_cursor *cur, uint8_t **ptr);
/* Copy out of the readable side / into the writable side at off; return
 * the bytes copied (fewer if the side is shorter). */
size_t virtio_chain_read(const struct virtio_chain *c, uint64_t off,
			 void *dst, size_t len);
size_t virtio_chain_write(const struct virtio_chain *c, uint64_t off,
			  const void *src, size_t len);

#endif
